//! A real Redis Cluster for the tests: servers from `WHITELIST_SERVER`, each
//! with the module, its own free port, an explicit free cluster-bus port
//! (port + 10000 can pass 65535 and collide between parallel runs), its own
//! directory and cluster config file and a unix socket for the admin
//! connection. It is set up by command the way `redis-cli --cluster create
//! --cluster-replicas N` does it, and every wait has a deadline.

use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, Client, Options, Reply, Server};

/// How long any one step of setting up or healing a cluster may take.
pub const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);

const SLOTS: usize = 16384;

/// Polls `f` until it returns `Some`, panicking with `what` after
/// [`CLUSTER_DEADLINE`].
pub fn wait_long<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < CLUSTER_DEADLINE, "timed out after {CLUSTER_DEADLINE:?} waiting for {what}");
        sleep(Duration::from_millis(50));
    }
}

/// One node: its server (None while killed) and what restarts it.
pub struct Node {
    pub server: Option<Server>,
    pub port: u16,
    pub cport: u16,
    pub id: String,
    options: Options,
}

/// A running cluster; every server is killed on drop.
pub struct Cluster {
    pub nodes: Vec<Node>,
    extra: Vec<String>,
}

/// The arguments of a cluster node with bus port `cport`.
fn node_args(cport: u16, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
        "--repl-diskless-sync-delay",
        "0",
        "--cluster-port",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(cport.to_string());
    args.extend(extra.iter().cloned());
    args
}

/// Starts one node on free ports, retrying when a port was taken meanwhile.
fn start_node(extra: &[String]) -> Node {
    let mut last = String::new();
    for _ in 0..5 {
        let (port, cport) = (free_port(), free_port());
        if port == cport {
            continue;
        }
        let options = Options {
            args: node_args(cport, extra),
            port: Some(port),
            dir: Some(Arc::new(TempDir::new().expect("a temp dir"))),
            ..Options::default()
        };
        match Server::try_start(options.clone()) {
            Ok(server) => {
                let id = server.admin().call(&["CLUSTER", "MYID"]).text();
                return Node { server: Some(server), port, cport, id, options };
            }
            Err(log) if log.contains("Address already in use") => last = log,
            Err(log) => panic!("a cluster node did not start:\n{log}"),
        }
    }
    panic!("a cluster node did not start:\n{last}");
}

impl Cluster {
    /// `primaries` primaries sharing the 16384 slots, each with
    /// `replicas_per_primary` replicas; every node gets `extra` arguments.
    /// Returns once every node knows every other, every node agrees on the
    /// roles, `cluster_state:ok` everywhere and every replica is linked.
    pub fn start(primaries: usize, replicas_per_primary: usize, extra: &[&str]) -> Cluster {
        assert!(primaries > 0, "a cluster needs a primary");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let total = primaries * (1 + replicas_per_primary);
        let nodes = (0..total).map(|_| start_node(&extra)).collect();
        let cluster = Cluster { nodes, extra };
        for (i, node) in cluster.nodes.iter().enumerate() {
            let mut a = cluster.node(i);
            // Distinct epochs, as redis-cli gives them: no collision to resolve.
            assert_eq!(a.call(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]), Reply::ok());
            if i < primaries {
                let (first, last) = (i * SLOTS / primaries, (i + 1) * SLOTS / primaries - 1);
                assert_eq!(
                    a.call(&["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()]),
                    Reply::ok(),
                    "node {} ({})",
                    i,
                    node.id
                );
            }
        }
        for i in 1..total {
            cluster.meet(i, 0);
        }
        cluster.wait_all_known();
        for p in 0..primaries {
            for r in 0..replicas_per_primary {
                let replica = primaries + p * replicas_per_primary + r;
                let primary_id = cluster.nodes[p].id.clone();
                assert_eq!(cluster.node(replica).call(&["CLUSTER", "REPLICATE", &primary_id]), Reply::ok());
            }
        }
        cluster.wait_healthy();
        cluster
    }

    /// Node `i` asks to meet node `j`.
    fn meet(&self, i: usize, j: usize) {
        let (port, cport) = (self.nodes[j].port.to_string(), self.nodes[j].cport.to_string());
        assert_eq!(self.node(i).call(&["CLUSTER", "MEET", "127.0.0.1", &port, &cport]), Reply::ok());
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// An admin connection (unix socket) to node `i`.
    pub fn node(&self, i: usize) -> Client {
        self.server(i).admin()
    }

    pub fn server(&self, i: usize) -> &Server {
        self.nodes[i].server.as_ref().unwrap_or_else(|| panic!("node {i} is not running"))
    }

    pub fn id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }

    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// `127.0.0.1:port` of node `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    /// The indexes of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.nodes[i].server.is_some()).collect()
    }

    /// `CLUSTER NODES` of node `i`: id → (flags, primary id or "-", link state).
    pub fn cluster_nodes(&self, i: usize) -> Vec<(String, String, String, String)> {
        let text = self.node(i).call(&["CLUSTER", "NODES"]).text();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.len() >= 8).then(|| (f[0].to_string(), f[2].to_string(), f[3].to_string(), f[7].to_string()))
            })
            .collect()
    }

    /// Whether node `i` is a replica, as it says itself.
    pub fn is_replica(&self, i: usize) -> bool {
        self.cluster_nodes(i).iter().any(|(_, flags, _, _)| flags.contains("myself") && flags.contains("slave"))
    }

    /// Waits until every running node lists every running node, none in
    /// handshake, without an address or failing, all links connected.
    pub fn wait_all_known(&self) {
        let running: Vec<String> = self.running().into_iter().map(|i| self.nodes[i].id.clone()).collect();
        wait_long("every node to know every other node", || {
            self.running()
                .into_iter()
                .all(|i| {
                    let listed = self.cluster_nodes(i);
                    running.iter().all(|id| {
                        listed.iter().any(|(lid, flags, _, link)| {
                            lid == id
                                && !flags.contains("handshake")
                                && !flags.contains("noaddr")
                                && !flags.contains("fail")
                                && link == "connected"
                        })
                    })
                })
                .then_some(())
        });
    }

    /// Waits until every running node says `cluster_state:ok`, agrees with
    /// node 0 on every node's role and primary, and every replica's link
    /// to its primary is up.
    pub fn wait_healthy(&self) {
        self.wait_all_known();
        let running = self.running();
        wait_long("every node to agree on the roles and cluster_state:ok", || {
            let roles = |i: usize| -> Vec<(String, bool, String)> {
                let mut r: Vec<(String, bool, String)> = self
                    .cluster_nodes(i)
                    .into_iter()
                    .filter(|(id, _, _, _)| running.iter().any(|&j| &self.nodes[j].id == id))
                    .map(|(id, flags, primary, _)| (id, flags.contains("slave"), primary))
                    .collect();
                r.sort();
                r
            };
            let first = roles(running[0]);
            let agree = running.iter().all(|&i| roles(i) == first);
            let ok =
                running.iter().all(|&i| self.node(i).call(&["CLUSTER", "INFO"]).text().contains("cluster_state:ok"));
            let linked = running.iter().all(|&i| {
                let info = self.node(i).call(&["INFO", "replication"]).text();
                !info.contains("role:slave") || info.contains("master_link_status:up")
            });
            (agree && ok && linked).then_some(())
        });
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.nodes[i].server.take() {
            s.kill();
        }
    }

    /// Starts node `i` again from its own directory (its `nodes.conf`), on
    /// its own ports, with its original arguments.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let server = Server::try_start(self.nodes[i].options.clone())
            .unwrap_or_else(|log| panic!("node {i} did not restart:\n{log}"));
        self.nodes[i].server = Some(server);
    }

    /// Starts a new empty node (with the cluster's extra arguments and
    /// `args`) and has it meet node 0; returns its index once every node
    /// knows it.
    pub fn add_node(&mut self, args: &[&str]) -> usize {
        let mut extra = self.extra.clone();
        extra.extend(args.iter().map(|s| s.to_string()));
        let node = start_node(&extra);
        self.nodes.push(node);
        let i = self.len() - 1;
        self.meet(i, 0);
        self.wait_all_known();
        i
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The tests keep no data: a kill is the quickest clean-up.
        for node in &mut self.nodes {
            if let Some(mut s) = node.server.take() {
                s.kill();
            }
        }
    }
}

/// A group as node `i` holds it (sorted entries; empty: no such group).
pub fn group(c: &Cluster, i: usize, name: &str) -> Vec<String> {
    match c.node(i).call(&["WHITELIST.GET", name]) {
        Reply::Array(items) => {
            let mut v: Vec<String> = items.iter().map(Reply::text).collect();
            v.sort();
            v
        }
        Reply::Nil => Vec::new(),
        other => panic!("node {i}: WHITELIST.GET {name}: {other:?}"),
    }
}

/// Entries as [`group`] gives them: sorted strings.
pub fn strings(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Waits until every running node holds `name` as `want`; returns how long
/// it took.
pub fn wait_everywhere(c: &Cluster, name: &str, want: &[String]) -> Duration {
    let start = Instant::now();
    wait_long(&format!("every node to hold {name} = {want:?}"), || {
        c.running().iter().all(|&i| group(c, i, name) == want).then_some(())
    });
    start.elapsed()
}

/// Node `i`'s own `(version, fingerprint)`: the first row of its
/// `WHITELIST.CLUSTER` (RESP2).
pub fn digest(c: &Cluster, i: usize) -> (i64, String) {
    let reply = c.node(i).call(&["WHITELIST.CLUSTER"]);
    let Reply::Array(rows) = reply else { panic!("{reply:?}") };
    let Reply::Array(me) = &rows[0] else { panic!("{rows:?}") };
    (me[7].int(), me[9].text())
}

/// Every running node's digest, once all are equal.
pub fn wait_same_digest(c: &Cluster) -> (i64, String) {
    wait_long("every node to have the same digest", || {
        let digests: std::collections::BTreeSet<(i64, String)> = c.running().iter().map(|&i| digest(c, i)).collect();
        (digests.len() == 1).then(|| digests.into_iter().next().expect("one"))
    })
}

/// Node `i`'s `whitelist_version`.
pub fn version(c: &Cluster, i: usize) -> i64 {
    super::counter(&mut c.node(i), "whitelist_version") as i64
}

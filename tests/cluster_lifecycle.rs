//! The cluster whitelist (§12) through a node's life: `IMPORT` and
//! `IFVERSION` against the cluster-wide version, AOF replay and rewrite of
//! merges, client pauses, and resharding while the whitelist is enforced.

mod common;

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::cluster::{digest, group, strings, version, wait_everywhere, wait_long, Cluster};
use common::{counter, flavor, Reply};

fn wait_version_everywhere(c: &Cluster, v: i64) {
    wait_long(&format!("every node at version {v}"), || c.running().iter().all(|&i| version(c, i) == v).then_some(()));
}

#[test]
fn import_and_ifversion_use_the_cluster_version() {
    let c = Cluster::start(2, 0, &[]);
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "office", "10.0.0.1"]), Reply::Int(1));
    wait_version_everywhere(&c, 1);

    // An IMPORT is a change of every group it touches; its document's own
    // version is ignored (the clock moves by one), IFVERSION compares with
    // the clock.
    let doc = r#"{"version":1000,"groups":[{"name":"lab","entries":["10.9.0.0/16"]}]}"#;
    assert_eq!(c.node(1).call(&["WHITELIST.IMPORT", doc, "IFVERSION", "1"]), Reply::Int(2));
    wait_everywhere(&c, "lab", &strings(&["10.9.0.0/16"]));
    wait_everywhere(&c, "office", &[]);
    wait_version_everywhere(&c, 2);
    assert_eq!(
        c.node(0).call(&["WHITELIST.IMPORT", doc, "IFVERSION", "1"]),
        Reply::err("ERR whitelist version is 2, not 1 (IFVERSION): export it again and retry")
    );
    assert_eq!(c.node(0).call(&["WHITELIST.LIST"]), Reply::strings(&["lab"]));
}

#[test]
fn merges_survive_aof_replay_and_rewrite() {
    // Every write reaches the file before the next event loop turn: with
    // `everysec` a busy disk lets Redis hold back its writes for up to two
    // seconds, and the kill below would lose them.
    let mut c =
        Cluster::start(2, 0, &["--appendonly", "yes", "--aof-use-rdb-preamble", "no", "--appendfsync", "always"]);
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "office", "10.0.0.1,10.0.0.2"]), Reply::Int(2));
    assert_eq!(c.node(1).call(&["WHITELIST.SET", "lab", "10.9.0.0/16"]), Reply::Int(1));
    wait_everywhere(&c, "office", &strings(&["10.0.0.1", "10.0.0.2"]));
    wait_everywhere(&c, "lab", &strings(&["10.9.0.0/16"]));
    assert_eq!(c.node(0).call(&["WHITELIST.DEL", "office"]), Reply::Int(1));
    wait_everywhere(&c, "office", &[]);
    let v = version(&c, 0);
    wait_version_everywhere(&c, v);
    let before = digest(&c, 0);

    // Killed and started again: the AOF replays the merges (node 1's
    // included, installed as they were) to the same state and digest.
    c.restart(0);
    c.wait_healthy();
    assert_eq!(group(&c, 0, "lab"), strings(&["10.9.0.0/16"]));
    assert_eq!(group(&c, 0, "office"), Vec::<String>::new());
    assert_eq!(digest(&c, 0), before);

    // A rewrite without the RDB preamble carries the whole state as one
    // merge, revisions and tombstones included.
    assert!(c.node(0).call(&["BGREWRITEAOF"]).text().contains("rewriting"));
    wait_long("the rewrite to end and carry the whitelist", || {
        let info = c.node(0).call(&["INFO", "persistence"]).text();
        (info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0")).then_some(())
    });
    sleep(Duration::from_millis(300));
    c.restart(0);
    c.wait_healthy();
    assert_eq!(group(&c, 0, "lab"), strings(&["10.9.0.0/16"]));
    assert_eq!(digest(&c, 0), before);
}

#[test]
fn a_merge_waits_for_a_client_pause_to_end() {
    let c = Cluster::start(2, 0, &[]);
    assert_eq!(c.node(1).call(&["CLIENT", "PAUSE", "20000", "WRITE"]), Reply::ok());
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "office", "10.0.0.1"]), Reply::Int(1));
    // Pulled (the digests still flow) but neither applied nor propagated
    // while writes are paused.
    sleep(Duration::from_secs(2));
    assert_eq!(group(&c, 1, "office"), Vec::<String>::new());
    assert_eq!(version(&c, 1), 0);
    assert_eq!(c.node(1).call(&["CLIENT", "UNPAUSE"]), Reply::ok());
    let start = Instant::now();
    wait_everywhere(&c, "office", &strings(&["10.0.0.1"]));
    assert!(start.elapsed() < Duration::from_secs(1), "applied {:?} after the pause", start.elapsed());
    wait_version_everywhere(&c, 1);
}

#[test]
fn resharding_works_while_the_whitelist_admits_the_nodes() {
    let c = Cluster::start(3, 0, &["--whitelist.allow-loopback", "no"]);
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "nodes", "127.0.0.1"]), Reply::Int(1));
    wait_everywhere(&c, "nodes", &strings(&["127.0.0.1"]));
    // Keys in node 0's slots (hash tags {a}.. pick slots; write where they live).
    let slot_of = |key: &str| c.node(0).call(&["CLUSTER", "KEYSLOT", key]).int();
    let keys: Vec<String> = (0..2000).map(|i| format!("key:{i}")).filter(|k| slot_of(k) < 100).collect();
    assert!(!keys.is_empty());
    for k in &keys {
        assert_eq!(c.node(0).call(&["SET", k, "v"]), Reply::ok());
    }
    let target = format!("127.0.0.1:{}", c.nodes[0].port);
    let out = Command::new("redis-cli")
        .args(["--cluster", "reshard", &target, "--cluster-from", c.id(0), "--cluster-to", c.id(1)])
        .args(["--cluster-slots", "100", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    c.wait_healthy();
    for k in &keys {
        assert_eq!(c.node(1).call(&["GET", k]), Reply::bulk("v"), "{k} on {}", flavor().describe());
    }
    // The nodes' own connections were admitted, none refused.
    for i in 0..c.len() {
        assert_eq!(counter(&mut c.node(i), "whitelist_connections_denied"), 0, "node {i}");
    }
}

#[test]
fn groups_from_before_cluster_mode_are_adopted_by_their_primary() {
    // A whitelist kept outside cluster mode (no revisions) ...
    let s = common::Server::start(&[]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "office", "10.0.0.1"]), Reply::Int(1));
    assert_eq!(s.admin().call(&["WHITELIST.SET", "lab", "10.9.0.0/16"]), Reply::Int(1));
    let cport = common::free_port().to_string();
    // ... is loaded by the same server started as a one-node cluster: at its
    // first digest it stamps the groups as its own change, so a node that
    // holds other content under the same names cannot look in sync.
    let args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", &cport];
    let node = s.restart(&args);
    let mut a = node.admin();
    assert_eq!(a.call(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), Reply::ok());
    assert_eq!(counter(&mut a, "whitelist_version"), 2);
    node.wait_log("cluster mode: 2 group(s) held from before take revision 3 of this node");
    assert_eq!(counter(&mut a, "whitelist_version"), 3);
    let Reply::Array(rows) = a.call(&["WHITELIST.CLUSTER"]) else { panic!("rows") };
    let Reply::Array(me) = &rows[0] else { panic!("{rows:?}") };
    assert_eq!(me[7], Reply::Int(3));
    // Saved with its revisions: a restart does not adopt them again.
    let node = node.restart(&args);
    assert_eq!(counter(&mut node.admin(), "whitelist_version"), 3);
    std::thread::sleep(Duration::from_secs(6));
    // The log file is the same one: the line of the first start only.
    assert_eq!(node.log().matches("held from before").count(), 1, "{}", node.log());
    assert_eq!(counter(&mut node.admin(), "whitelist_version"), 3);
}

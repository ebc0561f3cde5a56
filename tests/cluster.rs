//! Redis Cluster (§12): the module on every node of a real cluster, the
//! digests every node broadcasts over the cluster bus, `WHITELIST.CLUSTER`
//! and the cluster fields of `INFO whitelist`.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::cluster::{wait_long, Cluster};
use common::{counter, flavor, info_of, Reply, Server};

/// The fields of one `WHITELIST.CLUSTER` element, in order.
const FIELDS: [&str; 7] = ["id", "addr", "role", "version", "fingerprint", "in-sync", "last-seen"];

/// One node as `WHITELIST.CLUSTER` shows it.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    id: String,
    addr: String,
    role: String,
    version: i64,
    fingerprint: String,
    in_sync: i64,
    last_seen: i64,
}

/// Reads a RESP2 (flat array) or RESP3 (map) element, checking the field
/// names and their order.
fn row(reply: &Reply) -> Row {
    let pairs: Vec<(Reply, Reply)> = match reply {
        Reply::Array(flat) => flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
        Reply::Map(pairs) => pairs.clone(),
        other => panic!("a node is neither an array nor a map: {other:?}"),
    };
    let names: Vec<String> = pairs.iter().map(|(k, _)| k.text()).collect();
    assert_eq!(names, FIELDS, "{reply:?}");
    Row {
        id: pairs[0].1.text(),
        addr: pairs[1].1.text(),
        role: pairs[2].1.text(),
        version: pairs[3].1.int(),
        fingerprint: pairs[4].1.text(),
        in_sync: pairs[5].1.int(),
        last_seen: pairs[6].1.int(),
    }
}

fn rows(reply: &Reply) -> Vec<Row> {
    match reply {
        Reply::Array(items) => items.iter().map(row).collect(),
        other => panic!("WHITELIST.CLUSTER did not answer an array: {other:?}"),
    }
}

fn whitelist_cluster(c: &Cluster, i: usize) -> Vec<Row> {
    rows(&c.node(i).call(&["WHITELIST.CLUSTER"]))
}

/// Every node's id, address and role as the cluster itself has them.
fn expected_nodes(c: &Cluster) -> Vec<(String, String, String)> {
    (0..c.len())
        .map(|i| (c.id(i).to_string(), c.addr(i), if c.is_replica(i) { "replica" } else { "primary" }.to_string()))
        .collect()
}

/// Waits until node `i` lists exactly the nodes of `expected`, itself
/// first, and shows every one in sync with a digest of the last 6 s.
fn wait_in_sync(c: &Cluster, i: usize, expected: &[(String, String, String)]) -> Vec<Row> {
    wait_long(&format!("node {i} to show every node in sync"), || {
        let shown = whitelist_cluster(c, i);
        let mut listed: Vec<(String, String, String)> =
            shown.iter().map(|r| (r.id.clone(), r.addr.clone(), r.role.clone())).collect();
        listed.sort();
        let mut want = expected.to_vec();
        want.sort();
        (listed == want && shown.iter().all(|r| r.in_sync == 1 && r.last_seen < 6_000)).then_some(shown)
    })
}

fn is_hex16(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn outside_cluster_mode_there_is_no_cluster() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.CLUSTER"]), Reply::err("ERR this server is not in cluster mode"));
    assert_eq!(
        a.call(&["WHITELIST.CLUSTER", "x"]),
        Reply::err("ERR wrong number of arguments for 'whitelist.cluster' command")
    );
    let info = info_of(&mut a);
    assert!(info.contains_key("whitelist_version"), "{info:?}");
    assert!(info.keys().all(|k| !k.starts_with("whitelist_cluster")), "{info:?}");
    assert!(!s.log().contains("cluster bus"), "{}", s.log());
}

#[test]
fn every_node_lists_the_cluster_and_gets_in_sync_over_the_bus() {
    let c = Cluster::start(3, 1, &[]);
    let healthy = Instant::now();
    let expected = expected_nodes(&c);
    assert_eq!(expected.iter().filter(|n| n.2 == "primary").count(), 3, "{expected:?}");
    for i in 0..c.len() {
        assert!(c.server(i).log().contains("the whitelist is shared over the cluster bus"), "node {i}");
    }

    // Every node shows all six, itself first, and all in sync: digests
    // went both ways between every pair within about one period.
    for i in 0..c.len() {
        let shown = wait_in_sync(&c, i, &expected);
        let me = &shown[0];
        assert_eq!((me.id.as_str(), me.last_seen), (c.id(i), 0), "node {i}: {shown:?}");
        for r in &shown {
            assert!(is_hex16(&r.fingerprint), "{r:?}");
            assert_eq!((r.version, &r.fingerprint), (me.version, &me.fingerprint), "{r:?}");
            assert!(r.last_seen >= 0 && r.last_seen < 6_000, "node {i}: {r:?}");
        }
    }
    assert!(healthy.elapsed() < Duration::from_secs(12), "in sync after {:?}", healthy.elapsed());

    // INFO whitelist's cluster fields.
    for i in 0..c.len() {
        let info = info_of(&mut c.node(i));
        let field = |name: &str| info.get(name).cloned().unwrap_or_else(|| panic!("node {i}: no {name} in {info:?}"));
        assert_eq!(field("whitelist_cluster_enabled"), "1");
        assert_eq!(field("whitelist_cluster_nodes"), "6");
        assert_eq!(field("whitelist_cluster_nodes_in_sync"), "6");
        assert_eq!(field("whitelist_cluster_conflicts"), "0");
        let sent: u64 = field("whitelist_cluster_messages_sent").parse().expect("a number");
        let received: u64 = field("whitelist_cluster_messages_received").parse().expect("a number");
        // Each node heard the digest of each of the five others at least once.
        assert!(sent >= 1 && received >= 5, "node {i}: sent {sent}, received {received}");
    }

    // RESP3: a map per node, the same fields in the same order.
    let mut a = c.node(3);
    assert!(matches!(a.call(&["HELLO", "3"]), Reply::Map(_)));
    let reply = a.call(&["WHITELIST.CLUSTER"]);
    let Reply::Array(items) = &reply else { panic!("{reply:?}") };
    assert!(items.iter().all(|i| matches!(i, Reply::Map(_))), "{reply:?}");
    assert_eq!(rows(&reply).len(), 6);

    // Idle traffic: one digest per node per 5 s (4.5–5.5 s jittered), and
    // nothing else while the nodes agree.
    let before: Vec<(u64, u64)> = (0..c.len())
        .map(|i| {
            let mut a = c.node(i);
            (counter(&mut a, "whitelist_cluster_messages_sent"), counter(&mut a, "whitelist_cluster_messages_received"))
        })
        .collect();
    sleep(Duration::from_secs(11));
    for (i, (sent0, received0)) in before.into_iter().enumerate() {
        let mut a = c.node(i);
        let sent = counter(&mut a, "whitelist_cluster_messages_sent") - sent0;
        let received = counter(&mut a, "whitelist_cluster_messages_received") - received0;
        assert!((1..=4).contains(&sent), "node {i} sent {sent} in 11 s on {}", flavor().describe());
        assert!((5..=20).contains(&received), "node {i} received {received} in 11 s on {}", flavor().describe());
    }
}

#[test]
fn added_failed_over_and_restarted_nodes_are_shown() {
    let mut c = Cluster::start(3, 1, &[]);
    let expected = expected_nodes(&c);
    for i in 0..c.len() {
        wait_in_sync(&c, i, &expected);
    }

    // A node that joins with CLUSTER MEET (no slots: a primary) is listed
    // everywhere and in sync once digests flowed.
    let added = c.add_node(&[]);
    let expected = expected_nodes(&c);
    assert_eq!(expected[added].2, "primary");
    for i in 0..c.len() {
        wait_in_sync(&c, i, &expected);
    }

    // Primary 1 is killed: it stays listed (the cluster still knows it),
    // out of sync once the others see it failing, and its replica (node 4)
    // is shown as the primary once promoted.
    c.kill(1);
    let gone = c.id(1).to_string();
    let promoted = c.id(4).to_string();
    let shown = wait_long("node 1 out of sync and node 4 primary on node 0", || {
        let shown = whitelist_cluster(&c, 0);
        let down = shown.iter().any(|r| r.id == gone && r.in_sync == 0);
        let up = shown.iter().any(|r| r.id == promoted && r.role == "primary");
        (down && up).then_some(shown)
    });
    let old = shown.iter().find(|r| r.id == gone).expect("listed");
    assert_eq!(old.addr, c.addr(1), "{old:?}");
    assert!(old.last_seen > 1_000, "{old:?}");

    // Restarted from its own directory: the same id, now a replica of its
    // old replica, heard again by every node.
    c.restart(1);
    c.wait_healthy();
    assert_eq!(c.node(1).call(&["CLUSTER", "MYID"]).text(), gone);
    let expected = expected_nodes(&c);
    assert_eq!(expected[1].2, "replica", "{expected:?}");
    assert_eq!(expected[4].2, "primary", "{expected:?}");
    for i in 0..c.len() {
        wait_in_sync(&c, i, &expected);
    }
}

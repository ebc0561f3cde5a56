//! One whitelist for the whole cluster (§12): a change on one primary is
//! merged by every other primary over the bus and reaches every replica
//! through replication; concurrent changes merge per group; a node that
//! missed changes catches up; the node guard; `WHITELIST.MERGE` is internal.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{group, strings, version, wait_everywhere, wait_long, wait_same_digest, Cluster};
use common::{counter, flavor, Reply};

#[test]
fn a_change_on_one_primary_is_enforced_on_every_node() {
    let c = Cluster::start(3, 1, &["--whitelist.allow-loopback", "no"]);
    let want = strings(&["127.0.0.1", "127.0.0.2"]);
    assert_eq!(c.node(1).call(&["WHITELIST.SET", "office", "127.0.0.1,127.0.0.2"]), Reply::Int(2));
    let took = wait_everywhere(&c, "office", &want);
    // §12's target, within 1 s, is measured by `make bench-cluster` on a
    // quiet machine (median 24 ms). Here three servers' suites share two
    // cores (one run took 1.03 s), and Valkey 8.1.8 may close a fresh bus
    // link whose first message is a module message, losing it; what the
    // test holds is that the change travels on its own announcements,
    // before the first periodic digest (4.5 s at the earliest).
    assert!(took < Duration::from_secs(4), "took {took:?} on {}", flavor().describe());

    // Enforced everywhere: 127.0.0.3 is refused by every node, primaries
    // and replicas, 127.0.0.2 served.
    for i in 0..c.len() {
        let mut denied = c.server(i).connect_from("127.0.0.3");
        assert!(denied.closed_within(Duration::from_secs(5)), "node {i} kept 127.0.0.3");
        let mut allowed = c.server(i).connect_from("127.0.0.2");
        assert_eq!(allowed.call(&["PING"]), Reply::Status("PONG".into()), "node {i}");
    }

    // The same version everywhere: the Lamport clock, one change made.
    let (v, _) = wait_same_digest(&c);
    assert_eq!(v, 1);
    for i in 0..c.len() {
        assert_eq!(version(&c, i), 1, "node {i}");
    }
    // The origin's audit line, and one line on each other primary naming it.
    let origin = c.id(1).to_string();
    assert!(c.server(1).log().contains("WHITELIST.SET office by"), "{}", c.server(1).log());
    // The line gives the origin's address when the server can tell it at
    // that moment (a node it has only just heard of may have none yet).
    for i in [0, 2] {
        let line = format!("WHITELIST.MERGE office replaced from node {origin}");
        let named = wait_long(&format!("node {i} to log {line}"), || {
            let log = c.server(i).log();
            log.find(&line).map(|at| log[at + line.len()..].chars().take(24).collect::<String>())
        });
        let address = format!(" (127.0.0.1:{}):", c.nodes[1].port);
        assert!(named.starts_with(&address) || named.starts_with(':'), "node {i}: {line}{named}");
    }

    // A deletion travels too (a tombstone), and an ordinary client may not
    // send a merge itself.
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "ops", "127.0.0.1"]), Reply::Int(1));
    wait_everywhere(&c, "ops", &strings(&["127.0.0.1"]));
    assert_eq!(c.node(2).call(&["WHITELIST.DEL", "ops"]), Reply::Int(1));
    wait_everywhere(&c, "ops", &[]);
    assert_eq!(wait_same_digest(&c).0, 3);
    assert_eq!(c.node(0).call(&["WHITELIST.MERGE", "x"]), Reply::err("ERR WHITELIST.MERGE is internal"));
    assert_eq!(c.node(0).call(&["WHITELIST.LIST"]), Reply::strings(&["office"]));
}

#[test]
fn concurrent_changes_merge_per_group_and_conflicts_are_counted() {
    let c = Cluster::start(3, 1, &["--enable-debug-command", "yes"]);
    // Two groups on two primaries at once: both survive everywhere.
    let (mut p0, mut p1) = (c.node(0), c.node(1));
    p0.send(&[b"WHITELIST.SET", b"alpha", b"10.0.0.1"]).expect("sent");
    p1.send(&[b"WHITELIST.SET", b"beta", b"10.0.0.2"]).expect("sent");
    assert_eq!(p0.read_reply().expect("a reply"), Reply::Int(1));
    assert_eq!(p1.read_reply().expect("a reply"), Reply::Int(1));
    wait_everywhere(&c, "alpha", &strings(&["10.0.0.1"]));
    wait_everywhere(&c, "beta", &strings(&["10.0.0.2"]));

    // One group on two primaries at once: one state everywhere, and the
    // change that lost is counted where it was overwritten.
    // Truly concurrent: primary 1 sleeps with its SET queued behind the
    // sleep on the same connection, so it runs that SET as soon as it wakes,
    // before it can have pulled primary 0's change made meanwhile.
    p1.send(&[b"DEBUG", b"SLEEP", b"0.5"]).expect("sent");
    p1.send(&[b"WHITELIST.SET", b"gamma", b"10.0.2.2"]).expect("sent");
    std::thread::sleep(Duration::from_millis(100));
    p0.send(&[b"WHITELIST.SET", b"gamma", b"10.0.1.1"]).expect("sent");
    assert_eq!(p0.read_reply().expect("a reply"), Reply::Int(1));
    assert_eq!(p1.read_reply().expect("a reply"), Reply::ok());
    assert_eq!(p1.read_reply().expect("a reply"), Reply::Int(1));
    wait_same_digest(&c);
    let held = group(&c, 0, "gamma");
    assert!(held == strings(&["10.0.1.1"]) || held == strings(&["10.0.2.2"]), "{held:?}");
    wait_everywhere(&c, "gamma", &held);
    let conflicts: u64 = (0..3).map(|i| counter(&mut c.node(i), "whitelist_cluster_conflicts")).sum();
    assert!(conflicts >= 1, "no conflict counted on {}", flavor().describe());
    let logged = (0..3).any(|i| c.server(i).log().contains("cluster conflict on group gamma: the change"));
    assert!(logged, "no conflict logged");
    // Both replicas and primaries agree on the version: the clock.
    let (v, _) = wait_same_digest(&c);
    for i in 0..c.len() {
        assert_eq!(version(&c, i), v, "node {i}");
    }
}

#[test]
fn a_node_that_missed_changes_catches_up() {
    // No replicas: a stopped primary is not failed over, it comes back.
    let mut c = Cluster::start(3, 0, &[]);
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "office", "10.0.0.1"]), Reply::Int(1));
    wait_everywhere(&c, "office", &strings(&["10.0.0.1"]));
    assert_eq!(c.node(2).call(&["SAVE"]), Reply::ok());

    // Node 2 is down while two changes are made; it restarts from its own
    // (stale) RDB and converges within 10 s.
    c.kill(2);
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "office", "10.0.0.1,10.0.0.9"]), Reply::Int(2));
    assert_eq!(c.node(1).call(&["WHITELIST.SET", "lab", "10.9.0.0/16"]), Reply::Int(1));
    wait_everywhere(&c, "lab", &strings(&["10.9.0.0/16"]));
    c.restart(2);
    let back = Instant::now();
    assert_eq!(group(&c, 2, "office"), strings(&["10.0.0.1"]), "the stale state first");
    wait_everywhere(&c, "office", &strings(&["10.0.0.1", "10.0.0.9"]));
    wait_everywhere(&c, "lab", &strings(&["10.9.0.0/16"]));
    assert!(back.elapsed() < Duration::from_secs(10), "converged after {:?}", back.elapsed());
    // Lamport revisions: the second change took 3 unless node 1 had not yet
    // seen the first when it made it (then both took 2).
    let (v, _) = wait_same_digest(&c);
    assert!(v == 2 || v == 3, "version {v}");

    // A node added with CLUSTER MEET converges too.
    let added = c.add_node(&[]);
    let start = Instant::now();
    wait_long("the added node to hold the whitelist", || {
        (group(&c, added, "office") == strings(&["10.0.0.1", "10.0.0.9"])
            && group(&c, added, "lab") == strings(&["10.9.0.0/16"]))
        .then_some(())
    });
    assert!(start.elapsed() < Duration::from_secs(10), "converged after {:?}", start.elapsed());
    assert_eq!(version(&c, added), v);

    // The node guard: the nodes connect to each other's client ports, so a
    // change that would deny one needs FORCE.
    assert_eq!(c.node(0).call(&["WHITELIST.ADD", "office", "127.0.0.1"]), Reply::Int(1));
    assert_eq!(c.node(0).call(&["CONFIG", "SET", "whitelist.allow-loopback", "no"]), Reply::ok());
    let reply = c.node(0).call(&["WHITELIST.REMOVE", "office", "127.0.0.1"]);
    let texts: Vec<String> = c
        .nodes
        .iter()
        .map(|n| format!("ERR this change would deny cluster node 127.0.0.1:{}; add FORCE to apply it anyway", n.port))
        .collect();
    assert!(texts.iter().any(|t| reply == Reply::err(t)), "{reply:?}");
    assert_eq!(group(&c, 0, "office"), strings(&["10.0.0.1", "10.0.0.9", "127.0.0.1"]));
    assert_eq!(c.node(0).call(&["WHITELIST.REMOVE", "office", "127.0.0.1", "FORCE"]), Reply::Int(1));
    wait_everywhere(&c, "office", &strings(&["10.0.0.1", "10.0.0.9"]));
}

#[test]
fn a_failover_keeps_the_whitelist() {
    let mut c = Cluster::start(3, 1, &["--whitelist.allow-loopback", "no"]);
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "nodes", "127.0.0.1"]), Reply::Int(1));
    wait_everywhere(&c, "nodes", &strings(&["127.0.0.1"]));

    // Primary 0 dies: its replica (node 3) is promoted with the whitelist,
    // and a change made there reaches everyone.
    c.kill(0);
    wait_long("node 3 promoted", || (!c.is_replica(3)).then_some(()));
    assert_eq!(group(&c, 3, "nodes"), strings(&["127.0.0.1"]));
    assert_eq!(c.node(3).call(&["WHITELIST.ADD", "nodes", "127.0.0.5"]), Reply::Int(1));
    wait_everywhere(&c, "nodes", &strings(&["127.0.0.1", "127.0.0.5"]));
    let mut denied = c.server(1).connect_from("127.0.0.6");
    assert!(denied.closed_within(Duration::from_secs(5)));
}

#[test]
fn expiry_is_no_change_for_the_merge() {
    let c = Cluster::start(2, 1, &[]);
    assert_eq!(c.node(0).call(&["WHITELIST.SET", "office", "10.0.0.1"]), Reply::Int(1));
    assert_eq!(c.node(0).call(&["WHITELIST.ADD", "office", "10.0.0.2", "TTL", "5"]), Reply::Int(1));
    wait_everywhere(&c, "office", &strings(&["10.0.0.1", "10.0.0.2"]));
    let (v, fingerprint) = wait_same_digest(&c);
    assert_eq!(v, 2);
    // Every primary removes the entry by its own clock, its replica follows;
    // neither the version nor the fingerprint moves, and nobody conflicts.
    wait_everywhere(&c, "office", &strings(&["10.0.0.1"]));
    assert_eq!(wait_same_digest(&c), (v, fingerprint));
    for i in 0..c.len() {
        assert_eq!(version(&c, i), 2, "node {i}");
        assert_eq!(counter(&mut c.node(i), "whitelist_cluster_conflicts"), 0, "node {i}");
        assert_eq!(counter(&mut c.node(i), "whitelist_entries_expired"), u64::from(!c.is_replica(i)), "node {i}");
    }
}

//! Replication against real servers: full sync, the live stream,
//! LOADCLIENTS propagation, replica lock-out protection, enforcement on the
//! replica, and limits that do not apply to replicated commands.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{wait_for, Reply, Server};

/// Without it the master waits 5 s before a diskless full sync.
const FAST_SYNC: &[&str] = &["--repl-diskless-sync-delay", "0"];
const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];

fn start_master(extra: &[&str]) -> Server {
    let args: Vec<&str> = FAST_SYNC.iter().chain(extra).copied().collect();
    Server::start(&args)
}

/// A replica of `master` with `extra` arguments, its link up.
fn start_replica(master: &Server, extra: &[&str]) -> Server {
    let replicaof = format!("127.0.0.1 {}", master.port);
    let mut args = vec!["--replicaof", replicaof.as_str()];
    args.extend_from_slice(extra);
    let replica = Server::start(&args);
    wait_link(&replica, "up");
    replica
}

/// `INFO replication` as a map.
fn replication(s: &Server) -> HashMap<String, String> {
    let text = s.admin().call(&["INFO", "replication"]).text();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim_end().to_string())).collect()
}

fn wait_link(replica: &Server, status: &str) {
    wait_for(&format!("master_link_status:{status}"), || {
        (replication(replica).get("master_link_status").map(String::as_str) == Some(status)).then_some(())
    });
}

fn export(s: &Server) -> String {
    s.admin().call(&["WHITELIST.EXPORT"]).text()
}

fn version(s: &Server) -> String {
    s.info_field("whitelist_version")
}

/// Waits until the replica's whitelist is `expected`, and checks that the
/// master's is too.
fn wait_replica_has(master: &Server, replica: &Server, expected: &str) {
    assert_eq!(export(master), expected);
    wait_for(&format!("the replica to hold {expected}"), || (export(replica) == expected).then_some(()));
    assert_eq!(version(replica), version(master));
}

/// The replicas connected to `master`, from `CLIENT LIST TYPE replica`:
/// (address, client id).
fn replica_clients(master: &Server) -> Vec<(String, String)> {
    let text = master.admin().call(&["CLIENT", "LIST", "TYPE", "replica"]).text();
    text.lines()
        .map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .unwrap_or_else(|| panic!("no {name} in {line}"))
                    .to_string()
            };
            (field("addr"), field("id"))
        })
        .collect()
}

/// A full sync, the replica loading it with `repl-diskless-load` set to `load`.
fn full_sync_replaces_the_replicas_whitelist(load: &str) {
    let master = start_master(&[]);
    let mut m = master.admin();
    assert_eq!(m.call(&["WHITELIST.SET", "zz", "10.9.9.9,10.1.1.1,2001:db8::1"]), Reply::Int(3));
    assert_eq!(m.call(&["WHITELIST.SET", "sys", "172.16.0.0/12", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    assert_eq!(m.call(&["WHITELIST.REMOVE", "zz", "10.1.1.1"]), Reply::Int(1));
    let expected = concat!(
        r#"{"groups":[{"attribute":"hidden","entries":["172.16.0.0/12"],"name":"sys"},"#,
        r#"{"attribute":"show","entries":["10.9.9.9","2001:db8::1"],"name":"zz"}],"version":3}"#
    );
    assert_eq!(export(&master), expected);

    // The replica-to-be has a whitelist of its own, with a higher version.
    let replica = Server::start(&["--repl-diskless-load", load]);
    let mut r = replica.admin();
    for i in 0..5 {
        assert_eq!(r.call(&["WHITELIST.SET", "own", &format!("10.0.0.{i}")]), Reply::Int(1));
    }
    assert_eq!(version(&replica), "5");
    assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), Reply::ok());
    wait_link(&replica, "up");
    wait_replica_has(&master, &replica, expected);
    assert_eq!(version(&replica), "3");
    assert_eq!(r.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["sys", "zz"]));
    assert_eq!(r.call(&["WHITELIST.GET", "own"]), Reply::Nil);
    replica.wait_log("whitelist loaded: 2 groups, 3 entries, version 3");
    if load == "swapdb" {
        // The module does not handle async loading, so the server loads the
        // sync from disk instead.
        replica.wait_log("Skipping diskless-load because there are modules that are not aware of async replication");
    }
}

#[test]
fn full_sync_from_disk_replaces_the_replicas_whitelist_with_the_masters() {
    full_sync_replaces_the_replicas_whitelist("disabled");
}

#[test]
fn with_diskless_load_swapdb_the_full_sync_is_loaded_from_disk_and_replaces_the_replicas_whitelist() {
    full_sync_replaces_the_replicas_whitelist("swapdb");
}

#[test]
fn a_full_sync_without_a_whitelist_onto_a_replica_without_one_diverges_nothing() {
    let master = start_master(&[]);
    assert_eq!(master.admin().call(&["SET", "k", "v"]), Reply::ok());
    let replica = start_replica(&master, NO_LOOPBACK);
    wait_for("the key to reach the replica", || {
        (replica.admin().call(&["GET", "k"]) == Reply::bulk("v")).then_some(())
    });
    assert_eq!(replica.info_field("whitelist_diverged"), "0");
    assert!(replica.connect_from("127.0.0.2").is_served());
    assert!(!replica.log().contains("carried no whitelist"));
}

#[test]
fn a_full_sync_without_a_whitelist_keeps_the_replicas_and_marks_it_diverged() {
    let mut options = common::Options::args(FAST_SYNC);
    options.without_module = true;
    let master = Server::start_with(options);
    assert_eq!(master.admin().call(&["SET", "k", "v"]), Reply::ok());
    let replica = Server::start(NO_LOOPBACK);
    let mut r = replica.admin();
    assert_eq!(r.call(&["WHITELIST.SET", "own", "127.0.0.2"]), Reply::Int(1));
    let mut two = replica.connect_from("127.0.0.2");
    assert!(two.is_served());
    assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), Reply::ok());
    wait_link(&replica, "up");
    replica.wait_log("the full sync carried no whitelist: the whitelist in force (version 1) is kept");
    let info = common::info_of(&mut r);
    assert_eq!(info["whitelist_diverged"], "1");
    assert_eq!(info["whitelist_version"], "1");
    assert_eq!(r.call(&["WHITELIST.GET", "own"]), Reply::strings(&["127.0.0.2"]));
    // Every client that is not exempt is denied, the open one included.
    assert!(two.closed_within(Duration::from_secs(5)));
    assert!(replica.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    assert!(replica.admin().is_served());
}

#[test]
fn the_replicas_link_to_its_master_is_never_checked_on_the_replica() {
    // The master admits the replica (loopback); the replica's own rules do
    // not hold 127.0.0.1, which is where its master is.
    let master = start_master(&[]);
    assert_eq!(master.admin().call(&["WHITELIST.SET", "gg", "127.0.0.2"]), Reply::Int(1));
    let replica = start_replica(&master, NO_LOOPBACK);
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["127.0.0.2"],"name":"gg"}],"version":1}"#,
    );
    assert!(replica.connect_from("127.0.0.1").closed_within(Duration::from_secs(5)));
    // Changes keep flowing over the same link.
    assert_eq!(master.admin().call(&["WHITELIST.ADD", "gg", "10.0.0.1"]), Reply::Int(1));
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["127.0.0.2","10.0.0.1"],"name":"gg"}],"version":2}"#,
    );
    let info = replication(&replica);
    assert_eq!(info["master_link_status"], "up");
    assert_eq!(info["master_sync_in_progress"], "0");
    assert_eq!(replica.info_field("whitelist_clients_closed_on_change"), "0");
}

#[test]
fn the_live_stream_carries_every_change_with_its_version() {
    let master = start_master(&[]);
    let replica = start_replica(&master, &[]);
    wait_replica_has(&master, &replica, r#"{"groups":[],"version":0}"#);
    let mut m = master.admin();

    assert_eq!(m.call(&["WHITELIST.SET", "aa", "10.0.0.0/8"]), Reply::Int(1));
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["10.0.0.0/8"],"name":"aa"}],"version":1}"#,
    );

    assert_eq!(m.call(&["WHITELIST.ADD", "aa", "192.168.1.0/24,::1"]), Reply::Int(2));
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["10.0.0.0/8","192.168.1.0/24","::1"],"name":"aa"}],"version":2}"#,
    );

    assert_eq!(m.call(&["WHITELIST.REMOVE", "aa", "10.0.0.0/8"]), Reply::Int(1));
    assert_eq!(m.call(&["WHITELIST.SET", "hh", "172.16.0.0/12", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    wait_replica_has(
        &master,
        &replica,
        concat!(
            r#"{"groups":[{"attribute":"show","entries":["192.168.1.0/24","::1"],"name":"aa"},"#,
            r#"{"attribute":"hidden","entries":["172.16.0.0/12"],"name":"hh"}],"version":4}"#
        ),
    );

    assert_eq!(m.call(&["WHITELIST.DEL", "hh"]), Reply::Int(1));
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["192.168.1.0/24","::1"],"name":"aa"}],"version":5}"#,
    );

    let doc = r#"{"version":40,"groups":[{"name":"imp","entries":["10.4.0.0/16"]}]}"#;
    assert_eq!(m.call(&["WHITELIST.IMPORT", doc, "IFVERSION", "5"]), Reply::Int(40));
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["10.4.0.0/16"],"name":"imp"}],"version":40}"#,
    );
    assert_eq!(version(&replica), "40");
}

#[test]
fn a_replica_refuses_writes_from_its_own_clients() {
    let master = start_master(&[]);
    assert_eq!(master.admin().call(&["WHITELIST.SET", "aa", "10.0.0.0/8"]), Reply::Int(1));
    let replica = start_replica(&master, &[]);
    let expected = r#"{"groups":[{"attribute":"show","entries":["10.0.0.0/8"],"name":"aa"}],"version":1}"#;
    wait_replica_has(&master, &replica, expected);
    let mut r = replica.admin();
    let readonly = Reply::err("READONLY You can't write against a read only replica.");
    assert_eq!(r.call(&["WHITELIST.SET", "aa", "10.1.0.0/16"]), readonly);
    assert_eq!(r.call(&["WHITELIST.SET", "bb", "10.1.0.0/16", "FORCE"]), readonly);
    assert_eq!(export(&replica), expected);
    assert_eq!(version(&replica), "1");
}

#[test]
fn loadclients_propagates_as_add_of_the_addresses_it_added() {
    // No pings from the master, so its replication offset moves only with
    // what is propagated.
    let master = start_master(&["--whitelist.allow-loopback", "no", "--repl-ping-replica-period", "3600"]);
    let replica = start_replica(&master, &[]);
    let mut two = master.connect_from("127.0.0.2");
    let mut three = master.connect_from("127.0.0.3");
    assert!(two.is_served() && three.is_served());
    let mut m = master.admin();
    // The replica's link to the master comes from 127.0.0.1.
    assert_eq!(m.call(&["WHITELIST.LOADCLIENTS", "lc"]), Reply::strings(&["127.0.0.1", "127.0.0.2", "127.0.0.3"]));
    let expected =
        r#"{"groups":[{"attribute":"show","entries":["127.0.0.1","127.0.0.2","127.0.0.3"],"name":"lc"}],"version":1}"#;
    wait_replica_has(&master, &replica, expected);
    assert_eq!(
        replica.admin().call(&["WHITELIST.GET", "lc"]),
        Reply::strings(&["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    );
    // Everyone it loaded is still served, the replica's link too.
    assert!(two.is_served() && three.is_served());
    assert_eq!(replication(&replica)["master_link_status"], "up");

    // Nothing new: nothing added, nothing propagated.
    let offset = |s: &Server| replication(s)["master_repl_offset"].clone();
    let before = offset(&master);
    wait_for("the replica to catch up", || (offset(&replica) == before).then_some(()));
    assert_eq!(m.call(&["WHITELIST.LOADCLIENTS", "lc"]), Reply::Array(vec![]));
    assert_eq!(offset(&master), before);
    assert_eq!(version(&master), "1");
    assert_eq!(export(&replica), expected);
    assert_eq!(version(&replica), "1");
}

#[test]
fn a_change_that_would_cut_a_replica_off_needs_force() {
    let master = start_master(NO_LOOPBACK);
    let replica = start_replica(&master, &[]);
    let clients = replica_clients(&master);
    assert_eq!(clients.len(), 1, "{clients:?}");
    let (addr, id) = &clients[0];
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let mut m = master.admin();
    assert_eq!(
        m.call(&["WHITELIST.SET", "gg", "127.0.0.2"]),
        Reply::err(&format!(
            "ERR this change would disconnect replica {addr} (client id {id}); add FORCE to apply it anyway"
        ))
    );
    assert_eq!(export(&master), r#"{"groups":[],"version":0}"#);
    assert_eq!(replication(&replica)["master_link_status"], "up");

    assert_eq!(m.call(&["WHITELIST.SET", "gg", "127.0.0.2", "FORCE"]), Reply::Int(1));
    assert_eq!(version(&master), "1");
    wait_link(&replica, "down");
    master.wait_log(&format!("closed connection after a whitelist change from {addr}"));
}

#[test]
fn a_replicated_change_closes_the_replicas_clients_that_no_longer_match() {
    let master = start_master(&[]);
    assert_eq!(master.admin().call(&["WHITELIST.SET", "gg", "127.0.0.1,127.0.0.2"]), Reply::Int(2));
    let replica = start_replica(&master, NO_LOOPBACK);
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["127.0.0.1","127.0.0.2"],"name":"gg"}],"version":1}"#,
    );
    let mut one = replica.connect_from("127.0.0.1");
    let mut two = replica.connect_from("127.0.0.2");
    assert!(one.is_served() && two.is_served());

    assert_eq!(master.admin().call(&["WHITELIST.REMOVE", "gg", "127.0.0.2"]), Reply::Int(1));
    assert!(two.closed_within(Duration::from_secs(5)));
    assert!(one.is_served());
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["127.0.0.1"],"name":"gg"}],"version":2}"#,
    );
    assert_eq!(replica.info_field("whitelist_clients_closed_on_change"), "1");
    replica.wait_log("closed connection after a whitelist change from 127.0.0.2:");
    // Denials are logged at most once a second: this one comes after the line above.
    assert!(replica.connect_from("127.0.0.3").closed_within(Duration::from_secs(5)));
    assert_eq!(replication(&replica)["master_link_status"], "up");
}

#[test]
fn limits_do_not_apply_to_replicated_commands() {
    let limits = ["--whitelist.max-entries-per-group", "1", "--whitelist.max-groups", "1"];
    let master = start_master(&[]);
    let mut m = master.admin();
    // Through the full sync.
    assert_eq!(m.call(&["WHITELIST.SET", "aa", "10.0.0.1,10.0.0.2,10.0.0.3"]), Reply::Int(3));
    let replica = start_replica(&master, &limits);
    assert_eq!(
        replica.admin().call(&["CONFIG", "GET", "whitelist.max-entries-per-group"]),
        Reply::strings(&["whitelist.max-entries-per-group", "1"])
    );
    wait_replica_has(
        &master,
        &replica,
        r#"{"groups":[{"attribute":"show","entries":["10.0.0.1","10.0.0.2","10.0.0.3"],"name":"aa"}],"version":1}"#,
    );
    // Through the live stream: a second group of three.
    assert_eq!(m.call(&["WHITELIST.SET", "bb", "10.1.0.1,10.1.0.2,10.1.0.3"]), Reply::Int(3));
    wait_replica_has(
        &master,
        &replica,
        concat!(
            r#"{"groups":[{"attribute":"show","entries":["10.0.0.1","10.0.0.2","10.0.0.3"],"name":"aa"},"#,
            r#"{"attribute":"show","entries":["10.1.0.1","10.1.0.2","10.1.0.3"],"name":"bb"}],"version":2}"#
        ),
    );
    assert_eq!(replica.admin().call(&["WHITELIST.GET", "bb"]), Reply::strings(&["10.1.0.1", "10.1.0.2", "10.1.0.3"]));
    let info = replica.info();
    assert_eq!(info["whitelist_groups"], "2");
    assert_eq!(info["whitelist_entries"], "6");
}

#[test]
fn a_replicated_import_ends_the_divergence() {
    // The primary's whitelist was never used: its full sync carries none.
    let master = start_master(&[]);
    let replica = Server::start(NO_LOOPBACK);
    let mut r = replica.admin();
    assert_eq!(r.call(&["WHITELIST.SET", "own", "127.0.0.9"]), Reply::Int(1));
    assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), Reply::ok());
    wait_link(&replica, "up");
    replica.wait_log("the full sync carried no whitelist: the whitelist in force (version 1) is kept");
    assert_eq!(replica.info_field("whitelist_diverged"), "1");
    assert!(replica.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    // The primary's operator pushes its state.
    let doc = r#"{"groups":[{"entries":["127.0.0.2"],"name":"pp"}],"version":4}"#;
    assert_eq!(master.admin().call(&["WHITELIST.IMPORT", doc]), Reply::Int(4));
    let expected = r#"{"groups":[{"attribute":"show","entries":["127.0.0.2"],"name":"pp"}],"version":4}"#;
    wait_replica_has(&master, &replica, expected);
    assert_eq!(replica.info_field("whitelist_diverged"), "0");
    replica.wait_log("this replica's whitelist is its primary's again (whitelist_diverged:0)");
    assert!(replica.connect_from("127.0.0.2").is_served());
    assert!(replica.connect_from("127.0.0.9").closed_within(Duration::from_secs(5)));
}

#[test]
fn an_import_propagates_the_state_it_led_to_and_no_condition_is_judged_again() {
    let master = start_master(&[]);
    let replica = start_replica(&master, &[]);
    let mut m = master.admin();
    assert_eq!(m.call(&["WHITELIST.SET", "aa", "10.0.0.1"]), Reply::Int(1));
    assert_eq!(m.call(&["WHITELIST.SET", "bb", "10.0.0.2"]), Reply::Int(1));
    // A document without a version: the primary reaches version 3, and the
    // replica installs exactly that.
    let doc = r#"{"groups":[{"name":"cc","entries":["10.0.0.3"]}]}"#;
    assert_eq!(m.call(&["WHITELIST.IMPORT", doc, "IFVERSION", "2", "FORCE"]), Reply::Int(3));
    let expected = r#"{"groups":[{"attribute":"show","entries":["10.0.0.3"],"name":"cc"}],"version":3}"#;
    wait_replica_has(&master, &replica, expected);
    // A document that lowers the version is raised past it on the primary,
    // and the replica gets the raised version.
    let doc = r#"{"groups":[{"name":"dd","entries":["10.0.0.4"]}],"version":1}"#;
    assert_eq!(m.call(&["WHITELIST.IMPORT", doc]), Reply::Int(4));
    let expected = r#"{"groups":[{"attribute":"show","entries":["10.0.0.4"],"name":"dd"}],"version":4}"#;
    wait_replica_has(&master, &replica, expected);
    // What the replica's own AOF-less restart would need is what it holds:
    // the stream carried the state, not the request.
    assert_eq!(replica.info_field("whitelist_replication_errors"), "0");
}

#[test]
fn a_replicated_change_the_replica_cannot_apply_makes_it_diverge_and_deny_until_an_import() {
    let master = start_master(&[]);
    let replicaof = format!("127.0.0.1 {}", master.port);
    let replica = Server::start_with(common::Options {
        args: ["--replicaof", replicaof.as_str(), "--whitelist.allow-loopback", "no"]
            .iter()
            .map(|a| a.to_string())
            .collect(),
        module: Some(common::test_module_path()),
        ..Default::default()
    });
    wait_link(&replica, "up");
    let mut m = master.admin();
    assert_eq!(m.call(&["WHITELIST.SET", "pp", "127.0.0.2"]), Reply::Int(1));
    let expected = r#"{"groups":[{"attribute":"show","entries":["127.0.0.2"],"name":"pp"}],"version":1}"#;
    wait_replica_has(&master, &replica, expected);
    let mut open = replica.connect_from("127.0.0.2");
    assert!(open.is_served());
    let mut r = replica.admin();
    assert_eq!(r.call(&["WHITELIST.DEBUG-FAULT", "lose-next-change"]), Reply::ok());
    assert_eq!(m.call(&["WHITELIST.ADD", "pp", "127.0.0.3"]), Reply::Int(1));
    replica.wait_log(
        "cannot apply WHITELIST.ADD 'pp' '127.0.0.3' from the primary: ERR test fault: this change was not applied \
         (WHITELIST.DEBUG-FAULT)",
    );
    replica.wait_log("this server's whitelist now differs from its primary's (whitelist_diverged:1)");
    let info = replica.info();
    assert_eq!((info["whitelist_diverged"].as_str(), info["whitelist_replication_errors"].as_str()), ("1", "1"));
    // Nothing is admitted because a change was lost: the open connection is
    // closed, new ones are refused, exempt clients stay.
    assert!(open.closed_within(Duration::from_secs(5)));
    assert!(replica.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    assert!(r.is_served());
    // Later changes still apply (on top of the state without the lost one);
    // the replica still differs and still denies.
    assert_eq!(m.call(&["WHITELIST.ADD", "pp", "127.0.0.4"]), Reply::Int(1));
    wait_for("the replica to apply the next change", || {
        (r.call(&["WHITELIST.GET", "pp"]) == Reply::strings(&["127.0.0.2", "127.0.0.4"])).then_some(())
    });
    assert_eq!(replica.info_field("whitelist_version"), "2");
    assert!(replica.connect_from("127.0.0.4").closed_within(Duration::from_secs(5)));
    // The way out: the primary's operator pushes its state. The IMPORT
    // changes nothing on the primary and is propagated all the same.
    let doc = m.call(&["WHITELIST.EXPORT"]).text();
    assert_eq!(m.call(&["WHITELIST.IMPORT", &doc]), Reply::Int(3));
    replica.wait_log("this replica's whitelist is its primary's again (whitelist_diverged:0)");
    wait_replica_has(&master, &replica, &doc);
    assert_eq!(replica.info_field("whitelist_diverged"), "0");
    assert!(replica.connect_from("127.0.0.3").is_served());
    assert!(replica.connect_from("127.0.0.9").closed_within(Duration::from_secs(5)));
}

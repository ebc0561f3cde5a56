//! Keeping the whitelist maintained, against real servers: comments,
//! expiring entries (the timer, the primary's sweep, restarts, AOF replay,
//! replicas) and per-entry usage statistics.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{wait_for, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];
const ALL_EXPIRE: &str = "ERR every remaining entry expires, and then the whitelist would admit every address; add a permanent entry or FORCE";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_secs()
}

fn int(n: u64) -> Reply {
    Reply::Int(i64::try_from(n).expect("a small number"))
}

/// The six fields of one `WITHSTATS` row, as RESP2 shows them.
fn row(entry: &str, comment: Option<&str>, expires: Option<u64>, added: Reply, hits: i64, last: Reply) -> Vec<Reply> {
    vec![
        Reply::bulk("entry"),
        Reply::bulk(entry),
        Reply::bulk("comment"),
        comment.map_or(Reply::Nil, Reply::bulk),
        Reply::bulk("expires"),
        expires.map_or(Reply::Nil, int),
        Reply::bulk("added"),
        added,
        Reply::bulk("hits"),
        Reply::Int(hits),
        Reply::bulk("last-hit"),
        last,
    ]
}

/// `WHITELIST.GET group WITHSTATS` with `added` and `last-hit` checked to be
/// within `[from, to]` and replaced by `Int(0)`, so a test can compare the rest exactly.
/// On Redis 7.0, which keeps no cached time for modules, a hit is stamped with
/// the module's own second, refreshed each second: it may read one early.
fn stats(s: &Server, group: &str, from: u64, to: u64) -> Reply {
    let from = if common::flavor().has_72_api() { from } else { from.saturating_sub(1) };
    let reply = s.admin().call(&["WHITELIST.GET", group, "WITHSTATS"]);
    let Reply::Array(rows) = reply else { return reply };
    let within = |r: &Reply| match r {
        Reply::Int(t) => {
            let t = u64::try_from(*t).expect("a positive time");
            assert!((from..=to).contains(&t), "{t} not in {from}..={to}");
            Reply::Int(0)
        }
        other => other.clone(),
    };
    Reply::Array(
        rows.into_iter()
            .map(|r| match r {
                Reply::Array(f) => Reply::Array(
                    f.iter().enumerate().map(|(i, v)| if i == 7 || i == 11 { within(v) } else { v.clone() }).collect(),
                ),
                other => other,
            })
            .collect(),
    )
}

fn info(s: &Server) -> HashMap<String, String> {
    s.info()
}

#[test]
fn comments_and_expiries_exact_replies_in_resp2_and_resp3() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    let t0 = now();
    assert_eq!(a.call(&["WHITELIST.SET", "office", "10.1.2.3,10.0.0.0/8", "COMMENT", "vpn"]), Reply::Int(2));
    let at = t0 + 3600;
    let at_text = at.to_string();
    assert_eq!(
        a.call(&["WHITELIST.ADD", "office", "192.0.2.1", "EXPIREAT", &at_text, "COMMENT", "FORCE"]),
        Reply::Int(1)
    );
    // A held entry with a new comment: a change, but nothing new.
    assert_eq!(a.call(&["WHITELIST.ADD", "office", "10.1.2.3", "COMMENT", "vpn gw"]), Reply::Int(0));
    assert_eq!(s.info_field("whitelist_version"), "3");
    // The same again changes nothing.
    assert_eq!(a.call(&["WHITELIST.ADD", "office", "10.1.2.3", "COMMENT", "vpn gw"]), Reply::Int(0));
    assert_eq!(s.info_field("whitelist_version"), "3");
    let t1 = now();
    assert_eq!(
        stats(&s, "office", t0, t1),
        Reply::Array(vec![
            Reply::Array(row("10.1.2.3", Some("vpn gw"), None, Reply::Int(0), 0, Reply::Nil)),
            Reply::Array(row("10.0.0.0/8", Some("vpn"), None, Reply::Int(0), 0, Reply::Nil)),
            Reply::Array(row("192.0.2.1", Some("FORCE"), Some(at), Reply::Int(0), 0, Reply::Nil)),
        ])
    );
    assert_eq!(a.call(&["WHITELIST.GET", "nosuch", "WITHSTATS"]), Reply::Nil);
    let mut r3 = s.admin();
    assert!(matches!(r3.call(&["HELLO", "3"]), Reply::Map(_)));
    let Reply::Array(rows) = r3.call(&["WHITELIST.GET", "office", "WITHSTATS"]) else { panic!("not an array") };
    let Reply::Map(first) = &rows[2] else { panic!("not a map: {:?}", rows[2]) };
    let keys: Vec<String> = first.iter().map(|(k, _)| k.text()).collect();
    assert_eq!(keys, ["entry", "comment", "expires", "added", "hits", "last-hit"]);
    assert_eq!(first[2].1, int(at));
    assert_eq!(first[5].1, Reply::Nil);
    assert_eq!(
        a.call(&["WHITELIST.EXPORT"]).text(),
        format!(
            r#"{{"groups":[{{"attribute":"show","entries":[{{"comment":"vpn gw","entry":"10.1.2.3"}},{{"comment":"vpn","entry":"10.0.0.0/8"}},{{"comment":"FORCE","entry":"192.0.2.1","expires":{at}}}],"name":"office"}}],"version":3}}"#
        )
    );
    // SET gives exactly its own comment and expiry: none here.
    assert_eq!(a.call(&["WHITELIST.SET", "office", "10.1.2.3"]), Reply::Int(1));
    assert_eq!(
        a.call(&["WHITELIST.EXPORT"]).text(),
        r#"{"groups":[{"attribute":"show","entries":["10.1.2.3"],"name":"office"}],"version":4}"#
    );
    // COMMENT "" clears; PERSIST drops an expiry.
    assert_eq!(a.call(&["WHITELIST.ADD", "office", "10.1.2.4", "TTL", "100", "COMMENT", "tmp"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "office", "10.1.2.4", "PERSIST", "COMMENT", ""]), Reply::Int(0));
    assert_eq!(
        a.call(&["WHITELIST.EXPORT"]).text(),
        r#"{"groups":[{"attribute":"show","entries":["10.1.2.3","10.1.2.4"],"name":"office"}],"version":6}"#
    );
    // IMPORT takes entry objects; an expiry not in the future is refused.
    let doc = format!(
        r#"{{"groups":[{{"name":"ab","entries":[{{"entry":"10.0.0.1","comment":"x","expires":{at}}},"10.0.0.2"]}}]}}"#
    );
    assert_eq!(a.call(&["WHITELIST.IMPORT", &doc]), Reply::Int(7));
    assert_eq!(
        a.call(&["WHITELIST.EXPORT"]).text(),
        format!(
            r#"{{"groups":[{{"attribute":"show","entries":[{{"comment":"x","entry":"10.0.0.1","expires":{at}}},"10.0.0.2"],"name":"ab"}}],"version":7}}"#
        )
    );
    let past = r#"{"groups":[{"name":"ab","entries":[{"entry":"10.0.0.1","expires":1000}]}]}"#;
    assert_eq!(
        a.call(&["WHITELIST.IMPORT", past]),
        Reply::err("ERR group 'ab' entry 10.0.0.1: \"expires\" must be in the future")
    );
    // Errors.
    let too_long = "x".repeat(129);
    for (args, expected) in [
        (
            vec!["WHITELIST.ADD", "ab", "10.0.0.9", "COMMENT", too_long.as_str()],
            "ERR invalid comment: at most 128 bytes of printable text",
        ),
        (
            vec!["WHITELIST.ADD", "ab", "10.0.0.9", "TTL", "5", "EXPIREAT", "9999999999"],
            "ERR syntax error: TTL, EXPIREAT and PERSIST exclude each other",
        ),
        (
            vec!["WHITELIST.ADD", "ab", "10.0.0.9", "COMMENT", "a", "COMMENT", "b"],
            "ERR syntax error: COMMENT given twice",
        ),
        (
            vec!["WHITELIST.ADD", "ab", "10.0.0.9", "TTL", "31536001"],
            "ERR invalid TTL '31536001': 1 to 31536000 seconds",
        ),
        (vec!["WHITELIST.ADD", "ab", "10.0.0.9", "EXPIREAT", "1000"], "ERR EXPIREAT must be in the future"),
        (
            vec!["WHITELIST.ADD", "ab", "10.0.0.9", "EXPIREAT", "99999999999"],
            "ERR EXPIREAT must be at most 31536000 seconds (one year) ahead",
        ),
        (vec!["WHITELIST.ADD", "ab", "10.0.0.9", "TTL"], "ERR syntax error: TTL must be followed by a value"),
        // The first invalid argument from the left: the entry before the comment.
        (
            vec!["WHITELIST.ADD", "ab", "10.0.0.256", "COMMENT", too_long.as_str()],
            "ERR invalid whitelist entry '10.0.0.256': not an IP address or CIDR block",
        ),
    ] {
        assert_eq!(a.call(&args), Reply::err(expected), "{args:?}");
    }
    assert_eq!(s.info_field("whitelist_version"), "7");
}

#[test]
fn stale_lists_entries_not_hit_and_statistics_survive_a_restart() {
    let s = Server::start(NO_LOOPBACK);
    let mut a = s.admin();
    let t0 = now();
    assert_eq!(a.call(&["WHITELIST.SET", "bb", "127.0.0.2,127.0.0.0/8"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.SET", "aa", "127.0.0.3"]), Reply::Int(1));
    for _ in 0..2 {
        let mut c = s.connect_from("127.0.0.2");
        assert!(c.is_served());
    }
    let mut c = s.connect_from("127.0.0.9");
    assert!(c.is_served());
    drop(c);
    let t1 = now();
    assert_eq!(s.info_field("whitelist_version"), "2");
    let hits = |r: &Reply| match r {
        Reply::Array(rows) => rows
            .iter()
            .map(|row| match row {
                Reply::Array(f) => (f[1].text(), f[9].int()),
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(hits(&stats(&s, "bb", t0, t1)), [("127.0.0.2".to_string(), 2), ("127.0.0.0/8".to_string(), 1)]);
    assert!(s.info_field("whitelist_group_bb").starts_with("entries=2,hits=3,"));
    // Never hit: judged by `added`. Every entry is stale over 0 seconds; none over an hour.
    assert_eq!(a.call(&["WHITELIST.STALE", "3600"]), Reply::Array(vec![]));
    let Reply::Array(all) = a.call(&["WHITELIST.STALE", "0"]) else { panic!("not an array") };
    let shown: Vec<(String, String, bool)> = all
        .iter()
        .map(|r| match r {
            Reply::Array(f) => (f[0].text(), f[1].text(), f[2] == Reply::Nil),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("aa".to_string(), "127.0.0.3".to_string(), true),
            ("bb".to_string(), "127.0.0.2".to_string(), false),
            ("bb".to_string(), "127.0.0.0/8".to_string(), false),
        ]
    );
    // Statistics never move the version, and SAVE carries them over a restart.
    assert_eq!(s.info_field("whitelist_version"), "2");
    let before = a.call(&["WHITELIST.GET", "bb", "WITHSTATS"]);
    drop(a);
    let s = s.restart(NO_LOOPBACK);
    assert_eq!(s.admin().call(&["WHITELIST.GET", "bb", "WITHSTATS"]), before);
    // SET keeps the figures of the entries it keeps.
    assert_eq!(s.admin().call(&["WHITELIST.SET", "bb", "127.0.0.2,10.0.0.1"]), Reply::Int(2));
    assert_eq!(hits(&s.admin().call(&["WHITELIST.GET", "bb", "WITHSTATS"]))[0], ("127.0.0.2".to_string(), 2));
}

#[test]
fn the_fail_open_guard_refuses_a_whitelist_of_only_expiring_entries() {
    let s = Server::start(NO_LOOPBACK);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "tmp", "10.0.0.1", "TTL", "100"]), Reply::err(ALL_EXPIRE));
    assert_eq!(a.call(&["WHITELIST.ADD", "tmp", "10.0.0.1", "TTL", "100"]), Reply::err(ALL_EXPIRE));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::Array(vec![]));
    assert_eq!(a.call(&["WHITELIST.SET", "perm", "10.0.0.2"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "tmp", "10.0.0.1", "TTL", "100"]), Reply::Int(1));
    // Removing the last permanent entry would leave only expiring ones.
    assert_eq!(a.call(&["WHITELIST.REMOVE", "perm", "10.0.0.2"]), Reply::err(ALL_EXPIRE));
    assert_eq!(s.info_field("whitelist_entries_expiring"), "1");
    // With FORCE it is applied, and when the last entry expires the warning says so.
    assert_eq!(a.call(&["WHITELIST.REMOVE", "perm", "10.0.0.2", "FORCE"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "tmp", "10.0.0.1", "TTL", "1", "FORCE"]), Reply::Int(0));
    s.wait_log("every entry of the whitelist has expired: it is now off and admits every address");
    assert_eq!(s.info_field("whitelist_enabled"), "0");
    assert_eq!(s.info_field("whitelist_entries_expired"), "1");
    assert_eq!(s.info_field("whitelist_entries_expiring"), "0");
}

/// An entry that expires while a client it admitted is connected.
fn expiring_client(s: &Server, ttl: &str) -> common::Client {
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "perm", "127.0.0.3"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "tmp", "127.0.0.2", "TTL", ttl, "COMMENT", "contractor"]), Reply::Int(1));
    let mut c = s.connect_from("127.0.0.2");
    assert!(c.is_served());
    c
}

#[test]
fn an_expired_entry_closes_its_connection_and_the_primary_removes_it() {
    let s = Server::start(NO_LOOPBACK);
    let mut c = expiring_client(&s, "3");
    let mut other = s.connect_from("127.0.0.3");
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(other.is_served());
    wait_for("the sweep", || (s.info_field("whitelist_entries_expired") == "1").then_some(()));
    assert_eq!(s.info_field("whitelist_clients_closed_on_change"), "1");
    assert_eq!(s.info_field("whitelist_version"), "3");
    assert_eq!(s.admin().call(&["WHITELIST.GET", "tmp"]), Reply::Array(vec![]));
    s.wait_log("WHITELIST.REMOVE tmp by expiry: 0 added, 1 removed, version 3");
    assert!(s.try_connect_from("127.0.0.2").map(|mut c| c.closed_within(Duration::from_secs(5))).unwrap_or(true));
    assert_eq!(info(&s)["whitelist_entries_expiring"], "0");
}

#[test]
fn in_monitor_mode_an_expiry_is_reported_not_closed() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "monitor"]);
    let mut c = expiring_client(&s, "2");
    s.wait_log("would close connection (whitelist.mode monitor) from 127.0.0.2:");
    assert!(c.is_served());
    assert_eq!(s.info_field("whitelist_clients_closed_on_change"), "0");
}

/// The matcher of an expiry is computed ahead of it on a thread of the
/// module's own; a change made meanwhile must win. `127.0.0.2` is made
/// permanent 250 ms before its expiry (after the computation began, 500 ms
/// before): it stays served; `127.0.0.4`, with the same expiry, goes.
#[test]
fn a_change_made_while_an_expiry_is_computed_ahead_holds() {
    let s = Server::start(NO_LOOPBACK);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "perm", "127.0.0.3"]), Reply::Int(1));
    let now_ms = || SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_millis() as u64;
    // A slow moment could land the change after the expiry, which proves
    // nothing: then the scenario runs again with another group.
    for round in 0..3 {
        let group = format!("tmp{round}");
        let at = now() + 3;
        let at_text = at.to_string();
        assert_eq!(a.call(&["WHITELIST.ADD", &group, "127.0.0.2", "127.0.0.4", "EXPIREAT", &at_text]), Reply::Int(2));
        let mut kept = s.connect_from("127.0.0.2");
        let mut gone = s.connect_from("127.0.0.4");
        while now_ms() < at * 1000 - 250 {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(a.call(&["WHITELIST.ADD", &group, "127.0.0.2", "PERSIST"]), Reply::Int(0));
        if now_ms() >= at * 1000 - 50 {
            assert_eq!(a.call(&["WHITELIST.DEL", &group]), Reply::Int(1));
            continue;
        }
        assert!(gone.closed_within(Duration::from_secs(5)));
        sleep_past(at);
        assert!(kept.is_served());
        assert!(s.connect_from("127.0.0.2").is_served());
        wait_for("the sweep", || (s.info_field("whitelist_entries_expired") == "1").then_some(()));
        assert_eq!(a.call(&["WHITELIST.GET", &group]), Reply::Array(vec![Reply::bulk("127.0.0.2")]));
        return;
    }
    panic!("the change never came in time before the expiry");
}

/// Waits until unix second `at` has passed.
fn sleep_past(at: u64) {
    while now() <= at {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn data_loaded_after_an_expiry_treats_the_entry_as_expired() {
    let mut s = Server::start(NO_LOOPBACK);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "perm", "127.0.0.3"]), Reply::Int(1));
    let at = now() + 2;
    assert_eq!(a.call(&["WHITELIST.ADD", "tmp", "127.0.0.2", "EXPIREAT", &at.to_string()]), Reply::Int(1));
    assert_eq!(a.call(&["SAVE"]), Reply::ok());
    drop(a);
    s.stop(false);
    sleep_past(at);
    let s = s.start_again(NO_LOOPBACK);
    assert!(s.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    wait_for("the sweep after the load", || (s.info_field("whitelist_entries_expired") == "1").then_some(()));
    assert_eq!(s.admin().call(&["WHITELIST.GET", "tmp"]), Reply::Array(vec![]));
}

/// AOF replay: the TTL was logged as the absolute EXPIREAT, so a replay
/// after the expiry gives the same expiry and removes the entry.
fn aof_replay(preamble: &str) {
    let args = ["--whitelist.allow-loopback", "no", "--appendonly", "yes", "--aof-use-rdb-preamble", preamble];
    let mut s = Server::start(&args);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "perm", "127.0.0.3"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "tmp", "127.0.0.2", "TTL", "2"]), Reply::Int(1));
    let Reply::Array(rows) = a.call(&["WHITELIST.GET", "tmp", "WITHSTATS"]) else { panic!("no rows") };
    let Reply::Array(fields) = &rows[0] else { panic!("no row") };
    let at = u64::try_from(fields[5].int()).expect("an expiry");
    drop(a);
    let dir = s.dir.path().join("appendonlydir");
    let logged: String = std::fs::read_dir(&dir)
        .expect("the AOF directory")
        .filter_map(|e| e.ok())
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default()).into_owned())
        .collect();
    assert!(logged.contains(&format!("$8\r\nEXPIREAT\r\n${}\r\n{at}\r\n", at.to_string().len())), "{logged}");
    assert!(!logged.contains("\r\nTTL\r\n"), "{logged}");
    s.stop(false);
    sleep_past(at);
    let s = s.start_again(&args);
    assert!(s.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    wait_for("the sweep after the replay", || (s.info_field("whitelist_entries_expired") == "1").then_some(()));
    assert_eq!(s.admin().call(&["WHITELIST.GET", "tmp"]), Reply::Array(vec![]));
    assert_eq!(s.info_field("whitelist_version"), "3");
}

#[test]
fn an_aof_with_preamble_replays_the_absolute_expiry() {
    aof_replay("yes");
}

#[test]
fn an_aof_without_preamble_replays_the_absolute_expiry() {
    aof_replay("no");
}

#[test]
fn a_replica_denies_by_its_own_clock_and_removes_only_what_the_primary_removes() {
    let master = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.admin();
    assert_eq!(m.call(&["WHITELIST.SET", "perm", "127.0.0.3"]), Reply::Int(1));
    let replicaof = format!("127.0.0.1 {}", master.port);
    let replica = Server::start(&["--replicaof", &replicaof, "--whitelist.allow-loopback", "no"]);
    wait_for("the replica's copy", || (replica.info_field("whitelist_version") == "1").then_some(()));
    // A write pause holds the primary's sweep back; the replica still denies.
    assert_eq!(m.call(&["WHITELIST.ADD", "tmp", "127.0.0.2", "TTL", "3"]), Reply::Int(1));
    wait_for("the replica's copy", || (replica.info_field("whitelist_version") == "2").then_some(()));
    // The TTL reached the replica as the primary's absolute expiry.
    assert_eq!(replica.admin().call(&["WHITELIST.EXPORT"]), m.call(&["WHITELIST.EXPORT"]));
    assert!(m.call(&["WHITELIST.EXPORT"]).text().contains(r#"{"entry":"127.0.0.2","expires":"#));
    let mut c = replica.connect_from("127.0.0.2");
    assert!(c.is_served());
    assert_eq!(m.call(&["CLIENT", "PAUSE", "60000", "WRITE"]), Reply::ok());
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(replica.info_field("whitelist_clients_closed_on_change"), "1");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(master.info_field("whitelist_entries_expired"), "0");
    assert_eq!(replica.admin().call(&["WHITELIST.GET", "tmp"]), Reply::strings(&["127.0.0.2"]));
    assert_eq!(replica.info_field("whitelist_version"), "2");
    // The pause ends: the primary removes and propagates; versions stay equal.
    assert_eq!(m.call(&["CLIENT", "UNPAUSE"]), Reply::ok());
    wait_for("the primary's removal", || (replica.info_field("whitelist_version") == "3").then_some(()));
    assert_eq!(master.info_field("whitelist_version"), "3");
    assert_eq!(master.info_field("whitelist_entries_expired"), "1");
    assert_eq!(replica.info_field("whitelist_entries_expired"), "0");
    assert_eq!(replica.admin().call(&["WHITELIST.GET", "tmp"]), Reply::Array(vec![]));
}

#[test]
fn a_replica_promoted_to_primary_removes_the_expired_entries_it_held() {
    let master = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.admin();
    assert_eq!(m.call(&["WHITELIST.SET", "perm", "127.0.0.3"]), Reply::Int(1));
    let replicaof = format!("127.0.0.1 {}", master.port);
    let replica = Server::start(&["--replicaof", &replicaof]);
    wait_for("the replica's copy", || (replica.info_field("whitelist_version") == "1").then_some(()));
    assert_eq!(m.call(&["WHITELIST.ADD", "tmp", "127.0.0.2", "TTL", "3"]), Reply::Int(1));
    wait_for("the replica's copy", || (replica.info_field("whitelist_version") == "2").then_some(()));
    assert_eq!(m.call(&["CLIENT", "PAUSE", "60000", "WRITE"]), Reply::ok());
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(replica.admin().call(&["WHITELIST.GET", "tmp"]), Reply::strings(&["127.0.0.2"]));
    assert_eq!(replica.admin().call(&["REPLICAOF", "NO", "ONE"]), Reply::ok());
    wait_for("the new primary's sweep", || (replica.info_field("whitelist_entries_expired") == "1").then_some(()));
    assert_eq!(replica.admin().call(&["WHITELIST.GET", "tmp"]), Reply::Array(vec![]));
    assert_eq!(replica.info_field("whitelist_version"), "3");
    assert_eq!(m.call(&["CLIENT", "UNPAUSE"]), Reply::ok());
}

//! Keeping the whitelist maintained (SPEC §10.4, §10.5): the table of
//! recently denied sources (`WHITELIST.DENIED`, `whitelist.denied-sources`)
//! and `whitelist.when-empty`.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{counter, flavor, Client, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];
const CLOSED: Duration = Duration::from_secs(5);

fn b(s: &str) -> Reply {
    Reply::bulk(s)
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_secs() as i64
}

/// One row as `WHITELIST.DENIED` shows it: the key-value pairs in order.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    addr: String,
    count: i64,
    first: i64,
    last: i64,
    reason: String,
}

fn fields(row: &Row) -> Vec<(Reply, Reply)> {
    vec![
        (b("addr"), b(&row.addr)),
        (b("count"), Reply::Int(row.count)),
        (b("first"), Reply::Int(row.first)),
        (b("last"), Reply::Int(row.last)),
        (b("reason"), b(&row.reason)),
    ]
}

/// The exact RESP2 reply for `rows`: an array of flat arrays.
fn resp2(rows: &[Row]) -> Reply {
    Reply::Array(rows.iter().map(|r| Reply::Array(fields(r).into_iter().flat_map(|(k, v)| [k, v]).collect())).collect())
}

/// The exact RESP3 reply for `rows`: an array of maps.
fn resp3(rows: &[Row]) -> Reply {
    Reply::Array(rows.iter().map(|r| Reply::Map(fields(r))).collect())
}

/// Reads a RESP2 reply into rows, so a test can check the times it
/// cannot know in advance and then compare the whole reply exactly.
fn rows_of(reply: &Reply) -> Vec<Row> {
    let Reply::Array(rows) = reply else { panic!("DENIED did not answer an array: {reply:?}") };
    rows.iter()
        .map(|r| match r {
            Reply::Array(f) if f.len() == 10 => {
                Row { addr: f[1].text(), count: f[3].int(), first: f[5].int(), last: f[7].int(), reason: f[9].text() }
            }
            other => panic!("not a DENIED row: {other:?}"),
        })
        .collect()
}

/// `DENIED` through `c` (RESP2): rows whose times lie in `[since, now]`,
/// and the reply is exactly those rows.
fn denied(c: &mut Client, args: &[&str], since: i64) -> Vec<Row> {
    let mut command = vec!["WHITELIST.DENIED"];
    command.extend_from_slice(args);
    let reply = c.call(&command);
    let rows = rows_of(&reply);
    assert_eq!(reply, resp2(&rows));
    let now = unix_now();
    for r in &rows {
        assert!(since <= r.first && r.first <= r.last && r.last <= now, "{r:?} outside {since}..={now}");
    }
    rows
}

/// (addr, count, reason) of each row, in order.
fn summary(rows: &[Row]) -> Vec<(String, i64, String)> {
    rows.iter().map(|r| (r.addr.clone(), r.count, r.reason.clone())).collect()
}

fn s3(addr: &str, count: i64, reason: &str) -> (String, i64, String) {
    (addr.to_string(), count, reason.to_string())
}

#[test]
fn denied_lists_sources_most_recent_first_in_resp2_and_resp3() {
    let since = unix_now();
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.DENIED"]), Reply::Array(vec![]));
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert!(s.connect_from("127.0.0.3").closed_within(CLOSED));
    assert!(s.connect_from("127.0.0.4").closed_within(CLOSED));
    assert!(s.connect_from("127.0.0.3").closed_within(CLOSED));
    // Admitted clients leave no row.
    assert!(s.connect_from("127.0.0.2").is_served());
    let rows = denied(&mut admin, &[], since);
    assert_eq!(summary(&rows), vec![s3("127.0.0.3", 2, "no-match"), s3("127.0.0.4", 1, "no-match")]);
    assert_eq!(denied(&mut admin, &["COUNT", "1"], since), rows[..1].to_vec());
    assert_eq!(denied(&mut admin, &["count", "9223372036854775807"], since), rows);
    assert_eq!(s.info_field("whitelist_denied_sources"), "2");

    // Unix-socket clients, once allow-unixsocket is no: the open admin
    // connection is closed by the re-check, a new one at connect.
    let mut tcp = s.connect_from("127.0.0.2");
    assert_eq!(tcp.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "no"]), Reply::ok());
    assert!(admin.closed_within(CLOSED));
    assert!(s.admin().closed_within(CLOSED));
    let rows = denied(&mut tcp, &[], since);
    assert_eq!(
        summary(&rows),
        vec![s3("/unixsocket", 2, "unix-socket"), s3("127.0.0.3", 2, "no-match"), s3("127.0.0.4", 1, "no-match")]
    );

    // RESP3: a map per row, the same rows.
    assert!(matches!(tcp.call(&["HELLO", "3"]), Reply::Map(_)));
    assert_eq!(tcp.call(&["WHITELIST.DENIED"]), resp3(&rows));
    assert_eq!(tcp.call(&["WHITELIST.DENIED", "COUNT", "2"]), resp3(&rows[..2]));

    assert_eq!(tcp.call(&["WHITELIST.DENIED", "RESET"]), Reply::ok());
    assert_eq!(tcp.call(&["WHITELIST.DENIED"]), Reply::Array(vec![]));
    assert_eq!(counter(&mut tcp, "whitelist_denied_sources"), 0);
    // RESET empties the table only: the counters stay.
    assert_eq!(counter(&mut tcp, "whitelist_connections_denied"), 4);
}

#[test]
fn denied_refuses_bad_arguments_exactly() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    let count = "ERR syntax error: COUNT must be followed by an integer from 1 to 9223372036854775807";
    for args in
        [&["COUNT"][..], &["COUNT", "0"], &["COUNT", "-1"], &["COUNT", "1.5"], &["COUNT", "9223372036854775808"]]
    {
        let mut command = vec!["WHITELIST.DENIED"];
        command.extend_from_slice(args);
        assert_eq!(a.call(&command), Reply::err(count), "{args:?}");
    }
    assert_eq!(
        a.call(&["WHITELIST.DENIED", "RESET", "NOW"]),
        Reply::err("ERR syntax error: unexpected argument 'NOW': RESET takes no other argument")
    );
    assert_eq!(
        a.call(&["WHITELIST.DENIED", "COUNT", "1", "RESET"]),
        Reply::err("ERR syntax error: unexpected argument 'RESET': only COUNT n or RESET may be given")
    );
    assert_eq!(
        a.call(&["WHITELIST.DENIED", "ALL"]),
        Reply::err("ERR syntax error: unexpected argument 'ALL': expected COUNT n or RESET")
    );
    // An admin command: a user without @admin may not read or reset it.
    assert_eq!(a.call(&["ACL", "SETUSER", "app", "on", ">pw", "+@all", "-@admin", "-@dangerous"]), Reply::ok());
    if !flavor().has_72_api() {
        // Redis 7.0 puts module commands in no category (SPEC §13).
        assert_eq!(a.call(&["ACL", "SETUSER", "app", "-whitelist.denied"]), Reply::ok());
    }
    let mut app = s.admin();
    assert_eq!(app.call(&["AUTH", "app", "pw"]), Reply::ok());
    assert_eq!(app.call(&["WHITELIST.DENIED"]), flavor().noperm("app", "whitelist.denied"));
    assert_eq!(app.call(&["WHITELIST.DENIED", "RESET"]), flavor().noperm("app", "whitelist.denied"));
}

#[test]
fn monitor_mode_records_would_be_denials() {
    let since = unix_now();
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "monitor"]);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    let mut three = s.connect_from("127.0.0.3");
    assert!(three.is_served());
    let mut two = s.connect_from("127.0.0.2");
    assert!(two.is_served());
    assert_eq!(summary(&denied(&mut admin, &[], since)), vec![s3("127.0.0.3", 1, "no-match")]);
    // A change that makes an open connection a would-be denial records it.
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.9", "FORCE"]), Reply::Int(1));
    let mut rows = summary(&denied(&mut admin, &[], since));
    assert_eq!(rows.remove(0), s3("127.0.0.2", 1, "no-match"));
    assert_eq!(rows, vec![s3("127.0.0.3", 1, "no-match")]);
    assert!(two.is_served() && three.is_served());
}

#[test]
fn the_table_size_follows_denied_sources() {
    let since = unix_now();
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    for source in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        assert!(s.connect_from(source).closed_within(CLOSED));
    }
    // A CONFIG SET that fails as a whole changes nothing: no row is lost.
    let rows = denied(&mut admin, &[], since);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        admin.call(&["CONFIG", "SET", "whitelist.denied-sources", "1", "whitelist.max-groups", "0"]),
        Reply::err(
            "ERR CONFIG SET failed (possibly related to argument 'whitelist.max-groups') - invalid whitelist.max-groups \
             '0': expected an integer from 1 to 10000"
        )
    );
    assert_eq!(denied(&mut admin, &[], since), rows);
    assert_eq!(
        admin.call(&["CONFIG", "GET", "whitelist.denied-sources"]),
        Reply::strings(&["whitelist.denied-sources", "128"])
    );
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.denied-sources", "2"]), Reply::ok());
    assert_eq!(
        admin.call(&["CONFIG", "GET", "whitelist.denied-sources"]),
        Reply::strings(&["whitelist.denied-sources", "2"])
    );
    // The most recent rows that fit stay.
    assert_eq!(
        summary(&denied(&mut admin, &[], since)),
        vec![s3("127.0.0.5", 1, "no-match"), s3("127.0.0.4", 1, "no-match")]
    );
    assert!(s.connect_from("127.0.0.3").closed_within(CLOSED));
    assert_eq!(
        summary(&denied(&mut admin, &[], since)),
        vec![s3("127.0.0.3", 1, "no-match"), s3("127.0.0.5", 1, "no-match")]
    );
    assert_eq!(counter(&mut admin, "whitelist_denied_sources"), 2);
    // 0 turns it off.
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.denied-sources", "0"]), Reply::ok());
    assert!(s.connect_from("127.0.0.6").closed_within(CLOSED));
    assert_eq!(admin.call(&["WHITELIST.DENIED"]), Reply::Array(vec![]));
    assert_eq!(counter(&mut admin, "whitelist_denied_sources"), 0);
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.denied-sources", "10000"]), Reply::ok());
    assert!(s.connect_from("127.0.0.7").closed_within(CLOSED));
    assert_eq!(summary(&denied(&mut admin, &[], since)), vec![s3("127.0.0.7", 1, "no-match")]);
    for (value, shown) in [("10001", "10001"), ("-1", "-1"), ("many", "many")] {
        assert_eq!(
            admin.call(&["CONFIG", "SET", "whitelist.denied-sources", value]),
            Reply::err(&format!(
                "ERR CONFIG SET failed (possibly related to argument 'whitelist.denied-sources') - invalid \
                 whitelist.denied-sources '{shown}': expected an integer from 0 to 10000"
            ))
        );
    }
    assert_eq!(
        admin.call(&["CONFIG", "GET", "whitelist.denied-sources"]),
        Reply::strings(&["whitelist.denied-sources", "10000"])
    );
}

/// 5,000 connections from distinct denied addresses: the table stays at its
/// size and the server's memory does not grow with them.
#[test]
fn a_flood_of_distinct_denied_sources_keeps_the_table_and_memory_flat() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "10.0.0.0/8"]);
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.denied-sources", "200"]), Reply::ok());
    let used = |a: &mut Client| -> i64 {
        let text = a.call(&["INFO", "memory"]).text();
        let line = text.lines().find_map(|l| l.strip_prefix("used_memory:")).expect("used_memory");
        line.trim().parse().expect("a number")
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0u64;
    // Paced in rounds that the server must have judged before the next, so
    // no connection is lost to a full accept queue.
    let mut flood = |a: &mut Client, octets: std::ops::Range<u8>| {
        for x in octets {
            for y in 1..=250u8 {
                let source = format!("127.0.{x}.{y}");
                // A refused connect (a full queue) would only weaken the test:
                // every one must land, so a failure is fatal.
                drop(s.connect_from(&source));
                sent += 1;
            }
            common::wait_for("the round to be judged", || {
                assert!(Instant::now() < deadline, "the flood took too long");
                (counter(a, "whitelist_connections_denied") >= sent).then_some(())
            });
        }
    };
    // Warm up: the table fills, and the server's own structures reach their
    // working size.
    flood(&mut admin, 1..5);
    assert_eq!(counter(&mut admin, "whitelist_denied_sources"), 200);
    let before = used(&mut admin);
    flood(&mut admin, 5..25);
    let after = used(&mut admin);
    assert_eq!(counter(&mut admin, "whitelist_connections_denied"), 6_000);
    assert_eq!(counter(&mut admin, "whitelist_denied_sources"), 200);
    // A row and its index place take over 64 bytes: a table that grew with
    // its 5,000 new sources would add well over 300 KB. The tolerance is what
    // Redis's own figures move by between two INFO calls (a few KB).
    assert!((after - before).abs() < 64 * 1024, "used_memory went from {before} to {after}");
    let newest: Vec<String> =
        rows_of(&admin.call(&["WHITELIST.DENIED", "COUNT", "2"])).into_iter().map(|r| r.addr).collect();
    assert_eq!(newest, ["127.0.24.250", "127.0.24.249"]);
}

#[test]
fn when_empty_deny_admits_only_exempt_clients_and_rechecks_on_change() {
    let since = unix_now();
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    let mut five = s.connect_from("127.0.0.5");
    assert!(five.is_served());
    let info = s.info();
    assert_eq!((info["whitelist_when_empty"].as_str(), info["whitelist_enabled"].as_str()), ("allow", "0"));
    let check = |a: &mut Client, addr: &str| a.call(&["WHITELIST.CHECK", addr]);
    let verdict = |v: &str, reason: &str| Reply::Array(vec![b(v), Reply::Nil, Reply::Nil, b(reason)]);
    assert_eq!(check(&mut admin, "127.0.0.5"), verdict("allowed", "whitelist-empty"));

    // The setter only stores; the open connection is closed by the re-check.
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.when-empty", "DENY"]), Reply::ok());
    assert!(five.closed_within(CLOSED));
    assert_eq!(
        admin.call(&["CONFIG", "GET", "whitelist.when-empty"]),
        Reply::strings(&["whitelist.when-empty", "deny"])
    );
    let info = s.info();
    assert_eq!((info["whitelist_when_empty"].as_str(), info["whitelist_enabled"].as_str()), ("deny", "1"));
    assert_eq!(info["whitelist_clients_closed_on_change"], "1");
    assert_eq!(check(&mut admin, "127.0.0.5"), verdict("denied", "whitelist-empty"));
    assert_eq!(check(&mut admin, "10.0.0.1"), verdict("denied", "whitelist-empty"));
    assert!(s.connect_from("127.0.0.6").closed_within(CLOSED));
    assert!(s.connect_from("::1").closed_within(CLOSED));
    // The unix socket stays exempt.
    assert!(s.admin().is_served());
    assert_eq!(
        summary(&denied(&mut admin, &[], since)),
        vec![
            s3("::1", 1, "whitelist-empty"),
            s3("127.0.0.6", 1, "whitelist-empty"),
            s3("127.0.0.5", 1, "whitelist-empty")
        ]
    );

    // Loopback exempt: admitted, CHECK says loopback.
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.allow-loopback", "yes"]), Reply::ok());
    let mut local = s.connect_from("127.0.0.6");
    assert!(local.is_served());
    assert!(s.connect_from("::1").is_served());
    assert_eq!(check(&mut admin, "127.0.0.1"), verdict("allowed", "loopback"));
    assert_eq!(check(&mut admin, "::1"), verdict("allowed", "loopback"));
    assert_eq!(check(&mut admin, "10.0.0.1"), verdict("denied", "whitelist-empty"));

    // The unix-socket exemption off: its clients are denied as unix-socket.
    assert_eq!(local.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "no"]), Reply::ok());
    assert!(admin.closed_within(CLOSED));
    assert!(s.admin().closed_within(CLOSED));
    let rows = summary(&denied(&mut local, &["COUNT", "1"], since));
    assert_eq!(rows, vec![s3("/unixsocket", 2, "unix-socket")]);

    // An entry turns the empty rule off; removing it turns it back on.
    assert_eq!(local.call(&["WHITELIST.SET", "default", "127.0.0.9"]), Reply::Int(1));
    assert_eq!(check(&mut local, "10.0.0.1"), verdict("denied", "no-match"));
    assert_eq!(counter(&mut local, "whitelist_enabled"), 1);
    // Back to allow, empty again: everyone is admitted, nobody is closed.
    assert_eq!(local.call(&["CONFIG", "SET", "whitelist.when-empty", "allow"]), Reply::ok());
    assert_eq!(local.call(&["WHITELIST.DEL", "default", "FORCE"]), Reply::Int(1));
    assert_eq!(check(&mut local, "10.0.0.1"), verdict("allowed", "whitelist-empty"));
    assert_eq!(counter(&mut local, "whitelist_enabled"), 0);
    assert!(local.is_served());
    assert!(s.connect_from("127.0.0.8").is_served());
}

#[test]
fn the_fail_open_guards_step_aside_with_when_empty_deny_but_not_the_own_connection_guard() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.3"]), Reply::Int(2));
    let turns_off = Reply::err(
        "ERR this change would turn the whitelist off and admit every address; add FORCE to apply it anyway",
    );
    assert_eq!(admin.call(&["WHITELIST.DEL", "default"]), turns_off);
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.when-empty", "deny"]), Reply::ok());
    // The caller's own connection is still guarded.
    let mut three = s.connect_from("127.0.0.3");
    assert_eq!(
        three.call(&["WHITELIST.DEL", "default"]),
        Reply::err("ERR this change would disconnect your own connection from 127.0.0.3; add FORCE to apply it anyway")
    );
    // Nothing to guard against: an empty whitelist admits nobody new.
    let mut two = s.connect_from("127.0.0.2");
    assert!(two.is_served());
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "default", "127.0.0.2"]), Reply::Int(1));
    assert!(two.closed_within(CLOSED));
    assert_eq!(admin.call(&["WHITELIST.DEL", "default"]), Reply::Int(1));
    assert!(three.closed_within(CLOSED));
    assert_eq!(admin.call(&["WHITELIST.LIST"]), Reply::Array(vec![]));
    assert_eq!(s.info_field("whitelist_enabled"), "1");
    assert!(s.connect_from("127.0.0.2").closed_within(CLOSED));
    // Allow again: the guard is back.
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.when-empty", "allow"]), Reply::ok());
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.DEL", "default"]), turns_off);
}

#[test]
fn a_client_that_could_not_be_judged_is_recorded_as_error() {
    let since = unix_now();
    let s = Server::start_with(common::Options { module: Some(common::test_module_path()), ..Default::default() });
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "hook-panic"]), Reply::ok());
    assert!(s.connect_from("127.0.0.2").closed_within(CLOSED));
    assert!(s.admin().closed_within(CLOSED));
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "off"]), Reply::ok());
    assert_eq!(
        summary(&denied(&mut admin, &[], since)),
        vec![s3("/unixsocket", 1, "error"), s3("127.0.0.2", 1, "error")]
    );
}

/// Not replicated, not a write: a read-only replica reads and resets its
/// own table, and a RESET on the primary leaves the replica's alone.
#[test]
fn each_server_keeps_its_own_table_and_a_replica_resets_its_own() {
    let since = unix_now();
    let primary = Server::start(&["--repl-diskless-sync-delay", "0", "--whitelist.allow-loopback", "no"]);
    let mut p = primary.admin();
    assert_eq!(p.call(&["WHITELIST.SET", "default", "127.0.0.1"]), Reply::Int(1));
    let replicaof = format!("127.0.0.1 {}", primary.port);
    let replica = Server::start(&["--replicaof", &replicaof, "--whitelist.allow-loopback", "no"]);
    let mut r = replica.admin();
    common::wait_for("the replica's link", || {
        r.call(&["INFO", "replication"]).text().contains("master_link_status:up").then_some(())
    });
    common::wait_for("the replica's whitelist", || (counter(&mut r, "whitelist_entries") == 1).then_some(()));
    assert!(primary.connect_from("127.0.0.3").closed_within(CLOSED));
    assert!(replica.connect_from("127.0.0.4").closed_within(CLOSED));
    assert_eq!(summary(&denied(&mut p, &[], since)), vec![s3("127.0.0.3", 1, "no-match")]);
    assert_eq!(summary(&denied(&mut r, &[], since)), vec![s3("127.0.0.4", 1, "no-match")]);
    assert_eq!(p.call(&["WHITELIST.DENIED", "RESET"]), Reply::ok());
    // The replica's own table is untouched, then reset by its own command.
    assert_eq!(p.call(&["WAIT", "1", "5000"]), Reply::Int(1));
    assert_eq!(summary(&denied(&mut r, &[], since)), vec![s3("127.0.0.4", 1, "no-match")]);
    assert_eq!(r.call(&["WHITELIST.DENIED", "RESET"]), Reply::ok());
    assert_eq!(r.call(&["WHITELIST.DENIED"]), Reply::Array(vec![]));
    assert_eq!(p.call(&["WHITELIST.DENIED"]), Reply::Array(vec![]));
}

/// The start-up load of data that carries no whitelist: until it ends,
/// non-exempt clients are denied as `loading`, and `WHITELIST.DENIED`
/// answers during the load.
#[test]
fn the_start_up_window_records_loading() {
    let since = unix_now();
    let mut plain = Server::start_with(common::Options { without_module: true, ..Default::default() });
    let mut a = plain.admin();
    assert_eq!(a.call(&["DEBUG", "POPULATE", "40000"]), Reply::ok());
    assert_eq!(a.call(&["SAVE"]), Reply::ok());
    plain.stop(false);
    let dir = std::sync::Arc::clone(&plain.dir);
    let socket = dir.path().join("redis.sock");
    let _ = std::fs::remove_file(&socket);
    /// Stops the loading server however the test ends.
    struct Stopper(Option<std::process::Child>);
    impl Drop for Stopper {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
            }
            common::reap(&mut self.0);
        }
    }
    let _child = Stopper(Some(
        std::process::Command::new(common::server_binary())
            .arg("--port")
            .arg(plain.port.to_string())
            .args(["--bind", "127.0.0.1 -::1", "--protected-mode", "no", "--dir"])
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", "", "--daemonize", "no", "--loadmodule"])
            .arg(common::module_path())
            .args(common::extra_server_args())
            .args(NO_LOOPBACK)
            .args(["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the server starts"),
    ));
    let admin = || Client::unix(&socket).ok();
    common::wait_for("the server to be loading", || match admin()?.try_call(&["PING"]).ok()? {
        Reply::Error(e) if e.starts_with("LOADING") => Some(()),
        Reply::Status(s) => panic!("the load ended too early ({s}): make it slower"),
        _ => None,
    });
    let target = std::net::SocketAddr::new("127.0.0.1".parse().expect("ip"), plain.port);
    let mut early = Client::tcp_from("127.0.0.3".parse().expect("ip"), target).expect("connect");
    assert!(early.closed_within(CLOSED));
    let mut a = admin().expect("the admin socket");
    let during = a.call(&["WHITELIST.DENIED"]);
    assert_eq!(summary(&rows_of(&during)), vec![s3("127.0.0.3", 1, "loading")]);
    assert!(since <= rows_of(&during)[0].first);
}

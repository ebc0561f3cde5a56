//! Connection enforcement against a real server: who is admitted, who is
//! closed, when, and what the counters and the log say.

mod common;

use std::time::Duration;

use common::{counter, info_of, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];

fn info_u64(s: &Server, field: &str) -> u64 {
    s.info_field(field).parse().expect("a number")
}

#[test]
fn whitelisted_sources_are_served_others_are_closed_before_any_reply() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.16/30"]), Reply::Int(2));
    for allowed in ["127.0.0.2", "127.0.0.16", "127.0.0.19"] {
        assert!(s.connect_from(allowed).is_served(), "{allowed} should be served");
    }
    for denied in ["127.0.0.3", "127.0.0.20", "127.0.0.1"] {
        let mut c = s.connect_from(denied);
        assert!(c.closed_within(Duration::from_secs(5)), "{denied} should be closed");
    }
    // A denied client never gets to run a command: the command it sent at once is lost.
    let mut c = s.connect_from("127.0.0.9");
    let _ = c.send(&[b"SET", b"k", b"v"]);
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(admin.call(&["EXISTS", "k"]), Reply::Int(0));
}

#[test]
fn ipv6_loopback_is_matched_like_any_address() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "v6", "::1"]), Reply::Int(1));
    assert!(s.connect_from("::1").is_served());
    assert!(s.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    assert_eq!(admin.call(&["WHITELIST.SET", "v6", "::/0"]), Reply::Int(1));
    assert!(s.connect_from("::1").is_served());
    assert_eq!(admin.call(&["WHITELIST.SET", "v6", "2001:db8::/32", "FORCE"]), Reply::Int(1));
    assert!(s.connect_from("::1").closed_within(Duration::from_secs(5)));
}

#[test]
fn loopback_is_admitted_by_default() {
    let s = Server::start(&[]);
    s.admin().call(&["WHITELIST.SET", "default", "10.0.0.0/8"]);
    assert!(s.connect_from("127.0.0.1").is_served());
    assert!(s.connect_from("127.0.0.77").is_served());
    assert!(s.connect_from("::1").is_served());
}

#[test]
fn unix_socket_clients_follow_allow_unixsocket() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    assert!(s.admin().is_served());
    // Turning the exemption off closes the admin connection itself and every
    // later unix-socket client.
    let mut tcp = s.connect_from("127.0.0.2");
    assert_eq!(tcp.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "no"]), Reply::ok());
    assert!(admin.closed_within(Duration::from_secs(5)));
    let mut later = s.admin();
    assert!(later.closed_within(Duration::from_secs(5)));
    assert_eq!(tcp.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "yes"]), Reply::ok());
    assert!(s.admin().is_served());
}

#[test]
fn an_open_connection_is_closed_when_its_entry_goes() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.3"]);
    let mut two = s.connect_from("127.0.0.2");
    let mut three = s.connect_from("127.0.0.3");
    assert!(two.is_served() && three.is_served());
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "default", "127.0.0.3"]), Reply::Int(1));
    assert!(three.closed_within(Duration::from_secs(5)));
    assert!(two.is_served());
    assert_eq!(info_u64(&s, "whitelist_clients_closed_on_change"), 1);
    s.wait_log("closed connection after a whitelist change from 127.0.0.3:");
}

#[test]
fn monitor_mode_counts_and_logs_but_closes_nobody() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "monitor"]);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    let checked = counter(&mut admin, "whitelist_connections_checked");
    let allowed = counter(&mut admin, "whitelist_connections_allowed");
    let mut ok = s.connect_from("127.0.0.2");
    let mut would = s.connect_from("127.0.0.3");
    assert!(ok.is_served());
    assert!(would.is_served());
    let info = info_of(&mut admin);
    assert_eq!(info["whitelist_mode"], "monitor");
    assert_eq!(info["whitelist_connections_checked"], (checked + 2).to_string());
    assert_eq!(info["whitelist_connections_allowed"], (allowed + 1).to_string());
    assert_eq!(info["whitelist_connections_would_deny"], "1");
    assert_eq!(info["whitelist_connections_denied"], "0");
    assert_eq!(info["whitelist_last_denied_addr"], "127.0.0.3");
    s.wait_log("would deny connection (whitelist.mode monitor) from 127.0.0.3:");
    // Switching to enforce closes the client that was only being watched.
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.mode", "enforce"]), Reply::ok());
    assert!(would.closed_within(Duration::from_secs(5)));
    assert!(ok.is_served());
}

#[test]
fn mode_off_checks_nothing_and_counts_nothing() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "off"]);
    s.admin().call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    assert!(s.connect_from("127.0.0.3").is_served());
    assert!(s.admin().is_served());
    assert_eq!(info_u64(&s, "whitelist_connections_checked"), 0);
    assert_eq!(info_u64(&s, "whitelist_connections_allowed"), 0);
}

#[test]
fn unix_socket_admissions_are_counted_as_allowed() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    let before = counter(&mut admin, "whitelist_connections_allowed");
    assert!(s.admin().is_served());
    assert_eq!(counter(&mut admin, "whitelist_connections_allowed"), before + 1);
}

#[test]
fn counters_hits_and_last_denied() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "aa", "127.0.0.2"]);
    admin.call(&["WHITELIST.SET", "bb", "127.0.0.0/24"]);
    let checked = counter(&mut admin, "whitelist_connections_checked");
    let allowed = counter(&mut admin, "whitelist_connections_allowed");
    for _ in 0..3 {
        assert!(s.connect_from("127.0.0.2").is_served());
    }
    assert!(s.connect_from("127.0.0.5").is_served());
    assert!(s.connect_from("127.0.1.1").closed_within(Duration::from_secs(5)));
    let info = info_of(&mut admin);
    assert_eq!(info["whitelist_connections_checked"], (checked + 5).to_string());
    assert_eq!(info["whitelist_connections_allowed"], (allowed + 4).to_string());
    assert_eq!(info["whitelist_connections_denied"], "1");
    assert_eq!(info["whitelist_group_aa"], "entries=1,hits=3,attribute=show,users=0");
    assert_eq!(info["whitelist_group_bb"], "entries=1,hits=1,attribute=show,users=0");
    assert_eq!(info["whitelist_last_denied_addr"], "127.0.1.1");
    let when: i64 = info["whitelist_last_denied_time"].parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - when).abs() <= 5, "last_denied_time {when} is not now ({now})");
    s.wait_log("denied connection from 127.0.1.1:");
}

/// `INFO clients` field `connected_clients`, through `client`.
fn connected_clients(client: &mut common::Client) -> u64 {
    let text = client.call(&["INFO", "clients"]).text();
    text.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("connected_clients in INFO clients")
}

#[test]
fn a_burst_of_3000_denied_connections() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    let mut allowed = s.connect_from("127.0.0.2");
    // Served means accepted: only then does the baseline count it.
    assert!(allowed.is_served());
    // The admin's and the allowed client, nobody else: a connection closed
    // just before (the start-up check's) may still be counted for a moment.
    let baseline = 2;
    common::wait_for("only the admin and the allowed client to be connected", || {
        (connected_clients(&mut admin) == baseline).then_some(())
    });
    let denied_before = counter(&mut admin, "whitelist_connections_denied");
    let start = std::time::Instant::now();
    let mut slowest_ping = Duration::ZERO;
    // 3,000 connections from 50 addresses, in waves of 250 held open at once.
    for wave in 0..12 {
        let mut open = Vec::with_capacity(250);
        for i in 0..250 {
            let source = format!("127.0.0.{}", 3 + (wave * 250 + i) % 50);
            open.push(s.connect_from(&source));
        }
        let t = std::time::Instant::now();
        assert!(allowed.is_served(), "the allowed client was not served during wave {wave}");
        slowest_ping = slowest_ping.max(t.elapsed());
        for (i, c) in open.iter_mut().enumerate() {
            assert!(c.closed_within(Duration::from_secs(5)), "connection {i} of wave {wave} stayed open");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the burst took too long");
    }
    let elapsed = start.elapsed();
    assert!(slowest_ping < Duration::from_secs(1), "PING took {slowest_ping:?} during the burst");
    assert_eq!(counter(&mut admin, "whitelist_connections_denied"), denied_before + 3000);
    // Nothing is left behind: the closed clients are freed.
    let freeing = std::time::Instant::now();
    while connected_clients(&mut admin) != baseline {
        assert!(
            freeing.elapsed() < Duration::from_secs(10),
            "the denied clients were not freed: {} connected, {baseline} expected; {:?}",
            connected_clients(&mut admin),
            admin.call(&["CLIENT", "LIST"])
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // At most one denial line per second, plus the counts of the rest.
    s.wait_log("more denied connections in the last second");
    let log = s.log();
    let lines = log.lines().filter(|l| l.contains("denied connection from 127.0.0.")).count() as u64;
    assert!(lines >= 1 && lines <= elapsed.as_secs() + 2, "{lines} denial lines in {elapsed:?}");
    let suppressed: u64 = log
        .lines()
        .filter_map(|l| l.split("<whitelist> ").nth(1))
        .filter_map(|l| l.strip_suffix(" more denied connections in the last second (not logged one by one)"))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    common::wait_for("every denial to be logged or counted", || {
        let log = s.log();
        let lines = log.lines().filter(|l| l.contains("denied connection from 127.0.0.")).count() as u64;
        let counted: u64 = log
            .lines()
            .filter_map(|l| l.split("<whitelist> ").nth(1))
            .filter_map(|l| l.strip_suffix(" more denied connections in the last second (not logged one by one)"))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum();
        (lines + counted == 3000).then_some(())
    });
    assert!(suppressed > 0);
    assert!(allowed.is_served());
}

#[test]
fn clients_connected_before_module_load_are_checked_at_the_first_rule_change() {
    let mut options = common::Options::args(&["--enable-module-command", "local"]);
    options.without_module = true;
    let s = Server::start_with(options);
    let mut two = s.connect_from("127.0.0.2");
    let mut three = s.connect_from("127.0.0.3");
    let mut admin = s.admin();
    let path = common::module_path();
    let module = path.to_str().expect("a UTF-8 path");
    assert_eq!(
        admin.call(&["MODULE", "LOAD", module, "mode", "monitor"]),
        Reply::err("ERR Error loading the extension. Please check the server logs.")
    );
    s.wait_log("the module takes no arguments");
    assert_eq!(admin.call(&["MODULE", "LOAD", module]), Reply::ok());
    s.wait_log("connections open before the module loaded are checked at every rule change");
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.allow-loopback", "no"]), Reply::ok());
    // Nothing is on yet: both are still served.
    assert!(two.is_served() && three.is_served());
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert!(three.closed_within(Duration::from_secs(5)));
    assert!(two.is_served());
    assert!(admin.is_served());
}

#[test]
fn a_panic_in_a_command_becomes_an_error_reply() {
    let s = Server::start_with(common::Options { module: Some(common::test_module_path()), ..Default::default() });
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "10.0.0.0/8"]);
    let before = admin.call(&["WHITELIST.EXPORT"]);
    assert_eq!(
        admin.call(&["WHITELIST.DEBUG-PANIC"]),
        Reply::err("ERR internal error: nothing was changed (see the server log)")
    );
    s.wait_log("internal error, the operation was abandoned: panicked at");
    // The server is up, the whitelist intact, and the module still works.
    assert_eq!(admin.call(&["PING"]), Reply::Status("PONG".into()));
    assert_eq!(admin.call(&["WHITELIST.EXPORT"]), before);
    assert_eq!(admin.call(&["WHITELIST.ADD", "default", "192.0.2.1"]), Reply::Int(1));
    assert!(s.connect_from("127.0.0.2").is_served());
}

#[test]
fn the_hook_fails_closed_when_it_cannot_decide() {
    let s = Server::start_with(common::Options { module: Some(common::test_module_path()), ..Default::default() });
    let mut admin = s.admin();
    // The whitelist is empty: everyone would be admitted.
    assert!(s.connect_from("127.0.0.2").is_served());
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "hook-panic"]), Reply::ok());
    assert!(s.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    assert!(s.admin().closed_within(Duration::from_secs(5)));
    s.wait_log("it could not be judged (an internal error (see the line above))");
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "off"]), Reply::ok());
    assert!(s.connect_from("127.0.0.2").is_served());
    assert_eq!(admin.call(&["PING"]), Reply::Status("PONG".into()));
}

#[test]
fn monitor_mode_reports_a_connection_once_until_the_rules_admit_it_again() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "monitor"]);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    let mut three = s.connect_from("127.0.0.3");
    assert!(three.is_served());
    assert_eq!(counter(&mut admin, "whitelist_connections_would_deny"), 1);
    // Later changes that still deny it report nothing new.
    assert_eq!(admin.call(&["WHITELIST.ADD", "default", "127.0.0.4"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.ADD", "default", "127.0.0.5"]), Reply::Int(1));
    assert_eq!(counter(&mut admin, "whitelist_connections_would_deny"), 1);
    assert!(!s.log().contains("would close connection (whitelist.mode monitor) from 127.0.0.3:"));
    // Admitted, then denied again: one more report.
    assert_eq!(admin.call(&["WHITELIST.ADD", "default", "127.0.0.3"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "default", "127.0.0.3"]), Reply::Int(1));
    assert_eq!(counter(&mut admin, "whitelist_connections_would_deny"), 2);
    assert!(three.is_served());
}

#[test]
fn the_audit_line_names_the_callers_user_when_force_cuts_the_caller() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(admin.call(&["ACL", "SETUSER", "alice", "on", ">pw", "+@all", "~*"]), Reply::ok());
    let mut alice = s.connect_from("127.0.0.2");
    assert_eq!(alice.call(&["AUTH", "alice", "pw"]), Reply::ok());
    let port = alice.local_port();
    assert_eq!(alice.call(&["WHITELIST.SET", "default", "127.0.0.3", "FORCE"]), Reply::Int(1));
    assert!(alice.closed_within(Duration::from_secs(5)));
    s.wait_log(&format!("WHITELIST.SET default by 127.0.0.2:{port} (user alice): 1 added, 1 removed, version 2"));
}

#[test]
fn a_thousand_denied_connections_under_four_io_threads() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--io-threads", "4"]);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    let mut allowed = s.connect_from("127.0.0.2");
    assert!(allowed.is_served());
    let denied_before = counter(&mut admin, "whitelist_connections_denied");
    for wave in 0..4 {
        let mut open: Vec<common::Client> =
            (0..250).map(|i| s.connect_from(&format!("127.0.0.{}", 3 + (wave * 250 + i) % 50))).collect();
        // Some send a command at once: it never runs.
        for c in open.iter_mut().step_by(10) {
            let _ = c.send(&[b"SET", b"k", b"v"]);
        }
        for (i, c) in open.iter_mut().enumerate() {
            assert!(closed_or_noperm(c), "connection {i} of wave {wave} stayed open");
        }
        assert!(allowed.is_served(), "the allowed client was not served after wave {wave}");
    }
    assert_eq!(counter(&mut admin, "whitelist_connections_denied"), denied_before + 1000);
    assert_eq!(admin.call(&["EXISTS", "k"]), Reply::Int(0));
    assert_eq!(admin.call(&["PING"]), Reply::Status("PONG".into()));
}

/// Closed before any reply, or (a client held for closing on Redis 8 with
/// I/O threads) at most a `-NOPERM` error and then closed.
fn closed_or_noperm(c: &mut common::Client) -> bool {
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    let start = std::time::Instant::now();
    loop {
        let n = c.read_raw(&mut buf);
        if n == 0 {
            let text = String::from_utf8_lossy(&got).to_string();
            assert!(text.is_empty() || text.starts_with("-NOPERM"), "a refused client got {text:?}");
            return true;
        }
        got.extend_from_slice(&buf[..n]);
        if start.elapsed() > Duration::from_secs(5) {
            return false;
        }
    }
}

/// The commands a held client tries: the no-auth ones (which skip the ACL
/// check, so only the command filter refuses them), a login, and others.
const HELD_TRIES: &[&[&str]] = &[
    &["HELLO", "3"],
    &["HELLO"],
    &["QUIT"],
    &["RESET"],
    &["PING"],
    &["AUTH", "default", "x"],
    &["HELLO", "2", "AUTH", "default", "x"],
    &["CLIENT", "SETNAME", "x"],
    &["CONFIG", "SET", "whitelist.mode", "off"],
    &["SET", "k", "v"],
];

/// Redis 8 hands a new client to an I/O thread right after the connection
/// event, so a refused client is held (as a user without permissions) and
/// closed within one event-loop turn. `hold-open` keeps it held to show what
/// it may get in that turn: `-NOPERM` for every command, the no-auth ones
/// (`HELLO`, `QUIT`, `RESET`, `AUTH`) included, which the command filter
/// turns into a `PING` the ACL refuses. Elsewhere it is closed inside the
/// event, before any byte.
#[test]
fn a_held_client_gets_nothing_but_noperm() {
    let s = Server::start_with(common::Options {
        module: Some(common::test_module_path()),
        ..common::Options::args(&["--whitelist.allow-loopback", "no", "--io-threads", "4"])
    });
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    let commands = admin.call(&["COMMAND", "COUNT"]);
    let mut allowed = s.connect_from("127.0.0.2");
    assert!(allowed.is_served());
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "hold-open"]), Reply::ok());
    let flavor = common::flavor();
    if flavor.valkey || flavor.version < (8, 0, 0) {
        let mut c = s.connect_from("127.0.0.3");
        let _ = c.send(&[b"HELLO", b"3"]);
        assert_eq!(read_to_eof(&mut c), "", "{} closes inside the event", flavor.describe());
        assert_nothing_held_ran(&mut admin, 0);
        return;
    }
    let refused = flavor.noperm("whitelist-refused", "ping");
    let mut held = s.connect_from("127.0.0.3");
    for args in HELD_TRIES {
        assert_eq!(held.call(args), refused, "{args:?}");
    }
    // Pipelined, the same: each command gets its error, none runs.
    let mut piped = s.connect_from("127.0.0.4");
    for args in HELD_TRIES {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        piped.send(&args).expect("send");
    }
    let line = format!("-{}\r\n", refused.text());
    assert_eq!(read_lines(&mut piped, HELD_TRIES.len()), line.repeat(HELD_TRIES.len()));
    // Meanwhile every other client is served as usual: the filter refuses
    // held clients only.
    assert!(matches!(allowed.call(&["HELLO", "2"]), Reply::Array(v) if v.first() == Some(&Reply::bulk("server"))));
    assert_eq!(allowed.call(&["CLIENT", "SETNAME", "x"]), Reply::ok());
    assert_eq!(admin.call(&["CONFIG", "GET", "whitelist.mode"]), Reply::strings(&["whitelist.mode", "enforce"]));
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "off"]), Reply::ok());
    assert!(held.closed_within(Duration::from_secs(5)));
    assert!(piped.closed_within(Duration::from_secs(5)));
    // Nobody held: the filter is gone, every command is itself again.
    assert_eq!(allowed.call(&["PING"]), Reply::Status("PONG".into()));
    assert!(matches!(allowed.call(&["HELLO", "2"]), Reply::Array(v) if v.first() == Some(&Reply::bulk("server"))));
    assert_eq!(allowed.call(&["RESET"]), Reply::Status("RESET".into()));
    assert_eq!(admin.call(&["COMMAND", "COUNT"]), commands);
    assert_nothing_held_ran(&mut admin, 2 * HELD_TRIES.len() as u64);
    // A client held later is refused again (the filter comes back).
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "hold-open"]), Reply::ok());
    let mut again = s.connect_from("127.0.0.5");
    assert_eq!(again.call(&["HELLO", "3"]), refused);
    assert_eq!(admin.call(&["WHITELIST.DEBUG-FAULT", "off"]), Reply::ok());
    assert!(again.closed_within(Duration::from_secs(5)));
    assert!(s.connect_from("127.0.0.2").is_served());
}

/// Where nobody is held (Redis 8 without I/O threads, and every server of
/// another kind), a refused client is closed inside the connection event:
/// whatever it sends, it gets no byte.
#[test]
fn a_refused_client_gets_no_byte_where_nobody_is_held() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--io-threads", "1"]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    for args in HELD_TRIES {
        let mut c = s.connect_from("127.0.0.3");
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let _ = c.send(&args);
        assert_eq!(read_to_eof(&mut c), "", "{args:?}");
    }
    assert_nothing_held_ran(&mut admin, 0);
    assert!(s.connect_from("127.0.0.2").is_served());
}

/// `INFO commandstats` after refused clients tried [`HELD_TRIES`]: `PING`
/// was refused exactly `refused` times (each held client's command became a
/// refused `PING`), and nothing else of theirs ran or was even looked at.
fn assert_nothing_held_ran(admin: &mut common::Client, refused: u64) {
    let stats = admin.call(&["INFO", "commandstats"]).text();
    let stat = |name: &str| {
        stats.lines().find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:"))).map(|fields| {
            fields
                .split(',')
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>()
        })
    };
    let ping = stat("ping").expect("cmdstat_ping");
    assert_eq!(ping["rejected_calls"], refused.to_string(), "{stats}");
    for name in ["quit", "auth", "set", "config|set"] {
        assert!(stat(name).is_none(), "{name} ran or was refused: {stats}");
    }
    // Only the allowed client's own calls, none refused.
    for name in ["hello", "reset", "client|setname"] {
        if let Some(fields) = stat(name) {
            assert_eq!(fields["rejected_calls"], "0", "{stats}");
        }
    }
    assert_eq!(admin.call(&["EXISTS", "k"]), Reply::Int(0));
}

/// The first `n` lines the server sends (5 s at most).
fn read_lines(c: &mut common::Client, n: usize) -> String {
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    let start = std::time::Instant::now();
    while got.windows(2).filter(|w| w == b"\r\n").count() < n {
        let read = c.read_raw(&mut buf);
        assert!(read > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..read]);
        assert!(start.elapsed() < Duration::from_secs(5), "only {:?}", String::from_utf8_lossy(&got));
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Every byte until the server closes the connection (5 s at most).
fn read_to_eof(c: &mut common::Client) -> String {
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    let start = std::time::Instant::now();
    loop {
        let n = c.read_raw(&mut buf);
        if n == 0 {
            return String::from_utf8_lossy(&got).into_owned();
        }
        got.extend_from_slice(&buf[..n]);
        assert!(start.elapsed() < Duration::from_secs(5), "still open after {got:?}");
    }
}

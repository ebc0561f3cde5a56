//! Reliability against real servers: damaged persisted data, crashes and
//! link failures, load, and hostile input. The soak test runs 10 seconds
//! here; `make soak` runs it longer (`SOAK_SECONDS`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{counter, info_of, wait_for, Client, Reply, Server};

/// `INFO <section>` as a map.
fn info_section(c: &mut Client, section: &str) -> HashMap<String, String> {
    c.call(&["INFO", section])
        .text()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim_end().to_string()))
        .collect()
}

/// A numeric field of `INFO <section>`.
fn info_number(c: &mut Client, section: &str, field: &str) -> i64 {
    let info = info_section(c, section);
    let value = info.get(field).unwrap_or_else(|| panic!("INFO {section} has no {field}"));
    value.parse().unwrap_or_else(|e| panic!("INFO {section} {field}:{value}: {e}"))
}

fn export(c: &mut Client) -> Reply {
    c.call(&["WHITELIST.EXPORT"])
}

fn pong() -> Reply {
    Reply::Status("PONG".into())
}

/// A whitelist with groups of both families, a hidden one, and a version above 1.
fn populate(c: &mut Client) {
    assert_eq!(c.call(&["WHITELIST.SET", "prod", "10.0.0.0/8,192.0.2.7", "2001:db8::/32"]), Reply::Int(3));
    assert_eq!(c.call(&["WHITELIST.SET", "sys", "127.0.0.2", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    assert_eq!(c.call(&["WHITELIST.ADD", "prod", "198.51.100.0/24"]), Reply::Int(1));
}

// --- Damaged persisted data -------------------------------------------------

/// Ways to damage the whitelist record of a file.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// The file ends inside the record.
    Truncated,
    /// One address byte flipped: the entry still looks valid, only the CRC tells.
    Flipped,
    /// The encoding-version byte says 3 (which breaks the CRC too; the version
    /// is checked first).
    NewerEncoding,
}

const DAMAGES: [Damage; 3] = [Damage::Truncated, Damage::Flipped, Damage::NewerEncoding];

impl Damage {
    /// `bytes` (a file holding the record `populate` wrote) damaged, and the
    /// line the module must log when it refuses it.
    fn apply(self, bytes: &[u8]) -> (Vec<u8>, &'static str) {
        let at = bytes.windows(5).position(|w| w == b"WLST\x02").expect("the whitelist record is in the file");
        // The layout of encoding version 2 (core/src/encoding.rs): magic and
        // version (5 bytes), the whitelist section's header (10), version and
        // group count (12), then group `prod` (1 + 4 + 1 + 4 bytes), then its
        // entries of 6 bytes each (kind, prefix, 4 address bytes) for IPv4:
        // the second is 192.0.2.7.
        let second = at + 27 + 10 + 6;
        assert_eq!(&bytes[second..second + 6], &[4, 32, 192, 0, 2, 7], "the record's layout moved");
        let mut out = bytes.to_vec();
        match self {
            Damage::Truncated => {
                out.truncate(second + 3);
                (out, "refusing the whitelist in this data: it is truncated")
            }
            Damage::Flipped => {
                // 192.0.2.7 becomes 192.0.2.6.
                out[second + 5] ^= 1;
                (out, "refusing the whitelist in this data: checksum mismatch: the data is corrupt")
            }
            Damage::NewerEncoding => {
                out[at + 4] = 3;
                (
                    out,
                    "refusing the whitelist in this data: encoding version 3 is newer than this module reads (2); \
                     upgrade the module",
                )
            }
        }
    }
}

/// Redis's own byte-level checks off, so single bytes can be damaged.
const RAW_RDB: &[&str] = &["--rdbcompression", "no", "--rdbchecksum", "no"];

/// For each damage: writes the damaged copy of `file`, and checks that the
/// server refuses to start (the process exits) with the module's line, and
/// never reaches "Ready to accept connections". Then restores the intact file
/// and checks that it loads `expected`: the damage alone was the cause.
fn refuses_each_damage(
    s: &mut Server,
    args: &[&str],
    file: &Path,
    damages: &[Damage],
    expected: &Reply,
    rdb_checked: bool,
) {
    let intact = std::fs::read(file).expect("the saved file");
    for &damage in damages {
        let (bytes, line) = damage.apply(&intact);
        std::fs::write(file, &bytes).expect("write the damaged file");
        let log_before = s.log().len();
        match s.try_start_again(args) {
            Ok(started) => {
                let served = export(&mut started.admin());
                panic!("{damage:?}: the server started on damaged data, serving {served:?}");
            }
            Err(log) => assert!(log.starts_with("exited with"), "{damage:?}: the server did not exit:\n{log}"),
        }
        let log = s.log();
        let this_start = &log[log_before..];
        assert!(this_start.contains(line), "{damage:?}: {line:?} missing from\n{this_start}");
        assert!(!this_start.contains("Ready to accept connections"), "{damage:?}:\n{this_start}");
        // Nothing of the refused data is taken, and the log does not say
        // otherwise while the server stops.
        for taken in ["the loaded data carries no whitelist", "whitelist loaded:"] {
            assert!(!this_start.contains(taken), "{damage:?}: {taken:?} in\n{this_start}");
        }
        if rdb_checked && !matches!(damage, Damage::Truncated) {
            // Redis checks an RDB it failed to load before it exits; the
            // check is a load of its own that skips the record and ends
            // well, unless the file itself ends early.
            let ended = "the load that refused its whitelist record ended: the whitelist in force (version 0) stays";
            assert!(this_start.contains(ended), "{damage:?}: {ended:?} missing from\n{this_start}");
        }
    }
    std::fs::write(file, &intact).expect("restore the file");
    let again = s.start_again(args);
    assert_eq!(&export(&mut again.admin()), expected);
}

/// Saves an RDB of the populated whitelist and stops the server.
fn saved_rdb() -> (Server, Reply) {
    let mut s = Server::start(RAW_RDB);
    let mut a = s.admin();
    populate(&mut a);
    let expected = export(&mut a);
    assert_eq!(a.call(&["SAVE"]), Reply::ok());
    s.stop(false);
    (s, expected)
}

fn damaged_rdb_stops_the_server(damage: Damage) {
    let (mut s, expected) = saved_rdb();
    let file = s.dir.path().join("dump.rdb");
    refuses_each_damage(&mut s, RAW_RDB, &file, &[damage], &expected, true);
}

#[test]
fn a_truncated_whitelist_record_stops_the_server() {
    damaged_rdb_stops_the_server(Damage::Truncated);
}

#[test]
fn a_corrupt_whitelist_record_stops_the_server() {
    damaged_rdb_stops_the_server(Damage::Flipped);
}

#[test]
fn a_whitelist_record_from_a_newer_encoding_stops_the_server() {
    damaged_rdb_stops_the_server(Damage::NewerEncoding);
}

fn base_rdb(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".base.rdb"))
        .expect("an RDB base file")
}

#[test]
fn damage_in_an_aof_preamble_stops_the_server_too() {
    let args =
        ["--appendonly", "yes", "--aof-use-rdb-preamble", "yes", "--rdbcompression", "no", "--rdbchecksum", "no"];
    let mut s = Server::start(&args);
    let mut a = s.admin();
    populate(&mut a);
    let expected = export(&mut a);
    // The rewrite puts the whitelist into the base file's RDB preamble.
    assert_eq!(a.call(&["BGREWRITEAOF"]), Reply::Status("Background append only file rewriting started".into()));
    wait_for("the AOF rewrite", || {
        let p = info_section(&mut a, "persistence");
        (p["aof_rewrite_in_progress"] == "0" && p["aof_rewrite_scheduled"] == "0").then_some(())
    });
    s.stop(false);
    let base = base_rdb(s.dir.path());
    refuses_each_damage(&mut s, &args, &base, &DAMAGES, &expected, false);
}

// --- Faults --------------------------------------------------------------------

#[test]
fn kill_9_after_fsynced_changes_loses_none_of_them() {
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let mut s = Server::start(&args);
    let mut a = s.admin();
    // How many changes of each kind changed something: SET, ADD, REMOVE,
    // DEL, IMPORT.
    let mut effective = [0i64; 5];
    for i in 0..50u32 {
        let group = format!("g{}", i % 7);
        let other = format!("g{}", (i + 3) % 7);
        let net = format!("10.{}.{i}.0/24", i % 3);
        let host = format!("2001:db8:{i:x}::1");
        let (kind, reply) = match i % 10 {
            0 => {
                let version = counter(&mut a, "whitelist_version");
                let doc =
                    format!(r#"{{"groups":[{{"name":"{group}","entries":["192.0.2.{i}","2001:db8:{i:x}::/48"]}},"#)
                        + &format!(r#"{{"name":"sys","attribute":"hidden","entries":["198.51.100.{i}"]}}]}}"#);
                let reply = a.call(&["WHITELIST.IMPORT", &doc, "IFVERSION", &version.to_string(), "FORCE"]);
                assert_eq!(reply, Reply::Int(version as i64 + 1), "change {i}");
                (4, Reply::Int(1))
            }
            1 | 5 => {
                // A block no group held before: always a change.
                let attribute = if i % 3 == 0 { "hidden" } else { "show" };
                (0, a.call(&["WHITELIST.SET", &group, &net, &host, "ATTRIBUTE", attribute, "FORCE"]))
            }
            2 | 6 | 8 => (1, a.call(&["WHITELIST.ADD", &group, &format!("{net},{host}"), "203.0.113.9"])),
            // What the ADD just before added.
            3 | 7 => {
                let added = format!("g{}", (i - 1) % 7);
                (2, a.call(&["WHITELIST.REMOVE", &added, "203.0.113.9", "192.0.2.20", "FORCE"]))
            }
            _ => (3, a.call(&["WHITELIST.DEL", &other, "FORCE"])),
        };
        effective[kind] += i64::from(reply.int() > 0);
    }
    assert!(effective.iter().all(|&n| n > 0), "every kind of change changed something: {effective:?}");
    let before = export(&mut a);
    // One version per effective change: all 50 reached the server.
    assert_eq!(counter(&mut a, "whitelist_version") as i64, effective.iter().sum::<i64>());
    assert!(counter(&mut a, "whitelist_groups") >= 3, "{before:?}");
    s.kill();
    let s = s.start_again(&args);
    assert_eq!(export(&mut s.admin()), before);
}

fn replica_of(master: &Server, args: &[&str]) -> Server {
    let link = format!("127.0.0.1 {}", master.port);
    let mut all = vec!["--replicaof", link.as_str()];
    all.extend_from_slice(args);
    let r = Server::start(&all);
    wait_link(&mut r.admin(), "up");
    r
}

fn wait_link(replica: &mut Client, status: &str) {
    wait_for(&format!("master_link_status:{status}"), || {
        (info_section(replica, "replication").get("master_link_status").map(String::as_str) == Some(status))
            .then_some(())
    });
}

fn wait_same_whitelist(master: &mut Client, replica: &mut Client) {
    wait_for("the replica to catch up", || (export(master) == export(replica)).then_some(()));
}

#[test]
fn a_promoted_replica_enforces_the_same_whitelist() {
    let m = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut ma = m.admin();
    assert_eq!(ma.call(&["WHITELIST.SET", "app", "127.0.0.2"]), Reply::Int(1));
    let r = replica_of(&m, &["--whitelist.allow-loopback", "no"]);
    let mut ra = r.admin();
    wait_same_whitelist(&mut ma, &mut ra);
    let mut app = r.connect_from("127.0.0.2");
    assert_eq!(app.call(&["SET", "k", "v"]), Reply::err("READONLY You can't write against a read only replica."));
    assert_eq!(ra.call(&["REPLICAOF", "NO", "ONE"]), Reply::ok());
    assert_eq!(info_section(&mut ra, "replication")["role"], "master");
    assert!(r.connect_from("127.0.0.2").is_served());
    assert!(r.connect_from("127.0.0.3").closed_within(Duration::from_secs(5)));
    // Writes work on the new primary, for data and for the whitelist.
    assert_eq!(app.call(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(ra.call(&["WHITELIST.ADD", "app", "127.0.0.3"]), Reply::Int(1));
    assert!(r.connect_from("127.0.0.3").is_served());
}

/// The master changes its whitelist three times while the replica's link is
/// down; `cut` takes the link down, `restore` brings it back. Returns the
/// master's (full syncs, partial syncs) during the outage and reconnection.
fn converges_after_an_outage(cut: impl FnOnce(&mut Client), restore: impl FnOnce(&mut Client, u16)) -> (i64, i64) {
    let m = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut ma = m.admin();
    populate(&mut ma);
    let r = replica_of(&m, &[]);
    let mut ra = r.admin();
    wait_same_whitelist(&mut ma, &mut ra);
    let full = info_number(&mut ma, "stats", "sync_full");
    let partial = info_number(&mut ma, "stats", "sync_partial_ok");

    cut(&mut ra);
    assert_eq!(ma.call(&["WHITELIST.ADD", "prod", "203.0.113.9"]), Reply::Int(1));
    assert_eq!(ma.call(&["WHITELIST.DEL", "sys"]), Reply::Int(1));
    assert_eq!(ma.call(&["WHITELIST.SET", "web", "192.0.2.0/25", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    // Still cut off after the changes.
    thread::sleep(Duration::from_millis(300));
    assert_ne!(info_section(&mut ra, "replication").get("master_link_status").map(String::as_str), Some("up"));
    assert_ne!(export(&mut ma), export(&mut ra));

    restore(&mut ra, m.port);
    wait_same_whitelist(&mut ma, &mut ra);
    assert_eq!(counter(&mut ra, "whitelist_version"), counter(&mut ma, "whitelist_version"));
    wait_link(&mut ra, "up");
    // And the stream goes on.
    assert_eq!(ma.call(&["WHITELIST.REMOVE", "web", "192.0.2.0/25", "FORCE"]), Reply::Int(1));
    wait_same_whitelist(&mut ma, &mut ra);
    (info_number(&mut ma, "stats", "sync_full") - full, info_number(&mut ma, "stats", "sync_partial_ok") - partial)
}

#[test]
fn a_detached_replica_that_diverged_converges_by_a_full_sync() {
    let (full, partial) = converges_after_an_outage(
        |r| {
            assert_eq!(r.call(&["REPLICAOF", "NO", "ONE"]), Reply::ok());
            // Its own change must not survive: loading replaces, never merges.
            assert_eq!(r.call(&["WHITELIST.SET", "local", "192.0.2.200"]), Reply::Int(1));
        },
        |r, port| assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &port.to_string()]), Reply::ok()),
    );
    assert_eq!((full, partial), (1, 0));
}

#[test]
fn a_replica_whose_link_dropped_catches_up_from_the_backlog() {
    // A wrong masterauth keeps the link down: the master has no password, so
    // the replica's AUTH fails on every reconnection attempt.
    let (full, partial) = converges_after_an_outage(
        |r| {
            assert_eq!(r.call(&["CONFIG", "SET", "masterauth", "wrong"]), Reply::ok());
            assert_eq!(r.call(&["CLIENT", "KILL", "TYPE", "master"]), Reply::Int(1));
        },
        |r, _| assert_eq!(r.call(&["CONFIG", "SET", "masterauth", ""]), Reply::ok()),
    );
    assert_eq!((full, partial), (0, 1));
}

// --- Load ------------------------------------------------------------------------

#[derive(Default)]
struct Figures {
    allowed_commands: AtomicU64,
    allowed_errors: AtomicU64,
    denied_connections: AtomicU64,
    denied_not_closed: AtomicU64,
    connect_failures: AtomicU64,
    rule_changes: AtomicU64,
}

fn load(n: &AtomicU64) -> u64 {
    n.load(Ordering::Relaxed)
}

/// Allowed clients at work while denied connections flood in and the rules
/// change every 50 ms, for `SOAK_SECONDS` (10 by default).
#[test]
fn soak_allowed_clients_keep_working_through_floods_and_rule_changes() {
    let seconds: u64 = match std::env::var("SOAK_SECONDS") {
        Ok(s) => s.parse().unwrap_or_else(|e| panic!("SOAK_SECONDS={s:?}: {e}")),
        Err(_) => 10,
    };
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--maxclients", "2000"]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "stable", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.SET", "churn", "10.0.0.1"]), Reply::Int(1));
    // The admin connection alone: a connection closed just before (the
    // start-up check's) may still be counted for a moment.
    let baseline_clients = 1;
    wait_for("only the admin connection to be connected", || {
        (info_number(&mut admin, "clients", "connected_clients") == baseline_clients).then_some(())
    });
    let memory_before = info_number(&mut admin, "memory", "used_memory");
    let denied_before = counter(&mut admin, "whitelist_connections_denied");

    let figures = Arc::new(Figures::default());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let server = Arc::new(s);
    let mut workers = Vec::new();
    for w in 0..2 {
        let (server, figures, stop) = (Arc::clone(&server), Arc::clone(&figures), Arc::clone(&stop));
        workers.push(thread::spawn(move || {
            let mut c = server.connect_from("127.0.0.2");
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{w}:{}", i % 100);
                let value = i.to_string();
                let ok = c.try_call(&["SET", &key, &value]).ok() == Some(Reply::ok())
                    && c.try_call(&["GET", &key]).ok() == Some(Reply::bulk(&value));
                figures.allowed_commands.fetch_add(2, Ordering::Relaxed);
                if !ok {
                    figures.allowed_errors.fetch_add(1, Ordering::Relaxed);
                    // Reconnect so one failure is counted once.
                    c = server.connect_from("127.0.0.2");
                }
                i += 1;
            }
        }));
    }
    for f in 0..2u32 {
        let (server, figures, stop) = (Arc::clone(&server), Arc::clone(&figures), Arc::clone(&stop));
        workers.push(thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // 127.0.0.3 to 127.0.0.60.
                let source = format!("127.0.0.{}", 3 + (n * 2 + f) % 58);
                match server.try_connect_from(&source) {
                    Ok(mut c) => {
                        // Sent at once: a denied client must never run it. The
                        // server may already have closed the socket.
                        let _ = c.send(&[b"SET", format!("denied:{f}:{n}").as_bytes(), b"x"]);
                        // Panics if the server replied instead of closing
                        // (anything but -NOPERM where refused clients are held).
                        if !c.closed_or_noperm_within(Duration::from_secs(5)) {
                            figures.denied_not_closed.fetch_add(1, Ordering::Relaxed);
                        }
                        figures.denied_connections.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        figures.connect_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
        }));
    }
    {
        let (server, figures, stop) = (Arc::clone(&server), Arc::clone(&figures), Arc::clone(&stop));
        workers.push(thread::spawn(move || {
            let mut c = server.admin();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // Groups the allowed clients do not depend on: a replaced
                // group, and one added to and deleted.
                let entries: Vec<String> = (0..20).map(|i| format!("10.{}.{}.0/24", n % 200, i)).collect();
                assert_eq!(c.call(&["WHITELIST.SET", "churn", &entries.join(","), "FORCE"]), Reply::Int(20));
                let reply = if n % 2 == 0 {
                    c.call(&["WHITELIST.ADD", "flap", "2001:db8::/48", &format!("192.0.2.{}", n % 250)])
                } else {
                    c.call(&["WHITELIST.DEL", "flap", "FORCE"])
                };
                assert_eq!(reply, Reply::Int(if n % 2 == 0 { 2 } else { 1 }));
                figures.rule_changes.fetch_add(2, Ordering::Relaxed);
                n += 1;
                thread::sleep(Duration::from_millis(50));
            }
        }));
    }
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a worker");
    }

    let s = &*server;
    let mut admin = s.admin();
    let f = &*figures;
    let denied = load(&f.denied_connections);
    // No denied client ran its command.
    let leaked = admin.call(&["KEYS", "denied:*"]);
    // The admin connection of before, and this one.
    wait_for("the clients to be freed", || {
        (info_number(&mut admin, "clients", "connected_clients") == baseline_clients + 1).then_some(())
    });
    let clients_left = info_number(&mut admin, "clients", "connected_clients") - baseline_clients - 1;
    let memory_after = info_number(&mut admin, "memory", "used_memory");
    let denied_counted = counter(&mut admin, "whitelist_connections_denied") - denied_before;
    println!(
        "soak {seconds} s: {} commands by allowed clients, {} errors; {} denied connections ({} not closed, \
         {} connect failures), {} commands run by denied clients; {} rule changes; used_memory {} -> {} \
         ({:+} bytes); clients left behind: {}; whitelist_connections_denied +{}",
        load(&f.allowed_commands),
        load(&f.allowed_errors),
        denied,
        load(&f.denied_not_closed),
        load(&f.connect_failures),
        match &leaked {
            Reply::Array(keys) => keys.len().to_string(),
            other => format!("{other:?}"),
        },
        load(&f.rule_changes),
        memory_before,
        memory_after,
        memory_after - memory_before,
        clients_left,
        denied_counted,
    );
    assert_eq!(load(&f.allowed_errors), 0);
    assert!(load(&f.allowed_commands) > 1000);
    assert_eq!(load(&f.denied_not_closed), 0);
    assert!(denied > 1000);
    assert_eq!(leaked, Reply::Array(vec![]));
    assert_eq!(denied_counted, denied);
    assert!(load(&f.rule_changes) >= seconds * 10);
    // 200 keys and the churned groups: a megabyte covers them; a leak per
    // connection or per change would not fit.
    assert!(memory_after - memory_before < 1 << 20, "used_memory grew by {} bytes", memory_after - memory_before);
    assert_eq!(admin.call(&["PING"]), pong());
}

// --- Bad input -----------------------------------------------------------------------

const NAME_RULE: &str = "2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit";

fn bad_name(shown: &str) -> Reply {
    Reply::Error(format!("ERR invalid group name '{shown}': {NAME_RULE}"))
}

fn bad_entry(shown: &str) -> Reply {
    Reply::Error(format!("ERR invalid whitelist entry '{shown}': not an IP address or CIDR block"))
}

fn bad_user(shown: &str, why: &str) -> Reply {
    Reply::Error(format!("ERR invalid user name '{shown}': {why}"))
}

fn arity(command: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{command}' command"))
}

fn syntax(what: &str) -> Reply {
    Reply::Error(format!("ERR syntax error: {what}"))
}

/// `n` distinct valid IPv4 addresses.
fn addresses(n: u32) -> Vec<String> {
    (0..n).map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)).collect()
}

/// `CONFIG GET whitelist.*`, sorted.
fn configs(c: &mut Client) -> Vec<(String, String)> {
    let reply = c.call(&["CONFIG", "GET", "whitelist.*"]);
    let Reply::Array(items) = reply else { panic!("CONFIG GET: {reply:?}") };
    let mut pairs: Vec<(String, String)> = items.chunks(2).map(|p| (p[0].text(), p[1].text())).collect();
    pairs.sort();
    assert_eq!(pairs.len(), 7, "{pairs:?}");
    pairs
}

#[test]
fn hostile_arguments_to_every_command_get_clear_errors_and_change_nothing() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    populate(&mut a);
    let before = export(&mut a);
    let version = counter(&mut a, "whitelist_version");
    let memory_before = info_number(&mut a, "memory", "used_memory");

    let mega = vec![b'1'; 1 << 20];
    let mega_shown = "1".repeat(64) + "...";
    let many_list = addresses(100_000);
    let many = many_list.join(",");
    let many_args: Vec<&[u8]> = many_list.iter().map(|s| s.as_bytes()).collect();
    let many_shown = &many[..64];
    // More items than the limit are refused before they are parsed.
    let limit = |what: &str| {
        Reply::Error(format!(
            "ERR too many entries in {what}: 100000, the limit is 1000 (whitelist.max-entries-per-group)"
        ))
    };
    let big_doc = format!(r#"{{"groups":[{{"name":"bulk","entries":["{}"]}}]}}"#, many_list.join(r#"",""#));
    let with = |head: &[&'static [u8]], tail: &[&[u8]]| -> Vec<Vec<u8>> {
        head.iter().map(|h| h.to_vec()).chain(tail.iter().map(|t| t.to_vec())).collect()
    };

    let cases: Vec<(Vec<Vec<u8>>, Reply)> = vec![
        // WHITELIST.SET
        (with(&[b"WHITELIST.SET", b"pr\0od"], &[b"10.0.0.1"]), bad_name("pr\\x00od")),
        (with(&[b"WHITELIST.SET", b"prod"], &[b"10.0.0.1\0"]), bad_entry("10.0.0.1\\x00")),
        (with(&[b"WHITELIST.SET", b"prod"], &[&mega]), bad_entry(&mega_shown)),
        (
            with(&[b"WHITELIST.SET", b"prod", b"10.0.0.1", b"ATTRIBUTE"], &[&mega]),
            syntax("ATTRIBUTE must be followed by show or hidden"),
        ),
        (
            with(&[b"WHITELIST.SET", b"prod", b"10.0.0.1", b"ATTRIBUTE", b"hidd\xc3\xa9n"], &[]),
            syntax("ATTRIBUTE must be followed by show or hidden"),
        ),
        (with(&[b"WHITELIST.SET", b"prod"], &[many.as_bytes()]), limit("one command")),
        (with(&[b"WHITELIST.SET", b"prod"], &many_args), limit("one command")),
        (
            with(&[b"WHITELIST.SET", b"prod", b"10.0.0.1", b"FORCE", b"NOW"], &[]),
            syntax("unexpected argument 'NOW': entries come before ATTRIBUTE, COMMENT, TTL, EXPIREAT and FORCE"),
        ),
        (
            with(&[b"WHITELIST.SET", b"prod", b"10.0.0.1", b"attribute", b"show", b"ATTRIBUTE", b"show"], &[]),
            syntax("ATTRIBUTE given twice"),
        ),
        (with(&[b"WHITELIST.SET", b"prod"], &[]), arity("whitelist.set")),
        // WHITELIST.ADD
        (with(&[b"WHITELIST.ADD", b"pr\xffod"], &[b"10.0.0.1"]), bad_name("pr\\xffod")),
        (with(&[b"WHITELIST.ADD", b"prod"], &[b"10.0.0.1,10.0.0.\xff"]), bad_entry("10.0.0.\\xff")),
        (with(&[b"WHITELIST.ADD"], &[&mega, b"10.0.0.1"]), bad_name(&mega_shown)),
        (with(&[b"WHITELIST.ADD", b"bulk"], &[many.as_bytes()]), limit("one command")),
        (with(&[b"WHITELIST.ADD", b"prod", b"10.0.0.1", b"force", b"FORCE"], &[]), syntax("FORCE given twice")),
        (
            with(&[b"WHITELIST.ADD", b"prod", b"10.0.0.1", b"ATTRIBUTE", b"hidden"], &[]),
            syntax("ATTRIBUTE is only valid for WHITELIST.SET, not WHITELIST.ADD"),
        ),
        (with(&[b"WHITELIST.ADD"], &[]), arity("whitelist.add")),
        // WHITELIST.REMOVE
        (with(&[b"WHITELIST.REMOVE", b"\xc3\xa9t\xc3\xa9", b"10.0.0.1"], &[]), bad_name("\\xc3\\xa9t\\xc3\\xa9")),
        (with(&[b"WHITELIST.REMOVE", b"prod", b"\x00"], &[]), bad_entry("\\x00")),
        (with(&[b"WHITELIST.REMOVE", b"prod"], &[&mega]), bad_entry(&mega_shown)),
        // 100,000 entries are more than a group may hold: refused unparsed.
        (with(&[b"WHITELIST.REMOVE", b"prod"], &[many.as_bytes()]), limit("one command")),
        (
            with(&[b"WHITELIST.REMOVE", b"prod", b"FORCE"], &[]),
            syntax("WHITELIST.REMOVE needs at least one entry before its options"),
        ),
        (with(&[b"WHITELIST.REMOVE", b"prod", b"10.0.0.0/8", b"FORCE", b"FORCE"], &[]), syntax("FORCE given twice")),
        // WHITELIST.DEL
        (with(&[b"WHITELIST.DEL", b"prod", b"\0"], &[]), bad_name("\\x00")),
        (with(&[b"WHITELIST.DEL", b"prod", b"sys\xfe"], &[]), bad_name("sys\\xfe")),
        (with(&[b"WHITELIST.DEL", b"prod"], &[&mega]), bad_name(&mega_shown)),
        (with(&[b"WHITELIST.DEL", b"FORCE", b"prod"], &[]), syntax("FORCE must be the last argument")),
        (with(&[b"WHITELIST.DEL", b"prod", b"FORCE", b"force"], &[]), syntax("FORCE given twice")),
        (with(&[b"WHITELIST.DEL", b"FORCE"], &[]), syntax("WHITELIST.DEL needs at least one group")),
        (with(&[b"WHITELIST.DEL"], &[]), arity("whitelist.del")),
        // WHITELIST.GET
        (with(&[b"WHITELIST.GET", b"prod\n"], &[]), bad_name("prod\\x0a")),
        (with(&[b"WHITELIST.GET", b"pr\0d"], &[]), bad_name("pr\\x00d")),
        (with(&[b"WHITELIST.GET"], &[&mega]), bad_name(&mega_shown)),
        (
            with(&[b"WHITELIST.GET", b"prod", b"prod"], &[]),
            syntax("unexpected argument 'prod': WHITELIST.GET group takes only WITHSTATS"),
        ),
        (with(&[b"WHITELIST.GET", b"prod", b"WITHSTATS", b"prod"], &[]), arity("whitelist.get")),
        // WHITELIST.STALE
        (with(&[b"WHITELIST.STALE"], &[]), arity("whitelist.stale")),
        (with(&[b"WHITELIST.STALE", b"1", b"2"], &[]), arity("whitelist.stale")),
        (with(&[b"WHITELIST.STALE", b"-1"], &[]), Reply::err("ERR invalid seconds '-1': a non-negative integer")),
        (
            with(&[b"WHITELIST.STALE", b"99999999999999999999"], &[]),
            Reply::err("ERR invalid seconds '99999999999999999999': a non-negative integer"),
        ),
        // Comments and expiries on SET and ADD.
        (
            with(&[b"WHITELIST.ADD", b"prod", b"10.0.0.9", b"COMMENT", b"a\x07b"], &[]),
            Reply::err("ERR invalid comment: at most 128 bytes of printable text"),
        ),
        (
            with(&[b"WHITELIST.ADD", b"prod", b"10.0.0.9", b"COMMENT"], &[&mega]),
            Reply::err("ERR invalid comment: at most 128 bytes of printable text"),
        ),
        (
            with(&[b"WHITELIST.ADD", b"prod", b"10.0.0.9", b"TTL", b"5", b"PERSIST"], &[]),
            syntax("TTL, EXPIREAT and PERSIST exclude each other"),
        ),
        (
            with(&[b"WHITELIST.SET", b"prod", b"10.0.0.9", b"TTL", b"0"], &[]),
            Reply::err("ERR invalid TTL '0': 1 to 31536000 seconds"),
        ),
        (
            with(&[b"WHITELIST.SET", b"prod", b"10.0.0.9", b"EXPIREAT", b"1"], &[]),
            Reply::err("ERR EXPIREAT must be in the future"),
        ),
        (
            with(&[b"WHITELIST.SET", b"prod", b"10.0.0.9", b"PERSIST"], &[]),
            syntax("unexpected argument 'PERSIST': entries come before ATTRIBUTE, COMMENT, TTL, EXPIREAT and FORCE"),
        ),
        // WHITELIST.LIST
        (with(&[b"WHITELIST.LIST", b"all\0"], &[]), syntax("unexpected argument 'all\\x00': WHITELIST.LIST takes only ALL")),
        (
            with(&[b"WHITELIST.LIST"], &[&mega]),
            syntax(&format!("unexpected argument '{mega_shown}': WHITELIST.LIST takes only ALL")),
        ),
        (with(&[b"WHITELIST.LIST", b"ALL", b"ALL"], &[]), arity("whitelist.list")),
        // WHITELIST.CHECK
        (
            with(&[b"WHITELIST.CHECK", b"10.0.0.1\0"], &[]),
            Reply::err("ERR invalid address '10.0.0.1\\x00': not an IP address"),
        ),
        (
            with(&[b"WHITELIST.CHECK", b"::1%\xff"], &[]),
            Reply::err("ERR invalid address '::1%\\xff': zone ids are not allowed"),
        ),
        (
            with(&[b"WHITELIST.CHECK"], &[&mega]),
            Reply::Error(format!("ERR invalid address '{mega_shown}': not an IP address")),
        ),
        (
            with(&[b"WHITELIST.CHECK"], &[many.as_bytes()]),
            Reply::Error(format!("ERR invalid address '{many_shown}...': not an IP address")),
        ),
        (with(&[b"WHITELIST.CHECK"], &[]), arity("whitelist.check")),
        (with(&[b"WHITELIST.CHECK", b"10.0.0.1", b"10.0.0.2"], &[]), arity("whitelist.check")),
        (with(&[b"WHITELIST.CHECK", b"10.0.0.1", b"USER"], &[]), syntax("USER must be followed by a user name")),
        (
            with(&[b"WHITELIST.CHECK", b"10.0.0.1", b"USER", b"a\tb"], &[]),
            bad_user("a\\x09b", "spaces and control characters are not allowed"),
        ),
        (with(&[b"WHITELIST.CHECK", b"10.0.0.1", b"USER"], &[&mega]), bad_user(&mega_shown, "longer than 256 bytes")),
        // WHITELIST.BIND and WHITELIST.UNBIND
        (with(&[b"WHITELIST.BIND", b"pr\xffod", b"app"], &[]), bad_name("pr\\xffod")),
        (with(&[b"WHITELIST.BIND", b"prod", b"app\0"], &[]), bad_user("app\\x00", "spaces and control characters are not allowed")),
        (with(&[b"WHITELIST.BIND", b"prod", b"\xff"], &[]), bad_user("\\xff", "not UTF-8")),
        (with(&[b"WHITELIST.BIND", b"prod"], &[&mega]), bad_user(&mega_shown, "longer than 256 bytes")),
        (with(&[b"WHITELIST.BIND", b"prod", b"FORCE"], &[]), syntax("WHITELIST.BIND needs at least one user before FORCE")),
        (with(&[b"WHITELIST.BIND", b"prod", b"force", b"app"], &[]), syntax("FORCE must be the last argument")),
        (with(&[b"WHITELIST.BIND", b"prod"], &[]), arity("whitelist.bind")),
        (with(&[b"WHITELIST.UNBIND", b"pr\0od", b"app"], &[]), bad_name("pr\\x00od")),
        (with(&[b"WHITELIST.UNBIND", b"prod", b"a b"], &[]), bad_user("a b", "spaces and control characters are not allowed")),
        (with(&[b"WHITELIST.UNBIND"], &[]), arity("whitelist.unbind")),
        // WHITELIST.BINDINGS takes nothing.
        (with(&[b"WHITELIST.BINDINGS", b"\0"], &[]), arity("whitelist.bindings")),
        // WHITELIST.LOADCLIENTS
        (with(&[b"WHITELIST.LOADCLIENTS", b"\r\nprod"], &[]), bad_name("\\x0d\\x0aprod")),
        (with(&[b"WHITELIST.LOADCLIENTS"], &[&mega]), bad_name(&mega_shown)),
        (
            with(&[b"WHITELIST.LOADCLIENTS", b"prod", b"F\xd0\x9eRCE"], &[]),
            syntax("unexpected argument 'F\\xd0\\x9eRCE': only FORCE may follow the group"),
        ),
        (with(&[b"WHITELIST.LOADCLIENTS", b"prod", b"FORCE", b"FORCE"], &[]), arity("whitelist.loadclients")),
        (with(&[b"WHITELIST.LOADCLIENTS"], &[]), arity("whitelist.loadclients")),
        // WHITELIST.HELP, WHITELIST.EXPORT and WHITELIST.CLUSTER take nothing.
        (with(&[b"WHITELIST.CLUSTER", b"\0"], &[]), arity("whitelist.cluster")),
        (with(&[b"WHITELIST.CLUSTER"], &[&mega]), arity("whitelist.cluster")),
        (with(&[b"WHITELIST.HELP", b"\0"], &[]), arity("whitelist.help")),
        (with(&[b"WHITELIST.HELP"], &[&mega]), arity("whitelist.help")),
        (with(&[b"WHITELIST.EXPORT", b"\xff"], &[]), arity("whitelist.export")),
        (with(&[b"WHITELIST.EXPORT"], &[&mega]), arity("whitelist.export")),
        // WHITELIST.MERGE is internal, whatever it carries.
        (with(&[b"WHITELIST.MERGE"], &[&mega]), Reply::err("ERR WHITELIST.MERGE is internal")),
        (with(&[b"WHITELIST.MERGE", b"WLCS\x01"], &[]), Reply::err("ERR WHITELIST.MERGE is internal")),
        (with(&[b"WHITELIST.MERGE"], &[]), arity("whitelist.merge")),
        // WHITELIST.IMPORT
        (
            with(&[b"WHITELIST.IMPORT", b"{\"groups\":[{\"name\":\"pr\\u0000od\",\"entries\":[]}]}"], &[]),
            Reply::Error(format!("ERR invalid whitelist document: invalid group name 'pr\\x00od': {NAME_RULE}")),
        ),
        (
            with(&[b"WHITELIST.IMPORT", b"{\"groups\":[{\"name\":\"prod\",\"entries\":[\"10.0.0.1\\u0000\"]}]}"], &[]),
            Reply::err(
                "ERR invalid whitelist document: group 'prod': invalid whitelist entry '10.0.0.1\\x00': not an IP address or CIDR \
                 block",
            ),
        ),
        (
            with(&[b"WHITELIST.IMPORT", b"\xff\xfe"], &[]),
            Reply::err("ERR invalid whitelist document: expected value at line 1 column 1"),
        ),
        (
            with(&[b"WHITELIST.IMPORT"], &[&mega]),
            Reply::err("ERR invalid whitelist document: number out of range at line 1 column 1048576"),
        ),
        (with(&[b"WHITELIST.IMPORT"], &[big_doc.as_bytes()]), limit("group 'bulk' of the document")),
        (
            with(&[b"WHITELIST.IMPORT", b"{\"groups\":[]}", b"IFVERSION"], &[&mega]),
            syntax("IFVERSION must be followed by a version from 0 to 9223372036854775807"),
        ),
        (with(&[b"WHITELIST.IMPORT", b"{\"groups\":[]}", b"FORCE", b"force"], &[]), syntax("FORCE given twice")),
        (
            with(&[b"WHITELIST.IMPORT", b"{\"groups\":[]}", b"IFVERSION", b"3", b"IFVERSION", b"3"], &[]),
            arity("whitelist.import"),
        ),
        (
            with(&[b"WHITELIST.IMPORT", b"{\"groups\":[]}", b"NOW"], &[]),
            syntax("unexpected argument 'NOW': expected IFVERSION or FORCE"),
        ),
        (with(&[b"WHITELIST.IMPORT"], &[]), arity("whitelist.import")),
        // WHITELIST.DENIED
        (
            with(&[b"WHITELIST.DENIED", b"COUNT", b"1\0"], &[]),
            syntax("COUNT must be followed by an integer from 1 to 9223372036854775807"),
        ),
        (
            with(&[b"WHITELIST.DENIED", b"COUNT"], &[&mega]),
            syntax("COUNT must be followed by an integer from 1 to 9223372036854775807"),
        ),
        (
            with(&[b"WHITELIST.DENIED", b"RESET\xff"], &[]),
            syntax("unexpected argument 'RESET\\xff': expected COUNT n or RESET"),
        ),
        (
            with(&[b"WHITELIST.DENIED"], &[&mega]),
            syntax(&format!("unexpected argument '{mega_shown}': expected COUNT n or RESET")),
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (args, expected) in &cases {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let name = String::from_utf8_lossy(args[0]).into_owned();
        let reply = a.call_bytes(&args);
        let size: usize = args.iter().map(|x| x.len()).sum();
        assert_eq!(&reply, expected, "{name} with {} arguments, {size} bytes", args.len());
        assert_eq!(export(&mut a), before, "{name} changed the whitelist");
        assert_eq!(counter(&mut a, "whitelist_version"), version, "{name}");
        assert_eq!(a.call(&["PING"]), pong());
        seen.insert(name);
    }
    let help = a.call(&["WHITELIST.HELP"]);
    let Reply::Array(lines) = help else { panic!("HELP: {help:?}") };
    let listed: std::collections::BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l.text().split(' ').next().filter(|c| c.starts_with("WHITELIST.")).map(str::to_string))
        .collect();
    // HELP lists every command but the internal WHITELIST.MERGE.
    let mut listed = listed;
    listed.insert(String::from("WHITELIST.MERGE"));
    assert_eq!(listed, seen, "every command of HELP goes through the table");
    assert_eq!(seen.len(), 18);

    // Invalid config values: the module's errors, and nothing changes, not even
    // the valid half of a multi-parameter CONFIG SET.
    let config_before = configs(&mut a);
    let mega_text = "1".repeat(1 << 20);
    for (args, reason) in [
        (
            vec!["whitelist.mode", "\0"],
            r"(possibly related to argument 'whitelist.mode') - invalid whitelist.mode '\x00': expected enforce, monitor or off",
        ),
        (
            vec!["whitelist.mode", &mega_text],
            "(possibly related to argument 'whitelist.mode') - invalid whitelist.mode \
             '11111111111111111111111111111111...': expected enforce, monitor or off",
        ),
        (
            vec!["whitelist.allow-loopback", "maybe"],
            "(possibly related to argument 'whitelist.allow-loopback') - invalid whitelist.allow-loopback 'maybe': \
             expected yes or no",
        ),
        (
            vec!["whitelist.allow-unixsocket", "n\u{f6}"],
            r"(possibly related to argument 'whitelist.allow-unixsocket') - invalid whitelist.allow-unixsocket 'n\xc3\xb6': expected yes or no",
        ),
        (
            vec!["whitelist.max-groups", "99999999999999999999"],
            "(possibly related to argument 'whitelist.max-groups') - invalid whitelist.max-groups \
             '99999999999999999999': expected an integer from 1 to 10000",
        ),
        (
            vec!["whitelist.max-groups", "0"],
            "(possibly related to argument 'whitelist.max-groups') - invalid whitelist.max-groups '0': \
             expected an integer from 1 to 10000",
        ),
        (
            vec!["whitelist.max-entries-per-group", "-1"],
            "(possibly related to argument 'whitelist.max-entries-per-group') - invalid \
             whitelist.max-entries-per-group '-1': expected an integer from 1 to 1000000",
        ),
        (
            vec!["whitelist.when-empty", "never"],
            "(possibly related to argument 'whitelist.when-empty') - invalid whitelist.when-empty 'never': \
             expected allow or deny",
        ),
        (
            vec!["whitelist.denied-sources", "1e3"],
            "(possibly related to argument 'whitelist.denied-sources') - invalid whitelist.denied-sources '1e3': \
             expected an integer from 0 to 10000",
        ),
        (
            vec!["whitelist.mode", "off", "whitelist.allow-unixsocket", "no", "whitelist.max-groups", "0"],
            "(possibly related to argument 'whitelist.max-groups') - invalid whitelist.max-groups '0': \
             expected an integer from 1 to 10000",
        ),
    ] {
        let mut command = vec!["CONFIG", "SET"];
        command.extend(&args);
        assert_eq!(a.call(&command), Reply::Error(format!("ERR CONFIG SET failed {reason}")), "{:?}", args.first());
        assert_eq!(configs(&mut a), config_before, "{:?}", args.first());
        assert_eq!(a.call(&["PING"]), pong());
    }
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.nosuch", "1"]),
        Reply::err("ERR Unknown option or number of arguments for CONFIG SET - 'whitelist.nosuch'")
    );
    assert_eq!(export(&mut a), before);
    assert_eq!(counter(&mut a, "whitelist_version"), version);

    // Nothing of the megabytes stays behind once the connection that sent
    // them is gone.
    drop(a);
    let mut fresh = s.admin();
    let memory_after = wait_for("the hostile connection to be freed", || {
        (info_number(&mut fresh, "clients", "connected_clients") == 1)
            .then(|| info_number(&mut fresh, "memory", "used_memory"))
    });
    assert!(memory_after - memory_before < 1 << 20, "used_memory grew by {} bytes", memory_after - memory_before);
}

#[test]
fn hidden_groups_stay_out_of_listings_unless_asked_for() {
    let s = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut a = s.admin();
    populate(&mut a);
    let replica = replica_of(&s, &[]);
    let mut ra = replica.admin();
    wait_same_whitelist(&mut a, &mut ra);
    let shown = "10.0.0.0/8,192.0.2.7,2001:db8::/32,198.51.100.0/24";
    let check = |c: &mut Client, when: &str| {
        assert_eq!(c.call(&["WHITELIST.GET"]), Reply::strings(&["prod", shown]), "{when}");
        assert_eq!(c.call(&["WHITELIST.LIST"]), Reply::strings(&["prod"]), "{when}");
        assert_eq!(c.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["prod", "sys"]), "{when}");
        assert_eq!(c.call(&["WHITELIST.GET", "sys"]), Reply::strings(&["127.0.0.2"]), "{when}");
        // A decision names the hidden group that admits an address: the
        // operator asking needs to know why (by design).
        assert_eq!(
            c.call(&["WHITELIST.CHECK", "127.0.0.2"]),
            Reply::Array(vec![
                Reply::bulk("allowed"),
                Reply::bulk("sys"),
                Reply::bulk("127.0.0.2"),
                Reply::bulk("entry")
            ]),
            "{when}"
        );
        // The full state carries it, so an IMPORT of it keeps it hidden.
        let doc = export(c).text();
        assert!(doc.contains(r#"{"attribute":"hidden","entries":["127.0.0.2"],"name":"sys"}"#), "{when}: {doc}");
        assert_eq!(info_of(c)["whitelist_group_sys"], "entries=1,hits=0,attribute=hidden,users=0", "{when}");
    };
    check(&mut a, "on the primary");
    check(&mut ra, "on the replica");
    let mut r3 = s.admin();
    assert!(matches!(r3.call(&["HELLO", "3"]), Reply::Map(_)));
    assert_eq!(r3.call(&["WHITELIST.GET"]), Reply::Map(vec![(Reply::bulk("prod"), Reply::bulk(shown))]));
    // A SET without ATTRIBUTE keeps it hidden, across a reload and an IMPORT
    // of the export.
    assert_eq!(a.call(&["WHITELIST.SET", "sys", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(a.call(&["DEBUG", "RELOAD"]), Reply::ok());
    check(&mut a, "after DEBUG RELOAD");
    let doc = export(&mut a).text();
    let version = counter(&mut a, "whitelist_version").to_string();
    assert!(!a.call(&["WHITELIST.IMPORT", &doc, "IFVERSION", &version]).is_error());
    check(&mut a, "after IMPORT of the export");
    wait_same_whitelist(&mut a, &mut ra);
    check(&mut ra, "on the replica, at the end");
}

//! Reliability against real servers: damaged persisted data, crashes and
//! link failures, load, and hostile input. The soak test runs 10 seconds
//! here; `make soak` runs it longer (`SOAK_SECONDS`).

mod common;

use std::collections::HashMap;
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

fn export(c: &mut Client) -> Reply {
    c.call(&["WHITELIST.EXPORT"])
}

/// A whitelist with groups of both families, a hidden one, and a version above 1.
fn populate(c: &mut Client) {
    assert_eq!(c.call(&["WHITELIST.SET", "prod", "10.0.0.0/8,192.0.2.7", "2001:db8::/32"]), Reply::Int(3));
    assert_eq!(c.call(&["WHITELIST.SET", "sys", "127.0.0.2", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    assert_eq!(c.call(&["WHITELIST.ADD", "prod", "198.51.100.0/24"]), Reply::Int(1));
}

// --- Damaged persisted data -------------------------------------------------

/// Where the whitelist payload starts in a file (its magic), and its length
/// up to and including the CRC (the payload ends with a CRC-32 the decoder
/// checks; the length comes from the encoder's layout, found by decoding).
fn payload_at(bytes: &[u8]) -> usize {
    bytes.windows(5).position(|w| w == b"WLST\x01").expect("the whitelist payload is in the file")
}

/// Saves an RDB with the whitelist uncompressed and unchecked by Redis's own
/// checksum, so single bytes can be damaged; returns the stopped server.
fn saved(args: &[&str]) -> Server {
    let mut s = Server::start(args);
    let mut a = s.admin();
    populate(&mut a);
    assert_eq!(a.call(&["SAVE"]), Reply::ok());
    s.stop(false);
    s
}

fn refuses_to_start(s: &mut Server, args: &[&str], expected: &str) {
    let log = match s.try_start_again(args) {
        Ok(_) => panic!("the server started on damaged whitelist data"),
        Err(log) => log,
    };
    assert!(log.contains(expected), "{expected:?} missing from\n{log}");
}

const RAW_RDB: &[&str] = &["--rdbcompression", "no", "--rdbchecksum", "no"];

#[test]
fn a_truncated_whitelist_record_stops_the_server() {
    let mut s = saved(RAW_RDB);
    let path = s.dir.path().join("dump.rdb");
    let bytes = std::fs::read(&path).expect("dump.rdb");
    let at = payload_at(&bytes);
    std::fs::write(&path, &bytes[..at + 20]).expect("write the damaged file");
    refuses_to_start(&mut s, RAW_RDB, "refusing the whitelist in this data: it is truncated");
}

#[test]
fn a_corrupt_whitelist_record_stops_the_server() {
    let mut s = saved(RAW_RDB);
    let path = s.dir.path().join("dump.rdb");
    let mut bytes = std::fs::read(&path).expect("dump.rdb");
    let at = payload_at(&bytes);
    // An address byte of the first entry: still a valid-looking entry, so
    // only the checksum can tell.
    bytes[at + 30] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write the damaged file");
    refuses_to_start(&mut s, RAW_RDB, "refusing the whitelist in this data: checksum mismatch: the data is corrupt");
}

#[test]
fn a_whitelist_record_from_a_newer_encoding_stops_the_server() {
    let mut s = saved(RAW_RDB);
    let path = s.dir.path().join("dump.rdb");
    let mut bytes = std::fs::read(&path).expect("dump.rdb");
    let at = payload_at(&bytes);
    bytes[at + 4] = 2;
    std::fs::write(&path, &bytes).expect("write the damaged file");
    refuses_to_start(
        &mut s,
        RAW_RDB,
        "refusing the whitelist in this data: encoding version 2 is newer than this module reads (1); upgrade the module",
    );
}

#[test]
fn damage_in_an_aof_preamble_stops_the_server_too() {
    let args =
        ["--appendonly", "yes", "--aof-use-rdb-preamble", "yes", "--rdbcompression", "no", "--rdbchecksum", "no"];
    let mut s = Server::start(&args);
    let mut a = s.admin();
    populate(&mut a);
    // The rewrite puts the whitelist into the base file's RDB preamble.
    assert_eq!(a.call(&["BGREWRITEAOF"]), Reply::Status("Background append only file rewriting started".into()));
    wait_for("the AOF rewrite", || {
        let p = info_section(&mut a, "persistence");
        (p["aof_rewrite_in_progress"] == "0" && p["aof_rewrite_scheduled"] == "0").then_some(())
    });
    s.stop(false);
    let dir = s.dir.path().join("appendonlydir");
    let base = std::fs::read_dir(&dir)
        .expect("appendonlydir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".base.rdb"))
        .expect("an RDB base file");
    let mut bytes = std::fs::read(&base).expect("the base file");
    let at = payload_at(&bytes);
    bytes[at + 4] = 9;
    std::fs::write(&base, &bytes).expect("write the damaged file");
    refuses_to_start(
        &mut s,
        &args,
        "refusing the whitelist in this data: encoding version 9 is newer than this module reads (1); upgrade the module",
    );
}

// --- Faults --------------------------------------------------------------------

#[test]
fn kill_9_after_fsynced_changes_loses_none_of_them() {
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let mut s = Server::start(&args);
    let mut a = s.admin();
    for i in 0..50u32 {
        let group = format!("g{}", i % 7);
        let entry = format!("10.{}.{}.0/24", i / 250, i % 250);
        let reply = match i % 5 {
            0 => a.call(&["WHITELIST.SET", &group, &entry, "FORCE"]),
            1 | 2 => a.call(&["WHITELIST.ADD", &group, &entry, &format!("2001:db8:{i:x}::/48")]),
            3 => a.call(&["WHITELIST.REMOVE", &group, &entry, "FORCE"]),
            _ => a.call(&["WHITELIST.DEL", &format!("g{}", (i + 3) % 7), "FORCE"]),
        };
        assert!(!reply.is_error(), "change {i}: {reply:?}");
    }
    let version = counter(&mut a, "whitelist_version");
    let doc = r#"{"groups":[{"name":"imported","entries":["192.0.2.1","2001:db8::1"]},{"name":"g1","entries":[]}]}"#;
    assert_eq!(
        a.call(&["WHITELIST.IMPORT", doc, "IFVERSION", &version.to_string(), "FORCE"]),
        Reply::Int(version as i64 + 1)
    );
    assert_eq!(a.call(&["WHITELIST.ADD", "g1", "10.9.9.9"]), Reply::Int(1));
    let before = export(&mut a);
    s.kill();
    let s = s.start_again(&args);
    assert_eq!(export(&mut s.admin()), before);
}

fn replica_of(master: &Server, args: &[&str]) -> Server {
    let link = format!("127.0.0.1 {}", master.port);
    let mut all = vec!["--replicaof", link.as_str()];
    all.extend_from_slice(args);
    let r = Server::start(&all);
    let mut a = r.admin();
    wait_for("the replica's link", || {
        (info_section(&mut a, "replication")["master_link_status"] == "up").then_some(())
    });
    r
}

fn wait_same_whitelist(master: &mut Client, replica: &mut Client) {
    wait_for("the replica to catch up", || (export(master) == export(replica)).then_some(()));
}

#[test]
fn a_promoted_replica_enforces_the_same_whitelist() {
    let m = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut ma = m.admin();
    assert_eq!(ma.call(&["WHITELIST.SET", "app", "127.0.0.2,127.0.0.1"]), Reply::Int(2));
    let r = replica_of(&m, &["--whitelist.allow-loopback", "no"]);
    let mut ra = r.admin();
    wait_same_whitelist(&mut ma, &mut ra);
    assert_eq!(ra.call(&["REPLICAOF", "NO", "ONE"]), Reply::ok());
    assert!(r.connect_from("127.0.0.2").is_served());
    assert!(r.connect_from("127.0.0.3").closed_within(Duration::from_secs(5)));
    // Writes work on the new primary, with lock-out protection in place.
    assert_eq!(ra.call(&["WHITELIST.ADD", "app", "127.0.0.3"]), Reply::Int(1));
    assert!(r.connect_from("127.0.0.3").is_served());
}

#[test]
fn a_replica_that_lost_its_link_converges_when_it_returns() {
    let m = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut ma = m.admin();
    populate(&mut ma);
    let r = replica_of(&m, &[]);
    let mut ra = r.admin();
    wait_same_whitelist(&mut ma, &mut ra);
    // Cut the link and keep it cut while the master changes.
    assert_eq!(ra.call(&["REPLICAOF", "NO", "ONE"]), Reply::ok());
    assert_eq!(ma.call(&["WHITELIST.ADD", "prod", "203.0.113.9"]), Reply::Int(1));
    assert_eq!(ma.call(&["WHITELIST.DEL", "sys"]), Reply::Int(1));
    assert_eq!(ma.call(&["WHITELIST.SET", "web", "192.0.2.0/25"]), Reply::Int(1));
    assert_ne!(export(&mut ma), export(&mut ra));
    let port = m.port.to_string();
    assert_eq!(ra.call(&["REPLICAOF", "127.0.0.1", &port]), Reply::ok());
    wait_same_whitelist(&mut ma, &mut ra);
    assert_eq!(counter(&mut ra, "whitelist_version"), counter(&mut ma, "whitelist_version"));
    // And the stream goes on.
    assert_eq!(ma.call(&["WHITELIST.REMOVE", "web", "192.0.2.0/25", "FORCE"]), Reply::Int(1));
    wait_same_whitelist(&mut ma, &mut ra);
}

// --- Load ------------------------------------------------------------------------

#[derive(Default)]
struct Figures {
    allowed_commands: AtomicU64,
    allowed_errors: AtomicU64,
    denied_connections: AtomicU64,
    denied_not_closed: AtomicU64,
    rule_changes: AtomicU64,
}

/// Allowed clients at work while denied connections flood in and the rules
/// change every 50 ms, for `SOAK_SECONDS` (10 by default).
#[test]
fn soak_allowed_clients_keep_working_through_floods_and_rule_changes() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--maxclients", "2000"]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "stable", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.SET", "churn", "10.0.0.1"]), Reply::Int(1));
    let baseline_clients: u64 = info_section(&mut admin, "clients")["connected_clients"].parse().expect("a number");
    let memory_before: i64 = info_section(&mut admin, "memory")["used_memory"].parse().expect("a number");
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
                let ok = c.try_call(&["SET", &key, "v"]).ok() == Some(Reply::ok())
                    && c.try_call(&["GET", &key]).ok() == Some(Reply::bulk("v"));
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
                let source = format!("127.0.0.{}", 3 + (n * 2 + f) % 58);
                if let Ok(mut c) = server.try_connect_from(&source) {
                    // Sent at once: a denied client must never run it.
                    let _ = c.send(&[b"SET", format!("denied:{f}:{n}").as_bytes(), b"x"]);
                    if !c.closed_within(Duration::from_secs(5)) {
                        figures.denied_not_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    figures.denied_connections.fetch_add(1, Ordering::Relaxed);
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
                let entries: Vec<String> = (0..20).map(|i| format!("10.{}.{}.0/24", n % 200, i)).collect();
                let reply = c.call(&["WHITELIST.SET", "churn", &entries.join(","), "FORCE"]);
                assert_eq!(reply, Reply::Int(20));
                figures.rule_changes.fetch_add(1, Ordering::Relaxed);
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
    let denied = f.denied_connections.load(Ordering::Relaxed);
    // No denied client ran its command.
    let leaked = admin.call(&["KEYS", "denied:*"]);
    wait_for("the clients to be freed", || {
        (info_section(&mut admin, "clients")["connected_clients"].parse::<u64>().ok() == Some(baseline_clients + 1))
            .then_some(())
    });
    let memory_after: i64 = info_section(&mut admin, "memory")["used_memory"].parse().expect("a number");
    let info = info_of(&mut admin);
    eprintln!(
        "soak {seconds} s: {} commands by allowed clients, {} errors; {} denied connections ({} not closed), \
         {} commands run by denied clients; {} rule changes; used_memory {} -> {} ({:+} bytes); \
         clients left behind: {}; whitelist_connections_denied {} -> {}",
        f.allowed_commands.load(Ordering::Relaxed),
        f.allowed_errors.load(Ordering::Relaxed),
        denied,
        f.denied_not_closed.load(Ordering::Relaxed),
        match &leaked {
            Reply::Array(keys) => keys.len(),
            _ => usize::MAX,
        },
        f.rule_changes.load(Ordering::Relaxed),
        memory_before,
        memory_after,
        memory_after - memory_before,
        info_section(&mut admin, "clients")["connected_clients"].parse::<u64>().unwrap_or(0) - baseline_clients - 1,
        denied_before,
        info["whitelist_connections_denied"],
    );
    assert_eq!(f.allowed_errors.load(Ordering::Relaxed), 0);
    assert!(f.allowed_commands.load(Ordering::Relaxed) > 0);
    assert_eq!(f.denied_not_closed.load(Ordering::Relaxed), 0);
    assert!(denied > 0);
    assert_eq!(leaked, Reply::Array(vec![]));
    assert_eq!(counter(&mut admin, "whitelist_connections_denied"), denied_before + denied);
    assert!(f.rule_changes.load(Ordering::Relaxed) > 0);
    // 200 keys and a churned group: a megabyte covers them; a leak per
    // connection would not fit.
    assert!(memory_after - memory_before < 1 << 20, "used_memory grew by {} bytes", memory_after - memory_before);
    assert_eq!(admin.call(&["PING"]), Reply::Status("PONG".into()));
}

// --- Bad input -----------------------------------------------------------------------

#[test]
fn hostile_arguments_get_clear_errors_and_change_nothing() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    populate(&mut a);
    let before = export(&mut a);
    let version = counter(&mut a, "whitelist_version");

    let rule = "2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit";
    let mega = vec![b'1'; 1 << 20];
    let mega_shown = "1".repeat(64) + "...";
    let many: String =
        (0..100_000u32).map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)).collect::<Vec<_>>().join(",");
    let cases: Vec<(Vec<&[u8]>, String)> = vec![
        // NUL and non-UTF-8 bytes in group names, for every command taking one.
        (vec![b"WHITELIST.SET", b"pr\0od", b"10.0.0.1"], format!("ERR invalid group name 'pr\\x00od': {rule}")),
        (vec![b"WHITELIST.ADD", b"pr\xffod", b"10.0.0.1"], format!("ERR invalid group name 'pr\\xffod': {rule}")),
        (
            vec![b"WHITELIST.REMOVE", b"\xc3\xa9t\xc3\xa9", b"10.0.0.1"],
            format!("ERR invalid group name '\\xc3\\xa9t\\xc3\\xa9': {rule}"),
        ),
        (vec![b"WHITELIST.DEL", b"prod", b"\0"], format!("ERR invalid group name '\\x00': {rule}")),
        (vec![b"WHITELIST.GET", b"prod\n"], format!("ERR invalid group name 'prod\\x0a': {rule}")),
        (vec![b"WHITELIST.LOADCLIENTS", b"\r\nprod"], format!("ERR invalid group name '\\x0d\\x0aprod': {rule}")),
        // ... and in entries and addresses.
        (
            vec![b"WHITELIST.SET", b"prod", b"10.0.0.1\0"],
            "ERR invalid whitelist entry '10.0.0.1\\x00': not an IP address or CIDR block".into(),
        ),
        (
            vec![b"WHITELIST.ADD", b"prod", b"10.0.0.1,10.0.0.\xff"],
            "ERR invalid whitelist entry '10.0.0.\\xff': not an IP address or CIDR block".into(),
        ),
        (
            vec![b"WHITELIST.REMOVE", b"prod", b"\x00"],
            "ERR invalid whitelist entry '\\x00': not an IP address or CIDR block".into(),
        ),
        (vec![b"WHITELIST.CHECK", b"10.0.0.1\0"], "ERR invalid address '10.0.0.1\\x00': not an IP address".into()),
        (vec![b"WHITELIST.CHECK", b"::1%\xff"], "ERR invalid address '::1%\\xff': zone ids are not allowed".into()),
        (
            vec![b"WHITELIST.LIST", b"all\0"],
            "ERR syntax error: unexpected argument 'all\\x00': WHITELIST.LIST takes only ALL".into(),
        ),
        (
            vec![b"WHITELIST.IMPORT", b"{\"groups\":[{\"name\":\"pr\\u0000od\",\"entries\":[]}]}"],
            format!("ERR invalid whitelist document: invalid group name 'pr\\x00od': {rule}"),
        ),
        (
            vec![b"WHITELIST.IMPORT", b"\xff\xfe"],
            "ERR invalid whitelist document: expected value at line 1 column 1".into(),
        ),
        // A megabyte argument, in every position that takes text.
        (
            vec![b"WHITELIST.SET", b"prod", &mega],
            format!("ERR invalid whitelist entry '{mega_shown}': not an IP address or CIDR block"),
        ),
        (vec![b"WHITELIST.ADD", &mega, b"10.0.0.1"], format!("ERR invalid group name '{mega_shown}': {rule}")),
        (vec![b"WHITELIST.CHECK", &mega], format!("ERR invalid address '{mega_shown}': not an IP address")),
        (
            vec![b"WHITELIST.IMPORT", &mega],
            "ERR invalid whitelist document: number out of range at line 1 column 1048576".into(),
        ),
        (
            vec![b"WHITELIST.SET", b"prod", b"10.0.0.1", b"ATTRIBUTE", &mega],
            "ERR syntax error: ATTRIBUTE must be followed by show or hidden".into(),
        ),
        (
            vec![b"WHITELIST.IMPORT", b"{\"groups\":[]}", b"IFVERSION", &mega],
            "ERR syntax error: IFVERSION must be followed by a version from 0 to 9223372036854775807".into(),
        ),
        // 100,000 valid items in one argument.
        (
            vec![b"WHITELIST.SET", b"prod", many.as_bytes()],
            "ERR group 'prod' would hold 100000 entries, the limit is 1000 (whitelist.max-entries-per-group)".into(),
        ),
        (
            vec![b"WHITELIST.ADD", b"bulk", many.as_bytes()],
            "ERR group 'bulk' would hold 100000 entries, the limit is 1000 (whitelist.max-entries-per-group)".into(),
        ),
        // Unknown and repeated keywords, wrong arity, for every command.
        (
            vec![b"WHITELIST.SET", b"prod", b"10.0.0.1", b"FORCE", b"NOW"],
            "ERR syntax error: unexpected argument 'NOW': entries come before ATTRIBUTE and FORCE".into(),
        ),
        (
            vec![b"WHITELIST.ADD", b"prod", b"10.0.0.1", b"force", b"FORCE"],
            "ERR syntax error: FORCE given twice".into(),
        ),
        (
            vec![b"WHITELIST.REMOVE", b"prod", b"FORCE"],
            "ERR syntax error: WHITELIST.REMOVE needs at least one entry before its options".into(),
        ),
        (vec![b"WHITELIST.DEL", b"FORCE", b"prod"], "ERR syntax error: FORCE must be the last argument".into()),
        (
            vec![b"WHITELIST.LOADCLIENTS", b"prod", b"FORCE", b"FORCE"],
            "ERR wrong number of arguments for 'whitelist.loadclients' command".into(),
        ),
        (vec![b"WHITELIST.GET", b"prod", b"prod"], "ERR wrong number of arguments for 'whitelist.get' command".into()),
        (vec![b"WHITELIST.CHECK"], "ERR wrong number of arguments for 'whitelist.check' command".into()),
        (vec![b"WHITELIST.HELP", b"me"], "ERR wrong number of arguments for 'whitelist.help' command".into()),
        (vec![b"WHITELIST.EXPORT", b"all"], "ERR wrong number of arguments for 'whitelist.export' command".into()),
        (vec![b"WHITELIST.IMPORT"], "ERR wrong number of arguments for 'whitelist.import' command".into()),
    ];
    for (args, expected) in &cases {
        let reply = a.call_bytes(args);
        let name = String::from_utf8_lossy(args[0]);
        assert_eq!(
            reply,
            Reply::Error(expected.clone()),
            "{name} with {} bytes of arguments",
            args.iter().map(|x| x.len()).sum::<usize>()
        );
        assert_eq!(export(&mut a), before, "{name} changed the whitelist");
        assert_eq!(counter(&mut a, "whitelist_version"), version);
        assert_eq!(a.call(&["PING"]), Reply::Status("PONG".into()));
    }
    // Invalid config values: Redis's errors, and nothing changes.
    for (name, value, reason) in [
        ("whitelist.mode", "\0", "argument(s) must be one of the following: enforce, monitor, off"),
        ("whitelist.allow-loopback", "maybe", "argument must be 'yes' or 'no'"),
        ("whitelist.max-groups", "99999999999999999999", "argument couldn't be parsed into an integer"),
        ("whitelist.max-entries-per-group", "-1", "argument must be between 1 and 1000000 inclusive"),
    ] {
        let reply = a.call_bytes(&[b"CONFIG", b"SET", name.as_bytes(), value.as_bytes()]);
        assert_eq!(
            reply,
            Reply::Error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")),
            "{name}"
        );
    }
    assert_eq!(a.call(&["CONFIG", "GET", "whitelist.mode"]), Reply::strings(&["whitelist.mode", "enforce"]));
    assert_eq!(export(&mut a), before);
}

#[test]
fn hidden_groups_stay_out_of_listings_unless_asked_for() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    populate(&mut a);
    let get = a.call(&["WHITELIST.GET"]);
    assert_eq!(get, Reply::strings(&["prod", "10.0.0.0/8,192.0.2.7,2001:db8::/32,198.51.100.0/24"]));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["prod"]));
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["prod", "sys"]));
    assert_eq!(a.call(&["WHITELIST.GET", "sys"]), Reply::strings(&["127.0.0.2"]));
    // A decision names the hidden group that admits an address: the
    // operator asking needs to know why.
    assert_eq!(
        a.call(&["WHITELIST.CHECK", "127.0.0.2"]),
        Reply::Array(vec![Reply::bulk("allowed"), Reply::bulk("sys"), Reply::bulk("127.0.0.2"), Reply::bulk("entry")])
    );
    assert!(export(&mut a).text().contains("\"name\":\"sys\""));
}

//! Persistence against a real server: RDB (SAVE, BGSAVE, DEBUG RELOAD), AOF
//! with and without the RDB preamble, AOF rewrite, and what loading does to
//! the whitelist in force.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{wait_for, Client, Options, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];

/// The state `populate` builds: a hidden group, an emptied group that still
/// exists, entries in stored (not sorted) order, version 6.
const POPULATED: &str = concat!(
    r#"{"groups":[{"attribute":"show","entries":[],"name":"ee"},"#,
    r#"{"attribute":"hidden","entries":["172.16.0.0/12"],"name":"sys"},"#,
    r#"{"attribute":"show","entries":["10.9.9.9","2001:db8::1","192.168.0.0/16"],"name":"zz"}],"version":6}"#
);

/// Six changes through the admin socket, each asserted.
fn populate(admin: &mut Client) {
    assert_eq!(admin.call(&["WHITELIST.SET", "zz", "10.9.9.9,10.1.1.1,2001:DB8::0:1"]), Reply::Int(3));
    assert_eq!(admin.call(&["WHITELIST.SET", "sys", "172.16.0.0/12", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.ADD", "zz", "192.168.0.0/16"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "zz", "10.1.1.1"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.ADD", "ee", "10.5.5.5"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "ee", "10.5.5.5"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.EXPORT"]).text(), POPULATED);
}

fn export(s: &Server) -> String {
    s.admin().call(&["WHITELIST.EXPORT"]).text()
}

/// The populated state, checked through EXPORT, LIST, GET and INFO.
fn assert_populated(s: &Server) {
    assert_eq!(export(s), POPULATED);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.LIST"]), Reply::strings(&["ee", "zz"]));
    assert_eq!(admin.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["ee", "sys", "zz"]));
    assert_eq!(admin.call(&["WHITELIST.GET", "sys"]), Reply::strings(&["172.16.0.0/12"]));
    let info = s.info();
    assert_eq!(info["whitelist_version"], "6");
    assert_eq!(info["whitelist_enabled"], "1");
    assert_eq!(info["whitelist_groups"], "3");
    assert_eq!(info["whitelist_entries"], "4");
}

/// One section of `INFO` as a map.
fn info_section(s: &Server, section: &str) -> HashMap<String, String> {
    let text = s.admin().call(&["INFO", section]).text();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim_end().to_string())).collect()
}

/// Waits until every `field:value` pair holds in `INFO section`.
fn wait_info(s: &Server, section: &str, fields: &[(&str, &str)]) {
    wait_for(&format!("INFO {section} {fields:?}"), || {
        let info = info_section(s, section);
        fields.iter().all(|(k, v)| info.get(*k).map(String::as_str) == Some(*v)).then_some(())
    });
}

fn wait_aof_rewrite_done(s: &Server) {
    wait_info(s, "persistence", &[("aof_rewrite_in_progress", "0"), ("aof_rewrite_scheduled", "0")]);
}

/// Starts a server without the module on `s`'s (stopped) directory and port.
fn try_start_without_module_on(s: &Server) -> Result<Server, String> {
    Server::try_start(Options {
        without_module: true,
        dir: Some(Arc::clone(&s.dir)),
        port: Some(s.port),
        ..Options::default()
    })
}

#[test]
fn save_then_restart_keeps_groups_attributes_order_and_version() {
    let mut s = Server::start(&[]);
    populate(&mut s.admin());
    assert_eq!(s.admin().call(&["SAVE"]), Reply::ok());
    // NOSAVE: what comes back is what SAVE wrote.
    s.stop(false);
    let s = s.start_again(&[]);
    assert_populated(&s);
    s.wait_log("whitelist loaded: 3 groups, 4 entries, version 6");
    // SHUTDOWN SAVE + restart, twice over.
    let s = s.restart(&[]);
    assert_populated(&s);
}

#[test]
fn bgsave_then_restart_keeps_the_whitelist() {
    let mut s = Server::start(&[]);
    populate(&mut s.admin());
    assert_eq!(s.admin().call(&["BGSAVE"]), Reply::Status("Background saving started".into()));
    wait_info(&s, "persistence", &[("rdb_bgsave_in_progress", "0")]);
    assert_eq!(info_section(&s, "persistence")["rdb_last_bgsave_status"], "ok");
    s.stop(false);
    let s = s.start_again(&[]);
    assert_populated(&s);
}

#[test]
fn debug_reload_keeps_the_whitelist_and_flushall_leaves_it_alone() {
    let s = Server::start(&[]);
    let mut admin = s.admin();
    populate(&mut admin);
    assert_eq!(admin.call(&["DEBUG", "RELOAD"]), Reply::ok());
    assert_populated(&s);
    assert_eq!(admin.call(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(admin.call(&["FLUSHALL"]), Reply::ok());
    assert_eq!(admin.call(&["EXISTS", "k"]), Reply::Int(0));
    assert_eq!(admin.call(&["DBSIZE"]), Reply::Int(0));
    assert_populated(&s);
    // FLUSHALL is not a whitelist change.
    assert_eq!(s.info_field("whitelist_version"), "6");
}

/// AOF with `aof-use-rdb-preamble` set to `preamble`: replay after a restart,
/// then a rewrite followed by more changes, then a rewrite alone.
fn aof_round_trip(preamble: &str) {
    let args = ["--appendonly", "yes", "--aof-use-rdb-preamble", preamble];
    let mut s = Server::start(&args);
    wait_aof_rewrite_done(&s);
    populate(&mut s.admin());
    // NOSAVE: the AOF alone has it.
    s.stop(false);
    let mut s = s.start_again(&args);
    assert_populated(&s);

    wait_aof_rewrite_done(&s);
    assert_eq!(
        s.admin().call(&["BGREWRITEAOF"]),
        Reply::Status("Background append only file rewriting started".into())
    );
    wait_aof_rewrite_done(&s);
    assert_eq!(info_section(&s, "persistence")["aof_last_bgrewrite_status"], "ok");
    let mut admin = s.admin();
    // Changes on top of the rewritten state: replayed alone they would build
    // a different whitelist (zz with one entry, version 2).
    assert_eq!(admin.call(&["WHITELIST.ADD", "zz", "10.7.0.0/16"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.SET", "late", "10.8.8.8"]), Reply::Int(1));
    let expected = concat!(
        r#"{"groups":[{"attribute":"show","entries":[],"name":"ee"},"#,
        r#"{"attribute":"show","entries":["10.8.8.8"],"name":"late"},"#,
        r#"{"attribute":"hidden","entries":["172.16.0.0/12"],"name":"sys"},"#,
        r#"{"attribute":"show","entries":["10.9.9.9","2001:db8::1","192.168.0.0/16","10.7.0.0/16"],"name":"zz"}],"version":8}"#
    );
    assert_eq!(export(&s), expected);
    drop(admin);
    s.stop(false);
    let mut s = s.start_again(&args);
    assert_eq!(export(&s), expected);
    assert_eq!(s.info_field("whitelist_version"), "8");

    // A rewrite with nothing after it.
    wait_aof_rewrite_done(&s);
    assert_eq!(
        s.admin().call(&["BGREWRITEAOF"]),
        Reply::Status("Background append only file rewriting started".into())
    );
    wait_aof_rewrite_done(&s);
    s.stop(false);
    let s = s.start_again(&args);
    assert_eq!(export(&s), expected);
    assert_eq!(s.info_field("whitelist_version"), "8");
}

#[test]
fn aof_with_rdb_preamble_keeps_the_whitelist_across_restart_and_rewrite() {
    aof_round_trip("yes");
}

#[test]
fn aof_without_rdb_preamble_keeps_the_whitelist_and_its_version_across_rewrite() {
    aof_round_trip("no");
}

#[test]
fn a_rewrite_scheduled_behind_a_bgsave_carries_the_whitelist_too() {
    let args = ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"];
    let mut s = Server::start(&args);
    wait_aof_rewrite_done(&s);
    populate(&mut s.admin());
    // Both in one write: the BGSAVE child is still there when BGREWRITEAOF runs.
    let mut admin = s.admin();
    admin.send(&[b"BGSAVE"]).expect("sent");
    admin.send(&[b"BGREWRITEAOF"]).expect("sent");
    assert_eq!(admin.read_reply().expect("a reply"), Reply::Status("Background saving started".into()));
    assert_eq!(
        admin.read_reply().expect("a reply"),
        Reply::Status("Background append only file rewriting scheduled".into())
    );
    wait_info(&s, "persistence", &[("rdb_bgsave_in_progress", "0")]);
    wait_aof_rewrite_done(&s);
    assert_eq!(info_section(&s, "persistence")["aof_last_bgrewrite_status"], "ok");
    assert_eq!(admin.call(&["WHITELIST.ADD", "ee", "10.6.6.6"]), Reply::Int(1));
    drop(admin);
    // The RDB must not be what comes back: only the AOF is read.
    std::fs::remove_file(s.dir.path().join("dump.rdb")).expect("BGSAVE wrote dump.rdb");
    s.stop(false);
    let s = s.start_again(&args);
    assert_eq!(s.admin().call(&["WHITELIST.GET", "ee"]), Reply::strings(&["10.6.6.6"]));
    assert_eq!(
        s.admin().call(&["WHITELIST.GET", "zz"]),
        Reply::strings(&["10.9.9.9", "2001:db8::1", "192.168.0.0/16"])
    );
    assert_eq!(s.info_field("whitelist_version"), "7");
}

#[test]
fn enabling_aof_at_run_time_carries_the_whitelist_into_the_new_aof() {
    let mut s = Server::start(&["--aof-use-rdb-preamble", "no"]);
    populate(&mut s.admin());
    assert_eq!(s.admin().call(&["CONFIG", "SET", "appendonly", "yes"]), Reply::ok());
    wait_aof_rewrite_done(&s);
    wait_info(&s, "persistence", &[("aof_enabled", "1"), ("aof_last_bgrewrite_status", "ok")]);
    s.stop(false);
    let s = s.start_again(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    assert_populated(&s);
}

#[test]
fn loading_an_rdb_replaces_the_whitelist_in_force() {
    let mut s = Server::start(&[]);
    let mut admin = s.admin();
    // B: saved.
    assert_eq!(admin.call(&["WHITELIST.SET", "bb", "10.2.0.0/16,10.3.3.3"]), Reply::Int(2));
    assert_eq!(admin.call(&["SAVE"]), Reply::ok());
    let b = r#"{"groups":[{"attribute":"show","entries":["10.2.0.0/16","10.3.3.3"],"name":"bb"}],"version":1}"#;
    assert_eq!(export(&s), b);
    // A: in force, not saved, with a group B lacks and a newer version.
    assert_eq!(admin.call(&["WHITELIST.SET", "aa", "10.1.0.0/16"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.ADD", "bb", "10.4.4.4"]), Reply::Int(1));
    assert_eq!(admin.call(&["DEBUG", "RELOAD", "NOSAVE"]), Reply::ok());
    assert_eq!(export(&s), b);
    assert_eq!(s.info_field("whitelist_version"), "1");

    // The same across a restart.
    assert_eq!(admin.call(&["WHITELIST.SET", "aa", "10.1.0.0/16"]), Reply::Int(1));
    drop(admin);
    s.stop(false);
    let s = s.start_again(&[]);
    assert_eq!(export(&s), b);
}

#[test]
fn loading_an_emptied_whitelist_leaves_it_empty_with_its_version() {
    let s = Server::start(&[]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "bb", "10.2.0.0/16"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.DEL", "bb", "FORCE"]), Reply::Int(1));
    assert_eq!(admin.call(&["SAVE"]), Reply::ok());
    assert_eq!(admin.call(&["WHITELIST.SET", "aa", "10.1.0.0/16"]), Reply::Int(1));
    assert_eq!(admin.call(&["DEBUG", "RELOAD", "NOSAVE"]), Reply::ok());
    assert_eq!(export(&s), r#"{"groups":[],"version":2}"#);
    let info = s.info();
    assert_eq!(info["whitelist_enabled"], "0");
    assert_eq!(info["whitelist_version"], "2");
    assert_eq!(info["whitelist_groups"], "0");
}

#[test]
fn an_rdb_saved_without_the_module_starts_empty_and_reloading_it_keeps_the_whitelist() {
    let mut plain = Server::start_with(Options { without_module: true, ..Options::default() });
    assert_eq!(plain.admin().call(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(plain.admin().call(&["SAVE"]), Reply::ok());
    plain.stop(false);
    let s = plain.start_again(&[]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["GET", "k"]), Reply::bulk("v"));
    let info = s.info();
    assert_eq!(info["whitelist_enabled"], "0");
    assert_eq!(info["whitelist_version"], "0");
    assert_eq!(export(&s), r#"{"groups":[],"version":0}"#);
    // Reloading that RDB into a server whose whitelist is on keeps it: data
    // without a whitelist never empties it, and says so.
    assert_eq!(admin.call(&["WHITELIST.SET", "aa", "10.1.0.0/16"]), Reply::Int(1));
    assert_eq!(admin.call(&["DEBUG", "RELOAD", "NOSAVE"]), Reply::ok());
    assert_eq!(export(&s), r#"{"groups":[{"attribute":"show","entries":["10.1.0.0/16"],"name":"aa"}],"version":1}"#);
    assert_eq!(s.info_field("whitelist_enabled"), "1");
    s.wait_log("the loaded data carries no whitelist: the whitelist in force (version 1) is kept");
    assert_eq!(admin.call(&["GET", "k"]), Reply::bulk("v"));
}

/// Redis 7.0 writes a module's aux record into every RDB, so an RDB saved
/// with the module loaded needs the module; 7.2+ (and Valkey) use
/// `aux_save2`, which skips the record of a whitelist that was never used.
#[test]
fn an_rdb_of_an_unused_whitelist_needs_the_module_only_on_redis_7_0() {
    // Never touched: the whitelist is empty at version 0.
    let mut s = Server::start(&[]);
    assert_eq!(s.info_field("whitelist_version"), "0");
    assert_eq!(s.admin().call(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(s.admin().call(&["SAVE"]), Reply::ok());
    s.stop(false);
    match try_start_without_module_on(&s) {
        Ok(mut plain) => {
            assert!(common::flavor().has_72_api(), "{} loaded an RDB with the aux record", common::flavor().describe());
            assert_eq!(plain.admin().call(&["GET", "k"]), Reply::bulk("v"));
            plain.stop(false);
        }
        Err(log) => {
            assert!(!common::flavor().has_72_api(), "{}: {log}", common::flavor().describe());
            assert!(log.starts_with("exited with"), "{log}");
            assert!(log.contains("no matching module 'whitelist'"), "{log}");
        }
    }

    // Emptied after use: the version must survive, so every server keeps
    // the record and needs the module.
    let mut s = s.start_again(&[]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "bb", "10.2.0.0/16"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.DEL", "bb", "FORCE"]), Reply::Int(1));
    assert_eq!(admin.call(&["SAVE"]), Reply::ok());
    drop(admin);
    s.stop(false);
    std::fs::remove_file(s.dir.path().join("redis.log")).expect("the log exists");
    let log = try_start_without_module_on(&s).err().expect("a server without the module refuses this RDB");
    assert!(log.starts_with("exited with"), "{log}");
    assert!(log.contains("no matching module 'whitelist'"), "{log}");
}

#[test]
fn rules_loaded_from_an_rdb_are_enforced() {
    let mut s = Server::start(NO_LOOPBACK);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(s.admin().call(&["SAVE"]), Reply::ok());
    s.stop(false);
    let s = s.start_again(NO_LOOPBACK);
    assert!(s.connect_from("127.0.0.2").is_served());
    assert!(s.connect_from("127.0.0.3").closed_within(Duration::from_secs(5)));
    assert!(s.connect_from("127.0.0.1").closed_within(Duration::from_secs(5)));
}

#[test]
fn loading_ignores_the_limits() {
    let limits = ["--whitelist.max-entries-per-group", "1", "--whitelist.max-groups", "1"];
    // From an RDB.
    let mut s = Server::start(&[]);
    populate(&mut s.admin());
    assert_eq!(s.admin().call(&["SAVE"]), Reply::ok());
    s.stop(false);
    let mut s = s.start_again(&limits);
    assert_populated(&s);
    assert_eq!(
        s.admin().call(&["WHITELIST.ADD", "zz", "10.3.3.3"]),
        Reply::err("ERR group 'zz' would hold 4 entries, the limit is 1 (whitelist.max-entries-per-group)")
    );
    s.stop(false);
    // From an AOF replayed command by command.
    std::fs::remove_file(s.dir.path().join("dump.rdb")).expect("SAVE wrote dump.rdb");
    let aof = ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"];
    let mut s = s.start_again(&aof);
    wait_aof_rewrite_done(&s);
    populate(&mut s.admin());
    s.stop(false);
    let aof_with_limits: Vec<&str> = aof.iter().chain(&limits).copied().collect();
    let s = s.start_again(&aof_with_limits);
    assert_populated(&s);
}

#[test]
fn a_corrupt_whitelist_record_stops_the_server_with_a_clear_line() {
    // Uncompressed and without Redis's own checksum, so that only the
    // module can notice the damage.
    let mut s = Server::start(&["--rdbchecksum", "no", "--rdbcompression", "no"]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "default", "10.0.0.0/8"]), Reply::Int(1));
    assert_eq!(s.admin().call(&["SAVE"]), Reply::ok());
    s.stop(false);
    let path = s.dir.path().join("dump.rdb");
    let mut rdb = std::fs::read(&path).expect("SAVE wrote dump.rdb");
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
    };
    let magic = find(&rdb, b"WLST", 0).expect("the whitelist record is in the RDB");
    let name = find(&rdb, b"default", magic).expect("the group name is in the record");
    // Still a valid group name: only the record's checksum can tell.
    rdb[name] = b'e';
    std::fs::write(&path, &rdb).expect("dump.rdb is writable");
    let log = s.try_start_again(&[]).err().expect("the server refuses the corrupt record");
    assert!(log.starts_with("exited with"), "{log}");
    assert!(log.contains("refusing the whitelist in this data: checksum mismatch: the data is corrupt"), "{log}");
}

/// Appends one command, in the protocol's form, to the AOF's newest
/// incremental file (as a hand edit or a newer module's syntax would).
fn append_to_incr_aof(s: &Server, args: &[&str]) {
    let dir = s.dir.path().join("appendonlydir");
    let mut incr: Vec<_> = std::fs::read_dir(&dir)
        .expect("the AOF directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .collect();
    incr.sort();
    let file = incr.pop().expect("an incremental AOF file");
    let mut command = format!("*{}\r\n", args.len());
    for a in args {
        command.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    let mut text = std::fs::read(&file).expect("the incremental AOF file");
    text.extend_from_slice(command.as_bytes());
    std::fs::write(&file, text).expect("the incremental AOF file is written");
}

#[test]
fn a_command_the_aof_replay_cannot_apply_stops_the_start_up() {
    let args = ["--appendonly", "yes"];
    let mut s = Server::start(&args);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "pp", "10.0.0.1"]), Reply::Int(1));
    s.stop(true);
    append_to_incr_aof(&s, &["WHITELIST.ADD", "pp", "10.0.0.256"]);
    let log = s.try_start_again(&args).err().expect("the server does not start without the change");
    assert!(log.starts_with("exited with"), "{log}");
    assert!(
        log.contains(
            "cannot apply WHITELIST.ADD 'pp' '10.0.0.256' from the AOF: ERR invalid whitelist entry '10.0.0.256': \
             not an IP address or CIDR block. The server stops rather than start without this change; correct or \
             remove the command in the AOF and start again"
        ),
        "{log}"
    );
}

#[test]
fn a_damaged_cluster_merge_in_the_aof_stops_the_start_up() {
    let args = ["--appendonly", "yes"];
    let mut s = Server::start(&args);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "pp", "10.0.0.1"]), Reply::Int(1));
    s.stop(true);
    append_to_incr_aof(&s, &["WHITELIST.MERGE", "WLCS-not-a-state"]);
    let log = s.try_start_again(&args).err().expect("the server does not start without the change");
    assert!(log.starts_with("exited with"), "{log}");
    assert!(
        log.contains(
            "cannot apply WHITELIST.MERGE 'WLCS-not-a-state' from the AOF: ERR invalid cluster state: checksum mismatch: the data is corrupt. \
             The server stops rather than start without this change"
        ),
        "{log}"
    );
}

#[test]
fn a_command_a_later_aof_load_cannot_apply_makes_the_server_diverge() {
    let args = ["--appendonly", "yes", "--whitelist.allow-loopback", "no"];
    let s = Server::start_with(Options {
        args: args.iter().map(|a| a.to_string()).collect(),
        module: Some(common::test_module_path()),
        ..Default::default()
    });
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "pp", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "pp", "127.0.0.3"]), Reply::Int(1));
    assert!(s.connect_from("127.0.0.2").is_served());
    // DEBUG LOADAOF replays the file in a running server: no start-up to
    // stop, so the lost change makes the server deny all but exempt clients.
    assert_eq!(a.call(&["WHITELIST.DEBUG-FAULT", "lose-next-change"]), Reply::ok());
    assert_eq!(a.call(&["DEBUG", "LOADAOF"]), Reply::ok());
    s.wait_log("cannot apply WHITELIST.SET 'pp' '127.0.0.2' from the AOF: ERR test fault");
    let info = s.info();
    assert_eq!((info["whitelist_diverged"].as_str(), info["whitelist_replication_errors"].as_str()), ("1", "1"));
    assert!(s.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    assert!(a.is_served());
}

/// Written by Redis 7.0.15 with the module's first encoding (version 1):
/// groups `default` (10.0.0.0/8, 192.0.2.7, 2001:db8::/32), an empty group
/// `empty`, a hidden group `sys` (::1, 0.0.0.0/0), version 4, and one key.
const ENCODING_1_RDB: &[u8] = include_bytes!("data/whitelist-encoding-1.rdb");

#[test]
fn an_rdb_written_by_the_first_encoding_still_loads_and_is_saved_in_the_current_one() {
    let dir = Arc::new(tempfile::TempDir::new().expect("a temp dir"));
    std::fs::write(dir.path().join("dump.rdb"), ENCODING_1_RDB).expect("the RDB is written");
    let s = Server::start_with(Options { dir: Some(Arc::clone(&dir)), ..Options::default() });
    let expected = concat!(
        r#"{"groups":[{"attribute":"show","entries":["10.0.0.0/8","192.0.2.7","2001:db8::/32"],"name":"default"},"#,
        r#"{"attribute":"show","entries":[],"name":"empty"},"#,
        r#"{"attribute":"hidden","entries":["::1","0.0.0.0/0"],"name":"sys"}],"version":4}"#
    );
    assert_eq!(export(&s), expected);
    assert_eq!(s.admin().call(&["GET", "somekey"]), Reply::bulk("somevalue"));
    // Saved again, it is written in the current encoding and reads back the same.
    assert_eq!(s.admin().call(&["SAVE"]), Reply::ok());
    let rdb = std::fs::read(dir.path().join("dump.rdb")).expect("SAVE wrote dump.rdb");
    assert!(rdb.windows(5).any(|w| w == b"WLST\x02"), "the record is not in encoding version 2");
    let mut s = s;
    s.stop(false);
    let s = s.start_again(&[]);
    assert_eq!(export(&s), expected);
}

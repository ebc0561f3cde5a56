//! AOF rewrites and the whitelist: the carry into the new incremental file
//! when the base has no RDB preamble, client pauses (during which Redis
//! aborts on any propagation), crashes at each point of a rewrite, and the
//! warnings for the windows a module cannot close.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{wait_for, Reply, Server};

const AOF_NO_PREAMBLE: &[&str] = &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"];
const AOF_PREAMBLE: &[&str] = &["--appendonly", "yes", "--aof-use-rdb-preamble", "yes"];

/// What `populate` builds: three changes, a hidden group.
const POPULATED: &str = concat!(
    r#"{"groups":[{"attribute":"hidden","entries":["172.16.0.0/12"],"name":"sys"},"#,
    r#"{"attribute":"show","entries":["10.9.9.9","192.168.0.0/16"],"name":"zz"}],"version":3}"#
);

const STARTED: &str = "Background append only file rewriting started";

/// The warning for a rewrite without the preamble during a pause, for the
/// state `populate` builds.
const PAUSE_WARNING: &str = concat!(
    "AOF rewrite with aof-use-rdb-preamble no during a client pause: the whitelist (version 3, 2 groups) is ",
    "written into the new incremental AOF file only when the pause ends, so if the rewrite completes first a ",
    "crash before then restarts without it; set aof-use-rdb-preamble yes to keep the whitelist in the base file"
);

/// The warning for a rewrite without the preamble while AOF is off, for the
/// state `populate` builds.
const AOF_OFF_WARNING: &str = concat!(
    "AOF rewrite with aof-use-rdb-preamble no while appendonly is no: the new base file holds no whitelist and ",
    "there is no incremental file to carry the whitelist (version 3, 2 groups) into, so a start with appendonly ",
    "yes from this file would begin without it; set aof-use-rdb-preamble yes to keep the whitelist in the base file"
);

/// Both warnings begin so.
const ANY_WARNING: &str = "AOF rewrite with aof-use-rdb-preamble no";

fn populate(s: &Server) {
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "zz", "10.9.9.9"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.SET", "sys", "172.16.0.0/12", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.ADD", "zz", "192.168.0.0/16"]), Reply::Int(1));
    assert_eq!(export(s), POPULATED);
}

fn export(s: &Server) -> String {
    s.admin().call(&["WHITELIST.EXPORT"]).text()
}

fn info_section(s: &Server, section: &str) -> HashMap<String, String> {
    let text = s.admin().call(&["INFO", section]).text();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim_end().to_string())).collect()
}

fn wait_aof_rewrite_done(s: &Server) {
    wait_for("the AOF rewrite to end", || {
        let p = info_section(s, "persistence");
        (p["aof_rewrite_in_progress"] == "0" && p["aof_rewrite_scheduled"] == "0").then_some(())
    });
}

fn aof_dir(s: &Server) -> PathBuf {
    s.dir.path().join("appendonlydir")
}

/// The manifest's files of one type (`b` base, `i` incremental), in order.
fn manifest_files(s: &Server, kind: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(aof_dir(s).join("appendonly.aof.manifest")).expect("an AOF manifest");
    manifest
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let field = |name: &str| words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)).copied();
            (field("type") == Some(kind)).then(|| field("file").map(String::from)).flatten()
        })
        .collect()
}

fn aof_file(s: &Server, name: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(aof_dir(s).join(name)).expect("an AOF file")).into_owned()
}

/// Whether the manifest's last incremental file holds the carried import.
fn last_incr_holds_import(s: &Server) -> bool {
    let incr = manifest_files(s, "i");
    let last = incr.last().expect("an incremental AOF file");
    aof_file(s, last).contains("WHITELIST.IMPORT")
}

fn bgrewriteaof(s: &Server) {
    assert_eq!(s.admin().call(&["BGREWRITEAOF"]), Reply::Status(STARTED.to_string()));
}

/// The pid of the last rewrite child, from the log.
fn last_rewrite_child(s: &Server) -> u32 {
    let log = s.log();
    let line = log.lines().rev().find(|l| l.contains("rewriting started by pid")).expect("a rewrite started");
    line.rsplit(' ').next().and_then(|p| p.trim().parse().ok()).expect("a pid")
}

/// A rewrite child outlives a `kill -9` of its parent: wait for it to end
/// (or to be a zombie nobody reaps) so that it writes nothing into the
/// directory of the next server.
fn wait_child_gone(pid: u32) {
    let start = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).unwrap_or("");
        if stat.is_empty() || state == "Z" || state == "X" {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the rewrite child {pid} did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keys that make a rewrite take about `keys` milliseconds.
fn slow_rewrites(s: &Server, keys: &str) {
    let mut admin = s.admin();
    assert_eq!(admin.call(&["DEBUG", "POPULATE", keys]), Reply::ok());
    assert_eq!(admin.call(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]), Reply::ok());
}

#[test]
fn a_rewrite_during_a_write_pause_carries_the_whitelist_once_the_pause_ends() {
    let mut s = Server::start(AOF_NO_PREAMBLE);
    wait_aof_rewrite_done(&s);
    populate(&s);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "60000", "WRITE"]), Reply::ok());
    bgrewriteaof(&s);
    s.wait_log(PAUSE_WARNING);
    wait_aof_rewrite_done(&s);
    assert_eq!(info_section(&s, "persistence")["aof_last_bgrewrite_status"], "ok");
    // Still serving, and the carry is still held back: the new base and
    // incremental files hold no whitelist yet.
    assert!(admin.is_served());
    let base = manifest_files(&s, "b");
    assert_eq!(base.len(), 1, "{base:?}");
    assert!(!aof_file(&s, &base[0]).contains("WHITELIST"), "the base file has no preamble and no whitelist");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!last_incr_holds_import(&s));
    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]), Reply::ok());
    wait_for("the carried import in the new incremental file", || last_incr_holds_import(&s).then_some(()));
    assert_eq!(s.log().matches(ANY_WARNING).count(), 1);
    drop(admin);
    s.kill();
    let s = s.start_again(AOF_NO_PREAMBLE);
    assert_eq!(export(&s), POPULATED);
    assert_eq!(s.info_field("whitelist_version"), "3");
    assert!(s.log().contains("whitelist loaded: 2 groups, 3 entries, version 3"));
}

#[test]
fn a_pause_that_begins_right_after_the_rewrite_holds_the_carry_too() {
    let mut s = Server::start(AOF_NO_PREAMBLE);
    wait_aof_rewrite_done(&s);
    populate(&s);
    // One write, so one read: both commands run before the carry's timer.
    let mut raw = UnixStream::connect(s.socket()).expect("the admin socket");
    raw.set_read_timeout(Some(common::DEADLINE)).expect("a timeout");
    raw.write_all(b"BGREWRITEAOF\r\nCLIENT PAUSE 60000 WRITE\r\n").expect("sent");
    let expected = format!("+{STARTED}\r\n+OK\r\n");
    let mut replies = vec![0; expected.len()];
    raw.read_exact(&mut replies).expect("two replies");
    assert_eq!(String::from_utf8_lossy(&replies), expected);
    s.wait_log(PAUSE_WARNING);
    let mut admin = s.admin();
    wait_aof_rewrite_done(&s);
    assert!(admin.is_served());
    assert!(!last_incr_holds_import(&s));
    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]), Reply::ok());
    wait_for("the carried import in the new incremental file", || last_incr_holds_import(&s).then_some(()));
    assert_eq!(s.log().matches(ANY_WARNING).count(), 1);
    drop(admin);
    s.kill();
    let s = s.start_again(AOF_NO_PREAMBLE);
    assert_eq!(export(&s), POPULATED);
}

#[test]
fn a_rewrite_with_the_preamble_during_a_pause_needs_no_carry() {
    let mut s = Server::start(AOF_PREAMBLE);
    wait_aof_rewrite_done(&s);
    populate(&s);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "60000", "WRITE"]), Reply::ok());
    bgrewriteaof(&s);
    wait_aof_rewrite_done(&s);
    assert_eq!(info_section(&s, "persistence")["aof_last_bgrewrite_status"], "ok");
    assert!(admin.is_served());
    assert!(!last_incr_holds_import(&s));
    // Killed while still paused: the base file's preamble has it.
    s.kill();
    let s = s.start_again(AOF_PREAMBLE);
    assert_eq!(export(&s), POPULATED);
    assert!(!s.log().contains(ANY_WARNING));
}

#[test]
fn a_crash_at_any_point_of_a_rewrite_restarts_with_the_whitelist() {
    let mut s = Server::start(AOF_NO_PREAMBLE);
    wait_aof_rewrite_done(&s);
    populate(&s);
    // A completed rewrite first, so that the files a crash falls back on are
    // a base without the whitelist and an incremental file with the carry.
    bgrewriteaof(&s);
    wait_aof_rewrite_done(&s);
    assert!(last_incr_holds_import(&s));
    assert_eq!(s.admin().call(&["WHITELIST.ADD", "sys", "10.20.0.0/16"]), Reply::Int(1));
    let expected = concat!(
        r#"{"groups":[{"attribute":"hidden","entries":["172.16.0.0/12","10.20.0.0/16"],"name":"sys"},"#,
        r#"{"attribute":"show","entries":["10.9.9.9","192.168.0.0/16"],"name":"zz"}],"version":4}"#
    );
    assert_eq!(export(&s), expected);
    slow_rewrites(&s, "3000");

    // Killed as soon as the rewrite has started.
    bgrewriteaof(&s);
    let child = last_rewrite_child(&s);
    s.kill();
    wait_child_gone(child);
    let mut s = s.start_again(AOF_NO_PREAMBLE);
    assert_eq!(export(&s), expected);
    assert_eq!(s.admin().call(&["DBSIZE"]), Reply::Int(0), "DEBUG POPULATE keys never reach the AOF");

    // Killed in the middle of a rewrite, once the carry is in the new
    // incremental file.
    slow_rewrites(&s, "3000");
    bgrewriteaof(&s);
    let child = last_rewrite_child(&s);
    wait_for("the carried import in the new incremental file", || last_incr_holds_import(&s).then_some(()));
    assert_eq!(info_section(&s, "persistence")["aof_rewrite_in_progress"], "1");
    s.kill();
    wait_child_gone(child);
    let mut s = s.start_again(AOF_NO_PREAMBLE);
    assert_eq!(export(&s), expected);

    // Killed right after a rewrite has completed.
    slow_rewrites(&s, "300");
    bgrewriteaof(&s);
    wait_aof_rewrite_done(&s);
    assert_eq!(info_section(&s, "persistence")["aof_last_bgrewrite_status"], "ok");
    s.kill();
    let s = s.start_again(AOF_NO_PREAMBLE);
    assert_eq!(export(&s), expected);
    assert_eq!(s.admin().call(&["DBSIZE"]), Reply::Int(300), "the rewrite captured the keys");
    assert!(!s.log().contains(ANY_WARNING));
}

#[test]
fn a_rewrite_without_the_preamble_while_aof_is_off_warns_that_the_base_holds_no_whitelist() {
    let s = Server::start(&["--aof-use-rdb-preamble", "no"]);
    // Nothing to lose yet: no warning.
    bgrewriteaof(&s);
    wait_aof_rewrite_done(&s);
    populate(&s);
    assert!(!s.log().contains(ANY_WARNING));
    bgrewriteaof(&s);
    s.wait_log(AOF_OFF_WARNING);
    wait_aof_rewrite_done(&s);
    // With the preamble the base file has it: no warning.
    assert_eq!(s.admin().call(&["CONFIG", "SET", "aof-use-rdb-preamble", "yes"]), Reply::ok());
    bgrewriteaof(&s);
    wait_aof_rewrite_done(&s);
    assert_eq!(s.log().matches(ANY_WARNING).count(), 1);
}

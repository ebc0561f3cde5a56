//! Loading: the start-up load is no open window, data without a whitelist
//! keeps the one in force, and the end of a load re-checks open connections.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_for, Client, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];

/// A server started on `dir`/`port` that is still loading: no wait for PING.
struct Loading {
    child: Option<Child>,
    socket: std::path::PathBuf,
}

impl Loading {
    fn start(from: &mut Server, args: &[&str]) -> Loading {
        let dir: Arc<tempfile::TempDir> = Arc::clone(&from.dir);
        let socket = dir.path().join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let mut cmd = Command::new(common::server_binary());
        cmd.arg("--port")
            .arg(from.port.to_string())
            .args(["--bind", "127.0.0.1 -::1", "--protected-mode", "no", "--dir"])
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", "", "--daemonize", "no"])
            .args(["--enable-debug-command", "local", "--loglevel", "notice", "--loadmodule"])
            .arg(common::module_path())
            .args(common::extra_server_args())
            .args(NO_LOOPBACK)
            .args(["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = Some(cmd.spawn().expect("the server starts"));
        let l = Loading { child, socket };
        // Loading: the exempt admin socket gets -LOADING.
        wait_for("the server to be loading", || {
            let mut c = Client::unix(&l.socket).ok()?;
            match c.try_call(&["PING"]).ok()? {
                Reply::Error(e) if e.starts_with("LOADING") => Some(()),
                Reply::Status(s) => panic!("the load ended too early ({s}): make it slower"),
                _ => None,
            }
        });
        l
    }

    fn admin(&self) -> Client {
        Client::unix(&self.socket).expect("the admin socket")
    }

    /// Waits for the load to end.
    fn wait_loaded(&self) {
        let start = Instant::now();
        loop {
            if let Ok(mut c) = Client::unix(&self.socket) {
                if c.try_call(&["PING"]).ok() == Some(Reply::Status("PONG".into())) {
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the load did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::unix(&self.socket) {
            let _ = c.send(&[b"SHUTDOWN", b"NOSAVE"]);
        }
        common::reap(&mut self.child);
    }
}

fn tcp(port: u16, source: &str) -> Client {
    let target = std::net::SocketAddr::new("127.0.0.1".parse().unwrap(), port);
    Client::tcp_from(source.parse().unwrap(), target).expect("connect")
}

#[test]
fn a_denied_client_gets_nothing_during_the_startup_load_and_the_allowed_one_gets_loading() {
    let mut s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(admin.call(&["DEBUG", "POPULATE", "40000"]), Reply::ok());
    assert_eq!(admin.call(&["SAVE"]), Reply::ok());
    s.stop(false);
    let l = Loading::start(&mut s, &[]);
    let mut denied = tcp(s.port, "127.0.0.3");
    let _ = denied.send(&[b"CONFIG", b"SET", b"whitelist.mode", b"off"]);
    assert!(denied.closed_within(Duration::from_secs(5)), "the denied client was served during the load");
    let mut allowed = tcp(s.port, "127.0.0.2");
    match allowed.call(&["PING"]) {
        Reply::Error(e) => assert!(e.starts_with("LOADING"), "{e}"),
        other => panic!("expected -LOADING, got {other:?}"),
    }
    l.wait_loaded();
    let mut admin = l.admin();
    assert_eq!(admin.call(&["CONFIG", "GET", "whitelist.mode"]), Reply::strings(&["whitelist.mode", "enforce"]));
    assert!(allowed.is_served());
    assert!(tcp(s.port, "127.0.0.3").closed_within(Duration::from_secs(5)));
}

#[test]
fn an_aof_without_preamble_admits_nobody_until_its_replay_ends() {
    let no_preamble = ["--whitelist.allow-loopback", "no", "--appendonly", "yes", "--aof-use-rdb-preamble", "no"];
    let mut s = Server::start(&no_preamble);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.4"]), Reply::Int(2));
    assert_eq!(admin.call(&["DEBUG", "POPULATE", "40000"]), Reply::ok());
    // The keys go into the base as commands; the whitelist is carried into
    // the new incremental file as one WHITELIST.IMPORT.
    admin.call(&["BGREWRITEAOF"]);
    wait_for("the rewrite to finish", || {
        let text = s.admin().call(&["INFO", "persistence"]).text();
        (text.contains("aof_rewrite_in_progress:0") && text.contains("aof_rewrite_scheduled:0")).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    s.stop(false);
    let l = Loading::start(&mut s, &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    // Even the address the replayed whitelist admits: nothing is read yet.
    let mut early = tcp(s.port, "127.0.0.2");
    assert!(early.closed_within(Duration::from_secs(5)));
    l.wait_loaded();
    let mut admin = l.admin();
    let info = common::info_of(&mut admin);
    assert!(info["whitelist_denied_while_loading"].parse::<u64>().unwrap() >= 1, "{info:?}");
    assert_eq!(info["whitelist_entries"], "2");
    assert!(tcp(s.port, "127.0.0.2").is_served());
}

#[test]
fn the_end_of_the_startup_load_closes_what_the_final_rules_deny() {
    let mut s = Server::start(&["--whitelist.allow-loopback", "no", "--appendonly", "yes"]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.4"]), Reply::Int(2));
    assert_eq!(admin.call(&["DEBUG", "POPULATE", "40000"]), Reply::ok());
    admin.call(&["BGREWRITEAOF"]);
    wait_for("the rewrite to finish", || {
        let text = s.admin().call(&["INFO", "persistence"]).text();
        (text.contains("aof_rewrite_in_progress:0") && text.contains("aof_rewrite_scheduled:0")).then_some(())
    });
    // After the base: in the incremental file only.
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "default", "127.0.0.4"]), Reply::Int(1));
    s.stop(false);
    let l = Loading::start(&mut s, &["--appendonly", "yes"]);
    // The preamble's record is in force during the load: 127.0.0.4 is in it.
    let mut four = tcp(s.port, "127.0.0.4");
    match four.call(&["PING"]) {
        Reply::Error(e) => assert!(e.starts_with("LOADING"), "{e}"),
        other => panic!("expected -LOADING, got {other:?}"),
    }
    assert!(tcp(s.port, "127.0.0.5").closed_within(Duration::from_secs(5)));
    l.wait_loaded();
    assert!(four.closed_within(Duration::from_secs(5)), "the final rules deny 127.0.0.4");
    assert!(tcp(s.port, "127.0.0.2").is_served());
}

#[test]
fn a_functions_only_rdb_keeps_the_whitelist_in_force() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--repl-diskless-sync-delay", "0"]);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.ADD", "default", "127.0.0.9"]), Reply::Int(1));
    // A functions-only dump, as a replica would receive it: no aux data.
    let mut sync = tcp(s.port, "127.0.0.2");
    assert_eq!(sync.call(&["REPLCONF", "capa", "eof"]), Reply::ok());
    assert_eq!(sync.call(&["REPLCONF", "rdb-filter-only", "functions"]), Reply::ok());
    let payload = read_sync_payload(&mut sync);
    drop(sync);
    let rdb = s.dir.path().join("dump.rdb");
    std::fs::write(&rdb, &payload).expect("write the dump");
    assert_eq!(admin.call(&["DEBUG", "RELOAD", "NOSAVE"]), Reply::ok());
    s.wait_log("the loaded data carries no whitelist: the whitelist in force (version 2) is kept");
    let info = common::info_of(&mut admin);
    assert_eq!(info["whitelist_version"], "2");
    assert_eq!(info["whitelist_entries"], "2");
    assert_eq!(info["whitelist_diverged"], "0");
    assert!(tcp(s.port, "127.0.0.3").closed_within(Duration::from_secs(5)));
}

/// Sends `SYNC` and reads the RDB payload (EOF-marked or sized).
fn read_sync_payload(c: &mut Client) -> Vec<u8> {
    c.send(&[b"SYNC"]).expect("SYNC");
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let start = Instant::now();
    loop {
        let n = c.read_raw(&mut buf);
        raw.extend_from_slice(&buf[..n]);
        // Skip the newlines the primary sends while it prepares.
        let trimmed: Vec<u8> = raw.iter().copied().skip_while(|&b| b == b'\n').collect();
        if let Some(pos) = trimmed.windows(2).position(|w| w == b"\r\n") {
            let header = String::from_utf8_lossy(&trimmed[..pos]).to_string();
            let body = &trimmed[pos + 2..];
            if let Some(mark) = header.strip_prefix("$EOF:") {
                let mark = mark.as_bytes();
                if body.len() >= mark.len() && body.ends_with(mark) {
                    return body[..body.len() - mark.len()].to_vec();
                }
            } else if let Some(len) = header.strip_prefix('$').and_then(|l| l.parse::<usize>().ok()) {
                if body.len() >= len {
                    return body[..len].to_vec();
                }
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no complete payload: {:?}", String::from_utf8_lossy(&raw));
        if n == 0 {
            panic!("the primary closed the sync: {:?}", String::from_utf8_lossy(&raw));
        }
    }
}

#[test]
fn a_later_load_judges_by_the_rules_in_force() {
    // No data at start: no window. DEBUG RELOAD is a later load.
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(admin.call(&["DEBUG", "POPULATE", "40000"]), Reply::ok());
    assert_eq!(admin.call(&["SAVE"]), Reply::ok());
    assert_eq!(admin.call(&["CONFIG", "SET", "key-load-delay", "100"]), Reply::ok());
    assert_eq!(admin.call(&["CONFIG", "SET", "loading-process-events-interval-bytes", "1024"]), Reply::ok());
    let socket = s.socket();
    // About 4 s of loading on an idle machine; a busy one may take longer.
    let reload = std::thread::spawn(move || {
        Client::unix(&socket).unwrap().call_within(&["DEBUG", "RELOAD", "NOSAVE"], Duration::from_secs(60))
    });
    wait_for("the reload to be loading", || match s.admin().try_call(&["PING"]).ok()? {
        Reply::Error(e) if e.starts_with("LOADING") => Some(()),
        _ => None,
    });
    let mut two = s.connect_from("127.0.0.2");
    match two.call(&["PING"]) {
        Reply::Error(e) => assert!(e.starts_with("LOADING"), "{e}"),
        other => panic!("expected -LOADING, got {other:?}"),
    }
    assert!(s.connect_from("127.0.0.3").closed_within(Duration::from_secs(5)));
    assert_eq!(reload.join().expect("the reload"), Reply::ok());
    let info = common::info_of(&mut admin);
    assert_eq!(info["whitelist_denied_while_loading"], "0");
    assert_eq!(info["whitelist_connections_denied"], "1");
    assert!(two.is_served());
}

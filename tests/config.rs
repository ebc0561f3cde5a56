//! The `whitelist.*` configs against a real server: defaults, `CONFIG SET`,
//! the command line, a config file, `CONFIG REWRITE`, invalid values (named
//! with the value given, at run time and at start-up), and the re-check of
//! open connections after a change.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::{module_path, reap, wait_for, wait_until_ready, Client, Options, Reply, Server};
use tempfile::TempDir;

/// A `redis-server` started from a config file (the first argument, as Redis
/// requires), listening on a unix socket only; shut down on drop.
struct FileServer {
    child: Option<Child>,
    socket: PathBuf,
}

impl FileServer {
    /// Writes `conf` in `dir`: the server's own lines, `loadmodule`, then `extra`.
    fn write_config(dir: &Path, extra: &str) -> PathBuf {
        let path = dir.join("redis.conf");
        let text = format!(
            "port 0\nunixsocket {sock}\nunixsocketperm 700\ndir {dir}\nlogfile {log}\nsave \"\"\n\
             daemonize no\nloglevel notice\nloadmodule {module}\n{extra}\n",
            sock = dir.join("redis.sock").display(),
            dir = dir.display(),
            log = dir.join("redis.log").display(),
            module = module_path().display(),
        );
        std::fs::write(&path, text).expect("the config file is written");
        path
    }

    /// Starts `redis-server <config>`; `Err` holds the log if it exits.
    fn try_start(config: &Path) -> Result<FileServer, String> {
        let dir = config.parent().expect("the config file's directory");
        let log = dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let child = Command::new(common::server_binary())
            .arg(config)
            .args(common::extra_server_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let mut child = Some(child);
        wait_until_ready(&mut child, &dir.join("redis.sock"), &log)?;
        Ok(FileServer { child, socket: dir.join("redis.sock") })
    }

    fn start(config: &Path) -> FileServer {
        FileServer::try_start(config).unwrap_or_else(|log| panic!("redis-server did not start:\n{log}"))
    }

    fn admin(&self) -> Client {
        Client::unix(&self.socket).expect("the admin socket accepts connections")
    }

    fn stop(&mut self) {
        if self.child.is_some() {
            if let Ok(mut c) = Client::unix(&self.socket) {
                let _ = c.send(&[b"SHUTDOWN", b"NOSAVE"]);
            }
        }
        reap(&mut self.child);
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config_get(c: &mut Client, name: &str) -> Reply {
    c.call(&["CONFIG", "GET", name])
}

fn pair(name: &str, value: &str) -> Reply {
    Reply::strings(&[name, value])
}

const DEFAULTS: [(&str, &str); 7] = [
    ("whitelist.mode", "enforce"),
    ("whitelist.allow-loopback", "yes"),
    ("whitelist.allow-unixsocket", "yes"),
    ("whitelist.max-groups", "100"),
    ("whitelist.max-entries-per-group", "1000"),
    ("whitelist.when-empty", "allow"),
    ("whitelist.denied-sources", "128"),
];

/// Every `whitelist.*` config as (name, value), sorted by name.
fn all_configs(c: &mut Client) -> Vec<(String, String)> {
    let Reply::Array(items) = c.call(&["CONFIG", "GET", "whitelist.*"]) else { panic!("CONFIG GET is not an array") };
    let mut pairs: Vec<(String, String)> = items.chunks(2).map(|p| (p[0].text(), p[1].text())).collect();
    pairs.sort();
    pairs
}

#[test]
fn config_get_shows_the_defaults() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    for (name, value) in DEFAULTS {
        assert_eq!(config_get(&mut a, name), pair(name, value));
    }
    let mut expected: Vec<(String, String)> = DEFAULTS.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    expected.sort();
    assert_eq!(all_configs(&mut a), expected);
    assert_eq!(s.info_field("whitelist_mode"), "enforce");
}

#[test]
fn config_set_accepts_valid_values() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    let cases = [
        ("whitelist.mode", "monitor", "monitor"),
        ("whitelist.mode", "OFF", "off"),
        ("whitelist.mode", "enforce", "enforce"),
        ("whitelist.mode", "Monitor", "monitor"),
        ("whitelist.mode", "ENFORCE", "enforce"),
        ("whitelist.allow-loopback", "no", "no"),
        ("whitelist.allow-loopback", "yes", "yes"),
        ("whitelist.allow-loopback", "NO", "no"),
        ("whitelist.allow-loopback", "Yes", "yes"),
        ("whitelist.allow-unixsocket", "no", "no"),
        ("whitelist.allow-unixsocket", "yes", "yes"),
        ("whitelist.allow-unixsocket", "nO", "no"),
        ("whitelist.allow-unixsocket", "YES", "yes"),
        ("whitelist.max-groups", "1", "1"),
        ("whitelist.max-groups", "10000", "10000"),
        ("whitelist.max-entries-per-group", "1", "1"),
        ("whitelist.max-entries-per-group", "1000000", "1000000"),
    ];
    for (name, value, shown) in cases {
        assert_eq!(a.call(&["CONFIG", "SET", name, value]), Reply::ok(), "{name} {value}");
        assert_eq!(config_get(&mut a, name), pair(name, shown));
    }
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.mode", "monitor"]), Reply::ok());
    assert_eq!(s.info_field("whitelist_mode"), "monitor");
    // Several at once.
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.max-groups", "2", "whitelist.max-entries-per-group", "3"]),
        Reply::ok()
    );
    assert_eq!(config_get(&mut a, "whitelist.max-groups"), pair("whitelist.max-groups", "2"));
    assert_eq!(config_get(&mut a, "whitelist.max-entries-per-group"), pair("whitelist.max-entries-per-group", "3"));
    // The new limits apply at once.
    assert_eq!(a.call(&["WHITELIST.SET", "aa", "10.0.0.1,10.0.0.2,10.0.0.3"]), Reply::Int(3));
    assert_eq!(a.call(&["WHITELIST.SET", "bb", "10.0.0.1"]), Reply::Int(1));
    assert_eq!(
        a.call(&["WHITELIST.SET", "cc", "10.0.0.1"]),
        Reply::err("ERR the whitelist would hold 3 groups, the limit is 2 (whitelist.max-groups)")
    );
}

/// Invalid values and the module's text for each: the parameter, the value
/// given and what is accepted.
const INVALID: [(&str, &str, &str); 14] = [
    ("whitelist.mode", "banana", "invalid whitelist.mode 'banana': expected enforce, monitor or off"),
    ("whitelist.mode", "", "invalid whitelist.mode '': expected enforce, monitor or off"),
    ("whitelist.mode", "enforce ", "invalid whitelist.mode 'enforce ': expected enforce, monitor or off"),
    ("whitelist.allow-loopback", "maybe", "invalid whitelist.allow-loopback 'maybe': expected yes or no"),
    ("whitelist.allow-unixsocket", "1", "invalid whitelist.allow-unixsocket '1': expected yes or no"),
    ("whitelist.max-groups", "0", "invalid whitelist.max-groups '0': expected an integer from 1 to 10000"),
    ("whitelist.max-groups", "10001", "invalid whitelist.max-groups '10001': expected an integer from 1 to 10000"),
    ("whitelist.max-groups", "-1", "invalid whitelist.max-groups '-1': expected an integer from 1 to 10000"),
    ("whitelist.max-groups", "abc", "invalid whitelist.max-groups 'abc': expected an integer from 1 to 10000"),
    // Plain decimal only, as Redis reads its own numeric configs.
    ("whitelist.max-groups", "+5", "invalid whitelist.max-groups '+5': expected an integer from 1 to 10000"),
    ("whitelist.max-groups", "05", "invalid whitelist.max-groups '05': expected an integer from 1 to 10000"),
    (
        "whitelist.max-entries-per-group",
        "0",
        "invalid whitelist.max-entries-per-group '0': expected an integer from 1 to 1000000",
    ),
    (
        "whitelist.max-entries-per-group",
        "1000001",
        "invalid whitelist.max-entries-per-group '1000001': expected an integer from 1 to 1000000",
    ),
    (
        "whitelist.max-entries-per-group",
        "1.5",
        "invalid whitelist.max-entries-per-group '1.5': expected an integer from 1 to 1000000",
    ),
];

/// Redis's reply to a `CONFIG SET` whose setter refused the value (the same
/// wrapping on 7.0.15, 8.2.3 and Valkey 8.1.8).
fn config_set_failed(name: &str, why: &str) -> Reply {
    Reply::Error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
}

fn sorted_defaults() -> Vec<(String, String)> {
    let mut expected: Vec<(String, String)> = DEFAULTS.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    expected.sort();
    expected
}

#[test]
fn config_set_refuses_invalid_values_naming_them() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    for (name, value, why) in INVALID {
        assert_eq!(a.call(&["CONFIG", "SET", name, value]), config_set_failed(name, why), "{name} {value:?}");
    }
    // Bytes that are not printable are shown escaped, and a long value cut.
    let long = "1".repeat(100_000);
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.max-groups", &long]),
        config_set_failed(
            "whitelist.max-groups",
            &format!("invalid whitelist.max-groups '{}...': expected an integer from 1 to 10000", "1".repeat(32))
        )
    );
    assert_eq!(
        a.call_bytes(&[b"CONFIG", b"SET", b"whitelist.mode", b"it's\\\r\n\xff"]),
        config_set_failed(
            "whitelist.mode",
            r"invalid whitelist.mode 'it\'s\\\x0d\x0a\xff': expected enforce, monitor or off"
        )
    );
    // A multi-parameter CONFIG SET with one bad value changes nothing.
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.mode", "monitor", "whitelist.max-groups", "0"]),
        config_set_failed(
            "whitelist.max-groups",
            "invalid whitelist.max-groups '0': expected an integer from 1 to 10000"
        )
    );
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.nosuch", "1"]),
        Reply::err("ERR Unknown option or number of arguments for CONFIG SET - 'whitelist.nosuch'")
    );
    assert_eq!(all_configs(&mut a), sorted_defaults());
    assert_eq!(s.info_field("whitelist_mode"), "enforce");
}

#[test]
fn values_on_the_command_line_apply() {
    let s = Server::start(&[
        "--whitelist.mode",
        "MONITOR",
        "--whitelist.max-groups",
        "7",
        "--whitelist.allow-loopback",
        "No",
    ]);
    let mut a = s.admin();
    assert_eq!(config_get(&mut a, "whitelist.mode"), pair("whitelist.mode", "monitor"));
    assert_eq!(config_get(&mut a, "whitelist.max-groups"), pair("whitelist.max-groups", "7"));
    assert_eq!(config_get(&mut a, "whitelist.allow-loopback"), pair("whitelist.allow-loopback", "no"));
    assert_eq!(config_get(&mut a, "whitelist.allow-unixsocket"), pair("whitelist.allow-unixsocket", "yes"));
    assert_eq!(s.info_field("whitelist_mode"), "monitor");
    // Monitor mode really is in force: a non-whitelisted client is served.
    a.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    assert!(s.connect_from("127.0.0.3").is_served());
    assert_eq!(s.info_field("whitelist_connections_would_deny"), "1");
}

#[test]
fn a_config_file_sets_max_groups() {
    let dir = TempDir::new().expect("a temp dir");
    let path = FileServer::write_config(dir.path(), "whitelist.max-groups 5");
    let s = FileServer::start(&path);
    let mut a = s.admin();
    assert_eq!(config_get(&mut a, "whitelist.max-groups"), pair("whitelist.max-groups", "5"));
    assert_eq!(config_get(&mut a, "whitelist.mode"), pair("whitelist.mode", "enforce"));
    for g in ["g1", "g2", "g3", "g4", "g5"] {
        assert_eq!(a.call(&["WHITELIST.SET", g, "10.0.0.1"]), Reply::Int(1));
    }
    assert_eq!(
        a.call(&["WHITELIST.SET", "g6", "10.0.0.1"]),
        Reply::err("ERR the whitelist would hold 6 groups, the limit is 5 (whitelist.max-groups)")
    );
}

#[test]
fn config_rewrite_persists_whitelist_settings() {
    let dir = TempDir::new().expect("a temp dir");
    let path = FileServer::write_config(dir.path(), "whitelist.max-groups 5");
    let mut s = FileServer::start(&path);
    let mut a = s.admin();
    for (name, value) in
        [("whitelist.mode", "Monitor"), ("whitelist.allow-loopback", "NO"), ("whitelist.max-entries-per-group", "50")]
    {
        assert_eq!(a.call(&["CONFIG", "SET", name, value]), Reply::ok());
    }
    assert_eq!(a.call(&["CONFIG", "REWRITE"]), Reply::ok());
    let text = std::fs::read_to_string(&path).expect("the rewritten file");
    let lines: Vec<&str> = text.lines().collect();
    // String configs are written quoted, in the canonical spelling.
    for line in [
        "whitelist.max-groups \"5\"",
        "whitelist.mode \"monitor\"",
        "whitelist.allow-loopback \"no\"",
        "whitelist.max-entries-per-group \"50\"",
    ] {
        assert_eq!(lines.iter().filter(|l| **l == line).count(), 1, "{line:?} in\n{text}");
    }
    // Defaults are not written.
    assert!(!text.contains("whitelist.allow-unixsocket"), "{text}");
    s.stop();
    let s = FileServer::start(&path);
    let mut a = s.admin();
    assert_eq!(config_get(&mut a, "whitelist.mode"), pair("whitelist.mode", "monitor"));
    assert_eq!(config_get(&mut a, "whitelist.allow-loopback"), pair("whitelist.allow-loopback", "no"));
    assert_eq!(config_get(&mut a, "whitelist.max-groups"), pair("whitelist.max-groups", "5"));
    assert_eq!(config_get(&mut a, "whitelist.max-entries-per-group"), pair("whitelist.max-entries-per-group", "50"));
    assert_eq!(config_get(&mut a, "whitelist.allow-unixsocket"), pair("whitelist.allow-unixsocket", "yes"));
}

/// What a server that refused an invalid start-up value logged: Redis's
/// line naming the parameter with the module's text, the module's own line,
/// and the exit with status 1.
fn assert_refused_at_start_up(log: &str, name: &str, why: &str) {
    assert!(log.starts_with("exited with exit status: 1\n"), "{log}");
    let line = format!("Issue during loading of configuration {name} : {why}\n");
    assert!(log.contains(&line), "{line:?} missing from\n{log}");
    let module_line = "<whitelist> a whitelist.* value given at start-up is invalid (see the line above)\n";
    assert!(log.find(&line) < log.find(module_line), "{log}");
    assert!(log.contains("Can't load module from"), "{log}");
}

#[test]
fn an_invalid_value_in_the_config_file_stops_the_server_and_is_named() {
    for (name, value, why) in INVALID {
        let dir = TempDir::new().expect("a temp dir");
        let path = FileServer::write_config(dir.path(), &format!("{name} \"{value}\""));
        let log = match FileServer::try_start(&path) {
            Ok(_) => panic!("the server started with {name} {value:?}"),
            Err(log) => log,
        };
        assert_refused_at_start_up(&log, name, why);
    }
}

#[test]
fn an_invalid_value_on_the_command_line_stops_the_server_and_is_named() {
    for (name, value, why) in INVALID {
        let log = match Server::try_start(Options::args(&[&format!("--{name}"), value])) {
            Ok(_) => panic!("the server started with --{name} {value:?}"),
            Err(log) => log,
        };
        assert_refused_at_start_up(&log, name, why);
    }
}

#[test]
fn a_config_file_takes_values_in_any_case() {
    let dir = TempDir::new().expect("a temp dir");
    let path = FileServer::write_config(
        dir.path(),
        "whitelist.mode Monitor\nwhitelist.allow-unixsocket YES\nwhitelist.allow-loopback nO",
    );
    let s = FileServer::start(&path);
    let mut a = s.admin();
    assert_eq!(config_get(&mut a, "whitelist.mode"), pair("whitelist.mode", "monitor"));
    assert_eq!(config_get(&mut a, "whitelist.allow-unixsocket"), pair("whitelist.allow-unixsocket", "yes"));
    assert_eq!(config_get(&mut a, "whitelist.allow-loopback"), pair("whitelist.allow-loopback", "no"));
}

#[test]
fn a_change_of_allow_loopback_closes_an_open_loopback_client() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    let mut listed = s.connect_from("127.0.0.2");
    let mut loopback = s.connect_from("127.0.0.3");
    assert!(listed.is_served() && loopback.is_served());
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.allow-loopback", "No"]), Reply::ok());
    assert!(loopback.closed_within(Duration::from_secs(5)));
    assert!(listed.is_served());
    assert_eq!(s.info_field("whitelist_clients_closed_on_change"), "1");
    s.wait_log("closed connection after a whitelist change from 127.0.0.3:");
}

/// A `CONFIG SET` of several parameters runs the module's setter, then rolls
/// it back when a later parameter is refused: the re-check after the command
/// sees the final values, so nothing is closed and nothing opened.
#[test]
fn a_failed_multi_parameter_config_set_changes_nothing_and_closes_nothing() {
    let s = Server::start(&["--whitelist.allow-loopback", "no"]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    let mut listed = s.connect_from("127.0.0.2");
    assert!(listed.is_served());
    let policy_refused = Reply::err(
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the \
         following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, \
         allkeys-random, noeviction",
    );
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.mode", "off", "maxmemory-policy", "banana"]), policy_refused);
    assert_eq!(config_get(&mut a, "whitelist.mode"), pair("whitelist.mode", "enforce"));
    // Had the setter's value been checked, this unix-socket connection would
    // be closed by the one-shot that runs right after the command.
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "no", "maxmemory-policy", "banana"]),
        policy_refused
    );
    assert_eq!(config_get(&mut a, "whitelist.allow-unixsocket"), pair("whitelist.allow-unixsocket", "yes"));
    sleep(Duration::from_millis(300));
    assert!(a.is_served());
    assert!(listed.is_served());
    assert_eq!(s.info_field("whitelist_clients_closed_on_change"), "0");
    // Mode is still enforce: an address that is not listed is refused.
    assert!(s.connect_from("127.0.0.3").closed_within(Duration::from_secs(5)));
    assert_eq!(s.info_field("whitelist_connections_denied"), "1");
    assert_eq!(all_configs(&mut a), {
        let mut expected = sorted_defaults();
        for (name, value) in expected.iter_mut() {
            if name == "whitelist.allow-loopback" {
                *value = String::from("no");
            }
        }
        expected
    });
}

#[test]
fn module_arguments_are_refused() {
    let module = module_path();
    let module = module.to_str().expect("a UTF-8 module path");
    let options = Options {
        args: vec!["--loadmodule".into(), module.into(), "mode".into(), "monitor".into()],
        without_module: true,
        ..Options::default()
    };
    let log = match Server::try_start(options) {
        Ok(_) => panic!("the server started with module arguments"),
        Err(log) => log,
    };
    assert!(
        log.contains(
            "<whitelist> the module takes no arguments: set whitelist.* configs in redis.conf or with --whitelist.<name> <value>"
        ),
        "{log}"
    );
    // MODULE LOAD at run time: refused with arguments, loaded without.
    let s = Server::start_with(Options {
        args: vec!["--enable-module-command".into(), "local".into()],
        without_module: true,
        ..Options::default()
    });
    let mut a = s.admin();
    assert_eq!(
        a.call(&["MODULE", "LOAD", module, "x"]),
        Reply::err("ERR Error loading the extension. Please check the server logs.")
    );
    s.wait_log("<whitelist> the module takes no arguments");
    assert_eq!(a.call(&["MODULE", "LOAD", module]), Reply::ok());
    assert_eq!(config_get(&mut a, "whitelist.mode"), pair("whitelist.mode", "enforce"));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::Array(vec![]));
}

/// The re-check after a config change runs from a one-shot file event, so it
/// also runs while Redis loads data (timers do not): a loopback client is
/// closed as soon as `allow-loopback` goes to `no`, before the load ends.
#[test]
fn a_config_change_during_a_load_closes_at_once() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    // An empty whitelist admits everyone: list someone else.
    assert_eq!(a.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(a.call(&["DEBUG", "POPULATE", "20000"]), Reply::ok());
    for (name, value) in [("key-load-delay", "100"), ("loading-process-events-interval-bytes", "1024")] {
        assert_eq!(a.call(&["CONFIG", "SET", name, value]), Reply::ok(), "{name}");
    }
    let loading = |c: &mut Client| c.call(&["INFO", "persistence"]).text().contains("loading:1\r\n");
    let mut reloader = s.admin();
    reloader.send(&[b"DEBUG", b"RELOAD"]).expect("DEBUG RELOAD is sent");
    wait_for("the load to start", || loading(&mut a).then_some(()));
    let mut loopback = s.connect_from("127.0.0.3");
    let server_name = if common::flavor().valkey { "Valkey" } else { "Redis" };
    assert_eq!(
        loopback.call(&["PING"]),
        Reply::err(&format!("LOADING {server_name} is loading the dataset in memory"))
    );
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.allow-loopback", "no"]), Reply::ok());
    assert!(loopback.closed_within(Duration::from_secs(5)));
    assert!(loading(&mut a), "the load ended before the client was closed");
    // About 2 s of loading on an idle machine; a busy one may take longer.
    let reply = reloader.read_reply_within(Duration::from_secs(60));
    assert_eq!(reply.expect("the reply to DEBUG RELOAD"), Reply::ok());
    assert_eq!(s.info_field("whitelist_clients_closed_on_change"), "1");
}

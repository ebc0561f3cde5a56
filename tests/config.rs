//! The `whitelist.*` configs against a real server: defaults, `CONFIG SET`,
//! the command line, a config file, `CONFIG REWRITE`, and invalid values at
//! start-up.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{module_path, reap, wait_until_ready, Client, Options, Reply, Server};
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

const DEFAULTS: [(&str, &str); 5] = [
    ("whitelist.mode", "enforce"),
    ("whitelist.allow-loopback", "yes"),
    ("whitelist.allow-unixsocket", "yes"),
    ("whitelist.max-groups", "100"),
    ("whitelist.max-entries-per-group", "1000"),
];

/// Every `whitelist.*` config as (name, value), sorted by name.
fn all_configs(c: &mut Client) -> Vec<(String, String)> {
    let Reply::Array(items) = c.call(&["CONFIG", "GET", "whitelist.*"]) else { panic!("CONFIG GET is not an array") };
    let mut pairs: Vec<(String, String)> = items.chunks(2).map(|p| (p[0].text(), p[1].text())).collect();
    pairs.sort();
    pairs
}

#[test]
fn config_get_shows_the_five_defaults() {
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
        ("whitelist.allow-loopback", "no", "no"),
        ("whitelist.allow-loopback", "yes", "yes"),
        ("whitelist.allow-unixsocket", "no", "no"),
        ("whitelist.allow-unixsocket", "yes", "yes"),
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

#[test]
fn config_set_refuses_invalid_values_with_redis_texts() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    let failed = |name: &str, why: &str| {
        Reply::Error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
    };
    let enum_why = "argument(s) must be one of the following: enforce, monitor, off";
    let cases = [
        ("whitelist.mode", "banana", enum_why),
        ("whitelist.mode", "", enum_why),
        ("whitelist.allow-loopback", "maybe", "argument must be 'yes' or 'no'"),
        ("whitelist.allow-unixsocket", "1", "argument must be 'yes' or 'no'"),
        ("whitelist.max-groups", "0", "argument must be between 1 and 10000 inclusive"),
        ("whitelist.max-groups", "10001", "argument must be between 1 and 10000 inclusive"),
        ("whitelist.max-groups", "-1", "argument must be between 1 and 10000 inclusive"),
        ("whitelist.max-groups", "abc", "argument couldn't be parsed into an integer"),
        ("whitelist.max-entries-per-group", "0", "argument must be between 1 and 1000000 inclusive"),
        ("whitelist.max-entries-per-group", "1000001", "argument must be between 1 and 1000000 inclusive"),
        ("whitelist.max-entries-per-group", "1.5", "argument couldn't be parsed into an integer"),
    ];
    for (name, value, why) in cases {
        assert_eq!(a.call(&["CONFIG", "SET", name, value]), failed(name, why), "{name} {value:?}");
    }
    // A multi-parameter CONFIG SET with one bad value changes nothing.
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.mode", "monitor", "whitelist.max-groups", "0"]),
        failed("whitelist.max-groups", "argument must be between 1 and 10000 inclusive")
    );
    assert_eq!(
        a.call(&["CONFIG", "SET", "whitelist.nosuch", "1"]),
        Reply::err("ERR Unknown option or number of arguments for CONFIG SET - 'whitelist.nosuch'")
    );
    let mut expected: Vec<(String, String)> = DEFAULTS.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    expected.sort();
    assert_eq!(all_configs(&mut a), expected);
    assert_eq!(s.info_field("whitelist_mode"), "enforce");
}

#[test]
fn values_on_the_command_line_apply() {
    let s = Server::start(&[
        "--whitelist.mode",
        "monitor",
        "--whitelist.max-groups",
        "7",
        "--whitelist.allow-loopback",
        "no",
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
        [("whitelist.mode", "monitor"), ("whitelist.allow-loopback", "no"), ("whitelist.max-entries-per-group", "50")]
    {
        assert_eq!(a.call(&["CONFIG", "SET", name, value]), Reply::ok());
    }
    assert_eq!(a.call(&["CONFIG", "REWRITE"]), Reply::ok());
    let text = std::fs::read_to_string(&path).expect("the rewritten file");
    let lines: Vec<&str> = text.lines().collect();
    for line in [
        "whitelist.max-groups 5",
        "whitelist.mode monitor",
        "whitelist.allow-loopback no",
        "whitelist.max-entries-per-group 50",
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

#[test]
fn an_invalid_value_in_the_config_file_stops_the_server_and_is_named() {
    let cases = [
        (
            "whitelist.mode banana",
            "invalid whitelist.mode 'banana': expected enforce, monitor or off",
            "Issue during loading of configuration whitelist.mode : argument(s) must be one of the following: enforce, monitor, off",
        ),
        (
            "whitelist.allow-loopback maybe",
            "invalid whitelist.allow-loopback 'maybe': expected yes or no",
            "Issue during loading of configuration whitelist.allow-loopback : argument must be 'yes' or 'no'",
        ),
        (
            "whitelist.max-groups 0",
            "invalid whitelist.max-groups '0': expected a whole number from 1 to 10000",
            "Issue during loading of configuration whitelist.max-groups : argument must be between 1 and 10000 inclusive",
        ),
        (
            "whitelist.max-entries-per-group lots",
            "invalid whitelist.max-entries-per-group 'lots': expected a whole number from 1 to 1000000",
            "Issue during loading of configuration whitelist.max-entries-per-group : argument couldn't be parsed into an integer",
        ),
    ];
    for (line, module_line, redis_line) in cases {
        let dir = TempDir::new().expect("a temp dir");
        let path = FileServer::write_config(dir.path(), line);
        let log = match FileServer::try_start(&path) {
            Ok(_) => panic!("the server started with {line:?}"),
            Err(log) => log,
        };
        let named = format!("<whitelist> {module_line} (in {})", path.display());
        assert!(log.contains(&named), "{named:?} missing from\n{log}");
        assert!(log.contains(redis_line), "{redis_line:?} missing from\n{log}");
        // The module's line comes first.
        assert!(log.find(&named) < log.find(redis_line), "{log}");
        assert!(log.contains("Can't load module from"), "{log}");
    }
}

#[test]
fn an_invalid_value_on_the_command_line_stops_the_server() {
    let log = match Server::try_start(Options::args(&["--whitelist.mode", "banana"])) {
        Ok(_) => panic!("the server started with whitelist.mode banana"),
        Err(log) => log,
    };
    assert!(
        log.contains(
            "Issue during loading of configuration whitelist.mode : argument(s) must be one of the following: enforce, monitor, off"
        ),
        "{log}"
    );
    assert!(log.contains("Can't load module from"), "{log}");
    // With the process title left alone the module can read the command line
    // and names the value too.
    let log = match Server::try_start(Options::args(&["--set-proc-title", "no", "--whitelist.max-groups", "0"])) {
        Ok(_) => panic!("the server started with whitelist.max-groups 0"),
        Err(log) => log,
    };
    assert!(
        log.contains("<whitelist> invalid whitelist.max-groups '0': expected a whole number from 1 to 10000 (on the command line)"),
        "{log}"
    );
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

//! `contrib/prometheus/whitelist.lua` under the real `prometheus-redis-exporter`
//! (Debian's 1.45): the exporter scrapes a server with the module and the
//! values of `INFO whitelist` are read back from its `/metrics` page.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{info_of, set, Options, Reply, Server, DEADLINE};

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus/whitelist.lua")
}

/// `$PROMETHEUS_REDIS_EXPORTER`, or Debian's binary: from the PATH, else
/// where its package puts it (scripts/deps.sh accepts either).
fn exporter_binary() -> PathBuf {
    const NAME: &str = "prometheus-redis-exporter";
    if let Some(path) = std::env::var_os("PROMETHEUS_REDIS_EXPORTER") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(NAME).is_file()));
    if on_path {
        PathBuf::from(NAME)
    } else {
        Path::new("/usr/bin").join(NAME)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A plain HTTP/1.0 GET on 127.0.0.1: the status and the body.
fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), DEADLINE)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    // HTTP/1.0 without keep-alive: the server closes after the body.
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP response: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(bad)?;
    Ok((status, body.to_string()))
}

/// A running exporter that scrapes one server with the script; killed on drop.
struct Exporter {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Exporter {
    fn start(server: &Server) -> Exporter {
        for attempt in 0..5 {
            let port = free_port();
            let log = server.dir.path().join(format!("exporter-{attempt}.log"));
            let out = std::fs::File::create(&log).expect("the exporter's log file");
            let err = out.try_clone().expect("the exporter's log file");
            let child = Command::new(exporter_binary())
                .arg("--redis.addr")
                .arg(format!("redis://127.0.0.1:{}", server.port))
                .arg("--script")
                .arg(script_path())
                .arg("--web.listen-address")
                .arg(format!("127.0.0.1:{port}"))
                // Go's own metrics are of no interest here; a stuck scrape
                // fails within the test's deadline.
                .args(["--redis-only-metrics", "--connection-timeout", "5s"])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{}: {e} (scripts/deps.sh installs prometheus-redis-exporter)", exporter_binary().display())
                });
            let mut exporter = Exporter { child: Some(child), port, log };
            let start = Instant::now();
            loop {
                if let Some(status) = exporter.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    exporter.child = None;
                    let text = exporter.log_text();
                    if text.contains("address already in use") {
                        break;
                    }
                    panic!("the exporter exited with {status}:\n{text}");
                }
                if matches!(http_get(port, "/health"), Ok((200, body)) if body == "ok") {
                    return exporter;
                }
                assert!(
                    start.elapsed() < DEADLINE,
                    "the exporter is not up after {DEADLINE:?}:\n{}",
                    exporter.log_text()
                );
                sleep(Duration::from_millis(20));
            }
        }
        panic!("the exporter found no free port in 5 tries");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One scrape of `/metrics` (one connection of the exporter to the server).
    fn scrape(&self) -> Metrics {
        let (status, body) =
            http_get(self.port, "/metrics").unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", self.log_text()));
        assert_eq!(status, 200, "GET /metrics:\n{body}");
        Metrics::parse(body)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The samples of one `/metrics` page: `name{labels}` → value.
struct Metrics {
    samples: BTreeMap<String, f64>,
    body: String,
}

impl Metrics {
    fn parse(body: String) -> Metrics {
        let samples = body
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {l:?}"));
                (name.to_string(), value.parse().unwrap_or_else(|e| panic!("{l:?}: {e}")))
            })
            .collect();
        Metrics { samples, body }
    }

    fn sample(&self, name: &str) -> f64 {
        *self.samples.get(name).unwrap_or_else(|| panic!("no {name} in\n{}", self.body))
    }

    /// The script's series: `redis_script_values{key="K"}` as K → value.
    fn script(&self) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter_map(|(name, v)| {
                let key = name.strip_prefix("redis_script_values{key=\"")?.strip_suffix("\"}")?;
                Some((key.to_string(), *v))
            })
            .collect()
    }

    /// The scrape worked: the server answered, the script's result parsed.
    fn assert_scraped(&self) {
        assert_eq!(self.sample("redis_up"), 1.0, "{}", self.body);
        assert_eq!(self.sample("redis_exporter_last_scrape_error{err=\"\"}"), 0.0, "{}", self.body);
    }
}

/// A value the script exports as a number: what INFO prints as one.
fn number(v: &str) -> Option<f64> {
    let plain = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b"-.eE+".contains(&b));
    plain.then(|| v.parse().ok()).flatten()
}

fn field(info: &HashMap<String, String>, name: &str) -> f64 {
    info.get(name).and_then(|v| number(v)).unwrap_or_else(|| panic!("INFO whitelist has no number {name}: {info:?}"))
}

/// The series README.md promises for an `INFO whitelist`: every numeric
/// field under its own name, each numeric key of a group line as
/// `whitelist_group_<key>:<group>`, the two settings as 1/0 per value, and
/// no other text field.
fn documented_series(info: &HashMap<String, String>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, value) in info {
        if let Some(group) = name.strip_prefix("whitelist_group_").filter(|_| value.contains('=')) {
            for (k, v) in value.split(',').filter_map(|kv| kv.split_once('=')) {
                if let Some(n) = number(v) {
                    out.insert(format!("whitelist_group_{k}:{group}"), n);
                }
            }
        } else if let Some(n) = number(value) {
            out.insert(name.clone(), n);
        } else {
            let states: &[&str] = match name.as_str() {
                "whitelist_mode" => &["enforce", "monitor", "off"],
                "whitelist_when_empty" => &["allow", "deny"],
                _ => &[],
            };
            for s in states {
                out.insert(format!("{name}:{s}"), if s == value { 1.0 } else { 0.0 });
            }
        }
    }
    out
}

/// What a scrape shows, given INFO just before it: the exporter's own
/// connection is one more checked, allowed and a hit of the group `admitting` it.
fn after_one_scrape(info: &HashMap<String, String>, admitting: &str) -> BTreeMap<String, f64> {
    let mut out = documented_series(info);
    for key in
        ["whitelist_connections_checked", "whitelist_connections_allowed", &format!("whitelist_group_hits:{admitting}")]
    {
        *out.get_mut(key).unwrap_or_else(|| panic!("INFO whitelist gives no {key}: {info:?}")) += 1.0;
    }
    out
}

fn assert_series(got: &BTreeMap<String, f64>, expected: &[(&str, f64)], body: &str) {
    for (key, value) in expected {
        assert_eq!(got.get(*key), Some(value), "{key} in\n{body}");
    }
}

#[test]
fn the_exporter_publishes_every_field_of_info_whitelist() {
    let s = Server::start(&["--whitelist.allow-loopback", "no"]);
    // The exporter connects from 127.0.0.1 like any client: as on a real
    // host, its address sits in a group of its own.
    set(&s, "monitoring", "127.0.0.1");
    set(&s, "app", "127.0.0.2,10.0.0.0/8");
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "secret", "192.0.2.0/24", "ATTRIBUTE", "hidden"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.ADD", "empty", "198.51.100.7"]), Reply::Int(1));
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "empty", "198.51.100.7"]), Reply::Int(1));
    let mut apps = [s.connect_from("127.0.0.2"), s.connect_from("127.0.0.2")];
    for app in &mut apps {
        assert!(app.is_served());
    }
    for source in ["127.0.0.3", "127.0.0.4"] {
        assert!(s.connect_from(source).closed_within(DEADLINE), "{source} was not denied");
    }

    let before = info_of(&mut admin);
    let exporter = Exporter::start(&s);
    let m = exporter.scrape();
    m.assert_scraped();
    let got = m.script();
    assert_series(
        &got,
        &[
            ("whitelist_version", 5.0),
            ("whitelist_enabled", 1.0),
            ("whitelist_groups", 4.0),
            ("whitelist_entries", 4.0),
            ("whitelist_connections_denied", 2.0),
            ("whitelist_connections_would_deny", 0.0),
            ("whitelist_clients_closed_on_change", 0.0),
            ("whitelist_group_entries:app", 2.0),
            ("whitelist_group_hits:app", 2.0),
            ("whitelist_group_entries:monitoring", 1.0),
            ("whitelist_group_hits:monitoring", 1.0),
            ("whitelist_group_entries:secret", 1.0),
            ("whitelist_group_hits:secret", 0.0),
            ("whitelist_group_entries:empty", 0.0),
            ("whitelist_group_hits:empty", 0.0),
            ("whitelist_mode:enforce", 1.0),
            ("whitelist_mode:monitor", 0.0),
            ("whitelist_mode:off", 0.0),
        ],
        &m.body,
    );
    let checked = field(&before, "whitelist_connections_checked") + 1.0;
    assert_eq!(got.get("whitelist_connections_checked"), Some(&checked), "{}", m.body);
    assert_eq!(got.get("whitelist_connections_allowed"), Some(&(checked - 2.0)), "{}", m.body);
    assert_eq!(got.get("whitelist_last_denied_time"), Some(&field(&before, "whitelist_last_denied_time")));
    assert!(got["whitelist_last_denied_time"] > 1.7e9, "{}", m.body);
    assert!(!got.keys().any(|k| k.starts_with("whitelist_last_denied_addr")), "{}", m.body);
    assert_eq!(got, after_one_scrape(&before, "monitoring"), "INFO before the scrape: {before:?}");

    // A would-be denial in monitor mode; the exporter's second connection is
    // its group's second hit.
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.mode", "monitor"]), Reply::ok());
    let mut watched = s.connect_from("127.0.0.5");
    assert!(watched.is_served());
    let before = info_of(&mut admin);
    let m = exporter.scrape();
    m.assert_scraped();
    let got = m.script();
    assert_series(
        &got,
        &[
            ("whitelist_version", 5.0),
            ("whitelist_connections_denied", 2.0),
            ("whitelist_connections_would_deny", 1.0),
            ("whitelist_group_hits:app", 2.0),
            ("whitelist_group_hits:monitoring", 2.0),
            ("whitelist_mode:enforce", 0.0),
            ("whitelist_mode:monitor", 1.0),
            ("whitelist_mode:off", 0.0),
        ],
        &m.body,
    );
    assert_eq!(got, after_one_scrape(&before, "monitoring"), "INFO before the scrape: {before:?}");
}

#[test]
fn an_exporter_the_whitelist_does_not_admit_scrapes_nothing() {
    let s = Server::start(&["--whitelist.allow-loopback", "no"]);
    set(&s, "app", "127.0.0.2");
    let exporter = Exporter::start(&s);
    let m = exporter.scrape();
    assert_eq!(m.sample("redis_up"), 0.0, "{}", m.body);
    let errors: Vec<_> = m.samples.iter().filter(|(k, _)| k.starts_with("redis_exporter_last_scrape_error{")).collect();
    assert!(
        matches!(errors[..], [(label, 1.0)] if label != "redis_exporter_last_scrape_error{err=\"\"}"),
        "{}",
        m.body
    );
    assert_eq!(m.script(), BTreeMap::new(), "{}", m.body);
    let info = s.info();
    assert_eq!(info["whitelist_connections_denied"], "1");
    assert_eq!(info["whitelist_last_denied_addr"], "127.0.0.1");

    assert_eq!(s.admin().call(&["WHITELIST.ADD", "monitoring", "127.0.0.1"]), Reply::Int(1));
    let m = exporter.scrape();
    m.assert_scraped();
    let got = m.script();
    assert_series(
        &got,
        &[("whitelist_connections_denied", 1.0), ("whitelist_group_hits:monitoring", 1.0), ("whitelist_groups", 2.0)],
        &m.body,
    );
}

#[test]
fn without_the_module_the_script_gives_no_series() {
    let s = Server::start_with(Options { without_module: true, ..Options::default() });
    let exporter = Exporter::start(&s);
    let m = exporter.scrape();
    m.assert_scraped();
    assert!(!m.body.contains("redis_script_values"), "{}", m.body);
}

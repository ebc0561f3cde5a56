//! Test support: real `redis-server` processes with the module loaded, and a
//! small RESP2/RESP3 client that can connect from any loopback address.
//!
//! Every server gets a free port, its own temporary directory, a unix socket
//! for the admin connection, and is shut down when its guard drops. Every wait
//! has a deadline.

#![allow(dead_code)]

pub mod cluster;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use tempfile::TempDir;

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The module build under test: `$WHITELIST_MODULE`, or the release build
/// that users run.
pub fn module_path() -> PathBuf {
    let path = std::env::var_os("WHITELIST_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/libredis_whitelist.so"));
    assert!(
        path.exists(),
        "{} is missing: run `make test`, or `cargo build --release` before `cargo test`",
        path.display()
    );
    path
}

/// The test-only build with `WHITELIST.DEBUG-PANIC` (and other fault
/// switches): `$WHITELIST_TEST_MODULE`, or where `make test` builds it.
pub fn test_module_path() -> PathBuf {
    let path = std::env::var_os("WHITELIST_TEST_MODULE").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-module/debug/libredis_whitelist.so")
    });
    assert!(
        path.exists(),
        "{} is missing: run `make test`, or `cargo build --features debug-panic --target-dir target/test-module`",
        path.display()
    );
    path
}

/// The server binary under test: `$WHITELIST_SERVER`, or `redis-server` from
/// the PATH (Debian's 7.0.15).
pub fn server_binary() -> PathBuf {
    std::env::var_os("WHITELIST_SERVER").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// Extra arguments given to every server the tests start
/// (`$WHITELIST_SERVER_ARGS`, split on spaces), e.g. `--io-threads 4`.
pub fn extra_server_args() -> Vec<String> {
    std::env::var("WHITELIST_SERVER_ARGS").map(|a| a.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

/// Which server the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flavor {
    /// `true` for Valkey, `false` for Redis.
    pub valkey: bool,
    /// The server's own version (Valkey's, not the Redis version it reports).
    pub version: (u32, u32, u32),
}

impl Flavor {
    /// Whether the server has the module API of Redis 7.2 (ACL categories,
    /// auth callbacks, `aux_save2`): Redis 7.2+ and every Valkey.
    pub fn has_72_api(&self) -> bool {
        self.valkey || self.version >= (7, 2, 0)
    }

    /// Redis's `NOPERM` reply for `user` running `command`, in this server's words.
    pub fn noperm(&self, user: &str, command: &str) -> Reply {
        if self.has_72_api() {
            Reply::err(&format!("NOPERM User {user} has no permissions to run the '{command}' command"))
        } else {
            Reply::err(&format!("NOPERM this user has no permissions to run the '{command}' command"))
        }
    }

    /// Whether refused clients are held for closing (and may get one
    /// `-NOPERM` reply first, §5): Redis 8 run with more than one I/O thread
    /// by `$WHITELIST_SERVER_ARGS`.
    pub fn holds_refused_clients(&self) -> bool {
        let args = extra_server_args();
        let threads = args.iter().position(|a| a == "--io-threads").and_then(|i| args.get(i + 1));
        !self.valkey && self.version >= (8, 0, 0) && threads.and_then(|t| t.parse::<u32>().ok()).is_some_and(|t| t > 1)
    }

    /// `redis 7.0.15`, `valkey 8.1.8`.
    pub fn describe(&self) -> String {
        let (a, b, c) = self.version;
        format!("{} {a}.{b}.{c}", if self.valkey { "valkey" } else { "redis" })
    }
}

/// The server under test, from its `--version` line (read once).
pub fn flavor() -> Flavor {
    static FLAVOR: std::sync::OnceLock<Flavor> = std::sync::OnceLock::new();
    *FLAVOR.get_or_init(|| {
        let out = Command::new(server_binary()).arg("--version").output().expect("the server binary runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let valkey = text.starts_with("Valkey");
        let version = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .and_then(|v| {
                let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
                Some((parts.next()??, parts.next()??, parts.next()??))
            })
            .unwrap_or_else(|| panic!("cannot read the server version from {text:?}"));
        Flavor { valkey, version }
    })
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out after {DEADLINE:?} waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on now (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// How to start a server.
#[derive(Clone, Default)]
pub struct Options {
    /// Extra `--name value` arguments.
    pub args: Vec<String>,
    /// Start without the module.
    pub without_module: bool,
    /// Reuse this directory (a restart).
    pub dir: Option<Arc<TempDir>>,
    /// Keep this port (a restart).
    pub port: Option<u16>,
    /// Load this build instead of [`module_path`].
    pub module: Option<PathBuf>,
}

impl Options {
    pub fn args(args: &[&str]) -> Options {
        Options { args: args.iter().map(|s| s.to_string()).collect(), ..Options::default() }
    }
}

/// A running `redis-server`, shut down on drop.
pub struct Server {
    pub port: u16,
    pub dir: Arc<TempDir>,
    child: Option<Child>,
    options: Options,
}

impl Server {
    /// A server with the module and `args` (e.g. `["--whitelist.allow-loopback", "no"]`).
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(Options::args(args))
    }

    pub fn start_with(options: Options) -> Server {
        let mut last = String::new();
        for _ in 0..5 {
            match Server::try_start(options.clone()) {
                Ok(s) => return s,
                Err(log) if log.contains("Address already in use") && options.port.is_none() => last = log,
                Err(log) => panic!("redis-server did not start:\n{log}"),
            }
        }
        panic!("redis-server did not start:\n{last}");
    }

    /// Starts a server; `Err` holds its log if it exits instead.
    pub fn try_start(options: Options) -> Result<Server, String> {
        let dir = options.dir.clone().unwrap_or_else(|| Arc::new(TempDir::new().expect("a temp dir")));
        let port = options.port.unwrap_or_else(free_port);
        let log = dir.path().join("redis.log");
        let socket = dir.path().join("redis.sock");
        let mut cmd = Command::new(server_binary());
        cmd.arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1 -::1", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", "", "--daemonize", "no"])
            .args(["--enable-debug-command", "local", "--loglevel", "notice"]);
        if !options.without_module {
            cmd.arg("--loadmodule").arg(options.module.clone().unwrap_or_else(module_path));
        }
        cmd.args(extra_server_args());
        cmd.args(&options.args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = Some(cmd.spawn().expect("redis-server is installed (make deps)"));
        let ready = wait_until_ready(&mut child, &dir.path().join("redis.sock"), &log);
        let server = Server { port, dir, child, options };
        ready.map(|()| server)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// A unix-socket connection (exempt while whitelist.allow-unixsocket is yes).
    pub fn admin(&self) -> Client {
        Client::unix(&self.socket()).expect("the admin socket accepts connections")
    }

    /// A TCP connection from `source` (127.0.0.x or ::1).
    pub fn connect_from(&self, source: &str) -> Client {
        self.try_connect_from(source).unwrap_or_else(|e| panic!("connect from {source}: {e}"))
    }

    pub fn try_connect_from(&self, source: &str) -> io::Result<Client> {
        let source: IpAddr = source.parse().expect("a source address");
        let target = match source {
            IpAddr::V4(_) => SocketAddr::new("127.0.0.1".parse().expect("ip"), self.port),
            IpAddr::V6(_) => SocketAddr::new("::1".parse().expect("ip"), self.port),
        };
        Client::tcp_from(source, target)
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("redis.log"))
    }

    /// Waits until the log holds `needle`.
    pub fn wait_log(&self, needle: &str) {
        wait_for(&format!("log line {needle:?}"), || self.log().contains(needle).then_some(()));
    }

    /// `INFO whitelist` as a map (from a new admin connection, which the
    /// connection counters count).
    pub fn info(&self) -> HashMap<String, String> {
        info_of(&mut self.admin())
    }

    /// One `INFO whitelist` field.
    pub fn info_field(&self, name: &str) -> String {
        self.info().remove(name).unwrap_or_else(|| panic!("INFO whitelist has no {name}"))
    }

    /// Stops the server: `SHUTDOWN SAVE` or `SHUTDOWN NOSAVE`, then waits.
    pub fn stop(&mut self, save: bool) {
        if let Ok(mut c) = Client::unix(&self.socket()) {
            let _ = c.send(&[b"SHUTDOWN".as_slice(), if save { b"SAVE" } else { b"NOSAVE" }]);
        }
        self.reap();
    }

    /// Kills the server with SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
        }
        self.reap();
    }

    fn reap(&mut self) {
        reap(&mut self.child);
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Restarts on the same directory and port with `args` (the original
    /// arguments are dropped).
    pub fn restart(mut self, args: &[&str]) -> Server {
        self.stop(true);
        self.start_again(args)
    }

    /// Starts a new server on this one's (stopped) directory and port.
    pub fn start_again(&mut self, args: &[&str]) -> Server {
        self.try_start_again(args).unwrap_or_else(|log| panic!("restart failed:\n{log}"))
    }

    pub fn try_start_again(&mut self, args: &[&str]) -> Result<Server, String> {
        let mut options = Options::args(args);
        options.dir = Some(Arc::clone(&self.dir));
        options.port = Some(self.port);
        let before = self.log().len();
        match Server::try_start(options.clone()) {
            // Another test's server took the port while this one was down
            // (seen once in a full gate run): what a restart keeps is the
            // data, so it starts on a fresh port.
            Err(_) if self.log().get(before..).is_some_and(|new| new.contains("Address already in use")) => {
                options.port = None;
                Server::try_start(options)
            }
            result => result,
        }
    }
}

/// A server's log file as text ("" while it does not exist). Lossy: a server
/// may log bytes that are not UTF-8 (Valkey 8.1.8 can print a bus link's
/// unset node name), and they must not hide the rest of the log.
pub fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Waits until a just-started server answers PING on `socket`; `Err` holds
/// its log if it exits or the deadline passes first.
pub fn wait_until_ready(child: &mut Option<Child>, socket: &Path, log: &Path) -> Result<(), String> {
    let read_log = || read_log(log);
    let start = Instant::now();
    loop {
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            *child = None;
            return Err(format!("exited with {status}\n{}", read_log()));
        }
        if let Ok(mut c) = Client::unix(socket) {
            if matches!(c.try_call(&["PING"]), Ok(Reply::Status(s)) if s == "PONG") {
                return Ok(());
            }
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("not ready after {DEADLINE:?}\n{}", read_log()));
        }
        sleep(Duration::from_millis(20));
    }
}

/// Waits (with the deadline) for a stopping server to exit, killing it if it
/// does not.
pub fn reap(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop(false);
        }
    }
}

/// A RESP reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Other(String),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }

    pub fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    pub fn err(s: &str) -> Reply {
        Reply::Error(s.into())
    }

    /// An array of bulk strings.
    pub fn strings(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| Reply::bulk(s)).collect())
    }

    /// The text of a status, error or bulk reply.
    pub fn text(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) | Reply::Other(s) => s.clone(),
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("not a text reply: {other:?}"),
        }
    }

    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("not an integer reply: {other:?}"),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A blocking RESP client with deadlines on every read and write.
pub struct Client {
    reader: BufReader<Stream>,
    writer: Stream,
}

impl Client {
    fn new(stream: Stream) -> io::Result<Client> {
        stream.set_read_timeout(DEADLINE)?;
        match &stream {
            Stream::Tcp(s) => s.set_write_timeout(Some(DEADLINE))?,
            Stream::Unix(s) => s.set_write_timeout(Some(DEADLINE))?,
        }
        let writer = stream.try_clone()?;
        Ok(Client { reader: BufReader::new(stream), writer })
    }

    pub fn unix(path: &Path) -> io::Result<Client> {
        Client::new(Stream::Unix(UnixStream::connect(path)?))
    }

    /// Connects to `target` from the local address `source`.
    pub fn tcp_from(source: IpAddr, target: SocketAddr) -> io::Result<Client> {
        let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
        socket.connect_timeout(&target.into(), DEADLINE)?;
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true)?;
        Client::new(Stream::Tcp(stream))
    }

    /// The local (source) port of a TCP connection.
    pub fn local_port(&self) -> u16 {
        match &self.writer {
            Stream::Tcp(s) => s.local_addr().map(|a| a.port()).unwrap_or(0),
            Stream::Unix(_) => 0,
        }
    }

    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out)
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    pub fn try_call_bytes(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send(args)?;
        self.read_reply()
    }

    pub fn try_call(&mut self, args: &[&str]) -> io::Result<Reply> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.try_call_bytes(&raw)
    }

    /// Runs a command whose reply may take up to `within` (a load, say);
    /// panics if the connection fails.
    pub fn call_within(&mut self, args: &[&str], within: Duration) -> Reply {
        self.send(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        self.read_reply_within(within).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Reads one reply, waiting up to `within` for it.
    pub fn read_reply_within(&mut self, within: Duration) -> io::Result<Reply> {
        let _ = self.reader.get_ref().set_read_timeout(within);
        let reply = self.read_reply();
        let _ = self.reader.get_ref().set_read_timeout(DEADLINE);
        reply
    }

    /// Runs a command; panics if the connection fails.
    pub fn call(&mut self, args: &[&str]) -> Reply {
        self.try_call(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    pub fn call_bytes(&mut self, args: &[&[u8]]) -> Reply {
        self.try_call_bytes(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether the server closes this connection within `within` (EOF or
    /// reset) without having sent anything.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let _ = self.reader.get_ref().set_read_timeout(within);
        let mut byte = [0u8; 1];
        let closed = match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => panic!("the server sent data instead of closing: {:?}", byte[0] as char),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            Err(_) => false,
        };
        let _ = self.reader.get_ref().set_read_timeout(DEADLINE);
        closed
    }

    /// Closed before any reply, or, where refused clients are held for
    /// closing ([`Flavor::holds_refused_clients`]), at most `-NOPERM` errors
    /// and then closed; `false` if still open after `within`.
    pub fn closed_or_noperm_within(&mut self, within: Duration) -> bool {
        if !flavor().holds_refused_clients() {
            return self.closed_within(within);
        }
        let mut buf = [0u8; 512];
        let mut got = Vec::new();
        let start = std::time::Instant::now();
        let _ = self.reader.get_ref().set_read_timeout(within);
        let closed = loop {
            let n = self.read_raw(&mut buf);
            if n == 0 {
                break start.elapsed() < within;
            }
            got.extend_from_slice(&buf[..n]);
            if start.elapsed() > within {
                break false;
            }
        };
        let _ = self.reader.get_ref().set_read_timeout(DEADLINE);
        let text = String::from_utf8_lossy(&got).to_string();
        assert!(text.split("\r\n").all(|l| l.is_empty() || l.starts_with("-NOPERM")), "a refused client got {text:?}");
        closed
    }

    /// Reads whatever bytes arrive (0 at EOF or on an error).
    pub fn read_raw(&mut self, buf: &mut [u8]) -> usize {
        self.reader.read(buf).unwrap_or(0)
    }

    /// Whether the connection is open and served: PING answers PONG.
    pub fn is_served(&mut self) -> bool {
        matches!(self.try_call(&["PING"]), Ok(Reply::Status(s)) if s == "PONG")
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    if line.ends_with(b"\r\n") {
        line.truncate(line.len() - 2);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(1);
    let number = || rest.parse::<i64>().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{line}: {e}")));
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" | "!" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(number()?),
        "_" => Reply::Nil,
        "$" | "=" => {
            let n = number()?;
            if n < 0 {
                Reply::Nil
            } else {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Reply::Bulk(buf)
            }
        }
        "*" | "~" | ">" => {
            let n = number()?;
            if n < 0 {
                Reply::Nil
            } else {
                Reply::Array((0..n).map(|_| read_reply(r)).collect::<io::Result<_>>()?)
            }
        }
        "%" => {
            let n = number()?;
            Reply::Map((0..n).map(|_| Ok((read_reply(r)?, read_reply(r)?))).collect::<io::Result<_>>()?)
        }
        _ => Reply::Other(line.clone()),
    })
}

/// `INFO whitelist` as a map, through `client`.
pub fn info_of(client: &mut Client) -> HashMap<String, String> {
    let text = client.call(&["INFO", "whitelist"]).text();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim_end().to_string())).collect()
}

/// A numeric `INFO whitelist` field, through `client`.
pub fn counter(client: &mut Client, field: &str) -> u64 {
    info_of(client).get(field).unwrap_or_else(|| panic!("INFO whitelist has no {field}")).parse().expect("a number")
}

/// `WHITELIST.SET` and friends from an admin connection, asserting success.
pub fn set(server: &Server, group: &str, entries: &str) -> i64 {
    let reply = server.admin().call(&["WHITELIST.SET", group, entries, "FORCE"]);
    reply.int()
}

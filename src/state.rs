//! The one place for global state: the whitelist in force, the one being
//! loaded, the configuration, the counters, and the table of open connections.
//!
//! Redis calls the module from its main thread only, so the lock is never
//! contended; it is there to make reentrancy an error instead of undefined
//! behaviour. A poisoned lock (a caught panic) is taken over as it is: every
//! change is committed by swapping in a complete new whitelist, so no panic
//! can leave a half-applied one behind.

use std::sync::{LazyLock, Mutex, TryLockError};

use rustc_hash::FxHashMap;
use whitelist_core::{Limits, Peer, Policy, Verdict, Whitelist};

use crate::rewrite::Carry;

/// `whitelist.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Denied clients are closed.
    Enforce,
    /// Denials are counted and logged, nobody is closed.
    Monitor,
    /// No checks at all.
    Off,
}

impl Mode {
    /// The config enum values, in the order of their integer codes.
    pub const NAMES: [&'static str; 3] = ["enforce", "monitor", "off"];

    /// The mode for a config integer code.
    pub fn from_code(code: i32) -> Option<Mode> {
        match code {
            0 => Some(Mode::Enforce),
            1 => Some(Mode::Monitor),
            2 => Some(Mode::Off),
            _ => None,
        }
    }

    /// The config integer code.
    pub fn code(self) -> i32 {
        match self {
            Mode::Enforce => 0,
            Mode::Monitor => 1,
            Mode::Off => 2,
        }
    }

    /// The name `CONFIG GET` and INFO show.
    pub fn name(self) -> &'static str {
        Mode::NAMES[self.code() as usize % Mode::NAMES.len()]
    }
}

/// The `whitelist.*` configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub mode: Mode,
    pub allow_loopback: bool,
    pub allow_unixsocket: bool,
    pub max_groups: i64,
    pub max_entries_per_group: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Enforce,
            allow_loopback: true,
            allow_unixsocket: true,
            max_groups: 100,
            max_entries_per_group: 1000,
        }
    }
}

impl Config {
    pub fn policy(&self) -> Policy {
        Policy { allow_loopback: self.allow_loopback, allow_unixsocket: self.allow_unixsocket }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_groups: usize::try_from(self.max_groups).unwrap_or(usize::MAX),
            max_entries_per_group: usize::try_from(self.max_entries_per_group).unwrap_or(usize::MAX),
        }
    }
}

/// Connection counters (INFO).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub checked: u64,
    pub allowed: u64,
    pub denied: u64,
    pub would_deny: u64,
    pub closed_on_change: u64,
    /// The last denied (or, in monitor mode, would-be denied) client and when.
    pub last_denied: Option<(Peer, i64)>,
}

/// One open connection the module knows of: what a re-check and a log line
/// need, and no more (the table holds one per client).
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub peer: Peer,
    pub port: u16,
}

impl Conn {
    /// `address:port`, or `unix socket`.
    pub fn describe(&self) -> String {
        match self.peer {
            Peer::Ip(a) => format!("{a}:{}", self.port),
            Peer::Unix => String::from("unix socket"),
            Peer::Unknown => format!("an unreadable address, port {}", self.port),
        }
    }
}

/// How INFO shows a peer's address.
pub fn peer_text(peer: &Peer) -> String {
    match peer {
        Peer::Ip(a) => a.to_string(),
        Peer::Unix => String::from("/unixsocket"),
        Peer::Unknown => String::from("?"),
    }
}

/// At most one denial line per second; the rest are counted and reported by
/// a timer at the end of the second.
#[derive(Debug, Default)]
pub struct LogLimiter {
    window_start_ms: i64,
    pub suppressed: u64,
    pub timer_armed: bool,
}

/// What the limiter says about one line.
pub enum LogSlot {
    /// Log it.
    Log,
    /// Count it; arm the flush timer for this many milliseconds.
    SuppressAndArm(i64),
    /// Count it; the timer is already armed.
    Suppress,
}

impl LogLimiter {
    pub fn admit(&mut self, now_ms: i64) -> LogSlot {
        if now_ms - self.window_start_ms >= 1000 || now_ms < self.window_start_ms {
            self.window_start_ms = now_ms;
            return LogSlot::Log;
        }
        self.suppressed += 1;
        if self.timer_armed {
            LogSlot::Suppress
        } else {
            self.timer_armed = true;
            LogSlot::SuppressAndArm((self.window_start_ms + 1000 - now_ms).max(1))
        }
    }
}

pub struct State {
    /// The whitelist in force.
    pub whitelist: Whitelist,
    /// The whitelist being loaded (RDB, AOF, full sync); replaces the one in
    /// force when loading ends.
    pub loading: Option<Whitelist>,
    pub config: Config,
    pub stats: Stats,
    /// Open TCP and unix-socket connections by client id.
    pub conns: FxHashMap<u64, Conn>,
    pub denial_log: LogLimiter,
    /// A re-check of the open connections is due at the end of this
    /// event-loop turn (a config change).
    pub recheck_due: bool,
    /// The whitelist's carry into a rewritten AOF (rewrite.rs).
    pub carry: Carry,
}

/// What the connection hook does with a new client.
pub enum Admission {
    Admit,
    Close,
    WouldDeny,
}

/// A connection a rule change leaves without a matching entry.
pub struct Cut {
    pub id: u64,
    pub conn: Conn,
}

impl State {
    /// Decides on a new connection, counts it and remembers it unless it is
    /// closed.
    #[inline]
    pub fn admit(&mut self, id: u64, conn: Conn) -> Admission {
        let admission = match self.config.mode {
            Mode::Off => Admission::Admit,
            mode => {
                self.stats.checked += 1;
                let Verdict { allowed, group, .. } = self.whitelist.verdict(conn.peer, self.config.policy());
                if allowed {
                    self.stats.allowed += 1;
                    if let Some(g) = group {
                        self.whitelist.record_hit(g);
                    }
                    Admission::Admit
                } else if mode == Mode::Enforce {
                    self.stats.denied += 1;
                    Admission::Close
                } else {
                    self.stats.would_deny += 1;
                    Admission::WouldDeny
                }
            }
        };
        if !matches!(admission, Admission::Close) {
            self.conns.insert(id, conn);
        }
        admission
    }

    /// Every open connection the whitelist in force no longer admits (judged
    /// as in enforce mode). In enforce mode they are forgotten here and must
    /// be closed by the caller.
    pub fn cut_connections(&mut self) -> Vec<Cut> {
        if self.config.mode == Mode::Off {
            return Vec::new();
        }
        let policy = self.config.policy();
        let whitelist = &self.whitelist;
        let cut: Vec<Cut> = self
            .conns
            .iter()
            .filter(|(_, c)| !whitelist.verdict(c.peer, policy).allowed)
            .map(|(&id, &conn)| Cut { id, conn })
            .collect();
        if self.config.mode == Mode::Enforce {
            for c in &cut {
                self.conns.remove(&c.id);
            }
            self.stats.closed_on_change += cut.len() as u64;
        }
        cut
    }
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| {
    Mutex::new(State {
        whitelist: Whitelist::default(),
        loading: None,
        config: Config::default(),
        stats: Stats::default(),
        conns: FxHashMap::default(),
        denial_log: LogLimiter::default(),
        recheck_due: false,
        carry: Carry::Idle,
    })
});

/// Runs `f` on the state; `None` if the state is already borrowed further up
/// the stack (a reentrant call, which the module never makes).
#[inline]
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    match STATE.try_lock() {
        Ok(mut guard) => Some(f(&mut guard)),
        Err(TryLockError::Poisoned(poisoned)) => {
            let mut guard = poisoned.into_inner();
            STATE.clear_poison();
            Some(f(&mut guard))
        }
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Like [`with`], for callers that cannot report failure: waits out nothing,
/// takes a poisoned lock over.
pub fn with_or<R>(fallback: R, f: impl FnOnce(&mut State) -> R) -> R {
    with(f).unwrap_or(fallback)
}

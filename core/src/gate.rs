//! The gate: every decision about who may stay connected.
//!
//! It holds the whitelist in force, the settings, the counters, the log
//! limiter, the open connections and the state of a load, and it decides:
//! who is admitted at connect, who is cut after a change, which rules are in
//! force while data loads, what a load that carries no whitelist leaves
//! behind, and which changes the lock-out guard refuses. It knows nothing of
//! Redis: what it needs done to clients and the log it asks of an
//! [`Effects`] implementation, so a test can drive any sequence of events.

use std::fmt;

use crate::clients::IdMap;
use crate::denied::{DeniedReason, DeniedSources};
use crate::matcher::Hit;
use crate::store::{Limits, Peer, Policy, Prepared, Reason, Swept, Whitelist};

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
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
            Mode::Off => "off",
        }
    }
}

/// `whitelist.when-empty`: what a whitelist without any entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenEmpty {
    /// It admits every client (the whitelist is off).
    Allow,
    /// It admits only exempt clients.
    Deny,
}

impl WhenEmpty {
    /// The name `CONFIG GET` and INFO show.
    pub fn name(self) -> &'static str {
        match self {
            WhenEmpty::Allow => "allow",
            WhenEmpty::Deny => "deny",
        }
    }
}

/// The `whitelist.*` settings. Changing one is only storing it: the caller
/// re-checks the open connections once the change is final
/// ([`Gate::recheck`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `whitelist.mode`.
    pub mode: Mode,
    /// `whitelist.allow-loopback`.
    pub allow_loopback: bool,
    /// `whitelist.allow-unixsocket`.
    pub allow_unixsocket: bool,
    /// `whitelist.max-groups`.
    pub max_groups: i64,
    /// `whitelist.max-entries-per-group`.
    pub max_entries_per_group: i64,
    /// `whitelist.when-empty`.
    pub when_empty: WhenEmpty,
    /// `whitelist.denied-sources`: the table takes this size at
    /// [`Gate::sync_denied`].
    pub denied_sources: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Enforce,
            allow_loopback: true,
            allow_unixsocket: true,
            max_groups: 100,
            max_entries_per_group: 1000,
            when_empty: WhenEmpty::Allow,
            denied_sources: DEFAULT_DENIED_SOURCES as i64,
        }
    }
}

impl Settings {
    /// The exemptions in force.
    pub fn policy(&self) -> Policy {
        Policy {
            allow_loopback: self.allow_loopback,
            allow_unixsocket: self.allow_unixsocket,
            deny_when_empty: self.when_empty == WhenEmpty::Deny,
        }
    }

    /// The limits an ordinary client's change must respect.
    pub fn limits(&self) -> Limits {
        Limits {
            max_groups: usize::try_from(self.max_groups).unwrap_or(usize::MAX),
            max_entries_per_group: usize::try_from(self.max_entries_per_group).unwrap_or(usize::MAX),
        }
    }
}

/// Connection counters (INFO).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections judged at connect (mode not `off`).
    pub checked: u64,
    /// Connections admitted at connect (exempt ones included).
    pub allowed: u64,
    /// Connections closed at connect.
    pub denied: u64,
    /// Would-be denials reported in `monitor` mode, each connection once
    /// until the rules admit it again.
    pub would_deny: u64,
    /// Open connections closed after a change (closes that succeeded).
    pub closed_on_change: u64,
    /// Connections denied because no whitelist had been read yet during the
    /// first load of the process.
    pub denied_while_loading: u64,
    /// Replicated changes that could not be applied.
    pub replication_errors: u64,
    /// The last denied (or would-be denied) client and when (unix seconds).
    pub last_denied: Option<(Peer, i64)>,
    /// Logins refused because the user is bound to groups that do not match
    /// the address (§11), `default` at connect included.
    pub auth_denied: u64,
    /// Such logins let through in `monitor` mode.
    pub auth_would_deny: u64,
}

/// One open connection: what a re-check and a log line need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    /// Who it is.
    pub peer: Peer,
    /// Its source port (0 for a unix socket).
    pub port: u16,
    /// Reported as would-be denied (`monitor`) and not admitted since.
    reported: bool,
}

impl Conn {
    /// A connection from `peer`, port `port`.
    #[inline(always)]
    pub fn new(peer: Peer, port: u16) -> Conn {
        Conn { peer, port, reported: false }
    }
}

/// The one way the module names a peer: `10.0.0.1:5000` (or `10.0.0.1`
/// without a port), `unix socket`, `an unreadable address`. INFO's field
/// form is [`Shown::address`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The peer.
    pub peer: Peer,
    /// Its port, when the text should carry it.
    pub port: Option<u16>,
}

impl Shown {
    /// A connection with its port.
    pub fn conn(conn: &Conn) -> Shown {
        Shown { peer: conn.peer, port: Some(conn.port) }
    }

    /// A peer without its port.
    pub fn peer(peer: Peer) -> Shown {
        Shown { peer, port: None }
    }

    /// The address as the server reports it (INFO): `10.0.0.1`,
    /// `/unixsocket`, or `?`.
    pub fn address(&self) -> String {
        match self.peer {
            Peer::Ip(a) => a.to_string(),
            Peer::Unix => String::from("/unixsocket"),
            Peer::Unknown => String::from("?"),
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.peer, self.port) {
            (Peer::Ip(a), Some(p)) => write!(f, "{a}:{p}"),
            (Peer::Ip(a), None) => write!(f, "{a}"),
            (Peer::Unix, _) => f.write_str("unix socket"),
            (Peer::Unknown, Some(p)) => write!(f, "an unreadable address, port {p}"),
            (Peer::Unknown, None) => f.write_str("an unreadable address"),
        }
    }
}

/// Why a client is not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No entry matches its address.
    NoMatch,
    /// A unix-socket client while `allow-unixsocket` is `no`.
    UnixSocket,
    /// Its address could not be read.
    Unreadable,
    /// The whitelist is empty and `whitelist.when-empty` is `deny`.
    WhitelistEmpty,
    /// The first load of the process has read no whitelist yet.
    Loading,
    /// This replica's whitelist differs from its primary's.
    Diverged,
    /// Its ACL user is bound to groups that do not match its address (§11).
    User,
}

impl Denial {
    /// The reason as a log line gives it.
    pub fn why(self) -> &'static str {
        match self {
            Denial::NoMatch => "no whitelist entry matches",
            Denial::UnixSocket => "whitelist.allow-unixsocket is no",
            Denial::Unreadable => "the address could not be read",
            Denial::WhitelistEmpty => "the whitelist is empty and whitelist.when-empty is deny",
            Denial::Loading => "no whitelist has been read yet (start-up loading)",
            Denial::Diverged => "this replica's whitelist differs from its primary's (whitelist_diverged:1)",
            Denial::User => "the user is bound to whitelist groups that do not match the address",
        }
    }

    /// The reason `WHITELIST.DENIED` gives. A diverged replica does not
    /// know the rules, as the start-up load before a whitelist is read: both
    /// are `loading`. An address that could not be read is a client that
    /// could not be judged: `error`.
    pub fn reason(self) -> DeniedReason {
        match self {
            Denial::NoMatch => DeniedReason::NoMatch,
            Denial::UnixSocket => DeniedReason::UnixSocket,
            Denial::Unreadable => DeniedReason::Error,
            Denial::WhitelistEmpty => DeniedReason::WhitelistEmpty,
            Denial::Loading | Denial::Diverged => DeniedReason::Loading,
            Denial::User => DeniedReason::User,
        }
    }
}

/// What the gate did with a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Admitted (or not checked: mode `off`).
    Admit,
    /// Refused: closed or held for closing ([`Effects::refuse`]).
    Refuse(Denial),
    /// Would be refused; left open (`monitor`).
    WouldRefuse(Denial),
}

/// A log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Normal but significant.
    Notice,
    /// Needs attention.
    Warning,
}

/// What the gate needs done outside itself.
pub trait Effects {
    /// Refuses a client that is connecting: closes it, or holds it for a
    /// close within one event-loop turn where closing now is unsafe.
    fn refuse(&mut self, id: u64);
    /// Closes an open client; `false` when it is already gone.
    fn close(&mut self, id: u64) -> bool;
    /// Writes one log line.
    fn log(&mut self, level: Level, line: &str);
    /// The clock, in milliseconds.
    fn now_ms(&mut self) -> i64;
    /// The unix second, as cheaply as the server can tell it (a hit
    /// stores it).
    fn now_s(&mut self) -> u64 {
        u64::try_from(self.now_ms().div_euclid(1000)).unwrap_or(0)
    }
    /// Arms the one-second flush of suppressed denial lines
    /// ([`Gate::flush_log`]) in `after_ms` milliseconds.
    fn arm_log_flush(&mut self, after_ms: i64);
    /// The ACL user client `id` is logged in as: `None` when unknown, and
    /// for `default` while it needs a password (a client that has not
    /// logged in is judged when it does). Asked only while some user is bound.
    fn login_of(&mut self, _id: u64) -> Option<String> {
        None
    }
    /// Whether a new client is logged in as `default` without `AUTH`
    /// (`default` is `nopass`). Asked only while `default` is bound.
    fn default_nopass(&mut self) -> bool {
        false
    }
}

/// What the gate says about a login (`AUTH`, `HELLO ... AUTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// Let the server check the password.
    Allow,
    /// Refuse it, whatever the password.
    Refuse,
}

/// At most one denial line per second; the rest are counted and reported by
/// [`Gate::flush_log`].
#[derive(Clone, Copy, Debug, Default)]
struct LogLimiter {
    /// When the current one-second window began (`None`: no line yet).
    window_start_ms: Option<i64>,
    suppressed: u64,
    flush_armed: bool,
}

/// Which kind of load began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadKind {
    /// An RDB file (start-up, `DEBUG RELOAD`).
    Rdb,
    /// An AOF (with or without its RDB preamble).
    Aof,
    /// A replica's full sync.
    Replication,
}

/// A load in progress.
#[derive(Clone, Debug)]
struct Load {
    /// The first load of the process, at start-up: the open window.
    first: bool,
    kind: LoadKind,
    /// The first load's rules: the last whitelist record read, if any.
    window: Option<Whitelist>,
    /// What the loaded data builds: a record, then replayed commands.
    staged: Whitelist,
    /// The data carried a whitelist (a record that is not the empty one at
    /// version 0, or a replayed command).
    carried: bool,
    /// The data's whitelist record was refused (corrupt, truncated, newer).
    /// Redis then checks the file and exits, and its check is a load of its
    /// own: one more start and a successful end, that never reads the
    /// record. Nothing of such a load is taken.
    refused: bool,
}

/// Holds the ids of clients refused where they could not be closed at once,
/// in room reserved in advance: nothing is allocated per refusal.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    ids: Vec<u64>,
}

impl Pending {
    /// Reserves room for `capacity` ids (the server's `maxclients`).
    pub fn reserve(&mut self, capacity: usize) {
        self.ids.reserve_exact(capacity.saturating_sub(self.ids.len()));
    }

    /// Adds `id`; `false` when the reserved room is full.
    pub fn push(&mut self, id: u64) -> bool {
        if self.ids.len() < self.ids.capacity() {
            self.ids.push(id);
            true
        } else {
            false
        }
    }

    /// Whether `id` waits to be closed.
    pub fn contains(&self, id: u64) -> bool {
        !self.ids.is_empty() && self.ids.contains(&id)
    }

    /// Takes `id` out; `true` if it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        match self.ids.iter().position(|&x| x == id) {
            Some(i) => {
                self.ids.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Takes one id out, if any.
    pub fn pop(&mut self) -> Option<u64> {
        self.ids.pop()
    }

    /// Ids waiting.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No id waits.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Everything the module decides with, behind one lock in the server.
#[derive(Debug)]
pub struct Gate {
    /// The settings; changing one is storing it, then [`Gate::recheck`].
    pub config: Settings,
    whitelist: Whitelist,
    stats: Stats,
    log: LogLimiter,
    conns: IdMap<Conn>,
    /// The process is starting: its first load is the window.
    startup: bool,
    load: Option<Load>,
    diverged: bool,
    /// Clients refused where closing at once was unsafe.
    pub pending: Pending,
    /// The recently denied sources (`whitelist.denied-sources` rows).
    denied: DeniedSources,
    /// The server has auth callbacks (7.2+): bindings are enforced. Without
    /// them they are kept but nothing of §11 applies.
    pub users_enforced: bool,
    /// The warning that bindings are not enforced here was logged.
    users_warned: bool,
}

/// `whitelist.denied-sources` until set.
pub const DEFAULT_DENIED_SOURCES: usize = 128;

impl Default for Gate {
    fn default() -> Self {
        Gate::new(false)
    }
}

/// An empty record at version 0 is what a server writes when it never had a
/// whitelist: it counts as none.
fn carries_whitelist(w: &Whitelist) -> bool {
    w.version() > 0 || !w.groups().is_empty()
}

/// The exemptions: loopback and unix-socket clients per `allow-*`.
fn exempt(peer: Peer, policy: Policy) -> bool {
    match peer {
        Peer::Unix => policy.allow_unixsocket,
        Peer::Ip(a) => policy.allow_loopback && a.is_loopback(),
        Peer::Unknown => false,
    }
}

/// The rules a client is judged by at this moment.
enum Rules<'a> {
    /// Only exempt clients: nothing that could admit anyone else is known.
    ExemptOnly(Denial),
    Whitelist(&'a Whitelist),
}

fn rules<'a>(load: &'a Option<Load>, diverged: bool, whitelist: &'a Whitelist) -> Rules<'a> {
    match load {
        Some(Load { first: true, window: None, .. }) => Rules::ExemptOnly(Denial::Loading),
        Some(Load { first: true, window: Some(w), .. }) => Rules::Whitelist(w),
        _ if diverged => Rules::ExemptOnly(Denial::Diverged),
        _ => Rules::Whitelist(whitelist),
    }
}

fn judge(rules: &Rules<'_>, peer: Peer, policy: Policy) -> Result<Option<Hit>, Denial> {
    match rules {
        Rules::ExemptOnly(denial) => {
            if exempt(peer, policy) {
                Ok(None)
            } else {
                Err(*denial)
            }
        }
        Rules::Whitelist(w) => judge_by(w, peer, policy),
    }
}

#[inline]
fn judge_by(w: &Whitelist, peer: Peer, policy: Policy) -> Result<Option<Hit>, Denial> {
    let v = w.verdict(peer, policy);
    if v.allowed {
        Ok(v.hit)
    } else {
        Err(match peer {
            Peer::Ip(_) if v.reason == Reason::WhitelistEmpty => Denial::WhitelistEmpty,
            Peer::Ip(_) => Denial::NoMatch,
            Peer::Unix => Denial::UnixSocket,
            Peer::Unknown => Denial::Unreadable,
        })
    }
}

/// What a lost change (one from the primary or the AOF that could not be
/// applied) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// During the start-up load of an AOF: the server must not start, as
    /// with damaged whitelist data.
    StopStartup,
    /// On a replica, or an AOF loaded later: the server diverges.
    Diverge,
}

impl Gate {
    /// A gate with nothing in force. `startup`: the server is starting, so
    /// its first load (if any) is the window of §4.
    pub fn new(startup: bool) -> Gate {
        Gate {
            config: Settings::default(),
            whitelist: Whitelist::default(),
            stats: Stats::default(),
            log: LogLimiter::default(),
            conns: IdMap::new(),
            startup,
            load: None,
            diverged: false,
            pending: Pending::default(),
            denied: DeniedSources::new(DEFAULT_DENIED_SOURCES),
            users_enforced: false,
            users_warned: false,
        }
    }

    /// The recently denied sources.
    pub fn denied(&self) -> &DeniedSources {
        &self.denied
    }

    /// `WHITELIST.DENIED RESET`.
    pub fn reset_denied(&mut self) {
        self.denied.reset();
    }

    /// Gives the table the size `whitelist.denied-sources` holds: its room
    /// is reserved now, never per denial, and the most recent rows that fit
    /// stay. Called once a change of the setting is final (a rolled-back
    /// `CONFIG SET` must not have cut rows).
    pub fn sync_denied(&mut self) {
        self.denied.resize(usize::try_from(self.config.denied_sources).unwrap_or(0));
    }

    /// Records a client refused because it could not be judged (the hook
    /// failed closed), when the state can still be used.
    pub fn record_unjudged(&mut self, peer: Peer, now_ms: i64) {
        self.denied.record(peer, DeniedReason::Error, now_ms.div_euclid(1000));
    }

    /// The whitelist in force (after loads commit; what commands read).
    pub fn whitelist(&self) -> &Whitelist {
        &self.whitelist
    }

    /// `whitelist_enabled`: some entry exists, or an empty whitelist denies.
    pub fn enabled(&self) -> bool {
        self.whitelist.is_enabled() || self.config.when_empty == WhenEmpty::Deny
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// What to do with a change from the primary or the AOF that could not
    /// be applied (a command this module cannot read or apply).
    pub fn change_lost(&self) -> Lost {
        match &self.load {
            Some(Load { first: true, .. }) => Lost::StopStartup,
            _ => Lost::Diverge,
        }
    }

    /// A change from the primary (or from an AOF loaded after start-up)
    /// could not be applied: it is counted, and this server differs from its
    /// source until a full sync with a whitelist record or a replicated
    /// `IMPORT` brings the primary's state ([`Gate::clear_divergence`]);
    /// meanwhile it admits only exempt clients. Nothing is ever admitted
    /// because a change was lost.
    pub fn diverge(&mut self, fx: &mut impl Effects) {
        self.stats.replication_errors += 1;
        if !self.diverged {
            self.diverged = true;
            fx.log(
                Level::Warning,
                "this server's whitelist now differs from its primary's (whitelist_diverged:1): it denies every \
                 client that is not exempt until a full sync with a whitelist or a replicated WHITELIST.IMPORT brings \
                 the primary's state (run WHITELIST.EXPORT on the primary and WHITELIST.IMPORT it there)",
            );
            self.recheck(fx);
        }
    }

    /// Whether this replica's whitelist differs from its primary's.
    pub fn diverged(&self) -> bool {
        self.diverged
    }

    /// Whether a load is in progress.
    pub fn is_loading(&self) -> bool {
        self.load.is_some()
    }

    /// The open connections the gate knows of.
    pub fn conns(&self) -> impl Iterator<Item = (u64, &Conn)> + '_ {
        self.conns.iter()
    }

    /// Remembers a connection that never passed [`Gate::admit`] (open before
    /// the module loaded); the next re-check judges it.
    pub fn track(&mut self, id: u64, conn: Conn) {
        self.conns.insert(id, conn);
    }

    /// A client is gone.
    #[inline]
    pub fn forget(&mut self, id: u64) {
        self.conns.remove(id);
        if !self.pending.is_empty() {
            self.pending.remove(id);
        }
    }

    /// The server is starting: its first load, if any, is the window.
    pub fn expect_startup_load(&mut self) {
        if self.load.is_none() {
            self.startup = true;
        }
    }

    /// The start-up is over without a load (the event loop runs): no later
    /// load is the window.
    pub fn startup_over(&mut self) {
        self.startup = false;
    }

    /// Decides on a new connection, counts it, remembers it unless refused,
    /// and refuses it through `fx`.
    #[inline]
    pub fn admit(&mut self, id: u64, conn: Conn, fx: &mut impl Effects) -> Admission {
        let mode = self.config.mode;
        if mode == Mode::Off {
            self.conns.insert(id, conn);
            return Admission::Admit;
        }
        self.stats.checked += 1;
        let policy = self.config.policy();
        // Every connection passes here: with no load and no divergence the
        // rules in force decide, without the general case's indirection.
        let settled = self.load.is_none() && !self.diverged;
        let judged = if settled {
            judge_by(&self.whitelist, conn.peer, policy)
        } else {
            judge(&rules(&self.load, self.diverged, &self.whitelist), conn.peer, policy)
        };
        let judged = match judged {
            Ok(_) if self.default_refused(conn.peer, policy, fx) => {
                self.stats.auth_denied += u64::from(mode == Mode::Enforce);
                self.stats.auth_would_deny += u64::from(mode == Mode::Monitor);
                Err(Denial::User)
            }
            other => other,
        };
        match judged {
            Ok(group) => {
                self.stats.allowed += 1;
                if let Some(hit) = group {
                    let now = fx.now_s();
                    if settled {
                        self.whitelist.record_hit(hit, now);
                    } else {
                        self.rules_mut().record_hit(hit, now);
                    }
                }
                self.conns.insert(id, conn);
                Admission::Admit
            }
            Err(denial) if mode == Mode::Enforce => {
                self.stats.denied += 1;
                if denial == Denial::Loading {
                    self.stats.denied_while_loading += 1;
                }
                fx.refuse(id);
                self.report(id, &conn, denial, "denied connection from", fx);
                Admission::Refuse(denial)
            }
            Err(denial) => {
                self.stats.would_deny += 1;
                self.conns.insert(id, Conn { reported: true, ..conn });
                self.report(id, &conn, denial, "would deny connection (whitelist.mode monitor) from", fx);
                Admission::WouldRefuse(denial)
            }
        }
    }

    /// The bindings that apply now: `None` when nothing of §11 is enforced
    /// (no auth callbacks, mode `off`) or the rules in force admit only
    /// exempt clients anyway.
    fn binding_rules(&self) -> Option<&Whitelist> {
        if !self.users_enforced || self.config.mode == Mode::Off {
            return None;
        }
        match rules(&self.load, self.diverged, &self.whitelist) {
            Rules::Whitelist(w) if w.has_bindings() => Some(w),
            _ => None,
        }
    }

    /// A client connecting as a `nopass` `default` user that is bound to
    /// groups that do not match its address: it never sends `AUTH`, so it
    /// is judged now. The ACL lookup happens only while `default` is bound.
    fn default_refused(&self, peer: Peer, policy: Policy, fx: &mut impl Effects) -> bool {
        match self.binding_rules() {
            Some(w) if w.default_bound() => !w.user_may_login("default", peer, policy) && fx.default_nopass(),
            _ => false,
        }
    }

    /// Judges a login as `user` by client `id` (from `conn`) before the
    /// server checks its password: a user bound to groups that do not match
    /// the address is refused (`enforce`) or reported (`monitor`), counted,
    /// recorded in the denied sources with reason `user` and logged.
    pub fn login(&mut self, id: u64, conn: Conn, user: &str, fx: &mut impl Effects) -> Login {
        let policy = self.config.policy();
        let allowed = match self.binding_rules() {
            Some(w) => w.user_may_login(user, conn.peer, policy),
            None => true,
        };
        if allowed {
            return Login::Allow;
        }
        let shown = crate::shown::Shown::new(user.as_bytes());
        if self.config.mode == Mode::Enforce {
            self.stats.auth_denied += 1;
            self.report(id, &conn, Denial::User, &format!("refused login as user '{shown}' from"), fx);
            Login::Refuse
        } else {
            self.stats.auth_would_deny += 1;
            self.report(
                id,
                &conn,
                Denial::User,
                &format!("would refuse login as user '{shown}' (whitelist.mode monitor) from"),
                fx,
            );
            Login::Allow
        }
    }

    /// The connection client `id` was admitted as, if the gate knows it.
    pub fn conn(&self, id: u64) -> Option<Conn> {
        self.conns.get(id).copied()
    }

    /// Logs once that bindings are kept but not enforced on this server.
    fn warn_unenforced(&mut self, fx: &mut impl Effects) {
        if !self.users_enforced && !self.users_warned && self.whitelist.has_bindings() {
            self.users_warned = true;
            fx.log(
                Level::Warning,
                "the whitelist binds users to groups, but this server has no auth callbacks (Redis 7.2 or newer): \
                 the bindings are kept and propagated but not enforced (whitelist_users_enforced:0)",
            );
        }
    }

    /// Moves the clock of the whitelist in force to unix second `now`:
    /// entries expired by then admit nobody, and when any did, every open
    /// connection is judged again. `true` when something expired.
    pub fn advance_clock(&mut self, now: u64, fx: &mut impl Effects) -> bool {
        self.advance_clock_prepared(now, None, fx)
    }

    /// [`Gate::advance_clock`] with the matcher computed ahead of it (see
    /// [`Whitelist::advance_prepared`], which sets it aside unless it fits).
    pub fn advance_clock_prepared(&mut self, now: u64, prepared: Option<Prepared>, fx: &mut impl Effects) -> bool {
        let moved = self.whitelist.advance_prepared(now, prepared);
        if moved {
            self.recheck(fx);
        }
        moved
    }

    /// The whitelist whose hits a judged connection counts.
    fn rules_mut(&mut self) -> &mut Whitelist {
        match &mut self.load {
            Some(Load { first: true, window: Some(w), .. }) => w,
            _ => &mut self.whitelist,
        }
    }

    /// Judges every open connection by the rules in force: in `enforce`
    /// each one they deny is closed, then forgotten (so a failure midway
    /// leaves nobody open and untracked); in `monitor` each is reported once
    /// until the rules admit it again.
    pub fn recheck(&mut self, fx: &mut impl Effects) {
        self.warn_unenforced(fx);
        let mode = self.config.mode;
        if mode == Mode::Off {
            return;
        }
        let policy = self.config.policy();
        let bindings = self.binding_rules().is_some();
        let rules = rules(&self.load, self.diverged, &self.whitelist);
        let mut cut: Vec<(u64, Conn, Denial)> = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            let judged = judge(&rules, c.peer, policy).and_then(|g| match (&rules, bindings) {
                (Rules::Whitelist(w), true) => match fx.login_of(id) {
                    Some(user) if !w.user_may_login(&user, c.peer, policy) => Err(Denial::User),
                    _ => Ok(g),
                },
                _ => Ok(g),
            });
            match judged {
                Ok(_) => c.reported = false,
                Err(denial) if mode == Mode::Enforce || !c.reported => cut.push((id, *c, denial)),
                Err(_) => {}
            }
        }
        for (id, conn, denial) in cut {
            if mode == Mode::Enforce {
                let closed = fx.close(id);
                self.conns.remove(id);
                if closed {
                    self.stats.closed_on_change += 1;
                    self.stats.auth_denied += u64::from(denial == Denial::User);
                    self.report(id, &conn, denial, "closed connection after a whitelist change from", fx);
                }
            } else {
                if let Some(c) = self.conns.get_mut(id) {
                    c.reported = true;
                }
                self.stats.would_deny += 1;
                self.stats.auth_would_deny += u64::from(denial == Denial::User);
                self.report(id, &conn, denial, "would close connection (whitelist.mode monitor) from", fx);
            }
        }
    }

    /// Counts a denial, records its source and logs it, at most one line
    /// per second.
    #[cold]
    fn report(&mut self, id: u64, conn: &Conn, denial: Denial, what: &str, fx: &mut impl Effects) {
        let now = fx.now_ms();
        let second = now.div_euclid(1000);
        self.stats.last_denied = Some((conn.peer, second));
        self.denied.record(conn.peer, denial.reason(), second);
        let l = &mut self.log;
        let start = match l.window_start_ms {
            Some(start) if now >= start && now - start < 1000 => start,
            _ => {
                l.window_start_ms = Some(now);
                fx.log(Level::Warning, &format!("{what} {} (client id {id}): {}", Shown::conn(conn), denial.why()));
                return;
            }
        };
        l.suppressed += 1;
        if !l.flush_armed {
            l.flush_armed = true;
            fx.arm_log_flush((start + 1000 - now).max(1));
        }
    }

    /// Logs how many denial lines the limiter suppressed (the flush timer).
    pub fn flush_log(&mut self, fx: &mut impl Effects) {
        self.log.flush_armed = false;
        let n = std::mem::take(&mut self.log.suppressed);
        if n > 0 {
            let plural = if n == 1 { "" } else { "s" };
            fx.log(
                Level::Warning,
                &format!("{n} more denied connection{plural} in the last second (not logged one by one)"),
            );
        }
    }

    /// A load begins (`LOADING_*_START`). The first one of a starting
    /// process is the window: until a whitelist record is read, only exempt
    /// clients are admitted. Later loads judge by the rules in force until
    /// the loaded ones commit.
    pub fn begin_load(&mut self, kind: LoadKind, fx: &mut impl Effects) {
        let first = match &self.load {
            Some(l) => l.first,
            None => self.startup,
        };
        // A start inside a load that refused its record: Redis checking the
        // file before it exits. What it reads is no more taken than the
        // refused record.
        let refused = self.load.as_ref().is_some_and(|l| l.refused);
        self.load = Some(Load { first, kind, window: None, staged: Whitelist::default(), carried: false, refused });
        if first {
            // Nobody connects before the first load in practice; if someone
            // did, the window's rules apply to them too.
            self.recheck(fx);
        }
    }

    /// A whitelist record was decoded from loaded data. During the first
    /// load it is in force from now; otherwise it waits for the load's end.
    /// Outside a load (data the server loaded without announcing it), it is
    /// taken over at once.
    pub fn record_loaded(&mut self, w: Whitelist, fx: &mut impl Effects) {
        let carried = carries_whitelist(&w);
        match &mut self.load {
            Some(load) => {
                // A record read is a load of data, not Redis's check of it.
                load.refused = false;
                if carried {
                    if load.first {
                        load.window = Some(w.clone());
                    }
                    load.staged = w;
                    load.carried = true;
                }
                if load.first && carried {
                    self.recheck(fx);
                }
            }
            None => {
                if carried {
                    self.whitelist = w;
                    self.diverged = false;
                    self.recheck(fx);
                } else {
                    self.keep_without_whitelist(false, fx);
                }
            }
        }
    }

    /// The whitelist a change applies to: the one being loaded (commands
    /// replayed from an AOF), or the one in force.
    pub fn commit_base(&self) -> &Whitelist {
        match &self.load {
            Some(load) => &load.staged,
            None => &self.whitelist,
        }
    }

    /// Commits a planned change made on [`Gate::commit_base`]: into the load
    /// in progress, or in force at once with a re-check.
    pub fn commit(&mut self, next: Whitelist, fx: &mut impl Effects) {
        match &mut self.load {
            Some(load) => {
                load.staged = next;
                load.carried = true;
            }
            None => {
                self.whitelist = next;
                self.recheck(fx);
            }
        }
    }

    /// The primary's expiry sweep at unix second `now`, made on the
    /// whitelist in force in place (see [`Whitelist::sweep_in_place`]), then
    /// every open connection judged again, as [`Gate::commit`] would.
    /// `None` when nothing expired, and while a load is in progress (the
    /// whitelist in force is about to be replaced).
    pub fn sweep_expired(&mut self, now: u64, raise_version: bool, fx: &mut impl Effects) -> Option<Swept> {
        if self.load.is_some() {
            return None;
        }
        let swept = self.whitelist.sweep_in_place(now, raise_version)?;
        self.recheck(fx);
        Some(swept)
    }

    /// A replicated `IMPORT` brought the primary's whole state.
    pub fn clear_divergence(&mut self, fx: &mut impl Effects) {
        if self.diverged {
            self.diverged = false;
            fx.log(Level::Notice, "this replica's whitelist is its primary's again (whitelist_diverged:0)");
            self.recheck(fx);
        }
    }

    /// The load ended (`LOADING_ENDED`): what it carried replaces the
    /// whitelist in one step; data without a whitelist keeps the one in
    /// force (at the first load nothing is in force: it starts empty), and a
    /// full sync without one leaves this replica diverged. Every open
    /// connection is then judged by the final rules.
    pub fn finish_load(&mut self, fx: &mut impl Effects) {
        let Some(load) = self.load.take() else {
            return;
        };
        if load.refused {
            return self.end_failed(load, "the load that refused its whitelist record ended", fx);
        }
        if load.first {
            self.startup = false;
        }
        if load.carried {
            self.whitelist = load.staged;
            if load.kind == LoadKind::Replication {
                self.diverged = false;
            }
            let w = &self.whitelist;
            fx.log(
                Level::Notice,
                &format!(
                    "whitelist loaded: {} groups, {} entries, version {}",
                    w.groups().len(),
                    w.entry_count(),
                    w.version()
                ),
            );
        } else if load.first {
            self.whitelist = Whitelist::default();
            fx.log(Level::Notice, "the loaded data carries no whitelist: starting with an empty whitelist");
        } else {
            self.keep_without_whitelist(load.kind == LoadKind::Replication, fx);
        }
        self.recheck(fx);
    }

    /// Data without a whitelist: the one in force stays. Losing rules is
    /// never silent; where none is in force either, nothing is lost and
    /// nothing differs.
    fn keep_without_whitelist(&mut self, replication: bool, fx: &mut impl Effects) {
        if !carries_whitelist(&self.whitelist) {
            return;
        }
        let version = self.whitelist.version();
        if replication {
            self.diverged = true;
            fx.log(
                Level::Warning,
                &format!(
                    "the full sync carried no whitelist: the whitelist in force (version {version}) is kept, and this \
                     replica now differs from its primary (whitelist_diverged:1): it denies every client that is not \
                     exempt until a full sync with a whitelist or a replicated WHITELIST.IMPORT"
                ),
            );
        } else {
            fx.log(
                Level::Warning,
                &format!("the loaded data carries no whitelist: the whitelist in force (version {version}) is kept"),
            );
        }
    }

    /// The data's whitelist record was refused (the load itself fails, and
    /// Redis stops). Marks the load so that its end, whichever event ends it,
    /// takes nothing from it.
    pub fn record_refused(&mut self) {
        if let Some(load) = &mut self.load {
            load.refused = true;
        }
    }

    /// The load failed (`LOADING_FAILED`): the rules in force stay. A first
    /// load keeps the record it read, if any (the server stops anyway).
    pub fn fail_load(&mut self, fx: &mut impl Effects) {
        let Some(load) = self.load.take() else {
            return;
        };
        self.end_failed(load, "loading failed", fx);
    }

    fn end_failed(&mut self, load: Load, what: &str, fx: &mut impl Effects) {
        if load.first {
            self.startup = false;
            if let Some(w) = load.window {
                self.whitelist = w;
            }
        }
        fx.log(Level::Warning, &format!("{what}: the whitelist in force (version {}) stays", self.whitelist.version()));
        self.recheck(fx);
    }
}

/// Why the lock-out guard refuses a change. `Display` is the exact reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It would close the caller's own connection.
    OwnConnection {
        /// The caller.
        caller: Shown,
        /// Inside `MULTI`/`EXEC`, where `FORCE` does not help.
        in_multi: bool,
    },
    /// It would close a connected replica's link.
    Replica {
        /// The replica's connection.
        replica: Shown,
        /// Its client id.
        id: u64,
    },
    /// It would remove the last entry: everyone admitted.
    TurnsOff,
    /// It would leave only entries that expire: once they have, everyone
    /// admitted.
    AllExpire,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::OwnConnection { caller, in_multi: true } => write!(
                f,
                "ERR this change would disconnect your own connection from {caller}; inside MULTI/EXEC it is refused even with FORCE"
            ),
            Refusal::OwnConnection { caller, in_multi: false } => write!(
                f,
                "ERR this change would disconnect your own connection from {caller}; add FORCE to apply it anyway"
            ),
            Refusal::Replica { replica, id } => write!(
                f,
                "ERR this change would disconnect replica {replica} (client id {id}); add FORCE to apply it anyway"
            ),
            Refusal::TurnsOff => f.write_str(
                "ERR this change would turn the whitelist off and admit every address; add FORCE to apply it anyway",
            ),
            Refusal::AllExpire => f.write_str(
                "ERR every remaining entry expires, and then the whitelist would admit every address; add a permanent entry or FORCE",
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Who makes a change, for the lock-out guard.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// The caller's connection (`None`: an internal client).
    pub peer: Option<Peer>,
    /// Inside `MULTI`/`EXEC`.
    pub in_multi: bool,
    /// `FORCE` was given.
    pub force: bool,
}

/// The lock-out guard: refuses a change from an ordinary client that would
/// cut the caller or a replica off, or turn the whitelist off, unless forced
/// (the caller inside `MULTI` even then). Judged as in `enforce` mode. With
/// `when-empty deny` an empty whitelist admits nobody new, so there is no
/// turning off to guard against; cutting the caller or a replica off still is.
/// `replicas`: (peer, port, client id) of each connected replica.
pub fn lockout(
    before: &Whitelist,
    after: &Whitelist,
    policy: Policy,
    caller: Caller,
    replicas: &[(Peer, u16, u64)],
) -> Result<(), Refusal> {
    if let Some(peer) = caller.peer {
        if !after.verdict(peer, policy).allowed && (caller.in_multi || !caller.force) {
            return Err(Refusal::OwnConnection { caller: Shown::peer(peer), in_multi: caller.in_multi });
        }
    }
    if caller.force {
        return Ok(());
    }
    if let Some(&(peer, port, id)) = replicas.iter().find(|(peer, _, _)| !after.verdict(*peer, policy).allowed) {
        return Err(Refusal::Replica { replica: Shown { peer, port: Some(port) }, id });
    }
    // The fail-open guards: with `when-empty deny` an empty whitelist admits
    // nobody but exempt clients, so there is nothing to guard.
    if !policy.deny_when_empty && before.is_enabled() && !after.is_enabled() {
        return Err(Refusal::TurnsOff);
    }
    if !policy.deny_when_empty && after.is_enabled() && !after.has_permanent() {
        return Err(Refusal::AllExpire);
    }
    Ok(())
}

/// The lock-out guard for bindings (§11): refuses a change from an ordinary
/// client after which its own ACL user could not log in from its address,
/// unless forced (inside `MULTI` even then). Judged as in `enforce` mode;
/// only where bindings are enforced.
pub fn lockout_user(after: &Whitelist, policy: Policy, caller: Caller, user: &str) -> Result<(), Refusal> {
    match caller.peer {
        Some(peer) if !after.user_may_login(user, peer, policy) && (caller.in_multi || !caller.force) => {
            Err(Refusal::OwnConnection { caller: Shown::peer(peer), in_multi: caller.in_multi })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{parse_entry, Addr};
    use crate::name::GroupName;
    use crate::store::Change;
    use std::collections::HashSet;

    /// Records what the gate asked for.
    #[derive(Default)]
    struct Fx {
        refused: Vec<u64>,
        closed: Vec<u64>,
        gone: HashSet<u64>,
        lines: Vec<(Level, String)>,
        now: i64,
        flushes: u32,
    }

    impl Effects for Fx {
        fn refuse(&mut self, id: u64) {
            self.refused.push(id);
        }
        fn close(&mut self, id: u64) -> bool {
            self.closed.push(id);
            !self.gone.contains(&id)
        }
        fn log(&mut self, level: Level, line: &str) {
            self.lines.push((level, line.to_string()));
        }
        fn now_ms(&mut self) -> i64 {
            self.now
        }
        fn arm_log_flush(&mut self, _after_ms: i64) {
            self.flushes += 1;
        }
    }

    fn ip(s: &str) -> Peer {
        Peer::Ip(Addr::from(s.parse::<std::net::IpAddr>().unwrap()))
    }

    /// A whitelist with group `aa` holding `entries`, at `version`.
    fn wl(entries: &[&str], version: u64) -> Whitelist {
        let name = GroupName::parse(b"aa").unwrap();
        let entries = entries.iter().map(|e| parse_entry(e.as_bytes()).unwrap()).collect();
        let groups = vec![crate::store::GroupSpec {
            name,
            attribute: crate::name::Attribute::Show,
            entries,
            meta: Vec::new(),
            usage: Vec::new(),
            users: Vec::new(),
        }];
        Whitelist::default().plan(Change::Replace { groups, version }, None).unwrap().next.unwrap()
    }

    fn no_loopback(g: &mut Gate) {
        g.config.allow_loopback = false;
    }

    #[test]
    fn admits_by_the_rules_and_refuses_through_effects() {
        let mut g = Gate::new(false);
        no_loopback(&mut g);
        let mut fx = Fx::default();
        g.commit(wl(&["10.0.0.0/8"], 1), &mut fx);
        assert_eq!(g.admit(1, Conn::new(ip("10.1.2.3"), 5), &mut fx), Admission::Admit);
        assert_eq!(g.admit(2, Conn::new(ip("192.0.2.1"), 6), &mut fx), Admission::Refuse(Denial::NoMatch));
        assert_eq!(fx.refused, vec![2]);
        assert_eq!(g.conns().count(), 1);
        assert_eq!(g.stats().checked, 2);
        assert_eq!(g.stats().denied, 1);
        assert_eq!(
            fx.lines.last().unwrap().1,
            "denied connection from 192.0.2.1:6 (client id 2): no whitelist entry matches"
        );
        assert_eq!(g.whitelist().groups()[0].hits(), 1);
    }

    #[test]
    fn the_first_load_admits_only_exempt_clients_until_a_record_is_read() {
        let mut g = Gate::new(true);
        let mut fx = Fx::default();
        g.begin_load(LoadKind::Rdb, &mut fx);
        assert_eq!(g.admit(1, Conn::new(ip("192.0.2.1"), 1), &mut fx), Admission::Refuse(Denial::Loading));
        assert_eq!(g.admit(2, Conn::new(ip("127.0.0.1"), 1), &mut fx), Admission::Admit);
        assert_eq!(g.admit(3, Conn::new(Peer::Unix, 0), &mut fx), Admission::Admit);
        assert_eq!(g.stats().denied_while_loading, 1);
        // The empty record at version 0 counts as none.
        g.record_loaded(Whitelist::default(), &mut fx);
        assert_eq!(g.admit(4, Conn::new(ip("192.0.2.1"), 1), &mut fx), Admission::Refuse(Denial::Loading));
        g.record_loaded(wl(&["192.0.2.0/24"], 1), &mut fx);
        assert_eq!(g.admit(5, Conn::new(ip("192.0.2.1"), 1), &mut fx), Admission::Admit);
        assert_eq!(g.admit(6, Conn::new(ip("198.51.100.1"), 1), &mut fx), Admission::Refuse(Denial::NoMatch));
        assert_eq!(g.stats().denied_while_loading, 2);
        // A replayed command changes what is loaded, not what is in force.
        let next = g.commit_base().plan(Change::Delete { groups: vec![GroupName::parse(b"aa").unwrap()] }, None);
        g.commit(next.unwrap().next.unwrap(), &mut fx);
        assert_eq!(g.admit(7, Conn::new(ip("192.0.2.7"), 1), &mut fx), Admission::Admit);
        g.finish_load(&mut fx);
        assert_eq!(g.whitelist().version(), 2);
        assert!(!g.whitelist().is_enabled());
        // A later load is no window.
        g.begin_load(LoadKind::Rdb, &mut fx);
        assert_eq!(g.admit(8, Conn::new(ip("198.51.100.1"), 1), &mut fx), Admission::Admit);
    }

    #[test]
    fn data_without_a_whitelist_keeps_the_one_in_force_and_a_sync_without_one_diverges() {
        let mut g = Gate::new(false);
        no_loopback(&mut g);
        let mut fx = Fx::default();
        g.commit(wl(&["10.0.0.1"], 3), &mut fx);
        g.begin_load(LoadKind::Rdb, &mut fx);
        g.record_loaded(Whitelist::default(), &mut fx);
        g.finish_load(&mut fx);
        assert_eq!(g.whitelist().version(), 3);
        assert!(!g.diverged());
        assert_eq!(
            fx.lines.last().unwrap(),
            &(
                Level::Warning,
                "the loaded data carries no whitelist: the whitelist in force (version 3) is kept".into()
            )
        );
        assert_eq!(g.admit(1, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Admit);
        g.begin_load(LoadKind::Replication, &mut fx);
        g.finish_load(&mut fx);
        assert!(g.diverged());
        // The allowed client is cut: only exempt clients stay.
        assert_eq!(fx.closed, vec![1]);
        assert_eq!(g.admit(2, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Refuse(Denial::Diverged));
        assert_eq!(g.admit(3, Conn::new(Peer::Unix, 0), &mut fx), Admission::Admit);
        g.begin_load(LoadKind::Replication, &mut fx);
        g.record_loaded(wl(&["10.0.0.1"], 1), &mut fx);
        g.finish_load(&mut fx);
        assert!(!g.diverged());
        assert_eq!(g.admit(4, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Admit);
        g.begin_load(LoadKind::Replication, &mut fx);
        g.finish_load(&mut fx);
        g.clear_divergence(&mut fx);
        assert!(!g.diverged());
    }

    #[test]
    fn a_lost_change_stops_the_start_up_load_and_diverges_anywhere_else() {
        let mut g = Gate::new(true);
        no_loopback(&mut g);
        let mut fx = Fx::default();
        g.begin_load(LoadKind::Aof, &mut fx);
        assert_eq!(g.change_lost(), Lost::StopStartup);
        g.record_loaded(wl(&["10.0.0.1"], 1), &mut fx);
        assert_eq!(g.change_lost(), Lost::StopStartup);
        g.finish_load(&mut fx);
        // A replica: the change is counted, and only exempt clients stay.
        assert_eq!(g.change_lost(), Lost::Diverge);
        assert_eq!(g.admit(1, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Admit);
        assert_eq!(g.admit(2, Conn::new(Peer::Unix, 0), &mut fx), Admission::Admit);
        g.diverge(&mut fx);
        g.diverge(&mut fx);
        assert_eq!(g.stats().replication_errors, 2);
        assert!(g.diverged());
        assert_eq!(fx.closed, vec![1]);
        assert_eq!(fx.lines.iter().filter(|(_, l)| l.starts_with("this server's whitelist now differs")).count(), 1);
        assert_eq!(g.admit(3, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Refuse(Denial::Diverged));
        // A later load (DEBUG LOADAOF) is no start-up: it diverges too, and
        // its whitelist is not the primary's.
        g.begin_load(LoadKind::Aof, &mut fx);
        assert_eq!(g.change_lost(), Lost::Diverge);
        g.record_loaded(wl(&["10.0.0.1"], 4), &mut fx);
        g.finish_load(&mut fx);
        assert!(g.diverged());
        // The whitelist record of a full sync brings the primary's state back.
        g.begin_load(LoadKind::Replication, &mut fx);
        g.record_loaded(wl(&["10.0.0.1"], 5), &mut fx);
        g.finish_load(&mut fx);
        assert!(!g.diverged());
        assert_eq!(g.admit(4, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Admit);
    }

    #[test]
    fn a_sync_without_a_whitelist_onto_none_diverges_nothing() {
        let mut g = Gate::new(false);
        let mut fx = Fx::default();
        g.begin_load(LoadKind::Replication, &mut fx);
        g.record_loaded(Whitelist::default(), &mut fx);
        g.finish_load(&mut fx);
        assert!(!g.diverged());
        assert!(fx.lines.is_empty());
        assert_eq!(g.admit(1, Conn::new(ip("192.0.2.1"), 1), &mut fx), Admission::Admit);
    }

    #[test]
    fn a_failed_load_keeps_the_rules_in_force() {
        let mut g = Gate::new(false);
        let mut fx = Fx::default();
        g.commit(wl(&["10.0.0.1"], 1), &mut fx);
        g.begin_load(LoadKind::Replication, &mut fx);
        g.record_loaded(wl(&["10.0.0.2"], 5), &mut fx);
        g.fail_load(&mut fx);
        assert_eq!(g.whitelist().version(), 1);
        assert!(!g.is_loading());
    }

    #[test]
    fn the_check_after_a_refused_record_at_start_up_takes_nothing() {
        // Redis refuses the data, checks the file (a load of its own, which
        // skips the record and ends well), then exits.
        let mut g = Gate::new(true);
        let mut fx = Fx::default();
        g.begin_load(LoadKind::Rdb, &mut fx);
        g.record_refused();
        g.begin_load(LoadKind::Rdb, &mut fx);
        assert_eq!(g.admit(1, Conn::new(ip("192.0.2.1"), 1), &mut fx), Admission::Refuse(Denial::Loading));
        fx.lines.clear();
        g.finish_load(&mut fx);
        assert!(!g.is_loading());
        assert_eq!(g.whitelist().version(), 0);
        assert_eq!(
            fx.lines,
            vec![(
                Level::Warning,
                "the load that refused its whitelist record ended: the whitelist in force (version 0) stays"
                    .to_string()
            )]
        );
    }

    #[test]
    fn the_check_after_a_refused_record_keeps_the_rules_in_force() {
        let mut g = Gate::new(false);
        let mut fx = Fx::default();
        g.commit(wl(&["10.0.0.1"], 1), &mut fx);
        g.begin_load(LoadKind::Rdb, &mut fx);
        g.record_refused();
        g.begin_load(LoadKind::Rdb, &mut fx);
        g.commit(wl(&["10.0.0.2"], 4), &mut fx);
        fx.lines.clear();
        g.finish_load(&mut fx);
        assert_eq!(
            fx.lines,
            vec![(
                Level::Warning,
                "the load that refused its whitelist record ended: the whitelist in force (version 1) stays"
                    .to_string()
            )]
        );
        assert_eq!(g.whitelist().version(), 1);
        assert_eq!(g.admit(1, Conn::new(ip("10.0.0.2"), 1), &mut fx), Admission::Refuse(Denial::NoMatch));
    }

    #[test]
    fn a_load_that_reads_a_record_after_a_refused_one_is_taken() {
        let mut g = Gate::new(false);
        let mut fx = Fx::default();
        g.commit(wl(&["10.0.0.1"], 1), &mut fx);
        g.begin_load(LoadKind::Replication, &mut fx);
        g.record_refused();
        g.begin_load(LoadKind::Replication, &mut fx);
        g.record_loaded(wl(&["10.0.0.2"], 5), &mut fx);
        g.finish_load(&mut fx);
        assert_eq!(g.whitelist().version(), 5);
        assert_eq!(fx.lines.last().unwrap().1, "whitelist loaded: 1 groups, 1 entries, version 5");
    }

    #[test]
    fn a_refusal_outside_a_load_marks_nothing() {
        let mut g = Gate::new(false);
        let mut fx = Fx::default();
        g.record_refused();
        g.begin_load(LoadKind::Rdb, &mut fx);
        g.finish_load(&mut fx);
        assert!(fx.lines.is_empty());
        assert!(!g.is_loading());
    }

    #[test]
    fn monitor_mode_reports_a_connection_once_until_admitted_again() {
        let mut g = Gate::new(false);
        no_loopback(&mut g);
        g.config.mode = Mode::Monitor;
        let mut fx = Fx::default();
        g.commit(wl(&["10.0.0.1"], 1), &mut fx);
        assert_eq!(g.admit(1, Conn::new(ip("10.0.0.2"), 1), &mut fx), Admission::WouldRefuse(Denial::NoMatch));
        assert_eq!(g.stats().would_deny, 1);
        g.recheck(&mut fx);
        g.recheck(&mut fx);
        assert_eq!(g.stats().would_deny, 1);
        g.commit(wl(&["10.0.0.2"], 1), &mut fx);
        assert_eq!(g.stats().would_deny, 1);
        g.commit(wl(&["10.0.0.1"], 1), &mut fx);
        assert_eq!(g.stats().would_deny, 2);
        g.recheck(&mut fx);
        assert_eq!(g.stats().would_deny, 2);
        assert!(fx.closed.is_empty());
    }

    #[test]
    fn closed_on_change_counts_only_closes_that_succeeded() {
        let mut g = Gate::new(false);
        no_loopback(&mut g);
        let mut fx = Fx::default();
        g.admit(1, Conn::new(ip("10.0.0.2"), 1), &mut fx);
        g.admit(2, Conn::new(ip("10.0.0.3"), 1), &mut fx);
        fx.gone.insert(2);
        g.commit(wl(&["10.0.0.1"], 1), &mut fx);
        assert_eq!(g.stats().closed_on_change, 1);
        assert_eq!(g.conns().count(), 0);
    }

    /// Panics on the second close.
    struct Exploding(u32);

    impl Effects for Exploding {
        fn refuse(&mut self, _id: u64) {}
        fn close(&mut self, _id: u64) -> bool {
            self.0 += 1;
            assert!(self.0 < 2, "boom");
            true
        }
        fn log(&mut self, _level: Level, _line: &str) {}
        fn now_ms(&mut self) -> i64 {
            0
        }
        fn arm_log_flush(&mut self, _after_ms: i64) {}
    }

    #[test]
    fn a_panic_midway_through_a_recheck_leaves_the_unclosed_tracked() {
        let mut g = Gate::new(false);
        no_loopback(&mut g);
        let mut fx = Fx::default();
        for id in 1..=3 {
            g.admit(id, Conn::new(ip("10.0.0.2"), 1), &mut fx);
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            g.commit(wl(&["10.0.0.1"], 1), &mut Exploding(0));
        }));
        assert!(r.is_err());
        // One closed and forgotten; the one whose close panicked and the
        // third are still tracked, so the next re-check closes them.
        assert_eq!(g.conns().count(), 2);
        g.recheck(&mut fx);
        assert_eq!(fx.closed.len(), 2);
        assert_eq!(g.conns().count(), 0);
    }

    #[test]
    fn the_log_limiter_writes_one_line_per_second() {
        let mut g = Gate::new(false);
        no_loopback(&mut g);
        let mut fx = Fx { now: 10_000, ..Fx::default() };
        g.commit(wl(&["10.0.0.1"], 1), &mut fx);
        for id in 0..5 {
            g.admit(id, Conn::new(ip("10.0.0.2"), 1), &mut fx);
        }
        assert_eq!(fx.lines.len(), 1);
        assert_eq!(fx.flushes, 1);
        g.flush_log(&mut fx);
        assert_eq!(fx.lines[1].1, "4 more denied connections in the last second (not logged one by one)");
    }

    fn peers(g: &Gate) -> Vec<(String, u64, &'static str)> {
        g.denied().iter().map(|r| (Shown::peer(r.peer).address(), r.count, r.reason.as_str())).collect()
    }

    #[test]
    fn when_empty_deny_admits_only_exempt_clients_and_rechecks() {
        let mut g = Gate::new(false);
        let mut fx = Fx::default();
        assert_eq!(g.admit(1, Conn::new(ip("192.0.2.1"), 1), &mut fx), Admission::Admit);
        assert_eq!(g.admit(2, Conn::new(ip("127.0.0.1"), 1), &mut fx), Admission::Admit);
        assert_eq!(g.admit(3, Conn::new(Peer::Unix, 0), &mut fx), Admission::Admit);
        assert!(!g.enabled());
        // The setting is only stored; the re-check closes the non-exempt.
        g.config.when_empty = WhenEmpty::Deny;
        assert!(g.enabled());
        assert!(fx.closed.is_empty());
        g.recheck(&mut fx);
        assert_eq!(fx.closed, vec![1]);
        assert_eq!(g.stats().closed_on_change, 1);
        assert_eq!(
            fx.lines.last().unwrap().1,
            "closed connection after a whitelist change from 192.0.2.1:1 (client id 1): the whitelist is empty and \
             whitelist.when-empty is deny"
        );
        assert_eq!(g.admit(4, Conn::new(ip("192.0.2.2"), 1), &mut fx), Admission::Refuse(Denial::WhitelistEmpty));
        assert_eq!(g.admit(5, Conn::new(ip("::1"), 1), &mut fx), Admission::Admit);
        no_loopback(&mut g);
        g.config.allow_unixsocket = false;
        assert_eq!(g.admit(6, Conn::new(ip("127.0.0.1"), 1), &mut fx), Admission::Refuse(Denial::WhitelistEmpty));
        assert_eq!(g.admit(7, Conn::new(Peer::Unix, 0), &mut fx), Admission::Refuse(Denial::UnixSocket));
        assert_eq!(
            peers(&g),
            vec![
                (String::from("/unixsocket"), 1, "unix-socket"),
                (String::from("127.0.0.1"), 1, "whitelist-empty"),
                (String::from("192.0.2.2"), 1, "whitelist-empty"),
                (String::from("192.0.2.1"), 1, "whitelist-empty"),
            ]
        );
        // An entry turns the empty rule off: no-match from now on.
        g.commit(wl(&["10.0.0.0/8"], 1), &mut fx);
        assert_eq!(g.admit(8, Conn::new(ip("192.0.2.2"), 1), &mut fx), Admission::Refuse(Denial::NoMatch));
        assert_eq!(peers(&g)[0], (String::from("192.0.2.2"), 2, "no-match"));
        // Back to allow: the empty whitelist admits everyone again.
        g.commit(wl(&[], 2), &mut fx);
        g.config.when_empty = WhenEmpty::Allow;
        assert_eq!(g.admit(9, Conn::new(ip("192.0.2.2"), 1), &mut fx), Admission::Admit);
    }

    #[test]
    fn denied_sources_record_every_denial_and_would_be_denial_but_no_admission() {
        let mut g = Gate::new(true);
        no_loopback(&mut g);
        let mut fx = Fx { now: 5_000, ..Fx::default() };
        g.begin_load(LoadKind::Rdb, &mut fx);
        assert_eq!(g.admit(1, Conn::new(ip("192.0.2.1"), 1), &mut fx), Admission::Refuse(Denial::Loading));
        g.record_loaded(wl(&["10.0.0.0/8"], 1), &mut fx);
        g.finish_load(&mut fx);
        fx.now = 7_999;
        assert_eq!(g.admit(2, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Admit);
        assert_eq!(g.admit(3, Conn::new(ip("192.0.2.1"), 2), &mut fx), Admission::Refuse(Denial::NoMatch));
        g.config.mode = Mode::Monitor;
        assert_eq!(g.admit(4, Conn::new(ip("192.0.2.9"), 1), &mut fx), Admission::WouldRefuse(Denial::NoMatch));
        assert_eq!(
            g.denied().iter().copied().collect::<Vec<_>>(),
            vec![
                crate::denied::DeniedRow {
                    peer: ip("192.0.2.9"),
                    count: 1,
                    first: 7,
                    last: 7,
                    reason: DeniedReason::NoMatch
                },
                crate::denied::DeniedRow {
                    peer: ip("192.0.2.1"),
                    count: 2,
                    first: 5,
                    last: 7,
                    reason: DeniedReason::NoMatch
                },
            ]
        );
        // A re-check's closes count too; a diverged replica's are `loading`.
        g.config.mode = Mode::Enforce;
        g.diverge(&mut fx);
        fx.closed.sort_unstable();
        assert_eq!(fx.closed, vec![2, 4]);
        let mut recent = peers(&g)[0..2].to_vec();
        recent.sort();
        assert_eq!(recent, [(String::from("10.0.0.1"), 1, "loading"), (String::from("192.0.2.9"), 2, "loading")]);
        g.record_unjudged(Peer::Unknown, 9_000);
        assert_eq!(peers(&g)[0], (String::from("?"), 1, "error"));
        g.config.denied_sources = 1;
        g.sync_denied();
        assert_eq!(peers(&g), vec![(String::from("?"), 1, "error")]);
        g.reset_denied();
        assert!(g.denied().is_empty());
        g.config.denied_sources = 0;
        g.sync_denied();
        g.admit(5, Conn::new(ip("192.0.2.1"), 1), &mut fx);
        assert!(g.denied().is_empty());
    }

    #[test]
    fn a_change_leaving_only_expiring_entries_needs_force_unless_when_empty_denies() {
        use crate::store::{Expiry, Note};
        let before = wl(&["10.0.0.0/8"], 1);
        let temporary = Change::Set {
            group: GroupName::parse(b"aa").unwrap(),
            entries: vec![parse_entry(b"10.0.0.0/8").unwrap()],
            attribute: None,
            note: Note { comment: None, expiry: Expiry::At(1_000) },
        };
        let after = before.plan_at(temporary, None, 10).unwrap().next.unwrap();
        assert!(after.is_enabled() && !after.has_permanent());
        let mut s = Settings::default();
        let by = |force| Caller { peer: None, in_multi: false, force };
        let refused = lockout(&before, &after, s.policy(), by(false), &[]).unwrap_err();
        assert_eq!(refused, Refusal::AllExpire);
        assert_eq!(
            refused.to_string(),
            "ERR every remaining entry expires, and then the whitelist would admit every address; add a permanent entry or FORCE"
        );
        assert_eq!(lockout(&before, &after, s.policy(), by(true), &[]), Ok(()));
        s.when_empty = WhenEmpty::Deny;
        assert_eq!(lockout(&before, &after, s.policy(), by(false), &[]), Ok(()));
    }

    #[test]
    fn the_fail_open_guard_steps_aside_with_when_empty_deny() {
        let before = wl(&["10.0.0.0/8"], 1);
        let after = wl(&[], 2);
        let caller = |peer| Caller { peer, in_multi: false, force: false };
        let mut s = Settings::default();
        assert_eq!(lockout(&before, &after, s.policy(), caller(None), &[]), Err(Refusal::TurnsOff));
        s.when_empty = WhenEmpty::Deny;
        assert_eq!(lockout(&before, &after, s.policy(), caller(None), &[]), Ok(()));
        assert_eq!(lockout(&before, &after, s.policy(), caller(Some(ip("127.0.0.1"))), &[]), Ok(()));
        // The caller's own connection is still guarded.
        assert_eq!(
            lockout(&before, &after, s.policy(), caller(Some(ip("10.0.0.1"))), &[]),
            Err(Refusal::OwnConnection { caller: Shown::peer(ip("10.0.0.1")), in_multi: false })
        );
        assert_eq!(
            lockout(&before, &after, s.policy(), caller(None), &[(ip("10.0.0.2"), 6380, 9)]),
            Err(Refusal::Replica { replica: Shown { peer: ip("10.0.0.2"), port: Some(6380) }, id: 9 })
        );
    }

    #[test]
    fn lockout_texts() {
        let before = wl(&["10.0.0.1"], 1);
        let empty = Whitelist::default();
        let policy = Settings::default().policy();
        let caller = Caller { peer: Some(ip("203.0.113.5")), in_multi: false, force: false };
        assert_eq!(
            lockout(&before, &before, policy, caller, &[]).unwrap_err().to_string(),
            "ERR this change would disconnect your own connection from 203.0.113.5; add FORCE to apply it anyway"
        );
        let in_multi = Caller { in_multi: true, force: true, ..caller };
        assert_eq!(
            lockout(&before, &before, policy, in_multi, &[]).unwrap_err().to_string(),
            "ERR this change would disconnect your own connection from 203.0.113.5; inside MULTI/EXEC it is refused even with FORCE"
        );
        let internal = Caller { peer: None, in_multi: false, force: false };
        assert_eq!(
            lockout(&before, &before, policy, internal, &[(ip("192.0.2.9"), 4000, 12)]).unwrap_err().to_string(),
            "ERR this change would disconnect replica 192.0.2.9:4000 (client id 12); add FORCE to apply it anyway"
        );
        assert_eq!(lockout(&before, &empty, policy, internal, &[]).unwrap_err(), Refusal::TurnsOff);
        assert!(lockout(&before, &empty, policy, Caller { force: true, ..internal }, &[]).is_ok());
    }

    #[test]
    fn pending_closes_stay_in_the_room_reserved() {
        let mut p = Pending::default();
        p.reserve(2);
        let room = p.ids.capacity();
        assert!(p.push(1) && p.push(2));
        for id in 3..=room as u64 {
            assert!(p.push(id));
        }
        assert!(!p.push(99), "no room is added after the reservation");
        assert_eq!(p.ids.capacity(), room);
        assert!(p.contains(2) && p.remove(2) && !p.contains(2));
        assert_eq!(p.len(), room - 1);
        while p.pop().is_some() {}
        assert!(p.is_empty());
    }

    #[test]
    fn shown_forms() {
        let c = Conn::new(ip("10.0.0.1"), 80);
        assert_eq!(Shown::conn(&c).to_string(), "10.0.0.1:80");
        assert_eq!(Shown::peer(Peer::Unix).to_string(), "unix socket");
        assert_eq!(Shown::peer(Peer::Unix).address(), "/unixsocket");
        assert_eq!(Shown::conn(&Conn::new(Peer::Unknown, 9)).to_string(), "an unreadable address, port 9");
        assert_eq!(Shown::peer(Peer::Unknown).address(), "?");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Event {
            Connect(u8),
            Disconnect(u8),
            Change(Vec<u8>),
            BeginLoad(u8),
            Record(Vec<u8>),
            Replay(Vec<u8>),
            EndLoad,
            FailLoad,
            Refuse,
            SetMode(u8),
            Loopback(bool),
            WhenEmpty(bool),
            DeniedSize(u8),
            StartupOver,
        }

        fn addr(i: u8) -> Peer {
            match i % 8 {
                7 => Peer::Unix,
                6 => ip("127.0.0.1"),
                n => ip(&format!("10.0.0.{n}")),
            }
        }

        fn list(bits: &[u8]) -> Whitelist {
            let entries: Vec<String> = bits.iter().map(|b| format!("10.0.0.{}", b % 6)).collect();
            let refs: Vec<&str> = entries.iter().map(String::as_str).collect();
            if refs.is_empty() {
                wl(&[], 1)
            } else {
                wl(&refs, 1)
            }
        }

        fn event() -> impl Strategy<Value = Event> {
            prop_oneof![
                4 => any::<u8>().prop_map(Event::Connect),
                1 => any::<u8>().prop_map(Event::Disconnect),
                2 => proptest::collection::vec(any::<u8>(), 0..3).prop_map(Event::Change),
                1 => any::<u8>().prop_map(Event::BeginLoad),
                1 => proptest::collection::vec(any::<u8>(), 0..3).prop_map(Event::Record),
                1 => proptest::collection::vec(any::<u8>(), 0..3).prop_map(Event::Replay),
                1 => Just(Event::EndLoad),
                1 => Just(Event::FailLoad),
                1 => Just(Event::Refuse),
                1 => any::<u8>().prop_map(Event::SetMode),
                1 => any::<bool>().prop_map(Event::Loopback),
                1 => any::<bool>().prop_map(Event::WhenEmpty),
                1 => (0u8..5).prop_map(Event::DeniedSize),
                1 => Just(Event::StartupOver),
            ]
        }

        /// The newest row of the denied table is `peer`, denied for `d`
        /// (when the table is on).
        fn newest_is(g: &Gate, peer: Peer, d: Denial) -> Result<(), TestCaseError> {
            if g.denied().capacity() > 0 {
                let row = g.denied().iter().next().copied();
                prop_assert_eq!(row.map(|r| (r.peer, r.reason)), Some((peer, d.reason())));
            }
            Ok(())
        }

        /// Whether the rules in force right now would deny `peer`.
        fn denied_now(g: &Gate, peer: Peer) -> bool {
            judge(&rules(&g.load, g.diverged, &g.whitelist), peer, g.config.policy()).is_err()
        }

        proptest! {
            #[test]
            fn no_sequence_admits_a_client_the_rules_in_force_deny(
                startup in any::<bool>(),
                events in proptest::collection::vec(event(), 0..60),
            ) {
                let mut g = Gate::new(startup);
                let mut fx = Fx::default();
                let mut open: HashSet<u64> = HashSet::new();
                let mut next_id = 0u64;
                for e in events {
                    match e {
                        Event::Connect(a) => {
                            next_id += 1;
                            let peer = addr(a);
                            let deny = denied_now(&g, peer);
                            match g.admit(next_id, Conn::new(peer, 1), &mut fx) {
                                Admission::Admit => {
                                    prop_assert!(!deny || g.config.mode == Mode::Off);
                                    open.insert(next_id);
                                }
                                Admission::Refuse(d) => {
                                    prop_assert!(deny && g.config.mode == Mode::Enforce);
                                    newest_is(&g, peer, d)?;
                                }
                                Admission::WouldRefuse(d) => {
                                    prop_assert!(deny && g.config.mode == Mode::Monitor);
                                    newest_is(&g, peer, d)?;
                                    open.insert(next_id);
                                }
                            }
                        }
                        Event::Disconnect(i) => {
                            let id = u64::from(i) % (next_id + 1);
                            open.remove(&id);
                            g.forget(id);
                        }
                        Event::Change(bits) => {
                            if !g.is_loading() {
                                g.commit(list(&bits), &mut fx);
                            }
                        }
                        Event::BeginLoad(k) => {
                            let kind = [LoadKind::Rdb, LoadKind::Aof, LoadKind::Replication][usize::from(k % 3)];
                            g.begin_load(kind, &mut fx);
                        }
                        Event::Record(bits) => g.record_loaded(list(&bits), &mut fx),
                        Event::Replay(bits) => {
                            if g.is_loading() {
                                g.commit(list(&bits), &mut fx);
                            }
                        }
                        Event::EndLoad => g.finish_load(&mut fx),
                        Event::FailLoad => g.fail_load(&mut fx),
                        Event::Refuse => g.record_refused(),
                        Event::SetMode(m) => {
                            g.config.mode = Mode::from_code(i32::from(m % 3)).unwrap();
                            g.recheck(&mut fx);
                        }
                        Event::Loopback(on) => {
                            g.config.allow_loopback = on;
                            g.recheck(&mut fx);
                        }
                        Event::WhenEmpty(deny) => {
                            g.config.when_empty = if deny { WhenEmpty::Deny } else { WhenEmpty::Allow };
                            g.recheck(&mut fx);
                        }
                        Event::DeniedSize(n) => {
                            g.config.denied_sources = i64::from(n);
                            g.sync_denied();
                        }
                        Event::StartupOver => {
                            if !g.is_loading() {
                                g.startup_over();
                            }
                        }
                    }
                    prop_assert!(g.denied().len() <= g.denied().capacity());
                    for id in fx.closed.drain(..) {
                        open.remove(&id);
                    }
                    // In enforce mode, nobody the rules in force deny is open.
                    if g.config.mode == Mode::Enforce {
                        for id in &open {
                            let conn = g.conn(*id);
                            prop_assert!(conn.is_some(), "client {} is open but untracked", id);
                            if let Some(c) = conn {
                                prop_assert!(!denied_now(&g, c.peer), "client {} from {:?} is open", id, c.peer);
                            }
                        }
                    }
                }
            }

            #[test]
            fn after_any_load_every_open_connection_is_judged_by_the_final_rules(
                before in proptest::collection::vec(any::<u8>(), 0..3),
                record in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)),
                replay in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3), 0..3),
                peers in proptest::collection::vec(any::<u8>(), 0..10),
                kind in 0u8..3,
                startup in any::<bool>(),
            ) {
                let mut g = Gate::new(startup);
                g.config.allow_loopback = false;
                let mut fx = Fx::default();
                g.commit(list(&before), &mut fx);
                for (i, p) in peers.iter().enumerate() {
                    g.admit(i as u64, Conn::new(addr(*p), 1), &mut fx);
                }
                g.begin_load([LoadKind::Rdb, LoadKind::Aof, LoadKind::Replication][usize::from(kind)], &mut fx);
                if let Some(r) = &record {
                    g.record_loaded(list(r), &mut fx);
                }
                for r in &replay {
                    g.commit(list(r), &mut fx);
                }
                g.finish_load(&mut fx);
                for (_, c) in g.conns() {
                    prop_assert!(!denied_now(&g, c.peer));
                }
            }
        }
    }

    /// Per-user restrictions (§11): logins, the connect-time rule for a
    /// `nopass` `default`, re-checks and the lock-out guard.
    mod users {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        /// Effects with the ACL users of the clients.
        #[derive(Default)]
        struct UserFx {
            inner: Fx,
            users: HashMap<u64, String>,
            nopass: bool,
            nopass_lookups: u32,
        }

        impl Effects for UserFx {
            fn refuse(&mut self, id: u64) {
                self.inner.refuse(id);
            }
            fn close(&mut self, id: u64) -> bool {
                self.inner.close(id)
            }
            fn log(&mut self, level: Level, line: &str) {
                self.inner.log(level, line);
            }
            fn now_ms(&mut self) -> i64 {
                self.inner.now_ms()
            }
            fn arm_log_flush(&mut self, after_ms: i64) {
                self.inner.arm_log_flush(after_ms);
            }
            fn login_of(&mut self, id: u64) -> Option<String> {
                let user = self.users.get(&id)?.clone();
                (user != "default" || self.nopass).then_some(user)
            }
            fn default_nopass(&mut self) -> bool {
                self.nopass_lookups += 1;
                self.nopass
            }
        }

        /// Groups `aa` (10.0.0.1) and `bb` (10.0.0.2), `app` bound to `aa`.
        fn bound() -> Whitelist {
            let w = wl(&["10.0.0.1"], 1);
            let w = w
                .plan(
                    Change::Add {
                        group: GroupName::parse(b"bb").unwrap(),
                        entries: vec![parse_entry(b"10.0.0.2").unwrap()],
                        note: Default::default(),
                    },
                    None,
                )
                .unwrap()
                .next
                .unwrap();
            bind(&w, "aa", "app")
        }

        fn bind(w: &Whitelist, group: &str, user: &str) -> Whitelist {
            let change = Change::Bind { group: GroupName::parse(group.as_bytes()).unwrap(), users: vec![user.into()] };
            w.plan(change, None).unwrap().next.unwrap()
        }

        fn gate(w: Whitelist) -> (Gate, UserFx) {
            let mut g = Gate::new(false);
            g.users_enforced = true;
            no_loopback(&mut g);
            let mut fx = UserFx::default();
            g.commit(w, &mut fx);
            (g, fx)
        }

        #[test]
        fn a_bound_user_logs_in_only_from_its_groups() {
            let (mut g, mut fx) = gate(bound());
            let outside = Conn::new(ip("10.0.0.2"), 7);
            let inside = Conn::new(ip("10.0.0.1"), 7);
            assert_eq!(g.admit(1, outside, &mut fx), Admission::Admit);
            assert_eq!(g.login(1, outside, "app", &mut fx), Login::Refuse);
            assert_eq!(g.login(1, outside, "bob", &mut fx), Login::Allow);
            assert_eq!(g.login(2, inside, "app", &mut fx), Login::Allow);
            assert_eq!(g.stats().auth_denied, 1);
            let row = g.denied().iter().next().copied().unwrap();
            assert_eq!((row.peer, row.reason), (ip("10.0.0.2"), DeniedReason::User));
            assert_eq!(
                fx.inner.lines.last().unwrap().1,
                "refused login as user 'app' from 10.0.0.2:7 (client id 1): the user is bound to whitelist groups \
                 that do not match the address"
            );
            // Exempt clients are exempt here too.
            assert_eq!(g.login(3, Conn::new(Peer::Unix, 0), "app", &mut fx), Login::Allow);
            g.config.allow_unixsocket = false;
            assert_eq!(g.login(3, Conn::new(Peer::Unix, 0), "app", &mut fx), Login::Refuse);
            g.config.allow_loopback = true;
            assert_eq!(g.login(4, Conn::new(ip("127.0.0.5"), 1), "app", &mut fx), Login::Allow);
            // Monitor: reported, let through.
            g.config.mode = Mode::Monitor;
            assert_eq!(g.login(1, outside, "app", &mut fx), Login::Allow);
            assert_eq!((g.stats().auth_denied, g.stats().auth_would_deny), (2, 1));
            // Off: nothing.
            g.config.mode = Mode::Off;
            assert_eq!(g.login(1, outside, "app", &mut fx), Login::Allow);
            assert_eq!((g.stats().auth_denied, g.stats().auth_would_deny), (2, 1));
        }

        #[test]
        fn without_auth_callbacks_bindings_are_kept_but_nothing_is_enforced() {
            let (mut g, mut fx) = gate(Whitelist::default());
            g.users_enforced = false;
            g.commit(bound(), &mut fx);
            g.commit(bind(&bound(), "bb", "ops"), &mut fx);
            let warnings: Vec<_> = fx.inner.lines.iter().filter(|(_, l)| l.contains("not enforced")).collect();
            assert_eq!(warnings.len(), 1, "{:?}", fx.inner.lines);
            let outside = Conn::new(ip("10.0.0.2"), 7);
            assert_eq!(g.login(1, outside, "app", &mut fx), Login::Allow);
            fx.users.insert(1, String::from("app"));
            g.admit(1, outside, &mut fx);
            g.recheck(&mut fx);
            assert!(fx.inner.closed.is_empty());
            assert_eq!(g.stats().auth_denied, 0);
        }

        #[test]
        fn a_nopass_default_is_judged_at_connect_with_one_lookup_only_while_bound() {
            let (mut g, mut fx) = gate(bound());
            fx.nopass = true;
            assert_eq!(g.admit(1, Conn::new(ip("10.0.0.2"), 1), &mut fx), Admission::Admit);
            assert_eq!(fx.nopass_lookups, 0);
            g.commit(bind(g.whitelist(), "aa", "default"), &mut fx);
            fx.inner.closed.clear();
            assert_eq!(g.admit(2, Conn::new(ip("10.0.0.2"), 1), &mut fx), Admission::Refuse(Denial::User));
            assert_eq!(g.admit(3, Conn::new(ip("10.0.0.1"), 1), &mut fx), Admission::Admit);
            assert_eq!(fx.nopass_lookups, 1);
            assert_eq!((g.stats().denied, g.stats().auth_denied), (1, 1));
            // With a password, `default` clients are judged at AUTH instead.
            fx.nopass = false;
            assert_eq!(g.admit(4, Conn::new(ip("10.0.0.2"), 1), &mut fx), Admission::Admit);
            assert_eq!(g.stats().checked, g.stats().allowed + g.stats().denied + g.stats().would_deny);
        }

        #[test]
        fn a_change_closes_a_bound_users_connection_outside_its_groups() {
            let (mut g, mut fx) = gate(wl(&["10.0.0.1", "10.0.0.2"], 1));
            for (id, user) in [(1, "app"), (2, "app"), (3, "bob")] {
                fx.users.insert(id, user.into());
            }
            g.admit(1, Conn::new(ip("10.0.0.1"), 1), &mut fx);
            g.admit(2, Conn::new(ip("10.0.0.2"), 1), &mut fx);
            g.admit(3, Conn::new(ip("10.0.0.2"), 1), &mut fx);
            let w = g.whitelist().clone();
            let w = w
                .plan(
                    Change::Add {
                        group: GroupName::parse(b"cc").unwrap(),
                        entries: vec![parse_entry(b"10.0.0.1").unwrap()],
                        note: Default::default(),
                    },
                    None,
                )
                .unwrap()
                .next
                .unwrap();
            g.commit(bind(&w, "cc", "app"), &mut fx);
            assert_eq!(fx.inner.closed, vec![2]);
            assert_eq!((g.stats().closed_on_change, g.stats().auth_denied), (1, 1));
        }

        #[test]
        fn the_guard_refuses_a_change_that_locks_the_callers_user_out() {
            let w = bound();
            let caller = |peer, force, in_multi| Caller { peer: Some(peer), in_multi, force };
            let policy = Settings::default().policy();
            let refusal = lockout_user(&w, policy, caller(ip("10.0.0.2"), false, false), "app").unwrap_err();
            assert_eq!(
                refusal.to_string(),
                "ERR this change would disconnect your own connection from 10.0.0.2; add FORCE to apply it anyway"
            );
            assert_eq!(lockout_user(&w, policy, caller(ip("10.0.0.2"), true, false), "app"), Ok(()));
            assert!(lockout_user(&w, policy, caller(ip("10.0.0.2"), true, true), "app").is_err());
            assert_eq!(lockout_user(&w, policy, caller(ip("10.0.0.1"), false, false), "app"), Ok(()));
            assert_eq!(lockout_user(&w, policy, caller(ip("10.0.0.2"), false, false), "bob"), Ok(()));
            assert_eq!(lockout_user(&w, policy, caller(Peer::Unix, false, false), "app"), Ok(()));
            assert_eq!(lockout_user(&w, policy, Caller { peer: None, in_multi: false, force: false }, "app"), Ok(()));
        }

        #[derive(Clone, Debug)]
        enum Event {
            Connect(u8),
            Login(u8, u8),
            Disconnect(u8),
            Entries(Vec<u8>),
            Bind(u8, u8),
            Unbind(u8, u8),
            Mode(u8),
            Loopback(bool),
            Nopass(bool),
        }

        const USERS: [&str; 3] = ["default", "app", "bob"];
        const GROUPS: [&str; 2] = ["aa", "bb"];

        fn event() -> impl Strategy<Value = Event> {
            prop_oneof![
                3 => any::<u8>().prop_map(Event::Connect),
                3 => (any::<u8>(), any::<u8>()).prop_map(|(i, u)| Event::Login(i, u)),
                1 => any::<u8>().prop_map(Event::Disconnect),
                2 => proptest::collection::vec(any::<u8>(), 0..4).prop_map(Event::Entries),
                2 => (any::<u8>(), any::<u8>()).prop_map(|(g, u)| Event::Bind(g, u)),
                1 => (any::<u8>(), any::<u8>()).prop_map(|(g, u)| Event::Unbind(g, u)),
                1 => any::<u8>().prop_map(Event::Mode),
                1 => any::<bool>().prop_map(Event::Loopback),
                1 => any::<bool>().prop_map(Event::Nopass),
            ]
        }

        fn peer(i: u8) -> Peer {
            match i % 6 {
                5 => Peer::Unix,
                4 => ip("127.0.0.1"),
                n => ip(&format!("10.0.0.{n}")),
            }
        }

        /// Keeps the bindings of `from` on a whitelist with new entries.
        fn with_entries(from: &Whitelist, bits: &[u8]) -> Whitelist {
            let mut groups: Vec<crate::store::GroupSpec> = GROUPS
                .iter()
                .map(|g| crate::store::GroupSpec {
                    name: GroupName::parse(g.as_bytes()).unwrap(),
                    attribute: crate::name::Attribute::Show,
                    entries: Vec::new(),
                    meta: Vec::new(),
                    usage: Vec::new(),
                    users: from
                        .group(&GroupName::parse(g.as_bytes()).unwrap())
                        .map_or_else(Vec::new, |g| g.users().to_vec()),
                })
                .collect();
            for b in bits {
                let e = parse_entry(format!("10.0.0.{}", b % 4).as_bytes()).unwrap();
                let g = &mut groups[usize::from(b / 4 % 2)];
                if !g.entries.contains(&e) {
                    g.entries.push(e);
                }
            }
            let version = from.version() + 1;
            Whitelist::default().plan(Change::Install { groups, version }, None).unwrap().next.unwrap()
        }

        proptest! {
            #[test]
            fn no_open_connection_is_logged_in_as_a_user_its_address_may_not_use(
                enforced in any::<bool>(),
                events in proptest::collection::vec(event(), 0..60),
            ) {
                let (mut g, mut fx) = gate(with_entries(&Whitelist::default(), &[]));
                g.users_enforced = enforced;
                let mut open: HashSet<u64> = HashSet::new();
                let mut next_id = 0u64;
                let mut stale = false;
                for e in events {
                    // Turning `nopass` on logs in the open `default` clients
                    // without a re-check (the server tells modules of no ACL
                    // change): they are judged at the next change.
                    match e {
                        Event::Nopass(true) => stale = true,
                        Event::Entries(_) | Event::Mode(_) | Event::Loopback(_) => stale = false,
                        _ => {}
                    }
                    let binds = matches!(e, Event::Bind(..));
                    match e {
                        Event::Connect(a) => {
                            next_id += 1;
                            // Every client starts as `default`.
                            fx.users.insert(next_id, String::from("default"));
                            let conn = Conn::new(peer(a), 1);
                            match g.admit(next_id, conn, &mut fx) {
                                Admission::Refuse(_) => {}
                                _ => { open.insert(next_id); }
                            }
                        }
                        Event::Login(i, u) => {
                            let Some(&id) = open.iter().min_by_key(|id| (**id).abs_diff(u64::from(i))) else { continue };
                            let user = USERS[usize::from(u % 3)];
                            let conn = g.conn(id).unwrap();
                            let may = g.whitelist().user_may_login(user, conn.peer, g.config.policy());
                            let login = g.login(id, conn, user, &mut fx);
                            let refuse = enforced && g.config.mode == Mode::Enforce && !may;
                            prop_assert_eq!(login == Login::Refuse, refuse);
                            if login == Login::Allow {
                                fx.users.insert(id, user.to_string());
                            }
                        }
                        Event::Disconnect(i) => {
                            let id = u64::from(i) % (next_id + 1);
                            open.remove(&id);
                            g.forget(id);
                        }
                        Event::Entries(bits) => {
                            let next = with_entries(g.whitelist(), &bits);
                            g.commit(next, &mut fx);
                        }
                        Event::Bind(gr, u) | Event::Unbind(gr, u) => {
                            let group = GroupName::parse(GROUPS[usize::from(gr % 2)].as_bytes()).unwrap();
                            let users = vec![USERS[usize::from(u % 3)].to_string()];
                            let change = if binds { Change::Bind { group, users } } else { Change::Unbind { group, users } };
                            if let Some(next) = g.whitelist().plan(change, None).unwrap().next {
                                g.commit(next, &mut fx);
                                stale = false;
                            }
                        }
                        Event::Mode(m) => {
                            g.config.mode = Mode::from_code(i32::from(m % 3)).unwrap();
                            g.recheck(&mut fx);
                        }
                        Event::Loopback(on) => {
                            g.config.allow_loopback = on;
                            g.recheck(&mut fx);
                        }
                        Event::Nopass(on) => fx.nopass = on,
                    }
                    for id in fx.inner.closed.drain(..).chain(fx.inner.refused.drain(..)) {
                        open.remove(&id);
                    }
                    let s = *g.stats();
                    // In enforce mode nobody is open as a user its address may not use
                    // (a `default` that needs a password has not logged in yet).
                    if g.config.mode == Mode::Enforce && enforced && !stale {
                        let policy = g.config.policy();
                        for id in &open {
                            let c = g.conn(*id).unwrap();
                            if let Some(user) = fx.login_of(*id) {
                                prop_assert!(
                                    g.whitelist().user_may_login(&user, c.peer, policy),
                                    "client {} from {:?} is open as {}", id, c.peer, user
                                );
                            }
                        }
                    }
                    if !enforced {
                        prop_assert_eq!(s.auth_denied + s.auth_would_deny, 0);
                    }
                }
            }
        }
    }
}

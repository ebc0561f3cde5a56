//! The group store: named groups of entries, the version counter and the
//! compiled matcher, changed only through validated, all-or-nothing plans.
//!
//! A change is planned first ([`Whitelist::plan`]): the plan holds the complete
//! next state, so the caller can judge it (lock-out protection) before it
//! commits by swapping it in. Nothing is half-applied, whatever fails.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::fmt;
use std::sync::Arc;

use crate::entry::{Addr, Entries, Entry};
use crate::logins::Logins;
use crate::matcher::{GroupId, Hit, Indexes, Matcher, Members, MAX_GROUPS, NONE};
use crate::name::{Attribute, GroupName};

/// The largest version: replies, INFO and documents show it as a signed
/// 64-bit integer. Past it the version stays there, and `IFVERSION` could
/// no longer tell one change from the next. So only trusted data (aux data, a
/// replicated or AOF-loaded `IMPORT`, which must reproduce the primary's state
/// whatever it holds) may set the version above [`MAX_CLIENT_VERSION`];
/// clients go past it one change at a time, and would need about 2^63 changes
/// to get here. A whitelist loaded with this version keeps it.
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// The largest version a document from an ordinary client may carry: 2^53 − 1,
/// the largest integer JSON carries exactly. The cap keeps any client from
/// pinning the counter at [`MAX_VERSION`], where every later change would
/// leave it unmoved and `IFVERSION` would let writers overwrite each other.
pub const MAX_CLIENT_VERSION: u64 = (1 << 53) - 1;

/// The longest comment, in bytes.
pub const MAX_COMMENT: usize = 128;

/// The longest `TTL`, and how far ahead an `EXPIREAT` may be: one year.
pub const MAX_TTL: u64 = 31_536_000;

use crate::notes::Notes;
pub use crate::notes::{Meta, MetaRef};

/// An entry's usage figures: this server's own, never a change.
///
/// This is how they are given and shown; a group keeps them as a compact
/// [`Stat`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// The unix second it entered its group.
    pub added: u64,
    /// Connections it admitted.
    pub hits: u64,
    /// The unix second of the last of them (0: never).
    pub last_hit: u64,
}

/// An entry's usage figures as a group keeps them: seconds as unsigned
/// 32-bit unix seconds (enough until 2106; later ones are held as the last
/// second that fits), the count in 64 bits, as a busy entry can admit more
/// than 2^32 connections in a few days. 16 bytes where [`Usage`] takes 24.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stat {
    hits: u64,
    added: u32,
    last_hit: u32,
}

/// A unix second as a [`Stat`] keeps it.
#[inline]
fn second(at: u64) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

impl From<Usage> for Stat {
    fn from(u: Usage) -> Stat {
        Stat { hits: u.hits, added: second(u.added), last_hit: second(u.last_hit) }
    }
}

impl From<Stat> for Usage {
    fn from(s: Stat) -> Usage {
        Usage { added: u64::from(s.added), hits: s.hits, last_hit: u64::from(s.last_hit) }
    }
}

/// A comment as `COMMENT` and documents give it: 0 to [`MAX_COMMENT`]
/// bytes of UTF-8 without control characters; `None` when it is not.
pub fn parse_comment(raw: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(raw).ok().filter(|t| t.len() <= MAX_COMMENT)?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// The expiry a `SET` or `ADD` gives the entries it names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expiry {
    /// None given: `ADD` keeps what a held entry has, `SET` gives none.
    #[default]
    Unchanged,
    /// `PERSIST`: none.
    Persist,
    /// `TTL` / `EXPIREAT`: this unix second.
    At(u64),
}

/// The comment and expiry a `SET` or `ADD` gives the entries it names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Note {
    /// `COMMENT text`: `Some("")` clears, `None` leaves it (`ADD`) or
    /// gives none (`SET`).
    pub comment: Option<Box<str>>,
    /// The expiry.
    pub expiry: Expiry,
}

impl Note {
    /// The meta of an entry that had `old` (`None`: a new one) after this
    /// note; `replace`: `SET`, which gives exactly the note.
    fn apply(&self, old: Option<&Meta>, replace: bool) -> Meta {
        let keep = old.filter(|_| !replace);
        let comment = match &self.comment {
            Some(c) if c.is_empty() => None,
            Some(c) => Some(c.clone()),
            None => keep.and_then(|m| m.comment.clone()),
        };
        let expires = match self.expiry {
            Expiry::Unchanged => keep.and_then(|m| m.expires),
            Expiry::Persist => None,
            Expiry::At(at) => Some(at),
        };
        Meta { comment, expires }
    }
}

/// One named group.
#[derive(Clone, Debug)]
pub struct Group {
    /// The matcher's id for it, stable while it exists.
    id: GroupId,
    name: GroupName,
    attribute: Attribute,
    entries: Arc<Entries>,
    /// The comments and expiries of the entries that have one.
    notes: Arc<Notes>,
    /// Each entry's usage, at its stat index (a hit finds its entry by the
    /// stat index the matcher names).
    stats: Box<[Stat]>,
    /// The stat indexes no entry has, ascending: entry `i` has the `i`-th
    /// index not among them. An expiry sweep removes entries without moving
    /// the figures of the others (the matcher's records name them by stat
    /// index, and stay valid): their slots stay as holes until the group
    /// next changes.
    stat_holes: Arc<[u32]>,
    /// The entries the matcher holds: those not expired at the whitelist's
    /// clock (the same list as `entries` when none is).
    live: Arc<Entries>,
    /// The stat indexes none of `live` has, ascending (the holes and the
    /// indexes of the entries expired at the clock).
    live_holes: Arc<[u32]>,
    /// The entries held but expired at the whitelist's clock, in order:
    /// the rest of `entries` (what the primary's sweep removes).
    dead: Arc<[Entry]>,
    hits: u64,
    /// ACL users bound to it (§11), sorted, without duplicates.
    users: Arc<Vec<String>>,
}

/// A group's content before it is compiled.
struct Body {
    attribute: Attribute,
    entries: Vec<Entry>,
    meta: Vec<Meta>,
    usage: Vec<Usage>,
}

impl Group {
    fn build(id: GroupId, name: GroupName, body: Body, users: Arc<Vec<String>>, hits: u64, clock: u64) -> Group {
        let Body { attribute, entries, meta, usage } = body;
        let stats: Box<[Stat]> =
            (0..entries.len()).map(|i| Stat::from(usage.get(i).copied().unwrap_or_default())).collect();
        let packed = Arc::new(Entries::new(&entries));
        let notes = Arc::new(Notes::new(meta.get(..entries.len()).unwrap_or(&meta)));
        let stat_holes: Arc<[u32]> = Arc::from(Vec::new());
        let (live, live_holes, dead) = live_entries(&packed, &notes, &stat_holes, clock);
        Group { id, name, attribute, entries: packed, notes, stats, stat_holes, live, live_holes, dead, hits, users }
    }

    /// What the matcher holds of this group.
    fn members(&self) -> Members<'_> {
        (self.id, &self.live, Indexes::Skipping(&self.live_holes))
    }

    /// The comment and expiry of entry `i`.
    pub fn meta(&self, i: usize) -> MetaRef<'_> {
        self.notes.get(i)
    }

    /// The comments and expiries of its entries.
    pub fn notes(&self) -> &Notes {
        &self.notes
    }

    /// The usage of entry `i`.
    pub fn usage(&self, i: usize) -> Usage {
        self.stats.get(stat_index(&self.stat_holes, i)).copied().map(Usage::from).unwrap_or_default()
    }

    /// The position of `entry`, if the group holds it: a walk over the
    /// entries (the group keeps no index; the hot path never asks, as the
    /// matcher names where the winning entry's usage is).
    pub fn position(&self, entry: &Entry) -> Option<usize> {
        self.entries.iter().position(|e| e == *entry)
    }

    /// The position of each of `named` that the group holds: one walk over
    /// the entries, whatever the number named.
    fn positions(&self, named: &[Entry]) -> HashMap<Entry, usize> {
        let wanted: HashSet<&Entry> = named.iter().collect();
        let mut found = HashMap::with_capacity_and_hasher(wanted.len().min(self.entries.len()), Default::default());
        for (i, e) in self.entries.iter().enumerate() {
            if wanted.contains(&e) {
                found.insert(e, i);
            }
        }
        found
    }

    fn body(&self) -> Body {
        Body {
            attribute: self.attribute,
            entries: self.entries.to_vec(),
            meta: self.notes.to_meta(self.entries.len()),
            usage: (0..self.entries.len()).map(|i| self.usage(i)).collect(),
        }
    }
}

/// The stat index of entry `i`: the `i`-th index not among `holes`
/// (ascending; see [`Group::stat_holes`]).
#[inline]
fn stat_index(holes: &[u32], i: usize) -> usize {
    // With `j` holes below it, entry `i` has index `i + j`: `j` counts the
    // holes `h` (the `k`-th, from 0) with `h - k <= i`, a prefix of them,
    // as `h - k` never falls from one hole to the next.
    let (mut lo, mut hi) = (0, holes.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let h = holes.get(mid).map_or(usize::MAX, |&h| h as usize);
        if h.saturating_sub(mid) <= i {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    i + lo
}

/// The entries of a group that admit at unix second `clock`, with the
/// stat indexes none of them has, and those that do not admit.
fn live_entries(
    entries: &Arc<Entries>,
    notes: &Notes,
    stat_holes: &Arc<[u32]>,
    clock: u64,
) -> (Arc<Entries>, Arc<[u32]>, Arc<[Entry]>) {
    let dead = notes.expiring_where(|at| at <= clock);
    if dead.is_empty() {
        return (Arc::clone(entries), Arc::clone(stat_holes), Arc::from(Vec::new()));
    }
    let (live, expired) = entries.split(&dead);
    (Arc::new(live), with_holes(stat_holes, &dead), expired.into())
}

/// The holes once the entries at positions `gone` (ascending) leave too:
/// `holes` and the stat indexes of those entries, ascending.
fn with_holes(holes: &[u32], gone: &[u32]) -> Arc<[u32]> {
    let mut more: Vec<u32> =
        gone.iter().map(|&i| u32::try_from(stat_index(holes, i as usize)).unwrap_or(u32::MAX)).collect();
    more.extend_from_slice(holes);
    more.sort_unstable();
    more.dedup();
    more.into()
}

impl Group {
    /// The group's name.
    pub fn name(&self) -> &GroupName {
        &self.name
    }

    /// Whether listings show it.
    pub fn attribute(&self) -> Attribute {
        self.attribute
    }

    /// Its entries, in the order they were added.
    pub fn entries(&self) -> &Entries {
        &self.entries
    }

    /// Connections admitted by one of its entries since the server started
    /// (not persisted).
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// The ACL users bound to it, sorted by name.
    pub fn users(&self) -> &[String] {
        &self.users
    }
}

/// The limits an ordinary client's change must respect (never applied to
/// replicated or loaded changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `whitelist.max-groups`.
    pub max_groups: usize,
    /// `whitelist.max-entries-per-group`.
    pub max_entries_per_group: usize,
}

/// A change that would break a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitError {
    /// Too many groups.
    Groups {
        /// Groups the whitelist would hold.
        would: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Too many entries in one group.
    Entries {
        /// The group.
        group: GroupName,
        /// Entries it would hold.
        would: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A binding names a group that does not exist.
    NoSuchGroup(GroupName),
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::Groups { would, limit } => {
                write!(f, "the whitelist would hold {would} groups, the limit is {limit} (whitelist.max-groups)")
            }
            LimitError::Entries { group, would, limit } => write!(
                f,
                "group '{group}' would hold {would} entries, the limit is {limit} (whitelist.max-entries-per-group)"
            ),
            LimitError::NoSuchGroup(group) => write!(f, "no such group '{group}'"),
        }
    }
}

impl std::error::Error for LimitError {}

/// A group as a whole-whitelist replacement gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    /// Its name.
    pub name: GroupName,
    /// Its attribute.
    pub attribute: Attribute,
    /// Its entries, in order, without duplicates.
    pub entries: Vec<Entry>,
    /// Each entry's meta, in order; empty when none has any.
    pub meta: Vec<Meta>,
    /// Each entry's usage, in order (persisted data only; empty otherwise).
    pub usage: Vec<Usage>,
    /// The ACL users bound to it (any order; duplicates are dropped).
    pub users: Vec<String>,
}

impl GroupSpec {
    /// A group of plain entries, bound to no user.
    pub fn plain(name: GroupName, attribute: Attribute, entries: Vec<Entry>) -> GroupSpec {
        GroupSpec { name, attribute, entries, meta: Vec::new(), usage: Vec::new(), users: Vec::new() }
    }
}

/// A change to the whitelist, already parsed and validated entry by entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Create a group or replace its entries; keep its attribute unless given.
    Set {
        /// The group.
        group: GroupName,
        /// Its new entries (duplicates are dropped, first one kept).
        entries: Vec<Entry>,
        /// A new attribute, if any.
        attribute: Option<Attribute>,
        /// The comment and expiry of every entry.
        note: Note,
    },
    /// Append entries, creating the group if needed.
    Add {
        /// The group.
        group: GroupName,
        /// Entries to append (those already held keep their place; the
        /// note updates them).
        entries: Vec<Entry>,
        /// The comment and expiry of the entries named.
        note: Note,
    },
    /// Remove entries; a group left empty stays.
    Remove {
        /// The group.
        group: GroupName,
        /// Entries to remove (those not held are no-ops).
        entries: Vec<Entry>,
    },
    /// Delete whole groups.
    Delete {
        /// The groups (missing ones are no-ops).
        groups: Vec<GroupName>,
    },
    /// Replace the whole whitelist (an ordinary client's `IMPORT`). When the
    /// groups change, the version becomes the larger of the current version
    /// plus one and `version`, so a control plane's edit always raises it and a
    /// restored state keeps its version; when they do not, nothing changes.
    Replace {
        /// Every group, sorted by name without duplicates.
        groups: Vec<GroupSpec>,
        /// The version the replacement carries.
        version: u64,
    },
    /// Install a whole whitelist exactly as it is, version included (an
    /// `IMPORT` from the primary or the AOF: the primary propagates the state
    /// its own change led to, so the replica and a replay reach that state and
    /// no condition is judged a second time).
    Install {
        /// Every group, sorted by name without duplicates.
        groups: Vec<GroupSpec>,
        /// The version to install.
        version: u64,
    },
    /// Bind ACL users to an existing group (§11).
    Bind {
        /// The group.
        group: GroupName,
        /// The users (those already bound are no-ops).
        users: Vec<String>,
    },
    /// Unbind ACL users from an existing group.
    Unbind {
        /// The group.
        group: GroupName,
        /// The users (those not bound are no-ops).
        users: Vec<String>,
    },
}

/// What a planned change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The command's integer reply: entries held (`SET`), added (`ADD`),
    /// removed (`REMOVE`), groups deleted (`DEL`), groups held (replace).
    pub reply: usize,
    /// Entries that are new across the whitelist.
    pub added: usize,
    /// Entries that are gone across the whitelist.
    pub removed: usize,
}

/// A validated change with the complete state it leads to.
#[derive(Debug)]
pub struct Plan {
    /// The next state; `None` when the change changes nothing.
    pub next: Option<Whitelist>,
    /// What it does.
    pub outcome: Outcome,
}

/// What an expiry sweep does ([`Whitelist::sweep`]).
#[derive(Debug)]
pub struct Sweep {
    /// The state after it.
    pub next: Whitelist,
    /// Each group swept, by name, with the entries removed, in order.
    pub swept: Vec<(GroupName, Vec<Entry>)>,
    /// Entries removed across the whitelist.
    pub removed: usize,
}

/// What an expiry sweep made in place removed
/// ([`Whitelist::sweep_in_place`]).
#[derive(Debug)]
pub struct Swept {
    /// Each group swept, by name, with the entries removed, in order.
    pub swept: Vec<(GroupName, Vec<Entry>)>,
    /// Entries removed across the whitelist.
    pub removed: usize,
}

/// How exempt clients are treated: `whitelist.allow-loopback` and
/// `whitelist.allow-unixsocket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Loopback clients are always admitted.
    pub allow_loopback: bool,
    /// Unix-socket clients are always admitted.
    pub allow_unixsocket: bool,
    /// `whitelist.when-empty deny`: an empty whitelist admits only exempt
    /// clients.
    pub deny_when_empty: bool,
}

/// Who is connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A TCP client with this address.
    Ip(Addr),
    /// A unix-socket client (no address to match).
    Unix,
    /// A TCP client whose address could not be read: it matches nothing.
    Unknown,
}

/// Why a client is admitted or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No group holds an entry: the whitelist is off (`when-empty allow`),
    /// or admits only exempt clients (`when-empty deny`).
    WhitelistEmpty,
    /// An entry holds the address.
    Entry,
    /// A loopback client, admitted by `whitelist.allow-loopback`.
    Loopback,
    /// A unix-socket client, admitted by `whitelist.allow-unixsocket`.
    UnixSocket,
    /// Nothing admits it.
    NoMatch,
}

impl Reason {
    /// The reason as `WHITELIST.CHECK` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WhitelistEmpty => "whitelist-empty",
            Reason::Entry => "entry",
            Reason::Loopback => "loopback",
            Reason::UnixSocket => "unixsocket",
            Reason::NoMatch => "no-match",
        }
    }
}

/// The decision for one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Admitted or not.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The group and entry that admitted it (for [`Whitelist::record_hit`]).
    pub hit: Option<Hit>,
}

/// A group's records that leave the matcher: its id, the entries and
/// their stat indexes.
type Dropped = (GroupId, Entries, Vec<u32>);

/// The matcher after a coming advance of the clock, computed ahead of it
/// and away from the server's thread (see [`Whitelist::prepare_advance`]):
/// the advance at that second then takes it as it is, if nothing changed.
#[derive(Debug)]
pub struct Prepared {
    /// The matcher it starts from (shared, not copied).
    base: Matcher,
    /// What the advance takes out of it.
    dropped: Vec<Dropped>,
    /// The group ranks it was made with.
    ranks: Vec<u32>,
    /// The result, once computed.
    next: Option<Matcher>,
}

impl Prepared {
    /// Computes the matcher without the records that leave it: the work of
    /// the advance, on whatever thread runs this.
    pub fn compute(&mut self) {
        let mut next = self.base.clone();
        next.remove(self.dropped.iter().map(|(id, e, at)| (*id, e, Indexes::Listed(at))), &self.ranks);
        self.next = Some(next);
    }

    /// Whether [`Prepared::compute`] has run.
    pub fn is_ready(&self) -> bool {
        self.next.is_some()
    }
}

/// The whole whitelist: groups sorted by name, the version, the matcher.
#[derive(Clone, Debug, Default)]
pub struct Whitelist {
    groups: Vec<Group>,
    version: u64,
    entries: usize,
    matcher: Matcher,
    /// For each group id, the group's index in `groups` (its rank in name
    /// order), or [`NONE`] for a free id.
    ranks: Vec<u32>,
    /// The unix second the matcher is compiled for: entries expired by then
    /// are left out of it.
    clock: u64,
    /// Whether any user, and `default`, is bound: asked at every connection
    /// and login, so kept rather than found by a walk of the groups.
    bound: Bound,
    /// Who may log in from where, compiled (empty while no user is bound).
    logins: Arc<Logins>,
}

/// What the connection hook and the auth callback ask of the bindings
/// before anything else (see [`Whitelist::has_bindings`]).
#[derive(Clone, Copy, Debug, Default)]
struct Bound {
    any: bool,
    default: bool,
}

/// Refuses more groups than the configured limit, and, for every origin,
/// more than the matcher can number.
fn check_group_count(would: usize, limits: Option<&Limits>) -> Result<(), LimitError> {
    let limit = limits.map_or(MAX_GROUPS, |l| l.max_groups.min(MAX_GROUPS));
    if would > limit {
        return Err(LimitError::Groups { would, limit });
    }
    Ok(())
}

/// User names sorted, without duplicates.
fn sorted_users(mut users: Vec<String>) -> Vec<String> {
    users.sort();
    users.dedup();
    users
}

fn dedup(entries: Vec<Entry>) -> Vec<Entry> {
    let mut seen = HashSet::with_capacity_and_hasher(entries.len(), Default::default());
    entries.into_iter().filter(|e| seen.insert(*e)).collect()
}

impl Whitelist {
    /// A whitelist restored as a whole (from persisted data): groups must be
    /// sorted by name without duplicates, entries canonical and unique per
    /// group. Limits do not apply.
    pub fn restore(groups: Vec<GroupSpec>, version: u64) -> Whitelist {
        Whitelist::restore_at(groups, version, 0)
    }

    /// [`Whitelist::restore`] with the matcher compiled for unix second
    /// `clock` (entries expired by then admit nobody).
    pub fn restore_at(groups: Vec<GroupSpec>, version: u64, clock: u64) -> Whitelist {
        let groups: Vec<Group> = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                let body = Body { attribute: g.attribute, entries: g.entries, meta: g.meta, usage: g.usage };
                let users = Arc::new(sorted_users(g.users));
                Group::build(u32::try_from(i).unwrap_or(NONE), g.name, body, users, 0, clock)
            })
            .collect();
        let ranks: Vec<u32> = (0..groups.len()).map(|i| u32::try_from(i).unwrap_or(NONE)).collect();
        let matcher = Matcher::build(groups.iter().map(Group::members), &ranks);
        let entries = groups.iter().map(|g| g.entries.len()).sum();
        Whitelist { groups, version, entries, matcher, ranks, clock, bound: Bound::default(), logins: Arc::default() }
            .with_bound()
    }

    /// Every group as a [`GroupSpec`], meta, usage and bound users included.
    pub fn specs(&self) -> Vec<GroupSpec> {
        self.groups
            .iter()
            .map(|g| {
                let b = g.body();
                GroupSpec {
                    name: g.name.clone(),
                    attribute: b.attribute,
                    entries: b.entries,
                    meta: b.meta,
                    usage: b.usage,
                    users: g.users.to_vec(),
                }
            })
            .collect()
    }

    /// The unix second the matcher is compiled for.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Moves the clock to `now`: entries expired by then leave the matcher
    /// (they stay held until removed). `true` when the matcher changed.
    pub fn advance(&mut self, now: u64) -> bool {
        self.advance_prepared(now, None)
    }

    /// What moving the clock to `at` will take out of the matcher, as work
    /// that can run on another thread ([`Prepared::compute`]) ahead of that
    /// second; `None` when no entry expires by then.
    pub fn prepare_advance(&self, at: u64) -> Option<Prepared> {
        let dropped: Vec<Dropped> = self
            .groups
            .iter()
            .filter(|g| g.notes.any_expiry(|x| x > self.clock && x <= at))
            .map(|g| {
                let gone = g.notes.expiring_where(|x| x > self.clock && x <= at);
                let gone_at = gone
                    .iter()
                    .map(|&i| u32::try_from(stat_index(&g.stat_holes, i as usize)).unwrap_or(u32::MAX))
                    .collect();
                (g.id, Entries::new(&g.entries.pick(&gone)), gone_at)
            })
            .collect();
        (!dropped.is_empty()).then(|| Prepared {
            base: self.matcher.clone(),
            dropped,
            ranks: self.ranks.clone(),
            next: None,
        })
    }

    /// [`Whitelist::advance`], with the matcher `prepared` ahead when it
    /// was prepared from this very matcher for exactly the records this
    /// advance takes out (any change since, or another second, and it is
    /// set aside: the advance then does the work itself).
    pub fn advance_prepared(&mut self, now: u64, prepared: Option<Prepared>) -> bool {
        if now <= self.clock {
            return false;
        }
        let before = self.clock;
        self.clock = now;
        // Only the records of what expired since go (the matcher holds what
        // had not expired by the old clock): the others name the same
        // entries at the same stat indexes as before.
        let mut dropped: Vec<Dropped> = Vec::with_capacity(self.groups.len());
        let mut bound_changed = false;
        for g in &mut self.groups {
            if !g.notes.any_expiry(|at| at > before && at <= now) {
                continue;
            }
            bound_changed |= !g.users.is_empty();
            // What expired by now leaves the live list; of it, what expired
            // since the old clock leaves the matcher.
            let expired = g.notes.expired_by(now);
            let dead: Vec<u32> = expired.iter().map(|&(i, _)| i).collect();
            let (live, dead_entries) = g.entries.split(&dead);
            let (mut gone, mut gone_at) = (Vec::with_capacity(expired.len()), Vec::with_capacity(expired.len()));
            for (&e, &(i, at)) in dead_entries.iter().zip(&expired) {
                if at > before {
                    gone.push(e);
                    gone_at.push(u32::try_from(stat_index(&g.stat_holes, i as usize)).unwrap_or(u32::MAX));
                }
            }
            dropped.push((g.id, Entries::new(&gone), gone_at));
            g.live = Arc::new(live);
            g.live_holes = with_holes(&g.stat_holes, &dead);
            g.dead = dead_entries.into();
        }
        if dropped.is_empty() {
            return false;
        }
        let ready = prepared.and_then(|p| {
            let fits = p.base.same_as(&self.matcher) && p.dropped == dropped && p.ranks == self.ranks;
            // Dropped when it does not fit, before the work: what it holds
            // of the matcher would keep it from being changed in place.
            fits.then_some(p.next).flatten()
        });
        match ready {
            Some(next) => self.matcher = next,
            None => self.matcher.remove(dropped.iter().map(|(id, e, at)| (*id, e, Indexes::Listed(at))), &self.ranks),
        }
        if bound_changed {
            self.logins = self.compile_logins();
        }
        true
    }

    /// The earliest expiry of an entry the matcher still holds.
    pub fn next_expiry(&self) -> Option<u64> {
        self.groups.iter().flat_map(|g| g.notes.expiries().iter().copied()).filter(|&at| at > self.clock).min()
    }

    /// Held entries that have an expiry.
    pub fn expiring(&self) -> usize {
        self.groups.iter().map(|g| g.notes.expiring()).sum()
    }

    /// Whether some held entry has no expiry.
    pub fn has_permanent(&self) -> bool {
        self.groups.iter().any(|g| g.notes.expiring() < g.entries.len())
    }

    /// Whether some held entry has expired by unix second `now`: whether a
    /// primary has a sweep to run.
    pub fn has_expired(&self, now: u64) -> bool {
        self.groups.iter().any(|g| g.notes.any_expiry(|at| at <= now))
    }

    /// Per group, the held entries expired by unix second `now`, in order:
    /// what the primary's sweep removes.
    pub fn expired(&self, now: u64) -> Vec<(GroupName, Vec<Entry>)> {
        self.groups
            .iter()
            .filter(|g| g.notes.any_expiry(|at| at <= now))
            .map(|g| (g.name.clone(), g.entries.pick(&g.notes.expiring_where(|at| at <= now))))
            .collect()
    }

    /// The primary's expiry sweep at unix second `now`: the state without
    /// every held entry expired by then, with the groups swept and their
    /// removed entries in order (`None` when nothing has expired). See
    /// [`Whitelist::sweep_in_place`], which this runs on a copy.
    pub fn sweep(&self, now: u64, raise_version: bool) -> Option<Sweep> {
        if !self.has_expired(now) {
            return None;
        }
        let mut next = self.clone();
        let Swept { swept, removed } = next.sweep_in_place(now, raise_version)?;
        Some(Sweep { next, swept, removed })
    }

    /// The primary's expiry sweep at unix second `now`, made on this state:
    /// every held entry expired by then is removed, and the groups swept
    /// and their removed entries are returned in order (`None` when nothing
    /// has expired, and nothing changes).
    ///
    /// One state for the whole sweep, yet the version rises once per group
    /// swept (`raise_version`), as on a replica that replays one `REMOVE`
    /// per group; in cluster mode it stays where it is (§12).
    ///
    /// The removed entries already admit nobody (the clock is moved to
    /// `now` first), so the matcher is kept as it is: the figures of the
    /// remaining entries stay at their stat indexes, which its records name.
    /// Made in place, the sweep copies nothing of the groups it leaves alone
    /// (their usage figures above all, the largest part of a group), and of
    /// the groups it sweeps reads only the expiries and the removed entries.
    pub fn sweep_in_place(&mut self, now: u64, raise_version: bool) -> Option<Swept> {
        if !self.has_expired(now) {
            return None;
        }
        self.advance(now);
        // At the clock the entries that stay are the live ones, which the
        // matcher holds: the group takes those lists as they are.
        let at_clock = self.clock == now;
        let mut swept = Vec::new();
        let mut removed = 0;
        for g in &mut self.groups {
            if !g.notes.any_expiry(|at| at <= now) {
                continue;
            }
            let held = g.entries.len();
            let dead = g.notes.expiring_where(|at| at <= now);
            let gone = if held == dead.len() {
                let gone = g.entries.to_vec();
                g.stats = Box::default();
                g.entries = Arc::new(Entries::new(&[]));
                g.stat_holes = Arc::from(Vec::new());
                gone
            } else if at_clock {
                g.entries = Arc::clone(&g.live);
                g.stat_holes = Arc::clone(&g.live_holes);
                g.dead.to_vec()
            } else {
                let (kept, gone) = g.entries.split(&dead);
                g.stat_holes = with_holes(&g.stat_holes, &dead);
                g.entries = Arc::new(kept);
                gone
            };
            removed += gone.len();
            g.notes = Arc::new(g.notes.without(&dead));
            // `live` and `live_holes` stay: they never held what expired. What
            // expired by the clock and stays held is what expired after now.
            g.dead = if at_clock {
                Arc::from(Vec::new())
            } else {
                g.entries.pick(&g.notes.expiring_where(|at| at <= self.clock)).into()
            };
            swept.push((g.name.clone(), gone));
        }
        self.entries -= removed;
        if raise_version {
            self.version = self.version.saturating_add(swept.len() as u64).min(MAX_VERSION);
        }
        Some(Swept { swept, removed })
    }

    /// Every group, sorted by name.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group called `name`.
    pub fn group(&self, name: &GroupName) -> Option<&Group> {
        self.index_of(name).ok().and_then(|i| self.groups.get(i))
    }

    fn index_of(&self, name: &GroupName) -> Result<usize, usize> {
        self.groups.binary_search_by(|g| g.name.cmp(name))
    }

    /// The version counter: raised by one by every change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Sets the version: in a cluster it is the Lamport clock of the merge
    /// (§12), which a change moves by other than one, and an expiry sweep
    /// not at all.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// The whitelist with the named groups replaced (`Some`) or deleted
    /// (`None`) exactly as given, as a cluster merge brings them, and the
    /// version set to `version`. Only those groups' matcher records are
    /// rebuilt; every other group is shared. The usage figures of entries
    /// that stay in their group stay with them; new ones are added at `now`.
    pub fn with_groups(&self, edits: Vec<(GroupName, Option<GroupSpec>)>, version: u64, now: u64) -> Whitelist {
        let mut edits = edits;
        edits.sort_by(|a, b| a.0.cmp(&b.0));
        edits.dedup_by(|a, b| a.0 == b.0);
        let mut users = Vec::new();
        let bodies = edits
            .into_iter()
            .map(|(name, spec)| {
                let body = spec.map(|s| {
                    let old = self.group(&name);
                    let kept = old.map_or_else(HashMap::default, |o| o.positions(&s.entries));
                    let usage = s
                        .entries
                        .iter()
                        .map(|e| match (old, kept.get(e)) {
                            (Some(o), Some(&i)) => o.usage(i),
                            _ => Usage { added: now, ..Usage::default() },
                        })
                        .collect();
                    users.push((name.clone(), s.users));
                    Body { attribute: s.attribute, entries: s.entries, meta: s.meta, usage }
                });
                (name, body)
            })
            .collect();
        let mut next = self.with_edits(bodies);
        for (name, u) in users {
            if next.group(&name).is_some_and(|g| *g.users != sorted_users(u.clone())) {
                next.restore_users(&name, u);
            }
        }
        next.version = version.min(MAX_VERSION);
        next
    }

    /// Entries across all groups.
    pub fn entry_count(&self) -> usize {
        self.entries
    }

    /// `true` when some group holds an entry (the whitelist is on).
    pub fn is_enabled(&self) -> bool {
        self.entries > 0
    }

    /// Bytes the compiled matcher holds.
    pub fn matcher_bytes(&self) -> usize {
        self.matcher.heap_bytes()
    }

    /// Decides on a client.
    #[inline]
    pub fn verdict(&self, peer: Peer, policy: Policy) -> Verdict {
        let allow = |reason, hit| Verdict { allowed: true, reason, hit };
        let empty = self.entries == 0;
        let reason = if empty { Reason::WhitelistEmpty } else { Reason::NoMatch };
        let deny = Verdict { allowed: false, reason, hit: None };
        match peer {
            Peer::Unix if policy.allow_unixsocket => allow(Reason::UnixSocket, None),
            _ if empty && !policy.deny_when_empty => allow(Reason::WhitelistEmpty, None),
            Peer::Ip(addr) => match self.matcher.lookup_hit(addr) {
                Some(g) => allow(Reason::Entry, Some(g)),
                None if policy.allow_loopback && addr.is_loopback() => allow(Reason::Loopback, None),
                None => deny,
            },
            Peer::Unix | Peer::Unknown => deny,
        }
    }

    /// The decision for an address with the group and entry that admit it
    /// (`WHITELIST.CHECK`).
    pub fn check(&self, addr: Addr, policy: Policy) -> (Verdict, Option<(&Group, Entry)>) {
        let verdict = self.verdict(Peer::Ip(addr), policy);
        let matched = match verdict.reason {
            Reason::Entry => self.matcher.lookup(addr).and_then(|(id, e)| self.group_by_id(id).map(|group| (group, e))),
            _ => None,
        };
        (verdict, matched)
    }

    /// The version after a change.
    fn bumped(&self) -> u64 {
        self.version.saturating_add(1).min(MAX_VERSION)
    }

    fn group_by_id(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(*self.ranks.get(id as usize)? as usize)
    }

    /// Counts a connection admitted by `hit` at unix second `now`: on its
    /// group and on its entry (one increment, one store).
    #[inline]
    pub fn record_hit(&mut self, hit: Hit, now: u64) {
        let Some(&index) = self.ranks.get(hit.group as usize) else {
            return;
        };
        if let Some(g) = self.groups.get_mut(index as usize) {
            g.hits = g.hits.wrapping_add(1);
            if let Some(s) = g.stats.get_mut(hit.index as usize) {
                s.hits = s.hits.wrapping_add(1);
                s.last_hit = second(now);
            }
        }
    }

    /// Validates `change` and computes the state it leads to. `limits` is
    /// `None` for replicated and loaded changes.
    pub fn plan(&self, change: Change, limits: Option<&Limits>) -> Result<Plan, LimitError> {
        self.plan_at(change, limits, self.clock)
    }

    /// [`Whitelist::plan`] at unix second `now`: new entries are `added`
    /// then, and the next state's matcher leaves out what expired by then.
    pub fn plan_at(&self, change: Change, limits: Option<&Limits>, now: u64) -> Result<Plan, LimitError> {
        let mut plan = match change {
            Change::Set { group, entries, attribute, note } => {
                self.plan_set(group, entries, attribute, &note, limits, now)
            }
            Change::Add { group, entries, note } => self.plan_add(group, entries, &note, limits, now),
            Change::Remove { group, entries } => Ok(self.plan_remove(group, entries)),
            Change::Delete { groups } => Ok(self.plan_delete(groups)),
            Change::Replace { groups, version } => self.plan_replace(groups, Some(version), limits, now),
            Change::Install { groups, version } => {
                self.plan_replace(groups, None, limits, now).map(|plan| self.installed(plan, version))
            }
            Change::Bind { group, users } => self.plan_binding(group, users, true),
            Change::Unbind { group, users } => self.plan_binding(group, users, false),
        }?;
        if let Some(next) = &mut plan.next {
            next.advance(now);
        }
        Ok(plan)
    }

    fn check_new_group(&self, limits: Option<&Limits>) -> Result<(), LimitError> {
        check_group_count(self.groups.len() + 1, limits)
    }

    fn check_size(group: &GroupName, would: usize, limits: Option<&Limits>) -> Result<(), LimitError> {
        match limits {
            Some(l) if would > l.max_entries_per_group => {
                Err(LimitError::Entries { group: group.clone(), would, limit: l.max_entries_per_group })
            }
            _ => Ok(()),
        }
    }

    fn plan_set(
        &self,
        name: GroupName,
        entries: Vec<Entry>,
        attribute: Option<Attribute>,
        note: &Note,
        limits: Option<&Limits>,
        now: u64,
    ) -> Result<Plan, LimitError> {
        let entries = dedup(entries);
        let existing = self.group(&name);
        if existing.is_none() {
            self.check_new_group(limits)?;
        }
        Self::check_size(&name, entries.len(), limits)?;
        let old: Vec<Entry> = existing.map_or_else(Vec::new, |g| g.entries.to_vec());
        let attr = attribute.or(existing.map(|g| g.attribute)).unwrap_or_default();
        let reply = entries.len();
        let meta = note.apply(None, true);
        let unchanged = existing
            .is_some_and(|g| g.attribute == attr && old == entries && (0..old.len()).all(|i| g.meta(i) == meta.view()));
        if unchanged {
            return Ok(Plan { next: None, outcome: Outcome { reply, added: 0, removed: 0 } });
        }
        // Usage of the entries kept stays with them.
        let kept = existing.map_or_else(HashMap::default, |g| g.positions(&entries));
        let added = entries.len() - kept.len();
        let removed = old.len() - kept.len();
        let usage = entries
            .iter()
            .map(|e| match (existing, kept.get(e)) {
                (Some(g), Some(&i)) => g.usage(i),
                _ => Usage { added: now, ..Usage::default() },
            })
            .collect();
        let body = Body { attribute: attr, meta: vec![meta; entries.len()], entries, usage };
        let next = self.with_group(name, Some(body));
        Ok(Plan { next: Some(next), outcome: Outcome { reply, added, removed } })
    }

    fn plan_add(
        &self,
        name: GroupName,
        entries: Vec<Entry>,
        note: &Note,
        limits: Option<&Limits>,
        now: u64,
    ) -> Result<Plan, LimitError> {
        let existing = self.group(&name);
        let mut body = existing.map_or_else(
            || Body { attribute: Attribute::default(), entries: Vec::new(), meta: Vec::new(), usage: Vec::new() },
            Group::body,
        );
        let held = body.entries.len();
        body.meta.resize(held, Meta::default());
        let mut changed = existing.is_none();
        let mut fresh: Vec<Entry> = Vec::new();
        let mut seen: HashSet<Entry> = HashSet::default();
        let entries = dedup(entries);
        let held_at = existing.map_or_else(HashMap::default, |g| g.positions(&entries));
        for e in entries {
            match held_at.get(&e).copied() {
                Some(i) => {
                    if let Some(m) = body.meta.get_mut(i) {
                        let next = note.apply(Some(m), false);
                        if next != *m {
                            *m = next;
                            changed = true;
                        }
                    }
                }
                None => {
                    if seen.insert(e) {
                        fresh.push(e);
                    }
                }
            }
        }
        if existing.is_none() {
            self.check_new_group(limits)?;
        }
        Self::check_size(&name, held + fresh.len(), limits)?;
        let added = fresh.len();
        if !changed && added == 0 {
            return Ok(Plan { next: None, outcome: Outcome::default() });
        }
        let meta = note.apply(None, false);
        for e in fresh {
            body.entries.push(e);
            body.meta.push(meta.clone());
            body.usage.push(Usage { added: now, ..Usage::default() });
        }
        let next = self.with_group(name, Some(body));
        Ok(Plan { next: Some(next), outcome: Outcome { reply: added, added, removed: 0 } })
    }

    fn plan_remove(&self, name: GroupName, entries: Vec<Entry>) -> Plan {
        let Some(existing) = self.group(&name) else {
            return Plan { next: None, outcome: Outcome::default() };
        };
        let gone: HashSet<Entry> = entries.into_iter().collect();
        let old = existing.body();
        let mut body = Body { attribute: old.attribute, entries: Vec::new(), meta: Vec::new(), usage: Vec::new() };
        for (i, e) in old.entries.iter().enumerate() {
            if !gone.contains(e) {
                body.entries.push(*e);
                body.meta.push(old.meta.get(i).cloned().unwrap_or_default());
                body.usage.push(old.usage.get(i).copied().unwrap_or_default());
            }
        }
        let removed = existing.entries.len() - body.entries.len();
        if removed == 0 {
            return Plan { next: None, outcome: Outcome::default() };
        }
        let next = self.with_group(name, Some(body));
        Plan { next: Some(next), outcome: Outcome { reply: removed, added: 0, removed } }
    }

    fn plan_delete(&self, names: Vec<GroupName>) -> Plan {
        let mut doomed: Vec<GroupName> = names.into_iter().filter(|n| self.group(n).is_some()).collect();
        doomed.sort();
        doomed.dedup();
        if doomed.is_empty() {
            return Plan { next: None, outcome: Outcome::default() };
        }
        let removed = doomed.iter().filter_map(|n| self.group(n)).map(|g| g.entries.len()).sum();
        let reply = doomed.len();
        let next = self.with_edits(doomed.into_iter().map(|n| (n, None)).collect());
        Plan { next: Some(next), outcome: Outcome { reply, added: 0, removed } }
    }

    /// A replacement by `groups`: with `client_version`, a client's (the
    /// version rises past the current one, or to the version given); without,
    /// the version is left for [`Whitelist::installed`] to set.
    fn plan_replace(
        &self,
        groups: Vec<GroupSpec>,
        client_version: Option<u64>,
        limits: Option<&Limits>,
        now: u64,
    ) -> Result<Plan, LimitError> {
        check_group_count(groups.len(), limits)?;
        for g in &groups {
            Self::check_size(&g.name, g.entries.len(), limits)?;
        }
        let reply = groups.len();
        let same = groups.len() == self.groups.len()
            && groups.iter().zip(&self.groups).all(|(new, old)| {
                new.name == old.name
                    && new.attribute == old.attribute
                    && old.entries.iter().eq(new.entries.iter().copied())
                    && *old.users == sorted_users(new.users.clone())
                    && (0..new.entries.len())
                        .all(|i| old.meta(i) == new.meta.get(i).map(Meta::view).unwrap_or_default())
            });
        if same {
            return Ok(Plan { next: None, outcome: Outcome { reply, added: 0, removed: 0 } });
        }
        let version = client_version.map_or(self.version, |v| self.bumped().max(v).min(MAX_VERSION));
        let old: HashSet<(&GroupName, Entry)> =
            self.groups.iter().flat_map(|g| g.entries.iter().map(move |e| (&g.name, e))).collect();
        let new: HashSet<(&GroupName, Entry)> =
            groups.iter().flat_map(|g| g.entries.iter().map(move |e| (&g.name, *e))).collect();
        let added = new.difference(&old).count();
        let removed = old.difference(&new).count();
        let mut groups = groups;
        for g in &mut groups {
            // The figures of entries that stay in their group stay with them.
            let old = self.group(&g.name);
            let kept = old.map_or_else(HashMap::default, |o| o.positions(&g.entries));
            g.usage = g
                .entries
                .iter()
                .map(|e| match (old, kept.get(e)) {
                    (Some(o), Some(&i)) => o.usage(i),
                    _ => Usage { added: now, ..Usage::default() },
                })
                .collect();
        }
        let mut next = Whitelist::restore_at(groups, version, self.clock);
        for g in &mut next.groups {
            g.hits = self.group(&g.name).map_or(0, |old| old.hits);
        }
        Ok(Plan { next: Some(next), outcome: Outcome { reply, added, removed } })
    }

    /// `plan` with the version set to exactly `version` (capped at
    /// [`MAX_VERSION`]): a change when either the groups or the version differ.
    fn installed(&self, plan: Plan, version: u64) -> Plan {
        let version = version.min(MAX_VERSION);
        match plan.next {
            Some(mut next) => {
                next.version = version;
                Plan { next: Some(next), outcome: plan.outcome }
            }
            None if version != self.version => {
                let mut next = self.clone();
                next.version = version;
                Plan { next: Some(next), outcome: plan.outcome }
            }
            None => plan,
        }
    }

    /// `BIND` (`bind`) or `UNBIND` of `users` on the group `name`, which
    /// must exist. The reply counts the users bound or unbound.
    fn plan_binding(&self, name: GroupName, users: Vec<String>, bind: bool) -> Result<Plan, LimitError> {
        let Ok(index) = self.index_of(&name) else {
            return Err(LimitError::NoSuchGroup(name));
        };
        let Some(group) = self.groups.get(index) else {
            return Err(LimitError::NoSuchGroup(name));
        };
        let named = sorted_users(users);
        let held = &group.users;
        let next_users: Vec<String> = if bind {
            sorted_users(held.iter().chain(named.iter()).cloned().collect())
        } else {
            held.iter().filter(|u| named.binary_search(u).is_err()).cloned().collect()
        };
        let reply = next_users.len().abs_diff(held.len());
        if reply == 0 {
            return Ok(Plan { next: None, outcome: Outcome::default() });
        }
        let mut next = self.clone();
        if let Some(g) = next.groups.get_mut(index) {
            g.users = Arc::new(next_users);
        }
        next.version = self.bumped();
        Ok(Plan { next: Some(next.with_bound()), outcome: Outcome { reply, added: 0, removed: 0 } })
    }

    /// Binds `users` to the group `name` as loaded data gives them (the
    /// bindings section of aux data); `false` when there is no such group.
    pub fn restore_users(&mut self, name: &GroupName, users: Vec<String>) -> bool {
        match self.index_of(name).ok().and_then(|i| self.groups.get_mut(i)) {
            Some(g) => {
                g.users = Arc::new(sorted_users(users));
                self.bound = self.find_bound();
                self.logins = self.compile_logins();
                true
            }
            None => false,
        }
    }

    /// Each bound user with the groups it is bound to (in name order),
    /// sorted by user.
    pub fn bindings(&self) -> Vec<(&str, Vec<&GroupName>)> {
        let mut map: std::collections::BTreeMap<&str, Vec<&GroupName>> = std::collections::BTreeMap::new();
        for g in &self.groups {
            for u in g.users.iter() {
                map.entry(u.as_str()).or_default().push(&g.name);
            }
        }
        map.into_iter().collect()
    }

    /// What [`Whitelist::has_bindings`] and [`Whitelist::default_bound`]
    /// answer, found from the groups.
    fn find_bound(&self) -> Bound {
        let bound = |g: &Group, user: &str| g.users.binary_search_by(|u| u.as_str().cmp(user)).is_ok();
        Bound {
            any: self.groups.iter().any(|g| !g.users.is_empty()),
            default: self.groups.iter().any(|g| bound(g, "default")),
        }
    }

    fn with_bound(mut self) -> Whitelist {
        self.bound = self.find_bound();
        self.logins = self.compile_logins();
        self
    }

    /// The login index of the groups as they are now (their live entries).
    fn compile_logins(&self) -> Arc<Logins> {
        if !self.bound.any {
            return Arc::default();
        }
        Arc::new(Logins::build(self.groups.iter().map(|g| (g.users.as_slice(), g.members())), &self.ranks))
    }

    /// Whether any group has a bound user (O(1)).
    pub fn has_bindings(&self) -> bool {
        self.bound.any
    }

    /// Whether the `default` user is bound to some group (O(1)).
    pub fn default_bound(&self) -> bool {
        self.bound.default
    }

    /// Whether `user` is bound to some group (one hash lookup).
    pub fn is_bound(&self, user: &str) -> bool {
        self.logins.is_bound(user)
    }

    /// `false` when `user` is surely bound to no group, found in a few
    /// instructions without hashing the name; `true` when it may be.
    #[inline]
    pub fn may_be_bound(&self, user: &str) -> bool {
        self.logins.may_be_bound(user)
    }

    /// Whether `user` may log in from `peer` (§11): `true` for a user bound
    /// to no group and for exempt clients; otherwise only when a live entry
    /// of one of its groups matches the address. One hash lookup, and for a
    /// bound user one matcher lookup.
    #[inline]
    pub fn user_may_login(&self, user: &str, peer: Peer, policy: Policy) -> bool {
        self.logins.may_login(user, peer, policy)
    }

    /// Distinct sets of bound groups the login index compiles.
    pub fn logins_sets(&self) -> usize {
        self.logins.sets()
    }

    /// Bytes the login index holds (none while no user is bound).
    pub fn logins_heap_bytes(&self) -> usize {
        self.logins.heap_bytes()
    }

    fn with_group(&self, name: GroupName, content: Option<Body>) -> Whitelist {
        self.with_edits(vec![(name, content)])
    }

    /// The next state after replacing (`Some`) or deleting (`None`) the named
    /// groups; `edits` sorted by name without duplicates. The version rises by one.
    fn with_edits(&self, edits: Vec<(GroupName, Option<Body>)>) -> Whitelist {
        let mut groups = Vec::with_capacity(self.groups.len() + edits.len());
        // Groups whose records go, and the positions of groups with new records.
        let mut dropped: Vec<Members<'_>> = Vec::with_capacity(edits.len());
        let mut fresh = Vec::with_capacity(edits.len());
        let mut old = self.groups.iter().peekable();
        for (name, content) in edits {
            while let Some(g) = old.next_if(|g| g.name < name) {
                groups.push(g.clone());
            }
            let existing = old.next_if(|g| g.name == name);
            if let Some(g) = existing {
                dropped.push(g.members());
            }
            if let Some(body) = content {
                fresh.push(groups.len());
                let (id, hits) = existing.map_or((NONE, 0), |g| (g.id, g.hits));
                let users = existing.map_or_else(Arc::default, |g| Arc::clone(&g.users));
                groups.push(Group::build(id, name, body, users, hits, self.clock));
            }
        }
        groups.extend(old.cloned());
        // New groups take the lowest free ids, so ids stay below the number
        // of groups.
        let mut used = vec![false; groups.len() + self.ranks.len() + 1];
        for g in &groups {
            if let Some(u) = used.get_mut(g.id as usize) {
                *u = true;
            }
        }
        let mut free = (0..used.len()).filter(|&i| !used.get(i).copied().unwrap_or(true));
        for &i in &fresh {
            if let Some(g) = groups.get_mut(i).filter(|g| g.id == NONE) {
                g.id = free.next().and_then(|id| u32::try_from(id).ok()).unwrap_or(NONE);
            }
        }
        let max_id = groups.iter().map(|g| g.id as usize).filter(|&id| id != NONE as usize).max();
        let mut ranks = vec![NONE; max_id.map_or(0, |m| m + 1)];
        for (index, g) in groups.iter().enumerate() {
            if let Some(r) = ranks.get_mut(g.id as usize) {
                *r = u32::try_from(index).unwrap_or(NONE);
            }
        }
        let matcher =
            self.matcher.rebuild(dropped, fresh.iter().filter_map(|&i| groups.get(i)).map(Group::members), &ranks);
        let entries = groups.iter().map(|g| g.entries.len()).sum();
        Whitelist {
            groups,
            version: self.bumped(),
            entries,
            matcher,
            ranks,
            clock: self.clock,
            bound: Bound::default(),
            logins: Arc::default(),
        }
        .with_bound()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{parse_address, parse_entry};

    proptest::proptest! {
        /// Entry `i` has the `i`-th stat index that is not a hole.
        #[test]
        fn stat_indexes_skip_the_holes(picks in proptest::collection::vec(proptest::bool::ANY, 0..64)) {
            let holes: Vec<u32> = (0..picks.len() as u32).filter(|&k| picks[k as usize]).collect();
            let free: Vec<usize> = (0..picks.len() + 8).filter(|k| !holes.contains(&(*k as u32))).collect();
            for (i, &index) in free.iter().enumerate() {
                proptest::prop_assert_eq!(stat_index(&holes, i), index);
            }
            let gone: Vec<u32> = (0..free.len() as u32).filter(|k| k % 3 == 1).collect();
            let mut more: Vec<u32> = holes.iter().copied().chain(gone.iter().map(|&k| free[k as usize] as u32)).collect();
            more.sort_unstable();
            proptest::prop_assert_eq!(&*with_holes(&holes, &gone), more.as_slice());
        }
    }

    fn name(s: &str) -> GroupName {
        GroupName::parse(s.as_bytes()).unwrap()
    }

    fn list(items: &[&str]) -> Vec<Entry> {
        items.iter().map(|s| parse_entry(s.as_bytes()).unwrap()).collect()
    }

    fn shown(w: &Whitelist, g: &str) -> Vec<String> {
        w.group(&name(g)).unwrap().entries().iter().map(|e| e.to_string()).collect()
    }

    const OPEN: Policy = Policy { allow_loopback: true, allow_unixsocket: true, deny_when_empty: false };
    const STRICT: Policy = Policy { allow_loopback: false, allow_unixsocket: false, deny_when_empty: false };
    const LIMITS: Limits = Limits { max_groups: 3, max_entries_per_group: 4 };

    fn apply(w: &Whitelist, change: Change) -> (Whitelist, Outcome) {
        let plan = w.plan(change, Some(&LIMITS)).unwrap();
        (plan.next.unwrap_or_else(|| w.clone()), plan.outcome)
    }

    fn set(g: &str, items: &[&str]) -> Change {
        Change::Set { group: name(g), entries: list(items), attribute: None, note: Default::default() }
    }

    fn verdict(w: &Whitelist, a: &str, policy: Policy) -> Verdict {
        w.verdict(Peer::Ip(parse_address(a.as_bytes()).unwrap()), policy)
    }

    #[test]
    fn groups_replaced_as_a_merge_brings_them_match_a_whole_install() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.1", "10.0.0.2"]));
        let (w, _) = apply(&w, set("bb", &["10.0.1.0/24"]));
        let hit = verdict(&w, "10.0.0.2", STRICT).hit.unwrap();
        let mut w = w;
        w.record_hit(hit, 50);
        let mut aa = GroupSpec::plain(name("aa"), Attribute::Show, list(&["10.0.0.2", "10.0.0.3"]));
        aa.users = vec!["app".into()];
        let cc = GroupSpec::plain(name("cc"), Attribute::Hidden, list(&["2001:db8::/32"]));
        let edits = vec![(name("cc"), Some(cc.clone())), (name("bb"), None), (name("aa"), Some(aa.clone()))];
        let next = w.with_groups(edits, 9, 60);
        let install = Change::Install { groups: vec![aa, cc], version: 9 };
        let whole = w.plan_at(install, None, 60).unwrap().next.unwrap();
        assert_eq!(next.specs(), whole.specs());
        assert_eq!(next.version(), 9);
        assert_eq!(next.group(&name("aa")).unwrap().usage(0).hits, 1, "10.0.0.2 keeps its figures");
        assert_eq!(next.group(&name("aa")).unwrap().usage(1).added, 60);
        assert!(next.is_bound("app") && !next.is_bound("other"));
        for a in ["10.0.0.1", "10.0.0.3", "10.0.1.5", "2001:db8::1"] {
            assert_eq!(verdict(&next, a, STRICT).allowed, verdict(&whole, a, STRICT).allowed, "{a}");
        }
    }

    #[test]
    fn bindings_follow_their_group() {
        let users = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let bind = |g: &str, u: &[&str]| Change::Bind { group: name(g), users: users(u) };
        let unbind = |g: &str, u: &[&str]| Change::Unbind { group: name(g), users: users(u) };
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.0/24"]));
        let (w, _) = apply(&w, set("bb", &["10.0.1.1"]));
        assert_eq!(w.plan(bind("cc", &["app"]), None).unwrap_err().to_string(), "no such group 'cc'");
        assert_eq!(w.plan(unbind("cc", &["app"]), None).unwrap_err().to_string(), "no such group 'cc'");
        let (w, o) = apply(&w, bind("aa", &["app", "ops", "app"]));
        assert_eq!((o.reply, w.version()), (2, 3));
        let plan = w.plan(bind("aa", &["ops"]), None).unwrap();
        assert!(plan.next.is_none() && plan.outcome.reply == 0);
        let (w, o) = apply(&w, bind("bb", &["app"]));
        assert_eq!(o.reply, 1);
        assert_eq!(
            w.bindings().iter().map(|(u, g)| (u.to_string(), g.len())).collect::<Vec<_>>(),
            vec![("app".into(), 2), ("ops".into(), 1)]
        );
        let policy = Policy { allow_loopback: true, allow_unixsocket: true, deny_when_empty: false };
        let at = |s: &str| Peer::Ip(parse_address(s.as_bytes()).unwrap());
        assert!(w.user_may_login("app", at("10.0.0.7"), policy));
        assert!(w.user_may_login("app", at("10.0.1.1"), policy));
        assert!(!w.user_may_login("ops", at("10.0.1.1"), policy));
        assert!(w.user_may_login("bob", at("192.0.2.1"), policy));
        assert!(w.user_may_login("ops", at("127.0.0.1"), policy));
        assert!(w.user_may_login("ops", Peer::Unix, policy));
        assert!(!w.user_may_login("ops", Peer::Unknown, policy));
        // A SET keeps the group's bindings; DEL drops them.
        let (w, _) = apply(&w, set("aa", &["10.0.2.0/24"]));
        assert_eq!(w.group(&name("aa")).unwrap().users(), ["app", "ops"]);
        let (w, _) = apply(&w, bind("aa", &["default"]));
        assert!(w.has_bindings() && w.default_bound());
        let (w, _) = apply(&w, Change::Delete { groups: vec![name("aa")] });
        assert!(!w.is_bound("ops") && w.is_bound("app") && !w.default_bound() && w.has_bindings());
        let (w, o) = apply(&w, unbind("bb", &["app", "nobody"]));
        assert_eq!(o.reply, 1);
        assert!(!w.has_bindings());
        // A replacement that differs only in its users is a change.
        let spec = |u: &[&str]| {
            vec![GroupSpec {
                name: name("bb"),
                attribute: Attribute::Show,
                entries: list(&["10.0.1.1"]),
                meta: Vec::new(),
                usage: Vec::new(),
                users: users(u),
            }]
        };
        let (w, _) = apply(&Whitelist::default(), Change::Install { groups: spec(&[]), version: 1 });
        assert!(w.plan(Change::Install { groups: spec(&[]), version: 1 }, None).unwrap().next.is_none());
        let next = w.plan(Change::Install { groups: spec(&["x"]), version: 1 }, None).unwrap().next.unwrap();
        assert!(next.is_bound("x"));
    }

    #[test]
    fn set_creates_and_replaces() {
        let w = Whitelist::default();
        let (w, o) = apply(&w, set("default", &["10.0.0.1", "10.0.0.0/24", "10.0.0.1"]));
        assert_eq!(o, Outcome { reply: 2, added: 2, removed: 0 });
        assert_eq!(shown(&w, "default"), ["10.0.0.1", "10.0.0.0/24"]);
        assert_eq!(w.version(), 1);
        let (w, o) = apply(&w, set("default", &["10.0.0.0/24", "192.0.2.1"]));
        assert_eq!(o, Outcome { reply: 2, added: 1, removed: 1 });
        assert_eq!(shown(&w, "default"), ["10.0.0.0/24", "192.0.2.1"]);
        assert_eq!(w.version(), 2);
    }

    #[test]
    fn set_with_same_content_changes_nothing() {
        let (w, _) = apply(&Whitelist::default(), set("default", &["10.0.0.1"]));
        let plan = w.plan(set("default", &["10.0.0.1"]), Some(&LIMITS)).unwrap();
        assert!(plan.next.is_none());
        assert_eq!(plan.outcome.reply, 1);
        // A different order is a change: order is part of the state.
        let (w, _) = apply(&w, set("default", &["10.0.0.1", "10.0.0.2"]));
        let plan = w.plan(set("default", &["10.0.0.2", "10.0.0.1"]), Some(&LIMITS)).unwrap();
        assert!(plan.next.is_some());
    }

    #[test]
    fn set_keeps_the_attribute_unless_given() {
        let hidden = Change::Set {
            group: name("sys"),
            entries: list(&["10.0.0.1"]),
            attribute: Some(Attribute::Hidden),
            note: Default::default(),
        };
        let (w, _) = apply(&Whitelist::default(), hidden);
        let (w, _) = apply(&w, set("sys", &["10.0.0.2"]));
        assert_eq!(w.group(&name("sys")).unwrap().attribute(), Attribute::Hidden);
        let show = Change::Set {
            group: name("sys"),
            entries: list(&["10.0.0.2"]),
            attribute: Some(Attribute::Show),
            note: Default::default(),
        };
        let plan = w.plan(show, None).unwrap();
        assert_eq!(plan.next.unwrap().group(&name("sys")).unwrap().attribute(), Attribute::Show);
    }

    #[test]
    fn add_appends_new_entries_only() {
        let (w, _) = apply(&Whitelist::default(), set("default", &["10.0.0.1"]));
        let (w, o) = apply(
            &w,
            Change::Add {
                group: name("default"),
                entries: list(&["10.0.0.1", "10.0.0.2", "10.0.0.2"]),
                note: Default::default(),
            },
        );
        assert_eq!(o.reply, 1);
        assert_eq!(shown(&w, "default"), ["10.0.0.1", "10.0.0.2"]);
        let plan = w
            .plan(
                Change::Add { group: name("default"), entries: list(&["10.0.0.2"]), note: Default::default() },
                Some(&LIMITS),
            )
            .unwrap();
        assert!(plan.next.is_none());
        assert_eq!(plan.outcome.reply, 0);
        let (w, o) = apply(&w, Change::Add { group: name("other"), entries: list(&["::1"]), note: Default::default() });
        assert_eq!(o.reply, 1);
        assert_eq!(w.groups().len(), 2);
        assert_eq!(w.version(), 3);
    }

    #[test]
    fn remove_keeps_empty_groups() {
        let (w, _) = apply(&Whitelist::default(), set("default", &["10.0.0.1", "10.0.0.2"]));
        let (w, o) = apply(&w, Change::Remove { group: name("default"), entries: list(&["10.0.0.1", "10.0.0.9"]) });
        assert_eq!(o.reply, 1);
        let (w, o) = apply(&w, Change::Remove { group: name("default"), entries: list(&["10.0.0.2"]) });
        assert_eq!(o.reply, 1);
        assert!(w.group(&name("default")).unwrap().entries().is_empty());
        assert!(!w.is_enabled());
        let plan = w.plan(Change::Remove { group: name("nosuch"), entries: list(&["10.0.0.2"]) }, None).unwrap();
        assert!(plan.next.is_none());
        assert_eq!(plan.outcome.reply, 0);
    }

    #[test]
    fn delete_counts_existing_groups_once() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.1"]));
        let (w, _) = apply(&w, set("bb", &["10.0.0.2"]));
        let (w, o) = apply(&w, Change::Delete { groups: vec![name("bb"), name("zz"), name("bb")] });
        assert_eq!(o, Outcome { reply: 1, added: 0, removed: 1 });
        assert_eq!(w.groups().len(), 1);
        assert!(!verdict(&w, "10.0.0.2", STRICT).allowed);
        assert!(verdict(&w, "10.0.0.1", STRICT).allowed);
    }

    #[test]
    fn limits_are_enforced_for_clients_only() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.1"]));
        let (w, _) = apply(&w, set("bb", &["10.0.0.1"]));
        let (w, _) = apply(&w, set("cc", &["10.0.0.1"]));
        let err = w.plan(set("dd", &["10.0.0.1"]), Some(&LIMITS)).unwrap_err();
        assert_eq!(err.to_string(), "the whitelist would hold 4 groups, the limit is 3 (whitelist.max-groups)");
        let err = w
            .plan(
                Change::Add { group: name("dd"), entries: list(&["10.0.0.1"]), note: Default::default() },
                Some(&LIMITS),
            )
            .unwrap_err();
        assert!(matches!(err, LimitError::Groups { would: 4, limit: 3 }));
        let five = &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
        let err = w.plan(set("aa", five), Some(&LIMITS)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "group 'aa' would hold 5 entries, the limit is 4 (whitelist.max-entries-per-group)"
        );
        let err = w
            .plan(Change::Add { group: name("aa"), entries: list(&five[1..]), note: Default::default() }, Some(&LIMITS))
            .unwrap_err();
        assert!(matches!(err, LimitError::Entries { would: 5, .. }));
        // Duplicates do not count against the limit.
        assert!(w
            .plan(set("aa", &["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.1"]), Some(&LIMITS))
            .is_ok());
        // Replicated and loaded changes ignore limits.
        assert!(w.plan(set("dd", five), None).unwrap().next.is_some());
    }

    #[test]
    fn verdicts() {
        let w = Whitelist::default();
        assert_eq!(verdict(&w, "203.0.113.5", STRICT).reason, Reason::WhitelistEmpty);
        assert_eq!(w.verdict(Peer::Unix, STRICT).reason, Reason::WhitelistEmpty);
        let (w, _) = apply(&w, set("default", &["10.0.0.0/8"]));
        assert_eq!(
            verdict(&w, "10.1.2.3", STRICT),
            Verdict { allowed: true, reason: Reason::Entry, hit: Some(Hit { group: 0, len: 8, index: 0 }) }
        );
        assert_eq!(verdict(&w, "127.0.0.1", OPEN).reason, Reason::Loopback);
        assert_eq!(verdict(&w, "::1", OPEN).reason, Reason::Loopback);
        assert!(!verdict(&w, "127.0.0.1", STRICT).allowed);
        assert!(!verdict(&w, "203.0.113.5", OPEN).allowed);
        assert_eq!(w.verdict(Peer::Unix, OPEN).reason, Reason::UnixSocket);
        assert!(!w.verdict(Peer::Unix, STRICT).allowed);
        assert!(!w.verdict(Peer::Unknown, OPEN).allowed);
        // A loopback address that an entry holds is admitted by the entry.
        let (w, _) = apply(&w, set("local", &["127.0.0.1"]));
        assert_eq!(verdict(&w, "127.0.0.1", OPEN).reason, Reason::Entry);
    }

    /// §3's table of CHECK's verdict and reason, row by row.
    #[test]
    fn the_verdict_table_with_when_empty() {
        let deny = |allow_loopback| Policy { allow_loopback, allow_unixsocket: true, deny_when_empty: true };
        let row = |w: &Whitelist, a: &str, p: Policy| {
            let (v, m) = w.check(parse_address(a.as_bytes()).unwrap(), p);
            (v.allowed, v.reason, m.map(|(g, e)| format!("{} {e}", g.name())))
        };
        let empty = Whitelist::default();
        for a in ["203.0.113.5", "127.0.0.1", "::1"] {
            assert_eq!(row(&empty, a, OPEN), (true, Reason::WhitelistEmpty, None), "{a}");
            assert_eq!(row(&empty, a, STRICT), (true, Reason::WhitelistEmpty, None), "{a}");
        }
        assert_eq!(row(&empty, "127.0.0.1", deny(true)), (true, Reason::Loopback, None));
        assert_eq!(row(&empty, "::1", deny(true)), (true, Reason::Loopback, None));
        assert_eq!(row(&empty, "127.0.0.1", deny(false)), (false, Reason::WhitelistEmpty, None));
        assert_eq!(row(&empty, "203.0.113.5", deny(true)), (false, Reason::WhitelistEmpty, None));
        // Groups without entries are still an empty whitelist.
        let (w, _) = apply(&empty, set("aa", &[]));
        assert_eq!(row(&w, "203.0.113.5", deny(true)), (false, Reason::WhitelistEmpty, None));
        // The unix socket: exempt per allow-unixsocket either way.
        assert_eq!(empty.verdict(Peer::Unix, deny(false)).reason, Reason::UnixSocket);
        let closed = Policy { allow_unixsocket: false, ..deny(false) };
        assert_eq!(
            empty.verdict(Peer::Unix, closed),
            Verdict { allowed: false, reason: Reason::WhitelistEmpty, hit: None }
        );
        assert!(!empty.verdict(Peer::Unknown, deny(true)).allowed);
        let (w, _) = apply(&empty, set("aa", &["10.0.0.0/8"]));
        for p in [OPEN, deny(true)] {
            assert_eq!(row(&w, "10.1.2.3", p), (true, Reason::Entry, Some(String::from("aa 10.0.0.0/8"))));
            assert_eq!(row(&w, "127.0.0.1", p), (true, Reason::Loopback, None));
            assert_eq!(row(&w, "203.0.113.5", p), (false, Reason::NoMatch, None));
        }
    }

    #[test]
    fn only_127_0_0_1_admits_no_remote_client() {
        let (w, _) = apply(&Whitelist::default(), set("default", &["127.0.0.1"]));
        assert!(!verdict(&w, "10.0.0.1", OPEN).allowed);
        assert!(!verdict(&w, "10.0.0.1", STRICT).allowed);
        assert!(w.is_enabled());
    }

    #[test]
    fn check_names_group_and_entry() {
        let (w, _) = apply(&Whitelist::default(), set("bb", &["10.0.0.0/8"]));
        let (w, _) = apply(&w, set("aa", &["10.1.0.0/16"]));
        let (v, m) = w.check(parse_address(b"10.1.2.3").unwrap(), STRICT);
        assert!(v.allowed);
        let (g, e) = m.unwrap();
        assert_eq!((g.name().as_str(), e.to_string().as_str()), ("aa", "10.1.0.0/16"));
        let (_, m) = w.check(parse_address(b"10.2.0.1").unwrap(), STRICT);
        assert_eq!(m.unwrap().0.name().as_str(), "bb");
    }

    #[test]
    fn hits_follow_their_group() {
        let (mut w, _) = apply(&Whitelist::default(), set("bb", &["10.0.0.1"]));
        let hit = verdict(&w, "10.0.0.1", STRICT).hit.unwrap();
        w.record_hit(hit, 100);
        w.record_hit(hit, 101);
        // Inserting a group before it and changing it keeps its hits.
        let (w, _) = apply(&w, set("aa", &["10.0.0.2"]));
        let (w, _) =
            apply(&w, Change::Add { group: name("bb"), entries: list(&["10.0.0.3"]), note: Default::default() });
        assert_eq!(w.group(&name("bb")).unwrap().hits(), 2);
        assert_eq!(w.group(&name("aa")).unwrap().hits(), 0);
    }

    #[test]
    fn a_clients_replace_raises_the_version_only_when_the_groups_change() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.1"]));
        let spec = |items: &[&str]| {
            vec![GroupSpec {
                name: name("aa"),
                attribute: Attribute::Show,
                entries: list(items),
                meta: Vec::new(),
                usage: Vec::new(),
                users: Vec::new(),
            }]
        };
        // The same groups change nothing, whatever version the document carries.
        for version in [0, 1, 7] {
            let plan = w.plan(Change::Replace { groups: spec(&["10.0.0.1"]), version }, Some(&LIMITS)).unwrap();
            assert!(plan.next.is_none(), "version {version}");
        }
        // Other groups raise the version past the current one...
        let plan = w.plan(Change::Replace { groups: spec(&["10.0.0.2"]), version: 1 }, Some(&LIMITS)).unwrap();
        let next = plan.next.unwrap();
        assert_eq!(next.version(), 2);
        assert_eq!(plan.outcome, Outcome { reply: 1, added: 1, removed: 1 });
        // ...or to the document's version when it is higher.
        let plan = w.plan(Change::Replace { groups: spec(&["10.0.0.2"]), version: 9 }, Some(&LIMITS)).unwrap();
        assert_eq!(plan.next.unwrap().version(), 9);
        // A replacement never lowers the version.
        let plan = next.plan(Change::Replace { groups: vec![], version: 0 }, None).unwrap();
        assert_eq!(plan.next.unwrap().version(), 3);
    }

    #[test]
    fn an_install_sets_exactly_the_version_it_carries() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.1"]));
        let (w, _) = apply(&w, set("aa", &["10.0.0.3"]));
        assert_eq!(w.version(), 2);
        let spec = |items: &[&str]| {
            vec![GroupSpec {
                name: name("aa"),
                attribute: Attribute::Show,
                entries: list(items),
                meta: Vec::new(),
                usage: Vec::new(),
                users: Vec::new(),
            }]
        };
        // Other groups at a lower version: both are installed as they are.
        let plan = w.plan(Change::Install { groups: spec(&["10.0.0.2"]), version: 1 }, None).unwrap();
        let next = plan.next.unwrap();
        assert_eq!((next.version(), shown(&next, "aa")), (1, vec![String::from("10.0.0.2")]));
        assert_eq!(plan.outcome, Outcome { reply: 1, added: 1, removed: 1 });
        // The same groups at another version: only the version moves.
        let plan = w.plan(Change::Install { groups: spec(&["10.0.0.3"]), version: 7 }, None).unwrap();
        assert_eq!(plan.outcome, Outcome { reply: 1, added: 0, removed: 0 });
        assert_eq!(plan.next.unwrap().version(), 7);
        // The same groups at the same version change nothing.
        let plan = w.plan(Change::Install { groups: spec(&["10.0.0.3"]), version: 2 }, None).unwrap();
        assert!(plan.next.is_none());
        // Into an empty whitelist (an AOF replay), the carried version is restored.
        let plan =
            Whitelist::default().plan(Change::Install { groups: spec(&["10.0.0.2"]), version: 9 }, None).unwrap();
        assert_eq!(plan.next.unwrap().version(), 9);
        // An empty install at version 0 into an empty whitelist is nothing.
        assert!(Whitelist::default()
            .plan(Change::Install { groups: vec![], version: 0 }, None)
            .unwrap()
            .next
            .is_none());
    }

    #[test]
    fn the_version_stops_at_its_largest_value() {
        let spec = |e: &str| {
            vec![GroupSpec {
                name: name("aa"),
                attribute: Attribute::Show,
                entries: list(&[e]),
                meta: Vec::new(),
                usage: Vec::new(),
                users: Vec::new(),
            }]
        };
        let w = Whitelist::default()
            .plan(Change::Install { groups: spec("10.0.0.1"), version: MAX_VERSION }, None)
            .unwrap()
            .next
            .unwrap();
        assert_eq!(w.version(), MAX_VERSION);
        let (w, _) =
            apply(&w, Change::Add { group: name("aa"), entries: list(&["10.0.0.2"]), note: Default::default() });
        assert_eq!(w.version(), MAX_VERSION);
        let plan = w.plan(Change::Install { groups: spec("10.0.0.3"), version: u64::MAX }, None).unwrap();
        assert_eq!(plan.next.unwrap().version(), MAX_VERSION);
    }

    #[test]
    fn replace_respects_limits() {
        let groups: Vec<GroupSpec> = ["aa", "bb", "cc", "dd"]
            .iter()
            .map(|n| GroupSpec {
                name: name(n),
                attribute: Attribute::Show,
                entries: list(&["10.0.0.1"]),
                meta: Vec::new(),
                usage: Vec::new(),
                users: Vec::new(),
            })
            .collect();
        let err = Whitelist::default().plan(Change::Replace { groups, version: 0 }, Some(&LIMITS)).unwrap_err();
        assert_eq!(err, LimitError::Groups { would: 4, limit: 3 });
    }

    fn add_noted(g: &str, items: &[&str], comment: Option<&str>, expiry: Expiry) -> Change {
        Change::Add { group: name(g), entries: list(items), note: Note { comment: comment.map(Into::into), expiry } }
    }

    #[test]
    fn an_add_updates_the_comment_and_expiry_of_held_entries() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.1"]));
        let plan = w.plan_at(add_noted("aa", &["10.0.0.1"], Some("vpn"), Expiry::Unchanged), None, 10).unwrap();
        assert_eq!(plan.outcome.reply, 0);
        let w = plan.next.unwrap();
        assert_eq!(w.version(), 2);
        assert_eq!(w.group(&name("aa")).unwrap().meta(0).comment, Some("vpn"));
        // The same note again changes nothing.
        let plan = w.plan_at(add_noted("aa", &["10.0.0.1"], Some("vpn"), Expiry::Unchanged), None, 10).unwrap();
        assert!(plan.next.is_none());
        // SET gives exactly its note: none here.
        let (w, _) = apply(&w, set("aa", &["10.0.0.1"]));
        assert!(w.group(&name("aa")).unwrap().meta(0).is_none());
    }

    #[test]
    fn an_expired_entry_never_admits() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.1"]));
        let plan = w.plan_at(add_noted("aa", &["10.0.0.2"], None, Expiry::At(100)), None, 50).unwrap();
        let mut w = plan.next.unwrap();
        assert!(verdict(&w, "10.0.0.2", STRICT).allowed);
        assert_eq!(w.next_expiry(), Some(100));
        assert!(!w.advance(99));
        assert!(w.advance(100));
        assert!(!verdict(&w, "10.0.0.2", STRICT).allowed);
        assert!(verdict(&w, "10.0.0.1", STRICT).allowed);
        assert_eq!(w.expired(100), vec![(name("aa"), list(&["10.0.0.2"]))]);
        // A later change keeps the expired entry out of the matcher.
        let (w2, _) = apply(&w, set("bb", &["10.9.0.0/16"]));
        assert!(!verdict(&w2, "10.0.0.2", STRICT).allowed);
        // An expiry in the past (from the primary) is expired at once.
        let plan = w.plan_at(add_noted("cc", &["10.0.0.3"], None, Expiry::At(10)), None, 200).unwrap();
        assert!(!verdict(&plan.next.unwrap(), "10.0.0.3", STRICT).allowed);
    }

    /// The expiry sweep of a whitelist holding `aa` (entries 1 to 4, 2 and
    /// 4 expiring at 100) and `bb` (one entry expiring at 100), at 100.
    fn swept() -> (Whitelist, Sweep) {
        let (w, _) = apply(&Whitelist::default(), set("zz", &["10.9.0.1"]));
        let plan = w.plan_at(set("aa", &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]), None, 50).unwrap();
        let w = plan.next.unwrap();
        let w = w.plan_at(add_noted("aa", &["10.0.0.2", "10.0.0.4"], Some("tmp"), Expiry::At(100)), None, 50).unwrap();
        let w = w.next.unwrap();
        let mut w =
            w.plan_at(add_noted("bb", &["10.1.0.0/16"], None, Expiry::At(100)), None, 60).unwrap().next.unwrap();
        for (a, t) in [("10.0.0.1", 70), ("10.0.0.3", 71), ("10.0.0.3", 72), ("10.0.0.4", 73), ("10.9.0.1", 74)] {
            let hit = verdict(&w, a, STRICT).hit.unwrap();
            w.record_hit(hit, t);
        }
        assert_eq!(w.version(), 4);
        assert!(w.sweep(99, true).is_none());
        w.advance(100);
        let sweep = w.sweep(100, true).unwrap();
        (w, sweep)
    }

    #[test]
    fn a_sweep_removes_what_expired_and_raises_the_version_once_per_group() {
        let (w, sweep) = swept();
        assert_eq!(
            sweep.swept,
            vec![(name("aa"), list(&["10.0.0.2", "10.0.0.4"])), (name("bb"), list(&["10.1.0.0/16"]))]
        );
        assert_eq!(sweep.removed, 3);
        let next = sweep.next;
        assert_eq!((next.version(), next.entry_count()), (6, 3));
        assert_eq!(shown(&next, "aa"), vec!["10.0.0.1", "10.0.0.3"]);
        assert!(shown(&next, "bb").is_empty());
        assert!(!next.has_expired(100));
        // The same removals as REMOVEs, one per group, lead to the same state.
        let mut replayed = w.clone();
        for (group, entries) in w.expired(100) {
            replayed = replayed.plan(Change::Remove { group, entries }, None).unwrap().next.unwrap();
        }
        assert_eq!(replayed.version(), next.version());
        assert_eq!(replayed.specs(), next.specs());
        // Without raising (cluster mode) the version stays.
        assert_eq!(w.sweep(100, false).unwrap().next.version(), 4);
    }

    /// The whitelist of [`swept`] before its sweep, with comments on the
    /// entries of `aa` that stay, and one of them expiring at 120.
    fn commented() -> Whitelist {
        let (w, _) = swept();
        let plan = w.plan_at(add_noted("aa", &["10.0.0.1"], Some("kept"), Expiry::Unchanged), None, 100).unwrap();
        let w = plan.next.unwrap();
        let plan = w.plan_at(add_noted("aa", &["10.0.0.3"], Some("later"), Expiry::At(120)), None, 100).unwrap();
        plan.next.unwrap()
    }

    /// Entries of `aa` and `bb` expiring at 100 and 120, the clock at 60.
    fn expiring() -> Whitelist {
        let (w, _) = apply(&Whitelist::default(), set("zz", &["10.9.0.1"]));
        let w = w.plan_at(set("aa", &["10.0.0.1", "10.0.0.2", "10.0.0.3"]), None, 50).unwrap().next.unwrap();
        let w = w.plan_at(add_noted("aa", &["10.0.0.2"], None, Expiry::At(100)), None, 50).unwrap().next.unwrap();
        w.plan_at(add_noted("bb", &["10.1.0.0/16"], None, Expiry::At(120)), None, 60).unwrap().next.unwrap()
    }

    #[test]
    fn a_prepared_advance_is_taken_when_nothing_changed() {
        let mut w = expiring();
        let mut p = w.prepare_advance(100).unwrap();
        assert!(!p.is_ready());
        p.compute();
        let next = p.next.clone().unwrap();
        let mut inline = w.clone();
        assert!(w.advance_prepared(100, Some(p)));
        assert!(w.matcher.same_as(&next));
        inline.advance(100);
        for a in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.1.2.3", "10.9.0.1", "10.0.0.9"] {
            assert_eq!(verdict(&w, a, STRICT), verdict(&inline, a, STRICT), "{a}");
        }
        assert!(!verdict(&w, "10.0.0.2", STRICT).allowed);
        assert!(verdict(&w, "10.1.2.3", STRICT).allowed);
        // Nothing expires by 100 any more: nothing to prepare.
        assert!(w.prepare_advance(100).is_none());
    }

    #[test]
    fn a_prepared_advance_is_set_aside_after_any_change_or_for_another_second() {
        // The entry that was to expire is made permanent: the matcher is the
        // same, what leaves it is not.
        let w = expiring();
        let mut p = w.prepare_advance(100).unwrap();
        p.compute();
        let plan = w.plan_at(add_noted("aa", &["10.0.0.2"], None, Expiry::Persist), None, 80).unwrap();
        let mut changed = plan.next.unwrap();
        changed.advance_prepared(100, Some(p));
        assert!(verdict(&changed, "10.0.0.2", STRICT).allowed);
        // Prepared for 100, the clock moves to 130: both entries go.
        let mut w = expiring();
        let mut p = w.prepare_advance(100).unwrap();
        p.compute();
        w.advance_prepared(130, Some(p));
        assert!(!verdict(&w, "10.0.0.2", STRICT).allowed);
        assert!(!verdict(&w, "10.1.2.3", STRICT).allowed);
        // Not computed yet: the advance does the work.
        let mut w = expiring();
        let p = w.prepare_advance(100).unwrap();
        w.advance_prepared(100, Some(p));
        assert!(!verdict(&w, "10.0.0.2", STRICT).allowed);
        assert!(verdict(&w, "10.1.2.3", STRICT).allowed);
    }

    #[test]
    fn a_sweep_in_place_is_the_sweep_of_a_copy() {
        for clock in [100, 130] {
            let mut w = commented();
            w.advance(clock);
            let copied = w.sweep(100, true).unwrap();
            let replayed = w.expired(100).into_iter().fold(w.clone(), |w, (group, entries)| {
                w.plan(Change::Remove { group, entries }, None).unwrap().next.unwrap()
            });
            // Made on a state held alone.
            let mut own = Whitelist::restore_at(w.specs(), w.version(), 0);
            own.advance(clock);
            let done = own.sweep_in_place(100, true).unwrap();
            assert_eq!(done.swept, copied.swept, "{clock}");
            assert_eq!(done.removed, 3);
            for next in [&own, &copied.next] {
                assert_eq!(next.specs(), replayed.specs(), "{clock}");
                assert_eq!(next.version(), 8);
                assert_eq!(shown(next, "aa"), vec!["10.0.0.1", "10.0.0.3"]);
                let g = next.group(&name("aa")).unwrap();
                assert_eq!(g.meta(0).comment, Some("kept"));
                assert_eq!(g.meta(1), MetaRef { comment: Some("later"), expires: Some(120) });
                // 10.0.0.3 admits until 120 by a clock before it.
                assert_eq!(verdict(next, "10.0.0.3", STRICT).allowed, clock < 120, "{clock}");
                assert!(verdict(next, "10.0.0.1", STRICT).allowed);
                assert!(!verdict(next, "10.0.0.2", STRICT).allowed);
            }
            // The figures stay with their entries.
            let g = copied.next.group(&name("aa")).unwrap();
            assert_eq!((g.usage(0).hits, g.usage(1).hits), (1, 2));
            // A later expiry and sweep find the lists as this one left them.
            let mut later = copied.next;
            later.advance(120);
            let last = later.sweep_in_place(120, false).unwrap();
            assert_eq!(last.swept, vec![(name("aa"), list(&["10.0.0.3"]))]);
            assert_eq!(shown(&later, "aa"), vec!["10.0.0.1"]);
            assert_eq!(later.group(&name("aa")).unwrap().usage(0).hits, 1);
            assert!(verdict(&later, "10.0.0.1", STRICT).allowed);
            assert!(!verdict(&later, "10.0.0.3", STRICT).allowed);
        }
    }

    #[test]
    fn after_a_sweep_hits_count_on_the_same_entries() {
        let (_, sweep) = swept();
        let mut next = sweep.next;
        let g = next.group(&name("aa")).unwrap();
        assert_eq!(g.usage(0), Usage { added: 50, hits: 1, last_hit: 70 });
        assert_eq!(g.usage(1), Usage { added: 50, hits: 2, last_hit: 72 });
        assert!(g.meta(1).is_none());
        let hit = verdict(&next, "10.0.0.3", STRICT).hit.unwrap();
        next.record_hit(hit, 90);
        assert_eq!(next.group(&name("aa")).unwrap().usage(1), Usage { added: 50, hits: 3, last_hit: 90 });
        assert!(!verdict(&next, "10.0.0.4", STRICT).allowed);
        assert!(!verdict(&next, "10.1.2.3", STRICT).allowed);
        // A later change of the group, and a later expiry, find the
        // matcher's records as the sweep left them.
        let plan = next.plan_at(add_noted("aa", &["10.0.0.5"], None, Expiry::At(200)), None, 110).unwrap();
        let mut later = plan.next.unwrap();
        let g = later.group(&name("aa")).unwrap();
        assert_eq!((g.usage(1).hits, g.usage(2).added), (3, 110));
        let hit = verdict(&later, "10.0.0.3", STRICT).hit.unwrap();
        later.record_hit(hit, 120);
        assert_eq!(later.group(&name("aa")).unwrap().usage(1).hits, 4);
        assert!(later.advance(200));
        assert!(!verdict(&later, "10.0.0.5", STRICT).allowed);
        assert!(verdict(&later, "10.0.0.1", STRICT).allowed);
        let fresh = Whitelist::restore_at(later.specs(), later.version(), 200);
        for a in ["10.0.0.1", "10.0.0.3", "10.0.0.5", "10.9.0.1", "10.1.0.1"] {
            assert_eq!(verdict(&later, a, STRICT).allowed, verdict(&fresh, a, STRICT).allowed, "{a}");
        }
    }

    #[test]
    fn a_sweep_then_an_expiry_keeps_the_matcher_in_step() {
        let (_, sweep) = swept();
        // An entry expiring later, in the group the sweep left holes in.
        let w = sweep.next.plan_at(add_noted("aa", &["10.0.0.3"], None, Expiry::At(150)), None, 120).unwrap();
        let mut w = w.next.unwrap();
        let hit = verdict(&w, "10.0.0.1", STRICT).hit.unwrap();
        w.record_hit(hit, 130);
        assert!(w.advance(150));
        assert!(!verdict(&w, "10.0.0.3", STRICT).allowed);
        let sweep = w.sweep(150, true).unwrap();
        assert_eq!(sweep.swept, vec![(name("aa"), list(&["10.0.0.3"]))]);
        let mut next = sweep.next;
        let g = next.group(&name("aa")).unwrap();
        assert_eq!(g.usage(0).hits, 2);
        let hit = verdict(&next, "10.0.0.1", STRICT).hit.unwrap();
        next.record_hit(hit, 160);
        assert_eq!(next.group(&name("aa")).unwrap().usage(0), Usage { added: 50, hits: 3, last_hit: 160 });
        // Deleting the group drops every record it had.
        let (gone, _) = apply(&next, Change::Delete { groups: vec![name("aa")] });
        assert!(!verdict(&gone, "10.0.0.1", STRICT).allowed);
        assert!(verdict(&gone, "10.9.0.1", STRICT).allowed);
    }

    #[test]
    fn hits_count_per_entry_and_set_keeps_the_figures_of_kept_entries() {
        let (w, _) = apply(&Whitelist::default(), set("aa", &["10.0.0.0/8", "10.1.0.0/16"]));
        let mut w = w.plan_at(set("aa", &["10.0.0.0/8", "10.1.0.0/16"]), None, 5).unwrap().next.unwrap_or(w);
        for (a, t) in [("10.1.2.3", 7), ("10.2.0.1", 8), ("10.1.9.9", 9)] {
            let hit = verdict(&w, a, STRICT).hit.unwrap();
            w.record_hit(hit, t);
        }
        let g = w.group(&name("aa")).unwrap();
        assert_eq!((g.usage(0).hits, g.usage(0).last_hit), (1, 8));
        assert_eq!((g.usage(1).hits, g.usage(1).last_hit), (2, 9));
        assert_eq!(g.hits(), 3);
        let version = w.version();
        let next = w.plan_at(set("aa", &["10.1.0.0/16", "192.0.2.1"]), None, 20).unwrap().next.unwrap();
        let g = next.group(&name("aa")).unwrap();
        assert_eq!(g.usage(0).hits, 2);
        assert_eq!(g.usage(1), Usage { added: 20, hits: 0, last_hit: 0 });
        assert_eq!(next.version(), version + 1);
    }

    #[test]
    fn usage_keeps_seconds_in_32_bits_and_hits_in_64() {
        let u = Usage { added: 1_767_225_600, hits: u64::from(u32::MAX) + 5, last_hit: 1_767_225_601 };
        assert_eq!(Usage::from(Stat::from(u)), u);
        // Past 2106 a second is held as the last one that fits.
        let late = Usage { added: u64::from(u32::MAX) + 1, hits: 0, last_hit: u64::MAX };
        let kept = Usage::from(Stat::from(late));
        assert_eq!((kept.added, kept.last_hit), (u64::from(u32::MAX), u64::from(u32::MAX)));
        assert_eq!(std::mem::size_of::<Stat>(), 16);
    }

    #[test]
    fn comments_are_printable_and_short() {
        assert_eq!(parse_comment(b"vpn office"), Some("vpn office"));
        assert_eq!(parse_comment("caf\u{e9}".as_bytes()), Some("caf\u{e9}"));
        assert_eq!(parse_comment(b""), Some(""));
        assert!(parse_comment(&[b'a'; 129]).is_none());
        assert!(parse_comment(b"a\tb").is_none());
        assert!(parse_comment("a\u{85}b".as_bytes()).is_none());
        assert!(parse_comment(b"\xff").is_none());
    }
}

//! The cluster ledger (§12): who last changed each group, and how a node
//! merges the states other nodes send it.
//!
//! Every group carries a [`Record`]: the [`Stamp`] of the change that made its
//! current state (a Lamport revision and the id of the node that made it) and
//! the changes that state descends from (the highest revision of each
//! origin), which tells an overwritten change the new state had seen from
//! one it silently lost (a conflict). A deleted group leaves a tombstone with
//! the record of its deletion. Merging is last writer
//! wins per group by stamp, so concurrent changes of different groups all
//! survive and concurrent changes of one group end in the same state on every
//! node, whatever order, duplication or loss the states travel with.
//!
//! Tombstones are never dropped: a node that was away could otherwise bring a
//! deleted group back. Each costs, per group name ever deleted, its name, a
//! stamp and 48 bytes per node that ever changed that group (about 100
//! bytes plus 56 per such node in memory; 51 plus 48 per node on the wire
//! and on disk), and one step of every fingerprint.
//!
//! Groups that predate the ledger (loaded from a server outside a cluster)
//! hold the lowest stamp, [`Stamp::PRE_LEDGER`], which every real change
//! overwrites; a group a node lacks altogether ranks below even that, so
//! pre-ledger data still spreads to nodes that have none.

use std::collections::BTreeMap;
use std::fmt;

use crate::encoding::{self, DecodeError};
use crate::name::GroupName;
use crate::shown::Shown;
use crate::store::{Group, GroupSpec, Meta, Usage, Whitelist, MAX_VERSION};

/// Bytes in a cluster node id.
pub const NODE_ID_LEN: usize = 40;

/// A cluster node id: 40 lowercase hex characters, as Redis and Valkey give
/// them. Ordered by its bytes, which decides ties between equal revisions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; NODE_ID_LEN]);

/// A refused node id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdError(Shown);

impl fmt::Display for NodeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid node id '{}': 40 lowercase hex characters", self.0)
    }
}

impl std::error::Error for NodeIdError {}

impl NodeId {
    /// Validates `raw` as a node id.
    pub fn parse(raw: &[u8]) -> Result<NodeId, NodeIdError> {
        let id: [u8; NODE_ID_LEN] = raw.try_into().map_err(|_| NodeIdError(Shown::new(raw)))?;
        if !id.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
            return Err(NodeIdError(Shown::new(raw)));
        }
        Ok(NodeId(id))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Parsing admitted only ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// Which change made a group's state: ordered by revision, then by origin,
/// so at equal revision the greater node id wins. Only the pre-ledger stamp
/// has no origin (it sorts below every id) and revision 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Stamp {
    /// The Lamport revision of the change.
    pub revision: u64,
    /// The node that made it; `None` only for [`Stamp::PRE_LEDGER`].
    pub origin: Option<NodeId>,
}

impl Stamp {
    /// The stamp of a group that predates the ledger: below every other.
    pub const PRE_LEDGER: Stamp = Stamp { revision: 0, origin: None };

    /// Whether a stamp can exist: revision 0 exactly when there is no origin,
    /// and no revision above the largest version.
    pub fn is_valid(&self) -> bool {
        (self.revision == 0) == self.origin.is_none() && self.revision <= MAX_VERSION
    }

    /// The origin's bytes; all zero for none (below every id's).
    pub fn origin_bytes(&self) -> &[u8; NODE_ID_LEN] {
        const NONE: &[u8; NODE_ID_LEN] = &[0; NODE_ID_LEN];
        self.origin.as_ref().map_or(NONE, NodeId::as_bytes)
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(id) => write!(f, "{}@{id}", self.revision),
            None => write!(f, "{}@pre-ledger", self.revision),
        }
    }
}

/// A group's (or a tombstone's) place in the history.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Record {
    /// The change that made the current state.
    pub stamp: Stamp,
    /// The changes of this group that state descends from, as the highest
    /// revision of each origin among them (the stamp itself excluded), sorted
    /// by origin. A node's stamp of one group only grows, so this tells
    /// whether a change had been seen (see [`Record::descends_from`]); a bare
    /// parent stamp could not, as a node may move a group past a concurrent
    /// change by its own later changes without ever seeing it.
    pub seen: Vec<(NodeId, u64)>,
}

impl Record {
    /// The record of a group that predates the ledger.
    pub const PRE_LEDGER: Record = Record { stamp: Stamp::PRE_LEDGER, seen: Vec::new() };

    /// The record of a change stamped `stamp` made on top of the state
    /// `self` records.
    pub fn then(&self, stamp: Stamp) -> Record {
        let mut seen = self.seen.clone();
        if let Some(o) = self.stamp.origin {
            match seen.binary_search_by(|(id, _)| id.cmp(&o)) {
                Ok(i) => {
                    if let Some(slot) = seen.get_mut(i) {
                        slot.1 = slot.1.max(self.stamp.revision);
                    }
                }
                Err(i) => seen.insert(i, (o, self.stamp.revision)),
            }
        }
        Record { stamp, seen }
    }

    /// Whether the change that made this state had seen the change `s`:
    /// `s` is an ancestor, or its origin made this state or an ancestor at
    /// a revision at least `s`'s (a node knows its own changes; one it lost
    /// was counted where it was lost). Every state has seen the pre-ledger one.
    pub fn descends_from(&self, s: &Stamp) -> bool {
        let Some(o) = s.origin else { return true };
        let own = self.stamp.origin == Some(o) && self.stamp.revision >= s.revision;
        own || self
            .seen
            .binary_search_by(|(id, _)| id.cmp(&o))
            .ok()
            .and_then(|i| self.seen.get(i))
            .is_some_and(|&(_, r)| r >= s.revision)
    }

    /// Whether a record can exist: a valid stamp, ancestors sorted by
    /// origin without duplicates, each a real change below the stamp.
    pub fn is_valid(&self) -> bool {
        self.stamp.is_valid()
            && self.seen.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0))
            && self.seen.iter().all(|&(o, r)| {
                let s = Stamp { revision: r, origin: Some(o) };
                s.is_valid() && s < self.stamp
            })
    }
}

/// A local change that a merge overwrote without its origin having seen it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Conflict {
    /// The group.
    pub group: GroupName,
    /// The stamp of the local state that was lost.
    pub lost: Stamp,
    /// The stamp of the state that replaced it.
    pub winner: Stamp,
}

/// A group that a merge or install took from the incoming state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Applied {
    /// The group.
    pub group: GroupName,
    /// Its stamp now.
    pub stamp: Stamp,
    /// `true` when it was deleted (a tombstone was taken).
    pub deleted: bool,
}

/// What a merge or install leads to; nothing is changed until the caller
/// installs `groups` and takes `ledger`.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The groups to replace (`Some`, usage empty: the store keeps the
    /// figures of entries that stay) or delete (`None`), in name order, for
    /// `Whitelist::with_groups`; `None` when no group's content changed.
    pub edits: Option<Vec<(GroupName, Option<GroupSpec>)>>,
    /// The ledger to keep from now on. Its clock may have risen even when
    /// no group was taken; the whitelist's version follows it either way.
    pub ledger: Ledger,
    /// Every group or tombstone taken, in name order (groups first).
    pub applied: Vec<Applied>,
    /// Every local change overwritten by one that had not seen it.
    pub conflicts: Vec<Conflict>,
}

impl Merged {
    /// The whole new whitelist this merge leads to from `current`, sorted by
    /// name, for `Change::Install` (local usage figures kept for the entries
    /// that stay); `None` when no group's content changed.
    pub fn groups(&self, current: &Whitelist) -> Option<Vec<GroupSpec>> {
        let edits = self.edits.as_ref()?;
        let mut all: BTreeMap<GroupName, GroupSpec> =
            current.specs().into_iter().map(|s| (s.name.clone(), s)).collect();
        for (name, spec) in edits {
            match spec {
                Some(s) => {
                    all.insert(name.clone(), with_usage(s, current.group(name)));
                }
                None => {
                    all.remove(name);
                }
            }
        }
        Some(all.into_values().collect())
    }
}

/// What travels between nodes: the clock and the full content and record of
/// some groups and tombstones (those a change touched, or all of them).
/// Usage statistics never travel: every `GroupSpec` has empty `usage`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct State {
    /// The sender's clock.
    pub clock: u64,
    /// Groups with their records, sorted by name without duplicates.
    pub groups: Vec<(GroupSpec, Record)>,
    /// Tombstones, sorted by name, none named in `groups`.
    pub tombstones: Vec<(GroupName, Record)>,
}

impl State {
    /// The binary form (see [`encoding::encode_state`] for the layout).
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode_state(self)
    }

    /// Reads [`State::encode`]'s form, validating everything.
    pub fn decode(data: &[u8]) -> Result<State, DecodeError> {
        encoding::decode_state(data)
    }
}

/// The records of every group and tombstone, and the Lamport clock.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Ledger {
    clock: u64,
    records: BTreeMap<GroupName, Record>,
    tombstones: BTreeMap<GroupName, Record>,
}

impl Ledger {
    /// A ledger for `w` with no history: every group pre-ledger.
    pub fn from_whitelist(w: &Whitelist) -> Ledger {
        let mut l = Ledger::default();
        l.complete(w);
        l
    }

    /// Built from persisted parts whose validity the decoder checked.
    pub(crate) fn from_parts(
        clock: u64,
        records: BTreeMap<GroupName, Record>,
        tombstones: BTreeMap<GroupName, Record>,
    ) -> Ledger {
        Ledger { clock, records, tombstones }
    }

    /// Aligns the records with the groups of `w`: a group without a record
    /// gets the pre-ledger one, a record of a group `w` lacks is dropped, and
    /// a tombstone of a group `w` holds is dropped. Call it when the ledger
    /// and the whitelist come from different places (a load).
    pub fn complete(&mut self, w: &Whitelist) {
        self.records.retain(|name, _| w.group(name).is_some());
        self.tombstones.retain(|name, _| w.group(name).is_none());
        for g in w.groups() {
            self.records.entry(g.name().clone()).or_insert(Record::PRE_LEDGER);
        }
    }

    /// Raises the clock to at least `version` (a whitelist loaded without a
    /// ledger keeps its version: in a cluster the version never goes back).
    pub fn observe(&mut self, version: u64) {
        self.clock = self.clock.max(version.min(MAX_VERSION));
    }

    /// The groups with the pre-ledger record: held before this node kept a
    /// ledger, never stamped by a change since.
    pub fn pre_ledger(&self) -> Vec<GroupName> {
        self.records.iter().filter(|(_, r)| r.stamp == Stamp::PRE_LEDGER).map(|(n, _)| n.clone()).collect()
    }

    /// The Lamport clock: the highest revision seen; the cluster-wide
    /// `whitelist_version`.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The record of every group, by name.
    pub fn records(&self) -> &BTreeMap<GroupName, Record> {
        &self.records
    }

    /// The record of every deleted group, by name.
    pub fn tombstones(&self) -> &BTreeMap<GroupName, Record> {
        &self.tombstones
    }

    /// The stamp of `name`'s group or tombstone; `None` when the ledger
    /// knows neither.
    pub fn stamp_of(&self, name: &GroupName) -> Option<Stamp> {
        self.records.get(name).or_else(|| self.tombstones.get(name)).map(|r| r.stamp)
    }

    /// Records a change made on this node (`me`) to the `touched` groups
    /// (name, deleted): the clock rises by one and each gets a record with
    /// that revision; a deleted group becomes a tombstone, a re-created one
    /// leaves the tombstones. Returns the clock, the new version. Touching
    /// nothing changes nothing.
    pub fn stamp_local(&mut self, touched: &[(GroupName, bool)], me: &NodeId) -> u64 {
        if touched.is_empty() {
            return self.clock;
        }
        // Saturates at the largest version, nine quintillion changes away.
        self.clock = self.clock.saturating_add(1).min(MAX_VERSION);
        let stamp = Stamp { revision: self.clock, origin: Some(*me) };
        for (name, deleted) in touched {
            let before = self.records.get(name).or_else(|| self.tombstones.get(name));
            let record = before.unwrap_or(&Record::PRE_LEDGER).then(stamp);
            self.records.remove(name);
            self.tombstones.remove(name);
            if *deleted {
                self.tombstones.insert(name.clone(), record);
            } else {
                self.records.insert(name.clone(), record);
            }
        }
        self.clock
    }

    /// The state of the groups `names` (those held, with content, and those
    /// deleted, as tombstones; names the ledger knows neither way are left
    /// out): what a change propagates.
    pub fn state(&self, w: &Whitelist, names: &[GroupName]) -> State {
        let mut names: Vec<&GroupName> = names.iter().collect();
        names.sort();
        names.dedup();
        let mut state = State { clock: self.clock, ..State::default() };
        for name in names {
            if let Some(g) = w.group(name) {
                state.groups.push((spec_of(g), self.records.get(name).cloned().unwrap_or(Record::PRE_LEDGER)));
            } else if let Some(r) = self.tombstones.get(name) {
                state.tombstones.push((name.clone(), r.clone()));
            }
        }
        state
    }

    /// The state of every group and tombstone: what a node that lacks
    /// something is sent.
    pub fn full_state(&self, w: &Whitelist) -> State {
        State {
            clock: self.clock,
            groups: w
                .groups()
                .iter()
                .map(|g| (spec_of(g), self.records.get(g.name()).cloned().unwrap_or(Record::PRE_LEDGER)))
                .collect(),
            tombstones: self.tombstones.iter().map(|(n, r)| (n.clone(), r.clone())).collect(),
        }
    }

    /// Merges a state from another primary into `current` (whose groups
    /// this ledger records): per group the greater stamp wins, and each
    /// local change overwritten by one whose origin had not seen it is a
    /// conflict. Changes nothing itself.
    pub fn merge(&self, current: &Whitelist, incoming: &State) -> Merged {
        self.apply(current, incoming, false)
    }

    /// Installs a state as it is, whatever the stamps: what replicas and an
    /// AOF replay do with a `WHITELIST.MERGE` (including an expiry sweep's,
    /// which keeps the group's stamp). Never a conflict.
    pub fn install(&self, current: &Whitelist, incoming: &State) -> Merged {
        self.apply(current, incoming, true)
    }

    fn apply(&self, current: &Whitelist, incoming: &State, force: bool) -> Merged {
        let mut next = self.clone();
        next.complete(current);
        let mut applied = Vec::new();
        let mut conflicts = Vec::new();
        // The groups taken: Some(content), or None for a deletion.
        let mut taken: Vec<(&GroupName, Option<&GroupSpec>)> = Vec::new();
        let mut clock = self.clock.max(incoming.clock);
        let items = incoming
            .groups
            .iter()
            .map(|(spec, r)| (&spec.name, Some(spec), r))
            .chain(incoming.tombstones.iter().map(|(name, r)| (name, None, r)));
        for (name, spec, record) in items {
            clock = clock.max(record.stamp.revision);
            let local = next.stamp_of(name);
            if !force && Some(record.stamp) <= local {
                continue;
            }
            if let Some(lost) = local.filter(|l| !force && !record.descends_from(l)) {
                conflicts.push(Conflict { group: name.clone(), lost, winner: record.stamp });
            }
            next.records.remove(name);
            next.tombstones.remove(name);
            if spec.is_some() {
                next.records.insert(name.clone(), record.clone());
            } else {
                next.tombstones.insert(name.clone(), record.clone());
            }
            applied.push(Applied { group: name.clone(), stamp: record.stamp, deleted: spec.is_none() });
            taken.push((name, spec));
        }
        next.clock = clock.min(MAX_VERSION);
        let changed = taken.iter().any(|(name, spec)| match (current.group(name), spec) {
            (Some(g), Some(s)) => !same_content(g, s),
            (None, None) => false,
            _ => true,
        });
        let edits = changed.then(|| {
            let mut edits: Vec<(GroupName, Option<GroupSpec>)> =
                taken.into_iter().map(|(name, spec)| (name.clone(), spec.cloned())).collect();
            edits.sort_by(|a, b| a.0.cmp(&b.0));
            edits
        });
        Merged { edits, ledger: next, applied, conflicts }
    }

    /// A hash of every group's and tombstone's (name, revision, origin), not
    /// of the entries: expiry, which changes entries without a revision,
    /// never makes two nodes look out of sync. 64-bit FNV-1a over a fixed
    /// byte layout, so it is the same on every build and architecture.
    pub fn fingerprint(&self) -> u64 {
        let mut h = FNV_OFFSET;
        for (tag, map) in [(b'g', &self.records), (b't', &self.tombstones)] {
            for (name, r) in map {
                let name = name.as_str().as_bytes();
                h = fnv1a(h, &[tag, u8::try_from(name.len()).unwrap_or(u8::MAX)]);
                h = fnv1a(h, name);
                h = fnv1a(h, &r.stamp.revision.to_le_bytes());
                h = fnv1a(h, r.stamp.origin_bytes());
            }
        }
        h
    }

    /// What a node broadcasts: (version, fingerprint).
    pub fn digest(&self) -> (u64, u64) {
        (self.clock, self.fingerprint())
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The groups whose content (entries, their comments and expiries, the
/// attribute, the users) differs between `before` and `after`, with `true`
/// for those `after` lacks: what a local change touched, in name order.
pub fn touched(before: &Whitelist, after: &Whitelist) -> Vec<(GroupName, bool)> {
    let (mut a, mut b) = (before.groups().iter().peekable(), after.groups().iter().peekable());
    let mut out = Vec::new();
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.name() == y.name() => {
                if !same_group(x, y) {
                    out.push((y.name().clone(), false));
                }
                a.next();
                b.next();
            }
            (Some(x), Some(y)) if x.name() < y.name() => {
                out.push((x.name().clone(), true));
                a.next();
            }
            (_, Some(y)) => {
                out.push((y.name().clone(), false));
                b.next();
            }
            (Some(x), None) => {
                out.push((x.name().clone(), true));
                a.next();
            }
            (None, None) => return out,
        }
    }
}

/// Whether two groups hold the same content; shared lists compare by
/// address first.
fn same_group(a: &Group, b: &Group) -> bool {
    a.attribute() == b.attribute()
        && (std::ptr::eq(a.entries(), b.entries()) || a.entries() == b.entries())
        && (std::ptr::eq(a.users(), b.users()) || a.users() == b.users())
        && a.notes() == b.notes()
}

/// Whether `g` already holds what `s` describes.
fn same_content(g: &Group, s: &GroupSpec) -> bool {
    let mut users: Vec<&String> = s.users.iter().collect();
    users.sort();
    users.dedup();
    g.attribute() == s.attribute
        && g.entries().iter().eq(s.entries.iter().copied())
        && g.users().iter().eq(users)
        && (0..s.entries.len()).all(|i| g.meta(i) == s.meta.get(i).map(Meta::view).unwrap_or_default())
}

/// A group's content as it travels: no usage statistics.
fn spec_of(g: &Group) -> GroupSpec {
    let n = g.entries().len();
    GroupSpec {
        name: g.name().clone(),
        attribute: g.attribute(),
        entries: g.entries().to_vec(),
        meta: g.notes().to_meta(n),
        usage: Vec::new(),
        users: g.users().to_vec(),
    }
}

/// `s` with this node's usage statistics of the entries `old` already held
/// (new entries start with none; the store dates them when it installs).
fn with_usage(s: &GroupSpec, old: Option<&Group>) -> GroupSpec {
    let usage = s
        .entries
        .iter()
        .map(|e| old.and_then(|o| o.position(e).map(|i| o.usage(i))).unwrap_or_default())
        .collect::<Vec<Usage>>();
    GroupSpec { usage, ..s.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse_entry;
    use crate::store::{Change, Expiry, Note};
    use crate::Attribute;

    fn id(c: char) -> NodeId {
        NodeId::parse(c.to_string().repeat(NODE_ID_LEN).as_bytes()).unwrap()
    }

    fn name(s: &str) -> GroupName {
        GroupName::parse(s.as_bytes()).unwrap()
    }

    fn stamp(revision: u64, c: char) -> Stamp {
        Stamp { revision, origin: Some(id(c)) }
    }

    fn set(g: &str, items: &[&str]) -> Change {
        Change::Set {
            group: name(g),
            entries: items.iter().map(|s| parse_entry(s.as_bytes()).unwrap()).collect(),
            attribute: None,
            note: Note::default(),
        }
    }

    fn delete(g: &str) -> Change {
        Change::Delete { groups: vec![name(g)] }
    }

    /// A primary: its whitelist, its ledger, and the conflicts it counted.
    struct Node {
        me: NodeId,
        w: Whitelist,
        l: Ledger,
        conflicts: Vec<Conflict>,
    }

    impl Node {
        fn new(c: char) -> Node {
            Node { me: id(c), w: Whitelist::default(), l: Ledger::default(), conflicts: Vec::new() }
        }

        /// A client's change; returns the state it propagates.
        fn change(&mut self, change: Change) -> State {
            let next = self.w.plan(change, None).unwrap().next.unwrap();
            let touched = touched(&self.w, &next);
            let version = self.l.stamp_local(&touched, &self.me);
            self.w = next.plan(Change::Install { groups: next.specs(), version }, None).unwrap().next.unwrap_or(next);
            let names: Vec<GroupName> = touched.into_iter().map(|(n, _)| n).collect();
            self.l.state(&self.w, &names)
        }

        fn receive(&mut self, s: &State) -> Merged {
            let m = self.l.merge(&self.w, s);
            self.take(&m);
            self.conflicts.extend(m.conflicts.iter().cloned());
            m
        }

        fn take(&mut self, m: &Merged) {
            // The version follows the clock even when no group changed.
            let groups = m.groups(&self.w).unwrap_or_else(|| self.w.specs());
            let install = Change::Install { groups, version: m.ledger.clock() };
            self.w = self.w.plan(install, None).unwrap().next.unwrap_or_else(|| self.w.clone());
            self.l = m.ledger.clone();
        }

        fn shown(&self, g: &str) -> Option<Vec<String>> {
            self.w.group(&name(g)).map(|g| g.entries().iter().map(|e| e.to_string()).collect())
        }
    }

    #[test]
    fn node_ids_are_forty_lowercase_hex_characters() {
        let good = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(NodeId::parse(good.as_bytes()).unwrap().to_string(), good);
        for bad in [&good[..39], "0123456789ABCDEF0123456789abcdef01234567", "g123456789abcdef0123456789abcdef01234567"]
        {
            assert_eq!(
                NodeId::parse(bad.as_bytes()).unwrap_err().to_string(),
                format!("invalid node id '{bad}': 40 lowercase hex characters")
            );
        }
        assert!(NodeId::parse(&[b'0'; 41]).is_err());
        assert!(NodeId::parse(&[0; 40]).is_err());
    }

    #[test]
    fn stamps_order_by_revision_then_origin() {
        assert!(stamp(1, 'a') < stamp(1, 'b'));
        assert!(stamp(1, 'f') < stamp(2, '0'));
        assert!(Stamp::PRE_LEDGER < stamp(1, '0'));
        // A group the ledger does not know ranks below a pre-ledger one.
        assert!(None < Some(Stamp::PRE_LEDGER));
        assert_eq!(stamp(3, 'a').to_string(), format!("3@{}", "a".repeat(40)));
        assert_eq!(Stamp::PRE_LEDGER.to_string(), "0@pre-ledger");
        assert!(Stamp::PRE_LEDGER.is_valid());
        assert!(!Stamp { revision: 0, origin: Some(id('a')) }.is_valid());
        assert!(!Stamp { revision: 1, origin: None }.is_valid());
        assert!(!Stamp { revision: MAX_VERSION + 1, origin: Some(id('a')) }.is_valid());
        assert!(Record::PRE_LEDGER.is_valid());
        let r =
            |s: Stamp, seen: &[(char, u64)]| Record { stamp: s, seen: seen.iter().map(|&(c, r)| (id(c), r)).collect() };
        assert!(r(stamp(2, 'a'), &[('a', 1), ('b', 1)]).is_valid());
        assert!(!r(stamp(2, 'a'), &[('a', 1), ('b', 2)]).is_valid());
        assert!(!r(stamp(2, 'a'), &[('b', 2), ('a', 1)]).is_valid());
        assert!(!r(stamp(2, 'a'), &[('a', 1), ('a', 1)]).is_valid());
        assert!(!r(stamp(2, 'b'), &[('b', 2)]).is_valid());
        assert!(!r(stamp(2, 'a'), &[('b', 0)]).is_valid());
        assert!(!r(Stamp::PRE_LEDGER, &[('b', 1)]).is_valid());
        // Descent: the stamp itself, a seen revision or below, the pre-ledger state.
        let x = r(stamp(5, 'c'), &[('a', 3), ('b', 4)]);
        assert!(x.descends_from(&stamp(5, 'c')) && x.descends_from(&stamp(3, 'a')) && x.descends_from(&stamp(2, 'a')));
        assert!(x.descends_from(&Stamp::PRE_LEDGER));
        assert!(!x.descends_from(&stamp(4, 'a')) && !x.descends_from(&stamp(1, 'd')));
        // Its own origin's earlier changes it has seen, ancestors or not.
        assert!(x.descends_from(&stamp(4, 'c')) && x.descends_from(&stamp(1, 'c')));
        assert!(!x.descends_from(&stamp(6, 'c')));
        assert_eq!(x.then(stamp(6, 'a')), r(stamp(6, 'a'), &[('a', 3), ('b', 4), ('c', 5)]));
        assert_eq!(r(stamp(6, 'a'), &[('a', 3)]).then(stamp(7, 'a')), r(stamp(7, 'a'), &[('a', 6)]));
        assert_eq!(Record::PRE_LEDGER.then(stamp(1, 'a')), r(stamp(1, 'a'), &[]));
    }

    #[test]
    fn a_local_change_stamps_the_groups_it_touched() {
        let mut l = Ledger::default();
        let me = id('a');
        assert_eq!(l.stamp_local(&[], &me), 0);
        assert_eq!(l.stamp_local(&[(name("ab"), false), (name("cd"), false)], &me), 1);
        assert_eq!(l.records()[&name("ab")], Record { stamp: stamp(1, 'a'), seen: vec![] });
        assert_eq!(l.stamp_local(&[(name("ab"), false)], &me), 2);
        assert_eq!(l.records()[&name("ab")], Record { stamp: stamp(2, 'a'), seen: vec![(id('a'), 1)] });
        assert_eq!(l.records()[&name("cd")].stamp, stamp(1, 'a'));
        assert_eq!(l.stamp_local(&[(name("ab"), true)], &me), 3);
        assert!(!l.records().contains_key(&name("ab")));
        assert_eq!(l.tombstones()[&name("ab")], Record { stamp: stamp(3, 'a'), seen: vec![(id('a'), 2)] });
        assert_eq!(l.stamp_local(&[(name("ab"), false)], &me), 4);
        assert!(l.tombstones().is_empty());
        assert_eq!(l.records()[&name("ab")], Record { stamp: stamp(4, 'a'), seen: vec![(id('a'), 3)] });
        assert_eq!(l.digest().0, 4);
    }

    #[test]
    fn touched_names_every_kind_of_difference() {
        let mut a = Node::new('a');
        a.change(set("ab", &["10.0.0.1"]));
        a.change(set("cd", &["10.0.0.2"]));
        let w = a.w.clone();
        let t = |c: Change| touched(&w, &w.plan(c, None).unwrap().next.unwrap());
        assert_eq!(touched(&w, &w), []);
        assert_eq!(touched(&w, &w.clone()), []);
        assert_eq!(t(set("ab", &["10.0.0.3"])), [(name("ab"), false)]);
        assert_eq!(t(set("ef", &["10.0.0.3"])), [(name("ef"), false)]);
        assert_eq!(t(delete("ab")), [(name("ab"), true)]);
        let note = Note { comment: Some("vpn".into()), expiry: Expiry::Unchanged };
        let entries = vec![parse_entry(b"10.0.0.2").unwrap()];
        assert_eq!(t(Change::Add { group: name("cd"), entries: entries.clone(), note }), [(name("cd"), false)]);
        let note = Note { comment: None, expiry: Expiry::At(99) };
        assert_eq!(t(Change::Add { group: name("cd"), entries, note }), [(name("cd"), false)]);
        let hide = Change::Set {
            group: name("ab"),
            entries: vec![parse_entry(b"10.0.0.1").unwrap()],
            attribute: Some(Attribute::Hidden),
            note: Note::default(),
        };
        assert_eq!(t(hide), [(name("ab"), false)]);
        assert_eq!(t(Change::Bind { group: name("cd"), users: vec!["app".into()] }), [(name("cd"), false)]);
        let both = Change::Replace { groups: vec![GroupSpec::plain(name("bc"), Attribute::Show, vec![])], version: 0 };
        assert_eq!(t(both), [(name("ab"), true), (name("bc"), false), (name("cd"), true)]);
    }

    #[test]
    fn concurrent_edits_of_one_group_count_exactly_the_loser() {
        let (mut a, mut b) = (Node::new('a'), Node::new('b'));
        let base = a.change(set("ab", &["10.0.0.1"]));
        b.receive(&base);
        let from_a = a.change(set("ab", &["10.0.0.2"]));
        let from_b = b.change(set("ab", &["10.0.0.3"]));
        // Equal revisions: the greater origin, b, wins.
        let m = a.receive(&from_b);
        assert_eq!(m.conflicts, [Conflict { group: name("ab"), lost: stamp(2, 'a'), winner: stamp(2, 'b') }]);
        assert_eq!(m.applied, [Applied { group: name("ab"), stamp: stamp(2, 'b'), deleted: false }]);
        let m = b.receive(&from_a);
        assert!(m.applied.is_empty() && m.conflicts.is_empty() && m.edits.is_none());
        assert_eq!(a.shown("ab"), Some(vec!["10.0.0.3".to_string()]));
        assert_eq!(b.shown("ab"), a.shown("ab"));
        assert_eq!(a.l, b.l);
        assert_eq!(a.l.digest(), (2, b.l.fingerprint()));
        assert_eq!((a.conflicts.len(), b.conflicts.len()), (1, 0));
    }

    #[test]
    fn a_fast_forward_after_missed_changes_is_no_conflict() {
        let (mut a, mut b) = (Node::new('a'), Node::new('b'));
        b.receive(&a.change(set("ab", &["10.0.0.1"])));
        a.change(set("ab", &["10.0.0.2"]));
        a.change(set("ab", &["10.0.0.3"]));
        let last = a.change(set("ab", &["10.0.0.4"]));
        let m = b.receive(&last);
        assert!(m.conflicts.is_empty());
        assert_eq!(b.shown("ab"), Some(vec!["10.0.0.4".to_string()]));
        assert_eq!(b.l.clock(), 4);
        // The older states arriving late change nothing.
        assert!(b.receive(&a.l.state(&a.w, &[name("ab")])).applied.is_empty());
    }

    #[test]
    fn a_change_lost_to_a_node_that_ran_ahead_is_counted() {
        let (mut a, mut b) = (Node::new('a'), Node::new('b'));
        b.receive(&a.change(set("ab", &["10.0.0.1"])));
        a.change(set("ab", &["10.0.0.2"]));
        // b changes other groups and then this one twice, never seeing (2, a):
        // the last change's predecessor (4, b) sorts above (2, a).
        b.change(set("cd", &["10.0.0.3"]));
        b.change(set("ab", &["10.0.0.4"]));
        let last = b.change(set("ab", &["10.0.0.5"]));
        assert_eq!(last.groups[0].1, Record { stamp: stamp(4, 'b'), seen: vec![(id('a'), 1), (id('b'), 3)] });
        let m = a.receive(&last);
        assert_eq!(m.conflicts, [Conflict { group: name("ab"), lost: stamp(2, 'a'), winner: stamp(4, 'b') }]);
        // Once a's change has been seen, a later one of b overwrites it quietly.
        let (mut c, mut d) = (Node::new('c'), Node::new('d'));
        d.receive(&c.change(set("ab", &["10.0.0.1"])));
        d.receive(&c.change(set("ab", &["10.0.0.2"])));
        d.change(set("ab", &["10.0.0.3"]));
        assert!(c.receive(&d.change(set("ab", &["10.0.0.4"]))).conflicts.is_empty());
    }

    #[test]
    fn concurrent_edits_of_different_groups_all_survive() {
        let (mut a, mut b, mut c) = (Node::new('a'), Node::new('b'), Node::new('c'));
        let sa = a.change(set("ab", &["10.0.0.1"]));
        let sb = b.change(set("cd", &["10.0.0.2"]));
        let sc = c.change(set("ef", &["10.0.0.3"]));
        for (n, states) in [(&mut a, [&sb, &sc]), (&mut b, [&sa, &sc]), (&mut c, [&sb, &sa])] {
            for s in states {
                assert!(n.receive(s).conflicts.is_empty());
            }
        }
        for n in [&a, &b, &c] {
            assert_eq!(n.w.groups().iter().map(|g| g.name().as_str()).collect::<Vec<_>>(), ["ab", "cd", "ef"]);
            assert_eq!(n.l.digest(), a.l.digest());
        }
    }

    #[test]
    fn delete_against_a_concurrent_edit() {
        let (mut a, mut b) = (Node::new('a'), Node::new('b'));
        b.receive(&a.change(set("ab", &["10.0.0.1"])));
        let del = a.change(delete("ab"));
        let edit = b.change(set("ab", &["10.0.0.2"]));
        // Equal revisions: b's edit wins and the deletion is the lost change.
        let m = a.receive(&edit);
        assert_eq!(m.conflicts, [Conflict { group: name("ab"), lost: stamp(2, 'a'), winner: stamp(2, 'b') }]);
        assert!(b.receive(&del).applied.is_empty());
        assert_eq!(a.shown("ab"), Some(vec!["10.0.0.2".to_string()]));
        assert!(a.l.tombstones().is_empty());
        assert_eq!(a.l, b.l);
        // The other way: a later deletion wins over an edit it had not seen,
        // though b moved the group past a's revision by its own change first.
        let edit = a.change(set("ab", &["10.0.0.3"]));
        b.change(set("ab", &["10.0.0.4"]));
        let del = b.change(delete("ab"));
        let m = a.receive(&del);
        assert_eq!(m.conflicts, [Conflict { group: name("ab"), lost: stamp(3, 'a'), winner: stamp(4, 'b') }]);
        assert_eq!(m.applied, [Applied { group: name("ab"), stamp: stamp(4, 'b'), deleted: true }]);
        assert_eq!(m.edits, Some(vec![(name("ab"), None)]));
        assert!(b.receive(&edit).applied.is_empty());
        assert_eq!(a.shown("ab"), None);
        assert_eq!(a.l, b.l);
    }

    #[test]
    fn a_group_deleted_then_recreated_elsewhere_comes_back() {
        let (mut a, mut b) = (Node::new('a'), Node::new('b'));
        b.receive(&a.change(set("ab", &["10.0.0.1"])));
        b.receive(&a.change(delete("ab")));
        assert_eq!(b.shown("ab"), None);
        let again = b.change(set("ab", &["10.0.0.9"]));
        let m = a.receive(&again);
        assert!(m.conflicts.is_empty());
        assert_eq!(a.shown("ab"), Some(vec!["10.0.0.9".to_string()]));
        assert_eq!(a.l.records()[&name("ab")], Record { stamp: stamp(3, 'b'), seen: vec![(id('a'), 2)] });
        assert!(a.l.tombstones().is_empty());
        // A stale copy of the first state cannot bring the old content back.
        let old = State {
            clock: 1,
            groups: vec![(GroupSpec::plain(name("ab"), Attribute::Show, vec![parse_entry(b"10.0.0.1").unwrap()]), {
                Record { stamp: stamp(1, 'a'), seen: vec![] }
            })],
            tombstones: vec![],
        };
        assert!(a.receive(&old).applied.is_empty());
    }

    #[test]
    fn install_applies_a_state_with_an_unchanged_stamp() {
        let mut a = Node::new('a');
        a.change(set("ab", &["10.0.0.1", "10.0.0.2"]));
        let before = a.l.clone();
        // What a primary's expiry sweep propagates: an entry gone, same stamp.
        let swept =
            a.w.plan(Change::Remove { group: name("ab"), entries: vec![parse_entry(b"10.0.0.2").unwrap()] }, None);
        let swept = swept.unwrap().next.unwrap();
        let state = a.l.state(&swept, &[name("ab")]);
        assert_eq!(state.groups[0].1.stamp, stamp(1, 'a'));
        let m = a.l.merge(&a.w, &state);
        assert!(m.edits.is_none() && m.applied.is_empty());
        let m = a.l.install(&a.w, &state);
        assert_eq!(m.applied, [Applied { group: name("ab"), stamp: stamp(1, 'a'), deleted: false }]);
        a.take(&m);
        assert_eq!(a.shown("ab"), Some(vec!["10.0.0.1".to_string()]));
        assert_eq!(a.l, before);
        // An install overrides a newer local state too, and never counts.
        let mut r = Node::new('c');
        r.change(set("ab", &["10.9.9.9"]));
        r.change(set("ab", &["10.9.9.8"]));
        let m = r.l.install(&r.w, &state);
        assert!(m.conflicts.is_empty());
        r.take(&m);
        assert_eq!(r.shown("ab"), Some(vec!["10.0.0.1".to_string()]));
        assert_eq!(r.l.records()[&name("ab")].stamp, stamp(1, 'a'));
        assert_eq!(r.l.clock(), 2);
    }

    #[test]
    fn merging_keeps_local_usage_of_the_entries_that_stay() {
        let (mut a, mut b) = (Node::new('a'), Node::new('b'));
        b.receive(&a.change(set("ab", &["10.0.0.1", "10.0.0.2"])));
        let addr = crate::entry::parse_address(b"10.0.0.1").unwrap();
        let policy = crate::store::Policy { allow_loopback: false, allow_unixsocket: false, deny_when_empty: false };
        let hit = b.w.verdict(crate::store::Peer::Ip(addr), policy).hit.unwrap();
        b.w.record_hit(hit, 77);
        let s = a.change(set("ab", &["10.0.0.3", "10.0.0.1"]));
        let m = b.l.merge(&b.w, &s);
        let groups = m.groups(&b.w).unwrap();
        assert_eq!(groups[0].usage, [Usage::default(), Usage { added: 0, hits: 1, last_hit: 77 }]);
        assert!(s.groups.iter().all(|(g, _)| g.usage.is_empty()));
    }

    #[test]
    fn merge_is_idempotent() {
        let (mut a, mut b) = (Node::new('a'), Node::new('b'));
        a.change(set("ab", &["10.0.0.1"]));
        a.change(delete("ab"));
        a.change(set("cd", &["10.0.0.1"]));
        b.change(set("ab", &["10.0.0.5"]));
        let full = a.l.full_state(&a.w);
        let first = b.receive(&full);
        assert_eq!(first.applied.len(), 2);
        let again = b.l.merge(&b.w, &full);
        assert!(again.applied.is_empty() && again.edits.is_none() && again.conflicts.is_empty());
        assert_eq!(again.ledger, b.l);
    }

    #[test]
    fn pre_ledger_groups_rank_lowest_and_still_spread() {
        let old = Whitelist::default().plan(set("ab", &["10.0.0.1"]), None).unwrap().next.unwrap();
        let l = Ledger::from_whitelist(&old);
        assert_eq!(l.records()[&name("ab")], Record::PRE_LEDGER);
        assert_ne!(l.fingerprint(), Ledger::default().fingerprint());
        let mut a = Node { w: old, l, ..Node::new('a') };
        // To a node that lacks the group, it spreads; it counts no conflict.
        let mut b = Node::new('b');
        let m = b.receive(&a.l.full_state(&a.w));
        assert_eq!(m.applied, [Applied { group: name("ab"), stamp: Stamp::PRE_LEDGER, deleted: false }]);
        assert_eq!(b.l.digest(), a.l.digest());
        // A real change overwrites it without a conflict.
        let s = b.change(set("ab", &["10.0.0.2"]));
        assert_eq!(s.groups[0].1, Record { stamp: stamp(1, 'b'), seen: vec![] });
        assert!(a.receive(&s).conflicts.is_empty());
        assert_eq!(a.shown("ab"), Some(vec!["10.0.0.2".to_string()]));
        // A merge into a whitelist whose ledger lacks the record treats it the same.
        let old = Whitelist::default().plan(set("ab", &["10.0.0.1"]), None).unwrap().next.unwrap();
        let m = Ledger::default().merge(&old, &s);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.ledger, a.l);
    }

    #[test]
    fn complete_aligns_the_ledger_with_the_whitelist() {
        let mut a = Node::new('a');
        a.change(set("ab", &["10.0.0.1"]));
        a.change(set("cd", &["10.0.0.1"]));
        a.change(delete("cd"));
        let mut l = a.l.clone();
        let other = Whitelist::default().plan(set("cd", &["10.0.0.1"]), None).unwrap().next.unwrap();
        l.complete(&other);
        assert_eq!(l.records().iter().collect::<Vec<_>>(), [(&name("cd"), &Record::PRE_LEDGER)]);
        assert!(l.tombstones().is_empty());
        assert_eq!(l.clock(), 3);
    }

    #[test]
    fn the_fingerprint_covers_stamps_not_entries() {
        let mut a = Node::new('a');
        a.change(set("ab", &["10.0.0.1", "10.0.0.2"]));
        a.change(set("cd", &["10.0.0.3"]));
        a.change(delete("cd"));
        // The published FNV-1a test vectors, then a pinned value: the same on
        // every build and architecture.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(a.l.fingerprint(), 0xad34_dc54_c18b_9c20);
        let f = a.l.fingerprint();
        let swept =
            a.w.plan(Change::Remove { group: name("ab"), entries: vec![parse_entry(b"10.0.0.2").unwrap()] }, None);
        let m = a.l.install(&a.w, &a.l.state(&swept.unwrap().next.unwrap(), &[name("ab")]));
        assert_eq!(m.ledger.fingerprint(), f);
        // A tombstone and a group with the same stamp differ.
        let mut g = Ledger::default();
        g.stamp_local(&[(name("ab"), false)], &id('a'));
        let mut t = Ledger::default();
        t.stamp_local(&[(name("ab"), true)], &id('a'));
        assert_ne!(g.fingerprint(), t.fingerprint());
        assert_eq!(g.digest().0, t.digest().0);
        let mut other = Ledger::default();
        other.stamp_local(&[(name("ab"), false)], &id('b'));
        assert_ne!(g.fingerprint(), other.fingerprint());
    }

    #[test]
    fn states_name_only_what_the_ledger_knows() {
        let mut a = Node::new('a');
        a.change(set("ab", &["10.0.0.1"]));
        a.change(set("cd", &["10.0.0.1"]));
        a.change(delete("cd"));
        let s = a.l.state(&a.w, &[name("cd"), name("zz"), name("ab"), name("ab")]);
        assert_eq!(s.clock, 3);
        assert_eq!(s.groups.iter().map(|(g, _)| g.name.as_str()).collect::<Vec<_>>(), ["ab"]);
        assert_eq!(s.tombstones, [(name("cd"), Record { stamp: stamp(3, 'a'), seen: vec![(id('a'), 2)] })]);
        assert_eq!(s, a.l.full_state(&a.w));
        assert_eq!(State::decode(&s.encode()).unwrap(), s);
    }
}

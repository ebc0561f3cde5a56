//! Property tests of the cluster ledger: simulated primaries that change
//! groups and exchange partial and full states in any order, with
//! duplicates and losses, converge on one state; a replica that installs
//! what its primary propagates stays identical to it; the binary forms
//! round-trip and refuse damage without panicking.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use whitelist_core::encoding::{decode_with_ledger, encode_with_ledger};
use whitelist_core::ledger::{touched, Conflict, Merged};
use whitelist_core::store::{Expiry, Meta, Note};
use whitelist_core::{
    parse_entry, Attribute, Change, GroupName, GroupSpec, Ledger, NodeId, Record, Stamp, State, Whitelist,
};

const GROUPS: [&str; 3] = ["ab", "cd", "ef"];
const ADDRS: [&str; 5] = ["10.0.0.1", "10.0.0.0/24", "192.0.2.7", "2001:db8::/32", "::1"];
const COMMENTS: [&str; 3] = ["", "vpn", "office"];
const USERS: [&str; 3] = ["app", "admin", "ops"];

fn name(s: &str) -> GroupName {
    GroupName::parse(s.as_bytes()).unwrap()
}

fn node_id(i: usize) -> NodeId {
    let c = b"5a0f"[i % 4];
    NodeId::parse(&[c; 40]).unwrap()
}

/// What one event of a run does.
#[derive(Clone, Debug)]
enum Event {
    /// A client's change on a node: SET (entries by mask), DELETE, ADD with
    /// a comment, or BIND of a user.
    Change { node: usize, group: usize, kind: u8, mask: u8, extra: usize },
    /// A state sent earlier arrives (again) at a node.
    Deliver { message: usize, to: usize },
    /// One node sends another its full state.
    Full { from: usize, to: usize },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..4usize, 0..GROUPS.len(), 0..4u8, any::<u8>(), 0..3usize)
            .prop_map(|(node, group, kind, mask, extra)| Event::Change { node, group, kind, mask, extra }),
        4 => (any::<usize>(), 0..4usize).prop_map(|(message, to)| Event::Deliver { message, to }),
        1 => (0..4usize, 0..4usize).prop_map(|(from, to)| Event::Full { from, to }),
    ]
}

/// What each change of each group had seen, kept as whole sets: its
/// ancestors, and every earlier change its node made to the group.
type History = BTreeMap<(GroupName, Stamp), BTreeSet<Stamp>>;

struct Node {
    me: NodeId,
    w: Whitelist,
    l: Ledger,
}

impl Node {
    fn take(&mut self, m: &Merged) {
        // The version follows the clock even when no group changed.
        let groups = m.groups(&self.w).unwrap_or_else(|| self.w.specs());
        let install = Change::Install { groups, version: m.ledger.clock() };
        self.w = self.w.plan(install, None).unwrap().next.unwrap_or_else(|| self.w.clone());
        self.l = m.ledger.clone();
    }

    /// Merges `s`; returns the state the node propagates to its replica.
    /// `history` holds what every change had seen: a local change is
    /// reported lost exactly when the change that overwrites it had not.
    fn receive(&mut self, s: &State, history: &History) -> State {
        let m = self.l.merge(&self.w, s);
        let expected: Vec<Conflict> = m
            .applied
            .iter()
            .filter_map(|a| {
                let lost = self.l.stamp_of(&a.group).filter(|l| *l != Stamp::PRE_LEDGER)?;
                let seen = history.get(&(a.group.clone(), a.stamp)).is_some_and(|h| h.contains(&lost));
                (!seen).then(|| Conflict { group: a.group.clone(), lost, winner: a.stamp })
            })
            .collect();
        assert_eq!(m.conflicts, expected);
        self.take(&m);
        // Merging the same state again changes nothing.
        let again = self.l.merge(&self.w, s);
        assert!(again.applied.is_empty() && again.edits.is_none() && again.conflicts.is_empty());
        assert_eq!(again.ledger, self.l);
        let names: Vec<GroupName> = m.applied.iter().map(|a| a.group.clone()).collect();
        self.l.state(&self.w, &names)
    }
}

fn change_of(group: &GroupName, kind: u8, mask: u8, extra: usize) -> Change {
    let entries: Vec<_> = ADDRS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, a)| parse_entry(a.as_bytes()).unwrap())
        .collect();
    match kind {
        0 => Change::Set { group: group.clone(), entries, attribute: None, note: Note::default() },
        1 => Change::Delete { groups: vec![group.clone()] },
        2 => Change::Add {
            group: group.clone(),
            entries: entries.into_iter().take(2).collect(),
            note: Note { comment: Some(COMMENTS[extra].into()), expiry: Expiry::At(2_000_000_000 + extra as u64) },
        },
        _ => Change::Bind { group: group.clone(), users: vec![USERS[extra].to_string()] },
    }
}

/// What a group looks like when it travels (no usage).
fn content(w: &Whitelist, g: &GroupName) -> Option<GroupSpec> {
    Ledger::from_whitelist(w).state(w, std::slice::from_ref(g)).groups.into_iter().next().map(|(s, _)| s)
}

fn run(nodes: usize, events: &[Event]) {
    let mut ns: Vec<Node> =
        (0..nodes).map(|i| Node { me: node_id(i), w: Whitelist::default(), l: Ledger::default() }).collect();
    // Node 0's replica installs whatever node 0 propagates.
    let mut replica = Node { me: node_id(0), w: Whitelist::default(), l: Ledger::default() };
    let mut sent: Vec<State> = Vec::new();
    // Every change ever made: the greatest stamp of a group must win.
    let mut writes: BTreeMap<GroupName, (Stamp, Option<GroupSpec>)> = BTreeMap::new();
    let mut history = History::new();
    let mut own: BTreeMap<(usize, GroupName), BTreeSet<Stamp>> = BTreeMap::new();
    let propagate = |from: usize, s: State, replica: &mut Node| {
        if from == 0 {
            let m = replica.l.install(&replica.w, &s);
            assert!(m.conflicts.is_empty());
            replica.take(&m);
        }
        s
    };
    for e in events {
        match *e {
            Event::Change { node, group, kind, mask, extra } => {
                let node = node % nodes;
                let n = &mut ns[node];
                let g = name(GROUPS[group]);
                let Ok(plan) = n.w.plan(change_of(&g, kind, mask, extra), None) else { continue };
                let Some(next) = plan.next else { continue };
                let t = touched(&n.w, &next);
                if t.is_empty() {
                    continue;
                }
                for (g, _) in &t {
                    // What the new state has seen: what the state it replaces
                    // had, that state, and every earlier change of this node
                    // to the group (lost here or not, a node knows its own).
                    let own = own.entry((node, g.clone())).or_default();
                    let mut set = own.clone();
                    if let Some(before) = n.l.stamp_of(g) {
                        set.extend(history.get(&(g.clone(), before)).into_iter().flatten().copied());
                        set.insert(before);
                    }
                    let stamp = Stamp { revision: n.l.clock() + 1, origin: Some(n.me) };
                    own.insert(stamp);
                    history.insert((g.clone(), stamp), set);
                }
                let version = n.l.stamp_local(&t, &n.me);
                n.w = next.plan(Change::Install { groups: next.specs(), version }, None).unwrap().next.unwrap_or(next);
                let names: Vec<GroupName> = t.iter().map(|(g, _)| g.clone()).collect();
                for g in &names {
                    let stamp = n.l.stamp_of(g).unwrap();
                    let w = writes.entry(g.clone()).or_insert((Stamp::PRE_LEDGER, None));
                    assert_ne!(stamp, w.0, "a stamp made twice");
                    if stamp > w.0 {
                        *w = (stamp, content(&n.w, g));
                    }
                }
                let s = n.l.state(&n.w, &names);
                let s = propagate(node, s, &mut replica);
                // It travels in its binary form.
                sent.push(State::decode(&s.encode()).unwrap());
            }
            Event::Deliver { message, to } => {
                if sent.is_empty() {
                    continue;
                }
                let s = sent[message % sent.len()].clone();
                let to = to % nodes;
                let out = ns[to].receive(&s, &history);
                propagate(to, out, &mut replica);
            }
            Event::Full { from, to } => {
                let (from, to) = (from % nodes, to % nodes);
                let s = ns[from].l.full_state(&ns[from].w);
                let out = ns[to].receive(&s, &history);
                propagate(to, out, &mut replica);
            }
        }
    }
    // The final exchange: every node sends every other its full state, twice.
    for _ in 0..2 {
        for from in 0..nodes {
            for to in 0..nodes {
                let s = ns[from].l.full_state(&ns[from].w);
                let out = ns[to].receive(&s, &history);
                propagate(to, out, &mut replica);
            }
        }
    }
    let first = ns[0].l.full_state(&ns[0].w);
    for n in &ns {
        assert_eq!(n.l.full_state(&n.w), first);
        assert_eq!(n.l.digest(), ns[0].l.digest());
        assert_eq!(n.w.version(), n.l.clock());
    }
    assert_eq!(replica.l.full_state(&replica.w), first);
    assert_eq!(replica.l, ns[0].l);
    for (g, (stamp, spec)) in &writes {
        assert_eq!(ns[0].l.stamp_of(g), Some(*stamp), "group {g}");
        assert_eq!(content(&ns[0].w, g), *spec, "group {g}");
    }
    // Every group a node holds has a record; nothing else does.
    assert_eq!(ns[0].l.records().len(), ns[0].w.groups().len());
}

/// A valid record: a chain of changes by random origins.
fn record() -> impl Strategy<Value = Record> {
    prop::collection::vec((1..4u64, 0..4usize), 0..4).prop_map(|steps| {
        let mut r = Record::PRE_LEDGER;
        let mut rev = 0;
        for (gap, who) in steps {
            rev += gap;
            r = r.then(Stamp { revision: rev, origin: Some(node_id(who)) });
        }
        r
    })
}

fn state() -> impl Strategy<Value = State> {
    let group = (
        prop::sample::select(GROUPS.to_vec()),
        any::<bool>(),
        prop::collection::vec((0..ADDRS.len(), 0..COMMENTS.len(), prop::option::of(any::<u64>())), 0..5),
        prop::collection::vec(prop::sample::select(USERS.to_vec()), 0..3),
        record(),
    );
    let tomb = (prop::sample::select(vec!["gh", "ij", "kl"]), record());
    (prop::collection::vec(group, 0..3), prop::collection::vec(tomb, 0..3), 0..20u64).prop_map(
        |(groups, tombs, extra)| {
            let mut by_name: BTreeMap<GroupName, (GroupSpec, Record)> = BTreeMap::new();
            for (g, hidden, entries, users, r) in groups {
                let mut spec =
                    GroupSpec::plain(name(g), if hidden { Attribute::Hidden } else { Attribute::Show }, vec![]);
                for (a, c, exp) in entries {
                    let e = parse_entry(ADDRS[a].as_bytes()).unwrap();
                    if !spec.entries.contains(&e) {
                        spec.entries.push(e);
                        let comment = Some(COMMENTS[c]).filter(|c| !c.is_empty()).map(Into::into);
                        spec.meta.push(Meta { comment, expires: exp });
                    }
                }
                if spec.meta.iter().all(|m| *m == Meta::default()) {
                    spec.meta.clear();
                }
                spec.users = users.into_iter().map(String::from).collect();
                spec.users.sort();
                spec.users.dedup();
                by_name.insert(spec.name.clone(), (spec, r));
            }
            let tombstones: BTreeMap<GroupName, Record> =
                tombs.into_iter().filter(|(_, r)| r.stamp != Stamp::PRE_LEDGER).map(|(n, r)| (name(n), r)).collect();
            let top =
                by_name.values().map(|(_, r)| r.stamp.revision).chain(tombstones.values().map(|r| r.stamp.revision));
            State {
                clock: top.max().unwrap_or(0) + extra,
                groups: by_name.into_values().collect(),
                tombstones: tombstones.into_iter().collect(),
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random histories on 2 to 4 primaries, states delivered in any order,
    /// duplicated or dropped, then a full exchange: one state everywhere.
    #[test]
    fn primaries_converge_on_the_greatest_stamp_of_every_group(
        nodes in 2..=4usize,
        events in prop::collection::vec(event(), 0..60),
    ) {
        run(nodes, &events);
    }

    #[test]
    fn states_round_trip(s in state()) {
        let bytes = s.encode();
        prop_assert_eq!(State::decode(&bytes).unwrap(), s);
    }

    /// Damage is refused: any cut, any flipped bit (the checksum), and
    /// whatever survives a recomputed checksum reads back canonically.
    #[test]
    fn damaged_states_are_refused_without_panic(s in state(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0..8u32, junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let bytes = s.encode();
        let at = cut.index(bytes.len());
        prop_assert!(State::decode(&bytes[..at]).is_err());
        let mut bad = bytes.clone();
        bad[flip.index(bytes.len())] ^= 1 << bit;
        prop_assert!(State::decode(&bad).is_err());
        // Resealed: the content checks alone must catch it or it is canonical.
        let body = bad.len() - 4;
        let crc = crc32fast::hash(&bad[..body]);
        bad[body..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(back) = State::decode(&bad) {
            prop_assert_eq!(back.encode(), bad);
        }
        prop_assert!(State::decode(&junk).is_err());
        let mut framed = b"WLCS\x01".to_vec();
        framed.extend_from_slice(&junk);
        let crc = crc32fast::hash(&framed);
        framed.extend_from_slice(&crc.to_le_bytes());
        if let Ok(back) = State::decode(&framed) {
            prop_assert_eq!(back.encode(), framed);
        }
    }

    /// A whitelist and its ledger, after random local changes and merges,
    /// survive the persisted form.
    #[test]
    fn the_persisted_ledger_round_trips(s in state(), t in state()) {
        let me = node_id(1);
        let mut w = Whitelist::default();
        let mut l = Ledger::default();
        for s in [&s, &t] {
            let m = l.merge(&w, s);
            if let Some(groups) = m.groups(&w) {
                w = w.plan(Change::Install { groups, version: m.ledger.clock() }, None).unwrap().next.unwrap_or(w);
            }
            l = m.ledger;
            let touched: Vec<(GroupName, bool)> = s.groups.iter().map(|(g, _)| (g.name.clone(), false)).collect();
            l.stamp_local(&touched, &me);
        }
        let bytes = encode_with_ledger(&w, Some(&l));
        let (back, ledger) = decode_with_ledger(&bytes).unwrap();
        prop_assert_eq!(whitelist_core::encoding::encode(&back), whitelist_core::encoding::encode(&w));
        if l.clock() > 0 {
            prop_assert_eq!(ledger, Some(l));
        } else {
            prop_assert_eq!(ledger, None);
        }
    }
}

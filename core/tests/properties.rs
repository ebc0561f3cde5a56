//! Property tests: the compiled matcher against a linear scan, the encoding and
//! the JSON document against round trips, the decoders against random bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use whitelist_core::command::count_items;
use whitelist_core::document::{count_document, export, parse_document};
use whitelist_core::encoding::{decode, encode};
use whitelist_core::{
    parse, parse_entry, Addr, Change, Entry, GroupName, Limits, Peer, Policy, Reason, Verb, Whitelist,
};

const STRICT: Policy = Policy { allow_loopback: false, allow_unixsocket: false, deny_when_empty: false };

/// IPv4 addresses crowded into a few /16s so that entries overlap often.
fn v4_addr() -> impl Strategy<Value = u32> {
    (prop::sample::select(vec![0x0a00_0000u32, 0x0a01_0000, 0xc0a8_0000, 0x7f00_0000, 0, 0xffff_0000]), any::<u16>())
        .prop_map(|(base, low)| base | u32::from(low & 0x0f0f))
}

/// IPv6 addresses crowded the same way.
fn v6_addr() -> impl Strategy<Value = u128> {
    (prop::sample::select(vec![0x2001_0db8u128 << 96, 0xfe80u128 << 112, 0, u128::MAX << 16]), any::<u16>())
        .prop_map(|(base, low)| base | u128::from(low & 0x0f0f))
}

fn addr() -> impl Strategy<Value = Addr> {
    prop_oneof![v4_addr().prop_map(Addr::V4), v6_addr().prop_map(Addr::V6)]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (v4_addr(), prop_oneof![0u8..=32, 16u8..=32, Just(32u8)]).prop_map(|(a, len)| {
            let text =
                format!("{}/{}", Ipv4Addr::from(a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)), len);
            parse_entry(text.as_bytes()).unwrap()
        }),
        (v6_addr(), prop_oneof![0u8..=128, 100u8..=128, Just(128u8)]).prop_map(|(a, len)| {
            let masked = a & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            // Mapped IPv4 blocks are stored as IPv4; parse to get the canonical entry.
            parse_entry(format!("{}/{}", Ipv6Addr::from(masked), len).as_bytes()).unwrap()
        }),
    ]
}

fn group_name() -> impl Strategy<Value = GroupName> {
    prop::sample::select(vec!["aa", "bb", "cc", "dd", "ee", "zz"]).prop_map(|n| GroupName::parse(n.as_bytes()).unwrap())
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (group_name(), prop::collection::vec(entry(), 1..12)).prop_map(|(group, entries)| Change::Set {
            group,
            entries,
            attribute: None,
            note: Default::default()
        }),
        (group_name(), prop::collection::vec(entry(), 1..8)).prop_map(|(group, entries)| Change::Add {
            group,
            entries,
            note: Default::default()
        }),
        (group_name(), prop::collection::vec(entry(), 1..8))
            .prop_map(|(group, entries)| Change::Remove { group, entries }),
        prop::collection::vec(group_name(), 1..3).prop_map(|groups| Change::Delete { groups }),
        (group_name(), prop::collection::vec(user(), 1..3)).prop_map(|(group, users)| Change::Bind { group, users }),
        (group_name(), prop::collection::vec(user(), 1..3)).prop_map(|(group, users)| Change::Unbind { group, users }),
    ]
}

/// An ACL user name from a small pool, so bindings meet again.
fn user() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["app", "admin", "default", "ops-1", "é"]).prop_map(String::from)
}

/// The reference: scan every entry of every group.
fn naive(w: &Whitelist, a: Addr) -> Option<(String, Entry)> {
    let mut best: Option<(u8, usize, Entry)> = None;
    for (gi, g) in w.groups().iter().enumerate() {
        for e in g.entries() {
            if e.contains(a) {
                let len = e.net().prefix_len();
                let better = match best {
                    None => true,
                    Some((blen, bgi, _)) => len > blen || (len == blen && gi < bgi),
                };
                if better {
                    best = Some((len, gi, e));
                }
            }
        }
    }
    best.map(|(_, gi, e)| (w.groups()[gi].name().to_string(), e))
}

fn build(changes: Vec<Change>) -> Whitelist {
    let mut w = Whitelist::default();
    for c in changes {
        // A binding of a group that does not exist is refused: skipped.
        if let Ok(Some(next)) = w.plan(c, None).map(|p| p.next) {
            w = next;
        }
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matcher_agrees_with_a_linear_scan(changes in prop::collection::vec(change(), 1..20), probes in prop::collection::vec(addr(), 1..64)) {
        let w = build(changes);
        let rebuilt = Whitelist::restore(
            w.groups().iter().map(|g| whitelist_core::GroupSpec {
                name: g.name().clone(), attribute: g.attribute(), entries: g.entries().to_vec(), meta: Vec::new(), usage: Vec::new(),
 users: g.users().to_vec(),
            }).collect(),
            w.version(),
        );
        for a in probes {
            let expected = naive(&w, a);
            for candidate in [&w, &rebuilt] {
                let (verdict, matched) = candidate.check(a, STRICT);
                let got = matched.map(|(g, e)| (g.name().to_string(), e));
                prop_assert_eq!(&got, &expected, "address {}", a);
                if w.is_enabled() {
                    prop_assert_eq!(verdict.allowed, expected.is_some());
                    prop_assert_eq!(verdict.reason, if expected.is_some() { Reason::Entry } else { Reason::NoMatch });
                } else {
                    prop_assert_eq!(verdict.reason, Reason::WhitelistEmpty);
                }
            }
        }
    }

    #[test]
    fn entry_display_parses_back_to_itself(e in entry()) {
        let text = e.to_string();
        prop_assert_eq!(parse_entry(text.as_bytes()).unwrap(), e);
    }

    #[test]
    fn any_ip_address_parses_as_its_canonical_entry(ip in any::<IpAddr>()) {
        let e = parse_entry(ip.to_string().as_bytes()).unwrap();
        let a = Addr::from(ip);
        prop_assert!(e.contains(a));
        prop_assert_eq!(e, Entry::host(a));
    }

    #[test]
    fn peer_strings_parse_as_redis_formats_them(ip in any::<IpAddr>(), pad in 0usize..8) {
        let mut raw = ip.to_string().into_bytes();
        raw.extend(std::iter::repeat(0).take(pad));
        prop_assert_eq!(whitelist_core::parse_peer(&raw), Some(Addr::from(ip)));
    }

    #[test]
    fn encoding_round_trips(changes in prop::collection::vec(change(), 0..20)) {
        let w = build(changes);
        let back = decode(&encode(&w)).unwrap();
        prop_assert_eq!(back.version(), w.version());
        prop_assert_eq!(back.groups().len(), w.groups().len());
        for (a, b) in back.groups().iter().zip(w.groups()) {
            prop_assert_eq!(a.name(), b.name());
            prop_assert_eq!(a.attribute(), b.attribute());
            prop_assert_eq!(a.entries(), b.entries());
        }
    }

    #[test]
    fn document_round_trips(changes in prop::collection::vec(change(), 0..20)) {
        let w = build(changes);
        // The kept flags agree with the groups.
        prop_assert_eq!(w.has_bindings(), !w.bindings().is_empty());
        prop_assert_eq!(w.default_bound(), w.is_bound("default"));
        let doc = parse_document(export(&w).as_bytes(), None).unwrap();
        prop_assert_eq!(doc.version, w.version());
        let back = w.plan(Change::Install { groups: doc.groups, version: doc.version }, None).unwrap();
        prop_assert!(back.next.is_none(), "re-importing the export changed the whitelist");
    }

    #[test]
    fn decode_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_damaged_payloads(changes in prop::collection::vec(change(), 0..8), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = encode(&build(changes));
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode(&bytes);
        bytes.truncate(cut.index(bytes.len()));
        prop_assert!(decode(&bytes).is_err());
    }

    #[test]
    fn command_parsing_never_panics(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..6), verb in prop::sample::select(vec![Verb::Set, Verb::Add, Verb::Remove, Verb::Del, Verb::Get, Verb::List, Verb::Check, Verb::LoadClients, Verb::Help, Verb::Export, Verb::Import, Verb::Bind, Verb::Unbind, Verb::Bindings, Verb::Denied, Verb::Stale])) {
        let raw: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        if let Err(e) = parse(verb, &raw, None) {
            let text = e.to_string();
            prop_assert!(text.starts_with("ERR "));
            prop_assert!(!text.contains('\r') && !text.contains('\n'));
        }
    }

    #[test]
    fn a_rejected_change_leaves_the_state_alone(changes in prop::collection::vec(change(), 0..10), extra in change()) {
        let w = build(changes);
        let limits = whitelist_core::Limits { max_groups: 2, max_entries_per_group: 3 };
        let before = encode(&w);
        let _ = w.plan(extra, Some(&limits));
        prop_assert_eq!(encode(&w), before);
    }

    #[test]
    fn unix_and_unknown_peers(changes in prop::collection::vec(change(), 0..5)) {
        let w = build(changes);
        let v = w.verdict(Peer::Unknown, Policy { allow_loopback: true, allow_unixsocket: true, deny_when_empty: false });
        prop_assert_eq!(v.allowed, !w.is_enabled());
        let v = w.verdict(Peer::Unix, Policy { allow_loopback: false, allow_unixsocket: true, deny_when_empty: false });
        prop_assert!(v.allowed);
    }
}

/// Addresses at and around the edges of every entry: where interval
/// boundaries are, and where a wrong patch shows.
fn edge_probes(w: &Whitelist) -> Vec<Addr> {
    let mut probes = Vec::new();
    for g in w.groups() {
        for e in g.entries() {
            match e.net() {
                ipnet::IpNet::V4(n) => {
                    let (first, last) = (u32::from(n.network()), u32::from(n.broadcast()));
                    for a in [first.wrapping_sub(1), first, last, last.wrapping_add(1)] {
                        probes.push(Addr::V4(a));
                    }
                }
                ipnet::IpNet::V6(n) => {
                    let (first, last) = (u128::from(n.network()), u128::from(n.broadcast()));
                    for a in [first.wrapping_sub(1), first, last, last.wrapping_add(1)] {
                        // Mapped addresses are IPv4 clients; keep the probe IPv6.
                        if let Addr::V6(_) = Addr::from(std::net::IpAddr::V6(a.into())) {
                            probes.push(Addr::V6(a));
                        }
                    }
                }
            }
        }
    }
    probes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Long runs of small changes: after every step the incrementally
    /// patched matcher answers like a fresh build and like a linear scan, at
    /// every entry edge of the state before and after the step.
    #[test]
    fn incremental_patches_match_fresh_builds_at_every_edge(changes in prop::collection::vec(change(), 1..40)) {
        let mut w = Whitelist::default();
        for c in changes {
            let before = edge_probes(&w);
            if let Ok(Some(next)) = w.plan(c, None).map(|p| p.next) {
                w = next;
            }
            let fresh = Whitelist::restore(
                w.groups().iter().map(|g| whitelist_core::GroupSpec {
                    name: g.name().clone(), attribute: g.attribute(), entries: g.entries().to_vec(), meta: Vec::new(), usage: Vec::new(),
 users: g.users().to_vec(),
                }).collect(),
                w.version(),
            );
            for a in before.into_iter().chain(edge_probes(&w)) {
                let got = w.check(a, STRICT).1.map(|(g, e)| (g.name().to_string(), e));
                let want = fresh.check(a, STRICT).1.map(|(g, e)| (g.name().to_string(), e));
                prop_assert_eq!(&got, &want, "address {}", a);
                prop_assert_eq!(&got, &naive(&w, a), "address {}", a);
            }
        }
    }
}

/// IPv4 entries spread over the whole space, blocks of every size.
fn spread_v4_entry() -> impl Strategy<Value = Entry> {
    (any::<u32>(), prop_oneof![Just(32u8), 8u8..=32]).prop_map(|(a, len)| {
        let masked = a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        parse_entry(format!("{}/{}", Ipv4Addr::from(masked), len).as_bytes()).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Whitelists large enough for the IPv4 bucket index, changed a few
    /// times: lookups agree with a linear scan at every entry edge, at every
    /// bucket boundary and at random addresses.
    #[test]
    fn large_whitelists_agree_with_a_linear_scan(
        groups in prop::collection::vec(prop::collection::vec(spread_v4_entry(), 100..600), 1..4),
        later in prop::collection::vec(prop::collection::vec(spread_v4_entry(), 1..50), 0..4),
        random in prop::collection::vec(any::<u32>(), 64),
        boundaries in prop::collection::vec(0u32..65536, 128),
    ) {
        let names = ["aa", "bb", "cc", "dd"];
        let mut w = Whitelist::default();
        for (i, entries) in groups.into_iter().enumerate() {
            let group = GroupName::parse(names[i].as_bytes()).unwrap();
            w = w.plan(Change::Set { group, entries, attribute: None, note: Default::default() }, None).unwrap().next.unwrap_or(w);
        }
        for (i, entries) in later.into_iter().enumerate() {
            let group = GroupName::parse(names[i % names.len()].as_bytes()).unwrap();
            if let Some(next) = w.plan(Change::Add { group, entries, note: Default::default() }, None).unwrap().next {
                w = next;
            }
        }
        // Boundaries of 16-bit buckets are boundaries of every coarser width.
        let buckets = boundaries.into_iter().flat_map(|b| [(b << 16).wrapping_sub(1), b << 16]).map(Addr::V4);
        for a in edge_probes(&w).into_iter().chain(buckets).chain(random.into_iter().map(Addr::V4)) {
            let got = w.check(a, STRICT).1.map(|(g, e)| (g.name().to_string(), e));
            prop_assert_eq!(&got, &naive(&w, a), "address {}", a);
        }
    }
}

/// A document as the generator writes it: groups `g0`, `g1`, ... with their
/// entries (each as a string or as an `{"entry": ...}` object, repeats
/// allowed), and where a key is written twice, if anywhere.
#[derive(Clone, Debug)]
struct RawDocument {
    groups: Vec<(Vec<(Entry, bool)>, u8)>,
    top_twice: u8,
    entry_twice: Option<(prop::sample::Index, prop::sample::Index)>,
}

impl RawDocument {
    fn entry_twice_at(&self) -> Option<(usize, usize)> {
        let (g, e) = self.entry_twice.as_ref()?;
        let gi = g.index(self.groups.len().max(1));
        let entries = &self.groups.get(gi)?.0;
        (!entries.is_empty()).then(|| (gi, e.index(entries.len())))
    }

    fn has_key_twice(&self) -> bool {
        self.top_twice != 0 || self.groups.iter().any(|(_, twice)| *twice != 0) || self.entry_twice_at().is_some()
    }

    fn render(&self) -> String {
        let twice = self.entry_twice_at();
        let groups: Vec<String> = self
            .groups
            .iter()
            .enumerate()
            .map(|(gi, (entries, key_twice))| {
                let items: Vec<String> = entries
                    .iter()
                    .enumerate()
                    .map(|(ei, (e, object))| match (twice == Some((gi, ei)), object) {
                        (true, _) => format!(r#"{{"entry":"{e}","entry":"{e}"}}"#),
                        (false, true) => format!(r#"{{"entry":"{e}"}}"#),
                        (false, false) => format!(r#""{e}""#),
                    })
                    .collect();
                let extra = match key_twice {
                    1 => format!(r#","name":"g{gi}""#),
                    2 => String::from(r#","entries":[]"#),
                    3 => String::from(r#","attribute":"show","attribute":"show""#),
                    _ => String::new(),
                };
                format!(r#"{{"entries":[{}],"name":"g{gi}"{extra}}}"#, items.join(","))
            })
            .collect();
        let extra = match self.top_twice {
            1 => r#","version":3"#,
            2 => r#","groups":[]"#,
            _ => "",
        };
        format!(r#"{{"version":3,"groups":[{}]{extra}}}"#, groups.join(","))
    }
}

fn raw_document() -> impl Strategy<Value = RawDocument> {
    let twice = prop_oneof![8 => Just(0u8), 1 => 1u8..4];
    (
        prop::collection::vec((prop::collection::vec((entry(), any::<bool>()), 0..8), twice), 0..5),
        prop_oneof![8 => Just(0u8), 1 => 1u8..3],
        prop::option::weighted(0.1, (any::<prop::sample::Index>(), any::<prop::sample::Index>())),
    )
        .prop_map(|(groups, top_twice, entry_twice)| RawDocument { groups, top_twice, entry_twice })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No accepted document holds a key twice, and every document with a key
    /// twice is refused for it; the counts are those written, never fewer than
    /// those parsed, and the limits refuse exactly what the counts exceed.
    #[test]
    fn documents_are_counted_and_never_keep_a_key_twice(
        raw in raw_document(),
        max_groups in 1usize..6,
        max_entries_per_group in 1usize..9,
    ) {
        let text = raw.render();
        let counts = count_document(text.as_bytes()).unwrap();
        prop_assert_eq!(counts.groups, raw.groups.len());
        let largest = raw.groups.iter().map(|(entries, _)| entries.len()).max().unwrap_or(0);
        prop_assert_eq!(counts.largest, largest);
        let limits = Limits { max_groups, max_entries_per_group };
        let over = counts.groups > max_groups || counts.largest > max_entries_per_group;
        for limits in [Some(&limits), None] {
            match parse_document(text.as_bytes(), limits) {
                Ok(doc) => {
                    prop_assert!(!raw.has_key_twice(), "{} was accepted", text);
                    prop_assert!(limits.is_none() || !over, "{} was accepted beyond the limits", text);
                    prop_assert_eq!(doc.groups.len(), counts.groups);
                    for g in &doc.groups {
                        prop_assert!(g.entries.len() <= counts.largest);
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    if limits.is_some() && over {
                        prop_assert!(e.starts_with("too many "), "{}: {}", text, e);
                    } else {
                        prop_assert!(raw.has_key_twice(), "{} was refused: {}", text, e);
                        prop_assert!(e.contains("duplicate key '"), "{}: {}", text, e);
                    }
                }
            }
        }
    }

    /// Counting the items of entry arguments agrees with parsing them.
    #[test]
    fn command_items_are_counted_as_parsed(args in prop::collection::vec(prop::collection::vec(entry(), 1..5), 1..5)) {
        let args: Vec<String> = args.iter().map(|a| a.iter().map(Entry::to_string).collect::<Vec<_>>().join(",")).collect();
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let parsed = whitelist_core::entry::parse_entries(raw.iter().copied()).unwrap();
        prop_assert_eq!(count_items(&raw), parsed.len());
    }
}

/// A change with a random comment and expiry (seconds 1 to 30), made at a
/// random second, the clock moving on, or the primary's sweep at a second.
#[derive(Clone, Debug)]
enum Step {
    Change(Change, u64),
    Advance(u64),
    /// At that second, or (`None`) at the clock, as the primary's timer
    /// sweeps right after moving the clock.
    Sweep(Option<u64>),
    /// The matcher of an advance to that second computed ahead, which the
    /// next advance is given whatever happened since.
    Prepare(u64),
}

fn note() -> impl Strategy<Value = whitelist_core::store::Note> {
    use whitelist_core::store::{Expiry, Note};
    (
        prop::option::of(prop::sample::select(vec!["", "vpn", "ops"])),
        prop_oneof![Just(Expiry::Unchanged), Just(Expiry::Persist), (1u64..30).prop_map(Expiry::At)],
    )
        .prop_map(|(comment, expiry)| Note { comment: comment.map(Into::into), expiry })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (group_name(), prop::collection::vec(entry(), 1..8), note(), 0u64..30)
            .prop_map(|(group, entries, note, t)| { Step::Change(Change::Add { group, entries, note }, t) }),
        (group_name(), prop::collection::vec(entry(), 1..8), note(), 0u64..30).prop_map(|(group, entries, note, t)| {
            Step::Change(Change::Set { group, entries, attribute: None, note }, t)
        }),
        change().prop_map(|c| Step::Change(c, 0)),
        (0u64..30).prop_map(Step::Advance),
        prop::option::of(0u64..30).prop_map(Step::Sweep),
        (0u64..30).prop_map(Step::Prepare),
    ]
}

/// The reference with expiries: entries expired at the whitelist's clock
/// are skipped.
fn naive_live(w: &Whitelist, a: Addr) -> Option<(String, Entry)> {
    let mut best: Option<(u8, usize, Entry)> = None;
    for (gi, g) in w.groups().iter().enumerate() {
        for (i, e) in g.entries().iter().enumerate() {
            if e.contains(a) && !g.meta(i).expired(w.clock()) {
                let len = e.net().prefix_len();
                if best.map_or(true, |(blen, bgi, _)| len > blen || (len == blen && gi < bgi)) {
                    best = Some((len, gi, e));
                }
            }
        }
    }
    best.map(|(_, gi, e)| (w.groups()[gi].name().to_string(), e))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn an_expired_entry_never_admits_and_a_hit_counts_on_the_winning_entry(
        steps in prop::collection::vec(step(), 1..20),
        probes in prop::collection::vec(addr(), 1..32),
    ) {
        let mut w = Whitelist::default();
        let mut prepared = None;
        for s in steps {
            match s {
                Step::Change(c, t) => {
                    let t = t.max(w.clock());
                    // A binding of a group that does not exist is refused: skipped.
                    if let Ok(Some(next)) = w.plan_at(c, None, t).map(|p| p.next) {
                        w = next;
                    }
                }
                Step::Advance(t) => {
                    w.advance_prepared(t, prepared.take());
                }
                Step::Prepare(t) => {
                    prepared = w.prepare_advance(t).map(|mut p| {
                        p.compute();
                        p
                    });
                }
                Step::Sweep(t) => {
                    let t = t.unwrap_or(w.clock());
                    // The sweep removes exactly what had expired by then,
                    // whether the clock is before, at or past that second.
                    let due = w.expired(t);
                    let held = w.entry_count();
                    match w.sweep_in_place(t, true) {
                        Some(s) => {
                            prop_assert_eq!(&s.swept, &due);
                            prop_assert_eq!(w.entry_count(), held - s.removed);
                        }
                        None => prop_assert!(due.is_empty()),
                    }
                    prop_assert!(w.expired(t).is_empty());
                }
            }
        }
        // Random addresses, and the first address of every held entry.
        let held: Vec<Addr> = w
            .groups()
            .iter()
            .flat_map(|g| g.entries().iter())
            .map(|e| Addr::from(e.net().network()))
            .collect();
        for a in probes.into_iter().chain(held) {
            let expected = naive_live(&w, a);
            let v = w.verdict(Peer::Ip(a), STRICT);
            let any = w.is_enabled();
            prop_assert_eq!(v.allowed, expected.is_some() || !any, "{}", a);
            if let (Some((group, entry)), Some(hit)) = (&expected, v.hit) {
                let name = GroupName::parse(group.as_bytes()).unwrap();
                let at = w.group(&name).unwrap().position(entry).unwrap();
                let before = w.group(&name).unwrap().usage(at).hits;
                w.record_hit(hit, 99);
                let g = w.group(&name).unwrap();
                prop_assert_eq!(g.usage(at).hits, before + 1);
                prop_assert_eq!(g.usage(at).last_hit, 99);
            } else {
                prop_assert!(v.hit.is_none());
            }
        }
        // The encoding carries comments, expiries and figures exactly.
        let back = decode(&encode(&w)).unwrap();
        prop_assert_eq!(back.specs(), w.specs());
    }
}

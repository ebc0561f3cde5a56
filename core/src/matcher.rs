//! The compiled matcher: for a client address, the most specific entry that
//! holds it, in `O(log n)` of the number of entries.
//!
//! Entries are prefixes, and any two prefixes are either nested or disjoint, so
//! the address space splits into intervals that each have one winner: the most
//! specific covering entry, and among equal entries the one of the first group
//! in name order. Per family the matcher keeps the entries as records sorted by
//! (start, prefix length, group) and the interval starts with their winners; a
//! lookup is one binary search over the starts.
//!
//! A change to some groups rebuilds in linear passes with no full sort: the
//! records of the unchanged groups are kept (already sorted), the changed
//! groups' records are sorted and merged in as runs, and the intervals are
//! swept again. A family the change does not touch is shared, not copied.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::entry::{Addr, Entry};

/// Marks an interval that no entry covers, and a dropped group in a remap.
pub const NONE: u32 = u32::MAX;

/// An interval's winner packed in one word: the group index above, the prefix
/// length in the low byte. The winning entry is the interval's addresses
/// truncated to that prefix, so intervals need no pointer into the records
/// and a lookup needs no second memory access.
#[inline]
fn pack(group: u32, len: u8) -> u32 {
    (group << 8) | u32::from(len)
}

/// An address family's key: `u32` for IPv4, [`Wide`] for IPv6.
pub(crate) trait Key: Copy + Ord + Default {
    const MAX: Self;
    /// The last address of the block that starts at `self` with prefix `len`.
    fn last(self, len: u8) -> Self;
    /// The next address; never called on `MAX`.
    fn succ(self) -> Self;
}

impl Key for u32 {
    const MAX: Self = u32::MAX;
    #[inline]
    fn last(self, len: u8) -> Self {
        self | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    #[inline]
    fn succ(self) -> Self {
        self.wrapping_add(1)
    }
}

/// A 128-bit IPv6 key as two words: 8-byte aligned, so a record is 24 bytes
/// rather than the 32 a 16-byte aligned `u128` would take.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Debug, Hash)]
pub(crate) struct Wide {
    hi: u64,
    lo: u64,
}

impl From<u128> for Wide {
    #[inline]
    fn from(v: u128) -> Self {
        Wide { hi: (v >> 64) as u64, lo: v as u64 }
    }
}

impl From<Wide> for u128 {
    #[inline]
    fn from(w: Wide) -> Self {
        (u128::from(w.hi) << 64) | u128::from(w.lo)
    }
}

impl Key for Wide {
    const MAX: Self = Wide { hi: u64::MAX, lo: u64::MAX };
    #[inline]
    fn last(self, len: u8) -> Self {
        Wide::from(u128::from(self) | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
    }
    #[inline]
    fn succ(self) -> Self {
        Wide::from(u128::from(self).wrapping_add(1))
    }
}

/// One entry of one group, as the matcher sorts it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Rec<K> {
    start: K,
    len: u8,
    group: u32,
}

#[derive(Clone, Debug)]
struct Family<K> {
    /// Sorted by (start, len, group).
    recs: Vec<Rec<K>>,
    /// Interval starts, ascending; the first is always address 0.
    starts: Vec<K>,
    /// For each interval, its winner (see [`pack`]), or [`NONE`].
    slots: Vec<u32>,
}

impl<K: Key> Default for Family<K> {
    fn default() -> Self {
        Family { recs: Vec::new(), starts: vec![K::default()], slots: vec![NONE] }
    }
}

impl<K: Key> Family<K> {
    fn from_sorted(recs: Vec<Rec<K>>) -> Self {
        let (starts, slots) = sweep(&recs);
        Family { recs, starts, slots }
    }

    fn build(mut recs: Vec<Rec<K>>) -> Self {
        recs.sort_unstable();
        Family::from_sorted(recs)
    }

    /// Keeps the records whose group `remap` maps to a new index, merges in
    /// `added` and sweeps again; when nothing is dropped or added, only the
    /// group numbers are rewritten.
    fn rebuild(&self, remap: &[u32], mut added: Vec<Rec<K>>) -> Self {
        let map = |g: u32| remap.get(g as usize).copied().unwrap_or(NONE);
        let drops = self.recs.iter().any(|r| map(r.group) == NONE);
        if !drops && added.is_empty() {
            return self.renumbered(map);
        }
        let mut kept = Vec::with_capacity(self.recs.len() + added.len());
        kept.extend(self.recs.iter().filter_map(|r| {
            let group = map(r.group);
            (group != NONE).then_some(Rec { group, ..*r })
        }));
        added.sort_unstable();
        let recs = if added.is_empty() { kept } else { merge(&kept, &added) };
        Family::from_sorted(recs)
    }

    /// The same family with every group number passed through `map`.
    fn renumbered(&self, map: impl Fn(u32) -> u32) -> Self {
        let recs = self.recs.iter().map(|r| Rec { group: map(r.group), ..*r }).collect();
        let slots = self.slots.iter().map(|&s| if s == NONE { NONE } else { pack(map(s >> 8), s as u8) }).collect();
        Family { recs, starts: self.starts.clone(), slots }
    }

    /// The winner of the interval holding `key`.
    #[inline]
    fn lookup(&self, key: K) -> u32 {
        let i = self.starts.partition_point(|s| *s <= key);
        match i.checked_sub(1).and_then(|i| self.slots.get(i)) {
            Some(&slot) => slot,
            None => NONE,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.recs.capacity() * std::mem::size_of::<Rec<K>>()
            + self.starts.capacity() * std::mem::size_of::<K>()
            + self.slots.capacity() * std::mem::size_of::<u32>()
    }
}

/// Merges the few sorted `added` records into the many sorted `kept` ones,
/// copying the runs in between whole.
fn merge<K: Key>(kept: &[Rec<K>], added: &[Rec<K>]) -> Vec<Rec<K>> {
    let mut out = Vec::with_capacity(kept.len() + added.len());
    let mut rest = kept;
    for a in added {
        let at = rest.partition_point(|r| r < a);
        let (before, after) = rest.split_at(at);
        out.extend_from_slice(before);
        out.push(*a);
        rest = after;
    }
    out.extend_from_slice(rest);
    out
}

/// Turns sorted, laminar records into intervals and their winners.
fn sweep<K: Key>(recs: &[Rec<K>]) -> (Vec<K>, Vec<u32>) {
    // Every record opens one interval and closes at most one: at most 2n + 1,
    // so the buffers never grow inside the loop.
    let mut out = Intervals {
        starts: Vec::with_capacity(2 * recs.len() + 1),
        slots: Vec::with_capacity(2 * recs.len() + 1),
        last_start: K::default(),
        last_slot: NONE,
    };
    out.starts.push(K::default());
    out.slots.push(NONE);
    // The prefixes open at the current position, innermost last: (last
    // address, winner). The innermost one is kept in `top`.
    let mut outer: Vec<(K, u32)> = Vec::with_capacity(130);
    let mut top: Option<(K, u32)> = None;
    let (mut prev_start, mut prev_len) = (K::MAX, u8::MAX);
    for r in recs {
        // The same block in a later group: the first group in name order wins.
        if r.len == prev_len && r.start == prev_start {
            continue;
        }
        (prev_start, prev_len) = (r.start, r.len);
        while let Some((last, _)) = top {
            if last >= r.start {
                break;
            }
            top = outer.pop();
            out.emit(last.succ(), top.map_or(NONE, |t| t.1));
        }
        let slot = pack(r.group, r.len);
        out.emit(r.start, slot);
        if let Some(t) = top.replace((r.start.last(r.len), slot)) {
            outer.push(t);
        }
    }
    while let Some((last, _)) = top {
        // Everything still open ends at the top of the space too.
        if last == K::MAX {
            break;
        }
        top = outer.pop();
        out.emit(last.succ(), top.map_or(NONE, |t| t.1));
    }
    out.finish()
}

struct Intervals<K> {
    starts: Vec<K>,
    slots: Vec<u32>,
    last_start: K,
    last_slot: u32,
}

impl<K: Key> Intervals<K> {
    #[inline(always)]
    fn emit(&mut self, at: K, slot: u32) {
        if slot == self.last_slot {
            return;
        }
        if at != self.last_start {
            self.starts.push(at);
            self.slots.push(slot);
            self.last_start = at;
            self.last_slot = slot;
            return;
        }
        // A block that starts where the last interval starts takes it over;
        // merge it with the interval before if they now have the same winner.
        let n = self.slots.len();
        if n >= 2 && self.slots.get(n - 2) == Some(&slot) {
            self.starts.pop();
            self.slots.pop();
            self.last_start = self.starts.last().copied().unwrap_or_default();
        } else if let Some(s) = self.slots.last_mut() {
            *s = slot;
        }
        self.last_slot = slot;
    }

    fn finish(mut self) -> (Vec<K>, Vec<u32>) {
        // Give back a buffer that is mostly unused (adjacent blocks merged);
        // shrinking a nearly full one would only copy it.
        let n = self.starts.len();
        if n + n / 4 < self.starts.capacity() {
            self.starts.shrink_to_fit();
            self.slots.shrink_to_fit();
        }
        (self.starts, self.slots)
    }
}

/// The compiled form of every group's entries.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    v4: Arc<Family<u32>>,
    v6: Arc<Family<Wide>>,
}

/// Records of `entries` for group `group`, split by family.
fn records(group: u32, entries: &[Entry], v4: &mut Vec<Rec<u32>>, v6: &mut Vec<Rec<Wide>>) {
    v4.extend(entries.iter().filter_map(|e| match e.net() {
        IpNet::V4(n) => Some(Rec { start: u32::from(n.network()), len: n.prefix_len(), group }),
        IpNet::V6(_) => None,
    }));
    v6.extend(entries.iter().filter_map(|e| match e.net() {
        IpNet::V6(n) => Some(Rec { start: Wide::from(u128::from(n.network())), len: n.prefix_len(), group }),
        IpNet::V4(_) => None,
    }));
}

fn rebuild_family<K: Key>(old: &Arc<Family<K>>, remap: &[u32], identity: bool, added: Vec<Rec<K>>) -> Arc<Family<K>> {
    // Untouched and not renumbered: share it.
    let touched = !added.is_empty() || old.recs.iter().any(|r| remap.get(r.group as usize) != Some(&r.group));
    if identity && !touched {
        return Arc::clone(old);
    }
    Arc::new(old.rebuild(remap, added))
}

impl Matcher {
    /// Compiles groups from scratch; `groups[i]` holds the entries of group `i`
    /// (groups in name order).
    pub fn build<'a, I>(groups: I) -> Matcher
    where
        I: IntoIterator<Item = &'a [Entry]>,
    {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, entries) in groups.into_iter().enumerate() {
            records(u32::try_from(i).unwrap_or(NONE), entries, &mut v4, &mut v6);
        }
        Matcher { v4: Arc::new(Family::build(v4)), v6: Arc::new(Family::build(v6)) }
    }

    /// A new matcher after some groups changed. `remap[old]` is the new index of
    /// each unchanged group, or [`NONE`] for groups deleted or changed; `changed`
    /// lists each changed group's new index and its entries.
    pub fn rebuild<'a, I>(&self, remap: &[u32], changed: I) -> Matcher
    where
        I: IntoIterator<Item = (u32, &'a [Entry])>,
    {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (group, entries) in changed {
            records(group, entries, &mut v4, &mut v6);
        }
        let identity = remap.iter().enumerate().all(|(i, &g)| g == NONE || g as usize == i);
        Matcher { v4: rebuild_family(&self.v4, remap, identity, v4), v6: rebuild_family(&self.v6, remap, identity, v6) }
    }

    /// The index of the group whose entry wins for `addr`.
    #[inline]
    pub fn lookup_group(&self, addr: Addr) -> Option<u32> {
        let slot = match addr {
            Addr::V4(a) => self.v4.lookup(a),
            Addr::V6(a) => self.v6.lookup(Wide::from(a)),
        };
        (slot != NONE).then_some(slot >> 8)
    }

    /// The winning group index and entry for `addr`.
    pub fn lookup(&self, addr: Addr) -> Option<(u32, Entry)> {
        let (slot, net) = match addr {
            Addr::V4(a) => {
                let slot = self.v4.lookup(a);
                (slot, Ipv4Net::new(Ipv4Addr::from(a), slot as u8).ok().map(|n| IpNet::V4(n.trunc())))
            }
            Addr::V6(a) => {
                let slot = self.v6.lookup(Wide::from(a));
                (slot, Ipv6Net::new(Ipv6Addr::from(a), slot as u8).ok().map(|n| IpNet::V6(n.trunc())))
            }
        };
        if slot == NONE {
            return None;
        }
        Some((slot >> 8, Entry::from_canonical(net?)?))
    }

    /// Bytes the matcher holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    /// How many intervals the address space is split into (both families).
    pub fn intervals(&self) -> usize {
        self.v4.starts.len() + self.v6.starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{parse_address, parse_entry};

    fn entries(list: &[&str]) -> Vec<Entry> {
        list.iter().map(|s| parse_entry(s.as_bytes()).unwrap()).collect()
    }

    fn addr(s: &str) -> Addr {
        parse_address(s.as_bytes()).unwrap()
    }

    fn found(m: &Matcher, a: &str) -> Option<(u32, String)> {
        m.lookup(addr(a)).map(|(g, e)| (g, e.to_string()))
    }

    #[test]
    fn empty_matcher_matches_nothing() {
        let m = Matcher::default();
        assert_eq!(m.lookup(addr("10.0.0.1")), None);
        assert_eq!(m.lookup(addr("::1")), None);
        let m = Matcher::build(std::iter::empty());
        assert_eq!(m.lookup_group(addr("0.0.0.0")), None);
    }

    #[test]
    fn most_specific_prefix_wins() {
        let g0 = entries(&["10.0.0.0/8", "10.1.0.0/16"]);
        let g1 = entries(&["10.1.2.0/24", "10.1.2.3"]);
        let m = Matcher::build([g0.as_slice(), g1.as_slice()]);
        assert_eq!(found(&m, "10.1.2.3"), Some((1, "10.1.2.3".into())));
        assert_eq!(found(&m, "10.1.2.4"), Some((1, "10.1.2.0/24".into())));
        assert_eq!(found(&m, "10.1.3.4"), Some((0, "10.1.0.0/16".into())));
        assert_eq!(found(&m, "10.2.0.0"), Some((0, "10.0.0.0/8".into())));
        assert_eq!(found(&m, "10.255.255.255"), Some((0, "10.0.0.0/8".into())));
        assert_eq!(found(&m, "11.0.0.0"), None);
        assert_eq!(found(&m, "9.255.255.255"), None);
    }

    #[test]
    fn equal_entries_go_to_the_first_group() {
        let g0 = entries(&["192.0.2.0/24"]);
        let g1 = entries(&["192.0.2.0/24", "198.51.100.7"]);
        let g2 = entries(&["198.51.100.7"]);
        let m = Matcher::build([g0.as_slice(), g1.as_slice(), g2.as_slice()]);
        assert_eq!(found(&m, "192.0.2.9"), Some((0, "192.0.2.0/24".into())));
        assert_eq!(found(&m, "198.51.100.7"), Some((1, "198.51.100.7".into())));
    }

    #[test]
    fn edges_of_the_space() {
        let g = entries(&[
            "0.0.0.0/0",
            "255.255.255.255",
            "0.0.0.0",
            "::/0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::",
        ]);
        let m = Matcher::build([g.as_slice()]);
        assert_eq!(found(&m, "0.0.0.0"), Some((0, "0.0.0.0".into())));
        assert_eq!(found(&m, "0.0.0.1"), Some((0, "0.0.0.0/0".into())));
        assert_eq!(found(&m, "255.255.255.255"), Some((0, "255.255.255.255".into())));
        assert_eq!(found(&m, "255.255.255.254"), Some((0, "0.0.0.0/0".into())));
        assert_eq!(found(&m, "::"), Some((0, "::".into())));
        assert_eq!(
            found(&m, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            Some((0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into()))
        );
        assert_eq!(found(&m, "2001:db8::1"), Some((0, "::/0".into())));
    }

    #[test]
    fn families_are_separate() {
        let g = entries(&["::/0"]);
        let m = Matcher::build([g.as_slice()]);
        assert_eq!(found(&m, "10.0.0.1"), None);
        assert_eq!(found(&m, "::ffff:10.0.0.1"), None);
        let g = entries(&["0.0.0.0/0"]);
        let m = Matcher::build([g.as_slice()]);
        assert_eq!(found(&m, "::ffff:10.0.0.1"), Some((0, "0.0.0.0/0".into())));
        assert_eq!(found(&m, "2001:db8::1"), None);
    }

    #[test]
    fn adjacent_blocks() {
        let g = entries(&["10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/24"]);
        let m = Matcher::build([g.as_slice()]);
        assert_eq!(found(&m, "10.0.0.127"), Some((0, "10.0.0.0/25".into())));
        assert_eq!(found(&m, "10.0.0.128"), Some((0, "10.0.0.128/25".into())));
        assert_eq!(found(&m, "10.0.1.255"), Some((0, "10.0.1.0/24".into())));
        assert_eq!(found(&m, "10.0.2.0"), None);
    }

    #[test]
    fn rebuild_matches_a_fresh_build() {
        let a = entries(&["10.0.0.0/8", "2001:db8::/32"]);
        let b = entries(&["10.1.0.0/16", "10.9.9.9"]);
        let c = entries(&["10.1.0.0/16", "2001:db8::1"]);
        let m = Matcher::build([a.as_slice(), b.as_slice(), c.as_slice()]);
        // Insert a new group between a and b, change c, delete nothing.
        let new = entries(&["10.1.2.0/24", "2001:db8::/48"]);
        let c2 = entries(&["10.9.9.9"]);
        // old 0 -> 0, old 1 -> 2, old 2 (changed) -> dropped; new group at 1, c at 3
        let rebuilt = m.rebuild(&[0, 2, NONE], [(1, new.as_slice()), (3, c2.as_slice())]);
        let fresh = Matcher::build([a.as_slice(), new.as_slice(), b.as_slice(), c2.as_slice()]);
        for probe in
            ["10.0.0.1", "10.1.2.3", "10.1.3.3", "10.9.9.9", "2001:db8::1", "2001:db8:1::1", "2001:db9::", "11.0.0.0"]
        {
            assert_eq!(found(&rebuilt, probe), found(&fresh, probe), "{probe}");
        }
        assert_eq!(found(&rebuilt, "10.9.9.9"), Some((2, "10.9.9.9".into())));
        // Deleting group 0 drops its records and shifts the rest down.
        let dropped = rebuilt.rebuild(&[NONE, 0, 1, 2], std::iter::empty());
        assert_eq!(found(&dropped, "10.0.0.1"), None);
        assert_eq!(found(&dropped, "10.1.2.3"), Some((0, "10.1.2.0/24".into())));
    }

    #[test]
    fn intervals_stay_within_two_per_entry() {
        let g: Vec<Entry> = (0..1000u32).map(|i| Entry::host(Addr::V4(0x0a00_0000 + i * 2))).collect();
        let m = Matcher::build([g.as_slice()]);
        assert!(m.intervals() <= 2 * g.len() + 2, "{}", m.intervals());
    }
}

//! The table of recently denied sources (`WHITELIST.DENIED`): one row per
//! source address, the least recently seen evicted when the table is full.
//!
//! A flood of connections from ever new addresses must neither grow the
//! server's memory nor cost an allocation per denial, so all the room is
//! reserved when the size is set: a slab of rows linked in recency order,
//! and an index by address reserved at twice the size. A hash table holding
//! at most half of what it can hold always rehashes in place, so neither
//! ever grows. Recording a denial is O(1).

use rustc_hash::FxHashMap;

use crate::store::Peer;

/// Why a source was denied, as `WHITELIST.DENIED` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeniedReason {
    /// No entry matches its address.
    NoMatch,
    /// A unix-socket client while `whitelist.allow-unixsocket` is `no`.
    UnixSocket,
    /// The whitelist is empty and `whitelist.when-empty` is `deny`.
    WhitelistEmpty,
    /// The rules were not known: the first load had read no whitelist yet,
    /// or this replica's whitelist differs from its primary's.
    Loading,
    /// Outside the groups of the user it logs in as (§11).
    User,
    /// It could not be judged (an internal error, an unreadable address):
    /// the hook failed closed.
    Error,
}

impl DeniedReason {
    /// The reason as `WHITELIST.DENIED` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeniedReason::NoMatch => "no-match",
            DeniedReason::UnixSocket => "unix-socket",
            DeniedReason::WhitelistEmpty => "whitelist-empty",
            DeniedReason::Loading => "loading",
            DeniedReason::User => "user",
            DeniedReason::Error => "error",
        }
    }
}

/// One denied source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeniedRow {
    /// Who was denied.
    pub peer: Peer,
    /// Denials (or would-be denials) since it entered the table.
    pub count: u64,
    /// The first of them, unix seconds.
    pub first: i64,
    /// The latest of them, unix seconds.
    pub last: i64,
    /// The reason of the latest.
    pub reason: DeniedReason,
}

/// No slot: the end of the recency list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    row: DeniedRow,
    /// The next more recent slot.
    newer: u32,
    /// The next less recent slot.
    older: u32,
}

/// The table. Its size is `whitelist.denied-sources`; 0 turns it off.
#[derive(Clone, Debug, Default)]
pub struct DeniedSources {
    capacity: usize,
    slots: Vec<Slot>,
    index: FxHashMap<Peer, u32>,
    /// The most recently seen slot.
    newest: u32,
    /// The least recently seen slot: evicted next.
    oldest: u32,
}

impl DeniedSources {
    /// A table of `capacity` rows, its room reserved now.
    pub fn new(capacity: usize) -> DeniedSources {
        // The ids of the rows are u32 with one value kept for "none".
        let capacity = capacity.min(NIL as usize);
        let mut index = FxHashMap::default();
        index.reserve(capacity.saturating_mul(2));
        DeniedSources { capacity, slots: Vec::with_capacity(capacity), index, newest: NIL, oldest: NIL }
    }

    /// How many rows it can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// It holds no row.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Counts a denial of `peer` at `now` (unix seconds). Allocates nothing:
    /// when the table is full, the least recently seen row makes room.
    #[inline]
    pub fn record(&mut self, peer: Peer, reason: DeniedReason, now: i64) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&i) = self.index.get(&peer) {
            if let Some(slot) = self.slots.get_mut(i as usize) {
                slot.row.count = slot.row.count.saturating_add(1);
                slot.row.last = now;
                slot.row.reason = reason;
            }
            self.unlink(i);
            self.push_newest(i);
            return;
        }
        let row = DeniedRow { peer, count: 1, first: now, last: now, reason };
        let i = if self.slots.len() < self.capacity {
            // Within the room reserved: no allocation.
            self.slots.push(Slot { row, newer: NIL, older: NIL });
            self.slots.len() - 1
        } else {
            let i = self.oldest;
            let Some(slot) = self.slots.get_mut(i as usize) else {
                return;
            };
            let evicted = slot.row.peer;
            slot.row = row;
            self.index.remove(&evicted);
            self.unlink(i);
            i as usize
        };
        let Ok(i) = u32::try_from(i) else {
            return;
        };
        self.index.insert(peer, i);
        self.push_newest(i);
    }

    /// Takes slot `i` out of the recency list.
    fn unlink(&mut self, i: u32) {
        let Some(&Slot { newer, older, .. }) = self.slots.get(i as usize) else {
            return;
        };
        match self.slots.get_mut(newer as usize) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
        match self.slots.get_mut(older as usize) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
    }

    /// Makes slot `i` the most recently seen.
    fn push_newest(&mut self, i: u32) {
        let previous = self.newest;
        if let Some(slot) = self.slots.get_mut(i as usize) {
            slot.newer = NIL;
            slot.older = previous;
        }
        match self.slots.get_mut(previous as usize) {
            Some(p) => p.newer = i,
            None => self.oldest = i,
        }
        self.newest = i;
    }

    /// The rows, most recently seen first.
    pub fn iter(&self) -> impl Iterator<Item = &DeniedRow> + '_ {
        let mut next = self.newest;
        std::iter::from_fn(move || {
            let slot = self.slots.get(next as usize)?;
            next = slot.older;
            Some(&slot.row)
        })
    }

    /// Empties the table; its room stays reserved.
    pub fn reset(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.newest = NIL;
        self.oldest = NIL;
    }

    /// Sets the size: the room is reserved anew and the most recent rows
    /// that fit are kept.
    pub fn resize(&mut self, capacity: usize) {
        if capacity == self.capacity {
            return;
        }
        let mut next = DeniedSources::new(capacity);
        let keep: Vec<DeniedRow> = self.iter().take(next.capacity).copied().collect();
        for row in keep.iter().rev() {
            next.record(row.peer, row.reason, row.last);
            if let Some(&i) = next.index.get(&row.peer) {
                if let Some(slot) = next.slots.get_mut(i as usize) {
                    slot.row = *row;
                }
            }
        }
        *self = next;
    }

    /// The room reserved, rows and index places: what a flood never grows.
    pub fn reserved(&self) -> (usize, usize) {
        (self.slots.capacity(), self.index.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Addr;
    use proptest::prelude::*;

    fn v4(n: u32) -> Peer {
        Peer::Ip(Addr::V4(n))
    }

    fn peers(t: &DeniedSources) -> Vec<Peer> {
        t.iter().map(|r| r.peer).collect()
    }

    #[test]
    fn most_recent_first_with_counts_and_the_latest_reason() {
        let mut t = DeniedSources::new(3);
        t.record(v4(1), DeniedReason::NoMatch, 100);
        t.record(Peer::Unix, DeniedReason::UnixSocket, 101);
        t.record(v4(1), DeniedReason::WhitelistEmpty, 105);
        assert_eq!(
            t.iter().copied().collect::<Vec<_>>(),
            vec![
                DeniedRow { peer: v4(1), count: 2, first: 100, last: 105, reason: DeniedReason::WhitelistEmpty },
                DeniedRow { peer: Peer::Unix, count: 1, first: 101, last: 101, reason: DeniedReason::UnixSocket },
            ]
        );
    }

    #[test]
    fn the_least_recently_seen_is_evicted() {
        let mut t = DeniedSources::new(3);
        for n in 1..=3 {
            t.record(v4(n), DeniedReason::NoMatch, i64::from(n));
        }
        t.record(v4(1), DeniedReason::NoMatch, 10);
        t.record(v4(4), DeniedReason::NoMatch, 11);
        assert_eq!(peers(&t), vec![v4(4), v4(1), v4(3)]);
        // The evicted source starts afresh.
        t.record(v4(2), DeniedReason::NoMatch, 12);
        assert_eq!(peers(&t), vec![v4(2), v4(4), v4(1)]);
        assert_eq!(t.iter().next().map(|r| (r.count, r.first)), Some((1, 12)));
    }

    #[test]
    fn size_zero_records_nothing_and_reset_keeps_the_room() {
        let mut t = DeniedSources::new(0);
        t.record(v4(1), DeniedReason::NoMatch, 1);
        assert!(t.is_empty());
        let mut t = DeniedSources::new(4);
        let room = t.reserved();
        t.record(v4(1), DeniedReason::NoMatch, 1);
        t.reset();
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.reserved(), room);
        t.record(v4(2), DeniedReason::NoMatch, 2);
        assert_eq!(peers(&t), vec![v4(2)]);
    }

    #[test]
    fn resizing_keeps_the_most_recent_rows_that_fit() {
        let mut t = DeniedSources::new(5);
        for n in 1..=5 {
            t.record(v4(n), DeniedReason::NoMatch, i64::from(n));
        }
        t.record(v4(2), DeniedReason::Loading, 9);
        t.resize(2);
        assert_eq!(t.capacity(), 2);
        assert_eq!(
            t.iter().copied().collect::<Vec<_>>(),
            vec![
                DeniedRow { peer: v4(2), count: 2, first: 2, last: 9, reason: DeniedReason::Loading },
                DeniedRow { peer: v4(5), count: 1, first: 5, last: 5, reason: DeniedReason::NoMatch },
            ]
        );
        t.resize(10);
        assert_eq!(peers(&t), vec![v4(2), v4(5)]);
        t.record(v4(7), DeniedReason::NoMatch, 10);
        assert_eq!(peers(&t), vec![v4(7), v4(2), v4(5)]);
        t.resize(0);
        assert!(t.is_empty());
    }

    #[test]
    fn a_flood_of_new_sources_never_grows_the_room() {
        let mut t = DeniedSources::new(128);
        let room = t.reserved();
        for n in 0..200_000u32 {
            t.record(v4(n), DeniedReason::NoMatch, i64::from(n));
            if n % 7 == 0 {
                t.record(v4(n / 2), DeniedReason::NoMatch, i64::from(n));
            }
        }
        assert_eq!(t.len(), 128);
        assert_eq!(t.reserved(), room);
    }

    proptest! {
        /// Against a naive model: a list, most recent first.
        #[test]
        fn behaves_as_a_recency_list(capacity in 0usize..8, events in proptest::collection::vec((0u32..12, 0u8..3), 0..200)) {
            let mut t = DeniedSources::new(capacity);
            let mut model: Vec<DeniedRow> = Vec::new();
            for (now, (n, r)) in events.into_iter().enumerate() {
                let now = now as i64;
                let reason = [DeniedReason::NoMatch, DeniedReason::Loading, DeniedReason::Error][r as usize];
                t.record(v4(n), reason, now);
                if capacity > 0 {
                    let row = match model.iter().position(|row| row.peer == v4(n)) {
                        Some(i) => {
                            let old = model.remove(i);
                            DeniedRow { count: old.count + 1, last: now, reason, ..old }
                        }
                        None => DeniedRow { peer: v4(n), count: 1, first: now, last: now, reason },
                    };
                    model.insert(0, row);
                    model.truncate(capacity);
                }
                prop_assert!(t.len() <= capacity);
                prop_assert_eq!(t.iter().copied().collect::<Vec<_>>(), model.clone());
            }
        }
    }
}

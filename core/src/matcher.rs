//! The compiled matcher: for a client address, the most specific entry that
//! holds it, in `O(log n)` of the number of entries.
//!
//! Entries are prefixes, and any two prefixes are either nested or disjoint, so
//! the address space splits into intervals that each have one winner: the most
//! specific covering entry, and among equal entries the one of the group first
//! in name order. Per family the matcher keeps the entries as records sorted by
//! (start, prefix length, group id) and the interval starts with their
//! winners; a lookup is one binary search over the starts.
//!
//! Groups are known by ids that stay the same while a group exists; their
//! order by name (their rank) only breaks ties between equal entries. A
//! change drops the records of the groups it changes or deletes and merges in
//! their new ones (no full sort), then sweeps again only the address ranges
//! those records cover: everywhere else the covering records, and so the
//! winners, are what they were. A family the change does not touch is shared,
//! not copied.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::entry::{Addr, Entries, Entry};

/// Marks an interval that no entry covers, and a free group id.
pub const NONE: u32 = u32::MAX;

/// IPv4 intervals are indexed by the top bits of the address, about one
/// bucket per four intervals up to 14 bits (a 64 KiB index): a lookup
/// searches only the intervals of its bucket. A change rebuilds the index
/// from the previous one (see [`build_index`]).
const MAX_BUCKET_BITS: u32 = 14;
/// Below this many intervals one binary search is as quick as the index.
const INDEX_FROM: usize = 256;

/// A group's id: stable while the group exists, below [`MAX_GROUPS`].
pub type GroupId = u32;

/// Each group id's position in name order (its rank), [`NONE`] for free ids.
pub type Ranks = [u32];

#[inline]
fn rank(ranks: &Ranks, id: GroupId) -> u32 {
    ranks.get(id as usize).copied().unwrap_or(NONE)
}

/// An interval's winner packed in one word: the entry's position in its
/// group in the high half, the group id above the prefix length in the low
/// half. The winning entry is the interval's addresses truncated to that
/// prefix, and its position is where a hit is counted, so a lookup needs no
/// second memory access.
type Slot = u64;

/// The slot of an interval that no entry covers.
const EMPTY: Slot = u64::MAX;

#[inline]
fn pack(group: u32, len: u8, index: u32) -> Slot {
    (u64::from(index) << 32) | u64::from((group << 8) | u32::from(len))
}

/// The group id of a slot.
#[inline]
fn slot_group(slot: Slot) -> u32 {
    (slot as u32) >> 8
}

/// An address family's key: `u32` for IPv4, [`Wide`] for IPv6.
pub(crate) trait Key: Copy + Ord + Default {
    const MAX: Self;
    /// Which of `2^bits` equal slices of the space the key is in, for
    /// families that index their intervals by it.
    fn bucket(self, bits: u32) -> Option<usize>;
    /// The first key of slice `bucket` of `2^bits`; `None` past the last one
    /// or for families without slices.
    fn bucket_start(bucket: usize, bits: u32) -> Option<Self>;
    /// The last address of the block that starts at `self` with prefix `len`.
    fn last(self, len: u8) -> Self;
    /// The first address of the block of prefix `len` that holds `self`.
    fn first(self, len: u8) -> Self;
    /// The next address; never called on `MAX`.
    fn succ(self) -> Self;
}

impl Key for u32 {
    const MAX: Self = u32::MAX;
    #[inline]
    fn bucket(self, bits: u32) -> Option<usize> {
        Some(self.checked_shr(32 - bits).unwrap_or(0) as usize)
    }
    fn bucket_start(bucket: usize, bits: u32) -> Option<Self> {
        let bucket = u32::try_from(bucket).ok().filter(|b| u64::from(*b) < 1u64 << bits)?;
        Some(bucket.checked_shl(32 - bits).unwrap_or(0))
    }
    #[inline]
    fn last(self, len: u8) -> Self {
        self | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    #[inline]
    fn first(self, len: u8) -> Self {
        self & !u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    #[inline]
    fn succ(self) -> Self {
        self.wrapping_add(1)
    }
}

/// A 128-bit IPv6 key as four big-endian words: 4-byte aligned, so a record
/// is 20 bytes rather than the 32 a 16-byte aligned `u128` would take.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Debug, Hash)]
pub(crate) struct Wide([u32; 4]);

impl From<u128> for Wide {
    #[inline]
    fn from(v: u128) -> Self {
        Wide([(v >> 96) as u32, (v >> 64) as u32, (v >> 32) as u32, v as u32])
    }
}

impl From<Wide> for u128 {
    #[inline]
    fn from(w: Wide) -> Self {
        let [a, b, c, d] = w.0.map(u128::from);
        (a << 96) | (b << 64) | (c << 32) | d
    }
}

impl Key for Wide {
    const MAX: Self = Wide([u32::MAX; 4]);
    /// IPv6 entries crowd into a few prefixes, where equal slices of the
    /// space would not split the intervals.
    fn bucket(self, _bits: u32) -> Option<usize> {
        None
    }
    fn bucket_start(_bucket: usize, _bits: u32) -> Option<Self> {
        None
    }
    #[inline]
    fn last(self, len: u8) -> Self {
        Wide::from(u128::from(self) | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
    }
    #[inline]
    fn first(self, len: u8) -> Self {
        Wide::from(u128::from(self) & !u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
    }
    #[inline]
    fn succ(self) -> Self {
        Wide::from(u128::from(self).wrapping_add(1))
    }
}

/// One entry of one group, as the matcher sorts it: by start, then prefix
/// length, then group id, which is the order of `(start, key)` with the
/// length in the top byte of `key` and the id below it. `index` is the
/// entry's position in its group (one group never holds an entry twice, so
/// it never decides the order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Rec<K> {
    start: K,
    key: u32,
    index: u32,
}

/// Groups a record can name: 24 bits.
pub const MAX_GROUPS: usize = 1 << 24;

impl<K: Key> Rec<K> {
    #[inline]
    fn new(start: K, len: u8, group: u32, index: u32) -> Self {
        Rec { start, key: (u32::from(len) << 24) | (group & 0x00ff_ffff), index }
    }

    #[inline]
    fn slot(&self) -> Slot {
        pack(self.group(), self.len(), self.index)
    }

    #[inline]
    fn len(&self) -> u8 {
        (self.key >> 24) as u8
    }

    #[inline]
    fn group(&self) -> u32 {
        self.key & 0x00ff_ffff
    }
}

#[derive(Clone, Debug)]
struct Family<K> {
    /// Sorted by (start, len, group).
    recs: Vec<Rec<K>>,
    /// Interval starts, ascending; the first is always address 0.
    starts: Vec<K>,
    /// For each interval, its winner (see [`pack`]), or [`EMPTY`].
    slots: Vec<Slot>,
    /// For each bucket and the end, how many intervals start below the
    /// bucket; empty when the family has few intervals or no buckets.
    index: Vec<u32>,
    /// The buckets are the top `bucket_bits` of the key.
    bucket_bits: u32,
    /// At most how many intervals have the winner of the one before (left
    /// by removals made in place, see [`Family::remove_in_place`]).
    spare: usize,
}

impl<K: Key> Default for Family<K> {
    fn default() -> Self {
        Family {
            recs: Vec::new(),
            starts: vec![K::default()],
            slots: vec![EMPTY],
            index: Vec::new(),
            bucket_bits: 0,
            spare: 0,
        }
    }
}

impl<K: Key> Family<K> {
    fn build(mut recs: Vec<Rec<K>>, ranks: &Ranks) -> Self {
        recs.sort_unstable();
        // Collected by pushes, the list has up to twice the room it needs,
        // and it is held as long as the rules are.
        recs.shrink_to_fit();
        let (starts, slots) = sweep(&recs, ranks);
        let (index, bucket_bits) = build_index(&starts, None);
        Family { recs, starts, slots, index, bucket_bits, spare: 0 }
    }

    /// Drops the `removed` records, merges in `added`, and recomputes the
    /// intervals where records came or went (see [`patch`]); `None` when
    /// neither touches this family.
    fn rebuild(&self, mut removed: Vec<Rec<K>>, mut added: Vec<Rec<K>>, ranks: &Ranks) -> Option<Self> {
        if removed.is_empty() && added.is_empty() {
            return None;
        }
        removed.sort_unstable();
        added.sort_unstable();
        let recs = splice(&self.recs, &removed, &added);
        let dirty = dirty_ranges(&removed, &added);
        let (starts, slots) = patch(self, &recs, &dirty, ranks);
        let (index, bucket_bits) = build_index(&starts, Some((&self.index, self.bucket_bits)));
        // The old intervals copied keep what was spare in them.
        Some(Family { recs, starts, slots, index, bucket_bits, spare: self.spare })
    }

    /// Drops the `removed` records (none may be added) in this family's own
    /// arrays, without new multi-megabyte arrays. Removing records adds no
    /// interval boundary (a record's start and the address after its end
    /// are boundaries whoever else covers them, so every boundary the
    /// records left give was one already): the winners of the changed ranges
    /// are found while the old intervals are intact, then written into the
    /// old intervals they cover, whose starts stay. An old boundary the
    /// change made needless stays, as a spare interval with its neighbour's
    /// winner; once they would pass an eighth of the intervals, the
    /// intervals are written again without them (see [`Family::compact`]).
    fn remove_in_place(&mut self, mut removed: Vec<Rec<K>>, ranks: &Ranks) {
        if removed.is_empty() {
            return;
        }
        removed.sort_unstable();
        remove_sorted(&mut self.recs, &removed);
        let len = self.recs.len();
        if len + len / 4 < self.recs.capacity() {
            self.recs.shrink_to_fit();
        }
        let dirty = dirty_ranges(&removed, &[]);
        // A changed range has a few intervals: room for four each spares
        // most of the growing.
        let mut winners = Winners {
            starts: Vec::with_capacity(dirty.len() * 4),
            slots: Vec::with_capacity(dirty.len() * 4),
            ranges: Vec::with_capacity(dirty.len()),
            open: false,
        };
        patch_into(&*self, &self.recs, &dirty, ranks, &mut winners);
        match self.set_winners(&winners) {
            Some(spare) if self.spare + spare <= self.starts.len() / 8 => self.spare += spare,
            Some(_) => self.compact(),
            None => {
                // Not reached (see above); were it, the records are right
                // and the intervals are swept from them again.
                let recs = std::mem::take(&mut self.recs);
                *self = Family::build(recs, ranks);
            }
        }
    }

    /// Writes each changed range's winners into the old intervals it covers;
    /// at most how many of those intervals are now spare, or `None` if a
    /// winner starts where no old interval does (the intervals are then
    /// partly written, and the caller sweeps them again).
    fn set_winners(&mut self, winners: &Winners<K>) -> Option<usize> {
        let mut spare = 0;
        let mut k = 0;
        for (r, &(first, last, from)) in winners.ranges.iter().enumerate() {
            let to = winners.ranges.get(r + 1).map_or(winners.starts.len(), |next| next.2);
            let starts = winners.starts.get(from..to)?;
            let slots = winners.slots.get(from..to)?;
            k = seek(&self.starts, k, first);
            if self.starts.get(k) != Some(&first) || starts.first() != Some(&first) {
                return None;
            }
            let mut j = 0;
            let covered = k;
            while let Some(&at) = self.starts.get(k).filter(|at| **at <= last) {
                while let Some(&next) = starts.get(j + 1).filter(|next| **next <= at) {
                    if next != at {
                        return None;
                    }
                    j += 1;
                }
                *self.slots.get_mut(k)? = *slots.get(j)?;
                k += 1;
            }
            if j + 1 != starts.len() {
                return None;
            }
            spare += (k - covered).saturating_sub(starts.len()) + 2;
        }
        Some(spare)
    }

    /// Writes the intervals again without the spare ones (from the front,
    /// in the same arrays), and the index for them.
    fn compact(&mut self) {
        let mut n = 0;
        for k in 0..self.starts.len().min(self.slots.len()) {
            let (Some(&at), Some(&slot)) = (self.starts.get(k), self.slots.get(k)) else {
                break;
            };
            if n > 0 && self.slots.get(n - 1) == Some(&slot) {
                continue;
            }
            if let (Some(s), Some(w)) = (self.starts.get_mut(n), self.slots.get_mut(n)) {
                (*s, *w) = (at, slot);
            }
            n += 1;
        }
        self.starts.truncate(n);
        self.slots.truncate(n);
        if n + n / 4 < self.starts.capacity() {
            self.starts.shrink_to_fit();
            self.slots.shrink_to_fit();
        }
        let (index, bucket_bits) = build_index(&self.starts, Some((&self.index, self.bucket_bits)));
        (self.index, self.bucket_bits, self.spare) = (index, bucket_bits, 0);
    }

    /// The winner of the interval holding `key`.
    #[inline]
    fn lookup(&self, key: K) -> Slot {
        // The interval holding `key` starts in its bucket, or it is the last
        // one before the bucket (the one just before the window).
        let bucket = key.bucket(self.bucket_bits);
        let (lo, hi) = match bucket.and_then(|b| Some((*self.index.get(b)?, *self.index.get(b + 1)?))) {
            Some((lo, hi)) => (lo as usize, hi as usize),
            None => (0, self.starts.len()),
        };
        let window = self.starts.get(lo..hi).unwrap_or(&[]);
        let i = lo + window.partition_point(|s| *s <= key);
        match i.checked_sub(1).and_then(|i| self.slots.get(i)) {
            Some(&slot) => slot,
            None => EMPTY,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.index.capacity() * std::mem::size_of::<u32>()
            + self.recs.capacity() * std::mem::size_of::<Rec<K>>()
            + self.starts.capacity() * std::mem::size_of::<K>()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
    }
}

/// For each bucket (and the end), how many of `starts` lie below it, and
/// the bucket bits; empty for few intervals or a family without buckets.
///
/// With the index of the family before a change (same bits), each bucket's
/// position is guessed from its old one plus the drift of the bucket before
/// and checked with a search around the guess: a change moves few intervals,
/// so most guesses are right at the first two comparisons.
fn build_index<K: Key>(starts: &[K], previous: Option<(&[u32], u32)>) -> (Vec<u32>, u32) {
    if starts.len() < INDEX_FROM || K::default().bucket(1).is_none() {
        return (Vec::new(), 0);
    }
    let bits = (usize::BITS - (starts.len() / 4).leading_zeros()).min(MAX_BUCKET_BITS);
    let buckets = 1usize << bits;
    let previous = previous.filter(|(index, old_bits)| *old_bits == bits && index.len() == buckets + 1);
    let mut index = Vec::with_capacity(buckets + 1);
    let mut at = 0usize;
    let mut drift = 0isize;
    for bucket in 0..buckets {
        let Some(first) = K::bucket_start(bucket, bits) else {
            return (Vec::new(), 0);
        };
        if let Some(old) = previous.and_then(|(old, _)| old.get(bucket)) {
            at = (*old as isize + drift).clamp(at as isize, starts.len() as isize) as usize;
        }
        at = locate(starts, at, first);
        if let Some(old) = previous.and_then(|(old, _)| old.get(bucket)) {
            drift = at as isize - *old as isize;
        }
        index.push(u32::try_from(at).unwrap_or(u32::MAX));
    }
    index.push(u32::try_from(starts.len()).unwrap_or(u32::MAX));
    (index, bits)
}

/// How many of `starts` lie below `key`, searched outwards from `guess`.
fn locate<K: Key>(starts: &[K], guess: usize, key: K) -> usize {
    let (mut lo, mut hi, mut step) = (guess.min(starts.len()), guess.min(starts.len()), 1usize);
    while lo > 0 && starts.get(lo - 1).is_some_and(|s| *s >= key) {
        lo = lo.saturating_sub(step);
        step *= 2;
    }
    step = 1;
    while starts.get(hi).is_some_and(|s| *s < key) {
        hi = (hi + step).min(starts.len());
        step *= 2;
    }
    lo + starts.get(lo..hi).map_or(0, |window| window.partition_point(|s| *s < key))
}

/// How many of the sorted `recs` lie below `key`, given that the first
/// `from` do: a galloping search forward from `from`, cheap when the answer
/// is near.
fn gallop<K: Key>(recs: &[Rec<K>], from: usize, key: &Rec<K>) -> usize {
    let (mut lo, mut step) = (from, 1usize);
    while recs.get(lo + step - 1).is_some_and(|r| r < key) {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(recs.len());
    lo + recs.get(lo..hi).map_or(0, |window| window.partition_point(|r| r < key))
}

/// The sorted records `old` without the sorted `removed` ones (found by
/// binary search) and with the sorted `added` ones merged in: the runs in
/// between are copied whole.
fn splice<K: Key>(old: &[Rec<K>], removed: &[Rec<K>], added: &[Rec<K>]) -> Vec<Rec<K>> {
    let mut out = Vec::with_capacity((old.len() + added.len()).saturating_sub(removed.len()));
    let mut added = added.iter().peekable();
    let mut run_start = 0;
    let mut copy_run = |out: &mut Vec<Rec<K>>, run: &[Rec<K>]| {
        let mut pos = 0;
        while let Some(a) = added.next_if(|a| run.last().is_some_and(|l| *a < l)) {
            let at = pos + run.get(pos..).map_or(0, |rest| rest.partition_point(|r| r < a));
            out.extend_from_slice(run.get(pos..at).unwrap_or(&[]));
            out.push(*a);
            pos = at;
        }
        out.extend_from_slice(run.get(pos..).unwrap_or(&[]));
    };
    for gone in removed {
        // Galloping from the last one found: the removed records are sorted,
        // and a search of the whole rest for each would miss the cache at
        // almost every probe.
        let at = gallop(old, run_start, gone);
        if old.get(at) != Some(gone) {
            // Not there (nothing a caller should pass): nothing to drop.
            continue;
        }
        copy_run(&mut out, old.get(run_start..at).unwrap_or(&[]));
        run_start = at + 1;
    }
    copy_run(&mut out, old.get(run_start..).unwrap_or(&[]));
    out.extend(added);
    out
}

/// Drops the sorted `removed` records from the sorted `recs` in place
/// (found by galloping search; those not there are skipped), moving the
/// runs between them down.
fn remove_sorted<K: Key>(recs: &mut Vec<Rec<K>>, removed: &[Rec<K>]) {
    // Records from `read` on are as they were; those below `write` are kept.
    let (mut write, mut read) = (0, 0);
    for gone in removed {
        let at = gallop(recs, read, gone);
        if recs.get(at) != Some(gone) {
            continue;
        }
        if write != read {
            recs.copy_within(read..at, write);
        }
        write += at - read;
        read = at + 1;
    }
    let len = recs.len();
    if write != read {
        recs.copy_within(read..len, write);
    }
    recs.truncate(write + (len - read));
}

/// The address ranges covered by the records of two sorted lists, sorted,
/// with nested and adjacent ones merged.
fn dirty_ranges<K: Key>(a: &[Rec<K>], b: &[Rec<K>]) -> Vec<(K, K)> {
    let mut merged: Vec<(K, K)> = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let r = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        let Some(r) = r else {
            return merged;
        };
        let (start, last) = (r.start, r.start.last(r.len()));
        match merged.last_mut() {
            Some(m) if start <= m.1 || (m.1 != K::MAX && start == m.1.succ()) => m.1 = m.1.max(last),
            _ => merged.push((start, last)),
        }
    }
}

/// The index of the last of `starts` at or below `key`, looking forward from
/// index `from` (whose start is at or below `key`): a galloping search, cheap
/// when the answer is near.
fn seek<K: Key>(starts: &[K], from: usize, key: K) -> usize {
    let mut step = 1;
    let mut lo = from;
    loop {
        let probe = lo + step;
        match starts.get(probe) {
            Some(s) if *s <= key => {
                lo = probe;
                step *= 2;
            }
            _ => break,
        }
    }
    let hi = (lo + step).min(starts.len());
    lo + starts.get(lo..hi).map_or(1, |window| window.partition_point(|s| *s <= key)).max(1) - 1
}

/// Intervals under construction, merging neighbours with the same winner.
struct Out<K> {
    starts: Vec<K>,
    slots: Vec<Slot>,
}

impl<K: Key> Out<K> {
    #[inline]
    fn emit(&mut self, at: K, slot: Slot) {
        let n = self.slots.len();
        match (self.starts.last().copied(), self.slots.last().copied()) {
            (_, Some(last)) if last == slot => {}
            (Some(start), Some(_)) if start == at => {
                // The new winner takes the last interval over from its start.
                if n >= 2 && self.slots.get(n - 2) == Some(&slot) {
                    self.starts.pop();
                    self.slots.pop();
                } else if let Some(w) = self.slots.last_mut() {
                    *w = slot;
                }
            }
            _ => {
                self.starts.push(at);
                self.slots.push(slot);
            }
        }
    }
}

/// Where [`patch_into`] writes the new intervals.
trait Sink<K> {
    /// An interval from `at` won by `slot`, merged with its neighbour when
    /// that has the same winner (see [`Out::emit`]).
    fn emit(&mut self, at: K, slot: Slot);
    /// The old intervals `from..to` as they are (their neighbours already
    /// differ).
    fn copy(&mut self, old: &Family<K>, from: usize, to: usize);
    /// The intervals of the changed range `first..=last` follow.
    fn begin(&mut self, _first: K, _last: K) {}
    /// The changed range begun last is done.
    fn end(&mut self) {}
}

impl<K: Key> Sink<K> for Out<K> {
    #[inline]
    fn emit(&mut self, at: K, slot: Slot) {
        Out::emit(self, at, slot);
    }

    fn copy(&mut self, old: &Family<K>, from: usize, to: usize) {
        if let (Some(starts), Some(slots)) = (old.starts.get(from..to), old.slots.get(from..to)) {
            self.starts.extend_from_slice(starts);
            self.slots.extend_from_slice(slots);
        }
    }
}

/// The winners [`patch_into`] finds in each changed range, the old
/// intervals left out: per range its first and last address and where its
/// intervals begin in `starts` and `slots`.
struct Winners<K> {
    starts: Vec<K>,
    slots: Vec<Slot>,
    ranges: Vec<(K, K, usize)>,
    /// Inside a range.
    open: bool,
}

impl<K: Key> Sink<K> for Winners<K> {
    /// [`Out::emit`] within the current range (nothing outside ranges).
    fn emit(&mut self, at: K, slot: Slot) {
        let Some(&(_, _, base)) = self.ranges.last().filter(|_| self.open) else {
            return;
        };
        let n = self.starts.len();
        let last =
            n.checked_sub(1).filter(|i| *i >= base).and_then(|i| Some((*self.starts.get(i)?, *self.slots.get(i)?)));
        match last {
            Some((_, last)) if last == slot => {}
            Some((start, _)) if start == at => {
                if n >= base + 2 && self.slots.get(n - 2) == Some(&slot) {
                    self.starts.pop();
                    self.slots.pop();
                } else if let Some(w) = self.slots.last_mut() {
                    *w = slot;
                }
            }
            _ => {
                self.starts.push(at);
                self.slots.push(slot);
            }
        }
    }

    fn copy(&mut self, _old: &Family<K>, _from: usize, _to: usize) {}

    fn begin(&mut self, first: K, last: K) {
        self.ranges.push((first, last, self.starts.len()));
        self.open = true;
    }

    fn end(&mut self) {
        self.open = false;
    }
}

/// The records open at some address while sweeping: innermost last, as
/// (last address, winner), plus the block last taken (an equal block of
/// another group wins it only if that group comes first in name order).
#[derive(Default)]
struct Open<K> {
    stack: Vec<(K, Slot)>,
    previous: Option<(K, u8)>,
}

impl<K: Key> Open<K> {
    fn top(&self) -> Slot {
        self.stack.last().map_or(EMPTY, |t| t.1)
    }

    /// Takes record `r` in: closes what ends before it (reporting each end
    /// and the winner after it to `ended`) and opens it. Returns the new
    /// winner from its start, or `None` when an equal block of a group first
    /// in name order keeps it.
    #[inline]
    fn take(&mut self, r: &Rec<K>, ranks: &Ranks, mut ended: impl FnMut(K, Slot)) -> Option<Slot> {
        let len = r.len();
        if self.previous == Some((r.start, len)) {
            // Equal blocks are adjacent in the records: the open one on top is
            // the winner so far.
            let top = self.stack.last_mut()?;
            if rank(ranks, r.group()) < rank(ranks, slot_group(top.1)) {
                top.1 = r.slot();
                return Some(top.1);
            }
            return None;
        }
        self.previous = Some((r.start, len));
        self.close_before(r.start, &mut ended);
        let slot = r.slot();
        self.stack.push((r.start.last(len), slot));
        Some(slot)
    }

    /// Closes every open record that ends before `at`.
    #[inline]
    fn close_before(&mut self, at: K, mut ended: impl FnMut(K, Slot)) {
        while let Some(&(last, _)) = self.stack.last() {
            if last >= at {
                break;
            }
            self.stack.pop();
            ended(last.succ(), self.top());
        }
    }
}

/// How far back a change looks for an uncovered interval to restart the
/// sweep from before it carries the running sweep forward instead.
const RESYNC_LOOKBACK: usize = 32;

/// How many records a change carries its sweep over to reach a range before
/// it looks up the records open there instead.
const FAR: usize = 64;

/// The prefix lengths of `recs`, ascending, each once.
fn prefix_lengths<K: Key>(recs: &[Rec<K>]) -> Vec<u8> {
    let mut seen = [false; 256];
    for r in recs {
        if let Some(s) = seen.get_mut(usize::from(r.len())) {
            *s = true;
        }
    }
    (0..=u8::MAX).filter(|&len| seen.get(usize::from(len)).copied().unwrap_or(false)).collect()
}

/// The records open at address `at` as a sweep that took every record
/// starting before it would hold them: those that start before `at` and
/// cover it, outermost first, each block won by the group first in name
/// order. `lens` are the prefix lengths the records have, ascending, and
/// the first `below` records are those that start before `at`.
fn open_at<K: Key>(recs: &[Rec<K>], below: usize, at: K, lens: &[u8], ranks: &Ranks) -> Open<K> {
    let mut open = Open::default();
    // Innermost first, each searched backwards from where the last one is:
    // the blocks around an address are near it in the records.
    let mut hi = below;
    for &len in lens.iter().rev() {
        let start = at.first(len);
        if start >= at {
            // Blocks that start at `at` are the range's to take.
            continue;
        }
        let key = Rec { start, key: u32::from(len) << 24, index: 0 };
        let lo = gallop_back(recs, hi, &key);
        hi = lo;
        let mut best: Option<Slot> = None;
        for r in recs.get(lo..).unwrap_or(&[]).iter().take_while(|r| r.start == start && r.len() == len) {
            best = match best {
                Some(b) if rank(ranks, slot_group(b)) <= rank(ranks, r.group()) => Some(b),
                _ => Some(r.slot()),
            };
        }
        if let Some(slot) = best {
            open.stack.push((start.last(len), slot));
        }
    }
    open.stack.reverse();
    open
}

/// How many of the sorted `recs` lie below `key`, given that those from
/// `hi` on do not: a galloping search backwards from `hi`, cheap when the
/// answer is near.
fn gallop_back<K: Key>(recs: &[Rec<K>], hi: usize, key: &Rec<K>) -> usize {
    let mut top = hi.min(recs.len());
    let mut step = 1;
    let lo = loop {
        let probe = top.saturating_sub(step);
        match recs.get(probe) {
            Some(r) if r >= key && probe > 0 => {
                top = probe;
                step *= 2;
            }
            Some(r) if r >= key => break 0,
            _ => break probe,
        }
    };
    lo + recs.get(lo..top).map_or(0, |window| window.partition_point(|r| r < key))
}

/// The new intervals after a change: outside the changed (`dirty`) ranges
/// every address has the same covering records as before, so the old
/// intervals are copied; inside them the new records are swept again. A
/// sweep must start where it knows which records are open: at an interval
/// that no record covered (nothing open), found close before the range, or
/// else by carrying the sweep along from where the last one stopped.
fn patch<K: Key>(old: &Family<K>, recs: &[Rec<K>], dirty: &[(K, K)], ranks: &Ranks) -> (Vec<K>, Vec<Slot>) {
    let capacity = old.starts.len() + 2 * recs.len().min(4 * dirty.len() + 64) + 1;
    let mut out = Out { starts: Vec::with_capacity(capacity), slots: Vec::with_capacity(capacity) };
    patch_into(old, recs, dirty, ranks, &mut out);
    let n = out.starts.len();
    if n + n / 4 < out.starts.capacity() {
        out.starts.shrink_to_fit();
        out.slots.shrink_to_fit();
    }
    (out.starts, out.slots)
}

/// [`patch`], writing to `out`.
fn patch_into<K: Key>(old: &Family<K>, recs: &[Rec<K>], dirty: &[(K, K)], ranks: &Ranks, out: &mut impl Sink<K>) {
    // The running sweep: records before `next` are taken, `open` holds those
    // that cover the current position.
    let mut open = Open::default();
    let mut next = 0;
    // The old intervals are copied from address `from`, in interval `from_at`.
    let (mut from, mut from_at) = (Some(K::default()), 0);
    // The prefix lengths the records have, once needed.
    let mut lens: Option<Vec<u8>> = None;
    for &(first, last) in dirty {
        let Some(copy_from) = from else {
            break;
        };
        let at = seek(&old.starts, from_at, first);
        if first > copy_from {
            let below_first = at + usize::from(old.starts.get(at).is_some_and(|s| *s < first));
            copy_old(out, old, copy_from, from_at, below_first);
        }
        // Restart after an uncovered interval close before the range if the
        // running sweep is further back than that.
        let restart = (at.saturating_sub(RESYNC_LOOKBACK).max(from_at)..=at).rev().find_map(|i| {
            (*old.slots.get(i)? == EMPTY).then(|| {
                if i == at {
                    first
                } else {
                    old.starts.get(i + 1).copied().unwrap_or(first)
                }
            })
        });
        if let Some(restart) = restart {
            let skip_to = gallop(recs, next, &Rec { start: restart, key: 0, index: 0 });
            if skip_to > next {
                open = Open::default();
                next = skip_to;
            }
        }
        // Far from the range, the records open at its start are looked up
        // rather than carried to it one by one (where entries cover most
        // of the space, no uncovered interval is near).
        let skip_to = gallop(recs, next, &Rec { start: first, key: 0, index: 0 });
        if skip_to - next > FAR {
            let lens = lens.get_or_insert_with(|| prefix_lengths(recs));
            open = open_at(recs, skip_to, first, lens, ranks);
            next = skip_to;
        }
        // Carry the sweep to the range without writing (the copy covers it).
        while let Some(r) = recs.get(next).filter(|r| r.start < first) {
            open.take(r, ranks, |_, _| {});
            next += 1;
        }
        open.close_before(first, |_, _| {});
        out.begin(first, last);
        out.emit(first, open.top());
        while let Some(r) = recs.get(next).filter(|r| r.start <= last) {
            if let Some(slot) = open.take(r, ranks, |at, under| out.emit(at, under)) {
                out.emit(r.start, slot);
            }
            next += 1;
        }
        // Records that end inside the range end there; past it the old
        // intervals are right again.
        open.close_before(last, |at, under| out.emit(at, under));
        out.end();
        if last == K::MAX {
            from = None;
            break;
        }
        open.close_before(last.succ(), |_, _| {});
        from = Some(last.succ());
        from_at = seek(&old.starts, at, last.succ());
    }
    if let Some(copy_from) = from {
        copy_old(out, old, copy_from, from_at, old.starts.len());
    }
}

/// Copies the old intervals from address `from` (in interval `first`) up to
/// interval `end` (not included).
fn copy_old<K: Key>(out: &mut impl Sink<K>, old: &Family<K>, from: K, first: usize, end: usize) {
    if let Some(&slot) = old.slots.get(first) {
        out.emit(from, slot);
    }
    // Old neighbours already differ (or, spare, share a winner, which
    // changes no lookup), so the rest needs no merging.
    out.copy(old, (first + 1).min(end), end);
}

/// Turns sorted, laminar records into intervals and their winners.
fn sweep<K: Key>(recs: &[Rec<K>], ranks: &Ranks) -> (Vec<K>, Vec<Slot>) {
    // Every record opens one interval and closes at most one: at most 2n + 1.
    // The output is written by index into buffers of that size, with the
    // count and the last interval in locals: no growth checks, no reloads.
    let cap = 2 * recs.len() + 1;
    let mut starts: Vec<K> = vec![K::default(); cap];
    let mut slots: Vec<Slot> = vec![EMPTY; cap];
    let mut n = 1;
    let (mut last_start, mut last_slot) = (K::default(), EMPTY);
    macro_rules! emit {
        ($at:expr, $slot:expr) => {{
            let (at, slot) = ($at, $slot);
            if slot != last_slot {
                if at != last_start {
                    if let (Some(s), Some(w)) = (starts.get_mut(n), slots.get_mut(n)) {
                        *s = at;
                        *w = slot;
                        n += 1;
                    }
                    last_start = at;
                } else if n >= 2 && slots.get(n - 2) == Some(&slot) {
                    // A block that starts where the last interval starts takes
                    // it over, and now shares its winner with the one before.
                    n -= 1;
                    last_start = starts.get(n - 1).copied().unwrap_or_default();
                } else if let Some(w) = slots.get_mut(n - 1) {
                    // A block that starts where the last interval starts takes it over.
                    *w = slot;
                }
                last_slot = slot;
            }
        }};
    }
    // The prefixes open at the current position: the innermost one in
    // `top_last`/`top_slot` (EMPTY when none is open), the ones around it in
    // `outer`, innermost last.
    let mut outer: Vec<(K, Slot)> = Vec::with_capacity(130);
    let (mut top_last, mut top_slot) = (K::default(), EMPTY);
    let (mut prev_start, mut prev_len) = (K::MAX, u8::MAX);
    for r in recs {
        let len = r.len();
        // The same block in another group (adjacent in the records, and the
        // one open on top): the group first in name order wins it.
        if len == prev_len && r.start == prev_start {
            if rank(ranks, r.group()) < rank(ranks, slot_group(top_slot)) {
                top_slot = r.slot();
                emit!(r.start, top_slot);
            }
            continue;
        }
        (prev_start, prev_len) = (r.start, len);
        while top_slot != EMPTY && top_last < r.start {
            let ended = top_last;
            (top_last, top_slot) = outer.pop().unwrap_or((K::default(), EMPTY));
            emit!(ended.succ(), top_slot);
        }
        let slot = r.slot();
        emit!(r.start, slot);
        if top_slot != EMPTY {
            outer.push((top_last, top_slot));
        }
        (top_last, top_slot) = (r.start.last(len), slot);
    }
    // Everything still open ends, innermost first; at the top of the space
    // nothing follows.
    while top_slot != EMPTY && top_last != K::MAX {
        let ended = top_last;
        (top_last, top_slot) = outer.pop().unwrap_or((K::default(), EMPTY));
        emit!(ended.succ(), top_slot);
    }
    starts.truncate(n);
    slots.truncate(n);
    // Give back a buffer that is mostly unused (adjacent blocks merged);
    // shrinking a nearly full one would only copy it.
    if n + n / 4 < cap {
        starts.shrink_to_fit();
        slots.shrink_to_fit();
    }
    (starts, slots)
}

/// What admitted an address: the group's id, and the prefix length (the
/// entry is the address truncated to it) and position of the winning entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The group's id.
    pub group: GroupId,
    /// The winning entry's prefix length.
    pub len: u8,
    /// Where its group keeps the winning entry's usage: its position in
    /// the group, unless an expiry sweep has removed entries before it
    /// since the group last changed (the group maps positions to these).
    pub index: u32,
}

/// The compiled form of every group's entries.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    v4: Arc<Family<u32>>,
    v6: Arc<Family<Wide>>,
}

/// A group's entries as the matcher takes them: its id, the entries, and
/// each one's index in the group's usage figures, which a hit names.
pub type Members<'a> = (GroupId, &'a Entries, Indexes<'a>);

/// The index in its group's usage figures of each entry of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexes<'a> {
    /// Entry `i` has the `i`-th index that is not among these (ascending):
    /// the figures of entries gone since the group was built stay where
    /// they were, as holes. Empty: every entry's index is its position.
    Skipping(&'a [u32]),
    /// Entry `i` has the `i`-th of these.
    Listed(&'a [u32]),
}

/// Records of one group's entries, split by family.
fn records((group, entries, indexes): Members<'_>, v4: &mut Vec<Rec<u32>>, v6: &mut Vec<Rec<Wide>>) {
    let (listed, skipped) = match indexes {
        Indexes::Listed(at) => (Some(at), &[][..]),
        Indexes::Skipping(holes) => (None, holes),
    };
    let mut holes = skipped.iter().copied().peekable();
    let mut next = 0u32;
    for (i, e) in entries.iter().enumerate() {
        let index = match listed {
            Some(at) => at.get(i).copied().unwrap_or(u32::MAX),
            None => {
                // The next index that is not a hole.
                while let Some(h) = holes.next_if(|&h| h <= next) {
                    if h == next {
                        next = next.saturating_add(1);
                    }
                }
                let index = next;
                next = next.saturating_add(1);
                index
            }
        };
        match e.net() {
            IpNet::V4(n) => v4.push(Rec::new(u32::from(n.network()), n.prefix_len(), group, index)),
            IpNet::V6(n) => v6.push(Rec::new(Wide::from(u128::from(n.network())), n.prefix_len(), group, index)),
        }
    }
}

/// Drops `gone` from `family`: in place when it is held alone, else into a
/// new one (the old one is another state's too).
fn remove_from<K: Key>(family: &mut Arc<Family<K>>, gone: Vec<Rec<K>>, ranks: &Ranks) {
    if gone.is_empty() {
        return;
    }
    match Arc::get_mut(family) {
        Some(own) => own.remove_in_place(gone, ranks),
        None => {
            if let Some(next) = family.rebuild(gone, Vec::new(), ranks) {
                *family = Arc::new(next);
            }
        }
    }
}

impl Matcher {
    /// Compiles groups from scratch (see [`Members`]); `ranks` gives each
    /// id's position in name order.
    pub fn build<'a, I>(groups: I, ranks: &Ranks) -> Matcher
    where
        I: IntoIterator<Item = Members<'a>>,
    {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for members in groups {
            records(members, &mut v4, &mut v6);
        }
        Matcher { v4: Arc::new(Family::build(v4, ranks)), v6: Arc::new(Family::build(v6, ranks)) }
    }

    /// The matcher after a change: `removed` gives the id and the old entries
    /// of each group changed or deleted, `added` the id and the new entries
    /// of each group changed or created, and `ranks` every id's position in
    /// name order after the change.
    pub fn rebuild<'a, 'b, R, A>(&self, removed: R, added: A, ranks: &Ranks) -> Matcher
    where
        R: IntoIterator<Item = Members<'a>>,
        A: IntoIterator<Item = Members<'b>>,
    {
        let (mut gone4, mut gone6) = (Vec::new(), Vec::new());
        for members in removed {
            records(members, &mut gone4, &mut gone6);
        }
        let (mut new4, mut new6) = (Vec::new(), Vec::new());
        for members in added {
            records(members, &mut new4, &mut new6);
        }
        Matcher {
            v4: self.v4.rebuild(gone4, new4, ranks).map_or_else(|| Arc::clone(&self.v4), Arc::new),
            v6: self.v6.rebuild(gone6, new6, ranks).map_or_else(|| Arc::clone(&self.v6), Arc::new),
        }
    }

    /// The matcher without the records of `removed` (each group's id and
    /// the entries of it that go; nothing is added), `ranks` every id's
    /// position in name order: as [`Matcher::rebuild`] with only removals
    /// gives it, made in place for a family this matcher holds alone (no
    /// other state shares it), which spares a copy of its arrays.
    pub fn remove<'a, R>(&mut self, removed: R, ranks: &Ranks)
    where
        R: IntoIterator<Item = Members<'a>>,
    {
        let (mut gone4, mut gone6) = (Vec::new(), Vec::new());
        for members in removed {
            records(members, &mut gone4, &mut gone6);
        }
        remove_from(&mut self.v4, gone4, ranks);
        remove_from(&mut self.v6, gone6, ranks);
    }

    /// Whether `other` is this very matcher (the same arrays, shared).
    pub fn same_as(&self, other: &Matcher) -> bool {
        Arc::ptr_eq(&self.v4, &other.v4) && Arc::ptr_eq(&self.v6, &other.v6)
    }

    /// The id of the group whose entry wins for `addr`.
    #[inline]
    pub fn lookup_group(&self, addr: Addr) -> Option<GroupId> {
        let slot = match addr {
            Addr::V4(a) => self.v4.lookup(a),
            Addr::V6(a) => self.v6.lookup(Wide::from(a)),
        };
        (slot != EMPTY).then_some(slot_group(slot))
    }

    /// The winner for `addr` as the hot path counts it: the group's id, the
    /// winning entry's prefix length (the entry is `addr` truncated to it)
    /// and its position in the group, all read from the one interval slot
    /// the lookup already loads.
    #[inline]
    pub fn lookup_hit(&self, addr: Addr) -> Option<Hit> {
        let slot = match addr {
            Addr::V4(a) => self.v4.lookup(a),
            Addr::V6(a) => self.v6.lookup(Wide::from(a)),
        };
        (slot != EMPTY).then_some(Hit { group: slot_group(slot), len: slot as u8, index: (slot >> 32) as u32 })
    }

    /// The winning group's id and entry for `addr`.
    pub fn lookup(&self, addr: Addr) -> Option<(GroupId, Entry)> {
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
        if slot == EMPTY {
            return None;
        }
        Some((slot_group(slot), Entry::from_canonical(net?)?))
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

    proptest::proptest! {
        /// Removing sorted records leaves what a filter leaves, records
        /// that are not there skipped.
        #[test]
        fn sorted_removal_is_a_filter(
            keys in proptest::collection::btree_set(0u32..5000, 0..300),
            picks in proptest::collection::vec(proptest::bool::ANY, 300),
            strays in proptest::collection::vec(5000u32..6000, 0..4),
        ) {
            let recs: Vec<Rec<u32>> = keys.iter().map(|&k| Rec::new(k, 32, 1, k)).collect();
            let mut removed: Vec<Rec<u32>> =
                recs.iter().zip(&picks).filter(|(_, &p)| p).map(|(r, _)| *r).collect();
            removed.extend(strays.iter().map(|&k| Rec::new(k, 32, 1, k)));
            removed.sort_unstable();
            removed.dedup();
            let kept: Vec<Rec<u32>> = recs.iter().filter(|r| !removed.contains(r)).copied().collect();
            let mut left = recs.clone();
            remove_sorted(&mut left, &removed);
            proptest::prop_assert_eq!(&left, &kept);
        }
    }

    fn entries(list: &[&str]) -> Entries {
        Entries::new(&list.iter().map(|s| parse_entry(s.as_bytes()).unwrap()).collect::<Vec<_>>())
    }

    fn addr(s: &str) -> Addr {
        parse_address(s.as_bytes()).unwrap()
    }

    fn found(m: &Matcher, a: &str) -> Option<(u32, String)> {
        m.lookup(addr(a)).map(|(g, e)| (g, e.to_string()))
    }

    /// Groups with ids 0, 1, 2... in name order.
    fn build(groups: &[&Entries]) -> Matcher {
        let ranks: Vec<u32> = (0..groups.len() as u32).collect();
        Matcher::build(groups.iter().enumerate().map(|(i, e)| (i as u32, *e, Indexes::Skipping(&[]))), &ranks)
    }

    #[test]
    fn empty_matcher_matches_nothing() {
        let m = Matcher::default();
        assert_eq!(m.lookup(addr("10.0.0.1")), None);
        assert_eq!(m.lookup(addr("::1")), None);
        let m = build(&[]);
        assert_eq!(m.lookup_group(addr("0.0.0.0")), None);
    }

    #[test]
    fn most_specific_prefix_wins() {
        let g0 = entries(&["10.0.0.0/8", "10.1.0.0/16"]);
        let g1 = entries(&["10.1.2.0/24", "10.1.2.3"]);
        let m = build(&[&g0, &g1]);
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
        let m = build(&[&g0, &g1, &g2]);
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
        let m = build(&[&g]);
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
        let m = build(&[&g]);
        assert_eq!(found(&m, "10.0.0.1"), None);
        assert_eq!(found(&m, "::ffff:10.0.0.1"), None);
        let g = entries(&["0.0.0.0/0"]);
        let m = build(&[&g]);
        assert_eq!(found(&m, "::ffff:10.0.0.1"), Some((0, "0.0.0.0/0".into())));
        assert_eq!(found(&m, "2001:db8::1"), None);
    }

    #[test]
    fn adjacent_blocks() {
        let g = entries(&["10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/24"]);
        let m = build(&[&g]);
        assert_eq!(found(&m, "10.0.0.127"), Some((0, "10.0.0.0/25".into())));
        assert_eq!(found(&m, "10.0.0.128"), Some((0, "10.0.0.128/25".into())));
        assert_eq!(found(&m, "10.0.1.255"), Some((0, "10.0.1.0/24".into())));
        assert_eq!(found(&m, "10.0.2.0"), None);
    }

    #[test]
    fn rebuild_matches_a_fresh_build() {
        // Ids 0, 1, 2 for groups a, b, c (in name order).
        let a = entries(&["10.0.0.0/8", "2001:db8::/32", "10.9.9.9"]);
        let b = entries(&["10.1.0.0/16", "10.9.9.9"]);
        let c = entries(&["10.1.0.0/16", "2001:db8::1"]);
        let m = build(&[&a, &b, &c]);
        // A new group gets id 3 but comes second in name order; c changes.
        let new = entries(&["10.1.2.0/24", "2001:db8::/48", "10.9.9.9"]);
        let c2 = entries(&["10.9.9.9"]);
        let ranks = [0, 2, 3, 1];
        let rebuilt = m.rebuild(
            [(2, &c, Indexes::Skipping(&[]))],
            [(3, &new, Indexes::Skipping(&[])), (2, &c2, Indexes::Skipping(&[]))],
            &ranks,
        );
        let fresh = Matcher::build(
            [
                (0, &a, Indexes::Skipping(&[])),
                (3, &new, Indexes::Skipping(&[])),
                (1, &b, Indexes::Skipping(&[])),
                (2, &c2, Indexes::Skipping(&[])),
            ],
            &ranks,
        );
        for probe in
            ["10.0.0.1", "10.1.2.3", "10.1.3.3", "10.9.9.9", "2001:db8::1", "2001:db8:1::1", "2001:db9::", "11.0.0.0"]
        {
            assert_eq!(found(&rebuilt, probe), found(&fresh, probe), "{probe}");
        }
        // 10.9.9.9 is in a, b, c and the new group: a is first by name.
        assert_eq!(found(&rebuilt, "10.9.9.9"), Some((0, "10.9.9.9".into())));
        // Deleting a leaves the new group (second by name) the winner.
        let ranks = [NONE, 1, 2, 0];
        let dropped = rebuilt.rebuild([(0, &a, Indexes::Skipping(&[]))], std::iter::empty(), &ranks);
        assert_eq!(found(&dropped, "10.0.0.1"), None);
        assert_eq!(found(&dropped, "10.1.2.3"), Some((3, "10.1.2.0/24".into())));
        assert_eq!(found(&dropped, "10.9.9.9"), Some((3, "10.9.9.9".into())));
    }

    #[test]
    fn equal_entries_follow_name_order_not_ids() {
        // Group id 0 sorts after group id 1 by name.
        let x = entries(&["192.0.2.0/24"]);
        let y = entries(&["192.0.2.0/24"]);
        let m = Matcher::build([(0, &x, Indexes::Skipping(&[])), (1, &y, Indexes::Skipping(&[]))], &[1, 0]);
        assert_eq!(found(&m, "192.0.2.1"), Some((1, "192.0.2.0/24".into())));
        let m = Matcher::build([(0, &x, Indexes::Skipping(&[])), (1, &y, Indexes::Skipping(&[]))], &[0, 1]);
        assert_eq!(found(&m, "192.0.2.1"), Some((0, "192.0.2.0/24".into())));
        // A third group, first by name, takes it over through a rebuild.
        let z = entries(&["192.0.2.0/24", "192.0.3.0/24"]);
        let m = m.rebuild(std::iter::empty(), [(2, &z, Indexes::Skipping(&[]))], &[1, 2, 0]);
        assert_eq!(found(&m, "192.0.2.1"), Some((2, "192.0.2.0/24".into())));
    }

    #[test]
    fn intervals_stay_within_two_per_entry() {
        let g: Vec<Entry> = (0..1000u32).map(|i| Entry::host(Addr::V4(0x0a00_0000 + i * 2))).collect();
        let m = build(&[&Entries::new(&g)]);
        assert!(m.intervals() <= 2 * g.len() + 2, "{}", m.intervals());
    }

    #[test]
    fn a_hit_names_the_winning_entrys_position_in_its_group() {
        let a = entries(&["10.0.0.0/8", "10.1.0.0/16", "192.0.2.1"]);
        let b = entries(&["10.1.2.0/24"]);
        // Group 1's one entry stands at position 7 of its group (the others expired).
        let m = Matcher::build([(0, &a, Indexes::Skipping(&[])), (1, &b, Indexes::Listed(&[7]))], &[0, 1]);
        let hit = |s: &str| m.lookup_hit(addr(s)).map(|h| (h.group, h.len, h.index));
        assert_eq!(hit("10.2.0.1"), Some((0, 8, 0)));
        assert_eq!(hit("10.1.9.9"), Some((0, 16, 1)));
        assert_eq!(hit("192.0.2.1"), Some((0, 32, 2)));
        assert_eq!(hit("10.1.2.3"), Some((1, 24, 7)));
        assert_eq!(hit("11.0.0.1"), None);
        // A rebuild that moves an entry gives it its new position.
        let a2 = entries(&["10.1.0.0/16", "192.0.2.1"]);
        let m = m.rebuild([(0, &a, Indexes::Skipping(&[]))], [(0, &a2, Indexes::Skipping(&[]))], &[0, 1]);
        assert_eq!(m.lookup_hit(addr("192.0.2.1")).map(|h| h.index), Some(1));
        assert_eq!(m.lookup_hit(addr("10.1.9.9")).map(|h| h.index), Some(0));
    }

    /// Entries from `seeds`, (address bits, prefix length) in a narrow
    /// IPv4 range and a few IPv6 ones, without duplicates: nested, equal
    /// and adjacent blocks are common.
    fn seeded(seeds: &[(u32, u8)]) -> Vec<Entry> {
        let mut seen = std::collections::HashSet::new();
        let mut list = Vec::new();
        for &(bits, len) in seeds {
            let net = if bits % 11 == 0 {
                let a = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(bits % 64) << 16);
                IpNet::V6(Ipv6Net::new(a, 112 + len % 17).unwrap().trunc())
            } else {
                let a = Ipv4Addr::from(0x0a00_0000 + bits % 0x3_0000);
                IpNet::V4(Ipv4Net::new(a, 16 + len % 17).unwrap().trunc())
            };
            let e = Entry::from_canonical(net).unwrap();
            if seen.insert(e) {
                list.push(e);
            }
        }
        list
    }

    /// The winner of `a` and of its neighbours, in `m`.
    fn around(m: &Matcher, e: &Entry) -> Vec<Option<Hit>> {
        let net = e.net();
        let (lo, hi) = match net {
            IpNet::V4(n) => (Addr::V4(u32::from(n.network())), Addr::V4(u32::from(n.broadcast()))),
            IpNet::V6(n) => (Addr::V6(u128::from(n.network())), Addr::V6(u128::from(n.broadcast()))),
        };
        let step = |a: Addr, up: bool| match a {
            Addr::V4(x) => Addr::V4(if up { x.wrapping_add(1) } else { x.wrapping_sub(1) }),
            Addr::V6(x) => Addr::V6(if up { x.wrapping_add(1) } else { x.wrapping_sub(1) }),
        };
        [step(lo, false), lo, hi, step(hi, true)].into_iter().map(|a| m.lookup_hit(a)).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Removing records in place, round after round, leaves the records
        /// a rebuild leaves, and the winners a build of what is left finds.
        #[test]
        fn removal_in_place_is_a_rebuild(
            groups in proptest::collection::vec(proptest::collection::vec((0u32..200_000, 0u8..17), 0..400), 1..5),
            rounds in proptest::collection::vec(0u8..4, 1600),
            reversed in proptest::bool::ANY,
        ) {
            let lists: Vec<Vec<Entry>> = groups.iter().map(|g| seeded(g)).collect();
            let n = lists.len() as u32;
            let ranks: Vec<u32> = (0..n).map(|i| if reversed { n - 1 - i } else { i }).collect();
            // Entry j of group i leaves in round `round(i, j)` (0: stays).
            let mut flags = rounds.iter().cycle();
            let round: Vec<Vec<u8>> = lists.iter().map(|l| l.iter().map(|_| *flags.next().unwrap()).collect()).collect();
            let pick = |keep: &dyn Fn(u8) -> bool| -> Vec<(Entries, Vec<u32>)> {
                lists
                    .iter()
                    .zip(&round)
                    .map(|(l, r)| {
                        let chosen: Vec<(Entry, u32)> =
                            l.iter().zip(r).enumerate().filter(|(_, (_, r))| keep(**r)).map(|(i, (e, _))| (*e, i as u32)).collect();
                        (Entries::new(&chosen.iter().map(|c| c.0).collect::<Vec<_>>()), chosen.iter().map(|c| c.1).collect())
                    })
                    .collect()
            };
            let all = pick(&|_| true);
            fn members(g: &[(Entries, Vec<u32>)]) -> Vec<Members<'_>> {
                g.iter().enumerate().map(|(i, (e, at))| (i as u32, e, Indexes::Listed(at.as_slice()))).collect()
            }
            let mut own = Matcher::build(members(&all), &ranks);
            let mut shared = own.clone();
            let mut rebuilt = own.clone();
            for step in 1..4u8 {
                let gone = pick(&|r| r == step);
                let left = pick(&|r| r == 0 || r > step);
                rebuilt = rebuilt.rebuild(members(&gone), std::iter::empty(), &ranks);
                // A family another state holds is left as it is.
                let before = shared.clone();
                shared.remove(members(&gone), &ranks);
                proptest::prop_assert_eq!(&before.v4.slots, &own.v4.slots);
                own.remove(members(&gone), &ranks);
                drop(before);
                let fresh = Matcher::build(members(&left), &ranks);
                proptest::prop_assert_eq!(&own.v4.recs, &rebuilt.v4.recs);
                proptest::prop_assert_eq!(&own.v6.recs, &rebuilt.v6.recs);
                proptest::prop_assert!(own.v4.spare <= own.v4.starts.len() / 8);
                for l in &lists {
                    for e in l {
                        proptest::prop_assert_eq!(around(&own, e), around(&fresh, e), "{}", e);
                        proptest::prop_assert_eq!(around(&shared, e), around(&fresh, e), "{}", e);
                    }
                }
                for (at, _) in own.v4.starts.iter().zip(&own.v4.slots) {
                    proptest::prop_assert_eq!(own.v4.lookup(*at), fresh.v4.lookup(*at));
                }
            }
        }
    }

    #[test]
    fn a_removal_far_into_the_records_finds_the_blocks_open_there() {
        // Hosts under nested blocks that two groups share, so that each
        // removed entry is far (in records) from the one before.
        let blocks = ["10.0.0.0/8", "10.1.0.0/16", "10.1.0.0/20", "::/0", "2001:db8::/32", "2001:db8::/48"];
        let mut a: Vec<Entry> = blocks.iter().map(|b| parse_entry(b.as_bytes()).unwrap()).collect();
        let b = a.clone();
        a.extend((0..3000u32).map(|i| Entry::host(Addr::V4(0x0a01_0000 + i * 3))));
        a.extend((0..3000u128).map(|i| Entry::host(Addr::V6((0x2001_0db8u128 << 96) + i * 5))));
        let gone: Vec<(Entry, u32)> =
            a.iter().enumerate().filter(|(i, _)| i % 500 == 7).map(|(i, e)| (*e, i as u32)).collect();
        let left: Vec<(Entry, u32)> =
            a.iter().enumerate().filter(|(i, _)| i % 500 != 7).map(|(i, e)| (*e, i as u32)).collect();
        let pack = |l: &[(Entry, u32)]| {
            (Entries::new(&l.iter().map(|x| x.0).collect::<Vec<_>>()), l.iter().map(|x| x.1).collect::<Vec<u32>>())
        };
        let (a, b) = (Entries::new(&a), Entries::new(&b));
        let (gone, left) = (pack(&gone), pack(&left));
        for ranks in [[0, 1], [1, 0]] {
            let mut m = Matcher::build([(0, &a, Indexes::Skipping(&[])), (1, &b, Indexes::Skipping(&[]))], &ranks);
            m.remove([(0, &gone.0, Indexes::Listed(&gone.1))], &ranks);
            let fresh =
                Matcher::build([(0, &left.0, Indexes::Listed(&left.1)), (1, &b, Indexes::Skipping(&[]))], &ranks);
            // The same indexes given as the holes the gone entries left.
            let holes =
                Matcher::build([(0, &left.0, Indexes::Skipping(&gone.1)), (1, &b, Indexes::Skipping(&[]))], &ranks);
            for e in a.iter() {
                assert_eq!(around(&m, &e), around(&fresh, &e), "{e} {ranks:?}");
                assert_eq!(around(&holes, &e), around(&fresh, &e), "{e} {ranks:?}");
            }
            // The blocks both groups hold go to the group first by name.
            let winner = if ranks == [0, 1] { 0 } else { 1 };
            assert_eq!(m.lookup_hit(addr("10.1.0.22")).map(|h| (h.group, h.len)), Some((winner, 20)));
            assert_eq!(m.lookup_hit(addr("10.1.0.21")).map(|h| (h.group, h.len)), Some((0, 32)));
        }
    }
}

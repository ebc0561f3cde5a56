//! The comments and expiries of a group's entries, kept only for the entries
//! that have one: a group of 1,000 entries with ten comments holds ten
//! positions and the ten texts in one buffer, not 1,000 empty slots.
//!
//! An entry with a comment costs 8 bytes plus its text; one with an expiry
//! 12 bytes. The expiries sit in one array of their own, so the clock's
//! advance and the expiry sweep read only them, never the entries.

/// What an entry carries besides its address, as changes and documents give
/// it: a change when it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Why the entry is there (never empty: no comment is `None`).
    pub comment: Option<Box<str>>,
    /// The unix second from which it admits nobody.
    pub expires: Option<u64>,
}

impl Meta {
    /// Whether the entry admits nobody at unix second `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// The same, borrowed.
    pub fn view(&self) -> MetaRef<'_> {
        MetaRef { comment: self.comment.as_deref().filter(|c| !c.is_empty()), expires: self.expires }
    }
}

/// An entry's comment and expiry, borrowed from its group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaRef<'a> {
    /// Why the entry is there.
    pub comment: Option<&'a str>,
    /// The unix second from which it admits nobody.
    pub expires: Option<u64>,
}

impl MetaRef<'_> {
    /// Whether the entry admits nobody at unix second `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// Whether it has neither a comment nor an expiry.
    pub fn is_none(&self) -> bool {
        self.comment.is_none() && self.expires.is_none()
    }

    /// An owned copy.
    pub fn to_meta(&self) -> Meta {
        Meta { comment: self.comment.map(Box::from), expires: self.expires }
    }
}

/// The comments and expiries of one group's entries, by entry position.
///
/// The layout is canonical: two groups whose entries have the same comments
/// and expiries hold equal `Notes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// The position of each commented entry, ascending, with the end of its
    /// comment in `text` (each starts where the one before ends).
    comments: Box<[(u32, u32)]>,
    /// Every comment, one after the other.
    text: Box<str>,
    /// The position of each entry that has an expiry, ascending.
    expiring: Box<[u32]>,
    /// Their expiries, in the same order.
    expiries: Box<[u64]>,
}

impl Notes {
    /// The notes of entries that have `meta`, in entry order (entries past
    /// the end of `meta` have none). Comments stop being kept once their
    /// text would pass 4 GiB in one group, far beyond any group a server
    /// can hold (a million entries with 128-byte comments take 128 MB).
    pub fn new(meta: &[Meta]) -> Notes {
        Notes::collect(meta.iter().enumerate().map(|(i, m)| (i, m.view())))
    }

    /// The notes of `(position, meta)`, positions ascending.
    fn collect<'a>(noted: impl Iterator<Item = (usize, MetaRef<'a>)>) -> Notes {
        let (mut comments, mut text) = (Vec::new(), String::new());
        let (mut expiring, mut expiries) = (Vec::new(), Vec::new());
        for (i, m) in noted {
            let Ok(at) = u32::try_from(i) else { break };
            if let Some(c) = m.comment.filter(|c| !c.is_empty()) {
                if let Ok(end) = u32::try_from(text.len() + c.len()) {
                    text.push_str(c);
                    comments.push((at, end));
                }
            }
            if let Some(when) = m.expires {
                expiring.push(at);
                expiries.push(when);
            }
        }
        Notes { comments: comments.into(), text: text.into(), expiring: expiring.into(), expiries: expiries.into() }
    }

    /// Whether no entry has a comment or an expiry.
    pub fn is_empty(&self) -> bool {
        self.comments.is_empty() && self.expiring.is_empty()
    }

    /// The comment and expiry of the entry at position `i`.
    pub fn get(&self, i: usize) -> MetaRef<'_> {
        MetaRef { comment: self.comment(i), expires: self.expires(i) }
    }

    /// The comment of the entry at position `i`.
    pub fn comment(&self, i: usize) -> Option<&str> {
        let at = u32::try_from(i).ok()?;
        let k = self.comments.binary_search_by_key(&at, |&(p, _)| p).ok()?;
        let start = k.checked_sub(1).and_then(|j| self.comments.get(j)).map_or(0, |&(_, end)| end as usize);
        let end = self.comments.get(k)?.1 as usize;
        self.text.get(start..end)
    }

    /// The expiry of the entry at position `i`.
    pub fn expires(&self, i: usize) -> Option<u64> {
        let at = u32::try_from(i).ok()?;
        let k = self.expiring.binary_search(&at).ok()?;
        self.expiries.get(k).copied()
    }

    /// Every noted entry as `(position, meta)`, positions ascending.
    pub fn iter(&self) -> impl Iterator<Item = (usize, MetaRef<'_>)> + '_ {
        let mut comments = self.comments.iter().scan(0usize, |start, &(at, end)| {
            let text = self.text.get(*start..end as usize);
            *start = end as usize;
            Some((at, text))
        });
        let mut expiries = self.expiring.iter().copied().zip(self.expiries.iter().copied());
        let (mut c, mut x) = (comments.next(), expiries.next());
        std::iter::from_fn(move || {
            let at = match (c, x) {
                (None, None) => return None,
                (Some((a, _)), Some((b, _))) => a.min(b),
                (Some((a, _)), None) => a,
                (None, Some((b, _))) => b,
            };
            let mut m = MetaRef::default();
            if let Some((_, text)) = c.filter(|&(a, _)| a == at) {
                m.comment = text;
                c = comments.next();
            }
            if let Some((_, when)) = x.filter(|&(b, _)| b == at) {
                m.expires = Some(when);
                x = expiries.next();
            }
            Some((at as usize, m))
        })
    }

    /// Each of `len` entries' meta, in order; empty when none has any.
    pub fn to_meta(&self, len: usize) -> Vec<Meta> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut meta = vec![Meta::default(); len];
        for (i, m) in self.iter() {
            if let Some(slot) = meta.get_mut(i) {
                *slot = m.to_meta();
            }
        }
        meta
    }

    /// How many entries have an expiry.
    pub fn expiring(&self) -> usize {
        self.expiring.len()
    }

    /// Every expiry, in entry order.
    pub fn expiries(&self) -> &[u64] {
        &self.expiries
    }

    /// Whether an entry's expiry satisfies `f`.
    pub fn any_expiry(&self, f: impl Fn(u64) -> bool) -> bool {
        self.expiries.iter().any(|&at| f(at))
    }

    /// The positions, ascending, of the entries whose expiry satisfies `f`.
    pub fn expiring_where(&self, f: impl Fn(u64) -> bool) -> Vec<u32> {
        let mut found = Vec::with_capacity(self.expiring.len());
        for (&i, &at) in self.expiring.iter().zip(self.expiries.iter()) {
            if f(at) {
                found.push(i);
            }
        }
        found
    }

    /// The positions, ascending, of the entries expired by unix second
    /// `now`, with their expiries.
    pub fn expired_by(&self, now: u64) -> Vec<(u32, u64)> {
        let mut found = Vec::with_capacity(self.expiring.len());
        for (&i, &at) in self.expiring.iter().zip(self.expiries.iter()) {
            if at <= now {
                found.push((i, at));
            }
        }
        found
    }

    /// The notes once the entries at positions `gone` (ascending) are
    /// removed: theirs go, the others move down to their entries' new
    /// positions.
    pub fn without(&self, gone: &[u32]) -> Notes {
        // The new position of `at`, unless it is gone: each gone position
        // below it moves it one down. Positions come ascending, so one
        // cursor over `gone` serves a whole list.
        fn shifted(gone: &[u32], cursor: &mut usize, at: u32) -> Option<u32> {
            while gone.get(*cursor).is_some_and(|&g| g < at) {
                *cursor += 1;
            }
            (gone.get(*cursor) != Some(&at)).then(|| at - *cursor as u32)
        }
        let (mut comments, mut text) =
            (Vec::with_capacity(self.comments.len()), String::with_capacity(self.text.len()));
        let (mut cursor, mut start) = (0, 0usize);
        for &(at, end) in self.comments.iter() {
            let piece = self.text.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            if let Some(at) = shifted(gone, &mut cursor, at) {
                text.push_str(piece);
                comments.push((at, u32::try_from(text.len()).unwrap_or(u32::MAX)));
            }
        }
        let (mut expiring, mut expiries) =
            (Vec::with_capacity(self.expiring.len()), Vec::with_capacity(self.expiring.len()));
        cursor = 0;
        for (&at, &when) in self.expiring.iter().zip(self.expiries.iter()) {
            if let Some(at) = shifted(gone, &mut cursor, at) {
                expiring.push(at);
                expiries.push(when);
            }
        }
        Notes { comments: comments.into(), text: text.into(), expiring: expiring.into(), expiries: expiries.into() }
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.comments.len() * 8 + self.text.len() + self.expiring.len() * 4 + self.expiries.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(comment: Option<&str>, expires: Option<u64>) -> Meta {
        Meta { comment: comment.map(Box::from), expires }
    }

    #[test]
    fn keeps_only_what_entries_have() {
        let list = vec![
            Meta::default(),
            meta(Some("vpn"), None),
            meta(None, Some(9)),
            Meta::default(),
            meta(Some("office"), Some(12)),
        ];
        let n = Notes::new(&list);
        assert_eq!(n.get(0), MetaRef::default());
        assert_eq!(n.get(1), MetaRef { comment: Some("vpn"), expires: None });
        assert_eq!(n.get(2), MetaRef { comment: None, expires: Some(9) });
        assert_eq!(n.get(4), MetaRef { comment: Some("office"), expires: Some(12) });
        assert_eq!(n.get(5), MetaRef::default());
        assert_eq!(n.expiring(), 2);
        assert_eq!(n.heap_bytes(), 2 * 8 + 9 + 2 * 12);
        assert_eq!(n.to_meta(5), list);
        assert_eq!(n.iter().map(|(i, _)| i).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(n.expiring_where(|at| at <= 10), vec![2]);
    }

    #[test]
    fn nothing_noted_is_empty() {
        let n = Notes::new(&[Meta::default(), meta(Some(""), None)]);
        assert!(n.is_empty());
        assert_eq!(n, Notes::default());
        assert_eq!(n.to_meta(2), Vec::<Meta>::new());
    }

    #[test]
    fn without_moves_the_others_down() {
        let list = vec![meta(Some("a"), None), meta(None, Some(5)), meta(Some("c"), Some(6)), meta(Some("d"), None)];
        let n = Notes::new(&list).without(&[1, 2]);
        assert_eq!(n, Notes::new(&[meta(Some("a"), None), meta(Some("d"), None)]));
    }

    fn metas() -> impl Strategy<Value = Vec<Meta>> {
        let one = (proptest::option::of("[a-z ]{0,6}"), proptest::option::of(0u64..40))
            .prop_map(|(c, x)| Meta { comment: c.filter(|c| !c.is_empty()).map(String::into_boxed_str), expires: x });
        proptest::collection::vec(one, 0..40)
    }

    proptest! {
        /// Notes read back every entry's meta, whatever the mix.
        #[test]
        fn reads_back(list in metas()) {
            let n = Notes::new(&list);
            for (i, m) in list.iter().enumerate() {
                prop_assert_eq!(n.get(i), m.view());
            }
            prop_assert_eq!(n.is_empty(), list.iter().all(|m| *m == Meta::default()));
            let listed: Vec<(usize, Meta)> = n.iter().map(|(i, m)| (i, m.to_meta())).collect();
            let noted: Vec<(usize, Meta)> =
                list.iter().cloned().enumerate().filter(|(_, m)| *m != Meta::default()).collect();
            prop_assert_eq!(listed, noted);
        }

        /// Removing positions gives the notes of the list without them.
        #[test]
        fn without_is_removal(list in metas(), picks in proptest::collection::vec(any::<bool>(), 40)) {
            let gone: Vec<u32> = (0..list.len() as u32).filter(|&i| picks[i as usize]).collect();
            let kept: Vec<Meta> =
                list.iter().enumerate().filter(|(i, _)| !picks[*i]).map(|(_, m)| m.clone()).collect();
            prop_assert_eq!(Notes::new(&list).without(&gone), Notes::new(&kept));
        }
    }
}

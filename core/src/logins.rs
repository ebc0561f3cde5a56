//! Who may log in from where (§11), compiled: a bound user's login check is
//! one hash lookup and one matcher lookup, an unbound user's one hash lookup
//! that misses.
//!
//! Users bound to the same groups share one matcher of those groups' live
//! entries, so the index holds each distinct set of bound groups once. A
//! whitelist without bindings has an empty index and pays nothing for it.

use rustc_hash::FxHashMap as HashMap;

use crate::entry::Addr;
use crate::matcher::{Matcher, Members, Ranks};
use crate::store::{Peer, Policy};

/// The compiled login rule of every bound user.
#[derive(Clone, Debug, Default)]
pub struct Logins {
    /// The [`sign`] bits of every bound user: a name whose bit is clear is
    /// bound to nothing, found without hashing it (most AUTHs on a server
    /// with a few bound users).
    signs: u64,
    /// Each bound user's position in `sets`.
    users: HashMap<Box<str>, u32>,
    /// One matcher per distinct set of bound groups: the live entries of
    /// those groups.
    sets: Vec<Matcher>,
}

impl Logins {
    /// Compiles the bindings of `groups`: each group's bound users and what
    /// the main matcher holds of it (its live entries); `ranks` as for
    /// [`Matcher::build`]. Groups bound to nobody are not looked at further.
    pub fn build<'a, I>(groups: I, ranks: &Ranks) -> Logins
    where
        I: IntoIterator<Item = (&'a [String], Members<'a>)>,
    {
        // Each user's groups, in the order given (the same for every user,
        // so equal sets compare equal).
        let mut of_user: HashMap<&'a str, Vec<usize>> = HashMap::default();
        let mut bound: Vec<Members<'a>> = Vec::new();
        for (users, members) in groups {
            if users.is_empty() {
                continue;
            }
            for u in users {
                of_user.entry(u.as_str()).or_default().push(bound.len());
            }
            bound.push(members);
        }
        if of_user.is_empty() {
            return Logins::default();
        }
        let mut set_of: HashMap<Vec<usize>, u32> = HashMap::default();
        let mut sets = Vec::new();
        let mut users = HashMap::with_capacity_and_hasher(of_user.len(), Default::default());
        for (user, groups) in of_user {
            let next = u32::try_from(sets.len()).unwrap_or(u32::MAX);
            let set = *set_of.entry(groups).or_insert_with_key(|groups| {
                sets.push(Matcher::build(groups.iter().filter_map(|&i| bound.get(i).copied()), ranks));
                next
            });
            users.insert(Box::from(user), set);
        }
        let signs = users.keys().fold(0, |acc, u| acc | sign(u));
        Logins { signs, users, sets }
    }

    /// Whether `user` is bound to some group.
    pub fn is_bound(&self, user: &str) -> bool {
        self.may_be_bound(user) && self.users.contains_key(user)
    }

    /// `false` when `user` is surely bound to no group (its [`sign`] bit is
    /// clear); `true` when it may be.
    #[inline]
    pub fn may_be_bound(&self, user: &str) -> bool {
        self.signs & sign(user) != 0
    }

    /// Whether `user` may log in from `peer`: a user bound to no group may,
    /// and so may exempt clients; a bound user otherwise only from an
    /// address that a live entry of one of its groups holds.
    #[inline]
    pub fn may_login(&self, user: &str, peer: Peer, policy: Policy) -> bool {
        if !self.may_be_bound(user) {
            return true;
        }
        let Some(&set) = self.users.get(user) else {
            return true;
        };
        match peer {
            Peer::Unix => policy.allow_unixsocket,
            Peer::Ip(a) if policy.allow_loopback && a.is_loopback() => true,
            Peer::Ip(a) => self.sets.get(set as usize).is_some_and(|m| admits(m, a)),
            Peer::Unknown => false,
        }
    }

    /// Distinct sets of bound groups (one matcher each).
    pub fn sets(&self) -> usize {
        self.sets.len()
    }

    /// Bytes the index holds on the heap: the matchers and the user names
    /// (the hash table's own slots counted at their size).
    pub fn heap_bytes(&self) -> usize {
        let slots = self.users.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1);
        let names: usize = self.users.keys().map(|u| u.len()).sum();
        self.sets.iter().map(Matcher::heap_bytes).sum::<usize>()
            + self.sets.capacity() * std::mem::size_of::<Matcher>()
            + slots
            + names
    }
}

/// One of 64 bits for a user name, from its length and its first and last
/// bytes: a handful of instructions, where hashing the name costs tens.
#[inline]
fn sign(user: &str) -> u64 {
    let b = user.as_bytes();
    let first = u32::from(b.first().copied().unwrap_or(0));
    let last = u32::from(b.last().copied().unwrap_or(0));
    // Truncation is fine: only the low six bits are kept.
    let h = (b.len() as u32).wrapping_mul(31).wrapping_add(first).wrapping_mul(31).wrapping_add(last);
    1 << (h & 63)
}

/// The one matcher lookup of a bound user's login. Kept out of line so a
/// profile shows what it costs (the connection path inlines its own lookup).
#[inline(never)]
pub fn admits(matcher: &Matcher, addr: Addr) -> bool {
    matcher.lookup_group(addr).is_some()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use crate::entry::{Addr, Entry};
    use crate::name::{Attribute, GroupName};
    use crate::store::{Change, GroupSpec, Meta, Peer, Policy, Whitelist};

    /// The rule as §11 states it, walking every group: the oracle the
    /// compiled index must agree with.
    fn linear(w: &Whitelist, user: &str, peer: Peer, policy: Policy) -> bool {
        let mut bound = w.groups().iter().filter(|g| g.users().iter().any(|u| u == user));
        let exempt = match peer {
            Peer::Unix => policy.allow_unixsocket,
            Peer::Ip(a) => policy.allow_loopback && a.is_loopback(),
            Peer::Unknown => false,
        };
        let Some(first) = bound.next() else {
            return true;
        };
        if exempt {
            return true;
        }
        let Peer::Ip(addr) = peer else {
            return false;
        };
        let clock = w.clock();
        std::iter::once(first)
            .chain(bound)
            .any(|g| g.entries().iter().enumerate().any(|(i, e)| !g.meta(i).expired(clock) && e.contains(addr)))
    }

    fn entry(s: &str) -> Entry {
        crate::parse_entry(s.as_bytes()).expect("entry")
    }

    fn addr(s: &str) -> Addr {
        crate::parse_address(s.as_bytes()).expect("address")
    }

    fn policy(allow_loopback: bool, allow_unixsocket: bool) -> Policy {
        Policy { allow_loopback, allow_unixsocket, deny_when_empty: false }
    }

    fn group(name: &str, entries: &[(&str, Option<u64>)], users: &[&str]) -> GroupSpec {
        GroupSpec {
            name: GroupName::parse(name.as_bytes()).expect("name"),
            attribute: Attribute::default(),
            entries: entries.iter().map(|(e, _)| entry(e)).collect(),
            meta: entries.iter().map(|&(_, expires)| Meta { comment: None, expires }).collect(),
            usage: Vec::new(),
            users: users.iter().map(|u| u.to_string()).collect(),
        }
    }

    #[test]
    fn no_binding_means_an_empty_index() {
        let w = Whitelist::restore(vec![group("ga", &[("10.0.0.0/8", None)], &[])], 1);
        assert!(!w.is_bound("alice"));
        assert!(w.user_may_login("alice", Peer::Unknown, policy(false, false)));
        assert_eq!(w.logins_heap_bytes(), 0);
    }

    #[test]
    fn bound_users_log_in_only_from_their_groups() {
        let groups = vec![
            group("ga", &[("10.0.0.0/8", None), ("192.0.2.7", Some(50))], &["alice", "bob"]),
            group("gb", &[("2001:db8::/32", None)], &["bob", "default"]),
            group("gc", &[("203.0.113.0/24", None)], &[]),
        ];
        let w = Whitelist::restore_at(groups, 1, 10);
        let p = policy(true, true);
        assert!(w.is_bound("alice") && w.is_bound("bob") && w.is_bound("default"));
        assert!(!w.is_bound("carol"));
        assert!(w.user_may_login("alice", Peer::Ip(addr("10.1.2.3")), p));
        assert!(w.user_may_login("alice", Peer::Ip(addr("192.0.2.7")), p));
        assert!(!w.user_may_login("alice", Peer::Ip(addr("2001:db8::1")), p));
        assert!(w.user_may_login("bob", Peer::Ip(addr("2001:db8::1")), p));
        assert!(!w.user_may_login("default", Peer::Ip(addr("10.1.2.3")), p));
        assert!(!w.user_may_login("alice", Peer::Ip(addr("203.0.113.9")), p));
        assert!(w.user_may_login("carol", Peer::Ip(addr("203.0.113.9")), p));
        // Exempt clients, and what is exempt only while the policy says so.
        assert!(w.user_may_login("alice", Peer::Ip(addr("127.0.0.2")), p));
        assert!(!w.user_may_login("alice", Peer::Ip(addr("127.0.0.2")), policy(false, true)));
        assert!(w.user_may_login("alice", Peer::Unix, p));
        assert!(!w.user_may_login("alice", Peer::Unix, policy(true, false)));
        assert!(!w.user_may_login("alice", Peer::Unknown, p));
        assert!(w.user_may_login("carol", Peer::Unknown, p));
        // alice and bob have different sets; default and bob's differ too.
        assert_eq!(w.logins_sets(), 3);
    }

    #[test]
    fn an_expired_entry_admits_no_login_once_the_clock_passes_it() {
        let groups = vec![group("ga", &[("192.0.2.7", Some(50))], &["alice"])];
        let mut w = Whitelist::restore_at(groups, 1, 10);
        let p = policy(false, false);
        assert!(w.user_may_login("alice", Peer::Ip(addr("192.0.2.7")), p));
        assert!(w.advance(50));
        assert!(!w.user_may_login("alice", Peer::Ip(addr("192.0.2.7")), p));
        assert!(w.is_bound("alice"));
    }

    #[test]
    fn users_bound_to_the_same_groups_share_a_matcher() {
        let groups = vec![
            group("ga", &[("10.0.0.0/8", None)], &["u1", "u2", "u3"]),
            group("gb", &[("10.0.0.0/8", None)], &["u1", "u2"]),
        ];
        let w = Whitelist::restore(groups, 1);
        assert_eq!(w.logins_sets(), 2);
    }

    fn spec_strategy() -> impl Strategy<Value = (Vec<GroupSpec>, u64)> {
        const USERS: &[&str] = &["alice", "bob", "carol", "default", "dave"];
        let one_entry = (0u32..64, prop_oneof![Just(8u8), Just(16), Just(24), Just(30), Just(32)], 0u8..4).prop_map(
            |(hi, len, exp)| {
                let raw = Ipv4Addr::from(0x0a00_0000 | (hi << 20) | (hi << 4));
                let net = ipnet::Ipv4Net::new(raw, len).expect("prefix").trunc();
                // Some entries expire before the clock, some after, most never.
                let expires = match exp {
                    0 => Some(5),
                    1 => Some(500),
                    _ => None,
                };
                (Entry::from_canonical(ipnet::IpNet::V4(net)).expect("canonical"), expires)
            },
        );
        let one_group = (
            proptest::collection::vec(one_entry, 0..8),
            proptest::collection::vec(proptest::sample::select(USERS), 0..3),
        );
        (proptest::collection::vec(one_group, 0..6), prop_oneof![Just(0u64), Just(10), Just(600)]).prop_map(
            |(groups, clock)| {
                let specs = groups
                    .into_iter()
                    .enumerate()
                    .map(|(i, (entries, users))| {
                        let mut seen = std::collections::HashSet::new();
                        let entries: Vec<_> = entries.into_iter().filter(|(e, _)| seen.insert(*e)).collect();
                        GroupSpec {
                            name: GroupName::parse(format!("g{i}").as_bytes()).expect("name"),
                            attribute: Attribute::default(),
                            entries: entries.iter().map(|(e, _)| *e).collect(),
                            meta: entries.iter().map(|&(_, expires)| Meta { comment: None, expires }).collect(),
                            usage: Vec::new(),
                            users: users.into_iter().map(str::to_string).collect(),
                        }
                    })
                    .collect();
                (specs, clock)
            },
        )
    }

    fn peer_strategy() -> impl Strategy<Value = Peer> {
        prop_oneof![
            8 => (0u32..64, any::<u8>()).prop_map(|(hi, lo)| {
                Peer::Ip(Addr::V4(u32::from(Ipv4Addr::from(0x0a00_0000 | (hi << 20) | (hi << 4) | u32::from(lo)))))
            }),
            1 => Just(Peer::Ip(addr("127.0.0.1"))),
            1 => Just(Peer::Ip(addr("::1"))),
            1 => Just(Peer::Ip(addr("2001:db8::1"))),
            1 => Just(Peer::Unix),
            1 => Just(Peer::Unknown),
        ]
    }

    fn change_strategy() -> impl Strategy<Value = Change> {
        let g = (0usize..6).prop_map(|i| GroupName::parse(format!("g{i}").as_bytes()).expect("name"));
        let users = proptest::collection::vec(
            proptest::sample::select(&["alice", "bob", "default", "erin"][..]).prop_map(str::to_string),
            1..3,
        );
        let entries = proptest::collection::vec(
            (0u32..64).prop_map(|hi| {
                let net = ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | (hi << 20)), 12).expect("prefix");
                Entry::from_canonical(ipnet::IpNet::V4(net.trunc())).expect("canonical")
            }),
            1..3,
        );
        prop_oneof![
            (g.clone(), users.clone()).prop_map(|(group, users)| Change::Bind { group, users }),
            (g.clone(), users).prop_map(|(group, users)| Change::Unbind { group, users }),
            (g.clone(), entries.clone()).prop_map(|(group, entries)| Change::Set {
                group,
                entries,
                attribute: None,
                note: Default::default()
            }),
            (g.clone(), entries).prop_map(|(group, entries)| Change::Remove { group, entries }),
            g.prop_map(|group| Change::Delete { groups: vec![group] }),
        ]
    }

    proptest! {
        #[test]
        fn the_index_follows_changes(
            (specs, clock) in spec_strategy(),
            changes in proptest::collection::vec(change_strategy(), 1..8),
            peers in proptest::collection::vec(peer_strategy(), 1..8),
        ) {
            let mut w = Whitelist::restore_at(specs, 1, clock);
            let p = policy(false, true);
            for change in changes {
                if let Ok(plan) = w.plan_at(change, None, clock) {
                    if let Some(next) = plan.next {
                        w = next;
                    }
                }
                for user in ["alice", "bob", "default", "erin"] {
                    for &peer in &peers {
                        prop_assert_eq!(w.user_may_login(user, peer, p), linear(&w, user, peer, p));
                    }
                }
            }
        }

        #[test]
        fn the_index_answers_like_the_linear_rule(
            (specs, clock) in spec_strategy(),
            advance in prop_oneof![Just(None), Just(Some(5u64)), Just(Some(700u64))],
            peers in proptest::collection::vec(peer_strategy(), 1..16),
            users in proptest::collection::vec(
                proptest::sample::select(&["alice", "bob", "carol", "default", "dave", "erin"][..]), 1..6),
            loopback in any::<bool>(),
            unix in any::<bool>(),
        ) {
            let mut w = Whitelist::restore_at(specs, 1, clock);
            if let Some(now) = advance {
                w.advance(now);
            }
            let p = policy(loopback, unix);
            for user in &users {
                let bound = w.groups().iter().any(|g| g.users().iter().any(|u| u == user));
                prop_assert_eq!(w.is_bound(user), bound);
                for &peer in &peers {
                    prop_assert_eq!(w.user_may_login(user, peer, p), linear(&w, user, peer, p), "{} {:?}", user, peer);
                }
            }
        }
    }
}

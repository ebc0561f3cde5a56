//! Matcher benchmarks: lookup at 1, 1,000 and 100,000 entries, a full rebuild
//! at 100,000, a 1,000-entry SET into 100,000, the expiry sweep of 1,000 of
//! 100,000 entries and the matcher computed ahead of it, and the matcher's
//! memory per entry.
//!
//! Run with `make bench` (or `cargo bench -p redis-whitelist-core`).

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use whitelist_core::store::Meta;
use whitelist_core::{parse_entry, Addr, Change, Entry, GroupName, GroupSpec, Peer, Policy, Whitelist};

const POLICY: Policy = Policy { allow_loopback: false, allow_unixsocket: false, deny_when_empty: false };

/// xorshift64*: deterministic inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A realistic mix: four in five entries IPv4 (mostly hosts, some /16-/28
/// blocks), one in five IPv6 (hosts and /48-/64 blocks).
fn random_entry(rng: &mut Rng) -> Entry {
    let r = rng.next();
    let text = if r % 5 != 0 {
        let len = if r % 3 == 0 { 16 + (r >> 8) % 13 } else { 32 } as u32;
        let a = (rng.next() as u32) & u32::MAX.checked_shl(32 - len).unwrap_or(0);
        format!("{}/{}", Ipv4Addr::from(a), len)
    } else {
        let len = if r % 2 == 0 { 48 + (r >> 8) % 17 } else { 128 } as u32;
        let a = ((0x2001_0db8u128 << 96) | u128::from(rng.next()) << 32 | u128::from(rng.next() as u32))
            & u128::MAX.checked_shl(128 - len).unwrap_or(0);
        format!("{}/{}", Ipv6Addr::from(a), len)
    };
    parse_entry(text.as_bytes()).expect("generated entries are valid")
}

fn name(i: usize) -> GroupName {
    GroupName::parse(format!("group_{i:04}").as_bytes()).expect("valid name")
}

/// `groups` groups of `per_group` distinct random entries.
fn whitelist(groups: usize, per_group: usize, seed: u64) -> (Whitelist, Vec<Entry>) {
    let mut rng = Rng(seed);
    let mut all = Vec::new();
    let specs = (0..groups)
        .map(|g| {
            let mut entries: Vec<Entry> = Vec::with_capacity(per_group);
            let mut seen = std::collections::HashSet::new();
            while entries.len() < per_group {
                let e = random_entry(&mut rng);
                if seen.insert(e) {
                    entries.push(e);
                }
            }
            all.extend_from_slice(&entries);
            GroupSpec {
                name: name(g),
                attribute: Default::default(),
                entries,
                meta: Vec::new(),
                usage: Vec::new(),
                users: Vec::new(),
            }
        })
        .collect();
    (Whitelist::restore(specs, 1), all)
}

/// Probe addresses: half inside entries, half random.
fn probes(entries: &[Entry], rng: &mut Rng) -> Vec<Addr> {
    (0..4096)
        .map(|i| {
            if i % 2 == 0 && !entries.is_empty() {
                let e = entries[(rng.next() as usize) % entries.len()];
                match e.net() {
                    ipnet::IpNet::V4(n) => {
                        Addr::V4(u32::from(n.network()) | (rng.next() as u32 & !u32::from(n.netmask())))
                    }
                    ipnet::IpNet::V6(n) => {
                        Addr::V6(u128::from(n.network()) | (u128::from(rng.next()) & !u128::from(n.netmask())))
                    }
                }
            } else if i % 5 == 0 {
                Addr::V6((0x2001_0db8u128 << 96) | u128::from(rng.next()))
            } else {
                Addr::V4(rng.next() as u32)
            }
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for n in [1usize, 1_000, 100_000] {
        let groups = (n / 1_000).clamp(1, 100);
        let per = n / groups;
        let (w, entries) = whitelist(groups, per, 42 + n as u64);
        let addrs = probes(&entries, &mut Rng(7));
        let mut i = 0;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(w.verdict(Peer::Ip(black_box(addrs[i])), POLICY))
            })
        });
    }
    group.finish();
}

fn rebuild(c: &mut Criterion) {
    let (w, _) = whitelist(100, 1_000, 1);
    let specs: Vec<GroupSpec> = w
        .groups()
        .iter()
        .map(|g| GroupSpec {
            name: g.name().clone(),
            attribute: g.attribute(),
            entries: g.entries().to_vec(),
            meta: Vec::new(),
            usage: Vec::new(),
            users: g.users().to_vec(),
        })
        .collect();
    c.bench_function("rebuild/100000", |b| b.iter(|| black_box(Whitelist::restore(black_box(specs.clone()), 1))));

    let mut rng = Rng(99);
    let fresh: Vec<Entry> = (0..1_000).map(|_| random_entry(&mut rng)).collect();
    c.bench_function("set_1000_into_100000", |b| {
        b.iter(|| {
            let change =
                Change::Set { group: name(50), entries: fresh.clone(), attribute: None, note: Default::default() };
            black_box(w.plan(change, None).expect("no limits"))
        })
    });
}

/// The core of an expiry sweep that removes 1,000 of 100,000 entries, as
/// the primary's timer runs it: the clock moves past the expiry (the
/// matcher drops the expired entries), then the sweep removes them from
/// every group, in the whitelist itself.
/// The expired entries are all of one group, or ten of each group's.
fn sweep(c: &mut Criterion) {
    const AT: u64 = 1_000;
    for (label, spread) in [("one_group", false), ("ten_per_group", true)] {
        let (w, _) = whitelist(100, 1_000, 3);
        let specs: Vec<GroupSpec> = w
            .specs()
            .into_iter()
            .enumerate()
            .map(|(i, mut g)| {
                let expiring = |j: usize| if spread { j % 100 == 0 } else { i == 0 };
                g.meta =
                    (0..g.entries.len()).map(|j| Meta { comment: None, expires: expiring(j).then_some(AT) }).collect();
                g
            })
            .collect();
        assert_eq!(Whitelist::restore_at(specs.clone(), 1, AT - 1).expiring(), 1_000);
        // Each run on a whitelist of its own, as the server's is: nothing
        // else holds its matcher, which the clock's advance then changes in
        // place, and the sweep changes the whitelist itself.
        c.bench_function(&format!("sweep_1000_of_100000/{label}"), |b| {
            b.iter_batched(
                || Whitelist::restore_at(specs.clone(), 1, AT - 1),
                |mut w| {
                    w.advance(AT);
                    let swept = w.sweep_in_place(AT, true).expect("entries expired");
                    assert_eq!((w.entry_count(), swept.swept.len()), (99_000, if spread { 100 } else { 1 }));
                    (w, swept)
                },
                BatchSize::LargeInput,
            )
        });
    }
}

/// The work an expiry's matcher takes on the module's own thread, ahead of
/// the expiry second (`Prepared::compute`): the matcher without the 1,000
/// records that leave it, made as a copy, as the whitelist in force still
/// holds the matcher it starts from.
fn prepare(c: &mut Criterion) {
    const AT: u64 = 1_000;
    for (label, spread) in [("one_group", false), ("ten_per_group", true)] {
        let (w, _) = whitelist(100, 1_000, 3);
        let specs: Vec<GroupSpec> = w
            .specs()
            .into_iter()
            .enumerate()
            .map(|(i, mut g)| {
                let expiring = |j: usize| if spread { j % 100 == 0 } else { i == 0 };
                g.meta =
                    (0..g.entries.len()).map(|j| Meta { comment: None, expires: expiring(j).then_some(AT) }).collect();
                g
            })
            .collect();
        let w = Whitelist::restore_at(specs, 1, AT - 1);
        c.bench_function(&format!("prepare_1000_of_100000/{label}"), |b| {
            b.iter_batched(
                || w.prepare_advance(AT).expect("entries expire"),
                |mut p| {
                    p.compute();
                    p
                },
                BatchSize::LargeInput,
            )
        });
    }
}

fn memory_report() {
    for (label, groups, per) in [("mixed", 100, 1_000), ("ipv4 hosts", 1, 100_000)] {
        let (w, _) = if label == "mixed" {
            whitelist(groups, per, 5)
        } else {
            let entries: Vec<Entry> = (0..per as u32).map(|i| Entry::host(Addr::V4(0x0a00_0000 + i * 3))).collect();
            (
                Whitelist::restore(
                    vec![GroupSpec {
                        name: name(0),
                        attribute: Default::default(),
                        entries,
                        meta: Vec::new(),
                        usage: Vec::new(),
                        users: Vec::new(),
                    }],
                    1,
                ),
                vec![],
            )
        };
        let bytes = w.matcher_bytes();
        println!(
            "matcher memory ({label}, {} entries): {} bytes, {:.1} bytes per entry",
            w.entry_count(),
            bytes,
            bytes as f64 / w.entry_count() as f64
        );
    }
}

fn memory(_: &mut Criterion) {
    memory_report();
}

criterion_group!(benches, lookup, rebuild, sweep, prepare, memory);
criterion_main!(benches);

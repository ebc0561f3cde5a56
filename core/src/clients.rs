//! The connected clients: their addresses as the server reports them (the
//! client-change event's address field, `CLIENT LIST` output for the
//! connections that were open before the module could see them connect, and
//! the connected replicas), and the table of open connections by client id.

use std::fmt;

use crate::entry::{parse_peer, Addr};
use crate::store::Peer;

/// The peer named by the address field of the server's client info
/// (`NET_IP_STR_LEN` bytes, the text ending at its first NUL), read once per
/// connection: a dotted quad is read octet by octet from the first 16
/// bytes, anything else goes to [`parse_peer`]; what is not an address is
/// [`Peer::Unknown`].
#[inline(always)]
pub fn client_peer(field: &[u8]) -> Peer {
    match field.first_chunk::<16>().and_then(dotted_quad) {
        Some(v4) => Peer::Ip(Addr::V4(v4)),
        None => other_peer(field),
    }
}

/// IPv6 (and anything else) in the address field, out of line: the dotted
/// quad stays small enough to be read where it is needed.
#[inline(never)]
fn other_peer(field: &[u8]) -> Peer {
    parse_peer(field).map_or(Peer::Unknown, Peer::Ip)
}

/// A dotted quad ending in a NUL, within 16 bytes (15 characters and the
/// NUL at most): each octet starts at most four bytes after the one before,
/// so no index passes 15 and the masks never change one.
#[inline(always)]
fn dotted_quad(b: &[u8; 16]) -> Option<u32> {
    let (a, i) = octet(b, 0)?;
    if b[i & 15] != b'.' {
        return None;
    }
    let (c, i) = octet(b, i + 1)?;
    if b[i & 15] != b'.' {
        return None;
    }
    let (d, i) = octet(b, i + 1)?;
    if b[i & 15] != b'.' {
        return None;
    }
    let (e, i) = octet(b, i + 1)?;
    if b[i & 15] != 0 {
        return None;
    }
    Some(a << 24 | c << 16 | d << 8 | e)
}

/// One to three digits at `i` worth at most 255, and where they end.
#[inline(always)]
fn octet(b: &[u8; 16], i: usize) -> Option<(u32, usize)> {
    let d0 = u32::from(b[i & 15].wrapping_sub(b'0'));
    if d0 > 9 {
        return None;
    }
    let d1 = u32::from(b[(i + 1) & 15].wrapping_sub(b'0'));
    if d1 > 9 {
        return Some((d0, i + 1));
    }
    let d2 = u32::from(b[(i + 2) & 15].wrapping_sub(b'0'));
    if d2 > 9 {
        return Some((d0 * 10 + d1, i + 2));
    }
    let v = d0 * 100 + d1 * 10 + d2;
    (v <= 255).then_some((v, i + 3))
}

/// Values by client id, for the open connections: one insert at every
/// connect and one removal at every disconnect, so it is kept lean: open
/// addressing with linear probing in a power-of-two table at most 3/4 full,
/// the home slot from the multiplicative (Fibonacci) hash of the id, which
/// spreads the server's consecutive ids evenly, and removal by shifting the
/// entries after it back (no tombstones, so a lookup stops at the first
/// empty slot).
#[derive(Clone)]
pub struct IdMap<V> {
    slots: Vec<Option<(u64, V)>>,
    len: usize,
    /// `64 - log2(slots.len())`: the hash's top bits are the home slot.
    shift: u32,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap { slots: Vec::new(), len: 0, shift: 64 }
    }
}

/// The golden ratio as a 64-bit fraction.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

/// The smallest table allocated.
const MIN_SLOTS: usize = 16;

impl<V> IdMap<V> {
    /// An empty map (nothing allocated).
    pub fn new() -> IdMap<V> {
        IdMap::default()
    }

    /// How many ids it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Where `id` is probed for first; the table must not be empty.
    #[inline(always)]
    fn home(&self, id: u64) -> usize {
        // `shift` is below 64 once a table exists.
        (id.wrapping_mul(FIBONACCI) >> (self.shift & 63)) as usize
    }

    /// The slot holding `id`, if any.
    #[inline(always)]
    fn find(&self, id: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(id);
        loop {
            match self.slots.get(i)? {
                Some((k, _)) if *k == id => return Some(i),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// Adds `id` with `value`, or replaces its value.
    #[inline]
    pub fn insert(&mut self, id: u64, value: V) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(id);
        while let Some(slot) = self.slots.get_mut(i) {
            match slot {
                Some((k, v)) if *k == id => {
                    *v = value;
                    return;
                }
                Some(_) => i = (i + 1) & mask,
                None => {
                    *slot = Some((id, value));
                    self.len += 1;
                    return;
                }
            }
        }
    }

    /// Doubles the table (or allocates the first one) and places every
    /// entry again.
    #[cold]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let mut slots = Vec::with_capacity(size);
        slots.resize_with(size, || None);
        let old = std::mem::replace(&mut self.slots, slots);
        self.shift = 64 - size.trailing_zeros();
        self.len = 0;
        for (id, value) in old.into_iter().flatten() {
            self.insert(id, value);
        }
    }

    /// The value of `id`.
    #[inline]
    pub fn get(&self, id: u64) -> Option<&V> {
        let i = self.find(id)?;
        self.slots.get(i)?.as_ref().map(|(_, v)| v)
    }

    /// The value of `id`, to change.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        let i = self.find(id)?;
        self.slots.get_mut(i)?.as_mut().map(|(_, v)| v)
    }

    /// Takes `id` out, with its value.
    #[inline]
    pub fn remove(&mut self, id: u64) -> Option<V> {
        // An empty table has no slot at any index `home` gives.
        let mask = self.mask();
        let mut i = self.home(id);
        loop {
            let slot = self.slots.get_mut(i)?;
            match slot {
                Some((k, _)) if *k == id => {
                    let value = slot.take().map(|(_, v)| v);
                    self.len -= 1;
                    if matches!(self.slots.get((i + 1) & mask), Some(Some(_))) {
                        self.close_gap(i);
                    }
                    return value;
                }
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// Each entry after the emptied slot `hole`, up to the next empty slot,
    /// moves into the hole when the hole lies between the entry's home and
    /// its slot: every entry stays reachable from its home without an empty
    /// slot in between.
    #[inline(never)]
    fn close_gap(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = match self.slots.get(j) {
                Some(Some((k, _))) => *k,
                _ => return,
            };
            if j.wrapping_sub(self.home(k)) & mask >= j.wrapping_sub(hole) & mask {
                let moved = self.slots.get_mut(j).and_then(Option::take);
                if let Some(slot) = self.slots.get_mut(hole) {
                    *slot = moved;
                }
                hole = j;
            }
        }
    }

    /// Every id with its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.slots.iter().filter_map(|s| s.as_ref().map(|(k, v)| (*k, v)))
    }

    /// Every id with its value to change, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> + '_ {
        self.slots.iter_mut().filter_map(|s| s.as_mut().map(|(k, v)| (*k, v)))
    }
}

impl<V: fmt::Debug> fmt::Debug for IdMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// One line of `CLIENT LIST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedClient {
    /// The client id.
    pub id: u64,
    /// Its address.
    pub peer: Peer,
    /// Its port (0 for unix sockets).
    pub port: u16,
    /// The link to this server's primary (flag `M`): an internal client.
    pub is_primary_link: bool,
    /// A replica or monitor of this server (flag `S` or `O`).
    pub is_replica: bool,
    /// Already being closed (flag `A`).
    pub is_closing: bool,
}

/// Parses `CLIENT LIST` output; lines without an id or address are skipped.
pub fn parse_client_list(text: &[u8]) -> Vec<ListedClient> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<ListedClient> {
    let (mut id, mut addr, mut flags) = (None, None, None);
    for field in line.split(|&b| b == b' ') {
        if let Some(v) = field.strip_prefix(b"id=") {
            id = std::str::from_utf8(v).ok()?.parse::<u64>().ok();
        } else if let Some(v) = field.strip_prefix(b"addr=") {
            addr = Some(v);
        } else if let Some(v) = field.strip_prefix(b"flags=") {
            flags = Some(v);
        }
    }
    let (id, addr, flags) = (id?, addr?, flags.unwrap_or(b""));
    let colon = addr.iter().rposition(|&b| b == b':')?;
    let (host, port) = (&addr[..colon], &addr[colon + 1..]);
    let port = std::str::from_utf8(port).ok()?.parse::<u16>().ok()?;
    let host = host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]")).unwrap_or(host);
    let peer = if flags.contains(&b'U') { Peer::Unix } else { parse_peer(host).map_or(Peer::Unknown, Peer::Ip) };
    Some(ListedClient {
        id,
        peer,
        port,
        is_primary_link: flags.contains(&b'M'),
        is_replica: flags.contains(&b'S') || flags.contains(&b'O'),
        is_closing: flags.contains(&b'A'),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_redis_7_lines() {
        let text = b"id=3 addr=127.0.0.1:51424 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22426 events=r cmd=client|list user=default redir=-1 resp=2\n\
id=4 addr=/unixsocket:0 laddr=/tmp/r.sock:0 fd=9 name=admin age=1 idle=1 flags=U db=0 cmd=NULL user=default\n\
id=5 addr=[::1]:40000 laddr=[::1]:6379 fd=10 name= age=1 idle=1 flags=S db=0 cmd=replconf user=default\n\
id=6 addr=10.0.0.9:6379 laddr=10.0.0.2:5555 fd=11 name= age=1 idle=1 flags=M db=0 cmd=NULL user=default\n\
id=7 addr=[::ffff:10.1.1.1]:7 laddr=x fd=12 name= flags=A\n\
garbage line\n";
        let clients = parse_client_list(text);
        assert_eq!(clients.len(), 5);
        assert_eq!(
            clients[0],
            ListedClient {
                id: 3,
                peer: Peer::Ip(Addr::V4(0x7f00_0001)),
                port: 51424,
                is_primary_link: false,
                is_replica: false,
                is_closing: false,
            }
        );
        assert_eq!((clients[1].id, clients[1].peer, clients[1].port), (4, Peer::Unix, 0));
        assert_eq!((clients[2].peer, clients[2].is_replica), (Peer::Ip(Addr::V6(1)), true));
        assert!(clients[3].is_primary_link);
        assert_eq!((clients[4].peer, clients[4].is_closing), (Peer::Ip(Addr::V4(0x0a01_0101)), true));
    }

    #[test]
    fn odd_input_is_skipped() {
        assert!(parse_client_list(b"").is_empty());
        assert!(parse_client_list(b"id=x addr=1.2.3.4:5 flags=N").is_empty());
        assert!(parse_client_list(b"id=1 addr=1.2.3.4 flags=N").is_empty());
        assert_eq!(parse_client_list(b"id=1 addr=nohost:5 flags=N")[0].peer, Peer::Unknown);
    }

    /// The client info's address field: `text`, then NULs.
    fn field(text: &[u8]) -> [u8; 46] {
        let mut f = [0u8; 46];
        f[..text.len()].copy_from_slice(text);
        f
    }

    #[test]
    fn reads_the_address_field() {
        let v4 = |a: u32| Peer::Ip(Addr::V4(a));
        assert_eq!(client_peer(&field(b"127.0.0.1")), v4(0x7f00_0001));
        assert_eq!(client_peer(&field(b"0.0.0.0")), v4(0));
        assert_eq!(client_peer(&field(b"255.255.255.255")), v4(u32::MAX));
        assert_eq!(client_peer(&field(b"10.20.30.40")), v4(0x0a14_1e28));
        assert_eq!(client_peer(&field(b"1.22.133.4")), v4(0x0116_8504));
        assert_eq!(client_peer(&field(b"::1")), Peer::Ip(Addr::V6(1)));
        assert_eq!(client_peer(&field(b"2001:db8::7")), Peer::Ip(Addr::V6(0x2001_0db8 << 96 | 7)));
        assert_eq!(client_peer(&field(b"::ffff:10.1.1.1")), v4(0x0a01_0101));
        let long = b"2001:db8:aaaa:bbbb:cccc:dddd:255.255.255.255";
        assert_eq!(client_peer(&field(long)), parse_peer(long).map_or(Peer::Unknown, Peer::Ip));
        for bad in [
            &b""[..],
            b"256.1.1.1",
            b"1.2.3.256",
            b"1.2.3",
            b"1.2.3.4.5",
            b"1..2.3",
            b".1.2.3",
            b"1.2.3.",
            b"1234.1.1.1",
            b"1.2.3.4 ",
            b"1.2.3.4:5",
            b"-1.2.3.4",
            b"/unixsocket",
            b"?",
        ] {
            assert_eq!(client_peer(&field(bad)), Peer::Unknown, "{}", String::from_utf8_lossy(bad));
        }
        // Without a NUL in the first 16 bytes it is not read as a quad.
        let mut f = field(b"1.1.1.1");
        f[7..].fill(b'x');
        assert_eq!(client_peer(&f), Peer::Unknown);
        // A short field is never read past its end.
        assert_eq!(client_peer(b"1.2.3.4"), v4(0x0102_0304));
        assert_eq!(client_peer(b"1.2.3"), Peer::Unknown);
    }

    proptest! {
        #[test]
        fn every_address_reads_back(a in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 45)) {
            let text = std::net::Ipv4Addr::from(a).to_string();
            let mut f = field(text.as_bytes());
            // What follows the NUL is never read.
            f[text.len() + 1..].copy_from_slice(&tail[..45 - text.len()]);
            prop_assert_eq!(client_peer(&f), Peer::Ip(Addr::V4(a)));
        }

        #[test]
        fn agrees_with_the_general_parser(
            bytes in proptest::collection::vec(
                proptest::sample::select(&b"0123456789.:\0af /x"[..]), 46)
        ) {
            let f: [u8; 46] = bytes.try_into().unwrap();
            prop_assert_eq!(client_peer(&f), parse_peer(&f).map_or(Peer::Unknown, Peer::Ip));
        }

        #[test]
        fn quads_with_noise_agree_with_the_general_parser(
            octets in proptest::collection::vec(0u16..1100, 3..6),
            sep in proptest::sample::select(&b"..:x"[..]),
            end in proptest::sample::select(&b"\0\0.1x"[..]),
        ) {
            let mut text: Vec<u8> = octets.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(".").into_bytes();
            if let Some(p) = text.iter().position(|&b| b == b'.') {
                text[p] = sep;
            }
            text.push(end);
            text.truncate(46);
            let f = field(&text);
            prop_assert_eq!(client_peer(&f), parse_peer(&f).map_or(Peer::Unknown, Peer::Ip));
        }
    }

    /// Checks the map against a model: the same entries, the count, and
    /// every id reachable from its home slot without an empty slot between.
    fn same(map: &IdMap<u32>, model: &HashMap<u64, u32>) {
        assert_eq!(map.len(), model.len());
        assert_eq!(map.is_empty(), model.is_empty());
        let mut listed: Vec<(u64, u32)> = map.iter().map(|(k, v)| (k, *v)).collect();
        listed.sort_unstable();
        let mut expected: Vec<(u64, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        expected.sort_unstable();
        assert_eq!(listed, expected);
        for (k, v) in model {
            assert_eq!(map.get(*k), Some(v));
        }
        if !map.slots.is_empty() {
            assert!(map.len() * 4 <= map.slots.len() * 3);
        }
    }

    #[test]
    fn id_map_basics() {
        let mut m: IdMap<u32> = IdMap::new();
        assert_eq!(m.remove(7), None);
        assert_eq!((m.get(0), m.get(u64::MAX), m.len()), (None, None, 0));
        assert!(m.slots.is_empty(), "nothing is allocated until the first insert");
        m.insert(0, 10);
        m.insert(u64::MAX, 11);
        m.insert(5, 12);
        m.insert(5, 13);
        assert_eq!((m.get(0), m.get(u64::MAX), m.get(5), m.len()), (Some(&10), Some(&11), Some(&13), 3));
        if let Some(v) = m.get_mut(0) {
            *v = 20;
        }
        assert_eq!(m.remove(0), Some(20));
        assert_eq!(m.remove(0), None);
        assert_eq!((m.get(0), m.len()), (None, 2));
        for (_, v) in m.iter_mut() {
            *v += 1;
        }
        assert_eq!((m.get(u64::MAX), m.get(5)), (Some(&12), Some(&14)));
        assert_eq!(
            format!("{:?}", {
                let mut one = IdMap::new();
                one.insert(3, 4);
                one
            }),
            "{3: 4}"
        );
    }

    #[test]
    fn id_map_grows_and_keeps_consecutive_ids() {
        let mut m = IdMap::new();
        let mut model = HashMap::new();
        for id in 1..=10_000u64 {
            m.insert(id, id as u32);
            model.insert(id, id as u32);
        }
        same(&m, &model);
        // Close every other one, then the rest in reverse.
        for id in (1..=10_000u64).step_by(2) {
            assert_eq!(m.remove(id), model.remove(&id));
        }
        same(&m, &model);
        for id in (1..=10_000u64).rev() {
            assert_eq!(m.remove(id), model.remove(&id));
        }
        same(&m, &model);
    }

    proptest! {
        #[test]
        fn id_map_is_a_map(ops in proptest::collection::vec((0u8..4, 0u64..48, any::<u32>()), 0..400),
                           spread in any::<bool>()) {
            // Ids from a small range collide and wrap around the table's end;
            // spread ones are anywhere.
            let key = |k: u64| if spread { k.wrapping_mul(0x2545_f491_4f6c_dd1d) } else { k };
            let mut m = IdMap::new();
            let mut model = HashMap::new();
            for (op, k, v) in ops {
                let k = key(k);
                match op {
                    0 | 1 => {
                        m.insert(k, v);
                        model.insert(k, v);
                    }
                    2 => prop_assert_eq!(m.remove(k), model.remove(&k)),
                    _ => prop_assert_eq!(m.get(k), model.get(&k)),
                }
                same(&m, &model);
            }
        }
    }
}

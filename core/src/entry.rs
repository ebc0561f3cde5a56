//! Whitelist entries (addresses and CIDR blocks) and client addresses.
//!
//! An [`Entry`] is always canonical: host bits are zero, a `/32` IPv4 or `/128`
//! IPv6 block is the bare address, and an IPv4-mapped IPv6 block of prefix 96 or
//! more is the IPv4 block it maps. Parsing is strict: the console convention is
//! one exact spelling per address, so anything ambiguous is an error, not a guess.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::shown::Shown;

/// One whitelist entry: an IPv4 or IPv6 network in canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Entry(IpNet);

impl Entry {
    /// The entry for a canonical network; `None` when `net` has host bits set or
    /// is an IPv4-mapped IPv6 block that should have been stored as IPv4.
    pub fn from_canonical(net: IpNet) -> Option<Entry> {
        if net.trunc() != net {
            return None;
        }
        if let IpNet::V6(v6) = net {
            if v6.prefix_len() >= 96 && v6.network().to_ipv4_mapped().is_some() {
                return None;
            }
        }
        Some(Entry(net))
    }

    /// The network this entry admits.
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// The single address `addr` as an entry (`/32` or `/128`).
    pub fn host(addr: Addr) -> Entry {
        match addr {
            Addr::V4(a) => Entry(IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), 32))),
            Addr::V6(a) => Entry(IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(a), 128))),
        }
    }

    /// Whether `addr` falls inside this entry.
    pub fn contains(&self, addr: Addr) -> bool {
        match (self.0, addr) {
            (IpNet::V4(net), Addr::V4(a)) => net.contains(&Ipv4Addr::from(a)),
            (IpNet::V6(net), Addr::V6(a)) => net.contains(&Ipv6Addr::from(a)),
            _ => false,
        }
    }
}

impl Entry {
    /// Appends the entry's text to `out`, as [`fmt::Display`] shows it.
    pub fn push_to(&self, out: &mut String) {
        match self.text() {
            Some(text) => out.push_str(text.as_str()),
            None => {
                use fmt::Write as _;
                // Writing into a String cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    }

    /// The entry's text, written by hand: an expiry sweep or an export
    /// shows thousands of entries, and the formatting machinery would take
    /// longer than everything else done with them. `None` for an IPv6
    /// address that embeds an IPv4 one (which no canonical entry is: those
    /// are IPv4 entries), left to the standard library.
    fn text(&self) -> Option<Digits> {
        let mut text = Digits::default();
        match self.0 {
            IpNet::V4(n) => {
                for (i, octet) in n.addr().octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    text.decimal(octet);
                }
                if n.prefix_len() < 32 {
                    text.push(b'/');
                    text.decimal(n.prefix_len());
                }
            }
            IpNet::V6(n) if n.addr().to_ipv4_mapped().is_some() => return None,
            IpNet::V6(n) => {
                text.ipv6(n.addr().segments());
                if n.prefix_len() < 128 {
                    text.push(b'/');
                    text.decimal(n.prefix_len());
                }
            }
        }
        Some(text)
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.text(), self.0) {
            (Some(text), _) => f.write_str(text.as_str()),
            (None, IpNet::V6(n)) if n.prefix_len() < 128 => write!(f, "{}/{}", n.addr(), n.prefix_len()),
            (None, n) => write!(f, "{}", n.addr()),
        }
    }
}

/// The text of an entry, at most `255.255.255.255/32` or eight groups of
/// four hex digits and `/128`.
struct Digits {
    bytes: [u8; 43],
    len: usize,
}

impl Default for Digits {
    fn default() -> Digits {
        Digits { bytes: [0; 43], len: 0 }
    }
}

impl Digits {
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn decimal(&mut self, n: u8) {
        if n >= 100 {
            self.push(b'0' + n / 100);
        }
        if n >= 10 {
            self.push(b'0' + n / 10 % 10);
        }
        self.push(b'0' + n % 10);
    }

    fn hex(&mut self, n: u16) {
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let digit = ((n >> shift) & 0xf) as u8;
            if started || digit != 0 || shift == 0 {
                started = true;
                self.push(if digit < 10 { b'0' + digit } else { b'a' + digit - 10 });
            }
        }
    }

    /// An IPv6 address as RFC 5952 writes it: lowercase, no leading
    /// zeros, the first longest run of two or more zero groups as `::`.
    fn ipv6(&mut self, groups: [u16; 8]) {
        let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
        for (i, &g) in groups.iter().enumerate() {
            if g == 0 {
                if run_len == 0 {
                    run = i;
                }
                run_len += 1;
                if run_len > best_len {
                    (best, best_len) = (run, run_len);
                }
            } else {
                run_len = 0;
            }
        }
        let (head, tail) = if best_len >= 2 { (best, best + best_len) } else { (8, 8) };
        self.hex_groups(groups.get(..head).unwrap_or_default());
        if head < 8 {
            self.push(b':');
            self.push(b':');
        }
        self.hex_groups(groups.get(tail..).unwrap_or_default());
    }

    fn hex_groups(&mut self, groups: &[u16]) {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                self.push(b':');
            }
            self.hex(g);
        }
    }

    fn as_str(&self) -> &str {
        self.bytes.get(..self.len).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
    }
}

/// A group's entries in order, packed: 5 bytes per IPv4 entry, 21 per IPv6
/// one (17 and its position; a full [`Entry`] takes 18). A whitelist of
/// 100,000 entries keeps this list for order and listing; the matcher has
/// its own sorted copy.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Entries {
    bytes: Box<[u8]>,
    len: u32,
    /// The position of each IPv6 entry, ascending: where any entry starts
    /// is known without reading the ones before it.
    v6: Box<[u32]>,
}

/// The first byte of a packed entry: the prefix length for IPv4 (0..=32),
/// `V6_TAG` plus the prefix length for IPv6.
const V6_TAG: u8 = 64;

impl Entries {
    /// Packs `list` in order.
    pub fn new(list: &[Entry]) -> Entries {
        let v6_count = list.iter().filter(|e| matches!(e.0, IpNet::V6(_))).count();
        let mut bytes = Vec::with_capacity(list.len() * 5 + v6_count * 12);
        let mut v6 = Vec::with_capacity(v6_count);
        for (i, e) in list.iter().enumerate() {
            match e.0 {
                IpNet::V4(n) => {
                    bytes.push(n.prefix_len());
                    bytes.extend_from_slice(&n.addr().octets());
                }
                IpNet::V6(n) => {
                    v6.push(u32::try_from(i).unwrap_or(u32::MAX));
                    bytes.push(V6_TAG + n.prefix_len());
                    bytes.extend_from_slice(&n.addr().octets());
                }
            }
        }
        Entries {
            bytes: bytes.into_boxed_slice(),
            len: u32::try_from(list.len()).unwrap_or(u32::MAX),
            v6: v6.into_boxed_slice(),
        }
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in order.
    pub fn iter(&self) -> EntriesIter<'_> {
        EntriesIter { rest: &self.bytes, left: self.len() }
    }

    /// The entries as a vector.
    pub fn to_vec(&self) -> Vec<Entry> {
        self.iter().collect()
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len() + self.v6.len() * 4
    }

    /// The byte offset of each entry at `positions` (ascending; positions
    /// past the end are left out): 5 bytes for each entry before it, 12
    /// more for each IPv6 one. Nothing is read but the IPv6 positions.
    fn offsets(&self, positions: &[u32]) -> Vec<usize> {
        let mut found = Vec::with_capacity(positions.len());
        let mut v6_before = 0;
        for &p in positions.iter().take_while(|&&p| p < self.len) {
            v6_before += self.v6.get(v6_before..).map_or(0, |rest| rest.partition_point(|&x| x < p));
            found.push(p as usize * 5 + v6_before * 12);
        }
        found
    }

    /// The packed entry at byte `offset`.
    fn at_offset(&self, offset: usize) -> Option<Entry> {
        let tag = *self.bytes.get(offset)?;
        EntriesIter { rest: self.bytes.get(offset..offset + width(tag))?, left: 1 }.next()
    }

    /// The list without the entries at `positions` (ascending), copied as
    /// packed bytes, and those entries in order: one walk over the tags.
    pub fn split(&self, positions: &[u32]) -> (Entries, Vec<Entry>) {
        let gone = self.offsets(positions);
        let widths: Vec<usize> = gone.iter().map(|&o| self.bytes.get(o).map_or(0, |&tag| width(tag))).collect();
        let mut bytes = Vec::with_capacity(self.bytes.len().saturating_sub(widths.iter().sum()));
        let mut picked = Vec::with_capacity(gone.len());
        let mut from = 0;
        for (&offset, &width) in gone.iter().zip(&widths) {
            bytes.extend_from_slice(self.bytes.get(from..offset).unwrap_or_default());
            if let Some(e) = self.at_offset(offset) {
                picked.push(e);
            }
            from = offset + width;
        }
        bytes.extend_from_slice(self.bytes.get(from..).unwrap_or_default());
        // The IPv6 entries that stay, each moved down by the entries gone
        // before it.
        let positions = positions.get(..gone.len()).unwrap_or_default();
        let mut v6 = Vec::with_capacity(self.v6.len());
        let mut below = 0;
        for &x in self.v6.iter() {
            while positions.get(below).is_some_and(|&p| p < x) {
                below += 1;
            }
            if positions.get(below) != Some(&x) {
                v6.push(x - below as u32);
            }
        }
        let len = self.len.saturating_sub(gone.len() as u32);
        (Entries { bytes: bytes.into_boxed_slice(), len, v6: v6.into_boxed_slice() }, picked)
    }

    /// The list without the entries at `positions` (ascending).
    pub fn without(&self, positions: &[u32]) -> Entries {
        self.split(positions).0
    }

    /// The entries at `positions` (ascending), in order.
    pub fn pick(&self, positions: &[u32]) -> Vec<Entry> {
        self.offsets(positions).into_iter().filter_map(|offset| self.at_offset(offset)).collect()
    }
}

/// The bytes a packed entry takes, from its tag.
#[inline]
fn width(tag: u8) -> usize {
    5 + 12 * usize::from(tag >= V6_TAG)
}

impl<'a> IntoIterator for &'a Entries {
    type Item = Entry;
    type IntoIter = EntriesIter<'a>;
    fn into_iter(self) -> EntriesIter<'a> {
        self.iter()
    }
}

/// Iterates over [`Entries`].
#[derive(Clone, Debug)]
pub struct EntriesIter<'a> {
    rest: &'a [u8],
    left: usize,
}

impl Iterator for EntriesIter<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let (&tag, rest) = self.rest.split_first()?;
        let net = if tag < V6_TAG {
            let (addr, rest) = rest.split_first_chunk::<4>()?;
            self.rest = rest;
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(*addr), tag).ok()?)
        } else {
            let (addr, rest) = rest.split_first_chunk::<16>()?;
            self.rest = rest;
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(*addr), tag - V6_TAG).ok()?)
        };
        self.left = self.left.saturating_sub(1);
        Some(Entry(net))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for EntriesIter<'_> {}

/// A client address in the form the matcher compares: IPv4-mapped IPv6
/// addresses are IPv4.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Addr {
    /// An IPv4 address as a big-endian integer.
    V4(u32),
    /// An IPv6 address (never IPv4-mapped) as a big-endian integer.
    V6(u128),
}

impl Addr {
    /// Loopback: `127.0.0.0/8` or `::1`.
    pub fn is_loopback(self) -> bool {
        match self {
            Addr::V4(a) => a >> 24 == 127,
            Addr::V6(a) => a == 1,
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Addr::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Addr::V4(u32::from(v4)),
                None => Addr::V6(u128::from(v6)),
            },
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Addr::V4(a) => write!(f, "{}", Ipv4Addr::from(a)),
            Addr::V6(a) => write!(f, "{}", Ipv6Addr::from(a)),
        }
    }
}

/// Why an entry or address was refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Problem {
    /// An empty item, from `a,,b`, a leading or a trailing comma.
    Empty,
    /// Spaces (or any whitespace) inside the item.
    Whitespace,
    /// An IPv6 zone id such as `fe80::1%eth0`.
    ZoneId,
    /// `010.0.0.1` or `/08`: octal or decimal, nobody can tell.
    LeadingZero,
    /// A prefix length that is not a number in the family's range.
    BadPrefix {
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// An address with bits set beyond its prefix; holds the network meant.
    HostBits {
        /// The block with the host bits cleared, as the client wrote its family.
        suggestion: String,
    },
    /// Anything else that is not an address.
    NotAnAddress,
    /// A block where a single address was expected.
    NotSingleAddress,
}

/// A refused whitelist entry, naming the item and the reason.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EntryError {
    /// The item as the client gave it.
    pub item: Shown,
    /// What is wrong with it.
    pub problem: Problem,
}

/// A refused address (for `WHITELIST.CHECK`), naming the argument and the reason.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddressError(pub EntryError);

impl Problem {
    fn reason(&self, address_only: bool) -> String {
        match self {
            Problem::Empty => "empty item (check for doubled or trailing commas)".into(),
            Problem::Whitespace => "spaces are not allowed".into(),
            Problem::ZoneId => "zone ids are not allowed".into(),
            Problem::LeadingZero => "leading zeros are not allowed".into(),
            Problem::BadPrefix { max } => format!("prefix length must be a number from 0 to {max}"),
            Problem::HostBits { suggestion } => format!("host bits set, did you mean {suggestion}?"),
            Problem::NotAnAddress if address_only => "not an IP address".into(),
            Problem::NotAnAddress => "not an IP address or CIDR block".into(),
            Problem::NotSingleAddress => "not a single address (no /prefix here)".into(),
        }
    }
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid whitelist entry '{}': {}", self.item, self.problem.reason(false))
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid address '{}': {}", self.0.item, self.0.problem.reason(true))
    }
}

impl std::error::Error for EntryError {}
impl std::error::Error for AddressError {}

/// Parses one entry (`10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32` ...) into its
/// canonical form.
pub fn parse_entry(item: &[u8]) -> Result<Entry, EntryError> {
    if let Some(entry) = parse_plain_ipv4(item) {
        return Ok(entry);
    }
    parse_entry_inner(item).map_err(|problem| EntryError { item: Shown::new(item), problem })
}

/// One pass over the common case, a well-formed IPv4 address or block in
/// canonical spelling; `None` for anything else, which the full parser then
/// accepts or names the problem of.
#[inline]
fn parse_plain_ipv4(item: &[u8]) -> Option<Entry> {
    let mut addr: u32 = 0;
    let mut octet: u32 = 0;
    let mut digits = 0;
    let mut dots = 0;
    let mut bytes = item.iter();
    let mut prefix = None;
    for &b in bytes.by_ref() {
        match b {
            b'0'..=b'9' if !(digits == 1 && octet == 0) && digits < 3 => {
                octet = octet * 10 + u32::from(b - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && dots < 3 && octet <= 255 => {
                addr = (addr << 8) | octet;
                (octet, digits) = (0, 0);
                dots += 1;
            }
            b'/' => {
                prefix = Some(0u32);
                break;
            }
            _ => return None,
        }
    }
    if dots != 3 || digits == 0 || octet > 255 {
        return None;
    }
    addr = (addr << 8) | octet;
    let len = match prefix {
        None => 32,
        Some(_) => {
            let rest = bytes.as_slice();
            match rest {
                [d @ b'0'..=b'9'] => u32::from(d - b'0'),
                [a @ b'1'..=b'9', b @ b'0'..=b'9'] => u32::from(a - b'0') * 10 + u32::from(b - b'0'),
                _ => return None,
            }
        }
    };
    let net = Ipv4Net::new(Ipv4Addr::from(addr), u8::try_from(len).ok()?).ok()?;
    (net.network() == net.addr()).then_some(Entry(IpNet::V4(net)))
}

/// Parses entry arguments, each of which may hold several comma-separated
/// items, in order; duplicates are kept (the store treats them as no-ops).
/// Stops at the first bad item.
pub fn parse_entries<'a, I>(args: I) -> Result<Vec<Entry>, EntryError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut entries = Vec::new();
    for arg in args {
        for item in arg.split(|&b| b == b',') {
            entries.push(parse_entry(item)?);
        }
    }
    Ok(entries)
}

/// Parses a single client address for a dry run (`WHITELIST.CHECK`).
pub fn parse_address(arg: &[u8]) -> Result<Addr, AddressError> {
    let fail = |problem| AddressError(EntryError { item: Shown::new(arg), problem });
    if arg.contains(&b'/') {
        return Err(fail(Problem::NotSingleAddress));
    }
    lexical_checks(arg).map_err(fail)?;
    parse_ip(arg).map(Addr::from).map_err(fail)
}

/// Parses the peer address string that Redis formats for a connection
/// (`inet_ntop` output), which ends at the first NUL byte if there is one (the
/// fixed-size array of Redis's client info can be passed as it is). Lenient
/// where Redis's output is already canonical, but never panics on any input;
/// `None` when it is not an address.
#[inline]
pub fn parse_peer(s: &[u8]) -> Option<Addr> {
    if let Some(v4) = parse_ipv4_fast(s) {
        return Some(Addr::V4(v4));
    }
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    let text = std::str::from_utf8(s.get(..end)?).ok()?;
    text.parse::<Ipv6Addr>().ok().map(|v6| Addr::from(IpAddr::V6(v6)))
}

/// A dotted quad, octet by octet, up to the end of `s` or its first NUL.
#[inline]
fn parse_ipv4_fast(s: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    let mut i = 0;
    for part in 0..4 {
        let (mut octet, start) = (0u32, i);
        while let Some(d) = s.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            if i - start == 3 {
                return None;
            }
            octet = octet * 10 + u32::from(d);
            i += 1;
        }
        if i == start || octet > 255 {
            return None;
        }
        value = (value << 8) | octet;
        if part < 3 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    matches!(s.get(i), None | Some(0)).then_some(value)
}

fn lexical_checks(item: &[u8]) -> Result<(), Problem> {
    if item.is_empty() {
        return Err(Problem::Empty);
    }
    if item.iter().any(u8::is_ascii_whitespace) {
        return Err(Problem::Whitespace);
    }
    if item.contains(&b'%') {
        return Err(Problem::ZoneId);
    }
    Ok(())
}

fn parse_entry_inner(item: &[u8]) -> Result<Entry, Problem> {
    lexical_checks(item)?;
    let (addr_part, prefix_part) = match item.iter().position(|&b| b == b'/') {
        Some(slash) => (&item[..slash], Some(&item[slash + 1..])),
        None => (item, None),
    };
    match parse_ip(addr_part)? {
        IpAddr::V4(addr) => {
            let prefix = prefix_part.map_or(Ok(32), |p| parse_prefix(p, 32))?;
            let net = Ipv4Net::new(addr, prefix).map_err(|_| Problem::BadPrefix { max: 32 })?;
            if net.network() != addr {
                let suggestion = format!("{}/{}", net.network(), prefix);
                return Err(Problem::HostBits { suggestion });
            }
            Ok(Entry(IpNet::V4(net)))
        }
        IpAddr::V6(addr) => {
            let prefix = prefix_part.map_or(Ok(128), |p| parse_prefix(p, 128))?;
            let net = Ipv6Net::new(addr, prefix).map_err(|_| Problem::BadPrefix { max: 128 })?;
            if net.network() != addr {
                let suggestion = format!("{}/{}", net.network(), prefix);
                return Err(Problem::HostBits { suggestion });
            }
            match addr.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => {
                    let v4net = Ipv4Net::new(v4, prefix - 96).map_err(|_| Problem::BadPrefix { max: 128 })?;
                    Ok(Entry(IpNet::V4(v4net)))
                }
                _ => Ok(Entry(IpNet::V6(net))),
            }
        }
    }
}

fn parse_ip(part: &[u8]) -> Result<IpAddr, Problem> {
    if !part.is_ascii() || part.is_empty() {
        return Err(Problem::NotAnAddress);
    }
    if part.contains(&b':') {
        let text = std::str::from_utf8(part).map_err(|_| Problem::NotAnAddress)?;
        match text.parse::<Ipv6Addr>() {
            Ok(v6) => Ok(IpAddr::V6(v6)),
            Err(_) => {
                // Name the leading zero in an embedded dotted quad (`::ffff:010.0.0.1`).
                let tail = text.rsplit(':').next().unwrap_or("");
                if tail.contains('.') && parse_ipv4_strict(tail.as_bytes()) == Err(Problem::LeadingZero) {
                    Err(Problem::LeadingZero)
                } else {
                    Err(Problem::NotAnAddress)
                }
            }
        }
    } else {
        parse_ipv4_strict(part).map(IpAddr::V4)
    }
}

fn parse_ipv4_strict(part: &[u8]) -> Result<Ipv4Addr, Problem> {
    let mut octets = [0u8; 4];
    let mut count = 0;
    for piece in part.split(|&b| b == b'.') {
        if count == 4 || piece.is_empty() || piece.len() > 3 || !piece.iter().all(u8::is_ascii_digit) {
            return Err(Problem::NotAnAddress);
        }
        if piece.len() > 1 && piece[0] == b'0' {
            return Err(Problem::LeadingZero);
        }
        let value = piece.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        octets[count] = u8::try_from(value).map_err(|_| Problem::NotAnAddress)?;
        count += 1;
    }
    if count != 4 {
        return Err(Problem::NotAnAddress);
    }
    Ok(Ipv4Addr::from(octets))
}

fn parse_prefix(p: &[u8], max: u8) -> Result<u8, Problem> {
    let bad = Problem::BadPrefix { max };
    if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    if p.len() > 1 && p[0] == b'0' {
        return Err(Problem::LeadingZero);
    }
    let value = p.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    match u8::try_from(value) {
        Ok(v) if v <= max => Ok(v),
        _ => Err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        parse_entry(s.as_bytes()).unwrap().to_string()
    }

    fn err(s: &str) -> String {
        parse_entry(s.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canon("10.1.2.3"), "10.1.2.3");
        assert_eq!(canon("10.1.2.3/32"), "10.1.2.3");
        assert_eq!(canon("10.1.0.0/16"), "10.1.0.0/16");
        assert_eq!(canon("0.0.0.0/0"), "0.0.0.0/0");
        assert_eq!(canon("2001:DB8::0:1"), "2001:db8::1");
        assert_eq!(canon("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(canon("2001:db8::1/128"), "2001:db8::1");
        assert_eq!(canon("::/0"), "::/0");
        assert_eq!(canon("::1"), "::1");
        assert_eq!(canon("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(canon("::FFFF:10.0.0.1"), "10.0.0.1");
        assert_eq!(canon("::ffff:10.0.0.0/104"), "10.0.0.0/8");
        assert_eq!(canon("::ffff:0:0/96"), "0.0.0.0/0");
        assert_eq!(canon("::ffff:a00:1/128"), "10.0.0.1");
        assert_eq!(canon("::/80"), "::/80");
        assert_eq!(canon("255.255.255.255"), "255.255.255.255");
    }

    #[test]
    fn mapped_block_shorter_than_96_stays_ipv6() {
        // ::ffff:0:0 with a prefix below 96 has host bits set unless the prefix
        // stops before the ffff group; such a block stays IPv6.
        assert_eq!(canon("::/64"), "::/64");
        assert_eq!(
            err("::ffff:0:0/95"),
            "invalid whitelist entry '::ffff:0:0/95': host bits set, did you mean ::fffe:0:0/95?"
        );
    }

    #[test]
    fn error_texts() {
        assert_eq!(err("10.0.0.256"), "invalid whitelist entry '10.0.0.256': not an IP address or CIDR block");
        assert_eq!(err("10.1.2.3/8"), "invalid whitelist entry '10.1.2.3/8': host bits set, did you mean 10.0.0.0/8?");
        assert_eq!(err(""), "invalid whitelist entry '': empty item (check for doubled or trailing commas)");
        assert_eq!(err("10.0.0.1 "), "invalid whitelist entry '10.0.0.1 ': spaces are not allowed");
        assert_eq!(err(" 10.0.0.1"), "invalid whitelist entry ' 10.0.0.1': spaces are not allowed");
        assert_eq!(err("010.0.0.1"), "invalid whitelist entry '010.0.0.1': leading zeros are not allowed");
        assert_eq!(err("10.0.0.01"), "invalid whitelist entry '10.0.0.01': leading zeros are not allowed");
        assert_eq!(err("10.0.0.0/08"), "invalid whitelist entry '10.0.0.0/08': leading zeros are not allowed");
        assert_eq!(
            err("::ffff:010.0.0.1"),
            "invalid whitelist entry '::ffff:010.0.0.1': leading zeros are not allowed"
        );
        assert_eq!(err("fe80::1%eth0"), "invalid whitelist entry 'fe80::1%eth0': zone ids are not allowed");
        assert_eq!(
            err("10.0.0.0/33"),
            "invalid whitelist entry '10.0.0.0/33': prefix length must be a number from 0 to 32"
        );
        assert_eq!(
            err("10.0.0.0/"),
            "invalid whitelist entry '10.0.0.0/': prefix length must be a number from 0 to 32"
        );
        assert_eq!(
            err("10.0.0.0/-1"),
            "invalid whitelist entry '10.0.0.0/-1': prefix length must be a number from 0 to 32"
        );
        assert_eq!(
            err("10.0.0.0/+8"),
            "invalid whitelist entry '10.0.0.0/+8': prefix length must be a number from 0 to 32"
        );
        assert_eq!(
            err("10.0.0.0/8/8"),
            "invalid whitelist entry '10.0.0.0/8/8': prefix length must be a number from 0 to 32"
        );
        assert_eq!(err("::/129"), "invalid whitelist entry '::/129': prefix length must be a number from 0 to 128");
        assert_eq!(err("::/1000"), "invalid whitelist entry '::/1000': prefix length must be a number from 0 to 128");
        assert_eq!(
            err("2001:db8::1/32"),
            "invalid whitelist entry '2001:db8::1/32': host bits set, did you mean 2001:db8::/32?"
        );
        assert_eq!(
            err("::ffff:10.1.2.3/104"),
            "invalid whitelist entry '::ffff:10.1.2.3/104': host bits set, did you mean ::ffff:10.0.0.0/104?"
        );
        for bad in [
            "10.0.0",
            "10.0.0.1.2",
            "10..0.1",
            "a.b.c.d",
            "1.2.3.4a",
            "localhost",
            "::g",
            "1:2:3:4:5:6:7:8:9",
            "/8",
            "0x0a.0.0.1",
            "1e1.0.0.1",
            "10.0.0.1\u{e9}",
        ] {
            let text = err(bad);
            assert!(text.ends_with("not an IP address or CIDR block"), "{bad}: {text}");
        }
    }

    #[test]
    fn error_shows_raw_bytes_safely() {
        let e = parse_entry(b"10.0.0.\xff").unwrap_err();
        assert_eq!(e.to_string(), "invalid whitelist entry '10.0.0.\\xff': not an IP address or CIDR block");
        let e = parse_entry(b"10.0.0.1\0").unwrap_err();
        assert_eq!(e.to_string(), "invalid whitelist entry '10.0.0.1\\x00': not an IP address or CIDR block");
    }

    #[test]
    fn comma_lists() {
        let list = parse_entries([b"10.0.0.1,10.0.0.0/24".as_slice(), b"::1"]).unwrap();
        let shown: Vec<String> = list.iter().map(Entry::to_string).collect();
        assert_eq!(shown, ["10.0.0.1", "10.0.0.0/24", "::1"]);
        assert_eq!(
            parse_entries([b"10.0.0.1,,10.0.0.2".as_slice()]).unwrap_err().to_string(),
            "invalid whitelist entry '': empty item (check for doubled or trailing commas)"
        );
        assert!(parse_entries([b"10.0.0.1,".as_slice()]).is_err());
        assert!(parse_entries([b",10.0.0.1".as_slice()]).is_err());
        assert_eq!(
            parse_entries([b"10.0.0.1, 10.0.0.2".as_slice()]).unwrap_err().to_string(),
            "invalid whitelist entry ' 10.0.0.2': spaces are not allowed"
        );
        // The first bad item is named.
        assert_eq!(
            parse_entries([b"10.0.0.1".as_slice(), b"x,y"]).unwrap_err().to_string(),
            "invalid whitelist entry 'x': not an IP address or CIDR block"
        );
    }

    #[test]
    fn addresses_for_check() {
        assert_eq!(parse_address(b"10.0.0.1").unwrap(), Addr::V4(0x0a00_0001));
        assert_eq!(parse_address(b"::ffff:10.0.0.1").unwrap(), Addr::V4(0x0a00_0001));
        assert_eq!(parse_address(b"::1").unwrap(), Addr::V6(1));
        assert_eq!(
            parse_address(b"10.0.0.0/8").unwrap_err().to_string(),
            "invalid address '10.0.0.0/8': not a single address (no /prefix here)"
        );
        assert_eq!(parse_address(b"nope").unwrap_err().to_string(), "invalid address 'nope': not an IP address");
        assert_eq!(
            parse_address(b"01.0.0.1").unwrap_err().to_string(),
            "invalid address '01.0.0.1': leading zeros are not allowed"
        );
    }

    #[test]
    fn peer_strings_from_redis() {
        assert_eq!(parse_peer(b"127.0.0.1"), Some(Addr::V4(0x7f00_0001)));
        assert_eq!(parse_peer(b"255.255.255.255"), Some(Addr::V4(u32::MAX)));
        assert_eq!(parse_peer(b"0.0.0.0"), Some(Addr::V4(0)));
        assert_eq!(parse_peer(b"::1"), Some(Addr::V6(1)));
        assert_eq!(parse_peer(b"::ffff:192.0.2.7"), Some(Addr::V4(0xc000_0207)));
        assert_eq!(parse_peer(b"2001:db8::5"), Some(Addr::V6(0x2001_0db8_0000_0000_0000_0000_0000_0005)));
        // As Redis hands it over: a NUL-terminated fixed-size array.
        let mut raw = [0u8; 46];
        raw[..9].copy_from_slice(b"127.0.0.2");
        assert_eq!(parse_peer(&raw), Some(Addr::V4(0x7f00_0002)));
        raw[..3].copy_from_slice(b"::1");
        raw[3] = 0;
        assert_eq!(parse_peer(&raw), Some(Addr::V6(1)));
        assert_eq!(parse_peer(&[0u8; 46]), None);
        assert_eq!(parse_peer(b"10.0.0.1\0garbage"), Some(Addr::V4(0x0a00_0001)));
        for bad in [
            &b""[..],
            b"/unixsocket",
            b"1.2.3",
            b"1.2.3.4.5",
            b"256.0.0.1",
            b"1..2.3",
            b"1.2.3.",
            b"1234.1.1.1",
            b"\xff",
        ] {
            assert_eq!(parse_peer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn loopback() {
        assert!(Addr::V4(0x7f00_0001).is_loopback());
        assert!(Addr::V4(0x7fff_ffff).is_loopback());
        assert!(!Addr::V4(0x8000_0000).is_loopback());
        assert!(Addr::V6(1).is_loopback());
        assert!(!Addr::V6(2).is_loopback());
    }

    #[test]
    fn from_canonical_refuses_non_canonical() {
        assert!(Entry::from_canonical("10.0.0.0/8".parse().unwrap()).is_some());
        assert!(Entry::from_canonical("10.0.0.1/8".parse().unwrap()).is_none());
        assert!(Entry::from_canonical("::ffff:10.0.0.0/104".parse().unwrap()).is_none());
        assert!(Entry::from_canonical("::/0".parse().unwrap()).is_some());
    }

    #[test]
    fn the_ipv4_fast_path_agrees_with_the_full_parser() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "10.1.2.3/32",
            "192.168.1.0/24",
            "010.0.0.1",
            "10.0.0.01",
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "10.1.2.3/8",
            "10.0.0.0/33",
            "10.0.0.0/08",
            "10.0.0.0/",
            "10.0.0.0/123",
            "1.2.3.4/x",
            " 1.2.3.4",
            "1.2.3.4 ",
            "1.2.3.0/24/1",
            "1.2.3.4%",
        ] {
            let fast = parse_plain_ipv4(text.as_bytes());
            let full = parse_entry_inner(text.as_bytes()).ok();
            if let Some(f) = fast {
                assert_eq!(Some(f), full, "{text}");
            }
            // Whatever the fast path turns down, the full parser decides.
            assert_eq!(parse_entry(text.as_bytes()).ok(), full, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_ipv4_fast_path_never_disagrees(text in "[0-9./]{1,20}") {
            if let Some(fast) = parse_plain_ipv4(text.as_bytes()) {
                proptest::prop_assert_eq!(Some(fast), parse_entry_inner(text.as_bytes()).ok());
            }
        }
    }

    proptest::proptest! {
        /// IPv6 entries are shown as the standard library shows them,
        /// however their zero groups fall.
        #[test]
        fn ipv6_text_is_the_standard_text(groups in proptest::array::uniform8(proptest::prop_oneof![proptest::strategy::Just(0u16), proptest::num::u16::ANY]), len in 0u8..=128) {
            let net = Ipv6Net::new(Ipv6Addr::from(groups), len).unwrap().trunc();
            if let Some(e) = Entry::from_canonical(IpNet::V6(net)) {
                let standard = if len == 128 { net.addr().to_string() } else { format!("{}/{}", net.addr(), len) };
                let mut pushed = String::from("x");
                e.push_to(&mut pushed);
                proptest::prop_assert_eq!(pushed, format!("x{standard}"));
                let mut pushed = String::from("x");
            e.push_to(&mut pushed);
            proptest::prop_assert_eq!(pushed, format!("x{standard}"));
            proptest::prop_assert_eq!(e.to_string(), standard);
            }
        }

        /// IPv4 entries are shown as the standard library shows them.
        #[test]
        fn ipv4_text_is_the_standard_text(a in proptest::num::u32::ANY, len in 0u8..=32) {
            let net = Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc();
            let e = Entry::from_canonical(IpNet::V4(net)).unwrap();
            let standard = if len == 32 { net.addr().to_string() } else { format!("{}/{}", net.addr(), len) };
            let mut pushed = String::from("x");
            e.push_to(&mut pushed);
            proptest::prop_assert_eq!(pushed, format!("x{standard}"));
            proptest::prop_assert_eq!(e.to_string(), standard);
        }
    }

    #[test]
    fn ipv6_zero_runs_are_shown_as_rfc_5952_says() {
        for text in ["::/0", "::1", "1::", "0:0:1::/48", "2001:db8::1:0:0:1", "1:0:0:2::3", "2001:db8:0:1:1:1:1:1"] {
            assert_eq!(canon(text), text);
        }
    }

    #[test]
    fn packed_entries_keep_order_and_values() {
        let list = parse_entries([b"10.0.0.1,::1,0.0.0.0/0,2001:db8::/32,::/0,255.255.255.255".as_slice()]).unwrap();
        let packed = Entries::new(&list);
        assert_eq!(packed.len(), 6);
        assert_eq!(packed.to_vec(), list);
        assert_eq!(packed.heap_bytes(), 3 * 5 + 3 * 21);
        assert_eq!(packed.iter().len(), 6);
        assert!(Entries::new(&[]).is_empty());
    }

    /// Filtering packed lists by position agrees with filtering the
    /// decoded list, for lists of one family (no walk) and mixed ones.
    fn filters_agree(list: &[Entry], picks: &[bool]) {
        let at: Vec<u32> = (0..list.len() as u32).filter(|&i| picks[i as usize]).collect();
        let packed = Entries::new(list);
        let kept: Vec<Entry> = list.iter().zip(picks).filter(|(_, &p)| !p).map(|(e, _)| *e).collect();
        let picked: Vec<Entry> = list.iter().zip(picks).filter(|(_, &p)| p).map(|(e, _)| *e).collect();
        assert_eq!(packed.without(&at), Entries::new(&kept));
        assert_eq!(packed.pick(&at), picked);
        assert_eq!(packed.split(&at), (Entries::new(&kept), picked));
    }

    #[test]
    fn packed_lists_filter_by_position() {
        let list = parse_entries([b"10.0.0.1,::1,0.0.0.0/0,2001:db8::/32,::/0,255.255.255.255".as_slice()]).unwrap();
        filters_agree(&list, &[true, false, false, true, true, false]);
        filters_agree(&list, &[false; 6]);
        filters_agree(&list, &[true; 6]);
        let v4 = parse_entries([b"10.0.0.1,10.0.0.2,10.0.0.3".as_slice()]).unwrap();
        filters_agree(&v4, &[false, true, false]);
        let v6 = parse_entries([b"::1,::2,::3".as_slice()]).unwrap();
        filters_agree(&v6, &[true, false, true]);
        // Positions past the end are left out.
        assert_eq!(Entries::new(&v4).without(&[1, 7]), Entries::new(&[v4[0], v4[2]]));
        assert_eq!(Entries::new(&v4).pick(&[2, 9]), vec![v4[2]]);
    }

    proptest::proptest! {
        #[test]
        fn packed_filters_are_list_filters(
            hosts in proptest::collection::vec((proptest::bool::ANY, proptest::num::u32::ANY, proptest::bool::ANY), 0..30)
        ) {
            let mut seen = std::collections::HashSet::new();
            let (list, picks): (Vec<Entry>, Vec<bool>) = hosts
                .iter()
                .map(|&(v6, a, p)| (Entry::host(if v6 { Addr::V6(u128::from(a) << 8) } else { Addr::V4(a) }), p))
                .filter(|(e, _)| seen.insert(*e))
                .unzip();
            filters_agree(&list, &picks);
        }
    }

    #[test]
    fn contains_respects_family() {
        let all_v6 = parse_entry(b"::/0").unwrap();
        assert!(all_v6.contains(Addr::V6(5)));
        assert!(!all_v6.contains(Addr::V4(5)));
        let all_v4 = parse_entry(b"0.0.0.0/0").unwrap();
        assert!(all_v4.contains(Addr::V4(5)));
        assert!(!all_v4.contains(Addr::V6(5)));
    }
}

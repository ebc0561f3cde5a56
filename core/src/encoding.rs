//! The persisted form of the whole whitelist (RDB aux data).
//!
//! Layout of encoding version 2, integers little-endian:
//!
//! ```text
//! "WLST"  u8 encoding version (2)
//! sections, each:  u8 kind  u8 flags (bit 0: must understand)  u64 length  payload
//! u32 CRC-32 of everything before it
//! ```
//!
//! A reader skips a section of a kind it does not know unless the section is
//! flagged must-understand, and then refuses the whole payload: later modules
//! add what they carry (comments and expiries, statistics, user bindings,
//! cluster revisions) as new sections without a new encoding version, and a
//! module that could not enforce what it would drop never loads it.
//!
//! Section kind 1, the whitelist (must understand), exactly once:
//!
//! ```text
//! u64 whitelist version  u32 group count
//! per group:  u8 name length, name  u8 flags (bit 0: hidden)  u32 entry count
//!   per entry:  u8 kind (4: IPv4, 6: IPv6)  u8 prefix length  4 or 16 address bytes
//! ```
//!
//! Section kind 2, comments and expiries (must understand: a module that
//! dropped an expiry would make a temporary entry permanent), at most once,
//! after the whitelist section, written only when some entry has either:
//!
//! ```text
//! per group, per entry, in the whitelist section's order:
//!   u8 flags (bit 0: comment, bit 1: expiry)  [u8 length, comment]  [u64 expiry]
//! ```
//!
//! Section kind 3, usage statistics (optional: figures, not rules), at most
//! once, after the whitelist section:
//!
//! ```text
//! per group, per entry:  u64 added  u64 hits  u64 last hit (0: never)
//! ```
//!
//! Section kind 4, the user bindings (must understand), at most once, only
//! when some user is bound; every group it names is in the whitelist section:
//!
//! ```text
//! u32 bound group count
//! per group (name order):  u8 name length, name  u32 user count
//!   per user (sorted):  u32 length, name bytes (UTF-8)
//! ```
//!
//! Section kind 5, the cluster ledger (must understand: a module that
//! dropped the revisions and tombstones would let stale nodes overwrite or
//! resurrect groups), at most once, only when its clock is above 0; every
//! record names a group of the whitelist section, every tombstone one it
//! lacks:
//!
//! ```text
//! u64 clock
//! u32 record count    per record (name order):     u8 name length, name  record
//! u32 tombstone count per tombstone (name order):  u8 name length, name  record
//! record:  stamp  u16 ancestor count, per ancestor (origin order): stamp
//! stamp:   u64 revision  40 bytes origin node id (40 zero bytes: none)
//! ```
//!
//! Encoding version 1 (written by the first module) is the same whitelist
//! payload right after the version byte, with no section header; it still
//! loads. Flag bits and kinds that a layout does not define are refused.
//! Decoding validates everything (names, order, canonical entries,
//! duplicates, checksum) and never panics; a payload is accepted whole or
//! refused.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::entry::Entry;
use crate::ledger::{Ledger, NodeId, Record, Stamp, State, NODE_ID_LEN};
use crate::name::{Attribute, GroupName};
use crate::store::{parse_comment, GroupSpec, Meta, Usage, Whitelist, MAX_VERSION};

/// The encoding version this build writes and the newest it reads.
pub const ENCODING_VERSION: u8 = 2;

const MAGIC: &[u8; 4] = b"WLST";
/// Magic and encoding version.
const PREAMBLE: usize = 4 + 1;
const CHECKSUM: usize = 4;
/// Section kind: the whitelist itself.
const SECTION_WHITELIST: u8 = 1;
/// Section kind: comments and expiries.
const SECTION_META: u8 = 2;
/// Section kind: usage statistics.
const SECTION_USAGE: u8 = 3;
const META_COMMENT: u8 = 1;
const META_EXPIRES: u8 = 2;
/// Section kind: the users bound to groups (§11), must understand: a module
/// that could not enforce them must not load the rules without them.
const SECTION_BINDINGS: u8 = 4;
/// Section kind: the cluster ledger (§12), must understand.
const SECTION_LEDGER: u8 = 5;
/// Section flag: a reader that does not know the section must refuse the data.
const MUST_UNDERSTAND: u8 = 1;
const FLAG_HIDDEN: u8 = 1;
const KIND_V4: u8 = 4;
const KIND_V6: u8 = 6;
/// The smallest encoded entry (an IPv4 one): bounds what a count may claim.
const MIN_ENTRY: usize = 1 + 1 + 4;
/// The smallest encoded group (empty, two-letter name).
const MIN_GROUP: usize = 1 + 2 + 1 + 4;

/// Why a payload was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload ends before the data it announces.
    Truncated {
        /// Where the missing data should start.
        offset: usize,
    },
    /// Not whitelist data at all.
    BadMagic,
    /// Written by a newer module.
    NewerVersion {
        /// The payload's encoding version.
        found: u8,
    },
    /// Encoding version 0 was never written.
    InvalidVersion,
    /// The checksum does not match: the data is corrupt.
    Checksum,
    /// A section this module does not know and must not ignore.
    UnknownSection {
        /// The section's kind.
        kind: u8,
    },
    /// Anything else wrong with the content.
    Invalid {
        /// Where it was found.
        offset: usize,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { offset } => write!(f, "truncated data: it ends at byte {offset}"),
            DecodeError::BadMagic => f.write_str("not whitelist data (bad magic)"),
            DecodeError::NewerVersion { found } => write!(
                f,
                "encoding version {found} is newer than this module reads ({ENCODING_VERSION}); upgrade the module"
            ),
            DecodeError::InvalidVersion => f.write_str("invalid encoding version 0"),
            DecodeError::Checksum => f.write_str("checksum mismatch: the data is corrupt"),
            DecodeError::UnknownSection { kind } => write!(
                f,
                "it carries rules this module does not know and cannot enforce (section kind {kind}); upgrade the module"
            ),
            DecodeError::Invalid { offset, what } => write!(f, "corrupt data at byte {offset}: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encodes the whole whitelist.
pub fn encode(w: &Whitelist) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREAMBLE + 10 + 12 + CHECKSUM + w.groups().len() * 40 + w.entry_count() * 18);
    out.extend_from_slice(MAGIC);
    out.push(ENCODING_VERSION);
    section(&mut out, SECTION_WHITELIST, MUST_UNDERSTAND, |out| encode_whitelist(w, out));
    let annotated = w.groups().iter().any(|g| !g.notes().is_empty());
    if annotated {
        section(&mut out, SECTION_META, MUST_UNDERSTAND, |out| encode_meta(w, out));
    }
    section(&mut out, SECTION_USAGE, 0, |out| encode_usage(w, out));
    // Only when some user is bound: data without bindings stays readable by
    // a module that knows no bindings.
    if w.has_bindings() {
        section(&mut out, SECTION_BINDINGS, MUST_UNDERSTAND, |out| encode_bindings(w, out));
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Appends one section: its header, then what `fill` writes.
fn section(out: &mut Vec<u8>, kind: u8, flags: u8, fill: impl FnOnce(&mut Vec<u8>)) {
    out.push(kind);
    out.push(flags);
    let at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    fill(out);
    let len = (out.len() - at - 8) as u64;
    if let Some(slot) = out.get_mut(at..at + 8) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
}

/// The whitelist payload: version, then every group with its entries.
fn encode_whitelist(w: &Whitelist, out: &mut Vec<u8>) {
    out.extend_from_slice(&w.version().to_le_bytes());
    out.extend_from_slice(&len_u32(w.groups().len()).to_le_bytes());
    for g in w.groups() {
        let name = g.name().as_str().as_bytes();
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name);
        out.push(if g.attribute() == Attribute::Hidden { FLAG_HIDDEN } else { 0 });
        out.extend_from_slice(&len_u32(g.entries().len()).to_le_bytes());
        for e in g.entries() {
            match e.net() {
                IpNet::V4(n) => {
                    out.push(KIND_V4);
                    out.push(n.prefix_len());
                    out.extend_from_slice(&n.network().octets());
                }
                IpNet::V6(n) => {
                    out.push(KIND_V6);
                    out.push(n.prefix_len());
                    out.extend_from_slice(&n.network().octets());
                }
            }
        }
    }
}

/// The bindings section: u32 count of bound groups; per group (in name
/// order): u8 name length, name, u32 user count, per user: u32 length, bytes.
fn encode_bindings(w: &Whitelist, out: &mut Vec<u8>) {
    let bound: Vec<_> = w.groups().iter().filter(|g| !g.users().is_empty()).collect();
    out.extend_from_slice(&len_u32(bound.len()).to_le_bytes());
    for g in bound {
        let name = g.name().as_str().as_bytes();
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name);
        out.extend_from_slice(&len_u32(g.users().len()).to_le_bytes());
        for u in g.users() {
            out.extend_from_slice(&len_u32(u.len()).to_le_bytes());
            out.extend_from_slice(u.as_bytes());
        }
    }
}

fn encode_meta(w: &Whitelist, out: &mut Vec<u8>) {
    for g in w.groups() {
        let mut noted = g.notes().iter().peekable();
        for i in 0..g.entries().len() {
            let m = noted.next_if(|&(at, _)| at == i).map(|(_, m)| m).unwrap_or_default();
            let flags =
                if m.comment.is_some() { META_COMMENT } else { 0 } | if m.expires.is_some() { META_EXPIRES } else { 0 };
            out.push(flags);
            if let Some(c) = m.comment {
                out.push(u8::try_from(c.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(c.as_bytes());
            }
            if let Some(at) = m.expires {
                out.extend_from_slice(&at.to_le_bytes());
            }
        }
    }
}

/// Reads the bindings section into `w`, whose groups it must name.
fn decode_bindings(r: &mut Reader<'_>, w: &mut Whitelist) -> Result<(), DecodeError> {
    let count = r.u32()? as usize;
    if count > r.remaining() / 6 {
        return Err(r.invalid(format!("{count} bound groups cannot fit in {} bytes", r.remaining())));
    }
    for _ in 0..count {
        let len = r.u8()? as usize;
        let raw = r.take(len)?;
        let name = GroupName::parse(raw).map_err(|e| r.invalid(e.to_string()))?;
        let n = r.u32()? as usize;
        if n == 0 || n > r.remaining() / 5 {
            return Err(r.invalid(format!("group '{name}' claims {n} bound users in {} bytes", r.remaining())));
        }
        let mut users = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u32()? as usize;
            let raw = r.take(len)?;
            let user = crate::command::parse_user(raw).map_err(|e| r.invalid(format!("group '{name}': {e}")))?;
            users.push(user);
        }
        if !w.restore_users(&name, users) {
            return Err(r.invalid(format!("users are bound to group '{name}', which the whitelist lacks")));
        }
    }
    if r.remaining() != 0 {
        return Err(r.invalid(format!("{} bytes left after the last binding", r.remaining())));
    }
    Ok(())
}

fn encode_usage(w: &Whitelist, out: &mut Vec<u8>) {
    for g in w.groups() {
        for i in 0..g.entries().len() {
            let u = g.usage(i);
            out.extend_from_slice(&u.added.to_le_bytes());
            out.extend_from_slice(&u.hits.to_le_bytes());
            out.extend_from_slice(&u.last_hit.to_le_bytes());
        }
    }
}

fn decode_meta(r: &mut Reader<'_>, groups: &mut [GroupSpec]) -> Result<(), DecodeError> {
    for g in groups.iter_mut() {
        let mut meta = Vec::with_capacity(g.entries.len());
        for _ in 0..g.entries.len() {
            let flags = r.u8()?;
            if flags & !(META_COMMENT | META_EXPIRES) != 0 {
                return Err(r.invalid(format!("group '{}': unknown entry flags {flags:#04x}", g.name)));
            }
            let mut m = Meta::default();
            if flags & META_COMMENT != 0 {
                let len = r.u8()? as usize;
                let raw = r.take(len)?;
                match parse_comment(raw) {
                    Some(text) if !text.is_empty() => m.comment = Some(text.into()),
                    _ => return Err(r.invalid(format!("group '{}': an invalid comment", g.name))),
                }
            }
            if flags & META_EXPIRES != 0 {
                m.expires = Some(r.u64()?);
            }
            meta.push(m);
        }
        g.meta = meta;
    }
    if r.remaining() != 0 {
        return Err(r.invalid(format!("{} bytes left after the last comment or expiry", r.remaining())));
    }
    Ok(())
}

fn decode_usage(r: &mut Reader<'_>, groups: &mut [GroupSpec]) -> Result<(), DecodeError> {
    for g in groups.iter_mut() {
        let mut usage = Vec::with_capacity(g.entries.len());
        for _ in 0..g.entries.len() {
            usage.push(Usage { added: r.u64()?, hits: r.u64()?, last_hit: r.u64()? });
        }
        g.usage = usage;
    }
    if r.remaining() != 0 {
        return Err(r.invalid(format!("{} bytes left after the last statistics", r.remaining())));
    }
    Ok(())
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let slice = end.and_then(|e| self.data.get(self.pos..e));
        match slice {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(DecodeError::Truncated { offset: self.data.len() }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn invalid(&self, what: String) -> DecodeError {
        DecodeError::Invalid { offset: self.pos, what }
    }
}

/// Decodes a payload written by [`encode`] (of this or an older encoding
/// version); a cluster ledger it carries is checked and left out.
pub fn decode(data: &[u8]) -> Result<Whitelist, DecodeError> {
    decode_with_ledger(data).map(|(w, _)| w)
}

/// Decodes a payload written by [`encode_with_ledger`] or [`encode`]: the
/// whitelist, and the cluster ledger when the payload has one (completed
/// for the whitelist's groups).
pub fn decode_with_ledger(data: &[u8]) -> Result<(Whitelist, Option<Ledger>), DecodeError> {
    if data.len() >= 4 && &data[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if data.len() < PREAMBLE + CHECKSUM {
        return Err(DecodeError::Truncated { offset: data.len() });
    }
    let encoding = data[4];
    match encoding {
        0 => return Err(DecodeError::InvalidVersion),
        v if v > ENCODING_VERSION => return Err(DecodeError::NewerVersion { found: v }),
        _ => {}
    }
    let (body, tail) = data.split_at(data.len() - CHECKSUM);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32fast::hash(body) != stored {
        return Err(DecodeError::Checksum);
    }
    let mut r = Reader { data: body, pos: PREAMBLE };
    if encoding == 1 {
        return decode_whitelist(&mut r).map(|(groups, version)| (Whitelist::restore(groups, version), None));
    }
    let mut whitelist: Option<(Vec<GroupSpec>, u64)> = None;
    let (mut met, mut used) = (false, false);
    let mut bindings: Option<(usize, usize)> = None;
    let mut ledger: Option<(usize, usize)> = None;
    while r.remaining() > 0 {
        let kind = r.u8()?;
        let flags = r.u8()?;
        let len = r.u64()?;
        if flags & !MUST_UNDERSTAND != 0 {
            return Err(r.invalid(format!("section kind {kind} has unknown flags {flags:#04x}")));
        }
        let end = usize::try_from(len).ok().and_then(|len| r.pos.checked_add(len)).filter(|&end| end <= body.len());
        let Some(end) = end else {
            return Err(r.invalid(format!("section kind {kind} claims {len} bytes, {} are left", r.remaining())));
        };
        let mut payload = Reader { data: body.get(..end).unwrap_or_default(), pos: r.pos };
        match kind {
            SECTION_WHITELIST if whitelist.is_some() => {
                return Err(r.invalid(String::from("a second whitelist section")));
            }
            SECTION_WHITELIST if flags != MUST_UNDERSTAND => {
                return Err(r.invalid(String::from("the whitelist section is not flagged must-understand")));
            }
            SECTION_WHITELIST => whitelist = Some(decode_whitelist(&mut payload)?),
            SECTION_META | SECTION_USAGE if whitelist.is_none() => {
                return Err(r.invalid(format!("section kind {kind} comes before the whitelist section")));
            }
            SECTION_META if met || flags != MUST_UNDERSTAND => {
                return Err(r.invalid(String::from("a second or optional comments section")));
            }
            SECTION_USAGE if used => return Err(r.invalid(String::from("a second statistics section"))),
            SECTION_META | SECTION_USAGE => {
                if let Some((groups, _)) = whitelist.as_mut() {
                    if kind == SECTION_META {
                        met = true;
                        decode_meta(&mut payload, groups)?;
                    } else {
                        used = true;
                        decode_usage(&mut payload, groups)?;
                    }
                }
            }
            SECTION_BINDINGS if bindings.is_some() => {
                return Err(r.invalid(String::from("a second bindings section")));
            }
            SECTION_BINDINGS if flags != MUST_UNDERSTAND => {
                return Err(r.invalid(String::from("the bindings section is not flagged must-understand")));
            }
            SECTION_BINDINGS => bindings = Some((r.pos, end)),
            SECTION_LEDGER if ledger.is_some() || flags != MUST_UNDERSTAND => {
                return Err(r.invalid(String::from("a second or optional ledger section")));
            }
            SECTION_LEDGER => ledger = Some((r.pos, end)),
            _ if flags & MUST_UNDERSTAND != 0 => return Err(DecodeError::UnknownSection { kind }),
            // A later module's optional section (statistics, say): skipped.
            _ => {}
        }
        r.pos = end;
    }
    let (groups, version) = whitelist.ok_or_else(|| r.invalid(String::from("no whitelist section")))?;
    let mut whitelist = Whitelist::restore(groups, version);
    // Read once the groups are known, wherever the section stands.
    if let Some((start, end)) = bindings {
        let mut payload = Reader { data: body.get(..end).unwrap_or_default(), pos: start };
        decode_bindings(&mut payload, &mut whitelist)?;
    }
    let ledger = match ledger {
        Some((start, end)) => {
            let mut payload = Reader { data: body.get(..end).unwrap_or_default(), pos: start };
            Some(decode_ledger(&mut payload, &whitelist)?)
        }
        None => None,
    };
    Ok((whitelist, ledger))
}

/// The whitelist payload, which must fill `r` to its end.
fn decode_whitelist(r: &mut Reader<'_>) -> Result<(Vec<GroupSpec>, u64), DecodeError> {
    let version = r.u64()?;
    if version > MAX_VERSION {
        return Err(r.invalid(format!("version {version} is above the largest, {MAX_VERSION}")));
    }
    let count = r.u32()? as usize;
    if count > crate::matcher::MAX_GROUPS {
        return Err(r.invalid(format!("{count} groups is more than any whitelist can hold")));
    }
    if count > r.remaining() / MIN_GROUP {
        return Err(r.invalid(format!("{count} groups cannot fit in {} bytes", r.remaining())));
    }
    let mut groups: Vec<GroupSpec> = Vec::with_capacity(count);
    for _ in 0..count {
        groups.push(decode_group(r, groups.last().map(|g| &g.name))?);
    }
    if r.remaining() != 0 {
        return Err(r.invalid(format!("{} bytes left after the last group", r.remaining())));
    }
    Ok((groups, version))
}

fn decode_group(r: &mut Reader<'_>, previous: Option<&GroupName>) -> Result<GroupSpec, DecodeError> {
    let len = r.u8()? as usize;
    let raw = r.take(len)?;
    let name = GroupName::parse(raw).map_err(|e| r.invalid(e.to_string()))?;
    if previous.is_some_and(|p| *p >= name) {
        return Err(r.invalid(format!("group '{name}' is out of name order or repeated")));
    }
    let attribute = decode_attribute(r, &name)?;
    let count = r.u32()? as usize;
    if count > r.remaining() / MIN_ENTRY {
        return Err(r.invalid(format!("group '{name}' claims {count} entries in {} bytes", r.remaining())));
    }
    let mut entries = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::with_capacity(count);
    for i in 0..count {
        let entry = decode_group_entry(r, &name, i, &mut seen)?;
        entries.push(entry);
    }
    Ok(GroupSpec::plain(name, attribute, entries))
}

fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let kind = r.u8()?;
    let prefix = r.u8()?;
    let net = match kind {
        KIND_V4 => Ipv4Net::new(Ipv4Addr::from(r.array::<4>()?), prefix).map(IpNet::V4),
        KIND_V6 => Ipv6Net::new(Ipv6Addr::from(r.array::<16>()?), prefix).map(IpNet::V6),
        other => return Err(r.invalid(format!("unknown entry kind {other}"))),
    }
    .map_err(|_| r.invalid(format!("prefix length {prefix} out of range")))?;
    Entry::from_canonical(net).ok_or_else(|| r.invalid(format!("{net} is not in canonical form")))
}

/// Encodes the whole whitelist and, when it has a clock above 0, the
/// cluster ledger (section kind 5).
pub fn encode_with_ledger(w: &Whitelist, ledger: Option<&Ledger>) -> Vec<u8> {
    let mut out = encode(w);
    let Some(ledger) = ledger.filter(|l| l.clock() > 0) else {
        return out;
    };
    // Reopen the sealed payload: the ledger section goes last.
    out.truncate(out.len().saturating_sub(CHECKSUM));
    section(&mut out, SECTION_LEDGER, MUST_UNDERSTAND, |out| encode_ledger(ledger, out));
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn encode_ledger(l: &Ledger, out: &mut Vec<u8>) {
    out.extend_from_slice(&l.clock().to_le_bytes());
    for map in [l.records(), l.tombstones()] {
        out.extend_from_slice(&len_u32(map.len()).to_le_bytes());
        for (name, record) in map {
            put_name(out, name);
            put_record(out, record);
        }
    }
}

/// The ledger section, checked against the whitelist it belongs to.
fn decode_ledger(r: &mut Reader<'_>, w: &Whitelist) -> Result<Ledger, DecodeError> {
    let clock = r.u64()?;
    if clock == 0 || clock > MAX_VERSION {
        return Err(r.invalid(format!("ledger clock {clock} is out of range")));
    }
    let mut maps = [BTreeMap::new(), BTreeMap::new()];
    for (i, map) in maps.iter_mut().enumerate() {
        let tombstones = i == 1;
        let count = r.u32()? as usize;
        if count > r.remaining() / MIN_NAMED_RECORD {
            return Err(r.invalid(format!("{count} ledger records cannot fit in {} bytes", r.remaining())));
        }
        let mut last: Option<GroupName> = None;
        for _ in 0..count {
            let name = read_name(r)?;
            if last.as_ref().is_some_and(|l| *l >= name) {
                return Err(r.invalid(format!("ledger record of '{name}' is out of name order or repeated")));
            }
            let record = read_record(r, clock)?;
            if tombstones == w.group(&name).is_some() {
                let what = if tombstones { "a tombstone of held group" } else { "a record of missing group" };
                return Err(r.invalid(format!("the ledger holds {what} '{name}'")));
            }
            if tombstones && record.stamp == Stamp::PRE_LEDGER {
                return Err(r.invalid(format!("tombstone of '{name}' without a revision")));
            }
            last = Some(name.clone());
            map.insert(name, record);
        }
    }
    if r.remaining() != 0 {
        return Err(r.invalid(format!("{} bytes left after the last ledger record", r.remaining())));
    }
    let [records, tombstones] = maps;
    let mut ledger = Ledger::from_parts(clock, records, tombstones);
    ledger.complete(w);
    Ok(ledger)
}

/// A stamp's bytes: revision, origin.
const STAMP: usize = 8 + NODE_ID_LEN;
/// The smallest record's bytes: stamp, no ancestor.
const RECORD: usize = STAMP + 2;
/// The smallest named record (two-letter name).
const MIN_NAMED_RECORD: usize = 1 + 2 + RECORD;

fn put_name(out: &mut Vec<u8>, name: &GroupName) {
    let name = name.as_str().as_bytes();
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name);
}

fn read_name(r: &mut Reader<'_>) -> Result<GroupName, DecodeError> {
    let len = r.u8()? as usize;
    let raw = r.take(len)?;
    GroupName::parse(raw).map_err(|e| r.invalid(e.to_string()))
}

fn put_stamp(out: &mut Vec<u8>, s: &Stamp) {
    out.extend_from_slice(&s.revision.to_le_bytes());
    out.extend_from_slice(s.origin_bytes());
}

fn put_record(out: &mut Vec<u8>, r: &Record) {
    put_stamp(out, &r.stamp);
    out.extend_from_slice(&u16::try_from(r.seen.len()).unwrap_or(u16::MAX).to_le_bytes());
    // A group changed by more than 65,535 distinct nodes keeps the first
    // ancestors only: it can miss a conflict, never misorder a state.
    for &(origin, revision) in r.seen.iter().take(usize::from(u16::MAX)) {
        put_stamp(out, &Stamp { revision, origin: Some(origin) });
    }
}

fn read_stamp(r: &mut Reader<'_>) -> Result<Stamp, DecodeError> {
    let revision = r.u64()?;
    let raw = r.take(NODE_ID_LEN)?;
    let origin = if raw.iter().all(|&b| b == 0) {
        None
    } else {
        Some(NodeId::parse(raw).map_err(|e| r.invalid(e.to_string()))?)
    };
    Ok(Stamp { revision, origin })
}

/// A record whose revisions are at most `clock`.
fn read_record(r: &mut Reader<'_>, clock: u64) -> Result<Record, DecodeError> {
    let stamp = read_stamp(r)?;
    let count = usize::from(u16::from_le_bytes(r.array()?));
    if count > r.remaining() / STAMP {
        return Err(r.invalid(format!("record {stamp} claims {count} ancestors in {} bytes", r.remaining())));
    }
    let mut seen = Vec::with_capacity(count);
    for _ in 0..count {
        match read_stamp(r)? {
            Stamp { revision, origin: Some(origin) } => seen.push((origin, revision)),
            none => return Err(r.invalid(format!("record {stamp} descends from {none}"))),
        }
    }
    let record = Record { stamp, seen };
    if !record.is_valid() {
        return Err(r.invalid(format!("invalid record {stamp}: its ancestors are unordered or not below it")));
    }
    if record.stamp.revision > clock {
        return Err(r.invalid(format!("revision {} is above the clock {clock}", record.stamp.revision)));
    }
    Ok(record)
}

/// The magic of a cluster state.
const STATE_MAGIC: &[u8; 4] = b"WLCS";
/// The version of the cluster state's layout this build writes and reads.
pub const STATE_VERSION: u8 = 1;
const STATE_USERS: usize = 2;
/// The smallest group in a state: two-letter name, record, flags, no entry,
/// no user.
const MIN_STATE_GROUP: usize = 1 + 2 + RECORD + 1 + 4 + 4;
/// The smallest entry in a state: an IPv4 one without meta.
const MIN_STATE_ENTRY: usize = MIN_ENTRY + 1;

/// The binary form of a cluster state (the argument of `WHITELIST.MERGE`
/// and what the bus carries), integers little-endian:
///
/// ```text
/// "WLCS"  u8 state version (1)  u64 clock
/// u32 group count; per group (name order):
///   u8 name length, name  record  u8 flags (bit 0: hidden)
///   u32 entry count; per entry:
///     u8 kind (4: IPv4, 6: IPv6)  u8 prefix length  4 or 16 address bytes
///     u8 flags (bit 0: comment, bit 1: expiry)  [u8 length, comment]  [u64 expiry]
///   u32 user count; per user (sorted):  u16 length, name bytes (UTF-8)
/// u32 tombstone count; per tombstone (name order):  u8 name length, name  record
/// u32 CRC-32 of everything before it
/// record:  stamp  u16 ancestor count, per ancestor (origin order): stamp
/// stamp:   u64 revision  40 bytes origin (zeros: none)
/// ```
pub fn encode_state(s: &State) -> Vec<u8> {
    let entries: usize = s.groups.iter().map(|(g, _)| g.entries.len()).sum();
    let mut out = Vec::with_capacity(9 + 8 + s.groups.len() * (MIN_STATE_GROUP + 32) + entries * 19);
    out.extend_from_slice(STATE_MAGIC);
    out.push(STATE_VERSION);
    out.extend_from_slice(&s.clock.to_le_bytes());
    out.extend_from_slice(&len_u32(s.groups.len()).to_le_bytes());
    for (g, record) in &s.groups {
        put_name(&mut out, &g.name);
        put_record(&mut out, record);
        out.push(if g.attribute == Attribute::Hidden { FLAG_HIDDEN } else { 0 });
        out.extend_from_slice(&len_u32(g.entries.len()).to_le_bytes());
        for (i, e) in g.entries.iter().enumerate() {
            put_entry(&mut out, e);
            let m = g.meta.get(i).cloned().unwrap_or_default();
            let flags =
                if m.comment.is_some() { META_COMMENT } else { 0 } | if m.expires.is_some() { META_EXPIRES } else { 0 };
            out.push(flags);
            if let Some(c) = &m.comment {
                out.push(u8::try_from(c.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(c.as_bytes());
            }
            if let Some(at) = m.expires {
                out.extend_from_slice(&at.to_le_bytes());
            }
        }
        let mut users: Vec<&String> = g.users.iter().collect();
        users.sort();
        users.dedup();
        out.extend_from_slice(&len_u32(users.len()).to_le_bytes());
        for u in users {
            out.extend_from_slice(&u16::try_from(u.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(u.as_bytes());
        }
    }
    out.extend_from_slice(&len_u32(s.tombstones.len()).to_le_bytes());
    for (name, record) in &s.tombstones {
        put_name(&mut out, name);
        put_record(&mut out, record);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn put_entry(out: &mut Vec<u8>, e: &Entry) {
    match e.net() {
        IpNet::V4(n) => {
            out.push(KIND_V4);
            out.push(n.prefix_len());
            out.extend_from_slice(&n.network().octets());
        }
        IpNet::V6(n) => {
            out.push(KIND_V6);
            out.push(n.prefix_len());
            out.extend_from_slice(&n.network().octets());
        }
    }
}

/// Decodes [`encode_state`]'s form: accepted whole or refused, never
/// allocating from a count the remaining bytes cannot hold.
pub fn decode_state(data: &[u8]) -> Result<State, DecodeError> {
    if data.len() >= 4 && &data[..4] != STATE_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if data.len() < PREAMBLE + CHECKSUM {
        return Err(DecodeError::Truncated { offset: data.len() });
    }
    let (body, tail) = data.split_at(data.len() - CHECKSUM);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32fast::hash(body) != stored {
        return Err(DecodeError::Checksum);
    }
    let mut r = Reader { data: body, pos: 4 };
    let version = r.u8()?;
    if version != STATE_VERSION {
        return Err(r.invalid(format!("cluster state version {version}, this module reads {STATE_VERSION}")));
    }
    let clock = r.u64()?;
    if clock > MAX_VERSION {
        return Err(r.invalid(format!("clock {clock} is above the largest, {MAX_VERSION}")));
    }
    let count = r.u32()? as usize;
    if count > crate::matcher::MAX_GROUPS || count > r.remaining() / MIN_STATE_GROUP {
        return Err(r.invalid(format!("{count} groups cannot fit in {} bytes", r.remaining())));
    }
    let mut groups: Vec<(GroupSpec, Record)> = Vec::with_capacity(count);
    for _ in 0..count {
        let name = read_name(&mut r)?;
        if groups.last().is_some_and(|(g, _)| g.name >= name) {
            return Err(r.invalid(format!("group '{name}' is out of name order or repeated")));
        }
        let record = read_record(&mut r, clock)?;
        groups.push((decode_state_group(&mut r, name)?, record));
    }
    let count = r.u32()? as usize;
    if count > r.remaining() / MIN_NAMED_RECORD {
        return Err(r.invalid(format!("{count} tombstones cannot fit in {} bytes", r.remaining())));
    }
    let mut tombstones: Vec<(GroupName, Record)> = Vec::with_capacity(count);
    for _ in 0..count {
        let name = read_name(&mut r)?;
        if tombstones.last().is_some_and(|(n, _)| *n >= name) {
            return Err(r.invalid(format!("tombstone '{name}' is out of name order or repeated")));
        }
        if groups.binary_search_by(|(g, _)| g.name.cmp(&name)).is_ok() {
            return Err(r.invalid(format!("'{name}' is both a group and a tombstone")));
        }
        let record = read_record(&mut r, clock)?;
        if record.stamp == Stamp::PRE_LEDGER {
            return Err(r.invalid(format!("tombstone of '{name}' without a revision")));
        }
        tombstones.push((name, record));
    }
    if r.remaining() != 0 {
        return Err(r.invalid(format!("{} bytes left after the last tombstone", r.remaining())));
    }
    Ok(State { clock, groups, tombstones })
}

/// A group's flags byte: its attribute; unknown flags are refused.
fn decode_attribute(r: &mut Reader<'_>, name: &GroupName) -> Result<Attribute, DecodeError> {
    let flags = r.u8()?;
    if flags & !FLAG_HIDDEN != 0 {
        return Err(r.invalid(format!("group '{name}' has unknown flags {flags:#04x}")));
    }
    Ok(if flags & FLAG_HIDDEN != 0 { Attribute::Hidden } else { Attribute::Show })
}

/// Entry `i` of group `name`, refused if the group already holds it
/// (`seen`).
fn decode_group_entry(
    r: &mut Reader<'_>,
    name: &GroupName,
    i: usize,
    seen: &mut std::collections::HashSet<Entry>,
) -> Result<Entry, DecodeError> {
    let entry = decode_entry(r).map_err(|e| match e {
        DecodeError::Invalid { offset, what } => {
            DecodeError::Invalid { offset, what: format!("group '{name}' entry {i}: {what}") }
        }
        other => other,
    })?;
    if !seen.insert(entry) {
        return Err(r.invalid(format!("group '{name}' holds {entry} twice")));
    }
    Ok(entry)
}

/// One group's content in a state, after its name and record.
fn decode_state_group(r: &mut Reader<'_>, name: GroupName) -> Result<GroupSpec, DecodeError> {
    let attribute = decode_attribute(r, &name)?;
    let count = r.u32()? as usize;
    if count > r.remaining() / MIN_STATE_ENTRY {
        return Err(r.invalid(format!("group '{name}' claims {count} entries in {} bytes", r.remaining())));
    }
    let mut entries = Vec::with_capacity(count);
    let mut meta = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::with_capacity(count);
    for i in 0..count {
        let entry = decode_group_entry(r, &name, i, &mut seen)?;
        let flags = r.u8()?;
        if flags & !(META_COMMENT | META_EXPIRES) != 0 {
            return Err(r.invalid(format!("group '{name}': unknown entry flags {flags:#04x}")));
        }
        let mut m = Meta::default();
        if flags & META_COMMENT != 0 {
            let len = r.u8()? as usize;
            let raw = r.take(len)?;
            match parse_comment(raw) {
                Some(text) if !text.is_empty() => m.comment = Some(text.into()),
                _ => return Err(r.invalid(format!("group '{name}': an invalid comment"))),
            }
        }
        if flags & META_EXPIRES != 0 {
            m.expires = Some(r.u64()?);
        }
        entries.push(entry);
        meta.push(m);
    }
    if meta.iter().all(|m| *m == Meta::default()) {
        meta = Vec::new();
    }
    let count = r.u32()? as usize;
    if count > r.remaining() / (STATE_USERS + 1) {
        return Err(r.invalid(format!("group '{name}' claims {count} users in {} bytes", r.remaining())));
    }
    let mut users: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(u16::from_le_bytes(r.array()?));
        let raw = r.take(len)?;
        let user = crate::command::parse_user(raw).map_err(|e| r.invalid(format!("group '{name}': user {e}")))?;
        if users.last().is_some_and(|last| *last >= user) {
            return Err(r.invalid(format!("group '{name}': user '{user}' is out of order or repeated")));
        }
        users.push(user);
    }
    Ok(GroupSpec { name, attribute, entries, meta, usage: Vec::new(), users })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse_entry;
    use crate::store::{Change, Limits};
    use crate::Attribute;

    fn sample() -> Whitelist {
        let mut w = Whitelist::default();
        let name = |s: &str| GroupName::parse(s.as_bytes()).unwrap();
        let list = |items: &[&str]| items.iter().map(|s| parse_entry(s.as_bytes()).unwrap()).collect::<Vec<_>>();
        for change in [
            Change::Set {
                group: name("default"),
                entries: list(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]),
                attribute: None,
                note: Default::default(),
            },
            Change::Set {
                group: name("sys"),
                entries: list(&["::1", "0.0.0.0/0"]),
                attribute: Some(Attribute::Hidden),
                note: Default::default(),
            },
            Change::Set {
                group: name("empty"),
                entries: list(&["10.0.0.1"]),
                attribute: None,
                note: Default::default(),
            },
            Change::Remove { group: name("empty"), entries: list(&["10.0.0.1"]) },
        ] {
            w = w.plan(change, None::<&Limits>).unwrap().next.unwrap();
        }
        w
    }

    fn summary(w: &Whitelist) -> Vec<(String, &'static str, Vec<String>)> {
        w.groups()
            .iter()
            .map(|g| {
                (g.name().to_string(), g.attribute().as_str(), g.entries().iter().map(|e| e.to_string()).collect())
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let w = sample();
        let back = decode(&encode(&w)).unwrap();
        assert_eq!(summary(&back), summary(&w));
        assert_eq!(back.version(), 4);
        assert_eq!(back.entry_count(), 5);
        let empty = decode(&encode(&Whitelist::default())).unwrap();
        assert_eq!(empty.groups().len(), 0);
        assert_eq!(empty.version(), 0);
    }

    #[test]
    fn bindings_round_trip_in_their_own_section() {
        let w = small();
        let bound = w
            .plan(
                Change::Bind { group: GroupName::parse(b"ab").unwrap(), users: vec!["app".into(), "admin".into()] },
                None,
            )
            .unwrap()
            .next
            .unwrap();
        let bytes = encode(&bound);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.group(&GroupName::parse(b"ab").unwrap()).unwrap().users(), ["admin", "app"]);
        assert_eq!(back.version(), 2);
        let mut binding = Vec::new();
        binding.extend_from_slice(&1u32.to_le_bytes());
        binding.extend_from_slice(b"\x02ab");
        binding.extend_from_slice(&2u32.to_le_bytes());
        binding.extend_from_slice(&5u32.to_le_bytes());
        binding.extend_from_slice(b"admin");
        binding.extend_from_slice(&3u32.to_le_bytes());
        binding.extend_from_slice(b"app");
        let mut payload = small_payload();
        payload[..8].copy_from_slice(&2u64.to_le_bytes());
        // After the statistics section (added, hits, last hit of the one entry).
        let usage = [0u8; 24];
        assert_eq!(bytes, sections(&[(1, 1, &payload), (3, 0, &usage), (4, 1, &binding)]));
        // Without bindings no section is written: older modules still read it.
        assert_eq!(encode(&small()), sections(&[(1, 1, &small_payload()), (3, 0, &usage)]));
        // A binding of a group the whitelist lacks is refused.
        let mut other = binding.clone();
        other[5] = b'c';
        let err = decode(&sections(&[(1, 1, &small_payload()), (4, 1, &other)])).unwrap_err().to_string();
        assert!(err.ends_with("users are bound to group 'cb', which the whitelist lacks"), "{err}");
        // The section may come first.
        let back = decode(&sections(&[(4, 1, &binding), (1, 1, &small_payload())])).unwrap();
        assert_eq!(back.group(&GroupName::parse(b"ab").unwrap()).unwrap().users(), ["admin", "app"]);
    }

    fn small() -> Whitelist {
        Whitelist::default()
            .plan(
                Change::Set {
                    group: GroupName::parse(b"ab").unwrap(),
                    entries: vec![parse_entry(b"10.0.0.0/8").unwrap()],
                    attribute: None,
                    note: Default::default(),
                },
                None,
            )
            .unwrap()
            .next
            .unwrap()
    }

    /// The whitelist payload of [`small`].
    fn small_payload() -> Vec<u8> {
        let mut p = 1u64.to_le_bytes().to_vec();
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(b"\x02ab\x00");
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&[4, 8, 10, 0, 0, 0]);
        p
    }

    /// A sealed version-2 payload made of `sections` (kind, flags, payload).
    fn sections(sections: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut b = b"WLST\x02".to_vec();
        for (kind, flags, payload) in sections {
            b.push(*kind);
            b.push(*flags);
            b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            b.extend_from_slice(payload);
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn exact_bytes_of_a_small_whitelist() {
        // The statistics section: added, hits, last hit of the one entry.
        let usage = [0u8; 24];
        assert_eq!(encode(&small()), sections(&[(1, 1, &small_payload()), (3, 0, &usage)]));
    }

    #[test]
    fn encoding_version_1_still_loads() {
        // What the first module wrote: the payload right after the version byte.
        let mut v1 = b"WLST\x01".to_vec();
        v1.extend_from_slice(&small_payload());
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(summary(&decode(&v1).unwrap()), summary(&small()));
        assert_eq!(decode(&v1).unwrap().version(), 1);
    }

    #[test]
    fn unknown_sections_are_skipped_unless_they_must_be_understood() {
        let payload = small_payload();
        // An optional section of a later module, before and after: skipped.
        let later = sections(&[(9, 0, b"statistics"), (1, 1, &payload), (200, 0, b"")]);
        assert_eq!(summary(&decode(&later).unwrap()), summary(&small()));
        // One that must be understood: refused whole.
        let bound = sections(&[(1, 1, &payload), (6, 1, b"later rules")]);
        assert_eq!(decode(&bound).unwrap_err(), DecodeError::UnknownSection { kind: 6 });
        assert_eq!(
            decode(&bound).unwrap_err().to_string(),
            "it carries rules this module does not know and cannot enforce (section kind 6); upgrade the module"
        );
        let err = |b: Vec<u8>| decode(&b).unwrap_err().to_string();
        assert_eq!(err(sections(&[(9, 0, b"x")])), "corrupt data at byte 16: no whitelist section");
        assert_eq!(
            err(sections(&[(1, 1, &payload), (1, 1, &payload)])),
            format!("corrupt data at byte {}: a second whitelist section", 5 + 10 + payload.len() + 10)
        );
        assert_eq!(
            err(sections(&[(1, 3, &payload)])),
            "corrupt data at byte 15: section kind 1 has unknown flags 0x03"
        );
        assert_eq!(
            err(sections(&[(1, 0, &payload)])),
            "corrupt data at byte 15: the whitelist section is not flagged must-understand"
        );
        // The whitelist must fill its section exactly.
        let mut longer = payload.clone();
        longer.push(0);
        assert_eq!(
            err(sections(&[(1, 1, &longer)])),
            format!("corrupt data at byte {}: 1 bytes left after the last group", 15 + payload.len())
        );
        let shorter = &payload[..payload.len() - 1];
        assert_eq!(
            err(sections(&[(1, 1, shorter)])),
            format!("corrupt data at byte {}: group 'ab' claims 1 entries in 5 bytes", 15 + shorter.len() - 5)
        );
        // A length past the end is refused before anything is read.
        let mut huge = sections(&[(1, 1, &payload)]);
        huge[7..15].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            decode(&reseal(huge)).unwrap_err().to_string(),
            format!("corrupt data at byte 15: section kind 1 claims {} bytes, {} are left", u64::MAX, payload.len())
        );
    }

    fn reseal(mut body: Vec<u8>) -> Vec<u8> {
        body.truncate(body.len() - CHECKSUM);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "accepted a payload cut at {cut}");
        }
        assert_eq!(decode(&bytes[..8]).unwrap_err(), DecodeError::Truncated { offset: 8 });
        // Long enough for the preamble and a checksum: the checksum fails.
        assert_eq!(decode(&bytes[..10]).unwrap_err(), DecodeError::Checksum);
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "accepted a flip of bit {bit} in byte {i}");
            }
        }
    }

    #[test]
    fn error_texts() {
        let bytes = encode(&sample());
        let mut newer = bytes.clone();
        newer[4] = 3;
        assert_eq!(
            decode(&newer).unwrap_err().to_string(),
            "encoding version 3 is newer than this module reads (2); upgrade the module"
        );
        let mut zero = bytes.clone();
        zero[4] = 0;
        assert_eq!(decode(&zero).unwrap_err(), DecodeError::InvalidVersion);
        assert_eq!(decode(b"RDB!\x01").unwrap_err(), DecodeError::BadMagic);
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40;
        assert_eq!(decode(&flipped).unwrap_err().to_string(), "checksum mismatch: the data is corrupt");
        let mut trailing = bytes.clone();
        trailing.splice(bytes.len() - CHECKSUM..bytes.len() - CHECKSUM, [0u8]);
        // A byte after the last section reads as the start of a section header.
        assert_eq!(
            decode(&reseal(trailing)).unwrap_err().to_string(),
            format!("truncated data: it ends at byte {}", bytes.len() - CHECKSUM + 1)
        );
    }

    #[test]
    fn content_is_validated_even_with_a_good_checksum() {
        let one = |name: &[u8], flags: u8, entry: &[u8]| {
            let mut b = b"WLST\x01".to_vec();
            b.extend_from_slice(&3u64.to_le_bytes());
            b.extend_from_slice(&1u32.to_le_bytes());
            b.push(name.len() as u8);
            b.extend_from_slice(name);
            b.push(flags);
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(entry);
            b.extend_from_slice(&[0; 4]);
            reseal(b)
        };
        let ok = one(b"ab", 0, &[4, 8, 10, 0, 0, 0]);
        assert_eq!(decode(&ok).unwrap().version(), 3);
        let err = |b: Vec<u8>| decode(&b).unwrap_err().to_string();
        assert!(err(one(b"AB", 0, &[4, 8, 10, 0, 0, 0])).contains("invalid group name 'AB'"));
        assert!(err(one(b"ab", 2, &[4, 8, 10, 0, 0, 0])).contains("group 'ab' has unknown flags 0x02"));
        assert!(err(one(b"ab", 0, &[5, 8, 10, 0, 0, 0])).contains("group 'ab' entry 0: unknown entry kind 5"));
        assert!(err(one(b"ab", 0, &[4, 33, 10, 0, 0, 0])).contains("prefix length 33 out of range"));
        assert!(err(one(b"ab", 0, &[4, 8, 10, 0, 0, 1])).contains("10.0.0.1/8 is not in canonical form"));
        let mut mapped = vec![6, 128];
        mapped.extend_from_slice(&"::ffff:10.0.0.1".parse::<Ipv6Addr>().unwrap().octets());
        assert!(err(one(b"ab", 0, &mapped)).contains("is not in canonical form"));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut b = b"WLST\x01".to_vec();
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        let e = decode(&reseal(b)).unwrap_err();
        assert!(e.to_string().contains("4294967295 groups is more than any whitelist can hold"), "{e}");
        let mut b = b"WLST\x01".to_vec();
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1000u32.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        let e = decode(&reseal(b)).unwrap_err();
        assert!(e.to_string().contains("1000 groups cannot fit in 0 bytes"), "{e}");
    }

    #[test]
    fn groups_must_be_sorted_and_unique() {
        let w = sample();
        let mut bytes = encode(&w);
        // Swap the first letters of "default" and "empty" would be complicated;
        // instead rename "sys" (last) to "abc"-length-3 "aaa", breaking the order.
        let pos = bytes.windows(4).position(|win| win == b"\x03sys").unwrap();
        bytes[pos + 1..pos + 4].copy_from_slice(b"aaa");
        let e = decode(&reseal(bytes)).unwrap_err().to_string();
        assert!(e.contains("group 'aaa' is out of name order or repeated"), "{e}");
    }

    #[test]
    fn comments_expiries_and_statistics_round_trip() {
        use crate::store::{Expiry, Note};
        let note = Note { comment: Some("vpn".into()), expiry: Expiry::At(1_767_225_600) };
        let change = Change::Add {
            group: GroupName::parse(b"ab").unwrap(),
            entries: vec![parse_entry(b"10.1.0.0/16").unwrap()],
            note,
        };
        let mut w = small().plan_at(change, None, 42).unwrap().next.unwrap();
        let addr = crate::entry::parse_address(b"10.1.2.3").unwrap();
        let hit = w
            .verdict(
                crate::store::Peer::Ip(addr),
                crate::store::Policy { allow_loopback: false, allow_unixsocket: false, deny_when_empty: false },
            )
            .hit
            .unwrap();
        w.record_hit(hit, 50);
        let back = decode(&encode(&w)).unwrap();
        let g = back.group(&GroupName::parse(b"ab").unwrap()).unwrap();
        assert_eq!(g.meta(1).comment, Some("vpn"));
        assert_eq!(g.meta(1).expires, Some(1_767_225_600));
        assert_eq!(g.usage(1), crate::store::Usage { added: 42, hits: 1, last_hit: 50 });
        assert_eq!(encode(&back), encode(&w));
        // The comments section is must-understand: a module without it refuses.
        let bytes = encode(&w);
        assert!(bytes.windows(2).any(|p| p == [2, 1]));
    }

    fn node(c: char) -> NodeId {
        NodeId::parse(c.to_string().repeat(NODE_ID_LEN).as_bytes()).unwrap()
    }

    /// `small()` with a ledger: "ab" stamped twice by node a, "zz" deleted by b.
    fn with_ledger() -> (Whitelist, Ledger) {
        let w = small();
        let mut l = Ledger::from_whitelist(&w);
        let ab = GroupName::parse(b"ab").unwrap();
        l.stamp_local(&[(ab.clone(), false)], &node('a'));
        l.stamp_local(&[(ab, false), (GroupName::parse(b"zz").unwrap(), false)], &node('a'));
        l.stamp_local(&[(GroupName::parse(b"zz").unwrap(), true)], &node('b'));
        (w, l)
    }

    fn stamp_bytes(revision: u64, c: Option<char>) -> Vec<u8> {
        let mut b = revision.to_le_bytes().to_vec();
        b.extend_from_slice(&c.map_or([0; NODE_ID_LEN], |c| *node(c).as_bytes()));
        b
    }

    /// A named record: name, stamp, ancestors.
    fn record_bytes(name: &[u8], stamp: (u64, char), seen: &[(u64, char)]) -> Vec<u8> {
        let mut b = vec![name.len() as u8];
        b.extend_from_slice(name);
        b.extend_from_slice(&stamp_bytes(stamp.0, Some(stamp.1)));
        b.extend_from_slice(&(seen.len() as u16).to_le_bytes());
        for &(r, c) in seen {
            b.extend_from_slice(&stamp_bytes(r, Some(c)));
        }
        b
    }

    fn ledger_payload(clock: u64, records: &[Vec<u8>], tombstones: &[Vec<u8>]) -> Vec<u8> {
        let mut b = clock.to_le_bytes().to_vec();
        for list in [records, tombstones] {
            b.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for r in list {
                b.extend_from_slice(r);
            }
        }
        b
    }

    #[test]
    fn the_ledger_round_trips_in_its_own_section() {
        let (w, l) = with_ledger();
        let bytes = encode_with_ledger(&w, Some(&l));
        let payload = ledger_payload(
            3,
            &[record_bytes(b"ab", (2, 'a'), &[(1, 'a')])],
            &[record_bytes(b"zz", (3, 'b'), &[(2, 'a')])],
        );
        let usage = [0u8; 24];
        assert_eq!(bytes, sections(&[(1, 1, &small_payload()), (3, 0, &usage), (5, 1, &payload)]));
        let (back, ledger) = decode_with_ledger(&bytes).unwrap();
        assert_eq!(summary(&back), summary(&w));
        assert_eq!(ledger.as_ref(), Some(&l));
        // The plain decoder still reads it; the plain encoder writes none.
        assert_eq!(summary(&decode(&bytes).unwrap()), summary(&w));
        assert_eq!(encode_with_ledger(&w, None), encode(&w));
        assert_eq!(decode_with_ledger(&encode(&w)).unwrap().1, None);
        // A ledger that never moved is not written.
        assert_eq!(encode_with_ledger(&w, Some(&Ledger::from_whitelist(&w))), encode(&w));
        // Pre-ledger records of the whitelist's groups load completed.
        let bare = ledger_payload(3, &[], &[record_bytes(b"zz", (3, 'b'), &[])]);
        let (_, ledger) = decode_with_ledger(&sections(&[(1, 1, &small_payload()), (5, 1, &bare)])).unwrap();
        let ledger = ledger.unwrap();
        assert_eq!(ledger.records()[&GroupName::parse(b"ab").unwrap()], Record::PRE_LEDGER);
        assert_eq!(ledger.clock(), 3);
    }

    #[test]
    fn the_ledger_section_is_validated_against_the_whitelist() {
        let err = |ledger: &[u8]| {
            decode_with_ledger(&sections(&[(1, 1, &small_payload()), (5, 1, ledger)])).unwrap_err().to_string()
        };
        let ab = record_bytes(b"ab", (2, 'a'), &[(1, 'a')]);
        let at = |e: String| e.split_once(": ").map(|(_, w)| w.to_string()).unwrap_or(e);
        assert_eq!(at(err(&ledger_payload(0, &[], &[]))), "ledger clock 0 is out of range");
        assert_eq!(at(err(&ledger_payload(1, std::slice::from_ref(&ab), &[]))), "revision 2 is above the clock 1");
        assert_eq!(
            at(err(&ledger_payload(3, &[record_bytes(b"cd", (2, 'a'), &[])], &[]))),
            "the ledger holds a record of missing group 'cd'"
        );
        assert_eq!(
            at(err(&ledger_payload(3, &[], std::slice::from_ref(&ab)))),
            "the ledger holds a tombstone of held group 'ab'"
        );
        assert_eq!(
            at(err(&ledger_payload(3, &[], &[record_bytes(b"zz", (3, 'b'), &[]), record_bytes(b"yy", (3, 'b'), &[])]))),
            "ledger record of 'yy' is out of name order or repeated"
        );
        assert_eq!(
            at(err(&ledger_payload(3, &[record_bytes(b"ab", (2, 'a'), &[(2, 'a')])], &[]))),
            format!("invalid record 2@{}: its ancestors are unordered or not below it", "a".repeat(40))
        );
        let mut tail = ledger_payload(3, std::slice::from_ref(&ab), &[]);
        tail.push(0);
        assert_eq!(at(err(&tail)), "1 bytes left after the last ledger record");
        let mut huge = ledger_payload(3, &[], &[]);
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(at(err(&huge)), format!("{} ledger records cannot fit in 4 bytes", u32::MAX));
        let mut bad_id = ledger_payload(3, std::slice::from_ref(&ab), &[]);
        bad_id[8 + 4 + 3 + 8] = b'A';
        assert!(at(err(&bad_id)).starts_with("invalid node id 'Aaaa"), "{}", err(&bad_id));
        let good = ledger_payload(3, &[ab], &[]);
        let twice = sections(&[(1, 1, &small_payload()), (5, 1, &good), (5, 1, &good)]);
        assert!(decode(&twice).unwrap_err().to_string().ends_with("a second or optional ledger section"));
        let optional = sections(&[(1, 1, &small_payload()), (5, 0, &good)]);
        assert!(decode(&optional).unwrap_err().to_string().ends_with("a second or optional ledger section"));
        let (w, l) = with_ledger();
        let bytes = encode_with_ledger(&w, Some(&l));
        for cut in 0..bytes.len() {
            assert!(decode_with_ledger(&bytes[..cut]).is_err(), "accepted a payload cut at {cut}");
        }
    }

    /// A state of one group "ab" (10.0.0.0/8 commented "vpn", expiring at 9,
    /// bound to "app") and one tombstone "zz".
    fn small_state() -> State {
        let mut ab = GroupSpec::plain(GroupName::parse(b"ab").unwrap(), Attribute::Hidden, vec![]);
        ab.entries = vec![parse_entry(b"10.0.0.0/8").unwrap(), parse_entry(b"::1").unwrap()];
        ab.meta = vec![Meta { comment: Some("vpn".into()), expires: Some(9) }, Meta::default()];
        ab.users = vec!["app".into()];
        let stamp = |r: u64, c: char| Stamp { revision: r, origin: Some(node(c)) };
        State {
            clock: 4,
            groups: vec![(ab, Record { stamp: stamp(2, 'a'), seen: vec![(node('a'), 1)] })],
            tombstones: vec![(GroupName::parse(b"zz").unwrap(), Record { stamp: stamp(4, 'b'), seen: vec![] })],
        }
    }

    fn state_bytes(clock: u64, groups: &[Vec<u8>], tombstones: &[Vec<u8>]) -> Vec<u8> {
        let mut b = b"WLCS\x01".to_vec();
        b.extend_from_slice(&clock.to_le_bytes());
        for list in [groups, tombstones] {
            b.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for item in list {
                b.extend_from_slice(item);
            }
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn small_state_group() -> Vec<u8> {
        let mut g = record_bytes(b"ab", (2, 'a'), &[(1, 'a')]);
        g.push(FLAG_HIDDEN);
        g.extend_from_slice(&2u32.to_le_bytes());
        g.extend_from_slice(&[4, 8, 10, 0, 0, 0, 3, 3]);
        g.extend_from_slice(b"vpn");
        g.extend_from_slice(&9u64.to_le_bytes());
        g.extend_from_slice(&[6, 128]);
        g.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        g.push(0);
        g.extend_from_slice(&1u32.to_le_bytes());
        g.extend_from_slice(&3u16.to_le_bytes());
        g.extend_from_slice(b"app");
        g
    }

    #[test]
    fn exact_bytes_of_a_small_state() {
        let s = small_state();
        let bytes = state_bytes(4, &[small_state_group()], &[record_bytes(b"zz", (4, 'b'), &[])]);
        assert_eq!(s.encode(), bytes);
        assert_eq!(State::decode(&bytes).unwrap(), s);
        assert_eq!(State::decode(&State::default().encode()).unwrap(), State::default());
    }

    #[test]
    fn a_state_is_refused_whole_when_anything_is_wrong() {
        let group = small_state_group();
        let zz = record_bytes(b"zz", (4, 'b'), &[]);
        let err = |b: Vec<u8>| State::decode(&b).unwrap_err().to_string();
        let at = |e: String| e.split_once(": ").map(|(_, w)| w.to_string()).unwrap_or(e);
        assert_eq!(State::decode(b"WLST\x02xxxxxxxxx").unwrap_err(), DecodeError::BadMagic);
        assert_eq!(State::decode(b"WLCS").unwrap_err(), DecodeError::Truncated { offset: 4 });
        let mut flipped = state_bytes(4, std::slice::from_ref(&group), &[]);
        flipped[20] ^= 1;
        assert_eq!(State::decode(&flipped).unwrap_err(), DecodeError::Checksum);
        let mut newer = state_bytes(4, &[], &[]);
        newer[4] = 2;
        assert_eq!(at(err(reseal(newer))), "cluster state version 2, this module reads 1");
        assert_eq!(
            at(err(state_bytes(3, std::slice::from_ref(&group), std::slice::from_ref(&zz)))),
            "revision 4 is above the clock 3"
        );
        assert_eq!(
            at(err(state_bytes(4, &[group.clone(), group.clone()], &[]))),
            "group 'ab' is out of name order or repeated"
        );
        assert_eq!(
            at(err(state_bytes(4, std::slice::from_ref(&group), &[zz.clone(), zz.clone()]))),
            "tombstone 'zz' is out of name order or repeated"
        );
        let ab_tomb = record_bytes(b"ab", (3, 'b'), &[]);
        assert_eq!(
            at(err(state_bytes(4, std::slice::from_ref(&group), &[ab_tomb]))),
            "'ab' is both a group and a tombstone"
        );
        let mut pre = vec![2, b'z', b'z'];
        pre.extend_from_slice(&stamp_bytes(0, None));
        pre.extend_from_slice(&0u16.to_le_bytes());
        assert_eq!(at(err(state_bytes(4, &[], &[pre]))), "tombstone of 'zz' without a revision");
        let mut half = vec![2, b'z', b'z'];
        half.extend_from_slice(&stamp_bytes(3, None));
        half.extend_from_slice(&0u16.to_le_bytes());
        assert_eq!(
            at(err(state_bytes(4, &[], &[half]))),
            "invalid record 3@pre-ledger: its ancestors are unordered or not below it"
        );
        let mut bad_name = group.clone();
        bad_name[1] = b'A';
        assert!(at(err(state_bytes(4, &[bad_name], &[]))).starts_with("invalid group name 'Ab'"));
        // Offsets into the group: name 3, record 48 + 2 + 48, flags 1, count 4.
        let entries = 3 + 98 + 1;
        let mut flags = group.clone();
        flags[entries - 1] = 2;
        assert_eq!(at(err(state_bytes(4, &[flags], &[]))), "group 'ab' has unknown flags 0x02");
        let mut not_canonical = group.clone();
        not_canonical[entries + 4 + 5] = 1;
        assert_eq!(
            at(err(state_bytes(4, &[not_canonical], &[]))),
            "group 'ab' entry 0: 10.0.0.1/8 is not in canonical form"
        );
        let mut meta = group.clone();
        meta[entries + 4 + 6] = 4;
        assert_eq!(at(err(state_bytes(4, &[meta], &[]))), "group 'ab': unknown entry flags 0x04");
        let mut comment = group.clone();
        comment[entries + 4 + 8] = 0x07;
        assert_eq!(at(err(state_bytes(4, &[comment], &[]))), "group 'ab': an invalid comment");
        let mut twice = group.clone();
        let v6 = entries + 4 + 8 + 3 + 8;
        twice.splice(v6..v6 + 19, [4, 8, 10, 0, 0, 0, 0]);
        assert_eq!(at(err(state_bytes(4, &[twice], &[]))), "group 'ab' holds 10.0.0.0/8 twice");
        let mut user = group.clone();
        let last = user.len() - 1;
        user[last] = b' ';
        assert_eq!(
            at(err(state_bytes(4, &[user], &[]))),
            "group 'ab': user spaces and control characters are not allowed"
        );
        let mut users = group.clone();
        let at_users = users.len() - 9;
        users[at_users..at_users + 4].copy_from_slice(&2u32.to_le_bytes());
        users.extend_from_slice(&3u16.to_le_bytes());
        users.extend_from_slice(b"abc");
        assert_eq!(at(err(state_bytes(4, &[users], &[]))), "group 'ab': user 'abc' is out of order or repeated");
        let mut many = group.clone();
        many[entries..entries + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            at(err(state_bytes(4, &[many], &[]))).starts_with(&format!("group 'ab' claims {} entries in", u32::MAX))
        );
        let mut groups = state_bytes(4, &[], &[]);
        groups[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(at(err(reseal(groups))), format!("{} groups cannot fit in 4 bytes", u32::MAX));
        let mut trailing = state_bytes(4, &[], &[]);
        trailing.splice(trailing.len() - CHECKSUM..trailing.len() - CHECKSUM, [0u8]);
        assert_eq!(at(err(reseal(trailing))), "1 bytes left after the last tombstone");
        let bytes = small_state().encode();
        for cut in 0..bytes.len() {
            assert!(State::decode(&bytes[..cut]).is_err(), "accepted a state cut at {cut}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(State::decode(&bad).is_err(), "accepted a flip of bit {bit} in byte {i}");
            }
        }
    }
}

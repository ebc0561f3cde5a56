//! The whole whitelist as one JSON document (`WHITELIST.EXPORT` / `IMPORT`):
//!
//! ```json
//! {"version":7,"groups":[{"name":"default","attribute":"show","entries":["10.0.0.0/8"]}]}
//! ```
//!
//! Groups are listed in name order; entries in their stored order and
//! canonical form. Reading is strict: unknown fields, a key given twice at any
//! level, repeated groups and invalid names or entries are errors.
//!
//! A document is read straight from its bytes by visitors, never through a
//! generic JSON tree: a tree would keep the last of two equal keys and would
//! be built whole, however large, before anything could be refused. From an
//! ordinary client, a first pass counts the groups and entries without keeping
//! any of them, so a document naming more than the limits allow is refused
//! before a single entry is parsed.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::json;

use crate::command::{Counted, TooMany};
use crate::entry::{parse_entry, EntryError};
use crate::name::{Attribute, GroupName};
use crate::shown::Shown;
use crate::store::{parse_comment, GroupSpec, Limits, Meta, Whitelist, MAX_COMMENT};

pub use crate::store::{MAX_CLIENT_VERSION, MAX_VERSION};

/// A refused document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentError {
    /// Not a valid whitelist document; says what is wrong and where.
    Invalid(String),
    /// Names more groups, or more entries in one group, than the limits allow.
    TooMany(TooMany),
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentError::Invalid(why) => write!(f, "invalid whitelist document: {why}"),
            DocumentError::TooMany(t) => t.fmt(f),
        }
    }
}

impl std::error::Error for DocumentError {}

/// A parsed document: every group, sorted by name, and the version it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The groups, sorted by name, entries without duplicates.
    pub groups: Vec<GroupSpec>,
    /// The version; 0 when the document has none.
    pub version: u64,
}

/// The whole whitelist as a compact JSON document.
pub fn export(w: &Whitelist) -> String {
    let groups: Vec<serde_json::Value> = w
        .groups()
        .iter()
        .map(|g| {
            let entries: Vec<serde_json::Value> = g
                .entries()
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let meta = g.meta(i);
                    if meta.is_none() {
                        return serde_json::Value::String(e.to_string());
                    }
                    let mut object = serde_json::Map::new();
                    if let Some(c) = meta.comment {
                        object.insert(String::from("comment"), json!(c));
                    }
                    object.insert(String::from("entry"), json!(e.to_string()));
                    if let Some(at) = meta.expires {
                        object.insert(String::from("expires"), json!(at));
                    }
                    serde_json::Value::Object(object)
                })
                .collect();
            let mut group = json!({"name": g.name().as_str(), "attribute": g.attribute().as_str(), "entries": entries});
            // Absent rather than empty: a document without bindings stays
            // what a module without them reads.
            if let (false, Some(object)) = (g.users().is_empty(), group.as_object_mut()) {
                object.insert(String::from("users"), json!(g.users()));
            }
            group
        })
        .collect();
    json!({"version": w.version(), "groups": groups}).to_string()
}

/// What a document names, counted without parsing or keeping any of it.
/// Every `"groups"` array and every `"entries"` array inside it is counted,
/// duplicates (and repeated keys) included; values of any other shape count
/// for nothing and are left for the parse to refuse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Items of the `"groups"` arrays.
    pub groups: usize,
    /// Items of the `"entries"` arrays of the largest group.
    pub largest: usize,
    /// How the error names the (first) largest group: `group 'name'`, or
    /// `groups[i]` when it has no string name.
    pub largest_label: String,
}

/// Counts a document's groups and entries (see [`Counts`]); only malformed
/// JSON is an error.
pub fn count_document(raw: &[u8]) -> Result<Counts, DocumentError> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    CountTop
        .deserialize(&mut de)
        .and_then(|counts| de.end().map(|()| counts))
        .map_err(|e| DocumentError::Invalid(e.to_string()))
}

/// Refuses counts beyond `limits`: too many groups first, then the largest group.
fn check_counts(counts: &Counts, limits: &Limits) -> Result<(), DocumentError> {
    if counts.groups > limits.max_groups {
        return Err(DocumentError::TooMany(TooMany {
            what: Counted::DocumentGroups,
            count: counts.groups,
            limit: limits.max_groups,
        }));
    }
    if counts.largest > limits.max_entries_per_group {
        return Err(DocumentError::TooMany(TooMany {
            what: Counted::DocumentEntries(counts.largest_label.clone()),
            count: counts.largest,
            limit: limits.max_entries_per_group,
        }));
    }
    Ok(())
}

/// Parses and validates a document. `limits` is `None` for a replicated or
/// loaded `IMPORT`, which must reach the primary's state: then neither the
/// limits nor the client's version cap apply. From an ordinary client, a
/// document naming more items than the limits allow is refused before it is
/// parsed, and its version may not exceed [`MAX_CLIENT_VERSION`].
pub fn parse_document(raw: &[u8], limits: Option<&Limits>) -> Result<Document, DocumentError> {
    if let Some(limits) = limits {
        check_counts(&count_document(raw)?, limits)?;
    }
    let max_version = if limits.is_some() { MAX_CLIENT_VERSION } else { MAX_VERSION };
    let mut fault = None;
    let mut de = serde_json::Deserializer::from_slice(raw);
    let parsed = TopSeed { fault: &mut fault, max_version }.deserialize(&mut de).and_then(|doc| de.end().map(|()| doc));
    match parsed {
        Ok(mut doc) => {
            doc.groups.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(doc)
        }
        // A refusal of ours is kept aside: serde's own error would carry it
        // with a position appended and as free text.
        Err(e) => Err(fault.unwrap_or_else(|| DocumentError::Invalid(e.to_string()))),
    }
}

/// Where refusals of the visitors wait (see [`parse_document`]).
type Fault = Option<DocumentError>;

/// Records `why` and gives serde an error that unwinds the parse.
fn refuse<E: de::Error>(fault: &mut Fault, why: String) -> E {
    *fault = Some(DocumentError::Invalid(why));
    E::custom("refused")
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The visits of a JSON number, boolean or null (and, with `str`, string), all
/// answered by `$answer(self)`, which must return `Result<Self::Value, E>`.
macro_rules! scalars {
    ($answer:expr, str) => {
        scalars!($answer);
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            $answer(self)
        }
    };
    ($answer:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            $answer(self)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            $answer(self)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            $answer(self)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            $answer(self)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            $answer(self)
        }
    };
}

/// An object key: its index among the known keys and its text, or the
/// unknown key as an error can show it.
struct KeySeed(&'static [&'static str]);

/// A key [`KeySeed`] knows, or the unknown one.
type Key = Result<(usize, &'static str), Shown>;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .iter()
            .enumerate()
            .find(|(_, k)| **k == key)
            .map(|(i, k)| (i, *k))
            .ok_or_else(|| Shown::new(key.as_bytes())))
    }
}

/// Keys seen so far in one object, to refuse a key given twice.
struct Seen(u32);

impl Seen {
    /// Marks key `index`; `false` when it was already there.
    fn first(&mut self, index: usize) -> bool {
        let bit = 1u32 << (index % 32);
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh
    }
}

// ------------------------------------------------------------------ counting

const TOP_KEYS: &[&str] = &["version", "groups"];
const GROUP_KEYS: &[&str] = &["name", "attribute", "entries", "users"];
const ENTRY_KEYS: &[&str] = &["entry", "comment", "expires"];

struct CountTop;

impl<'de> DeserializeSeed<'de> for CountTop {
    type Value = Counts;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Counts, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountTop {
    type Value = Counts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars!(|_| Ok(Counts::default()), str);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Counts, A::Error> {
        drain_seq(seq).map(|()| Counts::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Counts, A::Error> {
        let mut counts = Counts::default();
        while let Some(key) = map.next_key_seed(KeySeed(TOP_KEYS))? {
            if matches!(key, Ok((_, "groups"))) {
                map.next_value_seed(CountGroups(&mut counts))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(counts)
    }
}

/// Adds the groups of one `"groups"` value to the counts.
struct CountGroups<'a>(&'a mut Counts);

impl<'de> DeserializeSeed<'de> for CountGroups<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountGroups<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars!(|_| Ok(()), str);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        drain_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let counts = self.0;
        while let Some((entries, name)) = seq.next_element_seed(CountGroup)? {
            if counts.largest_label.is_empty() || entries > counts.largest {
                counts.largest = entries;
                counts.largest_label = match name {
                    Some(name) => format!("group '{name}'"),
                    None => format!("groups[{}]", counts.groups),
                };
            }
            counts.groups = counts.groups.saturating_add(1);
        }
        Ok(())
    }
}

/// One group: its entries (every `"entries"` array) and its name if it is a string.
struct CountGroup;

impl<'de> DeserializeSeed<'de> for CountGroup {
    type Value = (usize, Option<Shown>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountGroup {
    type Value = (usize, Option<Shown>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars!(|_| Ok((0, None)), str);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| (0, None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut entries, mut name) = (0usize, None);
        while let Some(key) = map.next_key_seed(KeySeed(GROUP_KEYS))? {
            match key {
                Ok((_, "name")) if name.is_none() => name = map.next_value_seed(TextSeed)?,
                Ok((_, "entries")) => entries = entries.saturating_add(map.next_value_seed(CountItems)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((entries, name))
    }
}

/// A string value as an error shows it; `None` for any other value.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Option<Shown>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Option<Shown>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars!(|_| Ok(None));

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Shown::new(text.as_bytes())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

/// The items of an array, skipped unparsed; 0 for any other value.
struct CountItems;

impl<'de> DeserializeSeed<'de> for CountItems {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountItems {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars!(|_| Ok(0), str);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<usize, A::Error> {
        drain_map(map).map(|()| 0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n = n.saturating_add(1);
        }
        Ok(n)
    }
}

// ------------------------------------------------------------------- parsing

const NOT_AN_OBJECT: &str = "expected a JSON object with \"groups\"";
const GROUPS_NOT_AN_ARRAY: &str = "\"groups\" must be an array";

/// The whole document.
struct TopSeed<'a> {
    fault: &'a mut Fault,
    max_version: u64,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Document;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Document, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_AN_OBJECT)
    }

    scalars!(|s: Self| Err(refuse(s.fault, NOT_AN_OBJECT.into())), str);

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Document, A::Error> {
        Err(refuse(self.fault, NOT_AN_OBJECT.into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let TopSeed { fault, max_version } = self;
        let (mut seen, mut version, mut groups) = (Seen(0), None, None);
        while let Some(key) = map.next_key_seed(KeySeed(TOP_KEYS))? {
            match key {
                Err(unknown) => return Err(refuse(fault, format!("unknown field '{unknown}' in the document"))),
                Ok((i, key)) if !seen.first(i) => {
                    return Err(refuse(fault, format!("duplicate key '{key}' in the document")))
                }
                Ok((_, "version")) => {
                    version = Some(map.next_value_seed(VersionSeed { fault: &mut *fault, max_version })?)
                }
                Ok(_) => groups = Some(map.next_value_seed(GroupsSeed { fault: &mut *fault })?),
            }
        }
        let Some(groups) = groups else {
            return Err(refuse(fault, GROUPS_NOT_AN_ARRAY.into()));
        };
        Ok(Document { groups, version: version.unwrap_or(0) })
    }
}

/// `"version"`: an integer from 0 to `max_version`.
struct VersionSeed<'a> {
    fault: &'a mut Fault,
    max_version: u64,
}

impl VersionSeed<'_> {
    fn refusal<E: de::Error>(self) -> E {
        let max = self.max_version;
        refuse(self.fault, format!("\"version\" must be an integer from 0 to {max}"))
    }
}

impl<'de> DeserializeSeed<'de> for VersionSeed<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VersionSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer from 0 to {}", self.max_version)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<u64, E> {
        Err(self.refusal())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<u64, E> {
        Err(self.refusal())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<u64, E> {
        Err(self.refusal())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<u64, E> {
        Err(self.refusal())
    }

    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Err(self.refusal())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
        if n <= self.max_version {
            Ok(n)
        } else {
            Err(self.refusal())
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<u64, A::Error> {
        Err(self.refusal())
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<u64, A::Error> {
        Err(self.refusal())
    }
}

/// `"groups"`: an array of group objects with distinct names.
struct GroupsSeed<'a> {
    fault: &'a mut Fault,
}

impl<'de> DeserializeSeed<'de> for GroupsSeed<'_> {
    type Value = Vec<GroupSpec>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for GroupsSeed<'_> {
    type Value = Vec<GroupSpec>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(GROUPS_NOT_AN_ARRAY)
    }

    scalars!(|s: Self| Err(refuse(s.fault, GROUPS_NOT_AN_ARRAY.into())), str);

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(refuse(self.fault, GROUPS_NOT_AN_ARRAY.into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let fault = self.fault;
        let (mut groups, mut names) = (Vec::new(), HashSet::new());
        while let Some(spec) = seq.next_element_seed(GroupSeed { fault: &mut *fault, index: groups.len() })? {
            if !names.insert(spec.name.clone()) {
                return Err(refuse(fault, format!("group '{}' appears twice", spec.name)));
            }
            groups.push(spec);
        }
        Ok(groups)
    }
}

/// What is wrong with a value inside a group. The error names the group,
/// whose name may come later in the object, so it is reported once the
/// group's object has been read.
enum Flaw {
    Attribute,
    Entries,
    NotAnEntry(usize),
    Entry(EntryError),
    Comment(usize),
    Expires(usize),
}

impl Flaw {
    fn describe(&self, group: &str) -> String {
        match self {
            Flaw::Attribute => format!("{group}: \"attribute\" must be \"show\" or \"hidden\""),
            Flaw::Entries => format!("{group} needs an \"entries\" array"),
            Flaw::NotAnEntry(i) => {
                format!("{group}: entries[{i}] must be an address string or an object with an \"entry\" string")
            }
            Flaw::Entry(e) => format!("{group}: {e}"),
            Flaw::Comment(i) => {
                format!(
                    "{group}: entries[{i}].comment must be a string of at most {MAX_COMMENT} bytes of printable text"
                )
            }
            Flaw::Expires(i) => format!("{group}: entries[{i}].expires must be a positive integer (unix seconds)"),
        }
    }
}

/// One group object.
struct GroupSeed<'a> {
    fault: &'a mut Fault,
    index: usize,
}

impl GroupSeed<'_> {
    fn refusal<E: de::Error>(self) -> E {
        let index = self.index;
        refuse(self.fault, format!("groups[{index}] must be an object"))
    }
}

impl<'de> DeserializeSeed<'de> for GroupSeed<'_> {
    type Value = GroupSpec;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<GroupSpec, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for GroupSeed<'_> {
    type Value = GroupSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a group object")
    }

    scalars!(|s: Self| Err(s.refusal()), str);

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<GroupSpec, A::Error> {
        Err(self.refusal())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupSpec, A::Error> {
        let GroupSeed { fault, index } = self;
        let here = format!("groups[{index}]");
        let mut seen = Seen(0);
        let (mut name, mut attribute, mut entries, mut flaw) = (None, None, None, None);
        let mut users = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed(GROUP_KEYS))? {
            if flaw.is_some() {
                // The rest is read only for the name the error shows.
                if matches!(key, Ok((_, "name"))) && name.is_none() {
                    name = map.next_value_seed(NameSeed)?.and_then(Result::ok);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
                continue;
            }
            match key {
                Err(unknown) => return Err(refuse(fault, format!("unknown field '{unknown}' in {here}"))),
                Ok((i, key)) if !seen.first(i) => {
                    return Err(refuse(fault, format!("duplicate key '{key}' in {here}")))
                }
                Ok((_, "name")) => match map.next_value_seed(NameSeed)? {
                    Some(Ok(n)) => name = Some(n),
                    Some(Err(e)) => return Err(refuse(fault, e.to_string())),
                    None => return Err(refuse(fault, format!("{here} needs a \"name\" string"))),
                },
                Ok((_, "attribute")) => match map.next_value_seed(AttributeSeed)? {
                    Some(a) => attribute = Some(a),
                    None => flaw = Some(Flaw::Attribute),
                },
                Ok((_, "users")) => {
                    let value: serde_json::Value = map.next_value()?;
                    let parsed = value.as_array().and_then(|list| {
                        list.iter()
                            .map(|u| u.as_str().and_then(|u| crate::command::parse_user(u.as_bytes()).ok()))
                            .collect::<Option<Vec<String>>>()
                    });
                    match parsed {
                        Some(list) => users = list,
                        None => {
                            return Err(refuse(fault, format!("{here}: \"users\" must be an array of ACL user names")))
                        }
                    }
                }
                Ok(_) => match map.next_value_seed(EntriesSeed { fault: &mut *fault, group: index })? {
                    Ok(list) => entries = Some(list),
                    Err(f) => flaw = Some(f),
                },
            }
        }
        let label = name.as_ref().map_or_else(|| here.clone(), |n| format!("group '{n}'"));
        if let Some(flaw) = flaw {
            return Err(refuse(fault, flaw.describe(&label)));
        }
        let Some(name) = name else {
            return Err(refuse(fault, format!("{here} needs a \"name\" string")));
        };
        let Some(entries) = entries else {
            return Err(refuse(fault, Flaw::Entries.describe(&label)));
        };
        let (entries, meta) = entries;
        let mut spec = GroupSpec::plain(name, attribute.unwrap_or_default(), entries);
        spec.users = users;
        if meta.iter().any(|m| *m != Meta::default()) {
            spec.meta = meta;
        }
        Ok(spec)
    }
}

/// `"name"`: `None` when it is not a string.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Option<Result<GroupName, crate::name::NameError>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Option<Result<GroupName, crate::name::NameError>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a group name")
    }

    scalars!(|_| Ok(None));

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(GroupName::parse(text.as_bytes())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

/// `"attribute"`: `None` unless it is `"show"` or `"hidden"`.
struct AttributeSeed;

impl<'de> DeserializeSeed<'de> for AttributeSeed {
    type Value = Option<Attribute>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttributeSeed {
    type Value = Option<Attribute>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("show or hidden")
    }

    scalars!(|_| Ok(None));

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(match text {
            "show" => Some(Attribute::Show),
            "hidden" => Some(Attribute::Hidden),
            _ => None,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

/// `"entries"`: the group's entries in order without repeats, or the first
/// flaw (the rest of the array is then skipped).
struct EntriesSeed<'a> {
    fault: &'a mut Fault,
    group: usize,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Result<(Vec<crate::entry::Entry>, Vec<Meta>), Flaw>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = Result<(Vec<crate::entry::Entry>, Vec<Meta>), Flaw>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of entries")
    }

    scalars!(|_| Ok(Err(Flaw::Entries)), str);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Err(Flaw::Entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let EntriesSeed { fault, group } = self;
        let (mut list, mut metas, mut held) = (Vec::new(), Vec::new(), HashSet::new());
        let mut item = 0;
        while let Some(entry) =
            seq.next_element_seed(EntrySeed { fault: &mut *fault, group, item, object_allowed: true })?
        {
            match entry {
                Ok((e, meta)) => {
                    if held.insert(e) {
                        list.push(e);
                        metas.push(meta);
                    }
                }
                Err(flaw) => return drain_seq(seq).map(|()| Err(flaw)),
            }
            item += 1;
        }
        Ok(Ok((list, metas)))
    }
}

/// One entry: an address string, or an object whose `"entry"` is one.
struct EntrySeed<'a> {
    fault: &'a mut Fault,
    group: usize,
    item: usize,
    /// `false` for the value of `"entry"` itself.
    object_allowed: bool,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Result<(crate::entry::Entry, Meta), Flaw>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = Result<(crate::entry::Entry, Meta), Flaw>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an entry")
    }

    scalars!(|s: Self| Ok(Err(Flaw::NotAnEntry(s.item))));

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(parse_entry(text.as_bytes()).map(|e| (e, Meta::default())).map_err(Flaw::Entry))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let item = self.item;
        drain_seq(seq).map(|()| Err(Flaw::NotAnEntry(item)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let EntrySeed { fault, group, item, object_allowed } = self;
        if !object_allowed {
            return drain_map(map).map(|()| Err(Flaw::NotAnEntry(item)));
        }
        let here = format!("groups[{group}].entries[{item}]");
        let mut seen = Seen(0);
        let mut entry = None;
        let mut meta = Meta::default();
        while let Some(key) = map.next_key_seed(KeySeed(ENTRY_KEYS))? {
            match key {
                Err(unknown) => return Err(refuse(fault, format!("unknown field '{unknown}' in {here}"))),
                Ok((i, key)) if !seen.first(i) => {
                    return Err(refuse(fault, format!("duplicate key '{key}' in {here}")))
                }
                Ok((_, "comment")) => match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::String(text) if parse_comment(text.as_bytes()).is_some() => {
                        meta.comment = (!text.is_empty()).then(|| text.into_boxed_str());
                    }
                    _ => return drain_map(map).map(|()| Err(Flaw::Comment(item))),
                },
                Ok((_, "expires")) => match map.next_value::<serde_json::Value>()?.as_u64() {
                    Some(at) if at > 0 => meta.expires = Some(at),
                    _ => return drain_map(map).map(|()| Err(Flaw::Expires(item))),
                },
                Ok(_) => {
                    let value = EntrySeed { fault: &mut *fault, group, item, object_allowed: false };
                    match map.next_value_seed(value)? {
                        Ok((e, _)) => entry = Some(e),
                        Err(flaw) => return drain_map(map).map(|()| Err(flaw)),
                    }
                }
            }
        }
        Ok(entry.map(|e| (e, meta)).ok_or(Flaw::NotAnEntry(item)))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;

    const LIMITS: Limits = Limits { max_groups: 3, max_entries_per_group: 4 };

    #[test]
    fn users_are_exported_and_imported_with_their_group() {
        let name = crate::GroupName::parse(b"aa").unwrap();
        let entries = vec![crate::entry::parse_entry(b"10.0.0.1").unwrap()];
        let w = Whitelist::default()
            .plan(Change::Set { group: name.clone(), entries, attribute: None, note: Default::default() }, None)
            .unwrap();
        let w = w.next.unwrap();
        let plain = export(&w);
        assert_eq!(plain, r#"{"groups":[{"attribute":"show","entries":["10.0.0.1"],"name":"aa"}],"version":1}"#);
        let bound =
            w.plan(Change::Bind { group: name, users: vec!["b".into(), "a".into()] }, None).unwrap().next.unwrap();
        let doc = export(&bound);
        assert_eq!(
            doc,
            r#"{"groups":[{"attribute":"show","entries":["10.0.0.1"],"name":"aa","users":["a","b"]}],"version":2}"#
        );
        let parsed = parse_document(doc.as_bytes(), Some(&LIMITS)).unwrap();
        assert_eq!(parsed.groups[0].users, vec![String::from("a"), String::from("b")]);
        assert_eq!(
            client_err(r#"{"groups":[{"name":"aa","entries":[],"users":["a b"]}]}"#),
            r#"invalid whitelist document: groups[0]: "users" must be an array of ACL user names"#
        );
        assert_eq!(
            client_err(r#"{"groups":[{"name":"aa","entries":[],"users":"a"}]}"#),
            r#"invalid whitelist document: groups[0]: "users" must be an array of ACL user names"#
        );
        assert_eq!(
            client_err(r#"{"groups":[{"name":"aa","entries":[],"users":[],"users":[]}]}"#),
            "invalid whitelist document: duplicate key 'users' in groups[0]"
        );
    }

    /// The error for `raw` from an ordinary client, and checks that the
    /// trusted path refuses it alike unless a limit or the cap is the reason.
    fn client_err(raw: &str) -> String {
        parse_document(raw.as_bytes(), Some(&LIMITS)).unwrap_err().to_string()
    }

    #[test]
    fn export_then_parse_restores_the_state() {
        let doc = parse_document(
            br#"{"version":5,"groups":[{"name":"zz","entries":["::1"]},{"name":"default","attribute":"hidden","entries":["10.0.0.0/8","192.0.2.1","10.0.0.0/8"]}]}"#,
            Some(&LIMITS),
        )
        .unwrap();
        assert_eq!(doc.version, 5);
        assert_eq!(doc.groups[0].name.as_str(), "default");
        assert_eq!(doc.groups[0].entries.len(), 2);
        let w = Whitelist::default()
            .plan(Change::Install { groups: doc.groups, version: doc.version }, None)
            .unwrap()
            .next
            .unwrap();
        let text = export(&w);
        assert_eq!(
            text,
            r#"{"groups":[{"attribute":"hidden","entries":["10.0.0.0/8","192.0.2.1"],"name":"default"},{"attribute":"show","entries":["::1"],"name":"zz"}],"version":5}"#
        );
        let again = parse_document(text.as_bytes(), Some(&LIMITS)).unwrap();
        assert_eq!(again.version, 5);
        assert_eq!(again.groups.len(), 2);
    }

    #[test]
    fn empty_document() {
        let doc = parse_document(br#"{"groups":[]}"#, Some(&LIMITS)).unwrap();
        assert_eq!(doc, Document { groups: vec![], version: 0 });
        assert_eq!(export(&Whitelist::default()), r#"{"groups":[],"version":0}"#);
    }

    #[test]
    fn errors_are_specific() {
        let err = |s: &str| {
            let trusted = parse_document(s.as_bytes(), None).unwrap_err().to_string();
            assert_eq!(client_err(s), trusted, "{s}");
            trusted
        };
        assert!(err("not json").starts_with("invalid whitelist document: expected ident at line 1 column 2"));
        assert_eq!(err("[]"), "invalid whitelist document: expected a JSON object with \"groups\"");
        assert_eq!(err("{}"), "invalid whitelist document: \"groups\" must be an array");
        assert_eq!(
            err(r#"{"groups":[],"extra":1}"#),
            "invalid whitelist document: unknown field 'extra' in the document"
        );
        let trusted = |s: &str| parse_document(s.as_bytes(), None).unwrap_err().to_string();
        for bad in ["-1", "9223372036854775808", "1.0", "1e3", "\"7\"", "null", "[]", "{}"] {
            let doc = format!(r#"{{"groups":[],"version":{bad}}}"#);
            assert_eq!(
                trusted(&doc),
                "invalid whitelist document: \"version\" must be an integer from 0 to 9223372036854775807"
            );
            assert_eq!(
                client_err(&doc),
                "invalid whitelist document: \"version\" must be an integer from 0 to 9007199254740991"
            );
        }
        assert_eq!(err(r#"{"groups":[1]}"#), "invalid whitelist document: groups[0] must be an object");
        assert_eq!(
            err(r#"{"groups":[{"entries":[]}]}"#),
            "invalid whitelist document: groups[0] needs a \"name\" string"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"Bad","entries":[]}]}"#),
            "invalid whitelist document: invalid group name 'Bad': 2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":["10.1.2.3/8"]}]}"#),
            "invalid whitelist document: group 'ab': invalid whitelist entry '10.1.2.3/8': host bits set, did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":[]},{"name":"ab","entries":[]}]}"#),
            "invalid whitelist document: group 'ab' appears twice"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","attribute":"secret","entries":[]}]}"#),
            "invalid whitelist document: group 'ab': \"attribute\" must be \"show\" or \"hidden\""
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":["::1",1]}]}"#),
            "invalid whitelist document: group 'ab': entries[1] must be an address string or an object with an \"entry\" string"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab"}]}"#),
            "invalid whitelist document: group 'ab' needs an \"entries\" array"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":[],"comment":"x"}]}"#),
            "invalid whitelist document: unknown field 'comment' in groups[0]"
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_at_every_level() {
        let both = |s: &str| {
            let trusted = parse_document(s.as_bytes(), None).unwrap_err().to_string();
            assert_eq!(client_err(s), trusted, "{s}");
            trusted
        };
        assert_eq!(
            both(r#"{"groups":[],"version":1,"version":2}"#),
            "invalid whitelist document: duplicate key 'version' in the document"
        );
        assert_eq!(
            both(r#"{"groups":[{"name":"ab","entries":[]}],"groups":[]}"#),
            "invalid whitelist document: duplicate key 'groups' in the document"
        );
        // An escaped key is the same key.
        assert_eq!(
            both(r#"{"groups":[],"\u0067roups":[]}"#),
            "invalid whitelist document: duplicate key 'groups' in the document"
        );
        assert_eq!(
            both(r#"{"groups":[{"name":"ab","entries":[],"name":"cd"}]}"#),
            "invalid whitelist document: duplicate key 'name' in groups[0]"
        );
        assert_eq!(
            both(r#"{"groups":[{"name":"ab","entries":[]},{"entries":["::1"],"attribute":"show","entries":[]}]}"#),
            "invalid whitelist document: duplicate key 'entries' in groups[1]"
        );
        assert_eq!(
            both(r#"{"groups":[{"name":"ab","entries":["::1",{"entry":"10.0.0.1","entry":"10.0.0.2"}]}]}"#),
            "invalid whitelist document: duplicate key 'entry' in groups[0].entries[1]"
        );
    }

    #[test]
    fn entries_may_be_objects() {
        let doc = parse_document(
            br#"{"groups":[{"entries":[{"entry":"10.0.0.1"},"10.0.0.1","::1"],"name":"ab"}]}"#,
            Some(&LIMITS),
        )
        .unwrap();
        assert_eq!(doc.groups[0].entries.iter().map(|e| e.to_string()).collect::<Vec<_>>(), ["10.0.0.1", "::1"]);
        let err = |s: &str| client_err(s);
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":[{"entry":"10.0.0.1","owner":"x"}]}]}"#),
            "invalid whitelist document: unknown field 'owner' in groups[0].entries[0]"
        );
        // Comments and expiries are read, validated, and written back.
        let doc = parse_document(
            br#"{"groups":[{"entries":[{"expires":1767225600,"entry":"10.0.0.1","comment":"vpn"},"::1"],"name":"ab"}]}"#,
            Some(&LIMITS),
        )
        .unwrap();
        let w =
            Whitelist::default().plan(Change::Install { groups: doc.groups, version: 1 }, None).unwrap().next.unwrap();
        assert_eq!(
            export(&w),
            r#"{"groups":[{"attribute":"show","entries":[{"comment":"vpn","entry":"10.0.0.1","expires":1767225600},"::1"],"name":"ab"}],"version":1}"#
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":[{"entry":"10.0.0.1","comment":"a\u0007b"}]}]}"#),
            "invalid whitelist document: group 'ab': entries[0].comment must be a string of at most 128 bytes of printable text"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":[{"entry":"10.0.0.1","expires":"soon"}]}]}"#),
            "invalid whitelist document: group 'ab': entries[0].expires must be a positive integer (unix seconds)"
        );
        for bad in [r#"{}"#, r#"{"entry":1}"#, r#"{"entry":{"entry":"::1"}}"#, "null", "[\"::1\"]"] {
            assert_eq!(
                err(&format!(r#"{{"groups":[{{"name":"ab","entries":["::1",{bad}]}}]}}"#)),
                "invalid whitelist document: group 'ab': entries[1] must be an address string or an object with an \"entry\" string",
                "{bad}"
            );
        }
        assert_eq!(
            err(r#"{"groups":[{"name":"ab","entries":[{"entry":"10.1.2.3/8"}]}]}"#),
            "invalid whitelist document: group 'ab': invalid whitelist entry '10.1.2.3/8': host bits set, did you mean 10.0.0.0/8?"
        );
    }

    #[test]
    fn a_flaw_names_the_group_even_when_its_name_comes_later() {
        let err = |s: &str| client_err(s);
        // EXPORT writes "entries" before "name".
        assert_eq!(
            err(r#"{"groups":[{"attribute":"show","entries":["10.0.0.1","x"],"name":"ab"}]}"#),
            "invalid whitelist document: group 'ab': invalid whitelist entry 'x': not an IP address or CIDR block"
        );
        assert_eq!(
            err(r#"{"groups":[{"attribute":"odd","entries":["x"],"name":"ab"}]}"#),
            "invalid whitelist document: group 'ab': \"attribute\" must be \"show\" or \"hidden\""
        );
        // The first fault in the text wins, even over a later syntax fault
        // inside the same group's values.
        assert_eq!(
            err(r#"{"groups":[{"entries":["x"],"name":"Bad"}]}"#),
            "invalid whitelist document: groups[0]: invalid whitelist entry 'x': not an IP address or CIDR block"
        );
        assert_eq!(
            err(r#"{"groups":[{"entries":["x"],"other":1,"name":"ab"}]}"#),
            "invalid whitelist document: group 'ab': invalid whitelist entry 'x': not an IP address or CIDR block"
        );
        assert_eq!(
            err(r#"{"groups":[{"other":1,"entries":["x"],"name":"ab"}]}"#),
            "invalid whitelist document: unknown field 'other' in groups[0]"
        );
        assert_eq!(
            err(r#"{"groups":[{"entries":{},"name":"ab"}]}"#),
            "invalid whitelist document: group 'ab' needs an \"entries\" array"
        );
        assert_eq!(
            err(r#"{"groups":[{"name":7,"entries":[]}]}"#),
            "invalid whitelist document: groups[0] needs a \"name\" string"
        );
        assert_eq!(err(r#"{"groups":[[]]}"#), "invalid whitelist document: groups[0] must be an object");
        assert_eq!(err(r#"{"groups":[]} x"#), "invalid whitelist document: trailing characters at line 1 column 15");
    }

    #[test]
    fn too_many_items_are_refused_before_parsing() {
        let groups = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!(r#"{{"name":"g{i}","entries":["bad"]}}"#)).collect();
            format!(r#"{{"groups":[{}]}}"#, list.join(","))
        };
        assert_eq!(client_err(&groups(4)), "too many groups in one document: 4, the limit is 3 (whitelist.max-groups)");
        assert!(client_err(&groups(3)).contains("invalid whitelist entry 'bad'"));
        // The largest group is named; duplicates count; an unnamed group by position.
        let doc = r#"{"groups":[{"name":"aa","entries":["1","2","3","4","5"]},{"entries":["1","1","1","1","1","1"]}]}"#;
        assert_eq!(
            client_err(doc),
            "too many entries in groups[1] of the document: 6, the limit is 4 (whitelist.max-entries-per-group)"
        );
        let doc = r#"{"groups":[{"entries":["1","2","3","4","5"],"name":"a\nb"}]}"#;
        assert_eq!(
            client_err(doc),
            "too many entries in group 'a\\x0ab' of the document: 5, the limit is 4 (whitelist.max-entries-per-group)"
        );
        // Malformed JSON is named as such, the counts unknown.
        assert_eq!(
            client_err(r#"{"groups":[1,2,3,4"#),
            "invalid whitelist document: EOF while parsing a list at line 1 column 18"
        );
        // Trusted documents are not counted.
        assert_eq!(
            parse_document(groups(4).as_bytes(), None).unwrap_err().to_string(),
            "invalid whitelist document: group 'g0': invalid whitelist entry 'bad': not an IP address or CIDR block"
        );
        // A large document is counted without building it.
        let many = format!(r#"{{"groups":[{{"name":"ab","entries":[{}"::1"]}}]}}"#, r#""::1","#.repeat(1_000_000));
        assert_eq!(
            count_document(many.as_bytes()).unwrap(),
            Counts { groups: 1, largest: 1_000_001, largest_label: String::from("group 'ab'") }
        );
        assert_eq!(
            client_err(&many),
            "too many entries in group 'ab' of the document: 1000001, the limit is 4 (whitelist.max-entries-per-group)"
        );
    }

    #[test]
    fn clients_cannot_pin_the_version() {
        let doc = |v: u64| format!(r#"{{"groups":[{{"name":"ab","entries":["10.0.0.1"]}}],"version":{v}}}"#);
        assert_eq!(
            client_err(&doc(MAX_CLIENT_VERSION + 1)),
            "invalid whitelist document: \"version\" must be an integer from 0 to 9007199254740991"
        );
        let top = parse_document(doc(MAX_CLIENT_VERSION).as_bytes(), Some(&LIMITS)).unwrap();
        let w = Whitelist::default()
            .plan(Change::Replace { groups: top.groups, version: top.version }, Some(&LIMITS))
            .unwrap()
            .next
            .unwrap();
        assert_eq!(w.version(), MAX_CLIENT_VERSION);
        // Every later change still moves it.
        let next = parse_document(doc(0).replace("10.0.0.1", "10.0.0.2").as_bytes(), Some(&LIMITS)).unwrap();
        let w = w
            .plan(Change::Replace { groups: next.groups, version: next.version }, Some(&LIMITS))
            .unwrap()
            .next
            .unwrap();
        assert_eq!(w.version(), MAX_CLIENT_VERSION + 1);
        // The primary or the AOF carries whatever version it has.
        let carried = parse_document(doc(MAX_VERSION).as_bytes(), None).unwrap();
        assert_eq!(carried.version, MAX_VERSION);
        let w =
            w.plan(Change::Install { groups: carried.groups, version: carried.version }, None).unwrap().next.unwrap();
        assert_eq!(w.version(), MAX_VERSION);
    }
}

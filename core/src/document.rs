//! The whole whitelist as one JSON document (`WHITELIST.EXPORT` / `IMPORT`):
//!
//! ```json
//! {"version":7,"groups":[{"name":"default","attribute":"show","entries":["10.0.0.0/8"]}]}
//! ```
//!
//! Groups are listed in name order; entries in their stored order and
//! canonical form. Reading is strict: unknown fields, repeated groups and
//! invalid names or entries are errors.

use std::collections::HashSet;
use std::fmt;

use serde_json::{json, Map, Value};

use crate::entry::parse_entry;
use crate::name::{Attribute, GroupName};
use crate::shown::Shown;
use crate::store::{GroupSpec, Whitelist};

pub use crate::store::MAX_VERSION;

/// A refused document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentError(String);

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid whitelist document: {}", self.0)
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
    let groups: Vec<Value> = w
        .groups()
        .iter()
        .map(|g| {
            let entries: Vec<String> = g.entries().iter().map(|e| e.to_string()).collect();
            json!({"name": g.name().as_str(), "attribute": g.attribute().as_str(), "entries": entries})
        })
        .collect();
    json!({"version": w.version(), "groups": groups}).to_string()
}

fn fail<T>(what: impl Into<String>) -> Result<T, DocumentError> {
    Err(DocumentError(what.into()))
}

fn only_fields(obj: &Map<String, Value>, allowed: &[&str], context: &str) -> Result<(), DocumentError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => fail(format!("unknown field '{}' in {context}", Shown::new(k.as_bytes()))),
        None => Ok(()),
    }
}

/// Parses and validates a document.
pub fn parse_document(raw: &[u8]) -> Result<Document, DocumentError> {
    let value: Value = serde_json::from_slice(raw).or_else(|e| fail(e.to_string()))?;
    let Value::Object(top) = value else {
        return fail("expected a JSON object with \"groups\"");
    };
    only_fields(&top, &["version", "groups"], "the document")?;
    let version = match top.get("version") {
        None => 0,
        Some(v) => match v.as_u64() {
            Some(n) if n <= MAX_VERSION => n,
            _ => return fail(format!("\"version\" must be an integer from 0 to {MAX_VERSION}")),
        },
    };
    let Some(Value::Array(list)) = top.get("groups") else {
        return fail("\"groups\" must be an array");
    };
    let mut groups = Vec::with_capacity(list.len());
    let mut names = HashSet::with_capacity(list.len());
    for (i, g) in list.iter().enumerate() {
        let spec = parse_group(g, i)?;
        if !names.insert(spec.name.clone()) {
            return fail(format!("group '{}' appears twice", spec.name));
        }
        groups.push(spec);
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Document { groups, version })
}

fn parse_group(g: &Value, i: usize) -> Result<GroupSpec, DocumentError> {
    let Value::Object(obj) = g else {
        return fail(format!("groups[{i}] must be an object"));
    };
    only_fields(obj, &["name", "attribute", "entries"], &format!("groups[{i}]"))?;
    let Some(Value::String(raw_name)) = obj.get("name") else {
        return fail(format!("groups[{i}] needs a \"name\" string"));
    };
    let name = GroupName::parse(raw_name.as_bytes()).or_else(|e| fail(e.to_string()))?;
    let attribute = match obj.get("attribute") {
        None => Attribute::Show,
        Some(Value::String(a)) if a == "show" => Attribute::Show,
        Some(Value::String(a)) if a == "hidden" => Attribute::Hidden,
        Some(_) => return fail(format!("group '{name}': \"attribute\" must be \"show\" or \"hidden\"")),
    };
    let Some(Value::Array(raw_entries)) = obj.get("entries") else {
        return fail(format!("group '{name}' needs an \"entries\" array"));
    };
    let mut entries = Vec::with_capacity(raw_entries.len());
    let mut seen = HashSet::with_capacity(raw_entries.len());
    for item in raw_entries {
        let Value::String(text) = item else {
            return fail(format!("group '{name}': entries must be strings"));
        };
        let entry = parse_entry(text.as_bytes()).or_else(|e| fail(format!("group '{name}': {e}")))?;
        if seen.insert(entry) {
            entries.push(entry);
        }
    }
    Ok(GroupSpec { name, attribute, entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;

    #[test]
    fn export_then_parse_restores_the_state() {
        let doc = parse_document(
            br#"{"version":5,"groups":[{"name":"zz","entries":["::1"]},{"name":"default","attribute":"hidden","entries":["10.0.0.0/8","192.0.2.1","10.0.0.0/8"]}]}"#,
        )
        .unwrap();
        assert_eq!(doc.version, 5);
        assert_eq!(doc.groups[0].name.as_str(), "default");
        assert_eq!(doc.groups[0].entries.len(), 2);
        let w = Whitelist::default()
            .plan(Change::Replace { groups: doc.groups, version: doc.version }, None)
            .unwrap()
            .next
            .unwrap();
        let text = export(&w);
        assert_eq!(
            text,
            r#"{"groups":[{"attribute":"hidden","entries":["10.0.0.0/8","192.0.2.1"],"name":"default"},{"attribute":"show","entries":["::1"],"name":"zz"}],"version":5}"#
        );
        let again = parse_document(text.as_bytes()).unwrap();
        assert_eq!(again.version, 5);
        assert_eq!(again.groups.len(), 2);
    }

    #[test]
    fn empty_document() {
        let doc = parse_document(br#"{"groups":[]}"#).unwrap();
        assert_eq!(doc, Document { groups: vec![], version: 0 });
        assert_eq!(export(&Whitelist::default()), r#"{"groups":[],"version":0}"#);
    }

    #[test]
    fn errors_are_specific() {
        let err = |s: &str| parse_document(s.as_bytes()).unwrap_err().to_string();
        assert!(err("not json").starts_with("invalid whitelist document: expected ident at line 1 column 2"));
        assert_eq!(err("[]"), "invalid whitelist document: expected a JSON object with \"groups\"");
        assert_eq!(err("{}"), "invalid whitelist document: \"groups\" must be an array");
        assert_eq!(
            err(r#"{"groups":[],"extra":1}"#),
            "invalid whitelist document: unknown field 'extra' in the document"
        );
        assert_eq!(
            err(r#"{"groups":[],"version":-1}"#),
            "invalid whitelist document: \"version\" must be an integer from 0 to 9223372036854775807"
        );
        assert_eq!(
            err(r#"{"groups":[],"version":9223372036854775808}"#),
            "invalid whitelist document: \"version\" must be an integer from 0 to 9223372036854775807"
        );
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
            err(r#"{"groups":[{"name":"ab","entries":[1]}]}"#),
            "invalid whitelist document: group 'ab': entries must be strings"
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
}

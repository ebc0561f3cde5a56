//! JSON document parsing (`WHITELIST.IMPORT`): `document::parse_document` on
//! arbitrary bytes.
//!
//! Properties beyond "no panic":
//! - a parsed document is valid: groups in name order without repeats, entries
//!   canonical and unique per group, version at most `MAX_VERSION`;
//! - it round-trips: restored as a whitelist, its export parses to the same
//!   document, and its aux encoding decodes to the same groups;
//! - an error starts with "invalid whitelist document: ", holds no CR/LF (it
//!   becomes an error reply) and stays short;
//! - what an ordinary client's IMPORT accepts (counted against the limits,
//!   version capped), the primary's accepts alike.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use whitelist_core::document::{export, parse_document, MAX_VERSION};
use whitelist_core::encoding::{decode, encode};
use whitelist_core::entry::Entry;
use whitelist_core::{GroupSpec, Limits, Whitelist};

const MAX_ERROR: usize = 1024;

fn specs(w: &Whitelist) -> Vec<GroupSpec> {
    w.groups()
        .iter()
        .map(|g| GroupSpec { name: g.name().clone(), attribute: g.attribute(), entries: g.entries().to_vec(), meta: Vec::new(), usage: Vec::new(), users: g.users().to_vec() })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_groups: 4, max_entries_per_group: 8 };
    if let Ok(client) = parse_document(data, Some(&limits)) {
        assert_eq!(parse_document(data, None).as_ref(), Ok(&client), "accepted from a client only");
    }
    match parse_document(data, None) {
        Ok(doc) => {
            assert!(doc.version <= MAX_VERSION);
            assert!(doc.groups.windows(2).all(|p| p[0].name < p[1].name), "groups out of order or repeated");
            for g in &doc.groups {
                let unique: HashSet<&Entry> = g.entries.iter().collect();
                assert_eq!(unique.len(), g.entries.len(), "group {} holds an entry twice", g.name);
                for e in &g.entries {
                    assert_eq!(Entry::from_canonical(e.net()), Some(*e), "{e} is not canonical");
                }
            }
            let w = Whitelist::restore(doc.groups.clone(), doc.version);
            assert_eq!(specs(&w), doc.groups);
            let text = export(&w);
            let again =
                parse_document(text.as_bytes(), None).unwrap_or_else(|e| panic!("the export {text} is refused: {e}"));
            assert_eq!(again, doc, "the export parses to another document");
            let back = decode(&encode(&w)).expect("the aux encoding is refused");
            assert_eq!((back.version(), specs(&back)), (doc.version, doc.groups), "the aux encoding changes it");
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with("invalid whitelist document: "), "{text:?}");
            assert!(!text.contains(['\r', '\n']), "line break in the error {text:?}");
            assert!(text.len() <= MAX_ERROR, "an error of {} bytes", text.len());
        }
    }
});

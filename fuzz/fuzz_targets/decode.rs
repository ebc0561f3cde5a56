//! Aux data decoding: `encoding::decode` on arbitrary bytes.
//!
//! The CRC-32 at the end would stop almost every mutation at the checksum, so
//! each input is decoded twice: as it is, and with its last four bytes replaced
//! by the checksum of the rest ("resealed"), which lets the fuzzer reach the
//! content checks.
//!
//! Properties beyond "no panic":
//! - the encoding is canonical: a payload that decodes re-encodes to bytes that
//!   decode to the same groups and version, and re-encode to themselves; a
//!   payload of the current version with no section beyond the whitelist
//!   re-encodes to exactly its own bytes (older versions and skipped optional
//!   sections are written in the current form);
//! - a decoded whitelist is valid: names in order without repeats, entries
//!   canonical and unique per group, the entry count adds up; its JSON export
//!   parses back to the same groups;
//! - an error is one line (it goes to the server log).

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use whitelist_core::document::{export, parse_document};
use whitelist_core::encoding::{decode, encode, ENCODING_VERSION};
use whitelist_core::entry::Entry;
use whitelist_core::Whitelist;

type Summary = (u64, Vec<(String, &'static str, Vec<Entry>)>);

fn summary(w: &Whitelist) -> Summary {
    let groups =
        w.groups().iter().map(|g| (g.name().to_string(), g.attribute().as_str(), g.entries().to_vec())).collect();
    (w.version(), groups)
}

fn check(data: &[u8]) {
    match decode(data) {
        Ok(w) => {
            let s = summary(&w);
            let names: Vec<&str> = s.1.iter().map(|g| g.0.as_str()).collect();
            assert!(names.windows(2).all(|p| p[0] < p[1]), "groups out of order: {names:?}");
            let mut total = 0;
            for (name, _, entries) in &s.1 {
                let unique: HashSet<&Entry> = entries.iter().collect();
                assert_eq!(unique.len(), entries.len(), "group {name} holds an entry twice");
                for e in entries {
                    assert_eq!(Entry::from_canonical(e.net()), Some(*e), "{e} is not canonical");
                }
                total += entries.len();
            }
            assert_eq!(w.entry_count(), total);
            let bytes = encode(&w);
            let again = decode(&bytes).expect("a re-encoded payload is refused");
            assert_eq!(summary(&again), s);
            assert_eq!(encode(&again), bytes, "a re-encoded payload re-encodes to other bytes");
            let only_the_whitelist = data.get(4) == Some(&ENCODING_VERSION)
                && data.get(5) == Some(&1)
                && data.get(7..15).map(|l| l.iter().rev().fold(0u64, |n, b| n << 8 | u64::from(*b)))
                    == Some(data.len() as u64 - 19);
            if only_the_whitelist {
                assert_eq!(bytes, data, "a decoded payload re-encodes to other bytes");
            }
            let doc = parse_document(export(&w).as_bytes(), None).expect("the JSON export is refused");
            let restored = Whitelist::restore(doc.groups, doc.version);
            assert_eq!(summary(&restored), s, "the JSON export holds other groups");
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(['\r', '\n']), "line break in {text:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 4 {
        let mut sealed = data.to_vec();
        let body = sealed.len() - 4;
        let crc = crc32fast::hash(&sealed[..body]);
        sealed[body..].copy_from_slice(&crc.to_le_bytes());
        if sealed != data {
            check(&sealed);
        }
    }
});

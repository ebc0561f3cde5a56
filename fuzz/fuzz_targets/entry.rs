//! Entry parsing: `parse_entry`, `parse_entries`, `parse_address` and
//! `parse_peer` on arbitrary bytes (one argument, which may hold commas).
//!
//! Properties beyond "no panic":
//! - a parsed entry is canonical: its Display parses back to the same entry and
//!   prints the same text again, and `Entry::from_canonical` accepts its network;
//! - an error names the item and one reason in one line (no CR/LF);
//! - `parse_entries` agrees with `parse_entry` over the comma-separated items;
//! - `parse_address` agrees with `parse_entry` on single addresses, and
//!   `parse_peer` (Redis's own, lenient spelling) reads what `parse_address` reads
//!   and what an address prints as.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whitelist_core::entry::{parse_entries, Entry};
use whitelist_core::{parse_address, parse_entry, parse_peer};

fn one_line(text: &str) {
    assert!(!text.contains(['\r', '\n']), "line break in {text:?}");
}

fn check_item(item: &[u8]) -> Result<Entry, String> {
    match parse_entry(item) {
        Ok(entry) => {
            let shown = entry.to_string();
            let again = parse_entry(shown.as_bytes()).unwrap_or_else(|e| panic!("{shown:?} does not parse back: {e}"));
            assert_eq!(again, entry, "{shown:?} parses back to another entry");
            assert_eq!(again.to_string(), shown, "the canonical form is not stable");
            assert_eq!(Entry::from_canonical(entry.net()), Some(entry), "{shown} is not canonical");
            Ok(entry)
        }
        Err(e) => {
            let text = e.to_string();
            one_line(&text);
            assert!(text.starts_with("invalid whitelist entry '"), "{text}");
            Err(text)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Every item on its own, then the whole argument as a list.
    let mut first_error = None;
    let mut items = Vec::new();
    for item in data.split(|&b| b == b',') {
        match check_item(item) {
            Ok(entry) => items.push(entry),
            Err(text) => {
                first_error.get_or_insert(text);
            }
        }
    }
    match (parse_entries([data]), first_error) {
        (Ok(list), None) => assert_eq!(list, items),
        (Err(e), Some(text)) => assert_eq!(e.to_string(), text, "parse_entries names another item"),
        (got, expected) => panic!("parse_entries gave {got:?}, parse_entry gave error {expected:?}"),
    }

    // A single address for WHITELIST.CHECK.
    match parse_address(data) {
        Ok(addr) => {
            assert_eq!(parse_entry(data).ok(), Some(Entry::host(addr)), "parse_entry disagrees with parse_address");
            let shown = addr.to_string();
            assert_eq!(parse_address(shown.as_bytes()).ok(), Some(addr), "{shown:?} does not parse back");
            assert_eq!(parse_peer(shown.as_bytes()), Some(addr), "parse_peer cannot read {shown:?}");
            assert_eq!(parse_peer(data), Some(addr), "parse_peer disagrees with parse_address");
        }
        Err(e) => {
            let text = e.to_string();
            one_line(&text);
            assert!(text.starts_with("invalid address '"), "{text}");
            if !data.contains(&b'/') {
                assert!(parse_entry(data).is_err(), "parse_entry accepts what parse_address refuses");
            }
        }
    }

    // The peer string Redis hands over: lenient, never panics; what it reads
    // prints as an address that reads back the same.
    if let Some(addr) = parse_peer(data) {
        let shown = addr.to_string();
        assert_eq!(parse_peer(shown.as_bytes()), Some(addr), "{shown:?} does not parse back as a peer");
        assert_eq!(parse_address(shown.as_bytes()).ok(), Some(addr), "{shown:?} is not a valid address");
    }
});

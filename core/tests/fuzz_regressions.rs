//! Inputs found by the fuzz targets (fuzz/fuzz_targets, `make fuzz`), each fed
//! to the function the target calls, plus tricky inputs taken from the fuzz
//! corpora with their exact expected results.
//!
//! A finding is kept here as the smallest input that reproduced it, asserting
//! the property the target checks (no panic, one-line errors, round trips).

use whitelist_core::clients::{parse_client_list, ListedClient};
use whitelist_core::document::{export, parse_document};
use whitelist_core::encoding::{decode, encode};
use whitelist_core::settings::{setting, Key};
use whitelist_core::{parse, parse_address, parse_entry, parse_peer, Addr, Command, Error, Peer, Verb, Whitelist};

fn one_line(text: &str) {
    assert!(!text.contains(['\r', '\n']), "line break in {text:?}");
}

/// An aux payload of encoding version 1 (what the first module wrote, still
/// read): `body` is everything after the
/// header, the checksum is added.
fn payload(version: u64, groups: u32, body: &[u8]) -> Vec<u8> {
    let mut b = b"WLST\x01".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&groups.to_le_bytes());
    b.extend_from_slice(body);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

// ---- Findings -------------------------------------------------------------

/// Finding (entry, client_list): `parse_peer` multiplied its octet before
/// checking the digit count, so ten or more digits overflowed `u32` (a panic
/// wherever overflow checks are on, as in the debug module the tests load).
#[test]
fn peer_with_ten_digits_is_not_an_address() {
    assert_eq!(parse_peer(b"9999999999"), None);
    assert_eq!(parse_peer(b"9999999999.1.1.1"), None);
    assert_eq!(parse_peer(b"1.1.1.99999999999999999999"), None);
    assert_eq!(parse_peer(b"4294967296"), None);
}

/// The same overflow reached through `CLIENT LIST` output.
#[test]
fn client_list_with_a_long_numeric_host() {
    assert_eq!(
        parse_client_list(b"id=1 addr=9999999999:1 flags=N"),
        [ListedClient {
            id: 1,
            peer: Peer::Unknown,
            port: 1,
            is_primary_link: false,
            is_replica: false,
            is_closing: false
        }]
    );
}

/// Finding (document, command): an unknown JSON field is named in the error
/// as it was decoded, so an escaped `\n` or `\r` in the key became a raw line
/// break inside the error reply of `WHITELIST.IMPORT`.
#[test]
fn unknown_field_with_a_line_break_stays_one_line() {
    for doc in [
        &br#"{"groups":[],"\n":1}"#[..],
        br#"{"groups":[],"\r":1}"#,
        br#"{"groups":[{"name":"ab","entries":[],"\n":1}]}"#,
        br#"{"groups":[{"name":"ab","entries":[]},{"name":"cd","entries":[],"a\r\nb":1}]}"#,
    ] {
        let e = parse_document(doc, None).unwrap_err().to_string();
        assert!(e.starts_with("invalid whitelist document: unknown field '"), "{e}");
        one_line(&e);
        let args: Vec<&[u8]> = vec![doc];
        one_line(&parse(Verb::Import, &args, None).unwrap_err().to_string());
    }
}

/// Finding (decode): aux data may carry a version above `MAX_VERSION`
/// (2^63 - 1), which `WHITELIST.EXPORT` then prints and `WHITELIST.IMPORT`
/// refuses: whatever decode accepts, its export must import again. (The same
/// state is reachable without crafted data: IMPORT at version 2^63 - 1, then
/// any change.)
#[test]
fn a_decoded_version_survives_export_and_import() {
    for version in [1u64 << 63, u64::MAX] {
        let data = payload(version, 0, b"");
        if let Ok(w) = decode(&data) {
            let text = export(&w);
            let doc = parse_document(text.as_bytes(), None).unwrap_or_else(|e| panic!("{text} is refused: {e}"));
            assert_eq!(doc.version, w.version());
        }
    }
}

/// Finding (config, when start-up values were scanned from the config file):
/// a value holding a line break split the server log line. Values are now
/// validated by the setter; its error is the log line and the reply.
#[test]
fn a_setting_value_with_a_line_break_stays_one_line() {
    let e = setting(Key::Mode).parse(b"monitor\r\nx").unwrap_err().to_string();
    one_line(&e);
    assert_eq!(e, "invalid whitelist.mode 'monitor\\x0d\\x0ax': expected enforce, monitor or off");
}

// ---- Tricky inputs from the corpora, exact results --------------------------

fn canon(s: &str) -> String {
    parse_entry(s.as_bytes()).unwrap().to_string()
}

fn entry_err(s: &[u8]) -> String {
    parse_entry(s).unwrap_err().to_string()
}

#[test]
fn entries_from_the_corpus() {
    // The whole IPv4-mapped block is the whole IPv4 space; a neighbour stays IPv6.
    assert_eq!(canon("::ffff:0:0/96"), "0.0.0.0/0");
    assert_eq!(canon("::fffb:0:0/96"), "::fffb:0:0/96");
    // Upper case and leading zeros within a group are fine in IPv6.
    assert_eq!(canon("0003:D98::"), "3:d98::");
    assert_eq!(canon("02B8::0:1/128"), "2b8::1");
    // A single zero group is not shortened to "::" (RFC 5952).
    assert_eq!(canon("::f:0:f:0:ff:0:f00"), "0:f:0:f:0:ff:0:f00");
    assert_eq!(entry_err(b"::fff0/104"), "invalid whitelist entry '::fff0/104': host bits set, did you mean ::/104?");
    assert_eq!(
        entry_err(b"0.0.0.0/\xff5"),
        "invalid whitelist entry '0.0.0.0/\\xff5': prefix length must be a number from 0 to 32"
    );
    assert_eq!(
        entry_err(b"::dff8/1.0.0"),
        "invalid whitelist entry '::dff8/1.0.0': prefix length must be a number from 0 to 128"
    );
    assert_eq!(entry_err(b":\xffff0:\r"), "invalid whitelist entry ':\\xffff0:\\x0d': spaces are not allowed");
    assert_eq!(entry_err(b"10.0.0.1\x00"), "invalid whitelist entry '10.0.0.1\\x00': not an IP address or CIDR block");
    let long = [b'1'; 100];
    assert_eq!(
        entry_err(&long),
        format!("invalid whitelist entry '{}...': not an IP address or CIDR block", "1".repeat(64))
    );
}

#[test]
fn addresses_and_peers_from_the_corpus() {
    assert_eq!(parse_address(b"::ffff:0.0.0.0").unwrap(), Addr::V4(0));
    assert_eq!(parse_address(b"::").unwrap(), Addr::V6(0));
    assert_eq!(
        parse_address(b"1.2.3.4,5.6.7.8").unwrap_err().to_string(),
        "invalid address '1.2.3.4,5.6.7.8': not an IP address"
    );
    // Redis's own spelling is read leniently: up to three digits an octet.
    assert_eq!(parse_peer(b"010.000.0.1"), Some(Addr::V4(0x0a00_0001)));
    assert_eq!(parse_peer(b"1.2.3.4\0\xff"), Some(Addr::V4(0x0102_0304)));
    assert_eq!(parse_peer(b"::ffff:1.2.3.4\0"), Some(Addr::V4(0x0102_0304)));
    assert_eq!(parse_peer(b"1.2.3.4 "), None);
}

#[test]
fn commands_from_the_corpus() {
    let run = |verb, args: &[&[u8]]| parse(verb, args, None);
    // Keywords are matched whole: "FORCEx" is an entry, and a bad one.
    assert_eq!(
        run(Verb::Set, &[b"ab", b"10.0.0.1", b"FORCEx"]).unwrap_err().to_string(),
        "ERR invalid whitelist entry 'FORCEx': not an IP address or CIDR block"
    );
    // An argument holding CR/LF is shown escaped.
    assert_eq!(
        run(Verb::List, &[b"all\r\n"]).unwrap_err().to_string(),
        "ERR syntax error: unexpected argument 'all\\x0d\\x0a': WHITELIST.LIST takes only ALL"
    );
    assert_eq!(
        run(Verb::Del, &[b"ab", b"force", b"cd"]).unwrap_err().to_string(),
        "ERR syntax error: FORCE must be the last argument"
    );
    assert_eq!(
        run(Verb::Import, &[br#"{"groups":[]}"#, b"IFVERSION"]).unwrap_err().to_string(),
        "ERR syntax error: IFVERSION must be followed by a version from 0 to 9223372036854775807"
    );
    assert!(matches!(
        run(Verb::Import, &[br#"{"groups":[]}"#, b"ifversion", b"9223372036854775807"]),
        Ok(Command::Import { if_version: Some(9_223_372_036_854_775_807), force: false, .. })
    ));
    assert_eq!(
        run(Verb::Import, &[br#"{"groups":[]}"#, b"ifversion", b"9223372036854775808"]).unwrap_err().to_string(),
        "ERR syntax error: IFVERSION must be followed by a version from 0 to 9223372036854775807"
    );
    assert_eq!(run(Verb::Check, &[b"10.0.0.1", b"x"]), Err(Error::WrongArity));
}

#[test]
fn aux_payloads_from_the_corpus() {
    // A hidden group of two IPv6 entries, and the exact bytes it encodes to.
    let mut body = b"\x04zz_9\x01".to_vec();
    body.extend_from_slice(&2u32.to_le_bytes());
    body.extend_from_slice(&[6, 0]);
    body.extend_from_slice(&[0; 16]);
    body.extend_from_slice(&[6, 64, 0xfe, 0x80]);
    body.extend_from_slice(&[0; 14]);
    let data = payload(99, 1, &body);
    let w = decode(&data).unwrap();
    // Written again, it takes the current encoding and reads back the same.
    let again = encode(&w);
    assert_eq!(&again[..5], b"WLST\x02");
    assert_eq!(export(&decode(&again).unwrap()), export(&w));
    assert_eq!(
        export(&w),
        r#"{"groups":[{"attribute":"hidden","entries":["::/0","fe80::/64"],"name":"zz_9"}],"version":99}"#
    );
    // A name ending in "_" is refused even with a good checksum.
    let mut body = b"\x03ab_\x00".to_vec();
    body.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        decode(&payload(1, 1, &body)).unwrap_err().to_string(),
        "corrupt data at byte 21: invalid group name 'ab_': 2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit"
    );
    // An IPv4-mapped /128 must be stored as IPv4 (the offset is past the entry).
    let mut body = b"\x02ab\x00".to_vec();
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&[6, 128]);
    body.extend_from_slice(&"::ffff:10.0.0.1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    assert_eq!(
        decode(&payload(1, 1, &body)).unwrap_err().to_string(),
        "corrupt data at byte 43: group 'ab' entry 0: ::ffff:10.0.0.1/128 is not in canonical form"
    );
}

#[test]
fn documents_from_the_corpus() {
    let doc = parse_document(
        br#"{"groups":[{"name":"zz","entries":["::1","::ffff:10.0.0.1"]},{"name":"a_1","attribute":"hidden","entries":["0.0.0.0/0","::/0","0.0.0.0/0"]}]}"#,
        None,
    )
    .unwrap();
    let w = Whitelist::restore(doc.groups, doc.version);
    assert_eq!(
        export(&w),
        r#"{"groups":[{"attribute":"hidden","entries":["0.0.0.0/0","::/0"],"name":"a_1"},{"attribute":"show","entries":["::1","10.0.0.1"],"name":"zz"}],"version":0}"#
    );
    let err = |s: &[u8]| parse_document(s, None).unwrap_err().to_string();
    assert_eq!(
        err(br#"{"groups":[],"version":1.0}"#),
        "invalid whitelist document: \"version\" must be an integer from 0 to 9223372036854775807"
    );
    assert_eq!(
        err(br#"{"groups":[{"name":"ab","entries":["10.0.0.0/8,::1"]}]}"#),
        "invalid whitelist document: group 'ab': invalid whitelist entry '10.0.0.0/8,::1': prefix length must be a number from 0 to 32"
    );
    assert_eq!(err(br#"{"groups":{}}"#), "invalid whitelist document: \"groups\" must be an array");
}

#[test]
fn client_lists_from_the_corpus() {
    let clients = parse_client_list(
        b"id=7 addr=[::ffff:10.1.1.1]:7 flags=SMA\nid=8 addr=1.2.3.4:70000 flags=N\nid=9 addr=[::1:5 flags=N\nid=10 id=11 addr=/x:0 flags=xU\r",
    );
    let summary: Vec<(u64, Peer, u16, bool, bool, bool)> =
        clients.iter().map(|c| (c.id, c.peer, c.port, c.is_primary_link, c.is_replica, c.is_closing)).collect();
    assert_eq!(
        summary,
        [
            (7, Peer::Ip(Addr::V4(0x0a01_0101)), 7, true, true, true),
            // "[::1" lacks its closing bracket: read as the whole host, not an address.
            (9, Peer::Unknown, 5, false, false, false),
            // The last id= wins; flags hold the trailing CR but still say U.
            (11, Peer::Unix, 0, false, false, false),
        ]
    );
}

#[test]
fn config_values_from_the_corpus() {
    assert_eq!(setting(Key::Mode).parse(b"MONITOR").unwrap().to_string(), "monitor");
    assert_eq!(setting(Key::AllowLoopback).parse(b"Yes").unwrap().to_string(), "yes");
    assert_eq!(
        setting(Key::MaxGroups).parse(b"010").unwrap_err().to_string(),
        "invalid whitelist.max-groups '010': expected an integer from 1 to 10000"
    );
    assert_eq!(
        setting(Key::MaxEntriesPerGroup).parse(b"10000001").unwrap_err().to_string(),
        "invalid whitelist.max-entries-per-group '10000001': expected an integer from 1 to 1000000"
    );
    assert_eq!(
        setting(Key::Mode).parse(b"a'b\\c\0\r\n\xc3\xb6").unwrap_err().to_string(),
        "invalid whitelist.mode 'a\\'b\\\\c\\x00\\x0d\\x0a\\xc3\\xb6': expected enforce, monitor or off"
    );
}

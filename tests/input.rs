//! Big and hostile input against a real server: arguments and documents
//! naming more items than the limits allow are refused before they are built
//! (peak memory stays within 2.5 times the argument, the server's own copy
//! included), a client cannot pin the version, and a JSON key given twice is
//! refused by name.

mod common;

use common::{counter, Client, Reply, Server};

/// The size of the big arguments: large enough that building the entries
/// would cost gigabytes, small enough for a test.
const BIG: usize = 200 << 20;

fn export(c: &mut Client) -> String {
    c.call(&["WHITELIST.EXPORT"]).text()
}

fn version(c: &mut Client) -> u64 {
    counter(c, "whitelist_version")
}

/// A numeric field of `INFO memory`.
fn memory(c: &mut Client, field: &str) -> u64 {
    let text = c.call(&["INFO", "memory"]).text();
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.strip_prefix(':')))
        .unwrap_or_else(|| panic!("INFO memory has no {field}"));
    value.trim().parse().unwrap_or_else(|e| panic!("INFO memory {field}:{value}: {e}"))
}

/// Sends `args` (the last one big) to a fresh server holding one group,
/// asserts the exact error reply, that the whitelist and its version are
/// unchanged, and that the server's peak memory rose by at most 2.5 times the
/// arguments. (The peak never falls, so each measure needs its own server.)
fn refused_within_budget(args: &[&[u8]], error: &str) {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "default", "10.0.0.0/8"]), Reply::Int(1));
    let before = export(&mut a);
    let v = version(&mut a);
    let used_before = memory(&mut a, "used_memory");
    let size = args.iter().map(|x| x.len()).sum::<usize>() as u64;
    let reply = a.call_bytes(args);
    assert_eq!(reply, Reply::err(error));
    let peak = memory(&mut a, "used_memory_peak");
    let rise = peak.saturating_sub(used_before);
    eprintln!("{} of {size} bytes: peak memory rose by {rise} bytes", String::from_utf8_lossy(args[0]));
    assert!(rise <= size * 5 / 2, "peak memory rose by {rise} bytes for an argument of {size} bytes");
    assert_eq!(export(&mut a), before, "the whitelist changed");
    assert_eq!(version(&mut a), v, "the version changed");
}

#[test]
fn a_200_mb_entry_argument_is_refused_before_it_is_parsed() {
    let repeats = BIG / "10.0.0.1,".len();
    let arg = "10.0.0.1,".repeat(repeats);
    // One item more than commas: the trailing comma names an empty one.
    let error = format!(
        "ERR too many entries in one command: {}, the limit is 1000 (whitelist.max-entries-per-group)",
        repeats + 1
    );
    refused_within_budget(&[b"WHITELIST.SET", b"default", arg.as_bytes()], &error);
    refused_within_budget(&[b"WHITELIST.ADD", b"default", arg.as_bytes()], &error);
}

#[test]
fn a_200_mb_document_is_refused_before_it_is_parsed() {
    let item = r#""10.0.0.1","#;
    let repeats = BIG / item.len();
    let doc = format!(r#"{{"groups":[{{"name":"bulk","entries":[{}"10.0.0.1"]}}]}}"#, item.repeat(repeats));
    let error = format!(
        "ERR too many entries in group 'bulk' of the document: {}, the limit is 1000 (whitelist.max-entries-per-group)",
        repeats + 1
    );
    refused_within_budget(&[b"WHITELIST.IMPORT", doc.as_bytes()], &error);
    drop(doc);
    // As many groups, each small.
    let group = r#"{"name":"ab","entries":[]},"#;
    let repeats = BIG / group.len();
    let doc = format!(r#"{{"groups":[{}{{"name":"cd","entries":[]}}],"version":1}}"#, group.repeat(repeats));
    let error =
        format!("ERR too many groups in one document: {}, the limit is 100 (whitelist.max-groups)", repeats + 1);
    refused_within_budget(&[b"WHITELIST.IMPORT", doc.as_bytes(), b"FORCE"], &error);
}

#[test]
fn items_beyond_the_configured_limits_are_refused_before_the_arguments() {
    let s = Server::start(&["--whitelist.max-entries-per-group", "3", "--whitelist.max-groups", "2"]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "default", "10.0.0.0/8"]), Reply::Int(1));
    let before = export(&mut a);
    let cases: &[(&[&str], &str)] = &[
        (
            &["WHITELIST.SET", "Bad", "10.0.0.1,10.0.0.1", "x", "10.0.0.1"],
            "ERR too many entries in one command: 4, the limit is 3 (whitelist.max-entries-per-group)",
        ),
        (
            &["WHITELIST.REMOVE", "default", "1,2,3,4"],
            "ERR too many entries in one command: 4, the limit is 3 (whitelist.max-entries-per-group)",
        ),
        (&["WHITELIST.SET", "default", "1,2,3,4", "FORCE", "FORCE"], "ERR syntax error: FORCE given twice"),
        (
            &["WHITELIST.DEL", "aa", "bb", "Cc", "FORCE"],
            "ERR too many groups in one command: 3, the limit is 2 (whitelist.max-groups)",
        ),
        (
            &["WHITELIST.IMPORT", r#"{"groups":[{"name":"aa","entries":[]},{"name":"bb","entries":[]},{}]}"#],
            "ERR too many groups in one document: 3, the limit is 2 (whitelist.max-groups)",
        ),
        // Under the count, the first bad argument from the left.
        (
            &["WHITELIST.SET", "Bad", "10.0.0.1", "x"],
            "ERR invalid group name 'Bad': 2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit",
        ),
    ];
    for (args, error) in cases {
        assert_eq!(a.call(args), Reply::err(error), "{args:?}");
    }
    assert_eq!(export(&mut a), before);
    assert_eq!(version(&mut a), 1);
}

#[test]
fn a_client_cannot_pin_the_version() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    let doc =
        |entry: &str, v: u64| format!(r#"{{"groups":[{{"name":"default","entries":["{entry}"]}}],"version":{v}}}"#);
    let before = export(&mut a);
    assert_eq!(
        a.call(&["WHITELIST.IMPORT", &doc("10.0.0.1", 1 << 53)]),
        Reply::err("ERR invalid whitelist document: \"version\" must be an integer from 0 to 9007199254740991")
    );
    assert_eq!(
        a.call(&["WHITELIST.IMPORT", &doc("10.0.0.1", u64::MAX >> 1)]),
        Reply::err("ERR invalid whitelist document: \"version\" must be an integer from 0 to 9007199254740991")
    );
    assert_eq!(export(&mut a), before);
    assert_eq!(version(&mut a), 0);
    let top = (1u64 << 53) - 1;
    assert_eq!(a.call(&["WHITELIST.IMPORT", &doc("10.0.0.1", top)]), Reply::Int(top as i64));
    assert_eq!(version(&mut a), top);
    // Every later change still moves it, so IFVERSION still sees each one.
    assert_eq!(a.call(&["WHITELIST.ADD", "default", "10.0.0.2"]), Reply::Int(1));
    assert_eq!(version(&mut a), top + 1);
    assert_eq!(
        a.call(&["WHITELIST.IMPORT", &doc("10.0.0.3", 0), "IFVERSION", &top.to_string()]),
        Reply::err(&format!("ERR whitelist version is {}, not {top} (IFVERSION): export it again and retry", top + 1))
    );
    let expected = (top + 2) as i64;
    assert_eq!(
        a.call(&["WHITELIST.IMPORT", &doc("10.0.0.3", 0), "IFVERSION", &(top + 1).to_string()]),
        Reply::Int(expected)
    );
    assert_eq!(
        a.call(&["WHITELIST.IMPORT", &doc("10.0.0.4", 0), "IFVERSION", &(top + 1).to_string()]),
        Reply::err(&format!(
            "ERR whitelist version is {expected}, not {} (IFVERSION): export it again and retry",
            top + 1
        ))
    );
    assert_eq!(a.call(&["WHITELIST.GET", "default"]), Reply::strings(&["10.0.0.3"]));
}

#[test]
fn a_json_key_given_twice_is_refused_by_name() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "default", "10.0.0.0/8"]), Reply::Int(1));
    let before = export(&mut a);
    let cases = [
        (
            r#"{"groups":[{"name":"default","entries":["10.0.0.1"]}],"groups":[]}"#,
            "ERR invalid whitelist document: duplicate key 'groups' in the document",
        ),
        (
            r#"{"version":9,"groups":[{"name":"default","entries":["10.0.0.1"]}],"version":1}"#,
            "ERR invalid whitelist document: duplicate key 'version' in the document",
        ),
        (
            r#"{"groups":[{"name":"default","entries":["10.0.0.1"],"entries":["10.0.0.2"]}]}"#,
            "ERR invalid whitelist document: duplicate key 'entries' in groups[0]",
        ),
        (
            r#"{"groups":[{"name":"other","name":"default","entries":["10.0.0.1"]}]}"#,
            "ERR invalid whitelist document: duplicate key 'name' in groups[0]",
        ),
        (
            r#"{"groups":[{"name":"default","entries":["10.0.0.1",{"entry":"10.0.0.2","entry":"10.0.0.3"}]}]}"#,
            "ERR invalid whitelist document: duplicate key 'entry' in groups[0].entries[1]",
        ),
    ];
    for (doc, error) in cases {
        assert_eq!(a.call(&["WHITELIST.IMPORT", doc, "FORCE"]), Reply::err(error), "{doc}");
    }
    assert_eq!(export(&mut a), before);
    assert_eq!(version(&mut a), 1);
    // An entry given as an object is accepted.
    let doc = r#"{"groups":[{"name":"default","entries":[{"entry":"10.0.0.0/8"},"192.0.2.1"]}]}"#;
    assert_eq!(a.call(&["WHITELIST.IMPORT", doc, "IFVERSION", "1"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.GET", "default"]), Reply::strings(&["10.0.0.0/8", "192.0.2.1"]));
}

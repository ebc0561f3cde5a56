//! The `WHITELIST.*` commands against a real server: every reply, every error
//! text, lock-out protection, script rules, the OOM exemption and the audit
//! line. ACL rules are in `acl.rs`.

mod common;

use std::time::Duration;

use common::{counter, Client, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];

const NAME_RULE: &str = "2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit";

fn export(c: &mut Client) -> String {
    c.call(&["WHITELIST.EXPORT"]).text()
}

fn version(c: &mut Client) -> u64 {
    counter(c, "whitelist_version")
}

/// Runs `args`, asserts the exact error `error`, and that neither the
/// whitelist nor its version changed.
fn refused(c: &mut Client, args: &[&str], error: &str) {
    let before = export(c);
    let v = version(c);
    assert_eq!(c.call(args), Reply::err(error), "{args:?}");
    assert_eq!(export(c), before, "{args:?} was refused but changed the whitelist");
    assert_eq!(version(c), v, "{args:?} was refused but raised the version");
}

fn check(c: &mut Client, addr: &str) -> Reply {
    c.call(&["WHITELIST.CHECK", addr])
}

/// A `WHITELIST.CHECK` reply.
fn verdict(decision: &str, group: Option<&str>, entry: Option<&str>, reason: &str) -> Reply {
    let opt = |s: Option<&str>| s.map_or(Reply::Nil, Reply::bulk);
    Reply::Array(vec![Reply::bulk(decision), opt(group), opt(entry), Reply::bulk(reason)])
}

// ---------------------------------------------------------------- replies

#[test]
fn set_replies_entries_held_and_stores_canonical_forms() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(
        a.call(&[
            "WHITELIST.SET",
            "prod",
            "2001:DB8::0:1,::ffff:10.0.0.1",
            "10.1.2.3/32",
            "2001:db8::5/128",
            "::ffff:192.168.0.0/112,::/80",
            "10.2.0.0/16"
        ]),
        Reply::Int(7)
    );
    assert_eq!(
        a.call(&["WHITELIST.GET", "prod"]),
        Reply::strings(&[
            "2001:db8::1",
            "10.0.0.1",
            "10.1.2.3",
            "2001:db8::5",
            "192.168.0.0/16",
            "::/80",
            "10.2.0.0/16"
        ])
    );
    assert_eq!(version(&mut a), 1);
    // SET replaces (Cover); the reply is the count held now.
    assert_eq!(a.call(&["WHITELIST.SET", "prod", "10.9.0.0/16"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.GET", "prod"]), Reply::strings(&["10.9.0.0/16"]));
    assert_eq!(version(&mut a), 2);
}

#[test]
fn duplicates_are_no_ops_and_the_version_rises_only_on_change() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    // Four spellings of one entry.
    assert_eq!(
        a.call(&["WHITELIST.SET", "prod", "10.0.0.1,10.0.0.1", "10.0.0.1/32", "::ffff:10.0.0.1"]),
        Reply::Int(1)
    );
    assert_eq!(a.call(&["WHITELIST.GET", "prod"]), Reply::strings(&["10.0.0.1"]));
    assert_eq!(version(&mut a), 1);
    // The same SET again changes nothing.
    assert_eq!(a.call(&["WHITELIST.SET", "prod", "10.0.0.1"]), Reply::Int(1));
    assert_eq!(version(&mut a), 1);
    assert_eq!(a.call(&["WHITELIST.ADD", "prod", "10.0.0.1/32"]), Reply::Int(0));
    assert_eq!(version(&mut a), 1);
    assert_eq!(a.call(&["WHITELIST.REMOVE", "prod", "10.0.0.2"]), Reply::Int(0));
    assert_eq!(a.call(&["WHITELIST.DEL", "nosuch"]), Reply::Int(0));
    assert_eq!(version(&mut a), 1);
    assert_eq!(a.call(&["WHITELIST.ADD", "prod", "10.0.0.2"]), Reply::Int(1));
    assert_eq!(version(&mut a), 2);
}

#[test]
fn set_attribute_hidden_and_show_and_kept_unless_given() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.SET", "prod", "10.0.0.1"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.SET", "sys", "10.0.0.2", "attribute", "HIDDEN"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["prod"]));
    assert_eq!(a.call(&["WHITELIST.LIST", "all"]), Reply::strings(&["prod", "sys"]));
    assert_eq!(a.call(&["WHITELIST.GET"]), Reply::strings(&["prod", "10.0.0.1"]));
    assert_eq!(a.call(&["WHITELIST.GET", "sys"]), Reply::strings(&["10.0.0.2"]));
    assert_eq!(s.info_field("whitelist_group_sys"), "entries=1,hits=0,attribute=hidden,users=0");
    // New entries without ATTRIBUTE: the group stays hidden.
    assert_eq!(a.call(&["WHITELIST.SET", "sys", "10.0.0.3,10.0.0.4"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["prod"]));
    assert_eq!(s.info_field("whitelist_group_sys"), "entries=2,hits=0,attribute=hidden,users=0");
    // ADD keeps it too.
    assert_eq!(a.call(&["WHITELIST.ADD", "sys", "10.0.0.5"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["prod"]));
    // Changing only the attribute is a change.
    let v = version(&mut a);
    assert_eq!(a.call(&["WHITELIST.SET", "sys", "10.0.0.3,10.0.0.4", "10.0.0.5", "ATTRIBUTE", "show"]), Reply::Int(3));
    assert_eq!(version(&mut a), v + 1);
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["prod", "sys"]));
    assert_eq!(s.info_field("whitelist_group_sys"), "entries=3,hits=0,attribute=show,users=0");
    // A group created by SET without ATTRIBUTE, or by ADD, is shown.
    assert_eq!(a.call(&["WHITELIST.ADD", "added", "10.0.0.6"]), Reply::Int(1));
    assert_eq!(s.info_field("whitelist_group_added"), "entries=1,hits=0,attribute=show,users=0");
}

#[test]
fn add_replies_entries_newly_added_in_order() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.ADD", "ab", "10.0.0.1,10.0.0.2"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.ADD", "ab", "10.0.0.2", "10.0.0.3,10.0.0.3", "force"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "ab", "10.0.0.1", "::FFFF:10.0.0.3"]), Reply::Int(0));
    assert_eq!(a.call(&["WHITELIST.GET", "ab"]), Reply::strings(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]));
    assert_eq!(version(&mut a), 2);
}

#[test]
fn remove_replies_entries_removed_and_an_emptied_group_stays() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "keep", "192.0.2.1"]);
    assert_eq!(a.call(&["WHITELIST.SET", "ab", "10.0.0.1,10.0.0.2,10.0.0.3"]), Reply::Int(3));
    assert_eq!(a.call(&["WHITELIST.REMOVE", "ab", "::ffff:10.0.0.1", "10.0.0.9"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.REMOVE", "ab", "10.0.0.1"]), Reply::Int(0));
    assert_eq!(a.call(&["WHITELIST.REMOVE", "ab", "10.0.0.2,10.0.0.3"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.GET", "ab"]), Reply::Array(vec![]));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["ab", "keep"]));
    assert_eq!(a.call(&["WHITELIST.GET"]), Reply::strings(&["ab", "", "keep", "192.0.2.1"]));
    assert_eq!(s.info_field("whitelist_groups"), "2");
    assert_eq!(s.info_field("whitelist_entries"), "1");
    // A missing group removes nothing and is not created.
    assert_eq!(a.call(&["WHITELIST.REMOVE", "nosuch", "10.0.0.1"]), Reply::Int(0));
    assert_eq!(a.call(&["WHITELIST.GET", "nosuch"]), Reply::Nil);
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["ab", "keep"]));
}

#[test]
fn del_replies_groups_deleted() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    for g in ["aa", "bb", "cc"] {
        a.call(&["WHITELIST.SET", g, "10.0.0.1"]);
    }
    assert_eq!(a.call(&["WHITELIST.DEL", "aa", "bb", "zz", "aa"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.DEL", "aa"]), Reply::Int(0));
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["cc"]));
    assert_eq!(a.call(&["WHITELIST.GET", "aa"]), Reply::Nil);
    // Deleting the last group turns the whitelist off: only with FORCE.
    assert_eq!(a.call(&["WHITELIST.DEL", "cc", "FORCE"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::Array(vec![]));
    assert_eq!(s.info_field("whitelist_enabled"), "0");
}

#[test]
fn get_in_resp2_and_resp3_sorted_comma_joined_hidden_omitted() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.GET"]), Reply::Array(vec![]));
    assert_eq!(a.call(&["WHITELIST.GET", "nosuch"]), Reply::Nil);
    a.call(&["WHITELIST.SET", "zz", "2001:db8::/32,10.0.0.1"]);
    a.call(&["WHITELIST.SET", "aa", "10.0.0.0/8"]);
    a.call(&["WHITELIST.SET", "mm", "10.0.0.2", "ATTRIBUTE", "hidden"]);
    a.call(&["WHITELIST.SET", "empty", "10.0.0.3"]);
    a.call(&["WHITELIST.REMOVE", "empty", "10.0.0.3"]);
    assert_eq!(
        a.call(&["WHITELIST.GET"]),
        Reply::strings(&["aa", "10.0.0.0/8", "empty", "", "zz", "2001:db8::/32,10.0.0.1"])
    );
    assert_eq!(a.call(&["WHITELIST.GET", "zz"]), Reply::strings(&["2001:db8::/32", "10.0.0.1"]));
    let mut r3 = s.admin();
    assert!(matches!(r3.call(&["HELLO", "3"]), Reply::Map(_)));
    assert_eq!(
        r3.call(&["WHITELIST.GET"]),
        Reply::Map(vec![
            (Reply::bulk("aa"), Reply::bulk("10.0.0.0/8")),
            (Reply::bulk("empty"), Reply::bulk("")),
            (Reply::bulk("zz"), Reply::bulk("2001:db8::/32,10.0.0.1")),
        ])
    );
    assert_eq!(r3.call(&["WHITELIST.GET", "mm"]), Reply::strings(&["10.0.0.2"]));
    assert_eq!(r3.call(&["WHITELIST.GET", "nosuch"]), Reply::Nil);
    assert_eq!(r3.call(&["WHITELIST.LIST"]), Reply::strings(&["aa", "empty", "zz"]));
}

#[test]
fn list_and_list_all_are_sorted() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::Array(vec![]));
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::Array(vec![]));
    a.call(&["WHITELIST.SET", "prod_2", "10.0.0.1"]);
    a.call(&["WHITELIST.SET", "b_hidden", "10.0.0.1", "ATTRIBUTE", "hidden"]);
    a.call(&["WHITELIST.SET", "a9", "10.0.0.1"]);
    a.call(&["WHITELIST.SET", "prod", "10.0.0.1"]);
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["a9", "prod", "prod_2"]));
    assert_eq!(a.call(&["WHITELIST.LIST", "aLL"]), Reply::strings(&["a9", "b_hidden", "prod", "prod_2"]));
}

#[test]
fn check_reports_decision_group_entry_and_reason() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(check(&mut a, "192.0.2.1"), verdict("allowed", None, None, "whitelist-empty"));
    // An empty group leaves the whitelist off.
    a.call(&["WHITELIST.SET", "aa", "10.0.0.1"]);
    a.call(&["WHITELIST.REMOVE", "aa", "10.0.0.1", "FORCE"]);
    assert_eq!(check(&mut a, "192.0.2.1"), verdict("allowed", None, None, "whitelist-empty"));
    // cc is created before bb: equal prefixes still report bb, the first by name.
    a.call(&["WHITELIST.SET", "cc", "10.1.0.0/16"]);
    a.call(&["WHITELIST.SET", "bb", "10.1.0.0/16,192.168.0.0/16"]);
    a.call(&["WHITELIST.SET", "aa", "10.0.0.0/8"]);
    a.call(&["WHITELIST.SET", "zz", "10.1.2.3,127.0.0.5"]);
    a.call(&["WHITELIST.SET", "v6", "2001:db8::/32"]);
    assert_eq!(check(&mut a, "10.1.2.3"), verdict("allowed", Some("zz"), Some("10.1.2.3"), "entry"));
    assert_eq!(check(&mut a, "::ffff:10.1.2.3"), verdict("allowed", Some("zz"), Some("10.1.2.3"), "entry"));
    assert_eq!(check(&mut a, "10.1.9.9"), verdict("allowed", Some("bb"), Some("10.1.0.0/16"), "entry"));
    assert_eq!(check(&mut a, "10.9.9.9"), verdict("allowed", Some("aa"), Some("10.0.0.0/8"), "entry"));
    assert_eq!(check(&mut a, "2001:DB8::7"), verdict("allowed", Some("v6"), Some("2001:db8::/32"), "entry"));
    assert_eq!(check(&mut a, "192.0.2.1"), verdict("denied", None, None, "no-match"));
    assert_eq!(check(&mut a, "2001:db9::1"), verdict("denied", None, None, "no-match"));
    // Loopback: an entry comes first, then the exemption.
    assert_eq!(check(&mut a, "127.0.0.5"), verdict("allowed", Some("zz"), Some("127.0.0.5"), "entry"));
    assert_eq!(check(&mut a, "127.0.0.1"), verdict("allowed", None, None, "loopback"));
    assert_eq!(check(&mut a, "::1"), verdict("allowed", None, None, "loopback"));
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.allow-loopback", "no"]), Reply::ok());
    assert_eq!(check(&mut a, "127.0.0.1"), verdict("denied", None, None, "no-match"));
    assert_eq!(check(&mut a, "127.0.0.5"), verdict("allowed", Some("zz"), Some("127.0.0.5"), "entry"));
    // The decision ignores whitelist.mode.
    for mode in ["monitor", "off"] {
        assert_eq!(a.call(&["CONFIG", "SET", "whitelist.mode", mode]), Reply::ok());
        assert_eq!(check(&mut a, "192.0.2.1"), verdict("denied", None, None, "no-match"), "mode {mode}");
        assert_eq!(check(&mut a, "10.9.9.9"), verdict("allowed", Some("aa"), Some("10.0.0.0/8"), "entry"));
    }
    // Errors.
    assert_eq!(
        check(&mut a, "10.0.0.0/8"),
        Reply::err("ERR invalid address '10.0.0.0/8': not a single address (no /prefix here)")
    );
    assert_eq!(check(&mut a, "nope"), Reply::err("ERR invalid address 'nope': not an IP address"));
    assert_eq!(check(&mut a, "01.0.0.1"), Reply::err("ERR invalid address '01.0.0.1': leading zeros are not allowed"));
}

#[test]
fn check_prefers_the_most_specific_prefix_across_groups() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "aa", "10.1.2.0/24"]);
    a.call(&["WHITELIST.SET", "bb", "10.0.0.0/8,10.1.2.4/30"]);
    a.call(&["WHITELIST.SET", "cc", "0.0.0.0/0"]);
    assert_eq!(check(&mut a, "10.1.2.5"), verdict("allowed", Some("bb"), Some("10.1.2.4/30"), "entry"));
    assert_eq!(check(&mut a, "10.1.2.9"), verdict("allowed", Some("aa"), Some("10.1.2.0/24"), "entry"));
    assert_eq!(check(&mut a, "10.200.0.1"), verdict("allowed", Some("bb"), Some("10.0.0.0/8"), "entry"));
    assert_eq!(check(&mut a, "11.0.0.1"), verdict("allowed", Some("cc"), Some("0.0.0.0/0"), "entry"));
    // 0.0.0.0/0 admits no IPv6 address.
    assert_eq!(check(&mut a, "2001:db8::1"), verdict("denied", None, None, "no-match"));
}

#[test]
fn help_is_one_line_per_command() {
    let s = Server::start(&[]);
    let reply = s.admin().call(&["WHITELIST.HELP"]);
    let Reply::Array(lines) = reply else { panic!("HELP is not an array: {reply:?}") };
    let lines: Vec<String> = lines
        .iter()
        .map(|l| match l {
            Reply::Bulk(_) | Reply::Status(_) => l.text(),
            other => panic!("HELP line is not a string: {other:?}"),
        })
        .collect();
    for cmd in
        ["SET", "ADD", "REMOVE", "DEL", "GET", "LIST", "CHECK", "LOADCLIENTS", "EXPORT", "IMPORT", "STALE", "HELP"]
    {
        let prefix = format!("WHITELIST.{cmd} ");
        assert_eq!(lines.iter().filter(|l| l.starts_with(&prefix)).count(), 1, "{cmd} in {lines:#?}");
    }
}

#[test]
fn export_and_import_with_ifversion() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(export(&mut a), r#"{"groups":[],"version":0}"#);
    a.call(&["WHITELIST.SET", "default", "10.0.0.0/8"]);
    a.call(&["WHITELIST.SET", "sys", "::1", "ATTRIBUTE", "hidden"]);
    let saved = export(&mut a);
    assert_eq!(
        saved,
        r#"{"groups":[{"attribute":"show","entries":["10.0.0.0/8"],"name":"default"},{"attribute":"hidden","entries":["::1"],"name":"sys"}],"version":2}"#
    );
    // A control plane's edit: the reply is the new version.
    let doc = r#"{"groups":[{"name":"prod","entries":["192.0.2.0/24","2001:DB8::1","192.0.2.0/24"]}]}"#;
    assert_eq!(a.call(&["WHITELIST.IMPORT", doc, "IFVERSION", "2"]), Reply::Int(3));
    assert_eq!(
        export(&mut a),
        r#"{"groups":[{"attribute":"show","entries":["192.0.2.0/24","2001:db8::1"],"name":"prod"}],"version":3}"#
    );
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["prod"]));
    assert_eq!(version(&mut a), 3);
    // A stale IFVERSION is refused.
    refused(
        &mut a,
        &["WHITELIST.IMPORT", &saved, "ifversion", "2"],
        "ERR whitelist version is 3, not 2 (IFVERSION): export it again and retry",
    );
    // Restoring an older document still raises the version.
    assert_eq!(a.call(&["WHITELIST.IMPORT", &saved]), Reply::Int(4));
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::strings(&["default", "sys"]));
    assert_eq!(a.call(&["WHITELIST.GET", "sys"]), Reply::strings(&["::1"]));
    // The same groups change nothing, whatever version the document carries.
    let v10 = saved.replace(r#""version":2"#, r#""version":10"#);
    assert_eq!(a.call(&["WHITELIST.IMPORT", &v10, "IFVERSION", "4"]), Reply::Int(4));
    assert_eq!(version(&mut a), 4);
    // Other groups with a higher version set it.
    let v10 = v10.replace("10.0.0.0/8", "10.0.0.0/16");
    assert_eq!(a.call(&["WHITELIST.IMPORT", &v10, "IFVERSION", "4"]), Reply::Int(10));
    assert_eq!(a.call(&["WHITELIST.IMPORT", &v10]), Reply::Int(10));
    assert_eq!(version(&mut a), 10);
    assert_eq!(export(&mut a), v10);
    // Bad documents and options change nothing.
    refused(
        &mut a,
        &["WHITELIST.IMPORT", r#"{"groups":[{"name":"ab","entries":["10.1.2.3/8"]}]}"#],
        "ERR invalid whitelist document: group 'ab': invalid whitelist entry '10.1.2.3/8': host bits set, did you mean 10.0.0.0/8?",
    );
    refused(&mut a, &["WHITELIST.IMPORT", "{}"], "ERR invalid whitelist document: \"groups\" must be an array");
    refused(
        &mut a,
        &["WHITELIST.IMPORT", r#"{"groups":[],"extra":1}"#, "FORCE"],
        "ERR invalid whitelist document: unknown field 'extra' in the document",
    );
    refused(
        &mut a,
        &["WHITELIST.IMPORT", r#"{"groups":[{"name":"ab","entries":[]},{"name":"ab","entries":[]}]}"#],
        "ERR invalid whitelist document: group 'ab' appears twice",
    );
    refused(
        &mut a,
        &["WHITELIST.IMPORT", "not json"],
        "ERR invalid whitelist document: expected ident at line 1 column 2",
    );
    refused(
        &mut a,
        &["WHITELIST.IMPORT", &v10, "IFVERSION", "x"],
        "ERR syntax error: IFVERSION must be followed by a version from 0 to 9223372036854775807",
    );
    refused(
        &mut a,
        &["WHITELIST.IMPORT", &v10, "IFVERSION", "10", "IFVERSION"],
        "ERR syntax error: IFVERSION given twice",
    );
    refused(&mut a, &["WHITELIST.IMPORT", &v10, "FORCE", "force"], "ERR syntax error: FORCE given twice");
    refused(
        &mut a,
        &["WHITELIST.IMPORT", &v10, "NOW"],
        "ERR syntax error: unexpected argument 'NOW': expected IFVERSION or FORCE",
    );
    // An empty document turns the whitelist off: only with FORCE.
    refused(
        &mut a,
        &["WHITELIST.IMPORT", r#"{"groups":[]}"#],
        "ERR this change would turn the whitelist off and admit every address; add FORCE to apply it anyway",
    );
    assert_eq!(a.call(&["WHITELIST.IMPORT", r#"{"groups":[]}"#, "FORCE"]), Reply::Int(11));
    assert_eq!(export(&mut a), r#"{"groups":[],"version":11}"#);
    assert_eq!(s.info_field("whitelist_enabled"), "0");
}

// ---------------------------------------------------------------- errors

#[test]
fn wrong_argument_counts_get_redis_arity_errors() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "ab", "10.0.0.1"]);
    let cases: &[(&[&str], &str)] = &[
        (&["WHITELIST.SET"], "whitelist.set"),
        (&["WHITELIST.SET", "ab"], "whitelist.set"),
        (&["WHITELIST.ADD"], "whitelist.add"),
        (&["WHITELIST.ADD", "ab"], "whitelist.add"),
        (&["WHITELIST.REMOVE", "ab"], "whitelist.remove"),
        (&["WHITELIST.DEL"], "whitelist.del"),
        (&["WHITELIST.GET", "ab", "WITHSTATS", "cd"], "whitelist.get"),
        (&["WHITELIST.LIST", "ALL", "ALL"], "whitelist.list"),
        (&["WHITELIST.CHECK"], "whitelist.check"),
        (&["WHITELIST.CHECK", "10.0.0.1", "10.0.0.2"], "whitelist.check"),
        (&["WHITELIST.LOADCLIENTS"], "whitelist.loadclients"),
        (&["WHITELIST.LOADCLIENTS", "ab", "FORCE", "x"], "whitelist.loadclients"),
        (&["WHITELIST.HELP", "x"], "whitelist.help"),
        (&["WHITELIST.EXPORT", "x"], "whitelist.export"),
        (&["WHITELIST.IMPORT"], "whitelist.import"),
        (&["WHITELIST.IMPORT", "{}", "IFVERSION", "1", "FORCE", "x"], "whitelist.import"),
    ];
    for (args, name) in cases {
        refused(&mut a, args, &format!("ERR wrong number of arguments for '{name}' command"));
    }
}

#[test]
fn invalid_entries_are_named_and_change_nothing() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "ab", "10.0.0.1"]);
    let e = |entry: &str, why: &str| format!("ERR invalid whitelist entry '{entry}': {why}");
    let cases: &[(&[&str], String)] = &[
        (&["10.0.0.256"], e("10.0.0.256", "not an IP address or CIDR block")),
        (&["10.0.0.2", "10.0.0.256"], e("10.0.0.256", "not an IP address or CIDR block")),
        (&["localhost"], e("localhost", "not an IP address or CIDR block")),
        (&["10.1.2.3/8"], e("10.1.2.3/8", "host bits set, did you mean 10.0.0.0/8?")),
        (&["2001:db8::1/32"], e("2001:db8::1/32", "host bits set, did you mean 2001:db8::/32?")),
        (&["010.0.0.1"], e("010.0.0.1", "leading zeros are not allowed")),
        (&["10.0.0.01"], e("10.0.0.01", "leading zeros are not allowed")),
        (&["10.0.0.0/08"], e("10.0.0.0/08", "leading zeros are not allowed")),
        (&["10.0.0.1, 10.0.0.2"], e(" 10.0.0.2", "spaces are not allowed")),
        (&["10.0.0.1 "], e("10.0.0.1 ", "spaces are not allowed")),
        (&["10.0.0.1,,10.0.0.2"], e("", "empty item (check for doubled or trailing commas)")),
        (&["10.0.0.1,"], e("", "empty item (check for doubled or trailing commas)")),
        (&[",10.0.0.1"], e("", "empty item (check for doubled or trailing commas)")),
        (&["fe80::1%eth0"], e("fe80::1%eth0", "zone ids are not allowed")),
        (&["10.0.0.0/33"], e("10.0.0.0/33", "prefix length must be a number from 0 to 32")),
        (&["10.0.0.0/"], e("10.0.0.0/", "prefix length must be a number from 0 to 32")),
        (&["::/129"], e("::/129", "prefix length must be a number from 0 to 128")),
        // The first bad item, in argument order, is named.
        (&["10.0.0.2", "x,y"], e("x", "not an IP address or CIDR block")),
        (&["10.1.2.3/8", "10.0.0.256"], e("10.1.2.3/8", "host bits set, did you mean 10.0.0.0/8?")),
    ];
    for verb in ["WHITELIST.SET", "WHITELIST.ADD", "WHITELIST.REMOVE"] {
        for (entries, error) in cases {
            let mut args = vec![verb, "ab"];
            args.extend_from_slice(entries);
            refused(&mut a, &args, error);
        }
    }
    // Keyword syntax is judged before the arguments.
    refused(&mut a, &["WHITELIST.SET", "ab", "10.1.2.3/8", "FORCE", "FORCE"], "ERR syntax error: FORCE given twice");
    // A refused SET does not create its group either.
    refused(
        &mut a,
        &["WHITELIST.SET", "cd", "10.0.0.1", "10.0.0.256"],
        &e("10.0.0.256", "not an IP address or CIDR block"),
    );
    assert_eq!(a.call(&["WHITELIST.GET", "cd"]), Reply::Nil);
    assert_eq!(a.call(&["WHITELIST.GET", "ab"]), Reply::strings(&["10.0.0.1"]));
}

#[test]
fn invalid_and_reserved_group_names_are_refused() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "ab", "10.0.0.1"]);
    let long = "a".repeat(33);
    for bad in ["Prod", "a", "1ab", "_ab", "ab_", "a-b", "a b", long.as_str()] {
        let error = format!("ERR invalid group name '{bad}': {NAME_RULE}");
        refused(&mut a, &["WHITELIST.SET", bad, "10.0.0.1"], &error);
        refused(&mut a, &["WHITELIST.ADD", bad, "10.0.0.1"], &error);
        refused(&mut a, &["WHITELIST.REMOVE", bad, "10.0.0.1"], &error);
        refused(&mut a, &["WHITELIST.DEL", "ab", bad], &error);
        refused(&mut a, &["WHITELIST.GET", bad], &error);
        refused(&mut a, &["WHITELIST.LOADCLIENTS", bad], &error);
    }
    for kw in ["force", "attribute", "all"] {
        let error = format!("ERR invalid group name '{kw}': reserved keyword");
        refused(&mut a, &["WHITELIST.SET", kw, "10.0.0.1"], &error);
        refused(&mut a, &["WHITELIST.ADD", kw, "10.0.0.1"], &error);
        refused(&mut a, &["WHITELIST.GET", kw], &error);
    }
    // The longest valid name.
    let longest = "a".repeat(32);
    assert_eq!(a.call(&["WHITELIST.SET", &longest, "10.0.0.1"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&[&longest, "ab"]));
}

#[test]
fn repeated_or_misplaced_keywords_are_refused() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "ab", "10.0.0.1"]);
    a.call(&["WHITELIST.SET", "cd", "10.0.0.2"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["WHITELIST.SET", "ab", "FORCE"],
            "ERR syntax error: WHITELIST.SET needs at least one entry before its options",
        ),
        (
            &["WHITELIST.SET", "ab", "ATTRIBUTE", "hidden"],
            "ERR syntax error: WHITELIST.SET needs at least one entry before its options",
        ),
        (
            &["WHITELIST.ADD", "ab", "force"],
            "ERR syntax error: WHITELIST.ADD needs at least one entry before its options",
        ),
        (&["WHITELIST.SET", "ab", "10.0.0.3", "FORCE", "force"], "ERR syntax error: FORCE given twice"),
        (
            &["WHITELIST.SET", "ab", "10.0.0.3", "ATTRIBUTE", "show", "ATTRIBUTE", "hidden"],
            "ERR syntax error: ATTRIBUTE given twice",
        ),
        (
            &["WHITELIST.SET", "ab", "10.0.0.3", "ATTRIBUTE"],
            "ERR syntax error: ATTRIBUTE must be followed by show or hidden",
        ),
        (
            &["WHITELIST.SET", "ab", "10.0.0.3", "ATTRIBUTE", "secret"],
            "ERR syntax error: ATTRIBUTE must be followed by show or hidden",
        ),
        (
            &["WHITELIST.SET", "ab", "10.0.0.3", "FORCE", "10.0.0.4"],
            "ERR syntax error: unexpected argument '10.0.0.4': entries come before ATTRIBUTE, COMMENT, TTL, EXPIREAT and FORCE",
        ),
        (
            &["WHITELIST.ADD", "ab", "10.0.0.3", "ATTRIBUTE", "hidden"],
            "ERR syntax error: ATTRIBUTE is only valid for WHITELIST.SET, not WHITELIST.ADD",
        ),
        (
            &["WHITELIST.REMOVE", "ab", "10.0.0.1", "ATTRIBUTE", "hidden"],
            "ERR syntax error: ATTRIBUTE is only valid for WHITELIST.SET, not WHITELIST.REMOVE",
        ),
        (&["WHITELIST.DEL", "ab", "FORCE", "cd"], "ERR syntax error: FORCE must be the last argument"),
        (&["WHITELIST.DEL", "ab", "FORCE", "FORCE"], "ERR syntax error: FORCE given twice"),
        (&["WHITELIST.DEL", "FORCE"], "ERR syntax error: WHITELIST.DEL needs at least one group"),
        (
            &["WHITELIST.LIST", "EVERYTHING"],
            "ERR syntax error: unexpected argument 'EVERYTHING': WHITELIST.LIST takes only ALL",
        ),
        (
            &["WHITELIST.LOADCLIENTS", "ab", "NOW"],
            "ERR syntax error: unexpected argument 'NOW': only FORCE may follow the group",
        ),
    ];
    for (args, error) in cases {
        refused(&mut a, args, error);
    }
}

#[test]
fn limits_from_config_set_are_enforced_and_change_nothing() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.max-groups", "2"]), Reply::ok());
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.max-entries-per-group", "3"]), Reply::ok());
    assert_eq!(a.call(&["WHITELIST.SET", "aa", "10.0.0.1"]), Reply::Int(1));
    // Duplicates do not count against the group's limit, but a command may
    // name no more items than a group may hold, duplicates included.
    assert_eq!(a.call(&["WHITELIST.SET", "bb", "10.0.0.1,10.0.0.2", "10.0.0.2"]), Reply::Int(2));
    refused(
        &mut a,
        &["WHITELIST.SET", "bb", "10.0.0.1,10.0.0.2,10.0.0.3", "10.0.0.3"],
        "ERR too many entries in one command: 4, the limit is 3 (whitelist.max-entries-per-group)",
    );
    assert_eq!(a.call(&["WHITELIST.ADD", "bb", "10.0.0.3"]), Reply::Int(1));
    let groups = "ERR the whitelist would hold 3 groups, the limit is 2 (whitelist.max-groups)";
    refused(&mut a, &["WHITELIST.SET", "cc", "10.0.0.1"], groups);
    refused(&mut a, &["WHITELIST.ADD", "cc", "10.0.0.1", "FORCE"], groups);
    refused(
        &mut a,
        &[
            "WHITELIST.IMPORT",
            r#"{"groups":[{"name":"aa","entries":[]},{"name":"bb","entries":[]},{"name":"cc","entries":["10.0.0.1"]}]}"#,
        ],
        "ERR too many groups in one document: 3, the limit is 2 (whitelist.max-groups)",
    );
    refused(
        &mut a,
        &["WHITELIST.SET", "aa", "10.0.0.1,10.0.0.2", "10.0.0.3,10.0.0.4"],
        "ERR too many entries in one command: 4, the limit is 3 (whitelist.max-entries-per-group)",
    );
    refused(
        &mut a,
        &["WHITELIST.ADD", "bb", "10.0.0.3", "10.0.0.4"],
        "ERR group 'bb' would hold 4 entries, the limit is 3 (whitelist.max-entries-per-group)",
    );
    refused(
        &mut a,
        &["WHITELIST.IMPORT", r#"{"groups":[{"name":"aa","entries":["10.0.0.1","10.0.0.2","10.0.0.3","10.0.0.4"]}]}"#],
        "ERR too many entries in group 'aa' of the document: 4, the limit is 3 (whitelist.max-entries-per-group)",
    );
    // Within the limits everything still works; a deleted group frees its place.
    assert_eq!(a.call(&["WHITELIST.ADD", "aa", "10.0.0.2", "10.0.0.3"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.DEL", "bb"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.SET", "cc", "10.0.0.9"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.LIST"]), Reply::strings(&["aa", "cc"]));
}

// ---------------------------------------------------------------- lock-out protection

#[test]
fn a_change_that_disconnects_the_caller_needs_force() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    admin.call(&["WHITELIST.SET", "other", "127.0.0.9"]);
    let mut me = s.connect_from("127.0.0.2");
    assert!(me.is_served());
    let own = "ERR this change would disconnect your own connection from 127.0.0.2; add FORCE to apply it anyway";
    refused(&mut me, &["WHITELIST.SET", "default", "127.0.0.3"], own);
    refused(&mut me, &["WHITELIST.REMOVE", "default", "127.0.0.2", "127.0.0.3"], own);
    refused(&mut me, &["WHITELIST.DEL", "default"], own);
    refused(&mut me, &["WHITELIST.IMPORT", r#"{"groups":[{"name":"x1","entries":["10.0.0.1"]}]}"#], own);
    // A change that keeps the caller in is fine.
    assert_eq!(me.call(&["WHITELIST.SET", "default", "127.0.0.0/30"]), Reply::Int(1));
    // FORCE applies it: the caller gets its reply, then the connection closes.
    let v = version(&mut admin);
    assert_eq!(me.call(&["WHITELIST.SET", "default", "127.0.0.3", "FORCE"]), Reply::Int(1));
    assert!(me.closed_within(Duration::from_secs(5)));
    assert_eq!(version(&mut admin), v + 1);
    assert_eq!(admin.call(&["WHITELIST.GET", "default"]), Reply::strings(&["127.0.0.3"]));
    assert!(s.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
}

#[test]
fn inside_multi_a_self_disconnecting_change_is_refused_even_with_force() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    let mut me = s.connect_from("127.0.0.2");
    let before = export(&mut admin);
    assert_eq!(me.call(&["MULTI"]), Reply::ok());
    assert_eq!(me.call(&["WHITELIST.SET", "default", "127.0.0.3", "FORCE"]), Reply::Status("QUEUED".into()));
    assert_eq!(me.call(&["WHITELIST.ADD", "other", "10.0.0.1"]), Reply::Status("QUEUED".into()));
    assert_eq!(
        me.call(&["EXEC"]),
        Reply::Array(vec![
            Reply::err(
                "ERR this change would disconnect your own connection from 127.0.0.2; inside MULTI/EXEC it is refused even with FORCE"
            ),
            Reply::Int(1),
        ])
    );
    assert!(me.is_served());
    assert_eq!(admin.call(&["WHITELIST.GET", "default"]), Reply::strings(&["127.0.0.2"]));
    assert_ne!(export(&mut admin), before, "the second queued command ran");
    // Without FORCE inside MULTI: the same refusal.
    assert_eq!(me.call(&["MULTI"]), Reply::ok());
    assert_eq!(me.call(&["WHITELIST.DEL", "default"]), Reply::Status("QUEUED".into()));
    assert_eq!(
        me.call(&["EXEC"]),
        Reply::Array(vec![Reply::err(
            "ERR this change would disconnect your own connection from 127.0.0.2; inside MULTI/EXEC it is refused even with FORCE"
        )])
    );
    assert_eq!(admin.call(&["WHITELIST.LIST"]), Reply::strings(&["default", "other"]));
    assert!(me.is_served());
}

#[test]
fn removing_the_last_entry_needs_force() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "default", "10.0.0.1"]);
    a.call(&["WHITELIST.SET", "spare", "10.0.0.2"]);
    let off = "ERR this change would turn the whitelist off and admit every address; add FORCE to apply it anyway";
    refused(&mut a, &["WHITELIST.DEL", "default", "spare"], off);
    assert_eq!(a.call(&["WHITELIST.DEL", "spare"]), Reply::Int(1));
    refused(&mut a, &["WHITELIST.REMOVE", "default", "10.0.0.1"], off);
    refused(&mut a, &["WHITELIST.DEL", "default"], off);
    assert_eq!(a.call(&["WHITELIST.REMOVE", "default", "10.0.0.1", "FORCE"]), Reply::Int(1));
    assert_eq!(s.info_field("whitelist_enabled"), "0");
    assert_eq!(a.call(&["WHITELIST.GET", "default"]), Reply::Array(vec![]));
    // Once off, removing nothing more needs no FORCE.
    assert_eq!(a.call(&["WHITELIST.DEL", "default"]), Reply::Int(1));
}

// ---------------------------------------------------------------- scripts, OOM

#[test]
fn the_commands_are_refused_inside_scripts() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "prod", "10.0.0.0/8"]);
    // The sha1 of the script body is part of Redis's text.
    assert_eq!(
        a.call(&["EVAL", "return redis.call('WHITELIST.GET')", "0"]),
        Reply::err(
            "ERR This Redis command is not allowed from script script: fa09854ef9645c12bb725919394207fa398ff1d0, on @user_script:1."
        )
    );
    let before = export(&mut a);
    let reply = a.call(&["EVAL", "return redis.call('WHITELIST.DEL', 'prod', 'FORCE')", "0"]);
    assert!(
        reply.text().starts_with("ERR This Redis command is not allowed from script script: ") && reply.is_error(),
        "{reply:?}"
    );
    assert_eq!(export(&mut a), before);
}

#[test]
fn writes_work_on_a_server_over_maxmemory() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    assert_eq!(a.call(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(a.call(&["CONFIG", "SET", "maxmemory", "1"]), Reply::ok());
    assert_eq!(a.call(&["SET", "k2", "v"]), Reply::err("OOM command not allowed when used memory > 'maxmemory'."));
    assert_eq!(a.call(&["WHITELIST.SET", "prod", "10.0.0.1"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.ADD", "prod", "10.0.0.2"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.IMPORT", r#"{"groups":[{"name":"prod","entries":["10.0.0.3"]}]}"#]), Reply::Int(3));
    assert_eq!(a.call(&["WHITELIST.GET", "prod"]), Reply::strings(&["10.0.0.3"]));
    assert_eq!(a.call(&["SET", "k3", "v"]), Reply::err("OOM command not allowed when used memory > 'maxmemory'."));
}

// ---------------------------------------------------------------- audit

#[test]
fn every_change_logs_one_audit_line() {
    let s = Server::start(&[]);
    let mut c = s.connect_from("127.0.0.2");
    let port = c.local_port();
    assert_eq!(c.call(&["WHITELIST.SET", "prod", "10.0.0.1,10.0.0.2"]), Reply::Int(2));
    let first =
        format!("<whitelist> WHITELIST.SET prod by 127.0.0.2:{port} (user default): 2 added, 0 removed, version 1");
    s.wait_log(&first);
    // Nothing changes: nothing is logged.
    assert_eq!(c.call(&["WHITELIST.SET", "prod", "10.0.0.1,10.0.0.2"]), Reply::Int(2));
    assert_eq!(c.call(&["WHITELIST.ADD", "prod", "10.0.0.2"]), Reply::Int(0));
    assert_eq!(c.call(&["WHITELIST.SET", "prod", "10.0.0.9"]), Reply::Int(1));
    s.wait_log(&format!(
        "<whitelist> WHITELIST.SET prod by 127.0.0.2:{port} (user default): 1 added, 2 removed, version 2"
    ));
    let log = s.log();
    assert_eq!(log.matches("<whitelist> WHITELIST.").count(), 2, "{log}");
    // Logged at notice level ("*").
    let line = log.lines().find(|l| l.ends_with(&first)).expect("the audit line");
    assert!(line.contains(" * <whitelist> "), "{line}");
    // A refused change logs nothing.
    assert!(c.call(&["WHITELIST.SET", "prod", "10.0.0.256"]).is_error());
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.DEL", "prod", "FORCE"]), Reply::Int(1));
    s.wait_log("<whitelist> WHITELIST.DEL prod by unix socket (user default): 0 added, 1 removed, version 3");
    assert_eq!(s.log().matches("<whitelist> WHITELIST.").count(), 3);
}

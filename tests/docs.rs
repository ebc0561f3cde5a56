//! The docs every `WHITELIST.*` command gives the server: `COMMAND DOCS`
//! (what redis-cli's `help` and hints read), `COMMAND INFO` with the real
//! arity, and that arity enforced by the server itself. Replies are RESP2.

mod common;

use common::{flavor, Client, Options, Reply, Server};

fn b(s: &str) -> Reply {
    Reply::bulk(s)
}

/// One argument of a `COMMAND DOCS` reply, in this server's words. Redis 7.2
/// (and Valkey) show `display_text`, the name when the module gives none,
/// for every argument but a `oneof` or `block`; Redis 7.0 has no such field.
fn arg(name: &str, kind: &str, token: Option<&str>, flags: &[&str], subargs: Vec<Reply>) -> Reply {
    let mut fields = vec![b("name"), b(name), b("type"), b(kind)];
    if flavor().has_72_api() && kind != "oneof" {
        fields.extend([b("display_text"), b(name)]);
    }
    if let Some(token) = token {
        fields.extend([b("token"), b(token)]);
    }
    if !flags.is_empty() {
        fields.extend([b("flags"), Reply::Array(flags.iter().map(|f| Reply::Status(f.to_string())).collect())]);
    }
    if !subargs.is_empty() {
        fields.extend([b("arguments"), Reply::Array(subargs)]);
    }
    Reply::Array(fields)
}

fn group() -> Reply {
    arg("group", "string", None, &[], vec![])
}

fn entries() -> Reply {
    arg("entry", "string", None, &["multiple"], vec![])
}

fn force() -> Reply {
    arg("force", "pure-token", Some("FORCE"), &["optional"], vec![])
}

fn comment() -> Reply {
    arg("text", "string", Some("COMMENT"), &["optional"], vec![])
}

fn ttl() -> Reply {
    arg("seconds", "integer", Some("TTL"), &[], vec![])
}

fn expireat() -> Reply {
    arg("unix-seconds", "integer", Some("EXPIREAT"), &[], vec![])
}

/// Each command: name, arity, whether it writes, summary, arguments.
fn commands() -> Vec<(&'static str, i64, bool, &'static str, Vec<Reply>)> {
    vec![
        (
            "whitelist.set",
            -3,
            true,
            "Creates a group or replaces its entries. Replies the number of entries it holds.",
            vec![
                group(),
                entries(),
                arg(
                    "attribute",
                    "oneof",
                    Some("ATTRIBUTE"),
                    &["optional"],
                    vec![
                        arg("show", "pure-token", Some("show"), &[], vec![]),
                        arg("hidden", "pure-token", Some("hidden"), &[], vec![]),
                    ],
                ),
                comment(),
                arg("expiry", "oneof", None, &["optional"], vec![ttl(), expireat()]),
                force(),
            ],
        ),
        (
            "whitelist.add",
            -3,
            true,
            "Adds entries to a group, creating it if needed. Replies the number added.",
            vec![
                group(),
                entries(),
                comment(),
                arg(
                    "expiry",
                    "oneof",
                    None,
                    &["optional"],
                    vec![ttl(), expireat(), arg("persist", "pure-token", Some("PERSIST"), &[], vec![])],
                ),
                force(),
            ],
        ),
        (
            "whitelist.remove",
            -3,
            true,
            "Removes entries from a group; an emptied group stays. Replies the number removed.",
            vec![group(), entries(), force()],
        ),
        (
            "whitelist.del",
            -2,
            true,
            "Deletes groups. Replies the number deleted.",
            vec![arg("group", "string", None, &["multiple"], vec![]), force()],
        ),
        (
            "whitelist.loadclients",
            -2,
            true,
            "Adds the address of every connected TCP client to a group. Replies the addresses added.",
            vec![group(), force()],
        ),
        (
            "whitelist.import",
            -2,
            true,
            "Replaces the whole whitelist with a JSON document. Replies the new version.",
            vec![
                arg("json", "string", None, &[], vec![]),
                arg("version", "integer", Some("IFVERSION"), &["optional"], vec![]),
                force(),
            ],
        ),
        (
            "whitelist.get",
            -1,
            false,
            "Returns one group's entries, or every shown group with its entries.",
            vec![
                arg("group", "string", None, &["optional"], vec![]),
                arg("withstats", "pure-token", Some("WITHSTATS"), &["optional"], vec![]),
            ],
        ),
        (
            "whitelist.list",
            -1,
            false,
            "Returns the names of the shown groups, or of all groups with ALL.",
            vec![arg("all", "pure-token", Some("ALL"), &["optional"], vec![])],
        ),
        (
            "whitelist.check",
            -2,
            false,
            "Tells whether an address would be admitted, by which group and entry, and why.",
            vec![
                arg("address", "string", None, &[], vec![]),
                arg("user", "string", Some("USER"), &["optional"], vec![]),
            ],
        ),
        (
            "whitelist.bind",
            -3,
            true,
            "Lets ACL users log in only from the addresses of a group. Replies the number newly bound.",
            vec![
                arg("group", "string", None, &[], vec![]),
                arg("user", "string", None, &["multiple"], vec![]),
                force(),
            ],
        ),
        (
            "whitelist.unbind",
            -3,
            true,
            "Removes ACL users' bindings to a group. Replies the number unbound.",
            vec![
                arg("group", "string", None, &[], vec![]),
                arg("user", "string", None, &["multiple"], vec![]),
                force(),
            ],
        ),
        ("whitelist.bindings", 1, false, "Returns every bound ACL user with the groups it may log in from.", vec![]),
        ("whitelist.export", 1, false, "Returns the whole whitelist as one JSON document with its version.", vec![]),
        (
            "whitelist.stale",
            2,
            false,
            "Lists the entries of every group not hit in the last given seconds.",
            vec![arg("seconds", "string", None, &[], vec![])],
        ),
        (
            "whitelist.cluster",
            1,
            false,
            "Lists every node of the cluster with its role, whitelist version and whether it is in sync.",
            vec![],
        ),
        (
            "whitelist.merge",
            2,
            true,
            "Internal: installs a cluster state as the primary or the AOF sends it; refused from other clients.",
            vec![arg("state", "string", None, &[], vec![])],
        ),
        ("whitelist.help", 1, false, "Shows the syntax of every WHITELIST command.", vec![]),
        (
            "whitelist.denied",
            -1,
            false,
            "Returns the recently denied sources, most recent first, or empties their table with RESET.",
            vec![arg(
                "action",
                "oneof",
                None,
                &["optional"],
                vec![
                    arg("count", "integer", Some("COUNT"), &[], vec![]),
                    arg("reset", "pure-token", Some("RESET"), &[], vec![]),
                ],
            )],
        ),
    ]
}

/// The whole `COMMAND DOCS <name>` reply.
fn docs_reply(name: &str, summary: &str, args: Vec<Reply>) -> Reply {
    let mut doc =
        vec![b("summary"), b(summary), b("since"), b("0.1.0"), b("group"), b("module"), b("module"), b("whitelist")];
    if !args.is_empty() {
        doc.extend([b("arguments"), Reply::Array(args)]);
    }
    Reply::Array(vec![b(name), Reply::Array(doc)])
}

/// The whole `COMMAND INFO <name>` reply: only the arity comes from the docs;
/// flags, the key positions (none) and the ACL categories are as registered.
fn info_reply(name: &str, arity: i64, writes: bool, categories: &[&str]) -> Reply {
    let status = |s: &str| Reply::Status(s.to_string());
    // DENIED reads and resets this server's own table, no data: neither
    // `write` nor `readonly`, and it answers while loading (as SLOWLOG).
    let flags: &[&str] = if name == "whitelist.denied" {
        &["module", "admin", "noscript", "loading", "stale"]
    } else if writes {
        &["write", "module", "admin", "noscript"]
    } else {
        &["readonly", "module", "admin", "noscript"]
    };
    Reply::Array(vec![Reply::Array(vec![
        b(name),
        Reply::Int(arity),
        Reply::Array(flags.iter().map(|f| status(f)).collect()),
        Reply::Int(0),
        Reply::Int(0),
        Reply::Int(0),
        Reply::Array(categories.iter().map(|c| status(c)).collect()),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])])
}

/// Redis 7.0 puts module commands in no ACL category (SPEC §13).
fn categories() -> &'static [&'static str] {
    if flavor().has_72_api() {
        &["@admin", "@dangerous"]
    } else {
        &[]
    }
}

fn module_commands(a: &mut Client) -> Vec<String> {
    let Reply::Array(names) = a.call(&["COMMAND", "LIST", "FILTERBY", "MODULE", "whitelist"]) else {
        panic!("COMMAND LIST did not answer an array")
    };
    let mut names: Vec<String> = names.iter().map(Reply::text).collect();
    names.sort();
    names
}

#[test]
fn command_docs_describe_every_command() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    let commands = commands();
    let mut documented: Vec<String> = commands.iter().map(|c| c.0.to_string()).collect();
    documented.sort();
    assert_eq!(module_commands(&mut a), documented, "{}", flavor().describe());
    for (name, _, _, summary, args) in commands {
        assert_eq!(
            a.call(&["COMMAND", "DOCS", name]),
            docs_reply(name, summary, args),
            "{name} on {}",
            flavor().describe()
        );
    }
    assert!(!s.log().contains("lack the docs"), "{}", s.log());
}

#[test]
fn command_info_gives_the_real_arity_and_keeps_flags_keys_and_categories() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    for (name, arity, writes, _, _) in commands() {
        assert_eq!(
            a.call(&["COMMAND", "INFO", name]),
            info_reply(name, arity, writes, categories()),
            "{name} on {}",
            flavor().describe()
        );
    }
    // Still no key arguments, so cluster routing and ACL key patterns never
    // see one.
    for args in [&["whitelist.set", "ab", "10.0.0.1"][..], &["whitelist.get", "ab"], &["whitelist.list", "ALL"]] {
        let mut call = vec!["COMMAND", "GETKEYS"];
        call.extend_from_slice(args);
        assert_eq!(a.call(&call), Reply::err("ERR The command has no key arguments"), "{args:?}");
    }
}

/// `rejected_calls` and `failed_calls` of a command in `INFO commandstats`.
fn rejected_and_failed(a: &mut Client, command: &str) -> (u64, u64) {
    let info = a.call(&["INFO", "commandstats"]).text();
    let prefix = format!("cmdstat_{command}:");
    let Some(line) = info.lines().find_map(|l| l.strip_prefix(prefix.as_str())) else {
        return (0, 0);
    };
    let field = |name: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    (field("rejected_calls"), field("failed_calls"))
}

#[test]
fn the_server_refuses_a_short_command_before_the_module_runs() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    let arity = |name: &str| Reply::Error(format!("ERR wrong number of arguments for '{name}' command"));

    // Below the arity the server refuses: a rejected call, never run.
    assert_eq!(a.call(&["WHITELIST.SET", "ab"]), arity("whitelist.set"));
    assert_eq!(a.call(&["WHITELIST.HELP", "x"]), arity("whitelist.help"));
    assert_eq!(rejected_and_failed(&mut a, "whitelist.set"), (1, 0));
    assert_eq!(rejected_and_failed(&mut a, "whitelist.help"), (1, 0));
    // Within the arity, the module's parser counts the rest: a failed call.
    assert_eq!(a.call(&["WHITELIST.CHECK", "10.0.0.1", "10.0.0.2"]), arity("whitelist.check"));
    assert_eq!(rejected_and_failed(&mut a, "whitelist.check"), (0, 1));

    // Inside MULTI a short command is refused when queued and EXEC aborts.
    assert_eq!(a.call(&["MULTI"]), Reply::ok());
    assert_eq!(a.call(&["WHITELIST.ADD", "ab"]), arity("whitelist.add"));
    assert_eq!(a.call(&["WHITELIST.SET", "ab", "10.0.0.1"]), Reply::Status("QUEUED".into()));
    assert_eq!(a.call(&["EXEC"]), Reply::err("EXECABORT Transaction discarded because of previous errors."));
    assert_eq!(a.call(&["WHITELIST.LIST", "ALL"]), Reply::Array(vec![]));
}

#[test]
fn the_test_only_command_has_docs_too() {
    let s = Server::start_with(Options { module: Some(common::test_module_path()), ..Default::default() });
    let mut a = s.admin();
    assert_eq!(
        a.call(&["COMMAND", "DOCS", "whitelist.debug-panic"]),
        docs_reply(
            "whitelist.debug-panic",
            "Panics inside a command, to show that the panic becomes an error reply (test builds only).",
            vec![]
        )
    );
    let Reply::Array(info) = a.call(&["COMMAND", "INFO", "whitelist.debug-panic"]) else { panic!("COMMAND INFO") };
    let Some(Reply::Array(fields)) = info.first() else { panic!("COMMAND INFO: {info:?}") };
    assert_eq!(fields.get(1), Some(&Reply::Int(1)), "{fields:?}");
    let Reply::Array(info) = a.call(&["COMMAND", "INFO", "whitelist.debug-fault"]) else { panic!("COMMAND INFO") };
    let Some(Reply::Array(fields)) = info.first() else { panic!("COMMAND INFO: {info:?}") };
    assert_eq!(fields.get(1), Some(&Reply::Int(2)), "{fields:?}");
    let Reply::Array(docs) = a.call(&["COMMAND", "DOCS", "whitelist.debug-fault"]) else { panic!("COMMAND DOCS") };
    let summary = match docs.get(1) {
        Some(Reply::Array(fields)) => fields.get(1).cloned(),
        _ => None,
    };
    assert_eq!(
        summary,
        Some(Reply::bulk(
            "Turns on a fault (hook-panic, hold-open, lose-next-change) or turns them off (test builds only)."
        )),
        "{docs:?}"
    );
    assert!(!s.log().contains("lack the docs"), "{}", s.log());
}

//! ACL rules on the `WHITELIST.*` commands against a real server. Redis 7.2+
//! and Valkey put the commands in `@admin` and `@dangerous` and refuse them
//! before the module runs; Redis 7.0 cannot categorise a module command, so
//! there the module judges the caller's rules itself. Each test checks each
//! server's own replies, `NOPERM` texts and ACL LOG entries.

mod common;

use std::collections::HashMap;

use common::{flavor, wait_for, Client, Reply, Server};

const SET: &[&str] = &["WHITELIST.SET", "ab", "10.0.0.1"];
const GET: &[&str] = &["WHITELIST.GET", "ab"];

/// Creates `name` (password `pw`) with `rules`.
fn user(s: &Server, name: &str, rules: &[&str]) {
    let mut args = vec!["ACL", "SETUSER", name, "on", ">pw"];
    args.extend_from_slice(rules);
    assert_eq!(s.admin().call(&args), Reply::ok(), "{rules:?}");
}

/// A unix-socket connection authenticated as `name`.
fn login(s: &Server, name: &str) -> Client {
    let mut c = s.admin();
    assert_eq!(c.call(&["AUTH", name, "pw"]), Reply::ok());
    c
}

/// The newest ACL LOG entry as field name -> value.
fn newest_log_entry(s: &Server) -> HashMap<String, Reply> {
    let Reply::Array(entries) = s.admin().call(&["ACL", "LOG", "1"]) else { panic!("ACL LOG is an array") };
    let Some(Reply::Array(fields)) = entries.first() else { panic!("the ACL LOG is empty") };
    fields.chunks(2).map(|kv| (kv[0].text(), kv[1].clone())).collect()
}

fn log_len(s: &Server) -> usize {
    match s.admin().call(&["ACL", "LOG"]) {
        Reply::Array(entries) => entries.len(),
        other => panic!("ACL LOG: {other:?}"),
    }
}

/// Who refuses a command a user may not run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum By {
    /// Redis on every server: the user lacks the command itself.
    Redis,
    /// Redis on 7.2+ (the command's category); on 7.0, where the command has
    /// no category, the module.
    Category,
}

/// The ACL LOG context of a refusal of a command run directly: Redis's own
/// (`toplevel`), or `module` where the module writes the entry (7.0).
fn logged_context(by: By) -> &'static str {
    if by == By::Category && !flavor().has_72_api() {
        "module"
    } else {
        "toplevel"
    }
}

/// Asserts that the newest ACL LOG entry records `user` refused `command`.
fn assert_logged(s: &Server, user: &str, command: &str, context: &str) {
    let entry = newest_log_entry(s);
    assert_eq!(entry["reason"], Reply::bulk("command"), "{entry:?}");
    assert_eq!(entry["context"], Reply::bulk(context), "{entry:?}");
    assert_eq!(entry["object"], Reply::bulk(command), "{entry:?}");
    assert_eq!(entry["username"], Reply::bulk(user), "{entry:?}");
    let info = entry["client-info"].text();
    assert!(info.contains(&format!(" user={user} ")), "{info}");
}

/// Runs `args` as `c` (user `name`) and asserts this server's `NOPERM`,
/// one new ACL LOG entry for it, and an unchanged whitelist.
fn assert_refused(s: &Server, c: &mut Client, name: &str, args: &[&str], by: By) {
    let command = args[0].to_ascii_lowercase();
    let before = s.admin().call(&["WHITELIST.EXPORT"]);
    assert_eq!(s.admin().call(&["ACL", "LOG", "RESET"]), Reply::ok());
    assert_eq!(c.call(args), flavor().noperm(name, &command), "{name} {args:?} on {}", flavor().describe());
    assert_eq!(log_len(s), 1);
    assert_logged(s, name, &command, logged_context(by));
    assert_eq!(s.admin().call(&["WHITELIST.EXPORT"]), before, "{args:?} was refused but changed the whitelist");
}

/// What a user may run: `WHITELIST.GET` and `WHITELIST.SET`; `None` runs.
struct Expect {
    get: Option<By>,
    set: Option<By>,
}

const RUNS: Option<By> = None;
const REDIS: Option<By> = Some(By::Redis);
const CATEGORY: Option<By> = Some(By::Category);

fn assert_user(s: &Server, name: &str, rules: &[&str], expect: Expect) {
    user(s, name, rules);
    let mut c = login(s, name);
    let on = || format!("{name} {rules:?} on {}", flavor().describe());
    match expect.get {
        None => assert_eq!(c.call(GET), s.admin().call(GET), "{}", on()),
        Some(by) => assert_refused(s, &mut c, name, GET, by),
    }
    match expect.set {
        None => {
            assert!(!s.admin().call(&["WHITELIST.DEL", "ab", "FORCE"]).is_error());
            assert_eq!(c.call(SET), Reply::Int(1), "{}", on());
            assert_eq!(s.admin().call(GET), Reply::strings(&["10.0.0.1"]));
        }
        Some(by) => assert_refused(s, &mut c, name, SET, by),
    }
}

#[test]
fn category_removals_refuse_the_commands_on_every_server() {
    let s = Server::start(&[]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "ab", "10.0.0.2"]), Reply::Int(1));
    assert_user(&s, "noadmin", &["+@all", "-@admin"], Expect { get: CATEGORY, set: CATEGORY });
    assert_user(&s, "nodanger", &["+@all", "-@dangerous"], Expect { get: CATEGORY, set: CATEGORY });
    assert_user(&s, "full", &["+@all"], Expect { get: RUNS, set: RUNS });
    let rules = ["allcommands", "-@read", "-@write", "-@keyspace", "-flushall"];
    assert_user(&s, "keys", &rules, Expect { get: RUNS, set: RUNS });
    assert_user(&s, "back", &["+@all", "-@admin", "+@dangerous"], Expect { get: RUNS, set: RUNS });
}

#[test]
fn where_7_0_cannot_follow_the_categories() {
    let s = Server::start(&[]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "ab", "10.0.0.2"]), Reply::Int(1));
    let (runs_on_72, refused_on_72) = if flavor().has_72_api() { (RUNS, CATEGORY) } else { (REDIS, RUNS) };
    // A category grant gives a module command nothing on 7.0: Redis refuses.
    assert_user(&s, "grant", &["-@all", "+@admin"], Expect { get: runs_on_72, set: runs_on_72 });
    // 7.0 keeps which commands a user may run, not the rules, and writes them
    // back as the categories that fit best: removing @dangerous and adding
    // back nearly all of it with @slow reads back as `+@all -role -lastsave`.
    let rules = ["+@all", "-@dangerous", "+@slow"];
    assert_user(&s, "slow", &rules, Expect { get: refused_on_72, set: refused_on_72 });
}

#[test]
fn commands_named_in_the_rules() {
    let s = Server::start(&[]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "ab", "10.0.0.2"]), Reply::Int(1));
    assert_user(&s, "reader", &["-@all", "+whitelist.get"], Expect { get: RUNS, set: REDIS });
    assert_user(&s, "noset", &["+@all", "-whitelist.set"], Expect { get: RUNS, set: REDIS });
    assert_user(&s, "upper", &["-@all", "+WHITELIST.GET", "+Whitelist.Set"], Expect { get: RUNS, set: RUNS });
    // A later category rule overrides the name on 7.2+; 7.0 keeps only the
    // resulting command bitmap, which reads back as `-@all +whitelist.set`.
    let set = if flavor().has_72_api() { CATEGORY } else { RUNS };
    assert_user(&s, "late", &["-@all", "+whitelist.set", "-@admin"], Expect { get: REDIS, set });
}

#[test]
fn a_name_granted_after_a_category_removal() {
    let s = Server::start(&[]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "ab", "10.0.0.2"]), Reply::Int(1));
    // 7.2+ keeps the rules in order, so the later +whitelist.get wins. 7.0
    // keeps a command bitmap in which +@all had already set the bit: the rules
    // read back as `+@all -@dangerous`, the same as without the grant, and the
    // module refuses (README: grant it in a selector there).
    let rules = ["allcommands", "-@dangerous", "+whitelist.get"];
    let get = if flavor().has_72_api() { RUNS } else { CATEGORY };
    assert_user(&s, "opsget", &rules, Expect { get, set: CATEGORY });
    let Reply::Array(described) = s.admin().call(&["ACL", "GETUSER", "opsget"]) else { panic!("ACL GETUSER") };
    let commands = described.chunks(2).find(|kv| kv[0].text() == "commands").map(|kv| kv[1].text());
    let expected = if flavor().has_72_api() { "+@all -@dangerous +whitelist.get" } else { "+@all -@dangerous" };
    assert_eq!(commands.as_deref(), Some(expected));
}

#[test]
fn a_selector_grants_what_the_root_rules_refuse() {
    let s = Server::start(&[]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "ab", "10.0.0.2"]), Reply::Int(1));
    assert_user(&s, "sel", &["-@all", "+whitelist.get", "(+whitelist.set)"], Expect { get: RUNS, set: RUNS });
    let rules = ["+@all", "-@dangerous", "(+whitelist.get)"];
    assert_user(&s, "hardened", &rules, Expect { get: RUNS, set: CATEGORY });
    assert_user(&s, "both", &["+@all", "-@admin", "(+@all -@dangerous)"], Expect { get: CATEGORY, set: CATEGORY });
}

#[test]
fn a_first_argument_rule_allows_that_argument_only() {
    let s = Server::start(&[]);
    assert_eq!(s.admin().call(&["WHITELIST.SET", "prod", "10.0.0.2"]), Reply::Int(1));
    user(&s, "prodonly", &["-@all", "+whitelist.get|prod"]);
    let mut c = login(&s, "prodonly");
    assert_eq!(c.call(&["WHITELIST.GET", "prod"]), Reply::strings(&["10.0.0.2"]));
    // Redis matches the argument without case; the command then judges it.
    assert_eq!(
        c.call(&["WHITELIST.GET", "PROD"]),
        Reply::err(
            "ERR invalid group name 'PROD': 2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit"
        )
    );
    // Redis itself refuses these on every server (the command bit is off).
    assert_eq!(s.admin().call(&["ACL", "LOG", "RESET"]), Reply::ok());
    assert_eq!(c.call(&["WHITELIST.GET", "dev"]), flavor().noperm("prodonly", "whitelist.get"));
    assert_eq!(c.call(&["WHITELIST.GET"]), flavor().noperm("prodonly", "whitelist.get"));
    let entry = newest_log_entry(&s);
    assert_eq!(entry["context"], Reply::bulk("toplevel"));
    assert_eq!(entry["count"], Reply::Int(2));
}

#[test]
fn a_refused_tcp_client_is_logged_with_its_address() {
    let s = Server::start(&[]);
    user(&s, "noadmin", &["+@all", "-@admin"]);
    let mut c = s.connect_from("127.0.0.2");
    assert_eq!(c.call(&["AUTH", "noadmin", "pw"]), Reply::ok());
    assert_refused(&s, &mut c, "noadmin", SET, By::Category);
    let info = newest_log_entry(&s)["client-info"].text();
    assert!(info.contains(" addr=127.0.0.2:"), "{info}");
    assert!(info.contains(" cmd=whitelist.set "), "{info}");
    // Refused again: Redis counts the repeat in the same entry.
    assert_eq!(c.call(SET), flavor().noperm("noadmin", "whitelist.set"));
    assert_eq!(newest_log_entry(&s)["count"], Reply::Int(2));
    assert_eq!(log_len(&s), 1);
}

#[test]
fn inside_multi_each_server_refuses_its_own_way() {
    let s = Server::start(&[]);
    user(&s, "noadmin", &["~*", "+@all", "-@admin"]);
    let mut c = login(&s, "noadmin");
    let noperm = flavor().noperm("noadmin", "whitelist.set");
    assert_eq!(c.call(&["MULTI"]), Reply::ok());
    assert_eq!(c.call(&["SET", "k", "v"]), Reply::Status("QUEUED".into()));
    let queued = c.call(SET);
    let exec = c.call(&["EXEC"]);
    if flavor().has_72_api() {
        // Refused when queued, and the whole transaction with it.
        assert_eq!(queued, noperm);
        assert_eq!(exec, Reply::err("EXECABORT Transaction discarded because of previous errors."));
        assert_eq!(s.admin().call(&["GET", "k"]), Reply::Nil);
        assert_logged(&s, "noadmin", "whitelist.set", "multi");
    } else {
        // 7.0 queues it (Redis sees no category to refuse) and the module
        // refuses it when EXEC runs it: the rest of the transaction runs.
        assert_eq!(queued, Reply::Status("QUEUED".into()));
        assert_eq!(exec, Reply::Array(vec![Reply::ok(), noperm]));
        assert_eq!(s.admin().call(&["GET", "k"]), Reply::bulk("v"));
        assert_logged(&s, "noadmin", "whitelist.set", "module");
    }
    assert_eq!(s.admin().call(&["WHITELIST.LIST", "ALL"]), Reply::Array(vec![]));
}

#[test]
fn what_each_server_reports_about_the_categories() {
    let s = Server::start(&[]);
    user(&s, "noadmin", &["+@all", "-@admin"]);
    let mut a = s.admin();
    let Reply::Array(info) = a.call(&["COMMAND", "INFO", "whitelist.set"]) else { panic!("COMMAND INFO") };
    let Some(Reply::Array(details)) = info.first() else { panic!("COMMAND INFO whitelist.set") };
    let Reply::Array(admin) = a.call(&["ACL", "CAT", "admin"]) else { panic!("ACL CAT admin") };
    let listed = admin.contains(&Reply::bulk("whitelist.set"));
    let dryrun = a.call(&["ACL", "DRYRUN", "noadmin", "whitelist.set", "ab", "10.0.0.1"]);
    if flavor().has_72_api() {
        assert_eq!(details[6], Reply::Array(vec![Reply::Status("@admin".into()), Reply::Status("@dangerous".into())]));
        assert!(listed);
        assert_eq!(dryrun, Reply::bulk("User noadmin has no permissions to run the 'whitelist.set' command"));
    } else {
        // 7.0 knows no category for a module command: only running it
        // refuses (README lists what 7.0 cannot match).
        assert_eq!(details[6], Reply::Array(vec![]));
        assert!(!listed);
        assert_eq!(dryrun, Reply::ok());
    }
}

#[test]
fn a_user_without_the_commands_gets_noperm() {
    let s = Server::start(&[]);
    user(&s, "app", &["~*", "+@read", "+@write", "+@connection"]);
    let mut app = login(&s, "app");
    assert_eq!(app.call(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(s.admin().call(&["ACL", "LOG", "RESET"]), Reply::ok());
    for cmd in ["whitelist.set", "whitelist.get"] {
        let args: &[&str] = if cmd == "whitelist.set" { SET } else { &[cmd] };
        assert_eq!(app.call(args), flavor().noperm("app", cmd));
        // Redis refuses these itself on every server: the command bit is off.
        let entry = newest_log_entry(&s);
        assert_eq!(entry["context"], Reply::bulk("toplevel"));
        assert_eq!(entry["object"], Reply::bulk(cmd));
    }
    assert_eq!(s.admin().call(&["WHITELIST.LIST", "ALL"]), Reply::Array(vec![]));
}

#[test]
fn a_read_only_operator_can_get_list_and_check_only() {
    let s = Server::start(&[]);
    let mut a = s.admin();
    a.call(&["WHITELIST.SET", "prod", "10.0.0.0/8"]);
    user(&s, "ro", &["+whitelist.get", "+whitelist.list", "+whitelist.check"]);
    let mut ro = login(&s, "ro");
    assert_eq!(ro.call(&["WHITELIST.GET"]), Reply::strings(&["prod", "10.0.0.0/8"]));
    assert_eq!(ro.call(&["WHITELIST.GET", "prod"]), Reply::strings(&["10.0.0.0/8"]));
    assert_eq!(ro.call(&["WHITELIST.LIST"]), Reply::strings(&["prod"]));
    assert_eq!(
        ro.call(&["WHITELIST.CHECK", "10.1.1.1"]),
        Reply::Array(vec![
            Reply::bulk("allowed"),
            Reply::bulk("prod"),
            Reply::bulk("10.0.0.0/8"),
            Reply::bulk("entry")
        ])
    );
    let before = a.call(&["WHITELIST.EXPORT"]);
    for (cmd, args) in [
        ("whitelist.set", &["WHITELIST.SET", "prod", "10.0.0.1"][..]),
        ("whitelist.add", &["WHITELIST.ADD", "prod", "10.0.0.1"][..]),
        ("whitelist.del", &["WHITELIST.DEL", "prod", "FORCE"][..]),
        ("whitelist.export", &["WHITELIST.EXPORT"][..]),
    ] {
        assert_eq!(ro.call(args), flavor().noperm("ro", cmd));
    }
    assert_eq!(a.call(&["WHITELIST.EXPORT"]), before);
}

#[test]
fn a_replica_applies_its_primarys_changes_whatever_its_users_rules() {
    // The replica's default user may not run the commands; the primary's
    // stream has no user to check and must still apply.
    let primary = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let replicaof = format!("127.0.0.1 {}", primary.port);
    let replica = Server::start(&["--replicaof", replicaof.as_str()]);
    user(&replica, "admin", &["+@all"]);
    assert_eq!(replica.admin().call(&["ACL", "SETUSER", "default", "-@admin", "-@dangerous"]), Reply::ok());
    let mut admin = login(&replica, "admin");
    wait_for("the replica's link", || {
        admin.call(&["INFO", "replication"]).text().contains("master_link_status:up").then_some(())
    });
    assert_eq!(primary.admin().call(SET), Reply::Int(1));
    wait_for("the replica to apply WHITELIST.SET", || (admin.call(GET) == Reply::strings(&["10.0.0.1"])).then_some(()));
    assert_eq!(replica.admin().call(GET), flavor().noperm("default", "whitelist.get"));
    assert!(!replica.log().contains("cannot read the ACL rules"));
    // Its admin connection must be able to shut it down.
    assert_eq!(admin.call(&["ACL", "SETUSER", "default", "+@all"]), Reply::ok());
}

#[test]
fn the_aof_replays_whatever_the_default_users_rules() {
    let s = Server::start(&["--appendonly", "yes"]);
    assert_eq!(s.admin().call(SET), Reply::Int(1));
    // AOF replay has no user to check: the restricted default user must not
    // stop it.
    let restricted = ["--user", "default", "on", "nopass", "~*", "+@all", "-@admin"];
    let admin_user = ["--user", "admin", "on", ">pw", "~*", "+@all"];
    let args: Vec<&str> = ["--appendonly", "yes"].iter().chain(&restricted).chain(&admin_user).copied().collect();
    let s = s.restart(&args);
    let mut admin = login(&s, "admin");
    assert_eq!(admin.call(GET), Reply::strings(&["10.0.0.1"]));
    assert_eq!(s.admin().call(GET), flavor().noperm("default", "whitelist.get"));
    assert!(!s.log().contains("cannot read the ACL rules"));
    // Its admin connection must be able to shut it down.
    assert_eq!(admin.call(&["ACL", "SETUSER", "default", "+@all"]), Reply::ok());
}

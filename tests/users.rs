//! Per-user restrictions (SPEC §11): an ACL user bound to groups may log in
//! only from their addresses. Enforced through the auth callbacks of Redis
//! 7.2+ and Valkey; on Redis 7.0 a client's `BIND` is refused, and bindings
//! that arrive by data or `IMPORT` are kept but not enforced.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{flavor, wait_for, Client, Options, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
const NEEDS_72: &str = "ERR per-user restrictions need Redis 7.2 or newer";

fn b(s: &str) -> Reply {
    Reply::bulk(s)
}

fn wrongpass() -> Reply {
    Reply::err(WRONGPASS)
}

/// `app` and `admin` (password `pw`, every command) and `bob` (unbound).
/// Groups: `app_servers` 127.0.0.2, `office` 127.0.0.3, `others` 127.0.0.4.
fn setup(s: &Server) -> Client {
    let mut a = s.admin();
    for user in ["app", "admin", "bob"] {
        assert_eq!(a.call(&["ACL", "SETUSER", user, "on", ">pw", "+@all", "~*"]), Reply::ok());
    }
    assert_eq!(a.call(&["WHITELIST.SET", "app_servers", "127.0.0.2"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.SET", "office", "127.0.0.3"]), Reply::Int(1));
    assert_eq!(a.call(&["WHITELIST.SET", "others", "127.0.0.4"]), Reply::Int(1));
    a
}

fn auth(c: &mut Client, user: &str, password: &str) -> Reply {
    c.call(&["AUTH", user, password])
}

/// On a server without auth callbacks (7.0), asserts that a client's BIND
/// is refused there and returns `true`: the rest of the test is 7.2+'s.
fn refused_here(a: &mut Client) -> bool {
    if flavor().has_72_api() {
        return false;
    }
    assert_eq!(a.call(&["WHITELIST.BIND", "office", "app"]), Reply::err(NEEDS_72));
    assert_eq!(a.call(&["WHITELIST.BINDINGS"]), Reply::Array(vec![]));
    true
}

fn counter(s: &Server, field: &str) -> u64 {
    s.info_field(field).parse().expect("a number")
}

fn group_line(s: &Server, group: &str) -> String {
    s.info_field(&format!("whitelist_group_{group}"))
}

/// The first row of `WHITELIST.DENIED` as (addr, reason).
fn newest_denied(a: &mut Client) -> (String, String) {
    let Reply::Array(rows) = a.call(&["WHITELIST.DENIED", "COUNT", "1"]) else { panic!("DENIED") };
    let Some(Reply::Array(row)) = rows.first() else { panic!("no denied row") };
    let field = |name: &str| {
        let i = row.iter().position(|r| *r == b(name)).expect("a DENIED field");
        row[i + 1].text()
    };
    (field("addr"), field("reason"))
}

#[test]
fn a_bound_user_logs_in_only_from_its_groups() {
    let s = Server::start(NO_LOOPBACK);
    let mut a = setup(&s);
    if !flavor().has_72_api() {
        assert_eq!(a.call(&["WHITELIST.BIND", "app_servers", "app"]), Reply::err(NEEDS_72));
        assert_eq!(a.call(&["WHITELIST.BINDINGS"]), Reply::Array(vec![]));
        assert_eq!(counter(&s, "whitelist_users_enforced"), 0);
        // UNBIND works (nothing to unbind here); the group must exist.
        assert_eq!(a.call(&["WHITELIST.UNBIND", "app_servers", "app"]), Reply::Int(0));
        assert_eq!(a.call(&["WHITELIST.UNBIND", "nosuch", "app"]), Reply::err("ERR no such group 'nosuch'"));
        return;
    }
    assert_eq!(counter(&s, "whitelist_users_enforced"), 1);
    assert_eq!(a.call(&["WHITELIST.BIND", "nosuch", "app"]), Reply::err("ERR no such group 'nosuch'"));
    assert_eq!(
        a.call(&["WHITELIST.BIND", "app_servers", "FORCE", "app"]),
        Reply::err("ERR syntax error: FORCE must be the last argument")
    );
    let version = counter(&s, "whitelist_version");
    assert_eq!(a.call(&["WHITELIST.BIND", "app_servers", "app", "ghost", "app"]), Reply::Int(2));
    assert_eq!(counter(&s, "whitelist_version"), version + 1);
    // Binding again changes nothing and leaves the version.
    assert_eq!(a.call(&["WHITELIST.BIND", "app_servers", "app", "force"]), Reply::Int(0));
    assert_eq!(counter(&s, "whitelist_version"), version + 1);
    assert_eq!(a.call(&["WHITELIST.UNBIND", "app_servers", "ghost"]), Reply::Int(1));
    assert_eq!(counter(&s, "whitelist_version"), version + 2);
    assert_eq!(a.call(&["WHITELIST.BIND", "office", "admin"]), Reply::Int(1));
    assert_eq!(
        a.call(&["WHITELIST.BINDINGS"]),
        Reply::Array(vec![b("admin"), Reply::strings(&["office"]), b("app"), Reply::strings(&["app_servers"])])
    );
    assert!(group_line(&s, "app_servers").ends_with(",users=1"), "{}", group_line(&s, "app_servers"));
    assert!(group_line(&s, "others").ends_with(",users=0"), "{}", group_line(&s, "others"));
    assert_eq!(counter(&s, "whitelist_users_bound"), 2);
    let exported = a.call(&["WHITELIST.EXPORT"]).text();
    assert!(exported.contains(r#""name":"app_servers","users":["app"]"#), "{exported}");

    // The right password from the wrong address: Redis's own WRONGPASS.
    let mut outside = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut outside, "app", "pw"), wrongpass());
    assert_eq!(outside.call(&["HELLO", "3", "AUTH", "app", "pw"]), wrongpass());
    assert_eq!(auth(&mut outside, "admin", "pw"), wrongpass());
    // Unbound users are not restricted; the connection itself stays served.
    assert_eq!(auth(&mut outside, "bob", "pw"), Reply::ok());
    assert_eq!(outside.call(&["ACL", "WHOAMI"]), b("bob"));
    assert_eq!(counter(&s, "whitelist_auth_denied"), 3);
    assert_eq!(newest_denied(&mut a), (String::from("127.0.0.4"), String::from("user")));
    s.wait_log("refused login as user 'app' from 127.0.0.4:");
    // An ACL LOG entry of reason auth names the user.
    let Reply::Array(entries) = a.call(&["ACL", "LOG", "1"]) else { panic!("ACL LOG") };
    let Some(Reply::Array(entry)) = entries.first() else { panic!("no ACL LOG entry") };
    let field = |name: &str| entry[entry.iter().position(|r| *r == b(name)).expect("an ACL LOG field") + 1].text();
    assert_eq!((field("reason"), field("username")), (String::from("auth"), String::from("admin")));

    // From its own group: the password check runs as usual.
    let mut inside = s.connect_from("127.0.0.2");
    assert_eq!(auth(&mut inside, "app", "wrong"), wrongpass());
    assert_eq!(auth(&mut inside, "app", "pw"), Reply::ok());
    let hello = inside.call(&["HELLO", "3", "AUTH", "app", "pw"]);
    assert!(matches!(hello, Reply::Map(_)), "{hello:?}");
    assert_eq!(counter(&s, "whitelist_auth_denied"), 3);

    // CHECK with USER.
    assert_eq!(
        a.call(&["WHITELIST.CHECK", "127.0.0.4", "USER", "app"]),
        Reply::Array(vec![b("denied"), Reply::Nil, Reply::Nil, b("user")])
    );
    assert_eq!(
        a.call(&["WHITELIST.CHECK", "127.0.0.2", "user", "app"]),
        Reply::Array(vec![b("allowed"), b("app_servers"), b("127.0.0.2"), b("entry")])
    );
    assert_eq!(
        a.call(&["WHITELIST.CHECK", "127.0.0.4", "USER", "bob"]),
        Reply::Array(vec![b("allowed"), b("others"), b("127.0.0.4"), b("entry")])
    );
    assert_eq!(
        a.call(&["WHITELIST.CHECK", "127.0.0.9", "USER", "app"]),
        Reply::Array(vec![b("denied"), Reply::Nil, Reply::Nil, b("no-match")])
    );

    // UNBIND lifts the restriction.
    assert_eq!(a.call(&["WHITELIST.UNBIND", "app_servers", "app", "FORCE"]), Reply::Int(1));
    assert_eq!(auth(&mut outside, "app", "pw"), Reply::ok());
    // Deleting the group drops its bindings.
    assert_eq!(auth(&mut outside, "admin", "pw"), wrongpass());
    assert_eq!(a.call(&["WHITELIST.DEL", "office"]), Reply::Int(1));
    assert_eq!(auth(&mut outside, "admin", "pw"), Reply::ok());
    assert_eq!(a.call(&["WHITELIST.BINDINGS"]), Reply::Array(vec![]));
    assert_eq!(counter(&s, "whitelist_users_bound"), 0);
}

#[test]
fn bindings_apply_even_without_entries_and_mode_off_turns_them_off() {
    if !flavor().has_72_api() {
        return bindings_are_kept_but_not_enforced_without_auth_callbacks();
    }
    let s = Server::start(NO_LOOPBACK);
    let mut a = setup(&s);
    assert_eq!(a.call(&["WHITELIST.BIND", "app_servers", "app"]), Reply::Int(1));
    // With every entry gone the whitelist admits everyone, but `app` still
    // logs in only from its (now empty) group: from nowhere.
    for g in ["app_servers", "office", "others"] {
        let entry = match g {
            "app_servers" => "127.0.0.2",
            "office" => "127.0.0.3",
            _ => "127.0.0.4",
        };
        let reply = a.call(&["WHITELIST.REMOVE", g, entry, "FORCE"]);
        assert_eq!(reply, Reply::Int(1));
    }
    let mut c = s.connect_from("127.0.0.2");
    assert_eq!(auth(&mut c, "app", "pw"), wrongpass());
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.mode", "off"]), Reply::ok());
    assert_eq!(auth(&mut c, "app", "pw"), Reply::ok());
}

#[test]
fn a_change_closes_open_connections_of_a_bound_user_now_outside_its_groups() {
    let s = Server::start(NO_LOOPBACK);
    let mut a = setup(&s);
    if refused_here(&mut a) {
        return;
    }
    assert_eq!(a.call(&["WHITELIST.SET", "others", "127.0.0.2,127.0.0.4"]), Reply::Int(2));
    let mut outside = s.connect_from("127.0.0.4");
    let mut inside = s.connect_from("127.0.0.2");
    let mut bob = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut outside, "app", "pw"), Reply::ok());
    assert_eq!(auth(&mut inside, "app", "pw"), Reply::ok());
    assert_eq!(auth(&mut bob, "bob", "pw"), Reply::ok());
    let mut unauthenticated = s.connect_from("127.0.0.4");
    let closed = counter(&s, "whitelist_clients_closed_on_change");
    assert_eq!(a.call(&["WHITELIST.BIND", "app_servers", "app"]), Reply::Int(1));
    assert!(outside.closed_within(Duration::from_secs(5)), "app's connection from outside stayed open");
    assert!(inside.is_served());
    assert!(bob.is_served());
    assert!(unauthenticated.is_served());
    // app_servers moves: .2 is still admitted (by `others`) but app is not.
    assert_eq!(a.call(&["WHITELIST.SET", "app_servers", "127.0.0.9"]), Reply::Int(1));
    assert!(inside.closed_within(Duration::from_secs(5)), "app's connection from .2 stayed open");
    assert!(bob.is_served());
    assert_eq!(counter(&s, "whitelist_clients_closed_on_change"), closed + 2);
    assert_eq!(counter(&s, "whitelist_auth_denied"), 2);
    // The first close is logged (the rest of that second is counted).
    s.wait_log("closed connection after a whitelist change from 127.0.0.4:");
}

#[test]
fn monitor_mode_reports_and_lets_the_login_through() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "monitor"]);
    let mut a = setup(&s);
    if refused_here(&mut a) {
        return;
    }
    let mut open = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut open, "app", "pw"), Reply::ok());
    assert_eq!(a.call(&["WHITELIST.BIND", "app_servers", "app"]), Reply::Int(1));
    assert!(open.is_served());
    assert_eq!(counter(&s, "whitelist_auth_would_deny"), 1);
    s.wait_log("would close connection (whitelist.mode monitor) from 127.0.0.4:");
    // Past the one-line-a-second limit of denial lines.
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut c, "app", "pw"), Reply::ok());
    assert_eq!(counter(&s, "whitelist_auth_would_deny"), 2);
    assert_eq!(counter(&s, "whitelist_auth_denied"), 0);
    s.wait_log("would refuse login as user 'app' (whitelist.mode monitor) from 127.0.0.4:");
    assert_eq!(newest_denied(&mut a), (String::from("127.0.0.4"), String::from("user")));
    // Reported once: a later change does not count the open connection again.
    assert_eq!(a.call(&["WHITELIST.ADD", "office", "127.0.0.5"]), Reply::Int(1));
    assert_eq!(counter(&s, "whitelist_auth_would_deny"), 3);
    // Enforce closes both.
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.mode", "enforce"]), Reply::ok());
    assert!(open.closed_within(Duration::from_secs(5)));
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn a_nopass_default_user_that_is_bound_is_judged_at_connect() {
    let s = Server::start(NO_LOOPBACK);
    let mut a = setup(&s);
    if refused_here(&mut a) {
        return;
    }
    let mut before = s.connect_from("127.0.0.4");
    assert!(before.is_served());
    assert_eq!(a.call(&["WHITELIST.BIND", "office", "default"]), Reply::Int(1));
    assert!(before.closed_within(Duration::from_secs(5)), "default's connection from outside stayed open");
    let mut c = s.connect_from("127.0.0.4");
    assert!(c.closed_within(Duration::from_secs(5)), "a nopass default client from outside was admitted");
    let mut office = s.connect_from("127.0.0.3");
    assert!(office.is_served());
    assert_eq!(counter(&s, "whitelist_auth_denied"), 2);
    assert_eq!(newest_denied(&mut a), (String::from("127.0.0.4"), String::from("user")));
    // With a password, `default` clients log in with AUTH and are judged then;
    // a client from outside may still log in as another user.
    assert_eq!(a.call(&["ACL", "SETUSER", "default", "resetpass", ">secret"]), Reply::ok());
    let mut c = s.connect_from("127.0.0.4");
    assert_eq!(c.call(&["PING"]), Reply::err("NOAUTH Authentication required."));
    assert_eq!(auth(&mut c, "default", "secret"), wrongpass());
    assert_eq!(auth(&mut c, "bob", "pw"), Reply::ok());
    assert_eq!(a.call(&["ACL", "SETUSER", "default", "nopass"]), Reply::ok());
    // UNBIND lifts it.
    assert_eq!(a.call(&["WHITELIST.UNBIND", "office", "default"]), Reply::Int(1));
    let mut c = s.connect_from("127.0.0.4");
    assert!(c.is_served());
}

#[test]
fn lock_out_protection_covers_the_callers_own_user() {
    let s = Server::start(NO_LOOPBACK);
    let mut a = setup(&s);
    if refused_here(&mut a) {
        return;
    }
    let mut me = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut me, "admin", "pw"), Reply::ok());
    let refusal = "ERR this change would disconnect your own connection from 127.0.0.4; add FORCE to apply it anyway";
    assert_eq!(me.call(&["WHITELIST.BIND", "office", "admin"]), Reply::err(refusal));
    assert_eq!(me.call(&["WHITELIST.BINDINGS"]), Reply::Array(vec![]));
    // Binding another user is no risk to the caller.
    assert_eq!(me.call(&["WHITELIST.BIND", "office", "app"]), Reply::Int(1));
    assert_eq!(me.call(&["WHITELIST.BIND", "others", "admin"]), Reply::Int(1));
    // Once bound, a change that takes the caller's address from its groups
    // needs FORCE too, even while another group still admits the address.
    assert_eq!(me.call(&["WHITELIST.ADD", "office", "127.0.0.4"]), Reply::Int(1));
    assert_eq!(me.call(&["WHITELIST.SET", "others", "127.0.0.5"]), Reply::err(refusal));
    assert_eq!(me.call(&["WHITELIST.REMOVE", "office", "127.0.0.4"]), Reply::Int(1));
    assert_eq!(me.call(&["MULTI"]), Reply::ok());
    assert_eq!(me.call(&["WHITELIST.BIND", "office", "admin", "FORCE"]), Reply::Status("QUEUED".into()));
    assert_eq!(me.call(&["WHITELIST.UNBIND", "others", "admin", "FORCE"]), Reply::Status("QUEUED".into()));
    let inside_multi =
        "ERR this change would disconnect your own connection from 127.0.0.4; inside MULTI/EXEC it is refused even with FORCE";
    assert_eq!(me.call(&["EXEC"]), Reply::Array(vec![Reply::Int(1), Reply::err(inside_multi)]));
    assert_eq!(me.call(&["WHITELIST.UNBIND", "others", "admin"]), Reply::err(refusal));
    assert_eq!(me.call(&["WHITELIST.UNBIND", "others", "admin", "FORCE"]), Reply::Int(1));
    assert!(me.closed_within(Duration::from_secs(5)), "the caller stayed connected after cutting itself off");
}

#[test]
fn exempt_clients_are_exempt_from_bindings_too() {
    let s = Server::start(&[]);
    let mut a = setup(&s);
    if refused_here(&mut a) {
        return;
    }
    assert_eq!(a.call(&["WHITELIST.BIND", "office", "app"]), Reply::Int(1));
    // Every 127.x address is loopback: exempt while allow-loopback is yes.
    let mut c = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut c, "app", "pw"), Reply::ok());
    let mut unix = s.admin();
    assert_eq!(auth(&mut unix, "app", "pw"), Reply::ok());
    assert_eq!(
        a.call(&["WHITELIST.CHECK", "127.0.0.4", "USER", "app"]),
        Reply::Array(vec![b("allowed"), b("others"), b("127.0.0.4"), b("entry")])
    );
    // Loopback no longer exempt: the login from .4 is re-judged and closed.
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.allow-loopback", "no"]), Reply::ok());
    assert!(c.closed_within(Duration::from_secs(5)), "app's loopback connection stayed open");
    assert!(unix.is_served());
    let mut c = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut c, "app", "pw"), wrongpass());
    // The unix socket no longer exempt: no unix client is admitted at all.
    assert_eq!(a.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "no"]), Reply::ok());
    assert!(unix.closed_within(Duration::from_secs(5)));
}

#[test]
fn bindings_are_replicated_persisted_and_enforced_on_the_replica() {
    // The primary admits its replica's link from 127.0.0.1 (loopback).
    let s = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let mut a = setup(&s);
    let replicaof = format!("127.0.0.1 {}", s.port);
    let bindings = |srv: &Server| srv.admin().call(&["WHITELIST.BINDINGS"]);
    let want = Reply::Array(vec![b("app"), Reply::strings(&["app_servers"])]);
    if refused_here(&mut a) {
        // Kept and propagated, not enforced: an IMPORT carries them.
        let r = Server::start(&["--replicaof", &replicaof, "--whitelist.allow-loopback", "no"]);
        let doc = r#"{"groups":[{"name":"app_servers","entries":["127.0.0.2"],"users":["app"]},{"name":"others","entries":["127.0.0.4"]}]}"#;
        assert!(matches!(a.call(&["WHITELIST.IMPORT", doc]), Reply::Int(_)));
        wait_for("the replicated IMPORT", || (bindings(&r) == want).then_some(()));
        assert_eq!(counter(&r, "whitelist_users_enforced"), 0);
        assert_eq!(r.admin().call(&["ACL", "SETUSER", "app", "on", ">pw", "+@all", "~*"]), Reply::ok());
        let mut c = r.connect_from("127.0.0.4");
        assert_eq!(auth(&mut c, "app", "pw"), Reply::ok());
        return;
    }
    assert_eq!(a.call(&["WHITELIST.BIND", "app_servers", "app"]), Reply::Int(1));
    let r = Server::start(&["--replicaof", &replicaof, "--whitelist.allow-loopback", "no"]);
    wait_for("the full sync", || (bindings(&r) == want).then_some(()));
    assert_eq!(a.call(&["WHITELIST.BIND", "office", "app", "admin"]), Reply::Int(2));
    let want = Reply::Array(vec![
        b("admin"),
        Reply::strings(&["office"]),
        b("app"),
        Reply::strings(&["app_servers", "office"]),
    ]);
    wait_for("the replicated BIND", || (bindings(&r) == want).then_some(()));
    assert_eq!(r.info_field("whitelist_version"), s.info_field("whitelist_version"));
    // ACL users are not replicated: the replica's own.
    for user in ["app", "admin"] {
        assert_eq!(r.admin().call(&["ACL", "SETUSER", user, "on", ">pw", "+@all", "~*"]), Reply::ok());
    }
    let mut c = r.connect_from("127.0.0.4");
    assert_eq!(auth(&mut c, "app", "pw"), wrongpass());
    let mut c = r.connect_from("127.0.0.3");
    assert_eq!(auth(&mut c, "app", "pw"), Reply::ok());
    assert_eq!(a.call(&["WHITELIST.UNBIND", "office", "app"]), Reply::Int(1));
    wait_for("the replicated UNBIND to close app's connection", || {
        c.closed_within(Duration::from_millis(200)).then_some(())
    });
    // Persisted: saved at shutdown and loaded again.
    let mut s = s;
    s.stop(true);
    let s = s.start_again(&[]);
    let want = Reply::Array(vec![b("admin"), Reply::strings(&["office"]), b("app"), Reply::strings(&["app_servers"])]);
    assert_eq!(bindings(&s), want);
}

/// Redis 7.0: bindings that arrive by data or IMPORT are kept, shown,
/// exported and propagated, but nothing is enforced; one warning says so.
fn bindings_are_kept_but_not_enforced_without_auth_callbacks() {
    let dir = Arc::new(tempfile::TempDir::new().expect("a temp dir"));
    // A legacy single-file AOF (no preamble) holding a replayed BIND.
    let command = |args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        out
    };
    let aof = [
        command(&["WHITELIST.SET", "app_servers", "127.0.0.2"]),
        command(&["WHITELIST.SET", "others", "127.0.0.4"]),
        command(&["WHITELIST.BIND", "app_servers", "app"]),
    ]
    .concat();
    std::fs::write(dir.path().join("appendonly.aof"), aof).expect("the AOF is written");
    let mut args = vec!["--appendonly", "yes", "--appendfilename", "appendonly.aof"];
    args.extend_from_slice(NO_LOOPBACK);
    let s = Server::start_with(Options { dir: Some(Arc::clone(&dir)), ..Options::args(&args) });
    let mut a = s.admin();
    assert_eq!(a.call(&["WHITELIST.BINDINGS"]), Reply::Array(vec![b("app"), Reply::strings(&["app_servers"])]));
    assert_eq!(counter(&s, "whitelist_users_enforced"), 0);
    assert_eq!(counter(&s, "whitelist_users_bound"), 1);
    assert!(group_line(&s, "app_servers").ends_with(",users=1"));
    let warning = "the bindings are kept and propagated but not enforced (whitelist_users_enforced:0)";
    s.wait_log(warning);
    assert_eq!(a.call(&["ACL", "SETUSER", "app", "on", ">pw", "+@all", "~*"]), Reply::ok());
    let mut c = s.connect_from("127.0.0.4");
    assert_eq!(auth(&mut c, "app", "pw"), Reply::ok());
    assert_eq!(
        a.call(&["WHITELIST.CHECK", "127.0.0.4", "USER", "app"]),
        Reply::Array(vec![b("denied"), Reply::Nil, Reply::Nil, b("user")])
    );
    assert_eq!(a.call(&["WHITELIST.BIND", "others", "app"]), Reply::err(NEEDS_72));
    // An IMPORT carrying bindings is kept too.
    let doc = r#"{"groups":[{"name":"app_servers","entries":["127.0.0.2"],"users":["app","ops"]},{"name":"others","entries":["127.0.0.4"]}]}"#;
    assert!(matches!(a.call(&["WHITELIST.IMPORT", doc]), Reply::Int(_)));
    assert_eq!(
        a.call(&["WHITELIST.BINDINGS"]),
        Reply::Array(vec![b("app"), Reply::strings(&["app_servers"]), b("ops"), Reply::strings(&["app_servers"])])
    );
    assert_eq!(auth(&mut c, "app", "pw"), Reply::ok());
    assert_eq!(counter(&s, "whitelist_auth_denied"), 0);
    // UNBIND works, so kept bindings can be removed.
    assert_eq!(a.call(&["WHITELIST.UNBIND", "app_servers", "app", "ops"]), Reply::Int(2));
    assert_eq!(a.call(&["WHITELIST.BINDINGS"]), Reply::Array(vec![]));
    assert_eq!(s.log().matches(warning).count(), 1);
}

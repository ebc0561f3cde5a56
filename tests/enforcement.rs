//! Connection enforcement against a real server: who is admitted, who is
//! closed, when, and what the counters and the log say.

mod common;

use std::time::Duration;

use common::{counter, info_of, Reply, Server};

const NO_LOOPBACK: &[&str] = &["--whitelist.allow-loopback", "no"];

fn info_u64(s: &Server, field: &str) -> u64 {
    s.info_field(field).parse().expect("a number")
}

#[test]
fn whitelisted_sources_are_served_others_are_closed_before_any_reply() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.16/30"]), Reply::Int(2));
    for allowed in ["127.0.0.2", "127.0.0.16", "127.0.0.19"] {
        assert!(s.connect_from(allowed).is_served(), "{allowed} should be served");
    }
    for denied in ["127.0.0.3", "127.0.0.20", "127.0.0.1"] {
        let mut c = s.connect_from(denied);
        assert!(c.closed_within(Duration::from_secs(5)), "{denied} should be closed");
    }
    // A denied client never gets to run a command: the command it sent at once is lost.
    let mut c = s.connect_from("127.0.0.9");
    let _ = c.send(&[b"SET", b"k", b"v"]);
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(admin.call(&["EXISTS", "k"]), Reply::Int(0));
}

#[test]
fn ipv6_loopback_is_matched_like_any_address() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    assert_eq!(admin.call(&["WHITELIST.SET", "v6", "::1"]), Reply::Int(1));
    assert!(s.connect_from("::1").is_served());
    assert!(s.connect_from("127.0.0.2").closed_within(Duration::from_secs(5)));
    assert_eq!(admin.call(&["WHITELIST.SET", "v6", "::/0"]), Reply::Int(1));
    assert!(s.connect_from("::1").is_served());
    assert_eq!(admin.call(&["WHITELIST.SET", "v6", "2001:db8::/32", "FORCE"]), Reply::Int(1));
    assert!(s.connect_from("::1").closed_within(Duration::from_secs(5)));
}

#[test]
fn loopback_is_admitted_by_default() {
    let s = Server::start(&[]);
    s.admin().call(&["WHITELIST.SET", "default", "10.0.0.0/8"]);
    assert!(s.connect_from("127.0.0.1").is_served());
    assert!(s.connect_from("127.0.0.77").is_served());
    assert!(s.connect_from("::1").is_served());
}

#[test]
fn unix_socket_clients_follow_allow_unixsocket() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    assert!(s.admin().is_served());
    // Turning the exemption off closes the admin connection itself and every
    // later unix-socket client.
    let mut tcp = s.connect_from("127.0.0.2");
    assert_eq!(tcp.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "no"]), Reply::ok());
    assert!(admin.closed_within(Duration::from_secs(5)));
    let mut later = s.admin();
    assert!(later.closed_within(Duration::from_secs(5)));
    assert_eq!(tcp.call(&["CONFIG", "SET", "whitelist.allow-unixsocket", "yes"]), Reply::ok());
    assert!(s.admin().is_served());
}

#[test]
fn an_open_connection_is_closed_when_its_entry_goes() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2,127.0.0.3"]);
    let mut two = s.connect_from("127.0.0.2");
    let mut three = s.connect_from("127.0.0.3");
    assert!(two.is_served() && three.is_served());
    assert_eq!(admin.call(&["WHITELIST.REMOVE", "default", "127.0.0.3"]), Reply::Int(1));
    assert!(three.closed_within(Duration::from_secs(5)));
    assert!(two.is_served());
    assert_eq!(info_u64(&s, "whitelist_clients_closed_on_change"), 1);
    s.wait_log("closed connection after a whitelist change from 127.0.0.3:");
}

#[test]
fn monitor_mode_counts_and_logs_but_closes_nobody() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "monitor"]);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    let checked = counter(&mut admin, "whitelist_connections_checked");
    let allowed = counter(&mut admin, "whitelist_connections_allowed");
    let mut ok = s.connect_from("127.0.0.2");
    let mut would = s.connect_from("127.0.0.3");
    assert!(ok.is_served());
    assert!(would.is_served());
    let info = info_of(&mut admin);
    assert_eq!(info["whitelist_mode"], "monitor");
    assert_eq!(info["whitelist_connections_checked"], (checked + 2).to_string());
    assert_eq!(info["whitelist_connections_allowed"], (allowed + 1).to_string());
    assert_eq!(info["whitelist_connections_would_deny"], "1");
    assert_eq!(info["whitelist_connections_denied"], "0");
    assert_eq!(info["whitelist_last_denied_addr"], "127.0.0.3");
    s.wait_log("would deny connection (whitelist.mode monitor) from 127.0.0.3:");
    // Switching to enforce closes the client that was only being watched.
    assert_eq!(admin.call(&["CONFIG", "SET", "whitelist.mode", "enforce"]), Reply::ok());
    assert!(would.closed_within(Duration::from_secs(5)));
    assert!(ok.is_served());
}

#[test]
fn mode_off_checks_nothing_and_counts_nothing() {
    let s = Server::start(&["--whitelist.allow-loopback", "no", "--whitelist.mode", "off"]);
    s.admin().call(&["WHITELIST.SET", "default", "127.0.0.2"]);
    assert!(s.connect_from("127.0.0.3").is_served());
    assert!(s.admin().is_served());
    assert_eq!(info_u64(&s, "whitelist_connections_checked"), 0);
    assert_eq!(info_u64(&s, "whitelist_connections_allowed"), 0);
}

#[test]
fn unix_socket_admissions_are_counted_as_allowed() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    let before = counter(&mut admin, "whitelist_connections_allowed");
    assert!(s.admin().is_served());
    assert_eq!(counter(&mut admin, "whitelist_connections_allowed"), before + 1);
}

#[test]
fn counters_hits_and_last_denied() {
    let s = Server::start(NO_LOOPBACK);
    let mut admin = s.admin();
    admin.call(&["WHITELIST.SET", "aa", "127.0.0.2"]);
    admin.call(&["WHITELIST.SET", "bb", "127.0.0.0/24"]);
    let checked = counter(&mut admin, "whitelist_connections_checked");
    let allowed = counter(&mut admin, "whitelist_connections_allowed");
    for _ in 0..3 {
        assert!(s.connect_from("127.0.0.2").is_served());
    }
    assert!(s.connect_from("127.0.0.5").is_served());
    assert!(s.connect_from("127.0.1.1").closed_within(Duration::from_secs(5)));
    let info = info_of(&mut admin);
    assert_eq!(info["whitelist_connections_checked"], (checked + 5).to_string());
    assert_eq!(info["whitelist_connections_allowed"], (allowed + 4).to_string());
    assert_eq!(info["whitelist_connections_denied"], "1");
    assert_eq!(info["whitelist_group_aa"], "entries=1,hits=3,attribute=show");
    assert_eq!(info["whitelist_group_bb"], "entries=1,hits=1,attribute=show");
    assert_eq!(info["whitelist_last_denied_addr"], "127.0.1.1");
    let when: i64 = info["whitelist_last_denied_time"].parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - when).abs() <= 5, "last_denied_time {when} is not now ({now})");
    s.wait_log("denied connection from 127.0.1.1:");
}

//! `CLIENT LIST` parsing: `clients::parse_client_list` on arbitrary bytes.
//!
//! Properties beyond "no panic":
//! - at most one client per line;
//! - every client read, written back as a `CLIENT LIST` line in Redis's own
//!   format (`[v6]:port` for IPv6, `flags=U` for unix sockets), reads back the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whitelist_core::clients::{parse_client_list, ListedClient};
use whitelist_core::entry::Addr;
use whitelist_core::Peer;

fn render(c: &ListedClient) -> String {
    let addr = match c.peer {
        Peer::Ip(a @ Addr::V4(_)) => format!("{a}:{}", c.port),
        Peer::Ip(a @ Addr::V6(_)) => format!("[{a}]:{}", c.port),
        Peer::Unix => format!("/unixsocket:{}", c.port),
        Peer::Unknown => format!("?:{}", c.port),
    };
    let mut flags = String::new();
    for (set, flag) in [(c.peer == Peer::Unix, 'U'), (c.is_primary_link, 'M'), (c.is_replica, 'S'), (c.is_closing, 'A')]
    {
        if set {
            flags.push(flag);
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!("id={} addr={addr} laddr=127.0.0.1:6379 fd=8 name= flags={flags} db=0 cmd=NULL user=default", c.id)
}

fuzz_target!(|data: &[u8]| {
    let clients = parse_client_list(data);
    let lines = data.split(|&b| b == b'\n').count();
    assert!(clients.len() <= lines, "{} clients from {lines} lines", clients.len());
    if clients.is_empty() {
        return;
    }
    let text: Vec<String> = clients.iter().map(render).collect();
    let again = parse_client_list(text.join("\n").as_bytes());
    assert_eq!(again, clients, "written back as\n{}", text.join("\n"));
});

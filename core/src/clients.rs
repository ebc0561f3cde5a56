//! Reading `CLIENT LIST` output: the connections that were open before the
//! module could see them connect, and the connected replicas.

use crate::entry::parse_peer;
use crate::store::Peer;

/// One line of `CLIENT LIST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedClient {
    /// The client id.
    pub id: u64,
    /// Its address.
    pub peer: Peer,
    /// Its port (0 for unix sockets).
    pub port: u16,
    /// The link to this server's primary (flag `M`): an internal client.
    pub is_primary_link: bool,
    /// A replica or monitor of this server (flag `S` or `O`).
    pub is_replica: bool,
    /// Already being closed (flag `A`).
    pub is_closing: bool,
}

/// Parses `CLIENT LIST` output; lines without an id or address are skipped.
pub fn parse_client_list(text: &[u8]) -> Vec<ListedClient> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<ListedClient> {
    let (mut id, mut addr, mut flags) = (None, None, None);
    for field in line.split(|&b| b == b' ') {
        if let Some(v) = field.strip_prefix(b"id=") {
            id = std::str::from_utf8(v).ok()?.parse::<u64>().ok();
        } else if let Some(v) = field.strip_prefix(b"addr=") {
            addr = Some(v);
        } else if let Some(v) = field.strip_prefix(b"flags=") {
            flags = Some(v);
        }
    }
    let (id, addr, flags) = (id?, addr?, flags.unwrap_or(b""));
    let colon = addr.iter().rposition(|&b| b == b':')?;
    let (host, port) = (&addr[..colon], &addr[colon + 1..]);
    let port = std::str::from_utf8(port).ok()?.parse::<u16>().ok()?;
    let host = host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]")).unwrap_or(host);
    let peer = if flags.contains(&b'U') { Peer::Unix } else { parse_peer(host).map_or(Peer::Unknown, Peer::Ip) };
    Some(ListedClient {
        id,
        peer,
        port,
        is_primary_link: flags.contains(&b'M'),
        is_replica: flags.contains(&b'S') || flags.contains(&b'O'),
        is_closing: flags.contains(&b'A'),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Addr;

    #[test]
    fn parses_redis_7_lines() {
        let text = b"id=3 addr=127.0.0.1:51424 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22426 events=r cmd=client|list user=default redir=-1 resp=2\n\
id=4 addr=/unixsocket:0 laddr=/tmp/r.sock:0 fd=9 name=admin age=1 idle=1 flags=U db=0 cmd=NULL user=default\n\
id=5 addr=[::1]:40000 laddr=[::1]:6379 fd=10 name= age=1 idle=1 flags=S db=0 cmd=replconf user=default\n\
id=6 addr=10.0.0.9:6379 laddr=10.0.0.2:5555 fd=11 name= age=1 idle=1 flags=M db=0 cmd=NULL user=default\n\
id=7 addr=[::ffff:10.1.1.1]:7 laddr=x fd=12 name= flags=A\n\
garbage line\n";
        let clients = parse_client_list(text);
        assert_eq!(clients.len(), 5);
        assert_eq!(
            clients[0],
            ListedClient {
                id: 3,
                peer: Peer::Ip(Addr::V4(0x7f00_0001)),
                port: 51424,
                is_primary_link: false,
                is_replica: false,
                is_closing: false,
            }
        );
        assert_eq!((clients[1].id, clients[1].peer, clients[1].port), (4, Peer::Unix, 0));
        assert_eq!((clients[2].peer, clients[2].is_replica), (Peer::Ip(Addr::V6(1)), true));
        assert!(clients[3].is_primary_link);
        assert_eq!((clients[4].peer, clients[4].is_closing), (Peer::Ip(Addr::V4(0x0a01_0101)), true));
    }

    #[test]
    fn odd_input_is_skipped() {
        assert!(parse_client_list(b"").is_empty());
        assert!(parse_client_list(b"id=x addr=1.2.3.4:5 flags=N").is_empty());
        assert!(parse_client_list(b"id=1 addr=1.2.3.4 flags=N").is_empty());
        assert_eq!(parse_client_list(b"id=1 addr=nohost:5 flags=N")[0].peer, Peer::Unknown);
    }
}

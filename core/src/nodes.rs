//! The cluster node guard (§12): the nodes of a cluster connect to each
//! other's client ports (`MIGRATE`, resharding, `redis-cli --cluster`), so a
//! change that would deny one of them needs `FORCE`.

use std::fmt;

use crate::gate::Shown;
use crate::store::{Peer, Policy, Whitelist};

/// A change refused because it would deny a cluster node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeniesNode(pub Shown);

impl fmt::Display for DeniesNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ERR this change would deny cluster node {}; add FORCE to apply it anyway", self.0)
    }
}

impl std::error::Error for DeniesNode {}

/// Refuses the change from `before` to `after` when `after` denies the
/// address of a node (`nodes`: address and client port, in the order they
/// are shown) that `before` admitted. A node already denied before the
/// change is not this change's doing, so it does not block unrelated edits.
pub fn guard(before: &Whitelist, after: &Whitelist, policy: Policy, nodes: &[(Peer, u16)]) -> Result<(), DeniesNode> {
    match nodes.iter().find(|(peer, _)| before.verdict(*peer, policy).allowed && !after.verdict(*peer, policy).allowed)
    {
        Some(&(peer, port)) => Err(DeniesNode(Shown { peer, port: Some(port) })),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Change, Note};
    use crate::{parse_entry, parse_peer, GroupName};

    fn empty() -> Whitelist {
        Whitelist::restore(Vec::new(), 0)
    }

    fn policy(allow_loopback: bool) -> Policy {
        Policy { allow_loopback, allow_unixsocket: true, deny_when_empty: false }
    }

    fn set(w: &Whitelist, entries: &[&str]) -> Whitelist {
        let entries = entries.iter().map(|e| parse_entry(e.as_bytes()).unwrap()).collect();
        let change = Change::Set {
            group: GroupName::parse(b"office").unwrap(),
            entries,
            attribute: None,
            note: Note::default(),
        };
        w.plan(change, None).unwrap().next.unwrap()
    }

    fn node(addr: &str, port: u16) -> (Peer, u16) {
        (Peer::Ip(parse_peer(addr.as_bytes()).unwrap()), port)
    }

    #[test]
    fn a_change_that_denies_a_node_names_the_first_one() {
        let empty = empty();
        let nodes = [node("10.0.0.1", 7000), node("10.0.0.2", 7001)];
        let after = set(&empty, &["10.0.0.1"]);
        let refused = guard(&empty, &after, policy(false), &nodes).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "ERR this change would deny cluster node 10.0.0.2:7001; add FORCE to apply it anyway"
        );
        assert_eq!(guard(&empty, &set(&empty, &["10.0.0.0/24"]), policy(false), &nodes), Ok(()));
    }

    #[test]
    fn loopback_nodes_are_exempt_while_loopback_is() {
        let empty = empty();
        let nodes = [node("127.0.0.1", 7000)];
        let after = set(&empty, &["10.0.0.1"]);
        assert_eq!(guard(&empty, &after, policy(true), &nodes), Ok(()));
        assert!(guard(&empty, &after, policy(false), &nodes).is_err());
    }

    #[test]
    fn a_node_denied_before_the_change_does_not_block_it() {
        let empty = empty();
        let nodes = [node("10.0.0.9", 7000)];
        let before = set(&empty, &["10.0.0.1"]);
        let after = set(&before, &["10.0.0.1", "10.0.0.2"]);
        assert_eq!(guard(&before, &after, policy(false), &nodes), Ok(()));
    }
}

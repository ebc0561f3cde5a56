//! Keeping the whitelist maintained (§10): usage statistics replies, the
//! expiry timer and the primary's sweep of expired entries.
//!
//! One timer, armed for the earliest expiry, does the work: when it fires
//! the clock of the whitelist in force moves on (expired entries leave the
//! matcher and open connections are judged again), and a primary removes the
//! expired entries in one commit, one propagated `WHITELIST.REMOVE` per
//! group. Nothing runs
//! per connection and nothing scans every second.

use std::os::raw::c_void;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use redis_module::{raw, Context, RedisError, RedisValue};
use whitelist_core::store::{Group, GroupSpec, Prepared, MAX_TTL, MAX_VERSION};
use whitelist_core::{GroupName, Whitelist};

use crate::ffi::{self, Ctx, Level};
use crate::hook::Fx;
use crate::state::{self, State};

/// Entries the primary removed by expiry since start (INFO).
pub static EXPIRED: AtomicU64 = AtomicU64::new(0);

/// When the armed timer fires (ms), `i64::MAX` when none is armed.
static ARMED_MS: AtomicI64 = AtomicI64::new(i64::MAX);

/// The expiry second whose matcher is being prepared (0: none).
static PREPARING: AtomicU64 = AtomicU64::new(0);

/// The matcher of the coming expiry, computed on a thread of its own; the
/// clock's advance takes it, or sets it aside if anything changed since.
static PREPARED: Mutex<Option<Prepared>> = Mutex::new(None);

/// How long before an expiry its matcher is computed (the work takes a few
/// milliseconds on another thread).
const PREPARE_LEAD_MS: i64 = 500;

/// How long a sweep waits for a write pause to end before it looks again.
const PAUSE_RETRY_MS: i64 = 100;

/// How often a replica holding expired entries looks whether it has been
/// promoted (and must sweep them itself).
const REPLICA_LOOK_MS: i64 = 1000;

/// The unix second.
pub fn now_s() -> u64 {
    u64::try_from(ffi::milliseconds().div_euclid(1000)).unwrap_or(0)
}

/// Whether an empty whitelist admits every address (`whitelist.when-empty
/// allow`): the "now off" warning applies only then.
pub fn empty_whitelist_admits(g: &State) -> bool {
    !g.config.policy().deny_when_empty
}

fn bulk(s: impl Into<String>) -> RedisValue {
    RedisValue::BulkString(s.into())
}

fn seconds_or_nil(at: Option<u64>) -> RedisValue {
    at.map_or(RedisValue::Null, |s| RedisValue::Integer(i64::try_from(s).unwrap_or(i64::MAX)))
}

fn int(n: u64) -> RedisValue {
    RedisValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// One row per entry of `g` for `WHITELIST.GET group WITHSTATS`: the keys
/// in their order with their values.
pub fn stats_rows(g: &Group) -> Vec<Vec<(&'static str, RedisValue)>> {
    g.entries()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let meta = g.meta(i);
            let usage = g.usage(i);
            vec![
                ("entry", bulk(e.to_string())),
                ("comment", meta.comment.map_or(RedisValue::Null, bulk)),
                ("expires", seconds_or_nil(meta.expires)),
                ("added", int(usage.added)),
                ("hits", int(usage.hits)),
                ("last-hit", seconds_or_nil((usage.last_hit > 0).then_some(usage.last_hit))),
            ]
        })
        .collect()
}

/// Replies an array of maps whose keys keep their order (a RESP2 client
/// gets each map as a flat array), then tells the caller nothing is left
/// to reply.
pub fn reply_rows(ctx: &Context, rows: Vec<Vec<(&'static str, RedisValue)>>) -> RedisValue {
    unsafe {
        if let Some(array) = raw::RedisModule_ReplyWithArray {
            array(ctx.ctx, rows.len() as std::os::raw::c_long);
        }
    }
    for row in rows {
        unsafe {
            if let Some(map) = raw::RedisModule_ReplyWithMap {
                map(ctx.ctx, row.len() as std::os::raw::c_long);
            }
        }
        for (key, value) in row {
            ctx.reply(Ok(bulk(key)));
            ctx.reply(Ok(value));
        }
    }
    RedisValue::NoReply
}

/// `WHITELIST.STALE seconds` at unix second `now`.
pub fn stale(w: &Whitelist, now: u64, seconds: u64) -> RedisValue {
    let mut rows = Vec::new();
    for g in w.groups() {
        for (i, e) in g.entries().iter().enumerate() {
            let u = g.usage(i);
            let last = if u.last_hit > 0 { u.last_hit } else { u.added };
            if last.saturating_add(seconds) <= now {
                rows.push(RedisValue::Array(vec![
                    bulk(g.name().to_string()),
                    bulk(e.to_string()),
                    seconds_or_nil((u.last_hit > 0).then_some(u.last_hit)),
                    int(u.added),
                ]));
            }
        }
    }
    RedisValue::Array(rows)
}

/// An ordinary client's `IMPORT` may not carry an expiry that is not in the
/// future or more than a year ahead (as `EXPIREAT`).
pub fn check_document_expiries(groups: &[GroupSpec], now: u64) -> Result<(), RedisError> {
    for g in groups {
        for (e, m) in g.entries.iter().zip(g.meta.iter()) {
            match m.expires {
                Some(at) if at <= now => {
                    return Err(RedisError::String(format!(
                        "ERR group '{}' entry {e}: \"expires\" must be in the future",
                        g.name
                    )))
                }
                Some(at) if at - now > MAX_TTL => {
                    return Err(RedisError::String(format!(
                        "ERR group '{}' entry {e}: \"expires\" must be at most {MAX_TTL} seconds (one year) ahead",
                        g.name
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn is_replica(ctx: Ctx) -> bool {
    ffi::context_flags(ctx) & raw::REDISMODULE_CTX_FLAGS_SLAVE != 0
}

/// Brings the whitelist in force to this second (what expired admits
/// nobody from now on, open connections judged again) and arms the timer
/// for the next expiry, or for the sweep of expired entries a primary
/// still holds.
pub fn arm(ctx: Ctx, g: &mut State) {
    let now_ms = ffi::milliseconds();
    let now = u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0);
    g.advance_clock(now, &mut Fx::new(ctx));
    let w = g.whitelist();
    let next = w.next_expiry();
    if PREPARING.swap(next.unwrap_or(0), Ordering::Relaxed) != next.unwrap_or(0) {
        // Another expiry comes first now, or none: a matcher prepared for
        // the one before is of no use, and would keep two matchers alive.
        if let Ok(mut slot) = PREPARED.try_lock() {
            *slot = None;
        }
        if let Some(at) = next {
            let start = i64::try_from(at).unwrap_or(i64::MAX / 1000).saturating_mul(1000) - PREPARE_LEAD_MS;
            ffi::create_timer(ctx, (start - now_ms).max(0), on_prepare);
        }
    }
    let mut due = next.map(|at| i64::try_from(at).unwrap_or(i64::MAX / 1000).saturating_mul(1000));
    if !g.is_loading() && w.has_expired(now) {
        // A primary sweeps now. A replica waits for its primary's removal,
        // and looks again each second: promoted meanwhile, it sweeps what it
        // held. (Rather than one more event subscription, which every event
        // Redis fires would pay for.)
        let at = if is_replica(ctx) { now_ms.saturating_add(REPLICA_LOOK_MS) } else { now_ms };
        due = Some(due.map_or(at, |d| d.min(at)));
    }
    let Some(due) = due else {
        return;
    };
    let armed = ARMED_MS.load(Ordering::Relaxed);
    if due < armed {
        ARMED_MS.store(due, Ordering::Relaxed);
        ffi::create_timer(ctx, (due - now_ms).max(0), on_timer);
    }
}

/// Called by Redis as a timer callback.
unsafe extern "C" fn on_timer(ctx: Ctx, _data: *mut c_void) {
    ffi::guard((), || tick(ctx));
}

/// Called by Redis as a timer callback, ahead of an expiry.
unsafe extern "C" fn on_prepare(_ctx: Ctx, _data: *mut c_void) {
    ffi::guard((), prepare);
}

/// Computes the matcher of the coming expiry on a thread of its own, so
/// that the server's thread has little left to do at that second. Nothing
/// depends on it: if the thread cannot start, has not finished, or the
/// whitelist changed meanwhile, the advance does the work itself.
fn prepare() {
    let at = PREPARING.load(Ordering::Relaxed);
    if at == 0 {
        return;
    }
    let Some(mut job) = state::with(|g| g.whitelist().prepare_advance(at)).flatten() else {
        return;
    };
    let _ = std::thread::Builder::new().name(String::from("whitelist-expiry")).spawn(move || {
        job.compute();
        if let Ok(mut slot) = PREPARED.lock() {
            *slot = Some(job);
        }
    });
}

fn tick(ctx: Ctx) {
    ARMED_MS.store(i64::MAX, Ordering::Relaxed);
    let now = now_s();
    let primary = !is_replica(ctx);
    // Never waits for the thread: a matcher it is still storing is left.
    let prepared = PREPARED.try_lock().ok().and_then(|mut slot| slot.take());
    let due = state::with(|g| {
        g.advance_clock_prepared(now, prepared, &mut Fx::new(ctx));
        primary && !g.is_loading() && g.whitelist().has_expired(now)
    })
    .unwrap_or(false);
    if due {
        if ffi::avoid_replica_traffic() {
            // Remove and propagate together once the pause ends; meanwhile
            // the expired entries admit nobody by the clock.
            ARMED_MS.store(ffi::milliseconds() + PAUSE_RETRY_MS, Ordering::Relaxed);
            ffi::create_timer(ctx, PAUSE_RETRY_MS, on_timer);
            return;
        }
        sweep(ctx, now);
    }
    state::with(|g| arm(ctx, g));
}

/// Removes the expired entries on the primary in one commit, and
/// propagates them as one `WHITELIST.REMOVE` per group, each one change on
/// a replica: the version rises by the number of groups swept here too, and
/// each group gets its audit record, as its `REMOVE` would log it, with the
/// version that `REMOVE` leads to (see [`Audit`]).
/// In cluster mode the version stays and the seam propagates a merge.
fn sweep(ctx: Ctx, now: u64) {
    let cluster = crate::cluster::enabled();
    let done = state::with(|g| {
        let before = g.whitelist().is_enabled();
        let version = g.whitelist().version();
        let sweep = g.sweep_expired(now, !cluster, &mut Fx::new(ctx))?;
        let now_off = before && !g.whitelist().is_enabled() && empty_whitelist_admits(g);
        // The seam takes the state lock: it gets a copy of what is committed.
        let committed = cluster.then(|| g.whitelist().clone());
        Some((sweep.swept, sweep.removed, version, now_off, committed))
    })
    .flatten();
    let Some((swept, removed, version, now_off, committed)) = done else {
        return;
    };
    EXPIRED.fetch_add(removed as u64, Ordering::Relaxed);
    let merged = committed.is_some_and(|next| {
        let groups: Vec<GroupName> = swept.iter().map(|(group, _)| group.clone()).collect();
        crate::cluster::propagate_sweep(ctx, &next, &groups)
    });
    let context = Context::new(ctx);
    let mut audit = Audit::default();
    // The entries of each group written one after the other in one buffer.
    let (mut text, mut ends) = (String::new(), Vec::new());
    for (k, (group, entries)) in swept.iter().enumerate() {
        if !merged {
            text.clear();
            ends.clear();
            for e in entries {
                e.push_to(&mut text);
                ends.push(text.len());
            }
            let mut args: Vec<&str> = Vec::with_capacity(entries.len() + 1);
            args.push(group.as_str());
            let mut start = 0;
            for &end in &ends {
                args.push(text.get(start..end).unwrap_or_default());
                start = end;
            }
            context.replicate("WHITELIST.REMOVE", args.as_slice());
        }
        let reached = if cluster { version } else { version.saturating_add(k as u64 + 1).min(MAX_VERSION) };
        audit.push(
            ctx,
            &format!("WHITELIST.REMOVE {group} by expiry: 0 added, {} removed, version {reached}", entries.len()),
        );
    }
    audit.flush(ctx);
    if now_off {
        ffi::log(
            ctx,
            Level::Warning,
            "every entry of the whitelist has expired: it is now off and admits every address",
        );
    }
}

/// The audit of a sweep: each group's record as a `REMOVE` would log it,
/// several to a log line (every line written opens and closes the log
/// file, and a sweep of many groups would spend more on that than on the
/// sweep), each line kept below the server's limit.
#[derive(Default)]
struct Audit {
    line: String,
}

/// The longest audit line: the server cuts a module's log line at 1024
/// bytes, its prefix included.
const AUDIT_LINE: usize = 900;

impl Audit {
    fn push(&mut self, ctx: Ctx, record: &str) {
        if !self.line.is_empty() && self.line.len() + 2 + record.len() > AUDIT_LINE {
            self.flush(ctx);
        }
        if !self.line.is_empty() {
            self.line.push_str("; ");
        }
        self.line.push_str(record);
    }

    fn flush(&mut self, ctx: Ctx) {
        if !self.line.is_empty() {
            ffi::log(ctx, Level::Notice, &self.line);
            self.line.clear();
        }
    }
}

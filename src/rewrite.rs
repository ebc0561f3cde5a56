//! Carrying the whitelist across an AOF rewrite without the RDB preamble.
//!
//! With `aof-use-rdb-preamble no` the rewrite's new base file is a list of
//! commands and holds no module aux data. When the rewrite's child is born
//! Redis has just opened the new incremental file (and, with AOF on, already
//! listed it in the manifest beside the old base and incremental files, so a
//! crash during the rewrite replays the old files, which hold the whitelist).
//! The whole whitelist goes into that incremental file as one
//! `WHITELIST.IMPORT`, which restores it with its version (AOF only: the
//! replicas have it already), before the rewrite can complete and the
//! manifest switches to the new base.
//!
//! Two windows stay open, both out of a module's reach: while a client pause
//! is in force nothing may be propagated, so a rewrite that completes during
//! the pause leaves a base and an incremental file without the whitelist until
//! the pause ends; and a rewrite while AOF is off has no incremental file at
//! all. A `warning` names them when such a rewrite starts.

use std::ffi::c_void;
use std::sync::atomic::Ordering;

use redis_module::{raw, Context, RedisValue};
use whitelist_core::{document, Whitelist};

use crate::ffi::{self, Ctx, Level};
use crate::state;

/// How often a carry held back by a client pause looks again.
const RETRY_MS: i64 = 10;

/// Where the carry stands. At most one timer is pending at a time: a carry
/// written later than planned writes the state of that moment, which is
/// always correct (the import replaces the whole whitelist).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Carry {
    #[default]
    Idle = 0,
    /// A timer writes it at the end of this event-loop turn.
    Armed = 1,
    /// A client pause holds it back; the timer looks again every `RETRY_MS`.
    /// The window has been reported.
    Paused = 2,
}

impl Carry {
    fn get() -> Carry {
        match state::CARRY.load(Ordering::Relaxed) {
            1 => Carry::Armed,
            2 => Carry::Paused,
            _ => Carry::Idle,
        }
    }

    fn set(self) {
        state::CARRY.store(self as u8, Ordering::Relaxed);
    }
}

/// # Safety
/// Called by Redis for `REDISMODULE_EVENT_FORK_CHILD`.
pub unsafe extern "C" fn on_fork_child(ctx: Ctx, _eid: raw::RedisModuleEvent, subevent: u64, _data: *mut c_void) {
    ffi::guard((), || {
        if subevent == raw::REDISMODULE_SUBEVENT_FORK_CHILD_BORN {
            rewrite_started(ctx);
        }
    });
}

/// Propagating from inside the command that forked (`BGREWRITEAOF`,
/// `CONFIG SET appendonly yes`) would mark that command as a write and send it
/// to the AOF and the replicas too, so the import is written from a timer.
/// A zero-delay timer runs on this turn of the event loop (or the next, for a
/// rewrite the server cron started), ahead of the server cron that reaps a
/// finished child: the import is in the AOF buffer before the manifest can
/// switch to the new base. Commands that reach the file before it are
/// harmless: the import replaces the whole whitelist with the state that
/// already includes them.
fn rewrite_started(ctx: Ctx) {
    if ffi::info_field(ctx, c"persistence", c"aof_rewrite_in_progress") != Some(1) || rdb_preamble(ctx) {
        return;
    }
    let aof_on = ffi::info_field(ctx, c"persistence", c"aof_enabled") != Some(0);
    let paused = ffi::avoid_replica_traffic();
    state::with(|s| {
        let w = s.whitelist();
        if !has_whitelist(w) {
            return;
        }
        if !aof_on {
            // AOF-only propagation is dropped while AOF is off: nothing to arm.
            ffi::log(ctx, Level::Warning, &aof_off_window(w));
            return;
        }
        if paused {
            ffi::log(ctx, Level::Warning, &pause_window(w));
        }
        match (Carry::get(), paused) {
            (Carry::Idle, _) => {
                if paused { Carry::Paused } else { Carry::Armed }.set();
                ffi::create_timer(ctx, 0, write_import_into_aof);
            }
            (Carry::Armed, true) => Carry::Paused.set(),
            _ => {}
        }
    });
}

/// # Safety
/// Called by Redis as a timer callback.
unsafe extern "C" fn write_import_into_aof(ctx: Ctx, _data: *mut c_void) {
    ffi::guard((), || {
        // Redis asserts on any propagation during a client pause, AOF-only
        // included. Timers do not run while loading, but a load would drop
        // the propagation, so it would wait too.
        let paused = ffi::avoid_replica_traffic();
        let loading = ffi::context_flags(ctx) & raw::REDISMODULE_CTX_FLAGS_LOADING != 0;
        let doc = state::with_or(None, |s| {
            let w = s.whitelist();
            if paused || loading {
                if paused && Carry::get() == Carry::Armed {
                    // The pause began after the child was born.
                    ffi::log(ctx, Level::Warning, &pause_window(w));
                    Carry::Paused.set();
                }
                ffi::create_timer(ctx, RETRY_MS, write_import_into_aof);
                return None;
            }
            Carry::Idle.set();
            // In a cluster the revisions travel too (§12): the whole state
            // as one merge.
            has_whitelist(w).then(|| match crate::cluster::carry(w) {
                Some(state) => (c"WHITELIST.MERGE", state),
                None => (c"WHITELIST.IMPORT", document::export(w).into_bytes()),
            })
        });
        if let Some((command, payload)) = doc {
            if !ffi::replicate_one(ctx, command, &payload, true) {
                ffi::log(ctx, Level::Warning, "could not write the whitelist into the rewritten AOF");
            }
        }
    });
}

/// An empty whitelist at version 0 is what a start without data gives: there
/// is nothing to carry and nothing to lose.
fn has_whitelist(w: &Whitelist) -> bool {
    w.version() > 0 || !w.groups().is_empty()
}

fn describe(w: &Whitelist) -> String {
    format!("the whitelist (version {}, {} groups)", w.version(), w.groups().len())
}

fn aof_off_window(w: &Whitelist) -> String {
    format!(
        "AOF rewrite with aof-use-rdb-preamble no while appendonly is no: the new base file holds no whitelist and \
         there is no incremental file to carry {} into, so a start with appendonly yes from this file would begin \
         without it; set aof-use-rdb-preamble yes to keep the whitelist in the base file",
        describe(w)
    )
}

fn pause_window(w: &Whitelist) -> String {
    format!(
        "AOF rewrite with aof-use-rdb-preamble no during a client pause: {} is written into the new incremental AOF \
         file only when the pause ends, so if the rewrite completes first a crash before then restarts without it; \
         set aof-use-rdb-preamble yes to keep the whitelist in the base file",
        describe(w)
    )
}

fn rdb_preamble(ctx: Ctx) -> bool {
    // When in doubt, carry it: restoring the same whitelist twice is harmless.
    match Context::new(ctx).call("CONFIG", &["GET", "aof-use-rdb-preamble"]) {
        Ok(RedisValue::Array(mut items)) if items.len() == 2 => {
            items.pop().and_then(ffi::text_of).is_some_and(|v| v == b"yes")
        }
        _ => false,
    }
}

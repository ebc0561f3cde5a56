//! The one place for global state: the core [`Gate`] behind a lock, and the
//! few flags the server plumbing needs.
//!
//! Redis calls the module from its main thread only, so the lock is never
//! contended; it is there to make reentrancy an error instead of undefined
//! behaviour. A poisoned lock (a caught panic) is taken over as it is: every
//! change is committed by swapping in a complete new whitelist, and a
//! re-check closes a client before it forgets it.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{LazyLock, Mutex, TryLockError};

#[allow(unused_imports)] // `Config`: the settings under their old name.
pub use whitelist_core::gate::{Conn, Gate, Mode, Settings as Config};

/// The global state: the gate.
pub type State = Gate;

static STATE: LazyLock<Mutex<Gate>> = LazyLock::new(|| Mutex::new(Gate::new(false)));

/// A config re-check is queued (`RedisModule_EventLoopAddOneShot`): it runs
/// once the `CONFIG SET` that changed a value has completed.
pub static RECHECK_DUE: AtomicBool = AtomicBool::new(false);

/// Closing a client inside its connection event is unsafe on this server
/// (Redis 8 with I/O threads): refused clients are held, then closed from
/// the event loop.
pub static DEFER_CLOSE: AtomicBool = AtomicBool::new(false);

/// A one-shot event-loop callback that closes the held clients is armed.
pub static CLOSE_ARMED: AtomicBool = AtomicBool::new(false);

/// A refused client could not be queued (the reserved room was full, or
/// the state was unavailable): the held user is replaced at the next close,
/// which disconnects every client still authenticated as it.
pub static HELD_OVERFLOW: AtomicBool = AtomicBool::new(false);

/// The commands of held clients could not be filtered (no API, or the
/// registration failed) and that was logged: once, not at every hold.
pub static UNFILTERED_LOGGED: AtomicBool = AtomicBool::new(false);

/// When a client that could not be judged was last logged (ms), and how
/// many were refused since without a line: at most one such line a second,
/// kept outside the state, which may be what failed.
pub static UNJUDGED_LOGGED_MS: AtomicI64 = AtomicI64::new(i64::MIN);
pub static UNJUDGED_SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Where the carry of the whitelist into a rewritten AOF stands
/// (`rewrite::Carry`).
pub static CARRY: AtomicU8 = AtomicU8::new(0);

/// Why the state could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Already borrowed further up the stack (a reentrant call).
    Busy,
}

/// Runs `f` on the state; `None` if the state is already borrowed further up
/// the stack (a reentrant call, which the module never makes).
#[inline]
pub fn with<R>(f: impl FnOnce(&mut Gate) -> R) -> Option<R> {
    try_with(f).ok()
}

/// Like [`with`], saying why it could not run.
#[inline]
pub fn try_with<R>(f: impl FnOnce(&mut Gate) -> R) -> Result<R, Unavailable> {
    match STATE.try_lock() {
        Ok(mut guard) => Ok(f(&mut guard)),
        Err(TryLockError::Poisoned(poisoned)) => {
            let mut guard = poisoned.into_inner();
            STATE.clear_poison();
            Ok(f(&mut guard))
        }
        Err(TryLockError::WouldBlock) => Err(Unavailable::Busy),
    }
}

/// Whether the lock is poisoned (a panic while it was held).
pub fn poisoned() -> bool {
    STATE.is_poisoned()
}

/// Like [`with`], for callers that cannot report failure.
pub fn with_or<R>(fallback: R, f: impl FnOnce(&mut Gate) -> R) -> R {
    with(f).unwrap_or(fallback)
}

/// Whether refused clients must be held rather than closed in the event.
#[inline]
pub fn defer_close() -> bool {
    DEFER_CLOSE.load(Ordering::Relaxed)
}

/// Test-only fault switch (`WHITELIST.DEBUG-FAULT hook-panic`): the
/// connection hook panics, to prove it fails closed.
#[cfg(feature = "debug-panic")]
pub static HOOK_PANIC: AtomicBool = AtomicBool::new(false);

/// Test-only fault switch (`WHITELIST.DEBUG-FAULT lose-next-change`): the
/// next change from the primary or the AOF fails as one this module could
/// not apply, to prove such a change is never dropped in silence.
#[cfg(feature = "debug-panic")]
pub static LOSE_NEXT_CHANGE: AtomicBool = AtomicBool::new(false);

/// Test-only fault switch (`WHITELIST.DEBUG-FAULT hold-open`): held clients
/// stay held (not closed) until the switch is turned off, so a test can see
/// what a held client can and cannot do.
#[cfg(feature = "debug-panic")]
pub static HOLD_OPEN: AtomicBool = AtomicBool::new(false);

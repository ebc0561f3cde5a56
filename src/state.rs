//! The one place for global state: the core [`Gate`] behind a try-lock, and
//! the few flags the server plumbing needs.
//!
//! Redis calls the module from its main thread only, so the lock is never
//! contended; it is there to make reentrancy an error instead of undefined
//! behaviour. It is taken at every connect and disconnect, so it is the
//! least a lock can be: one atomic swap to take it, one store to give it
//! back. A panic while it is held leaves it marked, as a poisoned mutex is;
//! a marked state is taken over as it is (every change is committed by
//! swapping in a complete new whitelist, and a re-check closes a client
//! before it forgets it), except by the connection hook, which refuses.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};

#[allow(unused_imports)] // `Config`: the settings under their old name.
pub use whitelist_core::gate::{Conn, Gate, Mode, Settings as Config};

/// The global state: the gate.
pub type State = Gate;

/// The gate and its lock.
struct Shared {
    /// Held: some code has the gate.
    busy: AtomicBool,
    /// Set while the gate is lent out and cleared when the borrower returns:
    /// still set afterwards, a panic left the gate, maybe mid-change.
    poisoned: AtomicBool,
    /// Built at the first use.
    gate: UnsafeCell<Option<Gate>>,
}

// SAFETY: `gate` is reached only through `borrow`, which takes `busy` with an
// atomic swap (acquire) first and gives it back (release) when it is done,
// so at most one reference to the gate exists at any time, on any thread.
unsafe impl Sync for Shared {}

static STATE: Shared =
    Shared { busy: AtomicBool::new(false), poisoned: AtomicBool::new(false), gate: UnsafeCell::new(None) };

/// Gives the lock back when a borrow ends, by a return or by a panic.
struct Release;

impl Drop for Release {
    #[inline(always)]
    fn drop(&mut self) {
        STATE.busy.store(false, Ordering::Release);
    }
}

/// Runs `f` on the gate unless it is already lent out; a gate a panic left
/// is taken over if `take_over`, else refused.
#[inline(always)]
fn borrow<R>(take_over: bool, f: impl FnOnce(&mut Gate) -> R) -> Result<R, Unavailable> {
    if STATE.busy.swap(true, Ordering::Acquire) {
        return Err(Unavailable::Busy);
    }
    let _release = Release;
    if !take_over && STATE.poisoned.load(Ordering::Relaxed) {
        return Err(Unavailable::Poisoned);
    }
    STATE.poisoned.store(true, Ordering::Relaxed);
    // SAFETY: `busy` was clear and is now set by this call, so nothing else
    // holds a reference to the gate until `_release` clears it, after the
    // last use of `slot`.
    let slot = unsafe { &mut *STATE.gate.get() };
    let gate = match slot {
        Some(gate) => gate,
        None => first_use(slot),
    };
    let result = f(gate);
    STATE.poisoned.store(false, Ordering::Relaxed);
    Ok(result)
}

#[cold]
#[inline(never)]
fn first_use(slot: &mut Option<Gate>) -> &mut Gate {
    slot.insert(Gate::new(false))
}

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
    /// Left by a panic while it was borrowed ([`try_with_sound`] only).
    Poisoned,
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
    borrow(true, f)
}

/// Like [`try_with`], but a state a panic left is not taken over: the
/// connection hook refuses rather than judge by it, and learns it from the
/// one lock it takes.
#[inline]
pub fn try_with_sound<R>(f: impl FnOnce(&mut Gate) -> R) -> Result<R, Unavailable> {
    borrow(false, f)
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

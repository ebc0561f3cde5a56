//! Client events: the connection hook (which fails closed), the re-check of
//! open connections, and the closing of clients held where closing inside
//! the connection event is unsafe.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use redis_module::raw;
use whitelist_core::gate::{Effects, Level as GateLevel, Login};
use whitelist_core::Peer;

use crate::ffi::{self, Ctx, Level};
use crate::state::{self, State, Unavailable};

/// The gate's effects on this server.
pub struct Fx {
    ctx: Ctx,
    /// A client refused inside its connection event that must be held.
    held: Option<u64>,
    /// Whether `default` is `nopass`, looked up once per use of the effects.
    nopass: Option<bool>,
}

impl Fx {
    pub fn new(ctx: Ctx) -> Fx {
        Fx { ctx, held: None, nopass: None }
    }
}

impl Effects for Fx {
    #[inline]
    fn refuse(&mut self, id: u64) {
        if state::defer_close() {
            if !ffi::hold_client(self.ctx, held_user_changed) {
                ffi::log(self.ctx, Level::Warning, &format!("could not hold refused client id {id}"));
            }
            self.held = Some(id);
        } else {
            ffi::close_client(self.ctx, id);
        }
    }

    fn close(&mut self, id: u64) -> bool {
        ffi::close_client(self.ctx, id)
    }

    fn log(&mut self, level: GateLevel, line: &str) {
        let level = match level {
            GateLevel::Notice => Level::Notice,
            GateLevel::Warning => Level::Warning,
        };
        ffi::log(self.ctx, level, line);
    }

    fn now_ms(&mut self) -> i64 {
        ffi::milliseconds()
    }

    fn now_s(&mut self) -> u64 {
        ffi::cached_unix_seconds()
    }

    fn arm_log_flush(&mut self, after_ms: i64) {
        ffi::create_timer(self.ctx, after_ms, flush_suppressed);
    }

    fn login_of(&mut self, id: u64) -> Option<String> {
        let user = ffi::client_user_name(self.ctx, id)?;
        // A `default` client that needs a password has not logged in yet:
        // it is judged when it sends AUTH.
        (user != "default" || self.default_nopass()).then_some(user)
    }

    fn default_nopass(&mut self) -> bool {
        *self.nopass.get_or_insert_with(|| ffi::default_nopass(self.ctx))
    }
}

/// # Safety
/// Called by Redis for `REDISMODULE_EVENT_CLIENT_CHANGE`, with `data` pointing
/// to a `RedisModuleClientInfoV1`.
pub unsafe extern "C" fn on_client_change(ctx: Ctx, _eid: raw::RedisModuleEvent, subevent: u64, data: *mut c_void) {
    // SAFETY: for this event Redis passes the client's info structure.
    let info = unsafe { data.cast::<raw::RedisModuleClientInfo>().as_ref() };
    let Some(info) = info else {
        return;
    };
    if subevent == raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_CONNECTED {
        connected(ctx, info);
    } else {
        disconnected(info.id);
    }
}

/// A client is gone. Out of line, so a disconnect sets up only its own
/// small frame, not the connect's; `extern "C"` (it never unwinds: it
/// catches every panic), so the event handler can jump to it.
#[inline(never)]
extern "C" fn disconnected(id: u64) {
    ffi::guard((), || {
        state::with(|g| g.forget(id));
    });
}

/// Admits or refuses a new client. Whatever goes wrong (a panic, a busy or
/// poisoned state), the client is refused: never admitted by default.
/// `extern "C"` as [`disconnected`].
#[inline(never)]
extern "C" fn connected(ctx: Ctx, info: &raw::RedisModuleClientInfo) {
    let id = info.id;
    let decided = catch_unwind(AssertUnwindSafe(|| {
        let conn = ffi::conn_of(info);
        #[cfg(feature = "debug-panic")]
        if state::HOOK_PANIC.load(Ordering::Relaxed) {
            panic!("WHITELIST.DEBUG-FAULT hook-panic");
        }
        state::try_with_sound(move |g| {
            let mut fx = Fx::new(ctx);
            g.admit(id, conn, &mut fx);
            if let Some(held) = fx.held {
                queue_close(ctx, g, held);
            }
        })
    }));
    let why = match decided {
        Ok(Ok(())) => return,
        Ok(Err(Unavailable::Poisoned)) => "the whitelist state was left by an internal error",
        Ok(Err(Unavailable::Busy)) => "the whitelist state is busy",
        Err(_) => "an internal error (see the line above)",
    };
    ffi::guard((), || {
        let peer = catch_unwind(AssertUnwindSafe(|| ffi::conn_of(info).peer)).ok();
        fail_closed(ctx, id, peer, why);
    });
}

/// Refuses a client that could not be judged, and says why. Taking the
/// state over clears a poisoned lock, so only this client pays for it.
fn fail_closed(ctx: Ctx, id: u64, peer: Option<Peer>, why: &str) {
    let defer = state::defer_close();
    if defer {
        ffi::hold_client(ctx, held_user_changed);
    } else {
        ffi::close_client(ctx, id);
    }
    let now = ffi::milliseconds();
    let queued = state::with(|g| {
        if defer {
            queue_close(ctx, g, id);
        }
        if let Some(peer) = peer {
            g.record_unjudged(peer, now);
        }
    });
    if defer && queued.is_none() {
        state::HELD_OVERFLOW.store(true, Ordering::Relaxed);
        arm_close();
    }
    let last = state::UNJUDGED_LOGGED_MS.load(Ordering::Relaxed);
    if last == i64::MIN || now < last || now - last >= 1000 {
        state::UNJUDGED_LOGGED_MS.store(now, Ordering::Relaxed);
        let more = match state::UNJUDGED_SUPPRESSED.swap(0, Ordering::Relaxed) {
            0 => String::new(),
            n => format!("; {n} more refused so since the last such line"),
        };
        ffi::log(ctx, Level::Warning, &format!("refused client id {id}: it could not be judged ({why}){more}"));
    } else {
        state::UNJUDGED_SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Queues a held client for closing within one event-loop turn, and has
/// its commands refused until then.
fn queue_close(ctx: Ctx, g: &mut State, id: u64) {
    if g.pending.push(id) {
        filter_held(ctx);
    } else {
        state::HELD_OVERFLOW.store(true, Ordering::Relaxed);
    }
    arm_close();
}

/// Commands flagged no-auth (`HELLO`, `AUTH`, `QUIT`, `RESET`) skip the
/// ACL check, so a held client would get their normal replies: while one is
/// held, a command filter turns each of its commands into one the ACL
/// refuses. Registered with the first held client and unregistered once
/// none is left, so no command pays for it otherwise.
fn filter_held(ctx: Ctx) {
    if !ffi::filter_commands(ctx, refuse_held_commands) && !state::UNFILTERED_LOGGED.swap(true, Ordering::Relaxed) {
        ffi::log(
            ctx,
            Level::Warning,
            "cannot filter the commands of refused clients held for closing (this server has no command filter \
             that names the client): such a client may get the normal reply of HELLO, QUIT or RESET before it is \
             closed",
        );
    }
}

/// # Safety
/// Called by Redis before it looks up every command (also from `RM_Call`
/// of other modules and scripts), while a client is held.
unsafe extern "C" fn refuse_held_commands(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    // Busy or a panic: fail closed. A held client's command never runs
    // nested in this module's code (its own calls skip the filter), so this
    // refuses nobody else in practice.
    let refuse = ffi::guard(true, || {
        let id = ffi::filtered_client(fctx);
        state::with(|g| g.pending.contains(id)) != Some(false)
    });
    if refuse {
        ffi::refuse_filtered(fctx);
    }
}

pub fn arm_close() {
    #[cfg(feature = "debug-panic")]
    if state::HOLD_OPEN.load(Ordering::Relaxed) {
        return;
    }
    if !state::CLOSE_ARMED.swap(true, Ordering::Relaxed) && !ffi::one_shot(close_held) {
        state::CLOSE_ARMED.store(false, Ordering::Relaxed);
        ffi::log(std::ptr::null_mut(), Level::Warning, "could not schedule the close of refused clients");
    }
}

/// # Safety
/// Called by Redis from its event loop (`RedisModule_EventLoopAddOneShot`).
unsafe extern "C" fn close_held(_data: *mut c_void) {
    ffi::guard((), || {
        state::CLOSE_ARMED.store(false, Ordering::Relaxed);
        let emptied = state::with(|g| {
            // Out of the queue first: closing runs the user-changed callback,
            // which must not find it there.
            while let Some(id) = g.pending.pop() {
                ffi::close_client(std::ptr::null_mut(), id);
            }
            g.pending.is_empty()
        });
        if emptied == Some(true) {
            ffi::unfilter_commands(std::ptr::null_mut());
        }
        if state::HELD_OVERFLOW.swap(false, Ordering::Relaxed) && !ffi::create_held_user() {
            ffi::log(std::ptr::null_mut(), Level::Warning, "could not replace the user of refused clients");
        }
    });
}

/// # Safety
/// Called by Redis when a held client's user changes: when it is freed, or
/// (without the command filter) when `RESET` makes it the default user, so
/// it is closed now, before it can run anything.
unsafe extern "C" fn held_user_changed(client_id: u64, _privdata: *mut c_void) {
    ffi::guard((), || {
        // Busy: the module's own close of this client is running.
        let emptied = state::with(|g| {
            if g.pending.remove(client_id) {
                ffi::close_client(std::ptr::null_mut(), client_id);
                return g.pending.is_empty();
            }
            false
        });
        if emptied == Some(true) {
            ffi::unfilter_commands(std::ptr::null_mut());
        }
    });
}

/// # Safety
/// Called by Redis 7.2+ for `AUTH` and `HELLO ... AUTH`, before it checks
/// the password. Refused (Redis replies its own `WRONGPASS`, `err` left
/// NULL so nothing tells the client why): a held client (the command filter
/// turns its commands into a refused one first; this is the guard where it
/// could not be registered), and a user bound to groups that do not match
/// the client's address (§11), which also gets an ACL LOG entry. Anything
/// else falls through to the password check unchanged.
pub unsafe extern "C" fn on_auth(
    ctx: Ctx,
    user: *mut raw::RedisModuleString,
    _password: *mut raw::RedisModuleString,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    const HANDLED: c_int = raw::REDISMODULE_AUTH_HANDLED as c_int;
    const NOT_HANDLED: c_int = raw::REDISMODULE_AUTH_NOT_HANDLED as c_int;
    ffi::guard(HANDLED, || {
        let id = ffi::client_id(ctx);
        let login = state::with(|g| {
            if g.pending.contains(id) {
                return Some(Login::Refuse);
            }
            // Exit early and cheap while no user is bound.
            if !g.users_enforced || !g.whitelist().has_bindings() {
                return Some(Login::Allow);
            }
            // The name is borrowed, not copied: this runs at every AUTH
            // (converted only when it is not UTF-8; a bound name always is).
            let mut len = 0usize;
            let ptr = match unsafe { raw::RedisModule_StringPtrLen } {
                Some(ptr_len) if !user.is_null() => unsafe { ptr_len(user, &mut len) },
                _ => std::ptr::null(),
            };
            let bytes: &[u8] = if ptr.is_null() {
                &[]
            } else {
                // SAFETY: the server hands out `len` bytes at `ptr`, alive for
                // the callback as `user` is.
                unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
            };
            let name = if bytes.is_ascii() {
                // SAFETY: ASCII is UTF-8 (and checked in fewer instructions
                // than a full validation of a short name).
                std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) })
            } else {
                String::from_utf8_lossy(bytes)
            };
            // Outside a load and a divergence the rules in force are the
            // whitelist itself: a user it surely binds to nothing may log in,
            // and neither its connection nor the gate is looked up (the gate
            // finds out whether any other is bound, at the price of one hash).
            if !g.is_loading() && !g.diverged() && !g.whitelist().may_be_bound(&name) {
                return Some(Login::Allow);
            }
            let conn = g.conn(id).or_else(|| ffi::client_conn(id))?;
            Some(g.login(id, conn, &name, &mut Fx::new(ctx)))
        });
        match login {
            Some(Some(Login::Allow)) => NOT_HANDLED,
            Some(Some(Login::Refuse)) => {
                if state::with(|g| g.pending.contains(id)) == Some(false) {
                    ffi::acl_log_auth(ctx, user);
                }
                HANDLED
            }
            // The client could not be found or judged: refused, never
            // admitted by default.
            _ => HANDLED,
        }
    })
}

/// # Safety
/// Called by Redis as a timer callback.
unsafe extern "C" fn flush_suppressed(ctx: Ctx, _data: *mut c_void) {
    ffi::guard((), || {
        state::with(|g| g.flush_log(&mut Fx::new(ctx)));
    });
}

/// Closes (or, in monitor mode, reports) every open connection that the
/// rules in force no longer admit. Runs after every rule change.
pub fn enforce_on_open_connections(ctx: Ctx, g: &mut State) {
    g.recheck(&mut Fx::new(ctx));
}

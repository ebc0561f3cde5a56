//! Server events: connections and loading.

use std::ffi::c_void;

use redis_module::raw;
use whitelist_core::{Peer, Whitelist};

use crate::server::{self, Ctx, Level};
use crate::state::{self, Admission, Conn, Cut, LogSlot, Mode, State};

/// # Safety
/// Called by Redis for `REDISMODULE_EVENT_CLIENT_CHANGE`, with `data` pointing
/// to a `RedisModuleClientInfoV1`.
pub unsafe extern "C" fn on_client_change(ctx: Ctx, _eid: raw::RedisModuleEvent, subevent: u64, data: *mut c_void) {
    // SAFETY: for this event Redis passes the client's info structure.
    let info = unsafe { data.cast::<raw::RedisModuleClientInfo>().as_ref() };
    server::guard((), || {
        let Some(info) = info else {
            return;
        };
        if subevent == raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_CONNECTED {
            connected(ctx, info);
        } else {
            state::with(|s| s.conns.remove(&info.id));
        }
    });
}

#[inline]
fn connected(ctx: Ctx, info: &raw::RedisModuleClientInfo) {
    let conn = server::conn_of(info);
    let id = info.id;
    state::with(|s| match s.admit(id, conn) {
        Admission::Admit => {}
        Admission::Close => {
            server::close_client(ctx, id);
            report_denial(ctx, s, id, &conn, "denied connection from");
        }
        Admission::WouldDeny => report_denial(ctx, s, id, &conn, "would deny connection (whitelist.mode monitor) from"),
    });
}

fn describe(id: u64, conn: &Conn) -> String {
    match conn.peer {
        Peer::Unix => format!("unix socket (client id {id}): whitelist.allow-unixsocket is no"),
        Peer::Ip(_) => format!("{} (client id {id}): no whitelist entry matches", conn.describe()),
        Peer::Unknown => format!("{} (client id {id}): the address could not be read", conn.describe()),
    }
}

/// Counts a denial and logs it, at most one line per second.
fn report_denial(ctx: Ctx, s: &mut State, id: u64, conn: &Conn, what: &str) {
    let now = server::milliseconds();
    s.stats.last_denied = Some((conn.peer, now / 1000));
    match s.denial_log.admit(now) {
        LogSlot::Log => server::log(ctx, Level::Warning, &format!("{what} {}", describe(id, conn))),
        LogSlot::SuppressAndArm(ms) => server::create_timer(ctx, ms, flush_suppressed),
        LogSlot::Suppress => {}
    }
}

/// # Safety
/// Called by Redis as a timer callback.
unsafe extern "C" fn flush_suppressed(ctx: Ctx, _data: *mut c_void) {
    server::guard((), || {
        let suppressed = state::with_or(0, |s| {
            s.denial_log.timer_armed = false;
            std::mem::take(&mut s.denial_log.suppressed)
        });
        if suppressed > 0 {
            let plural = if suppressed == 1 { "" } else { "s" };
            server::log(
                ctx,
                Level::Warning,
                &format!("{suppressed} more denied connection{plural} in the last second (not logged one by one)"),
            );
        }
    });
}

/// Closes (or, in monitor mode, reports) every open connection that the
/// whitelist in force no longer admits. Runs after every rule change.
pub fn enforce_on_open_connections(ctx: Ctx, s: &mut State) {
    let cut: Vec<Cut> = s.cut_connections();
    let enforce = s.config.mode == Mode::Enforce;
    for c in &cut {
        if enforce {
            server::close_client(ctx, c.id);
            report_denial(ctx, s, c.id, &c.conn, "closed connection after a whitelist change from");
        } else {
            report_denial(ctx, s, c.id, &c.conn, "would close connection (whitelist.mode monitor) from");
        }
    }
}

/// # Safety
/// Called by Redis for `REDISMODULE_EVENT_LOADING`.
pub unsafe extern "C" fn on_loading(ctx: Ctx, _eid: raw::RedisModuleEvent, subevent: u64, _data: *mut c_void) {
    server::guard((), || {
        state::with(|s| match subevent {
            raw::REDISMODULE_SUBEVENT_LOADING_ENDED => {
                // Loading replaces the whole whitelist in one step; data that
                // carried none leaves it empty.
                if let Some(loaded) = s.loading.take() {
                    s.whitelist = loaded;
                    server::log(
                        ctx,
                        Level::Notice,
                        &format!(
                            "whitelist loaded: {} groups, {} entries, version {}",
                            s.whitelist.groups().len(),
                            s.whitelist.entry_count(),
                            s.whitelist.version()
                        ),
                    );
                    enforce_on_open_connections(ctx, s);
                }
            }
            raw::REDISMODULE_SUBEVENT_LOADING_FAILED => {
                if s.loading.take().is_some() {
                    server::log(ctx, Level::Warning, "loading failed: the previous whitelist stays in force");
                }
            }
            _ => s.loading = Some(Whitelist::default()),
        });
    });
}

//! The module's start-up: adopting connections opened before a run-time
//! `MODULE LOAD`, telling a starting server (whose first load is the loading
//! window) from a run-time load, and preparing how refused clients are
//! closed on this server.

use redis_module::raw;
use whitelist_core::clients::parse_client_list;
use whitelist_core::gate::Conn;

use crate::ffi::{self, Ctx, Level};
use crate::hook;
use crate::state;

/// Connections opened before `MODULE LOAD` never passed the connection event:
/// take them from `CLIENT LIST` so every rule change checks them too.
/// Returns how many were adopted.
pub fn adopt_open_connections(ctx: Ctx) -> usize {
    let Some(text) = ffi::call_text(ctx, "CLIENT", &["LIST"]) else {
        return 0;
    };
    let adopted = state::with(|g| {
        let mut n = 0;
        for c in parse_client_list(&text) {
            if c.is_primary_link || c.is_closing {
                continue;
            }
            g.track(c.id, Conn::new(c.peer, c.port));
            n += 1;
        }
        n
    })
    .unwrap_or(0);
    if adopted > 0 {
        ffi::log(
            ctx,
            Level::Notice,
            &format!("{adopted} connections open before the module loaded are checked at every rule change"),
        );
    }
    adopted
}

/// Whether the server is starting (not a `MODULE LOAD` at run time). Redis
/// 7.2+ says so; on 7.0 a run-time load always has a caller connected.
pub fn starting(ctx: Ctx, open_connections: usize) -> bool {
    ffi::context_flags(ctx) & raw::REDISMODULE_CTX_FLAGS_SERVER_STARTUP != 0
        || (ffi::server_version().is_some_and(|v| v < 0x00_07_02_00) && open_connections == 0)
}

/// Redis 8 assigns a new client to an I/O thread right after the connection
/// event, and aborts if the client was closed in it (`iothread.c`): there a
/// refused client is held as a user without permissions, its logins refused,
/// and closed from the event loop within one turn. Valkey's and Redis 7's
/// I/O threads keep the client in the main thread, and without I/O threads
/// nothing is handed over: there it is closed inside the event.
///
/// One auth callback serves both that and the per-user restrictions (§11),
/// registered wherever the server has them (7.2+): it refuses the logins of
/// held clients and of users bound to groups that do not match the address.
pub fn prepare_refusals(ctx: Ctx) -> Result<(), String> {
    let auth_callback = ffi::register_auth_callback(ctx, Some(hook::on_auth));
    state::with(|g| g.users_enforced = auth_callback).ok_or("the whitelist state is busy")?;
    let io_threads = ffi::config_get(ctx, "io-threads")
        .and_then(|v| String::from_utf8_lossy(&v).trim().parse::<u32>().ok())
        .unwrap_or(1);
    let redis8 = ffi::server_version().is_some_and(|v| v >= 0x00_08_00_00)
        && ffi::info_text(ctx, c"server", c"valkey_version").is_none();
    if !(redis8 && io_threads > 1) {
        return Ok(());
    }
    if !ffi::create_held_user() {
        return Err(String::from("could not create the user that refused clients are held as"));
    }
    if !auth_callback {
        return Err(String::from("this server has no auth callbacks, which holding refused clients needs"));
    }
    let room = ffi::config_get(ctx, "maxclients")
        .and_then(|v| String::from_utf8_lossy(&v).trim().parse::<usize>().ok())
        .unwrap_or(10_000);
    state::with(|g| g.pending.reserve(room)).ok_or("the whitelist state is busy")?;
    state::DEFER_CLOSE.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

//! redis-whitelist: a Redis module that admits clients only from whitelisted
//! IPv4/IPv6 addresses and CIDR blocks, grouped and managed with `WHITELIST.*`
//! commands, persisted in the RDB, replicated and written to the AOF.
//!
//! This file is the manifest: the module's name and version, its commands and
//! their flags, its data type, its events, and the load sequence. The rule
//! engine lives in the `whitelist-core` crate; configs in `config.rs`.

mod acl;
mod commands;
mod config;
mod docs;
mod ffi;
mod hook;
mod info;
mod loading;
mod maintenance;
mod persistence;
mod rewrite;
mod state;

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;

use redis_module::alloc::RedisAlloc;
use redis_module::raw;
use whitelist_core::clients::parse_client_list;

use crate::ffi::{Ctx, Level};
use crate::persistence::WHITELIST_TYPE;
use crate::state::Conn;

/// Allocations go through Redis, so `used_memory` and `MEMORY` see them.
#[global_allocator]
static ALLOCATOR: RedisAlloc = RedisAlloc;

/// The module's name: its configs are `whitelist.*`, its INFO section `whitelist`.
const NAME: &CStr = c"whitelist";
/// 0.1.0
const VERSION: c_int = 100;
/// Module configs, the config-change event and the client-info event data
/// as used here are Redis 7.0's.
const MIN_SERVER_VERSION: i32 = 0x00_07_00_00;

type CommandFn = unsafe extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// Every command is `admin` (ACL categories @admin and @dangerous) and
/// `deny-script` (a script's caller cannot be identified, so lock-out
/// protection could not run). Writes are `write`, so a read-only replica
/// refuses them, but not `deny-oom`: a full server must still let an operator
/// fix its whitelist.
const COMMANDS: &[(&CStr, CommandFn, &CStr)] = &[
    (c"whitelist.set", commands::set, c"admin write deny-script"),
    (c"whitelist.add", commands::add, c"admin write deny-script"),
    (c"whitelist.remove", commands::remove, c"admin write deny-script"),
    (c"whitelist.del", commands::del, c"admin write deny-script"),
    (c"whitelist.loadclients", commands::loadclients, c"admin write deny-script"),
    (c"whitelist.import", commands::import, c"admin write deny-script"),
    (c"whitelist.get", commands::get_cmd, c"admin readonly deny-script"),
    (c"whitelist.list", commands::list_cmd, c"admin readonly deny-script"),
    (c"whitelist.check", commands::check_cmd, c"admin readonly deny-script"),
    (c"whitelist.export", commands::export, c"admin readonly deny-script"),
    (c"whitelist.help", commands::help_cmd, c"admin readonly deny-script"),
    (c"whitelist.bind", commands::bind, c"admin write deny-script"),
    (c"whitelist.unbind", commands::unbind, c"admin write deny-script"),
    (c"whitelist.bindings", commands::bindings_cmd, c"admin readonly deny-script"),
    // Not `write`: RESET clears this server's own table, no data, so a
    // read-only replica resets its own; usable while loading, as SLOWLOG.
    (c"whitelist.denied", commands::denied_cmd, c"admin deny-script allow-loading allow-stale"),
    (c"whitelist.stale", commands::stale_cmd, c"admin readonly deny-script"),
];

type EventFn = unsafe extern "C" fn(Ctx, raw::RedisModuleEvent, u64, *mut c_void);

const EVENTS: &[(u64, EventFn)] = &[
    (raw::REDISMODULE_EVENT_CLIENT_CHANGE, hook::on_client_change),
    (raw::REDISMODULE_EVENT_LOADING, loading::on_loading),
    (raw::REDISMODULE_EVENT_FORK_CHILD, rewrite::on_fork_child),
];

/// # Safety
/// Called by Redis once, when the module is loaded.
#[no_mangle]
pub unsafe extern "C" fn RedisModule_OnLoad(ctx: Ctx, _argv: *mut *mut raw::RedisModuleString, argc: c_int) -> c_int {
    const ERR: c_int = raw::REDISMODULE_ERR as c_int;
    // Nothing may allocate before this call: the allocator is Redis's.
    if unsafe { raw::Export_RedisModule_Init(ctx, NAME.as_ptr(), VERSION, raw::REDISMODULE_APIVER_1 as c_int) } == ERR {
        return ERR;
    }
    ffi::guard(ERR, || match load(ctx, argc) {
        Ok(()) => raw::REDISMODULE_OK as c_int,
        Err(e) => {
            ffi::log(ctx, Level::Warning, &e);
            ERR
        }
    })
}

/// # Safety
/// Called by Redis on `MODULE UNLOAD`, which it refuses anyway while the
/// module's data type exists.
#[no_mangle]
pub unsafe extern "C" fn RedisModule_OnUnload(_ctx: Ctx) -> c_int {
    raw::REDISMODULE_OK as c_int
}

fn version_text(v: i32) -> String {
    format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
}

fn load(ctx: Ctx, argc: c_int) -> Result<(), String> {
    ffi::install_panic_hook(ctx);
    if argc != 0 {
        return Err(String::from(
            "the module takes no arguments: set whitelist.* configs in redis.conf or with --whitelist.<name> <value>",
        ));
    }
    match ffi::server_version() {
        Some(v) if v >= MIN_SERVER_VERSION => {}
        found => {
            let found = found.map_or_else(|| String::from("older than 6.0.9"), version_text);
            return Err(format!(
                "this server ({found}) cannot run the whitelist: it needs Redis {} or newer",
                version_text(MIN_SERVER_VERSION)
            ));
        }
    }
    // Without it, a short read of aux data makes Redis abort instead of
    // failing the load.
    let set_options = unsafe { raw::RedisModule_SetModuleOptions }.ok_or("no SetModuleOptions")?;
    unsafe { set_options(ctx, raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as c_int) };
    WHITELIST_TYPE.create_data_type(ctx).map_err(|e| format!("creating the aux data type failed: {e}"))?;
    let create = unsafe { raw::RedisModule_CreateCommand }.ok_or("no CreateCommand")?;
    for &(name, callback, flags) in COMMANDS {
        if unsafe { create(ctx, name.as_ptr(), Some(callback), flags.as_ptr(), 0, 0, 0) }
            != raw::REDISMODULE_OK as c_int
        {
            return Err(format!("could not register {}", name.to_string_lossy()));
        }
        set_acl_categories(ctx, name)?;
        docs::apply(ctx, name);
    }
    #[cfg(feature = "debug-panic")]
    debug::register(ctx);
    config::register(ctx)?;
    let subscribe = unsafe { raw::RedisModule_SubscribeToServerEvent }.ok_or("no SubscribeToServerEvent")?;
    for &(id, callback) in EVENTS {
        if unsafe { subscribe(ctx, raw::RedisModuleEvent { id, dataver: 1 }, Some(callback)) }
            != raw::REDISMODULE_OK as c_int
        {
            return Err(format!("could not subscribe to server event {id}"));
        }
    }
    let register_info = unsafe { raw::RedisModule_RegisterInfoFunc }.ok_or("no RegisterInfoFunc")?;
    unsafe { register_info(ctx, Some(info::info)) };
    ffi::refresh_clock(ctx);
    let open = adopt_open_connections(ctx);
    prepare_refusals(ctx)?;
    if starting(ctx, open) {
        // The first load of a starting server is the window: its rules
        // come from the data. A timer fires once the event loop runs
        // (timers never run during a load): past it, no load is the first.
        state::with(|g| g.expect_startup_load());
        ffi::create_timer(ctx, 0, loading::startup_over);
    }
    Ok(())
}

/// Whether the server is starting (not a `MODULE LOAD` at run time). Redis
/// 7.2+ says so; on 7.0 a run-time load always has a caller connected.
fn starting(ctx: Ctx, open_connections: usize) -> bool {
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
fn prepare_refusals(ctx: Ctx) -> Result<(), String> {
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

/// Puts a command in the ACL categories @admin and @dangerous. Redis 7.2+
/// has the call; Redis 7.0 gives module commands no categories at all (so
/// `-@admin` does not reach them: README says to name them instead).
fn set_acl_categories(ctx: Ctx, name: &CStr) -> Result<(), String> {
    let (Some(get), Some(set)) = (unsafe { (raw::RedisModule_GetCommand, raw::RedisModule_SetCommandACLCategories) })
    else {
        return Ok(());
    };
    let command = unsafe { get(ctx, name.as_ptr()) };
    if command.is_null() || unsafe { set(command, c"admin dangerous".as_ptr()) } != raw::REDISMODULE_OK as c_int {
        return Err(format!("could not put {} in the ACL categories admin and dangerous", name.to_string_lossy()));
    }
    Ok(())
}

/// Connections opened before `MODULE LOAD` never passed the connection event:
/// take them from `CLIENT LIST` so every rule change checks them too.
/// Returns how many were adopted.
fn adopt_open_connections(ctx: Ctx) -> usize {
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

/// `WHITELIST.DEBUG-PANIC`: panics inside a command, to prove that a panic
/// becomes an error reply and never reaches Redis. Only in builds with the
/// `debug-panic` feature.
#[cfg(feature = "debug-panic")]
mod debug {
    use std::os::raw::c_int;

    use redis_module::{raw, Context, RedisError};

    use crate::ffi;

    unsafe extern "C" fn panic_command(
        ctx: *mut raw::RedisModuleCtx,
        _argv: *mut *mut raw::RedisModuleString,
        _argc: c_int,
    ) -> c_int {
        let context = Context::new(ctx);
        let result =
            ffi::guard(Err(RedisError::Str("ERR internal error: nothing was changed (see the server log)")), || {
                panic!("WHITELIST.DEBUG-PANIC was called")
            });
        context.reply(result) as c_int
    }

    /// `WHITELIST.DEBUG-FAULT hook-panic|hold-open|off`: makes the
    /// connection hook panic, to prove that it fails closed; or keeps held
    /// clients held, to show what they can do; `off` ends both.
    unsafe extern "C" fn fault_command(
        ctx: *mut raw::RedisModuleCtx,
        argv: *mut *mut raw::RedisModuleString,
        argc: c_int,
    ) -> c_int {
        let context = Context::new(ctx);
        let args = redis_module::decode_args(ctx, argv, argc);
        let result = match args.get(1).map(|a| a.to_string_lossy().to_ascii_lowercase()).as_deref() {
            Some("hook-panic") if args.len() == 2 => {
                crate::state::HOOK_PANIC.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(redis_module::RedisValue::SimpleStringStatic("OK"))
            }
            Some("hold-open") if args.len() == 2 => {
                crate::state::HOLD_OPEN.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(redis_module::RedisValue::SimpleStringStatic("OK"))
            }
            Some("lose-next-change") if args.len() == 2 => {
                crate::state::LOSE_NEXT_CHANGE.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(redis_module::RedisValue::SimpleStringStatic("OK"))
            }
            Some("off") if args.len() == 2 => {
                crate::state::LOSE_NEXT_CHANGE.store(false, std::sync::atomic::Ordering::Relaxed);
                crate::state::HOOK_PANIC.store(false, std::sync::atomic::Ordering::Relaxed);
                crate::state::HOLD_OPEN.store(false, std::sync::atomic::Ordering::Relaxed);
                crate::hook::arm_close();
                Ok(redis_module::RedisValue::SimpleStringStatic("OK"))
            }
            _ => Err(RedisError::Str("ERR usage: WHITELIST.DEBUG-FAULT hook-panic|hold-open|lose-next-change|off")),
        };
        context.reply(result) as c_int
    }

    pub fn register(ctx: *mut raw::RedisModuleCtx) {
        if let Some(create) = unsafe { raw::RedisModule_CreateCommand } {
            unsafe { create(ctx, c"whitelist.debug-panic".as_ptr(), Some(panic_command), c"admin".as_ptr(), 0, 0, 0) };
            crate::docs::apply(ctx, c"whitelist.debug-panic");
            unsafe { create(ctx, c"whitelist.debug-fault".as_ptr(), Some(fault_command), c"admin".as_ptr(), 0, 0, 0) };
            crate::docs::apply(ctx, c"whitelist.debug-fault");
        }
    }
}

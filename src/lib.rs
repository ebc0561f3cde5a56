//! redis-whitelist: a Redis module that admits clients only from whitelisted
//! IPv4/IPv6 addresses and CIDR blocks, grouped and managed with `WHITELIST.*`
//! commands, persisted in the RDB, replicated and written to the AOF.
//!
//! This file is the manifest: the module's name and version, its commands and
//! their flags, its data type, its events, and the load sequence. The rule
//! engine lives in the `whitelist-core` crate; configs in `config.rs`.

mod acl;
mod bus;
mod cluster;
mod commands;
mod config;
#[cfg(feature = "debug-panic")]
mod debug;
mod docs;
mod ffi;
mod hook;
mod info;
mod loading;
mod maintenance;
mod persistence;
mod rewrite;
mod startup;
mod state;

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;

use redis_module::alloc::RedisAlloc;
use redis_module::raw;

use crate::ffi::{Ctx, Level};
use crate::persistence::WHITELIST_TYPE;

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
    (c"whitelist.cluster", commands::cluster_cmd, c"admin readonly deny-script"),
    // Internal: what a primary propagates in cluster mode; refused from
    // ordinary clients (§12).
    (c"whitelist.merge", cluster::merge_cmd, c"admin write deny-script"),
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
    bus::start(ctx);
    let open = startup::adopt_open_connections(ctx);
    startup::prepare_refusals(ctx)?;
    if startup::starting(ctx, open) {
        // The first load of a starting server is the window: its rules
        // come from the data. A timer fires once the event loop runs
        // (timers never run during a load): past it, no load is the first.
        state::with(|g| g.expect_startup_load());
        ffi::create_timer(ctx, 0, loading::startup_over);
    }
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

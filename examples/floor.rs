//! The cost floor of the performance comparison: a module that subscribes to
//! the client-change event and does nothing else. What a server with this
//! module spends per connection beyond a server without modules is Redis's
//! own cost of dispatching the connect and disconnect events to a module.
//!
//! Built by `cargo build --release --example floor` as
//! `target/release/examples/libfloor.so`.

use std::ffi::c_void;
use std::os::raw::c_int;

use redis_module::raw;

/// # Safety
/// Called by Redis for every connect and disconnect.
unsafe extern "C" fn on_client_change(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
}

/// # Safety
/// Called by Redis once, when the module is loaded.
#[no_mangle]
pub unsafe extern "C" fn RedisModule_OnLoad(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    const ERR: c_int = raw::REDISMODULE_ERR as c_int;
    if unsafe { raw::Export_RedisModule_Init(ctx, c"floor".as_ptr(), 1, raw::REDISMODULE_APIVER_1 as c_int) } == ERR {
        return ERR;
    }
    let Some(subscribe) = (unsafe { raw::RedisModule_SubscribeToServerEvent }) else {
        return ERR;
    };
    let event = raw::RedisModuleEvent { id: raw::REDISMODULE_EVENT_CLIENT_CHANGE, dataver: 1 };
    unsafe { subscribe(ctx, event, Some(on_client_change)) }
}

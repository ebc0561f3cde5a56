//! The loading lifecycle: start-up loads, `DEBUG RELOAD`, AOF loads and a
//! replica's full sync, each announced by `REDISMODULE_EVENT_LOADING`. The
//! decisions (the start-up window, what data without a whitelist leaves
//! behind, divergence) are the gate's; this file maps the events onto it.

use std::ffi::c_void;

use redis_module::raw;
use whitelist_core::gate::LoadKind;

use crate::ffi::{self, Ctx};
use crate::hook::Fx;
use crate::state;

/// # Safety
/// Called by Redis for `REDISMODULE_EVENT_LOADING`.
pub unsafe extern "C" fn on_loading(ctx: Ctx, _eid: raw::RedisModuleEvent, subevent: u64, _data: *mut c_void) {
    ffi::guard((), || {
        let mut fx = Fx::new(ctx);
        state::with(|g| match subevent {
            raw::REDISMODULE_SUBEVENT_LOADING_RDB_START => g.begin_load(LoadKind::Rdb, &mut fx),
            // A multi-part AOF (base and incremental files) is one load: one
            // start and one end around all its files.
            raw::REDISMODULE_SUBEVENT_LOADING_AOF_START => g.begin_load(LoadKind::Aof, &mut fx),
            raw::REDISMODULE_SUBEVENT_LOADING_REPL_START => g.begin_load(LoadKind::Replication, &mut fx),
            raw::REDISMODULE_SUBEVENT_LOADING_ENDED => {
                g.finish_load(&mut fx);
                // What expired before the data was loaded admits nobody.
                crate::maintenance::arm(ctx, g);
            }
            raw::REDISMODULE_SUBEVENT_LOADING_FAILED => g.fail_load(&mut fx),
            // A subevent a later server adds means nothing to the gate.
            _ => {}
        });
    });
}

/// # Safety
/// Called by Redis as a timer callback, armed when the module loads at
/// start-up. Timers do not run during a load, so it fires once the event
/// loop runs: the start-up is over, and no later load is the window.
pub unsafe extern "C" fn startup_over(_ctx: Ctx, _data: *mut c_void) {
    ffi::guard((), || {
        state::with(|g| {
            if !g.is_loading() {
                g.startup_over();
            }
        });
    });
}

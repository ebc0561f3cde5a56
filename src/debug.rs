//! `WHITELIST.DEBUG-PANIC`: panics inside a command, to prove that a panic
//! becomes an error reply and never reaches Redis. Only in builds with the
//! `debug-panic` feature.

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

//! Thin, panic-free wrappers over the Redis module API calls the module uses,
//! beyond what the `redis-module` crate wraps. A missing API (an older server)
//! makes a call a no-op or return `None`, never a crash.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::{raw, Context, RedisValue};
use whitelist_core::{parse_peer, Peer};

use crate::state::Conn;

pub type Ctx = *mut raw::RedisModuleCtx;

/// A context that outlives every callback, for log lines written where Redis
/// hands the module no context (the panic hook).
static LOG_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

#[derive(Clone, Copy)]
pub enum Level {
    Notice,
    Warning,
}

impl Level {
    fn as_cstr(self) -> &'static CStr {
        match self {
            Level::Notice => c"notice",
            Level::Warning => c"warning",
        }
    }
}

/// Writes one line to the server log, prefixed `<whitelist>` by Redis. The
/// text is passed as an argument of a constant `%s` format, never as a format.
pub fn log(ctx: Ctx, level: Level, message: &str) {
    let Some(log) = (unsafe { raw::RedisModule_Log }) else {
        return;
    };
    let ctx = or_detached(ctx);
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    unsafe { log(ctx, level.as_cstr().as_ptr(), c"%s".as_ptr(), text.as_ptr()) }
}

/// `ctx`, or the detached context where Redis passed none.
pub fn or_detached(ctx: Ctx) -> Ctx {
    if ctx.is_null() {
        LOG_CTX.load(Ordering::Relaxed)
    } else {
        ctx
    }
}

/// Runs `f`, turning a panic into `fallback`: no panic may unwind into Redis.
/// The panic hook has already logged it.
#[inline]
pub fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Keeps a detached context for logging and routes panic messages to the
/// server log.
pub fn install_panic_hook(ctx: Ctx) {
    if let Some(detach) = unsafe { raw::RedisModule_GetDetachedThreadSafeContext } {
        LOG_CTX.store(unsafe { detach(ctx) }, Ordering::Relaxed);
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log(std::ptr::null_mut(), Level::Warning, &format!("internal error, the operation was abandoned: {info}"));
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            previous(info);
        }
    }));
}

/// The server version as 0x00MMmmpp.
pub fn server_version() -> Option<i32> {
    let get = unsafe { raw::RedisModule_GetServerVersion }?;
    Some(unsafe { get() })
}

/// Deauthenticates a client and closes it once its current command is done.
pub fn close_client(ctx: Ctx, id: u64) {
    if let Some(close) = unsafe { raw::RedisModule_DeauthenticateAndCloseClient } {
        unsafe { close(ctx, id) };
    }
}

/// Whether a client pause (`CLIENT PAUSE`, `FAILOVER`) is in force: Redis
/// asserts on any propagation then, AOF-only included.
pub fn avoid_replica_traffic() -> bool {
    match unsafe { raw::RedisModule_AvoidReplicaTraffic } {
        Some(avoid) => unsafe { avoid() != 0 },
        None => false,
    }
}

pub fn context_flags(ctx: Ctx) -> u32 {
    match unsafe { raw::RedisModule_GetContextFlags } {
        Some(flags) => unsafe { flags(ctx) as u32 },
        None => 0,
    }
}

pub fn client_id(ctx: Ctx) -> u64 {
    match unsafe { raw::RedisModule_GetClientId } {
        Some(id) => unsafe { id(ctx) },
        None => 0,
    }
}

pub fn milliseconds() -> i64 {
    match unsafe { raw::RedisModule_Milliseconds } {
        Some(ms) => unsafe { ms() },
        None => 0,
    }
}

/// The connection described by Redis's client info.
#[inline]
pub fn conn_of(info: &raw::RedisModuleClientInfo) -> Conn {
    let peer = if u64::from(raw::REDISMODULE_CLIENTINFO_FLAG_UNIXSOCKET) & info.flags != 0 {
        Peer::Unix
    } else {
        // SAFETY: `addr` is an array inside the struct; the text in it ends at
        // its first NUL, which `parse_peer` stops at.
        let raw_addr = unsafe { std::slice::from_raw_parts(info.addr.as_ptr().cast::<u8>(), info.addr.len()) };
        parse_peer(raw_addr).map_or(Peer::Unknown, Peer::Ip)
    };
    Conn { peer, port: info.port }
}

/// The connection of client `id`, if it is a connected client.
pub fn client_conn(id: u64) -> Option<Conn> {
    let get = unsafe { raw::RedisModule_GetClientInfoById }?;
    let mut info = raw::RedisModuleClientInfo {
        version: u64::from(raw::REDISMODULE_CLIENTINFO_VERSION),
        flags: 0,
        id: 0,
        addr: [0; 46],
        port: 0,
        db: 0,
    };
    let status = unsafe { get((&mut info as *mut raw::RedisModuleClientInfo).cast::<c_void>(), id) };
    (status == raw::REDISMODULE_OK as c_int).then(|| conn_of(&info))
}

/// The ACL user the context's client is authenticated as.
pub fn current_user(ctx: Ctx) -> String {
    let (Some(get), Some(ptr_len), Some(free)) =
        (unsafe { (raw::RedisModule_GetCurrentUserName, raw::RedisModule_StringPtrLen, raw::RedisModule_FreeString) })
    else {
        return String::from("?");
    };
    let name = unsafe { get(ctx) };
    if name.is_null() {
        return String::from("?");
    }
    let mut len = 0usize;
    let ptr = unsafe { ptr_len(name, &mut len) };
    let text = if ptr.is_null() {
        String::from("?")
    } else {
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }).into_owned()
    };
    unsafe { free(ctx, name) };
    text
}

/// Runs `read` on one INFO section, read through the server-info API.
fn with_server_info<T>(
    ctx: Ctx,
    section: &CStr,
    read: impl FnOnce(*mut raw::RedisModuleServerInfoData) -> Option<T>,
) -> Option<T> {
    let (get, free) = unsafe { (raw::RedisModule_GetServerInfo?, raw::RedisModule_FreeServerInfo?) };
    let data = unsafe { get(ctx, section.as_ptr()) };
    if data.is_null() {
        return None;
    }
    let value = read(data);
    unsafe { free(ctx, data) };
    value
}

/// A signed field of an INFO section.
pub fn info_field(ctx: Ctx, section: &CStr, field: &CStr) -> Option<i64> {
    let field_signed = unsafe { raw::RedisModule_ServerInfoGetFieldSigned }?;
    with_server_info(ctx, section, |data| {
        let mut err: c_int = 0;
        let value = unsafe { field_signed(data, field.as_ptr(), &mut err) };
        (err == 0).then_some(value)
    })
}

/// The text reply of a command run through `RM_Call`; `None` for other
/// replies. (The crate hands bulk strings back as `SimpleString` when they
/// are UTF-8 and as `StringBuffer` otherwise, and errors as `StringBuffer` too:
/// callers parse what they get and ignore what they cannot read.)
pub fn call_text(ctx: Ctx, command: &str, args: &[&str]) -> Option<Vec<u8>> {
    text_of(Context::new(ctx).call(command, args).ok()?)
}

/// The bytes of a string-like reply value.
pub fn text_of(value: RedisValue) -> Option<Vec<u8>> {
    match value {
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s.into_bytes()),
        RedisValue::StringBuffer(b) => Some(b),
        RedisValue::BulkRedisString(s) => Some(s.as_slice().to_vec()),
        _ => None,
    }
}

/// Propagates `command payload` as one command; `aof_only` keeps it from replicas.
pub fn replicate_one(ctx: Ctx, command: &CStr, payload: &[u8], aof_only: bool) -> bool {
    let Some(replicate) = (unsafe { raw::RedisModule_Replicate }) else {
        return false;
    };
    let fmt = if aof_only { c"bR" } else { c"b" };
    let status = unsafe { replicate(ctx, command.as_ptr(), fmt.as_ptr(), payload.as_ptr(), payload.len()) };
    status == raw::REDISMODULE_OK as c_int
}

/// Arms a one-shot timer.
pub fn create_timer(ctx: Ctx, ms: i64, callback: unsafe extern "C" fn(Ctx, *mut c_void)) {
    let ctx = or_detached(ctx);
    if let (Some(create), false) = (unsafe { raw::RedisModule_CreateTimer }, ctx.is_null()) {
        unsafe { create(ctx, ms.max(0), Some(callback), std::ptr::null_mut()) };
    }
}

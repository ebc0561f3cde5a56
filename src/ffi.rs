//! Thin, panic-free wrappers over the Redis module API calls the module uses,
//! beyond what the `redis-module` crate wraps. A missing API (an older server)
//! makes a call a no-op or return `None`, never a crash.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::{raw, Context, RedisValue};
use whitelist_core::clients::client_peer;
use whitelist_core::Peer;

use crate::state::Conn;

type UserChanged = unsafe extern "C" fn(u64, *mut c_void);

pub type Ctx = *mut raw::RedisModuleCtx;

/// A context that outlives every callback, for log lines written where Redis
/// hands the module no context (the panic hook).
static LOG_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

#[derive(Clone, Copy)]
pub enum Level {
    Debug,
    Notice,
    Warning,
}

impl Level {
    fn as_cstr(self) -> &'static CStr {
        match self {
            Level::Debug => c"debug",
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

/// Deauthenticates a client and closes it once its current command is done;
/// `false` when no such client exists (it is gone already).
pub fn close_client(ctx: Ctx, id: u64) -> bool {
    match unsafe { raw::RedisModule_DeauthenticateAndCloseClient } {
        // SAFETY: Redis looks the id up; an unknown id is an error, not a crash.
        Some(close) => (unsafe { close(or_detached(ctx), id) }) == raw::REDISMODULE_OK as c_int,
        None => false,
    }
}

/// The user that refused clients are held as: no permissions at all.
static HELD_USER: AtomicPtr<raw::RedisModuleUser> = AtomicPtr::new(std::ptr::null_mut());

/// Creates the user refused clients are held as (`on`, no command, no key,
/// no channel: every command gets `-NOPERM`).
pub fn create_held_user() -> bool {
    let (Some(create), Some(set_acl)) =
        (unsafe { (raw::RedisModule_CreateModuleUser, raw::RedisModule_SetModuleUserACL) })
    else {
        return false;
    };
    // SAFETY: Redis copies the name; the user lives until freed here.
    let user = unsafe { create(c"whitelist-refused".as_ptr()) };
    if user.is_null() {
        return false;
    }
    for rule in [c"on", c"-@all", c"resetkeys", c"resetchannels"] {
        if unsafe { set_acl(user, rule.as_ptr()) } != raw::REDISMODULE_OK as c_int {
            return false;
        }
    }
    let previous = HELD_USER.swap(user, Ordering::Relaxed);
    if !previous.is_null() {
        if let Some(free) = unsafe { raw::RedisModule_FreeModuleUser } {
            // SAFETY: the previous user is no longer handed out; freeing it
            // disconnects every client still authenticated as it.
            unsafe { free(previous) };
        }
    }
    true
}

/// Authenticates the client of `ctx` (the connection event's own client) as
/// the held user; `on_change` runs when its user changes (`RESET`).
pub fn hold_client(ctx: Ctx, on_change: UserChanged) -> bool {
    let user = HELD_USER.load(Ordering::Relaxed);
    match unsafe { raw::RedisModule_AuthenticateClientWithUser } {
        Some(auth) if !user.is_null() => {
            // SAFETY: `ctx` holds the real client in a connection event.
            let status = unsafe { auth(ctx, user, Some(on_change), std::ptr::null_mut(), std::ptr::null_mut()) };
            status == raw::REDISMODULE_OK as c_int
        }
        _ => false,
    }
}

/// The command filter that refuses the commands of held clients, while one
/// is registered. It is registered only while a client is held: with no
/// filter, Redis runs no filter code for any command.
static HELD_FILTER: AtomicPtr<raw::RedisModuleCommandFilter> = AtomicPtr::new(std::ptr::null_mut());

type CommandFilter = unsafe extern "C" fn(*mut raw::RedisModuleCommandFilterCtx);

/// Registers `filter` (skipped for the module's own `RM_Call`s) unless it is
/// registered already; `false` where the server cannot name a filtered
/// command's client (before Redis 7.2) or the registration fails.
pub fn filter_commands(ctx: Ctx, filter: CommandFilter) -> bool {
    if !HELD_FILTER.load(Ordering::Relaxed).is_null() {
        return true;
    }
    let api = unsafe {
        (
            raw::RedisModule_RegisterCommandFilter,
            raw::RedisModule_UnregisterCommandFilter,
            raw::RedisModule_CommandFilterGetClientId,
            raw::RedisModule_CommandFilterArgsCount,
            raw::RedisModule_CommandFilterArgDelete,
            raw::RedisModule_CommandFilterArgReplace,
            raw::RedisModule_CreateString,
            raw::RedisModule_FreeString,
        )
    };
    let (Some(register), Some(_), Some(_), Some(_), Some(_), Some(_), Some(_), Some(_)) = api else {
        return false;
    };
    let ctx = or_detached(ctx);
    if ctx.is_null() {
        return false;
    }
    // SAFETY: `ctx` belongs to this module (an event's or the detached one),
    // which Redis records as the filter's owner.
    let registered = unsafe { register(ctx, Some(filter), raw::REDISMODULE_CMDFILTER_NOSELF as c_int) };
    if registered.is_null() {
        return false;
    }
    HELD_FILTER.store(registered, Ordering::Relaxed);
    true
}

/// Unregisters the filter of [`filter_commands`], if it is registered.
pub fn unfilter_commands(ctx: Ctx) {
    let ctx = or_detached(ctx);
    let (Some(unregister), false) = (unsafe { raw::RedisModule_UnregisterCommandFilter }, ctx.is_null()) else {
        return;
    };
    let filter = HELD_FILTER.swap(std::ptr::null_mut(), Ordering::Relaxed);
    if !filter.is_null() {
        // SAFETY: the filter was registered by this module and not since
        // unregistered (the pointer is taken out first).
        unsafe { unregister(ctx, filter) };
    }
}

/// The id of the client whose command is being filtered.
pub fn filtered_client(fctx: *mut raw::RedisModuleCommandFilterCtx) -> u64 {
    match unsafe { raw::RedisModule_CommandFilterGetClientId } {
        Some(id) => unsafe { id(fctx) },
        None => 0,
    }
}

/// Rewrites the filtered command into a bare `PING`, which the ACL check
/// refuses a user without permissions with `-NOPERM`. (Commands flagged
/// no-auth, such as `HELLO`, `AUTH`, `QUIT` and `RESET`, skip that check.)
pub fn refuse_filtered(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    let api = unsafe {
        (
            raw::RedisModule_CommandFilterArgsCount,
            raw::RedisModule_CommandFilterArgDelete,
            raw::RedisModule_CommandFilterArgReplace,
            raw::RedisModule_CreateString,
            raw::RedisModule_FreeString,
        )
    };
    let (Some(count), Some(delete), Some(replace), Some(create), Some(free)) = api else {
        return;
    };
    // SAFETY: `fctx` is the live filter context of this call; positions are
    // checked by Redis, and the new name is handed over to it (a string
    // without a context is never freed behind Redis's back).
    unsafe {
        for pos in (1..count(fctx)).rev() {
            delete(fctx, pos);
        }
        let ping = create(std::ptr::null_mut(), c"PING".as_ptr(), 4);
        if !ping.is_null() && replace(fctx, 0, ping) != raw::REDISMODULE_OK as c_int {
            free(std::ptr::null_mut(), ping);
        }
    }
}

/// Registers an authentication callback (Redis 7.2+); `false` without the API.
pub fn register_auth_callback(ctx: Ctx, callback: raw::RedisModuleAuthCallback) -> bool {
    match unsafe { raw::RedisModule_RegisterAuthCallback } {
        Some(register) => {
            unsafe { register(ctx, callback) };
            true
        }
        None => false,
    }
}

/// Runs `callback` from the main event loop's file events (also during a
/// load, when timers do not run).
pub fn one_shot(callback: unsafe extern "C" fn(*mut c_void)) -> bool {
    match unsafe { raw::RedisModule_EventLoopAddOneShot } {
        Some(add) => (unsafe { add(Some(callback), std::ptr::null_mut()) }) == raw::REDISMODULE_OK as c_int,
        None => false,
    }
}

/// One value of `CONFIG GET name`.
pub fn config_get(ctx: Ctx, name: &str) -> Option<Vec<u8>> {
    match Context::new(ctx).call("CONFIG", &["GET", name]) {
        Ok(RedisValue::Array(mut items)) if items.len() == 2 => items.pop().and_then(text_of),
        _ => None,
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

/// The unix second as last refreshed: what the connection hook stamps a
/// hit with, without reading the clock per connection. Redis 7.2+ keeps a
/// cached time of its own (`RedisModule_CachedMicroseconds`); on 7.0 a timer
/// refreshes [`CLOCK_S`] every second ([`refresh_clock`]), so a `last-hit` may
/// lag by up to a second (and by the length of a load, when timers wait).
#[inline]
pub fn cached_unix_seconds() -> u64 {
    match unsafe { raw::RedisModule_CachedMicroseconds } {
        Some(cached) => u64::try_from((unsafe { cached() }).div_euclid(1_000_000)).unwrap_or(0),
        None => CLOCK_S.load(Ordering::Relaxed),
    }
}

/// The unix second for [`cached_unix_seconds`] on servers without a cached time.
static CLOCK_S: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Keeps [`CLOCK_S`] current where the server has no cached time: sets it
/// now and again every second from a timer.
pub fn refresh_clock(ctx: Ctx) {
    if unsafe { raw::RedisModule_CachedMicroseconds }.is_some() {
        return;
    }
    CLOCK_S.store(unix_seconds(), Ordering::Relaxed);
    create_timer(ctx, 1000, refresh_clock_tick);
}

/// # Safety
/// Called by Redis as a timer callback.
unsafe extern "C" fn refresh_clock_tick(ctx: Ctx, _data: *mut c_void) {
    guard((), || refresh_clock(ctx));
}

/// The unix second, from the server's cached clock where it has one (no
/// clock read per call), else from its millisecond clock.
pub fn unix_seconds() -> u64 {
    let micros = match unsafe { raw::RedisModule_CachedMicroseconds } {
        Some(cached) => (unsafe { cached() }).div_euclid(1_000_000),
        None => milliseconds().div_euclid(1000),
    };
    u64::try_from(micros).unwrap_or(0)
}

/// The connection described by Redis's client info.
#[inline(always)]
pub fn conn_of(info: &raw::RedisModuleClientInfo) -> Conn {
    let peer = if u64::from(raw::REDISMODULE_CLIENTINFO_FLAG_UNIXSOCKET) & info.flags != 0 {
        Peer::Unix
    } else {
        // SAFETY: `addr` is an array of `c_char` inside the struct, read as
        // the bytes it holds; the text in it ends at its first NUL, which
        // `client_peer` stops at.
        client_peer(unsafe { std::slice::from_raw_parts(info.addr.as_ptr().cast::<u8>(), info.addr.len()) })
    };
    Conn::new(peer, info.port)
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

/// A text field of an INFO section.
pub fn info_text(ctx: Ctx, section: &CStr, field: &CStr) -> Option<String> {
    let field_c = unsafe { raw::RedisModule_ServerInfoGetFieldC }?;
    with_server_info(ctx, section, |data| {
        let value = unsafe { field_c(data, field.as_ptr()) };
        (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) }.to_string_lossy().into_owned())
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

/// The bytes of a module string (empty when the server lacks the call).
pub fn string_bytes(s: *const raw::RedisModuleString) -> Vec<u8> {
    let Some(ptr_len) = (unsafe { raw::RedisModule_StringPtrLen }) else {
        return Vec::new();
    };
    if s.is_null() {
        return Vec::new();
    }
    let mut len = 0usize;
    let ptr = unsafe { ptr_len(s, &mut len) };
    if ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the server hands out `len` bytes at `ptr`, alive as `s` is.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec()
}

/// The ACL user client `id` is authenticated as (`None`: no such client,
/// or an internal one without a user).
pub fn client_user_name(ctx: Ctx, id: u64) -> Option<String> {
    let (get, free) = unsafe { (raw::RedisModule_GetClientUserNameById?, raw::RedisModule_FreeString?) };
    // The call registers the string with the context's auto memory: it
    // needs a context.
    let ctx = or_detached(ctx);
    if ctx.is_null() {
        return None;
    }
    let name = unsafe { get(ctx, id) };
    if name.is_null() {
        return None;
    }
    let text = String::from_utf8_lossy(&string_bytes(name)).into_owned();
    unsafe { free(ctx, name) };
    Some(text)
}

/// Whether the `default` user logs in without a password (`nopass`): its
/// clients are authenticated at connect and never send `AUTH`.
pub fn default_nopass(ctx: Ctx) -> bool {
    let Ok(RedisValue::Array(fields)) = Context::new(or_detached(ctx)).call("ACL", &["GETUSER", "default"]) else {
        return false;
    };
    let mut it = fields.into_iter();
    while let Some(key) = it.next() {
        let value = it.next();
        if text_of(key).as_deref() == Some(b"flags") {
            if let Some(RedisValue::Array(flags)) = value {
                return flags.into_iter().any(|f| text_of(f).as_deref() == Some(b"nopass"));
            }
            return false;
        }
    }
    false
}

/// Adds an ACL LOG entry of reason `auth` for `user`, as Redis does for a
/// failed login (7.2+; nothing on older servers).
pub fn acl_log_auth(ctx: Ctx, user: *mut raw::RedisModuleString) {
    let (Some(add), Some(create), Some(free)) = (unsafe {
        (raw::RedisModule_ACLAddLogEntryByUserName, raw::RedisModule_CreateString, raw::RedisModule_FreeString)
    }) else {
        return;
    };
    let object = unsafe { create(ctx, c"AUTH".as_ptr(), 4) };
    if object.is_null() {
        return;
    }
    unsafe { add(ctx, user, object, raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_AUTH) };
    unsafe { free(ctx, object) };
}

// ---------------------------------------------------------------------------
// Cluster bus and cluster topology (Redis 7.0+; Valkey exports the same
// `RedisModule_*` calls). Each wrapper checks its function pointer, so a
// server without one degrades to "no cluster" instead of crashing.
// ---------------------------------------------------------------------------

/// The length of a cluster node id: 40 hex characters, not NUL-terminated
/// where the server hands one out.
pub const NODE_ID_LEN: usize = raw::REDISMODULE_NODE_ID_LEN as usize;

/// The cluster calls the bus needs; the name of the first one this server
/// lacks, if any.
pub fn missing_cluster_api() -> Option<&'static str> {
    let present = [
        ("RegisterClusterMessageReceiver", unsafe { raw::RedisModule_RegisterClusterMessageReceiver }.is_some()),
        ("SendClusterMessage", unsafe { raw::RedisModule_SendClusterMessage }.is_some()),
        ("GetClusterNodesList", unsafe { raw::RedisModule_GetClusterNodesList }.is_some()),
        ("FreeClusterNodesList", unsafe { raw::RedisModule_FreeClusterNodesList }.is_some()),
        ("GetClusterNodeInfo", unsafe { raw::RedisModule_GetClusterNodeInfo }.is_some()),
        ("GetMyClusterID", unsafe { raw::RedisModule_GetMyClusterID }.is_some()),
        ("CreateTimer", unsafe { raw::RedisModule_CreateTimer }.is_some()),
    ];
    present.into_iter().find(|&(_, ok)| !ok).map(|(name, _)| name)
}

/// Whether the server runs with `cluster-enabled yes`.
pub fn cluster_mode(ctx: Ctx) -> bool {
    context_flags(or_detached(ctx)) & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0
}

/// Whether this server is a replica now (a failover can change it).
pub fn is_replica(ctx: Ctx) -> bool {
    context_flags(or_detached(ctx)) & raw::REDISMODULE_CTX_FLAGS_SLAVE != 0
}

pub type ClusterReceiver = unsafe extern "C" fn(Ctx, *const std::os::raw::c_char, u8, *const u8, u32);

/// Registers `callback` for the module messages of `message_type`.
pub fn register_cluster_receiver(ctx: Ctx, message_type: u8, callback: ClusterReceiver) -> bool {
    match unsafe { raw::RedisModule_RegisterClusterMessageReceiver } {
        Some(register) => {
            unsafe { register(ctx, message_type, Some(callback)) };
            true
        }
        None => false,
    }
}

/// Sends one module message to node `target`, or to every connected node
/// (`None`). `false` when the server refuses it (not a cluster, unknown
/// target) or the payload is too long for the bus.
pub fn send_cluster_message(ctx: Ctx, target: Option<&str>, message_type: u8, payload: &[u8]) -> bool {
    let Some(send) = (unsafe { raw::RedisModule_SendClusterMessage }) else {
        return false;
    };
    let Ok(len) = u32::try_from(payload.len()) else {
        return false;
    };
    // The server looks the target up by `strlen`: it must end with a NUL.
    let target = match target.map(CString::new) {
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return false,
        None => None,
    };
    let target_ptr = target.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
    let ctx = or_detached(ctx);
    // SAFETY: the payload is copied into the bus's buffers before the call returns.
    let status = unsafe { send(ctx, target_ptr, message_type, payload.as_ptr().cast(), len) };
    status == raw::REDISMODULE_OK as c_int
}

/// A node id handed out by the server: exactly [`NODE_ID_LEN`] bytes at `id`.
///
/// # Safety
/// `id` is NULL or points at least [`NODE_ID_LEN`] readable bytes.
pub unsafe fn node_id_at(id: *const std::os::raw::c_char) -> Option<String> {
    if id.is_null() {
        return None;
    }
    let bytes = unsafe { std::slice::from_raw_parts(id.cast::<u8>(), NODE_ID_LEN) };
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8(text.to_vec()).ok()
}

/// This node's cluster id.
pub fn my_cluster_id() -> Option<String> {
    let get = unsafe { raw::RedisModule_GetMyClusterID }?;
    // SAFETY: the server returns its own node's name, NODE_ID_LEN bytes.
    unsafe { node_id_at(get()) }
}

/// The ids of the nodes this node knows (itself included; the server leaves
/// out nodes still in handshake or without an address).
pub fn cluster_node_ids(ctx: Ctx) -> Vec<String> {
    let (Some(list), Some(free)) =
        (unsafe { (raw::RedisModule_GetClusterNodesList, raw::RedisModule_FreeClusterNodesList) })
    else {
        return Vec::new();
    };
    let mut count = 0usize;
    let ids = unsafe { list(or_detached(ctx), &mut count) };
    if ids.is_null() {
        return Vec::new();
    }
    // SAFETY: `count` pointers, each to NODE_ID_LEN bytes, until freed below.
    let out = (0..count).filter_map(|i| unsafe { node_id_at(*ids.add(i)) }).collect();
    unsafe { free(ids) };
    out
}

/// One node as `RedisModule_GetClusterNodeInfo` describes it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub ip: String,
    pub port: u16,
    pub primary: bool,
    pub myself: bool,
    /// Flagged `pfail` or `fail`: unreachable as far as this node knows.
    pub failing: bool,
}

/// The address, role and health of node `id`; `None` if the server does
/// not know it (or it is in handshake or has no address yet).
pub fn cluster_node_info(ctx: Ctx, id: &str) -> Option<NodeInfo> {
    let get = unsafe { raw::RedisModule_GetClusterNodeInfo }?;
    let id = CString::new(id).ok()?;
    // NET_IP_STR_LEN is 46; the primary id is written without a NUL.
    let mut ip = [0 as std::os::raw::c_char; 64];
    let mut primary_id = [0 as std::os::raw::c_char; NODE_ID_LEN + 1];
    let mut port: c_int = 0;
    let mut flags: c_int = 0;
    let status =
        unsafe { get(or_detached(ctx), id.as_ptr(), ip.as_mut_ptr(), primary_id.as_mut_ptr(), &mut port, &mut flags) };
    if status != raw::REDISMODULE_OK as c_int {
        return None;
    }
    let ip = ip.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect::<Vec<u8>>();
    let flags = flags as u32;
    Some(NodeInfo {
        ip: String::from_utf8_lossy(&ip).into_owned(),
        port: u16::try_from(port).unwrap_or(0),
        primary: flags & raw::REDISMODULE_NODE_MASTER != 0,
        myself: flags & raw::REDISMODULE_NODE_MYSELF != 0,
        failing: flags & (raw::REDISMODULE_NODE_PFAIL | raw::REDISMODULE_NODE_FAIL) != 0,
    })
}

/// A random u64 from the server's generator (for jitter); a clock-based
/// value where the call is missing.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    match unsafe { raw::RedisModule_GetRandomBytes } {
        Some(get) => unsafe { get(bytes.as_mut_ptr(), bytes.len()) },
        None => bytes = (milliseconds() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes(),
    }
    u64::from_le_bytes(bytes)
}

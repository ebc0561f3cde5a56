//! The `whitelist.*` module configs, registered in `init` from the table in
//! `whitelist_core::settings` (after the version check: the calls do not
//! exist before Redis 7.0), read from redis.conf and the command line by
//! `LoadConfigs`, changed by `CONFIG SET`.
//!
//! Every config is a string config: Redis's own texts for enum, bool and
//! numeric configs never name the value given, while a string config's setter
//! validates the value itself and its error, which names the value, becomes
//! Redis's reply and start-up log line.
//!
//! A setter only stores the value. When a value that decides admission
//! changed, the open connections are re-checked once the command is over,
//! from `RedisModule_EventLoopAddOneShot`: a multi-parameter `CONFIG SET` may
//! still roll the value back after the setter ran, so the check must see the
//! final values. A one-shot runs from a file event, so also while Redis is
//! loading, when timers do not run; and it needs no event subscription, which
//! would cost Redis a dispatch step on every event of its kind.

use std::ffi::{c_char, c_void, CString};
use std::os::raw::c_int;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw;
use whitelist_core::gate::WhenEmpty;
use whitelist_core::settings::{Key, Setting, Value, SETTINGS};

use crate::ffi::{self, Ctx};
use crate::hook;
use crate::state::{self, Mode, State};

const OK: c_int = raw::REDISMODULE_OK as c_int;
const ERR: c_int = raw::REDISMODULE_ERR as c_int;

type RString = raw::RedisModuleString;

/// The string each config's getter last handed to Redis. Redis copies it at
/// once (7.0.15, 8.2.3 and Valkey 8.1.8 alike), but the API promises it stays
/// valid after the call: it is freed only when the next one replaces it.
static SHOWN: [AtomicPtr<RString>; SETTINGS.len()] = [const { AtomicPtr::new(null_mut()) }; SETTINGS.len()];

/// Registers every config and applies the values given at start-up. An
/// invalid one makes `LoadConfigs` fail after Redis has logged the setter's
/// error, and the module is not loaded.
pub fn register(ctx: Ctx) -> Result<(), String> {
    let (Some(register_string), Some(load)) =
        (unsafe { (raw::RedisModule_RegisterStringConfig, raw::RedisModule_LoadConfigs) })
    else {
        return Err(String::from("this server has no module config API"));
    };
    if unsafe { raw::RedisModule_EventLoopAddOneShot }.is_none() {
        return Err(String::from("this server has no EventLoopAddOneShot"));
    }
    for (index, setting) in SETTINGS.iter().enumerate() {
        let name = CString::new(setting.name).map_err(|e| e.to_string())?;
        let default = CString::new(setting.default.to_string()).map_err(|e| e.to_string())?;
        // SAFETY: `ctx` is the OnLoad context; Redis copies the name and the
        // default. The row index travels as the private data.
        let status = unsafe {
            register_string(
                ctx,
                name.as_ptr(),
                default.as_ptr(),
                raw::REDISMODULE_CONFIG_DEFAULT,
                Some(get),
                Some(set),
                None,
                index as *mut c_void,
            )
        };
        if status != OK {
            return Err(format!("registering {} failed", setting.full_name()));
        }
    }
    // SAFETY: as above.
    if unsafe { load(ctx) } != OK {
        return Err(String::from("a whitelist.* value given at start-up is invalid (see the line above)"));
    }
    Ok(())
}

/// # Safety
/// Called by Redis for `CONFIG GET`, `CONFIG REWRITE` and before a set, with
/// the private data given at registration.
unsafe extern "C" fn get(_name: *const c_char, privdata: *mut c_void) -> *mut RString {
    ffi::guard(null_mut(), || {
        let index = privdata as usize;
        let (Some(setting), Some(slot)) = (SETTINGS.get(index), SHOWN.get(index)) else {
            return null_mut();
        };
        let Some(value) = state::with(|s| value_of(s, setting.key)) else {
            return null_mut();
        };
        let text = new_string(&value.to_string());
        let previous = slot.swap(text, Ordering::Relaxed);
        free_string(previous);
        text
    })
}

/// # Safety
/// Called by Redis for `CONFIG SET`, for a start-up value and for the default,
/// with the private data given at registration; `err` is where Redis takes an
/// error from (it frees the string).
unsafe extern "C" fn set(
    _name: *const c_char,
    val: *mut RString,
    privdata: *mut c_void,
    err: *mut *mut RString,
) -> c_int {
    ffi::guard(ERR, || match set_value(privdata as usize, &ffi::string_bytes(val)) {
        Ok(()) => OK,
        Err(text) => {
            if !err.is_null() {
                // SAFETY: Redis passes a valid out-pointer; null checked.
                unsafe { *err = new_string(&text) };
            }
            ERR
        }
    })
}

/// Validates `given` for row `index` and stores it.
fn set_value(index: usize, given: &[u8]) -> Result<(), String> {
    let setting = SETTINGS.get(index).ok_or("no such whitelist config")?;
    let value = setting.parse(given).map_err(|e| e.to_string())?;
    state::with(|s| store(s, setting, value))
        .unwrap_or_else(|| Err(format!("{} could not be set: the module's state is busy", setting.full_name())))
}

/// Stores a validated value; a change that decides admission has the open
/// connections re-checked after the command.
fn store(s: &mut State, setting: &Setting, value: Value) -> Result<(), String> {
    let mismatch = || format!("{} could not be set: internal error", setting.full_name());
    let changed = match (setting.key, value) {
        (Key::Mode, Value::Choice(name)) => {
            let mode = mode_named(name).ok_or_else(mismatch)?;
            std::mem::replace(&mut s.config.mode, mode) != mode
        }
        (Key::AllowLoopback, Value::Bool(b)) => std::mem::replace(&mut s.config.allow_loopback, b) != b,
        (Key::AllowUnixsocket, Value::Bool(b)) => std::mem::replace(&mut s.config.allow_unixsocket, b) != b,
        (Key::MaxGroups, Value::Integer(n)) => std::mem::replace(&mut s.config.max_groups, n) != n,
        (Key::MaxEntriesPerGroup, Value::Integer(n)) => std::mem::replace(&mut s.config.max_entries_per_group, n) != n,
        (Key::WhenEmpty, Value::Choice(name)) => {
            let when = match name {
                "allow" => WhenEmpty::Allow,
                "deny" => WhenEmpty::Deny,
                _ => return Err(mismatch()),
            };
            std::mem::replace(&mut s.config.when_empty, when) != when
        }
        (Key::DeniedSources, Value::Integer(n)) => {
            if std::mem::replace(&mut s.config.denied_sources, n) != n {
                resize_when_final(s);
            }
            false
        }
        _ => return Err(mismatch()),
    };
    // Nothing is open while the module loads (connections are adopted after
    // the configs), so the values it starts with re-check nothing.
    if changed && setting.rechecks && s.conns().next().is_some() && !state::RECHECK_DUE.load(Ordering::Relaxed) {
        // SAFETY: checked at registration; the call only queues the callback.
        if let Some(add) = unsafe { raw::RedisModule_EventLoopAddOneShot } {
            if unsafe { add(Some(recheck), null_mut()) } == OK {
                state::RECHECK_DUE.store(true, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

fn value_of(s: &State, key: Key) -> Value {
    match key {
        Key::Mode => Value::Choice(s.config.mode.name()),
        Key::AllowLoopback => Value::Bool(s.config.allow_loopback),
        Key::AllowUnixsocket => Value::Bool(s.config.allow_unixsocket),
        Key::MaxGroups => Value::Integer(s.config.max_groups),
        Key::MaxEntriesPerGroup => Value::Integer(s.config.max_entries_per_group),
        Key::WhenEmpty => Value::Choice(s.config.when_empty.name()),
        Key::DeniedSources => Value::Integer(s.config.denied_sources),
    }
}

/// Resizes the table of denied sources once the value is final: a
/// multi-parameter `CONFIG SET` may still roll it back, and a shrink and a
/// rollback would have cut rows. An empty table (the start-up values) loses
/// nothing and is resized at once; commands that read the table resize it
/// first, so none sees the old size.
fn resize_when_final(s: &mut State) {
    if s.denied().is_empty() || !ffi::one_shot(resize_denied) {
        s.sync_denied();
    }
}

/// # Safety
/// Called by Redis from its event loop, once, after a `CONFIG SET` of
/// `whitelist.denied-sources`.
unsafe extern "C" fn resize_denied(_data: *mut c_void) {
    ffi::guard((), || {
        state::with(State::sync_denied);
    });
}

fn mode_named(name: &str) -> Option<Mode> {
    let code = Mode::NAMES.iter().position(|n| *n == name)?;
    Mode::from_code(i32::try_from(code).ok()?)
}

/// # Safety
/// Called by Redis from its event loop, once, after a `CONFIG SET` (or a
/// start-up value) changed a config that decides admission.
unsafe extern "C" fn recheck(_data: *mut c_void) {
    ffi::guard((), || {
        // The one-shot brings no context: the detached one logs under the
        // module's name, and closing a client needs none.
        let ctx = ffi::or_detached(null_mut());
        state::RECHECK_DUE.store(false, Ordering::Relaxed);
        state::with(|s| hook::enforce_on_open_connections(ctx, s));
    });
}

/// A string no context owns (Redis frees a config error itself).
fn new_string(text: &str) -> *mut RString {
    match unsafe { raw::RedisModule_CreateString } {
        // SAFETY: a NULL context is allowed; Redis copies the bytes.
        Some(create) => unsafe { create(null_mut(), text.as_ptr().cast::<c_char>(), text.len()) },
        None => null_mut(),
    }
}

fn free_string(s: *mut RString) {
    if let (false, Some(free)) = (s.is_null(), unsafe { raw::RedisModule_FreeString }) {
        // SAFETY: `s` came from `new_string` and nobody else frees it.
        unsafe { free(null_mut(), s) };
    }
}

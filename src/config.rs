//! The `whitelist.*` module configs: registered in `init` (after the version
//! check; the calls do not exist before Redis 7.0), read from redis.conf and
//! the command line by `LoadConfigs`, changed by `CONFIG SET`.
//!
//! Setters store the value and, when `mode` or an `allow-*` changes, have the
//! open connections re-checked at the end of the event-loop turn: a
//! multi-parameter `CONFIG SET` may still roll the value back.

use std::ffi::{c_char, c_void};
use std::os::raw::{c_int, c_longlong};

use redis_module::raw;

use std::path::{Path, PathBuf};

use whitelist_core::settings::{problem, scan_command_line, scan_config, Given};

use crate::hook;
use crate::server::{self, Ctx, Level};
use crate::state::{self, Mode};

const OK: c_int = raw::REDISMODULE_OK as c_int;
const ERR: c_int = raw::REDISMODULE_ERR as c_int;

/// Which config a shared getter or setter is called for.
#[derive(Clone, Copy)]
enum Key {
    AllowLoopback = 1,
    AllowUnixsocket,
    MaxGroups,
    MaxEntriesPerGroup,
}

impl Key {
    fn of(privdata: *mut c_void) -> Option<Key> {
        match privdata as usize {
            1 => Some(Key::AllowLoopback),
            2 => Some(Key::AllowUnixsocket),
            3 => Some(Key::MaxGroups),
            4 => Some(Key::MaxEntriesPerGroup),
            _ => None,
        }
    }

    fn tag(self) -> *mut c_void {
        self as usize as *mut c_void
    }
}

/// Registers every config and applies the values given at start-up.
pub fn register(ctx: Ctx) -> Result<(), String> {
    let (Some(enum_config), Some(bool_config), Some(numeric_config), Some(load)) = (unsafe {
        (
            raw::RedisModule_RegisterEnumConfig,
            raw::RedisModule_RegisterBoolConfig,
            raw::RedisModule_RegisterNumericConfig,
            raw::RedisModule_LoadConfigs,
        )
    }) else {
        return Err(String::from("this server has no module config API"));
    };
    let flags = raw::REDISMODULE_CONFIG_DEFAULT;
    let names: [*const c_char; 3] = [c"enforce".as_ptr(), c"monitor".as_ptr(), c"off".as_ptr()];
    let codes: [c_int; 3] = [Mode::Enforce.code(), Mode::Monitor.code(), Mode::Off.code()];
    // SAFETY: `ctx` is the OnLoad context; Redis copies names and values.
    let statuses = unsafe {
        [
            enum_config(
                ctx,
                c"mode".as_ptr(),
                0,
                flags,
                names.as_ptr().cast_mut(),
                codes.as_ptr(),
                3,
                Some(get_mode),
                Some(set_mode),
                None,
                std::ptr::null_mut(),
            ),
            bool_config(
                ctx,
                c"allow-loopback".as_ptr(),
                1,
                flags,
                Some(get_bool),
                Some(set_bool),
                None,
                Key::AllowLoopback.tag(),
            ),
            bool_config(
                ctx,
                c"allow-unixsocket".as_ptr(),
                1,
                flags,
                Some(get_bool),
                Some(set_bool),
                None,
                Key::AllowUnixsocket.tag(),
            ),
            numeric_config(
                ctx,
                c"max-groups".as_ptr(),
                100,
                flags,
                1,
                10_000,
                Some(get_numeric),
                Some(set_numeric),
                None,
                Key::MaxGroups.tag(),
            ),
            numeric_config(
                ctx,
                c"max-entries-per-group".as_ptr(),
                1000,
                flags,
                1,
                1_000_000,
                Some(get_numeric),
                Some(set_numeric),
                None,
                Key::MaxEntriesPerGroup.tag(),
            ),
        ]
    };
    if statuses.iter().any(|&s| s != OK) {
        return Err(String::from("registering the whitelist.* configs failed"));
    }
    report_invalid_startup_values(ctx);
    // SAFETY: as above.
    if unsafe { load(ctx) } != OK {
        return Err(String::from(
            "a whitelist.* value given at start-up is invalid (see the line above), so the module does not load; \
             accepted: mode enforce|monitor|off, allow-loopback and allow-unixsocket yes|no, \
             max-groups 1-10000, max-entries-per-group 1-1000000",
        ));
    }
    Ok(())
}

/// Redis refuses an invalid start-up value naming the parameter but not the
/// value; name both first, with the file they came from. (Values from the
/// command line cannot be read back: Redis overwrites its argv with the
/// process title before modules load. Redis's line covers those.)
fn report_invalid_startup_values(ctx: Ctx) {
    let mut given: Vec<(Given, String)> = Vec::new();
    if let Some(path) = server::info_text(ctx, c"server", c"config_file").filter(|p| !p.is_empty()) {
        read_config(Path::new(&path), &mut given, 0);
    }
    let args: Vec<String> = std::fs::read("/proc/self/cmdline")
        .map(|raw| raw.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
        .unwrap_or_default();
    // Present only when Redis runs with `set-proc-title no`.
    given.extend(scan_command_line(&args).into_iter().map(|g| (g, String::from("on the command line"))));
    // The last value given for a name is the one Redis applies.
    for (i, (g, source)) in given.iter().enumerate() {
        if given[i + 1..].iter().any(|(later, _)| later.name == g.name) {
            continue;
        }
        if let Some(problem) = problem(g) {
            server::log(ctx, Level::Warning, &format!("{problem} ({source})"));
        }
    }
}

fn read_config(path: &Path, given: &mut Vec<(Given, String)>, depth: u32) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let (found, includes) = scan_config(&text);
    let source = format!("in {}", path.display());
    given.extend(found.into_iter().map(|g| (g, source.clone())));
    for include in includes {
        let mut target = PathBuf::from(&include);
        if target.is_relative() && !target.exists() {
            target = path.parent().map_or(target.clone(), |dir| dir.join(&include));
        }
        if depth < 8 {
            read_config(&target, given, depth + 1);
        }
    }
}

/// # Safety
/// Called by Redis for `CONFIG GET whitelist.mode`.
unsafe extern "C" fn get_mode(_name: *const c_char, _privdata: *mut c_void) -> c_int {
    server::guard(0, || state::with_or(Mode::Enforce, |s| s.config.mode).code())
}

/// # Safety
/// Called by Redis for `CONFIG SET whitelist.mode`.
unsafe extern "C" fn set_mode(
    _name: *const c_char,
    val: c_int,
    _privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    server::guard(ERR, || match Mode::from_code(val) {
        Some(mode) => state::with(|s| {
            if s.config.mode != mode {
                s.config.mode = mode;
                hook::recheck_soon(s);
            }
        })
        .map_or(ERR, |()| OK),
        None => ERR,
    })
}

/// # Safety
/// Called by Redis for `CONFIG GET` of a bool config.
unsafe extern "C" fn get_bool(_name: *const c_char, privdata: *mut c_void) -> c_int {
    server::guard(1, || {
        state::with_or(1, |s| match Key::of(privdata) {
            Some(Key::AllowLoopback) => c_int::from(s.config.allow_loopback),
            Some(Key::AllowUnixsocket) => c_int::from(s.config.allow_unixsocket),
            _ => 1,
        })
    })
}

/// # Safety
/// Called by Redis for `CONFIG SET` of a bool config.
unsafe extern "C" fn set_bool(
    _name: *const c_char,
    val: c_int,
    privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    server::guard(ERR, || {
        state::with_or(ERR, |s| match Key::of(privdata) {
            Some(Key::AllowLoopback) => {
                if s.config.allow_loopback != (val != 0) {
                    s.config.allow_loopback = val != 0;
                    hook::recheck_soon(s);
                }
                OK
            }
            Some(Key::AllowUnixsocket) => {
                if s.config.allow_unixsocket != (val != 0) {
                    s.config.allow_unixsocket = val != 0;
                    hook::recheck_soon(s);
                }
                OK
            }
            _ => ERR,
        })
    })
}

/// # Safety
/// Called by Redis for `CONFIG GET` of a numeric config.
unsafe extern "C" fn get_numeric(_name: *const c_char, privdata: *mut c_void) -> c_longlong {
    server::guard(0, || {
        state::with_or(0, |s| match Key::of(privdata) {
            Some(Key::MaxGroups) => s.config.max_groups,
            Some(Key::MaxEntriesPerGroup) => s.config.max_entries_per_group,
            _ => 0,
        })
    })
}

/// # Safety
/// Called by Redis for `CONFIG SET` of a numeric config (already range-checked).
unsafe extern "C" fn set_numeric(
    _name: *const c_char,
    val: c_longlong,
    privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    server::guard(ERR, || {
        state::with_or(ERR, |s| match Key::of(privdata) {
            Some(Key::MaxGroups) => {
                s.config.max_groups = val;
                OK
            }
            Some(Key::MaxEntriesPerGroup) => {
                s.config.max_entries_per_group = val;
                OK
            }
            _ => ERR,
        })
    })
}

//! RDB aux data: the whole whitelist, written before the keyspace through the
//! core's versioned encoding and read back all-or-nothing.

use std::os::raw::{c_int, c_void};

use redis_module::native_types::RedisType;
use redis_module::raw;
use whitelist_core::encoding::{decode_with_ledger, encode_with_ledger, ENCODING_VERSION};

use crate::ffi;
use crate::hook::Fx;
use crate::state;

/// The data type that carries the aux data. It never holds keys.
pub static WHITELIST_TYPE: RedisType = RedisType::new(
    "whitelist",
    ENCODING_VERSION as i32,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: None,
        mem_usage: None,
        digest: None,
        free: Some(free),
        aux_load: Some(aux_load),
        aux_save: Some(aux_save),
        aux_save_triggers: raw::REDISMODULE_AUX_BEFORE_RDB as c_int,
        free_effort: None,
        unlink: None,
        copy: None,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        // Redis 7.2+ calls this instead of `aux_save`; 7.0 ignores it.
        aux_save2: Some(aux_save2),
    },
);

const OK: c_int = raw::REDISMODULE_OK as c_int;
const ERR: c_int = raw::REDISMODULE_ERR as c_int;

fn log_io(io: *mut raw::RedisModuleIO, message: &str) {
    if let Some(log) = unsafe { raw::RedisModule_LogIOError } {
        let text = std::ffi::CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: `io` is the context Redis passed; the message is a `%s` argument.
        unsafe { log(io, c"warning".as_ptr(), c"%s".as_ptr(), text.as_ptr()) };
    }
}

/// # Safety
/// Called by Redis while saving an RDB (possibly in a forked child).
unsafe extern "C" fn aux_save(io: *mut raw::RedisModuleIO, when: c_int) {
    // Redis 7.0 keeps an empty record when nothing is written, and reading it
    // back fails: always write the complete whitelist.
    ffi::guard((), || save(io, when, false));
}

/// # Safety
/// Called by Redis 7.2+ while saving an RDB (possibly in a forked child).
unsafe extern "C" fn aux_save2(io: *mut raw::RedisModuleIO, when: c_int) {
    // Writing nothing drops the record, so an RDB of an instance that never
    // had a whitelist loads without the module. Once the version moved, it
    // must survive even if the whitelist is empty now.
    ffi::guard((), || save(io, when, true));
}

fn save(io: *mut raw::RedisModuleIO, when: c_int, may_skip: bool) {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return;
    }
    let bytes = state::with(|s| {
        let w = s.whitelist();
        (!(may_skip && w.version() == 0 && w.groups().is_empty()))
            .then(|| encode_with_ledger(w, crate::cluster::ledger_to_save().as_ref()))
    });
    let bytes = match bytes {
        Some(Some(b)) => b,
        Some(None) => return,
        None => {
            // Unreachable (the module never saves from inside itself); if it
            // were not, a record that cannot load beats a silently open one.
            log_io(io, "the whitelist could not be read for saving; this RDB will not load");
            b"unavailable".to_vec()
        }
    };
    if let Some(save) = unsafe { raw::RedisModule_SaveStringBuffer } {
        // SAFETY: the buffer outlives the call; Redis copies it.
        unsafe { save(io, bytes.as_ptr().cast(), bytes.len()) };
    }
}

/// # Safety
/// Called by Redis while loading an RDB, an AOF preamble or a full sync.
unsafe extern "C" fn aux_load(io: *mut raw::RedisModuleIO, encver: c_int, when: c_int) -> c_int {
    let status = ffi::guard(ERR, || load(io, encver, when));
    if status == ERR {
        refused();
    }
    status
}

/// The load refuses the data: nothing of this load is taken, whichever
/// event ends it (Redis's check of the file before it stops ends it well).
fn refused() {
    ffi::guard((), || {
        state::with(|g| g.record_refused());
    });
}

fn load(io: *mut raw::RedisModuleIO, encver: c_int, when: c_int) -> c_int {
    if encver > c_int::from(ENCODING_VERSION) {
        log_io(
            io,
            &format!(
                "refusing the whitelist in this data: encoding version {encver} is newer than this module reads ({ENCODING_VERSION}); upgrade the module"
            ),
        );
        return ERR;
    }
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        log_io(io, "refusing the whitelist in this data: it is not where this module writes it");
        return ERR;
    }
    let (Some(load), Some(is_error), Some(free)) =
        (unsafe { (raw::RedisModule_LoadStringBuffer, raw::RedisModule_IsIOError, raw::RedisModule_Free) })
    else {
        return ERR;
    };
    let mut len = 0usize;
    // SAFETY: `io` is the context Redis passed; with HANDLE_IO_ERRORS a short
    // read returns NULL and flags the error instead of aborting.
    let ptr = unsafe { load(io, &mut len) };
    if ptr.is_null() || unsafe { is_error(io) } != 0 {
        if !ptr.is_null() {
            unsafe { free(ptr.cast::<c_void>()) };
        }
        log_io(io, "refusing the whitelist in this data: it is truncated");
        return ERR;
    }
    // SAFETY: Redis returned `len` readable bytes at `ptr`.
    let decoded = decode_with_ledger(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) });
    unsafe { free(ptr.cast::<c_void>()) };
    match decoded {
        Ok((mut w, ledger)) => {
            // What expired before the data was loaded admits nobody, from
            // the moment it is read.
            w.advance(crate::maintenance::now_s());
            crate::cluster::loaded(ledger, &w);
            let stored = state::with(|g| g.record_loaded(w, &mut Fx::new(std::ptr::null_mut())));
            if stored.is_some() {
                OK
            } else {
                log_io(io, "refusing the whitelist in this data: the module is busy");
                ERR
            }
        }
        Err(e) => {
            log_io(io, &format!("refusing the whitelist in this data: {e}"));
            ERR
        }
    }
}

/// # Safety
/// Never called: the type holds no keys.
unsafe extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, _encver: c_int) -> *mut c_void {
    log_io(io, "a key of type 'whitelist' cannot exist; refusing it");
    refused();
    std::ptr::null_mut()
}

/// # Safety
/// Never called: the type holds no keys.
unsafe extern "C" fn rdb_save(_io: *mut raw::RedisModuleIO, _value: *mut c_void) {}

/// # Safety
/// Never called: the type holds no keys.
unsafe extern "C" fn free(_value: *mut c_void) {}

//! The `whitelist` INFO section.

use std::ffi::CString;
use std::os::raw::c_int;

use redis_module::raw;

use crate::ffi;
use whitelist_core::gate::Shown;

use crate::state::{self, State};

struct Section(*mut raw::RedisModuleInfoCtx);

impl Section {
    fn text(&self, name: &str, value: &str) {
        if let (Some(add), Ok(n), Ok(v)) =
            (unsafe { raw::RedisModule_InfoAddFieldCString }, CString::new(name), CString::new(value))
        {
            // SAFETY: the info context Redis passed; both strings outlive the call.
            unsafe { add(self.0, n.as_ptr(), v.as_ptr()) };
        }
    }

    fn unsigned(&self, name: &str, value: u64) {
        if let (Some(add), Ok(n)) = (unsafe { raw::RedisModule_InfoAddFieldULongLong }, CString::new(name)) {
            // SAFETY: as above.
            unsafe { add(self.0, n.as_ptr(), value) };
        }
    }

    fn signed(&self, name: &str, value: i64) {
        if let (Some(add), Ok(n)) = (unsafe { raw::RedisModule_InfoAddFieldLongLong }, CString::new(name)) {
            // SAFETY: as above.
            unsafe { add(self.0, n.as_ptr(), value) };
        }
    }

    fn dict(&self, name: &str, fill: impl FnOnce(&Section)) {
        let (Some(begin), Some(end), Ok(n)) = (
            unsafe { raw::RedisModule_InfoBeginDictField },
            unsafe { raw::RedisModule_InfoEndDictField },
            CString::new(name),
        ) else {
            return;
        };
        // SAFETY: as above; every begin is matched by an end.
        unsafe { begin(self.0, n.as_ptr()) };
        fill(self);
        unsafe { end(self.0) };
    }
}

/// # Safety
/// Called by Redis for `INFO whitelist`, `INFO modules` and `INFO everything`
/// (and into a crash report, where a held lock makes it write nothing).
pub unsafe extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, for_crash_report: c_int) {
    ffi::guard((), || {
        // Read before the state lock is taken: the digest takes it.
        let cluster = crate::bus::summary(std::ptr::null_mut());
        state::with(|s| {
            // The size a completed CONFIG SET gave is final (a crash report
            // changes nothing).
            if for_crash_report == 0 {
                s.sync_denied();
            }
            write(&Section(ctx), s, cluster.as_ref())
        });
    });
}

fn write(section: &Section, s: &State, cluster: Option<&crate::bus::Summary>) {
    let Some(add_section) = (unsafe { raw::RedisModule_InfoAddSection }) else {
        return;
    };
    // SAFETY: a NULL name makes the section the module's own: `whitelist`.
    if unsafe { add_section(section.0, std::ptr::null()) } != raw::REDISMODULE_OK as c_int {
        return;
    }
    let w = s.whitelist();
    let st = s.stats();
    section.text("mode", s.config.mode.name());
    section.text("when_empty", s.config.when_empty.name());
    section.unsigned("enabled", u64::from(s.enabled()));
    section.unsigned("version", w.version());
    section.unsigned("groups", w.groups().len() as u64);
    section.unsigned("entries", w.entry_count() as u64);
    section.unsigned("connections_checked", st.checked);
    section.unsigned("connections_allowed", st.allowed);
    section.unsigned("connections_denied", st.denied);
    section.unsigned("connections_would_deny", st.would_deny);
    section.unsigned("clients_closed_on_change", st.closed_on_change);
    section.text(
        "last_denied_addr",
        &st.last_denied.as_ref().map_or_else(String::new, |(p, _)| Shown::peer(*p).address()),
    );
    section.signed("last_denied_time", st.last_denied.as_ref().map_or(0, |&(_, t)| t));
    section.unsigned("denied_sources", s.denied().len() as u64);
    section.unsigned("denied_while_loading", st.denied_while_loading);
    section.unsigned("diverged", u64::from(s.diverged()));
    section.unsigned("replication_errors", st.replication_errors);
    section.unsigned("auth_denied", st.auth_denied);
    section.unsigned("auth_would_deny", st.auth_would_deny);
    section.unsigned("users_bound", w.bindings().len() as u64);
    section.unsigned("users_enforced", u64::from(s.users_enforced));
    section.unsigned("entries_expiring", s.whitelist().expiring() as u64);
    section.unsigned("entries_expired", crate::maintenance::EXPIRED.load(std::sync::atomic::Ordering::Relaxed));
    if let Some(c) = cluster {
        section.unsigned("cluster_enabled", u64::from(c.enabled));
        section.unsigned("cluster_nodes", c.nodes);
        section.unsigned("cluster_nodes_in_sync", c.in_sync);
        section.unsigned("cluster_conflicts", c.conflicts);
        section.unsigned("cluster_messages_sent", c.sent);
        section.unsigned("cluster_messages_received", c.received);
    }
    for g in w.groups() {
        section.dict(&format!("group_{}", g.name()), |d| {
            d.unsigned("entries", g.entries().len() as u64);
            d.unsigned("hits", g.hits());
            d.text("attribute", g.attribute().as_str());
            d.unsigned("users", g.users().len() as u64);
        });
    }
}

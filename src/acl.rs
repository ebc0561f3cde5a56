//! ACL categories on a server that cannot give module commands any: Redis
//! 7.0 leaves `WHITELIST.*` outside `@admin` and `@dangerous`, so there each
//! command checks its caller itself before doing anything, as if it were in
//! those categories (the rules are judged in the core, `whitelist_core::acl`),
//! and refuses with 7.0's own `NOPERM` reply and an ACL LOG entry.

use redis_module::{raw, Context, RedisError, RedisString, RedisValue};
use whitelist_core::acl::{NoPerm, Subject, UserRules, CATEGORIES};

use crate::ffi::{self, Ctx, Level};

/// Who is behind a command's context.
enum Caller {
    /// An ACL user, by name.
    User(Vec<u8>),
    /// No connected client or no user: a module's own call (Redis's root
    /// user unless that module chose otherwise), nothing to check.
    Root,
}

/// `Err` with the `NOPERM` reply when the caller's user may not run
/// `command` (its registered name) with `args` (the whole argv). Servers with
/// `RedisModule_SetCommandACLCategories` check before the module runs;
/// commands from the primary or the AOF have no user to check.
pub fn check(ctx: &Context, command: &str, args: &[RedisString]) -> Result<(), RedisError> {
    if unsafe { raw::RedisModule_SetCommandACLCategories }.is_some() {
        return Ok(());
    }
    let flags = ffi::context_flags(ctx.ctx);
    if flags & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) != 0 {
        return Ok(());
    }
    let subject = Subject { name: command, categories: CATEGORIES, first_arg: args.get(1).map(RedisString::as_slice) };
    let user = match caller(ctx.ctx) {
        Some(Caller::Root) => return Ok(()),
        Some(Caller::User(name)) => name,
        None => {
            ffi::log(ctx.ctx, Level::Warning, &format!("cannot tell who runs {command}: refused"));
            return Err(refuse(ctx, None, command));
        }
    };
    match rules_of(ctx, &user) {
        Ok(rules) if rules.permits(&subject) => Ok(()),
        Ok(_) => Err(refuse(ctx, Some(&user), command)),
        Err(why) => {
            let shown = whitelist_core::shown::Shown::new(&user);
            ffi::log(
                ctx.ctx,
                Level::Warning,
                &format!("cannot read the ACL rules of user {shown} ({why}): {command} refused"),
            );
            Err(refuse(ctx, Some(&user), command))
        }
    }
}

/// The calling client's user; `None` if it cannot be read.
fn caller(ctx: Ctx) -> Option<Caller> {
    let (get, free) = unsafe { (raw::RedisModule_GetClientUserNameById?, raw::RedisModule_FreeString?) };
    // Unlike GetCurrentUserName, this does not follow a missing user: it
    // returns NULL for a client that is not connected (a module's call) or
    // has no user (root).
    let name = unsafe { get(ctx, ffi::client_id(ctx)) };
    if name.is_null() {
        return Some(Caller::Root);
    }
    let bytes = RedisString::string_as_slice(name).to_vec();
    unsafe { free(ctx, name) };
    Some(Caller::User(bytes))
}

/// The user's command rules from `ACL GETUSER`: its own and each selector's.
fn rules_of(ctx: &Context, user: &[u8]) -> Result<UserRules, String> {
    let reply = ctx.call("ACL", &[b"GETUSER".as_slice(), user][..]).map_err(|e| format!("ACL GETUSER: {e}"))?;
    let RedisValue::Array(fields) = reply else {
        return Err(String::from("no such user"));
    };
    let root = field(&fields, "commands").and_then(text).ok_or("no commands field")?;
    // A selector that cannot be read could only have granted more: leaving
    // it out keeps the refusal side.
    let selectors: Vec<Vec<u8>> = match field(&fields, "selectors") {
        Some(RedisValue::Array(selectors)) => selectors
            .iter()
            .filter_map(|s| match s {
                RedisValue::Array(fields) => field(fields, "commands").and_then(text),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let selectors: Vec<&[u8]> = selectors.iter().map(Vec::as_slice).collect();
    UserRules::parse(&root, &selectors).map_err(|e| e.to_string())
}

/// The value after `name` in a flat RESP2 map.
fn field<'a>(fields: &'a [RedisValue], name: &str) -> Option<&'a RedisValue> {
    fields
        .chunks_exact(2)
        .find(|kv| kv.first().and_then(text).as_deref() == Some(name.as_bytes()))
        .and_then(|kv| kv.get(1))
}

fn text(value: &RedisValue) -> Option<Vec<u8>> {
    match value {
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s.as_bytes().to_vec()),
        RedisValue::StringBuffer(b) => Some(b.clone()),
        RedisValue::BulkRedisString(s) => Some(s.as_slice().to_vec()),
        _ => None,
    }
}

/// Writes the ACL LOG entry (reason `command`, context `module`, the command
/// as object) and builds 7.0's `NOPERM` reply.
fn refuse(ctx: &Context, user: Option<&[u8]>, command: &str) -> RedisError {
    if let Some(user) = user {
        log_entry(ctx.ctx, user, command);
    }
    RedisError::String(NoPerm { command }.to_string())
}

fn log_entry(ctx: Ctx, user: &[u8], command: &str) {
    let (Some(from_name), Some(add), Some(free_user), Some(_)) = (unsafe {
        (
            raw::RedisModule_GetModuleUserFromUserName,
            raw::RedisModule_ACLAddLogEntry,
            raw::RedisModule_FreeModuleUser,
            raw::RedisModule_CreateString,
        )
    }) else {
        return;
    };
    let name = RedisString::create_from_slice(ctx, user);
    let acl_user = unsafe { from_name(name.inner) };
    if acl_user.is_null() {
        return;
    }
    let object = RedisString::create_from_slice(ctx, command.as_bytes());
    unsafe {
        add(ctx, acl_user, object.inner, raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_CMD);
        free_user(acl_user);
    }
}

//! The docs of every `WHITELIST.*` command (summary, since, arity,
//! arguments), given to the server with `RedisModule_SetCommandInfo` so
//! `COMMAND DOCS` answers, `COMMAND INFO` shows the real arity and redis-cli
//! hints the arguments. The server enforces that arity itself, before the
//! command runs; the parser in the core still checks every count, so on a
//! server that refused the docs every command answers the same, only
//! `COMMAND DOCS` and `COMMAND INFO` show less.

use std::ffi::CStr;
use std::mem::size_of;
use std::os::raw::c_int;
use std::ptr;

use redis_module::raw;

use crate::ffi::{self, Ctx, Level};

/// The module version in which every command appeared.
const SINCE: &CStr = c"0.1.0";

/// The layout of the structures handed over. `redismodule.h` defines it as a
/// C `static`, which no module can link to, so it is rebuilt here; the server
/// walks each array with these sizes, which is why a server whose structures
/// are shorter (7.0 has no `display_text`) reads the arrays correctly.
static INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
};

#[derive(Clone, Copy)]
enum Kind {
    String,
    Integer,
    /// A keyword alone; its text is the argument's token.
    PureToken,
    /// Exactly one of these.
    OneOf(&'static [Arg]),
}

/// One argument as the parser in the core accepts it.
#[derive(Clone, Copy)]
struct Arg {
    name: &'static CStr,
    kind: Kind,
    /// The keyword written before the value (for a pure token, the keyword).
    token: Option<&'static CStr>,
    /// `REDISMODULE_CMD_ARG_*`.
    flags: u32,
}

impl Arg {
    const fn string(name: &'static CStr) -> Arg {
        Arg { name, kind: Kind::String, token: None, flags: raw::REDISMODULE_CMD_ARG_NONE }
    }

    const fn token(name: &'static CStr, token: &'static CStr) -> Arg {
        Arg { name, kind: Kind::PureToken, token: Some(token), flags: raw::REDISMODULE_CMD_ARG_NONE }
    }

    const fn optional(self) -> Arg {
        Arg { flags: self.flags | raw::REDISMODULE_CMD_ARG_OPTIONAL, ..self }
    }

    const fn multiple(self) -> Arg {
        Arg { flags: self.flags | raw::REDISMODULE_CMD_ARG_MULTIPLE, ..self }
    }
}

const GROUP: Arg = Arg::string(c"group");
/// Entries come one per argument or comma-separated in one: at least one
/// argument either way.
const ENTRIES: Arg = Arg::string(c"entry").multiple();
const FORCE: Arg = Arg::token(c"force", c"FORCE").optional();
const ATTRIBUTE: Arg = Arg {
    name: c"attribute",
    kind: Kind::OneOf(&[Arg::token(c"show", c"show"), Arg::token(c"hidden", c"hidden")]),
    token: Some(c"ATTRIBUTE"),
    flags: raw::REDISMODULE_CMD_ARG_OPTIONAL,
};
const IFVERSION: Arg =
    Arg { name: c"version", kind: Kind::Integer, token: Some(c"IFVERSION"), flags: raw::REDISMODULE_CMD_ARG_OPTIONAL };

const USER: Arg =
    Arg { name: c"user", kind: Kind::String, token: Some(c"USER"), flags: raw::REDISMODULE_CMD_ARG_OPTIONAL };
const COMMENT: Arg =
    Arg { name: c"text", kind: Kind::String, token: Some(c"COMMENT"), flags: raw::REDISMODULE_CMD_ARG_OPTIONAL };
const TTL: Arg =
    Arg { name: c"seconds", kind: Kind::Integer, token: Some(c"TTL"), flags: raw::REDISMODULE_CMD_ARG_NONE };
const EXPIREAT: Arg =
    Arg { name: c"unix-seconds", kind: Kind::Integer, token: Some(c"EXPIREAT"), flags: raw::REDISMODULE_CMD_ARG_NONE };
/// `SET`'s expiry: `TTL` or `EXPIREAT`.
const SET_EXPIRY: Arg =
    Arg { name: c"expiry", kind: Kind::OneOf(&[TTL, EXPIREAT]), token: None, flags: raw::REDISMODULE_CMD_ARG_OPTIONAL };
/// `ADD`'s expiry: `TTL`, `EXPIREAT` or `PERSIST`.
const ADD_EXPIRY: Arg = Arg {
    name: c"expiry",
    kind: Kind::OneOf(&[TTL, EXPIREAT, Arg::token(c"persist", c"PERSIST")]),
    token: None,
    flags: raw::REDISMODULE_CMD_ARG_OPTIONAL,
};

/// What the server is told about one command.
struct Doc {
    name: &'static CStr,
    summary: &'static CStr,
    /// Redis's convention: N exactly N words with the name, -N at least N.
    arity: c_int,
    args: &'static [Arg],
}

const DOCS: &[Doc] = &[
    Doc {
        name: c"whitelist.set",
        summary: c"Creates a group or replaces its entries. Replies the number of entries it holds.",
        arity: -3,
        args: &[GROUP, ENTRIES, ATTRIBUTE, COMMENT, SET_EXPIRY, FORCE],
    },
    Doc {
        name: c"whitelist.add",
        summary: c"Adds entries to a group, creating it if needed. Replies the number added.",
        arity: -3,
        args: &[GROUP, ENTRIES, COMMENT, ADD_EXPIRY, FORCE],
    },
    Doc {
        name: c"whitelist.remove",
        summary: c"Removes entries from a group; an emptied group stays. Replies the number removed.",
        arity: -3,
        args: &[GROUP, ENTRIES, FORCE],
    },
    Doc {
        name: c"whitelist.del",
        summary: c"Deletes groups. Replies the number deleted.",
        arity: -2,
        args: &[GROUP.multiple(), FORCE],
    },
    Doc {
        name: c"whitelist.loadclients",
        summary: c"Adds the address of every connected TCP client to a group. Replies the addresses added.",
        arity: -2,
        args: &[GROUP, FORCE],
    },
    Doc {
        name: c"whitelist.import",
        summary: c"Replaces the whole whitelist with a JSON document. Replies the new version.",
        arity: -2,
        args: &[Arg::string(c"json"), IFVERSION, FORCE],
    },
    Doc {
        name: c"whitelist.get",
        summary: c"Returns one group's entries, or every shown group with its entries.",
        arity: -1,
        args: &[GROUP.optional(), Arg::token(c"withstats", c"WITHSTATS").optional()],
    },
    Doc {
        name: c"whitelist.list",
        summary: c"Returns the names of the shown groups, or of all groups with ALL.",
        arity: -1,
        args: &[Arg::token(c"all", c"ALL").optional()],
    },
    Doc {
        name: c"whitelist.check",
        summary: c"Tells whether an address would be admitted, by which group and entry, and why.",
        arity: -2,
        args: &[Arg::string(c"address"), USER],
    },
    Doc {
        name: c"whitelist.bind",
        summary: c"Lets ACL users log in only from the addresses of a group. Replies the number newly bound.",
        arity: -3,
        args: &[GROUP, Arg::string(c"user").multiple(), FORCE],
    },
    Doc {
        name: c"whitelist.unbind",
        summary: c"Removes ACL users' bindings to a group. Replies the number unbound.",
        arity: -3,
        args: &[GROUP, Arg::string(c"user").multiple(), FORCE],
    },
    Doc {
        name: c"whitelist.bindings",
        summary: c"Returns every bound ACL user with the groups it may log in from.",
        arity: 1,
        args: &[],
    },
    Doc {
        name: c"whitelist.export",
        summary: c"Returns the whole whitelist as one JSON document with its version.",
        arity: 1,
        args: &[],
    },
    Doc {
        name: c"whitelist.stale",
        summary: c"Lists the entries of every group not hit in the last given seconds.",
        arity: 2,
        args: &[Arg::string(c"seconds")],
    },
    Doc {
        name: c"whitelist.cluster",
        summary: c"Lists every node of the cluster with its role, whitelist version and whether it is in sync.",
        arity: 1,
        args: &[],
    },
    Doc {
        name: c"whitelist.merge",
        summary: c"Internal: installs a cluster state as the primary or the AOF sends it; refused from other clients.",
        arity: 2,
        args: &[Arg::string(c"state")],
    },
    Doc { name: c"whitelist.help", summary: c"Shows the syntax of every WHITELIST command.", arity: 1, args: &[] },
    Doc {
        name: c"whitelist.denied",
        summary: c"Returns the recently denied sources, most recent first, or empties their table with RESET.",
        arity: -1,
        args: &[Arg {
            name: c"action",
            kind: Kind::OneOf(&[
                Arg {
                    name: c"count",
                    kind: Kind::Integer,
                    token: Some(c"COUNT"),
                    flags: raw::REDISMODULE_CMD_ARG_NONE,
                },
                Arg::token(c"reset", c"RESET"),
            ]),
            token: None,
            flags: raw::REDISMODULE_CMD_ARG_OPTIONAL,
        }],
    },
    Doc {
        name: c"whitelist.debug-panic",
        summary: c"Panics inside a command, to show that the panic becomes an error reply (test builds only).",
        arity: 1,
        args: &[],
    },
    Doc {
        name: c"whitelist.debug-fault",
        summary: c"Turns on a fault (hook-panic, hold-open, lose-next-change) or turns them off (test builds only).",
        arity: 2,
        args: &[Arg::string(c"fault")],
    },
];

/// Gives the server the docs of `name`, a command this module has just
/// created. Failing to is logged and the module loads on: a command without
/// docs still works and its parser still checks the arguments.
pub fn apply(ctx: Ctx, name: &CStr) {
    if let Err(e) = set_info(ctx, name) {
        ffi::log(
            ctx,
            Level::Warning,
            &format!("COMMAND DOCS and COMMAND INFO will lack the docs of {}: {e}", name.to_string_lossy()),
        );
    }
}

fn set_info(ctx: Ctx, name: &CStr) -> Result<(), &'static str> {
    let (Some(get), Some(set)) = (unsafe { (raw::RedisModule_GetCommand, raw::RedisModule_SetCommandInfo) }) else {
        return Ok(());
    };
    let doc = DOCS.iter().find(|d| d.name == name).ok_or("the module has no docs for it")?;
    let command = unsafe { get(ctx, name.as_ptr()) };
    if command.is_null() {
        return Err("the server does not know the command");
    }
    let mut args = RawArgs::of(doc.args);
    let info = raw::RedisModuleCommandInfo {
        version: &INFO_VERSION,
        summary: doc.summary.as_ptr(),
        complexity: ptr::null(),
        since: SINCE.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: doc.arity,
        key_specs: ptr::null_mut(),
        args: if doc.args.is_empty() { ptr::null_mut() } else { args.list.as_mut_ptr() },
    };
    // The server copies everything it keeps; `args` lives until after the call.
    if unsafe { set(command, &info) } != raw::REDISMODULE_OK as c_int {
        return Err("the server refused them (see the line above, if any)");
    }
    Ok(())
}

/// A NULL-terminated array of raw arguments. The pointers of `list` point
/// into static strings and into the heap buffers of `_nested`, which moving a
/// `RawArgs` does not move.
struct RawArgs {
    list: Vec<raw::RedisModuleCommandArg>,
    _nested: Vec<RawArgs>,
}

impl RawArgs {
    fn of(args: &[Arg]) -> RawArgs {
        let mut nested = Vec::new();
        let mut list = Vec::with_capacity(args.len() + 1);
        for arg in args {
            let (type_, subargs) = match arg.kind {
                Kind::String => (raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING, ptr::null_mut()),
                Kind::Integer => (raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER, ptr::null_mut()),
                Kind::PureToken => (raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN, ptr::null_mut()),
                Kind::OneOf(choices) => {
                    let mut sub = RawArgs::of(choices);
                    let first = sub.list.as_mut_ptr();
                    nested.push(sub);
                    (raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF, first)
                }
            };
            list.push(raw::RedisModuleCommandArg {
                name: arg.name.as_ptr(),
                type_,
                key_spec_index: -1,
                token: arg.token.map_or(ptr::null(), CStr::as_ptr),
                summary: ptr::null(),
                since: ptr::null(),
                flags: arg.flags as c_int,
                deprecated_since: ptr::null(),
                subargs,
                display_text: ptr::null(),
            });
        }
        list.push(raw::RedisModuleCommandArg {
            name: ptr::null(),
            type_: 0,
            key_spec_index: 0,
            token: ptr::null(),
            summary: ptr::null(),
            since: ptr::null(),
            flags: 0,
            deprecated_since: ptr::null(),
            subargs: ptr::null_mut(),
            display_text: ptr::null(),
        });
        RawArgs { list, _nested: nested }
    }
}

//! The `WHITELIST.*` command handlers: arguments in, core call, reply out.

use std::collections::{BTreeMap, HashSet};
use std::os::raw::c_int;

use redis_module::redisvalue::RedisValueKey;
use redis_module::{raw, Context, RedisError, RedisResult, RedisString, RedisValue};
use whitelist_core::clients::{parse_client_list, ListedClient};
use whitelist_core::denied::DeniedSources;
use whitelist_core::gate::{self, Caller, Lost, Shown};
use whitelist_core::{
    document, parse, Change, Command, Entry, Error, GroupName, Outcome, Peer, Policy, Verb, Whitelist,
};

use crate::acl;
use crate::ffi::{self, Level};
use crate::hook::Fx;
use crate::state::{self, Conn};

pub(crate) const INTERNAL_ERROR: &str = "ERR internal error: nothing was changed (see the server log)";
const BUSY: &str = "ERR the whitelist is busy (re-entrant call): nothing was changed";

/// Runs one command with every panic turned into an error reply, once the
/// caller's ACL user may run it (checked here only where Redis cannot, 7.0).
fn run(ctx: &Context, verb: Verb, args: &[RedisString]) -> RedisResult {
    let result = ffi::guard(Err(RedisError::Str(INTERNAL_ERROR)), || {
        acl::check(ctx, &verb.name().to_ascii_lowercase(), args)?;
        execute(ctx, verb, args)
    });
    if let Err(error) = &result {
        if verb.changes() && Origin::is_trusted(ctx) {
            ffi::guard((), || lost_change(ctx, verb.name(), args, error));
        }
    }
    result
}

/// A change from the primary or the AOF that could not be applied is never
/// dropped in silence: during the start-up load the server stops (as for
/// damaged whitelist data); anywhere else this server diverges and admits
/// only exempt clients until it has its primary's state again.
pub(crate) fn lost_change(ctx: &Context, name: &str, args: &[RedisString], error: &RedisError) {
    let loading = ffi::context_flags(ctx.ctx) & raw::REDISMODULE_CTX_FLAGS_LOADING != 0;
    let source = if loading { "the AOF" } else { "the primary" };
    let mut command = String::from(name);
    for a in args.iter().skip(1).take(8) {
        command.push_str(&format!(" '{}'", whitelist_core::shown::Shown::new(a.as_slice())));
    }
    if args.len() > 9 {
        command.push_str(&format!(" (and {} more arguments)", args.len() - 9));
    }
    // The state cannot be unavailable here (commands never nest); if it
    // were, the stricter answer for the moment wins.
    let lost = state::with(|g| g.change_lost()).unwrap_or(if loading { Lost::StopStartup } else { Lost::Diverge });
    match lost {
        Lost::StopStartup => {
            ffi::log(
                ctx.ctx,
                Level::Warning,
                &format!(
                    "cannot apply {command} from {source}: {error}. The server stops rather than start without \
                     this change; correct or remove the command in the AOF and start again"
                ),
            );
            std::process::exit(1);
        }
        Lost::Diverge => {
            ffi::log(ctx.ctx, Level::Warning, &format!("cannot apply {command} from {source}: {error}"));
            state::with(|g| g.diverge(&mut Fx::new(ctx.ctx)));
        }
    }
}

fn to_reply(e: Error) -> RedisError {
    match e {
        Error::WrongArity => RedisError::WrongArity,
        other => RedisError::String(other.to_string()),
    }
}

fn execute(ctx: &Context, verb: Verb, args: &[RedisString]) -> RedisResult {
    #[cfg(feature = "debug-panic")]
    if verb.changes()
        && Origin::is_trusted(ctx)
        && state::LOSE_NEXT_CHANGE.swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        return Err(RedisError::Str("ERR test fault: this change was not applied (WHITELIST.DEBUG-FAULT)"));
    }
    let raw_args: Vec<&[u8]> = args.iter().skip(1).map(RedisString::as_slice).collect();
    // Parsing counts an ordinary client's items against the limits before it
    // builds any; the primary's and the AOF's commands are exempt.
    let limits = if Origin::is_trusted(ctx) {
        None
    } else {
        Some(state::with(|s| s.config.limits()).ok_or(RedisError::Str(BUSY))?)
    };
    match parse(verb, &raw_args, limits.as_ref()).map_err(to_reply)? {
        Command::Get { group } => read(|w| get(w, group.as_ref())),
        Command::List { all } => read(|w| list(w, all)),
        Command::Check { addr, user } => {
            let policy = state::with(|s| s.config.policy()).ok_or(RedisError::Str(BUSY))?;
            read(|w| check(w, addr, policy, user.as_deref()))
        }
        Command::Bindings => read(|w| Ok(bindings(w))),
        Command::Bind { bind, group, users, force } => {
            let enforced = state::with(|s| s.users_enforced).ok_or(RedisError::Str(BUSY))?;
            // What the primary or the AOF already applied is kept (and shown,
            // propagated) even where it cannot be enforced.
            if bind && !enforced && !Origin::is_trusted(ctx) {
                return Err(RedisError::Str("ERR per-user restrictions need Redis 7.2 or newer"));
            }
            let target = format!("{group} (users {})", users.join(","));
            let change = if bind { Change::Bind { group, users } } else { Change::Unbind { group, users } };
            apply(ctx, verb, &target, change, force, None)
        }
        Command::Help => Ok(help()),
        Command::Export => read(|w| Ok(RedisValue::BulkString(document::export(w)))),
        Command::Set { group, entries, attribute, note, force } => {
            let target = group.to_string();
            let (resolved, propagated) = noted(&note, &raw_args, limits.is_none())?;
            let change = Change::Set { group, entries, attribute, note: resolved };
            apply_as(ctx, verb, &target, change, force, None, propagated)
        }
        Command::Add { group, entries, note, force } => {
            let target = group.to_string();
            let (resolved, propagated) = noted(&note, &raw_args, limits.is_none())?;
            let change = Change::Add { group, entries, note: resolved };
            apply_as(ctx, verb, &target, change, force, None, propagated)
        }
        Command::GetStats { group } => {
            let reply = state::with(|s| s.whitelist().group(&group).map(crate::maintenance::stats_rows))
                .ok_or(RedisError::Str(BUSY))?;
            match reply {
                Some(rows) => Ok(crate::maintenance::reply_rows(ctx, rows)),
                None => Ok(RedisValue::Null),
            }
        }
        Command::Stale { seconds } => {
            let now = crate::maintenance::now_s();
            read(|w| Ok(crate::maintenance::stale(w, now, seconds)))
        }
        Command::Remove { group, entries, force } => {
            let target = group.to_string();
            apply(ctx, verb, &target, Change::Remove { group, entries }, force, None)
        }
        Command::Del { groups, force } => {
            let target = groups.iter().map(GroupName::as_str).collect::<Vec<_>>().join(",");
            apply(ctx, verb, &target, Change::Delete { groups }, force, None)
        }
        Command::Import { document, if_version, force } => {
            // The primary propagates the state its IMPORT led to, version
            // included; a replica and an AOF replay install exactly that.
            let (groups, version) = (document.groups, document.version);
            if limits.is_some() {
                crate::maintenance::check_document_expiries(&groups, crate::maintenance::now_s())?;
            }
            let change = if limits.is_none() {
                Change::Install { groups, version }
            } else {
                Change::Replace { groups, version }
            };
            apply(ctx, verb, "(whole whitelist)", change, force, if_version)
        }
        Command::LoadClients { group, force } => load_clients(ctx, group, force),
        Command::Denied { count } => state::with(|s| {
            // A size set by a CONFIG SET that has completed is final.
            s.sync_denied();
            denied(s.denied(), count)
        })
        .ok_or(RedisError::Str(BUSY)),
        Command::DeniedReset => {
            // This server's own figures: not a change, never propagated.
            state::with(|s| s.reset_denied()).ok_or(RedisError::Str(BUSY))?;
            Ok(RedisValue::SimpleStringStatic("OK"))
        }
    }
}

/// `WHITELIST.DENIED`: one map (RESP2: flat array) per source, most recent
/// first; the keys sort in the order the rows show them.
fn denied(table: &DeniedSources, count: Option<usize>) -> RedisValue {
    let key = |k: &str| RedisValueKey::String(k.to_string());
    let rows = table
        .iter()
        .take(count.unwrap_or(usize::MAX))
        .map(|r| {
            let mut row = BTreeMap::new();
            row.insert(key("addr"), bulk(Shown::peer(r.peer).address()));
            row.insert(key("count"), RedisValue::Integer(i64::try_from(r.count).unwrap_or(i64::MAX)));
            row.insert(key("first"), RedisValue::Integer(r.first));
            row.insert(key("last"), RedisValue::Integer(r.last));
            row.insert(key("reason"), bulk(r.reason.as_str()));
            RedisValue::OrderedMap(row)
        })
        .collect();
    RedisValue::Array(rows)
}

/// Reads the whitelist in force.
fn read(f: impl FnOnce(&Whitelist) -> RedisResult) -> RedisResult {
    state::with(|s| f(s.whitelist())).unwrap_or(Err(RedisError::Str(BUSY)))
}

fn bulk(s: impl Into<String>) -> RedisValue {
    RedisValue::BulkString(s.into())
}

fn get(w: &Whitelist, group: Option<&GroupName>) -> RedisResult {
    match group {
        Some(name) => Ok(match w.group(name) {
            Some(g) => RedisValue::Array(g.entries().iter().map(|e| bulk(e.to_string())).collect()),
            None => RedisValue::Null,
        }),
        None => {
            let map: BTreeMap<RedisValueKey, RedisValue> = w
                .groups()
                .iter()
                .filter(|g| g.attribute() == whitelist_core::Attribute::Show)
                .map(|g| {
                    let joined = g.entries().iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",");
                    (RedisValueKey::String(g.name().to_string()), bulk(joined))
                })
                .collect();
            Ok(RedisValue::OrderedMap(map))
        }
    }
}

fn list(w: &Whitelist, all: bool) -> RedisResult {
    Ok(RedisValue::Array(
        w.groups()
            .iter()
            .filter(|g| all || g.attribute() == whitelist_core::Attribute::Show)
            .map(|g| bulk(g.name().to_string()))
            .collect(),
    ))
}

/// `WHITELIST.BINDINGS`: user → its groups, sorted by user.
fn bindings(w: &Whitelist) -> RedisValue {
    let map: BTreeMap<RedisValueKey, RedisValue> = w
        .bindings()
        .into_iter()
        .map(|(user, groups)| {
            let groups = groups.into_iter().map(|g| bulk(g.to_string())).collect();
            (RedisValueKey::String(user.to_string()), RedisValue::Array(groups))
        })
        .collect();
    RedisValue::OrderedMap(map)
}

fn check(w: &Whitelist, addr: whitelist_core::Addr, policy: Policy, user: Option<&str>) -> RedisResult {
    let (verdict, matched) = w.check(addr, policy);
    // Admitted to connect, but not to log in as this user (§11).
    if verdict.allowed && user.is_some_and(|u| !w.user_may_login(u, Peer::Ip(addr), policy)) {
        return Ok(RedisValue::Array(vec![bulk("denied"), RedisValue::Null, RedisValue::Null, bulk("user")]));
    }
    let (group, entry) = match matched {
        Some((g, e)) => (bulk(g.name().to_string()), bulk(e.to_string())),
        None => (RedisValue::Null, RedisValue::Null),
    };
    Ok(RedisValue::Array(vec![
        bulk(if verdict.allowed { "allowed" } else { "denied" }),
        group,
        entry,
        bulk(verdict.reason.as_str()),
    ]))
}

const HELP: &[&str] = &[
    "WHITELIST.SET <group> <entries...> [ATTRIBUTE show|hidden] [COMMENT <text>] [TTL <seconds>|EXPIREAT <unix-seconds>] [FORCE] -- Create a group or replace its entries. Replies the number of entries it holds.",
    "WHITELIST.ADD <group> <entries...> [COMMENT <text>] [TTL <seconds>|EXPIREAT <unix-seconds>|PERSIST] [FORCE] -- Add entries (or update the comment and expiry of held ones), creating the group if needed. Replies the number added.",
    "WHITELIST.REMOVE <group> <entries...> [FORCE] -- Remove entries; an emptied group stays. Replies the number removed.",
    "WHITELIST.DEL <group> [<group> ...] [FORCE] -- Delete groups. Replies the number deleted.",
    "WHITELIST.GET [<group> [WITHSTATS]] -- One group's entries (nil if none), with WITHSTATS each with its comment, expiry, added, hits and last-hit; or every shown group as name -> comma-joined entries.",
    "WHITELIST.STALE <seconds> -- Entries of every group not hit in the last <seconds>: group, entry, last-hit, added.",
    "WHITELIST.LIST [ALL] -- Group names, sorted; ALL includes hidden groups.",
    "WHITELIST.CHECK <address> [USER <name>] -- Dry-run the decision for an address (and a login as that ACL user): allowed|denied, group, entry, reason.",
    "WHITELIST.LOADCLIENTS <group> [FORCE] -- Add the address of every connected TCP client. Replies the addresses added.",
    "WHITELIST.EXPORT -- The whole whitelist as one JSON document with its version.",
    "WHITELIST.IMPORT <json> [IFVERSION <version>] [FORCE] -- Replace the whole whitelist. Replies the new version.",
    "WHITELIST.DENIED [COUNT <n>] -- The recently denied sources, most recent first: addr, count, first, last, reason.",
    "WHITELIST.DENIED RESET -- Empty the table of recently denied sources.",
    "WHITELIST.BIND <group> <user> [<user> ...] [FORCE] -- Let ACL users log in only from the group's addresses (Redis 7.2+). Replies the number newly bound.",
    "WHITELIST.UNBIND <group> <user> [<user> ...] [FORCE] -- Remove users' bindings to a group. Replies the number unbound.",
    "WHITELIST.BINDINGS -- Every bound ACL user -> the groups it may log in from.",
    "WHITELIST.CLUSTER -- Every node of the cluster: id, addr, role, version, fingerprint, in-sync, last-seen.",
    "WHITELIST.HELP -- This help.",
    "Entries are IPv4/IPv6 addresses or CIDR blocks, comma-separated (no spaces) or as separate arguments.",
    "FORCE applies a change that would disconnect your connection or a replica, or turn the whitelist off.",
];

fn help() -> RedisValue {
    RedisValue::Array(HELP.iter().map(|l| bulk(*l)).collect())
}

/// How a change reached the server.
struct Origin {
    /// From the primary or the AOF: never refused, no limits.
    trusted: bool,
    /// From the primary.
    replicated: bool,
    /// Inside `MULTI`/`EXEC`.
    in_multi: bool,
    /// The calling client, for lock-out protection and the audit line.
    caller: Option<Conn>,
    /// The caller's ACL user, read before the change (a change that cuts
    /// the caller off deauthenticates it).
    user: String,
}

impl Origin {
    /// From the primary or the AOF.
    fn is_trusted(ctx: &Context) -> bool {
        ffi::context_flags(ctx.ctx) & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) != 0
    }

    fn of(ctx: &Context) -> Origin {
        let flags = ffi::context_flags(ctx.ctx);
        let replicated = flags & raw::REDISMODULE_CTX_FLAGS_REPLICATED != 0;
        let trusted = Origin::is_trusted(ctx);
        let caller = if trusted { None } else { ffi::client_conn(ffi::client_id(ctx.ctx)) };
        let user = if trusted { String::new() } else { ffi::current_user(ctx.ctx) };
        Origin { trusted, replicated, in_multi: flags & raw::REDISMODULE_CTX_FLAGS_MULTI != 0, caller, user }
    }
}

/// Whether the command comes from the primary or the AOF.
pub(crate) fn is_trusted(ctx: &Context) -> bool {
    Origin::is_trusted(ctx)
}

/// The addresses of the cluster's nodes, for the node guard (§12); empty
/// outside cluster mode.
fn cluster_nodes(ctx: &Context) -> Vec<(Peer, u16)> {
    if !crate::cluster::enabled() {
        return Vec::new();
    }
    ffi::cluster_node_ids(ctx.ctx)
        .iter()
        .filter_map(|id| ffi::cluster_node_info(ctx.ctx, id))
        .filter_map(|n| whitelist_core::parse_peer(n.ip.as_bytes()).map(|a| (Peer::Ip(a), n.port)))
        .collect()
}

/// The connected replicas: (peer, port, client id).
fn connected_replicas(ctx: &Context) -> Vec<(Peer, u16, u64)> {
    ffi::call_text(ctx.ctx, "CLIENT", &["LIST", "TYPE", "replica"]).map_or_else(Vec::new, |t| {
        parse_client_list(&t).iter().map(|c: &ListedClient| (c.peer, c.port, c.id)).collect()
    })
}

/// The result of a committed (or empty) change.
struct Applied {
    outcome: Outcome,
    changed: bool,
    version: u64,
    loading: bool,
    /// For an ordinary client's `IMPORT`: the whole state it led to, which
    /// is what the primary propagates, changed or not (the effect, not the
    /// request: no `IFVERSION` or `FORCE` is judged again, and the version is
    /// the one reached here).
    state: Option<String>,
    /// In cluster mode: the `WHITELIST.MERGE` that propagates the change
    /// (§12), instead of the command or the document.
    merge: Option<Vec<u8>>,
}

/// Plans, judges, commits and enforces one change; the caller propagates.
/// `whole`: the change is an `IMPORT`, which from the primary brings its
/// whole state (ending a divergence).
fn commit(
    ctx: &Context,
    origin: &Origin,
    change: Change,
    force: bool,
    if_version: Option<u64>,
    whole: bool,
) -> Result<Applied, RedisError> {
    let replicas = if origin.trusted || force { Vec::new() } else { connected_replicas(ctx) };
    let nodes = if origin.trusted || force { Vec::new() } else { cluster_nodes(ctx) };
    let clustered = !origin.trusted && crate::cluster::enabled();
    let result = state::with(|g| {
        let mut fx = Fx::new(ctx.ctx);
        // Commands replayed while loading (AOF) build the whitelist being
        // loaded; the one in force stays until loading ends.
        let loading = g.is_loading();
        let brings_primary_state = whole && origin.replicated && !loading;
        let current = g.commit_base();
        if let (Some(expected), false) = (if_version, origin.trusted) {
            if current.version() != expected {
                return Err(to_reply(Error::VersionMoved { current: current.version(), expected }));
            }
        }
        let limits = (!origin.trusted).then(|| g.config.limits());
        let now = crate::maintenance::now_s();
        let plan = current.plan_at(change, limits.as_ref(), now).map_err(|e| to_reply(Error::Limit(e)))?;
        let Some(next) = plan.next else {
            let version = current.version();
            // An IMPORT that changes nothing here is still propagated: it is
            // how an operator pushes the primary's state to a replica that
            // differs (EXPORT, then IMPORT of the same document).
            // In a cluster a replica installs merges only, and has them all.
            let state = (whole && !origin.trusted && !clustered).then(|| document::export(current));
            if brings_primary_state {
                g.clear_divergence(&mut fx);
            }
            return Ok(Applied { outcome: plan.outcome, changed: false, version, loading, state, merge: None });
        };
        if !origin.trusted && !loading {
            let caller = Caller { peer: origin.caller.map(|c| c.peer), in_multi: origin.in_multi, force };
            gate::lockout(current, &next, g.config.policy(), caller, &replicas)
                .map_err(|refusal| RedisError::String(refusal.to_string()))?;
            if g.users_enforced {
                gate::lockout_user(&next, g.config.policy(), caller, &origin.user)
                    .map_err(|refusal| RedisError::String(refusal.to_string()))?;
            }
            whitelist_core::nodes::guard(current, &next, g.config.policy(), &nodes)
                .map_err(|refusal| RedisError::String(refusal.to_string()))?;
        }
        let mut next = next;
        let merge = if clustered && !loading {
            Some(crate::cluster::stamp(current, &mut next).map_err(RedisError::Str)?)
        } else {
            None
        };
        let version = next.version();
        let state = (whole && !origin.trusted && merge.is_none()).then(|| document::export(&next));
        if brings_primary_state {
            g.clear_divergence(&mut fx);
        }
        g.commit(next, &mut fx);
        if !loading {
            crate::maintenance::arm(ctx.ctx, g);
        }
        Ok(Applied { outcome: plan.outcome, changed: true, version, loading, state, merge })
    });
    result.unwrap_or(Err(RedisError::Str(BUSY)))
}

/// The arguments a command propagates instead of its own (the name excluded).
type Propagated = Vec<Vec<u8>>;

/// The note at this second and, when the command gave a `TTL`, the
/// arguments to propagate instead: the same with `EXPIREAT` and the
/// absolute second, so a replica or a replay later gets the same expiry.
fn noted(
    note: &whitelist_core::command::NoteArgs,
    raw_args: &[&[u8]],
    trusted: bool,
) -> Result<(whitelist_core::store::Note, Option<Propagated>), RedisError> {
    let resolved = note.resolve(crate::maintenance::now_s(), trusted).map_err(to_reply)?;
    let propagated = match (note.ttl_at, resolved.expiry) {
        (Some(at), whitelist_core::store::Expiry::At(abs)) => {
            let mut args: Vec<Vec<u8>> = raw_args.iter().map(|a| a.to_vec()).collect();
            if let Some(k) = args.get_mut(at) {
                *k = b"EXPIREAT".to_vec();
            }
            if let Some(v) = args.get_mut(at + 1) {
                *v = abs.to_string().into_bytes();
            }
            Some(args)
        }
        _ => None,
    };
    Ok((resolved, propagated))
}

fn audit(ctx: &Context, verb: Verb, target: &str, origin: &Origin, applied: &Applied) {
    if applied.loading {
        return;
    }
    let by = match &origin.caller {
        _ if origin.trusted => String::from("the primary (replication)"),
        Some(c) => format!("{} (user {})", Shown::conn(c), origin.user),
        None => format!("an internal client (user {})", origin.user),
    };
    let o = applied.outcome;
    ffi::log(
        ctx.ctx,
        Level::Notice,
        &format!(
            "{} {target} by {by}: {} added, {} removed, version {}",
            verb.name(),
            o.added,
            o.removed,
            applied.version
        ),
    );
}

/// A write command: commit, propagate verbatim, audit, reply.
fn apply(ctx: &Context, verb: Verb, target: &str, change: Change, force: bool, if_version: Option<u64>) -> RedisResult {
    apply_as(ctx, verb, target, change, force, if_version, None)
}

/// [`apply`], propagating `propagated` (the arguments after the command
/// name) instead of the command as given.
fn apply_as(
    ctx: &Context,
    verb: Verb,
    target: &str,
    change: Change,
    force: bool,
    if_version: Option<u64>,
    propagated: Option<Propagated>,
) -> RedisResult {
    let origin = Origin::of(ctx);
    let applied = commit(ctx, &origin, change, force, if_version, verb == Verb::Import)?;
    match (&applied.state, propagated) {
        _ if applied.merge.is_some() => {
            if let Some(merge) = &applied.merge {
                ctx.replicate("WHITELIST.MERGE", &[merge.as_slice()]);
            }
        }
        (Some(doc), _) => {
            ctx.replicate("WHITELIST.IMPORT", &[doc.as_str()]);
        }
        (None, Some(args)) if applied.changed => {
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            ctx.replicate(verb.name(), args.as_slice());
        }
        (None, _) if applied.changed => ctx.replicate_verbatim(),
        (None, _) => {}
    }
    if applied.changed {
        audit(ctx, verb, target, &origin, &applied);
    }
    if applied.merge.is_some() {
        crate::bus::announce(ctx.ctx);
    }
    let reply = if verb == Verb::Import { applied.version } else { applied.outcome.reply as u64 };
    Ok(RedisValue::Integer(i64::try_from(reply).unwrap_or(i64::MAX)))
}

/// `WHITELIST.LOADCLIENTS`: the addresses of the connected TCP clients,
/// added as a `WHITELIST.ADD` of those that are new (which is also what is
/// propagated, since the result depends on this server's clients).
fn load_clients(ctx: &Context, group: GroupName, force: bool) -> RedisResult {
    let fresh: Vec<Entry> = state::with(|s| {
        let policy = s.config.policy();
        let held: HashSet<Entry> =
            s.whitelist().group(&group).map(|g| g.entries().iter().collect()).unwrap_or_default();
        let mut fresh: Vec<Entry> = s
            .conns()
            .filter_map(|(_, c)| match c.peer {
                Peer::Ip(a) if !(policy.allow_loopback && a.is_loopback()) => Some(Entry::host(a)),
                _ => None,
            })
            .filter(|e| !held.contains(e))
            .collect();
        fresh.sort();
        fresh.dedup();
        fresh
    })
    .ok_or(RedisError::Str(BUSY))?;
    if fresh.is_empty() {
        return Ok(RedisValue::Array(Vec::new()));
    }
    let origin = Origin::of(ctx);
    let target = group.to_string();
    let applied = commit(
        ctx,
        &origin,
        Change::Add { group, entries: fresh.clone(), note: Default::default() },
        force,
        None,
        false,
    )?;
    let shown: Vec<String> = fresh.iter().map(Entry::to_string).collect();
    if let Some(merge) = &applied.merge {
        ctx.replicate("WHITELIST.MERGE", &[merge.as_slice()]);
        audit(ctx, Verb::LoadClients, &target, &origin, &applied);
        crate::bus::announce(ctx.ctx);
    } else if applied.changed {
        let mut args: Vec<&str> = vec![target.as_str()];
        args.extend(shown.iter().map(String::as_str));
        ctx.replicate("WHITELIST.ADD", args.as_slice());
        audit(ctx, Verb::LoadClients, &target, &origin, &applied);
    }
    Ok(RedisValue::Array(shown.into_iter().map(bulk).collect()))
}

/// An `extern "C"` command callback for `verb`: decodes the arguments, runs
/// the command with panics caught, and replies.
macro_rules! callbacks {
    ($($(#[$doc:meta])* $name:ident => $verb:expr;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by Redis with the command's context and arguments.
        pub unsafe extern "C" fn $name(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            let context = Context::new(ctx);
            let args = redis_module::decode_args(ctx, argv, argc);
            let result = run(&context, $verb, &args);
            context.reply(result) as c_int
        }
    )*};
}

callbacks! {
    /// `WHITELIST.SET group entries... [ATTRIBUTE show|hidden] [FORCE]`
    set => Verb::Set;
    /// `WHITELIST.ADD group entries... [FORCE]`
    add => Verb::Add;
    /// `WHITELIST.REMOVE group entries... [FORCE]`
    remove => Verb::Remove;
    /// `WHITELIST.DEL group [group ...] [FORCE]`
    del => Verb::Del;
    /// `WHITELIST.GET [group]`
    get_cmd => Verb::Get;
    /// `WHITELIST.LIST [ALL]`
    list_cmd => Verb::List;
    /// `WHITELIST.CHECK address`
    check_cmd => Verb::Check;
    /// `WHITELIST.LOADCLIENTS group [FORCE]`
    loadclients => Verb::LoadClients;
    /// `WHITELIST.HELP`
    help_cmd => Verb::Help;
    /// `WHITELIST.EXPORT`
    export => Verb::Export;
    /// `WHITELIST.IMPORT json [IFVERSION n] [FORCE]`
    import => Verb::Import;
    /// `WHITELIST.DENIED [COUNT n] | RESET`
    denied_cmd => Verb::Denied;
    /// `WHITELIST.BIND group user [user ...] [FORCE]`
    bind => Verb::Bind;
    /// `WHITELIST.UNBIND group user [user ...] [FORCE]`
    unbind => Verb::Unbind;
    /// `WHITELIST.BINDINGS`
    bindings_cmd => Verb::Bindings;
    /// `WHITELIST.STALE seconds`
    stale_cmd => Verb::Stale;
}

const NOT_CLUSTER: &str = "ERR this server is not in cluster mode";

/// `WHITELIST.CLUSTER`: one map (RESP2: flat array) per node, its fields in
/// the order of §12.
///
/// # Safety
/// Called by Redis with the command's context and arguments.
pub unsafe extern "C" fn cluster_cmd(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    let args = redis_module::decode_args(ctx, argv, argc);
    let rows = ffi::guard(Err(RedisError::Str(INTERNAL_ERROR)), || {
        acl::check(&context, "whitelist.cluster", &args)?;
        if args.len() != 1 {
            return Err(RedisError::WrongArity);
        }
        crate::bus::nodes(ctx).ok_or(RedisError::Str(NOT_CLUSTER))
    });
    match rows {
        Ok(rows) => ffi::guard((), || reply_nodes(ctx, &rows)),
        Err(e) => {
            context.reply(Err(e));
        }
    }
    raw::REDISMODULE_OK as c_int
}

fn reply_nodes(ctx: *mut raw::RedisModuleCtx, rows: &[crate::bus::NodeRow]) {
    let api = unsafe {
        (
            raw::RedisModule_ReplyWithArray,
            raw::RedisModule_ReplyWithMap,
            raw::RedisModule_ReplyWithStringBuffer,
            raw::RedisModule_ReplyWithLongLong,
        )
    };
    let (Some(array), Some(map), Some(text), Some(int)) = api else {
        return;
    };
    let text = |s: &str| unsafe { text(ctx, s.as_ptr().cast(), s.len()) };
    let int = |i: i64| unsafe { int(ctx, i) };
    unsafe { array(ctx, rows.len() as std::os::raw::c_long) };
    for row in rows {
        unsafe { map(ctx, 7) };
        text("id");
        text(&row.id);
        text("addr");
        text(&row.addr);
        text("role");
        text(if row.primary { "primary" } else { "replica" });
        text("version");
        int(i64::try_from(row.version).unwrap_or(i64::MAX));
        text("fingerprint");
        text(&row.fingerprint);
        text("in-sync");
        int(i64::from(row.in_sync));
        text("last-seen");
        int(row.last_seen);
    }
}

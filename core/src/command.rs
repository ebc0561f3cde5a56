//! Command argument parsing: argument bytes in, a validated [`Command`] out.
//!
//! Keywords (`ATTRIBUTE`, `FORCE`, `ALL`, `IFVERSION`) are case-insensitive.
//! Entries come first and may be comma-separated inside one argument; options
//! follow. When a command has several faults, the one reported is the first
//! of: the argument count and keyword syntax, then (from an ordinary client)
//! more items than the limits allow, counted before any item is parsed, then
//! the first bad argument from the left. Limits on the resulting state are
//! the store's, checked last.

use std::fmt;

use crate::document::{parse_document, Document, DocumentError, MAX_VERSION};
use crate::entry::{parse_address, parse_entries, Addr, AddressError, Entry, EntryError};
use crate::name::{Attribute, GroupName, NameError};
use crate::shown::Shown;
use crate::store::{parse_comment, Expiry, LimitError, Limits, Note, MAX_COMMENT, MAX_TTL};

/// The `WHITELIST.*` commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `WHITELIST.SET`
    Set,
    /// `WHITELIST.ADD`
    Add,
    /// `WHITELIST.REMOVE`
    Remove,
    /// `WHITELIST.DEL`
    Del,
    /// `WHITELIST.GET`
    Get,
    /// `WHITELIST.LIST`
    List,
    /// `WHITELIST.CHECK`
    Check,
    /// `WHITELIST.LOADCLIENTS`
    LoadClients,
    /// `WHITELIST.HELP`
    Help,
    /// `WHITELIST.EXPORT`
    Export,
    /// `WHITELIST.IMPORT`
    Import,
    /// `WHITELIST.DENIED`
    Denied,
    /// `WHITELIST.BIND`
    Bind,
    /// `WHITELIST.UNBIND`
    Unbind,
    /// `WHITELIST.BINDINGS`
    Bindings,
    /// `WHITELIST.STALE`
    Stale,
}

impl Verb {
    /// Whether the command changes the whitelist (and is propagated).
    pub fn changes(self) -> bool {
        matches!(
            self,
            Verb::Set
                | Verb::Add
                | Verb::Remove
                | Verb::Del
                | Verb::LoadClients
                | Verb::Import
                | Verb::Bind
                | Verb::Unbind
        )
    }

    /// The command's name as clients type it, upper case.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Set => "WHITELIST.SET",
            Verb::Add => "WHITELIST.ADD",
            Verb::Remove => "WHITELIST.REMOVE",
            Verb::Del => "WHITELIST.DEL",
            Verb::Get => "WHITELIST.GET",
            Verb::List => "WHITELIST.LIST",
            Verb::Check => "WHITELIST.CHECK",
            Verb::LoadClients => "WHITELIST.LOADCLIENTS",
            Verb::Help => "WHITELIST.HELP",
            Verb::Export => "WHITELIST.EXPORT",
            Verb::Import => "WHITELIST.IMPORT",
            Verb::Denied => "WHITELIST.DENIED",
            Verb::Bind => "WHITELIST.BIND",
            Verb::Unbind => "WHITELIST.UNBIND",
            Verb::Bindings => "WHITELIST.BINDINGS",
            Verb::Stale => "WHITELIST.STALE",
        }
    }
}

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `SET group entries... [ATTRIBUTE show|hidden] [FORCE]`
    Set {
        /// The group.
        group: GroupName,
        /// Its new entries.
        entries: Vec<Entry>,
        /// A new attribute.
        attribute: Option<Attribute>,
        /// `COMMENT`, `TTL`, `EXPIREAT`.
        note: NoteArgs,
        /// Skip lock-out protection.
        force: bool,
    },
    /// `ADD group entries... [COMMENT text] [TTL s|EXPIREAT t|PERSIST] [FORCE]`
    Add {
        /// The group.
        group: GroupName,
        /// Entries to add.
        entries: Vec<Entry>,
        /// `COMMENT`, `TTL`, `EXPIREAT`, `PERSIST`.
        note: NoteArgs,
        /// Skip lock-out protection.
        force: bool,
    },
    /// `REMOVE group entries... [FORCE]`
    Remove {
        /// The group.
        group: GroupName,
        /// Entries to remove.
        entries: Vec<Entry>,
        /// Skip lock-out protection.
        force: bool,
    },
    /// `DEL group [group ...] [FORCE]`
    Del {
        /// The groups.
        groups: Vec<GroupName>,
        /// Skip lock-out protection.
        force: bool,
    },
    /// `GET [group]`
    Get {
        /// One group, or every shown group.
        group: Option<GroupName>,
    },
    /// `GET group WITHSTATS`
    GetStats {
        /// The group.
        group: GroupName,
    },
    /// `STALE seconds`
    Stale {
        /// Entries not hit in this many seconds.
        seconds: u64,
    },
    /// `LIST [ALL]`
    List {
        /// Include hidden groups.
        all: bool,
    },
    /// `CHECK address [USER name]`
    Check {
        /// The address to decide on.
        addr: Addr,
        /// Also decide whether this ACL user may log in from it.
        user: Option<String>,
    },
    /// `LOADCLIENTS group [FORCE]`
    LoadClients {
        /// The group to add to.
        group: GroupName,
        /// Skip lock-out protection.
        force: bool,
    },
    /// `HELP`
    Help,
    /// `EXPORT`
    Export,
    /// `IMPORT json [IFVERSION n] [FORCE]`
    Import {
        /// The whole whitelist to install.
        document: Document,
        /// Refuse unless the current version is this one.
        if_version: Option<u64>,
        /// Skip lock-out protection.
        force: bool,
    },
    /// `DENIED [COUNT n]`
    Denied {
        /// At most this many rows (`None`: all).
        count: Option<usize>,
    },
    /// `DENIED RESET`
    DeniedReset,
    /// `BIND group user [user ...] [FORCE]` (`bind`) or `UNBIND ...`.
    Bind {
        /// `BIND` rather than `UNBIND`.
        bind: bool,
        /// The group.
        group: GroupName,
        /// The users.
        users: Vec<String>,
        /// Skip lock-out protection.
        force: bool,
    },
    /// `BINDINGS`
    Bindings,
}

/// The expiry keyword of a `SET` or `ADD`, before the clock is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiryArg {
    /// None given.
    #[default]
    None,
    /// `TTL seconds`.
    Ttl(u64),
    /// `EXPIREAT unix-seconds`.
    At(u64),
    /// `PERSIST`.
    Persist,
}

/// The `COMMENT` and expiry keywords of a `SET` or `ADD`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoteArgs {
    /// `COMMENT text` (`Some("")` clears).
    pub comment: Option<Box<str>>,
    /// The expiry keyword.
    pub expiry: ExpiryArg,
    /// Where `TTL` stands among the arguments (the command name excluded):
    /// propagation replaces it and its value by `EXPIREAT` and the absolute
    /// second.
    pub ttl_at: Option<usize>,
}

impl NoteArgs {
    /// The note at unix second `now`. `trusted`: from the primary or the
    /// AOF, whose `EXPIREAT` is applied whatever it is (in the past: the
    /// entry is expired at once).
    pub fn resolve(&self, now: u64, trusted: bool) -> Result<Note, Error> {
        let expiry = match self.expiry {
            ExpiryArg::None => Expiry::Unchanged,
            ExpiryArg::Persist => Expiry::Persist,
            ExpiryArg::Ttl(ttl) => Expiry::At(now.saturating_add(ttl)),
            ExpiryArg::At(at) if trusted => Expiry::At(at),
            ExpiryArg::At(at) if at <= now => {
                return Err(Error::Invalid(String::from("EXPIREAT must be in the future")))
            }
            ExpiryArg::At(at) if at - now > MAX_TTL => {
                return Err(Error::Invalid(format!("EXPIREAT must be at most {MAX_TTL} seconds (one year) ahead")))
            }
            ExpiryArg::At(at) => Expiry::At(at),
        };
        Ok(Note { comment: self.comment.clone(), expiry })
    }
}

/// Everything a client can be told is wrong with a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The argument count is wrong (Redis's own arity reply).
    WrongArity,
    /// A keyword missing, repeated, misplaced or unknown.
    Syntax(String),
    /// A bad entry.
    Entry(EntryError),
    /// A bad address.
    Address(AddressError),
    /// A bad group name.
    Name(NameError),
    /// A limit would be broken.
    Limit(LimitError),
    /// More items than the limits allow, counted before parsing any.
    TooMany(TooMany),
    /// A bad JSON document.
    Document(DocumentError),
    /// A bad ACL user name: the name as shown, and why.
    User(String, &'static str),
    /// A bad keyword value or a note that cannot apply (`ERR <text>`).
    Invalid(String),
    /// `IFVERSION` does not match.
    VersionMoved {
        /// The version now.
        current: u64,
        /// The version the client expected.
        expected: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongArity => f.write_str("ERR wrong number of arguments"),
            Error::Syntax(s) => write!(f, "ERR syntax error: {s}"),
            Error::Entry(e) => write!(f, "ERR {e}"),
            Error::Address(e) => write!(f, "ERR {e}"),
            Error::Name(e) => write!(f, "ERR {e}"),
            Error::Limit(e) => write!(f, "ERR {e}"),
            Error::TooMany(e) => write!(f, "ERR {e}"),
            Error::Document(e) => write!(f, "ERR {e}"),
            Error::User(name, why) => write!(f, "ERR invalid user name '{name}': {why}"),
            Error::Invalid(s) => write!(f, "ERR {s}"),
            Error::VersionMoved { current, expected } => {
                write!(f, "ERR whitelist version is {current}, not {expected} (IFVERSION): export it again and retry")
            }
        }
    }
}

impl std::error::Error for Error {}

/// What a command or document names more of than the limits allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Entries of `SET`, `ADD` or `REMOVE` (`whitelist.max-entries-per-group`).
    CommandEntries,
    /// Groups of `DEL` (`whitelist.max-groups`).
    CommandGroups,
    /// Groups of an `IMPORT` document (`whitelist.max-groups`).
    DocumentGroups,
    /// Entries of one group of an `IMPORT` document, named as the error
    /// shows it (`group 'name'` or `groups[i]`).
    DocumentEntries(String),
}

/// A command or document naming more items than the limits allow, duplicates
/// included: refused before any item is parsed, so that a huge argument is
/// never built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooMany {
    /// What was counted.
    pub what: Counted,
    /// How many there are.
    pub count: usize,
    /// The configured limit.
    pub limit: usize,
}

impl fmt::Display for TooMany {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, setting) = match &self.what {
            Counted::CommandEntries => (String::from("entries in one command"), "max-entries-per-group"),
            Counted::CommandGroups => (String::from("groups in one command"), "max-groups"),
            Counted::DocumentGroups => (String::from("groups in one document"), "max-groups"),
            Counted::DocumentEntries(group) => (format!("entries in {group} of the document"), "max-entries-per-group"),
        };
        write!(f, "too many {what}: {}, the limit is {} (whitelist.{setting})", self.count, self.limit)
    }
}

impl std::error::Error for TooMany {}

impl From<EntryError> for Error {
    fn from(e: EntryError) -> Self {
        Error::Entry(e)
    }
}
impl From<AddressError> for Error {
    fn from(e: AddressError) -> Self {
        Error::Address(e)
    }
}
impl From<NameError> for Error {
    fn from(e: NameError) -> Self {
        Error::Name(e)
    }
}
impl From<LimitError> for Error {
    fn from(e: LimitError) -> Self {
        Error::Limit(e)
    }
}
impl From<DocumentError> for Error {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::TooMany(t) => Error::TooMany(t),
            other => Error::Document(other),
        }
    }
}

fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

fn syntax<T>(s: impl Into<String>) -> Result<T, Error> {
    Err(Error::Syntax(s.into()))
}

/// Parses the arguments of `verb` (the command name itself excluded).
/// `limits` are those of an ordinary client; `None` for a replicated or
/// AOF-loaded command, which must reach the primary's state: it is neither
/// counted against the limits nor held to the client's version cap.
pub fn parse(verb: Verb, args: &[&[u8]], limits: Option<&Limits>) -> Result<Command, Error> {
    match verb {
        Verb::Set | Verb::Add | Verb::Remove => parse_entry_command(verb, args, limits),
        Verb::Del => parse_del(args, limits),
        Verb::Get => match args {
            [] => Ok(Command::Get { group: None }),
            [name] => Ok(Command::Get { group: Some(GroupName::parse(name)?) }),
            [name, stats] if is(stats, "withstats") => Ok(Command::GetStats { group: GroupName::parse(name)? }),
            [_, other] => {
                syntax(format!("unexpected argument '{}': WHITELIST.GET group takes only WITHSTATS", Shown::new(other)))
            }
            _ => Err(Error::WrongArity),
        },
        Verb::List => match args {
            [] => Ok(Command::List { all: false }),
            [all] if is(all, "all") => Ok(Command::List { all: true }),
            [other] => syntax(format!("unexpected argument '{}': WHITELIST.LIST takes only ALL", Shown::new(other))),
            _ => Err(Error::WrongArity),
        },
        Verb::Check => match args {
            [addr] => Ok(Command::Check { addr: parse_address(addr)?, user: None }),
            [addr, keyword, name] if is(keyword, "user") => {
                let addr = parse_address(addr)?;
                Ok(Command::Check { addr, user: Some(parse_user(name).map_err(|why| user_error(name, why))?) })
            }
            [_, keyword] if is(keyword, "user") => syntax("USER must be followed by a user name"),
            _ => Err(Error::WrongArity),
        },
        Verb::Bind | Verb::Unbind => parse_bind(verb, args),
        Verb::Bindings => match args {
            [] => Ok(Command::Bindings),
            _ => Err(Error::WrongArity),
        },
        Verb::LoadClients => match args {
            [name] => Ok(Command::LoadClients { group: GroupName::parse(name)?, force: false }),
            [name, force] => {
                if !is(force, "force") {
                    return syntax(format!(
                        "unexpected argument '{}': only FORCE may follow the group",
                        Shown::new(force)
                    ));
                }
                Ok(Command::LoadClients { group: GroupName::parse(name)?, force: true })
            }
            _ => Err(Error::WrongArity),
        },
        Verb::Help | Verb::Export => match args {
            [] if verb == Verb::Help => Ok(Command::Help),
            [] => Ok(Command::Export),
            _ => Err(Error::WrongArity),
        },
        Verb::Import => parse_import(args, limits),
        Verb::Denied => parse_denied(args),
        Verb::Stale => match args {
            [seconds] => match parse_seconds(seconds) {
                Some(seconds) => Ok(Command::Stale { seconds }),
                None => {
                    Err(Error::Invalid(format!("invalid seconds '{}': a non-negative integer", Shown::new(seconds))))
                }
            },
            _ => Err(Error::WrongArity),
        },
    }
}

fn user_error(raw: &[u8], why: &'static str) -> Error {
    Error::User(Shown::new(raw).to_string(), why)
}

/// The longest ACL user name a binding takes, in bytes.
pub const MAX_USER_LEN: usize = 256;

/// An ACL user name as `BIND` and `CHECK ... USER` take it: what Redis
/// accepts as a user name (no spaces, no NUL) and UTF-8, so documents carry
/// it, at most [`MAX_USER_LEN`] bytes.
pub fn parse_user(raw: &[u8]) -> Result<String, &'static str> {
    if raw.is_empty() {
        return Err("empty");
    }
    if raw.len() > MAX_USER_LEN {
        return Err("longer than 256 bytes");
    }
    let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8")?;
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("spaces and control characters are not allowed");
    }
    Ok(text.to_string())
}

/// `WHITELIST.BIND|UNBIND group user [user ...] [FORCE]`: a last `FORCE`
/// is always the keyword; anywhere else it is misplaced.
fn parse_bind(verb: Verb, args: &[&[u8]]) -> Result<Command, Error> {
    let [name, rest @ ..] = args else {
        return Err(Error::WrongArity);
    };
    let (users, force) = match rest {
        [users @ .., last] if is(last, "force") => (users, true),
        users => (users, false),
    };
    if rest.is_empty() {
        return Err(Error::WrongArity);
    }
    if users.is_empty() {
        return syntax(format!("{} needs at least one user before FORCE", verb.name()));
    }
    if users.iter().any(|u| is(u, "force")) {
        return syntax("FORCE must be the last argument");
    }
    let group = GroupName::parse(name)?;
    let users = users.iter().map(|u| parse_user(u).map_err(|why| user_error(u, why))).collect::<Result<_, _>>()?;
    Ok(Command::Bind { bind: verb == Verb::Bind, group, users, force })
}

/// `WHITELIST.DENIED [COUNT n] | RESET`.
fn parse_denied(args: &[&[u8]]) -> Result<Command, Error> {
    match args {
        [] => Ok(Command::Denied { count: None }),
        [reset] if is(reset, "reset") => Ok(Command::DeniedReset),
        [reset, extra, ..] if is(reset, "reset") => {
            syntax(format!("unexpected argument '{}': RESET takes no other argument", Shown::new(extra)))
        }
        [count, rest @ ..] if is(count, "count") => match rest {
            [n] => match parse_count(n) {
                Some(n) => Ok(Command::Denied { count: Some(n) }),
                None => syntax(format!("COUNT must be followed by an integer from 1 to {}", i64::MAX)),
            },
            [] => syntax(format!("COUNT must be followed by an integer from 1 to {}", i64::MAX)),
            [_, extra, ..] => {
                syntax(format!("unexpected argument '{}': only COUNT n or RESET may be given", Shown::new(extra)))
            }
        },
        [other, ..] => syntax(format!("unexpected argument '{}': expected COUNT n or RESET", Shown::new(other))),
    }
}

/// A plain decimal integer from 1 to `i64::MAX` (as Redis reads counts).
fn parse_count(raw: &[u8]) -> Option<usize> {
    if raw.first() == Some(&b'0') || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: i64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    // Past usize on a 32-bit build: no table is that large anyway.
    (n >= 1).then(|| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Refuses `count` items beyond `limit`.
fn cap(what: Counted, count: usize, limit: Option<usize>) -> Result<(), Error> {
    match limit {
        Some(limit) if count > limit => Err(Error::TooMany(TooMany { what, count, limit })),
        _ => Ok(()),
    }
}

/// The items the entry arguments name, duplicates and empty items included,
/// counted without parsing them: one more than the commas of each argument.
pub fn count_items(entry_args: &[&[u8]]) -> usize {
    entry_args.iter().fold(0usize, |total, arg| {
        let commas = arg.iter().filter(|&&b| b == b',').count();
        total.saturating_add(commas).saturating_add(1)
    })
}

fn parse_entry_command(verb: Verb, args: &[&[u8]], limits: Option<&Limits>) -> Result<Command, Error> {
    let [name, rest @ ..] = args else {
        return Err(Error::WrongArity);
    };
    if rest.is_empty() {
        return Err(Error::WrongArity);
    }
    let options_at = rest.iter().position(|a| OPTION_KEYWORDS.iter().any(|k| is(a, k))).unwrap_or(rest.len());
    let (entry_args, options) = rest.split_at(options_at);
    if entry_args.is_empty() {
        return syntax(format!("{} needs at least one entry before its options", verb.name()));
    }
    let (attribute, force) = parse_entry_options(verb, options)?;
    let raw_note = note_options(verb, options, 1 + options_at)?;
    cap(Counted::CommandEntries, count_items(entry_args), limits.map(|l| l.max_entries_per_group))?;
    let group = GroupName::parse(name)?;
    let entries = parse_entries(entry_args.iter().copied())?;
    let note = raw_note.validate()?;
    Ok(match verb {
        Verb::Set => Command::Set { group, entries, attribute, note, force },
        Verb::Add => Command::Add { group, entries, note, force },
        _ => Command::Remove { group, entries, force },
    })
}

/// Every keyword that may follow the entries.
const OPTION_KEYWORDS: &[&str] = &["attribute", "force", "comment", "ttl", "expireat", "persist"];

/// The note keywords as given, values not yet checked (they are checked
/// after the entries, left to right).
#[derive(Default)]
struct RawNote<'a> {
    /// Keyword values in the order given: (keyword, value).
    values: Vec<(&'static str, &'a [u8])>,
    persist: bool,
    ttl_at: Option<usize>,
}

impl RawNote<'_> {
    fn validate(&self) -> Result<NoteArgs, Error> {
        let mut note = NoteArgs { ttl_at: self.ttl_at, ..NoteArgs::default() };
        if self.persist {
            note.expiry = ExpiryArg::Persist;
        }
        for &(keyword, value) in &self.values {
            match keyword {
                "COMMENT" => match parse_comment(value) {
                    Some(text) => note.comment = Some(text.into()),
                    None => {
                        return Err(Error::Invalid(format!(
                            "invalid comment: at most {MAX_COMMENT} bytes of printable text"
                        )))
                    }
                },
                "TTL" => match parse_seconds(value).filter(|&t| (1..=MAX_TTL).contains(&t)) {
                    Some(t) => note.expiry = ExpiryArg::Ttl(t),
                    None => {
                        return Err(Error::Invalid(format!(
                            "invalid TTL '{}': 1 to {MAX_TTL} seconds",
                            Shown::new(value)
                        )))
                    }
                },
                _ => match parse_seconds(value) {
                    Some(t) => note.expiry = ExpiryArg::At(t),
                    None => {
                        return Err(Error::Invalid(format!("invalid EXPIREAT '{}': unix seconds", Shown::new(value))))
                    }
                },
            }
        }
        Ok(note)
    }
}

/// A count of seconds: decimal digits without a leading zero.
fn parse_seconds(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 19 || !raw.iter().all(u8::is_ascii_digit) || (raw.len() > 1 && raw[0] == b'0') {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse::<u64>().ok()
}

/// The `COMMENT`, `TTL`, `EXPIREAT`, `PERSIST` keywords among `options`
/// (whose first stands at argument `first`): syntax only.
fn note_options<'a>(verb: Verb, options: &[&'a [u8]], first: usize) -> Result<RawNote<'a>, Error> {
    let mut raw = RawNote::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut expiries = 0;
    let mut i = 0;
    while let Some(arg) = options.get(i) {
        let keyword = ["COMMENT", "TTL", "EXPIREAT", "PERSIST"].into_iter().find(|k| is(arg, k));
        let Some(keyword) = keyword else {
            // ATTRIBUTE takes a value; FORCE does not (both checked already).
            i += if is(arg, "attribute") { 2 } else { 1 };
            continue;
        };
        if seen.contains(&keyword) {
            return syntax(format!("{keyword} given twice"));
        }
        seen.push(keyword);
        if keyword != "COMMENT" {
            expiries += 1;
            if expiries > 1 {
                return syntax("TTL, EXPIREAT and PERSIST exclude each other");
            }
        }
        if keyword == "PERSIST" {
            if verb != Verb::Add {
                return syntax(format!("PERSIST is only valid for WHITELIST.ADD, not {}", verb.name()));
            }
            raw.persist = true;
            i += 1;
            continue;
        }
        let Some(value) = options.get(i + 1) else {
            return syntax(format!("{keyword} must be followed by a value"));
        };
        if keyword == "TTL" {
            raw.ttl_at = Some(first + i);
        }
        raw.values.push((keyword, value));
        i += 2;
    }
    Ok(raw)
}

/// The options after the entries: `ATTRIBUTE show|hidden` (`SET` only) and `FORCE`.
fn parse_entry_options(verb: Verb, options: &[&[u8]]) -> Result<(Option<Attribute>, bool), Error> {
    let mut attribute = None;
    let mut force = false;
    let mut i = 0;
    while let Some(arg) = options.get(i) {
        if is(arg, "attribute") {
            if verb != Verb::Set {
                return syntax(format!("ATTRIBUTE is only valid for WHITELIST.SET, not {}", verb.name()));
            }
            if attribute.is_some() {
                return syntax("ATTRIBUTE given twice");
            }
            match options.get(i + 1).and_then(|v| Attribute::parse(v)) {
                Some(a) => attribute = Some(a),
                None => return syntax("ATTRIBUTE must be followed by show or hidden"),
            }
            i += 2;
        } else if is(arg, "force") {
            if force {
                return syntax("FORCE given twice");
            }
            force = true;
            i += 1;
        } else if verb != Verb::Remove && ["comment", "ttl", "expireat"].iter().any(|k| is(arg, k)) {
            // A keyword that takes a value always takes the next argument.
            i += 2;
        } else if verb == Verb::Add && is(arg, "persist") {
            i += 1;
        } else {
            let allowed = match verb {
                Verb::Set => "ATTRIBUTE, COMMENT, TTL, EXPIREAT and FORCE",
                Verb::Add => "COMMENT, TTL, EXPIREAT, PERSIST and FORCE",
                _ => "FORCE",
            };
            return syntax(format!("unexpected argument '{}': entries come before {allowed}", Shown::new(arg)));
        }
    }
    Ok((attribute, force))
}

fn parse_del(args: &[&[u8]], limits: Option<&Limits>) -> Result<Command, Error> {
    if args.is_empty() {
        return Err(Error::WrongArity);
    }
    let forces = args.iter().filter(|a| is(a, "force")).count();
    if forces > 1 {
        return syntax("FORCE given twice");
    }
    let force = forces == 1;
    let names = if force {
        match args.split_last() {
            Some((last, names)) if is(last, "force") => names,
            _ => return syntax("FORCE must be the last argument"),
        }
    } else {
        args
    };
    if names.is_empty() {
        return syntax("WHITELIST.DEL needs at least one group");
    }
    cap(Counted::CommandGroups, names.len(), limits.map(|l| l.max_groups))?;
    let groups = names.iter().map(|n| GroupName::parse(n)).collect::<Result<Vec<_>, _>>()?;
    Ok(Command::Del { groups, force })
}

fn parse_import(args: &[&[u8]], limits: Option<&Limits>) -> Result<Command, Error> {
    let [doc, options @ ..] = args else {
        return Err(Error::WrongArity);
    };
    if options.len() > 3 {
        return Err(Error::WrongArity);
    }
    let mut if_version = None;
    let mut force = false;
    let mut i = 0;
    while let Some(arg) = options.get(i) {
        if is(arg, "ifversion") {
            if if_version.is_some() {
                return syntax("IFVERSION given twice");
            }
            match options.get(i + 1).and_then(|v| parse_version(v)) {
                Some(v) => if_version = Some(v),
                None => return syntax(format!("IFVERSION must be followed by a version from 0 to {MAX_VERSION}")),
            }
            i += 2;
        } else if is(arg, "force") {
            if force {
                return syntax("FORCE given twice");
            }
            force = true;
            i += 1;
        } else {
            return syntax(format!("unexpected argument '{}': expected IFVERSION or FORCE", Shown::new(arg)));
        }
    }
    let document = parse_document(doc, limits)?;
    Ok(Command::Import { document, if_version, force })
}

fn parse_version(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 19 || !raw.iter().all(u8::is_ascii_digit) || (raw.len() > 1 && raw[0] == b'0') {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse::<u64>().ok().filter(|&v| v <= MAX_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_groups: 3, max_entries_per_group: 4 };

    fn run(verb: Verb, args: &[&str]) -> Result<Command, Error> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        parse(verb, &raw, Some(&LIMITS))
    }

    fn err(verb: Verb, args: &[&str]) -> String {
        run(verb, args).unwrap_err().to_string()
    }

    #[test]
    fn bind_and_check_user() {
        let users = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let group = GroupName::parse(b"app_servers").unwrap();
        assert_eq!(
            run(Verb::Bind, &["app_servers", "app", "admin"]),
            Ok(Command::Bind { bind: true, group: group.clone(), users: users(&["app", "admin"]), force: false })
        );
        assert_eq!(
            run(Verb::Unbind, &["app_servers", "app", "Force"]),
            Ok(Command::Bind { bind: false, group: group.clone(), users: users(&["app"]), force: true })
        );
        assert_eq!(run(Verb::Bind, &["app_servers"]), Err(Error::WrongArity));
        assert_eq!(
            err(Verb::Bind, &["app_servers", "FORCE"]),
            "ERR syntax error: WHITELIST.BIND needs at least one user before FORCE"
        );
        assert_eq!(
            err(Verb::Bind, &["app_servers", "force", "app"]),
            "ERR syntax error: FORCE must be the last argument"
        );
        assert!(err(Verb::Bind, &["App", "app"]).starts_with("ERR invalid group name 'App'"));
        assert_eq!(
            err(Verb::Bind, &["app_servers", "a b"]),
            "ERR invalid user name 'a b': spaces and control characters are not allowed"
        );
        assert_eq!(err(Verb::Unbind, &["app_servers", ""]), "ERR invalid user name '': empty");
        let raw: Vec<&[u8]> = vec![b"app_servers", b"\xff"];
        assert_eq!(parse(Verb::Bind, &raw, None).unwrap_err().to_string(), "ERR invalid user name '\\xff': not UTF-8");
        let long = "u".repeat(MAX_USER_LEN + 1);
        assert_eq!(
            err(Verb::Bind, &["app_servers", &long]),
            format!("ERR invalid user name '{}...': longer than 256 bytes", "u".repeat(64))
        );
        assert!(run(Verb::Bind, &["app_servers", &long[1..]]).is_ok());
        assert_eq!(run(Verb::Bindings, &[]), Ok(Command::Bindings));
        assert_eq!(run(Verb::Bindings, &["x"]), Err(Error::WrongArity));
        assert_eq!(
            run(Verb::Check, &["10.0.0.1", "user", "force"]),
            Ok(Command::Check { addr: Addr::V4(0x0a00_0001), user: Some(String::from("force")) })
        );
        assert_eq!(err(Verb::Check, &["10.0.0.1", "USER"]), "ERR syntax error: USER must be followed by a user name");
        assert_eq!(run(Verb::Check, &["10.0.0.1", "app"]), Err(Error::WrongArity));
        assert!(Verb::Bind.changes() && Verb::Unbind.changes() && !Verb::Bindings.changes());
    }

    #[test]
    fn set_with_options_in_any_case() {
        let Command::Set { group, entries, attribute, force, .. } =
            run(Verb::Set, &["prod", "10.0.0.1,10.0.0.0/24", "::1", "attribute", "HIDDEN", "Force"]).unwrap()
        else {
            panic!("not a SET");
        };
        assert_eq!(group.as_str(), "prod");
        assert_eq!(entries.len(), 3);
        assert_eq!(attribute, Some(Attribute::Hidden));
        assert!(force);
        let Command::Set { attribute, force, .. } =
            run(Verb::Set, &["prod", "10.0.0.1", "FORCE", "ATTRIBUTE", "show"]).unwrap()
        else {
            panic!("not a SET");
        };
        assert_eq!((attribute, force), (Some(Attribute::Show), true));
    }

    #[test]
    fn entry_command_errors() {
        assert_eq!(run(Verb::Set, &["prod"]), Err(Error::WrongArity));
        assert_eq!(run(Verb::Add, &[]), Err(Error::WrongArity));
        assert_eq!(
            err(Verb::Set, &["prod", "FORCE"]),
            "ERR syntax error: WHITELIST.SET needs at least one entry before its options"
        );
        assert_eq!(err(Verb::Set, &["prod", "10.0.0.1", "FORCE", "FORCE"]), "ERR syntax error: FORCE given twice");
        assert_eq!(
            err(Verb::Set, &["prod", "10.0.0.1", "ATTRIBUTE", "show", "ATTRIBUTE", "hidden"]),
            "ERR syntax error: ATTRIBUTE given twice"
        );
        assert_eq!(
            err(Verb::Set, &["prod", "10.0.0.1", "ATTRIBUTE"]),
            "ERR syntax error: ATTRIBUTE must be followed by show or hidden"
        );
        assert_eq!(
            err(Verb::Set, &["prod", "10.0.0.1", "ATTRIBUTE", "secret"]),
            "ERR syntax error: ATTRIBUTE must be followed by show or hidden"
        );
        assert_eq!(
            err(Verb::Set, &["prod", "10.0.0.1", "FORCE", "10.0.0.2"]),
            "ERR syntax error: unexpected argument '10.0.0.2': entries come before ATTRIBUTE, COMMENT, TTL, EXPIREAT and FORCE"
        );
        assert_eq!(
            err(Verb::Add, &["prod", "10.0.0.1", "ATTRIBUTE", "hidden"]),
            "ERR syntax error: ATTRIBUTE is only valid for WHITELIST.SET, not WHITELIST.ADD"
        );
        assert_eq!(
            err(Verb::Add, &["Prod", "10.0.0.1"]),
            "ERR invalid group name 'Prod': 2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit"
        );
        assert_eq!(err(Verb::Set, &["force", "10.0.0.1"]), "ERR invalid group name 'force': reserved keyword");
        assert_eq!(
            err(Verb::Remove, &["prod", "10.0.0.1", "10.0.0.256"]),
            "ERR invalid whitelist entry '10.0.0.256': not an IP address or CIDR block"
        );
        // Keyword syntax is judged before any argument.
        assert_eq!(err(Verb::Set, &["Prod", "10.1.2.3/8", "FORCE", "FORCE"]), "ERR syntax error: FORCE given twice");
        assert_eq!(
            err(Verb::Add, &["Prod", "10.1.2.3/8", "ATTRIBUTE", "hidden"]),
            "ERR syntax error: ATTRIBUTE is only valid for WHITELIST.SET, not WHITELIST.ADD"
        );
    }

    #[test]
    fn del() {
        assert_eq!(
            run(Verb::Del, &["aa", "bb", "force"]).unwrap(),
            Command::Del {
                groups: vec![GroupName::parse(b"aa").unwrap(), GroupName::parse(b"bb").unwrap()],
                force: true
            }
        );
        assert_eq!(run(Verb::Del, &[]), Err(Error::WrongArity));
        assert_eq!(err(Verb::Del, &["FORCE"]), "ERR syntax error: WHITELIST.DEL needs at least one group");
        assert_eq!(err(Verb::Del, &["FORCE", "aa"]), "ERR syntax error: FORCE must be the last argument");
        assert_eq!(err(Verb::Del, &["aa", "FORCE", "force"]), "ERR syntax error: FORCE given twice");
        assert!(err(Verb::Del, &["aa", "B"]).starts_with("ERR invalid group name 'B'"));
    }

    #[test]
    fn reads() {
        assert_eq!(run(Verb::Get, &[]).unwrap(), Command::Get { group: None });
        assert!(matches!(run(Verb::Get, &["prod"]).unwrap(), Command::Get { group: Some(_) }));
        assert_eq!(
            err(Verb::Get, &["aa", "bb"]),
            "ERR syntax error: unexpected argument 'bb': WHITELIST.GET group takes only WITHSTATS"
        );
        assert!(matches!(run(Verb::Get, &["aa", "withStats"]).unwrap(), Command::GetStats { .. }));
        assert_eq!(run(Verb::Get, &["aa", "bb", "cc"]), Err(Error::WrongArity));
        assert_eq!(run(Verb::Stale, &["3600"]).unwrap(), Command::Stale { seconds: 3600 });
        assert_eq!(err(Verb::Stale, &["-1"]), "ERR invalid seconds '-1': a non-negative integer");
        assert_eq!(run(Verb::List, &["All"]).unwrap(), Command::List { all: true });
        assert_eq!(
            err(Verb::List, &["some"]),
            "ERR syntax error: unexpected argument 'some': WHITELIST.LIST takes only ALL"
        );
        assert_eq!(run(Verb::List, &["all", "all"]), Err(Error::WrongArity));
        assert_eq!(
            run(Verb::Check, &["::ffff:10.0.0.1"]).unwrap(),
            Command::Check { addr: Addr::V4(0x0a00_0001), user: None }
        );
        assert_eq!(
            err(Verb::Check, &["10.0.0.0/8"]),
            "ERR invalid address '10.0.0.0/8': not a single address (no /prefix here)"
        );
        assert_eq!(run(Verb::Check, &[]), Err(Error::WrongArity));
        assert_eq!(run(Verb::Help, &[]).unwrap(), Command::Help);
        assert_eq!(run(Verb::Help, &["x"]), Err(Error::WrongArity));
        assert_eq!(run(Verb::Export, &[]).unwrap(), Command::Export);
    }

    #[test]
    fn denied() {
        assert_eq!(run(Verb::Denied, &[]), Ok(Command::Denied { count: None }));
        assert_eq!(run(Verb::Denied, &["count", "3"]), Ok(Command::Denied { count: Some(3) }));
        assert_eq!(
            run(Verb::Denied, &["COUNT", "9223372036854775807"]),
            Ok(Command::Denied { count: Some(usize::try_from(i64::MAX).unwrap()) })
        );
        assert_eq!(run(Verb::Denied, &["Reset"]), Ok(Command::DeniedReset));
        let want = "ERR syntax error: COUNT must be followed by an integer from 1 to 9223372036854775807";
        for bad in
            [&["COUNT"][..], &["COUNT", "0"], &["COUNT", "-1"], &["COUNT", "+1"], &["COUNT", "01"], &["COUNT", ""]]
        {
            assert_eq!(err(Verb::Denied, bad), want, "{bad:?}");
        }
        assert_eq!(err(Verb::Denied, &["COUNT", "9223372036854775808"]), want);
        // Keyword syntax comes before the value's fault.
        assert_eq!(
            err(Verb::Denied, &["COUNT", "x", "RESET"]),
            "ERR syntax error: unexpected argument 'RESET': only COUNT n or RESET may be given"
        );
        assert_eq!(
            err(Verb::Denied, &["COUNT", "2", "RESET"]),
            "ERR syntax error: unexpected argument 'RESET': only COUNT n or RESET may be given"
        );
        assert_eq!(
            err(Verb::Denied, &["RESET", "COUNT"]),
            "ERR syntax error: unexpected argument 'COUNT': RESET takes no other argument"
        );
        assert_eq!(
            err(Verb::Denied, &["ALL"]),
            "ERR syntax error: unexpected argument 'ALL': expected COUNT n or RESET"
        );
        assert!(!Verb::Denied.changes());
    }

    #[test]
    fn loadclients() {
        assert!(matches!(run(Verb::LoadClients, &["aa", "FORCE"]).unwrap(), Command::LoadClients { force: true, .. }));
        assert!(matches!(run(Verb::LoadClients, &["aa"]).unwrap(), Command::LoadClients { force: false, .. }));
        assert_eq!(
            err(Verb::LoadClients, &["aa", "now"]),
            "ERR syntax error: unexpected argument 'now': only FORCE may follow the group"
        );
        assert_eq!(
            err(Verb::LoadClients, &["AA", "now"]),
            "ERR syntax error: unexpected argument 'now': only FORCE may follow the group"
        );
        assert_eq!(run(Verb::LoadClients, &[]), Err(Error::WrongArity));
    }

    #[test]
    fn import() {
        let doc = r#"{"groups":[]}"#;
        assert!(matches!(
            run(Verb::Import, &[doc, "IFVERSION", "7", "force"]).unwrap(),
            Command::Import { if_version: Some(7), force: true, .. }
        ));
        assert_eq!(
            err(Verb::Import, &[doc, "IFVERSION", "-1"]),
            "ERR syntax error: IFVERSION must be followed by a version from 0 to 9223372036854775807"
        );
        assert_eq!(
            err(Verb::Import, &[doc, "IFVERSION", "07"]),
            "ERR syntax error: IFVERSION must be followed by a version from 0 to 9223372036854775807"
        );
        assert_eq!(err(Verb::Import, &[doc, "IFVERSION", "1", "IFVERSION"]), "ERR syntax error: IFVERSION given twice");
        assert_eq!(
            err(Verb::Import, &[doc, "now"]),
            "ERR syntax error: unexpected argument 'now': expected IFVERSION or FORCE"
        );
        assert_eq!(run(Verb::Import, &[]), Err(Error::WrongArity));
        assert_eq!(run(Verb::Import, &[doc, "a", "b", "c", "d"]), Err(Error::WrongArity));
        assert!(err(Verb::Import, &["{"]).starts_with("ERR invalid whitelist document: "));
    }

    #[test]
    fn non_utf8_and_nul_bytes_are_shown_escaped() {
        let raw: Vec<&[u8]> = vec![b"pr\xffod", b"10.0.0.1"];
        assert!(parse(Verb::Set, &raw, None)
            .unwrap_err()
            .to_string()
            .starts_with("ERR invalid group name 'pr\\xffod'"));
        let raw: Vec<&[u8]> = vec![b"prod", b"10.0.0.1\x00"];
        assert_eq!(
            parse(Verb::Add, &raw, None).unwrap_err().to_string(),
            "ERR invalid whitelist entry '10.0.0.1\\x00': not an IP address or CIDR block"
        );
    }

    #[test]
    fn items_are_counted_before_they_are_parsed() {
        assert_eq!(count_items(&[b"a,b,,c", b"", b"x"]), 6);
        // Five items, duplicates and a bad one included, against a limit of four.
        assert_eq!(
            err(Verb::Set, &["prod", "10.0.0.1,10.0.0.1", "10.0.0.1,bad", "10.0.0.1"]),
            "ERR too many entries in one command: 5, the limit is 4 (whitelist.max-entries-per-group)"
        );
        assert_eq!(
            err(Verb::Add, &["Bad", "1,2,3,4,5", "FORCE"]),
            "ERR too many entries in one command: 5, the limit is 4 (whitelist.max-entries-per-group)"
        );
        assert_eq!(
            err(Verb::Remove, &["prod", "1,2,3,4,5"]),
            "ERR too many entries in one command: 5, the limit is 4 (whitelist.max-entries-per-group)"
        );
        // Keyword syntax comes first, the count second.
        assert_eq!(err(Verb::Set, &["prod", "1,2,3,4,5", "FORCE", "FORCE"]), "ERR syntax error: FORCE given twice");
        // At the limit, the items are parsed.
        assert_eq!(
            err(Verb::Set, &["prod", "10.0.0.1,10.0.0.2,10.0.0.3", "x"]),
            "ERR invalid whitelist entry 'x': not an IP address or CIDR block"
        );
        assert_eq!(
            err(Verb::Del, &["aa", "bb", "cc", "Bad", "force"]),
            "ERR too many groups in one command: 4, the limit is 3 (whitelist.max-groups)"
        );
        assert_eq!(err(Verb::Del, &["aa", "bb", "Bad"]), err(Verb::Del, &["Bad"]));
        // The primary's and the AOF's commands are not counted.
        let raw: Vec<&[u8]> = vec![b"prod", b"10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5"];
        assert!(matches!(parse(Verb::Set, &raw, None), Ok(Command::Set { entries, .. }) if entries.len() == 5));
        let raw: Vec<&[u8]> = vec![b"aa", b"bb", b"cc", b"dd"];
        assert!(parse(Verb::Del, &raw, None).is_ok());
    }

    #[test]
    fn an_import_is_counted_and_capped_from_clients_only() {
        let five = r#"{"groups":[{"name":"ab","entries":["10.0.0.1","10.0.0.1","10.0.0.1","10.0.0.1","x"]}]}"#;
        assert_eq!(
            err(Verb::Import, &[five]),
            "ERR too many entries in group 'ab' of the document: 5, the limit is 4 (whitelist.max-entries-per-group)"
        );
        // Keyword syntax first.
        assert_eq!(err(Verb::Import, &[five, "FORCE", "FORCE"]), "ERR syntax error: FORCE given twice");
        let raw: Vec<&[u8]> = vec![five.as_bytes()];
        assert_eq!(
            parse(Verb::Import, &raw, None).unwrap_err().to_string(),
            "ERR invalid whitelist document: group 'ab': invalid whitelist entry 'x': not an IP address or CIDR block"
        );
        let big = r#"{"groups":[],"version":9007199254740992}"#;
        assert_eq!(
            err(Verb::Import, &[big]),
            "ERR invalid whitelist document: \"version\" must be an integer from 0 to 9007199254740991"
        );
        let raw: Vec<&[u8]> = vec![big.as_bytes()];
        assert!(matches!(
            parse(Verb::Import, &raw, None),
            Ok(Command::Import { document: Document { version: 9_007_199_254_740_992, .. }, .. })
        ));
        assert!(matches!(
            run(Verb::Import, &[r#"{"groups":[],"version":9007199254740991}"#]),
            Ok(Command::Import { document: Document { version: 9_007_199_254_740_991, .. }, .. })
        ));
    }

    #[test]
    fn a_ttl_resolves_to_the_absolute_expiry_and_its_place_is_kept() {
        let Command::Add { note, .. } = run(Verb::Add, &["ab", "10.0.0.1", "COMMENT", "TTL", "TTL", "60"]).unwrap()
        else {
            panic!("not an ADD")
        };
        // COMMENT takes the next argument, even a keyword.
        assert_eq!(note.comment.as_deref(), Some("TTL"));
        assert_eq!(note.ttl_at, Some(4));
        let resolved = note.resolve(1_000, false).unwrap();
        assert_eq!(resolved.expiry, Expiry::At(1_060));
        // The primary's EXPIREAT is applied whatever it is; a client's must be ahead.
        let Command::Set { note, .. } = run(Verb::Set, &["ab", "10.0.0.1", "EXPIREAT", "500"]).unwrap() else {
            panic!("not a SET")
        };
        assert_eq!(note.resolve(1_000, true).unwrap().expiry, Expiry::At(500));
        assert_eq!(note.resolve(1_000, false).unwrap_err().to_string(), "ERR EXPIREAT must be in the future");
        assert_eq!(err(Verb::Add, &["ab", "10.0.0.1", "PERSIST", "PERSIST"]), "ERR syntax error: PERSIST given twice");
        assert_eq!(
            err(Verb::Remove, &["ab", "10.0.0.1", "COMMENT", "x"]),
            "ERR syntax error: unexpected argument 'COMMENT': entries come before FORCE"
        );
    }
}

//! Command argument parsing: argument bytes in, a validated [`Command`] out.
//!
//! Keywords (`ATTRIBUTE`, `FORCE`, `ALL`, `IFVERSION`) are case-insensitive.
//! Entries come first and may be comma-separated inside one argument; options
//! follow. The first bad argument, in argument order, is the one reported.

use std::fmt;

use crate::document::{parse_document, Document, DocumentError, MAX_VERSION};
use crate::entry::{parse_address, parse_entries, Addr, AddressError, Entry, EntryError};
use crate::name::{Attribute, GroupName, NameError};
use crate::shown::Shown;
use crate::store::LimitError;

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
}

impl Verb {
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
        /// Skip lock-out protection.
        force: bool,
    },
    /// `ADD group entries... [FORCE]`
    Add {
        /// The group.
        group: GroupName,
        /// Entries to add.
        entries: Vec<Entry>,
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
    /// `LIST [ALL]`
    List {
        /// Include hidden groups.
        all: bool,
    },
    /// `CHECK address`
    Check {
        /// The address to decide on.
        addr: Addr,
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
    /// A bad JSON document.
    Document(DocumentError),
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
            Error::Document(e) => write!(f, "ERR {e}"),
            Error::VersionMoved { current, expected } => {
                write!(f, "ERR whitelist version is {current}, not {expected} (IFVERSION): export it again and retry")
            }
        }
    }
}

impl std::error::Error for Error {}

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
        Error::Document(e)
    }
}

fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

fn syntax<T>(s: impl Into<String>) -> Result<T, Error> {
    Err(Error::Syntax(s.into()))
}

/// Parses the arguments of `verb` (the command name itself excluded).
pub fn parse(verb: Verb, args: &[&[u8]]) -> Result<Command, Error> {
    match verb {
        Verb::Set | Verb::Add | Verb::Remove => parse_entry_command(verb, args),
        Verb::Del => parse_del(args),
        Verb::Get => match args {
            [] => Ok(Command::Get { group: None }),
            [name] => Ok(Command::Get { group: Some(GroupName::parse(name)?) }),
            _ => Err(Error::WrongArity),
        },
        Verb::List => match args {
            [] => Ok(Command::List { all: false }),
            [all] if is(all, "all") => Ok(Command::List { all: true }),
            [other] => syntax(format!("unexpected argument '{}': WHITELIST.LIST takes only ALL", Shown::new(other))),
            _ => Err(Error::WrongArity),
        },
        Verb::Check => match args {
            [addr] => Ok(Command::Check { addr: parse_address(addr)? }),
            _ => Err(Error::WrongArity),
        },
        Verb::LoadClients => match args {
            [name] => Ok(Command::LoadClients { group: GroupName::parse(name)?, force: false }),
            [name, force] => {
                let group = GroupName::parse(name)?;
                if !is(force, "force") {
                    return syntax(format!(
                        "unexpected argument '{}': only FORCE may follow the group",
                        Shown::new(force)
                    ));
                }
                Ok(Command::LoadClients { group, force: true })
            }
            _ => Err(Error::WrongArity),
        },
        Verb::Help | Verb::Export => match args {
            [] if verb == Verb::Help => Ok(Command::Help),
            [] => Ok(Command::Export),
            _ => Err(Error::WrongArity),
        },
        Verb::Import => parse_import(args),
    }
}

fn parse_entry_command(verb: Verb, args: &[&[u8]]) -> Result<Command, Error> {
    let [name, rest @ ..] = args else {
        return Err(Error::WrongArity);
    };
    if rest.is_empty() {
        return Err(Error::WrongArity);
    }
    let group = GroupName::parse(name)?;
    let options_at = rest.iter().position(|a| is(a, "attribute") || is(a, "force")).unwrap_or(rest.len());
    let (entry_args, options) = rest.split_at(options_at);
    if entry_args.is_empty() {
        return syntax(format!("{} needs at least one entry before its options", verb.name()));
    }
    let entries = parse_entries(entry_args.iter().copied())?;
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
        } else {
            return syntax(format!(
                "unexpected argument '{}': entries come before ATTRIBUTE and FORCE",
                Shown::new(arg)
            ));
        }
    }
    Ok(match verb {
        Verb::Set => Command::Set { group, entries, attribute, force },
        Verb::Add => Command::Add { group, entries, force },
        _ => Command::Remove { group, entries, force },
    })
}

fn parse_del(args: &[&[u8]]) -> Result<Command, Error> {
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
    let groups = names.iter().map(|n| GroupName::parse(n)).collect::<Result<Vec<_>, _>>()?;
    Ok(Command::Del { groups, force })
}

fn parse_import(args: &[&[u8]]) -> Result<Command, Error> {
    let [doc, options @ ..] = args else {
        return Err(Error::WrongArity);
    };
    if options.len() > 3 {
        return Err(Error::WrongArity);
    }
    let document = parse_document(doc)?;
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

    fn run(verb: Verb, args: &[&str]) -> Result<Command, Error> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        parse(verb, &raw)
    }

    fn err(verb: Verb, args: &[&str]) -> String {
        run(verb, args).unwrap_err().to_string()
    }

    #[test]
    fn set_with_options_in_any_case() {
        let Command::Set { group, entries, attribute, force } =
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
            "ERR syntax error: unexpected argument '10.0.0.2': entries come before ATTRIBUTE and FORCE"
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
        // A bad entry is reported before a bad option that follows it.
        assert_eq!(
            err(Verb::Set, &["prod", "10.1.2.3/8", "FORCE", "FORCE"]),
            "ERR invalid whitelist entry '10.1.2.3/8': host bits set, did you mean 10.0.0.0/8?"
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
        assert_eq!(run(Verb::Get, &["aa", "bb"]), Err(Error::WrongArity));
        assert_eq!(run(Verb::List, &["All"]).unwrap(), Command::List { all: true });
        assert_eq!(
            err(Verb::List, &["some"]),
            "ERR syntax error: unexpected argument 'some': WHITELIST.LIST takes only ALL"
        );
        assert_eq!(run(Verb::List, &["all", "all"]), Err(Error::WrongArity));
        assert_eq!(run(Verb::Check, &["::ffff:10.0.0.1"]).unwrap(), Command::Check { addr: Addr::V4(0x0a00_0001) });
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
    fn loadclients() {
        assert!(matches!(run(Verb::LoadClients, &["aa", "FORCE"]).unwrap(), Command::LoadClients { force: true, .. }));
        assert!(matches!(run(Verb::LoadClients, &["aa"]).unwrap(), Command::LoadClients { force: false, .. }));
        assert_eq!(
            err(Verb::LoadClients, &["aa", "now"]),
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
        assert!(parse(Verb::Set, &raw).unwrap_err().to_string().starts_with("ERR invalid group name 'pr\\xffod'"));
        let raw: Vec<&[u8]> = vec![b"prod", b"10.0.0.1\x00"];
        assert_eq!(
            parse(Verb::Add, &raw).unwrap_err().to_string(),
            "ERR invalid whitelist entry '10.0.0.1\\x00': not an IP address or CIDR block"
        );
    }
}

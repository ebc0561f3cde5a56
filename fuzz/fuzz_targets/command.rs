//! Command argument parsing: `parse(Verb, &[&[u8]])`.
//!
//! Input: the verb's name without `WHITELIST.` (`SET`, `add`, ...), then the
//! arguments, all separated by the byte 0x1f (ASCII unit separator), so every
//! other byte, CR, LF and NUL included, can appear inside an argument.
//!
//! Properties beyond "no panic":
//! - an error (what the client gets as its reply) starts with "ERR ", holds no
//!   CR/LF and stays short whatever the argument lengths;
//! - a parsed command, written back as arguments in canonical form, parses to
//!   the same command.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whitelist_core::document::export;
use whitelist_core::{parse, Command, Verb, Whitelist};

const SEPARATOR: u8 = 0x1f;
/// An error reply repeats at most 64 bytes of one argument (4 characters each
/// when escaped) plus fixed text.
const MAX_ERROR: usize = 1024;

const VERBS: [Verb; 11] = [
    Verb::Set,
    Verb::Add,
    Verb::Remove,
    Verb::Del,
    Verb::Get,
    Verb::List,
    Verb::Check,
    Verb::LoadClients,
    Verb::Help,
    Verb::Export,
    Verb::Import,
];

fn verb(name: &[u8]) -> Option<Verb> {
    VERBS.into_iter().find(|v| v.name().as_bytes()["WHITELIST.".len()..].eq_ignore_ascii_case(name))
}

/// The command's arguments in canonical form.
fn render(command: &Command) -> Vec<Vec<u8>> {
    fn text(s: impl ToString) -> Vec<u8> {
        s.to_string().into_bytes()
    }
    let mut args = Vec::new();
    match command {
        Command::Set { group, entries, attribute, force } => {
            args.push(text(group));
            args.extend(entries.iter().map(text));
            if let Some(a) = attribute {
                args.push(text("ATTRIBUTE"));
                args.push(text(a.as_str()));
            }
            if *force {
                args.push(text("FORCE"));
            }
        }
        Command::Add { group, entries, force } | Command::Remove { group, entries, force } => {
            args.push(text(group));
            args.extend(entries.iter().map(text));
            if *force {
                args.push(text("FORCE"));
            }
        }
        Command::Del { groups, force } => {
            args.extend(groups.iter().map(text));
            if *force {
                args.push(text("FORCE"));
            }
        }
        Command::Get { group } => args.extend(group.iter().map(text)),
        Command::List { all } => {
            if *all {
                args.push(text("ALL"));
            }
        }
        Command::Check { addr } => args.push(text(addr)),
        Command::LoadClients { group, force } => {
            args.push(text(group));
            if *force {
                args.push(text("FORCE"));
            }
        }
        Command::Help | Command::Export => {}
        Command::Import { document, if_version, force } => {
            let w = Whitelist::restore(document.groups.clone(), document.version);
            args.push(text(export(&w)));
            if let Some(v) = if_version {
                args.push(text("IFVERSION"));
                args.push(text(v));
            }
            if *force {
                args.push(text("FORCE"));
            }
        }
    }
    args
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == SEPARATOR);
    let Some(verb) = parts.next().and_then(verb) else {
        return;
    };
    let args: Vec<&[u8]> = parts.collect();
    match parse(verb, &args, None) {
        Ok(command) => {
            if let Command::Set { entries, .. } | Command::Add { entries, .. } | Command::Remove { entries, .. } =
                &command
            {
                assert!(!entries.is_empty(), "{} accepted without entries", verb.name());
            }
            if let Command::Del { groups, .. } = &command {
                assert!(!groups.is_empty(), "DEL accepted without groups");
            }
            let canonical = render(&command);
            let canonical: Vec<&[u8]> = canonical.iter().map(Vec::as_slice).collect();
            match parse(verb, &canonical, None) {
                Ok(again) => assert_eq!(again, command, "the canonical arguments parse to another command"),
                Err(e) => panic!("the canonical arguments {canonical:?} are refused: {e}"),
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with("ERR "), "{text:?}");
            assert!(!text.contains(['\r', '\n']), "line break in the error reply {text:?}");
            assert!(text.len() <= MAX_ERROR, "an error reply of {} bytes", text.len());
        }
    }
});

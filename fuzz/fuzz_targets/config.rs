//! Config-line splitting and scanning: `settings::split_args`,
//! `settings::scan_config`, `settings::scan_command_line` and
//! `settings::problem` on arbitrary text (invalid UTF-8 replaced, as the
//! module reads `/proc/self/cmdline`).
//!
//! Properties beyond "no panic":
//! - what `split_args` returns, quoted back with `"..."` and escapes, splits to
//!   the same arguments;
//! - a scanned setting has a lower-case `whitelist.` name; an include has a path;
//! - `problem` (a server log line) holds no CR/LF and names the setting.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whitelist_core::settings::{problem, scan_command_line, scan_config, split_args, Given};

fn quote(arg: &str) -> String {
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn check_given(g: &Given) {
    assert!(g.name.starts_with("whitelist."), "{g:?}");
    assert_eq!(g.name, g.name.to_ascii_lowercase(), "{g:?}");
    if let Some(text) = problem(g) {
        assert!(!text.contains(['\r', '\n']), "line break in {text:?}");
        assert!(text.starts_with("invalid whitelist."), "{text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Some(args) = split_args(line) {
            let quoted: Vec<String> = args.iter().map(|a| quote(a)).collect();
            let line = quoted.join(" ");
            assert_eq!(split_args(&line).as_ref(), Some(&args), "quoted back as {line:?}");
        }
    }
    let (given, includes) = scan_config(&text);
    given.iter().for_each(check_given);
    assert!(includes.len() <= text.lines().count());
    let argv: Vec<String> = text.split('\0').map(str::to_owned).collect();
    scan_command_line(&argv).iter().for_each(check_given);
});

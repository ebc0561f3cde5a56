//! The `whitelist.*` settings a server is started with, read from its config
//! file and command line, so an invalid one can be named with its value
//! before Redis refuses it (Redis's own line names only the parameter).

/// One setting as given at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    /// The full name, e.g. `whitelist.mode`.
    pub name: String,
    /// The value as written.
    pub value: String,
}

/// Splits a config line into arguments the way Redis does: whitespace
/// separates, `"..."` takes `\n`, `\"`, `\xHH`-style escapes, `'...'` is
/// literal. `None` for unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Some(args);
        };
        let mut arg = String::new();
        match first {
            '"' => {
                chars.next();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            'n' => arg.push('\n'),
                            'r' => arg.push('\r'),
                            't' => arg.push('\t'),
                            'x' => {
                                let hex: String = [chars.next()?, chars.next()?].iter().collect();
                                arg.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
                            }
                            other => arg.push(other),
                        },
                        c => arg.push(c),
                    }
                }
            }
            '\'' => {
                chars.next();
                loop {
                    match chars.next()? {
                        '\'' => break,
                        '\\' if chars.peek() == Some(&'\'') => arg.push(chars.next()?),
                        c => arg.push(c),
                    }
                }
            }
            _ => {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    arg.push(c);
                }
            }
        }
        args.push(arg);
    }
}

/// The `whitelist.*` settings of a config text, in order, and the files it
/// includes (which Redis reads in place).
pub fn scan_config(text: &str) -> (Vec<Given>, Vec<String>) {
    let mut given = Vec::new();
    let mut includes = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(args) = split_args(line) else {
            continue;
        };
        match args.as_slice() {
            [key, path] if key.eq_ignore_ascii_case("include") => includes.push(path.clone()),
            [key, value, ..] if key.to_ascii_lowercase().starts_with("whitelist.") => {
                given.push(Given { name: key.to_ascii_lowercase(), value: value.clone() })
            }
            _ => {}
        }
    }
    (given, includes)
}

/// The `--whitelist.x value` options of a command line (after the config
/// file, as Redis appends them).
pub fn scan_command_line(args: &[String]) -> Vec<Given> {
    let mut given = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if let Some(name) = arg.strip_prefix("--").filter(|n| n.to_ascii_lowercase().starts_with("whitelist.")) {
            if let Some(value) = args.get(i + 1).filter(|v| !v.starts_with("--")) {
                given.push(Given { name: name.to_ascii_lowercase(), value: value.clone() });
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    given
}

/// What is wrong with a setting, naming the value and what is accepted;
/// `None` when it is valid (or not one of the module's).
pub fn problem(g: &Given) -> Option<String> {
    let v = g.value.as_str();
    let accepted = match g.name.as_str() {
        "whitelist.mode" => (!["enforce", "monitor", "off"].iter().any(|m| v.eq_ignore_ascii_case(m)))
            .then_some("enforce, monitor or off"),
        "whitelist.allow-loopback" | "whitelist.allow-unixsocket" => {
            (!v.eq_ignore_ascii_case("yes") && !v.eq_ignore_ascii_case("no")).then_some("yes or no")
        }
        "whitelist.max-groups" => {
            (!v.parse::<i64>().is_ok_and(|n| (1..=10_000).contains(&n))).then_some("a whole number from 1 to 10000")
        }
        "whitelist.max-entries-per-group" => (!v.parse::<i64>().is_ok_and(|n| (1..=1_000_000).contains(&n)))
            .then_some("a whole number from 1 to 1000000"),
        _ => Some("nothing: there is no such setting"),
    }?;
    Some(format!("invalid {} '{}': expected {accepted}", g.name.escape_debug(), v.escape_debug()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(name: &str, value: &str) -> Given {
        Given { name: name.into(), value: value.into() }
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(split_args("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_args(r#"whitelist.mode "mon itor""#).unwrap(), ["whitelist.mode", "mon itor"]);
        assert_eq!(split_args(r#"x "a\"b\x41""#).unwrap(), ["x", "a\"bA"]);
        assert_eq!(split_args("x 'it''s'").unwrap(), ["x", "it", "s"]);
        assert_eq!(split_args(r"x 'it\'s'").unwrap(), ["x", "it's"]);
        assert_eq!(split_args("x \"open"), None);
        assert_eq!(split_args("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn scans_config_text() {
        let text = "# comment\nport 6379\nwhitelist.mode banana\nWhitelist.Allow-Loopback no\ninclude /etc/redis/extra.conf\n  whitelist.max-groups \"5\"\n";
        let (found, includes) = scan_config(text);
        assert_eq!(
            found,
            [
                given("whitelist.mode", "banana"),
                given("whitelist.allow-loopback", "no"),
                given("whitelist.max-groups", "5")
            ]
        );
        assert_eq!(includes, ["/etc/redis/extra.conf"]);
    }

    #[test]
    fn scans_command_line() {
        let args: Vec<String> =
            ["redis-server", "/etc/r.conf", "--port", "1", "--whitelist.mode", "monitor", "--whitelist.x"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(scan_command_line(&args), [given("whitelist.mode", "monitor")]);
    }

    #[test]
    fn problems_name_value_and_accepted() {
        assert_eq!(problem(&given("whitelist.mode", "MONITOR")), None);
        assert_eq!(
            problem(&given("whitelist.mode", "banana")).unwrap(),
            "invalid whitelist.mode 'banana': expected enforce, monitor or off"
        );
        assert_eq!(
            problem(&given("whitelist.allow-loopback", "maybe")).unwrap(),
            "invalid whitelist.allow-loopback 'maybe': expected yes or no"
        );
        assert_eq!(problem(&given("whitelist.allow-unixsocket", "No")), None);
        assert_eq!(
            problem(&given("whitelist.max-groups", "0")).unwrap(),
            "invalid whitelist.max-groups '0': expected a whole number from 1 to 10000"
        );
        assert_eq!(problem(&given("whitelist.max-entries-per-group", "1000000")), None);
        assert_eq!(
            problem(&given("whitelist.max-entries-per-group", "1e6")).unwrap(),
            "invalid whitelist.max-entries-per-group '1e6': expected a whole number from 1 to 1000000"
        );
        assert_eq!(
            problem(&given("whitelist.nosuch", "1")).unwrap(),
            "invalid whitelist.nosuch '1': expected nothing: there is no such setting"
        );
    }
}

//! The `whitelist.*` settings: one table that describes each of them (name,
//! kind, default, whether it changes who is admitted), and the validation of
//! a value given for one, whose error names the setting, the value as given
//! and what is accepted. Redis's own texts for enum, bool and numeric configs
//! never name the value, so the module registers every setting as a string
//! config and validates it here.

use std::fmt;

/// The prefix Redis puts before every setting's name (the module's name).
pub const PREFIX: &str = "whitelist.";

/// How many bytes of an invalid value an error shows. Redis copies a config
/// error into a 256-byte buffer; the longest text must fit, escapes included.
const SHOWN_BYTES: usize = 32;

/// Which setting a row describes; the module maps each to where it keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `whitelist.mode`.
    Mode,
    /// `whitelist.allow-loopback`.
    AllowLoopback,
    /// `whitelist.allow-unixsocket`.
    AllowUnixsocket,
    /// `whitelist.max-groups`.
    MaxGroups,
    /// `whitelist.max-entries-per-group`.
    MaxEntriesPerGroup,
    /// `whitelist.when-empty`.
    WhenEmpty,
    /// `whitelist.denied-sources`.
    DeniedSources,
}

/// The values a setting accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One of these words, in any case.
    Choice(&'static [&'static str]),
    /// `yes` or `no`, in any case.
    Bool,
    /// A plain decimal integer in `min..=max`: digits only, no sign, no
    /// leading zero (as Redis's own numeric configs read them).
    Integer {
        /// The smallest value accepted.
        min: i64,
        /// The largest value accepted.
        max: i64,
    },
}

/// A valid value. Its `Display` is the canonical form, which `CONFIG GET`
/// shows, `CONFIG REWRITE` writes, and [`Setting::parse`] reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// One of the words of a [`Kind::Choice`], as the table spells it.
    Choice(&'static str),
    /// A [`Kind::Bool`] value.
    Bool(bool),
    /// A [`Kind::Integer`] value.
    Integer(i64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Choice(word) => f.write_str(word),
            Value::Bool(true) => f.write_str("yes"),
            Value::Bool(false) => f.write_str("no"),
            Value::Integer(n) => write!(f, "{n}"),
        }
    }
}

/// One setting: a row of [`SETTINGS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Which setting it is.
    pub key: Key,
    /// The name without [`PREFIX`], as the module registers it.
    pub name: &'static str,
    /// What it accepts.
    pub kind: Kind,
    /// Its value until one is given.
    pub default: Value,
    /// A change can admit or deny a connection that is already open, so the
    /// open connections are re-checked after it.
    pub rechecks: bool,
}

/// The modes of `whitelist.mode`.
pub const MODES: &[&str] = &["enforce", "monitor", "off"];

/// The choices of `whitelist.when-empty`.
pub const WHEN_EMPTY: &[&str] = &["allow", "deny"];

/// Every setting, in the order Redis registers them.
pub const SETTINGS: [Setting; 7] = [
    Setting {
        key: Key::Mode,
        name: "mode",
        kind: Kind::Choice(MODES),
        default: Value::Choice("enforce"),
        rechecks: true,
    },
    Setting {
        key: Key::AllowLoopback,
        name: "allow-loopback",
        kind: Kind::Bool,
        default: Value::Bool(true),
        rechecks: true,
    },
    Setting {
        key: Key::AllowUnixsocket,
        name: "allow-unixsocket",
        kind: Kind::Bool,
        default: Value::Bool(true),
        rechecks: true,
    },
    Setting {
        key: Key::MaxGroups,
        name: "max-groups",
        kind: Kind::Integer { min: 1, max: 10_000 },
        default: Value::Integer(100),
        rechecks: false,
    },
    Setting {
        key: Key::MaxEntriesPerGroup,
        name: "max-entries-per-group",
        kind: Kind::Integer { min: 1, max: 1_000_000 },
        default: Value::Integer(1000),
        rechecks: false,
    },
    Setting {
        key: Key::WhenEmpty,
        name: "when-empty",
        kind: Kind::Choice(WHEN_EMPTY),
        default: Value::Choice("allow"),
        rechecks: true,
    },
    Setting {
        key: Key::DeniedSources,
        name: "denied-sources",
        kind: Kind::Integer { min: 0, max: 10_000 },
        default: Value::Integer(128),
        rechecks: false,
    },
];

/// The row of `key`.
pub fn setting(key: Key) -> &'static Setting {
    // Every key has a row: the unit tests check it.
    SETTINGS.iter().find(|s| s.key == key).unwrap_or(&SETTINGS[0])
}

/// A value refused for a setting. Its `Display` is the whole error text, e.g.
/// `invalid whitelist.mode 'banana': expected enforce, monitor or off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    name: &'static str,
    shown: String,
    expected: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {PREFIX}{} '{}': expected {}", self.name, self.shown, self.expected)
    }
}

impl std::error::Error for Invalid {}

impl Setting {
    /// The name Redis knows it by, e.g. `whitelist.mode`.
    pub fn full_name(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }

    /// What it accepts, in words: `enforce, monitor or off`, `yes or no`,
    /// `an integer from 1 to 10000`.
    pub fn expected(&self) -> String {
        match self.kind {
            Kind::Choice(words) => match words {
                [] => String::from("nothing"),
                [only] => (*only).to_string(),
                [init @ .., last] => format!("{} or {last}", init.join(", ")),
            },
            Kind::Bool => String::from("yes or no"),
            Kind::Integer { min, max } => format!("an integer from {min} to {max}"),
        }
    }

    /// Reads a value given for this setting (bytes: a config value need not
    /// be UTF-8).
    pub fn parse(&self, given: &[u8]) -> Result<Value, Invalid> {
        let value = match self.kind {
            Kind::Choice(words) => {
                words.iter().find(|w| w.as_bytes().eq_ignore_ascii_case(given)).map(|w| Value::Choice(w))
            }
            Kind::Bool => {
                if given.eq_ignore_ascii_case(b"yes") {
                    Some(Value::Bool(true))
                } else if given.eq_ignore_ascii_case(b"no") {
                    Some(Value::Bool(false))
                } else {
                    None
                }
            }
            Kind::Integer { min, max } => plain_integer(given).filter(|n| (min..=max).contains(n)).map(Value::Integer),
        };
        value.ok_or_else(|| Invalid { name: self.name, shown: shown(given), expected: self.expected() })
    }
}

/// Digits only, no sign, no leading zero; `None` past `i64`.
fn plain_integer(given: &[u8]) -> Option<i64> {
    let plain = match given {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && given.iter().all(u8::is_ascii_digit),
    };
    if !plain {
        return None;
    }
    std::str::from_utf8(given).ok()?.parse().ok()
}

/// The value as an error shows it: printable ASCII as is, `'` and `\`
/// escaped, every other byte as `\xHH`, cut after [`SHOWN_BYTES`] bytes.
fn shown(given: &[u8]) -> String {
    let mut out = String::new();
    for &b in given.iter().take(SHOWN_BYTES) {
        match b {
            b'\'' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b' '..=b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if given.len() > SHOWN_BYTES {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(key: Key, given: &str) -> String {
        setting(key).parse(given.as_bytes()).unwrap_err().to_string()
    }

    fn ok(key: Key, given: &str) -> Value {
        setting(key).parse(given.as_bytes()).unwrap()
    }

    #[test]
    fn the_table_has_one_row_per_key_and_valid_defaults() {
        let keys = [
            Key::Mode,
            Key::AllowLoopback,
            Key::AllowUnixsocket,
            Key::MaxGroups,
            Key::MaxEntriesPerGroup,
            Key::WhenEmpty,
            Key::DeniedSources,
        ];
        assert_eq!(SETTINGS.len(), keys.len());
        for key in keys {
            assert_eq!(SETTINGS.iter().filter(|s| s.key == key).count(), 1, "{key:?}");
            assert_eq!(setting(key).key, key);
        }
        for s in &SETTINGS {
            assert_eq!(s.parse(s.default.to_string().as_bytes()), Ok(s.default), "{}", s.name);
            assert!(s.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{}", s.name);
        }
        let shown: Vec<String> = SETTINGS.iter().map(|s| format!("{} {}", s.full_name(), s.default)).collect();
        assert_eq!(
            shown,
            [
                "whitelist.mode enforce",
                "whitelist.allow-loopback yes",
                "whitelist.allow-unixsocket yes",
                "whitelist.max-groups 100",
                "whitelist.max-entries-per-group 1000",
                "whitelist.when-empty allow",
                "whitelist.denied-sources 128",
            ]
        );
    }

    #[test]
    fn choices_and_bools_ignore_case_and_show_canonically() {
        assert_eq!(ok(Key::Mode, "ENFORCE"), Value::Choice("enforce"));
        assert_eq!(ok(Key::Mode, "Monitor").to_string(), "monitor");
        assert_eq!(ok(Key::Mode, "oFF").to_string(), "off");
        assert_eq!(ok(Key::AllowLoopback, "Yes"), Value::Bool(true));
        assert_eq!(ok(Key::AllowUnixsocket, "NO").to_string(), "no");
        assert_eq!(ok(Key::MaxGroups, "10000"), Value::Integer(10_000));
        assert_eq!(ok(Key::MaxEntriesPerGroup, "1").to_string(), "1");
        assert_eq!(ok(Key::WhenEmpty, "DENY"), Value::Choice("deny"));
        assert_eq!(ok(Key::DeniedSources, "0"), Value::Integer(0));
        assert_eq!(ok(Key::DeniedSources, "10000"), Value::Integer(10_000));
    }

    #[test]
    fn errors_name_setting_value_and_what_is_accepted() {
        assert_eq!(error(Key::Mode, "banana"), "invalid whitelist.mode 'banana': expected enforce, monitor or off");
        assert_eq!(error(Key::Mode, ""), "invalid whitelist.mode '': expected enforce, monitor or off");
        assert_eq!(error(Key::Mode, " off"), "invalid whitelist.mode ' off': expected enforce, monitor or off");
        assert_eq!(error(Key::AllowLoopback, "maybe"), "invalid whitelist.allow-loopback 'maybe': expected yes or no");
        assert_eq!(error(Key::AllowUnixsocket, "1"), "invalid whitelist.allow-unixsocket '1': expected yes or no");
        assert_eq!(error(Key::MaxGroups, "0"), "invalid whitelist.max-groups '0': expected an integer from 1 to 10000");
        assert_eq!(
            error(Key::MaxEntriesPerGroup, "1000001"),
            "invalid whitelist.max-entries-per-group '1000001': expected an integer from 1 to 1000000"
        );
        assert_eq!(error(Key::WhenEmpty, "off"), "invalid whitelist.when-empty 'off': expected allow or deny");
        assert_eq!(
            error(Key::DeniedSources, "10001"),
            "invalid whitelist.denied-sources '10001': expected an integer from 0 to 10000"
        );
    }

    #[test]
    fn integers_are_plain_decimal() {
        for bad in ["", "-1", "+5", "05", "00", "1.5", "1e3", " 5", "5 ", "0x10", "abc", "99999999999999999999"] {
            assert_eq!(
                error(Key::MaxGroups, bad),
                format!("invalid whitelist.max-groups '{bad}': expected an integer from 1 to 10000"),
                "{bad:?}"
            );
        }
        let range = Setting { kind: Kind::Integer { min: 0, max: 10 }, ..SETTINGS[3] };
        assert_eq!(range.parse(b"0"), Ok(Value::Integer(0)));
        assert!(range.parse(b"-0").is_err());
        assert_eq!(range.expected(), "an integer from 0 to 10");
    }

    #[test]
    fn errors_escape_and_shorten_the_value() {
        assert_eq!(
            setting(Key::Mode).parse(b"a'b\\c\0\r\n\xc3\xb6").unwrap_err().to_string(),
            r"invalid whitelist.mode 'a\'b\\c\x00\x0d\x0a\xc3\xb6': expected enforce, monitor or off"
        );
        let long = "1".repeat(1 << 20);
        assert_eq!(
            error(Key::MaxGroups, &long),
            format!("invalid whitelist.max-groups '{}...': expected an integer from 1 to 10000", "1".repeat(32))
        );
        // The longest possible text fits Redis's 255 bytes.
        let worst = setting(Key::MaxEntriesPerGroup).parse(&[0xff; 64]).unwrap_err().to_string();
        assert!(worst.len() < 256, "{} bytes", worst.len());
    }

    #[test]
    fn expected_lists_every_choice() {
        let two = Setting { kind: Kind::Choice(&["allow", "deny"]), ..SETTINGS[0] };
        assert_eq!(two.expected(), "allow or deny");
        let one = Setting { kind: Kind::Choice(&["only"]), ..SETTINGS[0] };
        assert_eq!(one.expected(), "only");
    }

    proptest::proptest! {
        #[test]
        fn any_value_round_trips_or_is_named(index in 0..SETTINGS.len(), given in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let s = &SETTINGS[index];
            match s.parse(&given) {
                Ok(value) => {
                    let canonical = value.to_string();
                    proptest::prop_assert_eq!(s.parse(canonical.as_bytes()), Ok(value));
                    proptest::prop_assert!(canonical.as_bytes().eq_ignore_ascii_case(&given));
                }
                Err(e) => {
                    let text = e.to_string();
                    let prefix = format!("invalid {} '", s.full_name());
                    proptest::prop_assert!(text.starts_with(&prefix), "{}", text);
                    proptest::prop_assert!(text.ends_with(&format!("': expected {}", s.expected())), "{}", text);
                    proptest::prop_assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{}", text);
                    proptest::prop_assert!(text.len() < 256);
                }
            }
        }
    }
}

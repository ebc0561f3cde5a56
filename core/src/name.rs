//! Group names and group attributes.

use std::fmt;

use crate::shown::Shown;

/// Keywords that cannot be group names: they would make commands ambiguous.
pub const RESERVED: [&str; 3] = ["force", "attribute", "all"];

/// A valid group name: 2 to 32 characters of `a-z`, `0-9`, `_`, starting with a
/// letter and ending with a letter or digit, and not a reserved keyword.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GroupName(Box<str>);

/// A refused group name.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NameError {
    /// The name as the client gave it.
    pub name: Shown,
    /// `true` when the name is well formed but a reserved keyword.
    pub reserved: bool,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reserved {
            write!(f, "invalid group name '{}': reserved keyword", self.name)
        } else {
            write!(
                f,
                "invalid group name '{}': 2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit",
                self.name
            )
        }
    }
}

impl std::error::Error for NameError {}

impl GroupName {
    /// Validates `raw` as a group name.
    pub fn parse(raw: &[u8]) -> Result<GroupName, NameError> {
        let well_formed = (2..=32).contains(&raw.len())
            && raw[0].is_ascii_lowercase()
            && raw.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && raw[raw.len() - 1] != b'_';
        if !well_formed {
            return Err(NameError { name: Shown::new(raw), reserved: false });
        }
        // Only a-z, 0-9 and _ are left, so the bytes are ASCII and valid UTF-8.
        let text = String::from_utf8_lossy(raw);
        if RESERVED.contains(&text.as_ref()) {
            return Err(NameError { name: Shown::new(raw), reserved: true });
        }
        Ok(GroupName(text.into_owned().into_boxed_str()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `WHITELIST.GET` and `WHITELIST.LIST` show a group without being asked.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Attribute {
    /// Listed by `WHITELIST.GET` and `WHITELIST.LIST` (the default).
    #[default]
    Show,
    /// Left out unless asked for by name or with `LIST ALL`; for system groups
    /// a control plane manages.
    Hidden,
}

impl Attribute {
    /// Parses `show` or `hidden`, case-insensitively.
    pub fn parse(raw: &[u8]) -> Option<Attribute> {
        if raw.eq_ignore_ascii_case(b"show") {
            Some(Attribute::Show)
        } else if raw.eq_ignore_ascii_case(b"hidden") {
            Some(Attribute::Hidden)
        } else {
            None
        }
    }

    /// `show` or `hidden`.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Show => "show",
            Attribute::Hidden => "hidden",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "2-32 characters of a-z, 0-9, _; starts with a letter, ends with a letter or digit";

    #[test]
    fn valid_names() {
        for ok in ["ab", "a1", "default", "prod_eu_1", "a_b", &"a".repeat(32), "forced", "alls"] {
            assert_eq!(GroupName::parse(ok.as_bytes()).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn invalid_names() {
        for bad in ["a", "", "Prod", "1ab", "_ab", "ab_", "a-b", "a b", "ab\u{e9}", &"a".repeat(33)] {
            let e = GroupName::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(e.to_string(), format!("invalid group name '{}': {RULE}", Shown::new(bad.as_bytes())));
        }
        assert_eq!(GroupName::parse(b"Prod").unwrap_err().to_string(), format!("invalid group name 'Prod': {RULE}"));
        assert_eq!(GroupName::parse(b"a\0b").unwrap_err().to_string(), format!("invalid group name 'a\\x00b': {RULE}"));
    }

    #[test]
    fn reserved_keywords() {
        for kw in RESERVED {
            assert_eq!(
                GroupName::parse(kw.as_bytes()).unwrap_err().to_string(),
                format!("invalid group name '{kw}': reserved keyword")
            );
        }
        // Upper case keywords are not valid names anyway.
        assert!(!GroupName::parse(b"FORCE").unwrap_err().reserved);
    }

    #[test]
    fn attributes() {
        assert_eq!(Attribute::parse(b"SHOW"), Some(Attribute::Show));
        assert_eq!(Attribute::parse(b"Hidden"), Some(Attribute::Hidden));
        assert_eq!(Attribute::parse(b"hide"), None);
        assert_eq!(Attribute::Hidden.as_str(), "hidden");
    }
}

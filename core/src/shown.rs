//! Safe display of client-supplied bytes inside error replies and log lines.

use std::fmt;

/// How many bytes of a client argument an error message repeats.
const MAX_SHOWN: usize = 64;

/// Client-supplied bytes, shown as printable ASCII: other bytes become `\xNN`,
/// and anything after the first 64 bytes becomes `...`. Arguments are bytes,
/// not UTF-8, and may be a megabyte long; an error reply must stay one short line.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Shown(Vec<u8>);

impl Shown {
    /// Keeps the first bytes of `bytes` for display.
    pub fn new(bytes: &[u8]) -> Self {
        let mut kept = bytes[..bytes.len().min(MAX_SHOWN + 1)].to_vec();
        kept.shrink_to_fit();
        Shown(kept)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take(MAX_SHOWN) {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.0.len() > MAX_SHOWN {
            f.write_str("...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_is_kept() {
        assert_eq!(Shown::new(b"10.0.0.1/8").to_string(), "10.0.0.1/8");
    }

    #[test]
    fn control_and_non_ascii_bytes_are_escaped() {
        assert_eq!(Shown::new(b"a\0b\r\n\xff\\").to_string(), "a\\x00b\\x0d\\x0a\\xff\\x5c");
    }

    #[test]
    fn long_input_is_cut() {
        let long = vec![b'1'; 1_000_000];
        let shown = Shown::new(&long).to_string();
        assert_eq!(shown, format!("{}...", "1".repeat(64)));
        let exact = vec![b'2'; 64];
        assert_eq!(Shown::new(&exact).to_string(), "2".repeat(64));
    }
}

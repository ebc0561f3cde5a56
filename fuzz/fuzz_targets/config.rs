//! Config values: `Setting::parse` of every row of `settings::SETTINGS` on
//! arbitrary bytes (a `CONFIG SET` or start-up value need not be UTF-8). The
//! first byte picks the setting, the rest is the value.
//!
//! Properties beyond "no panic":
//! - a valid value's canonical text (what `CONFIG GET` shows and
//!   `CONFIG REWRITE` writes) reads back as the same value, and differs from
//!   the given bytes at most in case;
//! - an error (a `CONFIG SET` reply and a server log line) names the setting
//!   and what is accepted, holds printable ASCII only and fits the 255 bytes
//!   Redis keeps of it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whitelist_core::settings::SETTINGS;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, given)) = data.split_first() else {
        return;
    };
    let setting = &SETTINGS[usize::from(pick) % SETTINGS.len()];
    match setting.parse(given) {
        Ok(value) => {
            let canonical = value.to_string();
            assert_eq!(setting.parse(canonical.as_bytes()), Ok(value), "{canonical:?}");
            assert!(canonical.as_bytes().eq_ignore_ascii_case(given), "{canonical:?} from {given:?}");
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with(&format!("invalid {} '", setting.full_name())), "{text:?}");
            assert!(text.ends_with(&format!("': expected {}", setting.expected())), "{text:?}");
            assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}");
            assert!(text.len() < 256, "{} bytes", text.len());
        }
    }
});

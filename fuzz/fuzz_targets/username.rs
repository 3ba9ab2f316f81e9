//! `Username::parse` on any text: never panics, and what it accepts keeps
//! the contract's rules (NFC, 1-64 letters) and parses to itself again.
#![no_main]

use birthday_api::domain::{MAX_USERNAME_CHARS, Username};
use libfuzzer_sys::fuzz_target;
use unicode_normalization::is_nfc;

fuzz_target!(|raw: &str| {
    if let Ok(username) = Username::parse(raw) {
        let text = username.as_str();
        let chars = text.chars().count();
        assert!((1..=MAX_USERNAME_CHARS).contains(&chars), "{text:?}");
        assert!(text.chars().all(char::is_alphabetic), "{text:?}");
        assert!(is_nfc(text), "{text:?}");
        assert_eq!(Username::parse(text).ok().as_ref(), Some(&username));
    }
});

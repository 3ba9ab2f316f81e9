use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The longest username, counted in Unicode scalar values after NFC.
pub const MAX_USERNAME_CHARS: usize = 64;

/// A person's name as the service stores it: NFC-normalised, 1 to 64
/// characters, each one a Unicode `Alphabetic` letter. Case is significant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_USERNAME_CHARS} characters")]
    TooLong,
    #[error("contains a character that is not a letter")]
    NotALetter,
}

impl Username {
    /// Parses an already percent-decoded path segment.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        // NFC can shorten a string (combining marks fold into one letter) but
        // never makes one that is far too long valid, so refuse obviously
        // oversized input before normalising it: each NFC character comes
        // from at most a handful of input characters.
        if raw.len() > MAX_USERNAME_CHARS * 16 {
            return Err(UsernameError::TooLong);
        }
        // ASCII text is already in NFC, and nearly every name is ASCII.
        let normalised: String = if raw.is_ascii() {
            raw.to_owned()
        } else {
            raw.nfc().collect()
        };
        let chars = normalised.chars().count();
        if chars == 0 {
            return Err(UsernameError::Empty);
        }
        if chars > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong);
        }
        if !normalised.chars().all(char::is_alphabetic) {
            return Err(UsernameError::NotALetter);
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_ascii_and_unicode_letters() {
        for name in ["alice", "Alice", "Jürgen", "Zoë", "Мария", "李雷", "ǅemal"] {
            assert_eq!(Username::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn keeps_case() {
        assert_ne!(Username::parse("Alice"), Username::parse("alice"));
    }

    #[test]
    fn normalises_to_nfc() {
        let decomposed = "Zoe\u{0308}";
        let name = Username::parse(decomposed).unwrap();
        assert_eq!(name.as_str(), "Zo\u{00EB}");
        assert_eq!(name, Username::parse("Zoë").unwrap());
    }

    #[test]
    fn length_is_counted_in_characters_after_nfc() {
        assert!(Username::parse(&"ü".repeat(64)).is_ok());
        assert!(Username::parse(&"u\u{0308}".repeat(64)).is_ok());
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
    }

    #[test]
    fn rejects_everything_that_is_not_a_letter() {
        for name in [
            "alice1",
            "al ice",
            "al_ice",
            "al-ice",
            "al.ice",
            "a/b",
            "🎂",
            "alice!",
            "\u{0308}",
            "a\u{200B}b",
        ] {
            assert_eq!(
                Username::parse(name),
                Err(UsernameError::NotALetter),
                "{name:?}"
            );
        }
    }

    #[test]
    fn rejects_huge_input_without_normalising_it() {
        assert_eq!(
            Username::parse(&"a".repeat(100_000)),
            Err(UsernameError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_valid_names_are_stable(raw in "\\PC{0,80}") {
            if let Ok(name) = Username::parse(&raw) {
                let count = name.as_str().chars().count();
                prop_assert!((1..=MAX_USERNAME_CHARS).contains(&count));
                prop_assert!(name.as_str().chars().all(char::is_alphabetic));
                prop_assert_eq!(Username::parse(name.as_str()), Ok(name.clone()));
            }
        }

        #[test]
        fn ascii_is_already_nfc(raw in "[\\x00-\\x7F]{0,80}") {
            // What the ASCII fast path in `parse` relies on.
            prop_assert_eq!(raw.nfc().collect::<String>(), raw);
        }

        #[test]
        fn letters_only_names_up_to_64_are_accepted(raw in "[a-zA-Zà-öø-ÿА-я]{1,64}") {
            prop_assert!(Username::parse(&raw).is_ok());
        }
    }
}

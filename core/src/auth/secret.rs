//! Strings that must never reach a log line: bearer tokens here, and shared
//! secrets ([`Secret`], a configuration value, defined in `config::secret`
//! and re-exported here).
//!
//! [`Token`] holds its text privately; `Debug` and `Display` print only
//! `<redacted, N bytes>`, so `?token` in a `tracing` call or a derived
//! `Debug` of a struct holding one cannot leak it. Getting the text out
//! takes an explicit [`Token::expose`], which is easy to grep for.

use std::fmt;

use crate::config::secret::redacted;
pub use crate::config::secret::Secret;

/// A bearer token as the client sent it (percent-decoded when it came from
/// the query string).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(text: impl Into<String>) -> Token {
        Token(text.into())
    }

    /// The token text, for verification only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "Token", self.0.len())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "Token", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_text() {
        let token = Token::new("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2ln");
        for shown in [format!("{token:?}"), format!("{token}")] {
            assert_eq!(shown, "Token(<redacted, 42 bytes>)");
        }
        // Inside a derived Debug too.
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Token,
        }
        let shown = format!("{:?}", Holder { token });
        assert!(!shown.contains("eyJ"), "{shown}");
    }
}

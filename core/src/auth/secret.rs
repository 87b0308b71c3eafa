//! Strings that must never reach a log line: bearer tokens and shared
//! secrets.
//!
//! Both types hold their text privately; `Debug` and `Display` print only
//! `<redacted, N bytes>`, so `?token` in a `tracing` call, a derived `Debug`
//! of a struct holding one, or a `{:?}` of [`crate::config::ServerConfig`]
//! cannot leak them. Getting the text out takes an explicit
//! [`Token::expose`] / [`Secret::expose`], which is easy to grep for.

use std::fmt;

fn redacted(f: &mut fmt::Formatter<'_>, kind: &str, len: usize) -> fmt::Result {
    write!(f, "{kind}(<redacted, {len} bytes>)")
}

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

/// A configured shared secret (`auth.jwt_secret`). Empty means "not set".
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// What `ringcast profile show` prints instead of a secret. Reading it
    /// back as a secret is refused, so a rendered configuration can never
    /// silently start with this text as its key.
    pub const SHOWN_AS: &'static str = "<redacted>";

    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret's bytes, for building the verification key only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "Secret", self.0.len())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "Secret", self.0.len())
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
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted, 7 bytes>)");
        assert_eq!(format!("{secret}"), "Secret(<redacted, 7 bytes>)");
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

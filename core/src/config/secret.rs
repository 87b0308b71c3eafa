//! [`Secret`]: a configured shared secret (`auth.jwt_secret`), which never
//! prints its text.
//!
//! `Debug` and `Display` print only `Secret(<redacted, N bytes>)`, so a
//! `{:?}` of [`super::ServerConfig`] or a log line cannot leak it; getting
//! the text out takes an explicit [`Secret::expose`], which is easy to grep
//! for. `ringcast profile show` prints [`Secret::SHOWN_AS`] instead.

use std::fmt;

/// Writes `Kind(<redacted, N bytes>)`: how every secret-bearing type prints.
pub fn redacted(f: &mut fmt::Formatter<'_>, kind: &str, len: usize) -> fmt::Result {
    write!(f, "{kind}(<redacted, {len} bytes>)")
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
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted, 7 bytes>)");
        assert_eq!(format!("{secret}"), "Secret(<redacted, 7 bytes>)");
    }
}

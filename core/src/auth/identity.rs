//! Who a connection is and what it may do: the outcome of authentication,
//! kept by the connection for its whole life.
//!
//! An [`Identity`] is built once at the handshake (and replaced on a
//! successful `refresh`); the checks on it are plain functions of a channel
//! name and of `now_unix`, so the `/ws` command path reads no clock and takes
//! no lock to authorize.

use super::pattern::Patterns;

/// An authenticated (or, with `auth_mode = "none"`, anonymous) client.
///
/// Size: 96 bytes on 64-bit targets plus the heap of `user`, of `info`
/// and of the pattern lists (none at all for an anonymous identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub` claim; empty for an anonymous identity.
    pub user: String,
    /// The token's `exp` claim, in Unix seconds; `None` when the token has
    /// none (only possible with `auth.jwt_require_exp = false`) and for an
    /// anonymous identity.
    pub expires_at: Option<u64>,
    /// The token's `info` claim (a JSON object or string, as its raw JSON
    /// text): connection info shown in presence. The connection hands it to
    /// its hub when it joins ([`Identity::take_info`]), so an idle
    /// connection keeps no copy; a `refresh` does not change presence.
    pub info: Option<Box<str>>,
    /// Channels it may subscribe to.
    pub subs: Patterns,
    /// Channels it may publish to.
    pub pubs: Patterns,
    /// Seconds past `expires_at` the connection may still live: the
    /// verifier's leeway, so a token accepted inside the leeway does not
    /// get its connection closed at once.
    grace: u32,
}

impl Identity {
    /// An identity that may subscribe and publish everywhere and never
    /// expires: every connection's identity when authentication is off.
    pub fn anonymous() -> Identity {
        Identity {
            user: String::new(),
            expires_at: None,
            info: None,
            subs: Patterns::all(),
            pubs: Patterns::all(),
            grace: 0,
        }
    }

    /// An identity with the given grants; `grace` is the seconds past
    /// `expires_at` before [`Identity::is_expired`] turns true.
    pub fn new(
        user: impl Into<String>,
        expires_at: Option<u64>,
        subs: Patterns,
        pubs: Patterns,
        grace: u32,
    ) -> Identity {
        Identity {
            user: user.into(),
            expires_at,
            info: None,
            subs,
            pubs,
            grace,
        }
    }

    /// With the token's `info` claim (raw JSON text).
    pub fn with_info(mut self, info: Option<Box<str>>) -> Identity {
        self.info = info;
        self
    }

    /// Takes the `info` claim out (the hub keeps it from then on).
    pub fn take_info(&mut self) -> Option<Box<str>> {
        self.info.take()
    }

    /// Whether `subscribe` to `channel` is allowed (else the error reply
    /// `forbidden`). The channel must already be a valid name.
    pub fn can_subscribe(&self, channel: &str) -> bool {
        self.subs.matches(channel)
    }

    /// Whether `publish` to `channel` is allowed (else `forbidden`).
    pub fn can_publish(&self, channel: &str) -> bool {
        self.pubs.matches(channel)
    }

    /// When the server closes the connection unless it refreshes: `exp`
    /// plus the leeway, in Unix seconds. `None`: never.
    pub fn close_at(&self) -> Option<u64> {
        self.expires_at
            .map(|exp| exp.saturating_add(u64::from(self.grace)))
    }

    /// True once `now_unix` reached [`Identity::close_at`]: close the
    /// connection with [`super::TOKEN_EXPIRED`].
    pub fn is_expired(&self, now_unix: u64) -> bool {
        self.close_at().is_some_and(|at| now_unix >= at)
    }

    /// Seconds left before [`Identity::close_at`] (0 once expired), for
    /// arming the connection's expiry deadline. `None`: never expires.
    pub fn seconds_left(&self, now_unix: u64) -> Option<u64> {
        self.close_at().map(|at| at.saturating_sub(now_unix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_may_do_everything_forever() {
        let anon = Identity::anonymous();
        assert!(anon.can_subscribe("room:1") && anon.can_publish("x"));
        assert!(!anon.is_expired(u64::MAX));
        assert_eq!(anon.seconds_left(0), None);
        assert_eq!(anon.user, "");
    }

    #[test]
    fn expiry_counts_the_grace() {
        let id = Identity::new("42", Some(1_000), Patterns::none(), Patterns::none(), 30);
        assert_eq!(id.close_at(), Some(1_030));
        assert!(!id.is_expired(1_029));
        assert!(id.is_expired(1_030));
        assert_eq!(id.seconds_left(1_000), Some(30));
        assert_eq!(id.seconds_left(2_000), Some(0));
        assert!(!id.can_subscribe("room:1"));
        let far = Identity::new("x", Some(u64::MAX), Patterns::all(), Patterns::all(), 60);
        assert_eq!(far.close_at(), Some(u64::MAX));
    }

    #[test]
    fn an_identity_stays_small() {
        assert!(std::mem::size_of::<Identity>() <= 96);
        assert_eq!(std::mem::size_of::<Patterns>(), 16);
    }
}

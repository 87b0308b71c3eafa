//! Authentication and channel permissions: who a client is (a JWT checked at
//! the handshake) and which channels it may subscribe and publish to.
//!
//! Sans-IO: verification is a function of the token, the configured keys and
//! `now_unix` (seconds since the Unix epoch, read by the caller). The only IO
//! is reading the configured key file once, in [`Authenticator::from_config`]
//! at startup.
//!
//! The configuration arrives parsed ([`crate::config::AuthSection`]: the
//! mode, one [`KeySource`], the algorithms, the claim rules); building the
//! authenticator from it can fail only on the key file (unreadable, not a
//! usable key), with a typed [`AuthSetupError`] naming the key and the file.
//! The values and the pattern language are defined in `config` (below this
//! module) and re-exported here: [`AuthMode`], [`Secret`], [`pattern`].
//!
//! | file | what it owns |
//! | --- | --- |
//! | `mod.rs` | [`Authenticator`] (the entry point), the close code |
//! | `token.rs` | finding the token in `?token=` / `Authorization: Bearer` |
//! | `keys.rs` | keys (secret, PEM, JWKS) and the algorithms each may verify |
//! | `verify.rs` | signature and claim checks → [`Identity`] |
//! | `identity.rs` | [`Identity`]: user, expiry, `can_subscribe` / `can_publish` |
//! | `secret.rs` | [`Token`], which never prints its text |
//! | `error.rs` | [`AuthError`] (401 reasons), [`AuthSetupError`] (startup) |
//!
//! # Wiring (how the connection code uses this module)
//!
//! - **Startup** (`main.rs` / `server::start`): `Authenticator::from_config
//!   (&config.auth)` once; on `Err(e)` print `ringcast: {e}` and exit 2 like a bad
//!   profile. Log [`Authenticator::startup_warning`] at `warn` when it is
//!   `Some`. Share it as `Arc<Authenticator>` (it is `Send + Sync`, read-only).
//! - **Handshake** (`conn.rs` `route`, for `/ws` only, after the path and
//!   capacity checks and before `validate_upgrade`'s 101):
//!   `authenticator.authenticate(request.query.as_deref(),
//!   request.authorization.as_deref(), now_unix)`. `Err(e)` → 401 with
//!   `WWW-Authenticate: Bearer` and the body `e.reason()` (give
//!   `HandshakeError::Unauthorized` a `&'static str` reason, or add a
//!   variant); `Ok(identity)` goes with the endpoint into `WsConn::new`.
//! - **Commands** (`ws.rs`): before `hub.subscribe`, `if
//!   !identity.can_subscribe(channel)` reply error `forbidden`; before
//!   `hub.publish`, `can_publish`. `unsubscribe` and `info` need no check.
//!   `{"op":"refresh","token":"..."}` → `authenticator.refresh(&mut
//!   identity, token, now_unix)`: `Ok(exp)` replies `{"expires_at": exp}`
//!   (`null` when none) and re-arms the expiry deadline; `Err(e)` replies
//!   error `unauthorized` with message `e.reason()` and keeps the
//!   connection (its old token is still good until it expires).
//! - **Expiry**: arm a deadline at `identity.seconds_left(now_unix)` (or check
//!   `identity.is_expired(now_unix)` on the timer sweep, computing
//!   `now_unix` once per sweep); when due, close with [`TOKEN_EXPIRED`] and
//!   [`TOKEN_EXPIRED_REASON`].
//! - **Per-connection state**: one [`Identity`] (80 bytes + `sub` + grants;
//!   no heap at all when auth is off), inside the boxed `Open` so the slab
//!   entry does not grow.

pub mod error;
pub mod identity;
pub mod keys;
pub mod secret;
pub mod token;
pub mod verify;

#[cfg(test)]
mod tests;

pub use error::{AuthError, AuthSetupError};
pub use identity::Identity;
pub use keys::KeySet;
pub use secret::{Secret, Token};
pub use token::{extract_token, MAX_TOKEN_BYTES};
pub use verify::{Rules, Verifier};

use crate::config::auth::NEEDS_A_KEY;
pub use crate::config::auth::{AuthMode, KeySource};
pub use crate::config::pattern::{self, Patterns};
use crate::config::AuthSection;
use crate::proto::close::CloseCode;

/// Close code for a connection whose token expired without a `refresh`: the
/// client should get a new token and reconnect (then resume with `since`).
/// In the 4000-4999 private-use range (RFC 6455 §7.4.2).
pub const TOKEN_EXPIRED: CloseCode = CloseCode(4001);
/// Close reason sent with [`TOKEN_EXPIRED`].
pub const TOKEN_EXPIRED_REASON: &str = "token expired";

/// Logged at `warn` at startup when authentication is off.
pub const DISABLED_WARNING: &str = "authentication is off (auth.auth_mode = \"none\"): every \
     client may subscribe and publish to every channel; set auth.auth_mode = \"jwt\" before \
     exposing this server";

/// The server's authentication, built once at startup.
#[derive(Debug)]
pub enum Authenticator {
    /// `auth_mode = "none"`.
    Disabled,
    Jwt(Verifier),
}

impl Authenticator {
    /// Builds the authenticator of a validated `[auth]` section, reading the
    /// configured key file (the only IO of this module).
    pub fn from_config(config: &AuthSection) -> Result<Authenticator, AuthSetupError> {
        if config.mode == AuthMode::None {
            return Ok(Authenticator::Disabled);
        }
        let allowed = &config.algorithms;
        let read = |key: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                AuthSetupError::new(key, format!("cannot read {}: {e}", path.display()))
            })
        };
        let key = config.key.key().unwrap_or("auth.auth_mode");
        let set = match &config.key {
            KeySource::Secret(secret) => KeySet::from_secret(secret.expose().as_bytes(), allowed),
            KeySource::SecretFile(path) => {
                let bytes = read(key, path)?;
                KeySet::from_secret(strip_line_end(&bytes), allowed)
            }
            KeySource::PemFile(path) => KeySet::from_pem(&read(key, path)?, allowed),
            KeySource::JwksFile(path) => KeySet::from_jwks(&read(key, path)?, allowed),
            // `validate` refuses this; a configuration built by hand may not
            // have been validated.
            KeySource::None => return Err(AuthSetupError::new(key, NEEDS_A_KEY)),
        };
        let keys = set.map_err(|reason| AuthSetupError::new(key, reason))?;
        Ok(Authenticator::Jwt(Verifier::new(keys, rules_of(config))))
    }

    /// The warning to log at startup, if any.
    pub fn startup_warning(&self) -> Option<&'static str> {
        match self {
            Authenticator::Disabled => Some(DISABLED_WARNING),
            Authenticator::Jwt(_) => None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        matches!(self, Authenticator::Jwt(_))
    }

    /// Authenticates a handshake from its raw query and `Authorization`
    /// header. With auth off, every request is [`Identity::anonymous`] and
    /// any token is ignored.
    pub fn authenticate(
        &self,
        query: Option<&str>,
        authorization: Option<&str>,
        now_unix: u64,
    ) -> Result<Identity, AuthError> {
        match self {
            Authenticator::Disabled => Ok(Identity::anonymous()),
            Authenticator::Jwt(verifier) => {
                let token = extract_token(query, authorization)?;
                verifier.verify(token.expose(), now_unix)
            }
        }
    }

    /// The `refresh` command: verifies `token` as at the handshake, requires
    /// the same `sub`, and on success replaces `identity` (new expiry and new
    /// grants; subscriptions already made are kept) and returns the new
    /// `exp`. On error `identity` is unchanged. A connection whose token
    /// already expired cannot refresh ([`AuthError::Expired`]): it is being
    /// closed. With auth off, a no-op returning `Ok(None)`.
    pub fn refresh(
        &self,
        identity: &mut Identity,
        token: &str,
        now_unix: u64,
    ) -> Result<Option<u64>, AuthError> {
        let Authenticator::Jwt(verifier) = self else {
            return Ok(identity.expires_at);
        };
        if identity.is_expired(now_unix) {
            return Err(AuthError::Expired);
        }
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        let fresh = verifier.verify(token, now_unix)?;
        if fresh.user != identity.user {
            return Err(AuthError::SubjectChanged);
        }
        *identity = fresh;
        Ok(identity.expires_at)
    }
}

/// The claim rules of an `[auth]` section.
pub fn rules_of(config: &AuthSection) -> Rules {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Rules {
        issuer: nonempty(&config.issuer),
        audience: nonempty(&config.audience),
        leeway: u32::try_from(config.leeway.as_secs()).unwrap_or(u32::MAX),
        require_exp: config.require_exp,
        default_subs: config.default_subs.clone(),
        default_pubs: config.default_pubs.clone(),
        info_claim: nonempty(&config.info_claim),
    }
}

/// A secret file's content without its final line end (`echo secret > f`
/// writes one; it is never part of the secret).
fn strip_line_end(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

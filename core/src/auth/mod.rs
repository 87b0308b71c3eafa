//! Authentication and channel permissions: who a client is (a JWT checked at
//! the handshake) and which channels it may subscribe and publish to.
//!
//! Sans-IO: verification is a function of the token, the configured keys and
//! `now_unix` (seconds since the Unix epoch, read by the caller). The only IO
//! is reading the configured key file once, in [`Authenticator::from_config`]
//! at startup.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `mod.rs` | [`AuthMode`], [`Authenticator`] (the entry point), the close code |
//! | `token.rs` | finding the token in `?token=` / `Authorization: Bearer` |
//! | `keys.rs` | keys (secret, PEM, JWKS) and the algorithms each may verify |
//! | `verify.rs` | signature and claim checks → [`Identity`] |
//! | `identity.rs` | [`Identity`]: user, expiry, `can_subscribe` / `can_publish` |
//! | `pattern.rs` | the channel pattern language of `subs` / `pubs` |
//! | `secret.rs` | [`Token`] and [`Secret`], which never print their text |
//! | `error.rs` | [`AuthError`] (401 reasons), [`AuthSetupError`] (startup) |
//!
//! # Wiring (how the connection code uses this module)
//!
//! - **Startup** (`main.rs` / `server::start`): `Authenticator::from_config
//!   (&config)` once; on `Err(e)` print `ringcast: {e}` and exit 2 like a bad
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
pub mod pattern;
pub mod secret;
pub mod token;
pub mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use error::{AuthError, AuthSetupError};
pub use identity::Identity;
pub use keys::KeySet;
pub use pattern::Patterns;
pub use secret::{Secret, Token};
pub use token::{extract_token, MAX_TOKEN_BYTES};
pub use verify::{Rules, Verifier};

use crate::config::ServerConfig;
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

/// `auth.auth_mode`: whether clients must present a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No authentication: every connection is [`Identity::anonymous`], allowed
    /// everything. For development; the server warns at startup.
    #[default]
    None,
    /// A signed JWT is required at the handshake.
    Jwt,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Jwt => "jwt",
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(AuthMode::None),
            "jwt" => Ok(AuthMode::Jwt),
            other => Err(format!("{other:?} is not one of none, jwt")),
        }
    }
}

/// The server's authentication, built once at startup.
#[derive(Debug)]
pub enum Authenticator {
    /// `auth_mode = "none"`.
    Disabled,
    Jwt(Verifier),
}

impl Authenticator {
    /// Builds the authenticator of a validated configuration, reading the
    /// configured key file (the only IO of this module).
    pub fn from_config(config: &ServerConfig) -> Result<Authenticator, AuthSetupError> {
        if config.auth_mode == AuthMode::None {
            return Ok(Authenticator::Disabled);
        }
        let allowed = keys::parse_algorithms(&config.jwt_algorithms)
            .map_err(|reason| AuthSetupError::new("jwt_algorithms", reason))?;
        let read = |key: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                AuthSetupError::new(key, format!("cannot read {}: {e}", path.display()))
            })
        };
        let (key, set) = if !config.jwt_secret.is_empty() {
            let secret = config.jwt_secret.expose().as_bytes();
            ("jwt_secret", KeySet::from_secret(secret, &allowed))
        } else if !config.jwt_secret_file.as_os_str().is_empty() {
            let bytes = read("jwt_secret_file", &config.jwt_secret_file)?;
            let secret = strip_line_end(&bytes);
            ("jwt_secret_file", KeySet::from_secret(secret, &allowed))
        } else if !config.jwt_pem_file.as_os_str().is_empty() {
            let bytes = read("jwt_pem_file", &config.jwt_pem_file)?;
            ("jwt_pem_file", KeySet::from_pem(&bytes, &allowed))
        } else if !config.jwt_jwks_file.as_os_str().is_empty() {
            let bytes = read("jwt_jwks_file", &config.jwt_jwks_file)?;
            ("jwt_jwks_file", KeySet::from_jwks(&bytes, &allowed))
        } else {
            return Err(AuthSetupError::new(
                "auth_mode",
                "\"jwt\" needs a key: set auth.jwt_secret, jwt_secret_file, jwt_pem_file \
                 or jwt_jwks_file",
            ));
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

/// The claim rules of a configuration.
pub fn rules_of(config: &ServerConfig) -> Rules {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Rules {
        issuer: nonempty(&config.jwt_issuer),
        audience: nonempty(&config.jwt_audience),
        leeway: u32::try_from(config.jwt_leeway.as_secs()).unwrap_or(u32::MAX),
        require_exp: config.jwt_require_exp,
        default_subs: config.jwt_default_subs.clone(),
        default_pubs: config.jwt_default_pubs.clone(),
    }
}

/// A secret file's content without its final line end (`echo secret > f`
/// writes one; it is never part of the secret).
fn strip_line_end(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

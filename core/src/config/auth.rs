//! The `[auth]` table: whether clients must present a JWT, where the key
//! that verifies it comes from, and the claim rules. Values arrive parsed:
//! the algorithm names as [`Algorithm`]s, the key source as one
//! [`KeySource`] (a second source is refused when it is set), the default
//! grants checked against the channel pattern language.
//!
//! `auth::Authenticator::from_config` builds the verifier from this section;
//! its only fallible step left is reading a key file at startup.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::secret::Secret;
use super::{refuse, show_duration, ConfigError};

/// `auth.auth_mode`: whether clients must present a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No authentication: every connection is anonymous and allowed
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

/// Where the verification key comes from: at most one of the keys
/// `auth.jwt_secret`, `jwt_secret_file`, `jwt_pem_file`, `jwt_jwks_file`.
/// Setting one of them to `""` unsets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeySource {
    /// No key configured (refused with `auth_mode = "jwt"`).
    #[default]
    None,
    /// `auth.jwt_secret`: a shared secret, inline (its bytes as written).
    Secret(Secret),
    /// `auth.jwt_secret_file`: a file holding the shared secret (one
    /// trailing newline is ignored).
    SecretFile(PathBuf),
    /// `auth.jwt_pem_file`: the PEM public key.
    PemFile(PathBuf),
    /// `auth.jwt_jwks_file`: a JWKS document.
    JwksFile(PathBuf),
}

/// The keys of the four sources, in key-table order.
pub const KEY_SOURCE_KEYS: [&str; 4] = [
    "auth.jwt_secret",
    "auth.jwt_secret_file",
    "auth.jwt_pem_file",
    "auth.jwt_jwks_file",
];

impl KeySource {
    /// The key that set this source (`None` when none is set).
    pub fn key(&self) -> Option<&'static str> {
        let index = match self {
            KeySource::None => return None,
            KeySource::Secret(_) => 0,
            KeySource::SecretFile(_) => 1,
            KeySource::PemFile(_) => 2,
            KeySource::JwksFile(_) => 3,
        };
        Some(KEY_SOURCE_KEYS[index])
    }

    /// Applies the value of one source key: an empty value unsets that key
    /// (and leaves another key's source alone); a value for a second key
    /// while another is set is refused, naming both.
    pub fn set(&mut self, key: &'static str, value: KeySource) -> Result<(), String> {
        match (self.key(), value.key()) {
            (Some(current), None) if current == key => *self = KeySource::None,
            (_, None) => {}
            (Some(current), Some(_)) if current != key => {
                let mut both = [current, key];
                both.sort_by_key(|k| KEY_SOURCE_KEYS.iter().position(|s| s == k));
                return Err(format!(
                    "set only one key source: {} and {} are both set",
                    both[0], both[1]
                ));
            }
            _ => *self = value,
        }
        Ok(())
    }
}

/// `[auth]` (read by `auth::Authenticator::from_config`). The TOML keys keep
/// their prefixes: `auth.auth_mode` is `mode`, `auth.jwt_issuer` is
/// `issuer`, and the four `jwt_*` key sources together are `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSection {
    /// `"none"`: no authentication, every client may do everything (the
    /// server warns at startup); `"jwt"`: a signed JWT is required at the
    /// handshake. Default `"none"`.
    pub mode: AuthMode,
    /// The verification key's source: a shared secret inline (at least 32
    /// bytes; shown as `"<redacted>"` by `profile show`; prefer the file) or
    /// in a file, a PEM public key (RSA of 2048 bits or more, EC
    /// P-256/P-384 or Ed25519), or a JWKS file (a token's `kid` selects its
    /// key). Exactly one is set in `jwt` mode; files are read at startup
    /// only. Default none.
    pub key: KeySource,
    /// `auth.jwt_algorithms`: algorithms accepted, e.g. `["RS256"]`. Empty =
    /// every algorithm the configured key can verify (never more: the key
    /// type decides, not the token). `none` is refused. Default empty.
    pub algorithms: Vec<Algorithm>,
    /// The `iss` every token must carry. Empty = not checked. Default empty.
    pub issuer: String,
    /// A value the token's `aud` must list. Empty = tokens must carry no
    /// `aud`. Default empty.
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf` (whole seconds, at most 5 min).
    /// Default 30 s.
    pub leeway: Duration,
    /// Refuse tokens without `exp`. Default true.
    pub require_exp: bool,
    /// Channel patterns a token without a `subs` claim may subscribe to
    /// (`config::pattern`: exact, trailing `*`, `{sub}`), checked at load.
    /// Default empty: none.
    pub default_subs: Vec<String>,
    /// Channel patterns a token without a `pubs` claim may publish to.
    /// Default empty: none.
    pub default_pubs: Vec<String>,
    /// `auth.jwt_info_claim`: the claim (a JSON object or string) presence
    /// shows as a connection's info, capped by
    /// `pubsub.max_presence_info_bytes`. Empty = none. Default `"info"`.
    pub info_claim: String,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            key: KeySource::None,
            algorithms: Vec::new(),
            issuer: String::new(),
            audience: String::new(),
            leeway: Duration::from_secs(30),
            require_exp: true,
            default_subs: Vec::new(),
            default_pubs: Vec::new(),
            info_claim: "info".into(),
        }
    }
}

impl AuthSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if READ_CLAIMS.contains(&self.info_claim.as_str()) {
            return refuse(
                "auth.jwt_info_claim",
                format!(
                    "{:?} is a claim the server reads for itself ({})",
                    self.info_claim,
                    READ_CLAIMS.join(", ")
                ),
            );
        }
        if self.leeway > Duration::from_secs(300) {
            return refuse(
                "auth.jwt_leeway",
                format!("{} is more than 5m", show_duration(self.leeway)),
            );
        }
        if self.mode == AuthMode::Jwt {
            match &self.key {
                KeySource::None => {
                    return refuse("auth.auth_mode", NEEDS_A_KEY);
                }
                // The inline secret can be checked now; files are read at startup.
                KeySource::Secret(secret) => {
                    if let Err(reason) = check_secret(secret.expose().len(), &self.algorithms) {
                        return refuse("auth.jwt_secret", reason);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The claims the server reads for authentication and grants: none of
/// them can be the connection-info claim.
const READ_CLAIMS: [&str; 7] = ["sub", "exp", "nbf", "iss", "aud", "subs", "pubs"];

/// Why `auth_mode = "jwt"` without a key source is refused.
pub const NEEDS_A_KEY: &str = "\"jwt\" needs a key: set auth.jwt_secret, jwt_secret_file, \
                               jwt_pem_file or jwt_jwks_file";

/// Every algorithm this server can verify, in the order they are listed.
pub const KNOWN_ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Parses an algorithm name as it appears in a token header or in
/// `auth.jwt_algorithms` (exact JOSE spelling: `HS256`, `EdDSA`, ...).
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    Algorithm::from_str(name).ok()
}

/// Parses `auth.jwt_algorithms`; the error says which name is wrong and why.
pub fn parse_algorithms<S: AsRef<str>>(names: &[S]) -> Result<Vec<Algorithm>, String> {
    names
        .iter()
        .map(|name| {
            let name = name.as_ref();
            if name.eq_ignore_ascii_case("none") {
                return Err("\"none\" is never accepted: tokens must be signed".to_string());
            }
            parse_algorithm(name).ok_or_else(|| {
                let known: Vec<String> =
                    KNOWN_ALGORITHMS.iter().map(|a| format!("{a:?}")).collect();
                format!("unknown algorithm {name:?} (known: {})", known.join(", "))
            })
        })
        .collect()
}

/// Shortest shared secret, in bytes, for an HMAC algorithm (RFC 7518 §3.2).
pub fn hmac_min_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Whether a shared secret of `len` bytes can verify every algorithm in
/// `allowed` (empty: whichever HS algorithms it is long enough for).
pub fn check_secret(len: usize, allowed: &[Algorithm]) -> Result<(), String> {
    if len < 32 {
        return Err(format!(
            "a shared secret must be at least 32 bytes (RFC 7518 §3.2); this one has {len}"
        ));
    }
    for alg in allowed {
        if alg.family() != AlgorithmFamily::Hmac {
            return Err(format!(
                "{alg:?} needs a public key: a shared secret verifies only HS256, HS384, HS512"
            ));
        }
        if len < hmac_min_len(*alg) {
            return Err(format!(
                "{alg:?} needs a secret of at least {} bytes; this one has {len}",
                hmac_min_len(*alg)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_source_at_most_and_empty_unsets() {
        let mut key = KeySource::None;
        key.set("auth.jwt_pem_file", KeySource::PemFile("/k.pem".into()))
            .expect("first source");
        key.set("auth.jwt_pem_file", KeySource::PemFile("/j.pem".into()))
            .expect("same key again");
        assert_eq!(key, KeySource::PemFile("/j.pem".into()));
        key.set("auth.jwt_secret", KeySource::None)
            .expect("unsetting another key");
        assert_eq!(key.key(), Some("auth.jwt_pem_file"));
        let err = key
            .set("auth.jwt_secret_file", KeySource::SecretFile("/s".into()))
            .expect_err("a second source");
        assert_eq!(
            err,
            "set only one key source: auth.jwt_secret_file and auth.jwt_pem_file are both set"
        );
        key.set("auth.jwt_pem_file", KeySource::None)
            .expect("unsets");
        assert_eq!(key, KeySource::None);
    }

    #[test]
    fn algorithm_names_are_exact_and_none_is_refused() {
        assert_eq!(
            parse_algorithms(&["RS256", "EdDSA"]),
            Ok(vec![Algorithm::RS256, Algorithm::EdDSA])
        );
        assert!(parse_algorithms(&["none"])
            .expect_err("none")
            .contains("never accepted"));
        let err = parse_algorithms(&["HS257"]).expect_err("unknown");
        assert!(err.contains("known: HS256, HS384"), "{err}");
    }

    #[test]
    fn a_secret_must_fit_its_algorithms() {
        assert!(check_secret(31, &[]).is_err());
        assert_eq!(check_secret(32, &[]), Ok(()));
        assert!(check_secret(32, &[Algorithm::HS384]).is_err());
        assert_eq!(check_secret(48, &[Algorithm::HS384]), Ok(()));
        assert!(check_secret(64, &[Algorithm::RS256])
            .expect_err("not HMAC")
            .contains("needs a public key"));
    }
}

//! JWT verification: from a compact JWS (`header.payload.signature`) and the
//! current time to an [`Identity`], or the one rule the token broke.
//!
//! The order of the checks is fixed, and the first failure wins:
//!
//! 1. shape: at most [`MAX_TOKEN_BYTES`], three base64url parts, a JSON
//!    object header with a string `alg` → "malformed token";
//! 2. header: a `crit` member → "unsupported critical header";
//! 3. `alg`: `none`, unknown, or not allowed for the selected key →
//!    "unsupported algorithm"; the key is chosen by `kid` → "unknown key id";
//! 4. signature → "bad signature";
//! 5. claims, read strictly: `exp`/`nbf` must be numbers, `sub`/`iss` strings,
//!    `aud` a string or a list of strings, `subs`/`pubs` lists of valid
//!    patterns, the connection-info claim (`auth.jwt_info_claim`, default
//!    `info`, shown in presence) an object or a string; a present claim of the wrong type (even `null`) is "invalid
//!    claims", never "absent" (the type confusion of CVE-2026-25537);
//! 6. time, with the leeway: `exp` → "token expired" (or "token has no
//!    expiry" when one is required), `nbf` → "token not yet valid";
//! 7. `iss` against `auth.jwt_issuer`, `aud` against `auth.jwt_audience`.
//!
//! Nothing is checked before the signature that an attacker could learn
//! from; nothing after it runs on unauthenticated data. `jsonwebtoken`
//! provides only the signature primitive ([`jsonwebtoken::crypto::verify`]);
//! its own claim validation is not used because it reads the system clock,
//! and this module reads none: the time comes in as `now_unix`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{self, DeserializeOwned, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::AuthError;
use super::identity::Identity;
use super::keys::{parse_algorithm, KeySet};
use super::pattern::Patterns;
use super::token::MAX_TOKEN_BYTES;

/// Longest `sub` accepted, in bytes: it is copied into every `{sub}`
/// pattern, so it bounds the memory a token's grants take.
pub const MAX_SUB_BYTES: usize = 256;

/// The claim rules, from the `[auth]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// `auth.jwt_issuer`: the `iss` every token must carry. `None`: not checked.
    pub issuer: Option<String>,
    /// `auth.jwt_audience`: a value the token's `aud` must list. `None`:
    /// tokens must carry no `aud` at all (RFC 7519 §4.1.3).
    pub audience: Option<String>,
    /// `auth.jwt_leeway`, in seconds: clock skew allowed on `exp` and `nbf`.
    pub leeway: u32,
    /// `auth.jwt_require_exp`: refuse tokens without `exp`.
    pub require_exp: bool,
    /// `auth.jwt_default_subs` / `jwt_default_pubs`: the grants of a token
    /// without a `subs` / `pubs` claim (a present but empty list grants
    /// nothing). Validated when the configuration is.
    pub default_subs: Vec<String>,
    pub default_pubs: Vec<String>,
    /// `auth.jwt_info_claim`: the claim presence shows as the connection's
    /// info (a JSON object or string). `None`: no claim is read for it.
    pub info_claim: Option<String>,
}

/// Verifies tokens against one [`KeySet`] and one set of [`Rules`].
/// Shared read-only by every worker (`Sync`); verifying allocates only the
/// decoded parts and the resulting [`Identity`].
#[derive(Debug)]
pub struct Verifier {
    keys: KeySet,
    rules: Rules,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(aud) => aud == wanted,
            Audience::Many(list) => list.iter().any(|aud| aud == wanted),
        }
    }
}

/// The claims this server reads; others (`iat`, `jti`, ...) are ignored.
/// Every field is `None` only when the claim is absent: a present claim is
/// parsed as its type or the token is refused.
#[derive(Deserialize)]
struct Claims {
    #[serde(default, deserialize_with = "present")]
    sub: Option<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    iss: Option<String>,
    #[serde(default, deserialize_with = "present")]
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "present")]
    subs: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pubs: Option<Vec<String>>,
}

/// The claims again, each kept as its JSON text: where the connection-info
/// claim (its name is configured) is found.
type RawClaims<'a> = std::collections::HashMap<String, &'a serde_json::value::RawValue>;

/// A present claim must have its type: `null` is not "absent".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number of seconds,
/// fractions truncated. Strings, `null` and negative numbers are refused.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Seconds;
    impl Visitor<'_> for Seconds {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative number of seconds")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("negative date"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v.is_finite() && v >= 0.0 {
                // Saturates at u64::MAX for absurdly large values.
                Ok(v as u64)
            } else {
                Err(E::custom("negative or non-finite date"))
            }
        }
    }
    d.deserialize_any(Seconds).map(Some)
}

fn decode_part<T: DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Verifier {
    pub fn new(keys: KeySet, rules: Rules) -> Verifier {
        Verifier { keys, rules }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies `token` at `now_unix` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let head: Header = decode_part(header).ok_or(AuthError::Malformed)?;
        if head.crit.is_some() {
            return Err(AuthError::UnsupportedHeader);
        }
        let alg = parse_algorithm(&head.alg).ok_or(AuthError::UnsupportedAlgorithm)?;
        let key = self.keys.select(head.kid.as_deref())?;
        // The key decides what may be verified: never the token's header.
        if !key.algs.contains(alg) {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let signed = &token[..header.len() + 1 + payload.len()];
        match jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key.key, alg) {
            Ok(true) => {}
            Ok(false) => return Err(AuthError::BadSignature),
            Err(e) => {
                return Err(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::Base64(_) => AuthError::Malformed,
                    _ => AuthError::BadSignature,
                })
            }
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&bytes).map_err(|_| AuthError::InvalidClaims)?;
        let info = self.info(&bytes)?;
        self.check(claims, now_unix)
            .map(|identity| identity.with_info(info))
    }

    /// The connection-info claim's JSON text, when the token has it. The
    /// claims are read a second time only when the payload holds the
    /// claim's name in quotes (a name written with JSON escapes is not
    /// looked for): tokens without it cost nothing more.
    fn info(&self, payload: &[u8]) -> Result<Option<Box<str>>, AuthError> {
        let Some(name) = self.rules.info_claim.as_deref() else {
            return Ok(None);
        };
        let quoted = format!("\"{name}\"");
        if !payload
            .windows(quoted.len())
            .any(|w| w == quoted.as_bytes())
        {
            return Ok(None);
        }
        let raw: RawClaims<'_> =
            serde_json::from_slice(payload).map_err(|_| AuthError::InvalidClaims)?;
        match raw.get(name) {
            Some(value) if value.get().starts_with(['{', '"']) => Ok(Some(Box::from(value.get()))),
            Some(_) => Err(AuthError::InvalidClaims),
            None => Ok(None),
        }
    }

    fn check(&self, claims: Claims, now: u64) -> Result<Identity, AuthError> {
        let rules = &self.rules;
        let leeway = u64::from(rules.leeway);
        let sub = match claims.sub {
            Some(sub) if !sub.is_empty() && sub.len() <= MAX_SUB_BYTES => sub,
            _ => return Err(AuthError::InvalidClaims),
        };
        let compile = |claim: &Option<Vec<String>>, default: &[String]| {
            let list = claim.as_deref().unwrap_or(default);
            Patterns::compile(list, &sub).map_err(|_| AuthError::InvalidClaims)
        };
        let subs = compile(&claims.subs, &rules.default_subs)?;
        let pubs = compile(&claims.pubs, &rules.default_pubs)?;
        match claims.exp {
            Some(exp) if now >= exp.saturating_add(leeway) => return Err(AuthError::Expired),
            None if rules.require_exp => return Err(AuthError::MissingExpiry),
            _ => {}
        }
        if claims
            .nbf
            .is_some_and(|nbf| now.saturating_add(leeway) < nbf)
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(issuer) = &rules.issuer {
            if claims.iss.as_deref() != Some(issuer) {
                return Err(AuthError::WrongIssuer);
            }
        }
        match (&rules.audience, &claims.aud) {
            (Some(wanted), Some(aud)) if aud.contains(wanted) => {}
            (None, None) => {}
            _ => return Err(AuthError::WrongAudience),
        }
        Ok(Identity::new(sub, claims.exp, subs, pubs, rules.leeway))
    }
}

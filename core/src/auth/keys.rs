//! The keys tokens are verified with, and the algorithms each key may verify.
//!
//! **The allowed algorithms come from the key, never from the token.** A
//! shared secret verifies only HS256/384/512; an RSA key only RS*/PS*; an EC
//! key only the ES algorithm of its curve (P-256 → ES256, P-384 → ES384); an
//! Ed25519 key only EdDSA. A token whose header asks for anything else is
//! refused before any cryptography runs, which closes the classic
//! algorithm-confusion hole (an HS256 token "signed" with the server's public
//! RSA key as the HMAC secret). `alg: none` is not an algorithm here at all.
//! `auth.jwt_algorithms` can only narrow these sets, and naming an algorithm
//! the key cannot verify is a startup error.
//!
//! Key sources (exactly one is configured):
//!
//! - a shared secret (inline or from a file): at least 32 bytes, and HS384 /
//!   HS512 only when it has at least 48 / 64 bytes (RFC 7518 §3.2);
//! - a PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`): RSA
//!   of 2048 bits or more, EC P-256 or P-384, or Ed25519. A private key is
//!   refused (the server needs only the public half);
//! - a JWKS file (RFC 7517 `{"keys": [...]}`): every signing key in it that
//!   this server can use; keys marked `"use": "enc"`, unknown key types and
//!   curves, and keys whose `alg` is not a signature algorithm are skipped.
//!   A key's `alg`, when present, is the only algorithm it verifies.
//!
//! Which key verifies a token ([`KeySet::select`]): the key whose `kid`
//! equals the token header's `kid`; a token without `kid`, or a single key
//! without one (secret, PEM), uses the only key there is. Anything else is
//! "unknown key id".
//!
//! The constructors here take bytes and do no IO; reading the configured
//! files is [`super::Authenticator::from_config`]'s job, at startup.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use super::error::AuthError;
use crate::config::auth::{check_secret, hmac_min_len, KNOWN_ALGORITHMS};
pub use crate::config::auth::{parse_algorithm, parse_algorithms};

/// Shortest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A set of algorithms (a bitmask over the twelve this server knows).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgSet(u16);

impl AlgSet {
    fn bit(alg: Algorithm) -> u16 {
        KNOWN_ALGORITHMS
            .iter()
            .position(|a| *a == alg)
            .map_or(0, |i| 1 << i)
    }

    pub fn of(algs: &[Algorithm]) -> AlgSet {
        AlgSet(algs.iter().fold(0, |set, alg| set | AlgSet::bit(*alg)))
    }

    pub fn contains(self, alg: Algorithm) -> bool {
        let bit = AlgSet::bit(alg);
        bit != 0 && self.0 & bit != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn intersect(self, other: AlgSet) -> AlgSet {
        AlgSet(self.0 & other.0)
    }

    fn iter(self) -> impl Iterator<Item = Algorithm> {
        KNOWN_ALGORITHMS
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, alg)| alg)
    }
}

impl fmt::Debug for AlgSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.iter().map(|a| format!("{a:?}")).collect();
        f.write_str(&names.join(", "))
    }
}

/// One key and what it may verify.
pub struct VerifyKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    pub algs: AlgSet,
    /// For error messages: "a shared secret", "an RSA 2048-bit key", ...
    pub what: String,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key itself stays out: a shared secret is a secret.
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("what", &self.what)
            .field("algs", &self.algs)
            .finish()
    }
}

/// The configured verification keys.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl KeySet {
    /// A shared secret for HS256/384/512. `allowed` empty: every HS
    /// algorithm the secret is long enough for.
    pub fn from_secret(secret: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
        // The rules are the configuration's: an inline secret was checked
        // by them at load, a secret file is checked here.
        check_secret(secret.len(), allowed)?;
        let fits = AlgSet::of(
            &AlgorithmFamily::Hmac
                .algorithms()
                .iter()
                .copied()
                .filter(|alg| secret.len() >= hmac_min_len(*alg))
                .collect::<Vec<_>>(),
        );
        let key = VerifyKey {
            kid: None,
            key: DecodingKey::from_secret(secret),
            algs: restrict(fits, allowed),
            what: "a shared secret".into(),
        };
        Ok(KeySet { keys: vec![key] })
    }

    /// A PEM public key: RSA, EC P-256/P-384 or Ed25519.
    pub fn from_pem(pem: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PRIVATE KEY-----") {
            return Err("this is a private key: give the public key \
                        (openssl pkey -in KEY -pubout -out PUBLIC.pem)"
                .into());
        }
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|_| {
                "not a PEM public key (RSA, EC P-256/P-384 or Ed25519 in a \
                 \"BEGIN PUBLIC KEY\" or \"BEGIN RSA PUBLIC KEY\" block)"
                    .to_string()
            })?;
        let (algs, what) = classify(&key)?;
        for alg in allowed {
            if !algs.contains(*alg) {
                return Err(format!(
                    "{alg:?} cannot be verified with {what} (it verifies {algs:?})"
                ));
            }
        }
        Ok(KeySet {
            keys: vec![VerifyKey {
                kid: None,
                key,
                algs: restrict(algs, allowed),
                what,
            }],
        })
    }

    /// A JWKS document: every usable signing key in it.
    pub fn from_jwks(json: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
        let set: JwkSet =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys: Vec<VerifyKey> = Vec::new();
        let mut skipped = Vec::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            let name = jwk
                .common
                .key_id
                .clone()
                .map_or_else(|| format!("key #{index}"), |kid| format!("kid {kid:?}"));
            match usable_jwk(jwk, allowed) {
                Ok(mut key) => {
                    key.kid.clone_from(&jwk.common.key_id);
                    if let Some(kid) = &key.kid {
                        if keys.iter().any(|k| k.kid.as_ref() == Some(kid)) {
                            return Err(format!("{name} appears twice"));
                        }
                    }
                    keys.push(key);
                }
                Err(why) => skipped.push(format!("{name}: {why}")),
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "no usable signing key (of {}{}{})",
                set.keys.len(),
                if skipped.is_empty() { "" } else { "; " },
                skipped.join("; ")
            ));
        }
        if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
            return Err("with several keys, every key needs a \"kid\"".into());
        }
        Ok(KeySet { keys })
    }

    /// The key that verifies a token whose header has `kid`.
    pub fn select(&self, kid: Option<&str>) -> Result<&VerifyKey, AuthError> {
        let only = || match self.keys.as_slice() {
            [key] if key.kid.is_none() || kid.is_none() => Some(key),
            _ => None,
        };
        let found = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .or_else(only),
            None => only(),
        };
        found.ok_or(AuthError::UnknownKey)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key, for startup logs (no key material in their `Debug`).
    pub fn keys(&self) -> &[VerifyKey] {
        &self.keys
    }
}

/// `algs` narrowed to `allowed` (unless `allowed` is empty).
fn restrict(algs: AlgSet, allowed: &[Algorithm]) -> AlgSet {
    if allowed.is_empty() {
        algs
    } else {
        algs.intersect(AlgSet::of(allowed))
    }
}

/// The algorithms a public key verifies, from its type and curve, and a
/// description; refuses short RSA keys and unusable key bytes.
fn classify(key: &DecodingKey) -> Result<(AlgSet, String), String> {
    let jwk = Jwk::from_decoding_key(key, None).map_err(|e| format!("unusable key: {e}"))?;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .map_err(|_| "unusable RSA key".to_string())?;
            let bits = modulus.len() * 8;
            if modulus.len() < MIN_RSA_MODULUS_BYTES {
                return Err(format!(
                    "RSA keys need at least 2048 bits; this one has {bits}"
                ));
            }
            Ok((
                AlgSet::of(AlgorithmFamily::Rsa.algorithms()),
                format!("an RSA {bits}-bit key"),
            ))
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Ok((AlgSet::of(&[Algorithm::ES256]), "an EC P-256 key".into())),
            EllipticCurve::P384 => Ok((AlgSet::of(&[Algorithm::ES384]), "an EC P-384 key".into())),
            _ => Err("unsupported EC curve (P-256 and P-384 are supported)".into()),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => {
                Ok((AlgSet::of(&[Algorithm::EdDSA]), "an Ed25519 key".into()))
            }
            _ => Err("unsupported OKP curve (Ed25519 is supported)".into()),
        },
        _ => Err("unsupported key type".into()),
    }
}

/// One JWKS entry as a [`VerifyKey`] (without its kid), or why it is skipped.
fn usable_jwk(jwk: &Jwk, allowed: &[Algorithm]) -> Result<VerifyKey, String> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("an encryption key (\"use\": \"enc\")".into());
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "unsupported key type".to_string())?;
    let (algs, what) = match &jwk.algorithm {
        AlgorithmParameters::OctetKey(_) => {
            let len = key.try_get_as_bytes().map_or(0, <[u8]>::len);
            let fits: Vec<Algorithm> = AlgorithmFamily::Hmac
                .algorithms()
                .iter()
                .copied()
                .filter(|alg| len >= hmac_min_len(*alg))
                .collect();
            if fits.is_empty() {
                return Err(format!(
                    "a shared secret of {len} bytes (at least 32 needed)"
                ));
            }
            (AlgSet::of(&fits), "a shared secret".to_string())
        }
        _ => classify(&key)?,
    };
    let algs = match &jwk.common.key_algorithm {
        None => algs,
        Some(declared) => {
            let alg = Algorithm::try_from(*declared)
                .map_err(|_| format!("\"alg\": {declared:?} is not a signature algorithm"))?;
            if !algs.contains(alg) {
                return Err(format!("\"alg\": {alg:?} does not fit {what}"));
            }
            AlgSet::of(&[alg])
        }
    };
    let algs = restrict(algs, allowed);
    if algs.is_empty() {
        return Err("none of its algorithms is in auth.jwt_algorithms".into());
    }
    Ok(VerifyKey {
        kid: None,
        key,
        algs,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/rsa-public.pem");
    const RSA_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/rsa-private.pem");
    const EC256_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/ec256-public.pem");
    const EC384_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/ec384-public.pem");
    const ED_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/ed25519-public.pem");

    fn algs(set: &KeySet) -> AlgSet {
        set.keys()[0].algs
    }

    #[test]
    fn a_secret_verifies_only_hmac_of_fitting_length() {
        let set = KeySet::from_secret(&[7; 32], &[]).expect("32 bytes");
        assert_eq!(algs(&set), AlgSet::of(&[Algorithm::HS256]));
        let set = KeySet::from_secret(&[7; 64], &[]).expect("64 bytes");
        assert_eq!(
            algs(&set),
            AlgSet::of(&[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512])
        );
        let short = KeySet::from_secret(b"hunter2", &[]).expect_err("short");
        assert!(short.contains("at least 32 bytes"), "{short}");
        let err = KeySet::from_secret(&[7; 32], &[Algorithm::HS512]).expect_err("too short");
        assert!(err.contains("at least 64 bytes"), "{err}");
        let err = KeySet::from_secret(&[7; 64], &[Algorithm::RS256]).expect_err("confusion");
        assert!(err.contains("needs a public key"), "{err}");
        let set = KeySet::from_secret(&[7; 64], &[Algorithm::HS384]).expect("narrowed");
        assert_eq!(algs(&set), AlgSet::of(&[Algorithm::HS384]));
    }

    #[test]
    fn pem_keys_are_classified_by_type_and_curve() {
        let rsa = KeySet::from_pem(RSA_PUBLIC.as_bytes(), &[]).expect("rsa");
        assert!(algs(&rsa).contains(Algorithm::RS256) && algs(&rsa).contains(Algorithm::PS512));
        assert!(!algs(&rsa).contains(Algorithm::HS256));
        assert_eq!(rsa.keys()[0].what, "an RSA 2048-bit key");
        let ec = KeySet::from_pem(EC256_PUBLIC.as_bytes(), &[]).expect("p-256");
        assert_eq!(algs(&ec), AlgSet::of(&[Algorithm::ES256]));
        let ec = KeySet::from_pem(EC384_PUBLIC.as_bytes(), &[]).expect("p-384");
        assert_eq!(algs(&ec), AlgSet::of(&[Algorithm::ES384]));
        let ed = KeySet::from_pem(ED_PUBLIC.as_bytes(), &[]).expect("ed25519");
        assert_eq!(algs(&ed), AlgSet::of(&[Algorithm::EdDSA]));
    }

    #[test]
    fn bad_pem_configurations_are_refused_with_a_reason() {
        let err = KeySet::from_pem(RSA_PRIVATE.as_bytes(), &[]).expect_err("private");
        assert!(err.contains("private key"), "{err}");
        let err = KeySet::from_pem(b"hello", &[]).expect_err("garbage");
        assert!(err.contains("not a PEM public key"), "{err}");
        let err = KeySet::from_pem(RSA_PUBLIC.as_bytes(), &[Algorithm::HS256]).expect_err("hs");
        assert!(
            err.contains("HS256 cannot be verified with an RSA"),
            "{err}"
        );
        let err = KeySet::from_pem(EC256_PUBLIC.as_bytes(), &[Algorithm::ES384]).expect_err("");
        assert!(
            err.contains("ES384 cannot be verified with an EC P-256 key"),
            "{err}"
        );
        let narrowed = KeySet::from_pem(RSA_PUBLIC.as_bytes(), &[Algorithm::RS256]).expect("ok");
        assert_eq!(algs(&narrowed), AlgSet::of(&[Algorithm::RS256]));
    }

    #[test]
    fn algorithm_names_are_checked() {
        assert_eq!(
            parse_algorithms(&["RS256", "EdDSA"]),
            Ok(vec![Algorithm::RS256, Algorithm::EdDSA])
        );
        assert!(parse_algorithms(&["none"])
            .expect_err("none")
            .contains("never"));
        assert!(parse_algorithms(&["rs256"])
            .expect_err("case")
            .contains("unknown"));
    }

    #[test]
    fn jwks_entries_are_filtered_and_named() {
        let jwks = r#"{"keys": [
            {"kty": "oct", "kid": "short", "k": "c2hvcnQ"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"}
        ]}"#;
        let err = KeySet::from_jwks(jwks.as_bytes(), &[]).expect_err("none usable");
        assert!(err.starts_with("no usable signing key (of 3; "), "{err}");
        assert!(err.contains("kid \"enc\": an encryption key"), "{err}");
        let err = KeySet::from_jwks(b"{\"keys\": 3}", &[]).expect_err("not jwks");
        assert!(err.starts_with("not a JWKS document"), "{err}");
    }

    #[test]
    fn select_follows_the_kid() {
        let one = KeySet::from_secret(&[1; 32], &[]).expect("secret");
        assert!(one.select(None).is_ok());
        assert!(
            one.select(Some("anything")).is_ok(),
            "a lone key has no kid to miss"
        );
    }
}

//! End-to-end tests of token verification: tokens are signed here, in the
//! test, with the throw-away keys of `core/tests/fixtures/jwt/` (or a
//! random-looking HMAC secret), and checked against a fixed `now`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::config::AuthSection;

const NOW: u64 = 1_700_000_000;
const HOUR: u64 = 3600;

const RSA_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/rsa-public.pem");
const RSA2_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/rsa2-private.pem");
const EC256_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/ec256-private.pem");
const EC256_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/ec256-public.pem");
const EC384_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/ec384-private.pem");
const EC384_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/ec384-public.pem");
const ED_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/ed25519-public.pem");

const SECRET: &[u8; 64] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn rules() -> Rules {
    Rules {
        leeway: 30,
        require_exp: true,
        info_claim: Some("info".into()),
        ..Rules::default()
    }
}

fn claims() -> Value {
    json!({"sub": "42", "exp": NOW + HOUR, "subs": ["room:*", "user:{sub}"], "pubs": ["room:*"]})
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// A token with a hand-written header, signed (or not) as asked.
fn forge(header: &str, claims: &Value, signer: Option<(Algorithm, &EncodingKey)>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match signer {
        Some((alg, key)) => jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("sign"),
        None => String::new(),
    };
    format!("{input}.{signature}")
}

fn hs_verifier(rules: Rules) -> Verifier {
    Verifier::new(KeySet::from_secret(SECRET, &[]).expect("secret"), rules)
}

fn pem_verifier(pem: &str) -> Verifier {
    Verifier::new(KeySet::from_pem(pem.as_bytes(), &[]).expect("pem"), rules())
}

fn secret_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET)
}

#[test]
fn every_supported_algorithm_verifies() {
    let hs = hs_verifier(rules());
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = sign(alg, &secret_key(), None, &claims());
        let id = hs
            .verify(&token, NOW)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(id.user, "42");
        assert_eq!(id.expires_at, Some(NOW + HOUR));
    }
    let cases: [(Algorithm, &str, &str); 5] = [
        (Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC),
        (Algorithm::PS256, RSA_PRIVATE, RSA_PUBLIC),
        (Algorithm::ES256, EC256_PRIVATE, EC256_PUBLIC),
        (Algorithm::ES384, EC384_PRIVATE, EC384_PUBLIC),
        (Algorithm::EdDSA, ED_PRIVATE, ED_PUBLIC),
    ];
    for (alg, private, public) in cases {
        let key = match alg.family() {
            jsonwebtoken::AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(private.as_bytes()),
            jsonwebtoken::AlgorithmFamily::Ec => EncodingKey::from_ec_pem(private.as_bytes()),
            _ => EncodingKey::from_ed_pem(private.as_bytes()),
        }
        .expect("private key");
        let token = sign(alg, &key, None, &claims());
        let id = pem_verifier(public)
            .verify(&token, NOW)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(
            id.can_subscribe("user:42") && id.can_publish("room:7"),
            "{alg:?}"
        );
    }
}

#[test]
fn alg_none_is_refused_whatever_the_key() {
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE"}"#,
    ] {
        let token = forge(header, &claims(), None);
        assert_eq!(
            hs_verifier(rules()).verify(&token, NOW),
            Err(AuthError::UnsupportedAlgorithm),
            "{header}"
        );
        assert_eq!(
            pem_verifier(RSA_PUBLIC).verify(&token, NOW),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
    // Unknown algorithms too.
    let token = forge(r#"{"alg":"HS1"}"#, &claims(), None);
    assert_eq!(
        hs_verifier(rules()).verify(&token, NOW),
        Err(AuthError::UnsupportedAlgorithm)
    );
}

#[test]
fn an_hs_token_signed_with_the_public_key_is_refused() {
    // The classic confusion: HMAC "signed" with the server's public RSA key.
    let public_as_secret = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    for alg in [Algorithm::HS256, Algorithm::HS512] {
        let token = forge(
            &format!(r#"{{"alg":"{alg:?}"}}"#),
            &claims(),
            Some((alg, &public_as_secret)),
        );
        assert_eq!(
            pem_verifier(RSA_PUBLIC).verify(&token, NOW),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
    // And the other way: an RS token against a secret.
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa");
    let token = sign(Algorithm::RS256, &rsa, None, &claims());
    assert_eq!(
        hs_verifier(rules()).verify(&token, NOW),
        Err(AuthError::UnsupportedAlgorithm)
    );
    // An ES384 token against a P-256 key.
    let p384 = EncodingKey::from_ec_pem(EC384_PRIVATE.as_bytes()).expect("p384");
    let token = sign(Algorithm::ES384, &p384, None, &claims());
    assert_eq!(
        pem_verifier(EC256_PUBLIC).verify(&token, NOW),
        Err(AuthError::UnsupportedAlgorithm)
    );
}

#[test]
fn narrowed_algorithms_refuse_the_others() {
    let keys = KeySet::from_secret(SECRET, &[Algorithm::HS512]).expect("secret");
    let verifier = Verifier::new(keys, rules());
    let hs256 = sign(Algorithm::HS256, &secret_key(), None, &claims());
    assert_eq!(
        verifier.verify(&hs256, NOW),
        Err(AuthError::UnsupportedAlgorithm)
    );
    let hs512 = sign(Algorithm::HS512, &secret_key(), None, &claims());
    assert!(verifier.verify(&hs512, NOW).is_ok());
}

#[test]
fn signatures_are_checked() {
    let rsa2 = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).expect("rsa2");
    let other_key = sign(Algorithm::RS256, &rsa2, None, &claims());
    assert_eq!(
        pem_verifier(RSA_PUBLIC).verify(&other_key, NOW),
        Err(AuthError::BadSignature)
    );
    let wrong_secret = EncodingKey::from_secret(&[9; 64]);
    let token = sign(Algorithm::HS256, &wrong_secret, None, &claims());
    assert_eq!(
        hs_verifier(rules()).verify(&token, NOW),
        Err(AuthError::BadSignature)
    );
    // Swap in another payload: the signature no longer matches.
    let token = sign(Algorithm::HS256, &secret_key(), None, &claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let admin =
        URL_SAFE_NO_PAD.encode(json!({"sub": "42", "exp": NOW + HOUR, "pubs": ["*"]}).to_string());
    parts[1] = &admin;
    assert_eq!(
        hs_verifier(rules()).verify(&parts.join("."), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn malformed_tokens_are_refused() {
    let v = hs_verifier(rules());
    let good = sign(Algorithm::HS256, &secret_key(), None, &claims());
    let header = good.split('.').next().expect("header");
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.x"),
        format!("!!.{}", &good[header.len() + 1..]),
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("[1]"),
            &good[header.len() + 1..]
        ),
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("{\"typ\":\"JWT\"}"),
            &good[header.len() + 1..]
        ),
        format!("{good}="),
        "x".repeat(MAX_TOKEN_BYTES + 1),
    ];
    for token in cases {
        assert_eq!(
            v.verify(&token, NOW),
            Err(AuthError::Malformed),
            "{token:.40}"
        );
    }
}

#[test]
fn critical_headers_are_refused() {
    let token = forge(
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        &claims(),
        Some((Algorithm::HS256, &secret_key())),
    );
    assert_eq!(
        hs_verifier(rules()).verify(&token, NOW),
        Err(AuthError::UnsupportedHeader)
    );
}

fn with(extra: Value) -> Value {
    let mut claims = claims();
    for (k, v) in extra.as_object().expect("object") {
        claims[k] = v.clone();
    }
    claims
}

fn verify_claims(rules: Rules, claims: &Value, now: u64) -> Result<Identity, AuthError> {
    let token = sign(Algorithm::HS256, &secret_key(), None, claims);
    hs_verifier(rules).verify(&token, now)
}

#[test]
fn exp_and_nbf_honour_the_leeway() {
    let exp = NOW + HOUR;
    let at = |now| verify_claims(rules(), &claims(), now).map(|_| ());
    // Valid until exp + leeway (30 s), exclusive.
    assert_eq!(at(exp + 29), Ok(()));
    assert_eq!(at(exp + 30), Err(AuthError::Expired));
    let no_leeway = Rules {
        leeway: 0,
        ..rules()
    };
    assert_eq!(
        verify_claims(no_leeway.clone(), &claims(), exp).map(|_| ()),
        Err(AuthError::Expired)
    );
    assert!(verify_claims(no_leeway.clone(), &claims(), exp - 1).is_ok());

    let nbf = with(json!({"nbf": NOW + 100}));
    assert_eq!(
        verify_claims(rules(), &nbf, NOW + 69).map(|_| ()),
        Err(AuthError::NotYetValid)
    );
    assert!(
        verify_claims(rules(), &nbf, NOW + 70).is_ok(),
        "inside the leeway"
    );
    assert!(verify_claims(no_leeway.clone(), &nbf, NOW + 100).is_ok());
    assert_eq!(
        verify_claims(no_leeway, &nbf, NOW + 99).map(|_| ()),
        Err(AuthError::NotYetValid)
    );
    // Fractional dates are truncated.
    let fractional = with(json!({"exp": (NOW + 10) as f64 + 0.9}));
    let id = verify_claims(rules(), &fractional, NOW).expect("valid");
    assert_eq!(id.expires_at, Some(NOW + 10));
    assert_eq!(id.close_at(), Some(NOW + 40), "exp plus the leeway");
}

#[test]
fn a_missing_exp_is_refused_only_when_required() {
    let mut no_exp = claims();
    no_exp.as_object_mut().expect("object").remove("exp");
    assert_eq!(
        verify_claims(rules(), &no_exp, NOW).map(|_| ()),
        Err(AuthError::MissingExpiry)
    );
    let lax = Rules {
        require_exp: false,
        ..rules()
    };
    let id = verify_claims(lax, &no_exp, NOW).expect("allowed");
    assert_eq!(id.expires_at, None);
    assert!(!id.is_expired(u64::MAX));
}

#[test]
fn claims_of_the_wrong_type_are_refused_not_ignored() {
    let lax = Rules {
        require_exp: false,
        ..rules()
    };
    for bad in [
        json!({"exp": "never"}),
        json!({"exp": null}),
        json!({"exp": -1}),
        json!({"nbf": "99999999999"}),
        json!({"sub": 42}),
        json!({"sub": ""}),
        json!({"sub": null}),
        json!({"sub": "x".repeat(verify::MAX_SUB_BYTES + 1)}),
        json!({"subs": "room:*"}),
        json!({"subs": null}),
        json!({"pubs": [1]}),
        json!({"pubs": ["ro*om"]}),
        json!({"aud": 5}),
        json!({"iss": ["a"]}),
        json!({"info": 7}),
        json!({"info": null}),
        json!({"info": ["a"]}),
    ] {
        assert_eq!(
            verify_claims(lax.clone(), &with(bad.clone()), NOW).map(|_| ()),
            Err(AuthError::InvalidClaims),
            "{bad}"
        );
    }
    let mut no_sub = claims();
    no_sub.as_object_mut().expect("object").remove("sub");
    assert_eq!(
        verify_claims(rules(), &no_sub, NOW).map(|_| ()),
        Err(AuthError::InvalidClaims)
    );
    // A payload that is not JSON at all.
    let token = forge_payload("not json");
    assert_eq!(
        hs_verifier(rules()).verify(&token, NOW),
        Err(AuthError::InvalidClaims)
    );
}

fn forge_payload(payload: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &secret_key(), Algorithm::HS256).expect("sig");
    format!("{input}.{signature}")
}

#[test]
fn the_info_claim_is_kept_as_its_json_text() {
    let id = verify_claims(rules(), &with(json!({"info": {"name": "Ann"}})), NOW).expect("valid");
    assert_eq!(id.info.as_deref(), Some(r#"{"name":"Ann"}"#));
    let id = verify_claims(rules(), &with(json!({"info": "mobile"})), NOW).expect("valid");
    assert_eq!(id.info.as_deref(), Some(r#""mobile""#));
    let id = verify_claims(rules(), &claims(), NOW).expect("valid");
    assert_eq!(id.info, None);
    // Another name; `info` is then just another claim, and none is read
    // when the name is unset.
    let profile = Rules {
        info_claim: Some("profile".into()),
        ..rules()
    };
    let token = with(json!({"profile": {"n": 1}, "info": 7}));
    let id = verify_claims(profile, &token, NOW).expect("valid");
    assert_eq!(id.info.as_deref(), Some(r#"{"n":1}"#));
    let off = Rules {
        info_claim: None,
        ..rules()
    };
    assert_eq!(verify_claims(off, &token, NOW).expect("valid").info, None);
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let strict = Rules {
        issuer: Some("https://id.example.com".into()),
        audience: Some("ringcast".into()),
        ..rules()
    };
    let check = |extra: Value| verify_claims(strict.clone(), &with(extra), NOW).map(|_| ());
    assert_eq!(
        check(json!({"iss": "https://id.example.com", "aud": "ringcast"})),
        Ok(())
    );
    assert_eq!(
        check(json!({"iss": "https://id.example.com", "aud": ["other", "ringcast"]})),
        Ok(())
    );
    assert_eq!(
        check(json!({"iss": "https://evil.example.com", "aud": "ringcast"})),
        Err(AuthError::WrongIssuer)
    );
    assert_eq!(
        check(json!({"aud": "ringcast"})),
        Err(AuthError::WrongIssuer)
    );
    assert_eq!(
        check(json!({"iss": "https://id.example.com", "aud": "other"})),
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        check(json!({"iss": "https://id.example.com"})),
        Err(AuthError::WrongAudience)
    );
    // No audience configured: a token that names one is not for us.
    assert_eq!(
        verify_claims(rules(), &with(json!({"aud": "ringcast"})), NOW).map(|_| ()),
        Err(AuthError::WrongAudience)
    );
    // No issuer configured: any issuer.
    assert!(verify_claims(rules(), &with(json!({"iss": "anyone"})), NOW).is_ok());
}

#[test]
fn grants_come_from_the_claims_or_the_defaults() {
    let id = verify_claims(rules(), &claims(), NOW).expect("valid");
    assert!(id.can_subscribe("room:1") && id.can_subscribe("user:42"));
    assert!(!id.can_subscribe("user:43"));
    assert!(id.can_publish("room:1") && !id.can_publish("user:42"));

    let defaults = Rules {
        default_subs: vec!["public:*".into(), "inbox:{sub}".into()],
        default_pubs: vec![],
        ..rules()
    };
    let bare = json!({"sub": "7", "exp": NOW + HOUR});
    let id = verify_claims(defaults.clone(), &bare, NOW).expect("valid");
    assert!(id.can_subscribe("public:x") && id.can_subscribe("inbox:7"));
    assert!(!id.can_subscribe("inbox:8") && !id.can_publish("public:x"));
    // A present, empty list grants nothing, defaults or not.
    let empty = with(json!({"subs": []}));
    let id = verify_claims(defaults, &empty, NOW).expect("valid");
    assert!(!id.can_subscribe("public:x"));
}

fn jwks(keys: &[(&str, Algorithm, &EncodingKey)]) -> Vec<u8> {
    let keys = keys
        .iter()
        .map(|(kid, alg, key)| {
            let mut jwk = Jwk::from_encoding_key(key, *alg).expect("jwk");
            jwk.common.key_id = Some((*kid).to_owned());
            jwk
        })
        .collect();
    serde_json::to_vec(&JwkSet { keys }).expect("json")
}

#[test]
fn jwks_keys_are_selected_by_kid() {
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa");
    let rsa2 = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).expect("rsa2");
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("ed");
    let doc = jwks(&[
        ("a", Algorithm::RS256, &rsa),
        ("b", Algorithm::RS256, &rsa2),
        ("e", Algorithm::EdDSA, &ed),
    ]);
    let keys = KeySet::from_jwks(&doc, &[]).expect("jwks");
    assert_eq!(keys.len(), 3);
    let v = Verifier::new(keys, rules());
    let by_b = sign(Algorithm::RS256, &rsa2, Some("b"), &claims());
    assert!(v.verify(&by_b, NOW).is_ok());
    let by_e = sign(Algorithm::EdDSA, &ed, Some("e"), &claims());
    assert!(v.verify(&by_e, NOW).is_ok());
    // The right signature under the wrong kid, an unknown kid, no kid.
    let lying = sign(Algorithm::RS256, &rsa2, Some("a"), &claims());
    assert_eq!(v.verify(&lying, NOW), Err(AuthError::BadSignature));
    let unknown = sign(Algorithm::RS256, &rsa2, Some("z"), &claims());
    assert_eq!(v.verify(&unknown, NOW), Err(AuthError::UnknownKey));
    let anonymous = sign(Algorithm::RS256, &rsa2, None, &claims());
    assert_eq!(v.verify(&anonymous, NOW), Err(AuthError::UnknownKey));
    // A JWK's `alg` is the only one it verifies: PS256 under an RS256 key.
    let pss = sign(Algorithm::PS256, &rsa, Some("a"), &claims());
    assert_eq!(v.verify(&pss, NOW), Err(AuthError::UnsupportedAlgorithm));
    // One key with a kid: a token without kid uses it.
    let single = KeySet::from_jwks(&jwks(&[("a", Algorithm::RS256, &rsa)]), &[]).expect("one");
    let v = Verifier::new(single, rules());
    assert!(v
        .verify(&sign(Algorithm::RS256, &rsa, None, &claims()), NOW)
        .is_ok());
}

#[test]
fn jwks_duplicates_are_refused() {
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa");
    let doc = jwks(&[("a", Algorithm::RS256, &rsa), ("a", Algorithm::RS256, &rsa)]);
    let err = KeySet::from_jwks(&doc, &[]).expect_err("duplicate kid");
    assert!(err.contains("kid \"a\" appears twice"), "{err}");
}

fn authenticator() -> Authenticator {
    Authenticator::Jwt(hs_verifier(rules()))
}

#[test]
fn handshakes_take_the_token_from_query_or_header() {
    let auth = authenticator();
    let token = sign(Algorithm::HS256, &secret_key(), None, &claims());
    let query = format!("v=1&token={token}");
    assert!(auth.authenticate(Some(&query), None, NOW).is_ok());
    let header = format!("Bearer {token}");
    assert!(auth.authenticate(None, Some(&header), NOW).is_ok());
    // Percent-encoded dots still verify.
    let encoded = format!("token={}", token.replace('.', "%2E"));
    assert!(auth.authenticate(Some(&encoded), None, NOW).is_ok());
    assert_eq!(
        auth.authenticate(None, None, NOW),
        Err(AuthError::MissingToken)
    );
    assert_eq!(
        auth.authenticate(Some("token=a.b.c"), Some(&header), NOW),
        Err(AuthError::DuplicateToken)
    );
}

#[test]
fn auth_off_lets_everyone_do_everything_and_warns() {
    let off = Authenticator::Disabled;
    let id = off.authenticate(None, None, NOW).expect("anonymous");
    assert!(id.can_subscribe("anything") && id.can_publish("anything"));
    assert_eq!(off.startup_warning(), Some(DISABLED_WARNING));
    assert!(DISABLED_WARNING.contains("auth.auth_mode"));
    assert_eq!(authenticator().startup_warning(), None);
    let mut id = Identity::anonymous();
    assert_eq!(off.refresh(&mut id, "whatever", NOW), Ok(None));
}

#[test]
fn refresh_extends_the_same_user_only() {
    let auth = authenticator();
    let first = sign(Algorithm::HS256, &secret_key(), None, &claims());
    let mut id = auth
        .authenticate(None, Some(&format!("Bearer {first}")), NOW)
        .expect("id");
    let later = with(json!({"exp": NOW + 2 * HOUR, "pubs": ["room:1"]}));
    let second = sign(Algorithm::HS256, &secret_key(), None, &later);
    assert_eq!(
        auth.refresh(&mut id, &second, NOW + 10),
        Ok(Some(NOW + 2 * HOUR))
    );
    assert_eq!(id.expires_at, Some(NOW + 2 * HOUR));
    assert!(
        id.can_publish("room:1") && !id.can_publish("room:2"),
        "new grants"
    );

    let before = id.clone();
    let other_user = sign(
        Algorithm::HS256,
        &secret_key(),
        None,
        &with(json!({"sub": "43", "exp": NOW + 3 * HOUR})),
    );
    assert_eq!(
        auth.refresh(&mut id, &other_user, NOW),
        Err(AuthError::SubjectChanged)
    );
    let expired = sign(
        Algorithm::HS256,
        &secret_key(),
        None,
        &with(json!({"exp": NOW - HOUR})),
    );
    assert_eq!(
        auth.refresh(&mut id, &expired, NOW),
        Err(AuthError::Expired)
    );
    assert_eq!(auth.refresh(&mut id, "", NOW), Err(AuthError::MissingToken));
    assert_eq!(id, before, "a failed refresh changes nothing");
    // Once the connection's own token ran out, it is too late.
    assert_eq!(
        auth.refresh(&mut id, &second, NOW + 2 * HOUR + 30),
        Err(AuthError::Expired)
    );
}

/// A file in the temp directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("ringcast-auth-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn jwt_config() -> AuthSection {
    AuthSection {
        mode: AuthMode::Jwt,
        ..AuthSection::default()
    }
}

#[test]
fn from_config_reads_each_key_source() {
    assert!(matches!(
        Authenticator::from_config(&AuthSection::default()),
        Ok(Authenticator::Disabled)
    ));
    let token = sign(Algorithm::HS256, &secret_key(), None, &claims());
    let check = |config: &AuthSection, token: &str| {
        let auth = Authenticator::from_config(config).expect("builds");
        auth.authenticate(None, Some(&format!("Bearer {token}")), NOW)
            .map(|id| id.user)
    };

    let inline = AuthSection {
        key: KeySource::Secret(Secret::new(std::str::from_utf8(SECRET).expect("ascii"))),
        ..jwt_config()
    };
    assert_eq!(check(&inline, &token).as_deref(), Ok("42"));

    // `echo secret > file` leaves a newline that is not part of the secret.
    let mut with_newline = SECRET.to_vec();
    with_newline.push(b'\n');
    let file = TempFile::new("secret", &with_newline);
    let from_file = AuthSection {
        key: KeySource::SecretFile(file.0.clone()),
        ..jwt_config()
    };
    assert_eq!(check(&from_file, &token).as_deref(), Ok("42"));

    let pem = TempFile::new("ed.pem", ED_PUBLIC.as_bytes());
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("ed");
    let ed_token = sign(Algorithm::EdDSA, &ed, None, &claims());
    let from_pem = AuthSection {
        key: KeySource::PemFile(pem.0.clone()),
        ..jwt_config()
    };
    assert_eq!(check(&from_pem, &ed_token).as_deref(), Ok("42"));
    assert_eq!(
        check(&from_pem, &token),
        Err(AuthError::UnsupportedAlgorithm)
    );

    let doc = TempFile::new("jwks.json", &jwks(&[("k1", Algorithm::EdDSA, &ed)]));
    let from_jwks = AuthSection {
        key: KeySource::JwksFile(doc.0.clone()),
        ..jwt_config()
    };
    assert_eq!(
        check(
            &from_jwks,
            &sign(Algorithm::EdDSA, &ed, Some("k1"), &claims())
        )
        .as_deref(),
        Ok("42")
    );
}

#[test]
fn from_config_names_the_key_that_is_wrong() {
    let err = Authenticator::from_config(&jwt_config()).expect_err("no key");
    assert_eq!(err.key, "auth.auth_mode");
    assert!(
        err.to_string()
            .starts_with("auth.auth_mode: \"jwt\" needs a key"),
        "{err}"
    );

    let missing = AuthSection {
        key: KeySource::PemFile("/nonexistent/key.pem".into()),
        ..jwt_config()
    };
    let err = Authenticator::from_config(&missing).expect_err("unreadable");
    assert!(
        err.to_string()
            .starts_with("auth.jwt_pem_file: cannot read /nonexistent/key.pem:"),
        "{err}"
    );

    let private = TempFile::new("private.pem", RSA_PRIVATE.as_bytes());
    let config = AuthSection {
        key: KeySource::PemFile(private.0.clone()),
        ..jwt_config()
    };
    let err = Authenticator::from_config(&config).expect_err("private key");
    assert!(
        err.to_string()
            .starts_with("auth.jwt_pem_file: this is a private key"),
        "{err}"
    );

    let pem = TempFile::new("rsa.pem", RSA_PUBLIC.as_bytes());
    let confused = AuthSection {
        key: KeySource::PemFile(pem.0.clone()),
        algorithms: vec![Algorithm::HS256],
        ..jwt_config()
    };
    let err = Authenticator::from_config(&confused).expect_err("HS256 with RSA");
    assert_eq!(err.key, "auth.jwt_pem_file");
    assert!(err.reason.contains("HS256 cannot be verified"), "{err}");
}

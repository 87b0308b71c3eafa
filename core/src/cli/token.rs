//! `ringcast token`: prints a JWT for trying `/ws` with authentication on,
//! signed with the key the selected configuration names.
//!
//! - A shared secret (`auth.jwt_secret` or `auth.jwt_secret_file`) signs
//!   HS256, or `--alg HS384|HS512`, or the first of `auth.jwt_algorithms`.
//! - A public-key setup (`auth.jwt_pem_file`, `auth.jwt_jwks_file`) leaves the
//!   server without a private key: `--key PRIVATE.pem` signs (RSA, EC or
//!   Ed25519 in PEM), with `--alg` or the first of `auth.jwt_algorithms`.
//! - Without either, nothing is printed and the command says what to set.
//!
//! Claims: `sub`, `iat` (now), `exp` (now + `--ttl`), `subs` / `pubs` when
//! given (absent, the server's `auth.jwt_default_subs` / `_pubs` apply), and
//! `aud` / `iss` from the flags or else the configured `auth.jwt_audience` /
//! `auth.jwt_issuer`. Before printing, the token is checked by the verifier
//! the server would build from the same configuration (when it names a key),
//! so a token this command prints is one the server accepts, until it
//! expires; a mismatch (wrong private key, an algorithm the key does not
//! verify, a bad pattern) is refused here with the server's reason.
//!
//! Field accesses to the configuration stay in [`Configured::read`], the one
//! function that knows where the `auth.*` keys live.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use ringcast::auth::keys::parse_algorithms;
use ringcast::auth::pattern::PatternError;
use ringcast::auth::{AuthError, AuthMode, AuthSetupError, Authenticator, Patterns};
use ringcast::config::auth::KeySource;
use ringcast::config::ServerConfig;
use serde_json::{Map, Value};

use super::{load, Failure, SelectArgs};

#[derive(Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The user (the `sub` claim).
    #[arg(long, value_name = "USER")]
    sub: String,
    /// Channel patterns the holder may subscribe to, e.g. 'room:*' or
    /// 'user:{sub}' (the `subs` claim; repeatable or comma-separated;
    /// without it, the server's auth.jwt_default_subs apply)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    subs: Option<Vec<String>>,
    /// Channel patterns the holder may publish to (the `pubs` claim; as --subs)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pubs: Option<Vec<String>>,
    /// Lifetime, e.g. 1h, 15m, 30s; 0s gives a token that is already expired
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The `aud` claim [default: auth.jwt_audience, when set]
    #[arg(long, value_name = "AUDIENCE")]
    aud: Option<String>,
    /// The `iss` claim [default: auth.jwt_issuer, when set]
    #[arg(long, value_name = "ISSUER")]
    iss: Option<String>,
    /// Private key in PEM (RSA, EC P-256/P-384, Ed25519) for a setup with
    /// auth.jwt_pem_file or auth.jwt_jwks_file, whose public half the server holds
    #[arg(long, value_name = "PRIVATE.pem")]
    key: Option<PathBuf>,
    /// Signing algorithm: HS256/384/512 with the shared secret; RS*, PS*,
    /// ES256/384 or EdDSA with --key [default: HS256 with a secret, else the
    /// first of auth.jwt_algorithms]
    #[arg(long, value_name = "ALG")]
    alg: Option<String>,
    /// Key id for the token header (`kid`): which JWKS key verifies it
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
}

/// Why no token was printed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no key to sign with: set auth.jwt_secret or auth.jwt_secret_file (HS256), or give \
         --key PRIVATE.pem --alg ALG for a setup with auth.jwt_pem_file or auth.jwt_jwks_file"
    )]
    NoKey,
    #[error(
        "{0} holds a public key, which cannot sign: give its private half with \
         --key PRIVATE.pem (and --alg, e.g. RS256, ES256, EdDSA)"
    )]
    PublicKeyOnly(&'static str),
    #[error("--key needs --alg (e.g. RS256, ES256, EdDSA): auth.jwt_algorithms names none")]
    NeedAlgorithm,
    #[error("--alg: {0}")]
    Algorithm(String),
    #[error("{alg:?} signs with {needs}, not with {have}")]
    WrongKeyForAlgorithm {
        alg: Algorithm,
        needs: &'static str,
        have: &'static str,
    },
    #[error("--key {}: {source}", path.display())]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--key {}: not a {alg:?} private key in PEM ({source})", path.display())]
    BadKey {
        path: PathBuf,
        alg: Algorithm,
        source: jsonwebtoken::errors::Error,
    },
    #[error("{flag}: {source}")]
    Pattern {
        flag: &'static str,
        source: PatternError,
    },
    #[error("{0}")]
    Setup(#[from] AuthSetupError),
    #[error(
        "the server would refuse this token ({0}): check that the key and --alg match its \
         auth.* keys"
    )]
    Refused(AuthError),
    #[error("cannot sign: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("the system clock is before 1970")]
    Clock,
}

/// Prints the token on stdout, and nothing else (for `TOKEN=$(ringcast token ...)`).
pub fn run(args: TokenArgs) -> Result<ExitCode, Failure> {
    let (effective, _) = load(&args.select, Vec::new())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TokenError::Clock)?
        .as_secs();
    println!("{}", make(&args, &effective.config, now)?);
    Ok(ExitCode::SUCCESS)
}

/// The key material and claim defaults of a configuration.
struct Configured {
    /// The shared secret, read from `auth.jwt_secret` or its file.
    secret: Option<Vec<u8>>,
    /// The key holding a public key, when that is the setup.
    public: Option<&'static str>,
    algorithms: Vec<Algorithm>,
    issuer: String,
    audience: String,
    /// The verifier the server would build with authentication on; `None`
    /// when the configuration names no key.
    verifier: Option<Authenticator>,
}

impl Configured {
    /// Reads the `auth.*` keys, and the secret file when one is set.
    fn read(config: &ServerConfig) -> Result<Configured, TokenError> {
        let auth = &config.auth;
        let (secret, public) = match &auth.key {
            KeySource::Secret(secret) => (Some(secret.expose().as_bytes().to_vec()), None),
            KeySource::SecretFile(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    TokenError::Setup(AuthSetupError {
                        key: "auth.jwt_secret_file",
                        reason: format!("cannot read {}: {e}", path.display()),
                    })
                })?;
                (Some(strip_line_end(bytes)), None)
            }
            source @ (KeySource::PemFile(_) | KeySource::JwksFile(_)) => (None, source.key()),
            KeySource::None => (None, None),
        };
        // The server's own verifier, as `auth_mode = "jwt"` would build it:
        // the token is checked against it before it is printed.
        let verifier = if secret.is_some() || public.is_some() {
            let mut on = auth.clone();
            on.mode = AuthMode::Jwt;
            Some(Authenticator::from_config(&on)?)
        } else {
            None
        };
        Ok(Configured {
            secret,
            public,
            algorithms: auth.algorithms.clone(),
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            verifier,
        })
    }
}

/// A secret file's content without its final line end, as the server reads it.
fn strip_line_end(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    bytes
}

/// The algorithm of `--alg`, else the first of `auth.jwt_algorithms`
/// (optionally only among `family`), else `fallback`.
fn algorithm(
    args: &TokenArgs,
    configured: &Configured,
    family: Option<AlgorithmFamily>,
    fallback: Option<Algorithm>,
) -> Result<Algorithm, TokenError> {
    if let Some(name) = &args.alg {
        let algs = parse_algorithms(&[name]).map_err(TokenError::Algorithm)?;
        return algs.first().copied().ok_or(TokenError::NeedAlgorithm);
    }
    configured
        .algorithms
        .iter()
        .copied()
        .find(|alg| family.is_none_or(|f| alg.family() == f))
        .or(fallback)
        .ok_or(TokenError::NeedAlgorithm)
}

/// The algorithm and the key that signs.
fn signing_key(
    args: &TokenArgs,
    configured: &Configured,
) -> Result<(Algorithm, EncodingKey), TokenError> {
    if let Some(path) = &args.key {
        let alg = algorithm(args, configured, None, None)?;
        return Ok((alg, private_key(path, alg)?));
    }
    match (&configured.secret, configured.public) {
        (Some(secret), _) => {
            let alg = algorithm(
                args,
                configured,
                Some(AlgorithmFamily::Hmac),
                Some(Algorithm::HS256),
            )?;
            if alg.family() != AlgorithmFamily::Hmac {
                return Err(TokenError::WrongKeyForAlgorithm {
                    alg,
                    needs: "a private key (--key PRIVATE.pem)",
                    have: "the shared secret",
                });
            }
            Ok((alg, EncodingKey::from_secret(secret)))
        }
        (None, Some(public)) => Err(TokenError::PublicKeyOnly(public)),
        (None, None) => Err(TokenError::NoKey),
    }
}

/// Reads a PEM private key for `alg`.
fn private_key(path: &Path, alg: Algorithm) -> Result<EncodingKey, TokenError> {
    let pem = std::fs::read(path).map_err(|source| TokenError::ReadKey {
        path: path.to_owned(),
        source,
    })?;
    let key = match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&pem),
        AlgorithmFamily::Hmac => {
            return Err(TokenError::WrongKeyForAlgorithm {
                alg,
                needs: "the shared secret (auth.jwt_secret, without --key)",
                have: "a private key",
            })
        }
    };
    key.map_err(|source| TokenError::BadKey {
        path: path.to_owned(),
        alg,
        source,
    })
}

/// Builds, signs and checks the token, `now` in seconds since the epoch.
fn make(args: &TokenArgs, config: &ServerConfig, now: u64) -> Result<String, TokenError> {
    let configured = Configured::read(config)?;
    let (alg, key) = signing_key(args, &configured)?;
    let mut claims = Map::new();
    claims.insert("sub".into(), args.sub.clone().into());
    for (flag, name, patterns) in [
        ("--subs", "subs", &args.subs),
        ("--pubs", "pubs", &args.pubs),
    ] {
        let Some(patterns) = patterns else { continue };
        // `--subs ''` is the empty list: it grants nothing.
        let list: Vec<&str> = patterns
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect();
        Patterns::compile(&list, &args.sub)
            .map_err(|source| TokenError::Pattern { flag, source })?;
        claims.insert(name.into(), list.into());
    }
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), now.saturating_add(args.ttl.as_secs()).into());
    let or_configured = |flag: &Option<String>, configured: &str| {
        flag.clone()
            .or_else(|| (!configured.is_empty()).then(|| configured.to_owned()))
    };
    if let Some(aud) = or_configured(&args.aud, &configured.audience) {
        claims.insert("aud".into(), aud.into());
    }
    if let Some(iss) = or_configured(&args.iss, &configured.issuer) {
        claims.insert("iss".into(), iss.into());
    }
    let mut header = Header::new(alg);
    header.kid = args.kid.clone();
    let token =
        jsonwebtoken::encode(&header, &Value::Object(claims), &key).map_err(TokenError::Sign)?;
    if let Some(Authenticator::Jwt(verifier)) = &configured.verifier {
        // Checked at `now`: a `--ttl 0s` token is expired by request.
        match verifier.verify(&token, now) {
            Ok(_) | Err(AuthError::Expired) => {}
            Err(e) => return Err(TokenError::Refused(e)),
        }
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use clap::Parser;
    use ringcast::auth::Secret;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-unit";
    const NOW: u64 = 1_800_000_000;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt")
            .join(name)
    }

    fn args(argv: &[&str]) -> TokenArgs {
        let argv = ["ringcast", "token"].iter().chain(argv);
        let Command::Token(args) = Cli::parse_from(argv).command else {
            panic!("token")
        };
        *args
    }

    fn with_key(key: KeySource) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.auth.key = key;
        config
    }

    fn with_secret() -> ServerConfig {
        with_key(KeySource::Secret(Secret::new(SECRET)))
    }

    /// The header and claims of a token, decoded without checking anything.
    fn decode(token: &str) -> (Value, Value) {
        let part = |i: usize| {
            let text = token.split('.').nth(i).expect("three parts");
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64")).expect("json")
        };
        (part(0), part(1))
    }

    #[test]
    fn a_secret_signs_hs256_with_the_claims_asked_for() {
        let a = args(&[
            "--sub",
            "u1",
            "--subs",
            "room:*",
            "--pubs",
            "room:1,room:2",
            "--ttl",
            "1h",
        ]);
        let token = make(&a, &with_secret(), NOW).expect("a token");
        let (header, claims) = decode(&token);
        assert_eq!(header["alg"], "HS256");
        assert_eq!(
            claims,
            serde_json::json!({"sub": "u1", "subs": ["room:*"], "pubs": ["room:1", "room:2"],
                               "iat": NOW, "exp": NOW + 3600})
        );
        // The server's verifier of the same configuration accepts it.
        let mut on = with_secret();
        on.auth.mode = AuthMode::Jwt;
        let server = Authenticator::from_config(&on.auth).expect("auth");
        let identity = server
            .authenticate(Some(&format!("token={token}")), None, NOW + 10)
            .expect("accepted");
        assert!(identity.can_subscribe("room:9"));
        assert!(!identity.can_publish("room:3"));
        // Past `exp` and the default 30 s of leeway.
        assert!(matches!(
            server.authenticate(Some(&format!("token={token}")), None, NOW + 3630),
            Err(AuthError::Expired)
        ));
    }

    #[test]
    fn audience_and_issuer_default_to_the_configured_ones() {
        let mut config = with_secret();
        config.auth.audience = "ws.example".into();
        config.auth.issuer = "https://id.example".into();
        let (_, claims) = decode(&make(&args(&["--sub", "u1"]), &config, NOW).expect("token"));
        assert_eq!(claims["aud"], "ws.example");
        assert_eq!(claims["iss"], "https://id.example");
        assert!(claims.get("subs").is_none(), "absent: the defaults apply");
        // A flag overrides; one the server would not accept is refused here.
        let refused = make(&args(&["--sub", "u1", "--aud", "other"]), &config, NOW);
        assert!(
            matches!(refused, Err(TokenError::Refused(AuthError::WrongAudience))),
            "{refused:?}"
        );
        let (_, claims) = decode(
            &make(&args(&["--sub", "u1", "--iss", "x"]), &with_secret(), NOW).expect("token"),
        );
        assert_eq!(claims["iss"], "x");
        assert!(claims.get("aud").is_none());
    }

    #[test]
    fn a_public_key_setup_signs_with_the_private_key_given() {
        let config = with_key(KeySource::PemFile(fixture("ec256-public.pem")));
        let err = make(&args(&["--sub", "u1"]), &config, NOW).expect_err("no private key");
        assert!(
            err.to_string()
                .starts_with("auth.jwt_pem_file holds a public key"),
            "{err}"
        );
        let key = fixture("ec256-private.pem");
        let key = key.to_str().expect("utf-8 path");
        let err = make(&args(&["--sub", "u1", "--key", key]), &config, NOW)
            .expect_err("which algorithm?");
        assert!(matches!(err, TokenError::NeedAlgorithm), "{err}");
        let token = make(
            &args(&["--sub", "u1", "--key", key, "--alg", "ES256"]),
            &config,
            NOW,
        )
        .expect("signed");
        assert_eq!(decode(&token).0["alg"], "ES256");
        // Another key, or an algorithm the public key does not verify: refused.
        let other = fixture("rsa-private.pem");
        let other = other.to_str().expect("utf-8 path");
        let err = make(
            &args(&["--sub", "u1", "--key", other, "--alg", "RS256"]),
            &config,
            NOW,
        )
        .expect_err("wrong key");
        assert!(matches!(err, TokenError::Refused(_)), "{err}");
        let err = make(
            &args(&["--sub", "u1", "--key", key, "--alg", "HS256"]),
            &config,
            NOW,
        )
        .expect_err("HS with a private key");
        assert!(
            matches!(err, TokenError::WrongKeyForAlgorithm { .. }),
            "{err}"
        );
        // auth.jwt_algorithms names the algorithm when --alg does not.
        let mut narrowed = config;
        narrowed.auth.algorithms = vec![Algorithm::ES256];
        make(&args(&["--sub", "u1", "--key", key]), &narrowed, NOW).expect("ES256");
    }

    #[test]
    fn no_key_bad_patterns_and_wrong_algorithms_are_refused_clearly() {
        let no_key = make(&args(&["--sub", "u1"]), &ServerConfig::default(), NOW);
        assert!(matches!(no_key, Err(TokenError::NoKey)), "{no_key:?}");
        let bad = make(
            &args(&["--sub", "u1", "--subs", "room:*:x"]),
            &with_secret(),
            NOW,
        )
        .expect_err("a wildcard inside");
        assert!(bad.to_string().starts_with("--subs: pattern"), "{bad}");
        let err = make(
            &args(&["--sub", "u1", "--alg", "RS256"]),
            &with_secret(),
            NOW,
        )
        .expect_err("RS256 with a secret");
        assert!(
            matches!(err, TokenError::WrongKeyForAlgorithm { .. }),
            "{err}"
        );
        let err = make(
            &args(&["--sub", "u1", "--alg", "none"]),
            &with_secret(),
            NOW,
        )
        .expect_err("none");
        assert!(err.to_string().contains("never accepted"), "{err}");
        let short = with_key(KeySource::Secret(Secret::new("short")));
        let err = make(&args(&["--sub", "u1"]), &short, NOW).expect_err("short secret");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    }

    #[test]
    fn a_zero_ttl_gives_a_token_that_is_already_expired() {
        let token = make(&args(&["--sub", "u1", "--ttl", "0s"]), &with_secret(), NOW)
            .expect("printed anyway");
        assert_eq!(decode(&token).1["exp"], NOW);
    }

    #[test]
    fn a_secret_file_is_read_without_its_line_end() {
        assert_eq!(strip_line_end(b"abc\r\n".to_vec()), b"abc");
        assert_eq!(strip_line_end(b"abc\n".to_vec()), b"abc");
        assert_eq!(strip_line_end(b"abc".to_vec()), b"abc");
        assert_eq!(strip_line_end(b"ab\n\n".to_vec()), b"ab\n");
    }
}

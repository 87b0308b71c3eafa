//! Why a token was refused: one variant per rule, each with a short, stable
//! reason.
//!
//! The `Display` text is what the client sees: the body of the handshake's
//! 401 and the `message` of a failed `refresh`. It names the rule, never the
//! token or a claim value, so it is safe to log and costs no allocation.
//! Errors in the server's own key setup are [`AuthSetupError`], a different
//! type: they stop the server at startup and are never shown to clients.

/// A token the server does not accept. Every variant is answered with HTTP
/// 401 at the handshake ([`AuthError::STATUS`]), or an `unauthorized` error
/// reply to `refresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AuthError {
    /// Neither `?token=` nor `Authorization: Bearer` (or an empty one).
    #[error("missing token")]
    MissingToken,
    /// The query and the header carry different tokens, or the query has
    /// two `token` parameters: reading one would let a proxy and this
    /// server disagree about who is asking.
    #[error("token given twice")]
    DuplicateToken,
    /// Not `header.payload.signature` in base64url, a header that is not a
    /// JSON object, a bad percent-escape, or longer than
    /// [`super::MAX_TOKEN_BYTES`].
    #[error("malformed token")]
    Malformed,
    /// `alg` is `none`, unknown, or not one the configured key may verify
    /// (an HS256 token against an RSA key lands here).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The header lists `crit` extensions; this server understands none
    /// (RFC 7515 §4.1.11 requires refusing the token).
    #[error("unsupported critical header")]
    UnsupportedHeader,
    /// No key with the token's `kid` (or no `kid` and several keys).
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    /// `exp` (plus the leeway) is past.
    #[error("token expired")]
    Expired,
    /// `nbf` (minus the leeway) is still ahead.
    #[error("token not yet valid")]
    NotYetValid,
    /// `auth.jwt_require_exp` is on and the token has no `exp`.
    #[error("token has no expiry")]
    MissingExpiry,
    #[error("wrong issuer")]
    WrongIssuer,
    /// The token's `aud` does not list `auth.jwt_audience`, or the token has
    /// an `aud` and the server has no audience configured (RFC 7519 §4.1.3).
    #[error("wrong audience")]
    WrongAudience,
    /// A claim has the wrong type (`exp` as a string, `subs` not a list of
    /// strings), `sub` is missing or empty, or a channel pattern is invalid.
    #[error("invalid claims")]
    InvalidClaims,
    /// `refresh` with a token for another `sub` than the connection's.
    #[error("token is for another user")]
    SubjectChanged,
}

impl AuthError {
    /// The HTTP status of a refused handshake.
    pub const STATUS: u16 = 401;

    /// The error code of a failed `refresh` reply (`docs/protocol.md`).
    pub const REFRESH_ERROR_CODE: &'static str = "unauthorized";

    /// The short reason, as a static string (the `Display` text).
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing token",
            AuthError::DuplicateToken => "token given twice",
            AuthError::Malformed => "malformed token",
            AuthError::UnsupportedAlgorithm => "unsupported algorithm",
            AuthError::UnsupportedHeader => "unsupported critical header",
            AuthError::UnknownKey => "unknown key id",
            AuthError::BadSignature => "bad signature",
            AuthError::Expired => "token expired",
            AuthError::NotYetValid => "token not yet valid",
            AuthError::MissingExpiry => "token has no expiry",
            AuthError::WrongIssuer => "wrong issuer",
            AuthError::WrongAudience => "wrong audience",
            AuthError::InvalidClaims => "invalid claims",
            AuthError::SubjectChanged => "token is for another user",
        }
    }
}

/// The configured key cannot be used: a file that cannot be read, a PEM that
/// is not a public key, a JWKS with no usable key, an algorithm the key
/// cannot verify. Found at startup; names the configuration key
/// (`auth.jwt_pem_file`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct AuthSetupError {
    pub key: &'static str,
    pub reason: String,
}

impl AuthSetupError {
    pub(crate) fn new(key: &'static str, reason: impl Into<String>) -> AuthSetupError {
        AuthSetupError {
            key,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_the_display_text() {
        let all = [
            AuthError::MissingToken,
            AuthError::DuplicateToken,
            AuthError::Malformed,
            AuthError::UnsupportedAlgorithm,
            AuthError::UnsupportedHeader,
            AuthError::UnknownKey,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::MissingExpiry,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::InvalidClaims,
            AuthError::SubjectChanged,
        ];
        for err in all {
            assert_eq!(err.to_string(), err.reason());
            assert!(err.reason().len() <= 32, "short: {}", err.reason());
        }
    }
}

//! Finding the bearer token in a handshake request.
//!
//! A client passes its token either in the query string, `GET
//! /ws?token=eyJ...` (browsers cannot set headers on a WebSocket), or in an
//! `Authorization: Bearer eyJ...` header (RFC 6750 §2.1). Rules:
//!
//! - Query: `&`-separated `name=value` pairs; the pair named `token` is the
//!   token, `%XX` escapes and `+` (a space) decoded as in
//!   `application/x-www-form-urlencoded`. A bad escape or a value that does
//!   not decode to UTF-8 is [`AuthError::Malformed`]; two `token` pairs are
//!   [`AuthError::DuplicateToken`].
//! - Header: the scheme `Bearer` (any case), one or more spaces, then the
//!   token, which must be non-empty and hold no whitespace. A header with
//!   another scheme (`Basic ...`) is not ours and is ignored.
//! - Both given: accepted when equal, [`AuthError::DuplicateToken`] when
//!   not. Neither, or an empty `token=`: [`AuthError::MissingToken`].
//! - Longer than [`MAX_TOKEN_BYTES`]: [`AuthError::Malformed`] (the request
//!   head is bounded anyway; this bounds a `refresh` command too).
//!
//! Pure functions over the strings the handshake parser already owns; the
//! only allocation is the returned [`Token`].

use super::error::AuthError;
use super::secret::Token;

/// Longest token accepted, in bytes (after percent-decoding).
pub const MAX_TOKEN_BYTES: usize = 8192;

/// The token of a request, from its raw query (`RequestHead::query`) and its
/// `Authorization` header (`RequestHead::authorization`).
pub fn extract_token(query: Option<&str>, authorization: Option<&str>) -> Result<Token, AuthError> {
    let from_query = match query {
        Some(query) => query_token(query)?,
        None => None,
    };
    let from_header = match authorization {
        Some(value) => bearer_token(value)?,
        None => None,
    };
    let token = match (from_query, from_header) {
        (Some(q), Some(h)) if q != h => return Err(AuthError::DuplicateToken),
        (Some(q), _) => q,
        (None, Some(h)) => h.to_owned(),
        (None, None) => return Err(AuthError::MissingToken),
    };
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Malformed);
    }
    Ok(Token::new(token))
}

/// The value of the `token` parameter of a raw query string, decoded.
fn query_token(query: &str) -> Result<Option<String>, AuthError> {
    let mut found = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Names are compared decoded, so `%74oken` is `token` too: a proxy
        // that decodes names must not see a different parameter than we do.
        if percent_decode(name).as_deref() != Some("token") {
            continue;
        }
        if found.is_some() {
            return Err(AuthError::DuplicateToken);
        }
        if value.len() > 3 * MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        found = Some(percent_decode(value).ok_or(AuthError::Malformed)?);
    }
    Ok(found)
}

/// The token of an `Authorization: Bearer` header; `None` for another scheme.
fn bearer_token(value: &str) -> Result<Option<&str>, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    if token.contains(|c: char| c.is_ascii_whitespace() || c.is_control()) {
        return Err(AuthError::Malformed);
    }
    Ok(Some(token))
}

/// Decodes `%XX` escapes and `+` (space). `None` for a `%` not followed by
/// two hex digits, or bytes that are not UTF-8 once decoded.
pub fn percent_decode(text: &str) -> Option<String> {
    if !text.contains(['%', '+']) {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(query: Option<&str>, header: Option<&str>) -> Result<String, AuthError> {
        extract_token(query, header).map(|t| t.expose().to_owned())
    }

    #[test]
    fn the_query_parameter_is_found_among_others() {
        assert_eq!(
            token(Some("token=abc.def.ghi"), None).as_deref(),
            Ok("abc.def.ghi")
        );
        assert_eq!(
            token(Some("v=1&token=abc&since=4"), None).as_deref(),
            Ok("abc")
        );
        // `tokens` and `xtoken` are other parameters.
        assert_eq!(
            token(Some("tokens=1&xtoken=2"), None),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(token(Some("token=a%2Eb%2ec"), None).as_deref(), Ok("a.b.c"));
        assert_eq!(token(Some("token=a+b"), None).as_deref(), Ok("a b"));
        assert_eq!(token(Some("token=%2B"), None).as_deref(), Ok("+"));
        assert_eq!(token(Some("%74oken=x"), None).as_deref(), Ok("x"));
        assert_eq!(token(Some("token=%C3%A9"), None).as_deref(), Ok("é"));
        for bad in ["token=%", "token=%2", "token=%zz", "token=%FF"] {
            assert_eq!(token(Some(bad), None), Err(AuthError::Malformed), "{bad}");
        }
    }

    #[test]
    fn empty_or_absent_is_missing() {
        for query in [None, Some(""), Some("token="), Some("token"), Some("a=1")] {
            assert_eq!(
                token(query, None),
                Err(AuthError::MissingToken),
                "{query:?}"
            );
        }
        assert_eq!(token(None, Some("Bearer")), Err(AuthError::MissingToken));
        assert_eq!(token(None, Some("Bearer   ")), Err(AuthError::MissingToken));
    }

    #[test]
    fn the_bearer_header_is_read_in_any_case() {
        for header in ["Bearer abc", "bearer abc", "BEARER  abc", " Bearer\tabc  "] {
            assert_eq!(
                token(None, Some(header)).as_deref(),
                Ok("abc"),
                "{header:?}"
            );
        }
        // Another scheme is not ours.
        assert_eq!(
            token(None, Some("Basic dXNlcjpwYXNz")),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            token(Some("token=q"), Some("Basic dXNlcjpwYXNz")).as_deref(),
            Ok("q")
        );
        assert_eq!(token(None, Some("Bearer a b")), Err(AuthError::Malformed));
    }

    #[test]
    fn two_different_tokens_are_refused() {
        assert_eq!(
            token(Some("token=a&token=a"), None),
            Err(AuthError::DuplicateToken)
        );
        assert_eq!(
            token(Some("token=a"), Some("Bearer b")),
            Err(AuthError::DuplicateToken)
        );
        assert_eq!(token(Some("token=a"), Some("Bearer a")).as_deref(), Ok("a"));
    }

    #[test]
    fn tokens_are_bounded() {
        let long = "a".repeat(MAX_TOKEN_BYTES);
        assert!(token(None, Some(&format!("Bearer {long}"))).is_ok());
        assert_eq!(
            token(None, Some(&format!("Bearer {long}a"))),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            token(Some(&format!("token={long}a")), None),
            Err(AuthError::Malformed)
        );
    }
}

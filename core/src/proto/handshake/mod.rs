//! The opening handshake: HTTP/1.1 request-head parsing, WebSocket upgrade
//! validation (RFC 6455 §4.2.1) and the response bytes the server sends back.
//!
//! Everything here is sans-IO. The connection task owns the read buffer and
//! calls [`parse_request`] after every read; the parser re-scans the whole
//! prefix each time, which is bounded by [`HandshakeLimits::max_head_bytes`]
//! and keeps it stateless (no half-parsed state to carry between reads).
//!
//! Guarantees:
//! - "Need more bytes" is `Ok(None)` and consumes nothing; a complete head
//!   reports its exact length, so pipelined bytes after it (a client that
//!   sends its first frame right behind the request) stay with the caller.
//! - No head longer than `max_head_bytes` is ever accepted, and the parser
//!   never looks past that many bytes, however much the caller has buffered.
//! - The common path allocates only the owned strings of [`RequestHead`];
//!   header slots live on the stack unless `max_headers` exceeds
//!   [`INLINE_HEADERS`].
//! - Every refusal is a [`HandshakeError`] variant naming the rule that was
//!   broken; it knows its HTTP status and its `Display` is the response body.
//!
//! Routing (which path is which endpoint, plain HTTP vs upgrade, auth) is the
//! runtime's decision: [`parse_request`] accepts any method and target, and
//! [`validate_upgrade`] is only called for WebSocket endpoints.
//!
//! This file parses and validates the request; `response.rs` writes the
//! bytes sent back (101, refusals, plain HTTP answers). The literal-byte
//! tests of every rule, status and length boundary are in `tests.rs`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};

mod response;

pub use self::response::{
    encode_accept_response_into, encode_error_response_into, encode_plain_response_into,
    reason_phrase,
};

/// The GUID RFC 6455 §1.3 appends to the client key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this server speaks (RFC 6455 §4.1, item 9).
pub const SUPPORTED_VERSION: &str = "13";

/// Header slots kept on the stack. Limits up to this need no allocation for
/// parsing; larger `max_headers` values fall back to a heap array.
pub const INLINE_HEADERS: usize = 64;

/// How much of an unsupported `Sec-WebSocket-Version` value is echoed back in
/// the refusal body. The value is peer input: bounding it keeps an error
/// response small however long the header was.
const MAX_ECHOED_VERSION_BYTES: usize = 32;

/// Limits on the request head, checked before anything is allocated.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    /// Largest request head accepted, request line and headers and the blank
    /// line included. Unit: bytes. Default: 8192. A head that does not fit is
    /// refused with 431.
    pub max_head_bytes: usize,
    /// Most header fields accepted. Unit: fields. Default: 64 (the inline,
    /// allocation-free size). More fields are refused with 431.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            max_head_bytes: 8192,
            max_headers: INLINE_HEADERS,
        }
    }
}

/// The request method. Methods are case-sensitive (RFC 9110 §9.1), so `get`
/// is [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    /// Any other method token; the router answers it with 405.
    Other,
}

impl Method {
    /// Maps a method token from the request line.
    pub fn parse(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// What the runtime needs from a request head. It owns its strings because it
/// outlives the read buffer's borrow only for the handshake itself; nothing in
/// here is kept per connection afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The request target without its query, e.g. `/echo`.
    pub path: String,
    /// The raw query after the first `?`, e.g. `token=abc`; `Some("")` for a
    /// target ending in `?`.
    pub query: Option<String>,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub http_minor: u8,
    pub host: Option<String>,
    /// `Upgrade` lists the token `websocket` (case-insensitive, any header).
    pub upgrade_websocket: bool,
    /// `Connection` lists the token `upgrade` (case-insensitive, any header).
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Key` as sent, trimmed; checked by [`validate_upgrade`].
    pub key: Option<String>,
    /// `Sec-WebSocket-Version` as sent, trimmed.
    pub version: Option<String>,
    /// Offered subprotocols in the client's order, from every
    /// `Sec-WebSocket-Protocol` header, split on commas, trimmed, empty
    /// elements dropped.
    pub protocols: Vec<String>,
    /// Each `Sec-WebSocket-Extensions` header value, trimmed and unparsed;
    /// the extension negotiation parses them.
    pub extensions: Vec<String>,
    pub origin: Option<String>,
    pub authorization: Option<String>,
    /// Every `X-Forwarded-For` header joined with `", "` in arrival order, as
    /// HTTP list semantics allow; the runtime decides whether to trust it.
    pub x_forwarded_for: Option<String>,
    /// `Content-Length`, for requests with a body (the server API); a value
    /// that is not a decimal number is refused as malformed.
    pub content_length: Option<u64>,
    /// A `Transfer-Encoding` header was sent (bodies are taken only with a
    /// `Content-Length`: the API refuses the request).
    pub transfer_encoding: bool,
    /// `Connection` lists `close`: answer, then close (keep-alive otherwise,
    /// for HTTP/1.1).
    pub connection_close: bool,
}

/// Why a handshake was refused: one variant per rule, each knowing its HTTP
/// status ([`HandshakeError::status`]). `Display` is a short reason meant for
/// the response body, so it never includes more than a bounded echo of peer
/// input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// httparse rejected the request line or a header; the reason is static.
    #[error("malformed HTTP request: {0}")]
    Malformed(&'static str),
    /// A header this module reads is not valid UTF-8 (unread headers may be).
    #[error("header {0} is not valid UTF-8")]
    NonUtf8Header(&'static str),
    /// A header that must appear at most once appeared twice: reading either
    /// copy would let a proxy and this server disagree on what was asked.
    #[error("header {0} must appear only once")]
    DuplicateHeader(&'static str),
    #[error("request head is larger than {max} bytes")]
    HeadTooLarge { max: usize },
    #[error("request has too many header fields")]
    TooManyHeaders,
    #[error("WebSocket upgrade requires the GET method")]
    MethodNotAllowed,
    #[error("WebSocket upgrade requires HTTP/1.1")]
    NotHttp11,
    #[error("missing Host header")]
    MissingHost,
    /// No `Upgrade: websocket`: most likely a plain HTTP client on a
    /// WebSocket endpoint, hence 426 pointing at the protocol to use.
    #[error("this endpoint speaks only WebSocket: send \"Upgrade: websocket\"")]
    NotUpgrade,
    #[error("Connection header must contain \"upgrade\"")]
    MissingConnectionUpgrade,
    #[error("missing Sec-WebSocket-Version header")]
    MissingVersion,
    /// The version the client asked for (truncated), which is not 13.
    #[error("unsupported Sec-WebSocket-Version {0:?}: this server speaks 13")]
    UnsupportedVersion(String),
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    #[error("Sec-WebSocket-Key must be the base64 encoding of 16 bytes")]
    BadKey,
    /// Used by the router: no endpoint at this path.
    #[error("no such endpoint")]
    NotFound,
    /// Used by the router: missing or invalid token, with the short reason.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Used by the router: the `Origin` is not on the allow-list.
    #[error("origin not allowed")]
    OriginNotAllowed,
}

impl HandshakeError {
    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::Malformed(_)
            | HandshakeError::NonUtf8Header(_)
            | HandshakeError::DuplicateHeader(_)
            | HandshakeError::NotHttp11
            | HandshakeError::MissingHost
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::MissingVersion
            | HandshakeError::MissingKey
            | HandshakeError::BadKey => 400,
            HandshakeError::Unauthorized(_) => 401,
            HandshakeError::OriginNotAllowed => 403,
            HandshakeError::NotFound => 404,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::NotUpgrade | HandshakeError::UnsupportedVersion(_) => 426,
            HandshakeError::HeadTooLarge { .. } | HandshakeError::TooManyHeaders => 431,
        }
    }

    fn from_httparse(err: httparse::Error) -> HandshakeError {
        match err {
            httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders,
            httparse::Error::HeaderName => HandshakeError::Malformed("invalid header name"),
            httparse::Error::HeaderValue => HandshakeError::Malformed("invalid header value"),
            httparse::Error::NewLine => HandshakeError::Malformed("invalid line ending"),
            // `Status` is a response-parsing error; kept for exhaustiveness.
            httparse::Error::Status => HandshakeError::Malformed("invalid request line"),
            httparse::Error::Token => HandshakeError::Malformed("invalid method or request target"),
            // httparse knows only HTTP/1.0 and HTTP/1.1; anything else
            // (HTTP/2 prior knowledge included) ends up here.
            httparse::Error::Version => HandshakeError::Malformed("unsupported HTTP version"),
        }
    }
}

/// Parses an HTTP/1.x request head from the start of `buf`.
///
/// - `Ok(None)`: the head is not complete yet; nothing is consumed.
/// - `Ok(Some((head_len, head)))`: the head is exactly `buf[..head_len]`;
///   bytes after it are pipelined data the caller must keep.
/// - `Err(HeadTooLarge)` as soon as the first `max_head_bytes` bytes hold no
///   complete head (so a head of exactly `max_head_bytes` is accepted).
/// - `Err(TooManyHeaders)` past `max_headers` fields, `Err(Malformed)` for any
///   other syntax error, `Err(NonUtf8Header)` / `Err(DuplicateHeader)` for
///   the headers this module reads.
pub fn parse_request(
    buf: &[u8],
    limits: &HandshakeLimits,
) -> Result<Option<(usize, RequestHead)>, HandshakeError> {
    // Never scan past the limit: whatever is buffered beyond it cannot be
    // part of an acceptable head, and the scan cost stays bounded.
    let window = &buf[..buf.len().min(limits.max_head_bytes)];

    let mut inline = [httparse::EMPTY_HEADER; INLINE_HEADERS];
    let mut spilled: Vec<httparse::Header<'_>>;
    let slots: &mut [httparse::Header<'_>] = if limits.max_headers <= INLINE_HEADERS {
        &mut inline[..limits.max_headers]
    } else {
        spilled = vec![httparse::EMPTY_HEADER; limits.max_headers];
        &mut spilled
    };

    let mut req = httparse::Request::new(slots);
    match req.parse(window) {
        Ok(httparse::Status::Complete(head_len)) => Ok(Some((head_len, head_from(&req)?))),
        // The window is full and still partial: the head needs more than
        // `max_head_bytes`, so waiting for more bytes cannot help.
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_bytes => {
            Err(HandshakeError::HeadTooLarge {
                max: limits.max_head_bytes,
            })
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(err) => Err(HandshakeError::from_httparse(err)),
    }
}

/// The headers this module reads; every other header is skipped unread.
#[derive(Debug, Clone, Copy)]
enum Known {
    Host,
    Upgrade,
    Connection,
    Key,
    Version,
    Protocol,
    Extensions,
    Origin,
    Authorization,
    XForwardedFor,
    ContentLength,
    TransferEncoding,
}

const KNOWN_HEADERS: [(&str, Known); 12] = [
    ("Host", Known::Host),
    ("Upgrade", Known::Upgrade),
    ("Connection", Known::Connection),
    ("Sec-WebSocket-Key", Known::Key),
    ("Sec-WebSocket-Version", Known::Version),
    ("Sec-WebSocket-Protocol", Known::Protocol),
    ("Sec-WebSocket-Extensions", Known::Extensions),
    ("Origin", Known::Origin),
    ("Authorization", Known::Authorization),
    ("X-Forwarded-For", Known::XForwardedFor),
    ("Content-Length", Known::ContentLength),
    ("Transfer-Encoding", Known::TransferEncoding),
];

/// Looks a header name up case-insensitively; returns its canonical spelling
/// (used in error messages) and kind.
fn known_header(name: &str) -> Option<(&'static str, Known)> {
    KNOWN_HEADERS
        .iter()
        .find(|(canonical, _)| canonical.eq_ignore_ascii_case(name))
        .copied()
}

/// Builds the owned head from a complete httparse request.
fn head_from(req: &httparse::Request<'_, '_>) -> Result<RequestHead, HandshakeError> {
    // httparse fills all three on `Complete`; the fallbacks only keep this
    // function total.
    let (Some(method), Some(target), Some(http_minor)) = (req.method, req.path, req.version) else {
        return Err(HandshakeError::Malformed("incomplete request line"));
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };

    let mut head = RequestHead {
        method: Method::parse(method),
        path: path.to_owned(),
        query,
        http_minor,
        host: None,
        upgrade_websocket: false,
        connection_upgrade: false,
        key: None,
        version: None,
        protocols: Vec::new(),
        extensions: Vec::new(),
        origin: None,
        authorization: None,
        x_forwarded_for: None,
        content_length: None,
        transfer_encoding: false,
        connection_close: false,
    };

    for header in req.headers.iter() {
        let Some((canonical, kind)) = known_header(header.name) else {
            continue;
        };
        let value = std::str::from_utf8(header.value)
            .map_err(|_| HandshakeError::NonUtf8Header(canonical))?
            .trim_matches(is_ows);
        match kind {
            Known::Host => set_once(&mut head.host, canonical, value)?,
            Known::Key => set_once(&mut head.key, canonical, value)?,
            Known::Version => set_once(&mut head.version, canonical, value)?,
            Known::Origin => set_once(&mut head.origin, canonical, value)?,
            Known::Authorization => set_once(&mut head.authorization, canonical, value)?,
            Known::Upgrade => head.upgrade_websocket |= has_token(value, "websocket"),
            Known::Connection => {
                head.connection_upgrade |= has_token(value, "upgrade");
                head.connection_close |= has_token(value, "close");
            }
            Known::ContentLength => {
                if head.content_length.is_some() {
                    return Err(HandshakeError::DuplicateHeader(canonical));
                }
                let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                let length = value.parse::<u64>().ok().filter(|_| valid);
                head.content_length =
                    Some(length.ok_or(HandshakeError::Malformed("invalid Content-Length"))?);
            }
            Known::TransferEncoding => head.transfer_encoding = true,
            Known::Protocol => head
                .protocols
                .extend(list_elements(value).map(str::to_owned)),
            Known::Extensions => {
                if !value.is_empty() {
                    head.extensions.push(value.to_owned());
                }
            }
            Known::XForwardedFor => match &mut head.x_forwarded_for {
                Some(joined) => {
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                None => head.x_forwarded_for = Some(value.to_owned()),
            },
        }
    }
    Ok(head)
}

/// Optional whitespace around header values and list elements (RFC 9110 §5.6.3).
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn set_once(
    slot: &mut Option<String>,
    canonical: &'static str,
    value: &str,
) -> Result<(), HandshakeError> {
    if slot.is_some() {
        return Err(HandshakeError::DuplicateHeader(canonical));
    }
    *slot = Some(value.to_owned());
    Ok(())
}

/// The non-empty, trimmed elements of a comma-separated header list.
fn list_elements(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|element| element.trim_matches(is_ows))
        .filter(|element| !element.is_empty())
}

/// Whether a comma list contains `token` as a whole element, ignoring ASCII
/// case: `keep-alive, Upgrade` has `upgrade`, `Upgradex` does not.
fn has_token(value: &str, token: &str) -> bool {
    list_elements(value).any(|element| element.eq_ignore_ascii_case(token))
}

/// Checks a parsed head against RFC 6455 §4.2.1 and returns the
/// `Sec-WebSocket-Accept` value.
///
/// Rules, in this order (the first broken one is reported):
/// 1. method is GET, else `MethodNotAllowed` (405);
/// 2. HTTP/1.1 or later, else `NotHttp11` (400);
/// 3. `Host` present and non-empty, else `MissingHost` (400);
/// 4. `Upgrade` lists `websocket`, else `NotUpgrade` (426, so a plain HTTP
///    client is told which protocol the endpoint wants);
/// 5. `Connection` lists `upgrade`, else `MissingConnectionUpgrade` (400);
/// 6. `Sec-WebSocket-Version` present (`MissingVersion`, 400) and `13`
///    (`UnsupportedVersion`, 426 with `Sec-WebSocket-Version: 13`);
/// 7. `Sec-WebSocket-Key` present (`MissingKey`, 400) and the canonical
///    base64 of exactly 16 bytes (`BadKey`, 400).
pub fn validate_upgrade(head: &RequestHead) -> Result<String, HandshakeError> {
    if head.method != Method::Get {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if head.http_minor < 1 {
        return Err(HandshakeError::NotHttp11);
    }
    if let None | Some("") = head.host.as_deref() {
        return Err(HandshakeError::MissingHost);
    }
    if !head.upgrade_websocket {
        return Err(HandshakeError::NotUpgrade);
    }
    if !head.connection_upgrade {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    match head.version.as_deref() {
        None => return Err(HandshakeError::MissingVersion),
        Some(SUPPORTED_VERSION) => {}
        Some(other) => {
            return Err(HandshakeError::UnsupportedVersion(
                truncate_at_char(other, MAX_ECHOED_VERSION_BYTES).to_owned(),
            ))
        }
    }
    let key = head.key.as_deref().ok_or(HandshakeError::MissingKey)?;
    if !is_valid_key(key) {
        return Err(HandshakeError::BadKey);
    }
    Ok(accept_key(key))
}

/// Whether `key` is the base64 of a 16-byte nonce (RFC 6455 §4.1, item 7).
fn is_valid_key(key: &str) -> bool {
    // 16 bytes always encode to 22 characters plus "==": checking the length
    // first keeps the decode below on a fixed stack buffer. 18 bytes is what
    // the decoder asks room for when given 24 characters.
    if key.len() != 24 {
        return false;
    }
    let mut nonce = [0u8; 18];
    matches!(BASE64.decode_slice(key, &mut nonce), Ok(16))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
fn truncate_at_char(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Picks the subprotocol to answer with: the first of the client's offers, in
/// the client's order, that the server supports (exact, case-sensitive match,
/// because the client fails the connection unless the answer is one of its
/// offers verbatim). `None` means no `Sec-WebSocket-Protocol` is sent.
pub fn select_subprotocol<'a>(offered: &'a [String], supported: &[String]) -> Option<&'a str> {
    offered
        .iter()
        .find(|offer| supported.iter().any(|s| s == *offer))
        .map(String::as_str)
}

#[cfg(test)]
mod tests;

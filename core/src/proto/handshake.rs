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
//! The file runs past 800 lines because of its tests: the code is about 600
//! lines, the rest is literal-byte tests for every rule, status and length
//! boundary, kept beside the code they pin down.
//!
//! The file is long because its tests live beside the code: the wire-byte tests of every refusal and of split and pipelined requests.

use std::io::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};

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
}

const KNOWN_HEADERS: [(&str, Known); 10] = [
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
            Known::Connection => head.connection_upgrade |= has_token(value, "upgrade"),
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

/// Appends the `101 Switching Protocols` response: `Upgrade`, `Connection`,
/// `Sec-WebSocket-Accept`, `Sec-WebSocket-Protocol` when `protocol` is set,
/// then each `extra_headers` pair as `Name: value`.
pub fn encode_accept_response_into(
    out: &mut Vec<u8>,
    accept: &str,
    protocol: Option<&str>,
    extra_headers: &[(&str, &str)],
) {
    push_status_line(out, 101);
    push_header(out, "Upgrade", "websocket");
    push_header(out, "Connection", "Upgrade");
    push_header(out, "Sec-WebSocket-Accept", accept);
    if let Some(protocol) = protocol {
        push_header(out, "Sec-WebSocket-Protocol", protocol);
    }
    for (name, value) in extra_headers {
        push_header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the refusal for `err`: its status line, `Content-Type`,
/// `Content-Length`, `Connection: close`, the headers its status calls for
/// (405 `Allow: GET`; 426 `Sec-WebSocket-Version: 13` and `Upgrade:
/// websocket`; 401 `WWW-Authenticate: Bearer`), and the body `"{err}\n"`.
pub fn encode_error_response_into(out: &mut Vec<u8>, err: &HandshakeError) {
    // The body length is only known once it is formatted, so the body is
    // written first, the head after it, and the two are swapped in place:
    // no temporary buffer on the error path.
    let start = out.len();
    // io::Write on a Vec never fails; the Result carries nothing.
    let _ = writeln!(out, "{err}");
    let body_len = out.len() - start;

    let status = err.status();
    push_status_line(out, status);
    push_header(out, "Content-Type", "text/plain; charset=utf-8");
    push_content_length(out, body_len);
    push_header(out, "Connection", "close");
    match status {
        401 => push_header(out, "WWW-Authenticate", "Bearer"),
        405 => push_header(out, "Allow", "GET"),
        426 => {
            push_header(out, "Sec-WebSocket-Version", SUPPORTED_VERSION);
            push_header(out, "Upgrade", "websocket");
        }
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
    out[start..].rotate_left(body_len);
}

/// Appends a plain HTTP response (`/healthz`, `/metrics`, ...): status line,
/// `Content-Type` (omitted when empty), `Content-Length`, `Connection: close`
/// unless `extra_headers` carries its own `Connection` (e.g. `keep-alive`),
/// the extra headers, then `body`.
pub fn encode_plain_response_into(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) {
    push_status_line(out, status);
    if !content_type.is_empty() {
        push_header(out, "Content-Type", content_type);
    }
    push_content_length(out, body.len());
    if !extra_headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Connection"))
    {
        push_header(out, "Connection", "close");
    }
    for (name, value) in extra_headers {
        push_header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// The reason phrase for the statuses this server sends; empty (which HTTP
/// allows) for any other.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn push_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    // Values come from our own code or from request headers httparse already
    // proved free of CR/LF; a line break here would split the response.
    debug_assert!(!name.contains(['\r', '\n']) && !value.contains(['\r', '\n']));
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_content_length(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, len);
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in decimal without going through the formatting machinery.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample handshake of RFC 6455 §1.3.
    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\
\r\n";

    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn parse(buf: &[u8]) -> Result<Option<(usize, RequestHead)>, HandshakeError> {
        parse_request(buf, &HandshakeLimits::default())
    }

    /// Parses a request that must be complete and returns its head.
    fn head(buf: &[u8]) -> RequestHead {
        match parse(buf) {
            Ok(Some((len, head))) => {
                assert_eq!(len, buf.len());
                head
            }
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    /// Parses and validates a complete request.
    fn upgrade(buf: &[u8]) -> Result<String, HandshakeError> {
        validate_upgrade(&head(buf))
    }

    /// A valid upgrade to `/ws` with `middle` inserted among the headers.
    fn request_with(middle: &str) -> Vec<u8> {
        format!(
            "GET /ws HTTP/1.1\r\nHost: a\r\n{middle}\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .into_bytes()
    }

    fn error_response(err: &HandshakeError) -> String {
        let mut out = Vec::new();
        encode_error_response_into(&mut out, err);
        String::from_utf8(out).expect("responses are ASCII/UTF-8")
    }

    // --- accept key and the RFC sample -------------------------------------

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), RFC_ACCEPT);
    }

    #[test]
    fn rfc_sample_request_parses_and_validates() {
        let head = head(RFC_REQUEST);
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path, "/chat");
        assert_eq!(head.query, None);
        assert_eq!(head.http_minor, 1);
        assert_eq!(head.host.as_deref(), Some("server.example.com"));
        assert!(head.upgrade_websocket);
        assert!(head.connection_upgrade);
        assert_eq!(head.key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(head.version.as_deref(), Some("13"));
        assert_eq!(head.protocols, ["chat", "superchat"]);
        assert!(head.extensions.is_empty());
        assert_eq!(head.origin.as_deref(), Some("http://example.com"));
        assert_eq!(head.authorization, None);
        assert_eq!(head.x_forwarded_for, None);
        assert_eq!(validate_upgrade(&head).as_deref(), Ok(RFC_ACCEPT));
    }

    // --- incremental input and pipelining ----------------------------------

    #[test]
    fn every_strict_prefix_needs_more_bytes() {
        for end in 0..RFC_REQUEST.len() {
            assert_eq!(
                parse(&RFC_REQUEST[..end]),
                Ok(None),
                "prefix of {end} bytes"
            );
        }
        assert_eq!(
            parse(RFC_REQUEST).map(|r| r.map(|(n, _)| n)),
            Ok(Some(RFC_REQUEST.len()))
        );
    }

    #[test]
    fn byte_by_byte_arrival_completes_once() {
        let mut buf = Vec::new();
        let mut completed_at = None;
        for (i, byte) in RFC_REQUEST.iter().enumerate() {
            buf.push(*byte);
            if let Some((len, _)) = parse(&buf).expect("no prefix is an error") {
                completed_at = Some((i, len));
                break;
            }
        }
        assert_eq!(
            completed_at,
            Some((RFC_REQUEST.len() - 1, RFC_REQUEST.len()))
        );
    }

    #[test]
    fn pipelined_bytes_are_not_part_of_the_head() {
        let mut buf = RFC_REQUEST.to_vec();
        // A masked text frame "Hello" sent right behind the request.
        buf.extend_from_slice(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
        let (len, head) = parse(&buf).expect("valid").expect("complete");
        assert_eq!(len, RFC_REQUEST.len());
        assert_eq!(&buf[len..], b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
        assert_eq!(validate_upgrade(&head).as_deref(), Ok(RFC_ACCEPT));
    }

    #[test]
    fn single_pipelined_byte_is_kept() {
        let mut buf = RFC_REQUEST.to_vec();
        buf.push(b'\x81');
        assert_eq!(
            parse(&buf).map(|r| r.map(|(n, _)| n)),
            Ok(Some(RFC_REQUEST.len()))
        );
    }

    // --- request line ------------------------------------------------------

    #[test]
    fn target_splits_into_path_and_query() {
        let head = head(b"GET /ws?token=abc&x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query.as_deref(), Some("token=abc&x=1"));

        let head = self::head(b"GET /ws? HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query.as_deref(), Some(""));

        // Only the first '?' splits.
        let head = self::head(b"GET /a?b?c HTTP/1.1\r\n\r\n");
        assert_eq!(head.path, "/a");
        assert_eq!(head.query.as_deref(), Some("b?c"));
    }

    #[test]
    fn methods_map_and_unknown_is_other() {
        let cases: [(&[u8], Method); 9] = [
            (b"GET / HTTP/1.1\r\n\r\n", Method::Get),
            (b"HEAD / HTTP/1.1\r\n\r\n", Method::Head),
            (b"POST / HTTP/1.1\r\n\r\n", Method::Post),
            (b"PUT / HTTP/1.1\r\n\r\n", Method::Put),
            (b"DELETE / HTTP/1.1\r\n\r\n", Method::Delete),
            (b"OPTIONS * HTTP/1.1\r\n\r\n", Method::Options),
            (b"PATCH / HTTP/1.1\r\n\r\n", Method::Patch),
            (b"BREW / HTTP/1.1\r\n\r\n", Method::Other),
            // Methods are case-sensitive.
            (b"get / HTTP/1.1\r\n\r\n", Method::Other),
        ];
        for (request, method) in cases {
            assert_eq!(head(request).method, method);
        }
    }

    #[test]
    fn http_1_0_parses_with_minor_zero_and_is_refused() {
        let head = head(
            b"GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert_eq!(head.http_minor, 0);
        assert_eq!(validate_upgrade(&head), Err(HandshakeError::NotHttp11));
        assert_eq!(HandshakeError::NotHttp11.status(), 400);
    }

    #[test]
    fn other_http_versions_are_malformed() {
        let err = parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(
            err,
            Err(HandshakeError::Malformed("unsupported HTTP version"))
        );
        assert_eq!(
            parse(b"GET / HTTP/1.2\r\n\r\n"),
            Err(HandshakeError::Malformed("unsupported HTTP version"))
        );
    }

    #[test]
    fn syntax_errors_are_malformed_400() {
        let cases: [&[u8]; 4] = [
            b"GET /chat HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            b"GET\t/chat HTTP/1.1\r\n\r\n",
            // A request target that is not UTF-8.
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ];
        for request in cases {
            match parse(request) {
                Err(err @ HandshakeError::Malformed(_)) => assert_eq!(err.status(), 400),
                other => panic!("{request:?}: expected Malformed, got {other:?}"),
            }
        }
    }

    // --- header reading ----------------------------------------------------

    #[test]
    fn header_names_are_case_insensitive() {
        let head = head(
            b"GET /ws HTTP/1.1\r\nhOsT: a\r\nUPGRADE: WebSocket\r\nconnection: UPGRADE\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\
sec-websocket-protocol: v1\r\nORIGIN: http://o\r\nauthorization: Bearer t\r\n\
x-forwarded-for: 10.0.0.1\r\nSec-Websocket-Extensions: permessage-deflate\r\n\r\n",
        );
        assert_eq!(head.host.as_deref(), Some("a"));
        assert!(head.upgrade_websocket && head.connection_upgrade);
        assert_eq!(head.protocols, ["v1"]);
        assert_eq!(head.extensions, ["permessage-deflate"]);
        assert_eq!(head.origin.as_deref(), Some("http://o"));
        assert_eq!(head.authorization.as_deref(), Some("Bearer t"));
        assert_eq!(head.x_forwarded_for.as_deref(), Some("10.0.0.1"));
        assert_eq!(validate_upgrade(&head).as_deref(), Ok(RFC_ACCEPT));
    }

    #[test]
    fn values_are_trimmed() {
        let head = head(
            b"GET /ws HTTP/1.1\r\nHost:   a  \r\nSec-WebSocket-Key: \t dGhlIHNhbXBsZSBub25jZQ== \t\r\n\
Sec-WebSocket-Version:13\r\n\r\n",
        );
        assert_eq!(head.host.as_deref(), Some("a"));
        assert_eq!(head.key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(head.version.as_deref(), Some("13"));
    }

    #[test]
    fn connection_keep_alive_then_upgrade_is_accepted() {
        let request = request_with("Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n");
        assert_eq!(upgrade(&request).as_deref(), Ok(RFC_ACCEPT));
    }

    #[test]
    fn connection_tokens_across_repeated_headers() {
        let request =
            request_with("Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n");
        assert_eq!(upgrade(&request).as_deref(), Ok(RFC_ACCEPT));
    }

    #[test]
    fn connection_keep_alive_only_is_400() {
        let request = request_with("Upgrade: websocket\r\nConnection: keep-alive\r\n");
        let err = upgrade(&request).expect_err("no upgrade token");
        assert_eq!(err, HandshakeError::MissingConnectionUpgrade);
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn connection_token_must_match_whole_element() {
        for connection in ["Upgradex", "keep-alive upgrade", "up grade", "", ","] {
            let request = request_with(&format!(
                "Upgrade: websocket\r\nConnection: {connection}\r\n"
            ));
            assert_eq!(
                upgrade(&request),
                Err(HandshakeError::MissingConnectionUpgrade),
                "Connection: {connection:?}"
            );
        }
    }

    #[test]
    fn upgrade_token_list_and_case() {
        let request = request_with("Upgrade: h2c, WebSocket\r\nConnection: Upgrade\r\n");
        assert_eq!(upgrade(&request).as_deref(), Ok(RFC_ACCEPT));

        let request = request_with("Upgrade: websocketx\r\nConnection: Upgrade\r\n");
        assert_eq!(upgrade(&request), Err(HandshakeError::NotUpgrade));
    }

    #[test]
    fn protocols_split_trimmed_in_order_across_headers() {
        let head = head(
            b"GET /ws HTTP/1.1\r\nSec-WebSocket-Protocol: a, b ,,\tc\r\n\
Sec-WebSocket-Protocol: d\r\nSec-WebSocket-Protocol: \r\n\r\n",
        );
        assert_eq!(head.protocols, ["a", "b", "c", "d"]);
    }

    #[test]
    fn extensions_are_kept_raw_per_header() {
        let head = head(
            b"GET /ws HTTP/1.1\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
Sec-WebSocket-Extensions: x-bar\r\n\r\n",
        );
        assert_eq!(
            head.extensions,
            ["permessage-deflate; client_max_window_bits, x-foo", "x-bar"]
        );
    }

    #[test]
    fn x_forwarded_for_headers_are_joined() {
        let head = head(
            b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-For: 3.3.3.3\r\n\r\n",
        );
        assert_eq!(
            head.x_forwarded_for.as_deref(),
            Some("1.1.1.1, 2.2.2.2, 3.3.3.3")
        );
    }

    #[test]
    fn duplicate_single_headers_are_refused() {
        let cases: [(&[u8], &str); 5] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host"),
            (
                b"GET / HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                "Sec-WebSocket-Key",
            ),
            (
                b"GET / HTTP/1.1\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "Sec-WebSocket-Version",
            ),
            (
                b"GET / HTTP/1.1\r\nOrigin: a\r\nOrigin: b\r\n\r\n",
                "Origin",
            ),
            (
                b"GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
                "Authorization",
            ),
        ];
        for (request, name) in cases {
            let err = parse(request).expect_err("duplicate");
            assert_eq!(err, HandshakeError::DuplicateHeader(name));
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn non_utf8_value_is_refused_only_in_headers_we_read() {
        let err = parse(b"GET / HTTP/1.1\r\nSec-WebSocket-Protocol: \xc3\x28\r\n\r\n");
        assert_eq!(
            err,
            Err(HandshakeError::NonUtf8Header("Sec-WebSocket-Protocol"))
        );

        // An unread header with obs-text is none of our business.
        let request =
            request_with("Upgrade: websocket\r\nConnection: Upgrade\r\nUser-Agent: caf\u{e9}\r\n");
        let mut latin1 = request.clone();
        let at = latin1
            .windows(2)
            .position(|w| w == "\u{e9}".as_bytes())
            .expect("present");
        latin1.splice(at..at + 2, [0xe9]);
        assert_eq!(upgrade(&latin1).as_deref(), Ok(RFC_ACCEPT));
    }

    // --- validation failures -----------------------------------------------

    #[test]
    fn post_is_405_with_allow_get() {
        let head = head(
            b"POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        let err = validate_upgrade(&head).expect_err("POST");
        assert_eq!(err, HandshakeError::MethodNotAllowed);
        assert_eq!(
            error_response(&err),
            "HTTP/1.1 405 Method Not Allowed\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 42\r\n\
Connection: close\r\n\
Allow: GET\r\n\
\r\n\
WebSocket upgrade requires the GET method\n"
        );
    }

    #[test]
    fn head_method_is_405() {
        let head = head(b"HEAD /ws HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            validate_upgrade(&head),
            Err(HandshakeError::MethodNotAllowed)
        );
    }

    #[test]
    fn missing_or_empty_host_is_400() {
        let request = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let err = upgrade(request).expect_err("no Host");
        assert_eq!(err, HandshakeError::MissingHost);
        assert_eq!(err.status(), 400);

        let request = b"GET /ws HTTP/1.1\r\nHost:\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(upgrade(request), Err(HandshakeError::MissingHost));
    }

    #[test]
    fn plain_get_is_426_not_upgrade() {
        let err = upgrade(b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n").expect_err("plain GET");
        assert_eq!(err, HandshakeError::NotUpgrade);
        assert_eq!(err.status(), 426);
    }

    #[test]
    fn missing_version_is_400() {
        let request =
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let err = upgrade(request).expect_err("no version");
        assert_eq!(err, HandshakeError::MissingVersion);
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn version_8_is_426_with_exact_response() {
        let request =
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
        let err = upgrade(request).expect_err("version 8");
        assert_eq!(err, HandshakeError::UnsupportedVersion("8".to_owned()));
        assert_eq!(err.status(), 426);
        assert_eq!(
            error_response(&err),
            "HTTP/1.1 426 Upgrade Required\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 61\r\n\
Connection: close\r\n\
Sec-WebSocket-Version: 13\r\n\
Upgrade: websocket\r\n\
\r\n\
unsupported Sec-WebSocket-Version \"8\": this server speaks 13\n"
        );
    }

    #[test]
    fn long_unsupported_version_is_truncated_in_the_error() {
        let version = "9".repeat(100);
        let request = request_with(&format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: {version}\r\n"
        ));
        // `request_with` adds its own version header: this one is a duplicate.
        assert_eq!(
            parse(&request),
            Err(HandshakeError::DuplicateHeader("Sec-WebSocket-Version"))
        );

        let mut head = head(&request_with(
            "Upgrade: websocket\r\nConnection: Upgrade\r\n",
        ));
        head.version = Some(version);
        assert_eq!(
            validate_upgrade(&head),
            Err(HandshakeError::UnsupportedVersion("9".repeat(32)))
        );
        // Truncation respects char boundaries.
        head.version = Some("é".repeat(20));
        assert_eq!(
            validate_upgrade(&head),
            Err(HandshakeError::UnsupportedVersion("é".repeat(16)))
        );
    }

    #[test]
    fn bad_keys_are_400() {
        let keys = [
            // 15 bytes decoded ("AAECAwQFBgcICQoLDA0O" is 0..=14).
            "AAECAwQFBgcICQoLDA0O",
            // 17 bytes decoded, 24 characters like a good key.
            "AAECAwQFBgcICQoLDA0ODxA=",
            // 18 bytes decoded, 24 characters, no padding.
            "AAECAwQFBgcICQoLDA0ODxAR",
            // Not base64.
            "!!!!!!!!!!!!!!!!!!!!!!==",
            "not a websocket key",
            // 16 bytes but with non-zero trailing bits (non-canonical).
            "dGhlIHNhbXBsZSBub25jZR==",
            // 16 bytes without padding.
            "dGhlIHNhbXBsZSBub25jZQ",
            // URL-safe alphabet.
            "-_-_-_-_-_-_-_-_-_-_-w==",
            "",
        ];
        for key in keys {
            let request = format!(
                "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            let err = upgrade(request.as_bytes()).expect_err(key);
            assert_eq!(err, HandshakeError::BadKey, "key {key:?}");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn any_16_byte_key_is_accepted() {
        // 0..=15, and all-ones: both alphabet ends.
        for key in ["AAECAwQFBgcICQoLDA0ODw==", "/////////////////////w=="] {
            let request = format!(
                "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            assert_eq!(upgrade(request.as_bytes()), Ok(accept_key(key)));
        }
    }

    #[test]
    fn missing_key_is_400() {
        let request =
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
        let err = upgrade(request).expect_err("no key");
        assert_eq!(err, HandshakeError::MissingKey);
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn checks_run_in_rfc_order() {
        // Everything is wrong: the method is reported first.
        let mut head = head(b"POST /ws HTTP/1.0\r\n\r\n");
        assert_eq!(
            validate_upgrade(&head),
            Err(HandshakeError::MethodNotAllowed)
        );
        head.method = Method::Get;
        assert_eq!(validate_upgrade(&head), Err(HandshakeError::NotHttp11));
        head.http_minor = 1;
        assert_eq!(validate_upgrade(&head), Err(HandshakeError::MissingHost));
        head.host = Some("a".into());
        assert_eq!(validate_upgrade(&head), Err(HandshakeError::NotUpgrade));
        head.upgrade_websocket = true;
        assert_eq!(
            validate_upgrade(&head),
            Err(HandshakeError::MissingConnectionUpgrade)
        );
        head.connection_upgrade = true;
        assert_eq!(validate_upgrade(&head), Err(HandshakeError::MissingVersion));
        head.version = Some("13".into());
        assert_eq!(validate_upgrade(&head), Err(HandshakeError::MissingKey));
        head.key = Some("x".into());
        assert_eq!(validate_upgrade(&head), Err(HandshakeError::BadKey));
        head.key = Some("dGhlIHNhbXBsZSBub25jZQ==".into());
        assert_eq!(validate_upgrade(&head).as_deref(), Ok(RFC_ACCEPT));
    }

    // --- limits ------------------------------------------------------------

    /// A complete request of exactly `len` bytes (`len` >= 40), padded with
    /// one `X-Pad` header.
    fn request_of_len(len: usize) -> Vec<u8> {
        let fixed = b"GET / HTTP/1.1\r\nX-Pad: \r\n\r\n".len();
        let mut request = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        request.resize(len - 4, b'p');
        request.extend_from_slice(b"\r\n\r\n");
        assert!(len > fixed && request.len() == len);
        request
    }

    #[test]
    fn nine_kib_head_is_431() {
        let request = request_of_len(9 * 1024);
        let err = parse(&request).expect_err("too large");
        assert_eq!(err, HandshakeError::HeadTooLarge { max: 8192 });
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn head_size_boundary_is_inclusive() {
        let request = request_of_len(8192);
        assert_eq!(parse(&request).map(|r| r.map(|(n, _)| n)), Ok(Some(8192)));

        let request = request_of_len(8193);
        assert_eq!(
            parse(&request),
            Err(HandshakeError::HeadTooLarge { max: 8192 })
        );
        // Refused as soon as the limit is reached without a complete head,
        // not only once the rest arrives.
        assert_eq!(
            parse(&request[..8192]),
            Err(HandshakeError::HeadTooLarge { max: 8192 })
        );
        assert_eq!(parse(&request[..8191]), Ok(None));
    }

    #[test]
    fn head_within_limit_followed_by_much_data_is_accepted() {
        let mut buf = RFC_REQUEST.to_vec();
        buf.resize(20_000, 0x82);
        assert_eq!(
            parse(&buf).map(|r| r.map(|(n, _)| n)),
            Ok(Some(RFC_REQUEST.len()))
        );
    }

    #[test]
    fn small_limit_is_honoured() {
        let limits = HandshakeLimits {
            max_head_bytes: 16,
            ..HandshakeLimits::default()
        };
        assert_eq!(parse_request(b"GET / HTTP/1.1\r", &limits), Ok(None));
        // 16 bytes buffered and still partial: the head cannot fit.
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\n", &limits),
            Err(HandshakeError::HeadTooLarge { max: 16 })
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\n\r\n", &limits),
            Err(HandshakeError::HeadTooLarge { max: 16 })
        );
        // A head of exactly the limit fits.
        assert!(matches!(
            parse_request(b"GET / HTTP/1.0\n\n", &limits),
            Ok(Some((16, _)))
        ));
    }

    /// A request with `n` distinct `X-H{i}` headers.
    fn request_with_headers(n: usize) -> Vec<u8> {
        let mut request = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..n {
            request.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request
    }

    #[test]
    fn header_count_boundary() {
        assert!(matches!(parse(&request_with_headers(64)), Ok(Some(_))));
        let err = parse(&request_with_headers(65)).expect_err("65 headers");
        assert_eq!(err, HandshakeError::TooManyHeaders);
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn hundred_headers_is_431() {
        let err = parse(&request_with_headers(100)).expect_err("100 headers");
        assert_eq!(err, HandshakeError::TooManyHeaders);
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn more_headers_than_inline_when_configured() {
        let limits = HandshakeLimits {
            max_headers: 100,
            ..HandshakeLimits::default()
        };
        let request = request_with_headers(100);
        assert!(matches!(parse_request(&request, &limits), Ok(Some(_))));
        assert_eq!(
            parse_request(&request_with_headers(101), &limits),
            Err(HandshakeError::TooManyHeaders)
        );
    }

    #[test]
    fn fewer_headers_when_configured() {
        let limits = HandshakeLimits {
            max_headers: 2,
            ..HandshakeLimits::default()
        };
        assert!(matches!(
            parse_request(&request_with_headers(2), &limits),
            Ok(Some(_))
        ));
        assert_eq!(
            parse_request(&request_with_headers(3), &limits),
            Err(HandshakeError::TooManyHeaders)
        );
    }

    // --- subprotocols ------------------------------------------------------

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn subprotocol_follows_client_order() {
        let offered = strings(&["chat", "superchat", "v1.ringcast"]);
        let supported = strings(&["v1.ringcast", "superchat"]);
        assert_eq!(select_subprotocol(&offered, &supported), Some("superchat"));
    }

    #[test]
    fn subprotocol_none_when_nothing_matches() {
        let offered = strings(&["chat", "superchat"]);
        assert_eq!(
            select_subprotocol(&offered, &strings(&["v1.ringcast"])),
            None
        );
        assert_eq!(select_subprotocol(&offered, &[]), None);
        assert_eq!(select_subprotocol(&[], &strings(&["chat"])), None);
        // Exact match only: the client checks the answer verbatim.
        assert_eq!(
            select_subprotocol(&strings(&["Chat"]), &strings(&["chat"])),
            None
        );
    }

    // --- response bytes ----------------------------------------------------

    #[test]
    fn accept_response_bytes_for_rfc_sample() {
        let head = head(RFC_REQUEST);
        let accept = validate_upgrade(&head).expect("valid");
        let protocol = select_subprotocol(&head.protocols, &strings(&["chat"]));
        let mut out = Vec::new();
        encode_accept_response_into(&mut out, &accept, protocol, &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\
\r\n"
        );
    }

    #[test]
    fn accept_response_without_protocol_with_extra_headers() {
        let mut out = Vec::new();
        encode_accept_response_into(
            &mut out,
            RFC_ACCEPT,
            None,
            &[("Sec-WebSocket-Extensions", "permessage-deflate")],
        );
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\
\r\n"
        );
    }

    #[test]
    fn error_response_appends_after_existing_bytes() {
        let mut out = b"previous".to_vec();
        encode_error_response_into(&mut out, &HandshakeError::NotFound);
        assert_eq!(
            out,
            b"previousHTTP/1.1 404 Not Found\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 17\r\n\
Connection: close\r\n\
\r\n\
no such endpoint\n"
        );
    }

    #[test]
    fn error_responses_for_431_and_401() {
        assert_eq!(
            error_response(&HandshakeError::HeadTooLarge { max: 8192 }),
            "HTTP/1.1 431 Request Header Fields Too Large\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 39\r\n\
Connection: close\r\n\
\r\n\
request head is larger than 8192 bytes\n"
        );
        assert_eq!(
            error_response(&HandshakeError::Unauthorized("missing token")),
            "HTTP/1.1 401 Unauthorized\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 28\r\n\
Connection: close\r\n\
WWW-Authenticate: Bearer\r\n\
\r\n\
unauthorized: missing token\n"
        );
    }

    #[test]
    fn every_error_has_a_status_and_a_reason_body() {
        let all = [
            (HandshakeError::Malformed("invalid header name"), 400),
            (HandshakeError::NonUtf8Header("Host"), 400),
            (HandshakeError::DuplicateHeader("Host"), 400),
            (HandshakeError::HeadTooLarge { max: 1 }, 431),
            (HandshakeError::TooManyHeaders, 431),
            (HandshakeError::MethodNotAllowed, 405),
            (HandshakeError::NotHttp11, 400),
            (HandshakeError::MissingHost, 400),
            (HandshakeError::NotUpgrade, 426),
            (HandshakeError::MissingConnectionUpgrade, 400),
            (HandshakeError::MissingVersion, 400),
            (HandshakeError::UnsupportedVersion("7".into()), 426),
            (HandshakeError::MissingKey, 400),
            (HandshakeError::BadKey, 400),
            (HandshakeError::NotFound, 404),
            (HandshakeError::Unauthorized("expired"), 401),
            (HandshakeError::OriginNotAllowed, 403),
        ];
        for (err, status) in all {
            assert_eq!(err.status(), status, "{err:?}");
            assert!(!reason_phrase(status).is_empty());
            let response = error_response(&err);
            let (head, body) = response.split_once("\r\n\r\n").expect("blank line");
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")));
            assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
            assert_eq!(body, format!("{err}\n"));
        }
    }

    #[test]
    fn plain_response_bytes() {
        let mut out = Vec::new();
        encode_plain_response_into(&mut out, 200, "text/plain", b"ok\n", &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\n\
Content-Type: text/plain\r\n\
Content-Length: 3\r\n\
Connection: close\r\n\
\r\n\
ok\n"
        );
    }

    #[test]
    fn plain_response_keep_alive_and_empty_type() {
        let mut out = Vec::new();
        encode_plain_response_into(
            &mut out,
            204,
            "",
            b"",
            &[("Connection", "keep-alive"), ("Cache-Control", "no-store")],
        );
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\n\
Content-Length: 0\r\n\
Connection: keep-alive\r\n\
Cache-Control: no-store\r\n\
\r\n"
        );
    }

    #[test]
    fn unknown_status_has_empty_reason() {
        let mut out = Vec::new();
        encode_plain_response_into(&mut out, 599, "text/plain", b"", &[]);
        assert!(out.starts_with(b"HTTP/1.1 599 \r\n"));
    }

    #[test]
    fn decimal_lengths_at_boundaries() {
        for n in [0usize, 9, 10, 125, 126, 65535, 65536, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}

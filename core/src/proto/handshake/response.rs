//! The response bytes of the opening handshake and of plain HTTP: the `101
//! Switching Protocols` answer, a refusal for each [`HandshakeError`] (its
//! status, the headers that status calls for, the reason as the body), and
//! the plain responses of `/healthz` and `/metrics`.
//!
//! Everything appends to a caller-owned `Vec` (`*_into`) without a
//! temporary buffer, numbers included.

use std::io::Write as _;

use super::{HandshakeError, SUPPORTED_VERSION};

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
pub(super) fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
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

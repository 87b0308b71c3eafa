//! The opening-handshake parser, checked on arbitrary bytes.
//!
//! Input layout of the `handshake` target: `[cfg, split_hi, split_lo,
//! request...]`. `cfg` picks the limits (bit 7 clear: the defaults; set: an
//! entry of [`HEAD_BYTES`] and [`HEADERS`]); the request is parsed whole, cut
//! at a fuzzer-chosen point, and cut just before the head's end, as the
//! runtime re-parses its growing buffer after every read. Asserted:
//! - a prefix that gives an answer (a head or an error) gives the same answer
//!   as the whole buffer: later bytes never change a decision;
//! - a prefix of an incomplete buffer is incomplete, never an error;
//! - a complete head is exactly `head_len` bytes: `buf[..head_len]` parses to
//!   the same head and `buf[..head_len - 1]` is incomplete; `head_len` is at
//!   most the input and `max_head_bytes`;
//! - `validate_upgrade` never panics; the accept, error and plain responses
//!   built from what was parsed re-parse as one complete HTTP/1.1 response
//!   whose `Content-Length` is its body.

use ringcast::proto::handshake::{
    encode_accept_response_into, encode_error_response_into, encode_plain_response_into,
    parse_request, select_subprotocol, validate_upgrade, HandshakeError, HandshakeLimits,
    RequestHead,
};

use crate::input::Reader;

pub const HEAD_BYTES: [usize; 8] = [0, 1, 16, 64, 100, 256, 1024, 8192];
pub const HEADERS: [usize; 8] = [0, 1, 2, 4, 8, 64, 65, 100];

type Parsed = Result<Option<(usize, RequestHead)>, HandshakeError>;

pub fn limits(cfg: u8) -> HandshakeLimits {
    if cfg & 0x80 == 0 {
        HandshakeLimits::default()
    } else {
        HandshakeLimits {
            max_head_bytes: HEAD_BYTES[usize::from(cfg & 7)],
            max_headers: HEADERS[usize::from((cfg >> 3) & 7)],
        }
    }
}

/// Asserts that `prefix_result` (from `buf[..cut]`) is consistent with `whole` (from `buf`).
fn check_prefix(cut: usize, prefix: &Parsed, whole: &Parsed) {
    match (prefix, whole) {
        // Incomplete so far: anything may follow.
        (Ok(None), _) => {}
        (Ok(Some(_)) | Err(_), _) => assert_eq!(prefix, whole, "cut at {cut} decided otherwise"),
    }
    if let Ok(None) = whole {
        assert_eq!(
            prefix,
            &Ok(None),
            "an incomplete buffer's prefix (cut at {cut}) is decided"
        );
    }
}

/// The `handshake` target.
pub fn check(data: &[u8]) {
    let mut r = Reader::new(data);
    let limits = limits(r.u8());
    let split = usize::from(r.u16());
    let buf = r.rest();

    let whole = parse_request(buf, &limits);
    let cut = split % (buf.len() + 1);
    check_prefix(cut, &parse_request(&buf[..cut], &limits), &whole);

    let head = match &whole {
        Ok(Some((head_len, head))) => {
            let head_len = *head_len;
            assert!(
                head_len <= buf.len(),
                "head of {head_len} bytes in {} bytes",
                buf.len()
            );
            assert!(
                head_len <= limits.max_head_bytes,
                "head of {head_len} bytes accepted"
            );
            assert!(head_len > 0);
            let exact = parse_request(&buf[..head_len], &limits);
            assert_eq!(exact, whole, "the head alone parses differently");
            let short = parse_request(&buf[..head_len - 1], &limits);
            assert_eq!(short, Ok(None), "the head minus its last byte is decided");
            head
        }
        Ok(None) => {
            assert!(
                buf.len() < limits.max_head_bytes,
                "incomplete at the head limit"
            );
            return;
        }
        Err(err) => {
            check_response(&error_response(err));
            return;
        }
    };

    match validate_upgrade(head) {
        Ok(accept) => {
            assert_eq!(accept.len(), 28, "accept key {accept:?}");
            let protocol = select_subprotocol(&head.protocols, &head.protocols);
            assert_eq!(protocol, head.protocols.first().map(String::as_str));
            let mut out = Vec::new();
            encode_accept_response_into(&mut out, &accept, protocol, &[]);
            let (status, body_len) = check_response(&out);
            assert_eq!((status, body_len), (101, None));
        }
        Err(err) => {
            check_response(&error_response(&err));
        }
    }
    // A plain response (the router's `/healthz`, `/metrics`) echoing the path.
    let mut out = Vec::new();
    encode_plain_response_into(&mut out, 200, "text/plain", head.path.as_bytes(), &[]);
    check_response(&out);
}

fn error_response(err: &HandshakeError) -> Vec<u8> {
    let mut out = Vec::new();
    encode_error_response_into(&mut out, err);
    let (status, _) = check_response(&out);
    assert_eq!(status, err.status(), "{err:?}");
    assert!(
        (400..600).contains(&status),
        "{err:?} answered with {status}"
    );
    out
}

/// Parses a response: one complete head, and a body of exactly its
/// `Content-Length`. Returns the status and that length.
fn check_response(out: &[u8]) -> (u16, Option<usize>) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(out) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "response does not parse: {other:?}: {:?}",
            String::from_utf8_lossy(out)
        ),
    };
    let status = response.code.expect("complete responses have a status");
    let content_length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .expect("Content-Length is a number")
        });
    assert_eq!(
        out.len() - head_len,
        content_length.unwrap_or(0),
        "body length vs Content-Length"
    );
    (status, content_length)
}

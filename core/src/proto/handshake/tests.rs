//! Literal-byte tests of the handshake: the RFC 6455 sample, incremental
//! and pipelined input, the request line, header reading, every refusal in
//! the order the rules run, the size and header-count limits, subprotocol
//! choice and the response bytes. The file runs past 800 lines because each
//! rule and boundary gets its own test, grouped by the sections below.

use super::response::push_decimal;
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
    let request = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let err = upgrade(request).expect_err("no version");
    assert_eq!(err, HandshakeError::MissingVersion);
    assert_eq!(err.status(), 400);
}

#[test]
fn version_8_is_426_with_exact_response() {
    let request = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
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
    let request = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
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

#[test]
fn body_headers_are_read_for_the_server_api() {
    let h = head(
        b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 42\r\nConnection: keep-alive, Close\r\n\r\n",
    );
    assert_eq!(h.method, Method::Post);
    assert_eq!(h.content_length, Some(42));
    assert!(h.connection_close && !h.transfer_encoding);
    let h = head(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!((h.content_length, h.transfer_encoding), (None, true));
    for bad in ["-1", "1e3", "", "+4", "99999999999999999999999"] {
        let request = format!("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {bad}\r\n\r\n");
        assert_eq!(
            parse(request.as_bytes()).map(|_| ()),
            Err(HandshakeError::Malformed("invalid Content-Length")),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n")
            .map(|_| ()),
        Err(HandshakeError::DuplicateHeader("Content-Length"))
    );
}

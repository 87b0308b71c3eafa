//! The handshake over real sockets: upgrade, refusals with their statuses,
//! requests split across many writes, pipelined bytes, `/healthz`.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{http, raw, read_head, start, upgrade_request, Client, Frame, DRIVERS};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};

#[test]
fn refusals_carry_specific_statuses() {
    for epoll in DRIVERS {
        let server = start(epoll, |_| {});
        let addr = server.local_addr();
        let ok = upgrade_request("/echo");
        let cases = [
            ("unknown path", upgrade_request("/nope"), "404"),
            ("post", ok.replacen("GET", "POST", 1), "405"),
            ("version 8", ok.replace("Version: 13", "Version: 8"), "426"),
            (
                "short key",
                ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
                "400",
            ),
            (
                "no upgrade",
                ok.replace("Upgrade: websocket\r\n", ""),
                "426",
            ),
            (
                "garbage",
                "\x00\x01\x02 nonsense\r\n\r\n".to_string(),
                "400",
            ),
        ];
        for (what, request, status) in cases {
            let response = http(addr, request.as_bytes());
            assert!(
                response.starts_with(&format!("HTTP/1.1 {status}")),
                "{what}: want {status}, got {response:?} (epoll {epoll})"
            );
            if status == "426" {
                assert!(response.contains("Sec-WebSocket-Version: 13"), "{response}");
            }
        }
        let big = format!(
            "GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(9000)
        );
        assert!(http(addr, big.as_bytes()).starts_with("HTTP/1.1 431"));
    }
}

#[test]
fn healthz_answers_plain_http() {
    for epoll in DRIVERS {
        let server = start(epoll, |_| {});
        let response = http(
            server.local_addr(),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("ok\n"), "{response}");
    }
}

#[test]
fn request_split_byte_by_byte_with_a_pipelined_frame_works() {
    for epoll in DRIVERS {
        let server = start(epoll, |_| {});
        let mut stream = raw(server.local_addr());
        let mut bytes = upgrade_request("/echo").into_bytes();
        // A frame sent in the same write as the last byte of the head must not be lost.
        encode_masked_frame_into(&mut bytes, OpCode::Text, true, common::MASK, b"pipelined");
        let head_len = upgrade_request("/echo").len();
        for byte in &bytes[..head_len - 1] {
            stream.write_all(std::slice::from_ref(byte)).expect("write");
            std::thread::sleep(Duration::from_micros(200));
        }
        stream.write_all(&bytes[head_len - 1..]).expect("write");
        let head = read_head(&mut stream);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let mut client = Client::from_stream(stream);
        assert_eq!(client.recv(), Some(Frame::Text("pipelined".into())));
    }
}

#[test]
fn subprotocol_is_selected_from_the_configured_list() {
    let server = start(false, |c| {
        c.server.subprotocols = vec!["v1.ringcast".into()]
    });
    let request = upgrade_request("/echo").replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Protocol: chat, v1.ringcast\r\n\r\n",
    );
    let mut stream = raw(server.local_addr());
    stream.write_all(request.as_bytes()).expect("write");
    let head = read_head(&mut stream);
    assert!(
        head.contains("Sec-WebSocket-Protocol: v1.ringcast\r\n"),
        "{head}"
    );
}

//! `/echo` over real sockets under every IO driver (io_uring and epoll readiness, io_uring completion): every length form, text
//! and binary, fragments, control frames, and protocol errors with their close codes.

mod common;

use common::{start, Client, Frame, DRIVERS};
use ringcast::proto::close::CloseCode;
use ringcast::proto::frame::OpCode;

#[test]
fn echoes_every_length_boundary_text_and_binary() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| {
            c.limits.max_message_size = 1 << 20;
            c.limits.max_frame_size = 1 << 20;
        });
        let mut client = Client::connect(server.local_addr(), "/echo");
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 200_000] {
            let binary: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            client.send(OpCode::Binary, true, &binary);
            assert_eq!(
                client.recv(),
                Some(Frame::Binary(binary)),
                "binary len {len} (epoll {epoll})"
            );
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            client.send(OpCode::Text, true, text.as_bytes());
            assert_eq!(
                client.recv(),
                Some(Frame::Text(text)),
                "text len {len} (epoll {epoll})"
            );
        }
        client.close(CloseCode::NORMAL, "done");
        assert_eq!(client.expect_close(), Some(1000));
        client.expect_eof();
    }
}

#[test]
fn fragmented_message_with_interleaved_ping_is_reassembled() {
    for epoll in DRIVERS {
        let server = start(epoll, |_| {});
        let mut client = Client::connect(server.local_addr(), "/echo");
        // "κόσμε" with the 2-byte "ό" split across fragments, and a ping in between.
        let text = "κόσμε".as_bytes();
        client.send(OpCode::Text, false, &text[..3]);
        client.send(OpCode::Ping, true, b"mid");
        client.send(OpCode::Continuation, false, &text[3..5]);
        client.send(OpCode::Continuation, true, &text[5..]);
        assert_eq!(client.recv(), Some(Frame::Pong(b"mid".to_vec())));
        assert_eq!(client.recv(), Some(Frame::Text("κόσμε".into())));
    }
}

#[test]
fn many_messages_in_one_write_are_all_echoed_in_order() {
    for epoll in DRIVERS {
        let server = start(epoll, |_| {});
        let mut client = Client::connect(server.local_addr(), "/echo");
        let mut batch = Vec::new();
        for i in 0..2000u32 {
            ringcast::proto::frame::encode_masked_frame_into(
                &mut batch,
                OpCode::Binary,
                true,
                common::MASK,
                &i.to_be_bytes(),
            );
        }
        client.send_raw(&batch);
        for i in 0..2000u32 {
            assert_eq!(client.recv(), Some(Frame::Binary(i.to_be_bytes().to_vec())));
        }
    }
}

#[test]
fn protocol_errors_get_their_close_codes() {
    let cases: [(&str, Vec<u8>, u16); 6] = [
        ("unmasked frame", b"\x81\x02hi".to_vec(), 1002),
        ("reserved opcode", b"\x83\x80\0\0\0\0".to_vec(), 1002),
        ("rsv bit", b"\xc1\x80\0\0\0\0".to_vec(), 1002),
        ("invalid utf-8", b"\x81\x81\0\0\0\0\xff".to_vec(), 1007),
        (
            "1 TiB frame",
            b"\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00\0\0\0\0".to_vec(),
            1009,
        ),
        ("fragmented ping", b"\x09\x80\0\0\0\0".to_vec(), 1002),
    ];
    for epoll in DRIVERS {
        let server = start(epoll, |_| {});
        for (what, bytes, code) in &cases {
            let mut client = Client::connect(server.local_addr(), "/echo");
            client.send_raw(bytes);
            assert_eq!(client.expect_close(), Some(*code), "{what} (epoll {epoll})");
            client.expect_eof();
        }
    }
}

#[test]
fn message_over_the_limit_is_refused_with_1009_but_the_limit_itself_passes() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| {
            c.limits.max_message_size = 1000;
            c.limits.max_frame_size = 1000;
        });
        let mut client = Client::connect(server.local_addr(), "/echo");
        client.send(OpCode::Binary, true, &[1; 1000]);
        assert_eq!(client.recv(), Some(Frame::Binary(vec![1; 1000])));
        client.send(OpCode::Binary, false, &[1; 600]);
        client.send(OpCode::Continuation, true, &[1; 600]);
        assert_eq!(client.expect_close(), Some(1009));
    }
}

/// The completion path with a buffer ring far too small for the traffic:
/// 8 buffers of 512 B for 32 connections writing at once, 2 handed out at
/// start. Receives run dry (`ENOBUFS`, counted), the worker hands out more
/// up to the 8 (`ringcast_recv_buffers`), receives are re-armed once
/// buffers come back, and every byte of every message still comes back,
/// in order.
#[test]
fn a_tiny_buffer_ring_runs_dry_and_every_byte_still_comes_back() {
    const CLIENTS: usize = 32;
    const MESSAGES: usize = 100;
    let server = start(common::Driver::Completion, |c| {
        c.server.workers = 1;
        c.io_uring.recv_buffers = 8;
        c.io_uring.recv_buffers_initial = 2;
        c.io_uring.recv_buffer_size = 512;
    });
    let addr = server.local_addr();
    let message = |client: usize, i: usize| -> Vec<u8> {
        let len = 1 + (client * 131 + i * 977) % 3000;
        (0..len).map(|b| (b * 7 + client + i) as u8).collect()
    };
    let barrier = std::sync::Barrier::new(CLIENTS);
    std::thread::scope(|s| {
        for client in 0..CLIENTS {
            let barrier = &barrier;
            s.spawn(move || {
                let mut ws = Client::connect(addr, "/echo");
                let mut batch = Vec::new();
                for i in 0..MESSAGES {
                    ringcast::proto::frame::encode_masked_frame_into(
                        &mut batch,
                        OpCode::Binary,
                        true,
                        common::MASK,
                        &message(client, i),
                    );
                }
                barrier.wait();
                ws.send_raw(&batch);
                for i in 0..MESSAGES {
                    assert_eq!(
                        ws.recv(),
                        Some(Frame::Binary(message(client, i))),
                        "client {client}, message {i}"
                    );
                }
            });
        }
    });
    let text = common::http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum()
    };
    let exhausted = sum("ringcast_recv_buffer_exhausted_total");
    assert_eq!(
        sum("ringcast_recv_buffers{"),
        8.0,
        "2 buffers doubled at each exhaustion, up to the 8 of the ring"
    );
    assert!(
        exhausted > 0.0,
        "the buffer ring never ran dry:\n{}",
        text.lines()
            .filter(|l| l.contains("recv_buffer"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

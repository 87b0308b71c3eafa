//! Timeouts, backpressure and shutdown over real sockets, with short timeouts.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{raw, start, Client, Frame, DRIVERS};
use ringcast::proto::frame::OpCode;

fn fast_timers(c: &mut ringcast::config::ServerConfig) {
    c.timeouts.handshake_timeout = Duration::from_millis(300);
    c.timeouts.ping_interval = Duration::from_millis(200);
    c.timeouts.idle_timeout = Duration::from_millis(600);
    c.timeouts.close_timeout = Duration::from_millis(300);
    c.timeouts.timer_tick = Duration::from_millis(20);
}

#[test]
fn slowloris_handshake_is_cut_off() {
    for epoll in DRIVERS {
        let server = start(epoll, fast_timers);
        let mut stream = raw(server.local_addr());
        stream
            .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
            .expect("write");
        let begun = Instant::now();
        let mut rest = Vec::new();
        let n = stream.read_to_end(&mut rest).unwrap_or(0);
        assert_eq!(n, 0, "no response owed to an unfinished request");
        let waited = begun.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    }
}

#[test]
fn silent_peer_gets_a_ping_then_is_closed() {
    for epoll in DRIVERS {
        let server = start(epoll, fast_timers);
        let mut client = Client::connect(server.local_addr(), "/echo");
        assert_eq!(client.recv(), Some(Frame::Ping(Vec::new())));
        // Not answering: the idle timeout closes with 1001.
        assert_eq!(
            client.recv(),
            Some(Frame::Close(Some((1001, "idle timeout".into()))))
        );
        client.expect_eof();
    }
}

#[test]
fn answering_pings_keeps_the_connection() {
    for epoll in DRIVERS {
        let server = start(epoll, fast_timers);
        let mut client = Client::connect(server.local_addr(), "/echo");
        let until = Instant::now() + Duration::from_millis(1500);
        let mut pings = 0;
        while Instant::now() < until {
            match client.recv() {
                Some(Frame::Ping(p)) => {
                    pings += 1;
                    client.send(OpCode::Pong, true, &p);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(pings >= 3, "{pings} pings in 1.5 s");
        client.send(OpCode::Text, true, b"still here");
        loop {
            match client.recv() {
                Some(Frame::Ping(_)) => continue,
                frame => {
                    assert_eq!(frame, Some(Frame::Text("still here".into())));
                    break;
                }
            }
        }
    }
}

#[test]
fn half_frame_left_hanging_is_closed() {
    for epoll in DRIVERS {
        let server = start(epoll, fast_timers);
        let mut client = Client::connect(server.local_addr(), "/echo");
        // A header announcing 100 bytes, then only 3; keep answering pings so only the frame hangs.
        client.send_raw(b"\x82\xe4\0\0\0\0abc");
        let begun = Instant::now();
        loop {
            match client.recv() {
                Some(Frame::Ping(_)) => client.send_raw(b"d"),
                Some(Frame::Close(Some((code, _)))) => {
                    assert_eq!(code, 1001);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(begun.elapsed() < Duration::from_secs(3));
    }
}

#[test]
fn client_that_never_reads_is_closed_with_1008_and_others_keep_going() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| {
            c.limits.max_outbound_bytes = 256 * 1024;
            // Time for the hog to read its backlog before the server gives up flushing.
            c.timeouts.close_timeout = Duration::from_secs(10);
        });
        let mut hog = Client::connect(server.local_addr(), "/echo");
        let mut healthy = Client::connect(server.local_addr(), "/echo");
        hog.stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut frame = Vec::new();
        ringcast::proto::frame::encode_masked_frame_into(
            &mut frame,
            OpCode::Binary,
            true,
            common::MASK,
            &[9; 60_000],
        );
        // Write until the server stops taking bytes (it closed us) or 200 MB, never reading.
        let mut written = 0usize;
        while written < 200 << 20 {
            match hog.stream.write(&frame) {
                Ok(n) => written += n,
                Err(_) => break,
            }
            if written % (4 << 20) < 60_000 {
                healthy.send(OpCode::Text, true, b"ping?");
                assert_eq!(healthy.recv(), Some(Frame::Text("ping?".into())));
            }
        }
        assert!(
            written < 200 << 20,
            "server kept accepting a client that never reads"
        );
        // Now read: echoes, then the close frame, then EOF.
        let mut close = None;
        while let Some(frame) = hog.recv() {
            if let Frame::Close(c) = frame {
                close = c;
                break;
            }
        }
        assert_eq!(close.map(|c| c.0), Some(1008));
        healthy.send(OpCode::Text, true, b"after");
        assert_eq!(healthy.recv(), Some(Frame::Text("after".into())));
    }
}

#[test]
fn shutdown_sends_1001_to_open_connections() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| c.timeouts.drain_timeout = Duration::from_secs(2));
        let a = Client::connect(server.local_addr(), "/echo");
        let b = Client::connect(server.local_addr(), "/echo");
        server.shutdown();
        // Each client answers the close and, like a browser, closes TCP on the server's FIN.
        for mut client in [a, b] {
            assert_eq!(
                client.recv(),
                Some(Frame::Close(Some((
                    1001,
                    "server shutting down: reconnect and resume".into()
                ))))
            );
            client.close(ringcast::proto::close::CloseCode::GOING_AWAY, "");
            client.expect_eof();
        }
        let begun = Instant::now();
        server.join();
        assert!(
            begun.elapsed() < Duration::from_secs(2),
            "drain finished once everyone closed"
        );
    }
}

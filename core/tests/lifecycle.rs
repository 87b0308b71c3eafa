//! Timeouts, backpressure and shutdown over real sockets, with short timeouts.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use common::{raw, start, Client, Frame, Served, DRIVERS};
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
        // Taken before the connection exists, so the server's timer (started
        // at accept) cannot have run longer than what is measured here.
        let begun = Instant::now();
        let mut stream = raw(server.local_addr());
        stream
            .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
            .expect("write");
        let mut rest = Vec::new();
        // EOF (not the client's read timeout): the server cut it off.
        let read = stream.read_to_end(&mut rest);
        assert!(
            matches!(read, Ok(0)),
            "no response owed to an unfinished request, then EOF: {read:?} {rest:?}"
        );
        // Not before the handshake timeout (300 ms, less a timer tick).
        let waited = begun.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
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
        // Pings every 100 ms; each pong must come back within the 1.5 s idle
        // timeout, which a busy box's scheduling delays stay far below.
        let server = start(epoll, |c| {
            fast_timers(c);
            c.timeouts.ping_interval = Duration::from_millis(100);
            c.timeouts.idle_timeout = Duration::from_millis(1500);
        });
        let mut client = Client::connect(server.local_addr(), "/echo");
        // Twenty pings 100 ms apart outlast the idle timeout: counted, not
        // timed, so a slow box only makes the test take longer.
        for _ in 0..20 {
            match client.recv() {
                Some(Frame::Ping(p)) => client.send(OpCode::Pong, true, &p),
                other => panic!("unexpected {other:?}"),
            }
        }
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
        // Each dribbled byte is traffic, but it must not keep the frame alive:
        // the close comes long before the 97 bytes that would complete it.
        client.send_raw(b"\x82\xe4\0\0\0\0abc");
        let mut dribbled = 0;
        loop {
            match client.recv() {
                Some(Frame::Ping(_)) if dribbled < 96 => {
                    client.send_raw(b"d");
                    dribbled += 1;
                }
                Some(Frame::Close(Some((code, _)))) => {
                    assert_eq!(code, 1001);
                    break;
                }
                other => panic!("unexpected {other:?} after {dribbled} bytes dribbled"),
            }
        }
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
        // Write until the server stops taking bytes (it closed us) or 200 MB,
        // never reading. A write that times out is retried: only 10 in a row
        // (2 s taking nothing) count as the server having stopped reading.
        // A partial write resumes mid-frame, so the stream stays well framed.
        let mut written = 0usize;
        let mut at = 0usize;
        let mut stalled = 0;
        while written < 200 << 20 && stalled < 10 {
            match hog.stream.write(&frame[at..]) {
                Ok(n) => {
                    written += n;
                    at = (at + n) % frame.len();
                    stalled = 0;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    stalled += 1;
                    continue;
                }
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
        // A drain timeout far beyond the test: the process can only exit in
        // time because every WebSocket finished its close.
        let mut flags = vec!["--set", "timeouts.drain_timeout=1h"];
        flags.extend(epoll.flags());
        let mut server = Served::start(&format!("lifecycle-shutdown-{epoll}"), &flags);
        let a = Client::connect(server.addr, "/echo");
        let b = Client::connect(server.addr, "/echo");
        server.terminate();
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
        let status = server.wait_exit();
        assert!(
            status.success(),
            "drain finished once everyone closed: {status}"
        );
    }
}

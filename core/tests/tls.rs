//! `wss://` with a self-signed certificate made in the test and a client
//! that verifies it, on every socket path (the completion path included):
//! handshake, echo of every length form, a pub/sub round trip, a plain-text
//! client and a bad ClientHello refused (counted alike on every path), and
//! many messages across TLS record and receive-buffer boundaries. Certificate reload: after
//! `reload_tls()` (or SIGHUP to the binary) new connections get the new
//! certificate while open ones keep echoing, and a bad key file is refused
//! with the certificate in service left as it was.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use rustls::pki_types::{CertificateDer, ServerName};

struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    decoder: Decoder,
    buf: Vec<u8>,
}

/// A client session for `localhost` that trusts `ca` and nothing else, on a
/// fresh TCP connection with a 5 s read timeout.
fn client_session(
    addr: SocketAddr,
    ca: CertificateDer<'static>,
) -> (rustls::ClientConnection, TcpStream) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    (conn, tcp)
}

/// The TLS handshake of a client trusting only `ca`: the certificate the
/// server presented, or the client's error.
fn handshake(
    addr: SocketAddr,
    ca: CertificateDer<'static>,
) -> Result<CertificateDer<'static>, std::io::Error> {
    let (mut conn, mut tcp) = client_session(addr, ca);
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    let chain = conn.peer_certificates().expect("a certificate");
    Ok(chain[0].clone().into_owned())
}

impl TlsClient {
    fn connect(addr: SocketAddr, ca: CertificateDer<'static>, path: &str) -> TlsClient {
        let (conn, tcp) = client_session(addr, ca);
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        stream
            .write_all(common::upgrade_request(path).as_bytes())
            .expect("request");
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).expect("utf-8");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let limits = Limits {
            max_frame_size: 1 << 24,
            max_message_size: 1 << 24,
        };
        TlsClient {
            stream,
            decoder: Decoder::new(Role::Client, limits),
            buf: Vec::new(),
        }
    }

    /// Sends the frames of `payloads` in one write (rustls cuts it into
    /// records wherever 16 KiB falls).
    fn send_batch(&mut self, payloads: &[Vec<u8>]) {
        let mut batch = Vec::new();
        for payload in payloads {
            encode_masked_frame_into(&mut batch, OpCode::Binary, true, common::MASK, payload);
        }
        self.stream.write_all(&batch).expect("send");
    }

    fn send(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut frame = Vec::new();
        encode_masked_frame_into(&mut frame, opcode, true, common::MASK, payload);
        self.stream.write_all(&frame).expect("send");
    }

    fn recv(&mut self) -> (bool, Vec<u8>) {
        loop {
            if !self.buf.is_empty() {
                let mut pending = std::mem::take(&mut self.buf);
                let decoded = self.decoder.decode(&mut pending).expect("valid frame");
                let consumed = decoded.consumed;
                let event = decoded.event.map(|e| match e {
                    Event::Text(t) => (true, t.as_bytes().to_vec()),
                    Event::Binary(b) => (false, b.to_vec()),
                    other => panic!("unexpected {other:?}"),
                });
                self.buf = pending[consumed..].to_vec();
                if let Some(event) = event {
                    return event;
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "server closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Where a server's `cert.pem` and `key.pem` live.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    /// A new directory (tests run in parallel threads of one process).
    fn new() -> CertFiles {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// Writes a new self-signed certificate for `localhost` and its key over
    /// the files; returns the certificate (the CA a client trusts).
    fn write_new(&self) -> CertificateDer<'static> {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::write(&self.cert, cert.cert.pem()).expect("cert.pem");
        std::fs::write(&self.key, cert.key_pair.serialize_pem()).expect("key.pem");
        cert.cert.der().clone()
    }
}

fn tls_server_with(
    epoll: common::Driver,
) -> (
    ringcast::server::ServerHandle,
    CertFiles,
    CertificateDer<'static>,
) {
    let files = CertFiles::new();
    let ca = files.write_new();
    let server = common::start(epoll, |c| {
        c.server.tls_cert = files.cert.clone();
        c.server.tls_key = files.key.clone();
        c.limits.max_message_size = 1 << 20;
        c.limits.max_frame_size = 1 << 20;
    });
    (server, files, ca)
}

fn tls_server(epoll: common::Driver) -> (ringcast::server::ServerHandle, CertificateDer<'static>) {
    let (server, _, ca) = tls_server_with(epoll);
    (server, ca)
}

#[test]
fn wss_echo_every_length_and_pubsub() {
    for epoll in common::DRIVERS {
        let (server, ca) = tls_server(epoll);
        let mut client = TlsClient::connect(server.local_addr(), ca.clone(), "/echo");
        for len in [0usize, 125, 126, 65535, 65536, 300_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            client.send(OpCode::Binary, &payload);
            assert_eq!(client.recv(), (false, payload), "len {len} (epoll {epoll})");
        }
        let mut ws = TlsClient::connect(server.local_addr(), ca, "/ws");
        ws.send(
            OpCode::Text,
            br#"{"id":1,"op":"subscribe","channel":"tls"}"#,
        );
        let (_, reply) = ws.recv();
        assert!(String::from_utf8_lossy(&reply).contains(r#""id":1,"result""#));
        ws.send(
            OpCode::Text,
            br#"{"id":2,"op":"publish","channel":"tls","data":"secret"}"#,
        );
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(String::from_utf8(ws.recv().1).expect("utf-8"));
        }
        assert!(
            got.iter().any(|m| m.contains(r#""data":"secret""#)),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| m.contains(r#""id":2,"result":{"offset":1}"#)),
            "{got:?}"
        );
    }
}

#[test]
fn plain_http_on_a_tls_port_gets_no_websocket() {
    for driver in common::DRIVERS {
        let (server, _) = tls_server(driver);
        let response = common::http(
            server.local_addr(),
            common::upgrade_request("/echo").as_bytes(),
        );
        assert!(
            !response.contains("101"),
            "a plain client must not be upgraded ({driver}): {response:?}"
        );
    }
}

/// The close handshake over TLS ends with the server's Close frame, then
/// its close_notify, then FIN, on every path: the client's rustls stream
/// reads a clean end (with FIN and no close_notify it would say
/// `UnexpectedEof`).
#[test]
fn a_close_handshake_ends_with_close_notify_then_fin_on_every_path() {
    for driver in common::DRIVERS {
        let (server, ca) = tls_server(driver);
        let mut client = TlsClient::connect(server.local_addr(), ca, "/echo");
        client.send(OpCode::Binary, b"last");
        assert_eq!(client.recv(), (false, b"last".to_vec()), "{driver}");
        client.send(OpCode::Close, &1000u16.to_be_bytes());
        let mut rest = std::mem::take(&mut client.buf);
        let ended = client.stream.read_to_end(&mut rest);
        assert!(ended.is_ok(), "{driver}: no clean TLS end: {ended:?}");
        assert_eq!(
            rest.get(..4),
            Some(&[0x88, 0x02, 0x03, 0xe8][..]),
            "{driver}: not the Close reply: {rest:?}"
        );
    }
}

/// `GET /metrics` over TLS: the text of every counter.
fn metrics(addr: SocketAddr, ca: CertificateDer<'static>) -> String {
    let (conn, tcp) = client_session(addr, ca);
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut text = Vec::new();
    // The server may end with FIN and no close_notify after the response.
    let _ = stream.read_to_end(&mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// The sum of every worker's value of the counter lines starting `name`.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// A record that is no ClientHello: the server answers with an alert
/// record (or nothing) and closes, on every path, and counts it the same.
#[test]
fn a_bad_client_hello_closes_cleanly_and_is_counted_alike_on_every_path() {
    let mut counts = Vec::new();
    for driver in common::DRIVERS {
        let (server, ca) = tls_server(driver);
        let addr = server.local_addr();
        let mut tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        tcp.write_all(b"\x16\x03\x01\x00\x05hello").expect("send");
        let mut got = Vec::new();
        let ended = tcp.read_to_end(&mut got);
        assert!(
            ended.is_ok()
                || ended
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{driver}: the connection did not end: {ended:?}"
        );
        assert!(
            got.is_empty() || got[0] == 0x15,
            "{driver}: not an alert record: {got:?}"
        );
        // The close is counted before the next connection's metrics come.
        let deadline = Instant::now() + Duration::from_secs(5);
        let text = loop {
            let text = metrics(addr, ca.clone());
            if counter(&text, "ringcast_connections_closed_total") >= 1.0
                || Instant::now() > deadline
            {
                break text;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let closed: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("ringcast_connections_closed_total"))
            .filter(|l| !l.ends_with(" 0"))
            .map(|l| l.split_once(',').map_or(l, |(_, reason)| reason).to_owned())
            .collect();
        assert!(!closed.is_empty(), "{driver}: no close counted:\n{text}");
        counts.push((driver, closed));
    }
    for (driver, closed) in &counts[1..] {
        assert_eq!(
            closed, &counts[0].1,
            "{driver} counts unlike {}",
            counts[0].0
        );
    }
}

/// The completion path with receive buffers far smaller than a TLS record
/// (8 of 512 B for 16 connections writing at once): every record spans
/// many completions, messages straddle records, receives run dry and are
/// re-armed, input waits behind replies (a small outbound limit), and
/// every byte of every message still comes back, in order.
#[test]
fn wss_messages_across_records_and_tiny_recv_buffers_come_back_in_order() {
    const CLIENTS: usize = 16;
    const MESSAGES: usize = 120;
    const WINDOW: usize = 12;
    let files = CertFiles::new();
    let ca = files.write_new();
    let server = common::start(common::Driver::Completion, |c| {
        c.server.tls_cert = files.cert.clone();
        c.server.tls_key = files.key.clone();
        c.server.workers = 1;
        c.io_uring.recv_buffers = 8;
        c.io_uring.recv_buffer_size = 512;
        // Replies past half of this hold input back until they are sent:
        // ciphertext then waits in the driver's carry.
        c.limits.max_outbound_bytes = 64 * 1024;
    });
    let addr = server.local_addr();
    let message = |client: usize, i: usize| -> Vec<u8> {
        let len = 1 + (client * 131 + i * 4_099) % 40_000;
        (0..len).map(|b| (b * 7 + client + i) as u8).collect()
    };
    let barrier = std::sync::Barrier::new(CLIENTS);
    std::thread::scope(|s| {
        for client in 0..CLIENTS {
            let (barrier, ca) = (&barrier, ca.clone());
            s.spawn(move || {
                let mut ws = TlsClient::connect(addr, ca, "/echo");
                barrier.wait();
                for start in (0..MESSAGES).step_by(WINDOW) {
                    let window: Vec<Vec<u8>> = (start..start + WINDOW)
                        .map(|i| message(client, i))
                        .collect();
                    ws.send_batch(&window);
                    for (i, payload) in (start..).zip(window) {
                        let (text, got) = ws.recv();
                        assert!(!text, "client {client}, message {i}: text");
                        assert!(
                            got == payload,
                            "client {client}, message {i}: {} B, not the {} B sent",
                            got.len(),
                            payload.len()
                        );
                    }
                }
            });
        }
    });
    let text = metrics(addr, ca);
    assert!(
        counter(&text, "ringcast_recv_buffer_exhausted_total") > 0.0,
        "the buffer ring never ran dry:\n{text}"
    );
    let sent: f64 = (0..CLIENTS)
        .flat_map(|c| (0..MESSAGES).map(move |i| (c, i)))
        .map(|(c, i)| message(c, i).len() as f64)
        .sum();
    assert!(
        counter(&text, "ringcast_received_bytes_total") > sent,
        "fewer bytes received than the payloads sent"
    );
}

#[test]
fn reload_serves_the_new_certificate_to_new_connections_only() {
    for epoll in common::DRIVERS {
        let (server, files, cert_a) = tls_server_with(epoll);
        let addr = server.local_addr();
        let mut old = TlsClient::connect(addr, cert_a.clone(), "/echo");
        old.send(OpCode::Text, b"before");
        assert_eq!(old.recv(), (true, b"before".to_vec()));

        let cert_b = files.write_new();
        server.reload_tls().expect("reload with a good pair");
        assert_eq!(handshake(addr, cert_b.clone()).expect("trusts B"), cert_b);
        let err = handshake(addr, cert_a.clone()).expect_err("A is no longer served");
        assert!(
            err.to_string().contains("certificate"),
            "{err} (epoll {epoll})"
        );
        let mut new = TlsClient::connect(addr, cert_b.clone(), "/echo");
        new.send(OpCode::Text, b"new");
        assert_eq!(new.recv(), (true, b"new".to_vec()));
        // The connection opened under A keeps its session.
        old.send(OpCode::Text, b"after");
        assert_eq!(old.recv(), (true, b"after".to_vec()), "epoll {epoll}");

        std::fs::write(&files.key, "garbage, not a PEM key\n").expect("key.pem");
        let err = server.reload_tls().expect_err("a garbage key is refused");
        assert!(
            matches!(
                &err,
                ringcast::server::ReloadError::Load(ringcast::server::tls::TlsSetupError::Key { path, .. })
                    if *path == files.key.display().to_string()
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("key.pem"), "{err}");
        assert_eq!(
            handshake(addr, cert_b.clone()).expect("B still served"),
            cert_b
        );
        assert!(handshake(addr, cert_a.clone()).is_err());
        new.send(OpCode::Text, b"still");
        assert_eq!(new.recv(), (true, b"still".to_vec()));
        old.send(OpCode::Text, b"still");
        assert_eq!(old.recv(), (true, b"still".to_vec()));
    }
}

#[test]
fn reload_without_tls_says_tls_is_off() {
    let server = common::start(false, |_| {});
    assert!(matches!(
        server.reload_tls(),
        Err(ringcast::server::ReloadError::TlsOff)
    ));
    assert!(server.tls_cert_path().is_none());
}

/// A `ringcast serve` child, killed if the test fails before it exits.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Serve {
    fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process, by its pid.
        assert_eq!(unsafe { libc::kill(self.0.id() as i32, signal) }, 0);
    }
}

/// Waits up to 10 s for the log to hold `count` lines containing `needle`.
fn wait_for_lines(log: &Path, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).expect("log");
        if text.lines().filter(|l| l.contains(needle)).count() >= count {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_binary_reloads_on_sighup_and_keeps_serving() {
    let files = CertFiles::new();
    let cert_a = files.write_new();
    let cert_flag = format!("server.tls_cert={}", files.cert.display());
    let key_flag = format!("server.tls_key={}", files.key.display());
    let (child, addr, log) = common::serve_binary(
        "tls-sighup",
        &[("RINGCAST_LOG", "info")],
        &["--set", &cert_flag, "--set", &key_flag],
    );
    let mut server = Serve(child);
    let mut old = TlsClient::connect(addr, cert_a.clone(), "/echo");

    let cert_b = files.write_new();
    server.signal(libc::SIGHUP);
    let text = wait_for_lines(&log, "tls certificate reloaded", 1);
    assert!(
        text.contains(&files.cert.display().to_string()),
        "the reload line names the certificate file:\n{text}"
    );
    assert_eq!(handshake(addr, cert_b.clone()).expect("trusts B"), cert_b);
    old.send(OpCode::Text, b"kept");
    assert_eq!(old.recv(), (true, b"kept".to_vec()));

    std::fs::write(&files.key, "garbage\n").expect("key.pem");
    server.signal(libc::SIGHUP);
    let text = wait_for_lines(&log, "tls certificate not reloaded", 1);
    assert!(
        text.contains("key.pem"),
        "the warning names the file:\n{text}"
    );
    let mut new = TlsClient::connect(addr, cert_b, "/echo");
    new.send(OpCode::Text, b"served");
    assert_eq!(new.recv(), (true, b"served".to_vec()));
    assert!(
        server.0.try_wait().expect("wait").is_none(),
        "SIGHUP killed it"
    );

    // SIGTERM still drains and exits 0.
    drop((old, new));
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

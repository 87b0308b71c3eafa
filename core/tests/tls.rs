//! `wss://` with a self-signed certificate made in the test and a client
//! that verifies it: handshake, echo of every length form, a pub/sub round
//! trip, and a plain-text client refused.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use rustls::pki_types::{CertificateDer, ServerName};

struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    decoder: Decoder,
    buf: Vec<u8>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, ca: CertificateDer<'static>, path: &str) -> TlsClient {
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

fn tls_server(epoll: bool) -> (ringcast::server::ServerHandle, CertificateDer<'static>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    // One directory per server: tests run in parallel threads of one process.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("cert.pem");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("key.pem");
    let server = common::start(epoll, |c| {
        c.tls_cert = cert_path;
        c.tls_key = key_path;
        c.max_message_size = 1 << 20;
        c.max_frame_size = 1 << 20;
    });
    (server, cert.cert.der().clone())
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
    let (server, _) = tls_server(false);
    let response = common::http(
        server.local_addr(),
        common::upgrade_request("/echo").as_bytes(),
    );
    assert!(
        !response.contains("101"),
        "a plain client must not be upgraded: {response:?}"
    );
}

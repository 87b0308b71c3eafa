//! One blocking connection to Redis, owned by exactly one bridge or
//! subscriber thread.
//!
//! RESP is encoded by the `redis` crate's [`redis::Cmd`] and decoded by its
//! incremental [`redis::Parser`]; this file only owns the socket: connect
//! with a deadline, optional TLS (rustls, OS trust roots), the login
//! handshake (`AUTH`, `SELECT`) and the server version from `INFO server`.
//!
//! Why not `redis::Connection`: its reader counts a read timeout as a lost
//! reply and silently drops the next one, which breaks the subscriber's
//! "wait briefly for a push, then look at the control queue" loop. Here a
//! timeout is `ReadError::Timeout` and loses nothing: the parser keeps the
//! bytes and the partial state of a half-read reply, and the next read
//! continues where this one stopped (tested below).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::error::EngineError;
use super::settings::RedisSettings;

/// Why a read returned no reply.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Nothing complete arrived within the read timeout; the connection is
    /// intact and a later read continues.
    Timeout,
    /// The connection is unusable (closed, reset, unparsable bytes).
    Broken(String),
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A logged-in connection. Dropping it closes the socket.
pub(crate) struct Conn {
    stream: Stream,
    parser: redis::Parser,
    /// Major version from `INFO server`: 7 and later have sharded pub/sub.
    pub(crate) version_major: u32,
}

impl Conn {
    /// Connects, logs in and reads the server version, each step bounded by
    /// the settings' timeouts. Every failure is `Unavailable` naming the
    /// redacted URL and the reason.
    pub(crate) fn connect(settings: &RedisSettings) -> Result<Self, EngineError> {
        let url = &settings.url;
        let unavailable = |reason: String| EngineError::Unavailable {
            url: url.redacted().to_string(),
            reason,
        };
        let addrs = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|e| unavailable(format!("cannot resolve {}: {e}", url.host)))?;
        let mut last = format!("{} resolves to no address", url.host);
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, settings.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("connect to {addr}: {e}"),
            }
        }
        let tcp = tcp.ok_or_else(|| unavailable(last))?;
        let setup = || -> io::Result<()> {
            tcp.set_nodelay(true)?;
            tcp.set_read_timeout(Some(settings.connect_timeout))?;
            tcp.set_write_timeout(Some(settings.command_timeout))
        };
        setup().map_err(|e| unavailable(e.to_string()))?;
        let stream = if url.tls {
            let ca = settings.tls_ca_file.as_deref();
            Stream::Tls(Box::new(tls_wrap(&url.host, ca, tcp).map_err(unavailable)?))
        } else {
            Stream::Plain(tcp)
        };
        let mut conn = Self {
            stream,
            parser: redis::Parser::new(),
            version_major: 0,
        };
        let mut login = Vec::new();
        let mut expected = 0;
        if let Some(password) = &url.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &url.username {
                auth.arg(user);
            }
            auth.arg(password);
            auth.write_packed_command(&mut login);
            expected += 1;
        }
        if url.db != 0 {
            redis::cmd("SELECT")
                .arg(url.db)
                .write_packed_command(&mut login);
            expected += 1;
        }
        redis::cmd("INFO")
            .arg("server")
            .write_packed_command(&mut login);
        expected += 1;
        conn.send(&login).map_err(unavailable)?;
        for i in 0..expected {
            let reply = conn.read().map_err(|e| {
                unavailable(match e {
                    ReadError::Timeout => "no reply to the login within connect_timeout".into(),
                    ReadError::Broken(reason) => reason,
                })
            })?;
            if let Value::ServerError(err) = &reply {
                return Err(unavailable(format!("login refused: {err}")));
            }
            if i + 1 == expected {
                conn.version_major = parse_version_major(&reply)
                    .ok_or_else(|| unavailable("INFO server has no redis_version".into()))?;
            }
        }
        conn.set_read_timeout(settings.command_timeout)
            .map_err(unavailable)?;
        Ok(conn)
    }

    /// Writes all of `bytes` (one or many packed commands) and flushes.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| format!("write: {e}"))
    }

    /// The next complete reply or push, waiting at most the read timeout.
    pub(crate) fn read(&mut self) -> Result<Value, ReadError> {
        match self.parser.parse_value(&mut self.stream) {
            Ok(value) => Ok(value),
            Err(e) if e.is_timeout() => Err(ReadError::Timeout),
            Err(e) => Err(ReadError::Broken(format!("read: {e}"))),
        }
    }

    pub(crate) fn set_read_timeout(&self, timeout: Duration) -> Result<(), String> {
        self.stream
            .tcp()
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())
    }
}

fn tls_wrap(
    host: &str,
    ca_file: Option<&Path>,
    tcp: TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A certificate the OS store holds but rustls rejects is
                // skipped, as browsers do; the handshake fails later if it
                // was the one needed.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("tls server name {host:?}: {e}"))?;
    let client =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| format!("tls: {e}"))?;
    let mut stream = rustls::StreamOwned::new(client, tcp);
    // Handshake now, under the connect timeout, so a TLS failure is reported
    // as such and not as the first command's failure.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| format!("tls handshake: {e}"))?;
    }
    Ok(stream)
}

/// `redis_version:7.0.15` in the `INFO server` text → 7.
fn parse_version_major(reply: &Value) -> Option<u32> {
    let text = match reply {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?,
        Value::VerbatimString { text, .. } => text.as_str(),
        Value::SimpleString(s) => s.as_str(),
        _ => return None,
    };
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))?;
    version.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn version_from_info() {
        let info =
            Value::BulkString(b"# Server\r\nredis_version:7.0.15\r\nredis_mode:x\r\n".to_vec());
        assert_eq!(parse_version_major(&info), Some(7));
        assert_eq!(parse_version_major(&Value::Nil), None);
    }

    /// A read timeout in the middle of a reply loses nothing.
    #[test]
    fn timeout_mid_reply_keeps_the_partial_reply() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("test step");
        let addr = listener.local_addr().expect("test step");
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("test step");
            s.write_all(b"*3\r\n$8\r\nsmessage\r\n$2\r\nch")
                .expect("test step");
            go_rx.recv().expect("test step");
            s.write_all(b"\r\n$5\r\nhello\r\n+PONG\r\n")
                .expect("test step");
            go_rx.recv().unwrap_or(());
        });
        let tcp = TcpStream::connect(addr).expect("test step");
        tcp.set_read_timeout(Some(Duration::from_millis(30)))
            .expect("test step");
        let mut conn = Conn {
            stream: Stream::Plain(tcp),
            parser: redis::Parser::new(),
            version_major: 7,
        };
        assert!(matches!(conn.read(), Err(ReadError::Timeout)));
        go_tx.send(()).expect("test step");
        let value = conn.read().expect("test step");
        assert_eq!(
            value,
            Value::Array(vec![
                Value::BulkString(b"smessage".to_vec()),
                Value::BulkString(b"ch".to_vec()),
                Value::BulkString(b"hello".to_vec()),
            ])
        );
        assert_eq!(
            conn.read().expect("test step"),
            Value::SimpleString("PONG".into())
        );
        drop(go_tx);
        server.join().expect("test step");
    }
}

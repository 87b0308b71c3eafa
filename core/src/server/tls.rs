//! TLS (`wss://`) between a connection's socket and its WebSocket layer,
//! with rustls's sans-IO connection.
//!
//! The reactor stays readiness-based: ciphertext is read with `MSG_DONTWAIT`
//! into the core's TLS scratch buffer and handed to rustls, plaintext comes
//! out into the core's read scratch as for a plain socket. Plaintext to send
//! goes into rustls (bounded by [`SEND_BUFFER_LIMIT`]: past it the caller keeps
//! the rest in the outbox, so the outbound limit still applies), and the
//! ciphertext goes out with non-blocking writes; what the socket does not
//! take stays in rustls until the next writable edge.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConnection;

use super::sys::{try_recv, try_send, Transfer};

/// Plaintext rustls may hold for one connection before `send` refuses more.
pub const SEND_BUFFER_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read TLS certificate chain {path}: {reason}")]
    Certificates { path: String, reason: String },
    #[error("cannot read TLS private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("TLS certificate and key do not work together: {0}")]
    Config(rustls::Error),
}

/// Builds the shared rustls server configuration from PEM files.
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| TlsSetupError::Certificates {
            path: cert_path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        let path = cert_path.display().to_string();
        return Err(TlsSetupError::Certificates {
            path,
            reason: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsSetupError::Key {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsSetupError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Adapts a non-blocking socket to `Write` for rustls's `write_tls`.
struct SocketWriter(RawFd);

impl Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match try_send(self.0, buf)? {
            Transfer::Done(n) => Ok(n),
            Transfer::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One connection's TLS state (boxed in the connection: rustls keeps a few
/// KiB per connection).
pub struct Tls {
    conn: ServerConnection,
}

impl Tls {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, rustls::Error> {
        let mut conn = ServerConnection::new(config)?;
        conn.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(Self { conn })
    }

    /// Reads plaintext into `plain`, pulling ciphertext from the socket
    /// through `cipher` as needed. `Done(0)` is the end of the stream.
    pub fn recv(&mut self, fd: RawFd, cipher: &mut [u8], plain: &mut [u8]) -> io::Result<Transfer> {
        loop {
            match self.conn.reader().read(plain) {
                Ok(n) => return Ok(Transfer::Done(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let n = match try_recv(fd, cipher)? {
                Transfer::Done(0) => return Ok(Transfer::Done(0)),
                Transfer::Done(n) => n,
                Transfer::WouldBlock => return Ok(Transfer::WouldBlock),
            };
            let mut fresh = &cipher[..n];
            while !fresh.is_empty() {
                self.conn.read_tls(&mut fresh)?;
                if let Err(e) = self.conn.process_new_packets() {
                    // Tell the peer why (an alert), then fail.
                    let _ = self.flush(fd);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            // Handshake messages to answer.
            self.flush(fd)?;
        }
    }

    /// Encrypts what rustls accepts of `plain` (up to its buffer limit) and
    /// sends what the socket takes. Returns the plaintext bytes accepted.
    pub fn send(&mut self, fd: RawFd, plain: &[u8]) -> io::Result<usize> {
        let accepted = self.conn.writer().write(plain)?;
        self.flush(fd)?;
        Ok(accepted)
    }

    /// [`Tls::send`] for several buffers at once.
    pub fn send_vectored(&mut self, fd: RawFd, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let accepted = self.conn.writer().write_vectored(slices)?;
        self.flush(fd)?;
        Ok(accepted)
    }

    /// Sends pending ciphertext; `Ok(true)` when none is left.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<bool> {
        let mut socket = SocketWriter(fd);
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues a close_notify alert (sent by the next flush).
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
}

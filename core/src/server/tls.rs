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
//!
//! The certificate and key live in one process-wide [`TlsStore`]: every
//! accepted connection starts from the configuration the store holds at that
//! moment, and [`TlsStore::reload`] (SIGHUP) swaps in one built from the files
//! as they are now. A connection keeps the configuration it started with, so
//! a reload drops nothing; a file that does not load leaves the old
//! configuration in service.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConnection;

use crate::sys::{try_recv, try_send, Transfer};

/// Plaintext rustls may hold for one connection before `send` refuses more.
pub const SEND_BUFFER_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read TLS certificate chain {path}: {reason}")]
    Certificates { path: String, reason: String },
    #[error("cannot read TLS private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("TLS certificate {cert} and key {key} do not work together: {source}")]
    Config {
        cert: String,
        key: String,
        source: rustls::Error,
    },
}

/// Why [`TlsStore::reload`] (or `ServerHandle::reload_tls`) changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// `server.tls_cert` is empty: the server speaks plain `ws://`, and a
    /// reload cannot turn TLS on (that takes a restart).
    #[error("TLS is off (server.tls_cert is empty): no certificate to reload")]
    TlsOff,
    /// A file is missing or unreadable, holds no usable PEM, or the key is not
    /// the certificate's. The previous certificate stays in service.
    #[error("{0}; the previous certificate stays in service")]
    Load(#[from] TlsSetupError),
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
    let config_error = |source| TlsSetupError::Config {
        cert: cert_path.display().to_string(),
        key: key_path.display().to_string(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // `with_single_cert` also refuses a key that is not the certificate's.
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The rustls configuration new `wss://` connections start from, and the
/// files it came from.
///
/// One per process, shared by every worker. Workers read it once per accepted
/// TLS connection ([`TlsStore::current`]: a read lock and an `Arc` clone);
/// [`TlsStore::reload`], called from the signal loop's thread, takes the write
/// lock only to swap the `Arc`, after the new configuration is fully built.
/// Connections already open hold their own `Arc` of the old configuration,
/// which is freed when the last of them closes. Nothing to do at shutdown.
pub struct TlsStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsStore {
    /// Loads the certificate chain and key (as [`server_config`] does) and
    /// remembers the paths for [`TlsStore::reload`].
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsSetupError> {
        let config = server_config(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(config),
        })
    }

    /// The configuration a connection accepted now starts from.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        // A panic while holding the lock cannot leave the `Arc` half-written.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads both files from the paths given at start and, when they load
    /// and match, serves them to every connection accepted from now on. On
    /// error the configuration in service is unchanged.
    pub fn reload(&self) -> Result<(), TlsSetupError> {
        let config = server_config(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The certificate chain file (for log lines).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
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
    /// A new server session with the store's current configuration.
    pub fn new(store: &TlsStore) -> Result<Self, rustls::Error> {
        let mut conn = ServerConnection::new(store.current())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a new self-signed certificate for `localhost` and its key.
    fn write_pair(dir: &Path, cert: &Path, key: &Path) {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::write(cert, pair.cert.pem()).expect("cert.pem");
        std::fs::write(key, pair.key_pair.serialize_pem()).expect("key.pem");
    }

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ringcast-tls-{name}-{}", std::process::id()))
    }

    #[test]
    fn a_reload_swaps_the_configuration_and_a_bad_file_keeps_the_old_one() {
        let dir = temp_dir("store");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        write_pair(&dir, &cert, &key);
        let store = TlsStore::load(&cert, &key).expect("loads");
        let first = store.current();

        write_pair(&dir, &cert, &key);
        store.reload().expect("reloads");
        let second = store.current();
        assert!(!Arc::ptr_eq(&first, &second), "reload swapped nothing");

        // A key that is not the certificate's: refused, naming both files.
        let other = rcgen::KeyPair::generate().expect("key");
        std::fs::write(&key, other.serialize_pem()).expect("key.pem");
        let err = store.reload().expect_err("mismatched key");
        assert!(matches!(err, TlsSetupError::Config { .. }), "{err}");
        assert!(
            err.to_string().contains(&key.display().to_string()),
            "{err}"
        );
        assert!(Arc::ptr_eq(&second, &store.current()));

        std::fs::write(&key, "not a key").expect("key.pem");
        let err = store.reload().expect_err("garbage key");
        assert!(
            matches!(&err, TlsSetupError::Key { path, .. } if *path == key.display().to_string())
        );
        assert!(Arc::ptr_eq(&second, &store.current()));

        std::fs::remove_file(&cert).expect("rm");
        let err = store.reload().expect_err("missing cert");
        assert!(
            matches!(&err, TlsSetupError::Certificates { path, .. } if *path == cert.display().to_string())
        );
        assert!(Arc::ptr_eq(&second, &store.current()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

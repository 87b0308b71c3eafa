//! TLS (`wss://`) between a connection's socket and its WebSocket layer,
//! with rustls's sans-IO connection.
//!
//! [`Tls`] is a byte transform with no socket, so any driver can run it: the
//! readiness driver (`socket.rs`) reads ciphertext with `MSG_DONTWAIT` into
//! the core's TLS scratch buffer and hands it over, takes plaintext out into
//! the core's read scratch as for a plain socket, and feeds the connection's
//! offers in (bounded by [`SEND_BUFFER_LIMIT`]: past it the offer counts as
//! not taken and stays in the outbox, so the outbound limit still applies);
//! ciphertext goes out with non-blocking writes, and what the socket does
//! not take stays in rustls until the next writable edge. The completion
//! driver (`ring_tls.rs`) hands received buffers over a read at a time
//! ([`Tls::take_ciphertext`]), draining plaintext between reads, and
//! [`Tls::write_ciphertext_into`] a buffer its send owns.
//!
//! The connection state machine (`conn.rs`) sees only plaintext: TLS sits
//! between it and the socket, in the driver, because when rustls may take
//! more plaintext, when the close_notify is out and FIN may follow, and when
//! a handshake record must be answered all depend on what the socket takes
//! right now.
//!
//! The certificate and key live in one process-wide [`TlsStore`]: every
//! accepted connection starts from the configuration the store holds at that
//! moment, and [`TlsStore::reload`] (SIGHUP) swaps in one built from the files
//! as they are now. A connection keeps the configuration it started with, so
//! a reload drops nothing; a file that does not load leaves the old
//! configuration in service.

use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConnection;

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

/// One connection's TLS state (boxed beside the connection: rustls keeps a
/// few KiB per connection). A byte transform with no socket: ciphertext in
/// as slices, plaintext out into the caller's buffer, plaintext in as
/// iovecs, ciphertext out through any `Write`. The driver (`socket.rs`)
/// decides when each happens.
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

    /// Ciphertext received from the peer: decrypted into rustls's plaintext
    /// buffer, handshake records answered (the answer waits in
    /// [`Tls::write_ciphertext_into`]). An error is a TLS violation: the alert
    /// that says so is queued the same way; the connection must end.
    pub fn handle_ciphertext(&mut self, mut cipher: &[u8]) -> io::Result<()> {
        while !cipher.is_empty() {
            self.conn.read_tls(&mut cipher)?;
            if let Err(e) = self.conn.process_new_packets() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(())
    }

    /// Takes one read's worth of `cipher` (rustls takes at most about 4 KiB,
    /// or the rest of a record, per read), advancing it past what was taken,
    /// and decrypts what that completes. `Ok(true)`: plaintext, or the
    /// peer's close_notify, now waits for [`Tls::read_plain`]. Called only
    /// once `read_plain` has said `None`, so rustls's plaintext buffer never
    /// overflows. An error is a TLS violation (the alert is queued), or
    /// rustls refusing bytes; the connection must end.
    pub fn take_ciphertext(&mut self, cipher: &mut &[u8]) -> io::Result<bool> {
        if self.conn.read_tls(cipher)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "rustls took no ciphertext",
            ));
        }
        match self.conn.process_new_packets() {
            Ok(state) => Ok(state.plaintext_bytes_to_read() > 0 || state.peer_has_closed()),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Takes decrypted plaintext into `plain`: `Some(0)` is the peer's
    /// close_notify (the end of the stream), `None` means none yet.
    pub fn read_plain(&mut self, plain: &mut [u8]) -> io::Result<Option<usize>> {
        match self.conn.reader().read(plain) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Encrypts what rustls accepts of `slices` (up to
    /// [`SEND_BUFFER_LIMIT`] of plaintext held); returns the bytes accepted.
    pub fn write_plain(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.conn.writer().write_vectored(slices)
    }

    /// Whether ciphertext waits to go out.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Hands one batch of pending ciphertext to `out` (a socket adapter, or
    /// a buffer a ring send owns); returns the bytes it took.
    pub fn write_ciphertext_into(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(out)
    }

    /// Queues a close_notify alert (goes out with the next ciphertext).
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

    /// Moves the ciphertext each side has for the other; returns the bytes moved.
    fn exchange(client: &mut rustls::ClientConnection, server: &mut Tls) -> usize {
        let mut moved = 0;
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).expect("client write_tls");
        }
        moved += wire.len();
        server
            .handle_ciphertext(&wire)
            .expect("server takes the client's records");
        wire.clear();
        while server.wants_write() {
            server.write_ciphertext_into(&mut wire).expect("into a Vec");
        }
        moved += wire.len();
        let mut from_server = &wire[..];
        while !from_server.is_empty() {
            client.read_tls(&mut from_server).expect("client read_tls");
        }
        client.process_new_packets().expect("server records valid");
        moved
    }

    #[test]
    fn tls_runs_over_byte_slices_with_no_socket() {
        let dir = temp_dir("transform");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        write_pair(&dir, &cert, &key);
        let store = TlsStore::load(&cert, &key).expect("loads");
        let mut server = Tls::new(&store).expect("server session");
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&cert).expect("pem") {
            roots.add(ca.expect("cert")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).expect("client");

        let mut rounds = 0;
        while client.is_handshaking() || server.is_handshaking() {
            rounds += 1;
            assert!(rounds <= 4, "handshake did not finish");
            assert!(exchange(&mut client, &mut server) > 0, "handshake stalled");
        }
        let mut plain = [0u8; 64];
        assert_eq!(server.read_plain(&mut plain).expect("read"), None);

        client
            .writer()
            .write_all(b"GET /echo")
            .expect("client write");
        exchange(&mut client, &mut server);
        assert_eq!(server.read_plain(&mut plain).expect("read"), Some(9));
        assert_eq!(&plain[..9], b"GET /echo");

        let slices = [IoSlice::new(b"HTTP/1.1 "), IoSlice::new(b"101")];
        assert_eq!(server.write_plain(&slices).expect("write"), 12);
        exchange(&mut client, &mut server);
        let n = client.reader().read(&mut plain).expect("client read");
        assert_eq!(&plain[..n], b"HTTP/1.1 101");

        // The client's close_notify is the end of the plaintext stream.
        client.send_close_notify();
        exchange(&mut client, &mut server);
        assert_eq!(server.read_plain(&mut plain).expect("read"), Some(0));

        // A record that is no ClientHello is an error, not a hang.
        let mut other = Tls::new(&store).expect("server session");
        assert!(other
            .handle_ciphertext(b"\x16\x03\x01\x00\x05hello")
            .is_err());
        let _ = std::fs::remove_dir_all(&dir);
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

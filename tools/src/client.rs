//! One client-side WebSocket connection of the load generator.
//!
//! Three steps, each a function the scenario times on its own:
//! [`tcp_connect`] (a socket bound to a chosen source address, connected
//! without blocking the loop), [`Connection::handshake`] (the RFC 6455
//! opening handshake, with the `Sec-WebSocket-Accept` check), and then the
//! frame loop: [`Connection::hold`] keeps an idle connection alive, answering
//! pings with masked pongs, until it is cancelled; [`Connection::close`] runs
//! the close handshake.
//!
//! The handshake bytes and the frame replies are built and parsed by plain
//! functions ([`encode_request_into`], [`parse_response`], [`handle_input`])
//! that the tests drive with literal bytes; frames are decoded by
//! `ringcast::proto::decoder` in the client role.
//!
//! Memory: an idle connection is its socket, a [`READ_BUF`]-byte read buffer
//! held by the pending receive, and the decoder (no heap while idle). The
//! handshake buffer (512 bytes, grown to at most 4 KiB) is dropped once the
//! handshake is done. Nothing the server
//! sends is unwrapped: every malformed or unexpected input is a typed error.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent};
use monoio::net::TcpStream;
use ringcast::proto::close::CloseCode;
use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::error::ProtocolError;
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use ringcast::proto::handshake::accept_key;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::url::WsUrl;

/// Largest handshake response head accepted from the server.
pub const MAX_RESPONSE_HEAD: usize = 4096;

/// First read of the handshake response, in bytes; doubled up to
/// [`MAX_RESPONSE_HEAD`] while the head is incomplete.
const FIRST_HEAD_READ: usize = 512;

/// Read buffer of an established connection, in bytes. Enough for any control
/// frame (at most 127 bytes on the wire) in one read; longer frames are
/// assembled by the decoder across reads.
pub const READ_BUF: usize = 256;

/// Why the opening handshake failed (the server's answer was not a valid 101).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("bad status {0}")]
    BadStatus(u16),
    #[error("response lacks `Upgrade: websocket`")]
    NoUpgrade,
    #[error("response lacks `Connection: Upgrade`")]
    NoConnectionUpgrade,
    #[error("missing or wrong Sec-WebSocket-Accept")]
    BadAccept,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("response head over {MAX_RESPONSE_HEAD} bytes")]
    TooLarge,
}

/// Which step of opening a connection an IO error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Socket,
    Bind,
    Connect,
    Send,
    Receive,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Socket => "socket",
            Stage::Bind => "bind",
            Stage::Connect => "connect",
            Stage::Send => "send",
            Stage::Receive => "receive",
        })
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{stage}: {source}")]
    Io { stage: Stage, source: io::Error },
    #[error("server closed the connection during the handshake")]
    Eof,
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("timed out")]
    Timeout,
}

impl ConnectError {
    fn io(stage: Stage) -> impl FnOnce(io::Error) -> ConnectError {
        move |source| ConnectError::Io { stage, source }
    }

    /// A short, stable label for counting failures by cause: `refused`,
    /// `timeout`, `EADDRNOTAVAIL`, `bad status 503`, ...
    pub fn cause(&self) -> String {
        match self {
            ConnectError::Io { source, .. } => io_cause(source),
            ConnectError::Eof => "closed during handshake".to_string(),
            ConnectError::Handshake(HandshakeError::BadStatus(code)) => {
                format!("bad status {code}")
            }
            ConnectError::Handshake(HandshakeError::BadAccept) => "bad accept".to_string(),
            ConnectError::Handshake(HandshakeError::NoUpgrade)
            | ConnectError::Handshake(HandshakeError::NoConnectionUpgrade) => {
                "not an upgrade".to_string()
            }
            ConnectError::Handshake(HandshakeError::Malformed(_)) => {
                "malformed response".to_string()
            }
            ConnectError::Handshake(HandshakeError::TooLarge) => "response too large".to_string(),
            ConnectError::Timeout => "timeout".to_string(),
        }
    }
}

/// A label for an IO error: the usual suspects by name, others by errno.
pub fn io_cause(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "refused",
        Some(libc::ETIMEDOUT) => "timeout",
        Some(libc::ECONNRESET) => "reset",
        Some(libc::EPIPE) => "broken pipe",
        Some(libc::EADDRNOTAVAIL) => "EADDRNOTAVAIL",
        Some(libc::EADDRINUSE) => "EADDRINUSE",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::ENOBUFS) => "ENOBUFS",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EHOSTUNREACH) => "EHOSTUNREACH",
        Some(libc::ENETUNREACH) => "ENETUNREACH",
        Some(errno) => return format!("errno {errno}"),
        None => return format!("io: {:?}", e.kind()),
    };
    name.to_string()
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (24 characters).
pub fn new_key() -> String {
    let mut raw = [0u8; 16];
    raw.iter_mut().for_each(|b| *b = fastrand::u8(..));
    BASE64.encode(raw)
}

/// A masking key. RFC 6455 wants it unpredictable to the server's path; a load
/// generator only needs it to vary, so a fast non-cryptographic RNG is enough.
pub fn new_mask() -> [u8; 4] {
    fastrand::u32(..).to_ne_bytes()
}

/// Appends the opening handshake request for `url` with `key`.
pub fn encode_request_into(out: &mut Vec<u8>, url: &WsUrl, key: &str) {
    for part in [
        "GET ",
        url.target.as_str(),
        " HTTP/1.1\r\nHost: ",
        url.authority.as_str(),
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ",
        key,
        "\r\nSec-WebSocket-Version: 13\r\n",
    ] {
        out.extend_from_slice(part.as_bytes());
    }
    if let Some(offer) = &url.extensions {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        out.extend_from_slice(offer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses the server's answer to a request sent with `key`. `Ok(None)`: the
/// head is not complete yet. `Ok(Some(n))`: a valid `101` whose head is the
/// first `n` bytes (frames may follow).
pub fn parse_response(buf: &[u8], key: &str) -> Result<Option<usize>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_RESPONSE_HEAD => {
            return Err(HandshakeError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HandshakeError::Malformed("too many headers"))
        }
        Err(_) => return Err(HandshakeError::Malformed("not an HTTP/1.1 response")),
    };
    if head_len > MAX_RESPONSE_HEAD {
        return Err(HandshakeError::TooLarge);
    }
    let code = resp
        .code
        .ok_or(HandshakeError::Malformed("no status code"))?;
    if code != 101 {
        return Err(HandshakeError::BadStatus(code));
    }
    let header = |name: &'static str| {
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
    };
    if !header("upgrade").any(|v| v.trim().eq_ignore_ascii_case("websocket")) {
        return Err(HandshakeError::NoUpgrade);
    }
    let has_upgrade_token = header("connection").any(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !has_upgrade_token {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    let expected = accept_key(key);
    let mut accepts = header("sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(v), None) if v.trim() == expected => Ok(Some(head_len)),
        _ => Err(HandshakeError::BadAccept),
    }
}

/// Opens a TCP connection to `addr`, from `source` (port chosen by the kernel)
/// when given. The connect is non-blocking: the task waits for writability on
/// the runtime, then reads the socket's pending error.
pub async fn tcp_connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<TcpStream, ConnectError> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(ConnectError::io(Stage::Socket))?;
    socket
        .set_nonblocking(true)
        .map_err(ConnectError::io(Stage::Socket))?;
    if let Some(ip) = source {
        socket
            .bind(&SocketAddr::new(ip, 0).into())
            .map_err(ConnectError::io(Stage::Bind))?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => {
            return Err(ConnectError::Io {
                stage: Stage::Connect,
                source: e,
            })
        }
    }
    let stream = TcpStream::from_std(socket.into()).map_err(ConnectError::io(Stage::Socket))?;
    stream
        .writable(false)
        .await
        .map_err(ConnectError::io(Stage::Connect))?;
    if let Some(e) = take_socket_error(&stream).map_err(ConnectError::io(Stage::Connect))? {
        return Err(ConnectError::Io {
            stage: Stage::Connect,
            source: e,
        });
    }
    // Handshakes and pongs are small writes that must not wait for Nagle.
    stream
        .set_nodelay(true)
        .map_err(ConnectError::io(Stage::Socket))?;
    Ok(stream)
}

/// `SO_ERROR` of the stream's socket: the outcome of a non-blocking connect.
fn take_socket_error(stream: &TcpStream) -> io::Result<Option<io::Error>> {
    // SAFETY: the descriptor is owned by `stream`, which outlives `fd`; the
    // borrow is only used for one getsockopt.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    SockRef::from(&fd).take_error()
}

/// What the server did to a connection being held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldEnd {
    /// The hold was cancelled (the run is over); the connection is still open.
    Cancelled,
    /// The server sent a close frame (its code, if any); we echoed it.
    ServerClosed(Option<u16>),
    /// The server closed TCP without a close frame.
    Eof,
    /// A socket error (label from [`io_cause`]).
    Io(String),
    /// The server broke the protocol; we sent a close frame with its code.
    Protocol(ProtocolError),
}

impl HoldEnd {
    /// A short, stable label for counting how held connections ended.
    pub fn cause(&self) -> String {
        match self {
            HoldEnd::Cancelled => "open at end".to_string(),
            HoldEnd::ServerClosed(Some(code)) => format!("closed by server {code}"),
            HoldEnd::ServerClosed(None) => "closed by server (no code)".to_string(),
            HoldEnd::Eof => "EOF from server".to_string(),
            HoldEnd::Io(cause) => cause.clone(),
            HoldEnd::Protocol(e) => format!("protocol error: {e}"),
        }
    }
}

/// What a batch of bytes from the server asked of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The server sent a close frame (with its code); an echo is in `out`.
    Closed(Option<u16>),
}

/// Counters of what an established connection received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    pub pings: u32,
    pub messages: u32,
}

/// Decodes `input` (all of it, or up to a close frame) and appends the replies
/// to `out`: a masked pong for each ping, a masked close echoing the server's
/// code for a close. A protocol error leaves a masked close with its code in
/// `out` and is returned.
pub fn handle_input(
    decoder: &mut Decoder,
    mut input: &mut [u8],
    out: &mut Vec<u8>,
    received: &mut Received,
) -> Result<Flow, ProtocolError> {
    while !input.is_empty() {
        let decoded = match decoder.decode(input) {
            Ok(d) => d,
            Err(e) => {
                encode_masked_close_into(out, Some(e.close_code().0));
                return Err(e);
            }
        };
        match decoded.event {
            Some(Event::Ping(payload)) => {
                received.pings = received.pings.saturating_add(1);
                encode_masked_frame_into(out, OpCode::Pong, true, new_mask(), payload);
            }
            Some(Event::Close(frame)) => {
                let code = frame.map(|f| f.code.0);
                encode_masked_close_into(out, code);
                return Ok(Flow::Closed(code));
            }
            Some(Event::Text(_)) | Some(Event::Binary(_)) => {
                received.messages = received.messages.saturating_add(1);
            }
            Some(Event::Pong(_)) | None => {}
        }
        let consumed = decoded.consumed;
        input = &mut input[consumed..];
    }
    decoder.reclaim();
    Ok(Flow::Continue)
}

/// Appends a masked close frame carrying `code` (and no reason), or an empty
/// close frame for `None`.
pub fn encode_masked_close_into(out: &mut Vec<u8>, code: Option<u16>) {
    let payload = code.map(u16::to_be_bytes);
    encode_masked_frame_into(
        out,
        OpCode::Close,
        true,
        new_mask(),
        payload.as_ref().map_or(&[], |p| p),
    );
}

/// An established WebSocket connection (client side).
pub struct Connection {
    stream: TcpStream,
    decoder: Decoder,
    /// Bytes that followed the 101 response in the same read, handled before
    /// the first read of [`Connection::hold`]; afterwards the read buffer.
    buf: Vec<u8>,
    pub received: Received,
}

impl Connection {
    /// Sends the opening handshake on `stream` and checks the answer.
    pub async fn handshake(mut stream: TcpStream, url: &WsUrl) -> Result<Connection, ConnectError> {
        let key = new_key();
        let mut request = Vec::with_capacity(256);
        encode_request_into(&mut request, url, &key);
        let (res, _) = stream.write_all(request).await;
        res.map_err(ConnectError::io(Stage::Send))?;

        // A 101 is ~130 bytes: start small, grow up to the limit only if needed.
        let mut head = Vec::with_capacity(FIRST_HEAD_READ);
        let head_len = loop {
            let filled = head.len();
            if filled == head.capacity() {
                head.reserve((filled * 2).min(MAX_RESPONSE_HEAD) - filled);
            }
            let end = head.capacity().min(MAX_RESPONSE_HEAD);
            let (res, slice) = stream.read(head.slice_mut(filled..end)).await;
            head = slice.into_inner();
            match res.map_err(ConnectError::io(Stage::Receive))? {
                0 => return Err(ConnectError::Eof),
                _ => {
                    if let Some(n) = parse_response(&head, &key)? {
                        break n;
                    }
                }
            }
        };
        // Keep what followed the head, in a buffer of the idle size.
        let rest = &head[head_len..];
        let mut buf = Vec::with_capacity(READ_BUF.max(rest.len()));
        buf.extend_from_slice(rest);
        Ok(Connection {
            stream,
            decoder: Decoder::new(Role::Client, Limits::default()),
            buf,
            received: Received::default(),
        })
    }

    /// The parts a [`crate::link::Link`] runs on: the stream, the decoder, and
    /// the bytes that followed the handshake response (frames to decode first).
    pub fn into_parts(self) -> (TcpStream, Decoder, Vec<u8>) {
        (self.stream, self.decoder, self.buf)
    }

    /// Decodes the bytes read so far, then empties the buffer; replies (a
    /// pong, a close echo) go to `out`.
    fn decode_buffered(&mut self, out: &mut Vec<u8>) -> Result<Flow, ProtocolError> {
        let flow = handle_input(&mut self.decoder, &mut self.buf, out, &mut self.received);
        self.buf.clear();
        flow
    }

    /// Keeps the connection open, answering pings, until `cancel` fires or
    /// the server ends it.
    pub async fn hold(&mut self, cancel: CancelHandle) -> HoldEnd {
        let mut out = Vec::new();
        loop {
            if !self.buf.is_empty() {
                let flow = self.decode_buffered(&mut out);
                if !out.is_empty() {
                    let (res, returned) = self.stream.write_all(out).await;
                    out = returned;
                    out.clear();
                    if let Err(e) = res {
                        return HoldEnd::Io(io_cause(&e));
                    }
                }
                match flow {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Closed(code)) => return HoldEnd::ServerClosed(code),
                    Err(e) => return HoldEnd::Protocol(e),
                }
                if out.capacity() > READ_BUF {
                    out = Vec::new();
                }
            }
            let buf = std::mem::take(&mut self.buf);
            let (res, buf) = self.stream.cancelable_read(buf, cancel.clone()).await;
            self.buf = buf;
            match res {
                Ok(0) => return HoldEnd::Eof,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => return HoldEnd::Cancelled,
                Err(e) => return HoldEnd::Io(io_cause(&e)),
            }
        }
    }

    /// Sends a close frame with `code` and waits up to `timeout` for the
    /// server's close frame. Returns the code the server answered with,
    /// `Ok(None)` for an empty close frame, or why no answer came.
    pub async fn close(
        mut self,
        code: CloseCode,
        timeout: Duration,
    ) -> Result<Option<u16>, String> {
        let mut out = Vec::with_capacity(8);
        encode_masked_close_into(&mut out, Some(code.0));
        let (res, _) = self.stream.write_all(out).await;
        res.map_err(|e| io_cause(&e))?;
        let wait = async move {
            let mut out = Vec::new();
            loop {
                if !self.buf.is_empty() {
                    let flow = self.decode_buffered(&mut out);
                    match flow {
                        // Our close is already sent: the server's close is the
                        // answer, not a new close to echo; drop `out`.
                        Ok(Flow::Closed(code)) => return Ok(code),
                        Ok(Flow::Continue) => out.clear(),
                        Err(e) => return Err(format!("protocol error: {e}")),
                    }
                }
                let buf = std::mem::take(&mut self.buf);
                let (res, buf) = self.stream.read(buf).await;
                self.buf = buf;
                match res {
                    Ok(0) => return Err("EOF before close frame".to_string()),
                    Ok(_) => {}
                    Err(e) => return Err(io_cause(&e)),
                }
            }
        };
        match monoio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err("no close frame (timeout)".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> WsUrl {
        WsUrl::parse("ws://127.0.0.1:9001/echo").expect("valid url")
    }

    #[test]
    fn request_bytes() {
        let mut out = Vec::new();
        encode_request_into(&mut out, &url(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            out,
            b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut offering = url();
        offering.extensions = Some("permessage-deflate; client_max_window_bits".into());
        let mut out = Vec::new();
        encode_request_into(&mut out, &offering, "dGhlIHNhbXBsZSBub25jZQ==");
        assert!(out.ends_with(
            b"Sec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ));
    }

    #[test]
    fn keys_are_16_random_bytes() {
        let a = new_key();
        assert_eq!(a.len(), 24);
        assert_eq!(BASE64.decode(&a).expect("base64").len(), 16);
        assert_ne!(a, new_key());
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const GOOD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    #[test]
    fn accepts_the_rfc_example_and_reports_the_head_length() {
        assert_eq!(parse_response(GOOD, KEY), Ok(Some(GOOD.len())));
        let mut with_frame = GOOD.to_vec();
        with_frame.extend_from_slice(&[0x89, 0x00]);
        assert_eq!(parse_response(&with_frame, KEY), Ok(Some(GOOD.len())));
    }

    #[test]
    fn partial_heads_need_more_bytes() {
        for cut in [0, 1, 12, GOOD.len() - 1] {
            assert_eq!(parse_response(&GOOD[..cut], KEY), Ok(None), "cut at {cut}");
        }
        let endless = [b'a'; MAX_RESPONSE_HEAD];
        let mut long = b"HTTP/1.1 101 OK\r\nX: ".to_vec();
        long.extend_from_slice(&endless);
        assert_eq!(parse_response(&long, KEY), Err(HandshakeError::TooLarge));
    }

    #[test]
    fn refuses_wrong_answers() {
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_response(not_found, KEY),
            Err(HandshakeError::BadStatus(404))
        );
        let other_key = GOOD.to_vec();
        assert_eq!(
            parse_response(&other_key, "AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(HandshakeError::BadAccept)
        );
        let no_upgrade = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(
            parse_response(no_upgrade, KEY),
            Err(HandshakeError::NoUpgrade)
        );
        let keep_alive = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: keep-alive\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(
            parse_response(keep_alive, KEY),
            Err(HandshakeError::NoConnectionUpgrade)
        );
        assert!(matches!(
            parse_response(b"SSH-2.0-x\r\n\r\n", KEY),
            Err(HandshakeError::Malformed(_))
        ));
    }

    #[test]
    fn connection_header_may_list_tokens() {
        let r = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n\
            connection: keep-alive, upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(parse_response(r, KEY), Ok(Some(r.len())));
    }

    /// Unmasks a client frame from `out` at `at`: (opcode byte, payload, next offset).
    fn unmask_frame(out: &[u8], at: usize) -> (u8, Vec<u8>, usize) {
        let b0 = out[at];
        let b1 = out[at + 1];
        assert_eq!(b1 & 0x80, 0x80, "client frames are masked");
        let len = (b1 & 0x7f) as usize;
        assert!(len <= 125);
        let mask = &out[at + 2..at + 6];
        let payload = out[at + 6..at + 6 + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        (b0, payload, at + 6 + len)
    }

    #[test]
    fn pings_get_masked_pongs_and_close_is_echoed() {
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        let mut received = Received::default();
        let mut out = Vec::new();
        // ping "hi", text "x", empty ping, close 1001 "bye"
        let mut input = vec![0x89, 0x02, b'h', b'i', 0x81, 0x01, b'x', 0x89, 0x00];
        input.extend_from_slice(&[0x88, 0x05, 0x03, 0xE9, b'b', b'y', b'e']);
        let flow = handle_input(&mut decoder, &mut input, &mut out, &mut received);
        assert_eq!(flow, Ok(Flow::Closed(Some(1001))));
        assert_eq!(
            received,
            Received {
                pings: 2,
                messages: 1
            }
        );
        let (op, payload, next) = unmask_frame(&out, 0);
        assert_eq!((op, payload.as_slice()), (0x8A, &b"hi"[..]));
        let (op, payload, next) = unmask_frame(&out, next);
        assert_eq!((op, payload.as_slice()), (0x8A, &b""[..]));
        let (op, payload, next) = unmask_frame(&out, next);
        assert_eq!((op, payload.as_slice()), (0x88, &[0x03, 0xE9][..]));
        assert_eq!(next, out.len());
    }

    #[test]
    fn a_ping_split_across_reads_is_answered_once_whole() {
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        let mut received = Received::default();
        let mut out = Vec::new();
        let mut first = vec![0x89, 0x03, b'a'];
        let mut second = vec![b'b', b'c'];
        assert_eq!(
            handle_input(&mut decoder, &mut first, &mut out, &mut received),
            Ok(Flow::Continue)
        );
        assert!(out.is_empty());
        assert_eq!(
            handle_input(&mut decoder, &mut second, &mut out, &mut received),
            Ok(Flow::Continue)
        );
        let (op, payload, _) = unmask_frame(&out, 0);
        assert_eq!((op, payload.as_slice()), (0x8A, &b"abc"[..]));
    }

    #[test]
    fn a_masked_server_frame_is_a_protocol_error_answered_with_1002() {
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        let mut received = Received::default();
        let mut out = Vec::new();
        let mut input = vec![0x89, 0x80, 1, 2, 3, 4];
        let res = handle_input(&mut decoder, &mut input, &mut out, &mut received);
        assert_eq!(res, Err(ProtocolError::MaskedFrameFromServer));
        let (op, payload, _) = unmask_frame(&out, 0);
        assert_eq!((op, payload.as_slice()), (0x88, &1002u16.to_be_bytes()[..]));
    }

    #[test]
    fn io_causes_have_stable_labels() {
        assert_eq!(
            io_cause(&io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            "refused"
        );
        assert_eq!(
            io_cause(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
            "EADDRNOTAVAIL"
        );
        assert_eq!(
            ConnectError::Handshake(HandshakeError::BadStatus(503)).cause(),
            "bad status 503"
        );
        assert_eq!(ConnectError::Timeout.cause(), "timeout");
    }
}

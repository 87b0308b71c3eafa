//! `wss-echo`: closed-loop echo over `wss://` against a ringcast `/echo`,
//! to compare the server's socket paths under TLS (`ringcast-load` speaks
//! plain `ws://` only).
//!
//! `--connections` TLS connections on one thread (a current-thread tokio
//! runtime) each keep one binary message of `--size` bytes in flight: send,
//! wait for its echo (checked byte for byte), send the next. After
//! `--warmup` seconds the window of `--duration` seconds starts; with
//! `--server-pid` the server's CPU time (user + system, from
//! `/proc/PID/stat`) is read at both ends of it. Prints one line of JSON:
//! messages echoed in the window, messages/s, the server's CPU in
//! microseconds per message, and bad echoes.
//!
//! `--idle 1`: the connections upgrade and then send nothing; with
//! `--server-pid` the line gives the server's resident memory growth per
//! connection (`VmRSS` before the first connection and after the warmup),
//! what an idle `wss://` connection costs.
//!
//! Usage: `wss-echo HOST:PORT --ca CERT.pem [--connections 1000]
//! [--size 1024] [--warmup 3] [--duration 10] [--server-pid PID] [--idle 1]`

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];

struct Opts {
    addr: SocketAddr,
    ca: String,
    connections: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
    idle: bool,
}

fn opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .ok_or("usage: wss-echo HOST:PORT --ca CERT.pem [flags]")?
        .parse()
        .map_err(|e| format!("address: {e}"))?;
    let mut o = Opts {
        addr,
        ca: String::new(),
        connections: 1000,
        size: 1024,
        warmup: Duration::from_secs(3),
        duration: Duration::from_secs(10),
        server_pid: None,
        idle: false,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--ca" => o.ca = value.clone(),
            "--connections" => o.connections = number()?.max(1) as usize,
            "--size" => o.size = number()? as usize,
            "--warmup" => o.warmup = Duration::from_secs(number()?),
            "--duration" => o.duration = Duration::from_secs(number()?.max(1)),
            "--server-pid" => o.server_pid = Some(number()? as u32),
            "--idle" => o.idle = number()? != 0,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if o.ca.is_empty() {
        return Err("--ca CERT.pem is required".into());
    }
    Ok(o)
}

/// User + system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One TLS connection's bytes both ways, over a tokio socket.
struct Wss {
    tcp: TcpStream,
    tls: ClientConnection,
    plain: Vec<u8>,
    chunk: Vec<u8>,
}

impl Wss {
    /// Writes every record rustls holds.
    async fn flush(&mut self) -> std::io::Result<()> {
        while self.tls.wants_write() {
            let mut out = Vec::new();
            self.tls.write_tls(&mut out)?;
            self.tcp.write_all(&out).await?;
        }
        Ok(())
    }

    /// Reads from the socket until rustls yields plaintext (answering
    /// handshake records on the way), and appends it to `plain`.
    async fn fill(&mut self) -> std::io::Result<()> {
        loop {
            let n = self.tcp.read(&mut self.chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("server closed"));
            }
            let mut cipher = &self.chunk[..n];
            while !cipher.is_empty() {
                self.tls.read_tls(&mut cipher)?;
                let state = self
                    .tls
                    .process_new_packets()
                    .map_err(std::io::Error::other)?;
                let mut got = vec![0; state.plaintext_bytes_to_read()];
                std::io::Read::read_exact(&mut self.tls.reader(), &mut got)?;
                self.plain.extend_from_slice(&got);
            }
            self.flush().await?;
            if !self.plain.is_empty() {
                return Ok(());
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self.tls.writer(), bytes)?;
        self.flush().await
    }
}

/// Connects, upgrades on `/echo`, signals `ready`, then echoes until
/// `stop`, counting each good echo in `done` and each bad one in `bad`.
async fn connection(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    size: usize,
    idle: bool,
    counters: Rc<Counters>,
) -> std::io::Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let tls = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut wss = Wss {
        tcp,
        tls,
        plain: Vec::new(),
        chunk: vec![0; 64 * 1024],
    };
    wss.send(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await?;
    let head_end = loop {
        if let Some(at) = wss.plain.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        wss.fill().await?;
    };
    if !wss.plain.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other("not upgraded"));
    }
    wss.plain.drain(..head_end);
    counters.ready.set(counters.ready.get() + 1);
    while idle && !counters.stop.get() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let limits = Limits {
        max_frame_size: 1 << 24,
        max_message_size: 1 << 24,
    };
    let mut decoder = Decoder::new(Role::Client, limits);
    let mut frame = Vec::new();
    let mut seq = 0u64;
    while !counters.stop.get() {
        let payload: Vec<u8> = (0..size).map(|i| (i as u64 + seq) as u8).collect();
        frame.clear();
        encode_masked_frame_into(&mut frame, OpCode::Binary, true, MASK, &payload);
        wss.send(&frame).await?;
        let echoed = loop {
            let decoded = decoder
                .decode(&mut wss.plain)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            let consumed = decoded.consumed;
            let event = match decoded.event {
                Some(Event::Binary(b)) => Some(b == payload.as_slice()),
                Some(Event::Close(_)) => return Err(std::io::Error::other("closed")),
                _ => None,
            };
            wss.plain.drain(..consumed);
            if let Some(good) = event {
                break good;
            }
            if consumed == 0 {
                wss.fill().await?;
            }
        };
        if echoed {
            counters.done.set(counters.done.get() + 1);
        } else {
            counters.bad.set(counters.bad.get() + 1);
        }
        seq += 1;
    }
    Ok(())
}

#[derive(Default)]
struct Counters {
    ready: Cell<usize>,
    done: Cell<u64>,
    bad: Cell<u64>,
    stop: Cell<bool>,
}

fn main() {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&o.ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let rss0 = o.server_pid.and_then(rss_kib);
        let counters = Rc::new(Counters::default());
        let failed = Rc::new(Cell::new(0usize));
        for _ in 0..o.connections {
            let (config, counters, failed) = (config.clone(), counters.clone(), failed.clone());
            tokio::task::spawn_local(async move {
                if let Err(e) = connection(o.addr, config, o.size, o.idle, counters).await {
                    if failed.get() == 0 {
                        eprintln!("a connection failed: {e}");
                    }
                    failed.set(failed.get() + 1);
                }
            });
        }
        let start = tokio::time::Instant::now();
        while counters.ready.get() + failed.get() < o.connections {
            if start.elapsed() > Duration::from_secs(60) {
                eprintln!("only {} of {} connections up", counters.ready.get(), o.connections);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(o.warmup).await;
        let rss1 = o.server_pid.and_then(rss_kib);
        if o.idle {
            let per = match (rss0, rss1) {
                (Some(a), Some(b)) => format!("{:.0}", (b as f64 - a as f64) * 1024.0 / o.connections as f64),
                _ => "null".into(),
            };
            println!(
                "{{\"connections\":{},\"up\":{},\"idle\":true,\"server_rss_kib_before\":{},\"server_rss_kib_after\":{},\"server_rss_bytes_per_connection\":{per},\"failed\":{}}}",
                o.connections,
                counters.ready.get(),
                rss0.unwrap_or(0),
                rss1.unwrap_or(0),
                failed.get()
            );
            counters.stop.set(true);
            return;
        }
        // A script can start a per-window measurement (perf stat) on this line.
        eprintln!("window start");
        let (done0, cpu0) = (counters.done.get(), o.server_pid.and_then(cpu_ticks));
        let t0 = tokio::time::Instant::now();
        tokio::time::sleep(o.duration).await;
        let (done1, cpu1) = (counters.done.get(), o.server_pid.and_then(cpu_ticks));
        let secs = t0.elapsed().as_secs_f64();
        counters.stop.set(true);
        let messages = done1 - done0;
        // /proc counts CPU time in USER_HZ ticks, 100 per second on Linux.
        let hz = 100.0;
        let cpu_us = match (cpu0, cpu1) {
            (Some(a), Some(b)) if messages > 0 => {
                format!("{:.2}", (b - a) as f64 / hz * 1e6 / messages as f64)
            }
            _ => "null".into(),
        };
        println!(
            "{{\"connections\":{},\"up\":{},\"size\":{},\"window_s\":{secs:.1},\"messages\":{messages},\"per_s\":{:.0},\"server_cpu_us_per_message\":{cpu_us},\"bad\":{},\"failed\":{}}}",
            o.connections,
            counters.ready.get(),
            o.size,
            messages as f64 / secs,
            counters.bad.get(),
            failed.get()
        );
    });
}

//! `publish-ack`: publish → acknowledgement latency and publishes/s against a
//! ringcast `/ws` endpoint, closed loop.
//!
//! `--connections` threads each keep `--inflight` publishes in flight (to
//! `--channels` channels, round robin) for `--duration` seconds, and time
//! each from the moment its frame is written to the moment its reply (with
//! an offset) is read. This is what the durable store costs a publisher:
//! with `store.fsync = always` the reply waits for the group commit. Prints
//! one line of JSON: publishes/s, p50/p99/p99.9/max in microseconds, and
//! refused publishes (a reply with an error).
//!
//! Usage: `publish-ack HOST:PORT [--connections 8] [--inflight 16]
//! [--channels 8] [--size 64] [--duration 10]`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};

const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];

struct Opts {
    addr: String,
    connections: usize,
    inflight: usize,
    channels: usize,
    size: usize,
    duration: Duration,
}

fn opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or("usage: publish-ack HOST:PORT [flags]")?;
    let mut o = Opts {
        addr,
        connections: 8,
        inflight: 16,
        channels: 8,
        size: 64,
        duration: Duration::from_secs(10),
    };
    while let Some(flag) = args.next() {
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--connections" => o.connections = value.max(1) as usize,
            "--inflight" => o.inflight = value.max(1) as usize,
            "--channels" => o.channels = value.max(1) as usize,
            "--size" => o.size = value as usize,
            "--duration" => o.duration = Duration::from_secs(value.max(1)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

struct Conn {
    stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    fn open(addr: &str) -> std::io::Result<Conn> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(
            b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(std::io::Error::other("not upgraded"));
        }
        let limits = Limits {
            max_frame_size: 1 << 24,
            max_message_size: 1 << 24,
        };
        Ok(Conn {
            stream,
            decoder: Decoder::new(Role::Client, limits),
            buf: Vec::new(),
            start: 0,
        })
    }

    /// The next text message.
    fn recv(&mut self) -> std::io::Result<String> {
        loop {
            while self.start < self.buf.len() {
                let decoded = self
                    .decoder
                    .decode(&mut self.buf[self.start..])
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                self.start += decoded.consumed;
                match decoded.event {
                    Some(Event::Text(t)) => return Ok(t.to_owned()),
                    Some(Event::Close(_)) => return Err(std::io::Error::other("closed")),
                    _ => {}
                }
            }
            self.buf.clear();
            self.start = 0;
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::other("eof"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The number after `"id":` in a reply.
fn reply_id(text: &str) -> Option<u64> {
    let at = text.find("\"id\":")? + 5;
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// One connection's run: its latencies (µs) and refusals.
fn run(o: &Opts, index: usize) -> std::io::Result<(Vec<u32>, u64)> {
    let mut conn = Conn::open(&o.addr)?;
    let payload = format!("\"{}\"", "x".repeat(o.size));
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut latencies = Vec::new();
    let mut refused = 0;
    let mut frame = Vec::new();
    let mut next_id = 0u64;
    let mut in_flight = 0;
    let end = Instant::now() + o.duration;
    let send = |conn: &mut Conn, id: u64, frame: &mut Vec<u8>| -> std::io::Result<()> {
        let channel = (index + id as usize) % o.channels;
        let text =
            format!(r#"{{"op":"publish","id":{id},"channel":"ack:{channel}","data":{payload}}}"#);
        frame.clear();
        encode_masked_frame_into(frame, OpCode::Text, true, MASK, text.as_bytes());
        conn.stream.write_all(frame)
    };
    while in_flight < o.inflight {
        sent_at.push(Instant::now());
        send(&mut conn, next_id, &mut frame)?;
        next_id += 1;
        in_flight += 1;
    }
    while in_flight > 0 {
        let text = conn.recv()?;
        let Some(id) = reply_id(&text) else {
            continue;
        };
        let at = sent_at[id as usize];
        latencies.push(at.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if text.contains("\"error\"") {
            refused += 1;
        }
        in_flight -= 1;
        if Instant::now() < end {
            sent_at.push(Instant::now());
            send(&mut conn, next_id, &mut frame)?;
            next_id += 1;
            in_flight += 1;
        }
    }
    Ok((latencies, refused))
}

fn main() -> std::process::ExitCode {
    let o = match opts() {
        Ok(o) => std::sync::Arc::new(o),
        Err(e) => {
            eprintln!("publish-ack: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let threads: Vec<_> = (0..o.connections)
        .map(|i| {
            let o = o.clone();
            std::thread::spawn(move || run(&o, i))
        })
        .collect();
    let mut all = Vec::new();
    let mut refused = 0;
    for t in threads {
        match t.join() {
            Ok(Ok((lat, r))) => {
                all.extend(lat);
                refused += r;
            }
            Ok(Err(e)) => {
                eprintln!("publish-ack: connection failed: {e}");
                return std::process::ExitCode::FAILURE;
            }
            Err(_) => return std::process::ExitCode::FAILURE,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len().max(1)) - 1;
        all.get(i).copied().unwrap_or(0)
    };
    println!(
        r#"{{"publishes":{},"publishes_per_s":{:.0},"p50_us":{},"p99_us":{},"p999_us":{},"max_us":{},"refused":{},"connections":{},"inflight":{},"size":{}}}"#,
        all.len(),
        all.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        all.last().copied().unwrap_or(0),
        refused,
        o.connections,
        o.inflight,
        o.size
    );
    std::process::ExitCode::SUCCESS
}

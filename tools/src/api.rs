//! The `api` scenario: how many publishes per second the server API takes on
//! keep-alive connections, and how long a publish takes from the API request
//! to its delivery on a `/ws` subscriber.
//!
//! `--connections N` blocking threads each hold one keep-alive HTTP/1.1
//! connection and publish closed-loop (the next request after the previous
//! answer), round-robin over `--channels` channels. An API publish is a
//! request and its answer; there is no open-loop schedule here, so the
//! figures are a closed loop's: throughput at N requests in flight, and the
//! latency of each (no coordinated-omission correction is needed for a
//! closed loop's own requests, and none is claimed).
//!
//! With `--ws-url`, one subscriber thread subscribes to every channel and
//! records, for every push, its arrival minus the moment its publish request
//! was written (carried in `data` as nanoseconds since the run's start: the
//! clocks are one process's). Its pushes are counted and checked against
//! the publishes acknowledged (`lost`).
//!
//! Every loop is bounded by the run's end (`--warmup` + `--duration`) plus
//! `--drain` for the last deliveries; every socket read has a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use serde_json::json;

use crate::client::{encode_request_into, new_key, new_mask, parse_response};
use crate::url::WsUrl;

/// What to run.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The API's address (`http://HOST:PORT`, main port or `api.listen`).
    pub addr: SocketAddr,
    pub authority: String,
    pub key: String,
    pub connections: usize,
    pub channels: usize,
    /// Bytes of filler in each publish's `data`.
    pub size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    /// A `/ws` URL to measure delivery on.
    pub ws: Option<WsUrl>,
}

/// Why the run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ApiRunError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Protocol(String),
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> ApiRunError {
    move |source| ApiRunError::Io { what, source }
}

/// The figures of one run.
#[derive(Debug)]
pub struct ApiReport {
    pub connections: usize,
    pub window: Duration,
    /// Publishes answered 200 whose request was written inside the window.
    pub acked: u64,
    pub refused: u64,
    pub publishes_per_s: f64,
    /// Request written → answer read, µs, inside the window.
    pub request: Histogram<u64>,
    /// Request written → push read by the subscriber, µs, inside the window.
    pub delivery: Option<Histogram<u64>>,
    pub delivered: u64,
    /// Publishes acknowledged (whole run) whose push never came.
    pub lost: u64,
}

impl ApiReport {
    pub fn json(&self) -> serde_json::Value {
        let q = |h: &Histogram<u64>| {
            json!({
                "p50_us": h.value_at_quantile(0.5),
                "p99_us": h.value_at_quantile(0.99),
                "p999_us": h.value_at_quantile(0.999),
                "max_us": h.max(),
                "count": h.len(),
            })
        };
        json!({
            "scenario": "api",
            "connections": self.connections,
            "window_s": self.window.as_secs_f64(),
            "acked": self.acked,
            "refused": self.refused,
            "publishes_per_s": self.publishes_per_s,
            "request_latency": q(&self.request),
            "delivery_latency": self.delivery.as_ref().map(q),
            "delivered": self.delivered,
            "lost": self.lost,
        })
    }

    pub fn text(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let line = |name: &str, h: &Histogram<u64>| {
            format!(
                "{name}: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms ({} samples)\n",
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999)),
                ms(h.max()),
                h.len()
            )
        };
        let mut out = format!(
            "api publish, {} keep-alive connection(s), closed loop, {:.1} s window\n\
             publishes/s: {:.0} ({} acknowledged, {} refused)\n",
            self.connections,
            self.window.as_secs_f64(),
            self.publishes_per_s,
            self.acked,
            self.refused
        );
        out.push_str(&line("request → answer", &self.request));
        if let Some(h) = &self.delivery {
            out.push_str(&line("request → delivery", h));
            out.push_str(&format!(
                "deliveries: {} (lost: {})\n",
                self.delivered, self.lost
            ));
        }
        out
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Shared between the threads of one run.
struct Run {
    start: Instant,
    window_start: Instant,
    window_end: Instant,
    /// Publishes acknowledged over the whole run (for `lost`).
    acked_total: AtomicU64,
    /// Set once every publisher stopped.
    publishers_done: AtomicBool,
}

impl Run {
    fn in_window(&self, at: Instant) -> bool {
        at >= self.window_start && at < self.window_end
    }
}

pub fn run(cfg: &ApiConfig) -> Result<ApiReport, ApiRunError> {
    let start = Instant::now();
    let run = Arc::new(Run {
        start,
        window_start: start + cfg.warmup,
        window_end: start + cfg.warmup + cfg.duration,
        acked_total: AtomicU64::new(0),
        publishers_done: AtomicBool::new(false),
    });
    let channels: Vec<String> = (0..cfg.channels.max(1))
        .map(|i| format!("apibench:{i}"))
        .collect();
    let subscriber = match &cfg.ws {
        Some(url) => Some(Subscriber::connect(url, &channels)?),
        None => None,
    };
    let delivery = Arc::new(Mutex::new(histogram()));
    let delivered = Arc::new(AtomicU64::new(0));
    let sub_thread = subscriber.map(|sub| {
        let (run, delivery, delivered) = (run.clone(), delivery.clone(), delivered.clone());
        let drain = cfg.drain;
        std::thread::spawn(move || sub.run(&run, &delivery, &delivered, drain))
    });
    let mut threads = Vec::new();
    for c in 0..cfg.connections.max(1) {
        let (cfg, run, channels) = (cfg.clone(), run.clone(), channels.clone());
        threads.push(std::thread::spawn(move || {
            publisher(c, &cfg, &run, &channels)
        }));
    }
    let mut request = histogram();
    let (mut acked, mut refused) = (0, 0);
    let mut first_error = None;
    for thread in threads {
        match thread.join() {
            Ok(Ok(p)) => {
                let _ = request.add(&p.request);
                acked += p.acked;
                refused += p.refused;
            }
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => {
                first_error =
                    first_error.or(Some(ApiRunError::Protocol("a publisher panicked".into())))
            }
        }
    }
    run.publishers_done.store(true, Ordering::Release);
    if let Some(thread) = sub_thread {
        if let Ok(Err(e)) = thread.join() {
            first_error = first_error.or(Some(e));
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let delivered_total = delivered.load(Ordering::Acquire);
    let acked_total = run.acked_total.load(Ordering::Acquire);
    let delivery = cfg.ws.as_ref().map(|_| {
        delivery
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    });
    Ok(ApiReport {
        connections: cfg.connections.max(1),
        window: cfg.duration,
        acked,
        refused,
        publishes_per_s: acked as f64 / cfg.duration.as_secs_f64(),
        request,
        delivery,
        delivered: delivered_total,
        lost: acked_total.saturating_sub(delivered_total),
    })
}

struct PubFigures {
    request: Histogram<u64>,
    acked: u64,
    refused: u64,
}

fn publisher(
    index: usize,
    cfg: &ApiConfig,
    run: &Run,
    channels: &[String],
) -> Result<PubFigures, ApiRunError> {
    let mut stream = TcpStream::connect(cfg.addr).map_err(io("api connect"))?;
    stream.set_nodelay(true).map_err(io("nodelay"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io("timeout"))?;
    let filler = "x".repeat(cfg.size);
    let mut figures = PubFigures {
        request: histogram(),
        acked: 0,
        refused: 0,
    };
    let mut buf = Vec::with_capacity(4096);
    let mut request = Vec::with_capacity(512 + cfg.size);
    let mut k = index;
    loop {
        let sent = Instant::now();
        if sent >= run.window_end {
            return Ok(figures);
        }
        let stamp = sent.duration_since(run.start).as_nanos() as u64;
        let channel = &channels[k % channels.len()];
        k += cfg.connections.max(1);
        let body = format!("{{\"channel\":\"{channel}\",\"data\":\"{stamp:x}:{filler}\"}}");
        request.clear();
        write!(
            request,
            "POST /api/publish HTTP/1.1\r\nHost: {}\r\nAuthorization: apikey {}\r\nContent-Length: {}\r\n\r\n{body}",
            cfg.authority,
            cfg.key,
            body.len()
        )
        .map_err(io("format"))?;
        stream.write_all(&request).map_err(io("api write"))?;
        let (status, close) = read_response(&mut stream, &mut buf)?;
        let answered = Instant::now();
        if status == 200 {
            run.acked_total.fetch_add(1, Ordering::AcqRel);
        }
        if run.in_window(sent) {
            match status {
                200 => figures.acked += 1,
                _ => figures.refused += 1,
            }
            let _ = figures
                .request
                .record(answered.duration_since(sent).as_micros().max(1) as u64);
        }
        if close {
            // A refusal the server closes after (a wrong key, a bad
            // request): counted, and this publisher stops.
            if !run.in_window(sent) && status != 200 {
                figures.refused += 1;
            }
            return Ok(figures);
        }
    }
}

/// Reads one response (head and `Content-Length` body); its status, and
/// whether the server closes the connection after it.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, bool), ApiRunError> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = response.parse(buf) {
            let status = response.code.unwrap_or(0);
            let close = response.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close")
            });
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiRunError::Protocol("an API answer without Content-Length".into())
                })?;
            while buf.len() < head + length {
                let n = stream.read(&mut chunk).map_err(io("api read"))?;
                if n == 0 {
                    return Err(ApiRunError::Protocol(
                        "the API closed the connection".into(),
                    ));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            if buf.len() > head + length {
                return Err(ApiRunError::Protocol(
                    "bytes after the answer (no pipelining here)".into(),
                ));
            }
            return Ok((status, close));
        }
        let n = stream.read(&mut chunk).map_err(io("api read"))?;
        if n == 0 {
            return Err(ApiRunError::Protocol(
                "the API closed the connection".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The `/ws` subscriber of every channel.
struct Subscriber {
    stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
}

impl Subscriber {
    fn connect(url: &WsUrl, channels: &[String]) -> Result<Subscriber, ApiRunError> {
        let mut stream = TcpStream::connect(url.addr).map_err(io("ws connect"))?;
        stream.set_nodelay(true).map_err(io("nodelay"))?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(io("timeout"))?;
        let key = new_key();
        let mut request = Vec::new();
        encode_request_into(&mut request, url, &key);
        stream.write_all(&request).map_err(io("ws handshake"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        let head = loop {
            if let Some(head) = parse_response(&buf, &key)
                .map_err(|e| ApiRunError::Protocol(format!("ws handshake: {e:?}")))?
            {
                break head;
            }
            match stream.read(&mut chunk) {
                Ok(0) => return Err(ApiRunError::Protocol("ws handshake: closed".into())),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if Instant::now() < deadline => {}
                Err(e) => return Err(io("ws handshake")(e)),
            }
        };
        buf.drain(..head);
        let limits = Limits {
            max_frame_size: 1 << 24,
            max_message_size: 1 << 24,
        };
        let mut sub = Subscriber {
            stream,
            decoder: Decoder::new(Role::Client, limits),
            buf,
        };
        for (i, channel) in channels.iter().enumerate() {
            let command = json!({"id": i + 1, "op": "subscribe", "channel": channel}).to_string();
            sub.send(OpCode::Text, command.as_bytes())?;
        }
        // Every subscribe answered before publishing starts.
        let mut answered = 0;
        while answered < channels.len() {
            if Instant::now() > deadline {
                return Err(ApiRunError::Protocol(
                    "subscribes not answered within 10 s".into(),
                ));
            }
            sub.read_messages(|text| {
                if text.contains("\"result\"") {
                    answered += 1;
                }
            })?;
        }
        Ok(sub)
    }

    fn send(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), ApiRunError> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        encode_masked_frame_into(&mut frame, opcode, true, new_mask(), payload);
        self.stream.write_all(&frame).map_err(io("ws write"))
    }

    /// Reads what arrives within the socket's timeout and hands every text
    /// message to `on_text`; answers pings.
    fn read_messages(&mut self, mut on_text: impl FnMut(&str)) -> Result<(), ApiRunError> {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => return Err(ApiRunError::Protocol("the subscriber was closed".into())),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(io("ws read")(e)),
        }
        let mut start = 0;
        let mut pongs = Vec::new();
        while start < self.buf.len() {
            let decoded = self
                .decoder
                .decode(&mut self.buf[start..])
                .map_err(|e| ApiRunError::Protocol(format!("ws frame: {e}")))?;
            if decoded.consumed == 0 && decoded.event.is_none() {
                break;
            }
            start += decoded.consumed;
            match decoded.event {
                Some(Event::Text(text)) => on_text(text),
                Some(Event::Ping(p)) => pongs.push(p.to_vec()),
                Some(Event::Close(_)) => {
                    return Err(ApiRunError::Protocol(
                        "the server closed the subscriber".into(),
                    ))
                }
                _ => {}
            }
        }
        self.buf.drain(..start);
        for p in pongs {
            self.send(OpCode::Pong, &p)?;
        }
        Ok(())
    }

    fn run(
        mut self,
        run: &Run,
        delivery: &Mutex<Histogram<u64>>,
        delivered: &AtomicU64,
        drain: Duration,
    ) -> Result<(), ApiRunError> {
        let mut local = histogram();
        let mut count = 0u64;
        let mut quiet_since: Option<Instant> = None;
        loop {
            let before = count;
            self.read_messages(|text| {
                let now = Instant::now();
                // `"data":"STAMP:filler"`: the stamp is hex nanoseconds since the start.
                let Some(at) = text.find("\"data\":\"") else {
                    return;
                };
                let rest = &text[at + 8..];
                let Some(end) = rest.find(':') else { return };
                let Ok(stamp) = u64::from_str_radix(&rest[..end], 16) else {
                    return;
                };
                count += 1;
                let sent = run.start + Duration::from_nanos(stamp);
                if run.in_window(sent) {
                    let _ = local.record(now.duration_since(sent).as_micros().max(1) as u64);
                }
            })?;
            let now = Instant::now();
            if run.publishers_done.load(Ordering::Acquire) {
                if count == before {
                    let since = *quiet_since.get_or_insert(now);
                    if count >= run.acked_total.load(Ordering::Acquire)
                        || now.duration_since(since) >= drain
                    {
                        break;
                    }
                } else {
                    quiet_since = None;
                }
            }
            if now > run.window_end + drain + Duration::from_secs(10) {
                break;
            }
        }
        delivered.store(count, Ordering::Release);
        if let Ok(mut h) = delivery.lock() {
            let _ = h.add(&local);
        }
        Ok(())
    }
}

//! The server's typed configuration: every knob, its default, its unit, and
//! the rules that make a set of values consistent.
//!
//! [`ServerConfig::default`] is the embedded default that runs anywhere (a
//! laptop, a 2-core CI box). Hardware profiles, `RINGCAST_*` environment
//! variables and command-line flags change single fields on top of it; that
//! layering, and where each value came from, lives in [`layers`]. Whatever
//! the source, [`ServerConfig::validate`] refuses values that cannot work
//! before anything starts.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `mod.rs` | [`ServerConfig`], its defaults and [`ServerConfig::validate`] |
//! | `keys.rs` | the key table: TOML name, table, value type of every field |
//! | `profile.rs` | which profile: embedded tiers, a file, or `auto` |
//! | `layers.rs` | default < profile < env < flags, with provenance per key |
//! | `log.rs` | the `[log]` values: a checked `EnvFilter` directive, the line format |
//! | `machine.rs` | cores, memory and disks of this box, and the `auto` pick |
//! | `doctor/` | `ringcast doctor`: this machine against what a profile needs (`probe.rs` reads, `checks.rs` and `net.rs` judge) |

pub mod doctor;
pub mod keys;
pub mod layers;
pub mod log;
pub mod machine;
pub mod profile;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use self::log::{LogFormat, LogLevel};
use crate::admission::origin::OriginPolicy;
use crate::admission::proxy::TrustedProxies;
use crate::auth::keys::{parse_algorithms, KeySet};
use crate::auth::{AuthMode, Patterns, Secret};
use crate::proto::decoder::Limits;
use crate::proto::handshake::HandshakeLimits;
use crate::proto::session::SessionConfig;

/// When the durable store makes an appended message durable.
///
/// Config-only for now: nothing reads it until the durable store lands; it
/// is validated, shown, and checked by `ringcast doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fsync` before a publish is acknowledged.
    Always,
    /// `fsync` once per batch of appends (group commit).
    Batch,
    /// Leave it to the kernel's writeback.
    Never,
}

impl FsyncPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Batch => "batch",
            FsyncPolicy::Never => "never",
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(format!("{other:?} is not one of always, batch, never")),
        }
    }
}

/// Everything `ringcast serve` needs to run.
///
/// The TOML key of a field is `TABLE.FIELD` (see [`keys::KEYS`]); the table
/// each field belongs to is named in brackets below.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    // ----- [server] -----
    /// Address every worker listens on (one `SO_REUSEPORT` socket each).
    /// Default `127.0.0.1:8080`; use `0.0.0.0:PORT` to accept from other hosts.
    pub listen: SocketAddr,
    /// Worker threads, one monoio event loop each. `0` = one per CPU in
    /// `cpus` when that list is set, else one per online core. Default 0.
    pub workers: usize,
    /// Pin each worker thread to one CPU. Default true.
    pub pin_workers: bool,
    /// CPUs to pin workers to: worker `i` runs on `cpus[i % len]`. Empty =
    /// worker `i` on the `i`-th CPU the process may run on. Default empty.
    pub cpus: Vec<usize>,
    /// Listen backlog of each worker's socket (the kernel caps it at
    /// `net.core.somaxconn`). Default 1024.
    pub backlog: u32,
    /// `SO_RCVBUF` of the listening sockets, inherited by every accepted
    /// socket, in bytes (the kernel doubles it and caps it at
    /// `net.core.rmem_max`). `0` = kernel autotuning (`net.ipv4.tcp_rmem`).
    /// Default 0.
    pub so_rcvbuf: usize,
    /// `SO_SNDBUF` of the listening sockets, inherited like `so_rcvbuf`, in
    /// bytes: it bounds the kernel memory a slow reader can pin. `0` = kernel
    /// autotuning (`net.ipv4.tcp_wmem`). Default 0.
    pub so_sndbuf: usize,
    /// Subprotocols the server speaks, in preference order. Default none.
    pub subprotocols: Vec<String>,
    /// PEM certificate chain for `wss://`. Empty (the default): plain `ws://`.
    /// Set together with `tls_key`.
    pub tls_cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`. Default empty.
    pub tls_key: PathBuf,

    // ----- [log] (keys `log.level` and `log.format`; read by the binary) -----
    /// Which events reach stderr: a level (`error`, `warn`, `info`, `debug`,
    /// `trace`, `off`) or `EnvFilter` directives (`warn,ringcast::server=debug`);
    /// `debug` adds a line per connection accepted, upgraded and closed.
    /// Also `RINGCAST_LOG`. Default `info`.
    pub log_level: LogLevel,
    /// Log line format on stderr: `human` or `json` (one object per line).
    /// Also `RINGCAST_LOG_FORMAT` and `serve --log-format`. Default `human`.
    pub log_format: LogFormat,

    // ----- [io_uring] -----
    /// Use the epoll driver even where io_uring works (as
    /// `MONOIO_FORCE_LEGACY_DRIVER=1` does for the whole process). Default false.
    pub force_epoll: bool,
    /// io_uring submission queue entries per worker (power of two, 8..=32768).
    /// Default 1024.
    pub uring_entries: u32,
    /// `IORING_SETUP_SQPOLL`: a kernel thread per worker polls the submission
    /// queue, saving `io_uring_enter` calls at the cost of a busy core while
    /// traffic flows. Needs its own cores. Default false.
    pub uring_sqpoll: bool,
    /// How long an SQPOLL thread spins without work before it sleeps.
    /// Used only with `uring_sqpoll`. Default 1 s.
    pub uring_sqpoll_idle: Duration,
    /// `IORING_SETUP_COOP_TASKRUN` (5.19+): no interrupt to run completion
    /// work; it runs when the loop enters the kernel anyway. The kernel
    /// refuses it together with SQPOLL. Default true.
    pub uring_coop_taskrun: bool,
    /// `IORING_SETUP_SINGLE_ISSUER` (6.0+): only the worker's thread submits,
    /// which lets the kernel skip locking. Default true.
    pub uring_single_issuer: bool,

    // ----- [limits] -----
    /// Most connections a worker holds at once; past it, new ones get 503.
    /// Default 100,000.
    pub max_connections_per_worker: usize,
    /// Most connections the whole server holds at once, over all workers
    /// (`admission::Admission`); past it, new ones get 503 with
    /// `Retry-After`. `0` = no server-wide cap (each worker still has its
    /// `max_connections_per_worker`). Default 0.
    pub max_connections: usize,
    /// Most connections one client address may hold at once (IPv6: one /64
    /// prefix; IPv4-mapped IPv6 counts as IPv4); past it, 503 with
    /// `Retry-After`. `0` = no limit. Enforced by `admission::Admission`
    /// once the handshake calls it. Default 0.
    pub max_connections_per_ip: usize,
    /// Largest accepted frame payload, in bytes (larger → close 1009). Default 64 KiB.
    pub max_frame_size: u64,
    /// Largest accepted message (all fragments), in bytes (→ 1009). Default 64 KiB.
    pub max_message_size: u64,
    /// Largest HTTP request head of the handshake, in bytes (→ 431). Default 8 KiB.
    pub max_handshake_bytes: usize,
    /// Bytes queued for one connection beyond which it is closed as a slow
    /// consumer (1008). Default 1 MiB.
    pub max_outbound_bytes: usize,
    /// Per-core read scratch buffer, in bytes: every read on a core lands here
    /// first, so connections hold no read buffer of their own. Default 64 KiB.
    pub read_buffer_size: usize,
    /// Sustained commands per second per connection on `/ws`. Default 100.
    pub command_rate: u32,
    /// Commands a connection may send in a burst above the rate. Default 200.
    pub command_burst: u32,
    /// Sustained publishes per second per connection, on top of
    /// `command_rate` (a publish takes a token from both). `0` = no separate
    /// publish limit. Default 0.
    pub publish_rate: u32,
    /// Publishes a connection may send in a burst above `publish_rate`.
    /// Used only when `publish_rate` is set. Default 100.
    pub publish_burst: u32,
    /// Sustained subscribes per second per connection, on top of
    /// `command_rate`. `0` = no separate subscribe limit. Default 0.
    pub subscribe_rate: u32,
    /// Subscribes a connection may send in a burst above `subscribe_rate`
    /// (a reconnecting client resubscribes to all its channels at once: keep
    /// it at least `max_subscriptions_per_connection`). Used only when
    /// `subscribe_rate` is set. Default 128.
    pub subscribe_burst: u32,
    /// Consecutive `rate_limited` refusals (with no command run between
    /// them, within `rate_limit_window`) after which the connection is
    /// closed with 1008. `0` = never close. Default 100.
    pub rate_limit_close_after: u32,
    /// The window of `rate_limit_close_after`: a refusal later than this
    /// after the first of a streak starts a new streak. Default 10 s.
    pub rate_limit_window: Duration,

    // ----- [timeouts] -----
    /// A client must complete its request head within this time. Default 10 s.
    pub handshake_timeout: Duration,
    /// Silence after which the server pings. Default 30 s.
    pub ping_interval: Duration,
    /// Silence (or a partial frame) after which the connection is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// Wait for the peer's close frame after sending ours. Default 5 s.
    pub close_timeout: Duration,
    /// On shutdown, wait this long for close handshakes before exiting. Default 10 s.
    pub drain_timeout: Duration,
    /// Granularity of the per-core timer sweep that fires the timeouts above.
    /// Default 250 ms.
    pub timer_tick: Duration,

    // ----- [pubsub] -----
    /// Messages kept per channel for resume. Default 100.
    pub history_size: usize,
    /// Age past which history entries are dropped, and after which a channel
    /// with no subscribers is evicted. Default 300 s.
    pub history_ttl: Duration,
    /// Channels the whole server holds at once (split evenly over the owner
    /// cores); publishing to a new channel past it is refused. Default 100,000.
    pub max_channels: usize,
    /// Channels one connection may subscribe to. Default 128.
    pub max_subscriptions_per_connection: usize,
    /// Longest channel name, in bytes. Default 128.
    pub max_channel_name_len: usize,
    /// Largest `data` of one publish, in bytes of JSON. Default 64 KiB.
    pub max_publish_bytes: usize,
    /// Capacity, in messages, of each core's cross-core inbox. Default 65,536.
    pub inbox_capacity: usize,
    /// Most inbox messages a core's hub handles per turn before it lets the
    /// core serve its sockets again. Default 1024.
    pub inbox_batch: usize,

    // ----- [store] (config-only: nothing reads these until the durable store lands) -----
    /// Directory of the durable store. Empty = no durable store. Default empty.
    pub data_path: PathBuf,
    /// When the store calls `fsync`: `always`, `batch` or `never`. Default `batch`.
    pub fsync: FsyncPolicy,

    // ----- [capacity] (the profile's capacity statement; checked by doctor, never enforced) -----
    /// Connections the profile is sized for. `0` = no statement. Default 0.
    pub planned_connections: u64,
    /// Delivered messages per second the profile is sized for. `0` = no
    /// statement. Default 0.
    pub planned_messages_per_sec: u64,
    /// Memory, in bytes, the profile needs at its planned load. `0` = no
    /// statement. Default 0.
    pub planned_memory: u64,

    // ----- [auth] (read by `auth::Authenticator::from_config`) -----
    /// `"none"`: no authentication, every client may do everything (the
    /// server warns at startup); `"jwt"`: a signed JWT is required at the
    /// handshake. Default `"none"`.
    pub auth_mode: AuthMode,
    /// Shared secret for HS256/384/512, inline (its bytes as written; at
    /// least 32). Shown as `"<redacted>"` by `profile show`. Prefer
    /// `jwt_secret_file`. Exactly one of the four key sources is set in
    /// `jwt` mode. Default empty.
    pub jwt_secret: Secret,
    /// File holding the shared secret (one trailing newline is ignored).
    /// Default empty.
    pub jwt_secret_file: PathBuf,
    /// PEM file of the public key: RSA (2048 bits or more), EC P-256/P-384
    /// or Ed25519. Default empty.
    pub jwt_pem_file: PathBuf,
    /// JWKS file (`{"keys": [...]}`); a token's `kid` selects its key.
    /// Read at startup only. Default empty.
    pub jwt_jwks_file: PathBuf,
    /// Algorithms accepted, e.g. `["RS256"]`. Empty = every algorithm the
    /// configured key can verify (never more: the key type decides, not the
    /// token). Default empty.
    pub jwt_algorithms: Vec<String>,
    /// The `iss` every token must carry. Empty = not checked. Default empty.
    pub jwt_issuer: String,
    /// A value the token's `aud` must list. Empty = tokens must carry no
    /// `aud`. Default empty.
    pub jwt_audience: String,
    /// Clock skew allowed on `exp` and `nbf` (whole seconds, at most 5 min).
    /// Default 30 s.
    pub jwt_leeway: Duration,
    /// Refuse tokens without `exp`. Default true.
    pub jwt_require_exp: bool,
    /// Channel patterns a token without a `subs` claim may subscribe to
    /// (`auth::pattern`: exact, trailing `*`, `{sub}`). Default empty: none.
    pub jwt_default_subs: Vec<String>,
    /// Channel patterns a token without a `pubs` claim may publish to.
    /// Default empty: none.
    pub jwt_default_pubs: Vec<String>,

    // ----- [admission] (read by `admission::AdmissionConfig::from_config`) -----
    /// Handshakes per second the whole server admits (a token bucket shared
    /// by all workers); past it, 503 with `Retry-After`. `0` = no limit.
    /// Default 0.
    pub admission_rate: u32,
    /// Handshakes admitted in a burst above `admission_rate`. Used only when
    /// `admission_rate` is set. Default 1000.
    pub admission_burst: u32,
    /// Handshakes per second admitted from one client address (IPv6: per
    /// /64). `0` = no limit. Default 0.
    pub admission_rate_per_ip: u32,
    /// Handshakes admitted from one address in a burst above
    /// `admission_rate_per_ip`. Used only when that is set. Default 20.
    pub admission_burst_per_ip: u32,
    /// Most random seconds added to every `Retry-After`, so that refused
    /// clients do not all come back at the same second (whole seconds, at
    /// most 1 h). Default 5 s.
    pub retry_jitter: Duration,
    /// `Origin` allow-list for WebSocket handshakes: exact origins
    /// (`"https://app.example.com"`, `"http://localhost:3000"`) or one-label
    /// wildcards (`"https://*.example.com"`). Empty = any origin. Requests
    /// without `Origin` (non-browser clients) are always let through.
    /// Other origins get 403. Default empty.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client: addresses
    /// or CIDR blocks (`["127.0.0.1/32", "10.0.0.0/8"]`). From such a peer,
    /// the client is the rightmost `X-Forwarded-For` entry that is not itself
    /// a trusted proxy, and that address is what the per-IP caps and rates
    /// count and the handshake logs name; a missing or malformed header
    /// counts the proxy itself. Other peers' headers are ignored
    /// (`admission::proxy`). Default empty: trust nobody.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            pin_workers: true,
            cpus: Vec::new(),
            backlog: 1024,
            so_rcvbuf: 0,
            so_sndbuf: 0,
            subprotocols: Vec::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            log_level: LogLevel::default(),
            log_format: LogFormat::default(),
            force_epoll: false,
            uring_entries: 1024,
            uring_sqpoll: false,
            uring_sqpoll_idle: Duration::from_secs(1),
            uring_coop_taskrun: true,
            uring_single_issuer: true,
            max_connections_per_worker: 100_000,
            max_connections: 0,
            max_connections_per_ip: 0,
            max_frame_size: 64 * 1024,
            max_message_size: 64 * 1024,
            max_handshake_bytes: 8 * 1024,
            max_outbound_bytes: 1024 * 1024,
            read_buffer_size: 64 * 1024,
            command_rate: 100,
            command_burst: 200,
            publish_rate: 0,
            publish_burst: 100,
            subscribe_rate: 0,
            subscribe_burst: 128,
            rate_limit_close_after: 100,
            rate_limit_window: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            timer_tick: Duration::from_millis(250),
            history_size: 100,
            history_ttl: Duration::from_secs(300),
            max_channels: 100_000,
            max_subscriptions_per_connection: 128,
            max_channel_name_len: 128,
            max_publish_bytes: 64 * 1024,
            inbox_capacity: 65_536,
            inbox_batch: 1024,
            data_path: PathBuf::new(),
            fsync: FsyncPolicy::Batch,
            planned_connections: 0,
            planned_messages_per_sec: 0,
            planned_memory: 0,
            auth_mode: AuthMode::None,
            jwt_secret: Secret::default(),
            jwt_secret_file: PathBuf::new(),
            jwt_pem_file: PathBuf::new(),
            jwt_jwks_file: PathBuf::new(),
            jwt_algorithms: Vec::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_leeway: Duration::from_secs(30),
            jwt_require_exp: true,
            jwt_default_subs: Vec::new(),
            jwt_default_pubs: Vec::new(),
            admission_rate: 0,
            admission_burst: 1000,
            admission_rate_per_ip: 0,
            admission_burst_per_ip: 20,
            retry_jitter: Duration::from_secs(5),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// A configuration value that cannot work, named by its field.
///
/// `key` is the field that is wrong; for an inconsistent pair, `pair` is the
/// other field of the rule, so a caller that knows where each value came from
/// can blame the one that was set last.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}: {reason}", keys::dotted(key))]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
    pub pair: Option<&'static str>,
}

fn refuse(key: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        key,
        reason: reason.into(),
        pair: None,
    })
}

fn refuse_pair(
    key: &'static str,
    pair: &'static str,
    reason: impl Into<String>,
) -> Result<(), ConfigError> {
    Err(ConfigError {
        key,
        reason: reason.into(),
        pair: Some(pair),
    })
}

fn show_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A rate of events per second with its burst: `0` turns the limit off; a
/// set rate needs a burst of at least 1 and at most one event per
/// nanosecond (the token buckets count in nanoseconds).
fn check_rate(
    (rate_key, rate): (&'static str, u32),
    (burst_key, burst): (&'static str, u32),
) -> Result<(), ConfigError> {
    if rate > 1_000_000_000 {
        return refuse(
            rate_key,
            format!("{rate} is more than 1,000,000,000 per second"),
        );
    }
    if rate > 0 && burst == 0 {
        return refuse_pair(
            burst_key,
            rate_key,
            format!("must be at least 1 when {} is set", keys::dotted(rate_key)),
        );
    }
    Ok(())
}

/// Largest io_uring queue the kernel accepts (`IORING_MAX_ENTRIES`).
const MAX_URING_ENTRIES: u32 = 32_768;

impl ServerConfig {
    /// Worker count after resolving `0`: one per listed CPU, else one per
    /// online core.
    pub fn effective_workers(&self) -> usize {
        match self.workers {
            0 if !self.cpus.is_empty() => self.cpus.len(),
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The CPU worker `index` is pinned to when `cpus` is set.
    pub fn cpu_for_worker(&self, index: usize) -> Option<usize> {
        (!self.cpus.is_empty()).then(|| self.cpus[index % self.cpus.len()])
    }

    /// Checks every range and every rule between two fields; the first
    /// violation wins.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_io_uring()?;
        self.validate_limits()?;
        self.validate_timeouts()?;
        self.validate_pubsub()?;
        self.validate_auth()?;
        self.validate_admission()
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return refuse_pair(
                "tls_cert",
                "tls_key",
                "tls_cert and tls_key are set together, or neither",
            );
        }
        if self.workers > 1024 {
            return refuse("workers", format!("{} is more than 1024", self.workers));
        }
        let mut seen = std::collections::BTreeSet::new();
        for cpu in &self.cpus {
            if *cpu >= 4096 {
                return refuse("cpus", format!("CPU {cpu} is out of range (0..4096)"));
            }
            if !seen.insert(*cpu) {
                return refuse("cpus", format!("CPU {cpu} is listed twice"));
            }
        }
        if self.backlog == 0 || self.backlog > 1 << 20 {
            return refuse("backlog", format!("{} is not in 1..=1048576", self.backlog));
        }
        for (key, value) in [("so_rcvbuf", self.so_rcvbuf), ("so_sndbuf", self.so_sndbuf)] {
            if value != 0 && !(4096..=1 << 30).contains(&value) {
                return refuse(
                    key,
                    format!("{value} is neither 0 (autotuning) nor in 4 KiB..=1 GiB"),
                );
            }
        }
        Ok(())
    }

    fn validate_io_uring(&self) -> Result<(), ConfigError> {
        if self.uring_entries < 8
            || self.uring_entries > MAX_URING_ENTRIES
            || !self.uring_entries.is_power_of_two()
        {
            return refuse(
                "uring_entries",
                format!(
                    "{} is not a power of two in 8..={MAX_URING_ENTRIES}",
                    self.uring_entries
                ),
            );
        }
        if self.uring_sqpoll && self.uring_coop_taskrun {
            return refuse_pair(
                "uring_sqpoll",
                "uring_coop_taskrun",
                "the kernel refuses SQPOLL together with COOP_TASKRUN: \
                 set io_uring.uring_coop_taskrun = false",
            );
        }
        if self.uring_sqpoll
            && (self.uring_sqpoll_idle.is_zero()
                || self.uring_sqpoll_idle > Duration::from_secs(60))
        {
            return refuse(
                "uring_sqpoll_idle",
                format!(
                    "{} is not in 1ms..=60s",
                    show_duration(self.uring_sqpoll_idle)
                ),
            );
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.max_connections_per_worker == 0 {
            return refuse("max_connections_per_worker", "must be at least 1");
        }
        if self.read_buffer_size < 4096 || self.read_buffer_size > 64 << 20 {
            return refuse("read_buffer_size", "must be between 4 KiB and 64 MiB");
        }
        if self.max_message_size == 0 {
            return refuse("max_message_size", "must be positive");
        }
        if self.max_frame_size == 0 {
            return refuse("max_frame_size", "must be positive");
        }
        if self.max_frame_size > self.max_message_size {
            return refuse_pair(
                "max_frame_size",
                "max_message_size",
                format!(
                    "{} exceeds limits.max_message_size ({})",
                    self.max_frame_size, self.max_message_size
                ),
            );
        }
        if self.max_handshake_bytes < 256 || self.max_handshake_bytes > 1 << 20 {
            return refuse("max_handshake_bytes", "must be between 256 bytes and 1 MiB");
        }
        if self.max_outbound_bytes < 4096 {
            return refuse("max_outbound_bytes", "must be at least 4 KiB");
        }
        if self.command_rate == 0 {
            return refuse("command_rate", "must be positive");
        }
        if self.command_burst == 0 {
            return refuse("command_burst", "must be positive");
        }
        check_rate(
            ("publish_rate", self.publish_rate),
            ("publish_burst", self.publish_burst),
        )?;
        check_rate(
            ("subscribe_rate", self.subscribe_rate),
            ("subscribe_burst", self.subscribe_burst),
        )?;
        if self.rate_limit_close_after > 0 && self.rate_limit_window.is_zero() {
            return refuse_pair(
                "rate_limit_window",
                "rate_limit_close_after",
                "must be positive when limits.rate_limit_close_after is set",
            );
        }
        Ok(())
    }

    fn validate_timeouts(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("handshake_timeout", self.handshake_timeout),
            ("close_timeout", self.close_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return refuse(key, "must be positive");
            }
        }
        if self.ping_interval >= self.idle_timeout {
            return refuse_pair(
                "ping_interval",
                "idle_timeout",
                format!(
                    "{} must be shorter than timeouts.idle_timeout ({})",
                    show_duration(self.ping_interval),
                    show_duration(self.idle_timeout)
                ),
            );
        }
        if self.timer_tick.is_zero() {
            return refuse("timer_tick", "must be positive");
        }
        if self.timer_tick > self.ping_interval {
            return refuse_pair(
                "timer_tick",
                "ping_interval",
                format!(
                    "{} is longer than timeouts.ping_interval ({})",
                    show_duration(self.timer_tick),
                    show_duration(self.ping_interval)
                ),
            );
        }
        Ok(())
    }

    fn validate_pubsub(&self) -> Result<(), ConfigError> {
        if self.history_size > 1_000_000 {
            return refuse("history_size", "must be at most 1,000,000");
        }
        if self.history_ttl.is_zero() {
            return refuse("history_ttl", "must be positive");
        }
        if self.max_channel_name_len == 0 || self.max_channel_name_len > 1024 {
            return refuse("max_channel_name_len", "must be between 1 and 1024");
        }
        if self.max_subscriptions_per_connection == 0 {
            return refuse("max_subscriptions_per_connection", "must be at least 1");
        }
        if self.max_publish_bytes == 0 {
            return refuse("max_publish_bytes", "must be positive");
        }
        if self.inbox_capacity < 16 {
            return refuse("inbox_capacity", "must be at least 16");
        }
        if self.inbox_batch == 0 {
            return refuse("inbox_batch", "must be at least 1");
        }
        if self.inbox_batch > self.inbox_capacity {
            return refuse_pair(
                "inbox_batch",
                "inbox_capacity",
                format!(
                    "{} exceeds pubsub.inbox_capacity ({})",
                    self.inbox_batch, self.inbox_capacity
                ),
            );
        }
        if self.max_channels < self.effective_workers() {
            return refuse_pair(
                "max_channels",
                "workers",
                format!(
                    "{} is fewer than one per worker ({})",
                    self.max_channels,
                    self.effective_workers()
                ),
            );
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let algorithms = match parse_algorithms(&self.jwt_algorithms) {
            Ok(algorithms) => algorithms,
            Err(reason) => return refuse("jwt_algorithms", reason),
        };
        if self.jwt_leeway > Duration::from_secs(300) {
            return refuse(
                "jwt_leeway",
                format!("{} is more than 5m", show_duration(self.jwt_leeway)),
            );
        }
        for (key, list) in [
            ("jwt_default_subs", &self.jwt_default_subs),
            ("jwt_default_pubs", &self.jwt_default_pubs),
        ] {
            if let Err(e) = Patterns::validate(list) {
                return refuse(key, e.to_string());
            }
        }
        let sources: Vec<&'static str> = [
            ("jwt_secret", self.jwt_secret.is_empty()),
            (
                "jwt_secret_file",
                self.jwt_secret_file.as_os_str().is_empty(),
            ),
            ("jwt_pem_file", self.jwt_pem_file.as_os_str().is_empty()),
            ("jwt_jwks_file", self.jwt_jwks_file.as_os_str().is_empty()),
        ]
        .into_iter()
        .filter(|(_, empty)| !empty)
        .map(|(key, _)| key)
        .collect();
        if let [first, second, ..] = sources[..] {
            return refuse_pair(
                second,
                first,
                format!(
                    "set only one key source: {} and {} are both set",
                    keys::dotted(first),
                    keys::dotted(second)
                ),
            );
        }
        if self.auth_mode == AuthMode::Jwt {
            if sources.is_empty() {
                return refuse(
                    "auth_mode",
                    "\"jwt\" needs a key: set auth.jwt_secret, jwt_secret_file, jwt_pem_file \
                     or jwt_jwks_file",
                );
            }
            // The inline secret can be checked now; files are read at startup.
            if !self.jwt_secret.is_empty() {
                if let Err(reason) =
                    KeySet::from_secret(self.jwt_secret.expose().as_bytes(), &algorithms)
                {
                    return refuse("jwt_secret", reason);
                }
            }
        }
        Ok(())
    }

    fn validate_admission(&self) -> Result<(), ConfigError> {
        check_rate(
            ("admission_rate", self.admission_rate),
            ("admission_burst", self.admission_burst),
        )?;
        check_rate(
            ("admission_rate_per_ip", self.admission_rate_per_ip),
            ("admission_burst_per_ip", self.admission_burst_per_ip),
        )?;
        if self.retry_jitter > Duration::from_secs(3600) {
            return refuse(
                "retry_jitter",
                format!("{} is more than 1h", show_duration(self.retry_jitter)),
            );
        }
        if let Err(reason) = OriginPolicy::parse(&self.allowed_origins) {
            return refuse("allowed_origins", reason);
        }
        if let Err(reason) = TrustedProxies::parse(&self.trusted_proxies) {
            return refuse("trusted_proxies", reason);
        }
        Ok(())
    }

    /// Channels each owner core may hold.
    pub fn max_channels_per_worker(&self) -> usize {
        self.max_channels.div_ceil(self.effective_workers())
    }

    pub fn frame_limits(&self) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
        }
    }

    pub fn handshake_limits(&self) -> HandshakeLimits {
        HandshakeLimits {
            max_head_bytes: self.max_handshake_bytes,
            ..HandshakeLimits::default()
        }
    }

    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            limits: self.frame_limits(),
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            close_timeout: self.close_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(config: ServerConfig) -> Result<(), &'static str> {
        config.validate().map_err(|e| e.key)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn ping_must_be_shorter_than_idle() {
        let config = ServerConfig {
            ping_interval: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            ..ServerConfig::default()
        };
        let err = config.validate().expect_err("refused");
        assert_eq!((err.key, err.pair), ("ping_interval", Some("idle_timeout")));
        assert_eq!(
            err.to_string(),
            "invalid configuration: timeouts.ping_interval: 1m must be shorter than \
             timeouts.idle_timeout (1m)"
        );
    }

    #[test]
    fn frame_limit_cannot_exceed_message_limit() {
        let config = ServerConfig {
            max_frame_size: 2 << 20,
            ..ServerConfig::default()
        };
        assert_eq!(key_of(config), Err("max_frame_size"));
    }

    #[test]
    fn sqpoll_and_coop_taskrun_are_refused_together() {
        let both = ServerConfig {
            uring_sqpoll: true,
            ..ServerConfig::default()
        };
        assert_eq!(key_of(both), Err("uring_sqpoll"));
        let sqpoll_only = ServerConfig {
            uring_sqpoll: true,
            uring_coop_taskrun: false,
            ..ServerConfig::default()
        };
        assert_eq!(key_of(sqpoll_only), Ok(()));
    }

    #[test]
    fn ranges_are_checked() {
        let cases: Vec<(ServerConfig, &str)> = vec![
            (
                ServerConfig {
                    workers: 2000,
                    ..Default::default()
                },
                "workers",
            ),
            (
                ServerConfig {
                    cpus: vec![1, 1],
                    ..Default::default()
                },
                "cpus",
            ),
            (
                ServerConfig {
                    backlog: 0,
                    ..Default::default()
                },
                "backlog",
            ),
            (
                ServerConfig {
                    so_sndbuf: 100,
                    ..Default::default()
                },
                "so_sndbuf",
            ),
            (
                ServerConfig {
                    uring_entries: 1000,
                    ..Default::default()
                },
                "uring_entries",
            ),
            (
                ServerConfig {
                    uring_entries: 65_536,
                    ..Default::default()
                },
                "uring_entries",
            ),
            (
                ServerConfig {
                    read_buffer_size: 1024,
                    ..Default::default()
                },
                "read_buffer_size",
            ),
            (
                ServerConfig {
                    timer_tick: Duration::ZERO,
                    ..Default::default()
                },
                "timer_tick",
            ),
            (
                ServerConfig {
                    max_publish_bytes: 0,
                    ..Default::default()
                },
                "max_publish_bytes",
            ),
            (
                ServerConfig {
                    inbox_batch: 100_000,
                    ..Default::default()
                },
                "inbox_batch",
            ),
            (
                ServerConfig {
                    max_channels: 0,
                    ..Default::default()
                },
                "max_channels",
            ),
        ];
        for (config, key) in cases {
            assert_eq!(key_of(config), Err(key));
        }
    }

    #[test]
    fn auth_needs_exactly_one_key_source() {
        let jwt = |tweak: fn(&mut ServerConfig)| {
            let mut config = ServerConfig {
                auth_mode: AuthMode::Jwt,
                ..ServerConfig::default()
            };
            tweak(&mut config);
            config.validate()
        };
        let err = jwt(|_| {}).expect_err("no key");
        assert_eq!(err.key, "auth_mode");
        assert_eq!(
            err.to_string(),
            "invalid configuration: auth.auth_mode: \"jwt\" needs a key: set auth.jwt_secret, \
             jwt_secret_file, jwt_pem_file or jwt_jwks_file"
        );
        let err = jwt(|c| {
            c.jwt_pem_file = "/k.pem".into();
            c.jwt_jwks_file = "/k.json".into();
        })
        .expect_err("two keys");
        assert_eq!((err.key, err.pair), ("jwt_jwks_file", Some("jwt_pem_file")));
        assert!(
            err.reason
                .contains("auth.jwt_pem_file and auth.jwt_jwks_file"),
            "{err}"
        );
        assert_eq!(jwt(|c| c.jwt_pem_file = "/k.pem".into()), Ok(()));
        // An inline secret is checked at once, files at startup.
        let err = jwt(|c| c.jwt_secret = Secret::new("short")).expect_err("short");
        assert_eq!(err.key, "jwt_secret");
        assert!(err.reason.contains("at least 32 bytes"), "{err}");
        assert!(
            !err.to_string().contains("short\""),
            "the secret is not echoed"
        );
        let err = jwt(|c| {
            c.jwt_secret = Secret::new("x".repeat(32));
            c.jwt_algorithms = vec!["RS256".into()];
        })
        .expect_err("confusion");
        assert!(err.reason.contains("RS256 needs a public key"), "{err}");
    }

    #[test]
    fn auth_values_are_checked_in_any_mode() {
        let cases: Vec<(ServerConfig, &str)> = vec![
            (
                ServerConfig {
                    jwt_algorithms: vec!["none".into()],
                    ..Default::default()
                },
                "jwt_algorithms",
            ),
            (
                ServerConfig {
                    jwt_algorithms: vec!["HS257".into()],
                    ..Default::default()
                },
                "jwt_algorithms",
            ),
            (
                ServerConfig {
                    jwt_leeway: Duration::from_secs(301),
                    ..Default::default()
                },
                "jwt_leeway",
            ),
            (
                ServerConfig {
                    jwt_default_subs: vec!["ro*om".into()],
                    ..Default::default()
                },
                "jwt_default_subs",
            ),
            (
                ServerConfig {
                    jwt_default_pubs: vec!["user:{id}".into()],
                    ..Default::default()
                },
                "jwt_default_pubs",
            ),
        ];
        for (config, key) in cases {
            assert_eq!(key_of(config), Err(key));
        }
        let ok = ServerConfig {
            jwt_default_subs: vec!["room:*".into(), "user:{sub}".into()],
            jwt_algorithms: vec!["ES256".into()],
            ..ServerConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn rates_need_a_burst_and_origins_must_parse() {
        let config = ServerConfig {
            admission_rate: 100,
            admission_burst: 0,
            ..ServerConfig::default()
        };
        let err = config.validate().expect_err("no burst");
        assert_eq!(
            (err.key, err.pair),
            ("admission_burst", Some("admission_rate"))
        );
        assert_eq!(
            err.to_string(),
            "invalid configuration: admission.admission_burst: must be at least 1 when \
             admission.admission_rate is set"
        );
        // A burst of 0 is fine while its rate is off.
        let off = ServerConfig {
            publish_burst: 0,
            ..ServerConfig::default()
        };
        assert_eq!(off.validate(), Ok(()));
        let cases: Vec<(ServerConfig, &str)> = vec![
            (
                ServerConfig {
                    subscribe_rate: 5,
                    subscribe_burst: 0,
                    ..Default::default()
                },
                "subscribe_burst",
            ),
            (
                ServerConfig {
                    admission_rate_per_ip: 2_000_000_000,
                    ..Default::default()
                },
                "admission_rate_per_ip",
            ),
            (
                ServerConfig {
                    rate_limit_window: Duration::ZERO,
                    ..Default::default()
                },
                "rate_limit_window",
            ),
            (
                ServerConfig {
                    retry_jitter: Duration::from_secs(7200),
                    ..Default::default()
                },
                "retry_jitter",
            ),
            (
                ServerConfig {
                    allowed_origins: vec!["https://*example.com".into()],
                    ..Default::default()
                },
                "allowed_origins",
            ),
            (
                ServerConfig {
                    trusted_proxies: vec!["10.0.0.0/8".into(), "10.0.0.1/8".into()],
                    ..Default::default()
                },
                "trusted_proxies",
            ),
        ];
        for (config, key) in cases {
            assert_eq!(key_of(config), Err(key));
        }
        let no_close = ServerConfig {
            rate_limit_close_after: 0,
            rate_limit_window: Duration::ZERO,
            ..ServerConfig::default()
        };
        assert_eq!(no_close.validate(), Ok(()));
    }

    #[test]
    fn a_cpu_list_sets_the_worker_count_and_placement() {
        let config = ServerConfig {
            cpus: vec![0, 2, 4],
            ..ServerConfig::default()
        };
        assert_eq!(config.effective_workers(), 3);
        assert_eq!(config.cpu_for_worker(4), Some(2));
        assert_eq!(ServerConfig::default().cpu_for_worker(0), None);
    }
}

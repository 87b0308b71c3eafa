//! The key table: for every key, its TOML table, the [`ServerConfig`] field
//! it sets (`config.SECTION.FIELD`), its value type, and how to read it from
//! and write it back to TOML.
//!
//! One naming scheme everywhere: a key is `TABLE.KEY` under one of the
//! tables `server`, `log`, `io_uring`, `limits`, `timeouts`, `pubsub`,
//! `store`, `capacity`, `auth`, `admission`, `engine`, `api`, `deflate`; each table is the section of
//! the same name. Inside a section a field drops the prefix its key carries
//! (`io_uring.uring_entries` sets `config.io_uring.entries`,
//! `admission.admission_rate` sets `config.admission.rate`,
//! `auth.jwt_issuer` sets `config.auth.issuer`, `engine.redis_url` sets
//! `config.engine.url`); the four key sources
//! `auth.jwt_secret`, `jwt_secret_file`, `jwt_pem_file` and `jwt_jwks_file`
//! together set `config.auth.key`, one [`KeySource`]. The same key is written
//!
//! - in a profile: `[limits]` then `max_message_size = "16 MiB"`;
//! - on the command line: `--set limits.max_message_size=16MiB`;
//! - in the environment: `RINGCAST_LIMITS__MAX_MESSAGE_SIZE=16MiB`
//!   (`RINGCAST_`, the table, two underscores, the field, upper-cased).
//!
//! Values: sizes are integers (bytes) or strings with a binary unit
//! (`"64 KiB"`, `"16MiB"`, `"1 GiB"`); durations are humantime strings
//! (`"30s"`, `"250ms"`, `"5m"`); CPU lists are arrays (`[0, 2, 4]`) or
//! cpuset strings (`"0-5,12-17"`). Secrets (`auth.jwt_secret`) are shown as
//! `"<redacted>"`, and reading that text back as a secret is refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use toml::Value;

use super::auth::{parse_algorithms, AuthMode, KeySource};
use super::log::{LogFormat, LogLevel};
use super::origin::OriginPolicy;
use super::pattern::Patterns;
use super::proxy::TrustedProxies;
use super::redis_url::RedisUrl;
use super::secret::Secret;
use super::{EngineKind, FsyncPolicy, ServerConfig, SocketIo};

/// One configuration key.
pub struct Key {
    /// The TOML table it lives in.
    pub table: &'static str,
    /// The key inside the table (`uring_entries`).
    pub field: &'static str,
    /// The [`ServerConfig`] field it sets, `section.field` (`io_uring.entries`).
    pub path: &'static str,
    /// `table.field`: how errors and `--set` name it (what `ConfigError::key` holds).
    pub dotted: &'static str,
    /// What a value must look like, for error messages and `--help`.
    pub expects: &'static str,
    set: fn(&mut ServerConfig, &Value) -> Result<(), String>,
    show: fn(&ServerConfig) -> String,
}

impl Key {
    /// Parses `value` into this key's field of `config`; on a type or range
    /// error, says what was expected and what came.
    pub fn set(&self, config: &mut ServerConfig, value: &Value) -> Result<(), String> {
        (self.set)(config, value)
    }

    /// The field's value in `config`, as a TOML literal that `set` reads back.
    pub fn show(&self, config: &ServerConfig) -> String {
        (self.show)(config)
    }

    /// The environment variable that sets this key.
    pub fn env_var(&self) -> String {
        format!(
            "RINGCAST_{}__{}",
            self.table.to_ascii_uppercase(),
            self.field.to_ascii_uppercase()
        )
    }
}

/// How one kind of value is read from TOML and shown back.
trait Codec {
    type T;
    const EXPECTS: &'static str;
    fn parse(value: &Value) -> Result<Self::T, String>;
    fn show(value: &Self::T) -> String;
    /// Stores a parsed value in its field; a codec whose keys share a field
    /// (the key sources) merges instead.
    fn set(field: &mut Self::T, value: &Value) -> Result<(), String> {
        *field = Self::parse(value)?;
        Ok(())
    }
}

fn got(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Boolean(b) => format!("{b}"),
        other => format!("a {}", other.type_str()),
    }
}

fn expected<C: Codec + ?Sized>(value: &Value) -> String {
    format!("expected {}, got {}", C::EXPECTS, got(value))
}

/// A non-negative count that fits in `T`.
struct Count<T>(std::marker::PhantomData<T>);

/// The integer field types: `u32`, `u64`, `usize`.
trait Int: TryFrom<u64> + TryInto<u64> + Copy + std::fmt::Display {}
impl<T: TryFrom<u64> + TryInto<u64> + Copy + std::fmt::Display> Int for T {}

impl<T: Int> Codec for Count<T> {
    type T = T;
    const EXPECTS: &'static str = "a non-negative integer";
    fn parse(value: &Value) -> Result<T, String> {
        let Value::Integer(i) = value else {
            return Err(expected::<Self>(value));
        };
        let wide = u64::try_from(*i).map_err(|_| format!("{i} is negative"))?;
        T::try_from(wide).map_err(|_| format!("{i} is too large"))
    }
    fn show(value: &T) -> String {
        value.to_string()
    }
}

/// A byte size: an integer, or a string with a binary unit.
struct Size<T>(std::marker::PhantomData<T>);

const UNITS: [(&str, u64); 5] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// Parses `"64 KiB"`, `"16MiB"`, `"512"` or `"512 B"` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (digits, unit) = (text[..split].replace('_', ""), text[split..].trim());
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like \"64 KiB\""))?;
    let scale = match unit {
        "" => 1,
        _ => UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|(_, scale)| *scale)
            .ok_or_else(|| {
                format!("{text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB or TiB)")
            })?,
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Whether `scale` divides `bytes` (written out: `is_multiple_of` is newer
/// than the workspace's minimum Rust).
fn divides(scale: u64, bytes: u64) -> bool {
    bytes / scale * scale == bytes
}

/// Shows a size with the largest binary unit that divides it exactly.
pub fn format_size(bytes: u64) -> String {
    for (name, scale) in UNITS {
        if scale > 1 && bytes >= scale && divides(scale, bytes) {
            return format!("{} {name}", bytes / scale);
        }
    }
    bytes.to_string()
}

/// Shows a size for people: exact when a unit divides it, else one decimal
/// of the largest unit it reaches (`1.1 GiB`).
pub fn human_size(bytes: u64) -> String {
    let Some((name, scale)) = UNITS
        .iter()
        .find(|(_, scale)| *scale > 1 && bytes >= *scale)
    else {
        return bytes.to_string();
    };
    if divides(*scale, bytes) {
        format!("{} {name}", bytes / scale)
    } else {
        format!("{:.1} {name}", bytes as f64 / *scale as f64)
    }
}

impl<T: Int> Codec for Size<T> {
    type T = T;
    const EXPECTS: &'static str = "a size in bytes (an integer, or a string like \"64 KiB\")";
    fn parse(value: &Value) -> Result<T, String> {
        let bytes = match value {
            Value::Integer(i) => u64::try_from(*i).map_err(|_| format!("{i} is negative"))?,
            Value::String(s) => parse_size(s)?,
            _ => return Err(expected::<Self>(value)),
        };
        T::try_from(bytes).map_err(|_| format!("{bytes} is too large"))
    }
    fn show(value: &T) -> String {
        match (*value).try_into() {
            Ok(bytes) if format_size(bytes).contains(' ') => format!("\"{}\"", format_size(bytes)),
            _ => value.to_string(),
        }
    }
}

struct Dur;

impl Codec for Dur {
    type T = Duration;
    const EXPECTS: &'static str = "a duration string like \"30s\" or \"250ms\"";
    fn parse(value: &Value) -> Result<Duration, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration: {e}"))
    }
    fn show(value: &Duration) -> String {
        format!("\"{}\"", humantime::format_duration(*value))
    }
}

struct Flag;

impl Codec for Flag {
    type T = bool;
    const EXPECTS: &'static str = "true or false";
    fn parse(value: &Value) -> Result<bool, String> {
        value.as_bool().ok_or_else(|| expected::<Self>(value))
    }
    fn show(value: &bool) -> String {
        value.to_string()
    }
}

struct Addr;

impl Codec for Addr {
    type T = SocketAddr;
    const EXPECTS: &'static str = "an address string like \"0.0.0.0:8080\"";
    fn parse(value: &Value) -> Result<SocketAddr, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        s.parse()
            .map_err(|_| format!("{s:?} is not an IP:port address"))
    }
    fn show(value: &SocketAddr) -> String {
        format!("\"{value}\"")
    }
}

struct Strings;

impl Codec for Strings {
    type T = Vec<String>;
    const EXPECTS: &'static str = "an array of strings";
    fn parse(value: &Value) -> Result<Vec<String>, String> {
        let Value::Array(items) = value else {
            return Err(expected::<Self>(value));
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| expected::<Self>(value))
            })
            .collect()
    }
    fn show(value: &Vec<String>) -> String {
        show_strings(value)
    }
}

fn show_strings<S: AsRef<str>>(list: &[S]) -> String {
    let quoted: Vec<String> = list.iter().map(|s| format!("{:?}", s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// `admission.allowed_origins`: an array of origins, parsed into the allow-list.
struct Origins;

impl Codec for Origins {
    type T = OriginPolicy;
    const EXPECTS: &'static str = Strings::EXPECTS;
    fn parse(value: &Value) -> Result<OriginPolicy, String> {
        OriginPolicy::parse(&Strings::parse(value)?)
    }
    fn show(value: &OriginPolicy) -> String {
        show_strings(value.as_written())
    }
}

/// `admission.trusted_proxies`: an array of addresses and CIDR blocks.
struct Proxies;

impl Codec for Proxies {
    type T = TrustedProxies;
    const EXPECTS: &'static str = Strings::EXPECTS;
    fn parse(value: &Value) -> Result<TrustedProxies, String> {
        TrustedProxies::parse(&Strings::parse(value)?)
    }
    fn show(value: &TrustedProxies) -> String {
        show_strings(value.as_written())
    }
}

/// `auth.jwt_algorithms`: an array of JOSE algorithm names.
struct Algorithms;

impl Codec for Algorithms {
    type T = Vec<Algorithm>;
    const EXPECTS: &'static str = Strings::EXPECTS;
    fn parse(value: &Value) -> Result<Vec<Algorithm>, String> {
        parse_algorithms(&Strings::parse(value)?)
    }
    fn show(value: &Vec<Algorithm>) -> String {
        let names: Vec<String> = value.iter().map(|a| format!("{a:?}")).collect();
        show_strings(&names)
    }
}

/// `auth.jwt_default_subs` / `jwt_default_pubs`: an array of channel
/// patterns, checked against the pattern language (`{sub}` is substituted
/// per token later).
struct PatternList;

impl Codec for PatternList {
    type T = Vec<String>;
    const EXPECTS: &'static str = Strings::EXPECTS;
    fn parse(value: &Value) -> Result<Vec<String>, String> {
        let list = Strings::parse(value)?;
        Patterns::validate(&list).map_err(|e| e.to_string())?;
        Ok(list)
    }
    fn show(value: &Vec<String>) -> String {
        show_strings(value)
    }
}

/// A CPU list: `[0, 2, 4]` or a cpuset string `"0-3,8"`.
struct Cpus;

pub use crate::os::cpus::{format_cpu_list, parse_cpu_list};

impl Codec for Cpus {
    type T = Vec<usize>;
    const EXPECTS: &'static str = "a CPU list: an array like [0, 2, 4] or a string like \"0-3,8\"";
    fn parse(value: &Value) -> Result<Vec<usize>, String> {
        match value {
            Value::String(s) => parse_cpu_list(s),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::Integer(i) if (0..4096).contains(i) => Ok(*i as usize),
                    _ => Err(expected::<Self>(value)),
                })
                .collect(),
            _ => Err(expected::<Self>(value)),
        }
    }
    fn show(value: &Vec<usize>) -> String {
        if value.is_empty() {
            return "[]".into();
        }
        format!("\"{}\"", format_cpu_list(value))
    }
}

struct Path;

impl Codec for Path {
    type T = PathBuf;
    const EXPECTS: &'static str = "a path string";
    fn parse(value: &Value) -> Result<PathBuf, String> {
        value
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| expected::<Self>(value))
    }
    fn show(value: &PathBuf) -> String {
        format!("{:?}", value.display().to_string())
    }
}

struct Fsync;

impl Codec for Fsync {
    type T = FsyncPolicy;
    const EXPECTS: &'static str = "one of \"always\", \"batch\", \"never\"";
    fn parse(value: &Value) -> Result<FsyncPolicy, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        s.parse()
    }
    fn show(value: &FsyncPolicy) -> String {
        format!("\"{value}\"")
    }
}

struct SocketIoCodec;

impl Codec for SocketIoCodec {
    type T = SocketIo;
    const EXPECTS: &'static str = "one of \"readiness\", \"completion\"";
    fn parse(value: &Value) -> Result<SocketIo, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        s.parse()
    }
    fn show(value: &SocketIo) -> String {
        format!("\"{value}\"")
    }
}

struct Text;

impl Codec for Text {
    type T = String;
    const EXPECTS: &'static str = "a string";
    fn parse(value: &Value) -> Result<String, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| expected::<Self>(value))
    }
    fn show(value: &String) -> String {
        format!("{value:?}")
    }
}

/// `auth.jwt_secret`: a secret string, read like [`Text`], shown redacted;
/// one of the key sources of `config.auth.key`.
struct SecretKey;

impl Codec for SecretKey {
    type T = KeySource;
    const EXPECTS: &'static str = "a string";
    fn parse(value: &Value) -> Result<KeySource, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        if s == Secret::SHOWN_AS {
            return Err(format!(
                "{s:?} is how `profile show` hides a secret, not a secret: \
                 set the real one, or use auth.jwt_secret_file"
            ));
        }
        Ok(match s.as_str() {
            "" => KeySource::None,
            _ => KeySource::Secret(Secret::new(s.as_str())),
        })
    }
    fn show(value: &KeySource) -> String {
        match value {
            KeySource::Secret(_) => format!("{:?}", Secret::SHOWN_AS),
            _ => "\"\"".into(),
        }
    }
    fn set(field: &mut KeySource, value: &Value) -> Result<(), String> {
        field.set("auth.jwt_secret", Self::parse(value)?)
    }
}

/// The file key sources of `config.auth.key`: `KIND` 1 is
/// `auth.jwt_secret_file`, 2 `jwt_pem_file`, 3 `jwt_jwks_file`.
struct KeyFile<const KIND: usize>;

impl<const KIND: usize> KeyFile<KIND> {
    fn path(source: &KeySource) -> Option<&PathBuf> {
        match (KIND, source) {
            (1, KeySource::SecretFile(p))
            | (2, KeySource::PemFile(p))
            | (3, KeySource::JwksFile(p)) => Some(p),
            _ => None,
        }
    }
}

impl<const KIND: usize> Codec for KeyFile<KIND> {
    type T = KeySource;
    const EXPECTS: &'static str = Path::EXPECTS;
    fn parse(value: &Value) -> Result<KeySource, String> {
        let path = Path::parse(value)?;
        Ok(match KIND {
            _ if path.as_os_str().is_empty() => KeySource::None,
            1 => KeySource::SecretFile(path),
            2 => KeySource::PemFile(path),
            _ => KeySource::JwksFile(path),
        })
    }
    fn show(value: &KeySource) -> String {
        Path::show(Self::path(value).unwrap_or(&PathBuf::new()))
    }
    fn set(field: &mut KeySource, value: &Value) -> Result<(), String> {
        field.set(super::auth::KEY_SOURCE_KEYS[KIND], Self::parse(value)?)
    }
}

/// `server.demo_page`: `"auto"`, `"on"` or `"off"`.
struct Demo;

impl Codec for Demo {
    type T = super::server::DemoPage;
    const EXPECTS: &'static str = "one of \"auto\", \"on\", \"off\"";
    fn parse(value: &Value) -> Result<super::server::DemoPage, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        s.parse()
    }
    fn show(value: &super::server::DemoPage) -> String {
        format!("\"{value}\"")
    }
}

/// `api.key`: one or more API keys (comma-separated), shown redacted.
struct ApiKeys;

impl Codec for ApiKeys {
    type T = Secret;
    const EXPECTS: &'static str = "a string (keys separated by commas)";
    fn parse(value: &Value) -> Result<Secret, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        if s == Secret::SHOWN_AS {
            return Err(format!(
                "{s:?} is how `profile show` hides a secret, not a secret: \
                 set the real one, or use api.key_file"
            ));
        }
        Ok(Secret::new(s.as_str()))
    }
    fn show(value: &Secret) -> String {
        match value.is_empty() {
            true => "\"\"".into(),
            false => format!("{:?}", Secret::SHOWN_AS),
        }
    }
}

/// An optional address: `""` for none.
struct OptAddr;

impl Codec for OptAddr {
    type T = Option<SocketAddr>;
    const EXPECTS: &'static str = "an address string like \"127.0.0.1:8090\", or \"\" for none";
    fn parse(value: &Value) -> Result<Option<SocketAddr>, String> {
        match value {
            Value::String(s) if s.is_empty() => Ok(None),
            other => Addr::parse(other).map(Some),
        }
    }
    fn show(value: &Option<SocketAddr>) -> String {
        match value {
            Some(addr) => Addr::show(addr),
            None => "\"\"".into(),
        }
    }
}

/// `engine.kind`: `"memory"`, `"redis"` or `"disk"`.
struct Kind;

impl Codec for Kind {
    type T = EngineKind;
    const EXPECTS: &'static str = "one of \"memory\", \"redis\", \"disk\"";
    fn parse(value: &Value) -> Result<EngineKind, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        s.parse()
    }
    fn show(value: &EngineKind) -> String {
        format!("\"{value}\"")
    }
}

/// `engine.redis_url`: parsed into a [`RedisUrl`], shown with its password
/// redacted (which reads back as a refusal, never as the password `***`).
struct Url;

impl Codec for Url {
    type T = RedisUrl;
    const EXPECTS: &'static str =
        "a URL like \"redis://127.0.0.1:6379/0\" or \"rediss://user:password@host:6380/0\"";
    fn parse(value: &Value) -> Result<RedisUrl, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        RedisUrl::parse(s).map_err(|e| e.to_string())
    }
    fn show(value: &RedisUrl) -> String {
        format!("{:?}", value.redacted())
    }
}

struct Mode;

impl Codec for Mode {
    type T = AuthMode;
    const EXPECTS: &'static str = "one of \"none\", \"jwt\"";
    fn parse(value: &Value) -> Result<AuthMode, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        s.parse()
    }
    fn show(value: &AuthMode) -> String {
        format!("\"{value}\"")
    }
}

/// `log.level`: a level or `EnvFilter` directives, checked by [`LogLevel::parse`].
struct Level;

impl Codec for Level {
    type T = LogLevel;
    const EXPECTS: &'static str =
        "a level like \"info\" or EnvFilter directives like \"warn,ringcast::server=debug\"";
    fn parse(value: &Value) -> Result<LogLevel, String> {
        match value {
            Value::String(s) => LogLevel::parse(s),
            // `--set log.level=2` reads as TOML, an integer; 0..=5 are levels.
            Value::Integer(i) => LogLevel::parse(&i.to_string()),
            _ => Err(expected::<Self>(value)),
        }
    }
    fn show(value: &LogLevel) -> String {
        format!("{:?}", value.as_str())
    }
}

struct Format;

impl Codec for Format {
    type T = LogFormat;
    const EXPECTS: &'static str = "one of \"human\", \"json\"";
    fn parse(value: &Value) -> Result<LogFormat, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        s.parse()
    }
    fn show(value: &LogFormat) -> String {
        format!("\"{value}\"")
    }
}

/// The key inside the table: the field's name, or the name given with `=`.
macro_rules! key_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $name:literal) => {
        $name
    };
}

/// `section: field as Codec` declares a key `section.field` that sets
/// `config.section.field`; `field = "name" as Codec` one whose key inside
/// the table is `name`. The table of a section is its name.
macro_rules! keys {
    ($( $section:ident : $( $field:ident $(= $name:literal)? as $codec:ty ),+ ; )+) => {
        /// Every key, in the order `ringcast profile show` prints them.
        pub static KEYS: &[Key] = &[ $( $( Key {
            table: stringify!($section),
            field: key_name!($field $($name)?),
            path: concat!(stringify!($section), ".", stringify!($field)),
            dotted: concat!(stringify!($section), ".", key_name!($field $($name)?)),
            expects: <$codec as Codec>::EXPECTS,
            set: |config, value| <$codec as Codec>::set(&mut config.$section.$field, value),
            show: |config| <$codec as Codec>::show(&config.$section.$field),
        }, )+ )+ ];
    };
}

keys! {
    server:
        listen as Addr,
        workers as Count<usize>,
        pin_workers as Flag,
        cpus as Cpus,
        backlog as Count<u32>,
        so_rcvbuf as Size<usize>,
        so_sndbuf as Size<usize>,
        subprotocols as Strings,
        tls_cert as Path,
        tls_key as Path,
        demo_page as Demo,
        transparent_huge_pages as Flag;
    log:
        level as Level,
        format as Format,
        summary_interval as Dur;
    io_uring:
        force_epoll as Flag,
        entries = "uring_entries" as Count<u32>,
        sqpoll = "uring_sqpoll" as Flag,
        sqpoll_idle = "uring_sqpoll_idle" as Dur,
        coop_taskrun = "uring_coop_taskrun" as Flag,
        single_issuer = "uring_single_issuer" as Flag,
        socket_io as SocketIoCodec,
        recv_buffers as Count<u32>,
        recv_buffers_initial as Count<u32>,
        recv_buffer_size as Size<usize>,
        cq_entries = "uring_cq_entries" as Count<u32>;
    limits:
        max_connections_per_worker as Count<usize>,
        max_connections as Count<usize>,
        max_connections_per_ip as Count<usize>,
        max_frame_size as Size<u64>,
        max_message_size as Size<u64>,
        max_handshake_bytes as Size<usize>,
        max_outbound_bytes as Size<usize>,
        read_buffer_size as Size<usize>,
        command_rate as Count<u32>,
        command_burst as Count<u32>,
        publish_rate as Count<u32>,
        publish_burst as Count<u32>,
        subscribe_rate as Count<u32>,
        subscribe_burst as Count<u32>,
        rate_limit_close_after as Count<u32>,
        rate_limit_window as Dur;
    timeouts:
        handshake_timeout as Dur,
        ping_interval as Dur,
        idle_timeout as Dur,
        close_timeout as Dur,
        drain_timeout as Dur,
        timer_tick as Dur;
    pubsub:
        history_size as Count<usize>,
        history_ttl as Dur,
        max_channels as Count<usize>,
        max_subscriptions_per_connection as Count<usize>,
        max_channel_name_len as Count<usize>,
        max_publish_bytes as Size<usize>,
        inbox_capacity as Count<usize>,
        inbox_batch as Count<usize>,
        max_presence as Count<usize>,
        max_presence_info_bytes as Size<usize>,
        presence_push_prefixes as Strings;
    store:
        data_path as Path,
        fsync as Fsync,
        fsync_interval as Dur,
        segment_size as Size<u64>,
        max_disk as Size<u64>,
        min_free as Size<u64>;
    capacity:
        planned_connections as Count<u64>,
        planned_messages_per_sec as Count<u64>,
        planned_memory as Size<u64>;
    auth:
        mode = "auth_mode" as Mode,
        key = "jwt_secret" as SecretKey,
        key = "jwt_secret_file" as KeyFile<1>,
        key = "jwt_pem_file" as KeyFile<2>,
        key = "jwt_jwks_file" as KeyFile<3>,
        algorithms = "jwt_algorithms" as Algorithms,
        issuer = "jwt_issuer" as Text,
        audience = "jwt_audience" as Text,
        leeway = "jwt_leeway" as Dur,
        require_exp = "jwt_require_exp" as Flag,
        default_subs = "jwt_default_subs" as PatternList,
        default_pubs = "jwt_default_pubs" as PatternList,
        info_claim = "jwt_info_claim" as Text;
    admission:
        rate = "admission_rate" as Count<u32>,
        burst = "admission_burst" as Count<u32>,
        rate_per_ip = "admission_rate_per_ip" as Count<u32>,
        burst_per_ip = "admission_burst_per_ip" as Count<u32>,
        retry_jitter as Dur,
        allowed_origins as Origins,
        trusted_proxies as Proxies;
    engine:
        kind as Kind,
        url = "redis_url" as Url,
        tls_ca_file = "redis_tls_ca_file" as Path,
        connect_timeout = "redis_connect_timeout" as Dur,
        command_timeout = "redis_command_timeout" as Dur,
        pipeline_batch = "redis_pipeline_batch" as Count<usize>,
        queue_capacity = "redis_queue_capacity" as Count<usize>,
        subscriber_connections = "redis_subscriber_connections" as Count<usize>,
        key_prefix = "redis_key_prefix" as Text,
        meta_ttl = "redis_meta_ttl" as Dur,
        ping_interval = "redis_ping_interval" as Dur,
        backoff_base = "redis_backoff_base" as Dur,
        backoff_max = "redis_backoff_max" as Dur,
        start_degraded as Flag,
        presence_ttl = "redis_presence_ttl" as Dur;
    api:
        key as ApiKeys,
        key_file as Path,
        listen as OptAddr,
        allowed_clients as Proxies,
        max_body_bytes as Size<usize>,
        max_connections as Count<usize>,
        max_broadcast_channels as Count<usize>,
        request_timeout as Dur,
        idle_timeout as Dur;
    deflate:
        enabled as Flag,
        level as Count<u32>,
        min_size as Size<usize>,
        server_max_window_bits as Count<u8>,
        server_no_context_takeover as Flag,
        client_no_context_takeover as Flag,
        max_memory_per_connection as Size<u64>,
        max_context_connections as Count<usize>;
}

/// Keys whose values are secrets, or may hold one (a URL's password):
/// never echoed (a `--set` of one is shown as `--set KEY=<redacted>` in
/// provenance and error messages).
pub const SECRET_KEYS: [&str; 3] = ["auth.jwt_secret", "engine.redis_url", "api.key"];

/// Whether `dotted` names a secret.
pub fn is_secret(dotted: &str) -> bool {
    SECRET_KEYS.contains(&dotted)
}

/// The tables, in the order of [`KEYS`].
pub const TABLES: [&str; 13] = [
    "server",
    "log",
    "io_uring",
    "limits",
    "timeouts",
    "pubsub",
    "store",
    "capacity",
    "auth",
    "admission",
    "engine",
    "api",
    "deflate",
];

/// The key named `dotted` (`"limits.max_message_size"`).
pub fn find(dotted: &str) -> Option<(usize, &'static Key)> {
    KEYS.iter().enumerate().find(|(_, k)| k.dotted == dotted)
}

/// The key named `field` inside its table (`max_message_size`), in any table.
pub fn by_field(field: &str) -> Option<(usize, &'static Key)> {
    KEYS.iter().enumerate().find(|(_, k)| k.field == field)
}

/// Why `dotted` is not a key, with a hint at the key that was probably meant.
pub fn unknown_key_reason(dotted: &str) -> String {
    let field = dotted.rsplit('.').next().unwrap_or(dotted);
    if let Some((_, key)) = by_field(field) {
        return format!("unknown key (did you mean {}?)", key.dotted);
    }
    let close = KEYS
        .iter()
        .filter(|k| edit_distance(k.field, field) <= 2)
        .min_by_key(|k| edit_distance(k.field, field));
    match close {
        Some(key) => format!("unknown key (did you mean {}?)", key.dotted),
        None => "unknown key".to_string(),
    }
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Reads a value given as text (`--set` and environment variables): TOML
/// syntax when it parses (`4`, `true`, `[0, 2]`, `"x"`), else the bare text
/// as a string (`30s`, `0.0.0.0:80`, `16MiB`, `always`).
pub fn parse_text_value(text: &str) -> Value {
    let doc = format!("v = {text}");
    match doc.parse::<toml::Table>() {
        Ok(mut table) => table.remove("v").unwrap_or(Value::String(text.into())),
        Err(_) => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests;

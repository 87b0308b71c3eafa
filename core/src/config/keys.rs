//! The key table: for every [`ServerConfig`] field, its TOML table, its value
//! type, and how to read it from and write it back to TOML.
//!
//! One naming scheme everywhere: the key of a field is `TABLE.FIELD`, the
//! field's own name under one of the tables `server`, `log`, `io_uring`,
//! `limits`, `timeouts`, `pubsub`, `store`, `capacity`, `auth`, `admission`.
//! One exception: the `[log]` keys drop the prefix their fields need to be
//! unique in the struct (`log.level` is `log_level`, `log.format` is
//! `log_format`). The same key is written
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

use toml::Value;

use super::log::{LogFormat, LogLevel};
use super::{FsyncPolicy, ServerConfig};
use crate::auth::{AuthMode, Secret};

/// One configuration key.
pub struct Key {
    /// The TOML table it lives in.
    pub table: &'static str,
    /// The key inside the table: the [`ServerConfig`] field's name, except
    /// where the table renames it (`level` for `log_level`).
    pub field: &'static str,
    /// The [`ServerConfig`] field's name (what `ConfigError::key` names).
    pub member: &'static str,
    /// `table.field`.
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
        let quoted: Vec<String> = value.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(", "))
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

/// A secret string: read like [`Text`], shown redacted.
struct SecretText;

impl Codec for SecretText {
    type T = Secret;
    const EXPECTS: &'static str = "a string";
    fn parse(value: &Value) -> Result<Secret, String> {
        let Value::String(s) = value else {
            return Err(expected::<Self>(value));
        };
        if s == Secret::SHOWN_AS {
            return Err(format!(
                "{s:?} is how `profile show` hides a secret, not a secret: \
                 set the real one, or use auth.jwt_secret_file"
            ));
        }
        Ok(Secret::new(s.as_str()))
    }
    fn show(value: &Secret) -> String {
        if value.is_empty() {
            "\"\"".into()
        } else {
            format!("{:?}", Secret::SHOWN_AS)
        }
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

/// `field as Codec` declares a key named like its field; `field = "name" as
/// Codec` one whose key inside the table is `name`.
macro_rules! keys {
    ($( $table:literal : $( $field:ident $(= $name:literal)? as $codec:ty ),+ ; )+) => {
        /// Every key, in the order `ringcast profile show` prints them.
        pub static KEYS: &[Key] = &[ $( $( Key {
            table: $table,
            field: key_name!($field $($name)?),
            member: stringify!($field),
            dotted: concat!($table, ".", key_name!($field $($name)?)),
            expects: <$codec as Codec>::EXPECTS,
            set: |config, value| {
                config.$field = <$codec as Codec>::parse(value)?;
                Ok(())
            },
            show: |config| <$codec as Codec>::show(&config.$field),
        }, )+ )+ ];
    };
}

keys! {
    "server":
        listen as Addr,
        workers as Count<usize>,
        pin_workers as Flag,
        cpus as Cpus,
        backlog as Count<u32>,
        so_rcvbuf as Size<usize>,
        so_sndbuf as Size<usize>,
                subprotocols as Strings,
        tls_cert as Path,
        tls_key as Path;
    "log":
        log_level = "level" as Level,
        log_format = "format" as Format;
    "io_uring":
        force_epoll as Flag,
        uring_entries as Count<u32>,
        uring_sqpoll as Flag,
        uring_sqpoll_idle as Dur,
        uring_coop_taskrun as Flag,
        uring_single_issuer as Flag;
    "limits":
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
    "timeouts":
        handshake_timeout as Dur,
        ping_interval as Dur,
        idle_timeout as Dur,
        close_timeout as Dur,
        drain_timeout as Dur,
        timer_tick as Dur;
    "pubsub":
        history_size as Count<usize>,
        history_ttl as Dur,
        max_channels as Count<usize>,
        max_subscriptions_per_connection as Count<usize>,
        max_channel_name_len as Count<usize>,
        max_publish_bytes as Size<usize>,
        inbox_capacity as Count<usize>,
        inbox_batch as Count<usize>;
    "store":
        data_path as Path,
        fsync as Fsync;
    "capacity":
        planned_connections as Count<u64>,
        planned_messages_per_sec as Count<u64>,
        planned_memory as Size<u64>;
    "auth":
        auth_mode as Mode,
        jwt_secret as SecretText,
        jwt_secret_file as Path,
        jwt_pem_file as Path,
        jwt_jwks_file as Path,
        jwt_algorithms as Strings,
        jwt_issuer as Text,
        jwt_audience as Text,
        jwt_leeway as Dur,
        jwt_require_exp as Flag,
        jwt_default_subs as Strings,
        jwt_default_pubs as Strings;
    "admission":
        admission_rate as Count<u32>,
        admission_burst as Count<u32>,
        admission_rate_per_ip as Count<u32>,
        admission_burst_per_ip as Count<u32>,
        retry_jitter as Dur,
        allowed_origins as Strings,
        trusted_proxies as Strings;
}

/// Keys whose values are secrets: never echoed (a `--set` of one is shown
/// as `--set KEY=<redacted>` in provenance and error messages).
pub const SECRET_KEYS: [&str; 1] = ["auth.jwt_secret"];

/// Whether `dotted` names a secret.
pub fn is_secret(dotted: &str) -> bool {
    SECRET_KEYS.contains(&dotted)
}

/// The tables, in the order of [`KEYS`].
pub const TABLES: [&str; 10] = [
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
];

/// The key named `dotted` (`"limits.max_message_size"`).
pub fn find(dotted: &str) -> Option<(usize, &'static Key)> {
    KEYS.iter().enumerate().find(|(_, k)| k.dotted == dotted)
}

/// The key of field `field`: its name inside the table, or the name of its
/// [`ServerConfig`] member (`level` and `log_level` both find `log.level`).
pub fn by_field(field: &str) -> Option<(usize, &'static Key)> {
    KEYS.iter()
        .enumerate()
        .find(|(_, k)| k.field == field || k.member == field)
}

/// `table.field` for a field name (the name itself if it is not a key).
pub fn dotted(field: &str) -> &str {
    by_field(field).map_or(field, |(_, k)| k.dotted)
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

fn edit_distance(a: &str, b: &str) -> usize {
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
mod tests {
    use super::*;

    #[test]
    fn every_field_has_one_key_and_every_table_is_listed() {
        let mut seen = std::collections::BTreeSet::new();
        for key in KEYS {
            assert!(seen.insert(key.field), "{} twice", key.field);
            if key.member != key.field {
                assert!(seen.insert(key.member), "{} twice", key.member);
            }
            assert!(TABLES.contains(&key.table), "{}", key.dotted);
            assert_eq!(key.dotted, format!("{}.{}", key.table, key.field));
        }
    }

    #[test]
    fn every_default_round_trips_through_its_toml_form() {
        let default = ServerConfig::default();
        for key in KEYS {
            let shown = key.show(&default);
            let mut config = ServerConfig::default();
            key.set(&mut config, &parse_text_value(&shown))
                .unwrap_or_else(|e| panic!("{}: {shown}: {e}", key.dotted));
            assert_eq!(key.show(&config), shown, "{}", key.dotted);
        }
    }

    #[test]
    fn sizes_take_integers_and_binary_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64 KiB"), Ok(65536));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1_024"), Ok(1024));
        assert!(parse_size("16 MB")
            .expect_err("SI")
            .contains("unknown unit"));
        assert!(parse_size("lots").is_err());
        assert_eq!(format_size(65536), "64 KiB");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(3 << 30), "3 GiB");
        assert_eq!(human_size(1_179_230_208), "1.1 GiB");
        assert_eq!(human_size(4608 << 20), "4.5 GiB");
        assert_eq!(human_size(65536), "64 KiB");
        assert_eq!(human_size(1000), "1000");
    }

    #[test]
    fn cpu_lists_parse_and_collapse() {
        assert_eq!(parse_cpu_list("0-3,8"), Ok(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpu_list(""), Ok(vec![]));
        assert!(parse_cpu_list("3-1").is_err());
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
    }

    #[test]
    fn text_values_are_toml_when_they_parse_and_strings_otherwise() {
        assert_eq!(parse_text_value("4"), Value::Integer(4));
        assert_eq!(parse_text_value("true"), Value::Boolean(true));
        assert_eq!(parse_text_value("30s"), Value::String("30s".into()));
        assert_eq!(parse_text_value("\"a b\""), Value::String("a b".into()));
        assert_eq!(
            parse_text_value("0.0.0.0:80"),
            Value::String("0.0.0.0:80".into())
        );
    }

    #[test]
    fn wrong_types_say_what_was_expected() {
        let (_, key) = find("server.workers").expect("key");
        let err = key
            .set(&mut ServerConfig::default(), &Value::String("two".into()))
            .expect_err("refused");
        assert_eq!(
            err,
            "expected a non-negative integer, got the string \"two\""
        );
        let (_, key) = find("timeouts.idle_timeout").expect("key");
        let err = key
            .set(&mut ServerConfig::default(), &Value::Integer(60))
            .expect_err("refused");
        assert!(err.contains("duration string"), "{err}");
    }

    #[test]
    fn unknown_keys_get_a_hint() {
        assert_eq!(
            unknown_key_reason("server.max_message_size"),
            "unknown key (did you mean limits.max_message_size?)"
        );
        assert_eq!(
            unknown_key_reason("limits.max_mesage_size"),
            "unknown key (did you mean limits.max_message_size?)"
        );
        assert_eq!(unknown_key_reason("limits.colour"), "unknown key");
    }

    #[test]
    fn secrets_are_shown_redacted_and_the_redaction_is_refused_as_a_secret() {
        let (_, key) = find("auth.jwt_secret").expect("key");
        let mut config = ServerConfig::default();
        assert_eq!(key.show(&config), "\"\"");
        key.set(&mut config, &Value::String("s3cr3t-s3cr3t".into()))
            .expect("a secret");
        assert_eq!(config.jwt_secret.expose(), "s3cr3t-s3cr3t");
        let shown = key.show(&config);
        assert_eq!(shown, "\"<redacted>\"");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let err = key
            .set(&mut config, &parse_text_value(&shown))
            .expect_err("the redaction is no secret");
        assert!(err.contains("jwt_secret_file"), "{err}");
    }

    #[test]
    fn auth_and_admission_values_parse() {
        let mut config = ServerConfig::default();
        for (dotted, text) in [
            ("auth.auth_mode", "jwt"),
            ("auth.jwt_algorithms", "[\"RS256\", \"ES256\"]"),
            ("auth.jwt_issuer", "https://id.example.com"),
            ("auth.jwt_leeway", "1m"),
            ("auth.jwt_pem_file", "/etc/ringcast/jwt.pem"),
            ("admission.allowed_origins", "[\"https://*.example.com\"]"),
            (
                "admission.trusted_proxies",
                "[\"127.0.0.1/32\", \"10.0.0.0/8\"]",
            ),
            ("admission.retry_jitter", "10s"),
            ("limits.rate_limit_window", "5s"),
        ] {
            let (_, key) = find(dotted).expect(dotted);
            key.set(&mut config, &parse_text_value(text))
                .unwrap_or_else(|e| panic!("{dotted}: {e}"));
        }
        assert_eq!(config.auth_mode, AuthMode::Jwt);
        assert_eq!(config.jwt_algorithms, ["RS256", "ES256"]);
        assert_eq!(config.jwt_issuer, "https://id.example.com");
        assert_eq!(config.jwt_leeway, Duration::from_secs(60));
        assert_eq!(config.allowed_origins, ["https://*.example.com"]);
        assert_eq!(config.trusted_proxies, ["127.0.0.1/32", "10.0.0.0/8"]);
        let (_, key) = find("auth.auth_mode").expect("key");
        let err = key
            .set(&mut config, &Value::String("oauth".into()))
            .expect_err("unknown mode");
        assert_eq!(err, "\"oauth\" is not one of none, jwt");
        assert_eq!(
            find("admission.admission_rate").expect("key").1.env_var(),
            "RINGCAST_ADMISSION__ADMISSION_RATE"
        );
    }

    #[test]
    fn log_keys_drop_their_field_prefix_and_check_their_values() {
        let (_, level) = find("log.level").expect("log.level");
        assert_eq!((level.field, level.member), ("level", "log_level"));
        assert_eq!(level.env_var(), "RINGCAST_LOG__LEVEL");
        assert_eq!(
            by_field("log_level").map(|(_, k)| k.dotted),
            Some("log.level")
        );
        assert_eq!(dotted("log_format"), "log.format");
        let mut config = ServerConfig::default();
        assert_eq!(level.show(&config), "\"info\"");
        level
            .set(
                &mut config,
                &parse_text_value("warn,ringcast::server=debug"),
            )
            .expect("directives");
        assert_eq!(config.log_level.as_str(), "warn,ringcast::server=debug");
        let err = level
            .set(&mut config, &parse_text_value("warning"))
            .expect_err("not a level");
        assert!(err.starts_with("\"warning\" is not a level"), "{err}");
        let (_, format) = find("log.format").expect("log.format");
        format
            .set(&mut config, &parse_text_value("json"))
            .expect("json");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            format.set(&mut config, &parse_text_value("xml")),
            Err("\"xml\" is not one of human, json".into())
        );
    }

    #[test]
    fn env_names_follow_the_key() {
        let (_, key) = find("limits.max_message_size").expect("key");
        assert_eq!(key.env_var(), "RINGCAST_LIMITS__MAX_MESSAGE_SIZE");
    }
}

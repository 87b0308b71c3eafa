//! Building the effective configuration from its layers, remembering where
//! every value came from.
//!
//! Precedence, lowest first (a later layer overrides an earlier one, key by
//! key):
//!
//! 1. **default** — [`ServerConfig::default`], the embedded defaults;
//! 2. **profile** — the `--profile` file or tier (see [`super::profile`]);
//! 3. **env** — `RINGCAST_TABLE__FIELD` variables, e.g.
//!    `RINGCAST_LIMITS__MAX_MESSAGE_SIZE=16MiB`; the older names
//!    `RINGCAST_LOG` (`log.level`) and `RINGCAST_LOG_FORMAT` (`log.format`)
//!    count as this layer too, below `RINGCAST_LOG__LEVEL` and
//!    `RINGCAST_LOG__FORMAT` when both are set, and empty counts as unset;
//! 4. **flag** — the dedicated flags of `ringcast serve` (`--workers`,
//!    `--max-message-size`, ...), then every `--set table.field=value` in
//!    command-line order (the last one wins).
//!
//! A key means the same whichever layer sets it. One rule is applied after
//! the layers ([`FOLLOWS`]): `limits.max_frame_size`, when no layer set it,
//! takes the value of `limits.max_message_size`, and its source says
//! `(from limits.max_message_size)`.
//!
//! Each layer refuses what it cannot apply (unknown key, wrong type) with
//! its source, the key and the reason, and every such problem of every
//! layer is reported together; the merged result is then validated as a
//! whole, and a broken rule is blamed on the source of the
//! highest-precedence value involved. Nothing starts before all of this
//! passed.

use std::fmt;

use toml::Value;

use super::keys::{self, KEYS};
use super::profile::Profile;
use super::ServerConfig;

/// A configuration that cannot be used: where it came from, the key, why.
/// `ringcast` prints it (one line per problem) and exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The profile file, `env VAR`, the flag, or `embedded defaults`.
    pub origin: String,
    /// The key (`limits.max_message_size`), or a line for a syntax error.
    pub key: Option<String>,
    pub reason: String,
    /// Further problems found in the same pass (a profile with several
    /// mistakes is told all of them at once), each printed on its own line.
    pub more: Vec<LoadError>,
}

impl LoadError {
    pub fn new(origin: impl Into<String>, key: Option<String>, reason: impl Into<String>) -> Self {
        LoadError {
            origin: origin.into(),
            key,
            reason: reason.into(),
            more: Vec::new(),
        }
    }

    /// One error carrying all of `errors` (the first leads); `None` when
    /// there are none.
    pub fn all(errors: Vec<LoadError>) -> Option<LoadError> {
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        first.more.extend(errors);
        Some(first)
    }

    /// How many problems this error reports.
    pub fn count(&self) -> usize {
        1 + self.more.len()
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.origin, self.reason)?,
            None => write!(f, "{}: {}", self.origin, self.reason)?,
        }
        for more in &self.more {
            write!(f, "\n{more}")?;
        }
        Ok(())
    }
}

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    /// Profile name and file.
    Profile {
        name: String,
        file: String,
    },
    /// The environment variable.
    Env(String),
    /// The flag as given (`--workers`, `--set server.workers=4`).
    Flag(String),
    /// Set by no layer, so it follows another key (`limits.max_frame_size`
    /// follows `limits.max_message_size`): that key and its source.
    Follows {
        key: &'static str,
        source: Box<Origin>,
    },
}

impl Origin {
    fn rank(&self) -> u8 {
        match self {
            Origin::Default => 0,
            Origin::Profile { .. } => 1,
            Origin::Env(_) => 2,
            Origin::Flag(_) => 3,
            Origin::Follows { source, .. } => source.rank(),
        }
    }

    /// How an error message names this source.
    fn as_error_origin(&self) -> String {
        match self {
            Origin::Default => "embedded defaults".into(),
            Origin::Profile { file, .. } => file.clone(),
            Origin::Env(var) => format!("env {var}"),
            Origin::Flag(flag) => flag.clone(),
            Origin::Follows { source, .. } => source.as_error_origin(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Profile { name, .. } => write!(f, "profile {name}"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Follows { key, source } => write!(f, "{source} (from {key})"),
        }
    }
}

/// One command-line setting: a key, its value, and the flag that gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub flag: String,
}

impl Setting {
    /// A dedicated flag (`--workers 4` → `server.workers = 4`).
    pub fn flag(key: &str, value: Value, flag: &str) -> Setting {
        Setting {
            key: key.to_string(),
            value,
            flag: flag.to_string(),
        }
    }

    /// A `--set table.field=value` argument.
    pub fn parse_set(arg: &str) -> Result<Setting, LoadError> {
        // The flag text names the value's source in `profile show` and in
        // errors: a secret's value must not be part of it.
        let flag = match arg.split_once('=') {
            Some((key, _)) if keys::is_secret(key.trim()) => {
                format!("--set {}={}", key.trim(), super::secret::Secret::SHOWN_AS)
            }
            _ => format!("--set {arg}"),
        };
        let Some((key, text)) = arg.split_once('=') else {
            return Err(LoadError::new(
                flag,
                None,
                "expected table.field=value, e.g. limits.max_message_size=16MiB",
            ));
        };
        Ok(Setting {
            key: key.trim().to_string(),
            value: keys::parse_text_value(text.trim()),
            flag,
        })
    }
}

/// The configuration a run uses, with the source of every value.
#[derive(Debug, Clone)]
pub struct Effective {
    pub config: ServerConfig,
    /// Indexed like [`KEYS`].
    pub origins: Vec<Origin>,
    /// The profile layer, if any.
    pub profile: Option<Profile>,
    /// Values [`fit_to_machine`] changed, by key index, and why.
    pub adjusted: Vec<(usize, String)>,
}

impl Effective {
    /// Where the value of `dotted` came from.
    pub fn origin(&self, dotted: &str) -> Option<&Origin> {
        keys::find(dotted).map(|(i, _)| &self.origins[i])
    }
}

/// Environment variables older than the `RINGCAST_TABLE__FIELD` scheme, and
/// the key each one sets (in the env layer, before the `__` variables, so
/// `RINGCAST_LOG__LEVEL` wins over `RINGCAST_LOG`).
pub const ENV_ALIASES: [(&str, &str); 2] = [
    ("RINGCAST_LOG", "log.level"),
    ("RINGCAST_LOG_FORMAT", "log.format"),
];

/// Keys that follow another key when no layer sets them: `(key, followed)`.
/// A frame can never usefully exceed a message, and a browser sends a
/// message as one frame, so the frame limit is the message limit unless
/// something asks for less.
pub const FOLLOWS: [(&str, &str); 1] = [("limits.max_frame_size", "limits.max_message_size")];

/// Keys that are checked and shown but that nothing reads yet, and why:
/// `profile show` marks them so they do not look as if they worked.
/// (Every key is read today; the list stays for the next table that lands
/// before its reader.)
pub const NOT_READ_YET: [(&str, &str); 0] = [];

/// Applies the layers over the defaults and validates the result.
///
/// `env` is the process environment (passed in so tests control it): only
/// `RINGCAST_*` variables with a `__` are configuration keys, plus the
/// [`ENV_ALIASES`]; others, like `RINGCAST_PROFILE`, are ignored here.
///
/// A value that cannot be applied does not stop the pass: every such
/// problem of every layer is collected and reported together (a profile
/// with three mistakes gets three lines); the rules between values are
/// checked once all applied.
pub fn load(
    profile: Option<Profile>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &[Setting],
) -> Result<Effective, LoadError> {
    let mut config = ServerConfig::default();
    let mut origins = vec![Origin::Default; KEYS.len()];
    let mut errors = Vec::new();
    let mut apply = |dotted: &str, value: &Value, origin: Origin| {
        let refuse =
            |reason| LoadError::new(origin.as_error_origin(), Some(dotted.to_string()), reason);
        let applied = keys::find(dotted)
            .ok_or_else(|| refuse(keys::unknown_key_reason(dotted)))
            .and_then(|(index, key)| key.set(&mut config, value).map(|()| index).map_err(refuse));
        match applied {
            Ok(index) => origins[index] = origin,
            Err(e) => errors.push(e),
        }
    };

    if let Some(profile) = &profile {
        let origin = Origin::Profile {
            name: profile.name.clone(),
            file: profile.file.clone(),
        };
        for (dotted, value) in profile.entries()? {
            apply(dotted, &value, origin.clone());
        }
    }

    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(var, _)| var.starts_with("RINGCAST_"))
        .collect();
    for (alias, dotted) in ENV_ALIASES {
        let Some((var, text)) = env.iter().find(|(var, _)| var == alias) else {
            continue;
        };
        // The raw text: these never went through TOML (`RINGCAST_LOG=3`).
        if !text.trim().is_empty() {
            apply(
                dotted,
                &Value::String(text.clone()),
                Origin::Env(var.clone()),
            );
        }
    }
    env.retain(|(var, _)| var.contains("__"));
    env.sort();
    for (var, text) in env {
        let rest = &var["RINGCAST_".len()..];
        let (table, field) = rest.split_once("__").unwrap_or((rest, ""));
        let dotted = format!(
            "{}.{}",
            table.to_ascii_lowercase(),
            field.to_ascii_lowercase()
        );
        apply(
            &dotted,
            &keys::parse_text_value(&text),
            Origin::Env(var.clone()),
        );
    }

    for setting in flags {
        apply(
            &setting.key,
            &setting.value,
            Origin::Flag(setting.flag.clone()),
        );
    }
    if let Some(error) = LoadError::all(errors) {
        return Err(error);
    }

    for (key, followed) in FOLLOWS {
        follow(&mut config, &mut origins, key, followed);
    }
    let effective = Effective {
        config,
        origins,
        profile,
        adjusted: Vec::new(),
    };
    check(&effective)?;
    Ok(effective)
}

/// Gives `key` the value of `followed` when no layer set it, and records
/// that in its source.
fn follow(config: &mut ServerConfig, origins: &mut [Origin], key: &str, followed: &'static str) {
    let (Some((index, target)), Some((from, source))) = (keys::find(key), keys::find(followed))
    else {
        return;
    };
    if origins[index] != Origin::Default {
        return;
    }
    // Through the key table, so the value is converted like any other: the
    // followed key's value as TOML, read back as this key.
    let value = keys::parse_text_value(&source.show(config));
    if target.set(config, &value).is_ok() {
        origins[index] = Origin::Follows {
            key: followed,
            source: Box::new(origins[from].clone()),
        };
    }
}

/// Validates, blaming each broken rule on the highest-precedence source
/// among the values it involves; every table's first broken rule is
/// reported.
fn check(effective: &Effective) -> Result<(), LoadError> {
    let origin_of = |dotted: &str| keys::find(dotted).map(|(i, _)| &effective.origins[i]);
    let errors = effective
        .config
        .violations()
        .into_iter()
        .map(|e| {
            let blamed = [Some(e.key), e.pair]
                .into_iter()
                .flatten()
                .filter_map(origin_of)
                .max_by_key(|origin| origin.rank())
                .cloned()
                .unwrap_or(Origin::Default);
            LoadError::new(blamed.as_error_origin(), Some(e.key.to_string()), e.reason)
        })
        .collect();
    match LoadError::all(errors) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Fits a configuration to the CPUs this process may run on (`online`):
/// CPUs in `server.cpus` that are not there are dropped, and a worker count
/// from the defaults or a profile is capped at the CPUs present. A count
/// given by env or flag is kept (the operator asked for it). Returns one
/// warning per change.
pub fn fit_to_machine(effective: &mut Effective, online: &[usize]) -> Vec<String> {
    let mut warnings = Vec::new();
    let (cpus_index, _) = keys::find("server.cpus").expect("server.cpus is a key");
    let (workers_index, _) = keys::find("server.workers").expect("server.workers is a key");
    let config = &mut effective.config;

    let absent: Vec<usize> = config
        .server
        .cpus
        .iter()
        .copied()
        .filter(|cpu| !online.contains(cpu))
        .collect();
    if !absent.is_empty() {
        config.server.cpus.retain(|cpu| online.contains(cpu));
        let note = format!(
            "dropped CPUs {} (not available here)",
            keys::format_cpu_list(&absent)
        );
        warnings.push(format!("server.cpus: {note}"));
        effective.adjusted.push((cpus_index, note));
    }

    let workers = config.server.effective_workers();
    let cores = online.len().max(1);
    if workers > cores {
        let origin = &effective.origins[workers_index];
        if origin.rank() <= 1 {
            config.server.workers = cores;
            let note = format!("capped from {workers} to {cores}: this machine has {cores} CPUs");
            warnings.push(format!("server.workers: {note}"));
            effective.adjusted.push((workers_index, note));
        } else {
            warnings.push(format!(
                "server.workers: {workers} workers on {cores} CPUs ({origin}): workers will share cores"
            ));
        }
    }
    warnings
}

/// The effective configuration as TOML, each value annotated with its source:
/// what `ringcast profile show` prints. The output is itself a valid profile.
pub fn render(effective: &Effective, notes: &[String]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let profile = match &effective.profile {
        Some(p) => format!("{} from {}", p.name, p.file),
        None => "none (embedded defaults)".into(),
    };
    let _ = writeln!(out, "# ringcast effective configuration");
    let _ = writeln!(out, "# profile: {profile}");
    let _ = writeln!(
        out,
        "# precedence: default < profile < env RINGCAST_TABLE__FIELD < flags (--set, --workers, ...)"
    );
    for note in notes {
        let _ = writeln!(out, "# note: {note}");
    }
    let mut table = "";
    for (index, key) in KEYS.iter().enumerate() {
        if key.table != table {
            table = key.table;
            let _ = writeln!(out, "\n[{table}]");
        }
        let line = format!("{} = {}", key.field, key.show(&effective.config));
        let mut source = effective.origins[index].to_string();
        if let Some((_, why)) = NOT_READ_YET.iter().find(|(k, _)| *k == key.dotted) {
            let _ = write!(source, " (not read yet: {why})");
        }
        for (_, note) in effective.adjusted.iter().filter(|(i, _)| *i == index) {
            source.push_str("; ");
            source.push_str(note);
        }
        let _ = writeln!(out, "{line:<48} # {source}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::time::Duration;

    fn profile(text: &'static str) -> Profile {
        Profile {
            name: "test".into(),
            file: "test.toml".into(),
            text: Cow::Borrowed(text),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn set(arg: &str) -> Setting {
        Setting::parse_set(arg).expect("well-formed --set")
    }

    #[test]
    fn no_layers_is_the_default_everywhere() {
        let effective = load(None, env(&[]), &[]).expect("valid");
        let frame = keys::find("limits.max_frame_size").expect("key").0;
        assert!(effective
            .origins
            .iter()
            .enumerate()
            .all(|(i, o)| *o == Origin::Default || i == frame));
        assert_eq!(
            effective
                .origin("limits.max_frame_size")
                .expect("key")
                .to_string(),
            "default (from limits.max_message_size)"
        );
        assert_eq!(
            effective.config.server.backlog,
            ServerConfig::default().server.backlog
        );
    }

    #[test]
    fn each_layer_overrides_the_one_below_and_is_recorded() {
        let p = profile("[server]\nbacklog = 2048\nworkers = 3\n[limits]\ncommand_rate = 10\n");
        let e = env(&[
            ("RINGCAST_SERVER__BACKLOG", "4096"),
            ("RINGCAST_SERVER__WORKERS", "4"),
            ("RINGCAST_LOG", "debug"),
            ("RINGCAST_PROFILE", "high"),
            ("PATH", "/bin"),
        ]);
        let flags = [
            Setting::flag("server.workers", Value::Integer(5), "--workers"),
            set("server.workers=6"),
        ];
        let effective = load(Some(p), e, &flags).expect("valid");
        let c = &effective.config;
        assert_eq!(
            (c.limits.command_rate, c.server.backlog, c.server.workers),
            (10, 4096, 6)
        );
        let origin = |k| effective.origin(k).expect("key").to_string();
        assert_eq!(origin("limits.command_rate"), "profile test");
        assert_eq!(origin("server.backlog"), "env RINGCAST_SERVER__BACKLOG");
        assert_eq!(origin("server.workers"), "flag --set server.workers=6");
        assert_eq!(origin("server.listen"), "default");
    }

    #[test]
    fn values_are_typed_by_key() {
        let flags = [
            set("timeouts.idle_timeout=90s"),
            set("limits.max_message_size=16MiB"),
            set("server.cpus=[0, 1]"),
            set("server.listen=0.0.0.0:9000"),
            set("store.fsync=always"),
        ];
        let c = load(None, env(&[]), &flags).expect("valid").config;
        assert_eq!(c.timeouts.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.limits.max_message_size, 16 << 20);
        assert_eq!(c.server.cpus, [0, 1]);
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.store.fsync, super::super::FsyncPolicy::Always);
    }

    /// Every refusal names its source, the key and the reason, in one line.
    #[test]
    fn refusals_name_source_key_and_reason() {
        /// Profile text, environment, `--set` arguments, the message.
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
        let cases: &[Case<'_>] = &[
            (
                "[limits]\nmax_mesage_size = 1\n",
                &[],
                &[],
                "test.toml: limits.max_mesage_size: unknown key (did you mean limits.max_message_size?)",
            ),
            (
                "[server]\nworkers = \"two\"\n",
                &[],
                &[],
                "test.toml: server.workers: expected a non-negative integer, got the string \"two\"",
            ),
            (
                "[io_uring]\nuring_entries = 1000\n",
                &[],
                &[],
                "test.toml: io_uring.uring_entries: 1000 is not a power of two in 8..=32768",
            ),
            (
                "[server]\nbacklog = -1\n",
                &[],
                &[],
                "test.toml: server.backlog: -1 is negative",
            ),
            (
                "[timeouts]\nping_interval = \"60s\"\nidle_timeout = \"60s\"\n",
                &[],
                &[],
                "test.toml: timeouts.ping_interval: 1m must be shorter than timeouts.idle_timeout (1m)",
            ),
            (
                // The pair is blamed on the file that set one half of it.
                "[timeouts]\nidle_timeout = \"20s\"\n",
                &[],
                &[],
                "test.toml: timeouts.ping_interval: 30s must be shorter than timeouts.idle_timeout (20s)",
            ),
            (
                "",
                &[("RINGCAST_LIMITS__MAX_FRAME_SIZE", "1GiB")],
                &[],
                "env RINGCAST_LIMITS__MAX_FRAME_SIZE: limits.max_frame_size: 1073741824 exceeds \
                 limits.max_message_size (65536)",
            ),
            (
                "",
                &[("RINGCAST_NET__SPEED", "1")],
                &[],
                "env RINGCAST_NET__SPEED: net.speed: unknown key",
            ),
            (
                "",
                &[],
                &["store.fsync=sometimes"],
                "--set store.fsync=sometimes: store.fsync: \"sometimes\" is not one of always, batch, never",
            ),
            (
                "",
                &[],
                &["max_message_size=1"],
                "--set max_message_size=1: max_message_size: unknown key (did you mean \
                 limits.max_message_size?)",
            ),
            (
                "[admission]\nallowed_origins = [\"https://*example.com\"]\n",
                &[],
                &[],
                "test.toml: admission.allowed_origins: \"https://*example.com\" has a misplaced \
                 '*' (write scheme://host[:port] or scheme://*.domain[:port])",
            ),
            (
                "[admission]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n",
                &[],
                &[],
                "test.toml: admission.trusted_proxies: \"10.0.0.1/8\" has bits set past the \
                 prefix (did you mean \"10.0.0.0/8\"?)",
            ),
            (
                "",
                &[("RINGCAST_ADMISSION__TRUSTED_PROXIES", "[\"localhost\"]")],
                &[],
                "env RINGCAST_ADMISSION__TRUSTED_PROXIES: admission.trusted_proxies: \
                 \"localhost\" is not an IP address (write an address or a CIDR block: \
                 \"10.0.0.0/8\", \"fd00::/8\")",
            ),
            (
                "",
                &[],
                &["auth.jwt_algorithms=[\"none\"]"],
                "--set auth.jwt_algorithms=[\"none\"]: auth.jwt_algorithms: \"none\" is never \
                 accepted: tokens must be signed",
            ),
            (
                // Refused at the second source applied (a table's keys apply
                // in name order), naming both.
                "[auth]\njwt_pem_file = \"/k.pem\"\njwt_jwks_file = \"/k.json\"\n",
                &[],
                &[],
                "test.toml: auth.jwt_pem_file: set only one key source: auth.jwt_pem_file and \
                 auth.jwt_jwks_file are both set",
            ),
        ];
        for (text, vars, sets, want) in cases {
            let flags: Vec<Setting> = sets.iter().map(|s| set(s)).collect();
            let err = load(Some(profile(text)), env(vars), &flags).expect_err(want);
            assert_eq!(err.to_string(), *want);
        }
    }

    /// The frame limit follows the message limit whichever layer sets the
    /// latter, and says so in its source.
    #[test]
    fn the_frame_limit_follows_the_message_limit_from_every_layer() {
        /// A profile, the environment, the flags, the frame limit's source.
        type Case = (
            Option<Profile>,
            Vec<(String, String)>,
            Vec<Setting>,
            &'static str,
        );
        let cases: [Case; 3] = [
            (
                Some(profile("[limits]\nmax_message_size = \"1 MiB\"\n")),
                env(&[]),
                vec![],
                "profile test (from limits.max_message_size)",
            ),
            (
                None,
                env(&[("RINGCAST_LIMITS__MAX_MESSAGE_SIZE", "1MiB")]),
                vec![],
                "env RINGCAST_LIMITS__MAX_MESSAGE_SIZE (from limits.max_message_size)",
            ),
            (
                None,
                env(&[]),
                vec![set("limits.max_message_size=1MiB")],
                "flag --set limits.max_message_size=1MiB (from limits.max_message_size)",
            ),
        ];
        for (p, e, flags, source) in cases {
            let effective = load(p, e, &flags).expect(source);
            let limits = &effective.config.limits;
            assert_eq!(
                (limits.max_frame_size, limits.max_message_size),
                (1 << 20, 1 << 20)
            );
            let shown = render(&effective, &[]);
            let line = shown
                .lines()
                .find(|l| l.starts_with("max_frame_size = "))
                .expect("shown");
            assert!(line.ends_with(&format!("# {source}")), "{line}");
        }
        // A smaller message limit takes the frame limit down with it (before,
        // the 64 KiB frame default refused it).
        let c = load(None, env(&[]), &[set("limits.max_message_size=16KiB")])
            .expect("valid")
            .config;
        assert_eq!(c.limits.max_frame_size, 16 << 10);
    }

    /// The shipped tiers leave the frame limit to follow, so the message
    /// limit raised on top of any of them is one a browser can send.
    #[test]
    fn on_every_tier_the_frame_limit_follows_a_raised_message_limit() {
        for (name, _) in super::super::profile::EMBEDDED {
            let tier = Profile::embedded(name).expect("embedded");
            let flags = [set("limits.max_message_size=16MiB")];
            let limits = load(Some(tier), env(&[]), &flags)
                .expect(name)
                .config
                .limits;
            assert_eq!(limits.max_frame_size, 16 << 20, "{name}");
        }
    }

    #[test]
    fn a_frame_limit_set_by_any_layer_is_kept() {
        let p = profile("[limits]\nmax_frame_size = \"16 KiB\"\n");
        let flags = [set("limits.max_message_size=1MiB")];
        let effective = load(Some(p), env(&[]), &flags).expect("valid");
        assert_eq!(effective.config.limits.max_frame_size, 16 << 10);
        assert_eq!(
            effective
                .origin("limits.max_frame_size")
                .expect("key")
                .to_string(),
            "profile test"
        );
        // Over the message limit is still refused, blamed on who set it.
        let flags = [set("limits.max_frame_size=2MiB")];
        let e = env(&[("RINGCAST_LIMITS__MAX_MESSAGE_SIZE", "1MiB")]);
        let err = load(None, e, &flags).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "--set limits.max_frame_size=2MiB: limits.max_frame_size: 2097152 exceeds \
             limits.max_message_size (1048576)"
        );
    }

    #[test]
    fn every_problem_of_every_layer_is_reported() {
        let p = profile(
            "[server]\nworkers = \"two\"\n[limits]\nmax_mesage_size = 1\ncommand_rate = -1\n",
        );
        let e = env(&[("RINGCAST_TIMEOUTS__IDLE_TIMEOUT", "soon")]);
        let err = load(Some(p), e, &[]).expect_err("refused");
        // Unknown keys are found while reading the file, before any value applies.
        assert_eq!(err.count(), 1, "{err}");
        let p = profile("[server]\nworkers = \"two\"\n[limits]\ncommand_rate = -1\n");
        let e = env(&[("RINGCAST_TIMEOUTS__IDLE_TIMEOUT", "soon")]);
        let err = load(Some(p), e, &[set("pubsub.max_channels=x")]).expect_err("refused");
        let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(
            lines[0].starts_with("test.toml: server.workers: expected"),
            "{err}"
        );
        assert_eq!(lines[1], "test.toml: limits.command_rate: -1 is negative");
        assert!(
            lines[2].starts_with("env RINGCAST_TIMEOUTS__IDLE_TIMEOUT: timeouts.idle_timeout:"),
            "{err}"
        );
        assert!(
            lines[3].starts_with("--set pubsub.max_channels=x: pubsub.max_channels:"),
            "{err}"
        );
        // Broken rules of different tables are reported together too.
        let p = profile("[io_uring]\nuring_entries = 1000\n[timeouts]\nidle_timeout = \"20s\"\n");
        let err = load(Some(p), env(&[]), &[]).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "test.toml: io_uring.uring_entries: 1000 is not a power of two in 8..=32768\n\
             test.toml: timeouts.ping_interval: 30s must be shorter than timeouts.idle_timeout (20s)"
        );
    }

    #[test]
    fn store_keys_are_read_and_not_marked() {
        let effective = load(None, env(&[]), &[set("store.fsync=always")]).expect("valid");
        let shown = render(&effective, &[]);
        for field in ["data_path", "fsync", "fsync_interval", "max_disk"] {
            let line = shown
                .lines()
                .find(|l| l.starts_with(&format!("{field} = ")))
                .expect("shown");
            assert!(!line.contains("not read yet"), "{line}");
        }
    }

    #[test]
    fn a_secret_set_on_the_command_line_is_never_echoed() {
        let secret = "this-is-a-very-secret-value-0123456789";
        let flags = [set(&format!("auth.jwt_secret={secret}"))];
        assert_eq!(flags[0].flag, "--set auth.jwt_secret=<redacted>");
        let effective = load(None, env(&[]), &flags).expect("valid");
        assert_eq!(
            effective.config.auth.key,
            super::super::KeySource::Secret(super::super::secret::Secret::new(secret))
        );
        let shown = render(&effective, &[]);
        assert!(!shown.contains(secret), "{shown}");
        // Nor in a refusal.
        let flags = [set("auth.jwt_secret=tiny"), set("auth.auth_mode=jwt")];
        let err = load(None, env(&[]), &flags).expect_err("too short");
        assert_eq!(
            err.to_string(),
            "--set auth.jwt_secret=<redacted>: auth.jwt_secret: a shared secret must be at \
             least 32 bytes (RFC 7518 §3.2); this one has 4"
        );
    }

    #[test]
    fn a_set_without_equals_is_refused() {
        let err = Setting::parse_set("server.workers").expect_err("refused");
        assert!(err
            .to_string()
            .starts_with("--set server.workers: expected"));
    }

    #[test]
    fn fitting_caps_profile_workers_but_not_flag_workers() {
        let p = profile("[server]\nworkers = 6\ncpus = \"0-5\"\n");
        let mut effective = load(Some(p), env(&[]), &[]).expect("valid");
        let warnings = fit_to_machine(&mut effective, &[0, 1]);
        assert_eq!(effective.config.server.cpus, [0, 1]);
        assert_eq!(effective.config.server.workers, 2);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let shown = render(&effective, &warnings);
        assert!(
            shown.contains("# profile test; capped from 6 to 2: this machine has 2 CPUs"),
            "{shown}"
        );

        let flags = [Setting::flag(
            "server.workers",
            Value::Integer(4),
            "--workers",
        )];
        let mut effective = load(None, env(&[]), &flags).expect("valid");
        let warnings = fit_to_machine(&mut effective, &[0, 1]);
        assert_eq!(effective.config.server.workers, 4);
        assert!(warnings[0].contains("share cores"), "{warnings:?}");
    }

    #[test]
    fn the_rendering_is_a_valid_profile_that_loads_back_the_same() {
        let p = profile(
            "[limits]\nmax_message_size = \"1 MiB\"\n[store]\ndata_path = \"/var/lib/x\"\n",
        );
        let effective = load(Some(p), env(&[]), &[]).expect("valid");
        let shown = render(&effective, &[]);
        assert!(shown.contains("max_message_size = \"1 MiB\""), "{shown}");
        let leaked: &'static str = Box::leak(shown.into_boxed_str());
        let again = load(Some(profile(leaked)), env(&[]), &[]).expect("reloads");
        for key in KEYS {
            assert_eq!(key.show(&again.config), key.show(&effective.config));
        }
    }
}

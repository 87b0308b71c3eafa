//! The `ringcast` binary.
//!
//! - `ringcast serve` runs the server. Prints `ringcast listening on ADDR` on
//!   stdout once every worker accepts (scripts and tests wait for that line);
//!   everything else goes to stderr through `tracing`. Level and targets are
//!   the key `log.level` (an `EnvFilter` directive, default `info`; `debug`
//!   adds a line per connection accepted, upgraded and closed), the format
//!   is `log.format` (`human`, the default, or `json`: one object per line
//!   with `timestamp`, `level`, `target`, `message` and the event's fields at
//!   the top level). Both layer like every key, highest first: a flag
//!   (`--set log.level=debug`, and `--log-format json` for the format), the
//!   environment (`RINGCAST_LOG__LEVEL`, or its older name `RINGCAST_LOG`;
//!   `RINGCAST_LOG__FORMAT`, or `RINGCAST_LOG_FORMAT`), the profile's `[log]`
//!   table, the default. Logging starts once the configuration is resolved:
//!   a refusal before that is the one line on stderr described below. SIGINT
//!   or SIGTERM drains (close 1001 to every connection); a second signal
//!   exits at once. SIGHUP reloads the TLS certificate and key (new
//!   connections get them; a bad file is refused and the old pair stays).
//! - `ringcast profile show` prints the effective configuration, each value
//!   with where it came from.
//! - `ringcast doctor` checks this machine against what the profile needs.
//!
//! All three take `--profile medium|high|ultra|auto|default|PATH` (or
//! `RINGCAST_PROFILE`) and `--set table.field=value`; the layering is
//! described in `ringcast::config::layers`. Errors are one line; exit code 2
//! for a bad configuration (refused before anything starts), 1 for other
//! failures and for a doctor report with a blocker.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ringcast::config::doctor::{self, Probe};
use ringcast::config::layers::{self, Effective, LoadError, Setting};
use ringcast::config::log::LogFormat;
use ringcast::config::machine::{online_cpus, MachineFacts};
use ringcast::config::profile;
use ringcast::config::ServerConfig;
use ringcast::server::{self, StartError};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use toml::Value;
use tracing::{info, warn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ringcast",
    version,
    about = "WebSocket messaging server, one io_uring event loop per core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Inspect hardware profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Check this machine against what the profile needs (exit 1 on a blocker).
    Doctor(SelectArgs),
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Print the effective configuration, each value with its source
    /// (default, profile, env, flag).
    Show(SelectArgs),
}

/// Which configuration: a profile, then overrides.
#[derive(Args)]
struct SelectArgs {
    /// Hardware profile: medium, high, ultra, auto (the tier nearest to this
    /// machine), default (embedded defaults), or a TOML file [env: RINGCAST_PROFILE]
    #[arg(long, value_name = "NAME|PATH")]
    profile: Option<String>,
    /// Override one key, e.g. --set limits.max_message_size=16MiB (repeatable;
    /// wins over the profile, RINGCAST_* variables and the flags below)
    #[arg(long = "set", value_name = "TABLE.FIELD=VALUE")]
    set: Vec<String>,
}

/// Every flag defaults to the profile's value (or the embedded default).
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Log line format on stderr: human or json (log.format; env RINGCAST_LOG_FORMAT) [default: human]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Address to listen on (server.listen) [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Worker threads, one event loop per core; 0 = online cores (server.workers) [default: 0]
    #[arg(long)]
    workers: Option<usize>,
    /// Do not pin workers to cores (server.pin_workers = false).
    #[arg(long)]
    no_pin: bool,
    /// Use the epoll driver even where io_uring works (io_uring.force_epoll = true).
    #[arg(long)]
    force_epoll: bool,
    /// Largest frame payload in bytes (limits.max_frame_size) [default: 65536]
    #[arg(long)]
    max_frame_size: Option<u64>,
    /// Largest message in bytes; also raises the frame limit to match when that is not set (limits.max_message_size) [default: 65536]
    #[arg(long)]
    max_message_size: Option<u64>,
    /// Largest handshake request head in bytes (limits.max_handshake_bytes) [default: 8192]
    #[arg(long)]
    max_handshake_bytes: Option<usize>,
    /// Outbound bytes queued per connection before it is closed as a slow consumer (limits.max_outbound_bytes) [default: 1048576]
    #[arg(long)]
    max_outbound_bytes: Option<usize>,
    /// Connections per worker before new handshakes get 503 (limits.max_connections_per_worker) [default: 100000]
    #[arg(long)]
    max_connections_per_worker: Option<usize>,
    /// Handshake timeout, e.g. 10s (timeouts.handshake_timeout) [default: 10s]
    #[arg(long, value_parser = humantime::parse_duration)]
    handshake_timeout: Option<Duration>,
    /// Silence before the server pings, e.g. 30s (timeouts.ping_interval) [default: 30s]
    #[arg(long, value_parser = humantime::parse_duration)]
    ping_interval: Option<Duration>,
    /// Silence before the connection is closed, e.g. 60s (timeouts.idle_timeout) [default: 60s]
    #[arg(long, value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Wait for the peer's close frame, e.g. 5s (timeouts.close_timeout) [default: 5s]
    #[arg(long, value_parser = humantime::parse_duration)]
    close_timeout: Option<Duration>,
    /// Wait for connections to close on shutdown, e.g. 10s (timeouts.drain_timeout) [default: 10s]
    #[arg(long, value_parser = humantime::parse_duration)]
    drain_timeout: Option<Duration>,
    /// io_uring entries per worker (io_uring.uring_entries) [default: 1024]
    #[arg(long)]
    uring_entries: Option<u32>,
    /// Listen backlog per worker (server.backlog) [default: 1024]
    #[arg(long)]
    backlog: Option<u32>,
    /// Subprotocol the server accepts (repeatable, in preference order; server.subprotocols).
    #[arg(long = "subprotocol")]
    subprotocols: Vec<String>,
}

fn int(value: impl TryInto<i64>) -> Value {
    Value::Integer(value.try_into().unwrap_or(i64::MAX))
}

fn duration(value: Duration) -> Value {
    Value::String(humantime::format_duration(value).to_string())
}

impl ServeArgs {
    /// The dedicated flags as settings of the flag layer, in a fixed order
    /// (`--set` arguments come after them and win).
    fn flag_settings(&self) -> Vec<Setting> {
        let mut out = Vec::new();
        let mut push = |key: &str, value: Value, flag: &str| {
            out.push(Setting::flag(key, value, flag));
        };
        if let Some(v) = self.log_format {
            push("log.format", Value::String(v.to_string()), "--log-format");
        }
        if let Some(v) = self.listen {
            push("server.listen", Value::String(v.to_string()), "--listen");
        }
        if let Some(v) = self.workers {
            push("server.workers", int(v), "--workers");
        }
        if self.no_pin {
            push("server.pin_workers", Value::Boolean(false), "--no-pin");
        }
        if self.force_epoll {
            push(
                "io_uring.force_epoll",
                Value::Boolean(true),
                "--force-epoll",
            );
        }
        if let Some(v) = self.max_message_size {
            push("limits.max_message_size", int(v), "--max-message-size");
            if self.max_frame_size.is_none() {
                push("limits.max_frame_size", int(v), "--max-message-size");
            }
        }
        if let Some(v) = self.max_frame_size {
            push("limits.max_frame_size", int(v), "--max-frame-size");
        }
        let sizes = [
            (
                "limits.max_handshake_bytes",
                self.max_handshake_bytes,
                "--max-handshake-bytes",
            ),
            (
                "limits.max_outbound_bytes",
                self.max_outbound_bytes,
                "--max-outbound-bytes",
            ),
            (
                "limits.max_connections_per_worker",
                self.max_connections_per_worker,
                "--max-connections-per-worker",
            ),
        ];
        for (key, value, flag) in sizes {
            if let Some(v) = value {
                push(key, int(v), flag);
            }
        }
        let durations = [
            (
                "timeouts.handshake_timeout",
                self.handshake_timeout,
                "--handshake-timeout",
            ),
            (
                "timeouts.ping_interval",
                self.ping_interval,
                "--ping-interval",
            ),
            ("timeouts.idle_timeout", self.idle_timeout, "--idle-timeout"),
            (
                "timeouts.close_timeout",
                self.close_timeout,
                "--close-timeout",
            ),
            (
                "timeouts.drain_timeout",
                self.drain_timeout,
                "--drain-timeout",
            ),
        ];
        for (key, value, flag) in durations {
            if let Some(v) = value {
                push(key, duration(v), flag);
            }
        }
        if let Some(v) = self.uring_entries {
            push("io_uring.uring_entries", int(v), "--uring-entries");
        }
        if let Some(v) = self.backlog {
            push("server.backlog", int(v), "--backlog");
        }
        if !self.subprotocols.is_empty() {
            let list = self
                .subprotocols
                .iter()
                .cloned()
                .map(Value::String)
                .collect();
            push("server.subprotocols", Value::Array(list), "--subprotocol");
        }
        out
    }
}

/// Why the binary stops: a bad configuration (exit 2) or anything else (exit 1).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Config(_) | Failure::Start(StartError::Config(_)) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Installs the global `tracing` subscriber from the resolved `[log]` keys:
/// `log.level` filters, lines go to stderr in `log.format`. Called once the
/// configuration has loaded (both values were checked then), so nothing here
/// can fail; what goes wrong before it is printed by `main` as one line.
fn init_logging(config: &ServerConfig) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(config.log_level.filter());
    match config.log_format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // Fields at the top level (`"worker":0`), not under `"fields"`: what
        // log shippers index without a parsing rule. No span lists: the
        // server opens no spans.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // No logging yet: each command starts it once its configuration (with
    // the `[log]` keys) is resolved. A failure is one line on stderr.
    let result = match cli.command {
        Command::Serve(args) => run_serve(*args),
        Command::Profile {
            command: ProfileCommand::Show(select),
        } => show(select),
        Command::Doctor(select) => run_doctor(select),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringcast: {e}");
            e.exit_code()
        }
    }
}

/// The process environment, as UTF-8 pairs (others cannot be ringcast's).
fn environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Selects the profile and applies every layer; `why` receives what `auto`
/// decided.
fn load(select: &SelectArgs, flags: Vec<Setting>) -> Result<(Effective, Option<String>), Failure> {
    let spec = select
        .profile
        .clone()
        .or_else(|| std::env::var("RINGCAST_PROFILE").ok());
    let selection = profile::select(spec.as_deref(), MachineFacts::read)?;
    let mut settings = flags;
    for arg in &select.set {
        settings.push(Setting::parse_set(arg)?);
    }
    let effective = layers::load(selection.profile, environment(), &settings)?;
    Ok((effective, selection.why))
}

fn profile_label(effective: &Effective) -> String {
    match &effective.profile {
        Some(p) => format!("{} from {}", p.name, p.file),
        None => "none (embedded defaults)".into(),
    }
}

fn run_serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&args.select, args.flag_settings())?;
    init_logging(&effective.config);
    if let Some(why) = why {
        info!("{why}");
    }
    info!(profile = %profile_label(&effective), "configuration loaded");
    for warning in layers::fit_to_machine(&mut effective, &online_cpus()) {
        warn!("{warning}");
    }
    match raise_nofile_limit() {
        Ok((soft, hard)) => info!(soft, hard, "open-file limit"),
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
    serve(effective.config)?;
    Ok(ExitCode::SUCCESS)
}

fn show(select: SelectArgs) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&select, Vec::new())?;
    init_logging(&effective.config);
    let mut notes: Vec<String> = why.into_iter().collect();
    notes.extend(layers::fit_to_machine(&mut effective, &online_cpus()));
    print!("{}", layers::render(&effective, &notes));
    Ok(ExitCode::SUCCESS)
}

fn run_doctor(select: SelectArgs) -> Result<ExitCode, Failure> {
    let (effective, why) = load(&select, Vec::new())?;
    init_logging(&effective.config);
    if let Some(why) = why {
        println!("{why}");
    }
    let config = &effective.config;
    let findings = doctor::run(config, &Probe::read(config));
    print!(
        "{}",
        doctor::render(&profile_label(&effective), config, &findings)
    );
    Ok(match doctor::worst(&findings) {
        doctor::Status::Blocker => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (each connection is an
/// fd); returns the limits now in force.
fn raise_nofile_limit() -> std::io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit read above; only the soft value changed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

fn serve(config: ServerConfig) -> Result<(), Failure> {
    use signal_hook::consts::SIGHUP;
    // Handlers first: a signal during start-up must not kill us half-started
    // (a SIGHUP then is a reload once the server runs).
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(Failure::Signals)?;
    let drain_timeout = humantime::format_duration(config.drain_timeout).to_string();
    let handle = server::start(config)?;
    println!("ringcast listening on {}", handle.local_addr());
    let _ = std::io::stdout().flush();
    // SIGHUP (`systemctl reload`) re-reads the TLS certificate and key for new
    // connections and serving goes on; a refused file (or TLS off) leaves the
    // certificate in service as it was. SIGINT or SIGTERM starts the drain.
    for signal in signals.forever() {
        if signal == SIGHUP {
            match handle.reload_tls() {
                Ok(()) => info!(
                    cert = %handle.tls_cert_path().unwrap_or(std::path::Path::new("")).display(),
                    "tls certificate reloaded"
                ),
                Err(e) => warn!("tls certificate not reloaded: {e}"),
            }
            continue;
        }
        info!(
            signal,
            drain_timeout, "shutting down: closing connections with 1001"
        );
        break;
    }
    handle.shutdown();
    std::thread::spawn(move || {
        // Only a second SIGINT or SIGTERM cuts the drain short; new
        // connections are refused by now, so a SIGHUP has nothing to reload.
        for signal in signals.forever() {
            if signal == SIGHUP {
                info!("SIGHUP during the drain: nothing to reload");
                continue;
            }
            warn!(
                signal,
                "second signal: exiting now, without waiting for the drain"
            );
            std::process::exit(130);
        }
    });
    handle.join();
    info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_fd_limit_is_raised_to_the_hard_one() {
        let (soft, hard) = raise_nofile_limit().expect("rlimit");
        assert_eq!(soft, hard);
    }

    /// `log.level` and `log.format` (each value and where it came from) for
    /// `ringcast serve ARGS` over a profile text and an environment.
    fn log_keys(
        args: &[&str],
        profile: Option<&'static str>,
        env: &[(&str, &str)],
    ) -> Result<[String; 4], String> {
        let argv = ["ringcast", "serve"].iter().chain(args);
        let Command::Serve(args) = Cli::parse_from(argv).command else {
            panic!("serve")
        };
        let mut flags = args.flag_settings();
        for arg in &args.select.set {
            flags.push(Setting::parse_set(arg).map_err(|e| e.to_string())?);
        }
        let profile = profile.map(|text| profile::Profile {
            name: "test".into(),
            file: "test.toml".into(),
            text: std::borrow::Cow::Borrowed(text),
        });
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let e = layers::load(profile, env, &flags).map_err(|e| e.to_string())?;
        let origin = |key| e.origin(key).expect("a key").to_string();
        Ok([
            e.config.log_level.to_string(),
            origin("log.level"),
            e.config.log_format.to_string(),
            origin("log.format"),
        ])
    }

    #[test]
    fn log_keys_layer_flag_over_env_over_profile_over_default() {
        let ok = |args: &[&str], profile, env: &[(&str, &str)]| {
            log_keys(args, profile, env).unwrap_or_else(|e| panic!("{args:?} {env:?}: {e}"))
        };
        let profile = Some("[log]\nlevel = \"debug\"\nformat = \"json\"\n");
        assert_eq!(ok(&[], None, &[]), ["info", "default", "human", "default"]);
        assert_eq!(
            ok(&[], profile, &[]),
            ["debug", "profile test", "json", "profile test"]
        );
        // The older variable names are the env layer of the keys.
        let old = [("RINGCAST_LOG", "warn"), ("RINGCAST_LOG_FORMAT", "HUMAN")];
        assert_eq!(
            ok(&[], profile, &old),
            [
                "warn",
                "env RINGCAST_LOG",
                "human",
                "env RINGCAST_LOG_FORMAT"
            ]
        );
        // The `__` names win over the older ones; empty counts as unset.
        let both = [
            ("RINGCAST_LOG", "warn"),
            ("RINGCAST_LOG__LEVEL", "error"),
            ("RINGCAST_LOG_FORMAT", " "),
        ];
        assert_eq!(
            ok(&[], profile, &both),
            ["error", "env RINGCAST_LOG__LEVEL", "json", "profile test"]
        );
        // Flags over everything; `--set` after the dedicated flag.
        assert_eq!(
            ok(
                &["--log-format", "json", "--set", "log.level=trace"],
                None,
                &old
            ),
            [
                "trace",
                "flag --set log.level=trace",
                "json",
                "flag --log-format"
            ]
        );
        assert_eq!(
            ok(
                &["--log-format", "json", "--set", "log.format=human"],
                None,
                &[]
            )[2..],
            ["human", "flag --set log.format=human"]
        );
        assert!(Cli::try_parse_from(["ringcast", "serve", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn a_bad_log_level_or_format_is_refused_with_source_key_and_reason() {
        let not_a_level = "is not a level (error, warn, info, debug, trace, off)";
        /// `serve` arguments, profile text, environment, the message.
        type Case<'a> = (
            &'a [&'a str],
            Option<&'static str>,
            &'a [(&'a str, &'a str)],
            String,
        );
        let cases: [Case<'_>; 5] = [
            (
                &["--set", "log.level=warning"],
                None,
                &[],
                format!("--set log.level=warning: log.level: \"warning\" {not_a_level}"),
            ),
            (
                &[],
                None,
                &[("RINGCAST_LOG", "info,degub")],
                format!("env RINGCAST_LOG: log.level: \"degub\" {not_a_level}"),
            ),
            (
                &[],
                Some("[log]\nlevel = 7\n"),
                &[],
                format!("test.toml: log.level: \"7\" {not_a_level}"),
            ),
            (
                &[],
                None,
                &[("RINGCAST_LOG_FORMAT", "xml")],
                "env RINGCAST_LOG_FORMAT: log.format: \"xml\" is not one of human, json".into(),
            ),
            (
                &["--set", "log.format=text"],
                None,
                &[],
                "--set log.format=text: log.format: \"text\" is not one of human, json".into(),
            ),
        ];
        for (args, profile, env, want) in cases {
            let err = log_keys(args, profile, env).expect_err(&want);
            assert!(err.starts_with(&want), "{err}\nwant {want}");
        }
    }

    #[test]
    fn serve_flags_become_flag_settings() {
        let cli = Cli::parse_from([
            "ringcast",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--max-message-size",
            "16777216",
            "--force-epoll",
            "--idle-timeout",
            "90s",
            "--set",
            "server.workers=3",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let keys: Vec<(String, String)> = args
            .flag_settings()
            .into_iter()
            .map(|s| (s.key, s.flag))
            .collect();
        let want = [
            ("server.listen", "--listen"),
            ("server.workers", "--workers"),
            ("io_uring.force_epoll", "--force-epoll"),
            ("limits.max_message_size", "--max-message-size"),
            ("limits.max_frame_size", "--max-message-size"),
            ("timeouts.idle_timeout", "--idle-timeout"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, f)| (k.to_string(), f.to_string()))
            .collect();
        assert_eq!(keys, want);
        let effective = layers::load(None, Vec::new(), &args.flag_settings()).expect("valid flags");
        assert_eq!(effective.config.max_frame_size, 16 << 20);
        assert_eq!(effective.config.idle_timeout, Duration::from_secs(90));
        assert_eq!(args.select.set, ["server.workers=3"]);
    }
}

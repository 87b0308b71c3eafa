//! `ringcast serve`: the flags that override single keys, and the server's
//! life from start-up to the drain.
//!
//! Each dedicated flag is a setting of the flag layer (the same layer as
//! `--set`, which comes after it and wins); once the configuration is
//! resolved, logging starts, the open-file limit is raised and the server
//! runs until a signal.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ringcast::config::layers::{self, Setting};
use ringcast::config::log::LogFormat;
use ringcast::config::machine::online_cpus;
use ringcast::config::ServerConfig;
use ringcast::os::rlimit::raise_nofile;
use ringcast::server;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use toml::Value;
use tracing::{info, warn};

use super::{init_logging, load, profile_label, Failure, SelectArgs};

/// Every flag defaults to the profile's value (or the embedded default).
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub select: SelectArgs,
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
    pub fn flag_settings(&self) -> Vec<Setting> {
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

/// Loads the configuration, fits it to this machine, raises the fd limit and
/// serves until a signal.
pub fn run(args: ServeArgs) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&args.select, args.flag_settings())?;
    init_logging(&effective.config);
    if let Some(why) = why {
        info!("{why}");
    }
    info!(profile = %profile_label(&effective), "configuration loaded");
    for warning in layers::fit_to_machine(&mut effective, &online_cpus()) {
        warn!("{warning}");
    }
    // Each connection is an fd.
    match raise_nofile() {
        Ok(limit) => info!(soft = limit.soft, hard = limit.hard, "open-file limit"),
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
    serve(effective.config)?;
    Ok(ExitCode::SUCCESS)
}

/// Starts the server, prints the line scripts wait for, and runs the
/// signal loop: SIGHUP reloads TLS, the first SIGINT or SIGTERM drains, a
/// second one exits at once.
fn serve(config: ServerConfig) -> Result<(), Failure> {
    use signal_hook::consts::SIGHUP;
    // Handlers first: a signal during start-up must not kill us half-started
    // (a SIGHUP then is a reload once the server runs).
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(Failure::Signals)?;
    let drain_timeout = humantime::format_duration(config.timeouts.drain_timeout).to_string();
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
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use ringcast::config::profile;

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
            e.config.log.level.to_string(),
            origin("log.level"),
            e.config.log.format.to_string(),
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
        assert_eq!(effective.config.limits.max_frame_size, 16 << 20);
        assert_eq!(
            effective.config.timeouts.idle_timeout,
            Duration::from_secs(90)
        );
        assert_eq!(args.select.set, ["server.workers=3"]);
    }
}

//! The flags of `ringcast serve`, which `ringcast profile show` takes too, so
//! that `profile show` previews the exact configuration of a serve command.
//!
//! Every dedicated flag is a setting of the flag layer, the same layer as
//! `--set` (which comes after the dedicated flags and wins). A flag's value
//! is handed over as text to the key it names, exactly as `--set KEY=TEXT`
//! would hand it: the key's own codec parses it, so `--max-message-size
//! 16MiB` takes every form `limits.max_message_size` takes, and a bad value
//! is refused with one message naming the flag, the key and the reason.
//! A flag means what its key means, nothing more: no flag sets a second key.

use clap::Args;
use ringcast::config::keys;
use ringcast::config::layers::Setting;
use ringcast::config::log::LogFormat;
use toml::Value;

use super::SelectArgs;

/// Every flag defaults to the profile's value (or the embedded default).
#[derive(Args)]
pub struct ServeFlags {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Log line format on stderr: human or json (log.format; env RINGCAST_LOG_FORMAT) [default: human]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Address to listen on (server.listen) [default: 127.0.0.1:8080]
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// Worker threads, one event loop per core; 0 = online cores (server.workers) [default: 0]
    #[arg(long, value_name = "N")]
    workers: Option<String>,
    /// Do not pin workers to cores (server.pin_workers = false).
    #[arg(long)]
    no_pin: bool,
    /// Use the epoll driver even where io_uring works (io_uring.force_epoll = true).
    #[arg(long)]
    force_epoll: bool,
    /// Largest frame payload, e.g. 64KiB or 65536 (limits.max_frame_size) [default: limits.max_message_size]
    #[arg(long, value_name = "SIZE")]
    max_frame_size: Option<String>,
    /// Largest message, e.g. 16MiB or 16777216 (limits.max_message_size) [default: 64 KiB]
    #[arg(long, value_name = "SIZE")]
    max_message_size: Option<String>,
    /// Largest handshake request head, e.g. 8KiB (limits.max_handshake_bytes) [default: 8 KiB]
    #[arg(long, value_name = "SIZE")]
    max_handshake_bytes: Option<String>,
    /// Outbound bytes queued per connection before it is closed as a slow consumer, e.g. 1MiB (limits.max_outbound_bytes) [default: 1 MiB]
    #[arg(long, value_name = "SIZE")]
    max_outbound_bytes: Option<String>,
    /// Connections per worker before new handshakes get 503 (limits.max_connections_per_worker) [default: 100000]
    #[arg(long, value_name = "N")]
    max_connections_per_worker: Option<String>,
    /// Handshake timeout, e.g. 10s (timeouts.handshake_timeout) [default: 10s]
    #[arg(long, value_name = "DURATION")]
    handshake_timeout: Option<String>,
    /// Silence before the server pings, e.g. 30s (timeouts.ping_interval) [default: 30s]
    #[arg(long, value_name = "DURATION")]
    ping_interval: Option<String>,
    /// Silence before the connection is closed, e.g. 60s (timeouts.idle_timeout) [default: 60s]
    #[arg(long, value_name = "DURATION")]
    idle_timeout: Option<String>,
    /// Wait for the peer's close frame, e.g. 5s (timeouts.close_timeout) [default: 5s]
    #[arg(long, value_name = "DURATION")]
    close_timeout: Option<String>,
    /// Wait for connections to close on shutdown, e.g. 10s (timeouts.drain_timeout) [default: 10s]
    #[arg(long, value_name = "DURATION")]
    drain_timeout: Option<String>,
    /// io_uring entries per worker (io_uring.uring_entries) [default: 1024]
    #[arg(long, value_name = "N")]
    uring_entries: Option<String>,
    /// Listen backlog per worker (server.backlog) [default: 1024]
    #[arg(long, value_name = "N")]
    backlog: Option<String>,
    /// Subprotocol the server accepts (repeatable, in preference order; server.subprotocols).
    #[arg(long = "subprotocol")]
    subprotocols: Vec<String>,
}

impl ServeFlags {
    /// The flags whose value is text for one key, each with its key and its
    /// name on the command line, in the order they are applied.
    fn valued(&self) -> [(&'static str, &'static str, Option<&str>); 13] {
        [
            ("server.workers", "--workers", self.workers.as_deref()),
            (
                "limits.max_message_size",
                "--max-message-size",
                self.max_message_size.as_deref(),
            ),
            (
                "limits.max_frame_size",
                "--max-frame-size",
                self.max_frame_size.as_deref(),
            ),
            (
                "limits.max_handshake_bytes",
                "--max-handshake-bytes",
                self.max_handshake_bytes.as_deref(),
            ),
            (
                "limits.max_outbound_bytes",
                "--max-outbound-bytes",
                self.max_outbound_bytes.as_deref(),
            ),
            (
                "limits.max_connections_per_worker",
                "--max-connections-per-worker",
                self.max_connections_per_worker.as_deref(),
            ),
            (
                "timeouts.handshake_timeout",
                "--handshake-timeout",
                self.handshake_timeout.as_deref(),
            ),
            (
                "timeouts.ping_interval",
                "--ping-interval",
                self.ping_interval.as_deref(),
            ),
            (
                "timeouts.idle_timeout",
                "--idle-timeout",
                self.idle_timeout.as_deref(),
            ),
            (
                "timeouts.close_timeout",
                "--close-timeout",
                self.close_timeout.as_deref(),
            ),
            (
                "timeouts.drain_timeout",
                "--drain-timeout",
                self.drain_timeout.as_deref(),
            ),
            (
                "io_uring.uring_entries",
                "--uring-entries",
                self.uring_entries.as_deref(),
            ),
            ("server.backlog", "--backlog", self.backlog.as_deref()),
        ]
    }

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
        if let Some(v) = &self.listen {
            // An address is a string to its key: the text as it came, so
            // `[::1]:80` is never read as a TOML array.
            push("server.listen", Value::String(v.clone()), "--listen");
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
        for (key, flag, text) in self.valued() {
            if let Some(text) = text {
                // What `--set KEY=TEXT` reads: `16MiB` and `30s` stay
                // strings, `16777216` is an integer, `"16 MiB"` a string.
                push(key, keys::parse_text_value(text.trim()), flag);
            }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use ringcast::config::layers::{self, Effective};
    use ringcast::config::profile;

    /// The flags of `ringcast serve ARGS`.
    fn serve(args: &[&str]) -> ServeFlags {
        let argv = ["ringcast", "serve"].iter().chain(args);
        let Command::Serve(flags) = Cli::parse_from(argv).command else {
            panic!("serve")
        };
        *flags
    }

    /// The configuration of `ringcast serve ARGS` over a profile text and an
    /// environment, or the one-line error `ringcast` would print.
    fn load(
        args: &[&str],
        profile: Option<&'static str>,
        env: &[(&str, &str)],
    ) -> Result<Effective, String> {
        let flags = serve(args);
        let mut settings = flags.flag_settings();
        for arg in &flags.select.set {
            settings.push(Setting::parse_set(arg).map_err(|e| e.to_string())?);
        }
        let profile = profile.map(|text| profile::Profile {
            name: "test".into(),
            file: "test.toml".into(),
            text: std::borrow::Cow::Borrowed(text),
        });
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        layers::load(profile, env, &settings).map_err(|e| e.to_string())
    }

    /// `log.level` and `log.format` (each value and where it came from) for
    /// `ringcast serve ARGS` over a profile text and an environment.
    fn log_keys(
        args: &[&str],
        profile: Option<&'static str>,
        env: &[(&str, &str)],
    ) -> Result<[String; 4], String> {
        let e = load(args, profile, env)?;
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
        let flags = serve(&[
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
        let keys: Vec<(String, String)> = flags
            .flag_settings()
            .into_iter()
            .map(|s| (s.key, s.flag))
            .collect();
        let want = [
            ("server.listen", "--listen"),
            ("io_uring.force_epoll", "--force-epoll"),
            ("server.workers", "--workers"),
            ("limits.max_message_size", "--max-message-size"),
            ("timeouts.idle_timeout", "--idle-timeout"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, f)| (k.to_string(), f.to_string()))
            .collect();
        assert_eq!(keys, want);
        let effective = layers::load(None, Vec::new(), &flags.flag_settings()).expect("valid");
        assert_eq!(effective.config.limits.max_message_size, 16 << 20);
        assert_eq!(
            effective.config.timeouts.idle_timeout,
            Duration::from_secs(90)
        );
        assert_eq!(flags.select.set, ["server.workers=3"]);
    }

    /// Each size and duration flag takes every form its key takes, and
    /// gives the value its key gives, whichever way it is written.
    #[test]
    fn size_and_duration_flags_take_the_forms_of_their_keys() {
        let flag_and_key = |flag: &str, key: &str, text: &str| {
            let by_flag = load(&[flag, text], None, &[]).unwrap_or_else(|e| panic!("{e}"));
            let set = format!("{key}={text}");
            let by_set = load(&["--set", &set], None, &[]).unwrap_or_else(|e| panic!("{e}"));
            let (_, k) = keys::find(key).expect("a key");
            let origin = by_flag.origin(key).expect("a key").to_string();
            assert_eq!(origin, format!("flag {flag}"));
            (k.show(&by_flag.config), k.show(&by_set.config))
        };
        let sizes = [
            ("--max-message-size", "limits.max_message_size"),
            ("--max-handshake-bytes", "limits.max_handshake_bytes"),
            ("--max-outbound-bytes", "limits.max_outbound_bytes"),
        ];
        for (flag, key) in sizes {
            for (text, want) in [
                ("512KiB", "\"512 KiB\""),
                ("512 kib", "\"512 KiB\""),
                ("524288", "\"512 KiB\""),
                ("524_288", "\"512 KiB\""),
                ("100000", "100000"),
            ] {
                let (by_flag, by_set) = flag_and_key(flag, key, text);
                assert_eq!(by_flag, want, "{flag} {text}");
                assert_eq!(by_set, want, "--set {key}={text}");
            }
        }
        // The frame limit may not exceed the message limit: raise both.
        let e = load(
            &["--max-message-size", "1GiB", "--max-frame-size", "1 MiB"],
            None,
            &[],
        )
        .expect("valid");
        assert_eq!(
            (
                e.config.limits.max_message_size,
                e.config.limits.max_frame_size
            ),
            (1 << 30, 1 << 20)
        );
        let durations = [
            ("--handshake-timeout", "timeouts.handshake_timeout"),
            ("--ping-interval", "timeouts.ping_interval"),
            ("--idle-timeout", "timeouts.idle_timeout"),
            ("--close-timeout", "timeouts.close_timeout"),
            ("--drain-timeout", "timeouts.drain_timeout"),
        ];
        for (flag, key) in durations {
            for (text, want) in [
                ("45s", "\"45s\""),
                ("45000ms", "\"45s\""),
                ("44s 1000ms", "\"45s\""),
            ] {
                let (by_flag, by_set) = flag_and_key(flag, key, text);
                assert_eq!((&*by_flag, &*by_set), (want, want), "{flag} {text}");
            }
        }
        let (by_flag, by_set) = flag_and_key(
            "--max-connections-per-worker",
            "limits.max_connections_per_worker",
            "50_000",
        );
        assert_eq!((&*by_flag, &*by_set), ("50000", "50000"));
    }

    /// A bad value is refused once, by the key's codec, naming the flag and
    /// the key; the same text through `--set` gets the same reason.
    #[test]
    fn a_bad_flag_value_is_refused_naming_the_flag_and_its_key() {
        let cases = [
            (
                "--max-message-size",
                "limits.max_message_size",
                "16XB",
                "\"16XB\": unknown unit \"XB\" (use B, KiB, MiB, GiB or TiB)",
            ),
            (
                "--max-frame-size",
                "limits.max_frame_size",
                "-1",
                "-1 is negative",
            ),
            (
                "--idle-timeout",
                "timeouts.idle_timeout",
                "30",
                "expected a duration string like \"30s\" or \"250ms\", got the integer 30",
            ),
            (
                "--workers",
                "server.workers",
                "two",
                "expected a non-negative integer, got the string \"two\"",
            ),
            (
                "--listen",
                "server.listen",
                "localhost",
                "\"localhost\" is not an IP:port address",
            ),
        ];
        for (flag, key, text, reason) in cases {
            // `--flag=-1`: clap reads a lone `-1` as an unknown option.
            let arg = format!("{flag}={text}");
            let err = load(&[&arg], None, &[]).expect_err(text);
            assert_eq!(err, format!("{flag}: {key}: {reason}"));
            let set = format!("{key}={text}");
            let err = load(&["--set", &set], None, &[]).expect_err(text);
            assert_eq!(err, format!("--set {set}: {key}: {reason}"));
        }
    }

    /// `--max-message-size` sets its key and nothing else: the frame limit
    /// is whatever `limits.max_frame_size` says, as with `--set`, a profile
    /// or the environment (one rule for every layer).
    #[test]
    fn the_message_size_flag_sets_only_its_key() {
        let settings = serve(&["--max-message-size", "16MiB"]).flag_settings();
        let keys: Vec<&str> = settings.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["limits.max_message_size"]);
        let by_flag = load(&["--max-message-size", "16MiB"], None, &[]).expect("valid");
        let by_set = load(&["--set", "limits.max_message_size=16MiB"], None, &[]).expect("valid");
        let by_env =
            load(&[], None, &[("RINGCAST_LIMITS__MAX_MESSAGE_SIZE", "16MiB")]).expect("valid");
        let frame = |e: &Effective| e.config.limits.max_frame_size;
        assert_eq!(frame(&by_flag), frame(&by_set));
        assert_eq!(frame(&by_flag), frame(&by_env));
    }
}

//! [`ServerConfig::validate`]'s rules, table by table, and the rules
//! between tables.

use std::time::Duration;

use super::secret::Secret;
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
    let mut config = ServerConfig::default();
    config.timeouts.ping_interval = Duration::from_secs(60);
    config.timeouts.idle_timeout = Duration::from_secs(60);
    let err = config.validate().expect_err("refused");
    assert_eq!(
        (err.key, err.pair),
        ("timeouts.ping_interval", Some("timeouts.idle_timeout"))
    );
    assert_eq!(
        err.to_string(),
        "invalid configuration: timeouts.ping_interval: 1m must be shorter than \
         timeouts.idle_timeout (1m)"
    );
}

#[test]
fn frame_limit_cannot_exceed_message_limit() {
    let mut config = ServerConfig::default();
    config.limits.max_frame_size = 2 << 20;
    assert_eq!(key_of(config), Err("limits.max_frame_size"));
}

#[test]
fn sqpoll_and_coop_taskrun_are_refused_together() {
    let mut both = ServerConfig::default();
    both.io_uring.sqpoll = true;
    assert_eq!(key_of(both), Err("io_uring.uring_sqpoll"));
    let mut sqpoll_only = ServerConfig::default();
    sqpoll_only.io_uring.sqpoll = true;
    sqpoll_only.io_uring.coop_taskrun = false;
    assert_eq!(key_of(sqpoll_only), Ok(()));
}

#[test]
fn ranges_are_checked() {
    let cases: Vec<(ServerConfig, &str)> = vec![
        (
            {
                let mut c = ServerConfig::default();
                c.server.workers = 2000;
                c
            },
            "server.workers",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.server.cpus = vec![1, 1];
                c
            },
            "server.cpus",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.server.backlog = 0;
                c
            },
            "server.backlog",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.server.so_sndbuf = 100;
                c
            },
            "server.so_sndbuf",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.entries = 1000;
                c
            },
            "io_uring.uring_entries",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.entries = 65_536;
                c
            },
            "io_uring.uring_entries",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.recv_buffers = 1000;
                c
            },
            "io_uring.recv_buffers",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.recv_buffers = 65_536;
                c
            },
            "io_uring.recv_buffers",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.recv_buffers_initial = 0;
                c
            },
            "io_uring.recv_buffers_initial",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.recv_buffer_size = 100;
                c
            },
            "io_uring.recv_buffer_size",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.cq_entries = 5000;
                c
            },
            "io_uring.uring_cq_entries",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.io_uring.entries = 4096;
                c.io_uring.cq_entries = 2048;
                c
            },
            "io_uring.uring_cq_entries",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.limits.read_buffer_size = 1024;
                c
            },
            "limits.read_buffer_size",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.timeouts.timer_tick = Duration::ZERO;
                c
            },
            "timeouts.timer_tick",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.pubsub.max_publish_bytes = 0;
                c
            },
            "pubsub.max_publish_bytes",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.pubsub.inbox_batch = 100_000;
                c
            },
            "pubsub.inbox_batch",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.pubsub.max_channels = 0;
                c
            },
            "pubsub.max_channels",
        ),
    ];
    for (config, key) in cases {
        assert_eq!(key_of(config), Err(key));
    }
}

#[test]
fn jwt_mode_needs_a_key_and_an_inline_secret_is_checked() {
    let jwt = |key: KeySource, algorithms: Vec<jsonwebtoken::Algorithm>| {
        let mut c = ServerConfig::default();
        c.auth.mode = AuthMode::Jwt;
        c.auth.key = key;
        c.auth.algorithms = algorithms;
        c.validate()
    };
    let err = jwt(KeySource::None, vec![]).expect_err("no key");
    assert_eq!(err.key, "auth.auth_mode");
    assert_eq!(
        err.to_string(),
        "invalid configuration: auth.auth_mode: \"jwt\" needs a key: set auth.jwt_secret, \
         jwt_secret_file, jwt_pem_file or jwt_jwks_file"
    );
    assert_eq!(jwt(KeySource::PemFile("/k.pem".into()), vec![]), Ok(()));
    // An inline secret is checked at once, files at startup.
    let err = jwt(KeySource::Secret(Secret::new("short")), vec![]).expect_err("short");
    assert_eq!(err.key, "auth.jwt_secret");
    assert!(err.reason.contains("at least 32 bytes"), "{err}");
    assert!(
        !err.to_string().contains("short\""),
        "the secret is not echoed"
    );
    let err = jwt(
        KeySource::Secret(Secret::new("x".repeat(32))),
        vec![jsonwebtoken::Algorithm::RS256],
    )
    .expect_err("confusion");
    assert!(err.reason.contains("RS256 needs a public key"), "{err}");
    // Off, an unusable secret is not checked (as before: it is not used).
    let mut off = ServerConfig::default();
    off.auth.key = KeySource::Secret(Secret::new("short"));
    assert_eq!(off.validate(), Ok(()));
}

#[test]
fn the_leeway_is_bounded_in_any_mode() {
    let mut config = ServerConfig::default();
    config.auth.leeway = Duration::from_secs(301);
    assert_eq!(key_of(config), Err("auth.jwt_leeway"));
}

#[test]
fn the_info_claim_is_not_a_claim_the_server_reads() {
    let mut config = ServerConfig::default();
    config.auth.info_claim = "subs".into();
    assert_eq!(key_of(config.clone()), Err("auth.jwt_info_claim"));
    config.auth.info_claim = String::new();
    assert_eq!(config.validate(), Ok(()), "empty: none");
}

#[test]
fn rates_need_a_burst() {
    let mut config = ServerConfig::default();
    config.admission.rate = 100;
    config.admission.burst = 0;
    let err = config.validate().expect_err("no burst");
    assert_eq!(
        (err.key, err.pair),
        (
            "admission.admission_burst",
            Some("admission.admission_rate")
        )
    );
    assert_eq!(
        err.to_string(),
        "invalid configuration: admission.admission_burst: must be at least 1 when \
         admission.admission_rate is set"
    );
    // A burst of 0 is fine while its rate is off.
    let mut off = ServerConfig::default();
    off.limits.publish_burst = 0;
    assert_eq!(off.validate(), Ok(()));
    let cases: Vec<(ServerConfig, &str)> = vec![
        (
            {
                let mut c = ServerConfig::default();
                c.limits.subscribe_rate = 5;
                c.limits.subscribe_burst = 0;
                c
            },
            "limits.subscribe_burst",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.admission.rate_per_ip = 2_000_000_000;
                c
            },
            "admission.admission_rate_per_ip",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.limits.rate_limit_window = Duration::ZERO;
                c
            },
            "limits.rate_limit_window",
        ),
        (
            {
                let mut c = ServerConfig::default();
                c.admission.retry_jitter = Duration::from_secs(7200);
                c
            },
            "admission.retry_jitter",
        ),
    ];
    for (config, key) in cases {
        assert_eq!(key_of(config), Err(key));
    }
    let mut no_close = ServerConfig::default();
    no_close.limits.rate_limit_close_after = 0;
    no_close.limits.rate_limit_window = Duration::ZERO;
    assert_eq!(no_close.validate(), Ok(()));
}

#[test]
fn a_cpu_list_sets_the_worker_count_and_placement() {
    let mut config = ServerConfig::default();
    config.server.cpus = vec![0, 2, 4];
    assert_eq!(config.server.effective_workers(), 3);
    assert_eq!(config.server.cpu_for_worker(4), Some(2));
    assert_eq!(ServerConfig::default().server.cpu_for_worker(0), None);
}

/// One rule for every rate key: `0` is off (its burst is then not read),
/// and a set rate needs a burst of at least 1.
#[test]
fn zero_turns_every_rate_off() {
    type Rate = (&'static str, &'static str, fn(&mut ServerConfig, u32, u32));
    let rates: [Rate; 5] = [
        ("limits.command_rate", "limits.command_burst", |c, r, b| {
            (c.limits.command_rate, c.limits.command_burst) = (r, b)
        }),
        ("limits.publish_rate", "limits.publish_burst", |c, r, b| {
            (c.limits.publish_rate, c.limits.publish_burst) = (r, b)
        }),
        (
            "limits.subscribe_rate",
            "limits.subscribe_burst",
            |c, r, b| (c.limits.subscribe_rate, c.limits.subscribe_burst) = (r, b),
        ),
        (
            "admission.admission_rate",
            "admission.admission_burst",
            |c, r, b| (c.admission.rate, c.admission.burst) = (r, b),
        ),
        (
            "admission.admission_rate_per_ip",
            "admission.admission_burst_per_ip",
            |c, r, b| (c.admission.rate_per_ip, c.admission.burst_per_ip) = (r, b),
        ),
    ];
    for (rate, burst, set) in rates {
        let mut off = ServerConfig::default();
        set(&mut off, 0, 0);
        assert_eq!(key_of(off), Ok(()), "{rate} = 0 is off");
        let mut no_burst = ServerConfig::default();
        set(&mut no_burst, 10, 0);
        let err = no_burst.validate().expect_err(burst);
        assert_eq!((err.key, err.pair), (burst, Some(rate)));
        let mut too_fast = ServerConfig::default();
        set(&mut too_fast, 1_000_000_001, 1);
        assert_eq!(key_of(too_fast), Err(rate));
    }
}

#[test]
fn violations_lists_the_first_of_every_table() {
    let mut config = ServerConfig::default();
    config.io_uring.entries = 1000;
    config.limits.max_outbound_bytes = 1;
    config.pubsub.max_channels = 0;
    config.pubsub.inbox_batch = 0;
    let keys: Vec<&str> = config.violations().iter().map(|e| e.key).collect();
    assert_eq!(
        keys,
        [
            "io_uring.uring_entries",
            "limits.max_outbound_bytes",
            "pubsub.inbox_batch"
        ]
    );
    assert_eq!(config.validate().map_err(|e| e.key), Err(keys[0]));
}

#[test]
fn the_deflate_budget_must_hold_one_inflate_stream() {
    use crate::proto::deflate::{deflate_state_bytes, INFLATE_STATE_BYTES};
    let with = |bytes: u64| {
        let mut c = ServerConfig::default();
        c.deflate.max_memory_per_connection = bytes;
        c
    };
    assert_eq!(key_of(with(0)), Ok(()));
    assert_eq!(key_of(with(INFLATE_STATE_BYTES)), Ok(()));
    let err = with(INFLATE_STATE_BYTES - 1)
        .validate()
        .expect_err("refused");
    assert_eq!(err.key, "deflate.max_memory_per_connection");
    assert!(
        err.to_string()
            .contains("47551 bytes do not hold one inflate stream (47552 B on zlib-rs)"),
        "{err}"
    );
    // The policy the negotiation gets carries it.
    let c = with(1 << 20);
    assert_eq!(c.deflate_policy().max_memory_per_connection, 1 << 20);
    // What a connection keeps between messages under the table.
    let mut c = with(0);
    assert_eq!(
        c.deflate.kept_bytes_per_connection(),
        0,
        "the default insists on no context takeover"
    );
    c.deflate.server_no_context_takeover = false;
    assert!(c.deflate.allows_own_deflater());
    let own = deflate_state_bytes(15) + INFLATE_STATE_BYTES;
    assert_eq!(
        c.deflate.kept_bytes_per_connection(),
        deflate_state_bytes(15)
    );
    c.deflate.client_no_context_takeover = false;
    assert_eq!(c.deflate.kept_bytes_per_connection(), own);
    // A budget one byte short of both streams: the inflater only.
    c.deflate.max_memory_per_connection = own - 1;
    assert!(!c.deflate.allows_own_deflater());
    assert_eq!(c.deflate.kept_bytes_per_connection(), INFLATE_STATE_BYTES);
    // A window under 15 bits: each message compressed on its own.
    c.deflate.max_memory_per_connection = 0;
    c.deflate.server_max_window_bits = 14;
    assert!(!c.deflate.allows_own_deflater());
}

#[test]
fn a_bad_deflate_budget_names_its_file_and_key() {
    let tier = |text: &'static str| super::profile::Profile {
        name: "tier".into(),
        file: "tier.toml".into(),
        text: std::borrow::Cow::Borrowed(text),
    };
    let profile = tier("[deflate]\nenabled = true\nmax_memory_per_connection = \"16 KiB\"\n");
    let err = super::layers::load(Some(profile), Vec::new(), &[]).expect_err("refused");
    assert!(
        err.to_string().starts_with(
            "tier.toml: deflate.max_memory_per_connection: 16384 bytes do not hold one inflate \
             stream"
        ),
        "{err}"
    );
    let profile =
        tier("[deflate]\nmax_memory_per_connection = \"1 MiB\"\nmax_context_connections = 100\n");
    let effective = super::layers::load(Some(profile), Vec::new(), &[]).expect("valid");
    assert_eq!(effective.config.deflate.max_memory_per_connection, 1 << 20);
    assert_eq!(effective.config.deflate.max_context_connections, 100);
    let profile = tier("[deflate]\nmax_context_connections = -1\n");
    let err = super::layers::load(Some(profile), Vec::new(), &[]).expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("tier.toml: deflate.max_context_connections:"),
        "{err}"
    );
}

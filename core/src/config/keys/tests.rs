//! The key table's tests: every key round-trips, values parse by type, and
//! refusals say what was expected.

use std::time::Duration;

use toml::Value;

use super::*;
use crate::config::log::LogFormat;

#[test]
fn every_key_is_unique_and_every_table_is_listed() {
    let mut seen = std::collections::BTreeSet::new();
    for key in KEYS {
        // `api.listen` and `server.listen` share a field name: keys are
        // unique by their dotted name (a key sets one field of its table).
        assert!(seen.insert(key.dotted), "{} twice", key.dotted);
        assert!(TABLES.contains(&key.table), "{}", key.dotted);
        assert_eq!(key.dotted, format!("{}.{}", key.table, key.field));
        assert!(
            key.path.starts_with(&format!("{}.", key.table)),
            "{}",
            key.path
        );
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
    assert_eq!(
        config.auth.key,
        KeySource::Secret(Secret::new("s3cr3t-s3cr3t"))
    );
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
    assert_eq!(config.auth.mode, AuthMode::Jwt);
    assert_eq!(config.auth.algorithms, [Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(config.auth.issuer, "https://id.example.com");
    assert_eq!(config.auth.leeway, Duration::from_secs(60));
    assert_eq!(
        config.auth.key,
        KeySource::PemFile("/etc/ringcast/jwt.pem".into())
    );
    assert!(config
        .admission
        .allowed_origins
        .allows(Some("https://a.example.com")));
    assert!(config
        .admission
        .trusted_proxies
        .trusts([10, 1, 2, 3].into()));
    assert_eq!(
        config.admission.trusted_proxies.as_written(),
        ["127.0.0.1/32", "10.0.0.0/8"]
    );
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
fn prefixed_keys_set_their_section_field_and_log_values_are_checked() {
    let (_, level) = find("log.level").expect("log.level");
    assert_eq!((level.field, level.path), ("level", "log.level"));
    assert_eq!(level.env_var(), "RINGCAST_LOG__LEVEL");
    let (_, entries) = find("io_uring.uring_entries").expect("key");
    assert_eq!(entries.path, "io_uring.entries");
    assert_eq!(entries.env_var(), "RINGCAST_IO_URING__URING_ENTRIES");
    assert_eq!(find("auth.jwt_pem_file").expect("key").1.path, "auth.key");
    let mut config = ServerConfig::default();
    assert_eq!(level.show(&config), "\"info\"");
    level
        .set(
            &mut config,
            &parse_text_value("warn,ringcast::server=debug"),
        )
        .expect("directives");
    assert_eq!(config.log.level.as_str(), "warn,ringcast::server=debug");
    let err = level
        .set(&mut config, &parse_text_value("warning"))
        .expect_err("not a level");
    assert!(err.starts_with("\"warning\" is not a level"), "{err}");
    let (_, format) = find("log.format").expect("log.format");
    format
        .set(&mut config, &parse_text_value("json"))
        .expect("json");
    assert_eq!(config.log.format, LogFormat::Json);
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

/// Values that must parse are refused when they are set, with the reason;
/// nothing downstream parses them again.
#[test]
fn parsed_values_are_refused_when_set() {
    for (dotted, text, why) in [
        (
            "admission.allowed_origins",
            "[\"https://*example.com\"]",
            "misplaced '*'",
        ),
        (
            "admission.trusted_proxies",
            "[\"10.0.0.1/8\"]",
            "did you mean \"10.0.0.0/8\"",
        ),
        (
            "admission.trusted_proxies",
            "[\"localhost\"]",
            "not an IP address",
        ),
        ("auth.jwt_algorithms", "[\"none\"]", "never accepted"),
        ("auth.jwt_algorithms", "[\"HS257\"]", "unknown algorithm"),
        ("auth.jwt_default_subs", "[\"ro*om\"]", "'*'"),
        ("auth.jwt_default_pubs", "[\"user:{id}\"]", "{sub}"),
    ] {
        let (_, key) = find(dotted).expect(dotted);
        let err = key
            .set(&mut ServerConfig::default(), &parse_text_value(text))
            .expect_err(dotted);
        assert!(err.contains(why), "{dotted}: {err}");
    }
}

#[test]
fn key_sources_share_one_field_and_round_trip() {
    let mut config = ServerConfig::default();
    let (_, pem) = find("auth.jwt_pem_file").expect("key");
    let (_, jwks) = find("auth.jwt_jwks_file").expect("key");
    pem.set(&mut config, &parse_text_value("/k.pem"))
        .expect("pem");
    assert_eq!(pem.show(&config), "\"/k.pem\"");
    assert_eq!(jwks.show(&config), "\"\"");
    let err = jwks
        .set(&mut config, &parse_text_value("/k.json"))
        .expect_err("two sources");
    assert_eq!(
        err,
        "set only one key source: auth.jwt_pem_file and auth.jwt_jwks_file are both set"
    );
    // An empty value of another source is no second source.
    jwks.set(&mut config, &parse_text_value("\"\""))
        .expect("empty");
    assert_eq!(config.auth.key, KeySource::PemFile("/k.pem".into()));
}

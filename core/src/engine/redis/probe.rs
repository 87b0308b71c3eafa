//! What `ringcast doctor` asks the configured Redis: does it answer, which
//! version, and is the append-only file on (without it a Redis restart
//! loses every channel's history and epoch, so every resume after it
//! answers `recovered: false`).

use redis::Value;

use super::conn::{Conn, ReadError};
use super::error::EngineError;
use super::settings::RedisSettings;

/// The facts doctor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// `redis_version` from `INFO server`.
    pub version: String,
    /// `aof_enabled:1` in `INFO persistence`.
    pub aof_enabled: bool,
    /// Sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7 and later).
    pub sharded_pubsub: bool,
}

/// Connects with the node's settings (the same login, TLS and timeouts),
/// reads `INFO server` and `INFO persistence`, and hangs up.
pub fn probe(settings: &RedisSettings) -> Result<ServerFacts, EngineError> {
    let mut conn = Conn::connect(settings)?;
    let unavailable = |reason: String| EngineError::Unavailable {
        url: settings.url.redacted().to_string(),
        reason,
    };
    let mut out = Vec::new();
    redis::cmd("INFO")
        .arg("server")
        .write_packed_command(&mut out);
    redis::cmd("INFO")
        .arg("persistence")
        .write_packed_command(&mut out);
    conn.send(&out).map_err(unavailable)?;
    let mut texts = Vec::new();
    for _ in 0..2 {
        let reply = conn.read().map_err(|e| {
            unavailable(match e {
                ReadError::Timeout => "no reply to INFO within command_timeout".into(),
                ReadError::Broken(reason) => reason,
            })
        })?;
        texts.push(
            info_text(&reply)
                .ok_or_else(|| EngineError::Protocol(format!("INFO answered {reply:?}")))?,
        );
    }
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_string)
    };
    let version = field(&texts[0], "redis_version")
        .ok_or_else(|| EngineError::Protocol("INFO server has no redis_version".into()))?;
    Ok(ServerFacts {
        sharded_pubsub: conn.version_major >= 7,
        version,
        aof_enabled: field(&texts[1], "aof_enabled").as_deref() == Some("1"),
    })
}

fn info_text(reply: &Value) -> Option<String> {
    match reply {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

//! The Lua scripts the engine runs, how they are invoked and how their
//! replies decode.
//!
//! Both run atomically inside Redis, which is what makes the engine correct
//! across nodes: `publish.lua` numbers, stores and broadcasts one message
//! with no other command in between (so offsets are gapless and a push is
//! never seen before its history entry exists); `history.lua` reads epoch,
//! top offset and history as one snapshot. They are invoked by SHA-1
//! (`EVALSHA`, a few bytes per publish); a server that answers `NOSCRIPT`
//! (restarted, or `SCRIPT FLUSH`) gets the same invocation as `EVAL` with the
//! source, which also caches it again.
//!
//! Redis commands per publish, counted by `INFO commandstats` (which counts
//! the commands a script calls): `EVALSHA`, `HGET`, `HINCRBY`, `EXPIRE`,
//! `TIME`, `XADD`, `EXPIRE`, `SPUBLISH` — 8, whatever the number of
//! subscribers and nodes (7 with history off).

use bytes::Bytes;
use redis::Value;
use sha1::{Digest, Sha1};

use super::error::EngineError;

pub(crate) const PUBLISH_LUA: &str = include_str!("lua/publish.lua");
pub(crate) const HISTORY_LUA: &str = include_str!("lua/history.lua");
pub(crate) const PRESENCE_LUA: &str = include_str!("lua/presence.lua");
pub(crate) const NODES_LUA: &str = include_str!("lua/nodes.lua");

/// A script's source and its SHA-1 in hex, as `EVALSHA` wants it.
pub(crate) struct Script {
    pub(crate) source: &'static str,
    pub(crate) sha: String,
}

impl Script {
    pub(crate) fn new(source: &'static str) -> Self {
        let digest = Sha1::digest(source.as_bytes());
        let sha = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self { source, sha }
    }

    /// `EVALSHA sha 2 key1 key2 args…`, or `EVAL source …` when `by_source`.
    pub(crate) fn invocation(&self, by_source: bool, keys: [&str; 2]) -> redis::Cmd {
        let mut cmd = if by_source {
            let mut c = redis::cmd("EVAL");
            c.arg(self.source);
            c
        } else {
            let mut c = redis::cmd("EVALSHA");
            c.arg(&self.sha);
            c
        };
        cmd.arg(2).arg(keys[0]).arg(keys[1]);
        cmd
    }
}

/// A fresh random epoch, used only if the channel has none in Redis yet.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// What a successful publish returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub offset: u64,
    pub epoch: String,
}

/// `history.lua`'s reply before the recovery rule is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub epoch: String,
    pub top: u64,
    /// `(offset, payload)`, increasing offsets, from the wanted offset on.
    pub entries: Vec<(u64, Bytes)>,
}

fn unexpected(what: &str, v: &Value) -> EngineError {
    EngineError::Protocol(format!("{what}: {v:?}"))
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Decodes `{offset, epoch}`.
pub(crate) fn parse_published(v: &Value) -> Result<Published, EngineError> {
    match v {
        Value::Array(items) if items.len() == 2 => Ok(Published {
            offset: as_u64(&items[0]).ok_or_else(|| unexpected("publish offset", v))?,
            epoch: as_string(&items[1]).ok_or_else(|| unexpected("publish epoch", v))?,
        }),
        Value::ServerError(e) => Err(EngineError::Server(e.to_string())),
        _ => Err(unexpected("publish reply", v)),
    }
}

/// Decodes `presence.lua`'s read: `{member, user, …}`.
pub(crate) fn parse_presence(v: &Value) -> Result<Vec<(String, String)>, EngineError> {
    let flat = match v {
        Value::Array(flat) if flat.len() % 2 == 0 => flat,
        Value::ServerError(e) => return Err(EngineError::Server(e.to_string())),
        _ => return Err(unexpected("presence reply", v)),
    };
    flat.chunks_exact(2)
        .map(|pair| {
            let member =
                as_string(&pair[0]).ok_or_else(|| unexpected("presence member", &pair[0]))?;
            let user = as_string(&pair[1]).ok_or_else(|| unexpected("presence user", &pair[1]))?;
            Ok((member, user))
        })
        .collect()
}

/// One node core's record in `nodes.lua`'s read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// `NODE-CORE`.
    pub member: String,
    /// The JSON the core wrote.
    pub record: String,
    /// `(channel, subscribers)`, when asked for.
    pub channels: Vec<(String, u64)>,
}

/// Decodes `nodes.lua`'s read: `{{member, record, {channel, count, …}}, …}`.
pub(crate) fn parse_nodes(v: &Value) -> Result<Vec<NodeRecord>, EngineError> {
    let rows = match v {
        Value::Array(rows) => rows,
        Value::ServerError(e) => return Err(EngineError::Server(e.to_string())),
        _ => return Err(unexpected("nodes reply", v)),
    };
    rows.iter()
        .map(|row| {
            let Value::Array(items) = row else {
                return Err(unexpected("nodes row", row));
            };
            let (member, record, counts) = match items.as_slice() {
                [m, r, Value::Array(c)] if c.len() % 2 == 0 => (m, r, c),
                _ => return Err(unexpected("nodes row", row)),
            };
            let channels = counts
                .chunks_exact(2)
                .map(|pair| {
                    let name =
                        as_string(&pair[0]).ok_or_else(|| unexpected("nodes channel", &pair[0]))?;
                    let n = as_u64(&pair[1]).ok_or_else(|| unexpected("nodes count", &pair[1]))?;
                    Ok((name, n))
                })
                .collect::<Result<_, EngineError>>()?;
            Ok(NodeRecord {
                member: as_string(member).ok_or_else(|| unexpected("nodes member", member))?,
                record: as_string(record).ok_or_else(|| unexpected("nodes record", record))?,
                channels,
            })
        })
        .collect()
}

/// Decodes `{epoch, top, {offset, payload, …}}`.
pub(crate) fn parse_snapshot(v: &Value) -> Result<Snapshot, EngineError> {
    let items = match v {
        Value::Array(items) if items.len() == 3 => items,
        Value::ServerError(e) => return Err(EngineError::Server(e.to_string())),
        _ => return Err(unexpected("history reply", v)),
    };
    let epoch = as_string(&items[0]).ok_or_else(|| unexpected("history epoch", v))?;
    let top = as_u64(&items[1]).ok_or_else(|| unexpected("history top", v))?;
    let flat = match &items[2] {
        Value::Array(flat) if flat.len() % 2 == 0 => flat,
        other => return Err(unexpected("history entries", other)),
    };
    let mut entries = Vec::with_capacity(flat.len() / 2);
    for pair in flat.chunks_exact(2) {
        let offset = as_u64(&pair[0]).ok_or_else(|| unexpected("entry offset", &pair[0]))?;
        let payload = match &pair[1] {
            Value::BulkString(b) => Bytes::copy_from_slice(b),
            other => return Err(unexpected("entry payload", other)),
        };
        entries.push((offset, payload));
    }
    Ok(Snapshot {
        epoch,
        top,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn sha_is_the_hex_sha1_of_the_source() {
        let script = Script::new("return 1");
        // sha1("return 1"), as SCRIPT LOAD reports it.
        assert_eq!(script.sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        let packed = script.invocation(false, ["a", "b"]).get_packed_command();
        assert!(packed.starts_with(b"*5\r\n$7\r\nEVALSHA\r\n$40\r\n"));
    }

    #[test]
    fn decodes_replies_and_refuses_odd_shapes() {
        let published = Value::Array(vec![Value::Int(7), bulk("ab")]);
        assert_eq!(
            parse_published(&published).expect("test step"),
            Published {
                offset: 7,
                epoch: "ab".into()
            }
        );
        assert!(parse_published(&Value::Array(vec![Value::Int(-1), bulk("ab")])).is_err());
        let snap = Value::Array(vec![
            bulk("ab"),
            Value::Int(9),
            Value::Array(vec![bulk("8"), bulk("x"), bulk("9"), bulk("y")]),
        ]);
        let snap = parse_snapshot(&snap).expect("test step");
        assert_eq!((snap.epoch.as_str(), snap.top), ("ab", 9));
        assert_eq!(snap.entries[1], (9, Bytes::from_static(b"y")));
        let odd = Value::Array(vec![
            bulk("ab"),
            Value::Int(9),
            Value::Array(vec![bulk("8")]),
        ]);
        assert!(parse_snapshot(&odd).is_err());
    }
}

//! The client side of ringcast's wire protocol v1 (`docs/protocol.md`):
//! the commands a subscriber and a publisher send, and the server's
//! replies, errors and pushes as they come back.
//!
//! Commands are written straight into the caller's buffer (no `serde`
//! round trip on the send path); server messages are parsed with borrowed
//! `serde_json` structs, so a push costs one pass over its bytes and no
//! allocation. Channel names and payloads written here are the generator's
//! own (`A-Z a-z 0-9 : _ - .` and hex), so they need no JSON escaping;
//! [`is_plain`] checks that.

use serde::Deserialize;
use serde_json::value::RawValue;

/// A message from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    /// `{"channel":..,"offset":N,"epoch":..,"data":..}`; `data` is raw JSON.
    Push {
        channel: &'a str,
        offset: u64,
        epoch: &'a str,
        data: &'a str,
    },
    /// `{"id":..,"result":{..}}`; `result` is raw JSON.
    Reply { id: Option<u64>, result: &'a str },
    /// `{"id":..,"error":{"code":..}}`.
    Error { id: Option<u64>, code: &'a str },
}

#[derive(Deserialize)]
struct Incoming<'a> {
    id: Option<u64>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<ErrorBody<'a>>,
    #[serde(borrow)]
    channel: Option<&'a str>,
    offset: Option<u64>,
    #[serde(borrow)]
    epoch: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    code: &'a str,
}

/// The `result` of a subscribe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subscribed<'a> {
    pub epoch: &'a str,
    pub offset: u64,
    pub recovered: bool,
}

/// The `result` of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Published {
    pub offset: u64,
}

/// Parses one text message from the server; `None` when it is none of the
/// three shapes.
pub fn parse_server_message(text: &str) -> Option<ServerMessage<'_>> {
    let m: Incoming<'_> = serde_json::from_str(text).ok()?;
    if let Some(error) = m.error {
        return Some(ServerMessage::Error {
            id: m.id,
            code: error.code,
        });
    }
    if let Some(result) = m.result {
        return Some(ServerMessage::Reply {
            id: m.id,
            result: result.get(),
        });
    }
    match (m.channel, m.offset, m.epoch, m.data) {
        (Some(channel), Some(offset), Some(epoch), Some(data)) => Some(ServerMessage::Push {
            channel,
            offset,
            epoch,
            data: data.get(),
        }),
        _ => None,
    }
}

/// Parses a subscribe reply's `result`.
pub fn parse_subscribed(result: &str) -> Option<Subscribed<'_>> {
    serde_json::from_str(result).ok()
}

/// Parses a publish reply's `result`.
pub fn parse_published(result: &str) -> Option<Published> {
    serde_json::from_str(result).ok()
}

/// True when `s` can go inside a JSON string as is (and is a valid channel
/// name or generator payload): ASCII letters, digits and `:_-.@/ `.
pub fn is_plain(s: &[u8]) -> bool {
    s.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b":_-.@/ ".contains(&b))
}

/// `{"id":ID,"op":"subscribe","channel":"CH"}`, with
/// `,"since":{"epoch":"E","offset":N}` when resuming.
pub fn encode_subscribe_into(
    out: &mut Vec<u8>,
    id: u64,
    channel: &str,
    since: Option<(&str, u64)>,
) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    out.extend_from_slice(b",\"op\":\"subscribe\",\"channel\":\"");
    out.extend_from_slice(channel.as_bytes());
    out.push(b'"');
    if let Some((epoch, offset)) = since {
        out.extend_from_slice(b",\"since\":{\"epoch\":\"");
        // The epoch came from the server as a JSON string body: copy as is.
        out.extend_from_slice(epoch.as_bytes());
        out.extend_from_slice(b"\",\"offset\":");
        out.extend_from_slice(itoa::Buffer::new().format(offset).as_bytes());
        out.push(b'}');
    }
    out.push(b'}');
}

/// `{"id":ID,"op":"publish","channel":"CH","data":"PAYLOAD"}` (`payload`
/// must be [`is_plain`]).
pub fn encode_publish_into(out: &mut Vec<u8>, id: u64, channel: &str, payload: &[u8]) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    out.extend_from_slice(b",\"op\":\"publish\",\"channel\":\"");
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(b"\",\"data\":\"");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\"}");
}

/// The bytes of a JSON string value (`"abc"` → `abc`); `None` when `raw` is
/// not a string without escapes.
pub fn plain_string(raw: &str) -> Option<&[u8]> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_the_documented_json() {
        let mut out = Vec::new();
        encode_subscribe_into(&mut out, 1, "room:1", None);
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{"id":1,"op":"subscribe","channel":"room:1"}"#
        );
        out.clear();
        encode_subscribe_into(&mut out, 7, "room:1", Some(("e7c1", 41)));
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{"id":7,"op":"subscribe","channel":"room:1","since":{"epoch":"e7c1","offset":41}}"#
        );
        out.clear();
        encode_publish_into(&mut out, 3, "room:1", b"0001 x");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["op"], "publish");
        assert_eq!(v["data"], "0001 x");
        assert_eq!(v["id"], 3);
    }

    #[test]
    fn server_messages_parse_by_shape() {
        assert_eq!(
            parse_server_message(r#"{"channel":"room:1","offset":42,"epoch":"e7","data":"abc"}"#),
            Some(ServerMessage::Push {
                channel: "room:1",
                offset: 42,
                epoch: "e7",
                data: "\"abc\""
            })
        );
        let reply = parse_server_message(
            r#"{"id":1,"result":{"epoch":"e7","offset":41,"recovered":true}}"#,
        );
        let Some(ServerMessage::Reply {
            id: Some(1),
            result,
        }) = reply
        else {
            panic!("{reply:?}");
        };
        assert_eq!(
            parse_subscribed(result),
            Some(Subscribed {
                epoch: "e7",
                offset: 41,
                recovered: true
            })
        );
        let Some(ServerMessage::Reply { result, .. }) =
            parse_server_message(r#"{"id":9,"result":{"offset":5}}"#)
        else {
            panic!("publish reply");
        };
        assert_eq!(parse_published(result), Some(Published { offset: 5 }));
        assert_eq!(
            parse_server_message(
                r#"{"id":4,"error":{"code":"rate_limited","message":"slow down"}}"#
            ),
            Some(ServerMessage::Error {
                id: Some(4),
                code: "rate_limited"
            })
        );
        assert_eq!(parse_server_message("[1]"), None);
        assert_eq!(parse_server_message(r#"{"channel":"x"}"#), None);
    }

    #[test]
    fn plain_strings() {
        assert_eq!(plain_string("\"ab c\""), Some(&b"ab c"[..]));
        assert_eq!(plain_string("\"a\\\"b\""), None);
        assert_eq!(plain_string("12"), None);
        assert!(is_plain(b"load:12"));
        assert!(!is_plain(b"a\"b"));
    }
}

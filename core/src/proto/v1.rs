//! Wire protocol v1 on `GET /ws`: JSON commands in, JSON replies and pushes
//! out, each in one text frame (see `docs/protocol.md`).
//!
//! Parsing never gives up on a command whose JSON is valid: a wrong field
//! still yields the command's `id`, so the error reply can carry it. `data`
//! is kept as raw JSON text ([`RawValue`]): the server never rebuilds it, it
//! copies the client's bytes into the push once. serde_json skips raw values
//! with an explicit stack rather than recursion, so deeply nested `data` costs
//! only its bytes (bounded by `max_publish_bytes`).
//!
//! The encoders write complete server frames (header + JSON) so that a push
//! is built once and the same bytes go to every subscriber.

use std::fmt;

use bytes::{Buf, Bytes};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::frame::{FrameHeader, HeaderBytes, OpCode};

/// Stable error codes of error replies. Clients match on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The text frame is not valid JSON (or not a JSON object).
    InvalidJson,
    /// A field is missing or of the wrong type.
    InvalidCommand,
    /// `op` is not one of the commands.
    UnknownOp,
    /// The channel name is empty, too long, or has a character outside the allowed set.
    InvalidChannel,
    /// The connection already has `max_subscriptions_per_connection` channels.
    TooManySubscriptions,
    AlreadySubscribed,
    NotSubscribed,
    /// `data` is larger than `max_publish_bytes`.
    PublishTooLarge,
    /// More commands than `command_rate` per second (plus burst).
    RateLimited,
    /// The server holds `max_channels` channels and this would be a new one.
    TooManyChannels,
    /// The owner core's inbox is full; the publish was not accepted, retry.
    Overloaded,
    /// `/ws` speaks JSON text frames only.
    BinaryNotSupported,
    /// The token's claims do not allow this subscribe or publish.
    Forbidden,
    /// A `refresh` token was refused (the message says why).
    Unauthorized,
    /// The engine's store (Redis) did not answer: the publish was not
    /// acknowledged (it may or may not have been stored), or the subscribe
    /// could not be served. Retry.
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidCommand => "invalid_command",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::InvalidChannel => "invalid_channel",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::AlreadySubscribed => "already_subscribed",
            ErrorCode::NotSubscribed => "not_subscribed",
            ErrorCode::PublishTooLarge => "publish_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyChannels => "too_many_channels",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The default human text of the error message.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "the frame is not a JSON object",
            ErrorCode::InvalidCommand => "a field is missing or has the wrong type",
            ErrorCode::UnknownOp => "op is not a v1 command (docs/protocol.md lists them)",
            ErrorCode::InvalidChannel => {
                "channel names are 1..max bytes of A-Z a-z 0-9 _ - : . @ /"
            }
            ErrorCode::TooManySubscriptions => "this connection has too many subscriptions",
            ErrorCode::AlreadySubscribed => "already subscribed to this channel",
            ErrorCode::NotSubscribed => "not subscribed to this channel",
            ErrorCode::PublishTooLarge => "data is larger than the publish limit",
            ErrorCode::RateLimited => "too many commands per second",
            ErrorCode::TooManyChannels => "the server holds its maximum number of channels",
            ErrorCode::Overloaded => {
                "the server is overloaded; the publish was not accepted, retry"
            }
            ErrorCode::BinaryNotSupported => "this endpoint takes JSON text frames only",
            ErrorCode::Forbidden => "the token does not allow this channel",
            ErrorCode::Unauthorized => "the token was refused",
            ErrorCode::Unavailable => "the channel store is unavailable; not acknowledged, retry",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resume point: the last message the client saw.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    pub epoch: String,
    pub offset: u64,
}

#[derive(Debug, Clone, Copy)]
pub enum Command<'a> {
    Subscribe {
        channel: &'a str,
        since: Option<&'a RawValue>,
    },
    Unsubscribe {
        channel: &'a str,
    },
    Publish {
        channel: &'a str,
        data: &'a RawValue,
    },
    /// Debug: which worker serves this connection, and which owns `channel`.
    Info {
        channel: Option<&'a str>,
    },
    /// A new token for this connection, before the current one expires.
    Refresh {
        token: &'a str,
    },
    /// The channel's last `limit` messages, or those after `since`.
    History {
        channel: &'a str,
        since: Option<&'a RawValue>,
        limit: Option<u64>,
    },
    /// Who is subscribed to the channel (`stats`: only the counts).
    Presence {
        channel: &'a str,
        stats: bool,
    },
}

/// A parsed command with its optional `id`.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub id: Option<u64>,
    pub command: Command<'a>,
}

/// A command that cannot be run, with the `id` when it was readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandError {
    pub id: Option<u64>,
    pub code: ErrorCode,
}

/// The fields of a command, each kept raw so one bad field does not hide `id`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    op: Option<&'a RawValue>,
    #[serde(borrow)]
    channel: Option<&'a RawValue>,
    #[serde(borrow)]
    since: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    token: Option<&'a RawValue>,
    #[serde(borrow)]
    limit: Option<&'a RawValue>,
}

/// A JSON string field without escapes, borrowed from the frame. Channel names
/// and ops have no characters that need escaping, so an escaped one is invalid.
fn plain_str(raw: &RawValue) -> Option<&str> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['\\', '"'])).then_some(inner)
}

/// Parses one command frame. Only a JSON object is a command: anything
/// else, even valid JSON, is `invalid_json` (serde would otherwise read an
/// array positionally into [`Envelope`]'s fields, so `[1,"subscribe","a",
/// null,null,null]` would subscribe).
pub fn parse_command(text: &str) -> Result<Request<'_>, CommandError> {
    // JSON's insignificant whitespace (RFC 8259 §2) may precede the object.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(CommandError {
            id: None,
            code: ErrorCode::InvalidJson,
        });
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|_| CommandError {
        id: None,
        code: ErrorCode::InvalidJson,
    })?;
    let invalid = |id, code| CommandError { id, code };
    let id = match envelope.id {
        None => None,
        Some(raw) => match raw.get().parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => return Err(invalid(None, ErrorCode::InvalidCommand)),
        },
    };
    let op = envelope
        .op
        .and_then(plain_str)
        .ok_or(invalid(id, ErrorCode::InvalidCommand))?;
    let channel = match envelope.channel {
        None => None,
        Some(raw) => Some(plain_str(raw).ok_or(invalid(id, ErrorCode::InvalidChannel))?),
    };
    let need_channel = || channel.ok_or(invalid(id, ErrorCode::InvalidCommand));
    let command = match op {
        "subscribe" => Command::Subscribe {
            channel: need_channel()?,
            since: envelope.since,
        },
        "unsubscribe" => Command::Unsubscribe {
            channel: need_channel()?,
        },
        "publish" => Command::Publish {
            channel: need_channel()?,
            data: envelope
                .data
                .ok_or(invalid(id, ErrorCode::InvalidCommand))?,
        },
        "info" => Command::Info { channel },
        "refresh" => Command::Refresh {
            token: envelope
                .token
                .and_then(plain_str)
                .ok_or(invalid(id, ErrorCode::InvalidCommand))?,
        },
        "history" => Command::History {
            channel: need_channel()?,
            since: envelope.since,
            limit: match envelope.limit {
                None => None,
                Some(raw) => Some(
                    raw.get()
                        .parse::<u64>()
                        .map_err(|_| invalid(id, ErrorCode::InvalidCommand))?,
                ),
            },
        },
        "presence" => Command::Presence {
            channel: need_channel()?,
            stats: false,
        },
        "presence_stats" => Command::Presence {
            channel: need_channel()?,
            stats: true,
        },
        _ => return Err(invalid(id, ErrorCode::UnknownOp)),
    };
    Ok(Request { id, command })
}

/// Parses a `since` object (kept raw by [`parse_command`]).
pub fn parse_since(raw: &RawValue) -> Option<Since> {
    serde_json::from_str(raw.get()).ok()
}

/// Checks a channel name: 1..=`max_len` bytes of `A-Z a-z 0-9 _ - : . @ /`.
pub fn valid_channel(name: &str, max_len: usize) -> bool {
    !name.is_empty()
        && name.len() <= max_len
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-:.@/".contains(&b))
}

/// The header of an unmasked, final text frame of `payload_len` bytes.
fn text_header(payload_len: usize) -> HeaderBytes {
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Text,
        mask: None,
        payload_len: payload_len as u64,
    }
    .encode()
}

/// Builds one unmasked text frame whose payload is `parts` concatenated, in
/// exactly one allocation: the frame length is known before anything is
/// written, so the Vec is allocated at that capacity, the header goes in
/// first and the parts after it. `Bytes::from(Vec)` takes a Vec whose length
/// equals its capacity without copying and without allocating (bytes 1.x;
/// with spare capacity it would allocate its shared refcount block up front).
/// The encoders below use this: their JSON is a handful of known slices.
pub fn text_frame_parts(parts: &[&[u8]]) -> Bytes {
    let payload_len: usize = parts.iter().map(|part| part.len()).sum();
    let header = text_header(payload_len);
    let mut frame = Vec::with_capacity(header.as_slice().len() + payload_len);
    frame.extend_from_slice(header.as_slice());
    for part in parts {
        frame.extend_from_slice(part);
    }
    debug_assert_eq!(frame.len(), frame.capacity());
    Bytes::from(frame)
}

/// Builds one unmasked text frame whose payload `write` appends, for a
/// payload whose length is not known up front ([`text_frame_parts`] is the
/// cheaper choice when it is). One Vec, no second copy: room for the longest
/// unmasked header is reserved at the front, and once the payload is written
/// the header goes right before it. The unused front bytes stay in the
/// allocation but not in the returned `Bytes`.
pub fn text_frame(write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    const ROOM: usize = 10;
    let mut buf = Vec::with_capacity(128);
    buf.resize(ROOM, 0);
    write(&mut buf);
    let header = text_header(buf.len() - ROOM);
    let start = ROOM - header.as_slice().len();
    buf[start..ROOM].copy_from_slice(header.as_slice());
    let mut frame = Bytes::from(buf);
    // `advance` moves the start in place; `slice` would clone, and the first
    // clone of a Bytes made from a Vec allocates its shared refcount block.
    frame.advance(start);
    frame
}

/// One reply frame: `{`, then `"id":N,` when there is an id, then `rest`
/// (at most [`REPLY_PARTS`] slices), in one allocation.
fn reply_frame(id: Option<u64>, rest: &[&[u8]]) -> Bytes {
    let mut digits = itoa::Buffer::new();
    let (id_key, id_value, id_comma): (&[u8], &[u8], &[u8]) = match id {
        Some(id) => (b"\"id\":", digits.format(id).as_bytes(), b","),
        None => (b"", b"", b""),
    };
    let mut parts: [&[u8]; 4 + REPLY_PARTS] = [b""; 4 + REPLY_PARTS];
    parts[..4].copy_from_slice(&[b"{", id_key, id_value, id_comma]);
    parts[4..4 + rest.len()].copy_from_slice(rest);
    text_frame_parts(&parts[..4 + rest.len()])
}

/// The most slices a reply passes to [`reply_frame`] after its id.
const REPLY_PARTS: usize = 8;

/// `{"id":..,"error":{"code":"..","message":".."}}`
pub fn error_frame(id: Option<u64>, code: ErrorCode) -> Bytes {
    reply_frame(
        id,
        &[
            b"\"error\":{\"code\":\"",
            code.as_str().as_bytes(),
            b"\",\"message\":\"",
            code.message().as_bytes(),
            b"\"}}",
        ],
    )
}

/// `{"id":..,"result":{"epoch":"..","offset":N,"recovered":bool}}`
pub fn subscribed_frame(id: Option<u64>, epoch: &str, offset: u64, recovered: bool) -> Bytes {
    let mut offset_digits = itoa::Buffer::new();
    reply_frame(
        id,
        &[
            b"\"result\":{\"epoch\":\"",
            epoch.as_bytes(),
            b"\",\"offset\":",
            offset_digits.format(offset).as_bytes(),
            if recovered {
                b",\"recovered\":true}}"
            } else {
                b",\"recovered\":false}}"
            },
        ],
    )
}

/// An error reply whose message is `message` (plain ASCII, no quotes:
/// the fixed reasons of the auth module).
pub fn error_frame_with(id: Option<u64>, code: ErrorCode, message: &str) -> Bytes {
    // serde_json escapes whatever the message holds.
    let message = serde_json::to_string(message).unwrap_or_default();
    reply_frame(
        id,
        &[
            b"\"error\":{\"code\":\"",
            code.as_str().as_bytes(),
            b"\",\"message\":",
            message.as_bytes(),
            b"}}",
        ],
    )
}

/// `{"id":..,"result":{"expires_at":N}}` (`null` for a token without `exp`).
pub fn refreshed_frame(id: Option<u64>, expires_at: Option<u64>) -> Bytes {
    let mut at_digits = itoa::Buffer::new();
    reply_frame(
        id,
        &[
            b"\"result\":{\"expires_at\":",
            match expires_at {
                Some(at) => at_digits.format(at).as_bytes(),
                None => b"null",
            },
            b"}}",
        ],
    )
}

/// `{"id":..,"result":{"offset":N}}`
pub fn published_frame(id: Option<u64>, offset: u64) -> Bytes {
    let mut offset_digits = itoa::Buffer::new();
    reply_frame(
        id,
        &[
            b"\"result\":{\"offset\":",
            offset_digits.format(offset).as_bytes(),
            b"}}",
        ],
    )
}

/// `{"id":..,"result":JSON}`: `json` must be one valid JSON value.
pub fn result_frame(id: Option<u64>, json: &[u8]) -> Bytes {
    reply_frame(id, &[b"\"result\":", json, b"}"])
}

/// The payload of a frame this server encoded (a push kept in history),
/// without its header; the whole of `frame` when it does not parse.
pub fn frame_payload(frame: &Bytes) -> Bytes {
    match FrameHeader::parse(frame) {
        Ok(Some((_, len))) => frame.slice(len..),
        _ => frame.clone(),
    }
}

/// `{"id":..,"result":{}}`
pub fn ok_frame(id: Option<u64>) -> Bytes {
    reply_frame(id, &[b"\"result\":{}}"])
}

/// `{"id":..,"result":{"worker":W,"workers":N,"owner":O}}` (owner only with a channel).
pub fn info_frame(id: Option<u64>, worker: usize, workers: usize, owner: Option<usize>) -> Bytes {
    let mut worker_digits = itoa::Buffer::new();
    let mut workers_digits = itoa::Buffer::new();
    let mut owner_digits = itoa::Buffer::new();
    let (owner_key, owner_value): (&[u8], &[u8]) = match owner {
        Some(owner) => (b",\"owner\":", owner_digits.format(owner).as_bytes()),
        None => (b"", b""),
    };
    reply_frame(
        id,
        &[
            b"\"result\":{\"worker\":",
            worker_digits.format(worker).as_bytes(),
            b",\"workers\":",
            workers_digits.format(workers).as_bytes(),
            owner_key,
            owner_value,
            b"}}",
        ],
    )
}

/// The push every subscriber gets: `{"channel":..,"offset":N,"epoch":..,"data":..}`.
/// `channel` must have passed [`valid_channel`] (it is written unescaped) and
/// `data` is valid JSON (it came out of the parser). One allocation of
/// exactly the frame's length (see [`text_frame_parts`]).
pub fn push_frame(channel: &str, offset: u64, epoch: &str, data: &str) -> Bytes {
    let mut offset_digits = itoa::Buffer::new();
    text_frame_parts(&[
        b"{\"channel\":\"",
        channel.as_bytes(),
        b"\",\"offset\":",
        offset_digits.format(offset).as_bytes(),
        b",\"epoch\":\"",
        epoch.as_bytes(),
        b"\",\"data\":",
        data.as_bytes(),
        b"}",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::decoder::{Decoder, Event, Limits, Role};

    fn payload(frame: &Bytes) -> serde_json::Value {
        let (header, len) = FrameHeader::parse(frame).expect("valid").expect("complete");
        assert_eq!(header.opcode, OpCode::Text);
        assert!(header.fin);
        assert_eq!(header.payload_len as usize, frame.len() - len);
        serde_json::from_slice(&frame[len..]).expect("valid JSON")
    }

    #[test]
    fn parses_each_op() {
        let r = parse_command(r#"{"id":1,"op":"subscribe","channel":"room:1"}"#).expect("ok");
        assert_eq!(r.id, Some(1));
        assert!(matches!(
            r.command,
            Command::Subscribe {
                channel: "room:1",
                since: None
            }
        ));
        let r = parse_command(
            r#"{"id":1,"op":"subscribe","channel":"room:1","since":{"epoch":"e7c1","offset":41}}"#,
        )
        .expect("ok");
        let Command::Subscribe {
            since: Some(since), ..
        } = r.command
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            parse_since(since),
            Some(Since {
                epoch: "e7c1".into(),
                offset: 41
            })
        );
        let r = parse_command(r#"{"op":"unsubscribe","channel":"a"}"#).expect("ok");
        assert!(matches!(
            r,
            Request {
                id: None,
                command: Command::Unsubscribe { channel: "a" }
            }
        ));
        let r = parse_command(r#"{"id":3,"op":"publish","channel":"a","data":{"x":[1,2]}}"#)
            .expect("ok");
        let Command::Publish { data, .. } = r.command else {
            panic!()
        };
        assert_eq!(data.get(), r#"{"x":[1,2]}"#);
    }

    #[test]
    fn bad_commands_keep_their_id_when_readable() {
        let err = |text| parse_command(text).expect_err(text);
        assert_eq!(
            err("not json"),
            CommandError {
                id: None,
                code: ErrorCode::InvalidJson
            }
        );
        assert_eq!(
            err("[1,2]"),
            CommandError {
                id: None,
                code: ErrorCode::InvalidJson
            }
        );
        // Valid JSON that is not an object is not a command, even when an
        // array has as many elements as a command has fields.
        for text in [
            r#"[1,"subscribe","a",null,null,null]"#,
            r#" [4, "refresh", null, null, null, "t"]"#,
            r#""subscribe""#,
            "42",
            "null",
            "true",
            "",
            "  ",
        ] {
            assert_eq!(
                err(text),
                CommandError {
                    id: None,
                    code: ErrorCode::InvalidJson
                },
                "{text:?}"
            );
        }
        // Whitespace before the object is JSON's, and allowed.
        let r = parse_command(" \t\r\n{\"id\":2,\"op\":\"info\"}").expect("ok");
        assert!(matches!(
            r,
            Request {
                id: Some(2),
                command: Command::Info { channel: None }
            }
        ));
        assert_eq!(
            err(r#"{"id":4,"op":"dance"}"#),
            CommandError {
                id: Some(4),
                code: ErrorCode::UnknownOp
            }
        );
        assert_eq!(
            err(r#"{"id":5,"op":"subscribe"}"#),
            CommandError {
                id: Some(5),
                code: ErrorCode::InvalidCommand
            }
        );
        assert_eq!(
            err(r#"{"id":6,"op":"publish","channel":"a"}"#).code,
            ErrorCode::InvalidCommand
        );
        assert_eq!(
            err(r#"{"id":7,"op":"subscribe","channel":7}"#),
            CommandError {
                id: Some(7),
                code: ErrorCode::InvalidChannel
            }
        );
        assert_eq!(
            err(r#"{"id":-1,"op":"subscribe","channel":"a"}"#).code,
            ErrorCode::InvalidCommand
        );
        assert_eq!(
            err(r#"{"id":8,"op":"subscribe","channel":"a\"b"}"#).code,
            ErrorCode::InvalidChannel
        );
    }

    #[test]
    fn deeply_nested_data_is_accepted_as_raw_without_recursion() {
        let depth = 100_000;
        let data = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!(r#"{{"op":"publish","channel":"a","data":{data}}}"#);
        let r = parse_command(&text).expect("raw data is skipped iteratively");
        let Command::Publish { data: raw, .. } = r.command else {
            panic!()
        };
        assert_eq!(raw.get().len(), 2 * depth);
        // Nesting in a field we do parse is refused, not a stack overflow.
        let since = format!(r#"{{"op":"subscribe","channel":"a","since":{data}}}"#);
        let r = parse_command(&since).expect("since kept raw");
        let Command::Subscribe {
            since: Some(raw), ..
        } = r.command
        else {
            panic!()
        };
        assert_eq!(parse_since(raw), None);
    }

    #[test]
    fn channel_names() {
        assert!(valid_channel("room:1", 128));
        assert!(valid_channel("feed/btc-usd.v2@eu_1", 128));
        assert!(!valid_channel("", 128));
        assert!(!valid_channel("a b", 128));
        assert!(!valid_channel("é", 128));
        assert!(!valid_channel(&"a".repeat(129), 128));
        assert!(valid_channel(&"a".repeat(128), 128));
    }

    #[test]
    fn frames_are_valid_json_text_frames_at_every_header_size() {
        for len in [0, 100, 125, 126, 65535, 65536] {
            let data = format!("\"{}\"", "x".repeat(len));
            let frame = push_frame("room:1", 42, "e7c1", &data);
            let v = payload(&frame);
            assert_eq!(v["channel"], "room:1");
            assert_eq!(v["offset"], 42);
            assert_eq!(v["epoch"], "e7c1");
            assert_eq!(v["data"].as_str().map(str::len), Some(len));
        }
        assert_eq!(
            payload(&subscribed_frame(Some(1), "ab", 41, true)),
            serde_json::json!({"id":1,"result":{"epoch":"ab","offset":41,"recovered":true}})
        );
        assert_eq!(
            payload(&published_frame(None, 42)),
            serde_json::json!({"result":{"offset":42}})
        );
        assert_eq!(
            payload(&ok_frame(Some(2))),
            serde_json::json!({"id":2,"result":{}})
        );
        let e = payload(&error_frame(Some(4), ErrorCode::UnknownOp));
        assert_eq!(e["id"], 4);
        assert_eq!(e["error"]["code"], "unknown_op");
        assert_eq!(
            payload(&info_frame(Some(9), 1, 2, Some(0))),
            serde_json::json!({"id":9,"result":{"worker":1,"workers":2,"owner":0}})
        );
    }

    /// The frame owns exactly its bytes: converting it back to a Vec hands
    /// over the same allocation (no copy) with no spare capacity. This relies
    /// on bytes 1.x returning the original Vec for a Bytes made from a Vec
    /// whose length equals its capacity, and still held once.
    fn assert_exact_allocation(frame: Bytes) {
        let ptr = frame.as_ptr();
        let len = frame.len();
        let vec = Vec::from(frame);
        assert_eq!(vec.as_ptr(), ptr, "the frame's allocation was reused");
        assert_eq!((vec.len(), vec.capacity()), (len, len), "no spare bytes");
    }

    /// Decodes `frame` as the client would and returns its text.
    fn decode_text(frame: &[u8]) -> String {
        let mut wire = frame.to_vec();
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        let decoded = decoder.decode(&mut wire).expect("a valid frame");
        assert_eq!(decoded.consumed, frame.len(), "one whole frame");
        match decoded.event {
            Some(Event::Text(text)) => text.to_owned(),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    #[test]
    fn push_frames_at_length_boundaries_decode_to_the_same_json() {
        let json = |data: &str| {
            format!(r#"{{"channel":"room:1","offset":42,"epoch":"e7c1","data":{data}}}"#)
        };
        // The smallest push (data `""`) sets how much filler each length needs.
        let base = json(r#""""#).len();
        let cases: [(usize, &[u8]); 5] = [
            (base, &[0x81, base as u8]),
            (125, b"\x81\x7d"),
            (126, b"\x81\x7e\x00\x7e"),
            (65535, b"\x81\x7e\xff\xff"),
            (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        ];
        for (payload_len, head) in cases {
            let data = format!("\"{}\"", "x".repeat(payload_len - base));
            let expected = json(&data);
            assert_eq!(expected.len(), payload_len);
            let frame = push_frame("room:1", 42, "e7c1", &data);
            assert_eq!(&frame[..head.len()], head, "length form for {payload_len}");
            assert_eq!(frame.len(), head.len() + payload_len, "no stray bytes");
            assert_eq!(&frame[head.len()..], expected.as_bytes());
            let (header, header_len) = FrameHeader::parse(&frame)
                .expect("valid header")
                .expect("complete header");
            assert_eq!(header_len, head.len());
            assert_eq!(header.payload_len, payload_len as u64);
            assert_eq!(decode_text(&frame), expected);
            assert_exact_allocation(frame);
        }
    }

    #[test]
    fn text_frame_at_length_boundaries() {
        let cases: [(usize, &[u8]); 5] = [
            (0, b"\x81\x00"),
            (125, b"\x81\x7d"),
            (126, b"\x81\x7e\x00\x7e"),
            (65535, b"\x81\x7e\xff\xff"),
            (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        ];
        for (len, head) in cases {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut expected = head.to_vec();
            expected.extend_from_slice(&payload);

            let frame = text_frame(|out| out.extend_from_slice(&payload));
            assert_eq!(frame, expected, "text_frame {len}");
            assert_eq!(decode_text(&frame).as_bytes(), &payload[..]);

            // The same payload in uneven parts, and as one part.
            let (a, b) = payload.split_at(len / 3);
            let frame = text_frame_parts(&[a, b"", b]);
            assert_eq!(frame, expected, "text_frame_parts {len}");
            assert_exact_allocation(frame);
            let frame = text_frame_parts(&[&payload]);
            assert_eq!(frame, expected, "text_frame_parts one part {len}");
        }
        assert_eq!(text_frame_parts(&[]), &b"\x81\x00"[..]);
    }

    #[test]
    fn reply_frames_are_byte_exact_single_allocations() {
        let cases: [(Bytes, &str); 12] = [
            (
                error_frame(Some(4), ErrorCode::UnknownOp),
                r#"{"id":4,"error":{"code":"unknown_op","message":"op is not a v1 command (docs/protocol.md lists them)"}}"#,
            ),
            (
                error_frame(None, ErrorCode::RateLimited),
                r#"{"error":{"code":"rate_limited","message":"too many commands per second"}}"#,
            ),
            (
                error_frame_with(Some(0), ErrorCode::Unauthorized, "bad \"sig\""),
                r#"{"id":0,"error":{"code":"unauthorized","message":"bad \"sig\""}}"#,
            ),
            (
                subscribed_frame(Some(1), "ab", 41, true),
                r#"{"id":1,"result":{"epoch":"ab","offset":41,"recovered":true}}"#,
            ),
            (
                subscribed_frame(None, "ab", 0, false),
                r#"{"result":{"epoch":"ab","offset":0,"recovered":false}}"#,
            ),
            (
                refreshed_frame(Some(u64::MAX), Some(1_718_000_000)),
                r#"{"id":18446744073709551615,"result":{"expires_at":1718000000}}"#,
            ),
            (
                refreshed_frame(None, None),
                r#"{"result":{"expires_at":null}}"#,
            ),
            (
                published_frame(Some(3), 42),
                r#"{"id":3,"result":{"offset":42}}"#,
            ),
            (ok_frame(Some(2)), r#"{"id":2,"result":{}}"#),
            (ok_frame(None), r#"{"result":{}}"#),
            (
                info_frame(Some(9), 1, 2, Some(0)),
                r#"{"id":9,"result":{"worker":1,"workers":2,"owner":0}}"#,
            ),
            (
                info_frame(None, 0, 16, None),
                r#"{"result":{"worker":0,"workers":16}}"#,
            ),
        ];
        for (frame, json) in cases {
            assert!(json.len() <= 125, "all replies here take the short form");
            assert_eq!(&frame[..2], &[0x81, json.len() as u8], "{json}");
            assert_eq!(&frame[2..], json.as_bytes());
            serde_json::from_str::<serde_json::Value>(json).expect("valid JSON");
            assert_exact_allocation(frame);
        }
    }
}

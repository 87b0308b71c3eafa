//! The protocol v1 command parser, checked on arbitrary text.
//!
//! Input layout of the `command` target: the frame's text (invalid UTF-8 is
//! replaced, as only valid text reaches the parser). Asserted:
//! - `parse_command` and `parse_since` never panic;
//! - an accepted command was a JSON object, and its channel has no `"` or `\`;
//! - every reply the server would build from it (error with the readable
//!   `id`, error with any message text, ok, published, subscribed, info,
//!   refreshed) is one text frame of valid JSON, and a push for a valid
//!   channel carries the channel and `data` verbatim.

use ringcast::proto::frame::{FrameHeader, OpCode};
use ringcast::proto::v1::{
    error_frame, error_frame_with, info_frame, ok_frame, parse_command, parse_since,
    published_frame, push_frame, refreshed_frame, subscribed_frame, valid_channel, Command,
};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The server's default `max_channel_name_len`.
const MAX_CHANNEL_LEN: usize = 128;
/// The server makes epochs as 16 hex digits.
const EPOCH: &str = "00c0ffee00c0ffee";

/// The fields of a push, `data` kept raw so it compares byte for byte.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Push<'a> {
    channel: &'a str,
    offset: u64,
    epoch: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The payload of one complete, final, unmasked text frame that is all of `frame`.
fn text_payload(frame: &[u8]) -> &[u8] {
    let (header, len) = FrameHeader::parse(frame)
        .expect("frame header parses")
        .expect("frame header is complete");
    assert_eq!(header.opcode, OpCode::Text);
    assert!(header.fin && header.mask.is_none() && header.rsv == 0);
    assert_eq!(
        header.payload_len,
        (frame.len() - len) as u64,
        "one frame, all of it"
    );
    &frame[len..]
}

/// A reply is one JSON object; checked without recursion (as `RawValue`) so
/// that deep `data` is not refused by serde_json's depth limit.
fn assert_json_object(frame: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let payload = std::str::from_utf8(text_payload(frame)).expect("payload is UTF-8");
    serde_json::from_str(payload).unwrap_or_else(|e| panic!("reply {payload:?} is not JSON: {e}"))
}

/// Whether a JSON text is an object, checked without serde_json's depth limit.
fn is_json_object(text: &str) -> bool {
    serde_json::from_str::<&RawValue>(text).is_ok() && text.trim_start().starts_with('{')
}

/// The `command` target.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let request = match parse_command(&text) {
        Ok(request) => request,
        Err(err) => {
            let reply = assert_json_object(&error_frame(err.id, err.code));
            assert_eq!(reply.get("id").and_then(|v| v.as_u64()), err.id);
            assert_eq!(
                reply["error"]["code"].as_str(),
                Some(err.code.as_str()),
                "error code"
            );
            // A reply with a message of our choosing: any text must come
            // back intact (it is escaped, not trusted to be plain).
            let reply = assert_json_object(&error_frame_with(err.id, err.code, &text));
            assert_eq!(reply["error"]["message"].as_str(), Some(&*text), "message");
            return;
        }
    };
    assert!(
        is_json_object(&text),
        "accepted a command that is not a JSON object: {text:?}"
    );
    let id = request.id;
    for frame in [
        ok_frame(id),
        published_frame(id, u64::MAX),
        subscribed_frame(id, EPOCH, 0, true),
        info_frame(id, 1, 2, Some(0)),
        refreshed_frame(id, Some(u64::MAX)),
        refreshed_frame(id, None),
    ] {
        let reply = assert_json_object(&frame);
        assert_eq!(reply.get("id").and_then(|v| v.as_u64()), id);
    }

    let channel = match request.command {
        Command::Subscribe { channel, since } => {
            if let Some(raw) = since {
                if let Some(since) = parse_since(raw) {
                    assert!(
                        raw.get().trim_start().starts_with('{'),
                        "since {:?}",
                        raw.get()
                    );
                    // The server echoes its own epoch, never this one; but it
                    // must survive a round trip through JSON.
                    let back = serde_json::to_string(&since.epoch).expect("a String serializes");
                    assert_eq!(
                        serde_json::from_str::<String>(&back).ok(),
                        Some(since.epoch)
                    );
                }
            }
            Some(channel)
        }
        Command::Unsubscribe { channel } => Some(channel),
        Command::Publish { channel, data } => {
            assert!(
                serde_json::from_str::<&RawValue>(data.get()).is_ok(),
                "data is JSON"
            );
            if valid_channel(channel, MAX_CHANNEL_LEN) {
                let frame = push_frame(channel, 7, EPOCH, data.get());
                let payload = std::str::from_utf8(text_payload(&frame)).expect("UTF-8 push");
                let push: Push<'_> = serde_json::from_str(payload)
                    .unwrap_or_else(|e| panic!("push {payload:?} is not the push JSON: {e}"));
                assert_eq!(push.channel, channel);
                assert_eq!(push.offset, 7);
                assert_eq!(push.epoch, EPOCH);
                assert_eq!(push.data.get(), data.get(), "data is copied verbatim");
            }
            Some(channel)
        }
        Command::Info { channel } => channel,
        Command::Refresh { token } => {
            assert!(!token.contains(['"', '\\']), "token {token:?} kept escapes");
            None
        }
        // Commands added later still get the checks above.
        #[allow(unreachable_patterns)]
        _ => None,
    };
    if let Some(channel) = channel {
        assert!(
            !channel.contains(['"', '\\']),
            "channel {channel:?} kept escapes"
        );
    }
}

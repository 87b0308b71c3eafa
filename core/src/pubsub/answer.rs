//! Answers that are not pushes: where a command's answer goes
//! ([`ReplyTo`]), the questions a connection may ask a channel's owner or
//! every core ([`Query`]), and the JSON they are answered with.
//!
//! A `/ws` command is answered with a v1 reply frame carrying its `id`; a
//! server API request (`server/api.rs`) with one or more [`ApiPart`]s, each
//! a JSON value or a refusal, which the API connection puts together into
//! one HTTP response. Both come out of the same owner-core code: only the
//! last step, the encoding, differs.

use std::sync::Arc;

use bytes::Bytes;

use super::Refusal;
use crate::proto::v1::{result_frame, Since};

/// Where, and in which form, a command's answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    /// A `/ws` connection: a v1 reply frame with the command's `id`.
    Ws(Option<u64>),
    /// A server API request: part `index` of its answer.
    Api(u32),
    /// Nobody: a question another node asked (the answer is dropped).
    Nobody,
}

/// One part of a server API request's answer: a JSON value, or why not.
#[derive(Debug)]
pub struct ApiPart {
    pub index: u32,
    pub result: Result<Bytes, Refusal>,
}

/// A question for a channel's owner core, or for every core.
#[derive(Debug)]
pub enum Query {
    /// Owner: the channel's history after `since` (all kept when `None`),
    /// at most `limit` messages.
    History {
        channel: Arc<str>,
        since: Option<HistorySince>,
        limit: usize,
    },
    /// Owner: who is subscribed (`stats`: only the counts).
    Presence { channel: Arc<str>, stats: bool },
    /// Every core: its local channels whose name starts with `prefix`, and
    /// their subscriber counts.
    Channels { prefix: String },
    /// Every core: close each `/ws` connection whose token `sub` is `user`.
    Disconnect {
        user: String,
        code: u16,
        reason: String,
    },
    /// Every core: its connection, channel and subscription counts.
    Info,
}

/// Where a history read starts: after `offset`, of `epoch` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySince {
    pub offset: u64,
    pub epoch: Option<String>,
}

impl From<Since> for HistorySince {
    fn from(since: Since) -> Self {
        HistorySince {
            offset: since.offset,
            epoch: Some(since.epoch),
        }
    }
}

/// Encodes `result` for `reply`: a v1 frame, or an API part.
pub(crate) enum Encoded {
    Frame(Bytes),
    Part(ApiPart),
    Nothing,
}

pub(crate) fn encode(reply: ReplyTo, result: Result<Bytes, Refusal>) -> Encoded {
    match reply {
        ReplyTo::Ws(id) => Encoded::Frame(match result {
            Ok(json) => result_frame(id, &json),
            Err(refusal) => refusal.frame(id),
        }),
        ReplyTo::Api(index) => Encoded::Part(ApiPart { index, result }),
        ReplyTo::Nobody => Encoded::Nothing,
    }
}

/// A JSON string literal of `text` (escaped).
pub(crate) fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// `{"offset":N,"epoch":"E"}`: a publish's answer over the API.
pub fn published_json(offset: u64, epoch: &str) -> Bytes {
    Bytes::from(format!(
        "{{\"offset\":{offset},\"epoch\":{}}}",
        json_string(epoch)
    ))
}

/// `{"epoch":..,"offset":TOP,"complete":B,"messages":[PUSH,...]}`, each
/// message the JSON of the push subscribers got.
pub fn history_json(epoch: &str, top: u64, complete: bool, messages: &[&[u8]]) -> Bytes {
    let size: usize = messages.iter().map(|m| m.len() + 1).sum();
    let mut out = Vec::with_capacity(size + epoch.len() + 64);
    out.extend_from_slice(b"{\"epoch\":");
    out.extend_from_slice(json_string(epoch).as_bytes());
    out.extend_from_slice(
        format!(",\"offset\":{top},\"complete\":{complete},\"messages\":[").as_bytes(),
    );
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(message);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::ErrorCode;

    #[test]
    fn answers_take_the_form_of_their_asker() {
        let json = published_json(7, "ab\"c");
        assert_eq!(&json[..], br#"{"offset":7,"epoch":"ab\"c"}"#);
        let Encoded::Frame(frame) = encode(ReplyTo::Ws(Some(3)), Ok(json.clone())) else {
            panic!("a frame")
        };
        assert!(frame.ends_with(br#"{"id":3,"result":{"offset":7,"epoch":"ab\"c"}}"#));
        let Encoded::Part(part) = encode(ReplyTo::Api(2), Err(ErrorCode::Overloaded.into())) else {
            panic!("a part")
        };
        assert_eq!(part.index, 2);
        assert_eq!(
            part.result.expect_err("refused").code,
            ErrorCode::Overloaded
        );
        let history = history_json("e", 9, true, &[b"{\"a\":1}", b"2"]);
        let value: serde_json::Value = serde_json::from_slice(&history).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"epoch":"e","offset":9,"complete":true,"messages":[{"a":1},2]})
        );
    }
}

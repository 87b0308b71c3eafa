//! A refused `/ws` command: its stable error code and a human message that
//! names the configuration key that refused it and that key's value, so an
//! operator reading a client's error knows which knob to turn.
//!
//! Clients match on the code (`publish_too_large`); the message is for
//! people and may change. Refusals that no key causes (`already_subscribed`,
//! `forbidden`, ...) keep their code's fixed message.

use std::borrow::Cow;

use bytes::Bytes;

use crate::proto::v1::{error_frame_with, ErrorCode};

/// An error reply waiting for its command's `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
}

impl From<ErrorCode> for Refusal {
    fn from(code: ErrorCode) -> Self {
        Refusal {
            code,
            message: Cow::Borrowed(code.message()),
        }
    }
}

impl Refusal {
    fn new(code: ErrorCode, message: String) -> Self {
        Refusal {
            code,
            message: Cow::Owned(message),
        }
    }

    /// `data` of `len` bytes over `pubsub.max_publish_bytes`.
    pub fn publish_too_large(len: usize, max: usize) -> Self {
        Self::new(
            ErrorCode::PublishTooLarge,
            format!("data is {len} bytes, over pubsub.max_publish_bytes = {max}"),
        )
    }

    /// A channel name that `valid_channel` refused: too long (naming
    /// `pubsub.max_channel_name_len`), or empty or with a character outside
    /// the set.
    pub fn invalid_channel(name: &str, max_len: usize) -> Self {
        let message = if name.len() > max_len {
            format!(
                "channel name is {} bytes, over pubsub.max_channel_name_len = {max_len}",
                name.len()
            )
        } else {
            format!(
                "channel names are 1 to {max_len} bytes (pubsub.max_channel_name_len) of \
                 A-Z a-z 0-9 _ - : . @ /"
            )
        };
        Self::new(ErrorCode::InvalidChannel, message)
    }

    /// The connection holds `pubsub.max_subscriptions_per_connection`.
    pub fn too_many_subscriptions(max: usize) -> Self {
        Self::new(
            ErrorCode::TooManySubscriptions,
            format!(
                "this connection has {max} subscriptions, \
                 pubsub.max_subscriptions_per_connection = {max}"
            ),
        )
    }

    /// The channel's owner core holds its share of `pubsub.max_channels`
    /// (the cap is per core: `ceil(max_channels / workers)`).
    pub fn too_many_channels(per_core: usize, total: usize, workers: usize) -> Self {
        Self::new(
            ErrorCode::TooManyChannels,
            format!(
                "this channel's owner core holds {per_core} channels, its share of \
                 pubsub.max_channels = {total} over {workers} workers"
            ),
        )
    }

    /// The owner core's inbox (`pubsub.inbox_capacity` messages) is full:
    /// the publish was not taken.
    pub fn overloaded(capacity: usize) -> Self {
        Self::new(
            ErrorCode::Overloaded,
            format!(
                "the owner core's inbox is full (pubsub.inbox_capacity = {capacity}); \
                 the publish was not accepted, retry"
            ),
        )
    }

    /// The Redis engine's request queue (`engine.redis_queue_capacity`) is
    /// full: the publish or subscribe was not taken.
    pub fn engine_overloaded(capacity: usize) -> Self {
        Self::new(
            ErrorCode::Overloaded,
            format!(
                "the redis engine's queue is full (engine.redis_queue_capacity = {capacity}); \
                 not accepted, retry"
            ),
        )
    }

    /// Redis did not answer (`reason` names the redacted URL and why): a
    /// publish is not acknowledged, a subscribe not served.
    pub fn unavailable(reason: &str) -> Self {
        Self::new(
            ErrorCode::Unavailable,
            format!("{reason}; not acknowledged, retry"),
        )
    }

    /// The reply frame for the command `id`.
    pub fn frame(&self, id: Option<u64>) -> Bytes {
        error_frame_with(id, self.code, &self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(refusal: &Refusal) -> String {
        let frame = refusal.frame(Some(7));
        // An unmasked server text frame under 126 bytes: 2 header bytes.
        String::from_utf8(frame[2..].to_vec()).expect("utf-8")
    }

    #[test]
    fn limit_refusals_name_their_key_and_value() {
        let cases = [
            (
                Refusal::publish_too_large(100_000, 65_536),
                "publish_too_large",
                "data is 100000 bytes, over pubsub.max_publish_bytes = 65536",
            ),
            (
                Refusal::invalid_channel(&"a".repeat(200), 128),
                "invalid_channel",
                "channel name is 200 bytes, over pubsub.max_channel_name_len = 128",
            ),
            (
                Refusal::invalid_channel("a b", 128),
                "invalid_channel",
                "channel names are 1 to 128 bytes (pubsub.max_channel_name_len) of A-Z a-z \
                 0-9 _ - : . @ /",
            ),
            (
                Refusal::too_many_subscriptions(128),
                "too_many_subscriptions",
                "this connection has 128 subscriptions, \
                 pubsub.max_subscriptions_per_connection = 128",
            ),
            (
                Refusal::overloaded(65_536),
                "overloaded",
                "the owner core's inbox is full (pubsub.inbox_capacity = 65536); the publish \
                 was not accepted, retry",
            ),
            (
                Refusal::too_many_channels(50_000, 100_000, 2),
                "too_many_channels",
                "this channel's owner core holds 50000 channels, its share of \
                 pubsub.max_channels = 100000 over 2 workers",
            ),
        ];
        for (refusal, code, message) in cases {
            assert_eq!(refusal.code.as_str(), code);
            assert_eq!(refusal.message, message);
            let json: serde_json::Value =
                serde_json::from_str(&frame_text(&refusal)).expect("json");
            assert_eq!(json["id"], 7);
            assert_eq!(json["error"]["code"], code);
            assert_eq!(json["error"]["message"], message);
        }
    }

    /// The JSON of a frame whatever its header length.
    fn frame_text(refusal: &Refusal) -> String {
        let frame = refusal.frame(Some(7));
        let start = frame.iter().position(|b| *b == b'{').expect("json");
        String::from_utf8(frame[start..].to_vec()).expect("utf-8")
    }

    #[test]
    fn other_codes_keep_their_fixed_message() {
        let refusal = Refusal::from(ErrorCode::AlreadySubscribed);
        assert_eq!(refusal.message, ErrorCode::AlreadySubscribed.message());
        assert!(body(&refusal).contains("already_subscribed"));
    }
}

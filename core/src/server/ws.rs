//! The `/ws` endpoint: wire protocol v1 commands of one connection, turned
//! into calls on its core's pub/sub hub.
//!
//! Every reply of this connection goes through its outbox, in the order the
//! hub produces them, so that a subscribe reply always precedes the replay
//! and the live pushes that follow it. A bad command gets an error reply with
//! a stable code and the connection stays open.

use std::time::Instant;

use bytes::Bytes;

use super::slot::Slot;
use super::worker::Worker;
use crate::proto::session::Message;
use crate::proto::v1::{
    error_frame, info_frame, ok_frame, parse_command, parse_since, valid_channel, Command,
    ErrorCode,
};

/// Commands per second with a burst allowance; refills continuously.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One `/ws` connection's application state.
pub(crate) struct WsConn {
    bucket: TokenBucket,
}

impl WsConn {
    pub fn new(worker: &Worker, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(worker.config.command_rate, worker.config.command_burst, now),
        }
    }

    pub fn handle(&mut self, worker: &Worker, slot: &Slot, message: Message<'_>, now: Instant) {
        let reply = |frame: Bytes| slot.outbox.borrow_mut().push(frame);
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return reply(error_frame(None, ErrorCode::BinaryNotSupported)),
        };
        let request = match parse_command(text) {
            Ok(request) => request,
            Err(err) => return reply(error_frame(err.id, err.code)),
        };
        let id = request.id;
        if !self.bucket.try_take(now) {
            return reply(error_frame(id, ErrorCode::RateLimited));
        }
        let config = &worker.config;
        let hub = &worker.hub;
        let conn = slot.id();
        let check = |channel: &str| {
            if valid_channel(channel, config.max_channel_name_len) {
                Ok(())
            } else {
                Err(ErrorCode::InvalidChannel)
            }
        };
        let result = match request.command {
            Command::Subscribe { channel, since } => check(channel).and_then(|()| {
                let since = match since {
                    None => None,
                    Some(raw) => Some(parse_since(raw).ok_or(ErrorCode::InvalidCommand)?),
                };
                hub.subscribe(conn, channel, id, since)
            }),
            Command::Unsubscribe { channel } => check(channel)
                .and_then(|()| hub.unsubscribe(conn, channel))
                .map(|()| reply(ok_frame(id))),
            Command::Publish { channel, data } => check(channel).and_then(|()| {
                let data = data.get();
                if data.len() > config.max_publish_bytes {
                    return Err(ErrorCode::PublishTooLarge);
                }
                hub.publish(conn, channel, Bytes::copy_from_slice(data.as_bytes()), id)
            }),
            Command::Info { channel } => {
                let owner = channel.map(|c| hub.owner_of(c));
                reply(info_frame(id, hub.core(), hub.cores(), owner));
                Ok(())
            }
        };
        if let Err(code) = result {
            reply(error_frame(id, code));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, t0);
        assert!((0..3).all(|_| bucket.try_take(t0)));
        assert!(!bucket.try_take(t0));
        assert!(
            bucket.try_take(t0 + Duration::from_millis(100)),
            "one token per 100 ms at 10/s"
        );
        assert!(!bucket.try_take(t0 + Duration::from_millis(100)));
        // Long idle refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_take(later)));
        assert!(!bucket.try_take(later));
    }
}

//! The `/ws` endpoint: wire protocol v1 commands of one connection, turned
//! into calls on its core's pub/sub hub, under the connection's identity
//! (channel permissions from its token) and command rates.
//!
//! Every reply of this connection goes through its outbox, in the order the
//! hub produces them, so that a subscribe reply always precedes the replay
//! and the live pushes that follow it. A bad command gets an error reply with
//! a stable code and the connection stays open; only a rate limit that
//! persists, or a token that expires without a refresh, closes it — the
//! handler asks for that through [`WsConn::take_close`], since it runs inside
//! the session's read and cannot close it itself.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::context::ConnContext;
use crate::admission::command::{
    CommandKind, CommandLimiter, RateVerdict, RATE_LIMIT_CLOSE, RATE_LIMIT_CLOSE_REASON,
};
use crate::auth::identity::Identity;
use crate::auth::{TOKEN_EXPIRED, TOKEN_EXPIRED_REASON};
use crate::mailbox::Slot;
use crate::proto::close::CloseCode;
use crate::proto::session::Message;
use crate::proto::v1::{
    error_frame, error_frame_with, info_frame, ok_frame, parse_command, parse_since,
    refreshed_frame, valid_channel, Command, ErrorCode,
};
use crate::pubsub::answer::{Query, ReplyTo};
use crate::pubsub::Refusal;

/// Seconds since the Unix epoch (token times are in these).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One `/ws` connection's application state.
pub(crate) struct WsConn {
    identity: Identity,
    limiter: CommandLimiter,
    /// A close the handler decided on, for the connection to carry out.
    close: Option<(CloseCode, &'static str)>,
}

impl WsConn {
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            limiter: CommandLimiter::new(),
            close: None,
        }
    }

    /// The close the handler asked for, if any.
    pub fn take_close(&mut self) -> Option<(CloseCode, &'static str)> {
        self.close.take()
    }

    /// When the token expires, as an `Instant` (for the connection's deadline).
    pub fn expires_at(&self, now: Instant) -> Option<Instant> {
        let close_at = self.identity.close_at()?;
        let left = close_at.saturating_sub(unix_now());
        Some(now + std::time::Duration::from_secs(left))
    }

    /// Closes with 4001 once the token has expired (checked on timers).
    pub fn check_expiry(&mut self) {
        if self.identity.is_expired(unix_now()) {
            self.close
                .get_or_insert((TOKEN_EXPIRED, TOKEN_EXPIRED_REASON));
        }
    }

    pub fn handle(&mut self, ctx: &ConnContext, slot: &Slot, message: Message<'_>, now: Instant) {
        let reply = |frame: Bytes| {
            let frame = ctx.hub.deflate().for_slot(slot, frame);
            slot.outbox.borrow_mut().push(frame);
        };
        if self.close.is_some() {
            return;
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return reply(error_frame(None, ErrorCode::BinaryNotSupported)),
        };
        let request = match parse_command(text) {
            Ok(request) => request,
            Err(err) => return reply(error_frame(err.id, err.code)),
        };
        let id = request.id;
        let kind = match request.command {
            Command::Subscribe { .. } => CommandKind::Subscribe,
            Command::Publish { .. } => CommandKind::Publish,
            _ => CommandKind::Other,
        };
        match self.limiter.check(&ctx.commands, kind, now) {
            RateVerdict::Run => {}
            RateVerdict::Refuse(limit) => {
                let message = ctx.commands.refusal_message(limit);
                return reply(error_frame_with(id, ErrorCode::RateLimited, &message));
            }
            RateVerdict::Close => {
                self.close = Some((RATE_LIMIT_CLOSE, RATE_LIMIT_CLOSE_REASON));
                return;
            }
        }
        let limits = &ctx.limits;
        let hub = &ctx.hub;
        let conn = slot.id();
        let check = |channel: &str, allowed: bool| {
            if !valid_channel(channel, limits.max_channel_name_len) {
                Err(Refusal::invalid_channel(
                    channel,
                    limits.max_channel_name_len,
                ))
            } else if !allowed {
                Err(ErrorCode::Forbidden.into())
            } else {
                Ok(())
            }
        };
        let identity = &self.identity;
        let result = match request.command {
            Command::Subscribe { channel, since } => {
                check(channel, identity.can_subscribe(channel)).and_then(|()| {
                    let since = match since {
                        None => None,
                        Some(raw) => Some(parse_since(raw).ok_or(ErrorCode::InvalidCommand)?),
                    };
                    hub.subscribe(conn, channel, id, since)
                })
            }
            Command::Unsubscribe { channel } => check(channel, true)
                .and_then(|()| Ok(hub.unsubscribe(conn, channel, ok_frame(id))?)),
            Command::Publish { channel, data } => check(channel, identity.can_publish(channel))
                .and_then(|()| {
                    let data = data.get();
                    if data.len() > limits.max_publish_bytes {
                        return Err(Refusal::publish_too_large(
                            data.len(),
                            limits.max_publish_bytes,
                        ));
                    }
                    let data = Bytes::copy_from_slice(data.as_bytes());
                    hub.publish(conn, channel, data, ReplyTo::Ws(id))
                }),
            Command::Info { channel } => {
                let owner = channel.map(|c| hub.owner_of(c));
                reply(info_frame(id, hub.core(), hub.cores(), owner));
                Ok(())
            }
            Command::History {
                channel,
                since,
                limit,
            } => check(channel, identity.can_subscribe(channel)).and_then(|()| {
                let since = match since {
                    None => None,
                    Some(raw) => Some(
                        super::api::parse_history_since(raw).ok_or(ErrorCode::InvalidCommand)?,
                    ),
                };
                let limit = limit.unwrap_or(u64::MAX).min(usize::MAX as u64) as usize;
                let query = Query::History {
                    channel: channel.into(),
                    since,
                    limit,
                };
                hub.query(conn, hub.owner_of(channel), query, ReplyTo::Ws(id));
                Ok(())
            }),
            Command::Presence { channel, stats } => check(channel, identity.can_subscribe(channel))
                .map(|()| {
                    let query = Query::Presence {
                        channel: channel.into(),
                        stats,
                    };
                    hub.query(conn, hub.owner_of(channel), query, ReplyTo::Ws(id));
                }),
            Command::Refresh { token } => {
                match ctx.gate.auth.refresh(&mut self.identity, token, unix_now()) {
                    Ok(expires_at) => reply(refreshed_frame(id, expires_at)),
                    Err(e) => reply(error_frame_with(id, ErrorCode::Unauthorized, e.reason())),
                }
                Ok(())
            }
        };
        if let Err(refusal) = result {
            reply(refusal.frame(id));
        }
    }
}

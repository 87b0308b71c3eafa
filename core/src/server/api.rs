//! The server API: HTTP/1.1 `POST /api/*` requests from application
//! backends, with JSON bodies and JSON answers, on keep-alive connections.
//!
//! A connection becomes an API connection with its first `/api/` request
//! (on the main port) or on accept (on `api.listen`); from then on its
//! [`ApiConn`] reads requests one at a time: the head (bounded by
//! `limits.max_handshake_bytes`), then a `Content-Length` body (bounded by
//! `api.max_body_bytes`; past it 413 and the body is never read). While a
//! request waits for its answer nothing more is read, so a pipelining client
//! is answered in order and cannot queue unbounded work.
//!
//! Requests enter pub/sub exactly as `/ws` commands do: a publish is
//! [`Hub::publish`](crate::pubsub::hub::Hub::publish) with an API reply
//! form, so the owner core numbers it, keeps it in history and fans it out
//! (on the Redis engine, Redis numbers it and every node delivers it);
//! history and presence are questions to the channel's owner; channels,
//! disconnect and info ask every core (and, on the Redis engine, channels
//! and info also read every live node's record from Redis, written by each
//! node's cores with their presence refresh). Answers come back as parts
//! ([`ApiPart`]) the hub keeps for this connection and kicks it about
//! (`KICK_ANSWER`); once every part is in, one HTTP response is written.
//!
//! This file does no IO: the connection (`conn.rs`) appends what its driver
//! read to [`ApiConn::buf`], and its driver flushes the slot's outbox.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::apikey::ApiSeat;
use super::context::ConnContext;
use crate::mailbox::Slot;
use crate::proto::close::MAX_REASON_LEN;
use crate::proto::handshake::{encode_plain_response_into, parse_request, Method, RequestHead};
use crate::proto::v1::{valid_channel, ErrorCode, Since};
use crate::pubsub::answer::{json_string, ApiPart, HistorySince, Query, ReplyTo};
use crate::pubsub::Refusal;

/// The API's endpoints, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Publish,
    Broadcast,
    History,
    Channels,
    Presence,
    PresenceStats,
    Disconnect,
    Info,
}

impl Endpoint {
    fn parse(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/api/publish" => Endpoint::Publish,
            "/api/broadcast" => Endpoint::Broadcast,
            "/api/history" => Endpoint::History,
            "/api/channels" => Endpoint::Channels,
            "/api/presence" => Endpoint::Presence,
            "/api/presence_stats" => Endpoint::PresenceStats,
            "/api/disconnect" => Endpoint::Disconnect,
            "/api/info" => Endpoint::Info,
            _ => return None,
        })
    }
}

/// A refused request: its status, stable code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A field of the body that is missing or of the wrong type.
    fn field(field: &str, expected: &str) -> Self {
        Self::new(
            400,
            "invalid_request",
            format!("{field}: expected {expected}"),
        )
    }

    /// The status a pub/sub refusal is answered with.
    fn from_refusal(refusal: &Refusal) -> Self {
        let status = match refusal.code {
            ErrorCode::InvalidJson | ErrorCode::InvalidCommand | ErrorCode::InvalidChannel => 400,
            ErrorCode::Forbidden => 403,
            ErrorCode::PublishTooLarge => 413,
            ErrorCode::Overloaded | ErrorCode::RateLimited => 429,
            _ => 503,
        };
        ApiError {
            status,
            code: refusal.code.as_str(),
            message: refusal.message.to_string(),
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"error\":{{\"code\":\"{}\",\"message\":{}}}}}",
            self.code,
            json_string(&self.message)
        )
    }
}

/// How the parts of a request's answer make one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gather {
    /// One part is the answer.
    One,
    /// `{"results":[part, ...]}`, an error object for a refused part.
    Results,
    /// Every core's `{"channel":count}`, summed: `{"channels":{...}}`; on
    /// the Redis engine with the other live nodes' counts.
    Channels,
    /// Every core's `{"disconnected":N}`, summed.
    Disconnected,
    /// Every core's counts, with the node's: `/api/info`; on the Redis
    /// engine with every live node's (`nodes`).
    Info,
}

/// A request waiting for its answer parts.
struct Pending {
    gather: Gather,
    parts: Vec<Option<Result<Bytes, Refusal>>>,
    missing: usize,
}

/// What the connection should do after the API had its say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiState {
    /// Keep the connection: wait for input, answers or the deadline.
    Open,
    /// Flush what is queued, then close.
    Close,
}

/// One API connection's state.
pub(crate) struct ApiConn {
    /// Bytes read and not yet taken by a request.
    pub buf: Vec<u8>,
    pending: Option<Pending>,
    /// Answer what is asked, then close (`Connection: close`, HTTP/1.0, a
    /// refusal that leaves the stream unreadable, or shutdown).
    closing: bool,
    /// When the request being read or answered began; `None` between
    /// requests (the idle timeout runs from `idle_since`).
    started: Option<Instant>,
    idle_since: Instant,
    peer: IpAddr,
    _seat: ApiSeat,
}

impl ApiConn {
    pub fn new(buf: Vec<u8>, peer: IpAddr, seat: ApiSeat, now: Instant) -> Self {
        let started = (!buf.is_empty()).then_some(now);
        ApiConn {
            buf,
            pending: None,
            closing: false,
            started,
            idle_since: now,
            peer,
            _seat: seat,
        }
    }

    /// Most bytes a request may take: its head and its largest body.
    pub fn max_request(ctx: &ConnContext) -> usize {
        let body = ctx
            .gate
            .api
            .as_ref()
            .map_or(0, |_| ctx.limits.api.max_body_bytes);
        ctx.limits.handshake.max_head_bytes + body
    }

    /// Whether the connection should read: not while an answer is awaited.
    pub fn wants_input(&self) -> bool {
        self.pending.is_none() && !self.closing
    }

    /// When the connection must be looked at: the request's timeout, or
    /// the idle timeout between requests.
    pub fn deadline(&self, ctx: &ConnContext) -> Instant {
        match self.started {
            Some(at) => at + ctx.limits.api.request_timeout,
            None => self.idle_since + ctx.limits.api.idle_timeout,
        }
    }

    /// The server drains: answer what is in progress, then close.
    pub fn on_shutdown(&mut self) -> ApiState {
        self.closing = true;
        match self.pending {
            Some(_) => ApiState::Open,
            None => ApiState::Close,
        }
    }

    /// The deadline passed: a late answer is 503, a slow request or an idle
    /// connection is closed without one.
    pub fn on_deadline(&mut self, ctx: &ConnContext, slot: &Slot, now: Instant) -> ApiState {
        if now < self.deadline(ctx) {
            return ApiState::Open;
        }
        if self.pending.take().is_some() {
            let late = ApiError::new(
                503,
                "timeout",
                "the answer did not come within api.request_timeout",
            );
            self.closing = true;
            self.respond_error(slot, &late);
        }
        ApiState::Close
    }

    /// Answer parts arrived; once all are in, the response is written and
    /// the next buffered request (if any) runs.
    pub fn on_answers(
        &mut self,
        ctx: &ConnContext,
        slot: &Slot,
        parts: Vec<ApiPart>,
        now: Instant,
    ) -> ApiState {
        if self.pending.is_none() {
            return ApiState::Open;
        }
        for part in parts {
            self.put(part.index as usize, part.result);
        }
        if self.pending.as_ref().is_some_and(|p| p.missing > 0) {
            return ApiState::Open;
        }
        if let Some(pending) = self.pending.take() {
            let (status, body) = gather(ctx, pending);
            self.respond_gathered(slot, status, body.as_bytes());
        }
        self.finish(now);
        self.on_input(ctx, slot, now)
    }

    fn finish(&mut self, now: Instant) {
        self.started = None;
        self.idle_since = now;
    }

    /// Runs the requests complete in [`ApiConn::buf`], until one waits for
    /// answers or the buffer holds only part of the next.
    pub fn on_input(&mut self, ctx: &ConnContext, slot: &Slot, now: Instant) -> ApiState {
        while self.pending.is_none() && !self.closing {
            if self.buf.is_empty() {
                return ApiState::Open;
            }
            self.started.get_or_insert(now);
            let (head_len, head) = match parse_request(&self.buf, &ctx.limits.handshake) {
                Ok(None) => return ApiState::Open,
                Ok(Some(parsed)) => parsed,
                Err(err) => {
                    self.closing = true;
                    let code = if err.status() == 431 {
                        "head_too_large"
                    } else {
                        "bad_request"
                    };
                    self.respond_error(slot, &ApiError::new(err.status(), code, err.to_string()));
                    break;
                }
            };
            if head.http_minor == 0 || head.connection_close {
                self.closing = true;
            }
            if let Err(err) = self.check_head(ctx, &head) {
                // The body (if any) is never read: the stream ends here.
                self.closing = true;
                self.respond_error(slot, &err);
                break;
            }
            let body_len = head.content_length.unwrap_or(0) as usize;
            if self.buf.len() < head_len + body_len {
                return ApiState::Open;
            }
            let body: Vec<u8> = self.buf[head_len..head_len + body_len].to_vec();
            self.buf.drain(..head_len + body_len);
            let endpoint = Endpoint::parse(&head.path);
            match endpoint.map(|e| self.run(ctx, slot, e, &body)) {
                Some(Ok(())) => {}
                Some(Err(err)) => self.respond_error(slot, &err),
                None => {}
            }
            if self.pending.is_none() {
                self.finish(now);
            }
        }
        match (self.closing, &self.pending) {
            (true, None) => ApiState::Close,
            _ => ApiState::Open,
        }
    }

    /// The checks made on the head, before any body is read.
    fn check_head(&self, ctx: &ConnContext, head: &RequestHead) -> Result<(), ApiError> {
        let Some(gate) = ctx.gate.api.as_ref() else {
            return Err(ApiError::new(
                404,
                "not_found",
                "the server API is off (no api.key)",
            ));
        };
        if !gate.allows(self.peer) {
            return Err(ApiError::new(
                403,
                "forbidden",
                "this address is not in api.allowed_clients",
            ));
        }
        if Endpoint::parse(&head.path).is_none() {
            return Err(ApiError::new(
                404,
                "not_found",
                format!("no endpoint {}", truncate(&head.path, 64)),
            ));
        }
        if head.method != Method::Post {
            return Err(ApiError::new(
                405,
                "method_not_allowed",
                "the server API takes POST",
            ));
        }
        if !gate.authorizes(head.authorization.as_deref()) {
            return Err(ApiError::new(
                401,
                "unauthorized",
                "send Authorization: apikey <key> with a configured key",
            ));
        }
        if head.transfer_encoding {
            return Err(ApiError::new(
                411,
                "length_required",
                "send the body with a Content-Length",
            ));
        }
        let max = ctx.limits.api.max_body_bytes;
        match head.content_length {
            Some(len) if len > max as u64 => Err(ApiError::new(
                413,
                "body_too_large",
                format!("the body is {len} bytes, over api.max_body_bytes = {max}"),
            )),
            _ if ctx.draining.get() => Err(ApiError::new(
                503,
                "draining",
                "the server is shutting down",
            )),
            _ => Ok(()),
        }
    }

    /// Runs one request: answered at once, or pending on the hub.
    fn run(
        &mut self,
        ctx: &ConnContext,
        slot: &Slot,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let fields = Fields::parse(body)?;
        let hub = &ctx.hub;
        let conn = slot.id();
        let limits = &ctx.limits;
        let channel_of = |fields: &Fields<'_>| -> Result<String, ApiError> {
            let channel = fields
                .string("channel")?
                .ok_or_else(|| ApiError::field("channel", "a string"))?;
            if !valid_channel(&channel, limits.max_channel_name_len) {
                let refusal = Refusal::invalid_channel(&channel, limits.max_channel_name_len);
                return Err(ApiError::new(
                    400,
                    "invalid_channel",
                    format!("channel: {}", refusal.message),
                ));
            }
            Ok(channel)
        };
        let data_of = |fields: &Fields<'_>| -> Result<Bytes, ApiError> {
            let data = fields
                .raw("data")
                .ok_or_else(|| ApiError::field("data", "any JSON value"))?;
            let data = data.get();
            if data.len() > limits.max_publish_bytes {
                return Err(ApiError::from_refusal(&Refusal::publish_too_large(
                    data.len(),
                    limits.max_publish_bytes,
                )));
            }
            Ok(Bytes::copy_from_slice(data.as_bytes()))
        };
        match endpoint {
            Endpoint::Publish => {
                let channel = channel_of(&fields)?;
                let data = data_of(&fields)?;
                self.wait(Gather::One, 1);
                if let Err(refusal) = hub.publish(conn, &channel, data, ReplyTo::Api(0)) {
                    self.pending = None;
                    return Err(ApiError::from_refusal(&refusal));
                }
            }
            Endpoint::Broadcast => {
                let channels = fields.strings("channels")?;
                let max = ctx.limits.api.max_broadcast_channels;
                if channels.is_empty() || channels.len() > max {
                    let why = format!("1 to {max} channel names (api.max_broadcast_channels)");
                    return Err(ApiError::field("channels", &why));
                }
                for channel in &channels {
                    if !valid_channel(channel, limits.max_channel_name_len) {
                        let refusal =
                            Refusal::invalid_channel(channel, limits.max_channel_name_len);
                        let message =
                            format!("channels: {}: {}", truncate(channel, 64), refusal.message);
                        return Err(ApiError::new(400, "invalid_channel", message));
                    }
                }
                let data = data_of(&fields)?;
                self.wait(Gather::Results, channels.len());
                for (i, channel) in channels.iter().enumerate() {
                    if let Err(refusal) =
                        hub.publish(conn, channel, data.clone(), ReplyTo::Api(i as u32))
                    {
                        self.put(i, Err(refusal));
                    }
                }
            }
            Endpoint::History => {
                let channel = channel_of(&fields)?;
                let limit = fields
                    .count("limit")?
                    .unwrap_or(u64::MAX)
                    .min(usize::MAX as u64) as usize;
                let since = match fields.raw("since") {
                    None => None,
                    Some(raw) => Some(parse_history_since(raw).ok_or_else(|| {
                        ApiError::field("since", "{\"offset\": N} or {\"epoch\": E, \"offset\": N}")
                    })?),
                };
                let owner = hub.owner_of(&channel);
                let query = Query::History {
                    channel: channel.into(),
                    since,
                    limit,
                };
                self.wait(Gather::One, 1);
                hub.query(conn, owner, query, ReplyTo::Api(0));
            }
            Endpoint::Presence | Endpoint::PresenceStats => {
                let channel = channel_of(&fields)?;
                let owner = hub.owner_of(&channel);
                let stats = endpoint == Endpoint::PresenceStats;
                self.wait(Gather::One, 1);
                hub.query(
                    conn,
                    owner,
                    Query::Presence {
                        channel: channel.into(),
                        stats,
                    },
                    ReplyTo::Api(0),
                );
            }
            Endpoint::Channels => {
                let prefix = fields.string("prefix")?.unwrap_or_default();
                self.ask_every_core(ctx, slot, Gather::Channels, || Query::Channels {
                    prefix: prefix.clone(),
                });
                self.ask_other_nodes(ctx, slot, (true, prefix));
            }
            Endpoint::Disconnect => {
                let user = fields
                    .string("user")?
                    .ok_or_else(|| ApiError::field("user", "a string (a token's sub)"))?;
                let code = fields.count("code")?.unwrap_or(4000);
                if !(3000..=4999).contains(&code) {
                    return Err(ApiError::field("code", "a close code from 3000 to 4999"));
                }
                let reason = fields
                    .string("reason")?
                    .unwrap_or_else(|| "disconnected by the server".into());
                if reason.len() > MAX_REASON_LEN {
                    return Err(ApiError::field("reason", "at most 123 bytes"));
                }
                if let Some(cluster) = hub.cluster() {
                    // The other nodes hear it through Redis; this one counts.
                    cluster
                        .disconnect_everywhere(&user, code as u16, &reason)
                        .map_err(|r| ApiError::from_refusal(&r))?;
                }
                self.ask_every_core(ctx, slot, Gather::Disconnected, || Query::Disconnect {
                    user: user.clone(),
                    code: code as u16,
                    reason: reason.clone(),
                });
            }
            Endpoint::Info => {
                self.ask_every_core(ctx, slot, Gather::Info, || Query::Info);
                self.ask_other_nodes(ctx, slot, (false, String::new()));
            }
        }
        // Answers produced on this core during the call are already kept.
        for part in hub.take_answers(conn) {
            self.put(part.index as usize, part.result);
        }
        if self.pending.as_ref().is_some_and(|p| p.missing == 0) {
            if let Some(pending) = self.pending.take() {
                let (status, body) = gather(ctx, pending);
                self.respond_gathered(slot, status, body.as_bytes());
            }
        }
        Ok(())
    }

    fn ask_every_core(
        &mut self,
        ctx: &ConnContext,
        slot: &Slot,
        gather: Gather,
        query: impl Fn() -> Query,
    ) {
        let cores = ctx.hub.cores();
        self.wait(gather, cores);
        for core in 0..cores {
            ctx.hub
                .query(slot.id(), core, query(), ReplyTo::Api(core as u32));
        }
    }

    /// On the Redis engine, one more part after the cores': every live
    /// node's records (`Cluster::nodes_read`), with channel counts under a
    /// prefix when `channels.0`.
    fn ask_other_nodes(&mut self, ctx: &ConnContext, slot: &Slot, channels: (bool, String)) {
        let Some(cluster) = ctx.hub.cluster() else {
            return;
        };
        let index = ctx.hub.cores();
        if let Some(pending) = &mut self.pending {
            pending.parts.push(None);
            pending.missing += 1;
        }
        let reply = ReplyTo::Api(index as u32);
        if let Err(refusal) = cluster.nodes_read(channels, ctx.hub.core(), slot.id(), reply) {
            self.put(index, Err(refusal));
        }
    }

    fn wait(&mut self, gather: Gather, parts: usize) {
        self.pending = Some(Pending {
            gather,
            parts: (0..parts).map(|_| None).collect(),
            missing: parts,
        });
    }

    fn put(&mut self, index: usize, result: Result<Bytes, Refusal>) {
        if let Some(pending) = &mut self.pending {
            if let Some(entry) = pending.parts.get_mut(index) {
                if entry.is_none() {
                    pending.missing -= 1;
                }
                *entry = Some(result);
            }
        }
    }

    fn respond_error(&self, slot: &Slot, err: &ApiError) {
        self.respond(
            slot,
            err.status,
            err.json().as_bytes(),
            retry_after(err.status),
        );
    }

    /// A response put together from answer parts: a refusal among them
    /// (an owner's full inbox, Redis down) says when to retry like any.
    fn respond_gathered(&self, slot: &Slot, status: u16, body: &[u8]) {
        self.respond(slot, status, body, retry_after(status));
    }

    fn respond(&self, slot: &Slot, status: u16, body: &[u8], extra: &[(&str, &str)]) {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if !self.closing {
            headers.push(("Connection", "keep-alive"));
        }
        let mut out = Vec::with_capacity(body.len() + 160);
        encode_plain_response_into(&mut out, status, "application/json", body, &headers);
        slot.outbox.borrow_mut().push(Bytes::from(out));
    }
}

/// `Retry-After: 1` for the statuses that mean "not now" (429, 503).
fn retry_after(status: u16) -> &'static [(&'static str, &'static str)] {
    match status {
        429 | 503 => &[("Retry-After", "1")],
        _ => &[],
    }
}

/// Puts a request's parts together: its status and body.
fn gather(ctx: &ConnContext, pending: Pending) -> (u16, String) {
    let mut parts: Vec<Result<Bytes, Refusal>> = pending
        .parts
        .into_iter()
        .map(|p| p.unwrap_or_else(|| Err(ErrorCode::Unavailable.into())))
        .collect();
    // On the Redis engine, channels and info have one more part: the
    // other nodes' records (this node's own figures are the cores' parts,
    // live rather than as of the last refresh).
    let cores = ctx.hub.cores();
    let nodes = match pending.gather {
        Gather::Channels | Gather::Info if parts.len() > cores => parts.pop(),
        _ => None,
    };
    let own = ctx
        .hub
        .cluster()
        .map(|c| c.node.clone())
        .unwrap_or_default();
    let others = |records: &Bytes| -> Vec<serde_json::Value> {
        let all: serde_json::Value = serde_json::from_slice(records).unwrap_or_default();
        let all = all["records"].as_array().cloned().unwrap_or_default();
        all.into_iter()
            .filter(|r| r["record"]["node"].as_str() != Some(own.as_str()))
            .collect()
    };
    match pending.gather {
        Gather::One => match parts.into_iter().next() {
            Some(Ok(json)) => (200, String::from_utf8_lossy(&json).into_owned()),
            Some(Err(refusal)) => {
                let err = ApiError::from_refusal(&refusal);
                (err.status, err.json())
            }
            None => (200, "{}".into()),
        },
        Gather::Results => {
            let items: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    Ok(json) => String::from_utf8_lossy(json).into_owned(),
                    Err(refusal) => ApiError::from_refusal(refusal).json(),
                })
                .collect();
            (200, format!("{{\"results\":[{}]}}", items.join(",")))
        }
        Gather::Channels => {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for part in parts.iter().flatten() {
                if let Ok(map) = serde_json::from_slice::<BTreeMap<String, u64>>(part) {
                    for (name, n) in map {
                        *counts.entry(name).or_default() += n;
                    }
                }
            }
            match &nodes {
                Some(Ok(records)) => {
                    for record in others(records) {
                        let Some(map) = record["channels"].as_object() else {
                            continue;
                        };
                        for (name, n) in map {
                            *counts.entry(name.clone()).or_default() += n.as_u64().unwrap_or(0);
                        }
                    }
                }
                Some(Err(refusal)) => {
                    let err = ApiError::from_refusal(refusal);
                    return (err.status, err.json());
                }
                None => {}
            }
            let body = serde_json::json!({ "channels": counts });
            (200, body.to_string())
        }
        Gather::Disconnected => {
            let total: u64 = parts
                .iter()
                .flatten()
                .filter_map(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                .filter_map(|v| v["disconnected"].as_u64())
                .sum();
            (200, format!("{{\"disconnected\":{total}}}"))
        }
        Gather::Info => {
            let workers: Vec<serde_json::Value> = parts
                .iter()
                .flatten()
                .filter_map(|p| serde_json::from_slice(p).ok())
                .collect();
            let sum = |key: &str| workers.iter().filter_map(|w| w[key].as_u64()).sum::<u64>();
            let engine = match ctx.hub.cluster() {
                Some(cluster) => serde_json::json!({
                    "kind": "redis",
                    "connected": cluster.degraded().is_none(),
                    "node": cluster.node,
                }),
                None if ctx.hub.is_durable() => serde_json::json!({ "kind": "disk" }),
                None => serde_json::json!({ "kind": "memory" }),
            };
            let mut body = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "engine": engine,
                "workers": ctx.hub.cores(),
                "clients": sum("clients"),
                "channels": sum("channels"),
                "subscriptions": sum("subscriptions"),
                "publishes": sum("publishes"),
                "per_worker": workers,
            });
            if let (Some(cluster), Some(nodes)) = (ctx.hub.cluster(), &nodes) {
                let this = serde_json::json!({
                    "node": cluster.node,
                    "address": cluster.address,
                    "version": env!("CARGO_PKG_VERSION"),
                    "started": cluster.started,
                    "workers": ctx.hub.cores(),
                    "clients": sum("clients"),
                    "channels": sum("channels"),
                    "subscriptions": sum("subscriptions"),
                });
                match nodes {
                    Ok(records) => body["nodes"] = node_list(this, &others(records)).into(),
                    Err(refusal) => {
                        body["nodes"] = serde_json::json!([this]);
                        body["nodes_error"] = refusal.message.to_string().into();
                    }
                }
            }
            (200, body.to_string())
        }
    }
}

/// Every live node, this one (`this`, live figures) first, then the
/// others by node id, each summed over its cores' records.
fn node_list(this: serde_json::Value, others: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut by_node: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for entry in others {
        let record = &entry["record"];
        let Some(node) = record["node"].as_str() else {
            continue;
        };
        let summed = by_node.entry(node.to_string()).or_insert_with(|| {
            serde_json::json!({
                "node": node,
                "address": record["address"],
                "version": record["version"],
                "started": record["started"],
                "workers": 0,
                "clients": 0,
                "channels": 0,
                "subscriptions": 0,
            })
        });
        for key in ["clients", "channels", "subscriptions"] {
            let n = summed[key].as_u64().unwrap_or(0) + record[key].as_u64().unwrap_or(0);
            summed[key] = n.into();
        }
        summed["workers"] = (summed["workers"].as_u64().unwrap_or(0) + 1).into();
    }
    std::iter::once(this).chain(by_node.into_values()).collect()
}

/// `{"offset": N}` or `{"epoch": E, "offset": N}`.
pub(crate) fn parse_history_since(raw: &RawValue) -> Option<HistorySince> {
    if let Ok(since) = serde_json::from_str::<Since>(raw.get()) {
        return Some(since.into());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Offset {
        offset: u64,
    }
    let offset: Offset = serde_json::from_str(raw.get()).ok()?;
    Some(HistorySince {
        offset: offset.offset,
        epoch: None,
    })
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A request body: a JSON object, its fields kept raw until asked for.
struct Fields<'a>(BTreeMap<String, &'a RawValue>);

impl<'a> Fields<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, ApiError> {
        let bad = || ApiError::new(400, "invalid_json", "the body must be a JSON object");
        if body.is_empty() {
            return Ok(Fields(BTreeMap::new()));
        }
        let text = std::str::from_utf8(body).map_err(|_| bad())?;
        if !text
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{')
        {
            return Err(bad());
        }
        serde_json::from_str(text).map(Fields).map_err(|_| bad())
    }

    fn raw(&self, field: &str) -> Option<&'a RawValue> {
        self.0.get(field).copied().filter(|raw| raw.get() != "null")
    }

    fn string(&self, field: &str) -> Result<Option<String>, ApiError> {
        self.raw(field)
            .map(|raw| {
                serde_json::from_str::<String>(raw.get())
                    .map_err(|_| ApiError::field(field, "a string"))
            })
            .transpose()
    }

    fn count(&self, field: &str) -> Result<Option<u64>, ApiError> {
        self.raw(field)
            .map(|raw| {
                raw.get()
                    .parse::<u64>()
                    .map_err(|_| ApiError::field(field, "a non-negative integer"))
            })
            .transpose()
    }

    fn strings(&self, field: &str) -> Result<Vec<String>, ApiError> {
        let raw = self
            .raw(field)
            .ok_or_else(|| ApiError::field(field, "an array of strings"))?;
        serde_json::from_str(raw.get()).map_err(|_| ApiError::field(field, "an array of strings"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_the_field_that_is_wrong() {
        let fields = Fields::parse(br#"{"channel":7,"limit":-1,"channels":["a",1],"data":null}"#)
            .expect("an object");
        assert_eq!(
            fields.string("channel").expect_err("a number").message,
            "channel: expected a string"
        );
        assert_eq!(
            fields.count("limit").expect_err("negative").message,
            "limit: expected a non-negative integer"
        );
        assert!(fields.strings("channels").is_err());
        assert!(fields.raw("data").is_none(), "null is absent");
        for bad in [&b"[1]"[..], b"nope", b"\xff", b"{\"a\":"] {
            assert_eq!(Fields::parse(bad).err().map(|e| e.status), Some(400));
        }
        assert_eq!(
            parse_history_since(&RawValue::from_string("{\"offset\":3}".into()).expect("raw")),
            Some(HistorySince {
                offset: 3,
                epoch: None
            })
        );
    }

    #[test]
    fn refusals_map_to_statuses() {
        let status = |code: ErrorCode| ApiError::from_refusal(&code.into()).status;
        assert_eq!(status(ErrorCode::Overloaded), 429);
        assert_eq!(status(ErrorCode::Unavailable), 503);
        assert_eq!(status(ErrorCode::PublishTooLarge), 413);
        assert_eq!(status(ErrorCode::InvalidChannel), 400);
        let json = ApiError::new(400, "invalid_request", "a \"b\"").json();
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["error"]["message"], "a \"b\"");
    }
}

//! The hub's answers to questions, and presence: what a channel's owner
//! core (or every core) answers for the `history`, `presence` and server API
//! requests, who is subscribed, the join/leave pushes, and the messages
//! between nodes on the Redis engine. A child module of `hub.rs` (it works on
//! the hub's private state), kept apart so that file stays about routing,
//! ordering and fan-out.

use std::sync::Arc;

use bytes::Bytes;

use super::super::answer::{self, history_json, ApiPart, HistorySince, Query, ReplyTo};
use super::super::presence::{client_id, presence_frame, Presence, Who};
use super::super::Refusal;
use super::{Cluster, Hub, Msg};
use crate::engine::redis::bridge::PresenceOp;
use crate::mailbox::{ConnId, KICK_ANSWER, KICK_DISCONNECT};
use crate::proto::v1::frame_payload;

impl Hub {
    /// Owner side: `conn` on `from` subscribed; its channel's subscribers
    /// hear of it when the channel has join/leave pushes.
    pub(super) fn owner_presence_join(
        &self,
        channel: &Arc<str>,
        from: usize,
        conn: ConnId,
        who: Who,
    ) {
        let joined = self
            .presence
            .borrow_mut()
            .entry(channel.clone())
            .or_default()
            .join(from, conn, who.clone());
        if let (true, Some(cluster)) = (joined, &self.cluster) {
            let member = format!("{}-{}", cluster.node, client_id(from, conn));
            cluster.presence_write(
                channel,
                PresenceOp::Join(vec![(member, who.encode_stored())]),
            );
        }
        if joined && self.settings.presence_pushes(channel) {
            let frame = presence_frame(channel, "join", &client_id(from, conn), &who);
            self.fan_out(channel, frame);
        }
    }

    /// Owner side: `conn` on `from` left `channel` (once; a repeat is a no-op).
    pub(super) fn owner_presence_leave(&self, channel: &Arc<str>, from: usize, conn: ConnId) {
        let left = {
            let mut presence = self.presence.borrow_mut();
            let Some(set) = presence.get_mut(channel) else {
                return;
            };
            let left = set.leave(from, conn);
            if set.is_empty() {
                presence.remove(channel);
            }
            left
        };
        if let (Some(_), Some(cluster)) = (&left, &self.cluster) {
            let member = format!("{}-{}", cluster.node, client_id(from, conn));
            cluster.presence_write(channel, PresenceOp::Leave(vec![member]));
        }
        if let Some(who) = left {
            if self.settings.presence_pushes(channel) {
                let frame = presence_frame(channel, "leave", &client_id(from, conn), &who);
                self.fan_out(channel, frame);
            }
        }
    }

    /// Sends a frame that is no publication (no offset, no history) to every
    /// core with subscribers of `channel` this core owns, compressed once
    /// for those that share compressed pushes (as a publish is).
    pub(super) fn fan_out(&self, channel: &Arc<str>, frame: Bytes) {
        let (targets, widest): (Vec<usize>, u8) = match self.cluster {
            Some(_) => match self.mirrors.borrow().get(channel) {
                Some(m) => (
                    m.channel().subscriber_cores().collect(),
                    m.channel().deflate_widest(),
                ),
                None => (Vec::new(), 0),
            },
            None => match self.owned.borrow().get(channel) {
                Some(ch) => (ch.subscriber_cores().collect(), ch.deflate_widest()),
                None => (Vec::new(), 0),
            },
        };
        if targets.is_empty() {
            return;
        }
        let packed = self.deflate.shared_push(&frame, widest);
        for core in targets {
            let msg = Msg::Deliver {
                channel: channel.clone(),
                frame: frame.clone(),
                packed: packed.clone(),
            };
            self.emit(core, msg);
        }
    }

    /// Keeps an answer part for the API connection `conn` and kicks it.
    pub(super) fn take_part(&self, conn: ConnId, part: ApiPart) {
        let slot = self.members.borrow().get(&conn).map(|m| m.slot.clone());
        let Some(slot) = slot else { return };
        self.answers
            .borrow_mut()
            .entry(conn)
            .or_default()
            .push(part);
        slot.kick(KICK_ANSWER);
    }

    pub(super) fn handle_query(&self, query: Query, from: usize, conn: ConnId, reply: ReplyTo) {
        let result = match query {
            Query::History {
                channel,
                since,
                limit,
            } => match &self.cluster {
                Some(cluster) => {
                    match cluster.history_read(&channel, since, limit, (from, conn, reply)) {
                        Ok(()) => return,
                        Err(refusal) => Err(refusal),
                    }
                }
                None => self.owner_history(&channel, since, limit),
            },
            Query::Presence { channel, stats } if self.cluster.is_some() => {
                let limits = (stats, self.settings.max_presence);
                let read = self
                    .cluster
                    .as_ref()
                    .map(|c| c.presence_read(&channel, limits, from, conn, reply));
                match read {
                    Some(Err(refusal)) => Err(refusal),
                    _ => return,
                }
            }
            Query::Presence { channel, stats } => {
                let presence = self.presence.borrow();
                let empty = Presence::default();
                let set = presence.get(&channel).unwrap_or(&empty);
                Ok(match stats {
                    true => set.stats_json(),
                    false => set.json(self.settings.max_presence),
                })
            }
            Query::Channels { prefix } => {
                let local = self.local.borrow();
                let mut out = String::from("{");
                let matching = local.iter().filter(|(name, _)| name.starts_with(&prefix));
                for (i, (name, entry)) in matching.enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&answer::json_string(name));
                    out.push(':');
                    out.push_str(&entry.live.len().to_string());
                }
                out.push('}');
                Ok(Bytes::from(out))
            }
            Query::Disconnect { user, code, reason } => {
                let mut closed = 0;
                for (id, member) in self.members.borrow().iter() {
                    if member.ws && *member.who.user == *user {
                        self.closing
                            .borrow_mut()
                            .insert(*id, (code, reason.clone()));
                        member.slot.kick(KICK_DISCONNECT);
                        closed += 1;
                    }
                }
                Ok(Bytes::from(format!("{{\"disconnected\":{closed}}}")))
            }
            Query::Info => {
                let snapshot = self.snapshot();
                let members = self.members.borrow();
                let clients = members.values().filter(|m| m.ws).count();
                Ok(Bytes::from(format!(
                    "{{\"worker\":{},\"clients\":{clients},\"channels\":{},\"subscriptions\":{},\"publishes\":{}}}",
                    self.core, snapshot.channels, snapshot.subscriptions, snapshot.publishes
                )))
            }
        };
        self.answer_to(from, conn, reply, result);
    }

    /// Redis engine: this core's record among the live nodes' (what
    /// `/api/info` and `/api/channels` on other nodes count it as), written
    /// with each presence refresh.
    pub(super) fn write_node_record(&self, cluster: &Cluster) {
        let snapshot = self.snapshot();
        let clients = self.members.borrow().values().filter(|m| m.ws).count();
        let record = serde_json::json!({
            "node": cluster.node,
            "address": cluster.address,
            "version": env!("CARGO_PKG_VERSION"),
            "started": cluster.started,
            "worker": self.core,
            "clients": clients,
            "channels": snapshot.channels,
            "subscriptions": snapshot.subscriptions,
        });
        let channels: Vec<(String, u64)> = self
            .local
            .borrow()
            .iter()
            .filter(|(_, entry)| !entry.live.is_empty())
            .map(|(name, entry)| (name.to_string(), entry.live.len() as u64))
            .collect();
        cluster.node_write(self.core, record.to_string(), channels);
    }

    /// Owner side of a history read on the memory engine (on the Redis
    /// engine, Redis answers it: `Cluster::history_read`).
    pub(super) fn owner_history(
        &self,
        channel: &Arc<str>,
        since: Option<HistorySince>,
        limit: usize,
    ) -> Result<Bytes, Refusal> {
        let owned = self.owned.borrow();
        let Some(ch) = owned.get(channel) else {
            return Ok(history_json("", 0, true, &[]));
        };
        let after = since.as_ref().map(|s| s.offset);
        let epoch = since.as_ref().and_then(|s| s.epoch.as_deref());
        let read = ch.read(after, epoch, limit);
        let payloads: Vec<Bytes> = read.frames.iter().map(frame_payload).collect();
        let messages: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        Ok(history_json(
            ch.epoch(),
            ch.last_offset(),
            read.complete,
            &messages,
        ))
    }
}

/// The Redis pub/sub channel of messages between nodes (`/api/disconnect`
/// of a user on every node). `!` is outside the channel alphabet, so no
/// client channel shares it; every node subscribes to it at start.
pub const CONTROL_CHANNEL: &str = "!control";

/// A message between nodes on [`CONTROL_CHANNEL`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ControlMsg {
    /// The node that sent it (it has acted on it already).
    pub node: String,
    pub disconnect: String,
    pub code: u16,
    pub reason: String,
}

impl Hub {
    /// A message from another node: carried out on every core of this one.
    pub(super) fn control(&self, payload: &[u8]) {
        let Ok(msg) = serde_json::from_slice::<ControlMsg>(payload) else {
            tracing::debug!("unreadable control message");
            return;
        };
        if self.cluster.as_ref().is_some_and(|c| c.node == msg.node) {
            return;
        }
        for core in 0..self.port.cores() {
            let query = Query::Disconnect {
                user: msg.disconnect.clone(),
                code: msg.code,
                reason: msg.reason.clone(),
            };
            self.query(ConnId::from_raw(0), core, query, ReplyTo::Nobody);
        }
    }
}

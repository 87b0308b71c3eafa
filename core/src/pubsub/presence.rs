//! Who is subscribed to a channel, as its owner core keeps it.
//!
//! The owner core is the one writer: a subscribe reaching it adds the
//! connection (`join`), the subscriber core's word that the connection left
//! the channel (unsubscribe, close, or a refused subscribe) removes it
//! (`leave`). Both come over the bus in the order the subscriber core sent
//! them, so a leave never overtakes its join; and each is applied once
//! (a second leave of the same connection finds nothing), which is what
//! makes the join/leave pushes exactly once per subscription.
//!
//! Every subscriber is kept (its core, connection and user: about 40 bytes);
//! `pubsub.max_presence` bounds what an answer lists: past it, counts only.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use super::answer::json_string;
use crate::mailbox::ConnId;
use crate::proto::v1::text_frame_parts;

/// A subscriber's name in presence answers and pushes: its core and its
/// connection id, in hex (`"1-2a00000003"`), unique within the node.
pub fn client_id(core: usize, conn: ConnId) -> String {
    format!("{core:x}-{:x}", conn.raw())
}

/// One channel's subscribers.
#[derive(Debug, Default)]
pub struct Presence {
    /// `(core, conn)` → the token's `sub` (empty when anonymous).
    members: BTreeMap<(usize, ConnId), Arc<str>>,
}

impl Presence {
    /// Adds a subscriber; false when it was already there.
    pub fn join(&mut self, core: usize, conn: ConnId, user: Arc<str>) -> bool {
        self.members.insert((core, conn), user).is_none()
    }

    /// Removes a subscriber; its user when it was there.
    pub fn leave(&mut self, core: usize, conn: ConnId) -> Option<Arc<str>> {
        self.members.remove(&(core, conn))
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every subscriber: its client id (after `prefix`) and its user.
    pub fn entries(&self, prefix: &str) -> Vec<(String, String)> {
        self.members
            .iter()
            .map(|((core, conn), user)| {
                (
                    format!("{prefix}{}", client_id(*core, *conn)),
                    user.to_string(),
                )
            })
            .collect()
    }

    /// `{"clients":N,"users":U}`.
    pub fn stats_json(&self) -> Bytes {
        entries_json(&self.entries(""), 0, true)
    }

    /// See [`entries_json`].
    pub fn json(&self, max: usize) -> Bytes {
        entries_json(&self.entries(""), max, false)
    }
}

/// A presence answer from `(client, user)` entries:
/// `{"clients":N,"users":U,"complete":true,"presence":{CLIENT:{"user":..},..}}`,
/// past `max` entries only the counts with `"complete":false`, and with
/// `stats` only `{"clients":N,"users":U}`.
pub fn entries_json(entries: &[(String, String)], max: usize, stats: bool) -> Bytes {
    let users: HashSet<&str> = entries.iter().map(|(_, u)| u.as_str()).collect();
    let mut out = format!("{{\"clients\":{},\"users\":{}", entries.len(), users.len());
    if !stats {
        let complete = entries.len() <= max;
        out.push_str(if complete {
            ",\"complete\":true"
        } else {
            ",\"complete\":false"
        });
        if complete {
            out.push_str(",\"presence\":{");
            for (i, (client, user)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(client));
                out.push_str(":{\"user\":");
                out.push_str(&json_string(user));
                out.push('}');
            }
            out.push('}');
        }
    }
    out.push('}');
    Bytes::from(out)
}

/// The push a channel's subscribers get when someone joins (`kind` =
/// `"join"`) or leaves (`"leave"`): `{"channel":..,"join":{"client":..,"user":..}}`.
pub fn presence_frame(channel: &str, kind: &str, client: &str, user: &str) -> Bytes {
    let client = json_string(client);
    let user = json_string(user);
    text_frame_parts(&[
        b"{\"channel\":\"",
        channel.as_bytes(),
        b"\",\"",
        kind.as_bytes(),
        b"\":{\"client\":",
        client.as_bytes(),
        b",\"user\":",
        user.as_bytes(),
        b"}}",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_leaves_count_once_and_answers_are_bounded() {
        let mut p = Presence::default();
        let (a, b) = (ConnId::from_raw(1), ConnId::from_raw(2));
        assert!(p.join(0, a, Arc::from("ann")));
        assert!(
            !p.join(0, a, Arc::from("ann")),
            "the same subscription twice"
        );
        assert!(
            p.join(1, a, Arc::from("ann")),
            "another core's connection 1"
        );
        assert!(p.join(1, b, Arc::from("bob")));
        let full: serde_json::Value = serde_json::from_slice(&p.json(10)).expect("json");
        assert_eq!(full["clients"], 3);
        assert_eq!(full["users"], 2);
        assert_eq!(full["presence"]["1-2"]["user"], "bob");
        let counts: serde_json::Value = serde_json::from_slice(&p.json(2)).expect("json");
        assert_eq!(
            counts,
            serde_json::json!({"clients":3,"users":2,"complete":false})
        );
        assert_eq!(p.leave(1, b).as_deref(), Some("bob"));
        assert_eq!(p.leave(1, b), None, "a second leave finds nothing");
        assert_eq!(&p.stats_json()[..], br#"{"clients":2,"users":1}"#);
        let frame = presence_frame("room", "join", "0-1", "ann");
        assert!(frame.ends_with(br#"{"channel":"room","join":{"client":"0-1","user":"ann"}}"#));
    }
}

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
//! Every subscriber is kept (its core, connection, user and info: about 56
//! bytes, the user and info shared with the connection's own entry);
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

/// Who a subscriber is: the token's `sub` (empty when anonymous) and its
/// `info` claim (raw JSON text, at most `pubsub.max_presence_info_bytes`),
/// shared by the connection's member entry and every channel it joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub user: Arc<str>,
    pub info: Option<Arc<str>>,
}

impl Who {
    /// The value a node stores for a member in Redis's presence hash:
    /// `LEN:USER` then the info's JSON text (`3:ann{"device":"phone"}`),
    /// LEN the user's length in bytes, so neither needs escaping.
    pub fn encode_stored(&self) -> String {
        let info = self.info.as_deref().unwrap_or("");
        format!("{}:{}{info}", self.user.len(), self.user)
    }

    /// Reads [`Who::encode_stored`]'s form back; a value in another form
    /// is all user, and info that is not JSON is dropped (Redis is not
    /// trusted to hand back only what this server wrote).
    pub fn decode_stored(value: &str) -> Who {
        let whole = || Who {
            user: Arc::from(value),
            info: None,
        };
        let Some((len, rest)) = value.split_once(':') else {
            return whole();
        };
        let Ok(len) = len.parse::<usize>() else {
            return whole();
        };
        if len > rest.len() || !rest.is_char_boundary(len) {
            return whole();
        }
        let (user, info) = rest.split_at(len);
        let info = (!info.is_empty()
            && serde_json::from_str::<&serde_json::value::RawValue>(info).is_ok())
        .then(|| Arc::from(info));
        Who {
            user: Arc::from(user),
            info,
        }
    }
}

/// One subscriber in a presence answer: its client id and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub client: String,
    pub who: Who,
}

/// One channel's subscribers.
#[derive(Debug, Default)]
pub struct Presence {
    /// `(core, conn)` → who subscribed.
    members: BTreeMap<(usize, ConnId), Who>,
}

impl Presence {
    /// Adds a subscriber; false when it was already there.
    pub fn join(&mut self, core: usize, conn: ConnId, who: Who) -> bool {
        self.members.insert((core, conn), who).is_none()
    }

    /// Removes a subscriber; who it was when it was there.
    pub fn leave(&mut self, core: usize, conn: ConnId) -> Option<Who> {
        self.members.remove(&(core, conn))
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every subscriber: its client id (after `prefix`) and who it is.
    pub fn entries(&self, prefix: &str) -> Vec<Entry> {
        self.members
            .iter()
            .map(|((core, conn), who)| Entry {
                client: format!("{prefix}{}", client_id(*core, *conn)),
                who: who.clone(),
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

/// A presence answer from its entries:
/// `{"clients":N,"users":U,"complete":true,"presence":{CLIENT:{"user":..,"info":..},..}}`
/// (`info` only for a subscriber whose token had one), past `max` entries
/// only the counts with `"complete":false`, and with `stats` only
/// `{"clients":N,"users":U}`.
pub fn entries_json(entries: &[Entry], max: usize, stats: bool) -> Bytes {
    let users: HashSet<&str> = entries.iter().map(|e| &*e.who.user).collect();
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
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(&entry.client));
                out.push(':');
                push_who(&mut out, &entry.who);
            }
            out.push('}');
        }
    }
    out.push('}');
    Bytes::from(out)
}

/// `{"user":..}` or `{"user":..,"info":..}`.
fn push_who(out: &mut String, who: &Who) {
    out.push_str("{\"user\":");
    out.push_str(&json_string(&who.user));
    if let Some(info) = &who.info {
        out.push_str(",\"info\":");
        out.push_str(info);
    }
    out.push('}');
}

/// The push a channel's subscribers get when someone joins (`kind` =
/// `"join"`) or leaves (`"leave"`):
/// `{"channel":..,"join":{"client":..,"user":..,"info":..}}`.
pub fn presence_frame(channel: &str, kind: &str, client: &str, who: &Who) -> Bytes {
    let client = json_string(client);
    let mut body = String::with_capacity(32 + who.user.len());
    push_who(&mut body, who);
    // `{"user":..` without its `{`: the client goes first.
    text_frame_parts(&[
        b"{\"channel\":\"",
        channel.as_bytes(),
        b"\",\"",
        kind.as_bytes(),
        b"\":{\"client\":",
        client.as_bytes(),
        b",",
        &body.as_bytes()[1..],
        b"}",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_leaves_count_once_and_answers_are_bounded() {
        let mut p = Presence::default();
        let (a, b) = (ConnId::from_raw(1), ConnId::from_raw(2));
        assert!(p.join(0, a, who("ann", None)));
        assert!(
            !p.join(0, a, who("ann", None)),
            "the same subscription twice"
        );
        assert!(
            p.join(1, a, who("ann", None)),
            "another core's connection 1"
        );
        assert!(p.join(1, b, who("bob", Some(r#"{"device":"phone"}"#))));
        let full: serde_json::Value = serde_json::from_slice(&p.json(10)).expect("json");
        assert_eq!(full["clients"], 3);
        assert_eq!(full["users"], 2);
        assert_eq!(full["presence"]["1-2"]["user"], "bob");
        assert_eq!(full["presence"]["1-2"]["info"]["device"], "phone");
        assert!(full["presence"]["0-1"].get("info").is_none());
        let counts: serde_json::Value = serde_json::from_slice(&p.json(2)).expect("json");
        assert_eq!(
            counts,
            serde_json::json!({"clients":3,"users":2,"complete":false})
        );
        assert_eq!(p.leave(1, b).map(|w| w.user), Some(Arc::from("bob")));
        assert_eq!(p.leave(1, b), None, "a second leave finds nothing");
        assert_eq!(&p.stats_json()[..], br#"{"clients":2,"users":1}"#);
        let frame = presence_frame("room", "join", "0-1", &who("ann", None));
        assert!(frame.ends_with(br#"{"channel":"room","join":{"client":"0-1","user":"ann"}}"#));
        let frame = presence_frame("room", "leave", "0-2", &who("bob", Some("\"tv\"")));
        assert!(frame
            .ends_with(br#"{"channel":"room","leave":{"client":"0-2","user":"bob","info":"tv"}}"#));
    }

    fn who(user: &str, info: Option<&str>) -> Who {
        Who {
            user: Arc::from(user),
            info: info.map(Arc::from),
        }
    }

    #[test]
    fn stored_values_read_back_and_foreign_ones_are_all_user() {
        for w in [
            who("ann", None),
            who("", Some("{}")),
            who("a:b", Some(r#"{"x":"é"}"#)),
            who("é", Some("\"s\"")),
        ] {
            assert_eq!(Who::decode_stored(&w.encode_stored()), w);
        }
        assert_eq!(Who::decode_stored("ann"), who("ann", None));
        assert_eq!(Who::decode_stored("9:ann"), who("9:ann", None));
        assert_eq!(Who::decode_stored("3:ann{broken"), who("ann", None));
    }
}

//! The names a channel has in Redis: two keys and one pub/sub channel.
//!
//! For a ringcast channel `news` and the default prefix `rc:`:
//!
//! | name          | type    | holds                                              |
//! |---------------|---------|----------------------------------------------------|
//! | `rc:{news}:m` | hash    | `e`: the epoch (random hex), `t`: the top offset   |
//! | `rc:{news}:h` | stream  | history: entry id `<offset>-0`, fields `t` (ms), `d` |
//! | `rc:{news}:p` | pub/sub | live pushes, `<offset>:<epoch>:<payload>`          |
//! | `rc:{news}:z` | zset    | presence: `NODE-CLIENT` → expiry (ms)              |
//! | `rc:{news}:u` | hash    | presence: `NODE-CLIENT` → `LEN:SUB` + info JSON     |
//!
//! and, once per prefix, the live nodes' figures (`lua/nodes.lua`), one
//! member per core of each node (`NODE-CORE`):
//!
//! | name                   | type | holds                                      |
//! |------------------------|------|--------------------------------------------|
//! | `rc:{!nodes}:z`        | zset | `NODE-CORE` → expiry (ms)                  |
//! | `rc:{!nodes}:r`        | hash | `NODE-CORE` → record (JSON: address, counts) |
//! | `rc:{!nodes}:c:MEMBER` | hash | channel → subscribers on that core         |
//!
//! (`!` is outside the channel alphabet: no channel's names meet these.)
//!
//! The braces are a Redis Cluster hash tag: all three names hash to the slot
//! of `news`, so the publish script (which touches both keys and publishes)
//! runs on one shard, and `SPUBLISH` reaches only that shard. The prefix must
//! therefore not contain `{`. A channel name holding `}` only shortens the
//! tag; its names still share one slot.

/// Builds the names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    fn name(&self, channel: &str, suffix: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + channel.len() + 4);
        s.push_str(&self.prefix);
        s.push('{');
        s.push_str(channel);
        s.push('}');
        s.push_str(suffix);
        s
    }

    /// The meta hash: epoch and top offset.
    pub fn meta(&self, channel: &str) -> String {
        self.name(channel, ":m")
    }

    /// The history stream.
    pub fn history(&self, channel: &str) -> String {
        self.name(channel, ":h")
    }

    /// Presence: member → expiry (a sorted set).
    pub fn presence(&self, channel: &str) -> String {
        self.name(channel, ":z")
    }

    /// Presence: member → user and info (a hash).
    pub fn presence_users(&self, channel: &str) -> String {
        self.name(channel, ":u")
    }

    /// The nodes' records: member → expiry, member → record, and the
    /// prefix of each member's channel counts.
    pub fn nodes(&self) -> (String, String, String) {
        (
            self.name("!nodes", ":z"),
            self.name("!nodes", ":r"),
            self.name("!nodes", ":c:"),
        )
    }

    /// The pub/sub channel live pushes travel on.
    pub fn pubsub(&self, channel: &str) -> String {
        self.name(channel, ":p")
    }

    /// The ringcast channel a pub/sub channel name belongs to, if it is ours.
    pub fn channel_of<'a>(&self, pubsub: &'a str) -> Option<&'a str> {
        pubsub
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('{')?
            .strip_suffix("}:p")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_hash_tag_and_round_trip() {
        let keys = Keys::new("rc:");
        assert_eq!(keys.meta("news"), "rc:{news}:m");
        assert_eq!(keys.history("news"), "rc:{news}:h");
        assert_eq!(keys.pubsub("news"), "rc:{news}:p");
        assert_eq!(keys.channel_of("rc:{news}:p"), Some("news"));
        assert_eq!(keys.channel_of("rc:{a}b}:p"), Some("a}b"));
        assert_eq!(keys.channel_of("other:{news}:p"), None);
        assert_eq!(keys.channel_of("rc:{news}:m"), None);
        assert_eq!(keys.nodes().2, "rc:{!nodes}:c:");
    }
}

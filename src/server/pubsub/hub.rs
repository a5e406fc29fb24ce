//! The node's Pub/Sub registry: which connection listens to which channel, pattern and shard
//! channel, and local delivery of a published message to every matching mailbox. Messages from
//! other nodes arrive here too ([`PublishSink`]). Patterns match with the project's bounded
//! glob (`cmd::glob`), so no pattern can make a publish backtrack exponentially.

use super::mailbox::{Limit, Mailbox, Message};
use crate::cmd::glob;
use crate::raft::broadcast::PublishSink;
use crate::raft::rpc::PubMessage;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

/// Subscribers of one channel or pattern: client id -> mailbox.
type Listeners = BTreeMap<u64, Arc<Mailbox>>;

/// The three namespaces of Redis 7: channels, patterns (over channels) and shard channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Channels,
    Patterns,
    Shard,
}

#[derive(Default)]
struct Registry {
    channels: BTreeMap<Bytes, Listeners>,
    patterns: BTreeMap<Bytes, Listeners>,
    shard: BTreeMap<Bytes, Listeners>,
}

impl Registry {
    fn space(&mut self, space: Space) -> &mut BTreeMap<Bytes, Listeners> {
        match space {
            Space::Channels => &mut self.channels,
            Space::Patterns => &mut self.patterns,
            Space::Shard => &mut self.shard,
        }
    }
}

/// The registry of one node.
pub struct PubSub {
    registry: Mutex<Registry>,
    /// `client-output-buffer-limit pubsub`.
    limit: Mutex<Limit>,
}

impl PubSub {
    /// A registry whose subscribers are bounded by `limit`.
    pub fn new(limit: Limit) -> PubSub {
        PubSub { registry: Mutex::default(), limit: Mutex::new(limit) }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The output limit of subscribers.
    pub fn limit(&self) -> Limit {
        *self.limit.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_limit(&self, limit: Limit) {
        *self.limit.lock().unwrap_or_else(|p| p.into_inner()) = limit;
    }

    /// Registers `client`'s mailbox under `name` in `space`.
    pub fn add(&self, space: Space, name: &Bytes, client: u64, mailbox: &Arc<Mailbox>) {
        self.registry().space(space).entry(name.clone()).or_default().insert(client, mailbox.clone());
    }

    /// Removes `client` from `name` in `space`; a name nobody listens to any more is forgotten.
    pub fn remove(&self, space: Space, name: &Bytes, client: u64) {
        let mut reg = self.registry();
        let names = reg.space(space);
        if let Some(listeners) = names.get_mut(name) {
            listeners.remove(&client);
            if listeners.is_empty() {
                names.remove(name);
            }
        }
    }

    /// Hands a PUBLISH (or, with `shard`, an SPUBLISH) to this node's subscribers; returns
    /// how many received it (each channel subscription and each matching pattern counts, as
    /// in Redis).
    pub fn publish(&self, shard: bool, channel: &Bytes, payload: &Bytes) -> usize {
        let limit = self.limit();
        let now = Instant::now();
        let reg = self.registry();
        let mut receivers = 0;
        let (space, make): (_, fn(&Bytes, &Bytes) -> Message) = if shard {
            (&reg.shard, |c, p| Message::Shard { channel: c.clone(), payload: p.clone() })
        } else {
            (&reg.channels, |c, p| Message::Channel { channel: c.clone(), payload: p.clone() })
        };
        for mailbox in space.get(channel).into_iter().flat_map(|l| l.values()) {
            mailbox.push(make(channel, payload), &limit, now);
            receivers += 1;
        }
        if shard {
            return receivers;
        }
        for (pattern, listeners) in &reg.patterns {
            if !glob::matches(pattern, channel, false) {
                continue;
            }
            for mailbox in listeners.values() {
                let msg =
                    Message::Pattern { pattern: pattern.clone(), channel: channel.clone(), payload: payload.clone() };
                mailbox.push(msg, &limit, now);
                receivers += 1;
            }
        }
        receivers
    }

    /// The active names of `space` (channels or shard channels) matching `pattern` (all
    /// without one), for PUBSUB CHANNELS / SHARDCHANNELS.
    pub fn names(&self, space: Space, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut reg = self.registry();
        let names = reg.space(space);
        names.keys().filter(|name| pattern.is_none_or(|p| glob::matches(p, name, false))).cloned().collect()
    }

    /// How many connections listen to `name` in `space` (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn listeners(&self, space: Space, name: &[u8]) -> usize {
        self.registry().space(space).get(name).map_or(0, |l| l.len())
    }

    /// How many channels have subscribers (INFO `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.registry().channels.len()
    }

    /// How many distinct patterns are subscribed to (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.registry().patterns.len()
    }
}

impl PublishSink for PubSub {
    fn deliver(&self, msgs: Vec<PubMessage>) {
        for m in msgs {
            self.publish(m.shard, &m.channel, &m.payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RespVersion;
    use bytes::BytesMut;

    fn drained(mb: &Mailbox) -> String {
        let mut out = BytesMut::new();
        mb.drain_into(RespVersion::Resp2, &mut out);
        String::from_utf8_lossy(&out).replace("\r\n", " ")
    }

    #[test]
    fn publish_reaches_channels_and_matching_patterns_and_counts_each() {
        let hub = PubSub::new(crate::config::OutputLimits::default().pubsub);
        let (a, b) = (Arc::new(Mailbox::default()), Arc::new(Mailbox::default()));
        hub.add(Space::Channels, &"news".into(), 1, &a);
        hub.add(Space::Patterns, &"n*".into(), 1, &a);
        hub.add(Space::Patterns, &"x*".into(), 2, &b);
        hub.add(Space::Shard, &"news".into(), 2, &b);
        assert_eq!(hub.publish(false, &"news".into(), &"hi".into()), 2);
        assert_eq!(drained(&a), "*3 $7 message $4 news $2 hi *4 $8 pmessage $2 n* $4 news $2 hi ");
        assert_eq!(drained(&b), "", "shard subscribers do not hear PUBLISH, nor non-matching patterns");
        assert_eq!(hub.publish(true, &"news".into(), &"s".into()), 1);
        assert_eq!(drained(&b), "*3 $8 smessage $4 news $1 s ");
        assert_eq!(hub.names(Space::Channels, None), vec![Bytes::from("news")]);
        assert_eq!(hub.names(Space::Channels, Some(b"x*")), Vec::<Bytes>::new());
        assert_eq!((hub.listeners(Space::Channels, b"news"), hub.pattern_count()), (1, 2));
        hub.remove(Space::Channels, &"news".into(), 1);
        assert!(hub.names(Space::Channels, None).is_empty(), "an unused channel is forgotten");
    }
}

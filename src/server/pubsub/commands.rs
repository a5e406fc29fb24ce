//! The Pub/Sub commands of a connection: (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE (whose replies
//! are one push frame per channel), PUBLISH / SPUBLISH (to this node's subscribers, and to
//! the other nodes through the Raft group's broadcast), PUBSUB introspection, and RESP2's
//! subscribed-mode rules (only a few commands are allowed, PING answers differently).

use super::hub::Space;
use super::mailbox::Mailbox;
use crate::cmd::args::{self, is};
use crate::protocol::{Frame, RespVersion};
use crate::raft::rpc::PubMessage;
use crate::server::{Client, Shared};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A connection's subscriptions and its mailbox (kept once created: messages may still be on
/// their way after the last unsubscribe).
#[derive(Default)]
pub struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    shard: BTreeSet<Bytes>,
    pub mailbox: Arc<Mailbox>,
}

impl Subscriptions {
    fn set(&mut self, space: Space) -> &mut BTreeSet<Bytes> {
        match space {
            Space::Channels => &mut self.channels,
            Space::Patterns => &mut self.patterns,
            Space::Shard => &mut self.shard,
        }
    }

    /// The count a (un)subscribe reply carries: channels + patterns, or shard channels.
    fn count(&self, space: Space) -> i64 {
        match space {
            Space::Shard => self.shard.len() as i64,
            _ => (self.channels.len() + self.patterns.len()) as i64,
        }
    }

    /// Subscriptions of every kind (the connection is in subscribed mode while not zero).
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }

    /// `(channels, patterns, shard channels)`, for CLIENT LIST's `sub`, `psub`, `ssub`.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shard.len())
    }
}

/// Commands RESP2's subscribed mode allows.
const ALLOWED_SUBSCRIBED: &[&str] =
    &["ping", "subscribe", "ssubscribe", "unsubscribe", "sunsubscribe", "psubscribe", "punsubscribe", "quit", "reset"];

/// Whether `client` is in RESP2's subscribed mode.
pub fn in_subscribed_mode(client: &Client) -> bool {
    client.resp == RespVersion::Resp2 && client.pubsub.as_ref().is_some_and(|s| s.total() > 0)
}

/// The refusal of a command RESP2's subscribed mode does not allow (`None` when allowed);
/// `full_name` is the command's name as Redis shows it (`get`, `client|list`). A PUBSUB with
/// an unknown subcommand or a wrong arity is left to fail with that error, as in Redis (which
/// looks subcommands up first).
pub fn refuse_in_subscribed_mode(client: &Client, argv: &[Bytes], name: &str, full_name: &str) -> Option<String> {
    if !in_subscribed_mode(client) || ALLOWED_SUBSCRIBED.contains(&name) {
        return None;
    }
    if name == "pubsub" && pubsub_arity(argv).is_err() {
        return None;
    }
    Some(format!(
        "Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Runs `argv` if it is a Pub/Sub command (or PING in subscribed mode): the frames to send,
/// in order. `None` for any other command. Arity is already checked.
pub fn run(client: &mut Client, shared: &Shared, name: &str, argv: &[Bytes]) -> Option<Vec<Frame>> {
    let one = |f: Frame| Some(vec![f]);
    match name {
        "subscribe" => Some(subscribe(client, shared, Space::Channels, &argv[1..])),
        "psubscribe" => Some(subscribe(client, shared, Space::Patterns, &argv[1..])),
        "ssubscribe" => Some(subscribe(client, shared, Space::Shard, &argv[1..])),
        "unsubscribe" => Some(unsubscribe(client, shared, Space::Channels, &argv[1..])),
        "punsubscribe" => Some(unsubscribe(client, shared, Space::Patterns, &argv[1..])),
        "sunsubscribe" => Some(unsubscribe(client, shared, Space::Shard, &argv[1..])),
        "publish" => one(publish(shared, false, argv)),
        "spublish" => one(publish(shared, true, argv)),
        "pubsub" => one(pubsub(shared, argv)),
        "ping" if argv.len() <= 2 && in_subscribed_mode(client) => {
            let arg = argv.get(1).cloned().unwrap_or_default();
            one(Frame::Array(vec![Frame::Bulk(Bytes::from_static(b"pong")), Frame::Bulk(arg)]))
        }
        _ => None,
    }
}

/// The push frame of a (un)subscribe reply.
fn notice(kind: &'static str, name: Option<&Bytes>, count: i64) -> Frame {
    let name = name.map_or(Frame::Null, |n| Frame::Bulk(n.clone()));
    Frame::Push(vec![Frame::Bulk(Bytes::from_static(kind.as_bytes())), name, Frame::Integer(count)])
}

fn subscribe(client: &mut Client, shared: &Shared, space: Space, names: &[Bytes]) -> Vec<Frame> {
    let kind = match space {
        Space::Channels => "subscribe",
        Space::Patterns => "psubscribe",
        Space::Shard => "ssubscribe",
    };
    let subs = client.pubsub.get_or_insert_with(Default::default);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if subs.set(space).insert(name.clone()) {
            shared.pubsub.add(space, name, client.id, &subs.mailbox);
        }
        out.push(notice(kind, Some(name), subs.count(space)));
    }
    out
}

fn unsubscribe(client: &mut Client, shared: &Shared, space: Space, names: &[Bytes]) -> Vec<Frame> {
    let kind = match space {
        Space::Channels => "unsubscribe",
        Space::Patterns => "punsubscribe",
        Space::Shard => "sunsubscribe",
    };
    let subs = client.pubsub.get_or_insert_with(Default::default);
    let all: Vec<Bytes>;
    let names = if names.is_empty() {
        all = subs.set(space).iter().cloned().collect();
        if all.is_empty() {
            return vec![notice(kind, None, subs.count(space))];
        }
        &all[..]
    } else {
        names
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if subs.set(space).remove(name) {
            shared.pubsub.remove(space, name, client.id);
        }
        out.push(notice(kind, Some(name), subs.count(space)));
    }
    out
}

/// Drops every subscription of `client` without replies (connection closed, RESET).
pub fn unsubscribe_all(client: &mut Client, shared: &Shared) {
    let Some(subs) = client.pubsub.as_mut() else { return };
    for space in [Space::Channels, Space::Patterns, Space::Shard] {
        for name in std::mem::take(subs.set(space)) {
            shared.pubsub.remove(space, &name, client.id);
        }
    }
}

/// PUBLISH / SPUBLISH: delivered here at once and queued for every other node; the reply
/// counts this node's receivers only (as PUBLISH does in Redis Cluster).
fn publish(shared: &Shared, shard: bool, argv: &[Bytes]) -> Frame {
    let (channel, payload) = (&argv[1], &argv[2]);
    let receivers = shared.pubsub.publish(shard, channel, payload);
    let msg = PubMessage { shard, channel: channel.clone(), payload: payload.clone() };
    shared.engine.replica().publish(&msg);
    Frame::Integer(receivers as i64)
}

const HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// Checks PUBSUB's subcommand and its arity; `Err` is the reply.
fn pubsub_arity(argv: &[Bytes]) -> Result<(), Frame> {
    let sub = &argv[1];
    let arity = match () {
        _ if is(sub, "help") || is(sub, "numpat") => 2,
        _ if is(sub, "channels") || is(sub, "numsub") || is(sub, "shardchannels") || is(sub, "shardnumsub") => -2,
        _ => return Err(args::unknown_subcommand(sub, "pubsub")),
    };
    crate::cmd::server::sub_arity("pubsub", argv, arity)
}

/// PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP, about this node.
fn pubsub(shared: &Shared, argv: &[Bytes]) -> Frame {
    if let Err(e) = pubsub_arity(argv) {
        return e;
    }
    let sub = &argv[1];
    let hub = &shared.pubsub;
    let list = |space| {
        if argv.len() > 3 {
            let sub = String::from_utf8_lossy(sub);
            return Frame::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."
            ));
        }
        Frame::bulks(hub.names(space, argv.get(2).map(|p| &p[..])))
    };
    let numsub = |space| {
        let counts =
            argv[2..].iter().flat_map(|c| [Frame::Bulk(c.clone()), Frame::Integer(hub.listeners(space, c) as i64)]);
        Frame::Array(counts.collect())
    };
    match () {
        _ if is(sub, "help") => crate::cmd::server::help_reply("PUBSUB", HELP),
        _ if is(sub, "numpat") => Frame::Integer(hub.pattern_count() as i64),
        _ if is(sub, "channels") => list(Space::Channels),
        _ if is(sub, "shardchannels") => list(Space::Shard),
        _ if is(sub, "numsub") => numsub(Space::Channels),
        _ => numsub(Space::Shard),
    }
}

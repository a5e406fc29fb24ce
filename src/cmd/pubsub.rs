//! The Pub/Sub commands' rows of the command table. They act on connections, not on the
//! keyspace (messages never go through the Raft log), so they are `Session` commands carried
//! out by `crate::server::pubsub`.

use super::{CommandSpec, Kind};

const S: Kind = Kind::Session;
const SUBSCRIBING: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUBLISHING: &[&str] = &["pubsub", "loading", "stale", "fast"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, SUBSCRIBING, (0, 0, 0), S),
    CommandSpec::new("unsubscribe", -1, SUBSCRIBING, (0, 0, 0), S),
    CommandSpec::new("psubscribe", -2, SUBSCRIBING, (0, 0, 0), S),
    CommandSpec::new("punsubscribe", -1, SUBSCRIBING, (0, 0, 0), S),
    CommandSpec::new("ssubscribe", -2, SUBSCRIBING, (1, -1, 1), S),
    CommandSpec::new("sunsubscribe", -1, SUBSCRIBING, (1, -1, 1), S),
    CommandSpec::new("publish", 3, PUBLISHING, (0, 0, 0), S),
    CommandSpec::new("spublish", 3, PUBLISHING, (1, 1, 1), S),
    CommandSpec::new("pubsub", -2, &[], (0, 0, 0), S),
];

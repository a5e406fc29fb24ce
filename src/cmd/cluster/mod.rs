//! The CLUSTER command: `CLUSTER METARAFT ...` (membership of the Raft group, always
//! available: see [`metaraft`]) and, with `cluster-enabled yes`, the Redis Cluster face of the
//! group ([`face`]: INFO, MYID, NODES, SLOTS, SHARDS; [`slot`]: KEYSLOT, COUNTKEYSINSLOT,
//! GETKEYSINSLOT). Without cluster mode the face answers Redis's "cluster support disabled".
//!
//! CLUSTER is a `Session` command run by `crate::server::dispatch` through [`cluster`], which
//! is async because membership changes wait for Raft.

pub mod asking;
pub mod face;
pub mod metaraft;
pub mod slot;

use super::server::{help_reply, sub_arity};
use super::{args, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::server::{now_ms, Shared};
use bytes::Bytes;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("cluster", -2, &[], (0, 0, 0), Kind::Session)];

const DISABLED: &str = "ERR This instance has cluster support disabled";

const HELP: &[&str] = &[
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node-id> | GROUP <group>",
    "    Move the slot ranges (of one data group) to the node's data group, or to <group>.",
    "GETSLOTMIGRATIONS",
    "    List the running and the recently finished slot migrations.",
    "CANCELSLOTMIGRATIONS",
    "    Cancel every slot migration that has not been handed over yet.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "METARAFT ADDLEARNER <id> <raft-addr>",
    "    Add node <id>, reachable for Raft at <raft-addr>, as a learner.",
    "METARAFT PROMOTE <id> [<id> ...]",
    "    Make these nodes the voters; the list must include every current voter.",
    "METARAFT REMOVE <id>",
    "    Remove node <id> (voter or learner) from the cluster.",
    "METARAFT MEMBERS",
    "    List the members and their roles (voter or learner), ordered by id.",
    "HELP",
    "    Print this help.",
];

/// CLUSTER <subcommand> [args]
pub async fn cluster(shared: &Shared, argv: &[Bytes]) -> Frame {
    let sub = &argv[1];
    if args::is(sub, "metaraft") {
        return match metaraft::parse(argv) {
            Ok(cmd) => metaraft::run(shared.engine.replica(), cmd).await,
            Err(e) => e,
        };
    }
    if !shared.config().cluster_enabled {
        return Frame::error(DISABLED);
    }
    face_command(shared, argv)
}

/// The Redis Cluster subcommands (cluster mode only).
fn face_command(shared: &Shared, argv: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "help" | "info" | "myid" | "myshardid" | "links" | "nodes" | "slots" | "shards" => 2,
        "keyslot" | "countkeysinslot" => 3,
        "getkeysinslot" => 4,
        _ => return args::unknown_subcommand(&argv[1], "cluster"),
    };
    if let Err(e) = sub_arity("cluster", argv, arity) {
        return e;
    }
    let replica = shared.engine.replica();
    match sub.as_str() {
        "help" => help_reply("CLUSTER", HELP),
        "info" => face::info(&replica.status()),
        "myid" => Frame::bulk(face::node_name(replica.id())),
        // One group holds every slot: every node is in its one shard.
        "myshardid" => Frame::bulk(face::shard_name(0)),
        "links" => {
            let peers: Vec<u64> = replica.status().members.iter().map(|m| m.id).collect();
            face::links(replica.id(), &peers)
        }
        "nodes" => face::nodes(&replica.status(), now_ms()),
        "slots" => face::slots(&replica.status()),
        "shards" => face::shards(&replica.status()),
        "keyslot" => slot::keyslot(argv),
        "countkeysinslot" => shared.engine.with_keyspace(|ks| slot::countkeysinslot(ks, now_ms(), argv)),
        _ => shared.engine.with_keyspace(|ks| slot::getkeysinslot(ks, now_ms(), argv)),
    }
}

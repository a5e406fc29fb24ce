//! `CLUSTER METARAFT ...`: membership of the Raft group from a Redis client (seed 000).
//!
//! - `ADDLEARNER <id> <raft-addr>`: add a node as a learner; its client address is asked from
//!   the node itself (see [`Replica::add_learner_at`]).
//! - `PROMOTE <id>...`: make these the voters; the list must include every current voter and
//!   new voters must catch up first (bounded wait).
//! - `REMOVE <id>`: remove a voter or a learner.
//! - `MEMBERS`: `[id, "voter"|"learner"]` pairs ordered by id, as this node sees them.
//!
//! They work on any member (a follower hands the change to the leader) and with or without
//! `cluster-enabled`. Parsing ([`parse`]) is separate from running ([`run`]).

use crate::cmd::args;
use crate::protocol::Frame;
use crate::raft::membership::CATCH_UP_TIMEOUT;
use crate::raft::node::Replica;
use crate::raft::NodeId;
use bytes::Bytes;
use std::collections::BTreeSet;

/// A parsed `CLUSTER METARAFT` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaRaftCmd {
    AddLearner { id: NodeId, raft_addr: String },
    Promote(BTreeSet<NodeId>),
    Remove(NodeId),
    Members,
}

const SUBCOMMANDS: &str = "ADDLEARNER <id> <raft-addr>, PROMOTE <id>..., REMOVE <id> or MEMBERS";

/// The arity error of `cluster|metaraft` or of `cluster|metaraft|<sub>`, with a usage line.
fn arity(sub: &str, usage: &str) -> Frame {
    let name = if sub.is_empty() { "cluster|metaraft".to_string() } else { format!("cluster|metaraft|{sub}") };
    Frame::error(format!("ERR wrong number of arguments for '{name}' command; usage: {usage}"))
}

/// A node id argument.
fn node_id(arg: &[u8]) -> Result<NodeId, Frame> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Frame::error(format!(
                "ERR invalid node id '{}': expected an integer from 0 to {}",
                String::from_utf8_lossy(&arg[..arg.len().min(64)]),
                u64::MAX
            ))
        })
}

/// A `host:port` argument (not resolved here; `[v6]:port` accepted).
fn raft_addr(arg: &[u8]) -> Result<String, Frame> {
    let bad = || {
        Frame::error(format!(
            "ERR invalid raft address '{}': expected host:port",
            String::from_utf8_lossy(&arg[..arg.len().min(128)])
        ))
    };
    let s = std::str::from_utf8(arg).map_err(|_| bad())?;
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0);
    if host.is_empty() || !port_ok || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(s.to_string())
}

/// Parses `CLUSTER METARAFT <sub> ...` (`argv` is the whole command line).
pub fn parse(argv: &[Bytes]) -> Result<MetaRaftCmd, Frame> {
    let Some(sub) = argv.get(2) else {
        return Err(arity("", SUBCOMMANDS));
    };
    let rest = &argv[3..];
    if args::is(sub, "addlearner") {
        let [id, addr] = rest else { return Err(arity("addlearner", "CLUSTER METARAFT ADDLEARNER <id> <raft-addr>")) };
        return Ok(MetaRaftCmd::AddLearner { id: node_id(id)?, raft_addr: raft_addr(addr)? });
    }
    if args::is(sub, "promote") {
        if rest.is_empty() {
            return Err(arity("promote", "CLUSTER METARAFT PROMOTE <id>... (every voter of the new configuration)"));
        }
        let mut voters = BTreeSet::new();
        for a in rest {
            let id = node_id(a)?;
            if !voters.insert(id) {
                return Err(Frame::error(format!("ERR node id {id} is listed twice")));
            }
        }
        return Ok(MetaRaftCmd::Promote(voters));
    }
    if args::is(sub, "remove") {
        let [id] = rest else { return Err(arity("remove", "CLUSTER METARAFT REMOVE <id>")) };
        return Ok(MetaRaftCmd::Remove(node_id(id)?));
    }
    if args::is(sub, "members") {
        if !rest.is_empty() {
            return Err(arity("members", "CLUSTER METARAFT MEMBERS"));
        }
        return Ok(MetaRaftCmd::Members);
    }
    Err(Frame::error(format!(
        "ERR unknown subcommand '{}' of CLUSTER METARAFT; expected {SUBCOMMANDS}",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    )))
}

/// Runs a parsed command on `replica`.
pub async fn run(replica: &Replica, cmd: MetaRaftCmd) -> Frame {
    let done = match cmd {
        MetaRaftCmd::Members => return members(replica),
        MetaRaftCmd::AddLearner { id, raft_addr } => replica.add_learner_at(id, &raft_addr).await.map(|_| ()),
        MetaRaftCmd::Promote(voters) => replica.promote_voters(voters, CATCH_UP_TIMEOUT).await,
        MetaRaftCmd::Remove(id) => replica.remove_node(id).await,
    };
    match done {
        Ok(()) => Frame::ok(),
        Err(e) => Frame::error(format!("ERR {e}")),
    }
}

/// `[id, role]` pairs ordered by id.
fn members(replica: &Replica) -> Frame {
    let members = replica.members();
    Frame::Array(
        members
            .iter()
            .map(|m| Frame::Array(vec![Frame::bulk(m.id.to_string()), Frame::bulk(m.role.as_str())]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parts: &[&str]) -> Result<MetaRaftCmd, Frame> {
        let mut argv = vec![Bytes::from_static(b"CLUSTER"), Bytes::from_static(b"METARAFT")];
        argv.extend(parts.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())));
        parse(&argv)
    }

    fn err(r: Result<MetaRaftCmd, Frame>) -> String {
        match r {
            Err(Frame::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn good_commands_parse() {
        let add = MetaRaftCmd::AddLearner { id: 2, raft_addr: "127.0.0.1:50052".into() };
        assert_eq!(p(&["addlearner", "2", "127.0.0.1:50052"]), Ok(add));
        assert_eq!(p(&["ADDLEARNER", "3", "[::1]:7"]).map(|_| ()), Ok(()));
        assert_eq!(p(&["Promote", "1", "3", "2"]), Ok(MetaRaftCmd::Promote(BTreeSet::from([1, 2, 3]))));
        assert_eq!(p(&["remove", "18446744073709551615"]), Ok(MetaRaftCmd::Remove(u64::MAX)));
        assert_eq!(p(&["members"]), Ok(MetaRaftCmd::Members));
    }

    #[test]
    fn bad_commands_get_clear_errors() {
        assert_eq!(
            err(p(&[])),
            format!("ERR wrong number of arguments for 'cluster|metaraft' command; usage: {SUBCOMMANDS}")
        );
        assert!(err(p(&["frobnicate"])).starts_with("ERR unknown subcommand 'frobnicate' of CLUSTER METARAFT"));
        assert!(
            err(p(&["addlearner", "2"])).starts_with("ERR wrong number of arguments for 'cluster|metaraft|addlearner'")
        );
        assert!(
            err(p(&["addlearner", "2", "a:1", "x"])).contains("usage: CLUSTER METARAFT ADDLEARNER <id> <raft-addr>")
        );
        assert!(err(p(&["promote"])).starts_with("ERR wrong number of arguments for 'cluster|metaraft|promote'"));
        assert!(err(p(&["remove"])).starts_with("ERR wrong number of arguments for 'cluster|metaraft|remove'"));
        assert!(err(p(&["remove", "1", "2"])).starts_with("ERR wrong number of arguments"));
        assert!(err(p(&["members", "x"])).starts_with("ERR wrong number of arguments for 'cluster|metaraft|members'"));
        for bad_id in ["-1", "abc", "", "+2", "1.5", "18446744073709551616", " 1"] {
            assert!(err(p(&["remove", bad_id])).starts_with("ERR invalid node id"), "{bad_id:?}");
            assert!(err(p(&["promote", "1", bad_id])).starts_with("ERR invalid node id"), "{bad_id:?}");
            assert!(err(p(&["addlearner", bad_id, "a:1"])).starts_with("ERR invalid node id"), "{bad_id:?}");
        }
        for bad_addr in ["127.0.0.1", ":80", "host:", "host:0", "host:65536", "host:8o", "a b:1", ""] {
            assert!(err(p(&["addlearner", "2", bad_addr])).starts_with("ERR invalid raft address"), "{bad_addr:?}");
        }
        assert_eq!(err(p(&["promote", "1", "2", "1"])), "ERR node id 1 is listed twice");
    }
}

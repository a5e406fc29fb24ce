//! The JSON bodies of the admin API's POST endpoints and their checks. A body that parses but
//! makes no sense (no members, an address without a port, a node listed twice) is refused here
//! with a message for the operator, before anything reaches Raft.

use crate::raft::{NodeId, NodeInfo};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// How to reach a node, as the seed's bodies spell it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddr {
    /// The node's Raft (RPC and admin) address, `host:port`.
    pub raft_addr: String,
    /// The node's client (RESP) address; may be left out.
    #[serde(default, alias = "client_addr")]
    pub resp_addr: String,
}

impl NodeAddr {
    fn validated(self) -> Result<NodeInfo, String> {
        check_addr("raft_addr", &self.raft_addr)?;
        if !self.resp_addr.is_empty() {
            check_addr("resp_addr", &self.resp_addr)?;
        }
        Ok(NodeInfo { raft_addr: self.raft_addr, client_addr: self.resp_addr })
    }
}

/// `host:port` with a non-empty host and a port from 1 to 65535.
fn check_addr(field: &str, addr: &str) -> Result<(), String> {
    let valid =
        addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if valid {
        Ok(())
    } else {
        Err(format!("{field} must be host:port, got {addr:?}"))
    }
}

/// `POST /raft/init`: `{"nodes": [[1, {"raft_addr": ..., "resp_addr": ...}], ...]}`. Without
/// `nodes`, this node alone forms the cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitBody {
    #[serde(default)]
    pub nodes: Option<Vec<(NodeId, NodeAddr)>>,
}

impl InitBody {
    /// The initial members; `me` and `my_info` describe the node that received the request.
    pub fn members(self, me: NodeId, my_info: &NodeInfo) -> Result<BTreeMap<NodeId, NodeInfo>, String> {
        let Some(nodes) = self.nodes else {
            return Ok(BTreeMap::from([(me, my_info.clone())]));
        };
        if nodes.is_empty() {
            return Err("nodes must list at least this node".into());
        }
        let mut members = BTreeMap::new();
        for (id, addr) in nodes {
            if members.insert(id, addr.validated()?).is_some() {
                return Err(format!("node {id} is listed twice"));
            }
        }
        Ok(members)
    }
}

/// `POST /raft/add_learner`: `{"node_id": 4, "node": {"raft_addr": ..., "resp_addr": ...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddLearnerBody {
    pub node_id: NodeId,
    pub node: NodeAddr,
}

impl AddLearnerBody {
    pub fn validated(self) -> Result<(NodeId, NodeInfo), String> {
        Ok((self.node_id, self.node.validated()?))
    }
}

/// `POST /raft/change_membership`: `{"members": [1, 2, 3], "retain": true}`. `members` is the
/// new voter set; with `retain` (the default) members left out stay as learners, otherwise
/// they leave the cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeMembershipBody {
    pub members: Vec<NodeId>,
    #[serde(default = "yes")]
    pub retain: bool,
}

fn yes() -> bool {
    true
}

impl ChangeMembershipBody {
    pub fn validated(self) -> Result<(BTreeSet<NodeId>, bool), String> {
        if self.members.is_empty() {
            return Err("members cannot be empty".into());
        }
        Ok((self.members.into_iter().collect(), self.retain))
    }
}

/// `POST /raft/remove_node`: `{"node_id": 3}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveNodeBody {
    pub node_id: NodeId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(text: &str) -> Result<BTreeMap<NodeId, NodeInfo>, String> {
        let me = NodeInfo { raft_addr: "127.0.0.1:8001".into(), client_addr: "127.0.0.1:7379".into() };
        let body: InitBody = serde_json::from_str(text).map_err(|e| e.to_string())?;
        body.members(1, &me)
    }

    #[test]
    fn init_takes_the_seeds_body() {
        let members = init(
            r#"{"nodes": [[1, {"raft_addr": "127.0.0.1:8001", "resp_addr": "127.0.0.1:7379"}],
                          [2, {"raft_addr": "127.0.0.1:8002", "resp_addr": "127.0.0.1:7380"}]]}"#,
        )
        .expect("valid");
        assert_eq!(members.len(), 2);
        assert_eq!(members[&2].client_addr, "127.0.0.1:7380");
    }

    #[test]
    fn init_without_nodes_is_this_node_alone() {
        let members = init("{}").expect("valid");
        assert_eq!(members.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(members[&1].raft_addr, "127.0.0.1:8001");
    }

    #[test]
    fn init_refuses_nonsense() {
        assert!(init(r#"{"nodes": []}"#).unwrap_err().contains("at least"));
        let twice = r#"{"nodes": [[1, {"raft_addr": "a:1"}], [1, {"raft_addr": "b:2"}]]}"#;
        assert!(init(twice).unwrap_err().contains("twice"));
        assert!(init(r#"{"nodes": [[1, {"raft_addr": "nohost"}]]}"#).unwrap_err().contains("host:port"));
        assert!(init(r#"{"nodes": [[1, {"raft_addr": "h:0"}]]}"#).unwrap_err().contains("host:port"));
        assert!(init(r#"{"nodes": [[1, {"raft_addr": "h:1", "resp_addr": ":5"}]]}"#).is_err());
        assert!(init(r#"{"nodez": []}"#).is_err(), "unknown fields are refused");
        assert!(init(r#"{"nodes": [["one", {"raft_addr": "h:1"}]]}"#).is_err());
    }

    #[test]
    fn change_membership_defaults_to_retaining_learners() {
        let body: ChangeMembershipBody = serde_json::from_str(r#"{"members": [3, 1, 2]}"#).expect("parse");
        let (voters, retain) = body.validated().expect("valid");
        assert_eq!(voters.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(retain);
        let empty: ChangeMembershipBody = serde_json::from_str(r#"{"members": []}"#).expect("parse");
        assert!(empty.validated().is_err());
    }

    #[test]
    fn add_learner_checks_the_address() {
        let ok: AddLearnerBody =
            serde_json::from_str(r#"{"node_id": 4, "node": {"raft_addr": "127.0.0.1:8004"}}"#).expect("parse");
        let (id, info) = ok.validated().expect("valid");
        assert_eq!((id, info.client_addr.as_str()), (4, ""));
        let bad: AddLearnerBody =
            serde_json::from_str(r#"{"node_id": 4, "node": {"raft_addr": "127.0.0.1:99999"}}"#).expect("parse");
        assert!(bad.validated().is_err());
    }
}

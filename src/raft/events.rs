//! One log line per notable Raft event of this node, as Redis logs its role changes: who
//! leads the group (and in which term), and the group's members when they change. Follows
//! openraft's server metrics, which change only with such events (nothing per write), so
//! the default log stays quiet while the cluster is steady.

use super::state_machine::StateMachine;
use super::{NodeId, TypeConfig};
use openraft::rt::watch::WatchReceiver;
use openraft::vote::RaftLeaderId;
use openraft::{Raft, ServerState};

/// What a line is logged for: a change in any of these.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    leader: Option<NodeId>,
    state: ServerState,
    members: String,
}

/// Logs leadership and membership changes until Raft stops.
pub(super) fn spawn_event_log(raft: Raft<TypeConfig, StateMachine>) {
    tokio::spawn(async move {
        let mut metrics = raft.server_metrics();
        let mut last: Option<Seen> = None;
        loop {
            let (seen, term, me) = {
                let m = metrics.borrow_watched();
                let seen = Seen {
                    leader: m.current_leader,
                    state: m.state,
                    members: members(m.membership_config.membership()),
                };
                (seen, m.vote.leader_id.term(), m.id)
            };
            log_change(last.as_ref(), &seen, term, me);
            last = Some(seen);
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The line (if any) for the step from `before` to `now`.
fn log_change(before: Option<&Seen>, now: &Seen, term: u64, me: NodeId) {
    let leader_changed = before.is_none_or(|b| b.leader != now.leader || b.state != now.state);
    if leader_changed {
        match now.leader {
            Some(id) if id == me && now.state == ServerState::Leader => {
                tracing::info!(term, "this node is now the leader of its group")
            }
            Some(id) => tracing::info!(term, leader = id, "following leader {id}"),
            None if now.state == ServerState::Candidate => tracing::info!(term, "no leader: election started"),
            None => tracing::info!(term, "no leader known"),
        }
    }
    if before.is_none_or(|b| b.members != now.members) {
        tracing::info!(members = %now.members, "group membership");
    }
}

/// `voters [1, 2, 3] learners [4]` (a joint configuration shows each voter set).
fn members(m: &openraft::Membership<NodeId, super::NodeInfo>) -> String {
    let voters: Vec<Vec<NodeId>> = m.get_joint_config().iter().map(|c| c.iter().copied().collect()).collect();
    let learners: Vec<NodeId> = m.learner_ids().collect();
    let voters = match voters.as_slice() {
        [] => return "none yet (not initialized)".to_string(),
        [one] => format!("{one:?}"),
        joint => format!("{joint:?} (joint)"),
    };
    format!("voters {voters} learners {learners:?}")
}

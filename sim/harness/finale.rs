//! The end of a chaos run, after every fault is healed: liveness (a write succeeds within a
//! bounded virtual time), convergence (every member's `DEBUG DIGEST-EXACT` of its own copy is
//! the same) and the final reads of every key (recorded in the history, so the checkers see
//! what survived).

use super::nodes::{client_addr, Cluster};
use super::workload::{Shared, COUNTERS, LISTS, QUEUES, STREAMS, STRINGS};
use crate::check::{check_convergence, Violation};
use crate::client::SimClient;
use crate::history::{OpKind, Outcome};
use raftis::protocol::Frame;
use std::time::Duration;
use tokio::time::Instant;

/// After healing, a write must succeed within this much virtual time. Generous: a clogged TCP
/// link retries with a backoff of up to 10 s in madsim, and an election follows.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(40);
/// How long the members may take to reach the same state once the cluster is live again.
const CONVERGENCE_BOUND: Duration = Duration::from_secs(60);
/// Client ids of the harness's own operations in the history.
const LIVENESS_CLIENT: u32 = 900;
const FINAL_CLIENT: u32 = 901;

fn violation(property: &'static str, detail: String) -> Violation {
    Violation { property, detail, ops: Vec::new() }
}

/// Retries a write (to the members in turn) until one succeeds; Err past [`LIVENESS_BOUND`].
pub async fn liveness(shared: &Shared) -> Result<(), Violation> {
    let members = shared.targets();
    let deadline = Instant::now() + LIVENESS_BOUND;
    let mut conns: Vec<Option<SimClient>> = members.iter().map(|_| None).collect();
    for attempt in 0u64.. {
        let i = attempt as usize % members.len();
        let kind = OpKind::Set { key: "live".into(), value: attempt.to_string() };
        if let Outcome::Ok(_) = shared.run_op(LIVENESS_CLIENT, members[i], &mut conns[i], kind).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(violation("liveness", format!("no write succeeded within {LIVENESS_BOUND:?} after healing")))
}

/// Every member's digest of its own copy, or why one could not be read.
async fn digests(members: &[u64]) -> Result<Vec<(u64, String)>, String> {
    let mut out = Vec::new();
    for &id in members {
        let mut c = SimClient::connect(client_addr(id), Duration::from_secs(1))
            .await
            .map_err(|e| format!("node {id}: connect: {e}"))?;
        let read = async {
            let r = c.cmd(&[b"READONLY"]).await.map_err(|e| e.to_string())?;
            if r != Frame::ok() {
                return Err(format!("READONLY: {r:?}"));
            }
            c.cmd(&[b"DEBUG", b"DIGEST-EXACT"]).await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(2), read).await {
            Ok(Ok(Frame::Bulk(b) | Frame::Simple(b))) => out.push((id, String::from_utf8_lossy(&b).into_owned())),
            Ok(Ok(other)) => return Err(format!("node {id}: DEBUG DIGEST-EXACT: {other:?}")),
            Ok(Err(e)) => return Err(format!("node {id}: {e}")),
            Err(_) => return Err(format!("node {id}: timed out")),
        }
    }
    Ok(out)
}

/// Waits until every member reports the same digest; then hands the digests to the
/// convergence checker. Err if they never agree within the bound.
pub async fn convergence(cluster: &Cluster) -> Result<(), Violation> {
    let deadline = Instant::now() + CONVERGENCE_BOUND;
    let mut last = String::from("no leader");
    loop {
        // The members as the current leader sees them (a removed node is not one).
        if let Some((_, members)) = cluster.members() {
            let members: Vec<u64> = members.into_iter().collect();
            match digests(&members).await {
                Ok(d) if d.iter().all(|(_, x)| *x == d[0].1) => return check_convergence(&d),
                Ok(d) => last = format!("digests {d:?}"),
                Err(e) => last = e,
            }
        }
        if Instant::now() >= deadline {
            let status: Vec<String> = cluster
                .ids()
                .into_iter()
                .map(|id| match cluster.replica(id) {
                    Some(r) => {
                        let s = r.status();
                        format!(
                            "node {id}: {} term {} leader {:?} applied {:?} failed {}",
                            s.state, s.current_term, s.current_leader, s.last_applied_index, s.failed
                        )
                    }
                    None => format!("node {id}: not running"),
                })
                .collect();
            let detail = format!(
                "members never agreed within {CONVERGENCE_BOUND:?}; last attempt: {last}; {}",
                status.join("; ")
            );
            return Err(violation("replicas converge", detail));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes `key` through a member without recording it in the history: a hand-broken final
/// state (`Params::erase_before_final_reads`), which the checkers must report as lost writes.
pub async fn erase(shared: &Shared, key: &str) -> Result<(), Violation> {
    let members = shared.targets();
    let deadline = Instant::now() + LIVENESS_BOUND;
    for attempt in 0usize.. {
        let id = members[attempt % members.len()];
        if let Ok(mut c) = SimClient::connect(client_addr(id), Duration::from_secs(1)).await {
            let args: [&[u8]; 2] = [b"DEL", key.as_bytes()];
            if let Ok(Ok(Frame::Integer(_))) = tokio::time::timeout(Duration::from_secs(5), c.cmd(&args)).await {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(violation("liveness", format!("DEL {key} before the final reads did not succeed within {LIVENESS_BOUND:?}")))
}

/// Reads every key of the workload once (through the members in turn, retrying), recording
/// the reads in the history.
pub async fn final_reads(shared: &Shared) -> Result<(), Violation> {
    let members = shared.targets();
    let mut kinds: Vec<OpKind> =
        COUNTERS.iter().chain(STRINGS.iter()).map(|k| OpKind::Get { key: k.to_string() }).collect();
    kinds.extend(LISTS.iter().map(|k| OpKind::LRange { key: k.to_string() }));
    kinds.extend(QUEUES.iter().map(|k| OpKind::QRange { key: k.to_string() }));
    kinds.extend(STREAMS.iter().map(|k| OpKind::XRangeAll { key: k.to_string() }));
    kinds.extend(STREAMS.iter().map(|k| OpKind::XPendingAll { key: k.to_string() }));
    let mut conns: Vec<Option<SimClient>> = members.iter().map(|_| None).collect();
    for kind in kinds {
        let deadline = Instant::now() + LIVENESS_BOUND;
        for attempt in 0usize.. {
            let i = attempt % members.len();
            if let Outcome::Ok(_) = shared.run_op(FINAL_CLIENT, members[i], &mut conns[i], kind.clone()).await {
                break;
            }
            if Instant::now() >= deadline {
                return Err(violation(
                    "liveness",
                    format!("final read {kind} did not succeed within {LIVENESS_BOUND:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

//! The end of a chaos run, after every fault is healed: liveness (a write succeeds within a
//! bounded virtual time), convergence (every member's `DEBUG DIGEST-EXACT` of its own copy is
//! the same; in a sharded run, every data group's members' state digests) and the final reads
//! of every key (recorded in the history, so the checkers see what survived; a sharded run
//! follows `-MOVED`), and in a sharded run the slot ownership of every group's copies.

use super::nodes::{client_addr, Cluster};
use super::workload::{Shared, COUNTERS, HLLS, LISTS, QUEUES, STREAMS, STRINGS, TTL_KEYS};
use crate::check::ownership::{self, GroupCopy};
use crate::check::{check_convergence, Violation};
use crate::client::SimClient;
use crate::history::{OpKind, Outcome};
use raftis::protocol::Frame;
use std::collections::BTreeMap;
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
    let mut conns = BTreeMap::new();
    for attempt in 0u64.. {
        let i = attempt as usize % members.len();
        let kind = OpKind::Set { key: "live".into(), value: attempt.to_string() };
        if let Outcome::Ok(_) = shared.run_routed(LIVENESS_CLIENT, members[i], &mut conns, kind).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(violation("liveness", format!("no write succeeded within {LIVENESS_BOUND:?} after healing")))
}

/// How many times the running nodes' groups went quiet during the run (since each node's last
/// start), for the timeline: whether a seed exercised quiet groups (`raft::quiesce`).
pub fn quiesced(cluster: &Cluster) -> String {
    let mut total = 0;
    for id in cluster.ids() {
        total += cluster.replica(id).map_or(0, |r| r.times_quiet());
        if let Some(groups) = cluster.groups(id) {
            total += groups.data.values().map(|r| r.times_quiet()).sum::<u64>();
        }
    }
    format!("groups went quiet {total} times on the running nodes")
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
                "members never agreed within {CONVERGENCE_BOUND:?}; last attempt: {last}; {}; {}",
                status.join("; "),
                differences(cluster)
            );
            return Err(violation("replicas converge", detail));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What differs between the running nodes' copies (keys, blocked clients, script cache), to
/// tell from the report where replicas diverged.
fn differences(cluster: &Cluster) -> String {
    use raftis::store::digest::{sha1, to_hex, value_digest};
    use raftis::store::Value;
    let mut keys: BTreeMap<(usize, Vec<u8>), BTreeMap<u64, String>> = BTreeMap::new();
    let mut other: BTreeMap<&'static str, BTreeMap<u64, String>> = BTreeMap::new();
    for id in cluster.ids() {
        let Some(r) = cluster.replica(id) else { continue };
        let st = r.state().read().unwrap_or_else(|p| p.into_inner());
        for (i, db) in st.keyspace.dbs().iter().enumerate() {
            for (key, entry) in db.iter() {
                let mut d = format!("{}@{:?}", &to_hex(&value_digest(entry))[..8], entry.expire_at());
                if let Value::Stream(s) = &entry.value {
                    // Groups, pending entries and layout: what the digest adds for streams.
                    let layout: Vec<_> = s.nodes().map(|n| (n.lp_bytes, n.items.len())).collect();
                    let meta = format!("{:?} {layout:?}", s.meta());
                    d += &format!(" meta {}", &to_hex(&sha1(meta.as_bytes()))[..8]);
                }
                keys.entry((i, key.to_vec())).or_default().insert(id, d);
            }
        }
        let blocked: Vec<_> = st.keyspace.blocked.iter().collect();
        other.entry("blocked").or_default().insert(id, format!("{blocked:?}"));
        other.entry("scripts").or_default().insert(id, format!("{}", st.keyspace.scripts.image().bodies.len()));
        other.entry("applied").or_default().insert(id, format!("{:?}", st.last_applied));
    }
    let n = cluster.ids().iter().filter(|id| cluster.replica(**id).is_some()).count();
    let mut out = Vec::new();
    for ((db, key), per_node) in &keys {
        let first = per_node.values().next();
        if per_node.len() != n || per_node.values().any(|v| Some(v) != first) {
            out.push(format!("db{db} {}: {per_node:?}", String::from_utf8_lossy(key)));
        }
    }
    for (what, per_node) in &other {
        out.push(format!("{what}: {per_node:?}"));
    }
    format!("differences between running nodes: {}", out.join("; "))
}

/// A sharded run: waits until the newest map of the running nodes has no slot migration
/// left running (each is done or cancelled), within [`CONVERGENCE_BOUND`]; returns how the
/// migrations the map remembers ended, for the timeline.
pub async fn migrations_settle(cluster: &Cluster) -> Result<String, Violation> {
    let deadline = Instant::now() + CONVERGENCE_BOUND;
    loop {
        let map = cluster.ids().into_iter().filter_map(|id| cluster.groups(id)?.map()).max_by_key(|m| m.epoch);
        let running: Vec<String> = map
            .iter()
            .flat_map(|m| m.migrations.iter().filter(|x| x.state.is_active()))
            .map(|x| format!("{} ({} -> {}, {:?})", x.id, x.source, x.target, x.state))
            .collect();
        if let (Some(m), true) = (&map, running.is_empty()) {
            let ended: Vec<String> =
                m.migrations.iter().map(|x| format!("{} {}->{} {:?}", x.id, x.source, x.target, x.state)).collect();
            return Ok(format!("slot migrations settled at epoch {}: [{}]", m.epoch, ended.join(", ")));
        }
        if Instant::now() >= deadline {
            let detail = format!("slot migrations still running after {CONVERGENCE_BOUND:?}: {running:?}");
            return Err(violation("slot migrations finish", detail));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A sharded run: waits until, in every data group, the members its leader names all hold
/// the same state (`Keyspace::state_digest` of each running node's copy, read directly), then
/// hands each group's digests to the convergence checker.
pub async fn group_convergence(cluster: &Cluster) -> Result<(), Violation> {
    let deadline = Instant::now() + CONVERGENCE_BOUND;
    for g in 1..=u64::from(cluster.num_groups) {
        loop {
            let digests = group_digests(cluster, g);
            match &digests {
                Ok(d) if d.iter().all(|(_, x)| *x == d[0].1) => {
                    check_convergence(d)?;
                    break;
                }
                _ if Instant::now() >= deadline => {
                    let detail = format!("group {g}'s members never agreed within {CONVERGENCE_BOUND:?}: {digests:?}");
                    return Err(violation("replicas converge", detail));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    Ok(())
}

/// The members of data group `g` as its leader with the highest term among the running nodes
/// names them (`None` without a leader).
fn group_members(cluster: &Cluster, g: u64) -> Option<std::collections::BTreeSet<u64>> {
    let replica = |id: u64| cluster.groups(id).and_then(|gs| gs.group(g).cloned());
    let leader = cluster
        .ids()
        .into_iter()
        .filter_map(|id| {
            let st = replica(id)?.status();
            st.is_leader().then_some((st.current_term, id))
        })
        .max()
        .map(|(_, id)| id)?;
    Some(replica(leader)?.membership_ids().1)
}

/// The state digests of data group `g`'s members (as its leader with the highest term among
/// the running nodes names them), or why they cannot be compared yet.
fn group_digests(cluster: &Cluster, g: u64) -> Result<Vec<(u64, String)>, String> {
    let replica = |id: u64| cluster.groups(id).and_then(|gs| gs.group(g).cloned());
    let members = group_members(cluster, g).ok_or("no leader")?;
    members
        .into_iter()
        .map(|id| {
            let r = replica(id).ok_or(format!("member {id} not running"))?;
            let st = r.state().read().unwrap_or_else(|p| p.into_inner());
            Ok((id, raftis::store::digest::to_hex(&st.keyspace.state_digest())))
        })
        .collect()
}

/// A sharded run, once every group has converged: the slot ownership of every running node's
/// copy of every data group against the committed map (`check::ownership`). Only the copies
/// of the group's members count (as its leader names them, or the copy itself when no leader
/// is known): a node moved out of a group keeps its old copy, idle, and may never learn it
/// left (its copy then still thinks it is a member), so that copy lags the map for good.
pub fn ownership(cluster: &Cluster) -> Result<(), Violation> {
    let running: Vec<_> = cluster.ids().into_iter().filter_map(|id| Some((id, cluster.groups(id)?))).collect();
    let map = running.iter().filter_map(|(_, gs)| gs.map()).max_by_key(|m| m.epoch);
    let Some(map) = map else { return Err(violation(ownership::PROPERTY, "no node has a cluster map".into())) };
    if let Some(slot) = map.open_slots.keys().next() {
        return Err(violation(ownership::PROPERTY, format!("slot {slot} is still open in the map (CLUSTER SETSLOT)")));
    }
    let table: BTreeMap<u64, Vec<(u16, u16)>> = map.groups.keys().map(|g| (*g, map.ranges_of(*g))).collect();
    let mut copies = Vec::new();
    for (id, gs) in &running {
        for (g, r) in &gs.data {
            let member = match group_members(cluster, *g) {
                Some(members) => members.contains(id),
                None => r.is_member(),
            };
            if !member {
                continue;
            }
            let control = r.control();
            let owned = control.owned.map(|o| (o.epoch, o.ranges));
            let open: Vec<u64> = control.frozen.keys().chain(control.importing.keys()).copied().collect();
            // Redis Cluster's slot states end with the hand-over (`legacy::complete_open_slots`).
            let asking: Vec<u16> = control.ask_out.keys().chain(control.ask_in.iter()).copied().collect();
            if !asking.is_empty() {
                let detail = format!("node {id}'s copy of group {g} still has slots migrating or importing {asking:?}");
                return Err(violation(ownership::PROPERTY, detail));
            }
            let st = r.state().read().unwrap_or_else(|p| p.into_inner());
            let keys = st.keyspace.dbs().iter().flat_map(|db| db.iter().map(|(k, _)| k.to_vec())).collect();
            copies.push(GroupCopy { node: *id, group: *g, owned, keys, open_migrations: open });
        }
    }
    ownership::check(map.epoch, &table, &copies)
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
    kinds.extend(TTL_KEYS.iter().map(|(k, _)| OpKind::Pttl { key: k.to_string() }));
    kinds.extend(HLLS.iter().map(|k| OpKind::PfCount { key: k.to_string() }));
    let mut conns = BTreeMap::new();
    for kind in kinds {
        let deadline = Instant::now() + LIVENESS_BOUND;
        for attempt in 0usize.. {
            let i = attempt % members.len();
            if let Outcome::Ok(_) = shared.run_routed(FINAL_CLIENT, members[i], &mut conns, kind.clone()).await {
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

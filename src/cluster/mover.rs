//! Runs the steps of slot migrations (the records of [`super::migration`]). The leader of a
//! migration's source group drives it, from the placement controller's tick of that group;
//! every step is an entry in some group's log, so a new leader of any group picks up where
//! the record in MetaRaft says the migration is and repeats the steps of that state, each of
//! which is idempotent.
//!
//! Copying (first milestone: freeze first, then copy; the pause of the migrating slots lasts
//! the whole copy, other slots never pause):
//! 1. `Freeze` in the source's log: from that entry on, writes to the slots get `-TRYAGAIN`
//!    at apply, so the slots' data as of that index is final;
//! 2. `BeginImport` in the target's log (leftovers of the slots there are deleted);
//! 3. the keys, read from this node's copy of the source (it applied the freeze), go to the
//!    target in chunks (`Import`: DUMP payloads with absolute TTLs, [`CHUNK_KEYS`] keys or
//!    [`CHUNK_BYTES`] bytes per entry);
//! 4. MetaRaft: the map gives the slots to the target (epoch bumped), state `Handover`.
//!
//! Handover: the controllers make each group's ownership follow the map (the target owns the
//! slots, the source no longer does); then `EndImport` in the target, `Purge` of the moved
//! keys in the source (named, in chunks), `Unfreeze`, and MetaRaft marks the migration done.
//!
//! Cancelling: `EndImport` with purge in the target (what it took in goes), `Unfreeze` in the
//! source, MetaRaft marks it cancelled.

use super::groups::Groups;
use super::migration::{Migration, MigrationState};
use crate::cmd::cluster::slot::key_slot;
use crate::protocol::Frame;
use crate::raft::control::in_ranges;
use crate::raft::node::Replica;
use crate::raft::{Control, ImportItem};
use bytes::Bytes;

/// Most keys in one `Import` or `Purge` entry.
pub const CHUNK_KEYS: usize = 1000;
/// An `Import` entry is closed once its payloads reach this many bytes.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Proposes `control` into group `g` (0: MetaRaft) from this node: locally when it leads the
/// group, else through the leader it knows, else through each voter the map names.
pub async fn propose_to(groups: &Groups, g: u64, control: &Control) -> Result<Frame, String> {
    let replica = if g == 0 { &groups.meta } else { groups.group(g).ok_or_else(|| format!("no group {g} here"))? };
    match replica.leader_info() {
        Some((id, _)) if id == groups.id => replica.propose_control(control.clone()).await,
        Some((_, info)) => replica.forward_control(&info, control).await,
        None => {
            let map = groups.map().ok_or("no cluster map yet")?;
            let voters = map.groups.get(&g).map(|p| p.voters.clone()).unwrap_or_default();
            let mut last = format!("group {g} has no leader");
            for v in voters.iter().filter(|v| **v != groups.id) {
                let Some(info) = map.nodes.get(v) else { continue };
                match replica.forward_control(info, control).await {
                    Ok(reply) => return Ok(reply),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// `Ok` for `+OK`, the error otherwise.
fn ok(reply: Result<Frame, String>) -> Result<(), String> {
    match reply? {
        Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
        _ => Ok(()),
    }
}

/// Compare-and-set of MetaRaft's map: migration `id` from `from` to `to`.
async fn advance(groups: &Groups, id: u64, from: MigrationState, to: MigrationState, keys: u64) -> Result<(), String> {
    let map = groups.map().ok_or("no cluster map")?;
    let next =
        map.advance_migration(id, from, to, keys).ok_or_else(|| format!("migration {id} is no longer {from:?}"))?;
    let control = Control::SetMap { expect: map.epoch, epoch: next.epoch, map: next.encode() };
    ok(propose_to(groups, 0, &control).await)
}

/// On data group `g`'s leader, each controller tick: runs the steps of the first running
/// migration out of `g`. A step that fails is tried again at a later tick.
pub async fn drive(groups: &Groups, g: u64) {
    let Some(map) = groups.map() else { return };
    let Some(m) = map.migrations.iter().find(|m| m.source == g && m.state.is_active()).cloned() else { return };
    let Some(source) = groups.group(g) else { return };
    let step = match m.state {
        MigrationState::Copying => copy(groups, source, &m).await,
        MigrationState::Handover => finish(groups, source, &m).await,
        MigrationState::Cancelling => cancel(groups, source, &m).await,
        MigrationState::Done | MigrationState::Cancelled => Ok(()),
    };
    match step {
        Ok(()) => tracing::info!(id = m.id, from = ?m.state, "slot migration step done"),
        Err(e) => tracing::debug!(id = m.id, state = ?m.state, "slot migration step: {e}"),
    }
}

/// Freeze, copy, hand over.
async fn copy(groups: &Groups, source: &Replica, m: &Migration) -> Result<(), String> {
    ok(source.propose_control(Control::Freeze { id: m.id, ranges: m.ranges.clone() }).await)?;
    ok(propose_to(groups, m.target, &Control::BeginImport { id: m.id, ranges: m.ranges.clone() }).await)?;
    let keys = keys_in(source, &m.ranges, usize::MAX);
    let mut copied = 0u64;
    let mut at = 0;
    while at < keys.len() {
        if groups.map().and_then(|map| map.migration(m.id).map(|x| x.state)) != Some(MigrationState::Copying) {
            return Err("no longer copying".into());
        }
        let (items, next) = chunk(source, &keys, at);
        at = next;
        match propose_to(groups, m.target, &Control::Import { id: m.id, items }).await? {
            Frame::Integer(n) => copied += n as u64,
            other => return Err(format!("import refused: {other:?}")),
        }
    }
    advance(groups, m.id, MigrationState::Copying, MigrationState::Handover, copied).await
}

/// After the hand-over: close the import, delete the moved keys in the source, unfreeze.
async fn finish(groups: &Groups, source: &Replica, m: &Migration) -> Result<(), String> {
    let still_owned = source.control().owned.is_some_and(|o| m.ranges.iter().any(|&(a, b)| (a..=b).any(|s| o.owns(s))));
    if still_owned {
        return Err("the source group still owns the slots (its controller drops them)".into());
    }
    ok(propose_to(groups, m.target, &Control::EndImport { id: m.id, purge: false }).await)?;
    loop {
        let keys = keys_in(source, &m.ranges, CHUNK_KEYS);
        if keys.is_empty() {
            break;
        }
        match source.propose_control(Control::Purge { keys }).await? {
            Frame::Integer(n) if n > 0 => {}
            other => return Err(format!("purge deleted nothing: {other:?}")),
        }
    }
    ok(source.propose_control(Control::Unfreeze { id: m.id }).await)?;
    advance(groups, m.id, MigrationState::Handover, MigrationState::Done, 0).await
}

/// Cancelled: the target drops what it took in, the source takes writes again.
async fn cancel(groups: &Groups, source: &Replica, m: &Migration) -> Result<(), String> {
    ok(propose_to(groups, m.target, &Control::EndImport { id: m.id, purge: true }).await)?;
    ok(source.propose_control(Control::Unfreeze { id: m.id }).await)?;
    advance(groups, m.id, MigrationState::Cancelling, MigrationState::Cancelled, 0).await
}

/// Up to `limit` keys of DB 0 in `ranges`, from this node's copy of the group.
fn keys_in(replica: &Replica, ranges: &[(u16, u16)], limit: usize) -> Vec<Bytes> {
    let st = replica.state().read().unwrap_or_else(|p| p.into_inner());
    let keys = st.keyspace.db(0).iter().map(|(k, _)| k).filter(|k| in_ranges(ranges, key_slot(k)));
    keys.take(limit).cloned().collect()
}

/// The next chunk of `keys` from index `at`: their values (absent keys skipped) and where the
/// chunk after it starts.
fn chunk(replica: &Replica, keys: &[Bytes], mut at: usize) -> (Vec<ImportItem>, usize) {
    let st = replica.state().read().unwrap_or_else(|p| p.into_inner());
    let mut items = Vec::new();
    let mut bytes = 0;
    while at < keys.len() && items.len() < CHUNK_KEYS && bytes < CHUNK_BYTES {
        let key = &keys[at];
        at += 1;
        let Some(entry) = st.keyspace.db(0).raw(key) else { continue };
        let payload = Bytes::from(crate::store::rdb::dump(&entry.value));
        bytes += key.len() + payload.len();
        items.push(ImportItem { key: key.clone(), expire_at: entry.expire_at(), payload });
    }
    (items, at)
}

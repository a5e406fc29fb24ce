//! The openraft type configuration of raftis: what a log entry carries ([`Request`]), what
//! applying it returns (a RESP [`Frame`]; for a group of writes, an array of their replies),
//! how nodes are identified and addressed ([`NodeInfo`]), and which async runtime drives Raft
//! (`crate::rt::Runtime`: tokio, or madsim in simulation).

use crate::protocol::Frame;
use crate::store::WriteBatch;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A node's id (as in `--node-id`).
pub type NodeId = u64;

/// How to reach a node: its internal RPC address and its client (RESP) address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub raft_addr: String,
    pub client_addr: String,
}

/// The application payload of a log entry.
///
/// Shared, not owned: an entry is held by the client's write (for a retry or a forward after
/// a refused proposal), the log store's decoded-entry cache and the state machine's apply at
/// once, and each used to be a deep copy of every argument vector. `Arc` serializes as what it
/// holds (serde's `rc`), so the encoding in the log and on the wire is that of plain
/// `WriteBatch` / `Vec<WriteBatch>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// A write (or a MULTI/EXEC transaction) against the keyspace.
    Write(Arc<WriteBatch>),
    /// The writes of several clients proposed together (`super::proposer`), applied in
    /// order; the entry's reply is an array holding each write's reply, in the same order.
    Group(Arc<[Arc<WriteBatch>]>),
    /// Cluster control (multi-raft): the MetaRaft group's cluster map, a data group's slot
    /// ownership. Added after the others, so logs written before it still decode.
    Control(Arc<Control>),
}

/// A control entry (see [`Request::Control`]). Its reply is `+OK` when it took effect, an
/// error when it did not (an epoch that is not the expected one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// MetaRaft: replace the cluster map with `map` (encoded by `crate::cluster`, opaque here)
    /// at config epoch `epoch`, if the current map's epoch is `expect` (compare and set, so
    /// two controllers never overwrite each other's change unseen).
    SetMap { expect: u64, epoch: u64, map: bytes::Bytes },
    /// A data group: from config epoch `epoch` on, the group owns exactly the slots of
    /// `ranges` (inclusive). Ignored unless `epoch` is newer than the ownership it has.
    Own { epoch: u64, ranges: Vec<(u16, u16)> },
    /// Slot migration, source group: from here on writes to `ranges` are refused at apply
    /// with `-TRYAGAIN` (migration `id`; idempotent), so the slots' data stays as it is now.
    Freeze { id: u64, ranges: Vec<(u16, u16)> },
    /// Source group: migration `id` no longer stops writes (done or cancelled).
    Unfreeze { id: u64 },
    /// Target group: migration `id` imports `ranges`. The first such entry deletes whatever
    /// the group holds in those (not owned) slots, leftovers of an earlier move.
    BeginImport { id: u64, ranges: Vec<(u16, u16)> },
    /// Target group: a chunk of migration `id`'s keys, applied only while the import is open
    /// and only to slots of its ranges the group does not own yet.
    Import { id: u64, items: Vec<ImportItem> },
    /// Target group: migration `id`'s import ends; with `purge` (a cancelled migration) the
    /// keys it brought into slots the group does not own are deleted.
    EndImport { id: u64, purge: bool },
    /// Source group after a hand-over: deletes these keys if the group does not own their
    /// slots (named, so every replica deletes the same keys whatever its hash order).
    Purge { keys: Vec<bytes::Bytes> },
    /// Source group, Redis's `CLUSTER SETSLOT <slot> MIGRATING`: from here on a command whose
    /// keys of `slot` are all missing here is answered `-ASK <slot> <addr>` (the target node's
    /// client address), one with some missing `-TRYAGAIN`; present keys are served as before.
    AskOut { slot: u16, addr: String },
    /// Target group, `CLUSTER SETSLOT <slot> IMPORTING`: commands sent with ASKING (and
    /// RESTORE-ASKING) may write keys of `slot` although the group does not own it yet.
    AskIn { slot: u16 },
    /// Source and target, `CLUSTER SETSLOT <slot> STABLE`: the group's ASK state of `slot` ends.
    AskEnd { slot: u16 },
    /// Source group, before `CLUSTER SETSLOT <slot> NODE` gives `slot` away: if the group still
    /// holds keys of `slot` the reply is their count and nothing changes; else the slot is put
    /// in the ASK state (`AskOut`), so no write can create a key of it here any more, and the
    /// reply is 0.
    Handoff { slot: u16, addr: String },
    /// MIGRATE in cluster mode, before it copies `keys`: writes to them are refused with
    /// `-TRYAGAIN` (at apply, judged by the writes' stamped time) until [`Control::Release`]
    /// or `until_ms`, so no write slips between the copy and the delete.
    Hold { keys: Vec<bytes::Bytes>, until_ms: u64 },
    /// MIGRATE is done with `keys`.
    Release { keys: Vec<bytes::Bytes> },
}

/// One key of a migration chunk: its value in DUMP format and its absolute expiry time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportItem {
    pub key: bytes::Bytes,
    pub expire_at: Option<u64>,
    pub payload: bytes::Bytes,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Write(batch) => batch.fmt(f),
            Request::Group(batches) => write!(f, "group of {} writes", batches.len()),
            Request::Control(c) => match &**c {
                Control::SetMap { epoch, .. } => write!(f, "cluster map at epoch {epoch}"),
                Control::Own { epoch, ranges } => {
                    write!(f, "ownership of {} slot ranges at epoch {epoch}", ranges.len())
                }
                Control::Freeze { id, .. } => write!(f, "freeze of migration {id}"),
                Control::Unfreeze { id } => write!(f, "unfreeze of migration {id}"),
                Control::BeginImport { id, .. } => write!(f, "import of migration {id} begins"),
                Control::Import { id, items } => write!(f, "{} keys of migration {id}", items.len()),
                Control::EndImport { id, purge } => write!(f, "import of migration {id} ends (purge: {purge})"),
                Control::Purge { keys } => write!(f, "purge of {} moved keys", keys.len()),
                Control::AskOut { slot, addr } => write!(f, "slot {slot} migrating to {addr}"),
                Control::AskIn { slot } => write!(f, "slot {slot} importing"),
                Control::AskEnd { slot } => write!(f, "slot {slot} stable"),
                Control::Handoff { slot, .. } => write!(f, "hand-off of slot {slot}"),
                Control::Hold { keys, .. } => write!(f, "hold of {} keys for MIGRATE", keys.len()),
                Control::Release { keys } => write!(f, "release of {} keys after MIGRATE", keys.len()),
            },
        }
    }
}

openraft::declare_raft_types!(
    /// raftis's Raft types.
    pub TypeConfig:
        D = Request,
        R = Frame,
        NodeId = NodeId,
        Node = NodeInfo,
        AsyncRuntime = crate::rt::Runtime,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seed: u64) -> WriteBatch {
        WriteBatch {
            db: 3,
            now_ms: 1_700_000_000_000,
            seed,
            cmds: vec![vec![bytes::Bytes::from_static(b"SET"), bytes::Bytes::from_static(b"k\0\r\n")]],
            transaction: None,
        }
    }

    #[test]
    fn requests_round_trip_through_postcard() {
        let req = Request::Write(Arc::new(batch(42)));
        let bytes = postcard::to_allocvec(&req).expect("encode");
        assert_eq!(postcard::from_bytes::<Request>(&bytes).expect("decode"), req);
        assert_eq!(req.to_string(), "write(db=3, t=1700000000000, [SET])");
    }

    /// The shape `Request` had before its payloads were shared: logs written by it must still
    /// decode, and new entries must encode the same.
    #[derive(Serialize)]
    enum OwnedRequest {
        Write(WriteBatch),
        Group(Vec<WriteBatch>),
    }

    #[test]
    fn shared_payloads_encode_as_owned_ones() {
        let cases = [
            (Request::Write(Arc::new(batch(1))), OwnedRequest::Write(batch(1))),
            (
                Request::Group(vec![Arc::new(batch(1)), Arc::new(batch(2))].into()),
                OwnedRequest::Group(vec![batch(1), batch(2)]),
            ),
        ];
        for (shared, owned) in cases {
            let owned_bytes = postcard::to_allocvec(&owned).expect("encode owned");
            assert_eq!(postcard::to_allocvec(&shared).expect("encode shared"), owned_bytes);
            assert_eq!(postcard::from_bytes::<Request>(&owned_bytes).expect("decode"), shared);
        }
    }
}

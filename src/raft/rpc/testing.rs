//! A scriptable [`RpcHandler`] for tests of the transport itself (tests/rpc.rs and the madsim
//! scenario sim/rpc.rs), standing in for a node: Raft requests get fixed answers, forwarded
//! commands follow a tiny script, received snapshots are recorded.
//!
//! Forwarded commands: `ECHO a b ..` replies with the arguments as an array of bulk strings;
//! `HANG` never replies; `FAIL` is a handler error; `BIG n` replies with a bulk of `n` bytes;
//! anything else is an error reply frame.

use super::message::ForwardRequest;
use super::server::{HandlerError, RpcHandler};
use crate::disk::Disk;
use crate::protocol::Frame;
use crate::raft::snapshot_file::SnapshotFile;
use crate::raft::TypeConfig;
use bytes::Bytes;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A snapshot the handler was asked to install.
#[derive(Debug, Clone)]
pub struct Installed {
    pub group: u64,
    pub vote: VoteOf<TypeConfig>,
    pub meta: SnapshotMetaOf<TypeConfig>,
    pub file: SnapshotFile,
}

/// The test handler. Received snapshots are written under `recv/` on its disk.
pub struct TestHandler {
    disk: Arc<dyn Disk>,
    next_file: AtomicU64,
    installed: Mutex<Vec<Installed>>,
    appends: AtomicU64,
}

impl TestHandler {
    /// A handler storing received snapshots on `disk`.
    pub fn new(disk: Arc<dyn Disk>) -> TestHandler {
        TestHandler { disk, next_file: AtomicU64::new(0), installed: Mutex::default(), appends: AtomicU64::new(0) }
    }

    /// The snapshots installed so far, in order.
    pub fn installed(&self) -> Vec<Installed> {
        self.installed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The disk received snapshots are written to.
    pub fn disk(&self) -> &Arc<dyn Disk> {
        &self.disk
    }

    /// AppendEntries requests served so far.
    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::Relaxed)
    }
}

impl RpcHandler for TestHandler {
    async fn append_entries(
        &self,
        _group: u64,
        _req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<TypeConfig>, HandlerError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        Ok(AppendEntriesResponse::Success)
    }

    async fn vote(&self, _group: u64, req: VoteRequest<TypeConfig>) -> Result<VoteResponse<TypeConfig>, HandlerError> {
        Ok(VoteResponse::new(req.vote, req.last_log_id, true))
    }

    async fn pre_vote(
        &self,
        _group: u64,
        req: VoteRequest<TypeConfig>,
    ) -> Result<VoteResponse<TypeConfig>, HandlerError> {
        Ok(VoteResponse::new(req.vote, req.last_log_id, false))
    }

    async fn transfer_leader(
        &self,
        _group: u64,
        _req: TransferLeaderRequest<TypeConfig>,
    ) -> Result<TransferLeaderResponse<TypeConfig>, HandlerError> {
        Ok(Ok(()))
    }

    async fn begin_snapshot(&self, group: u64) -> Result<SnapshotFile, HandlerError> {
        self.disk.create_dir_all("recv").map_err(HandlerError::new)?;
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        Ok(SnapshotFile { disk: self.disk.clone(), path: format!("recv/g{group}-{n}") })
    }

    async fn install_snapshot(
        &self,
        group: u64,
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
        file: SnapshotFile,
    ) -> Result<SnapshotResponse<TypeConfig>, HandlerError> {
        self.installed.lock().unwrap_or_else(|e| e.into_inner()).push(Installed { group, vote, meta, file });
        Ok(SnapshotResponse::new(vote))
    }

    async fn forward(&self, _group: u64, req: ForwardRequest) -> Result<Frame, HandlerError> {
        let name = req.argv.first().map(|b| b.to_ascii_uppercase()).unwrap_or_default();
        match name.as_slice() {
            b"ECHO" => Ok(Frame::Array(req.argv[1..].iter().cloned().map(Frame::Bulk).collect())),
            b"HANG" => std::future::pending().await,
            b"FAIL" => Err(HandlerError::new("scripted failure")),
            b"SLOW" => {
                // Answers after the given number of ms (a slow peer, not a dead one).
                let ms = req.argv.get(1).and_then(|a| std::str::from_utf8(a).ok()?.parse::<u64>().ok()).unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Ok(Frame::Simple("SLOW".into()))
            }
            b"BIG" => {
                let n = req.argv.get(1).and_then(|a| std::str::from_utf8(a).ok()?.parse::<usize>().ok()).unwrap_or(0);
                Ok(Frame::Bulk(Bytes::from(vec![b'x'; n])))
            }
            _ => Ok(Frame::Error(Bytes::from_static(b"ERR unknown test command"))),
        }
    }
}

//! Snapshots over the RPC protocol, both ends, never holding a whole snapshot in memory.
//!
//! Sending ([`send_snapshot`]): `SnapshotBegin`, then the [`SnapshotFile`] read and sent one
//! `CHUNK_BYTES` chunk at a time (each chunk acknowledged before the next is read), then
//! `SnapshotFinish` with the meta and the leader's vote.
//!
//! Receiving ([`SnapshotInbox`]): each transfer appends its chunks to a `SnapshotFile` that the
//! state machine handed out for it, checks that offsets follow each other and that the total
//! size matches, and syncs the file before the server asks the state machine to install it.

use super::client::{RpcClient, RpcError};
use super::message::{RpcRequest, RpcResponse};
use crate::disk::DiskFile;
use crate::raft::snapshot_file::SnapshotFile;
use crate::raft::TypeConfig;
use bytes::Bytes;
use openraft::raft::SnapshotResponse;
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why sending a snapshot stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendSnapshotError {
    /// Reading the local snapshot file failed.
    #[error("reading the snapshot: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

/// Streams `file` to the peer behind `client` and has it installed there. `chunk_timeout`
/// bounds each begin/chunk RPC, `install_timeout` the final one (which includes installing).
pub async fn send_snapshot(
    client: &RpcClient,
    group: u64,
    vote: VoteOf<TypeConfig>,
    meta: SnapshotMetaOf<TypeConfig>,
    file: &SnapshotFile,
    chunk_timeout: Duration,
    install_timeout: Duration,
) -> Result<SnapshotResponse<TypeConfig>, SendSnapshotError> {
    let unexpected = |want: &str, got: RpcResponse| RpcError::Failed {
        addr: client.addr().to_string(),
        reason: format!("expected a {want} response, got {got:?}"),
    };
    let transfer = match client.call(group, &RpcRequest::SnapshotBegin, chunk_timeout).await? {
        RpcResponse::SnapshotBegun { transfer } => transfer,
        other => return Err(unexpected("snapshot_begin", other).into()),
    };
    let mut offset = 0u64;
    loop {
        let data = file.read_chunk(offset)?;
        if data.is_empty() {
            break;
        }
        let len = data.len() as u64;
        let req = RpcRequest::SnapshotChunk { transfer, offset, data: Bytes::from(data) };
        match client.call(group, &req, chunk_timeout).await? {
            RpcResponse::SnapshotChunk { received } if received == offset + len => offset = received,
            other => return Err(unexpected("snapshot_chunk", other).into()),
        }
    }
    let finish = RpcRequest::SnapshotFinish { transfer, size: offset, vote, meta };
    match client.call(group, &finish, install_timeout).await? {
        RpcResponse::SnapshotInstalled(resp) => Ok(resp),
        other => Err(unexpected("snapshot_finish", other).into()),
    }
}

/// Why a received chunk or finish was refused.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("unknown snapshot transfer {0}")]
    UnknownTransfer(u64),
    #[error("snapshot transfer {transfer}: chunk at offset {got}, expected {want}")]
    Offset { transfer: u64, got: u64, want: u64 },
    #[error("snapshot transfer {transfer}: {got} bytes received, the sender says {want}")]
    Size { transfer: u64, got: u64, want: u64 },
    #[error("snapshot transfer {transfer} belongs to group {want}, not {got}")]
    Group { transfer: u64, got: u64, want: u64 },
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
}

struct Incoming {
    group: u64,
    file: SnapshotFile,
    writer: Box<dyn DiskFile>,
    received: u64,
}

/// The snapshots being received on one connection: at most one per group, since a leader sends
/// one snapshot at a time and a new one supersedes a transfer it abandoned. On any error the
/// transfer is dropped and its file handed back so the caller can discard it.
#[derive(Default)]
pub struct SnapshotInbox {
    next: u64,
    transfers: BTreeMap<u64, Incoming>,
}

impl SnapshotInbox {
    /// Ends the open transfers of `group` (call before [`SnapshotInbox::begin`] of a new one);
    /// returns their files to discard.
    pub fn supersede(&mut self, group: u64) -> Vec<SnapshotFile> {
        let ids: Vec<u64> = self.transfers.iter().filter(|(_, i)| i.group == group).map(|(id, _)| *id).collect();
        ids.into_iter().filter_map(|id| self.transfers.remove(&id)).map(|i| i.file).collect()
    }

    /// Starts a transfer into `file` (emptied first: it may hold a previous attempt).
    pub fn begin(&mut self, group: u64, file: SnapshotFile) -> Result<u64, (InboxError, SnapshotFile)> {
        let opened = file.writer().and_then(|mut w| w.truncate(0).map(|()| w));
        let writer = match opened {
            Ok(w) => w,
            Err(e) => return Err((e.into(), file)),
        };
        self.next += 1;
        self.transfers.insert(self.next, Incoming { group, file, writer, received: 0 });
        Ok(self.next)
    }

    /// Appends a chunk; returns the bytes received so far.
    pub fn chunk(
        &mut self,
        group: u64,
        transfer: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, (InboxError, Option<SnapshotFile>)> {
        let inc = self.get(group, transfer)?;
        let result = if offset != inc.received {
            Err(InboxError::Offset { transfer, got: offset, want: inc.received })
        } else {
            inc.writer.append(data).map_err(InboxError::from)
        };
        match result {
            Ok(()) => {
                inc.received += data.len() as u64;
                Ok(inc.received)
            }
            Err(e) => Err((e, self.transfers.remove(&transfer).map(|i| i.file))),
        }
    }

    /// Ends a transfer of `size` bytes: syncs the file and returns it for installation.
    pub fn finish(
        &mut self,
        group: u64,
        transfer: u64,
        size: u64,
    ) -> Result<SnapshotFile, (InboxError, Option<SnapshotFile>)> {
        self.get(group, transfer)?;
        let Some(mut inc) = self.transfers.remove(&transfer) else {
            return Err((InboxError::UnknownTransfer(transfer), None));
        };
        if inc.received != size {
            return Err((InboxError::Size { transfer, got: inc.received, want: size }, Some(inc.file)));
        }
        match inc.writer.sync() {
            Ok(()) => Ok(inc.file),
            Err(e) => Err((e.into(), Some(inc.file))),
        }
    }

    /// Ends every open transfer (the connection is gone); returns their files to discard.
    pub fn drain(&mut self) -> Vec<(u64, SnapshotFile)> {
        std::mem::take(&mut self.transfers).into_values().map(|i| (i.group, i.file)).collect()
    }

    fn get(&mut self, group: u64, transfer: u64) -> Result<&mut Incoming, (InboxError, Option<SnapshotFile>)> {
        match self.transfers.get_mut(&transfer) {
            None => Err((InboxError::UnknownTransfer(transfer), None)),
            Some(inc) if inc.group != group => Err((InboxError::Group { transfer, got: group, want: inc.group }, None)),
            Some(inc) => Ok(inc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{Disk, SimDisk};
    use std::sync::Arc;

    fn file(disk: &Arc<dyn Disk>, path: &str) -> SnapshotFile {
        SnapshotFile { disk: disk.clone(), path: path.into() }
    }

    #[test]
    fn chunks_must_follow_each_other_and_add_up() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let mut inbox = SnapshotInbox::default();
        let mut stale = file(&disk, "a").writer().unwrap();
        stale.append(b"old bytes").unwrap();
        let t = inbox.begin(0, file(&disk, "a")).unwrap();
        assert_eq!(inbox.chunk(0, t, 0, b"hello ").unwrap(), 6);
        assert!(matches!(inbox.chunk(1, t, 6, b"x"), Err((InboxError::Group { .. }, None))));
        assert_eq!(inbox.chunk(0, t, 6, b"world").unwrap(), 11);
        let done = inbox.finish(0, t, 11).unwrap();
        assert_eq!(disk.read(&done.path).unwrap(), b"hello world");

        let t = inbox.begin(0, file(&disk, "b")).unwrap();
        match inbox.chunk(0, t, 3, b"x") {
            Err((InboxError::Offset { got: 3, want: 0, .. }, Some(f))) => assert_eq!(f.path, "b"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(inbox.chunk(0, t, 0, b"x"), Err((InboxError::UnknownTransfer(_), None))));

        let t = inbox.begin(0, file(&disk, "c")).unwrap();
        inbox.chunk(0, t, 0, b"abc").unwrap();
        assert!(matches!(inbox.finish(0, t, 4), Err((InboxError::Size { got: 3, want: 4, .. }, Some(_)))));

        inbox.begin(0, file(&disk, "d")).unwrap();
        inbox.begin(1, file(&disk, "e")).unwrap();
        let gone: Vec<String> = inbox.supersede(0).into_iter().map(|f| f.path).collect();
        assert_eq!(gone, ["d"]);
        inbox.begin(0, file(&disk, "f")).unwrap();
        let left: Vec<(u64, String)> = inbox.drain().into_iter().map(|(g, f)| (g, f.path)).collect();
        assert_eq!(left, [(1, "e".to_string()), (0, "f".to_string())]);
    }
}

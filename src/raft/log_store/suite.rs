//! openraft's storage test suite (`openraft::testing::log::Suite`) run against [`LogStore`] on
//! both disk twins. The suite also exercises a state machine; this file has a minimal
//! in-memory one ([`TestSm`]) that only satisfies the suite. Once the real state machine is
//! merged, the suite should run against it instead.

use super::{LogId, LogStore, LogStoreOptions};
use crate::disk::{Disk, RealDisk, SimDisk};
use crate::protocol::Frame;
use crate::raft::TypeConfig;
use futures_util::StreamExt;
use openraft::alias::{SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::EntryPayload;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::{OptionalSend, StorageError, StoredMembership};
use std::io;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct SmState {
    last_applied: Option<LogId>,
    membership: StoredMembershipOf<TypeConfig>,
    snapshot: Option<SnapshotOf<TypeConfig, Vec<u8>>>,
}

/// A state machine that only tracks what the suite checks (applied log id, membership,
/// snapshot metadata). Test-only.
#[derive(Clone, Default)]
pub struct TestSm(Arc<Mutex<SmState>>);

impl TestSm {
    fn lock(&self) -> std::sync::MutexGuard<'_, SmState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for TestSm {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Vec<u8>>, io::Error> {
        let mut st = self.lock();
        let snap = SnapshotOf::<TypeConfig, Vec<u8>> {
            meta: SnapshotMetaOf::<TypeConfig> { last_log_id: st.last_applied, last_membership: st.membership.clone() },
            snapshot: Vec::new(),
        };
        st.snapshot = Some(snap.clone());
        Ok(snap)
    }
}

impl RaftStateMachine<TypeConfig> for TestSm {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = TestSm;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembershipOf<TypeConfig>), io::Error> {
        let st = self.lock();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            {
                let mut st = self.lock();
                st.last_applied = Some(entry.log_id);
                if let EntryPayload::Membership(m) = &entry.payload {
                    st.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                }
            }
            if let Some(r) = responder {
                r.send(Frame::Null);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> TestSm {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let mut st = self.lock();
        st.last_applied = meta.last_log_id;
        st.membership = meta.last_membership.clone();
        st.snapshot = Some(SnapshotOf::<TypeConfig, Vec<u8>> { meta: meta.clone(), snapshot });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<TypeConfig, Vec<u8>>>, io::Error> {
        Ok(self.lock().snapshot.clone())
    }
}

/// Removes a RealDisk test directory when the suite is done with a store.
pub struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds stores on the disk twin chosen by `real`.
struct Builder {
    real: bool,
    next: std::sync::atomic::AtomicU64,
}

fn storage_err(e: impl std::fmt::Display) -> StorageError<TypeConfig> {
    StorageError::read(TypeConfig::err_from_string(e))
}

impl StoreBuilder<TypeConfig, LogStore, TestSm, Option<TempDir>> for Builder {
    async fn build(&self) -> Result<(Option<TempDir>, LogStore, TestSm), StorageError<TypeConfig>> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (guard, disk): (Option<TempDir>, Arc<dyn Disk>) = if self.real {
            let dir = std::env::temp_dir().join(format!("raftis-logstore-suite-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let disk = RealDisk::new(&dir).map_err(storage_err)?;
            (Some(TempDir(dir)), Arc::new(disk))
        } else {
            (None, Arc::new(SimDisk::new()))
        };
        let opts = LogStoreOptions { committed_every: 0, ..Default::default() };
        let store = LogStore::open_with(disk, "raft", opts).await.map_err(storage_err)?;
        Ok((guard, store, TestSm::default()))
    }
}

// Time is paused (it auto-advances when every task waits) because the suite sleeps for
// seconds between steps; the stores wait on their flusher, never on time.
#[tokio::test(start_paused = true)]
async fn openraft_suite_on_real_disk() {
    Suite::test_all(Builder { real: true, next: 0.into() }).await.expect("openraft storage suite");
}

#[tokio::test(start_paused = true)]
async fn openraft_suite_on_sim_disk() {
    Suite::test_all(Builder { real: false, next: 0.into() }).await.expect("openraft storage suite");
}

//! openraft's storage test suite (`openraft::testing::log::Suite`) run against [`LogStore`] and
//! the real [`StateMachine`] on both disk twins.

use super::{LogStore, LogStoreOptions};
use crate::disk::{Disk, RealDisk, SimDisk};
use crate::raft::state_machine::StateMachine;
use crate::raft::TypeConfig;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::StorageError;
use std::sync::Arc;

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

impl StoreBuilder<TypeConfig, LogStore, StateMachine, Option<TempDir>> for Builder {
    async fn build(&self) -> Result<(Option<TempDir>, LogStore, StateMachine), StorageError<TypeConfig>> {
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
        let store = LogStore::open_with(disk.clone(), "raft", opts).await.map_err(storage_err)?;
        let sm = StateMachine::open(disk, "sm", crate::store::DEFAULT_DATABASES).map_err(storage_err)?;
        Ok((guard, store, sm))
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

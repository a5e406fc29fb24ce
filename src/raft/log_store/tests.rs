//! Log store tests beyond openraft's suite: recovery, crash safety, failure, group commit.
//!
//! Tests run on a current-thread runtime, so the flusher runs only while the test awaits
//! something pending: appending without awaiting and then crashing models a crash before the
//! flusher got to those appends.

use super::*;
use crate::disk::{CrashMode, DiskFile, RealDisk, SimDisk};
use openraft::alias::{LeaderIdOf, OneshotReceiverOf};
use openraft::type_config::TypeConfigExt;
use openraft::vote::RaftLeaderIdExt;
use std::sync::atomic::{AtomicU64, Ordering};

fn log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId::new(LeaderIdOf::<TypeConfig>::new_committed(term, node), index)
}

/// Blank entries with a term change every four, one leader per term (as in a real log).
fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range.map(|i| Entry::new_blank(log_id(1 + i / 4, (i / 4) % 3, i))).collect()
}

fn opts() -> LogStoreOptions {
    LogStoreOptions { wal: WalOptions { segment_bytes: 512 }, committed_every: 0 }
}

async fn open(disk: &Arc<dyn Disk>) -> LogStore {
    LogStore::open_with(disk.clone(), "raft", opts()).await.expect("open")
}

type Flushed = OneshotReceiverOf<TypeConfig, io::Result<()>>;

/// Appends without waiting for durability; returns the receiver of the flush callback.
async fn append(store: &mut LogStore, batch: Vec<Entry>) -> Flushed {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(batch, IOFlushed::signal(tx)).await.expect("append accepted");
    rx
}

async fn flushed(rx: Flushed) -> io::Result<()> {
    rx.await.map_err(|_| io::Error::other("callback dropped"))?
}

/// Appends and waits until the entries are durable.
async fn append_durable(store: &mut LogStore, batch: Vec<Entry>) {
    let rx = append(store, batch).await;
    flushed(rx).await.expect("flushed");
}

async fn all_entries(store: &mut LogStore) -> Vec<Entry> {
    store.try_get_log_entries(..).await.expect("read")
}

impl LogStore {
    /// From now on the flusher leaves its queue alone (it finishes a round in progress): what
    /// is queued after this stays unflushed, whatever the thread timing.
    fn hold_flusher(&self) {
        self.shared.lock().held = true;
    }

    /// A power cut for this store: its flusher stops touching the disk at once, and whatever
    /// it had queued is dropped (call [`LogStore::hold_flusher`] before queuing what must
    /// stay unflushed).
    fn kill(mut self) {
        {
            let mut st = self.shared.lock();
            st.held = true;
            st.closed = true;
            st.queue.clear();
        }
        self.shared.wake.wake();
        self.flusher.take();
    }
}

/// Runs `check` on a RealDisk in a fresh temp dir and on a SimDisk.
async fn on_both<F, Fut>(name: &str, check: F)
where
    F: Fn(Arc<dyn Disk>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!("raftis-logstore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    check(Arc::new(RealDisk::new(&dir).expect("temp dir"))).await;
    let _ = std::fs::remove_dir_all(&dir);
    check(Arc::new(SimDisk::new())).await;
}

#[tokio::test]
async fn reopen_keeps_entries_and_log_ids() {
    on_both("reopen", |disk| async move {
        let mut store = open(&disk).await;
        append_durable(&mut store, entries(1..=30)).await;
        store.truncate_after(Some(log_id(1 + 25 / 4, (25 / 4) % 3, 25))).await.unwrap();
        append_durable(&mut store, vec![Entry::new_blank(log_id(9, 2, 26))]).await;
        let before = all_entries(&mut store).await;
        store.shutdown().await;

        let mut store = open(&disk).await;
        let after = all_entries(&mut store).await;
        assert_eq!(after, before);
        assert_eq!(after.len(), 26);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(9, 2, 26)));
        assert_eq!(state.last_purged_log_id, None);
        assert_eq!(store.try_get_log_entries(10..=11).await.unwrap(), entries(10..=11));
        store.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn vote_survives_a_crash_only_once_save_vote_returned() {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    let mut store = open(&disk).await;
    let v1 = Vote::new(3, 1);
    store.save_vote(&v1).await.unwrap();
    // Queued but not yet done when the power goes.
    store.hold_flusher();
    let pending = futures_util::FutureExt::now_or_never(store.save_vote(&Vote::new(4, 2)));
    assert!(pending.is_none(), "save_vote waits for the flusher");
    store.kill();
    sim.crash(CrashMode::LoseUnsynced);

    let mut store = open(&disk).await;
    assert_eq!(store.read_vote().await.unwrap(), Some(v1));
    let v2 = Vote::new_committed(5, 2);
    store.save_vote(&v2).await.unwrap();
    store.kill();
    sim.crash(CrashMode::LoseUnsynced);
    let mut store = open(&disk).await;
    assert_eq!(store.read_vote().await.unwrap(), Some(v2));
}

#[tokio::test]
async fn a_vote_renamed_into_place_before_a_process_crash_is_made_durable_on_open() {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    let mut store = open(&disk).await;
    store.save_vote(&Vote::new(3, 1)).await.unwrap();
    store.kill();
    // A newer vote written like `write_atomic` does, and the process dies between the rename
    // and the directory sync: the file is synced, its name is not.
    let v2 = Vote::new(4, 2);
    let body = postcard::to_allocvec(&v2).unwrap();
    let mut data = crc32c::crc32c(&body).to_le_bytes().to_vec();
    data.extend_from_slice(&body);
    let mut f = disk.open("raft/vote.tmp").unwrap();
    f.append(&data).unwrap();
    f.sync().unwrap();
    drop(f);
    disk.rename("raft/vote.tmp", "raft/vote").unwrap();

    // The restarted node reads (and may act on) the new vote; a power cut must not take it back.
    let mut store = open(&disk).await;
    assert_eq!(store.read_vote().await.unwrap(), Some(v2));
    store.kill();
    sim.crash(CrashMode::LoseUnsynced);
    let mut store = open(&disk).await;
    assert_eq!(store.read_vote().await.unwrap(), Some(v2));
}

#[tokio::test]
async fn crash_loses_unsynced_appends_but_never_synced_ones() {
    for seed in 0..8 {
        let sim = SimDisk::new();
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let mut store = open(&disk).await;
        append_durable(&mut store, entries(1..=10)).await;
        store.hold_flusher();
        let _not_yet = append(&mut store, entries(11..=20)).await;
        assert_eq!(all_entries(&mut store).await.len(), 20, "readable before durable");
        store.kill();
        sim.crash(CrashMode::TearUnsynced { seed });

        let mut store = open(&disk).await;
        assert_eq!(all_entries(&mut store).await, entries(1..=10), "seed {seed}");
        append_durable(&mut store, entries(11..=12)).await;
        store.kill();
        sim.crash(CrashMode::TearUnsynced { seed });
        let mut store = open(&disk).await;
        assert_eq!(all_entries(&mut store).await, entries(1..=12), "seed {seed}");
        store.shutdown().await;
    }
}

#[tokio::test]
async fn purge_then_reopen_keeps_the_purged_log_id() {
    on_both("purge", |disk| async move {
        let mut store = open(&disk).await;
        for i in 1..=20 {
            append_durable(&mut store, entries(i..=i)).await;
        }
        store.purge(log_id(2, 2, 5)).await.unwrap();
        store.shutdown().await;

        let mut store = open(&disk).await;
        assert_eq!(all_entries(&mut store).await, entries(6..=20));
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 2, 5)));
        assert_eq!(state.last_log_id, Some(entries(20..=20)[0].log_id));
        // Past the end of the log (a snapshot installed from the leader).
        store.purge(log_id(9, 1, 30)).await.unwrap();
        store.shutdown().await;

        let mut store = open(&disk).await;
        assert!(all_entries(&mut store).await.is_empty());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(9, 1, 30)));
        assert_eq!(state.last_log_id, Some(log_id(9, 1, 30)));
        append_durable(&mut store, vec![Entry::new_blank(log_id(9, 1, 31))]).await;
        store.shutdown().await;
        let mut store = open(&disk).await;
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(log_id(9, 1, 31)));
        store.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_purge_interrupted_after_its_log_id_was_written_is_finished_on_open() {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let mut store = open(&disk).await;
    append_durable(&mut store, entries(1..=10)).await;
    store.shutdown().await;
    meta::write(disk.as_ref(), "raft", meta::PURGED, &log_id(2, 1, 4)).unwrap();
    let mut store = open(&disk).await;
    assert_eq!(all_entries(&mut store).await, entries(5..=10));
    assert_eq!(store.get_log_state().await.unwrap().last_purged_log_id, Some(log_id(2, 1, 4)));
}

#[tokio::test]
async fn a_failed_sync_fails_the_append_and_everything_after() {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    let mut store = open(&disk).await;
    append_durable(&mut store, entries(1..=3)).await;
    sim.fail_next_syncs(1);
    let rx = append(&mut store, entries(4..=5)).await;
    assert!(flushed(rx).await.is_err(), "the callback reports the failure to openraft");
    assert!(store.append(entries(6..=6), IOFlushed::noop()).await.is_err(), "never carries on");
    assert!(store.save_vote(&Vote::new(9, 1)).await.is_err());
    assert!(store.purge(log_id(1, 1, 1)).await.is_err());
    assert!(store.truncate_after(None).await.is_err());
}

#[tokio::test]
async fn a_failed_vote_write_stops_the_store() {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    let mut store = open(&disk).await;
    sim.fail_next_syncs(1);
    assert!(store.save_vote(&Vote::new(1, 1)).await.is_err());
    assert!(store.append(entries(1..=1), IOFlushed::noop()).await.is_err());
}

#[tokio::test]
async fn corrupt_middle_record_stops_start_up_naming_file_and_offset() {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let mut store = open(&disk).await;
    append_durable(&mut store, entries(1..=5)).await;
    store.shutdown().await;
    let path = "raft/wal/00000000000000000001.wal";
    let mut data = disk.read(path).unwrap();
    data[20] ^= 0xff; // inside the first record's body
    let mut f = disk.open(path).unwrap();
    f.truncate(0).unwrap();
    f.append(&data).unwrap();
    f.sync().unwrap();
    drop(f);
    let err = LogStore::open_with(disk, "raft", opts()).await.err().expect("must refuse");
    let msg = err.to_string();
    assert!(msg.contains(path) && msg.contains("offset 0"), "{msg}");
}

#[tokio::test]
async fn committed_is_recovered_and_never_ahead_of_the_durable_log() {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    let mut store = open(&disk).await;
    append_durable(&mut store, entries(1..=5)).await;
    store.save_committed(Some(log_id(2, 2, 5))).await.unwrap();
    append_durable(&mut store, entries(6..=6)).await; // a flush persists it (committed_every 0)
                                                      // The flusher writes the committed id after firing that flush's callbacks; a vote is a
                                                      // barrier handled in a later round, so once it returns the committed id is on disk.
    store.save_vote(&Vote::new(1, 1)).await.unwrap();
    // The flusher is a thread: held, it cannot sync 7..=8 (and persist 8) before the crash.
    store.hold_flusher();
    let _lost = append(&mut store, entries(7..=8)).await;
    store.save_committed(Some(log_id(3, 2, 8))).await.unwrap();
    store.kill();
    sim.crash(CrashMode::LoseUnsynced);

    let mut store = open(&disk).await;
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(2, 2, 5)));
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(entries(6..=6)[0].log_id));
    store.save_committed(Some(log_id(2, 2, 6))).await.unwrap();
    store.shutdown().await; // shutdown persists the latest committed
    let mut store = open(&disk).await;
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(2, 2, 6)));
}

/// A Disk that counts file syncs.
struct CountingDisk {
    inner: SimDisk,
    syncs: Arc<AtomicU64>,
}

struct CountingFile {
    inner: Box<dyn DiskFile>,
    syncs: Arc<AtomicU64>,
}

impl Disk for CountingDisk {
    fn open(&self, path: &str) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(CountingFile { inner: self.inner.open(path)?, syncs: self.syncs.clone() }))
    }
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &str) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
}

impl DiskFile for CountingFile {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn allocate(&mut self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync()
    }
}

#[tokio::test]
async fn concurrent_appends_share_syncs() {
    let syncs = Arc::new(AtomicU64::new(0));
    let disk: Arc<dyn Disk> = Arc::new(CountingDisk { inner: SimDisk::new(), syncs: syncs.clone() });
    let mut store =
        LogStore::open_with(disk, "raft", LogStoreOptions { committed_every: u64::MAX, ..Default::default() })
            .await
            .unwrap();
    let before = syncs.load(Ordering::SeqCst);
    let n = 50;
    let mut pending = Vec::new();
    for i in 1..=n {
        pending.push(append(&mut store, entries(i..=i)).await);
    }
    for rx in pending {
        flushed(rx).await.expect("flushed");
    }
    let used = syncs.load(Ordering::SeqCst) - before;
    assert!(used >= 1 && used < n, "{n} appends took {used} syncs");
    assert_eq!(all_entries(&mut store).await, entries(1..=n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_fire_in_order_and_only_after_their_sync() {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    let mut store = open(&disk).await;
    let mut pending = Vec::new();
    for i in 1..=40 {
        pending.push((i, append(&mut store, entries(i..=i)).await));
    }
    for (i, rx) in pending {
        flushed(rx).await.expect("flushed");
        // Everything up to i is durable once its callback fired.
        let mut durable = Vec::new();
        for name in disk.list("raft/wal").unwrap() {
            durable.extend(sim.durable_contents(&join("raft/wal", &name)).unwrap_or_default());
        }
        let needle = postcard::to_allocvec(&entries(i..=i)[0]).unwrap();
        assert!(durable.windows(needle.len()).any(|w| w == needle), "entry {i} durable before its callback");
    }
}

#[tokio::test]
async fn committed_is_raised_to_the_older_of_the_last_two_memberships() {
    use openraft::{EntryPayload, Membership};
    let membership = |voters: &[u64]| {
        EntryPayload::Membership(Membership::new_with_defaults(vec![voters.iter().copied().collect()], []))
    };
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let mut store = open(&disk).await;
    let mut log = entries(1..=9);
    log[2].payload = membership(&[1]);
    log[5].payload = membership(&[1, 2]);
    append_durable(&mut store, log.clone()).await;

    // One membership entry only: nothing is known committed.
    let other: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let mut alone = open(&other).await;
    append_durable(&mut alone, log[..5].to_vec()).await;
    alone.raise_committed_to_membership().expect("raise");
    assert_eq!(alone.read_committed().await.unwrap(), None);

    store.raise_committed_to_membership().expect("raise");
    assert_eq!(store.read_committed().await.unwrap(), Some(log[2].log_id), "the older membership is committed");
    // Never lowered.
    store.save_committed(Some(log[7].log_id)).await.unwrap();
    store.raise_committed_to_membership().expect("raise");
    assert_eq!(store.read_committed().await.unwrap(), Some(log[7].log_id));
    store.shutdown().await;
    alone.shutdown().await;
}

/// Reads of recent entries come from the decoded copies `append` kept; they must always be the
/// entries the WAL holds, across truncation, purge and reopening.
#[tokio::test]
async fn recent_entries_read_back_as_the_wal_holds_them() {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let mut store = open(&disk).await;
    append_durable(&mut store, entries(1..=8)).await;
    assert_eq!(all_entries(&mut store).await, entries(1..=8));
    // A new leader overwrites 6..=8 with entries of another term.
    store.truncate_after(Some(entries(5..=5)[0].log_id)).await.unwrap();
    let overwritten: Vec<Entry> = (6..=9).map(|i| Entry::new_blank(log_id(7, 1, i))).collect();
    append_durable(&mut store, overwritten.clone()).await;
    let expected: Vec<Entry> = entries(1..=5).into_iter().chain(overwritten.clone()).collect();
    assert_eq!(all_entries(&mut store).await, expected);
    assert_eq!(store.try_get_log_entries(7..9).await.unwrap(), overwritten[1..3].to_vec());
    store.purge(log_id(7, 1, 6)).await.unwrap();
    assert_eq!(all_entries(&mut store).await, overwritten[1..].to_vec());
    store.shutdown().await;
    let mut store = open(&disk).await;
    assert_eq!(all_entries(&mut store).await, overwritten[1..].to_vec(), "decoded from the WAL");
    store.shutdown().await;
}

#[tokio::test]
async fn a_log_whose_leader_ids_go_back_is_refused_at_start_up() {
    // What a truncation that never reached the WAL leaves: entries 3-4 rewritten by a newer
    // leader, and the overwritten entry 5 of the old leader still after them.
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let mut store = open(&disk).await;
    append_durable(&mut store, (1..=5).map(|i| Entry::new_blank(log_id(1, 1, i))).collect()).await;
    store.shutdown().await;
    let mut wal = Wal::open(disk.clone(), "raft/wal", opts().wal).expect("wal");
    let rewritten = (3..=4).map(|i| Entry::new_blank(log_id(2, 2, i)));
    wal.append(rewritten.map(|e| (e.index(), Bytes::from(postcard::to_allocvec(&e).expect("encode")))))
        .expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let err = LogStore::open_with(disk, "raft", opts()).await.err().expect("must refuse");
    assert!(err.to_string().contains("out of order"), "{err}");
}

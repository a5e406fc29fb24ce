//! WAL tests, run on both disk twins where the behaviour is observable on both.

use super::*;
use crate::disk::{CrashMode, RealDisk, SimDisk};

fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Bytes)> {
    range.map(|i| (i, Bytes::from(format!("entry-{i}")))).collect()
}

fn small() -> WalOptions {
    WalOptions { segment_bytes: 256 }
}

/// Segments big enough for every test's records (the default 64 MiB would only be slow).
fn one_segment() -> WalOptions {
    WalOptions { segment_bytes: 64 * 1024 }
}

fn both(check: impl Fn(Arc<dyn Disk>)) {
    let dir = std::env::temp_dir().join(format!("raftis-wal-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&dir);
    check(Arc::new(RealDisk::new(&dir).expect("temp dir")));
    let _ = std::fs::remove_dir_all(&dir);
    check(Arc::new(SimDisk::new()));
}

/// Writes entries `range` into a log at "log" opened with `opts`, syncs and closes it: the
/// starting point of the reopen and recovery tests.
fn synced_log(disk: &Arc<dyn Disk>, opts: WalOptions, range: std::ops::RangeInclusive<u64>) {
    let mut wal = Wal::open(disk.clone(), "log", opts).unwrap();
    wal.append(entries(range)).unwrap();
    wal.sync().unwrap();
}

/// The first segment file of the log at "log".
const FIRST_SEGMENT: &str = "log/00000000000000000001.wal";

/// Entry `index` of [`entries`] encoded as the WAL writes it, to forge or locate records.
fn encoded(index: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, payload) in entries(index..=index) {
        Record::Entry { index, payload }.encode(&mut out);
    }
    out
}

/// Where the records of entries `range` ([`encoded`]) end in a segment holding just them.
fn end_of(range: std::ops::RangeInclusive<u64>) -> u64 {
    range.map(|i| encoded(i).len() as u64).sum()
}

/// Overwrites bytes of a file in place and syncs them.
fn overwrite(disk: &dyn Disk, path: &str, offset: u64, bytes: &[u8]) {
    let mut f = disk.open(path).unwrap();
    f.write_at(offset, bytes).unwrap();
    f.sync().unwrap();
}

/// Rewrites a file with one byte flipped.
fn flip_byte(disk: &dyn Disk, path: &str, offset: usize) {
    let byte = disk.read(path).unwrap()[offset] ^ 0xff;
    overwrite(disk, path, offset as u64, &[byte]);
}

#[test]
fn synced_entries_survive_reopen() {
    both(|disk| {
        synced_log(&disk, small(), 1..=50);
        let wal = Wal::open(disk, "log", small()).unwrap();
        assert_eq!(wal.entries().len(), 50);
        assert_eq!(wal.entries()[&42], Bytes::from("entry-42"));
        assert_eq!(wal.last_index(), Some(50));
    });
}

#[test]
fn truncate_and_purge_are_replayed() {
    both(|disk| {
        let mut wal = Wal::open(disk.clone(), "log", small()).unwrap();
        wal.append(entries(1..=30)).unwrap();
        wal.truncate_from(21).unwrap();
        wal.append(vec![(21, Bytes::from("replaced"))]).unwrap();
        wal.sync().unwrap();
        wal.purge_up_to(10).unwrap();
        drop(wal);
        let wal = Wal::open(disk, "log", small()).unwrap();
        assert_eq!(wal.entries().keys().copied().collect::<Vec<_>>(), (11..=21).collect::<Vec<_>>());
        assert_eq!(wal.entries()[&21], Bytes::from("replaced"));
        assert_eq!(wal.purged_up_to(), Some(10));
    });
}

#[test]
fn purge_deletes_old_segments() {
    both(|disk| {
        let mut wal = Wal::open(disk.clone(), "log", small()).unwrap();
        for i in 1..=100 {
            wal.append(entries(i..=i)).unwrap();
            wal.sync().unwrap();
        }
        let before = disk.list("log").unwrap().len();
        assert!(before > 5, "small segments roll over: {before}");
        wal.purge_up_to(90).unwrap();
        let after = disk.list("log").unwrap().len();
        assert!(after < before, "purge removed segments: {before} -> {after}");
        drop(wal);
        let wal = Wal::open(disk, "log", small()).unwrap();
        assert_eq!(wal.entries().keys().copied().collect::<Vec<_>>(), (91..=100).collect::<Vec<_>>());
    });
}

#[test]
fn segments_are_preallocated_and_written_in_place() {
    both(|disk| {
        synced_log(&disk, one_segment(), 1..=5);
        let data = disk.read(FIRST_SEGMENT).unwrap();
        assert_eq!(data.len() as u64, one_segment().segment_bytes, "allocated to full size");
        let end = end_of(1..=5) as usize;
        assert_eq!(&data[..end], &(1..=5).flat_map(encoded).collect::<Vec<u8>>()[..], "records from the start");
        assert!(is_zero(&data[end..]), "zeros after the records");
        // Reopened, the zeros are the end of the log and new records go right after it.
        let mut wal = Wal::open(disk.clone(), "log", one_segment()).unwrap();
        assert_eq!(wal.last_index(), Some(5));
        wal.append(entries(6..=6)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let data = disk.read(FIRST_SEGMENT).unwrap();
        assert_eq!(data.len() as u64, one_segment().segment_bytes, "no growth");
        assert_eq!(&data[end..end + encoded(6).len()], &encoded(6)[..]);
        assert_eq!(Wal::open(disk, "log", one_segment()).unwrap().last_index(), Some(6));
    });
}

#[test]
fn a_log_written_without_preallocation_is_read_and_then_allocated() {
    both(|disk| {
        disk.create_dir_all("log").unwrap();
        let mut f = disk.open(FIRST_SEGMENT).unwrap();
        f.append(&(1..=3).flat_map(encoded).collect::<Vec<u8>>()).unwrap();
        f.sync().unwrap();
        let mut wal = Wal::open(disk.clone(), "log", one_segment()).unwrap();
        assert_eq!(wal.last_index(), Some(3));
        wal.append(entries(4..=4)).unwrap();
        wal.sync().unwrap();
        assert_eq!(disk.read(FIRST_SEGMENT).unwrap().len() as u64, one_segment().segment_bytes);
        drop(wal);
        assert_eq!(Wal::open(disk, "log", one_segment()).unwrap().entries().len(), 4);
    });
}

/// Opens a log of entries 1-5 whose sixth record was written as `torn` (a copy of
/// `encoded(6)` missing some bytes) and checks it is cut off: 1-5 remain, the torn bytes are
/// gone from the file, and a new sixth entry is written and read back.
fn assert_torn_sixth_record_is_cut(disk: Arc<dyn Disk>, torn: &[u8]) {
    synced_log(&disk, one_segment(), 1..=5);
    let end = end_of(1..=5);
    overwrite(disk.as_ref(), FIRST_SEGMENT, end, torn);
    let mut wal = Wal::open(disk.clone(), "log", one_segment()).unwrap();
    assert_eq!(wal.last_index(), Some(5));
    let data = disk.read(FIRST_SEGMENT).unwrap();
    assert!(is_zero(&data[end as usize..]), "torn bytes cut off the file");
    wal.append(vec![(6, Bytes::from("again"))]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(disk, "log", one_segment()).unwrap();
    assert_eq!(wal.entries().get(&6), Some(&Bytes::from("again")));
}

#[test]
fn torn_tail_is_cut_off() {
    both(|disk| {
        let sixth = encoded(6);
        assert_torn_sixth_record_is_cut(disk, &sixth[..sixth.len() - 3]);
    });
}

#[test]
fn torn_write_with_an_unwritten_sector_inside_is_cut_off() {
    // A big sixth record whose second sector never reached the disk, while the sectors after
    // it did (the rest of the record and a seventh): a crash in the middle of one write, not
    // damage.
    both(|disk| {
        let payload = Bytes::from(vec![b'p'; 3 * SECTOR]);
        let mut sixth = Vec::new();
        Record::Entry { index: 6, payload }.encode(&mut sixth);
        let start = end_of(1..=5) as usize;
        let second_sector = (start / SECTOR + 1) * SECTOR - start;
        sixth[second_sector..second_sector + SECTOR].fill(0);
        sixth.extend(encoded(7));
        assert_torn_sixth_record_is_cut(disk, &sixth);
    });
}

#[test]
fn corrupt_middle_record_is_refused_with_file_and_offset() {
    both(|disk| {
        synced_log(&disk, one_segment(), 1..=5);
        let path = FIRST_SEGMENT;
        let first = encoded(1);
        flip_byte(disk.as_ref(), path, first.len() + record::HEADER + 3);
        let err = Wal::open(disk, "log", one_segment()).err().expect("must refuse");
        let msg = err.to_string();
        assert!(msg.contains(path) && msg.contains(&format!("offset {}", first.len())), "{msg}");
    });
}

#[test]
fn failed_sync_poisons_the_log() {
    let sim = SimDisk::new();
    let mut wal = Wal::open(Arc::new(sim.clone()), "log", one_segment()).unwrap();
    wal.append(entries(1..=3)).unwrap();
    sim.fail_next_syncs(1);
    assert!(matches!(wal.sync(), Err(WalError::Poisoned)));
    assert!(matches!(wal.append(entries(4..=4)), Err(WalError::Poisoned)), "never carries on");
    assert!(matches!(wal.sync(), Err(WalError::Poisoned)), "never retries");
}

/// A WAL with entries 1-20 synced and 21-40 written to its file but never synced.
fn written_but_unsynced() -> (SimDisk, Arc<dyn Disk>, Wal) {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    let mut wal = Wal::open(disk.clone(), "log", small()).unwrap();
    wal.append(entries(1..=20)).unwrap();
    wal.sync().unwrap();
    wal.append(entries(21..=40)).unwrap();
    write_unsynced(&mut wal);
    (sim, disk, wal)
}

/// Writes the buffered records to the file without syncing them (they reach the file only in
/// a sync job otherwise).
fn write_unsynced(wal: &mut Wal) {
    let pending = std::mem::take(&mut wal.pending);
    wal.active.as_mut().expect("no sync in flight").write_at(wal.active_size, &pending).unwrap();
    wal.active_size += pending.len() as u64;
}

#[test]
fn crash_keeps_exactly_the_synced_entries() {
    for seed in 0..16 {
        let (sim, disk, _wal) = written_but_unsynced();
        sim.crash(CrashMode::TearUnsynced { seed });
        let wal = Wal::open(disk, "log", small()).unwrap();
        let last = wal.last_index().unwrap();
        assert!((20..=40).contains(&last), "seed {seed}: synced entries kept, torn rest cut: {last}");
        assert_eq!(wal.entries().len() as u64, last, "no holes");
    }
}

#[test]
fn entries_recovered_after_a_process_crash_are_made_durable() {
    // Written, never synced (another segment among them): the process dies here, and the OS
    // still shows the bytes to the next incarnation.
    let (sim, disk, mut wal) = written_but_unsynced();
    wal.roll_segment().unwrap();
    wal.append(entries(41..=41)).unwrap();
    write_unsynced(&mut wal);
    drop(wal);
    let wal = Wal::open(disk.clone(), "log", small()).unwrap();
    assert_eq!(wal.last_index(), Some(41));
    drop(wal);
    // Raft took entries 21-41 as part of the log (and may have acknowledged them): a power
    // loss now must not take them back.
    sim.crash(CrashMode::LoseUnsynced);
    let wal = Wal::open(disk, "log", small()).unwrap();
    assert_eq!(wal.last_index(), Some(41));
    assert_eq!(wal.entries().len(), 41);
}

#[test]
fn appends_during_a_sync_job_are_credited_to_the_segment_they_land_in() {
    both(|disk| {
        let mut wal = Wal::open(disk.clone(), "log", small()).unwrap();
        wal.append(entries(1..=20)).unwrap();
        let mut job = wal.begin_sync().unwrap();
        assert!(matches!(wal.begin_sync(), Err(WalError::SyncInProgress)), "one job at a time");
        // Appended while the job is out: not in it, and written after the roll it causes.
        wal.append(entries(21..=22)).unwrap();
        assert_eq!(wal.entries().len(), 22, "readable while the sync runs");
        let result = job.run();
        wal.finish_sync(job, result).unwrap();
        // As the flusher does: the roll the job made due, before the next sync.
        let next = wal.roll_due().expect("the job filled the segment");
        wal.install_segment(next.create().unwrap());
        assert!(wal.roll_due().is_none());
        wal.sync().unwrap();
        for i in 23..=40 {
            wal.append(entries(i..=i)).unwrap();
            wal.sync().unwrap();
        }
        // Purging up to 20 may delete the first segment but never the one holding 21 and 22.
        wal.purge_up_to(20).unwrap();
        drop(wal);
        let wal = Wal::open(disk, "log", small()).unwrap();
        assert_eq!(wal.entries().keys().copied().collect::<Vec<_>>(), (21..=40).collect::<Vec<_>>());
    });
}

#[test]
fn a_failed_sync_job_poisons_the_log() {
    let sim = SimDisk::new();
    let mut wal = Wal::open(Arc::new(sim.clone()), "log", one_segment()).unwrap();
    wal.append(entries(1..=3)).unwrap();
    let mut job = wal.begin_sync().unwrap();
    sim.fail_next_syncs(1);
    let result = job.run();
    assert!(matches!(wal.finish_sync(job, result), Err(WalError::Poisoned)));
    assert!(matches!(wal.begin_sync(), Err(WalError::Poisoned)));
}

//! One conformance suite for both twins of the disk seam: every behaviour the log store and
//! snapshots rely on is checked against `RealDisk` and `SimDisk` alike. Crash behaviour only
//! the simulated twin can show is tested at the end.

use super::*;

fn temp_real() -> (RealDisk, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("raftis-disk-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&dir);
    (RealDisk::new(&dir).expect("temp dir"), dir)
}

/// Runs `check` against both twins.
fn both(check: impl Fn(&dyn Disk)) {
    let (real, dir) = temp_real();
    check(&real);
    let _ = std::fs::remove_dir_all(dir);
    check(&SimDisk::new());
}

#[test]
fn append_read_and_reopen() {
    both(|d| {
        d.create_dir_all("log").unwrap();
        let mut f = d.open("log/a").unwrap();
        f.append(b"hello ").unwrap();
        f.append(b"world").unwrap();
        f.sync().unwrap();
        assert_eq!(f.size().unwrap(), 11);
        let mut buf = [0u8; 5];
        assert_eq!(f.read_at(6, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"world");
        assert_eq!(f.read_at(20, &mut buf).unwrap(), 0, "read past the end returns nothing");
        drop(f);
        let f = d.open("log/a").unwrap();
        assert_eq!(f.size().unwrap(), 11, "reopening keeps contents");
        assert_eq!(d.read("log/a").unwrap(), b"hello world");
    });
}

#[test]
fn truncate_cuts_the_tail() {
    both(|d| {
        let mut f = d.open("t").unwrap();
        f.append(b"abcdef").unwrap();
        f.truncate(3).unwrap();
        f.append(b"X").unwrap();
        f.sync().unwrap();
        assert_eq!(d.read("t").unwrap(), b"abcX");
    });
}

#[test]
fn allocate_grows_with_zeros_and_write_at_writes_in_place() {
    both(|d| {
        let mut f = d.open("w").unwrap();
        f.append(b"head").unwrap();
        f.allocate(16).unwrap();
        assert_eq!(f.size().unwrap(), 16);
        f.allocate(8).unwrap();
        assert_eq!(f.size().unwrap(), 16, "allocate never shrinks");
        f.write_at(4, b"body").unwrap();
        assert_eq!(f.size().unwrap(), 16, "a write inside does not grow the file");
        f.write_at(14, b"tail").unwrap();
        assert_eq!(f.size().unwrap(), 18, "a write past the end grows it");
        f.append(b"!").unwrap();
        f.truncate(40).unwrap();
        f.sync().unwrap();
        assert_eq!(d.read("w").unwrap(), b"headbody\0\0\0\0\0\0tail!", "append goes to the end; truncate never grows");
    });
}

#[test]
fn list_rename_remove() {
    both(|d| {
        d.create_dir_all("dir/sub").unwrap();
        for name in ["b", "a", "c"] {
            d.open(&join("dir", name)).unwrap();
        }
        assert_eq!(d.list("dir").unwrap(), ["a", "b", "c"], "sorted, files only");
        d.rename("dir/a", "dir/z").unwrap();
        assert!(!d.exists("dir/a") && d.exists("dir/z"));
        d.remove("dir/b").unwrap();
        assert_eq!(d.list("dir").unwrap(), ["c", "z"]);
        assert!(d.remove("dir/nope").is_err(), "removing a missing file fails");
        assert!(d.read("dir/nope").is_err());
    });
}

#[test]
fn write_atomic_replaces_whole_file() {
    both(|d| {
        d.create_dir_all("snap").unwrap();
        write_atomic(d, "snap", "meta", b"one").unwrap();
        write_atomic(d, "snap", "meta", b"two!").unwrap();
        assert_eq!(d.read("snap/meta").unwrap(), b"two!");
        assert_eq!(d.list("snap").unwrap(), ["meta"], "no temp file left behind");
    });
}

#[test]
fn sim_crash_loses_unsynced_bytes_and_names() {
    let d = SimDisk::new();
    d.create_dir_all("log").unwrap();
    let mut f = d.open("log/a").unwrap();
    d.sync_dir("log").unwrap();
    f.append(b"synced").unwrap();
    f.sync().unwrap();
    f.append(b"-lost").unwrap();
    d.open("log/unsynced-name").unwrap();
    d.crash(CrashMode::LoseUnsynced);
    assert_eq!(d.read("log/a").unwrap(), b"synced");
    assert!(!d.exists("log/unsynced-name"), "a name never made durable by sync_dir is gone");
    assert!(f.append(b"x").is_err(), "handles from before the crash are dead");
}

#[test]
fn sim_rename_is_durable_only_after_dir_sync() {
    let d = SimDisk::new();
    d.create_dir_all("s").unwrap();
    write_atomic(&d, "s", "v", b"old").unwrap();
    let mut f = d.open("s/v.tmp").unwrap();
    f.append(b"new").unwrap();
    f.sync().unwrap();
    d.rename("s/v.tmp", "s/v").unwrap();
    d.crash(CrashMode::LoseUnsynced);
    assert_eq!(d.read("s/v").unwrap(), b"old", "rename without directory sync is undone");
}

#[test]
fn sim_torn_write_keeps_a_prefix() {
    let mut kept = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let d = SimDisk::new();
        let mut f = d.open("f").unwrap();
        d.sync_dir("").unwrap();
        f.append(b"base").unwrap();
        f.sync().unwrap();
        f.append(b"0123456789").unwrap();
        d.crash(CrashMode::TearUnsynced { seed });
        let data = d.read("f").unwrap();
        assert!(data.starts_with(b"base") && b"base0123456789".starts_with(&data[..]));
        kept.insert(data.len());
    }
    assert!(kept.len() > 3, "tears land at different points: {kept:?}");
}

#[test]
fn sim_failed_sync_reports_an_error_and_keeps_nothing_new() {
    let d = SimDisk::new();
    let mut f = d.open("f").unwrap();
    d.sync_dir("").unwrap();
    f.append(b"a").unwrap();
    d.fail_next_syncs(1);
    assert!(f.sync().is_err());
    assert_eq!(d.durable_contents("f").unwrap(), b"");
    f.sync().unwrap();
    assert_eq!(d.durable_contents("f").unwrap(), b"a");
}

#[test]
fn sim_torn_write_in_place_keeps_a_prefix_over_the_old_bytes() {
    let mut kept = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let d = SimDisk::new();
        let mut f = d.open("f").unwrap();
        d.sync_dir("").unwrap();
        f.allocate(12).unwrap();
        f.write_at(0, b"base").unwrap();
        f.sync().unwrap();
        f.write_at(4, b"NEWDATA").unwrap();
        d.crash(CrashMode::TearUnsynced { seed });
        let data = d.read("f").unwrap();
        assert_eq!(data.len(), 12, "seed {seed}: the synced allocation stays");
        let landed = data[4..].iter().take_while(|&&b| b != 0).count();
        assert_eq!(&data[4..4 + landed], &b"NEWDATA"[..landed], "seed {seed}: {data:?}");
        assert!(data[4 + landed..].iter().all(|&b| b == 0), "seed {seed}: only a prefix lands: {data:?}");
        kept.insert(landed);
    }
    assert!(kept.len() > 3, "tears land at different points: {kept:?}");
}

#[test]
fn sim_crash_undoes_an_unsynced_allocation() {
    let d = SimDisk::new();
    let mut f = d.open("f").unwrap();
    d.sync_dir("").unwrap();
    f.append(b"ab").unwrap();
    f.sync().unwrap();
    f.allocate(1 << 30).unwrap();
    d.crash(CrashMode::LoseUnsynced);
    assert_eq!(d.read("f").unwrap(), b"ab");
}

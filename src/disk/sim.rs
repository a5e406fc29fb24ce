//! `SimDisk`: the simulated twin of [`RealDisk`](super::RealDisk). It keeps, for every file, the
//! bytes a power cut would keep (synced) apart from the bytes written since (unsynced), and for
//! every directory the durable name table apart from the current one. [`SimDisk::crash`]
//! throws the unsynced state away (optionally tearing the last writes), and sync failures can
//! be injected. A crash point ([`SimDisk::crash_after`]) makes the disk die right after a
//! chosen operation (between a rename and its directory sync, say): every later change fails,
//! as on a machine that lost power there, until the harness crashes and restarts the node.
//! Clones share the same storage: the harness keeps one while a node uses another.

use super::image::{self, Dirty, Image};
use super::{Disk, DiskFile};
use rand::{Rng as _, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// The message of an injected sync failure ([`SimDisk::fail_next_syncs`]), so a test can tell
/// a node that stopped (or refused to start) on the injected failure from any other error.
pub const INJECTED_SYNC_FAILURE: &str = "injected fsync failure";

/// The operations a crash point can strike right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// A file append or write.
    Write,
    /// A file sync.
    FileSync,
    /// A rename (before the directory sync that makes it durable).
    Rename,
    /// A directory sync.
    DirSync,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 4] = [CrashPoint::Write, CrashPoint::FileSync, CrashPoint::Rename, CrashPoint::DirSync];
}

/// What a crash does to data written since the last sync.
#[derive(Debug, Clone, Copy)]
pub enum CrashMode {
    /// All of it is lost.
    LoseUnsynced,
    /// The writes since the last sync land in file order up to a random point of each file
    /// (a torn write): a prefix of what was appended survives.
    TearUnsynced { seed: u64 },
}

#[derive(Default)]
struct Content {
    /// What a power cut would leave.
    durable: Image,
    /// What reads see.
    current: Image,
    /// Bytes written since the last sync.
    dirty: Dirty,
}

impl Content {
    /// A sync: the durable image becomes the current one (copying only what changed).
    fn settle(&mut self) {
        self.durable.set_len(self.current.len());
        if let Some(range) = self.dirty.take() {
            self.durable.copy_from(&self.current, range);
        }
    }

    /// A power cut: what was written since the last sync is lost, or torn by `rng`.
    fn crash(&mut self, rng: Option<&mut rand_chacha::ChaCha8Rng>) {
        self.current = match (rng, self.dirty.take()) {
            (Some(rng), Some(range)) => {
                let keep = rng.gen_range(range.start..=range.end);
                image::torn(&self.durable, &self.current, range, keep)
            }
            _ => self.durable.clone(),
        };
        self.durable = self.current.clone();
    }
}

#[derive(Default)]
struct State {
    durable_names: BTreeMap<String, u64>,
    names: BTreeMap<String, u64>,
    dirs: BTreeSet<String>,
    contents: BTreeMap<u64, Content>,
    next_id: u64,
    /// Bumped by every crash: handles opened before it fail.
    generation: u64,
    /// Number of upcoming file syncs that fail.
    failing_syncs: u64,
    /// An armed crash point: its operation and how many of them still pass first.
    crash_point: Option<(CrashPoint, u32)>,
    /// The crash point struck: every change fails until the next crash.
    dead: bool,
}

impl State {
    /// Fails once the disk is dead; otherwise counts `op` against the armed crash point (the
    /// operation itself still happens: the disk dies right after it).
    fn change(&mut self, op: CrashPoint) -> io::Result<()> {
        if self.dead {
            return Err(io::Error::other(format!("{INJECTED_SYNC_FAILURE}: the disk died at a crash point")));
        }
        match &mut self.crash_point {
            Some((point, 0)) if *point == op => {
                self.crash_point = None;
                self.dead = true;
            }
            Some((point, left)) if *point == op => *left -= 1,
            _ => {}
        }
        Ok(())
    }
}

/// The suffix of temporary files, which nothing reads back (see [`SimDisk::still_unsynced`]).
const TMP_SUFFIX: &str = ".tmp";

/// What a power cut would undo on a disk at one moment ([`SimDisk::unsynced`]).
#[derive(Debug, Default)]
pub struct Unsynced {
    /// A name and the file it points to now (`None`: removed, the removal not yet durable).
    names: Vec<(String, Option<u64>)>,
    bytes: Vec<UnsyncedBytes>,
}

/// File bytes written since the file's last sync, as they read then.
#[derive(Debug)]
struct UnsyncedBytes {
    path: String,
    id: u64,
    at: usize,
    seen: Vec<u8>,
}

/// In-memory disk with crash semantics.
#[derive(Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

struct SimFile {
    disk: SimDisk,
    id: u64,
    generation: u64,
}

fn not_found(p: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{p}: no such file"))
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulates a power cut: every unsynced byte and unsynced directory change is gone (or
    /// torn, per `mode`), and every open handle becomes invalid.
    pub fn crash(&self, mode: CrashMode) {
        let mut st = self.lock();
        st.names = st.durable_names.clone();
        let mut rng = match mode {
            CrashMode::TearUnsynced { seed } => Some(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
            CrashMode::LoseUnsynced => None,
        };
        for c in st.contents.values_mut() {
            c.crash(rng.as_mut());
        }
        let live: BTreeSet<u64> = st.names.values().copied().collect();
        st.contents.retain(|id, _| live.contains(id));
        st.generation += 1;
        st.failing_syncs = 0;
        st.crash_point = None;
        st.dead = false;
    }

    /// Arms a crash point: the disk dies right after the `skip + 1`-th `point` operation from
    /// now (that operation happens; every later change fails) until [`crash`](Self::crash).
    pub fn crash_after(&self, point: CrashPoint, skip: u32) {
        self.lock().crash_point = Some((point, skip));
    }

    /// Whether an armed crash point has struck.
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Makes the next `n` file syncs fail with an I/O error.
    pub fn fail_next_syncs(&self, n: u64) {
        self.lock().failing_syncs = n;
    }

    /// The process died at the armed crash point but the machine did not: the page cache keeps
    /// every write made before it, the disk works again for the next incarnation, and handles
    /// of the dead process fail. (A power cut there is [`crash`](Self::crash) instead.)
    pub fn revive(&self) {
        let mut st = self.lock();
        st.generation += 1;
        st.failing_syncs = 0;
        st.crash_point = None;
        st.dead = false;
    }

    /// What a power cut would undo now: names whose creation, rename or removal is not durable,
    /// and file bytes written since their last sync. Taken as a new incarnation starts, it is
    /// what that incarnation may find only in the page cache.
    pub fn unsynced(&self) -> Unsynced {
        let st = self.lock();
        let mut names: Vec<(String, Option<u64>)> = st
            .names
            .iter()
            .filter(|(p, id)| st.durable_names.get(*p) != Some(id))
            .map(|(p, id)| (p.clone(), Some(*id)))
            .collect();
        names.extend(st.durable_names.keys().filter(|p| !st.names.contains_key(*p)).map(|p| (p.clone(), None)));
        let mut bytes = Vec::new();
        for (path, id) in &st.names {
            let Some(c) = st.contents.get(id) else { continue };
            let Some(range) = c.dirty.peek() else { continue };
            let mut seen = vec![0; range.len()];
            let n = c.current.read_at(range.start, &mut seen);
            seen.truncate(n);
            bytes.push(UnsyncedBytes { path: path.clone(), id: *id, at: range.start, seen });
        }
        Unsynced { names, bytes }
    }

    /// Which of `before` (taken by [`unsynced`](Self::unsynced)) is still exactly as it was
    /// and still not durable: state a node kept relying on without making it survive a power
    /// cut. What it rewrote, removed or renamed since is not reported.
    /// Temporary files (`*.tmp`, written and renamed into place by `write_atomic` and the
    /// snapshot writer) are nothing anyone relies on and are left out.
    pub fn still_unsynced(&self, before: &Unsynced) -> Vec<String> {
        let st = self.lock();
        let mut left = Vec::new();
        for (path, id) in before.names.iter().filter(|(p, _)| !p.ends_with(TMP_SUFFIX)) {
            let now = st.names.get(path).copied();
            if now == *id && st.durable_names.get(path).copied() != now {
                let what = if id.is_some() { "its name" } else { "its removal" };
                left.push(format!("{path}: {what} is not durable"));
            }
        }
        for b in before.bytes.iter().filter(|b| !b.path.ends_with(TMP_SUFFIX)) {
            let Some(c) = st.contents.get(&b.id).filter(|_| st.names.get(&b.path) == Some(&b.id)) else { continue };
            let mut now = vec![0; b.seen.len()];
            let n = c.current.read_at(b.at, &mut now);
            if n != b.seen.len() || now != b.seen {
                continue;
            }
            let mut durable = vec![0; b.seen.len()];
            let n = c.durable.read_at(b.at, &mut durable);
            if n != b.seen.len() || durable != b.seen {
                left.push(format!("{}: bytes {}..{} read back but not durable", b.path, b.at, b.at + b.seen.len()));
            }
        }
        left
    }

    /// Bytes of `path` that would survive a crash now (for tests).
    pub fn durable_contents(&self, path: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        let id = st.durable_names.get(path)?;
        st.contents.get(id).map(|c| c.durable.to_vec())
    }
}

impl Disk for SimDisk {
    fn open(&self, path: &str) -> io::Result<Box<dyn DiskFile>> {
        let mut st = self.lock();
        if !st.dirs.contains(parent(path)) && !parent(path).is_empty() {
            return Err(not_found(parent(path)));
        }
        let id = match st.names.get(path) {
            Some(&id) => id,
            None => {
                st.change(CrashPoint::Write)?;
                st.next_id += 1;
                let id = st.next_id;
                st.names.insert(path.to_string(), id);
                st.contents.insert(id, Content::default());
                id
            }
        };
        Ok(Box::new(SimFile { disk: self.clone(), id, generation: st.generation }))
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let st = self.lock();
        let id = st.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(st.contents.get(id).map(|c| c.current.to_vec()).unwrap_or_default())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let st = self.lock();
        if !dir.is_empty() && !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(st
            .names
            .keys()
            .filter(|p| parent(p) == dir)
            .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
            .collect())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut st = self.lock();
        if !st.names.contains_key(from) {
            return Err(not_found(from));
        }
        st.change(CrashPoint::Rename)?;
        let id = st.names.remove(from).ok_or_else(|| not_found(from))?;
        st.names.insert(to.to_string(), id);
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let mut st = self.lock();
        st.change(CrashPoint::Write)?;
        st.names.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        let mut st = self.lock();
        st.change(CrashPoint::Write)?;
        let mut acc = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            acc = super::join(&acc, part);
            st.dirs.insert(acc.clone());
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &str) -> io::Result<()> {
        let mut st = self.lock();
        // The crash point strikes after the sync: its names are durable, later ones are not.
        let dies = st.crash_point.is_some_and(|(p, left)| p == CrashPoint::DirSync && left == 0);
        if !dies {
            st.change(CrashPoint::DirSync)?;
        }
        let State { names, durable_names, .. } = &mut *st;
        durable_names.retain(|p, _| parent(p) != dir);
        durable_names.extend(names.iter().filter(|(p, _)| parent(p) == dir).map(|(p, id)| (p.clone(), *id)));
        if dies {
            st.change(CrashPoint::DirSync)?;
        }
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        let st = self.lock();
        st.names.contains_key(path) || st.dirs.contains(path)
    }
}

impl SimFile {
    fn with<R>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<R>) -> io::Result<R> {
        let mut st = self.disk.lock();
        if st.generation != self.generation {
            return Err(io::Error::other("file handle from before a crash"));
        }
        f(&mut st, self.id)
    }
}

fn content(st: &mut State, id: u64) -> io::Result<&mut Content> {
    st.contents.get_mut(&id).ok_or_else(|| io::Error::other("file was removed"))
}

impl DiskFile for SimFile {
    fn size(&self) -> io::Result<u64> {
        self.with(|st, id| Ok(content(st, id)?.current.len() as u64))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|st, id| Ok(content(st, id)?.current.read_at(usize_of(offset)?, buf)))
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.with(|st, id| {
            st.change(CrashPoint::Write)?;
            let c = content(st, id)?;
            let end = c.current.len();
            c.current.write_at(end, data);
            c.dirty.add(end..end + data.len());
            Ok(())
        })
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let offset = usize_of(offset)?;
        self.with(|st, id| {
            st.change(CrashPoint::Write)?;
            let c = content(st, id)?;
            c.current.write_at(offset, data);
            c.dirty.add(offset..offset + data.len());
            Ok(())
        })
    }

    fn allocate(&mut self, len: u64) -> io::Result<()> {
        let len = usize_of(len)?;
        self.with(|st, id| {
            st.change(CrashPoint::Write)?;
            let c = content(st, id)?;
            if len > c.current.len() {
                c.current.set_len(len);
            }
            Ok(())
        })
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let len = usize_of(len)?;
        self.with(|st, id| {
            st.change(CrashPoint::Write)?;
            let c = content(st, id)?;
            let old = c.current.len();
            if len < old {
                c.current.set_len(len);
                c.dirty.add(len..old);
            }
            Ok(())
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        self.with(|st, id| {
            if st.failing_syncs > 0 {
                st.failing_syncs -= 1;
                return Err(io::Error::other(INJECTED_SYNC_FAILURE));
            }
            // As for a directory sync, the crash point strikes after the sync is durable.
            let dies = st.crash_point.is_some_and(|(p, left)| p == CrashPoint::FileSync && left == 0);
            if !dies {
                st.change(CrashPoint::FileSync)?;
            }
            content(st, id)?.settle();
            if dies {
                st.change(CrashPoint::FileSync)?;
            }
            Ok(())
        })
    }
}

/// A file offset or length as an index into memory (a simulated file lives in memory).
fn usize_of(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_point_after_a_rename_loses_the_rename_and_fails_every_later_change() {
        let disk = SimDisk::new();
        disk.create_dir_all("d").expect("dir");
        let mut a = disk.open("d/a").expect("open");
        a.append(b"old").expect("append");
        a.sync().expect("sync");
        disk.sync_dir("d").expect("sync dir");
        disk.crash_after(CrashPoint::Rename, 0);
        let mut b = disk.open("d/b").expect("open");
        b.append(b"new").expect("append");
        b.sync().expect("sync");
        assert!(!disk.is_dead());
        disk.rename("d/b", "d/a").expect("the rename itself happens");
        assert!(disk.is_dead());
        assert!(disk.sync_dir("d").is_err(), "the directory sync after it fails");
        assert!(b.append(b"more").is_err());
        assert_eq!(disk.read("d/a").expect("read"), b"new", "reads still see the current state");
        disk.crash(CrashMode::LoseUnsynced);
        assert_eq!(disk.read("d/a").expect("read"), b"old", "the rename was never made durable");
        assert!(!disk.is_dead());
        let mut a = disk.open("d/a").expect("open");
        a.append(b"!").expect("a crashed disk works again");
    }

    #[test]
    fn a_crash_point_after_a_sync_keeps_that_sync_and_counts_the_skipped_ones() {
        let disk = SimDisk::new();
        let mut f = disk.open("f").expect("open");
        disk.sync_dir("").expect("sync dir");
        disk.crash_after(CrashPoint::FileSync, 1);
        f.append(b"1").expect("append");
        f.sync().expect("first sync passes");
        f.append(b"2").expect("append");
        f.sync().expect("the second sync happens, then the disk dies");
        assert!(disk.is_dead());
        assert!(f.append(b"3").is_err());
        assert!(f.sync().is_err());
        disk.crash(CrashMode::LoseUnsynced);
        assert_eq!(disk.durable_contents("f").expect("file"), b"12");
    }

    #[test]
    fn unsynced_state_left_by_a_kill_is_reported_until_synced_rewritten_or_renamed() {
        let disk = SimDisk::new();
        disk.create_dir_all("d").expect("dir");
        let mut log = disk.open("d/log").expect("open");
        log.append(b"durable").expect("append");
        log.sync().expect("sync");
        disk.sync_dir("d").expect("sync dir");
        log.append(b"+cached").expect("append");
        let mut vote = disk.open("d/vote.tmp").expect("open");
        vote.append(b"v").expect("append");
        vote.sync().expect("sync");
        disk.rename("d/vote.tmp", "d/vote").expect("rename");
        let mut tmp = disk.open("d/other.tmp").expect("open");
        tmp.append(b"scratch").expect("append");
        drop((log, vote, tmp));

        let before = disk.unsynced();
        let left = disk.still_unsynced(&before);
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].starts_with("d/vote: its name"), "{left:?}");
        assert!(left[1].starts_with("d/log: bytes 7..14"), "{left:?}");

        disk.open("d/log").expect("open").sync().expect("sync");
        assert_eq!(disk.still_unsynced(&before).len(), 1, "the synced bytes are no longer reported");
        disk.sync_dir("d").expect("sync dir");
        assert!(disk.still_unsynced(&before).is_empty());
    }

    #[test]
    fn a_revived_disk_keeps_its_page_cache_and_works_again() {
        let disk = SimDisk::new();
        let mut f = disk.open("f").expect("open");
        disk.sync_dir("").expect("sync dir");
        disk.crash_after(CrashPoint::Write, 0);
        f.append(b"cached").expect("the write itself happens");
        assert!(disk.is_dead());
        disk.revive();
        assert!(!disk.is_dead());
        assert!(f.append(b"x").is_err(), "handles of the dead process fail");
        let mut f = disk.open("f").expect("open");
        f.append(b"!").expect("the disk works again");
        assert_eq!(disk.read("f").expect("read"), b"cached!");
        disk.crash(CrashMode::LoseUnsynced);
        assert_eq!(disk.read("f").expect("read"), b"", "nothing was synced");
    }
}

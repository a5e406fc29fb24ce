//! `SimDisk`: the simulated twin of [`RealDisk`](super::RealDisk). It keeps, for every file, the
//! bytes a power cut would keep (synced) apart from the bytes written since (unsynced), and for
//! every directory the durable name table apart from the current one. [`SimDisk::crash`]
//! throws the unsynced state away (optionally tearing the last writes), and sync failures can
//! be injected. Clones share the same storage: the harness keeps one while a node uses another.

use super::{Disk, DiskFile};
use rand::{Rng as _, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// The message of an injected sync failure ([`SimDisk::fail_next_syncs`]), so a test can tell
/// a node that stopped (or refused to start) on the injected failure from any other error.
pub const INJECTED_SYNC_FAILURE: &str = "injected fsync failure";

/// What a crash does to data written since the last sync.
#[derive(Debug, Clone, Copy)]
pub enum CrashMode {
    /// All of it is lost.
    LoseUnsynced,
    /// A random prefix of each file's unsynced appends survives (a torn write).
    TearUnsynced { seed: u64 },
}

#[derive(Default)]
struct Content {
    durable: Vec<u8>,
    current: Vec<u8>,
    /// Only appends since the last sync: `current` extends `durable`.
    appended_only: bool,
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
            let torn_extra = match rng.as_mut() {
                Some(r) if c.appended_only && c.current.len() > c.durable.len() => {
                    r.gen_range(0..=c.current.len() - c.durable.len())
                }
                _ => 0,
            };
            let keep = c.durable.len() + torn_extra;
            c.current.truncate(keep);
            c.durable = c.current.clone();
            c.appended_only = true;
        }
        let live: BTreeSet<u64> = st.names.values().copied().collect();
        st.contents.retain(|id, _| live.contains(id));
        st.generation += 1;
        st.failing_syncs = 0;
    }

    /// Makes the next `n` file syncs fail with an I/O error.
    pub fn fail_next_syncs(&self, n: u64) {
        self.lock().failing_syncs = n;
    }

    /// Bytes of `path` that would survive a crash now (for tests).
    pub fn durable_contents(&self, path: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        let id = st.durable_names.get(path)?;
        st.contents.get(id).map(|c| c.durable.clone())
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
                st.next_id += 1;
                let id = st.next_id;
                st.names.insert(path.to_string(), id);
                st.contents.insert(id, Content { appended_only: true, ..Default::default() });
                id
            }
        };
        Ok(Box::new(SimFile { disk: self.clone(), id, generation: st.generation }))
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let st = self.lock();
        let id = st.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(st.contents.get(id).map(|c| c.current.clone()).unwrap_or_default())
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
        let id = st.names.remove(from).ok_or_else(|| not_found(from))?;
        st.names.insert(to.to_string(), id);
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.lock().names.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        let mut st = self.lock();
        let mut acc = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            acc = super::join(&acc, part);
            st.dirs.insert(acc.clone());
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &str) -> io::Result<()> {
        let mut st = self.lock();
        let State { names, durable_names, .. } = &mut *st;
        durable_names.retain(|p, _| parent(p) != dir);
        durable_names.extend(names.iter().filter(|(p, _)| parent(p) == dir).map(|(p, id)| (p.clone(), *id)));
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
        self.with(|st, id| {
            let data = &content(st, id)?.current;
            let start = (offset as usize).min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            Ok(n)
        })
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.with(|st, id| {
            content(st, id)?.current.extend_from_slice(data);
            Ok(())
        })
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.with(|st, id| {
            let c = content(st, id)?;
            c.current.truncate(len as usize);
            if c.current.len() < c.durable.len() {
                c.appended_only = false;
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
            let c = content(st, id)?;
            if c.appended_only {
                let tail = c.current[c.durable.len()..].to_vec();
                c.durable.extend_from_slice(&tail);
            } else {
                c.durable = c.current.clone();
            }
            c.appended_only = true;
            Ok(())
        })
    }
}

//! `WriteBatch`: the deterministic form of a write, as it will be stored in the Raft log.

use bytes::Bytes;

/// A key WATCHed by a client, with the version it had when WATCH ran. EXEC is refused at
/// apply time if any version changed, so the check holds across leader changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchedKey {
    pub db: u32,
    pub key: Bytes,
    pub version: u64,
}

/// One unit of replicated work: a single write command, or a whole MULTI/EXEC transaction.
/// Everything that could differ between replicas is fixed here by the accepting node: the
/// time (`now_ms`, against which relative TTLs resolve, as Redis propagates `SET EX` as
/// `PXAT`) and the seed of every random choice (`SPOP`'s victims).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WriteBatch {
    /// Database selected when the batch starts.
    pub db: u32,
    pub now_ms: u64,
    pub seed: u64,
    /// Commands to run, in order, each as its argument vector.
    pub cmds: Vec<Vec<Bytes>>,
    /// Present for MULTI/EXEC: the reply is then the EXEC array.
    pub transaction: Option<Vec<WatchedKey>>,
}

impl std::fmt::Display for WriteBatch {
    /// A short form for logs: the command names, not the (possibly large, binary) arguments.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> =
            self.cmds.iter().filter_map(|c| c.first()).map(|n| String::from_utf8_lossy(n).into_owned()).collect();
        let kind = if self.transaction.is_some() { "exec" } else { "write" };
        write!(f, "{kind}(db={}, t={}, [{}])", self.db, self.now_ms, names.join(" "))
    }
}

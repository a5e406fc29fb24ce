//! Which commands may run long: those are run off the runtime thread that also serves Raft, so
//! that one client's KEYS over a million keys, or a write that builds or frees a huge value
//! (SUNIONSTORE of big sets, DEL of a big key, FLUSHALL of a big database), cannot starve the
//! node's heartbeats (see `crate::rt::run_long`). The test is cheap and conservative: a command
//! Redis flags `fast` never walks its keys; a script or DEBUG always qualifies; any other
//! command qualifies when what it may walk (the database for a keyless command, the named
//! keys' elements otherwise) is large. A write also counts its arguments (MSET of a million
//! keys) and sums over the commands of its batch (MULTI).

use super::{for_each_key_index, lookup};
use crate::store::{Keyspace, WriteBatch};
use bytes::Bytes;

/// Elements a read may visit beyond which it leaves the runtime thread: a few hundred
/// microseconds of work, more than a thread hop costs, far below an election timeout.
pub const LONG_READ_ELEMENTS: usize = 4096;

/// Reads that may run for as long as they like whatever the data: scripts (their step budget
/// is in the millions), DEBUG (DIGEST walks everything; SLEEP sleeps).
const ALWAYS_LONG: &[&str] = &["debug", "eval_ro", "evalsha_ro", "fcall_ro"];

/// Whether the read `argv` on database `db` of `ks` may run long enough to be run off the
/// runtime thread.
pub fn may_run_long(ks: &Keyspace, db: usize, argv: &[Bytes]) -> bool {
    walk(ks, db, argv) > LONG_READ_ELEMENTS
}

/// Whether applying `batch` to `ks` may run long enough to be applied off the runtime thread:
/// what its commands may walk, their arguments included, summed over the batch. An estimate
/// from the state before the batch (a command may walk what an earlier one of the batch made).
pub fn write_may_run_long(ks: &Keyspace, batch: &WriteBatch) -> bool {
    let db = batch.db as usize;
    let mut total = 0usize;
    for argv in &batch.cmds {
        total = total.saturating_add(argv.len()).saturating_add(walk(ks, db, argv));
        if total > LONG_READ_ELEMENTS {
            return true;
        }
    }
    false
}

/// What `argv` may walk on database `db` (elements or keys); `usize::MAX` for a command that
/// may run long whatever the data.
fn walk(ks: &Keyspace, db: usize, argv: &[Bytes]) -> usize {
    let argv = super::acl::unwrap(argv);
    let Some(spec) = argv.first().and_then(|name| lookup(name)) else { return 0 };
    if spec.flags.contains(&"fast") {
        return 0;
    }
    if ALWAYS_LONG.contains(&spec.name) {
        return usize::MAX;
    }
    let Some(db) = ks.dbs().get(db) else { return 0 };
    if spec.keys == (0, 0, 0) {
        return match spec.name {
            // Frees every database.
            "flushall" => ks.dbs().iter().map(|d| d.len()).sum(),
            _ => db.len(),
        };
    }
    let (mut keys, mut elements) = (0usize, 0usize);
    for_each_key_index(spec, argv, |i| {
        keys += 1;
        // Time 0: an expired key still stored costs the same to look at.
        elements += argv.get(i).and_then(|k| db.get(k, 0)).map_or(0, |e| e.value.elements());
    });
    keys.max(elements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteBatch;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn keyspace_with(cmds: Vec<Vec<Bytes>>) -> Keyspace {
        let mut ks = Keyspace::new(16);
        super::super::apply(&mut ks, &WriteBatch { db: 0, now_ms: 1, seed: 1, cmds, transaction: None });
        ks
    }

    #[test]
    fn fast_and_small_reads_stay_big_ones_and_scripts_leave() {
        let big_set: Vec<Bytes> =
            argv("SADD big").into_iter().chain((0..5000).map(|i| Bytes::from(format!("m{i}")))).collect();
        let ks = keyspace_with(vec![argv("SET a 1"), argv("SADD small x y"), big_set]);
        assert!(!may_run_long(&ks, 0, &argv("GET a")));
        assert!(!may_run_long(&ks, 0, &argv("SMEMBERS small")));
        assert!(!may_run_long(&ks, 0, &argv("KEYS *")), "a small database");
        assert!(may_run_long(&ks, 0, &argv("SMEMBERS big")));
        assert!(may_run_long(&ks, 0, &argv("SUNION small big")));
        assert!(!may_run_long(&ks, 0, &argv("SCARD big")), "fast whatever the size");
        assert!(may_run_long(&ks, 0, &argv("DEBUG SLEEP 0")));
        assert!(may_run_long(&ks, 0, &argv("EVAL_RO return 1 0")));
        assert!(!may_run_long(&ks, 0, &argv("NOSUCHCOMMAND")));
    }

    fn batch(cmds: Vec<Vec<Bytes>>) -> WriteBatch {
        WriteBatch { db: 0, now_ms: 1, seed: 1, cmds, transaction: None }
    }

    #[test]
    fn writes_that_free_or_build_big_values_leave_small_ones_stay() {
        let big_set: Vec<Bytes> =
            argv("SADD big").into_iter().chain((0..5000).map(|i| Bytes::from(format!("m{i}")))).collect();
        let ks = keyspace_with(vec![argv("SET a 1"), argv("SADD small x y"), big_set.clone()]);
        let long = |cmds: &[&str]| write_may_run_long(&ks, &batch(cmds.iter().map(|c| argv(c)).collect()));
        assert!(!long(&["SET a 2"]));
        assert!(!long(&["SADD big another"]), "fast: O(1) whatever the set's size");
        assert!(!long(&["DEL small", "SUNIONSTORE d small small"]));
        assert!(long(&["DEL big"]), "frees 5000 members");
        assert!(long(&["SET big x"]), "overwriting frees the set");
        assert!(long(&["SUNIONSTORE d small big"]));
        assert!(long(&["SET a 2", "DEBUG SLEEP 0"]), "DEBUG in a transaction");
        // Many arguments, even to a fast command, and many commands in one batch.
        assert!(write_may_run_long(&ks, &batch(vec![big_set])));
        assert!(write_may_run_long(&ks, &batch((0..LONG_READ_ELEMENTS).map(|_| argv("SET a 2")).collect())));
    }

    #[test]
    fn flushall_counts_every_database() {
        let mset: Vec<Bytes> = argv("MSET")
            .into_iter()
            .chain((0..=LONG_READ_ELEMENTS).flat_map(|i| [Bytes::from(format!("k{i}")), Bytes::from("v")]))
            .collect();
        let ks = keyspace_with(vec![mset]);
        let flush = |line: &str, db: u32| {
            write_may_run_long(&ks, &WriteBatch { db, now_ms: 1, seed: 1, cmds: vec![argv(line)], transaction: None })
        };
        assert!(flush("FLUSHALL", 1), "database 0 is big");
        assert!(flush("FLUSHDB", 0));
        assert!(!flush("FLUSHDB", 1), "database 1 is empty");
    }

    #[test]
    fn a_keyless_read_over_a_big_database_leaves() {
        let mset: Vec<Bytes> = argv("MSET")
            .into_iter()
            .chain((0..=LONG_READ_ELEMENTS).flat_map(|i| [Bytes::from(format!("k{i}")), Bytes::from("v")]))
            .collect();
        let ks = keyspace_with(vec![mset]);
        assert!(may_run_long(&ks, 0, &argv("KEYS *")));
        assert!(may_run_long(&ks, 0, &argv("SCAN 0")));
        assert!(!may_run_long(&ks, 1, &argv("KEYS *")), "another, empty database");
    }
}

//! Which reads may run long: those are run off the runtime thread that also serves Raft, so
//! that one client's KEYS over a million keys cannot starve the node's heartbeats (see
//! `crate::rt::run_long`). The test is cheap and conservative: a command Redis flags `fast`
//! never qualifies; a script or DEBUG always does; any other read qualifies when what it may
//! walk (the database for a keyless command, the named keys' elements otherwise) is large.

use super::{for_each_key_index, lookup};
use crate::store::Keyspace;
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
    let Some(spec) = argv.first().and_then(|name| lookup(name)) else { return false };
    if spec.flags.contains(&"fast") {
        return false;
    }
    if ALWAYS_LONG.contains(&spec.name) {
        return true;
    }
    let Some(db) = ks.dbs().get(db) else { return false };
    if spec.keys == (0, 0, 0) {
        return db.len() > LONG_READ_ELEMENTS;
    }
    let (mut keys, mut elements) = (0usize, 0usize);
    for_each_key_index(spec, argv, |i| {
        keys += 1;
        // Time 0: an expired key still stored costs the same to look at.
        elements += argv.get(i).and_then(|k| db.get(k, 0)).map_or(0, |e| e.value.elements());
    });
    keys.max(elements) > LONG_READ_ELEMENTS
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

//! Property checked: **the write-ahead log's records form one log** (issue 21, "Recovery
//! windows": a bug in what the log store writes is invisible until a node replays it).
//!
//! openraft appends entries right after the log's last one (`RaftLogStorage::append`): to
//! replace a conflicting suffix it calls `truncate_after` first, and a purge only drops entries
//! from the front (or, installing a snapshot beyond the log, everything up to the snapshot).
//! So in the order the log store wrote its records, every `Entry` record must carry the index
//! right after the last live one, after applying each `TruncateFrom` and `PurgeUpTo` before it.
//! An entry that lands on an index still live (or leaves a gap) means a truncation or a record
//! never reached the WAL: a restart would replay the overwritten tail, or a log with a hole.
//! Replay overwrites by index, so the damage shows only if the node restarts while the stale
//! tail is longer than the new one, a window a sweep rarely hits; the records themselves keep
//! the evidence until their segment is deleted. The harness reads every node's WAL segments
//! after the run (the page-cache contents: what the node wrote, synced or not) and passes them
//! here. Decoding stops at the first record that is not whole in a segment (preallocated zeros
//! or a torn tail a later recovery cuts off); segments deleted after a purge simply start the
//! stream later, so the first entry seen may have any index.

use super::Violation;
use raftis::raft::wal::record::{Decoded, Record};

/// The property name in violations.
pub const PROPERTY: &str = "the WAL's records form one log";

/// `segments` are one WAL's segment files in sequence order; `name` says whose (for reports).
pub fn check(name: &str, segments: &[(String, Vec<u8>)]) -> Result<(), Violation> {
    let mut last: Option<u64> = None;
    for (file, data) in segments {
        let mut offset = 0;
        while let Decoded::Ok(record, len) = Record::decode(&data[offset..]) {
            last = follow(last, &record).map_err(|why| Violation {
                property: PROPERTY,
                detail: format!("{name}: {file} at byte {offset}: {why}"),
                ops: Vec::new(),
            })?;
            offset += len;
        }
    }
    Ok(())
}

/// The last live index after `record`, or why the record cannot follow a log ending at `last`.
fn follow(last: Option<u64>, record: &Record) -> Result<Option<u64>, String> {
    match *record {
        Record::Entry { index, .. } => match last {
            Some(l) if index != l + 1 => {
                let what = if index <= l { "overwrites a live entry without a truncation" } else { "leaves a gap" };
                Err(format!("entry {index} follows a log ending at {l}: it {what}"))
            }
            _ => Ok(Some(index)),
        },
        Record::TruncateFrom { index } => Ok(match last {
            Some(l) if l >= index => index.checked_sub(1),
            other => other,
        }),
        Record::PurgeUpTo { index } => Ok(Some(last.map_or(index, |l| l.max(index)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// One segment's bytes: the records, then preallocated zeros.
    fn segment(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            r.encode(&mut out);
        }
        out.extend_from_slice(&[0; 64]);
        out
    }

    fn entry(index: u64) -> Record {
        Record::Entry { index, payload: Bytes::from_static(b"x") }
    }

    fn run(segments: Vec<Vec<Record>>) -> Result<(), Violation> {
        let files: Vec<(String, Vec<u8>)> =
            segments.iter().enumerate().map(|(i, s)| (format!("{}.wal", i + 1), segment(s))).collect();
        check("node 1", &files)
    }

    #[test]
    fn a_log_with_truncations_and_purges_is_one_log() {
        let tail = vec![entry(4), Record::TruncateFrom { index: 4 }, entry(4), Record::PurgeUpTo { index: 9 }];
        run(vec![vec![entry(1), entry(2), entry(3), Record::TruncateFrom { index: 3 }, entry(3)], tail.clone()])
            .expect("truncations and a purge beyond the log");
        run(vec![vec![entry(7), entry(8)], vec![Record::PurgeUpTo { index: 8 }, entry(9), entry(10)]])
            .expect("a stream starting after deleted segments");
        run(vec![vec![entry(0), entry(1), Record::TruncateFrom { index: 0 }, entry(0)]]).expect("truncating all");
        run(vec![vec![entry(1), Record::PurgeUpTo { index: 5 }, entry(6)]]).expect("a snapshot installed");
    }

    #[test]
    fn an_entry_over_a_live_one_or_past_a_gap_is_a_violation() {
        let v = run(vec![vec![entry(1), entry(2), entry(3), entry(2)]]).expect_err("a lost truncation");
        assert_eq!(v.property, PROPERTY);
        assert!(v.detail.contains("entry 2 follows a log ending at 3") && v.detail.contains("without a truncation"));
        let v = run(vec![vec![entry(1)], vec![entry(3)]]).expect_err("a lost entry");
        assert!(v.detail.contains("2.wal") && v.detail.contains("gap"), "{v}");
        run(vec![vec![entry(1), Record::PurgeUpTo { index: 5 }, entry(5)]]).expect_err("an entry already purged");
    }
}

//! The most recently appended log entries, kept decoded ([`Recent`]). Almost every read of the
//! log is of entries appended moments before: the state machine applying what was just
//! committed, the leader sending followers what it just appended. Handing those out as clones
//! of the entries `append` was given spares decoding them again from the WAL's bytes (postcard
//! copies every argument of every command into a new buffer); older entries are still decoded.
//! Bounded in entries and in encoded bytes; the WAL stays the only source of truth for which
//! entries exist, and the store keeps this in step with it under the same lock.

use super::Entry;
use openraft::entry::RaftEntry;
use std::collections::VecDeque;

/// At most this many entries are kept...
const MAX_ENTRIES: usize = 1024;
/// ...and at most this many bytes of their encoded form (a rough measure of their memory).
const MAX_BYTES: usize = 8 << 20;

/// Consecutive entries, oldest first, each with its encoded size.
#[derive(Default)]
pub(super) struct Recent {
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl Recent {
    /// The encoded size of the entries kept (a rough measure of their memory).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps `entry` (encoded in `size` bytes) as the newest; the oldest beyond the bounds go
    /// to `evicted` (for the caller to drop after releasing its lock: freeing an entry's
    /// arguments is most of the cost). An entry that does not follow the newest one starts the
    /// run afresh.
    pub(super) fn push(&mut self, entry: Entry, size: usize, evicted: &mut Vec<Entry>) {
        if self.newest_index().is_some_and(|last| last.checked_add(1) != Some(entry.index())) {
            evicted.extend(self.entries.drain(..).map(|(e, _)| e));
            self.bytes = 0;
        }
        self.entries.push_back((entry, size));
        self.bytes += size;
        while self.entries.len() > MAX_ENTRIES || (self.bytes > MAX_BYTES && self.entries.len() > 1) {
            evicted.extend(self.pop_oldest());
        }
    }

    /// The entry at `index`, if kept.
    pub(super) fn get(&self, index: u64) -> Option<&Entry> {
        let oldest = self.entries.front()?.0.index();
        let offset = usize::try_from(index.checked_sub(oldest)?).ok()?;
        self.entries.get(offset).map(|(entry, _)| entry)
    }

    /// Forgets the entries at `index` and after (the log was truncated there).
    pub(super) fn truncate_from(&mut self, index: u64) {
        while self.newest_index().is_some_and(|last| last >= index) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Forgets the entries up to and including `index` (the log was purged there).
    pub(super) fn purge_up_to(&mut self, index: u64) {
        while self.entries.front().is_some_and(|(e, _)| e.index() <= index) {
            let _ = self.pop_oldest();
        }
    }

    fn newest_index(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.index())
    }

    fn pop_oldest(&mut self) -> Option<Entry> {
        let (entry, size) = self.entries.pop_front()?;
        self.bytes -= size;
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::log_store::LogId;
    use crate::raft::TypeConfig;
    use openraft::alias::LeaderIdOf;
    use openraft::vote::RaftLeaderIdExt;

    fn blank(index: u64) -> Entry {
        Entry::new_blank(LogId::new(LeaderIdOf::<TypeConfig>::new_committed(1, 1), index))
    }

    fn kept(recent: &Recent) -> Vec<u64> {
        recent.entries.iter().map(|(e, _)| e.index()).collect()
    }

    #[test]
    fn entries_are_found_by_index_and_only_when_kept() {
        let mut recent = Recent::default();
        for i in 5..8 {
            recent.push(blank(i), 10, &mut Vec::new());
        }
        assert_eq!(recent.get(6).map(|e| e.index()), Some(6));
        assert!(recent.get(4).is_none());
        assert!(recent.get(8).is_none());
        assert!(recent.get(u64::MAX).is_none());
    }

    #[test]
    fn the_oldest_go_beyond_the_entry_and_byte_bounds() {
        let mut recent = Recent::default();
        for i in 1..=(MAX_ENTRIES as u64 + 3) {
            recent.push(blank(i), 1, &mut Vec::new());
        }
        assert_eq!(kept(&recent).first(), Some(&4));
        assert_eq!(recent.entries.len(), MAX_ENTRIES);

        let mut recent = Recent::default();
        let mut evicted = Vec::new();
        recent.push(blank(1), MAX_BYTES / 2, &mut evicted);
        recent.push(blank(2), MAX_BYTES / 2, &mut evicted);
        assert!(evicted.is_empty());
        recent.push(blank(3), 1, &mut evicted);
        assert_eq!(kept(&recent), vec![2, 3]);
        assert_eq!(evicted.iter().map(|e| e.index()).collect::<Vec<_>>(), vec![1]);
        assert_eq!(recent.bytes, MAX_BYTES / 2 + 1);
        // One entry larger than the bound is still kept, alone.
        recent.push(blank(4), MAX_BYTES * 2, &mut Vec::new());
        assert_eq!(kept(&recent), vec![4]);
    }

    #[test]
    fn truncation_and_purge_forget_their_side() {
        let mut recent = Recent::default();
        for i in 1..=6 {
            recent.push(blank(i), 10, &mut Vec::new());
        }
        recent.truncate_from(5);
        assert_eq!(kept(&recent), vec![1, 2, 3, 4]);
        recent.purge_up_to(2);
        assert_eq!(kept(&recent), vec![3, 4]);
        assert_eq!(recent.bytes, 20);
        // Appending again after a truncation continues the run.
        recent.push(blank(5), 10, &mut Vec::new());
        assert_eq!(kept(&recent), vec![3, 4, 5]);
    }

    #[test]
    fn an_entry_that_does_not_follow_the_newest_starts_afresh() {
        let mut recent = Recent::default();
        recent.push(blank(1), 10, &mut Vec::new());
        recent.push(blank(2), 10, &mut Vec::new());
        let mut evicted = Vec::new();
        recent.push(blank(9), 10, &mut evicted);
        assert_eq!(kept(&recent), vec![9]);
        assert_eq!(evicted.len(), 2);
        assert_eq!(recent.bytes, 10);
        assert!(recent.get(1).is_none());
    }
}

//! A consumer group's read counter and lag (Redis 7.0's `streamEstimateDistanceFromFirstEverEntry`,
//! `streamRangeHasTombstones` and `streamReplyWithCGLag`): how many entries a group has read,
//! known exactly while no deleted entry lies ahead of it, estimated otherwise, or unknown.

use super::group::{Group, ENTRIES_READ_UNKNOWN};
use super::{StreamId, StreamValue};

impl StreamValue {
    /// Whether an entry deleted by XDEL may lie in `start..=end` (None: to the end).
    pub fn range_has_tombstones(&self, start: StreamId, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_id == StreamId::MIN || self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end.unwrap_or(StreamId::MAX)
    }

    /// The number of entries added up to and including `id`, when it can be known.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        }
        if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        if self.max_deleted_id == StreamId::MIN || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return added - self.length as i64;
            }
            if id == self.first_id {
                return added - self.length as i64 + 1;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// The group's lag (entries not yet delivered), `None` when it cannot be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != ENTRIES_READ_UNKNOWN && !self.range_has_tombstones(g.last_id, None) {
            return Some(added - g.entries_read);
        }
        let read = self.estimate_distance(g.last_id);
        (read != ENTRIES_READ_UNKNOWN).then_some(added - read)
    }

    /// Moves group `name`'s last delivered id forward to `id` as delivering it does, keeping
    /// its read counter (`streamReplyWithRange`).
    pub fn advance_group(&mut self, name: &[u8], id: StreamId) {
        let has_tombstones = self.range_has_tombstones(id, None);
        let estimate = self.estimate_distance(id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(name) else { return };
        if id <= g.last_id {
            return;
        }
        if g.entries_read != ENTRIES_READ_UNKNOWN && !has_tombstones {
            g.entries_read += 1;
        } else if added > 0 {
            g.entries_read = estimate;
        }
        g.last_id = id;
    }
}

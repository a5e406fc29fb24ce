//! Slot migration records: what MetaRaft's cluster map says about each migration of slot
//! ranges from one data group to another, and the pure changes of the map that move a
//! migration from step to step (each written through MetaRaft's log as a compare-and-set
//! `SetMap`, see [`super::mover`] for who writes them and what the groups do in between).
//!
//! A migration is `Copying` (the source is frozen for its slots, the target takes in their
//! keys), then `Handover` (the slot table names the target: the map change that moves the
//! slots, epoch bumped), then `Done` once the source has deleted the moved keys. A `Copying`
//! migration can be cancelled: `Cancelling` until the target has dropped what it took in and
//! the source is unfrozen, then `Cancelled`. Once handed over it can no longer be cancelled.

use super::map::ClusterMap;
use crate::cmd::cluster::slot::SLOTS;
use crate::raft::control::in_ranges;
use serde::{Deserialize, Serialize};

/// How many finished (done or cancelled) migrations the map keeps for `GETSLOTMIGRATIONS`.
pub const HISTORY: usize = 16;

/// One migration of slot ranges between data groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// Unique: the config epoch of the map that started it.
    pub id: u64,
    /// Inclusive, ordered, not overlapping.
    pub ranges: Vec<(u16, u16)>,
    pub source: u64,
    pub target: u64,
    pub state: MigrationState,
    /// Keys copied to the target (known from the hand-over on).
    pub keys: u64,
}

/// Where a migration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrationState {
    Copying,
    Handover,
    Done,
    Cancelling,
    Cancelled,
}

impl MigrationState {
    /// The word `CLUSTER GETSLOTMIGRATIONS` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Copying => "copying",
            MigrationState::Handover => "handover",
            MigrationState::Done => "done",
            MigrationState::Cancelling => "cancelling",
            MigrationState::Cancelled => "cancelled",
        }
    }

    /// Whether the migration still has steps to run.
    pub fn is_active(self) -> bool {
        !matches!(self, MigrationState::Done | MigrationState::Cancelled)
    }
}

impl Migration {
    /// Whether `slot` is one of the migration's slots.
    pub fn covers(&self, slot: u16) -> bool {
        in_ranges(&self.ranges, slot)
    }

    /// The ranges as `CLUSTER GETSLOTMIGRATIONS` shows them: `a-b c-d`.
    pub fn ranges_text(&self) -> String {
        let parts: Vec<String> = self.ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        parts.join(" ")
    }
}

impl ClusterMap {
    /// The running migration that covers `slot`.
    pub fn migrating(&self, slot: u16) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.state.is_active() && m.covers(slot))
    }

    /// Migration `id`.
    pub fn migration(&self, id: u64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.id == id)
    }

    /// The map with a new migration of `ranges` to data group `target`, or why not (the
    /// reply for the client): slots out of range or overlapping, slots of several groups,
    /// slots already in the target or already migrating, an unknown group.
    pub fn start_migration(&self, ranges: &[(u16, u16)], target: u64) -> Result<ClusterMap, String> {
        let mut ranges = ranges.to_vec();
        ranges.sort_unstable();
        if ranges.is_empty() || ranges.iter().any(|&(a, b)| a > b || b >= SLOTS) {
            return Err("ERR Invalid or out of range slot".into());
        }
        if ranges.windows(2).any(|w| w[1].0 <= w[0].1) {
            return Err("ERR overlapping slot ranges".into());
        }
        if !self.groups.contains_key(&target) {
            return Err(format!("ERR unknown data group {target}"));
        }
        let mut source = None;
        for &(a, b) in &ranges {
            for slot in a..=b {
                let g = self.group_of(slot).ok_or_else(|| format!("ERR slot {slot} is not served"))?;
                if source.is_some_and(|s| s != g) {
                    return Err(
                        "ERR the slots belong to more than one group: migrate each group's slots separately".into()
                    );
                }
                source = Some(g);
                if let Some(m) = self.migrating(slot) {
                    return Err(format!("ERR slot {slot} is already migrating (migration {})", m.id));
                }
                if self.open_slots.contains_key(&slot) {
                    return Err(format!("ERR slot {slot} is open (CLUSTER SETSLOT): finish it with NODE or STABLE"));
                }
            }
        }
        let source = source.unwrap_or(target);
        if source == target {
            return Err(format!("ERR the slots already belong to group {target}"));
        }
        let mut next = self.clone();
        next.epoch = self.epoch + 1;
        let m = Migration { id: next.epoch, ranges, source, target, state: MigrationState::Copying, keys: 0 };
        next.migrations.push(m);
        Ok(next)
    }

    /// The map where migration `id`, now in state `from`, is in state `to` (`None` if it is
    /// not in `from`). `Copying` -> `Handover` also gives the slots to the target and records
    /// `keys`. Finished migrations beyond [`HISTORY`] are forgotten, oldest first.
    pub fn advance_migration(
        &self,
        id: u64,
        from: MigrationState,
        to: MigrationState,
        keys: u64,
    ) -> Option<ClusterMap> {
        let mut next = self.clone();
        let m = next.migrations.iter_mut().find(|m| m.id == id && m.state == from)?;
        m.state = to;
        let m = m.clone();
        if to == MigrationState::Handover {
            next.migrations.iter_mut().filter(|x| x.id == id).for_each(|x| x.keys = keys);
            for &(a, b) in &m.ranges {
                next.assign(a, b, m.target);
            }
        }
        while next.migrations.iter().filter(|m| !m.state.is_active()).count() > HISTORY {
            let oldest = next.migrations.iter().position(|m| !m.state.is_active());
            oldest.map(|i| next.migrations.remove(i));
        }
        next.epoch = self.epoch + 1;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::NodeInfo;

    fn map() -> ClusterMap {
        ClusterMap::initial((1, NodeInfo::default()), 4, 3)
    }

    #[test]
    fn bad_migrations_are_refused_with_a_reason() {
        let m = map();
        let refused = |ranges: &[(u16, u16)], target: u64| m.start_migration(ranges, target).unwrap_err();
        assert!(refused(&[(5, 16384)], 2).contains("out of range"));
        assert!(refused(&[(9, 5)], 2).contains("out of range"));
        assert!(refused(&[], 2).contains("out of range"));
        assert!(refused(&[(0, 10), (10, 20)], 2).contains("overlapping"));
        assert!(refused(&[(0, 10)], 9).contains("unknown data group"));
        assert!(refused(&[(4000, 4200)], 3).contains("more than one group"));
        assert!(refused(&[(0, 10)], 1).contains("already belong"));
        let next = m.start_migration(&[(20, 30), (0, 10)], 2).expect("valid");
        assert_eq!(next.epoch, m.epoch + 1);
        assert_eq!(next.migrations[0].ranges, vec![(0, 10), (20, 30)]);
        assert_eq!(next.migrations[0].source, 1);
        assert!(next.start_migration(&[(10, 12)], 3).unwrap_err().contains("already migrating"));
    }

    #[test]
    fn a_migration_moves_its_slots_at_the_hand_over_only() {
        use MigrationState::*;
        let m = map().start_migration(&[(0, 99)], 2).expect("valid");
        let id = m.migrations[0].id;
        assert_eq!(m.group_of(50), Some(1), "copying: the source still owns the slots");
        assert!(m.advance_migration(id, Handover, Done, 0).is_none(), "only from the state it is in");
        let h = m.advance_migration(id, Copying, Handover, 42).expect("hand-over");
        assert_eq!((h.group_of(50), h.group_of(100), h.epoch), (Some(2), Some(1), m.epoch + 1));
        assert_eq!(h.migration(id).map(|m| m.keys), Some(42));
        let done = h.advance_migration(id, Handover, Done, 0).expect("done");
        assert!(done.migrating(50).is_none());
        assert!(done.advance_migration(id, Copying, Cancelling, 0).is_none(), "too late to cancel");
        // Finished migrations are kept up to HISTORY.
        let mut many = done;
        for i in 0..HISTORY as u16 + 3 {
            many = many.start_migration(&[(200 + i, 200 + i)], 3).expect("valid");
            let id = many.migrations.last().map(|m| m.id).unwrap_or(0);
            many = many.advance_migration(id, Copying, Cancelling, 0).expect("cancel");
            many = many.advance_migration(id, Cancelling, Cancelled, 0).expect("cancelled");
        }
        assert_eq!(many.migrations.len(), HISTORY);
    }
}

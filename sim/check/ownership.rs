//! Property checked: **slot ownership** (issue 16, sharded runs): no data group holds, or
//! could have acknowledged a write for, a slot it did not own under the committed cluster map.
//!
//! After healing and per-group convergence, the harness gives here, for every running node and
//! every data group, what that node's copy of the group says it owns (the slots its log
//! recorded, with their config epoch) and the keys it holds, next to the committed map's slot
//! table. Violations:
//! - a group's recorded slots differ from what the committed map gives it (the log never
//!   caught up with the map, or a stale epoch's slots survived);
//! - two groups own one slot;
//! - a key sits in a group that does not own its slot: a write was applied there for a slot
//!   the group did not own (the fence below the log failed, or routing sent it there and
//!   nothing stopped it). Acknowledged writes that went to the wrong group and are therefore
//!   missing from the right one are caught by the lost-writes and linearizability checks,
//!   which read every key back through routing.

use super::Violation;
use raftis::cmd::cluster::slot::key_slot;
use std::collections::BTreeMap;

/// The property name in violations.
pub const PROPERTY: &str = "slot ownership";

/// One node's copy of one data group.
#[derive(Debug, Clone)]
pub struct GroupCopy {
    pub node: u64,
    pub group: u64,
    /// The slots the group's log recorded (config epoch, inclusive ranges); None: none yet.
    pub owned: Option<(u64, Vec<(u16, u16)>)>,
    /// Every key of the copy.
    pub keys: Vec<Vec<u8>>,
    /// Slot migrations the copy is still frozen for or importing.
    pub open_migrations: Vec<u64>,
}

/// `map` is the committed slot table (each data group's inclusive ranges) at config epoch
/// `epoch`, taken once every slot migration has finished.
pub fn check(epoch: u64, map: &BTreeMap<u64, Vec<(u16, u16)>>, copies: &[GroupCopy]) -> Result<(), Violation> {
    let fail = |detail: String| Err(Violation { property: PROPERTY, detail, ops: Vec::new() });
    let mut owner_of: BTreeMap<u16, u64> = BTreeMap::new();
    for (group, ranges) in map {
        for &(a, b) in ranges {
            for slot in a..=b {
                if let Some(other) = owner_of.insert(slot, *group) {
                    return fail(format!("the map gives slot {slot} to groups {other} and {group}"));
                }
            }
        }
    }
    if copies.is_empty() {
        return fail("no group copies to check".into());
    }
    for c in copies {
        let want = map.get(&c.group).cloned().unwrap_or_default();
        let Some((owned_epoch, owned)) = &c.owned else {
            return fail(format!("node {}'s copy of group {} never recorded its slots", c.node, c.group));
        };
        if *owned_epoch > epoch {
            return fail(format!(
                "node {}'s copy of group {} owns its slots at epoch {owned_epoch}, after the map's {epoch}",
                c.node, c.group
            ));
        }
        if !c.open_migrations.is_empty() {
            return fail(format!(
                "node {}'s copy of group {} is still frozen for or importing migrations {:?}",
                c.node, c.group, c.open_migrations
            ));
        }
        let epoch = owned_epoch;
        if *owned != want {
            return fail(format!(
                "node {}'s copy of group {} owns {owned:?} (epoch {epoch}), the committed map gives it {want:?}",
                c.node, c.group
            ));
        }
        for key in &c.keys {
            let slot = key_slot(key);
            if owner_of.get(&slot) != Some(&c.group) {
                return fail(format!(
                    "node {}'s copy of group {} holds key {:?} of slot {slot}, owned by group {:?}",
                    c.node,
                    c.group,
                    String::from_utf8_lossy(key),
                    owner_of.get(&slot)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> BTreeMap<u64, Vec<(u16, u16)>> {
        BTreeMap::from([(1, vec![(0, 8191)]), (2, vec![(8192, 16383)])])
    }

    fn copy(group: u64, owned: Option<Vec<(u16, u16)>>, keys: &[&str]) -> GroupCopy {
        GroupCopy {
            node: 1,
            group,
            owned: owned.map(|o| (3, o)),
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            open_migrations: Vec::new(),
        }
    }

    #[test]
    fn keys_in_their_owning_groups_pass() {
        // "k2" hashes to slot 449 (group 1), "k0" to 8579 (group 2).
        let copies = [copy(1, Some(vec![(0, 8191)]), &["k2"]), copy(2, Some(vec![(8192, 16383)]), &["k0"])];
        assert!(check(3, &map(), &copies).is_ok());
    }

    #[test]
    fn a_key_in_a_group_that_does_not_own_its_slot_is_a_violation() {
        let copies = [copy(1, Some(vec![(0, 8191)]), &["k2", "k0"])];
        let v = check(3, &map(), &copies).unwrap_err();
        assert_eq!(v.property, PROPERTY);
        assert!(v.detail.contains("holds key \"k0\" of slot 8579, owned by group Some(2)"), "{v}");
    }

    #[test]
    fn recorded_slots_must_match_the_map_and_groups_must_not_overlap() {
        let stale = [copy(1, Some(vec![(0, 16383)]), &[])];
        assert!(check(3, &map(), &stale).unwrap_err().detail.contains("the committed map gives it"));
        assert!(check(3, &map(), &[copy(2, None, &[])]).unwrap_err().detail.contains("never recorded"));
        let overlapping = BTreeMap::from([(1, vec![(0, 10)]), (2, vec![(10, 16383)])]);
        assert!(check(3, &overlapping, &[]).unwrap_err().detail.contains("slot 10 to groups 1 and 2"));
        assert!(check(3, &map(), &[]).is_err(), "nothing checked is not a pass");
    }

    #[test]
    fn an_ownership_newer_than_the_map_or_a_migration_left_open_is_a_violation() {
        let copies = [copy(1, Some(vec![(0, 8191)]), &[])];
        assert!(check(2, &map(), &copies).unwrap_err().detail.contains("after the map's 2"));
        let mut frozen = copy(1, Some(vec![(0, 8191)]), &[]);
        frozen.open_migrations = vec![9];
        assert!(check(3, &map(), &[frozen])
            .unwrap_err()
            .detail
            .contains("still frozen for or importing migrations [9]"));
    }
}

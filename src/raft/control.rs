//! The replicated cluster-control state of a group's state machine (multi-raft), changed only
//! by [`Control`] entries of its own log:
//!
//! - on the MetaRaft group (0): the cluster map (nodes, data groups, slot table) with its
//!   config epoch, as bytes that `crate::cluster` encodes and decodes;
//! - on a data group: the slots it owns and the epoch of that ownership. A group opened with
//!   fencing on refuses, at apply, a write whose keys hash to a slot it does not own, so a
//!   stale leader or a wrongly routed write can never change a key the group does not own.
//!
//! Nothing here reads a clock or the node's configuration: every replica of the group holds
//! the same state after the same entries.

use super::Control;
use crate::cmd::cluster::slot::{key_slot, SLOTS};
use crate::protocol::Frame;
use crate::store::WriteBatch;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The slots a data group owns, under which config epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub epoch: u64,
    /// Inclusive ranges, as given by the control entry.
    pub ranges: Vec<(u16, u16)>,
}

impl Ownership {
    /// Whether `slot` is one of the owned slots.
    pub fn owns(&self, slot: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

/// The control state of one group's state machine (in its snapshots as a frame of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlState {
    /// Config epoch of [`map`](Self::map) (0: no map yet).
    pub map_epoch: u64,
    /// The encoded cluster map (MetaRaft only).
    pub map: Option<Bytes>,
    /// The slots this group owns (data groups; `None` until the first ownership entry).
    pub owned: Option<Ownership>,
}

impl ControlState {
    /// Whether there is nothing to keep (snapshots then carry no control frame).
    pub fn is_empty(&self) -> bool {
        *self == ControlState::default()
    }

    /// Applies a control entry and returns its reply.
    pub fn apply(&mut self, control: &Control) -> Frame {
        match control {
            Control::SetMap { expect, epoch, map } => {
                if *expect != self.map_epoch || *epoch <= self.map_epoch {
                    return Frame::error(format!(
                        "ERR cluster map changed: epoch is {}, the change expected {expect}",
                        self.map_epoch
                    ));
                }
                self.map_epoch = *epoch;
                self.map = Some(map.clone());
                Frame::ok()
            }
            Control::Own { epoch, ranges } => {
                if self.owned.as_ref().is_some_and(|o| o.epoch >= *epoch) {
                    return Frame::error("ERR stale slot ownership: the group already has a newer one");
                }
                if ranges.iter().any(|&(a, b)| a > b || b >= SLOTS) {
                    return Frame::error("ERR invalid slot range in an ownership entry");
                }
                self.owned = Some(Ownership { epoch: *epoch, ranges: ranges.clone() });
                Frame::ok()
            }
        }
    }

    /// The refusal of `batch` by a fenced group: `Some(error)` when one of its keys hashes to a
    /// slot the group does not own (a refused batch changes nothing), `None` when it may run.
    /// Keyless commands always run.
    pub fn refuse(&self, batch: &WriteBatch) -> Option<Frame> {
        for argv in &batch.cmds {
            let Some(spec) = argv.first().and_then(|name| crate::cmd::lookup(name)) else { continue };
            let mut refused = None;
            crate::cmd::for_each_key_index(spec, argv, |i| {
                if refused.is_some() {
                    return;
                }
                if let Some(key) = argv.get(i) {
                    let slot = key_slot(key);
                    if !self.owned.as_ref().is_some_and(|o| o.owns(slot)) {
                        refused = Some(slot);
                    }
                }
            });
            if let Some(slot) = refused {
                let epoch = self.owned.as_ref().map_or(0, |o| o.epoch);
                return Some(Frame::error(format!(
                    "CLUSTERDOWN Hash slot {slot} is not served by this Raft group (config epoch {epoch}); \
                     the write was not applied"
                )));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(expect: u64, epoch: u64) -> Control {
        Control::SetMap { expect, epoch, map: Bytes::from_static(b"m") }
    }

    fn batch(cmds: &[&[&str]]) -> WriteBatch {
        let cmds = cmds.iter().map(|c| c.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()).collect();
        WriteBatch { db: 0, now_ms: 1, seed: 1, cmds, transaction: None }
    }

    #[test]
    fn the_map_changes_only_from_the_expected_epoch() {
        let mut st = ControlState::default();
        assert!(st.is_empty());
        assert_eq!(st.apply(&set(0, 1)), Frame::ok());
        assert!(matches!(st.apply(&set(0, 2)), Frame::Error(_)), "a change made from an old epoch is refused");
        assert!(matches!(st.apply(&set(1, 1)), Frame::Error(_)), "the epoch must grow");
        assert_eq!(st.apply(&set(1, 2)), Frame::ok());
        assert_eq!(st.map_epoch, 2);
    }

    #[test]
    fn a_fenced_group_refuses_writes_to_slots_it_does_not_own() {
        let mut st = ControlState::default();
        let foo = key_slot(b"foo"); // 12182
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"]])).is_some(), "owns nothing before its first ownership");
        assert_eq!(st.apply(&Control::Own { epoch: 3, ranges: vec![(10000, 16383)] }), Frame::ok());
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"]])).is_none());
        assert!(st.refuse(&batch(&[&["SET", "bar", "1"]])).is_some(), "bar hashes to 5061");
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"], &["DEL", "foo", "bar"]])).is_some());
        assert!(st.refuse(&batch(&[&["FLUSHALL"]])).is_none(), "keyless commands run");
        assert!(matches!(st.apply(&Control::Own { epoch: 3, ranges: vec![] }), Frame::Error(_)), "stale");
        assert!(matches!(st.apply(&Control::Own { epoch: 4, ranges: vec![(5, 16384)] }), Frame::Error(_)));
        assert_eq!(st.apply(&Control::Own { epoch: 4, ranges: vec![(0, 100)] }), Frame::ok());
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"]])).is_some(), "moved away at epoch 4");
        assert!(foo > 100);
    }
}

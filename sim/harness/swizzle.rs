//! The swizzle-clogging fault, as in FoundationDB's simulation (`RandomClogging`'s
//! `swizzleClog`): a random subset of the nodes has its network clogged one node at a time in
//! a random order, with small gaps between steps, and after the hold time unclogged one node
//! at a time in a different random order. The cluster thus goes through a series of shifting
//! partial partitions (a node that can reach some nodes but not others, a majority that
//! forms, breaks and re-forms with other members) that one-shot partitions do not produce.
//!
//! Clogging a node here means clogging every link between it and the other nodes of the
//! cluster, both directions. Client hosts still reach it (as with `IsolateLeader`): a node
//! cut off from the others that still believes it leads keeps being asked for reads and
//! writes, which is where a stale read or an acknowledged-then-lost write would show.
//! (FoundationDB clogs the whole interface; here clients would then only see timeouts.)
//!
//! This file holds the plan and its progress only; the driver (`faults.rs`) performs each
//! step on the reference-counted links, so a swizzle overlapping other network faults heals
//! correctly. Every order and gap is drawn when the fault is injected, from the driver's
//! seeded RNG, so a seed replays exactly.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Range of the virtual-time gap between two steps of one phase, in ms. Small against the
/// hold time (hundreds of ms to seconds) and against Raft's election timeout, so that the
/// intermediate states (some nodes clogged, others not yet) last long enough to matter, yet
/// several of them fit into one election round.
const STEP_GAP_MS: (u64, u64) = (20, 250);

/// One step the driver performs on the links of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Clog every link between the node and the other nodes, both directions.
    Clog(u64),
    /// Undo that node's `Clog`.
    Unclog(u64),
}

/// One swizzle in progress.
#[derive(Debug)]
pub struct Swizzle {
    /// Numbers the swizzles of a run, for the timeline.
    pub id: u32,
    /// The nodes still to clog, each with the gap to wait after the previous step.
    clog: VecDeque<(u64, Duration)>,
    /// The unclog order, each with the gap after the previous step; used once released.
    unclog: VecDeque<(u64, Duration)>,
    /// Nodes clogged so far (and not yet unclogged): only these are ever unclogged, so an
    /// unclog can never take back a clog that another fault holds.
    clogged: Vec<u64>,
    /// The hold time is over: unclogging.
    releasing: bool,
    /// When the next step is due.
    next: Instant,
}

impl Swizzle {
    /// Draws a swizzle of a random non-empty subset of `ids`: its clog order, its unclog order
    /// (different from the clog order whenever the subset has two nodes or more) and the gaps.
    /// The first clog is due at `now`.
    pub fn plan(id: u32, ids: &[u64], rng: &mut ChaCha8Rng, now: Instant) -> Swizzle {
        let mut order = ids.to_vec();
        order.shuffle(rng);
        order.truncate(rng.gen_range(1..=order.len().max(1)));
        let mut release = order.clone();
        release.shuffle(rng);
        if release.len() > 1 && release == order {
            // An independent shuffle repeats the clog order now and then (one time in two for
            // two nodes); FoundationDB's point is that the orders differ, so rotate it.
            release.rotate_left(1);
        }
        let mut gaps = |nodes: Vec<u64>| -> VecDeque<(u64, Duration)> {
            nodes
                .into_iter()
                .enumerate()
                .map(|(i, n)| {
                    let gap = if i == 0 { 0 } else { rng.gen_range(STEP_GAP_MS.0..=STEP_GAP_MS.1) };
                    (n, Duration::from_millis(gap))
                })
                .collect()
        };
        let clog = gaps(order);
        let unclog = gaps(release);
        Swizzle { id, clog, unclog, clogged: Vec::new(), releasing: false, next: now }
    }

    /// How long the clog phase takes from the first step to the last (the hold time counts
    /// from its end, so that every node of the subset is clogged for a while together).
    pub fn clog_time(&self) -> Duration {
        self.clog.iter().map(|(_, gap)| *gap).sum()
    }

    /// When the next step is due; None while holding (all clogged, not yet released) or when
    /// done.
    pub fn next_at(&self) -> Option<Instant> {
        let pending = if self.releasing { &self.unclog } else { &self.clog };
        pending.front().map(|_| self.next)
    }

    /// Whether every clogged node has been unclogged after the release.
    pub fn done(&self) -> bool {
        self.releasing && self.unclog.is_empty()
    }

    /// The next step if it is due at `now` (the caller performs it on the links).
    pub fn step(&mut self, now: Instant) -> Option<Step> {
        if self.next_at()? > now {
            return None;
        }
        let pending = if self.releasing { &mut self.unclog } else { &mut self.clog };
        let (node, _) = pending.pop_front()?;
        if let Some((_, gap)) = pending.front() {
            self.next = now + *gap;
        }
        if self.releasing {
            self.clogged.retain(|&n| n != node);
            Some(Step::Unclog(node))
        } else {
            self.clogged.push(node);
            Some(Step::Clog(node))
        }
    }

    /// Ends the hold: the unclog phase starts at `now`. Nodes whose clog step never came (a
    /// release before the clog phase ended) are left out of it.
    pub fn release(&mut self, now: Instant) {
        self.releasing = true;
        self.clog.clear();
        let clogged = &self.clogged;
        self.unclog.retain(|(n, _)| clogged.contains(n));
        if let Some(first) = self.unclog.front_mut() {
            first.1 = Duration::ZERO;
        }
        self.next = now;
    }

    /// The nodes in clog order, then in unclog order (for the timeline).
    pub fn orders(&self) -> (Vec<u64>, Vec<u64>) {
        (self.clog.iter().map(|s| s.0).collect(), self.unclog.iter().map(|s| s.0).collect())
    }
}

#[cfg(test)]
mod tests;

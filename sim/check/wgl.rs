//! The Wing-Gong-Lowe linearizability search with memoization (Lowe, "Testing for
//! linearizability", 2017; the variant Porcupine implements), over any sequential model.
//! `linearizable.rs` feeds it one key's operations at a time.
//!
//! Operations whose outcome is unknown have no return event: they may be linearized anywhere
//! after their invocation, or never. The search succeeds once every operation with a known
//! outcome is linearized. The cache holds (linearized known ops, model state) with the set of
//! linearized unknown ops; a configuration is pruned when a cached one with the same known ops
//! and state linearized a subset of its unknown ops (that one can do everything it can, since
//! an unknown op never has to be linearized).

use std::collections::HashMap;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash;
    type Op;
    /// The state after `op` ran on `state`, or `None` if `op`'s recorded reply cannot be
    /// produced from `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One operation for the search: invocation time and, if the outcome is known, return time.
pub struct Event<O> {
    pub op: O,
    pub invoke: u64,
    /// `None`: unknown outcome, may take effect at any time after `invoke` or never.
    pub complete: Option<u64>,
}

/// How a search ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<S> {
    Linearizable,
    /// No order explains the history. `stuck` is the op (index into the events) that could not
    /// be linearized when the search got furthest, `prefix` the ops linearized before it (in
    /// order) and `state` the model state they left.
    NotLinearizable {
        stuck: usize,
        prefix: Vec<usize>,
        state: S,
    },
    /// The step budget ran out before an answer.
    Inconclusive {
        steps: u64,
    },
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn is_subset_of(&self, other: &BitSet) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }
}

/// The configurations seen: linearized known ops -> (model state, linearized unknown ops).
struct Cache<S> {
    /// Linearized known ops -> model state -> the sets of linearized unknown ops seen with
    /// them. Keyed by state too: a scan then compares only bit sets (comparing every cached
    /// state against the new one made long histories quadratic in state comparisons).
    seen: HashMap<BitSet, HashMap<S, Vec<BitSet>>>,
}

impl<S> Default for Cache<S> {
    fn default() -> Self {
        Cache { seen: HashMap::new() }
    }
}

impl<S: Eq + Hash> Cache<S> {
    /// Records the configuration unless one seen before dominates it (same known ops and
    /// state, a subset of its unknown ops); returns whether it is new.
    fn try_insert(&mut self, known: &BitSet, state: S, unknown: &BitSet) -> bool {
        let by_state = match self.seen.get_mut(known) {
            Some(by_state) => by_state,
            None => self.seen.entry(known.clone()).or_default(),
        };
        let unknowns = by_state.entry(state).or_default();
        if unknowns.iter().any(|u| u.is_subset_of(unknown)) {
            return false;
        }
        unknowns.push(unknown.clone());
        true
    }

    fn len(&self) -> usize {
        self.seen.values().flat_map(HashMap::values).map(Vec::len).sum()
    }
}

/// A node of an event list: a call or a return of event `op` at `time`.
#[derive(Clone, Copy)]
struct Node {
    op: usize,
    time: u64,
    is_call: bool,
    /// For a call: its return node, if the outcome is known.
    ret: Option<usize>,
    prev: usize,
    next: usize,
}

/// A doubly linked list of call and return events in time order; node 0 is the head sentinel
/// and `NIL` ends the list. Linearizing an op lifts its call and return out.
struct List {
    nodes: Vec<Node>,
}

const NIL: usize = usize::MAX;

impl List {
    /// The events `which` selects: calls, and returns of the known ones.
    fn new<O>(events: &[Event<O>], which: impl Fn(&Event<O>) -> bool) -> List {
        // (time, calls before returns at equal times: touching intervals count as concurrent)
        let mut order: Vec<(u64, bool, usize)> = Vec::new();
        for (i, e) in events.iter().enumerate().filter(|(_, e)| which(e)) {
            order.push((e.invoke, false, i));
            if let Some(c) = e.complete {
                order.push((c, true, i));
            }
        }
        order.sort_unstable();
        let head = Node { op: NIL, time: 0, is_call: false, ret: None, prev: NIL, next: NIL };
        let mut nodes = vec![head];
        let mut call_node = vec![NIL; events.len()];
        for (k, &(time, is_return, i)) in order.iter().enumerate() {
            let idx = k + 1;
            let next = if k + 1 < order.len() { idx + 1 } else { NIL };
            nodes.push(Node { op: i, time, is_call: !is_return, ret: None, prev: idx - 1, next });
            if is_return {
                nodes[call_node[i]].ret = Some(idx);
            } else {
                call_node[i] = idx;
            }
        }
        if nodes.len() > 1 {
            nodes[0].next = 1;
        }
        List { nodes }
    }

    fn first(&self) -> usize {
        self.nodes[0].next
    }

    /// The first return node still in the list.
    fn first_return(&self) -> Option<usize> {
        let mut i = self.first();
        while i != NIL && self.nodes[i].is_call {
            i = self.nodes[i].next;
        }
        (i != NIL).then_some(i)
    }

    fn remove(&mut self, i: usize) {
        let Node { prev, next, .. } = self.nodes[i];
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    fn reinsert(&mut self, i: usize) {
        let Node { prev, next, .. } = self.nodes[i];
        self.nodes[prev].next = i;
        if next != NIL {
            self.nodes[next].prev = i;
        }
    }

    fn lift(&mut self, call: usize) {
        self.remove(call);
        if let Some(r) = self.nodes[call].ret {
            self.remove(r);
        }
    }

    /// Undoes the last `lift` (lifts are undone in reverse order, so the neighbours recorded
    /// in the lifted nodes are current again).
    fn unlift(&mut self, call: usize) {
        if let Some(r) = self.nodes[call].ret {
            self.reinsert(r);
        }
        self.reinsert(call);
    }
}

/// Index of the known ops' list and the unknown ops' list in `Search::lists`.
const KNOWN: usize = 0;
const UNKNOWN: usize = 1;

/// Searches for a linearization of `events` starting from `init`, giving up after `budget`
/// steps (one step = one attempt to linearize or undo an op).
///
/// Known ops are tried before unknown ones (two lists): the search first explores orders that
/// leave unknown ops out, so configurations that did apply them are mostly pruned as
/// dominated. An unknown op may be linearized once it was invoked, i.e. when its invocation is
/// no later than the first pending return; of equal pending unknown ops only the first
/// invoked is tried.
pub fn search<M: Model<Op: PartialEq>>(
    model: &M,
    init: M::State,
    events: &[Event<M::Op>],
    budget: u64,
) -> Outcome<M::State> {
    let n = events.len();
    let total = events.iter().filter(|e| e.complete.is_some()).count();
    let mut s = Search {
        model,
        events,
        lists: [List::new(events, |e| e.complete.is_some()), List::new(events, |e| e.complete.is_none())],
        done: [BitSet::new(n), BitSet::new(n)],
        cache: Cache::default(),
        stack: Vec::new(),
        state: init,
        remaining: total,
        total,
        furthest: None,
    };
    // (list, node) to try next; `limit`: the first pending return's time, for unknown ops.
    let (mut cursor, mut limit) = ((KNOWN, s.lists[KNOWN].first()), 0);
    let mut steps = 0u64;
    while s.remaining > 0 {
        steps += 1;
        if steps > budget {
            return Outcome::Inconclusive { steps: budget };
        }
        let (which, entry) = cursor;
        let node = (entry != NIL).then(|| s.lists[which].nodes[entry]);
        match node {
            Some(node) if which == KNOWN && node.is_call => {
                cursor = if s.try_op(cursor) { (KNOWN, s.lists[KNOWN].first()) } else { (KNOWN, node.next) };
            }
            // A pending return: only unknown ops may still go before it.
            _ if which == KNOWN => {
                limit = s.first_return_time();
                cursor = (UNKNOWN, s.lists[UNKNOWN].first());
            }
            Some(node) if node.time <= limit => {
                let taken = !has_twin_before(&s.lists[UNKNOWN], entry, events) && s.try_op(cursor);
                cursor = if taken { (KNOWN, s.lists[KNOWN].first()) } else { (UNKNOWN, node.next) };
            }
            // Nothing more to try here: undo the last op and try what follows it.
            _ => {
                s.note_progress();
                let Some(prev) = s.undo() else {
                    let (_, stuck, prefix, state) = s.furthest.expect("noted above");
                    return Outcome::NotLinearizable { stuck, prefix, state };
                };
                cursor = (prev.0, s.lists[prev.0].nodes[prev.1].next);
                limit = s.first_return_time();
            }
        }
    }
    Outcome::Linearizable
}

/// The search's state: the lists with the linearized ops lifted out, and the path to here.
struct Search<'a, M: Model> {
    model: &'a M,
    events: &'a [Event<M::Op>],
    lists: [List; 2],
    /// Linearized ops, per list.
    done: [BitSet; 2],
    cache: Cache<M::State>,
    /// The linearized ops in order ((list, call node)), each with the state before it.
    stack: Vec<((usize, usize), M::State)>,
    state: M::State,
    /// Known ops not linearized yet, of `total`.
    remaining: usize,
    total: usize,
    /// The deepest point reached: (known ops linearized, op stuck, ops linearized, state).
    furthest: Option<(usize, usize, Vec<usize>, M::State)>,
}

impl<M: Model> Search<'_, M> {
    /// Linearizes the op at `at` next if the model allows it and the configuration is new.
    fn try_op(&mut self, at: (usize, usize)) -> bool {
        let (which, entry) = at;
        let op = self.lists[which].nodes[entry].op;
        let Some(next_state) = self.model.step(&self.state, &self.events[op].op) else { return false };
        // Mark the op in place: no allocation when the cache prunes the configuration.
        self.done[which].set(op);
        if !self.cache.try_insert(&self.done[KNOWN], next_state.clone(), &self.done[UNKNOWN]) {
            self.done[which].clear(op);
            return false;
        }
        self.stack.push((at, std::mem::replace(&mut self.state, next_state)));
        self.lists[which].lift(entry);
        self.remaining -= usize::from(which == KNOWN);
        true
    }

    /// Takes back the last linearized op; returns where it was.
    fn undo(&mut self) -> Option<(usize, usize)> {
        let ((which, call), prev_state) = self.stack.pop()?;
        self.state = prev_state;
        self.done[which].clear(self.lists[which].nodes[call].op);
        self.remaining += usize::from(which == KNOWN);
        self.lists[which].unlift(call);
        Some((which, call))
    }

    fn first_return_time(&self) -> u64 {
        self.lists[KNOWN].first_return().map_or(u64::MAX, |r| self.lists[KNOWN].nodes[r].time)
    }

    /// Remembers this point for the report if it linearized more known ops than any before.
    fn note_progress(&mut self) {
        let done = self.total - self.remaining;
        if self.furthest.as_ref().is_some_and(|f| f.0 >= done) {
            return;
        }
        let prefix = self.stack.iter().map(|((which, call), _)| self.lists[*which].nodes[*call].op).collect();
        let stuck = self.lists[KNOWN].first_return().map_or(NIL, |r| self.lists[KNOWN].nodes[r].op);
        self.furthest = Some((done, stuck, prefix, self.state.clone()));
    }
}

/// Whether an unknown op equal to the one at `entry` comes earlier in the unknown list (still
/// pending). Equal unknown ops that were both invoked are interchangeable, so only the first
/// is tried: k pending INCRs then give k+1 configurations instead of 2^k.
fn has_twin_before<O: PartialEq>(list: &List, entry: usize, events: &[Event<O>]) -> bool {
    let op = &events[list.nodes[entry].op].op;
    let mut i = list.first();
    while i != entry && i != NIL {
        if events[list.nodes[i].op].op == *op {
            return true;
        }
        i = list.nodes[i].next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register of small integers: (write v) or (read v).
    struct Reg;
    #[derive(PartialEq, Debug)]
    enum RegOp {
        W(u8),
        R(u8),
    }
    impl Model for Reg {
        type State = u8;
        type Op = RegOp;
        fn step(&self, s: &u8, op: &RegOp) -> Option<u8> {
            match op {
                RegOp::W(v) => Some(*v),
                RegOp::R(v) => (v == s).then_some(*s),
            }
        }
    }

    fn ev(op: RegOp, invoke: u64, complete: Option<u64>) -> Event<RegOp> {
        Event { op, invoke, complete }
    }

    #[test]
    fn wgl_orders_concurrent_ops_and_rejects_stale_reads() {
        // w1 and r1 overlap: r1 may see w1.
        let h = [ev(RegOp::W(1), 0, Some(10)), ev(RegOp::R(1), 5, Some(6))];
        assert_eq!(search(&Reg, 0, &h, 1000), Outcome::Linearizable);
        // r0 strictly after w1 completed: stale.
        let h = [ev(RegOp::W(1), 0, Some(10)), ev(RegOp::R(0), 11, Some(12))];
        let out = search(&Reg, 0, &h, 1000);
        assert!(matches!(out, Outcome::NotLinearizable { stuck: 1, .. }), "{out:?}");
    }

    #[test]
    fn wgl_unknown_ops_may_or_may_not_happen() {
        // An unknown write seen by a later read, and one never seen.
        let h = [ev(RegOp::W(1), 0, None), ev(RegOp::R(1), 20, Some(21))];
        assert_eq!(search(&Reg, 0, &h, 1000), Outcome::Linearizable);
        let h = [ev(RegOp::W(1), 0, None), ev(RegOp::R(0), 20, Some(21))];
        assert_eq!(search(&Reg, 0, &h, 1000), Outcome::Linearizable);
        // But it cannot take effect before it was invoked.
        let h = [ev(RegOp::R(1), 0, Some(1)), ev(RegOp::W(1), 5, None)];
        assert!(matches!(search(&Reg, 0, &h, 1000), Outcome::NotLinearizable { .. }));
        // Nor take effect twice: 1 then 2 then 1 again needs two writes of 1.
        let h = [
            ev(RegOp::W(1), 0, None),
            ev(RegOp::R(1), 10, Some(11)),
            ev(RegOp::W(2), 12, Some(13)),
            ev(RegOp::R(1), 14, Some(15)),
        ];
        assert!(matches!(search(&Reg, 0, &h, 1000), Outcome::NotLinearizable { stuck: 3, .. }));
    }

    /// Every order by brute force: the next op may be any remaining one that no remaining known
    /// op precedes in real time; unknown ops may be left out.
    fn brute(h: &[Event<RegOp>], placed: &mut Vec<bool>, state: u8) -> bool {
        if h.iter().zip(placed.iter()).all(|(e, p)| *p || e.complete.is_none()) {
            return true;
        }
        for i in 0..h.len() {
            let blocked = (0..h.len()).any(|j| !placed[j] && h[j].complete.is_some_and(|c| c < h[i].invoke));
            if placed[i] || blocked {
                continue;
            }
            if let Some(next) = Reg.step(&state, &h[i].op) {
                placed[i] = true;
                let ok = brute(h, placed, next);
                placed[i] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn wgl_agrees_with_brute_force_on_random_small_histories() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..5000 {
            let n = rng.gen_range(1..=8);
            let h: Vec<Event<RegOp>> = (0..n)
                .map(|_| {
                    let invoke = rng.gen_range(0..20);
                    let complete = rng.gen_bool(0.7).then(|| invoke + rng.gen_range(0..8));
                    let v = rng.gen_range(0..3);
                    let op = if rng.gen_bool(0.5) { RegOp::W(v) } else { RegOp::R(v) };
                    ev(op, invoke, complete)
                })
                .collect();
            let expected = brute(&h, &mut vec![false; n], 0);
            let got = search(&Reg, 0, &h, 1_000_000);
            let desc: Vec<String> = h.iter().map(|e| format!("{:?} {} {:?}", e.op, e.invoke, e.complete)).collect();
            assert_eq!(got == Outcome::Linearizable, expected, "{desc:?}");
            if expected {
                yes += 1
            } else {
                no += 1
            }
        }
        // Both answers occur often enough for the comparison to mean something.
        assert!(yes > 300 && no > 300, "{yes} linearizable, {no} not");
    }

    #[test]
    fn wgl_reports_inconclusive_when_the_budget_runs_out() {
        let h = [ev(RegOp::W(1), 0, Some(10)), ev(RegOp::R(0), 11, Some(12))];
        assert_eq!(search(&Reg, 0, &h, 1), Outcome::Inconclusive { steps: 1 });
    }
}

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
    seen: HashMap<BitSet, Vec<(S, BitSet)>>,
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
        let configs = match self.seen.get_mut(known) {
            Some(configs) => configs,
            None => self.seen.entry(known.clone()).or_default(),
        };
        if configs.iter().any(|(s, u)| *s == state && u.is_subset_of(unknown)) {
            return false;
        }
        configs.push((state, unknown.clone()));
        true
    }

    fn len(&self) -> usize {
        self.seen.values().map(Vec::len).sum()
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

    /// The time of the first return still in the list (`u64::MAX` if none).
    fn first_return_time(&self) -> u64 {
        let mut i = self.first();
        while i != NIL && self.nodes[i].is_call {
            i = self.nodes[i].next;
        }
        if i == NIL {
            u64::MAX
        } else {
            self.nodes[i].time
        }
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

/// Where the search looks next: a node of the known ops' list or of the unknown ops' list.
#[derive(Clone, Copy)]
enum Cursor {
    Known(usize),
    Unknown(usize),
}

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
    let mut lists = [List::new(events, |e| e.complete.is_some()), List::new(events, |e| e.complete.is_none())];
    let total = events.iter().filter(|e| e.complete.is_some()).count();
    let mut remaining = total;
    // Linearized ops: [known, unknown].
    let mut done = [BitSet::new(n), BitSet::new(n)];
    let mut cache = Cache::default();
    let mut stack: Vec<(Cursor, M::State)> = Vec::new();
    let mut state = init;
    let mut furthest: Option<(usize, usize, Vec<usize>, M::State)> = None;
    let mut cursor = Cursor::Known(lists[0].first());
    let mut limit = 0;
    let mut steps = 0u64;
    while remaining > 0 {
        steps += 1;
        if steps > budget {
            return Outcome::Inconclusive { steps: budget };
        }
        let (which, entry) = match cursor {
            Cursor::Known(e) => (0, e),
            Cursor::Unknown(e) => (1, e),
        };
        let node = (entry != NIL).then(|| lists[which].nodes[entry]);
        let eligible = match node {
            Some(node) if which == 0 => node.is_call,
            Some(node) => node.time <= limit,
            None => false,
        };
        if let (Some(node), true, 1) = (node, eligible, which) {
            if has_twin_before(&lists[1], entry, events) {
                cursor = Cursor::Unknown(node.next);
                continue;
            }
        }
        if let (Some(node), true) = (node, eligible) {
            if let Some(next_state) = model.step(&state, &events[node.op].op) {
                // Tentatively mark the op (no allocation when the cache prunes it).
                done[which].set(node.op);
                if cache.try_insert(&done[0], next_state.clone(), &done[1]) {
                    stack.push((cursor, std::mem::replace(&mut state, next_state)));
                    lists[which].lift(entry);
                    remaining -= usize::from(which == 0);
                    cursor = Cursor::Known(lists[0].first());
                    continue;
                }
                done[which].clear(node.op);
            }
            cursor = if which == 0 { Cursor::Known(node.next) } else { Cursor::Unknown(node.next) };
            continue;
        }
        if which == 0 {
            // A pending return: only unknown ops may still go before it.
            limit = lists[0].first_return_time();
            cursor = Cursor::Unknown(lists[1].first());
            continue;
        }
        // Nothing more to try here: note how far this got, then undo the last op.
        if furthest.as_ref().is_none_or(|f| total - remaining > f.0) {
            let prefix = stack.iter().map(|(c, _)| op_of(&lists, *c)).collect();
            let mut stuck = lists[0].first();
            while stuck != NIL && lists[0].nodes[stuck].is_call {
                stuck = lists[0].nodes[stuck].next;
            }
            let stuck = if stuck == NIL { NIL } else { lists[0].nodes[stuck].op };
            furthest = Some((total - remaining, stuck, prefix, state.clone()));
        }
        let Some((prev, prev_state)) = stack.pop() else {
            let (_, stuck, prefix, state) = furthest.expect("recorded above");
            return Outcome::NotLinearizable { stuck, prefix, state };
        };
        state = prev_state;
        let (which, call) = match prev {
            Cursor::Known(c) => (0, c),
            Cursor::Unknown(c) => (1, c),
        };
        done[which].clear(lists[which].nodes[call].op);
        remaining += usize::from(which == 0);
        lists[which].unlift(call);
        let next = lists[which].nodes[call].next;
        cursor = if which == 0 { Cursor::Known(next) } else { Cursor::Unknown(next) };
        limit = lists[0].first_return_time();
    }
    Outcome::Linearizable
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

fn op_of(lists: &[List; 2], c: Cursor) -> usize {
    match c {
        Cursor::Known(i) => lists[0].nodes[i].op,
        Cursor::Unknown(i) => lists[1].nodes[i].op,
    }
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

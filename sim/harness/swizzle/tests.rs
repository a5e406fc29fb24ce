//! The swizzle plan on its own: which nodes, in which orders, when, and that the unclog
//! phase takes back exactly the clogs the swizzle made.

use super::*;
use rand::SeedableRng;

const IDS: [u64; 5] = [1, 2, 3, 4, 5];

/// Runs a plan to the end (release once the clog phase is over, at `hold` after it) and
/// returns every step with its time since `t0`.
fn drive(s: &mut Swizzle, t0: Instant, hold: Duration) -> Vec<(Duration, Step)> {
    let mut steps = Vec::new();
    let mut now = t0;
    while let Some(at) = s.next_at() {
        now = now.max(at);
        steps.push((now - t0, s.step(now).expect("a step is due at next_at")));
    }
    s.release(now + hold);
    while let Some(at) = s.next_at() {
        now = now.max(at);
        steps.push((now - t0, s.step(now).expect("a step is due at next_at")));
    }
    assert!(s.done());
    steps
}

#[test]
fn swizzle_clogs_then_unclogs_each_node_once_in_another_order() {
    for seed in 0..200 {
        let t0 = Instant::now();
        let mut s = Swizzle::plan(1, &IDS, &mut ChaCha8Rng::seed_from_u64(seed), t0);
        let (order, release) = s.orders();
        assert!(!order.is_empty() && order.len() <= IDS.len(), "seed {seed}: {order:?}");
        assert!(order.iter().all(|n| IDS.contains(n)));
        let mut sorted = release.clone();
        sorted.sort();
        let mut expected = order.clone();
        expected.sort();
        expected.dedup();
        assert_eq!(sorted, expected, "seed {seed}: the same nodes, each once");
        if order.len() > 1 {
            assert_ne!(order, release, "seed {seed}: the unclog order differs");
        }
        let clog_time = s.clog_time();
        let steps = drive(&mut s, t0, Duration::from_millis(500));
        let clogs: Vec<u64> =
            steps.iter().filter_map(|(_, st)| if let Step::Clog(n) = st { Some(*n) } else { None }).collect();
        let unclogs: Vec<u64> =
            steps.iter().filter_map(|(_, st)| if let Step::Unclog(n) = st { Some(*n) } else { None }).collect();
        assert_eq!((clogs, unclogs), (order.clone(), release), "seed {seed}");
        // The clog phase starts at once, its steps are apart by the drawn gaps, and the first
        // unclog comes a hold after the last clog.
        assert_eq!(steps[0].0, Duration::ZERO);
        assert_eq!(steps[order.len() - 1].0, clog_time);
        assert_eq!(steps[order.len()].0, clog_time + Duration::from_millis(500));
        for w in steps.windows(2).filter(|w| w[1].0 != clog_time + Duration::from_millis(500)) {
            let gap = w[1].0 - w[0].0;
            assert!(gap >= Duration::from_millis(STEP_GAP_MS.0) && gap <= Duration::from_millis(STEP_GAP_MS.1));
        }
    }
}

#[test]
fn swizzle_plan_is_a_function_of_the_seed() {
    let t0 = Instant::now();
    let plan = |seed| {
        let mut s = Swizzle::plan(1, &IDS, &mut ChaCha8Rng::seed_from_u64(seed), t0);
        drive(&mut s, t0, Duration::from_millis(300))
    };
    assert_eq!(plan(7), plan(7));
    assert!((0..20).map(plan).collect::<std::collections::BTreeSet<_>>().len() > 10, "seeds draw different plans");
}

#[test]
fn swizzle_released_early_unclogs_only_what_it_clogged() {
    let t0 = Instant::now();
    let seed =
        (0..).find(|&seed| Swizzle::plan(1, &IDS, &mut ChaCha8Rng::seed_from_u64(seed), t0).orders().0.len() >= 3);
    let mut s = Swizzle::plan(1, &IDS, &mut ChaCha8Rng::seed_from_u64(seed.expect("some seed")), t0);
    let (order, _) = s.orders();
    assert_eq!(s.step(t0), Some(Step::Clog(order[0])));
    // Not due yet: nothing happens before the gap.
    assert_eq!(s.step(t0), None);
    s.release(t0 + Duration::from_millis(1));
    assert_eq!(s.step(t0 + Duration::from_millis(1)), Some(Step::Unclog(order[0])));
    assert!(s.done());
    assert_eq!(s.next_at(), None);
}

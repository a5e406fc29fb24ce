//! The openraft runtime adapter (`raftis::rt::MadsimRuntime`) inside the simulator: openraft's
//! runtime conformance suite, and the determinism of the watch, the RNG and `spawn_blocking`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft_rt::testing::Suite;
use openraft_rt::watch::{Watch, WatchReceiver, WatchSender};
use openraft_rt::AsyncRuntime;
use raftis::rt::{DetWatch, MadsimRuntime};
use rand_core::Rng;

/// Each public async check of openraft's suite as its own simulated test, so a failure names
/// the check and `MADSIM_TEST_SEED`/`MADSIM_TEST_NUM` sweep them.
macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[madsim::test]
            async fn $name() {
                Suite::<MadsimRuntime>::$name().await;
            }
        )*
    };
}

suite_tests!(
    test_spawn_join_handle,
    test_thread_rng,
    test_sleep,
    test_instant,
    test_instant_arithmetic,
    test_instant_sub_instant,
    test_instant_saturating_duration_since,
    test_instant_ord,
    test_sleep_until,
    test_timeout,
    test_timeout_at,
    test_mpsc_recv_empty,
    test_mpsc_recv_channel_closed,
    test_mpsc_weak_sender_wont_prevent_channel_close,
    test_mpsc_weak_sender_upgrade,
    test_mpsc_send,
    test_mpsc_send_to_closed_channel,
    test_mpsc_backpressure,
    test_watch_init_value,
    test_watch_overwrite_init_value,
    test_watch_send_error_no_receiver,
    test_watch_send_if_modified,
    test_watch_wait_until_ge,
    test_watch_wait_until,
    test_watch_changed_marks_as_seen,
    test_watch_borrow_and_update_marks_seen,
    test_watch_changed_returns_immediately_when_unseen,
    test_watch_multiple_borrow_then_changed,
    test_watch_wait_loop_pattern,
    test_watch_multiple_receivers,
    test_watch_subscribe,
    test_watch_send_if_different,
    test_watch_send_if_greater,
    test_oneshot_drop_tx,
    test_oneshot,
    test_oneshot_send_from_another_task,
    test_oneshot_send_to_dropped_rx,
    test_mutex_contention,
    test_mutex,
    test_mutex_lock_owned,
    test_task_local,
    test_task_local_on_completion_drop,
    test_task_local_take_value,
    test_task_local_poll_after_take_value,
    test_task_local_get_value,
);

/// The whole suite through `MadsimRuntime::new`/`block_on` (each a fresh simulation, no OS
/// thread): this adds the suite's private checks (select, peekable mpsc), `block_on` with a
/// non-`Send` future, and openraft's `DeterministicRng` wrapper around our runtime.
#[test]
fn whole_suite_on_fresh_simulations() {
    Suite::<MadsimRuntime>::test_all();
}

fn random_below(n: u64) -> u64 {
    MadsimRuntime::thread_rng().next_u64() % n
}

/// Eight receivers record `(value, receiver)` each time they wake, pausing for random short
/// times so that who waits when depends on the schedule; the sender sends ten values at random
/// moments. The log is the wake order of the whole run.
async fn wake_order<W: Watch>() -> Vec<(u32, usize)>
where
    W::Receiver<u32>: 'static,
{
    let (tx, rx) = W::channel(0u32);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut rx = rx.clone();
        let log = log.clone();
        tasks.push(MadsimRuntime::spawn(async move {
            while rx.changed().await.is_ok() {
                let value = *rx.borrow_watched();
                log.lock().unwrap().push((value, i));
                MadsimRuntime::sleep(Duration::from_micros(random_below(300))).await;
            }
        }));
    }
    drop(rx);
    for round in 1..=10 {
        MadsimRuntime::sleep(Duration::from_micros(random_below(200))).await;
        tx.send(round).unwrap();
    }
    drop(tx);
    for task in tasks {
        task.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    log
}

fn run_on_seed<F: std::future::Future>(seed: u64, f: impl FnOnce() -> F) -> F::Output {
    madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(f())
}

/// Two simulations of one seed see the same wake order. (tokio's watch fails this on most
/// seeds: its receivers wait on notifiers picked by an RNG outside the simulation's seed.)
#[test]
fn watch_wake_order_is_a_function_of_the_seed() {
    for seed in 1..=5 {
        let first = run_on_seed(seed, wake_order::<DetWatch>);
        assert_eq!(first.len(), first.iter().collect::<std::collections::BTreeSet<_>>().len());
        assert!(first.len() >= 10, "receivers should wake several times, got {first:?}");
        assert_eq!(first, run_on_seed(seed, wake_order::<DetWatch>), "seed {seed}");
    }
}

/// The same scenario for `MADSIM_TEST_CHECK_DETERMINISM=1`, which compares only the sequence
/// of RNG draws (each mixed with the virtual time of the draw): sleeping for a time derived
/// from the wake order before a last draw makes a different order visible to that check.
#[madsim::test]
async fn watch_wake_order_replays_under_the_determinism_check() {
    let order = wake_order::<DetWatch>().await;
    let digest = order.iter().fold(17u64, |h, &(v, i)| h.wrapping_mul(31).wrapping_add(u64::from(v) * 8 + i as u64));
    MadsimRuntime::sleep(Duration::from_nanos(digest % 1_000_000 + 1)).await;
    random_below(2);
}

#[test]
fn thread_rng_replays_with_the_seed() {
    let draws = || async { (0..4).map(|_| MadsimRuntime::thread_rng().next_u64()).collect::<Vec<_>>() };
    assert_eq!(run_on_seed(3, draws), run_on_seed(3, draws));
    assert_ne!(run_on_seed(3, draws), run_on_seed(4, draws));
}

/// The trait's default `spawn_blocking` starts an OS thread, which panics under madsim.
#[madsim::test]
async fn spawn_blocking_runs_without_an_os_thread() {
    let before = std::time::Instant::now();
    let value = MadsimRuntime::spawn_blocking(|| 6 * 7).await.unwrap();
    assert_eq!(value, 42);
    // And the timeout is virtual: a long wait costs no wall-clock time.
    let waited = MadsimRuntime::timeout(Duration::from_secs(3600), std::future::pending::<()>()).await;
    assert!(waited.is_err());
    assert!(before.elapsed() >= Duration::from_secs(3600));
}

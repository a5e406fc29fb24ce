//! The deterministic watch on real tokio: openraft's whole runtime conformance suite with this
//! watch swapped into the tokio runtime, and the wake-order and cancellation properties.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft_rt::testing::Suite;
use openraft_rt::watch::{Watch, WatchReceiver, WatchSender};
use openraft_rt::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::TokioRuntime;

use super::DetWatch;

/// `TokioRuntime` with its watch replaced by `DetWatch`, so the suite's watch checks run on it.
#[derive(Debug)]
struct TokioWithDetWatch(TokioRuntime);

impl AsyncRuntime for TokioWithDetWatch {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = <TokioRuntime as AsyncRuntime>::Instant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, F: Future<Output = R> + OptionalSend> = <TokioRuntime as AsyncRuntime>::Timeout<R, F>;
    type ThreadLocalRng = <TokioRuntime as AsyncRuntime>::ThreadLocalRng;
    type Mpsc = <TokioRuntime as AsyncRuntime>::Mpsc;
    type Watch = DetWatch;
    type Oneshot = <TokioRuntime as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        TokioRuntime::thread_rng()
    }

    fn new(threads: usize) -> Self {
        Self(TokioRuntime::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }
}

#[test]
fn openraft_runtime_suite_passes_with_the_deterministic_watch() {
    Suite::<TokioWithDetWatch>::test_all();
}

/// On a current-thread runtime woken tasks run in wake order, so the recorded order is the
/// watch's wake order: the order in which the receivers started waiting, every round.
#[tokio::test]
async fn receivers_wake_in_the_order_they_started_waiting() {
    const RECEIVERS: usize = 6;
    const ROUNDS: u32 = 4;
    let (tx, rx) = DetWatch::channel(0u32);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..RECEIVERS {
        let mut rx = rx.clone();
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                log.lock().unwrap().push((*rx.borrow_watched(), i));
            }
        }));
        // Let receiver `i` start waiting before receiver `i + 1` exists.
        tokio::task::yield_now().await;
    }
    for round in 1..=ROUNDS {
        tx.send(round).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(tx);
    for task in tasks {
        task.await.unwrap();
    }
    let expected: Vec<_> = (1..=ROUNDS).flat_map(|r| (0..RECEIVERS).map(move |i| (r, i))).collect();
    assert_eq!(*log.lock().unwrap(), expected);
}

#[tokio::test]
async fn a_cancelled_wait_leaves_no_waker_behind() {
    let (tx, mut rx) = DetWatch::channel(1u8);
    let waited = tokio::time::timeout(Duration::from_millis(5), rx.changed()).await;
    assert!(waited.is_err(), "nothing was sent");
    assert!(tx.shared.state().waiters.is_empty());
    tx.send(2).unwrap();
    rx.changed().await.unwrap();
    assert_eq!(*rx.borrow_and_update(), 2);
}

#[tokio::test]
async fn dropping_the_last_sender_wakes_waiters_with_an_error() {
    let (tx, mut rx) = DetWatch::channel(());
    let tx2 = tx.clone();
    let waiter = tokio::spawn(async move { rx.changed().await });
    tokio::task::yield_now().await;
    drop(tx);
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "a sender remains");
    drop(tx2);
    assert!(waiter.await.unwrap().is_err());
}

#[tokio::test]
async fn an_unseen_value_is_reported_after_the_senders_are_gone() {
    let (tx, mut rx) = DetWatch::channel(0);
    tx.send(7).unwrap();
    drop(tx);
    assert!(rx.changed().await.is_ok());
    assert_eq!(*rx.borrow_watched(), 7);
    assert!(rx.changed().await.is_err());
}

#[test]
fn send_without_receivers_hands_the_value_back() {
    let (tx, rx) = DetWatch::channel(0);
    drop(rx);
    assert_eq!(tx.send(5).unwrap_err().0, 5);
    assert_eq!(*tx.borrow_watched(), 0);
    let mut late = tx.subscribe();
    assert_eq!(*late.borrow_and_update(), 0);
    tx.send(6).unwrap();
    assert_eq!(*late.borrow_watched(), 6);
}

//! The shutdown signal of a node: one [`Shutdown`] that the node triggers once, and any number
//! of [`ShutdownSignal`]s (the listener, every connection, background tasks) waiting on it.
//!
//! Built on [`DetWatch`](super::DetWatch), not tokio's watch, in both worlds. tokio's watch
//! parks waiting receivers on one of several notifiers picked by a thread-local RNG that
//! madsim does not control, so when a node stops itself (a failed fsync makes Raft stop, and
//! the node with it) the tasks waiting on the signal woke in a different order in two runs
//! of one seed, and the simulation diverged from its replay from that point on
//! (`MADSIM_TEST_CHECK_DETERMINISM=1` with the `FailSync` fault). `DetWatch` wakes them in the
//! order they started waiting.

use super::watch::{DetWatch, DetWatchReceiver, DetWatchSender};
use openraft_rt::watch::{Watch, WatchReceiver, WatchSender};

/// Triggers the shutdown; owned by whatever decides that the node stops.
pub struct Shutdown {
    tx: DetWatchSender<bool>,
}

/// Waits for the shutdown. Each waiting task holds its own (see [`Shutdown::subscribe`]).
pub struct ShutdownSignal {
    rx: DetWatchReceiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not triggered yet.
    pub fn new() -> Shutdown {
        // The channel's first receiver is dropped at once: `subscribe` makes the others, and
        // `trigger` stores the value even while nobody waits.
        let (tx, _) = DetWatch::channel(false);
        Shutdown { tx }
    }

    /// Tells every signal, present and future, that the node stops. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_if_modified(|stop| !std::mem::replace(stop, true));
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow_watched()
    }

    /// A new waiter.
    pub fn subscribe(&self) -> ShutdownSignal {
        ShutdownSignal { rx: self.tx.subscribe() }
    }
}

impl ShutdownSignal {
    /// Resolves once the shutdown is triggered (at once if it already was), or when its
    /// [`Shutdown`] is dropped, which means nobody can stop the waiter any more either.
    /// Cancel-safe: dropping the future leaves no waker behind.
    pub async fn wait(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether the shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow_watched()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};

    /// A waker that records which waiter it belongs to, in wake order.
    struct Recorder {
        id: usize,
        woken: Arc<Mutex<Vec<usize>>>,
    }

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.woken.lock().unwrap_or_else(|p| p.into_inner()).push(self.id);
        }
    }

    #[test]
    fn waiters_wake_in_the_order_they_started_waiting() {
        let shutdown = Shutdown::new();
        let woken = Arc::new(Mutex::new(Vec::new()));
        let mut signals: Vec<ShutdownSignal> = (0..8).map(|_| shutdown.subscribe()).collect();
        let mut futures: Vec<_> = signals.iter_mut().map(|s| Box::pin(s.wait())).collect();
        // Start waiting in a shuffled but fixed order.
        let order = [5, 2, 7, 0, 3, 6, 1, 4];
        for &i in &order {
            let waker = Waker::from(Arc::new(Recorder { id: i, woken: woken.clone() }));
            assert!(futures[i].as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        }
        shutdown.trigger();
        assert_eq!(*woken.lock().unwrap_or_else(|p| p.into_inner()), order);
        let waker = Waker::noop();
        for f in &mut futures {
            assert!(f.as_mut().poll(&mut Context::from_waker(waker)).is_ready());
        }
    }

    #[test]
    fn a_signal_subscribed_after_the_trigger_is_ready_at_once() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        shutdown.trigger();
        assert!(shutdown.is_triggered());
        let mut signal = shutdown.subscribe();
        assert!(signal.is_triggered());
        let fut = pin!(signal.wait());
        assert_eq!(fut.poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(()));
    }

    #[test]
    fn a_pending_wait_stays_pending_until_the_trigger() {
        let shutdown = Shutdown::new();
        let mut signal = shutdown.subscribe();
        let mut fut = pin!(signal.wait());
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(cx).is_pending());
        assert!(fut.as_mut().poll(cx).is_pending());
        shutdown.trigger();
        assert!(fut.as_mut().poll(cx).is_ready());
    }

    #[test]
    fn dropping_the_trigger_releases_the_waiters() {
        let shutdown = Shutdown::new();
        let mut signal = shutdown.subscribe();
        let mut fut = pin!(signal.wait());
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(cx).is_pending());
        drop(shutdown);
        assert!(fut.as_mut().poll(cx).is_ready());
    }
}

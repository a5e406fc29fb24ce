//! A watch channel (openraft's `Watch`) that wakes its receivers in a deterministic order.
//!
//! tokio's watch spreads waiting receivers over several notifiers chosen by a thread-local RNG
//! that madsim does not control, so the order in which receivers wake, and with it the whole
//! schedule of a simulation, can differ between two runs of one seed. Here every waiting
//! receiver registers its waker in one list, keyed by a registration counter, and a change
//! wakes the list in that order. A version counter tells a receiver whether it has seen the
//! latest value. The channel also works on real tokio (it needs no runtime at all).

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll, Waker};

use openraft_rt::watch::{RecvError, SendError, Watch, WatchReceiver, WatchSender};
use openraft_rt::{OptionalSend, OptionalSync};

/// The deterministic watch channel family, for `AsyncRuntime::Watch`.
pub struct DetWatch;

/// Sends values to every receiver of the channel. Cloneable; the channel closes when the last
/// sender is dropped.
pub struct DetWatchSender<T> {
    shared: Arc<Shared<T>>,
}

/// Observes the latest value of the channel and waits for changes.
pub struct DetWatchReceiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver has marked seen.
    seen: u64,
}

struct Shared<T> {
    /// Lock order: `value` before `state` (a send bumps the version while it holds the value,
    /// so a reader holding the value reads the version that belongs to it).
    value: RwLock<T>,
    state: Mutex<State>,
}

struct State {
    /// Bumped by every notifying send.
    version: u64,
    senders: usize,
    receivers: usize,
    next_waiter: u64,
    /// Waiting receivers in the order they first waited; a `BTreeMap` so that waking them
    /// iterates in that order.
    waiters: BTreeMap<u64, Waker>,
}

impl<T> Shared<T> {
    // A panic while a lock is held leaves a consistent value (a send either replaced it or
    // not), so poisoning is ignored, as tokio's watch does.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.value.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Wakes outside every lock, in registration order.
fn wake_all(waiters: BTreeMap<u64, Waker>) {
    for waker in waiters.into_values() {
        waker.wake();
    }
}

impl Watch for DetWatch {
    type Sender<T: OptionalSend + OptionalSync> = DetWatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = DetWatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (DetWatchSender<T>, DetWatchReceiver<T>) {
        let state = State { version: 0, senders: 1, receivers: 1, next_waiter: 0, waiters: BTreeMap::new() };
        let shared = Arc::new(Shared { value: RwLock::new(init), state: Mutex::new(state) });
        (DetWatchSender { shared: shared.clone() }, DetWatchReceiver { shared, seen: 0 })
    }
}

impl<T> Clone for DetWatchSender<T> {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        Self { shared: self.shared.clone() }
    }
}

impl<T> Drop for DetWatchSender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.senders -= 1;
        if state.senders == 0 {
            // Closing is a change too: waiting receivers must wake to return their error.
            let waiters = std::mem::take(&mut state.waiters);
            drop(state);
            wake_all(waiters);
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<DetWatch, T> for DetWatchSender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        // Like tokio: with no receiver left the value is handed back and not stored.
        if self.shared.state().receivers == 0 {
            return Err(SendError(value));
        }
        self.send_if_modified(|current| {
            *current = value;
            true
        });
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let mut value = self.shared.write();
        if !modify(&mut value) {
            return false;
        }
        let waiters = {
            let mut state = self.shared.state();
            state.version += 1;
            std::mem::take(&mut state.waiters)
        };
        drop(value);
        wake_all(waiters);
        true
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn subscribe(&self) -> DetWatchReceiver<T> {
        let mut state = self.shared.state();
        state.receivers += 1;
        // A new receiver has seen the current value: only later sends are changes to it.
        DetWatchReceiver { shared: self.shared.clone(), seen: state.version }
    }
}

impl<T> Clone for DetWatchReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.state().receivers += 1;
        Self { shared: self.shared.clone(), seen: self.seen }
    }
}

impl<T> Drop for DetWatchReceiver<T> {
    fn drop(&mut self) {
        self.shared.state().receivers -= 1;
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<DetWatch, T> for DetWatchReceiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        let mut waiter = Waiter { shared: &self.shared, id: None };
        let seen = self.seen;
        let version = poll_fn(|cx| waiter.poll(seen, cx)).await?;
        self.seen = version;
        Ok(())
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        let value = self.shared.read();
        self.seen = self.shared.state().version;
        value
    }
}

/// One pending `changed()` call: its place in the wake order, removed again if the call is
/// dropped before it completes (so a cancelled wait leaves no stale waker behind).
struct Waiter<'a, T> {
    shared: &'a Shared<T>,
    id: Option<u64>,
}

impl<T> Waiter<'_, T> {
    fn poll(&mut self, seen: u64, cx: &mut Context<'_>) -> Poll<Result<u64, RecvError>> {
        let mut state = self.shared.state();
        // An unseen value is reported even after the senders are gone, as tokio does.
        if state.version != seen {
            return Poll::Ready(Ok(state.version));
        }
        if state.senders == 0 {
            return Poll::Ready(Err(RecvError(())));
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = state.next_waiter;
                state.next_waiter += 1;
                self.id = Some(id);
                id
            }
        };
        match state.waiters.get_mut(&id) {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                state.waiters.insert(id, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for Waiter<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.shared.state().waiters.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests;

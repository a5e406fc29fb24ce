//! A loop of blocking work that other tasks wake ([`spawn_worker`]): a dedicated OS thread on
//! real tokio, a task under madsim (no OS threads there, and simulated disks never block).
//!
//! Why a thread of its own rather than [`super::run_blocking`] per round: the log flusher runs
//! a round per fsync, thousands a second; going through tokio's blocking pool cost two
//! thread wake-ups per round (to the pool thread and back to the flusher task), measured at
//! 130-180 us on top of a 220-300 us fsync. A thread that loops does the next round at once
//! and sleeps only when there is nothing to do.
//!
//! On a current-thread runtime with the idle hook, a worker's owner may let the runtime's
//! thread run its rounds when it goes idle instead ([`Waker::run_when_idle`], `super::idle`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a round of work found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It did something: run the next round at once.
    Again,
    /// Nothing to do: sleep until woken.
    Idle,
    /// The worker is done.
    Exit,
}

/// Wakes a worker; cheap to clone, and cheap to call while the worker is busy.
#[derive(Clone)]
pub struct Waker {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// Set by [`Waker::wake`], cleared by the worker before each round: a wake that comes
    /// while a round runs makes the worker run another instead of sleeping.
    woken: AtomicBool,
    #[cfg(not(madsim))]
    thread: std::sync::OnceLock<std::thread::Thread>,
    #[cfg(not(madsim))]
    pub(super) idle: super::idle::IdleState,
    #[cfg(madsim)]
    notify: tokio::sync::Notify,
}

impl Default for Waker {
    fn default() -> Self {
        Waker {
            inner: Arc::new(Inner {
                woken: AtomicBool::new(false),
                #[cfg(not(madsim))]
                thread: std::sync::OnceLock::new(),
                #[cfg(not(madsim))]
                idle: Default::default(),
                #[cfg(madsim)]
                notify: tokio::sync::Notify::new(),
            }),
        }
    }
}

impl Waker {
    /// Makes the worker run another round (soon, or right after the one it is running).
    pub fn wake(&self) {
        if self.inner.woken.swap(true, Ordering::SeqCst) {
            return;
        }
        #[cfg(not(madsim))]
        if super::idle::leave_to_hook(&self.inner) {
            return;
        }
        self.inner.unpark();
    }

    /// Makes every round count as fast for the idle hook's slow streak (tests).
    #[cfg(all(test, not(madsim)))]
    pub(super) fn ignore_slow_rounds(&self) {
        self.inner.idle.ignore_slow_rounds();
    }

    /// Rounds run by the idle hook so far that did something.
    pub fn rounds_when_idle(&self) -> u64 {
        #[cfg(not(madsim))]
        return self.inner.idle.rounds();
        #[cfg(madsim)]
        0
    }

    /// While `on`, a wake on a runtime thread that runs [`super::on_runtime_idle`] is left to
    /// that hook: the round runs on the runtime thread when it has nothing else to do. Off (the
    /// default), every round runs on the worker's own thread. Does nothing under madsim.
    pub fn run_when_idle(&self, on: bool) {
        #[cfg(not(madsim))]
        if self.inner.idle.set_enabled(on) && !on && self.inner.is_left_to_hook() {
            // A wake left to the hook before this: the thread takes it now.
            self.inner.wake_thread();
        }
        #[cfg(madsim)]
        let _ = on;
    }
}

impl Inner {
    /// Whether the pending wake waits for the runtime's idle hook (never under madsim).
    fn is_left_to_hook(&self) -> bool {
        #[cfg(not(madsim))]
        return self.idle.is_left_to_hook();
        #[cfg(madsim)]
        false
    }

    /// Makes the worker's thread (task) run a round, whoever was to run it.
    #[cfg(not(madsim))]
    pub(super) fn wake_thread(&self) {
        self.idle.take_back();
        self.woken.store(true, Ordering::SeqCst);
        self.unpark();
    }

    /// Makes the worker's thread (task) look at its wake flag.
    fn unpark(&self) {
        #[cfg(not(madsim))]
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        #[cfg(madsim)]
        self.notify.notify_one();
    }
}

/// Waits for a worker to exit.
pub struct WorkerHandle {
    #[cfg(not(madsim))]
    exited: tokio::sync::oneshot::Receiver<()>,
    #[cfg(madsim)]
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Resolves once the worker's loop has ended.
    pub async fn join(self) {
        #[cfg(not(madsim))]
        let _ = self.exited.await;
        #[cfg(madsim)]
        let _ = self.task.await;
    }
}

/// Runs `round` again and again, sleeping while it reports [`Step::Idle`] until `waker` is
/// woken, until it reports [`Step::Exit`]. `round` may block (disk I/O). Call from inside the
/// runtime.
pub fn spawn_worker(
    name: &str,
    waker: &Waker,
    round: impl FnMut() -> Step + Send + 'static,
) -> std::io::Result<WorkerHandle> {
    let inner = waker.inner.clone();
    #[cfg(not(madsim))]
    {
        let (tx, exited) = tokio::sync::oneshot::channel();
        let round: super::idle::SharedRound = Arc::new(std::sync::Mutex::new(Box::new(round)));
        super::idle::set_round(&inner, round.clone());
        std::thread::Builder::new().name(name.to_string()).spawn(move || {
            let _exit_signal = tx;
            // Before the first round: a wake that finds no thread to unpark has set `woken`,
            // which this round clears only after it has looked for work.
            let _ = inner.thread.set(std::thread::current());
            loop {
                match super::idle::locked_turn(&inner, &round) {
                    Step::Again => {}
                    Step::Exit => return,
                    // A wake from now on unparks this thread (or leaves it the token).
                    // A wake left to the runtime's idle hook is not this thread's to take.
                    Step::Idle => {
                        while !inner.woken.load(Ordering::SeqCst) || inner.is_left_to_hook() {
                            std::thread::park();
                        }
                    }
                }
            }
        })?;
        Ok(WorkerHandle { exited })
    }
    #[cfg(madsim)]
    {
        let _ = name;
        let mut round = round;
        let task = tokio::spawn(async move {
            loop {
                // A round takes virtual time before it starts (the time a real thread's fsync
                // of the round before, or its wake-up, takes): appends go on meanwhile.
                super::madsim_runtime::work_time::pass().await;
                match turn(&inner, &mut round) {
                    Step::Again => {}
                    Step::Exit => return,
                    // A wake from now on leaves a permit if it comes before this waits.
                    Step::Idle => inner.notify.notified().await,
                }
            }
        });
        Ok(WorkerHandle { task })
    }
}

/// One round of a worker: clears the wake flag first, so a wake during the round is seen
/// after it ([`Step::Idle`] becomes [`Step::Again`] then), unless that wake was left to the
/// runtime's idle hook.
pub(super) fn turn(inner: &Inner, round: &mut (impl FnMut() -> Step + ?Sized)) -> Step {
    inner.woken.store(false, Ordering::SeqCst);
    match round() {
        Step::Idle if inner.woken.load(Ordering::SeqCst) && !inner.is_left_to_hook() => Step::Again,
        step => step,
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    /// A worker that counts its rounds and processes `pending` items, one per round.
    fn counting_worker(pending: Arc<AtomicU64>, done: Arc<AtomicU64>, waker: &Waker) -> WorkerHandle {
        spawn_worker("test-worker", waker, move || {
            if pending.load(Ordering::Acquire) == u64::MAX {
                return Step::Exit;
            }
            if pending.load(Ordering::Acquire) == 0 {
                return Step::Idle;
            }
            pending.fetch_sub(1, Ordering::AcqRel);
            done.fetch_add(1, Ordering::AcqRel);
            Step::Again
        })
        .expect("spawn")
    }

    #[tokio::test]
    async fn every_wake_is_served_and_exit_ends_the_thread() {
        let (pending, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let waker = Waker::default();
        let handle = counting_worker(pending.clone(), done.clone(), &waker);
        for i in 1..=200u64 {
            pending.fetch_add(1, Ordering::AcqRel);
            waker.wake();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while done.load(Ordering::Acquire) < i {
                assert!(std::time::Instant::now() < deadline, "item {i} never processed: a lost wake-up");
                tokio::task::yield_now().await;
            }
        }
        pending.store(u64::MAX, Ordering::Release);
        waker.wake();
        tokio::time::timeout(Duration::from_secs(10), handle.join()).await.expect("the worker exits");
    }
}

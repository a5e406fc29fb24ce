//! Worker rounds run by the runtime's own thread when it is about to wait for events (real
//! tokio only): the way Redis fsyncs its append-only file in `beforeSleep`.
//!
//! Why: on a node that is the only member of its group nothing can usefully overlap the log's
//! fsync, and a flusher thread of its own costs two cross-thread wake-ups per sync and lets the
//! runtime take requests a few at a time while the sync runs (small fsync batches). Run from
//! [`on_runtime_idle`], the sync blocks the runtime thread once it has served everything
//! ready, requests pile up in the sockets meanwhile, and the next round of the event loop takes
//! them all into the next sync. Measured on one node at 50 clients: fsyncs per write 0.05 ->
//! 0.034 (Redis 0.036), context switches per write 0.26 -> 0.09 (docs/PERFORMANCE.md). With
//! peers the runtime must keep replicating during a sync, so the owner of a worker turns this
//! on only while it is alone ([`super::Waker::run_when_idle`]).
//!
//! A round blocks the runtime for as long as it takes: a plain sync takes well under a
//! millisecond on a healthy disk, the rarer rounds that also roll a segment, purge or persist
//! the committed id take up to a few tens of ms. A disk whose every round is slow (failing or
//! overloaded) would stall every connection of the node: after [`SLOW_STREAK`] rounds in a row
//! slower than [`SLOW_ROUND`], rounds go back to the worker's thread for [`SLOW_PAUSE`].
//!
//! The hook runs only when the runtime runs out of ready tasks. Under a saturating load (many
//! clients pipelining reads as fast as the node answers) that may not happen for long, and a
//! write would wait for it: a timer task hands every wake left to the hook for
//! [`HOOK_FALLBACK`] to the worker's thread (measured before it: one client's SETs against 300
//! clients pipelining GETs, 10 writes/s, against 65 with the flusher thread).

use super::worker::{turn, Inner, Step};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A worker's round, run by its thread or by the idle hook, never both at once.
pub(super) type SharedRound = Arc<Mutex<Box<dyn FnMut() -> Step + Send>>>;

/// A round slower than this counts towards [`SLOW_STREAK`].
pub const SLOW_ROUND: Duration = Duration::from_millis(10);
/// This many slow rounds in a row pause rounds on the runtime thread.
pub const SLOW_STREAK: u32 = 3;
/// How long rounds stay on the worker's thread after a slow streak.
pub const SLOW_PAUSE: Duration = Duration::from_secs(10);
/// A wake left to the hook for this long goes to the worker's thread: the runtime has had work
/// ready all along (a saturating load) and has not gone idle.
pub const HOOK_FALLBACK: Duration = Duration::from_millis(2);

thread_local! {
    /// Whether this thread runs [`on_runtime_idle`] before it waits (set by the hook itself,
    /// on a current-thread runtime only).
    static HOOKED: Cell<bool> = const { Cell::new(false) };
    /// The workers woken on this thread and left to its hook. Per thread, so a runtime's hook
    /// only ever runs the rounds its own tasks asked for.
    static LEFT_TO_HOOK: RefCell<Vec<Arc<Inner>>> = const { RefCell::new(Vec::new()) };
    /// Wakes this thread's fallback task ([`fallback`]) when a wake is left to the hook.
    static FALLBACK: RefCell<Option<Arc<tokio::sync::Notify>>> = const { RefCell::new(None) };
}

/// Per worker: whether its rounds may run on the runtime thread, and the round itself.
#[derive(Default)]
pub(super) struct IdleState {
    enabled: AtomicBool,
    /// Milliseconds since [`epoch`] until which rounds stay on the worker's thread.
    paused_until_ms: AtomicU64,
    /// Slow rounds in a row.
    slow_streak: AtomicU32,
    /// Rounds the hook ran that did something.
    rounds: AtomicU64,
    /// A wake is waiting for the hook: the worker's thread leaves it alone (it runs a round
    /// only for a wake handed to it).
    left: AtomicBool,
    /// Counts the wakes left to the hook, so the fallback tells a new one from an old one.
    left_seq: AtomicU64,
    /// Tests that are not about slow rounds ignore them (a loaded machine may make any round
    /// slow).
    ignore_slow: AtomicBool,
    round: OnceLock<SharedRound>,
}

impl IdleState {
    /// Whether a wake on this thread is left to its idle hook (instead of waking the worker's
    /// thread).
    fn takes_wake_here(&self) -> bool {
        HOOKED.with(Cell::get) && self.enabled.load(Ordering::SeqCst) && !self.paused()
    }

    /// Turns idle rounds on or off; returns whether they were on.
    pub(super) fn set_enabled(&self, on: bool) -> bool {
        self.enabled.swap(on, Ordering::SeqCst)
    }

    /// Counts a round that took `took`; pauses idle rounds at the end of a slow streak.
    fn count_round(&self, took: Duration) {
        if took <= SLOW_ROUND || self.ignore_slow.load(Ordering::Relaxed) {
            self.slow_streak.store(0, Ordering::Relaxed);
            return;
        }
        if self.slow_streak.fetch_add(1, Ordering::Relaxed) + 1 < SLOW_STREAK || !self.enabled.load(Ordering::SeqCst) {
            return;
        }
        self.slow_streak.store(0, Ordering::Relaxed);
        tracing::warn!(
            last_ms = took.as_millis(),
            "{SLOW_STREAK} slow log rounds in a row: syncing off the runtime thread for the next {} s",
            SLOW_PAUSE.as_secs()
        );
        let pause = u64::try_from(SLOW_PAUSE.as_millis()).unwrap_or(u64::MAX);
        self.paused_until_ms.store(since_epoch_ms().saturating_add(pause), Ordering::Relaxed);
    }

    /// Makes every round count as fast (tests).
    #[cfg(test)]
    pub(super) fn ignore_slow_rounds(&self) {
        self.ignore_slow.store(true, Ordering::Relaxed);
    }

    /// Whether the pending wake is the hook's, not the thread's.
    pub(super) fn is_left_to_hook(&self) -> bool {
        self.left.load(Ordering::SeqCst)
    }

    /// Hands the pending wake back from the hook (to the thread, or to the hook's own round).
    pub(super) fn take_back(&self) {
        self.left.store(false, Ordering::SeqCst);
    }

    pub(super) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    fn paused(&self) -> bool {
        since_epoch_ms() < self.paused_until_ms.load(Ordering::Relaxed)
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn since_epoch_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Makes `round` the worker's round, shared by its thread and the idle hook.
pub(super) fn set_round(inner: &Inner, round: SharedRound) {
    let _ = inner.idle.round.set(round);
}

/// Leaves a fresh wake of `inner` to this thread's idle hook, if this thread has one and the
/// worker allows it; returns whether it did.
pub(super) fn leave_to_hook(inner: &Arc<Inner>) -> bool {
    if !inner.idle.takes_wake_here() || !arm_fallback() {
        return false;
    }
    inner.idle.left_seq.fetch_add(1, Ordering::SeqCst);
    inner.idle.left.store(true, Ordering::SeqCst);
    LEFT_TO_HOOK.with(|left| left.borrow_mut().push(inner.clone()));
    true
}

/// Makes this thread's fallback task look at the waiting wakes in [`HOOK_FALLBACK`], starting
/// it on first use; false if there is no runtime to run it on (the wake then goes to the
/// thread).
fn arm_fallback() -> bool {
    FALLBACK.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
            let notify = Arc::new(tokio::sync::Notify::new());
            runtime.spawn(fallback(notify.clone()));
            *slot = Some(notify);
        }
        if let Some(notify) = slot.as_ref() {
            notify.notify_one();
        }
        true
    })
}

/// Hands the worker threads every wake that waited for this thread's hook through a whole
/// [`HOOK_FALLBACK`]. The hook runs only when the runtime runs out of ready tasks, which a
/// saturating load (clients pipelining reads as fast as the node answers) may put off
/// indefinitely; timers still fire then, at every poll of the driver. When the runtime does
/// park, its hook runs before the driver fires any timer, so a wake still waiting, unchanged,
/// when the timer fires was never offered to the hook.
async fn fallback(notify: Arc<tokio::sync::Notify>) {
    loop {
        notify.notified().await;
        let waiting: Vec<(Arc<Inner>, u64)> = LEFT_TO_HOOK.with(|left| {
            let left = left.borrow();
            left.iter()
                .filter(|i| i.idle.is_left_to_hook())
                .map(|i| (i.clone(), i.idle.left_seq.load(Ordering::SeqCst)))
                .collect()
        });
        tokio::time::sleep(HOOK_FALLBACK).await;
        for (inner, seq) in waiting {
            if inner.idle.is_left_to_hook() && inner.idle.left_seq.load(Ordering::SeqCst) == seq {
                inner.wake_thread();
            }
        }
    }
}

/// One round under the round's lock (waiting for the other side to finish its round), timed:
/// a slow one pauses idle rounds.
pub(super) fn locked_turn(inner: &Inner, round: &SharedRound) -> Step {
    let mut round = round.lock().unwrap_or_else(|e| e.into_inner());
    timed_turn(inner, &mut **round)
}

fn timed_turn(inner: &Inner, round: &mut (dyn FnMut() -> Step + Send)) -> Step {
    let started = Instant::now();
    let step = turn(inner, round);
    // Only rounds that did something: an empty one costs nothing and proves nothing.
    if step == Step::Again {
        inner.idle.count_round(started.elapsed());
    }
    step
}

/// The runtime's park hook (`tokio::runtime::Builder::on_thread_park`): runs the rounds woken
/// on this thread and left to it. Only a current-thread runtime takes its rounds this way (its
/// park checks for tasks the hook woke; a multi-thread worker's park does not), so on any
/// other thread this does nothing and wakes go to the workers' threads as usual.
pub fn on_runtime_idle() {
    if !HOOKED.with(Cell::get) {
        let current_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !current_thread {
            return;
        }
        HOOKED.with(|h| h.set(true));
    }
    // Taken out first: a round's callbacks may wake a worker again, which pushes here.
    let due = LEFT_TO_HOOK.with(|left| std::mem::take(&mut *left.borrow_mut()));
    for inner in due {
        run_due_rounds(&inner);
    }
}

/// Rounds until the worker has nothing left; skipped if the wake was handed to its thread
/// meanwhile, if its thread is in a round (it looks at its wake flag again after that round),
/// or if the worker has since turned idle rounds off or paused them (its thread takes the wake
/// then).
fn run_due_rounds(inner: &Inner) {
    if !inner.idle.is_left_to_hook() {
        // Handed to the thread already (by the fallback, or a second entry of this worker).
        return;
    }
    if !inner.idle.enabled.load(Ordering::SeqCst) || inner.idle.paused() {
        inner.wake_thread();
        return;
    }
    let Some(round) = inner.idle.round.get() else { return };
    let Ok(mut round) = round.try_lock() else {
        // The thread is in a round; it takes the wake after it.
        inner.idle.take_back();
        return;
    };
    inner.idle.take_back();
    loop {
        match timed_turn(inner, &mut **round) {
            Step::Again => {
                inner.idle.rounds.fetch_add(1, Ordering::Relaxed);
            }
            Step::Idle => return,
            // The thread ends too: it runs a round of its own, which finds the same.
            Step::Exit => {
                drop(round);
                inner.wake_thread();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::worker::{spawn_worker, Waker, WorkerHandle};
    use super::*;
    use std::thread::ThreadId;

    /// A worker that takes one queued item per round and records which thread ran it; an
    /// item of `u64::MAX` ends it (and stays queued). Each round blocks for `round_time` (a
    /// disk's sync).
    struct Recorder {
        queue: Arc<Mutex<Vec<u64>>>,
        ran_on: Arc<Mutex<Vec<(u64, ThreadId)>>>,
        waker: Waker,
        handle: Option<WorkerHandle>,
        /// Rounds done, by anyone (the thread runs one as it starts).
        rounds_done: Arc<AtomicU64>,
    }

    impl Recorder {
        fn start(round_time: Duration) -> Recorder {
            let (queue, ran_on) = (Arc::new(Mutex::new(Vec::<u64>::new())), Arc::new(Mutex::new(Vec::new())));
            let waker = Waker::default();
            let rounds_done = Arc::new(AtomicU64::new(0));
            let (q, r, s) = (queue.clone(), ran_on.clone(), rounds_done.clone());
            let round = move || {
                let mut queue = q.lock().expect("queue");
                // The end stays queued: every later round finds it too (as a closed store).
                if queue.last() == Some(&u64::MAX) {
                    return Step::Exit;
                }
                let Some(item) = queue.pop() else { return Step::Idle };
                drop(queue);
                std::thread::sleep(round_time);
                r.lock().expect("record").push((item, std::thread::current().id()));
                Step::Again
            };
            let handle = spawn_worker("test-idle", &waker, move || {
                let step = round();
                s.fetch_add(1, Ordering::SeqCst);
                step
            })
            .expect("spawn");
            Recorder { queue, ran_on, waker, handle: Some(handle), rounds_done }
        }

        /// A recorder whose rounds may run in the idle hook, once its thread has done the round
        /// it runs as it starts and the hook has marked this thread (on its first park).
        async fn start_idle(round_time: Duration) -> Recorder {
            let worker = Recorder::start(round_time);
            if round_time <= SLOW_ROUND {
                // Only slowness by design counts: on a loaded machine any round may be slow.
                worker.waker.ignore_slow_rounds();
            }
            worker.waker.run_when_idle(true);
            let deadline = Instant::now() + Duration::from_secs(10);
            while worker.rounds_done.load(Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "the worker's thread never ran its first round");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // At least one park, whose hook marks this thread, however soon that round ended.
            tokio::time::sleep(Duration::from_millis(1)).await;
            worker
        }

        fn push(&self, item: u64) {
            self.queue.lock().expect("queue").push(item);
            self.waker.wake();
        }

        fn threads_of_done(&self) -> Vec<ThreadId> {
            self.ran_on.lock().expect("record").iter().map(|(_, t)| *t).collect()
        }

        /// Pushes `item` and waits (parking the runtime) until a round has taken it.
        async fn process(&self, item: u64) -> ThreadId {
            self.push(item);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some((_, t)) = self.ran_on.lock().expect("record").iter().find(|(i, _)| *i == item) {
                    return *t;
                }
                assert!(Instant::now() < deadline, "item {item} never processed: a lost wake-up");
                // A timer, not a yield: the runtime must park for its idle hook to run.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        async fn exit(mut self) {
            self.push(u64::MAX);
            let handle = self.handle.take().expect("handle");
            tokio::time::timeout(Duration::from_secs(10), handle.join()).await.expect("the worker's thread exits");
        }
    }

    fn runtime(current_thread: bool) -> tokio::runtime::Runtime {
        let mut builder = if current_thread {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(1);
            b
        };
        builder.on_thread_park(on_runtime_idle).enable_all().build().expect("runtime")
    }

    #[test]
    fn rounds_woken_on_an_idle_current_thread_runtime_run_there() {
        runtime(true).block_on(async {
            let worker = Recorder::start_idle(Duration::ZERO).await;
            let here = std::thread::current().id();
            for item in 0..50 {
                assert_eq!(worker.process(item).await, here, "round {item} ran off the runtime thread");
            }
            assert_eq!(worker.waker.rounds_when_idle(), 50);
            worker.exit().await;
        });
    }

    #[test]
    fn with_idle_rounds_off_every_round_runs_on_the_worker_thread() {
        runtime(true).block_on(async {
            let worker = Recorder::start(Duration::ZERO);
            let here = std::thread::current().id();
            for item in 0..20 {
                assert_ne!(worker.process(item).await, here);
            }
            assert_eq!(worker.waker.rounds_when_idle(), 0);
            worker.exit().await;
        });
    }

    #[test]
    fn a_multi_thread_runtime_never_runs_rounds_in_its_hook() {
        runtime(false).block_on(async {
            let worker = Recorder::start(Duration::ZERO);
            worker.waker.run_when_idle(true);
            for item in 0..20 {
                worker.process(item).await;
            }
            assert_eq!(worker.waker.rounds_when_idle(), 0);
            let threads = worker.threads_of_done();
            assert!(threads.windows(2).all(|w| w[0] == w[1]), "every round on the worker's one thread");
            worker.exit().await;
        });
    }

    #[test]
    fn turning_idle_rounds_off_hands_a_waiting_wake_to_the_thread() {
        runtime(true).block_on(async {
            let worker = Recorder::start_idle(Duration::ZERO).await;
            // Left to the hook, which cannot run: this task does not yield until it is done.
            worker.push(7);
            worker.waker.run_when_idle(false);
            let deadline = Instant::now() + Duration::from_secs(10);
            while worker.threads_of_done().is_empty() {
                assert!(Instant::now() < deadline, "the waiting wake was lost");
                std::thread::yield_now();
            }
            assert_ne!(worker.threads_of_done()[0], std::thread::current().id());
            worker.exit().await;
        });
    }

    #[test]
    fn a_streak_of_slow_rounds_moves_rounds_to_the_worker_thread() {
        runtime(true).block_on(async {
            // Each round is as slow as a failing disk's sync.
            let worker = Recorder::start_idle(SLOW_ROUND + Duration::from_millis(2)).await;
            let here = std::thread::current().id();
            for item in 0..u64::from(SLOW_STREAK) {
                assert_eq!(worker.process(item).await, here);
            }
            // Paused now: the next rounds run on the worker's thread.
            for item in 100..103 {
                assert_ne!(worker.process(item).await, here);
            }
            worker.exit().await;
        });
    }

    #[test]
    fn a_runtime_that_never_goes_idle_hands_its_waiting_wakes_to_the_thread() {
        runtime(true).block_on(async {
            let worker = Recorder::start_idle(Duration::ZERO).await;
            // A task that always has more to do: the runtime never parks, so its hook never
            // runs (timers still fire).
            let busy = Arc::new(AtomicBool::new(true));
            let spinning = busy.clone();
            let spinner = tokio::spawn(async move {
                while spinning.load(Ordering::SeqCst) {
                    tokio::task::yield_now().await;
                }
            });
            let here = std::thread::current().id();
            for item in 0..5 {
                assert_ne!(worker.process(item).await, here, "round {item} ran in a hook that should never run");
            }
            assert_eq!(worker.waker.rounds_when_idle(), 0);
            busy.store(false, Ordering::SeqCst);
            spinner.await.expect("spinner");
            // Idle again: the hook takes the rounds back (the first may still meet the thread
            // finishing its last round, which takes whatever is queued).
            let mut back = false;
            for item in 10..60 {
                if worker.process(item).await == here {
                    back = true;
                    break;
                }
            }
            assert!(back, "the hook never ran a round again");
            worker.exit().await;
        });
    }

    #[test]
    fn the_worker_exits_when_the_hook_finds_it_done() {
        runtime(true).block_on(async {
            let worker = Recorder::start_idle(Duration::ZERO).await;
            worker.process(1).await;
            worker.exit().await;
        });
    }
}

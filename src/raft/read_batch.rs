//! Batched read barriers: one ReadIndex confirmation round is shared by every read waiting at
//! the moment it starts.
//!
//! A read joins the queue; if no round is running, a driver task starts one for everything
//! queued. Reads that arrive while a round is in flight wait for the *next* round: the round
//! in flight may have taken its read index before they arrived, so it could miss a write
//! acknowledged in between. Each round's outcome (read index confirmed and applied, or a
//! refusal) goes to all of its reads. The driver runs rounds until the queue is empty.
//!
//! The round itself (what "confirmed" means) is the caller's: [`ReadBatcher::wait`] takes it
//! as a function, so this module knows nothing of Raft and is tested with scripted rounds.

use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The queue of reads waiting for a round, shared by every connection of a node.
pub struct ReadBatcher<R> {
    queue: Arc<Mutex<Queue<R>>>,
}

struct Queue<R> {
    /// A driver task is running rounds.
    running: bool,
    /// Reads waiting for the next round.
    waiting: Vec<oneshot::Sender<R>>,
    /// Rounds started so far (for tests and figures).
    rounds: u64,
}

impl<R> Default for ReadBatcher<R> {
    fn default() -> Self {
        ReadBatcher { queue: Arc::new(Mutex::new(Queue { running: false, waiting: Vec::new(), rounds: 0 })) }
    }
}

impl<R: Clone + Send + 'static> ReadBatcher<R> {
    /// Waits for the outcome of a round started after this call. `round` runs one
    /// confirmation; it is used only if no driver is running (then it runs the rounds of
    /// everyone queued until the queue is empty). `None` if the driver vanished without an
    /// outcome (the runtime is shutting down).
    pub async fn wait<F, Fut>(&self, round: F) -> Option<R>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = lock(&self.queue);
            q.waiting.push(tx);
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            tokio::spawn(drive(self.queue.clone(), round));
        }
        rx.await.ok()
    }

    /// Rounds started so far.
    pub fn rounds(&self) -> u64 {
        lock(&self.queue).rounds
    }
}

fn lock<R>(queue: &Mutex<Queue<R>>) -> std::sync::MutexGuard<'_, Queue<R>> {
    // The lock is never held across a call that could panic; a poisoned queue is still sound.
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs rounds for whatever is queued, until nothing is.
async fn drive<R, F, Fut>(queue: Arc<Mutex<Queue<R>>>, round: F)
where
    R: Clone,
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
{
    loop {
        let batch = {
            let mut q = lock(&queue);
            if q.waiting.is_empty() {
                q.running = false;
                return;
            }
            q.rounds += 1;
            std::mem::take(&mut q.waiting)
        };
        let outcome = round().await;
        for tx in batch {
            // A read whose client went away has dropped its receiver: nothing to do.
            let _ = tx.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A round that reports its number and waits until the test lets it finish.
    fn gated_round(
        started: Arc<AtomicU64>,
        gate: Arc<tokio::sync::Semaphore>,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = u64> + Send>> + Clone + Send + 'static {
        move || {
            let (started, gate) = (started.clone(), gate.clone());
            Box::pin(async move {
                let n = started.fetch_add(1, Ordering::SeqCst) + 1;
                gate.acquire().await.expect("gate").forget();
                n
            })
        }
    }

    async fn until(f: impl Fn() -> bool) {
        while !f() {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn reads_waiting_together_share_one_round_and_latecomers_get_the_next() {
        let batcher = Arc::new(ReadBatcher::<u64>::default());
        let started = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let round = gated_round(started.clone(), gate.clone());

        // The first read starts round 1; it is held at the gate.
        let first = tokio::spawn({
            let (b, r) = (batcher.clone(), round.clone());
            async move { b.wait(r).await }
        });
        until(|| started.load(Ordering::SeqCst) == 1).await;
        // Ten reads arrive while round 1 is in flight: they must not be answered by it.
        let late: Vec<_> = (0..10)
            .map(|_| {
                let (b, r) = (batcher.clone(), round.clone());
                tokio::spawn(async move { b.wait(r).await })
            })
            .collect();
        until(|| lock(&batcher.queue).waiting.len() == 10).await;
        gate.add_permits(1);
        assert_eq!(first.await.expect("join"), Some(1));
        // All ten share round 2.
        until(|| started.load(Ordering::SeqCst) == 2).await;
        gate.add_permits(1);
        for h in late {
            assert_eq!(h.await.expect("join"), Some(2));
        }
        assert_eq!(batcher.rounds(), 2);
        // The driver stopped with the queue empty; a new read starts a new one.
        until(|| !lock(&batcher.queue).running).await;
        gate.add_permits(1);
        assert_eq!(batcher.wait(round).await, Some(3));
    }

    #[tokio::test]
    async fn a_read_that_gives_up_does_not_stop_the_others() {
        let batcher = Arc::new(ReadBatcher::<u64>::default());
        let started = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let round = gated_round(started.clone(), gate.clone());
        let quitter = tokio::spawn({
            let (b, r) = (batcher.clone(), round.clone());
            async move { b.wait(r).await }
        });
        until(|| started.load(Ordering::SeqCst) == 1).await;
        let stayer = tokio::spawn({
            let (b, r) = (batcher.clone(), round.clone());
            async move { b.wait(r).await }
        });
        until(|| lock(&batcher.queue).waiting.len() == 1).await;
        quitter.abort();
        gate.add_permits(2);
        assert_eq!(stayer.await.expect("join"), Some(2));
    }
}

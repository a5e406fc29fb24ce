//! A count of the log store's appends that other tasks can wait on ([`Appends`]). The proposer
//! uses it to form its next group of writes as soon as the log has taken the previous one
//! (`crate::raft::proposer`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Appends so far; cheap to clone, every clone sees the same count.
#[derive(Clone, Default)]
pub struct Appends {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    count: AtomicU64,
    changed: Notify,
}

impl Appends {
    /// How many appends the log has taken.
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Counts one append and wakes whoever waits for it.
    pub fn bump(&self) {
        self.inner.count.fetch_add(1, Ordering::AcqRel);
        self.inner.changed.notify_waiters();
    }

    /// Resolves once the count is past `seen`.
    pub async fn past(&self, seen: u64) {
        loop {
            // Created before the check: a `Notified` receives `notify_waiters` from creation
            // on, so a bump between the check and the await is not missed.
            let changed = self.inner.changed.notified();
            if self.count() > seen {
                return;
            }
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_wakes_on_the_next_append_and_not_before() {
        let appends = Appends::default();
        let seen = appends.count();
        let waiter = tokio::spawn({
            let appends = appends.clone();
            async move { appends.past(seen).await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "no append yet");
        appends.bump();
        tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("woken").expect("task");
        assert_eq!(appends.count(), seen + 1);
    }

    #[tokio::test]
    async fn a_count_already_past_resolves_at_once() {
        let appends = Appends::default();
        appends.bump();
        appends.bump();
        tokio::time::timeout(Duration::from_secs(10), appends.past(1)).await.expect("resolved");
    }
}

//! CLIENT PAUSE / UNPAUSE: this node holds its clients' commands, as Redis holds a server's.
//! `ALL` holds every command; `WRITE` holds the commands Redis flags `write` or
//! `may_replicate` (PUBLISH, PFCOUNT, ...), the scripts that may write (EVAL, EVALSHA, FCALL)
//! and an EXEC whose transaction holds one, and
//! lets reads go on. A held command waits before it runs (before it is queued inside MULTI,
//! as in Redis) until the pause ends: at its deadline, on this node's clock, or at CLIENT
//! UNPAUSE. A new pause while one is on keeps the stricter mode and the later deadline.
//!
//! Per node: a pause on one node holds the clients connected to it, not writes that other
//! nodes' clients make (the log is the replicas' only input; a paused node still applies).

use crate::cmd::CommandSpec;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The pause in effect.
#[derive(Debug, Clone, Copy)]
struct State {
    all: bool,
    end: Instant,
}

#[derive(Default)]
pub struct Pause {
    state: Mutex<Option<State>>,
    /// Whether `state` may hold a pause: read by every command without the lock.
    on: AtomicBool,
    /// Woken at UNPAUSE (and at a new pause, whose deadline may be later).
    changed: Notify,
}

impl Pause {
    fn lock(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// CLIENT PAUSE: until `end`, all commands (`all`) or the writes only. Redis's
    /// `pauseClients`: the stricter mode and the later deadline win.
    pub fn pause(&self, all: bool, end: Instant) {
        let mut state = self.lock();
        *state = Some(match *state {
            Some(s) if s.end > Instant::now() => State { all: s.all || all, end: s.end.max(end) },
            _ => State { all, end },
        });
        self.on.store(true, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// CLIENT UNPAUSE.
    pub fn unpause(&self) {
        *self.lock() = None;
        self.on.store(false, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Whether a pause is on now (one that is over is forgotten).
    fn current(&self) -> Option<State> {
        let mut state = self.lock();
        if state.is_some_and(|s| s.end <= Instant::now()) {
            *state = None;
            self.on.store(false, Ordering::Relaxed);
        }
        *state
    }

    /// Waits while a pause holds a command that is a write (`write`) or not.
    pub async fn wait(&self, write: impl Fn() -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so an UNPAUSE between the look and the wait counts.
            changed.as_mut().enable();
            let Some(state) = self.current() else { return };
            if !state.all && !write() {
                return;
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(state.end) => {}
            }
        }
    }

    /// Whether any pause may be on (a cheap look for the common case: none).
    #[inline]
    pub fn any(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
}

/// The commands Redis 7.0.15 flags `may_replicate` (a flag COMMAND INFO hides). A script's
/// flags come from its shebang in Redis (`no-writes` scripts are not held); raftis holds
/// every EVAL, EVALSHA and FCALL.
const MAY_REPLICATE: &[&str] = &["pfcount", "publish", "spublish", "eval", "evalsha", "fcall"];

/// Whether a `WRITE` pause holds `argv` (`queued`: an EXEC's transaction): Redis's `write`
/// and `may_replicate` flags, of the subcommand for a container.
pub fn holds_under_write_pause(spec: &'static CommandSpec, argv: &[Bytes], queued: Option<&[Vec<Bytes>]>) -> bool {
    if spec.name == "exec" {
        return queued.is_some_and(|q| {
            q.iter().any(|argv| crate::cmd::lookup(&argv[0]).is_some_and(|s| holds_under_write_pause(s, argv, None)))
        });
    }
    if MAY_REPLICATE.contains(&spec.name) {
        return true;
    }
    let Some(name) = crate::cmd::server::full_command_name(spec, argv) else { return false };
    crate::cmd::server::redis_flagged(&name, &["write"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_write_waits_for_unpause_and_a_read_goes_on_under_write() {
        let pause = std::sync::Arc::new(Pause::default());
        pause.pause(false, Instant::now() + Duration::from_secs(60));
        // A read is not held.
        tokio::time::timeout(Duration::from_secs(5), pause.wait(|| false)).await.expect("a read goes on");
        let waiter = {
            let pause = pause.clone();
            tokio::spawn(async move { pause.wait(|| true).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a write waits");
        pause.unpause();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("unpause frees it").unwrap();
        assert!(!pause.any());
    }

    #[tokio::test]
    async fn the_stricter_mode_and_later_deadline_win_and_a_deadline_ends_it() {
        let pause = Pause::default();
        let now = Instant::now();
        pause.pause(true, now + Duration::from_millis(50));
        pause.pause(false, now + Duration::from_millis(100));
        let s = pause.current().expect("on");
        assert!(s.all && s.end == now + Duration::from_millis(100));
        tokio::time::timeout(Duration::from_secs(5), pause.wait(|| false)).await.expect("ends at its deadline");
        assert!(pause.current().is_none() && !pause.any(), "an expired pause is forgotten");
    }
}

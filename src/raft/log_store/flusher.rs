//! The flusher: the only part of a log store that touches the disk, a worker of its own
//! ([`crate::rt::spawn_worker`]: a dedicated thread, a task under madsim). Each round drains
//! the queue of pending writes, makes every append buffered so far durable with ONE WAL sync
//! (group commit), fires the drained `IOFlushed` callbacks in order, then performs any barrier
//! (vote, purge) and, when due, persists the committed log id. Rounds block on the disk; the
//! shared lock is never held across an fsync of the log, so appends and replication reads go
//! on while a sync is in flight, and the next round starts as soon as one ends. Rolling onto a
//! new WAL segment (creating and syncing it) happens without the lock too.

use super::{meta, Barrier, LogId, Op, Shared};
use crate::raft::wal::WalError;
use crate::rt::{Step, WorkerHandle};
use std::io;
use std::sync::Arc;

/// Starts the flusher; it runs until the store is closed and its queue is empty (or the store
/// has failed). `persisted` is the committed log id found on disk at open.
pub(super) fn spawn(shared: Arc<Shared>, mut persisted: Option<LogId>) -> io::Result<WorkerHandle> {
    let waker = shared.wake.clone();
    crate::rt::spawn_worker("raftis-log-flusher", &waker, move || {
        let closed = shared.lock().closed;
        match (round(&shared, &mut persisted, closed), closed) {
            (true, _) => Step::Again,
            (false, true) => Step::Exit,
            (false, false) => Step::Idle,
        }
    })
}

/// The committed log id to persist in this round, if one is due.
fn committed_due(current: Option<LogId>, persisted: Option<LogId>, every: u64, closed: bool) -> Option<LogId> {
    let c = current?;
    if persisted == Some(c) {
        return None;
    }
    let base = persisted.map_or(0, |p| p.index);
    (closed || c.index >= base.saturating_add(every)).then_some(c)
}

/// Records the first failure: from now on every call fails and the node must stop.
fn set_failed(shared: &Shared, msg: &str) {
    let mut st = shared.lock();
    if st.failed.is_none() {
        tracing::error!(error = %msg, "log storage failed; the node must stop");
        st.failed = Some(msg.to_string());
    }
}

fn fail_ops(ops: Vec<Op>, msg: &str) {
    for op in ops {
        let err = super::failed_err(msg);
        match op {
            Op::Flushed(cb) => cb.io_completed(Err(err)),
            Op::Barrier(_, done) => {
                let _ = done.send(Err(err));
            }
        }
    }
}

/// One flush (blocking on the disk); returns whether there was anything to do.
fn round(shared: &Arc<Shared>, persisted: &mut Option<LogId>, closed: bool) -> bool {
    let (ops, job, committed) = {
        let mut st = shared.lock();
        #[cfg(test)]
        if st.held {
            return false;
        }
        let ops = std::mem::take(&mut st.queue);
        if let Some(msg) = st.failed.clone() {
            drop(st);
            let had = !ops.is_empty();
            fail_ops(ops, &msg);
            // A failed store flushes nothing more; a closed one may exit.
            return had && !closed;
        }
        // Taken before the sync: every entry it covers was appended before, so it is in this
        // job or an earlier one, and the persisted value never runs ahead of the durable log.
        let committed = committed_due(st.committed, *persisted, shared.opts.committed_every, closed);
        if ops.is_empty() && committed.is_none() {
            return false;
        }
        match st.wal.begin_sync() {
            Ok(job) => (ops, job, committed),
            Err(e) => {
                drop(st);
                let msg = e.to_string();
                set_failed(shared, &msg);
                fail_ops(ops, &msg);
                return true;
            }
        }
    };

    let mut job = job;
    let result = job.run();
    let (synced, roll) = {
        let mut st = shared.lock();
        let synced: Result<(), WalError> = st.wal.finish_sync(job, result);
        (synced, st.wal.roll_due())
    };
    // The next segment is created without the lock (a few ms of allocation and syncs, every
    // segment's worth of log), so appends go on meanwhile. Before the barriers: a purge syncs
    // the WAL itself, which must find the new segment in place.
    let synced = synced.and_then(|()| match roll {
        Some(next) => next.create().map(|segment| shared.lock().wal.install_segment(segment)),
        None => Ok(()),
    });
    if let Err(e) = synced {
        let msg = e.to_string();
        set_failed(shared, &msg);
        fail_ops(ops, &msg);
        return true;
    }

    for op in ops {
        match op {
            Op::Flushed(cb) => cb.io_completed(Ok(())),
            Op::Barrier(barrier, done) => {
                let result = do_barrier(shared, barrier);
                if let Err(e) = &result {
                    set_failed(shared, &e.to_string());
                }
                let _ = done.send(result);
            }
        }
    }

    if let Some(c) = committed {
        match meta::write(shared.disk.as_ref(), &shared.dir, meta::COMMITTED, &c) {
            Ok(()) => *persisted = Some(c),
            Err(e) => set_failed(shared, &format!("persisting the committed log id: {e}")),
        }
    }
    true
}

/// A vote or purge, after every earlier append is durable. Durable when this returns `Ok`.
fn do_barrier(shared: &Shared, barrier: Barrier) -> io::Result<()> {
    if let Some(msg) = shared.lock().failed.clone() {
        return Err(super::failed_err(&msg));
    }
    match barrier {
        Barrier::Vote(vote) => {
            meta::write(shared.disk.as_ref(), &shared.dir, meta::VOTE, &vote)?;
            shared.lock().vote = Some(vote);
            Ok(())
        }
        Barrier::Purge(log_id) => {
            // The purged id first: were the WAL purged first, a crash in between would lose
            // the log id (term) of the last purged entry.
            meta::write(shared.disk.as_ref(), &shared.dir, meta::PURGED, &log_id)?;
            let mut st = shared.lock();
            st.recent.purge_up_to(log_id.index);
            st.wal.purge_up_to(log_id.index).map_err(io::Error::other)?;
            st.purged = Some(log_id);
            Ok(())
        }
    }
}

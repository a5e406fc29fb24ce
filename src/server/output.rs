//! Bounds on what a client that does not read can make a node hold: Redis's
//! `client-output-buffer-limit` for the normal class (subscribers have their own class, see
//! `super::pubsub`), and the backpressure that keeps a pipeline's replies from piling up in
//! the first place.
//!
//! Redis runs a client's whole pipeline and queues every reply, so its only bound is the
//! limit. raftis stops running a client's commands while more than [`PAUSE_AT`] bytes of its
//! replies are unsent, and resumes once they are written: however many commands a client
//! pipelines without reading, it costs at most that plus one reply. The limit then works as
//! Redis's does on what is left: unsent replies past the hard limit close the connection at
//! once; past the soft limit for more than its seconds, too.

use super::shared::{Shared, Stats};
use crate::config::ClassLimit;
use bytes::BytesMut;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A connection stops running commands while it has this many reply bytes unsent.
pub const PAUSE_AT: usize = 64 * 1024;

/// Whether `unsent` reply bytes are past the class's hard limit (Redis closes such a client
/// as soon as the reply that crossed it is queued).
pub fn over_hard_limit(unsent: usize, limit: &ClassLimit) -> bool {
    limit.hard != 0 && unsent as u64 > limit.hard
}

/// Logs a client closed for its output, as Redis does.
pub fn log_closed(client: Option<u64>, unsent: usize) {
    tracing::warn!(?client, unsent, "client closed for overcoming of output buffer limits");
}

/// Writes out what `wbuf` holds. `Ok(false)` when the client is to be closed instead: it
/// held more than `limit.soft` bytes and was not all written within `limit.soft_secs`
/// seconds (`None`: no soft limit applies). Partial progress does not restart the count: the
/// commands that wait behind these replies would, in Redis, have kept the buffer growing.
pub async fn write_out(
    stream: &mut TcpStream,
    wbuf: &mut BytesMut,
    shared: &Shared,
    limit: Option<ClassLimit>,
) -> std::io::Result<bool> {
    if wbuf.is_empty() {
        return Ok(true);
    }
    Stats::add(&shared.stats.net_output_bytes, wbuf.len() as u64);
    let over_soft = limit.filter(|l| l.soft != 0 && wbuf.len() as u64 > l.soft);
    // "More than soft_secs": a millisecond past the whole seconds.
    let deadline = over_soft.map(|l| Instant::now() + Duration::from_secs(l.soft_secs) + Duration::from_millis(1));
    let Some(at) = deadline else {
        stream.write_all(wbuf).await?;
        stream.flush().await?;
        wbuf.clear();
        return Ok(true);
    };
    let write = async {
        stream.write_all(wbuf).await?;
        stream.flush().await
    };
    tokio::select! {
        biased;
        written = write => written?,
        _ = tokio::time::sleep_until(at) => return Ok(false),
    }
    wbuf.clear();
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hard_limit_counts_only_when_set() {
        let none = ClassLimit { hard: 0, soft: 0, soft_secs: 0 };
        assert!(!over_hard_limit(usize::MAX, &none), "0 means no limit");
        let hard = ClassLimit { hard: 1000, soft: 0, soft_secs: 0 };
        assert!(!over_hard_limit(1000, &hard), "at the limit is allowed");
        assert!(over_hard_limit(1001, &hard));
    }
}

//! What follows a command that ran (passed every check, as Redis's `call()`), once its reply
//! is ready: the slow log (`super::slowlog`), the latency monitor's `command` /
//! `fast-command` events, the command's statistics and latency histogram (`super::latency`);
//! and the error replies every command gets (INFO errorstats, `rejected_calls`).

use super::client::ClientHandle;
use super::latency::{Ran, StatsBatch};
use super::shared::Shared;
use crate::cmd::CommandSpec;
use crate::protocol::Frame;
use bytes::Bytes;
use std::borrow::Cow;
use std::time::Duration;
use tokio::time::Instant;

/// A command that ran and whose reply is not known yet (a write waiting for its batch, a
/// blocking command): recorded once it is.
pub struct Pending {
    pub started: Instant,
    pub spec: &'static CommandSpec,
    /// The statistics it counts in (see [`stat_key`]).
    pub key: Option<Cow<'static, str>>,
    /// Its arguments while the slow log is on (else empty: not copied for nothing).
    pub argv: Vec<Bytes>,
}

impl Pending {
    pub fn new(shared: &Shared, started: Instant, spec: &'static CommandSpec, argv: &[Bytes]) -> Pending {
        let key = stat_key(spec, argv);
        let argv = if shared.slowlog.enabled() { argv.to_vec() } else { Vec::new() };
        Pending { started, spec, key, argv }
    }

    /// Records it, now that its reply is known (`failed`: an error).
    pub fn finish(self, shared: &Shared, handle: &ClientHandle, stats: &mut StatsBatch, failed: bool) {
        let elapsed = self.started.elapsed();
        let call = Call { spec: self.spec, argv: &self.argv, key: self.key, elapsed, failed };
        after_call(shared, handle, call, stats);
    }
}

/// A command that ran, as [`after_call`] records it.
pub struct Call<'a> {
    pub spec: &'a CommandSpec,
    /// Its arguments (empty: the slow log was off when it started).
    pub argv: &'a [Bytes],
    /// The statistics it counts in (see [`stat_key`]).
    pub key: Option<Cow<'static, str>>,
    pub elapsed: Duration,
    /// It answered an error (INFO commandstats' `failed_calls`).
    pub failed: bool,
}

/// The name `argv` counts under in the command statistics and histograms: the command's, or
/// `container|sub` for Redis's containers (an unknown subcommand counts nowhere).
pub fn stat_key(spec: &'static CommandSpec, argv: &[Bytes]) -> Option<Cow<'static, str>> {
    crate::cmd::server::full_command_name(spec, argv)
}

/// Counts an error reply sent to a client (INFO errorstats), and for a command refused before
/// it ran (`ran`: false) its `rejected_calls`.
pub fn error_replied(shared: &Shared, reply: &Frame, ran: bool, argv: &[Bytes]) {
    let Frame::Error(message) = reply else { return };
    shared.latency.error_reply(message);
    if ran {
        return;
    }
    let spec = argv.first().and_then(|name| crate::cmd::lookup(name));
    if let Some(key) = spec.and_then(|spec| stat_key(spec, argv)) {
        shared.latency.reject(key);
    }
}

/// Records a command that ran: its histogram (counted in `stats`, which the caller merges
/// into the node's before the reply goes out), the latency event, the slow log.
pub fn after_call(shared: &Shared, handle: &ClientHandle, call: Call<'_>, stats: &mut StatsBatch) {
    let Call { spec, argv, key, elapsed, failed } = call;
    let us = elapsed.as_micros() as u64;
    let latency = &shared.latency;
    if us / 1000 >= latency.threshold_ms() && latency.threshold_ms() > 0 {
        let fast = key.as_deref().map_or(spec.has_flag("fast"), crate::cmd::server::redis_fast);
        latency.add_sample_if_needed(if fast { "fast-command" } else { "command" }, us / 1000);
    }
    if let Some(key) = key {
        // Redis counts whole microseconds, in nanoseconds.
        stats.record(key, Ran { ns: us * 1000, failed, tracked: latency.tracking() });
    }
    // EXEC's commands are logged one by one instead (Redis's `skip_slowlog`).
    if argv.is_empty() || (shared.slowlog.logs(us) && spec.has_flag("skip_slowlog")) {
        return;
    }
    shared.slowlog.push_if_needed(argv, us, || {
        let info = handle.info.lock().unwrap_or_else(|p| p.into_inner());
        (info.addr.to_string(), info.name.clone())
    });
}

//! What follows a command that ran (passed every check, as Redis's `call()`), once its reply
//! is ready: the slow log (`super::slowlog`), the latency monitor's `command` /
//! `fast-command` events and the command's latency histogram (`super::latency`).

use super::client::ClientHandle;
use super::latency::HistogramBatch;
use super::shared::Shared;
use crate::cmd::CommandSpec;
use bytes::Bytes;
use std::borrow::Cow;
use std::time::Duration;
use tokio::time::Instant;

/// A command that ran and whose reply is not known yet (a write waiting for its batch, a
/// blocking command): recorded once it is.
pub struct Pending {
    pub started: Instant,
    pub spec: &'static CommandSpec,
    /// The histogram it counts in (see [`histogram_key`]).
    pub key: Option<Cow<'static, str>>,
    /// Its arguments while the slow log is on (else empty: not copied for nothing).
    pub argv: Vec<Bytes>,
}

impl Pending {
    /// Whether commands need to be followed at all (the slow log or the histograms are on).
    pub fn wanted(shared: &Shared) -> bool {
        shared.slowlog.enabled() || shared.latency.tracking() || shared.latency.threshold_ms() > 0
    }

    pub fn new(shared: &Shared, started: Instant, spec: &'static CommandSpec, argv: &[Bytes]) -> Pending {
        let key = histogram_key(shared, spec, argv);
        let argv = if shared.slowlog.enabled() { argv.to_vec() } else { Vec::new() };
        Pending { started, spec, key, argv }
    }

    pub fn finish(self, shared: &Shared, handle: &ClientHandle, histograms: &mut HistogramBatch) {
        let call = Call { spec: self.spec, argv: &self.argv, key: self.key, elapsed: self.started.elapsed() };
        after_call(shared, handle, call, histograms);
    }
}

/// A command that ran, as [`after_call`] records it.
pub struct Call<'a> {
    pub spec: &'a CommandSpec,
    /// Its arguments (empty: the slow log was off when it started).
    pub argv: &'a [Bytes],
    /// The histogram it counts in (see [`histogram_key`]).
    pub key: Option<Cow<'static, str>>,
    pub elapsed: Duration,
}

/// The histogram `argv` counts in while `latency-tracking` is on: the command's name, or
/// `container|sub` for Redis's containers (an unknown subcommand counts nowhere).
pub fn histogram_key(shared: &Shared, spec: &'static CommandSpec, argv: &[Bytes]) -> Option<Cow<'static, str>> {
    if !shared.latency.tracking() {
        return None;
    }
    crate::cmd::server::full_command_name(spec, argv)
}

/// Records a command that ran: its histogram (counted in `histograms`, which the caller merges
/// into the node's before the reply goes out), the latency event, the slow log.
pub fn after_call(shared: &Shared, handle: &ClientHandle, call: Call<'_>, histograms: &mut HistogramBatch) {
    let Call { spec, argv, key, elapsed } = call;
    let us = elapsed.as_micros() as u64;
    let latency = &shared.latency;
    if us / 1000 >= latency.threshold_ms() && latency.threshold_ms() > 0 {
        let fast = key.as_deref().map_or(spec.has_flag("fast"), crate::cmd::server::redis_fast);
        latency.add_sample_if_needed(if fast { "fast-command" } else { "command" }, us / 1000);
    }
    if let Some(key) = key {
        // Redis counts whole microseconds, in nanoseconds.
        histograms.record(key, us * 1000);
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

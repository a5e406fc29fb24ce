//! SEAM: the runtime. Code that must differ between real tokio and the madsim simulator lives
//! here and only here: shutdown signals, where blocking disk I/O runs ([`run_blocking`], and
//! [`spawn_worker`] for a loop of it, whose rounds `on_runtime_idle` may run on the runtime's
//! thread), long reads off the runtime thread ([`run_long`], [`write_when_free`]), the async
//! runtime openraft is given (`Runtime`), and the simulation-only planted
//! bugs ([`bugs`]).

mod blocking;
pub mod bugs;
#[cfg(not(madsim))]
mod idle;
mod long;
#[cfg(madsim)]
mod madsim_runtime;
pub mod memory;
mod shutdown;
pub mod watch;
mod worker;

pub use blocking::run_blocking;
#[cfg(not(madsim))]
pub use idle::on_runtime_idle;
pub use long::{block_thread_for, run_long, write_when_free};
pub use shutdown::{Shutdown, ShutdownSignal};
pub use worker::{spawn_worker, Step, Waker, WorkerHandle};

#[cfg(madsim)]
pub use madsim_runtime::{work_time::bound_us as blocking_work_bound_us, MadsimRng, MadsimRuntime, MadsimTimeout};
pub use watch::{DetWatch, DetWatchReceiver, DetWatchSender};

/// The `AsyncRuntime` for openraft's type config: tokio in production, the simulator under
/// `--cfg madsim`. Node code names only this alias, so it is the same code in both worlds.
#[cfg(not(madsim))]
pub type Runtime = openraft_rt_tokio::TokioRuntime;
/// The `AsyncRuntime` for openraft's type config: tokio in production, the simulator under
/// `--cfg madsim`. Node code names only this alias, so it is the same code in both worlds.
#[cfg(madsim)]
pub type Runtime = MadsimRuntime;

/// Resolves on SIGTERM or Ctrl-C. Under madsim only Ctrl-C exists (the simulator's
/// `send_ctrl_c`), since simulated processes receive no Unix signals.
pub async fn terminate_signal() {
    #[cfg(all(unix, not(madsim)))]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

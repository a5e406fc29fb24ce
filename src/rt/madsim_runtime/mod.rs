//! `MadsimRuntime`: openraft's `AsyncRuntime` on the madsim simulator (compiled only with
//! `--cfg madsim`). Tasks, time, timeouts and randomness come from madsim, so they follow the
//! simulation's virtual clock and seed; channels are `tokio::sync` (which needs no runtime and
//! is deterministic under madsim) except the watch, which is our `DetWatch`.

mod rng;
mod timeout;
pub mod work_time;

use std::future::Future;
use std::io;
use std::time::Duration;

use openraft_rt::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::{TokioMpsc, TokioMutex, TokioOneshot};

pub use rng::MadsimRng;
pub use timeout::MadsimTimeout;

use super::watch::DetWatch;

/// The simulator as an openraft runtime. Node code uses only its associated functions; a value
/// of the type (from `new`) is a whole fresh simulation, which only runtime tests need.
pub struct MadsimRuntime {
    sim: madsim::runtime::Runtime,
}

impl std::fmt::Debug for MadsimRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MadsimRuntime").finish_non_exhaustive()
    }
}

impl AsyncRuntime for MadsimRuntime {
    type JoinError = madsim::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = madsim::task::JoinHandle<T>;
    type Sleep = madsim::time::Sleep;
    // madsim virtualises the clock std reads (`clock_gettime`), so `std::time::Instant` is
    // virtual time inside a simulation; `madsim::time::Instant` is the same type.
    type Instant = std::time::Instant;
    type TimeoutError = madsim::time::error::Elapsed;
    type Timeout<R, F: Future<Output = R> + OptionalSend> = MadsimTimeout<F>;
    type ThreadLocalRng = MadsimRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        madsim::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        madsim::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        madsim::time::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        MadsimTimeout::new(future, madsim::time::sleep(duration))
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        MadsimTimeout::new(future, madsim::time::sleep_until(deadline))
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        MadsimRng::current()
    }

    type Mpsc = TokioMpsc;
    type Watch = DetWatch;
    type Oneshot = TokioOneshot;
    type Mutex<T: OptionalSend + 'static> = TokioMutex<T>;

    /// A fresh simulation (seed 0, default config) for runtime tests; `threads` is meaningless
    /// in a single-threaded simulator.
    fn new(_threads: usize) -> Self {
        Self { sim: madsim::runtime::Runtime::new() }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.sim.block_on(future)
    }

    /// The default starts an OS thread, which madsim forbids (and whose timing it could not
    /// control). The closure runs on a simulated task instead: like a thread it runs even if
    /// the returned future is dropped. It takes virtual time drawn from the seed before it
    /// starts and before its result is seen ([`work_time`]), so other tasks run meanwhile as
    /// they would beside a real thread.
    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let task = madsim::task::spawn(async move {
            work_time::pass().await;
            let out = f();
            work_time::pass().await;
            out
        });
        async move { task.await.map_err(io::Error::from) }
    }
}

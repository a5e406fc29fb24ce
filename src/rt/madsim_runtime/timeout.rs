//! A nameable timeout future: `AsyncRuntime::Timeout` must be a named type, and
//! `madsim::time::timeout` returns an `impl Future`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use madsim::time::error::Elapsed;
use madsim::time::Sleep;

pin_project_lite::pin_project! {
    /// Resolves to the future's output, or to `Elapsed` once the sleep finishes first.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct MadsimTimeout<F> {
        #[pin]
        future: F,
        #[pin]
        sleep: Sleep,
    }
}

impl<F> MadsimTimeout<F> {
    pub(super) fn new(future: F, sleep: Sleep) -> Self {
        Self { future, sleep }
    }
}

impl<F: Future> Future for MadsimTimeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The future first, as madsim's and tokio's timeouts do: a result that is ready at the
        // deadline is returned, not discarded.
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        this.sleep.poll(cx).map(|()| Err(Elapsed))
    }
}

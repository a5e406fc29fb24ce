//! SEAM: the runtime. Code that must differ between real tokio and the madsim simulator lives
//! here and only here (the openraft runtime adapter joins it with the replicated node).

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

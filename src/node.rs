//! `start()`: brings a node up (listener, engine, background tasks) and returns a handle to
//! stop it. `main` and the simulator both call this; nothing else starts a node.

use crate::config::Config;
use crate::server::{self, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A running node.
pub struct NodeHandle {
    /// Where clients connect.
    pub client_addr: SocketAddr,
    pub shared: Arc<Shared>,
    serve: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// Stops accepting, closes connections and waits for the listener to finish.
    pub async fn shutdown(self) {
        self.shared.shutdown();
        let _ = self.serve.await;
    }

    /// Resolves when the node has been asked to stop (SHUTDOWN, signal, or `shutdown`).
    pub async fn stopped(&self) {
        let mut rx = self.shared.shutdown_signal();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// Starts a node with `config`.
pub async fn start(config: Config) -> Result<NodeHandle, StartError> {
    let addr = format!("{}:{}", config.bind, config.port);
    let listener = TcpListener::bind(&addr).await.map_err(|source| StartError::Bind { addr: addr.clone(), source })?;
    let client_addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
    let shared = Shared::new(config, client_addr.port());
    crate::server::spawn_active_expiry(shared.clone());
    let serve = tokio::spawn(server::serve(listener, shared.clone()));
    tracing::info!(%client_addr, "raftis ready to accept connections");
    Ok(NodeHandle { client_addr, shared, serve })
}

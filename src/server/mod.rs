//! The client-facing server: the accept loop, one task per connection, pipelining, client
//! state, and the shared server state (settings, statistics, the client registry).

mod acl;
mod blocked;
mod calls;
mod client;
mod cluster_scan;
mod connection;
mod dispatch;
mod engine;
mod evict;
mod expire;
mod fanout;
pub mod latency;
pub mod loading;
pub mod memory;
mod migrate;
pub mod monitor;
mod output;
pub mod pause;
mod pipeline;
pub mod pubsub;
mod shared;
pub mod slowlog;
pub mod tracking;

pub use client::{Client, ClientHandle, ClientInfo};
pub use engine::Engine;
pub use evict::EVICT_COMMAND;
pub use expire::{spawn_active_expiry, EXPIRE_COMMAND};
pub use shared::{now_ms, Shared, Stats};

use std::sync::Arc;
use tokio::net::TcpListener;

/// Accepts clients until `shared.shutdown` fires.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let shared = shared.clone();
                tokio::spawn(async move { connection::run(stream, peer, shared, bytes::BytesMut::new()).await });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    tracing::info!("listener stopped");
}

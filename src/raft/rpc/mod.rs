//! The internal binary protocol between raftis nodes, over TCP: Raft's messages, snapshots in
//! chunks, and client commands forwarded from followers to leaders.
//!
//! - [`wire`]: the versioned, length-prefixed frame format.
//! - [`message`]: the request and response enums carried in frames.
//! - [`client`]: [`RpcClient`] (one multiplexed connection per peer, reconnect with backoff,
//!   a deadline on every call) and [`RpcPool`].
//! - [`server`]: [`serve_rpc`] and the [`RpcHandler`] trait the node implements.
//! - [`router`]: [`GroupRouter`], which hands each request to its Raft group's handler.
//! - [`snapshot`]: streaming a `SnapshotFile` out in chunks, and assembling one on receipt.
//!
//! Runs unchanged on madsim: every batch of frames is flushed (simulated TCP sends only on
//! flush), streams are split with `tokio::io::split` (there is no `into_split`), and the
//! stream lives inside tasks, never in a `Sync` structure.

pub mod client;
mod conn;
pub mod message;
pub mod router;
pub mod server;
pub mod snapshot;
pub mod testing;
pub mod wire;

pub use client::{RpcClient, RpcClientConfig, RpcError, RpcPool};
pub use message::{ForwardBatch, ForwardFlags, ForwardRequest, PubMessage, RemoteError, RpcRequest, RpcResponse};
pub use router::GroupRouter;
pub use server::{serve_rpc, HandlerError, RpcHandler, RpcServerConfig};
pub use snapshot::{send_snapshot, InboxError, SendSnapshotError, SnapshotInbox};

//! Pub/Sub on a node: the registry of subscriptions and local delivery ([`hub`]), each
//! subscriber's bounded mailbox ([`mailbox`]), and the commands of a connection
//! ([`commands`]). Messages published on other nodes arrive through the Raft group's
//! broadcast (`crate::raft::broadcast`), never through the log.

mod commands;
mod hub;
mod mailbox;

pub use commands::{in_subscribed_mode, refuse_in_subscribed_mode, run, unsubscribe_all, Subscriptions};
pub use hub::{PubSub, Space};
pub use mailbox::{Limit, Mailbox, Message};

//! Per-connection state ([`Client`]) and the part of it other connections may see or act on
//! ([`ClientHandle`]: CLIENT LIST, CLIENT KILL).

use crate::cmd::CommandSpec;
use crate::protocol::RespVersion;
use crate::store::WatchedKey;
use bytes::Bytes;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::Notify;

/// What CLIENT LIST / CLIENT INFO show about a connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub name: Bytes,
    pub db: usize,
    pub resp: RespVersion,
    pub created_ms: u64,
    pub last_interaction_ms: u64,
    /// `name` or `container|sub`; borrowed from the command table for plain commands.
    pub last_cmd: Cow<'static, str>,
    /// Commands queued in MULTI, -1 outside MULTI.
    pub multi: i64,
    pub watching: usize,
    /// CLIENT LIST flags besides MULTI ('r' READONLY, 'e' NO-EVICT, 'T' NO-TOUCH).
    pub readonly: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    /// Waiting in a blocking command (flag 'b').
    pub blocked: bool,
    /// Pub/Sub subscriptions: channels, patterns, shard channels (flag 'P' when any).
    pub subs: (usize, usize, usize),
    /// In MONITOR mode (flag 'O').
    pub monitor: bool,
    /// CLIENT TRACKING: on (flag 't'), BCAST (flag 'B'), the redirection (`redir=`, -1 when
    /// off). A broken redirection (flag 'R') is known to the tracking table only.
    pub tracking: Option<super::tracking::Mode>,
    /// The tracking redirection's client left (flag 'R', TRACKINGINFO's `broken_redirect`).
    pub tracking_broken: bool,
    /// The ACL user the connection runs as (`user=`).
    pub user: Bytes,
}

/// Registry entry of a connection.
pub struct ClientHandle {
    pub info: Mutex<ClientInfo>,
    /// Fired by CLIENT KILL.
    pub kill: Notify,
    /// The connection's mailbox once it has one (subscribed, monitoring or tracking): where
    /// invalidations redirected to it go (`super::tracking`).
    pub mailbox: std::sync::OnceLock<std::sync::Arc<super::pubsub::Mailbox>>,
}

impl ClientHandle {
    pub fn info(&self) -> ClientInfo {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads a field of the info without copying the rest.
    pub fn peek<R>(&self, f: impl FnOnce(&ClientInfo) -> R) -> R {
        f(&self.info.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn update(&self, f: impl FnOnce(&mut ClientInfo)) {
        f(&mut self.info.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The connection's own state.
pub struct Client {
    pub id: u64,
    pub resp: RespVersion,
    pub db: usize,
    pub name: Bytes,
    pub authenticated: bool,
    /// The ACL user the connection runs as (`default` until AUTH or HELLO AUTH).
    pub user: Bytes,
    /// The users' publication (`crate::acl::AclView::version`) at which `user` was found to
    /// be unrestricted; 0: not known (set back on AUTH and RESET).
    pub acl_open_at: u64,
    /// Commands queued since MULTI; `None` outside a transaction.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command failed to queue: EXEC will refuse the transaction.
    pub multi_failed: bool,
    pub watched: Vec<WatchedKey>,
    /// Multi-raft: the slot of the keys of the open transaction and the WATCHed keys (they
    /// must all share it, as in Redis Cluster).
    pub tx_slot: Option<u16>,
    /// READONLY: reads may be served from this node's possibly stale copy.
    pub readonly: bool,
    /// Close the connection once the pending replies are written (QUIT, CLIENT KILL).
    pub close_after_reply: bool,
    /// CLIENT REPLY OFF: replies are dropped until CLIENT REPLY ON.
    pub reply_off: bool,
    /// Replies still to drop (CLIENT REPLY SKIP drops its own and the next one).
    pub skip_replies: u8,
    /// CLIENT NO-EVICT / NO-TOUCH: accepted and shown in CLIENT LIST flags only.
    pub no_evict: bool,
    pub no_touch: bool,
    /// The last command and its time, not yet copied into the [`ClientHandle`]: reads only
    /// note them here, and the connection publishes them once per batch of commands.
    pub pending_info: Option<(Cow<'static, str>, u64)>,
    /// The last command looked up: a pipeline repeats the same command, and comparing its
    /// name is cheaper than a table lookup.
    pub last_spec: Option<&'static CommandSpec>,
    /// Pub/Sub subscriptions and mailbox, from the first (P|S)SUBSCRIBE (or MONITOR) on.
    pub pubsub: Option<Box<super::pubsub::Subscriptions>>,
    /// In MONITOR mode: the mailbox gets the node's commands (`super::monitor`).
    pub monitor: bool,
    /// Set when the command being executed passed every check and ran (Redis's `call()`):
    /// the connection then logs it in the slow log (`super::slowlog`) once it has its reply.
    pub called: Option<&'static CommandSpec>,
    /// The blocking command waiting for its reply, to log once it has it (slow log on).
    pub blocked_call: Option<super::calls::Pending>,
    /// CLIENT TRACKING's mode while on (`super::tracking`).
    pub tracking: Option<super::tracking::Mode>,
    /// CLIENT CACHING YES/NO was given: applies to the next command (a CLIENT subcommand
    /// keeps it; a transaction keeps it to EXEC).
    pub caching: bool,
    /// ASKING was sent: the next command may run on a slot this node's group imports
    /// (Redis's `CLIENT_ASKING`; cleared after any other command outside a transaction).
    pub asking: bool,
    /// Set by routing when the command being executed was sent to an importing group because
    /// of ASKING: it then runs wrapped (`cmd::cluster::asking`).
    pub routed_asking: bool,
}

impl Client {
    pub fn new(id: u64, authenticated: bool) -> Self {
        Client {
            id,
            resp: RespVersion::Resp2,
            db: 0,
            name: Bytes::new(),
            authenticated,
            user: Bytes::from_static(b"default"),
            acl_open_at: 0,
            multi: None,
            multi_failed: false,
            watched: Vec::new(),
            tx_slot: None,
            readonly: false,
            close_after_reply: false,
            reply_off: false,
            skip_replies: 0,
            no_evict: false,
            no_touch: false,
            pending_info: None,
            last_spec: None,
            pubsub: None,
            monitor: false,
            called: None,
            blocked_call: None,
            tracking: None,
            caching: false,
            asking: false,
            routed_asking: false,
        }
    }

    /// Copies the noted last command and interaction time into `handle` (for CLIENT LIST).
    pub fn publish_info(&mut self, handle: &ClientHandle) {
        if let Some((cmd, at)) = self.pending_info.take() {
            handle.update(|i| {
                i.last_interaction_ms = at;
                i.last_cmd = cmd;
            });
        }
    }

    /// Whether the reply of the command just run is sent (CLIENT REPLY OFF/SKIP); consumes
    /// one pending skip.
    pub fn take_reply_allowed(&mut self) -> bool {
        if self.skip_replies > 0 {
            self.skip_replies -= 1;
            return false;
        }
        !self.reply_off
    }

    /// Leaves MULTI and forgets WATCHed keys (after EXEC, DISCARD, RESET).
    pub fn end_transaction(&mut self) {
        self.multi = None;
        self.multi_failed = false;
        self.watched.clear();
        self.tx_slot = None;
    }
}

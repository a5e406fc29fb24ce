//! The history of a simulated run: every client operation with the virtual times it was
//! invoked and completed and its outcome. The workload records it (`History::invoke`, then
//! `History::complete`); the checkers in `check/` read it. Plain data, no madsim: the
//! checkers' unit tests build histories by hand and also run outside the simulator.

use std::fmt;

/// One Redis operation of the workload. Every operation touches one key, so histories can be
/// checked key by key; a transaction (MULTI ... EXEC) holds operations on a single key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Get {
        key: String,
    },
    Set {
        key: String,
        value: String,
    },
    /// INCRBY of `by`: each client increments by its own power of two, so that concurrent
    /// increments give replies that tell which client got which (a reply handed to the wrong
    /// client is caught) and every set of them sums differently.
    Incr {
        key: String,
        by: i64,
    },
    /// INCRBY done by a Lua script (GET, add, SET: one log entry, so atomic on every
    /// replica): checked as INCRBY.
    ScriptIncr {
        key: String,
        by: i64,
    },
    Del {
        key: String,
    },
    Append {
        key: String,
        value: String,
    },
    /// RPUSH of a value unique in the whole run.
    RPush {
        key: String,
        value: String,
    },
    /// LRANGE key 0 -1.
    LRange {
        key: String,
    },
    /// MULTI, these commands (all on one key), EXEC.
    Multi(Vec<OpKind>),
    /// RPUSH of a value unique in the whole run onto a queue key (popped by [`OpKind::BPop`]).
    QPush {
        key: String,
        value: String,
    },
    /// BLPOP on queue keys with a timeout in ms (0: forever); the reply is `[key, value]` or nil.
    BPop {
        keys: Vec<String>,
        timeout_ms: u64,
    },
    /// LRANGE key 0 -1 of a queue key (the final reads).
    QRange {
        key: String,
    },
    /// XADD key * v value, the value unique in the run; the reply is the new id.
    XAdd {
        key: String,
        value: String,
    },
    /// XGROUP CREATE key g 0 MKSTREAM (BUSYGROUP once the group exists).
    XGroupCreate {
        key: String,
    },
    /// XREADGROUP GROUP g consumer COUNT 1 [BLOCK ms] STREAMS key >: the reply is `[id, value]`
    /// of the delivered entry, or nil.
    XReadGroup {
        key: String,
        consumer: String,
        block_ms: Option<u64>,
    },
    /// XACK key g id of an entry the client was delivered.
    XAck {
        key: String,
        id: String,
    },
    /// XRANGE key - + (final read): the reply is `[id, value, id, value, ...]`.
    XRangeAll {
        key: String,
    },
    /// XPENDING key g - + 1000000 (final read): the reply is `[id, consumer, ...]`.
    XPendingAll {
        key: String,
    },
    /// RESTORE key ttl_ms <DUMP of value> REPLACE: a value unique in the run that expires
    /// `ttl_ms` after the leader stamped the write (checked by `check::expiry`).
    RestoreTtl {
        key: String,
        value: String,
        ttl_ms: u64,
    },
    /// PTTL key: the reply is the milliseconds left, -2 (no key) or -1 (no TTL).
    Pttl {
        key: String,
    },
    /// PFADD key of one element unique in the run: the reply is 1 or 0 (registers changed or
    /// not); checked with [`OpKind::PfCount`] by `check::hll`.
    PfAdd {
        key: String,
        value: String,
    },
    /// PFCOUNT key: the reply is the HyperLogLog's estimate of the distinct elements added.
    PfCount {
        key: String,
    },
}

impl OpKind {
    /// The key the operation touches (for a transaction: the key of its first command).
    pub fn key(&self) -> &str {
        match self {
            OpKind::Get { key }
            | OpKind::Set { key, .. }
            | OpKind::Incr { key, .. }
            | OpKind::ScriptIncr { key, .. }
            | OpKind::Del { key }
            | OpKind::Append { key, .. }
            | OpKind::RPush { key, .. }
            | OpKind::LRange { key }
            | OpKind::QPush { key, .. }
            | OpKind::QRange { key }
            | OpKind::XAdd { key, .. }
            | OpKind::XGroupCreate { key }
            | OpKind::XReadGroup { key, .. }
            | OpKind::XAck { key, .. }
            | OpKind::XRangeAll { key }
            | OpKind::XPendingAll { key }
            | OpKind::RestoreTtl { key, .. }
            | OpKind::Pttl { key }
            | OpKind::PfAdd { key, .. }
            | OpKind::PfCount { key } => key,
            OpKind::BPop { keys, .. } => keys.first().map_or("", String::as_str),
            OpKind::Multi(ops) => ops.first().map_or("", OpKind::key),
        }
    }

    /// Whether the operation increments its key (INCR, or the script doing it).
    pub fn is_incr(&self) -> bool {
        matches!(self, OpKind::Incr { .. } | OpKind::ScriptIncr { .. })
    }

    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        match self {
            OpKind::Get { .. }
            | OpKind::LRange { .. }
            | OpKind::QRange { .. }
            | OpKind::XRangeAll { .. }
            | OpKind::XPendingAll { .. }
            | OpKind::Pttl { .. } => false,
            // PFCOUNT goes through the log (it caches the count in the value) but changes no
            // element: for the checkers it is a read.
            OpKind::PfCount { .. } => false,
            OpKind::Multi(ops) => ops.iter().any(OpKind::is_write),
            _ => true,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpKind::Get { key } => write!(f, "GET {key}"),
            OpKind::Set { key, value } => write!(f, "SET {key} {value}"),
            OpKind::Incr { key, by } => write!(f, "INCRBY {key} {by}"),
            OpKind::ScriptIncr { key, by } => write!(f, "EVAL <incrby> 1 {key} {by}"),
            OpKind::Del { key } => write!(f, "DEL {key}"),
            OpKind::Append { key, value } => write!(f, "APPEND {key} {value}"),
            OpKind::RPush { key, value } => write!(f, "RPUSH {key} {value}"),
            OpKind::LRange { key } | OpKind::QRange { key } => write!(f, "LRANGE {key} 0 -1"),
            OpKind::QPush { key, value } => write!(f, "RPUSH {key} {value}"),
            OpKind::BPop { keys, timeout_ms } => write!(f, "BLPOP {} {}", keys.join(" "), *timeout_ms as f64 / 1000.0),
            OpKind::XAdd { key, value } => write!(f, "XADD {key} * v {value}"),
            OpKind::XGroupCreate { key } => write!(f, "XGROUP CREATE {key} g 0 MKSTREAM"),
            OpKind::XReadGroup { key, consumer, block_ms } => match block_ms {
                Some(ms) => write!(f, "XREADGROUP GROUP g {consumer} COUNT 1 BLOCK {ms} STREAMS {key} >"),
                None => write!(f, "XREADGROUP GROUP g {consumer} COUNT 1 STREAMS {key} >"),
            },
            OpKind::XAck { key, id } => write!(f, "XACK {key} g {id}"),
            OpKind::XRangeAll { key } => write!(f, "XRANGE {key} - +"),
            OpKind::XPendingAll { key } => write!(f, "XPENDING {key} g - + 1000000"),
            OpKind::RestoreTtl { key, value, ttl_ms } => write!(f, "RESTORE {key} {ttl_ms} <{value}> REPLACE"),
            OpKind::Pttl { key } => write!(f, "PTTL {key}"),
            OpKind::PfAdd { key, value } => write!(f, "PFADD {key} {value}"),
            OpKind::PfCount { key } => write!(f, "PFCOUNT {key}"),
            OpKind::Multi(ops) => {
                write!(f, "MULTI")?;
                for op in ops {
                    write!(f, "; {op}")?;
                }
                write!(f, "; EXEC")
            }
        }
    }
}

/// A reply the server gave, reduced to what the checkers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` (or any simple string).
    Ok,
    Nil,
    Int(i64),
    Str(String),
    List(Vec<String>),
    /// An error reply the operation's semantics produce (e.g. INCR of a non-integer): the
    /// command ran and had no effect.
    Error(String),
    /// EXEC's replies, one per command.
    Multi(Vec<Reply>),
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered; the operation took effect exactly once (for a write) or observed
    /// this state (for a read).
    Ok(Reply),
    /// The operation definitely did not and will not take effect (`-CLUSTERDOWN`, connection
    /// refused before sending, EXECABORT ...).
    Failed(String),
    /// It may or may not have taken effect (timeout, connection lost after sending,
    /// `-TRYAGAIN`, or still pending when the run ended).
    Unknown(String),
}

/// One recorded operation. Times are virtual nanoseconds since the start of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Index in the history (in invocation order).
    pub id: usize,
    /// The client (logical process) that ran it; one operation at a time per client.
    pub client: u32,
    /// The node the client sent it to.
    pub node: u64,
    pub kind: OpKind,
    pub invoke_ns: u64,
    /// When the outcome was known; `u64::MAX` for an operation still pending at the end.
    pub complete_ns: u64,
    pub outcome: Outcome,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = if self.complete_ns == u64::MAX { "end".to_string() } else { ms(self.complete_ns) };
        write!(
            f,
            "#{} c{} n{} [{} .. {}] {} => {:?}",
            self.id,
            self.client,
            self.node,
            ms(self.invoke_ns),
            end,
            self.kind,
            self.outcome
        )
    }
}

fn ms(ns: u64) -> String {
    format!("{}.{:03}ms", ns / 1_000_000, (ns / 1_000) % 1_000)
}

/// All operations of a run.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    /// Records the start of an operation; returns its id for [`History::complete`].
    pub fn invoke(&mut self, client: u32, node: u64, kind: OpKind, now_ns: u64) -> usize {
        let id = self.ops.len();
        let outcome = Outcome::Unknown("pending".into());
        self.ops.push(Op { id, client, node, kind, invoke_ns: now_ns, complete_ns: u64::MAX, outcome });
        id
    }

    /// Records how operation `id` ended.
    pub fn complete(&mut self, id: usize, outcome: Outcome, now_ns: u64) {
        if let Some(op) = self.ops.get_mut(id) {
            op.outcome = outcome;
            op.complete_ns = now_ns;
        }
    }

    /// Operations on `key`, in invocation order.
    pub fn for_key<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Op> + 'a {
        self.ops.iter().filter(move |op| op.kind.key() == key)
    }

    /// The distinct keys of the history, sorted.
    pub fn keys(&self) -> Vec<String> {
        let keys: std::collections::BTreeSet<&str> = self.ops.iter().map(|op| op.kind.key()).collect();
        keys.into_iter().map(str::to_string).collect()
    }
}

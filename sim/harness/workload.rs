//! The chaos workload: logical clients on their own simulated hosts send GET, SET, INCR, DEL,
//! APPEND, RPUSH of unique values, LRANGE, single-key MULTI/EXEC, RPUSH / BLPOP on queue keys,
//! a Lua script that increments a counter by its INCRBY amount with GET and SET (EVALSHA, EVAL
//! when the cache lacks it), and XADD / XREADGROUP (blocking or not) / XACK on a stream with a
//! consumer group, to any node of the cluster over simulated TCP (following `-MOVED`, and
//! `-ASK` with ASKING, in a sharded run, see [`Shared::run_routed`]), one operation at a time
//! each,
//! and record
//! every operation in the [`History`] with its invocation and completion (virtual) times and
//! outcome.
//!
//! Outcomes follow the error contract of `src/raft/node.rs`: `-CLUSTERDOWN` (and EXECABORT, or
//! a connection that never opened) mean not applied; `-TRYAGAIN`, a timeout or a lost
//! connection mean unknown; an error the command itself produces (WRONGTYPE, not an integer)
//! is an ordinary reply: the command ran and changed nothing.

use super::nodes::client_addr;
use crate::client::SimClient;
use crate::history::{History, OpKind, Outcome, Reply};
use raftis::protocol::Frame;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Keys holding integers: GET, SET of unique numbers, INCR, DEL.
pub const COUNTERS: [&str; 3] = ["k0", "k1", "k2"];
/// String keys grown by APPEND of unique tokens; GET, DEL.
pub const STRINGS: [&str; 1] = ["a0"];
/// List keys: RPUSH of unique values, LRANGE 0 -1 (never deleted).
pub const LISTS: [&str; 2] = ["l0", "l1"];
/// Queue keys: RPUSH of unique values, BLPOP of one or both (checked by `check::queues`).
pub const QUEUES: [&str; 2] = ["q0", "q1"];
/// Stream keys: XADD of unique values, read by consumers of group `g` (checked by
/// `check::streams`).
pub const STREAMS: [&str; 1] = ["x0"];
/// Keys written only by RESTORE with a relative TTL, each key with its own TTL in ms (one per
/// key, which `check::expiry` relies on), and read by PTTL.
pub const TTL_KEYS: [(&str, u64); 2] = [("t0", 500), ("t1", 3000)];
/// HyperLogLog keys: PFADD of one element unique in the run, PFCOUNT (`check::hll`).
pub const HLLS: [&str; 1] = ["h0"];

/// How long a client waits for a reply before giving up (outcome unknown). Longer than the
/// server's own deadlines (5 s for a leader, 10 s for a write), so that the server's verdict,
/// not the client's impatience, decides the outcome whenever the server gives one.
const OP_TIMEOUT: Duration = Duration::from_secs(12);
/// How long a client tries to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// What the clients share with the harness: the history, the nodes they may send to, and
/// the stop flag.
pub struct Shared {
    history: Mutex<History>,
    start: Instant,
    /// Nodes the clients send to (the cluster's members as far as the harness knows).
    pub targets: Mutex<Vec<u64>>,
    pub stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Clients will send to `targets`; times are measured from `start`.
    pub fn new(targets: Vec<u64>, start: Instant) -> Arc<Shared> {
        Arc::new(Shared {
            history: Mutex::new(History::default()),
            start,
            targets: Mutex::new(targets),
            stop: AtomicBool::new(false),
        })
    }

    /// Virtual nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The nodes clients send to.
    pub fn targets(&self) -> Vec<u64> {
        lock(&self.targets).clone()
    }

    /// A copy of the history so far.
    pub fn history(&self) -> History {
        lock(&self.history).clone()
    }

    /// Runs `kind` on `conn` (to `node`), after `ASKING` on the same connection if `asking`
    /// (a client sent on by `-ASK`), and records it; returns the outcome.
    async fn run_op(
        &self,
        client: u32,
        node: u64,
        conn: &mut Option<SimClient>,
        kind: OpKind,
        asking: bool,
    ) -> Outcome {
        let id = lock(&self.history).invoke(client, node, kind.clone(), self.now_ns());
        if conn.is_none() {
            match SimClient::connect(client_addr(node), CONNECT_TIMEOUT).await {
                Ok(c) => *conn = Some(c),
                Err(e) => {
                    let outcome = Outcome::Failed(format!("connect: {e}"));
                    lock(&self.history).complete(id, outcome.clone(), self.now_ns());
                    return outcome;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        let run = async {
            if asking {
                c.cmd(&[b"ASKING"]).await?;
            }
            execute(c, &kind).await
        };
        let (outcome, broken) = match tokio::time::timeout(OP_TIMEOUT, run).await {
            Err(_) => (Outcome::Unknown("client timeout".into()), true),
            Ok(Err(e)) => (Outcome::Unknown(format!("connection: {e}")), true),
            Ok(Ok(outcome)) => (outcome, false),
        };
        if broken {
            // A late reply must not be read as the next operation's.
            *conn = None;
        }
        lock(&self.history).complete(id, outcome.clone(), self.now_ns());
        outcome
    }
}

/// Where a `-MOVED <slot> <ip>:<port>` outcome sends the client: the simulated host's id.
pub fn moved_to(outcome: &Outcome) -> Option<u64> {
    redirect(outcome, "MOVED ")
}

/// Where a `-<prefix><slot> <ip>:<port>` outcome sends the client.
fn redirect(outcome: &Outcome, prefix: &str) -> Option<u64> {
    let Outcome::Failed(e) = outcome else { return None };
    let addr = e.strip_prefix(prefix)?.split(' ').nth(1)?;
    let ip = addr.rsplit_once(':')?.0;
    ip.strip_prefix("10.0.0.")?.parse().ok()
}

/// Redirects a client follows for one operation (a sharded run's `-MOVED` and `-ASK`).
const MAX_REDIRECTS: usize = 3;

impl Shared {
    /// [`run_op`](Self::run_op) on `node`, then again on the node each `-MOVED` names, or
    /// after `ASKING` on the node an `-ASK` names (a slot Redis Cluster's protocol is moving),
    /// as a Redis Cluster client does (each attempt is in the history: a redirected one changed
    /// nothing). Returns the last outcome.
    pub async fn run_routed(
        &self,
        client: u32,
        mut node: u64,
        conns: &mut BTreeMap<u64, Option<SimClient>>,
        kind: OpKind,
    ) -> Outcome {
        let (mut hops, mut asking) = (0, false);
        loop {
            let attempt = if hops == 0 { kind.clone() } else { with_fresh_values(&kind, hops) };
            let outcome = self.run_op(client, node, conns.entry(node).or_default(), attempt, asking).await;
            let (next, ask) = match (moved_to(&outcome), redirect(&outcome, "ASK ")) {
                (Some(next), _) => (Some(next), false),
                (None, next) => (next, true),
            };
            match next {
                Some(next) if hops < MAX_REDIRECTS => (node, hops, asking) = (next, hops + 1, ask),
                _ => return outcome,
            }
        }
    }
}

/// `kind` with every value it writes made unique again for redirect `hop` (the checkers
/// require each written value once in the run, failed attempts included): the value's number
/// plus `hop` times 10^8, above every value [`random_op`] makes.
fn with_fresh_values(kind: &OpKind, hop: usize) -> OpKind {
    let fresh = |v: &String| {
        let digits = v.chars().take_while(char::is_ascii_digit).count();
        match v[..digits].parse::<u64>() {
            Ok(n) => format!("{}{}", n + hop as u64 * 100_000_000, &v[digits..]),
            Err(_) => format!("{v}~{hop}"),
        }
    };
    match kind {
        OpKind::Set { key, value } => OpKind::Set { key: key.clone(), value: fresh(value) },
        OpKind::Append { key, value } => OpKind::Append { key: key.clone(), value: fresh(value) },
        OpKind::RPush { key, value } => OpKind::RPush { key: key.clone(), value: fresh(value) },
        OpKind::QPush { key, value } => OpKind::QPush { key: key.clone(), value: fresh(value) },
        OpKind::XAdd { key, value } => OpKind::XAdd { key: key.clone(), value: fresh(value) },
        OpKind::RestoreTtl { key, value, ttl_ms } => {
            OpKind::RestoreTtl { key: key.clone(), value: fresh(value), ttl_ms: *ttl_ms }
        }
        OpKind::PfAdd { key, value } => OpKind::PfAdd { key: key.clone(), value: fresh(value) },
        OpKind::Multi(cmds) => OpKind::Multi(cmds.iter().map(|c| with_fresh_values(c, hop)).collect()),
        other => other.clone(),
    }
}

/// One logical client: random operations to random target nodes until told to stop.
pub async fn client(id: u32, seed: u64, shared: Arc<Shared>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut conns: BTreeMap<u64, Option<SimClient>> = BTreeMap::new();
    let mut seq = 0u64;
    // Ids this client was delivered and has not acknowledged yet (XACK sends the oldest).
    let mut unacked: Vec<String> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=30))).await;
        let targets = lock(&shared.targets).clone();
        if targets.is_empty() {
            continue;
        }
        let node = targets[rng.gen_range(0..targets.len())];
        seq += 1;
        let kind = match random_op(&mut rng, id, seq) {
            // An acknowledgement needs a delivered id: without one, read instead.
            OpKind::XAck { key, .. } if unacked.is_empty() => {
                OpKind::XReadGroup { key, consumer: consumer(id), block_ms: None }
            }
            OpKind::XAck { key, .. } => OpKind::XAck { key, id: unacked.remove(0) },
            other => other,
        };
        let outcome = shared.run_routed(id, node, &mut conns, kind.clone()).await;
        if let (OpKind::XReadGroup { .. }, Outcome::Ok(Reply::List(entry))) = (&kind, &outcome) {
            unacked.extend(entry.first().cloned());
        }
        if let Outcome::Failed(_) = outcome {
            // Connection refused or cluster down: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, keys: &[&'a str]) -> &'a str {
    keys[rng.gen_range(0..keys.len())]
}

/// A random operation; values are unique in the run (client id and sequence number).
pub fn random_op(rng: &mut ChaCha8Rng, client: u32, seq: u64) -> OpKind {
    let unique = u64::from(client) * 1_000_000 + seq;
    let roll = rng.gen_range(0..154);
    if roll >= 138 {
        return ttl_or_hll_op(rng, roll - 138, unique);
    }
    if roll >= 126 {
        return stream_op(rng, roll - 126, client, unique);
    }
    if roll >= 118 {
        return OpKind::ScriptIncr { key: pick(rng, &COUNTERS).to_string(), by: increment(client) };
    }
    if roll >= 100 {
        return queue_op(rng, roll - 100, unique);
    }
    let (c, s, l) = (pick(rng, &COUNTERS).to_string(), pick(rng, &STRINGS).to_string(), pick(rng, &LISTS).to_string());
    match roll {
        0..=11 => OpKind::Get { key: c },
        12..=21 => OpKind::Set { key: c, value: unique.to_string() },
        22..=33 => OpKind::Incr { key: c, by: increment(client) },
        34..=36 => OpKind::Del { key: c },
        37..=44 => OpKind::Append { key: s, value: format!("{unique},") },
        45..=50 => OpKind::Get { key: s },
        51..=52 => OpKind::Del { key: s },
        53..=69 => OpKind::RPush { key: l, value: unique.to_string() },
        70..=87 => OpKind::LRange { key: l },
        88..=93 => OpKind::Multi(vec![OpKind::Incr { key: c.clone(), by: increment(client) }, OpKind::Get { key: c }]),
        _ => {
            OpKind::Multi(vec![OpKind::RPush { key: l.clone(), value: unique.to_string() }, OpKind::LRange { key: l }])
        }
    }
}

/// A client's INCRBY amount: its own power of two (see [`OpKind::Incr`]).
fn increment(client: u32) -> i64 {
    1 << (client % 16)
}

/// A queue operation for `roll` in 0..18: pushes a little more often than pops, so pops find
/// elements and block about as often; timeouts of 0 (forever: the client's own timeout ends
/// it) to 3 s.
fn queue_op(rng: &mut ChaCha8Rng, roll: u32, unique: u64) -> OpKind {
    let key = pick(rng, &QUEUES).to_string();
    if roll < 10 {
        return OpKind::QPush { key, value: unique.to_string() };
    }
    let keys = if rng.gen_bool(0.3) { QUEUES.iter().map(|k| k.to_string()).collect() } else { vec![key] };
    let timeout_ms = [0, 100, 500, 1500, 3000][rng.gen_range(0..5)];
    OpKind::BPop { keys, timeout_ms }
}

/// For `roll` in 0..16: RESTORE with its key's TTL or PTTL on a TTL key, PFADD or PFCOUNT on
/// a HyperLogLog key (about 5% of the operations each).
fn ttl_or_hll_op(rng: &mut ChaCha8Rng, roll: u32, unique: u64) -> OpKind {
    let (key, ttl_ms) = TTL_KEYS[rng.gen_range(0..TTL_KEYS.len())];
    let (key, hll) = (key.to_string(), pick(rng, &HLLS).to_string());
    match roll {
        0..=3 => OpKind::RestoreTtl { key, value: unique.to_string(), ttl_ms },
        4..=7 => OpKind::Pttl { key },
        8..=12 => OpKind::PfAdd { key: hll, value: unique.to_string() },
        _ => OpKind::PfCount { key: hll },
    }
}

/// A client's consumer name in group `g` (three consumers, shared by the clients).
fn consumer(client: u32) -> String {
    format!("c{}", client % 3)
}

/// A stream operation for `roll` in 0..12: adds, reads (half of them blocking, up to 1.5 s),
/// acknowledgements (the client fills in the id), and now and then the group's creation.
fn stream_op(rng: &mut ChaCha8Rng, roll: u32, client: u32, unique: u64) -> OpKind {
    let key = pick(rng, &STREAMS).to_string();
    match roll {
        0..=4 => OpKind::XAdd { key, value: unique.to_string() },
        5..=7 => {
            let block_ms = [None, None, Some(100), Some(1500)][rng.gen_range(0..4)];
            OpKind::XReadGroup { key, consumer: consumer(client), block_ms }
        }
        8..=10 => OpKind::XAck { key, id: String::new() },
        _ => OpKind::XGroupCreate { key },
    }
}

/// The command line of a stream operation.
fn stream_args(kind: &OpKind) -> Vec<String> {
    let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    match kind {
        OpKind::XAdd { key, value } => words(&format!("XADD {key} * v {value}")),
        OpKind::XGroupCreate { key } => words(&format!("XGROUP CREATE {key} g 0 MKSTREAM")),
        OpKind::XReadGroup { key, consumer, block_ms } => {
            let block = block_ms.map(|ms| format!("BLOCK {ms} ")).unwrap_or_default();
            words(&format!("XREADGROUP GROUP g {consumer} COUNT 1 {block}STREAMS {key} >"))
        }
        OpKind::XAck { key, id } => words(&format!("XACK {key} g {id}")),
        OpKind::XRangeAll { key } => words(&format!("XRANGE {key} - +")),
        OpKind::XPendingAll { key } => words(&format!("XPENDING {key} g - + 1000000")),
        _ => words("PING"),
    }
}

fn is_stream_op(kind: &OpKind) -> bool {
    matches!(
        kind,
        OpKind::XAdd { .. }
            | OpKind::XGroupCreate { .. }
            | OpKind::XReadGroup { .. }
            | OpKind::XAck { .. }
            | OpKind::XRangeAll { .. }
            | OpKind::XPendingAll { .. }
    )
}

/// A stream reply as an outcome: XREADGROUP's `[[key, [[id, [v, value]]]]]` becomes
/// `[id, value]`, XRANGE's entries `[id, value, ...]`, XPENDING's `[id, consumer, ...]`.
fn stream_outcome(kind: &OpKind, frame: Frame) -> Outcome {
    let text = |f: &Frame| match f {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    };
    // An entry `[id, [field, value]]` as its id and value.
    let entry = |f: &Frame| match f {
        Frame::Array(pair) if pair.len() == 2 => {
            let value = match &pair[1] {
                Frame::Array(fv) if fv.len() == 2 => text(&fv[1]),
                other => format!("{other:?}"),
            };
            vec![text(&pair[0]), value]
        }
        other => vec![format!("{other:?}")],
    };
    match (kind, frame) {
        (OpKind::XReadGroup { .. }, Frame::Array(streams)) => {
            let entries: Vec<String> = streams
                .iter()
                .flat_map(|s| match s {
                    Frame::Array(kv) if kv.len() == 2 => match &kv[1] {
                        Frame::Array(es) => es.iter().flat_map(entry).collect(),
                        other => vec![format!("{other:?}")],
                    },
                    other => vec![format!("{other:?}")],
                })
                .collect();
            Outcome::Ok(Reply::List(entries))
        }
        (OpKind::XRangeAll { .. }, Frame::Array(entries)) => {
            Outcome::Ok(Reply::List(entries.iter().flat_map(entry).collect()))
        }
        (OpKind::XPendingAll { .. }, Frame::Array(rows)) => Outcome::Ok(Reply::List(
            rows.iter()
                .flat_map(|r| match r {
                    Frame::Array(cols) if cols.len() == 4 => vec![text(&cols[0]), text(&cols[1])],
                    other => vec![format!("{other:?}")],
                })
                .collect(),
        )),
        (_, frame) => outcome(frame),
    }
}

/// The command line of a queue operation.
fn queue_args(kind: &OpKind) -> Vec<Vec<u8>> {
    let b = |s: &str| s.as_bytes().to_vec();
    match kind {
        OpKind::QPush { key, value } => vec![b("RPUSH"), b(key), b(value)],
        OpKind::QRange { key } => vec![b("LRANGE"), b(key), b("0"), b("-1")],
        OpKind::BPop { keys, timeout_ms } => {
            let mut v = vec![b("BLPOP")];
            v.extend(keys.iter().map(|k| b(k)));
            v.push(b(&format!("{}.{:03}", timeout_ms / 1000, timeout_ms % 1000)));
            v
        }
        _ => vec![b("PING")],
    }
}

/// The command line of one (non-transaction) operation.
fn args(kind: &OpKind) -> Vec<Vec<u8>> {
    let owned = |v: Vec<&[u8]>| v.into_iter().map(<[u8]>::to_vec).collect();
    match kind {
        OpKind::Incr { key, by } => owned(vec![b"INCRBY", key.as_bytes(), by.to_string().as_bytes()]),
        // A quarter of the SETs travel as RESTORE ... REPLACE of the value's DUMP payload: the
        // same effect and reply, so the checkers hold RESTORE (a payload in the log entry) to
        // SET's model.
        OpKind::Set { key, value } if value.parse::<u64>().is_ok_and(|n| n % 4 == 0) => {
            let payload = raftis::store::rdb::dump(&raftis::store::Value::Str(value.clone().into()));
            owned(vec![b"RESTORE", key.as_bytes(), b"0", &payload, b"REPLACE"])
        }
        OpKind::RestoreTtl { key, value, ttl_ms } => {
            let payload = raftis::store::rdb::dump(&raftis::store::Value::Str(value.clone().into()));
            owned(vec![b"RESTORE", key.as_bytes(), ttl_ms.to_string().as_bytes(), &payload, b"REPLACE"])
        }
        other => owned(borrowed_args(other)),
    }
}

/// The command line of an operation whose arguments are all in `kind`.
fn borrowed_args(kind: &OpKind) -> Vec<&[u8]> {
    match kind {
        OpKind::Get { key } => vec![b"GET", key.as_bytes()],
        OpKind::Set { key, value } => vec![b"SET", key.as_bytes(), value.as_bytes()],
        OpKind::Del { key } => vec![b"DEL", key.as_bytes()],
        OpKind::Append { key, value } => vec![b"APPEND", key.as_bytes(), value.as_bytes()],
        OpKind::RPush { key, value } => vec![b"RPUSH", key.as_bytes(), value.as_bytes()],
        OpKind::LRange { key } => vec![b"LRANGE", key.as_bytes(), b"0", b"-1"],
        OpKind::Pttl { key } => vec![b"PTTL", key.as_bytes()],
        OpKind::PfAdd { key, value } => vec![b"PFADD", key.as_bytes(), value.as_bytes()],
        OpKind::PfCount { key } => vec![b"PFCOUNT", key.as_bytes()],
        OpKind::Incr { .. }
        | OpKind::RestoreTtl { .. }
        | OpKind::ScriptIncr { .. }
        | OpKind::Multi(_)
        | OpKind::QPush { .. }
        | OpKind::BPop { .. }
        | OpKind::QRange { .. }
        | OpKind::XAdd { .. }
        | OpKind::XGroupCreate { .. }
        | OpKind::XReadGroup { .. }
        | OpKind::XAck { .. }
        | OpKind::XRangeAll { .. }
        | OpKind::XPendingAll { .. } => {
            vec![b"PING"]
        }
    }
}

/// INCRBY as a Lua script: read, add ARGV[1], write. Only atomic (and only the same on every
/// replica) if the whole script is one log entry applied alike everywhere, which the
/// linearizability checker verifies by checking it as INCRBY.
const INCR_SCRIPT: &str = "local n = tonumber(redis.call('get', KEYS[1]) or '0') \
    if not n then return redis.error_reply('ERR value is not an integer or out of range') end \
    n = n + tonumber(ARGV[1]) redis.call('set', KEYS[1], n) return n";

/// Runs [`INCR_SCRIPT`] by its SHA-1, and by its body when the cache lacks it (as clients do):
/// a NOSCRIPT reply means nothing ran.
async fn script_incr(c: &mut SimClient, key: &str, by: i64) -> std::io::Result<Frame> {
    let sha = raftis::store::scripts::sha1_hex(INCR_SCRIPT.as_bytes());
    let by = by.to_string();
    let reply = c.cmd(&[b"EVALSHA", sha.as_bytes(), b"1", key.as_bytes(), by.as_bytes()]).await?;
    match reply {
        Frame::Error(e) if e.starts_with(b"NOSCRIPT") => {
            c.cmd(&[b"EVAL", INCR_SCRIPT.as_bytes(), b"1", key.as_bytes(), by.as_bytes()]).await
        }
        other => Ok(other),
    }
}

/// Sends the operation and turns the reply into an outcome.
async fn execute(c: &mut SimClient, kind: &OpKind) -> std::io::Result<Outcome> {
    if is_stream_op(kind) {
        let owned = stream_args(kind);
        let args: Vec<&[u8]> = owned.iter().map(|a| a.as_bytes()).collect();
        return Ok(stream_outcome(kind, c.cmd(&args).await?));
    }
    if let OpKind::QPush { .. } | OpKind::BPop { .. } | OpKind::QRange { .. } = kind {
        let owned = queue_args(kind);
        let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        return Ok(outcome(c.cmd(&args).await?));
    }
    if let OpKind::ScriptIncr { key, by } = kind {
        return Ok(outcome(script_incr(c, key, *by).await?));
    }
    let OpKind::Multi(cmds) = kind else {
        let owned = args(kind);
        return Ok(outcome(c.cmd(&owned.iter().map(Vec::as_slice).collect::<Vec<_>>()).await?));
    };
    let mut owned: Vec<Vec<Vec<u8>>> = vec![vec![b"MULTI".to_vec()]];
    owned.extend(cmds.iter().map(args));
    owned.push(vec![b"EXEC".to_vec()]);
    let lines: Vec<Vec<&[u8]>> = owned.iter().map(|l| l.iter().map(Vec::as_slice).collect()).collect();
    let mut replies = c.pipeline(&lines).await?;
    let exec = replies.pop().unwrap_or(Frame::Null);
    // An error before EXEC (MULTI or a queued command refused) makes EXEC abort.
    match exec {
        Frame::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match outcome(item) {
                    Outcome::Ok(r) => out.push(r),
                    // An error of a command inside EXEC is its reply (the others still ran).
                    Outcome::Failed(e) | Outcome::Unknown(e) => out.push(Reply::Error(e)),
                }
            }
            Ok(Outcome::Ok(Reply::Multi(out)))
        }
        other => Ok(outcome(other)),
    }
}

/// A reply frame as an outcome.
fn outcome(frame: Frame) -> Outcome {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match frame {
        Frame::Simple(_) => Outcome::Ok(Reply::Ok),
        Frame::Bulk(b) => Outcome::Ok(Reply::Str(text(&b))),
        Frame::Null | Frame::NullArray => Outcome::Ok(Reply::Nil),
        Frame::Integer(n) => Outcome::Ok(Reply::Int(n)),
        Frame::Array(items) => Outcome::Ok(Reply::List(
            items
                .into_iter()
                .map(|f| match f {
                    Frame::Bulk(b) => text(&b),
                    other => format!("{other:?}"),
                })
                .collect(),
        )),
        Frame::Error(e) => error_outcome(text(&e)),
        other => Outcome::Unknown(format!("unexpected reply {other:?}")),
    }
}

/// The error contract: which error replies mean "not applied" and which "unknown".
fn error_outcome(e: String) -> Outcome {
    let code = e.split(' ').next().unwrap_or("");
    match code {
        // MOVED and CROSSSLOT (sharded runs) come before anything runs, LOADING (a node
        // still loading its data after a restart) before anything is read or proposed.
        // ASK (a slot Redis Cluster's protocol is moving) is decided at apply with nothing
        // changed, or at the read barrier.
        "CLUSTERDOWN" | "EXECABORT" | "MOVED" | "ASK" | "CROSSSLOT" | "LOADING" => Outcome::Failed(e),
        // NOGROUP before the group exists, BUSYGROUP once it does: the command ran, no effect.
        "WRONGTYPE" | "NOGROUP" | "BUSYGROUP" => Outcome::Ok(Reply::Error(e)),
        "ERR" if e.contains("not an integer") || e.contains("overflow") => Outcome::Ok(Reply::Error(e)),
        // A slot migration's refusal (a frozen slot at apply, a hand-over at routing).
        "TRYAGAIN" if e.starts_with("TRYAGAIN Hash slot") => Outcome::Failed(e),
        // TRYAGAIN and anything unexpected: the write may or may not have happened.
        _ => Outcome::Unknown(e),
    }
}

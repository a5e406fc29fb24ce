//! Blocking commands at the level of the keyspace: the generic machinery every blocking command
//! (BLPOP, BZPOPMIN, BLMOVE, ... and XREAD / XREADGROUP with BLOCK) registers with through a
//! [`BlockingSpec`] row, and the two internal writes that carry it through the Raft log.
//!
//! A client's blocking command is proposed as one internal write,
//! `raftis.block <node> <boot> <seq> <timeout-ms> <command> <args...>`. Its apply makes a
//! first attempt (`BlockingSpec::attempt` with no ready key): if the command can be served it
//! is, like its non-blocking form; otherwise it joins the replicated queue of waiters
//! ([`crate::store::Blocked`]) behind every earlier waiter on its keys, with its deadline
//! stamped from the entry's time. Any later write that changes or creates one of those keys
//! (`WriteCtx::set` / `value_mut` signal it) makes the key ready, and right after that command
//! (after a whole transaction) [`serve_ready`] retries the waiters of each ready key, first
//! arrived first, inside the same apply. So the element goes to exactly one client, chosen by
//! the log, before any later command runs: Redis's `handleClientsBlockedOnKeys`, replicated.
//!
//! Every served or removed waiter leaves an outcome (its reply) in the queue's transient list;
//! the node that holds the client delivers it (`raft::waiters`). `raftis.unblock <reason>
//! <node> <boot> <seq>...` removes waiters: at their timeout (`timeout`), for CLIENT UNBLOCK
//! (`timeout` or `error`), or because their client left (`cancel`).

use super::{lookup, CommandSpec, Kind, WriteCtx};
use crate::cmd::args::{self, err};
use crate::protocol::{parse_i64, Frame};
use crate::store::{BlockId, Keyspace, Rng, Waiter};
use bytes::Bytes;
use std::ops::Range;

/// The internal write that blocks a client (see the module header).
pub const BLOCK_COMMAND: &str = "raftis.block";
/// The internal write that removes waiters.
pub const UNBLOCK_COMMAND: &str = "raftis.unblock";

/// The reply of `raftis.block` when the command blocked (its client's reply comes later).
pub const BLOCKED_REPLY: &str = "BLOCKED";

/// What one try of a blocking command did.
#[derive(Debug)]
pub enum Attempt {
    /// Served (or refused with an error): the client's reply.
    Done(Frame),
    /// Nothing to serve yet: wait. A command whose retry must differ from its first form
    /// (XREAD's `$` becomes the last id at block time) gives the form to keep.
    Block(Option<Vec<Bytes>>),
}

/// How a blocking command blocks. One row per command, in its family's `BLOCKING` table
/// (listed in [`specs`]).
pub struct BlockingSpec {
    /// Lowercase command name.
    pub name: &'static str,
    /// Checks the arguments in Redis's order and returns the timeout in ms (0: forever), or
    /// `None` when this form does not block (XREAD without BLOCK). `Err` is the reply.
    pub timeout: fn(&[Bytes]) -> Result<Option<u64>, Frame>,
    /// The arguments naming the keys the command waits on.
    pub wait_keys: fn(&[Bytes]) -> Range<usize>,
    /// One try. `ready` is the key whose change woke the waiter (None for the first try): a
    /// retry serves from that key only, and blocks again when it holds nothing to serve or a
    /// value of another type (the first try answers WRONGTYPE instead).
    pub attempt: fn(&mut WriteCtx, &[Bytes], Option<&[u8]>) -> Attempt,
    /// The reply when the timeout passes (and for CLIENT UNBLOCK ... TIMEOUT).
    pub timeout_reply: Frame,
    /// The reply when the command cannot block (inside MULTI or a script) and has nothing.
    pub nonblocking_reply: Frame,
    /// Whether retrying the rest of a key's waiters is pointless once the key is gone (lists
    /// and sorted sets); stream readers may still have something to do.
    pub stop_when_absent: bool,
}

/// Every blocking command.
fn specs() -> impl Iterator<Item = &'static BlockingSpec> {
    [super::list::BLOCKING, super::zset::BLOCKING, super::stream::BLOCKING].into_iter().flatten()
}

/// The blocking row of command `name`, if it can block.
pub fn spec(name: &[u8]) -> Option<&'static BlockingSpec> {
    specs().find(|s| name.eq_ignore_ascii_case(s.name.as_bytes()))
}

/// The command as a handler of the command table runs it: never blocks (inside MULTI, in a
/// script, or retried from a log written before it could block).
pub fn run_nonblocking(spec: &BlockingSpec, ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    if let Err(e) = (spec.timeout)(argv) {
        return e;
    }
    match (spec.attempt)(ctx, argv, None) {
        Attempt::Done(reply) => reply,
        Attempt::Block(_) => spec.nonblocking_reply.clone(),
    }
}

/// A timeout in seconds as Redis's `getTimeoutFromObjectOrReply` reads it (a long double,
/// fractions allowed), in whole milliseconds rounded up.
pub fn seconds_timeout(arg: &[u8]) -> Result<u64, Frame> {
    let secs = super::string::longdouble::parse(arg)
        .map(|v| v.to_f64())
        .ok_or_else(|| err("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    // Redis casts to a long long: anything beyond it (infinity included) comes out negative.
    if !(0.0..9.2e18).contains(&ms) {
        return Err(err("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// A timeout in milliseconds given as an integer (XREAD's BLOCK).
pub fn millis_timeout(arg: &[u8]) -> Result<u64, Frame> {
    let ms = parse_i64(arg).ok_or_else(|| err("ERR timeout is not an integer or out of range"))?;
    u64::try_from(ms).map_err(|_| err("ERR timeout is negative"))
}

/// Why waiters are removed by `raftis.unblock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnblockReason {
    /// The timeout passed (or CLIENT UNBLOCK ... TIMEOUT): the command's timeout reply.
    Timeout,
    /// CLIENT UNBLOCK ... ERROR.
    Error,
    /// The client is gone: nobody gets the reply.
    Cancel,
}

impl UnblockReason {
    fn name(self) -> &'static str {
        match self {
            UnblockReason::Timeout => "timeout",
            UnblockReason::Error => "error",
            UnblockReason::Cancel => "cancel",
        }
    }

    fn parse(arg: &[u8]) -> Option<UnblockReason> {
        [UnblockReason::Timeout, UnblockReason::Error, UnblockReason::Cancel]
            .into_iter()
            .find(|r| args::is(arg, r.name()))
    }
}

/// The reply a client unblocked by CLIENT UNBLOCK ... ERROR gets.
pub const UNBLOCKED_ERROR: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

fn int_arg(n: u64) -> Bytes {
    Bytes::from(n.to_string())
}

/// The internal write that runs `argv` as blocked command `id` with a timeout of `timeout_ms`.
pub fn block_argv(id: BlockId, timeout_ms: u64, argv: &[Bytes]) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(argv.len() + 5);
    out.push(Bytes::from_static(BLOCK_COMMAND.as_bytes()));
    out.extend([int_arg(id.node), int_arg(id.boot), int_arg(id.seq), int_arg(timeout_ms)]);
    out.extend_from_slice(argv);
    out
}

/// The key indexes of `raftis.block <node> <boot> <seq> <timeout> <command> <args...>`: its
/// command's keys. A data group's fence (slot ownership, a migration's freeze) judges the
/// blocking command by the keys it pops from, as it judges its non-blocking form; as a keyless
/// command it would pop from a frozen slot after the migration copied it (the element then
/// popped twice, once in each group: chaos seed 181 with slot migrations).
pub fn block_keys(argv: &[Bytes]) -> Vec<usize> {
    let cmd = argv.get(5..).unwrap_or_default();
    match cmd.first().and_then(|name| lookup(name)) {
        Some(spec) if spec.name != BLOCK_COMMAND => super::key_indexes(spec, cmd).into_iter().map(|i| i + 5).collect(),
        _ => Vec::new(),
    }
}

/// The internal write that removes waiters `ids` for `reason`.
pub fn unblock_argv(reason: UnblockReason, ids: &[BlockId]) -> Vec<Bytes> {
    let mut out = vec![Bytes::from_static(UNBLOCK_COMMAND.as_bytes()), Bytes::from_static(reason.name().as_bytes())];
    for id in ids {
        out.extend([int_arg(id.node), int_arg(id.boot), int_arg(id.seq)]);
    }
    out
}

fn u64_arg(arg: &[u8]) -> Option<u64> {
    parse_i64(arg).and_then(|n| u64::try_from(n).ok())
}

fn parse_id(args: &[Bytes]) -> Option<BlockId> {
    Some(BlockId { node: u64_arg(&args[0])?, boot: u64_arg(&args[1])?, seq: u64_arg(&args[2])? })
}

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(BLOCK_COMMAND, -7, &["write", "internal"], (0, 0, 0), Kind::Write(block)),
    CommandSpec::new(UNBLOCK_COMMAND, -5, &["write", "internal"], (0, 0, 0), Kind::Write(unblock)),
];

/// `raftis.block`: the first try of a blocking command; queues it when it must wait.
fn block(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (Some(id), Some(timeout_ms)) = (parse_id(&argv[1..4]), u64_arg(&argv[4])) else {
        return err("ERR bad raftis.block arguments");
    };
    let cmd = &argv[5..];
    let Some(spec) = spec(&cmd[0]) else { return err("ERR raftis.block: not a blocking command") };
    let reply = match lookup(&cmd[0]) {
        Some(table) if !table.arity_ok(cmd.len()) => args::wrong_arity(table.name),
        _ if ctx.ks.blocked.get(&id).is_some() => return Frame::simple(BLOCKED_REPLY),
        _ => match (spec.attempt)(ctx, cmd, None) {
            Attempt::Done(reply) => reply,
            Attempt::Block(form) => {
                let argv = form.unwrap_or_else(|| cmd.to_vec());
                let mut keys: Vec<Bytes> = Vec::new();
                for key in &argv[(spec.wait_keys)(&argv)] {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
                let deadline_ms = if timeout_ms == 0 { 0 } else { ctx.now_ms.saturating_add(timeout_ms) };
                ctx.ks.blocked.add(Waiter { id, db: ctx.db as u32, argv, keys, deadline_ms });
                return Frame::simple(BLOCKED_REPLY);
            }
        },
    };
    ctx.ks.blocked.push_outcome(id, reply.clone());
    reply
}

/// `raftis.unblock reason (node boot seq)...`: removes the listed waiters that are still
/// queued; replies how many were.
fn unblock(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let Some(reason) = UnblockReason::parse(&argv[1]) else { return err("ERR bad raftis.unblock reason") };
    if !(argv.len() - 2).is_multiple_of(3) {
        return err("ERR bad raftis.unblock arguments");
    }
    let mut removed = 0;
    for chunk in argv[2..].chunks(3) {
        let Some(id) = parse_id(chunk) else { return err("ERR bad raftis.unblock arguments") };
        let Some(w) = ctx.ks.blocked.remove(&id) else { continue };
        removed += 1;
        let reply = match (reason, spec(&w.argv[0])) {
            (UnblockReason::Timeout, Some(spec)) => spec.timeout_reply.clone(),
            (UnblockReason::Cancel, _) => continue,
            _ => Frame::error(UNBLOCKED_ERROR),
        };
        ctx.ks.blocked.push_outcome(id, reply);
    }
    Frame::Integer(removed)
}

/// Serves the waiters of every key made ready since the last call, key by key in the order
/// they became ready, each key's waiters first arrived first; keys that serving makes ready
/// (BLMOVE's destination) are served in turn. A waiter past its deadline at the entry's time
/// gets its timeout reply instead, as its node's timer would have given it. Deterministic: it
/// depends only on the keyspace, the entry's time and its random source.
pub fn serve_ready(ks: &mut Keyspace, now_ms: u64, rng: &mut Rng) {
    while let Some((db, key)) = ks.blocked.pop_ready() {
        for id in ks.blocked.waiters_on(db, &key) {
            let Some(w) = ks.blocked.get(&id) else { continue };
            let Some(spec) = spec(&w.argv[0]) else {
                // Not a blocking command in this build: it can never be served.
                ks.blocked.remove(&id);
                ks.blocked.push_outcome(id, err("ERR unknown blocking command"));
                continue;
            };
            if w.deadline_ms != 0 && w.deadline_ms <= now_ms {
                ks.blocked.remove(&id);
                ks.blocked.push_outcome(id, spec.timeout_reply.clone());
                continue;
            }
            let argv = w.argv.clone();
            let mut ctx = WriteCtx { ks: &mut *ks, db: db as usize, now_ms, rng: &mut *rng };
            match (spec.attempt)(&mut ctx, &argv, Some(&key)) {
                Attempt::Done(reply) => {
                    ks.blocked.remove(&id);
                    ks.blocked.push_outcome(id, reply);
                }
                Attempt::Block(_) => {}
            }
            if spec.stop_when_absent && ks.db(db as usize).get(&key, now_ms).is_none() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Running commands against the keyspace: [`apply`] for writes (the state machine's apply
//! step: deterministic given the batch) and [`run_read`] for reads.

use super::ctx::LazyRng;
use super::{lookup, unknown_command, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::{Keyspace, Rng, WriteBatch};
use bytes::Bytes;
use rand::SeedableRng;

/// Applies one write batch. A single command returns its reply; several commands (consecutive
/// writes of a pipeline) return an array of their replies, each command run on its own as
/// Redis runs a pipeline; a transaction returns the EXEC reply (an array, or a null array when
/// a WATCHed key changed).
pub fn apply(ks: &mut Keyspace, batch: &WriteBatch) -> Frame {
    let mut rng = Rng::seed_from_u64(batch.seed);
    let mut db = batch.db as usize;
    let now = batch.now_ms;
    match &batch.transaction {
        None => match batch.cmds.as_slice() {
            [] => Frame::error("ERR empty write"),
            [argv] => run_and_serve(ks, &mut db, now, &mut rng, argv),
            cmds => Frame::Array(cmds.iter().map(|argv| run_and_serve(ks, &mut db, now, &mut rng, argv)).collect()),
        },
        Some(watched) => {
            let changed = watched.iter().any(|w| ks.key_version(w.db as usize, &w.key, now) != w.version);
            if changed {
                return Frame::NullArray;
            }
            let replies = batch.cmds.iter().map(|argv| run_one(ks, &mut db, now, &mut rng, argv)).collect();
            // Blocked clients are served after the whole transaction, as Redis serves them
            // after EXEC: they never see it half done.
            serve_blocked(ks, now, &mut rng);
            Frame::Array(replies)
        }
    }
}

/// [`apply`], with `check(keyspace, db, commands)` asked first: a refusal (`Some(reply)`)
/// replaces the reply of one command of a pipeline batch (the others run), or of a whole
/// transaction (nothing runs). Each command of a pipeline is checked on the keyspace as the
/// commands before it left it. Used by a group in a Redis Cluster migration state
/// (`crate::raft::control::ControlState::ask_check`).
pub fn apply_checked(
    ks: &mut Keyspace,
    batch: &WriteBatch,
    check: impl Fn(&Keyspace, usize, &[Vec<Bytes>]) -> Option<Frame>,
) -> Frame {
    let mut rng = Rng::seed_from_u64(batch.seed);
    let mut db = batch.db as usize;
    let now = batch.now_ms;
    if batch.transaction.is_some() {
        return match check(ks, db, &batch.cmds) {
            Some(refusal) => refusal,
            None => apply(ks, batch),
        };
    }
    let mut replies = Vec::with_capacity(batch.cmds.len());
    for argv in &batch.cmds {
        let reply = match check(ks, db, std::slice::from_ref(argv)) {
            Some(refusal) => refusal,
            None => run_and_serve(ks, &mut db, now, &mut rng, argv),
        };
        replies.push(reply);
    }
    match replies.len() {
        0 => Frame::error("ERR empty write"),
        1 => replies.pop().unwrap_or(Frame::Null),
        _ => Frame::Array(replies),
    }
}

/// Runs one command of a pipeline batch, then serves the clients it unblocked.
fn run_and_serve(ks: &mut Keyspace, db: &mut usize, now_ms: u64, rng: &mut Rng, argv: &[Bytes]) -> Frame {
    let reply = run_one(ks, db, now_ms, rng, argv);
    serve_blocked(ks, now_ms, rng);
    reply
}

/// Serves the blocked clients of the keys the last command made ready, if it made any.
#[inline]
fn serve_blocked(ks: &mut Keyspace, now_ms: u64, rng: &mut Rng) {
    if ks.blocked.has_ready() {
        super::blocking::serve_ready(ks, now_ms, rng);
    }
}

/// Runs one command of a batch. The log is input too, so names and arity are checked again.
fn run_one(ks: &mut Keyspace, db: &mut usize, now_ms: u64, rng: &mut Rng, argv: &[Bytes]) -> Frame {
    let Some(spec) = argv.first().and_then(|name| lookup(name)) else {
        return if argv.is_empty() { Frame::error("ERR empty command") } else { unknown_command(argv) };
    };
    if !spec.arity_ok(argv.len()) {
        return super::args::wrong_arity(spec.name);
    }
    match spec.kind {
        Kind::Write(f) => f(&mut WriteCtx { ks, db: *db, now_ms, rng }, argv),
        Kind::Read(f) => f(&mut ReadCtx { ks, db: *db, now_ms, rng, local: false }, argv),
        Kind::Session if spec.name == "select" => select_in_batch(ks, db, argv),
        Kind::Session => Frame::error(format!("ERR '{}' cannot run inside a replicated batch", spec.name)),
    }
}

/// SELECT queued inside MULTI switches the database for the rest of the transaction.
fn select_in_batch(ks: &Keyspace, db: &mut usize, argv: &[Bytes]) -> Frame {
    match super::args::int(&argv[1]) {
        Ok(n) if n >= 0 && (n as usize) < ks.db_count() => {
            *db = n as usize;
            Frame::ok()
        }
        Ok(_) => Frame::error("ERR DB index is out of range"),
        Err(e) => e,
    }
}

/// Runs a read-only command; its random choices, if it makes any, come from `seed`.
pub fn run_read(ks: &Keyspace, db: usize, now_ms: u64, seed: u64, f: super::ReadFn, argv: &[Bytes]) -> Frame {
    f(&mut ReadCtx { ks, db, now_ms, rng: &mut LazyRng::new(seed), local: true }, argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn a_pipeline_batch_runs_every_command_in_order_and_replies_to_each() {
        let mut ks = Keyspace::new(16);
        let cmds = vec![argv("SET k 1"), argv("INCR k"), argv("LPUSH k x"), argv("INCRBY k 5")];
        let batch = WriteBatch { db: 0, now_ms: 1000, seed: 7, cmds, transaction: None };
        let Frame::Array(replies) = apply(&mut ks, &batch) else { panic!("not an array") };
        assert_eq!(replies.len(), 4);
        assert_eq!(replies[0], Frame::ok());
        assert_eq!(replies[1], Frame::Integer(2));
        // A failing command does not stop the ones after it (not a transaction).
        assert!(matches!(replies[2], Frame::Error(_)));
        assert_eq!(replies[3], Frame::Integer(7));
        let one = WriteBatch { db: 0, now_ms: 1000, seed: 7, cmds: vec![argv("INCR k")], transaction: None };
        assert_eq!(apply(&mut ks, &one), Frame::Integer(8));
    }

    #[test]
    fn a_read_draws_from_its_seed_as_an_eagerly_seeded_generator_would() {
        let mut ks = Keyspace::new(16);
        let fill =
            ["MSET a 1 b 2 c 3 d 4", "SADD s 1 2 3 4 5 6", "HSET h f1 1 f2 2 f3 3 f4 4", "ZADD z 1 x 2 y 3 w 4 v"];
        for line in fill {
            let batch = WriteBatch { db: 0, now_ms: 1000, seed: 1, cmds: vec![argv(line)], transaction: None };
            assert!(!matches!(apply(&mut ks, &batch), Frame::Error(_)), "{line}");
        }
        let reads = [
            "RANDOMKEY",
            "SRANDMEMBER s",
            "SRANDMEMBER s 3",
            "SRANDMEMBER s -9",
            "HRANDFIELD h",
            "HRANDFIELD h 2 WITHVALUES",
            "HRANDFIELD h -7",
            "ZRANDMEMBER z",
            "ZRANDMEMBER z 2",
            "ZRANDMEMBER z -7 WITHSCORES",
        ];
        for line in reads {
            let argv = argv(line);
            let Some(Kind::Read(f)) = lookup(&argv[0]).map(|spec| spec.kind) else { panic!("{line}: not a read") };
            for seed in 0..32 {
                let eager = f(
                    &mut ReadCtx { ks: &ks, db: 0, now_ms: 1000, rng: &mut Rng::seed_from_u64(seed), local: true },
                    &argv,
                );
                assert_eq!(run_read(&ks, 0, 1000, seed, f, &argv), eager, "{line} with seed {seed}");
            }
        }
    }
}

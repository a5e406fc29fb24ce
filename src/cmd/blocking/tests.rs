use super::*;
use crate::cmd::apply;
use crate::store::WriteBatch;

fn argv(line: &str) -> Vec<Bytes> {
    line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
}

fn id(seq: u64) -> BlockId {
    BlockId { node: 1, boot: 9, seq }
}

/// Applies one command at time `now` as its own log entry.
fn run(ks: &mut Keyspace, now: u64, cmd: Vec<Bytes>) -> Frame {
    apply(ks, &WriteBatch { db: 0, now_ms: now, seed: 3, cmds: vec![cmd], transaction: None })
}

fn block(ks: &mut Keyspace, seq: u64, timeout_ms: u64, line: &str) -> Frame {
    run(ks, 1000, block_argv(id(seq), timeout_ms, &argv(line)))
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn pair(key: &str, value: &str) -> Frame {
    Frame::Array(vec![bulk(key), bulk(value)])
}

fn blocked() -> Frame {
    Frame::simple(BLOCKED_REPLY)
}

#[test]
fn a_command_with_data_is_served_at_once_and_its_outcome_recorded() {
    let mut ks = Keyspace::new(2);
    run(&mut ks, 1000, argv("RPUSH l a b"));
    assert_eq!(block(&mut ks, 1, 0, "BLPOP x l 0"), pair("l", "a"));
    assert_eq!(ks.blocked.take_outcomes(), vec![(id(1), pair("l", "a"))]);
    assert!(ks.blocked.is_empty());
}

#[test]
fn waiters_are_served_in_arrival_order_by_the_write_that_fills_the_key() {
    let mut ks = Keyspace::new(2);
    assert_eq!(block(&mut ks, 7, 0, "BLPOP l 0"), blocked());
    assert_eq!(block(&mut ks, 3, 0, "BRPOP other l 0"), blocked());
    assert_eq!(block(&mut ks, 5, 0, "BLPOP l 0"), blocked());
    assert!(ks.blocked.take_outcomes().is_empty());
    // Two elements: the first two waiters get one each, in the order they blocked.
    assert_eq!(run(&mut ks, 2000, argv("RPUSH l a b")), Frame::Integer(2));
    assert_eq!(ks.blocked.take_outcomes(), vec![(id(7), pair("l", "a")), (id(3), pair("l", "b"))]);
    assert!(ks.db(0).get(b"l", 2000).is_none(), "both elements popped, the list is gone");
    // The third still waits, on l only.
    assert_eq!(ks.blocked.waiters_on(0, b"l"), vec![id(5)]);
    assert_eq!(ks.blocked.waiters_on(0, b"other"), vec![]);
}

#[test]
fn a_transaction_serves_its_waiters_after_its_last_command() {
    let mut ks = Keyspace::new(2);
    block(&mut ks, 1, 0, "BLPOP l 0");
    let tx = WriteBatch {
        db: 0,
        now_ms: 2000,
        seed: 1,
        cmds: vec![argv("LPUSH l a"), argv("LPUSH l b"), argv("LPUSH l c")],
        transaction: Some(Vec::new()),
    };
    apply(&mut ks, &tx);
    assert_eq!(ks.blocked.take_outcomes(), vec![(id(1), pair("l", "c"))]);
}

#[test]
fn blmove_chains_wake_the_clients_of_the_destination() {
    let mut ks = Keyspace::new(2);
    assert_eq!(block(&mut ks, 1, 0, "BLPOP target 0"), blocked());
    assert_eq!(block(&mut ks, 2, 0, "BRPOPLPUSH src target 0"), blocked());
    run(&mut ks, 2000, argv("RPUSH src x"));
    let outcomes = ks.blocked.take_outcomes();
    assert_eq!(outcomes, vec![(id(2), bulk("x")), (id(1), pair("target", "x"))]);
    assert!(ks.db(0).get(b"src", 2000).is_none() && ks.db(0).get(b"target", 2000).is_none());
}

#[test]
fn a_key_of_another_type_keeps_waiters_blocked_until_it_is_a_list_again() {
    let mut ks = Keyspace::new(2);
    block(&mut ks, 1, 0, "BLPOP k 0");
    run(&mut ks, 2000, argv("SET k str"));
    assert!(ks.blocked.take_outcomes().is_empty());
    assert_eq!(ks.blocked.len(), 1);
    run(&mut ks, 2000, argv("DEL k"));
    run(&mut ks, 2000, argv("LPUSH k v"));
    assert_eq!(ks.blocked.take_outcomes(), vec![(id(1), pair("k", "v"))]);
    // The first try answers WRONGTYPE instead of blocking.
    run(&mut ks, 2000, argv("SET s str"));
    let reply = block(&mut ks, 2, 0, "BLPOP s 0");
    assert!(matches!(reply, Frame::Error(ref e) if e.starts_with(b"WRONGTYPE")), "{reply:?}");
    assert!(ks.blocked.is_empty());
}

#[test]
fn a_waiter_past_its_deadline_times_out_instead_of_being_served() {
    let mut ks = Keyspace::new(2);
    block(&mut ks, 1, 500, "BLPOP l 0.5");
    block(&mut ks, 2, 0, "BLPOP l 0");
    run(&mut ks, 1500, argv("RPUSH l a"));
    assert_eq!(ks.blocked.take_outcomes(), vec![(id(1), Frame::NullArray), (id(2), pair("l", "a"))]);
}

#[test]
fn unblock_removes_a_waiter_with_the_reply_its_reason_gives() {
    let mut ks = Keyspace::new(2);
    block(&mut ks, 1, 0, "BRPOPLPUSH a b 0");
    block(&mut ks, 2, 0, "BZPOPMIN z 0");
    block(&mut ks, 3, 0, "BLPOP c 0");
    assert_eq!(run(&mut ks, 2000, unblock_argv(UnblockReason::Timeout, &[id(1), id(9)])), Frame::Integer(1));
    assert_eq!(run(&mut ks, 2000, unblock_argv(UnblockReason::Error, &[id(2)])), Frame::Integer(1));
    assert_eq!(run(&mut ks, 2000, unblock_argv(UnblockReason::Cancel, &[id(3)])), Frame::Integer(1));
    assert_eq!(run(&mut ks, 2000, unblock_argv(UnblockReason::Timeout, &[id(1)])), Frame::Integer(0));
    let outcomes = ks.blocked.take_outcomes();
    assert_eq!(outcomes, vec![(id(1), Frame::NullArray), (id(2), Frame::error(UNBLOCKED_ERROR))]);
    assert!(ks.blocked.is_empty());
}

#[test]
fn zset_and_count_forms_serve_from_the_ready_key() {
    let mut ks = Keyspace::new(2);
    block(&mut ks, 1, 0, "BZPOPMAX z1 z2 0");
    block(&mut ks, 2, 0, "BZMPOP 0 2 z1 z2 MIN COUNT 5");
    block(&mut ks, 3, 0, "BLMPOP 0 2 l1 l2 RIGHT COUNT 2");
    run(&mut ks, 2000, argv("ZADD z2 1 a 2 b 3 c"));
    run(&mut ks, 2000, argv("RPUSH l2 x y z"));
    let outcomes = ks.blocked.take_outcomes();
    let score = |m: &str, s: f64| Frame::Array(vec![bulk(m), Frame::Double(s)]);
    assert_eq!(outcomes[0], (id(1), Frame::Array(vec![bulk("z2"), bulk("c"), Frame::Double(3.0)])));
    assert_eq!(
        outcomes[1],
        (id(2), Frame::Array(vec![bulk("z2"), Frame::Array(vec![score("a", 1.0), score("b", 2.0)])]))
    );
    assert_eq!(outcomes[2], (id(3), Frame::Array(vec![bulk("l2"), Frame::Array(vec![bulk("z"), bulk("y")])])));
}

#[test]
fn swapdb_wakes_the_clients_of_both_databases() {
    let mut ks = Keyspace::new(2);
    block(&mut ks, 1, 0, "BLPOP l 0");
    let fill = WriteBatch { db: 1, now_ms: 2000, seed: 1, cmds: vec![argv("RPUSH l v")], transaction: None };
    apply(&mut ks, &fill);
    assert!(ks.blocked.take_outcomes().is_empty(), "a push to another database wakes nobody");
    run(&mut ks, 2000, argv("SWAPDB 0 1"));
    assert_eq!(ks.blocked.take_outcomes(), vec![(id(1), pair("l", "v"))]);
}

#[test]
fn without_blocking_the_commands_reply_as_redis_does_inside_multi() {
    let mut ks = Keyspace::new(2);
    let tx = |cmds: Vec<Vec<Bytes>>| WriteBatch { db: 0, now_ms: 1, seed: 1, cmds, transaction: Some(Vec::new()) };
    let reply = apply(
        &mut ks,
        &tx(vec![argv("BLPOP l 0"), argv("BLMOVE l m LEFT RIGHT 0"), argv("BLPOP l -1"), argv("BLMPOP 0 0 l LEFT")]),
    );
    let Frame::Array(replies) = reply else { panic!("{reply:?}") };
    assert_eq!(replies[0], Frame::NullArray);
    assert_eq!(replies[1], Frame::Null);
    assert_eq!(replies[2], Frame::error("ERR timeout is negative"));
    assert_eq!(replies[3], Frame::error("ERR numkeys should be greater than 0"));
    assert!(ks.blocked.is_empty());
}

#[test]
fn timeouts_parse_as_redis_reads_them() {
    assert_eq!(seconds_timeout(b"0"), Ok(0));
    assert_eq!(seconds_timeout(b"0.001"), Ok(1));
    assert_eq!(seconds_timeout(b"0.0001"), Ok(1), "rounded up");
    assert_eq!(seconds_timeout(b"1.5"), Ok(1500));
    assert_eq!(seconds_timeout(b"0x10"), Ok(16000), "strtold reads hex");
    assert_eq!(seconds_timeout(b"-1"), Err(Frame::error("ERR timeout is negative")));
    assert_eq!(seconds_timeout(b"inf"), Err(Frame::error("ERR timeout is negative")));
    assert_eq!(seconds_timeout(b"abc"), Err(Frame::error("ERR timeout is not a float or out of range")));
    assert_eq!(millis_timeout(b"10"), Ok(10));
    assert!(millis_timeout(b"1.5").is_err() && millis_timeout(b"-1").is_err());
}

#[test]
fn bad_internal_arguments_are_errors_not_panics() {
    let mut ks = Keyspace::new(2);
    for line in [
        "raftis.block x 1 1 0 BLPOP l 0",
        "raftis.block 1 1 1 0 GET l x",
        "raftis.block 1 1 1 -5 BLPOP l 0",
        "raftis.unblock maybe 1 1 1",
        "raftis.unblock timeout 1 1",
        "raftis.unblock timeout 1 1 z",
    ] {
        assert!(run(&mut ks, 1, argv(line)).is_error(), "{line}");
    }
    // The wrapped command's arity is checked again at apply.
    assert!(block(&mut ks, 1, 0, "BLMOVE a b LEFT").is_error());
    assert!(ks.blocked.is_empty());
}

#[test]
fn replicas_applying_the_same_entries_agree() {
    let entries = [
        block_argv(id(1), 0, &argv("BLPOP a b 0")),
        block_argv(id(2), 100, &argv("BLMOVE b a RIGHT LEFT 0.1")),
        argv("RPUSH b 1 2 3"),
        block_argv(id(3), 0, &argv("BZPOPMIN z 0")),
        argv("ZADD z 1 m"),
        argv("RPUSH a 4"),
    ];
    let mut replicas = [Keyspace::new(2), Keyspace::new(2)];
    let mut outcomes = [Vec::new(), Vec::new()];
    for (ks, out) in replicas.iter_mut().zip(&mut outcomes) {
        for (i, e) in entries.iter().enumerate() {
            run(ks, 1000 + i as u64, e.clone());
            out.extend(ks.blocked.take_outcomes());
        }
    }
    assert_eq!(replicas[0], replicas[1]);
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[0].len(), 3);
}

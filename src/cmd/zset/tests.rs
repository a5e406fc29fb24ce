//! Command-level tests: encodings switched by commands, determinism of random picks, key
//! deletion and WATCH versions. Reply bytes are checked against Redis by tests/diff/zset.txt.

use super::rank_range;
use crate::cmd::apply;
use crate::protocol::Frame;
use crate::store::{Keyspace, WriteBatch};
use bytes::Bytes;

fn run(ks: &mut Keyspace, seed: u64, line: &str) -> Frame {
    let cmd = line.split_whitespace().map(|a| Bytes::from(a.to_string())).collect();
    apply(ks, &WriteBatch { db: 0, now_ms: 1, seed, cmds: vec![cmd], transaction: None })
}

fn encoding(ks: &Keyspace, key: &str) -> &'static str {
    ks.db(0).get(key.as_bytes(), 1).map_or("none", |e| e.value.encoding())
}

fn filled(n: usize) -> Keyspace {
    let mut ks = Keyspace::default();
    let pairs: Vec<String> = (0..n).map(|i| format!("{} m{i:04}", i % 17)).collect();
    run(&mut ks, 0, &format!("ZADD z {}", pairs.join(" ")));
    ks
}

#[test]
fn rank_ranges_follow_redis() {
    assert_eq!(rank_range(0, -1, 3), Some((0, 3)));
    assert_eq!(rank_range(-100, 100, 3), Some((0, 3)));
    assert_eq!(rank_range(2, 1, 3), None);
    assert_eq!(rank_range(3, 5, 3), None);
    assert_eq!(rank_range(-1, -1, 3), Some((2, 3)));
    assert_eq!(rank_range(i64::MIN, i64::MAX, 3), Some((0, 3)));
    assert_eq!(rank_range(0, -1, 0), None);
}

#[test]
fn commands_switch_encodings_like_redis() {
    let mut ks = filled(128);
    assert_eq!(encoding(&ks, "z"), "listpack");
    run(&mut ks, 0, "ZADD z 1 one-more");
    assert_eq!(encoding(&ks, "z"), "skiplist");
    run(&mut ks, 0, "ZREM z one-more");
    assert_eq!(encoding(&ks, "z"), "skiplist", "no way back on removal");
    run(&mut ks, 0, "ZRANGESTORE d z 0 9");
    assert_eq!(encoding(&ks, "d"), "listpack", "stored results are fresh zsets");
    run(&mut ks, 0, "ZUNIONSTORE u 2 z d");
    assert_eq!(encoding(&ks, "u"), "listpack");
    run(&mut ks, 0, &format!("ZADD long 1 {}", "x".repeat(65)));
    assert_eq!(encoding(&ks, "long"), "skiplist");
    run(&mut ks, 0, &format!("ZADD short 1 {}", "x".repeat(64)));
    assert_eq!(encoding(&ks, "short"), "listpack");
}

#[test]
fn random_picks_depend_only_on_the_seed() {
    let base = filled(300);
    for line in ["ZRANDMEMBER z", "ZRANDMEMBER z 7", "ZRANDMEMBER z -20 WITHSCORES", "ZRANDMEMBER z 299"] {
        let (mut a, mut b) = (base.clone(), base.clone());
        assert_eq!(run(&mut a, 5, line), run(&mut b, 5, line), "{line}");
    }
    let (mut a, mut b) = (base.clone(), base.clone());
    assert_ne!(run(&mut a, 1, "ZRANDMEMBER z 7"), run(&mut b, 2, "ZRANDMEMBER z 7"), "the seed decides");
    let Frame::Array(picks) = run(&mut a, 3, "ZRANDMEMBER z 250") else { panic!("array expected") };
    let mut uniq = picks.clone();
    uniq.sort_by_key(|f| format!("{f:?}"));
    uniq.dedup();
    assert_eq!(uniq.len(), 250, "a positive count gives distinct members");
}

#[test]
fn emptied_zsets_are_deleted() {
    for line in ["ZREM z m0000 m0001 m0002", "ZPOPMIN z 5", "ZMPOP 1 z MAX COUNT 3", "ZREMRANGEBYRANK z 0 -1"] {
        let mut ks = filled(3);
        run(&mut ks, 0, line);
        assert_eq!(encoding(&ks, "z"), "none", "{line}");
    }
    let mut ks = filled(3);
    run(&mut ks, 0, "ZADD d 1 x");
    assert_eq!(run(&mut ks, 0, "ZRANGESTORE d z 5 9"), Frame::Integer(0));
    assert_eq!(encoding(&ks, "d"), "none", "an empty result deletes the destination");
}

#[test]
fn no_op_writes_leave_the_watch_version_alone() {
    let mut ks = filled(10);
    let v = ks.key_version(0, b"z", 1);
    for line in
        ["ZADD z NX 5 m0001", "ZADD z XX 5 nope", "ZADD z 1 m0001", "ZADD z GT 0 m0005", "ZREM z nope", "ZPOPMIN z 0"]
    {
        run(&mut ks, 0, line);
        assert_eq!(ks.key_version(0, b"z", 1), v, "{line}");
    }
    run(&mut ks, 0, "ZADD z 2 m0001");
    assert_ne!(ks.key_version(0, b"z", 1), v);
}

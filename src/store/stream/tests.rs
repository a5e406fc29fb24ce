use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn pairs(n: usize) -> Vec<Bytes> {
    vec![b("f"), b(&n.to_string())]
}

fn filled(n: u64) -> StreamValue {
    let mut s = StreamValue::default();
    for i in 1..=n {
        s.append(StreamId::new(i, 0), &pairs(i as usize), NodeLimits::default());
    }
    s
}

#[test]
fn nodes_cut_at_100_entries() {
    let s = filled(250);
    assert_eq!(s.len(), 250);
    assert_eq!(s.node_count(), 3);
    assert_eq!(s.range(StreamId::MIN, StreamId::MAX).count(), 250);
    assert_eq!(
        s.range(StreamId::new(99, 0), StreamId::new(101, 5)).map(|e| e.id().ms).collect::<Vec<_>>(),
        [99, 100, 101]
    );
    assert_eq!(s.range(StreamId::new(5, 0), StreamId::new(4, 0)).count(), 0);
}

#[test]
fn nodes_cut_at_4096_bytes() {
    let mut s = StreamValue::default();
    let big = Bytes::from(vec![b'x'; 1000]);
    for i in 1..=10 {
        s.append(StreamId::new(i, 0), &[b("f"), big.clone()], NodeLimits::default());
    }
    // Each entry takes about 1 KB of listpack: four fit before the 4096-byte limit.
    assert_eq!(s.node_count(), 3);
}

#[test]
fn approximate_trim_removes_whole_nodes_only() {
    let mut s = filled(250);
    assert_eq!(s.trim(Trim::MaxLen(120), true, 10_000), 100);
    assert_eq!(s.len(), 150);
    assert_eq!(s.first_id, StreamId::new(101, 0));
    assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
    assert_eq!(s.len(), 120);
    assert_eq!(s.edge(true).map(|e| e.id()), Some(StreamId::new(131, 0)));
    assert_eq!(s.trim(Trim::MinId(StreamId::new(200, 0)), false, 0), 69);
    assert_eq!(s.first_id, StreamId::new(200, 0));
}

#[test]
fn delete_marks_and_drops_empty_nodes() {
    let mut s = filled(3);
    assert!(s.delete(StreamId::new(1, 0)));
    assert!(!s.delete(StreamId::new(1, 0)));
    assert_eq!(s.first_id, StreamId::new(2, 0));
    assert_eq!(s.max_deleted_id, StreamId::new(1, 0));
    assert!(s.delete(StreamId::new(2, 0)) && s.delete(StreamId::new(3, 0)));
    assert_eq!(s.node_count(), 0);
    assert_eq!(s.first_id, StreamId::MIN);
    assert_eq!(s.last_id, StreamId::new(3, 0));
}

#[test]
fn shared_field_names_and_parts_round_trip() {
    let mut s = StreamValue::default();
    s.append(StreamId::new(1, 0), &[b("a"), b("1"), b("b"), b("2")], NodeLimits::default());
    s.append(StreamId::new(1, 1), &[b("a"), b("3"), b("b"), b("4")], NodeLimits::default());
    s.append(StreamId::new(1, 2), &[b("c"), b("5")], NodeLimits::default());
    let got: Vec<Vec<(Bytes, Bytes)>> = s
        .range(StreamId::MIN, StreamId::MAX)
        .map(|e| e.pairs().map(|(f, v)| (f.clone(), v.clone())).collect())
        .collect();
    assert_eq!(got[1], vec![(b("a"), b("3")), (b("b"), b("4"))]);
    assert_eq!(got[2], vec![(b("c"), b("5"))]);
    let nodes: Vec<Node> = s.nodes().cloned().collect();
    assert_eq!(StreamValue::from_parts(nodes, s.meta()), Some(s.clone()));
}

#[test]
fn radix_tree_nodes_match_redis() {
    // Values read from redis-server 7.0.15 holding the same streams.
    assert_eq!(StreamValue::default().radix_tree_nodes(), 1);
    assert_eq!(filled(3).radix_tree_nodes(), 2);
    assert_eq!(filled(250).radix_tree_nodes(), 8);
}

#[test]
fn lag_is_exact_until_a_deletion_lies_ahead() {
    let mut s = filled(10);
    let mut g = Group::new(StreamId::new(4, 0), 4);
    assert_eq!(s.lag(&g), Some(6));
    s.delete(StreamId::new(7, 0));
    assert_eq!(s.lag(&g), None, "a tombstone after the group's position");
    g.last_id = StreamId::new(10, 0);
    g.entries_read = ENTRIES_READ_UNKNOWN;
    assert_eq!(s.lag(&g), Some(0), "at the last id the counter is known again");
    // Delivering moves the counter one by one while no tombstone lies ahead...
    let mut t = filled(3);
    t.groups.insert(b("g"), Group::new(StreamId::MIN, 0));
    t.advance_group(b"g", StreamId::new(1, 0));
    assert_eq!(t.groups[&b("g")].entries_read, 1);
    // ... and is unknown past a deleted entry that is not at the head.
    t.delete(StreamId::new(2, 0));
    t.advance_group(b"g", StreamId::new(1, 1));
    assert_eq!(t.groups[&b("g")].entries_read, ENTRIES_READ_UNKNOWN);
}

//! What applications use, on three real `raftis` processes formed into a cluster over the
//! HTTP admin API: a BLPOP on a follower woken by an LPUSH on the leader; PUBLISH on node 1
//! received by SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE on node 3, in order; keyspace
//! notifications of writes sent to node 1 (and of keys the replicated expiry removes) seen
//! once each and in order by subscribers of node 3 and of node 1.

mod common;

use common::cluster::ThreeNodes;
use common::{wait_until, Conn};
use raftis::protocol::Frame;

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn a_blpop_on_a_follower_is_woken_by_an_lpush_on_the_leader() {
    let cluster = ThreeNodes::start("apps", &[]);
    let leader = cluster.leader().expect("leader");
    let follower = (leader + 1) % 3;
    let mut waiting = cluster.conn(follower);
    waiting.send_raw(&Conn::encode(&[b"BLPOP", b"jobs", b"0"]));
    let mut f = cluster.conn(follower);
    wait_until("the follower's client to block", 20, || f.info_field("clients", "blocked_clients") == "1");
    let mut l = cluster.conn(leader);
    assert_eq!(l.cmd(&["LPUSH", "jobs", "job-1"]), Frame::Integer(1));
    assert_eq!(waiting.read_frame(), Some(Frame::Array(vec![bulk("jobs"), bulk("job-1")])));
    assert_eq!(l.cmd(&["EXISTS", "jobs"]), Frame::Integer(0), "popped by the push's own entry");
    assert_eq!(f.info_field("clients", "blocked_clients"), "0");
}

fn push(kind: &str, parts: &[&str]) -> Frame {
    Frame::Array(std::iter::once(kind).chain(parts.iter().copied()).map(bulk).collect())
}

#[test]
fn a_publish_on_node_1_reaches_the_subscribers_of_node_3_in_order() {
    let cluster = ThreeNodes::start("apps", &[]);
    let mut sub = cluster.conn(2);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "news"]), Frame::Array(vec![bulk("subscribe"), bulk("news"), Frame::Integer(1)]));
    let mut psub = cluster.conn(2);
    assert_eq!(psub.cmd(&["PSUBSCRIBE", "n*"]), Frame::Array(vec![bulk("psubscribe"), bulk("n*"), Frame::Integer(1)]));
    let mut ssub = cluster.conn(2);
    assert_eq!(
        ssub.cmd(&["SSUBSCRIBE", "orders"]),
        Frame::Array(vec![bulk("ssubscribe"), bulk("orders"), Frame::Integer(1)])
    );
    let mut publisher = cluster.conn(0);
    // The reply counts node 1's own receivers: none.
    assert_eq!(publisher.cmd(&["PUBLISH", "news", "m0"]), Frame::Integer(0));
    assert_eq!(sub.read_frame(), Some(push("message", &["news", "m0"])));
    assert_eq!(psub.read_frame(), Some(push("pmessage", &["n*", "news", "m0"])));
    // A pipeline of messages from one publisher arrives whole and in order, once each.
    let mut pipeline = Vec::new();
    for i in 1..=300 {
        pipeline.extend(Conn::encode(&[b"PUBLISH", b"news", format!("m{i}").as_bytes()]));
    }
    publisher.send_raw(&pipeline);
    for _ in 1..=300 {
        assert_eq!(publisher.read_frame(), Some(Frame::Integer(0)));
    }
    for i in 1..=300 {
        assert_eq!(sub.read_frame(), Some(push("message", &["news", &format!("m{i}")])));
        assert_eq!(psub.read_frame(), Some(push("pmessage", &["n*", "news", &format!("m{i}")])));
    }
    assert_eq!(publisher.cmd(&["SPUBLISH", "orders", "o1"]), Frame::Integer(0));
    assert_eq!(ssub.read_frame(), Some(push("smessage", &["orders", "o1"])));
    // Nothing else arrived: the next message is the next one published.
    assert_eq!(cluster.conn(1).cmd(&["PUBLISH", "news", "last"]), Frame::Integer(0));
    assert_eq!(sub.read_frame(), Some(push("message", &["news", "last"])));
    let mut node3 = cluster.conn(2);
    let numsub = node3.cmd(&["PUBSUB", "NUMSUB", "news"]);
    assert_eq!(numsub, Frame::Array(vec![bulk("news"), Frame::Integer(1)]), "PUBSUB is about the node asked");
    assert_eq!(node3.cmd(&["PUBLISH", "news", "local"]), Frame::Integer(2), "node 3 counts its own receivers");
}

#[test]
fn keyspace_events_of_writes_on_node_1_reach_node_3_once_and_in_apply_order() {
    let cluster = ThreeNodes::start("apps", &[]);
    // Each node has its own setting: node 2 stays silent and must not make anyone hear twice.
    for i in [0, 2] {
        assert_eq!(cluster.conn(i).cmd(&["CONFIG", "SET", "notify-keyspace-events", "Egx$"]), Frame::ok());
    }
    let mut far = cluster.conn(2);
    let mut near = cluster.conn(0);
    for sub in [&mut far, &mut near] {
        let reply = sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
        assert_eq!(reply, Frame::Array(vec![bulk("psubscribe"), bulk("__keyevent@0__:*"), Frame::Integer(1)]));
    }
    let mut writer = cluster.conn(0);
    let mut pipeline = Vec::new();
    for i in 0..100 {
        pipeline.extend(Conn::encode(&[b"SET", format!("k{i}").as_bytes(), b"v"]));
    }
    // Removed by the active expiry: a replicated `raftis.expire` entry announces it.
    pipeline.extend(Conn::encode(&[b"SET", b"short", b"v", b"PX", b"100"]));
    writer.send_raw(&pipeline);
    for _ in 0..101 {
        assert_eq!(writer.read_frame(), Some(Frame::ok()));
    }
    let event = |name: &str, key: &str| push("pmessage", &["__keyevent@0__:*", &format!("__keyevent@0__:{name}"), key]);
    for sub in [&mut far, &mut near] {
        for i in 0..100 {
            assert_eq!(sub.read_frame(), Some(event("set", &format!("k{i}"))));
        }
        assert_eq!(sub.read_frame(), Some(event("set", "short")));
        assert_eq!(sub.read_frame(), Some(event("expire", "short")));
        // The socket's read timeout (10 s) bounds the wait for the expiry.
        assert_eq!(sub.read_frame(), Some(event("expired", "short")));
    }
    // Nothing was heard twice: the next event is the next write's (sent to node 2 this time).
    assert_eq!(cluster.conn(1).cmd(&["DEL", "k0"]), Frame::Integer(1));
    for sub in [&mut far, &mut near] {
        assert_eq!(sub.read_frame(), Some(event("del", "k0")));
    }
}

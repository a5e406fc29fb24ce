//! Client-side caching over real sockets: invalidations between connections and between the
//! nodes of a three-node cluster (a write through the leader invalidates the caches of clients
//! on followers, since every node applies every entry), RESP2 redirection, BCAST, NOLOOP,
//! FLUSHALL, keys removed by the active expiry, a redirection that leaves, the table's
//! `tracking-table-max-keys` cap and a client that leaves. Replies and errors of one connection
//! are compared with Redis in tests/diff/tracking.txt.

mod common;

use bytes::Bytes;
use common::cluster::ThreeNodes;
use common::{wait_until, Conn, Server};
use raftis::protocol::Frame;

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn keys(ks: &[&str]) -> Frame {
    Frame::Array(ks.iter().map(|k| bulk(k)).collect())
}

/// The RESP3 push `invalidate <keys>` (`None`: every key, after a flush).
fn invalidate(ks: Option<&[&str]>) -> Frame {
    Frame::Push(vec![bulk("invalidate"), ks.map_or(Frame::Null, keys)])
}

/// The RESP2 message a redirection's subscriber gets.
fn redirected(ks: Option<&[&str]>) -> Frame {
    let value = ks.map_or(Frame::Null, keys);
    Frame::Array(vec![bulk("message"), bulk("__redis__:invalidate"), value])
}

/// A RESP3 connection tracking keys with `opts`.
fn tracker(mut c: Conn, opts: &[&str]) -> Conn {
    assert!(matches!(c.cmd(&["HELLO", "3"]), Frame::Map(_)));
    let mut args = vec!["CLIENT", "TRACKING", "on"];
    args.extend_from_slice(opts);
    assert_eq!(c.cmd(&args), Frame::ok());
    c
}

/// A RESP2 connection subscribed to `__redis__:invalidate`, and its client id.
fn redirection(mut c: Conn) -> (Conn, String) {
    let Frame::Integer(id) = c.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    let reply = c.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    assert_eq!(reply, Frame::Array(vec![bulk("subscribe"), bulk("__redis__:invalidate"), Frame::Integer(1)]));
    (c, id.to_string())
}

/// PING answered first: nothing was pushed to `c` before it.
fn nothing_pending(c: &mut Conn) {
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
}

fn info_u64(c: &mut Conn, section: &str, name: &str) -> u64 {
    c.info_field(section, name).parse().unwrap_or(u64::MAX)
}

#[test]
fn a_write_through_the_leader_invalidates_caches_on_followers() {
    let cluster = ThreeNodes::start("trk", &[]);
    let leader = cluster.leader().expect("leader");
    let (f1, f2) = match leader {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let mut writer = cluster.conn(leader);
    assert_eq!(writer.cmd(&["SET", "k", "v1"]), Frame::ok());
    // Both followers have applied it (a linearizable read waits for that): otherwise its
    // apply could come after a tracking read below and announce it.
    for f in [f1, f2] {
        assert_eq!(cluster.conn(f).cmd(&["GET", "k"]), bulk("v1"));
    }
    // RESP3 on one follower, RESP2 redirected on the other, BCAST on the leader itself.
    let mut t1 = tracker(cluster.conn(f1), &[]);
    assert_eq!(t1.cmd(&["GET", "k"]), bulk("v1"), "a linearizable read on a follower");
    let (mut sub, id) = redirection(cluster.conn(f2));
    let mut t2 = cluster.conn(f2);
    assert_eq!(t2.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]), Frame::ok());
    assert_eq!(t2.cmd(&["MGET", "k", "other"]), Frame::Array(vec![bulk("v1"), Frame::Null]));
    let mut t3 = tracker(cluster.conn(leader), &["BCAST", "PREFIX", "k"]);
    assert_eq!(writer.cmd(&["SET", "k", "v2"]), Frame::ok());
    assert_eq!(t1.read_frame(), Some(invalidate(Some(&["k"]))));
    assert_eq!(sub.read_frame(), Some(redirected(Some(&["k"]))));
    assert_eq!(t3.read_frame(), Some(invalidate(Some(&["k"]))));
    // The key left the table when invalidated: a second write says nothing until re-read.
    assert_eq!(writer.cmd(&["SET", "k", "v3"]), Frame::ok());
    assert_eq!(t3.read_frame(), Some(invalidate(Some(&["k"]))));
    nothing_pending(&mut t1);
    assert_eq!(t1.cmd(&["GET", "k"]), bulk("v3"));
    // FLUSHALL through the leader: every tracking client of every node drops everything.
    assert_eq!(writer.cmd(&["FLUSHALL"]), Frame::ok());
    // t1's key went in the table before its read waited for the follower to catch up: if
    // the follower applied v3 after that, t1 was told (harmless: its reply had v3 already).
    let mut first = t1.read_frame();
    if first == Some(invalidate(Some(&["k"]))) {
        first = t1.read_frame();
    }
    assert_eq!(first, Some(invalidate(None)));
    assert_eq!(sub.read_frame(), Some(redirected(None)));
    assert_eq!(t3.read_frame(), Some(invalidate(None)));
    assert_eq!(info_u64(&mut t1, "clients", "tracking_clients"), 1);
}

#[test]
fn noloop_skips_only_the_clients_own_writes_and_bcast_prefixes_filter_keys() {
    let server = Server::raftis(&[]);
    let mut a = tracker(server.conn(), &["NOLOOP"]);
    let mut b = tracker(server.conn(), &[]);
    for c in [&mut a, &mut b] {
        assert_eq!(c.cmd(&["MGET", "x", "y"]), Frame::Array(vec![Frame::Null, Frame::Null]));
    }
    // A's own write: B hears of it, A does not.
    assert_eq!(a.cmd(&["SET", "x", "1"]), Frame::ok());
    assert_eq!(b.read_frame(), Some(invalidate(Some(&["x"]))));
    nothing_pending(&mut a);
    // B's write: both hear of it (B is not NOLOOP: after its reply).
    assert_eq!(b.cmd(&["SET", "y", "1"]), Frame::ok());
    assert_eq!(b.read_frame(), Some(invalidate(Some(&["y"]))));
    assert_eq!(a.read_frame(), Some(invalidate(Some(&["y"]))));
    // BCAST with NOLOOP and prefixes: other clients' keys under the prefixes, in one message.
    let mut c = tracker(server.conn(), &["BCAST", "NOLOOP", "PREFIX", "user:", "PREFIX", "cart:"]);
    let mut w = server.conn();
    assert_eq!(c.cmd(&["MSET", "user:self", "1"]), Frame::ok());
    assert_eq!(w.cmd(&["MSET", "user:2", "a", "user:1", "b", "order:1", "c", "cart:9", "d"]), Frame::ok());
    assert_eq!(c.read_frame(), Some(invalidate(Some(&["cart:9"]))));
    assert_eq!(c.read_frame(), Some(invalidate(Some(&["user:1", "user:2"]))));
    nothing_pending(&mut c);
    assert_eq!(info_u64(&mut c, "stats", "tracking_total_prefixes"), 2);
}

#[test]
fn keys_removed_by_the_active_expiry_are_invalidated() {
    let server = Server::raftis(&[]);
    let mut w = server.conn();
    assert_eq!(w.cmd(&["SET", "soon", "v"]), Frame::ok());
    let mut t = tracker(server.conn(), &[]);
    assert_eq!(t.cmd(&["GET", "soon"]), bulk("v"));
    // Setting a TTL changes the key (as Redis's EXPIRE signals it).
    assert_eq!(w.cmd(&["PEXPIRE", "soon", "100"]), Frame::Integer(1));
    assert_eq!(t.read_frame(), Some(invalidate(Some(&["soon"]))));
    // Read again (live or already past its time: tracked either way), then removed by the
    // active expiry, whose invalidation may come before or after the reply. The socket's read
    // timeout (10 s) is the deadline.
    t.send_raw(&Conn::encode(&[b"GET", b"soon"]));
    let mut frames = vec![t.read_frame(), t.read_frame()];
    frames.sort_by_key(|f| matches!(f, Some(Frame::Push(_))));
    assert!(matches!(frames[0], Some(Frame::Null) | Some(Frame::Bulk(_))), "{frames:?}");
    assert_eq!(frames[1], Some(invalidate(Some(&["soon"]))));
}

#[test]
fn a_redirection_that_leaves_is_reported_and_flagged() {
    let server = Server::raftis(&[]);
    let mut target = server.conn();
    let Frame::Integer(id) = target.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    let mut t = tracker(server.conn(), &["REDIRECT", &id.to_string()]);
    assert_eq!(t.cmd(&["GET", "k"]), Frame::Null);
    drop(target);
    let mut w = server.conn();
    wait_until("the redirection's client to leave", 10, || {
        !format!("{:?}", w.cmd(&["CLIENT", "LIST"])).contains(&format!("id={id} "))
    });
    assert_eq!(w.cmd(&["SET", "k", "1"]), Frame::ok());
    assert_eq!(t.read_frame(), Some(Frame::Push(vec![bulk("tracking-redir-broken"), Frame::Integer(id)])));
    let Frame::Verbatim(_, line) = t.cmd(&["CLIENT", "INFO"]) else { panic!("CLIENT INFO") };
    assert!(String::from_utf8_lossy(&line).contains("flags=tR "), "{line:?}");
}

#[test]
fn the_table_is_capped_and_forgets_a_client_that_leaves() {
    let server = Server::raftis(&[]);
    let mut admin = server.conn();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "10"]), Frame::ok());
    let mut t = tracker(server.conn(), &[]);
    // Each key past the cap invalidates another (the lowest), as if it had changed; the
    // pushes and the replies interleave (here before the reply that made room, in Redis
    // before the next command's).
    let (mut evicted, mut replies) = (Vec::new(), 0);
    for i in 0..15 {
        t.send_raw(&Conn::encode(&[b"GET", format!("k{i:02}").as_bytes()]));
    }
    while replies < 15 || evicted.len() < 5 {
        match t.read_frame() {
            Some(Frame::Push(parts)) => evicted.push(parts[1].clone()),
            Some(Frame::Null) => replies += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<Frame> = (0..5).map(|i| keys(&[&format!("k{i:02}")])).collect();
    assert_eq!(evicted, expected);
    assert_eq!(info_u64(&mut admin, "stats", "tracking_total_keys"), 10);
    assert_eq!(info_u64(&mut admin, "stats", "tracking_total_items"), 10);
    drop(t);
    wait_until("the tracking client to be forgotten", 10, || info_u64(&mut admin, "clients", "tracking_clients") == 0);
    assert_eq!(info_u64(&mut admin, "stats", "tracking_total_items"), 0, "its entries are swept");
    assert_eq!(info_u64(&mut admin, "stats", "tracking_total_keys"), 0);
}

//! ACL over real sockets: a user limited in commands, keys and channels (NOPERM at top level,
//! in MULTI/EXEC and in scripts), AUTH / HELLO AUTH / WRONGPASS, ACL LOG, CLIENT LIST's
//! `user=`, DELUSER closing the user's connections, and the users replicated through Raft (set
//! on one node of three, used on the others, kept across a restart from a snapshot).

mod common;

use bytes::Bytes;
use common::cluster::ThreeNodes;
use common::{wait_until, Conn, Server};
use raftis::protocol::Frame;

fn err(f: &Frame) -> String {
    match f {
        Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    }
}

trait IntoArray {
    fn into_array(self) -> Vec<Frame>;
}

impl IntoArray for Frame {
    fn into_array(self) -> Vec<Frame> {
        match self {
            Frame::Array(v) => v,
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Array(v) => v.iter().map(text).collect::<Vec<_>>().join("\n"),
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// The value of `field` in a map-like reply (RESP2 flat array or RESP3 map).
fn field(f: &Frame, name: &str) -> Frame {
    let pairs: Vec<(Frame, Frame)> = match f {
        Frame::Map(p) => p.clone(),
        Frame::Array(v) => v.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect(),
        other => panic!("not a map: {other:?}"),
    };
    pairs.into_iter().find(|(k, _)| text(k) == name).map(|(_, v)| v).unwrap_or_else(|| panic!("no {name}"))
}

fn limited(c: &mut Conn) {
    let rules = ["on", ">pw", "~k*", "&c*", "+get", "+set", "+multi", "+exec", "+eval", "+publish", "+client", "+acl"];
    let mut args = vec!["ACL", "SETUSER", "lim"];
    args.extend(rules);
    assert_eq!(c.cmd(&args), Frame::ok());
}

#[test]
fn a_limited_user_is_refused_commands_keys_and_channels_and_the_log_says_why() {
    let s = Server::raftis(&[]);
    let mut admin = s.conn();
    limited(&mut admin);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["AUTH", "lim", "pw"]), Frame::ok());
    assert_eq!(text(&c.cmd(&["ACL", "WHOAMI"])), "lim");
    assert_eq!(c.cmd(&["SET", "k1", "v"]), Frame::ok());
    assert_eq!(text(&c.cmd(&["GET", "k1"])), "v");
    assert_eq!(err(&c.cmd(&["DEL", "k1"])), "NOPERM this user has no permissions to run the 'del' command");
    assert_eq!(
        err(&c.cmd(&["GET", "other"])),
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    );
    assert_eq!(
        err(&c.cmd(&["PUBLISH", "news", "m"])),
        "NOPERM this user has no permissions to access one of the channels used as arguments"
    );
    assert_eq!(c.cmd(&["PUBLISH", "c1", "m"]), Frame::Integer(0));
    assert_eq!(
        err(&c.cmd(&["CONFIG", "GET", "maxmemory"])),
        "NOPERM this user has no permissions to run the 'config|get' command"
    );
    let info = text(&c.cmd(&["CLIENT", "INFO"]));
    assert!(info.contains(" user=lim "), "{info}");
    let list = text(&admin.cmd(&["CLIENT", "LIST"]));
    assert!(list.contains(" user=lim ") && list.contains(" user=default "), "{list}");
    // The log, newest first: the key, channel and command denials (a repeat is counted).
    assert_eq!(err(&c.cmd(&["DEL", "k1"])), "NOPERM this user has no permissions to run the 'del' command");
    let Frame::Array(log) = admin.cmd(&["ACL", "LOG"]) else { panic!("ACL LOG") };
    let reasons: Vec<String> = log.iter().map(|e| text(&field(e, "reason"))).collect();
    assert_eq!(reasons, ["command", "channel", "key", "command"], "{log:?}");
    let del = log.iter().find(|e| text(&field(e, "object")) == "del").expect("the DEL entry");
    assert_eq!(field(del, "count"), Frame::Integer(2));
    assert_eq!(text(&field(del, "username")), "lim");
    assert_eq!(text(&field(del, "context")), "toplevel");
    assert!(text(&field(del, "client-info")).contains("user=lim"));
    assert_eq!(admin.cmd(&["ACL", "LOG", "RESET"]), Frame::ok());
    assert_eq!(admin.cmd(&["ACL", "LOG"]), Frame::Array(vec![]));
}

#[test]
fn transactions_and_scripts_obey_the_users_limits() {
    let s = Server::raftis(&[]);
    let mut admin = s.conn();
    limited(&mut admin);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["AUTH", "lim", "pw"]), Frame::ok());
    // Refused while queueing: EXEC aborts.
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert!(err(&c.cmd(&["GET", "x"])).starts_with("NOPERM"));
    assert_eq!(c.cmd(&["SET", "k1", "v"]), Frame::Simple(Bytes::from_static(b"QUEUED")));
    assert_eq!(err(&c.cmd(&["EXEC"])), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(admin.cmd(&["EXISTS", "k1"]), Frame::Integer(0), "nothing of the aborted transaction ran");
    // Revoked between queueing and EXEC: that command fails in its place, the others run.
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "k1", "v"]), Frame::Simple(Bytes::from_static(b"QUEUED")));
    assert_eq!(c.cmd(&["GET", "k1"]), Frame::Simple(Bytes::from_static(b"QUEUED")));
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "lim", "-get"]), Frame::ok());
    let Frame::Array(replies) = c.cmd(&["EXEC"]) else { panic!("EXEC") };
    assert_eq!(replies[0], Frame::ok());
    assert_eq!(err(&replies[1]), "NOPERM this user has no permissions to run the 'get' command");
    // A script's calls are checked against its user.
    let e = err(&c.cmd(&["EVAL", "return redis.call('set','other','v')", "0"]));
    assert!(e.starts_with("ERR The user executing the script can't access at least one of the keys mentioned"), "{e}");
    let e = err(&c.cmd(&["EVAL", "return redis.call('del','k1')", "0"]));
    assert!(e.starts_with("ERR The user executing the script can't run this command or subcommand"), "{e}");
    assert_eq!(c.cmd(&["EVAL", "return redis.call('set',KEYS[1],'w')", "1", "k2"]), Frame::ok());
    assert_eq!(admin.cmd(&["EXISTS", "other"]), Frame::Integer(0));
    assert_eq!(text(&admin.cmd(&["GET", "k2"])), "w");
}

#[test]
fn auth_hello_wrongpass_requirepass_and_reset() {
    let s = Server::raftis(&[]);
    let mut admin = s.conn();
    limited(&mut admin);
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "off-user", "off", ">pw", "+@all"]), Frame::ok());
    let wrong = "WRONGPASS invalid username-password pair or user is disabled.";
    let mut c = s.conn();
    assert_eq!(err(&c.cmd(&["AUTH", "lim", "nope"])), wrong);
    assert_eq!(err(&c.cmd(&["AUTH", "nobody", "pw"])), wrong);
    assert_eq!(err(&c.cmd(&["AUTH", "off-user", "pw"])), wrong);
    assert_eq!(err(&c.cmd(&["HELLO", "3", "AUTH", "lim", "nope"])), wrong);
    let hello = c.cmd(&["HELLO", "3", "AUTH", "lim", "pw"]);
    assert_eq!(field(&hello, "proto"), Frame::Integer(3));
    assert_eq!(text(&c.cmd(&["ACL", "WHOAMI"])), "lim");
    let Frame::Array(log) = admin.cmd(&["ACL", "LOG"]) else { panic!("ACL LOG") };
    assert!(log.iter().all(|e| text(&field(e, "reason")) == "auth" && text(&field(e, "object")) == "AUTH"));
    let users: Vec<String> = log.iter().map(|e| text(&field(e, "username"))).collect();
    assert_eq!(users, ["off-user", "nobody", "lim"], "newest first");
    assert_eq!(field(&log[2], "count"), Frame::Integer(2), "lim's two failures are one entry");
    // requirepass is the default user's password.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", "sekret"]), Frame::ok());
    let mut fresh = s.conn();
    assert_eq!(err(&fresh.cmd(&["GET", "k"])), "NOAUTH Authentication required.");
    assert_eq!(err(&fresh.cmd(&["AUTH", "wrong"])), wrong);
    assert_eq!(fresh.cmd(&["AUTH", "sekret"]), Frame::ok());
    assert_eq!(text(&fresh.cmd(&["ACL", "WHOAMI"])), "default");
    // RESET: back to the default user, who needs a password now.
    assert_eq!(c.cmd(&["RESET"]), Frame::Simple(Bytes::from_static(b"RESET")));
    assert_eq!(err(&c.cmd(&["ACL", "WHOAMI"])), "NOAUTH Authentication required.");
    assert_eq!(fresh.cmd(&["CONFIG", "SET", "requirepass", ""]), Frame::ok());
    assert_eq!(text(&s.conn().cmd(&["ACL", "WHOAMI"])), "default");
}

#[test]
fn deleting_a_user_closes_its_connections() {
    let s = Server::raftis(&[]);
    let mut admin = s.conn();
    limited(&mut admin);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["AUTH", "lim", "pw"]), Frame::ok());
    assert_eq!(err(&admin.cmd(&["ACL", "DELUSER", "default"])), "ERR The 'default' user cannot be removed");
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "lim", "nobody"]), Frame::Integer(1));
    wait_until("lim's connection closed", 10, || c.is_closed());
    assert_eq!(admin.cmd(&["ACL", "USERS"]), Frame::Array(vec![Frame::Bulk(Bytes::from_static(b"default"))]));
}

#[test]
fn users_set_on_one_node_authenticate_on_the_others_and_survive_a_restart() {
    let mut cluster = ThreeNodes::start("acl", &["--snapshot-logs", "5"]);
    let leader = cluster.leader().expect("leader");
    let follower = (leader + 1) % 3;
    // Set through a follower: the change goes through the log like any write.
    let mut f = cluster.conn(follower);
    assert_eq!(f.cmd(&["ACL", "SETUSER", "rep", "on", ">pw", "~r*", "+@read"]), Frame::ok());
    for i in 0..3 {
        let mut c = cluster.conn(i);
        wait_until("the user on every node", 20, || c.cmd(&["AUTH", "rep", "pw"]) == Frame::ok());
        assert!(err(&c.cmd(&["SET", "r1", "v"])).starts_with("NOPERM"), "node {i}");
    }
    // Enough writes for a snapshot, then a restart: the users come back from it.
    for n in 0..20 {
        assert_eq!(f.cmd(&["SET", &format!("k{n}"), "v"]), Frame::ok());
    }
    let mut l = cluster.conn(leader);
    assert_eq!(l.cmd(&["ACL", "SETUSER", "rep", "<pw", ">pw2"]), Frame::ok());
    let other = (leader + 2) % 3;
    let mut o = cluster.conn(other);
    wait_until("the new password on another node", 20, || o.cmd(&["AUTH", "rep", "pw2"]) == Frame::ok());
    assert!(err(&o.cmd(&["AUTH", "rep", "pw"])).starts_with("WRONGPASS"));
    let before = text(&Frame::Array(cluster.conn(other).cmd(&["ACL", "LIST"]).into_array()));
    drop(o);
    cluster.restart(other, &["--snapshot-logs", "5"]);
    let mut o = cluster.conn(other);
    wait_until("the users back after the restart", 30, || o.cmd(&["AUTH", "rep", "pw2"]) == Frame::ok());
    assert_eq!(text(&Frame::Array(cluster.conn(other).cmd(&["ACL", "LIST"]).into_array())), before);
    // Deleted through another node: the user's connection here is refused, then closed.
    assert_eq!(cluster.conn(leader).cmd(&["ACL", "DELUSER", "rep"]), Frame::Integer(1));
    wait_until("the deletion on the other node", 20, || matches!(o.cmd(&["GET", "r1"]), Frame::Error(_)));
    wait_until("the deleted user's connection closed", 10, || o.is_closed());
}

#[test]
fn acl_save_writes_the_users_and_acl_load_replaces_them_or_nothing() {
    let dir = common::tempdir::TempDir::new("aclfile");
    let path = dir.0.join("users.acl");
    let file = path.to_str().expect("utf-8 path").to_string();
    let s = Server::raftis(&["--aclfile", &file]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "aclfile"]),
        Frame::Array(vec![Frame::bulk("aclfile"), Frame::bulk(file.clone())])
    );
    assert_eq!(c.cmd(&["ACL", "SETUSER", "a", "on", ">x", "~k*", "+get"]), Frame::ok());
    assert_eq!(c.cmd(&["ACL", "SAVE"]), Frame::ok());
    let saved = std::fs::read_to_string(&path).expect("the saved file");
    assert_eq!(saved, text(&c.cmd(&["ACL", "LIST"])) + "\n");
    // A file with errors changes nothing and says where each is.
    std::fs::write(&path, "user default on nopass ~* &* +@all\nuser c on +bogus\nuser d foo\n").unwrap();
    assert_eq!(
        err(&c.cmd(&["ACL", "LOAD"])),
        format!(
            "ERR {file}:2: Error in applying operation '+bogus': Unknown command or category name in ACL. \
             {file}:3: Syntax error. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        )
    );
    std::fs::write(&path, "user c on >pw +get\nuser c off\n").unwrap();
    assert!(err(&c.cmd(&["ACL", "LOAD"])).starts_with("ERR WARNING: Duplicate user 'c' found on line 2."));
    assert_eq!(c.cmd(&["ACL", "USERS"]), Frame::Array(vec![Frame::bulk("a"), Frame::bulk("default")]));
    // A good one replaces every user (the default user comes back as a fresh one).
    std::fs::write(&path, "user c on >pw ~* +get\n").unwrap();
    assert_eq!(c.cmd(&["ACL", "LOAD"]), Frame::ok());
    assert_eq!(c.cmd(&["ACL", "USERS"]), Frame::Array(vec![Frame::bulk("c"), Frame::bulk("default")]));
    let mut u = s.conn();
    assert_eq!(u.cmd(&["AUTH", "c", "pw"]), Frame::ok());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        err(&c.cmd(&["ACL", "LOAD"])),
        format!("ERR Error loading ACLs, opening file '{file}': No such file or directory")
    );
}

#[test]
fn without_an_acl_file_save_and_load_refuse_as_redis_does() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    for sub in ["SAVE", "LOAD"] {
        assert!(err(&c.cmd(&["ACL", sub])).starts_with("ERR This Redis instance is not configured to use an ACL file."));
    }
}

#[test]
fn in_a_sharded_cluster_users_reach_every_node() {
    let cluster = common::sharded::Sharded::start("aclshard");
    let mut c = cluster.conn(0);
    assert_eq!(c.cmd(&["ACL", "SETUSER", "shard", "on", ">pw", "~k*", "+@read", "+cluster"]), Frame::ok());
    for i in 0..3 {
        let mut n = cluster.conn(i);
        wait_until("the user on every node", 20, || n.cmd(&["AUTH", "shard", "pw"]) == Frame::ok());
        assert_eq!(
            err(&n.cmd(&["SET", "k1", "v"])),
            "NOPERM this user has no permissions to run the 'set' command",
            "node {i}"
        );
    }
    // A client retries a write that timed out (-TRYAGAIN on a loaded machine): it is idempotent.
    wait_until("CONFIG SET requirepass", 60, || c.cmd(&["CONFIG", "SET", "requirepass", "all"]) == Frame::ok());
    for i in 0..3 {
        wait_until("the default password on every node", 20, || {
            let mut n = cluster.conn(i);
            n.cmd(&["PING"]) != Frame::Simple(Bytes::from_static(b"PONG")) && n.cmd(&["AUTH", "all"]) == Frame::ok()
        });
    }
}

#[test]
fn users_set_on_different_nodes_reach_every_group_when_nodes_hold_some_groups_only() {
    // Two voters per group on three nodes: each node holds only some groups. Every group must
    // get every user (each node publishes the table of whichever group applied last), not only
    // the groups of the node the client talked to.
    let cluster = common::sharded::Sharded::start_with("aclpart", 2);
    for i in 0..3 {
        let mut c = cluster.conn(i);
        let user = format!("u{i}");
        // A client retries a write that timed out (-TRYAGAIN on a loaded machine): it is idempotent.
        wait_until("ACL SETUSER", 60, || c.cmd(&["ACL", "SETUSER", &user, "on", ">pw", "~*", "+@all"]) == Frame::ok());
    }
    for i in 0..3 {
        let mut n = cluster.conn(i);
        wait_until("every user on every node", 30, || {
            (0..3).all(|u| n.cmd(&["AUTH", &format!("u{u}"), "pw"]) == Frame::ok())
        });
        let Frame::Array(users) = n.cmd(&["ACL", "USERS"]) else { panic!("ACL USERS") };
        assert_eq!(users.len(), 4, "default and u0..u2 on node {i}: {users:?}");
    }
}

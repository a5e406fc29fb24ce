//! The client port while a node loads its data at start (`src/server/loading.rs`): clients
//! connect at once and get `-LOADING` as from Redis, INFO says `loading:1`, and the commands
//! Redis serves while loading wait and run once the data is in. Loading is held open with the
//! binary's test hook (`RAFTIS_TEST_HOLD_LOADING`: until a file exists), so the test never
//! races a load that could end at any moment.

mod common;

use common::{free_port, tempdir::TempDir, wait_until, Conn, Server};
use raftis::protocol::Frame;

const LOADING: &str = "LOADING Redis is loading the dataset in memory";

fn error(text: &str) -> Frame {
    Frame::Error(text.as_bytes().to_vec().into())
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(text.as_bytes().to_vec().into())
}

#[test]
fn a_loading_node_refuses_with_loading_then_serves_its_data() {
    let dir = TempDir::new("loading");
    // A snapshot and log entries after it: the restart loads one and replays the other.
    let flags = ["--snapshot-logs", "100"];
    let node = Server::raftis_in(&dir.0, &flags);
    let mut c = node.conn();
    for i in 0..250 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]), Frame::ok());
    }
    node.kill9();

    let held = Held::start(&dir, &flags);
    let (node, mut c, release) = (&held.node, held.conn(), held.release.clone());
    // Refused while loading, after Redis's own earlier checks.
    assert_eq!(c.cmd(&["PING"]), error(LOADING));
    assert_eq!(c.cmd(&["GET", "k1"]), error(LOADING));
    assert_eq!(c.cmd(&["SET", "new", "x"]), error(LOADING));
    assert_eq!(c.cmd(&["GET"]), error("ERR wrong number of arguments for 'get' command"));
    assert_eq!(c.info_field("persistence", "loading"), "1");
    // CLIENT SETNAME is served while loading: it waits, then runs, and so does what follows.
    let mut waiting = node.conn();
    let mut pipeline = Conn::encode(&[b"CLIENT", b"SETNAME", b"early"]);
    pipeline.extend(Conn::encode(&[b"GET", b"k7"]));
    waiting.send_raw(&pipeline);
    // Still loading: the other connection goes on getting -LOADING.
    assert_eq!(c.cmd(&["DBSIZE"]), error(LOADING));

    std::fs::write(&release, b"").expect("release the loading");
    assert_eq!(waiting.read_frame(), Some(Frame::ok()));
    assert_eq!(waiting.read_frame(), Some(bulk("v7")));
    assert_eq!(waiting.cmd(&["CLIENT", "GETNAME"]), bulk("early"));
    wait_until("the node to serve after loading", 20, || c.cmd(&["PING"]) == Frame::Simple("PONG".into()));
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(250));
    assert_eq!(c.info_field("persistence", "loading"), "0");
    assert_eq!(c.cmd(&["SET", "new", "x"]), Frame::ok());
    // A client that connects now is served at once.
    assert_eq!(node.conn().cmd(&["GET", "k249"]), bulk("v249"));
}

#[test]
fn quit_while_loading_closes_the_connection() {
    let dir = TempDir::new("loading-quit");
    let held = Held::start(&dir, &[]);
    let mut c = held.conn();
    assert_eq!(c.cmd(&["PING"]), error(LOADING));
    assert_eq!(c.cmd(&["QUIT"]), Frame::ok());
    assert!(c.is_closed());
}

/// SIGTERM before the data is loaded stops the node at once and cleanly (exit status 0, as
/// Redis's "shutdown signal during loading"), not by the signal's default action.
#[test]
fn sigterm_while_loading_exits_cleanly() {
    let dir = TempDir::new("loading-sigterm");
    let mut held = Held::start(&dir, &[]);
    assert_eq!(held.conn().cmd(&["PING"]), error(LOADING));
    let sent = std::process::Command::new("kill").args(["-TERM", &held.node.pid().to_string()]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM failed");
    let mut status = None;
    wait_until("the loading node to exit on SIGTERM", 20, || {
        status = held.node.try_wait();
        status.is_some()
    });
    let status = status.expect("exited");
    assert!(status.success(), "exit status {status:?}: killed by the signal rather than stopping");
}

/// A node whose loading is held open (`RAFTIS_TEST_HOLD_LOADING`) until `release` exists.
struct Held {
    node: Server,
    release: std::path::PathBuf,
    _gate: TempDir,
}

impl Held {
    fn start(dir: &TempDir, flags: &[&str]) -> Held {
        let gate = TempDir::new("loading-gate");
        let release = gate.0.join("release");
        let env = [("RAFTIS_TEST_HOLD_LOADING", release.to_str().expect("a UTF-8 temp path"))];
        let node = Server::spawn_raftis_with(&dir.0, free_port(), flags, &env);
        Held { node, release, _gate: gate }
    }

    /// A connection, made as soon as the port accepts one.
    fn conn(&self) -> Conn {
        let mut conn = None;
        wait_until("the loading node to accept a client", 20, || {
            conn = Conn::try_connect(self.node.port).ok();
            conn.is_some()
        });
        conn.expect("connected")
    }
}

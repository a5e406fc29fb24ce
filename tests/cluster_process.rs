//! Three real `raftis` processes on 127.0.0.1 formed into a cluster over the HTTP admin API:
//! 10 000 writes from concurrent clients while the leader is killed with SIGKILL; a new leader
//! takes over, every acknowledged write is on every node (same DEBUG DIGEST-EXACT), the killed
//! node restarts on its data and catches up; a follower kept down while the log is compacted
//! past its position catches up through a snapshot.

mod common;

use common::http::{http, json_u64};
use common::{free_port_block, tempdir::TempDir, wait_until, Conn, Server};
use raftis::protocol::{parse_frame, Frame, Limits, ParseError};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries between snapshots: low, so that the log is compacted several times in the test.
const SNAPSHOT_LOGS: &str = "400";

struct Node {
    id: u64,
    port: u16,
    raft_port: u16,
    dir: TempDir,
    server: Option<Server>,
}

impl Node {
    /// Node `id` (1, 2, ...) of a cluster whose ports start at `ports` (see `free_port_block`).
    fn new(id: u64, (base, raft_base): (u16, u16)) -> Node {
        let offset = id as u16 - 1;
        let (port, raft_port) = (base + offset, raft_base + offset);
        Node { id, port, raft_port, dir: TempDir::new(&format!("proc{id}")), server: None }
    }

    fn start(&mut self) {
        let raft_addr = format!("127.0.0.1:{}", self.raft_port);
        let id = self.id.to_string();
        // Cluster mode: READONLY (reading a follower's own copy) exists only there.
        let flags = [
            "--node-id",
            &id,
            "--raft-addr",
            &raft_addr,
            "--cluster-enabled",
            // The single-group cluster (group 0 holds the data): the test checks one log.
            "--num-groups",
            "0",
            "--is-bootstrap=false",
            "--snapshot-logs",
            SNAPSHOT_LOGS,
        ];
        self.server = Some(Server::raftis_at(&self.dir.0, self.port, &flags));
    }

    fn kill9(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill9();
        }
    }

    fn is_up(&self) -> bool {
        self.server.is_some()
    }

    fn metrics(&self) -> String {
        http(self.raft_port, "GET", "/raft/metrics", "").1
    }
}

/// The leader id that the running nodes agree on, if it is one of them.
fn leader(nodes: &[Node]) -> Option<u64> {
    let up: Vec<&Node> = nodes.iter().filter(|n| n.is_up()).collect();
    let seen: Vec<Option<u64>> = up.iter().map(|n| json_u64(&n.metrics(), "current_leader")).collect();
    let first = (*seen.first()?)?;
    let agreed = seen.iter().all(|s| *s == Some(first));
    (agreed && up.iter().any(|n| n.id == first)).then_some(first)
}

fn digest(node: &Node) -> Option<Frame> {
    let mut c = Conn::try_connect(node.port).ok()?;
    assert_eq!(c.cmd(&["READONLY"]), Frame::ok());
    Some(c.cmd(&["DEBUG", "DIGEST-EXACT"]))
}

/// Waits until every running node's own copy has the same digest; returns it.
fn converged(nodes: &[Node]) -> Frame {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last: Vec<Option<Frame>> = nodes.iter().filter(|n| n.is_up()).map(digest).collect();
        if last.windows(2).all(|w| w[0] == w[1]) && last[0].is_some() {
            return last[0].clone().expect("digest");
        }
        assert!(Instant::now() < deadline, "replicas did not converge: {last:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client that survives node deaths: on any failure it moves to the next node.
struct Client {
    ports: Vec<u16>,
    at: usize,
    stream: Option<TcpStream>,
}

impl Client {
    fn new(ports: Vec<u16>, at: usize) -> Client {
        Client { at: at % ports.len(), ports, stream: None }
    }

    fn try_cmd(&mut self, args: &[&str]) -> Option<Frame> {
        if self.stream.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.ports[self.at])).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut()?;
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        stream.write_all(&Conn::encode(&args)).ok()?;
        let mut buf = Vec::new();
        loop {
            match parse_frame(&bytes::Bytes::copy_from_slice(&buf), &Limits::default()) {
                Ok((frame, _)) => return Some(frame),
                Err(ParseError::Incomplete) => {}
                Err(_) => return None,
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// SETs until acknowledged, moving between nodes on errors. SET of the same value is
    /// idempotent, so retrying an unknown outcome is safe.
    fn set(&mut self, key: &str, value: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            match self.try_cmd(&["SET", key, value]) {
                Some(f) if f == Frame::ok() => return,
                _ => {
                    self.stream = None;
                    self.at = (self.at + 1) % self.ports.len();
                    assert!(Instant::now() < deadline, "SET {key} never acknowledged");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Writes `per_client` keys from each of `clients` threads; returns when all are acknowledged.
/// `acked` counts acknowledged writes as they happen.
fn write_concurrently(prefix: &str, ports: &[u16], clients: usize, per_client: usize, acked: &Arc<AtomicUsize>) {
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let (ports, acked, prefix) = (ports.to_vec(), acked.clone(), prefix.to_string());
            std::thread::spawn(move || {
                let mut c = Client::new(ports, t);
                for i in 0..per_client {
                    c.set(&format!("{prefix}:{t}:{i}"), &format!("v{t}.{i}"));
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread panicked");
    }
}

fn assert_all_present(node: &Node, prefix: &str, clients: usize, per_client: usize) {
    let mut c = Conn::try_connect(node.port).expect("connect");
    assert_eq!(c.cmd(&["READONLY"]), Frame::ok());
    for t in 0..clients {
        let keys: Vec<String> = (0..per_client).map(|i| format!("{prefix}:{t}:{i}")).collect();
        let mut args = vec!["MGET"];
        args.extend(keys.iter().map(String::as_str));
        let Frame::Array(values) = c.cmd(&args) else { panic!("MGET on node {}", node.id) };
        for (i, v) in values.iter().enumerate() {
            let want = Frame::Bulk(bytes::Bytes::from(format!("v{t}.{i}")));
            assert_eq!(*v, want, "node {} lost acknowledged write {prefix}:{t}:{i}", node.id);
        }
    }
}

#[test]
fn killing_the_leader_during_concurrent_writes_loses_no_acknowledged_write() {
    let ports = free_port_block(3);
    let mut nodes: Vec<Node> = (1..=3).map(|id| Node::new(id, ports)).collect();
    for n in nodes.iter_mut() {
        n.start();
    }
    let members: Vec<String> = nodes
        .iter()
        .map(|n| {
            format!(r#"[{}, {{"raft_addr": "127.0.0.1:{}", "resp_addr": "127.0.0.1:{}"}}]"#, n.id, n.raft_port, n.port)
        })
        .collect();
    let (status, body) =
        http(nodes[0].raft_port, "POST", "/raft/init", &format!(r#"{{"nodes": [{}]}}"#, members.join(",")));
    assert_eq!(status, 200, "init: {body}");
    wait_until("a leader", 30, || leader(&nodes).is_some());
    let first_leader = leader(&nodes).expect("leader");

    // 10 000 writes from 10 clients; the leader dies with SIGKILL a third of the way in.
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let acked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writers = {
        let (ports, acked, done) = (ports.clone(), acked.clone(), done.clone());
        std::thread::spawn(move || {
            write_concurrently("a", &ports, 10, 1_000, &acked);
            done.store(true, Ordering::SeqCst);
        })
    };
    wait_until("3000 acknowledged writes", 120, || acked.load(Ordering::SeqCst) >= 3_000);
    let killed = nodes.iter_mut().find(|n| n.id == first_leader).expect("leader node");
    killed.kill9();
    writers.join().expect("writers");
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(acked.load(Ordering::SeqCst), 10_000);

    wait_until("a new leader", 30, || leader(&nodes).is_some_and(|l| l != first_leader));
    converged(&nodes);
    for n in nodes.iter().filter(|n| n.is_up()) {
        assert_all_present(n, "a", 10, 1_000);
        // A node with peers syncs off its runtime thread, which must go on replicating.
        let mut c = Conn::try_connect(n.port).expect("connect");
        assert_eq!(c.log_idle_rounds(), 0, "node {} synced on its runtime thread", n.id);
    }

    // The killed node restarts on its data directory and catches up.
    nodes.iter_mut().find(|n| n.id == first_leader).expect("node").start();
    let all = converged(&nodes);
    assert_all_present(nodes.iter().find(|n| n.id == first_leader).expect("node"), "a", 10, 1_000);

    // A follower kept down while the log is compacted past its last entry catches up through
    // a snapshot (the leader no longer has the entries it misses).
    let current = leader(&nodes).expect("leader");
    let down_id = nodes.iter().find(|n| n.id != current).expect("follower").id;
    let down = nodes.iter_mut().find(|n| n.id == down_id).expect("node");
    let down_last_log = json_u64(&down.metrics(), "last_log_index").expect("last_log_index");
    down.kill9();
    let acked = Arc::new(AtomicUsize::new(0));
    write_concurrently("b", &ports, 4, 500, &acked);
    let leader_node = nodes.iter().find(|n| n.id == current).expect("leader node");
    wait_until("the leader to purge past the down follower", 60, || {
        json_u64(&leader_node.metrics(), "purged_index").is_some_and(|p| p > down_last_log)
    });
    nodes.iter_mut().find(|n| n.id == down_id).expect("node").start();
    let after = converged(&nodes);
    assert_ne!(after, all, "the second round of writes changed nothing?");
    let caught_up = nodes.iter().find(|n| n.id == down_id).expect("node");
    assert_all_present(caught_up, "a", 10, 1_000);
    assert_all_present(caught_up, "b", 4, 500);
    let snapshot = json_u64(&caught_up.metrics(), "snapshot_index").expect("snapshot_index");
    assert!(snapshot > down_last_log, "the follower did not install a snapshot ({snapshot} <= {down_last_log})");
}

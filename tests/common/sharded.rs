//! A three-node multi-raft cluster of real `raftis` processes (`--num-groups 4`, formed
//! through `CLUSTER METARAFT`), and a slot-aware client that follows `-MOVED` and retries
//! `-TRYAGAIN` / `-CLUSTERDOWN` as a Redis Cluster client does.

use super::{free_port_block, tempdir::TempDir, wait_until, Conn, Server};
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

/// The text of a bulk, simple or error reply (`Debug` of anything else).
pub fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Error(b) | Frame::Verbatim(_, b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => format!("{other:?}"),
    }
}

/// Three nodes with four data groups.
pub struct Sharded {
    pub servers: Vec<Option<Server>>,
    pub ports: Vec<u16>,
    raft_ports: Vec<u16>,
    dirs: Vec<TempDir>,
    /// Voters per data group (`--group-replicas`).
    replicas: usize,
    /// More flags for every node.
    extra: Vec<String>,
}

impl Sharded {
    /// Starts the nodes, forms MetaRaft, and waits until every node sees four shards of three
    /// voters, each with a leader. Ports and a data directory for a fourth node are kept
    /// ([`start_node`](Self::start_node)`(3)` starts it, not yet a member).
    pub fn start(tag: &str) -> Sharded {
        Sharded::start_with(tag, 3)
    }

    /// [`start`](Self::start) with `replicas` voters per data group: with fewer than three,
    /// each node holds only some of the groups.
    pub fn start_with(tag: &str, replicas: usize) -> Sharded {
        Sharded::start_with_flags(tag, replicas, &[])
    }

    /// [`start_with`](Self::start_with) with `extra` flags for every node.
    pub fn start_with_flags(tag: &str, replicas: usize, extra: &[&str]) -> Sharded {
        let (base, raft_base) = free_port_block(4);
        let dirs: Vec<TempDir> = (1..=4).map(|i| TempDir::new(&format!("{tag}{i}"))).collect();
        let ports = (0..4).map(|i| base + i).collect();
        let raft_ports = (0..4).map(|i| raft_base + i).collect();
        let mut cluster = Sharded {
            servers: vec![None, None, None, None],
            ports,
            raft_ports,
            dirs,
            replicas,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..3 {
            cluster.start_node(i);
        }
        let mut c1 = cluster.conn(0);
        for i in 2..=3u16 {
            let addr = format!("127.0.0.1:{}", raft_base + i - 1);
            wait_until("node 1 to add a learner", 20, || {
                c1.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", &i.to_string(), &addr]) == Frame::ok()
            });
        }
        assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2", "3"]), Frame::ok());
        for i in 0..3 {
            let mut c = cluster.conn(i);
            wait_until("four shards of `replicas` nodes, each with a leader", 60, || {
                let info = text(&c.cmd(&["CLUSTER", "INFO"]));
                let Frame::Array(shards) = c.cmd(&["CLUSTER", "SHARDS"]) else { return false };
                info.contains("cluster_state:ok\r\n")
                    && shards.len() == 4
                    && shards.iter().all(|s| format!("{s:?}").matches("\"replica\"").count() == replicas - 1)
            });
        }
        cluster
    }

    /// Starts node `i` (0-based; node id `i + 1`) on its ports and data directory.
    pub fn start_node(&mut self, i: usize) {
        let id = (i + 1).to_string();
        let raft_addr = self.raft_addr(i);
        let bootstrap = if i == 0 { "--is-bootstrap=true" } else { "--is-bootstrap=false" };
        let replicas = self.replicas.to_string();
        let flags = [
            "--node-id",
            &id,
            "--raft-addr",
            &raft_addr,
            "--cluster-enabled",
            bootstrap,
            "--num-groups",
            "4",
            "--group-replicas",
            &replicas,
        ];
        let mut flags: Vec<&str> = flags.to_vec();
        flags.extend(self.extra.iter().map(String::as_str));
        self.servers[i] = Some(Server::raftis_at(&self.dirs[i].0, self.ports[i], &flags));
    }

    /// Node `i`'s Raft address.
    pub fn raft_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.raft_ports[i])
    }

    pub fn conn(&self, i: usize) -> Conn {
        Conn::try_connect(self.ports[i]).expect("connect")
    }

    /// Sends `args` as a cluster client does, starting at node `start`: follows `-MOVED`,
    /// and starts over after a pause on `-TRYAGAIN`, `-CLUSTERDOWN` or a refused connection,
    /// for up to 30 s. Returns the reply and the port that gave it.
    pub fn routed(&self, start: usize, args: &[&str]) -> (Frame, u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut port = self.ports[start];
        let mut hops = 0;
        loop {
            let reply = match Conn::try_connect(port) {
                Ok(mut c) => c.cmd(args),
                Err(_) if Instant::now() < deadline => {
                    (port, hops) = (self.ports[start], 0);
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => panic!("node on port {port}: {e}"),
            };
            let msg = text(&reply);
            match reply {
                Frame::Error(_) if msg.starts_with("MOVED ") && hops < 5 => {
                    let addr = msg.split(' ').nth(2).expect("MOVED slot host:port");
                    port = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("port");
                    hops += 1;
                }
                Frame::Error(_)
                    if (msg.starts_with("CLUSTERDOWN") || msg.starts_with("TRYAGAIN")) && Instant::now() < deadline =>
                {
                    (port, hops) = (self.ports[start], 0);
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return (other, port),
            }
        }
    }
}

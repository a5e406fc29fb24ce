//! Three real `raftis` processes (nodes 1-3) formed into one cluster over the HTTP admin API,
//! for tests that need replication between processes; dropped, they are killed.

use super::http::{http, json_u64};
use super::{free_port_block, tempdir::TempDir, wait_until, Conn, Server};

pub struct ThreeNodes {
    /// `None` once a test has killed that node.
    pub servers: Vec<Option<Server>>,
    pub raft_ports: Vec<u16>,
    _dirs: Vec<TempDir>,
}

impl ThreeNodes {
    /// Starts nodes 1-3 (data directories named after `tag`, `extra` flags for each), forms the
    /// cluster and waits until they agree on a leader.
    pub fn start(tag: &str, extra: &[&str]) -> ThreeNodes {
        let (base, raft_base) = free_port_block(3);
        let (mut servers, mut members, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..3u16 {
            let (port, raft_port) = (base + i, raft_base + i);
            let (id, raft_addr) = ((i + 1).to_string(), format!("127.0.0.1:{raft_port}"));
            let dir = TempDir::new(&format!("{tag}{id}"));
            let mut flags = vec!["--node-id", &id, "--raft-addr", &raft_addr, "--is-bootstrap=false"];
            flags.extend_from_slice(extra);
            servers.push(Some(Server::raftis_at(&dir.0, port, &flags)));
            dirs.push(dir);
            members.push(format!(r#"[{id}, {{"raft_addr": "{raft_addr}", "resp_addr": "127.0.0.1:{port}"}}]"#));
        }
        let raft_ports: Vec<u16> = (0..3).map(|i| raft_base + i).collect();
        let init = format!(r#"{{"nodes": [{}]}}"#, members.join(","));
        let (status, body) = http(raft_ports[0], "POST", "/raft/init", &init);
        assert_eq!(status, 200, "init: {body}");
        let cluster = ThreeNodes { servers, raft_ports, _dirs: dirs };
        wait_until("a leader", 30, || cluster.leader().is_some());
        cluster
    }

    /// The index (0-2) of the node every live node agrees leads.
    pub fn leader(&self) -> Option<usize> {
        let live = (0..3).filter(|i| self.servers[*i].is_some());
        let seen: Vec<Option<u64>> =
            live.map(|i| json_u64(&http(self.raft_ports[i], "GET", "/raft/metrics", "").1, "current_leader")).collect();
        let first = seen[0]?;
        let agreed = seen.iter().all(|s| *s == Some(first));
        let index = first as usize - 1;
        (agreed && self.servers[index].is_some()).then_some(index)
    }

    /// Kills node `i` (0-2) and starts it again on its data directory and ports, with
    /// `extra` flags; it rejoins the cluster from its own disk.
    #[allow(dead_code)]
    pub fn restart(&mut self, i: usize, extra: &[&str]) {
        let port = self.servers[i].take().expect("live node").port;
        let (id, raft_addr) = ((i + 1).to_string(), format!("127.0.0.1:{}", self.raft_ports[i]));
        let mut flags = vec!["--node-id", &id, "--raft-addr", &raft_addr, "--is-bootstrap=false"];
        flags.extend_from_slice(extra);
        self.servers[i] = Some(Server::raftis_at(&self._dirs[i].0, port, &flags));
    }

    /// A connection to node `i` (0-2), which must be live.
    pub fn conn(&self, i: usize) -> Conn {
        self.servers[i].as_ref().expect("live node").conn()
    }
}

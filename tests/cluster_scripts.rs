//! The cluster scripts of scripts/ end to end, as an operator runs them: start 3 nodes,
//! initialize, status, sync 50 keys, kill one node with SIGKILL, sync again, restart it, sync
//! again, stop, clean. Real processes on 127.0.0.1, in a scratch directory, on ports of their
//! own (the scripts take RAFTIS_* variables for that).

mod common;

use common::{free_port_block, tempdir::TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The scripts with the environment pointing at one scratch cluster.
struct Cluster {
    dir: TempDir,
    base: u16,
    raft_base: u16,
}

impl Cluster {
    fn new() -> Cluster {
        let dir = TempDir::new("scripts");
        let (base, raft_base) = free_port_block(3);
        Cluster { dir, base, raft_base }
    }

    fn script(&self, name: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
        let mut cmd = Command::new("bash");
        cmd.arg(path)
            .args(args)
            .env("RAFTIS_CLUSTER_DIR", &self.dir.0)
            .env("RAFTIS_BIN", env!("CARGO_BIN_EXE_raftis"))
            .env("RAFTIS_BASE_PORT", self.base.to_string())
            .env("RAFTIS_BASE_RAFT_PORT", self.raft_base.to_string());
        if let Some(input) = stdin {
            use std::io::Write;
            cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
            cmd.stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("spawn script");
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
            return child.wait_with_output().expect("script output");
        }
        cmd.output().expect("run script")
    }

    /// Runs a script and fails the test (showing its output) unless it succeeds.
    fn ok(&self, name: &str, args: &[&str]) -> String {
        let out = self.script(name, args, None);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{name} {args:?} failed ({:?}):\n{text}\n{}", out.status, self.logs());
        text
    }

    fn pid(&self, node: u32) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.0.join(format!("cluster_logs/node{node}.pid"))).ok()?;
        text.trim().parse().ok()
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for i in 1..=3 {
            let path: PathBuf = self.dir.0.join(format!("cluster_logs/node{i}.out"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            all += &format!("--- node {i} log tail ---\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        all
    }

    fn kill9(&self, node: u32) {
        let pid = self.pid(node).expect("pid file");
        let status = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
        assert!(status.success());
        // Wait until it is gone (a zombie is reaped by the script's shell: check /proc state).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "node {node} (pid {pid}) survived SIGKILL");
            std::thread::yield_now();
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z ")).unwrap_or(true)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop by pid even when the test failed half-way.
        for node in 1..=3 {
            if let Some(pid) = self.pid(node) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

#[test]
fn the_cluster_scripts_run_a_three_node_cluster_end_to_end() {
    let c = Cluster::new();
    let started = c.ok("start_cluster.sh", &["--nodes", "3", "--no-build"]);
    assert!(started.contains("3 node(s) up"), "{started}");
    assert!(c.dir.0.join("cluster_node1.conf").exists());

    let init = c.ok("init_cluster.sh", &["3"]);
    assert!(init.contains("leader: node"), "{init}");
    // A second init is refused clearly, and the script says so without failing the cluster.
    let again = c.ok("init_cluster.sh", &["3"]);
    assert!(again.contains("already initialized"), "{again}");

    let status = c.ok("cluster_status.sh", &[]);
    assert!(status.contains("leader: node"), "{status}");
    assert_eq!(status.lines().filter(|l| l.contains(" yes ")).count(), 3, "{status}");

    let sync = c.ok("test_raft_sync.sh", &["50"]);
    assert!(sync.contains("PASS: 50 keys replicated to 3 running node(s)"), "{sync}");

    // Lose a node: the remaining two still replicate.
    c.kill9(2);
    let sync = c.ok("test_raft_sync.sh", &["50"]);
    assert!(sync.contains("node 2: not running, skipped"), "{sync}");
    assert!(sync.contains("PASS: 50 keys replicated to 2 running node(s)"), "{sync}");

    // Restart it on its data: it catches up with everything, including what it missed.
    let restarted = c.ok("start_cluster.sh", &["--nodes", "3", "--no-build"]);
    assert!(restarted.contains("node 2 started"), "{restarted}");
    assert!(restarted.contains("node 1 already running"), "{restarted}");
    let sync = c.ok("test_raft_sync.sh", &["50"]);
    assert!(sync.contains("PASS: 50 keys replicated to 3 running node(s)"), "{sync}");

    let stopped = c.ok("stop_cluster.sh", &[]);
    assert!(stopped.contains("stopped"), "{stopped}");
    for node in 1..=3 {
        assert!(c.pid(node).is_none(), "pid file of node {node} left behind");
    }
    let status = c.script("cluster_status.sh", &[], None);
    assert!(!status.status.success(), "status with no node running must fail");

    // clean asks first: "no" keeps everything, --force deletes it.
    let declined = c.script("clean_cluster.sh", &[], Some("n\n"));
    assert!(!declined.status.success());
    assert!(c.dir.0.join("cluster_node1.conf").exists(), "declined clean deleted files");
    c.ok("clean_cluster.sh", &["--force"]);
    for leftover in ["cluster_node1.conf", "raft_data_1", "cluster_logs"] {
        assert!(!c.dir.0.join(leftover).exists(), "{leftover} not cleaned");
    }
}

#[test]
fn the_scripts_refuse_bad_arguments() {
    let c = Cluster::new();
    for (script, args) in [
        ("start_cluster.sh", vec!["--nodes", "x"]),
        ("start_cluster.sh", vec!["--bogus"]),
        ("init_cluster.sh", vec!["zero"]),
        ("test_raft_sync.sh", vec!["-5"]),
        ("clean_cluster.sh", vec!["--what"]),
    ] {
        let out = c.script(script, &args, None);
        assert_eq!(out.status.code(), Some(2), "{script} {args:?} should exit 2");
        assert!(!out.stderr.is_empty(), "{script} {args:?} should say why");
    }
    // A node that was never joined to a cluster: sync fails clearly rather than hang.
    c.ok("start_cluster.sh", &["--nodes", "1", "--no-build"]);
    let out = c.script("test_raft_sync.sh", &["3"], None);
    assert!(!out.status.success(), "sync without an initialized cluster must fail");
    c.ok("stop_cluster.sh", &[]);
}

/// A sharded cluster through the scripts: `start_cluster.sh --groups 2`, `init_cluster.sh`,
/// then `cluster_status.sh` shows both data groups on every node, each with one leader and
/// every replica caught up (lag 0) once the cluster is idle; `test_raft_sync.sh` routes its
/// writes by slot and reads every key back from each replica of its own group, also with a
/// node down.
#[test]
fn cluster_status_shows_every_data_group_of_a_sharded_cluster() {
    let c = Cluster::new();
    c.ok("start_cluster.sh", &["--nodes", "3", "--groups", "2", "--no-build"]);
    c.ok("init_cluster.sh", &["3"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut status = String::new();
    let settled = |status: &str| {
        let rows: Vec<Vec<&str>> = status
            .lines()
            .skip_while(|l| !l.starts_with("group "))
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<&str>>())
            .take_while(|r| r.len() == 7)
            .collect();
        (1..=2).all(|g| {
            let of_group: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == g.to_string()).collect();
            of_group.len() == 3
                && of_group.iter().filter(|r| r[2] == "leader").count() == 1
                && of_group.iter().all(|r| r.get(6) == Some(&"0"))
        })
    };
    while !settled(&status) {
        assert!(std::time::Instant::now() < deadline, "cluster_status.sh never showed both groups settled:\n{status}");
        std::thread::sleep(std::time::Duration::from_millis(300));
        status = c.ok("cluster_status.sh", &[]);
    }
    let sync = c.ok("test_raft_sync.sh", &["60"]);
    assert!(sync.contains("2 shards; 60 keys written"), "{sync}");
    // Two groups of three voters on three nodes: every key is read on all three nodes.
    assert!(sync.contains("PASS: 60 keys, 180 replica reads"), "{sync}");
    c.kill9(3);
    // Node 3 may have led a group (the balancer spreads leadership): its writes fail until the
    // group elects another leader, as in Redis Cluster until a replica is promoted.
    let led_by_survivors = |status: &str| {
        let rows: Vec<Vec<&str>> = status
            .lines()
            .skip_while(|l| !l.starts_with("group "))
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        (1..=2).all(|g| rows.iter().any(|r| r.len() == 7 && r[0] == g.to_string() && r[1] != "3" && r[2] == "leader"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut status = c.ok("cluster_status.sh", &[]);
    while !led_by_survivors(&status) {
        assert!(std::time::Instant::now() < deadline, "no leader on nodes 1-2 for every group:\n{status}");
        std::thread::sleep(std::time::Duration::from_millis(300));
        status = c.ok("cluster_status.sh", &[]);
    }
    let sync = c.ok("test_raft_sync.sh", &["60"]);
    assert!(sync.contains(&format!("port {}: not answering, skipped", c.base + 2)), "{sync}");
    assert!(sync.contains("PASS: 60 keys, 120 replica reads"), "{sync}");
    c.ok("stop_cluster.sh", &[]);
}

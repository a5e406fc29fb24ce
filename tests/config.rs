//! The configuration of the real `raftis` binary: a config file sets the port, node id and
//! data directory; flags win over the file; a bad file stops start-up naming file:line:key;
//! keys of another engine only warn; `--help` explains itself; the docs list every setting.

mod common;

use bytes::Bytes;
use common::tempdir::TempDir;
use common::{free_port, Conn};
use raftis::protocol::Frame;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A raftis process started with exactly the given arguments, killed (by pid) on drop.
struct Node {
    child: Child,
}

impl Node {
    fn spawn(args: &[&str]) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_raftis"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start raftis");
        Node { child }
    }

    /// Waits until the node answers PING on `port`; panics with its stderr if it exits.
    fn wait_ready(&mut self, port: u16) -> Conn {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("raftis exited with {status}: {}", self.stderr());
            }
            if let Ok(mut c) = Conn::try_connect(port) {
                if c.cmd(&["PING"]) == Frame::Simple(Bytes::from_static(b"PONG")) {
                    return c;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("raftis did not answer on port {port}");
    }

    /// Waits (with a deadline) for the process to exit by itself.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("raftis did not exit");
    }

    /// Everything the process wrote to stderr (call once it has exited).
    fn stderr(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_conf(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path
}

fn config_get(c: &mut Conn, name: &str) -> String {
    match c.cmd(&["CONFIG", "GET", name]) {
        Frame::Array(items) if items.len() == 2 => match &items[1] {
            Frame::Bulk(v) => String::from_utf8_lossy(v).into_owned(),
            other => panic!("CONFIG GET {name}: {other:?}"),
        },
        other => panic!("CONFIG GET {name}: {other:?}"),
    }
}

/// The log file's text once it contains `needle` (the node may log just after it answers).
fn wait_for_log(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "{} never contained {needle:?}: {log}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_config_file_sets_port_node_id_and_data_dir() {
    let tmp = TempDir::new("config-file");
    let (port, raft_port) = (free_port(), free_port());
    let data = tmp.0.join("raft_data_7");
    let text = format!(
        "# a node\nport {port}\nbinding 127.0.0.1\nraft-node-id 7\nraft-addr 127.0.0.1:{raft_port}\n\
         raft-data-dir {}\nmaxclients 50\nio-threads 3\n",
        data.display()
    );
    let conf = write_conf(&tmp.0, "node7.conf", &text);
    // The config file as first positional argument, like redis-server.
    let mut node = Node::spawn(&[conf.to_str().unwrap()]);
    let mut c = node.wait_ready(port);
    assert_eq!(config_get(&mut c, "node-id"), "7");
    assert_eq!(config_get(&mut c, "raft-addr"), format!("127.0.0.1:{raft_port}"));
    assert_eq!(config_get(&mut c, "dir"), data.display().to_string());
    assert_eq!(config_get(&mut c, "maxclients"), "50");
    assert_eq!(config_get(&mut c, "io-threads"), "3");
    // A single node (no cluster-enabled) bootstraps itself and takes writes, on that directory.
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::Simple(Bytes::from_static(b"OK")));
    assert!(data.join("raft").join("log").is_dir(), "the data directory is {}", data.display());
}

#[test]
fn a_flag_overrides_the_file() {
    let tmp = TempDir::new("config-flag");
    let (file_port, flag_port) = (free_port(), free_port());
    let text = format!("port {file_port}\nraft-data-dir {}\nmaxclients 50\n", tmp.0.join("d").display());
    let conf = write_conf(&tmp.0, "n.conf", &text);
    let mut node = Node::spawn(&["--config", conf.to_str().unwrap(), "--port", &flag_port.to_string()]);
    let mut c = node.wait_ready(flag_port);
    assert_eq!(config_get(&mut c, "port"), flag_port.to_string());
    assert_eq!(config_get(&mut c, "maxclients"), "50", "what no flag overrides comes from the file");
}

#[test]
fn a_bad_file_stops_start_up_naming_file_line_and_key() {
    let tmp = TempDir::new("config-bad");
    let cases = [
        ("port 7379\n# comment\nfoo bar\n", "bad.conf:3: unknown key 'foo'"),
        ("port 7379\nport seventy\n", "bad.conf:2: key 'port': invalid value 'seventy'"),
        ("cluster-enabled perhaps\n", "bad.conf:1: key 'cluster-enabled': invalid value 'perhaps'"),
        ("memory 1.5GB\n", "bad.conf:1: key 'memory': invalid value '1.5GB'"),
        ("\nraft-node-id\n", "bad.conf:2: key 'raft-node-id': missing value"),
        ("requirepass \"open\n", "bad.conf:1: key 'requirepass': unbalanced quotes"),
    ];
    for (text, want) in cases {
        let conf = write_conf(&tmp.0, "bad.conf", text);
        let data = tmp.0.join("data");
        let mut node = Node::spawn(&["--config", conf.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
        let status = node.wait_exit();
        let stderr = node.stderr();
        assert!(!status.success(), "{text:?} started: {status}");
        assert!(status.code().is_some(), "{text:?}: killed by a signal (a panic?): {status}");
        assert!(stderr.contains(want), "{text:?}: stderr {stderr:?} lacks {want:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!data.exists(), "{text:?}: the node got as far as opening its data directory");
    }
}

#[test]
fn rocksdb_keys_warn_and_the_node_starts_logging_to_log_dir() {
    let tmp = TempDir::new("config-rocksdb");
    let port = free_port();
    let logs = tmp.0.join("cluster_logs");
    let text = format!(
        "port {port}\nraft-node-id 3\ndb-path {}\nmemory 1GB\nrocksdb-max-background-jobs 4\n\
         rocksdb-write-buffer-size 67108864\nlog-dir {}\n",
        tmp.0.join("db").display(),
        logs.display()
    );
    let conf = write_conf(&tmp.0, "cluster_node3.conf", &text);
    let mut node = Node::spawn(&[conf.to_str().unwrap()]);
    let mut c = node.wait_ready(port);
    assert_eq!(config_get(&mut c, "maxmemory"), (1u64 << 30).to_string());
    let log = wait_for_log(&logs.join("raftis-node3.log"), "ready to accept connections");
    assert!(log.contains("cluster_node3.conf:5: ignoring 'rocksdb-max-background-jobs'"), "{log}");
    assert!(log.contains("ignoring 'rocksdb-write-buffer-size'"), "{log}");
}

#[test]
fn logfile_gets_a_banner_and_no_openraft_chatter_or_colour() {
    let tmp = TempDir::new("config-logfile");
    let port = free_port();
    let logfile = tmp.0.join("node.log");
    let data = tmp.0.join("data");
    let mut node = Node::spawn(&[
        "--port",
        &port.to_string(),
        "--data-dir",
        data.to_str().unwrap(),
        "--logfile",
        logfile.to_str().unwrap(),
    ]);
    let mut c = node.wait_ready(port);
    assert_eq!(config_get(&mut c, "logfile"), logfile.display().to_string());
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "logfile", "x"]),
        Frame::Error(Bytes::from_static(
            b"ERR CONFIG SET failed (possibly related to argument 'logfile') - can't set immutable config"
        ))
    );
    let log = wait_for_log(&logfile, "this node is now the leader");
    assert!(log.contains("in standalone mode"), "{log}");
    assert!(log.contains(&format!("data in {}", data.display())), "{log}");
    assert!(log.contains("group membership") && log.contains("voters [1]"), "{log}");
    // openraft's INFO lines (whole state structs) stay out at the default loglevel.
    assert!(!log.contains(" openraft"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a file: {log}");
}

#[test]
fn stderr_that_is_not_a_terminal_gets_no_colour_codes() {
    let tmp = TempDir::new("config-stderr");
    let port = free_port();
    let mut node = Node::spawn(&["--port", &port.to_string(), "--data-dir", tmp.0.to_str().unwrap()]);
    let mut c = node.wait_ready(port);
    // SHUTDOWN closes the connection without a reply, as Redis.
    c.send_raw(&Conn::encode(&[b"SHUTDOWN"]));
    assert!(node.wait_exit().success());
    let err = node.stderr();
    assert!(err.contains("ready to accept connections"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes into a pipe: {err}");
}

#[test]
fn is_bootstrap_no_waits_to_be_joined() {
    let tmp = TempDir::new("config-nobootstrap");
    let port = free_port();
    let data = tmp.0.join("d");
    let mut node =
        Node::spawn(&["--port", &port.to_string(), "--data-dir", data.to_str().unwrap(), "--is-bootstrap=false"]);
    let mut c = node.wait_ready(port);
    // No cluster to join: a write finds no leader (after the bounded wait) instead of succeeding.
    match c.cmd(&["SET", "k", "v"]) {
        Frame::Error(e) => assert!(e.starts_with(b"CLUSTERDOWN"), "{}", String::from_utf8_lossy(&e)),
        other => panic!("a node that was not bootstrapped took a write: {other:?}"),
    }
}

#[test]
fn help_exits_zero_and_mentions_the_config_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftis")).arg("--help").output().expect("run raftis --help");
    assert!(out.status.success(), "{}", out.status);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--config <FILE>"), "{help}");
    assert!(help.contains("--is-bootstrap"), "{help}");
    assert!(help.contains("[default: 6379]"), "{help}");
}

#[test]
fn the_operations_doc_lists_every_key_and_flag() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md")).expect("docs");
    let section = doc.split("## Configuration").nth(1).expect("a '## Configuration' section");
    for s in raftis::config::SETTINGS {
        for key in std::iter::once(&s.key).chain(s.aliases) {
            assert!(section.contains(&format!("`{key}`")), "key {key} missing from docs/OPERATIONS.md");
        }
        assert!(section.contains(&format!("`--{}", s.flag)), "flag --{} missing from docs/OPERATIONS.md", s.flag);
    }
}

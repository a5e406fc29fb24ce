//! Shared helpers for integration tests: start a real `raftis` process or a real
//! `redis-server` on a free loopback port, stop it by pid, and talk raw RESP to it.
#![allow(dead_code)]

pub mod cluster;
pub mod http;
pub mod in_process;
pub mod sharded;

use bytes::{Bytes, BytesMut};
use raftis::protocol::{parse_frame, Frame, Limits, ParseError};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (bound once and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

/// Ports for `n` nodes that must keep their ports across restarts (they are in the cluster's
/// membership): `(base, raft_base)` such that `base..base + n` and `raft_base..raft_base + n`
/// are free. Taken below Linux's ephemeral range (32768 and up), where the OS never hands out
/// a port by itself (an outgoing connection's source port, a listener on port 0), so only
/// another explicit bind can take one between this check and the node's own bind. Each call
/// starts its search elsewhere: tests of one file run at once and must not pick one block.
/// `RAFTIS_TEST_PORTS=FIRST-LAST` keeps the search within those ports (machines shared by
/// several developers give each a range).
pub fn free_port_block(n: u16) -> (u16, u16) {
    const BLOCK: u32 = 20;
    let range = std::env::var("RAFTIS_TEST_PORTS").ok().and_then(|r| {
        let (a, b) = r.split_once('-')?;
        Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
    });
    let (first, last) = range.filter(|(a, b)| b > a && b - a + 1 >= BLOCK && *b < 65_536).unwrap_or((16_000, 31_999));
    let blocks: u32 = (last + 1 - first) / BLOCK;
    assert!(u32::from(n) <= BLOCK / 2, "a block holds at most {} nodes", BLOCK / 2);
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let first_block = (std::process::id().wrapping_mul(7).wrapping_add(call.wrapping_mul(97))) % blocks;
    for i in 0..blocks {
        let base = (first + ((first_block + i) % blocks) * BLOCK) as u16;
        let raft = base + (BLOCK / 2) as u16;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if (0..n).all(|i| free(base + i) && free(raft + i)) {
            return (base, raft);
        }
    }
    panic!("no free block of {n} ports in {first}-{last}");
}

/// A server process killed (by pid) when dropped.
pub struct Server {
    pub port: u16,
    child: Child,
    _dir: Option<tempdir::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod tempdir {
    /// A directory under the system temp dir, removed on drop.
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let p =
                std::env::temp_dir().join(format!("raftis-test-{tag}-{}-{}", std::process::id(), super::free_port()));
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Server {
    /// Starts the raftis binary with extra flags.
    pub fn raftis(extra: &[&str]) -> Server {
        let dir = tempdir::TempDir::new("node");
        let mut s = Self::raftis_in(&dir.0, extra);
        s._dir = Some(dir);
        s
    }

    /// Starts the raftis binary on a free port with its data in `dir` (kept by the caller, so
    /// a test can restart a node on the same data). A free port can be taken by another
    /// process before raftis binds it (another test's node picking its own Raft port): a
    /// start that fails that way is retried on another port.
    pub fn raftis_in(dir: &std::path::Path, extra: &[&str]) -> Server {
        for _ in 0..5 {
            let mut s = Self::spawn_raftis(dir, free_port(), extra);
            if s.wait_ready().is_ok() {
                return s;
            }
        }
        panic!("raftis did not start on any of 5 free ports");
    }

    /// Starts the raftis binary on `port` with its data in `dir` (a restarted cluster member
    /// keeps its port).
    pub fn raftis_at(dir: &std::path::Path, port: u16, extra: &[&str]) -> Server {
        let mut s = Self::spawn_raftis(dir, port, extra);
        if let Err(e) = s.wait_ready() {
            panic!("raftis on port {port}: {e}");
        }
        s
    }

    fn spawn_raftis(dir: &std::path::Path, port: u16, extra: &[&str]) -> Server {
        Self::spawn_raftis_with(dir, port, extra, &[])
    }

    /// Starts the raftis binary on `port` with its data in `dir` and `env` added to its
    /// environment, without waiting for it to answer.
    pub fn spawn_raftis_with(dir: &std::path::Path, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_raftis"))
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--data-dir"])
            .arg(dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(server_log(port))
            .spawn()
            .expect("start raftis");
        Server { port, child, _dir: None }
    }

    /// Kills the process with SIGKILL (no shutdown path runs) and reaps it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts Debian's redis-server (panics with a clear message when it is not installed).
    pub fn redis() -> Server {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: install it (apt-get install redis-server); .ci/run does");
        let mut s = Server { port, child, _dir: None };
        if let Err(e) = s.wait_ready() {
            panic!("redis-server on port {port}: {e}");
        }
        s
    }

    /// Waits until the server answers PING on its port. Fails if the process exits first (it
    /// could not bind its port, say); a connection that closes without a reply (some other
    /// process on the port) is not taken for readiness.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited before it was ready ({status})"));
            }
            if let Ok(mut c) = Conn::try_connect(self.port) {
                c.send_raw(&Conn::encode(&[b"PING"]));
                // A server started with a password answers NOAUTH: it is up all the same.
                match c.read_frame() {
                    Some(Frame::Simple(s)) if s == "PONG" => return Ok(()),
                    Some(Frame::Error(e)) if e.starts_with(b"NOAUTH") => return Ok(()),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("did not become ready in 20 s".into())
    }

    pub fn conn(&self) -> Conn {
        Conn::try_connect(self.port).expect("connect")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited (without blocking).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// A raw RESP connection.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    pub fn try_connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn { stream, buf: BytesMut::new() })
    }

    /// Encodes a command as a RESP multibulk.
    pub fn encode(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// How long a read waits for a reply (10 s unless changed).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).expect("set read timeout");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// [`send_raw`](Self::send_raw) to a server that may close the connection part-way (a
    /// limit hit): whether every byte was written.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Reads one reply and returns its exact bytes.
    pub fn read_raw(&mut self) -> Option<Bytes> {
        loop {
            let snapshot = Bytes::copy_from_slice(&self.buf);
            match parse_frame(&snapshot, &Limits::default()) {
                Ok((_, len)) => return Some(Bytes::copy_from_slice(&self.buf.split_to(len))),
                Err(ParseError::Incomplete) => {}
                Err(e) => panic!("bad reply bytes: {e}: {:?}", String::from_utf8_lossy(&snapshot)),
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads exactly `n` bytes of replies, unparsed (for replies too big to parse as they come).
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let take = n.min(self.buf.len());
        let mut out = self.buf.split_to(take).to_vec();
        out.resize(n, 0);
        self.stream.read_exact(&mut out[take..]).expect("reply bytes");
        out
    }

    pub fn read_frame(&mut self) -> Option<Frame> {
        let raw = self.read_raw()?;
        parse_frame(&raw, &Limits::default()).ok().map(|(f, _)| f)
    }

    /// Sends a command and returns the raw reply bytes.
    pub fn raw_cmd(&mut self, args: &[&[u8]]) -> Bytes {
        self.send_raw(&Self::encode(args));
        self.read_raw().expect("connection closed before reply")
    }

    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_raw(&Self::encode(&args));
        self.read_frame().expect("connection closed before reply")
    }

    /// The INFO field `name` of `section` (panics if absent).
    pub fn info_field(&mut self, section: &str, name: &str) -> String {
        let text = match self.cmd(&["INFO", section]) {
            Frame::Bulk(b) | Frame::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("INFO: {other:?}"),
        };
        let prefix = format!("{name}:");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name} in {text}")).to_string()
    }

    /// INFO's count of log syncs the node's runtime thread ran in its idle time.
    pub fn log_idle_rounds(&mut self) -> u64 {
        self.info_field("replication", "raft_log_idle_rounds").parse().expect("a count")
    }

    /// True once the server has closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0))
    }
}

/// Polls `f` every 20 ms until it holds; fails the test after `secs` seconds, naming `what`.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where a started server's log goes: `$RAFTIS_TEST_LOGS/<port>.log` when that variable names
/// a directory (to read the servers' side of a failing test, with `RUST_LOG` for detail),
/// else nowhere.
fn server_log(port: u16) -> Stdio {
    let Ok(dir) = std::env::var("RAFTIS_TEST_LOGS") else { return Stdio::null() };
    let path = std::path::Path::new(&dir).join(format!("{port}.log"));
    match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => Stdio::from(file),
        Err(e) => panic!("RAFTIS_TEST_LOGS: cannot open {}: {e}", path.display()),
    }
}

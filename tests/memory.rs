//! INFO memory and MEMORY over a real process: the figures are jemalloc's own (they follow
//! what the node holds, up and down), the resident size is the process's, MEMORY USAGE
//! follows a value's size, MEMORY STATS agrees with INFO. Reply shapes and error texts are
//! compared with Redis in tests/diff/memory.txt.

mod common;

use common::{Conn, Server};
use raftis::protocol::Frame;

fn figure(c: &mut Conn, name: &str) -> u64 {
    c.info_field("memory", name).parse().unwrap_or_else(|_| panic!("{name} is a number"))
}

/// VmRSS of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().expect("a number") * 1024
}

fn stats_field(c: &mut Conn, name: &str) -> Frame {
    let Frame::Array(items) = c.cmd(&["MEMORY", "STATS"]) else { panic!("MEMORY STATS is an array in RESP2") };
    let at = items.iter().position(|f| *f == Frame::Bulk(bytes::Bytes::copy_from_slice(name.as_bytes())));
    items[at.unwrap_or_else(|| panic!("no {name}")) + 1].clone()
}

#[test]
fn info_memory_reports_the_allocators_figures() {
    // A snapshot every 16 entries: the log (which holds the values too, in memory until a
    // snapshot covers it) lets go of them soon after FLUSHALL.
    let server = Server::raftis(&["--snapshot-logs", "16"]);
    let mut c = server.conn();
    assert!(c.info_field("memory", "mem_allocator").starts_with("jemalloc-5."));
    let before = figure(&mut c, "used_memory");
    let value = "v".repeat(1 << 20);
    for i in 0..32 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), &value]), Frame::Simple("OK".into()));
    }
    let loaded = figure(&mut c, "used_memory");
    assert!(loaded >= before + (32 << 20), "used_memory {before} -> {loaded} after 32 MiB of values");
    // Each write is also held by the Raft log (in memory until a snapshot covers it), so the
    // node holds several times the data; but not unboundedly more.
    assert!(loaded < before + (320 << 20), "used_memory {before} -> {loaded}: far more than the data");
    assert!(figure(&mut c, "used_memory_peak") >= loaded);
    // The resident size is the process's own.
    let (reported, actual) = (figure(&mut c, "used_memory_rss"), rss(server.pid()));
    assert!(reported.abs_diff(actual) < actual / 5, "used_memory_rss {reported}, VmRSS {actual}");
    let ratio: f64 = c.info_field("memory", "mem_fragmentation_ratio").parse().unwrap();
    assert!(ratio > 0.5 && ratio < 3.0, "mem_fragmentation_ratio {ratio}");
    // Freed values leave the allocator's count.
    // Freed once the keyspace and the log both let go: the keyspace at FLUSHALL, the log when
    // a snapshot after it is built and the log purged (small writes bring that on).
    assert_eq!(c.cmd(&["FLUSHALL"]), Frame::Simple("OK".into()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut flushed = figure(&mut c, "used_memory");
    for i in 0.. {
        if flushed < loaded - (24 << 20) || std::time::Instant::now() > deadline {
            break;
        }
        assert_eq!(c.cmd(&["SET", &format!("small{i}"), "x"]), Frame::Simple("OK".into()));
        flushed = figure(&mut c, "used_memory");
    }
    assert!(flushed < loaded - (24 << 20), "used_memory {loaded} -> {flushed} after FLUSHALL");
    assert!(figure(&mut c, "used_memory_peak") >= loaded, "the peak stays");
}

#[test]
fn memory_usage_stats_and_doctor() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["SET", "small", "x"]), Frame::Simple("OK".into()));
    assert_eq!(c.cmd(&["SET", "big", &"x".repeat(100_000)]), Frame::Simple("OK".into()));
    let Frame::Integer(small) = c.cmd(&["MEMORY", "USAGE", "small"]) else { panic!("an integer") };
    let Frame::Integer(big) = c.cmd(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]) else { panic!("an integer") };
    assert!(small > 0 && small < 200, "{small}");
    assert!((100_000..101_000).contains(&big), "{big}");
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "missing"]), Frame::Null);
    for i in 0..100 {
        c.cmd(&["RPUSH", "list", &format!("element-{i:04}")]);
    }
    let Frame::Integer(list) = c.cmd(&["MEMORY", "USAGE", "list"]) else { panic!("an integer") };
    assert!(list > 1200, "100 elements of 12 bytes: {list}");
    // Inside a transaction too.
    c.cmd(&["MULTI"]);
    c.cmd(&["MEMORY", "USAGE", "big"]);
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Integer(big)]));
    assert_eq!(stats_field(&mut c, "keys.count"), Frame::Integer(3));
    let Frame::Integer(total) = stats_field(&mut c, "total.allocated") else { panic!("an integer") };
    let used = figure(&mut c, "used_memory") as i64;
    assert!(total.abs_diff(used) < 4 << 20, "MEMORY STATS {total}, INFO {used}");
    let Frame::Bulk(report) = c.cmd(&["MEMORY", "DOCTOR"]) else { panic!("text") };
    assert!(report.starts_with(b"Hi Sam") || report.starts_with(b"Sam, I detected"), "{report:?}");
    let Frame::Bulk(malloc) = c.cmd(&["MEMORY", "MALLOC-STATS"]) else { panic!("text") };
    assert!(malloc.starts_with(b"___ Begin jemalloc statistics ___"));
}

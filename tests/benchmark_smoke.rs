//! redis-benchmark (Debian's redis-tools) runs to completion against raftis for the command
//! mix the issue names. Throughput is not asserted here: timings belong in benchmarks
//! (scripts/bench.sh), never in tests.

mod common;

use common::Server;
use std::process::Command;

#[test]
fn redis_benchmark_runs_to_completion() {
    let server = Server::raftis(&[]);
    let tests = "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange";
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-n", "2000", "-c", "10", "-q", "-t", tests])
        .output()
        .expect("redis-benchmark not found: install redis-tools (.ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-benchmark failed:\n{stdout}\n{stderr}");
    // With -q every test ends with one "NAME: N requests per second" line (progress lines
    // before it are separated by carriage returns).
    let lines: Vec<&str> = stdout.split(['\r', '\n']).map(str::trim).collect();
    for name in ["SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "SADD", "HSET", "SPOP", "ZADD", "LRANGE_100"] {
        assert!(
            lines.iter().any(|l| l.starts_with(name)
                && l[name.len()..].starts_with([':', ' '])
                && l.contains("requests per second")),
            "no result line for {name}:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stdout.contains("ERR") && !stderr.contains("ERR"), "errors reported:\n{stdout}\n{stderr}");
    // The server is still alive and consistent afterwards.
    let mut c = server.conn();
    assert_eq!(c.cmd(&["PING"]), raftis::protocol::Frame::simple("PONG"));
}

//! Long scripts over real sockets: `BUSY` replies once a read-only script has run
//! `busy-reply-threshold` ms, `SCRIPT KILL` / `FUNCTION KILL` of read-only scripts, and write
//! scripts, which run in every replica's apply: unkillable, stopped only by the step budget,
//! refusing nothing (commands wait for the apply) while Raft goes on (no election).

mod common;

use common::cluster::ThreeNodes;
use common::http::{http, json_u64};
use common::{wait_until, Conn, Server};
use raftis::protocol::Frame;

const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

fn error_starts(f: &Frame, prefix: &str) -> bool {
    matches!(f, Frame::Error(e) if e.starts_with(prefix.as_bytes()))
}

/// Sends `args` on `c` without reading the reply.
fn send(c: &mut Conn, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send_raw(&Conn::encode(&args));
}

/// The reply to a command sent earlier, which may take longer than one read timeout (10 s).
fn late_reply(c: &mut Conn) -> Frame {
    for _ in 0..12 {
        if let Some(reply) = c.read_frame() {
            return reply;
        }
    }
    panic!("no reply within two minutes")
}

fn wait_busy(c: &mut Conn, text: &str) {
    wait_until("BUSY replies", 60, || c.cmd(&["PING"]) == Frame::error(text));
}

fn setup(c: &mut Conn, steps: &str) {
    assert_eq!(c.cmd(&["CONFIG", "SET", "lua-max-steps", steps]), Frame::ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "lua-time-limit", "10"]), Frame::ok());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "busy-reply-threshold"]),
        Frame::Array(vec![bulk("busy-reply-threshold"), bulk("10")])
    );
}

#[test]
fn script_kill_stops_a_busy_read_only_script_and_others_get_busy_meanwhile() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    setup(&mut c, "100000000000000");
    assert_eq!(c.cmd(&["SCRIPT", "KILL"]), Frame::error("NOTBUSY No scripts in execution right now."));
    assert_eq!(c.cmd(&["FUNCTION", "KILL"]), Frame::error("NOTBUSY No scripts in execution right now."));
    assert_eq!(c.cmd(&["SET", "x", "1"]), Frame::ok());
    let mut runner = server.conn();
    send(
        &mut runner,
        &["EVAL_RO", "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end", "0"],
    );
    wait_busy(&mut c, BUSY_EVAL);
    assert_eq!(c.cmd(&["GET", "x"]), Frame::error(BUSY_EVAL));
    assert_eq!(c.cmd(&["FUNCTION", "KILL"]), Frame::error(BUSY_EVAL), "FUNCTION KILL does not stop an EVAL");
    // A transaction: MULTI passes, a queued command is refused, EXEC discards it all.
    let mut tx = server.conn();
    assert_eq!(tx.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(tx.cmd(&["INCR", "x"]), Frame::error(BUSY_EVAL));
    assert_eq!(tx.cmd(&["EXEC"]), Frame::error(format!("EXECABORT Transaction discarded because of: {BUSY_EVAL}")));
    assert_eq!(c.cmd(&["SCRIPT", "KILL"]), Frame::ok());
    let killed = late_reply(&mut runner);
    assert!(error_starts(&killed, "ERR Script killed by user with SCRIPT KILL"), "{killed:?}");
    wait_until("PONG", 30, || c.cmd(&["PING"]) == Frame::simple("PONG"));
    assert_eq!(c.cmd(&["GET", "x"]), bulk("1"), "the refused transaction did not run");
    assert_eq!(tx.cmd(&["PING", "asdf"]), bulk("asdf"), "no longer in MULTI");
    assert_eq!(runner.cmd(&["PING"]), Frame::simple("PONG"));
}

#[test]
fn function_kill_stops_a_busy_fcall_ro() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    setup(&mut c, "100000000000000");
    let lib = "#!lua name=spin\nredis.register_function{function_name='spin', callback=function() \
               local a = 1 while true do a = a + 1 end end, flags={'no-writes'}}";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), bulk("spin"));
    let mut runner = server.conn();
    send(&mut runner, &["FCALL_RO", "spin", "0"]);
    wait_busy(&mut c, BUSY_FUNCTION);
    assert_eq!(c.cmd(&["SCRIPT", "KILL"]), Frame::error(BUSY_FUNCTION), "SCRIPT KILL does not stop a function");
    assert_eq!(c.cmd(&["FUNCTION", "KILL"]), Frame::ok());
    let killed = late_reply(&mut runner);
    assert!(error_starts(&killed, "ERR Script killed by user"), "{killed:?}");
    wait_until("PONG", 30, || c.cmd(&["PING"]) == Frame::simple("PONG"));
}

const WRITE_LOOP: &str = "redis.call('set', KEYS[1], 'new') local a = 0 while true do a = a + 1 end";
/// Long enough to see BUSY (at 10 ms), short enough to end in a debug build within the waits.
const WRITE_STEPS: &str = "100000000";
/// A write waits for its apply, and a read's barrier for the apply to reach it: longer than
/// the script may take on a loaded machine.
const LONG_WRITES: [&str; 4] = ["--raft-write-timeout-ms", "120000", "--raft-read-timeout-ms", "120000"];

fn rolled_back() -> String {
    format!(
        "ERR Script aborted: it ran more than lua-max-steps ({WRITE_STEPS}) instructions; its writes were rolled back"
    )
}

/// Waits until a write script runs on the node of `c`: a KILL then answers UNKILLABLE.
fn wait_unkillable(c: &mut Conn) {
    wait_until("the write script running", 60, || error_starts(&c.cmd(&["SCRIPT", "KILL"]), "UNKILLABLE"));
}

#[test]
fn a_running_write_script_is_unkillable_refuses_nothing_and_ends_at_its_step_budget() {
    let server = Server::raftis(&LONG_WRITES);
    let mut c = server.conn();
    setup(&mut c, WRITE_STEPS);
    assert_eq!(c.cmd(&["SET", "k", "old"]), Frame::ok());
    let mut runner = server.conn();
    send(&mut runner, &["EVAL", WRITE_LOOP, "1", "k"]);
    wait_unkillable(&mut c);
    let refused = c.cmd(&["FUNCTION", "KILL"]);
    assert!(error_starts(&refused, "UNKILLABLE"), "{refused:?}");
    // No BUSY: what needs no data is answered now, a read waits for the apply.
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
    assert_eq!(late_reply_of(&mut c, &["GET", "k"]), bulk("old"));
    assert_eq!(late_reply(&mut runner), Frame::error(rolled_back()));
    assert_eq!(c.cmd(&["SCRIPT", "KILL"]), Frame::error("NOTBUSY No scripts in execution right now."));
}

/// Sends `args` and waits for the reply, however long it takes (up to two minutes).
fn late_reply_of(c: &mut Conn, args: &[&str]) -> Frame {
    send(c, args);
    late_reply(c)
}

fn term(cluster: &ThreeNodes, i: usize) -> Option<u64> {
    json_u64(&http(cluster.raft_ports[i], "GET", "/raft/metrics", "").1, "current_term")
}

/// The script runs in every replica's apply, off the runtime thread: a follower answers its
/// own clients meanwhile (its KILL says UNKILLABLE), heartbeats go on (the term does not
/// move), and the script ends alike everywhere.
#[test]
fn a_write_script_runs_on_every_replica_without_an_election() {
    let cluster = ThreeNodes::start("busy", &LONG_WRITES);
    let leader = cluster.leader().expect("leader");
    let follower = (leader + 1) % 3;
    let mut l = cluster.conn(leader);
    let mut f = cluster.conn(follower);
    assert_eq!(l.cmd(&["SET", "k", "old"]), Frame::ok());
    setup(&mut l, WRITE_STEPS);
    let before = term(&cluster, leader).expect("term");
    let mut runner = cluster.conn(leader);
    send(&mut runner, &["EVAL", WRITE_LOOP, "1", "k"]);
    wait_unkillable(&mut f);
    assert_eq!(f.cmd(&["PING"]), Frame::simple("PONG"));
    assert_eq!(late_reply(&mut runner), Frame::error(rolled_back()));
    for i in 0..3 {
        let mut c = cluster.conn(i);
        wait_until("the script's end on every node", 60, || {
            c.cmd(&["SCRIPT", "KILL"]) == Frame::error("NOTBUSY No scripts in execution right now.")
        });
        assert_eq!(late_reply_of(&mut c, &["GET", "k"]), bulk("old"), "node {i}");
    }
    assert_eq!(term(&cluster, leader), Some(before), "no election during the script");
    assert_eq!(cluster.leader(), Some(leader));
}

/// Counts its run in KEYS[1], then loops ARGV[1] times.
const COUNTED_LOOP: &str =
    "redis.call('incr', KEYS[1]) local a = 0 for i = 1, tonumber(ARGV[1]) do a = a + 1 end return a";

/// A write script still running past `raft-write-timeout-ms` gets its own reply: its entry was
/// committed before the deadline, so the node waits for the apply instead of answering
/// "-TRYAGAIN ... may or may not have been applied" (a client would retry and run it twice).
#[test]
fn a_committed_write_script_gets_its_reply_however_long_it_runs() {
    let server = Server::raftis(&["--raft-write-timeout-ms", "300", "--raft-read-timeout-ms", "120000"]);
    let mut c = server.conn();
    setup(&mut c, "100000000000000");
    let mut runner = server.conn();
    let (mut loops, mut runs) = (1_000_000u64, 0);
    let outlasted = loop {
        assert!(runs < 8, "no script outlasted the write timeout");
        let started = std::time::Instant::now();
        send(&mut runner, &["EVAL", COUNTED_LOOP, "1", "runs", &loops.to_string()]);
        runs += 1;
        // Poll until the script is seen running three times the write timeout, or is over.
        let mut outlasted = false;
        let mut seen_running = false;
        while started.elapsed() < std::time::Duration::from_secs(60) {
            let running = error_starts(&c.cmd(&["SCRIPT", "KILL"]), "UNKILLABLE");
            seen_running |= running;
            if running && started.elapsed() > std::time::Duration::from_millis(900) {
                outlasted = true;
                break;
            }
            if !running && (seen_running || started.elapsed() > std::time::Duration::from_millis(900)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(late_reply(&mut runner), Frame::Integer(loops as i64), "run {runs} of {loops} loops");
        if outlasted {
            break true;
        }
        loops *= 4;
    };
    assert!(outlasted);
    assert_eq!(c.cmd(&["GET", "runs"]), bulk(&runs.to_string()), "each script ran once");
}

//! The HTTP admin API on a real raftis process: it answers on the Raft port next to the RPC
//! protocol, reports the leader and Raft figures, refuses a second init and every malformed
//! body with a JSON error, serves Prometheus text on /metrics, and survives garbage.

mod common;

use common::http::{http, http_raw, json_u64};
use common::{free_port, Conn, Server};
use raftis::protocol::Frame;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A bootstrapped single node (node id 7) and its Raft/admin port.
fn node() -> (Server, u16) {
    let raft_port = free_port();
    let raft_addr = format!("127.0.0.1:{raft_port}");
    let server = Server::raftis(&["--node-id", "7", "--raft-addr", &raft_addr]);
    (server, raft_port)
}

/// Waits until the node reports itself as leader (a bootstrapped node elects itself).
fn wait_leader(raft_port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(raft_port, "GET", "/raft/leader", "");
        if status == 200 && json_u64(&body, "leader_id") == Some(7) {
            return body;
        }
        assert!(Instant::now() < deadline, "no leader reported: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_json_error(status: u16, body: &str, want: u16, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert!(body.starts_with("{\"error\":"), "{what}: not a JSON error: {body}");
}

#[test]
fn leader_metrics_health_and_prometheus() {
    let (server, raft_port) = node();
    let leader = wait_leader(raft_port);
    assert_eq!(json_u64(&leader, "node_id"), Some(7));
    assert!(leader.contains(&format!("\"resp_addr\":\"127.0.0.1:{}\"", server.port)), "{leader}");

    let mut c = server.conn();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
    // The SET is applied (the figures are published just after the reply: wait for them).
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (status, metrics) = http(raft_port, "GET", "/raft/metrics", "");
        assert_eq!(status, 200, "{metrics}");
        if json_u64(&metrics, "last_applied_index").is_some_and(|i| i >= 2) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "the SET is never reported applied: {metrics}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(metrics.starts_with("{\"id\":7,\"state\":\"leader\""), "{metrics}");
    assert!(metrics.contains("\"role\":\"voter\""), "{metrics}");

    let (status, health) = http(raft_port, "GET", "/health", "");
    assert_eq!((status, json_u64(&health, "leader_id")), (200, Some(7)), "{health}");

    let (status, text) = http(raft_port, "GET", "/metrics", "");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("raftis_raft_is_leader 1"), "{text}");
    assert!(text.contains("raftis_raft_applied_index "), "{text}");
    assert!(text.contains("raftis_keys 1"), "{text}");
    // The one SET was proposed alone.
    assert!(text.contains("raftis_raft_proposals_total 1\n"), "{text}");
    assert!(text.contains("raftis_raft_proposed_writes_total 1\n"), "{text}");
    assert!(text.contains("# TYPE raftis_commands_processed counter"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[test]
fn init_twice_and_malformed_bodies_get_json_errors() {
    let (_server, raft_port) = node();
    wait_leader(raft_port);
    let (status, body) = http(raft_port, "POST", "/raft/init", "{}");
    assert_json_error(status, &body, 409, "second init");
    assert!(body.contains("already initialized"), "{body}");

    // (path, body, what the error says, the case). A body that is not the expected JSON is
    // refused with axum's explanation after "bad request body: "; one that parses but makes no
    // sense with the check's own message.
    let cases: &[(&str, &str, &str, &str)] = &[
        ("/raft/init", "{not json", "bad request body: Failed to parse", "broken JSON"),
        ("/raft/init", r#"{"nodes": []}"#, "nodes must list at least this node", "no members"),
        ("/raft/init", r#"{"nodes": [[1, {"raft_addr": "no-port"}]]}"#, "raft_addr must be host:port", "no port"),
        ("/raft/add_learner", r#"{"node_id": "four"}"#, "bad request body: Failed to deserialize", "id's type"),
        ("/raft/add_learner", r#"{"node_id": 4, "node": {"raft_addr": "127.0.0.1:0"}}"#, "host:port", "port 0"),
        ("/raft/change_membership", r#"{"members": []}"#, "members cannot be empty", "empty voter set"),
        ("/raft/change_membership", r#"{"members": [7], "extra": 1}"#, "unknown field `extra`", "unknown field"),
        ("/raft/remove_node", "{}", "bad request body: Failed to deserialize", "no node_id"),
        ("/raft/remove_node", r#"{"node_id": 99}"#, "99", "removing a stranger"),
    ];
    for (path, body, says, what) in cases {
        let (status, reply) = http(raft_port, "POST", path, body);
        assert_json_error(status, &reply, 400, what);
        assert!(reply.contains(says), "{what}: the error does not say {says:?}: {reply}");
    }
    let (status, reply) = http(raft_port, "POST", "/raft/change_membership", r#"{"members": []}"#);
    assert_eq!(
        (status, reply.as_str()),
        (400, r#"{"error":"members cannot be empty"}"#),
        "exactly the check's message"
    );
    let (status, reply) = http_raw(raft_port, "POST", "/raft/init", "text/plain", "{}");
    assert_json_error(status, &reply, 400, "not declared as JSON");
    assert!(reply.contains("bad request body: Expected request with `Content-Type: application/json`"), "{reply}");
    let (status, reply) = http(raft_port, "GET", "/raft/nothing", "");
    assert_json_error(status, &reply, 404, "unknown path");
    let (status, reply) = http(raft_port, "GET", "/raft/init", "");
    assert_json_error(status, &reply, 405, "GET of a POST endpoint");
    // Nothing above changed the membership.
    let (_, metrics) = http(raft_port, "GET", "/raft/metrics", "");
    assert_eq!(metrics.matches("\"role\":").count(), 1, "{metrics}");
}

#[test]
fn garbage_on_the_raft_port_closes_only_that_connection() {
    let (server, raft_port) = node();
    wait_leader(raft_port);
    // Neither HTTP nor a valid RPC frame: a length prefix just beyond the 1 GiB limit.
    let mut s = TcpStream::connect(("127.0.0.1", raft_port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&[0x40, 0, 0, 1, 1, 2, 3]).expect("write");
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).expect("closed, not timed out"), 0, "the connection is closed");
    // A request line that is not HTTP at all.
    let mut s = TcpStream::connect(("127.0.0.1", raft_port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(b"GARBAGE\r\n\r\n").expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    // The node still serves both faces.
    assert_eq!(http(raft_port, "GET", "/health", "").0, 200);
    assert_eq!(server.conn().cmd(&["SET", "a", "b"]), Frame::ok());
}

#[test]
fn admin_addr_serves_the_api_on_a_port_of_its_own() {
    let (raft_port, admin_port) = (free_port(), free_port());
    let (raft_addr, admin_addr) = (format!("127.0.0.1:{raft_port}"), format!("127.0.0.1:{admin_port}"));
    let _server = Server::raftis(&["--node-id", "7", "--raft-addr", &raft_addr, "--admin-addr", &admin_addr]);
    wait_leader(raft_port);
    let (status, body) = http(admin_port, "GET", "/raft/leader", "");
    assert_eq!((status, json_u64(&body, "leader_id")), (200, Some(7)), "{body}");
    let (status, body) = http(admin_port, "POST", "/raft/init", "{}");
    assert_json_error(status, &body, 409, "init through the extra address");
}

/// Waits until a SET on `c` moves the node's count of log syncs run by its runtime thread when
/// idle the way `grows` says (the switch follows membership through a task, a moment after a
/// change), then checks that ten more SETs keep to it: off, none of them syncs when idle; on,
/// some do (on a loaded machine a sync the runtime did not get to within its wait goes to the
/// flusher thread instead, and a streak of slow idle rounds pauses them, as it should).
fn until_idle_syncs(c: &mut Conn, grows: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let moved = |c: &mut Conn| {
        let before = c.log_idle_rounds();
        assert_eq!(c.cmd(&["SET", "probe", "x"]), Frame::ok());
        c.log_idle_rounds() > before
    };
    while moved(c) != grows {
        assert!(Instant::now() < deadline, "idle syncs never turned {}", if grows { "on" } else { "off" });
    }
    let kept = (0..10).filter(|_| moved(c) == grows).count();
    if grows {
        assert!(kept >= 1, "idle syncs turned off again: none of 10 SETs synced when idle");
    } else {
        assert_eq!(kept, 10, "idle syncs turned on again");
    }
}

#[test]
fn a_second_node_joins_is_promoted_and_removed_over_http() {
    let (leader, raft_port) = node();
    wait_leader(raft_port);
    // Alone, the node syncs its log when its runtime is idle; with a peer, on its flusher thread.
    until_idle_syncs(&mut leader.conn(), true);
    let joiner_raft = free_port();
    let joiner_addr = format!("127.0.0.1:{joiner_raft}");
    let joiner = Server::raftis(&["--node-id", "8", "--raft-addr", &joiner_addr, "--is-bootstrap=false"]);

    // No resp_addr: the leader asks the new node for its client address.
    let body = format!(r#"{{"node_id": 8, "node": {{"raft_addr": "{joiner_addr}"}}}}"#);
    let (status, reply) = http(raft_port, "POST", "/raft/add_learner", &body);
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains(&format!("\"client_addr\":\"127.0.0.1:{}\"", joiner.port)), "{reply}");

    // Promotion sent to the learner itself is carried out by the leader.
    let (status, reply) = http(joiner_raft, "POST", "/raft/change_membership", r#"{"members": [7, 8]}"#);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply.matches("\"role\":\"voter\"").count(), 2, "{reply}");
    let mut c = leader.conn();
    until_idle_syncs(&mut c, false);
    assert_eq!(c.cmd(&["SET", "joined", "yes"]), Frame::ok());
    let deadline = Instant::now() + Duration::from_secs(20);
    while json_u64(&http(joiner_raft, "GET", "/raft/metrics", "").1, "current_leader") != Some(7) {
        assert!(Instant::now() < deadline, "the new voter never saw the leader");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, reply) = http(raft_port, "POST", "/raft/remove_node", r#"{"node_id": 8}"#);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply.matches("\"role\":").count(), 1, "{reply}");
    assert_eq!(c.cmd(&["GET", "joined"]), Frame::Bulk(bytes::Bytes::from_static(b"yes")));
    until_idle_syncs(&mut c, true);
}

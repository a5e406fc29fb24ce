//! Hostile input and slow readers over real sockets: what a client announces is never
//! allocated up front, an incomplete command past `client-query-buffer-limit` closes the
//! client, endless lines hit Redis's fixed limits, and a client that pipelines big replies
//! without reading costs the node a bounded amount (and is closed by the normal class of
//! `client-output-buffer-limit` when one is set). The node's resident memory is checked where
//! a mistake would show there. Replies and error texts are Redis 7.0.15's (checked against a
//! real redis-server; the CONFIG syntax is compared byte for byte in tests/diff/limits.txt).

mod common;

use common::{wait_until, Conn, Server};
use raftis::protocol::Frame;

fn ok() -> Frame {
    Frame::Simple("OK".into())
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().expect("a number") * 1024
}

fn connected(admin: &mut Conn) -> usize {
    admin.info_field("clients", "connected_clients").parse().expect("a count")
}

/// Everything the server sends until it closes the connection.
fn read_to_end(c: &mut Conn) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(raw) = c.read_raw() {
        all.extend_from_slice(&raw);
    }
    all
}

#[test]
fn announced_sizes_are_never_allocated() {
    let server = Server::raftis(&[]);
    let mut admin = server.conn();
    let before = rss(server.pid());
    // Forty clients each announce 512 MiB (a bulk at proto-max-bulk-len, or two billion
    // arguments) and send a little of it: allocating what they announce would take 20 GiB.
    let mut hostile: Vec<Conn> = (0..40).map(|_| server.conn()).collect();
    for (i, c) in hostile.iter_mut().enumerate() {
        let header: &[u8] = if i % 2 == 0 { b"*1\r\n$536870912\r\n" } else { b"*2147483647\r\n$1\r\nx\r\n" };
        c.send_raw(header);
        c.send_raw(&[b'y'; 4096]);
    }
    assert_eq!(admin.cmd(&["PING"]), Frame::Simple("PONG".into()));
    wait_until("the hostile clients to be registered", 10, || connected(&mut admin) == 41);
    let grew = rss(server.pid()).saturating_sub(before);
    assert!(grew < 32 << 20, "the node grew by {} MiB", grew >> 20);
    // One past the limits: Redis's errors, and the connection closes.
    let mut c = server.conn();
    c.send_raw(b"*1\r\n$536870913\r\n");
    assert_eq!(read_to_end(&mut c), b"-ERR Protocol error: invalid bulk length\r\n");
    let mut c = server.conn();
    c.send_raw(b"*2147483648\r\n");
    assert_eq!(read_to_end(&mut c), b"-ERR Protocol error: invalid multibulk length\r\n");
}

#[test]
fn an_incomplete_command_past_the_query_buffer_limit_closes_the_client() {
    let server = Server::raftis(&[]);
    let mut admin = server.conn();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"]), ok());
    let get = admin.cmd(&["CONFIG", "GET", "client-query-buffer-limit"]);
    let bulk = |s: &str| Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()));
    assert_eq!(get, Frame::Array(vec![bulk("client-query-buffer-limit"), bulk("1048576")]));
    // A 2 MB argument is allowed by proto-max-bulk-len, but not by a 1 MB query buffer:
    // Redis closes such a client without a reply, and so does raftis.
    let mut big = server.conn();
    big.send_raw(b"*2\r\n$3\r\nSET\r\n$2000000\r\n");
    big.send_raw(&vec![b'x'; 1_500_000]);
    assert_eq!(read_to_end(&mut big), b"", "closed without a reply");
    // raftis counts the whole incomplete command, its small arguments too (Redis 7.0 counts
    // only the unparsed rest, so it would wait for all 2 million of them).
    let mut many = server.conn();
    let mut req = b"*2000000\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n".to_vec();
    req.extend(b"$1\r\nx\r\n".repeat(200_000));
    many.send_raw(&req);
    assert_eq!(read_to_end(&mut many), b"");
    assert_eq!(connected(&mut admin), 1);
    // Below the limit all is well.
    let mut fine = server.conn();
    let value = "v".repeat(900_000);
    assert_eq!(fine.cmd(&["SET", "k", &value]), ok());
    assert_eq!(fine.cmd(&["STRLEN", "k"]), Frame::Integer(900_000));
}

#[test]
fn endless_lines_hit_redis_fixed_limits() {
    let server = Server::raftis(&[]);
    let before = rss(server.pid());
    // An inline line that never ends, sent in pieces: cut at 64 KiB whatever follows.
    let mut inline = server.conn();
    // The server may close before the last pieces: their writes then fail (EPIPE).
    for _ in 0..20 {
        if !inline.try_send_raw(&[b'a'; 4096]) {
            break;
        }
    }
    assert_eq!(read_to_end(&mut inline), b"-ERR Protocol error: too big inline request\r\n");
    let mut count = server.conn();
    count.try_send_raw(&[b"*".as_slice(), &[b'1'; 70_000]].concat());
    assert_eq!(read_to_end(&mut count), b"-ERR Protocol error: too big mbulk count string\r\n");
    let mut bulk = server.conn();
    bulk.try_send_raw(&[b"*1\r\n$".as_slice(), &[b'1'; 70_000]].concat());
    assert_eq!(read_to_end(&mut bulk), b"-ERR Protocol error: too big bulk count string\r\n");
    let grew = rss(server.pid()).saturating_sub(before);
    assert!(grew < 16 << 20, "the node grew by {} MiB", grew >> 20);
}

/// Sets `big` to a 1 MiB value and returns the pipeline of `n` GETs of it.
fn big_value_and_gets(admin: &mut Conn, n: usize) -> Vec<u8> {
    assert_eq!(admin.cmd(&["SET", "big", &"x".repeat(1 << 20)]), ok());
    (0..n).flat_map(|_| Conn::encode(&[b"GET", b"big"])).collect()
}

#[test]
fn a_client_pipelining_big_replies_without_reading_costs_a_bounded_amount() {
    let server = Server::raftis(&[]);
    let mut admin = server.conn();
    let gets = big_value_and_gets(&mut admin, 200);
    let before = rss(server.pid());
    let processed =
        |admin: &mut Conn| -> u64 { admin.info_field("stats", "total_commands_processed").parse().unwrap() };
    let start = processed(&mut admin);
    // 200 MiB of replies asked for at once. Redis would queue them all (its normal class has
    // no limit by default); raftis runs the next GET only once the last reply is written.
    let mut greedy = server.conn();
    greedy.send_raw(&gets);
    let first = greedy.read_raw().expect("the first reply");
    assert_eq!(first.len(), (1 << 20) + 12, "$1048576\\r\\n...\\r\\n");
    let ran = processed(&mut admin) - start;
    assert!(ran < 100, "{ran} of 200 GETs ran while the client read one reply");
    let grew = rss(server.pid()).saturating_sub(before);
    assert!(grew < 48 << 20, "the node grew by {} MiB", grew >> 20);
    // Reading on, the client gets every reply, in order.
    for i in 1..200 {
        let reply = greedy.read_raw().unwrap_or_else(|| panic!("reply {i}"));
        assert_eq!(reply, first, "reply {i}");
    }
}

#[test]
fn the_normal_output_limit_closes_a_client_that_does_not_read() {
    let server = Server::raftis(&[]);
    let mut admin = server.conn();
    let gets = big_value_and_gets(&mut admin, 200);
    // Hard limit: a reply bigger than it closes the client at once, nothing sent (as Redis).
    let limit = |v: &str| ["CONFIG", "SET", "client-output-buffer-limit", v].map(str::to_string);
    let set = |admin: &mut Conn, v: &str| admin.cmd(&limit(v).each_ref().map(String::as_str));
    assert_eq!(set(&mut admin, "normal 512kb 0 0"), ok());
    let mut c = server.conn();
    c.send_raw(&Conn::encode(&[b"GET", b"big"]));
    assert_eq!(read_to_end(&mut c), b"", "closed without a reply");
    // Soft limit: more than 512 KiB unsent for more than a second closes it.
    assert_eq!(set(&mut admin, "normal 0 512kb 1"), ok());
    let mut slow = server.conn();
    slow.send_raw(&gets);
    wait_until("the reader that never reads to be closed", 15, || connected(&mut admin) == 1);
    // Small replies stay well under the limit: a client reading normally is untouched.
    let mut fine = server.conn();
    assert_eq!(fine.cmd(&["STRLEN", "big"]), Frame::Integer(1 << 20));
    assert_eq!(set(&mut admin, "normal 0 0 0"), ok());
    assert_eq!(fine.cmd(&["GET", "big"]), Frame::Bulk(bytes::Bytes::from("x".repeat(1 << 20))));
}

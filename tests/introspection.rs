//! SLOWLOG (and the other introspection commands) over real sockets against the raftis
//! binary: what the differential scripts cannot show (pipelined writes, several clients,
//! settings from the config file).

mod common;

use common::{Conn, Server};
use raftis::protocol::Frame;

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Integer(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// SLOWLOG GET's entries as (arguments joined by spaces, client address, client name).
fn entries(c: &mut Conn) -> Vec<(String, String, String)> {
    let Frame::Array(entries) = c.cmd(&["SLOWLOG", "GET", "-1"]) else { panic!("SLOWLOG GET") };
    entries
        .iter()
        .map(|e| {
            let Frame::Array(f) = e else { panic!("entry {e:?}") };
            assert_eq!(f.len(), 6, "Redis 7's six fields");
            let Frame::Array(args) = &f[3] else { panic!("argv {f:?}") };
            let args: Vec<String> = args.iter().map(text).collect();
            (args.join(" "), text(&f[4]), text(&f[5]))
        })
        .collect()
}

#[test]
fn pipelined_writes_and_reads_are_each_logged_with_their_client() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), Frame::ok());
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "piper"]), Frame::ok());
    let addr = text(&c.cmd(&["CLIENT", "INFO"])).split(' ').find_map(|f| f.strip_prefix("addr=")).unwrap().to_string();
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), Frame::ok());
    // One buffer: three writes proposed as one batch, a read, another write, an arity error.
    let mut buf = Vec::new();
    for args in [&["SET", "a", "1"][..], &["INCR", "a"], &["RPUSH", "l", "x"], &["GET", "a"], &["DEL", "l"], &["GET"]] {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        buf.extend(Conn::encode(&args));
    }
    c.send_raw(&buf);
    for _ in 0..6 {
        c.read_frame().expect("reply");
    }
    let mut other = server.conn();
    assert_eq!(other.cmd(&["SET", "b", "2"]), Frame::ok());
    let got = entries(&mut c);
    let shown: Vec<&str> = got.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(shown, ["SET b 2", "DEL l", "GET a", "RPUSH l x", "INCR a", "SET a 1", "SLOWLOG RESET"]);
    assert!(got[1..].iter().all(|(_, a, n)| a == &addr && n == "piper"), "{got:?}");
    assert_ne!(got[0].1, addr, "the other client's own address");
    assert_eq!(got[0].2, "");
    // Off: nothing more is logged, and the log is kept.
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]), Frame::ok());
    c.cmd(&["SET", "c", "3"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Frame::Integer(8), "up to the CONFIG SET that turned it off");
}

#[test]
fn the_config_file_sets_the_slow_log() {
    let dir = common::tempdir::TempDir::new("slowconf");
    let conf = dir.0.join("raftis.conf");
    std::fs::write(&conf, "slowlog-log-slower-than 0\nslowlog-max-len 3\n").expect("write config");
    let server = Server::raftis(&["--config", conf.to_str().unwrap()]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "GET", "slowlog-max-len"]), Frame::bulks(["slowlog-max-len", "3"]));
    for i in 0..5 {
        c.cmd(&["SET", "k", &i.to_string()]);
    }
    let got = entries(&mut c);
    let shown: Vec<&str> = got.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(shown, ["SET k 4", "SET k 3", "SET k 2"]);
}

/// LATENCY HISTOGRAM's reply as (command, calls, [(µs, cumulative count)]), from RESP2's
/// flattened maps.
type CommandHistogram = (String, i64, Vec<(i64, i64)>);

fn histograms(c: &mut Conn, names: &[&str]) -> Vec<CommandHistogram> {
    let mut args = vec!["LATENCY", "HISTOGRAM"];
    args.extend_from_slice(names);
    parse_histograms(&c.cmd(&args))
}

fn parse_histograms(reply: &Frame) -> Vec<CommandHistogram> {
    let Frame::Array(flat) = reply else { panic!("LATENCY HISTOGRAM: {reply:?}") };
    flat.chunks(2)
        .map(|pair| {
            let Frame::Array(fields) = &pair[1] else { panic!("{pair:?}") };
            assert_eq!((text(&fields[0]), text(&fields[2])), ("calls".into(), "histogram_usec".into()));
            let Frame::Array(buckets) = &fields[3] else { panic!("{fields:?}") };
            let ints: Vec<i64> = buckets.iter().map(|b| text(b).parse().unwrap()).collect();
            (text(&pair[0]), text(&fields[1]).parse().unwrap(), ints.chunks(2).map(|p| (p[0], p[1])).collect())
        })
        .collect()
}

#[test]
fn latency_histograms_count_every_call_in_redis_buckets() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    for i in 0..3 {
        c.cmd(&["SET", "k", &i.to_string()]);
    }
    // Two pipelined writes and a read.
    let mut buf = Conn::encode(&[b"SET", b"k", b"x"]);
    buf.extend(Conn::encode(&[b"SET", b"k", b"y"]));
    buf.extend(Conn::encode(&[b"GET", b"k"]));
    c.send_raw(&buf);
    for _ in 0..3 {
        c.read_frame().expect("reply");
    }
    c.cmd(&["CLIENT", "ID"]);
    c.cmd(&["CLIENT", "NOSUCH"]);
    let got = histograms(&mut c, &["set", "GET", "client", "nosuch"]);
    let summary: Vec<(&str, i64)> = got.iter().map(|(n, calls, _)| (n.as_str(), *calls)).collect();
    assert_eq!(summary, [("set", 5), ("get", 1), ("client|id", 1)], "an unknown subcommand counts nowhere");
    for (name, calls, buckets) in &got {
        assert!(!buckets.is_empty(), "{name}");
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{name}: {buckets:?}");
        assert_eq!(buckets.last().unwrap().1, *calls, "{name}: every call in a bucket");
        // Redis's bucket bounds: (2^k + 2^(k-7) - 1) / 1000 µs.
        let bounds: Vec<i64> = (10..30).map(|k| ((1i64 << k) + (1i64 << (k - 7)) - 1) / 1000).collect();
        assert!(buckets.iter().all(|(us, _)| bounds.contains(us)), "{name}: {buckets:?}");
    }
    // Reads counted earlier in the same pipeline are seen by a LATENCY HISTOGRAM behind them.
    let mut buf = Conn::encode(&[b"GET", b"k"]);
    buf.extend(Conn::encode(&[b"GET", b"k"]));
    buf.extend(Conn::encode(&[b"LATENCY", b"HISTOGRAM", b"get"]));
    c.send_raw(&buf);
    c.read_frame().expect("reply");
    c.read_frame().expect("reply");
    let piped = parse_histograms(&c.read_frame().expect("LATENCY HISTOGRAM's reply"));
    assert_eq!(piped[0].1, 3, "{piped:?}");
    // And another client sees a pipeline's reads once their replies are out.
    c.send_raw(&buf[..buf.len() - Conn::encode(&[b"LATENCY", b"HISTOGRAM", b"get"]).len()]);
    c.read_frame().expect("reply");
    c.read_frame().expect("reply");
    assert_eq!(histograms(&mut server.conn(), &["get"])[0].1, 5);
    // RESP3: maps.
    c.cmd(&["HELLO", "3"]);
    let reply = c.cmd(&["LATENCY", "HISTOGRAM", "get"]);
    let Frame::Map(entries) = &reply else { panic!("a map: {reply:?}") };
    assert!(matches!(&entries[0].1, Frame::Map(f) if f.len() == 2), "{reply:?}");
    c.cmd(&["HELLO", "2"]);
    // Off: nothing more is counted; RESETSTAT forgets everything.
    assert_eq!(c.cmd(&["CONFIG", "SET", "latency-tracking", "no"]), Frame::ok());
    c.cmd(&["SET", "k", "z"]);
    assert_eq!(histograms(&mut c, &["set"])[0].1, 5);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    assert!(histograms(&mut c, &[]).is_empty());
}

#[test]
fn the_latency_monitor_records_slow_commands_as_events() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "5"]), Frame::ok());
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.02"]), Frame::ok());
    let Frame::Array(latest) = c.cmd(&["LATENCY", "LATEST"]) else { panic!("LATEST") };
    assert_eq!(latest.len(), 1, "{latest:?}");
    let Frame::Array(fields) = &latest[0] else { panic!("{latest:?}") };
    assert_eq!(text(&fields[0]), "command", "DEBUG is not a fast command");
    let (at, ms, max): (i64, i64, i64) =
        (text(&fields[1]).parse().unwrap(), text(&fields[2]).parse().unwrap(), text(&fields[3]).parse().unwrap());
    let now: i64 = match c.cmd(&["TIME"]) {
        Frame::Array(t) => text(&t[0]).parse().unwrap(),
        other => panic!("{other:?}"),
    };
    assert!((now - at).abs() <= 2 && ms >= 20 && max == ms, "{fields:?}");
    let Frame::Array(history) = c.cmd(&["LATENCY", "HISTORY", "command"]) else { panic!("HISTORY") };
    assert_eq!(history.len(), 1);
    let graph = text(&c.cmd(&["LATENCY", "GRAPH", "command"]));
    assert!(graph.starts_with(&format!("command - high {ms} ms, low {ms} ms (all time high {ms} ms)\n")), "{graph}");
    let doctor = text(&c.cmd(&["LATENCY", "DOCTOR"]));
    assert!(doctor.contains(&format!("1. command: 1 latency spikes (average {ms}ms")), "{doctor}");
    assert!(doctor.contains("Check your Slow Log"), "{doctor}");
    assert_eq!(c.cmd(&["LATENCY", "RESET"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Frame::Array(vec![]));
    // Under the threshold: nothing.
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Frame::Array(vec![]));
}

/// Whether CLIENT LIST (sent on `by`) shows client `id` with last command `cmd`: the
/// command reached the server and is waiting (a held command is shown before it runs).
fn shows_command(by: &mut Conn, id: i64, cmd: &str) -> bool {
    let list = text(&by.cmd(&["CLIENT", "LIST"]));
    list.lines().any(|l| l.starts_with(&format!("id={id} ")) && l.contains(&format!(" cmd={cmd} ")))
}

fn id_of(c: &mut Conn) -> i64 {
    match c.cmd(&["CLIENT", "ID"]) {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_write_pause_holds_writes_until_unpause_and_lets_reads_go_on() {
    let server = Server::raftis(&[]);
    let (mut admin, mut writer, mut reader) = (server.conn(), server.conn(), server.conn());
    let writer_id = id_of(&mut writer);
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]), Frame::ok());
    writer.send_raw(&Conn::encode(&[b"SET", b"k", b"v"]));
    common::wait_until("the SET to be held", 10, || shows_command(&mut admin, writer_id, "set"));
    assert_eq!(reader.cmd(&["GET", "k"]), Frame::Null, "a read goes on, and the write has not run");
    assert_eq!(reader.cmd(&["PING"]), Frame::simple("PONG"));
    // A script may write (Redis holds it unless its shebang says `no-writes`): held as well.
    let mut scripter = server.conn();
    let scripter_id = id_of(&mut scripter);
    scripter.send_raw(&Conn::encode(&[b"EVAL", b"redis.call('SET', 'e', '1') return 1", b"0"]));
    common::wait_until("the EVAL to be held", 10, || shows_command(&mut admin, scripter_id, "eval"));
    // PUBLISH may replicate: held.
    let mut publisher = server.conn();
    let publisher_id = id_of(&mut publisher);
    publisher.send_raw(&Conn::encode(&[b"PUBLISH", b"ch", b"m"]));
    common::wait_until("the PUBLISH to be held", 10, || shows_command(&mut admin, publisher_id, "publish"));
    assert_eq!(reader.cmd(&["GET", "e"]), Frame::Null, "the script has not run");
    // A transaction queues its write before the pause... its EXEC is held.
    let mut tx = server.conn();
    let tx_id = id_of(&mut tx);
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), Frame::ok());
    assert_eq!(writer.read_frame(), Some(Frame::ok()), "released by UNPAUSE");
    assert_eq!(scripter.read_frame(), Some(Frame::Integer(1)));
    assert_eq!(publisher.read_frame(), Some(Frame::Integer(0)));
    assert_eq!(tx.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(tx.cmd(&["INCR", "n"]), Frame::simple("QUEUED"));
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]), Frame::ok());
    tx.send_raw(&Conn::encode(&[b"EXEC"]));
    common::wait_until("the EXEC to be held", 10, || shows_command(&mut admin, tx_id, "exec"));
    assert_eq!(reader.cmd(&["GET", "n"]), Frame::Null);
    // A read-only transaction goes on.
    assert_eq!(reader.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(reader.cmd(&["GET", "k"]), Frame::simple("QUEUED"));
    assert_eq!(reader.cmd(&["EXEC"]), Frame::Array(vec![Frame::bulk("v")]));
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), Frame::ok());
    assert_eq!(tx.read_frame(), Some(Frame::Array(vec![Frame::Integer(1)])));
}

#[test]
fn an_all_pause_holds_every_command_until_its_deadline() {
    let server = Server::raftis(&[]);
    let (mut admin, mut other) = (server.conn(), server.conn());
    let started = std::time::Instant::now();
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "400"]), Frame::ok());
    assert_eq!(other.cmd(&["PING"]), Frame::simple("PONG"));
    assert!(started.elapsed() >= std::time::Duration::from_millis(380), "PING answered during the pause");
    // An earlier deadline does not shorten a pause; the stricter mode wins.
    let started = std::time::Instant::now();
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "300", "ALL"]), Frame::ok());
    assert_eq!(other.cmd(&["CLIENT", "PAUSE", "10", "WRITE"]), Frame::ok(), "held, then run after the pause");
    assert!(started.elapsed() >= std::time::Duration::from_millis(280));
    // Bad input: Redis's errors, nothing paused.
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "-1"]), Frame::error("ERR timeout is negative"));
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "x", "y"]), Frame::error("ERR CLIENT PAUSE mode must be WRITE or ALL"));
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "9223372036854775807", "WRITE"]), Frame::ok());
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), Frame::ok(), "a huge timeout is ended by UNPAUSE");
    assert_eq!(other.cmd(&["SET", "k", "v"]), Frame::ok());
}

/// The `field:value` lines of INFO `section`, without the title.
fn info_lines(c: &mut Conn, section: &str) -> Vec<String> {
    text(&c.cmd(&["INFO", section]))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(String::from)
        .collect()
}

/// `cmdstat_<name>`'s calls, rejected_calls and failed_calls.
fn cmdstat(c: &mut Conn, name: &str) -> Option<(u64, u64, u64)> {
    let line = info_lines(c, "commandstats").into_iter().find(|l| l.starts_with(&format!("cmdstat_{name}:")))?;
    let field =
        |f: &str| line.split([':', ',']).find_map(|kv| kv.strip_prefix(&format!("{f}="))).unwrap().parse().unwrap();
    Some((field("calls"), field("rejected_calls"), field("failed_calls")))
}

#[test]
fn info_counts_calls_refusals_failures_and_error_replies_as_redis() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    c.cmd(&["SET", "s", "v"]);
    // Pipelined writes: the second fails (WRONGTYPE) once its batch is applied.
    let mut buf = Conn::encode(&[b"RPUSH", b"l", b"x"]);
    buf.extend(Conn::encode(&[b"RPUSH", b"s", b"x"]));
    buf.extend(Conn::encode(&[b"GET"]));
    c.send_raw(&buf);
    for _ in 0..3 {
        c.read_frame().expect("reply");
    }
    c.cmd(&["NOSUCHCOMMAND"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", "s"]);
    c.cmd(&["EXEC"]);
    assert_eq!(cmdstat(&mut c, "rpush"), Some((2, 0, 1)));
    assert_eq!(cmdstat(&mut c, "get"), Some((0, 1, 0)), "an arity error is a refusal");
    assert_eq!(cmdstat(&mut c, "incr"), Some((1, 0, 1)), "a command failing inside EXEC");
    assert_eq!(cmdstat(&mut c, "exec"), Some((1, 0, 0)));
    assert_eq!(cmdstat(&mut c, "config|resetstat"), Some((1, 0, 0)));
    // A read counted earlier in the same pipeline shows in an INFO behind it.
    let mut buf = Conn::encode(&[b"GET", b"s"]);
    buf.extend(Conn::encode(&[b"INFO", b"commandstats"]));
    c.send_raw(&buf);
    c.read_frame().expect("GET's reply");
    let piped = text(&c.read_frame().expect("INFO's reply"));
    assert!(piped.contains("cmdstat_get:calls=1,"), "{piped}");
    let errors = info_lines(&mut c, "errorstats");
    assert_eq!(errors, ["errorstat_ERR:count=3", "errorstat_WRONGTYPE:count=1"]);
    let stats = info_lines(&mut c, "stats");
    assert!(stats.contains(&"total_error_replies:4".to_string()), "{stats:?}");
    // Sections: errorstats is a default one, commandstats and latencystats come with `all`.
    let default = text(&c.cmd(&["INFO"]));
    assert!(default.contains("# Errorstats") && !default.contains("# Commandstats"), "{default}");
    let all = text(&c.cmd(&["INFO", "all"]));
    assert!(all.contains("# Commandstats") && all.contains("# Latencystats"), "{all}");
    // Latencystats: the configured percentiles of each tracked command.
    assert_eq!(c.cmd(&["CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.9"]), Frame::ok());
    let latency = info_lines(&mut c, "latencystats");
    let set = latency.iter().find(|l| l.starts_with("latency_percentiles_usec_set:")).expect("set's line");
    let values: Vec<&str> = set.split([':', ',']).skip(1).collect();
    assert!(values.len() == 2 && values[0].starts_with("p50=") && values[1].starts_with("p99.9="), "{set}");
    // CONFIG RESETSTAT forgets all of it.
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    assert!(info_lines(&mut c, "errorstats").is_empty());
    assert_eq!(cmdstat(&mut c, "rpush"), None);
}

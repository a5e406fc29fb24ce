//! MIGRATE: moves keys to another server (a raftis node or a redis-server) the way Redis 7.0
//! does: DUMP here, `RESTORE` there over a RESP connection, then delete here unless COPY.
//! The network part lives here in the server layer; what touches the keyspace is two commands
//! of `cmd::keys::serialize` (`raftis.migrate-dump`, a linearizable read that also returns each
//! key's version, and `raftis.migrated`, a write through the log that deletes a key only if
//! its version is still the dumped one, so a write made meanwhile is never lost).

use super::engine::Engine;
use crate::cmd::args::{self, is};
use crate::cmd::keys::{MIGRATE_DELETE, MIGRATE_DUMP};
use crate::cmd::lookup;
use crate::protocol::{parse_frame, Frame, Limits};
use crate::raft::node::ReadPoint;
use crate::raft::Control;
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT_ERROR: &str = "IOERR error or timeout connecting to the client";
const WRITE_ERROR: &str = "IOERR error or timeout writing to target instance";
const READ_ERROR: &str = "IOERR error or timeout reading to target instance";

/// A parsed MIGRATE.
struct Request {
    host: String,
    port: u16,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// `(user, password)`: AUTH (no user) or AUTH2.
    auth: Option<(Option<Bytes>, Bytes)>,
    keys: Vec<Bytes>,
}

/// `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key ...]`, parsed with Redis's checks in Redis's order.
fn parse(argv: &[Bytes]) -> Result<Request, Frame> {
    let mut r = Request {
        host: String::from_utf8_lossy(&argv[1]).into_owned(),
        port: 0,
        db: 0,
        timeout: Duration::ZERO,
        copy: false,
        replace: false,
        auth: None,
        keys: vec![argv[3].clone()],
    };
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - j - 1;
        if is(&argv[j], "copy") {
            r.copy = true;
        } else if is(&argv[j], "replace") {
            r.replace = true;
        } else if is(&argv[j], "auth") && more >= 1 {
            r.auth = Some((None, argv[j + 1].clone()));
            j += 1;
        } else if is(&argv[j], "auth2") && more >= 2 {
            r.auth = Some((Some(argv[j + 1].clone()), argv[j + 2].clone()));
            j += 2;
        } else if is(&argv[j], "keys") {
            if !argv[3].is_empty() {
                return Err(Frame::error(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            r.keys = argv[j + 1..].to_vec();
            break;
        } else {
            return Err(args::syntax());
        }
        j += 1;
    }
    let timeout = args::int(&argv[5])?;
    r.db = args::int(&argv[4])?;
    r.timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    // Redis reads the port as a C int and connects to whatever it names; a port that is not
    // one cannot be connected to.
    r.port = std::str::from_utf8(&argv[2]).ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    Ok(r)
}

/// One key to move: its payload, remaining TTL (0: none) and dumped version.
struct Dumped {
    key: Bytes,
    payload: Bytes,
    ttl_ms: u64,
    version: u64,
}

/// Runs MIGRATE for a client on database `db` of `group`, at time `now`.
/// A node in cluster mode sends RESTORE-ASKING, as Redis does (the target may be importing
/// the keys' slot, `CLUSTER SETSLOT ... IMPORTING`), and holds the keys in its group while it
/// moves them (`Control::Hold`: writes to them get `-TRYAGAIN` until `Control::Release` or
/// the hold's deadline), so that, as in Redis, no write can slip between the copy and the
/// delete: a key written there would stay here with its new value while the target keeps the
/// old one, and one deleted there would come back from the target.
pub async fn run(
    engine: &Engine,
    group: u64,
    db: usize,
    now: u64,
    argv: &[Bytes],
    point: &mut ReadPoint,
    cluster: bool,
) -> Frame {
    let req = match parse(argv) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let replica = engine.group(group);
    let hold = cluster && group != 0 && !req.copy;
    if hold {
        let until_ms = now.saturating_add(2 * req.timeout.as_millis() as u64 + 1000);
        match replica.propose_control(Control::Hold { keys: req.keys.clone(), until_ms }).await {
            Ok(Frame::Error(e)) => return Frame::Error(e),
            Ok(_) => {}
            Err(e) => return Frame::error(format!("TRYAGAIN the keys could not be held for MIGRATE: {e}")),
        }
    }
    let reply = move_keys(engine, group, db, now, &req, point, cluster).await;
    if hold {
        // Best effort: a hold not released ends at its deadline.
        let _ = replica.propose_control(Control::Release { keys: req.keys.clone() }).await;
    }
    reply
}

/// Dumps the keys here, restores them there, deletes here what the target took (unless COPY).
async fn move_keys(
    engine: &Engine,
    group: u64,
    db: usize,
    now: u64,
    req: &Request,
    point: &mut ReadPoint,
    cluster: bool,
) -> Frame {
    let dumped = match dump_keys(engine, group, db, now, &req.keys, point).await {
        Ok(d) => d,
        Err(e) => return e,
    };
    if dumped.is_empty() {
        return Frame::simple("NOKEY");
    }
    let moved = match transfer(req, &dumped, cluster).await {
        Ok(moved) => moved,
        Err(e) => return e,
    };
    if !req.copy && moved.iter().any(|m| m.is_ok()) {
        let mut del = vec![Bytes::from_static(MIGRATE_DELETE.as_bytes())];
        for (d, _) in dumped.iter().zip(&moved).filter(|(_, m)| m.is_ok()) {
            del.push(d.key.clone());
            del.push(Bytes::from(d.version.to_string()));
        }
        let mut replies = engine.write_many_to(group, db, now, vec![del]).await;
        if let Some(e @ Frame::Error(_)) = replies.next() {
            return e;
        }
    }
    match moved.into_iter().find_map(Result::err) {
        Some(e) => Frame::error(format!("ERR Target instance replied with error: {e}")),
        None => Frame::ok(),
    }
}

/// The live keys among `keys` with their payloads (a linearizable read on `group`).
async fn dump_keys(
    engine: &Engine,
    group: u64,
    db: usize,
    now: u64,
    keys: &[Bytes],
    point: &mut ReadPoint,
) -> Result<Vec<Dumped>, Frame> {
    let Some(spec) = lookup(MIGRATE_DUMP.as_bytes()) else { return Err(Frame::error("ERR no dump command")) };
    let crate::cmd::Kind::Read(f) = spec.kind else { return Err(Frame::error("ERR no dump command")) };
    let mut read = vec![Bytes::from_static(MIGRATE_DUMP.as_bytes())];
    read.extend(keys.iter().cloned());
    let rows = match engine.read_on(group, db, now, f, &read, false, point).await {
        Frame::Array(rows) => rows,
        other => return Err(other),
    };
    let mut out = Vec::new();
    for (key, row) in keys.iter().zip(rows) {
        let Frame::Array(fields) = row else { continue };
        let [Frame::Bulk(payload), Frame::Integer(expire_at), Frame::Integer(version)] = fields.as_slice() else {
            continue;
        };
        let ttl_ms = match *expire_at {
            -1 => 0,
            // A key due now is skipped, as Redis skips a key whose TTL has run out.
            t if t as u64 <= now => continue,
            t => t as u64 - now,
        };
        out.push(Dumped { key: key.clone(), payload: payload.clone(), ttl_ms, version: *version as u64 });
    }
    Ok(out)
}

/// Sends AUTH, SELECT and one RESTORE per key, then reads the replies: per key, `Ok` or
/// the target's error text. A failed AUTH or SELECT makes every key fail with its error.
async fn transfer(req: &Request, dumped: &[Dumped], cluster: bool) -> Result<Vec<Result<(), String>>, Frame> {
    let connect = TcpStream::connect((req.host.as_str(), req.port));
    let mut stream = match tokio::time::timeout(req.timeout, connect).await {
        Ok(Ok(s)) => s,
        _ => return Err(Frame::error(CONNECT_ERROR)),
    };
    let mut out = Vec::new();
    let mut setup = 0;
    if let Some((user, password)) = &req.auth {
        let mut auth = vec![Bytes::from_static(b"AUTH")];
        auth.extend(user.iter().cloned());
        auth.push(password.clone());
        push_command(&mut out, &auth);
        setup += 1;
    }
    push_command(&mut out, &[Bytes::from_static(b"SELECT"), Bytes::from(req.db.to_string())]);
    setup += 1;
    for d in dumped {
        let name: &'static [u8] = if cluster { b"RESTORE-ASKING" } else { b"RESTORE" };
        let mut restore =
            vec![Bytes::from_static(name), d.key.clone(), Bytes::from(d.ttl_ms.to_string()), d.payload.clone()];
        if req.replace {
            restore.push(Bytes::from_static(b"REPLACE"));
        }
        push_command(&mut out, &restore);
    }
    let write = async {
        stream.write_all(&out).await?;
        stream.flush().await
    };
    if !matches!(tokio::time::timeout(req.timeout, write).await, Ok(Ok(()))) {
        return Err(Frame::error(WRITE_ERROR));
    }
    let mut replies = Replies { buf: BytesMut::new(), timeout: req.timeout };
    let mut setup_error = None;
    for _ in 0..setup {
        if let Frame::Error(e) = replies.next(&mut stream).await? {
            setup_error.get_or_insert(String::from_utf8_lossy(&e).into_owned());
        }
    }
    let mut moved = Vec::with_capacity(dumped.len());
    for _ in dumped {
        let reply = replies.next(&mut stream).await?;
        moved.push(match (&setup_error, reply) {
            (Some(e), _) => Err(e.clone()),
            (None, Frame::Error(e)) => Err(String::from_utf8_lossy(&e).into_owned()),
            (None, _) => Ok(()),
        });
    }
    Ok(moved)
}

fn push_command(out: &mut Vec<u8>, args: &[Bytes]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The target's replies, read one at a time, each within the timeout.
struct Replies {
    buf: BytesMut,
    timeout: Duration,
}

impl Replies {
    async fn next(&mut self, stream: &mut TcpStream) -> Result<Frame, Frame> {
        loop {
            let bytes = Bytes::copy_from_slice(&self.buf);
            match parse_frame(&bytes, &Limits::default()) {
                Ok((frame, used)) => {
                    let _ = self.buf.split_to(used);
                    return Ok(frame);
                }
                Err(crate::protocol::ParseError::Incomplete) => {}
                Err(_) => return Err(Frame::error(READ_ERROR)),
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(self.timeout, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return Err(Frame::error(READ_ERROR)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn options_parse_as_redis_parses_them() {
        let r = parse(&argv("migrate h 7 k 3 0 COPY AUTH2 u p")).expect("valid");
        assert!(r.copy && !r.replace);
        assert_eq!(r.timeout, Duration::from_millis(1000));
        assert_eq!((r.db, r.port), (3, 7));
        assert_eq!(r.auth, Some((Some(Bytes::from_static(b"u")), Bytes::from_static(b"p"))));
        let mut keys = argv("migrate h 7 x 0 10 KEYS a b");
        keys[3] = Bytes::new();
        assert_eq!(parse(&keys).map(|r| r.keys.len()).ok(), Some(2));
        assert!(parse(&argv("migrate h 7 x 0 10 KEYS a")).is_err());
        assert_eq!(parse(&argv("migrate h 7 k 0 10 AUTH")).err(), Some(args::syntax()));
        assert_eq!(parse(&argv("migrate h 7 k 0 x")).err(), Some(Frame::error(args::NOT_INTEGER)));
    }
}

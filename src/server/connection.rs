//! One client connection: read, parse every complete command in the buffer, execute them in
//! order, and write all their replies with a single flush (pipelining).

use super::blocked::{self, BlockRequest, ConnectionIo, Waited};
use super::calls::{self, Pending};
use super::client::{Client, ClientHandle, ClientInfo};
use super::dispatch::{self, execute, BatchClock, Outcome};
use super::latency::StatsBatch;
use super::output::{self, PAUSE_AT};
use super::pipeline::{Out, PendingWrites, QueuedWrite};
use super::pubsub::{self, Mailbox};
use super::shared::{now_ms, Shared, Stats};
use crate::config::ClassLimit;
use crate::protocol::{encode, parse_command_into, CommandScan, Frame, Limits, ParseError};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::futures::Notified;
use tokio::time::{Instant, Sleep};

/// Serves one connection until the client leaves, is killed, idles out, or the node stops.
/// `rbuf` holds what the client sent before (while the node was loading) and is not answered.
pub async fn run(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, rbuf: BytesMut) {
    Stats::add(&shared.stats.connections_received, 1);
    let maxclients = {
        let c = shared.config();
        c.maxclients
    };
    let needs_auth = shared.acl().auth_required();
    if shared.clients().len() >= maxclients {
        Stats::add(&shared.stats.rejected_connections, 1);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        let _ = stream.flush().await;
        return;
    }
    let _ = stream.set_nodelay(true);
    let id = shared.next_client_id();
    let laddr = stream.local_addr().unwrap_or(peer);
    let handle = Arc::new(ClientHandle {
        info: std::sync::Mutex::new(new_info(id, peer, laddr)),
        kill: Default::default(),
        mailbox: Default::default(),
    });
    shared.clients().insert(id, handle.clone());
    let mut client = Client::new(id, !needs_auth);
    if let Err(e) = serve(&mut stream, rbuf, &mut client, &handle, &shared).await {
        tracing::debug!(client = id, error = %e, "connection closed with error");
    }
    pubsub::unsubscribe_all(&mut client, &shared);
    super::monitor::stop(&mut client, &shared);
    if client.tracking.is_some() {
        shared.tracking.disable(id);
    }
    shared.clients().remove(&id);
}

fn new_info(id: u64, addr: SocketAddr, laddr: SocketAddr) -> ClientInfo {
    let now = now_ms();
    ClientInfo {
        id,
        addr,
        laddr,
        name: Default::default(),
        db: 0,
        resp: Default::default(),
        created_ms: now,
        last_interaction_ms: now,
        last_cmd: "NULL".into(),
        multi: -1,
        watching: 0,
        readonly: false,
        no_evict: false,
        no_touch: false,
        blocked: false,
        subs: (0, 0, 0),
        monitor: false,
        tracking: None,
        tracking_broken: false,
        user: bytes::Bytes::from_static(b"default"),
    }
}

/// The connection's read buffer, holding `early` (what the client sent while the node was
/// loading). Made with its capacity, not grown to it: `BytesMut` remembers the capacity it was
/// made with and reallocates to it once parsed commands have been split off; a buffer grown
/// from empty would come back at 64 bytes per read (`read_buf`'s reserve), and pipelined
/// clients would be read a few commands per syscall (pipelined SET fell to 0.2 of Redis).
fn read_buffer(early: BytesMut) -> BytesMut {
    let mut rbuf = BytesMut::with_capacity(READ_BUFFER.max(early.len()));
    rbuf.extend_from_slice(&early);
    rbuf
}

/// The read buffer's capacity: what one read takes of a pipelining client.
const READ_BUFFER: usize = 16 * 1024;

async fn serve(
    stream: &mut TcpStream,
    early: BytesMut,
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
) -> std::io::Result<()> {
    let mut rbuf = read_buffer(early);
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let mut scratch = Scratch::default();
    let mut shutdown = shared.shutdown_signal();
    // These futures live as long as the connection: creating them per read would register
    // a timer and two waiters for every batch of commands.
    let shutdown = shutdown.wait();
    let kill = handle.kill.notified();
    let idle = tokio::time::sleep(IDLE_RECHECK);
    tokio::pin!(shutdown, kill, idle);
    let mut last_activity = Instant::now();
    loop {
        let (limits, query_limit, normal) = {
            let c = shared.config();
            let limits = Limits { max_bulk_len: c.proto_max_bulk_len, ..Limits::default() };
            (limits, c.client_query_buffer_limit, c.output_limits.normal)
        };
        let ended = run_buffered(&mut rbuf, &mut wbuf, &mut scratch, &limits, client, handle, shared).await;
        // Before any reply goes out (see `StatsBatch`).
        shared.latency.merge(&mut scratch.stats);
        client.publish_info(handle);
        let mailbox = client.pubsub.as_ref().map(|s| s.mailbox.clone());
        if let Some(m) = &mailbox {
            // Other connections may redirect their invalidations here.
            handle.mailbox.get_or_init(|| m.clone());
        }
        // Subscribers are bounded by their own class, through their mailbox.
        let normal = mailbox.is_none().then_some(normal);
        if normal.is_some_and(|l| output::over_hard_limit(wbuf.len(), &l)) {
            output::log_closed(Some(client.id), wbuf.len());
            return Ok(());
        }
        let drained = std::mem::take(&mut scratch.drained) + drain_mail(client, &mut wbuf);
        if !send(stream, &mut wbuf, shared, kill.as_mut(), mailbox.as_deref(), drained, normal).await? {
            return Ok(());
        }
        let req = match ended {
            Ended::ProtocolError => return Ok(()),
            Ended::Block(req) => Some(req),
            Ended::Done => None,
            // The replies that made it pause are out: run the rest of the pipeline.
            Ended::Paused if shared.is_shutting_down() => return Ok(()),
            Ended::Paused => continue,
        };
        if let Some(req) = req {
            // Replies before the blocking command are out; the rest of the pipeline waits.
            let io = ConnectionIo { stream, rbuf: &mut rbuf, kill: kill.as_mut(), shutdown: shutdown.as_mut() };
            let waited = blocked::run(shared, handle, req, io).await;
            if let Waited::Reply(reply) = &waited {
                calls::error_replied(shared, reply, true, &[]);
                if let Some(call) = client.blocked_call.take() {
                    call.finish(shared, handle, &mut scratch.stats, reply.is_error());
                    shared.latency.merge(&mut scratch.stats);
                }
            }
            match waited {
                Waited::Closed => return Ok(()),
                Waited::Reply(reply) => {
                    if client.take_reply_allowed() {
                        encode(&reply, client.resp, &mut wbuf);
                    }
                }
            }
            last_activity = Instant::now();
            continue;
        }
        if client.close_after_reply || shared.is_shutting_down() {
            return Ok(());
        }
        if mailbox.as_ref().is_some_and(|m| m.has_queued()) {
            continue;
        }
        let n = tokio::select! {
            biased;
            n = stream.read_buf(&mut rbuf) => n?,
            _ = &mut kill => return Ok(()),
            _ = &mut shutdown => return Ok(()),
            // A message for this subscriber: the loop writes it out.
            _ = wait_mail(mailbox.as_deref()) => continue,
            _ = &mut idle => {
                if idle_expired(shared, last_activity, idle.as_mut()) {
                    return Ok(());
                }
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
        if rbuf.len() as u64 > query_limit {
            // As Redis: no reply, the client is closed and the node says why.
            tracing::warn!(
                client = client.id,
                qbuf = rbuf.len(),
                "closing client that reached max query buffer length"
            );
            return Ok(());
        }
        last_activity = Instant::now();
        Stats::add(&shared.stats.net_input_bytes, n as u64);
    }
}

/// Sends what `wbuf` holds, of which `drained` bytes came from `mailbox`. False when the
/// connection must close instead: the client was killed, its unsent replies stayed over the
/// soft limit of `normal` too long, or its mailbox overflowed (a subscriber that does not
/// read blocks the write, and its messages pile up meanwhile).
async fn send(
    stream: &mut TcpStream,
    wbuf: &mut BytesMut,
    shared: &Shared,
    mut kill: Pin<&mut Notified<'_>>,
    mailbox: Option<&Mailbox>,
    drained: usize,
    normal: Option<ClassLimit>,
) -> std::io::Result<bool> {
    let unsent = wbuf.len();
    let write = output::write_out(stream, wbuf, shared, normal);
    tokio::pin!(write);
    loop {
        tokio::select! {
            biased;
            _ = &mut kill => return Ok(false),
            written = &mut write => {
                if !written? {
                    output::log_closed(None, unsent);
                    return Ok(false);
                }
                break;
            }
            _ = wait_mail(mailbox) => {
                if mailbox.is_some_and(|m| m.overflowed()) {
                    return Ok(false);
                }
            }
        }
    }
    let Some(mailbox) = mailbox else { return Ok(true) };
    mailbox.sent(drained);
    Ok(!mailbox.overflowed())
}

/// Resolves when `mailbox` gets a message (never without one).
async fn wait_mail(mailbox: Option<&Mailbox>) {
    match mailbox {
        Some(m) => m.wait().await,
        None => std::future::pending().await,
    }
}

/// How a run over the buffered commands ended.
enum Ended {
    /// Every complete command ran (or the connection is to close after its reply).
    Done,
    /// A protocol error: its reply is queued, the connection must close.
    ProtocolError,
    /// A blocking command must run before the commands after it.
    Block(BlockRequest),
    /// Replies worth [`PAUSE_AT`] bytes wait to be sent: send them before running the
    /// commands still buffered.
    Paused,
}

/// How often an idle connection re-reads the `timeout` setting, so CONFIG SET timeout also
/// applies to connections that are already idle (as Redis's clients cron does).
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// Called when the idle timer fires: true once the client has been idle longer than the
/// `timeout` setting; otherwise re-arms the timer for the deadline or the next recheck,
/// whichever comes first.
fn idle_expired(shared: &Shared, since: Instant, timer: Pin<&mut Sleep>) -> bool {
    let secs = shared.config().timeout_secs;
    let now = Instant::now();
    let mut next = now + IDLE_RECHECK;
    if secs != 0 {
        let deadline = since + Duration::from_secs(secs);
        if now >= deadline {
            return true;
        }
        next = next.min(deadline);
    }
    timer.reset(next);
    false
}

/// Proposes the pending writes (see [`PendingWrites::flush`]) and logs the slow ones.
async fn flush(pending: &mut PendingWrites, stats: &mut StatsBatch, c: Ctx<'_>, wbuf: &mut BytesMut) {
    if pending.is_empty() {
        return;
    }
    let Ctx { shared, client, handle } = c;
    let noloop = client.tracking.as_ref().is_some_and(|m| m.noloop).then_some((&*shared.tracking, client.id));
    let out = Out { resp: client.resp, buf: wbuf, latency: &shared.latency };
    pending.flush(&shared.engine, out, noloop).await;
    for (call, failed) in pending.take_answered() {
        call.finish(shared, handle, stats, failed);
    }
}

/// What [`flush`] needs of the connection.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    shared: &'a Shared,
    client: &'a Client,
    handle: &'a ClientHandle,
}

/// Buffers reused from one command to the next.
#[derive(Default)]
struct Scratch {
    argv: Vec<Bytes>,
    scan: CommandScan,
    pending: PendingWrites,
    /// The statistics of the commands run since the replies last went out.
    stats: StatsBatch,
    /// Bytes of Pub/Sub messages encoded into the output buffer and not written yet.
    drained: usize,
}

/// Moves the messages waiting for a subscriber into its output buffer (see [`Mailbox`]).
fn drain_mail(client: &Client, wbuf: &mut BytesMut) -> usize {
    client.pubsub.as_ref().map_or(0, |s| s.mailbox.drain_into(client.resp, wbuf))
}

/// Executes every complete command in `rbuf`, encoding replies into `wbuf`, up to a protocol
/// error (its reply is queued; the connection must close) or a blocking command (returned, to
/// run before the rest). Consecutive writes are proposed together (see [`PendingWrites`]);
/// anything else first flushes them.
async fn run_buffered(
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
    scratch: &mut Scratch,
    limits: &Limits,
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
) -> Ended {
    let mut clock = BatchClock::default();
    // Empty between calls (flushed before returning); kept for its buffers' capacity.
    let (pending, stats) = (&mut scratch.pending, &mut scratch.stats);
    // When the last timed command ended: the next one's start (one clock reading per command).
    let mut mark: Option<Instant> = None;
    loop {
        if wbuf.len() >= PAUSE_AT && !rbuf.is_empty() {
            flush(pending, stats, ctx(shared, client, handle), wbuf).await;
            return Ended::Paused;
        }
        match parse_command_into(rbuf, limits, &mut scratch.scan, &mut scratch.argv) {
            Ok(true) => {}
            Ok(false) | Err(ParseError::Incomplete) => break,
            Err(ParseError::Invalid(msg)) => {
                flush(pending, stats, ctx(shared, client, handle), wbuf).await;
                let reply = Frame::error(format!("ERR Protocol error: {msg}"));
                calls::error_replied(shared, &reply, true, &[]);
                encode(&reply, client.resp, wbuf);
                rbuf.clear();
                return Ended::ProtocolError;
            }
        }
        if scratch.argv.is_empty() {
            continue;
        }
        let joins = dispatch::defers(client, shared, &scratch.argv) && pending.accepts(client.db);
        if !joins {
            flush(pending, stats, ctx(shared, client, handle), wbuf).await;
            mark = None;
        }
        if !stats.is_empty() && reads_stats(&scratch.argv[0]) {
            shared.latency.merge(stats);
        }
        let started = mark.take().unwrap_or_else(Instant::now);
        let outcome = execute(client, handle, shared, &mut scratch.argv, &mut clock).await;
        let called = client.called.take();
        let mut failed = false;
        match outcome {
            Outcome::Write { argv, now_ms, group } => {
                let send = client.take_reply_allowed();
                if !pending.accepts_group(group) {
                    flush(pending, stats, ctx(shared, client, handle), wbuf).await;
                }
                let call = called.map(|spec| Pending::new(shared, started, spec, &argv));
                pending.push_write(QueuedWrite { db: client.db, group, now_ms, argv, send, call });
            }
            Outcome::Reply(reply) => {
                calls::error_replied(shared, &reply, called.is_some(), &scratch.argv);
                failed = reply.is_error();
                let send = client.take_reply_allowed();
                if pending.is_empty() {
                    if send {
                        encode(&reply, client.resp, wbuf);
                    }
                } else {
                    pending.push_ready(reply, send);
                }
            }
            // Not deferred, so nothing is pending.
            Outcome::Block(req) => {
                if let Some(spec) = called {
                    client.blocked_call = Some(Pending::new(shared, started, spec, &req.argv));
                }
                return Ended::Block(req);
            }
            Outcome::Frames(frames) => {
                // Messages already there go first (a PUBLISH to one's own channel: the
                // message, then the count, as Redis writes them).
                scratch.drained += drain_mail(client, wbuf);
                if client.take_reply_allowed() {
                    frames.iter().for_each(|f| encode(f, client.resp, wbuf));
                }
            }
            Outcome::Pushes(frames) => {
                scratch.drained += drain_mail(client, wbuf);
                // Consumes a CLIENT REPLY SKIP, but pushes go out regardless.
                let _ = client.take_reply_allowed();
                frames.iter().for_each(|f| encode(f, client.resp, wbuf));
            }
        }
        if let Some(spec) = called.filter(|_| !scratch.argv.is_empty()) {
            // Run and answered (writes and blocking commands are logged once answered).
            let now = Instant::now();
            let key = calls::stat_key(spec, &scratch.argv);
            let call = calls::Call { spec, argv: &scratch.argv, key, elapsed: now - started, failed };
            calls::after_call(shared, handle, call, stats);
            mark = Some(now);
        }
        if pending.is_empty() {
            scratch.drained += drain_mail(client, wbuf);
        }
        if client.close_after_reply {
            break;
        }
    }
    flush(pending, stats, ctx(shared, client, handle), wbuf).await;
    Ended::Done
}

fn ctx<'a>(shared: &'a Shared, client: &'a Client, handle: &'a ClientHandle) -> Ctx<'a> {
    Ctx { shared, client, handle }
}

/// Whether `name` may read the command statistics (LATENCY HISTOGRAM, INFO commandstats or
/// latencystats, CONFIG RESETSTAT, or any of them queued in MULTI): the commands before it in
/// the pipeline are merged first.
fn reads_stats(name: &[u8]) -> bool {
    ["latency", "info", "config", "exec"].iter().any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once the parsed commands are split off (and still referenced, as their arguments are),
    /// the next read must get a full buffer again, not `read_buf`'s 64 bytes.
    #[test]
    fn the_read_buffer_comes_back_at_full_size_after_commands_are_split_off() {
        for early in [BytesMut::new(), BytesMut::from(&b"*1\r\n$4\r\nPING\r\n"[..])] {
            let mut rbuf = read_buffer(early);
            rbuf.resize(rbuf.capacity(), b'x');
            let parsed = rbuf.split_to(rbuf.len()).freeze();
            rbuf.reserve(64);
            assert!(rbuf.capacity() >= READ_BUFFER, "capacity {} after a split", rbuf.capacity());
            drop(parsed);
        }
        // What the buffer grown from empty did.
        let mut grown = BytesMut::new();
        grown.reserve(READ_BUFFER);
        grown.resize(grown.capacity(), b'x');
        let parsed = grown.split_to(grown.len()).freeze();
        grown.reserve(64);
        assert!(grown.capacity() < READ_BUFFER);
        drop(parsed);
    }
}

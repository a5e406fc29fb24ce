//! One client connection: read, parse every complete command in the buffer, execute them in
//! order, and write all their replies with a single flush (pipelining).

use super::client::{Client, ClientHandle, ClientInfo};
use super::dispatch::execute;
use super::shared::{now_ms, Shared, Stats};
use crate::protocol::{encode, parse_command, Frame, Limits, ParseError};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Serves one connection until the client leaves, is killed, idles out, or the node stops.
pub async fn run(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    Stats::add(&shared.stats.connections_received, 1);
    let (maxclients, needs_auth) = {
        let c = shared.config();
        (c.maxclients, !c.requirepass.is_empty())
    };
    if shared.clients().len() >= maxclients {
        Stats::add(&shared.stats.rejected_connections, 1);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        let _ = stream.flush().await;
        return;
    }
    let _ = stream.set_nodelay(true);
    let id = shared.next_client_id();
    let laddr = stream.local_addr().unwrap_or(peer);
    let handle =
        Arc::new(ClientHandle { info: std::sync::Mutex::new(new_info(id, peer, laddr)), kill: Default::default() });
    shared.clients().insert(id, handle.clone());
    let mut client = Client::new(id, !needs_auth);
    if let Err(e) = serve(&mut stream, &mut client, &handle, &shared).await {
        tracing::debug!(client = id, error = %e, "connection closed with error");
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
    }
}

async fn serve(
    stream: &mut TcpStream,
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
) -> std::io::Result<()> {
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let mut shutdown = shared.shutdown_signal();
    let mut last_activity = Instant::now();
    loop {
        let limits = Limits { max_bulk_len: shared.config().proto_max_bulk_len, ..Limits::default() };
        let protocol_error = run_buffered(&mut rbuf, &mut wbuf, &limits, client, handle, shared).await;
        if !wbuf.is_empty() {
            Stats::add(&shared.stats.net_output_bytes, wbuf.len() as u64);
            stream.write_all(&wbuf).await?;
            stream.flush().await?;
            wbuf.clear();
        }
        if protocol_error || client.close_after_reply || shared.is_shutting_down() {
            return Ok(());
        }
        let n = tokio::select! {
            biased;
            n = stream.read_buf(&mut rbuf) => n?,
            _ = handle.kill.notified() => return Ok(()),
            _ = shutdown.changed() => return Ok(()),
            _ = idle_expired(shared, last_activity) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        last_activity = Instant::now();
        Stats::add(&shared.stats.net_input_bytes, n as u64);
    }
}

/// Resolves once the client has been idle longer than the `timeout` setting. The setting
/// is read again at least every second, so CONFIG SET timeout also applies to connections
/// that are already idle (as Redis's clients cron does).
async fn idle_expired(shared: &Shared, since: Instant) {
    const RECHECK: Duration = Duration::from_secs(1);
    loop {
        let secs = shared.config().timeout_secs;
        let wait = if secs == 0 {
            RECHECK
        } else {
            let deadline = since + Duration::from_secs(secs);
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            (deadline - now).min(RECHECK)
        };
        tokio::time::sleep(wait).await;
    }
}

/// Executes every complete command in `rbuf`, encoding replies into `wbuf`. Returns true
/// after a protocol error (its reply is queued; the connection must close).
async fn run_buffered(
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
    limits: &Limits,
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
) -> bool {
    loop {
        let argv = match parse_command(rbuf, limits) {
            Ok(Some(argv)) => argv,
            Ok(None) => return false,
            Err(ParseError::Invalid(msg)) => {
                encode(&Frame::error(format!("ERR Protocol error: {msg}")), client.resp, wbuf);
                rbuf.clear();
                return true;
            }
            Err(ParseError::Incomplete) => return false,
        };
        if argv.is_empty() {
            continue;
        }
        let reply = execute(client, handle, shared, argv).await;
        if client.take_reply_allowed() {
            encode(&reply, client.resp, wbuf);
        }
        if client.close_after_reply {
            return false;
        }
    }
}

//! Executing one command for a client: lookup, arity, AUTH, MULTI queueing, then the read,
//! write or session path. A write leaves here as [`Outcome::Write`]: the connection proposes
//! consecutive writes of a pipeline as one [`WriteBatch`] (see `pipeline`); EXEC proposes its
//! transaction as one batch itself.

use super::blocked::{self, BlockRequest};
use super::client::{Client, ClientHandle};
use super::evict;
use super::shared::{now_ms, Shared, Stats};
use super::{acl, fanout, monitor, pubsub};
use crate::cmd::{self, args, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::raft::node::ReadPoint;
use crate::store::{WatchedKey, WriteBatch};
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::Arc;

/// Commands that run at once even inside MULTI.
const TX_CONTROL: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];
/// Commands allowed before AUTH when a password is set.
const NO_AUTH_NEEDED: &[&str] = &["auth", "hello", "quit", "reset"];

/// Commands whose first argument is a subcommand (CLIENT LIST shows `cmd=client|list`).
const CONTAINERS: &[&str] = &[
    "client", "config", "command", "object", "memory", "cluster", "script", "function", "pubsub", "slowlog", "latency",
];

/// The name CLIENT LIST shows for the last command: `name` or `container|sub`.
fn full_name(spec: &CommandSpec, argv: &[Bytes]) -> Cow<'static, str> {
    match argv.get(1) {
        Some(sub) if CONTAINERS.contains(&spec.name) => {
            Cow::Owned(format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase()))
        }
        _ => Cow::Borrowed(spec.name),
    }
}

/// The clock of one batch of pipelined commands. Consecutive reads share one reading (as
/// Redis caches the time per event-loop iteration), renewed every 64th use; any other command
/// reads the clock afresh (a write is stamped with that reading, so never with one cached
/// across reads that waited for a read barrier) and makes the next use read it again.
///
/// It also carries the batch's linearizable read point: consecutive reads of one batch (all
/// received before the first of them ran) share one read barrier; any other command resets it.
#[derive(Default)]
pub struct BatchClock {
    now: u64,
    uses_left: u32,
    pub read_point: ReadPoint,
}

impl BatchClock {
    pub fn now(&mut self) -> u64 {
        if self.uses_left == 0 {
            self.now = now_ms();
            self.uses_left = 64;
        }
        self.uses_left -= 1;
        self.now
    }

    pub fn invalidate(&mut self) {
        self.uses_left = 0;
        self.read_point.reset();
    }

    /// The time a command runs at: a read's may be the batch's cached reading; anything
    /// else's is read afresh, and ends the run of reads (see [`BatchClock`]).
    pub fn now_for(&mut self, is_read: bool) -> u64 {
        if is_read {
            return self.now();
        }
        self.invalidate();
        now_ms()
    }
}

/// The command named `name`, unless it is unknown or internal; remembers it for the next call.
fn lookup(client: &mut Client, name: &[u8]) -> Option<&'static CommandSpec> {
    if let Some(spec) = client.last_spec.filter(|s| name.eq_ignore_ascii_case(s.name.as_bytes())) {
        return Some(spec);
    }
    let spec = cmd::lookup(name).filter(|c| !c.has_flag("internal"))?;
    client.last_spec = Some(spec);
    Some(spec)
}

/// What running a command gave.
pub enum Outcome {
    /// The reply, ready to send.
    Reply(Frame),
    /// A keyspace write that passed every check: the caller proposes it (together with the
    /// writes next to it in the pipeline) and its reply comes from the engine. `now_ms` is the
    /// time the command ran at (read afresh, see [`BatchClock::now_for`]): the write is stamped
    /// with it.
    Write { argv: Vec<Bytes>, now_ms: u64, group: u64 },
    /// A blocking command that passed its checks outside MULTI: the connection runs it (see
    /// `super::blocked`) before anything after it in the pipeline.
    Block(BlockRequest),
    /// Several frames to send in order (MONITOR's: none when already monitoring), ready now.
    Frames(Vec<Frame>),
    /// A Pub/Sub command's confirmations, ready now: sent even under CLIENT REPLY OFF, as
    /// Redis sends them (they are pushes in RESP3).
    Pushes(Vec<Frame>),
}

/// Whether `argv` would come back from [`execute`] as an [`Outcome::Write`] (or as a reply
/// that depends on no data: an arity or AUTH error), so it may join the pending writes of a
/// pipeline without flushing them first.
pub fn defers(client: &mut Client, shared: &Shared, argv: &[Bytes]) -> bool {
    client.multi.is_none()
        && lookup(client, &argv[0]).is_some_and(|spec| {
            matches!(spec.kind, Kind::Write(_)) && !spec.has_flag("blocking") && !fanout::fans_out(shared, spec, argv)
        })
}

/// Runs `argv` for `client`. `argv` is left empty when the command keeps it (writes, queued
/// commands); otherwise the caller may reuse it. Reads run behind the batch's read point.
pub async fn execute(
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
    argv: &mut Vec<Bytes>,
    clock: &mut BatchClock,
) -> Outcome {
    let keeps_caching = argv[0].eq_ignore_ascii_case(b"client");
    let is_asking = argv[0].eq_ignore_ascii_case(b"asking");
    client.routed_asking = false;
    let outcome = execute_command(client, handle, shared, argv, clock).await;
    // ASKING holds for the next command only, as Redis's `resetClient` clears it.
    if !is_asking && client.multi.is_none() {
        client.asking = false;
    }
    // CLIENT CACHING holds for the next command only (a transaction: to its EXEC), as
    // Redis's `resetClient` clears it after any command but CLIENT.
    if !keeps_caching && client.multi.is_none() {
        client.caching = false;
    }
    outcome
}

async fn execute_command(
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
    argv: &mut Vec<Bytes>,
    clock: &mut BatchClock,
) -> Outcome {
    Stats::add(&shared.stats.commands_processed, 1);
    client.called = None;
    let Some(spec) = lookup(client, &argv[0]) else {
        client.multi_failed |= client.multi.is_some();
        return Outcome::Reply(cmd::unknown_command(argv));
    };
    let is_read = matches!(spec.kind, Kind::Read(_));
    let now = clock.now_for(is_read);
    client.pending_info = Some((full_name(spec, argv), now));
    if !is_read {
        // Reads only note the last command; the connection publishes it after the batch.
        // Anything else may look at client info (CLIENT LIST) or wait long: publish now.
        client.publish_info(handle);
    }
    if !spec.arity_ok(argv.len()) {
        let msg = format!("wrong number of arguments for '{}' command", spec.name);
        return Outcome::Reply(reject(client, handle, spec, msg));
    }
    if !client.authenticated && !NO_AUTH_NEEDED.contains(&spec.name) {
        return Outcome::Reply(reject(client, handle, spec, "NOAUTH Authentication required.".into()));
    }
    if let Some(msg) = acl::refusal(client, handle, shared, spec, argv, client.multi.is_some()) {
        return Outcome::Reply(reject(client, handle, spec, msg));
    }
    if pubsub::in_subscribed_mode(client) {
        if let Some(msg) = pubsub::refuse_in_subscribed_mode(client, argv, spec.name, &full_name(spec, argv)) {
            return Outcome::Reply(reject(client, handle, spec, msg));
        }
    }
    if client.monitor && !matches!(spec.kind, Kind::Session) {
        // A monitor is a replica to Redis: it may not touch the keyspace.
        return Outcome::Reply(reject(client, handle, spec, "Replica can't interact with the keyspace".into()));
    }
    if let Some(reply) = while_script_runs(client, handle, shared, spec, argv) {
        return Outcome::Reply(reply);
    }
    // Past maxmemory, as Redis: refused (or room made by eviction) before running or queueing.
    if spec.has_flag("denyoom") && !evict::admit_write(shared).await {
        return Outcome::Reply(reject(client, handle, spec, evict::OOM.into()));
    }
    let group = match route(client, shared, spec, argv).await {
        Ok(group) => group,
        Err(reply) => {
            client.multi_failed |= client.multi.is_some();
            return Outcome::Reply(reply);
        }
    };
    if client.routed_asking && client.multi.is_none() {
        // Sent to a group importing the slot because of ASKING: the group's state machine
        // lets it touch the slot only wrapped as such (`cmd::cluster::asking`).
        match spec.kind {
            Kind::Write(_) if !spec.has_flag("blocking") && spec.name != "restore-asking" => {
                let argv = cmd::cluster::asking::wrap(std::mem::take(argv), false);
                return Outcome::Write { argv, now_ms: now, group };
            }
            Kind::Read(_) => {
                let mut wrapped = cmd::cluster::asking::wrap(std::mem::take(argv), true);
                let spec = cmd::cluster::asking::read_spec();
                return Outcome::Reply(
                    run(client, handle, shared, spec, &mut wrapped, now, &mut clock.read_point, group).await,
                );
            }
            _ => {}
        }
    }
    if matches!(spec.name, "sort" | "sort_ro") && shared.config().cluster_enabled {
        // BY and GET patterns name keys of any slot: refused in cluster mode, as Redis does.
        if let Some(refusal) = cmd::sort::refusal_in_cluster(argv) {
            client.multi_failed |= client.multi.is_some();
            return Outcome::Reply(refusal);
        }
    }
    if shared.pause.any() {
        // CLIENT PAUSE: held here, after every refusal and before queueing, as Redis does.
        let queued = client.multi.as_deref();
        shared.pause.wait(|| super::pause::holds_under_write_pause(spec, argv, queued)).await;
    }
    if let Some(queue) = client.multi.as_mut() {
        if spec.has_flag("no_multi") {
            client.multi_failed = true;
            return Outcome::Reply(Frame::error("ERR Command not allowed inside a transaction"));
        }
        if !TX_CONTROL.contains(&spec.name) {
            queue.push(std::mem::take(argv));
            let queued = queue.len() as i64;
            handle.update(|i| i.multi = queued);
            return Outcome::Reply(Frame::simple("QUEUED"));
        }
    }
    client.called = Some(spec);
    if client.tracking.is_some() {
        super::tracking::before_read(&shared.tracking, client, client.caching, spec, argv);
    }
    let shown_after = matches!(spec.name, "exec" | "select" | "reset");
    if !shown_after {
        monitor::feed(shared, handle, client.db, spec, argv);
    }
    if spec.name == "monitor" {
        return Outcome::Frames(monitor::start(client, handle, shared));
    }
    if let Some(frames) = pubsub::run(client, shared, spec.name, argv) {
        if let Some(subs) = &client.pubsub {
            let counts = subs.counts();
            handle.update(|i| i.subs = counts);
        }
        return Outcome::Pushes(frames);
    }
    if spec.has_flag("blocking") {
        if let Some(block) = cmd::blocking::spec(&argv[0]) {
            match (block.timeout)(argv) {
                Err(e) => return Outcome::Reply(e),
                Ok(Some(timeout_ms)) => {
                    let argv = std::mem::take(argv);
                    return Outcome::Block(BlockRequest { argv, db: client.db, timeout_ms, group });
                }
                // This form does not block (XREAD without BLOCK): an ordinary command.
                Ok(None) => {}
            }
        }
    }
    if client.multi.is_none() && fanout::fans_out(shared, spec, argv) {
        return Outcome::Reply(fanout::run(client, shared, spec, argv, now).await);
    }
    let limited_script = acl::is_script(spec) && shared.acl().user(&client.user).is_some_and(|u| !u.unrestricted);
    if let Kind::Write(_) = spec.kind {
        let mut argv = std::mem::take(argv);
        if limited_script {
            argv = cmd::acl::wrap(&client.user, argv, false);
        }
        return Outcome::Write { argv, now_ms: now, group };
    }
    if limited_script {
        let mut wrapped = cmd::acl::wrap(&client.user, std::mem::take(argv), true);
        let spec = cmd::acl::run_as_ro_spec();
        return Outcome::Reply(
            run(client, handle, shared, spec, &mut wrapped, now, &mut clock.read_point, group).await,
        );
    }
    let reply = run(client, handle, shared, spec, argv, now, &mut clock.read_point, group).await;
    if shown_after {
        // EXEC shows its commands first, SELECT the database it selected, and a monitor's
        // RESET is no longer shown to itself.
        monitor::feed(shared, handle, client.db, spec, argv);
    }
    Outcome::Reply(reply)
}

/// Multi-raft routing (see [`crate::cluster::Groups`]): the group `argv` runs on, or the reply
/// that sends the client elsewhere (`-MOVED`, `-CROSSSLOT`, `-CLUSTERDOWN`). Keys of a
/// transaction and of WATCH must share one slot. Keyless commands run on the lowest data
/// group this node leads. Outside a multi-raft cluster everything runs on group 0.
async fn route(client: &mut Client, shared: &Shared, spec: &CommandSpec, argv: &[Bytes]) -> Result<u64, Frame> {
    let Some(cluster) = &shared.cluster else { return Ok(0) };
    if matches!(spec.kind, Kind::Session) && !matches!(spec.name, "watch" | "migrate" | "memory") {
        return Ok(0);
    }
    let slot = crate::cluster::Groups::slot_of(spec, argv)?;
    let in_tx = client.multi.is_some() || !client.watched.is_empty() || spec.name == "watch";
    let slot = match (slot, client.tx_slot.filter(|_| in_tx)) {
        (Some(s), Some(t)) if s != t => return Err(Frame::error(crate::cluster::groups::CROSSSLOT)),
        (Some(s), _) => {
            if in_tx {
                client.tx_slot = Some(s);
            }
            s
        }
        (None, Some(t)) => t,
        (None, None) => return Ok(cluster.keyless_group()),
    };
    let stale_ok = client.readonly && matches!(spec.kind, Kind::Read(_));
    if (client.asking || spec.has_flag("asking")) && client.multi.is_none() {
        if let Some(routed) = cluster.route_asking(slot).await {
            client.routed_asking = routed.is_ok();
            return routed;
        }
    }
    cluster.route(slot, stale_ok).await
}

/// Commands Redis runs while a script is busy (`CMD_ALLOW_BUSY`); SCRIPT KILL and FUNCTION
/// KILL are answered before this list is looked at.
const ALLOWED_WHILE_BUSY: &[&str] =
    &["auth", "discard", "hello", "multi", "quit", "replconf", "reset", "shutdown", "unwatch", "watch"];

/// SCRIPT KILL / FUNCTION KILL, answered here from this node's running scripts (never through
/// the log, which a running write script holds), and Redis's `BUSY` refusal of other commands
/// once a killable (read-only) script on this node has run `busy-reply-threshold` ms. A write
/// script, which no KILL can stop (it runs on every replica), refuses nothing: commands wait
/// for its apply as for any slow write, without holding Raft up (docs/ARCHITECTURE.md).
fn while_script_runs(
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Shared,
    spec: &CommandSpec,
    argv: &[Bytes],
) -> Option<Frame> {
    if client.multi.is_none() {
        if let Some(is_eval) = cmd::scripting::kill_command(argv) {
            return Some(cmd::scripting::kill(shared.engine.running_script(false).as_deref(), is_eval));
        }
    }
    let run = shared.engine.running_script(true)?;
    if ALLOWED_WHILE_BUSY.contains(&spec.name) || run.started.elapsed() < busy_threshold(shared) {
        return None;
    }
    let Frame::Error(busy) = cmd::scripting::busy_error(&run) else { return None };
    Some(reject(client, handle, spec, String::from_utf8_lossy(&busy).into_owned()))
}

/// `busy-reply-threshold` (alias `lua-time-limit`), this node's setting.
fn busy_threshold(shared: &Shared) -> std::time::Duration {
    let ms = crate::config::reported::find(b"busy-reply-threshold")
        .and_then(|r| shared.config().reported.get(r).parse::<u64>().ok())
        .unwrap_or(5000);
    std::time::Duration::from_millis(ms)
}

/// A command refused before running (Redis's `rejectCommand`): it fails the open
/// transaction; a refused EXEC discards the transaction with an EXECABORT error instead.
/// `msg` has no `ERR ` prefix when it is a plain error.
fn reject(client: &mut Client, handle: &ClientHandle, spec: &CommandSpec, msg: String) -> Frame {
    if spec.name == "exec" {
        client.end_transaction();
        handle.update(|i| {
            i.multi = -1;
            i.watching = 0;
        });
        return Frame::error(format!("EXECABORT Transaction discarded because of: {msg}"));
    }
    client.multi_failed |= client.multi.is_some();
    if ["NOAUTH", "OOM", "BUSY", "NOPERM"].iter().any(|p| msg.starts_with(p)) {
        Frame::error(msg)
    } else {
        Frame::error(format!("ERR {msg}"))
    }
}

/// Runs a read or session command (writes left [`execute`] as [`Outcome::Write`]) on
/// `group` (see [`route`]).
#[allow(clippy::too_many_arguments)]
async fn run(
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
    spec: &CommandSpec,
    argv: &mut Vec<Bytes>,
    now: u64,
    point: &mut ReadPoint,
    group: u64,
) -> Frame {
    let engine = &shared.engine;
    match spec.kind {
        Kind::Read(f) if spec.name == "get" => {
            // GET's reply tells a hit from a miss: no second lookup of the key.
            let reply = engine.read_on(group, client.db, now, f, argv, client.readonly, point).await;
            match reply {
                Frame::Bulk(_) => Stats::add(&shared.stats.keyspace_hits, 1),
                Frame::Null => {
                    Stats::add(&shared.stats.keyspace_misses, 1);
                    notify_key_miss(shared, client.db, &argv[1]);
                }
                _ => count_lookups(shared, group, client.db, now, spec, argv),
            }
            reply
        }
        Kind::Read(f) => {
            count_lookups(shared, group, client.db, now, spec, argv);
            engine.read_on(group, client.db, now, f, argv, client.readonly, point).await
        }
        Kind::Write(_) => {
            let mut replies = engine.write_many_to(group, client.db, now, vec![std::mem::take(argv)]).await;
            replies.next().unwrap_or(Frame::Null)
        }
        Kind::Session => match spec.name {
            "multi" => multi(client, handle),
            "exec" => exec(client, handle, shared).await,
            "discard" => discard(client, handle),
            "watch" => watch(client, handle, shared, argv, group).await,
            "unwatch" => {
                client.watched.clear();
                if client.multi.is_none() {
                    client.tx_slot = None;
                }
                handle.update(|i| i.watching = 0);
                Frame::ok()
            }
            "cluster" => cluster(shared, argv).await,
            "asking" if shared.cluster.is_none() && !shared.config().cluster_enabled => {
                Frame::error("ERR This instance has cluster support disabled")
            }
            "asking" => {
                client.asking = true;
                Frame::ok()
            }
            "migrate" => {
                let cluster = shared.config().cluster_enabled;
                super::migrate::run(&shared.engine, group, client.db, now, argv, point, cluster).await
            }
            // MEMORY USAGE reads a key: behind the read barrier, as any read.
            "memory" if argv.len() > 1 && args::is(&argv[1], "usage") => {
                let usage = cmd::server::memory_usage;
                shared.engine.read_on(group, client.db, now, usage, argv, client.readonly, point).await
            }
            "acl" | "config"
                if cmd::acl::replicated_write(argv).is_some()
                    || (argv.len() == 2 && args::is(&argv[0], "acl") && args::is(&argv[1], "load")) =>
            {
                acl::write(client, handle, shared, argv, now).await
            }
            "config" if cmd::replicated_config_write(argv).is_some() => {
                // lua-max-steps and the stream node sizes are replicated state: set through
                // the log, like a write.
                match cmd::replicated_config_write(argv) {
                    // Every group that holds keys runs scripts: each gets the setting.
                    Some(Ok(write)) => fanout::write_to_every_keyspace(shared, client.db, now, write).await,
                    Some(Err(e)) => e,
                    None => Frame::Null,
                }
            }
            "client" if argv.len() > 1 && args::is(&argv[1], "unblock") => {
                match cmd::server::sub_arity("client", argv, -3) {
                    Ok(()) => blocked::client_unblock(shared, argv).await,
                    Err(e) => e,
                }
            }
            _ => cmd::server::run_session(&mut cmd::server::Session { client, handle, shared }, spec, argv),
        },
    }
}

/// CLUSTER: a multi-raft node answers the Redis Cluster subcommands from its groups
/// (`crate::cluster::face`); the rest (METARAFT, KEYSLOT, HELP) as any node.
async fn cluster(shared: &Shared, argv: &[Bytes]) -> Frame {
    if let Some(groups) = &shared.cluster {
        if let Some(reply) = crate::cluster::migrate_cmd::command(groups, argv).await {
            return reply;
        }
        if let Some(reply) = crate::cluster::setslot::command(groups, argv).await {
            return reply;
        }
        if let Some(reply) = crate::cluster::decommission::command(groups, argv).await {
            return reply;
        }
        if let Some(reply) = crate::cluster::face::command(groups, argv, now_ms()) {
            return reply;
        }
    }
    cmd::cluster::cluster(shared, argv).await
}

/// INFO's keyspace_hits / keyspace_misses: one per key a read command names, as Redis
/// counts its read lookups.
fn count_lookups(shared: &Shared, group: u64, db: usize, now: u64, spec: &CommandSpec, argv: &[Bytes]) {
    let mut keys = 0;
    cmd::for_each_key_index(spec, argv, |_| keys += 1);
    if keys == 0 {
        return;
    }
    let mut missed = Vec::new();
    // Not counted while a script's apply holds the keyspace (the runtime must not block).
    let hits = shared.engine.try_with_keyspace_of(group, |ks| {
        let mut hits = 0;
        cmd::for_each_key_index(spec, argv, |i| match argv.get(i) {
            Some(k) if ks.db(db).get(k, now).is_some() => hits += 1,
            Some(k) => missed.push(k.clone()),
            None => {}
        });
        hits
    });
    let Some(hits) = hits else { return };
    Stats::add(&shared.stats.keyspace_hits, hits);
    Stats::add(&shared.stats.keyspace_misses, keys - hits);
    for key in &missed {
        notify_key_miss(shared, db, key);
    }
}

/// Redis's `keymiss` event (class `m`): a read command looked `key` up and did not find it.
/// Reads run on the node the client is connected to, so the event goes to this node's
/// subscribers only, as on the Redis server that served the read.
fn notify_key_miss(shared: &Shared, db: usize, key: &Bytes) {
    use crate::store::notify;
    let flags = shared.config().notify_keyspace_events;
    if flags & notify::KEY_MISS == 0 {
        return;
    }
    let event = notify::KeyEvent { db: db as u32, event: "keymiss", key: key.clone() };
    for (channel, payload) in event.messages(flags) {
        shared.pubsub.publish(false, &channel, &payload);
    }
}

fn multi(client: &mut Client, handle: &ClientHandle) -> Frame {
    if client.multi.is_some() {
        return Frame::error("ERR MULTI calls can not be nested");
    }
    client.multi = Some(Vec::new());
    handle.update(|i| i.multi = 0);
    Frame::ok()
}

fn discard(client: &mut Client, handle: &ClientHandle) -> Frame {
    if client.multi.is_none() {
        return Frame::error("ERR DISCARD without MULTI");
    }
    client.end_transaction();
    handle.update(|i| {
        i.multi = -1;
        i.watching = 0;
    });
    Frame::ok()
}

async fn watch(client: &mut Client, handle: &ClientHandle, shared: &Shared, argv: &[Bytes], group: u64) -> Frame {
    if client.multi.is_some() {
        return Frame::error("ERR WATCH inside MULTI is not allowed");
    }
    // The versions must include every write acknowledged before the WATCH (a follower's copy
    // may lag): else EXEC would fail for a change made before it. Unconfirmed (no leader),
    // the local versions are kept: a stale one can only make EXEC fail, never run wrongly.
    if !client.readonly {
        shared.engine.group(group).catch_up().await;
    }
    let (db, now) = (client.db, now_ms());
    let versions = shared.engine.with_keyspace_when_free(group, |ks| {
        argv[1..]
            .iter()
            .map(|key| WatchedKey { db: db as u32, key: key.clone(), version: ks.key_version(db, key, now) })
            .collect::<Vec<_>>()
    });
    client.watched.extend(versions.await);
    let n = client.watched.len();
    handle.update(|i| i.watching = n);
    Frame::ok()
}

/// EXEC: the queued keyspace commands become one write batch (one log entry); queued
/// session commands (PING, ECHO, ...) are answered locally in their places.
async fn exec(client: &mut Client, handle: &ClientHandle, shared: &Arc<Shared>) -> Frame {
    let Some(queue) = client.multi.take() else {
        return Frame::error("ERR EXEC without MULTI");
    };
    let failed = client.multi_failed;
    let watched = std::mem::take(&mut client.watched);
    let tx_slot = client.tx_slot;
    client.end_transaction();
    handle.update(|i| {
        i.multi = -1;
        i.watching = 0;
    });
    if failed {
        return Frame::error("EXECABORT Transaction discarded because of previous errors.");
    }
    // Multi-raft: the group of the transaction's slot (its leader may have moved since the
    // commands were queued).
    let group = match (&shared.cluster, tx_slot) {
        (None, _) => 0,
        (Some(cluster), None) => cluster.keyless_group(),
        (Some(cluster), Some(slot)) => match cluster.route(slot, false).await {
            Ok(group) => group,
            Err(reply) => return reply,
        },
    };
    let shown = shared.monitors.any().then(|| queue.clone());
    // Each queued command is recorded once EXEC has its reply (commandstats, slow log).
    let logged = queue.clone();
    let started = tokio::time::Instant::now();
    let mut local: Vec<Option<Frame>> = Vec::with_capacity(queue.len());
    let mut batch_cmds = Vec::new();
    let start_db = client.db;
    for argv in queue {
        let spec = cmd::lookup(&argv[0]);
        // Permissions may have changed since the command was queued (Redis checks again).
        if let Some(msg) = spec.and_then(|spec| acl::refusal(client, handle, shared, spec, &argv, true)) {
            local.push(Some(Frame::error(msg)));
            continue;
        }
        if let Some(write) = cmd::acl::replicated_write(&argv) {
            // ACL SETUSER / DELUSER in a transaction: its place in the entry.
            local.push(None);
            batch_cmds.push(write);
            continue;
        }
        match spec {
            Some(spec) if spec.name == "cluster" => local.push(Some(cluster(shared, &argv).await)),
            Some(spec) if spec.has_flag("pubsub") => local.push(Some(pubsub_in_exec(client, shared, spec, &argv))),
            Some(spec) if matches!(spec.kind, Kind::Session) && spec.name != "select" => {
                let mut s = cmd::server::Session { client: &mut *client, handle, shared };
                local.push(Some(cmd::server::run_session(&mut s, spec, &argv)));
            }
            Some(spec) => {
                if client.tracking.is_some() {
                    super::tracking::before_read(&shared.tracking, client, client.caching, spec, &argv);
                }
                local.push(None);
                batch_cmds.push(argv);
            }
            None => {
                local.push(None);
                batch_cmds.push(argv);
            }
        }
    }
    let selects: Vec<Option<usize>> = batch_cmds.iter().map(|argv| selected_db(argv)).collect();
    let batch = WriteBatch {
        db: start_db as u32,
        now_ms: now_ms(),
        seed: shared.engine.next_seed(),
        cmds: batch_cmds,
        transaction: Some(watched),
    };
    let noloop = client.tracking.as_ref().is_some_and(|m| m.noloop).then_some(batch.seed);
    if let Some(seed) = noloop {
        shared.tracking.own_write(seed, client.id);
    }
    let reply = shared.engine.write_to(group, batch).await;
    if let Some(seed) = noloop {
        shared.tracking.own_write_done(seed);
    }
    match reply {
        Frame::Array(replies) => {
            // A SELECT that succeeded inside the transaction stays in effect after EXEC.
            for (db, reply) in selects.iter().zip(&replies) {
                if let (Some(db), Frame::Simple(_)) = (db, reply) {
                    client.db = *db;
                }
            }
            let db = client.db;
            handle.update(|i| i.db = db);
            show_transaction(shared, handle, start_db, shown.unwrap_or_default());
            let merged = merge_replies(local, replies);
            record_transaction(shared, handle, &logged, &merged, started.elapsed());
            merged
        }
        other => other,
    }
}

/// Records each command of a transaction, with the transaction's duration, and counts the
/// error replies among `replies` (EXEC's, one per command).
fn record_transaction(
    shared: &Shared,
    handle: &ClientHandle,
    queue: &[Vec<Bytes>],
    replies: &Frame,
    elapsed: std::time::Duration,
) {
    let Frame::Array(replies) = replies else { return };
    let mut stats = Default::default();
    for (argv, reply) in queue.iter().zip(replies) {
        super::calls::error_replied(shared, reply, true, argv);
        if let Some(spec) = cmd::lookup(&argv[0]) {
            let key = super::calls::stat_key(spec, argv);
            let call = super::calls::Call { spec, argv, key, elapsed, failed: reply.is_error() };
            super::calls::after_call(shared, handle, call, &mut stats);
        }
    }
    shared.latency.merge(&mut stats);
}

/// A Pub/Sub command queued in MULTI: its frame (several pushes, one per channel, become one
/// array: Redis writes them all as if they were one element of EXEC's reply). SSUBSCRIBE is
/// refused as in Redis.
fn pubsub_in_exec(client: &mut Client, shared: &Shared, spec: &CommandSpec, argv: &[Bytes]) -> Frame {
    if spec.name == "ssubscribe" {
        return Frame::error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    let mut frames = pubsub::run(client, shared, spec.name, argv).unwrap_or_default();
    match frames.len() {
        1 => frames.pop().unwrap_or(Frame::Null),
        _ => Frame::Array(frames),
    }
}

/// Shows the commands of a transaction that ran to the node's monitors, in order, each with
/// the database it ran in.
fn show_transaction(shared: &Shared, handle: &ClientHandle, mut db: usize, queue: Vec<Vec<Bytes>>) {
    for argv in queue {
        let Some(spec) = cmd::lookup(&argv[0]) else { continue };
        db = selected_db(&argv).filter(|n| *n < shared.config().databases).unwrap_or(db);
        monitor::feed(shared, handle, db, spec, &argv);
    }
}

/// The database a queued `SELECT n` asks for, if the command is one.
fn selected_db(argv: &[Bytes]) -> Option<usize> {
    if argv.len() == 2 && args::is(&argv[0], "select") {
        return args::int(&argv[1]).ok().filter(|n| *n >= 0).map(|n| n as usize);
    }
    None
}

fn merge_replies(local: Vec<Option<Frame>>, replies: Vec<Frame>) -> Frame {
    let mut replies = replies.into_iter();
    Frame::Array(local.into_iter().map(|l| l.unwrap_or_else(|| replies.next().unwrap_or(Frame::Null))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_share_the_batch_reading_and_anything_else_reads_the_clock() {
        // A reading of 1 ms after the epoch stands for one cached before reads waited long.
        let mut clock = BatchClock { now: 1, uses_left: 10, ..Default::default() };
        assert_eq!(clock.now_for(true), 1, "a read shares the batch's reading");
        let write = clock.now_for(false);
        assert!(write > 1, "a write is stamped with a fresh reading, not the cached one");
        clock.now = 1;
        assert!(clock.now_for(true) >= write, "the read after a write reads the clock again");
        assert_eq!(clock.now_for(true), clock.now, "and the reads after it share that reading");
    }
}

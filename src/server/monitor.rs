//! MONITOR: every command this node receives from its clients, as Redis 7.0 shows it to its
//! monitors: `+<seconds>.<microseconds> [<db> <ip:port>] "arg" "arg"...`, arguments quoted
//! and escaped as Redis's `sdscatrepr`, AUTH's and HELLO ... AUTH's credentials replaced by
//! `(redacted)`, administrative commands (CONFIG, DEBUG, CLIENT LIST, ...) left out. A
//! monitor's lines go through its mailbox (`pubsub::Mailbox`, the one Pub/Sub uses), bounded
//! like a subscriber's, so a monitor that does not read is disconnected rather than let grow.
//!
//! Only commands clients send to this node are shown: a write a follower forwards to the
//! leader shows on the follower's monitors, not on the leader's.

use super::client::{Client, ClientHandle};
use super::pubsub::{Mailbox, Message};
use super::shared::Shared;
use crate::cmd::args::is;
use crate::cmd::CommandSpec;
use crate::protocol::Frame;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The node's monitors: client id -> mailbox.
#[derive(Default)]
pub struct Monitors {
    clients: Mutex<BTreeMap<u64, Arc<Mailbox>>>,
    /// How many there are (read on every command: no lock when there are none).
    count: AtomicUsize,
}

impl Monitors {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Mailbox>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any client monitors this node.
    #[inline]
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    fn add(&self, id: u64, mailbox: &Arc<Mailbox>) {
        let mut clients = self.lock();
        clients.insert(id, mailbox.clone());
        self.count.store(clients.len(), Ordering::Relaxed);
    }

    /// Forgets client `id` (RESET, disconnection).
    pub fn remove(&self, id: u64) {
        let mut clients = self.lock();
        clients.remove(&id);
        self.count.store(clients.len(), Ordering::Relaxed);
    }

    fn feed(&self, line: Bytes, shared: &Shared) {
        let limit = shared.pubsub.limit();
        let now = tokio::time::Instant::now();
        for mailbox in self.lock().values() {
            mailbox.push(Message::Monitor(line.clone()), &limit, now);
        }
    }
}

/// MONITOR: the client gets every later command of the node until it leaves (RESET, QUIT,
/// closing). A client already monitoring gets no reply, as in Redis.
pub fn start(client: &mut Client, handle: &ClientHandle, shared: &Shared) -> Vec<Frame> {
    if client.monitor {
        return Vec::new();
    }
    client.monitor = true;
    let subs = client.pubsub.get_or_insert_with(Default::default);
    shared.monitors.add(client.id, &subs.mailbox);
    tell_groups(shared);
    handle.update(|i| i.monitor = true);
    vec![Frame::ok()]
}

/// Lets the groups' applies know whether to record script commands.
fn tell_groups(shared: &Shared) {
    let any = shared.monitors.any();
    for group in shared.engine.groups().values() {
        group.set_monitoring(any);
    }
}

/// Shows the commands scripts run, as Redis's `[db lua]` lines, to this node's monitors. The
/// scripts run in every replica's apply, so every node's monitors see them (as a Redis
/// replica's monitors see what its master sends).
pub struct ScriptLines {
    monitors: Arc<Monitors>,
    pubsub: Arc<super::pubsub::PubSub>,
}

impl ScriptLines {
    pub fn of(shared: &Shared) -> ScriptLines {
        ScriptLines { monitors: shared.monitors.clone(), pubsub: shared.pubsub.clone() }
    }
}

impl crate::raft::notify::MonitorSink for ScriptLines {
    fn script_calls(&self, calls: Vec<(u32, Vec<Bytes>)>) {
        let limit = self.pubsub.limit();
        let now = tokio::time::Instant::now();
        let clients = self.monitors.lock();
        for (db, argv) in calls {
            let shown = line(now_us(), db as usize, "lua", &argv);
            for mailbox in clients.values() {
                mailbox.push(Message::Monitor(shown.clone()), &limit, now);
            }
        }
    }
}

/// Stops `client` monitoring (RESET, disconnection).
pub fn stop(client: &mut Client, shared: &Shared) {
    if std::mem::take(&mut client.monitor) {
        shared.monitors.remove(client.id);
        tell_groups(shared);
    }
}

/// Shows `argv`, run by `client` in database `db`, to the node's monitors (if any, and
/// unless Redis keeps the command from them).
pub fn feed(shared: &Shared, handle: &ClientHandle, db: usize, spec: &CommandSpec, argv: &[Bytes]) {
    if !shared.monitors.any() || is_admin(spec, argv) {
        return;
    }
    let addr = handle.info.lock().unwrap_or_else(|p| p.into_inner()).addr;
    shared.monitors.feed(line(now_us(), db, &addr.to_string(), argv), shared);
}

/// Microseconds since the Unix epoch (virtual time under madsim).
fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Commands Redis flags `admin` (never shown to monitors).
fn is_admin(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    const ADMIN_CLIENT: &[&str] = &["list", "kill", "pause", "unpause", "no-evict", "unblock"];
    match spec.name {
        "config" | "monitor" => true,
        "client" => argv.get(1).is_some_and(|sub| ADMIN_CLIENT.iter().any(|a| is(sub, a))),
        "cluster" => argv.get(1).is_some_and(|sub| is(sub, "metaraft")),
        // Every subcommand but HELP is `admin`.
        "slowlog" | "latency" => argv.get(1).is_some_and(|sub| !is(sub, "help")),
        _ => spec.has_flag("admin"),
    }
}

/// One monitor line (a simple-string reply's text, without `+` and CRLF).
pub fn line(now_us: u64, db: usize, addr: &str, argv: &[Bytes]) -> Bytes {
    let mut out = format!("{}.{:06} [{db} {addr}]", now_us / 1_000_000, now_us % 1_000_000).into_bytes();
    for (i, arg) in argv.iter().enumerate() {
        out.push(b' ');
        match redacts(argv, i) {
            true => out.extend_from_slice(b"\"(redacted)\""),
            false => repr(&mut out, arg),
        }
    }
    Bytes::from(out)
}

/// Whether argument `i` is a credential Redis hides: AUTH's arguments, the two after
/// HELLO's `AUTH` option.
fn redacts(argv: &[Bytes], i: usize) -> bool {
    if is(&argv[0], "auth") {
        return i > 0;
    }
    if !is(&argv[0], "hello") || i < 2 {
        return false;
    }
    // HELLO [protover [AUTH user pass] [SETNAME name]]: options from the third argument.
    let mut j = 2;
    while j < argv.len() {
        if is(&argv[j], "auth") && j + 2 < argv.len() {
            if i == j + 1 || i == j + 2 {
                return true;
            }
            j += 3;
        } else {
            j += if is(&argv[j], "setname") { 2 } else { 1 };
        }
    }
    false
}

/// Redis's `sdscatrepr`: the argument in double quotes, escapes for `\` `"` and control
/// characters, `\xHH` for bytes outside printable ASCII.
fn repr(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&[u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    #[test]
    fn lines_quote_escape_and_redact_as_redis() {
        let set = argv(&[b"SET", b"k", b"v\n\"x\\\x01\xc3\xa9\t\r\x07\x08"]);
        assert_eq!(
            line(1_796_596_013_825_098, 0, "127.0.0.1:43388", &set),
            Bytes::from_static(
                b"1796596013.825098 [0 127.0.0.1:43388] \"SET\" \"k\" \"v\\n\\\"x\\\\\\x01\\xc3\\xa9\\t\\r\\a\\b\""
            )
        );
        assert_eq!(
            line(5_000_007, 5, "a:1", &argv(&[b"GET", b"k"])),
            Bytes::from_static(b"5.000007 [5 a:1] \"GET\" \"k\"")
        );
        let auth = argv(&[b"auth", b"u", b"pw"]);
        assert_eq!(
            line(0, 0, "a:1", &auth),
            Bytes::from_static(b"0.000000 [0 a:1] \"auth\" \"(redacted)\" \"(redacted)\"")
        );
        let hello = argv(&[b"HELLO", b"3", b"SETNAME", b"auth", b"AUTH", b"default", b"pw"]);
        let shown = line(0, 0, "a:1", &hello);
        assert_eq!(
            shown,
            Bytes::from_static(
                b"0.000000 [0 a:1] \"HELLO\" \"3\" \"SETNAME\" \"auth\" \"AUTH\" \"(redacted)\" \"(redacted)\""
            )
        );
        let short = argv(&[b"HELLO", b"3", b"AUTH", b"only"]);
        assert_eq!(
            line(0, 0, "a:1", &short),
            Bytes::from_static(b"0.000000 [0 a:1] \"HELLO\" \"3\" \"AUTH\" \"only\"")
        );
    }
}

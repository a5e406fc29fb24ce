//! SLOWLOG's log: the commands this node's clients ran that took at least
//! `slowlog-log-slower-than` microseconds, newest first, at most `slowlog-max-len` of them,
//! each with Redis 7.0's fields (id, Unix time, duration, arguments, client address and
//! name). Per node, as Redis keeps one per server: a write shows on the node its client sent
//! it to, never on the replicas that applied it.
//!
//! Arguments are kept as Redis keeps them: at most 32 (the last one says how many more there
//! were), each at most 128 bytes (with how many more there were), credentials replaced by
//! `(redacted)` where Redis redacts them.

use crate::cmd::args::is;
use crate::protocol::Frame;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC` and `SLOWLOG_ENTRY_MAX_STRING`.
const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

/// One logged command.
pub struct Entry {
    pub id: u64,
    /// Seconds since the Unix epoch when it was logged (after it ran).
    pub time: u64,
    pub duration_us: u64,
    pub argv: Vec<Bytes>,
    /// `ip:port` of the client.
    pub peer: String,
    pub name: Bytes,
}

#[derive(Default)]
struct Log {
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// The node's slow log and its two settings (kept here as atomics: every command reads them).
pub struct SlowLog {
    log: Mutex<Log>,
    /// `slowlog-log-slower-than` in microseconds; negative: off.
    threshold_us: AtomicI64,
    max_len: AtomicU64,
    /// The number of entries, readable without the lock.
    len_hint: AtomicUsize,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            log: Mutex::default(),
            threshold_us: AtomicI64::new(10_000),
            max_len: AtomicU64::new(128),
            len_hint: AtomicUsize::new(0),
        }
    }
}

impl SlowLog {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the settings (at start and on every CONFIG SET); a shorter maximum trims the log
    /// at the next command, as in Redis.
    pub fn configure(&self, threshold_us: i64, max_len: u64) {
        self.threshold_us.store(threshold_us, Ordering::Relaxed);
        self.max_len.store(max_len, Ordering::Relaxed);
    }

    /// Whether a command may be logged at all (the log is on).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.threshold_us.load(Ordering::Relaxed) >= 0
    }

    /// Logs `argv` if it ran at least the threshold (Redis's `slowlogPushEntryIfNeeded`),
    /// then trims the log to its maximum length. Takes no lock when there is nothing to do
    /// (the common case: every command comes here).
    pub fn push_if_needed(&self, argv: &[Bytes], duration_us: u64, peer: impl FnOnce() -> (String, Bytes)) {
        let threshold = self.threshold_us.load(Ordering::Relaxed);
        if threshold < 0 {
            return;
        }
        let max_len = self.max_len.load(Ordering::Relaxed) as usize;
        let logs = duration_us >= threshold as u64;
        if !logs && self.len_hint.load(Ordering::Relaxed) <= max_len {
            return;
        }
        let entry = logs.then(|| {
            let (peer, name) = peer();
            (shown_args(argv), peer, name)
        });
        let mut log = self.lock();
        if let Some((argv, peer, name)) = entry {
            let id = log.next_id;
            log.next_id += 1;
            log.entries.push_front(Entry { id, time: crate::server::now_ms() / 1000, duration_us, argv, peer, name });
        }
        log.entries.truncate(max_len);
        self.len_hint.store(log.entries.len(), Ordering::Relaxed);
    }

    /// Whether a command that ran `duration_us` is logged.
    #[inline]
    pub fn logs(&self, duration_us: u64) -> bool {
        let threshold = self.threshold_us.load(Ordering::Relaxed);
        threshold >= 0 && duration_us >= threshold as u64
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SLOWLOG RESET: the entries go; ids go on from where they were.
    pub fn reset(&self) {
        self.lock().entries.clear();
        self.len_hint.store(0, Ordering::Relaxed);
    }

    /// SLOWLOG GET: the newest `count` entries (all of them for `None`).
    pub fn get(&self, count: Option<usize>) -> Frame {
        let log = self.lock();
        let n = count.unwrap_or(usize::MAX);
        Frame::Array(log.entries.iter().take(n).map(entry_frame).collect())
    }
}

fn entry_frame(e: &Entry) -> Frame {
    Frame::Array(vec![
        Frame::Integer(e.id as i64),
        Frame::Integer(e.time as i64),
        Frame::Integer(e.duration_us as i64),
        Frame::Array(e.argv.iter().cloned().map(Frame::Bulk).collect()),
        Frame::Bulk(Bytes::from(e.peer.clone())),
        Frame::Bulk(e.name.clone()),
    ])
}

/// The arguments as Redis logs them (`slowlogCreateEntry` after `redactClientCommandArgument`).
fn shown_args(argv: &[Bytes]) -> Vec<Bytes> {
    let kept = argv.len().min(MAX_ARGC);
    (0..kept)
        .map(|j| {
            if kept != argv.len() && j == kept - 1 {
                return Bytes::from(format!("... ({} more arguments)", argv.len() - kept + 1));
            }
            if redacted(argv, j) {
                return Bytes::from_static(b"(redacted)");
            }
            let arg = &argv[j];
            if arg.len() > MAX_STRING {
                let mut s = arg[..MAX_STRING].to_vec();
                s.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_STRING).as_bytes());
                return Bytes::from(s);
            }
            arg.clone()
        })
        .collect()
}

/// Configuration parameters Redis flags `SENSITIVE_CONFIG`: CONFIG SET hides their values.
const SENSITIVE: &[&str] = &["masteruser", "masterauth", "requirepass"];

/// Whether Redis 7.0 redacts argument `i` of `argv` in its slow log: AUTH's password (and its
/// user in the three-argument form), HELLO's `AUTH user pass`, MIGRATE's `AUTH pass` and
/// `AUTH2 user pass`, CONFIG SET's values of sensitive parameters.
fn redacted(argv: &[Bytes], i: usize) -> bool {
    let cmd = &argv[0];
    if is(cmd, "auth") {
        return argv.len() <= 3 && i >= 1;
    }
    if is(cmd, "config") && argv.len() >= 4 && is(&argv[1], "set") {
        return i >= 3 && i % 2 == 1 && SENSITIVE.iter().any(|s| is(&argv[i - 1], s));
    }
    if is(cmd, "hello") || is(cmd, "migrate") {
        return hidden_credentials(argv).contains(&i);
    }
    false
}

/// The positions of HELLO's and MIGRATE's credentials (as their parsers walk the options).
fn hidden_credentials(argv: &[Bytes]) -> Vec<usize> {
    let mut out = Vec::new();
    let hello = is(&argv[0], "hello");
    let mut j = if hello { 2 } else { 6 };
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is(&argv[j], "auth") && hello && more >= 2 {
            out.extend([j + 1, j + 2]);
            j += 3;
        } else if is(&argv[j], "auth") && !hello && more >= 1 {
            out.push(j + 1);
            j += 2;
        } else if is(&argv[j], "auth2") && !hello && more >= 2 {
            out.extend([j + 1, j + 2]);
            j += 3;
        } else if is(&argv[j], "setname") && hello && more >= 1 {
            j += 2;
        } else if !hello && is(&argv[j], "keys") {
            break;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
    }

    fn shown(parts: &[&str]) -> Vec<String> {
        shown_args(&argv(parts)).iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    #[test]
    fn long_commands_and_arguments_are_cut_as_redis_cuts_them() {
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let out = shown(&refs);
        assert_eq!(out.len(), 32);
        assert_eq!(out[30], "30");
        assert_eq!(out[31], "... (9 more arguments)");
        let exactly: Vec<&str> = refs[..32].to_vec();
        assert_eq!(shown(&exactly)[31], "31", "32 arguments are kept whole");
        let long = "x".repeat(130);
        let out = shown(&["SET", "k", &long]);
        assert_eq!(out[2], format!("{}... (2 more bytes)", "x".repeat(128)));
        assert_eq!(shown(&["SET", "k", &"y".repeat(128)])[2].len(), 128);
    }

    #[test]
    fn credentials_are_redacted_where_redis_redacts_them() {
        assert_eq!(shown(&["AUTH", "pw"]), ["AUTH", "(redacted)"]);
        assert_eq!(shown(&["auth", "u", "pw"]), ["auth", "(redacted)", "(redacted)"]);
        assert_eq!(shown(&["auth", "a", "b", "c"]), ["auth", "a", "b", "c"], "a syntax error redacts nothing");
        assert_eq!(
            shown(&["config", "set", "masterauth", "x", "maxmemory", "1"]),
            ["config", "set", "masterauth", "(redacted)", "maxmemory", "1"]
        );
        assert_eq!(
            shown(&["HELLO", "3", "SETNAME", "auth", "AUTH", "u", "p"]),
            ["HELLO", "3", "SETNAME", "auth", "AUTH", "(redacted)", "(redacted)"]
        );
        assert_eq!(
            shown(&["MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "p", "KEYS", "auth"]),
            ["MIGRATE", "h", "1", "", "0", "5", "AUTH2", "(redacted)", "(redacted)", "KEYS", "auth"]
        );
    }

    #[test]
    fn the_log_keeps_the_newest_entries_up_to_its_length() {
        let log = SlowLog::default();
        log.configure(0, 2);
        for i in 0..3 {
            log.push_if_needed(&argv(&["PING", &i.to_string()]), 5, || ("a:1".into(), Bytes::new()));
        }
        assert_eq!(log.len(), 2);
        let Frame::Array(entries) = log.get(None) else { panic!("array") };
        assert!(matches!(&entries[0], Frame::Array(f) if f[0] == Frame::Integer(2)), "newest first, ids go on");
        log.configure(10, 2);
        log.push_if_needed(&argv(&["PING"]), 9, || unreachable!("under the threshold: nothing is taken"));
        assert_eq!(log.len(), 2);
        log.configure(-1, 1);
        log.push_if_needed(&argv(&["PING"]), 9, || unreachable!());
        assert_eq!(log.len(), 2, "off: not even trimmed, as in Redis");
        log.configure(0, 0);
        log.push_if_needed(&argv(&["PING"]), 9, || ("a:1".into(), Bytes::new()));
        assert!(log.is_empty());
    }
}

//! `ACL LOG`: this node's recent denials (commands, keys, channels refused; failed AUTHs),
//! newest first, a repeat within 60 s counted on its entry as Redis's `addACLLogEntry` does.
//! Per node, as in Redis (each server logs what its own clients were denied).

use crate::protocol::Frame;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Redis's `ACL_LOG_GROUPING_MAX_TIME_DELTA`.
const GROUPING_MS: u64 = 60_000;
/// Redis's default `acllog-max-len`.
const MAX_LEN: usize = 128;

/// One denial.
#[derive(Clone, Debug)]
pub struct Entry {
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub at_ms: u64,
    /// The client's CLIENT INFO line (without its newline).
    pub client_info: String,
}

#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl AclLog {
    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, entry: Entry) {
        let mut entries = self.entries();
        let same = |e: &&mut Entry| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && entry.at_ms.saturating_sub(e.at_ms) < GROUPING_MS
        };
        if let Some(e) = entries.iter_mut().find(|e| same(e)) {
            e.count += 1;
            e.at_ms = entry.at_ms;
            e.client_info = entry.client_info;
            return;
        }
        entries.push_front(entry);
        entries.truncate(MAX_LEN);
    }

    pub fn reset(&self) {
        self.entries().clear();
    }

    /// The newest `count` entries as `ACL LOG` replies them.
    pub fn reply(&self, count: usize, now_ms: u64) -> Frame {
        let entry = |e: &Entry| {
            let b = |s: &str| Frame::bulk(s.to_string());
            Frame::Map(vec![
                (b("count"), Frame::Integer(e.count as i64)),
                (b("reason"), b(e.reason)),
                (b("context"), b(e.context)),
                (b("object"), b(&e.object)),
                (b("username"), b(&e.username)),
                (b("age-seconds"), Frame::Double(now_ms.saturating_sub(e.at_ms) as f64 / 1000.0)),
                (b("client-info"), b(&e.client_info)),
            ])
        };
        Frame::Array(self.entries().iter().take(count).map(entry).collect())
    }
}

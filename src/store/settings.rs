//! Settings that shape replicated data, so replicated themselves: `stream-node-max-entries`
//! and `stream-node-max-bytes` decide where a stream's nodes are cut, and approximate trimming
//! (`MAXLEN ~`, `MINID ~`) removes whole nodes only, so two replicas cutting at different
//! places would hold different streams. In Redis they are per-server `CONFIG SET`s; in raftis
//! `CONFIG SET` of one becomes a log entry (`cmd::stream::settings`), every replica applies
//! it at the same place among the writes, and snapshots carry the values (frame kind 8).

use super::stream::NodeLimits;
use serde::{Deserialize, Serialize};

/// Redis 7.0's default `stream-node-max-entries`.
pub const DEFAULT_STREAM_NODE_MAX_ENTRIES: u64 = 100;
/// Redis 7.0's default `stream-node-max-bytes`.
pub const DEFAULT_STREAM_NODE_MAX_BYTES: u64 = 4096;

/// The replicated settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Entries per stream node, deleted ones included; 0: no limit.
    pub stream_node_max_entries: u64,
    /// Listpack bytes per stream node; 0: the listpack's own limit.
    pub stream_node_max_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stream_node_max_entries: DEFAULT_STREAM_NODE_MAX_ENTRIES,
            stream_node_max_bytes: DEFAULT_STREAM_NODE_MAX_BYTES,
        }
    }
}

impl Settings {
    /// True when nothing differs from a fresh keyspace (no snapshot frame needed).
    pub fn is_default(&self) -> bool {
        *self == Settings::default()
    }

    /// Where XADD cuts a new node.
    pub fn node_limits(&self) -> NodeLimits {
        NodeLimits { max_entries: self.stream_node_max_entries, max_bytes: self.stream_node_max_bytes }
    }

    /// The LIMIT of approximate trimming when none is given: 100 nodes' worth, capped as
    /// Redis caps it (`streamParseAddOrTrimArgsOrReply`).
    pub fn default_trim_limit(&self) -> u64 {
        match self.stream_node_max_entries.saturating_mul(100) {
            0 => 10_000,
            n => n.min(1_000_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_trim_limit_is_capped_as_in_redis() {
        let with = |entries| Settings { stream_node_max_entries: entries, ..Settings::default() };
        assert_eq!(Settings::default().default_trim_limit(), 10_000);
        assert_eq!(with(1).default_trim_limit(), 100);
        assert_eq!(with(0).default_trim_limit(), 10_000);
        assert_eq!(with(u64::MAX).default_trim_limit(), 1_000_000);
        assert!(Settings::default().is_default() && !with(7).is_default());
    }
}

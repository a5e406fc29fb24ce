//! SCAN on a multi-raft node: walks the data groups this node leads one after the other, as
//! a Redis Cluster master's SCAN walks its slots, so a client that scans every master (redis-cli
//! `--cluster call`, redis-py's `scan_iter`) sees every key.
//!
//! The cursor names the group: [`ScanCursor`] packs the group id into the top 16 bits and the
//! group's own cursor (a position in its keyspace's hash order) into the low 48, dropping the
//! position's low 16 bits. Resuming from the rounded-down position may return a key twice
//! (which SCAN allows) but never skips one; a step that would not move the packed position
//! forward goes on scanning from the exact position in the same call, so every call makes
//! progress.

use super::client::Client;
use super::shared::Shared;
use crate::cluster::Groups;
use crate::cmd::{scan, ReadFn};
use crate::protocol::Frame;
use crate::raft::node::ReadPoint;
use bytes::Bytes;

/// Bits of the in-group position kept in a cursor.
const POS_BITS: u32 = 48;
/// Low bits of the in-group position dropped.
const DROPPED: u32 = 64 - POS_BITS;

/// Where a multi-raft SCAN stands: data group `group` (ids are >= 1, so a cursor in progress is
/// never 0), from position `pos` in that group's hash order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    pub group: u64,
    pub pos: u64,
}

impl ScanCursor {
    /// The cursor a client sees.
    pub fn encode(self) -> u64 {
        (self.group << POS_BITS) | (self.pos >> DROPPED)
    }

    /// The cursor a client sent (not 0, which starts a scan).
    pub fn decode(cursor: u64) -> ScanCursor {
        ScanCursor { group: cursor >> POS_BITS, pos: (cursor & ((1 << POS_BITS) - 1)) << DROPPED }
    }
}

/// SCAN cursor [MATCH ..] [COUNT ..] [TYPE ..] over the groups this node leads: one group per
/// call (each read behind its group's read barrier; a group no longer led here is read from
/// its leader).
pub async fn scan(client: &Client, shared: &Shared, cluster: &Groups, read: ReadFn, argv: &[Bytes], now: u64) -> Frame {
    let opts = match scan::parse(argv, 1, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let led = cluster.led_groups();
    let at = if opts.cursor == 0 {
        match led.first() {
            Some(g) => ScanCursor { group: *g, pos: 0 },
            None => return scan::reply(0, vec![]),
        }
    } else {
        ScanCursor::decode(opts.cursor)
    };
    if cluster.group(at.group).is_none() {
        return Frame::error("ERR invalid cursor");
    }
    let mut items = Vec::new();
    let mut pos = at.pos;
    let mut point = ReadPoint::default();
    let next = loop {
        let mut sub = argv.to_vec();
        sub[1] = Bytes::from(pos.to_string());
        let reply = shared.engine.read_on(at.group, client.db, now, read, &sub, client.readonly, &mut point).await;
        let Some((next, found)) = parts(reply.clone()) else { return reply };
        items.extend(found);
        if next == 0 || next >> DROPPED > at.pos >> DROPPED {
            break next;
        }
        // The packed cursor would not move forward: go on from the exact position.
        pos = next;
    };
    let cursor = match next {
        0 => led.iter().find(|g| **g > at.group).map_or(0, |g| ScanCursor { group: *g, pos: 0 }.encode()),
        pos => ScanCursor { group: at.group, pos }.encode(),
    };
    scan::reply(cursor, items)
}

/// The next cursor and the items of a SCAN reply (`None` for anything else: an error).
fn parts(reply: Frame) -> Option<(u64, Vec<Frame>)> {
    let Frame::Array(mut parts) = reply else { return None };
    let (Some(Frame::Array(items)), Some(Frame::Bulk(cursor))) = (parts.pop(), parts.pop()) else { return None };
    Some((scan::parse_cursor(&cursor)?, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_its_group_and_never_moves_past_its_position() {
        for (group, pos) in [(1, 0), (4, 1 << 40), (1024, u64::MAX), (7, 65535), (2, 65536 * 3 + 5)] {
            let c = ScanCursor { group, pos };
            let back = ScanCursor::decode(c.encode());
            assert_eq!(back.group, group);
            assert!(back.pos <= pos && pos - back.pos < 1 << DROPPED, "{pos} -> {}", back.pos);
            assert_ne!(c.encode(), 0, "a cursor in progress is never 0");
        }
    }

    #[test]
    fn scan_replies_split_into_cursor_and_items() {
        let reply = scan::reply(42, vec![Frame::bulk("k")]);
        assert_eq!(parts(reply), Some((42, vec![Frame::bulk("k")])));
        assert_eq!(parts(Frame::error("ERR x")), None);
    }
}

//! `CONFIG SET stream-node-max-entries` / `stream-node-max-bytes`: replicated settings
//! (`store::settings`), so the server turns such a `CONFIG SET` into the internal write
//! `raftis.streamnode entries|bytes N`, which every replica applies at the same place in the
//! log; `CONFIG GET` shows the applied values. Values are checked as Redis checks them (its
//! types, ranges and error texts) before anything is proposed.

use crate::cmd::args::is;
use crate::cmd::WriteCtx;
use crate::config::reported::{self, ReportedValues};
use crate::protocol::Frame;
use crate::store::Settings;
use bytes::Bytes;

/// The internal write a `CONFIG SET` of one of these becomes.
pub const SET_STREAM_NODE: &str = "raftis.streamnode";
const ENTRIES: &str = "stream-node-max-entries";
const BYTES: &str = "stream-node-max-bytes";

/// The parameter names and this keyspace's values, for `CONFIG GET`.
pub fn config_values(settings: &Settings) -> [(&'static str, String); 2] {
    [(ENTRIES, settings.stream_node_max_entries.to_string()), (BYTES, settings.stream_node_max_bytes.to_string())]
}

/// Whether `name` is one of these parameters (`CONFIG SET` of several at once refuses them:
/// each goes through the log on its own).
pub fn is_param(name: &[u8]) -> bool {
    is(name, ENTRIES) || is(name, BYTES)
}

/// The internal write `CONFIG SET <param> <value> [<param> <value>]` of these parameters
/// only becomes, or the CONFIG SET error reply (a bad value, a duplicate); `None` for any
/// other CONFIG command.
pub fn config_write(argv: &[Bytes]) -> Option<Result<Vec<Bytes>, Frame>> {
    let pairs = argv.get(2..).filter(|p| p.len() >= 2 && p.len().is_multiple_of(2))?;
    if !is(&argv[1], "set") || !pairs.chunks(2).all(|p| is_param(&p[0])) {
        return None;
    }
    let mut write = vec![Bytes::from_static(SET_STREAM_NODE.as_bytes())];
    let mut seen = Vec::new();
    for pair in pairs.chunks(2) {
        let (name, which) = if is(&pair[0], ENTRIES) { (ENTRIES, "entries") } else { (BYTES, "bytes") };
        let failed =
            |why: &str| Frame::error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"));
        if seen.contains(&name) {
            return Some(Err(failed("duplicate parameter")));
        }
        seen.push(name);
        let r = reported::find(name.as_bytes())?;
        let mut checked = ReportedValues::default();
        if let Err(why) = checked.set(r, &String::from_utf8_lossy(&pair[1])) {
            return Some(Err(failed(&why)));
        }
        write.extend([Bytes::from_static(which.as_bytes()), checked.get(r).into()]);
    }
    Some(Ok(write))
}

/// Applies `raftis.streamnode entries|bytes N ...` (values as `CONFIG SET` checked them): all
/// or nothing.
pub fn set_stream_node(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    if argv.len().is_multiple_of(2) {
        return Frame::error("ERR syntax error");
    }
    let mut next = ctx.ks.settings;
    for pair in argv[1..].chunks(2) {
        let Some(n) = std::str::from_utf8(&pair[1]).ok().and_then(|v| v.parse::<u64>().ok()) else {
            return Frame::error("ERR value is not an integer or out of range");
        };
        if is(&pair[0], "entries") {
            next.stream_node_max_entries = n;
        } else if is(&pair[0], "bytes") {
            next.stream_node_max_bytes = n;
        } else {
            return Frame::error("ERR syntax error");
        }
    }
    ctx.ks.settings = next;
    Frame::ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn config_set_becomes_a_checked_internal_write() {
        let write = config_write(&argv("CONFIG SET stream-node-max-bytes 1kb")).expect("ours").expect("valid");
        assert_eq!(write, argv("raftis.streamnode bytes 1024"));
        let write = config_write(&argv("config set STREAM-NODE-MAX-ENTRIES 0")).expect("ours").expect("valid");
        assert_eq!(write, argv("raftis.streamnode entries 0"));
        let bad = config_write(&argv("CONFIG SET stream-node-max-entries -1")).expect("ours");
        assert!(matches!(bad, Err(Frame::Error(e)) if e.starts_with(b"ERR CONFIG SET failed")));
        assert!(config_write(&argv("CONFIG SET maxclients 10")).is_none());
        let both = config_write(&argv("CONFIG SET stream-node-max-entries 5 stream-node-max-bytes 4kb"));
        assert_eq!(both.expect("ours").expect("valid"), argv("raftis.streamnode entries 5 bytes 4096"));
        let twice = config_write(&argv("CONFIG SET stream-node-max-entries 5 stream-node-max-entries 6"));
        assert!(matches!(twice, Some(Err(_))));
        assert!(config_write(&argv("CONFIG SET stream-node-max-entries 5 maxclients 10")).is_none());
        assert!(config_write(&argv("CONFIG GET stream-node-max-bytes")).is_none());
    }
}

//! WAIT, WAITAOF and LOLWUT. Under Raft a write is acknowledged once a majority of its group's
//! voters hold it in their fsynced logs, so WAIT never has to wait: it answers at once with the
//! number of replicas known to hold every acknowledged write (the followers whose log matches
//! the commit index, at least a majority minus the leader by construction).

use super::Session;
use crate::cmd::args::{self, err, is};
use crate::protocol::Frame;
use bytes::Bytes;

/// Followers holding every committed entry of this node's group.
fn replicas_holding_writes(s: &Session) -> i64 {
    let st = s.shared.engine.replica().status();
    let voters = st.voter_ids();
    let by_construction = (voters.len() / 2 + 1).saturating_sub(1);
    if !st.is_leader() {
        return by_construction as i64;
    }
    let committed = st.committed_index.unwrap_or(0);
    let matched = |id: &u64| st.replication.as_ref().and_then(|r| r.get(id).copied().flatten()).unwrap_or(0);
    let holding = voters.iter().filter(|id| **id != st.id && matched(id) >= committed).count();
    holding.max(by_construction) as i64
}

/// `getTimeoutFromObjectOrReply` in milliseconds.
fn timeout(arg: &[u8]) -> Result<i64, Frame> {
    let t = crate::protocol::parse_i64(arg).ok_or_else(|| err("ERR timeout is not an integer or out of range"))?;
    if t < 0 {
        return Err(err("ERR timeout is negative"));
    }
    Ok(t)
}

/// `WAIT numreplicas timeout`
pub fn wait(s: &mut Session, argv: &[Bytes]) -> Frame {
    let parsed = args::int(&argv[1]).and_then(|_| timeout(&argv[2]));
    match parsed {
        Ok(_) => Frame::Integer(replicas_holding_writes(s)),
        Err(e) => e,
    }
}

/// `WAITAOF numlocal numreplicas timeout` (Redis 7.2): every acknowledged write is fsynced
/// on this node's group majority, so the local count is 1.
pub fn waitaof(s: &mut Session, argv: &[Bytes]) -> Frame {
    let parsed = args::int(&argv[1]).and_then(|_| args::int(&argv[2])).and_then(|_| timeout(&argv[3]));
    match parsed {
        Ok(_) => Frame::Array(vec![Frame::Integer(1), Frame::Integer(replicas_holding_writes(s))]),
        Err(e) => e,
    }
}

/// `LOLWUT [VERSION v]`: Redis 7.0's (the text line; the drawings of versions 5 and 6 are not
/// reproduced, the same line answers them).
pub fn lolwut(argv: &[Bytes]) -> Frame {
    if argv.len() >= 3 && is(&argv[1], "version") {
        if let Err(e) = args::int(&argv[2]) {
            return e;
        }
    }
    Frame::Verbatim(*b"txt", Bytes::from_static(b"Redis ver. 7.0.15\n"))
}

//! Multi-raft: the keyless keyspace commands that a Redis Cluster master answers for its own
//! slots (DBSIZE, KEYS, RANDOMKEY, FLUSHALL, FLUSHDB) run on every data group this node leads,
//! and their replies are combined, so a client that sums over the masters (as redis-cli
//! `--cluster info` does) gets the true totals. SCAN is not fanned out yet (its cursor would
//! have to name the group): it runs on one group.

use super::client::Client;
use super::shared::Shared;
use crate::cmd::{CommandSpec, Kind};
use crate::protocol::Frame;
use crate::raft::node::ReadPoint;
use bytes::Bytes;

/// The commands fanned out.
const FANNED: &[&str] = &["dbsize", "keys", "randomkey", "flushall", "flushdb"];

/// Whether `spec` runs on every data group this node leads.
pub fn fans_out(shared: &Shared, spec: &CommandSpec) -> bool {
    shared.cluster.is_some() && FANNED.contains(&spec.name)
}

/// Runs `argv` on every data group this node leads (each read behind its own group's read
/// barrier) and combines the replies; the first error is the reply.
pub async fn run(client: &Client, shared: &Shared, spec: &CommandSpec, argv: &[Bytes], now: u64) -> Frame {
    let led = shared.cluster.as_ref().map(|c| c.led_groups()).unwrap_or_default();
    let mut replies = Vec::with_capacity(led.len());
    for group in led {
        let reply = match spec.kind {
            Kind::Read(f) => {
                let mut point = ReadPoint::default();
                shared.engine.read_on(group, client.db, now, f, argv, client.readonly, &mut point).await
            }
            _ => {
                let mut replies = shared.engine.write_many_to(group, client.db, now, vec![argv.to_vec()]).await;
                replies.next().unwrap_or(Frame::Null)
            }
        };
        if matches!(reply, Frame::Error(_)) {
            return reply;
        }
        replies.push(reply);
    }
    combine(spec.name, replies)
}

/// One reply from the replies of several groups.
fn combine(name: &str, replies: Vec<Frame>) -> Frame {
    match name {
        "dbsize" => Frame::Integer(replies.iter().map(|r| if let Frame::Integer(n) = r { *n } else { 0 }).sum()),
        "keys" => Frame::Array(
            replies.into_iter().flat_map(|r| if let Frame::Array(keys) = r { keys } else { Vec::new() }).collect(),
        ),
        "randomkey" => replies.into_iter().find(|r| !matches!(r, Frame::Null)).unwrap_or(Frame::Null),
        _ => Frame::ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_several_groups_combine() {
        let ints = vec![Frame::Integer(2), Frame::Integer(3)];
        assert_eq!(combine("dbsize", ints), Frame::Integer(5));
        assert_eq!(combine("dbsize", vec![]), Frame::Integer(0));
        let keys = vec![Frame::Array(vec![Frame::bulk("a")]), Frame::Array(vec![Frame::bulk("b")])];
        assert_eq!(combine("keys", keys), Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")]));
        assert_eq!(combine("randomkey", vec![Frame::Null, Frame::bulk("k")]), Frame::bulk("k"));
        assert_eq!(combine("randomkey", vec![]), Frame::Null);
        assert_eq!(combine("flushall", vec![Frame::ok(), Frame::ok()]), Frame::ok());
    }
}

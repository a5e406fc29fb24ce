//! Fuzz target: arbitrary bytes parsed as a pipeline of commands and run against one
//! keyspace, writes through `cmd::apply` (as the Raft state machine does) and reads through
//! `cmd::run_read`. No handler may panic, whatever the arguments; every reply must encode.
//! The same commands then run again as one MULTI/EXEC batch on a fresh keyspace (the path
//! transactions take, SELECT included).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use raftis::cmd::{self, Kind};
use raftis::protocol::{encode, parse_command, Frame, Limits, RespVersion};
use raftis::store::{Keyspace, WriteBatch};

/// Bounds the work per input, so slow inputs mean slow handlers, not long pipelines.
const MAX_COMMANDS: usize = 64;
/// A fixed start time; each command advances it so TTLs set earlier can lapse.
const START_MS: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let mut ks = Keyspace::default();
    let mut buf = BytesMut::from(data);
    let mut now_ms = START_MS;
    let mut queued = Vec::new();
    for i in 0..MAX_COMMANDS {
        let Ok(Some(argv)) = parse_command(&mut buf, &Limits::default()) else { break };
        let Some(spec) = argv.first().and_then(|name| cmd::lookup(name)) else { continue };
        if !spec.arity_ok(argv.len()) {
            continue;
        }
        now_ms += 250 * (i as u64 % 7);
        let reply = match spec.kind {
            Kind::Write(_) => {
                queued.push(argv.clone());
                let batch = WriteBatch { db: 0, now_ms, seed: i as u64, cmds: vec![argv], transaction: None };
                cmd::apply(&mut ks, &batch)
            }
            Kind::Read(f) => {
                queued.push(argv.clone());
                cmd::run_read(&ks, 0, now_ms, i as u64, f, &argv)
            }
            Kind::Session if spec.name == "select" => {
                queued.push(argv);
                continue;
            }
            Kind::Session => continue,
        };
        check_encodes(&reply);
    }
    if !queued.is_empty() {
        let batch = WriteBatch { db: 0, now_ms: START_MS, seed: 7, cmds: queued, transaction: Some(Vec::new()) };
        check_encodes(&cmd::apply(&mut Keyspace::default(), &batch));
    }
});

fn check_encodes(reply: &Frame) {
    let mut out = BytesMut::new();
    encode(reply, RespVersion::Resp2, &mut out);
    encode(reply, RespVersion::Resp3, &mut out);
}

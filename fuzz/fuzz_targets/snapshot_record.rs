//! Fuzz target: the snapshot record decoder (`raft::snapshot`'s codec, reached through the
//! `fuzzing` feature) on arbitrary bytes, as a damaged snapshot file or a hostile leader's
//! snapshot chunk could hold: decoding never panics and never allocates from a bogus count;
//! whatever decodes encodes to a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raftis::raft::snapshot::fuzzing::record_round_trip(data);
});

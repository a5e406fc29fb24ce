//! Fuzz target: the write-ahead log's record decoder on arbitrary bytes (what a damaged disk
//! can hand back). Decoding must never panic or allocate from a bogus length, and whatever
//! decodes must re-encode to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftis::raft::wal::record::{Decoded, Record};

fuzz_target!(|data: &[u8]| {
    let mut offset = 0;
    while offset < data.len() {
        match Record::decode(&data[offset..]) {
            Decoded::Ok(record, len) => {
                let mut again = Vec::new();
                record.encode(&mut again);
                assert_eq!(&again[..], &data[offset..offset + len], "re-encoding differs");
                offset += len;
            }
            Decoded::Incomplete | Decoded::Corrupt { .. } => break,
        }
    }
});

//! Fuzz target: RESTORE's payload decoder (`store::rdb`) on arbitrary bytes, sealed with a
//! correct version and checksum so the body is what gets exercised (the raw input is tried
//! as a payload too). Decoding never panics and never allocates from a bogus length; whatever
//! decodes is DUMPed, and that payload must decode to a value whose DUMP is the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftis::store::rdb;

fuzz_target!(|data: &[u8]| {
    let _ = rdb::load(data);
    if let Ok(value) = rdb::load(&rdb::seal(data.to_vec())) {
        let first = rdb::dump(&value);
        let again = rdb::load(&first).expect("a DUMP payload must restore");
        assert_eq!(rdb::dump(&again), first, "DUMP is not a fixed point");
    }
});

//! Fuzz target: the HTTP admin API's POST bodies (`/raft/init`, `/raft/add_learner`,
//! `/raft/change_membership`, `/raft/remove_node`), reached through the `fuzzing` feature:
//! parsing arbitrary bytes as each JSON body and running its checks never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raftis::admin::fuzzing::bodies(data);
});

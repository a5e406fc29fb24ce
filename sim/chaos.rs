//! The chaos scenario (docs/SIMULATION.md): five hosts, three voters to start with, six
//! clients, 20 s of virtual time of faults drawn from the seed, then healing and every check.
//! `MADSIM_TEST_SEED`, `MADSIM_TEST_NUM` and `MADSIM_TEST_JOBS` choose the seeds.

use crate::harness::{run, Params};

#[madsim::test]
async fn chaos_run() {
    match run(Params::chaos("chaos_run")).await {
        Ok(s) => {
            println!("chaos_run: {} ops ({} ok) in {:.1} s of virtual time", s.ops, s.ok, s.virtual_secs);
            if std::env::var_os("SIM_VERBOSE").is_some() {
                println!("fault timeline:\n{}", s.timeline);
            }
        }
        Err(failure) => panic!("{failure}"),
    }
}

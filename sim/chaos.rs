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

/// A hand-broken final state: the harness deletes list `l0` behind the history's back just
/// before the final reads, so every acknowledged RPUSH to it is lost; the run must fail on the
/// lost-writes property, with the reproduce command and the lost write in its report.
#[madsim::test]
async fn chaos_reports_lost_writes() {
    let mut params = Params::chaos("chaos_reports_lost_writes");
    params.erase_before_final_reads = Some("l0");
    let failure = match run(params).await {
        Ok(s) => panic!("a run whose list l0 was erased passed ({} ops)", s.ops),
        Err(failure) => failure,
    };
    let report = failure.to_string();
    assert_eq!(failure.violation.property, crate::check::lost_writes::PROPERTY, "{report}");
    assert!(report.contains("reproduce with: MADSIM_TEST_SEED="), "{report}");
    assert!(report.contains("lacks acknowledged RPUSH"), "{report}");
    assert!(failure.violation.ops.iter().any(|op| op.kind.key() == "l0"), "{report}");
}

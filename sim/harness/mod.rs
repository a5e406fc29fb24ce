//! The chaos harness: a seeded run of production nodes under client load and faults, then
//! healing and the checks (docs/SIMULATION.md, "The chaos scenario"). [`run`] does one run on
//! the current simulation's seed and returns what broke, with the command that replays it.

pub mod faults;
pub mod finale;
pub mod legacy;
pub mod lists;
pub mod migrations;
pub mod nodes;
pub mod swizzle;
pub mod tuning;
pub mod workload;

use crate::check::{check_history, check_lost_writes, check_queues, check_streams, Violation};
use faults::{Driver, Rates, Timeline};
use nodes::Cluster;
use raftis::rt::bugs::{self, Bug};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tuning::Tuning;
use workload::Shared;

/// What one run looks like.
#[derive(Debug, Clone)]
pub struct Params {
    /// The test's name, for the reproduce command.
    pub test: &'static str,
    /// Simulated hosts with a node each (the voters first, the rest wait to be added).
    pub hosts: u64,
    pub voters: u64,
    /// Logical clients (spread over three client hosts).
    pub clients: u32,
    /// Virtual time of the fault phase.
    pub fault_time: Duration,
    /// The fault mix; None draws one from the seed.
    pub rates: Option<Rates>,
    /// The nodes' settings; None draws them from the seed.
    pub tuning: Option<Tuning>,
    /// Planted bugs switched on for this run.
    pub bugs: Vec<Bug>,
    /// A list key the harness deletes behind the history's back after healing, just before
    /// the final reads: a hand-broken final state, for the test that the run reports the
    /// lost writes. None in every real run.
    pub erase_before_final_reads: Option<&'static str>,
    /// Data groups besides MetaRaft (0: one group holds every slot). A sharded run routes by
    /// `-MOVED`, checks convergence per data group and the slot ownership of every group.
    pub num_groups: u32,
}

impl Params {
    /// The standard chaos run.
    pub fn chaos(test: &'static str) -> Params {
        Params {
            test,
            hosts: 5,
            voters: 3,
            clients: 6,
            fault_time: Duration::from_secs(20),
            rates: None,
            tuning: None,
            bugs: Vec::new(),
            erase_before_final_reads: None,
            num_groups: 0,
        }
    }
}

/// Figures of a run that passed.
#[derive(Debug, Clone)]
pub struct Summary {
    pub timeline: String,
    pub ops: usize,
    pub ok: usize,
    pub virtual_secs: f64,
}

/// A run that broke a property, with everything needed to replay and read it.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub test: &'static str,
    pub rates: String,
    pub tuning: String,
    pub timeline: String,
    pub violation: Violation,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} failed; reproduce with: MADSIM_TEST_SEED={} cargo sim {}",
            self.seed, self.seed, self.test
        )?;
        writeln!(f, "fault rates: {}", self.rates)?;
        writeln!(f, "node settings: {}", self.tuning)?;
        writeln!(f, "fault timeline:\n{}", self.timeline)?;
        write!(f, "{}", self.violation)
    }
}

/// Runs the scenario on the current simulation's seed.
pub async fn run(p: Params) -> Result<Summary, Box<Failure>> {
    let seed = madsim::runtime::Handle::current().seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    bugs::set(&p.bugs);
    let mut rates = p.rates.clone().unwrap_or_else(|| Rates::draw(&mut rng));
    if let Ok(names) = std::env::var("SIM_FAULTS") {
        // Debugging aid: only these kinds (e.g. SIM_FAULTS=Kill,Partition), equally weighted.
        let kinds: Vec<faults::Kind> =
            faults::Kind::ALL.into_iter().filter(|k| names.split(',').any(|n| n == format!("{k:?}"))).collect();
        rates = Rates::only(&kinds);
    }
    let tuning = p.tuning.clone().unwrap_or_else(|| Tuning::draw(&mut rng));
    let start = tokio::time::Instant::now();
    let timeline = Timeline::new(start);
    // Simulated blocking work (snapshot builds, log flushes, recovery) takes virtual time up to
    // a bound the seed picks (`raftis::rt` work time); printed with the node settings.
    let settings = format!("{tuning}, blocking work up to {} us", raftis::rt::blocking_work_bound_us(seed));
    let sharding = match p.num_groups {
        0 => String::new(),
        n => format!(", {n} data groups of 3 voters"),
    };
    timeline.note(format!("{} hosts, voters 1..={}{sharding}, {settings}", p.hosts, p.voters));

    let cluster = Cluster::build(p.hosts, tuning.clone(), p.num_groups);
    cluster.form(p.voters).await;
    let shared = Shared::new((1..=p.voters).collect(), start);
    let handle = madsim::runtime::Handle::current();
    let hosts: Vec<_> = (1..=3)
        .map(|h| {
            handle.create_node().name(format!("clients-{h}")).ip(format!("10.0.1.{h}").parse().expect("ip")).build()
        })
        .collect();
    let clients: Vec<_> = (0..p.clients)
        .map(|c| hosts[c as usize % hosts.len()].spawn(workload::client(c, rng.gen(), shared.clone())))
        .collect();

    let mut driver = Driver::new(cluster.clone(), shared.clone(), rng.gen(), timeline.clone());
    // Slot migrations join the sharded runs (`SIM_MIGRATIONS=0` leaves them out).
    let migrating = (p.num_groups > 0 && migrations::enabled()).then(|| {
        let end = tokio::time::Instant::now() + p.fault_time;
        tokio::spawn(migrations::run(cluster.clone(), seed, timeline.clone(), end, hosts[0].clone()))
    });
    driver.run(&rates, p.fault_time).await;
    driver.heal().await;
    if let Some(task) = migrating {
        // Its last command may still be under way (see `migrations::run`).
        let _ = task.await;
    }

    let shared2 = shared.clone();
    let live = hosts[0].spawn(async move { finale::liveness(&shared2).await }).await.expect("liveness task");
    shared.stop.store(true, Ordering::SeqCst);
    for c in clients {
        let _ = c.await;
    }
    let (cluster2, shared2, erase) = (cluster.clone(), shared.clone(), p.erase_before_final_reads);
    let timeline2 = timeline.clone();
    let result = match live {
        Ok(()) => hosts[0]
            .spawn(async move { finish(&cluster2, &shared2, erase, &timeline2).await })
            .await
            .expect("final task"),
        Err(v) => Err(v),
    };
    let history = shared.history();
    if let Ok(key) = std::env::var("SIM_DUMP_KEY") {
        // Debugging aid: every operation on one key.
        for op in history.for_key(&key) {
            println!("{op}");
        }
    }
    // The lost-writes check first: it is cheap, and when the final state lacks an acknowledged
    // write its report names that write and the final read, where the linearizability and list
    // checks (which see the same reads) would report a less direct symptom.
    let result = result
        .and_then(|final_from_ns| {
            check_lost_writes(&history, final_from_ns)?;
            check_queues(&history, final_from_ns)?;
            check_streams(&history, final_from_ns)
        })
        .and_then(|()| check_history(&history))
        .and_then(|()| lists::check(&history));
    let result = result.and_then(|()| start_errors(&cluster)).and_then(|()| wal_records(&cluster));
    match result {
        Ok(()) => Ok(Summary {
            timeline: timeline.to_string(),
            ops: history.ops.len(),
            ok: history.ops.iter().filter(|o| matches!(o.outcome, crate::history::Outcome::Ok(_))).count(),
            virtual_secs: start.elapsed().as_secs_f64(),
        }),
        Err(violation) => Err(Box::new(Failure {
            seed,
            test: p.test,
            rates: rates.to_string(),
            tuning: settings,
            timeline: timeline.to_string(),
            violation,
        })),
    }
}

/// Once the clients have stopped: convergence and the final reads. Returns the virtual time
/// (ns since the start) the final reads began, for the lost-writes check.
async fn finish(
    cluster: &Cluster,
    shared: &Shared,
    erase: Option<&'static str>,
    timeline: &Timeline,
) -> Result<u64, Violation> {
    start_errors(cluster)?;
    if cluster.num_groups > 0 {
        legacy::complete_open_slots(cluster, timeline).await?;
        timeline.note(finale::migrations_settle(cluster).await?);
        finale::group_convergence(cluster).await?;
        finale::ownership(cluster)?;
    } else {
        finale::convergence(cluster).await?;
    }
    timeline.note(finale::quiesced(cluster));
    if let Some(key) = erase {
        finale::erase(shared, key).await?;
    }
    let final_from_ns = shared.now_ns();
    finale::final_reads(shared).await?;
    Ok(final_from_ns)
}

/// Every node's WAL, as written (`check/wal_log.rs`): each entry record follows the log's last
/// live entry, so no truncation or record was lost on the way to the disk.
/// A run whose disks hold no WAL at all means the check looked in the wrong place: a failure,
/// not a pass.
fn wal_records(cluster: &Cluster) -> Result<(), Violation> {
    let mut read = 0;
    for id in cluster.ids() {
        for (dir, segments) in cluster.wal_segments(id) {
            read += segments.len();
            crate::check::wal_log::check(&format!("node {id}'s {dir}"), &segments)?;
        }
    }
    if read == 0 {
        let detail = "no node's disk holds a WAL segment: nothing was checked".to_string();
        return Err(Violation { property: crate::check::wal_log::PROPERTY, detail, ops: Vec::new() });
    }
    Ok(())
}

/// A node incarnation that could not start on its disk is a finding.
fn start_errors(cluster: &Cluster) -> Result<(), Violation> {
    let errors = cluster.start_errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(e) = errors.first() {
        return Err(Violation { property: "nodes restart", detail: e.clone(), ops: Vec::new() });
    }
    let unsynced = cluster.unsynced_after_start.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match unsynced.first() {
        Some(e) => {
            Err(Violation { property: "recovery makes durable what it relies on", detail: e.clone(), ops: Vec::new() })
        }
        None => Ok(()),
    }
}

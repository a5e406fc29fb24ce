//! Node settings drawn per seed, so that every deadline and threshold path of the node runs in
//! some seeds: with the production timings a fault of a few seconds never outlasts the 10 s
//! write deadline, and a snapshot every 10 000 entries never happens in a 20 s run. Half the
//! seeds keep production's Raft timings and deadlines (the common case stays the most
//! tested); the other half draw each within its valid range (`Config::validate`), short
//! deadlines included. The draw is printed with a failing seed and in the timeline.

use raftis::config::Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// The settings a run's nodes share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// A snapshot every this many applied entries.
    pub snapshot_logs: u64,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// How long a request waits for a leader to be known.
    pub leader_wait_ms: u64,
    /// A write's deadline (then its outcome is unknown to the client).
    pub write_timeout_ms: u64,
    /// A linearizable read's deadline.
    pub read_timeout_ms: u64,
    /// An idle group goes quiet after this long (0: never).
    pub quiesce_ms: u64,
}

impl Tuning {
    /// Production's timings and deadlines with `snapshot_logs`.
    pub fn production(snapshot_logs: u64) -> Tuning {
        let d = Config::default();
        Tuning {
            snapshot_logs,
            heartbeat_ms: d.raft_heartbeat_ms,
            election_min_ms: d.raft_election_timeout_min_ms,
            election_max_ms: d.raft_election_timeout_max_ms,
            leader_wait_ms: d.raft_leader_wait_ms,
            write_timeout_ms: d.raft_write_timeout_ms,
            read_timeout_ms: d.raft_read_timeout_ms,
            quiesce_ms: d.raft_quiesce_ms,
        }
    }

    /// One seed's settings.
    pub fn draw(rng: &mut ChaCha8Rng) -> Tuning {
        // Mostly frequent snapshots (install, purge and compaction paths), sometimes none.
        let snapshot_logs = if rng.gen_bool(0.8) { rng.gen_range(20..=200) } else { rng.gen_range(1_000..=20_000) };
        // Drawn from a generator of its own, so that adding it moved no other draw.
        let mut side = ChaCha8Rng::seed_from_u64(rng.clone().gen::<u64>() ^ 0x7175_6965_7363_6521);
        // Short idle spans half the time: groups then go quiet between the workload's bursts,
        // and faults strike quiet groups.
        let quiesce_ms = match side.gen_range(0..4) {
            0 => 0,
            // Production's default (the value measured in docs/PERFORMANCE.md).
            1 => 2_000,
            _ => side.gen_range(50..=1_000),
        };
        if rng.gen_bool(0.5) {
            return Tuning { quiesce_ms, ..Tuning::production(snapshot_logs) };
        }
        let heartbeat_ms = rng.gen_range(20..=150);
        let election_min_ms = heartbeat_ms * rng.gen_range(3..=8);
        let election_max_ms = election_min_ms + rng.gen_range(election_min_ms / 4..=election_min_ms).max(1);
        Tuning {
            snapshot_logs,
            heartbeat_ms,
            election_min_ms,
            election_max_ms,
            leader_wait_ms: rng.gen_range(100..=5_000),
            // Short deadlines half the time: faults then outlast them and the timed-out paths run.
            write_timeout_ms: if rng.gen_bool(0.5) {
                rng.gen_range(100..=1_500)
            } else {
                rng.gen_range(1_500..=10_000)
            },
            read_timeout_ms: rng.gen_range(100..=5_000),
            quiesce_ms,
        }
    }

    /// `config` with these settings.
    pub fn apply(&self, config: Config) -> Config {
        Config {
            snapshot_logs: self.snapshot_logs,
            raft_heartbeat_ms: self.heartbeat_ms,
            raft_election_timeout_min_ms: self.election_min_ms,
            raft_election_timeout_max_ms: self.election_max_ms,
            raft_leader_wait_ms: self.leader_wait_ms,
            raft_write_timeout_ms: self.write_timeout_ms,
            raft_read_timeout_ms: self.read_timeout_ms,
            raft_quiesce_ms: self.quiesce_ms,
            ..config
        }
    }
}

impl fmt::Display for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot every {} entries, heartbeat {} ms, election {}-{} ms, leader wait {} ms, \
             write deadline {} ms, read deadline {} ms, quiet after {} ms idle",
            self.snapshot_logs,
            self.heartbeat_ms,
            self.election_min_ms,
            self.election_max_ms,
            self.leader_wait_ms,
            self.write_timeout_ms,
            self.read_timeout_ms,
            self.quiesce_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_draw_is_a_valid_configuration_and_both_halves_occur() {
        let (mut production, mut drawn) = (0, 0);
        for seed in 0..500 {
            let t = Tuning::draw(&mut ChaCha8Rng::seed_from_u64(seed));
            let config = t.apply(Config::default());
            assert_eq!(config.validate(), Ok(()), "seed {seed}: {t}");
            if t == (Tuning { quiesce_ms: t.quiesce_ms, ..Tuning::production(t.snapshot_logs) }) {
                production += 1;
            } else {
                drawn += 1;
                assert!(t.write_timeout_ms >= 100 && t.read_timeout_ms >= 100, "{t}");
            }
        }
        assert!(production > 150 && drawn > 150, "production {production}, drawn {drawn}");
        let quiet = (0..500).filter(|s| Tuning::draw(&mut ChaCha8Rng::seed_from_u64(*s)).quiesce_ms > 0).count();
        assert!(quiet > 300 && quiet < 450, "{quiet} of 500 seeds quiesce");
    }
}

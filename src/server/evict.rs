//! `maxmemory`: whether a write may run, and eviction. Past the limit a write that may grow
//! memory (`denyoom`) is refused with `-OOM` under `noeviction`; under an eviction policy the
//! leader first picks victims by the policy and deletes them through the log (the internal
//! `raftis.evict key version ...`, applied alike by every replica: a key written since it was
//! picked keeps its new value), then lets the write in once memory is back under the limit.
//! A background round (with active expiry) evicts too, for writes that reached the leader
//! through another node.
//!
//! In a multi-raft cluster memory is the node's and holds its copies of every data group it
//! runs, most of them led elsewhere (by nodes whose own memory may be under their limit). So
//! a node over its limit evicts from each data group it holds (a share of what is over from
//! each), choosing victims in its copy and writing their deletion through the group's log
//! (forwarded to the group's leader where it does not lead: the versions make a victim
//! written meanwhile stay); slots frozen or importing for a migration are left alone (a batch
//! holding one would be refused whole at apply). Outside a cluster only the leader evicts (its
//! followers hold the same data and follow its log).
//!
//! Victims are chosen only on the leader and only from what it has applied; the choice uses
//! the engine's seeded random source. raftis does not track reads (a read never changes the
//! keyspace), so the LRU policies take the least recently *written* of `maxmemory-samples`
//! sampled keys, and the LFU policies, which would need read counts, do the same.

use super::memory::{note_evicted, used_memory};
use super::shared::{now_ms, Shared, Stats};
use crate::store::{Keyspace, WriteBatch};
use bytes::Bytes;
use rand::{Rng, SeedableRng};

/// The internal command that deletes the listed victims (`key version` pairs).
pub const EVICT_COMMAND: &str = "raftis.evict";
/// Redis's reply to a write refused past `maxmemory`.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// At most this many victims per database in one eviction entry.
const VICTIMS_PER_ROUND: usize = 1024;
/// A round frees what is over the limit plus this much, so the next writes find room.
const HEADROOM: u64 = 1 << 20;
/// Rounds one write may wait for before it is refused anyway.
const MAX_ROUNDS: usize = 64;

/// Which keys an eviction policy considers and how it ranks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    NoEviction,
    /// Every key (`allkeys-*`) or only keys with a TTL (`volatile-*`).
    Evict {
        volatile: bool,
        rank: Rank,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rank {
    /// LRU and LFU: the least recently written of the sampled keys.
    LeastRecentlyWritten,
    Random,
    /// volatile-ttl: the key whose TTL ends first.
    SoonestExpiry,
}

fn policy(name: &str) -> Policy {
    let (volatile, rank) = match name {
        "allkeys-lru" | "allkeys-lfu" => (false, Rank::LeastRecentlyWritten),
        "allkeys-random" => (false, Rank::Random),
        "volatile-lru" | "volatile-lfu" => (true, Rank::LeastRecentlyWritten),
        "volatile-random" => (true, Rank::Random),
        "volatile-ttl" => (true, Rank::SoonestExpiry),
        _ => return Policy::NoEviction,
    };
    Policy::Evict { volatile, rank }
}

/// Whether a write that may grow memory can run now (after evicting, when the policy says
/// so and this node evicts: see [`eviction_groups`]). `false`: reply [`OOM`].
pub async fn admit_write(shared: &Shared) -> bool {
    let (max, name) = {
        let c = shared.config();
        (c.maxmemory, c.maxmemory_policy.clone())
    };
    if max == 0 || used_memory(shared) <= max {
        return true;
    }
    if policy(&name) == Policy::NoEviction {
        return false;
    }
    if eviction_groups(shared).await.is_empty() {
        // The leader evicts for everyone; a follower's copy follows its log.
        return true;
    }
    evict_until_under(shared, max).await
}

/// The groups this node evicts from: in a multi-raft cluster every data group it holds (see
/// the module header), else group 0 while it leads.
async fn eviction_groups(shared: &Shared) -> Vec<u64> {
    let held = shared.engine.keyspace_groups().map(|r| r.group());
    if shared.cluster.is_some() {
        return held.collect();
    }
    let mut led = Vec::new();
    for group in held {
        if shared.engine.group(group).is_leader().await {
            led.push(group);
        }
    }
    led
}

/// The background round: evicts while memory is past the limit (from [`eviction_groups`]).
pub async fn background_round(shared: &Shared) {
    let (max, name) = {
        let c = shared.config();
        (c.maxmemory, c.maxmemory_policy.clone())
    };
    if max == 0 || policy(&name) == Policy::NoEviction || used_memory(shared) <= max {
        return;
    }
    evict_until_under(shared, max).await;
}

/// Evicts round after round until memory is under `max`; `false` if it is still over when
/// nothing is left to evict or the rounds run out.
async fn evict_until_under(shared: &Shared, max: u64) -> bool {
    for _ in 0..MAX_ROUNDS {
        let groups = eviction_groups(shared).await;
        if groups.is_empty() {
            break;
        }
        // Each group gives its share of what is over.
        let share = (used_memory(shared).saturating_sub(max) + HEADROOM).div_ceil(groups.len() as u64);
        let mut deleted = 0;
        for group in groups {
            deleted += evict_round(shared, group, share).await;
        }
        if deleted == 0 {
            break;
        }
        if used_memory(shared) <= max {
            return true;
        }
    }
    used_memory(shared) <= max
}

/// Picks victims worth about `bytes` in every database of group `group` and proposes their
/// deletion to it; the number deleted.
async fn evict_round(shared: &Shared, group: u64, bytes: u64) -> usize {
    let (name, samples) = {
        let c = shared.config();
        (c.maxmemory_policy.clone(), c.maxmemory_samples)
    };
    let Policy::Evict { volatile, rank } = policy(&name) else { return 0 };
    let now = now_ms();
    let mut rng = rand::rngs::StdRng::seed_from_u64(shared.engine.next_seed());
    // None: a script's apply holds the keyspace; nothing is evicted this round.
    let control = shared.engine.group(group).control();
    let writable = |k: &[u8]| control.writable(crate::cmd::cluster::slot::key_slot(k));
    let picks = shared
        .engine
        .try_with_keyspace_of(group, |ks| pick_victims(ks, (volatile, rank), samples, bytes, now, &mut rng, &writable));
    let Some(picks) = picks else { return 0 };
    let mut deleted = 0;
    for (db, victims, bytes) in picks {
        let picked = victims.len();
        let mut argv = vec![Bytes::from_static(EVICT_COMMAND.as_bytes())];
        for (key, version) in victims {
            argv.push(key);
            argv.push(Bytes::from(version.to_string()));
        }
        let batch = WriteBatch { db: db as u32, now_ms: now, seed: 0, cmds: vec![argv], transaction: None };
        if let crate::protocol::Frame::Integer(n) = shared.engine.write_to(group, batch).await {
            deleted += n as usize;
            Stats::add(&shared.stats.evicted_keys, n as u64);
            note_evicted(shared, bytes * n as u64 / picked.max(1) as u64);
        }
    }
    deleted
}

/// One database's victims: its index, the keys with the versions they had when chosen, and
/// their estimated footprint.
type Victims = (usize, Vec<(Bytes, u64)>, u64);

/// Victims worth about `bytes` (by their footprint), at most [`VICTIMS_PER_ROUND`] per
/// database, with the versions they have now; only keys `writable` allows.
fn pick_victims(
    ks: &Keyspace,
    (volatile, rank): (bool, Rank),
    samples: usize,
    bytes: u64,
    now: u64,
    rng: &mut impl Rng,
    writable: &dyn Fn(&[u8]) -> bool,
) -> Vec<Victims> {
    let mut out = Vec::new();
    // Shared by the closure that records a victim and the loops that stop at `bytes`.
    let freed = std::cell::Cell::new(0u64);
    for (i, db) in ks.dbs().iter().enumerate() {
        if freed.get() >= bytes {
            break;
        }
        let with_version = |k: &Bytes| {
            if !writable(k) {
                return None;
            }
            let e = db.entry(k)?;
            freed.set(freed.get() + e.value.footprint(k) as u64);
            Some((k.clone(), e.version()))
        };
        let victims: Vec<(Bytes, u64)> = match rank {
            Rank::SoonestExpiry => {
                let mut victims = Vec::new();
                for k in db.soonest_expiring().take(VICTIMS_PER_ROUND) {
                    victims.extend(with_version(k));
                    if freed.get() >= bytes {
                        break;
                    }
                }
                victims
            }
            _ => {
                let tries = if rank == Rank::LeastRecentlyWritten { samples.clamp(1, 64) } else { 1 };
                let mut victims: Vec<(Bytes, u64)> = Vec::new();
                for _ in 0..VICTIMS_PER_ROUND.min(db.len()) {
                    if freed.get() >= bytes {
                        break;
                    }
                    let best = (0..tries)
                        .filter_map(|_| match volatile {
                            true => db.pick_volatile(rng.gen()),
                            false => db.pick_live(rng.gen(), now),
                        })
                        .filter(|k| writable(k) && !victims.iter().any(|(v, _)| v == *k))
                        .filter_map(|k| db.entry(k).map(|e| (k, e.version())))
                        .min_by_key(|(_, version)| *version);
                    victims.extend(best.and_then(|(k, _)| with_version(k)));
                }
                victims
            }
        };
        if !victims.is_empty() {
            let before: u64 = out.iter().map(|(_, _, b)| *b).sum();
            out.push((i, victims, freed.get() - before));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::apply;

    fn keyspace(lines: &[&str]) -> Keyspace {
        let mut ks = Keyspace::default();
        for line in lines {
            let argv: Vec<Bytes> = line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
            apply(&mut ks, &WriteBatch { db: 0, now_ms: 1, seed: 1, cmds: vec![argv], transaction: None });
        }
        ks
    }

    fn victims(ks: &Keyspace, policy_name: &str, samples: usize, bytes: u64) -> Vec<String> {
        victims_of(ks, policy_name, samples, bytes, &|_| true)
    }

    fn victims_of(
        ks: &Keyspace,
        policy_name: &str,
        samples: usize,
        bytes: u64,
        writable: &dyn Fn(&[u8]) -> bool,
    ) -> Vec<String> {
        let Policy::Evict { volatile, rank } = policy(policy_name) else { panic!("an eviction policy") };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let picks = pick_victims(ks, (volatile, rank), samples, bytes, 1, &mut rng, writable);
        picks.iter().flat_map(|(_, v, _)| v.iter().map(|(k, _)| String::from_utf8_lossy(k).into_owned())).collect()
    }

    #[test]
    fn victims_follow_the_policy_and_stop_at_the_bytes_wanted() {
        let ks = keyspace(&["set old 1", "set mid 1", "set soon 1 px 100", "set late 1 px 900", "set new 1"]);
        // A few bytes wanted: one victim.
        assert_eq!(victims(&ks, "volatile-ttl", 5, 1), ["soon"]);
        // volatile-* never pick a key without a TTL.
        let all_volatile = victims(&ks, "volatile-random", 5, 10_000);
        assert!(
            !all_volatile.is_empty() && all_volatile.iter().all(|k| k == "soon" || k == "late"),
            "{all_volatile:?}"
        );
        // With many samples, LRU finds the least recently written key first.
        assert_eq!(victims(&ks, "allkeys-lru", 64, 1), ["old"]);
        let everything = victims(&ks, "allkeys-random", 5, u64::MAX);
        assert!(everything.len() <= 5, "{everything:?}");
    }

    #[test]
    fn keys_of_slots_not_writable_here_are_never_victims() {
        // A slot frozen or importing for a migration: its keys stay (a batch holding one
        // would be refused whole at apply).
        let ks = keyspace(&["set a 1", "set b 1 px 100", "set c 1 px 200", "set d 1"]);
        let not_b_or_d = |k: &[u8]| k != b"b" && k != b"d";
        for policy_name in ["allkeys-random", "allkeys-lru", "volatile-ttl", "volatile-random"] {
            let picked = victims_of(&ks, policy_name, 5, u64::MAX, &not_b_or_d);
            assert!(!picked.is_empty() && picked.iter().all(|k| k == "a" || k == "c"), "{policy_name}: {picked:?}");
        }
        assert!(victims_of(&ks, "allkeys-random", 5, u64::MAX, &|_| false).is_empty());
    }

    #[test]
    fn policy_names_map_to_candidates_and_ranks() {
        assert_eq!(policy("noeviction"), Policy::NoEviction);
        assert_eq!(policy("allkeys-lfu"), Policy::Evict { volatile: false, rank: Rank::LeastRecentlyWritten });
        assert_eq!(policy("volatile-random"), Policy::Evict { volatile: true, rank: Rank::Random });
        assert_eq!(policy("volatile-ttl"), Policy::Evict { volatile: true, rank: Rank::SoonestExpiry });
    }
}

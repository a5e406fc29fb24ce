//! Active expiry: a background task that finds keys whose TTL has passed and deletes them
//! through the ordinary write path (an internal command replicated like any write), so every
//! replica deletes the same keys at the same point of the log.

use super::shared::{now_ms, Shared, Stats};
use crate::store::WriteBatch;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// The internal command that deletes the listed keys if they are expired at apply time.
pub const EXPIRE_COMMAND: &str = crate::cmd::keys::EXPIRE_DUE;
/// Keys deleted per database per round (Redis's active expiry is bounded the same way).
const KEYS_PER_ROUND: usize = 200;

/// Spawns the expiry loop; it stops when the node shuts down.
pub fn spawn_active_expiry(shared: Arc<Shared>) {
    tokio::spawn(async move {
        let mut shutdown = shared.shutdown_signal();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            expire_round(&shared).await;
            super::evict::background_round(&shared).await;
        }
    });
}

async fn expire_round(shared: &Shared) {
    let groups: Vec<u64> = shared.engine.keyspace_groups().map(|r| r.group()).collect();
    for group in groups {
        expire_group(shared, group).await;
    }
}

/// One round of group `group` (every group that holds keys expires its own).
async fn expire_group(shared: &Shared, group: u64) {
    // Only the leader proposes deletions: followers apply them from the log.
    if !shared.engine.group(group).is_leader().await {
        return;
    }
    let now = now_ms();
    let due: Option<Vec<(usize, Vec<Bytes>)>> = shared.engine.try_with_keyspace_of(group, |ks| {
        ks.dbs()
            .iter()
            .enumerate()
            .map(|(i, db)| (i, db.due_keys(now, KEYS_PER_ROUND)))
            .filter(|(_, k)| !k.is_empty())
            .collect()
    });
    // None: a script's apply holds the keyspace; the next round looks again.
    let Some(due) = due else { return };
    // While a slot migration freezes or imports slots here, their due keys wait (a batch
    // holding one would be refused whole at apply and stall every other key's expiry).
    let control = shared.engine.group(group).control();
    let blocked = !control.frozen.is_empty() || !control.importing.is_empty();
    for (db, mut keys) in due {
        if blocked {
            keys.retain(|k| control.writable(crate::cmd::cluster::slot::key_slot(k)));
            if keys.is_empty() {
                continue;
            }
        }
        let mut argv = vec![Bytes::from_static(EXPIRE_COMMAND.as_bytes())];
        argv.extend(keys);
        let batch = WriteBatch { db: db as u32, now_ms: now, seed: 0, cmds: vec![argv], transaction: None };
        if let crate::protocol::Frame::Integer(n) = shared.engine.write_to(group, batch).await {
            Stats::add(&shared.stats.expired_keys, n as u64);
        }
    }
}

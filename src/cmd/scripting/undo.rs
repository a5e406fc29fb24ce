//! A script's undo log: what each key looked like before the script's first change to it, so
//! that a script stopped by the step budget leaves no trace (Redis would leave its writes;
//! raftis cannot stop a replicated script half way on one replica and not the others, so it
//! undoes it everywhere). A whole-database command saves every database once instead.

use crate::cmd::{args, key_indexes, CommandSpec};
use crate::store::{Db, Entry, Keyspace};
use bytes::Bytes;
use std::collections::BTreeSet;

/// The saved state of one script run.
#[derive(Default)]
pub struct Undo {
    /// (database, key, entry before the first change), in the order saved.
    saved: Vec<(usize, Bytes, Option<Entry>)>,
    seen: BTreeSet<(usize, Bytes)>,
    /// Every database, saved before the first whole-database command.
    all: Option<Vec<Db>>,
    /// How many keyspace events were recorded before the script's first write: an undone
    /// script announces nothing.
    events_before: Option<usize>,
}

impl Undo {
    /// Saves what write command `argv` (run in database `db`) may change.
    pub fn before(&mut self, ks: &Keyspace, db: usize, spec: &CommandSpec, argv: &[Bytes]) {
        self.events_before.get_or_insert(ks.notify.recorded());
        if self.all.is_some() {
            return;
        }
        match spec.name {
            "flushall" | "flushdb" | "swapdb" => {
                self.all = Some(ks.dbs().to_vec());
                return;
            }
            "move" => self.save(ks, target_db(ks, argv.get(2)).unwrap_or(db), &argv[1]),
            "copy" => {
                let at = argv.iter().skip(3).position(|a| args::is(a, "db")).map(|i| i + 4);
                let dest_db = at.and_then(|i| target_db(ks, argv.get(i))).unwrap_or(db);
                self.save(ks, dest_db, &argv[2]);
            }
            _ => {}
        }
        for i in key_indexes(spec, argv) {
            if let Some(key) = argv.get(i) {
                self.save(ks, db, key);
            }
        }
    }

    fn save(&mut self, ks: &Keyspace, db: usize, key: &Bytes) {
        if db < ks.db_count() && self.seen.insert((db, key.clone())) {
            self.saved.push((db, key.clone(), ks.db(db).raw(key).cloned()));
        }
    }

    /// Puts everything saved back, newest first.
    pub fn rollback(self, ks: &mut Keyspace) {
        if let Some(n) = self.events_before {
            ks.notify.forget_after(n);
        }
        if let Some(dbs) = self.all {
            ks.restore_dbs(dbs);
        }
        for (db, key, entry) in self.saved.into_iter().rev() {
            ks.db_mut(db).restore(key, entry);
        }
    }
}

fn target_db(ks: &Keyspace, arg: Option<&Bytes>) -> Option<usize> {
    let n = args::int(arg?).ok()?;
    (n >= 0 && (n as usize) < ks.db_count()).then_some(n as usize)
}

//! The replicated scripting state: the script cache (EVAL / SCRIPT LOAD bodies by their SHA-1)
//! and the step budget every script runs under (`lua-max-steps`). Both change only by applying
//! log entries, and travel in snapshots (frame kind 5), so EVALSHA finds a script on every
//! replica, after a restart and after a failover, and a runaway script stops at the same step
//! everywhere.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default step budget: about a tenth of a second of plain Lua on this machine, so a
/// runaway script holds the apply loop (and with it Raft's heartbeats) only briefly.
pub const DEFAULT_MAX_STEPS: u64 = 10_000_000;
/// The smallest budget CONFIG SET accepts.
pub const MIN_MAX_STEPS: u64 = 1000;

/// The script cache and the step budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Scripts {
    /// Bodies by lowercase hex SHA-1 (40 bytes), ordered so iteration is the same everywhere.
    bodies: BTreeMap<Bytes, Bytes>,
    /// The step budget of every script (VM instructions, see `crate::script`).
    pub max_steps: u64,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts { bodies: BTreeMap::new(), max_steps: DEFAULT_MAX_STEPS }
    }
}

/// What a snapshot holds of [`Scripts`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptsImage {
    pub bodies: Vec<(Bytes, Bytes)>,
    pub max_steps: u64,
}

impl Scripts {
    /// The body cached under `sha` (any case), if any.
    pub fn get(&self, sha: &[u8]) -> Option<&Bytes> {
        if sha.len() != 40 {
            return None;
        }
        self.bodies.get(sha.to_ascii_lowercase().as_slice())
    }

    /// Caches `body` under its SHA-1 (`sha`, lowercase hex).
    pub fn insert(&mut self, sha: Bytes, body: Bytes) {
        self.bodies.insert(sha, body);
    }

    pub fn contains(&self, sha: &[u8]) -> bool {
        self.get(sha).is_some()
    }

    /// SCRIPT FLUSH.
    pub fn flush(&mut self) {
        self.bodies.clear();
    }

    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// True when nothing differs from a fresh keyspace (no snapshot frame needed).
    pub fn is_default(&self) -> bool {
        self.bodies.is_empty() && self.max_steps == DEFAULT_MAX_STEPS
    }

    /// Bytes held by the cached bodies (INFO's `used_memory_scripts`).
    pub fn memory(&self) -> usize {
        self.bodies.values().map(|b| b.len() + 40).sum()
    }

    pub fn image(&self) -> ScriptsImage {
        ScriptsImage {
            bodies: self.bodies.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            max_steps: self.max_steps,
        }
    }

    /// Rebuilds the state from a snapshot's image; refuses a malformed one.
    pub fn from_image(image: ScriptsImage) -> Result<Scripts, String> {
        if image.max_steps < MIN_MAX_STEPS {
            return Err(format!("script step budget {} below {MIN_MAX_STEPS}", image.max_steps));
        }
        let mut bodies = BTreeMap::new();
        for (sha, body) in image.bodies {
            if sha.len() != 40 || !sha.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
                return Err("a cached script's SHA-1 is not 40 lowercase hex digits".into());
            }
            bodies.insert(sha, body);
        }
        Ok(Scripts { bodies, max_steps: image.max_steps })
    }
}

/// The lowercase hex SHA-1 of a script body (Redis's script names).
pub fn sha1_hex(body: &[u8]) -> String {
    super::digest::to_hex(&super::digest::sha1(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_images_round_trip() {
        let mut s = Scripts::default();
        let sha = sha1_hex(b"return 1");
        assert_eq!(sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        s.insert(Bytes::from(sha.clone()), Bytes::from_static(b"return 1"));
        assert!(s.contains(sha.to_ascii_uppercase().as_bytes()));
        assert!(!s.contains(b"e0e1"));
        s.max_steps = 5000;
        assert_eq!(Scripts::from_image(s.image()), Ok(s.clone()));
        let mut bad = s.image();
        bad.bodies[0].0 = Bytes::from_static(b"not a sha");
        assert!(Scripts::from_image(bad).is_err());
        let mut low = s.image();
        low.max_steps = 1;
        assert!(Scripts::from_image(low).is_err());
    }
}

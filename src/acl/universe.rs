//! The commands ACL rules speak of: Redis 7.0's commands and subcommands (as its own table in
//! `cmd::server` lists them, with their ACL categories) plus the commands only raftis has, each
//! with a fixed id (its place in name order) so a selector is a bit set over them.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Redis's categories, in its order (`ACL CAT`, and the order rules are described in).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Every command the rules know, by id.
pub struct Universe {
    pub names: Vec<String>,
    index: HashMap<String, usize>,
    /// Bit `c` set: the command is in category `CATEGORIES[c]`.
    pub categories: Vec<u32>,
    pub no_auth: Vec<bool>,
    /// The ids of each container's subcommands.
    pub subs: Vec<Vec<usize>>,
    /// A subcommand's container.
    pub parent: Vec<Option<usize>>,
}

impl Universe {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The id of `name` (lowercase; `container|sub` for a subcommand).
    pub fn id(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The id of a command named as a rule names it (any case).
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        self.id(&String::from_utf8_lossy(name).to_ascii_lowercase())
    }
}

/// The category's index in [`CATEGORIES`] (any case).
pub fn category(name: &[u8]) -> Option<usize> {
    CATEGORIES.iter().position(|c| c.as_bytes().eq_ignore_ascii_case(name))
}

/// The universe, built once from the command tables.
pub fn universe() -> &'static Universe {
    static U: OnceLock<Universe> = OnceLock::new();
    U.get_or_init(build)
}

fn build() -> Universe {
    let commands = crate::cmd::server::acl_commands();
    let names: Vec<String> = commands.iter().map(|c| c.name.clone()).collect();
    let index: HashMap<String, usize> = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
    let categories = commands
        .iter()
        .map(|c| c.categories.iter().filter_map(|n| category(n.as_bytes())).fold(0u32, |m, i| m | (1 << i)))
        .collect();
    let no_auth = commands.iter().map(|c| c.no_auth).collect();
    let parent: Vec<Option<usize>> =
        names.iter().map(|n| n.split_once('|').and_then(|(c, _)| index.get(c).copied())).collect();
    let mut subs = vec![Vec::new(); names.len()];
    for (id, p) in parent.iter().enumerate() {
        if let Some(p) = p {
            subs[*p].push(id);
        }
    }
    Universe { names, index, categories, no_auth, subs, parent }
}

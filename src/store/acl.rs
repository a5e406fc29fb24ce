//! The replicated ACL table (`crate::acl`): changed only by applied log entries (`ACL
//! SETUSER`, `ACL DELUSER`, `ACL LOAD`, `CONFIG SET requirepass`, see `cmd::acl`), carried by
//! snapshots as each user's rules in `ACL LIST` form (frame kind 9) and mixed into the digest.
//! Every apply publishes the table to the node's [`AclView`], where the server checks
//! commands without taking the state lock.

use crate::acl::{Acl, AclView};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct AclStore {
    /// The users (replicated).
    pub table: Acl,
    /// The default user was set through the log (replicated): until then each node's own
    /// `requirepass` is the default user's password.
    pub default_set: bool,
    /// Where this node's server reads the table (not replicated; shared by the node's groups
    /// that hold keys, each publishing the table it applies).
    pub view: Arc<AclView>,
}

/// Replicas compare equal by what is replicated (the view is this node's).
impl PartialEq for AclStore {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table && self.default_set == other.default_set
    }
}

impl std::fmt::Debug for AclStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclStore")
            .field("users", &self.table.users.len())
            .field("default_set", &self.default_set)
            .finish()
    }
}

/// The snapshot form: every user as its name and rules.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AclImage {
    pub users: Vec<(Bytes, Bytes)>,
    pub default_set: bool,
}

impl AclStore {
    /// True while nothing differs from a fresh keyspace's (no snapshot frame, no digest).
    pub fn is_fresh(&self) -> bool {
        !self.default_set && self.table == Acl::default()
    }

    /// Hands the table to the server.
    pub fn publish(&self) {
        self.view.publish(&self.table, self.default_set);
    }

    pub fn image(&self) -> AclImage {
        let users = self.table.users.iter().map(|(n, u)| (n.clone(), Bytes::from(u.describe_rules()))).collect();
        AclImage { users, default_set: self.default_set }
    }

    /// The table a snapshot holds (its rules are replayed as `ACL SETUSER` would).
    pub fn from_image(image: AclImage) -> Result<AclStore, String> {
        let table = Acl::from_rules(&image.users)?;
        Ok(AclStore { table, default_set: image.default_set, view: Arc::default() })
    }
}

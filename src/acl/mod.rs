//! Redis 7.0's access control lists: users with passwords (SHA-256 hex digests), flags and
//! selectors ([`selector`]), changed by `ACL SETUSER` rules and checked before a command runs.
//! The table is replicated state: its changes are log entries (see docs/ARCHITECTURE.md), so
//! this module is pure (no clock, no I/O); the ACL log of denials ([`log`]) is per node.

pub mod file;
pub mod log;
pub mod selector;
pub mod universe;

use bytes::Bytes;
use selector::Selector;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Why a rule was refused (Redis's `errno` values of `ACLSetUser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclError {
    Syntax,
    UnknownCommand,
    KeysAfterAll,
    ChannelsAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSubcommand,
}

impl AclError {
    /// Redis's `ACLSetUserStringError`.
    pub fn message(self) -> &'static str {
        match self {
            AclError::Syntax => "Syntax error",
            AclError::UnknownCommand => "Unknown command or category name in ACL",
            AclError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            AclError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            AclError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            AclError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            AclError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// Redis's `ACLHashPassword`: the SHA-256 digest in lowercase hex.
pub fn hash_password(pass: &[u8]) -> String {
    Sha256::digest(pass).iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Bytes,
    pub enabled: bool,
    pub nopass: bool,
    /// `Some(true)`: `sanitize-payload`, `Some(false)`: `skip-sanitize-payload`.
    pub sanitize: Option<bool>,
    pub passwords: Vec<String>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
    /// The root selector allows everything (no check at dispatch); kept up to date by
    /// [`Acl::set_user`].
    pub unrestricted: bool,
}

impl User {
    /// A new user: off, no password, no permissions.
    pub fn new(name: Bytes) -> User {
        User {
            name,
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::new(),
            selectors: Vec::new(),
            unrestricted: false,
        }
    }

    /// Applies one (merged) rule, Redis's `ACLSetUser`.
    pub fn apply(&mut self, op: &[u8]) -> Result<(), AclError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"skip-sanitize-payload" => self.sanitize = Some(false),
            b"sanitize-payload" => self.sanitize = Some(true),
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"clearselectors" => self.selectors.clear(),
            b"reset" => {
                for rule in ["resetpass", "resetkeys", "resetchannels", "off", "-@all", "clearselectors"] {
                    self.apply(rule.as_bytes())?;
                }
                self.sanitize = Some(true);
            }
            _ => match op.first() {
                Some(b'>') => self.add_password(hash_password(&op[1..])),
                Some(b'#') if valid_hash(&op[1..]) => self.add_password(String::from_utf8_lossy(&op[1..]).into()),
                Some(b'<') => self.remove_password(&hash_password(&op[1..]))?,
                Some(b'!') if valid_hash(&op[1..]) => self.remove_password(&String::from_utf8_lossy(&op[1..]))?,
                Some(b'#' | b'!') => return Err(AclError::BadHash),
                Some(b'(') if op.last() == Some(&b')') && op.len() > 1 => {
                    let mut sel = Selector::new();
                    for rule in op[1..op.len() - 1].split(|&c| c == b' ').filter(|r| !r.is_empty()) {
                        sel.apply(rule)?;
                    }
                    self.selectors.push(sel);
                }
                _ => self.root.apply(op)?,
            },
        }
        Ok(())
    }

    fn add_password(&mut self, hash: String) {
        self.nopass = false;
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
    }

    fn remove_password(&mut self, hash: &str) -> Result<(), AclError> {
        self.nopass = false;
        let at = self.passwords.iter().position(|p| p == hash).ok_or(AclError::NoSuchPassword)?;
        self.passwords.remove(at);
        Ok(())
    }

    /// Whether `pass` opens this user (enabled, and no password needed or a matching one).
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        self.enabled && (self.nopass || self.passwords.contains(&hash_password(pass)))
    }

    /// The flags as `ACL GETUSER` lists them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            Some(false) => flags.push("skip-sanitize-payload"),
            Some(true) => flags.push("sanitize-payload"),
            None => {}
        }
        flags
    }

    /// The rules that rebuild the user (`ACL LIST`'s line without `user <name> `).
    pub fn describe_rules(&self) -> Vec<u8> {
        let mut out = self.flags().join(" ").into_bytes();
        for p in &self.passwords {
            out.extend_from_slice(format!(" #{p}").as_bytes());
        }
        out.push(b' ');
        out.extend_from_slice(&self.root.describe());
        for sel in &self.selectors {
            out.extend_from_slice(b" (");
            out.extend_from_slice(&sel.describe());
            out.push(b')');
        }
        out
    }

    /// The `ACL LIST` line.
    pub fn describe(&self) -> Vec<u8> {
        [b"user ", &self.name[..], b" ", &self.describe_rules()].concat()
    }
}

/// Why a command was denied, ordered as Redis picks the error to report among selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

/// The table of users. `default` always exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    pub users: BTreeMap<Bytes, User>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new("")
    }
}

/// Redis's `ACLMergeSelectorArguments`: arguments from one starting with `(` to one ending
/// with `)` become one rule, joined by spaces.
pub fn merge_selector_args(rules: &[Bytes]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    let mut first: &[u8] = b"";
    for r in rules {
        match open.as_mut() {
            Some(acc) => {
                acc.push(b' ');
                acc.extend_from_slice(r);
                if r.last() == Some(&b')') {
                    out.push(open.take().unwrap_or_default());
                }
            }
            None if r.first() == Some(&b'(') && r.last() != Some(&b')') => {
                first = r;
                open = Some(r.to_vec());
            }
            None => out.push(r.to_vec()),
        }
    }
    match open {
        Some(_) => {
            Err(format!("ERR Unmatched parenthesis in acl selector starting at '{}'.", String::from_utf8_lossy(first)))
        }
        None => Ok(out),
    }
}

impl Acl {
    /// The table at start: the default user with every permission and `requirepass` (none:
    /// `nopass`).
    pub fn new(requirepass: &str) -> Acl {
        let mut acl = Acl { users: BTreeMap::new() };
        let name = Bytes::from_static(b"default");
        let mut user = User::new(name.clone());
        for rule in ["on", "~*", "&*", "+@all"] {
            let _ = user.apply(rule.as_bytes());
        }
        set_default_password(&mut user, requirepass);
        user.unrestricted = user.root.is_unrestricted();
        acl.users.insert(name, user);
        acl
    }

    pub fn user(&self, name: &[u8]) -> Option<&User> {
        self.users.get(name)
    }

    /// Whether a new connection must authenticate (the default user needs a password or is
    /// off), Redis's `authRequired`.
    pub fn auth_required(&self) -> bool {
        self.user(b"default").is_none_or(|u| !u.nopass || !u.enabled)
    }

    /// `ACL SETUSER name rules...`: all rules or none (the error names the failing rule).
    pub fn set_user(&mut self, name: &Bytes, rules: &[Bytes]) -> Result<(), String> {
        if name.iter().any(|&c| c == 0 || c == b' ' || (b'\t'..=b'\r').contains(&c)) {
            return Err("ERR Usernames can't contain spaces or null characters".into());
        }
        let merged = merge_selector_args(rules)?;
        let mut user = self.users.get(name).cloned().unwrap_or_else(|| User::new(name.clone()));
        for rule in &merged {
            if let Err(e) = user.apply(rule) {
                return Err(format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(rule),
                    e.message()
                ));
            }
        }
        user.unrestricted = user.root.is_unrestricted();
        self.users.insert(name.clone(), user);
        Ok(())
    }

    /// A table from users' rules (as [`User::describe_rules`] gives them).
    pub fn from_rules(users: &[(Bytes, Bytes)]) -> Result<Acl, String> {
        let mut acl = Acl { users: BTreeMap::new() };
        for (name, rules) in users {
            let rules: Vec<Bytes> =
                rules.split(|&c| c == b' ').filter(|r| !r.is_empty()).map(Bytes::copy_from_slice).collect();
            acl.set_user(name, &rules)?;
        }
        if acl.user(b"default").is_none() {
            return Err("the ACL table has no default user".into());
        }
        Ok(acl)
    }

    /// `ACL DELUSER`: how many of `names` were deleted, or the error when one is `default`
    /// (those before it stay deleted, as in Redis).
    pub fn delete_users(&mut self, names: &[Bytes]) -> Result<i64, (i64, String)> {
        let mut deleted = 0;
        for name in names {
            if name.as_ref() == b"default" {
                return Err((deleted, "ERR The 'default' user cannot be removed".into()));
            }
            if self.users.remove(name).is_some() {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// `CONFIG SET requirepass`: the default user's only password (none: `nopass`).
    pub fn set_requirepass(&mut self, pass: &str) {
        if let Some(user) = self.users.get_mut(&b"default"[..]) {
            set_default_password(user, pass);
        }
    }

    /// Checks `argv` (command id `id` in the universe) for `user`; `keys` are its key
    /// arguments with their spec flags, `channels` its channel arguments (is it a pattern).
    pub fn check(
        user: &User,
        id: usize,
        argv: &[Bytes],
        keys: &[(usize, Vec<String>)],
        channels: &[(usize, bool)],
    ) -> Result<(), Denied> {
        let mut worst = None;
        for sel in std::iter::once(&user.root).chain(&user.selectors) {
            match check_selector(sel, id, argv, keys, channels) {
                Ok(()) => return Ok(()),
                Err(d) => worst = worst.max(Some(d)),
            }
        }
        Err(worst.unwrap_or(Denied::Command))
    }
}

/// The table this node's server checks commands against: the replicated one, with this
/// node's `requirepass` as the default user's password until the default user is set through
/// the log (`store::acl`).
#[derive(Default)]
pub struct AclView {
    users: std::sync::RwLock<Acl>,
    requirepass: std::sync::Mutex<String>,
    /// The last table published, to apply a new `requirepass` to.
    replicated: std::sync::Mutex<(Acl, bool)>,
    /// Counts publications: a connection that found its user unrestricted at one skips the
    /// check until the next.
    version: std::sync::atomic::AtomicU64,
}

impl AclView {
    pub fn new(requirepass: &str) -> AclView {
        let view = AclView::default();
        *view.requirepass.lock().unwrap_or_else(|p| p.into_inner()) = requirepass.to_string();
        view.publish(&Acl::default(), false);
        view
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Acl> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A replicated table was applied: the server uses it from now on.
    pub fn publish(&self, table: &Acl, default_set: bool) {
        let mut acl = table.clone();
        if !default_set {
            acl.set_requirepass(&self.requirepass.lock().unwrap_or_else(|p| p.into_inner()));
        }
        *self.replicated.lock().unwrap_or_else(|p| p.into_inner()) = (table.clone(), default_set);
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = acl;
        self.version.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The publication count (never 0 once published).
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// This node's `requirepass` changed (CONFIG SET).
    pub fn set_requirepass(&self, pass: &str) {
        *self.requirepass.lock().unwrap_or_else(|p| p.into_inner()) = pass.to_string();
        let (table, default_set) = self.replicated.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.publish(&table, default_set);
    }
}

fn set_default_password(user: &mut User, pass: &str) {
    let _ = user.apply(b"resetpass");
    if pass.is_empty() {
        let _ = user.apply(b"nopass");
    } else {
        let _ = user.apply(format!(">{pass}").as_bytes());
    }
}

fn check_selector(
    sel: &Selector,
    id: usize,
    argv: &[Bytes],
    keys: &[(usize, Vec<String>)],
    channels: &[(usize, bool)],
) -> Result<(), Denied> {
    if !sel.allows_command(id, argv) {
        return Err(Denied::Command);
    }
    for (i, flags) in keys {
        if !sel.allows_key(&argv[*i], flags) {
            return Err(Denied::Key(*i));
        }
    }
    for (i, pattern) in channels {
        if !sel.allows_channel(&argv[*i], *pattern) {
            return Err(Denied::Channel(*i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! One ACL selector: the commands (a bit set over [`Universe`] plus allowed first arguments),
//! key patterns (each readable, writable or both) and channel patterns it allows; its rules
//! (`+get`, `~key*`, `&chan`, ...) applied as Redis 7.0's `ACLSetSelector` applies them, and
//! described back as `ACLDescribeSelector` does.

use super::universe::{category, universe, CATEGORIES};
use super::AclError;
use std::collections::BTreeMap;

/// Key pattern permissions.
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const ALL: u8 = READ | WRITE;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub flags: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    allowed: Vec<u64>,
    /// Set by `+@all`: commands added later are allowed too (described as `+@all ...`).
    future: bool,
    pub all_keys: bool,
    pub all_channels: bool,
    /// First arguments allowed for a command whose bit is clear (`+select|0`).
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    pub keys: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
}

impl Default for Selector {
    fn default() -> Self {
        Selector::new()
    }
}

/// Redis's `isspace(c) || c == 0` test for patterns.
fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c == 0 || c == b' ' || (b'\t'..=b'\r').contains(&c))
}

impl Selector {
    /// No commands, keys or channels (`acl-pubsub-default` is `resetchannels`).
    pub fn new() -> Selector {
        let words = universe().len().div_ceil(64);
        Selector {
            allowed: vec![0; words],
            future: false,
            all_keys: false,
            all_channels: false,
            firstargs: BTreeMap::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    pub fn allows(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
        }
    }

    /// Every command, key and channel: no check needed.
    pub fn is_unrestricted(&self) -> bool {
        self.all_keys && self.all_channels && (0..universe().len()).all(|id| self.allows(id))
    }

    /// Redis's `ACLChangeSelectorPerm`: the command and all its subcommands.
    fn change_perm(&mut self, id: usize, on: bool) {
        self.firstargs.remove(&id);
        self.set_bit(id, on);
        for &sub in &universe().subs[id] {
            self.firstargs.remove(&sub);
            self.set_bit(sub, on);
        }
    }

    fn set_all(&mut self, on: bool) {
        self.future = on;
        self.firstargs.clear();
        let fill = if on { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
    }

    fn set_category(&mut self, cat: usize, on: bool) {
        let u = universe();
        for id in 0..u.len() {
            if u.categories[id] & (1 << cat) != 0 {
                self.change_perm(id, on);
            }
        }
    }

    /// Applies one rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), AclError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" | b"~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            b"resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            b"allchannels" | b"&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => self.set_all(true),
            b"nocommands" | b"-@all" => self.set_all(false),
            _ => match op.first() {
                Some(b'~' | b'%') => self.add_key_pattern(op)?,
                Some(b'&') => self.add_channel(&op[1..])?,
                Some(b'+' | b'-') if op.get(1) == Some(&b'@') => {
                    let cat = category(&op[2..]).ok_or(AclError::UnknownCommand)?;
                    self.set_category(cat, op[0] == b'+');
                }
                Some(b'+') => self.allow_command(&op[1..])?,
                Some(b'-') => {
                    let id = universe().lookup(&op[1..]).ok_or(AclError::UnknownCommand)?;
                    self.change_perm(id, false);
                }
                _ => return Err(AclError::Syntax),
            },
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), AclError> {
        let (flags, offset) = if op[0] == b'%' {
            // Flags up to the `~` (or the end: `%R` is an empty pattern, as in Redis).
            let tilde = op.iter().position(|&c| c == b'~').unwrap_or(op.len());
            let mut flags = 0;
            for c in &op[1..tilde] {
                flags |= match c.to_ascii_uppercase() {
                    b'R' => READ,
                    b'W' => WRITE,
                    _ => return Err(AclError::Syntax),
                };
            }
            if flags == 0 {
                return Err(AclError::Syntax);
            }
            (flags, (tilde + 1).min(op.len()))
        } else {
            (ALL, 1)
        };
        if self.all_keys {
            return Err(AclError::KeysAfterAll);
        }
        let pattern = &op[offset..];
        if has_spaces(pattern) {
            return Err(AclError::Syntax);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => k.flags |= flags,
            None => self.keys.push(KeyPattern { pattern: pattern.to_vec(), flags }),
        }
        Ok(())
    }

    fn add_channel(&mut self, pattern: &[u8]) -> Result<(), AclError> {
        if self.all_channels {
            return Err(AclError::ChannelsAfterAll);
        }
        if has_spaces(pattern) {
            return Err(AclError::Syntax);
        }
        if !self.channels.iter().any(|c| c == pattern) {
            self.channels.push(pattern.to_vec());
        }
        Ok(())
    }

    /// `+name`, `+container|sub`, or `+name|firstarg`.
    fn allow_command(&mut self, name: &[u8]) -> Result<(), AclError> {
        let u = universe();
        let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
            let id = u.lookup(name).ok_or(AclError::UnknownCommand)?;
            self.change_perm(id, true);
            return Ok(());
        };
        let (base, sub) = (&name[..bar], &name[bar + 1..]);
        let id = u.lookup(base).ok_or(AclError::UnknownCommand)?;
        if u.parent[id].is_some() {
            return Err(AclError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(AclError::Syntax);
        }
        if !u.subs[id].is_empty() {
            let id = u.lookup(name).ok_or(AclError::UnknownCommand)?;
            self.change_perm(id, true);
        } else if !self.allows(id) {
            let args = self.firstargs.entry(id).or_default();
            if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                args.push(sub.to_vec());
            }
        }
        Ok(())
    }

    /// Keys, channels and commands, as `ACL LIST` shows them.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = self.describe_keys();
        if !out.is_empty() {
            out.push(b' ');
        }
        if !self.all_channels {
            out.extend_from_slice(b"resetchannels ");
        }
        let channels = self.describe_channels();
        if !channels.is_empty() {
            out.extend_from_slice(&channels);
            out.push(b' ');
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
        out
    }

    /// `~*`, or each pattern with its permission prefix, space separated.
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.all_keys {
            return b"~*".to_vec();
        }
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for k in &self.keys {
            let prefix: &[u8] = match k.flags {
                READ => b"%R~",
                WRITE => b"%W~",
                _ => b"~",
            };
            parts.push([prefix, &k.pattern].concat());
        }
        parts.join(&b' ')
    }

    /// `&*`, or each channel pattern, space separated.
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.all_channels {
            return b"&*".to_vec();
        }
        let parts: Vec<Vec<u8>> = self.channels.iter().map(|c| [b"&", c.as_slice()].concat()).collect();
        parts.join(&b' ')
    }

    /// How many commands of category `cat` are allowed and how many not.
    fn count_category(&self, cat: usize) -> (usize, usize) {
        let u = universe();
        let in_cat = (0..u.len()).filter(|&id| u.categories[id] & (1 << cat) != 0);
        in_cat.fold((0, 0), |(on, off), id| if self.allows(id) { (on + 1, off) } else { (on, off + 1) })
    }

    /// The category that best fits what `temp` has left to describe (Redis 7.0's loop: more
    /// commands in common than different, the fewest differences, then the most in common).
    fn best_category(temp: &Selector, applied: &[bool], additive: bool) -> Option<usize> {
        let mut best = None;
        let (mut min_diff, mut max_same) = (usize::MAX, 0);
        for cat in (0..CATEGORIES.len()).filter(|&c| !applied[c]) {
            let (on, off) = temp.count_category(cat);
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < min_diff || (diff == min_diff && same > max_same)) {
                best = Some(cat);
                (min_diff, max_same) = (diff, same);
            }
        }
        best
    }

    /// Redis 7.0's `ACLDescribeSelectorCommandRules`: `+@all` or `-@all`, then the best
    /// fitting categories one by one, then single commands until a selector built from the
    /// rules matches. Single commands come in name order (Redis's in its hash table's order).
    pub fn describe_commands(&self) -> String {
        let u = universe();
        let additive = !self.future;
        let mut fake = Selector::new();
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        fake.set_all(!additive);
        let mut temp = Selector::new();
        temp.allowed = self.allowed.clone();
        let mut applied = [false; CATEGORIES.len()];
        while let Some(cat) = Selector::best_category(&temp, &applied, additive) {
            rules.push_str(&format!("{}@{} ", if additive { '+' } else { '-' }, CATEGORIES[cat]));
            fake.set_category(cat, additive);
            temp.set_category(cat, !additive);
            applied[cat] = true;
        }
        for id in 0..u.len() {
            let mine = self.allows(id);
            if mine != fake.allows(id) {
                rules.push_str(&format!("{}{} ", if mine { '+' } else { '-' }, u.names[id]));
                fake.change_perm(id, mine);
            }
            if let Some(args) = self.firstargs.get(&id).filter(|_| !mine) {
                for a in args {
                    rules.push_str(&format!("+{}|{} ", u.names[id], String::from_utf8_lossy(a)));
                }
            }
        }
        rules.truncate(rules.trim_end().len());
        rules
    }

    /// Whether the command `id` may run with these arguments (the bit, or an allowed first
    /// argument; `no_auth` commands always may).
    pub fn allows_command(&self, id: usize, argv: &[bytes::Bytes]) -> bool {
        let u = universe();
        if u.no_auth[id] || self.allows(id) {
            return true;
        }
        let idx = if u.parent[id].is_some() { 2 } else { 1 };
        match (self.firstargs.get(&id), argv.get(idx)) {
            (Some(args), Some(arg)) => args.iter().any(|a| a.eq_ignore_ascii_case(arg)),
            _ => false,
        }
    }

    /// Redis's `ACLSelectorCheckKey`: some pattern with the permissions the key's spec needs
    /// (`access`: read; `insert`/`delete`/`update`: write) matches it.
    pub fn allows_key(&self, key: &[u8], spec_flags: &[String]) -> bool {
        if self.all_keys {
            return true;
        }
        let mut need = 0;
        if spec_flags.iter().any(|f| f == "access") {
            need |= READ;
        }
        if spec_flags.iter().any(|f| matches!(f.as_str(), "insert" | "delete" | "update")) {
            need |= WRITE;
        }
        self.keys.iter().any(|k| k.flags & need == need && crate::cmd::glob::matches(&k.pattern, key, false))
    }

    /// Redis's `ACLCheckChannelAgainstList`: a pattern subscription must be allowed literally.
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        if self.all_channels {
            return true;
        }
        self.channels
            .iter()
            .any(|c| if is_pattern { c == channel } else { crate::cmd::glob::matches(c, channel, false) })
    }
}

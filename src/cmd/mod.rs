//! The command table: every command's name, arity, flags and key positions (what `COMMAND`
//! reports and what cluster routing reads), and its handler. One file per command family.
//!
//! Handlers come in three kinds. `Read` handlers get a [`ReadCtx`] and cannot change state.
//! `Write` handlers get a [`WriteCtx`]; they only ever run inside [`apply`], on a
//! [`WriteBatch`](crate::store::WriteBatch), so the same log entry gives the same result on
//! every replica. `Session` commands act on the connection or the server, not the keyspace,
//! and are carried out by `crate::server`.

pub mod acl;
pub mod args;
pub mod blocking;
pub mod cluster;
mod cost;
mod ctx;
mod exec;
pub mod geo;
pub mod glob;
pub mod hash;
pub mod keys;
pub mod list;
pub mod pqsort;
pub mod pubsub;
pub mod scan;
pub mod scripting;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod string;
pub mod zset;

pub use cost::{may_run_long, write_may_run_long, LONG_READ_ELEMENTS};
pub use ctx::{ReadCtx, WriteCtx};
pub use exec::{apply, apply_checked, run_read};

use crate::protocol::Frame;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

pub type ReadFn = fn(&mut ReadCtx, &[Bytes]) -> Frame;
pub type WriteFn = fn(&mut WriteCtx, &[Bytes]) -> Frame;

/// How a command is carried out.
#[derive(Clone, Copy)]
pub enum Kind {
    Read(ReadFn),
    Write(WriteFn),
    /// Connection or server level; implemented in `crate::server`.
    Session,
}

/// One row of the command table.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis convention: N means exactly N arguments (name included), -N at least N.
    pub arity: i32,
    /// Flags as `COMMAND INFO` lists them: "write", "readonly", "denyoom", "fast", ...
    pub flags: &'static [&'static str],
    /// Key positions: first, last (negative counts from the end), step; 0,0,0 for none.
    pub keys: (i32, i32, i32),
    pub kind: Kind,
}

impl CommandSpec {
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: &'static [&'static str],
        keys: (i32, i32, i32),
        kind: Kind,
    ) -> Self {
        CommandSpec { name, arity, flags, keys, kind }
    }

    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(self.kind, Kind::Write(_))
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// The indexes of the key arguments of `argv` (commands with movable keys, such as
    /// ZUNIONSTORE, override this in [`key_indexes`]).
    pub fn fixed_key_indexes(&self, argc: usize) -> Vec<usize> {
        self.fixed_key_positions(argc).collect()
    }

    /// [`fixed_key_indexes`](Self::fixed_key_indexes) without allocating.
    pub fn fixed_key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, last, step) = self.keys;
        let (first, last, step) = if first <= 0 || step <= 0 {
            (1, 0, 1)
        } else {
            (first, if last < 0 { argc as i32 + last } else { last }.min(argc as i32 - 1), step)
        };
        (first..=last).step_by(step as usize).map(|i| i as usize)
    }
}

/// Every family's table, concatenated.
fn all_tables() -> impl Iterator<Item = &'static CommandSpec> {
    [
        string::COMMANDS,
        keys::COMMANDS,
        hash::COMMANDS,
        list::COMMANDS,
        set::COMMANDS,
        zset::COMMANDS,
        geo::COMMANDS,
        sort::COMMANDS,
        server::COMMANDS,
        cluster::COMMANDS,
        cluster::asking::COMMANDS,
        blocking::COMMANDS,
        scripting::COMMANDS,
        stream::COMMANDS,
        pubsub::COMMANDS,
        acl::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// FNV-1a: command names are short and trusted (the table is fixed), so a cheap hash beats
/// SipHash on the per-command lookup.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Table = HashMap<&'static str, &'static CommandSpec, std::hash::BuildHasherDefault<Fnv>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| all_tables().map(|c| (c.name, c)).collect())
}

/// The internal write a `CONFIG SET` of a replicated setting becomes (`lua-max-steps`,
/// `stream-node-max-entries`, `stream-node-max-bytes`: set through the log, the server
/// proposes it), or the CONFIG SET error for a bad value; `None` for any other CONFIG command.
pub fn replicated_config_write(argv: &[Bytes]) -> Option<Result<Vec<Bytes>, Frame>> {
    scripting::max_steps_write(argv).or_else(|| stream::settings::config_write(argv))
}

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().get(std::str::from_utf8(lower).ok()?).copied()
}

/// Every command, sorted by name (for COMMAND, COMMAND LIST, COMMAND COUNT).
pub fn all_commands() -> Vec<&'static CommandSpec> {
    let mut v: Vec<_> = table().values().copied().collect();
    v.sort_by_key(|c| c.name);
    v
}

/// Key argument indexes of a command line, including commands whose keys move
/// (`numkeys`-style arguments).
pub fn key_indexes(spec: &CommandSpec, argv: &[Bytes]) -> Vec<usize> {
    match movable_keys(spec.name, argv) {
        Some(keys) => keys,
        None => spec.fixed_key_indexes(argv.len()),
    }
}

/// Calls `f` with each key argument index of a command line, as [`key_indexes`] lists them,
/// allocating only for commands whose keys move.
pub fn for_each_key_index(spec: &CommandSpec, argv: &[Bytes], mut f: impl FnMut(usize)) {
    match movable_keys(spec.name, argv) {
        Some(keys) => keys.into_iter().for_each(f),
        None => spec.fixed_key_positions(argv.len()).for_each(&mut f),
    }
}

/// Keys of commands whose key count is an argument: `CMD [dest] numkeys key...`.
fn movable_keys(name: &str, argv: &[Bytes]) -> Option<Vec<usize>> {
    let numkeys_at = match name {
        acl::RUN_AS | acl::RUN_AS_RO => {
            let inner = lookup(argv.get(2)?)?;
            return Some(key_indexes(inner, &argv[2..]).into_iter().map(|i| i + 2).collect());
        }
        cluster::asking::ASKING_WRITE | cluster::asking::ASKING_READ => {
            let inner = lookup(argv.get(1)?)?;
            return Some(key_indexes(inner, &argv[1..]).into_iter().map(|i| i + 1).collect());
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => 2,
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => 1,
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => 2,
        "xread" | "xreadgroup" => return Some(stream::stream_keys(argv)),
        blocking::BLOCK_COMMAND => return Some(blocking::block_keys(argv)),
        "migrate" => return Some(migrate_keys(argv)),
        "memory" | "object" => return Some(subcommand_key(name, argv)),
        "georadius" | "georadiusbymember" => return Some(geo::georadius_keys(argv)),
        "sort" => return Some(sort::sort_keys(argv)),
        _ => return None,
    };
    let n = args::int(argv.get(numkeys_at)?).ok()?.max(0) as usize;
    let mut keys: Vec<usize> = (numkeys_at + 1..(numkeys_at + 1 + n).min(argv.len())).collect();
    if matches!(name, "zunionstore" | "zinterstore" | "zdiffstore") {
        keys.insert(0, 1);
    }
    Some(keys)
}

/// The key of `MEMORY USAGE key` and `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key` (argument
/// 2); the other subcommands name none. Routes them to the key's slot in cluster mode.
fn subcommand_key(name: &str, argv: &[Bytes]) -> Vec<usize> {
    let keyed: &[&str] = if name == "memory" { &["usage"] } else { &["encoding", "freq", "idletime", "refcount"] };
    match argv.get(1) {
        Some(sub) if argv.len() > 2 && keyed.iter().any(|k| args::is(sub, k)) => vec![2],
        _ => vec![],
    }
}

/// MIGRATE's keys: the key argument, or with an empty one, every argument after `KEYS`.
fn migrate_keys(argv: &[Bytes]) -> Vec<usize> {
    let keys_at = argv.iter().skip(6).position(|a| args::is(a, "keys")).map(|i| i + 6);
    match keys_at {
        Some(i) if argv.get(3).is_some_and(|k| k.is_empty()) => (i + 1..argv.len()).collect(),
        _ => vec![3],
    }
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' ` exactly as Redis 7.0 builds
/// it: C strings (cut at a NUL byte), the name cut at 128 bytes, and arguments appended while
/// the list is under 128 bytes, each cut to what is left of those 128.
pub fn unknown_command(argv: &[Bytes]) -> Frame {
    fn c_str(b: &[u8], max: usize) -> &[u8] {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        &b[..end.min(max)]
    }
    let mut args: Vec<u8> = Vec::new();
    for arg in argv.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        args.push(b'\'');
        let room = 128 - (args.len() - 1);
        args.extend_from_slice(c_str(arg, room));
        args.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(c_str(&argv[0], 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&args);
    Frame::Error(Bytes::from(msg))
}

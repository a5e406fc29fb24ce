//! COMMAND [COUNT | LIST | INFO | DOCS | GETKEYS | GETKEYSANDFLAGS | HELP]: the commands
//! raftis has, described as Redis 7.0.15 describes them (its own INFO and DOCS replies, kept in
//! `redis_table`); a command Redis does not have is described from raftis's table.

use super::redis_table;
use super::{help_reply, sub_arity};
use crate::cmd::args::{self, is};
use crate::cmd::{self, glob, CommandSpec};
use crate::protocol::Frame;
use bytes::Bytes;

const HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

/// COMMAND ...
pub fn command(argv: &[Bytes]) -> Frame {
    if argv.len() == 1 {
        return Frame::Array(visible().into_iter().map(info_entry).collect());
    }
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "count" | "help" => 2,
        "list" | "info" | "docs" => -2,
        "getkeys" | "getkeysandflags" => -4,
        _ => return args::unknown_subcommand(&argv[1], "command"),
    };
    if let Err(e) = sub_arity("command", argv, arity) {
        return e;
    }
    match sub.as_str() {
        "count" => Frame::Integer(visible().len() as i64),
        "list" => list(&argv[2..]),
        "info" => info(&argv[2..]),
        "docs" => docs(&argv[2..]),
        "getkeys" => getkeys(&argv[2..], false),
        "getkeysandflags" => getkeys(&argv[2..], true),
        _ => help_reply("COMMAND", HELP),
    }
}

/// Every command clients may call (internal ones, such as active expiry's, are hidden).
fn visible() -> Vec<&'static CommandSpec> {
    cmd::all_commands().into_iter().filter(|c| !c.has_flag("internal")).collect()
}

fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    cmd::lookup(name).filter(|c| !c.has_flag("internal"))
}

/// ACL categories as derived from the flags and the family (raftis has no ACL table of its
/// own), in Redis's category order.
fn categories(c: &CommandSpec) -> Vec<&'static str> {
    let group = group_of(c.name);
    let mut cats = Vec::new();
    if group == "generic" {
        cats.push("@keyspace");
    }
    if c.is_write() {
        cats.push("@write");
    } else if matches!(c.kind, cmd::Kind::Read(_)) {
        cats.push("@read");
    }
    if let Some(cat) = match group {
        "set" => Some("@set"),
        "sorted-set" => Some("@sortedset"),
        "list" => Some("@list"),
        "hash" => Some("@hash"),
        "string" => Some("@string"),
        "stream" => Some("@stream"),
        "geo" => Some("@geo"),
        _ => None,
    } {
        cats.push(cat);
    }
    if c.has_flag("admin") {
        cats.push("@admin");
    }
    cats.push(if c.has_flag("fast") { "@fast" } else { "@slow" });
    if c.has_flag("admin") {
        cats.push("@dangerous");
    }
    if c.has_flag("blocking") {
        cats.push("@blocking");
    }
    match group {
        "connection" => cats.push("@connection"),
        "transactions" => cats.push("@transaction"),
        _ => {}
    }
    cats
}

/// The documentation group of a command, from the family table it belongs to.
fn group_of(name: &str) -> &'static str {
    let families: [(&[CommandSpec], &str); 9] = [
        (cmd::string::COMMANDS, "string"),
        (cmd::keys::COMMANDS, "generic"),
        (cmd::hash::COMMANDS, "hash"),
        (cmd::list::COMMANDS, "list"),
        (cmd::set::COMMANDS, "set"),
        (cmd::zset::COMMANDS, "sorted-set"),
        (cmd::stream::COMMANDS, "stream"),
        (cmd::geo::COMMANDS, "geo"),
        (cmd::sort::COMMANDS, "generic"),
    ];
    if let Some((_, g)) = families.iter().find(|(t, _)| t.iter().any(|c| c.name == name)) {
        return g;
    }
    match name {
        "multi" | "exec" | "discard" | "watch" | "unwatch" => "transactions",
        "cluster" => "cluster",
        "ping" | "echo" | "select" | "quit" | "auth" | "hello" | "reset" | "client" | "readonly" | "readwrite" => {
            "connection"
        }
        _ => "server",
    }
}

/// One COMMAND INFO entry: Redis's own (flags, ACL categories, tips, key specs and
/// subcommands as redis-server 7.0.15 reports them) for a command Redis has, otherwise one
/// made from raftis's table.
fn info_entry(c: &'static CommandSpec) -> Frame {
    redis_table::info(c.name).cloned().unwrap_or_else(|| made_info_entry(c))
}

/// An INFO entry from raftis's table: name, arity, flags, first, last, step, categories
/// derived from the flags, no tips, key specs or subcommands.
fn made_info_entry(c: &'static CommandSpec) -> Frame {
    let simple = |s: &str| Frame::Simple(Bytes::copy_from_slice(s.as_bytes()));
    let (first, last, step) = c.keys;
    Frame::Array(vec![
        Frame::bulk(c.name),
        Frame::Integer(c.arity as i64),
        Frame::Set(c.flags.iter().map(|f| simple(f)).collect()),
        Frame::Integer(first as i64),
        Frame::Integer(last as i64),
        Frame::Integer(step as i64),
        Frame::Set(categories(c).into_iter().map(simple).collect()),
        Frame::Set(vec![]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    ])
}

/// A command or subcommand name as Redis's `lookupCommandBySds` takes it (`container|sub`),
/// lowercase, if raftis has the command (for a subcommand: its container).
fn full_name(name: &[u8]) -> Option<String> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    match lower.split_once('|') {
        Some((container, _)) => {
            (find(container.as_bytes()).is_some() && redis_table::info(&lower).is_some()).then_some(lower)
        }
        None => find(name).map(|c| c.name.to_string()),
    }
}

fn info(names: &[Bytes]) -> Frame {
    if names.is_empty() {
        return Frame::Array(visible().into_iter().map(info_entry).collect());
    }
    let entry = |n: &Bytes| match full_name(n) {
        Some(name) => match (redis_table::info(&name), find(name.as_bytes())) {
            (Some(f), _) => f.clone(),
            (None, Some(c)) => made_info_entry(c),
            (None, None) => Frame::Null,
        },
        None => Frame::Null,
    };
    Frame::Array(names.iter().map(entry).collect())
}

fn docs_entry(name: &str) -> (Frame, Frame) {
    let doc = redis_table::docs(name).cloned().unwrap_or_else(|| {
        Frame::Map(vec![
            (Frame::bulk("summary"), Frame::bulk(format!("The {} command", name.to_ascii_uppercase()))),
            (Frame::bulk("since"), Frame::bulk("1.0.0")),
            (Frame::bulk("group"), Frame::bulk(group_of(name))),
        ])
    });
    (Frame::bulk(name.to_string()), doc)
}

fn docs(names: &[Bytes]) -> Frame {
    if names.is_empty() {
        return Frame::Map(visible().into_iter().map(|c| docs_entry(c.name)).collect());
    }
    Frame::Map(names.iter().filter_map(|n| full_name(n)).map(|n| docs_entry(&n)).collect())
}

/// A command's ACL categories (`@read`, ...): Redis's, or derived from raftis's flags.
fn categories_of(name: &str) -> Vec<String> {
    match (redis_table::info(name), find(name.as_bytes())) {
        (Some(entry), _) => redis_table::info_strings(entry, 6),
        (None, Some(c)) => categories(c).into_iter().map(str::to_string).collect(),
        (None, None) => Vec::new(),
    }
}

/// COMMAND LIST [FILTERBY MODULE m | ACLCAT cat | PATTERN pat]: every command and, after
/// each container, its subcommands (`config|get`), as Redis lists them.
fn list(rest: &[Bytes]) -> Frame {
    let names: Vec<String> = visible()
        .into_iter()
        .flat_map(|c| std::iter::once(c.name.to_string()).chain(redis_table::subcommands(c.name)))
        .collect();
    let selected: Vec<String> = match rest {
        [] => names,
        [f, kind, val] if is(f, "filterby") => {
            if is(kind, "module") {
                Vec::new()
            } else if is(kind, "aclcat") {
                let cat = format!("@{}", String::from_utf8_lossy(val).to_ascii_lowercase());
                names.into_iter().filter(|n| categories_of(n).contains(&cat)).collect()
            } else if is(kind, "pattern") {
                names.into_iter().filter(|n| glob::matches(val, n.as_bytes(), true)).collect()
            } else {
                return Frame::error(args::SYNTAX);
            }
        }
        _ => return Frame::error(args::SYNTAX),
    };
    Frame::Array(selected.into_iter().map(Frame::bulk).collect())
}

/// One command of the ACL's universe (`crate::acl`): Redis's commands and subcommands, and
/// the commands only raftis has.
pub struct AclCommand {
    pub name: String,
    /// Categories without the `@`.
    pub categories: Vec<String>,
    /// Redis flags it `no_auth` (AUTH, HELLO, ...): ACL rules never deny it.
    pub no_auth: bool,
}

/// The ACL's universe of commands, sorted by name (a container before its subcommands).
pub fn acl_commands() -> Vec<AclCommand> {
    let mut names: Vec<String> = redis_table::names().cloned().collect();
    names.extend(visible().into_iter().map(|c| c.name.to_string()));
    names.sort();
    names.dedup();
    let entry = |name: String| {
        let categories = categories_of(&name).into_iter().map(|c| c.trim_start_matches('@').to_string()).collect();
        let no_auth =
            redis_table::info(&name).is_some_and(|e| redis_table::info_strings(e, 2).iter().any(|f| f == "no_auth"));
        AclCommand { name, categories, no_auth }
    };
    names.into_iter().map(entry).collect()
}

/// The name ACL rules know `line`'s command by: `name` or `container|sub` (the container's
/// name for a subcommand Redis does not know).
pub fn acl_name(spec: &CommandSpec, line: &[Bytes]) -> String {
    match line.get(1) {
        Some(sub) if !redis_table::subcommands(spec.name).is_empty() => {
            let full = format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase());
            if redis_table::info(&full).is_some() {
                full
            } else {
                spec.name.to_string()
            }
        }
        _ => spec.name.to_string(),
    }
}

/// The keys of `line` with their key-spec flags (`RO`, `access`, `update`, ...), as ACL key
/// permissions read them (Redis's `getKeysFromCommandWithSpecs`); none when they cannot be
/// found (the arity was checked before).
pub fn acl_keys(spec: &'static CommandSpec, line: &[Bytes]) -> Vec<(usize, Vec<String>)> {
    let name = acl_name(spec, line);
    let found = match redis_table::info(&name) {
        Some(entry) => keys_from_redis_table(entry, spec, line),
        None => keys_from_raftis_table(spec, line),
    };
    found.unwrap_or_default().into_iter().filter(|(i, _)| *i < line.len()).collect()
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS <command> <args...>, as Redis's `getKeysSubcommandImpl`:
/// keys from the command's key specs, or from its own key finder where the specs cannot say
/// (SORT, MIGRATE) or where the flags depend on the arguments (SET, BITFIELD).
fn getkeys(line: &[Bytes], with_flags: bool) -> Frame {
    let Some(spec) = line.first().and_then(|n| find(n)) else {
        return Frame::error("ERR Invalid command specified");
    };
    // A container takes its subcommand from the next argument (Redis's `lookupCommand`).
    let subs = redis_table::subcommands(spec.name);
    let name = match line.get(1) {
        Some(sub) if !subs.is_empty() => {
            let full = format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase());
            if !subs.contains(&full) {
                return Frame::error("ERR Invalid command specified");
            }
            full
        }
        _ => spec.name.to_string(),
    };
    let found = match redis_table::info(&name) {
        Some(entry) => keys_from_redis_table(entry, spec, line),
        None => keys_from_raftis_table(spec, line),
    };
    let keys = match found {
        Ok(keys) => keys,
        Err(e) => return e,
    };
    let entry = |(i, flags): (usize, Vec<String>)| {
        let key = Frame::Bulk(line[i].clone());
        if with_flags {
            let flags = flags.into_iter().map(|f| Frame::Simple(Bytes::from(f))).collect();
            Frame::Array(vec![key, Frame::Set(flags)])
        } else {
            key
        }
    };
    Frame::Array(keys.into_iter().filter(|(i, _)| *i < line.len()).map(entry).collect())
}

type Keys = Vec<(usize, Vec<String>)>;

const NO_KEYS: &str = "ERR The command has no key arguments";
const BAD_ARITY: &str = "ERR Invalid number of arguments specified for command";
const BAD_ARGS: &str = "ERR Invalid arguments specified for command";

fn arity_ok(arity: i64, argc: usize) -> bool {
    let argc = argc as i64;
    !((arity > 0 && arity != argc) || argc < -arity)
}

fn keys_from_redis_table(entry: &Frame, spec: &'static CommandSpec, line: &[Bytes]) -> Result<Keys, Frame> {
    let specs = redis_table::key_specs(entry);
    let real = specs.iter().any(|s| !s.flags.iter().any(|f| f == "not_key"));
    if !real {
        return Err(Frame::error(NO_KEYS));
    }
    let arity = match entry {
        Frame::Array(items) => match items.get(1) {
            Some(Frame::Integer(n)) => *n,
            _ => spec.arity as i64,
        },
        _ => spec.arity as i64,
    };
    if !arity_ok(arity, line.len()) {
        return Err(Frame::error(BAD_ARITY));
    }
    let owned = |keys: Vec<(usize, &[String])>| keys.into_iter().map(|(i, f)| (i, f.to_vec())).collect::<Keys>();
    let variable = specs.iter().any(|s| s.flags.iter().any(|f| f == "variable_flags"));
    let keys = match (variable, redis_table::keys_by_specs(&specs, line, arity)) {
        (false, Some(keys)) => owned(keys),
        _ => own_key_finder(spec, line),
    };
    if keys.is_empty() && !redis_table::info_strings(entry, 2).iter().any(|f| f == "no_mandatory_keys") {
        return Err(Frame::error(BAD_ARGS));
    }
    Ok(keys)
}

/// The key finders Redis falls back to (`sortGetKeys`, `migrateGetKeys`, `setGetKeys`,
/// `bitfieldGetKeys`), with their flags.
fn own_key_finder(spec: &'static CommandSpec, line: &[Bytes]) -> Keys {
    let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let positions = cmd::key_indexes(spec, line);
    match spec.name {
        "sort" | "sort_ro" => positions
            .into_iter()
            .enumerate()
            .map(|(n, i)| (i, if n == 0 { flags(&["RO", "access"]) } else { flags(&["OW", "update"]) }))
            .collect(),
        "migrate" => positions.into_iter().map(|i| (i, flags(&["RW", "access", "delete"]))).collect(),
        "set" => {
            let get = line.iter().skip(3).any(|a| is(a, "get"));
            vec![(1, if get { flags(&["RW", "access", "update"]) } else { flags(&["OW", "update"]) })]
        }
        "bitfield" => {
            let rw =
                if bitfield_reads_only(line) { flags(&["RO", "access"]) } else { flags(&["RW", "access", "update"]) };
            vec![(1, rw)]
        }
        // The others' own finders refuse what their specs refused (a bad key count).
        _ => Vec::new(),
    }
}

/// `bitfieldGetKeys`: read-only when every operation is a GET (or OVERFLOW).
fn bitfield_reads_only(line: &[Bytes]) -> bool {
    let mut i = 2;
    while i < line.len() {
        let left = line.len() - i - 1;
        if is(&line[i], "get") && left >= 2 {
            i += 2;
        } else if is(&line[i], "overflow") && left >= 1 {
            i += 1;
        } else {
            return false;
        }
        i += 1;
    }
    true
}

/// Keys of a command Redis does not have, from raftis's table (flags from its kind).
fn keys_from_raftis_table(spec: &'static CommandSpec, line: &[Bytes]) -> Result<Keys, Frame> {
    if spec.keys.0 == 0 && cmd::key_indexes(spec, line).is_empty() {
        return Err(Frame::error(NO_KEYS));
    }
    if !spec.arity_ok(line.len()) {
        return Err(Frame::error(BAD_ARITY));
    }
    let keys = cmd::key_indexes(spec, line);
    if keys.is_empty() {
        return Err(Frame::error(BAD_ARGS));
    }
    let flags: Vec<String> =
        if spec.is_write() { vec!["RW".into(), "update".into()] } else { vec!["RO".into(), "access".into()] };
    Ok(keys.into_iter().map(|i| (i, flags.clone())).collect())
}

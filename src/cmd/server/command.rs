//! COMMAND [COUNT | LIST | INFO | DOCS | GETKEYS | HELP]: the command table as Redis 7
//! reports it. ACL categories are derived from the flags; DOCS carries summary, since and
//! group (enough for redis-cli's start-up probe), not the argument trees.

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

/// One COMMAND INFO entry: name, arity, flags, first, last, step, categories, tips, key
/// specs, subcommands.
fn info_entry(c: &'static CommandSpec) -> Frame {
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

fn info(names: &[Bytes]) -> Frame {
    if names.is_empty() {
        return Frame::Array(visible().into_iter().map(info_entry).collect());
    }
    Frame::Array(names.iter().map(|n| find(n).map_or(Frame::Null, info_entry)).collect())
}

fn docs_entry(c: &CommandSpec) -> (Frame, Frame) {
    let doc = Frame::Map(vec![
        (Frame::bulk("summary"), Frame::bulk(format!("The {} command", c.name.to_ascii_uppercase()))),
        (Frame::bulk("since"), Frame::bulk("1.0.0")),
        (Frame::bulk("group"), Frame::bulk(group_of(c.name))),
    ]);
    (Frame::bulk(c.name), doc)
}

fn docs(names: &[Bytes]) -> Frame {
    if names.is_empty() {
        return Frame::Map(visible().into_iter().map(docs_entry).collect());
    }
    Frame::Map(names.iter().filter_map(|n| find(n)).map(docs_entry).collect())
}

/// COMMAND LIST [FILTERBY MODULE m | ACLCAT cat | PATTERN pat]
fn list(rest: &[Bytes]) -> Frame {
    let all = visible();
    let selected: Vec<&CommandSpec> = match rest {
        [] => all,
        [f, kind, val] if is(f, "filterby") => {
            if is(kind, "module") {
                Vec::new()
            } else if is(kind, "aclcat") {
                let cat = format!("@{}", String::from_utf8_lossy(val).to_ascii_lowercase());
                all.into_iter().filter(|c| categories(c).contains(&cat.as_str())).collect()
            } else if is(kind, "pattern") {
                all.into_iter().filter(|c| glob::matches(val, c.name.as_bytes(), true)).collect()
            } else {
                return Frame::error(args::SYNTAX);
            }
        }
        _ => return Frame::error(args::SYNTAX),
    };
    Frame::Array(selected.into_iter().map(|c| Frame::bulk(c.name)).collect())
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS <command> <args...>. The flags are derived from the
/// command's kind (RW/RO), as raftis keeps no per-key access flags.
fn getkeys(line: &[Bytes], with_flags: bool) -> Frame {
    let Some(spec) = line.first().and_then(|n| find(n)) else {
        return Frame::error("ERR Invalid command specified");
    };
    if spec.keys.0 == 0 && cmd::key_indexes(spec, line).is_empty() {
        return Frame::error("ERR The command has no key arguments");
    }
    if !spec.arity_ok(line.len()) {
        return Frame::error("ERR Invalid number of arguments specified for command");
    }
    let keys = cmd::key_indexes(spec, line);
    if keys.is_empty() {
        return Frame::error("ERR Invalid arguments specified for command");
    }
    let flags = if spec.is_write() { ["RW", "update"] } else { ["RO", "access"] };
    let entry = |k: &Bytes| {
        if with_flags {
            let f = flags.iter().map(|f| Frame::Simple(Bytes::from_static(f.as_bytes()))).collect();
            Frame::Array(vec![Frame::Bulk(k.clone()), Frame::Array(f)])
        } else {
            Frame::Bulk(k.clone())
        }
    };
    Frame::Array(keys.into_iter().filter_map(|i| line.get(i)).map(entry).collect())
}

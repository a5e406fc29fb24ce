//! Consumer group administration: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER,
//! DELCONSUMER, HELP) and XACK, as Redis 7.0's `xgroupCommand` / `xackCommand` (checks in
//! their order, their error texts).

use super::super::args::{err, int, is, wrong_arity, wrongtype};
use super::{parse, reply};
use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::stream::{Group, StreamId, StreamValue, ENTRIES_READ_UNKNOWN};
use crate::store::Value;
use bytes::Bytes;

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// An error reply built from raw parts, each cut at a NUL byte as Redis's `%s` does.
pub fn err_parts(parts: &[&[u8]]) -> Frame {
    let mut msg = Vec::new();
    for p in parts {
        msg.extend_from_slice(&p[..p.iter().position(|&b| b == 0).unwrap_or(p.len())]);
    }
    Frame::Error(Bytes::from(msg))
}

/// `-NOGROUP No such key 'k' or consumer group 'g'` (+ `suffix`).
pub fn no_key_or_group(key: &[u8], group: &[u8], suffix: &str) -> Frame {
    err_parts(&[b"NOGROUP No such key '", key, b"' or consumer group '", group, b"'", suffix.as_bytes()])
}

/// `-NOGROUP No such consumer group 'g' for key name 'k'`.
pub fn no_group_for_key(group: &[u8], key: &[u8]) -> Frame {
    err_parts(&[b"NOGROUP No such consumer group '", group, b"' for key name '", key, b"'"])
}

/// `addReplySubcommandSyntaxError`.
pub fn subcommand_syntax(sub: &[u8], cmd: &str) -> Frame {
    let sub = &sub[..sub.len().min(128)];
    err_parts(&[
        b"ERR unknown subcommand or wrong number of arguments for '",
        sub,
        b"'. Try ",
        cmd.as_bytes(),
        b" HELP.",
    ])
}

/// The exact arity of each XGROUP subcommand (negative: at least), as Redis 7.0's table.
fn sub_arity(sub: &[u8]) -> Option<(&'static str, i32)> {
    let table: [(&str, i32); 6] =
        [("create", -5), ("setid", -5), ("destroy", 4), ("createconsumer", 5), ("delconsumer", 5), ("help", 2)];
    table.into_iter().find(|(n, _)| is(sub, n))
}

pub fn xgroup(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let Some((name, arity)) = sub_arity(&argv[1]) else {
        return super::super::args::unknown_subcommand(&argv[1], "xgroup");
    };
    let n = argv.len() as i32;
    if (arity >= 0 && n != arity) || (arity < 0 && n < -arity) {
        return wrong_arity(&format!("xgroup|{name}"));
    }
    if name == "help" {
        return Frame::Array(XGROUP_HELP.iter().copied().map(Frame::simple).collect());
    }
    reply(xgroup_inner(ctx, argv, name))
}

/// XGROUP's options after the id (`MKSTREAM`, `ENTRIESREAD n`).
fn xgroup_options(argv: &[Bytes], name: &str) -> Result<(bool, i64), Frame> {
    let (mut mkstream, mut entries_read) = (false, ENTRIES_READ_UNKNOWN);
    let mut i = 5;
    while i < argv.len() {
        if name == "create" && is(&argv[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if matches!(name, "create" | "setid") && is(&argv[i], "entriesread") && i + 1 < argv.len() {
            entries_read = int(&argv[i + 1])?;
            if entries_read < 0 && entries_read != ENTRIES_READ_UNKNOWN {
                return Err(err("ERR value for ENTRIESREAD must be positive or -1"));
            }
            i += 2;
        } else {
            return Err(subcommand_syntax(&argv[1], "XGROUP"));
        }
    }
    Ok((mkstream, entries_read))
}

fn xgroup_inner(ctx: &mut WriteCtx, argv: &[Bytes], name: &str) -> Result<Frame, Frame> {
    let (key, group) = (&argv[2], &argv[3]);
    let (mkstream, entries_read) = xgroup_options(argv, name)?;
    let stream = ctx.get_stream(key)?;
    if !mkstream {
        let Some(s) = stream else {
            return Err(err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
        };
        if !s.groups.contains_key(group) && matches!(name, "setid" | "createconsumer" | "delconsumer") {
            return Err(no_group_for_key(group, key));
        }
    }
    let last_id = stream.map_or(StreamId::MIN, |s| s.last_id);
    let has_group = stream.is_some_and(|s| s.groups.contains_key(group));
    let now = ctx.now_ms;
    match name {
        "create" if argv.len() <= 8 => {
            let id = if argv[4].as_ref() == b"$" { last_id } else { parse::strict_id(&argv[4], 0)? };
            if has_group {
                return Err(err("BUSYGROUP Consumer Group name already exists"));
            }
            let s = stream_mut(ctx, key)?;
            s.groups.insert(group.clone(), Group::new(id, entries_read));
            ctx.notify(notify::STREAM, "xgroup-create", key);
            Ok(Frame::ok())
        }
        "setid" if argv.len() == 5 || argv.len() == 7 => {
            let id = if argv[4].as_ref() == b"$" { last_id } else { parse::id(&argv[4], 0)? };
            if let Some(g) = stream_mut(ctx, key)?.groups.get_mut(group) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            ctx.notify(notify::STREAM, "xgroup-setid", key);
            Ok(Frame::ok())
        }
        "destroy" if has_group => {
            stream_mut(ctx, key)?.groups.remove(group);
            ctx.notify(notify::STREAM, "xgroup-destroy", key);
            Ok(Frame::Integer(1))
        }
        "destroy" => Ok(Frame::Integer(0)),
        "createconsumer" => {
            let exists = stream.and_then(|s| s.groups.get(group)).is_some_and(|g| g.consumers.contains_key(&argv[4]));
            if exists {
                return Ok(Frame::Integer(0));
            }
            let created = stream_mut(ctx, key)?.groups.get_mut(group).is_some_and(|g| g.create_consumer(&argv[4], now));
            if created {
                ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
            }
            Ok(Frame::Integer(created as i64))
        }
        "delconsumer" => {
            let exists = stream.and_then(|s| s.groups.get(group)).is_some_and(|g| g.consumers.contains_key(&argv[4]));
            if !exists {
                return Ok(Frame::Integer(0));
            }
            let pending = stream_mut(ctx, key)?.groups.get_mut(group).and_then(|g| g.delete_consumer(&argv[4]));
            ctx.notify(notify::STREAM, "xgroup-delconsumer", key);
            Ok(Frame::Integer(pending.unwrap_or(0) as i64))
        }
        _ => Err(subcommand_syntax(&argv[1], "XGROUP")),
    }
}

/// The stream at `key` for a change, created empty when absent (XGROUP CREATE ... MKSTREAM).
fn stream_mut<'a>(ctx: &'a mut WriteCtx, key: &Bytes) -> Result<&'a mut StreamValue, Frame> {
    match ctx.stream_mut(key, true)? {
        Some(s) => Ok(s),
        None => Err(wrongtype()),
    }
}

/// `XACK key group id...`: 0 when the key or group is missing, before the ids are checked.
pub fn xack(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xack_inner(ctx, argv))
}

fn xack_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let Some(g) = ctx.get_stream(&argv[1])?.and_then(|s| s.groups.get(&argv[2])) else {
        return Ok(Frame::Integer(0));
    };
    let ids = argv[3..].iter().map(|a| parse::strict_id(a, 0)).collect::<Result<Vec<_>, _>>()?;
    if !ids.iter().any(|id| g.pel.contains_key(id)) {
        return Ok(Frame::Integer(0));
    }
    let Some(Value::Stream(s)) = ctx.value_mut(&argv[1]) else { return Ok(Frame::Integer(0)) };
    let Some(g) = s.groups.get_mut(&argv[2]) else { return Ok(Frame::Integer(0)) };
    Ok(Frame::Integer(ids.into_iter().filter(|id| g.ack(*id)).count() as i64))
}

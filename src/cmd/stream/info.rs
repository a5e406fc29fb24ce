//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS and XINFO HELP, field by field
//! as Redis 7.0's `xinfoCommand`. Maps are RESP3 maps (flat arrays under RESP2).

use super::group::{no_group_for_key, subcommand_syntax};
use super::{entry_frame, id_frame, reply};
use crate::cmd::args::{err, int, is, wrong_arity, NO_SUCH_KEY};
use crate::cmd::ReadCtx;
use crate::protocol::Frame;
use crate::store::stream::{Group, StreamId, StreamValue, ENTRIES_READ_UNKNOWN};
use bytes::Bytes;

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn field(name: &'static str, value: Frame) -> (Frame, Frame) {
    (Frame::bulk(name), value)
}

fn int_frame(n: usize) -> Frame {
    Frame::Integer(n as i64)
}

pub fn xinfo(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let table: [(&str, i32); 4] = [("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)];
    let Some((name, arity)) = table.into_iter().find(|(n, _)| is(&argv[1], n)) else {
        return crate::cmd::args::unknown_subcommand(&argv[1], "xinfo");
    };
    let n = argv.len() as i32;
    if (arity >= 0 && n != arity) || (arity < 0 && n < -arity) {
        return wrong_arity(&format!("xinfo|{name}"));
    }
    if name == "help" {
        return Frame::Array(XINFO_HELP.iter().copied().map(Frame::simple).collect());
    }
    reply(xinfo_inner(ctx, argv, name))
}

fn xinfo_inner(ctx: &mut ReadCtx, argv: &[Bytes], name: &str) -> Result<Frame, Frame> {
    let Some(s) = ctx.get_stream(&argv[2])? else { return Err(err(NO_SUCH_KEY)) };
    match name {
        "consumers" => {
            let Some(g) = s.groups.get(&argv[3]) else { return Err(no_group_for_key(&argv[3], &argv[2])) };
            Ok(consumers(g, ctx.now_ms))
        }
        "groups" => Ok(Frame::Array(s.groups.iter().map(|(name, g)| group_summary(s, name, g)).collect())),
        _ => stream_info(s, argv),
    }
}

fn consumers(g: &Group, now: u64) -> Frame {
    let one = |(name, c): (&Bytes, &crate::store::stream::Consumer)| {
        Frame::Map(vec![
            field("name", Frame::Bulk(name.clone())),
            field("pending", int_frame(c.pending.len())),
            field("idle", Frame::Integer((now as i64 - c.seen_time as i64).max(0))),
        ])
    };
    Frame::Array(g.consumers.iter().map(one).collect())
}

fn entries_read(g: &Group) -> Frame {
    if g.entries_read == ENTRIES_READ_UNKNOWN {
        Frame::Null
    } else {
        Frame::Integer(g.entries_read)
    }
}

fn lag(s: &StreamValue, g: &Group) -> Frame {
    s.lag(g).map_or(Frame::Null, Frame::Integer)
}

fn group_summary(s: &StreamValue, name: &Bytes, g: &Group) -> Frame {
    Frame::Map(vec![
        field("name", Frame::Bulk(name.clone())),
        field("consumers", int_frame(g.consumers.len())),
        field("pending", int_frame(g.pel.len())),
        field("last-delivered-id", id_frame(g.last_id)),
        field("entries-read", entries_read(g)),
        field("lag", lag(s, g)),
    ])
}

fn stream_info(s: &StreamValue, argv: &[Bytes]) -> Result<Frame, Frame> {
    let opts = &argv[3..];
    let mut count: i64 = 10;
    let full = !opts.is_empty();
    if full {
        let syntax = || subcommand_syntax(&argv[1], "XINFO");
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return Err(syntax());
        }
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return Err(syntax());
            }
            count = int(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let mut fields = vec![
        field("length", Frame::Integer(s.len() as i64)),
        field("radix-tree-keys", int_frame(s.node_count())),
        field("radix-tree-nodes", int_frame(s.radix_tree_nodes())),
        field("last-generated-id", id_frame(s.last_id)),
        field("max-deleted-entry-id", id_frame(s.max_deleted_id)),
        field("entries-added", Frame::Integer(s.entries_added as i64)),
        field("recorded-first-entry-id", id_frame(s.first_id)),
    ];
    if !full {
        let edge = |first| s.edge(first).map_or(Frame::Null, |e| entry_frame(&e));
        fields.push(field("groups", int_frame(s.groups.len())));
        fields.push(field("first-entry", edge(true)));
        fields.push(field("last-entry", edge(false)));
        return Ok(Frame::Map(fields));
    }
    let limit = if count == 0 { usize::MAX } else { count as usize };
    let entries = s.range(StreamId::MIN, StreamId::MAX).take(limit).map(|e| entry_frame(&e)).collect();
    fields.push(field("entries", Frame::Array(entries)));
    let groups = s.groups.iter().map(|(name, g)| group_full(s, name, g, limit)).collect();
    fields.push(field("groups", Frame::Array(groups)));
    Ok(Frame::Map(fields))
}

fn group_full(s: &StreamValue, name: &Bytes, g: &Group, limit: usize) -> Frame {
    let pel = g
        .pel
        .iter()
        .take(limit)
        .map(|(id, p)| {
            Frame::Array(vec![
                id_frame(*id),
                Frame::Bulk(p.consumer.clone()),
                Frame::Integer(p.delivery_time as i64),
                Frame::Integer(p.delivery_count as i64),
            ])
        })
        .collect();
    let consumers = g
        .consumers
        .iter()
        .map(|(cname, c)| {
            let pending = c
                .pending
                .iter()
                .take(limit)
                .map(|id| {
                    let p = g.pel.get(id);
                    Frame::Array(vec![
                        id_frame(*id),
                        Frame::Integer(p.map_or(0, |p| p.delivery_time as i64)),
                        Frame::Integer(p.map_or(0, |p| p.delivery_count as i64)),
                    ])
                })
                .collect();
            Frame::Map(vec![
                field("name", Frame::Bulk(cname.clone())),
                field("seen-time", Frame::Integer(c.seen_time as i64)),
                field("pel-count", int_frame(c.pending.len())),
                field("pending", Frame::Array(pending)),
            ])
        })
        .collect();
    Frame::Map(vec![
        field("name", Frame::Bulk(name.clone())),
        field("last-delivered-id", id_frame(g.last_id)),
        field("entries-read", entries_read(g)),
        field("lag", lag(s, g)),
        field("pel-count", int_frame(g.pel.len())),
        field("pending", Frame::Array(pel)),
        field("consumers", Frame::Array(consumers)),
    ])
}

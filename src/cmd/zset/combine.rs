//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD (`zunionInterDiffGenericCommand`):
//! WEIGHTS, AGGREGATE SUM|MIN|MAX, WITHSCORES, LIMIT. Inputs may be sorted sets or plain sets
//! (every member scoring 1).

use super::super::args::{self, err, is, syntax};
use super::owned_reply;
use super::parse::parse_score;
use super::range::store_result;
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::set::SetValue;
use crate::store::zset::{cmp_entry, ZSetValue};
use crate::store::Value;
use bytes::Bytes;
use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// One input: a sorted set, a plain set (every member scoring 1), or nothing (missing key).
enum Source<'a> {
    Missing,
    ZSet(&'a ZSetValue),
    Set(&'a SetValue),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::ZSet(z) => z.len(),
            Source::Set(m) => m.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::ZSet(z) => z.score(member),
            Source::Set(m) => m.contains(member).then_some(1.0),
        }
    }

    fn elements(&self) -> Box<dyn Iterator<Item = (Bytes, f64)> + '_> {
        match self {
            Source::Missing => Box::new(std::iter::empty()),
            Source::ZSet(z) => Box::new(z.iter().map(|(m, s)| (m.clone(), s))),
            Source::Set(m) => Box::new(m.iter().map(|x| (x, 1.0))),
        }
    }
}

struct Request<'a> {
    sources: Vec<(Source<'a>, f64)>,
    aggregate: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys key... [options]` at `argv[at]`, loading the inputs through `lookup`.
fn parse<'a>(
    argv: &[Bytes],
    at: usize,
    op: Op,
    store: bool,
    card: bool,
    lookup: impl Fn(&[u8]) -> Option<&'a Value>,
) -> Result<Request<'a>, Frame> {
    let n = args::int(&argv[at])?;
    if n < 1 {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        return Err(err(&format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    if n as u64 > (argv.len() - at - 1) as u64 {
        return Err(syntax());
    }
    let n = n as usize;
    let mut sources = Vec::with_capacity(n);
    for key in &argv[at + 1..at + 1 + n] {
        let src = match lookup(key) {
            None => Source::Missing,
            Some(Value::ZSet(z)) => Source::ZSet(z),
            Some(Value::Set(s)) => Source::Set(s),
            Some(_) => return Err(args::wrongtype()),
        };
        sources.push((src, 1.0));
    }
    let mut req = Request { sources, aggregate: Aggregate::Sum, withscores: false, limit: 0 };
    let mut j = at + 1 + n;
    while j < argv.len() {
        let a = &argv[j];
        let left = argv.len() - j;
        if op != Op::Diff && !card && left > n && is(a, "weights") {
            for (i, w) in argv[j + 1..=j + n].iter().enumerate() {
                req.sources[i].1 = parse_score(w).ok_or_else(|| err("ERR weight value is not a float"))?;
            }
            j += n + 1;
        } else if op != Op::Diff && !card && left >= 2 && is(a, "aggregate") {
            req.aggregate = match &argv[j + 1] {
                x if is(x, "sum") => Aggregate::Sum,
                x if is(x, "min") => Aggregate::Min,
                x if is(x, "max") => Aggregate::Max,
                _ => return Err(syntax()),
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            req.withscores = true;
            j += 1;
        } else if card && left >= 2 && is(a, "limit") {
            req.limit = match args::int(&argv[j + 1]) {
                Ok(l) if l >= 0 => l as usize,
                _ => return Err(err("ERR LIMIT can't be negative")),
            };
            j += 2;
        } else {
            return Err(syntax());
        }
    }
    Ok(req)
}

/// Redis's `zunionInterAggregate`.
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = if val < *target { val } else { *target },
        Aggregate::Max => *target = if val > *target { val } else { *target },
    }
}

fn weighted(score: f64, weight: f64) -> f64 {
    let v = weight * score;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// The result of the operation, sorted by (score, member).
fn compute(op: Op, mut req: Request) -> Vec<(Bytes, f64)> {
    let mut out: Vec<(Bytes, f64)> = match op {
        Op::Union => {
            req.sources.sort_by_key(|(s, _)| s.len());
            let mut acc: BTreeMap<Bytes, f64> = BTreeMap::new();
            for (src, w) in &req.sources {
                for (m, s) in src.elements() {
                    let v = weighted(s, *w);
                    match acc.get_mut(&m) {
                        Some(t) => aggregate(t, v, req.aggregate),
                        None => {
                            acc.insert(m, v);
                        }
                    }
                }
            }
            acc.into_iter().collect()
        }
        Op::Inter => {
            req.sources.sort_by_key(|(s, _)| s.len());
            let Some(((first, w0), rest)) = req.sources.split_first() else { return Vec::new() };
            let mut out = Vec::new();
            'members: for (m, s) in first.elements() {
                let mut score = weighted(s, *w0);
                for (src, w) in rest {
                    match src.score(&m) {
                        Some(v) => aggregate(&mut score, w * v, req.aggregate),
                        None => continue 'members,
                    }
                }
                out.push((m, score));
            }
            out
        }
        Op::Diff => {
            let Some(((first, _), rest)) = req.sources.split_first() else { return Vec::new() };
            first.elements().filter(|(m, _)| rest.iter().all(|(src, _)| src.score(m).is_none())).collect()
        }
    };
    out.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
    out
}

fn read_op(ctx: &mut ReadCtx, argv: &[Bytes], op: Op) -> Frame {
    let req = match parse(argv, 1, op, false, false, |k| ctx.value(k)) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let withscores = req.withscores;
    owned_reply(&compute(op, req), withscores)
}

fn store_op(ctx: &mut WriteCtx, argv: &[Bytes], op: Op) -> Frame {
    let result = match parse(argv, 2, op, true, false, |k| ctx.value(k)) {
        Ok(req) => compute(op, req),
        Err(e) => return e,
    };
    let event = match op {
        Op::Union => "zunionstore",
        Op::Inter => "zinterstore",
        Op::Diff => "zdiffstore",
    };
    store_result(ctx, &argv[1], result, event)
}

/// `ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub fn zunion(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_op(ctx, argv, Op::Union)
}

/// `ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub fn zinter(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_op(ctx, argv, Op::Inter)
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
pub fn zdiff(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_op(ctx, argv, Op::Diff)
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]`
pub fn zunionstore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    store_op(ctx, argv, Op::Union)
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]`
pub fn zinterstore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    store_op(ctx, argv, Op::Inter)
}

/// `ZDIFFSTORE destination numkeys key [key ...]`
pub fn zdiffstore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    store_op(ctx, argv, Op::Diff)
}

/// `ZINTERCARD numkeys key... [LIMIT limit]`
pub fn zintercard(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let mut req = match parse(argv, 1, Op::Inter, false, true, |k| ctx.value(k)) {
        Ok(r) => r,
        Err(e) => return e,
    };
    req.sources.sort_by_key(|(s, _)| s.len());
    let Some(((first, _), rest)) = req.sources.split_first() else { return Frame::Integer(0) };
    let limit = if req.limit == 0 { usize::MAX } else { req.limit };
    let n = first.elements().filter(|(m, _)| rest.iter().all(|(src, _)| src.score(m).is_some())).take(limit).count();
    Frame::Integer(n as i64)
}

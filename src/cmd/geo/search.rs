//! GEORADIUS, GEORADIUSBYMEMBER (and their `_RO` forms), GEOSEARCH and GEOSEARCHSTORE: one
//! parser and one search, as Redis's `georadiusGeneric`, with its argument order, its error
//! texts and its result order (the nine boxes scanned centre first, each in score order, then
//! sorted by distance when asked, with the sorts Redis uses).

use super::hash::{self, Shape, ShapeKind};
use super::{distance_reply, parse_lon_lat, parse_unit};
use crate::cmd::args::{self, err, is, syntax};
use crate::cmd::pqsort::pqsort;
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::zset::ZSetValue;
use crate::store::Value;
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::HashSet;

/// Which command is running (Redis's `RADIUS_*` / `GEOSEARCH*` flags).
#[derive(Clone, Copy, PartialEq)]
pub enum Variant {
    Radius { by_member: bool, read_only: bool },
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A parsed query.
struct Query {
    shape: Option<Shape>,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    count: u64,
    /// The destination and whether to store distances (STOREDIST) rather than hashes.
    store: Option<(Bytes, bool)>,
}

/// One match.
struct Point {
    member: Bytes,
    xy: [f64; 2],
    dist: f64,
    score: f64,
}

/// What a query comes to: a reply, or a zset to store at a key (deleted when empty).
pub enum Outcome {
    Reply(Frame),
    Store { dest: Bytes, items: Vec<(Bytes, f64)>, event: &'static str },
}

const NOT_DECODED: &str = "ERR could not decode requested zset member";

/// Runs a query that cannot store (the `_RO` forms and GEOSEARCH).
pub fn read(ctx: &mut ReadCtx, argv: &[Bytes], v: Variant) -> Frame {
    match run(ctx, argv, v) {
        Ok(Outcome::Reply(f)) | Err(f) => f,
        Ok(Outcome::Store { .. }) => syntax(),
    }
}

/// Runs a query that may store (GEORADIUS, GEORADIUSBYMEMBER, GEOSEARCHSTORE).
pub fn write(ctx: &mut WriteCtx, argv: &[Bytes], v: Variant) -> Frame {
    let outcome = match run(&ctx.read(), argv, v) {
        Ok(o) => o,
        Err(f) => return f,
    };
    let (dest, items, event) = match outcome {
        Outcome::Reply(f) => return f,
        Outcome::Store { dest, items, event } => (dest, items, event),
    };
    let n = items.len() as i64;
    if items.is_empty() {
        ctx.delete(&dest);
    } else {
        ctx.set(dest.clone(), Value::ZSet(Box::new(ZSetValue::from_entries(items))), None);
        ctx.notify(notify::ZSET, event, &dest);
    }
    Frame::Integer(n)
}

fn run(ctx: &ReadCtx, argv: &[Bytes], v: Variant) -> Result<Outcome, Frame> {
    let src = if matches!(v, Variant::Search { store: true }) { 2 } else { 1 };
    let z = ctx.get_zset(&argv[src])?;
    let q = parse(z, argv, v)?;
    let Some(z) = z else {
        return Ok(match q.store {
            Some((dest, _)) => Outcome::Store { dest, items: Vec::new(), event: "" },
            None => Outcome::Reply(Frame::Array(Vec::new())),
        });
    };
    let Some(shape) = q.shape else { return Err(syntax()) };
    let mut points = collect(z, &shape, if q.any { q.count } else { 0 });
    let sort = if q.count != 0 && q.sort == Sort::None && !q.any { Sort::Asc } else { q.sort };
    let returned = if q.count == 0 { points.len() } else { points.len().min(q.count.min(usize::MAX as u64) as usize) };
    if sort != Sort::None {
        sort_points(&mut points, sort == Sort::Desc, returned);
    }
    points.truncate(returned);
    for p in &mut points {
        p.dist /= shape.conversion;
    }
    Ok(match q.store {
        Some((dest, storedist)) => {
            let event = if matches!(v, Variant::Search { .. }) { "geosearchstore" } else { "georadiusstore" };
            let mut seen = HashSet::new();
            let items = points
                .into_iter()
                .filter(|p| seen.insert(p.member.clone()))
                .map(|p| (p.member, if storedist { p.dist } else { p.score }))
                .collect();
            Outcome::Store { dest, items, event }
        }
        None => Outcome::Reply(Frame::Array(points.iter().map(|p| point_reply(p, &q)).collect())),
    })
}

/// Redis's `sort_gp_asc` / `sort_gp_desc`: glibc's `qsort` (a stable merge sort) when every
/// result is returned, `pqsort` of the first `returned` otherwise.
fn sort_points(points: &mut [Point], desc: bool, returned: usize) {
    let asc = |a: &Point, b: &Point| {
        if a.dist > b.dist {
            Ordering::Greater
        } else if a.dist == b.dist {
            Ordering::Equal
        } else {
            Ordering::Less
        }
    };
    let cmp = |a: &Point, b: &Point| if desc { asc(a, b).reverse() } else { asc(a, b) };
    if returned == points.len() {
        points.sort_by(cmp);
    } else if returned > 0 {
        pqsort(points, &cmp, 0, returned - 1);
    }
}

fn point_reply(p: &Point, q: &Query) -> Frame {
    if !(q.withdist || q.withhash || q.withcoord) {
        return Frame::Bulk(p.member.clone());
    }
    let mut item = vec![Frame::Bulk(p.member.clone())];
    if q.withdist {
        item.push(distance_reply(p.dist));
    }
    if q.withhash {
        item.push(Frame::Integer(p.score as i64));
    }
    if q.withcoord {
        item.push(Frame::Array(vec![Frame::HumanDouble(p.xy[0]), Frame::HumanDouble(p.xy[1])]));
    }
    Frame::Array(item)
}

/// `membersOfAllNeighbors`: the points of the nine boxes that lie in the shape, stopping
/// at `limit` matches when it is not 0 (ANY).
fn collect(z: &ZSetValue, shape: &Shape, limit: u64) -> Vec<Point> {
    let boxes = hash::search_boxes(shape);
    let mut out = Vec::new();
    let mut last: Option<hash::Bits> = None;
    let full = |out: &Vec<Point>| limit != 0 && out.len() as u64 >= limit;
    for b in boxes {
        if b == hash::Bits::default() || last == Some(b) {
            continue;
        }
        if full(&out) {
            break;
        }
        let (min, max) = hash::score_range(b);
        let (min, max) = (min as f64, max as f64);
        let start = z.partition_point(|_, s| s < min);
        for (member, score) in z.iter_from(start) {
            if score >= max {
                break;
            }
            let xy = hash::decode_score(score);
            if let Some(dist) = hash::within(shape, xy) {
                out.push(Point { member: member.clone(), xy, dist, score });
            }
            if full(&out) {
                break;
            }
        }
        last = Some(b);
    }
    out
}

/// `extractDistanceOrReply`: a radius and its unit.
fn parse_radius(value: &[u8], unit: &[u8]) -> Result<(f64, f64), Frame> {
    let radius = args::parse_float(value).ok_or_else(|| err("ERR need numeric radius"))?;
    if radius < 0.0 {
        return Err(err("ERR radius cannot be negative"));
    }
    Ok((radius, parse_unit(unit)?))
}

/// `extractBoxOrReply`: width, height and their unit.
fn parse_box(argv: &[Bytes]) -> Result<(f64, f64, f64), Frame> {
    let width = args::parse_float(&argv[0]).ok_or_else(|| err("ERR need numeric width"))?;
    let height = args::parse_float(&argv[1]).ok_or_else(|| err("ERR need numeric height"))?;
    if height < 0.0 || width < 0.0 {
        return Err(err("ERR height or width cannot be negative"));
    }
    Ok((width, height, parse_unit(&argv[2])?))
}

/// The member's position, for BYMEMBER / FROMMEMBER.
fn member_xy(z: &ZSetValue, member: &[u8]) -> Result<[f64; 2], Frame> {
    z.score(member).map(hash::decode_score).ok_or_else(|| err(NOT_DECODED))
}

/// The arguments before the options: GEORADIUS's centre and radius, GEORADIUSBYMEMBER's
/// member and radius. Returns the shape (none when the key is missing for BYMEMBER) and
/// where the options start.
fn parse_head(z: Option<&ZSetValue>, argv: &[Bytes], v: Variant) -> Result<(Option<Shape>, usize), Frame> {
    match v {
        Variant::Radius { by_member: false, .. } => {
            let xy = parse_lon_lat(&argv[2], &argv[3])?;
            let (radius, conversion) = parse_radius(&argv[4], &argv[5])?;
            Ok((Some(Shape { xy, conversion, kind: ShapeKind::Circle { radius } }), 6))
        }
        Variant::Radius { by_member: true, .. } => {
            let Some(z) = z else { return Ok((None, 5)) };
            let xy = member_xy(z, &argv[2])?;
            let (radius, conversion) = parse_radius(&argv[3], &argv[4])?;
            Ok((Some(Shape { xy, conversion, kind: ShapeKind::Circle { radius } }), 5))
        }
        Variant::Search { store } => Ok((None, if store { 3 } else { 2 })),
    }
}

fn parse(z: Option<&ZSetValue>, argv: &[Bytes], v: Variant) -> Result<Query, Frame> {
    let (shape, base) = parse_head(z, argv, v)?;
    let mut q = Query {
        shape,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
        store: None,
    };
    let search = matches!(v, Variant::Search { .. });
    let can_store = matches!(v, Variant::Radius { read_only: false, .. });
    if let Variant::Search { store: true } = v {
        q.store = Some((argv[1].clone(), false));
    }
    // FROMMEMBER/FROMLONLAT centre, BYRADIUS/BYBOX size (GEOSEARCH).
    let (mut centre, mut size): (Option<[f64; 2]>, Option<(ShapeKind, f64)>) = (None, None);
    let (mut from_member, mut from_loc) = (false, false);
    let rest = &argv[base..];
    let mut i = 0;
    while i < rest.len() {
        let (a, left) = (&rest[i], rest.len() - i - 1);
        if is(a, "withdist") {
            q.withdist = true;
        } else if is(a, "withhash") {
            q.withhash = true;
        } else if is(a, "withcoord") {
            q.withcoord = true;
        } else if is(a, "any") {
            q.any = true;
        } else if is(a, "asc") {
            q.sort = Sort::Asc;
        } else if is(a, "desc") {
            q.sort = Sort::Desc;
        } else if is(a, "count") && left >= 1 {
            let n = args::int(&rest[i + 1])?;
            if n <= 0 {
                return Err(err("ERR COUNT must be > 0"));
            }
            q.count = n as u64;
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && left >= 1 && can_store {
            q.store = Some((rest[i + 1].clone(), is(a, "storedist")));
            i += 1;
        } else if is(a, "storedist") && v == (Variant::Search { store: true }) {
            q.store = Some((argv[1].clone(), true));
        } else if is(a, "frommember") && left >= 1 && search && !from_loc {
            if let Some(z) = z {
                centre = Some(member_xy(z, &rest[i + 1])?);
            }
            from_member = true;
            i += 1;
        } else if is(a, "fromlonlat") && left >= 2 && search && !from_member {
            centre = Some(parse_lon_lat(&rest[i + 1], &rest[i + 2])?);
            from_loc = true;
            i += 2;
        } else if is(a, "byradius") && left >= 2 && search && !matches!(size, Some((ShapeKind::Rect { .. }, _))) {
            let (radius, conversion) = parse_radius(&rest[i + 1], &rest[i + 2])?;
            size = Some((ShapeKind::Circle { radius }, conversion));
            i += 2;
        } else if is(a, "bybox") && left >= 3 && search && !matches!(size, Some((ShapeKind::Circle { .. }, _))) {
            let (width, height, conversion) = parse_box(&rest[i + 1..i + 4])?;
            size = Some((ShapeKind::Rect { width, height }, conversion));
            i += 3;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    check(&q, argv, v, from_member || from_loc, size.is_some())?;
    if search {
        if let (Some(xy), Some((kind, conversion))) = (centre, size) {
            q.shape = Some(Shape { xy, conversion, kind });
        }
    }
    Ok(q)
}

/// The checks Redis makes after reading every option, in its order.
fn check(q: &Query, argv: &[Bytes], v: Variant, has_centre: bool, has_size: bool) -> Result<(), Frame> {
    if q.store.is_some() && (q.withdist || q.withhash || q.withcoord) {
        let what = if v == (Variant::Search { store: true }) { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(err(&format!("ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")));
    }
    let name = String::from_utf8_lossy(&argv[0]);
    if matches!(v, Variant::Search { .. }) && !has_centre {
        return Err(err(&format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    }
    if matches!(v, Variant::Search { .. }) && !has_size {
        return Err(err(&format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    }
    if q.any && q.count == 0 {
        return Err(err("ERR the ANY argument requires COUNT argument"));
    }
    Ok(())
}

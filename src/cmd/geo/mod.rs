//! Geospatial commands, as Redis 7.0 has them: a geo index is a sorted set whose scores are
//! 52-bit geohashes (`hash`), so GEOADD is a ZADD of computed scores (a write through the log
//! like any ZADD) and the lookups decode scores. `search` holds the radius and box queries.

mod hash;
mod search;

use super::args::{self, err, syntax};
use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use bytes::Bytes;
use search::Variant;

const R: &[&str] = &["readonly"];
const WD: &[&str] = &["write", "denyoom"];
const WDM: &[&str] = &["write", "denyoom", "movablekeys"];

/// The geo command table (arity, flags and key positions as Redis 7.0.15 reports them).
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WD, (1, 1, 1), Kind::Write(geoadd)),
    CommandSpec::new("geodist", -4, R, (1, 1, 1), Kind::Read(geodist)),
    CommandSpec::new("geohash", -2, R, (1, 1, 1), Kind::Read(geohash)),
    CommandSpec::new("geopos", -2, R, (1, 1, 1), Kind::Read(geopos)),
    CommandSpec::new("georadius", -6, WDM, (1, 1, 1), Kind::Write(georadius)),
    CommandSpec::new("georadius_ro", -6, R, (1, 1, 1), Kind::Read(georadius_ro)),
    CommandSpec::new("georadiusbymember", -5, WDM, (1, 1, 1), Kind::Write(georadiusbymember)),
    CommandSpec::new("georadiusbymember_ro", -5, R, (1, 1, 1), Kind::Read(georadiusbymember_ro)),
    CommandSpec::new("geosearch", -7, R, (1, 1, 1), Kind::Read(geosearch)),
    CommandSpec::new("geosearchstore", -8, WD, (1, 2, 1), Kind::Write(geosearchstore)),
];

/// GEORADIUS and GEORADIUSBYMEMBER's keys: the source and the STORE / STOREDIST key (the
/// last one given), as Redis's `georadiusGetKeys`.
pub fn georadius_keys(argv: &[Bytes]) -> Vec<usize> {
    let mut stored = None;
    let mut i = 5;
    while i < argv.len() {
        if (args::is(&argv[i], "store") || args::is(&argv[i], "storedist")) && i + 1 < argv.len() {
            stored = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    std::iter::once(1).chain(stored).collect()
}

/// A longitude, latitude pair within Redis's limits (`extractLongLatOrReply`).
fn parse_lon_lat(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], Frame> {
    let xy = [args::float(lon)?, args::float(lat)?];
    if !(hash::LONG_MIN..=hash::LONG_MAX).contains(&xy[0]) || !(hash::LAT_MIN..=hash::LAT_MAX).contains(&xy[1]) {
        return Err(err(&format!("ERR invalid longitude,latitude pair {:.6},{:.6}", xy[0], xy[1])));
    }
    Ok(xy)
}

/// A unit's size in meters (`extractUnitOrReply`).
fn parse_unit(unit: &[u8]) -> Result<f64, Frame> {
    Ok(match unit.to_ascii_lowercase().as_slice() {
        b"m" => 1.0,
        b"km" => 1000.0,
        b"ft" => 0.3048,
        b"mi" => 1609.34,
        _ => return Err(err("ERR unsupported unit provided. please use M, KM, FT, MI")),
    })
}

/// A distance as Redis replies with it (`addReplyDoubleDistance`): four decimals, rounded
/// half to even as `llrint` rounds, as a bulk string in both protocols.
fn distance_reply(d: f64) -> Frame {
    Frame::Bulk(Bytes::from(format_distance(d)))
}

/// `fixedpoint_d2string(d, 4)`.
fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    // llrint: out of range gives LLONG_MIN, as on x86-64.
    let scaled = (d * 10000.0).round_ties_even();
    let v = if scaled.is_nan() || !(-9.223372036854776e18..9.223372036854776e18).contains(&scaled) {
        i64::MIN
    } else {
        scaled as i64
    };
    let sign = if v < 0 { "-" } else { "" };
    let abs = v.unsigned_abs();
    format!("{sign}{}.{:04}", abs / 10000, abs % 10000)
}

/// `GEOADD key [NX|XX] [CH] longitude latitude member [...]`: ZADD with the members'
/// geohashes as scores (same flags, reply and `zadd` event).
pub fn geoadd(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while let Some(opt) = argv.get(first) {
        match () {
            _ if args::is(opt, "nx") => nx = true,
            _ if args::is(opt, "xx") => xx = true,
            _ if args::is(opt, "ch") => {}
            _ => break,
        }
        first += 1;
    }
    if !(argv.len() - first).is_multiple_of(3) || (xx && nx) {
        return syntax();
    }
    let mut zargv: Vec<Bytes> = Vec::with_capacity(first + (argv.len() - first) / 3 * 2);
    zargv.push(Bytes::from_static(b"zadd"));
    zargv.extend_from_slice(&argv[1..first]);
    for triple in argv[first..].chunks(3) {
        let [lon, lat] = match parse_lon_lat(&triple[0], &triple[1]) {
            Ok(xy) => xy,
            Err(e) => return e,
        };
        let score = hash::score_of(lon, lat).unwrap_or(0);
        zargv.push(Bytes::from(score.to_string()));
        zargv.push(triple[2].clone());
    }
    super::zset::zadd(ctx, &zargv)
}

/// `GEOPOS key member [member ...]`
pub fn geopos(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let z = match ctx.get_zset(&argv[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let pos = |m: &Bytes| match z.and_then(|z| z.score(m)) {
        None => Frame::NullArray,
        Some(score) => {
            let [x, y] = hash::decode_score(score);
            Frame::Array(vec![Frame::HumanDouble(x), Frame::HumanDouble(y)])
        }
    };
    Frame::Array(argv[2..].iter().map(pos).collect())
}

/// `GEOHASH key member [member ...]`: standard 11-character geohashes (re-encoded over
/// latitude -90..90, the last character always `0`).
pub fn geohash(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let z = match ctx.get_zset(&argv[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let text = |score: f64| {
        let [x, y] = hash::decode_score(score);
        let ranges = (hash::Range { min: -180.0, max: 180.0 }, hash::Range { min: -90.0, max: 90.0 });
        let bits = hash::encode(ranges.0, ranges.1, x, y, 26).map_or(0, |h| h.bits);
        let mut out = [b'0'; 11];
        for (i, c) in out.iter_mut().take(10).enumerate() {
            *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
        }
        Frame::Bulk(Bytes::copy_from_slice(&out))
    };
    Frame::Array(argv[2..].iter().map(|m| z.and_then(|z| z.score(m)).map_or(Frame::Null, text)).collect())
}

/// `GEODIST key member1 member2 [M|KM|FT|MI]`
pub fn geodist(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let to_meter = match argv.len() {
        5 => match parse_unit(&argv[4]) {
            Ok(u) => u,
            Err(e) => return e,
        },
        n if n > 5 => return syntax(),
        _ => 1.0,
    };
    let z = match ctx.get_zset(&argv[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Frame::Null,
        Err(e) => return e,
    };
    let (Some(a), Some(b)) = (z.score(&argv[2]), z.score(&argv[3])) else { return Frame::Null };
    let ([x1, y1], [x2, y2]) = (hash::decode_score(a), hash::decode_score(b));
    distance_reply(hash::distance(x1, y1, x2, y2) / to_meter)
}

/// `GEORADIUS key longitude latitude radius unit [options] [STORE key] [STOREDIST key]`
pub fn georadius(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    search::write(ctx, argv, Variant::Radius { by_member: false, read_only: false })
}

/// `GEORADIUS_RO key longitude latitude radius unit [options]`
pub fn georadius_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    search::read(ctx, argv, Variant::Radius { by_member: false, read_only: true })
}

/// `GEORADIUSBYMEMBER key member radius unit [options] [STORE key] [STOREDIST key]`
pub fn georadiusbymember(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    search::write(ctx, argv, Variant::Radius { by_member: true, read_only: false })
}

/// `GEORADIUSBYMEMBER_RO key member radius unit [options]`
pub fn georadiusbymember_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    search::read(ctx, argv, Variant::Radius { by_member: true, read_only: true })
}

/// `GEOSEARCH key FROMMEMBER m|FROMLONLAT lon lat BYRADIUS r unit|BYBOX w h unit [options]`
pub fn geosearch(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    search::read(ctx, argv, Variant::Search { store: false })
}

/// `GEOSEARCHSTORE dest src FROMMEMBER ...|FROMLONLAT ... BYRADIUS ...|BYBOX ... [STOREDIST]`
pub fn geosearchstore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    search::write(ctx, argv, Variant::Search { store: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_have_four_decimals_rounded_half_even() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(166274.15156960033), "166274.1516");
        assert_eq!(format_distance(0.00004), "0.0000");
        assert_eq!(format_distance(0.00006), "0.0001");
        assert_eq!(format_distance(0.5), "0.5000");
        assert_eq!(format_distance(-1.5), "-1.5000");
    }

    #[test]
    fn georadius_keys_take_the_last_store() {
        let argv: Vec<Bytes> =
            "georadius k 1 2 3 km store a storedist b".split(' ').map(|s| Bytes::from(s.to_string())).collect();
        assert_eq!(georadius_keys(&argv), vec![1, 9]);
        assert_eq!(georadius_keys(&argv[..6]), vec![1]);
    }
}

//! Redis's geohash arithmetic (`geohash.c` and `geohash_helper.c` of Redis 7.0), ported
//! operation for operation so that scores, decoded coordinates, distances and the boxes a
//! radius search visits come out bit for bit as Redis computes them: a point is a 52-bit
//! interleaved hash of (latitude, longitude) stored as the member's zset score, and a search
//! scans the score ranges of the centre box and its eight neighbours.

/// Bits per coordinate of a stored point (26 * 2 = 52 bits: exact in a double score).
pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

const D_R: f64 = std::f64::consts::PI / 180.0;
/// Earth's quadratic mean radius for WGS-84, as Redis uses it.
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

/// A coordinate interval.
#[derive(Clone, Copy, Default, Debug)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// Redis's `GeoHashBits`: `step` bits per coordinate, interleaved in `bits`. All zero means
/// "no box" (a neighbour excluded from a search).
#[derive(Clone, Copy, Default, PartialEq, Debug)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

impl Bits {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// The area a hash stands for.
#[derive(Clone, Copy, Default, Debug)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

/// The search shape: a circle (`radius`) or an axis-aligned box (`width` x `height`), in
/// the unit whose size in meters is `conversion`, centred on `xy` (longitude, latitude).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub xy: [f64; 2],
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Clone, Copy, Debug)]
pub enum ShapeKind {
    Circle { radius: f64 },
    Rect { width: f64, height: f64 },
}

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] =
        [0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (xlo as u64, ylo as u64);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// Redis's coordinate limits (EPSG:900913): longitude, latitude.
pub fn coord_ranges() -> (Range, Range) {
    (Range { min: LONG_MIN, max: LONG_MAX }, Range { min: LAT_MIN, max: LAT_MAX })
}

/// `geohashEncode`: `None` outside the limits or for a bad step.
pub fn encode(long_range: Range, lat_range: Range, longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    let zero = |r: Range| r.max == 0.0 && r.min == 0.0;
    if step > 32 || step == 0 || zero(lat_range) || zero(long_range) {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min || latitude > lat_range.max || longitude < long_range.min || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    // C converts the doubles to uint32_t by truncation.
    Some(Bits { bits: interleave64(lat_offset as u32, long_offset as u32), step })
}

/// `geohashEncodeWGS84`.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    let (lo, la) = coord_ranges();
    encode(lo, la, longitude, latitude, step)
}

/// `geohashDecode`: the area of `hash`, `None` for the zero hash.
pub fn decode(long_range: Range, lat_range: Range, hash: Bits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (ilato as f64 * 1.0 / div) * lat_scale,
            max: lat_range.min + ((ilato as u64 + 1) as f64 * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (ilono as f64 * 1.0 / div) * long_scale,
            max: long_range.min + ((ilono as u64 + 1) as f64 * 1.0 / div) * long_scale,
        },
    })
}

/// Redis's `decodeGeohash`: a stored score back to (longitude, latitude), the centre of its
/// box clamped to the limits. Any score decodes (a zset not made by GEOADD too).
pub fn decode_score(score: f64) -> [f64; 2] {
    let (lo, la) = coord_ranges();
    let area = decode(lo, la, Bits { bits: c_double_to_u64(score), step: STEP_MAX }).unwrap_or_default();
    let x = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let y = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [x, y]
}

/// C's `(uint64_t)` of a double as gcc compiles it on x86-64 (`cvttsd2si`, with 2^63
/// subtracted first for large values), so that scores outside 0..2^52 (negative, infinite:
/// ZADD accepts them) decode to the same junk coordinates as in Redis.
fn c_double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    let cvtt = |d: f64| if d.is_nan() || !(-TWO63..TWO63).contains(&d) { i64::MIN } else { d as i64 };
    if d >= TWO63 {
        (cvtt(d - TWO63) as u64) ^ (1 << 63)
    } else {
        cvtt(d) as u64
    }
}

/// The 52-bit score of a point (`geohashAlign52Bits` of its step-26 hash).
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

pub fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - hash.step as u32 * 2)
}

fn move_x(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

fn move_y(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

/// A box moved by (`dx`, `dy`) boxes.
fn neighbour(hash: Bits, dx: i8, dy: i8) -> Bits {
    let mut h = hash;
    move_x(&mut h, dx);
    move_y(&mut h, dy);
    h
}

/// `geohashEstimateStepsByRadius`.
fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if lat.abs() > 66.0 {
        step -= 1;
        if lat.abs() > 80.0 {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// `geohashBoundingBox`: min longitude, min latitude, max longitude, max latitude.
fn bounding_box(shape: &Shape) -> [f64; 4] {
    let [longitude, latitude] = shape.xy;
    let (height, width) = match shape.kind {
        ShapeKind::Circle { radius } => (shape.conversion * radius, shape.conversion * radius),
        ShapeKind::Rect { width, height } => (shape.conversion * (height / 2.0), shape.conversion * (width / 2.0)),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let delta = if latitude < 0.0 { long_delta_bottom } else { long_delta_top };
    [longitude - delta, latitude - lat_delta, longitude + delta, latitude + lat_delta]
}

/// The boxes a search scans, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW); zero
/// boxes are skipped by the caller. `geohashCalculateAreasByShapeWGS84`.
pub fn search_boxes(shape: &Shape) -> [Bits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let [longitude, latitude] = shape.xy;
    let radius_meters = match shape.kind {
        ShapeKind::Circle { radius } => radius,
        ShapeKind::Rect { width, height } => ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
    } * shape.conversion;
    let mut steps = estimate_steps(radius_meters, latitude);
    let (lo, la) = coord_ranges();
    let centre = |steps| encode(lo, la, longitude, latitude, steps).unwrap_or_default();
    let mut hash = centre(steps);
    let area_of = |h: Bits| decode(lo, la, h).unwrap_or_default();
    // Is the step small enough at the edges of the covered area?
    let decrease = area_of(neighbour(hash, 0, 1)).latitude.max < max_lat
        || area_of(neighbour(hash, 0, -1)).latitude.min > min_lat
        || area_of(neighbour(hash, 1, 0)).longitude.max < max_lon
        || area_of(neighbour(hash, -1, 0)).longitude.min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        hash = centre(steps);
    }
    let area = area_of(hash);
    // (dx, dy) of north, south, east, west, north-east, north-west, south-east, south-west.
    const MOVES: [(i8, i8); 8] = [(0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1)];
    let mut boxes = [hash; 9];
    for (b, (dx, dy)) in boxes[1..].iter_mut().zip(MOVES) {
        *b = neighbour(hash, dx, dy);
        // Exclude the boxes that cannot hold a match.
        let useless = steps >= 2
            && ((dy < 0 && area.latitude.min < min_lat)
                || (dy > 0 && area.latitude.max > max_lat)
                || (dx < 0 && area.longitude.min < min_lon)
                || (dx > 0 && area.longitude.max > max_lon));
        if useless {
            *b = Bits::default();
        }
    }
    boxes
}

/// The score range `[min, max)` of the points inside `hash` (`scoresOfGeoHashBox`).
pub fn score_range(hash: Bits) -> (u64, u64) {
    (align52(hash), align52(Bits { bits: hash.bits + 1, step: hash.step }))
}

/// Distance along a meridian (`geohashGetLatDistance`).
fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Haversine great-circle distance in meters (`geohashGetDistance`).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// `geoWithinShape`: the point's distance from the centre when it lies inside `shape`.
pub fn within(shape: &Shape, xy: [f64; 2]) -> Option<f64> {
    let [x1, y1] = shape.xy;
    let [x2, y2] = xy;
    match shape.kind {
        ShapeKind::Circle { radius } => {
            let d = distance(x1, y1, x2, y2);
            (d <= radius * shape.conversion).then_some(d)
        }
        ShapeKind::Rect { width, height } => {
            let (width_m, height_m) = (width * shape.conversion, height * shape.conversion);
            if lat_distance(y2, y1) > height_m / 2.0 || distance(x2, y2, x1, y2) > width_m / 2.0 {
                return None;
            }
            Some(distance(x1, y1, x2, y2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [(0u32, 0u32), (1, 0), (0, 1), (0x3ffffff, 0x1234567), (u32::MAX, 7)] {
            let sep = deinterleave64(interleave64(x, y));
            assert_eq!((sep as u32, (sep >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn palermo_scores_as_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" stores this score in Redis 7.
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        let [x, y] = decode_score(3479099956230698.0);
        assert!((x - 13.361389).abs() < 1e-5 && (y - 38.115556).abs() < 1e-5);
    }

    #[test]
    fn out_of_limits_is_refused() {
        assert_eq!(score_of(180.1, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
        assert_eq!(c_double_to_u64(f64::INFINITY), 0);
        assert_eq!(c_double_to_u64(f64::NEG_INFINITY), 1 << 63);
    }
}

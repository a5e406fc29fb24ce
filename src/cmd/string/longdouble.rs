//! A software model of the x87 80-bit `long double` that Redis's INCRBYFLOAT computes with
//! on x86-64 Linux: parsing as glibc's `strtold` (correctly rounded), one addition rounded to a
//! 64-bit mantissa (round half to even), and printing as `printf("%.17Lf")`. Pure integer
//! arithmetic, so every replica gets the same bytes. Denormal precision loss is not modelled.

use std::cmp::Ordering;

/// Bits of the x87 mantissa (explicit integer bit included).
const MANT_BITS: u32 = 64;
/// Values at or above 2^MAX_EXP overflow to infinity.
const MAX_EXP: i64 = 16384;
/// Values at or below 2^MIN_EXP (half the smallest denormal) round to zero.
const MIN_EXP: i64 = -16446;

/// A parsed operand: finite, or an infinity (whose sums are never finite).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum LongDouble {
    Finite(F80),
    Infinite,
}

/// A finite value `(-1)^neg * mant * 2^exp`; `mant` has its top bit set, or is 0 for zero.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct F80 {
    neg: bool,
    mant: u64,
    exp: i64,
}

impl LongDouble {
    /// The nearest double (what a timeout needs; infinities stay infinite).
    pub fn to_f64(self) -> f64 {
        match self {
            LongDouble::Infinite => f64::INFINITY,
            LongDouble::Finite(v) => {
                let magnitude = v.mant as f64 * 2f64.powi(v.exp.clamp(-2000, 2000) as i32);
                if v.neg {
                    -magnitude
                } else {
                    magnitude
                }
            }
        }
    }
}

impl F80 {
    const ZERO: F80 = F80 { neg: false, mant: 0, exp: 0 };

    /// `a + b` rounded to 64 bits; `None` on overflow.
    pub fn add(a: F80, b: F80) -> Option<F80> {
        if a.mant == 0 {
            return Some(if b.mant == 0 { F80 { neg: a.neg && b.neg, ..F80::ZERO } } else { b });
        }
        if b.mant == 0 {
            return Some(a);
        }
        // Order by magnitude: `a` is the larger.
        let (a, b) = if (a.exp, a.mant) >= (b.exp, b.mant) { (a, b) } else { (b, a) };
        let big = u128::from(a.mant) << 62;
        let d = (a.exp - b.exp) as u64;
        let small = u128::from(b.mant) << 62;
        // Bits shifted out of `small` are jammed into its lowest bit (62 guard bits remain).
        let small = if d >= 127 { 1 } else { (small >> d) | u128::from(small & ((1u128 << d) - 1) != 0) };
        let sum = if a.neg == b.neg { big + small } else { big - small };
        if sum == 0 {
            return Some(F80::ZERO);
        }
        let (mant, exp) = round_u128(sum, false, a.exp - 62);
        finite(a.neg, mant, exp)
    }

    /// `printf("%.17Lf")`.
    pub fn to_fixed17(self) -> String {
        let sign = if self.neg { "-" } else { "" };
        let n = Big::from_u64(self.mant);
        let (int, mut frac) = if self.exp >= 0 {
            (n.shl(self.exp as u64), 0)
        } else {
            let s = (-self.exp) as u64;
            let int = n.shr(s);
            let mut x = n.low_bits(s);
            x.mul_small(100_000_000_000_000_000);
            let digits = x.shr(s).low_u64();
            let rem = x.low_bits(s);
            let half = if s == 0 { Big::zero() } else { Big::from_u64(1).shl(s - 1) };
            let up = match rem.cmp(&half) {
                Ordering::Greater => true,
                Ordering::Equal => s > 0 && digits % 2 == 1,
                Ordering::Less => false,
            };
            (int, digits + u64::from(up))
        };
        let mut int = int;
        if frac == 100_000_000_000_000_000 {
            frac = 0;
            int.add_small(1);
        }
        format!("{sign}{}.{frac:017}", int.to_decimal())
    }
}

/// Builds a finite value, or `None` when it overflows; underflow gives zero.
fn finite(neg: bool, mant: u64, exp: i64) -> Option<F80> {
    if exp + i64::from(MANT_BITS) > MAX_EXP {
        return None;
    }
    let top = exp + i64::from(MANT_BITS) - 1;
    if top < MIN_EXP || (top == MIN_EXP && mant == 1 << 63) {
        return Some(F80 { neg, ..F80::ZERO });
    }
    Some(F80 { neg, mant, exp })
}

/// Rounds `q * 2^exp` (plus a sticky fraction below `q` when `sticky`) to 64 bits, half to
/// even; returns the mantissa and its exponent.
fn round_u128(q: u128, sticky: bool, exp: i64) -> (u64, i64) {
    let len = 128 - q.leading_zeros();
    if len <= MANT_BITS {
        let sh = MANT_BITS - len;
        return ((q << sh) as u64, exp - i64::from(sh));
    }
    let sh = len - MANT_BITS;
    let mut mant = (q >> sh) as u64;
    let rest = q & ((1u128 << sh) - 1);
    let half = 1u128 << (sh - 1);
    let up = rest > half || (rest == half && (sticky || mant & 1 == 1));
    let mut exp = exp + i64::from(sh);
    if up {
        mant = mant.wrapping_add(1);
        if mant == 0 {
            mant = 1 << 63;
            exp += 1;
        }
    }
    (mant, exp)
}

/// `n / m * 2^exp` correctly rounded (n, m > 0).
fn round_ratio(neg: bool, n: &Big, m: &Big, exp: i64) -> Option<F80> {
    // Scale so that the quotient has at least 66 bits: 64 kept, a round bit, a guard bit.
    let k = 67 - (n.bits() as i64 - m.bits() as i64);
    let (mut num, den) = if k >= 0 { (n.shl(k as u64), m.clone()) } else { (n.clone(), m.shl((-k) as u64)) };
    let qbits = num.bits().saturating_sub(den.bits()) + 1;
    let mut q: u128 = 0;
    for i in (0..qbits).rev() {
        let t = den.shl(i);
        if num.cmp(&t) != Ordering::Less {
            num.sub_assign(&t);
            q |= 1u128 << i;
        }
    }
    let (mant, exp) = round_u128(q, !num.is_zero(), exp - k);
    finite(neg, mant, exp)
}

/// glibc `strtold` on the whole text (Redis's `string2ld` also refuses leading space, NaN,
/// overflow and underflow to zero). `None` when Redis says "not a valid float".
pub fn parse(s: &[u8]) -> Option<LongDouble> {
    if s.is_empty() || s.len() >= 5120 {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(LongDouble::Infinite);
    }
    let v = match body {
        [b'0', b'x' | b'X', rest @ ..] => parse_hex(neg, rest)?,
        _ => parse_decimal(neg, body)?,
    };
    Some(LongDouble::Finite(v))
}

/// Splits `digits[.digits]` into the digit string and the count after the point; at least
/// one digit overall.
fn split_mantissa(s: &[u8], radix: u32) -> Option<(Vec<u8>, usize)> {
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[][..]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut digits = Vec::with_capacity(int.len() + frac.len());
    for &c in int.iter().chain(frac) {
        digits.push(char::from(c).to_digit(radix)? as u8);
    }
    Some((digits, frac.len()))
}

/// An exponent: optional sign and digits, saturating far beyond any representable value.
fn parse_exponent(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |v, &c| (v * 10 + i64::from(c - b'0')).min(1 << 40));
    Some(if neg { -v } else { v })
}

fn parse_decimal(neg: bool, s: &[u8]) -> Option<F80> {
    let (mant, exp) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&s[..i], parse_exponent(&s[i + 1..])?),
        None => (s, 0),
    };
    let (digits, frac_len) = split_mantissa(mant, 10)?;
    let first = digits.iter().position(|&d| d != 0);
    let Some(first) = first else { return Some(F80 { neg, ..F80::ZERO }) };
    let digits = &digits[first..];
    let exp10 = exp - frac_len as i64;
    // Decimal magnitude of the value is about 10^(exp10 + digits): refuse what cannot fit.
    let magnitude = exp10 + digits.len() as i64;
    if magnitude > 4934 {
        return None;
    }
    if magnitude < -4952 {
        return None;
    }
    let mut n = Big::zero();
    for &d in digits {
        n.mul_small(10);
        n.add_small(u64::from(d));
    }
    let pow = Big::pow10(exp10.unsigned_abs());
    let v = if exp10 >= 0 {
        let mut num = n;
        num.mul_big(&pow);
        round_ratio(neg, &num, &Big::from_u64(1), 0)?
    } else {
        round_ratio(neg, &n, &pow, 0)?
    };
    // strtold reports underflow to zero as an error, which Redis refuses.
    (v.mant != 0).then_some(v)
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<F80> {
    let (mant, exp) = match s.iter().position(|&c| c == b'p' || c == b'P') {
        Some(i) => (&s[..i], parse_exponent(&s[i + 1..])?),
        None => (s, 0),
    };
    let (digits, frac_len) = split_mantissa(mant, 16)?;
    let mut n = Big::zero();
    for &d in &digits {
        n.mul_small(16);
        n.add_small(u64::from(d));
    }
    if n.is_zero() {
        return Some(F80 { neg, ..F80::ZERO });
    }
    let exp2 = exp - 4 * frac_len as i64;
    if exp2 + n.bits() as i64 > MAX_EXP + 1 || exp2 + (n.bits() as i64) < MIN_EXP - 1 {
        return None;
    }
    let v = round_ratio(neg, &n, &Big::from_u64(1), exp2)?;
    (v.mant != 0).then_some(v)
}

/// Redis's `ld2string(LD_STR_HUMAN)` of `a + b`, or `None` when the sum is not finite.
pub fn add_and_format(a: LongDouble, b: LongDouble) -> Option<String> {
    let (LongDouble::Finite(a), LongDouble::Finite(b)) = (a, b) else { return None };
    let text = F80::add(a, b)?.to_fixed17();
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    Some(if trimmed == "-0" { "0".to_string() } else { trimmed.to_string() })
}

/// A minimal unsigned big integer: little-endian 64-bit limbs, no trailing zero limbs.
#[derive(Clone, Debug, PartialEq)]
struct Big(Vec<u64>);

impl Big {
    fn zero() -> Big {
        Big(Vec::new())
    }

    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v]);
        b.trim();
        b
    }

    fn pow10(e: u64) -> Big {
        let mut b = Big::from_u64(1);
        for _ in 0..e / 19 {
            b.mul_small(10_000_000_000_000_000_000);
        }
        b.mul_small(10u64.pow((e % 19) as u32));
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn low_u64(&self) -> u64 {
        self.0.first().copied().unwrap_or(0)
    }

    fn bits(&self) -> u64 {
        self.0.last().map_or(0, |top| self.0.len() as u64 * 64 - u64::from(top.leading_zeros()))
    }

    fn mul_small(&mut self, m: u64) {
        let mut carry = 0u128;
        for limb in &mut self.0 {
            let v = u128::from(*limb) * u128::from(m) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            self.0.push(carry as u64);
        }
        self.trim();
    }

    fn mul_big(&mut self, o: &Big) {
        let mut out = vec![0u64; self.0.len() + o.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u128;
            for (j, &b) in o.0.iter().enumerate() {
                let v = u128::from(a) * u128::from(b) + u128::from(out[i + j]) + carry;
                out[i + j] = v as u64;
                carry = v >> 64;
            }
            out[i + o.0.len()] = carry as u64;
        }
        self.0 = out;
        self.trim();
    }

    fn add_small(&mut self, a: u64) {
        let mut carry = a;
        for limb in &mut self.0 {
            let (v, c) = limb.overflowing_add(carry);
            *limb = v;
            carry = u64::from(c);
            if carry == 0 {
                return;
            }
        }
        if carry > 0 {
            self.0.push(carry);
        }
    }

    fn shl(&self, n: u64) -> Big {
        if self.is_zero() {
            return Big::zero();
        }
        let (limbs, bits) = ((n / 64) as usize, (n % 64) as u32);
        let mut out = vec![0u64; limbs];
        let mut carry = 0u64;
        for &l in &self.0 {
            out.push(if bits == 0 { l } else { (l << bits) | carry });
            carry = if bits == 0 { 0 } else { l >> (64 - bits) };
        }
        out.push(carry);
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shr(&self, n: u64) -> Big {
        let (limbs, bits) = ((n / 64) as usize, (n % 64) as u32);
        let src = self.0.get(limbs..).unwrap_or(&[]);
        let mut out: Vec<u64> = (0..src.len())
            .map(|i| {
                let hi = src.get(i + 1).copied().unwrap_or(0);
                if bits == 0 {
                    src[i]
                } else {
                    (src[i] >> bits) | (hi << (64 - bits))
                }
            })
            .collect();
        out.truncate(src.len());
        let mut b = Big(out);
        b.trim();
        b
    }

    /// The lowest `n` bits.
    fn low_bits(&self, n: u64) -> Big {
        let (limbs, bits) = ((n / 64) as usize, n % 64);
        let mut out: Vec<u64> = self.0.iter().take(limbs + 1).copied().collect();
        if out.len() > limbs {
            out[limbs] &= if bits == 0 { 0 } else { (1u64 << bits) - 1 };
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0.len().cmp(&o.0.len()).then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    /// `self -= o`, for `self >= o`.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = false;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let b = o.0.get(i).copied().unwrap_or(0);
            let (v, c1) = limb.overflowing_sub(b);
            let (v, c2) = v.overflowing_sub(u64::from(borrow));
            *limb = v;
            borrow = c1 || c2;
        }
        self.trim();
    }

    /// Divides in place by a small divisor; returns the remainder.
    fn div_small(&mut self, d: u64) -> u64 {
        let mut rem = 0u128;
        for limb in self.0.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*limb);
            *limb = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        self.trim();
        rem as u64
    }

    fn to_decimal(&self) -> String {
        const CHUNK: u64 = 1_000_000_000_000_000_000;
        let mut n = self.clone();
        let mut parts = Vec::new();
        while !n.is_zero() {
            parts.push(n.div_small(CHUNK));
        }
        let Some(top) = parts.pop() else { return "0".into() };
        let mut s = top.to_string();
        for p in parts.iter().rev() {
            s.push_str(&format!("{p:018}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        add_and_format(parse(a.as_bytes())?, parse(b.as_bytes())?)
    }

    #[test]
    fn matches_redis_results() {
        // Expected values taken from redis-server 7.0.15 on x86-64.
        assert_eq!(incr("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("10.6", "-5").as_deref(), Some("5.6"));
        assert_eq!(incr("5.6", "5.0e3").as_deref(), Some("5005.60000000000000009"));
        assert_eq!(incr("123456789", "0.001").as_deref(), Some("123456789.00099999999656575"));
        assert_eq!(incr("0", "1e-20").as_deref(), Some("0"));
        assert_eq!(incr("0", "-0.0").as_deref(), Some("0"));
        assert_eq!(incr("3", "0x10").as_deref(), Some("19"));
        assert_eq!(incr("1", "inf"), None);
        assert_eq!(incr("0x1p16383", "0x1p16383"), None);
        assert_eq!(incr("0", "0.000003814697265625").as_deref(), Some("0.00000381469726562"));
        assert_eq!(incr("0", "18446744073709551617").as_deref(), Some("18446744073709551616"));
        assert!(parse(b"0x1p-16446").is_none());
        assert!(parse(b"0x1p-16445").is_some());
    }

    #[test]
    fn parses_like_strtold() {
        for ok in ["1", "+1", "-.5", "1.", "5.0e3", "1E+5", "0x1p3", "0x.8", "1e4000", "inf", "-Infinity", "0"] {
            assert!(parse(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in ["", " 1", "1 ", "nan", "abc", "1e", "1e+", "0x", "--1", ".", "e5", "1e5000", "1e-5000", "0x1p"] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn big_integer_basics() {
        let mut b = Big::pow10(20);
        assert_eq!(b.to_decimal(), "100000000000000000000");
        assert_eq!(b.div_small(7), (100000000000000000000u128 % 7) as u64);
        assert_eq!(b.to_decimal(), (100000000000000000000u128 / 7).to_string());
        assert_eq!(Big::from_u64(5).shl(70).shr(70), Big::from_u64(5));
        assert_eq!(Big::from_u64(0b1011).low_bits(2), Big::from_u64(0b11));
    }
}

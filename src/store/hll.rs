//! HyperLogLog as Redis 7.0 stores it in a string value (its `hyperloglog.c`), byte for byte:
//! a 16-byte header (`HYLL`, the encoding, 3 unused bytes, the cached cardinality in little
//! endian with bit 63 set when stale), then either the sparse form (opcodes ZERO `00xxxxxx`,
//! XZERO `01xxxxxx yyyyyyyy`, VAL `1vvvvvxx`) or the dense form (16384 registers of 6 bits).
//! Elements are hashed with MurmurHash64A (seed 0xadc83b19); the count uses Ertl's estimator
//! as Redis 7 does. Pure functions of the bytes: every replica computes the same thing.

pub const P: u32 = 14;
const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const P_MASK: u64 = (REGISTERS - 1) as u64;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
pub const HDR_SIZE: usize = 16;
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
/// Redis's `hll-sparse-max-bytes` default: past it a sparse HLL becomes dense.
pub const SPARSE_MAX_BYTES: usize = 3000;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A value that is not a HyperLogLog, or a corrupt one (Redis's two errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HllError {
    /// `-WRONGTYPE Key is not a valid HyperLogLog string value.`
    NotHll,
    /// `-INVALIDOBJ Corrupted HLL object detected`
    Corrupt,
}

/// Redis's `isHLLObjectOrReply` checks on a string value.
pub fn check(v: &[u8]) -> Result<(), HllError> {
    if v.len() < HDR_SIZE || &v[..4] != b"HYLL" || v[4] > SPARSE || (v[4] == DENSE && v.len() != DENSE_SIZE) {
        return Err(HllError::NotHll);
    }
    Ok(())
}

/// An empty HLL (Redis's `createHLLObject`): sparse, one XZERO covering every register.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR_SIZE + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        v.extend_from_slice(&xzero(n));
        left -= n;
    }
    v
}

fn invalidate_cache(v: &mut [u8]) {
    v[15] |= 1 << 7;
}

/// The cached cardinality, if valid.
pub fn cached(v: &[u8]) -> Option<u64> {
    if v[15] & (1 << 7) != 0 {
        return None;
    }
    Some(u64::from_le_bytes(v[8..16].try_into().unwrap_or([0; 8])))
}

pub fn set_cache(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Redis's MurmurHash64A.
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element goes to and the length of its run of zeros plus one.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & P_MASK) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(REGISTER_MAX)) as u8
}

fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = u16::from(val);
    regs[byte] &= !((u16::from(REGISTER_MAX) << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next &= !((u16::from(REGISTER_MAX) >> (8 - fb)) as u8);
        *next |= (v >> (8 - fb)) as u8;
    }
}

/// Sets dense register `i` to `count` if that raises it: whether it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        return true;
    }
    false
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn zero_len(b: u8) -> usize {
    usize::from(b & 0x3f) + 1
}
fn xzero_len(b0: u8, b1: u8) -> usize {
    ((usize::from(b0 & 0x3f) << 8) | usize::from(b1)) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    usize::from(b & 0x3) + 1
}
fn val(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len as u8 - 1) | 0x80
}
fn zero(len: usize) -> u8 {
    (len - 1) as u8
}
fn xzero(len: usize) -> [u8; 2] {
    let l = len - 1;
    [((l >> 8) as u8) | 0x40, (l & 0xff) as u8]
}

/// One sparse opcode: its registers' value (0 for the zero runs), how many, and its size.
fn opcode(sparse: &[u8], p: usize) -> Option<(u8, usize, usize)> {
    let b = sparse[p];
    if is_zero(b) {
        Some((0, zero_len(b), 1))
    } else if is_xzero(b) {
        Some((0, xzero_len(b, *sparse.get(p + 1)?), 2))
    } else {
        Some((val_value(b), val_len(b), 1))
    }
}

/// Calls `f(first register, count, value)` for every run of the sparse body; `Corrupt` unless
/// the runs cover exactly every register.
fn sparse_runs(body: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), HllError> {
    let (mut p, mut idx) = (0, 0);
    while p < body.len() {
        let (value, len, size) = opcode(body, p).ok_or(HllError::Corrupt)?;
        if value != 0 && idx + len > REGISTERS {
            return Err(HllError::Corrupt);
        }
        f(idx, len, value);
        idx += len;
        p += size;
    }
    if idx != REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(())
}

/// Redis's `hllSparseToDense` (a dense value is left alone).
pub fn to_dense(v: &mut Vec<u8>) -> Result<(), HllError> {
    if v[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&v[..HDR_SIZE]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR_SIZE..];
    sparse_runs(&v[HDR_SIZE..], |first, len, value| {
        if value != 0 {
            (first..first + len).for_each(|i| dense_set(regs, i, value));
        }
    })?;
    *v = dense;
    Ok(())
}

/// Redis's `hllSparseSet`: raises register `index` to `count` in a sparse HLL, splitting and
/// merging opcodes as Redis does, or turning it dense when the value does not fit the sparse
/// form or it would grow past [`SPARSE_MAX_BYTES`]. Whether the register changed.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Step 1: the opcode covering `index`.
    let (mut p, mut first, mut prev) = (HDR_SIZE, 0usize, None);
    let (value, span, size) = loop {
        if p >= v.len() {
            return Err(HllError::Corrupt);
        }
        let (value, span, size) = opcode(v, p).ok_or(HllError::Corrupt)?;
        if index < first + span {
            break (value, span, size);
        }
        prev = Some(p);
        p += size;
        first += span;
    };
    // Step 2: the trivial cases.
    if value != 0 {
        if value >= count {
            return Ok(false);
        }
        if span == 1 {
            v[p] = val(count, 1);
            merge_vals(v, prev.unwrap_or(HDR_SIZE));
            return Ok(true);
        }
    }
    if value == 0 && size == 1 && span == 1 {
        v[p] = val(count, 1);
        merge_vals(v, prev.unwrap_or(HDR_SIZE));
        return Ok(true);
    }
    // The general case: the opcode splits in up to three.
    let last = first + span - 1;
    let mut seq = Vec::with_capacity(5);
    let run = |seq: &mut Vec<u8>, len: usize| {
        if value != 0 {
            seq.push(val(value, len));
        } else if len > ZERO_MAX_LEN {
            seq.extend_from_slice(&xzero(len));
        } else {
            seq.push(zero(len));
        }
    };
    if index != first {
        run(&mut seq, index - first);
    }
    seq.push(val(count, 1));
    if index != last {
        run(&mut seq, last - index);
    }
    // Step 3: the new sequence replaces the opcode.
    if seq.len() > size && v.len() + seq.len() - size > SPARSE_MAX_BYTES {
        return promote(v, index, count);
    }
    v.splice(p..p + size, seq);
    merge_vals(v, prev.unwrap_or(HDR_SIZE));
    Ok(true)
}

/// Step 4 of `hllSparseSet`: merges adjacent VAL opcodes of the same value, scanning up to 5
/// opcodes from `p`.
fn merge_vals(v: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if is_xzero(b) {
            p += 2;
            continue;
        }
        if is_zero(b) {
            p += 1;
            continue;
        }
        if let Some(&b2) = v.get(p + 1).filter(|&&b2| !is_zero(b2) && !is_xzero(b2)) {
            let len = val_len(b) + val_len(b2);
            if val_value(b) == val_value(b2) && len <= VAL_MAX_LEN {
                v[p + 1] = val(val_value(b), len);
                v.remove(p);
                continue;
            }
        }
        p += 1;
    }
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(v)?;
    dense_raise(&mut v[HDR_SIZE..], index, count);
    Ok(true)
}

/// Raises register `index` to `count` in either form; whether it changed. The cache is left
/// for the caller to invalidate.
pub fn set_register(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    match v[4] {
        DENSE => Ok(dense_raise(&mut v[HDR_SIZE..], index, count)),
        SPARSE => sparse_set(v, index, count),
        _ => Err(HllError::Corrupt),
    }
}

/// Redis's `hllAdd`: whether the element changed a register.
pub fn add(v: &mut Vec<u8>, ele: &[u8]) -> Result<bool, HllError> {
    let (index, count) = pat_len(ele);
    set_register(v, index, count)
}

/// Marks the cached cardinality stale (after a change).
pub fn changed(v: &mut [u8]) {
    invalidate_cache(v);
}

/// Redis's `hllMerge`: raises `max[i]` to register `i` of `v`.
pub fn merge_into(max: &mut [u8; REGISTERS], v: &[u8]) -> Result<(), HllError> {
    if v[4] == DENSE {
        let regs = &v[HDR_SIZE..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    sparse_runs(&v[HDR_SIZE..], |first, len, value| {
        if value != 0 {
            max[first..first + len].iter_mut().for_each(|m| *m = (*m).max(value));
        }
    })
}

/// The register histogram of a HLL value.
fn histogram(v: &[u8]) -> Result<[u32; 64], HllError> {
    let mut h = [0u32; 64];
    if v[4] == DENSE {
        let regs = &v[HDR_SIZE..];
        (0..REGISTERS).for_each(|i| h[usize::from(dense_get(regs, i))] += 1);
    } else {
        let (mut p, mut idx) = (HDR_SIZE, 0);
        while p < v.len() {
            let (value, len, size) = opcode(v, p).ok_or(HllError::Corrupt)?;
            h[usize::from(value)] += len as u32;
            idx += len;
            p += size;
        }
        if idx != REGISTERS {
            return Err(HllError::Corrupt);
        }
    }
    Ok(h)
}

/// The estimated cardinality of a HLL value (Redis's `hllCount`).
pub fn count(v: &[u8]) -> Result<u64, HllError> {
    Ok(estimate(&histogram(v)?))
}

/// The estimated cardinality of raw registers (PFCOUNT of several keys).
pub fn count_raw(max: &[u8; REGISTERS]) -> u64 {
    let mut h = [0u32; 64];
    max.iter().for_each(|&r| h[usize::from(r & 63)] += 1);
    estimate(&h)
}

/// Ertl's estimator, as Redis 7 computes it.
fn estimate(h: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(h[Q as usize + 1])) / m);
    for j in (1..=Q as usize).rev() {
        z += f64::from(h[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(h[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// PFSELFTEST's checks: dense registers read back what was written, and the sparse and dense
/// forms of the same elements count alike.
pub fn self_test() -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
    for i in 0..REGISTERS {
        dense_set(&mut regs, i, (i % 64) as u8);
    }
    if let Some(i) = (0..REGISTERS).find(|&i| dense_get(&regs, i) != (i % 64) as u8) {
        return Err(format!("TESTFAILED Register error at index {i}"));
    }
    let (mut sparse, mut dense) = (new_sparse(), new_sparse());
    to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    for n in 0..2000u32 {
        let e = n.to_le_bytes();
        add(&mut sparse, &e).map_err(|_| "TESTFAILED sparse add".to_string())?;
        add(&mut dense, &e).map_err(|_| "TESTFAILED dense add".to_string())?;
    }
    let mut as_dense = sparse.clone();
    to_dense(&mut as_dense).map_err(|_| "TESTFAILED conversion".to_string())?;
    if as_dense[HDR_SIZE..] != dense[HDR_SIZE..] || count(&sparse) != count(&dense) {
        return Err("TESTFAILED sparse and dense representations differ".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_hll_is_redis_s_18_bytes() {
        let v = new_sparse();
        assert_eq!(v, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff".to_vec());
        assert_eq!(count(&v), Ok(0));
        assert_eq!(check(&v), Ok(()));
        assert_eq!(check(b"HYLL\x00xxxxxxxxxxx"), Err(HllError::NotHll));
    }

    #[test]
    fn sparse_and_dense_agree_and_counts_are_close() {
        let mut v = new_sparse();
        for n in 0..10_000u32 {
            let changed = add(&mut v, format!("e{n}").as_bytes()).expect("valid");
            if changed {
                changed_cache(&mut v);
            }
        }
        assert_eq!(v[4], DENSE, "10000 elements do not fit 3000 sparse bytes");
        let c = count(&v).expect("valid");
        assert!((9_700..=10_300).contains(&c), "{c}");
        assert_eq!(self_test(), Ok(()));
    }

    fn changed_cache(v: &mut [u8]) {
        changed(v);
        assert_eq!(cached(v), None);
    }
}

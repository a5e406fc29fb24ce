//! Redis's `redisLrand48` / `redisSrand48`: the 48-bit linear congruential generator behind
//! math.random, the same sequence on every platform for the same seed.

const MASK: u64 = (1 << 48) - 1;
const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;

/// The generator's state.
#[derive(Debug, Clone, Copy)]
pub struct Rand48(u64);

impl Rand48 {
    /// `redisSrand48(seed)`: the seed's 32 bits above the constant 0x330E.
    pub fn new(seed: i32) -> Self {
        Rand48((u64::from(seed as u32) << 16 | 0x330E) & MASK)
    }

    /// `redisLrand48()`: the next 31-bit value.
    pub fn next(&mut self) -> i32 {
        self.0 = (A.wrapping_mul(self.0).wrapping_add(C)) & MASK;
        (self.0 >> 17) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lrand48() {
        // glibc's srand48(0); lrand48() x3.
        let mut r = Rand48::new(0);
        assert_eq!([r.next(), r.next(), r.next()], [366850414, 1610402240, 206956554]);
    }
}

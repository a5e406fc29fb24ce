//! openraft's RNG (a rand 0.10 `Rng`) drawing from madsim's seeded global RNG (rand 0.8), so
//! election timeouts and every other random choice in node code replay with the seed.

use std::convert::Infallible;

use madsim::rand::{GlobalRng, RngCore};

/// A handle on the current simulation's RNG. Every draw goes through madsim, which also logs
/// it for `MADSIM_TEST_CHECK_DETERMINISM`.
pub struct MadsimRng(GlobalRng);

impl MadsimRng {
    /// The current simulation's RNG; panics outside a simulation.
    pub fn current() -> Self {
        Self(madsim::rand::thread_rng())
    }
}

impl rand_core::TryRng for MadsimRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

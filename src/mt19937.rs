//! The Mersenne Twister MT19937, with the two ways the origin notebook draws from it: NumPy's
//! legacy `np.random.permutation` (the data split) and PyTorch's CPU `uniform_` (the initial
//! weights). With these, a seed gives the notebook's split and the notebook's initial weights bit
//! for bit, so a run of this library and a run of the notebook with the same seed start from the
//! same point.
//!
//! The seeded analyses (random neuron orders, the untrained construction) draw from it too, seeded
//! by [`Mt19937::from_u64`]: the generator and every draw are written out here, so their streams
//! never change with a dependency's version, and NumPy's legacy `RandomState` redraws them.
//!
//! Both libraries seed MT19937 with the reference `init_genrand`: NumPy's `np.random.seed(s)` and
//! PyTorch's `torch.manual_seed(s)` (which keeps the low 32 bits of `s`) give the same stream.
//!
//! # Example
//! ```
//! use grokking::mt19937::Mt19937;
//! // np.random.seed(0); np.random.permutation(49)[:4]
//! assert_eq!(&Mt19937::new(0)?.permutation(49)[..4], &[29, 4, 26, 30]);
//! // torch.manual_seed(0); torch.empty(1).uniform_(-1, 1)
//! assert_eq!(Mt19937::from_u32(0).uniform_f32(-1.0, 1.0), -0.007_486_820_2);
//! // np.random.RandomState([1, 0]).random_sample()
//! assert_eq!(Mt19937::from_u64(1).uniform_f64(), 0.134_364_244_112_401_22);
//! # Ok::<(), grokking::Error>(())
//! ```
//!
//! Sources: Matsumoto and Nishimura (1998) for MT19937 and `init_genrand`; NumPy's
//! `_legacy_seeding`, `_shuffle_raw` and `random_interval` for the shuffle; PyTorch's
//! `CPUGeneratorImpl`, `uniform_real_distribution` and `transformation::uniform_real` for the
//! uniform draw.

use crate::error::{Error, Result};

/// The MT19937 generator. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Mt19937 {
    state: [u32; 624],
    pos: usize,
}

impl Mt19937 {
    /// Seeds the generator as `np.random.seed(seed)` does.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `seed >= 2³²` (NumPy refuses such seeds too).
    pub fn new(seed: u64) -> Result<Self> {
        let seed = u32::try_from(seed).map_err(|_| Error::InvalidConfig {
            field: "seed",
            value: seed.to_string(),
            reason: "it must be below 2^32, as NumPy's legacy seeding requires",
        })?;
        Ok(Self::from_u32(seed))
    }

    /// Seeds the generator with `init_genrand(seed)`, as `torch.manual_seed(seed)` does for a
    /// seed below 2³² (PyTorch keeps the low 32 bits of larger seeds).
    pub fn from_u32(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, pos: 624 }
    }

    /// Seeds the generator with the reference `init_by_array` of the key `[seed mod 2³², seed /
    /// 2³²]`, as `np.random.RandomState([seed & 0xffffffff, seed >> 32])` does: any 64-bit seed,
    /// one stream each.
    pub fn from_u64(seed: u64) -> Self {
        const N: usize = 624;
        let key = [seed as u32, (seed >> 32) as u32];
        let mut rng = Self::from_u32(19_650_218);
        let mt = &mut rng.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        rng
    }

    fn regenerate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= MATRIX_A;
            }
            self.state[i] = next;
        }
        self.pos = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.regenerate();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform integer in `0..=max` by NumPy's masked rejection (`random_interval`; legacy
    /// `randint(0, max + 1)` draws the same).
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16] {
            mask |= mask >> shift;
        }
        loop {
            let value = self.next_u32() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// `np.random.permutation(n)`: a Fisher-Yates shuffle of `0..n` from the last element down.
    ///
    /// # Panics
    /// If `n > 2³²`.
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        assert!(n as u64 <= 1 << 32, "permutation of {n} elements");
        let mut values: Vec<u32> = (0..n as u64).map(|v| v as u32).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            values.swap(i, j);
        }
        values
    }

    /// A uniform `f64` in `[0, 1)` from two outputs, 53 bits, as NumPy's legacy `random_sample`.
    pub fn uniform_f64(&mut self) -> f64 {
        let (a, b) = (self.next_u32() >> 5, self.next_u32() >> 6);
        (a as f64 * 67_108_864.0 + b as f64) / 9_007_199_254_740_992.0
    }

    /// One `float32` draw of PyTorch's CPU `tensor.uniform_(low, high)`: the low 24 bits of one
    /// output, scaled to `[0, 1)`, then `x · (high - low) + low` rounded once, as a fused
    /// multiply-add. That is what PyTorch computes on an x86-64 CPU with FMA (checked bit for bit
    /// against PyTorch 2.15 on this project's machine); rounding the product and the sum apart
    /// differs in the last bit for about half of the draws.
    pub fn uniform_f32(&mut self, low: f32, high: f32) -> f32 {
        let x = (self.next_u32() & 0x00ff_ffff) as f32 * (1.0 / (1u32 << 24) as f32);
        x.mul_add(high - low, low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_output() {
        // First output of init_genrand(5489), from the MT19937 reference implementation.
        let mut rng = Mt19937::new(5489).unwrap();
        assert_eq!(rng.next_u32(), 3_499_211_612);
    }

    #[test]
    fn a_u64_seed_gives_numpys_random_state_stream() {
        // np.random.RandomState([1, 0]): permutation(10); then randint(0, 56) five times.
        assert_eq!(
            Mt19937::from_u64(1).permutation(10),
            [2, 9, 8, 3, 6, 7, 1, 4, 0, 5]
        );
        let mut rng = Mt19937::from_u64(1);
        let draws: Vec<u32> = (0..5).map(|_| rng.interval(55)).collect();
        assert_eq!(draws, [53, 10, 31, 48, 4]);
        // np.random.RandomState([2**32 - 1, 7]).random_sample(2): the high word counts.
        let mut rng = Mt19937::from_u64((7 << 32) | 0xffff_ffff);
        assert_eq!(
            [rng.uniform_f64(), rng.uniform_f64()],
            [0.889_691_121_049_648, 0.796_898_016_105_010_4]
        );
    }

    #[test]
    fn interval_stays_within_bounds() {
        let mut rng = Mt19937::new(1).unwrap();
        for max in [1u32, 2, 3, 7, 100, 12_768] {
            for _ in 0..200 {
                assert!(rng.interval(max) <= max);
            }
        }
    }

    #[test]
    fn uniform_draws_stay_in_the_half_open_range() {
        let mut rng = Mt19937::from_u32(3);
        for _ in 0..10_000 {
            let x = rng.uniform_f32(-0.25, 0.25);
            assert!((-0.25..0.25).contains(&x), "{x}");
        }
    }
}

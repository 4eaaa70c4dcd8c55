//! Counter-based Gaussian noise for SGLD ([`Optimizer::Sgld`](super::Optimizer::Sgld)): a
//! standard normal value that is a pure function of `(seed, chain, step, weight)`, so the host,
//! the CubeCL kernels and the reference draw the same noise, on any number of threads and in any
//! order.
//!
//! - The bits: Threefry-2x32 with 20 rounds (Salmon et al. 2011, "Parallel random numbers: as
//!   easy as 1, 2, 3", the generator of Random123 and of JAX's `jax.random`), checked against
//!   Random123's known-answer vectors. A chain's key is the Threefry block of counter
//!   `(chain, "SGLD")` under the key `(seed mod 2³², seed div 2³²)` ([`chain_key`]); the block of
//!   counter `(q, step)` under it gives the pair `q` of weights `2q` and `2q + 1`.
//! - The normals: Box–Muller on the block's two words, `u₁ = (x₀ >> 8 + 1)·2⁻²⁴ ∈ (0, 1]` and
//!   `u₂ = (x₁ >> 8)·2⁻²⁴ ∈ [0, 1)`: weight `2q` gets `√(−2 ln u₁)·cos 2πu₂` and weight `2q + 1`
//!   `√(−2 ln u₁)·sin 2πu₂`. On the host (and so in the reference, which calls this module) `ln`,
//!   `cos` and `sin` are polynomials of additions and multiplications (Cephes' `logf`, `sinf`,
//!   `cosf`), so a block of them vectorises and rounds the same way on every CPU; the kernels
//!   write out the same integer and float arithmetic, so their noise is the host's unless the
//!   device's compiler contracts a multiply and an add into one rounding.
//! - The weights are numbered in Burn's layout of one member, fc1 `[2p, d_hidden]` row-major
//!   (`r·d_hidden + u` for input row `r` and unit `u`), then fc2 `[d_hidden, p]`
//!   (`2p·d_hidden + u·p + c`), whatever layout an implementation keeps: [`fill_normals`] writes
//!   the normals of a run of consecutive numbers, [`fill_normal_runs`] those of runs at a stride
//!   (a block of units' columns of fc1).

/// Threefry-2x32's rotation distances (Random123's `R_32x2`).
const ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
/// Threefry's key-schedule parity (Skein's `C240` for 32-bit words).
const PARITY: u32 = 0x1BD1_1BDA;
/// The second counter word of a chain's key block: "SGLD" in ASCII, so keys made for another
/// purpose from the same seed differ.
const CHAIN_TAG: u32 = u32::from_be_bytes(*b"SGLD");

/// Threefry-2x32 with 20 rounds: the block of `counter` under `key`.
#[inline(always)]
pub fn threefry2x32(key: [u32; 2], counter: [u32; 2]) -> [u32; 2] {
    let ([a], [b]) = threefry_lanes(key, [counter[0]], [counter[1]]);
    [a, b]
}

/// [`threefry2x32`] of `L` counters `(c0[l], c1[l])` at once, written lane by lane so that each
/// round vectorises.
#[inline(always)]
fn threefry_lanes<const L: usize>(
    key: [u32; 2],
    mut a: [u32; L],
    mut b: [u32; L],
) -> ([u32; L], [u32; L]) {
    let ks = [key[0], key[1], PARITY ^ key[0] ^ key[1]];
    for l in 0..L {
        a[l] = a[l].wrapping_add(ks[0]);
        b[l] = b[l].wrapping_add(ks[1]);
    }
    for n in 1..=5u32 {
        let rotations = &ROTATIONS[4 * ((n as usize - 1) % 2)..][..4];
        for &rotation in rotations {
            for l in 0..L {
                a[l] = a[l].wrapping_add(b[l]);
                b[l] = b[l].rotate_left(rotation) ^ a[l];
            }
        }
        let (ka, kb) = (ks[n as usize % 3], ks[(n as usize + 1) % 3].wrapping_add(n));
        for l in 0..L {
            a[l] = a[l].wrapping_add(ka);
            b[l] = b[l].wrapping_add(kb);
        }
    }
    (a, b)
}

/// The noise key of chain `chain` of a run seeded `seed` ([module docs](self)).
pub fn chain_key(seed: u64, chain: u32) -> [u32; 2] {
    threefry2x32([seed as u32, (seed >> 32) as u32], [chain, CHAIN_TAG])
}

/// `ln x` for a normal `x > 0` (Cephes' `logf`: `x = m·2ᵉ` with `m ∈ [√½, √2)`, a degree-9
/// polynomial in `m − 1`), from additions, multiplications and bit operations, within 2 ulp.
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    // m ∈ [0.5, 1).
    let m = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    let x = if small { m + m - 1.0 } else { m - 1.0 };
    let e = e as f32;
    let z = x * x;
    let mut y = ((((((((7.037_683_6e-2 * x - 1.151_461e-1) * x + 1.167_699_9e-1) * x
        - 1.242_014_1e-1)
        * x
        + 1.424_932_3e-1)
        * x
        - 1.666_805_8e-1)
        * x
        + 2.000_071_5e-1)
        * x
        - 2.499_999_4e-1)
        * x
        + 3.333_333e-1)
        * x
        * z;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    x + y + 0.693_359_4 * e
}

/// `(cos 2πt, sin 2πt)` for `t = k·2⁻²⁴`, `k < 2²⁴`: the nearest quarter turn `n` by integer
/// rounding, the rest `x = (t − n/4)·2π ∈ [−π/4, π/4]` (exact before the last product), and
/// Cephes' `sinf` and `cosf` polynomials there.
#[inline(always)]
fn cos_sin_turns(k: u32) -> (f32, f32) {
    // 4t = k·2⁻²²; n = round(4t), rest = 4t − n ∈ [−½, ½].
    let n = (k + (1 << 21)) >> 22;
    let rest = (k as i32 - ((n << 22) as i32)) as f32 * (1.0 / (1 << 22) as f32);
    let x = rest * std::f32::consts::FRAC_PI_2;
    let z = x * x;
    let sin = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * x + x;
    let cos = ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0;
    // Quarter turn q: (cos, sin) of the angle is (c, s), (−s, c), (−c, −s), (s, −c), as selects.
    let q = n & 3;
    let (c, s) = if q & 1 == 1 { (sin, cos) } else { (cos, sin) };
    let c = if q == 1 || q == 2 { -c } else { c };
    let s = if q >= 2 { -s } else { s };
    (c, s)
}

/// The two standard normal values of one Threefry block (Box–Muller, [module docs](self)).
#[inline(always)]
pub fn box_muller([x0, x1]: [u32; 2]) -> [f32; 2] {
    let u1 = ((x0 >> 8) + 1) as f32 * (1.0 / (1 << 24) as f32);
    let radius = (-2.0 * ln(u1)).sqrt();
    let (cos, sin) = cos_sin_turns(x1 >> 8);
    [radius * cos, radius * sin]
}

/// The noise of weight `index` at step `step` of the chain keyed `key` ([`chain_key`]).
pub fn normal(key: [u32; 2], step: u32, index: u64) -> f32 {
    let pair = box_muller(threefry2x32(key, [pair_counter(index), step]));
    pair[(index % 2) as usize]
}

/// The first counter word of the pair holding weight `index`.
#[inline(always)]
fn pair_counter(index: u64) -> u32 {
    u32::try_from(index / 2).expect("fewer than 2³³ weights in a member")
}

/// Pairs per block of [`fill_normals`]: Threefry over 64 lanes is four independent 512-bit
/// vectors a round, which keep the vector unit busy where one vector waits on each round
/// (measured in docs/benchmarks.md).
const BLOCK: usize = 64;
/// Box–Muller's lanes: one 512-bit vector of words (more spill registers).
const LANES: usize = 16;
/// The most runs' ends a block of [`fill_normal_runs`] crosses: runs of at least
/// `BLOCK / RUN_ENDS` pairs are spanned.
const RUN_ENDS: usize = 4;

/// The normals of the pairs numbered `q` (a [`BLOCK`]), all but the first `skip` values up to
/// `out.len()` of them.
#[inline(always)]
fn block_normals(key: [u32; 2], step: u32, q: [u32; BLOCK], skip: usize, out: &mut [f32]) {
    let (x0, x1) = threefry_lanes(key, q, [step; BLOCK]);
    let mut values = [[0f32; 2]; BLOCK];
    for (c, chunk) in values.chunks_exact_mut(LANES).enumerate() {
        let (mut cos, mut sin) = ([0f32; LANES], [0f32; LANES]);
        for l in 0..LANES {
            [cos[l], sin[l]] = box_muller([x0[c * LANES + l], x1[c * LANES + l]]);
        }
        for (l, pair) in chunk.iter_mut().enumerate() {
            *pair = [cos[l], sin[l]];
        }
    }
    out.copy_from_slice(&values.as_flattened()[skip..skip + out.len()]);
}

/// `out[i] = normal(key, step, start + i)`: the noise of the weights numbered `start..`, drawn a
/// block of 64 pairs at a time (vectorisable: the lanes share no work).
///
/// # Panics
/// If a weight's pair number does not fit the counter word (2³³ weights or more).
#[inline(always)]
pub fn fill_normals(key: [u32; 2], step: u32, start: u64, out: &mut [f32]) {
    let Some(last) = (start + out.len() as u64).checked_sub(1) else {
        return;
    };
    // Every pair number fits the counter word (checked at the last), so the lanes' numbers
    // are computed in `u32`; the lanes past the last pair are drawn and dropped.
    pair_counter(last);
    let mut pair = (start / 2) as u32;
    let mut skip = (start % 2) as usize;
    let mut done = 0;
    while done < out.len() {
        let q = std::array::from_fn(|l| pair.wrapping_add(l as u32));
        let take = (2 * BLOCK - skip).min(out.len() - done);
        block_normals(key, step, q, skip, &mut out[done..done + take]);
        done += take;
        skip = 0;
        pair = pair.wrapping_add(BLOCK as u32);
    }
}

/// `out` as consecutive runs of `run` values, run `k` the noise of the weights numbered
/// `first + k·stride ..` ([`fill_normals`] run by run): the columns of a block of units in each
/// row of a row-major matrix. Where the runs hold whole pairs (`first`, `stride` and `run` even),
/// at least sixteen of them, and do not overlap, a block spans runs, so no pair is drawn twice or
/// drawn and dropped; otherwise run by run.
///
/// # Panics
/// If `run` is 0 or does not divide `out.len()`, or as [`fill_normals`].
#[inline(always)]
pub fn fill_normal_runs(
    key: [u32; 2],
    step: u32,
    (first, stride, run): (u64, u64, usize),
    out: &mut [f32],
) {
    assert!(
        run > 0 && out.len().is_multiple_of(run),
        "whole runs of {run} values"
    );
    if out.is_empty() {
        return;
    }
    if stride == run as u64 || out.len() == run {
        return fill_normals(key, step, first, out);
    }
    let pairs_per_run = run / 2;
    if first % 2 == 1
        || stride % 2 == 1
        || run % 2 == 1
        || stride < run as u64
        || pairs_per_run * RUN_ENDS < BLOCK
    {
        for (k, out) in out.chunks_exact_mut(run).enumerate() {
            fill_normals(key, step, first + k as u64 * stride, out);
        }
        return;
    }
    pair_counter(first + (out.len() / run - 1) as u64 * stride + run as u64 - 1);
    // Pair `column` of the run whose first pair is `run_start`; a block's lanes cross at most
    // `RUN_ENDS` runs' ends, at each of which the pair numbers jump by `stride / 2 − pairs_per_run`.
    let (mut run_start, mut column) = ((first / 2) as u32, 0);
    let pairs_per_run = pairs_per_run as u32;
    let jump = (stride / 2) as u32 - pairs_per_run;
    for block in out.chunks_mut(2 * BLOCK) {
        let q = std::array::from_fn(|l| {
            let at = column + l as u32;
            let ends = (1..=RUN_ENDS as u32)
                .map(|j| (at >= j.saturating_mul(pairs_per_run)) as u32)
                .sum::<u32>();
            run_start
                .wrapping_add(at)
                .wrapping_add(ends.wrapping_mul(jump))
        });
        block_normals(key, step, q, 0, block);
        column += BLOCK as u32;
        while column >= pairs_per_run {
            column -= pairs_per_run;
            run_start = run_start.wrapping_add(pairs_per_run + jump);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's `kat_vectors` for `threefry2x32_20` (also JAX's `testThreefry2x32`).
    #[test]
    fn threefry_gives_random123_known_answers() {
        let m = u32::MAX;
        assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b20_0159, 0x99ba_4efe]);
        assert_eq!(threefry2x32([m, m], [m, m]), [0x1cb9_96fc, 0xbb00_2be7]);
        assert_eq!(
            threefry2x32([0x1319_8a2e, 0x0370_7344], [0x243f_6a88, 0x85a3_08d3]),
            [0xc492_3a9c, 0x483d_f7a0]
        );
    }

    #[test]
    fn the_polynomials_are_within_a_few_ulp_of_the_standard_library() {
        let mut worst_ln = 0f64;
        for j in (1..=1u32 << 24).step_by(97) {
            let x = j as f32 / (1 << 24) as f32;
            let (got, want) = (ln(x) as f64, (x as f64).ln());
            worst_ln = worst_ln.max((got - want).abs() / want.abs().max(1e-30));
        }
        assert!(worst_ln < 3e-7, "ln: worst relative error {worst_ln:e}");
        assert_eq!(ln(1.0), 0.0);
        let mut worst_trig = 0f64;
        for k in (0..1u32 << 24).step_by(89) {
            let (cos, sin) = cos_sin_turns(k);
            let theta = std::f64::consts::TAU * k as f64 / (1u64 << 24) as f64;
            worst_trig = worst_trig
                .max((cos as f64 - theta.cos()).abs())
                .max((sin as f64 - theta.sin()).abs());
        }
        assert!(
            worst_trig < 2e-7,
            "cos/sin: worst absolute error {worst_trig:e}"
        );
        assert_eq!(cos_sin_turns(0), (1.0, 0.0));
        assert_eq!(cos_sin_turns(1 << 22), (-0.0, 1.0));
    }

    #[test]
    fn a_run_is_the_values_of_its_weights_from_any_start() {
        let key = chain_key(1337, 3);
        for start in [0u64, 1, 2, 7, 1000] {
            for len in [0usize, 1, 2, 15, 16, 17, 33, 70, 127, 128, 129, 300] {
                let mut out = vec![f32::NAN; len];
                fill_normals(key, 9, start, &mut out);
                let want: Vec<f32> = (0..len as u64).map(|i| normal(key, 9, start + i)).collect();
                assert_eq!(out, want, "start {start}, len {len}");
            }
        }
        // The key, the step and the index each change the value.
        let base = normal(key, 9, 5);
        assert_ne!(base, normal(chain_key(1337, 4), 9, 5));
        assert_ne!(base, normal(chain_key(1338, 3), 9, 5));
        assert_ne!(base, normal(key, 10, 5));
        assert_ne!(base, normal(key, 9, 4));
    }

    #[test]
    fn runs_are_the_values_of_their_weights() {
        let key = chain_key(1337, 3);
        // Even runs of at least a block (spanned), odd or short ones (run by run), odd starts
        // and strides, and a last block of fewer than 64 pairs.
        for (first, stride, run, runs) in [
            (0u64, 100u64, 50usize, 226usize),
            (50, 100, 50, 7),
            (64, 128, 64, 3),
            (2, 34, 32, 5),
            (1, 100, 50, 4),
            (0, 101, 50, 4),
            (0, 100, 43, 4),
            (4, 40, 20, 6),
            (0, 70, 70, 3),
            (10, 50, 50, 3),
            (6, 40, 32, 20),
            (0, 300, 150, 3),
            (0, 40, 64, 3),
        ] {
            let mut out = vec![f32::NAN; run * runs];
            fill_normal_runs(key, 9, (first, stride, run), &mut out);
            let want: Vec<f32> = (0..runs as u64)
                .flat_map(|k| (0..run as u64).map(move |i| first + k * stride + i))
                .map(|index| normal(key, 9, index))
                .collect();
            assert_eq!(out, want, "first {first}, stride {stride}, run {run}");
        }
    }

    /// 2²⁰ values: mean 0 and variance 1 within a few standard errors, the tails of a normal
    /// (|z| > 3 in 0.27% of draws), and no correlation between neighbouring weights or steps.
    #[test]
    fn the_values_are_standard_normal() {
        let n = 1usize << 20;
        let key = chain_key(7, 0);
        let mut z = vec![0f32; n];
        fill_normals(key, 0, 0, &mut z);
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let tails = z.iter().filter(|v| v.abs() > 3.0).count() as f64 / n as f64;
        let kurtosis = z.iter().map(|&v| (v as f64).powi(4)).sum::<f64>() / n as f64;
        let se = (1.0 / n as f64).sqrt();
        assert!(mean.abs() < 4.0 * se, "mean {mean}");
        assert!((var - 1.0).abs() < 4.0 * se * 2f64.sqrt(), "variance {var}");
        assert!((tails - 0.0027).abs() < 0.0004, "tails {tails}");
        assert!((kurtosis - 3.0).abs() < 0.05, "kurtosis {kurtosis}");
        let lag = z.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>() / n as f64;
        assert!(lag.abs() < 4.0 * se, "neighbour correlation {lag}");
        let mut next = vec![0f32; n];
        fill_normals(key, 1, 0, &mut next);
        let steps = z
            .iter()
            .zip(&next)
            .map(|(a, b)| (a * b) as f64)
            .sum::<f64>()
            / n as f64;
        assert!(steps.abs() < 4.0 * se, "step correlation {steps}");
    }
}

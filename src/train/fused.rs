//! The fused CPU training engine: [`FusedEngine`].

use crate::{
    data::{ModularDataset, Split},
    model::{transpose, MlpWeights},
};

use super::TrainingConfig;

const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;

/// AdamW's state for the two weight matrices, on the host, in PyTorch's orientation (the same as
/// [`MlpWeights`]): what a checkpoint needs to resume training.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    /// Optimiser steps taken so far (PyTorch's `state["step"]`).
    pub step: u64,
    /// First moment of `fc1.weight`, row-major `[d_hidden, 2p]`.
    pub fc1_m1: Vec<f32>,
    /// Second moment of `fc1.weight`, row-major `[d_hidden, 2p]`.
    pub fc1_m2: Vec<f32>,
    /// First moment of `fc2.weight`, row-major `[p, d_hidden]`.
    pub fc2_m1: Vec<f32>,
    /// Second moment of `fc2.weight`, row-major `[p, d_hidden]`.
    pub fc2_m2: Vec<f32>,
}

/// Sums of one pass over a split: summed row losses and the number of right predictions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PassSums {
    pub loss_sum: f64,
    pub correct: usize,
}

/// Rows of one split as indices into fc1's rows and labels.
#[derive(Debug, Clone)]
struct Rows {
    a: Vec<u32>,
    b: Vec<u32>,
    y: Vec<u32>,
}

impl Rows {
    fn new(data: &ModularDataset, split: Split) -> Self {
        let p = data.p();
        let rows = data.rows(split);
        let mut out = Self {
            a: Vec::with_capacity(rows.len()),
            b: Vec::with_capacity(rows.len()),
            y: Vec::with_capacity(rows.len()),
        };
        for &r in rows {
            let (a, b) = data.pair(r);
            out.a.push(a as u32);
            out.b.push((p + b) as u32);
            out.y.push(data.label(r) as u32);
        }
        out
    }

    fn len(&self) -> usize {
        self.y.len()
    }
}

/// The fused CPU training engine: weights, AdamW moments and scratch buffers on the host, and the
/// whole AdamW step of the notebook's network in plain `f32`, without Burn's per-operation
/// overhead.
///
/// One step over a batch of `n` rows with inputs `(a, p + b)` and labels `y`:
/// - `pre[i] = W1[a_i] + W1[p + b_i]` (fc1 as a gather of two rows), `post = relu(pre)`,
///   `logits = post · W2` (one small GEMM);
/// - softmax cross-entropy, its mean over the batch, argmax (first maximum) for accuracy;
/// - `dlogits = (softmax - onehot(y)) / n`, `dW2 = postᵀ · dlogits`, `dpost = dlogits · W2ᵀ`
///   (two GEMMs), `dpre = dpost ⊙ [pre > 0]`, `dW1` by scatter-adding `dpre[i]` into rows
///   `a_i` and `p + b_i` in row order;
/// - AdamW exactly as Burn's `AdamW` does it (and PyTorch's `torch.optim.AdamW`):
///   `w ← w·(1 - lr·wd) - lr · m̂ / (√v̂ + ε)` with bias-corrected moments, β = (0.9, 0.999).
///
/// It computes the same function as the generic path ([`super::Trainer`] with
/// [`Engine::Generic`](super::Engine::Generic)) up to float rounding; `tests/training.rs` checks it.
/// It is single-threaded and every reduction has a fixed order, so a run is bit-reproducible.
///
/// # Layout
/// Internally the weights are kept in Burn's [`Linear`](burn::nn::Linear) layout, fc1 `[2p, d_hidden]`
/// (so a gathered row is contiguous) and fc2 `[d_hidden, p]`. Everything that leaves the engine
/// ([`FusedEngine::weights`], [`FusedEngine::adam_state`]) is in PyTorch's orientation, like
/// [`MlpWeights`].
#[derive(Debug, Clone)]
pub struct FusedEngine {
    p: usize,
    h: usize,
    batch_size: usize,
    lr: f32,
    weight_decay: f32,
    epsilon: f32,
    step: u64,
    /// `[2p, h]`, Burn layout.
    w1: Vec<f32>,
    /// `[h, p]`, Burn layout.
    w2: Vec<f32>,
    m1_w1: Vec<f32>,
    m2_w1: Vec<f32>,
    m1_w2: Vec<f32>,
    m2_w2: Vec<f32>,
    train: Rows,
    val: Rows,
    scratch: Scratch,
}

#[derive(Debug, Clone)]
struct Scratch {
    pre: Vec<f32>,    // [rows, h]
    post: Vec<f32>,   // [rows, h]
    logits: Vec<f32>, // [rows, p]; softmax gradient in place
    dpost: Vec<f32>,  // [batch, h]
    g1: Vec<f32>,     // [2p, h]
    g2: Vec<f32>,     // [h, p]
}

impl FusedEngine {
    /// Builds the engine from initial `weights` (PyTorch orientation) and the run's
    /// configuration and data; the optimiser starts fresh.
    ///
    /// # Panics
    /// If `weights` are not for `config.model`'s `p` and width, or `data` is for another `p`.
    pub fn new(config: &TrainingConfig, weights: &MlpWeights, data: &ModularDataset) -> Self {
        let (p, h) = (config.model.p, config.model.d_hidden);
        assert_eq!((weights.p(), weights.d_hidden()), (p, h), "weights shape");
        assert_eq!(data.p(), p, "data set modulus");
        let train = Rows::new(data, Split::Train);
        let val = Rows::new(data, Split::Val);
        let rows = config.batch_size.min(train.len()).max(val.len());
        Self {
            p,
            h,
            batch_size: config.batch_size,
            lr: config.lr as f32,
            weight_decay: config.weight_decay as f32,
            epsilon: config.adam_epsilon as f32,
            step: 0,
            w1: transpose(weights.fc1(), h, 2 * p),
            w2: transpose(weights.fc2(), p, h),
            m1_w1: vec![0.0; 2 * p * h],
            m2_w1: vec![0.0; 2 * p * h],
            m1_w2: vec![0.0; h * p],
            m2_w2: vec![0.0; h * p],
            train,
            val,
            scratch: Scratch {
                pre: vec![0.0; rows * h],
                post: vec![0.0; rows * h],
                logits: vec![0.0; rows * p],
                dpost: vec![0.0; config.batch_size.min(rows) * h],
                g1: vec![0.0; 2 * p * h],
                g2: vec![0.0; h * p],
            },
        }
    }

    /// The current weights in PyTorch's orientation.
    pub fn weights(&self) -> MlpWeights {
        let (p, h) = (self.p, self.h);
        MlpWeights::new(
            p,
            h,
            transpose(&self.w1, 2 * p, h),
            transpose(&self.w2, h, p),
        )
        .expect("the engine's weights have consistent shapes")
    }

    /// AdamW's step count and moments, in PyTorch's orientation.
    pub fn adam_state(&self) -> AdamState {
        let (p, h) = (self.p, self.h);
        AdamState {
            step: self.step,
            fc1_m1: transpose(&self.m1_w1, 2 * p, h),
            fc1_m2: transpose(&self.m2_w1, 2 * p, h),
            fc2_m1: transpose(&self.m1_w2, h, p),
            fc2_m2: transpose(&self.m2_w2, h, p),
        }
    }

    /// Replaces the weights and optimiser state (to resume a run).
    ///
    /// # Panics
    /// If a shape does not match this engine's `p` and width.
    pub fn restore(&mut self, weights: &MlpWeights, adam: &AdamState) {
        let (p, h) = (self.p, self.h);
        assert_eq!((weights.p(), weights.d_hidden()), (p, h), "weights shape");
        for (len, want) in [
            (adam.fc1_m1.len(), 2 * p * h),
            (adam.fc1_m2.len(), 2 * p * h),
            (adam.fc2_m1.len(), h * p),
            (adam.fc2_m2.len(), h * p),
        ] {
            assert_eq!(len, want, "AdamW moment length");
        }
        self.w1 = transpose(weights.fc1(), h, 2 * p);
        self.w2 = transpose(weights.fc2(), p, h);
        self.m1_w1 = transpose(&adam.fc1_m1, h, 2 * p);
        self.m2_w1 = transpose(&adam.fc1_m2, h, 2 * p);
        self.m1_w2 = transpose(&adam.fc2_m1, p, h);
        self.m2_w2 = transpose(&adam.fc2_m2, p, h);
        self.step = adam.step;
    }

    /// One epoch of optimiser steps over the training rows in order, in batches of
    /// `batch_size`; returns the sums of the losses and right predictions, each taken before
    /// its batch's step.
    pub(crate) fn train_epoch(&mut self) -> PassSums {
        let n = self.train.len();
        let mut sums = PassSums::default();
        let mut begin = 0;
        while begin < n {
            let end = (begin + self.batch_size).min(n);
            let batch = self.train_rows(begin..end);
            sums.loss_sum += batch.loss_sum;
            sums.correct += batch.correct;
            begin = end;
        }
        sums
    }

    /// One optimiser step on training rows `rows` (a batch); its sums, taken before the step.
    pub(crate) fn train_rows(&mut self, rows: std::ops::Range<usize>) -> PassSums {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.step_batch_avx2(rows.start, rows.end) };
        }
        self.step_batch(rows.start, rows.end)
    }

    /// [`Self::step_batch`] compiled for AVX2. Element-wise operations round the same way at any
    /// vector width and no reduction is reordered, so the results are the same bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn step_batch_avx2(&mut self, begin: usize, end: usize) -> PassSums {
        self.step_batch(begin, end)
    }

    /// Loss and accuracy sums over the validation rows.
    pub(crate) fn evaluate_val(&mut self) -> PassSums {
        let n = self.val.len();
        let mut sums = PassSums::default();
        // In chunks the size of the scratch buffers.
        let chunk = self.scratch.pre.len() / self.h;
        let mut begin = 0;
        while begin < n {
            let end = (begin + chunk).min(n);
            let s = self.forward_val(begin..end);
            sums.loss_sum += s.loss_sum;
            sums.correct += s.correct;
            begin = end;
        }
        sums
    }

    /// The forward pass over validation rows `rows`, compiled for AVX2 where the CPU has it (same
    /// results, see [`Self::step_batch_avx2`]).
    fn forward_val(&mut self, rows: std::ops::Range<usize>) -> PassSums {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.forward_val_avx2(rows) };
        }
        self.forward_val_portable(rows)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_val_avx2(&mut self, rows: std::ops::Range<usize>) -> PassSums {
        self.forward_val_portable(rows)
    }

    #[inline(always)]
    fn forward_val_portable(&mut self, rows: std::ops::Range<usize>) -> PassSums {
        forward(
            &mut self.scratch,
            &self.w1,
            &self.w2,
            (self.p, self.h),
            &self.val,
            rows,
            false,
        )
    }

    /// Number of training rows.
    pub(crate) fn n_train(&self) -> usize {
        self.train.len()
    }

    /// Number of validation rows.
    pub(crate) fn n_val(&self) -> usize {
        self.val.len()
    }

    /// Forward, backward and AdamW step on training rows `begin..end`.
    #[inline(always)]
    fn step_batch(&mut self, begin: usize, end: usize) -> PassSums {
        let (p, h) = (self.p, self.h);
        let n = end - begin;
        let sums = forward(
            &mut self.scratch,
            &self.w1,
            &self.w2,
            (p, h),
            &self.train,
            begin..end,
            true,
        );
        let s = &mut self.scratch;
        let dlogits = &s.logits[..n * p];
        let post = &s.post[..n * h];
        // dW2 [h, p] = postᵀ [h, n] · dlogits [n, p]
        matmul(&mut s.g2, (h, p, n), (post, 1, h), (dlogits, p, 1));
        // dpost [n, h] = dlogits [n, p] · W2ᵀ [p, h]
        let dpost = &mut s.dpost[..n * h];
        matmul(dpost, (n, h, p), (dlogits, p, 1), (&self.w2, 1, p));
        // dW1 by scatter-add of dpre = dpost ⊙ [pre > 0], rows in order.
        s.g1.fill(0.0);
        for i in 0..n {
            let pre = &s.pre[i * h..][..h];
            let dp = &mut dpost[i * h..][..h];
            for (d, &x) in dp.iter_mut().zip(pre) {
                if x <= 0.0 {
                    *d = 0.0;
                }
            }
            for row in [self.train.a[begin + i], self.train.b[begin + i]] {
                let g = &mut s.g1[row as usize * h..][..h];
                for (g, &d) in g.iter_mut().zip(dp.iter()) {
                    *g += d;
                }
            }
        }
        self.step += 1;
        let t = i32::try_from(self.step).unwrap_or(i32::MAX);
        let adam = Adam {
            lr: self.lr,
            decay: 1.0 - (self.lr as f64 * self.weight_decay as f64) as f32,
            epsilon: self.epsilon,
            bias_1: 1.0 - BETA_1.powi(t),
            bias_2: 1.0 - BETA_2.powi(t),
        };
        adam.update(&mut self.w1, &s.g1, &mut self.m1_w1, &mut self.m2_w1);
        adam.update(&mut self.w2, &s.g2, &mut self.m1_w2, &mut self.m2_w2);
        sums
    }
}

/// Forward pass over `rows[range]` into the scratch buffers: loss and accuracy sums; with
/// `grad`, `scratch.logits` is overwritten by the gradient of the batch-mean loss.
#[inline(always)]
fn forward(
    s: &mut Scratch,
    w1: &[f32],
    w2: &[f32],
    (p, h): (usize, usize),
    rows: &Rows,
    range: std::ops::Range<usize>,
    grad: bool,
) -> PassSums {
    let n = range.len();
    for (i, r) in range.clone().enumerate() {
        let wa = &w1[rows.a[r] as usize * h..][..h];
        let wb = &w1[rows.b[r] as usize * h..][..h];
        let pre = &mut s.pre[i * h..][..h];
        let post = &mut s.post[i * h..][..h];
        for j in 0..h {
            let x = wa[j] + wb[j];
            pre[j] = x;
            post[j] = x.max(0.0);
        }
    }
    let logits = &mut s.logits[..n * p];
    // logits [n, p] = post [n, h] · W2 [h, p]
    matmul(logits, (n, p, h), (&s.post[..n * h], h, 1), (w2, p, 1));
    let mut sums = PassSums::default();
    let scale = 1.0 / n as f32;
    for (i, r) in range.enumerate() {
        let row = &mut logits[i * p..][..p];
        let y = rows.y[r] as usize;
        let (mut best, mut max) = (0, row[0]);
        for (c, &v) in row.iter().enumerate().skip(1) {
            if v > max {
                (best, max) = (c, v);
            }
        }
        let target = row[y] - max;
        // row ← exp(row - max), summed in eight fixed lanes (vectorisable, same order each run).
        let mut lanes = [0f32; 8];
        for chunk in row.chunks_mut(8) {
            for (v, lane) in chunk.iter_mut().zip(lanes.iter_mut()) {
                *v = exp(*v - max);
                *lane += *v;
            }
        }
        let sum = lanes.iter().sum::<f32>();
        sums.loss_sum += (sum.ln() - target) as f64;
        sums.correct += usize::from(best == y);
        if grad {
            let inv = scale / sum;
            for v in row.iter_mut() {
                *v *= inv;
            }
            row[y] -= scale;
        }
    }
    sums
}

/// `eˣ` to within 2 ulp for `x ≤ 88.3` (flushes to `2⁻¹²⁶` below `-87.3`), from additions,
/// multiplications and bit operations only, so loops over it vectorise: Cephes' `expf`
/// (range reduction by `ln 2` in two parts, degree-6 polynomial, exponent by bit shift).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer
    let x = x.clamp(-87.336_54, 88.376_26);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let poly = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = poly * r * r + r + 1.0;
    // t's low mantissa bits hold n + 2²²; move n + 127 into the exponent field.
    let n = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    y * f32::from_bits(((n + 127) as u32) << 23)
}

struct Adam {
    lr: f32,
    decay: f32,
    epsilon: f32,
    bias_1: f32,
    bias_2: f32,
}

impl Adam {
    /// Burn's AdamW update, element by element.
    #[inline(always)]
    fn update(&self, w: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32]) {
        let (f1, f2) = (1.0 - BETA_1, 1.0 - BETA_2);
        for (((w, &g), m1), m2) in w.iter_mut().zip(g).zip(m1.iter_mut()).zip(m2.iter_mut()) {
            *m1 = *m1 * BETA_1 + g * f1;
            *m2 = *m2 * BETA_2 + g * g * f2;
            let m1_hat = *m1 / self.bias_1;
            let m2_hat = *m2 / self.bias_2;
            let delta = m1_hat / (m2_hat.sqrt() + self.epsilon);
            *w = *w * self.decay - delta * self.lr;
        }
    }
}

/// `dst [m, n] (row-major) = lhs [m, k] · rhs [k, n]`, where each operand is given as
/// `(values, row_stride, col_stride)`, so transposed views cost nothing.
///
/// # Panics
/// If an operand's last element lies outside its slice or `dst` is shorter than `m·n`.
fn matmul(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= m * n, "matmul destination too short");
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    assert!(
        (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(),
        "matmul lhs out of bounds"
    );
    assert!(
        (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len(),
        "matmul rhs out of bounds"
    );
    // SAFETY: the asserts above prove every element gemm reads, `lhs[i·lhs_rs + l·lhs_cs]` for
    // i < m, l < k and `rhs[l·rhs_rs + j·rhs_cs]` for l < k, j < n, and every element it writes,
    // `dst[i·n + j]`, lies inside its slice. `dst` is a unique borrow, so it aliases neither
    // input. With `read_dst = false` gemm never reads `dst`, so its old contents do not matter.
    // Strides fit in `isize` because they index into live slices. Parallelism::None runs on this
    // thread with a fixed reduction order (bit-reproducible).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn matmul_matches_the_naive_product_for_plain_and_transposed_views() {
        let (m, n, k) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|v| v as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|v| 1.0 - v as f32 * 0.25).collect();
        let want = naive(m, n, k, &a, &b);
        let mut got = vec![f32::NAN; m * n];
        matmul(&mut got, (m, n, k), (&a, k, 1), (&b, n, 1));
        assert_eq!(got, want);
        // The same product from transposed storage of both operands.
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        let mut got_t = vec![f32::NAN; m * n];
        matmul(&mut got_t, (m, n, k), (&at, 1, m), (&bt, 1, k));
        assert_eq!(got_t, want);
    }

    #[test]
    #[should_panic(expected = "lhs out of bounds")]
    fn matmul_rejects_a_short_operand() {
        let mut dst = vec![0f32; 4];
        matmul(&mut dst, (2, 2, 2), (&[1.0; 3], 2, 1), (&[1.0; 4], 2, 1));
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_standard_library() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1e4) < 1.2e-38 && exp(-1e4) > 0.0);
    }
}

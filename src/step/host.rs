//! The host implementation of [`StepBackend`] for the CPU backends (ndarray, flex): plain `f32`
//! code without Burn's per-operation overhead.
//!
//! One member's step over a batch of `n` rows:
//! - `pre[i] = W1[a_i] + W1[p + b_i]` (fc1 as a gather of two rows), `post = relu(pre)`,
//!   `logits = post · W2` (one small GEMM);
//! - softmax cross-entropy, its mean over the batch, argmax (first maximum) for accuracy;
//! - `dlogits = (softmax - onehot(y)) / n`, `dW2 = postᵀ · dlogits`, `dpost = dlogits · W2ᵀ`
//!   (two GEMMs), `dpre = dpost ⊙ [pre > 0]`, `dW1` by scatter-adding `dpre[i]` into rows
//!   `a_i` and `p + b_i` in row order;
//! - AdamW, element by element.
//!
//! Members are stepped one after another on this thread; every reduction has a fixed order, so
//! a run is bit-reproducible. Element-wise loops are compiled for AVX2 where the CPU has it
//! (runtime detection); they round the same way at any vector width and no reduction is
//! reordered, so the results are the same bits.

use std::ops::Range;

use crate::model::{transpose, MlpWeights};

use super::{
    bias_corrections, AdamState, EpochSums, Hyper, PassSums, Rows, StackSetup, StepBackend, BETA_1,
    BETA_2,
};

/// A stack on the host.
#[derive(Debug, Clone)]
pub struct HostStack {
    p: usize,
    h: usize,
    step: u64,
    members: Vec<HostMember>,
    scratch: Scratch,
}

/// One member's weights, moments, hyperparameters, rows and sums.
#[derive(Debug, Clone)]
struct HostMember {
    /// `[2p, h]`, Burn layout.
    w1: Vec<f32>,
    /// `[h, p]`, Burn layout.
    w2: Vec<f32>,
    m1_w1: Vec<f32>,
    m2_w1: Vec<f32>,
    m1_w2: Vec<f32>,
    m2_w2: Vec<f32>,
    hyper: Hyper,
    train: Rows,
    val: Rows,
    sums: EpochSums,
}

#[derive(Debug, Clone)]
struct Scratch {
    pre: Vec<f32>,    // [rows, h]
    post: Vec<f32>,   // [rows, h]
    logits: Vec<f32>, // [rows, p]; softmax gradient in place
    dpost: Vec<f32>,  // [rows, h]
    g1: Vec<f32>,     // [2p, h]
    g2: Vec<f32>,     // [h, p]
}

impl Scratch {
    /// Grows the row buffers to hold at least `rows` rows.
    fn fit(&mut self, rows: usize, (p, h): (usize, usize)) {
        if self.pre.len() < rows * h {
            self.pre.resize(rows * h, 0.0);
            self.post.resize(rows * h, 0.0);
            self.dpost.resize(rows * h, 0.0);
            self.logits.resize(rows * p, 0.0);
        }
    }
}

/// Validation rows per forward pass (keeps the scratch buffers small for large p).
const VAL_CHUNK: usize = 4096;

impl HostStack {
    fn new(setup: StackSetup) -> Self {
        let step = setup.check();
        let (p, h) = (setup.p, setup.d_hidden);
        let members: Vec<HostMember> = setup
            .members
            .into_iter()
            .map(|m| {
                let adam = m.adam.unwrap_or_else(|| AdamState::zeros(p, h));
                HostMember {
                    w1: transpose(m.weights.fc1(), h, 2 * p),
                    w2: transpose(m.weights.fc2(), p, h),
                    m1_w1: transpose(&adam.fc1_m1, h, 2 * p),
                    m2_w1: transpose(&adam.fc1_m2, h, 2 * p),
                    m1_w2: transpose(&adam.fc2_m1, p, h),
                    m2_w2: transpose(&adam.fc2_m2, p, h),
                    hyper: m.hyper,
                    train: m.train,
                    val: m.val,
                    sums: EpochSums::default(),
                }
            })
            .collect();
        // Scratch rows for a validation chunk; a longer batch grows them (`Scratch::fit`).
        let rows = members[0].val.len().clamp(1, VAL_CHUNK);
        Self {
            p,
            h,
            step,
            members,
            scratch: Scratch {
                pre: vec![0.0; rows * h],
                post: vec![0.0; rows * h],
                logits: vec![0.0; rows * p],
                dpost: vec![0.0; rows * h],
                g1: vec![0.0; 2 * p * h],
                g2: vec![0.0; h * p],
            },
        }
    }

    /// One step of every member on training rows `rows`.
    fn step(&mut self, rows: Range<usize>) {
        assert!(
            !rows.is_empty() && rows.end <= self.members[0].train.len(),
            "batch rows {rows:?} outside the training split"
        );
        self.scratch.fit(rows.len(), (self.p, self.h));
        self.step += 1;
        let (bias_1, bias_2) = bias_corrections(self.step);
        for member in &mut self.members {
            let (lr, decay, epsilon) = member.hyper.factors();
            let adam = Adam {
                lr,
                decay,
                epsilon,
                bias_1,
                bias_2,
            };
            let sums = step_member_dispatch(
                member,
                &mut self.scratch,
                (self.p, self.h),
                rows.clone(),
                &adam,
            );
            member.sums.train.loss_sum += sums.loss_sum;
            member.sums.train.correct += sums.correct;
        }
    }

    /// Validation of every member, in chunks the size of the scratch buffers.
    fn validate(&mut self) {
        let chunk = self.scratch.pre.len() / self.h;
        for member in &mut self.members {
            let n = member.val.len();
            let mut begin = 0;
            while begin < n {
                let end = (begin + chunk).min(n);
                let s = forward_dispatch(&mut self.scratch, member, (self.p, self.h), begin..end);
                member.sums.val.loss_sum += s.loss_sum;
                member.sums.val.correct += s.correct;
                begin = end;
            }
        }
    }
}

/// [`step_member`], compiled for AVX2 where the CPU has it (the same results, see the module
/// docs).
fn step_member_dispatch(
    m: &mut HostMember,
    s: &mut Scratch,
    shape: (usize, usize),
    rows: Range<usize>,
    adam: &Adam,
) -> PassSums {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(
            m: &mut HostMember,
            s: &mut Scratch,
            shape: (usize, usize),
            rows: Range<usize>,
            adam: &Adam,
        ) -> PassSums {
            step_member(m, s, shape, rows, adam)
        }
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2(m, s, shape, rows, adam) };
    }
    step_member(m, s, shape, rows, adam)
}

/// [`forward`] without the gradient, compiled for AVX2 where the CPU has it.
fn forward_dispatch(
    s: &mut Scratch,
    m: &HostMember,
    shape: (usize, usize),
    range: Range<usize>,
) -> PassSums {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(
            s: &mut Scratch,
            m: &HostMember,
            shape: (usize, usize),
            range: Range<usize>,
        ) -> PassSums {
            forward(s, &m.w1, &m.w2, shape, &m.val, range, false)
        }
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2(s, m, shape, range) };
    }
    forward(s, &m.w1, &m.w2, shape, &m.val, range, false)
}

/// Forward, backward and AdamW step of one member on training rows `rows`: the rows' sums,
/// taken before the step.
#[inline(always)]
fn step_member(
    m: &mut HostMember,
    s: &mut Scratch,
    (p, h): (usize, usize),
    rows: Range<usize>,
    adam: &Adam,
) -> PassSums {
    let (begin, n) = (rows.start, rows.len());
    let sums = forward(s, &m.w1, &m.w2, (p, h), &m.train, rows, true);
    let dlogits = &s.logits[..n * p];
    let post = &s.post[..n * h];
    // dW2 [h, p] = postᵀ [h, n] · dlogits [n, p]
    matmul(&mut s.g2, (h, p, n), (post, 1, h), (dlogits, p, 1));
    // dpost [n, h] = dlogits [n, p] · W2ᵀ [p, h]
    let dpost = &mut s.dpost[..n * h];
    matmul(dpost, (n, h, p), (dlogits, p, 1), (&m.w2, 1, p));
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
        for row in [m.train.a[begin + i], m.train.b[begin + i]] {
            let g = &mut s.g1[row as usize * h..][..h];
            for (g, &d) in g.iter_mut().zip(dp.iter()) {
                *g += d;
            }
        }
    }
    adam.update(&mut m.w1, &s.g1, &mut m.m1_w1, &mut m.m2_w1);
    adam.update(&mut m.w2, &s.g2, &mut m.m1_w2, &mut m.m2_w2);
    sums
}

macro_rules! impl_host_step_backend {
    ($backend:ty) => {
        impl StepBackend for $backend {
            type Stack = HostStack;

            fn stack_init(setup: StackSetup, _device: &Self::Device) -> HostStack {
                HostStack::new(setup)
            }

            fn stack_step(stack: &mut HostStack, rows: Range<usize>) {
                stack.step(rows);
            }

            fn stack_validate(stack: &mut HostStack) {
                stack.validate();
            }

            fn stack_take_sums(stack: &mut HostStack) -> Vec<EpochSums> {
                stack
                    .members
                    .iter_mut()
                    .map(|m| std::mem::take(&mut m.sums))
                    .collect()
            }

            fn stack_weights(stack: &HostStack) -> Vec<MlpWeights> {
                let (p, h) = (stack.p, stack.h);
                stack
                    .members
                    .iter()
                    .map(|m| {
                        MlpWeights::new(p, h, transpose(&m.w1, 2 * p, h), transpose(&m.w2, h, p))
                            .expect("a stack's weights have consistent shapes")
                    })
                    .collect()
            }

            fn stack_adam(stack: &HostStack) -> Vec<AdamState> {
                let (p, h) = (stack.p, stack.h);
                stack
                    .members
                    .iter()
                    .map(|m| AdamState {
                        step: stack.step,
                        fc1_m1: transpose(&m.m1_w1, 2 * p, h),
                        fc1_m2: transpose(&m.m2_w1, 2 * p, h),
                        fc2_m1: transpose(&m.m1_w2, h, p),
                        fc2_m2: transpose(&m.m2_w2, h, p),
                    })
                    .collect()
            }

            fn stack_set_hyper(stack: &mut HostStack, hyper: &[Hyper]) {
                assert_eq!(hyper.len(), stack.members.len(), "one Hyper per member");
                for (m, &h) in stack.members.iter_mut().zip(hyper) {
                    m.hyper = h;
                }
            }
        }
    };
}

#[cfg(feature = "flex")]
impl_host_step_backend!(burn::backend::Flex);
#[cfg(feature = "ndarray")]
impl_host_step_backend!(burn::backend::NdArray);

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

//! The CubeCL implementation of [`StepBackend`], for Burn's CubeCL backends (wgpu, vulkan,
//! cuda): `#[cube]` kernels written once, for the three runtimes.
//!
//! The notebook's step of all K members is nine launches, each over one kind of output element,
//! so no two threads write the same value and no reduction needs atomics (a run is reproducible
//! from run to run):
//!
//! | launch | one thread per | computes |
//! |---|---|---|
//! | [`hidden_kernel`] | `(k, i, j)` | `pre = W1[a_i, j] + W1[p + b_i, j]`, `post = σ(pre)` (ReLU or `x²`) |
//! | [`matmul_kernel`] | 4×4 tile of `(k, i, c)` | `logits = post · W2` |
//! | [`loss_kernel`] | `(k, i)` | row loss (cross-entropy, StableMax or MSE), argmax, collapse, `dlogits` in place |
//! | [`sums_kernel`] | `k` | the batch's loss, right predictions and collapsed rows, added to the epoch sums |
//! | [`matmul_kernel`] | 4×4 tile of `(k, i, j)` | `dpre = (dlogits · W2ᵀ) ⊙ σ'(pre)` |
//! | [`matmul_kernel`] | 4×4 tile of `(k, j, c)` | `dW2 = postᵀ · dlogits` |
//! | [`fc1_grad_kernel`] | `(k, j)` | `dW1[·, j]`: `dpre[i, j]` added into rows `a_i`, `p + b_i`, rows in order |
//! | [`update_kernel`] | `(k, j, c)` | AdamW, SGD or SGLD on `W2` |
//! | [`update_kernel`] | `(k, r, j)` | AdamW, SGD or SGLD on `W1` |
//!
//! Each member's choices ([`Method`]) are rows of small tables ([`CODES`], [`PARAMS`],
//! [`FACTORS`]) that the kernels branch on, so members of different methods share every launch.
//! The other methods add launches before each weight's update, only when some member uses them:
//! [`filter_kernel`] (Grokfast's EMA or MA, one thread per element, the MA's window a ring of
//! blocks); ⊥Grad's dot products and norms as chunked sums ([`dots_kernel`], [`totals_kernel`],
//! [`project_kernel`], [`rescale_kernel`]); and Muon ([`muon_momentum_kernel`], its norm,
//! five Newton–Schulz steps of three batched products of [`matmul_kernel`] and two
//! [`combine_kernel`]s, [`muon_apply_kernel`]) over the Muon members only. SGLD draws its noise
//! in [`update_kernel`] ([`sgld_noise`]: the host's [`noise`](super::noise) arithmetic on the
//! same integers). Everything is `f32`
//! (WGSL has no `f64`): StableMax, which the host computes in `f64` as its authors do, is
//! arranged so that its label's gradient does not cancel ([`loss_kernel`]), and the sums of
//! ⊥Grad and Muon are per chunk of [`CHUNK`] elements, then over the chunks, each in order.
//!
//! The three products are one kernel with strided operands (a transposed operand costs nothing);
//! for stacks of 64 members or more each thread keeps a 4×4 tile of outputs in registers, so it
//! loads 8 values per 16 multiply-adds; smaller stacks compute one element per thread. Each sum
//! walks its index in order (fc1's gradient walks the batch rows in order, as the host's
//! scatter-add does). Kernels on one device run in launch order. Validation is the first four
//! launches on validation rows, in chunks that bound the logits buffer. The kernels need no
//! autotuning, so the first step runs as soon as they compile.
//!
//! The stack keeps its own buffers on the backend's compute client; no Burn tensor passes
//! through it, so the same stack serves `CubeBackend` and `Fusion<CubeBackend>` (Burn's `Wgpu`,
//! `Vulkan` and `Cuda` types).

// Kernels take their sizes as separate scalars, and CubeCL's DSL has no `div_ceil`,
// `rotate_left` or `is_multiple_of`.
#![allow(
    clippy::too_many_arguments,
    clippy::manual_div_ceil,
    clippy::manual_rotate,
    clippy::manual_is_multiple_of
)]

use std::ops::Range;

use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, IntElement};
use burn_fusion::Fusion;
use cubecl::{calculate_cube_count_elemwise, prelude::*, server::Handle};

use crate::model::{transpose, MlpWeights};

use super::{
    betas, bias_corrections,
    method::{ma_push, muon_lr_ratio, Sgld, MUON_EPSILON, MUON_NS_COEFFICIENTS, MUON_NS_STEPS},
    noise::chain_key,
    unstack_adam, unstack_weights, Activation, EpochSums, Grokfast, Hyper, Loss, Method, Optimizer,
    OptimizerState, PassSums, Rows, StackSetup, StepBackend,
};

/// Stacks of at least this many members run the products in 4×4 tiles (measured on an H100:
/// 1.6x the throughput at K = 1024, but 1.7x the time of a step at K = 1, where one element per
/// thread keeps more of the device busy).
const TILED_FROM: usize = 64;
/// Threads per cube.
const CUBE_SIZE: u32 = 256;
/// Largest logits buffer, in floats (64 MiB): validation runs in chunks of rows that fit.
const LOGITS_BUDGET: usize = 1 << 24;

/// Columns of [`CubeStack::codes`] per member: activation (0 ReLU, 1 square), loss (0
/// cross-entropy, 1 StableMax, 2 MSE), optimiser (0 AdamW, 1 SGD, 2 Muon, 3 SGLD), Nesterov
/// (0, 1), filter (0 none, 1 EMA, 2 MA), the MA's window, the member's first block of filter
/// memory, ⊥Grad (0, 1), and SGLD's noise key (two words).
const CODES: usize = 10;
/// Columns of [`CubeStack::params`] per member: β₁, β₂, momentum, α, `1 − α`, λ, SGLD's nβ and
/// γ.
const PARAMS: usize = 8;
/// Columns of [`CubeStack::factors`] per member: lr, `1 − lr·wd`, ε, wd, Muon's step
/// `lr·√max(1, d_in/d_out)` of fc1 and of fc2, and SGLD's `−ε/2` and `√ε`.
const FACTORS: usize = 8;
/// Elements per partial sum of the per-matrix reductions (⊥Grad's dot products, Muon's norm):
/// each thread sums one chunk in order, then one thread per member sums the chunks in order.
const CHUNK: usize = 256;

/// `pre[k, i, j] = W1[k, a_i, j] + W1[k, p + b_i, j]` and `post = σ(pre)` (member `k`'s
/// activation: ReLU or `x²`) for rows `offset..offset + n` of every member's split.
#[cube(launch_unchecked)]
fn hidden_kernel(
    w1: &Array<f32>,
    ia: &Array<u32>,
    ib: &Array<u32>,
    pre: &mut Array<f32>,
    post: &mut Array<f32>,
    codes: &Array<u32>,
    k_count: usize,
    p: usize,
    h: usize,
    n_split: usize,
    offset: usize,
    n: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * n * h {
        terminate!();
    }
    let k = pos / (n * h);
    let i = (pos / h) % n;
    let j = pos % h;
    let row = k * n_split + offset + i;
    let base = k * 2 * p * h + j;
    let x = w1[base + usize::cast_from(ia[row]) * h] + w1[base + usize::cast_from(ib[row]) * h];
    let mut y = 0.0f32;
    if codes[k * CODES] == 1 {
        y = x * x;
    } else if x > 0.0 {
        y = x;
    }
    pre[pos] = x;
    post[pos] = y;
}

/// `out[k] = A[k] · B[k]` for every member `k`: `out [m, q]` row-major at `k·m·q`; element
/// `(x, l)` of `A` at `a_batch·k + x·a_rs + l·a_cs`, element `(l, y)` of `B` at
/// `b_batch·k + l·b_rs + y·b_cs` (so a transposed operand costs nothing). With `tiled`, each
/// thread computes a 4×4 tile (8 loads per 16 multiply-adds), otherwise one element (16 times
/// the threads, for stacks too small to fill the device). Every element sums over `l` in order
/// either way; with `masked`, `mask` (same layout as `out`) holds the activation's input and the
/// element becomes the gradient of the activation's input: zero where the mask is not positive
/// (ReLU), or times twice the mask (`x²`), by member `k`'s activation in `codes`.
#[cube(launch_unchecked)]
fn matmul_kernel(
    a: &Array<f32>,
    b: &Array<f32>,
    out: &mut Array<f32>,
    mask: &Array<f32>,
    codes: &Array<u32>,
    k_count: usize,
    m: usize,
    q: usize,
    r: usize,
    a_batch: usize,
    a_rs: usize,
    a_cs: usize,
    b_batch: usize,
    b_rs: usize,
    b_cs: usize,
    #[comptime] masked: bool,
    #[comptime] tiled: bool,
) {
    if !tiled {
        // One output element per thread: more threads, for small stacks.
        let pos = ABSOLUTE_POS;
        if pos >= k_count * m * q {
            terminate!();
        }
        let k = pos / (m * q);
        let x = (pos / q) % m;
        let y = pos % q;
        let xa = a_batch * k + x * a_rs;
        let yb = b_batch * k + y * b_cs;
        let mut acc = 0.0f32;
        for l in 0..r {
            acc += a[xa + l * a_cs] * b[yb + l * b_rs];
        }
        store(out, mask, codes, k, k * m * q, x, y, m, q, acc, masked);
        terminate!();
    }
    let tiles_q = (q + 3) / 4;
    let tiles = ((m + 3) / 4) * tiles_q;
    let pos = ABSOLUTE_POS;
    if pos >= k_count * tiles {
        terminate!();
    }
    let k = pos / tiles;
    let x0 = ((pos % tiles) / tiles_q) * 4;
    let y0 = (pos % tiles_q) * 4;
    // Rows and columns past the edge read the last one (in bounds) and are not stored.
    let xa0 = a_batch * k + clamp(x0, m) * a_rs;
    let xa1 = a_batch * k + clamp(x0 + 1, m) * a_rs;
    let xa2 = a_batch * k + clamp(x0 + 2, m) * a_rs;
    let xa3 = a_batch * k + clamp(x0 + 3, m) * a_rs;
    let yb0 = b_batch * k + clamp(y0, q) * b_cs;
    let yb1 = b_batch * k + clamp(y0 + 1, q) * b_cs;
    let yb2 = b_batch * k + clamp(y0 + 2, q) * b_cs;
    let yb3 = b_batch * k + clamp(y0 + 3, q) * b_cs;
    let mut c00 = 0.0f32;
    let mut c01 = 0.0f32;
    let mut c02 = 0.0f32;
    let mut c03 = 0.0f32;
    let mut c10 = 0.0f32;
    let mut c11 = 0.0f32;
    let mut c12 = 0.0f32;
    let mut c13 = 0.0f32;
    let mut c20 = 0.0f32;
    let mut c21 = 0.0f32;
    let mut c22 = 0.0f32;
    let mut c23 = 0.0f32;
    let mut c30 = 0.0f32;
    let mut c31 = 0.0f32;
    let mut c32 = 0.0f32;
    let mut c33 = 0.0f32;
    for l in 0..r {
        let a0 = a[xa0 + l * a_cs];
        let a1 = a[xa1 + l * a_cs];
        let a2 = a[xa2 + l * a_cs];
        let a3 = a[xa3 + l * a_cs];
        let b0 = b[yb0 + l * b_rs];
        let b1 = b[yb1 + l * b_rs];
        let b2 = b[yb2 + l * b_rs];
        let b3 = b[yb3 + l * b_rs];
        c00 += a0 * b0;
        c01 += a0 * b1;
        c02 += a0 * b2;
        c03 += a0 * b3;
        c10 += a1 * b0;
        c11 += a1 * b1;
        c12 += a1 * b2;
        c13 += a1 * b3;
        c20 += a2 * b0;
        c21 += a2 * b1;
        c22 += a2 * b2;
        c23 += a2 * b3;
        c30 += a3 * b0;
        c31 += a3 * b1;
        c32 += a3 * b2;
        c33 += a3 * b3;
    }
    let base = k * m * q;
    store(out, mask, codes, k, base, x0, y0, m, q, c00, masked);
    store(out, mask, codes, k, base, x0, y0 + 1, m, q, c01, masked);
    store(out, mask, codes, k, base, x0, y0 + 2, m, q, c02, masked);
    store(out, mask, codes, k, base, x0, y0 + 3, m, q, c03, masked);
    store(out, mask, codes, k, base, x0 + 1, y0, m, q, c10, masked);
    store(out, mask, codes, k, base, x0 + 1, y0 + 1, m, q, c11, masked);
    store(out, mask, codes, k, base, x0 + 1, y0 + 2, m, q, c12, masked);
    store(out, mask, codes, k, base, x0 + 1, y0 + 3, m, q, c13, masked);
    store(out, mask, codes, k, base, x0 + 2, y0, m, q, c20, masked);
    store(out, mask, codes, k, base, x0 + 2, y0 + 1, m, q, c21, masked);
    store(out, mask, codes, k, base, x0 + 2, y0 + 2, m, q, c22, masked);
    store(out, mask, codes, k, base, x0 + 2, y0 + 3, m, q, c23, masked);
    store(out, mask, codes, k, base, x0 + 3, y0, m, q, c30, masked);
    store(out, mask, codes, k, base, x0 + 3, y0 + 1, m, q, c31, masked);
    store(out, mask, codes, k, base, x0 + 3, y0 + 2, m, q, c32, masked);
    store(out, mask, codes, k, base, x0 + 3, y0 + 3, m, q, c33, masked);
}

/// The end of the chunk of [`CHUNK`] elements that starts at `begin`: `min(begin + CHUNK, len)`.
#[cube]
fn chunk_end(begin: usize, len: usize) -> usize {
    let mut end = begin + CHUNK;
    if end > len {
        end = len;
    }
    end
}

/// `min(x, len − 1)`.
#[cube]
fn clamp(x: usize, len: usize) -> usize {
    let mut y = x;
    if y >= len {
        y = len - 1;
    }
    y
}

/// Stores `value` at `(x, y)` of member `k`'s `[m, q]` block at `base`, if inside it; where
/// `masked`, as the gradient of the activation's input `mask[at]` (see [`matmul_kernel`]).
#[cube]
// `masked` is known when the kernel compiles: the outer `if` is resolved then, the inner one runs.
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
fn store(
    out: &mut Array<f32>,
    mask: &Array<f32>,
    codes: &Array<u32>,
    k: usize,
    base: usize,
    x: usize,
    y: usize,
    m: usize,
    q: usize,
    value: f32,
    #[comptime] masked: bool,
) {
    if x < m && y < q {
        let at = base + x * q + y;
        let mut v = value;
        if masked {
            let input = mask[at];
            if codes[k * CODES] == 1 {
                v *= 2.0 * input;
            } else if input <= 0.0 {
                v = 0.0;
            }
        }
        out[at] = v;
    }
}

/// Per row: member `k`'s loss (`codes`: softmax cross-entropy, StableMax cross-entropy or MSE
/// against the one-hot label), whether the first maximum is at the label, and whether the
/// softmax collapsed (`Σ exp(x − max) == 1`, whatever the loss); with `grad`, the logits are
/// replaced by the gradient of the batch-mean loss: `(softmax − onehot(y)) · scale`, StableMax's
/// `(1/S − [c = y]/s_y) · s'(x_c) · scale`, or MSE's `(x − onehot(y)) · mse_scale`.
///
/// StableMax is computed in `f32` (the host computes it in `f64`, as the authors do); its
/// label's `1/S − 1/s_y` is taken as `−(S − s_y) / (S·s_y)` with `S − s_y` summed over the
/// other classes, so it does not cancel when `s_y` is most of `S`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn loss_kernel(
    logits: &mut Array<f32>,
    iy: &Array<u32>,
    row_loss: &mut Array<f32>,
    row_right: &mut Array<f32>,
    row_collapsed: &mut Array<f32>,
    codes: &Array<u32>,
    k_count: usize,
    p: usize,
    n_split: usize,
    offset: usize,
    n: usize,
    scale: f32,
    mse_scale: f32,
    #[comptime] grad: bool,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * n {
        terminate!();
    }
    let k = pos / n;
    let i = pos % n;
    let y = usize::cast_from(iy[k * n_split + offset + i]);
    let loss = codes[k * CODES + 1];
    let base = pos * p;
    let mut best = 0usize;
    let mut max = logits[base];
    for c in 1..p {
        let v = logits[base + c];
        if v > max {
            best = c;
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for c in 0..p {
        sum += (logits[base + c] - max).exp();
    }
    let mut right = 0.0f32;
    if best == y {
        right = 1.0;
    }
    row_right[pos] = right;
    let mut collapsed = 0.0f32;
    if sum == 1.0 {
        collapsed = 1.0;
    }
    row_collapsed[pos] = collapsed;
    if loss == 0 {
        row_loss[pos] = sum.ln() - (logits[base + y] - max);
        if grad {
            let inv = scale / sum;
            for c in 0..p {
                logits[base + c] = (logits[base + c] - max).exp() * inv;
            }
            logits[base + y] -= scale;
        }
    } else if loss == 1 {
        // s(x) = x + 1 (x ≥ 0), 1 / (1 − x) (x < 0).
        let mut others = 0.0f32;
        let mut s_y = 0.0f32;
        for c in 0..p {
            let x = logits[base + c];
            let mut s = x + 1.0;
            if x < 0.0 {
                s = 1.0 / (1.0 - x);
            }
            if c == y {
                s_y = s;
            } else {
                others += s;
            }
        }
        let total = others + s_y;
        row_loss[pos] = total.ln() - s_y.ln();
        if grad {
            let by_total = scale / total;
            let by_label = -(others / (total * s_y)) * scale;
            for c in 0..p {
                let x = logits[base + c];
                let mut slope = 1.0f32;
                if x < 0.0 {
                    let d = 1.0 - x;
                    slope = 1.0 / (d * d);
                }
                let mut by = by_total;
                if c == y {
                    by = by_label;
                }
                logits[base + c] = by * slope;
            }
        }
    } else {
        let mut squares = 0.0f32;
        for c in 0..p {
            let mut d = logits[base + c];
            if c == y {
                d -= 1.0;
            }
            squares += d * d;
            if grad {
                logits[base + c] = mse_scale * d;
            }
        }
        row_loss[pos] = squares / f32::cast_from(p);
    }
}

/// Adds each member's `n` row losses, right predictions and collapsed rows, in row order, to its
/// sums at `slot` (0: training, 3: validation; [`SUMS`] per member).
#[cube(launch_unchecked)]
fn sums_kernel(
    row_loss: &Array<f32>,
    row_right: &Array<f32>,
    row_collapsed: &Array<f32>,
    sums: &mut Array<f32>,
    k_count: usize,
    n: usize,
    slot: usize,
) {
    let k = ABSOLUTE_POS;
    if k >= k_count {
        terminate!();
    }
    let mut loss = 0.0f32;
    let mut right = 0.0f32;
    let mut collapsed = 0.0f32;
    for i in 0..n {
        loss += row_loss[k * n + i];
        right += row_right[k * n + i];
        collapsed += row_collapsed[k * n + i];
    }
    sums[k * SUMS + slot] += loss;
    sums[k * SUMS + slot + 1] += right;
    sums[k * SUMS + slot + 2] += collapsed;
}

/// Each member's `Σ w²` of one stacked weight of `per_member` values, in element order, into
/// `out[2k + slot]`.
#[cube(launch_unchecked)]
fn square_sum_kernel(
    w: &Array<f32>,
    out: &mut Array<f32>,
    k_count: usize,
    per_member: usize,
    slot: usize,
) {
    let k = ABSOLUTE_POS;
    if k >= k_count {
        terminate!();
    }
    let mut sum = 0.0f32;
    for i in 0..per_member {
        let v = w[k * per_member + i];
        sum += v * v;
    }
    out[k * 2 + slot] = sum;
}

/// Epoch sums per member: training loss, right, collapsed, then the same of validation.
const SUMS: usize = 6;

/// fc1's gradient, column `j` of member `k` per thread: zeroed, then `dpre[k, i, j]` added into
/// rows `a_i` and `p + b_i` for the batch rows in order (the host's scatter-add; one thread
/// owns every element it writes, so there are no atomics).
#[cube(launch_unchecked)]
fn fc1_grad_kernel(
    ia: &Array<u32>,
    ib: &Array<u32>,
    dpre: &Array<f32>,
    g1: &mut Array<f32>,
    k_count: usize,
    p: usize,
    h: usize,
    n_split: usize,
    offset: usize,
    n: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * h {
        terminate!();
    }
    let k = pos / h;
    let j = pos % h;
    let base = k * 2 * p * h + j;
    for r in 0..2 * p {
        g1[base + r * h] = 0.0;
    }
    for i in 0..n {
        let row = k * n_split + offset + i;
        let d = dpre[(k * n + i) * h + j];
        let ra = base + usize::cast_from(ia[row]) * h;
        let rb = base + usize::cast_from(ib[row]) * h;
        g1[ra] += d;
        g1[rb] += d;
    }
}

/// Member `k`'s optimiser on every element of a stacked weight (`per_member` elements a member)
/// with its final gradients `g`: AdamW, `w ← w·(1 − lr·wd) − lr · (m / (1 − β₁ᵗ)) / (√(v /
/// (1 − β₂ᵗ)) + ε)` with the bias corrections `bias[2k..2k + 2]` of this step; SGD as
/// `torch.optim.SGD` (`g ← g + wd·w`, `b ← μ·b + g`, `g ← g + μ·b` with Nesterov or `b`,
/// `w ← w − lr·g`, the buffer in `m1`); or SGLD (`d = g·nβ + (w·λ + (w − w*)·γ)`, `w ← w +
/// (−ε/2)·d`, `w ← w + √ε·ξ`, the centre `w*` in `m1`, the noise of weight `first + e` for a
/// member's element `e`, at noise step `noise_step`). Muon's members are left to
/// [`muon_apply_kernel`].
#[cube(launch_unchecked)]
fn update_kernel(
    g: &Array<f32>,
    w: &mut Array<f32>,
    m1: &mut Array<f32>,
    m2: &mut Array<f32>,
    factors: &Array<f32>,
    params: &Array<f32>,
    codes: &Array<u32>,
    bias: &Array<f32>,
    k_count: usize,
    per_member: usize,
    first: usize,
    noise_step: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * per_member {
        terminate!();
    }
    let k = pos / per_member;
    let optimizer = codes[k * CODES + 2];
    let grad = g[pos];
    if optimizer == 0 {
        let beta_1 = params[k * PARAMS];
        let beta_2 = params[k * PARAMS + 1];
        let first = m1[pos] * beta_1 + grad * (1.0f32 - beta_1);
        let second = m2[pos] * beta_2 + grad * grad * (1.0f32 - beta_2);
        m1[pos] = first;
        m2[pos] = second;
        let delta =
            (first / bias[k * 2]) / ((second / bias[k * 2 + 1]).sqrt() + factors[k * FACTORS + 2]);
        w[pos] = w[pos] * factors[k * FACTORS + 1] - delta * factors[k * FACTORS];
    } else if optimizer == 1 {
        let mu = params[k * PARAMS + 2];
        let decayed = grad + factors[k * FACTORS + 3] * w[pos];
        let buffer = mu * m1[pos] + decayed;
        m1[pos] = buffer;
        let mut step = buffer;
        if codes[k * CODES + 3] == 1 {
            step = decayed + mu * buffer;
        }
        w[pos] -= factors[k * FACTORS] * step;
    } else if optimizer == 3 {
        let weight = w[pos];
        let prior = weight * factors[k * FACTORS + 3] + (weight - m1[pos]) * params[k * PARAMS + 7];
        let d = grad * params[k * PARAMS + 6] + prior;
        let drifted = weight + factors[k * FACTORS + 6] * d;
        let index = u32::cast_from(first + pos % per_member);
        let xi = sgld_noise(
            codes[k * CODES + 8],
            codes[k * CODES + 9],
            noise_step,
            index,
        );
        w[pos] = drifted + factors[k * FACTORS + 7] * xi;
    }
}

/// `x` rotated left by `r` bits, `0 < r < 32`.
#[cube]
fn rotl(x: u32, r: u32) -> u32 {
    (x << r) | (x >> (32 - r))
}

/// [`noise::normal`](super::noise::normal) of weight `index` at step `step` under the key `(k0,
/// k1)`: the same Threefry-2x32-20 block and the same Box–Muller arithmetic (Cephes' `logf`,
/// `sinf` and `cosf` polynomials, the same constants), written out for the device.
#[cube]
fn sgld_noise(k0: u32, k1: u32, step: u32, index: u32) -> f32 {
    let k2 = k0 ^ k1 ^ 0x1BD1_1BDAu32;
    let mut a = index / 2 + k0;
    let mut b = step + k1;
    // Rounds r = 0..20 rotate by 13, 15, 26, 6, 17, 29, 16, 24, ... (five bits each, four to a
    // word); after every fourth, key injection n: ks[n % 3], ks[(n + 1) % 3] + n.
    for r in 0..20u32 {
        let mut table = 0x3_69EDu32;
        if (r / 4) % 2 == 1 {
            table = 0xC_43B1u32;
        }
        a += b;
        b = rotl(b, (table >> (5 * (r % 4))) & 31) ^ a;
        if r % 4 == 3 {
            let n = r / 4 + 1;
            if n % 3 == 0 {
                a += k0;
                b += k1 + n;
            } else if n % 3 == 1 {
                a += k1;
                b += k2 + n;
            } else {
                a += k2;
                b += k0 + n;
            }
        }
    }
    // u₁ ∈ (0, 1] and its logarithm (Cephes' logf).
    let u1 = f32::cast_from((a >> 8) + 1) * (1.0f32 / 16_777_216.0f32);
    let bits = u32::reinterpret(u1);
    let mut e = i32::cast_from((bits >> 23) & 0xff) - 126;
    let m = f32::reinterpret((bits & 0x807f_ffffu32) | 0x3f00_0000u32);
    let mut x = m - 1.0;
    if m < 0.707_106_77f32 {
        e -= 1;
        x = m + m - 1.0;
    }
    let ef = f32::cast_from(e);
    let z = x * x;
    let mut y = ((((((((7.037_683_6e-2f32 * x - 1.151_461e-1f32) * x + 1.167_699_9e-1f32) * x
        - 1.242_014_1e-1f32)
        * x
        + 1.424_932_3e-1f32)
        * x
        - 1.666_805_8e-1f32)
        * x
        + 2.000_071_5e-1f32)
        * x
        - 2.499_999_4e-1f32)
        * x
        + 3.333_333e-1f32)
        * x
        * z;
    y += -2.121_944_4e-4f32 * ef;
    y += -0.5f32 * z;
    let ln = x + y + 0.693_359_4f32 * ef;
    let radius = (-2.0f32 * ln).sqrt();
    // cos 2πu₂ or sin 2πu₂ by quarter turns (Cephes' sinf and cosf).
    let turns = b >> 8;
    let n = (turns + 2_097_152u32) >> 22;
    let rest =
        f32::cast_from(i32::cast_from(turns) - i32::cast_from(n << 22)) * (1.0f32 / 4_194_304.0f32);
    let t = rest * 1.570_796_4f32;
    let tt = t * t;
    let sin = ((-1.951_529_6e-4f32 * tt + 8.332_161e-3f32) * tt - 1.666_665_5e-1f32) * tt * t + t;
    let cos = ((2.443_315_7e-5f32 * tt - 1.388_731_6e-3f32) * tt + 4.166_664_6e-2f32) * tt * tt
        - 0.5f32 * tt
        + 1.0f32;
    // Quarter turn q: (cos, sin) of the angle is (c, s), (−s, c), (−c, −s), (s, −c).
    let q = n & 3;
    let mut value = cos;
    if index % 2 == 0 {
        if q == 1 {
            value = -sin;
        } else if q == 2 {
            value = -cos;
        } else if q == 3 {
            value = sin;
        }
    } else {
        value = sin;
        if q == 1 {
            value = cos;
        } else if q == 2 {
            value = -sin;
        } else if q == 3 {
            value = -cos;
        }
    }
    radius * value
}

/// Member `k`'s Grokfast filter on its gradients `g` of one weight (`per_member` elements a
/// member), with its memory at block `codes[k, 6]` of `memory` (blocks of `per_member` values)
/// and this step's `ring[3k..3k + 3]`: the EMA (`e ← g` when the flag says it is the first, else
/// `e ← e·α + g·(1 − α)`; `g ← g + e·λ`), or the MA (the gradient stored in block `slot`; once
/// the flag says the window is full, `g ← g + (Σ of the blocks from `oldest` on) / window · λ`).
#[cube(launch_unchecked)]
fn filter_kernel(
    g: &mut Array<f32>,
    memory: &mut Array<f32>,
    codes: &Array<u32>,
    params: &Array<f32>,
    ring: &Array<u32>,
    k_count: usize,
    per_member: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * per_member {
        terminate!();
    }
    let k = pos / per_member;
    let e = pos % per_member;
    let filter = codes[k * CODES + 4];
    let base = usize::cast_from(codes[k * CODES + 6]) * per_member + e;
    let lambda = params[k * PARAMS + 5];
    let flag = ring[k * 3 + 2];
    if filter == 1 {
        let mut ema = g[pos];
        if flag == 0 {
            ema = memory[base] * params[k * PARAMS + 3] + g[pos] * params[k * PARAMS + 4];
        }
        memory[base] = ema;
        g[pos] += ema * lambda;
    } else if filter == 2 {
        let window = usize::cast_from(codes[k * CODES + 5]);
        let slot = usize::cast_from(ring[k * 3]);
        let oldest = usize::cast_from(ring[k * 3 + 1]);
        memory[base + slot * per_member] = g[pos];
        if flag == 1 {
            let mut acc = memory[base + oldest * per_member];
            for j in 1..window {
                acc += memory[base + ((oldest + j) % window) * per_member];
            }
            g[pos] += acc / f32::cast_from(window) * lambda;
        }
    }
}

/// Partial sums for ⊥Grad, one thread per chunk of [`CHUNK`] elements of a ⊥Grad member's
/// weight: `w·w`, `w·g`, `g·g` of the chunk, in order, into `partial[3(k·chunks + c)..]`.
#[cube(launch_unchecked)]
fn dots_kernel(
    w: &Array<f32>,
    g: &Array<f32>,
    partial: &mut Array<f32>,
    codes: &Array<u32>,
    k_count: usize,
    per_member: usize,
    chunks: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * chunks {
        terminate!();
    }
    let k = pos / chunks;
    if codes[k * CODES + 7] == 0 {
        terminate!();
    }
    let begin = (pos % chunks) * CHUNK;
    let end = chunk_end(begin, per_member);
    let mut ww = 0.0f32;
    let mut wg = 0.0f32;
    let mut gg = 0.0f32;
    for e in begin..end {
        let a = w[k * per_member + e];
        let b = g[k * per_member + e];
        ww += a * a;
        wg += a * b;
        gg += b * b;
    }
    partial[pos * 3] = ww;
    partial[pos * 3 + 1] = wg;
    partial[pos * 3 + 2] = gg;
}

/// Each member's totals of `width` partial sums per chunk, over its chunks in order:
/// `totals[width·k + j] = Σ_c partial[width·(k·chunks + c) + j]`.
#[cube(launch_unchecked)]
fn totals_kernel(
    partial: &Array<f32>,
    totals: &mut Array<f32>,
    k_count: usize,
    chunks: usize,
    width: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * width {
        terminate!();
    }
    let k = pos / width;
    let j = pos % width;
    let mut sum = 0.0f32;
    for c in 0..chunks {
        sum += partial[(k * chunks + c) * width + j];
    }
    totals[pos] = sum;
}

/// ⊥Grad's projection, one thread per chunk of a ⊥Grad member's weight: `g ← g − proj·w` with
/// `proj = w·g / (w·w + 1e-30)` from `dots[3k..]`, and the chunk's `‖g_⊥‖²` into `partial`.
#[cube(launch_unchecked)]
fn project_kernel(
    w: &Array<f32>,
    g: &mut Array<f32>,
    dots: &Array<f32>,
    partial: &mut Array<f32>,
    codes: &Array<u32>,
    k_count: usize,
    per_member: usize,
    chunks: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * chunks {
        terminate!();
    }
    let k = pos / chunks;
    if codes[k * CODES + 7] == 0 {
        terminate!();
    }
    let proj = dots[k * 3 + 1] / (dots[k * 3] + 1e-30f32);
    let begin = (pos % chunks) * CHUNK;
    let end = chunk_end(begin, per_member);
    let mut sum = 0.0f32;
    for e in begin..end {
        let at = k * per_member + e;
        let v = g[at] - proj * w[at];
        g[at] = v;
        sum += v * v;
    }
    partial[pos] = sum;
}

/// ⊥Grad's rescaling of a ⊥Grad member's projected gradient: `g ← g · (‖g‖ / (‖g_⊥‖ + 1e-30))`
/// with `‖g‖² = dots[3k + 2]` and `‖g_⊥‖² = orth[k]`.
#[cube(launch_unchecked)]
fn rescale_kernel(
    g: &mut Array<f32>,
    dots: &Array<f32>,
    orth: &Array<f32>,
    codes: &Array<u32>,
    k_count: usize,
    per_member: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * per_member {
        terminate!();
    }
    let k = pos / per_member;
    if codes[k * CODES + 7] == 1 {
        g[pos] *= dots[k * 3 + 2].sqrt() / (orth[k].sqrt() + 1e-30f32);
    }
}

/// Muon's Nesterov momentum for the `m`-th Muon member `k = index[m]` on one weight of Burn's
/// shape `[rows, cols]`: `b ← b·μ + g` (the buffer in `m1`), `u = b·μ + g`, written into `x` as
/// `[rows, cols]` or, when `rows > cols`, transposed, so each member's `X` is `[min, max]`.
#[cube(launch_unchecked)]
fn muon_momentum_kernel(
    g: &Array<f32>,
    m1: &mut Array<f32>,
    x: &mut Array<f32>,
    index: &Array<u32>,
    params: &Array<f32>,
    muons: usize,
    rows: usize,
    cols: usize,
) {
    let pos = ABSOLUTE_POS;
    let per_member = rows * cols;
    if pos >= muons * per_member {
        terminate!();
    }
    let m = pos / per_member;
    let e = pos % per_member;
    let k = usize::cast_from(index[m]);
    let mu = params[k * PARAMS + 2];
    let at = k * per_member + e;
    let buffer = m1[at] * mu + g[at];
    m1[at] = buffer;
    let mut to = pos;
    if rows > cols {
        to = m * per_member + (e % cols) * rows + e / cols;
    }
    x[to] = buffer * mu + g[at];
}

/// Each member's `Σ x²` of one chunk of [`CHUNK`] values, in order, into `partial[k·chunks + c]`.
#[cube(launch_unchecked)]
fn square_partial_kernel(
    x: &Array<f32>,
    partial: &mut Array<f32>,
    k_count: usize,
    per_member: usize,
    chunks: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * chunks {
        terminate!();
    }
    let k = pos / chunks;
    let begin = (pos % chunks) * CHUNK;
    let end = chunk_end(begin, per_member);
    let mut sum = 0.0f32;
    for e in begin..end {
        let v = x[k * per_member + e];
        sum += v * v;
    }
    partial[pos] = sum;
}

/// `x ← x / max(√(Σ x²), ε)` per member, with `Σ x²` in `squares[k]` (Muon's normalisation).
#[cube(launch_unchecked)]
fn normalise_kernel(
    x: &mut Array<f32>,
    squares: &Array<f32>,
    k_count: usize,
    per_member: usize,
    epsilon: f32,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * per_member {
        terminate!();
    }
    let mut norm = squares[pos / per_member].sqrt();
    if norm < epsilon {
        norm = epsilon;
    }
    x[pos] /= norm;
}

/// `x ← x·alpha + y·beta`, element by element.
#[cube(launch_unchecked)]
fn combine_kernel(x: &mut Array<f32>, y: &Array<f32>, len: usize, alpha: f32, beta: f32) {
    let pos = ABSOLUTE_POS;
    if pos >= len {
        terminate!();
    }
    x[pos] = x[pos] * alpha + y[pos] * beta;
}

/// Muon's update of the `m`-th Muon member `k = index[m]` on one weight of Burn's shape
/// `[rows, cols]` from its orthogonalised `X` (laid out as [`muon_momentum_kernel`] wrote it):
/// `w ← w·(1 − lr·wd) − X·step` with the member's step `factors[k, 4 + slot]`.
#[cube(launch_unchecked)]
fn muon_apply_kernel(
    x: &Array<f32>,
    w: &mut Array<f32>,
    index: &Array<u32>,
    factors: &Array<f32>,
    muons: usize,
    rows: usize,
    cols: usize,
    slot: usize,
) {
    let pos = ABSOLUTE_POS;
    let per_member = rows * cols;
    if pos >= muons * per_member {
        terminate!();
    }
    let m = pos / per_member;
    let e = pos % per_member;
    let k = usize::cast_from(index[m]);
    let mut from = pos;
    if rows > cols {
        from = m * per_member + (e % cols) * rows + e / cols;
    }
    let at = k * per_member + e;
    w[at] = w[at] * factors[k * FACTORS + 1] - x[from] * factors[k * FACTORS + 4 + slot];
}

/// Index rows of one split, `[K, n]` each.
struct RowBuffers {
    a: Handle,
    b: Handle,
    y: Handle,
    n: usize,
}

/// Muon's buffers for one weight of Burn's shape `[rows, cols]`, for the stack's `M` Muon
/// members: `X` `[M, r, c]` with `r = min(rows, cols)`, `c = max(rows, cols)`, `X·Xᵀ` and its
/// square `[M, r, r]`, `(b·A + c·A²)·X` `[M, r, c]`.
struct MuonMatrix {
    rows: usize,
    cols: usize,
    x: Handle,
    gram: Handle,
    square: Handle,
    bx: Handle,
}

/// The Muon members of a stack and their buffers.
struct MuonBuffers {
    /// `[M]`: the members, in order.
    index: Handle,
    count: usize,
    /// fc1's and fc2's.
    matrices: [MuonMatrix; 2],
}

/// The Grokfast filters' memory of a stack: each member's blocks of its weights' shapes (its
/// EMA, or its MA window as a ring), member after member ([`CODES`]' first block).
struct FilterMemory {
    /// fc1's blocks, then fc2's.
    blocks: [Handle; 2],
    /// Blocks of all members.
    count: usize,
    /// Each member's ring: the gradients held and the block of the oldest.
    rings: Vec<(usize, usize)>,
}

/// A stack in buffers of a CubeCL compute client.
pub struct CubeStack<R: CubeRuntime> {
    client: ComputeClient<R>,
    k: usize,
    p: usize,
    h: usize,
    step: u64,
    /// `[K, 2p, h]` (Burn's layout per member): weights, first and second moments.
    w1: [Handle; 3],
    /// `[K, h, p]`: weights, first and second moments.
    w2: [Handle; 3],
    /// `[K, FACTORS]`: the hyperparameters' factors ([`FACTORS`]).
    factors: Handle,
    /// `[K, CODES]`: the members' choices ([`CODES`]).
    codes: Handle,
    /// `[K, PARAMS]`: the members' methods' constants ([`PARAMS`]).
    params: Handle,
    methods: Vec<Method>,
    /// `None` if no member has a filter.
    filter: Option<FilterMemory>,
    /// `None` if no member uses Muon.
    muon: Option<MuonBuffers>,
    /// Whether some member uses ⊥Grad.
    orthograd: bool,
    train: RowBuffers,
    val: RowBuffers,
    /// `[K, SUMS]`: train loss, right, collapsed, then the same of validation.
    sums: Handle,
    /// fc1's gradients `[K, 2p, h]`.
    g1: Handle,
    /// fc2's gradients `[K, h, p]`.
    g2: Handle,
    /// Scratch for `rows` rows per member.
    scratch: Option<(usize, Scratch)>,
}

/// Per-row buffers of a pass.
#[derive(Clone)]
struct Scratch {
    /// `[K, rows, h]`: the activation's input and output.
    pre: Handle,
    post: Handle,
    /// `[K, rows, p]`; the gradient in place after a training pass.
    logits: Handle,
    /// `[K, rows]` each.
    row_loss: Handle,
    row_right: Handle,
    row_collapsed: Handle,
    /// `[K, rows, h]`.
    dpre: Handle,
}

fn upload_f32<R: CubeRuntime>(client: &ComputeClient<R>, values: &[f32]) -> Handle {
    client.create_from_slice(f32::as_bytes(values))
}

fn upload_u32<R: CubeRuntime>(client: &ComputeClient<R>, values: &[u32]) -> Handle {
    client.create_from_slice(u32::as_bytes(values))
}

/// A kernel argument: `len` values of `handle`.
///
/// # Safety
/// `handle` must hold at least `len` values of the kernel parameter's type.
unsafe fn arr<R: CubeRuntime>(handle: &Handle, len: usize) -> ArrayArg<R> {
    unsafe { ArrayArg::from_raw_parts(handle.clone(), len) }
}

/// [`FACTORS`] of each member.
fn factors_of(hyper: &[Hyper], (p, h): (usize, usize)) -> Vec<f32> {
    hyper
        .iter()
        .flat_map(|hyper| {
            let (lr, decay, eps) = hyper.factors();
            let muon = |rows, cols| (hyper.lr * muon_lr_ratio(rows, cols)) as f32;
            let (drift, diffusion) = Sgld::langevin(hyper);
            [
                lr,
                decay,
                eps,
                hyper.weight_decay as f32,
                muon(2 * p, h),
                muon(h, p),
                drift,
                diffusion,
            ]
        })
        .collect()
}

/// [`CODES`] of each member.
fn codes_of(methods: &[Method]) -> Vec<u32> {
    let mut first_block = 0;
    methods
        .iter()
        .flat_map(|m| {
            let (filter, window) = match m.grokfast {
                None => (0, 0),
                Some(Grokfast::Ema { .. }) => (1, 1),
                Some(Grokfast::Ma { window, .. }) => (2, window),
            };
            let (optimizer, nesterov) = match m.optimizer {
                Optimizer::AdamW { .. } => (0, false),
                Optimizer::Sgd { nesterov, .. } => (1, nesterov),
                Optimizer::Muon { .. } => (2, false),
                Optimizer::Sgld { .. } => (3, false),
            };
            let key = match m.optimizer {
                Optimizer::Sgld { seed, chain, .. } => chain_key(seed, chain),
                _ => [0, 0],
            };
            let block = first_block;
            first_block += m.filter_capacity();
            let index = |v: usize| u32::try_from(v).expect("a filter memory a GPU can hold");
            [
                (m.activation == Activation::Square) as u32,
                Loss::ALL.iter().position(|&l| l == m.loss).unwrap_or(0) as u32,
                optimizer,
                nesterov as u32,
                filter,
                index(window),
                index(block),
                m.orthograd as u32,
                key[0],
                key[1],
            ]
        })
        .collect()
}

/// [`PARAMS`] of each member, rounded to `f32` as the host rounds them.
fn params_of(methods: &[Method]) -> Vec<f32> {
    methods
        .iter()
        .flat_map(|m| {
            let (beta_1, beta_2) = betas(m);
            let momentum = match m.optimizer {
                Optimizer::Sgd { momentum, .. } | Optimizer::Muon { momentum } => momentum as f32,
                Optimizer::AdamW { .. } | Optimizer::Sgld { .. } => 0.0,
            };
            let (nbeta, localization) = match m.optimizer {
                Optimizer::Sgld {
                    nbeta,
                    localization,
                    ..
                } => (nbeta as f32, localization as f32),
                _ => (0.0, 0.0),
            };
            let (alpha, one_minus_alpha, lambda) = match m.grokfast {
                Some(Grokfast::Ema { alpha, lambda }) => {
                    (alpha as f32, (1.0 - alpha) as f32, lambda as f32)
                }
                Some(Grokfast::Ma { lambda, .. }) => (0.0, 0.0, lambda as f32),
                None => (0.0, 0.0, 0.0),
            };
            [
                beta_1,
                beta_2,
                momentum,
                alpha,
                one_minus_alpha,
                lambda,
                nbeta,
                localization,
            ]
        })
        .collect()
}

impl FilterMemory {
    /// The filters' memory of `setup`'s members, each checkpointed gradient (oldest first) in
    /// blocks `0..held` of its ring; `None` if no member has a filter.
    fn new<R: CubeRuntime>(client: &ComputeClient<R>, setup: &StackSetup) -> Option<Self> {
        let (p, h) = (setup.p, setup.d_hidden);
        let count: usize = setup
            .members
            .iter()
            .map(|m| m.method.filter_capacity())
            .sum();
        if count == 0 {
            return None;
        }
        let (mut fc1, mut fc2) = (Vec::new(), Vec::new());
        let mut rings = Vec::new();
        for m in &setup.members {
            let capacity = m.method.filter_capacity();
            let empty = super::FilterState::default();
            let state = m.optimizer.as_ref().map_or(&empty, |o| &o.filter);
            // PyTorch's [h, 2p] and [p, h] blocks into Burn's [2p, h] and [h, p].
            for (values, held, (rows, cols)) in [
                (&mut fc1, &state.fc1, (h, 2 * p)),
                (&mut fc2, &state.fc2, (p, h)),
            ] {
                let n = rows * cols;
                for block in held.chunks_exact(n) {
                    values.extend(transpose(block, rows, cols));
                }
                values.resize(values.len() + (capacity - state.gradients) * n, 0.0);
            }
            rings.push((state.gradients, 0));
        }
        Some(Self {
            blocks: [upload_f32(client, &fc1), upload_f32(client, &fc2)],
            count,
            rings,
        })
    }

    /// Moves every member's ring on by one gradient: this step's `[block, oldest, flag]` per
    /// member ([`filter_kernel`]'s `ring`).
    fn advance(&mut self, methods: &[Method]) -> Vec<u32> {
        methods
            .iter()
            .zip(&mut self.rings)
            .flat_map(|(m, (held, oldest))| match m.grokfast {
                None => [0, 0, 0],
                Some(Grokfast::Ema { .. }) => {
                    let first = *held == 0;
                    *held = 1;
                    [0, 0, first as u32]
                }
                Some(Grokfast::Ma { window, .. }) => {
                    let slot;
                    (slot, *oldest, *held) = ma_push(window, *held, *oldest);
                    [slot as u32, *oldest as u32, (*held == window) as u32]
                }
            })
            .collect()
    }
}

impl MuonBuffers {
    /// Buffers for the Muon members among `methods`; `None` if there are none.
    fn new<R: CubeRuntime>(
        client: &ComputeClient<R>,
        methods: &[Method],
        (p, h): (usize, usize),
    ) -> Option<Self> {
        let index: Vec<u32> = (0..methods.len() as u32)
            .filter(|&k| matches!(methods[k as usize].optimizer, Optimizer::Muon { .. }))
            .collect();
        if index.is_empty() {
            return None;
        }
        let count = index.len();
        let floats = |n: usize| client.empty(count * n * size_of::<f32>());
        let matrix = |rows: usize, cols: usize| {
            let r = rows.min(cols);
            MuonMatrix {
                rows,
                cols,
                x: floats(rows * cols),
                gram: floats(r * r),
                square: floats(r * r),
                bx: floats(rows * cols),
            }
        };
        Some(Self {
            index: upload_u32(client, &index),
            count,
            matrices: [matrix(2 * p, h), matrix(h, p)],
        })
    }
}

impl<R: CubeRuntime> CubeStack<R> {
    fn new(setup: StackSetup, device: &R::Device) -> Self {
        let step = setup.check();
        let client = R::client(device);
        let (p, h, k) = (setup.p, setup.d_hidden, setup.k());
        let (fc1, fc2) = setup.stacked();
        let w1 = fc1.map(|values| upload_f32(&client, &values));
        let w2 = fc2.map(|values| upload_f32(&client, &values));
        let m = &setup.members;
        let rows = |split: &dyn Fn(&super::MemberSetup) -> &Rows| {
            let concat = |f: &dyn Fn(&Rows) -> &[u32]| -> Vec<u32> {
                m.iter()
                    .flat_map(|member| f(split(member)).to_vec())
                    .collect()
            };
            RowBuffers {
                a: upload_u32(&client, &concat(&|r| &r.a)),
                b: upload_u32(&client, &concat(&|r| &r.b)),
                y: upload_u32(&client, &concat(&|r| &r.y)),
                n: split(&m[0]).len(),
            }
        };
        let hyper: Vec<Hyper> = m.iter().map(|member| member.hyper).collect();
        let methods: Vec<Method> = m.iter().map(|member| member.method).collect();
        Self {
            train: rows(&|member| &member.train),
            val: rows(&|member| &member.val),
            factors: upload_f32(&client, &factors_of(&hyper, (p, h))),
            codes: upload_u32(&client, &codes_of(&methods)),
            params: upload_f32(&client, &params_of(&methods)),
            filter: FilterMemory::new(&client, &setup),
            muon: MuonBuffers::new(&client, &methods, (p, h)),
            orthograd: methods.iter().any(|m| m.orthograd),
            methods,
            sums: upload_f32(&client, &vec![0.0; k * SUMS]),
            w1,
            w2,
            k,
            p,
            h,
            step,
            g1: client.empty(k * 2 * p * h * size_of::<f32>()),
            g2: client.empty(k * h * p * size_of::<f32>()),
            scratch: None,
            client,
        }
    }

    /// Scratch buffers for at least `rows` rows per member.
    fn scratch(&mut self, rows: usize) -> Scratch {
        let (k, p, h) = (self.k, self.p, self.h);
        if let Some((have, buffers)) = &self.scratch {
            if *have >= rows {
                return buffers.clone();
            }
        }
        let floats = |n: usize| self.client.empty((n * size_of::<f32>()).max(4));
        let buffers = Scratch {
            pre: floats(k * rows * h),
            post: floats(k * rows * h),
            logits: floats(k * rows * p),
            row_loss: floats(k * rows),
            row_right: floats(k * rows),
            row_collapsed: floats(k * rows),
            dpre: floats(k * rows * h),
        };
        self.scratch = Some((rows, buffers.clone()));
        buffers
    }

    /// Launch geometry for `threads` threads.
    fn grid(&self, threads: usize) -> (CubeCount, CubeDim) {
        let dim = CubeDim::new_1d(CUBE_SIZE);
        (
            calculate_cube_count_elemwise(&self.client, threads, dim),
            dim,
        )
    }

    /// `n` floats of scratch on the device.
    fn floats(&self, n: usize) -> Handle {
        self.client.empty(n.max(1) * size_of::<f32>())
    }

    /// Launches [`matmul_kernel`] for `k` members: `out [m, q] = A · B` for each, each operand
    /// given as `(buffer, member stride, row stride, column stride)` and `out` as
    /// `(buffer, m, q, r)`; with a mask, the activation's gradient (ReLU's or `x²`'s).
    ///
    /// # Safety
    /// The buffers must hold `k` members of the sizes the strides and `m`, `q`, `r` describe,
    /// and with a mask `k` must be the stack's K.
    unsafe fn matmul(
        &self,
        k: usize,
        (a, a_batch, a_rs, a_cs): (&Handle, usize, usize, usize),
        (b, b_batch, b_rs, b_cs): (&Handle, usize, usize, usize),
        (out, m, q, r): (&Handle, usize, usize, usize),
        mask: Option<&Handle>,
    ) {
        let tiled = k >= TILED_FROM;
        let threads = if tiled {
            k * m.div_ceil(4) * q.div_ceil(4)
        } else {
            k * m * q
        };
        let (count, dim) = self.grid(threads);
        unsafe {
            matmul_kernel::launch_unchecked::<R>(
                &self.client,
                count,
                dim,
                arr(a, k * a_batch),
                arr(b, k * b_batch),
                arr(out, k * m * q),
                arr(
                    mask.unwrap_or(a),
                    if mask.is_some() {
                        k * m * q
                    } else {
                        k * a_batch
                    },
                ),
                arr(&self.codes, self.k * CODES),
                k,
                m,
                q,
                r,
                a_batch,
                a_rs,
                a_cs,
                b_batch,
                b_rs,
                b_cs,
                mask.is_some(),
                tiled,
            );
        }
    }

    /// Launches [`totals_kernel`]: `k` members' totals of `width` sums over `chunks` chunks.
    ///
    /// # Safety
    /// `partial` must hold `k·chunks·width` values and `totals` `k·width`.
    unsafe fn totals(
        &self,
        partial: &Handle,
        totals: &Handle,
        k: usize,
        chunks: usize,
        width: usize,
    ) {
        let (count, dim) = self.grid(k * width);
        unsafe {
            totals_kernel::launch_unchecked::<R>(
                &self.client,
                count,
                dim,
                arr(partial, k * chunks * width),
                arr(totals, k * width),
                k,
                chunks,
                width,
            );
        }
    }

    /// The forward pass (hidden, logits, loss, sums) on rows `offset..offset + n` of `split`;
    /// with `grad`, leaves dlogits in the logits buffer.
    fn forward(&mut self, split: Split, offset: usize, n: usize, grad: bool) -> Scratch {
        let s = self.scratch(n);
        let (k, p, h) = (self.k, self.p, self.h);
        let rows = match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        };
        let n_rows = k * rows.n;
        let c = &self.client;
        // SAFETY (every launch of this module): each buffer is passed with its true length, and
        // each kernel indexes only inside the sizes that `k`, `p`, `h`, the split's rows,
        // `offset` and `n` describe; `step` and `validate` keep `offset + n` inside the split
        // and `n` inside the scratch buffers.
        unsafe {
            let (count, dim) = self.grid(k * n * h);
            hidden_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&self.w1[0], k * 2 * p * h),
                arr(&rows.a, n_rows),
                arr(&rows.b, n_rows),
                arr(&s.pre, k * n * h),
                arr(&s.post, k * n * h),
                arr(&self.codes, k * CODES),
                k,
                p,
                h,
                rows.n,
                offset,
                n,
            );
            // logits [n, p] = post [n, h] · W2 [h, p]
            self.matmul(
                k,
                (&s.post, n * h, h, 1),
                (&self.w2[0], h * p, p, 1),
                (&s.logits, n, p, h),
                None,
            );
            let (count, dim) = self.grid(k * n);
            loss_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&s.logits, k * n * p),
                arr(&rows.y, n_rows),
                arr(&s.row_loss, k * n),
                arr(&s.row_right, k * n),
                arr(&s.row_collapsed, k * n),
                arr(&self.codes, k * CODES),
                k,
                p,
                rows.n,
                offset,
                n,
                1.0 / n as f32,
                (2.0 / (n * p) as f64) as f32,
                grad,
            );
            let (count, dim) = self.grid(k);
            sums_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&s.row_loss, k * n),
                arr(&s.row_right, k * n),
                arr(&s.row_collapsed, k * n),
                arr(&self.sums, k * SUMS),
                k,
                n,
                match split {
                    Split::Train => 0,
                    Split::Val => 3,
                },
            );
        }
        s
    }

    fn step(&mut self, rows: Range<usize>) {
        assert!(
            !rows.is_empty() && rows.end <= self.train.n,
            "batch rows {rows:?} outside the training split"
        );
        let (offset, n) = (rows.start, rows.len());
        let s = self.forward(Split::Train, offset, n, true);
        self.step += 1;
        let bias: Vec<f32> = self
            .methods
            .iter()
            .flat_map(|m| <[f32; 2]>::from(bias_corrections(self.step, betas(m))))
            .collect();
        let bias = upload_f32(&self.client, &bias);
        let ring = match &mut self.filter {
            Some(filter) => Some(upload_u32(&self.client, &filter.advance(&self.methods))),
            None => None,
        };
        let (k, p, h) = (self.k, self.p, self.h);
        let (n_w1, n_rows) = (k * 2 * p * h, k * self.train.n);
        let t = &self.train;
        // SAFETY: as in `forward`.
        unsafe {
            // dpre [n, h] = (dlogits [n, p] · W2ᵀ [p, h]) ⊙ σ'(pre)
            self.matmul(
                k,
                (&s.logits, n * p, p, 1),
                (&self.w2[0], h * p, 1, p),
                (&s.dpre, n, h, p),
                Some(&s.pre),
            );
            // dW2 [h, p] = postᵀ [h, n] · dlogits [n, p]
            self.matmul(
                k,
                (&s.post, n * h, 1, h),
                (&s.logits, n * p, p, 1),
                (&self.g2, h, p, n),
                None,
            );
            let (count, dim) = self.grid(k * h);
            fc1_grad_kernel::launch_unchecked::<R>(
                &self.client,
                count,
                dim,
                arr(&t.a, n_rows),
                arr(&t.b, n_rows),
                arr(&s.dpre, k * n * h),
                arr(&self.g1, n_w1),
                k,
                p,
                h,
                t.n,
                offset,
                n,
            );
            for matrix in 0..2 {
                self.update(matrix, &bias, ring.as_ref());
            }
        }
    }

    /// Weight `matrix` (0: fc1, 1: fc2) from its gradient: the filters, ⊥Grad, then the
    /// optimisers (Muon's members after the others).
    ///
    /// # Safety
    /// The gradient is computed; `bias` holds K pairs and `ring` (with filters) K triples.
    unsafe fn update(&self, matrix: usize, bias: &Handle, ring: Option<&Handle>) {
        let (k, p, h) = (self.k, self.p, self.h);
        let (w, g, per_member) = match matrix {
            0 => (&self.w1, &self.g1, 2 * p * h),
            _ => (&self.w2, &self.g2, h * p),
        };
        let len = k * per_member;
        let c = &self.client;
        let (count, dim) = self.grid(len);
        // SAFETY: as in `forward`.
        unsafe {
            if let (Some(filter), Some(ring)) = (&self.filter, ring) {
                filter_kernel::launch_unchecked::<R>(
                    c,
                    count.clone(),
                    dim,
                    arr(g, len),
                    arr(&filter.blocks[matrix], filter.count * per_member),
                    arr(&self.codes, k * CODES),
                    arr(&self.params, k * PARAMS),
                    arr(ring, k * 3),
                    k,
                    per_member,
                );
            }
            if self.orthograd {
                self.orthogonalise(&w[0], g, per_member);
            }
            update_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(g, len),
                arr(&w[0], len),
                arr(&w[1], len),
                arr(&w[2], len),
                arr(&self.factors, k * FACTORS),
                arr(&self.params, k * PARAMS),
                arr(&self.codes, k * CODES),
                arr(bias, k * 2),
                k,
                per_member,
                [0, 2 * p * h][matrix],
                u32::try_from(self.step - 1).expect("fewer than 2³² steps"),
            );
            if let Some(muon) = &self.muon {
                self.muon(matrix, muon, g, w);
            }
        }
    }

    /// ⊥Grad on the ⊥Grad members' gradients `g` of weight `w`: the dot products, the
    /// projection, the rescaling (five launches).
    ///
    /// # Safety
    /// `w` and `g` hold K members of `per_member` values.
    unsafe fn orthogonalise(&self, w: &Handle, g: &Handle, per_member: usize) {
        let (k, c) = (self.k, &self.client);
        let (len, chunks) = (k * per_member, per_member.div_ceil(CHUNK));
        let (partial, dots) = (self.floats(3 * k * chunks), self.floats(3 * k));
        let (orth_partial, orth) = (self.floats(k * chunks), self.floats(k));
        let (count, dim) = self.grid(k * chunks);
        // SAFETY: every buffer is passed with its length.
        unsafe {
            dots_kernel::launch_unchecked::<R>(
                c,
                count.clone(),
                dim,
                arr(w, len),
                arr(g, len),
                arr(&partial, 3 * k * chunks),
                arr(&self.codes, k * CODES),
                k,
                per_member,
                chunks,
            );
            self.totals(&partial, &dots, k, chunks, 3);
            project_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(w, len),
                arr(g, len),
                arr(&dots, 3 * k),
                arr(&orth_partial, k * chunks),
                arr(&self.codes, k * CODES),
                k,
                per_member,
                chunks,
            );
            self.totals(&orth_partial, &orth, k, chunks, 1);
            let (count, dim) = self.grid(len);
            rescale_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(g, len),
                arr(&dots, 3 * k),
                arr(&orth, k),
                arr(&self.codes, k * CODES),
                k,
                per_member,
            );
        }
    }

    /// Muon on weight `matrix` of its members: the momentum into `X`, `X / ‖X‖_F`, the
    /// Newton–Schulz steps as batched products, the update.
    ///
    /// # Safety
    /// `g` and `w` are weight `matrix`'s gradient and `[weights, first moment, second moment]`.
    unsafe fn muon(&self, matrix: usize, muon: &MuonBuffers, g: &Handle, w: &[Handle; 3]) {
        let (k, c, count_m) = (self.k, &self.client, muon.count);
        let mm = &muon.matrices[matrix];
        let (rows, cols) = (mm.rows, mm.cols);
        let per_member = rows * cols;
        let (r, cc) = (rows.min(cols), rows.max(cols));
        let chunks = per_member.div_ceil(CHUNK);
        let (partial, squares) = (self.floats(count_m * chunks), self.floats(count_m));
        let (count, dim) = self.grid(count_m * per_member);
        let (a, b, c2) = MUON_NS_COEFFICIENTS;
        // SAFETY: every buffer is passed with its length; `index` names members below K.
        unsafe {
            muon_momentum_kernel::launch_unchecked::<R>(
                c,
                count.clone(),
                dim,
                arr(g, k * per_member),
                arr(&w[1], k * per_member),
                arr(&mm.x, count_m * per_member),
                arr(&muon.index, count_m),
                arr(&self.params, k * PARAMS),
                count_m,
                rows,
                cols,
            );
            let (count_c, dim_c) = self.grid(count_m * chunks);
            square_partial_kernel::launch_unchecked::<R>(
                c,
                count_c,
                dim_c,
                arr(&mm.x, count_m * per_member),
                arr(&partial, count_m * chunks),
                count_m,
                per_member,
                chunks,
            );
            self.totals(&partial, &squares, count_m, chunks, 1);
            normalise_kernel::launch_unchecked::<R>(
                c,
                count.clone(),
                dim,
                arr(&mm.x, count_m * per_member),
                arr(&squares, count_m),
                count_m,
                per_member,
                MUON_EPSILON,
            );
            let combine = |x: &Handle, y: &Handle, len: usize, alpha: f32, beta: f32| {
                let (count, dim) = self.grid(len);
                combine_kernel::launch_unchecked::<R>(
                    c,
                    count,
                    dim,
                    arr(x, len),
                    arr(y, len),
                    len,
                    alpha,
                    beta,
                );
            };
            for _ in 0..MUON_NS_STEPS {
                // A [r, r] = X [r, c] · Xᵀ [c, r]
                self.matmul(
                    count_m,
                    (&mm.x, r * cc, cc, 1),
                    (&mm.x, r * cc, 1, cc),
                    (&mm.gram, r, r, cc),
                    None,
                );
                self.matmul(
                    count_m,
                    (&mm.gram, r * r, r, 1),
                    (&mm.gram, r * r, r, 1),
                    (&mm.square, r, r, r),
                    None,
                );
                combine(&mm.gram, &mm.square, count_m * r * r, b, c2);
                // (b·A + c·A²) [r, r] · X [r, c]
                self.matmul(
                    count_m,
                    (&mm.gram, r * r, r, 1),
                    (&mm.x, r * cc, cc, 1),
                    (&mm.bx, r, cc, r),
                    None,
                );
                combine(&mm.x, &mm.bx, count_m * per_member, a, 1.0);
            }
            muon_apply_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&mm.x, count_m * per_member),
                arr(&w[0], k * per_member),
                arr(&muon.index, count_m),
                arr(&self.factors, k * FACTORS),
                count_m,
                rows,
                cols,
                matrix,
            );
        }
    }

    fn validate(&mut self) {
        let n = self.val.n;
        let chunk = (LOGITS_BUDGET / (self.k * self.p)).clamp(1, n.max(1));
        let mut begin = 0;
        while begin < n {
            let end = (begin + chunk).min(n);
            self.forward(Split::Val, begin, end - begin, false);
            begin = end;
        }
    }

    /// Every member's training sums (one read), reset; the validation sums are kept.
    fn take_train_sums(&mut self) -> Vec<PassSums> {
        let mut values = self.read(vec![self.sums.clone()]).remove(0);
        let sums: Vec<PassSums> = values.chunks_exact(SUMS).map(pass_sums).collect();
        for member in values.chunks_exact_mut(SUMS) {
            member[..3].fill(0.0);
        }
        self.sums = upload_f32(&self.client, &values);
        sums
    }

    /// Every member's epoch sums and `Σ w²` (one read), the sums reset.
    fn take_sums(&mut self) -> Vec<EpochSums> {
        let (k, p, h) = (self.k, self.p, self.h);
        let zeros = upload_f32(&self.client, &vec![0.0; k * SUMS]);
        let sums = std::mem::replace(&mut self.sums, zeros);
        let squares = self.client.empty(2 * k * size_of::<f32>());
        let (count, dim) = self.grid(k);
        for (slot, (w, per_member)) in [(&self.w1[0], 2 * p * h), (&self.w2[0], h * p)]
            .into_iter()
            .enumerate()
        {
            // SAFETY: `w` holds K members of `per_member` values and `squares` 2K values.
            unsafe {
                square_sum_kernel::launch_unchecked::<R>(
                    &self.client,
                    count.clone(),
                    dim,
                    arr(w, k * per_member),
                    arr(&squares, 2 * k),
                    k,
                    per_member,
                    slot,
                );
            }
        }
        let [values, squares]: [Vec<f32>; 2] = self
            .read(vec![sums, squares])
            .try_into()
            .expect("two buffers read");
        values
            .chunks_exact(SUMS)
            .zip(squares.chunks_exact(2))
            .map(|(s, w)| EpochSums {
                train: pass_sums(&s[..3]),
                val: pass_sums(&s[3..]),
                weight_sq: w[0] as f64 + w[1] as f64,
            })
            .collect()
    }

    /// Every member's moments, step and filter memory (PyTorch's orientation, oldest first).
    fn optimizer_states(&self) -> Vec<OptimizerState> {
        let (p, h) = (self.p, self.h);
        let mut handles = vec![
            self.w1[1].clone(),
            self.w1[2].clone(),
            self.w2[1].clone(),
            self.w2[2].clone(),
        ];
        if let Some(filter) = &self.filter {
            handles.extend(filter.blocks.iter().cloned());
        }
        let values = self.read(handles);
        let mut states = unstack_adam(
            (p, h, self.step),
            [&values[0], &values[1]],
            [&values[2], &values[3]],
        );
        if let Some(filter) = &self.filter {
            let (n1, n2) = (2 * p * h, h * p);
            let mut first_block = 0;
            for ((state, method), &(held, oldest)) in
                states.iter_mut().zip(&self.methods).zip(&filter.rings)
            {
                let capacity = method.filter_capacity();
                for j in 0..held {
                    let b = first_block + (oldest + j) % capacity;
                    // Burn's [2p, h] and [h, p] blocks into PyTorch's [h, 2p] and [p, h].
                    state
                        .filter
                        .fc1
                        .extend(transpose(&values[4][b * n1..(b + 1) * n1], 2 * p, h));
                    state
                        .filter
                        .fc2
                        .extend(transpose(&values[5][b * n2..(b + 1) * n2], h, p));
                }
                state.filter.gradients = held;
                first_block += capacity;
            }
        }
        states
    }

    fn read(&self, handles: Vec<Handle>) -> Vec<Vec<f32>> {
        self.client
            .read(handles)
            .into_iter()
            .map(|bytes| f32::from_bytes(&bytes).to_vec())
            .collect()
    }
}

/// A pass's sums from its three values in [`CubeStack::sums`]: loss, right, collapsed.
fn pass_sums(s: &[f32]) -> PassSums {
    PassSums {
        loss_sum: s[0] as f64,
        correct: s[1] as usize,
        collapsed: s[2] as usize,
    }
}

#[derive(Clone, Copy)]
enum Split {
    Train,
    Val,
}

macro_rules! impl_cube_step_backend {
    ($($backend:tt)*) => {
        impl<R: CubeRuntime, I: IntElement, BT: BoolElement> StepBackend for $($backend)* {
            type Stack = CubeStack<R>;

            fn stack_init(setup: StackSetup, device: &Self::Device) -> CubeStack<R> {
                CubeStack::new(setup, device)
            }

            fn stack_step(stack: &mut CubeStack<R>, rows: Range<usize>) {
                stack.step(rows);
            }

            fn stack_validate(stack: &mut CubeStack<R>) {
                stack.validate();
            }

            fn stack_take_sums(stack: &mut CubeStack<R>) -> Vec<EpochSums> {
                stack.take_sums()
            }

            fn stack_take_train_sums(stack: &mut CubeStack<R>) -> Vec<PassSums> {
                stack.take_train_sums()
            }

            fn stack_weights(stack: &CubeStack<R>) -> Vec<MlpWeights> {
                let [w1, w2]: [Vec<f32>; 2] = stack
                    .read(vec![stack.w1[0].clone(), stack.w2[0].clone()])
                    .try_into()
                    .expect("two buffers read");
                unstack_weights(stack.p, stack.h, &w1, &w2)
            }

            fn stack_optimizer(stack: &CubeStack<R>) -> Vec<OptimizerState> {
                stack.optimizer_states()
            }

            fn stack_set_hyper(stack: &mut CubeStack<R>, hyper: &[Hyper]) {
                assert_eq!(hyper.len(), stack.k, "one Hyper per member");
                stack.factors = upload_f32(&stack.client, &factors_of(hyper, (stack.p, stack.h)));
            }
        }
    };
}

impl_cube_step_backend!(CubeBackend<R, f32, I, BT>);
impl_cube_step_backend!(Fusion<CubeBackend<R, f32, I, BT>>);

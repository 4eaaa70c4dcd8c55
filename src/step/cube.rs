//! The CubeCL implementation of [`StepBackend`], for Burn's CubeCL backends (wgpu, vulkan,
//! cuda): `#[cube]` kernels written once, for the three runtimes.
//!
//! One step of all K members is nine launches, each over one kind of output element, so no
//! two threads write the same value and no reduction needs atomics (a run is reproducible from
//! run to run):
//!
//! | launch | one thread per | computes |
//! |---|---|---|
//! | [`hidden_kernel`] | `(k, i, j)` | `post = relu(W1[a_i, j] + W1[p + b_i, j])` |
//! | [`matmul_kernel`] | 4×4 tile of `(k, i, c)` | `logits = post · W2` |
//! | [`softmax_kernel`] | `(k, i)` | row loss, argmax, collapse, `dlogits = (softmax − onehot) / n` in place |
//! | [`sums_kernel`] | `k` | the batch's loss, right predictions and collapsed rows, added to the epoch sums |
//! | [`matmul_kernel`] | 4×4 tile of `(k, i, j)` | `dpre = (dlogits · W2ᵀ) ⊙ [post > 0]` |
//! | [`matmul_kernel`] | 4×4 tile of `(k, j, c)` | `dW2 = postᵀ · dlogits` |
//! | [`adam_kernel`] | `(k, j, c)` | AdamW on `W2` |
//! | [`fc1_grad_kernel`] | `(k, j)` | `dW1[·, j]`: `dpre[i, j]` added into rows `a_i`, `p + b_i`, rows in order |
//! | [`adam_kernel`] | `(k, r, j)` | AdamW on `W1` |
//!
//! The three products are one kernel with strided operands (a transposed operand costs nothing);
//! for stacks of 64 members or more each thread keeps a 4×4 tile of outputs in registers, so it
//! loads 8 values per 16 multiply-adds; smaller stacks compute one element per thread. Each sum walks its index in order (fc1's gradient walks the batch rows in
//! order, as the host's scatter-add does). Kernels on one device run in launch order, so `dpre`
//! reads W2 before AdamW updates it. Validation is the first four launches on validation rows, in
//! chunks that bound the logits buffer. The kernels need no autotuning, so the first step runs
//! as soon as they compile.
//!
//! The stack keeps its own buffers on the backend's compute client; no Burn tensor passes
//! through it, so the same stack serves `CubeBackend` and `Fusion<CubeBackend>` (Burn's `Wgpu`,
//! `Vulkan` and `Cuda` types).

// Kernels take their sizes as separate scalars, and CubeCL's DSL has no `div_ceil`.
#![allow(clippy::too_many_arguments, clippy::manual_div_ceil)]

use std::ops::Range;

use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, IntElement};
use burn_fusion::Fusion;
use cubecl::{calculate_cube_count_elemwise, prelude::*, server::Handle};

use crate::model::MlpWeights;

use super::{
    betas, bias_corrections, unstack_adam, unstack_weights, EpochSums, Hyper, Method,
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

/// `post[k, i, j] = relu(W1[k, a_i, j] + W1[k, p + b_i, j])` for rows `offset..offset + n` of
/// every member's split.
#[cube(launch_unchecked)]
fn hidden_kernel(
    w1: &Array<f32>,
    ia: &Array<u32>,
    ib: &Array<u32>,
    post: &mut Array<f32>,
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
    if x > 0.0 {
        y = x;
    }
    post[pos] = y;
}

/// `out[k] = A[k] · B[k]` for every member `k`: `out [m, q]` row-major at `k·m·q`; element
/// `(x, l)` of `A` at `a_batch·k + x·a_rs + l·a_cs`, element `(l, y)` of `B` at
/// `b_batch·k + l·b_rs + y·b_cs` (so a transposed operand costs nothing). With `tiled`, each
/// thread computes a 4×4 tile (8 loads per 16 multiply-adds), otherwise one element (16 times
/// the threads, for stacks too small to fill the device). Every element sums over `l` in order
/// either way; with `masked`, an element whose `mask` (same layout as `out`) is not positive is
/// set to zero.
#[cube(launch_unchecked)]
fn matmul_kernel(
    a: &Array<f32>,
    b: &Array<f32>,
    out: &mut Array<f32>,
    mask: &Array<f32>,
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
        store(out, mask, k * m * q, x, y, m, q, acc, masked);
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
    store(out, mask, base, x0, y0, m, q, c00, masked);
    store(out, mask, base, x0, y0 + 1, m, q, c01, masked);
    store(out, mask, base, x0, y0 + 2, m, q, c02, masked);
    store(out, mask, base, x0, y0 + 3, m, q, c03, masked);
    store(out, mask, base, x0 + 1, y0, m, q, c10, masked);
    store(out, mask, base, x0 + 1, y0 + 1, m, q, c11, masked);
    store(out, mask, base, x0 + 1, y0 + 2, m, q, c12, masked);
    store(out, mask, base, x0 + 1, y0 + 3, m, q, c13, masked);
    store(out, mask, base, x0 + 2, y0, m, q, c20, masked);
    store(out, mask, base, x0 + 2, y0 + 1, m, q, c21, masked);
    store(out, mask, base, x0 + 2, y0 + 2, m, q, c22, masked);
    store(out, mask, base, x0 + 2, y0 + 3, m, q, c23, masked);
    store(out, mask, base, x0 + 3, y0, m, q, c30, masked);
    store(out, mask, base, x0 + 3, y0 + 1, m, q, c31, masked);
    store(out, mask, base, x0 + 3, y0 + 2, m, q, c32, masked);
    store(out, mask, base, x0 + 3, y0 + 3, m, q, c33, masked);
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

/// Stores `value` at `(x, y)` of an `[m, q]` block at `base`, if inside it (zero where `masked`
/// and the mask is not positive).
#[cube]
// `masked` is known when the kernel compiles: the outer `if` is resolved then, the inner one runs.
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
fn store(
    out: &mut Array<f32>,
    mask: &Array<f32>,
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
            if mask[at] <= 0.0 {
                v = 0.0;
            }
        }
        out[at] = v;
    }
}

/// Per row: cross-entropy, whether the first maximum is at the label, and whether the softmax
/// collapsed (`Σ exp(x − max) == 1`); with `grad`, the logits are replaced by the gradient of
/// the batch-mean loss, `(softmax − onehot(y)) · scale`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn softmax_kernel(
    logits: &mut Array<f32>,
    iy: &Array<u32>,
    row_loss: &mut Array<f32>,
    row_right: &mut Array<f32>,
    row_collapsed: &mut Array<f32>,
    k_count: usize,
    p: usize,
    n_split: usize,
    offset: usize,
    n: usize,
    scale: f32,
    #[comptime] grad: bool,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * n {
        terminate!();
    }
    let k = pos / n;
    let i = pos % n;
    let y = usize::cast_from(iy[k * n_split + offset + i]);
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
    row_loss[pos] = sum.ln() - (logits[base + y] - max);
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
    if grad {
        let inv = scale / sum;
        for c in 0..p {
            logits[base + c] = (logits[base + c] - max).exp() * inv;
        }
        logits[base + y] -= scale;
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

/// AdamW on element `pos` with gradient `g`; member `k`'s lr, `1 − lr·wd` and ε are
/// `factors[3k..3k + 3]`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn adamw(
    w: &mut Array<f32>,
    m1: &mut Array<f32>,
    m2: &mut Array<f32>,
    pos: usize,
    g: f32,
    factors: &Array<f32>,
    k: usize,
    bias_1: f32,
    bias_2: f32,
) {
    let beta_1 = 0.9f32;
    let beta_2 = 0.999f32;
    let first = m1[pos] * beta_1 + g * (1.0f32 - beta_1);
    let second = m2[pos] * beta_2 + g * g * (1.0f32 - beta_2);
    m1[pos] = first;
    m2[pos] = second;
    let delta = (first / bias_1) / ((second / bias_2).sqrt() + factors[k * 3 + 2]);
    w[pos] = w[pos] * factors[k * 3 + 1] - delta * factors[k * 3];
}

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

/// AdamW on every element of a stacked weight (`per_member` elements a member) with gradients
/// `g`.
#[cube(launch_unchecked)]
fn adam_kernel(
    g: &Array<f32>,
    w: &mut Array<f32>,
    m1: &mut Array<f32>,
    m2: &mut Array<f32>,
    factors: &Array<f32>,
    k_count: usize,
    per_member: usize,
    bias_1: f32,
    bias_2: f32,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * per_member {
        terminate!();
    }
    adamw(
        w,
        m1,
        m2,
        pos,
        g[pos],
        factors,
        pos / per_member,
        bias_1,
        bias_2,
    );
}

/// Index rows of one split, `[K, n]` each.
struct RowBuffers {
    a: Handle,
    b: Handle,
    y: Handle,
    n: usize,
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
    /// `[K, 3]`: lr, `1 − lr·wd`, ε.
    factors: Handle,
    train: RowBuffers,
    val: RowBuffers,
    /// `[K, 4]`: train loss, train right, val loss, val right.
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
    /// `[K, rows, h]`.
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

fn factors_of(hyper: &[Hyper]) -> Vec<f32> {
    hyper
        .iter()
        .flat_map(|h| {
            let (lr, decay, eps) = h.factors();
            [lr, decay, eps]
        })
        .collect()
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
        Self {
            train: rows(&|member| &member.train),
            val: rows(&|member| &member.val),
            factors: upload_f32(&client, &factors_of(&hyper)),
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

    /// Launches [`matmul_kernel`]: `out [m, q] = A · B` for every member, each operand given as
    /// `(buffer, member stride, row stride, column stride)` and `out` as `(buffer, m, q, r)`;
    /// with a mask, zero where it is not positive.
    ///
    /// # Safety
    /// The buffers must hold K members of the sizes the strides and `m`, `q`, `r` describe.
    unsafe fn matmul(
        &self,
        (a, a_batch, a_rs, a_cs): (&Handle, usize, usize, usize),
        (b, b_batch, b_rs, b_cs): (&Handle, usize, usize, usize),
        (out, m, q, r): (&Handle, usize, usize, usize),
        mask: Option<&Handle>,
    ) {
        let k = self.k;
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

    /// Launches [`adam_kernel`] on a stacked weight `[w, m1, m2]` with gradients `g`.
    ///
    /// # Safety
    /// Every buffer must hold K members of `per_member` values.
    unsafe fn adam(&self, g: &Handle, w: &[Handle; 3], per_member: usize, bias: (f32, f32)) {
        let (k, len) = (self.k, self.k * per_member);
        let (count, dim) = self.grid(len);
        unsafe {
            adam_kernel::launch_unchecked::<R>(
                &self.client,
                count,
                dim,
                arr(g, len),
                arr(&w[0], len),
                arr(&w[1], len),
                arr(&w[2], len),
                arr(&self.factors, k * 3),
                k,
                per_member,
                bias.0,
                bias.1,
            );
        }
    }

    /// The forward pass (hidden, logits, softmax, sums) on rows `offset..offset + n` of
    /// `split`; with `grad`, leaves dlogits in the logits buffer.
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
                arr(&s.post, k * n * h),
                k,
                p,
                h,
                rows.n,
                offset,
                n,
            );
            // logits [n, p] = post [n, h] · W2 [h, p]
            self.matmul(
                (&s.post, n * h, h, 1),
                (&self.w2[0], h * p, p, 1),
                (&s.logits, n, p, h),
                None,
            );
            let (count, dim) = self.grid(k * n);
            softmax_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&s.logits, k * n * p),
                arr(&rows.y, n_rows),
                arr(&s.row_loss, k * n),
                arr(&s.row_right, k * n),
                arr(&s.row_collapsed, k * n),
                k,
                p,
                rows.n,
                offset,
                n,
                1.0 / n as f32,
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
        let (bias_1, bias_2) = bias_corrections(self.step, betas(&Method::default()));
        let (k, p, h) = (self.k, self.p, self.h);
        let (n_w1, n_rows) = (k * 2 * p * h, k * self.train.n);
        let t = &self.train;
        let c = &self.client;
        // SAFETY: as in `forward`.
        unsafe {
            // dpre [n, h] = (dlogits [n, p] · W2ᵀ [p, h]) ⊙ [post > 0]
            self.matmul(
                (&s.logits, n * p, p, 1),
                (&self.w2[0], h * p, 1, p),
                (&s.dpre, n, h, p),
                Some(&s.post),
            );
            // dW2 [h, p] = postᵀ [h, n] · dlogits [n, p]
            self.matmul(
                (&s.post, n * h, 1, h),
                (&s.logits, n * p, p, 1),
                (&self.g2, h, p, n),
                None,
            );
            self.adam(&self.g2, &self.w2, h * p, (bias_1, bias_2));
            let (count, dim) = self.grid(k * h);
            fc1_grad_kernel::launch_unchecked::<R>(
                c,
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
            self.adam(&self.g1, &self.w1, 2 * p * h, (bias_1, bias_2));
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
        let pass = |s: &[f32]| PassSums {
            loss_sum: s[0] as f64,
            correct: s[1] as usize,
            collapsed: s[2] as usize,
        };
        values
            .chunks_exact(SUMS)
            .zip(squares.chunks_exact(2))
            .map(|(s, w)| EpochSums {
                train: pass(&s[..3]),
                val: pass(&s[3..]),
                weight_sq: w[0] as f64 + w[1] as f64,
            })
            .collect()
    }

    fn read(&self, handles: Vec<Handle>) -> Vec<Vec<f32>> {
        self.client
            .read(handles)
            .into_iter()
            .map(|bytes| f32::from_bytes(&bytes).to_vec())
            .collect()
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

            fn stack_supports(method: &Method) -> Result<(), &'static str> {
                if method.is_default() {
                    Ok(())
                } else {
                    Err("the CubeCL kernels compute only the notebook's step (cross-entropy, \
                         ReLU, no filter, no ⊥Grad, AdamW with β = (0.9, 0.999)) so far; \
                         use --engine generic on this backend, or a CPU backend")
                }
            }

            fn stack_init(setup: StackSetup, device: &Self::Device) -> CubeStack<R> {
                assert!(
                    setup.members.iter().all(|m| Self::stack_supports(&m.method).is_ok()),
                    "a method the CubeCL kernels do not compute"
                );
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

            fn stack_weights(stack: &CubeStack<R>) -> Vec<MlpWeights> {
                let [w1, w2]: [Vec<f32>; 2] = stack
                    .read(vec![stack.w1[0].clone(), stack.w2[0].clone()])
                    .try_into()
                    .expect("two buffers read");
                unstack_weights(stack.p, stack.h, &w1, &w2)
            }

            fn stack_optimizer(stack: &CubeStack<R>) -> Vec<OptimizerState> {
                let handles = vec![
                    stack.w1[1].clone(),
                    stack.w1[2].clone(),
                    stack.w2[1].clone(),
                    stack.w2[2].clone(),
                ];
                let [a, b, c, d]: [Vec<f32>; 4] =
                    stack.read(handles).try_into().expect("four buffers read");
                unstack_adam((stack.p, stack.h, stack.step), [&a, &b], [&c, &d])
            }

            fn stack_set_hyper(stack: &mut CubeStack<R>, hyper: &[Hyper]) {
                assert_eq!(hyper.len(), stack.k, "one Hyper per member");
                stack.factors = upload_f32(&stack.client, &factors_of(hyper));
            }
        }
    };
}

impl_cube_step_backend!(CubeBackend<R, f32, I, BT>);
impl_cube_step_backend!(Fusion<CubeBackend<R, f32, I, BT>>);

//! The CubeCL implementation of [`StepBackend`], for Burn's CubeCL backends (wgpu, vulkan,
//! cuda): `#[cube]` kernels written once, for the three runtimes.
//!
//! One step of all K members is eight launches, each over one kind of output element, so no
//! two threads write the same value and no reduction needs atomics (a run is reproducible from
//! run to run):
//!
//! | kernel | one thread per | computes |
//! |---|---|---|
//! | [`hidden_kernel`] | `(k, i, j)` | `post = relu(W1[a_i, j] + W1[p + b_i, j])` |
//! | [`logits_kernel`] | `(k, i, c)` | `Σ_j post[i, j] · W2[j, c]` |
//! | [`softmax_kernel`] | `(k, i)` | row loss, argmax, `dlogits = (softmax − onehot) / n` in place |
//! | [`sums_kernel`] | `k` | the batch's loss and right predictions, added to the epoch sums |
//! | [`dpre_kernel`] | `(k, i, j)` | `dpre = [post > 0] · Σ_c dlogits[i, c] · W2[j, c]` |
//! | [`fc2_kernel`] | `(k, j, c)` | `dW2 = Σ_i post[i, j] · dlogits[i, c]`, then AdamW on `W2[j, c]` |
//! | [`fc1_grad_kernel`] | `(k, j)` | `dW1[·, j]`: `dpre[i, j]` added into rows `a_i`, `p + b_i`, rows in order |
//! | [`fc1_kernel`] | `(k, r, j)` | AdamW on `W1[r, j]` |
//!
//! Each reduction walks its index in order (fc1's gradient walks the batch rows in order, as
//! the host's scatter-add does). Kernels on one device run in launch order, so `dpre_kernel`
//! reads W2 before `fc2_kernel` updates it. Validation is the first four kernels on validation
//! rows, in chunks that bound the logits buffer. The kernels need no autotuning, so the first
//! step runs as soon as they compile.
//!
//! The stack keeps its own buffers on the backend's compute client; no Burn tensor passes
//! through it, so the same stack serves `CubeBackend` and `Fusion<CubeBackend>` (Burn's `Wgpu`,
//! `Vulkan` and `Cuda` types).

#![allow(clippy::too_many_arguments)]

use std::ops::Range;

use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, IntElement};
use burn_fusion::Fusion;
use cubecl::{calculate_cube_count_elemwise, prelude::*, server::Handle};

use crate::model::{transpose, MlpWeights};

use super::{
    bias_corrections, AdamState, EpochSums, Hyper, PassSums, Rows, StackSetup, StepBackend,
};

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

/// `logits[k, i, c] = Σ_j post[k, i, j] · W2[k, j, c]`.
#[cube(launch_unchecked)]
fn logits_kernel(
    post: &Array<f32>,
    w2: &Array<f32>,
    logits: &mut Array<f32>,
    k_count: usize,
    p: usize,
    h: usize,
    n: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * n * p {
        terminate!();
    }
    let k = pos / (n * p);
    let i = (pos / p) % n;
    let c = pos % p;
    let x = (k * n + i) * h;
    let w = k * h * p + c;
    let mut acc = 0.0f32;
    for j in 0..h {
        acc += post[x + j] * w2[w + j * p];
    }
    logits[pos] = acc;
}

/// Per row: cross-entropy and whether the first maximum is at the label; with `grad`, the
/// logits are replaced by the gradient of the batch-mean loss, `(softmax − onehot(y)) · scale`.
#[cube(launch_unchecked)]
fn softmax_kernel(
    logits: &mut Array<f32>,
    iy: &Array<u32>,
    row_loss: &mut Array<f32>,
    row_right: &mut Array<f32>,
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
    if grad {
        let inv = scale / sum;
        for c in 0..p {
            logits[base + c] = (logits[base + c] - max).exp() * inv;
        }
        logits[base + y] -= scale;
    }
}

/// Adds each member's `n` row losses and right predictions, in row order, to its sums at
/// `slot` (0: training, 2: validation).
#[cube(launch_unchecked)]
fn sums_kernel(
    row_loss: &Array<f32>,
    row_right: &Array<f32>,
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
    for i in 0..n {
        loss += row_loss[k * n + i];
        right += row_right[k * n + i];
    }
    sums[k * 4 + slot] += loss;
    sums[k * 4 + slot + 1] += right;
}

/// `dpre[k, i, j] = [post > 0] · Σ_c dlogits[k, i, c] · W2[k, j, c]` (`post > 0` exactly where
/// `pre > 0`).
#[cube(launch_unchecked)]
fn dpre_kernel(
    post: &Array<f32>,
    w2: &Array<f32>,
    dlogits: &Array<f32>,
    dpre: &mut Array<f32>,
    k_count: usize,
    p: usize,
    h: usize,
    n: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * n * h {
        terminate!();
    }
    let k = pos / (n * h);
    let i = (pos / h) % n;
    let j = pos % h;
    let mut d = 0.0f32;
    if post[pos] > 0.0 {
        let dl = (k * n + i) * p;
        let w = k * h * p + j * p;
        for c in 0..p {
            d += dlogits[dl + c] * w2[w + c];
        }
    }
    dpre[pos] = d;
}

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

/// fc2's gradient for element `(k, j, c)`, `Σ_i post[k, i, j] · dlogits[k, i, c]` in row order,
/// then its AdamW update.
#[cube(launch_unchecked)]
fn fc2_kernel(
    post: &Array<f32>,
    dlogits: &Array<f32>,
    w2: &mut Array<f32>,
    m1: &mut Array<f32>,
    m2: &mut Array<f32>,
    factors: &Array<f32>,
    k_count: usize,
    p: usize,
    h: usize,
    n: usize,
    bias_1: f32,
    bias_2: f32,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * h * p {
        terminate!();
    }
    let k = pos / (h * p);
    let j = (pos / p) % h;
    let c = pos % p;
    let mut g = 0.0f32;
    for i in 0..n {
        g += post[(k * n + i) * h + j] * dlogits[(k * n + i) * p + c];
    }
    adamw(w2, m1, m2, pos, g, factors, k, bias_1, bias_2);
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

/// AdamW on every element of fc1 with the gradients of [`fc1_grad_kernel`].
#[cube(launch_unchecked)]
fn fc1_kernel(
    g1: &Array<f32>,
    w1: &mut Array<f32>,
    m1: &mut Array<f32>,
    m2: &mut Array<f32>,
    factors: &Array<f32>,
    k_count: usize,
    p: usize,
    h: usize,
    bias_1: f32,
    bias_2: f32,
) {
    let pos = ABSOLUTE_POS;
    if pos >= k_count * 2 * p * h {
        terminate!();
    }
    let k = pos / (2 * p * h);
    adamw(w1, m1, m2, pos, g1[pos], factors, k, bias_1, bias_2);
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
    hyper: Vec<Hyper>,
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
        let adam: Vec<AdamState> = setup
            .members
            .iter()
            .map(|m| m.adam.clone().unwrap_or_else(|| AdamState::zeros(p, h)))
            .collect();
        // PyTorch orientation [cols, rows] -> Burn's [rows, cols], member after member.
        let stacked = |part: &dyn Fn(usize) -> Vec<f32>, rows: usize, cols: usize| {
            let values: Vec<f32> = (0..k)
                .flat_map(|m| transpose(&part(m), cols, rows))
                .collect();
            upload_f32(&client, &values)
        };
        let m = &setup.members;
        let w1 = [
            stacked(&|i| m[i].weights.fc1().to_vec(), 2 * p, h),
            stacked(&|i| adam[i].fc1_m1.clone(), 2 * p, h),
            stacked(&|i| adam[i].fc1_m2.clone(), 2 * p, h),
        ];
        let w2 = [
            stacked(&|i| m[i].weights.fc2().to_vec(), h, p),
            stacked(&|i| adam[i].fc2_m1.clone(), h, p),
            stacked(&|i| adam[i].fc2_m2.clone(), h, p),
        ];
        let rows = |split: &dyn Fn(&super::MemberSetup) -> &Rows| {
            let concat = |f: &dyn Fn(&Rows) -> &[u32]| -> Vec<u32> {
                m.iter().flat_map(|member| f(split(member)).to_vec()).collect()
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
            sums: upload_f32(&client, &vec![0.0; k * 4]),
            hyper,
            w1,
            w2,
            k,
            p,
            h,
            step,
            g1: client.empty(k * 2 * p * h * size_of::<f32>()),
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
            dpre: floats(k * rows * h),
        };
        self.scratch = Some((rows, buffers.clone()));
        buffers
    }

    /// Launch geometry for `threads` threads.
    fn grid(&self, threads: usize) -> (CubeCount, CubeDim) {
        let dim = CubeDim::new_1d(CUBE_SIZE);
        (calculate_cube_count_elemwise(&self.client, threads, dim), dim)
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
            let (count, dim) = self.grid(k * n * p);
            logits_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&s.post, k * n * h),
                arr(&self.w2[0], k * h * p),
                arr(&s.logits, k * n * p),
                k,
                p,
                h,
                n,
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
                arr(&self.sums, k * 4),
                k,
                n,
                match split {
                    Split::Train => 0,
                    Split::Val => 2,
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
        let (bias_1, bias_2) = bias_corrections(self.step);
        let (k, p, h) = (self.k, self.p, self.h);
        let (n_w1, n_w2, n_rows) = (k * 2 * p * h, k * h * p, k * self.train.n);
        let t = &self.train;
        let c = &self.client;
        // SAFETY: as in `forward`.
        unsafe {
            let (count, dim) = self.grid(k * n * h);
            dpre_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&s.post, k * n * h),
                arr(&self.w2[0], n_w2),
                arr(&s.logits, k * n * p),
                arr(&s.dpre, k * n * h),
                k,
                p,
                h,
                n,
            );
            let (count, dim) = self.grid(n_w2);
            fc2_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&s.post, k * n * h),
                arr(&s.logits, k * n * p),
                arr(&self.w2[0], n_w2),
                arr(&self.w2[1], n_w2),
                arr(&self.w2[2], n_w2),
                arr(&self.factors, k * 3),
                k,
                p,
                h,
                n,
                bias_1,
                bias_2,
            );
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
            let (count, dim) = self.grid(n_w1);
            fc1_kernel::launch_unchecked::<R>(
                c,
                count,
                dim,
                arr(&self.g1, n_w1),
                arr(&self.w1[0], n_w1),
                arr(&self.w1[1], n_w1),
                arr(&self.w1[2], n_w1),
                arr(&self.factors, k * 3),
                k,
                p,
                h,
                bias_1,
                bias_2,
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

    fn read(&self, handles: Vec<Handle>) -> Vec<Vec<f32>> {
        self.client
            .read(handles)
            .into_iter()
            .map(|bytes| f32::from_bytes(&bytes).to_vec())
            .collect()
    }

    /// Member by member, `[rows, cols]` blocks of a stacked buffer, in PyTorch's orientation.
    fn members(values: &[f32], rows: usize, cols: usize) -> Vec<Vec<f32>> {
        values
            .chunks_exact(rows * cols)
            .map(|block| transpose(block, rows, cols))
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
                let zeros = upload_f32(&stack.client, &vec![0.0; stack.k * 4]);
                let sums = std::mem::replace(&mut stack.sums, zeros);
                let values = stack.read(vec![sums]).remove(0);
                let pass = |loss: f32, right: f32| PassSums {
                    loss_sum: loss as f64,
                    correct: right as usize,
                };
                values
                    .chunks_exact(4)
                    .map(|s| EpochSums {
                        train: pass(s[0], s[1]),
                        val: pass(s[2], s[3]),
                    })
                    .collect()
            }

            fn stack_weights(stack: &CubeStack<R>) -> Vec<MlpWeights> {
                let (p, h) = (stack.p, stack.h);
                let [w1, w2]: [Vec<f32>; 2] = stack
                    .read(vec![stack.w1[0].clone(), stack.w2[0].clone()])
                    .try_into()
                    .expect("two buffers read");
                CubeStack::<R>::members(&w1, 2 * p, h)
                    .into_iter()
                    .zip(CubeStack::<R>::members(&w2, h, p))
                    .map(|(fc1, fc2)| {
                        MlpWeights::new(p, h, fc1, fc2).expect("stacked shapes are consistent")
                    })
                    .collect()
            }

            fn stack_adam(stack: &CubeStack<R>) -> Vec<AdamState> {
                let (p, h) = (stack.p, stack.h);
                let handles = vec![
                    stack.w1[1].clone(),
                    stack.w1[2].clone(),
                    stack.w2[1].clone(),
                    stack.w2[2].clone(),
                ];
                let [a, b, c, d]: [Vec<f32>; 4] =
                    stack.read(handles).try_into().expect("four buffers read");
                let a = CubeStack::<R>::members(&a, 2 * p, h);
                let b = CubeStack::<R>::members(&b, 2 * p, h);
                let c = CubeStack::<R>::members(&c, h, p);
                let d = CubeStack::<R>::members(&d, h, p);
                a.into_iter()
                    .zip(b)
                    .zip(c)
                    .zip(d)
                    .map(|(((fc1_m1, fc1_m2), fc2_m1), fc2_m2)| AdamState {
                        step: stack.step,
                        fc1_m1,
                        fc1_m2,
                        fc2_m1,
                        fc2_m2,
                    })
                    .collect()
            }

            fn stack_set_hyper(stack: &mut CubeStack<R>, hyper: &[Hyper]) {
                assert_eq!(hyper.len(), stack.k, "one Hyper per member");
                stack.hyper = hyper.to_vec();
                stack.factors = upload_f32(&stack.client, &factors_of(hyper));
            }
        }
    };
}

impl_cube_step_backend!(CubeBackend<R, f32, I, BT>);
impl_cube_step_backend!(Fusion<CubeBackend<R, f32, I, BT>>);

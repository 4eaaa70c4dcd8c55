//! The host implementation of [`StepBackend`] for the CPU backends (ndarray, flex): plain `f32`
//! code without Burn's per-operation overhead, on every core.
//!
//! One member's step over a batch of `n` rows:
//! - `pre[i] = W1[a_i] + W1[p + b_i]` (fc1 as a gather of two rows), `post = relu(pre)`,
//!   `logits = post · W2` (small GEMMs);
//!   (ReLU, or `pre²` for [`Activation::Square`]);
//! - the loss (softmax cross-entropy, StableMax in `f64`, or MSE), its mean over the batch,
//!   argmax (first maximum) for accuracy;
//! - `dlogits` (for cross-entropy `(softmax - onehot(y)) / n`), `dW2 = postᵀ · dlogits`,
//!   `dpost = dlogits · W2ᵀ` (two GEMMs), `dpre = dpost ⊙ [pre > 0]` (or `dpost ⊙ 2·pre`), `dW1`
//!   by scatter-adding `dpre[i]` into rows `a_i` and `p + b_i` in row order;
//! - the Grokfast filter, element by element; ⊥Grad, whose dot products are summed per piece
//!   in `f64` and then over the pieces in piece order (two more barriers);
//! - AdamW, SGD or SGLD (its noise drawn for the piece's weights by [`fill_normals`]), element by
//!   element; or Muon, whose Newton–Schulz steps take each whole matrix (small GEMMs), one matrix
//!   per thread after the team's step.
//!
//! # Threads
//! The hidden units are cut into fixed pieces of at most [`MAX_UNITS_PER_PIECE`] units.
//! Each thread of a persistent team ([`Pool`]) owns a contiguous run of pieces, and with them
//! their columns of `W1` and rows of `W2`, their gradients and their AdamW moments, which
//! therefore stay in that core's cache. A step has three phases and two barriers:
//! 1. by unit piece: the piece's `pre` and `post`, and its part of the logits,
//!    `post[:, u] · W2[u, :]`;
//! 2. by rows, in pieces of [`ROWS_PER_PIECE`]: the logits (the unit pieces' parts added in
//!    piece order), softmax cross-entropy and its gradient;
//! 3. by unit piece: the piece's rows of `dW2`, its columns of `dpost`, `dpre` and `dW1` (rows
//!    added in batch order), the filter, and the optimiser on its weights (with ⊥Grad, the
//!    optimiser waits for the whole matrices' norms: two barriers more).
//!
//! Only the logits (phase 2 reads every piece's part) and the gradient of the logits (phase 3
//! reads every row) cross between cores. The pieces do not depend on the number of threads and
//! each value is computed by one fixed sequence of operations whoever computes it, so a run
//! gives the same bits on one thread as on sixteen. Against one GEMM over all hidden units, the
//! logits are rounded differently: they are a sum of one partial product per piece. Validation
//! computes its logits the same way, in blocks of rows. Members of a stack are stepped one after
//! another.
//!
//! # Vector units
//! The element-wise loops are compiled for AVX-512 or AVX2 where the CPU has them (runtime
//! detection); they round the same way at any vector width and no reduction is reordered, so
//! the results are the same bits. The GEMMs are `gemm`'s, which picks its own kernels.

use std::{marker::PhantomData, ops::Range, sync::Mutex};

use crate::model::MlpWeights;

use super::{
    betas, bias_corrections,
    method::{ma_push, muon_lr_ratio, Sgld, MUON_EPSILON, MUON_NS_COEFFICIENTS, MUON_NS_STEPS},
    noise::{fill_normal_runs, fill_normals},
    pool::{Pool, Team},
    Activation, EpochSums, FilterState, Grokfast, Hyper, Loss, Method, Optimizer, OptimizerState,
    PassSums, Rows, StackSetup, StepBackend,
};

/// The most hidden units in a piece: a layer of `h` units is cut into `h.div_ceil(MAX_UNITS_PER_PIECE)`
/// near-equal pieces, which is also the most threads a model's step uses (two for the notebook's
/// 100 units). Smaller pieces cost more in small GEMMs than a second core gains (measured in
/// docs/benchmarks.md).
pub const MAX_UNITS_PER_PIECE: usize = 64;
/// Rows per piece of the second phase (softmax cross-entropy).
pub const ROWS_PER_PIECE: usize = 16;
/// Validation rows per pass over the scratch buffers (keeps them small for large p).
const VAL_BLOCK: usize = 1024;

/// The number of threads a host stack uses when asked for `threads` (0: one per core): never
/// more than the machine's cores.
pub fn host_threads(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 0 {
        cores
    } else {
        threads.min(cores)
    }
}

/// The hidden units of piece `i` when `h` units are cut into `pieces` near-equal pieces.
fn units(i: usize, pieces: usize, h: usize) -> Range<usize> {
    i * h / pieces..(i + 1) * h / pieces
}

/// Rows `i·size..` of `len` rows cut into pieces of `size`.
fn rows_of_piece(i: usize, size: usize, len: usize) -> Range<usize> {
    i * size..((i + 1) * size).min(len)
}

/// fc1 in the host layout: piece after piece, each piece `[2p, |u|]` row-major, so a piece's
/// weights are one contiguous block. From PyTorch's orientation `[h, 2p]`.
fn fc1_to_pieces(fc1: &[f32], (p, h): (usize, usize), pieces: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(2 * p * h);
    for i in 0..pieces {
        let u = units(i, pieces, h);
        for row in 0..2 * p {
            out.extend(u.clone().map(|unit| fc1[unit * 2 * p + row]));
        }
    }
    out
}

/// The inverse of [`fc1_to_pieces`].
fn fc1_from_pieces(blocks: &[f32], (p, h): (usize, usize), pieces: usize) -> Vec<f32> {
    let mut out = vec![0.0; 2 * p * h];
    for i in 0..pieces {
        let u = units(i, pieces, h);
        let block = &blocks[2 * p * u.start..2 * p * u.end];
        for row in 0..2 * p {
            for (k, unit) in u.clone().enumerate() {
                out[unit * 2 * p + row] = block[row * u.len() + k];
            }
        }
    }
    out
}

/// A stack on the host.
#[derive(Debug)]
pub struct HostStack {
    p: usize,
    h: usize,
    /// Unit pieces, `h.div_ceil(MAX_UNITS_PER_PIECE)`.
    pieces: usize,
    step: u64,
    members: Vec<HostMember>,
    scratch: Scratch,
    pool: Pool,
}

/// One member's weights, moments, filter, hyperparameters, method, rows and sums.
#[derive(Debug)]
struct HostMember {
    /// fc1 in pieces ([`fc1_to_pieces`]).
    w1: Vec<f32>,
    /// fc2, `[h, p]` (Burn's layout).
    w2: Vec<f32>,
    m1_w1: Vec<f32>,
    m2_w1: Vec<f32>,
    m1_w2: Vec<f32>,
    m2_w2: Vec<f32>,
    /// The filter's memory in the host layout: the EMA, or the MA's window as a ring of blocks.
    filter: [Vec<f32>; 2],
    /// Gradients the filter holds, and the ring block of the oldest.
    held: usize,
    oldest: usize,
    hyper: Hyper,
    method: Method,
    train: Rows,
    val: Rows,
    sums: EpochSums,
}

/// Buffers of one step over at most `rows` rows.
#[derive(Debug)]
struct Scratch {
    rows: usize,
    pass: PassBuffers,
    /// `dpost`, then `dpre` in place; laid out as [`PassBuffers::pre`].
    dpost: Vec<f32>,
    /// dW1, laid out as a member's `w1`.
    g1: Vec<f32>,
    /// dW2, `[h, p]`.
    g2: Vec<f32>,
    /// The MA filter's sums, laid out as `g1` and `g2`.
    acc: [Vec<f32>; 2],
    /// SGLD's noise, laid out as `g1` and `g2`.
    noise: [Vec<f32>; 2],
    /// ⊥Grad's sums per unit piece: `[w·w, w·g, g·g]` of fc1 then of fc2, and `‖g_⊥‖²` of both.
    dots: Vec<f64>,
    orth: Vec<f64>,
}

/// Buffers of one forward pass over at most `rows` rows.
#[derive(Debug)]
struct PassBuffers {
    /// `[n, h]` for `n` rows: piece after piece, each `[n, |u|]` row-major (piece `u` starts
    /// at `n·u.start`).
    pre: Vec<f32>,
    /// Laid out as `pre`.
    post: Vec<f32>,
    /// `[pieces, n, p]`: each unit piece's part of the logits.
    parts: Vec<f32>,
    /// `[n, p]`; the softmax gradient in place.
    logits: Vec<f32>,
    loss: Vec<f64>,
    correct: Vec<bool>,
    collapsed: Vec<bool>,
}

impl Scratch {
    fn new(rows: usize, (p, h): (usize, usize), pieces: usize) -> Self {
        Self {
            rows,
            pass: PassBuffers {
                pre: vec![0.0; rows * h],
                post: vec![0.0; rows * h],
                parts: vec![0.0; pieces * rows * p],
                logits: vec![0.0; rows * p],
                loss: vec![0.0; rows],
                correct: vec![false; rows],
                collapsed: vec![false; rows],
            },
            dpost: vec![0.0; rows * h],
            g1: vec![0.0; 2 * p * h],
            g2: vec![0.0; h * p],
            acc: [vec![0.0; 2 * p * h], vec![0.0; h * p]],
            noise: [vec![0.0; 2 * p * h], vec![0.0; h * p]],
            dots: vec![0.0; pieces * 6],
            orth: vec![0.0; pieces * 2],
        }
    }

    /// Grows the row buffers to hold at least `rows` rows.
    fn fit(&mut self, rows: usize, shape: (usize, usize), pieces: usize) {
        if self.rows < rows {
            *self = Self::new(rows, shape, pieces);
        }
    }
}

impl PassBuffers {
    /// The losses' sum, added in row order, the hits and the collapsed rows of the first `n`
    /// rows, added to `sums`.
    fn add_to(&self, n: usize, sums: &mut PassSums) {
        sums.loss_sum += self.loss[..n].iter().fold(0.0, |sum, &l| sum + l);
        sums.correct += self.correct[..n].iter().filter(|&&c| c).count();
        sums.collapsed += self.collapsed[..n].iter().filter(|&&c| c).count();
    }
}

impl HostStack {
    fn new(setup: StackSetup) -> Self {
        let step = setup.check();
        let (p, h) = (setup.p, setup.d_hidden);
        let pieces = h.div_ceil(MAX_UNITS_PER_PIECE);
        let members: Vec<HostMember> = setup
            .members
            .into_iter()
            .map(|m| {
                let adam = m.start_state();
                let fc1 = |values: &[f32]| fc1_to_pieces(values, (p, h), pieces);
                let fc2 = |values: &[f32]| crate::model::transpose(values, p, h);
                let (n1, n2) = (2 * p * h, h * p);
                let blocks = m.method.filter_capacity();
                let mut filter = [vec![0.0; blocks * n1], vec![0.0; blocks * n2]];
                let held = adam.filter.gradients;
                for j in 0..held {
                    filter[0][j * n1..(j + 1) * n1]
                        .copy_from_slice(&fc1(&adam.filter.fc1[j * n1..(j + 1) * n1]));
                    filter[1][j * n2..(j + 1) * n2]
                        .copy_from_slice(&fc2(&adam.filter.fc2[j * n2..(j + 1) * n2]));
                }
                HostMember {
                    w1: fc1(m.weights.fc1()),
                    w2: fc2(m.weights.fc2()),
                    m1_w1: fc1(&adam.fc1_m1),
                    m2_w1: fc1(&adam.fc1_m2),
                    m1_w2: fc2(&adam.fc2_m1),
                    m2_w2: fc2(&adam.fc2_m2),
                    filter,
                    held,
                    oldest: 0,
                    hyper: m.hyper,
                    method: m.method,
                    train: m.train,
                    val: m.val,
                    sums: EpochSums::default(),
                }
            })
            .collect();
        // Rows for a validation block; a longer batch grows them (`Scratch::fit`).
        let rows = members[0].val.len().clamp(1, VAL_BLOCK);
        Self {
            p,
            h,
            pieces,
            step,
            members,
            scratch: Scratch::new(rows, (p, h), pieces),
            pool: Pool::new(host_threads(setup.threads).min(pieces)),
        }
    }

    /// One step of every member on training rows `rows`.
    fn step(&mut self, rows: Range<usize>) {
        assert!(
            !rows.is_empty() && rows.end <= self.members[0].train.len(),
            "batch rows {rows:?} outside the training split"
        );
        let (shape, pieces, n) = ((self.p, self.h), self.pieces, rows.len());
        self.scratch.fit(n, shape, pieces);
        self.step += 1;
        for m in &mut self.members {
            let update = Update::new(&m.method, &m.hyper, self.step);
            let filter = FilterStep::new(&m.method, m.held, m.oldest);
            let s = &mut self.scratch;
            let weights = (&mut m.w1[..], &mut m.w2[..]);
            let [acc1, acc2] = &mut s.acc;
            let [noise1, noise2] = &mut s.noise;
            let [filter1, filter2] = &mut m.filter;
            let job = StepJob {
                pass: Pass::new(
                    shape,
                    &m.method,
                    &m.train,
                    rows.clone(),
                    weights,
                    &mut s.pass,
                ),
                update: &update,
                filter: &filter,
                orthograd: m.method.orthograd,
                dpost: Parts::new(&mut s.dpost[..n * shape.1]),
                g: [Parts::new(&mut s.g1), Parts::new(&mut s.g2)],
                m1: [Parts::new(&mut m.m1_w1), Parts::new(&mut m.m1_w2)],
                m2: [Parts::new(&mut m.m2_w1), Parts::new(&mut m.m2_w2)],
                memory: [Parts::new(filter1), Parts::new(filter2)],
                acc: [Parts::new(acc1), Parts::new(acc2)],
                noise: [Parts::new(noise1), Parts::new(noise2)],
                dots: Parts::new(&mut s.dots),
                orth: Parts::new(&mut s.orth),
            };
            self.pool.run(&|team: &Team| run_widest(&job, team));
            if let Update::Muon(muon) = &update {
                let g = [&self.scratch.g1[..], &self.scratch.g2[..]];
                muon.step(m, g, shape, pieces, &self.pool);
            }
            (m.held, m.oldest) = filter.after();
            self.scratch.pass.add_to(n, &mut m.sums.train);
        }
    }

    /// Validation of every member, in blocks of at most [`VAL_BLOCK`] rows.
    fn validate(&mut self) {
        let (shape, pieces) = ((self.p, self.h), self.pieces);
        let n = self.members[0].val.len();
        self.scratch.fit(n.min(VAL_BLOCK), shape, pieces);
        for m in &mut self.members {
            let mut begin = 0;
            while begin < n {
                let end = (begin + VAL_BLOCK).min(n);
                let weights = (&mut m.w1[..], &mut m.w2[..]);
                let s = &mut self.scratch.pass;
                let pass = Pass::new(shape, &m.method, &m.val, begin..end, weights, s);
                self.pool
                    .run(&|team: &Team| run_widest(&ValidateJob(&pass), team));
                self.scratch.pass.add_to(end - begin, &mut m.sums.val);
                begin = end;
            }
        }
    }
}

/// A mutable slice that the threads of a team borrow in disjoint parts.
struct Parts<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `Parts` is a `&mut [T]` that threads borrow in pieces; the methods' contracts make
// the borrows disjoint in space or (across a barrier) in time.
unsafe impl<T: Send> Send for Parts<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Parts<'_, T> {}

impl<'a, T> Parts<'a, T> {
    fn new(slice: &'a mut [T]) -> Self {
        Self {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _borrow: PhantomData,
        }
    }

    /// Elements `range`, to read or write.
    ///
    /// # Safety
    /// While the returned slice is in use, no other borrow of its elements is (on any thread).
    ///
    /// # Panics
    /// If `range` is not inside the slice.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, range: Range<usize>) -> &'a mut [T] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (asserted); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }

    /// The whole slice, to read.
    ///
    /// # Safety
    /// While the returned slice is in use, no element is written.
    #[inline(always)]
    unsafe fn whole(&self) -> &'a [T] {
        // SAFETY: the slice's own extent; no writer by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// One member's forward pass over `data[rows]`, shared by the threads of a team: phases 1
/// and 2 of the module docs.
struct Pass<'a> {
    p: usize,
    h: usize,
    pieces: usize,
    activation: Activation,
    objective: Loss,
    data: &'a Rows,
    rows: Range<usize>,
    w1: Parts<'a, f32>,
    w2: Parts<'a, f32>,
    pre: Parts<'a, f32>,
    post: Parts<'a, f32>,
    parts: Parts<'a, f32>,
    logits: Parts<'a, f32>,
    loss: Parts<'a, f64>,
    correct: Parts<'a, bool>,
    collapsed: Parts<'a, bool>,
}

impl<'a> Pass<'a> {
    fn new(
        (p, h): (usize, usize),
        method: &Method,
        data: &'a Rows,
        rows: Range<usize>,
        (w1, w2): (&'a mut [f32], &'a mut [f32]),
        s: &'a mut PassBuffers,
    ) -> Self {
        let n = rows.len();
        let pieces = h.div_ceil(MAX_UNITS_PER_PIECE);
        Self {
            p,
            h,
            pieces,
            activation: method.activation,
            objective: method.loss,
            data,
            rows,
            w1: Parts::new(w1),
            w2: Parts::new(w2),
            pre: Parts::new(&mut s.pre[..n * h]),
            post: Parts::new(&mut s.post[..n * h]),
            parts: Parts::new(&mut s.parts[..pieces * n * p]),
            logits: Parts::new(&mut s.logits[..n * p]),
            loss: Parts::new(&mut s.loss[..n]),
            correct: Parts::new(&mut s.correct[..n]),
            collapsed: Parts::new(&mut s.collapsed[..n]),
        }
    }

    /// Phase 1 for unit piece `i`: its columns of `pre` and `post`, and its part of the logits.
    ///
    /// # Safety
    /// Only this thread touches piece `i` of the weights, of `pre`, `post` and `parts`.
    #[inline(always)]
    unsafe fn hidden(&self, i: usize) {
        let (p, n) = (self.p, self.rows.len());
        let u = units(i, self.pieces, self.h);
        let w = u.len();
        // SAFETY: piece `i`'s blocks, by the caller's contract.
        let (w1, w2, pre, post, part) = unsafe {
            (
                self.w1.part(2 * p * u.start..2 * p * u.end),
                self.w2.part(u.start * p..u.end * p),
                self.pre.part(n * u.start..n * u.end),
                self.post.part(n * u.start..n * u.end),
                self.parts.part(i * n * p..(i + 1) * n * p),
            )
        };
        for (j, r) in self.rows.clone().enumerate() {
            let wa = &w1[self.data.a[r] as usize * w..][..w];
            let wb = &w1[self.data.b[r] as usize * w..][..w];
            let (pre, post) = (&mut pre[j * w..][..w], &mut post[j * w..][..w]);
            match self.activation {
                Activation::Relu => {
                    for k in 0..w {
                        let x = wa[k] + wb[k];
                        pre[k] = x;
                        post[k] = x.max(0.0);
                    }
                }
                Activation::Square => {
                    for k in 0..w {
                        let x = wa[k] + wb[k];
                        pre[k] = x;
                        post[k] = x * x;
                    }
                }
            }
        }
        // part [n, p] = post[:, u] [n, w] · W2[u, :] [w, p]
        matmul(part, (n, p, w), (post, w, 1), (w2, p, 1));
    }

    /// Phase 2 for row piece `i`: the rows' logits (the unit pieces' parts added in piece
    /// order), losses and hits; with `grad`, the logits become the gradient of the mean loss.
    ///
    /// # Safety
    /// Phase 1 is over on every thread, and only this thread touches row piece `i`.
    #[inline(always)]
    unsafe fn loss(&self, i: usize, grad: bool) {
        let (p, n) = (self.p, self.rows.len());
        let r = rows_of_piece(i, ROWS_PER_PIECE, n);
        // SAFETY: `parts` is only read in phase 2; row piece `i` by the caller's contract.
        let (parts, logits, loss, correct, collapsed) = unsafe {
            (
                self.parts.whole(),
                self.logits.part(r.start * p..r.end * p),
                self.loss.part(r.clone()),
                self.correct.part(r.clone()),
                self.collapsed.part(r.clone()),
            )
        };
        logits.copy_from_slice(&parts[r.start * p..r.end * p]);
        for k in 1..self.pieces {
            let part = &parts[(k * n + r.start) * p..(k * n + r.end) * p];
            for (l, &v) in logits.iter_mut().zip(part) {
                *l += v;
            }
        }
        let batch = grad.then_some(n);
        for (j, row) in logits.chunks_exact_mut(p).enumerate() {
            let y = self.data.y[self.rows.start + r.start + j] as usize;
            (loss[j], correct[j], collapsed[j]) = match self.objective {
                Loss::CrossEntropy => softmax_cross_entropy(row, y, batch),
                Loss::Stablemax => stablemax_cross_entropy(row, y, batch),
                Loss::Mse => mean_squared_error(row, y, batch),
            };
        }
    }
}

/// One member's step: the pass with the gradient, then phase 3 of the module docs. The
/// two-element arrays are `[fc1, fc2]`.
struct StepJob<'a> {
    pass: Pass<'a>,
    update: &'a Update,
    filter: &'a FilterStep,
    orthograd: bool,
    dpost: Parts<'a, f32>,
    /// The gradients, filtered and projected in place.
    g: [Parts<'a, f32>; 2],
    m1: [Parts<'a, f32>; 2],
    m2: [Parts<'a, f32>; 2],
    /// The filter's memory ([`HostMember::filter`]).
    memory: [Parts<'a, f32>; 2],
    acc: [Parts<'a, f32>; 2],
    /// [`Scratch::noise`].
    noise: [Parts<'a, f32>; 2],
    /// [`Scratch::dots`] and [`Scratch::orth`].
    dots: Parts<'a, f64>,
    orth: Parts<'a, f64>,
}

impl StepJob<'_> {
    /// Piece `i`'s elements of fc1 and of fc2.
    fn ranges(&self, i: usize) -> [Range<usize>; 2] {
        let (p, pass) = (self.pass.p, &self.pass);
        let u = units(i, pass.pieces, pass.h);
        [2 * p * u.start..2 * p * u.end, u.start * p..u.end * p]
    }

    /// Phase 3 for unit piece `i`: its rows of dW2, its columns of dpost, dpre and dW1, and the
    /// filter on them; with ⊥Grad its dot products, without it the optimiser on its weights.
    ///
    /// # Safety
    /// Phase 2 is over on every thread, and only this thread touches piece `i`.
    #[inline(always)]
    unsafe fn gradient(&self, i: usize, dlogits: &[f32]) {
        let pass = &self.pass;
        let (p, n) = (pass.p, pass.rows.len());
        let u = units(i, pass.pieces, pass.h);
        let w = u.len();
        let [fc1, fc2] = self.ranges(i);
        let rows = n * u.start..n * u.end;
        // SAFETY: piece `i`'s blocks, by the caller's contract; each block is borrowed once.
        let (w2, pre, post, dpost, g1, g2) = unsafe {
            (
                pass.w2.part(fc2.clone()),
                pass.pre.part(rows.clone()),
                pass.post.part(rows.clone()),
                self.dpost.part(rows),
                self.g[0].part(fc1.clone()),
                self.g[1].part(fc2.clone()),
            )
        };
        // dW2[u, :] [w, p] = post[:, u]ᵀ [w, n] · dlogits [n, p]
        matmul(g2, (w, p, n), (post, 1, w), (dlogits, p, 1));
        // dpost[:, u] [n, w] = dlogits [n, p] · W2[u, :]ᵀ [p, w], then the activation's
        // derivative.
        matmul(dpost, (n, w, p), (dlogits, p, 1), (w2, 1, p));
        match pass.activation {
            Activation::Relu => {
                for (d, &x) in dpost.iter_mut().zip(pre.iter()) {
                    *d = if x <= 0.0 { 0.0 } else { *d };
                }
            }
            Activation::Square => {
                for (d, &x) in dpost.iter_mut().zip(pre.iter()) {
                    *d *= 2.0 * x;
                }
            }
        }
        // dW1[:, u] by scatter-add, rows in batch order.
        g1.fill(0.0);
        for (j, r) in pass.rows.clone().enumerate() {
            let d = &dpost[j * w..][..w];
            for row in [pass.data.a[r], pass.data.b[r]] {
                for (g, &d) in g1[row as usize * w..][..w].iter_mut().zip(d) {
                    *g += d;
                }
            }
        }
        for (k, range) in [fc1, fc2].into_iter().enumerate() {
            let len = [2 * p * pass.h, pass.h * p][k];
            // SAFETY: piece `i`'s parts of matrix `k`, by the caller's contract.
            let g = unsafe { self.g[k].part(range.clone()) };
            match *self.filter {
                FilterStep::None => {}
                FilterStep::Ema { .. } => {
                    // SAFETY: as above.
                    let memory = unsafe { self.memory[k].part(range.clone()) };
                    self.filter.ema(g, memory);
                }
                FilterStep::Ma { window, .. } => {
                    // SAFETY: as above; the blocks of the ring are disjoint.
                    let blocks: Vec<&mut [f32]> = (0..window)
                        .map(|b| unsafe {
                            self.memory[k].part(b * len + range.start..b * len + range.end)
                        })
                        .collect();
                    let acc = unsafe { self.acc[k].part(range.clone()) };
                    self.filter.ma(g, blocks, acc);
                }
            }
            if self.orthograd {
                // SAFETY: piece `i`'s weights (read) and its three sums.
                let (weights, dots) = unsafe {
                    (
                        [&pass.w1, &pass.w2][k].part(range.clone()),
                        self.dots.part(6 * i + 3 * k..6 * i + 3 * k + 3),
                    )
                };
                let (mut ww, mut wg, mut gg) = (0f64, 0f64, 0f64);
                for (&w, &g) in weights.iter().zip(g.iter()) {
                    let (w, g) = (w as f64, g as f64);
                    ww += w * w;
                    wg += w * g;
                    gg += g * g;
                }
                dots.copy_from_slice(&[ww, wg, gg]);
            }
        }
        if !self.orthograd {
            // SAFETY: piece `i`, by the caller's contract.
            unsafe { self.apply(i) };
        }
    }

    /// Matrix `k`'s sum over the pieces, in piece order, of sum `j` of [`Scratch::dots`]
    /// (`j < 3`) or of [`Scratch::orth`] (`j = 3`).
    ///
    /// # Safety
    /// No thread writes the buffer read (`dots` for `j < 3`, `orth` for `j = 3`) meanwhile.
    unsafe fn total(&self, k: usize, j: usize) -> f64 {
        let pieces = 0..self.pass.pieces;
        if j < 3 {
            // SAFETY: read only, by the caller's contract.
            let dots = unsafe { self.dots.whole() };
            pieces.fold(0.0, |sum, i| sum + dots[6 * i + 3 * k + j])
        } else {
            // SAFETY: as above.
            let orth = unsafe { self.orth.whole() };
            pieces.fold(0.0, |sum, i| sum + orth[2 * i + k])
        }
    }

    /// ⊥Grad's first half for piece `i`: `g ← g − proj·w` with `proj = w·g / (w·w + 1e-30)` of
    /// the whole matrix, and the piece's `‖g_⊥‖²`.
    ///
    /// # Safety
    /// Every piece's [`StepJob::gradient`] is over, and only this thread touches piece `i`.
    unsafe fn orthogonalise(&self, i: usize) {
        for (k, range) in self.ranges(i).into_iter().enumerate() {
            // SAFETY: the dot products are complete and only read; piece `i`'s parts.
            let (proj, weights, g, orth) = unsafe {
                let w_norm_sq = self.total(k, 0) as f32 + 1e-30;
                (
                    self.total(k, 1) as f32 / w_norm_sq,
                    [&self.pass.w1, &self.pass.w2][k].part(range.clone()),
                    self.g[k].part(range),
                    self.orth.part(2 * i + k..2 * i + k + 1),
                )
            };
            let mut sum = 0f64;
            for (g, &w) in g.iter_mut().zip(weights.iter()) {
                *g -= proj * w;
                sum += *g as f64 * *g as f64;
            }
            orth[0] = sum;
        }
    }

    /// ⊥Grad's second half for piece `i`, `g_⊥ ← g_⊥ · ‖g‖ / (‖g_⊥‖ + 1e-30)`, then the
    /// optimiser.
    ///
    /// # Safety
    /// Every piece's [`StepJob::orthogonalise`] is over, and only this thread touches piece `i`.
    unsafe fn rescale(&self, i: usize) {
        for (k, range) in self.ranges(i).into_iter().enumerate() {
            // SAFETY: the sums are complete and only read; piece `i`'s gradient.
            let (g_norm, orth_norm, g) = unsafe {
                (
                    self.total(k, 2).sqrt() as f32,
                    self.total(k, 3).sqrt() as f32 + 1e-30,
                    self.g[k].part(range),
                )
            };
            let scale = g_norm / orth_norm;
            for g in g.iter_mut() {
                *g *= scale;
            }
        }
        // SAFETY: piece `i`, by the caller's contract.
        unsafe { self.apply(i) };
    }

    /// The optimiser on piece `i`'s weights.
    ///
    /// # Safety
    /// Only this thread touches piece `i`, and its gradient is final.
    #[inline(always)]
    unsafe fn apply(&self, i: usize) {
        for (k, range) in self.ranges(i).into_iter().enumerate() {
            // SAFETY: piece `i`'s parts, by the caller's contract.
            let (w, g, m1, m2) = unsafe {
                (
                    [&self.pass.w1, &self.pass.w2][k].part(range.clone()),
                    self.g[k].part(range.clone()),
                    self.m1[k].part(range.clone()),
                    self.m2[k].part(range.clone()),
                )
            };
            if let Update::Sgld(sgld) = self.update {
                // SAFETY: piece `i`'s noise, by the caller's contract.
                let noise = unsafe { self.noise[k].part(range) };
                self.piece_noise(sgld, i, k, noise);
                sgld_update(sgld, w, g, m1, noise);
            } else {
                self.update.apply(w, g, m1, m2);
            }
        }
    }

    /// SGLD's noise for piece `i` of matrix `k`, in the host layout: the weights' numbers in
    /// Burn's layout ([`super::noise`]) are runs of the piece's units in each row of fc1
    /// `[2p, h]`, and one run of its rows of fc2 `[h, p]`.
    #[inline(always)]
    fn piece_noise(&self, sgld: &Sgld, i: usize, k: usize, noise: &mut [f32]) {
        let (p, h) = (self.pass.p, self.pass.h);
        let u = units(i, self.pass.pieces, h);
        let (key, step) = (sgld.key, sgld.step);
        if k == 0 {
            let runs = (u.start as u64, h as u64, u.len());
            fill_normal_runs(key, step, runs, noise);
        } else {
            fill_normals(key, step, (2 * p * h + u.start * p) as u64, noise);
        }
    }
}

/// The work of one thread of a team, compiled for each vector unit by [`run_widest`].
trait TeamJob: Sync {
    /// This thread's part of the job.
    fn run(&self, team: &Team);
}

impl TeamJob for StepJob<'_> {
    #[inline(always)]
    fn run(&self, team: &Team) {
        let pass = &self.pass;
        // SAFETY (all three phases): `Team::share` gives each piece to one thread, and the
        // barriers order the phases.
        for i in team.share(pass.pieces) {
            unsafe { pass.hidden(i) };
        }
        team.barrier();
        for i in team.share(pass.rows.len().div_ceil(ROWS_PER_PIECE)) {
            unsafe { pass.loss(i, true) };
        }
        team.barrier();
        // SAFETY: the logits are only read in phase 3.
        let dlogits = unsafe { pass.logits.whole() };
        for i in team.share(pass.pieces) {
            unsafe { self.gradient(i, dlogits) };
        }
        if self.orthograd {
            team.barrier();
            for i in team.share(pass.pieces) {
                unsafe { self.orthogonalise(i) };
            }
            team.barrier();
            for i in team.share(pass.pieces) {
                unsafe { self.rescale(i) };
            }
        }
    }
}

/// One member's forward pass over validation rows.
struct ValidateJob<'a>(&'a Pass<'a>);

impl TeamJob for ValidateJob<'_> {
    #[inline(always)]
    fn run(&self, team: &Team) {
        let pass = self.0;
        // SAFETY: as for `StepJob`.
        for i in team.share(pass.pieces) {
            unsafe { pass.hidden(i) };
        }
        team.barrier();
        for i in team.share(pass.rows.len().div_ceil(ROWS_PER_PIECE)) {
            unsafe { pass.loss(i, false) };
        }
    }
}

/// Runs a thread's part of `job` compiled for the widest vector unit the CPU has: AVX-512,
/// AVX2 or the baseline (runtime detection; the same results, see the module docs).
fn run_widest<J: TeamJob>(job: &J, team: &Team) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<J: TeamJob>(job: &J, team: &Team) {
            job.run(team);
        }
        #[target_feature(enable = "avx2")]
        fn avx2<J: TeamJob>(job: &J, team: &Team) {
            job.run(team);
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { avx512(job, team) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(job, team) };
        }
    }
    job.run(team);
}

/// The index of the first element of `row` equal to `max`, as `argmax` takes it: the first
/// block of 16 that holds it (a vectorised test), then its place in the block.
#[inline(always)]
fn first_max(row: &[f32], max: f32) -> usize {
    row.chunks(16)
        .enumerate()
        .find(|(_, block)| block.iter().fold(false, |seen, &v| seen | (v == max)))
        .and_then(|(i, block)| Some(i * 16 + block.iter().position(|&v| v == max)?))
        .unwrap_or(0)
}

/// A row's loss, whether its first maximum is at the label, and whether its `f32` softmax has
/// collapsed to one-hot ([`PassSums::collapsed`]).
type RowResult = (f64, bool, bool);

/// `Σ exp(v)` of a row already shifted by its maximum, in eight fixed lanes (lane `l` adds
/// elements `l, l + 8, ...` in order; vectorisable, the same order on every run and machine).
#[inline(always)]
fn lane_sum(row: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0f32; 8];
    for (i, v) in row.enumerate() {
        lanes[i % 8] += v;
    }
    lanes.iter().sum::<f32>()
}

/// Whether the `f32` softmax of `row` (maximum `max`) is exactly one-hot: `Σ exp(x − max) == 1`,
/// summed as [`softmax_cross_entropy`] sums it.
#[inline(always)]
fn softmax_collapsed(row: &[f32], max: f32) -> bool {
    lane_sum(row.iter().map(|&v| exp(v - max))) == 1.0
}

/// Softmax cross-entropy of one row of logits with label `y`: the loss, whether the first
/// maximum is at `y`, whether the softmax collapsed. With `batch = Some(n)` the row becomes the
/// gradient of the mean loss over `n` rows.
#[inline(always)]
fn softmax_cross_entropy(row: &mut [f32], y: usize, batch: Option<usize>) -> RowResult {
    let max = max_of(row);
    let best = first_max(row, max);
    let target = row[y] - max;
    // row ← exp(row - max), then summed in eight fixed lanes (lane l adds elements l, l + 8,
    // ... in order; vectorisable, the same order on every run and every machine).
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let mut lanes = [0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += v;
    }
    let sum = lanes.iter().sum::<f32>();
    if let Some(n) = batch {
        let scale = 1.0 / n as f32;
        let inv = scale / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
        row[y] -= scale;
    }
    ((sum.ln() - target) as f64, best == y, sum == 1.0)
}

/// StableMax cross-entropy of one row (Prieto et al.'s `stablemax_cross_entropy`, in `f64` as
/// they compute it): `s(x) = x + 1` for `x ≥ 0`, `1 / (1 − x + 1e-30)` below, the loss
/// `−ln(s(x_y) / Σ s(x))`, and whether the first maximum is at `y`. With `batch = Some(n)` the
/// row becomes the gradient of the mean loss over `n` rows, rounded to `f32` once.
#[inline(always)]
fn stablemax_cross_entropy(row: &mut [f32], y: usize, batch: Option<usize>) -> RowResult {
    let max = max_of(row);
    let (best, collapsed) = (first_max(row, max), softmax_collapsed(row, max));
    let s = |x: f64| {
        if x < 0.0 {
            1.0 / (1.0 - x + 1e-30)
        } else {
            x + 1.0
        }
    };
    let sum = row.iter().fold(0f64, |sum, &x| sum + s(x as f64));
    let s_y = s(row[y] as f64);
    if let Some(n) = batch {
        // d/dx_j of −ln(s_y / S) / n = (1/S − [j = y]/s_y) · s'(x_j) / n.
        let scale = 1.0 / n as f64;
        for (j, v) in row.iter_mut().enumerate() {
            let x = *v as f64;
            let slope = if x < 0.0 {
                let d = 1.0 - x + 1e-30;
                1.0 / (d * d)
            } else {
                1.0
            };
            let by_s = if j == y {
                1.0 / sum - 1.0 / s_y
            } else {
                1.0 / sum
            };
            *v = (by_s * slope * scale) as f32;
        }
    }
    (-(s_y / sum).ln(), best == y, collapsed)
}

/// Mean squared error of one row against the one-hot label `y` (PyTorch's `mse_loss`): the
/// row's `Σ (x − onehot)² / p` and whether the first maximum is at `y`. With `batch = Some(n)`
/// the row becomes the gradient of the mean over `n` rows and `p` classes, `2(x − onehot) /
/// (n·p)`.
#[inline(always)]
fn mean_squared_error(row: &mut [f32], y: usize, batch: Option<usize>) -> RowResult {
    let max = max_of(row);
    let (best, collapsed) = (first_max(row, max), softmax_collapsed(row, max));
    let p = row.len();
    let mut sum = 0f64;
    for (j, &x) in row.iter().enumerate() {
        let d = x - if j == y { 1.0 } else { 0.0 };
        sum += d as f64 * d as f64;
    }
    if let Some(n) = batch {
        let norm = (2.0 / (n * p) as f64) as f32;
        for (j, v) in row.iter_mut().enumerate() {
            *v = norm * (*v - if j == y { 1.0 } else { 0.0 });
        }
    }
    (sum / p as f64, best == y, collapsed)
}

/// The largest element of a non-empty row (NaNs ignored), in sixteen lanes so it vectorises;
/// the maximum does not depend on the order.
#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let mut lanes = [row[0]; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v);
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane = lane.max(v);
    }
    lanes.iter().fold(row[0], |m, &v| m.max(v))
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
                    .map(|m| EpochSums {
                        weight_sq: m
                            .w1
                            .iter()
                            .chain(&m.w2)
                            .fold(0f64, |sum, &w| sum + w as f64 * w as f64),
                        ..std::mem::take(&mut m.sums)
                    })
                    .collect()
            }

            fn stack_take_train_sums(stack: &mut HostStack) -> Vec<PassSums> {
                stack
                    .members
                    .iter_mut()
                    .map(|m| std::mem::take(&mut m.sums.train))
                    .collect()
            }

            fn stack_weights(stack: &HostStack) -> Vec<MlpWeights> {
                stack
                    .members
                    .iter()
                    .map(|m| {
                        let (fc1, fc2) = stack.to_torch(&m.w1, &m.w2);
                        MlpWeights::new(stack.p, stack.h, fc1, fc2)
                            .expect("a stack's weights have consistent shapes")
                    })
                    .collect()
            }

            fn stack_optimizer(stack: &HostStack) -> Vec<OptimizerState> {
                stack
                    .members
                    .iter()
                    .map(|m| {
                        let (fc1_m1, fc2_m1) = stack.to_torch(&m.m1_w1, &m.m1_w2);
                        let (fc1_m2, fc2_m2) = stack.to_torch(&m.m2_w1, &m.m2_w2);
                        OptimizerState {
                            step: stack.step,
                            fc1_m1,
                            fc1_m2,
                            fc2_m1,
                            fc2_m2,
                            filter: stack.filter_of(m),
                        }
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

impl HostStack {
    /// A member's filter memory in PyTorch's orientation, oldest first.
    fn filter_of(&self, m: &HostMember) -> FilterState {
        let (n1, n2) = (2 * self.p * self.h, self.h * self.p);
        let blocks = m.method.filter_capacity().max(1);
        let mut state = FilterState {
            gradients: m.held,
            ..FilterState::default()
        };
        for j in 0..m.held {
            let b = (m.oldest + j) % blocks;
            let (fc1, fc2) = self.to_torch(
                &m.filter[0][b * n1..(b + 1) * n1],
                &m.filter[1][b * n2..(b + 1) * n2],
            );
            state.fc1.extend(fc1);
            state.fc2.extend(fc2);
        }
        state
    }

    /// fc1- and fc2-shaped host values in PyTorch's orientation.
    fn to_torch(&self, fc1: &[f32], fc2: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (p, h) = (self.p, self.h);
        (
            fc1_from_pieces(fc1, (p, h), self.pieces),
            crate::model::transpose(fc2, h, p),
        )
    }
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

/// One step's optimiser factors for one member.
enum Update {
    AdamW(Adam),
    Sgd(Sgd),
    /// Applied to the whole matrices after the team's work ([`Muon::step`]).
    Muon(Muon),
    Sgld(Sgld),
}

impl Update {
    fn new(method: &Method, hyper: &Hyper, step: u64) -> Self {
        match method.optimizer {
            Optimizer::AdamW { .. } => {
                let betas = betas(method);
                Update::AdamW(Adam::new(hyper, betas, bias_corrections(step, betas)))
            }
            Optimizer::Sgd { momentum, nesterov } => Update::Sgd(Sgd {
                lr: hyper.lr as f32,
                weight_decay: hyper.weight_decay as f32,
                momentum: momentum as f32,
                nesterov,
            }),
            Optimizer::Muon { momentum } => Update::Muon(Muon {
                lr: hyper.lr,
                decay: hyper.factors().1,
                momentum: momentum as f32,
            }),
            Optimizer::Sgld { .. } => {
                Update::Sgld(Sgld::of(method, hyper, step).expect("an SGLD member"))
            }
        }
    }

    /// The update of weights `w` from their final gradient `g`, moments `m1` and `m2`.
    #[inline(always)]
    fn apply(&self, w: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32]) {
        match self {
            Update::AdamW(adam) => adam.update(w, g, m1, m2),
            Update::Sgd(sgd) => sgd.update(w, g, m1),
            Update::Muon(_) | Update::Sgld(_) => {}
        }
    }
}

/// One AdamW step's factors for one member.
struct Adam {
    beta_1: f32,
    beta_2: f32,
    /// `1 - lr·wd`.
    decay: f32,
    epsilon: f32,
    /// `lr / (1 - β₁ᵗ)`.
    step_size: f32,
    /// `1 / √(1 - β₂ᵗ)`.
    inv_sqrt_bias_2: f32,
}

impl Adam {
    fn new(hyper: &Hyper, (beta_1, beta_2): (f32, f32), (bias_1, bias_2): (f32, f32)) -> Self {
        let (lr, decay, epsilon) = hyper.factors();
        Self {
            beta_1,
            beta_2,
            decay,
            epsilon,
            step_size: lr / bias_1,
            inv_sqrt_bias_2: 1.0 / bias_2.sqrt(),
        }
    }

    /// AdamW element by element, arranged as PyTorch's `torch.optim.AdamW` arranges it (one
    /// division and one square root per weight): `w ← w·(1 − lr·wd) − step_size · m / d` with
    /// `d = √v / √(1 − β₂ᵗ) + ε`.
    #[inline(always)]
    fn update(&self, w: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32]) {
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        for (((w, &g), m1), m2) in w.iter_mut().zip(g).zip(m1.iter_mut()).zip(m2.iter_mut()) {
            *m1 = *m1 * b1 + g * f1;
            *m2 = *m2 * b2 + g * g * f2;
            let denominator = m2.sqrt() * self.inv_sqrt_bias_2 + self.epsilon;
            *w = *w * self.decay - self.step_size * (*m1 / denominator);
        }
    }
}

/// One SGD step's factors for one member.
struct Sgd {
    lr: f32,
    weight_decay: f32,
    momentum: f32,
    nesterov: bool,
}

impl Sgd {
    /// `torch.optim.SGD` element by element (no dampening): `g ← g + wd·w`, `b ← μ·b + g` (the
    /// first step's `b = g`: `b` starts at zero), `g ← g + μ·b` with Nesterov or `g ← b`, then
    /// `w ← w − lr·g`.
    #[inline(always)]
    fn update(&self, w: &mut [f32], g: &[f32], buffer: &mut [f32]) {
        let (lr, wd, mu) = (self.lr, self.weight_decay, self.momentum);
        for ((w, &g), b) in w.iter_mut().zip(g).zip(buffer.iter_mut()) {
            let g = g + wd * *w;
            *b = mu * *b + g;
            let g = if self.nesterov { g + mu * *b } else { *b };
            *w -= lr * g;
        }
    }
}

/// devinterp's `SGMCMC.sgld` step element by element, in its order: `d = g·nβ + (w·λ +
/// (w − w*)·γ)`, `w ← w + (−ε/2)·d`, `w ← w + √ε·ξ`.
#[inline(always)]
fn sgld_update(sgld: &Sgld, w: &mut [f32], g: &[f32], centre: &[f32], noise: &[f32]) {
    for (((w, &g), &c), &xi) in w.iter_mut().zip(g).zip(centre).zip(noise) {
        let prior = *w * sgld.weight_decay + (*w - c) * sgld.localization;
        let d = g * sgld.nbeta + prior;
        *w += sgld.drift * d;
        *w += sgld.diffusion * xi;
    }
}

/// One Muon step's factors for one member.
struct Muon {
    lr: f64,
    /// `1 − lr·wd`.
    decay: f32,
    momentum: f32,
}

impl Muon {
    /// Burn 0.21's `Muon` on member `m`'s two matrices from their final gradients `g` (in the
    /// host layouts): the Nesterov momentum element by element, [`newton_schulz`] on each whole
    /// matrix (fc1 as `[h, 2p]`, the transpose of Burn's shape, which gives the transposed
    /// result; fc2 `[h, p]`; one matrix per thread of `pool`, each computed whole by one thread,
    /// so the thread count changes no bit), then `w ← w·decay − lr·ratio · X` with the ratio of
    /// Burn's shape.
    fn step(
        &self,
        m: &mut HostMember,
        g: [&[f32]; 2],
        (p, h): (usize, usize),
        pieces: usize,
        pool: &Pool,
    ) {
        let mu = self.momentum;
        let momentum = |g: &[f32], buffer: &mut [f32]| -> Vec<f32> {
            g.iter()
                .zip(buffer.iter_mut())
                .map(|(&g, b)| {
                    *b = *b * mu + g;
                    *b * mu + g
                })
                .collect()
        };
        // fc1's pieces hold column blocks of Burn's [2p, h]; the momentum is element-wise, so it
        // runs in the host layout and only its result is gathered, as PyTorch's [h, 2p]: the
        // transpose of Burn's, which `newton_schulz` takes as it is (it orients a matrix itself).
        let inputs = [
            (
                fc1_from_pieces(&momentum(g[0], &mut m.m1_w1), (p, h), pieces),
                (h, 2 * p),
            ),
            (momentum(g[1], &mut m.m1_w2), (h, p)),
        ];
        let outputs: [Mutex<Vec<f32>>; 2] = Default::default();
        pool.run(&|team: &Team| {
            for i in team.share(2) {
                let (u, (rows, cols)) = &inputs[i];
                *outputs[i].lock().expect("no panic while held") = newton_schulz(u, *rows, *cols);
            }
        });
        let [x1, x2] = outputs.map(|x| x.into_inner().expect("no panic while held"));
        let x1 = fc1_to_pieces(&x1, (p, h), pieces);
        // The learning-rate factors of Burn's shapes.
        for (w, x, (rows, cols)) in [(&mut m.w1, x1, (2 * p, h)), (&mut m.w2, x2, (h, p))] {
            let step = (self.lr * muon_lr_ratio(rows, cols)) as f32;
            for (w, &x) in w.iter_mut().zip(&x) {
                *w = *w * self.decay - x * step;
            }
        }
    }
}

/// Burn 0.21's `zeropower_via_newtonschulz` of a row-major `[rows, cols]` matrix `u`: `X = u`
/// (or `uᵀ` when `rows > cols`) over `max(‖u‖_F, 1e-7)`, then [`MUON_NS_STEPS`] steps of
/// `A = X·Xᵀ`, `X ← a·X + (b·A + c·A²)·X`; returned in `u`'s shape. So the result for `uᵀ` is
/// the transpose of the result for `u`.
fn newton_schulz(u: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let tall = rows > cols;
    let (r, c) = if tall { (cols, rows) } else { (rows, cols) };
    let norm =
        (u.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32).max(MUON_EPSILON);
    let mut x: Vec<f32> = if tall {
        crate::model::transpose(u, rows, cols)
    } else {
        u.to_vec()
    };
    x.iter_mut().for_each(|v| *v /= norm);
    let (a, b, cc) = MUON_NS_COEFFICIENTS;
    let (mut gram, mut square, mut bx) = (vec![0.0; r * r], vec![0.0; r * r], vec![0.0; r * c]);
    for _ in 0..MUON_NS_STEPS {
        matmul(&mut gram, (r, r, c), (&x, c, 1), (&x, 1, c));
        matmul(&mut square, (r, r, r), (&gram, r, 1), (&gram, r, 1));
        for (g, &s) in gram.iter_mut().zip(&square) {
            *g = *g * b + s * cc;
        }
        matmul(&mut bx, (r, c, r), (&gram, r, 1), (&x, c, 1));
        for (x, &y) in x.iter_mut().zip(&bx) {
            *x = *x * a + y;
        }
    }
    if tall {
        crate::model::transpose(&x, r, c)
    } else {
        x
    }
}

/// One step's Grokfast filter for one member: [`Grokfast`] with the state of its memory.
#[derive(Debug, Clone, Copy)]
enum FilterStep {
    None,
    /// `gradfilter_ema`; `first`: the EMA starts as this gradient.
    Ema {
        alpha: f32,
        one_minus_alpha: f32,
        lambda: f32,
        first: bool,
    },
    /// `gradfilter_ma`: the gradient goes into block `slot`; with `held` gradients after it,
    /// oldest in block `oldest`, the mean is taken once `held == window`.
    Ma {
        window: usize,
        lambda: f32,
        slot: usize,
        oldest: usize,
        held: usize,
    },
}

impl FilterStep {
    /// The filter of `method` whose memory holds `held` gradients, the oldest in ring block
    /// `oldest`.
    fn new(method: &Method, held: usize, oldest: usize) -> Self {
        match method.grokfast {
            None => FilterStep::None,
            Some(Grokfast::Ema { alpha, lambda }) => FilterStep::Ema {
                alpha: alpha as f32,
                // Python's `1 - alpha`, in double, then rounded as torch rounds the scalar.
                one_minus_alpha: (1.0 - alpha) as f32,
                lambda: lambda as f32,
                first: held == 0,
            },
            Some(Grokfast::Ma { window, lambda }) => {
                let (slot, oldest, held) = ma_push(window, held, oldest);
                FilterStep::Ma {
                    window,
                    lambda: lambda as f32,
                    slot,
                    oldest,
                    held,
                }
            }
        }
    }

    /// The memory's `(held, oldest)` after this step.
    fn after(&self) -> (usize, usize) {
        match *self {
            FilterStep::None => (0, 0),
            FilterStep::Ema { .. } => (1, 0),
            FilterStep::Ma { oldest, held, .. } => (held, oldest),
        }
    }

    /// `gradfilter_ema` on a piece: `e ← e·α + g·(1 − α)` (or `e ← g` first), `g ← g + e·λ`.
    #[inline(always)]
    fn ema(&self, g: &mut [f32], memory: &mut [f32]) {
        let FilterStep::Ema {
            alpha,
            one_minus_alpha,
            lambda,
            first,
        } = *self
        else {
            return;
        };
        for (g, e) in g.iter_mut().zip(memory.iter_mut()) {
            *e = if first {
                *g
            } else {
                *e * alpha + *g * one_minus_alpha
            };
            *g += *e * lambda;
        }
    }

    /// `gradfilter_ma` on a piece, over the ring's `blocks` (this piece's part of each): the
    /// gradient is stored, and once the window is full `g ← g + λ·(Σ oldest→newest) / window`
    /// (Python's `sum` of the deque, then `/ len`).
    #[inline(always)]
    fn ma(&self, g: &mut [f32], mut blocks: Vec<&mut [f32]>, acc: &mut [f32]) {
        let FilterStep::Ma {
            window,
            lambda,
            slot,
            oldest,
            held,
        } = *self
        else {
            return;
        };
        blocks[slot].copy_from_slice(g);
        if held < window {
            return;
        }
        acc.copy_from_slice(&blocks[oldest][..]);
        for j in 1..window {
            for (a, &v) in acc.iter_mut().zip(blocks[(oldest + j) % window].iter()) {
                *a += v;
            }
        }
        let len = window as f32;
        for (g, &a) in g.iter_mut().zip(acc.iter()) {
            *g += a / len * lambda;
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
    use crate::{
        data::{ModularDataset, Split},
        model::{transpose, MlpConfig},
        step::MemberSetup,
    };

    #[test]
    fn fc1_pieces_round_trip() {
        let (p, h): (usize, usize) = (5, 131);
        let fc1: Vec<f32> = (0..2 * p * h).map(|v| v as f32).collect();
        let pieces = h.div_ceil(MAX_UNITS_PER_PIECE);
        assert_eq!(pieces, 3);
        let blocks = fc1_to_pieces(&fc1, (p, h), pieces);
        // Piece 1 holds units 43..87; its row 2 starts with unit 43's weight from input 2.
        assert_eq!(blocks[2 * p * 43 + 2 * 44], fc1[43 * 2 * p + 2]);
        assert_eq!(fc1_from_pieces(&blocks, (p, h), pieces), fc1);
    }

    /// Trains two members of `method` for three epochs (with a short last batch) on `threads`
    /// threads.
    fn train_on(
        threads: usize,
        (p, h): (usize, usize),
        method: Method,
    ) -> (Vec<MlpWeights>, Vec<EpochSums>) {
        let members = (1..=2)
            .map(|seed| {
                let data = ModularDataset::new(p, 0.6, seed).unwrap();
                MemberSetup {
                    weights: MlpConfig::new()
                        .with_p(p)
                        .with_d_hidden(h)
                        .init_weights(seed),
                    optimizer: None,
                    hyper: Hyper {
                        lr: 3e-3 * seed as f64,
                        weight_decay: 0.5,
                        epsilon: 1e-8,
                    },
                    method,
                    train: Rows::new(&data, Split::Train),
                    val: Rows::new(&data, Split::Val),
                }
            })
            .collect();
        let mut stack = HostStack::new(StackSetup {
            p,
            d_hidden: h,
            members,
            threads,
        });
        let n = stack.members[0].train.len();
        let mut sums = Vec::new();
        for _ in 0..3 {
            for begin in (0..n).step_by(40) {
                stack.step(begin..(begin + 40).min(n));
            }
            stack.validate();
            sums.extend(
                stack
                    .members
                    .iter_mut()
                    .map(|m| std::mem::take(&mut m.sums)),
            );
        }
        let weights = stack
            .members
            .iter()
            .map(|m| {
                let (fc1, fc2) = stack.to_torch(&m.w1, &m.w2);
                MlpWeights::new(p, h, fc1, fc2).unwrap()
            })
            .collect();
        (weights, sums)
    }

    #[test]
    fn the_thread_count_does_not_change_a_bit() {
        // 131 hidden units: three pieces, so threads own uneven runs of them; the second method
        // sums ⊥Grad's norms across the pieces and keeps a filter's window.
        let shape = (13, 131);
        let other = Method {
            loss: crate::step::Loss::Stablemax,
            activation: Activation::Square,
            grokfast: Some(Grokfast::Ma {
                window: 3,
                lambda: 2.0,
            }),
            orthograd: true,
            optimizer: Optimizer::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
        };
        let (one, one_sums) = train_on(1, shape, Method::default());
        assert!(one_sums.iter().all(|s| s.train.loss_sum.is_finite()));
        assert!(one_sums.iter().map(|s| s.val.correct).sum::<usize>() > 0);
        let (other_one, other_sums) = train_on(1, shape, other);
        assert!(other_sums.iter().all(|s| s.train.loss_sum.is_finite()));
        let muon = Method {
            optimizer: Optimizer::Muon { momentum: 0.95 },
            ..other
        };
        let (muon_one, muon_sums) = train_on(1, shape, muon);
        // SGLD draws each piece's noise by the weights' numbers, not by thread.
        let sgld = Method {
            optimizer: Optimizer::Sgld {
                nbeta: 5.0,
                localization: 10.0,
                seed: 4,
                chain: 1,
            },
            ..Method::default()
        };
        let (sgld_one, sgld_sums) = train_on(1, shape, sgld);
        assert!(sgld_sums.iter().all(|s| s.train.loss_sum.is_finite()));
        for threads in [2, 3] {
            let (many, many_sums) = train_on(threads, shape, sgld);
            assert_eq!(
                (many, many_sums),
                (sgld_one.clone(), sgld_sums.clone()),
                "SGLD on {threads} threads"
            );
            let (many, many_sums) = train_on(threads, shape, muon);
            assert_eq!(
                (many, many_sums),
                (muon_one.clone(), muon_sums.clone()),
                "Muon on {threads} threads"
            );
            let (many, many_sums) = train_on(threads, shape, Method::default());
            assert_eq!(many, one, "weights on {threads} threads");
            assert_eq!(many_sums, one_sums, "sums on {threads} threads");
            let (many, many_sums) = train_on(threads, shape, other);
            assert_eq!(many, other_one, "{other:?} weights on {threads} threads");
            assert_eq!(many_sums, other_sums, "{other:?} sums on {threads} threads");
        }
        // And the weights moved: the runs are not trivially equal.
        let start = MlpConfig::new()
            .with_p(13)
            .with_d_hidden(131)
            .init_weights(1);
        assert_ne!(one[0].fc2(), start.fc2());
    }

    /// Muon's Newton–Schulz steps take a matrix near its orthogonal polar factor: the singular
    /// values of the result lie near 1 (Jordan et al.'s coefficients leave them in about
    /// [0.7, 1.2]), in either orientation, and a zero gradient stays zero.
    #[test]
    fn newton_schulz_orthogonalises_wide_and_tall_matrices() {
        let (rows, cols) = (6, 17);
        let u: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let wide = newton_schulz(&u, rows, cols);
        // X·Xᵀ [rows, rows] near the identity.
        let gram = naive(rows, rows, cols, &wide, &transpose(&wide, rows, cols));
        for i in 0..rows {
            for j in 0..rows {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (gram[i * rows + j] - want).abs() < 0.45,
                    "{i},{j}: {}",
                    gram[i * rows + j]
                );
            }
        }
        // The tall orientation is the transpose's result, transposed.
        let tall = newton_schulz(&transpose(&u, rows, cols), cols, rows);
        assert_eq!(tall, transpose(&wide, rows, cols));
        assert_eq!(newton_schulz(&[0.0; 6], 2, 3), vec![0.0; 6]);
        // Scale-free: the norm is divided out.
        let scaled: Vec<f32> = u.iter().map(|v| v * 1024.0).collect();
        assert_eq!(newton_schulz(&scaled, rows, cols), wide);
    }

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
        let _serial = crate::panics::serial_panics();
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

//! The training step and evaluation of K stacked networks as one backend operation:
//! [`StepBackend`].
//!
//! This is Burn's backend-extension pattern (Burn 0.21's `examples/custom-cubecl-kernel`): a
//! trait over [`Backend`] declares the operation, each backend family implements it with its own
//! code, and everything above it ([`Ensemble`](crate::train::Ensemble),
//! [`Trainer`](crate::train::Trainer), sweeps) stays generic. Three implementations:
//!
//! | backend | implementation | module |
//! |---|---|---|
//! | `Flex`, `NdArray` | host code on every core: gathers, `gemm`, runtime-detected AVX-512/AVX2 loops | `host` |
//! | `CubeBackend<R, f32, ..>` and `Fusion<CubeBackend<..>>` (wgpu, vulkan, cuda) | `#[cube]` kernels, nine launches a step for all K members | `cube` |
//! | `Autodiff<B>`, any `B` | Burn's tensor operations and autodiff: the reference | `reference` |
//!
//! Every implementation computes, for each member `k` with its own training rows and its own
//! [`Method`], the step on a batch of `n` rows with inputs `(a, p + b)` and labels `y`:
//! - `pre = W1[a] + W1[p + b]` (fc1 as a gather, or a one-hot product: the same values),
//!   `post = σ(pre)` with σ the member's [`Activation`] (the notebook's ReLU, or `x²`),
//!   `logits = post · W2`;
//! - the member's [`Loss`] (softmax cross-entropy by default), averaged over the batch; argmax
//!   (first maximum) for accuracy;
//! - its gradient; the member's Grokfast filter ([`Grokfast`]) and ⊥Grad, in that order; then
//!   its [`Optimizer`]: AdamW as PyTorch's `torch.optim.AdamW` (and Burn's `AdamW`) does it,
//!   `w ← w·(1 − lr·wd) − lr · m̂ / (√v̂ + ε)` with bias-corrected moments and the member's β,
//!   SGD as `torch.optim.SGD` does it, Muon, or SGLD's Langevin step with the noise of
//!   [`noise`]; each with the member's own lr, weight decay and ε ([`Hyper`]).
//!
//! The loss and accuracy sums of an epoch stay on the device and are read once, by
//! [`StepBackend::stack_take_sums`].
//!
//! # Layout
//! On every backend a member's weights are kept in Burn's [`Linear`](burn::nn::Linear) layout,
//! fc1 `[2p, d_hidden]` and fc2 `[d_hidden, p]`; everything that crosses into or out of a stack
//! ([`MemberSetup`], [`StepBackend::stack_weights`], [`StepBackend::stack_optimizer`]) is in
//! PyTorch's orientation, like [`MlpWeights`].
//!
//! # Example
//! One step and a validation pass of a stack of one on the host implementation, without the
//! training loop ([`Ensemble`](crate::train::Ensemble) is that loop):
//! ```
//! use burn::backend::Flex;
//! use grokking::{
//!     step::{Hyper, MemberSetup, Method, Rows, StackSetup, StepBackend},
//!     MlpConfig, ModularDataset, Split,
//! };
//! let data = ModularDataset::new(7, 0.8, 1)?; // 39 training rows, 10 validation rows
//! let member = MemberSetup {
//!     weights: MlpConfig::new().with_p(7).with_d_hidden(8).init_weights(1),
//!     optimizer: None,
//!     hyper: Hyper { lr: 1e-2, weight_decay: 0.5, epsilon: 1e-8 },
//!     method: Method::default(),
//!     train: Rows::new(&data, Split::Train),
//!     val: Rows::new(&data, Split::Val),
//! };
//! let setup = StackSetup { p: 7, d_hidden: 8, members: vec![member], threads: 0 };
//! let mut stack = Flex::stack_init(setup, &Default::default());
//! Flex::stack_step(&mut stack, 0..16);
//! Flex::stack_validate(&mut stack);
//! let sums = Flex::stack_take_sums(&mut stack);
//! assert!(sums[0].train.loss_sum > 0.0 && sums[0].val.correct <= 10);
//! assert_eq!(Flex::stack_optimizer(&stack)[0].step, 1);
//! # Ok::<(), grokking::Error>(())
//! ```

mod host;
mod method;
pub mod noise;
mod pool;
mod reference;

pub use host::{host_threads, MAX_UNITS_PER_PIECE, ROWS_PER_PIECE};
pub use method::{
    muon_lr_ratio, Activation, Grokfast, Loss, Method, Optimizer, GROKFAST_EMA_LAMBDA,
    GROKFAST_MA_LAMBDA, MUON_EPSILON, MUON_MOMENTUM, MUON_NS_COEFFICIENTS, MUON_NS_STEPS,
};
pub(crate) use reference::hits_and_collapsed;

#[cfg(any(feature = "wgpu", feature = "vulkan", feature = "cuda"))]
mod cube;

use std::ops::Range;

use burn::tensor::backend::Backend;

use crate::{
    data::{ModularDataset, Split},
    model::{transpose, MlpWeights},
};

/// The optimiser's state for the two weight matrices, on the host, in PyTorch's orientation
/// (the same as [`MlpWeights`]): what a checkpoint needs to resume training. AdamW uses both
/// moments; SGD and Muon keep their momentum buffer in the first moments and SGLD the weights
/// it samples around, each leaving the second at zero.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
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
    /// The Grokfast filter's memory (empty without a filter).
    pub filter: FilterState,
}

/// What a Grokfast filter remembers, in PyTorch's orientation: the EMA (one gradient-shaped
/// value), or the MA's window of past gradients, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterState {
    /// The number of gradient-shaped values held ([`Method::filter_gradients`]).
    pub gradients: usize,
    /// `gradients` blocks of fc1's shape `[d_hidden, 2p]`, one after another.
    pub fc1: Vec<f32>,
    /// `gradients` blocks of fc2's shape `[p, d_hidden]`, one after another.
    pub fc2: Vec<f32>,
}

impl OptimizerState {
    /// The state before the first step: zero moments and an empty filter for a network of
    /// modulus `p` and width `d_hidden`.
    pub fn zeros(p: usize, d_hidden: usize) -> Self {
        let (n1, n2) = (2 * p * d_hidden, p * d_hidden);
        Self {
            step: 0,
            fc1_m1: vec![0.0; n1],
            fc1_m2: vec![0.0; n1],
            fc2_m1: vec![0.0; n2],
            fc2_m2: vec![0.0; n2],
            filter: FilterState::default(),
        }
    }
}

/// One member's optimiser hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW epsilon.
    pub epsilon: f64,
}

impl Hyper {
    /// `(lr, 1 − lr·wd, ε)` in `f32`, as every implementation applies them: `lr` and `wd` are
    /// rounded to `f32` first and their product is taken in `f64`, as Burn's `AdamW` does.
    pub fn factors(&self) -> (f32, f32, f32) {
        let (lr, wd) = (self.lr as f32, self.weight_decay as f32);
        (
            lr,
            1.0 - (lr as f64 * wd as f64) as f32,
            self.epsilon as f32,
        )
    }
}

/// A method's AdamW `(β₁, β₂)` in `f32`, as every implementation applies them (PyTorch's
/// defaults `(0.9, 0.999)` for an optimiser without moments' decays).
pub fn betas(method: &Method) -> (f32, f32) {
    match method.optimizer {
        Optimizer::AdamW { beta1, beta2 } => (beta1 as f32, beta2 as f32),
        Optimizer::Sgd { .. } | Optimizer::Muon { .. } | Optimizer::Sgld { .. } => (0.9, 0.999),
    }
}

/// AdamW's bias corrections `(1 − β₁ᵗ, 1 − β₂ᵗ)` for step `t` (counted from 1), in `f32`.
pub fn bias_corrections(t: u64, (beta_1, beta_2): (f32, f32)) -> (f32, f32) {
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    (1.0 - beta_1.powi(t), 1.0 - beta_2.powi(t))
}

/// The rows of one split as indices into fc1's rows and labels, in the split's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    /// `a` of each row (fc1 row `a`).
    pub a: Vec<u32>,
    /// `p + b` of each row (fc1 row `p + b`).
    pub b: Vec<u32>,
    /// The label of each row.
    pub y: Vec<u32>,
}

impl Rows {
    /// The rows of `split` of `data`.
    pub fn new(data: &ModularDataset, split: Split) -> Self {
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

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// One member of a stack: its starting point, hyperparameters and data.
#[derive(Debug, Clone)]
pub struct MemberSetup {
    /// Weights to start from (PyTorch's orientation).
    pub weights: MlpWeights,
    /// Optimiser state to continue from; `None` starts fresh.
    pub optimizer: Option<OptimizerState>,
    /// Optimiser hyperparameters.
    pub hyper: Hyper,
    /// The member's loss, activation, filter and optimiser.
    pub method: Method,
    /// Training rows in the order the epochs walk them.
    pub train: Rows,
    /// Validation rows.
    pub val: Rows,
}

impl MemberSetup {
    /// The optimiser state the member starts from: its own, or the state before a first step
    /// ([`OptimizerState::zeros`], with SGLD's centre `w*` the member's weights).
    pub fn start_state(&self) -> OptimizerState {
        if let Some(state) = &self.optimizer {
            return state.clone();
        }
        let (p, h) = (self.weights.p(), self.weights.d_hidden());
        let mut state = OptimizerState::zeros(p, h);
        if let Optimizer::Sgld { .. } = self.method.optimizer {
            state.fc1_m1 = self.weights.fc1().to_vec();
            state.fc2_m1 = self.weights.fc2().to_vec();
        }
        state
    }
}

/// Everything a [`StepBackend`] needs to build a stack of K members.
#[derive(Debug, Clone)]
pub struct StackSetup {
    /// The modulus.
    pub p: usize,
    /// The hidden width.
    pub d_hidden: usize,
    /// The members, K ≥ 1, in order.
    pub members: Vec<MemberSetup>,
    /// Threads the host implementation computes with (0: one per core; never more than the
    /// cores, see [`host_threads`]). The GPU implementations and the reference ignore it, and no
    /// result depends on it.
    pub threads: usize,
}

impl StackSetup {
    /// Number of members.
    pub fn k(&self) -> usize {
        self.members.len()
    }

    /// The optimiser steps every member has taken (the members of a stack step together).
    ///
    /// # Panics
    /// If there are no members, or they have taken different numbers of steps, or a member's
    /// weights, AdamW state or rows do not fit `p` and `d_hidden` or the first member's row
    /// counts: a programmer error, since [`Ensemble`](crate::train::Ensemble) builds setups
    /// from validated configurations.
    pub fn check(&self) -> u64 {
        let first = self
            .members
            .first()
            .expect("a stack needs at least one member");
        let step = first.optimizer.as_ref().map_or(0, |adam| adam.step);
        let (p, h) = (self.p, self.d_hidden);
        for m in &self.members {
            assert_eq!(
                (m.weights.p(), m.weights.d_hidden()),
                (p, h),
                "weights shape"
            );
            assert_eq!(
                m.optimizer.as_ref().map_or(0, |adam| adam.step),
                step,
                "AdamW steps"
            );
            if let Some(adam) = &m.optimizer {
                let held = m.method.filter_gradients(step);
                for (len, want) in [
                    (adam.fc1_m1.len(), 2 * p * h),
                    (adam.fc1_m2.len(), 2 * p * h),
                    (adam.fc2_m1.len(), h * p),
                    (adam.fc2_m2.len(), h * p),
                    (adam.filter.gradients, held),
                    (adam.filter.fc1.len(), held * 2 * p * h),
                    (adam.filter.fc2.len(), held * h * p),
                ] {
                    assert_eq!(len, want, "optimiser state length");
                }
            }
            assert_eq!(m.train.len(), first.train.len(), "training rows");
            assert_eq!(m.val.len(), first.val.len(), "validation rows");
        }
        step
    }
}

impl StackSetup {
    /// The members' weights and optimiser moments stacked in Burn's layout, member after member:
    /// `[fc1, fc1 first moment, fc1 second moment]` as `[K, 2p, d_hidden]` and the same of fc2 as
    /// `[K, d_hidden, p]` (a member without state starts from [`MemberSetup::start_state`]).
    pub(crate) fn stacked(&self) -> ([Vec<f32>; 3], [Vec<f32>; 3]) {
        let (p, h) = (self.p, self.d_hidden);
        let states: Vec<OptimizerState> = self.members.iter().map(|m| m.start_state()).collect();
        // PyTorch orientation [cols, rows] -> Burn's [rows, cols], member after member.
        let stack = |part: &dyn Fn(&MemberSetup, &OptimizerState) -> Vec<f32>, rows, cols| {
            self.members
                .iter()
                .zip(&states)
                .flat_map(|(m, state)| transpose(&part(m, state), cols, rows))
                .collect::<Vec<f32>>()
        };
        (
            [
                stack(&|m, _| m.weights.fc1().to_vec(), 2 * p, h),
                stack(&|_, adam| adam.fc1_m1.clone(), 2 * p, h),
                stack(&|_, adam| adam.fc1_m2.clone(), 2 * p, h),
            ],
            [
                stack(&|m, _| m.weights.fc2().to_vec(), h, p),
                stack(&|_, adam| adam.fc2_m1.clone(), h, p),
                stack(&|_, adam| adam.fc2_m2.clone(), h, p),
            ],
        )
    }
}

/// Member by member, the `[rows, cols]` blocks (Burn's layout) of stacked values, each
/// transposed to PyTorch's orientation.
pub(crate) fn unstack(values: &[f32], rows: usize, cols: usize) -> Vec<Vec<f32>> {
    values
        .chunks_exact(rows * cols)
        .map(|block| transpose(block, rows, cols))
        .collect()
}

/// Every member's weights from stacked fc1 `[K, 2p, d_hidden]` and fc2 `[K, d_hidden, p]` values
/// (the inverse of [`StackSetup::stacked`]).
pub(crate) fn unstack_weights(p: usize, h: usize, fc1: &[f32], fc2: &[f32]) -> Vec<MlpWeights> {
    unstack(fc1, 2 * p, h)
        .into_iter()
        .zip(unstack(fc2, h, p))
        .map(|(fc1, fc2)| MlpWeights::new(p, h, fc1, fc2).expect("stacked shapes are consistent"))
        .collect()
}

/// Every member's AdamW state at `step` from stacked `[fc1 first, fc1 second]` moments
/// `[K, 2p, d_hidden]` and fc2's `[K, d_hidden, p]`.
pub(crate) fn unstack_adam(
    (p, h, step): (usize, usize, u64),
    [fc1_m1, fc1_m2]: [&[f32]; 2],
    [fc2_m1, fc2_m2]: [&[f32]; 2],
) -> Vec<OptimizerState> {
    let (a, b) = (unstack(fc1_m1, 2 * p, h), unstack(fc1_m2, 2 * p, h));
    let (c, d) = (unstack(fc2_m1, h, p), unstack(fc2_m2, h, p));
    a.into_iter()
        .zip(b)
        .zip(c)
        .zip(d)
        .map(|(((fc1_m1, fc1_m2), fc2_m1), fc2_m2)| OptimizerState {
            step,
            fc1_m1,
            fc1_m2,
            fc2_m1,
            fc2_m2,
            filter: FilterState::default(),
        })
        .collect()
}

/// Sums of one pass over a split: summed row losses, the number of right predictions and of
/// collapsed rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PassSums {
    /// Sum of the rows' losses (the member's [`Loss`]).
    pub loss_sum: f64,
    /// Rows whose largest logit (first maximum) is at the label.
    pub correct: usize,
    /// Rows whose `f32` softmax has collapsed: `Σ exp(x − max x) == 1` exactly, so the softmax
    /// is exactly one-hot (Prieto et al. 2025's `softmax_collapse`, whatever the loss).
    pub collapsed: usize,
}

/// One member's sums since the last [`StepBackend::stack_take_sums`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EpochSums {
    /// Over the training rows of the steps taken, each before its step.
    pub train: PassSums,
    /// Over the validation rows, at each [`StepBackend::stack_validate`].
    pub val: PassSums,
    /// `Σ w²` over both weight matrices when the sums are taken.
    pub weight_sq: f64,
}

/// A backend that can train and evaluate a stack of K networks of one shape as one operation.
/// See the [module docs](self) for the maths and the implementations.
///
/// A stack ([`StepBackend::Stack`]) holds every member's weights, AdamW moments, data rows and
/// epoch sums on the backend's device. The members step together: step `t` of the stack is step
/// `t` of every member, on the member's own rows `rows` of its training split.
pub trait StepBackend: Backend {
    /// The implementation's state of a stack.
    type Stack: Send;

    /// Builds a stack on `device`.
    ///
    /// # Panics
    /// If `setup` is inconsistent (see [`StackSetup::check`]).
    fn stack_init(setup: StackSetup, device: &Self::Device) -> Self::Stack;

    /// One optimiser step of every member on its training rows `rows`; each row's loss and accuracy,
    /// taken before the step, are added to the member's epoch sums on the device. On a GPU the
    /// step is queued, not awaited.
    ///
    /// # Panics
    /// If `rows` is empty or runs past the training split.
    fn stack_step(stack: &mut Self::Stack, rows: Range<usize>);

    /// Evaluates every member on its validation rows; the sums are added to its epoch sums.
    fn stack_validate(stack: &mut Self::Stack);

    /// Reads every member's sums and its weights' `Σ w²` (one read from the device) and resets
    /// the sums.
    fn stack_take_sums(stack: &mut Self::Stack) -> Vec<EpochSums>;

    /// Reads every member's training sums (of the steps since they were last taken) and resets
    /// them, leaving the validation sums: the per-step losses of a sampler, without the
    /// weights' norm that [`StepBackend::stack_take_sums`] computes.
    fn stack_take_train_sums(stack: &mut Self::Stack) -> Vec<PassSums>;

    /// Every member's weights, copied to the host.
    fn stack_weights(stack: &Self::Stack) -> Vec<MlpWeights>;

    /// Every member's optimiser state (moments, step, filter memory), copied to the host.
    fn stack_optimizer(stack: &Self::Stack) -> Vec<OptimizerState>;

    /// Sets every member's hyperparameters, in member order, for the steps that follow.
    ///
    /// # Panics
    /// If `hyper` does not have one entry per member.
    fn stack_set_hyper(stack: &mut Self::Stack, hyper: &[Hyper]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_round_as_burn_adamw_does() {
        let hyper = Hyper {
            lr: 3e-3,
            weight_decay: 0.5,
            epsilon: 1e-8,
        };
        let (lr, decay, eps) = hyper.factors();
        assert_eq!(lr, 3e-3f32);
        assert_eq!(decay, 1.0 - (3e-3f32 as f64 * 0.5) as f32);
        assert_eq!(eps, 1e-8f32);
        let (b1, b2) = bias_corrections(1, betas(&Method::default()));
        assert_eq!((b1, b2), (1.0 - 0.9f32, 1.0 - 0.999f32));
    }
}

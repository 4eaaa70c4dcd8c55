//! The reference implementation of [`StepBackend`]: Burn's tensor operations and autodiff, for
//! `Autodiff<B>` on any backend `B`. Every other implementation is tested against it.
//!
//! The weights of all members are stacked, `fc1 [K, 2p, h]` and `fc2 [K, h, p]`, and a step does
//! for every member at once: fc1 applied to the batch's one-hot rows (built on the device from
//! the indices) as a batched matrix product, the activation, a second batched product, the loss
//! (mean over each member's batch), autodiff of the sum of the members' losses (members share no
//! parameter, so each gets its own gradient), the filters, ⊥Grad, and the optimiser with
//! `[K, 1, 1]` tensors of each member's factors.
//!
//! Members may differ in [`Method`]: each choice that some member makes is computed for the
//! whole stack and kept for that member by a `[K, 1, 1]` mask of zeros and ones (a choice no
//! member makes is not computed, so a stack of the default method runs the notebook's
//! operations only). StableMax is computed in the backend's float type here (the host, as the
//! authors, in `f64`); the MA filter keeps the last gradients of the longest window, and each
//! member sums the ones of its own window, oldest first.
//!
//! fc1 is a one-hot product here, not a gather: the gradient of a gather is a scatter-add into
//! the stacked rows, which Burn 0.21's wgpu backend ran in 25 ms a step at K = 256 on an H100.
//! Both give the same forward values exactly (adding zeros is exact) and gradients to float
//! rounding.

use std::{collections::VecDeque, ops::Range};

use burn::{
    backend::{autodiff::checkpoint::strategy::CheckpointStrategy, Autodiff},
    tensor::{
        activation::{log_softmax, relu},
        backend::Backend,
        Int, Tensor, TensorData,
    },
};

use crate::model::{to_vec, transpose, MlpWeights};

use super::{
    betas, bias_corrections,
    method::{muon_lr_ratio, Sgld, MUON_EPSILON, MUON_NS_COEFFICIENTS, MUON_NS_STEPS},
    noise::fill_normals,
    unstack, unstack_adam, unstack_weights, Activation, EpochSums, FilterState, Grokfast, Hyper,
    Loss, Method, Optimizer, OptimizerState, PassSums, Rows, StackSetup, StepBackend,
};

/// A stack as Burn tensors on `B`'s device.
pub struct ReferenceStack<B: Backend> {
    p: usize,
    h: usize,
    step: u64,
    fc1: Tensor<B, 3>,
    fc2: Tensor<B, 3>,
    /// The optimiser's moments of fc1 and fc2 (SGD's momentum buffer in `first`).
    moments: [Moments<B>; 2],
    /// `[K, 1, 1]`: lr, `1 − lr·wd` and ε per member.
    factors: [Tensor<B, 3>; 3],
    /// `[K, 1, 1]`: weight decay per member (SGD's).
    weight_decay: Tensor<B, 3>,
    /// `[K, 1, 1]` per weight matrix: Muon's step `lr·√max(1, d_in/d_out)` per member.
    muon_steps: [Tensor<B, 3>; 2],
    /// Every member's hyperparameters (SGLD's factors are made from them each step).
    hyper: Vec<Hyper>,
    methods: Vec<Method>,
    choices: Choices<B>,
    /// The EMA filter's values of fc1 and fc2 (`None` if no member has one).
    ema: Option<[Tensor<B, 3>; 2]>,
    /// The MA filter's last gradients of fc1 and fc2, oldest first (at most the longest window).
    window: VecDeque<[Tensor<B, 3>; 2]>,
    train: StackedRows<B>,
    val: StackedRows<B>,
    /// `[K]` each: train loss sum, train correct, train collapsed, and the same of validation.
    sums: [Tensor<B, 1>; 6],
}

/// The optimiser's moments for one stacked weight.
struct Moments<B: Backend> {
    first: Tensor<B, 3>,
    second: Tensor<B, 3>,
}

/// The members' choices as `[K, 1, 1]` masks and factors; `None` where no member makes it.
struct Choices<B: Backend> {
    /// Per [`Loss::ALL`].
    loss: [Option<Tensor<B, 3>>; 3],
    /// Per [`Activation::ALL`].
    activation: [Option<Tensor<B, 3>>; 2],
    /// The EMA's `[α, 1 − α, λ]` (zeros for members without it).
    ema: Option<[Tensor<B, 3>; 3]>,
    /// The MA's λ (zero for members without it).
    ma_lambda: Option<Tensor<B, 3>>,
    orthograd: Option<Tensor<B, 3>>,
    /// AdamW's mask and `[β₁, 1 − β₁, β₂, 1 − β₂]`.
    adam: Option<(Tensor<B, 3>, [Tensor<B, 3>; 4])>,
    /// SGD's mask, momentum and Nesterov mask.
    sgd: Option<(Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>)>,
    /// Muon's mask and momentum.
    muon: Option<(Tensor<B, 3>, Tensor<B, 3>)>,
    /// SGLD's mask.
    sgld: Option<Tensor<B, 3>>,
}

/// A `[K, 1, 1]` tensor of one value per member.
fn column<B: Backend>(values: impl Iterator<Item = f32>, device: &B::Device) -> Tensor<B, 3> {
    let values: Vec<f32> = values.collect();
    let k = values.len();
    Tensor::from_data(TensorData::new(values, [k, 1, 1]), device)
}

impl<B: Backend> Choices<B> {
    fn new(methods: &[Method], device: &B::Device) -> Self {
        let mask = |pick: &dyn Fn(&Method) -> bool| {
            methods
                .iter()
                .any(pick)
                .then(|| column::<B>(methods.iter().map(|m| pick(m) as u8 as f32), device))
        };
        let values = |f: &dyn Fn(&Method) -> f32| column::<B>(methods.iter().map(f), device);
        let ema = |m: &Method| match m.grokfast {
            Some(Grokfast::Ema { alpha, lambda }) => (alpha, lambda),
            _ => (0.0, 0.0),
        };
        let ma_lambda = |m: &Method| match m.grokfast {
            Some(Grokfast::Ma { lambda, .. }) => lambda as f32,
            _ => 0.0,
        };
        let sgd = |m: &Method| match m.optimizer {
            Optimizer::Sgd { momentum, nesterov } => (momentum as f32, nesterov),
            _ => (0.0, false),
        };
        let is_ema = |m: &Method| matches!(m.grokfast, Some(Grokfast::Ema { .. }));
        let is_ma = |m: &Method| matches!(m.grokfast, Some(Grokfast::Ma { .. }));
        let is_adam = |m: &Method| matches!(m.optimizer, Optimizer::AdamW { .. });
        let is_sgd = |m: &Method| matches!(m.optimizer, Optimizer::Sgd { .. });
        let muon = |m: &Method| match m.optimizer {
            Optimizer::Muon { momentum } => momentum as f32,
            _ => 0.0,
        };
        let is_muon = |m: &Method| matches!(m.optimizer, Optimizer::Muon { .. });
        let is_sgld = |m: &Method| matches!(m.optimizer, Optimizer::Sgld { .. });
        Self {
            loss: Loss::ALL.map(|loss| mask(&|m| m.loss == loss)),
            activation: Activation::ALL.map(|act| mask(&|m| m.activation == act)),
            ema: methods.iter().any(is_ema).then(|| {
                [
                    values(&|m| ema(m).0 as f32),
                    values(&|m| (1.0 - ema(m).0) as f32),
                    values(&|m| ema(m).1 as f32),
                ]
            }),
            ma_lambda: methods.iter().any(is_ma).then(|| values(&ma_lambda)),
            orthograd: mask(&|m| m.orthograd),
            adam: mask(&is_adam).map(|mask| {
                (
                    mask,
                    [
                        values(&|m| betas(m).0),
                        values(&|m| 1.0 - betas(m).0),
                        values(&|m| betas(m).1),
                        values(&|m| 1.0 - betas(m).1),
                    ],
                )
            }),
            sgd: mask(&is_sgd).map(|mask| {
                (
                    mask,
                    values(&|m| sgd(m).0),
                    values(&|m| sgd(m).1 as u8 as f32),
                )
            }),
            muon: mask(&is_muon).map(|mask| (mask, values(&muon))),
            sgld: mask(&is_sgld),
        }
    }
}

/// `mask · value`, or `value` itself where every member makes the choice.
fn keep<B: Backend>(value: Tensor<B, 3>, mask: &Tensor<B, 3>, all: bool) -> Tensor<B, 3> {
    if all {
        value
    } else {
        value * mask.clone()
    }
}

/// The sum of the choices made, each kept for its members: `Σ mask_c · f(c)` over the choices
/// `c` some member makes (only `f(c)` where every member makes `c`).
fn choose<B: Backend, T: Copy>(
    choices: &[(T, &Option<Tensor<B, 3>>)],
    f: impl Fn(T) -> Tensor<B, 3>,
) -> Tensor<B, 3> {
    let made: Vec<(T, &Tensor<B, 3>)> = choices
        .iter()
        .filter_map(|(c, mask)| mask.as_ref().map(|mask| (*c, mask)))
        .collect();
    let all = made.len() == 1;
    made.into_iter()
        .map(|(c, mask)| keep(f(c), mask, all))
        .reduce(|a, b| a + b)
        .expect("every member makes one choice")
}

/// Per-member fc1 row indices and labels of one split.
struct StackedRows<B: Backend> {
    /// `[K, n]`: `a`.
    a: Tensor<B, 2, Int>,
    /// `[K, n]`: `p + b`.
    b: Tensor<B, 2, Int>,
    /// `[K, n]`.
    y: Tensor<B, 2, Int>,
}

impl<B: Backend> StackedRows<B> {
    fn new<'a>(rows: impl ExactSizeIterator<Item = &'a Rows>, device: &B::Device) -> Self {
        let k = rows.len();
        let (mut a, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
        let mut n = 0;
        for r in rows {
            n = r.len();
            a.extend(r.a.iter().map(|&v| v as i64));
            b.extend(r.b.iter().map(|&v| v as i64));
            y.extend(r.y.iter().map(|&v| v as i64));
        }
        let tensor = |values: Vec<i64>| Tensor::from_data(TensorData::new(values, [k, n]), device);
        Self {
            a: tensor(a),
            b: tensor(b),
            y: tensor(y),
        }
    }

    fn rows(&self, rows: Range<usize>) -> Self {
        let k = self.a.dims()[0];
        let slice = |t: &Tensor<B, 2, Int>| t.clone().slice([0..k, rows.clone()]);
        Self {
            a: slice(&self.a),
            b: slice(&self.b),
            y: slice(&self.y),
        }
    }

    fn len(&self) -> usize {
        self.a.dims()[1]
    }

    /// The same rows as tensors of another backend on the same device (into autodiff).
    fn map<A: Backend>(self, f: impl Fn(Tensor<B, 2, Int>) -> Tensor<A, 2, Int>) -> StackedRows<A> {
        StackedRows {
            a: f(self.a),
            b: f(self.b),
            y: f(self.y),
        }
    }
}

/// `[K, n, classes]` one-hot rows of `index [K, n]`.
fn one_hot<B: Backend>(index: &Tensor<B, 2, Int>, classes: usize) -> Tensor<B, 3> {
    let [k, n] = index.dims();
    let columns = Tensor::<B, 1, Int>::arange(0..classes as i64, &index.device())
        .reshape([1, 1, classes])
        .expand([k, n, classes]);
    index
        .clone()
        .reshape([k, n, 1])
        .expand([k, n, classes])
        .equal(columns)
        .float()
}

/// Logits of every member for its rows, each with its activation.
///
/// # Shapes
/// `fc1 [K, 2p, h]`, `fc2 [K, h, p]`, rows `[K, n]` -> `[K, n, p]`.
fn logits<B: Backend>(
    fc1: Tensor<B, 3>,
    fc2: Tensor<B, 3>,
    rows: &StackedRows<B>,
    activation: &[Option<Tensor<B, 3>>; 2],
) -> Tensor<B, 3> {
    let two_p = fc1.dims()[1];
    let inputs = one_hot(&rows.a, two_p) + one_hot(&rows.b, two_p); // [K, n, 2p]
    let pre = inputs.matmul(fc1);
    let choices = [
        (Activation::Relu, &activation[0]),
        (Activation::Square, &activation[1]),
    ];
    let post = choose(&choices, |act| match act {
        Activation::Relu => relu(pre.clone()),
        Activation::Square => pre.clone().powi_scalar(2),
    });
    post.matmul(fc2)
}

/// Per member, the number of rows whose first maximal logit is the label and the number whose
/// softmax collapsed (`Σ exp(x − max) == 1` in the float type), as floats.
///
/// # Shapes
/// `logits [K, n, p]`, `labels [K, n]` -> `[K]`, `[K]`.
pub(crate) fn hits_and_collapsed<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [k, _, _] = logits.dims();
    let shifted = logits.clone() - logits.clone().max_dim(2);
    let collapsed = shifted
        .exp()
        .sum_dim(2)
        .equal_elem(1.0)
        .int()
        .sum_dim(1)
        .reshape([k])
        .float();
    let correct = logits
        .argmax(2)
        .equal(labels.unsqueeze_dim::<3>(2))
        .int()
        .sum_dim(1)
        .reshape([k])
        .float();
    (correct, collapsed)
}

/// Per-member summed loss `[K]`, and the numbers of right predictions and of rows whose
/// softmax collapsed (`Σ exp(x − max) == 1`) as floats `[K]`, each member with its loss.
fn loss_and_correct<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
    loss: &[Option<Tensor<B, 3>>; 3],
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let [k, _, p] = logits.dims();
    let (correct, collapsed) = hits_and_collapsed(logits.clone(), labels.clone());
    let index = labels.clone().unsqueeze_dim::<3>(2); // [K, n, 1]
    let choices = [
        (Loss::CrossEntropy, &loss[0]),
        (Loss::Stablemax, &loss[1]),
        (Loss::Mse, &loss[2]),
    ];
    // [K, n, 1]: each row's loss.
    let rows = choose(&choices, |loss| match loss {
        Loss::CrossEntropy => log_softmax(logits.clone(), 2)
            .gather(2, index.clone())
            .neg(),
        Loss::Stablemax => {
            // s(x) = x + 1 (x ≥ 0), 1 / (1 − x) (x < 0); the reciprocal of min(x, 0) keeps the
            // branch that is not taken finite, so its zero gradient is not NaN.
            let negative = logits.clone().lower_elem(0.0);
            let s = (logits.clone() + 1.0).mask_where(
                negative,
                (logits.clone().clamp_max(0.0).neg() + 1.0).recip(),
            );
            let total = s.clone().sum_dim(2);
            total.log() - s.gather(2, index.clone()).log()
        }
        Loss::Mse => (logits.clone() - one_hot(&labels, p))
            .powi_scalar(2)
            .mean_dim(2),
    });
    (rows.sum_dim(1).reshape([k]), correct, collapsed)
}

impl<B: Backend> ReferenceStack<B> {
    fn new(setup: StackSetup, device: &B::Device) -> Self {
        let step = setup.check();
        let (p, h, k) = (setup.p, setup.d_hidden, setup.k());
        let tensor = |values: Vec<f32>, rows, cols| {
            Tensor::<B, 3>::from_data(TensorData::new(values, [k, rows, cols]), device)
        };
        let ([fc1, fc1_m1, fc1_m2], [fc2, fc2_m1, fc2_m2]) = setup.stacked();
        let hyper: Vec<Hyper> = setup.members.iter().map(|m| m.hyper).collect();
        let methods: Vec<Method> = setup.members.iter().map(|m| m.method).collect();
        let zeros = || Tensor::<B, 1>::zeros([k], device);
        // The filters' memories: member k's j-th newest gradient is entry `len − 1 − j`.
        let filters: Vec<FilterState> = setup
            .members
            .iter()
            .map(|m| {
                m.optimizer
                    .as_ref()
                    .map(|o| o.filter.clone())
                    .unwrap_or_default()
            })
            .collect();
        let entry = |from_newest: usize| -> [Tensor<B, 3>; 2] {
            let (n1, n2) = (2 * p * h, h * p);
            let (mut a, mut b) = (Vec::with_capacity(k * n1), Vec::with_capacity(k * n2));
            for f in &filters {
                if from_newest < f.gradients {
                    let j = f.gradients - 1 - from_newest;
                    a.extend(transpose(&f.fc1[j * n1..(j + 1) * n1], h, 2 * p));
                    b.extend(transpose(&f.fc2[j * n2..(j + 1) * n2], p, h));
                } else {
                    a.extend(std::iter::repeat_n(0.0, n1));
                    b.extend(std::iter::repeat_n(0.0, n2));
                }
            }
            [tensor(a, 2 * p, h), tensor(b, h, p)]
        };
        let has_ema = methods
            .iter()
            .any(|m| matches!(m.grokfast, Some(Grokfast::Ema { .. })));
        let ma_held = methods
            .iter()
            .zip(&filters)
            .filter(|(m, _)| matches!(m.grokfast, Some(Grokfast::Ma { .. })))
            .map(|(_, f)| f.gradients)
            .max()
            .unwrap_or(0);
        Self {
            p,
            h,
            step,
            fc1: tensor(fc1, 2 * p, h),
            fc2: tensor(fc2, h, p),
            moments: [
                Moments {
                    first: tensor(fc1_m1, 2 * p, h),
                    second: tensor(fc1_m2, 2 * p, h),
                },
                Moments {
                    first: tensor(fc2_m1, h, p),
                    second: tensor(fc2_m2, h, p),
                },
            ],
            factors: factor_tensors(&hyper, device),
            muon_steps: muon_steps(&hyper, (p, h), device),
            weight_decay: column(hyper.iter().map(|h| h.weight_decay as f32), device),
            hyper,
            choices: Choices::new(&methods, device),
            methods,
            ema: has_ema.then(|| entry(0)),
            window: (0..ma_held).rev().map(entry).collect(),
            train: StackedRows::new(setup.members.iter().map(|m| &m.train), device),
            val: StackedRows::new(setup.members.iter().map(|m| &m.val), device),
            sums: std::array::from_fn(|_| zeros()),
        }
    }

    fn k(&self) -> usize {
        self.fc1.dims()[0]
    }

    fn device(&self) -> B::Device {
        self.fc1.device()
    }

    /// The Grokfast filters on the gradients `[g1, g2]` of the step about to be taken (the
    /// stack's step count not yet increased).
    fn filter(&mut self, mut grads: [Tensor<B, 3>; 2]) -> [Tensor<B, 3>; 2] {
        if let (Some(ema), Some([alpha, one_minus, lambda])) = (&mut self.ema, &self.choices.ema) {
            for (e, g) in ema.iter_mut().zip(&mut grads) {
                *e = if self.step == 0 {
                    g.clone()
                } else {
                    e.clone() * alpha.clone() + g.clone() * one_minus.clone()
                };
                *g = g.clone() + e.clone() * lambda.clone();
            }
        }
        let windows: Vec<usize> = self
            .methods
            .iter()
            .map(|m| match m.grokfast {
                Some(Grokfast::Ma { window, .. }) => window,
                _ => 0,
            })
            .collect();
        if let Some(lambda) = &self.choices.ma_lambda {
            let longest = windows.iter().copied().max().unwrap_or(0);
            self.window.push_back(grads.clone());
            while self.window.len() > longest {
                self.window.pop_front();
            }
            let len = self.window.len();
            let device = self.device();
            // Entry i counts for member k once its window is full and i is among its last.
            let weight = |i: usize| {
                column::<B>(
                    windows
                        .iter()
                        .map(|&w| (w > 0 && len >= w && i >= len - w) as u8 as f32),
                    &device,
                )
            };
            let full = column::<B>(
                windows.iter().map(|&w| {
                    if w > 0 && len >= w {
                        1.0 / w as f32
                    } else {
                        0.0
                    }
                }),
                &device,
            );
            for (m, g) in grads.iter_mut().enumerate() {
                let sum = self
                    .window
                    .iter()
                    .enumerate()
                    .map(|(i, entry)| entry[m].clone() * weight(i))
                    .reduce(|a, b| a + b)
                    .expect("the window holds this step's gradient");
                *g = g.clone() + sum * full.clone() * lambda.clone();
            }
        }
        grads
    }

    /// ⊥Grad on the gradients of the members that ask for it, per weight matrix.
    fn orthograd(&self, grads: [Tensor<B, 3>; 2]) -> [Tensor<B, 3>; 2] {
        let Some(mask) = &self.choices.orthograd else {
            return grads;
        };
        let all = self.methods.iter().all(|m| m.orthograd);
        let sum = |t: Tensor<B, 3>| t.sum_dim(2).sum_dim(1); // [K, 1, 1]
        let mut out = grads.clone();
        for ((o, g), w) in out.iter_mut().zip(grads).zip([&self.fc1, &self.fc2]) {
            let w_norm_sq = sum(w.clone() * w.clone()) + 1e-30;
            let proj = sum(w.clone() * g.clone()) / w_norm_sq;
            let orth = g.clone() - w.clone() * proj;
            let g_norm = sum(g.clone() * g.clone()).sqrt();
            let orth_norm = sum(orth.clone() * orth.clone()).sqrt() + 1e-30;
            let scaled = orth * (g_norm / orth_norm);
            *o = if all {
                scaled
            } else {
                scaled * mask.clone() + g * (mask.clone().neg() + 1.0)
            };
        }
        out
    }

    /// The optimiser on weight `m` (0: fc1, 1: fc2) with its final gradient; the stack's step
    /// count is already this step's.
    fn update(&mut self, m: usize, weight: Tensor<B, 3>, grad: Tensor<B, 3>) -> Tensor<B, 3> {
        let sgld = self
            .choices
            .sgld
            .is_some()
            .then(|| self.sgld(m, &weight.device()));
        let [lr, decay, epsilon] = &self.factors;
        let moments = &mut self.moments[m];
        let adam = self.choices.adam.as_ref().map(|(mask, [b1, f1, b2, f2])| {
            let device = weight.device();
            let bias = |pick: fn((f32, f32)) -> f32| {
                column::<B>(
                    self.methods
                        .iter()
                        .map(|method| pick(bias_corrections(self.step, betas(method)))),
                    &device,
                )
            };
            let first = moments.first.clone() * b1.clone() + grad.clone() * f1.clone();
            let second =
                moments.second.clone() * b2.clone() + grad.clone().powi_scalar(2) * f2.clone();
            let update = (first.clone() / bias(|b| b.0))
                .div((second.clone() / bias(|b| b.1)).sqrt().add(epsilon.clone()));
            let weight = weight.clone().mul(decay.clone()) - update.mul(lr.clone());
            (mask, first, second, weight)
        });
        let sgd = self.choices.sgd.as_ref().map(|(mask, momentum, nesterov)| {
            let g = grad.clone() + weight.clone() * self.weight_decay.clone();
            let buffer = moments.first.clone() * momentum.clone() + g.clone();
            // Nesterov's `g + μ·b` or plain `b`, by the 0/1 mask (exact: x·1 = x, x·0 + y = y).
            let step = (g + buffer.clone() * momentum.clone()) * nesterov.clone()
                + buffer.clone() * (nesterov.clone().neg() + 1.0);
            (mask, buffer, weight.clone() - step * lr.clone())
        });
        let muon = self.choices.muon.as_ref().map(|(mask, momentum)| {
            // Burn's Nesterov momentum: `b ← μ·b + g` (the first step's `b = g`), `μ·b + g`.
            let buffer = moments.first.clone() * momentum.clone() + grad.clone();
            let update = newton_schulz(buffer.clone() * momentum.clone() + grad.clone());
            let step = self.muon_steps[m].clone();
            (
                mask,
                buffer,
                weight.clone().mul(decay.clone()) - update.mul(step),
            )
        });
        let sgld = self.choices.sgld.as_ref().zip(sgld).map(|(mask, sgld)| {
            let centre = moments.first.clone();
            let prior = weight.clone() * sgld.weight_decay
                + (weight.clone() - centre.clone()) * sgld.localization;
            let d = grad.clone() * sgld.nbeta + prior;
            let weight = weight.clone() + d * sgld.drift + sgld.noise * sgld.diffusion;
            (mask, centre, weight)
        });
        let made: Vec<Outcome<'_, B>> = [
            adam.map(|(mask, first, second, weight)| (mask, first, Some(second), weight)),
            sgd.map(|(mask, buffer, weight)| (mask, buffer, None, weight)),
            muon.map(|(mask, buffer, weight)| (mask, buffer, None, weight)),
            sgld.map(|(mask, centre, weight)| (mask, centre, None, weight)),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Each member keeps its own optimiser's moments and weights (`keep`: masks of 0/1, or
        // the values themselves where every member has the one optimiser).
        let all = made.len() == 1;
        let (mut firsts, mut weights) = (Vec::new(), Vec::new());
        for (mask, first, second, weight) in made {
            firsts.push(keep(first, mask, all));
            weights.push(keep(weight, mask, all));
            if let Some(second) = second {
                moments.second = keep(second, mask, all);
            }
        }
        let sum = |v: Vec<Tensor<B, 3>>| {
            v.into_iter()
                .reduce(|a, b| a + b)
                .expect("every member has an optimiser")
        };
        moments.first = sum(firsts);
        sum(weights)
    }
}

impl<B: Backend> ReferenceStack<B> {
    /// SGLD's factors ([`Sgld`]) of this step as `[K, 1, 1]` columns (zeros for the other
    /// members), and the noise `[K, rows, cols]` of weight `matrix` (0: fc1, 1: fc2), drawn on
    /// the host by [`fill_normals`] as the host implementation draws it.
    fn sgld(&self, matrix: usize, device: &B::Device) -> SgldTensors<B> {
        let (p, h, k) = (self.p, self.h, self.k());
        let steps: Vec<Option<Sgld>> = self
            .methods
            .iter()
            .zip(&self.hyper)
            .map(|(method, hyper)| Sgld::of(method, hyper, self.step))
            .collect();
        let col = |f: fn(&Sgld) -> f32| {
            column::<B>(steps.iter().map(|s| s.as_ref().map_or(0.0, f)), device)
        };
        let ((rows, cols), offset) = [((2 * p, h), 0), ((h, p), 2 * p * h)][matrix];
        let mut noise = vec![0f32; k * rows * cols];
        for (block, sgld) in noise.chunks_exact_mut(rows * cols).zip(&steps) {
            if let Some(sgld) = sgld {
                fill_normals(sgld.key, sgld.step, offset as u64, block);
            }
        }
        SgldTensors {
            drift: col(|s| s.drift),
            diffusion: col(|s| s.diffusion),
            nbeta: col(|s| s.nbeta),
            weight_decay: col(|s| s.weight_decay),
            localization: col(|s| s.localization),
            noise: Tensor::from_data(TensorData::new(noise, [k, rows, cols]), device),
        }
    }
}

/// One step's SGLD factors as `[K, 1, 1]` columns, and its noise.
struct SgldTensors<B: Backend> {
    drift: Tensor<B, 3>,
    diffusion: Tensor<B, 3>,
    nbeta: Tensor<B, 3>,
    weight_decay: Tensor<B, 3>,
    localization: Tensor<B, 3>,
    noise: Tensor<B, 3>,
}

/// Burn 0.21's `zeropower_via_newtonschulz` of each member's `[rows, cols]` matrix: `X = u`
/// (or `uᵀ` when `rows > cols`) over `max(‖u‖_F, 1e-7)`, then five steps of `A = X·Xᵀ`,
/// `X ← a·X + (b·A + c·A²)·X`; in `u`'s shape.
///
/// # Shapes
/// `u: [K, rows, cols]` -> `[K, rows, cols]`.
fn newton_schulz<B: Backend>(u: Tensor<B, 3>) -> Tensor<B, 3> {
    let [_, rows, cols] = u.dims();
    let tall = rows > cols;
    let x = if tall { u.swap_dims(1, 2) } else { u };
    let norm = x
        .clone()
        .powi_scalar(2)
        .sum_dim(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(MUON_EPSILON);
    let mut x = x / norm;
    let (a, b, c) = MUON_NS_COEFFICIENTS;
    for _ in 0..MUON_NS_STEPS {
        let gram = x.clone().matmul(x.clone().swap_dims(1, 2));
        let square = gram.clone().matmul(gram.clone());
        let combined = gram.mul_scalar(b).add(square.mul_scalar(c));
        x = x.clone().mul_scalar(a).add(combined.matmul(x));
    }
    if tall {
        x.swap_dims(1, 2)
    } else {
        x
    }
}

/// One optimiser's result for the members it is chosen for: their mask, the new first moment,
/// the new second moment (AdamW's), the new weights.
type Outcome<'a, B> = (
    &'a Tensor<B, 3>,
    Tensor<B, 3>,
    Option<Tensor<B, 3>>,
    Tensor<B, 3>,
);

/// Muon's `[K, 1, 1]` steps `lr·√max(1, d_in/d_out)` of fc1 (`[2p, h]`) and fc2 (`[h, p]`).
fn muon_steps<B: Backend>(
    hyper: &[Hyper],
    (p, h): (usize, usize),
    device: &B::Device,
) -> [Tensor<B, 3>; 2] {
    [(2 * p, h), (h, p)].map(|(rows, cols)| {
        column(
            hyper
                .iter()
                .map(|h| (h.lr * muon_lr_ratio(rows, cols)) as f32),
            device,
        )
    })
}

/// `[K, 1, 1]` tensors of each member's lr, `1 − lr·wd` and ε.
fn factor_tensors<B: Backend>(hyper: &[Hyper], device: &B::Device) -> [Tensor<B, 3>; 3] {
    [
        column(hyper.iter().map(|h| h.factors().0), device),
        column(hyper.iter().map(|h| h.factors().1), device),
        column(hyper.iter().map(|h| h.factors().2), device),
    ]
}

impl<B: Backend, C: CheckpointStrategy> StepBackend for Autodiff<B, C> {
    type Stack = ReferenceStack<B>;

    fn stack_init(setup: StackSetup, device: &Self::Device) -> ReferenceStack<B> {
        ReferenceStack::new(setup, device)
    }

    fn stack_step(stack: &mut ReferenceStack<B>, rows: Range<usize>) {
        assert!(
            !rows.is_empty() && rows.end <= stack.train.len(),
            "batch rows {rows:?} outside the training split"
        );
        let n = rows.len();
        let fc1 = Tensor::<Self, 3>::from_inner(stack.fc1.clone()).require_grad();
        let fc2 = Tensor::<Self, 3>::from_inner(stack.fc2.clone()).require_grad();
        let batch = stack
            .train
            .rows(rows)
            .map(Tensor::<Self, 2, Int>::from_inner);
        let choices = &stack.choices;
        let activation = choices
            .activation
            .clone()
            .map(|mask| mask.map(Tensor::<Self, 3>::from_inner));
        let loss_masks = choices
            .loss
            .clone()
            .map(|mask| mask.map(Tensor::<Self, 3>::from_inner));
        let logits = logits(fc1.clone(), fc2.clone(), &batch, &activation);
        let (loss, correct, collapsed) = loss_and_correct(logits, batch.y.clone(), &loss_masks);
        // Each member's loss is the mean over its batch; their sum is what is differentiated.
        let grads = loss.clone().div_scalar(n as f32).sum().backward();
        let g1 = fc1.grad(&grads).expect("fc1 takes part in the loss");
        let g2 = fc2.grad(&grads).expect("fc2 takes part in the loss");
        let grads = stack.filter([g1, g2]);
        let [g1, g2] = stack.orthograd(grads);
        stack.step += 1;
        stack.fc1 = stack.update(0, stack.fc1.clone(), g1);
        stack.fc2 = stack.update(1, stack.fc2.clone(), g2);
        let [loss_sum, correct_sum, collapsed_sum, ..] = &mut stack.sums;
        *loss_sum = loss_sum.clone() + loss.inner();
        *correct_sum = correct_sum.clone() + correct.inner();
        *collapsed_sum = collapsed_sum.clone() + collapsed.inner();
    }

    fn stack_validate(stack: &mut ReferenceStack<B>) {
        let choices = &stack.choices;
        let logits = logits(
            stack.fc1.clone(),
            stack.fc2.clone(),
            &stack.val,
            &choices.activation,
        );
        let (loss, correct, collapsed) =
            loss_and_correct(logits, stack.val.y.clone(), &choices.loss);
        let [.., loss_sum, correct_sum, collapsed_sum] = &mut stack.sums;
        *loss_sum = loss_sum.clone() + loss;
        *correct_sum = correct_sum.clone() + correct;
        *collapsed_sum = collapsed_sum.clone() + collapsed;
    }

    fn stack_take_sums(stack: &mut ReferenceStack<B>) -> Vec<EpochSums> {
        let k = stack.k();
        let device = stack.device();
        let zeros = || Tensor::<B, 1>::zeros([k], &device);
        let sums = std::mem::replace(&mut stack.sums, std::array::from_fn(|_| zeros()));
        let square_sum =
            |w: &Tensor<B, 3>| (w.clone() * w.clone()).sum_dim(2).sum_dim(1).reshape([k]);
        let weight_sq = square_sum(&stack.fc1) + square_sum(&stack.fc2);
        // One read of everything for all members.
        let mut parts = sums.to_vec();
        parts.push(weight_sq);
        let values = to_vec(Tensor::cat(parts, 0));
        let pass = |m: usize, first: usize| PassSums {
            loss_sum: values[first * k + m] as f64,
            correct: values[(first + 1) * k + m] as usize,
            collapsed: values[(first + 2) * k + m] as usize,
        };
        (0..k)
            .map(|m| EpochSums {
                train: pass(m, 0),
                val: pass(m, 3),
                weight_sq: values[6 * k + m] as f64,
            })
            .collect()
    }

    fn stack_take_train_sums(stack: &mut ReferenceStack<B>) -> Vec<PassSums> {
        let k = stack.k();
        let device = stack.device();
        let train: Vec<Tensor<B, 1>> = stack.sums[..3]
            .iter_mut()
            .map(|sum| std::mem::replace(sum, Tensor::zeros([k], &device)))
            .collect();
        let values = to_vec(Tensor::cat(train, 0));
        (0..k)
            .map(|m| PassSums {
                loss_sum: values[m] as f64,
                correct: values[k + m] as usize,
                collapsed: values[2 * k + m] as usize,
            })
            .collect()
    }

    fn stack_weights(stack: &ReferenceStack<B>) -> Vec<MlpWeights> {
        let (fc1, fc2) = (to_vec(stack.fc1.clone()), to_vec(stack.fc2.clone()));
        unstack_weights(stack.p, stack.h, &fc1, &fc2)
    }

    fn stack_optimizer(stack: &ReferenceStack<B>) -> Vec<OptimizerState> {
        let (p, h) = (stack.p, stack.h);
        let [m1, m2] = &stack.moments;
        let [a, b, c, d] =
            [&m1.first, &m1.second, &m2.first, &m2.second].map(|t| to_vec(t.clone()));
        let mut states = unstack_adam((p, h, stack.step), [&a, &b], [&c, &d]);
        // The filters' memories, oldest first, each member's own: per entry, every member's
        // fc1 and fc2 block.
        type Blocks = (Vec<Vec<f32>>, Vec<Vec<f32>>);
        let blocks = |entry: &[Tensor<B, 3>; 2]| -> Blocks {
            (
                unstack(&to_vec(entry[0].clone()), 2 * p, h),
                unstack(&to_vec(entry[1].clone()), h, p),
            )
        };
        let ema = stack.ema.as_ref().map(blocks);
        let window: Vec<_> = stack.window.iter().map(blocks).collect();
        for (k, (state, method)) in states.iter_mut().zip(&stack.methods).enumerate() {
            let held = method.filter_gradients(stack.step);
            let entries: Vec<&Blocks> = match method.grokfast {
                Some(Grokfast::Ema { .. }) => ema.iter().take(held).collect(),
                Some(Grokfast::Ma { .. }) => window[window.len() - held..].iter().collect(),
                None => Vec::new(),
            };
            state.filter.gradients = held;
            for (fc1, fc2) in entries {
                state.filter.fc1.extend_from_slice(&fc1[k]);
                state.filter.fc2.extend_from_slice(&fc2[k]);
            }
        }
        states
    }

    fn stack_set_hyper(stack: &mut ReferenceStack<B>, hyper: &[Hyper]) {
        assert_eq!(hyper.len(), stack.k(), "one Hyper per member");
        let device = stack.device();
        stack.factors = factor_tensors(hyper, &device);
        stack.muon_steps = muon_steps(hyper, (stack.p, stack.h), &device);
        stack.hyper = hyper.to_vec();
        stack.weight_decay = column(hyper.iter().map(|h| h.weight_decay as f32), &device);
    }
}

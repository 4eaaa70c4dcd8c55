//! The network evaluated on the host in `f64`: the one home of the analyses' forward pass
//! (pre-activations, ReLU, logits), cross-entropy and the first argmax, used by every analysis,
//! figure and progress measure.
//!
//! Weights are widened from `f32` to `f64` once; logits are then computed in `f64`, as the
//! reference scripts do, so accuracies do not depend on a backend's summation order (see
//! `docs/design.md`). For neuron `n`, `pre_n[a, b] = fc1.weight[n, a] + fc1.weight[n, p + b]`
//! and `post_n = relu(pre_n)`; over the grid each neuron gives one vector of `p²` values,
//! indexed `a * p + b` (the data set's row order). The origin notebook reshapes the
//! `[p², d_hidden]` activation matrix with `reshape(d_hidden, p²)`, which scrambles neurons and
//! pairs; here the neuron is always the outer index.

use crate::{
    data::{ModularDataset, Split},
    model::MlpWeights,
    step::Activation,
};

/// The network in `f64` on the host, laid out for one pair at a time.
#[derive(Debug, Clone)]
pub struct HostNetwork {
    p: usize,
    h: usize,
    /// `w1t[i * h + n] = fc1.weight[n, i]`: the two rows a and p + b are contiguous in n.
    w1t: Vec<f64>,
    /// `fc2.weight`, `[p, h]`.
    w2: Vec<f64>,
    activation: Activation,
}

impl HostNetwork {
    /// Widens `weights` to `f64`, for a network with `activation` in place of ReLU.
    pub fn with_activation(weights: &MlpWeights, activation: Activation) -> Self {
        Self {
            activation,
            ..Self::new(weights)
        }
    }

    /// Widens `weights` to `f64` (a ReLU network).
    pub fn new(weights: &MlpWeights) -> Self {
        let (p, h) = (weights.p(), weights.d_hidden());
        let mut w1t = vec![0f64; 2 * p * h];
        for (n, row) in weights.fc1().chunks_exact(2 * p).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                w1t[i * h + n] = v as f64;
            }
        }
        let w2 = weights.fc2().iter().map(|&v| v as f64).collect();
        HostNetwork {
            p,
            h,
            w1t,
            w2,
            activation: Activation::Relu,
        }
    }

    /// The logits of pair `(a, b)` into `logits` (`[p]`), `post` (`[h]`) as scratch.
    ///
    /// # Panics
    /// If `a` or `b` is not below p, or `post` is shorter than the width.
    pub fn logits(&self, a: usize, b: usize, post: &mut [f64], logits: &mut [f64]) {
        let (p, h) = (self.p, self.h);
        let (wa, wb) = (&self.w1t[a * h..][..h], &self.w1t[(p + b) * h..][..h]);
        match self.activation {
            Activation::Relu => {
                for n in 0..h {
                    post[n] = relu(wa[n] + wb[n]);
                }
            }
            Activation::Square => {
                for n in 0..h {
                    post[n] = (wa[n] + wb[n]).powi(2);
                }
            }
        }
        for (logit, w2_row) in logits.iter_mut().zip(self.w2.chunks_exact(h)) {
            *logit = w2_row.iter().zip(&*post).map(|(w, x)| w * x).sum();
        }
    }

    /// The logits of every row of `rows` of `data`, `[rows.len(), p]`.
    ///
    /// # Panics
    /// If `data` is for a larger modulus than the network.
    pub fn logits_of(&self, data: &ModularDataset, rows: &[u32]) -> Vec<f64> {
        let mut post = vec![0f64; self.h];
        let mut out = vec![0f64; rows.len() * self.p];
        for (&row, logits) in rows.iter().zip(out.chunks_exact_mut(self.p)) {
            let (a, b) = data.pair(row);
            self.logits(a, b, &mut post, logits);
        }
        out
    }
}

/// The activation: `max(x, 0)`.
pub fn relu(x: f64) -> f64 {
    x.max(0.0)
}

/// `pre[a * p + b] = input_a[a] + input_b[b]` for the two input weight vectors of one neuron.
///
/// # Shapes
/// `input_a, input_b: [p]` -> `[p²]`.
pub fn grid(input_a: &[f64], input_b: &[f64]) -> Vec<f64> {
    input_a
        .iter()
        .flat_map(|&wa| input_b.iter().map(move |&wb| wa + wb))
        .collect()
}

/// `pre` of neuron `n` over the grid.
///
/// # Shapes
/// Returns `[p²]`, index `a * p + b`.
///
/// # Panics
/// If `n >= d_hidden`.
pub fn pre_grid(weights: &MlpWeights, n: usize) -> Vec<f64> {
    grid(&weights.input_a(n), &weights.input_b(n))
}

/// `post = relu(pre)` of neuron `n` over the grid.
///
/// # Shapes
/// Returns `[p²]`, index `a * p + b`.
///
/// # Panics
/// If `n >= d_hidden`.
pub fn post_grid(weights: &MlpWeights, n: usize) -> Vec<f64> {
    pre_grid(weights, n).into_iter().map(relu).collect()
}

/// Post-ReLU activations of every neuron over the grid: `d_hidden` vectors of `p²` values.
///
/// # Shapes
/// Returns `[d_hidden][p²]`, inner index `a * p + b`.
pub fn post_by_neuron(weights: &MlpWeights) -> Vec<Vec<f64>> {
    (0..weights.d_hidden())
        .map(|n| post_grid(weights, n))
        .collect()
}

/// Cross-entropy of one row of logits against its label: `logsumexp(logits) - logits[label]`,
/// with the maximum taken out first.
///
/// # Panics
/// If `label` is not below `logits.len()`.
pub fn cross_entropy(logits: &[f64], label: usize) -> f64 {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logits.iter().map(|&l| (l - max).exp()).sum();
    max + sum.ln() - logits[label]
}

/// The index of the first maximum of `values` (0 for an empty slice), as NumPy's `argmax`.
pub fn first_argmax<T: PartialOrd>(values: &[T]) -> usize {
    let mut best = 0;
    for (c, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = c;
        }
    }
    best
}

/// The network's predicted class for each row of a split (first maximum on ties).
///
/// # Shapes
/// Returns `[n]` for the `n` rows of `split`, in the split's order.
pub fn predictions(weights: &MlpWeights, data: &ModularDataset, split: Split) -> Vec<usize> {
    assert_eq!(weights.p(), data.p(), "weights and data set disagree on p");
    let network = HostNetwork::new(weights);
    let (mut post, mut logits) = (vec![0f64; weights.d_hidden()], vec![0f64; weights.p()]);
    data.rows(split)
        .iter()
        .map(|&row| {
            let (a, b) = data.pair(row);
            network.logits(a, b, &mut post, &mut logits);
            first_argmax(&logits)
        })
        .collect()
}

/// Fraction of a split's rows the network predicts right.
pub fn accuracy(weights: &MlpWeights, data: &ModularDataset, split: Split) -> f64 {
    let predicted = predictions(weights, data, split);
    let rows = data.rows(split);
    let right = rows
        .iter()
        .zip(&predicted)
        .filter(|(&row, &c)| data.label(row) == c)
        .count();
    right as f64 / rows.len() as f64
}

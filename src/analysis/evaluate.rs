//! The network's forward pass on the host, in `f64`, for analysis.
//!
//! Weights are widened from `f32` to `f64` once; logits are then computed in `f64`, as the
//! reference scripts do, so accuracies do not depend on a backend's summation order.

use crate::{
    data::{ModularDataset, Split},
    model::MlpWeights,
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
}

impl HostNetwork {
    /// Widens `weights` to `f64`.
    pub fn new(weights: &MlpWeights) -> Self {
        let (p, h) = (weights.p(), weights.d_hidden());
        let mut w1t = vec![0f64; 2 * p * h];
        for (n, row) in weights.fc1().chunks_exact(2 * p).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                w1t[i * h + n] = v as f64;
            }
        }
        let w2 = weights.fc2().iter().map(|&v| v as f64).collect();
        HostNetwork { p, h, w1t, w2 }
    }

    /// The logits of pair `(a, b)` into `logits` (`[p]`), `post` (`[h]`) as scratch.
    ///
    /// # Panics
    /// If `a` or `b` is not below p, or `post` is shorter than the width.
    pub fn logits(&self, a: usize, b: usize, post: &mut [f64], logits: &mut [f64]) {
        let (p, h) = (self.p, self.h);
        let (wa, wb) = (&self.w1t[a * h..][..h], &self.w1t[(p + b) * h..][..h]);
        for n in 0..h {
            post[n] = (wa[n] + wb[n]).max(0.0);
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

/// The index of the first maximum of `values`.
pub fn first_argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (c, &v) in values.iter().enumerate() {
        if v > values[best] {
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

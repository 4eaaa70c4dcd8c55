//! The network's forward pass on the host, in `f64`, for analysis.
//!
//! Weights are widened from `f32` to `f64` once; logits are then computed in `f64`, as the
//! reference scripts do, so accuracies do not depend on a backend's summation order.

use crate::{
    data::{ModularDataset, Split},
    model::MlpWeights,
};

/// The network's predicted class for each row of a split (first maximum on ties).
///
/// # Shapes
/// Returns `[n]` for the `n` rows of `split`, in the split's order.
pub fn predictions(weights: &MlpWeights, data: &ModularDataset, split: Split) -> Vec<usize> {
    assert_eq!(weights.p(), data.p(), "weights and data set disagree on p");
    let (p, h) = (weights.p(), weights.d_hidden());
    // w1t[i * h + n] = fc1.weight[n, i]: the two rows a and p + b are contiguous in n.
    let mut w1t = vec![0f64; 2 * p * h];
    for (n, row) in weights.fc1().chunks_exact(2 * p).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            w1t[i * h + n] = v as f64;
        }
    }
    let w2: Vec<f64> = weights.fc2().iter().map(|&v| v as f64).collect(); // [p, h]
    let mut post = vec![0f64; h];
    data.rows(split)
        .iter()
        .map(|&row| {
            let (a, b) = data.pair(row);
            let (wa, wb) = (&w1t[a * h..][..h], &w1t[(p + b) * h..][..h]);
            for n in 0..h {
                post[n] = (wa[n] + wb[n]).max(0.0);
            }
            let mut best = (0, f64::NEG_INFINITY);
            for (c, w2_row) in w2.chunks_exact(h).enumerate() {
                let logit: f64 = w2_row.iter().zip(&post).map(|(w, x)| w * x).sum();
                if logit > best.1 {
                    best = (c, logit);
                }
            }
            best.0
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

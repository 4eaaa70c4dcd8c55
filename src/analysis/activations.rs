//! Hidden activations over the whole (a, b) grid, per neuron.
//!
//! For neuron `n`, `pre_n[a, b] = fc1.weight[n, a] + fc1.weight[n, p + b]` and
//! `post_n = relu(pre_n)`. Each neuron gives one vector of `p²` values, indexed `a * p + b`
//! (the data set's row order). The origin notebook reshapes the `[p², d_hidden]` activation
//! matrix with `reshape(d_hidden, p²)`, which scrambles neurons and pairs; here the neuron is
//! always the outer index.

use crate::model::MlpWeights;

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

/// `pre[a * p + b] = input_a[a] + input_b[b]` for two input weight vectors of one neuron.
///
/// # Shapes
/// `input_a, input_b: [p]` -> `[p²]`.
pub fn grid(input_a: &[f64], input_b: &[f64]) -> Vec<f64> {
    input_a
        .iter()
        .flat_map(|&wa| input_b.iter().map(move |&wb| wa + wb))
        .collect()
}

/// Post-ReLU activations of every neuron over the grid: `d_hidden` vectors of `p²` values.
///
/// # Shapes
/// Returns `[d_hidden][p²]`, inner index `a * p + b`.
pub fn post_by_neuron(weights: &MlpWeights) -> Vec<Vec<f64>> {
    (0..weights.d_hidden())
        .map(|n| {
            pre_grid(weights, n)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect()
        })
        .collect()
}

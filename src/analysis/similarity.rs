//! Cosine similarity between vectors: fc1's rows, fc2's columns, activation vectors.
//!
//! `sim[i][j] = <x_i, x_j> / (|x_i| |x_j|)`, and 0 where either vector is zero.

use crate::model::MlpWeights;

/// fc1's rows: per neuron, its input weights `[a weights, b weights]`.
///
/// # Shapes
/// Returns `[d_hidden][2p]` (PyTorch's `fc1.weight`).
pub fn fc1_rows(weights: &MlpWeights) -> Vec<Vec<f64>> {
    weights
        .fc1()
        .chunks_exact(2 * weights.p())
        .map(|row| row.iter().map(|&v| v as f64).collect())
        .collect()
}

/// fc2's columns: per neuron, its output weights.
///
/// # Shapes
/// Returns `[d_hidden][p]` (columns of PyTorch's `fc2.weight [p, d_hidden]`).
pub fn fc2_columns(weights: &MlpWeights) -> Vec<Vec<f64>> {
    (0..weights.d_hidden()).map(|n| weights.output(n)).collect()
}

/// The matrix of cosine similarities between all pairs of `rows`.
///
/// # Shapes
/// `rows: [n][d]` -> `[n][n]`, symmetric, diagonal 1 for nonzero rows.
///
/// # Panics
/// If the rows differ in length.
pub fn cosine_similarity(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let norms: Vec<f64> = rows
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let mut sim = vec![vec![0.0; rows.len()]; rows.len()];
    for i in 0..rows.len() {
        for j in i..rows.len() {
            assert_eq!(rows[i].len(), rows[j].len(), "rows differ in length");
            if norms[i] > 0.0 && norms[j] > 0.0 {
                let dot: f64 = rows[i].iter().zip(&rows[j]).map(|(x, y)| x * y).sum();
                let s = dot / (norms[i] * norms[j]);
                sim[i][j] = s;
                sim[j][i] = s;
            }
        }
    }
    sim
}

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

/// The same `n` points in at most `n` coordinates: rows whose pairwise inner products (hence
/// Euclidean distances, norms and cosines) equal those of `rows`, from a Cholesky factor of the
/// Gram matrix `G = X·Xᵀ = L·Lᵀ` (pivots below `1e-12·max(diag G)` count as zero, so a
/// rank-deficient set, dead neurons for instance, works). Rows of `L` are an isometric image of
/// the rows of `X` (an orthonormal change of basis of their span), so k-means and t-SNE give the
/// same result on them as on `rows`, while each distance costs `n` operations instead of `d`:
/// the 100 activation vectors of 12,769 values become 100 vectors of 100.
/// Rows already no longer than `n` are returned as they are.
///
/// # Shapes
/// `rows: [n][d]` -> `[n][min(n, d)]`.
pub fn isometric_coordinates(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = rows.len();
    if rows.first().is_none_or(|r| r.len() <= n) {
        return rows.to_vec();
    }
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let gram: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| dot(&rows[i], &rows[j])).collect())
        .collect();
    let tiny = 1e-12 * (0..n).map(|i| gram[i][i]).fold(0.0, f64::max);
    let mut l = vec![vec![0.0; n]; n];
    for j in 0..n {
        let pivot = gram[j][j] - dot(&l[j][..j], &l[j][..j]);
        if pivot <= tiny {
            continue; // in the span of the rows before it: column j stays zero
        }
        let root = pivot.sqrt();
        l[j][j] = root;
        for i in j + 1..n {
            l[i][j] = (gram[i][j] - dot(&l[i][..j], &l[j][..j])) / root;
        }
    }
    l
}

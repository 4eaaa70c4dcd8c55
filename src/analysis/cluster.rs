//! k-means clusters (linfa-clustering) and their agreement with labels (adjusted Rand index).

use linfa::{
    traits::{Fit, Predict},
    DatasetBase,
};
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand_xoshiro::{rand_core::SeedableRng, Xoshiro256Plus};

use crate::error::{Error, Result};

/// Rows stacked into an ndarray matrix, checking they are rectangular and non-empty.
pub(crate) fn to_array(rows: &[Vec<f64>], what: &'static str) -> Result<Array2<f64>> {
    let d = rows.first().map_or(0, Vec::len);
    if rows.is_empty() || d == 0 || rows.iter().any(|r| r.len() != d) {
        return Err(Error::Analysis {
            what,
            reason: format!(
                "needs a non-empty set of equal-length vectors, got {} rows",
                rows.len()
            ),
        });
    }
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Array2::from_shape_vec((rows.len(), d), flat).map_err(|e| Error::Analysis {
        what,
        reason: e.to_string(),
    })
}

/// k-means with `k` clusters (linfa-clustering's k-means++ initialisation, 10 runs, best kept),
/// seeded: the same rows and seed give the same labels.
///
/// # Shapes
/// `rows: [n][d]` -> `[n]` cluster labels in `0..k`.
///
/// # Errors
/// [`Error::Analysis`] if `k` is 0 or above `n`, or the rows are ragged or empty.
pub fn kmeans(rows: &[Vec<f64>], k: usize, seed: u64) -> Result<Vec<usize>> {
    let x = to_array(rows, "k-means")?;
    if k == 0 || k > rows.len() {
        return Err(Error::Analysis {
            what: "k-means",
            reason: format!("k = {k} must be in 1..={}", rows.len()),
        });
    }
    let dataset = DatasetBase::from(x.clone());
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(10)
        .max_n_iterations(300)
        .tolerance(1e-6)
        .fit(&dataset)
        .map_err(|e| Error::Analysis {
            what: "k-means",
            reason: e.to_string(),
        })?;
    Ok(model.predict(&x).to_vec())
}

/// Adjusted Rand index (Hubert & Arabie 1985) between two labellings of the same items:
/// 1 for identical partitions (up to renaming), about 0 for independent ones.
///
/// `ARI = (Σ_ij C(n_ij, 2) - E) / (½(Σ_i C(a_i, 2) + Σ_j C(b_j, 2)) - E)` with
/// `E = Σ_i C(a_i, 2) Σ_j C(b_j, 2) / C(n, 2)`, `n_ij` the contingency table and `a`, `b` its
/// margins. When both partitions are trivial (the denominator is 0) it returns 1.
///
/// # Panics
/// If the labellings differ in length.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "labellings differ in length");
    let c2 = |x: usize| (x * x.saturating_sub(1)) as f64 / 2.0;
    let mut table = std::collections::HashMap::new();
    let (mut rows, mut cols) = (
        std::collections::HashMap::new(),
        std::collections::HashMap::new(),
    );
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_insert(0usize) += 1;
        *rows.entry(x).or_insert(0usize) += 1;
        *cols.entry(y).or_insert(0usize) += 1;
    }
    let index: f64 = table.values().map(|&v| c2(v)).sum();
    let sum_a: f64 = rows.values().map(|&v| c2(v)).sum();
    let sum_b: f64 = cols.values().map(|&v| c2(v)).sum();
    let total = c2(a.len());
    let expected = if total > 0.0 {
        sum_a * sum_b / total
    } else {
        0.0
    };
    let max = 0.5 * (sum_a + sum_b);
    if max == expected {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

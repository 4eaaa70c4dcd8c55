//! Two-dimensional t-SNE embeddings (Barnes-Hut, linfa-tsne over the bhtsne crate), seeded.

use linfa::traits::Transformer;
use linfa_tsne::TSneParams;
use rand_xoshiro::{rand_core::SeedableRng, Xoshiro256Plus};

use crate::{
    analysis::cluster::to_array,
    error::{Error, Result},
};

/// A 2-D t-SNE embedding of `rows` with the given perplexity, lowered to `(n - 1) / 3` when the
/// set is too small for it (t-SNE's constraint), 1000 iterations, exact gradients (θ = 0; the
/// sets here have at most a few hundred points). The same rows and seed give the same output.
///
/// # Shapes
/// `rows: [n][d]` -> `[n][2]`.
///
/// # Errors
/// [`Error::Analysis`] for fewer than 4 rows, ragged rows, or rows of dimension below 2.
pub fn tsne(rows: &[Vec<f64>], perplexity: f64, seed: u64) -> Result<Vec<[f64; 2]>> {
    let x = to_array(rows, "t-SNE")?;
    if rows.len() < 4 || x.ncols() < 2 {
        return Err(Error::Analysis {
            what: "t-SNE",
            reason: format!("needs at least 4 rows of dimension 2, got {:?}", x.dim()),
        });
    }
    let perplexity = perplexity.min((rows.len() - 1) as f64 / 3.0);
    let embedding = TSneParams::embedding_size_with_rng(2, Xoshiro256Plus::seed_from_u64(seed))
        .perplexity(perplexity)
        .approx_threshold(0.0)
        .max_iter(1000)
        .transform(x)
        .map_err(|e| Error::Analysis {
            what: "t-SNE",
            reason: e.to_string(),
        })?;
    Ok(embedding.rows().into_iter().map(|r| [r[0], r[1]]).collect())
}

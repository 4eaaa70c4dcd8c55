//! Accuracy against the fraction of neurons replaced by their cosines.
//!
//! Points at fractions `m / d_hidden` for `m` on an even grid. Random draws replace the first `m`
//! neurons of a seeded random permutation, so each draw's sets are nested and its whole curve costs
//! about one forward pass ([`GridLogits`]). Two fixed orders bracket the draws: best fit first
//! (highest mean R² of a neuron's three cosine fits) and worst first. Accuracies are on all the
//! data set's pairs, in `f32`; the all-replaced point is also given exactly, in `f64`.

use serde::{Deserialize, Serialize};

use crate::{
    analysis::{basis::Basis, fast::GridLogits, fourier::NeuronFit, replace::replacement_accuracy},
    data::ModularDataset,
    error::{Error, Result},
    model::MlpWeights,
    mt19937::Mt19937,
};

/// The curves of a replacement sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplacementSweep {
    /// Neurons replaced at each point, ascending from 0 to `d_hidden`.
    pub counts: Vec<usize>,
    /// `counts / d_hidden`.
    pub fractions: Vec<f64>,
    /// `draws[i][j]`: accuracy of random draw `i` at point `j`.
    pub draws: Vec<Vec<f64>>,
    /// Per point, the lowest accuracy over the draws.
    pub draw_min: Vec<f64>,
    /// Per point, the mean accuracy over the draws.
    pub draw_mean: Vec<f64>,
    /// Per point, the highest accuracy over the draws.
    pub draw_max: Vec<f64>,
    /// Accuracy replacing the best-fitted neurons first.
    pub best_first: Vec<f64>,
    /// Accuracy replacing the worst-fitted neurons first.
    pub worst_first: Vec<f64>,
    /// Exact (`f64`) full-grid accuracy with every neuron replaced.
    pub all_replaced: f64,
    /// Exact (`f64`) validation accuracy with every neuron replaced.
    pub all_replaced_val: f64,
}

/// Mean R² of a neuron's three fits: the order of "best fit first".
pub fn fit_quality(fit: &NeuronFit) -> f64 {
    (fit.in_a.r2 + fit.in_b.r2 + fit.out.r2) / 3.0
}

/// What a curve needs besides its order.
struct Curves<'a> {
    weights: &'a MlpWeights,
    /// Per neuron, its `[input a, input b, output]` with the cosines written in.
    replaced: Vec<[Vec<f64>; 3]>,
    base: GridLogits,
    data: &'a ModularDataset,
    counts: Vec<usize>,
}

impl Curves<'_> {
    /// Accuracy after replacing `order[..m]` for each `m` in `counts`.
    fn curve(&self, order: &[usize]) -> Vec<f64> {
        let w = self.weights;
        let mut logits = self.base.clone();
        let mut done = 0;
        self.counts
            .iter()
            .map(|&m| {
                for &n in &order[done..m] {
                    logits.add_neuron(&w.input_a(n), &w.input_b(n), &w.output(n), -1.0);
                    let [a, b, out] = &self.replaced[n];
                    logits.add_neuron(a, b, out, 1.0);
                }
                done = m;
                logits.accuracy(self.data)
            })
            .collect()
    }
}

/// The sweep with `points` evenly spaced counts (at least 2: none and all replaced) and `draws`
/// random orders seeded from `seed`. `fits` are in the coordinates of `data`'s operation, as for
/// [`replacement_accuracy`]. See the [module docs](self).
///
/// # Errors
/// [`Error::Analysis`] if `points < 2`, `draws == 0`, or `fits` does not hold one fit per neuron.
pub fn replacement_sweep(
    weights: &MlpWeights,
    fits: &[NeuronFit],
    data: &ModularDataset,
    points: usize,
    draws: usize,
    seed: u64,
) -> Result<ReplacementSweep> {
    let h = weights.d_hidden();
    if points < 2 || draws == 0 || fits.len() != h {
        return Err(Error::Analysis {
            what: "replacement sweep",
            reason: format!(
                "needs points >= 2 (got {points}), draws >= 1 (got {draws}), one fit per neuron ({} fits, {h} neurons)",
                fits.len()
            ),
        });
    }
    let mut counts: Vec<usize> = (0..points)
        .map(|i| ((i * h) as f64 / (points - 1) as f64).round() as usize)
        .collect();
    counts.dedup();
    let mut base = GridLogits::zeros(weights.p());
    for n in 0..h {
        base.add_neuron(
            &weights.input_a(n),
            &weights.input_b(n),
            &weights.output(n),
            1.0,
        );
    }
    let basis = Basis::for_operation(data.operation(), data.p());
    let m = basis.m();
    let curves = Curves {
        weights,
        replaced: fits
            .iter()
            .enumerate()
            .map(|(n, f)| {
                basis.unview_neuron(
                    [
                        f.in_a.reconstruct(m),
                        f.in_b.reconstruct(m),
                        f.out.reconstruct(m),
                    ],
                    [weights.input_a(n), weights.input_b(n), weights.output(n)],
                )
            })
            .collect(),
        base,
        data,
        counts,
    };
    let mut rng = Mt19937::from_u64(seed);
    let draw_curves: Vec<Vec<f64>> = (0..draws)
        .map(|_| {
            let order: Vec<usize> = rng.permutation(h).into_iter().map(|n| n as usize).collect();
            curves.curve(&order)
        })
        .collect();
    let mut by_quality: Vec<usize> = (0..h).collect();
    by_quality.sort_by(|&i, &j| fit_quality(&fits[j]).total_cmp(&fit_quality(&fits[i])));
    let best_first = curves.curve(&by_quality);
    by_quality.reverse();
    let worst_first = curves.curve(&by_quality);
    let counts = curves.counts;
    let column = |j: usize| draw_curves.iter().map(move |c| c[j]);
    let all: Vec<usize> = (0..h).collect();
    let exact = replacement_accuracy(weights, fits, &all, data);
    Ok(ReplacementSweep {
        fractions: counts.iter().map(|&m| m as f64 / h as f64).collect(),
        draw_min: (0..counts.len())
            .map(|j| column(j).fold(f64::INFINITY, f64::min))
            .collect(),
        draw_max: (0..counts.len())
            .map(|j| column(j).fold(f64::NEG_INFINITY, f64::max))
            .collect(),
        draw_mean: (0..counts.len())
            .map(|j| column(j).sum::<f64>() / draws as f64)
            .collect(),
        counts,
        draws: draw_curves,
        best_first,
        worst_first,
        all_replaced: exact.full,
        all_replaced_val: exact.val,
    })
}

//! Analyses of a trained network, on host copies of its weights ([`crate::MlpWeights`]),
//! so they run and test without a device. Each returns data; [`report`](crate::report) draws it.
//!
//! Crates: k-means from `linfa-clustering`, t-SNE from `linfa-tsne` (Barnes-Hut, `bhtsne`), both
//! seeded. The maths of each analysis is in `docs/analysis.md`.

pub mod basis;
pub mod cluster;
pub mod construction;
pub mod embed;
pub mod evaluate;
pub mod fast;
pub mod fourier;
pub mod frequencies;
pub mod llc;
pub mod phases;
pub mod progress;
pub mod replace;
pub mod similarity;
pub mod sweep_replacement;
pub mod waveform;

pub use evaluate::{accuracy, predictions};
pub use replace::{random_neurons, replace_neurons, replacement_accuracy, ReplacementAccuracy};

use crate::{
    analysis::{
        basis::Basis,
        fourier::{fit_neurons, NeuronFit},
        sweep_replacement::fit_quality,
    },
    data::{ModularDataset, Split},
    model::MlpWeights,
};

/// What `grok` and `analyze` report about a set of weights: every neuron's cosine fits in the
/// coordinates of the data set's operation, how well those and the identity coordinates explain
/// the weights, the full-grid accuracy, and the accuracies with all neurons replaced by their
/// cosines.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightAnalysis {
    /// The coordinates of the fits ([`Basis::for_operation`]).
    pub basis: Basis,
    /// One fit per neuron, in neuron order, in `basis`.
    pub fits: Vec<NeuronFit>,
    /// Mean R² of every neuron's three fits in `basis`.
    pub mean_r2: f64,
    /// Mean R² of every neuron's three fits in the identity coordinates (the residues).
    pub mean_r2_identity: f64,
    /// Accuracy on all of the data set's pairs.
    pub full_accuracy: f64,
    /// Accuracies with every neuron replaced by its fitted cosines.
    pub replaced_all: ReplacementAccuracy,
}

impl std::fmt::Display for WeightAnalysis {
    /// One line on the fits: `cosine fits in identity coordinates: mean R² 0.859 (identity
    /// coordinates: 0.859)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cosine fits in {} coordinates: mean R² {:.3} (identity coordinates: {:.3})",
            self.basis.name(),
            self.mean_r2,
            self.mean_r2_identity
        )
    }
}

/// Mean R² of the three fits of every neuron (the mean of [`fit_quality`]).
pub fn mean_r2(fits: &[NeuronFit]) -> f64 {
    fits.iter().map(fit_quality).sum::<f64>() / fits.len().max(1) as f64
}

/// The neurons' cosine fits in the coordinates of an operation, and how well they and the
/// residues explain the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct BasisFits {
    /// The coordinates ([`Basis::for_operation`]).
    pub basis: Basis,
    /// One fit per neuron, in neuron order, of `basis.view(weights)`.
    pub fits: Vec<NeuronFit>,
    /// Mean R² of the fits in `basis`.
    pub mean_r2: f64,
    /// Mean R² of the fits in the identity coordinates (the residues).
    pub mean_r2_identity: f64,
}

/// Fits every neuron of `weights` in the coordinates of `data`'s operation, with the mean R²
/// there and in the residues.
pub fn fit_in_basis(weights: &MlpWeights, data: &ModularDataset) -> BasisFits {
    let basis = Basis::for_operation(data.operation(), data.p());
    let fits = fit_neurons(&basis.view(weights));
    let mean_r2_identity = if basis.is_identity() {
        mean_r2(&fits)
    } else {
        mean_r2(&fit_neurons(weights))
    };
    BasisFits {
        mean_r2: mean_r2(&fits),
        mean_r2_identity,
        basis,
        fits,
    }
}

/// Bytes [`analyse_weights`] needs for modulus `p` and `d_hidden` neurons, before any of it is
/// taken: the data set (pairs, labels and shuffle, three `u32` per pair, with copies) and the
/// fits (weights widened to `f64` and their views).
pub fn memory_estimate(p: usize, d_hidden: usize) -> u64 {
    let (p, h) = (p as f64, d_hidden as f64);
    crate::memory::bytes(&[(p * p, 24.0), (p * h, 48.0)])
}

/// Fits every neuron of `weights` in the coordinates of `data`'s operation ([`fit_in_basis`])
/// and measures the accuracies on `data` (whose `p` must be the weights').
///
/// # Panics
/// If `data` is for another modulus than `weights`.
pub fn analyse_weights(weights: &MlpWeights, data: &ModularDataset) -> WeightAnalysis {
    assert_eq!(data.p(), weights.p(), "the data set is for another modulus");
    let BasisFits {
        basis,
        fits,
        mean_r2,
        mean_r2_identity,
    } = fit_in_basis(weights, data);
    let all: Vec<usize> = (0..weights.d_hidden()).collect();
    WeightAnalysis {
        full_accuracy: accuracy(weights, data, Split::Full),
        replaced_all: replacement_accuracy(weights, &fits, &all, data),
        mean_r2,
        mean_r2_identity,
        basis,
        fits,
    }
}

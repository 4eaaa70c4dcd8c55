//! Analyses of a trained network, on host copies of its weights ([`crate::MlpWeights`]),
//! so they run and test without a device. Each returns data; [`report`](crate::report) draws it.
//!
//! Crates: k-means from `linfa-clustering`, t-SNE from `linfa-tsne` (Barnes-Hut, `bhtsne`), both
//! seeded. The maths of each analysis is in `docs/analysis.md`.

pub mod activations;
pub mod cluster;
pub mod construction;
pub mod embed;
pub mod evaluate;
pub mod fast;
pub mod frequencies;
pub mod phases;
pub mod replace;
pub mod similarity;
pub mod sweep_replacement;
pub mod waveform;

pub use evaluate::{accuracy, predictions};
pub use replace::{random_neurons, replace_neurons, replacement_accuracy, ReplacementAccuracy};

use crate::{
    data::{ModularDataset, Split},
    fourier::{fit_neurons, NeuronFit},
    model::MlpWeights,
};

/// What `grok` and `analyze` report about a set of weights: every neuron's cosine fits, the
/// full-grid accuracy, and the accuracies with all neurons replaced by their cosines.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightAnalysis {
    /// One fit per neuron, in neuron order.
    pub fits: Vec<NeuronFit>,
    /// Accuracy on all p² pairs.
    pub full_accuracy: f64,
    /// Accuracies with every neuron replaced by its fitted cosines.
    pub replaced_all: ReplacementAccuracy,
}

/// Fits every neuron of `weights` and measures the accuracies on `data` (whose `p` must be the
/// weights').
///
/// # Panics
/// If `data` is for another modulus than `weights`.
pub fn analyse_weights(weights: &MlpWeights, data: &ModularDataset) -> WeightAnalysis {
    assert_eq!(data.p(), weights.p(), "the data set is for another modulus");
    let fits = fit_neurons(weights);
    let all: Vec<usize> = (0..weights.d_hidden()).collect();
    WeightAnalysis {
        full_accuracy: accuracy(weights, data, Split::Full),
        replaced_all: replacement_accuracy(weights, &fits, &all, data),
        fits,
    }
}

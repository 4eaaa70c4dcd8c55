//! Analyses of a trained network, on host copies of its weights ([`MlpWeights`](crate::MlpWeights)),
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

//! Analyses of a trained network, on host copies of its weights ([`MlpWeights`](crate::MlpWeights)),
//! so they run and test without a device.

pub mod evaluate;
pub mod replace;

pub use evaluate::{accuracy, predictions};
pub use replace::{random_neurons, replace_neurons, replacement_accuracy, ReplacementAccuracy};

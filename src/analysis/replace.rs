//! Replacing neurons by their fitted cosines: the notebook's `forward_with_replaced_weights`.
//!
//! A replaced neuron `n` has `fc1.weight[n, :p]`, `fc1.weight[n, p:]` and `fc2.weight[:, n]`
//! overwritten by the cosines fitted to them ([`fit_neurons`](crate::analysis::fourier::fit_neurons)). If the
//! network's algorithm lives in those cosines, accuracy survives the replacement. All functions
//! work on copies: the caller's weights and model are never changed.

use serde::{Deserialize, Serialize};

use crate::{
    analysis::{basis::Basis, evaluate::accuracy, fourier::NeuronFit},
    data::{ModularDataset, Split},
    model::MlpWeights,
    mt19937::Mt19937,
};

/// Accuracies of a network with some neurons replaced by their cosines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplacementAccuracy {
    /// The neurons that were replaced, ascending.
    pub neurons: Vec<usize>,
    /// Accuracy on all of the data set's pairs.
    pub full: f64,
    /// Accuracy on the validation rows.
    pub val: f64,
}

/// A copy of `weights` with each neuron in `neurons` replaced by its fitted cosines.
///
/// # Panics
/// If `fits` does not hold one fit per neuron or a neuron index is out of range.
pub fn replace_neurons(weights: &MlpWeights, fits: &[NeuronFit], neurons: &[usize]) -> MlpWeights {
    assert_eq!(fits.len(), weights.d_hidden(), "one fit per neuron");
    let p = weights.p();
    let mut replaced = weights.clone();
    for &n in neurons {
        let fit = &fits[n];
        replaced.set_neuron(
            n,
            &fit.in_a.reconstruct(p),
            &fit.in_b.reconstruct(p),
            &fit.out.reconstruct(p),
        );
    }
    replaced
}

/// `floor(fraction * d_hidden)` distinct neurons drawn uniformly with `seed`, ascending: the
/// notebook's `randperm(d_hidden)[:int(p_l1 * d_hidden)]`, drawn as NumPy's
/// `RandomState([seed & 0xffffffff, seed >> 32]).permutation(d_hidden)` ([`Mt19937::from_u64`]).
///
/// # Panics
/// If `fraction` is not in `[0, 1]`.
pub fn random_neurons(d_hidden: usize, fraction: f64, seed: u64) -> Vec<usize> {
    assert!(
        (0.0..=1.0).contains(&fraction),
        "fraction {fraction} outside [0, 1]"
    );
    let count = (fraction * d_hidden as f64).floor() as usize;
    let mut chosen: Vec<usize> = Mt19937::from_u64(seed).permutation(d_hidden)[..count]
        .iter()
        .map(|&n| n as usize)
        .collect();
    chosen.sort_unstable();
    chosen
}

/// A copy of `weights` with each neuron in `neurons` replaced by its cosines fitted in `basis`
/// (`fits` are of `basis.view(weights)`); residues with no coordinate keep their weights.
///
/// # Panics
/// As [`replace_neurons`], and if `basis` is for another modulus.
pub fn replace_neurons_in(
    basis: &Basis,
    weights: &MlpWeights,
    fits: &[NeuronFit],
    neurons: &[usize],
) -> MlpWeights {
    basis.unview(
        &replace_neurons(&basis.view(weights), fits, neurons),
        weights,
    )
}

/// Accuracy on all of `data`'s rows and on its validation rows with `neurons` replaced by their
/// cosines in the coordinates of `data`'s operation (`fits` are of
/// `Basis::for_operation(data.operation(), p).view(weights)`; for addition, of the weights).
pub fn replacement_accuracy(
    weights: &MlpWeights,
    fits: &[NeuronFit],
    neurons: &[usize],
    data: &ModularDataset,
) -> ReplacementAccuracy {
    let basis = Basis::for_operation(data.operation(), data.p());
    let replaced = replace_neurons_in(&basis, weights, fits, neurons);
    let mut sorted = neurons.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    ReplacementAccuracy {
        neurons: sorted,
        full: accuracy(&replaced, data, Split::Full),
        val: accuracy(&replaced, data, Split::Val),
    }
}

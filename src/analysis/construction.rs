//! The post's untrained construction: a network of random cosine neurons, no training.
//!
//! Neuron `n` draws a frequency `k` uniform in `1..=p/2` and phases `s1, s2` uniform in
//! `[0, 2π)`; with `w = 2πk/p` its input weights are `0.5 cos(w a + s1)` and `0.5 cos(w b + s2)`
//! and its output weights `cos(w c + s1 + s2)` (the phase-sum law, see
//! [`phases`](crate::analysis::phases)). Drawing phases from `[0, π]` only, with `k ≤ p/2`,
//! covers half the circle and loses about a quarter of the accuracy (numpy check:
//! `reference/construction_check.py`). Accuracy is on all p² pairs, from [`GridLogits`], with
//! the networks of one seed nested (the first `m` neurons of the largest).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::{
    analysis::fast::GridLogits,
    data::ModularDataset,
    error::{Error, Result},
    model::MlpWeights,
    mt19937::Mt19937,
};

/// One random cosine neuron.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineNeuron {
    /// Frequency `k` in `1..=p/2`.
    pub freq: usize,
    /// Phase of the input-a cosine.
    pub phase_a: f64,
    /// Phase of the input-b cosine.
    pub phase_b: f64,
}

impl CosineNeuron {
    /// Input-a, input-b and output weight vectors of the neuron for modulus `p`.
    pub fn weights(&self, p: usize) -> [Vec<f64>; 3] {
        let angle = |x: usize| 2.0 * PI * ((self.freq * x) % p) as f64 / p as f64;
        [
            (0..p)
                .map(|x| 0.5 * (angle(x) + self.phase_a).cos())
                .collect(),
            (0..p)
                .map(|x| 0.5 * (angle(x) + self.phase_b).cos())
                .collect(),
            (0..p)
                .map(|x| (angle(x) + self.phase_a + self.phase_b).cos())
                .collect(),
        ]
    }
}

/// `count` random cosine neurons for modulus `p`, seeded. See the [module docs](self).
///
/// # Errors
/// [`Error::InvalidModulus`] if `p < 2`, or if `p / 2` is 2³² or more (frequencies are drawn
/// as 32-bit integers).
pub fn random_cosine_neurons(p: usize, count: usize, seed: u64) -> Result<Vec<CosineNeuron>> {
    if p < 2 {
        return Err(Error::InvalidModulus {
            p,
            reason: "the construction needs a frequency in 1..=p/2".into(),
        });
    }
    let top = u32::try_from(p / 2 - 1).map_err(|_| Error::InvalidModulus {
        p,
        reason: "the construction draws frequencies below 2^32".into(),
    })?;
    let mut rng = Mt19937::from_u64(seed);
    Ok((0..count)
        .map(|_| CosineNeuron {
            freq: 1 + rng.interval(top) as usize,
            phase_a: 2.0 * PI * rng.uniform_f64(),
            phase_b: 2.0 * PI * rng.uniform_f64(),
        })
        .collect())
}

/// The construction's network as weights (PyTorch orientation).
///
/// # Errors
/// As [`MlpWeights::new`] (no neurons).
pub fn construction_weights(p: usize, neurons: &[CosineNeuron]) -> Result<MlpWeights> {
    let h = neurons.len();
    let mut weights = MlpWeights::new(p, h, vec![0.0; h * 2 * p], vec![0.0; p * h])?;
    for (n, neuron) in neurons.iter().enumerate() {
        let [a, b, out] = neuron.weights(p);
        weights.set_neuron(n, &a, &b, &out);
    }
    Ok(weights)
}

/// Accuracy of the construction against its number of neurons, for several seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstructionCurve {
    /// The modulus.
    pub p: usize,
    /// Numbers of neurons, ascending.
    pub sizes: Vec<usize>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// `accuracy[i][j]`: seed `i`, `sizes[j]` neurons, on all p² pairs.
    pub accuracy: Vec<Vec<f64>>,
}

impl ConstructionCurve {
    /// Mean accuracy over seeds at each size.
    pub fn mean(&self) -> Vec<f64> {
        (0..self.sizes.len())
            .map(|j| self.accuracy.iter().map(|a| a[j]).sum::<f64>() / self.accuracy.len() as f64)
            .collect()
    }
}

/// Accuracy of random cosine networks of each size in `sizes`, one nested family per seed.
///
/// # Errors
/// [`Error::InvalidModulus`] if `p < 2`; [`Error::Analysis`] if `sizes` or `seeds` is empty
/// or a size is 0.
pub fn construction_curve(p: usize, sizes: &[usize], seeds: &[u64]) -> Result<ConstructionCurve> {
    if sizes.is_empty() || seeds.is_empty() || sizes.contains(&0) {
        return Err(Error::Analysis {
            what: "construction",
            reason: format!("needs positive sizes ({sizes:?}) and at least one seed"),
        });
    }
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    let largest = *sizes.last().expect("non-empty");
    let addition = ModularDataset::new(p, 0.5, 0)?;
    let accuracy = seeds
        .iter()
        .map(|&seed| {
            let neurons = random_cosine_neurons(p, largest, seed)?;
            let mut logits = GridLogits::zeros(p);
            let mut done = 0;
            Ok(sizes
                .iter()
                .map(|&m| {
                    for neuron in &neurons[done..m] {
                        let [a, b, out] = neuron.weights(p);
                        logits.add_neuron(&a, &b, &out, 1.0);
                    }
                    done = m;
                    logits.accuracy(&addition)
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok(ConstructionCurve {
        p,
        sizes,
        seeds: seeds.to_vec(),
        accuracy,
    })
}

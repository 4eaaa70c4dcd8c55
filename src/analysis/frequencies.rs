//! How many neurons use each frequency.

use serde::{Deserialize, Serialize};

use crate::analysis::fourier::NeuronFit;

/// Neurons per frequency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequencyHistogram {
    /// `counts[k]`: neurons whose input-a fit has frequency `k`, for `k = 0..=p/2` (entry 0 is 0).
    pub counts: Vec<usize>,
    /// Frequencies used by at least one neuron.
    pub distinct: usize,
}

/// The frequency label of each neuron: the frequency of its input-a fit.
pub fn neuron_frequencies(fits: &[NeuronFit]) -> Vec<usize> {
    fits.iter().map(|f| f.in_a.freq).collect()
}

/// Histogram of `freqs` over `0..=p/2`.
///
/// # Panics
/// If a frequency exceeds `p/2`.
pub fn frequency_histogram(freqs: &[usize], p: usize) -> FrequencyHistogram {
    let mut counts = vec![0; p / 2 + 1];
    for &k in freqs {
        assert!(k <= p / 2, "frequency {k} above p/2 = {}", p / 2);
        counts[k] += 1;
    }
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    FrequencyHistogram { counts, distinct }
}

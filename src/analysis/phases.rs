//! Fitted parameters of input a against input b, and the phase-sum law.
//!
//! A neuron with input cosines `cos(w a + φ_a)`, `cos(w b + φ_b)` (`w = 2πk/p`) has, after
//! the ReLU, a component `cos(w (a + b) + φ_a + φ_b)`; an output weight `cos(w c + ψ)` turns it into
//! a logit that peaks at `c = a + b` exactly when `ψ = φ_a + φ_b` (Bussmann 2023). The gap of a
//! neuron is `|wrap(ψ - φ_a - φ_b)|`, with `wrap` into `(-π, π]`; it is defined only for neurons
//! whose three fits share one frequency.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::analysis::fourier::NeuronFit;

/// `x` wrapped into `(-π, π]`.
pub fn wrap_angle(x: f64) -> f64 {
    let y = (x + PI).rem_euclid(2.0 * PI) - PI;
    if y <= -PI {
        y + 2.0 * PI
    } else {
        y
    }
}

/// Relations between the fitted parameters of a network's neurons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRelations {
    /// Fraction of neurons whose input-a and input-b fits share a frequency.
    pub ab_freq_agree: f64,
    /// Fraction of neurons whose input-a, input-b and output fits share one frequency.
    pub all_freq_agree: f64,
    /// Per neuron, `scale_b / scale_a` (∞ where `scale_a` is 0).
    pub scale_ratio: Vec<f64>,
    /// Median of `scale_ratio`.
    pub median_scale_ratio: f64,
    /// Per neuron, the phase-sum gap `|wrap(ψ - φ_a - φ_b)|` in radians; `None` where the three
    /// frequencies disagree.
    pub phase_gap: Vec<Option<f64>>,
    /// Median gap over the neurons that have one (`None` if none has).
    pub median_gap: Option<f64>,
}

/// The relations of a set of neuron fits. See the [module docs](self).
pub fn phase_relations(fits: &[NeuronFit]) -> PhaseRelations {
    let n = fits.len().max(1) as f64;
    let ab = fits.iter().filter(|f| f.in_a.freq == f.in_b.freq).count();
    let scale_ratio: Vec<f64> = fits.iter().map(|f| f.in_b.scale / f.in_a.scale).collect();
    let phase_gap: Vec<Option<f64>> = fits
        .iter()
        .map(|f| {
            (f.in_a.freq == f.in_b.freq && f.in_a.freq == f.out.freq)
                .then(|| wrap_angle(f.out.phase - f.in_a.phase - f.in_b.phase).abs())
        })
        .collect();
    let gaps: Vec<f64> = phase_gap.iter().flatten().copied().collect();
    PhaseRelations {
        ab_freq_agree: ab as f64 / n,
        all_freq_agree: gaps.len() as f64 / n,
        median_scale_ratio: median(&scale_ratio).unwrap_or(f64::NAN),
        scale_ratio,
        median_gap: median(&gaps),
        phase_gap,
    }
}

/// The median of `values` (mean of the two middle values for an even count); `None` if empty.
/// NaNs sort last.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

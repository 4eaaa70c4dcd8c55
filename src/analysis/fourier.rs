//! Single-cosine fits of weight vectors over Z_p, by the discrete Fourier transform (rustfft).
//!
//! For a vector `y[x]`, `x = 0..p`, with DFT `Y[k] = Σ_x y[x] e^(-2πi k x / p)`, the fit is
//!
//! ```text
//! y[x] ≈ offset + scale · cos(2π k x / p + phase)
//! ```
//!
//! with `k` the frequency in `1..=p/2` whose cosine explains the most variance, `phase = arg Y[k]`,
//! `scale = 2|Y[k]| / p` (`|Y[k]| / p` at the Nyquist bin `k = p/2` of an even p, where the
//! cosine has no mirror), `offset = mean(y)`, and `r2 = 1 - SS_res / SS_tot` (0 for a constant
//! vector). For odd p the choice of `k` is the argmax of `|Y[k]|` over `1..=(p-1)/2`.
//!
//! Two corrections to the origin notebook, whose `find_cosine` searches `yf[1:N//2]` and so never
//! considers `k = p // 2` (56 for p = 113), and reconstructs with `phase = -arg Y[k]`. That
//! mirrored cosine `cos(2πkx/p - φ)` equals ours at `-x`: on the full p² grid the relabelling
//! `a -> -a, b -> -b, c -> -c` maps the mirrored network onto ours, so the accuracy is the same,
//! but on a train/validation split it is not. See `docs/fits.md`.
//!
//! # Example
//! ```
//! use grokking::analysis::fourier::fit_cosine;
//! let p = 31;
//! let y: Vec<f64> = (0..p)
//!     .map(|x| 0.5 + 2.0 * (2.0 * std::f64::consts::PI * 7.0 * x as f64 / p as f64 + 1.0).cos())
//!     .collect();
//! let fit = fit_cosine(&y);
//! assert_eq!(fit.freq, 7);
//! assert!((fit.phase - 1.0).abs() < 1e-9 && (fit.scale - 2.0).abs() < 1e-9);
//! assert!((fit.offset - 0.5).abs() < 1e-9 && (fit.r2 - 1.0).abs() < 1e-9);
//! ```

use std::f64::consts::PI;

use rustfft::{num_complex::Complex, FftPlanner};
use serde::{Deserialize, Serialize};

use crate::{analysis::evaluate::first_argmax, model::MlpWeights};

/// One cosine fitted to a vector over Z_p. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineFit {
    /// Frequency `k` in `1..=p/2`.
    pub freq: usize,
    /// Phase `arg Y[k]`, in `(-π, π]`.
    pub phase: f64,
    /// Amplitude of the cosine.
    pub scale: f64,
    /// Mean of the vector.
    pub offset: f64,
    /// Fraction of the vector's variance the cosine explains.
    pub r2: f64,
}

/// The fits of one hidden neuron's three weight vectors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NeuronFit {
    /// Input weights from operand a, `fc1.weight[n, :p]`.
    pub in_a: CosineFit,
    /// Input weights from operand b, `fc1.weight[n, p:]`.
    pub in_b: CosineFit,
    /// Output weights, `fc2.weight[:, n]`.
    pub out: CosineFit,
}

impl CosineFit {
    /// The fitted cosine at `x` for modulus `p`.
    pub fn eval(&self, x: usize, p: usize) -> f64 {
        // Reduce k·x mod p first: the angle stays small and exact for any p.
        let angle = 2.0 * PI * ((self.freq * x) % p) as f64 / p as f64;
        self.offset + self.scale * (angle + self.phase).cos()
    }

    /// The fitted cosine at `x = 0..p`.
    pub fn reconstruct(&self, p: usize) -> Vec<f64> {
        (0..p).map(|x| self.eval(x, p)).collect()
    }
}

/// The DFT `Y[k] = Σ_x y[x] e^(-2πi k x / p)` of `y`, all `p` bins.
pub fn dft(y: &[f64]) -> Vec<Complex<f64>> {
    let mut buffer: Vec<Complex<f64>> = y.iter().map(|&v| Complex::new(v, 0.0)).collect();
    FftPlanner::new()
        .plan_fft_forward(y.len())
        .process(&mut buffer);
    buffer
}

/// Variance explained by the cosine at each frequency `k = 0..=p/2`, summing to the variance of
/// `y` times p (Parseval); entry 0 is always 0.
///
/// # Shapes
/// `y: [p]` -> `[p/2 + 1]`.
pub fn power_spectrum(y: &[f64]) -> Vec<f64> {
    let p = y.len();
    let spectrum = dft(y);
    (0..=p / 2)
        .map(|k| match k {
            0 => 0.0,
            k if 2 * k == p => spectrum[k].norm_sqr() / p as f64,
            k => 2.0 * spectrum[k].norm_sqr() / p as f64,
        })
        .collect()
}

/// Fits one cosine to `y`, a function on Z_p with `p = y.len()`. See the [module docs](self).
///
/// # Panics
/// If `y.len() < 2` (there is no nonzero frequency).
pub fn fit_cosine(y: &[f64]) -> CosineFit {
    let p = y.len();
    assert!(p >= 2, "a cosine fit needs at least 2 points");
    let spectrum = dft(y);
    let power = power_spectrum(y);
    // First maximum wins, as NumPy's argmax.
    let freq = 1 + first_argmax(&power[1..=p / 2]);
    let bin = spectrum[freq];
    let nyquist = 2 * freq == p;
    let scale = if nyquist { 1.0 } else { 2.0 } * bin.norm() / p as f64;
    let offset = y.iter().sum::<f64>() / p as f64;
    let mut fit = CosineFit {
        freq,
        phase: bin.arg(),
        scale,
        offset,
        r2: 0.0,
    };
    let ss_tot: f64 = y.iter().map(|v| (v - offset).powi(2)).sum();
    if ss_tot > 0.0 {
        let ss_res: f64 = y
            .iter()
            .enumerate()
            .map(|(x, v)| (v - fit.eval(x, p)).powi(2))
            .sum();
        fit.r2 = 1.0 - ss_res / ss_tot;
    }
    fit
}

/// Fits every neuron's input-a, input-b and output weights.
pub fn fit_neurons(weights: &MlpWeights) -> Vec<NeuronFit> {
    (0..weights.d_hidden())
        .map(|n| NeuronFit {
            in_a: fit_cosine(&weights.input_a(n)),
            in_b: fit_cosine(&weights.input_b(n)),
            out: fit_cosine(&weights.output(n)),
        })
        .collect()
}

//! Which periodic shape explains a weight vector best: a cosine, a square wave, or a rectified
//! cosine.
//!
//! For a vector `y` over Z_p and its cosine fit's frequency `k` (`w = 2πk/p`), each shape `g` is
//! fitted as `y[x] ≈ α + β g(w x + θ)` by least squares in `α, β` and a search over `θ` on a grid
//! of [`PHASE_STEPS`] phases in `[0, 2π)`, refined to the cosine fit's own phase. Shapes:
//! `cos t`; square wave `sign(cos t)`; rectified cosine `max(cos t, 0)`. The R² of each is
//! `1 - SS_res / SS_tot`. The same search for every shape keeps the comparison fair.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::analysis::fourier::fit_cosine;

/// Phases tried per shape.
pub const PHASE_STEPS: usize = 128;

/// The periodic shapes compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// `cos t`.
    Cosine,
    /// `sign(cos t)`.
    Square,
    /// `max(cos t, 0)`.
    RectifiedCosine,
}

impl Shape {
    /// All shapes, in a fixed order.
    pub const ALL: [Shape; 3] = [Shape::Cosine, Shape::Square, Shape::RectifiedCosine];

    /// The shape at angle `t`.
    pub fn eval(self, t: f64) -> f64 {
        self.of_cos(t.cos())
    }

    /// The shape at an angle whose cosine is `c`.
    pub fn of_cos(self, c: f64) -> f64 {
        match self {
            Shape::Cosine => c,
            Shape::Square => {
                if c >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            }
            Shape::RectifiedCosine => c.max(0.0),
        }
    }
}

/// R² of each shape fitted to one vector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WaveformFit {
    /// Frequency used (the cosine fit's).
    pub freq: usize,
    /// R² of the cosine.
    pub cosine: f64,
    /// R² of the square wave.
    pub square: f64,
    /// R² of the rectified cosine.
    pub rectified: f64,
}

impl WaveformFit {
    /// The shape with the highest R² (the cosine on ties).
    pub fn best(&self) -> Shape {
        let mut best = (Shape::Cosine, self.cosine);
        for (s, r) in [
            (Shape::Square, self.square),
            (Shape::RectifiedCosine, self.rectified),
        ] {
            if r > best.1 {
                best = (s, r);
            }
        }
        best.0
    }
}

/// Fits the three shapes to `y` at the frequency of its cosine fit. See the [module docs](self).
///
/// # Panics
/// If `y.len() < 2`.
pub fn fit_waveforms(y: &[f64]) -> WaveformFit {
    let fit = fit_cosine(y);
    let p = y.len();
    let n = p as f64;
    let mean_y = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|v| (v - mean_y).powi(2)).sum();
    let mut best = [0.0f64; 3];
    if ss_tot > 0.0 {
        let mut c = vec![0.0; p];
        let mut g = vec![0.0; p];
        let phases = (0..PHASE_STEPS)
            .map(|i| 2.0 * PI * i as f64 / PHASE_STEPS as f64)
            .chain(std::iter::once(fit.phase));
        for theta in phases {
            for (x, cx) in c.iter_mut().enumerate() {
                *cx = (2.0 * PI * ((fit.freq * x) % p) as f64 / n + theta).cos();
            }
            for (s, shape) in Shape::ALL.into_iter().enumerate() {
                for (gx, &cx) in g.iter_mut().zip(&c) {
                    *gx = shape.of_cos(cx);
                }
                let mean_g = g.iter().sum::<f64>() / n;
                let (mut sgy, mut sgg) = (0.0, 0.0);
                for (gx, yx) in g.iter().zip(y) {
                    sgy += (gx - mean_g) * (yx - mean_y);
                    sgg += (gx - mean_g).powi(2);
                }
                if sgg > 0.0 {
                    // Explained sum of squares of the one-regressor least-squares fit.
                    best[s] = best[s].max(sgy * sgy / sgg / ss_tot);
                }
            }
        }
    }
    WaveformFit {
        freq: fit.freq,
        cosine: best[0],
        square: best[1],
        rectified: best[2],
    }
}

/// Counts and mean R² over many vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveformSummary {
    /// Vectors compared.
    pub vectors: usize,
    /// Vectors best explained by the cosine.
    pub cosine_best: usize,
    /// Vectors best explained by the square wave.
    pub square_best: usize,
    /// Vectors best explained by the rectified cosine.
    pub rectified_best: usize,
    /// Mean R² of the cosine.
    pub mean_cosine_r2: f64,
    /// Mean R² of the square wave.
    pub mean_square_r2: f64,
    /// Mean R² of the rectified cosine.
    pub mean_rectified_r2: f64,
}

/// Summarises per-vector fits.
pub fn summarize(fits: &[WaveformFit]) -> WaveformSummary {
    let n = fits.len().max(1) as f64;
    let count = |s: Shape| fits.iter().filter(|f| f.best() == s).count();
    WaveformSummary {
        vectors: fits.len(),
        cosine_best: count(Shape::Cosine),
        square_best: count(Shape::Square),
        rectified_best: count(Shape::RectifiedCosine),
        mean_cosine_r2: fits.iter().map(|f| f.cosine).sum::<f64>() / n,
        mean_square_r2: fits.iter().map(|f| f.square).sum::<f64>() / n,
        mean_rectified_r2: fits.iter().map(|f| f.rectified).sum::<f64>() / n,
    }
}

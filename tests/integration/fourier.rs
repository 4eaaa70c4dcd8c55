//! Cosine fits: exact recovery of synthetic cosines, the Nyquist bin, and degenerate inputs.

use crate::common;

use std::f64::consts::PI;

use common::cosine;
use grokking::analysis::fourier::{fit_cosine, fit_neurons, power_spectrum};
use grokking::MlpWeights;

/// Phases a fit must recover exactly (away from ±π, where the sign is a matter of rounding).
const PHASES: [f64; 5] = [0.0, 0.7, -1.3, 2.9, -3.0];

fn assert_recovers(p: usize, k: usize, phase: f64, scale: f64, offset: f64) {
    let fit = fit_cosine(&cosine(p, k, phase, scale, offset));
    assert_eq!(fit.freq, k, "p {p} k {k}");
    assert!(
        (fit.phase - phase).abs() < 1e-9,
        "p {p} k {k}: phase {} vs {phase}",
        fit.phase
    );
    assert!(
        (fit.scale - scale).abs() < 1e-9,
        "p {p} k {k}: scale {}",
        fit.scale
    );
    assert!(
        (fit.offset - offset).abs() < 1e-9,
        "p {p} k {k}: offset {}",
        fit.offset
    );
    assert!((fit.r2 - 1.0).abs() < 1e-9, "p {p} k {k}: r2 {}", fit.r2);
}

#[test]
fn recovers_every_frequency_for_p_113() {
    for k in 1..=56 {
        for (i, &phase) in PHASES.iter().enumerate() {
            assert_recovers(113, k, phase, 0.3 + 0.1 * i as f64, -0.2 + 0.05 * k as f64);
        }
    }
}

#[test]
fn finds_frequency_p_over_two_that_the_notebook_skips() {
    // The notebook's yf[1:N//2] stops at 55 for p = 113.
    assert_recovers(113, 56, 1.1, 0.8, 0.0);
}

#[test]
fn recovers_every_frequency_for_small_odd_p() {
    for p in [3, 5, 7, 31] {
        for k in 1..=p / 2 {
            for &phase in &PHASES {
                assert_recovers(p, k, phase, 1.7, 0.4);
            }
        }
    }
}

#[test]
fn recovers_every_non_nyquist_frequency_for_even_p() {
    for p in [4, 12, 64] {
        for k in 1..p / 2 {
            for &phase in &PHASES {
                assert_recovers(p, k, phase, 0.9, -1.0);
            }
        }
    }
}

#[test]
fn nyquist_bin_of_even_p_has_full_scale() {
    for p in [2, 12, 64] {
        // cos(pi x + phase) at the Nyquist frequency only sees phase 0 or pi.
        assert_recovers(p, p / 2, 0.0, 1.5, 0.25);
        let fit = fit_cosine(&cosine(p, p / 2, PI, 1.5, 0.0));
        assert_eq!(fit.freq, p / 2);
        assert!((fit.phase.abs() - PI).abs() < 1e-9);
        assert!((fit.scale - 1.5).abs() < 1e-9);
    }
}

#[test]
fn dominant_cosine_wins_over_a_weaker_one() {
    let p = 113;
    let strong = cosine(p, 17, 0.4, 1.0, 0.0);
    let weak = cosine(p, 40, -2.0, 0.3, 0.0);
    let y: Vec<f64> = strong.iter().zip(&weak).map(|(a, b)| a + b).collect();
    let fit = fit_cosine(&y);
    assert_eq!(fit.freq, 17);
    assert!((fit.phase - 0.4).abs() < 1e-9 && (fit.scale - 1.0).abs() < 1e-9);
    // Variance explained: 1^2 / (1^2 + 0.3^2).
    assert!((fit.r2 - 1.0 / 1.09).abs() < 1e-9, "{}", fit.r2);
}

#[test]
fn constant_vector_has_zero_r2_and_zero_scale() {
    let fit = fit_cosine(&[2.5; 9]);
    assert_eq!(fit.r2, 0.0);
    assert!(fit.scale.abs() < 1e-12);
    assert!((fit.offset - 2.5).abs() < 1e-12);
}

#[test]
fn power_spectrum_sums_to_the_variance() {
    let y: Vec<f64> = (0..20).map(|x| ((x * x) % 7) as f64 - 1.3).collect();
    let mean = y.iter().sum::<f64>() / 20.0;
    let ss: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let power = power_spectrum(&y);
    assert_eq!(power.len(), 11);
    assert_eq!(power[0], 0.0);
    assert!((power.iter().sum::<f64>() - ss).abs() < 1e-9);
}

#[test]
fn reconstruct_inverts_the_fit() {
    let y = cosine(29, 5, -0.5, 2.0, 0.1);
    let back = fit_cosine(&y).reconstruct(29);
    for (a, b) in y.iter().zip(&back) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn neuron_fits_read_the_three_pytorch_slices() {
    // Neuron 0: a at k=2, b at k=3, out at k=1; neuron 1 all at k=4.
    let (p, h) = (11, 2);
    let mut w = MlpWeights::new(p, h, vec![0.0; h * 2 * p], vec![0.0; p * h]).unwrap();
    w.set_neuron(
        0,
        &cosine(p, 2, 0.5, 1.0, 0.0),
        &cosine(p, 3, 1.0, 1.0, 0.0),
        &cosine(p, 1, -1.0, 1.0, 0.0),
    );
    w.set_neuron(
        1,
        &cosine(p, 4, 0.1, 1.0, 0.0),
        &cosine(p, 4, 0.2, 1.0, 0.0),
        &cosine(p, 4, 0.3, 1.0, 0.0),
    );
    let fits = fit_neurons(&w);
    assert_eq!(
        (fits[0].in_a.freq, fits[0].in_b.freq, fits[0].out.freq),
        (2, 3, 1)
    );
    assert_eq!(
        (fits[1].in_a.freq, fits[1].in_b.freq, fits[1].out.freq),
        (4, 4, 4)
    );
    assert!((fits[0].out.phase + 1.0).abs() < 1e-6);
    assert!((fits[1].in_b.phase - 0.2).abs() < 1e-6);
}

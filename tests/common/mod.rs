//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The CPU backend the tests train on: flex, whose training is bit-reproducible.
pub type Cpu = burn::backend::Flex;
/// The same with autodiff.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `cos(2π k x / p + phase)` scaled and shifted, for x = 0..p.
pub fn cosine(p: usize, k: usize, phase: f64, scale: f64, offset: f64) -> Vec<f64> {
    (0..p)
        .map(|x| {
            offset
                + scale
                    * (2.0 * std::f64::consts::PI * ((k * x) % p) as f64 / p as f64 + phase).cos()
        })
        .collect()
}

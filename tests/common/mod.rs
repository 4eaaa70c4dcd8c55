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

/// An example binary (`grok`, `analyze`), built by `cargo test` beside the test binaries.
pub fn example(name: &str) -> std::process::Command {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap();
    let exe: PathBuf = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.exists(),
        "{} missing: cargo test builds examples",
        exe.display()
    );
    std::process::Command::new(exe)
}

/// The `.expected.json` of `expected_from_pth.py` beside fixture `stem`.
pub fn expected(stem: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(&format!("{stem}.expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Asserts that `fits` equal the reference's per-neuron fits: same frequencies, and phase,
/// scale, offset and R² within `1e-9`.
pub fn assert_fits_match(
    fits: &[grokking::analysis::fourier::NeuronFit],
    expected: &serde_json::Value,
) {
    let neurons = expected["neurons"].as_array().unwrap();
    assert_eq!(fits.len(), neurons.len());
    for (n, (fit, want)) in fits.iter().zip(neurons).enumerate() {
        for (name, got) in [("in_a", fit.in_a), ("in_b", fit.in_b), ("out", fit.out)] {
            let want = &want[name];
            assert_eq!(
                got.freq as u64,
                want["freq"].as_u64().unwrap(),
                "neuron {n} {name}"
            );
            for (field, value) in [
                ("phase", got.phase),
                ("scale", got.scale),
                ("offset", got.offset),
                ("r2", got.r2),
            ] {
                let w = want[field].as_f64().unwrap();
                assert!(
                    (value - w).abs() < 1e-9,
                    "neuron {n} {name}.{field}: {value} vs {w}"
                );
            }
        }
    }
}

/// Each epoch's `[train_loss, val_loss, train_acc, val_acc]`: a history without its timings,
/// which differ from run to run.
pub fn without_time(history: &grokking::History) -> Vec<[f64; 4]> {
    history
        .epochs
        .iter()
        .map(|m| [m.train_loss, m.val_loss, m.train_acc, m.val_acc])
        .collect()
}

/// Trains `configs` as one ensemble on `A` (each config's engine) and as one ensemble on the
/// reference implementation (`Engine::Generic` on [`CpuAutodiff`]) for `epochs` epochs, and
/// asserts after every epoch: the same accuracies (the same rows right), losses within `1e-4`,
/// collapse fractions within 0.02, weight norms within 1e-4 of each other, weights within
/// `weight_tol`.
pub fn assert_matches_reference<A: grokking::TrainBackend>(
    configs: &[grokking::TrainingConfig],
    device: &A::Device,
    epochs: usize,
    weight_tol: f32,
) {
    use grokking::{train::Ensemble, Engine};
    let reference: Vec<_> = configs
        .iter()
        .map(|c| c.clone().with_engine(Engine::Generic))
        .collect();
    let mut tested = Ensemble::<A>::new(configs, device).unwrap();
    let mut expected = Ensemble::<CpuAutodiff>::new(&reference, &Default::default()).unwrap();
    for epoch in 0..epochs {
        let (got, want) = (tested.run_epoch(), expected.run_epoch());
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                (g.train_acc, g.val_acc),
                (w.train_acc, w.val_acc),
                "member {k} epoch {epoch}: {g:?} vs {w:?}"
            );
            for (x, y) in [(g.train_loss, w.train_loss), (g.val_loss, w.val_loss)] {
                assert!(
                    (x - y).abs() < 1e-4,
                    "member {k} epoch {epoch}: {g:?} vs {w:?}"
                );
            }
            // The collapse test is exact equality of a rounded sum, so a row at the edge may
            // fall either way under another summation order.
            assert!(
                (g.softmax_collapse - w.softmax_collapse).abs() <= 0.02,
                "member {k} epoch {epoch}: {g:?} vs {w:?}"
            );
            assert!(
                (g.weight_norm - w.weight_norm).abs() <= 1e-4 * w.weight_norm,
                "member {k} epoch {epoch}: {g:?} vs {w:?}"
            );
        }
        for (k, (g, w)) in tested.weights().iter().zip(&expected.weights()).enumerate() {
            for (name, a, b) in [("fc1", g.fc1(), w.fc1()), ("fc2", g.fc2(), w.fc2())] {
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst <= weight_tol,
                    "member {k} epoch {epoch} {name}: largest gap {worst:e}"
                );
            }
        }
    }
    let (got, want) = (tested.optimizer_states(), expected.optimizer_states());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.step, w.step);
    }
}

/// p = 13 with 131 hidden units: three unit pieces on the host, so ⊥Grad's norms cross them.
pub fn method_config(seed: u64, method: grokking::Method) -> grokking::TrainingConfig {
    grokking::TrainingConfig::new()
        .with_model(grokking::MlpConfig::new().with_p(13).with_d_hidden(131))
        .with_train_fraction(0.6)
        .with_batch_size(24)
        .with_epochs(6)
        .with_lr(3e-3)
        .with_seed(seed)
        .with_method(method)
}

/// Members that differ in every choice and hyperparameter (`methods.rs` on the host, `kernels.rs`
/// on the GPU).
pub fn mixed_methods() -> Vec<grokking::Method> {
    use grokking::{
        step::{Activation, Grokfast, Loss, Optimizer},
        Method,
    };
    let adam = |beta1, beta2| Optimizer::AdamW { beta1, beta2 };
    vec![
        Method::default(),
        Method {
            loss: Loss::Stablemax,
            activation: Activation::Square,
            grokfast: Some(Grokfast::Ema {
                alpha: 0.9,
                lambda: 2.0,
            }),
            orthograd: true,
            optimizer: adam(0.9, 0.99),
        },
        Method {
            loss: Loss::Mse,
            grokfast: Some(Grokfast::Ma {
                window: 4,
                lambda: 5.0,
            }),
            optimizer: Optimizer::Sgd {
                momentum: 0.8,
                nesterov: true,
            },
            ..Method::default()
        },
        Method {
            grokfast: Some(Grokfast::Ma {
                window: 7,
                lambda: 1.5,
            }),
            orthograd: true,
            optimizer: Optimizer::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            ..Method::default()
        },
        Method {
            loss: Loss::Stablemax,
            optimizer: adam(0.8, 0.95),
            ..Method::default()
        },
        // Muon: fc1 [26, 131] is wide, fc2 [131, 13] tall (transposed, lr × √(131/13)).
        Method {
            activation: Activation::Square,
            grokfast: Some(Grokfast::Ema {
                alpha: 0.8,
                lambda: 1.0,
            }),
            optimizer: Optimizer::Muon { momentum: 0.95 },
            ..Method::default()
        },
        // SGLD, as the LLC samples: its noise keyed by its own seed and chain.
        Method {
            optimizer: Optimizer::Sgld {
                nbeta: 7.0,
                localization: 30.0,
                seed: 9,
                chain: 2,
            },
            ..Method::default()
        },
    ]
}

/// [`mixed_methods`] in [`method_config`]s, seeds 1, 2, ..., with learning rates that move SGD and
/// Muon in six epochs.
pub fn mixed_method_configs() -> Vec<grokking::TrainingConfig> {
    use grokking::step::Optimizer;
    mixed_methods()
        .into_iter()
        .enumerate()
        .map(|(k, method)| {
            let config = method_config(k as u64 + 1, method);
            // SGD needs a larger step to move in six epochs.
            match method.optimizer {
                Optimizer::Sgd { .. } => config.with_lr(0.5).with_weight_decay(1e-3),
                Optimizer::Muon { .. } => config.with_lr(0.02).with_weight_decay(0.1),
                Optimizer::AdamW { .. } => config,
                Optimizer::Sgld { .. } => config.with_lr(2e-4).with_weight_decay(0.01),
            }
        })
        .collect()
}

/// Trains `configs` one epoch as one ensemble on `A` and on the reference implementation, and
/// asserts that every member's filter memory (the gradients held and their values) and its
/// moments agree within `1e-3` of their largest magnitude.
pub fn assert_optimizer_states_match_reference<A: grokking::TrainBackend>(
    configs: &[grokking::TrainingConfig],
    device: &A::Device,
) {
    use grokking::{train::Ensemble, Engine};
    let fused = {
        let mut e = Ensemble::<A>::new(configs, device).unwrap();
        e.run_epoch();
        e.optimizer_states()
    };
    let generic = {
        let reference: Vec<_> = configs
            .iter()
            .map(|c| c.clone().with_engine(Engine::Generic))
            .collect();
        let mut e = Ensemble::<CpuAutodiff>::new(&reference, &Default::default()).unwrap();
        e.run_epoch();
        e.optimizer_states()
    };
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let scale = a.iter().map(|x| x.abs()).fold(0f32, f32::max);
        assert!(
            worst <= 1e-3 * scale.max(1e-6),
            "{what}: gap {worst:e} of {scale:e}"
        );
    };
    for (k, ((f, g), method)) in fused
        .iter()
        .zip(&generic)
        .zip(configs.iter().map(|c| c.method))
        .enumerate()
    {
        assert_eq!(
            f.filter.gradients,
            method.filter_gradients(f.step),
            "member {k}"
        );
        assert_eq!(g.filter.gradients, f.filter.gradients, "member {k}");
        close(
            &f.filter.fc1,
            &g.filter.fc1,
            &format!("member {k} filter fc1"),
        );
        close(
            &f.filter.fc2,
            &g.filter.fc2,
            &format!("member {k} filter fc2"),
        );
        close(&f.fc1_m1, &g.fc1_m1, &format!("member {k} first moment"));
        close(&f.fc2_m2, &g.fc2_m2, &format!("member {k} second moment"));
    }
}

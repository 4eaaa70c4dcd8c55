//! The local learning coefficient: SGLD's stationary distribution, the estimate's arithmetic
//! (devinterp's), the host against the reference, chains independent of their stack, divergence
//! and the diagnostics, and `analyze --llc` on a model and on snapshots.
#![cfg(feature = "flex")]

use crate::common::{self, Cpu, CpuAutodiff};

use grokking::{
    analysis::{
        evaluate::{cross_entropy, HostNetwork},
        llc::{default_nbeta, estimate_llc, LlcConfig, LlcEstimate},
    },
    run::{analyze_saved, AnalyzeOptions, Run, RunOptions, SavedModel},
    step::{Hyper, MemberSetup, Optimizer, Rows, StackSetup, StepBackend},
    Method, MlpConfig, MlpWeights, ModularDataset, Split, Trainer, TrainingConfig,
};
use serde_json::Value;

/// p = 13 with 32 units, trained 30 epochs (so w* is near a minimum), and its training rows.
fn trained() -> (MlpWeights, Rows) {
    let config = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(13).with_d_hidden(32))
        .with_batch_size(32)
        .with_epochs(30)
        .with_lr(1e-2)
        .with_seed(3);
    let mut trainer = Trainer::<CpuAutodiff>::new(&config, &Default::default()).unwrap();
    for _ in 0..config.epochs {
        trainer.run_epoch();
    }
    let data = ModularDataset::new(13, config.train_fraction, 3).unwrap();
    (trainer.weights(), Rows::new(&data, Split::Train))
}

fn small(chains: usize, draws: usize) -> LlcConfig {
    LlcConfig {
        chains,
        draws,
        batch_size: 16,
        ..LlcConfig::default()
    }
}

fn estimate<B: StepBackend>(
    centres: &[MlpWeights],
    train: &Rows,
    config: &LlcConfig,
) -> Vec<LlcEstimate> {
    estimate_llc::<B>(
        centres,
        train,
        &Method::default(),
        config,
        &Default::default(),
        &mut |_| {},
    )
    .unwrap()
}

/// With the loss's pull switched off (nβ ≈ 0), SGLD is an Ornstein–Uhlenbeck process around w*:
/// `w ← w − (ε/2)·γ·(w − w*) + √ε·ξ`, whose stationary variance per weight is
/// `1 / (γ·(1 − εγ/4))`. The sampler's noise scale and drift both enter it.
#[test]
fn sgld_without_the_loss_samples_the_localising_gaussian() {
    let (weights, train) = trained();
    let (lr, gamma) = (2e-3, 50.0);
    let member = MemberSetup {
        weights: weights.clone(),
        optimizer: None,
        hyper: Hyper {
            lr,
            weight_decay: 0.0,
            epsilon: 0.0,
        },
        method: Method {
            optimizer: Optimizer::Sgld {
                nbeta: 1e-12,
                localization: gamma,
                seed: 5,
                chain: 0,
            },
            ..Method::default()
        },
        val: train.clone(),
        train,
    };
    let mut stack = Cpu::stack_init(
        StackSetup {
            p: 13,
            d_hidden: 32,
            members: vec![member],
            threads: 0,
        },
        &Default::default(),
    );
    // 1 / (εγ/2) = 20 steps of relaxation; 400 steps to forget w*, then 40 samples 10 apart.
    let centre: Vec<f32> = weights.fc1().iter().chain(weights.fc2()).copied().collect();
    let mut squares = Vec::new();
    for step in 0..800 {
        Cpu::stack_step(&mut stack, 0..16);
        if step >= 400 && step % 10 == 0 {
            let w = &Cpu::stack_weights(&stack)[0];
            squares.extend(
                w.fc1()
                    .iter()
                    .chain(w.fc2())
                    .zip(&centre)
                    .map(|(&w, &c)| ((w - c) as f64).powi(2)),
            );
        }
    }
    let variance = squares.iter().sum::<f64>() / squares.len() as f64;
    let want = 1.0 / (gamma * (1.0 - lr * gamma / 4.0));
    assert!(
        (variance / want - 1.0).abs() < 0.05,
        "variance {variance}, want {want}"
    );
    // The centre stays w*: SGLD keeps it in the first moments.
    let state = &Cpu::stack_optimizer(&stack)[0];
    assert_eq!(state.fc1_m1, weights.fc1());
    assert_eq!(state.step, 800);
}

#[test]
fn the_estimate_is_devinterps_arithmetic() {
    let (weights, train) = trained();
    let config = LlcConfig {
        burnin: 5,
        ..small(3, 40)
    };
    let found = &estimate::<Cpu>(std::slice::from_ref(&weights), &train, &config)[0];
    assert_eq!(found.nbeta, 16.0 / 16f64.ln());
    assert_eq!(found.nbeta, default_nbeta(16));
    // L_init: the mean cross-entropy over the training rows at w*, as the f64 evaluation has it.
    let net = HostNetwork::new(&weights);
    let (mut post, mut logits) = (vec![0.0; 32], vec![0.0; 13]);
    let mean: f64 = (0..train.len())
        .map(|i| {
            let (a, b) = (train.a[i] as usize, train.b[i] as usize - 13);
            net.logits(a, b, &mut post, &mut logits);
            cross_entropy(&logits, train.y[i] as usize)
        })
        .sum::<f64>()
        / train.len() as f64;
    assert!(
        (found.init_loss - mean).abs() < 1e-6 * mean,
        "{found:?} {mean}"
    );
    // Each chain's λ̂ is nβ·(mean of its draws − L_init); the spread is ddof 0.
    for (trace, llc) in found.traces.iter().zip(&found.llc_per_chain) {
        assert_eq!(trace.len(), 45);
        let draws = &trace[5..];
        let want = found.nbeta * (draws.iter().sum::<f64>() / 40.0 - found.init_loss);
        assert!(
            (llc.unwrap() - want).abs() < 1e-12 * want.abs(),
            "{llc:?} {want}"
        );
    }
    let chains: Vec<f64> = found.llc_per_chain.iter().map(|v| v.unwrap()).collect();
    let mean = chains.iter().sum::<f64>() / 3.0;
    let std = (chains.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    assert!((found.llc_mean.unwrap() - mean).abs() < 1e-12 * mean.abs());
    assert!((found.llc_std.unwrap() - std).abs() < 1e-12 * std.max(1e-12));
    // The chains sample a loss above w*'s, and differ.
    assert!(found.llc_mean.unwrap() > 0.0, "{found:?}");
    assert_ne!(chains[0], chains[1]);
    assert!(found.diverged_at.iter().all(Option::is_none));
}

#[test]
fn the_host_samples_as_the_reference_does() {
    let (weights, train) = trained();
    let config = small(2, 30);
    let host = &estimate::<Cpu>(std::slice::from_ref(&weights), &train, &config)[0];
    let reference = &estimate::<CpuAutodiff>(std::slice::from_ref(&weights), &train, &config)[0];
    assert!((host.init_loss - reference.init_loss).abs() < 1e-6 * host.init_loss);
    // The same noise and the same rows: the traces agree to float rounding.
    for (a, b) in host.traces.iter().zip(&reference.traces) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4 * y.abs(), "{x} vs {y}");
        }
    }
    for (a, b) in host.llc_per_chain.iter().zip(&reference.llc_per_chain) {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn a_chain_is_the_same_whatever_else_its_stack_holds() {
    let (trained_weights, train) = trained();
    let fresh = MlpConfig::new()
        .with_p(13)
        .with_d_hidden(32)
        .init_weights(8);
    let both = estimate::<Cpu>(
        &[fresh.clone(), trained_weights.clone()],
        &train,
        &small(2, 20),
    );
    let alone = estimate::<Cpu>(&[trained_weights], &train, &small(3, 20));
    assert_eq!(both[1].traces[..], alone[0].traces[..2]);
    assert_eq!(both[1].init_loss, alone[0].init_loss);
    // A second run gives the same bits; another seed another sample.
    let again = estimate::<Cpu>(std::slice::from_ref(&fresh), &train, &small(2, 20));
    assert_eq!(again[0], both[0]);
    let other = LlcConfig {
        seed: 7,
        ..small(2, 20)
    };
    assert_ne!(
        estimate::<Cpu>(&[fresh], &train, &other)[0].traces,
        both[0].traces
    );
}

#[test]
fn a_diverging_chain_is_reported_and_too_small_a_step_is_flagged() {
    let (weights, train) = trained();
    let huge = LlcConfig {
        lr: 50.0,
        ..small(2, 30)
    };
    let found = &estimate::<Cpu>(std::slice::from_ref(&weights), &train, &huge)[0];
    assert!(found.diverged_at.iter().all(Option::is_some), "{found:?}");
    assert_eq!(found.llc_mean, None);
    assert!(found.warnings.iter().any(|w| w.contains("diverged")));
    let tiny = LlcConfig {
        lr: 1e-12,
        ..small(2, 40)
    };
    let found = &estimate::<Cpu>(std::slice::from_ref(&weights), &train, &tiny)[0];
    assert!(
        found.warnings.iter().any(|w| w.contains("too small")),
        "{:?}",
        found.warnings
    );
    // And the calibrated default has nothing to say on a trained model.
    let good = small(2, 200);
    let found = &estimate::<Cpu>(std::slice::from_ref(&weights), &train, &good)[0];
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);
}

#[test]
fn bad_hyperparameters_name_their_flag() {
    let (weights, train) = trained();
    let cases = [
        (
            LlcConfig {
                lr: 0.0,
                ..small(1, 1)
            },
            "llc-lr",
        ),
        (
            LlcConfig {
                lr: f64::NAN,
                ..small(1, 1)
            },
            "llc-lr",
        ),
        (
            LlcConfig {
                nbeta: Some(-1.0),
                ..small(1, 1)
            },
            "llc-nbeta",
        ),
        (
            LlcConfig {
                localization: -1.0,
                ..small(1, 1)
            },
            "llc-gamma",
        ),
        (
            LlcConfig {
                weight_decay: f64::INFINITY,
                ..small(1, 1)
            },
            "llc-weight-decay",
        ),
        (small(0, 1), "llc-chains"),
        (small(1, 0), "llc-draws"),
        (
            LlcConfig {
                batch_size: 0,
                ..small(1, 1)
            },
            "llc-batch-size",
        ),
        (
            LlcConfig {
                batch_size: train.len() + 1,
                ..small(1, 1)
            },
            "llc-batch-size",
        ),
        (
            LlcConfig {
                burnin: usize::MAX,
                ..small(1, 1)
            },
            "llc-draws",
        ),
        (
            LlcConfig {
                draws: 1 << 33,
                ..small(1, 1)
            },
            "llc-draws",
        ),
        (
            LlcConfig {
                seed: u32::MAX as u64,
                ..small(4, 1)
            },
            "llc-seed",
        ),
        (
            LlcConfig {
                seed: u64::MAX,
                ..small(1, 1)
            },
            "llc-seed",
        ),
    ];
    for (config, flag) in cases {
        let error = estimate_llc::<Cpu>(
            std::slice::from_ref(&weights),
            &train,
            &Method::default(),
            &config,
            &Default::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(error.to_string().contains(flag), "{config:?}: {error}");
    }
    // The last chain's seed just below 2³².
    assert!(LlcConfig {
        seed: u32::MAX as u64 - 3,
        ..small(4, 1)
    }
    .validate(100)
    .is_ok());
}

#[test]
fn analyze_estimates_the_llc_at_every_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let config = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(11).with_d_hidden(16))
        .with_epochs(6)
        .with_lr(1e-2);
    let options = RunOptions::default()
        .with_snapshot_every(2)
        .with_report(false);
    let mut run = Run::start::<CpuAutodiff>(
        &config,
        dir.path().join("run"),
        &options,
        &Default::default(),
    )
    .unwrap();
    while run.epoch().unwrap().is_some() {}
    run.finish().unwrap();
    let llc = LlcConfig {
        batch_size: 8,
        ..small(2, 30)
    };
    let found = analyze_saved(
        &SavedModel::Snapshots(dir.path().join("run/snapshots.safetensors")),
        dir.path().join("analysis"),
        &AnalyzeOptions {
            llc: Some(llc),
            report: true,
            ..AnalyzeOptions::default()
        },
    )
    .unwrap();
    let measures = found.progress.unwrap();
    assert_eq!(measures.llc.len(), measures.epochs.len());
    assert!(
        measures.llc.iter().all(Option::is_some),
        "{:?}",
        measures.llc
    );
    let written: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("analysis/progress.json")).unwrap())
            .unwrap();
    assert_eq!(
        written["llc"].as_array().unwrap().len(),
        measures.epochs.len()
    );
    let snapshots: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("analysis/llc_snapshots.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(snapshots["epochs"], serde_json::json!(measures.epochs));
    assert_eq!(
        snapshots["estimates"][0]["traces"][1]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    let figure = std::fs::read_to_string(dir.path().join("analysis/figures/dynamics.svg")).unwrap();
    assert!(figure.contains("Local learning coefficient"));
    // The snapshots' split is their run's: another seed is refused before anything is written.
    let error = analyze_saved(
        &SavedModel::Snapshots(dir.path().join("run/snapshots.safetensors")),
        dir.path().join("refused"),
        &AnalyzeOptions {
            llc: Some(llc),
            seed: Some(1),
            ..AnalyzeOptions::default()
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("seed"), "{error}");
    assert!(!dir.path().join("refused").exists());
}

fn analyze() -> std::process::Command {
    common::example("analyze")
}

#[test]
fn analyze_llc_writes_its_estimate_and_traces_or_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = analyze()
        .arg("--checkpoint")
        .arg(common::fixture("seed1_p59_h64.pth"))
        .args([
            "--seed",
            "1",
            "--llc",
            "--llc-draws",
            "20",
            "--llc-chains",
            "2",
        ])
        .arg("--out")
        .arg(dir.path().join("llc"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("LLC: 2 chains x 20 draws"), "{stdout}");
    let llc: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("llc/llc.json")).unwrap()).unwrap();
    for key in [
        "llc_mean",
        "llc_std",
        "llc_per_chain",
        "init_loss",
        "nbeta",
        "traces",
    ] {
        assert!(!llc[key].is_null(), "{key}: {llc}");
    }
    assert_eq!(llc["traces"].as_array().unwrap().len(), 2);
    assert_eq!(llc["config"]["draws"], 20);
    let svg = std::fs::read_to_string(dir.path().join("llc/llc_trace.svg")).unwrap();
    assert!(svg.contains("L_init"));
    for (args, needle) in [
        (&["--llc", "--llc-lr", "0"][..], "llc-lr"),
        (&["--llc", "--llc-lr", "nan"], "llc-lr"),
        (&["--llc", "--llc-gamma", "-1"], "llc-gamma"),
        (&["--llc", "--llc-nbeta", "-2"], "llc-nbeta"),
        (&["--llc", "--llc-weight-decay", "-1"], "llc-weight-decay"),
        (&["--llc", "--llc-chains", "0"], "llc-chains"),
        (&["--llc", "--llc-draws", "0"], "llc-draws"),
        (&["--llc", "--llc-batch-size", "100000"], "llc-batch-size"),
        (&["--llc", "--train-fraction", "1.5"], "train"),
        (&["--llc-lr", "1e-3"], "--llc"),
        (
            &["--llc", "--llc-burnin", "18446744073709551615"],
            "llc-draws",
        ),
    ] {
        let mut command = analyze();
        command
            .arg("--checkpoint")
            .arg(common::fixture("seed1_p59_h64.pth"));
        crate::cli::assert_fails_with_one_line(command, args, needle);
    }
}

//! The step's methods (losses, activations, Grokfast filters, ⊥Grad, optimisers): the host
//! implementation against the reference, member by member in one stack; a stack member equal
//! to its solo run; bit-identical resumes from a checkpoint with the filters' memories; the
//! notebook's method for files written before methods existed.
#![cfg(feature = "flex")]

use crate::common::{self, CpuAutodiff};
use grokking::{
    io::checkpoint::{state_from_bytes, state_to_bytes},
    step::{Grokfast, Optimizer},
    train::Ensemble,
    Engine, Method, MlpConfig, Trainer, TrainingConfig,
};

use common::{method_config as config, mixed_method_configs as configs, mixed_methods as methods};

#[test]
fn every_method_on_the_host_matches_the_reference() {
    let configs = configs();
    common::assert_matches_reference::<CpuAutodiff>(&configs, &Default::default(), 6, 2e-4);
    common::assert_optimizer_states_match_reference::<CpuAutodiff>(&configs, &Default::default());
}

#[test]
fn a_member_of_a_mixed_stack_trains_as_it_would_alone() {
    let configs = configs();
    let device = Default::default();
    let mut stack = Ensemble::<CpuAutodiff>::new(&configs, &device).unwrap();
    stack.run(|_| {});
    for k in [1, 2, 5] {
        let mut solo = Trainer::<CpuAutodiff>::new(&configs[k], &device).unwrap();
        for _ in 0..configs[k].epochs {
            solo.run_epoch();
        }
        assert_eq!(
            common::without_time(solo.history()),
            common::without_time(&stack.histories()[k]),
            "member {k}"
        );
        assert_eq!(solo.weights(), stack.weights()[k], "member {k}");
    }
}

#[test]
fn a_run_resumed_from_its_checkpoint_continues_bit_for_bit() {
    let device = Default::default();
    for engine in [Engine::Fused, Engine::Generic] {
        for (k, config) in configs().into_iter().enumerate().skip(1) {
            let config = config.with_engine(engine).with_epochs(4);
            let mut whole = Trainer::<CpuAutodiff>::new(&config, &device).unwrap();
            let mut first = Trainer::<CpuAutodiff>::new(&config, &device).unwrap();
            for _ in 0..2 {
                whole.run_epoch();
                first.run_epoch();
            }
            // Through the checkpoint's bytes, as a killed run restarts.
            let bytes = state_to_bytes(&first.state());
            let state = state_from_bytes(&bytes, "checkpoint".as_ref()).unwrap();
            assert_eq!(state, first.state(), "{engine} member {k}");
            let mut resumed = Trainer::<CpuAutodiff>::from_state(state, &device).unwrap();
            for _ in 0..2 {
                let (a, b) = (whole.run_epoch(), resumed.run_epoch());
                assert_eq!(
                    (a.train_loss, a.val_loss, a.val_acc),
                    (b.train_loss, b.val_loss, b.val_acc),
                    "{engine} member {k}"
                );
            }
            assert_eq!(whole.weights(), resumed.weights(), "{engine} member {k}");
        }
    }
}

#[test]
fn configs_without_a_method_read_as_the_notebooks_step() {
    let mut json = serde_json::to_value(config(1, methods()[1])).unwrap();
    json.as_object_mut().unwrap().remove("method");
    let old = grokking::train::config_from_json(json).unwrap();
    assert!(old.method.is_default());
    // And a method round-trips through the config's JSON.
    let json = serde_json::to_value(config(1, methods()[2])).unwrap();
    let back = grokking::train::config_from_json(json).unwrap();
    assert_eq!(back.method, methods()[2]);
}

#[test]
fn bad_method_hyperparameters_are_config_errors() {
    let bad = config(
        1,
        Method {
            grokfast: Some(Grokfast::Ema {
                alpha: 1.5,
                lambda: 2.0,
            }),
            ..Method::default()
        },
    );
    let error = Trainer::<CpuAutodiff>::new(&bad, &Default::default())
        .err()
        .expect("alpha 1.5 is refused");
    assert!(error.to_string().contains("grokfast-alpha"), "{error}");
    // A window whose memory no machine has is refused before anything is allocated.
    let huge = config(
        1,
        Method {
            grokfast: Some(Grokfast::Ma {
                window: 1 << 40,
                lambda: 5.0,
            }),
            ..Method::default()
        },
    );
    let error = huge.validate().expect_err("a 2^40-gradient window");
    assert!(error.to_string().contains("memory"), "{error}");
}

/// A small network without regularisation: p = 11, 32 units, half the pairs, full batches,
/// lr 0.01, no weight decay.
fn unregularised(epochs: usize) -> TrainingConfig {
    TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(11).with_d_hidden(32))
        .with_train_fraction(0.5)
        .with_batch_size(1024)
        .with_epochs(epochs)
        .with_lr(1e-2)
        .with_weight_decay(0.0)
}

#[test]
fn without_weight_decay_the_softmax_collapses_and_the_norm_grows() {
    // Prieto et al.'s setting, small: full batches, lr 0.01, no weight decay, β₂ 0.99.
    let base = unregularised(3000).with_method(Method {
        optimizer: Optimizer::AdamW {
            beta1: 0.9,
            beta2: 0.99,
        },
        ..Method::default()
    });
    let device = Default::default();
    let mut trainer = Trainer::<CpuAutodiff>::new(&base, &device).unwrap();
    let first = trainer.run_epoch();
    assert_eq!(first.softmax_collapse, 0.0, "{first:?}");
    let mut last = first;
    for _ in 1..base.epochs {
        last = trainer.run_epoch();
    }
    assert!(last.softmax_collapse > 0.5, "{last:?}");
    assert!(last.val_acc < 0.5, "{last:?}");
    assert!(
        last.weight_norm > 2.0 * first.weight_norm,
        "{first:?} -> {last:?}"
    );
    // The norm is the weights' own.
    let w = trainer.weights();
    let norm = w
        .fc1()
        .iter()
        .chain(w.fc2())
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (norm - last.weight_norm).abs() < 1e-9 * norm,
        "{norm} vs {last:?}"
    );
}

#[test]
fn label_noise_corrupts_a_seeded_fraction_of_the_training_rows() {
    let data = grokking::ModularDataset::new(13, 0.6, 5).unwrap();
    let n_train = data.train_rows().len();
    let noise = data.label_noise(0.3, 5).unwrap();
    assert_eq!(noise.positions.len(), (0.3 * n_train as f64) as usize);
    assert!(noise.positions.windows(2).all(|w| w[0] < w[1]));
    for (&i, &label) in noise.positions.iter().zip(&noise.labels) {
        assert!(i < n_train);
        assert_ne!(label as usize, data.label(data.train_rows()[i]));
        assert!((label as usize) < 13);
    }
    assert_eq!(data.label_noise(0.3, 5).unwrap(), noise, "seeded");
    assert_ne!(data.label_noise(0.3, 6).unwrap(), noise);
    assert!(data.label_noise(0.0, 5).unwrap().positions.is_empty());
    for bad in [1.0, -0.1, f64::NAN] {
        let error = data.label_noise(bad, 5).unwrap_err();
        assert!(error.to_string().contains("label-noise"), "{error}");
        let error = config(1, Method::default())
            .with_label_noise(bad)
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("label-noise"), "{error}");
    }
}

#[test]
fn without_regularisation_the_network_memorises_the_corrupted_labels() {
    let noisy = unregularised(1500).with_label_noise(0.3);
    for engine in [Engine::Fused, Engine::Generic] {
        let mut trainer =
            Trainer::<CpuAutodiff>::new(&noisy.clone().with_engine(engine), &Default::default())
                .unwrap();
        let mut last = trainer.run_epoch();
        for _ in 1..noisy.epochs {
            last = trainer.run_epoch();
        }
        let column = |name: &str| -> Vec<f64> {
            let history = trainer.history();
            let (_, values) = history.columns.iter().find(|(n, _)| n == name).unwrap();
            assert_eq!(values.len(), noisy.epochs, "{name}");
            values.clone()
        };
        let (wrong, truth) = (column("corrupted_acc"), column("corrupted_true_acc"));
        // Memorised: every training label, the wrong ones included, and none of the true ones.
        assert_eq!(last.train_acc, 1.0, "{engine}: {last:?}");
        assert_eq!(wrong[noisy.epochs - 1], 1.0, "{engine}");
        assert_eq!(truth[noisy.epochs - 1], 0.0, "{engine}");
        assert!(wrong[0] < 0.5, "{engine}: {}", wrong[0]);
    }
}

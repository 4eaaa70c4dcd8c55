//! The open training loop (`train::open::OpenTrainer`): Burn's autodiff with the caller's loss,
//! optimiser and gradient hook, on the same data, batches and metrics as `Trainer`.
#![cfg(feature = "flex")]

use burn::{
    optim::{decay::WeightDecayConfig, AdamWConfig, GradientsParams, MuonConfig, SgdConfig},
    tensor::{Int, Tensor},
};
use grokking::{
    step::Optimizer,
    train::open::{cross_entropy, OpenTrainer},
    Control, EpochMetrics, History, Method, MlpConfig, Trainer, TrainingConfig,
};

use crate::common::CpuAutodiff;

type B = CpuAutodiff;

fn config() -> TrainingConfig {
    TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(13).with_d_hidden(24))
        .with_train_fraction(0.6)
        .with_batch_size(16)
        .with_epochs(5)
        .with_lr(1e-2)
        .with_seed(3)
}

/// Epoch by epoch, the same epochs with losses and weight norms within 1e-3 relative.
fn assert_losses_agree(open: &History, built_in: &History) {
    assert_eq!(open.epochs.len(), built_in.epochs.len());
    for (a, b) in open.epochs.iter().zip(&built_in.epochs) {
        assert_eq!(a.epoch, b.epoch);
        for (x, y, what) in [
            (a.train_loss, b.train_loss, "train_loss"),
            (a.val_loss, b.val_loss, "val_loss"),
            (a.weight_norm, b.weight_norm, "weight_norm"),
        ] {
            assert!(
                (x - y).abs() <= 1e-3 * y.abs(),
                "epoch {}: {what} {x} vs {y}",
                a.epoch
            );
        }
    }
}

/// With cross-entropy and Burn's AdamW at the config's hyperparameters, the open loop trains as
/// `Trainer` does: same data, split, initial weights and batches, so the curves agree to float
/// rounding (the two AdamWs round differently), and the metrics mean the same.
#[test]
fn with_cross_entropy_and_adamw_it_trains_as_the_trainer_does() {
    let config = config();
    let device = Default::default();
    let optimizer = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(config.weight_decay as f32)
        .init();
    let open = OpenTrainer::<B, _>::new(&config, optimizer, &device)
        .unwrap()
        .run(|_: &EpochMetrics| Control::Continue);
    let built_in = Trainer::<B>::new(&config, &device)
        .unwrap()
        .run(|_: &EpochMetrics| Control::Continue);
    assert_eq!(open.data.train_rows(), built_in.data.train_rows());
    assert_eq!(open.history.epochs.len(), 5);
    assert_losses_agree(&open.history, &built_in.history);
    for (a, b) in open.history.epochs.iter().zip(&built_in.history.epochs) {
        assert!(
            (a.train_acc - b.train_acc).abs() <= 0.02,
            "epoch {}",
            a.epoch
        );
        assert!((a.val_acc - b.val_acc).abs() <= 0.02, "epoch {}", a.epoch);
        assert_eq!(a.softmax_collapse, b.softmax_collapse, "epoch {}", a.epoch);
    }
    // It learned: the training loss fell from chance.
    let first = open.history.epochs[0].train_loss;
    assert!(open.history.epochs[4].train_loss < first - 0.05, "{first}");
}

/// The hook sees every step's gradients and its return is what the optimiser takes: a hook that
/// drops them all leaves the weights where they started, and counts the steps.
#[test]
fn the_gradient_hook_decides_what_the_optimiser_takes() {
    let config = config().with_epochs(2).with_weight_decay(0.0);
    let device = Default::default();
    let steps = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = steps.clone();
    let trained = OpenTrainer::<B, _>::new(&config, SgdConfig::new().init(), &device)
        .unwrap()
        .with_gradient_hook(move |_, grads| {
            counter.set(counter.get() + 1);
            assert!(!grads.is_empty());
            GradientsParams::new()
        })
        .run(|_: &EpochMetrics| Control::Continue);
    let rows = trained.data.train_rows().len();
    assert_eq!(steps.get(), 2 * rows.div_ceil(16));
    assert_eq!(trained.model.weights(), config.model.init_weights(3));
}

/// The caller's loss is what is minimised and reported: a loss that is cross-entropy times 3
/// reports three times the cross-entropy, and the config's label noise gives the same wrong
/// labels as `Trainer`'s (at learning rate 0, where the two loops' losses agree closely).
#[test]
fn the_callers_loss_is_minimised_and_reported() {
    let config = config().with_epochs(1).with_lr(0.0).with_weight_decay(0.0);
    let device = Default::default();
    let run = |scale: f32| {
        OpenTrainer::<B, _>::new(&config, SgdConfig::new().init(), &device)
            .unwrap()
            .with_loss(move |l: Tensor<B, 2>, y: Tensor<B, 1, Int>| cross_entropy(l, y) * scale)
            .run_epoch()
    };
    let (one, three) = (run(1.0), run(3.0));
    assert!((three.train_loss - 3.0 * one.train_loss).abs() < 1e-5 * one.train_loss);
    assert!((three.val_loss - 3.0 * one.val_loss).abs() < 1e-5 * one.val_loss);
    // lr 0: the model never moves, so the open loop's cross-entropy is the trainer's exactly
    // enough to compare.
    let built_in = Trainer::<B>::new(&config, &device).unwrap().run_epoch();
    assert!(
        (one.val_loss - built_in.val_loss).abs() < 1e-5,
        "{one:?} {built_in:?}"
    );
    assert_eq!(one.train_acc, built_in.train_acc);
    let noisy = config.clone().with_label_noise(0.5);
    let open = OpenTrainer::<B, _>::new(&noisy, SgdConfig::new().init(), &device)
        .unwrap()
        .run_epoch();
    let built_in = Trainer::<B>::new(&noisy, &device).unwrap().run_epoch();
    assert_eq!(open.train_acc, built_in.train_acc);
    assert!((open.train_loss - built_in.train_loss).abs() < 1e-5);
    assert!(
        (open.train_loss - one.train_loss).abs() > 1e-3,
        "the noise changed the labels"
    );
}

/// Burn 0.21's own `Muon` in the open loop trains as the built-in `Optimizer::Muon` does (which
/// is written to compute it on the host and in the reference): the curves agree to rounding.
#[test]
fn burn_optims_muon_trains_as_the_built_in_muon_does() {
    let config = config()
        .with_lr(0.02)
        .with_weight_decay(0.1)
        .with_method(Method {
            optimizer: Optimizer::Muon { momentum: 0.95 },
            ..Method::default()
        });
    let device = Default::default();
    let muon = MuonConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(0.1)))
        .init();
    let open = OpenTrainer::<B, _>::new(&config, muon, &device)
        .unwrap()
        .run(|_: &EpochMetrics| Control::Continue);
    let built_in = Trainer::<B>::new(&config, &device)
        .unwrap()
        .run(|_: &EpochMetrics| Control::Continue);
    assert_losses_agree(&open.history, &built_in.history);
    let (first, last) = (&built_in.history.epochs[0], &built_in.history.epochs[4]);
    assert!(last.train_loss < first.train_loss - 0.05, "Muon learned");
}

/// With label noise the open loop records the corrupted rows' accuracies as `Trainer` does.
#[test]
fn with_label_noise_the_corrupted_rows_are_measured_as_the_trainer_measures_them() {
    let config = config().with_epochs(2).with_lr(0.0).with_label_noise(0.3);
    let device = Default::default();
    let open = OpenTrainer::<B, _>::new(&config, SgdConfig::new().init(), &device)
        .unwrap()
        .run(|_: &EpochMetrics| Control::Continue);
    let built_in = Trainer::<B>::new(&config, &device)
        .unwrap()
        .run(|_: &EpochMetrics| Control::Continue);
    for name in ["corrupted_acc", "corrupted_true_acc"] {
        for epoch in 0..2 {
            let (a, b) = (
                open.history.column(name, epoch),
                built_in.history.column(name, epoch),
            );
            assert!(a.is_some(), "{name}");
            assert_eq!(a, b, "{name} at epoch {epoch}");
        }
    }
}

#[test]
fn a_bad_config_is_an_error() {
    let bad = config().with_train_fraction(1.5);
    assert!(OpenTrainer::<B, _>::new(&bad, SgdConfig::new().init(), &Default::default()).is_err());
}

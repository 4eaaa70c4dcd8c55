//! Training: the loss falls, runs are deterministic, observers see and stop epochs, configs are
//! validated, and the two input forms give the same gradients.
#![cfg(feature = "flex")]

use crate::common;

use burn::tensor::{activation::log_softmax, Tensor, Tolerance};
use common::CpuAutodiff;
use grokking::{
    Control, Engine, EpochMetrics, Error, History, MlpConfig, ModularDataset, Split, Trainer,
    TrainingConfig,
};

fn small_config() -> TrainingConfig {
    TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(23).with_d_hidden(48))
        .with_batch_size(16)
        .with_epochs(12)
        .with_seed(7)
}

fn run(config: &TrainingConfig) -> History {
    grokking::train::<CpuAutodiff>(config, &Default::default(), |_: &EpochMetrics| {
        Control::Continue
    })
    .unwrap()
    .history
}

#[test]
fn defaults_are_the_notebooks() {
    let c = TrainingConfig::new();
    assert_eq!((c.model.p, c.model.d_hidden), (113, 100));
    assert_eq!((c.epochs, c.batch_size, c.seed), (2000, 128, 1337));
    assert_eq!((c.lr, c.weight_decay, c.train_fraction), (3e-3, 0.5, 0.8));
    assert_eq!(c.adam_epsilon, 1e-8);
}

#[test]
fn a_short_run_lowers_the_loss_and_reports_sane_metrics() {
    // A higher rate than the notebook's so that 12 epochs of a tiny grid show progress.
    let history = run(&small_config().with_lr(1e-2));
    assert_eq!(history.epochs.len(), 12);
    let first = history.epochs[0];
    let last = *history.last().unwrap();
    assert!(
        last.train_loss < 0.7 * first.train_loss,
        "{first:?} -> {last:?}"
    );
    assert!(last.train_acc > first.train_acc);
    for (i, m) in history.epochs.iter().enumerate() {
        assert_eq!(m.epoch, i);
        assert!((0.0..=1.0).contains(&m.train_acc) && (0.0..=1.0).contains(&m.val_acc));
        assert!(m.train_loss.is_finite() && m.val_loss.is_finite());
        assert!(i == 0 || m.seconds >= history.epochs[i - 1].seconds);
    }
}

#[test]
fn the_same_config_gives_the_same_history() {
    let config = small_config().with_epochs(4);
    let first = common::without_time(&run(&config));
    assert_eq!(first, common::without_time(&run(&config)));
    let other = run(&config.clone().with_seed(8));
    assert_ne!(first, common::without_time(&other));
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_trains_the_same_function_up_to_rounding() {
    type NdArray = burn::backend::Autodiff<burn::backend::NdArray>;
    let config = small_config().with_epochs(3).with_engine(Engine::Generic);
    let nd = grokking::train::<NdArray>(&config, &Default::default(), |_: &EpochMetrics| {
        Control::Continue
    })
    .unwrap()
    .history;
    for (a, b) in common::without_time(&nd)
        .iter()
        .zip(common::without_time(&run(&config)))
    {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-3, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn observer_sees_every_epoch_and_can_stop() {
    let mut seen = Vec::new();
    let trained =
        grokking::train::<CpuAutodiff>(&small_config(), &Default::default(), |m: &EpochMetrics| {
            seen.push(m.epoch);
            if m.epoch == 2 {
                Control::Stop
            } else {
                Control::Continue
            }
        })
        .unwrap();
    assert_eq!(seen, vec![0, 1, 2]);
    assert_eq!(trained.history.epochs.len(), 3);
}

#[test]
fn trainer_steps_epoch_by_epoch_like_train() {
    let config = small_config().with_epochs(3);
    let mut trainer = Trainer::<CpuAutodiff>::new(&config, &Default::default()).unwrap();
    for _ in 0..3 {
        trainer.run_epoch();
    }
    assert_eq!(
        common::without_time(trainer.history()),
        common::without_time(&run(&config))
    );
}

#[test]
fn trained_model_reports_what_the_last_epoch_measured() {
    let config = small_config().with_epochs(3);
    let trained =
        grokking::train::<CpuAutodiff>(&config, &Default::default(), |_: &EpochMetrics| {
            Control::Continue
        })
        .unwrap();
    let w = trained.model.weights();
    let host = grokking::analysis::accuracy(&w, &trained.data, Split::Val);
    let last = trained.history.last().unwrap().val_acc;
    assert!((host - last).abs() <= 1.0 / trained.data.val_rows().len() as f64 + 1e-12);
}

#[test]
fn invalid_configs_name_the_field() {
    let cases = [
        (small_config().with_batch_size(0), "batch-size"),
        (small_config().with_epochs(0), "epochs"),
        (small_config().with_lr(-1e-3), "lr"),
        (small_config().with_lr(f64::NAN), "lr"),
        (small_config().with_weight_decay(-0.5), "weight-decay"),
        (
            small_config().with_model(MlpConfig::new().with_d_hidden(0)),
            "hidden",
        ),
        (
            small_config().with_model(MlpConfig::new().with_p(1)),
            "p = 1",
        ),
        (small_config().with_train_fraction(1.0), "train fraction"),
    ];
    for (config, needle) in cases {
        let err = Trainer::<CpuAutodiff>::new(&config, &Default::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let err = Trainer::<CpuAutodiff>::new(
        &small_config().with_train_fraction(0.0),
        &Default::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::InvalidTrainFraction { .. }));
}

#[test]
fn one_hot_and_gather_give_equal_gradients() {
    let device = Default::default();
    let data = ModularDataset::new(11, 0.5, 0).unwrap();
    let model = MlpConfig::new()
        .with_p(11)
        .with_d_hidden(16)
        .init::<CpuAutodiff>(5, &device);
    let split = data.tensors::<CpuAutodiff>(Split::Train, &device);
    let x = data.one_hot::<CpuAutodiff>(Split::Train, &device);
    let grads_of = |logits: Tensor<CpuAutodiff, 2>| {
        // Mean cross-entropy of the logits against the labels.
        let log_probs = log_softmax(logits, 1);
        let loss = log_probs
            .gather(1, split.labels.clone().unsqueeze_dim(1))
            .mean()
            .neg();
        let mut grads = loss.backward();
        let g1 = model
            .fc1
            .weight
            .grad_remove(&mut grads)
            .unwrap()
            .into_data();
        let g2 = model
            .fc2
            .weight
            .grad_remove(&mut grads)
            .unwrap()
            .into_data();
        (g1, g2)
    };
    let (a1, a2) = grads_of(model.forward(x));
    let (b1, b2) = grads_of(model.forward_pairs(split.pairs.clone()));
    a1.assert_approx_eq::<f32>(&b1, Tolerance::absolute(1e-6));
    a2.assert_approx_eq::<f32>(&b2, Tolerance::absolute(1e-6));
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn auto_picks_the_fused_engine_on_cpu_backends() {
    assert_eq!(Engine::Auto.resolve(), Engine::Fused);
    assert_eq!(Engine::Generic.resolve(), Engine::Generic);
    let trainer = Trainer::<CpuAutodiff>::new(&small_config(), &Default::default()).unwrap();
    assert_eq!(trainer.engine(), Engine::Fused);
    let generic = small_config().with_engine(Engine::Generic);
    let trainer = Trainer::<CpuAutodiff>::new(&generic, &Default::default()).unwrap();
    assert_eq!(trainer.engine(), Engine::Generic);
    assert!(trainer.state().optimizer.is_none());
}

#[test]
fn fused_and_generic_engines_train_the_same_function() {
    // A short last batch (276 rows, batch 16 -> 17 full + 1 of 4) and weight decay included.
    let config = small_config().with_epochs(3).with_lr(1e-2);
    let device = Default::default();
    let mut fused =
        Trainer::<CpuAutodiff>::new(&config.clone().with_engine(Engine::Fused), &device).unwrap();
    let mut generic =
        Trainer::<CpuAutodiff>::new(&config.clone().with_engine(Engine::Generic), &device).unwrap();
    assert_eq!(fused.model().weights(), generic.model().weights());
    for _ in 0..3 {
        let (f, g) = (fused.run_epoch(), generic.run_epoch());
        let (f, g) = (
            [f.train_loss, f.val_loss, f.train_acc, f.val_acc],
            [g.train_loss, g.val_loss, g.train_acc, g.val_acc],
        );
        for (x, y) in f.iter().zip(&g) {
            assert!((x - y).abs() < 1e-4, "{f:?} vs {g:?}");
        }
        let (wf, wg) = (fused.model().weights(), generic.model().weights());
        assert_close(wf.fc1(), wg.fc1(), 1e-4, "fc1");
        assert_close(wf.fc2(), wg.fc2(), 1e-4, "fc2");
    }
    let adam = fused.state().optimizer.unwrap();
    // The reference implementation's moments agree.
    let generic_adam = generic.state().optimizer.unwrap();
    assert_eq!(generic_adam.step, adam.step);
    assert_close(&adam.fc1_m1, &generic_adam.fc1_m1, 1e-5, "fc1 first moment");
    assert_close(
        &adam.fc2_m2,
        &generic_adam.fc2_m2,
        1e-6,
        "fc2 second moment",
    );
    let steps_per_epoch = fused.batches_per_epoch() as u64;
    assert_eq!(adam.step, 3 * steps_per_epoch);
    assert_eq!(adam.fc1_m1.len(), 48 * 2 * 23);
    assert_eq!(adam.fc2_m2.len(), 23 * 48);
    assert!(adam.fc1_m2.iter().all(|&v| v >= 0.0) && adam.fc1_m1.iter().any(|&v| v != 0.0));
}

#[test]
fn the_fused_engine_is_bit_reproducible_and_restores_its_state() {
    let config = small_config().with_epochs(4).with_engine(Engine::Fused);
    let device = Default::default();
    let mut a = Trainer::<CpuAutodiff>::new(&config, &device).unwrap();
    let mut b = Trainer::<CpuAutodiff>::new(&config, &device).unwrap();
    for _ in 0..2 {
        a.run_epoch();
        b.run_epoch();
    }
    assert_eq!(
        common::without_time(a.history()),
        common::without_time(b.history())
    );
    assert_eq!(a.model().weights(), b.model().weights());
    assert_eq!(a.state().optimizer, b.state().optimizer);

    // A trainer rebuilt from a's state holds the same weights and moments and continues
    // exactly as a does.
    let mut resumed = Trainer::<CpuAutodiff>::from_state(a.state(), &device).unwrap();
    let (r, s) = (resumed.state(), a.state());
    assert_eq!(
        (r.weights, r.optimizer, r.history),
        (s.weights, s.optimizer, s.history)
    );
    let (x, y) = (resumed.run_epoch(), a.run_epoch());
    assert_eq!(
        (x.train_loss, x.val_loss, x.val_acc),
        (y.train_loss, y.val_loss, y.val_acc)
    );
    assert_eq!(resumed.weights(), a.weights());
}

#[test]
fn a_schedule_can_change_the_learning_rate_during_training() {
    for engine in [Engine::Fused, Engine::Generic] {
        let config = small_config().with_epochs(3).with_engine(engine);
        let mut trainer = Trainer::<CpuAutodiff>::new(&config, &Default::default()).unwrap();
        trainer.run_epoch();
        let before = trainer.weights();
        // lr 0 leaves every weight as it is (w·(1 − 0·wd) − 0·update), on both engines.
        trainer.set_lr_and_weight_decay(0.0, 0.5).unwrap();
        trainer.run_epoch();
        assert_eq!(trainer.weights(), before, "{engine:?}");
        assert_eq!(trainer.config().lr, 0.0);
        trainer.set_lr_and_weight_decay(1e-2, 0.5).unwrap();
        trainer.run_epoch();
        assert_ne!(trainer.weights(), before, "{engine:?}");
        assert!(trainer.set_lr_and_weight_decay(f64::NAN, 0.5).is_err());
        assert!(trainer.set_lr_and_weight_decay(1e-3, -1.0).is_err());
    }
}

/// An observer of `Trainer::run_with` reads the weights each epoch, changes the learning rate and
/// weight decay (here to 0 after epoch 2: the weights then stop moving, bit for bit), and adds
/// columns to the history and metrics.csv.
#[test]
fn an_observer_reads_weights_sets_a_schedule_and_adds_columns() {
    let config = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(11).with_d_hidden(16))
        .with_epochs(6);
    let trainer = grokking::Trainer::<CpuAutodiff>::new(&config, &Default::default()).unwrap();
    let mut seen = Vec::new();
    let trained = trainer.run_with(|epoch: &mut grokking::Epoch<'_, CpuAutodiff>| {
        let weights = epoch.weights();
        let norm: f64 = weights.fc1().iter().map(|&w| (w as f64).powi(2)).sum();
        epoch.record("fc1_norm", norm).unwrap();
        if epoch.metrics().epoch == 2 {
            epoch.set_lr_and_weight_decay(0.0, 0.0).unwrap();
            epoch.record("frozen", 1.0).unwrap();
        }
        seen.push(weights);
        grokking::Control::Continue
    });
    assert_eq!(seen.len(), 6);
    assert_ne!(seen[1], seen[2], "the weights move at the configured rate");
    assert_eq!(seen[2], seen[5], "learning rate 0 from epoch 3 on");
    assert_eq!(seen[5], trained.model.weights());
    let history = &trained.history;
    assert_eq!(history.columns.len(), 2);
    assert_eq!(history.columns[0].1.len(), 6);
    assert_eq!(history.column("frozen", 2), Some(1.0));
    assert!(history.column("frozen", 1).unwrap().is_nan());
    let csv = grokking::run::metrics_csv(history);
    assert!(csv.lines().next().unwrap().ends_with(",fc1_norm,frozen"));
}

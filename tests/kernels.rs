//! The CubeCL kernels of the training step (`src/step/cube.rs`) on a real wgpu device. Without a
//! GPU, Mesa's software Vulkan driver (lavapipe, Debian's `mesa-vulkan-drivers`) is one; `.ci/run`
//! installs it and runs `cargo test --features wgpu --test kernels`.
#![cfg(feature = "wgpu")]

mod common;

use burn::backend::{Autodiff, Wgpu};
use common::CpuAutodiff;
use grokking::{
    io::checkpoint::{state_from_bytes, state_to_bytes},
    step::{Grokfast, Optimizer},
    sweep::{self, Grid, SweepMode},
    train::Ensemble,
    Engine, Method, MlpConfig, Trainer, TrainingConfig,
};

type Gpu = Autodiff<Wgpu>;

fn small() -> TrainingConfig {
    TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(23).with_d_hidden(32))
        .with_batch_size(32)
        .with_epochs(4)
        .with_engine(Engine::Fused)
}

fn device() -> burn::backend::wgpu::WgpuDevice {
    let device = Default::default();
    grokking::device::check::<Gpu>(&device).expect("a wgpu device (lavapipe without a GPU)");
    device
}

#[test]
fn kernels_train_several_members_as_the_reference_does() {
    // Different seeds, learning rates, weight decays and epsilons; 423 training rows in batches
    // of 32 (13 full and a short one of 7).
    let configs = [
        small().with_seed(1),
        small().with_seed(2).with_lr(1e-2),
        small()
            .with_seed(3)
            .with_weight_decay(0.1)
            .with_adam_epsilon(1e-3),
    ];
    common::assert_matches_reference::<Gpu>(&configs, &device(), 4, 2e-5);
}

#[test]
fn kernels_handle_odd_shapes() {
    // p = 7 (39 training rows: batches of 8, the last of 7), width 5.
    let odd = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(7).with_d_hidden(5))
        .with_batch_size(8)
        .with_epochs(6)
        .with_lr(1e-2)
        .with_engine(Engine::Fused);
    let configs = [
        odd.clone().with_seed(5),
        odd.with_seed(6).with_weight_decay(0.0),
    ];
    common::assert_matches_reference::<Gpu>(&configs, &device(), 6, 2e-5);
}

#[test]
fn a_large_stack_runs_the_tiled_products_as_the_reference_does() {
    // 64 members (the products run in 4×4 tiles from 64 on): p = 7, width 5, so tile edges are
    // partial in every product.
    let base = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(7).with_d_hidden(5))
        .with_batch_size(8)
        .with_epochs(3)
        .with_lr(1e-2)
        .with_engine(Engine::Fused);
    let configs: Vec<_> = (0..64)
        .map(|s| {
            base.clone()
                .with_seed(100 + s)
                .with_weight_decay(0.1 * (s % 4) as f64)
        })
        .collect();
    common::assert_matches_reference::<Gpu>(&configs, &device(), 3, 2e-5);
}

#[test]
fn an_ensemble_member_is_its_solo_run_bit_for_bit_and_runs_repeat() {
    let device = device();
    let configs = [small().with_seed(11), small().with_seed(12).with_lr(5e-3)];
    let mut ensemble = Ensemble::<Gpu>::new(&configs, &device).unwrap();
    ensemble.run(|_| {});
    for (k, config) in configs.iter().enumerate() {
        let mut alone = Trainer::<Gpu>::new(config, &device).unwrap();
        assert_eq!(alone.engine(), Engine::Fused);
        for _ in 0..config.epochs {
            alone.run_epoch();
        }
        // The same kernels on the same values: the same bits, whatever else is in the stack.
        assert_eq!(ensemble.weights()[k], alone.weights(), "member {k}");
        assert_eq!(
            common::without_time(&ensemble.histories()[k]),
            common::without_time(alone.history())
        );
    }
    let mut again = Ensemble::<Gpu>::new(&configs, &device).unwrap();
    again.run(|_| {});
    assert_eq!(again.weights(), ensemble.weights(), "a second run");
    assert_eq!(again.optimizer_states(), ensemble.optimizer_states());
}

#[test]
fn a_run_resumed_on_wgpu_goes_on_as_on_flex() {
    let config = small().with_seed(21).with_epochs(5);
    let mut cpu = Trainer::<CpuAutodiff>::new(&config, &Default::default()).unwrap();
    for _ in 0..2 {
        cpu.run_epoch();
    }
    let mut gpu = Trainer::<Gpu>::from_state(cpu.state(), &device()).unwrap();
    assert_eq!(gpu.engine(), Engine::Fused);
    assert_eq!(gpu.weights(), cpu.weights());
    for _ in 0..3 {
        let (g, c) = (gpu.run_epoch(), cpu.run_epoch());
        assert_eq!((g.epoch, g.val_acc), (c.epoch, c.val_acc));
        assert!((g.val_loss - c.val_loss).abs() < 1e-4, "{g:?} vs {c:?}");
    }
    let (g, c) = (
        gpu.state().optimizer.unwrap(),
        cpu.state().optimizer.unwrap(),
    );
    assert_eq!(g.step, c.step);
}

#[test]
fn a_four_seed_sweep_on_wgpu_gives_the_models_flex_gives() {
    let base = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(23).with_d_hidden(48))
        .with_batch_size(32)
        .with_epochs(12)
        .with_lr(1e-2)
        .with_engine(Engine::Auto);
    let points = Grid {
        seeds: vec![1, 2, 3, 4],
        ..Grid::new(base)
    }
    .points()
    .unwrap();
    let gpu = sweep::train_points::<Gpu>(&points, SweepMode::Batched, 8, false, &device(), |_| {})
        .unwrap()
        .results;
    let cpu = sweep::train_points::<CpuAutodiff>(
        &points,
        SweepMode::Batched,
        8,
        false,
        &Default::default(),
        |_| {},
    )
    .unwrap()
    .results;
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_eq!(
            (g.seed, g.grok_epoch),
            (c.seed, c.grok_epoch),
            "{g:?} vs {c:?}"
        );
        assert_eq!(
            (g.train_acc, g.val_acc),
            (c.train_acc, c.val_acc),
            "{g:?} vs {c:?}"
        );
        let gap = (g.val_loss - c.val_loss).abs() / c.val_loss;
        assert!(gap < 1e-4, "{g:?} vs {c:?}");
    }
}

/// The mixed-method stack of `tests/integration/methods.rs` (p = 13, 131 units: fc2 is tall, so
/// Muon transposes it; ⊥Grad's sums run over 14 and 7 chunks) on the kernels.
fn mixed() -> Vec<TrainingConfig> {
    common::mixed_method_configs()
        .into_iter()
        .map(|c| c.with_engine(Engine::Fused))
        .collect()
}

#[test]
fn kernels_train_every_method_as_the_reference_does() {
    let configs = mixed();
    common::assert_matches_reference::<Gpu>(&configs, &device(), 6, 2e-4);
    common::assert_optimizer_states_match_reference::<Gpu>(&configs, &device());
}

#[test]
fn methods_run_on_odd_shapes_and_in_tiles_as_the_reference_does() {
    // p = 7, width 5 (fc1 [14, 5] is tall, fc2 [5, 7] wide): 64 members cycling through the
    // methods (the step's products in 4×4 tiles), then 64 Muon members (Muon's products too).
    let odd = |k: usize, method: Method| {
        let config = TrainingConfig::new()
            .with_model(MlpConfig::new().with_p(7).with_d_hidden(5))
            .with_batch_size(8)
            .with_epochs(3)
            .with_seed(200 + k as u64)
            .with_method(method)
            .with_engine(Engine::Fused);
        match method.optimizer {
            Optimizer::Sgd { .. } => config.with_lr(0.5).with_weight_decay(1e-3),
            Optimizer::Muon { .. } => config.with_lr(0.02).with_weight_decay(0.1),
            Optimizer::AdamW { .. } => config.with_lr(1e-2),
            Optimizer::Sgld { .. } => config.with_lr(1e-4).with_weight_decay(0.01),
        }
    };
    let methods = common::mixed_methods();
    let cycling: Vec<_> = (0..64)
        .map(|k| odd(k, methods[k % methods.len()]))
        .collect();
    common::assert_matches_reference::<Gpu>(&cycling, &device(), 3, 2e-4);
    let plain_muon = Method {
        grokfast: Some(Grokfast::Ma {
            window: 3,
            lambda: 2.0,
        }),
        orthograd: true,
        optimizer: Optimizer::Muon { momentum: 0.9 },
        ..Method::default()
    };
    assert!(matches!(methods[5].optimizer, Optimizer::Muon { .. }));
    let muon: Vec<_> = (0..64)
        .map(|k| odd(k, [methods[5], plain_muon][k % 2]))
        .collect();
    common::assert_matches_reference::<Gpu>(&muon, &device(), 3, 2e-4);
}

#[test]
fn a_mixed_stack_member_is_its_solo_run_and_resumes_bit_for_bit() {
    let device = device();
    let configs: Vec<_> = mixed().into_iter().map(|c| c.with_epochs(4)).collect();
    let mut ensemble = Ensemble::<Gpu>::new(&configs, &device).unwrap();
    ensemble.run(|_| {});
    let mut again = Ensemble::<Gpu>::new(&configs, &device).unwrap();
    again.run(|_| {});
    assert_eq!(again.weights(), ensemble.weights(), "a second run");
    assert_eq!(again.optimizer_states(), ensemble.optimizer_states());
    for (k, config) in configs.iter().enumerate() {
        let mut alone = Trainer::<Gpu>::new(config, &device).unwrap();
        let mut first = Trainer::<Gpu>::new(config, &device).unwrap();
        for _ in 0..2 {
            alone.run_epoch();
            first.run_epoch();
        }
        // Through the checkpoint's bytes: the moments, the filters' memories, the step.
        let bytes = state_to_bytes(&first.state());
        let state = state_from_bytes(&bytes, "checkpoint".as_ref()).unwrap();
        let mut resumed = Trainer::<Gpu>::from_state(state, &device).unwrap();
        for _ in 0..2 {
            alone.run_epoch();
            resumed.run_epoch();
        }
        assert_eq!(ensemble.weights()[k], alone.weights(), "member {k} alone");
        assert_eq!(
            common::without_time(&ensemble.histories()[k]),
            common::without_time(alone.history()),
            "member {k} alone"
        );
        assert_eq!(resumed.weights(), alone.weights(), "member {k} resumed");
        assert_eq!(
            resumed.state().optimizer,
            alone.state().optimizer,
            "member {k} resumed"
        );
    }
}

#[test]
fn kernels_sample_the_llc_as_the_host_does() {
    use grokking::{
        analysis::llc::{estimate_llc, LlcConfig},
        step::Rows,
        ModularDataset, Split,
    };
    let data = ModularDataset::new(13, 0.8, 3).unwrap();
    let train = Rows::new(&data, Split::Train);
    let centres: Vec<_> = (1..=2)
        .map(|seed| {
            MlpConfig::new()
                .with_p(13)
                .with_d_hidden(32)
                .init_weights(seed)
        })
        .collect();
    let config = LlcConfig {
        chains: 3,
        draws: 30,
        batch_size: 16,
        ..LlcConfig::default()
    };
    let method = Method::default();
    let gpu =
        estimate_llc::<Wgpu>(&centres, &train, &method, &config, &device(), &mut |_| {}).unwrap();
    let host = estimate_llc::<common::Cpu>(
        &centres,
        &train,
        &method,
        &config,
        &Default::default(),
        &mut |_| {},
    )
    .unwrap();
    for (g, h) in gpu.iter().zip(&host) {
        assert!((g.init_loss - h.init_loss).abs() < 1e-5 * h.init_loss);
        for (a, b) in g.traces.iter().zip(&h.traces) {
            assert_eq!(a.len(), 30);
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-4 * y.abs(), "{x} vs {y}");
            }
        }
        let (a, b) = (g.llc_mean.unwrap(), h.llc_mean.unwrap());
        assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "{a} vs {b}");
    }
}

//! Criterion benchmarks of the notebook's configuration (p = 113, 100 hidden, batch 128), one
//! group per compiled backend: one training step, one epoch (80 steps and validation), the
//! forward pass over all p² pairs; and, on the host, the neuron fits. The CPU backends' groups
//! run the host step on every core; their `-1thread` groups run it on one thread. The `llc`
//! group times SGLD on flex's host step: one chain's step on batches of 128 (the training
//! step's work plus the noise) and of 32, and the notebook model's LLC by 8 chains of 1000
//! draws (`analysis::llc::estimate_llc`, the target: under 2 s on 2 cores).
//!
//! `cargo bench` runs the CPU backends (ndarray, flex); `cargo bench --features wgpu` (or
//! `vulkan`, `cuda`) adds that GPU backend. GPU timings synchronise the device before the clock
//! is read. See `docs/benchmarks.md` for figures.

use std::hint::black_box;

use burn::{backend::Autodiff, module::AutodiffModule, tensor::backend::Backend};
use criterion::{criterion_group, criterion_main, Criterion};
use grokking::{
    analysis::{
        fourier,
        llc::{estimate_llc, LlcConfig},
    },
    data::Split,
    io,
    step::{Hyper, MemberSetup, Optimizer, Rows, StackSetup, StepBackend},
    train::{Engine, TrainBackend, Trainer, TrainingConfig},
    Method, ModularDataset,
};

/// The notebook's configuration with the given engine.
fn config(engine: Engine) -> TrainingConfig {
    TrainingConfig::new().with_engine(engine)
}

/// What a group times: an engine, and on the CPU backends the threads per model (`None`: every
/// core).
type Variant = (Engine, Option<usize>);

/// Benchmarks of one backend, `B` with autodiff; `variants` lists what to time.
fn backend<B: TrainBackend>(c: &mut Criterion, name: &str, variants: &[Variant]) {
    let device = B::Device::default();
    let sync = |device: &B::Device| B::sync(device).expect("device synchronises");
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    for &(engine, threads) in variants {
        let label = format!("{engine:?}").to_lowercase();
        let config = config(engine).with_threads(threads);
        let mut trainer = Trainer::<B>::new(&config, &device).expect("valid config");
        let batches = trainer.batches_per_epoch() - 1;
        let mut index = 0;
        group.bench_function(format!("step/{label}"), |bench| {
            bench.iter(|| {
                // Full batches only: the last one of an epoch is shorter.
                index = (index + 1) % batches;
                trainer.step(index);
                sync(&device);
            })
        });
        group.bench_function(format!("epoch/{label}"), |bench| {
            bench.iter(|| {
                black_box(trainer.run_epoch());
                sync(&device);
            })
        });
    }
    if !variants
        .iter()
        .any(|&(engine, _)| engine == Engine::Generic)
    {
        group.finish();
        return;
    }
    let trainer = Trainer::<B>::new(&config(Engine::Generic), &device).expect("valid config");
    let model = trainer.model().valid();
    let all = trainer
        .data()
        .tensors::<B::InnerBackend>(Split::Full, &device);
    group.bench_function("forward_all_pairs", |bench| {
        bench.iter(|| {
            let logits = model.forward_pairs(all.pairs.clone());
            <B::InnerBackend as Backend>::sync(&device).expect("device synchronises");
            black_box(logits);
        })
    });
    group.finish();
}

/// The FFT fits of all neurons of a trained-for-a-few-epochs model, on the host.
fn fits(c: &mut Criterion) {
    type B = Autodiff<burn::backend::Flex>;
    let mut trainer =
        Trainer::<B>::new(&config(Engine::Auto).with_epochs(5), &Default::default()).unwrap();
    for _ in 0..5 {
        trainer.run_epoch();
    }
    let weights = trainer.model().weights();
    c.bench_function("host/fit_neurons", |bench| {
        bench.iter(|| black_box(fourier::fit_neurons(&weights)))
    });
}

fn backends(c: &mut Criterion) {
    // The CPU backends' groups run on every core; their `-1thread` groups time the host step
    // on one, so each is tracked.
    let cpu = [(Engine::Fused, None), (Engine::Generic, None)];
    let one_thread = [(Engine::Fused, Some(1))];
    let gpu = cpu;
    #[cfg(feature = "flex")]
    {
        backend::<Autodiff<burn::backend::Flex>>(c, "flex", &cpu);
        backend::<Autodiff<burn::backend::Flex>>(c, "flex-1thread", &one_thread);
    }
    #[cfg(feature = "ndarray")]
    {
        backend::<Autodiff<burn::backend::NdArray>>(c, "ndarray", &cpu);
        backend::<Autodiff<burn::backend::NdArray>>(c, "ndarray-1thread", &one_thread);
    }
    #[cfg(feature = "wgpu")]
    backend::<Autodiff<burn::backend::Wgpu>>(c, "wgpu", &gpu);
    #[cfg(feature = "vulkan")]
    backend::<Autodiff<burn::backend::Vulkan>>(c, "vulkan", &gpu);
    #[cfg(feature = "cuda")]
    backend::<Autodiff<burn::backend::Cuda>>(c, "cuda", &gpu);
    let _ = (cpu, one_thread, gpu);
}

/// SGLD on flex's host step, at the notebook's trained model (`tests/fixtures`) and split.
#[cfg(feature = "flex")]
fn llc(c: &mut Criterion) {
    type B = burn::backend::Flex;
    let model = io::load_weights(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/seed1337_p113_h100.safetensors"),
    )
    .expect("the notebook's model");
    let data = ModularDataset::new(113, 0.8, 1337).expect("the notebook's split");
    let train = Rows::new(&data, Split::Train);
    let mut group = c.benchmark_group("llc");
    for batch in [128, 32] {
        let member = MemberSetup {
            weights: model.clone(),
            optimizer: None,
            hyper: Hyper {
                lr: 1e-3,
                weight_decay: 0.0,
                epsilon: 0.0,
            },
            method: Method {
                optimizer: Optimizer::Sgld {
                    nbeta: 9.23,
                    localization: 100.0,
                    seed: 100,
                    chain: 0,
                },
                ..Method::default()
            },
            train: train.clone(),
            val: train.clone(),
        };
        let setup = StackSetup {
            p: 113,
            d_hidden: 100,
            members: vec![member],
            threads: 0,
        };
        let mut stack = B::stack_init(setup, &Default::default());
        let batches = train.len() / batch;
        let mut index = 0;
        group.bench_function(format!("sgld_step/batch{batch}"), |bench| {
            bench.iter(|| {
                index = (index + 1) % batches;
                B::stack_step(&mut stack, index * batch..(index + 1) * batch);
                black_box(B::stack_take_train_sums(&mut stack));
            })
        });
    }
    group.sample_size(10);
    let config = LlcConfig {
        chains: 8,
        draws: 1000,
        ..LlcConfig::default()
    };
    group.bench_function("estimate/8chains_1000draws", |bench| {
        bench.iter(|| {
            black_box(
                estimate_llc::<B>(
                    std::slice::from_ref(&model),
                    &train,
                    &Method::default(),
                    &config,
                    &Default::default(),
                    &mut |_| {},
                )
                .expect("valid settings"),
            )
        })
    });
    group.finish();
}

#[cfg(not(feature = "flex"))]
fn llc(_: &mut Criterion) {}

criterion_group!(benches, backends, fits, llc);
criterion_main!(benches);

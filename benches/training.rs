//! Criterion benchmarks of the notebook's configuration (p = 113, 100 hidden, batch 128), one
//! group per compiled backend: one training step, one epoch (80 steps and validation), the
//! forward pass over all p² pairs; and, on the host, the neuron fits. The CPU backends' groups
//! run the host step on every core; their `-1thread` groups run it on one thread. The `llc`
//! group times SGLD on flex's host step: one chain's step on batches of 128 (the training
//! step's work plus the noise) and of 32, the same at 128 in chunks alternating with the
//! training step's (`sgld_over_training`, which prints the paired ratio of the two), the noise
//! of one such step alone (33,900 normals on one thread, `step::noise::fill_normals`), and the
//! notebook model's LLC by 8 chains of 1000 draws (`analysis::llc::estimate_llc`, the issue's
//! target: under 2 s on 2 cores).
//!
//! `cargo bench` runs the CPU backends (ndarray, flex); `cargo bench --features wgpu` (or
//! `vulkan`, `cuda`) adds that GPU backend. GPU timings synchronise the device before the clock
//! is read. See `docs/benchmarks.md` for figures.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use burn::{backend::Autodiff, module::AutodiffModule, tensor::backend::Backend};
use criterion::{criterion_group, criterion_main, Criterion};
use grokking::{
    analysis::{
        fourier,
        llc::{estimate_llc, LlcConfig},
    },
    data::Split,
    io,
    step::{noise, Hyper, MemberSetup, Optimizer, Rows, StackSetup, StepBackend},
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
    // One chain of SGLD at the notebook's trained model, or (`sgld` false) the notebook's
    // training step, AdamW, from it: a stack of one member.
    let stack = |sgld: bool| {
        let (hyper, optimizer) = if sgld {
            let hyper = Hyper {
                lr: 1e-3,
                weight_decay: 0.0,
                epsilon: 0.0,
            };
            let optimizer = Optimizer::Sgld {
                nbeta: 9.23,
                localization: 100.0,
                seed: 100,
                chain: 0,
            };
            (hyper, optimizer)
        } else {
            let config = TrainingConfig::new();
            let hyper = Hyper {
                lr: config.lr,
                weight_decay: config.weight_decay,
                epsilon: config.adam_epsilon,
            };
            (hyper, Method::default().optimizer)
        };
        let member = MemberSetup {
            weights: model.clone(),
            optimizer: None,
            hyper,
            method: Method {
                optimizer,
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
        B::stack_init(setup, &Default::default())
    };
    // Step `i` of a stack on batches of `batch` rows, cycling through the full ones.
    let step = |stack: &mut _, i: u64, batch: usize| {
        let index = i as usize % (train.len() / batch);
        B::stack_step(stack, index * batch..(index + 1) * batch);
        black_box(B::stack_take_train_sums(stack));
    };
    let mut group = c.benchmark_group("llc");
    for batch in [128, 32] {
        let mut stack = stack(true);
        let mut i = 0;
        group.bench_function(format!("sgld_step/batch{batch}"), |bench| {
            bench.iter(|| {
                i += 1;
                step(&mut stack, i, batch)
            })
        });
    }
    // Per chain-step against the training step, paired: chunks of training steps and of SGLD
    // steps alternate, so both meet the same machine (criterion's separate figures move by more
    // than their difference on a shared virtual machine). Criterion times the SGLD chunks; each
    // sample's ratio of SGLD's time to training's is printed after the group.
    let mut stacks = [stack(false), stack(true)];
    let mut ratios = Vec::new();
    group.bench_function("sgld_over_training/batch128", |bench| {
        bench.iter_custom(|iters| {
            let mut times = [Duration::ZERO; 2];
            let mut done = 0;
            while done < iters {
                let chunk = (iters - done).min(100);
                for (stack, time) in stacks.iter_mut().zip(&mut times) {
                    let start = Instant::now();
                    for i in done..done + chunk {
                        step(stack, i, 128);
                    }
                    *time += start.elapsed();
                }
                done += chunk;
            }
            ratios.push(times[1].as_secs_f64() / times[0].as_secs_f64());
            times[1]
        })
    });
    // The noise of one SGLD step of the notebook's model (33,900 weights), on one thread and
    // compiled for the widest vector unit, as the host step draws it.
    let mut noise = vec![0f32; 3 * 113 * 100];
    let key = noise::chain_key(100, 0);
    group.bench_function("noise/33900_weights", |bench| {
        let mut step = 0;
        bench.iter(|| {
            step += 1;
            fill_widest(key, step, &mut noise);
            black_box(&noise);
        })
    });
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
    // The measured samples are the last (criterion's default 100; the warm-up's come first).
    if ratios.len() >= 100 {
        let mut ratios = ratios.split_off(ratios.len() - 100);
        ratios.sort_by(f64::total_cmp);
        println!(
            "llc/sgld_over_training/batch128: SGLD's time over training's, median {:.3} \
             (quartiles {:.3}-{:.3}) of 100 paired samples",
            ratios[50], ratios[25], ratios[75]
        );
    }
}

/// [`noise::fill_normals`] compiled for the widest vector unit the CPU has (AVX-512, AVX2 or the
/// baseline), as the host step's loops are (its dispatch is private to the crate).
#[cfg(feature = "flex")]
fn fill_widest(key: [u32; 2], step: u32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(key: [u32; 2], step: u32, out: &mut [f32]) {
            noise::fill_normals(key, step, 0, out)
        }
        #[target_feature(enable = "avx2")]
        fn avx2(key: [u32; 2], step: u32, out: &mut [f32]) {
            noise::fill_normals(key, step, 0, out)
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { avx512(key, step, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(key, step, out) };
        }
    }
    noise::fill_normals(key, step, 0, out)
}

#[cfg(not(feature = "flex"))]
fn llc(_: &mut Criterion) {}

criterion_group!(benches, backends, fits, llc);
criterion_main!(benches);

//! Training throughput of K notebook models stacked in one ensemble: bare steps, timed between
//! two device synchronisations after a warm-up epoch, one JSON line per K.
//!
//! ```sh
//! cargo run --release --features wgpu --example throughput -- --backend wgpu --ks 1,16,256,1024
//! ```

use std::{io::Write, path::PathBuf, process::ExitCode, time::Instant};

use anyhow::Context;
use clap::Parser;
use grokking::{
    device::{on_backend, BackendJob, BackendKind},
    train::{batches, Ensemble},
    Engine, TrainBackend, TrainingConfig,
};

mod shared;

/// Time training steps of K stacked notebook models (seeds 1..K) on one backend.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Backend (only those compiled in, by cargo features).
    #[arg(long, default_value_t = BackendKind::default(), value_parser = shared::backend())]
    backend: BackendKind,
    /// How each step is computed.
    #[arg(long, default_value_t = Engine::Auto, value_parser = shared::engine())]
    engine: Engine,
    /// Numbers of models, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    ks: Vec<usize>,
    /// Threads per model on the CPU backends (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed steps per K (full batches of 128, cycling through an epoch's).
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Append the JSON lines to this file too.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    shared::main_with(|args: &Args| on_backend(args.backend, Throughput(args))?)
}

/// The measurement, on the backend `--backend` names.
struct Throughput<'a>(&'a Args);

impl BackendJob for Throughput<'_> {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: &B::Device) -> grokking::Result<Self::Output> {
        Ok(run::<B>(self.0, device))
    }
}

fn run<B: TrainBackend>(args: &Args, device: &B::Device) -> anyhow::Result<()> {
    let engine = args.engine.resolve();
    for &k in &args.ks {
        anyhow::ensure!(k > 0, "--ks: K must be at least 1");
        let configs: Vec<TrainingConfig> = (1..=k as u64)
            .map(|seed| {
                TrainingConfig::new()
                    .with_seed(seed)
                    .with_engine(engine)
                    .with_threads(args.threads)
            })
            .collect();
        let start = Instant::now();
        let mut ensemble = Ensemble::<B>::new(&configs, device)?;
        ensemble.run_epoch(); // compiles the kernels (or tunes Burn's), warms the caches
        let first_epoch = start.elapsed().as_secs_f64();
        let batch = configs[0].batch_size;
        let full: Vec<_> = batches(ensemble.data()[0].train_rows().len(), batch)
            .filter(|rows| rows.len() == batch)
            .collect();
        B::sync(device).context("synchronising the device")?;
        let start = Instant::now();
        for step in 0..args.steps {
            ensemble.step(full[step % full.len()].clone());
        }
        B::sync(device).context("synchronising the device")?;
        let seconds = start.elapsed().as_secs_f64() / args.steps.max(1) as f64;
        let line = format!(
            "{{\"backend\": \"{}\", \"engine\": \"{engine:?}\", \"k\": {k}, \"threads\": {}, \"ms_per_step\": {:.4}, \
             \"model_steps_per_s\": {:.0}, \"first_epoch_s\": {first_epoch:.2}}}",
            args.backend.name(),
            grokking::step::host_threads(args.threads.unwrap_or(0)),
            seconds * 1e3,
            k as f64 / seconds,
        );
        println!("{line}");
        if let Some(path) = &args.out {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            writeln!(file, "{line}")?;
        }
    }
    Ok(())
}

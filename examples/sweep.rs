//! Train a grid of models (seeds x weight decays x learning rates x train fractions x widths) as
//! batched ensembles, or one after another, and write `sweep.csv`, `sweep.json` and the phase
//! diagram. `--shard I/N` runs one slice of the grid (a job array's task); `--merge` joins the
//! shards' folders.
//!
//! ```sh
//! cargo run --release --example sweep -- --seeds 1..8 --epochs 50 --out runs/seeds
//! cargo run --release --example sweep -- --seeds 1..4 --weight-decay 0.1,0.3,1 \
//!     --train-fraction 0.3,0.5,0.8 --epochs 300 --out runs/phase
//! cargo run --release --example sweep -- --merge runs/part0 runs/part1 --out runs/all
//! ```

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};
use clap::Parser;
use grokking::{
    io,
    sweep::{self, Grid, Shard, SweepFile, SweepMode},
    Engine, MlpConfig, Operation, TrainBackend, TrainingConfig,
};
use indicatif::{ProgressBar, ProgressStyle};

mod shared;
use shared::{Backend, EngineArg};

/// Train a grid of grokking models and summarise when each one generalises.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Backend (only those compiled in, by cargo features).
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
    /// Seeds: a range `A..B` (inclusive) or a list `1,5,9`.
    #[arg(long, default_value = "1..8")]
    seeds: String,
    /// Weight decays, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.5",
        allow_negative_numbers = true
    )]
    weight_decay: Vec<f64>,
    /// Learning rates, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.003",
        allow_negative_numbers = true
    )]
    lr: Vec<f64>,
    /// Training fractions, comma-separated, each strictly between 0 and 1.
    #[arg(long, value_delimiter = ',', default_value = "0.8")]
    train_fraction: Vec<f64>,
    /// Hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    hidden: Vec<usize>,
    /// Operations, comma-separated: add, sub, mul, div, quadratic (a² + ab + b²), cubic (a³ + ab).
    #[arg(long, value_delimiter = ',', default_value = "add")]
    operation: Vec<Operation>,
    /// The modulus p.
    #[arg(long, default_value_t = 113)]
    p: usize,
    /// Epochs per model.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Rows per optimiser step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// How each step is computed: `fused` (the backend's own implementation: host code on CPU
    /// backends, CubeCL kernels on GPU ones), `generic` (the reference: Burn's tensor ops and
    /// autodiff), or `auto` (fused).
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// Train the models one after another (each alone, its usual engine) instead of batched.
    #[arg(long)]
    sequential: bool,
    /// Most models in one batched ensemble.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    max_batch: u64,
    /// Run only slice I of N of the grid (0 <= I < N), e.g. `--shard $SLURM_ARRAY_TASK_ID/16`.
    #[arg(long)]
    shard: Option<String>,
    /// Join the sweep folders given here (shards of one sweep) into `--out` instead of training.
    #[arg(long, num_args = 1..)]
    merge: Vec<PathBuf>,
    /// Keep every model's final weights: `models/NNNNNN.safetensors` in the folder, NNNNNN the
    /// model's `index` in sweep.csv (`analyze --checkpoint` reads them). A merge copies the
    /// shards' models into the merged folder.
    #[arg(long)]
    save_models: bool,
    /// Folder for sweep.csv, sweep.json and the figures.
    #[arg(long, default_value = "runs/sweep")]
    out: PathBuf,
    /// Overwrite a folder that already holds a sweep.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    shared::main_with(dispatch)
}

fn dispatch(args: &Args) -> anyhow::Result<()> {
    if args.out.as_os_str().is_empty() {
        bail!("--out: an empty path");
    }
    if args.out.join("sweep.json").exists() && !args.force {
        bail!(
            "{} already holds a sweep; pass --force to overwrite it",
            args.out.display()
        );
    }
    if !args.merge.is_empty() {
        let parts = args
            .merge
            .iter()
            .map(|dir| sweep::read_sweep(&dir.join("sweep.json")))
            .collect::<Result<Vec<_>, _>>()?;
        let merged = sweep::merge_sweeps(&parts)?;
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if let Some(part) = args.merge.iter().find(|dir| same(dir, &args.out)) {
            bail!(
                "--out {} is one of the merged folders; merge into a new folder",
                part.display()
            );
        }
        sweep::prepare_folder(&args.out)?;
        sweep::clear_models(&args.out)?;
        for (dir, part) in args.merge.iter().zip(&parts) {
            for result in &part.results {
                let from = sweep::model_file(dir, result.index);
                if from.exists() {
                    let to = sweep::model_file(&args.out, result.index);
                    std::fs::create_dir_all(to.parent().expect("models/"))?;
                    io::write_atomic(&to, &io::read_file(&from)?)?;
                }
            }
        }
        sweep::write_sweep(&args.out, &merged)?;
        println!(
            "merged {} models from {} folders into {}",
            merged.models,
            parts.len(),
            args.out.display()
        );
        return Ok(());
    }
    on_backend!(args.backend, run, args)
}

/// Parses `A..B` (inclusive) or `1,5,9`. A range is sized before it is listed: seeds are below
/// 2^32, and a grid holds at most `Grid::MAX_POINTS` models.
fn parse_seeds(text: &str) -> anyhow::Result<Vec<u64>> {
    let seeds = if let Some((a, b)) = text.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().context("--seeds: bad start")?,
            b.trim().parse().context("--seeds: bad end")?,
        );
        if a > b {
            bail!("--seeds {text}: empty range");
        }
        if b >= 1 << 32 {
            bail!("--seeds {text}: seeds must be below 2^32");
        }
        if b - a >= Grid::MAX_POINTS as u64 {
            bail!(
                "--seeds {text}: {} seeds, more than a sweep's {} models",
                b - a + 1,
                Grid::MAX_POINTS
            );
        }
        (a..=b).collect()
    } else {
        text.split(',')
            .map(|s| s.trim().parse::<u64>().context("--seeds: not a number"))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    Ok(seeds)
}

fn run<B: TrainBackend>(args: &Args, device: &B::Device) -> anyhow::Result<()> {
    let grid = Grid {
        base: TrainingConfig::new()
            .with_model(MlpConfig::new().with_p(args.p))
            .with_epochs(args.epochs)
            .with_batch_size(args.batch_size)
            .with_engine(Engine::from(args.engine).resolve()),
        seeds: parse_seeds(&args.seeds)?,
        weight_decays: args.weight_decay.clone(),
        lrs: args.lr.clone(),
        train_fractions: args.train_fraction.clone(),
        hiddens: args.hidden.clone(),
        operations: args.operation.clone(),
    };
    let shard: Shard = match &args.shard {
        Some(text) => text.parse()?,
        None => Shard::ALL,
    };
    let points = shard.select(&grid.points()?);
    if points.is_empty() {
        bail!("shard {shard} of this grid holds no model (the grid has fewer points than shards)");
    }
    let mode = if args.sequential {
        SweepMode::Sequential
    } else {
        SweepMode::Batched
    };
    // Memory, then the folder (made and tried), before any training: a sweep that cannot run or
    // cannot be written fails now, not after hours of work. An earlier sweep's models go.
    sweep::check_memory::<B>(&points, mode, args.max_batch as usize, args.save_models)?;
    sweep::prepare_folder(&args.out)?;
    sweep::clear_models(&args.out)?;
    let total = points
        .iter()
        .fold(0u64, |sum, p| sum.saturating_add(p.config.epochs as u64));
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} model-epochs {elapsed_precise} (eta {eta})",
        )
        .expect("valid template"),
    );
    let trained = sweep::train_points::<B>(
        &points,
        mode,
        args.max_batch as usize,
        args.save_models,
        device,
        |n| bar.inc(n as u64),
    )?;
    let (results, seconds) = (trained.results, trained.seconds);
    bar.finish();
    let grokked = results.iter().filter(|r| r.grok_epoch.is_some()).count();
    let file = SweepFile {
        grid,
        shards: vec![shard],
        backend: args.backend.name().into(),
        mode,
        models: results.len(),
        train_seconds: seconds,
        results,
    };
    if args.save_models {
        sweep::write_models(&args.out, &file.results, &trained.models)?;
    }
    sweep::write_sweep(&args.out, &file)?;
    println!(
        "{} models ({mode:?}, shard {shard}) on {} in {seconds:.1} s; {grokked} reached val_acc >= 0.99",
        file.models,
        file.backend,
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

//! Train a grid of models (seeds x weight decays x learning rates x train fractions x widths x
//! operations x methods x label noises) as
//! batched ensembles, or one after another, and write `sweep.csv`, `sweep.json` and the phase
//! diagram. `--shard I/N` runs one slice of the grid (a job array's task); `--merge` joins the
//! shards' folders.
//!
//! ```sh
//! cargo run --release --example sweep -- --seeds 1..8 --epochs 50 --out runs/seeds
//! cargo run --release --example sweep -- --seeds 1..4 --weight-decay 0.1,0.3,1 \
//!     --train-fraction 0.3,0.5,0.8 --epochs 300 --out runs/phase
//! cargo run --release --example sweep -- --seeds 1..8 --optimizer adamw,muon --lr 0.003,0.02 \
//!     --epochs 600 --out runs/muon
//! cargo run --release --example sweep -- --merge runs/part0 runs/part1 --out runs/all
//! ```

use std::{path::PathBuf, process::ExitCode};

use anyhow::{bail, Context};
use clap::Parser;
use grokking::{
    device::BackendKind,
    sweep::{self, Grid, Shard, SweepMode, SweepOptions},
    Engine, MlpConfig, Operation, TrainingConfig,
};

mod shared;

/// Train a grid of grokking models and summarise when each one generalises.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Backend (only those compiled in, by cargo features).
    #[arg(long, default_value_t = BackendKind::default(), value_parser = shared::backend())]
    backend: BackendKind,
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
    /// How each step is computed.
    #[arg(long, default_value_t = Engine::Auto, value_parser = shared::engine())]
    engine: Engine,
    /// The models' methods: each flag takes a list, and every combination is a method of the
    /// grid (sweep.csv's `method` and `label_noise` columns).
    #[command(flatten)]
    method: shared::MethodArgs,
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
    shared::main_with(run)
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

fn run(args: &Args) -> anyhow::Result<()> {
    if !args.merge.is_empty() {
        let merged = sweep::merge_folders(&args.merge, &args.out, args.force)?;
        println!(
            "merged {} models from {} folders into {}",
            merged.models,
            args.merge.len(),
            args.out.display()
        );
        return Ok(());
    }
    let grid = Grid {
        base: TrainingConfig::new()
            .with_model(MlpConfig::new().with_p(args.p))
            .with_epochs(args.epochs)
            .with_batch_size(args.batch_size)
            .with_engine(args.engine.resolve()),
        seeds: parse_seeds(&args.seeds)?,
        weight_decays: args.weight_decay.clone(),
        lrs: args.lr.clone(),
        train_fractions: args.train_fraction.clone(),
        hiddens: args.hidden.clone(),
        operations: args.operation.clone(),
        methods: args.method.methods()?,
        label_noises: args.method.label_noises(),
    };
    let options = SweepOptions {
        shard: match &args.shard {
            Some(text) => text.parse()?,
            None => Shard::ALL,
        },
        mode: if args.sequential {
            SweepMode::Sequential
        } else {
            SweepMode::Batched
        },
        max_batch: args.max_batch as usize,
        save_models: args.save_models,
        force: args.force,
    };
    let bar = shared::bar(0, "model-epochs");
    let file = sweep::run_sweep_on(
        args.backend,
        &grid,
        &args.out,
        &options,
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish();
    let grokked = file
        .results
        .iter()
        .filter(|r| r.grok_epoch.is_some())
        .count();
    println!(
        "{} models ({:?}, shard {}) on {} in {:.1} s; {grokked} reached val_acc >= 0.99",
        file.models, file.mode, options.shard, file.backend, file.train_seconds,
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

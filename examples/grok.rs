//! Train the notebook's MLP on modular addition, fit its neurons, and write a run folder: the
//! library's `grokking::run::Run` behind flags, a progress bar and the printed results.
//!
//! `cargo run --release --example grok -- --help` lists the options; defaults are the notebook's.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use grokking::{device::BackendKind, run::*, Control, Engine, EpochMetrics, MlpConfig, Operation};

mod shared;

/// Train a one-hidden-layer MLP on (a + b) mod p, as the origin notebook does (or on another
/// operation), and analyse it.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Backend to run on (only those compiled in, by cargo features, can be used).
    #[arg(long, default_value_t = BackendKind::default(), value_parser = shared::backend())]
    backend: BackendKind,
    /// The operation: add (the notebook's), sub, mul, div (b ≠ 0; p prime), quadratic
    /// (a² + ab + b²), cubic (a³ + ab).
    #[arg(long, default_value_t = Operation::Add)]
    operation: Operation,
    /// The modulus p.
    #[arg(long, default_value_t = 113)]
    p: usize,
    /// Hidden neurons.
    #[arg(long, default_value_t = 100)]
    hidden: usize,
    /// Fraction of the p² pairs used for training, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.8)]
    train_fraction: f64,
    /// Passes over the training rows.
    #[arg(long, default_value_t = 2000)]
    epochs: usize,
    /// Rows per optimiser step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// The optimiser's learning rate.
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    lr: f64,
    /// Weight decay (AdamW's decoupled one; SGD's coupled g + wd·w).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    weight_decay: f64,
    /// Seed of the data split and the initial weights (below 2^32).
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    #[command(flatten)]
    method: shared::MethodArgs,
    /// Folder for the run's files.
    #[arg(long, default_value = "runs/grok")]
    out: PathBuf,
    /// Replace a run already in the folder (finished or not): its files are removed first.
    #[arg(long)]
    force: bool,
    /// Skip the analysis report (report.html, analysis.json, figures/).
    #[arg(long)]
    no_report: bool,
    /// How each step is computed. With --resume, the engine to go on with.
    #[arg(long, default_value_t = Engine::Auto, value_parser = shared::engine())]
    engine: Engine,
    /// Threads per model on the CPU backends (default: one per core, at most one per piece of
    /// 64 hidden units); never changes the result. With --resume, the count to go on with.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Write a checkpoint (weights, AdamW state, history) every N epochs; 0 writes none.
    #[arg(long, default_value_t = 0)]
    checkpoint_every: usize,
    /// Keep the weights every N epochs and after the last (`snapshots.safetensors`) and measure
    /// the training dynamics (`progress.json`); 0 keeps none. With --resume, the interval to go
    /// on with.
    #[arg(long, default_value_t = 0)]
    snapshot_every: usize,
    /// Continue the killed run in this folder from its checkpoint (its config is used; the
    /// training options above are ignored).
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
}

fn main() -> ExitCode {
    shared::main_with(run)
}

fn run(args: &Args) -> anyhow::Result<()> {
    let options = RunOptions::default()
        .with_checkpoint_every(args.checkpoint_every)
        .with_snapshot_every(args.snapshot_every)
        .with_report(!args.no_report)
        .with_force(args.force);
    let threads = args.threads.map(|t| t as usize);
    let run = match &args.resume {
        Some(dir) => {
            let resume = Resume {
                engine: args.engine,
                threads,
            };
            let run = Run::resume_on(args.backend, dir, &resume, &options)?;
            println!(
                "resuming {} after epoch {}",
                dir.display(),
                run.epochs_done()
            );
            run
        }
        None => {
            let config = grokking::TrainingConfig::new()
                .with_model(MlpConfig::new().with_p(args.p).with_d_hidden(args.hidden))
                .with_operation(args.operation)
                .with_train_fraction(args.train_fraction)
                .with_epochs(args.epochs)
                .with_batch_size(args.batch_size)
                .with_lr(args.lr)
                .with_weight_decay(args.weight_decay)
                .with_seed(args.seed)
                .with_engine(args.engine)
                .with_threads(threads);
            let config = args.method.apply(config)?;
            Run::start_on(args.backend, &config, &args.out, &options)?
        }
    };
    let bar = shared::bar(run.config().epochs as u64, "epochs");
    bar.set_position(run.epochs_done() as u64);
    let finished = run.to_end(|m: &EpochMetrics| {
        bar.set_position(m.epoch as u64 + 1);
        let (loss, acc) = ((m.train_loss, m.val_loss), (m.train_acc, m.val_acc));
        bar.set_message(format!(
            "loss {:.4}/{:.4} acc {:.4}/{:.4}",
            loss.0, loss.1, acc.0, acc.1
        ));
        Control::Continue
    })?;
    bar.finish();
    if let Some(measures) = &finished.progress {
        let (n, seconds) = (measures.epochs.len(), finished.progress_seconds);
        let keys = &measures.key_frequencies;
        println!("progress measures of {n} snapshots in {seconds:.2} s (key frequencies {keys:?})");
    }
    print!("{finished}");
    match &finished.report {
        ReportOutcome::Written { seconds, .. } => println!("report.html in {seconds:.2} s"),
        ReportOutcome::Failed(e) => eprintln!("warning: no report: {e}"),
        ReportOutcome::Skipped => {}
    }
    println!("wrote {}", finished.folder.path().display());
    Ok(())
}

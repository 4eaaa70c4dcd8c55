//! Train the notebook's MLP on modular addition, fit its neurons, and write a run folder.
//!
//! `cargo run --release --example grok -- --help` lists the options; defaults are the notebook's.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::Parser;
use grokking::{
    analysis::{self, progress::progress_measures},
    io::{
        checkpoint,
        run_folder::{RunFolder, Summary},
        snapshots::{self, Snapshots},
    },
    Engine, MlpConfig, Operation, TrainBackend, Trainer, TrainingConfig,
};
use indicatif::{ProgressBar, ProgressStyle};

mod shared;
use shared::{Backend, EngineArg};

/// Train a one-hidden-layer MLP on (a + b) mod p, as the origin notebook does (or on another
/// operation), and analyse it.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Backend to run on (only those compiled in, by cargo features, can be used).
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
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
    /// AdamW learning rate.
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    weight_decay: f64,
    /// Seed of the data split and the initial weights (below 2^32).
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Folder for the run's files.
    #[arg(long, default_value = "runs/grok")]
    out: PathBuf,
    /// Replace a run already in the folder (finished or not): its files are removed first.
    #[arg(long)]
    force: bool,
    /// Skip the analysis report (report.html, analysis.json, figures/).
    #[arg(long)]
    no_report: bool,
    /// How each step is computed: `fused` (the backend's own implementation: host code on CPU
    /// backends, CubeCL kernels on GPU ones), `generic` (the reference: Burn's tensor ops and
    /// autodiff on the backend), or `auto` (fused). With --resume, the engine to go on with.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// Threads per model on the CPU backends (default: one per core, at most one per piece of
    /// 64 hidden units). Changes the speed, never the result. With --resume, the count to go on
    /// with.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Write a training checkpoint (`checkpoint.safetensors`: weights, AdamW state, history)
    /// every N epochs, atomically; 0 writes none.
    #[arg(long, default_value_t = 0)]
    checkpoint_every: usize,
    /// Keep the weights every N epochs and after the last one in `snapshots.safetensors` (one
    /// file, written with each checkpoint and at the end), and measure the training dynamics
    /// (`progress.json`, the report's dynamics figure); 0 keeps none. With --resume, the interval
    /// to go on with.
    #[arg(long, default_value_t = 0)]
    snapshot_every: usize,
    /// Continue the killed run in this folder from its checkpoint (its config is used; the
    /// training options above are ignored).
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
}

fn main() -> ExitCode {
    shared::main_with(|args: &Args| on_backend!(args.backend, run, args))
}

/// Training was checked against the machine's memory by `TrainingConfig::validate`; the report
/// after it needs more (unless `--no-report`), checked too before anything is written.
fn check_report_memory(args: &Args, config: &TrainingConfig) -> anyhow::Result<()> {
    let (p, h) = (config.model.p, config.model.d_hidden);
    let snapshots = match args.snapshot_every {
        0 => 0,
        every => Snapshots::memory_estimate(config, every)
            .saturating_add(grokking::analysis::progress::memory_estimate(p)),
    };
    let report = if args.no_report {
        0
    } else {
        grokking::report::memory_estimate(p, h)
    };
    grokking::memory::check(
        &format!("training, snapshots and the report for p = {p} and {h} hidden units"),
        config
            .memory_estimate()
            .saturating_add(snapshots)
            .saturating_add(report),
    )?;
    Ok(())
}

/// Whether the weights after `epoch` (from 0) are kept.
fn snapshot_due(args: &Args, epoch: usize, epochs: usize) -> bool {
    args.snapshot_every > 0
        && ((epoch + 1).is_multiple_of(args.snapshot_every) || epoch + 1 == epochs)
}

fn run<B: TrainBackend>(args: &Args, device: &B::Device) -> anyhow::Result<()> {
    let config = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(args.p).with_d_hidden(args.hidden))
        .with_operation(args.operation)
        .with_train_fraction(args.train_fraction)
        .with_epochs(args.epochs)
        .with_batch_size(args.batch_size)
        .with_lr(args.lr)
        .with_weight_decay(args.weight_decay)
        .with_seed(args.seed)
        // config.json records the engine that ran, not `Auto`.
        .with_engine(Engine::from(args.engine).resolve())
        .with_threads(args.threads.map(|t| t as usize));
    let mut kept_snapshots = None;
    let (folder, trainer) = match &args.resume {
        Some(dir) => {
            if dir.join("summary.json").exists() {
                bail!(
                    "{} holds a finished run (summary.json); there is nothing to resume",
                    dir.display()
                );
            }
            let mut state = checkpoint::load_state(dir.join(checkpoint::FILE_NAME))
                .context("reading the checkpoint to resume from")?;
            // The run goes on with the backend and engine named now, whatever it started on.
            state.config.engine = config.engine;
            state.config.threads = config.threads;
            check_report_memory(args, &state.config)?;
            println!("resuming {} after epoch {}", dir.display(), state.epoch());
            let folder = RunFolder::open(dir)?;
            let epoch = state.epoch();
            let trainer = Trainer::<B>::from_state(state, device)?;
            // The snapshots up to the checkpoint are kept; later ones are taken again.
            let path = folder.file(snapshots::FILE_NAME);
            if path.exists() {
                if args.snapshot_every == 0 {
                    bail!(
                        "{} keeps snapshots ({}): resume with --snapshot-every N to go on keeping them",
                        dir.display(),
                        snapshots::FILE_NAME
                    );
                }
                let mut kept = Snapshots::load(&path).context("reading the run's snapshots")?;
                match epoch.checked_sub(1) {
                    Some(last) => kept.truncate_after(last),
                    None => kept = Snapshots::new(kept.config().clone()),
                }
                kept_snapshots = Some(kept);
            }
            // config.json records what the run goes on with (engine, threads).
            folder.write_config(trainer.config())?;
            (folder, trainer)
        }
        None => {
            config.validate()?;
            check_report_memory(args, &config)?;
            let replacing = RunFolder::holds_run(&args.out);
            let folder = RunFolder::create(&args.out, args.force)?;
            if replacing {
                // --force on a run: its files go, so none is left beside the new run's.
                folder.clear()?;
            }
            folder.write_config(&config)?;
            (folder, Trainer::<B>::new(&config, device)?)
        }
    };
    let config = trainer.config().clone();
    let mut snapshots = (args.snapshot_every > 0)
        .then(|| kept_snapshots.unwrap_or_else(|| Snapshots::new(config.clone())));
    let mut snapshots_saved = snapshots.as_ref().map_or(0, Snapshots::len);

    let bar = ProgressBar::new(config.epochs as u64).with_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} epochs {elapsed_precise} (eta {eta}) {msg}",
        )
        .expect("valid template"),
    );
    // metrics.csv is rewritten whole, atomically, at most once a second and at the end.
    let mut last_write = Instant::now();
    let mut trainer = trainer;
    let mut write_error = None;
    bar.set_position(trainer.history().epochs.len() as u64);
    while trainer.history().epochs.len() < config.epochs {
        let m = trainer.run_epoch();
        bar.set_position(m.epoch as u64 + 1);
        bar.set_message(format!(
            "loss {:.4}/{:.4} acc {:.4}/{:.4}",
            m.train_loss, m.val_loss, m.train_acc, m.val_acc
        ));
        if last_write.elapsed() >= Duration::from_secs(1) {
            last_write = Instant::now();
            if let Err(e) = folder.write_metrics(trainer.history()) {
                write_error = Some(e.into());
                break;
            }
        }
        if let Some(snapshots) = snapshots
            .as_mut()
            .filter(|_| snapshot_due(args, m.epoch, config.epochs))
        {
            snapshots.push(m.epoch, &trainer.weights())?;
        }
        if args.checkpoint_every > 0 && (m.epoch + 1) % args.checkpoint_every == 0 {
            // Snapshots first: a kill between the two files leaves snapshots past the checkpoint,
            // which the resumed run drops and retakes, never a gap. Saved only when one was added.
            let saved = match snapshots.as_ref().filter(|s| s.len() != snapshots_saved) {
                Some(s) => s.save(folder.file(snapshots::FILE_NAME)).map(|()| s.len()),
                None => Ok(snapshots_saved),
            }
            .and_then(|n| {
                snapshots_saved = n;
                checkpoint::save_state(folder.file(checkpoint::FILE_NAME), &trainer.state())
            });
            if let Err(e) = saved {
                write_error = Some(anyhow::Error::from(e).context("writing the checkpoint"));
                break;
            }
        }
    }
    bar.finish();
    if let Some(e) = write_error {
        return Err(e.context("writing the run folder"));
    }
    // A run stopped early keeps its last epoch too.
    if let Some(snapshots) = snapshots.as_mut() {
        if let Some(last) = trainer.history().last().map(|m| m.epoch) {
            if snapshots.epochs().last() != Some(&last) {
                snapshots.push(last, &trainer.weights())?;
            }
        }
    }
    let trained = trainer.finish();
    let history = &trained.history;
    folder.write_metrics(history)?;
    folder.write_model(&trained.model)?;
    let progress = match &snapshots {
        Some(snapshots) => {
            snapshots.save(folder.file(snapshots::FILE_NAME))?;
            let start = Instant::now();
            let measures = progress_measures(snapshots, None)?;
            measures.write(folder.file("progress.json"))?;
            println!(
                "progress measures of {} snapshots in {:.2} s (key frequencies {:?})",
                snapshots.len(),
                start.elapsed().as_secs_f64(),
                measures.key_frequencies
            );
            Some(measures)
        }
        None => None,
    };

    let weights = trained.model.weights();
    let found = analysis::analyse_weights(&weights, &trained.data);
    folder.write_neurons(&found)?;
    let replaced = &found.replaced_all;
    let last = history.last().expect("at least one epoch");
    let summary = Summary {
        backend: args.backend.name().into(),
        operation: config.operation,
        p: config.model.p,
        hidden: config.model.d_hidden,
        epochs_run: Some(history.epochs.len()),
        grok_epoch: history.grok_epoch(),
        final_metrics: Some(last.into()),
        train_seconds: Some(last.seconds),
        basis: Some(found.basis.name()),
        fit_r2: Some(found.mean_r2),
        fit_r2_identity: Some(found.mean_r2_identity),
        full_accuracy: found.full_accuracy,
        replaced_all_accuracy: replaced.full,
        replaced_all_val_accuracy: Some(replaced.val),
    };
    folder.write_summary(&summary)?;

    println!(
        "{} epochs on {} in {:.1} s ({:.3} ms/step); grok epoch (val_acc >= 0.99): {}",
        history.epochs.len(),
        summary.backend,
        last.seconds,
        1e3 * last.seconds
            / (history.epochs.len() * trained.data.train_rows().len().div_ceil(config.batch_size))
                as f64,
        summary.grok_epoch.map_or("never".into(), |e| e.to_string()),
    );
    println!(
        "final: train_loss {:.4} val_loss {:.4} train_acc {:.4} val_acc {:.4}",
        last.train_loss, last.val_loss, last.train_acc, last.val_acc
    );
    println!(
        "full-grid accuracy {:.5}; all {} neurons replaced by cosines: {:.5} (val {:.5})",
        summary.full_accuracy, config.model.d_hidden, replaced.full, replaced.val
    );
    println!(
        "cosine fits in {} coordinates: mean R² {:.3} (identity coordinates: {:.3})",
        found.basis.name(),
        found.mean_r2,
        found.mean_r2_identity
    );
    if !args.no_report {
        let start = Instant::now();
        let report = grokking::report::ReportConfig {
            heatmap_neurons: (0..config.model.d_hidden.min(3)).collect(),
            ..Default::default()
        };
        match grokking::report::write_report(
            folder.path(),
            &weights,
            &trained.data,
            Some(history),
            progress.as_ref(),
            &report,
        ) {
            Ok(_) => println!("report.html in {:.2} s", start.elapsed().as_secs_f64()),
            // The run itself is saved; a report that cannot be drawn (too few neurons) is a warning.
            Err(e) => eprintln!("warning: no report: {e}"),
        }
    }
    println!("wrote {}", folder.path().display());
    Ok(())
}

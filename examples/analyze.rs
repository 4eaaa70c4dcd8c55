//! Analyse a saved model without training: fit its neurons and write `neurons.json` and
//! `summary.json`; with `--snapshots`, measure the training dynamics too (`progress.json`); with
//! `--report`, draw the report.
//!
//! `cargo run --release --example analyze -- --checkpoint model.pth --out runs/notebook` reads a
//! PyTorch state dict (`torch.save(model.state_dict(), path)`), a `.safetensors` file, a Burn
//! record (`model.mpk`), a training checkpoint or a sweep's kept model, chosen by content; p and
//! the width come from the file. `--snapshots runs/x/snapshots.safetensors` reads the weights a
//! run kept along training (`grok --snapshot-every N`) and analyses the last of them.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use clap::Parser;
use grokking::{
    analysis::{self, progress::progress_measures},
    io::{
        self, checkpoint,
        run_folder::{RunFolder, Summary},
        snapshots::Snapshots,
    },
    report::{self, ReportConfig},
    MlpWeights, ModularDataset, Operation,
};

mod shared;

/// Fit the neurons of a saved model and measure its accuracy, as `grok` does after training.
#[derive(Parser, Debug)]
#[command(version, about)]
#[command(group = clap::ArgGroup::new("model").required(true).args(["checkpoint", "snapshots"]))]
struct Args {
    /// The model: a `.pth` state dict, a `.safetensors` file, a Burn `.mpk` record or a training
    /// checkpoint (recognised by content, not by extension).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// A run's snapshots (`snapshots.safetensors`, from `grok --snapshot-every N`): the progress
    /// measures of every snapshot go to `progress.json`, and the last snapshot is analysed.
    #[arg(long, conflicts_with = "checkpoint")]
    snapshots: Option<PathBuf>,
    /// Key frequencies for the progress measures, comma-separated (default: those of the last
    /// snapshot).
    #[arg(long, value_delimiter = ',', requires = "snapshots")]
    key_frequencies: Option<Vec<usize>>,
    /// The operation the model was trained on: add, sub, mul, div, quadratic, cubic. A training
    /// checkpoint or a snapshot file records its own; this must then agree.
    #[arg(long)]
    operation: Option<Operation>,
    /// Also write the report (`report.html`, `analysis.json`, `figures/`), with the training
    /// dynamics when `--snapshots` is given.
    #[arg(long)]
    report: bool,
    /// Folder for the files written.
    #[arg(long)]
    out: PathBuf,
    /// Write into a folder that already holds a run or analysis (only the files this writes are
    /// replaced).
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    shared::main_with(run)
}

/// The model, its data set (the run's split where the file records it), and its snapshots.
struct Loaded {
    weights: MlpWeights,
    data: ModularDataset,
    snapshots: Option<Snapshots>,
}

fn load(args: &Args) -> anyhow::Result<Loaded> {
    if let Some(path) = &args.snapshots {
        let snapshots = Snapshots::load(path)?;
        let config = snapshots.config().clone();
        let operation = agree(args.operation, Some(config.operation), "snapshot file")?;
        let weights = snapshots.weights(snapshots.len().checked_sub(1).ok_or_else(|| {
            anyhow::anyhow!("{}: the snapshot file holds no snapshot", path.display())
        })?);
        let data = ModularDataset::with_operation(
            config.model.p,
            operation,
            config.train_fraction,
            config.seed,
        )?;
        return Ok(Loaded {
            weights,
            data,
            snapshots: Some(snapshots),
        });
    }
    let path = args
        .checkpoint
        .as_ref()
        .expect("clap requires one of the two");
    let weights = io::load_weights(path)?;
    let (p, hidden) = (weights.p(), weights.d_hidden());
    // The data set's rows, labels and shuffle (three u32 per pair) and the fits, before they are
    // taken.
    let (p64, h64) = (p as u64, hidden as u64);
    grokking::memory::check(
        &format!("analysing p = {p} with {hidden} hidden units"),
        p64.saturating_mul(p64)
            .saturating_mul(24)
            .saturating_add(p64.saturating_mul(h64).saturating_mul(48)),
    )?;
    // A training checkpoint records its configuration: its own operation and split.
    let bytes = io::read_file(path)?;
    let recorded = checkpoint::is_trainer_state(&bytes)
        .then(|| checkpoint::state_from_bytes(&bytes, path))
        .transpose()?
        .map(|state| state.config);
    let data = match recorded {
        Some(c) => {
            let operation = agree(args.operation, Some(c.operation), "checkpoint")?;
            ModularDataset::with_operation(p, operation, c.train_fraction, c.seed)?
        }
        // The full grid does not depend on the split; 0.5 is valid for every p >= 2.
        None => {
            if args.operation.is_none() {
                println!("the file records no operation: addition assumed (--operation to choose)");
            }
            ModularDataset::with_operation(p, args.operation.unwrap_or_default(), 0.5, 0)?
        }
    };
    Ok(Loaded {
        weights,
        data,
        snapshots: None,
    })
}

/// `--operation`, checked against the one a file records.
fn agree(
    given: Option<Operation>,
    recorded: Option<Operation>,
    what: &str,
) -> anyhow::Result<Operation> {
    match (given, recorded) {
        (Some(given), Some(recorded)) if given != recorded => {
            anyhow::bail!("--operation {given}, but the {what} was trained on {recorded}")
        }
        (given, recorded) => Ok(given.or(recorded).unwrap_or_default()),
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Read and check everything before the output folder is touched: a bad file leaves no output.
    let Loaded {
        weights,
        data,
        snapshots,
    } = load(args)?;
    let (p, hidden) = (weights.p(), weights.d_hidden());
    if args.report && hidden < 4 {
        anyhow::bail!(
            "--report needs at least 4 hidden neurons (for t-SNE); the model has {hidden}"
        );
    }
    let progress_bytes = if snapshots.is_some() {
        grokking::analysis::progress::memory_estimate(p)
    } else {
        0
    };
    let report_bytes = if args.report {
        report::memory_estimate(p, hidden)
    } else {
        0
    };
    grokking::memory::check(
        &format!("the analyses for p = {p} and {hidden} hidden units"),
        progress_bytes.saturating_add(report_bytes),
    )?;
    let progress = match &snapshots {
        Some(snapshots) => {
            let start = Instant::now();
            let measures = progress_measures(snapshots, args.key_frequencies.as_deref())?;
            println!(
                "progress measures of {} snapshots (epochs {}..={}) in {:.2} s; key frequencies {:?}",
                snapshots.len(),
                snapshots.epochs()[0],
                snapshots.epochs()[snapshots.len() - 1],
                start.elapsed().as_secs_f64(),
                measures.key_frequencies
            );
            Some(measures)
        }
        None => None,
    };
    let found = analysis::analyse_weights(&weights, &data);
    let folder = RunFolder::create(&args.out, args.force)?;
    folder.write_neurons(&found)?;
    folder.write_summary(&Summary {
        backend: "host".into(),
        operation: data.operation(),
        p,
        hidden,
        epochs_run: None,
        grok_epoch: None,
        final_metrics: None,
        train_seconds: None,
        basis: Some(found.basis.name()),
        fit_r2: Some(found.mean_r2),
        fit_r2_identity: Some(found.mean_r2_identity),
        full_accuracy: found.full_accuracy,
        replaced_all_accuracy: found.replaced_all.full,
        replaced_all_val_accuracy: None,
    })?;
    if let Some(measures) = &progress {
        measures.write(folder.file("progress.json"))?;
    }
    println!(
        "p = {p}, {hidden} neurons, {}: full-grid accuracy {:.5}; all replaced by cosines: {:.5}",
        data.operation().formula(),
        found.full_accuracy,
        found.replaced_all.full
    );
    println!(
        "cosine fits in {} coordinates: mean R² {:.3} (identity coordinates: {:.3})",
        found.basis.name(),
        found.mean_r2,
        found.mean_r2_identity
    );
    if args.report {
        let config = ReportConfig {
            heatmap_neurons: (0..hidden.min(3)).collect(),
            ..Default::default()
        };
        report::write_report(
            folder.path(),
            &weights,
            &data,
            None,
            progress.as_ref(),
            &config,
        )?;
    }
    println!("wrote {}", folder.path().display());
    Ok(())
}

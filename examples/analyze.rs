//! Analyse a saved model without training: fit its neurons and write `neurons.json` and
//! `summary.json`; with `--snapshots`, measure the training dynamics too (`progress.json`); with
//! `--report`, draw the report. The library's `grokking::run::analyze_saved` behind flags.
//!
//! `cargo run --release --example analyze -- --checkpoint model.pth --out runs/notebook` reads a
//! PyTorch state dict (`torch.save(model.state_dict(), path)`), a `.safetensors` file, a Burn
//! record (`model.mpk`), a training checkpoint or a sweep's kept model, chosen by content; p and
//! the width come from the file. `--snapshots runs/x/snapshots.safetensors` reads the weights a
//! run kept along training (`grok --snapshot-every N`) and analyses the last of them.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use grokking::{
    run::{analyze_saved, AnalyzeOptions, SavedModel},
    Operation,
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

fn run(args: &Args) -> anyhow::Result<()> {
    let model = match (&args.checkpoint, &args.snapshots) {
        (_, Some(path)) => SavedModel::Snapshots(path.clone()),
        (Some(path), None) => SavedModel::Weights(path.clone()),
        (None, None) => unreachable!("clap requires one of the two"),
    };
    let options = AnalyzeOptions {
        operation: args.operation,
        key_frequencies: args.key_frequencies.clone(),
        report: args.report,
        force: args.force,
    };
    let found = analyze_saved(&model, &args.out, &options)?;
    if found.assumed_addition {
        println!("the file records no operation: addition assumed (--operation to choose)");
    }
    if let Some(measures) = &found.progress {
        let epochs = &measures.epochs;
        println!(
            "progress measures of {} snapshots (epochs {}..={}) in {:.2} s; key frequencies {:?}",
            epochs.len(),
            epochs[0],
            epochs[epochs.len() - 1],
            found.progress_seconds,
            measures.key_frequencies
        );
    }
    let s = &found.summary;
    println!(
        "p = {}, {} neurons, {}: full-grid accuracy {:.5}; all replaced by cosines: {:.5}",
        s.p,
        s.hidden,
        s.operation.formula(),
        s.full_accuracy,
        s.replaced_all_accuracy
    );
    println!("{}", found.analysis);
    println!("wrote {}", found.folder.path().display());
    Ok(())
}

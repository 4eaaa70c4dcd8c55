//! Analyse a saved model without training: fit its neurons and write `neurons.json` and `summary.json`.
//!
//! `cargo run --release --example analyze -- --checkpoint model.pth --out runs/notebook` reads a
//! PyTorch state dict (`torch.save(model.state_dict(), path)`), a `.safetensors` file, a Burn
//! record (`model.mpk`) or a training checkpoint, chosen by content; p and the width come from the
//! file.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use grokking::{
    analysis,
    io::{
        self, checkpoint,
        run_folder::{RunFolder, Summary},
    },
    ModularDataset, Operation,
};

mod shared;

/// Fit the neurons of a saved model and measure its accuracy, as `grok` does after training.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The model: a `.pth` state dict, a `.safetensors` file, a Burn `.mpk` record or a training
    /// checkpoint (recognised by content, not by extension).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The operation the model was trained on: add, sub, mul, div, quadratic, cubic. A training
    /// checkpoint records its own; this must then agree.
    #[arg(long)]
    operation: Option<Operation>,
    /// Folder for `neurons.json` and `summary.json`.
    #[arg(long)]
    out: PathBuf,
    /// Write into a folder that already holds a run or analysis (only neurons.json and
    /// summary.json are replaced).
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    shared::main_with(run)
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Read and check everything before the output folder is touched: a bad file leaves no output.
    let weights = io::load_weights(&args.checkpoint)?;
    let (p, hidden) = (weights.p(), weights.d_hidden());
    // The data set's rows and shuffle (two u32 per pair) and the fits, before they are taken.
    let (p64, h64) = (p as u64, hidden as u64);
    grokking::memory::check(
        &format!("analysing p = {p} with {hidden} hidden units"),
        p64.saturating_mul(p64)
            .saturating_mul(24)
            .saturating_add(p64.saturating_mul(h64).saturating_mul(48)),
    )?;
    let operation = checked_operation(args)?;
    // The full grid does not depend on the split; 0.5 is valid for every p >= 2.
    let data = ModularDataset::with_operation(p, operation, 0.5, 0)?;
    let found = analysis::analyse_weights(&weights, &data);
    let folder = RunFolder::create(&args.out, args.force)?;
    folder.write_neurons(&found)?;
    folder.write_summary(&Summary {
        backend: "host".into(),
        operation,
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
    println!(
        "p = {p}, {hidden} neurons: full-grid accuracy {:.5}; all replaced by cosines: {:.5}",
        found.full_accuracy, found.replaced_all.full
    );
    println!(
        "{}: cosine fits in {} coordinates, mean R² {:.3} (identity coordinates: {:.3})",
        operation.formula(),
        found.basis.name(),
        found.mean_r2,
        found.mean_r2_identity
    );
    println!("wrote {}", folder.path().display());
    Ok(())
}

/// The operation of `--operation`, or of the training checkpoint's config; addition for a model
/// file that records none.
fn checked_operation(args: &Args) -> anyhow::Result<Operation> {
    let recorded = checkpoint::load_state(&args.checkpoint)
        .ok()
        .map(|state| state.config.operation);
    match (args.operation, recorded) {
        (Some(given), Some(recorded)) if given != recorded => {
            anyhow::bail!("--operation {given}, but the checkpoint was trained on {recorded}")
        }
        (given, recorded) => Ok(given.or(recorded).unwrap_or_default()),
    }
}

//! Analyse a saved model without training: fit its neurons and write `neurons.json` and
//! `summary.json`; with `--snapshots`, measure the training dynamics too (`progress.json`); with
//! `--report`, draw the report. The library's `grokking::run::analyze_saved` behind flags.
//!
//! `cargo run --release --example analyze -- --checkpoint model.pth --out runs/notebook` reads a
//! PyTorch state dict (`torch.save(model.state_dict(), path)`), a `.safetensors` file, a Burn
//! record (`model.mpk`), a training checkpoint or a sweep's kept model, chosen by content; p and
//! the width come from the file. `--snapshots runs/x/snapshots.safetensors` reads the weights a
//! run kept along training (`grok --snapshot-every N`) and analyses the last of them. `--llc`
//! estimates the local learning coefficient by SGLD (`llc.json`, `llc_trace.svg`; with
//! `--snapshots`, at every snapshot, into `progress.json`).

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use grokking::{
    analysis::llc::{self, LlcConfig, LlcEstimate},
    device::BackendKind,
    run::{analyze_saved_with, AnalyzeOptions, SavedModel},
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
    /// The seed of the split of a file that records none (a state dict, .safetensors, .mpk)
    /// [default: 1337, the notebook's]; the LLC samples on its training rows.
    #[arg(long)]
    seed: Option<u64>,
    /// The training fraction of that split [default: 0.8, the notebook's].
    #[arg(long)]
    train_fraction: Option<f64>,
    #[command(flatten)]
    llc: LlcArgs,
}

/// The local learning coefficient (Lau et al. 2023) by SGLD chains, as devinterp 2.0.1
/// estimates it (docs/llc.md).
#[derive(clap::Args, Debug)]
struct LlcArgs {
    /// Estimate the LLC: at the model (llc.json, llc_trace.svg), or at every snapshot
    /// (progress.json's llc, llc_snapshots.json, and the report's dynamics figure).
    #[arg(long)]
    llc: bool,
    /// SGLD's step size ε.
    #[arg(long, requires = "llc", default_value_t = llc::DEFAULT_LR, allow_negative_numbers = true)]
    llc_lr: f64,
    /// The inverse temperature nβ [default: m / ln m for batches of m rows, devinterp's].
    #[arg(long, requires = "llc", allow_negative_numbers = true)]
    llc_nbeta: Option<f64>,
    /// The localisation γ, the pull towards the model's weights.
    #[arg(long, requires = "llc", default_value_t = llc::DEFAULT_LOCALIZATION, allow_negative_numbers = true)]
    llc_gamma: f64,
    /// SGLD's weight decay λ (a Gaussian prior at zero).
    #[arg(
        long,
        requires = "llc",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    llc_weight_decay: f64,
    /// Chains per model.
    #[arg(long, requires = "llc", default_value_t = LlcConfig::default().chains)]
    llc_chains: usize,
    /// Draws per chain (steps after the burn-in).
    #[arg(long, requires = "llc", default_value_t = LlcConfig::default().draws)]
    llc_draws: usize,
    /// Steps before the draws, left out of the estimate.
    #[arg(long, requires = "llc", default_value_t = LlcConfig::default().burnin)]
    llc_burnin: usize,
    /// Rows per SGLD minibatch.
    #[arg(long, requires = "llc", default_value_t = LlcConfig::default().batch_size)]
    llc_batch_size: usize,
    /// Seed of the chains' noise and row orders.
    #[arg(long, requires = "llc", default_value_t = LlcConfig::default().seed)]
    llc_seed: u64,
    /// The backend the chains run on: ndarray, flex, wgpu, vulkan or cuda (compiled in with
    /// their cargo features).
    #[arg(long, requires = "llc", default_value_t = BackendKind::default(), value_parser = shared::backend())]
    backend: BackendKind,
}

impl LlcArgs {
    /// The sampler's settings, if `--llc` was given.
    fn config(&self) -> Option<LlcConfig> {
        self.llc.then_some(LlcConfig {
            lr: self.llc_lr,
            nbeta: self.llc_nbeta,
            localization: self.llc_gamma,
            weight_decay: self.llc_weight_decay,
            chains: self.llc_chains,
            draws: self.llc_draws,
            burnin: self.llc_burnin,
            batch_size: self.llc_batch_size,
            seed: self.llc_seed,
        })
    }
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
    let llc = args.llc.config();
    let options = AnalyzeOptions {
        operation: args.operation,
        key_frequencies: args.key_frequencies.clone(),
        report: args.report,
        force: args.force,
        seed: args.seed,
        train_fraction: args.train_fraction,
        llc,
        backend: args.llc.backend,
    };
    // Steps of every chain of every point run together: the bar counts SGLD steps.
    let bar = llc.map(|c| shared::bar(c.steps() as u64, "SGLD steps"));
    let found = analyze_saved_with(&model, &args.out, &options, &mut |done| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
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
    if let (Some(config), Some(estimates)) = (&llc, &found.llc) {
        print_llc(
            config,
            estimates,
            found.llc_seconds,
            found.progress.as_ref().map(|m| &m.epochs[..]),
        );
    }
    println!("wrote {}", found.folder.path().display());
    Ok(())
}

/// The LLC's lines: the estimate (or one per snapshot), then every warning.
fn print_llc(
    config: &LlcConfig,
    estimates: &[LlcEstimate],
    seconds: f64,
    epochs: Option<&[usize]>,
) {
    let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    println!(
        "LLC: {} chains x {} draws (burn-in {}, batch {}, ε {}, nβ {:.3}, γ {}) at {} point(s) in {:.2} s",
        config.chains,
        config.draws,
        config.burnin,
        config.batch_size,
        config.lr,
        config.nbeta(),
        config.localization,
        estimates.len(),
        seconds
    );
    for (i, e) in estimates.iter().enumerate() {
        let at = epochs.map_or(String::new(), |epochs| format!("epoch {}: ", epochs[i]));
        println!(
            "  {at}λ̂ = {} ± {} (L_init {:.5})",
            opt(e.llc_mean),
            opt(e.llc_std),
            e.init_loss
        );
        for warning in &e.warnings {
            println!("  warning: {at}{warning}");
        }
    }
}

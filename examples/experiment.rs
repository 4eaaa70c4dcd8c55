//! A custom experiment written against the library, as a research program would: its own
//! operation, a learning-rate schedule, and a metric of its own in metrics.csv.
//!
//! ```sh
//! cargo run --release --example experiment -- --out runs/experiment
//! ```
//!
//! The operation is `(a + 2b) mod p`, given as a plain function ([`CustomOperation`]). The
//! learning rate warms up linearly over the first tenth of the epochs, then follows a cosine
//! down to a tenth of its peak; the weight decay stays. After every epoch the observer reads the
//! weights on the host and records, beside the built-in metrics, the learning rate in force and
//! the share of neurons whose input weights sit on one Fourier frequency (`single_freq`): the
//! circuit forming. The run is the library's (`grokking::run::Run`), driven epoch by epoch: the
//! folder gets `config.json` (naming the operation), `metrics.csv` (with the two extra
//! columns), the model, `neurons.json` and `summary.json`, as `grok` writes them.

use std::{f64::consts::PI, path::PathBuf, process::ExitCode};

use clap::Parser;
use grokking::{
    analysis::progress::{frequency_power, on_one_frequency},
    device::BackendKind,
    run::{Run, RunOptions},
    CustomOperation, MlpConfig, MlpWeights, Operation, TrainingConfig,
};

mod shared;

/// Train on (a + 2b) mod p with a warm-up and cosine schedule, recording a custom metric.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The modulus p.
    #[arg(long, default_value_t = 97)]
    p: usize,
    /// Passes over the training rows.
    #[arg(long, default_value_t = 400)]
    epochs: usize,
    /// The peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Folder for the run's files.
    #[arg(long, default_value = "runs/experiment")]
    out: PathBuf,
    /// Replace a run already in the folder.
    #[arg(long)]
    force: bool,
}

/// The operation: `(a + 2b) mod p`, defined for every pair.
fn a_plus_2b(a: usize, b: usize, p: usize) -> Option<usize> {
    Some((a + 2 * b) % p)
}

/// Linear warm-up over the first tenth of the epochs, then a cosine from `peak` to `peak / 10`.
fn schedule(epoch: usize, epochs: usize, peak: f64) -> f64 {
    let warm = (epochs / 10).max(1);
    if epoch < warm {
        return peak * (epoch + 1) as f64 / warm as f64;
    }
    let t = (epoch - warm) as f64 / (epochs - warm).max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (PI * t).cos()))
}

/// The share of neurons whose input-a and input-b weights each sit on one frequency. Under
/// `a + 2b` the two frequencies differ (b's is twice a's, mod p), so the library's
/// `single_frequency_share`, which asks for one frequency shared by both operands, stays near 0:
/// this experiment needs its own metric.
fn single_frequency_share(weights: &MlpWeights) -> f64 {
    let single = (0..weights.d_hidden())
        .filter(|&n| {
            on_one_frequency(&frequency_power(&weights.input_a(n)))
                && on_one_frequency(&frequency_power(&weights.input_b(n)))
        })
        .count();
    single as f64 / weights.d_hidden() as f64
}

fn run(args: &Args) -> anyhow::Result<()> {
    let operation = Operation::Custom(CustomOperation {
        name: "a_plus_2b",
        label: a_plus_2b,
    });
    let config = TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(args.p).with_d_hidden(100))
        .with_operation(operation)
        .with_train_fraction(0.7)
        .with_epochs(args.epochs)
        .with_lr(schedule(0, args.epochs, args.lr));
    let options = RunOptions::default()
        .with_report(false)
        .with_force(args.force);
    let mut run = Run::start_on(BackendKind::Flex, &config, &args.out, &options)?;
    while let Some(m) = run.epoch()? {
        let (lr_now, decay) = (run.config().lr, run.config().weight_decay);
        let share = single_frequency_share(&run.weights());
        run.record("lr", lr_now)?;
        run.record("single_freq", share)?;
        run.set_lr_and_weight_decay(schedule(m.epoch + 1, args.epochs, args.lr), decay)?;
        if m.epoch % 50 == 49 {
            println!(
                "epoch {:4}: lr {lr_now:.2e} train_acc {:.3} val_acc {:.3} single-frequency neurons {:.2}",
                m.epoch + 1,
                m.train_acc,
                m.val_acc,
                share
            );
        }
    }
    let finished = run.finish()?;
    println!(
        "{}: validation accuracy {:.4}, grokked at epoch {}; all neurons replaced by cosines: {:.4}",
        operation.formula(),
        finished.history.last().map_or(0.0, |m| m.val_acc),
        finished
            .history
            .grok_epoch()
            .map_or("never".into(), |e| e.to_string()),
        finished.analysis.replaced_all.full
    );
    println!("wrote {}", finished.folder.path().display());
    Ok(())
}

fn main() -> ExitCode {
    shared::main_with(run)
}

//! A method the library does not ship, written in a few lines on the open training loop
//! (`grokking::train::open::OpenTrainer`): cross-entropy with a penalty on the logits' norm
//! (which keeps the softmax from collapsing without weight decay), gradients clipped to a norm
//! in the hook, and Burn's own AdamW. Same data, split, initial weights, batches and metrics as
//! `grok`; the run folder gets config.json, metrics.csv and the model.
//!
//! ```sh
//! cargo run --release --example open_method -- --epochs 200 --out runs/open
//! ```

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;

use burn::{
    backend::{Autodiff, Flex},
    optim::{AdamWConfig, GradientsParams},
    tensor::{Int, Tensor},
};
use grokking::{
    run::RunFolder,
    train::open::{cross_entropy, OpenTrainer},
    Control, EpochMetrics, Mlp, TrainingConfig,
};

mod shared;

type B = Autodiff<Flex>;
type Inner = Flex;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Passes over the training rows.
    #[arg(long, default_value_t = 200)]
    epochs: usize,
    /// Weight of the logit penalty `mean(logits²)`.
    #[arg(long, default_value_t = 1e-3)]
    logit_penalty: f32,
    /// The norm each weight's gradient is clipped to.
    #[arg(long, default_value_t = 1.0)]
    clip: f32,
    /// Seed of the data split and the initial weights (below 2^32).
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Folder for the run's files.
    #[arg(long, default_value = "runs/open")]
    out: PathBuf,
    /// Replace a run already in the folder.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    shared::main_with(run)
}

fn run(args: &Args) -> anyhow::Result<()> {
    let config = TrainingConfig::new()
        .with_epochs(args.epochs)
        .with_seed(args.seed)
        .with_weight_decay(0.0);
    let folder = RunFolder::create(&args.out, args.force)?;
    let device = Default::default();
    let optimizer = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init();
    // The method: two closures.
    let penalty = args.logit_penalty;
    let loss = move |logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>| {
        let [n, _] = logits.dims();
        let norm = logits.clone().powi_scalar(2).mean_dim(1).reshape([n]);
        cross_entropy(logits, labels) + norm * penalty
    };
    let clip = args.clip;
    let hook = move |model: &Mlp<B>, mut grads: GradientsParams| {
        for id in [model.fc1.weight.id, model.fc2.weight.id] {
            if let Some(g) = grads.remove::<Inner, 2>(id) {
                let norm: f32 = g.clone().powi_scalar(2).sum().sqrt().into_scalar();
                grads.register(id, if norm > clip { g * (clip / norm) } else { g });
            }
        }
        grads
    };
    folder.write_config(&config)?;
    let bar = shared::bar(args.epochs as u64, "epochs");
    let trained = OpenTrainer::<B, _>::new(&config, optimizer, &device)?
        .with_loss(loss)
        .with_gradient_hook(hook)
        .run(|m: &EpochMetrics| {
            bar.inc(1);
            bar.set_message(format!("val_acc {:.3}", m.val_acc));
            Control::Continue
        });
    bar.finish_and_clear();
    folder.write_metrics(&trained.history)?;
    folder.write_model(&trained.model)?;
    let last = trained.history.last().expect("at least one epoch");
    println!(
        "{} epochs: train_acc {:.4} val_acc {:.4}, softmax collapse {:.3}, weight norm {:.1}; grok epoch {:?}",
        trained.history.epochs.len(),
        last.train_acc,
        last.val_acc,
        last.softmax_collapse,
        last.weight_norm,
        trained.history.grok_epoch()
    );
    println!("wrote {}", folder.path().display());
    Ok(())
}

//! What the examples share: one-line errors, the `--backend` and `--engine` choices as clap
//! values, the method's flags, and the progress bar.
#![allow(dead_code)]

use std::process::ExitCode;

use clap::{
    builder::{PossibleValue, PossibleValuesParser, TypedValueParser},
    Parser,
};
use grokking::{
    device::BackendKind,
    step::{Activation, Grokfast, Loss, Optimizer, GROKFAST_EMA_LAMBDA, GROKFAST_MA_LAMBDA},
    Engine, Method, TrainingConfig,
};
use indicatif::{ProgressBar, ProgressStyle};

/// Parses the arguments and runs `run`: `--help`/`--version` print and succeed, a bad argument
/// is one line on stderr (clap's message up to its first blank line, joined) and exit code 2, an
/// error from `run` is one `error: ...` line and exit code 1.
pub fn main_with<A: Parser>(run: impl FnOnce(&A) -> anyhow::Result<()>) -> ExitCode {
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let lines: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
            let line = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
            eprintln!(
                "{}",
                if line.is_empty() {
                    "error: bad arguments"
                } else {
                    &line
                }
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--backend`: one of [`BackendKind::ALL`] by name, each with its description in `--help`.
pub fn backend() -> impl TypedValueParser<Value = BackendKind> {
    let names = BackendKind::ALL.map(|k| PossibleValue::new(k.name()).help(k.description()));
    PossibleValuesParser::new(names).map(|name| name.parse().expect("a listed name"))
}

/// `--engine`: one of [`Engine::ALL`] by name, each with its description in `--help`.
pub fn engine() -> impl TypedValueParser<Value = Engine> {
    let names = Engine::ALL.map(|e| PossibleValue::new(e.name()).help(e.description()));
    PossibleValuesParser::new(names).map(|name| name.parse().expect("a listed name"))
}

/// A progress bar over `len` `unit`s, with elapsed time, the estimate and a message.
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let template =
        format!("{{bar:30}} {{pos}}/{{len}} {unit} {{elapsed_precise}} (eta {{eta}}) {{msg}}");
    ProgressBar::new(len)
        .with_style(ProgressStyle::with_template(&template).expect("valid template"))
}

/// The step's method: the flags of `grok` that choose its loss, activation, gradient filters and
/// optimiser (`grokking::Method`).
#[derive(clap::Args, Debug)]
pub struct MethodArgs {
    /// The loss: cross-entropy (the notebook's), stablemax (Prieto et al. 2025), mse (against the
    /// one-hot label, PyTorch's mse_loss).
    #[arg(long, default_value_t = Loss::CrossEntropy)]
    loss: Loss,
    /// The hidden layer's activation: relu (the notebook's), square (x², Gromov 2023).
    #[arg(long, default_value_t = Activation::Relu)]
    activation: Activation,
    /// The optimiser: adamw (the notebook's), sgd (torch.optim.SGD; its weight decay is the
    /// coupled g + wd·w).
    #[arg(long, default_value = "adamw", value_parser = ["adamw", "sgd"])]
    optimizer: String,
    /// AdamW's β₁ [default: 0.9].
    #[arg(long, allow_negative_numbers = true)]
    beta1: Option<f64>,
    /// AdamW's β₂ [default: 0.999] (Prieto et al. use 0.99).
    #[arg(long, allow_negative_numbers = true)]
    beta2: Option<f64>,
    /// SGD's momentum [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// SGD with Nesterov momentum (needs --momentum > 0).
    #[arg(long)]
    nesterov: bool,
    /// Grokfast's EMA filter with decay A in [0, 1) (the authors use 0.98): g ← g + λ·EMA(g).
    #[arg(
        long,
        allow_negative_numbers = true,
        conflicts_with = "grokfast_window"
    )]
    grokfast_alpha: Option<f64>,
    /// Grokfast's MA filter over the last W gradients (the authors use 100): g ← g + λ·mean.
    #[arg(long)]
    grokfast_window: Option<usize>,
    /// Grokfast's λ [default: 2 with the EMA, 5 with the MA, the authors'].
    #[arg(long, allow_negative_numbers = true)]
    grokfast_lambda: Option<f64>,
    /// ⊥Grad (Prieto et al. 2025): each weight matrix's gradient made orthogonal to the weights
    /// and rescaled to its norm, after the filter.
    #[arg(long)]
    orthograd: bool,
    /// Label noise (Doshi et al. 2024): a seeded fraction XI in [0, 1) of the training rows gets
    /// a wrong label, drawn uniformly from the other p − 1 classes; the corrupted rows'
    /// accuracies are recorded per epoch (metrics.csv's corrupted_acc, corrupted_true_acc).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    label_noise: f64,
}

impl MethodArgs {
    /// `config` with the method and label noise these flags choose.
    ///
    /// # Errors
    /// As [`MethodArgs::method`].
    pub fn apply(&self, config: TrainingConfig) -> anyhow::Result<TrainingConfig> {
        Ok(config
            .with_method(self.method()?)
            .with_label_noise(self.label_noise))
    }

    /// The method these flags choose.
    ///
    /// # Errors
    /// A flag of another optimiser or of no filter (`--beta1` with sgd, `--momentum` with adamw,
    /// `--grokfast-lambda` without a filter). The values' own ranges are checked with the
    /// config.
    pub fn method(&self) -> anyhow::Result<Method> {
        let optimizer = match self.optimizer.as_str() {
            "sgd" => {
                if self.beta1.is_some() || self.beta2.is_some() {
                    anyhow::bail!("--beta1 and --beta2 are AdamW's; SGD takes --momentum");
                }
                Optimizer::Sgd {
                    momentum: self.momentum.unwrap_or(0.0),
                    nesterov: self.nesterov,
                }
            }
            _ => {
                if self.momentum.is_some() || self.nesterov {
                    anyhow::bail!("--momentum and --nesterov are SGD's (--optimizer sgd)");
                }
                Optimizer::AdamW {
                    beta1: self.beta1.unwrap_or(0.9),
                    beta2: self.beta2.unwrap_or(0.999),
                }
            }
        };
        let grokfast = match (self.grokfast_alpha, self.grokfast_window) {
            (Some(alpha), _) => Some(Grokfast::Ema {
                alpha,
                lambda: self.grokfast_lambda.unwrap_or(GROKFAST_EMA_LAMBDA),
            }),
            (None, Some(window)) => Some(Grokfast::Ma {
                window,
                lambda: self.grokfast_lambda.unwrap_or(GROKFAST_MA_LAMBDA),
            }),
            (None, None) if self.grokfast_lambda.is_some() => {
                anyhow::bail!(
                    "--grokfast-lambda needs a filter: --grokfast-alpha or --grokfast-window"
                )
            }
            (None, None) => None,
        };
        Ok(Method {
            loss: self.loss,
            activation: self.activation,
            grokfast,
            orthograd: self.orthograd,
            optimizer,
        })
    }
}

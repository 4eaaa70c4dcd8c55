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
    step::{
        Activation, Grokfast, Loss, Optimizer, GROKFAST_EMA_LAMBDA, GROKFAST_MA_LAMBDA,
        MUON_MOMENTUM,
    },
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

/// The step's method: the flags of `grok` and `sweep` that choose its loss, activation, gradient
/// filters and optimiser (`grokking::Method`), and the label noise. Each takes a comma-separated
/// list: in `sweep` a list is an axis (every combination is a method of the grid), `grok` takes
/// one value each.
#[derive(clap::Args, Debug)]
pub struct MethodArgs {
    /// The loss: cross-entropy (the notebook's), stablemax (Prieto et al. 2025), mse (against the
    /// one-hot label, PyTorch's mse_loss).
    #[arg(long, value_delimiter = ',', default_value = "cross-entropy")]
    loss: Vec<Loss>,
    /// The hidden layer's activation: relu (the notebook's), square (x², Gromov 2023).
    #[arg(long, value_delimiter = ',', default_value = "relu")]
    activation: Vec<Activation>,
    /// The optimiser: adamw (the notebook's), sgd (torch.optim.SGD; its weight decay is the
    /// coupled g + wd·w), muon (Burn's Muon: Nesterov momentum, Newton–Schulz orthogonalised
    /// updates, decoupled weight decay; it wants a larger --lr, such as 0.02).
    #[arg(long, value_delimiter = ',', default_value = "adamw", value_parser = ["adamw", "sgd", "muon"])]
    optimizer: Vec<String>,
    /// AdamW's β₁ [default: 0.9].
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    beta1: Vec<f64>,
    /// AdamW's β₂ [default: 0.999] (Prieto et al. use 0.99).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    beta2: Vec<f64>,
    /// SGD's momentum [default: 0], or Muon's [default: 0.95].
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    momentum: Vec<f64>,
    /// SGD with Nesterov momentum (needs --momentum > 0); `--nesterov false,true` sweeps both.
    #[arg(long, value_delimiter = ',', num_args = 0..=1, default_missing_value = "true")]
    nesterov: Vec<bool>,
    /// Grokfast's EMA filter with decay A in [0, 1) (the authors use 0.98): g ← g + λ·EMA(g).
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        conflicts_with = "grokfast_window"
    )]
    grokfast_alpha: Vec<f64>,
    /// Grokfast's MA filter over the last W gradients (the authors use 100): g ← g + λ·mean.
    #[arg(long, value_delimiter = ',')]
    grokfast_window: Vec<usize>,
    /// Grokfast's λ [default: 2 with the EMA, 5 with the MA, the authors'].
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    grokfast_lambda: Vec<f64>,
    /// ⊥Grad (Prieto et al. 2025): each weight matrix's gradient made orthogonal to the weights
    /// and rescaled to its norm, after the filter; `--orthograd false,true` sweeps both.
    #[arg(long, value_delimiter = ',', num_args = 0..=1, default_missing_value = "true")]
    orthograd: Vec<bool>,
    /// Label noise (Doshi et al. 2024): a seeded fraction XI in [0, 1) of the training rows gets
    /// a wrong label, drawn uniformly from the other p − 1 classes; the corrupted rows'
    /// accuracies are recorded per epoch (metrics.csv's corrupted_acc, corrupted_true_acc).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0",
        allow_negative_numbers = true
    )]
    label_noise: Vec<f64>,
}

/// `values`, or `default` alone when none was given.
fn or<T: Clone>(values: &[T], default: T) -> Vec<T> {
    if values.is_empty() {
        vec![default]
    } else {
        values.to_vec()
    }
}

impl MethodArgs {
    /// `config` with the one method and label noise these flags choose (`grok`).
    ///
    /// # Errors
    /// As [`MethodArgs::methods`], and a flag given more than one value.
    pub fn apply(&self, config: TrainingConfig) -> anyhow::Result<TrainingConfig> {
        let methods = self.methods()?;
        if methods.len() > 1 || self.label_noise.len() > 1 {
            anyhow::bail!(
                "one value per method flag: this trains one model (lists are sweep's axes)"
            );
        }
        Ok(config
            .with_method(methods[0])
            .with_label_noise(self.label_noise[0]))
    }

    /// The label-noise fractions, in the order given.
    pub fn label_noises(&self) -> Vec<f64> {
        self.label_noise.clone()
    }

    /// Every method these flags choose: each combination of the listed values, in the order
    /// loss, activation, filter (α or window, then λ), ⊥Grad, optimiser and its hyperparameters
    /// (the last fastest).
    ///
    /// # Errors
    /// A flag no listed optimiser takes (`--beta1` with only sgd, `--momentum` with only adamw,
    /// `--nesterov` without sgd), `--grokfast-lambda` without a filter. The values' own ranges
    /// are checked with the config.
    pub fn methods(&self) -> anyhow::Result<Vec<Method>> {
        let has = |name: &str| self.optimizer.iter().any(|o| o == name);
        let betas = !self.beta1.is_empty() || !self.beta2.is_empty();
        if betas && !has("adamw") {
            anyhow::bail!("--beta1 and --beta2 are AdamW's; SGD and Muon take --momentum");
        }
        if !has("sgd") && !has("muon") && !self.momentum.is_empty() {
            anyhow::bail!("--momentum is SGD's and Muon's (--optimizer sgd or muon)");
        }
        if !has("sgd") && !self.nesterov.is_empty() {
            anyhow::bail!(
                "--nesterov is SGD's (--optimizer sgd); Muon's momentum is always Nesterov's"
            );
        }
        let mut optimizers = Vec::new();
        for name in &self.optimizer {
            match name.as_str() {
                "sgd" => {
                    for &momentum in &or(&self.momentum, 0.0) {
                        for &nesterov in &or(&self.nesterov, false) {
                            optimizers.push(Optimizer::Sgd { momentum, nesterov });
                        }
                    }
                }
                "muon" => {
                    for &momentum in &or(&self.momentum, MUON_MOMENTUM) {
                        optimizers.push(Optimizer::Muon { momentum });
                    }
                }
                _ => {
                    for &beta1 in &or(&self.beta1, 0.9) {
                        for &beta2 in &or(&self.beta2, 0.999) {
                            optimizers.push(Optimizer::AdamW { beta1, beta2 });
                        }
                    }
                }
            }
        }
        let mut filters = Vec::new();
        for &alpha in &self.grokfast_alpha {
            for &lambda in &or(&self.grokfast_lambda, GROKFAST_EMA_LAMBDA) {
                filters.push(Some(Grokfast::Ema { alpha, lambda }));
            }
        }
        for &window in &self.grokfast_window {
            for &lambda in &or(&self.grokfast_lambda, GROKFAST_MA_LAMBDA) {
                filters.push(Some(Grokfast::Ma { window, lambda }));
            }
        }
        if filters.is_empty() {
            if !self.grokfast_lambda.is_empty() {
                anyhow::bail!(
                    "--grokfast-lambda needs a filter: --grokfast-alpha or --grokfast-window"
                );
            }
            filters.push(None);
        }
        let mut methods = Vec::new();
        for &loss in &self.loss {
            for &activation in &self.activation {
                for &grokfast in &filters {
                    for &orthograd in &or(&self.orthograd, false) {
                        for &optimizer in &optimizers {
                            methods.push(Method {
                                loss,
                                activation,
                                grokfast,
                                orthograd,
                                optimizer,
                            });
                        }
                    }
                }
            }
        }
        Ok(methods)
    }
}

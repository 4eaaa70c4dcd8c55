//! Training: the notebook's AdamW loop over fixed mini-batches, with per-epoch metrics.
//!
//! Each epoch walks the training rows in their shuffled order in batches of `batch_size` (the
//! last batch may be shorter), as the notebook does, takes one AdamW step per batch, then
//! evaluates the validation rows. Metrics are accumulated on the device and read once per epoch.
//!
//! Differences from the notebook, each deliberate:
//! - `train_loss` is the mean over training rows of the loss before each step (the notebook
//!   divides the sum of batch means by `n_train / batch_size`, which weighs a short last batch
//!   like a full one).
//! - AdamW's epsilon is PyTorch's 1e-8, not Burn's default 1e-5.
//! - Initial weights are drawn on the host from the seed (see [`MlpConfig::init`]), so a run is
//!   reproducible on every backend; they do not equal PyTorch's draws for the same seed.
//!
//! # Example
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use grokking::{Control, MlpConfig, TrainingConfig};
//! let config = TrainingConfig::new()
//!     .with_model(MlpConfig::new().with_p(7).with_d_hidden(8))
//!     .with_epochs(3);
//! let trained = grokking::train::<Autodiff<NdArray>>(&config, &Default::default(), |_: &_| {
//!     Control::Continue
//! })?;
//! assert_eq!(trained.history.epochs.len(), 3);
//! # Ok::<(), grokking::Error>(())
//! ```

pub mod checkpoint;
mod ensemble;
mod fused;

use std::{
    any::TypeId,
    cell::OnceCell,
    ops::Range,
    time::{Duration, Instant},
};

use burn::{
    config::Config,
    module::AutodiffModule,
    optim::{adaptor::OptimizerAdaptor, AdamW, GradientsParams, Optimizer},
    tensor::{
        activation::log_softmax, backend::AutodiffBackend, backend::Backend, ElementConversion,
        Int, Tensor,
    },
};
use serde::{Deserialize, Serialize};

pub use checkpoint::TrainerState;
pub use ensemble::{shape_key, Ensemble};
pub use fused::{AdamState, FusedEngine};

use crate::{
    data::{train_rows_for, ModularDataset, SplitTensors},
    error::{self, Error},
    model::{Mlp, MlpConfig},
};

/// Validation accuracy at which a run counts as generalised (the notebook's 99%).
pub const GROK_THRESHOLD: f64 = 0.99;

/// Everything that determines a training run. Defaults are the origin notebook's.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    /// The network (default p = 113, d_hidden = 100).
    #[config(default = "MlpConfig::new()")]
    pub model: MlpConfig,
    /// Fraction of the p² pairs used for training.
    #[config(default = 0.8)]
    pub train_fraction: f64,
    /// Number of passes over the training rows.
    #[config(default = 2000)]
    pub epochs: usize,
    /// Rows per optimiser step.
    #[config(default = 128)]
    pub batch_size: usize,
    /// AdamW learning rate.
    #[config(default = 3e-3)]
    pub lr: f64,
    /// AdamW decoupled weight decay.
    #[config(default = 0.5)]
    pub weight_decay: f64,
    /// AdamW epsilon (PyTorch's default; Burn's is 1e-5).
    #[config(default = 1e-8)]
    pub adam_epsilon: f64,
    /// Seed of the data split (NumPy-compatible) and of the initial weights.
    #[config(default = 1337)]
    pub seed: u64,
    /// How each step is computed (default [`Engine::Auto`]: fused on CPU backends).
    #[config(default = "Engine::Auto")]
    pub engine: Engine,
}

/// How [`Trainer`] computes a training step. Both engines compute the same function up to float
/// rounding, from the same initial weights and in the same batch order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Engine {
    /// [`Engine::Fused`] when the backend is a CPU one (ndarray, flex), otherwise
    /// [`Engine::Generic`].
    #[default]
    Auto,
    /// Burn's generic tensor operations and autodiff on the chosen backend, AdamW from
    /// `burn::optim`.
    Generic,
    /// The hand-fused host step of [`FusedEngine`]: gather, ReLU, GEMMs, softmax cross-entropy,
    /// backward and AdamW in one pass of plain `f32` code, on the CPU whatever the backend.
    Fused,
}

impl Engine {
    /// The engine this choice means for backend `B` (never [`Engine::Auto`]).
    pub fn resolve<B: Backend>(self) -> Engine {
        match self {
            Engine::Auto if is_cpu_backend::<B>() => Engine::Fused,
            Engine::Auto => Engine::Generic,
            other => other,
        }
    }
}

/// Whether `B` (or the backend inside its autodiff wrapper) is one of the compiled CPU backends.
fn is_cpu_backend<B: Backend>() -> bool {
    #[allow(unused_mut)]
    let mut cpu: Vec<TypeId> = Vec::new();
    #[cfg(feature = "ndarray")]
    {
        cpu.push(TypeId::of::<burn::backend::NdArray>());
        cpu.push(TypeId::of::<burn::backend::Autodiff<burn::backend::NdArray>>());
    }
    #[cfg(feature = "flex")]
    {
        cpu.push(TypeId::of::<burn::backend::Flex>());
        cpu.push(TypeId::of::<burn::backend::Autodiff<burn::backend::Flex>>());
    }
    cpu.contains(&TypeId::of::<B>())
}

impl TrainingConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The [`Error`] variant naming the first invalid field.
    pub fn validate(&self) -> error::Result<()> {
        self.model.validate()?;
        train_rows_for(self.model.p, self.train_fraction)?;
        let invalid = |field, value: String, reason| {
            Err(Error::InvalidConfig {
                field,
                value,
                reason,
            })
        };
        if self.epochs == 0 {
            return invalid("epochs", "0".into(), "train for at least one epoch");
        }
        if self.batch_size == 0 {
            return invalid("batch-size", "0".into(), "a batch needs at least one row");
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return invalid(
                "lr",
                self.lr.to_string(),
                "it must be finite and non-negative",
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid(
                "weight-decay",
                self.weight_decay.to_string(),
                "it must be finite and non-negative",
            );
        }
        if !(self.adam_epsilon.is_finite() && self.adam_epsilon > 0.0) {
            return invalid(
                "adam-epsilon",
                self.adam_epsilon.to_string(),
                "it must be finite and positive",
            );
        }
        if u32::try_from(self.seed).is_err() {
            return invalid("seed", self.seed.to_string(), "it must be below 2^32");
        }
        Ok(())
    }
}

/// The metrics of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// Mean cross-entropy over the training rows, each taken before its batch's step.
    pub train_loss: f64,
    /// Mean cross-entropy over the validation rows after the epoch.
    pub val_loss: f64,
    /// Fraction of training rows predicted right, each before its batch's step.
    pub train_acc: f64,
    /// Fraction of validation rows predicted right after the epoch.
    pub val_acc: f64,
    /// Seconds since training started, at the end of this epoch.
    pub seconds: f64,
}

/// All epochs of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One entry per completed epoch, in order.
    pub epochs: Vec<EpochMetrics>,
}

impl History {
    /// The first epoch whose validation accuracy reaches `threshold`.
    pub fn first_epoch_reaching(&self, threshold: f64) -> Option<usize> {
        self.epochs
            .iter()
            .find(|m| m.val_acc >= threshold)
            .map(|m| m.epoch)
    }

    /// The first epoch with validation accuracy at least [`GROK_THRESHOLD`].
    pub fn grok_epoch(&self) -> Option<usize> {
        self.first_epoch_reaching(GROK_THRESHOLD)
    }

    /// The last epoch's metrics.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.epochs.last()
    }
}

/// What an observer wants after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on training.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// Called after every epoch, to log, draw progress or stop early.
pub trait EpochObserver {
    /// Receives the epoch's metrics; returning [`Control::Stop`] ends training.
    fn on_epoch(&mut self, metrics: &EpochMetrics) -> Control;
}

impl<F: FnMut(&EpochMetrics) -> Control> EpochObserver for F {
    fn on_epoch(&mut self, metrics: &EpochMetrics) -> Control {
        self(metrics)
    }
}

/// The result of a training run.
#[derive(Debug)]
pub struct Trained<B: Backend> {
    /// The trained network, without autodiff.
    pub model: Mlp<B>,
    /// Metrics of every epoch run.
    pub history: History,
    /// The data set and split it was trained on.
    pub data: ModularDataset,
}

/// A training run in progress: the model, its optimiser, the data on the device and the history.
///
/// The step runs on the engine [`TrainingConfig::engine`] resolves to (see [`Engine`]); the API is
/// the same for both.
pub struct Trainer<B: AutodiffBackend> {
    config: TrainingConfig,
    data: ModularDataset,
    state: State<B>,
    history: History,
    elapsed: Duration,
}

enum State<B: AutodiffBackend> {
    Generic {
        model: Mlp<B>,
        optim: OptimizerAdaptor<AdamW, Mlp<B>, B>,
        train: SplitTensors<B>,
        val: SplitTensors<B::InnerBackend>,
    },
    Fused {
        engine: Box<FusedEngine>,
        device: B::Device,
        /// The engine's weights as a Burn model, built on demand and dropped after each epoch.
        model: OnceCell<Mlp<B>>,
    },
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Builds the data set, the initial model and the optimiser; uploads both splits to `device`.
    ///
    /// # Errors
    /// Any invalid field of `config` (see [`TrainingConfig::validate`]).
    pub fn new(config: &TrainingConfig, device: &B::Device) -> error::Result<Self> {
        config.validate()?;
        Self::from_state(
            TrainerState {
                config: config.clone(),
                weights: config.model.init_weights(config.seed),
                adam: None,
                history: History::default(),
                elapsed_seconds: 0.0,
            },
            device,
        )
    }

    /// The engine the steps run on ([`Engine::Generic`] or [`Engine::Fused`]).
    pub fn engine(&self) -> Engine {
        match self.state {
            State::Generic { .. } => Engine::Generic,
            State::Fused { .. } => Engine::Fused,
        }
    }

    /// The configuration of this run.
    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    /// The data set and split.
    pub fn data(&self) -> &ModularDataset {
        &self.data
    }

    /// The model as it is now.
    pub fn model(&self) -> &Mlp<B> {
        match &self.state {
            State::Generic { model, .. } => model,
            State::Fused {
                engine,
                device,
                model,
            } => model.get_or_init(|| Mlp::from_weights(&engine.weights(), device)),
        }
    }

    /// Metrics of the epochs run so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Takes one optimiser step on training batch `index` (rows `index·batch_size..` of the
    /// training split, as an epoch would) without touching the history; for benchmarks and
    /// custom schedules. On a GPU the step is queued, not awaited: synchronise the device before
    /// reading a clock.
    ///
    /// # Panics
    /// If `index` is not below the number of batches per epoch.
    pub fn step(&mut self, index: usize) {
        let n_train = self.data.train_rows().len();
        let begin = index * self.config.batch_size;
        assert!(begin < n_train, "batch {index} is past the training split");
        let rows = begin..(begin + self.config.batch_size).min(n_train);
        match &mut self.state {
            State::Generic {
                model,
                optim,
                train,
                ..
            } => {
                generic_step(&self.config, model, optim, train, rows);
            }
            State::Fused { engine, model, .. } => {
                model.take();
                engine.train_rows(rows);
            }
        }
    }

    /// Runs one epoch: a step per batch, then validation. Returns its metrics.
    pub fn run_epoch(&mut self) -> EpochMetrics {
        let start = Instant::now();
        let n_train = self.data.train_rows().len();
        let (train_loss, train_acc, val_loss, val_acc) = match &mut self.state {
            State::Generic {
                model,
                optim,
                train,
                val,
            } => generic_epoch(&self.config, model, optim, train, val),
            State::Fused { engine, model, .. } => {
                model.take();
                let t = engine.train_epoch();
                let v = engine.evaluate_val();
                let (nt, nv) = (engine.n_train() as f64, engine.n_val() as f64);
                (
                    t.loss_sum / nt,
                    t.correct as f64 / nt,
                    v.loss_sum / nv,
                    v.correct as f64 / nv,
                )
            }
        };
        debug_assert!(n_train > 0);
        self.elapsed += start.elapsed();
        let metrics = EpochMetrics {
            epoch: self.history.epochs.len(),
            train_loss,
            val_loss,
            train_acc,
            val_acc,
            seconds: self.elapsed.as_secs_f64(),
        };
        self.history.epochs.push(metrics);
        metrics
    }

    /// Runs the remaining epochs of the configuration, calling `observer` after each.
    pub fn run(mut self, mut observer: impl EpochObserver) -> Trained<B::InnerBackend> {
        while self.history.epochs.len() < self.config.epochs {
            let metrics = self.run_epoch();
            if observer.on_epoch(&metrics) == Control::Stop {
                break;
            }
        }
        self.finish()
    }

    /// Ends training where it stands and hands back the model (without autodiff) and history.
    pub fn finish(self) -> Trained<B::InnerBackend> {
        let model = match self.state {
            State::Generic { model, .. } => model.valid(),
            State::Fused { engine, device, .. } => Mlp::from_weights(&engine.weights(), &device),
        };
        Trained {
            model,
            history: self.history,
            data: self.data,
        }
    }
}

/// One epoch on the generic engine: `(train_loss, train_acc, val_loss, val_acc)`.
fn generic_epoch<B: AutodiffBackend>(
    config: &TrainingConfig,
    model: &mut Mlp<B>,
    optim: &mut OptimizerAdaptor<AdamW, Mlp<B>, B>,
    train: &SplitTensors<B>,
    val: &SplitTensors<B::InnerBackend>,
) -> (f64, f64, f64, f64) {
    {
        let n_train = train.labels.dims()[0];
        let device = train.pairs.device();
        let mut loss_sum = Tensor::<B::InnerBackend, 1>::zeros([1], &device);
        let mut correct = Tensor::<B::InnerBackend, 1, Int>::zeros([1], &device);
        for begin in (0..n_train).step_by(config.batch_size) {
            let end = (begin + config.batch_size).min(n_train);
            let (loss, right) = generic_step(config, model, optim, train, begin..end);
            loss_sum = loss_sum + loss.mul_scalar((end - begin) as f64);
            correct = correct + right;
        }
        let (val_loss, val_acc) = evaluate(&model.valid(), val);
        (
            scalar(loss_sum) / n_train as f64,
            scalar(correct.float()) / n_train as f64,
            val_loss,
            val_acc,
        )
    }
}

/// One AdamW step of the generic engine on training rows `rows`: the batch's mean loss and its
/// number of right predictions, both taken before the step and left on the device.
fn generic_step<B: AutodiffBackend>(
    config: &TrainingConfig,
    model: &mut Mlp<B>,
    optim: &mut OptimizerAdaptor<AdamW, Mlp<B>, B>,
    train: &SplitTensors<B>,
    rows: Range<usize>,
) -> (Tensor<B::InnerBackend, 1>, Tensor<B::InnerBackend, 1, Int>) {
    let pairs = train.pairs.clone().slice([rows.clone(), 0..2]); // [bs, 2]
    let labels = train.labels.clone().slice(rows); // [bs]
    let logits = model.forward_pairs(pairs); // [bs, p]
    let loss = cross_entropy(logits.clone(), labels.clone());
    let correct = count_correct(logits.inner(), labels.inner());
    let mean_loss = loss.clone().inner();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    *model = optim.step(config.lr, model.clone(), grads);
    (mean_loss, correct)
}

/// Trains a network as `config` says, calling `observer` after each epoch.
///
/// # Errors
/// Any invalid field of `config` (see [`TrainingConfig::validate`]).
pub fn train<B: AutodiffBackend>(
    config: &TrainingConfig,
    device: &B::Device,
    observer: impl EpochObserver,
) -> error::Result<Trained<B::InnerBackend>> {
    Ok(Trainer::<B>::new(config, device)?.run(observer))
}

/// Mean cross-entropy of `logits` against integer `labels`.
///
/// # Shapes
/// `logits: [n, p]`, `labels: [n]` -> `[1]`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let log_probs = log_softmax(logits, 1); // [n, p]
    log_probs
        .gather(1, labels.unsqueeze_dim(1)) // [n, 1]
        .mean()
        .neg()
}

/// Number of rows whose largest logit is at the label (first maximum on ties).
///
/// # Shapes
/// `logits: [n, p]`, `labels: [n]` -> `[1]`.
pub fn count_correct<B: Backend>(
    logits: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
) -> Tensor<B, 1, Int> {
    let [n, _] = logits.dims();
    logits.argmax(1).reshape([n]).equal(labels).int().sum()
}

/// Mean loss and accuracy of `model` on a split.
pub fn evaluate<B: Backend>(model: &Mlp<B>, split: &SplitTensors<B>) -> (f64, f64) {
    let n = split.labels.dims()[0];
    let logits = model.forward_pairs(split.pairs.clone());
    let loss = scalar(cross_entropy(logits.clone(), split.labels.clone()));
    let correct = scalar(count_correct(logits, split.labels.clone()).float());
    (loss, correct / n as f64)
}

fn scalar<B: Backend>(tensor: Tensor<B, 1>) -> f64 {
    tensor.into_scalar().elem()
}

//! Training: the notebook's AdamW loop over fixed mini-batches, with per-epoch metrics.
//!
//! Each epoch walks the training rows in their shuffled order in batches of `batch_size` (the
//! last batch may be shorter), as the notebook does, takes one AdamW step per batch, then
//! evaluates the validation rows. Metrics are accumulated on the device and read once per epoch.
//! The step itself is one operation of [`StepBackend`](crate::step::StepBackend); this module is
//! the one loop around it, for one network ([`Trainer`]) or K of one shape ([`Ensemble`]).
//!
//! Differences from the notebook, each deliberate:
//! - `train_loss` is the mean over training rows of the loss before each step (the notebook
//!   divides the sum of batch means by `n_train / batch_size`, which weighs a short last batch
//!   like a full one).
//! - AdamW's epsilon is PyTorch's 1e-8, not Burn's default 1e-5.
//! - Initial weights are drawn on the host from the seed, as PyTorch draws them for the same
//!   seed (see [`MlpConfig::init_weights`]), so a run starts where the notebook's does, on every
//!   backend.
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
pub mod open;

use std::{cell::OnceCell, ops::Range};

use burn::{config::Config, tensor::backend::Backend};
use serde::{Deserialize, Serialize};

pub use checkpoint::TrainerState;
pub(crate) use ensemble::Start;
pub use ensemble::{shape_key, Ensemble, TrainBackend};

use crate::{
    data::{train_rows_for, ModularDataset},
    error::{self, Error},
    model::{Mlp, MlpConfig},
    operation::Operation,
    step::Method,
};

/// The batches of an epoch over `n_train` training rows, in order: rows
/// `[i·batch_size, min((i + 1)·batch_size, n_train))` of the training split (the last batch may
/// be shorter), as the notebook walks them. The one place the batch count is decided.
///
/// # Panics
/// If `batch_size` is 0.
pub fn batches(n_train: usize, batch_size: usize) -> impl ExactSizeIterator<Item = Range<usize>> {
    assert!(batch_size > 0, "a batch needs at least one row");
    (0..n_train.div_ceil(batch_size))
        .map(move |i| i * batch_size..((i + 1) * batch_size).min(n_train))
}

/// Validation accuracy at which a run counts as generalised (the notebook's 99%).
pub const GROK_THRESHOLD: f64 = 0.99;

/// Everything that determines a training run. Defaults are the origin notebook's.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    /// The network (default p = 113, d_hidden = 100).
    #[config(default = "MlpConfig::new()")]
    pub model: MlpConfig,
    /// The operation the data set is labelled with (default addition, the notebook's).
    #[config(default = "Operation::Add")]
    pub operation: Operation,
    /// Fraction of the data set's pairs used for training.
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
    /// The step's loss, activation, gradient filters and optimiser (default the notebook's:
    /// cross-entropy, ReLU, none, AdamW with β = (0.9, 0.999)). `lr`, `weight_decay` and
    /// `adam_epsilon` are the optimiser's (SGD's weight decay is PyTorch's coupled one).
    #[config(default = "Method::default()")]
    pub method: Method,
    /// Fraction ξ of the training rows given a wrong label (Doshi et al. 2024), in [0, 1); see
    /// [`ModularDataset::label_noise`](crate::ModularDataset::label_noise). With noise, each
    /// epoch records `corrupted_acc` and `corrupted_true_acc` in the history's columns: the
    /// corrupted rows' accuracy on their wrong and on their true labels after the epoch.
    #[config(default = 0.0)]
    pub label_noise: f64,
    /// Seed of the data split (NumPy-compatible) and of the initial weights.
    #[config(default = 1337)]
    pub seed: u64,
    /// How each step is computed (default [`Engine::Auto`]: the backend's own implementation).
    #[config(default = "Engine::Auto")]
    pub engine: Engine,
    /// Threads per model on the CPU backends (default: one per core). It changes the speed,
    /// never the result: a run gives the same bits on any number of threads.
    pub threads: Option<usize>,
}

/// Which implementation of [`StepBackend`](crate::step::StepBackend) computes a training step.
/// Both compute the same function up to float rounding, from the same initial weights and in the
/// same batch order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Engine {
    /// [`Engine::Fused`].
    #[default]
    Auto,
    /// The reference: Burn's generic tensor operations and autodiff on the chosen backend.
    Generic,
    /// The backend's own implementation: host code on ndarray and flex (gather, GEMMs,
    /// softmax cross-entropy, backward and AdamW in one pass of plain `f32` code), CubeCL kernels
    /// on wgpu, vulkan and cuda (nine kernel launches a step for all members).
    Fused,
}

impl Engine {
    /// Every engine, in the order `--help` lists them.
    pub const ALL: [Engine; 3] = [Engine::Auto, Engine::Generic, Engine::Fused];

    /// The name, as `--engine` spells it: `auto`, `generic`, `fused`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Generic => "generic",
            Engine::Fused => "fused",
        }
    }

    /// One line on what it is (for `--help`).
    pub fn description(self) -> &'static str {
        match self {
            Engine::Auto => "the backend's own implementation (fused)",
            Engine::Generic => {
                "the reference: Burn's tensor operations and autodiff on the backend"
            }
            Engine::Fused => {
                "the backend's own implementation of the step: host code on ndarray and flex, \
                 CubeCL kernels on wgpu, vulkan and cuda"
            }
        }
    }

    /// The engine this choice means (never [`Engine::Auto`]).
    pub fn resolve(self) -> Engine {
        match self {
            Engine::Auto => Engine::Fused,
            other => other,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Engine {
    type Err = Error;

    /// One of [`Engine::name`]'s names.
    fn from_str(text: &str) -> error::Result<Self> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.name() == text)
            .ok_or(Error::InvalidConfig {
                field: "engine",
                value: text.to_owned(),
                reason: "expected auto, generic or fused",
            })
    }
}

/// Reads a [`TrainingConfig`] from JSON written by any version of this library: a config from
/// before operations existed has no `operation` field and means addition, the only operation
/// then; one from before methods existed has no `method` and means the notebook's step. (Burn's
/// `Config` derive gives its serde form no field defaults.)
///
/// # Errors
/// serde_json's, for JSON that is not a config.
pub fn config_from_json(mut value: serde_json::Value) -> serde_json::Result<TrainingConfig> {
    upgrade_config_json(&mut value);
    serde_json::from_value(value)
}

/// Adds `"operation": "add"` to a config object that has no operation, and the default method
/// to one that has none (see [`config_from_json`]).
pub(crate) fn upgrade_config_json(value: &mut serde_json::Value) {
    if let Some(object) = value.as_object_mut() {
        object
            .entry("operation")
            .or_insert_with(|| Operation::Add.name().into());
        object.entry("method").or_insert_with(|| {
            serde_json::to_value(Method::default()).expect("a method is plain data")
        });
        object.entry("label_noise").or_insert_with(|| 0.0.into());
    }
}

impl TrainingConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The [`Error`] variant naming the first invalid field.
    pub fn validate(&self) -> error::Result<()> {
        self.model.validate()?;
        let p = self.model.p;
        self.operation.check(p)?;
        let rows = match self.operation {
            Operation::Div => p * (p - 1),
            _ => p * p,
        };
        train_rows_for(p, rows, self.train_fraction)?;
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
        if self.threads == Some(0) {
            return invalid("threads", "0".into(), "a model needs at least one thread");
        }
        self.method.validate()?;
        if !(0.0..1.0).contains(&self.label_noise) {
            return invalid(
                "label-noise",
                self.label_noise.to_string(),
                "it must be in [0, 1)",
            );
        }
        let (p, h) = (self.model.p, self.model.d_hidden);
        crate::memory::check(
            &format!("training a model with p = {p} and {h} hidden units"),
            self.memory_estimate(),
        )
    }

    /// Bytes a training run of this configuration needs, estimated from its sizes before any of
    /// it is allocated: the data set, the weights with their AdamW moments, gradient and copies,
    /// and a pass's activations. [`TrainingConfig::validate`] checks it against the machine
    /// ([`memory::check`](crate::memory::check)); the report's analyses come on top
    /// ([`report::memory_estimate`](crate::report::memory_estimate)).
    pub fn memory_estimate(&self) -> u64 {
        let (p, h) = (self.model.p as f64, self.model.d_hidden as f64);
        let pairs = p * p;
        let rows = (self.batch_size as f64).min(pairs).max(1024f64.min(pairs));
        crate::memory::bytes(&[
            // The pairs, labels and split, as indices and as the step's rows.
            (pairs, 48.0),
            // Weights, two AdamW moments, a gradient, host and device copies: ten of each size.
            (3.0 * p * h, 40.0),
            // One pass's activations (pre, post, dpost, the logits and their parts).
            (rows * (4.0 * h + 4.0 * p), 4.0),
            // The filter's memory (the MA's window), on the device and in a host copy.
            (3.0 * p * h * self.method.filter_capacity() as f64, 8.0),
        ])
    }
}

/// The metrics of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// Mean cross-entropy over the training rows, each taken before its batch's step.
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    /// Mean cross-entropy over the validation rows after the epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub val_loss: f64,
    /// Fraction of training rows predicted right, each before its batch's step.
    #[serde(deserialize_with = "nan_if_null")]
    pub train_acc: f64,
    /// Fraction of validation rows predicted right after the epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub val_acc: f64,
    /// Seconds since training started, at the end of this epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub seconds: f64,
    /// Fraction of training rows whose `f32` softmax had collapsed to exactly one-hot
    /// (`Σ exp(x − max) == 1`, Prieto et al. 2025's `softmax_collapse`), each before its batch's
    /// step (NaN in files written before it was measured).
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub softmax_collapse: f64,
    /// `‖W‖ = √(Σ w²)` over both weight matrices after the epoch (NaN in files written before it
    /// was measured).
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub weight_norm: f64,
}

/// NaN, the value of a metric a file from before it existed does not hold.
fn nan() -> f64 {
    f64::NAN
}

/// Reads an `f64` that may be `null`: JSON has no NaN or infinity, so serde_json writes them as
/// `null`, and a run that diverged must still be readable (a `null` reads as NaN).
///
/// # Errors
/// The deserializer's, for anything but a number or `null`.
pub(crate) fn nan_if_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<f64, D::Error> {
    use serde::Deserialize as _;
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// All epochs of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One entry per completed epoch, in order.
    pub epochs: Vec<EpochMetrics>,
    /// Columns an observer added ([`Epoch::record`]), in the order first recorded: a name and
    /// one value per epoch up to the last it was recorded at (NaN where it was not).
    #[serde(default, deserialize_with = "columns_with_nulls")]
    pub columns: Vec<(String, Vec<f64>)>,
}

/// Reads [`History::columns`] whose NaNs JSON wrote as `null`.
fn columns_with_nulls<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, Vec<f64>)>, D::Error> {
    let raw: Vec<(String, Vec<Option<f64>>)> = Deserialize::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|(name, values)| {
            let values = values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            (name, values)
        })
        .collect())
}

impl History {
    /// Records `value` in column `name` for the last epoch (a custom metric: it becomes a column
    /// of metrics.csv).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if there is no epoch yet, or the name is empty, holds anything
    /// but ASCII letters, digits and `_`, or is one of [`EpochMetrics`]'s.
    pub fn record(&mut self, name: &str, value: f64) -> error::Result<()> {
        const BUILT_IN: [&str; 8] = [
            "epoch",
            "train_loss",
            "val_loss",
            "train_acc",
            "val_acc",
            "seconds",
            "softmax_collapse",
            "weight_norm",
        ];
        if name.is_empty()
            || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            || BUILT_IN.contains(&name)
        {
            return Err(Error::InvalidConfig {
                field: "column",
                value: name.into(),
                reason: "a metrics column is named by ASCII letters, digits and _, and not as a built-in one",
            });
        }
        let n = self.epochs.len();
        if n == 0 {
            return Err(Error::InvalidConfig {
                field: "column",
                value: name.into(),
                reason: "a value is recorded for an epoch that has run",
            });
        }
        let column = match self.columns.iter().position(|(c, _)| c == name) {
            Some(i) => &mut self.columns[i].1,
            None => {
                self.columns.push((name.into(), Vec::new()));
                &mut self.columns.last_mut().expect("just pushed").1
            }
        };
        column.resize(n - 1, f64::NAN);
        column.push(value);
        Ok(())
    }

    /// The value of column `name` at epoch `epoch` (NaN where it was not recorded).
    pub fn column(&self, name: &str, epoch: usize) -> Option<f64> {
        let (_, values) = self.columns.iter().find(|(c, _)| c == name)?;
        Some(values.get(epoch).copied().unwrap_or(f64::NAN))
    }

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

/// A training run in progress: an [`Ensemble`] of one, with the API of a single network.
///
/// The step runs on the implementation [`TrainingConfig::engine`] resolves to (see [`Engine`]).
pub struct Trainer<B: TrainBackend> {
    ensemble: Ensemble<B>,
    /// The weights as a Burn model, built on demand and dropped after each step.
    model: OnceCell<Mlp<B>>,
}

impl<B: TrainBackend> Trainer<B> {
    /// Builds the data set, the initial weights and the optimiser state on `device`.
    ///
    /// # Errors
    /// Any invalid field of `config` (see [`TrainingConfig::validate`]).
    pub fn new(config: &TrainingConfig, device: &B::Device) -> error::Result<Self> {
        Ok(Self::of(Ensemble::new(
            std::slice::from_ref(config),
            device,
        )?))
    }

    fn of(ensemble: Ensemble<B>) -> Self {
        Self {
            ensemble,
            model: OnceCell::new(),
        }
    }

    /// The engine the steps run on ([`Engine::Generic`] or [`Engine::Fused`]).
    pub fn engine(&self) -> Engine {
        self.ensemble.engine()
    }

    /// The configuration of this run.
    pub fn config(&self) -> &TrainingConfig {
        &self.ensemble.configs()[0]
    }

    /// The data set and split.
    pub fn data(&self) -> &ModularDataset {
        &self.ensemble.data()[0]
    }

    /// The weights as they are now, on the host (PyTorch's orientation).
    pub fn weights(&self) -> crate::MlpWeights {
        self.ensemble.weights().remove(0)
    }

    /// The model as it is now.
    pub fn model(&self) -> &Mlp<B> {
        self.model
            .get_or_init(|| Mlp::from_weights(&self.weights(), self.ensemble.device()))
    }

    /// Metrics of the epochs run so far.
    pub fn history(&self) -> &History {
        &self.ensemble.histories()[0]
    }

    /// Sets the learning rate and weight decay for the steps that follow (a schedule); the
    /// config records the new values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a value [`TrainingConfig::validate`] rejects.
    pub fn set_lr_and_weight_decay(&mut self, lr: f64, weight_decay: f64) -> error::Result<()> {
        let epsilon = self.config().adam_epsilon;
        self.ensemble.set_hyper(0, lr, weight_decay, epsilon)
    }

    /// Takes one optimiser step on training batch `index` (rows `index·batch_size..` of the
    /// training split, as an epoch would) without touching the history; for benchmarks and
    /// custom loops. On a GPU the step is queued, not awaited: synchronise the device before
    /// reading a clock.
    ///
    /// # Panics
    /// If `index` is not below the number of batches per epoch.
    pub fn step(&mut self, index: usize) {
        let rows = batches(self.data().train_rows().len(), self.config().batch_size)
            .nth(index)
            .unwrap_or_else(|| panic!("batch {index} is past the training split"));
        self.model.take();
        self.ensemble.step(rows);
    }

    /// Optimiser steps per epoch ([`batches`]).
    pub fn batches_per_epoch(&self) -> usize {
        batches(self.data().train_rows().len(), self.config().batch_size).len()
    }

    /// Runs one epoch: a step per batch, then validation. Returns its metrics.
    pub fn run_epoch(&mut self) -> EpochMetrics {
        self.model.take();
        self.ensemble.run_epoch()[0]
    }

    /// Runs the remaining epochs of the configuration, calling `observer` after each with the
    /// run as it stands ([`Epoch`]): it can read the weights, change the learning rate and weight
    /// decay (a schedule), record its own metrics as columns of the history, or stop.
    ///
    /// # Example
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use grokking::{Control, Epoch, MlpConfig, Trainer, TrainingConfig};
    /// let config = TrainingConfig::new()
    ///     .with_model(MlpConfig::new().with_p(7).with_d_hidden(8))
    ///     .with_epochs(4);
    /// let trainer = Trainer::<Autodiff<NdArray>>::new(&config, &Default::default())?;
    /// let trained = trainer.run_with(|epoch: &mut Epoch<'_, Autodiff<NdArray>>| {
    ///     let norm: f32 = epoch.weights().fc1().iter().map(|w| w * w).sum();
    ///     epoch.record("fc1_norm", norm as f64).unwrap();
    ///     // Halve the learning rate after epoch 1.
    ///     if epoch.metrics().epoch == 1 {
    ///         epoch.set_lr_and_weight_decay(1.5e-3, 0.5).unwrap();
    ///     }
    ///     Control::Continue
    /// });
    /// assert_eq!(trained.history.columns[0].1.len(), 4);
    /// # Ok::<(), grokking::Error>(())
    /// ```
    pub fn run_with(
        mut self,
        mut observer: impl FnMut(&mut Epoch<'_, B>) -> Control,
    ) -> Trained<B::InnerBackend> {
        while self.history().epochs.len() < self.config().epochs {
            let metrics = self.run_epoch();
            let mut epoch = Epoch {
                trainer: &mut self,
                metrics,
            };
            if observer(&mut epoch) == Control::Stop {
                break;
            }
        }
        self.finish()
    }

    /// Records `value` in column `name` of the history for the last epoch (see
    /// [`History::record`]).
    ///
    /// # Errors
    /// As [`History::record`].
    pub fn record(&mut self, name: &str, value: f64) -> error::Result<()> {
        self.ensemble.history_mut(0).record(name, value)
    }

    /// Runs the remaining epochs of the configuration, calling `observer` after each.
    pub fn run(mut self, mut observer: impl EpochObserver) -> Trained<B::InnerBackend> {
        while self.history().epochs.len() < self.config().epochs {
            let metrics = self.run_epoch();
            if observer.on_epoch(&metrics) == Control::Stop {
                break;
            }
        }
        self.finish()
    }

    /// Ends training where it stands and hands back the model (without autodiff) and history.
    pub fn finish(self) -> Trained<B::InnerBackend> {
        let model = Mlp::from_weights(&self.weights(), self.ensemble.device());
        let (mut data, mut histories) = self.ensemble.into_parts();
        Trained {
            model,
            history: histories.remove(0),
            data: data.remove(0),
        }
    }
}

/// The run as an observer of [`Trainer::run_with`] sees it after an epoch.
pub struct Epoch<'a, B: TrainBackend> {
    trainer: &'a mut Trainer<B>,
    metrics: EpochMetrics,
}

impl<B: TrainBackend> Epoch<'_, B> {
    /// The epoch's metrics.
    pub fn metrics(&self) -> &EpochMetrics {
        &self.metrics
    }

    /// The weights after the epoch, on the host (PyTorch's orientation). On the CPU backends the
    /// fused engine keeps them in host memory, so this is a copy with no device in between; on a
    /// GPU it is one read of the device.
    pub fn weights(&self) -> crate::MlpWeights {
        self.trainer.weights()
    }

    /// The data set and split.
    pub fn data(&self) -> &ModularDataset {
        self.trainer.data()
    }

    /// The configuration, with the learning rate and weight decay now in force.
    pub fn config(&self) -> &TrainingConfig {
        self.trainer.config()
    }

    /// The history so far, this epoch included.
    pub fn history(&self) -> &History {
        self.trainer.history()
    }

    /// Sets the learning rate and weight decay for the epochs that follow.
    ///
    /// # Errors
    /// As [`Trainer::set_lr_and_weight_decay`].
    pub fn set_lr_and_weight_decay(&mut self, lr: f64, weight_decay: f64) -> error::Result<()> {
        self.trainer.set_lr_and_weight_decay(lr, weight_decay)
    }

    /// Records a metric of the observer's own for this epoch: a column of the history and of
    /// metrics.csv.
    ///
    /// # Errors
    /// As [`History::record`].
    pub fn record(&mut self, name: &str, value: f64) -> error::Result<()> {
        self.trainer.record(name, value)
    }
}

/// Trains a network as `config` says, calling `observer` after each epoch.
///
/// # Errors
/// Any invalid field of `config` (see [`TrainingConfig::validate`]).
pub fn train<B: TrainBackend>(
    config: &TrainingConfig,
    device: &B::Device,
    observer: impl EpochObserver,
) -> error::Result<Trained<B::InnerBackend>> {
    Ok(Trainer::<B>::new(config, device)?.run(observer))
}

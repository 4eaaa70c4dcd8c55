//! The training loop, for K ≥ 1 networks of one shape: [`Ensemble`]. A single run
//! ([`Trainer`](super::Trainer)) is an ensemble of one.

use std::time::{Duration, Instant};

use burn::tensor::backend::AutodiffBackend;

use super::{Engine, EpochMetrics, History, TrainingConfig};
use crate::{
    analysis::evaluate::{first_argmax, HostNetwork},
    data::LabelNoise,
    data::{ModularDataset, Split},
    error::{Error, Result},
    model::MlpWeights,
    step::{EpochSums, Hyper, MemberSetup, OptimizerState, Rows, StackSetup, StepBackend},
};

/// A backend that trains: `Autodiff<B>` where `B` has its own [`StepBackend`] implementation.
/// [`Engine::Generic`] runs the reference implementation (`Autodiff<B>`'s, Burn's tensor
/// operations and autodiff); [`Engine::Fused`] runs `B`'s own (host code on ndarray and flex,
/// CubeCL kernels on wgpu, vulkan and cuda).
pub trait TrainBackend: AutodiffBackend<InnerBackend: StepBackend> + StepBackend {}

impl<B> TrainBackend for B where B: AutodiffBackend<InnerBackend: StepBackend> + StepBackend {}

/// A stack on the implementation an [`Engine`] names.
enum Stack<B: TrainBackend> {
    Reference(<B as StepBackend>::Stack),
    Own(<B::InnerBackend as StepBackend>::Stack),
}

/// Calls `StepBackend::$op` of the stack's implementation.
macro_rules! dispatch {
    ($stack:expr, $op:ident $(, $arg:expr)*) => {
        match $stack {
            Stack::Reference(s) => <B as StepBackend>::$op(s $(, $arg)*),
            Stack::Own(s) => <B::InnerBackend as StepBackend>::$op(s $(, $arg)*),
        }
    };
}

/// What members of one ensemble must share: `(operation, p, d_hidden, train_fraction bits,
/// batch_size, epochs, engine)`.
pub fn shape_key(
    config: &TrainingConfig,
) -> (&'static str, usize, usize, u64, usize, usize, Engine) {
    (
        config.operation.name(),
        config.model.p,
        config.model.d_hidden,
        config.train_fraction.to_bits(),
        config.batch_size,
        config.epochs,
        config.engine.resolve(),
    )
}

/// K networks of one shape (same p, width, train fraction, batch size, epochs and engine), each
/// with its own seed, learning rate, weight decay and AdamW epsilon, trained as one stack of
/// [`StepBackend`]: one step is one operation for all K members.
///
/// Each member has its own seed, so its own initial weights, data split and batch order; member
/// `k`'s history equals training it alone, to float rounding (`tests/integration/sweep.rs`).
/// Metrics stay on the device through an epoch and are read once per epoch for all members. On a
/// GPU this is what fills the card: one short sequence of kernel launches per step for K models.
pub struct Ensemble<B: TrainBackend> {
    configs: Vec<TrainingConfig>,
    data: Vec<ModularDataset>,
    engine: Engine,
    device: B::Device,
    stack: Stack<B>,
    /// Each member's corrupted training rows (empty without label noise).
    noise: Vec<LabelNoise>,
    /// Steps were taken outside an epoch (`step`): their sums are dropped before the next one.
    stray_sums: bool,
    histories: Vec<History>,
    elapsed: Duration,
}

/// Where a member starts: weights, AdamW state, history and seconds already spent.
pub(crate) struct Start {
    pub weights: MlpWeights,
    pub optimizer: Option<OptimizerState>,
    pub history: History,
    pub elapsed: Duration,
}

impl<B: TrainBackend> Ensemble<B> {
    /// Builds every member's data set and initial weights (as [`Trainer::new`](super::Trainer::new)
    /// would for its config alone) and stacks them on `device`.
    ///
    /// # Errors
    /// An invalid config; [`Error::InvalidConfig`] if `configs` is empty, its members differ in
    /// anything but seed, learning rate, weight decay, epsilon and method (see [`shape_key`]).
    pub fn new(configs: &[TrainingConfig], device: &B::Device) -> Result<Self> {
        let starts = configs
            .iter()
            .map(|c| {
                c.validate()?;
                Ok(Start {
                    weights: c.model.init_weights(c.seed),
                    optimizer: None,
                    history: History::default(),
                    elapsed: Duration::ZERO,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_starts(configs, starts, device)
    }

    /// Builds the stack from each member's starting point.
    pub(crate) fn from_starts(
        configs: &[TrainingConfig],
        starts: Vec<Start>,
        device: &B::Device,
    ) -> Result<Self> {
        let first = configs.first().ok_or(Error::InvalidConfig {
            field: "configs",
            value: "[]".into(),
            reason: "an ensemble needs at least one member",
        })?;
        for config in configs {
            config.validate()?;
            if shape_key(config) != shape_key(first) {
                return Err(Error::InvalidConfig {
                    field: "configs",
                    value: format!("{:?}", shape_key(config)),
                    reason: "members of one ensemble must share operation, p, width, train \
                             fraction, batch size, epochs and engine",
                });
            }
        }
        let (p, h) = (first.model.p, first.model.d_hidden);
        let data = configs
            .iter()
            .map(|c| ModularDataset::with_operation(p, c.operation, c.train_fraction, c.seed))
            .collect::<Result<Vec<_>>>()?;
        let noise = configs
            .iter()
            .zip(&data)
            .map(|(c, set)| set.label_noise(c.label_noise, c.seed))
            .collect::<Result<Vec<_>>>()?;
        let elapsed = starts.first().map_or(Duration::ZERO, |s| s.elapsed);
        let mut histories = Vec::with_capacity(configs.len());
        let members = configs
            .iter()
            .zip(starts)
            .zip(data.iter().zip(&noise))
            .map(|((config, start), (set, noise))| {
                histories.push(start.history);
                let mut train = Rows::new(set, Split::Train);
                noise.apply(&mut train.y);
                MemberSetup {
                    weights: start.weights,
                    optimizer: start.optimizer,
                    hyper: hyper(config),
                    method: config.method,
                    train,
                    val: Rows::new(set, Split::Val),
                }
            })
            .collect();
        let setup = StackSetup {
            p,
            d_hidden: h,
            members,
            threads: first.threads.unwrap_or(0),
        };
        let engine = first.engine.resolve();
        let stack = match engine {
            Engine::Generic => Stack::Reference(<B as StepBackend>::stack_init(setup, device)),
            _ => Stack::Own(<B::InnerBackend as StepBackend>::stack_init(setup, device)),
        };
        Ok(Self {
            configs: configs.to_vec(),
            data,
            engine,
            device: device.clone(),
            stack,
            noise,
            stray_sums: false,
            histories,
            elapsed,
        })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Whether the ensemble has no member (never true for a built one).
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// The implementation the steps run on ([`Engine::Generic`] or [`Engine::Fused`]).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The members' configurations, in member order.
    pub fn configs(&self) -> &[TrainingConfig] {
        &self.configs
    }

    /// The members' data sets and splits, in member order.
    pub fn data(&self) -> &[ModularDataset] {
        &self.data
    }

    /// Each member's metrics so far, in member order.
    pub fn histories(&self) -> &[History] {
        &self.histories
    }

    /// Member `k`'s history, to record columns in.
    pub(crate) fn history_mut(&mut self, k: usize) -> &mut History {
        &mut self.histories[k]
    }

    /// Seconds spent training so far.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The device the stack lives on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The members' data sets and histories, in member order.
    pub(crate) fn into_parts(self) -> (Vec<ModularDataset>, Vec<History>) {
        (self.data, self.histories)
    }

    /// Every member's current weights on the host, in member order.
    pub fn weights(&self) -> Vec<MlpWeights> {
        dispatch!(&self.stack, stack_weights)
    }

    /// Every member's AdamW state on the host, in member order.
    pub fn optimizer_states(&self) -> Vec<OptimizerState> {
        dispatch!(&self.stack, stack_optimizer)
    }

    /// Sets member `k`'s learning rate, weight decay and epsilon for the steps that follow (a
    /// schedule); its config records the new values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a value [`TrainingConfig::validate`] rejects.
    ///
    /// # Panics
    /// If `k` is not below [`Ensemble::len`].
    pub fn set_hyper(&mut self, k: usize, lr: f64, weight_decay: f64, epsilon: f64) -> Result<()> {
        let config = self.configs[k]
            .clone()
            .with_lr(lr)
            .with_weight_decay(weight_decay)
            .with_adam_epsilon(epsilon);
        config.validate()?;
        self.configs[k] = config;
        let all: Vec<Hyper> = self.configs.iter().map(hyper).collect();
        dispatch!(&mut self.stack, stack_set_hyper, &all);
        Ok(())
    }

    /// One AdamW step of every member on its training rows `rows`, outside an epoch (for
    /// benchmarks and custom loops); it does not touch the histories. On a GPU the step is
    /// queued, not awaited.
    ///
    /// # Panics
    /// If `rows` is empty or runs past the training split.
    pub fn step(&mut self, rows: std::ops::Range<usize>) {
        self.stray_sums = true;
        dispatch!(&mut self.stack, stack_step, rows);
    }

    /// One epoch of every member (a step per batch, then validation); each member's metrics.
    pub fn run_epoch(&mut self) -> Vec<EpochMetrics> {
        let start = Instant::now();
        if std::mem::take(&mut self.stray_sums) {
            dispatch!(&mut self.stack, stack_take_sums);
        }
        let n_train = self.data[0].train_rows().len();
        for rows in super::batches(n_train, self.configs[0].batch_size) {
            dispatch!(&mut self.stack, stack_step, rows);
        }
        dispatch!(&mut self.stack, stack_validate);
        let sums: Vec<EpochSums> = dispatch!(&mut self.stack, stack_take_sums);
        self.elapsed += start.elapsed();
        let n_val = self.data[0].val_rows().len() as f64;
        let n_train = n_train as f64;
        let metrics: Vec<EpochMetrics> = sums
            .iter()
            .zip(&mut self.histories)
            .map(|(s, history)| {
                let metrics = EpochMetrics {
                    epoch: history.epochs.len(),
                    train_loss: s.train.loss_sum / n_train,
                    train_acc: s.train.correct as f64 / n_train,
                    val_loss: s.val.loss_sum / n_val,
                    val_acc: s.val.correct as f64 / n_val,
                    seconds: self.elapsed.as_secs_f64(),
                    softmax_collapse: s.train.collapsed as f64 / n_train,
                    weight_norm: s.weight_sq.sqrt(),
                };
                history.epochs.push(metrics);
                metrics
            })
            .collect();
        self.record_corrupted_accuracy();
        metrics
    }

    /// With label noise, each noisy member's accuracy on its corrupted rows, against their wrong
    /// and their true labels, after the epoch: the history's `corrupted_acc` and
    /// `corrupted_true_acc` columns (on the host, in `f64`, from a copy of the weights; the
    /// epoch's time does not include it).
    fn record_corrupted_accuracy(&mut self) {
        if self.noise.iter().all(|n| n.positions.is_empty()) {
            return;
        }
        let weights = self.weights();
        for (k, weights) in weights.iter().enumerate() {
            let activation = self.configs[k].method.activation;
            record_corrupted_accuracy(
                &mut self.histories[k],
                &self.data[k],
                &self.noise[k],
                &HostNetwork::with_activation(weights, activation),
            );
        }
    }

    /// Runs the remaining epochs; `on_epoch` is called after each with every member's metrics.
    pub fn run(&mut self, mut on_epoch: impl FnMut(&[EpochMetrics])) {
        while self.histories[0].epochs.len() < self.configs[0].epochs {
            let metrics = self.run_epoch();
            on_epoch(&metrics);
        }
    }
}

/// A config's optimiser hyperparameters.
fn hyper(config: &TrainingConfig) -> Hyper {
    Hyper {
        lr: config.lr,
        weight_decay: config.weight_decay,
        epsilon: config.adam_epsilon,
    }
}

/// Records the corrupted rows' accuracy on their wrong labels (`corrupted_acc`) and on their
/// true ones (`corrupted_true_acc`) for the last epoch of `history`, from `network` on the host
/// in `f64`; nothing for a run without noise.
pub(crate) fn record_corrupted_accuracy(
    history: &mut History,
    data: &ModularDataset,
    noise: &LabelNoise,
    network: &HostNetwork,
) {
    if noise.positions.is_empty() {
        return;
    }
    let rows: Vec<u32> = noise
        .positions
        .iter()
        .map(|&i| data.train_rows()[i])
        .collect();
    let logits = network.logits_of(data, &rows);
    let (mut wrong, mut true_label) = (0usize, 0usize);
    for ((row, &label), logits) in rows
        .iter()
        .zip(&noise.labels)
        .zip(logits.chunks_exact(data.p()))
    {
        let predicted = first_argmax(logits);
        wrong += (predicted == label as usize) as usize;
        true_label += (predicted == data.label(*row)) as usize;
    }
    let n = rows.len() as f64;
    for (name, hits) in [("corrupted_acc", wrong), ("corrupted_true_acc", true_label)] {
        history
            .record(name, hits as f64 / n)
            .expect("a valid name, after an epoch");
    }
}

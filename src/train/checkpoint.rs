//! A training run's complete state on the host, independent of the engine that trains it:
//! the configuration, the weights, AdamW's moments and step count, and the history.
//!
//! # Orientation
//! Weights and moments are in PyTorch's orientation, as [`MlpWeights`]: `fc1 [d_hidden, 2p]` and
//! `fc2 [p, d_hidden]`, row-major `f32`. Burn's `Linear` stores the transposes; [`Trainer::state`]
//! and [`Trainer::from_state`] transpose at that border (exactly: transposing moves values, it
//! does not round them).
//!
//! # Optimizer state and parameter ids
//! Burn keys AdamW's moments by parameter id. [`Trainer::from_state`] builds a fresh model and
//! attaches the moments to *that* model's ids, so they cannot silently detach (the known pitfall
//! of loading a record that drops ids, after which Adam's moments restart from zero).

use std::time::Duration;

use burn::{
    module::Param,
    optim::{
        adaptor::OptimizerAdaptor, AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState,
        SimpleOptimizer,
    },
    tensor::{backend::AutodiffBackend, Tensor, TensorData},
};

use super::{AdamState, Engine, FusedEngine, History, State, Trainer, TrainingConfig};
use crate::{
    data::{ModularDataset, Split},
    error::{Error, Result},
    model::{to_vec, transpose, Mlp, MlpWeights},
};

/// Everything needed to continue a run exactly where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    /// The run's configuration.
    pub config: TrainingConfig,
    /// The weights after the last completed epoch.
    pub weights: MlpWeights,
    /// AdamW's state; `None` before the first step.
    pub adam: Option<AdamState>,
    /// Metrics of the completed epochs; its length is the number of epochs done.
    pub history: History,
    /// Seconds spent training so far (so resumed `seconds` keep counting).
    pub elapsed_seconds: f64,
}

impl TrainerState {
    /// The number of completed epochs.
    pub fn epoch(&self) -> usize {
        self.history.epochs.len()
    }

    /// Checks that the parts fit each other: the config is valid, the weights match its model,
    /// the moments have the weights' sizes.
    ///
    /// # Errors
    /// The config's own errors, or [`Error::Shape`] naming the part that does not fit.
    pub fn validate(&self) -> Result<()> {
        self.config.validate()?;
        let (p, h) = (self.config.model.p, self.config.model.d_hidden);
        if (self.weights.p(), self.weights.d_hidden()) != (p, h) {
            return Err(Error::Shape(format!(
                "weights are for p = {}, d_hidden = {}; the config says p = {p}, d_hidden = {h}",
                self.weights.p(),
                self.weights.d_hidden()
            )));
        }
        if let Some(adam) = &self.adam {
            for (name, len, want) in [
                ("fc1 first moment", adam.fc1_m1.len(), 2 * p * h),
                ("fc1 second moment", adam.fc1_m2.len(), 2 * p * h),
                ("fc2 first moment", adam.fc2_m1.len(), p * h),
                ("fc2 second moment", adam.fc2_m2.len(), p * h),
            ] {
                if len != want {
                    return Err(Error::Shape(format!(
                        "AdamW's {name} has {len} values; expected {want}"
                    )));
                }
            }
        }
        if self.epoch() > self.config.epochs {
            return Err(Error::Shape(format!(
                "the history has {} epochs but the config only {}",
                self.epoch(),
                self.config.epochs
            )));
        }
        Ok(())
    }
}

type Records<B> = <OptimizerAdaptor<AdamW, Mlp<B>, B> as burn::optim::Optimizer<Mlp<B>, B>>::Record;

impl<B: AutodiffBackend> Trainer<B> {
    /// A host copy of the run's complete state (see [`TrainerState`]).
    pub fn state(&self) -> TrainerState {
        let (weights, adam) = match &self.state {
            State::Generic { model, optim, .. } => {
                (model.weights(), generic_adam_state(model, optim))
            }
            State::Fused { engine, .. } => (
                engine.weights(),
                Some(engine.adam_state()).filter(|adam| adam.step > 0),
            ),
        };
        TrainerState {
            config: self.config.clone(),
            weights,
            adam,
            history: self.history.clone(),
            elapsed_seconds: self.elapsed.as_secs_f64(),
        }
    }

    /// Rebuilds a trainer from a [`TrainerState`] on `device`; training continues exactly as the
    /// run it came from would have.
    ///
    /// # Errors
    /// [`TrainerState::validate`]'s errors.
    pub fn from_state(state: TrainerState, device: &B::Device) -> Result<Self> {
        state.validate()?;
        let config = state.config;
        let data = ModularDataset::new(config.model.p, config.train_fraction, config.seed)?;
        let model = Mlp::<B>::from_weights(&state.weights, device);
        let engine_state = match config.engine.resolve::<B>() {
            Engine::Fused => {
                let mut engine = FusedEngine::new(&config, &state.weights, &data);
                if let Some(adam) = &state.adam {
                    engine.restore(&state.weights, adam);
                }
                State::Fused {
                    engine: Box::new(engine),
                    device: device.clone(),
                    model: Default::default(),
                }
            }
            _ => State::Generic {
                optim: generic_optimizer(&config, &model, state.adam.as_ref(), device),
                model,
                train: data.tensors(Split::Train, device),
                val: data.tensors(Split::Val, device),
            },
        };
        Ok(Self {
            config,
            data,
            state: engine_state,
            history: state.history,
            elapsed: Duration::from_secs_f64(state.elapsed_seconds.max(0.0)),
        })
    }
}

/// AdamW's moments of the generic engine's optimiser, in PyTorch's orientation; `None` before
/// the first step.
fn generic_adam_state<B: AutodiffBackend>(
    model: &Mlp<B>,
    optim: &OptimizerAdaptor<AdamW, Mlp<B>, B>,
) -> Option<AdamState> {
    let (p, h) = (model.p(), model.d_hidden());
    let records: Records<B> = burn::optim::Optimizer::to_record(optim);
    let moments = |param: &Param<Tensor<B, 2>>, rows: usize, cols: usize| {
        records.get(&param.id).map(|record| {
            let state: AdamWState<B::InnerBackend, 2> = record.clone().into_state();
            let host = |t: Tensor<B::InnerBackend, 2>| transpose(&to_vec(t), rows, cols);
            (
                state.momentum.time as u64,
                host(state.momentum.moment_1),
                host(state.momentum.moment_2),
            )
        })
    };
    // Burn's layout: fc1 [2p, h], fc2 [h, p].
    match (
        moments(&model.fc1.weight, 2 * p, h),
        moments(&model.fc2.weight, h, p),
    ) {
        (Some((step, fc1_m1, fc1_m2)), Some((_, fc2_m1, fc2_m2))) => Some(AdamState {
            step,
            fc1_m1,
            fc1_m2,
            fc2_m1,
            fc2_m2,
        }),
        _ => None,
    }
}

/// A fresh AdamW for the generic engine, carrying `adam`'s moments attached to `model`'s
/// parameter ids.
fn generic_optimizer<B: AutodiffBackend>(
    config: &TrainingConfig,
    model: &Mlp<B>,
    adam: Option<&AdamState>,
    device: &B::Device,
) -> OptimizerAdaptor<AdamW, Mlp<B>, B> {
    let (p, h) = (config.model.p, config.model.d_hidden);
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_epsilon(config.adam_epsilon as f32)
        .init();
    let Some(adam) = adam else {
        return optim;
    };
    let inner = |values: &[f32], rows: usize, cols: usize| {
        // PyTorch orientation [cols, rows] -> Burn's [rows, cols].
        Tensor::<B::InnerBackend, 2>::from_data(
            TensorData::new(transpose(values, cols, rows), [rows, cols]),
            device,
        )
    };
    let step = usize::try_from(adam.step).unwrap_or(usize::MAX);
    let record = |m1: &[f32], m2: &[f32], rows, cols| {
        let momentum =
            AdaptiveMomentumState::new(step, inner(m1, rows, cols), inner(m2, rows, cols));
        burn::optim::record::AdaptorRecord::<AdamW, B>::from_state::<2>(
            <AdamW as SimpleOptimizer<B::InnerBackend>>::State::<2>::new(momentum),
        )
    };
    let mut records: Records<B> = Default::default();
    records.insert(
        model.fc1.weight.id,
        record(&adam.fc1_m1, &adam.fc1_m2, 2 * p, h),
    );
    records.insert(
        model.fc2.weight.id,
        record(&adam.fc2_m1, &adam.fc2_m2, h, p),
    );
    burn::optim::Optimizer::load_record(optim, records)
}

//! A training run's complete state on the host, independent of the engine that trains it:
//! the configuration, the weights, AdamW's moments and step count, and the history.
//!
//! # Orientation
//! Weights and moments are in PyTorch's orientation, as [`MlpWeights`]: `fc1 [d_hidden, 2p]` and
//! `fc2 [p, d_hidden]`, row-major `f32`. Burn's `Linear` stores the transposes; [`Trainer::state`]
//! and [`Trainer::from_state`] transpose at that border (exactly: transposing moves values, it
//! does not round them).
//!
//! Every implementation of [`StepBackend`](crate::step::StepBackend) keeps AdamW's moments
//! itself, next to the weights, and hands them over in this form: a state saved from one engine
//! or backend resumes on any other.

use std::time::Duration;

use super::{Ensemble, History, Start, TrainBackend, Trainer, TrainingConfig};
use crate::{
    error::{Error, Result},
    model::MlpWeights,
    step::OptimizerState,
};

/// Everything needed to continue a run exactly where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    /// The run's configuration.
    pub config: TrainingConfig,
    /// The weights after the last completed epoch.
    pub weights: MlpWeights,
    /// AdamW's state; `None` before the first step.
    pub optimizer: Option<OptimizerState>,
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
        if let Some(adam) = &self.optimizer {
            for (name, len, want) in [
                ("fc1 first moment", adam.fc1_m1.len(), 2 * p * h),
                ("fc1 second moment", adam.fc1_m2.len(), 2 * p * h),
                ("fc2 first moment", adam.fc2_m1.len(), p * h),
                ("fc2 second moment", adam.fc2_m2.len(), p * h),
                (
                    "filter's gradients",
                    adam.filter.gradients,
                    self.config.method.filter_gradients(adam.step),
                ),
                (
                    "filter's fc1 values",
                    adam.filter.fc1.len(),
                    adam.filter.gradients * 2 * p * h,
                ),
                (
                    "filter's fc2 values",
                    adam.filter.fc2.len(),
                    adam.filter.gradients * p * h,
                ),
            ] {
                if len != want {
                    return Err(Error::Shape(format!(
                        "the optimiser's {name}: {len}; expected {want}"
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
        // A damaged or edited step count would wrap to 0 (bias corrections of 0, weights of NaN)
        // or be one no run reaches (2^52 steps is a million years at a microsecond a step).
        if let Some(adam) = self
            .optimizer
            .as_ref()
            .filter(|a| a.step == 0 || a.step > 1 << 52)
        {
            return Err(Error::Shape(format!(
                "AdamW's step count {} is not a count a run reaches (1 to 2^52)",
                adam.step
            )));
        }
        Ok(())
    }
}

impl<B: TrainBackend> Trainer<B> {
    /// A host copy of the run's complete state (see [`TrainerState`]).
    pub fn state(&self) -> TrainerState {
        let adam = self.ensemble.optimizer_states().remove(0);
        TrainerState {
            config: self.config().clone(),
            weights: self.weights(),
            optimizer: Some(adam).filter(|adam| adam.step > 0),
            history: self.history().clone(),
            elapsed_seconds: self.ensemble.elapsed().as_secs_f64(),
        }
    }

    /// Rebuilds a trainer from a [`TrainerState`] on `device`; training continues exactly as the
    /// run it came from would have, on the engine `state.config` names.
    ///
    /// # Errors
    /// [`TrainerState::validate`]'s errors.
    pub fn from_state(state: TrainerState, device: &B::Device) -> Result<Self> {
        state.validate()?;
        let start = Start {
            weights: state.weights,
            optimizer: state.optimizer,
            history: state.history,
            elapsed: Duration::try_from_secs_f64(state.elapsed_seconds).unwrap_or_default(),
        };
        Ensemble::from_starts(std::slice::from_ref(&state.config), vec![start], device)
            .map(Self::of)
    }
}

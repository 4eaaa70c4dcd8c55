//! `summary.json`: what a run or an analysis found, in one small file, built in one place for
//! `grok` (a trained run, [`Summary::of_run`]) and `analyze` (a saved model,
//! [`Summary::of_model`]).

use serde::{Deserialize, Serialize};

use crate::{
    analysis::WeightAnalysis,
    operation::Operation,
    step::Method,
    train::{EpochMetrics, History},
};

/// The last epoch's metrics, as `summary.json`'s `final`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Validation loss after the last epoch.
    pub val_loss: f64,
    /// Training accuracy of the last epoch.
    pub train_acc: f64,
    /// Validation accuracy after the last epoch.
    pub val_acc: f64,
}

impl From<&EpochMetrics> for FinalMetrics {
    fn from(m: &EpochMetrics) -> Self {
        Self {
            train_loss: m.train_loss,
            val_loss: m.val_loss,
            train_acc: m.train_acc,
            val_acc: m.val_acc,
        }
    }
}

/// `summary.json`: what a run found, in one small file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The backend that ran it (`ndarray`, `flex`, `wgpu`, `vulkan`, `cuda`).
    pub backend: String,
    /// The operation the data set is labelled with (addition in files written before there was
    /// a choice).
    #[serde(default)]
    pub operation: Operation,
    /// The step's method of a trained run (`None` for an analysis of a saved model, and in
    /// files written before there was a choice).
    #[serde(default)]
    pub method: Option<Method>,
    /// The modulus.
    pub p: usize,
    /// The hidden width.
    pub hidden: usize,
    /// Number of epochs run (fewer than configured if stopped early); `None` for an analysis of
    /// a saved model.
    pub epochs_run: Option<usize>,
    /// First epoch with validation accuracy at least 0.99.
    pub grok_epoch: Option<usize>,
    /// The last epoch's metrics.
    #[serde(rename = "final")]
    pub final_metrics: Option<FinalMetrics>,
    /// Seconds spent training (epochs and their validation), as the reference script's `seconds`.
    pub train_seconds: Option<f64>,
    /// The coordinates of the fits in neurons.json
    /// ([`Basis::name`](crate::analysis::basis::Basis::name)).
    #[serde(default)]
    pub basis: Option<String>,
    /// Mean R² of the neurons' cosine fits in `basis`.
    #[serde(default)]
    pub fit_r2: Option<f64>,
    /// Mean R² of the neurons' cosine fits in the identity coordinates (the residues).
    #[serde(default)]
    pub fit_r2_identity: Option<f64>,
    /// Accuracy on all of the data set's pairs (host, `f64`).
    pub full_accuracy: f64,
    /// Accuracy on all pairs with every neuron replaced by its fitted cosines.
    pub replaced_all_accuracy: f64,
    /// Accuracy on the validation rows with every neuron replaced by its fitted cosines.
    pub replaced_all_val_accuracy: Option<f64>,
}

impl Summary {
    /// The summary of a run on `backend` of `operation` with `method`: its history and the
    /// analysis of its final weights.
    ///
    /// # Panics
    /// If `history` is empty (a run has at least one epoch).
    pub fn of_run(
        backend: &str,
        (operation, method): (Operation, Method),
        history: &History,
        found: &WeightAnalysis,
    ) -> Self {
        let last = history.last().expect("a run has at least one epoch");
        Summary {
            backend: backend.to_owned(),
            method: Some(method),
            epochs_run: Some(history.epochs.len()),
            grok_epoch: history.grok_epoch(),
            final_metrics: Some(last.into()),
            train_seconds: Some(last.seconds),
            replaced_all_val_accuracy: Some(found.replaced_all.val),
            ..Self::of_model(operation, found)
        }
    }

    /// The summary of the analysis of a model of `operation`, without training (`backend` is
    /// `"host"`: the analyses run on the host).
    pub fn of_model(operation: Operation, found: &WeightAnalysis) -> Self {
        Summary {
            backend: "host".into(),
            operation,
            method: None,
            p: found.basis.p(),
            hidden: found.fits.len(),
            epochs_run: None,
            grok_epoch: None,
            final_metrics: None,
            train_seconds: None,
            basis: Some(found.basis.name()),
            fit_r2: Some(found.mean_r2),
            fit_r2_identity: Some(found.mean_r2_identity),
            full_accuracy: found.full_accuracy,
            replaced_all_accuracy: found.replaced_all.full,
            replaced_all_val_accuracy: None,
        }
    }
}

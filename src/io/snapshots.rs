//! Weights kept along training: every snapshot of a run in one `.safetensors` file.
//!
//! # Format
//! A safetensors file (little-endian) with the tensors
//! - `epochs` (I64 `[S]`): the epoch (from 0) after which each snapshot was taken, ascending;
//! - `fc1.weight` (F32 `[S, d_hidden, 2p]`) and `fc2.weight` (F32 `[S, p, d_hidden]`): the
//!   weights of each snapshot in PyTorch's orientation;
//!
//! and string metadata `format` = [`FORMAT`] and `config` (the [`TrainingConfig`] as JSON), so
//! the data set and split of the run can be rebuilt. 100 snapshots of the notebook's network take
//! 13.7 MB. `reference/progress_measures.py` reads the format with numpy alone.
//!
//! # Example
//! ```
//! use grokking::{io::snapshots::Snapshots, MlpConfig, TrainingConfig};
//! let config = TrainingConfig::new().with_model(MlpConfig::new().with_p(5).with_d_hidden(3));
//! let mut snapshots = Snapshots::new(config.clone());
//! snapshots.push(9, &config.model.init_weights(1))?;
//! snapshots.push(19, &config.model.init_weights(2))?;
//! let bytes = snapshots.to_bytes();
//! let back = Snapshots::from_bytes(&bytes, "snapshots.safetensors".as_ref())?;
//! assert_eq!(back, snapshots);
//! assert_eq!(back.epochs(), &[9, 19]);
//! assert_eq!(back.weights(1), config.model.init_weights(2));
//! # Ok::<(), grokking::Error>(())
//! ```

use std::{collections::HashMap, path::Path};

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use super::write_atomic;
use crate::{
    error::{Error, Result},
    model::MlpWeights,
    train::TrainingConfig,
};

/// The value of the `format` metadata key.
pub const FORMAT: &str = "grokking-snapshots-1";
/// The snapshot file's name inside a run folder.
pub const FILE_NAME: &str = "snapshots.safetensors";

/// A run's weights at chosen epochs. See the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshots {
    config: TrainingConfig,
    epochs: Vec<usize>,
    /// `[S, d_hidden, 2p]`, flattened.
    fc1: Vec<f32>,
    /// `[S, p, d_hidden]`, flattened.
    fc2: Vec<f32>,
}

impl Snapshots {
    /// No snapshot yet, of a run of `config`.
    pub fn new(config: TrainingConfig) -> Self {
        Snapshots {
            config,
            epochs: Vec::new(),
            fc1: Vec::new(),
            fc2: Vec::new(),
        }
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    /// The epoch of each snapshot, ascending.
    pub fn epochs(&self) -> &[usize] {
        &self.epochs
    }

    /// Number of snapshots.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether there is no snapshot.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// Bytes one snapshot of this run's network takes.
    pub fn bytes_per_snapshot(config: &TrainingConfig) -> u64 {
        12 * (config.model.p * config.model.d_hidden) as u64
    }

    /// Bytes the snapshots of a whole run of `config` take when kept every `every` epochs
    /// (and after the last); saturates instead of overflowing.
    pub fn memory_estimate(config: &TrainingConfig, every: usize) -> u64 {
        if every == 0 {
            return 0;
        }
        let count = (config.epochs / every) as f64 + 1.0;
        crate::memory::bytes(&[(count, Self::bytes_per_snapshot(config) as f64)])
    }

    /// Adds the weights after `epoch`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `weights` are not of the configured network or `epoch` is not after
    /// the last snapshot's.
    pub fn push(&mut self, epoch: usize, weights: &MlpWeights) -> Result<()> {
        let model = &self.config.model;
        if (weights.p(), weights.d_hidden()) != (model.p, model.d_hidden) {
            return Err(Error::Shape(format!(
                "a snapshot of p = {}, {} neurons in a run of p = {}, {} neurons",
                weights.p(),
                weights.d_hidden(),
                model.p,
                model.d_hidden
            )));
        }
        if self.epochs.last().is_some_and(|&last| epoch <= last) {
            return Err(Error::Shape(format!(
                "snapshot epochs must ascend: {epoch} after {:?}",
                self.epochs.last()
            )));
        }
        self.epochs.push(epoch);
        self.fc1.extend_from_slice(weights.fc1());
        self.fc2.extend_from_slice(weights.fc2());
        Ok(())
    }

    /// Drops the snapshots after `epoch` (a run resumed from a checkpoint at `epoch` retakes
    /// them).
    pub fn truncate_after(&mut self, epoch: usize) {
        let keep = self.epochs.partition_point(|&e| e <= epoch);
        let (n1, n2) = self.sizes();
        self.epochs.truncate(keep);
        self.fc1.truncate(keep * n1);
        self.fc2.truncate(keep * n2);
    }

    fn sizes(&self) -> (usize, usize) {
        let (p, h) = (self.config.model.p, self.config.model.d_hidden);
        (2 * p * h, p * h)
    }

    /// The weights of snapshot `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn weights(&self, i: usize) -> MlpWeights {
        assert!(i < self.len(), "snapshot {i} of {}", self.len());
        let (n1, n2) = self.sizes();
        MlpWeights::new(
            self.config.model.p,
            self.config.model.d_hidden,
            self.fc1[i * n1..(i + 1) * n1].to_vec(),
            self.fc2[i * n2..(i + 1) * n2].to_vec(),
        )
        .expect("snapshots keep the configured shape")
    }

    /// The file's bytes (see the [module docs](self)).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (p, h, s) = (self.config.model.p, self.config.model.d_hidden, self.len());
        let epochs: Vec<u8> = self
            .epochs
            .iter()
            .flat_map(|&e| (e as i64).to_le_bytes())
            .collect();
        let (fc1, fc2) = (
            super::f32_le_bytes(&self.fc1),
            super::f32_le_bytes(&self.fc2),
        );
        let views = [
            ("epochs", Dtype::I64, vec![s], &epochs),
            ("fc1.weight", Dtype::F32, vec![s, h, 2 * p], &fc1),
            ("fc2.weight", Dtype::F32, vec![s, p, h], &fc2),
        ]
        .map(|(name, dtype, shape, bytes)| {
            (
                name,
                TensorView::new(dtype, shape, bytes).expect("length matches shape"),
            )
        });
        let metadata: HashMap<String, String> = [
            ("format".to_string(), FORMAT.to_string()),
            (
                "config".to_string(),
                serde_json::to_string(&self.config).expect("config serialises"),
            ),
        ]
        .into();
        safetensors::serialize(views, Some(metadata)).expect("snapshots serialise")
    }

    /// Writes the file atomically.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }

    /// Reads a file written by [`Snapshots::save`].
    ///
    /// # Errors
    /// As [`read_file`](super::read_file); [`Error::Format`] if it is not a snapshot file or its
    /// parts do not fit together.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(&super::read_file(path)?, path)
    }

    /// Parses snapshot-file `bytes`; `path` only names the source in errors.
    ///
    /// # Errors
    /// As [`Snapshots::load`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let format = |reason: String| Error::Format {
            path: path.to_path_buf(),
            reason,
        };
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| format(format!("not a valid snapshot (safetensors) file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format(format!("not a valid snapshot (safetensors) file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        if metadata.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(format(format!(
                "not a snapshot file (its `format` metadata is not `{FORMAT}`)"
            )));
        }
        let config: TrainingConfig = metadata
            .get("config")
            .ok_or_else(|| format("the snapshot file has no `config` metadata".into()))
            .and_then(|c| {
                serde_json::from_str(c)
                    .and_then(crate::train::config_from_json)
                    .map_err(|e| format(format!("bad `config` metadata: {e}")))
            })?;
        config.model.validate().map_err(|e| format(e.to_string()))?;
        let tensor = |name: &str, dtype: Dtype| {
            let view = file
                .tensor(name)
                .map_err(|_| format(format!("the snapshot file has no tensor `{name}`")))?;
            if view.dtype() != dtype {
                return Err(format(format!(
                    "tensor `{name}` has dtype {:?}; expected {dtype:?}",
                    view.dtype()
                )));
            }
            Ok((view.shape().to_vec(), view.data().to_vec()))
        };
        let (p, h) = (config.model.p, config.model.d_hidden);
        let (shape, epochs) = tensor("epochs", Dtype::I64)?;
        let s = shape.first().copied().unwrap_or(0);
        let (shape1, fc1) = tensor("fc1.weight", Dtype::F32)?;
        let (shape2, fc2) = tensor("fc2.weight", Dtype::F32)?;
        if shape != [s] || shape1 != [s, h, 2 * p] || shape2 != [s, p, h] {
            return Err(format(format!(
                "shapes {shape:?}, {shape1:?}, {shape2:?} do not hold S snapshots of p = {p}, {h} neurons"
            )));
        }
        let epochs: Vec<usize> = epochs
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .map(|e| usize::try_from(e).map_err(|_| format(format!("negative epoch {e}"))))
            .collect::<Result<_>>()?;
        if epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format("snapshot epochs do not ascend".into()));
        }
        let (fc1, fc2) = (
            super::f32s_from_le_bytes(&fc1),
            super::f32s_from_le_bytes(&fc2),
        );
        if fc1.iter().chain(&fc2).any(|v| !v.is_finite()) {
            return Err(format("the snapshots hold NaN or infinite weights".into()));
        }
        Ok(Snapshots {
            config,
            epochs,
            fc1,
            fc2,
        })
    }
}

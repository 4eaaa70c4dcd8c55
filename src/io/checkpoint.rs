//! Training checkpoints: a [`TrainerState`] in one `.safetensors` file, written atomically.
//!
//! # Format
//! A safetensors file (float32, little-endian) with the tensors
//! - `fc1.weight [d_hidden, 2p]`, `fc2.weight [p, d_hidden]`: the weights, PyTorch's keys and
//!   orientation;
//! - `adam.fc1.m1`, `adam.fc1.m2` `[d_hidden, 2p]` and `adam.fc2.m1`, `adam.fc2.m2`
//!   `[p, d_hidden]`: AdamW's first and second moments in the same orientation (absent before the
//!   first step; SGD keeps its momentum buffer in `m1`, `m2` stays zero);
//! - `filter.fc1 [n, d_hidden, 2p]`, `filter.fc2 [n, p, d_hidden]`: the Grokfast filter's memory,
//!   the EMA (`n = 1`) or the MA's last `n` gradients oldest first (absent without a filter or
//!   before the first step);
//!
//! and string metadata `format` = [`FORMAT`], `version` = [`VERSION`], `config` (the
//! [`TrainingConfig`] as JSON), `history` (the [`History`] as JSON, floats written so they read
//! back bit-exactly), `adam_step` (Adam's step count) and `elapsed_seconds`.
//!
//! The file is replaced atomically ([`write_atomic`]): a crash at any moment leaves the previous
//! checkpoint or the new one, never a torn file.

use std::{collections::HashMap, path::Path};

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use super::write_atomic;
use crate::{
    error::{Error, Result},
    model::MlpWeights,
    step::{FilterState, OptimizerState},
    train::{checkpoint::TrainerState, History, TrainingConfig},
};

/// The value of the `format` metadata key.
pub const FORMAT: &str = "grokking-trainer-state";
/// The format version this library writes and reads.
pub const VERSION: &str = "1";
/// The checkpoint's file name inside a run folder.
pub const FILE_NAME: &str = "checkpoint.safetensors";

/// The bytes of a checkpoint holding `state` (see the module docs for the layout).
pub fn state_to_bytes(state: &TrainerState) -> Vec<u8> {
    let (p, h) = (state.weights.p(), state.weights.d_hidden());
    let le = super::f32_le_bytes;
    let mut buffers: Vec<(&str, Vec<usize>, Vec<u8>)> = vec![
        ("fc1.weight", vec![h, 2 * p], le(state.weights.fc1())),
        ("fc2.weight", vec![p, h], le(state.weights.fc2())),
    ];
    if let Some(adam) = &state.optimizer {
        buffers.push(("adam.fc1.m1", vec![h, 2 * p], le(&adam.fc1_m1)));
        buffers.push(("adam.fc1.m2", vec![h, 2 * p], le(&adam.fc1_m2)));
        buffers.push(("adam.fc2.m1", vec![p, h], le(&adam.fc2_m1)));
        buffers.push(("adam.fc2.m2", vec![p, h], le(&adam.fc2_m2)));
        let n = adam.filter.gradients;
        if n > 0 {
            buffers.push(("filter.fc1", vec![n, h, 2 * p], le(&adam.filter.fc1)));
            buffers.push(("filter.fc2", vec![n, p, h], le(&adam.filter.fc2)));
        }
    }
    let views: Vec<(&str, TensorView<'_>)> = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            (
                *name,
                TensorView::new(Dtype::F32, shape.clone(), bytes).expect("length matches shape"),
            )
        })
        .collect();
    let metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("version", VERSION.to_string()),
        (
            "config",
            serde_json::to_string(&state.config).expect("config serialises"),
        ),
        (
            "history",
            serde_json::to_string(&state.history).expect("history serialises"),
        ),
        (
            "adam_step",
            state.optimizer.as_ref().map_or(0, |a| a.step).to_string(),
        ),
        ("elapsed_seconds", state.elapsed_seconds.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    safetensors::serialize(views, Some(metadata)).expect("small tensors serialise")
}

/// Writes `state` to `path` atomically (temporary file, fsync, rename), so the previous
/// checkpoint stays intact until the new one is complete.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn save_state(path: impl AsRef<Path>, state: &TrainerState) -> Result<()> {
    write_atomic(path, &state_to_bytes(state))
}

/// Reads a checkpoint written by [`save_state`].
///
/// # Errors
/// As [`read_file`](super::read_file) (missing, not a regular file, too large for memory);
/// [`Error::Format`] if it is not such a checkpoint
/// (another safetensors file, another version, a missing or malformed part) or its parts do not
/// fit together.
pub fn load_state(path: impl AsRef<Path>) -> Result<TrainerState> {
    let path = path.as_ref();
    state_from_bytes(&super::read_file(path)?, path)
}

/// Whether `bytes` are a safetensors file carrying this module's `format` tag.
pub fn is_trainer_state(bytes: &[u8]) -> bool {
    SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, meta)| meta.metadata().as_ref()?.get("format").cloned())
        .is_some_and(|f| f == FORMAT)
}

/// Parses checkpoint `bytes`; `path` only names the source in errors.
///
/// # Errors
/// As [`load_state`].
pub fn state_from_bytes(bytes: &[u8], path: &Path) -> Result<TrainerState> {
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format(format!("not a valid checkpoint (safetensors) file: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let meta = |key: &str| {
        metadata
            .get(key)
            .ok_or_else(|| format(format!("the checkpoint has no `{key}` metadata")))
    };
    if meta("format")? != FORMAT {
        return Err(format(format!(
            "not a training checkpoint (format `{}`, expected `{FORMAT}`)",
            meta("format")?
        )));
    }
    if meta("version")? != VERSION {
        return Err(format(format!(
            "checkpoint version {} is not supported (this library reads {VERSION})",
            meta("version")?
        )));
    }
    let config: TrainingConfig = serde_json::from_str(meta("config")?)
        .and_then(crate::train::config_from_json)
        .map_err(|e| format(format!("bad `config` metadata: {e}")))?;
    let history: History = serde_json::from_str(meta("history")?)
        .map_err(|e| format(format!("bad `history` metadata: {e}")))?;
    let step: u64 = meta("adam_step")?
        .parse()
        .map_err(|e| format(format!("bad `adam_step` metadata: {e}")))?;
    let elapsed_seconds: f64 = meta("elapsed_seconds")?
        .parse()
        .map_err(|e| format(format!("bad `elapsed_seconds` metadata: {e}")))?;
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| format(format!("not a valid checkpoint (safetensors) file: {e}")))?;
    let tensor = |name: &str| -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        let view = match file.tensor(name) {
            Ok(view) => view,
            Err(_) => return Ok(None),
        };
        if view.dtype() != Dtype::F32 {
            return Err(format(format!(
                "tensor `{name}` has dtype {:?}; expected F32",
                view.dtype()
            )));
        }
        let values = super::f32s_from_le_bytes(view.data());
        Ok(Some((view.shape().to_vec(), values)))
    };
    let required = |name: &str| {
        tensor(name)?.ok_or_else(|| format(format!("the checkpoint has no tensor `{name}`")))
    };
    let (s1, fc1) = required("fc1.weight")?;
    let (s2, fc2) = required("fc2.weight")?;
    let weights =
        MlpWeights::from_pytorch_shapes(&s1, fc1, &s2, fc2).map_err(|e| format(e.to_string()))?;
    let filter = match tensor("filter.fc1")? {
        None => FilterState::default(),
        Some((shape, fc1)) => FilterState {
            gradients: shape.first().copied().unwrap_or(0),
            fc1,
            fc2: required("filter.fc2")?.1,
        },
    };
    let optimizer = match tensor("adam.fc1.m1")? {
        None => None,
        Some((_, fc1_m1)) => Some(OptimizerState {
            step,
            fc1_m1,
            fc1_m2: required("adam.fc1.m2")?.1,
            fc2_m1: required("adam.fc2.m1")?.1,
            fc2_m2: required("adam.fc2.m2")?.1,
            filter,
        }),
    };
    let state = TrainerState {
        config,
        weights,
        optimizer,
        history,
        elapsed_seconds,
    };
    state.validate().map_err(|e| format(e.to_string()))?;
    Ok(state)
}

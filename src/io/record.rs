//! The model as a Burn record (`NamedMpkFileRecorder`, full precision, `.mpk`), written atomically.
//!
//! A record holds tensors only; the network's size travels beside it (the run folder's
//! `config.json`) and is needed to load it.

use std::path::{Path, PathBuf};

use burn::{
    module::Module,
    record::{FullPrecisionSettings, NamedMpkFileRecorder},
    tensor::backend::Backend,
};

use super::{commit_temporary, temporary_sibling};
use crate::{
    error::{Error, Result},
    model::{Mlp, MlpConfig},
};

/// The recorder used for model records.
pub type ModelRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Saves `model` to `path` (which should end in `.mpk`) atomically.
///
/// # Errors
/// [`Error::Io`] or [`Error::Format`] if the record cannot be written.
pub fn save_model<B: Backend>(model: &Mlp<B>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    // The recorder appends its own extension to whatever name it is given.
    let temp = temporary_sibling(path);
    let written: PathBuf = temp.with_extension("mpk");
    model
        .clone()
        .save_file(&temp, &ModelRecorder::new())
        .map_err(|e| {
            let _ = std::fs::remove_file(&written);
            Error::Format {
                path: path.to_path_buf(),
                reason: format!("cannot write the model record: {e}"),
            }
        })?;
    commit_temporary(&written, path)
}

/// Loads a model of size `config` from a record written by [`save_model`].
///
/// # Errors
/// [`Error::Format`] if the file is missing, unreadable, or holds tensors of other shapes.
pub fn load_model<B: Backend>(
    path: impl AsRef<Path>,
    config: &MlpConfig,
    device: &B::Device,
) -> Result<Mlp<B>> {
    let path = path.as_ref();
    config.validate()?;
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let model = config
        .init::<B>(0, device)
        .load_file(path.to_path_buf(), &ModelRecorder::new(), device)
        .map_err(|e| format(format!("cannot read the model record: {e}")))?;
    let loaded = model.fc1.weight.shape().dims::<2>();
    let want = [2 * config.p, config.d_hidden];
    if loaded != want || model.fc2.weight.shape().dims::<2>() != [config.d_hidden, config.p] {
        return Err(format(format!(
            "the record's fc1 is {loaded:?}, not {want:?} as the config says"
        )));
    }
    Ok(model)
}

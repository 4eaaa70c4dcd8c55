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
    model::{transpose, Mlp, MlpConfig, MlpRecord, MlpWeights},
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

/// Reads the weights of a record written by [`save_model`] from its bytes, without a config:
/// `p` and `d_hidden` come from the stored shapes (Burn's layout `[2p, d_hidden]`,
/// `[d_hidden, p]`, transposed here to [`MlpWeights`]' PyTorch orientation). `path` only names the
/// source in errors.
///
/// # Errors
/// [`Error::Format`] if the bytes are not such a record, the record has biases, or its shapes do
/// not describe an MLP; also if neither CPU backend (`flex`, `ndarray`) is compiled in.
pub fn weights_from_bytes(bytes: &[u8], path: &Path) -> Result<MlpWeights> {
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    #[cfg(feature = "flex")]
    type Host = burn::backend::Flex;
    #[cfg(all(not(feature = "flex"), feature = "ndarray"))]
    type Host = burn::backend::NdArray;
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        use burn::record::{NamedMpkBytesRecorder, Recorder};
        let device = Default::default();
        // Burn checks neither a record's parameter ids nor that its data fill its shapes: both
        // panic (found by fuzzing), so loading and reading out run under `catch_panics`.
        type Shaped = (Vec<usize>, Vec<f32>);
        let read = || -> Result<(Shaped, Shaped)> {
            let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
                .load::<MlpRecord<Host>>(bytes.to_vec(), &device)
                .map_err(|e| format(format!("not a readable Burn model record: {e}")))?;
            if record.fc1.bias.is_some() || record.fc2.bias.is_some() {
                return Err(format("the record has biases; this MLP has none".into()));
            }
            let host = |tensor: burn::tensor::Tensor<Host, 2>| -> Result<Shaped> {
                let dims = tensor.dims().to_vec();
                let values = tensor
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .map_err(|e| format(format!("cannot read a tensor: {e:?}")))?;
                Ok((dims, values))
            };
            // [2p, d_hidden] and [d_hidden, p]
            Ok((
                host(record.fc1.weight.val())?,
                host(record.fc2.weight.val())?,
            ))
        };
        let ((d1, w1), (d2, w2)) = crate::panics::catch_panics(read)
            .map_err(|_| format("malformed Burn record".into()))??;
        MlpWeights::from_pytorch_shapes(
            &[d1[1], d1[0]],
            transpose(&w1, d1[0], d1[1]),
            &[d2[1], d2[0]],
            transpose(&w2, d2[0], d2[1]),
        )
        .map_err(|e| format(e.to_string()))
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        let _ = bytes;
        Err(format(
            "reading a Burn record needs the `flex` or `ndarray` feature".into(),
        ))
    }
}

//! Weights as `.safetensors` files with PyTorch's key names and orientation
//! (`fc1.weight [d_hidden, 2p]`, `fc2.weight [p, d_hidden]`, float32), the form
//! `torch.nn.Module.load_state_dict(safetensors.torch.load_file(path))` reads.

use std::path::Path;

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use super::{weights_from_state_dict, write_atomic, NamedTensors};
use crate::{
    error::{Error, Result},
    model::MlpWeights,
};

/// Reads weights from a `.safetensors` file; `p` and `d_hidden` come from the shapes.
///
/// # Errors
/// As [`read_file`](super::read_file) (missing, not a regular file, too large); [`Error::Format`]
/// if it is not a safetensors file, a tensor is not a float tensor (F32, F64, F16, BF16), or the tensors do not
/// describe an MLP.
pub fn read_weights(path: impl AsRef<Path>) -> Result<MlpWeights> {
    let path = path.as_ref();
    weights_from_bytes(&super::read_file(path)?, path)
}

/// Parses safetensors `bytes`; `path` only names the source in errors.
///
/// # Errors
/// As [`read_weights`].
pub fn weights_from_bytes(bytes: &[u8], path: &Path) -> Result<MlpWeights> {
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| format(format!("not a valid safetensors file: {e}")))?;
    let mut tensors = NamedTensors::new();
    for (name, view) in file.tensors() {
        let values = match view.dtype() {
            Dtype::F32 => super::f32s_from_le_bytes(view.data()),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            // Half precision, as other tools save models to halve their size: exact in f32.
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => view
                .data()
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(format(format!(
                    "tensor `{name}` has dtype {other:?}; expected a float tensor (F32, F64, F16 or BF16)"
                )))
            }
        };
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    weights_from_state_dict(tensors, path)
}

/// The safetensors encoding of `weights` (float32, PyTorch's keys and orientation).
pub fn weights_to_bytes(weights: &MlpWeights) -> Vec<u8> {
    let (p, h) = (weights.p(), weights.d_hidden());
    let le = super::f32_le_bytes;
    let (fc1, fc2) = (le(weights.fc1()), le(weights.fc2()));
    let views = [
        (
            "fc1.weight",
            TensorView::new(Dtype::F32, vec![h, 2 * p], &fc1).expect("length matches shape"),
        ),
        (
            "fc2.weight",
            TensorView::new(Dtype::F32, vec![p, h], &fc2).expect("length matches shape"),
        ),
    ];
    safetensors::serialize(views, None).expect("two small tensors serialise")
}

/// Writes `weights` to a `.safetensors` file atomically.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn write_weights(path: impl AsRef<Path>, weights: &MlpWeights) -> Result<()> {
    write_atomic(path, &weights_to_bytes(weights))
}

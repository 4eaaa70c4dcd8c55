//! Import of a PyTorch `state_dict` saved with `torch.save(model.state_dict(), path)`, through
//! burn-store's PyTorch reader (zip archives of PyTorch >= 1.6 and legacy pickle files).
//!
//! # Orientation
//! The file holds PyTorch's `fc1.weight [d_hidden, 2p]` and `fc2.weight [p, d_hidden]`, the
//! orientation of [`MlpWeights`]; nothing is transposed here. Values are converted to `f32`
//! exactly when the file holds `f32` (the notebook's case), so an imported model computes the same
//! logits as PyTorch up to float32 rounding of the summation order.

use std::path::Path;

use burn::tensor::DType;
use burn_store::pytorch::PytorchReader;

use super::{weights_from_state_dict, NamedTensors};
use crate::{
    error::{Error, Result},
    model::MlpWeights,
    panics::catch_panics,
};

/// Reads the weights of a `.pth` state dict; `p` and `d_hidden` come from the shapes.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Format`] if it is not a PyTorch file, a
/// tensor cannot be read or is not a float tensor, or the keys and shapes do not describe an MLP
/// (see `io::weights_from_state_dict`).
pub fn read_weights(path: impl AsRef<Path>) -> Result<MlpWeights> {
    let path = path.as_ref();
    // Reading first gives a precise I/O error (missing file, permission) instead of a parse
    // error, and the bytes to check the reader's output against.
    let file = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    // The reader parses untrusted pickles; a panic inside it must not take the program down.
    let read = catch_panics(|| -> Result<NamedTensors> {
        let reader = PytorchReader::new(path)
            .map_err(|e| format(format!("not a readable PyTorch file: {e}")))?;
        let mut tensors = NamedTensors::new();
        for (name, snapshot) in reader.into_tensors() {
            if !matches!(
                snapshot.dtype,
                DType::F32 | DType::F64 | DType::F16 | DType::BF16
            ) {
                return Err(format(format!(
                    "tensor `{name}` has dtype {:?}; expected a float tensor",
                    snapshot.dtype
                )));
            }
            let shape = snapshot.shape.to_vec();
            let data = snapshot
                .to_data()
                .map_err(|e| format(format!("cannot read tensor `{name}`: {e:?}")))?;
            // burn-store 0.21 pads a storage it cannot read in full with zeros (a truncated
            // legacy file loads as a zero model). torch.save stores data uncompressed, so a
            // tensor read intact appears byte for byte in the file.
            if !contains(&file, data.as_bytes()) {
                return Err(format(format!(
                    "the data of tensor `{name}` is missing or truncated"
                )));
            }
            let values: Vec<f32> = data
                .convert::<f32>()
                .to_vec()
                .map_err(|e| format(format!("cannot convert tensor `{name}`: {e:?}")))?;
            if values.len() != shape.iter().product::<usize>() {
                return Err(format(format!(
                    "tensor `{name}` holds {} values for shape {shape:?}",
                    values.len()
                )));
            }
            tensors.insert(name, (shape, values));
        }
        Ok(tensors)
    })
    .unwrap_or_else(|_| Err(format("malformed PyTorch file (the reader failed)".into())))?;
    weights_from_state_dict(read, path)
}

/// Whether `needle` occurs in `haystack` as a contiguous run (an empty needle always does).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == first)
        .any(|(i, _)| haystack[i + 1..].starts_with(rest))
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn contains_finds_runs_anywhere_and_only_whole_ones() {
        assert!(contains(b"abcdef", b"cde"));
        assert!(contains(b"abcdef", b"abcdef"));
        assert!(contains(b"abc", b""));
        assert!(!contains(b"abcdef", b"cdf"));
        assert!(!contains(b"abcdef", b"efg"));
        assert!(!contains(b"", b"a"));
    }
}

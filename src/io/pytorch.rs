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

use super::{read_file, weights_from_state_dict, NamedTensors};
use crate::{
    error::{Error, Result},
    model::MlpWeights,
    panics::catch_panics,
};

/// Reads the weights of a `.pth` state dict; `p` and `d_hidden` come from the shapes.
///
/// # Errors
/// As [`read_file`] (missing, not a regular file, too large); [`Error::Format`] if it is not a
/// PyTorch file, declares more data than it holds, a tensor cannot be read or is not a float
/// tensor, or the keys and shapes do not describe an MLP (see `io::weights_from_state_dict`).
pub fn read_weights(path: impl AsRef<Path>) -> Result<MlpWeights> {
    let path = path.as_ref();
    weights_from_bytes(&read_file(path)?, path)
}

/// The zip entries' declared sizes against the file's: torch.save stores entries uncompressed,
/// so none can hold more bytes than the file, and a header that says otherwise (a damaged file,
/// or a zip bomb) is refused before burn-store allocates what it declares.
fn check_zip_sizes(file: &[u8]) -> std::result::Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(file))
        .map_err(|e| format!("not a readable zip archive: {e}"))?;
    let len = file.len() as u64;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| format!("zip entry {i} is unreadable: {e}"))?;
        if entry.size() > len {
            return Err(format!(
                "zip entry `{}` declares {} bytes, more than the file's {len}",
                entry.name(),
                entry.size()
            ));
        }
    }
    Ok(())
}

/// Parses the `.pth` file `file`, read from `path` (burn-store reads it again from `path`).
pub(crate) fn weights_from_bytes(file: &[u8], path: &Path) -> Result<MlpWeights> {
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    if file.starts_with(b"PK") {
        check_zip_sizes(file).map_err(format)?;
    }
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
            // The bytes the shape declares must be in the file: checked before burn-store
            // allocates (and zero-fills) them.
            let declared = shape
                .iter()
                .try_fold(snapshot.dtype.size(), |bytes: usize, &d| {
                    bytes.checked_mul(d)
                });
            if declared.is_none_or(|bytes| bytes > file.len()) {
                return Err(format(format!(
                    "tensor `{name}` declares shape {shape:?}, more data than the file's {} bytes",
                    file.len()
                )));
            }
            let data = snapshot
                .to_data()
                .map_err(|e| format(format!("cannot read tensor `{name}`: {e:?}")))?;
            // burn-store 0.21 pads a storage it cannot read in full with zeros (a truncated
            // legacy file loads as a zero model). torch.save stores data uncompressed, so a
            // tensor read intact appears byte for byte in the file.
            if !contains(file, data.as_bytes()) {
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

/// Whether `needle` occurs in `haystack` as a contiguous run (an empty needle always does), in
/// linear time (two-way search: runs of zeros cannot make it quadratic).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
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

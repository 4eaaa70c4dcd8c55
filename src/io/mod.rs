//! Files: atomic writes, model weights in safetensors, and Burn records.
//!
//! Every file the library writes goes through [`write_atomic`] (or the same
//! temporary-name-then-rename dance for Burn's recorders), so a crash leaves either the old file or
//! the new one, never half of one.

pub mod record;
pub mod run_folder;
pub mod safetensors;

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use crate::{
    error::{Error, Result},
    model::MlpWeights,
};

/// Writes `bytes` to `path` atomically: into a temporary file in the same directory, flushed to
/// disk, then renamed over `path`.
///
/// # Errors
/// [`Error::Io`] naming the path if any step fails; the temporary file is removed.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let temp = temporary_sibling(path);
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(path, e));
    }
    commit_temporary(&temp, path)
}

/// A hidden name beside `path` for its temporary file, unique to this process.
pub(crate) fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Renames a finished temporary file over `path` and syncs the directory entry.
pub(crate) fn commit_temporary(temp: &Path, path: &Path) -> Result<()> {
    if let Err(e) = fs::rename(temp, path) {
        let _ = fs::remove_file(temp);
        return Err(Error::io(path, e));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename durable; not every platform can open a directory, so this is best effort.
        if let Ok(handle) = File::open(dir) {
            let _ = handle.sync_all();
        }
    }
    Ok(())
}

/// Serialises `value` as pretty JSON and writes it atomically.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn write_json(path: impl AsRef<Path>, value: &impl serde::Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("plain data serialises to JSON");
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// A named tensor read from a file: its shape and values as `f32`.
pub(crate) type NamedTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Turns a PyTorch-style state dict (`fc1.weight`, `fc2.weight`) into [`MlpWeights`], inferring
/// `p` and `d_hidden` from the shapes.
///
/// # Errors
/// [`Error::Format`] naming the problem: a missing key, biases, or unexpected keys;
/// shape mismatches as reported by [`MlpWeights::from_pytorch_shapes`].
pub(crate) fn weights_from_state_dict(
    mut tensors: NamedTensors,
    path: &Path,
) -> Result<MlpWeights> {
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let biases: Vec<&String> = tensors.keys().filter(|k| k.ends_with(".bias")).collect();
    if !biases.is_empty() {
        return Err(format(format!(
            "the model has biases ({biases:?}); this MLP has none"
        )));
    }
    let mut take = |key: &str| {
        tensors.remove(key).ok_or_else(|| {
            format(format!(
                "no tensor named `{key}` (found {:?})",
                tensors.keys().collect::<Vec<_>>()
            ))
        })
    };
    let (fc1_shape, fc1) = take("fc1.weight")?;
    let (fc2_shape, fc2) = take("fc2.weight")?;
    if !tensors.is_empty() {
        return Err(format(format!(
            "unexpected tensors {:?}; expected only fc1.weight and fc2.weight",
            tensors.keys().collect::<Vec<_>>()
        )));
    }
    MlpWeights::from_pytorch_shapes(&fc1_shape, fc1, &fc2_shape, fc2).map_err(|e| match e {
        Error::Shape(reason) => format(reason),
        other => format(other.to_string()),
    })
}

//! Files: atomic writes, model weights in safetensors, and Burn records.
//!
//! Every file the library writes goes through [`write_atomic`] (or the same
//! temporary-name-then-rename dance for Burn's recorders), so a crash leaves either the old file or
//! the new one, never half of one.

pub mod checkpoint;
pub mod pytorch;
pub mod record;
pub mod safetensors;
pub mod snapshots;

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

/// The kinds of weight file [`load_weights`] reads, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `torch.save` output: a zip archive (`PK\x03\x04`, PyTorch >= 1.6) or a legacy pickle
    /// (`\x80` followed by a protocol number 2 to 5).
    Pytorch,
    /// safetensors: an 8-byte little-endian header length, then a JSON header starting with `{`.
    Safetensors,
    /// Burn's `NamedMpkFileRecorder` record: a MessagePack map holding `metadata` and `item`.
    BurnRecord,
}

impl WeightFormat {
    /// Recognises a weight file by its content alone (the extension is not consulted).
    /// `None` if the bytes start like none of the supported formats.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"PK\x03\x04") {
            return Some(Self::Pytorch);
        }
        if bytes.len() >= 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]) {
            return Some(Self::Pytorch);
        }
        if bytes.len() >= 9 {
            let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
            if n >= 2 && n <= (bytes.len() - 8) as u64 && bytes[8] == b'{' {
                return Some(Self::Safetensors);
            }
        }
        // A MessagePack fixmap (0x80..=0x8f) or map16/map32 whose first key is "metadata" or
        // "item", as Burn's named recorder writes its `BurnRecord`.
        let head = &bytes[..bytes.len().min(32)];
        let first_is_map = matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf));
        let names_key = |key: &[u8]| head.windows(key.len()).any(|w| w == key);
        if first_is_map && (names_key(b"metadata") || names_key(b"item")) {
            return Some(Self::BurnRecord);
        }
        None
    }
}

/// Reads the whole file at `path`, after checking that it is a regular file (not a directory, a
/// device such as `/dev/zero`, or a pipe that would never end) and that this machine has memory
/// for it and the copies a parser makes of it (three times its size).
///
/// # Errors
/// [`Error::Io`] if it cannot be read (missing, no permission); [`Error::Format`] if it is not a
/// regular file or is empty; [`Error::InsufficientMemory`] if it is too large for the machine.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let format = |reason: &str| Error::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(format("is a directory, not a file"));
    }
    if !meta.is_file() {
        return Err(format(
            "is not a regular file (a device, a pipe or a socket)",
        ));
    }
    if meta.len() == 0 {
        return Err(format("the file is empty"));
    }
    crate::memory::check(
        &format!("reading {}", path.display()),
        meta.len().saturating_mul(3),
    )?;
    fs::read(path).map_err(|e| Error::io(path, e))
}

/// Reads model weights from `path`, whatever its format: a PyTorch state dict (`.pth`), a
/// `.safetensors` file (a training checkpoint's weights too), or a Burn record written by
/// [`record::save_model`]. The format is chosen by content ([`WeightFormat::sniff`]), not by
/// extension; `p` and `d_hidden` come from the shapes.
///
/// # Errors
/// As [`read_file`] and [`weights_from_bytes`].
pub fn load_weights(path: impl AsRef<Path>) -> Result<MlpWeights> {
    let path = path.as_ref();
    weights_from_bytes(&read_file(path)?, path)
}

/// The weights in a weight file's `bytes` (see [`load_weights`]); `path` only names the source
/// in errors.
///
/// # Errors
/// [`Error::Format`] if the bytes are of no supported format, truncated or corrupt, declare
/// more data than they hold, hold non-finite weights, or hold tensors that do not describe an
/// MLP (the message names the key or shape at fault).
pub fn weights_from_bytes(bytes: &[u8], path: &Path) -> Result<MlpWeights> {
    let format = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let weights = match WeightFormat::sniff(bytes) {
        Some(WeightFormat::Pytorch) => pytorch::weights_from_bytes(bytes, path),
        Some(WeightFormat::Safetensors) if checkpoint::is_trainer_state(bytes) => {
            Ok(checkpoint::state_from_bytes(bytes, path)?.weights)
        }
        Some(WeightFormat::Safetensors) => safetensors::weights_from_bytes(bytes, path),
        Some(WeightFormat::BurnRecord) => record::weights_from_bytes(bytes, path),
        None => Err(format(
            "not a PyTorch state dict, a safetensors file or a Burn record (unrecognised content)"
                .into(),
        )),
    }?;
    let bad = weights
        .fc1()
        .iter()
        .chain(weights.fc2())
        .filter(|w| !w.is_finite())
        .count();
    if bad > 0 {
        return Err(format(format!(
            "{bad} of the weights are NaN or infinite (a diverged run?); nothing to analyse"
        )));
    }
    Ok(weights)
}

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

/// `values` as little-endian bytes, as safetensors stores F32 tensors.
pub(crate) fn f32_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian F32 `bytes` as values (a trailing partial value is ignored; safetensors has
/// checked the length against the shape).
pub(crate) fn f32s_from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// The CSV text of `rows`: a header from the row type's field names, then one line per row
/// (the `csv` crate; a `None` field is empty).
pub fn csv_text<T: serde::Serialize>(rows: &[T]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).expect("plain data serialises to CSV");
    }
    let bytes = writer.into_inner().expect("writing to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of plain data is UTF-8")
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
                "no tensor named `{key}` (found {})",
                key_list(&tensors)
            ))
        })
    };
    let (fc1_shape, fc1) = take("fc1.weight")?;
    let (fc2_shape, fc2) = take("fc2.weight")?;
    if !tensors.is_empty() {
        return Err(format(format!(
            "unexpected tensors {}; expected only fc1.weight and fc2.weight",
            key_list(&tensors)
        )));
    }
    MlpWeights::from_pytorch_shapes(&fc1_shape, fc1, &fc2_shape, fc2).map_err(|e| match e {
        Error::Shape(reason) => format(reason),
        other => format(other.to_string()),
    })
}

/// The first keys of `tensors`, quoted, with a count of the rest (a model from another tool
/// may hold thousands).
fn key_list(tensors: &NamedTensors) -> String {
    const SHOWN: usize = 8;
    let mut text = tensors
        .keys()
        .take(SHOWN)
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if tensors.len() > SHOWN {
        text += &format!(" and {} more", tensors.len() - SHOWN);
    }
    if text.is_empty() {
        text = "none".into();
    }
    text
}

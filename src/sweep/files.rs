//! `sweep.csv` and `sweep.json`, written atomically, and the merge of shards' results.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{Grid, ModelResult, Shard, SweepMode};
use crate::{
    error::{Error, Result},
    io::{safetensors, write_atomic, write_json},
    model::MlpWeights,
};

/// Where a sweep folder keeps the final weights of model `index` (`sweep --save-models`):
/// `models/{index:06}.safetensors`, PyTorch's keys, readable by `analyze --checkpoint` and
/// `io::load_weights`. `index` is the model's row in `sweep.csv`.
pub fn model_file(dir: &Path, index: usize) -> std::path::PathBuf {
    dir.join("models").join(format!("{index:06}.safetensors"))
}

/// Removes `dir/models/` (an earlier sweep's models, which the new `sweep.csv` would not
/// describe). Nothing happens if there is none.
///
/// # Errors
/// [`Error::Io`] if it exists and cannot be removed.
pub fn clear_models(dir: &Path) -> Result<()> {
    let models = dir.join("models");
    match std::fs::remove_dir_all(&models) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&models, e)),
        _ => Ok(()),
    }
}

/// Writes each model's weights to [`model_file`] (atomically), `results[i]` naming `models[i]`.
///
/// # Errors
/// [`Error::Io`] if a file cannot be written.
///
/// # Panics
/// If the two lists differ in length.
pub fn write_models(dir: &Path, results: &[ModelResult], models: &[MlpWeights]) -> Result<()> {
    assert_eq!(results.len(), models.len(), "one model per result");
    let folder = dir.join("models");
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    for (result, weights) in results.iter().zip(models) {
        safetensors::write_weights(model_file(dir, result.index), weights)?;
    }
    Ok(())
}

/// The content of `sweep.json`: what ran, where, how long, and every model's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    /// The whole grid (every shard of one sweep holds the same).
    pub grid: Grid,
    /// Shards whose results this file holds, sorted (one for a shard's own file, all after a
    /// merge).
    pub shards: Vec<Shard>,
    /// Backend name.
    pub backend: String,
    /// Batched or one model after another.
    pub mode: SweepMode,
    /// Number of models in `results`.
    pub models: usize,
    /// Seconds spent training (summed over shards after a merge).
    pub train_seconds: f64,
    /// One row per model, in grid order.
    pub results: Vec<ModelResult>,
}

/// `sweep.csv`: a header and one row per model, [`ModelResult`]'s fields in order;
/// `grok_epoch` is empty for a model that never reached val_acc >= 0.99.
fn csv(results: &[ModelResult]) -> String {
    crate::io::csv_text(results)
}

/// Writes `sweep.csv`, `sweep.json` and, when the results allow, `phase_diagram.svg` and
/// `grok_epochs.svg` into `dir` (created if needed), each atomically.
///
/// # Errors
/// [`Error::Io`] if a file cannot be written.
pub fn write_sweep(dir: &Path, sweep: &SweepFile) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic(dir.join("sweep.csv"), csv(&sweep.results).as_bytes())?;
    write_json(dir.join("sweep.json"), sweep)?;
    if let Some(svg) = super::phase_diagram_svg(&sweep.grid, &sweep.results) {
        write_atomic(dir.join("phase_diagram.svg"), svg.as_bytes())?;
    }
    if let Some(svg) = super::grok_epoch_distribution_svg(&sweep.results) {
        write_atomic(dir.join("grok_epochs.svg"), svg.as_bytes())?;
    }
    Ok(())
}

/// Creates `dir` (and its parents) and checks that a file can be written in it, before any
/// training: a path that is a file, read-only or under `/proc` fails here, not after the sweep.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn prepare_folder(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = crate::io::temporary_sibling(&dir.join("sweep.json"));
    std::fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

/// Checks a sweep's output folder before anything runs: a path, and not a folder holding a
/// sweep unless `force`.
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty path or a folder holding a sweep without `force`.
pub fn check_out(dir: &Path, force: bool) -> Result<()> {
    let refuse = |reason| Error::InvalidConfig {
        field: "out",
        value: dir.display().to_string(),
        reason,
    };
    if dir.as_os_str().is_empty() {
        return Err(refuse("an empty path"));
    }
    if dir.join("sweep.json").exists() && !force {
        return Err(refuse(
            "it already holds a sweep; pass --force to overwrite it",
        ));
    }
    Ok(())
}

/// Joins the sweep folders `parts` (shards of one sweep) into folder `out`: their results
/// ([`merge_sweeps`]) and their kept models (`--save-models`), as if the sweep had run
/// unsharded. Every part is read before `out` is touched; an earlier sweep's models in `out`
/// go. Returns the merged file.
///
/// # Errors
/// As [`check_out`], [`read_sweep`] and [`merge_sweeps`]; [`Error::InvalidConfig`] if `out` is
/// one of the parts; [`Error::Io`] if a file cannot be copied or written.
pub fn merge_folders(parts: &[PathBuf], out: &Path, force: bool) -> Result<SweepFile> {
    check_out(out, force)?;
    let files = parts
        .iter()
        .map(|dir| read_sweep(&dir.join("sweep.json")))
        .collect::<Result<Vec<_>>>()?;
    let merged = merge_sweeps(&files)?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(part) = parts.iter().find(|dir| same(dir, out)) {
        return Err(Error::InvalidConfig {
            field: "out",
            value: part.display().to_string(),
            reason: "it is one of the merged folders; merge into a new folder",
        });
    }
    prepare_folder(out)?;
    clear_models(out)?;
    for (dir, part) in parts.iter().zip(&files) {
        for result in &part.results {
            let from = model_file(dir, result.index);
            if from.exists() {
                let to = model_file(out, result.index);
                let folder = to.parent().expect("models/");
                std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
                write_atomic(&to, &crate::io::read_file(&from)?)?;
            }
        }
    }
    write_sweep(out, &merged)?;
    Ok(merged)
}

/// Reads a `sweep.json`.
///
/// # Errors
/// As [`crate::io::read_file`] (missing, not a regular file, too large for memory);
/// [`Error::Format`] if it is not a sweep file.
pub fn read_sweep(path: &Path) -> Result<SweepFile> {
    let bytes = crate::io::read_file(path)?;
    serde_json::from_slice(&bytes)
        .and_then(|mut value: serde_json::Value| {
            // A sweep from before operations existed: its base config means addition.
            if let Some(base) = value.pointer_mut("/grid/base") {
                crate::train::upgrade_config_json(base);
            }
            serde_json::from_value(value)
        })
        .map_err(|e| Error::Format {
            path: path.to_path_buf(),
            reason: format!("not a sweep.json: {e}"),
        })
}

/// Joins the results of several shards of one sweep into one file, as if it had run unsharded:
/// results in grid order, shards listed, training seconds summed.
///
/// # Errors
/// [`Error::InvalidConfig`] if there is nothing to merge, the files come from different grids,
/// backends or modes, or two files hold the same model.
pub fn merge_sweeps(parts: &[SweepFile]) -> Result<SweepFile> {
    let bad = |value: String, reason: &'static str| Error::InvalidConfig {
        field: "merge",
        value,
        reason,
    };
    let first = parts
        .first()
        .ok_or_else(|| bad("[]".into(), "no sweep files to merge"))?;
    let mut results = BTreeMap::new();
    let mut shards = Vec::new();
    for part in parts {
        if part.grid != first.grid {
            return Err(bad(
                format!("{:?}", part.shards),
                "shards of different grids",
            ));
        }
        if (part.backend.as_str(), part.mode) != (first.backend.as_str(), first.mode) {
            return Err(bad(
                part.backend.clone(),
                "shards of different backends or modes",
            ));
        }
        shards.extend(part.shards.iter().copied());
        for result in &part.results {
            if results.insert(result.index, result.clone()).is_some() {
                return Err(bad(
                    format!("model {}", result.index),
                    "a model appears in two shards",
                ));
            }
        }
    }
    shards.sort_by_key(|s| (s.count, s.index));
    shards.dedup();
    let results: Vec<ModelResult> = results.into_values().collect();
    Ok(SweepFile {
        grid: first.grid.clone(),
        shards,
        backend: first.backend.clone(),
        mode: first.mode,
        models: results.len(),
        train_seconds: parts.iter().map(|p| p.train_seconds).sum(),
        results,
    })
}

//! The run folder a training or analysis run writes: `config.json`, `metrics.csv`,
//! `summary.json`, `neurons.json`, `model.mpk` (Burn record) and `model.safetensors` (PyTorch
//! keys). Every file is written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Summary;
use crate::{
    analysis::{fourier::NeuronFit, WeightAnalysis},
    error::{Error, Result},
    io::{record, safetensors, write_atomic, write_json},
    model::Mlp,
    train::{History, TrainingConfig},
};

/// The columns of `metrics.csv`: [`EpochMetrics`](crate::EpochMetrics)'s fields.
pub const METRICS_HEADER: &str =
    "epoch,train_loss,val_loss,train_acc,val_acc,seconds,softmax_collapse,weight_norm";

/// `neurons.json`: per-neuron cosine fits in neuron order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronsFile {
    /// The modulus.
    pub p: usize,
    /// The coordinates of the fits ([`Basis::name`](crate::analysis::basis::Basis::name)).
    #[serde(default = "identity")]
    pub basis: String,
    /// The period of those coordinates: `p`, or `p - 1` under a discrete log.
    #[serde(default)]
    pub m: Option<usize>,
    /// The hidden width.
    pub hidden: usize,
    /// One entry per neuron.
    pub neurons: Vec<NeuronFit>,
}

fn identity() -> String {
    "identity".into()
}

/// A folder holding one run's files.
#[derive(Debug, Clone)]
pub struct RunFolder {
    path: PathBuf,
}

impl RunFolder {
    /// The files a run or an analysis writes, `summary.json` (the mark of a finished run) first:
    /// what [`RunFolder::clear`] removes before a new run starts, so no file of the old run is
    /// left beside the new one.
    pub const RUN_FILES: [&'static str; 11] = [
        "summary.json",
        crate::io::checkpoint::FILE_NAME,
        "config.json",
        "metrics.csv",
        "neurons.json",
        "model.mpk",
        "model.safetensors",
        "analysis.json",
        "report.html",
        crate::io::snapshots::FILE_NAME,
        "progress.json",
    ];

    /// Creates the folder at `path` for a new run or analysis. A folder that already holds a run
    /// (finished: `summary.json`; started: `config.json` or a checkpoint) is refused unless
    /// `force` is set. Nothing is removed here: a new training run clears the old one's files
    /// with [`RunFolder::clear`].
    ///
    /// # Errors
    /// [`Error::Io`] if the folder cannot be created or is a file; [`Error::InvalidConfig`] if
    /// it holds a run and `force` is false.
    pub fn create(path: impl AsRef<Path>, force: bool) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        Self::check(&path, force)?;
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self { path })
    }

    /// What [`RunFolder::create`] would refuse, checked without touching the folder (before
    /// long work whose results go there).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `path` holds a run and `force` is false.
    pub fn check(path: &Path, force: bool) -> Result<()> {
        if Self::holds_run(path) && !force {
            return Err(Error::InvalidConfig {
                field: "out",
                value: path.display().to_string(),
                reason: "it already holds a run; choose another folder, pass --force to replace \
                         it, or --resume an unfinished one",
            });
        }
        Ok(())
    }

    /// Whether the folder at `path` holds a run, finished (`summary.json`) or started
    /// (`config.json` or a checkpoint).
    pub fn holds_run(path: &Path) -> bool {
        Self::RUN_FILES[..3].iter().any(|f| path.join(f).exists())
    }

    /// Removes an earlier run's files ([`RunFolder::RUN_FILES`], `summary.json` first, and the
    /// SVG figures in `figures/`), so that none is left beside the new run's (`grok --force` on a
    /// folder that [holds a run](RunFolder::holds_run)). Other files are left alone.
    ///
    /// # Errors
    /// [`Error::Io`] if one cannot be removed.
    pub fn clear(&self) -> Result<()> {
        let figures = self.file("figures");
        let svgs: Vec<PathBuf> = std::fs::read_dir(&figures)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.extension().is_some_and(|x| x == "svg"))
                    .collect()
            })
            .unwrap_or_default();
        let names = Self::RUN_FILES.iter().map(|name| self.file(name));
        for file in names.chain(svgs) {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&file, e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The folder of an unfinished run, to go on writing into (`grok --resume`).
    ///
    /// # Errors
    /// [`Error::Io`] if it is not a folder.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.is_dir() {
            return Err(Error::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such run folder"),
            ));
        }
        Ok(Self { path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `config.json`, readable with `TrainingConfig::load`.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn write_config(&self, config: &TrainingConfig) -> Result<()> {
        write_json(self.file("config.json"), config)
    }

    /// Writes `metrics.csv`: [`METRICS_HEADER`] and one row per epoch.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn write_metrics(&self, history: &History) -> Result<()> {
        write_atomic(self.file("metrics.csv"), metrics_csv(history).as_bytes())
    }

    /// Writes `summary.json`.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn write_summary(&self, summary: &Summary) -> Result<()> {
        write_json(self.file("summary.json"), summary)
    }

    /// Writes `neurons.json`: the fits of an analysis, in its coordinates.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn write_neurons(&self, found: &WeightAnalysis) -> Result<()> {
        let file = NeuronsFile {
            p: found.basis.p(),
            basis: found.basis.name(),
            m: Some(found.basis.m()),
            hidden: found.fits.len(),
            neurons: found.fits.clone(),
        };
        write_json(self.file("neurons.json"), &file)
    }

    /// Writes the model as `model.mpk` (Burn record) and `model.safetensors` (PyTorch keys).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Format`] if a file cannot be written.
    pub fn write_model<B: burn::tensor::backend::Backend>(&self, model: &Mlp<B>) -> Result<()> {
        record::save_model(model, self.file("model.mpk"))?;
        safetensors::write_weights(self.file("model.safetensors"), &model.weights())
    }
}

/// The CSV text of a history: [`METRICS_HEADER`] and one row per epoch
/// ([`EpochMetrics`](crate::EpochMetrics)'s fields, in order), then the history's own columns
/// ([`History::record`]; empty where a value was not recorded).
pub fn metrics_csv(history: &History) -> String {
    let text = crate::io::csv_text(&history.epochs);
    if history.columns.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len() * 2);
    for (i, line) in text.lines().enumerate() {
        out.push_str(line);
        for (name, values) in &history.columns {
            out.push(',');
            if i == 0 {
                // Names are checked by `History::record`: letters, digits and `_`.
                out.push_str(name);
            } else if let Some(v) = values.get(i - 1).filter(|v| !v.is_nan()) {
                out.push_str(&v.to_string());
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochMetrics;

    #[test]
    fn metrics_csv_has_the_documented_columns_and_reads_back() {
        let m = |epoch, val_acc| EpochMetrics {
            epoch,
            train_loss: 4.7,
            val_loss: 1e-7,
            train_acc: 0.25,
            val_acc,
            seconds: 0.125,
            softmax_collapse: 0.75,
            weight_norm: 12.5,
        };
        let mut history = History {
            epochs: vec![m(0, 0.5), m(1, 0.9921875), m(2, 1.0)],
            columns: Vec::new(),
        };
        let text = metrics_csv(&history);
        assert_eq!(text.lines().next(), Some(METRICS_HEADER));
        assert_eq!(text.lines().count(), 4);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<EpochMetrics> = reader.deserialize().map(|row| row.unwrap()).collect();
        assert_eq!(back, history.epochs);
        // Columns of the observer's own, recorded at some epochs only.
        history.epochs.truncate(1);
        history.record("norm", 2.5).unwrap();
        history.epochs.push(m(1, 0.9921875));
        history.epochs.push(m(2, 1.0));
        history.record("lr", 1e-3).unwrap();
        assert!(history.record("val_acc", 1.0).is_err());
        assert!(history.record("a,b", 1.0).is_err());
        let text = metrics_csv(&history);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{METRICS_HEADER},norm,lr"));
        assert!(lines[1].ends_with(",2.5,"), "{}", lines[1]);
        assert!(lines[2].ends_with(",,"), "{}", lines[2]);
        assert!(lines[3].ends_with(",,0.001"), "{}", lines[3]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<EpochMetrics> = reader.deserialize().map(|row| row.unwrap()).collect();
        assert_eq!(back, history.epochs);
    }
}

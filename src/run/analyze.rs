//! The analysis of a saved model, without training, into a folder: what `analyze` does.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use super::{RunFolder, Summary};
use crate::{
    analysis::{
        self,
        llc::{self, LlcConfig, LlcEstimate, LlcRecord, LlcSnapshots},
        progress::{self, progress_measures, ProgressMeasures},
        WeightAnalysis,
    },
    data::ModularDataset,
    device::BackendKind,
    error::{Error, Result},
    io::{self, checkpoint, snapshots::Snapshots},
    model::MlpWeights,
    operation::Operation,
    report::{self, ReportConfig},
    step::Method,
    TrainingConfig,
};

/// A saved model to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedModel {
    /// A weight file: a PyTorch state dict (`.pth`), a `.safetensors` file, a Burn record
    /// (`model.mpk`), a training checkpoint or a sweep's kept model, recognised by content
    /// ([`io::load_weights`]).
    Weights(PathBuf),
    /// A run's snapshots (`snapshots.safetensors`): their progress measures, and the last
    /// snapshot's analysis.
    Snapshots(PathBuf),
}

/// What [`analyze_saved`] does besides the fits and accuracies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    /// The operation the model was trained on; a checkpoint or a snapshot file records its
    /// own, which this must then agree with. `None`: the recorded one, else addition.
    pub operation: Option<Operation>,
    /// Key frequencies for the progress measures of snapshots (`None`: those of the last
    /// snapshot).
    pub key_frequencies: Option<Vec<usize>>,
    /// Also write the report (`report.html`, `analysis.json`, `figures/`).
    pub report: bool,
    /// Write into a folder that already holds a run or an analysis (only the files this writes
    /// are replaced).
    pub force: bool,
    /// The seed of the split of a model file that records none (a state dict, a `.safetensors`
    /// file, a Burn record; `None`: the notebook's, 1337); a checkpoint or a snapshot file
    /// records its own, which this must then agree with. Only the LLC reads the split.
    pub seed: Option<u64>,
    /// The training fraction of that split (`None`: the notebook's, 0.8), likewise.
    pub train_fraction: Option<f64>,
    /// Estimate the local learning coefficient ([`llc`]) at the model (`llc.json`,
    /// `llc_trace.svg`), or at every snapshot (`progress.json`'s `llc`, `llc_snapshots.json`).
    pub llc: Option<LlcConfig>,
    /// The backend the LLC's chains run on.
    pub backend: BackendKind,
}

/// What [`analyze_saved`] found and wrote.
#[derive(Debug)]
pub struct Analyzed {
    /// The folder written.
    pub folder: RunFolder,
    /// The model's weights (the last snapshot's, for snapshots).
    pub weights: MlpWeights,
    /// Its data set: the run's split where the file records it, else any (the analyses of all
    /// pairs do not depend on it).
    pub data: ModularDataset,
    /// The fits and accuracies (`neurons.json`).
    pub analysis: WeightAnalysis,
    /// `summary.json`.
    pub summary: Summary,
    /// The progress measures (`progress.json`), for snapshots.
    pub progress: Option<ProgressMeasures>,
    /// Seconds spent on the progress measures.
    pub progress_seconds: f64,
    /// The LLC at the model, or at each snapshot, with [`AnalyzeOptions::llc`].
    pub llc: Option<Vec<LlcEstimate>>,
    /// Seconds spent sampling the LLC.
    pub llc_seconds: f64,
    /// Whether the file recorded no operation and none was given, so addition was assumed.
    pub assumed_addition: bool,
}

/// The model, its data set, and its snapshots, read and checked before anything is written.
struct Loaded {
    weights: MlpWeights,
    data: ModularDataset,
    /// The training configuration the file records (a checkpoint's, the snapshots').
    recorded: Option<TrainingConfig>,
    snapshots: Option<Snapshots>,
    assumed_addition: bool,
}

/// `given`, checked against the operation a file records.
fn agree(given: Option<Operation>, recorded: Operation, what: &str) -> Result<Operation> {
    match given {
        Some(given) if given != recorded => Err(Error::InvalidOperation {
            operation: given.name().into(),
            p: 0,
            reason: format!("the {what} was trained on {recorded}"),
        }),
        _ => Ok(recorded),
    }
}

/// The recorded split of `config`, checked against the seed and training fraction given.
fn agree_split(options: &AnalyzeOptions, config: &TrainingConfig) -> Result<()> {
    let seed = options.seed.filter(|&s| s != config.seed);
    let fraction = options
        .train_fraction
        .filter(|&f| f.to_bits() != config.train_fraction.to_bits());
    let (field, value) = match (seed, fraction) {
        (Some(seed), _) => ("seed", seed.to_string()),
        (None, Some(fraction)) => ("train-fraction", fraction.to_string()),
        (None, None) => return Ok(()),
    };
    Err(Error::InvalidConfig {
        field,
        value,
        reason: "the file records its run's own split; leave the flag out",
    })
}

fn load(model: &SavedModel, options: &AnalyzeOptions) -> Result<Loaded> {
    let path = match model {
        SavedModel::Snapshots(path) => {
            let snapshots = Snapshots::load(path)?;
            let config = snapshots.config().clone();
            let operation = agree(options.operation, config.operation, "snapshot file")?;
            agree_split(options, &config)?;
            let last = snapshots
                .len()
                .checked_sub(1)
                .ok_or_else(|| Error::Format {
                    path: path.clone(),
                    reason: "the snapshot file holds no snapshot".into(),
                })?;
            let data = ModularDataset::with_operation(
                config.model.p,
                operation,
                config.train_fraction,
                config.seed,
            )?;
            return Ok(Loaded {
                weights: snapshots.weights(last),
                data,
                recorded: Some(config),
                snapshots: Some(snapshots),
                assumed_addition: false,
            });
        }
        SavedModel::Weights(path) => path,
    };
    if options.key_frequencies.is_some() {
        return Err(Error::InvalidConfig {
            field: "key-frequencies",
            value: path.display().to_string(),
            reason: "key frequencies are for the progress measures of snapshots",
        });
    }
    let bytes = io::read_file(path)?;
    let weights = io::weights_from_bytes(&bytes, path)?;
    let (p, hidden) = (weights.p(), weights.d_hidden());
    crate::memory::check(
        &format!("analysing p = {p} with {hidden} hidden units"),
        analysis::memory_estimate(p, hidden),
    )?;
    // A training checkpoint records its configuration: its own operation and split.
    let recorded = checkpoint::is_trainer_state(&bytes)
        .then(|| checkpoint::state_from_bytes(&bytes, path))
        .transpose()?
        .map(|state| state.config);
    let (data, assumed_addition) = match &recorded {
        Some(c) => {
            let operation = agree(options.operation, c.operation, "checkpoint")?;
            agree_split(options, c)?;
            let data = ModularDataset::with_operation(p, operation, c.train_fraction, c.seed)?;
            (data, false)
        }
        // The notebook's split unless told otherwise (the analyses of the full grid do not
        // depend on it; the LLC samples on its training rows).
        None => {
            let operation = options.operation.unwrap_or_default();
            let notebook = TrainingConfig::new();
            let data = ModularDataset::with_operation(
                p,
                operation,
                options.train_fraction.unwrap_or(notebook.train_fraction),
                options.seed.unwrap_or(notebook.seed),
            )?;
            (data, options.operation.is_none())
        }
    };
    Ok(Loaded {
        weights,
        data,
        recorded,
        snapshots: None,
        assumed_addition,
    })
}

/// Analyses a saved model as `grok` analyses a trained one, into folder `out`: the fits
/// (`neurons.json`) and accuracies (`summary.json`); for snapshots, their progress measures
/// (`progress.json`); with [`AnalyzeOptions::report`], the report. Everything is read and
/// checked, memory included, before the folder is touched: a bad file leaves no folder.
///
/// # Errors
/// The file's errors ([`io::load_weights`], [`Snapshots::load`]); [`Error::InvalidOperation`]
/// for an operation that disagrees with the recorded one; [`Error::InvalidConfig`] for key
/// frequencies without snapshots, or a folder that holds a run without
/// [`AnalyzeOptions::force`]; [`Error::Analysis`] for a report of fewer than 4 neurons or a key
/// frequency out of range; [`Error::InsufficientMemory`]; [`Error::Io`].
///
/// # Example
/// ```
/// use grokking::{io::safetensors, run::{analyze_saved, AnalyzeOptions, SavedModel}, MlpConfig};
///
/// let dir = std::env::temp_dir().join(format!("grokking-analyze-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let file = dir.join("model.safetensors");
/// safetensors::write_weights(&file, &MlpConfig::new().with_p(7).with_d_hidden(6).init_weights(1))?;
/// let found = analyze_saved(&SavedModel::Weights(file), dir.join("out"), &AnalyzeOptions::default())?;
/// assert_eq!((found.summary.p, found.summary.hidden), (7, 6));
/// assert!(dir.join("out/neurons.json").exists());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), grokking::Error>(())
/// ```
pub fn analyze_saved(
    model: &SavedModel,
    out: impl AsRef<Path>,
    options: &AnalyzeOptions,
) -> Result<Analyzed> {
    analyze_saved_with(model, out, options, &mut |_| {})
}

/// [`analyze_saved`], calling `llc_progress` with the SGLD steps done (of
/// [`LlcConfig::steps`]) as the LLC is sampled.
///
/// # Errors
/// As [`analyze_saved`]; [`llc::estimate_llc_on`]'s.
pub fn analyze_saved_with(
    model: &SavedModel,
    out: impl AsRef<Path>,
    options: &AnalyzeOptions,
    llc_progress: &mut dyn FnMut(usize),
) -> Result<Analyzed> {
    let Loaded {
        weights,
        data,
        recorded,
        snapshots,
        assumed_addition,
    } = load(model, options)?;
    RunFolder::check(out.as_ref(), options.force)?;
    // The sampler's settings with the rows it samples on, checked before any long work.
    let llc_job = match &options.llc {
        Some(config) => {
            let rows = llc::training_rows(&data, recorded.as_ref())?;
            config.validate(rows.len())?;
            Some((config, rows))
        }
        None => None,
    };
    let (p, hidden) = (weights.p(), weights.d_hidden());
    if options.report && hidden < 4 {
        return Err(Error::Analysis {
            what: "the report",
            reason: format!(
                "it needs at least 4 hidden neurons (for t-SNE); the model has {hidden}"
            ),
        });
    }
    let progress_bytes = if snapshots.is_some() {
        progress::memory_estimate(p)
    } else {
        0
    };
    let report_bytes = if options.report {
        report::memory_estimate(p, hidden)
    } else {
        0
    };
    let points = snapshots.as_ref().map_or(1, Snapshots::len);
    let llc_bytes = llc_job.as_ref().map_or(0, |(config, rows)| {
        llc::memory_estimate((p, hidden), rows.len(), points, config)
    });
    crate::memory::check(
        &format!("the analyses for p = {p} and {hidden} hidden units"),
        progress_bytes
            .saturating_add(report_bytes)
            .saturating_add(llc_bytes),
    )?;
    let (mut progress, progress_seconds) = match &snapshots {
        Some(snapshots) => {
            let start = Instant::now();
            let measures = progress_measures(snapshots, options.key_frequencies.as_deref())?;
            (Some(measures), start.elapsed().as_secs_f64())
        }
        None => (None, 0.0),
    };
    let (llc, llc_seconds) = match &llc_job {
        Some((config, rows)) => {
            let centres: Vec<MlpWeights> = match &snapshots {
                Some(s) => (0..s.len()).map(|i| s.weights(i)).collect(),
                None => vec![weights.clone()],
            };
            let method = recorded.as_ref().map_or_else(Method::default, |c| c.method);
            let start = Instant::now();
            let found = llc::estimate_llc_on(
                options.backend,
                &centres,
                rows,
                &method,
                config,
                llc_progress,
            )?;
            (Some(found), start.elapsed().as_secs_f64())
        }
        None => (None, 0.0),
    };
    if let (Some(measures), Some(found)) = (&mut progress, &llc) {
        measures.llc = found.iter().map(|e| e.llc_mean).collect();
        measures.llc_std = found.iter().map(|e| e.llc_std).collect();
    }
    // Drawn before the folder is touched: a figure that fails leaves no half-written folder.
    let llc_trace = match (&llc, &snapshots) {
        (Some(found), None) => Some(report::llc_trace_svg(&found[0])?),
        _ => None,
    };
    let found = analysis::analyse_weights(&weights, &data);
    let folder = RunFolder::create(out, options.force)?;
    folder.write_neurons(&found)?;
    let summary = Summary::of_model(data.operation(), &found);
    folder.write_summary(&summary)?;
    if let Some(measures) = &progress {
        measures.write(folder.file("progress.json"))?;
    }
    if let (Some(config), Some(found)) = (&options.llc, &llc) {
        let backend = options.backend.name().to_owned();
        match &snapshots {
            Some(s) => io::write_json(
                folder.file("llc_snapshots.json"),
                &LlcSnapshots {
                    config: *config,
                    backend,
                    seconds: llc_seconds,
                    epochs: s.epochs().to_vec(),
                    estimates: found.clone(),
                },
            )?,
            None => {
                io::write_json(
                    folder.file("llc.json"),
                    &LlcRecord {
                        config: *config,
                        backend,
                        seconds: llc_seconds,
                        estimate: found[0].clone(),
                    },
                )?;
                if let Some(svg) = &llc_trace {
                    io::write_atomic(folder.file("llc_trace.svg"), svg.as_bytes())?;
                }
            }
        }
    }
    if options.report {
        let config = ReportConfig {
            heatmap_neurons: (0..hidden.min(3)).collect(),
            ..Default::default()
        };
        report::write_report(
            folder.path(),
            &weights,
            &data,
            None,
            progress.as_ref(),
            &config,
        )?;
    }
    Ok(Analyzed {
        folder,
        weights,
        data,
        analysis: found,
        summary,
        progress,
        progress_seconds,
        llc,
        llc_seconds,
        assumed_addition,
    })
}

//! A training run in a folder, as a library object: [`Run`] starts one from a
//! [`TrainingConfig`] (or resumes one from its folder), trains it epoch by epoch while keeping
//! its files, and finishes it into its summary, analysis, progress measures and report
//! ([`Finished`]). `grok` is this module behind command-line flags; [`analyze_saved`] is
//! `analyze`'s.
//!
//! # The folder's rules
//! - Memory is checked before anything is written: training, snapshots, progress measures and
//!   the report together ([`memory_estimate`]).
//! - A folder that holds a run (finished or started, [`RunFolder::holds_run`]) is refused unless
//!   [`RunOptions::force`]; with it, the old run's files are removed first
//!   ([`RunFolder::clear`]), so none is left beside the new run's. A refused folder is not
//!   touched.
//! - `config.json` is written before the first epoch; `metrics.csv` at most once a second
//!   during training and at the end.
//! - With [`RunOptions::snapshot_every`], the weights every N epochs and after the last go to
//!   `snapshots.safetensors`; with [`RunOptions::checkpoint_every`], the complete state goes to
//!   `checkpoint.safetensors` every N epochs, the snapshots first: a kill between the two files
//!   leaves snapshots past the checkpoint, which the resumed run drops and retakes, never a gap.
//! - Every file is written atomically (a temporary name, flushed, renamed).
//! - [`Run::resume`] continues from the checkpoint to exactly the result of an uninterrupted
//!   run on the CPU backends, on any number of threads.
//!
//! # Example
//! A resumable run with snapshots, then its files:
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use grokking::{run::{Run, RunOptions}, MlpConfig, TrainingConfig};
//!
//! let dir = std::env::temp_dir().join(format!("grokking-run-doc-{}", std::process::id()));
//! let config = TrainingConfig::new()
//!     .with_model(MlpConfig::new().with_p(11).with_d_hidden(8))
//!     .with_epochs(6);
//! let options = RunOptions::default()
//!     .with_checkpoint_every(2)
//!     .with_snapshot_every(3)
//!     .with_report(false)
//!     .with_force(true);
//! let mut run = Run::start::<Autodiff<Flex>>(&config, &dir, &options, &Default::default())?;
//! while let Some(metrics) = run.epoch()? {
//!     println!("epoch {} val_acc {:.3}", metrics.epoch, metrics.val_acc);
//! }
//! let finished = run.finish()?;
//! assert_eq!(finished.history.epochs.len(), 6);
//! assert_eq!(finished.progress.as_ref().unwrap().epochs, [2, 5]);
//! for file in ["config.json", "metrics.csv", "checkpoint.safetensors", "summary.json"] {
//!     assert!(dir.join(file).exists());
//! }
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), grokking::Error>(())
//! ```

mod analyze;
mod folder;
mod summary;

use std::{
    path::Path,
    time::{Duration, Instant},
};

pub use analyze::{analyze_saved, analyze_saved_with, AnalyzeOptions, Analyzed, SavedModel};
pub use folder::{metrics_csv, NeuronsFile, RunFolder, METRICS_HEADER};
pub use summary::{FinalMetrics, Summary};

use crate::{
    analysis::{
        self,
        progress::{self, progress_measures, ProgressMeasures},
        WeightAnalysis,
    },
    data::ModularDataset,
    device::{self, BackendJob, BackendKind},
    error::{Error, Result},
    io::{
        checkpoint,
        snapshots::{self, Snapshots},
    },
    model::MlpWeights,
    report::{self, ReportConfig},
    train::{Control, Engine, EpochMetrics, EpochObserver, History, TrainBackend, Trainer},
    TrainingConfig,
};

/// What a run keeps beside its training, and whether it may replace a run in its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Write the complete state to `checkpoint.safetensors` every N epochs; 0 writes none.
    pub checkpoint_every: usize,
    /// Keep the weights every N epochs and after the last in `snapshots.safetensors`, and
    /// measure the training dynamics from them (`progress.json`); 0 keeps none.
    pub snapshot_every: usize,
    /// Write the report (`report.html`, `analysis.json`, `figures/`) at the end.
    pub report: bool,
    /// Replace a run already in the folder (a new run only): its files are removed first.
    pub force: bool,
}

impl Default for RunOptions {
    /// No checkpoints, no snapshots, the report, no replacing.
    fn default() -> Self {
        RunOptions {
            checkpoint_every: 0,
            snapshot_every: 0,
            report: true,
            force: false,
        }
    }
}

impl RunOptions {
    /// With a checkpoint every `epochs` epochs (0: none).
    pub fn with_checkpoint_every(self, epochs: usize) -> Self {
        RunOptions {
            checkpoint_every: epochs,
            ..self
        }
    }

    /// With a snapshot every `epochs` epochs and after the last (0: none).
    pub fn with_snapshot_every(self, epochs: usize) -> Self {
        RunOptions {
            snapshot_every: epochs,
            ..self
        }
    }

    /// With or without the report.
    pub fn with_report(self, report: bool) -> Self {
        RunOptions { report, ..self }
    }

    /// Replacing a run already in the folder, or not.
    pub fn with_force(self, force: bool) -> Self {
        RunOptions { force, ..self }
    }

    /// Whether the weights after `epoch` (from 0) of a run of `epochs` are kept.
    fn snapshot_due(&self, epoch: usize, epochs: usize) -> bool {
        self.snapshot_every > 0
            && ((epoch + 1).is_multiple_of(self.snapshot_every) || epoch + 1 == epochs)
    }

    /// Whether a checkpoint is written after `epoch` (from 0).
    fn checkpoint_due(&self, epoch: usize) -> bool {
        self.checkpoint_every > 0 && (epoch + 1).is_multiple_of(self.checkpoint_every)
    }
}

/// What a resumed run goes on with instead of what its configuration records; `config.json`
/// then records these. Neither changes the result on the CPU backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The engine of the steps that follow (resolved: never [`Engine::Auto`] in the config).
    pub engine: Engine,
    /// Threads per model on the CPU backends (`None`: one per core).
    pub threads: Option<usize>,
}

impl Default for Resume {
    /// The default engine, every core.
    fn default() -> Self {
        Resume {
            engine: Engine::Auto,
            threads: None,
        }
    }
}

/// Bytes a run of `config` with `options` needs, estimated from its sizes before any of it is
/// allocated: training ([`TrainingConfig::memory_estimate`]), the snapshots with their progress
/// measures, and the report.
pub fn memory_estimate(config: &TrainingConfig, options: &RunOptions) -> u64 {
    let (p, h) = (config.model.p, config.model.d_hidden);
    let snapshots = match options.snapshot_every {
        0 => 0,
        every => {
            Snapshots::memory_estimate(config, every).saturating_add(progress::memory_estimate(p))
        }
    };
    let report = if options.report {
        report::memory_estimate(p, h)
    } else {
        0
    };
    config
        .memory_estimate()
        .saturating_add(snapshots)
        .saturating_add(report)
}

/// [`memory_estimate`] against the machine.
fn check_memory(config: &TrainingConfig, options: &RunOptions) -> Result<()> {
    let (p, h) = (config.model.p, config.model.d_hidden);
    crate::memory::check(
        &format!("training, snapshots and the report for p = {p} and {h} hidden units"),
        memory_estimate(config, options),
    )
}

/// What became of the report.
#[derive(Debug)]
pub enum ReportOutcome {
    /// None was asked for ([`RunOptions::report`] off).
    Skipped,
    /// Written into the folder: its numbers, and the seconds it took.
    Written {
        /// Every number of the report (as `analysis.json`).
        analysis: Box<report::Analysis>,
        /// Seconds spent on it.
        seconds: f64,
    },
    /// It could not be drawn (fewer than 4 neurons for t-SNE, say); the run itself is saved.
    Failed(Error),
}

/// A finished run: what it wrote into its folder, as values.
#[derive(Debug)]
pub struct Finished {
    /// The run's folder.
    pub folder: RunFolder,
    /// The configuration it ran (with the engine and threads of its last part).
    pub config: TrainingConfig,
    /// The backend it ran on (as `summary.json` records it).
    pub backend: String,
    /// Every epoch's metrics.
    pub history: History,
    /// The data set and split.
    pub data: ModularDataset,
    /// The final weights (PyTorch's orientation).
    pub weights: MlpWeights,
    /// The fits and accuracies of the final weights (as `neurons.json` and `summary.json`).
    pub analysis: WeightAnalysis,
    /// `summary.json`.
    pub summary: Summary,
    /// The progress measures of the snapshots (`progress.json`), with snapshots only.
    pub progress: Option<ProgressMeasures>,
    /// Seconds spent on the progress measures.
    pub progress_seconds: f64,
    /// The report.
    pub report: ReportOutcome,
    /// Optimiser steps per epoch.
    pub batches_per_epoch: usize,
}

impl Finished {
    /// Training seconds per optimiser step, over the whole run (validation included).
    ///
    /// # Panics
    /// If the history is empty (a finished run has at least one epoch).
    pub fn seconds_per_step(&self) -> f64 {
        let last = self.history.last().expect("a run has at least one epoch");
        last.seconds / (self.history.epochs.len() * self.batches_per_epoch) as f64
    }
}

impl std::fmt::Display for Finished {
    /// What `grok` prints of a finished run: epochs, backend, time per step and grok epoch; the
    /// method, where it is not the notebook's; the final metrics; the full-grid and all-replaced accuracies; the fits' mean R². One line
    /// each.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, found) = (&self.summary, &self.analysis);
        let last = self.history.last().expect("a run has at least one epoch");
        let grok_epoch = s.grok_epoch.map_or("never".into(), |e| e.to_string());
        writeln!(
            f,
            "{} epochs on {} in {:.1} s ({:.3} ms/step); grok epoch (val_acc >= 0.99): {grok_epoch}",
            self.history.epochs.len(),
            s.backend,
            last.seconds,
            1e3 * self.seconds_per_step(),
        )?;
        if !self.config.method.is_default() {
            writeln!(f, "method: {}", self.config.method.describe())?;
        }
        if self.config.method.activation != crate::step::Activation::Relu {
            writeln!(
                f,
                "warning: the analyses below (accuracies, fits, report) evaluate the network \
                 with ReLU, not this run's activation"
            )?;
        }
        writeln!(
            f,
            "final: train_loss {:.4} val_loss {:.4} train_acc {:.4} val_acc {:.4}",
            last.train_loss, last.val_loss, last.train_acc, last.val_acc
        )?;
        writeln!(
            f,
            "full-grid accuracy {:.5}; all {} neurons replaced by cosines: {:.5} (val {:.5})",
            s.full_accuracy, s.hidden, found.replaced_all.full, found.replaced_all.val
        )?;
        writeln!(f, "{found}")
    }
}

/// A training run in a folder. See the [module docs](self) for the files and their rules.
///
/// A run is built on a backend type ([`Run::start`], [`Run::resume`]) or on a backend chosen at
/// run time ([`Run::start_on`], [`Run::resume_on`]); either way it is one type, driven epoch by
/// epoch ([`Run::epoch`]) or to its end ([`Run::to_end`]), then [finished](Run::finish).
pub struct Run {
    session: Box<dyn Session>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("folder", self.session.folder())
            .field("epochs_done", &self.epochs_done())
            .finish_non_exhaustive()
    }
}

impl Run {
    /// Starts a run of `config` in folder `dir` on `device`: checks the configuration and the
    /// memory, prepares the folder (refusing or clearing a run already in it, see
    /// [`RunOptions::force`]) and writes `config.json`, recording the engine that runs (never
    /// [`Engine::Auto`]).
    ///
    /// # Errors
    /// Any invalid field of `config` ([`TrainingConfig::validate`]);
    /// [`Error::InsufficientMemory`]; [`Error::InvalidConfig`] for a folder that holds a run
    /// without `force`; [`Error::Io`] if the folder cannot be made or written.
    pub fn start<B: TrainBackend>(
        config: &TrainingConfig,
        dir: impl AsRef<Path>,
        options: &RunOptions,
        device: &B::Device,
    ) -> Result<Run> {
        let config = config.clone().with_engine(config.engine.resolve());
        config.validate()?;
        check_memory(&config, options)?;
        let dir = dir.as_ref();
        let replacing = RunFolder::holds_run(dir);
        let folder = RunFolder::create(dir, options.force)?;
        if replacing {
            folder.clear()?;
        }
        folder.write_config(&config)?;
        let trainer = Trainer::<B>::new(&config, device)?;
        Ok(Training::begin(
            trainer, folder, options, None, None, device,
        ))
    }

    /// Resumes the unfinished run in folder `dir` from its checkpoint, with the engine and
    /// threads of `resume`, on `device`. The snapshots up to the checkpoint are kept and later
    /// ones taken again; `config.json` is rewritten with what the run goes on with.
    ///
    /// # Errors
    /// [`Error::Run`] if the run has finished (`summary.json`), or keeps snapshots and
    /// `options` keeps none; the checkpoint's errors ([`checkpoint::load_state`]: missing,
    /// not a checkpoint, damaged); [`Error::InsufficientMemory`]; [`Error::Io`].
    pub fn resume<B: TrainBackend>(
        dir: impl AsRef<Path>,
        resume: &Resume,
        options: &RunOptions,
        device: &B::Device,
    ) -> Result<Run> {
        let dir = dir.as_ref();
        let refuse = |reason: String| Error::Run {
            path: dir.to_path_buf(),
            reason,
        };
        if dir.join("summary.json").exists() {
            return Err(refuse(
                "it holds a finished run (summary.json); there is nothing to resume".into(),
            ));
        }
        let mut state = checkpoint::load_state(dir.join(checkpoint::FILE_NAME))?;
        state.config.engine = resume.engine.resolve();
        state.config.threads = resume.threads;
        check_memory(&state.config, options)?;
        let folder = RunFolder::open(dir)?;
        let epochs_done = state.epoch();
        let path = folder.file(snapshots::FILE_NAME);
        let kept = if path.exists() {
            if options.snapshot_every == 0 {
                return Err(refuse(format!(
                    "the run keeps snapshots ({}): resume with a snapshot interval \
                     (--snapshot-every N) to go on keeping them",
                    snapshots::FILE_NAME
                )));
            }
            let mut kept = Snapshots::load(&path)?;
            match epochs_done.checked_sub(1) {
                Some(last) => kept.truncate_after(last),
                None => kept = Snapshots::new(kept.config().clone()),
            }
            Some(kept)
        } else {
            None
        };
        let trainer = Trainer::<B>::from_state(state, device)?;
        folder.write_config(trainer.config())?;
        Ok(Training::begin(
            trainer,
            folder,
            options,
            Some(epochs_done),
            kept,
            device,
        ))
    }

    /// [`Run::start`] on `backend`'s default device, after checking that the backend runs here
    /// ([`device::on_backend`]).
    ///
    /// # Errors
    /// As [`Run::start`]; [`Error::NotCompiled`], [`Error::Device`].
    pub fn start_on(
        backend: BackendKind,
        config: &TrainingConfig,
        dir: impl AsRef<Path>,
        options: &RunOptions,
    ) -> Result<Run> {
        struct Start<'a>(&'a TrainingConfig, &'a Path, &'a RunOptions);
        impl BackendJob for Start<'_> {
            type Output = Run;
            fn run<B: TrainBackend>(self, device: &B::Device) -> Result<Run> {
                Run::start::<B>(self.0, self.1, self.2, device)
            }
        }
        device::on_backend(backend, Start(config, dir.as_ref(), options))
    }

    /// [`Run::resume`] on `backend`'s default device, after checking that the backend runs
    /// here ([`device::on_backend`]).
    ///
    /// # Errors
    /// As [`Run::resume`]; [`Error::NotCompiled`], [`Error::Device`].
    pub fn resume_on(
        backend: BackendKind,
        dir: impl AsRef<Path>,
        resume: &Resume,
        options: &RunOptions,
    ) -> Result<Run> {
        struct Continue<'a>(&'a Path, &'a Resume, &'a RunOptions);
        impl BackendJob for Continue<'_> {
            type Output = Run;
            fn run<B: TrainBackend>(self, device: &B::Device) -> Result<Run> {
                Run::resume::<B>(self.0, self.1, self.2, device)
            }
        }
        device::on_backend(backend, Continue(dir.as_ref(), resume, options))
    }

    /// The configuration (the learning rate and weight decay now in force).
    pub fn config(&self) -> &TrainingConfig {
        self.session.config()
    }

    /// The run's folder.
    pub fn folder(&self) -> &RunFolder {
        self.session.folder()
    }

    /// The epochs run so far, in this process and before a resume.
    pub fn history(&self) -> &History {
        self.session.history()
    }

    /// The number of epochs done.
    pub fn epochs_done(&self) -> usize {
        self.history().epochs.len()
    }

    /// For a resumed run, the number of epochs its checkpoint held.
    pub fn resumed_after(&self) -> Option<usize> {
        self.session.resumed_after()
    }

    /// The weights as they are now, on the host (PyTorch's orientation).
    pub fn weights(&self) -> MlpWeights {
        self.session.weights()
    }

    /// Records a metric of the caller's own for the last epoch: a column of the history and of
    /// `metrics.csv` ([`History::record`]).
    ///
    /// # Errors
    /// As [`History::record`].
    pub fn record(&mut self, name: &str, value: f64) -> Result<()> {
        self.session.record(name, value)
    }

    /// Sets the learning rate and weight decay of the epochs that follow (a schedule).
    ///
    /// # Errors
    /// As [`Trainer::set_lr_and_weight_decay`].
    pub fn set_lr_and_weight_decay(&mut self, lr: f64, weight_decay: f64) -> Result<()> {
        self.session.set_lr_and_weight_decay(lr, weight_decay)
    }

    /// Trains the next epoch and writes what its schedule asks (metrics, snapshot,
    /// checkpoint); `None` once every configured epoch has run.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written (the run stops there; its last checkpoint
    /// stays).
    pub fn epoch(&mut self) -> Result<Option<EpochMetrics>> {
        self.session.epoch()
    }

    /// Trains the remaining epochs, calling `observer` after each (which can stop the run),
    /// then [finishes](Run::finish).
    ///
    /// # Errors
    /// As [`Run::epoch`] and [`Run::finish`].
    pub fn to_end(mut self, mut observer: impl EpochObserver) -> Result<Finished> {
        while let Some(metrics) = self.epoch()? {
            if observer.on_epoch(&metrics) == Control::Stop {
                break;
            }
        }
        self.finish()
    }

    /// Ends the run where it stands and writes its results: `metrics.csv`, the model, the
    /// snapshots (the last epoch included) with `progress.json`, `neurons.json`,
    /// `summary.json`, and the report if asked for. A report that cannot be drawn is
    /// [`ReportOutcome::Failed`], not an error: the run is saved.
    ///
    /// # Errors
    /// [`Error::Run`] if no epoch has run; [`Error::Io`] if a file cannot be written; the
    /// progress measures' errors.
    pub fn finish(self) -> Result<Finished> {
        self.session.finish()
    }
}

/// The backend-generic body of a [`Run`].
trait Session {
    fn config(&self) -> &TrainingConfig;
    fn folder(&self) -> &RunFolder;
    fn history(&self) -> &History;
    fn resumed_after(&self) -> Option<usize>;
    fn weights(&self) -> MlpWeights;
    fn record(&mut self, name: &str, value: f64) -> Result<()>;
    fn set_lr_and_weight_decay(&mut self, lr: f64, weight_decay: f64) -> Result<()>;
    fn epoch(&mut self) -> Result<Option<EpochMetrics>>;
    fn finish(self: Box<Self>) -> Result<Finished>;
}

/// A run on backend `B`.
struct Training<B: TrainBackend> {
    trainer: Trainer<B>,
    folder: RunFolder,
    options: RunOptions,
    backend: String,
    resumed_after: Option<usize>,
    snapshots: Option<Snapshots>,
    /// How many snapshots the file on disk holds.
    snapshots_saved: usize,
    /// When `metrics.csv` was last written.
    metrics_written: Instant,
}

impl<B: TrainBackend> Training<B> {
    /// The run of `trainer` in `folder`; a resumed run goes on with the snapshots `kept` from
    /// its file (which holds them already).
    fn begin(
        trainer: Trainer<B>,
        folder: RunFolder,
        options: &RunOptions,
        resumed_after: Option<usize>,
        kept: Option<Snapshots>,
        device: &B::Device,
    ) -> Run {
        let snapshots_saved = kept.as_ref().map_or(0, Snapshots::len);
        let snapshots = (options.snapshot_every > 0)
            .then(|| kept.unwrap_or_else(|| Snapshots::new(trainer.config().clone())));
        Run {
            session: Box::new(Training {
                trainer,
                folder,
                options: options.clone(),
                backend: device::backend_name::<B>(device),
                resumed_after,
                snapshots,
                snapshots_saved,
                metrics_written: Instant::now(),
            }),
        }
    }

    /// Writes the snapshots if one was added since the last write, then the checkpoint.
    fn write_checkpoint(&mut self) -> Result<()> {
        if let Some(snapshots) = self
            .snapshots
            .as_ref()
            .filter(|s| s.len() != self.snapshots_saved)
        {
            snapshots.save(self.folder.file(snapshots::FILE_NAME))?;
            self.snapshots_saved = snapshots.len();
        }
        checkpoint::save_state(
            self.folder.file(checkpoint::FILE_NAME),
            &self.trainer.state(),
        )
    }
}

impl<B: TrainBackend> Session for Training<B> {
    fn config(&self) -> &TrainingConfig {
        self.trainer.config()
    }

    fn folder(&self) -> &RunFolder {
        &self.folder
    }

    fn history(&self) -> &History {
        self.trainer.history()
    }

    fn resumed_after(&self) -> Option<usize> {
        self.resumed_after
    }

    fn weights(&self) -> MlpWeights {
        self.trainer.weights()
    }

    fn record(&mut self, name: &str, value: f64) -> Result<()> {
        self.trainer.record(name, value)
    }

    fn set_lr_and_weight_decay(&mut self, lr: f64, weight_decay: f64) -> Result<()> {
        self.trainer.set_lr_and_weight_decay(lr, weight_decay)
    }

    fn epoch(&mut self) -> Result<Option<EpochMetrics>> {
        let epochs = self.trainer.config().epochs;
        if self.trainer.history().epochs.len() >= epochs {
            return Ok(None);
        }
        let metrics = self.trainer.run_epoch();
        if self.metrics_written.elapsed() >= Duration::from_secs(1) {
            self.metrics_written = Instant::now();
            self.folder.write_metrics(self.trainer.history())?;
        }
        if self.options.snapshot_due(metrics.epoch, epochs) {
            let weights = self.trainer.weights();
            if let Some(snapshots) = self.snapshots.as_mut() {
                snapshots.push(metrics.epoch, &weights)?;
            }
        }
        if self.options.checkpoint_due(metrics.epoch) {
            self.write_checkpoint()?;
        }
        Ok(Some(metrics))
    }

    fn finish(mut self: Box<Self>) -> Result<Finished> {
        let Some(last) = self.trainer.history().last().map(|m| m.epoch) else {
            return Err(Error::Run {
                path: self.folder.path().to_path_buf(),
                reason: "no epoch has run yet; there is nothing to finish".into(),
            });
        };
        // A run stopped early keeps its last epoch too.
        if let Some(snapshots) = self.snapshots.as_mut() {
            if snapshots.epochs().last() != Some(&last) {
                snapshots.push(last, &self.trainer.weights())?;
            }
        }
        let Training {
            trainer,
            folder,
            options,
            backend,
            snapshots,
            ..
        } = *self;
        let config = trainer.config().clone();
        let batches_per_epoch = trainer.batches_per_epoch();
        let trained = trainer.finish();
        folder.write_metrics(&trained.history)?;
        folder.write_model(&trained.model)?;
        let (progress, progress_seconds) = match &snapshots {
            Some(snapshots) => {
                snapshots.save(folder.file(snapshots::FILE_NAME))?;
                let start = Instant::now();
                let measures = progress_measures(snapshots, None)?;
                measures.write(folder.file("progress.json"))?;
                (Some(measures), start.elapsed().as_secs_f64())
            }
            None => (None, 0.0),
        };
        let weights = trained.model.weights();
        let found = analysis::analyse_weights(&weights, &trained.data);
        folder.write_neurons(&found)?;
        let summary = Summary::of_run(
            &backend,
            (config.operation, config.method),
            &trained.history,
            &found,
        );
        folder.write_summary(&summary)?;
        let report = if options.report {
            let start = Instant::now();
            let report_config = ReportConfig {
                heatmap_neurons: (0..config.model.d_hidden.min(3)).collect(),
                method: Some(config.method),
                ..Default::default()
            };
            match report::write_report(
                folder.path(),
                &weights,
                &trained.data,
                Some(&trained.history),
                progress.as_ref(),
                &report_config,
            ) {
                Ok(analysis) => ReportOutcome::Written {
                    analysis: Box::new(analysis),
                    seconds: start.elapsed().as_secs_f64(),
                },
                Err(e) => ReportOutcome::Failed(e),
            }
        } else {
            ReportOutcome::Skipped
        };
        Ok(Finished {
            folder,
            config,
            backend,
            history: trained.history,
            data: trained.data,
            weights,
            analysis: found,
            summary,
            progress,
            progress_seconds,
            report,
            batches_per_epoch,
        })
    }
}

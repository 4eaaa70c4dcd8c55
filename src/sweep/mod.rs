//! Sweeps: a grid of training configurations, cut into shards for a cluster's job array, trained
//! as batched ensembles ([`Ensemble`]) or one after another, summarised one row per model.
//!
//! ```
//! use grokking::{sweep::{Grid, Shard}, TrainingConfig};
//!
//! let grid = Grid {
//!     seeds: vec![1, 2, 3, 4],
//!     weight_decays: vec![0.1, 0.5],
//!     ..Grid::new(TrainingConfig::new())
//! };
//! let points = grid.points()?;
//! assert_eq!(points.len(), 8);
//! // Shard 1 of 3 takes points 1, 4, 7 (round robin, so mixed sizes spread evenly).
//! let shard: Shard = "1/3".parse()?;
//! let mine: Vec<usize> = shard.select(&points).iter().map(|p| p.index).collect();
//! assert_eq!(mine, [1, 4, 7]);
//! # Ok::<(), grokking::Error>(())
//! ```

mod files;
mod plot;

use std::{collections::HashMap, path::Path, str::FromStr, time::Instant};

use serde::{Deserialize, Serialize};

pub use files::{
    check_out, clear_models, merge_folders, merge_sweeps, model_file, prepare_folder, read_sweep,
    write_models, write_sweep, SweepFile,
};
pub use plot::{grok_epoch_distribution_svg, phase_diagram_svg};

use crate::{
    device::{self, BackendJob, BackendKind},
    error::{Error, Result},
    model::MlpWeights,
    operation::Operation,
    step::Method,
    train::{
        shape_key, Control, Engine, Ensemble, EpochMetrics, History, TrainBackend, Trainer,
        TrainingConfig,
    },
};

/// A grid of hyperparameters around a base configuration: every combination of the listed
/// values. Lists left empty take the base configuration's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Everything not swept (p, batch size, epochs, ...).
    pub base: TrainingConfig,
    /// Seeds (data split and initial weights).
    pub seeds: Vec<u64>,
    /// AdamW weight decays.
    pub weight_decays: Vec<f64>,
    /// AdamW learning rates.
    pub lrs: Vec<f64>,
    /// Training fractions.
    pub train_fractions: Vec<f64>,
    /// Hidden widths.
    pub hiddens: Vec<usize>,
    /// Operations.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// The step's methods ([`Method`]: loss, activation, filters, optimiser).
    #[serde(default)]
    pub methods: Vec<Method>,
    /// Label-noise fractions.
    #[serde(default)]
    pub label_noises: Vec<f64>,
}

/// One model of a grid: its number in the whole grid and its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPoint {
    /// Position in [`Grid::points`], the same in every shard.
    pub index: usize,
    /// The model's full configuration.
    pub config: TrainingConfig,
}

impl Grid {
    /// The most models one grid may hold: a million, each of them trained, is far past any sweep
    /// a machine finishes, and a larger count is a typo (a seed range `1..1000000000`).
    pub const MAX_POINTS: usize = 1_000_000;

    /// The number of models, `None` if the product of the lists' lengths overflows.
    pub fn model_count(&self) -> Option<usize> {
        [
            self.seeds.len(),
            self.weight_decays.len(),
            self.lrs.len(),
            self.train_fractions.len(),
            self.hiddens.len(),
            self.operations.len(),
            self.methods.len(),
            self.label_noises.len(),
        ]
        .iter()
        .try_fold(1usize, |n, &len| n.checked_mul(len.max(1)))
    }

    /// A grid of the base configuration alone (every list empty).
    pub fn new(base: TrainingConfig) -> Self {
        Self {
            base,
            seeds: Vec::new(),
            weight_decays: Vec::new(),
            lrs: Vec::new(),
            train_fractions: Vec::new(),
            hiddens: Vec::new(),
            operations: Vec::new(),
            methods: Vec::new(),
            label_noises: Vec::new(),
        }
    }

    /// Every combination, numbered from 0 in a fixed order: operation, width, method, label
    /// noise, then train fraction, weight decay, learning rate, and seed fastest.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the grid holds more than [`Grid::MAX_POINTS`] models; the first
    /// invalid configuration's error (a train fraction outside (0, 1), a width of 0, ...).
    pub fn points(&self) -> Result<Vec<GridPoint>> {
        match self.model_count() {
            Some(n) if n <= Self::MAX_POINTS => {}
            n => {
                return Err(Error::InvalidConfig {
                    field: "grid",
                    value: n.map_or("more than 2^64".into(), |n| format!("{n} models")),
                    reason: "a sweep holds at most 1,000,000 models (Grid::MAX_POINTS)",
                })
            }
        }
        fn or<T: Clone>(values: &[T], base: T) -> Vec<T> {
            if values.is_empty() {
                vec![base]
            } else {
                values.to_vec()
            }
        }
        /// Every config of `configs` with every value of an axis, the axis fastest.
        fn across<T: Clone>(
            configs: Vec<TrainingConfig>,
            values: Vec<T>,
            set: impl Fn(TrainingConfig, T) -> TrainingConfig,
        ) -> Vec<TrainingConfig> {
            configs
                .into_iter()
                .flat_map(|c| {
                    values
                        .iter()
                        .map(|v| set(c.clone(), v.clone()))
                        .collect::<Vec<_>>()
                })
                .collect()
        }
        let base = &self.base;
        let mut configs = vec![base.clone()];
        configs = across(configs, or(&self.operations, base.operation), |c, op| {
            c.with_operation(op)
        });
        configs = across(configs, or(&self.hiddens, base.model.d_hidden), |c, h| {
            let model = c.model.clone().with_d_hidden(h);
            c.with_model(model)
        });
        configs = across(configs, or(&self.methods, base.method), |c, m| {
            c.with_method(m)
        });
        configs = across(configs, or(&self.label_noises, base.label_noise), |c, x| {
            c.with_label_noise(x)
        });
        configs = across(
            configs,
            or(&self.train_fractions, base.train_fraction),
            |c, f| c.with_train_fraction(f),
        );
        configs = across(
            configs,
            or(&self.weight_decays, base.weight_decay),
            |c, wd| c.with_weight_decay(wd),
        );
        configs = across(configs, or(&self.lrs, base.lr), |c, lr| c.with_lr(lr));
        configs = across(configs, or(&self.seeds, base.seed), |c, seed| {
            c.with_seed(seed)
        });
        let mut points = Vec::with_capacity(configs.len());
        for (index, config) in configs.into_iter().enumerate() {
            config.validate()?;
            points.push(GridPoint { index, config });
        }
        Ok(points)
    }
}

/// Slice `index` of `count` of a grid (`"I/N"`, 0 ≤ I < N), as a job array's task takes it:
/// point `i` belongs to shard `i mod N`. The N shards partition the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole grid as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The points of this shard, in grid order.
    pub fn select(&self, points: &[GridPoint]) -> Vec<GridPoint> {
        points
            .iter()
            .filter(|p| p.index % self.count == self.index)
            .cloned()
            .collect()
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `"I/N"` with `0 ≤ I < N`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidConfig {
            field: "shard",
            value: text.to_string(),
            reason,
        };
        let (i, n) = text.split_once('/').ok_or(bad("expected I/N, e.g. 0/4"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 || index >= count {
            return Err(bad("needs 0 <= I < N"));
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One trained model of a sweep: its hyperparameters and final metrics (a row of `sweep.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// Its [`GridPoint::index`].
    pub index: usize,
    /// Seed.
    pub seed: u64,
    /// Operation (addition in files written before there was a choice).
    #[serde(default)]
    pub operation: Operation,
    /// Modulus.
    pub p: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Training fraction.
    pub train_fraction: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Learning rate.
    pub lr: f64,
    /// Label-noise fraction (0 in files written before there was a choice).
    #[serde(default)]
    pub label_noise: f64,
    /// The step's method, as [`Method::describe`] writes it (the notebook's in files written
    /// before there was a choice).
    #[serde(default = "default_method_name")]
    pub method: String,
    /// Epochs trained.
    pub epochs: usize,
    /// First epoch with validation accuracy at least 0.99 (`None`: never).
    pub grok_epoch: Option<usize>,
    /// Last epoch's mean training loss.
    #[serde(deserialize_with = "crate::train::nan_if_null")]
    pub train_loss: f64,
    /// Last epoch's validation loss.
    #[serde(deserialize_with = "crate::train::nan_if_null")]
    pub val_loss: f64,
    /// Last epoch's training accuracy.
    #[serde(deserialize_with = "crate::train::nan_if_null")]
    pub train_acc: f64,
    /// Last epoch's validation accuracy.
    #[serde(deserialize_with = "crate::train::nan_if_null")]
    pub val_acc: f64,
    /// Seconds per epoch once warm: from the end of epoch `min(5, epochs/2)` to the last, over
    /// the epochs between (for a batched model, its batch's time). `None` below 2 epochs.
    pub steady_epoch_seconds: Option<f64>,
}

impl ModelResult {
    /// The row for `point` after training with `history`.
    ///
    /// # Panics
    /// If `history` is empty.
    pub fn new(point: &GridPoint, history: &History) -> Self {
        let last = history.last().expect("at least one epoch");
        let n = history.epochs.len();
        let from = (n / 2).min(5);
        let steady_epoch_seconds = (from >= 1)
            .then(|| (last.seconds - history.epochs[from - 1].seconds) / (n - from) as f64);
        let c = &point.config;
        Self {
            index: point.index,
            seed: c.seed,
            operation: c.operation,
            p: c.model.p,
            hidden: c.model.d_hidden,
            train_fraction: c.train_fraction,
            weight_decay: c.weight_decay,
            lr: c.lr,
            label_noise: c.label_noise,
            method: c.method.describe(),
            epochs: history.epochs.len(),
            grok_epoch: history.grok_epoch(),
            train_loss: last.train_loss,
            val_loss: last.val_loss,
            train_acc: last.train_acc,
            val_acc: last.val_acc,
            steady_epoch_seconds,
        }
    }
}

/// [`Method::describe`] of the notebook's method, for rows written before there was a choice.
fn default_method_name() -> String {
    Method::default().describe()
}

/// How a sweep trains its models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SweepMode {
    /// Models of one shape (see [`shape_key`]), up to the batch limit, trained together: as one
    /// [`Ensemble`] (one stack: the CubeCL kernels on a GPU backend, or the reference engine),
    /// or, on the CPU backends with [`Engine::Fused`], each model alone on the host
    /// implementation with the models spread over all cores.
    Batched,
    /// One [`Trainer`] per model, one after another (the engine its config resolves to).
    Sequential,
}

/// Groups `points` into batches that one [`Ensemble`] can train: same shape, at most `max_batch`
/// members, in order of first appearance.
pub fn batches(points: &[GridPoint], max_batch: usize) -> Vec<Vec<GridPoint>> {
    let mut groups: Vec<Vec<GridPoint>> = Vec::new();
    let mut by_key: HashMap<_, usize> = HashMap::new();
    for point in points {
        let key = shape_key(&point.config);
        let slot = *by_key.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot].push(point.clone());
    }
    groups
        .into_iter()
        .flat_map(|group| {
            group
                .chunks(max_batch.max(1))
                .map(<[GridPoint]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The CPU form of a batch: each model alone on the host implementation (the same computation
/// as training it alone, bit for bit, on any number of threads), the models spread over all
/// cores with the cores left over shared among them, progress reported from this thread.
fn train_fused_in_parallel<B: TrainBackend>(
    batch: &[GridPoint],
    keep_models: bool,
    device: &B::Device,
    on_epoch: &mut impl FnMut(usize),
) -> Result<Vec<(ModelResult, Option<MlpWeights>)>> {
    let cores = crate::step::host_threads(0);
    let threads = cores.min(batch.len()).max(1);
    let per_model = Some((cores / threads).max(1));
    let (sender, epochs) = std::sync::mpsc::channel::<usize>();
    let per_thread = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let sender = sender.clone();
                scope.spawn(move || -> Result<Vec<(ModelResult, Option<MlpWeights>)>> {
                    let mut done = Vec::new();
                    for point in batch.iter().skip(t).step_by(threads) {
                        let config = point.config.clone().with_threads(per_model);
                        let trainer = Trainer::<B>::new(&config, device)?;
                        let trained = trainer.run(|_: &EpochMetrics| {
                            // The receiver lives until every worker is joined.
                            let _ = sender.send(1);
                            Control::Continue
                        });
                        let weights = keep_models.then(|| trained.model.weights());
                        done.push((ModelResult::new(point, &trained.history), weights));
                    }
                    Ok(done)
                })
            })
            .collect();
        drop(sender);
        for n in epochs {
            on_epoch(n);
        }
        workers
            .into_iter()
            .map(|w| w.join().expect("a sweep worker panicked"))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(per_thread.into_iter().flatten().collect())
}

/// Whether a batch trains on the host implementation, each model alone on some of the cores
/// (the CPU backends with the fused engine), rather than as one [`Ensemble`].
fn trains_on_host<B: TrainBackend>(batch: &[GridPoint]) -> bool {
    batch
        .iter()
        .all(|p| p.config.engine.resolve() == Engine::Fused)
        && BackendKind::of::<B>().is_some_and(BackendKind::is_cpu)
}

/// Checks, before anything trains, that the machine has the memory [`train_points`] will hold at
/// once: each model was checked alone by its config, but a batch holds several (all of an
/// ensemble, or one per core on the host), and `keep_models` keeps every model's weights.
///
/// # Errors
/// [`Error::InsufficientMemory`], naming what does not fit.
pub fn check_memory<B: TrainBackend>(
    points: &[GridPoint],
    mode: SweepMode,
    max_batch: usize,
    keep_models: bool,
) -> Result<()> {
    let each = |batch: &[GridPoint]| {
        let most = batch.iter().map(|p| p.config.memory_estimate()).max();
        most.unwrap_or(0)
    };
    let held = match mode {
        SweepMode::Sequential => each(points),
        SweepMode::Batched => batches(points, max_batch)
            .iter()
            .map(|batch| {
                let at_once = if trains_on_host::<B>(batch) {
                    crate::step::host_threads(0).min(batch.len())
                } else {
                    batch.len()
                };
                each(batch).saturating_mul(at_once as u64)
            })
            .max()
            .unwrap_or(0),
    };
    let kept: u64 = if keep_models {
        let weights = |p: &GridPoint| 3 * 4 * (p.config.model.p * p.config.model.d_hidden) as u64;
        points.iter().map(weights).sum()
    } else {
        0
    };
    crate::memory::check(
        &format!(
            "training {} models (--max-batch {max_batch}, keeping the models: {keep_models})",
            points.len()
        ),
        held.saturating_add(kept),
    )
}

/// What [`train_points`] returns.
#[derive(Debug, Clone)]
pub struct TrainedPoints {
    /// One result per point, in grid order.
    pub results: Vec<ModelResult>,
    /// Each point's final weights, in the same order, when asked for (`keep_models`); else empty.
    pub models: Vec<MlpWeights>,
    /// Seconds spent training.
    pub seconds: f64,
}

/// Trains `points` on `device` and returns one result per point, in grid order, the models'
/// final weights if `keep_models`, and the seconds spent. `on_epoch(models_epochs_done)` is
/// called after every epoch of every batch (for a progress bar over the whole grid: the total is
/// the sum of the points' epochs).
///
/// # Errors
/// An invalid configuration; [`Error::InsufficientMemory`] as [`check_memory`] (checked before
/// training starts).
pub fn train_points<B: TrainBackend>(
    points: &[GridPoint],
    mode: SweepMode,
    max_batch: usize,
    keep_models: bool,
    device: &B::Device,
    mut on_epoch: impl FnMut(usize),
) -> Result<TrainedPoints> {
    check_memory::<B>(points, mode, max_batch, keep_models)?;
    let start = Instant::now();
    let mut results = Vec::with_capacity(points.len());
    match mode {
        SweepMode::Batched => {
            let all = batches(points, max_batch);
            for batch in all {
                if trains_on_host::<B>(&batch) {
                    results.extend(train_fused_in_parallel::<B>(
                        &batch,
                        keep_models,
                        device,
                        &mut on_epoch,
                    )?);
                    continue;
                }
                let configs: Vec<TrainingConfig> = batch.iter().map(|p| p.config.clone()).collect();
                let mut ensemble = Ensemble::<B>::new(&configs, device)?;
                ensemble.run(|metrics| on_epoch(metrics.len()));
                let mut weights = if keep_models {
                    ensemble.weights().into_iter().map(Some).collect()
                } else {
                    vec![None; batch.len()]
                };
                for ((point, history), w) in
                    batch.iter().zip(ensemble.histories()).zip(&mut weights)
                {
                    results.push((ModelResult::new(point, history), w.take()));
                }
            }
        }
        SweepMode::Sequential => {
            for point in points {
                let trainer = Trainer::<B>::new(&point.config, device)?;
                let trained = trainer.run(|_: &EpochMetrics| {
                    on_epoch(1);
                    Control::Continue
                });
                let weights = keep_models.then(|| trained.model.weights());
                results.push((ModelResult::new(point, &trained.history), weights));
            }
        }
    }
    results.sort_by_key(|(r, _)| r.index);
    let (results, models): (Vec<ModelResult>, Vec<Option<MlpWeights>>) =
        results.into_iter().unzip();
    Ok(TrainedPoints {
        results,
        models: models.into_iter().flatten().collect(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// How a sweep runs: which shard, batched or not, and whether it keeps its models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOptions {
    /// The slice of the grid to train ([`Shard::ALL`]: all of it).
    pub shard: Shard,
    /// Batched or one model after another.
    pub mode: SweepMode,
    /// Most models in one batched ensemble.
    pub max_batch: usize,
    /// Keep every model's final weights ([`model_file`]).
    pub save_models: bool,
    /// Overwrite a folder that already holds a sweep.
    pub force: bool,
}

impl Default for SweepOptions {
    /// The whole grid, batched 256 at a time, no models kept, no overwriting.
    fn default() -> Self {
        SweepOptions {
            shard: Shard::ALL,
            mode: SweepMode::Batched,
            max_batch: 256,
            save_models: false,
            force: false,
        }
    }
}

/// Runs the sweep of `grid` (its shard in `options`) into folder `out` on `device`: the
/// folder is checked and tried, and the memory, before any training, then the models train and
/// `sweep.csv`, `sweep.json`, the figures and the kept models are written. `on_progress(done,
/// total)` is called after every epoch of every model, in model-epochs. Returns `sweep.json`'s
/// content.
///
/// # Errors
/// As [`check_out`]; [`Error::InvalidConfig`] for an invalid grid or a shard without a model;
/// [`Error::InsufficientMemory`] ([`check_memory`]); [`Error::Io`] for a folder that cannot be
/// written (before training).
pub fn run_sweep<B: TrainBackend>(
    grid: &Grid,
    out: &Path,
    options: &SweepOptions,
    device: &B::Device,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<SweepFile> {
    check_out(out, options.force)?;
    let shard = options.shard;
    let points = shard.select(&grid.points()?);
    if points.is_empty() {
        return Err(Error::InvalidConfig {
            field: "shard",
            value: shard.to_string(),
            reason: "this shard of the grid holds no model (the grid has fewer points than shards)",
        });
    }
    // Memory, then the folder (made and tried), before any training: a sweep that cannot run or
    // cannot be written fails now, not after hours of work. An earlier sweep's models go.
    check_memory::<B>(
        &points,
        options.mode,
        options.max_batch,
        options.save_models,
    )?;
    prepare_folder(out)?;
    clear_models(out)?;
    let total = points
        .iter()
        .fold(0u64, |sum, p| sum.saturating_add(p.config.epochs as u64));
    let mut done = 0u64;
    let trained = train_points::<B>(
        &points,
        options.mode,
        options.max_batch,
        options.save_models,
        device,
        |n| {
            done = done.saturating_add(n as u64);
            on_progress(done, total);
        },
    )?;
    let file = SweepFile {
        grid: grid.clone(),
        shards: vec![shard],
        backend: device::backend_name::<B>(device),
        mode: options.mode,
        models: trained.results.len(),
        train_seconds: trained.seconds,
        results: trained.results,
    };
    if options.save_models {
        write_models(out, &file.results, &trained.models)?;
    }
    write_sweep(out, &file)?;
    Ok(file)
}

/// [`run_sweep`] on `backend`'s default device, after checking that the backend runs here
/// ([`device::on_backend`]).
///
/// # Errors
/// As [`run_sweep`]; [`Error::NotCompiled`], [`Error::Device`].
pub fn run_sweep_on(
    backend: BackendKind,
    grid: &Grid,
    out: &Path,
    options: &SweepOptions,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<SweepFile> {
    struct Sweep<'a> {
        grid: &'a Grid,
        out: &'a Path,
        options: &'a SweepOptions,
        on_progress: &'a mut dyn FnMut(u64, u64),
    }
    impl BackendJob for Sweep<'_> {
        type Output = SweepFile;
        fn run<B: TrainBackend>(self, device: &B::Device) -> Result<SweepFile> {
            run_sweep::<B>(self.grid, self.out, self.options, device, self.on_progress)
        }
    }
    device::on_backend(
        backend,
        Sweep {
            grid,
            out,
            options,
            on_progress,
        },
    )
}

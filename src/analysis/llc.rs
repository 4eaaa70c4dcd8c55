//! The local learning coefficient (LLC) of a trained network (Lau et al. 2023, "Quantifying
//! degeneracy in singular models via the learning coefficient"), estimated by SGLD as Timaeus's
//! `devinterp` 2.0.1 estimates it ([`estimate_llc`]).
//!
//! Around a point `w*` (the trained weights), SGLD chains ([`Optimizer::Sgld`]) draw weights from
//! the tempered local posterior `∝ exp(−nβ·L(w) − γ/2·‖w − w*‖²)`; the estimate is
//!
//! `λ̂ = nβ · (mean over the chain's draws of L_batch(w_t) − L_init)`,
//!
//! with `L_batch(w_t)` the mean loss of the step's minibatch before the step (devinterp's
//! `sampling_loss_micro`) and `L_init` the mean loss at `w*`. Per chain one `λ̂`; the estimate is
//! their mean, with their standard deviation (devinterp's `llc_mean`, `llc_std` with `ddof = 0`).
//!
//! Every chain of every point is one member of one [`StepBackend`] stack, stepped together:
//! C chains (or C chains at each of S snapshots) are one batched program, on the CPU or a GPU.
//!
//! Where this differs from devinterp 2.0.1, and why:
//! - `L_init` is the mean loss over all the training rows, computed once (devinterp averages the
//!   first 32 minibatches of its data loader, a noisy estimate that shifts every chain's `λ̂` by
//!   the same amount).
//! - Each chain walks its own seeded shuffle of the training rows (NumPy's
//!   `RandomState(seed + chain).permutation(n)`), in batches of `m` rows, the last partial batch
//!   dropped and the same order replayed when the rows run out (devinterp's `cycle` of a
//!   `DataLoader` with `drop_last`, which by default shows every chain the same order).
//! - The mean runs over the draws after the burn-in (devinterp 2.0.1's `compute_llc` averages the
//!   burn-in steps too; the two agree at its default burn-in of 0). The traces keep every step.
//! - The noise is our counter-based generator ([`crate::step::noise`]), not PyTorch's global
//!   generator, so the two agree in distribution, not draw for draw.
//!
//! A chain whose minibatch loss stops being finite has diverged: it is reported with the step
//! ([`LlcEstimate::diverged_at`]) and left out of the mean, and the other chains go on.

use serde::{Deserialize, Serialize};

use crate::{
    data::{ModularDataset, Split},
    device::{self, BackendJob, BackendKind},
    error::{Error, Result},
    model::MlpWeights,
    mt19937::Mt19937,
    step::{Hyper, MemberSetup, Method, Optimizer, Rows, StackSetup, StepBackend},
    train::{TrainBackend, TrainingConfig},
};

/// The sampler's hyperparameters. Defaults: devinterp 2.0.1's `sample()` where it has one
/// (4 chains, 200 draws, no burn-in, batches of 32, seed 100, no weight decay), and a step
/// size and localisation calibrated on the notebook's model (`docs/llc.md`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LlcConfig {
    /// The step size ε > 0 (devinterp's `lr`).
    pub lr: f64,
    /// The inverse temperature nβ > 0; `None`: devinterp's `default_nbeta`, `m / ln m` for
    /// batches of `m` rows ([`default_nbeta`]).
    pub nbeta: Option<f64>,
    /// The localisation γ ≥ 0, the pull towards `w*` (devinterp's `localization`).
    pub localization: f64,
    /// The weight decay λ ≥ 0, a Gaussian prior at zero (devinterp's `llc_weight_decay`).
    pub weight_decay: f64,
    /// Chains per point, ≥ 1.
    pub chains: usize,
    /// Draws per chain (steps after the burn-in), ≥ 1.
    pub draws: usize,
    /// Steps before the draws, left out of the estimate.
    pub burnin: usize,
    /// Rows per minibatch `m`, at most the training rows.
    pub batch_size: usize,
    /// Seed of the chains' noise and row orders.
    pub seed: u64,
}

/// The default step size ε (`docs/llc.md`).
pub const DEFAULT_LR: f64 = 1e-3;
/// The default localisation γ (`docs/llc.md`).
pub const DEFAULT_LOCALIZATION: f64 = 100.0;

impl Default for LlcConfig {
    fn default() -> Self {
        Self {
            lr: DEFAULT_LR,
            nbeta: None,
            localization: DEFAULT_LOCALIZATION,
            weight_decay: 0.0,
            chains: 4,
            draws: 200,
            burnin: 0,
            batch_size: 32,
            seed: 100,
        }
    }
}

/// devinterp's `default_nbeta` for batches of `m` rows: `m / ln m`, or 1 for `m = 1`.
pub fn default_nbeta(m: usize) -> f64 {
    if m <= 1 {
        1.0
    } else {
        m as f64 / (m as f64).ln()
    }
}

impl LlcConfig {
    /// The inverse temperature used: [`LlcConfig::nbeta`] or [`default_nbeta`].
    pub fn nbeta(&self) -> f64 {
        self.nbeta.unwrap_or_else(|| default_nbeta(self.batch_size))
    }

    /// SGLD steps per chain: burn-in and draws (saturating; [`LlcConfig::validate`] refuses
    /// more than 2³²).
    pub fn steps(&self) -> usize {
        self.burnin.saturating_add(self.draws)
    }

    /// Checks every value for a training split of `train_rows` rows.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the flag (`llc-lr`, ...): ε not finite and positive, nβ
    /// not finite and positive, γ or λ not finite and non-negative, no chains or draws, a batch
    /// of no rows or more rows than the training split holds, more than 2³² steps, a seed whose
    /// chains' row orders NumPy cannot seed (`seed + chains − 1 ≥ 2³²`).
    pub fn validate(&self, train_rows: usize) -> Result<()> {
        let invalid = |field, value: String, reason| {
            Err(Error::InvalidConfig {
                field,
                value,
                reason,
            })
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if !positive(self.lr) {
            return invalid(
                "llc-lr",
                self.lr.to_string(),
                "it must be finite and positive",
            );
        }
        if let Some(nbeta) = self.nbeta.filter(|&v| !positive(v)) {
            return invalid(
                "llc-nbeta",
                nbeta.to_string(),
                "it must be finite and positive",
            );
        }
        if !non_negative(self.localization) {
            let value = self.localization.to_string();
            return invalid("llc-gamma", value, "it must be finite and non-negative");
        }
        if !non_negative(self.weight_decay) {
            let value = self.weight_decay.to_string();
            return invalid(
                "llc-weight-decay",
                value,
                "it must be finite and non-negative",
            );
        }
        if self.chains == 0 {
            return invalid("llc-chains", "0".into(), "sample at least one chain");
        }
        if self.draws == 0 {
            return invalid("llc-draws", "0".into(), "draw at least once");
        }
        if self.batch_size == 0 || self.batch_size > train_rows {
            return invalid(
                "llc-batch-size",
                self.batch_size.to_string(),
                "a batch needs at least one row and at most the training split's rows",
            );
        }
        let steps = self.burnin.checked_add(self.draws);
        if steps.is_none_or(|s| u32::try_from(s).is_err()) {
            let value = format!("{} + {}", self.burnin, self.draws);
            return invalid("llc-draws", value, "at most 2³² steps with the burn-in");
        }
        let last_seed = self.seed.checked_add(self.chains as u64 - 1);
        if last_seed.is_none_or(|s| s >= 1 << 32) {
            return invalid(
                "llc-seed",
                self.seed.to_string(),
                "the seed plus the chains must stay below 2^32 (chain c's rows are NumPy's \
                 RandomState(seed + c))",
            );
        }
        Ok(())
    }
}

/// The LLC at one point: the estimate, each chain's, the loss traces and what to tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlcEstimate {
    /// The mean of the chains' `λ̂` (those that did not diverge; `None` if all did).
    pub llc_mean: Option<f64>,
    /// Their standard deviation (`ddof = 0`, as devinterp's).
    pub llc_std: Option<f64>,
    /// Each chain's `λ̂` (`None` for a chain that diverged).
    pub llc_per_chain: Vec<Option<f64>>,
    /// `L_init`: the mean loss at `w*` over the training rows.
    pub init_loss: f64,
    /// The inverse temperature nβ used.
    pub nbeta: f64,
    /// Per chain, the mean minibatch loss of every step before it (burn-in included), up to the
    /// first that is not finite.
    pub traces: Vec<Vec<f64>>,
    /// Per chain, the step whose minibatch loss was not finite (NaN or infinite), if any.
    pub diverged_at: Vec<Option<usize>>,
    /// Diagnostics, one line each ([`diagnose`]).
    pub warnings: Vec<String>,
}

/// A chain rises by more than this share of its excess over `L_init` from the second to the
/// last quarter of its draws: it has not settled.
const RISING: f64 = 0.1;

/// A chain's diagnostics from the mean losses of its draws (burn-in removed), `L_init` and nβ:
/// a chain still rising at the end (ε too large, or γ too small for ε), one whose mean cannot be
/// told from `L_init` (ε too small), one whose `λ̂` is negative (w* is not a local minimum, or ε
/// is too large). Autocorrelation is ignored, so the standard errors are optimistic.
pub fn diagnose(draws: &[f64], init_loss: f64, nbeta: f64) -> Vec<String> {
    let mut found = Vec::new();
    let n = draws.len();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64
    };
    let all = mean(draws);
    let se = (var(draws) / n as f64).sqrt();
    if n >= 8 {
        let (q2, q4) = (&draws[n / 4..n / 2], &draws[3 * n / 4..]);
        let rise = mean(q4) - mean(q2);
        let rise_se = (var(q2) / q2.len() as f64 + var(q4) / q4.len() as f64).sqrt();
        let excess = mean(q4) - init_loss;
        if rise > RISING * excess.abs() && rise > 3.0 * rise_se {
            found.push(format!(
                "its loss is still rising (by {:.0}% of its excess over L_init from the second to \
                 the last quarter of the draws): the step size may be too large, the localisation \
                 too small, or the draws too few",
                100.0 * rise / excess.abs().max(f64::MIN_POSITIVE)
            ));
        }
    }
    if (all - init_loss).abs() <= 2.0 * se {
        found.push(format!(
            "its mean loss is within two standard errors of L_init (λ̂ = {:.3}): the step size may \
             be too small",
            nbeta * (all - init_loss)
        ));
    } else if all < init_loss {
        found.push(format!(
            "its λ̂ is negative ({:.3}): w* may not be a local minimum of the loss, or the step \
             size is too large",
            nbeta * (all - init_loss)
        ));
    }
    found
}

/// Chain `chain`'s training rows: NumPy's `RandomState(seed + chain).permutation(n)` of `train`,
/// cut to `batches · m` rows.
fn chain_rows(train: &Rows, seed: u64, chain: usize, kept: usize) -> Result<Rows> {
    let order = Mt19937::new(seed.wrapping_add(chain as u64))?.permutation(train.len());
    let pick = |v: &[u32]| order[..kept].iter().map(|&r| v[r as usize]).collect();
    Ok(Rows {
        a: pick(&train.a),
        b: pick(&train.b),
        y: pick(&train.y),
    })
}

/// The LLC at each of `centres` (one network each, all of one shape), on the training rows
/// `train`, with the loss and activation of `method` (its other choices are ignored), by
/// `config.chains` SGLD chains per centre as one stack on backend `B`. `progress` is called
/// after every step with the steps done (of [`LlcConfig::steps`]).
///
/// # Shapes
/// `centres`: S networks of modulus `p` and width `d_hidden`; `train`: rows of that `p`; the
/// result: S estimates, in order.
///
/// # Errors
/// [`LlcConfig::validate`]'s; [`Error::InvalidConfig`] for no centres or centres of different
/// shapes.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use grokking::{analysis::llc::{estimate_llc, LlcConfig}, step::Rows, MlpConfig, Method, ModularDataset, Split};
///
/// let data = ModularDataset::new(7, 0.8, 1)?;
/// let weights = MlpConfig::new().with_p(7).with_d_hidden(8).init_weights(1);
/// let config = LlcConfig { chains: 2, draws: 20, batch_size: 8, ..LlcConfig::default() };
/// let train = Rows::new(&data, Split::Train);
/// let found = estimate_llc::<Flex>(&[weights], &train, &Method::default(), &config, &Default::default(), &mut |_| {})?;
/// assert_eq!(found[0].llc_per_chain.len(), 2);
/// assert_eq!(found[0].traces[0].len(), 20);
/// # Ok::<(), grokking::Error>(())
/// ```
pub fn estimate_llc<B: StepBackend>(
    centres: &[MlpWeights],
    train: &Rows,
    method: &Method,
    config: &LlcConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<LlcEstimate>> {
    let n = train.len();
    config.validate(n)?;
    let first = centres.first().ok_or(Error::InvalidConfig {
        field: "centres",
        value: "[]".into(),
        reason: "estimate the LLC at one point at least",
    })?;
    let (p, h) = (first.p(), first.d_hidden());
    if let Some(other) = centres.iter().find(|c| (c.p(), c.d_hidden()) != (p, h)) {
        return Err(Error::InvalidConfig {
            field: "centres",
            value: format!("p {}, {} hidden", other.p(), other.d_hidden()),
            reason: "every point must have the first one's shape",
        });
    }
    let (m, chains) = (config.batch_size, config.chains);
    let batches = n / m;
    let nbeta = config.nbeta();
    let hyper = Hyper {
        lr: config.lr,
        weight_decay: config.weight_decay,
        epsilon: 0.0,
    };
    let orders = (0..chains)
        .map(|c| chain_rows(train, config.seed, c, batches * m))
        .collect::<Result<Vec<_>>>()?;
    // Chain `c` at `centre`, stepping on `rows` (a stack's members share their validation rows'
    // count: a chain's own rows, which it never validates on).
    let member = |centre: &MlpWeights, c: usize, rows: &Rows, val: &Rows| MemberSetup {
        weights: centre.clone(),
        optimizer: None,
        hyper,
        method: Method {
            grokfast: None,
            orthograd: false,
            optimizer: Optimizer::Sgld {
                nbeta,
                localization: config.localization,
                seed: config.seed,
                chain: c as u32,
            },
            ..*method
        },
        train: rows.clone(),
        val: val.clone(),
    };
    let stack = |members: Vec<MemberSetup>| {
        let setup = StackSetup {
            p,
            d_hidden: h,
            members,
            threads: 0,
        };
        B::stack_init(setup, device)
    };
    // L_init: one validation pass over the training rows at each centre, once per centre.
    let mut at_centres = stack(
        centres
            .iter()
            .map(|centre| member(centre, 0, &orders[0], train))
            .collect(),
    );
    B::stack_validate(&mut at_centres);
    let init: Vec<f64> = B::stack_take_sums(&mut at_centres)
        .iter()
        .map(|s| s.val.loss_sum / n as f64)
        .collect();
    drop(at_centres);
    let members: Vec<MemberSetup> = centres
        .iter()
        .flat_map(|centre| {
            orders
                .iter()
                .enumerate()
                .map(move |(c, rows)| member(centre, c, rows, rows))
        })
        .collect();
    let k = members.len();
    let mut stack = stack(members);
    let mut traces = vec![Vec::with_capacity(config.steps()); k];
    let mut diverged_at = vec![None; k];
    for step in 0..config.steps() {
        let b = step % batches;
        B::stack_step(&mut stack, b * m..(b + 1) * m);
        for (member, sums) in B::stack_take_train_sums(&mut stack).iter().enumerate() {
            let loss = sums.loss_sum / m as f64;
            if diverged_at[member].is_some() {
                continue;
            }
            if loss.is_finite() {
                traces[member].push(loss);
            } else {
                diverged_at[member] = Some(step);
            }
        }
        progress(step + 1);
    }
    let mut traces = traces.into_iter();
    let mut diverged_at = diverged_at.into_iter();
    Ok((0..centres.len())
        .map(|i| {
            let traces: Vec<Vec<f64>> = traces.by_ref().take(chains).collect();
            let diverged: Vec<Option<usize>> = diverged_at.by_ref().take(chains).collect();
            summarise(init[i], nbeta, config.burnin, traces, diverged)
        })
        .collect())
}

/// One point's estimate from its chains' traces.
fn summarise(
    init_loss: f64,
    nbeta: f64,
    burnin: usize,
    traces: Vec<Vec<f64>>,
    diverged_at: Vec<Option<usize>>,
) -> LlcEstimate {
    let mut warnings = Vec::new();
    let llc_per_chain: Vec<Option<f64>> = traces
        .iter()
        .zip(&diverged_at)
        .enumerate()
        .map(|(c, (trace, diverged))| {
            if let Some(step) = diverged {
                warnings.push(format!(
                    "chain {c} diverged at step {step} (its minibatch loss was not finite): the \
                     step size is too large"
                ));
                return None;
            }
            let draws = &trace[burnin..];
            warnings.extend(
                diagnose(draws, init_loss, nbeta)
                    .into_iter()
                    .map(|w| format!("chain {c}: {w}")),
            );
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            Some(nbeta * (mean - init_loss))
        })
        .collect();
    let kept: Vec<f64> = llc_per_chain.iter().flatten().copied().collect();
    let (llc_mean, llc_std) = if kept.is_empty() {
        (None, None)
    } else {
        let mean = kept.iter().sum::<f64>() / kept.len() as f64;
        let var = kept.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / kept.len() as f64;
        (Some(mean), Some(var.sqrt()))
    };
    LlcEstimate {
        llc_mean,
        llc_std,
        llc_per_chain,
        init_loss,
        nbeta,
        traces,
        diverged_at,
        warnings,
    }
}

/// [`estimate_llc`] on `backend`'s own implementation of the step (host code on the CPU
/// backends, the CubeCL kernels on the GPU ones), on its default device, after checking that
/// the backend runs here ([`device::on_backend`]).
///
/// # Errors
/// As [`estimate_llc`]; [`Error::NotCompiled`], [`Error::Device`].
pub fn estimate_llc_on(
    backend: BackendKind,
    centres: &[MlpWeights],
    train: &Rows,
    method: &Method,
    config: &LlcConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<LlcEstimate>> {
    struct Estimate<'a> {
        centres: &'a [MlpWeights],
        train: &'a Rows,
        method: &'a Method,
        config: &'a LlcConfig,
        progress: &'a mut dyn FnMut(usize),
    }
    impl BackendJob for Estimate<'_> {
        type Output = Vec<LlcEstimate>;
        fn run<B: TrainBackend>(self, device: &B::Device) -> Result<Vec<LlcEstimate>> {
            estimate_llc::<B::InnerBackend>(
                self.centres,
                self.train,
                self.method,
                self.config,
                device,
                self.progress,
            )
        }
    }
    let job = Estimate {
        centres,
        train,
        method,
        config,
        progress,
    };
    device::on_backend(backend, job)
}

/// The rows a model was trained on: `data`'s training split, with the labels that `config`'s
/// label noise corrupted (`None`: the notebook's method, no noise).
///
/// # Errors
/// A label-noise fraction outside [0, 1) ([`ModularDataset::label_noise`]).
pub fn training_rows(data: &ModularDataset, config: Option<&TrainingConfig>) -> Result<Rows> {
    let mut rows = Rows::new(data, Split::Train);
    if let Some(c) = config {
        data.label_noise(c.label_noise, c.seed)?.apply(&mut rows.y);
    }
    Ok(rows)
}

/// `llc.json`: the LLC at one model, with the sampler's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlcRecord {
    /// The sampler's settings.
    pub config: LlcConfig,
    /// The backend the chains ran on.
    pub backend: String,
    /// Seconds of sampling (`L_init` included).
    pub seconds: f64,
    /// The estimate.
    #[serde(flatten)]
    pub estimate: LlcEstimate,
}

/// `llc_snapshots.json`: the LLC at every snapshot of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlcSnapshots {
    /// The sampler's settings.
    pub config: LlcConfig,
    /// The backend the chains ran on.
    pub backend: String,
    /// Seconds of sampling, all snapshots.
    pub seconds: f64,
    /// The epoch of each snapshot.
    pub epochs: Vec<usize>,
    /// The estimate at each snapshot.
    pub estimates: Vec<LlcEstimate>,
}

/// Bytes [`estimate_llc`] needs on the host for `points` networks of shape `(p, d_hidden)` on
/// `train_rows` rows: per chain its weights, moments and gradients, its rows (twice: the stack
/// keeps validation rows of the same count), and its trace.
pub fn memory_estimate(
    (p, d_hidden): (usize, usize),
    train_rows: usize,
    points: usize,
    config: &LlcConfig,
) -> u64 {
    let members = points as f64 * config.chains as f64;
    crate::memory::bytes(&[
        (members * (3 * p * d_hidden) as f64, 4.0 * 4.0),
        (members * train_rows as f64, 2.0 * 3.0 * 4.0),
        (members * config.steps() as f64, 8.0),
    ])
}

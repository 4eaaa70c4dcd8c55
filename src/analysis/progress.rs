//! Progress measures along training (Nanda et al. 2023, "Progress measures for grokking via
//! mechanistic interpretability"), adapted to this MLP and computed per snapshot
//! ([`Snapshots`]).
//!
//! Everything is in the coordinates of the run's operation ([`Basis`]; the residues for
//! addition, their discrete logarithms for multiplication), where the network is an addition
//! network mod `m`. Per snapshot:
//! - `train_loss`, `val_loss`, `train_acc`, `val_acc`: cross-entropy and accuracy of the
//!   snapshot's logits on the training and validation rows (recomputed on the host in `f64`).
//! - `restricted_loss`: the logits (centred per row) projected onto the directions
//!   `cos(2πk(s - y_c)/m)` and `sin(…)` of the key frequencies `k`, where `s = y_a + y_b` is the
//!   pair's coordinate sum and `y_c` the class's coordinate (the directions are 0 at a class
//!   without a coordinate); cross-entropy over all pairs with coordinates. Low when the key
//!   frequencies alone carry the answer.
//! - `excluded_loss`: the same directions removed from the logits; cross-entropy on the training
//!   pairs. High once the memorised answer lives in the key frequencies.
//! - `gini_fc1`, `gini_fc2`: Gini coefficient of the norms of fc1's (fc2's) weights per Fourier
//!   frequency `k = 0..=m/2` (pooled over neurons and operands): near 1 when few frequencies hold
//!   the weights.
//! - `weight_norm`: total squared weight, `Σ fc1² + Σ fc2²`.
//! - `single_frequency_share`: the fraction of neurons whose input weights (both operands) have
//!   at least [`SINGLE_FREQUENCY`] of their non-constant power at one frequency.
//! - `replaced_accuracy`: accuracy on all pairs with every neuron replaced by its cosines.
//! - `llc`, `llc_std` (with `analyze --llc`): the local learning coefficient
//!   ([`crate::analysis::llc`]) and its spread over the chains.
//! - `ipr`, `ipr_mean`: each neuron's inverse participation ratio (Doshi et al. 2024, `r = 2`)
//!   over the non-constant frequencies of its input power ([`ipr`]), and their mean: 1 for a
//!   neuron on one frequency (generalising), near `2/m` for a flat spectrum (memorising).
//!
//! The key frequencies are the frequencies the last snapshot's neurons use (each neuron's
//! strongest input frequency), or given. Unlike Nanda et al.'s transformer, which concentrates
//! on about five frequencies, this MLP spreads its neurons over many (49 of 56 in the notebook's
//! model), each neuron on one: restricting to the few frequencies with the most pooled power
//! (7 of them there) leaves a restricted loss of 2.86 against a full loss of 0.37. Pairs with an
//! operand without a coordinate (0 under a discrete log) are left out of the restricted and
//! excluded losses; a class without one stays in the softmax with no key-frequency component. The
//! definitions, with their differences from Nanda et al.'s transformer, are in `docs/dynamics.md`;
//! `reference/progress_measures.py` computes the same numbers with numpy from the snapshot file.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::{
    analysis::{
        basis::Basis,
        evaluate::{cross_entropy, first_argmax, HostNetwork},
        fourier::{dft, fit_neurons},
        replace::replacement_accuracy,
    },
    data::{ModularDataset, Split},
    error::{Error, Result},
    io::snapshots::Snapshots,
    model::MlpWeights,
};

/// Share of a neuron's non-constant input power one frequency must hold for the neuron to count
/// in `single_frequency_share`.
pub const SINGLE_FREQUENCY: f64 = 0.85;

/// The progress measures of a run, one value per snapshot. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressMeasures {
    /// The epoch of each snapshot.
    pub epochs: Vec<usize>,
    /// The coordinates ([`Basis::name`]).
    pub basis: String,
    /// Their period.
    pub m: usize,
    /// The key frequencies, ascending.
    pub key_frequencies: Vec<usize>,
    /// Accuracy on the training rows.
    pub train_acc: Vec<f64>,
    /// Accuracy on the validation rows.
    pub val_acc: Vec<f64>,
    /// Cross-entropy on the training rows.
    pub train_loss: Vec<f64>,
    /// Cross-entropy on the validation rows.
    pub val_loss: Vec<f64>,
    /// Cross-entropy of the logits restricted to the key frequencies, all pairs.
    pub restricted_loss: Vec<f64>,
    /// Cross-entropy with the key frequencies removed, training pairs.
    pub excluded_loss: Vec<f64>,
    /// Gini coefficient of fc1's per-frequency norms.
    pub gini_fc1: Vec<f64>,
    /// Gini coefficient of fc2's per-frequency norms.
    pub gini_fc2: Vec<f64>,
    /// `Σ fc1² + Σ fc2²`.
    pub weight_norm: Vec<f64>,
    /// Fraction of neurons with one dominant input frequency.
    pub single_frequency_share: Vec<f64>,
    /// Accuracy on all pairs with every neuron replaced by its cosines.
    pub replaced_accuracy: Vec<f64>,
    /// Each neuron's [`ipr`] of its input power, `[snapshots][neurons]` (empty in files written
    /// before it was measured).
    #[serde(default)]
    pub ipr: Vec<Vec<f64>>,
    /// The mean over neurons of `ipr`.
    #[serde(default)]
    pub ipr_mean: Vec<f64>,
    /// The local learning coefficient's estimate at each snapshot ([`crate::analysis::llc`];
    /// empty unless it was asked for, `None` where every chain diverged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llc: Vec<Option<f64>>,
    /// The chains' standard deviation of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llc_std: Vec<Option<f64>>,
}

/// Bytes [`progress_measures`] needs for modulus `p` beyond the snapshots: the logits of all
/// pairs with their restricted and excluded copies, in `f64`.
pub fn memory_estimate(p: usize) -> u64 {
    let p = p as f64;
    crate::memory::bytes(&[(p * p * p, 24.0)])
}

/// Power of `v` (length `m`) per frequency `k = 0..=m/2`: `|V_0|²`, `|V_k|² + |V_{m-k}|²`, and
/// `|V_{m/2}|²` at the Nyquist frequency of an even `m`.
///
/// # Shapes
/// `v: [m]` -> `[m/2 + 1]`.
///
/// # Panics
/// If `v` is empty.
pub fn frequency_power(v: &[f64]) -> Vec<f64> {
    let m = v.len();
    let spectrum = dft(v);
    (0..=m / 2)
        .map(|k| {
            if k == 0 || 2 * k == m {
                spectrum[k].norm_sqr()
            } else {
                spectrum[k].norm_sqr() + spectrum[m - k].norm_sqr()
            }
        })
        .collect()
}

/// The Gini coefficient of non-negative `values`: 0 when all are equal, near 1 when one holds
/// everything; 0 for all zeros.
pub fn gini(values: &[f64]) -> f64 {
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    let (n, total) = (x.len() as f64, x.iter().sum::<f64>());
    if total == 0.0 {
        return 0.0;
    }
    let weighted: f64 = x
        .iter()
        .enumerate()
        .map(|(i, v)| (2.0 * (i + 1) as f64 - n - 1.0) * v)
        .sum();
    weighted / (n * total)
}

/// Per neuron, the frequency power of its two input vectors summed, `[h][m/2 + 1]` (in view
/// coordinates).
fn input_power(view: &MlpWeights) -> Vec<Vec<f64>> {
    (0..view.d_hidden())
        .map(|n| {
            let (a, b) = (
                frequency_power(&view.input_a(n)),
                frequency_power(&view.input_b(n)),
            );
            a.iter().zip(&b).map(|(x, y)| x + y).collect()
        })
        .collect()
}

/// Whether `power` (per frequency `k = 0..=m/2`, as [`frequency_power`] gives it) has at least
/// [`SINGLE_FREQUENCY`] of its non-constant part (`k ≥ 1`) at one frequency.
pub fn on_one_frequency(power: &[f64]) -> bool {
    let total: f64 = power[1..].iter().sum();
    let top = power[1..].iter().copied().fold(0.0, f64::max);
    total > 0.0 && top >= SINGLE_FREQUENCY * total
}

/// The inverse participation ratio (Doshi et al. 2024, with `r = 2`) of a neuron's power
/// spectrum `power` (per frequency `k = 0..=m/2`, as [`frequency_power`] gives it) over its
/// non-constant part: `Σ_{k≥1} P_k² / (Σ_{k≥1} P_k)²`, that is `‖ν‖₄⁴ / ‖ν‖₂⁴` of the one-sided
/// Fourier magnitudes `ν_k = √P_k`. 1 when one frequency holds all the power, `1/n` when `n`
/// frequencies share it equally; 0 for a neuron without non-constant power.
///
/// # Panics
/// If `power` is empty.
pub fn ipr(power: &[f64]) -> f64 {
    let total: f64 = power[1..].iter().sum();
    if total > 0.0 {
        power[1..].iter().map(|v| v * v).sum::<f64>() / (total * total)
    } else {
        0.0
    }
}

/// The frequencies the neurons of `weights` (read in `basis`) use: each neuron's strongest input
/// frequency (power of its two input vectors summed, first on ties), over the neurons with any
/// non-constant input, ascending and distinct.
///
/// # Panics
/// If `basis` is for another modulus than `weights`.
pub fn key_frequencies(weights: &MlpWeights, basis: &Basis) -> Vec<usize> {
    let mut keys: Vec<usize> = input_power(&basis.view(weights))
        .iter()
        .filter(|n| n[1..].iter().any(|&v| v > 0.0))
        .map(|n| 1 + first_argmax(&n[1..]))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The rows with coordinates, their coordinate sums, and the key-frequency directions.
struct Directions {
    /// Row ids of the data set (ascending) whose operands both have coordinates.
    rows: Vec<u32>,
    /// Per row, `(y_a + y_b) mod m`.
    sums: Vec<usize>,
    /// Per class, its coordinate.
    class: Vec<Option<usize>>,
}

impl Directions {
    fn new(data: &ModularDataset, basis: &Basis) -> Self {
        let [ya, yb, yc] = basis.coordinates();
        let p = data.p();
        let (mut rows, mut sums) = (Vec::new(), Vec::new());
        for &row in data.rows(Split::Full) {
            let (a, b) = data.pair(row);
            if let (Some(x), Some(y)) = (ya[a], yb[b]) {
                rows.push(row);
                sums.push((x + y) % basis.m());
            }
        }
        debug_assert_eq!(yc.len(), p);
        Directions {
            rows,
            sums,
            class: yc,
        }
    }

    /// The restricted logits of the rows (`[rows, p]`), from the row-centred logits `centred`:
    /// their projection onto the key frequencies' directions over all rows. A direction's value
    /// at `(r, c)` depends only on `d = s_r - y_c mod m`, so the projections are taken from the
    /// sums of the logits per `d`.
    fn restrict(&self, centred: &[f64], keys: &[usize], m: usize) -> Vec<f64> {
        let p = self.class.len();
        let offset = |r: usize, c: usize| self.class[c].map(|yc| (self.sums[r] + m - yc) % m);
        let (mut sum, mut count) = (vec![0f64; m], vec![0f64; m]);
        for r in 0..self.rows.len() {
            for c in 0..p {
                if let Some(d) = offset(r, c) {
                    sum[d] += centred[r * p + c];
                    count[d] += 1.0;
                }
            }
        }
        let mut by_offset = vec![0f64; m];
        for &k in keys {
            let angle = |d: usize| 2.0 * PI * ((k * d) % m) as f64 / m as f64;
            let (mut lc, mut cc, mut ls, mut ss) = (0.0, 0.0, 0.0, 0.0);
            for d in 0..m {
                let (sin, cos) = angle(d).sin_cos();
                lc += sum[d] * cos;
                cc += count[d] * cos * cos;
                ls += sum[d] * sin;
                ss += count[d] * sin * sin;
            }
            let alpha = if cc > 0.0 { lc / cc } else { 0.0 };
            let beta = if ss > 1e-9 * cc { ls / ss } else { 0.0 };
            for (d, value) in by_offset.iter_mut().enumerate() {
                let (sin, cos) = angle(d).sin_cos();
                *value += alpha * cos + beta * sin;
            }
        }
        let mut restricted = vec![0f64; centred.len()];
        for r in 0..self.rows.len() {
            for c in 0..p {
                if let Some(d) = offset(r, c) {
                    restricted[r * p + c] = by_offset[d];
                }
            }
        }
        restricted
    }
}

/// The measures of every snapshot, with key frequencies from the last snapshot unless `keys` are
/// given. See the [module docs](self).
///
/// # Errors
/// [`Error::Analysis`] if there is no snapshot or a given key frequency is not in `1..=m/2`;
/// the data set's errors for the snapshots' configuration.
pub fn progress_measures(
    snapshots: &Snapshots,
    keys: Option<&[usize]>,
) -> Result<ProgressMeasures> {
    let config = snapshots.config();
    let last = snapshots.len().checked_sub(1).ok_or(Error::Analysis {
        what: "progress measures",
        reason: "the snapshot file holds no snapshot".into(),
    })?;
    let p = config.model.p;
    let data =
        ModularDataset::with_operation(p, config.operation, config.train_fraction, config.seed)?;
    let basis = Basis::for_operation(config.operation, p);
    let m = basis.m();
    let key_frequencies = match keys {
        Some(keys) => {
            if let Some(k) = keys.iter().find(|&&k| k == 0 || k > m / 2) {
                return Err(Error::Analysis {
                    what: "progress measures",
                    reason: format!("key frequency {k} is not in 1..={}", m / 2),
                });
            }
            let mut keys = keys.to_vec();
            keys.sort_unstable();
            keys.dedup();
            keys
        }
        None => key_frequencies(&snapshots.weights(last), &basis),
    };
    let directions = Directions::new(&data, &basis);
    let mut is_train = vec![false; p * p];
    for &r in data.train_rows() {
        is_train[r as usize] = true;
    }
    // Each snapshot's logits are computed once, for all rows in grid order; a row id's place
    // among them serves the splits and the rows with coordinates.
    let all_rows = data.rows(Split::Full);
    let mut place = vec![0usize; p * p];
    for (i, &r) in all_rows.iter().enumerate() {
        place[r as usize] = i;
    }
    let labels: Vec<usize> = directions.rows.iter().map(|&r| data.label(r)).collect();
    let mut out = ProgressMeasures {
        epochs: snapshots.epochs().to_vec(),
        basis: basis.name(),
        m,
        key_frequencies,
        train_acc: Vec::new(),
        val_acc: Vec::new(),
        train_loss: Vec::new(),
        val_loss: Vec::new(),
        restricted_loss: Vec::new(),
        excluded_loss: Vec::new(),
        gini_fc1: Vec::new(),
        gini_fc2: Vec::new(),
        weight_norm: Vec::new(),
        single_frequency_share: Vec::new(),
        replaced_accuracy: Vec::new(),
        ipr: Vec::new(),
        ipr_mean: Vec::new(),
        llc: Vec::new(),
        llc_std: Vec::new(),
    };
    let mean = |values: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        sum / n.max(1) as f64
    };
    for i in 0..snapshots.len() {
        let weights = snapshots.weights(i);
        let logits = HostNetwork::new(&weights).logits_of(&data, all_rows);
        let of = |r: u32| &logits[place[r as usize] * p..][..p];
        for (split, loss, acc) in [
            (Split::Train, &mut out.train_loss, &mut out.train_acc),
            (Split::Val, &mut out.val_loss, &mut out.val_acc),
        ] {
            let rows = data.rows(split);
            loss.push(mean(
                &mut rows.iter().map(|&r| cross_entropy(of(r), data.label(r))),
            ));
            acc.push(mean(&mut rows.iter().map(|&r| {
                f64::from(u8::from(first_argmax(of(r)) == data.label(r)))
            })));
        }
        let mut centred: Vec<f64> = directions
            .rows
            .iter()
            .flat_map(|&r| of(r))
            .copied()
            .collect();
        for row in centred.chunks_exact_mut(p) {
            let mean = row.iter().sum::<f64>() / p as f64;
            row.iter_mut().for_each(|l| *l -= mean);
        }
        let restricted = directions.restrict(&centred, &out.key_frequencies, m);
        out.restricted_loss.push(mean(
            &mut restricted
                .chunks_exact(p)
                .zip(&labels)
                .map(|(l, &y)| cross_entropy(l, y)),
        ));
        out.excluded_loss.push(mean(
            &mut centred
                .chunks_exact(p)
                .zip(restricted.chunks_exact(p))
                .zip(directions.rows.iter().zip(&labels))
                .filter(|(_, (&r, _))| is_train[r as usize])
                .map(|((l, rl), (_, &y))| {
                    let excluded: Vec<f64> = l.iter().zip(rl).map(|(a, b)| a - b).collect();
                    cross_entropy(&excluded, y)
                }),
        ));
        let view = basis.view(&weights);
        let power = input_power(&view);
        let norms = |per_neuron: &[Vec<f64>]| -> Vec<f64> {
            (0..=m / 2)
                .map(|k| per_neuron.iter().map(|n| n[k]).sum::<f64>().sqrt())
                .collect()
        };
        out.gini_fc1.push(gini(&norms(&power)));
        let output_power: Vec<Vec<f64>> = (0..view.d_hidden())
            .map(|n| frequency_power(&view.output(n)))
            .collect();
        out.gini_fc2.push(gini(&norms(&output_power)));
        out.weight_norm.push(
            weights
                .fc1()
                .iter()
                .chain(weights.fc2())
                .map(|&w| (w as f64) * (w as f64))
                .sum(),
        );
        let iprs: Vec<f64> = power.iter().map(|n| ipr(n)).collect();
        out.ipr_mean.push(mean(&mut iprs.iter().copied()));
        out.ipr.push(iprs);
        let single = power.iter().filter(|n| on_one_frequency(n)).count();
        out.single_frequency_share
            .push(single as f64 / view.d_hidden() as f64);
        let all: Vec<usize> = (0..view.d_hidden()).collect();
        let fits = fit_neurons(&view);
        out.replaced_accuracy
            .push(replacement_accuracy(&weights, &fits, &all, &data).full);
    }
    Ok(out)
}

impl ProgressMeasures {
    /// The epoch of the first snapshot whose `accuracy` (`train_acc` or `val_acc`) reaches
    /// `threshold`.
    ///
    /// # Panics
    /// If `accuracy` has more entries than there are snapshots.
    pub fn first_reaching(&self, accuracy: &[f64], threshold: f64) -> Option<usize> {
        accuracy
            .iter()
            .position(|&a| a >= threshold)
            .map(|i| self.epochs[i])
    }

    /// Writes the measures as JSON, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn write(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        crate::io::write_json(path, self)
    }
}

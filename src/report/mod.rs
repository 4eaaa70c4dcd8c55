//! The HTML report: every analysis of [`crate::analysis`], drawn.
//!
//! [`analyze`] runs the analyses and returns their numbers ([`Analysis`], serialisable);
//! [`write_report`] also draws them into `figures/*.svg` and writes `report.html` (one page,
//! offline: it references only the figures beside it) and `analysis.json` (every number), all
//! atomically. Figures are drawn with plotters' SVG backend (`figures`); the page is a template
//! (`page.html`) with every inserted text escaped.

pub mod plot;

mod figures;
mod page;

use std::{path::Path, time::Instant};

use serde::{Deserialize, Serialize};

use crate::{
    analysis::{
        self,
        cluster::{adjusted_rand_index, kmeans},
        construction::{construction_curve, ConstructionCurve},
        embed::tsne,
        evaluate::post_by_neuron,
        fourier::NeuronFit,
        frequencies::{frequency_histogram, neuron_frequencies, FrequencyHistogram},
        phases::{phase_relations, PhaseRelations},
        progress::ProgressMeasures,
        similarity::{cosine_similarity, fc1_rows, fc2_columns, isometric_coordinates},
        sweep_replacement::{replacement_sweep, ReplacementSweep},
        waveform::{fit_waveforms, summarize, WaveformFit, WaveformSummary},
    },
    data::{ModularDataset, Split},
    error::{Error, Result},
    io::write_json,
    model::MlpWeights,
    operation::Operation,
    train::History,
};

/// What the report computes, and how much. The defaults take about 2 s in a release build for
/// the notebook's p = 113, 100 neurons on a 2-core machine (1.8–2.2 s measured 2026-11-27;
/// `grok` prints it, docs/benchmarks.md keeps the figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// k-means clusters.
    pub clusters: usize,
    /// t-SNE perplexity (lowered for small sets).
    pub perplexity: f64,
    /// Seed of k-means, t-SNE, the replacement draws and the construction.
    pub seed: u64,
    /// Points on the replacement curve.
    pub sweep_points: usize,
    /// Random draws per point of the replacement curve.
    pub sweep_draws: usize,
    /// Numbers of neurons of the untrained construction.
    pub construction_sizes: Vec<usize>,
    /// Seeds of the untrained construction.
    pub construction_seeds: Vec<u64>,
    /// Neurons whose activations are drawn as heatmaps.
    pub heatmap_neurons: Vec<usize>,
    /// The step's method of the trained run, shown in the summary (`None`: not known, as for a
    /// saved model).
    #[serde(default)]
    pub method: Option<crate::step::Method>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            clusters: 10,
            perplexity: 30.0,
            seed: 0,
            sweep_points: 21,
            sweep_draws: 10,
            construction_sizes: vec![16, 32, 64, 128, 256, 512],
            construction_seeds: vec![0, 1, 2],
            heatmap_neurons: vec![0, 1, 2],
            method: None,
        }
    }
}

/// A t-SNE embedding and the k-means clusters of the same vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// 2-D t-SNE coordinates per neuron.
    pub tsne: Vec<[f64; 2]>,
    /// k-means cluster per neuron.
    pub clusters: Vec<usize>,
    /// Adjusted Rand index of the clusters against the neurons' FFT frequencies.
    pub ari_vs_freq: f64,
    /// Mean cosine similarity between neurons of the same frequency (pairs of distinct neurons).
    pub mean_similarity_same_freq: Option<f64>,
    /// Mean cosine similarity between neurons of different frequencies.
    pub mean_similarity_other_freq: Option<f64>,
}

/// Every number of the report.
///
/// The weight analyses (fits, frequencies, phases, embeddings, activations, waveforms) are of the
/// weights read in the coordinates of the operation ([`Basis`](crate::analysis::basis::Basis): the residues for addition, their
/// discrete logarithms for multiplication), an addition network mod `m`; the accuracies are of the
/// network itself, on the data set's pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The modulus.
    pub p: usize,
    /// The operation the network was trained on.
    pub operation: Operation,
    /// The coordinates of the weight analyses ([`Basis::name`](crate::analysis::basis::Basis::name)).
    pub basis: String,
    /// The modulus of those coordinates: `p`, or `p - 1` under a discrete log.
    pub m: usize,
    /// Mean R² of the neurons' cosine fits in `basis`.
    pub mean_r2: f64,
    /// Mean R² of the neurons' cosine fits in the identity coordinates (the residues).
    pub mean_r2_identity: f64,
    /// Hidden neurons.
    pub d_hidden: usize,
    /// The configuration used.
    pub config: ReportConfig,
    /// Accuracy on all of the data set's pairs.
    pub accuracy_full: f64,
    /// Accuracy on the validation rows.
    pub accuracy_val: f64,
    /// First epoch with validation accuracy >= 0.99, if a history was given.
    pub grok_epoch: Option<usize>,
    /// Epochs in the history, if one was given.
    pub trained_epochs: Option<usize>,
    /// Cosine fits per neuron.
    pub fits: Vec<NeuronFit>,
    /// Frequency label per neuron (input a's).
    pub freqs: Vec<usize>,
    /// Neurons per frequency.
    pub histogram: FrequencyHistogram,
    /// Input a against input b; the phase-sum law.
    pub phases: PhaseRelations,
    /// fc1's rows (`[d_hidden][2p]`).
    pub fc1: Embedding,
    /// fc2's columns (`[d_hidden][p]`).
    pub fc2: Embedding,
    /// Post-ReLU activations per neuron (`[d_hidden][p²]`).
    pub activations: Embedding,
    /// Per neuron `[in_a, in_b, out]`: cosine vs square wave vs rectified cosine.
    pub waveforms: Vec<[WaveformFit; 3]>,
    /// Summary over the input vectors (`in_a`, `in_b`) only.
    pub waveform_inputs: WaveformSummary,
    /// Summary over the output vectors.
    pub waveform_outputs: WaveformSummary,
    /// Accuracy against the fraction of neurons replaced by cosines.
    pub sweep: ReplacementSweep,
    /// The untrained random-cosine construction.
    pub construction: ConstructionCurve,
    /// Seconds spent per analysis, in order.
    pub seconds: Vec<(String, f64)>,
}

fn mean_similarity(sim: &[Vec<f64>], freqs: &[usize]) -> (Option<f64>, Option<f64>) {
    let (mut same, mut ns, mut other, mut no) = (0.0, 0usize, 0.0, 0usize);
    for i in 0..sim.len() {
        for j in i + 1..sim.len() {
            if freqs[i] == freqs[j] {
                same += sim[i][j];
                ns += 1;
            } else {
                other += sim[i][j];
                no += 1;
            }
        }
    }
    (
        (ns > 0).then(|| same / ns as f64),
        (no > 0).then(|| other / no as f64),
    )
}

fn embedding(
    rows: &[Vec<f64>],
    freqs: &[usize],
    config: &ReportConfig,
) -> Result<(Embedding, Vec<Vec<f64>>)> {
    let sim = cosine_similarity(rows);
    // Same distances in at most n coordinates: k-means and t-SNE of 12,769-long activation
    // vectors would otherwise take seconds.
    let rows = &isometric_coordinates(rows);
    let clusters = kmeans(rows, config.clusters.min(rows.len()), config.seed)?;
    let (same, other) = mean_similarity(&sim, freqs);
    Ok((
        Embedding {
            tsne: tsne(rows, config.perplexity, config.seed)?,
            ari_vs_freq: adjusted_rand_index(&clusters, freqs),
            clusters,
            mean_similarity_same_freq: same,
            mean_similarity_other_freq: other,
        },
        sim,
    ))
}

/// The analyses, the similarity matrices (kept out of [`Analysis`] for size), and the weights in
/// the analyses' coordinates.
struct Computed {
    analysis: Analysis,
    sims: [Vec<Vec<f64>>; 3],
    view: MlpWeights,
}

fn compute(
    weights: &MlpWeights,
    data: &ModularDataset,
    history: Option<&History>,
    config: &ReportConfig,
) -> Result<Computed> {
    if weights.p() != data.p() {
        return Err(Error::Analysis {
            what: "report",
            reason: format!("weights have p = {}, data p = {}", weights.p(), data.p()),
        });
    }
    if let Some(&n) = config
        .heatmap_neurons
        .iter()
        .find(|&&n| n >= weights.d_hidden())
    {
        return Err(Error::Analysis {
            what: "report",
            reason: format!(
                "heatmap neuron {n} out of range for {} neurons",
                weights.d_hidden()
            ),
        });
    }
    let mut seconds = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &str| {
        seconds.push((name.to_string(), clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    let p = weights.p();
    // The exact all-replaced accuracies come with the replacement sweep below.
    let found = analysis::fit_in_basis(weights, data);
    let view = found.basis.view(weights);
    let m = view.p();
    let fits = found.fits;
    let freqs = neuron_frequencies(&fits);
    let histogram = frequency_histogram(&freqs, m);
    let phases = phase_relations(&fits);
    let accuracy_full = analysis::accuracy(weights, data, Split::Full);
    let accuracy_val = analysis::accuracy(weights, data, Split::Val);
    lap("fits and accuracy");
    let (fc1, sim1) = embedding(&fc1_rows(&view), &freqs, config)?;
    let (fc2, sim2) = embedding(&fc2_columns(&view), &freqs, config)?;
    lap("weights: k-means, t-SNE, similarity");
    let (activations, sim3) = embedding(&post_by_neuron(&view), &freqs, config)?;
    lap("activations: k-means, t-SNE, similarity");
    let waveforms: Vec<[WaveformFit; 3]> = (0..view.d_hidden())
        .map(|n| {
            [
                fit_waveforms(&view.input_a(n)),
                fit_waveforms(&view.input_b(n)),
                fit_waveforms(&view.output(n)),
            ]
        })
        .collect();
    let inputs: Vec<WaveformFit> = waveforms.iter().flat_map(|w| [w[0], w[1]]).collect();
    let outputs: Vec<WaveformFit> = waveforms.iter().map(|w| w[2]).collect();
    lap("waveforms");
    let sweep = replacement_sweep(
        weights,
        &fits,
        data,
        config.sweep_points,
        config.sweep_draws,
        config.seed,
    )?;
    lap("replacement sweep");
    let construction =
        construction_curve(m, &config.construction_sizes, &config.construction_seeds)?;
    lap("construction");
    Ok(Computed {
        analysis: Analysis {
            p,
            operation: data.operation(),
            basis: found.basis.name(),
            m,
            mean_r2: found.mean_r2,
            mean_r2_identity: found.mean_r2_identity,
            d_hidden: weights.d_hidden(),
            config: config.clone(),
            accuracy_full,
            accuracy_val,
            grok_epoch: history.and_then(History::grok_epoch),
            trained_epochs: history.map(|h| h.epochs.len()),
            fits,
            freqs,
            histogram,
            phases,
            fc1,
            fc2,
            activations,
            waveform_inputs: summarize(&inputs),
            waveform_outputs: summarize(&outputs),
            waveforms,
            sweep,
            construction,
            seconds,
        },
        sims: [sim1, sim2, sim3],
        view,
    })
}

/// Bytes the report's analyses need for a model with modulus `p` and `d_hidden` neurons,
/// estimated before any of it is allocated: the `[p², p]` logits kept for the replacement
/// curves, the activations over all p² pairs, the neuron-by-neuron similarities.
pub fn memory_estimate(p: usize, d_hidden: usize) -> u64 {
    let (p, h) = (p as f64, d_hidden as f64);
    crate::memory::bytes(&[(p * p * p, 8.0), (p * p * h, 8.0), (h * h, 24.0)])
}

/// Runs every analysis of the report. See the [module docs](self).
///
/// # Errors
/// [`Error::Analysis`] if the weights and data disagree on p, a heatmap neuron is out of range,
/// or an analysis cannot run (fewer than 4 neurons for t-SNE, for one).
pub fn analyze(
    weights: &MlpWeights,
    data: &ModularDataset,
    history: Option<&History>,
    config: &ReportConfig,
) -> Result<Analysis> {
    Ok(compute(weights, data, history, config)?.analysis)
}

/// The LLC's diagnostic figure as an SVG document: every chain's minibatch loss over the SGLD
/// steps, with `L_init` ([`crate::analysis::llc`]).
///
/// # Errors
/// [`Error::Analysis`] if the figure cannot be drawn.
pub fn llc_trace_svg(estimate: &crate::analysis::llc::LlcEstimate) -> Result<String> {
    figures::llc_trace_svg(estimate)
}

/// Runs every analysis and writes `figures/*.svg`, `analysis.json` and `report.html` into
/// `folder` (created if missing), each file atomically. Returns the numbers. With `progress`
/// (measures of the run's snapshots, [`progress_measures`](crate::analysis::progress::progress_measures)),
/// the page gains a training-dynamics figure.
///
/// # Errors
/// As [`analyze`]; [`Error::Io`] if a file cannot be written.
pub fn write_report(
    folder: &Path,
    weights: &MlpWeights,
    data: &ModularDataset,
    history: Option<&History>,
    progress: Option<&ProgressMeasures>,
    config: &ReportConfig,
) -> Result<Analysis> {
    let computed = compute(weights, data, history, config)?;
    let drawn = figures::draw(&figures::Inputs {
        weights: &computed.view,
        history,
        a: &computed.analysis,
        sims: &computed.sims,
        progress,
    })?;
    let page = page::render(&computed.analysis, &drawn)?;
    let dir = folder.join("figures");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    for figure in &drawn {
        crate::io::write_atomic(dir.join(figure.file), figure.svg.as_bytes())?;
    }
    write_json(folder.join("analysis.json"), &computed.analysis)?;
    crate::io::write_atomic(folder.join("report.html"), page.as_bytes())?;
    Ok(computed.analysis)
}

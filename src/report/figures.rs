//! Draws the report's figures: one function per topic, each returning its figures (SVG text and
//! caption); [`draw`] runs them all in the page's order.

use std::f64::consts::PI;

use plotters::style::{RGBColor, BLACK};

use super::{
    plot::{self, Axes, Band, Heatmap, Line, Scatter, OTHER, PALETTE},
    Analysis,
};
use crate::{
    analysis::{
        evaluate::{grid, post_grid, pre_grid},
        llc::LlcEstimate,
        phases::{median, wrap_angle},
        progress::ProgressMeasures,
    },
    error::{Error, Result},
    model::MlpWeights,
    train::History,
};

/// What the figures are drawn from.
pub(super) struct Inputs<'a> {
    /// The model, in the analyses' coordinates (an addition network mod `a.m`).
    pub weights: &'a MlpWeights,
    /// Its training history, if any.
    pub history: Option<&'a History>,
    /// The analyses' numbers.
    pub a: &'a Analysis,
    /// Cosine similarities of fc1 rows, fc2 columns and activations.
    pub sims: &'a [Vec<Vec<f64>>; 3],
    /// Progress measures along training, if snapshots were kept.
    pub progress: Option<&'a ProgressMeasures>,
}

/// Percent with one decimal (captions and the page's table).
pub(super) fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// `x` with `digits` decimals, or "n/a" (captions and the page's table).
pub(super) fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

/// One figure of the page.
pub(super) struct Figure {
    /// File name under `figures/`.
    pub file: &'static str,
    /// Heading.
    pub title: &'static str,
    /// The SVG document.
    pub svg: String,
    /// Caption (plain text).
    pub caption: String,
}

fn figure(
    file: &'static str,
    title: &'static str,
    svg: plot::PlotResult<String>,
    caption: String,
) -> Result<Figure> {
    let svg = svg.map_err(|e| Error::Analysis {
        what: "figure",
        reason: format!("{file}: {e}"),
    })?;
    Ok(Figure {
        file,
        title,
        svg,
        caption,
    })
}

/// Draws one topic's figures.
type Topic = fn(&Inputs<'_>) -> Result<Vec<Figure>>;

/// Every figure, in the page's order.
///
/// # Errors
/// [`Error::Analysis`] if plotters fails to draw one.
pub(super) fn draw(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let topics: [Topic; 13] = [
        training_curves,
        dynamics,
        activation_heatmaps,
        replaced_pre_activation,
        neuron_fit,
        frequencies,
        fitted_parameters,
        phase_sum,
        weight_embeddings,
        activation_embeddings,
        replacement,
        construction,
        waveforms,
    ];
    let mut figures = Vec::new();
    for topic in topics {
        figures.extend(topic(x)?);
    }
    Ok(figures)
}

/// A colour per neuron from its frequency: the 9 most common frequencies get palette colours,
/// the others grey. Returns the colours and the legend.
fn freq_colors(freqs: &[usize]) -> (Vec<RGBColor>, Vec<(String, RGBColor)>) {
    let mut counts = std::collections::BTreeMap::new();
    for &k in freqs {
        *counts.entry(k).or_insert(0usize) += 1;
    }
    let mut by_count: Vec<(usize, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<usize> = by_count.iter().take(9).map(|&(k, _)| k).collect();
    let colors = freqs
        .iter()
        .map(|k| {
            top.iter()
                .position(|t| t == k)
                .map_or(OTHER, |i| PALETTE[i])
        })
        .collect();
    let mut legend: Vec<(String, RGBColor)> = top
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("k = {k}"), PALETTE[i]))
        .collect();
    if by_count.len() > 9 {
        legend.push(("other k".into(), OTHER));
    }
    (colors, legend)
}

fn tsne_panel(
    title: String,
    points: &[[f64; 2]],
    colors: &[RGBColor],
    legend: Vec<(String, RGBColor)>,
) -> Scatter {
    Scatter {
        title,
        x_label: "t-SNE 1".into(),
        y_label: "t-SNE 2".into(),
        points: points
            .iter()
            .zip(colors)
            .map(|(p, &c)| (p[0], p[1], c))
            .collect(),
        diagonal: false,
        range: None,
        legend,
        whole: false,
    }
}

/// A colour per neuron from its k-means cluster.
fn cluster_colors(clusters: &[usize]) -> Vec<RGBColor> {
    clusters
        .iter()
        .map(|&i| PALETTE[i % PALETTE.len()])
        .collect()
}

/// The neuron shown in detail: the first heatmap neuron (or neuron 0).
fn first_heatmap_neuron(a: &Analysis) -> usize {
    a.config.heatmap_neurons.first().copied().unwrap_or(0)
}

/// Neurons ordered by frequency (then index), and the matrix permuted to that order.
fn sorted_matrix(sim: &[Vec<f64>], freqs: &[usize]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..freqs.len()).collect();
    order.sort_by_key(|&n| (freqs[n], n));
    order
        .iter()
        .flat_map(|&i| order.iter().map(move |&j| sim[i][j]))
        .collect()
}

/// The loss and accuracy curves (none without a history).
fn training_curves(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let history = x.history;
    let a = x.a;
    let mut figures = Vec::new();
    if let Some(history) = history.filter(|h| !h.epochs.is_empty()) {
        let e = &history.epochs;
        let xs = |f: fn(&crate::EpochMetrics) -> f64| -> Vec<(f64, f64)> {
            e.iter().map(|m| (m.epoch as f64 + 1.0, f(m))).collect()
        };
        let n = e.len() as f64 + 1.0;
        let losses = e
            .iter()
            .flat_map(|m| [m.train_loss, m.val_loss])
            .filter(|v| v.is_finite() && *v > 0.0);
        let lo = losses.clone().fold(f64::INFINITY, f64::min).max(1e-12);
        let hi = losses.fold(0.0, f64::max).max(lo * 10.0);
        let last = e.last().expect("non-empty");
        figures.push(figure(
            "loss.svg",
            "Training and validation loss",
            plot::line_chart(
                (800, 420),
                &Axes {
                    title: "Cross-entropy loss per epoch (log-log)".into(),
                    x_label: "epoch".into(),
                    y_label: "loss".into(),
                    x_range: (1.0, n),
                    y_range: (lo / 1.5, hi * 1.5),
                    log_x: true,
                    log_y: true,
                    whole_x: true,
                    x_keys: None,
                    legend_upper: false,
                },
                &[
                    Line { label: "train".into(), points: xs(|m| m.train_loss), color: PALETTE[0], markers: false, line: true },
                    Line { label: "validation".into(), points: xs(|m| m.val_loss), color: PALETTE[1], markers: false, line: true },
                ],
                None,
            ),
            format!(
                "Loss per epoch, both axes logarithmic. After {} epochs: train {:.3e}, validation {:.3e}.",
                e.len(), last.train_loss, last.val_loss
            ),
        )?);
        figures.push(figure(
            "accuracy.svg",
            "Training and validation accuracy",
            plot::line_chart(
                (800, 420),
                &Axes {
                    title: "Accuracy per epoch (log x)".into(),
                    x_label: "epoch".into(),
                    y_label: "accuracy".into(),
                    x_range: (1.0, n),
                    y_range: (0.0, 1.02),
                    log_x: true,
                    log_y: false,
                    whole_x: true,
                    x_keys: None,
                    legend_upper: false,
                },
                &[
                    Line { label: "train".into(), points: xs(|m| m.train_acc), color: PALETTE[0], markers: false, line: true },
                    Line { label: "validation".into(), points: xs(|m| m.val_acc), color: PALETTE[1], markers: false, line: true },
                ],
                None,
            ),
            format!(
                "Accuracy per epoch, x logarithmic. Final train {}, validation {}; validation accuracy first reaches 99% at epoch {} (0-based).",
                pct(last.train_acc), pct(last.val_acc),
                a.grok_epoch.map_or("never".into(), |g| g.to_string())
            ),
        )?);
        if e.iter()
            .all(|m| m.softmax_collapse.is_finite() && m.weight_norm.is_finite())
        {
            figures.extend(collapse_and_norm(e, n)?);
        }
    }
    Ok(figures)
}

/// The softmax-collapse fraction and the weight norm per epoch (histories that record them).
fn collapse_and_norm(e: &[crate::EpochMetrics], n: f64) -> Result<Vec<Figure>> {
    let xs = |f: fn(&crate::EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        e.iter().map(|m| (m.epoch as f64 + 1.0, f(m))).collect()
    };
    let last = e.last().expect("non-empty");
    let axes = |title: &str, y_label: &str, y_range, log_y| Axes {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y_label.into(),
        x_range: (1.0, n),
        y_range,
        log_x: true,
        log_y,
        whole_x: true,
        x_keys: None,
        legend_upper: false,
    };
    let peak = e.iter().map(|m| m.softmax_collapse).fold(0.0, f64::max);
    let norms = e.iter().map(|m| m.weight_norm).filter(|v| *v > 0.0);
    let lo = norms.clone().fold(f64::INFINITY, f64::min).max(1e-12);
    let hi = norms.fold(0.0, f64::max).max(lo * 2.0);
    Ok(vec![
        figure(
            "collapse.svg",
            "Softmax collapse",
            plot::line_chart(
                (800, 320),
                &axes("Training rows whose float32 softmax is exactly one-hot (log x)", "fraction", (0.0, 1.02), false),
                &[Line { label: "softmax collapse".into(), points: xs(|m| m.softmax_collapse), color: PALETTE[2], markers: false, line: true }],
                None,
            ),
            format!(
                "Fraction of training rows, each before its batch's step, with Σ exp(x − max x) = 1 exactly in float32: \
                 their softmax is one-hot and the cross-entropy's gradient vanishes (Prieto et al. 2025's softmax collapse). \
                 Largest {}, last {}.",
                pct(peak), pct(last.softmax_collapse)
            ),
        )?,
        figure(
            "weight_norm.svg",
            "Weight norm",
            plot::line_chart(
                (800, 320),
                &axes("‖W‖ = √(Σ w²) over both layers (log-log)", "norm", (lo / 1.2, hi * 1.2), true),
                &[Line { label: "‖W‖".into(), points: xs(|m| m.weight_norm), color: PALETTE[3], markers: false, line: true }],
                None,
            ),
            format!(
                "The weights' norm after each epoch: {:.3} after the first, {:.3} after the last.",
                e[0].weight_norm, last.weight_norm
            ),
        )?,
    ])
}

/// The memorisation epoch (training accuracy ≥ 99%) and the grokking epoch (validation accuracy
/// ≥ 99%): from the history when there is one, else from the snapshots.
pub(super) fn phase_epochs(
    history: Option<&History>,
    progress: &ProgressMeasures,
) -> (Option<usize>, Option<usize>) {
    let threshold = crate::train::GROK_THRESHOLD;
    match history.filter(|h| !h.epochs.is_empty()) {
        Some(h) => (
            h.epochs
                .iter()
                .find(|m| m.train_acc >= threshold)
                .map(|m| m.epoch),
            h.grok_epoch(),
        ),
        None => (
            progress.first_reaching(&progress.train_acc, threshold),
            progress.first_reaching(&progress.val_acc, threshold),
        ),
    }
}

/// The progress measures over training, with the memorisation and grokking epochs marked.
fn dynamics(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let Some(m) = x.progress.filter(|m| !m.epochs.is_empty()) else {
        return Ok(Vec::new());
    };
    let (memorised, grokked) = phase_epochs(x.history, m);
    let xs = |values: &[f64]| -> Vec<(f64, f64)> {
        m.epochs
            .iter()
            .zip(values)
            .map(|(&e, &v)| (e as f64, v))
            .collect()
    };
    let x_range = (0.0, *m.epochs.last().expect("non-empty") as f64 + 1.0);
    let marks = |lo: f64, hi: f64| -> Vec<Line> {
        [
            (memorised, "memorised (train acc ≥ 99%)", PALETTE[4]),
            (grokked, "grokked (val acc ≥ 99%)", BLACK),
        ]
        .into_iter()
        .filter_map(|(epoch, label, color)| {
            epoch.map(|e| Line {
                label: format!("{label}: epoch {e}"),
                points: vec![(e as f64, lo), (e as f64, hi)],
                color,
                markers: false,
                line: true,
            })
        })
        .collect()
    };
    let losses: Vec<f64> = [
        &m.train_loss,
        &m.val_loss,
        &m.restricted_loss,
        &m.excluded_loss,
    ]
    .iter()
    .flat_map(|v| v.iter().copied())
    .filter(|v| v.is_finite() && *v > 0.0)
    .collect();
    let lo = losses
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-12);
    let hi = losses.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let mut loss_lines = vec![
        Line {
            label: "train".into(),
            points: xs(&m.train_loss),
            color: PALETTE[0],
            markers: false,
            line: true,
        },
        Line {
            label: "validation".into(),
            points: xs(&m.val_loss),
            color: PALETTE[1],
            markers: false,
            line: true,
        },
        Line {
            label: "restricted (key frequencies only, all pairs)".into(),
            points: xs(&m.restricted_loss),
            color: PALETTE[2],
            markers: false,
            line: true,
        },
        Line {
            label: "excluded (key frequencies removed, train pairs)".into(),
            points: xs(&m.excluded_loss),
            color: PALETTE[3],
            markers: false,
            line: true,
        },
    ];
    loss_lines.extend(marks(lo / 1.5, hi * 1000.0));
    let mut share_lines = vec![
        Line {
            label: "Gini, fc1 per frequency".into(),
            points: xs(&m.gini_fc1),
            color: PALETTE[0],
            markers: false,
            line: true,
        },
        Line {
            label: "Gini, fc2 per frequency".into(),
            points: xs(&m.gini_fc2),
            color: PALETTE[1],
            markers: false,
            line: true,
        },
        Line {
            label: "neurons with one frequency".into(),
            points: xs(&m.single_frequency_share),
            color: PALETTE[2],
            markers: false,
            line: true,
        },
        Line {
            label: "accuracy, all neurons replaced".into(),
            points: xs(&m.replaced_accuracy),
            color: PALETTE[3],
            markers: false,
            line: true,
        },
    ];
    if m.ipr_mean.len() == m.epochs.len() {
        share_lines.push(Line {
            label: "mean neuron IPR".into(),
            points: xs(&m.ipr_mean),
            color: PALETTE[5],
            markers: false,
            line: true,
        });
    }
    share_lines.extend(marks(0.0, 1.7));
    let norm_hi = m
        .weight_norm
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        * 1.05;
    let mut norm_lines = vec![Line {
        label: "Σ fc1² + Σ fc2²".into(),
        points: xs(&m.weight_norm),
        color: PALETTE[0],
        markers: false,
        line: true,
    }];
    norm_lines.extend(marks(0.0, norm_hi));
    // The legends of the first two panels go above their curves, in room left at the top.
    let axes = |title: &str, y_label: &str, y_range: (f64, f64), log_y: bool, legend_upper| Axes {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y_label.into(),
        x_range,
        y_range,
        log_y,
        whole_x: true,
        legend_upper,
        ..Axes::default()
    };
    let loss_axes = axes(
        "Loss (log y)",
        "cross-entropy",
        (lo / 1.5, hi * 1000.0),
        true,
        true,
    );
    let share_axes = axes(
        "Fourier sparsity and replacement",
        "value",
        (0.0, 1.7),
        false,
        true,
    );
    let norm_range = (0.0, norm_hi.max(1e-12));
    let norm_axes = axes("Total squared weight", "Σ w²", norm_range, false, false);
    // The LLC (analyze --llc), its mean and the chains' spread.
    let llc_points = |shift: f64| -> Vec<(f64, f64)> {
        m.epochs
            .iter()
            .zip(m.llc.iter().zip(&m.llc_std))
            .filter_map(|(&e, (mean, std))| Some((e as f64, (*mean)? + shift * std.unwrap_or(0.0))))
            .collect()
    };
    let llc_hi = llc_points(1.0)
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        * 1.1;
    let llc_lo = llc_points(-1.0)
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min);
    let mut llc_lines = vec![Line {
        label: "λ̂, mean of the chains".into(),
        points: llc_points(0.0),
        color: PALETTE[0],
        markers: true,
        line: true,
    }];
    llc_lines.extend(marks(llc_lo, llc_hi.max(llc_lo + 1e-12) * 1.4));
    let llc_band = Band {
        label: "± one standard deviation of the chains".into(),
        points: llc_points(0.0)
            .iter()
            .zip(llc_points(-1.0).iter().zip(&llc_points(1.0)))
            .map(|(&(x, _), (&(_, lo), &(_, hi)))| (x, lo, hi))
            .collect(),
        color: PALETTE[0],
    };
    let llc_axes = axes(
        "Local learning coefficient",
        "λ̂",
        (llc_lo, llc_hi.max(llc_lo + 1e-12) * 1.4),
        false,
        true,
    );
    let mut panels = vec![
        (&loss_axes, &loss_lines[..], None),
        (&share_axes, &share_lines[..], None),
        (&norm_axes, &norm_lines[..], None),
    ];
    let has_llc = m.llc.len() == m.epochs.len() && m.llc.iter().any(Option::is_some);
    if has_llc {
        panels.push((&llc_axes, &llc_lines[..], Some(&llc_band)));
    }
    let llc_caption = if has_llc {
        format!(
            " Local learning coefficient (SGLD, devinterp's estimator; docs/llc.md) at the last snapshot: {}.",
            opt(m.llc[m.epochs.len() - 1], 1)
        )
    } else {
        String::new()
    };
    let last = m.epochs.len() - 1;
    let epoch = |e: Option<usize>| e.map_or("never".into(), |e| e.to_string());
    let mut figures = ipr_distribution(m)?;
    figures.insert(0, figure(
        "dynamics.svg",
        "Training dynamics: progress measures",
        plot::line_panels((620, 440), &panels),
        format!(
            "Progress measures (Nanda et al. 2023, adapted; definitions in docs/analysis.md) at {} snapshots, in {} coordinates (period {}), key frequencies {:?} (from the last snapshot). Memorised (train accuracy ≥ 99%) at epoch {}, grokked (validation accuracy ≥ 99%) at epoch {}. Last snapshot: restricted loss {:.3e}, excluded loss {:.3e}, Gini fc1 {:.3}, neurons with one frequency {}, all replaced {}, Σw² {:.1}{}.",
            m.epochs.len(), m.basis, m.m, m.key_frequencies, epoch(memorised), epoch(grokked),
            m.restricted_loss[last], m.excluded_loss[last], m.gini_fc1[last], pct(m.single_frequency_share[last]), pct(m.replaced_accuracy[last]), m.weight_norm[last],
            m.ipr_mean.get(last).map_or(String::new(), |v| format!(", mean neuron IPR {v:.3}"))
        ) + &llc_caption,
    )?);
    Ok(figures)
}

/// Bins of [`ipr_distribution`]'s histograms.
const IPR_BINS: usize = 20;

/// The distribution of the neurons' IPR at the first, middle and last snapshot: neurons per
/// bin of width 1/[`IPR_BINS`] (none for measures without the IPR).
fn ipr_distribution(m: &ProgressMeasures) -> Result<Vec<Figure>> {
    if m.ipr.len() != m.epochs.len() || m.ipr.is_empty() {
        return Ok(Vec::new());
    }
    let mut picks = vec![0, m.epochs.len() / 2, m.epochs.len() - 1];
    picks.dedup();
    let counts = |values: &[f64]| -> Vec<usize> {
        let mut bins = vec![0; IPR_BINS];
        for &v in values {
            bins[((v * IPR_BINS as f64) as usize).min(IPR_BINS - 1)] += 1;
        }
        bins
    };
    let lines: Vec<Line> = picks
        .iter()
        .enumerate()
        .map(|(j, &i)| Line {
            label: format!("epoch {}", m.epochs[i]),
            points: counts(&m.ipr[i])
                .iter()
                .enumerate()
                .map(|(b, &c)| ((b as f64 + 0.5) / IPR_BINS as f64, c as f64))
                .collect(),
            color: PALETTE[j],
            markers: true,
            line: true,
        })
        .collect();
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let axes = Axes {
        title: "Neurons' inverse participation ratio".into(),
        x_label: "IPR of the input spectrum".into(),
        y_label: "neurons".into(),
        x_range: (0.0, 1.0),
        y_range: (0.0, top * 1.15),
        legend_upper: true,
        ..Axes::default()
    };
    let summary: Vec<String> = picks
        .iter()
        .map(|&i| {
            format!(
                "epoch {}: median {:.3}, mean {:.3}",
                m.epochs[i],
                median(&m.ipr[i]).unwrap_or(f64::NAN),
                m.ipr_mean[i]
            )
        })
        .collect();
    Ok(vec![figure(
        "ipr.svg",
        "Neurons' IPR over training",
        plot::line_chart((620, 380), &axes, &lines, None),
        format!(
            "Per neuron, the inverse participation ratio (Doshi et al. 2024, r = 2) of its input weights' power over the non-constant frequencies (docs/dynamics.md): 1 for a neuron on one frequency, about 2/m for a flat spectrum. Neurons per bin of width {:.2}; {}.",
            1.0 / IPR_BINS as f64,
            summary.join("; ")
        ),
    )?])
}

/// The axis name of an operand (`a`, `b`, or `x` for any) in the analyses' coordinates: itself
/// for the residues, its coordinate otherwise (`y(a)`, the discrete log of a under a discrete log).
fn operand(a: &Analysis, name: &str) -> String {
    if a.basis == "identity" {
        name.into()
    } else {
        format!("y({name}), {}", a.basis)
    }
}

/// Post-ReLU activations of the heatmap neurons over the (a, b) grid.
fn activation_heatmaps(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let weights = x.weights;
    let a = x.a;
    let p = a.m;
    let mut figures = Vec::new();
    let posts: Vec<Vec<f64>> = a
        .config
        .heatmap_neurons
        .iter()
        .map(|&n| post_grid(weights, n))
        .collect();
    let normed: Vec<Vec<f64>> = posts
        .iter()
        .map(|v| {
            let m = v.iter().copied().fold(0.0, f64::max);
            v.iter()
                .map(|x| if m > 0.0 { x / m } else { 0.0 })
                .collect()
        })
        .collect();
    let panels: Vec<Heatmap> = a
        .config
        .heatmap_neurons
        .iter()
        .zip(&normed)
        .map(|(&n, v)| Heatmap {
            title: format!("neuron {n}, k = {}", a.freqs[n]),
            values: v,
            rows: p,
            cols: p,
            row_label: operand(a, "a"),
            col_label: operand(a, "b"),
        })
        .collect();
    figures.push(figure(
        "activations.svg",
        "Post-ReLU activations over the (a, b) grid",
        plot::heatmaps(380, &panels, &plot::sequential),
        format!(
            "post[a, b] = relu(fc1[n, a] + fc1[n, p + b]) for neurons {:?}, each scaled to its maximum (dark = 0, yellow = max), over the operands' coordinates ({}). Stripes along y(a) + y(b) = const show a neuron reading the operation through one frequency; the frequencies are {:?}.",
            a.config.heatmap_neurons,
            a.basis,
            a.config.heatmap_neurons.iter().map(|&n| a.freqs[n]).collect::<Vec<_>>()
        ),
    )?);
    Ok(figures)
}

/// The first heatmap neuron's pre-activation, trained and with its cosines.
fn replaced_pre_activation(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let weights = x.weights;
    let a = x.a;
    let p = a.m;
    let mut figures = Vec::new();
    let n0 = first_heatmap_neuron(a);
    let f0 = &a.fits[n0];
    let before = pre_grid(weights, n0);
    let after = grid(&f0.in_a.reconstruct(p), &f0.in_b.reconstruct(p));
    let scale = before
        .iter()
        .chain(&after)
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-12);
    let rel_err = (before
        .iter()
        .zip(&after)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        / before.iter().map(|x| x * x).sum::<f64>().max(1e-300))
    .sqrt();
    let bn: Vec<f64> = before.iter().map(|v| v / scale).collect();
    let an: Vec<f64> = after.iter().map(|v| v / scale).collect();
    figures.push(figure(
        "replaced_pre.svg",
        "One neuron's pre-activation, before and after replacement by its cosines",
        plot::heatmaps(
            380,
            &[
                Heatmap { title: format!("neuron {n0}: trained"), values: &bn, rows: p, cols: p, row_label: operand(a, "a"), col_label: operand(a, "b") },
                Heatmap { title: format!("neuron {n0}: cosines"), values: &an, rows: p, cols: p, row_label: operand(a, "a"), col_label: operand(a, "b") },
            ],
            &plot::diverging,
        ),
        format!(
            "pre[a, b] of neuron {n0} (blue negative, red positive, common scale). Right: with fc1's a and b weights replaced by their fitted cosines (k = {}, R² {:.3} and {:.3}); relative L2 difference {:.3}.",
            f0.in_a.freq, f0.in_a.r2, f0.in_b.r2, rel_err
        ),
    )?);
    Ok(figures)
}

/// The first heatmap neuron's three weight vectors with their fitted cosines.
fn neuron_fit(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let weights = x.weights;
    let a = x.a;
    let p = a.m;
    let mut figures = Vec::new();
    let n0 = first_heatmap_neuron(a);
    let f0 = &a.fits[n0];
    let vectors = [
        ("input a", weights.input_a(n0), f0.in_a),
        ("input b", weights.input_b(n0), f0.in_b),
        ("output", weights.output(n0), f0.out),
    ];
    let axes: Vec<Axes> = vectors
        .iter()
        .map(|(name, y, fit)| {
            let lo = y
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
                .min(fit.offset - fit.scale);
            let hi = y
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
                .max(fit.offset + fit.scale);
            let pad = 0.1 * (hi - lo).max(1e-9);
            Axes {
                title: format!("neuron {n0}, {name}: k = {}, R² = {:.3}", fit.freq, fit.r2),
                x_label: operand(a, "x"),
                y_label: "weight".into(),
                x_range: (0.0, p as f64 - 1.0),
                y_range: (lo - pad, hi + pad * 3.0),
                log_x: false,
                log_y: false,
                whole_x: true,
                ..Axes::default()
            }
        })
        .collect();
    let lines: Vec<[Line; 2]> = vectors
        .iter()
        .map(|(_, y, fit)| {
            // The cosine is drawn finely between the integer points.
            let fine: Vec<(f64, f64)> = (0..=(p - 1) * 8)
                .map(|i| {
                    let x = i as f64 / 8.0;
                    (
                        x,
                        fit.offset
                            + fit.scale
                                * (2.0 * PI * fit.freq as f64 * x / p as f64 + fit.phase).cos(),
                    )
                })
                .collect();
            [
                Line {
                    label: "cosine fit".into(),
                    points: fine,
                    color: PALETTE[1],
                    markers: false,
                    line: true,
                },
                Line {
                    label: "weights".into(),
                    points: y.iter().enumerate().map(|(x, &v)| (x as f64, v)).collect(),
                    color: PALETTE[0],
                    markers: true,
                    line: false,
                },
            ]
        })
        .collect();
    let panels: Vec<(&Axes, &[Line], Option<&Band>)> = axes
        .iter()
        .zip(&lines)
        .map(|(ax, l)| (ax, &l[..], None))
        .collect();
    figures.push(figure(
        "neuron_fit.svg",
        "One neuron's weights and their cosines",
        plot::line_panels((520, 380), &panels),
        format!(
            "Neuron {n0}'s input-a, input-b and output weights (blue dots) and the single cosine fitted to each (orange, at the integer points). Frequencies {}, {}, {}; phases {:.2}, {:.2}, {:.2} rad; phase_a + phase_b = {:.2} rad (wrapped).",
            f0.in_a.freq, f0.in_b.freq, f0.out.freq, f0.in_a.phase, f0.in_b.phase, f0.out.phase,
            wrap_angle(f0.in_a.phase + f0.in_b.phase)
        ),
    )?);
    Ok(figures)
}

/// Neurons per frequency.
fn frequencies(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let a = x.a;
    let (p, h) = (a.m, a.d_hidden);
    let mut figures = Vec::new();
    let top: Vec<String> = {
        let mut v: Vec<(usize, usize)> = a
            .histogram
            .counts
            .iter()
            .copied()
            .enumerate()
            .filter(|x| x.1 > 0)
            .collect();
        v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        v.iter()
            .take(8)
            .map(|(k, c)| format!("k = {k}: {c}"))
            .collect()
    };
    figures.push(figure(
        "frequencies.svg",
        "Neurons per frequency",
        plot::bars(
            (800, 380),
            "Neurons per frequency (input-a fit)",
            "frequency k",
            "neurons",
            &a.histogram.counts,
        ),
        format!(
            "{} neurons use {} distinct frequencies out of {} possible. Most used: {}.",
            h,
            a.histogram.distinct,
            p / 2,
            top.join(", ")
        ),
    )?);
    Ok(figures)
}

/// Fitted parameters, input a against input b.
fn fitted_parameters(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let a = x.a;
    let p = a.m;
    let mut figures = Vec::new();
    let (fcol, _) = freq_colors(&a.freqs);
    let ab = |f: &dyn Fn(&crate::analysis::fourier::NeuronFit) -> (f64, f64)| -> Vec<(f64, f64, RGBColor)> {
        a.fits
            .iter()
            .zip(&fcol)
            .map(|(fit, &c)| {
                let (x, y) = f(fit);
                (x, y, c)
            })
            .collect()
    };
    let half = (p / 2) as f64 + 1.0;
    let smax = a
        .fits
        .iter()
        .flat_map(|f| [f.in_a.scale, f.in_b.scale])
        .fold(0.0, f64::max)
        * 1.05
        + 1e-9;
    figures.push(figure(
        "params_ab.svg",
        "Fitted parameters: input a against input b",
        plot::scatters(
            (420, 420),
            &[
                Scatter { title: "frequency".into(), x_label: "k of input a".into(), y_label: "k of input b".into(), points: ab(&|f| (f.in_a.freq as f64, f.in_b.freq as f64)), diagonal: true, range: Some(((0.0, half), (0.0, half))), legend: vec![], whole: true },
                Scatter { title: "scale".into(), x_label: "scale of input a".into(), y_label: "scale of input b".into(), points: ab(&|f| (f.in_a.scale, f.in_b.scale)), diagonal: true, range: Some(((0.0, smax), (0.0, smax))), legend: vec![], whole: false },
                Scatter { title: "phase (rad)".into(), x_label: "phase of input a".into(), y_label: "phase of input b".into(), points: ab(&|f| (f.in_a.phase, f.in_b.phase)), diagonal: false, range: Some(((-PI, PI), (-PI, PI))), legend: vec![], whole: false },
            ],
        ),
        format!(
            "One point per neuron, coloured by frequency. Input a and b share their frequency in {} of neurons, all three fits (a, b, output) in {}; median scale ratio b/a {:.3}. Phases are unrelated between a and b (the network needs all of them).",
            pct(a.phases.ab_freq_agree), pct(a.phases.all_freq_agree), a.phases.median_scale_ratio
        ),
    )?);
    Ok(figures)
}

/// The phase-sum law.
fn phase_sum(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let a = x.a;
    let h = a.d_hidden;
    let (fcol, flegend) = freq_colors(&a.freqs);
    let mut figures = Vec::new();
    let pts: Vec<(f64, f64, RGBColor)> = a
        .fits
        .iter()
        .zip(&fcol)
        .zip(&a.phases.phase_gap)
        .filter(|(_, g)| g.is_some())
        .map(|((f, &c), _)| (wrap_angle(f.in_a.phase + f.in_b.phase), f.out.phase, c))
        .collect();
    let agree = pts.len();
    figures.push(figure(
        "phase_sum.svg",
        "The phase-sum law",
        plot::scatters(
            (560, 520),
            &[Scatter { title: "output phase against phase_a + phase_b".into(), x_label: "wrap(phase_a + phase_b) (rad)".into(), y_label: "output phase (rad)".into(), points: pts, diagonal: true, range: Some(((-PI, PI), (-PI, PI))), legend: flegend.clone(), whole: false }],
        ),
        format!(
            "For the {agree} of {h} neurons whose three frequencies agree: the output cosine's phase against the sum of the input phases, wrapped to (-π, π] (the line is equality; points near the corners wrap around). Median |gap| {} rad.",
            opt(a.phases.median_gap, 3)
        ),
    )?);
    Ok(figures)
}

/// t-SNE and cosine similarity of fc1 rows and fc2 columns.
fn weight_embeddings(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let sims = x.sims;
    let a = x.a;
    let (p, h) = (a.m, a.d_hidden);
    let (fcol, flegend) = freq_colors(&a.freqs);
    let mut figures = Vec::new();
    figures.push(figure(
        "tsne_weights.svg",
        "t-SNE of fc1's rows and fc2's columns",
        plot::scatters(
            (460, 460),
            &[
                tsne_panel(format!("fc1 rows: {} k-means clusters", a.config.clusters), &a.fc1.tsne, &cluster_colors(&a.fc1.clusters), vec![]),
                tsne_panel("fc1 rows: FFT frequency".into(), &a.fc1.tsne, &fcol, flegend.clone()),
                tsne_panel("fc2 columns: FFT frequency".into(), &a.fc2.tsne, &fcol, vec![]),
            ],
        ),
        format!(
            "t-SNE (2-D, perplexity {}) of each neuron's fc1 row (2p = {} weights) and fc2 column (p = {}). Left: coloured by k-means cluster (k = {}); middle and right: by the neuron's FFT frequency. Clusters against frequencies: adjusted Rand index {:.3} for fc1, {:.3} for fc2 (1 = the same partition, 0 = chance). Neurons of one frequency differ in phase, so their raw weight vectors need not be close: a low ARI means k-means on weights does not recover the frequencies.",
            a.config.perplexity.min((h as f64 - 1.0) / 3.0), 2 * p, p, a.config.clusters, a.fc1.ari_vs_freq, a.fc2.ari_vs_freq
        ),
    )?);
    let m1 = sorted_matrix(&sims[0], &a.freqs);
    let m2 = sorted_matrix(&sims[1], &a.freqs);
    figures.push(figure(
        "similarity_weights.svg",
        "Cosine similarity of fc1's rows and fc2's columns",
        plot::heatmaps(
            420,
            &[
                Heatmap { title: "fc1 rows".into(), values: &m1, rows: h, cols: h, row_label: "neuron (by frequency)".into(), col_label: "neuron (by frequency)".into() },
                Heatmap { title: "fc2 columns".into(), values: &m2, rows: h, cols: h, row_label: "neuron (by frequency)".into(), col_label: "neuron (by frequency)".into() },
            ],
            &plot::diverging,
        ),
        format!(
            "Cosine similarity between neurons (blue -1, white 0, red +1), neurons sorted by FFT frequency so that same-frequency neurons form the diagonal blocks. Mean similarity within a frequency / across: fc1 {} / {}, fc2 {} / {}.",
            opt(a.fc1.mean_similarity_same_freq, 3), opt(a.fc1.mean_similarity_other_freq, 3),
            opt(a.fc2.mean_similarity_same_freq, 3), opt(a.fc2.mean_similarity_other_freq, 3)
        ),
    )?);
    Ok(figures)
}

/// t-SNE and cosine similarity of the neurons' activations.
fn activation_embeddings(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let sims = x.sims;
    let a = x.a;
    let (p, h) = (a.m, a.d_hidden);
    let (fcol, flegend) = freq_colors(&a.freqs);
    let mut figures = Vec::new();
    figures.push(figure(
        "tsne_activations.svg",
        "t-SNE of the neurons' post-ReLU activations",
        plot::scatters(
            (460, 460),
            &[
                tsne_panel(format!("activations: {} k-means clusters", a.config.clusters), &a.activations.tsne, &cluster_colors(&a.activations.clusters), vec![]),
                tsne_panel("activations: FFT frequency".into(), &a.activations.tsne, &fcol, flegend.clone()),
            ],
        ),
        format!(
            "Each neuron as its vector of post-ReLU activations over all p² = {} pairs (the notebook's reshape mixed neurons and pairs). k-means (k = {}) against FFT frequencies: adjusted Rand index {:.3}.",
            p * p, a.config.clusters, a.activations.ari_vs_freq
        ),
    )?);
    let m3 = sorted_matrix(&sims[2], &a.freqs);
    figures.push(figure(
        "similarity_activations.svg",
        "Cosine similarity of the neurons' activations",
        plot::heatmaps(
            460,
            &[Heatmap { title: "post-ReLU activations".into(), values: &m3, rows: h, cols: h, row_label: "neuron (by frequency)".into(), col_label: "neuron (by frequency)".into() }],
            &plot::diverging,
        ),
        format!(
            "As above, for activation vectors (non-negative, so similarities are >= 0). Mean within a frequency {} vs across {}.",
            opt(a.activations.mean_similarity_same_freq, 3), opt(a.activations.mean_similarity_other_freq, 3)
        ),
    )?);
    Ok(figures)
}

/// Accuracy against the fraction of neurons replaced.
fn replacement(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let a = x.a;
    let mut figures = Vec::new();
    let s = &a.sweep;
    let curve = |v: &[f64]| -> Vec<(f64, f64)> {
        s.fractions.iter().copied().zip(v.iter().copied()).collect()
    };
    let band = Band {
        label: format!("{} random draws (min-max)", s.draws.len()),
        points: s
            .fractions
            .iter()
            .zip(s.draw_min.iter().zip(&s.draw_max))
            .map(|(&f, (&lo, &hi))| (f, lo, hi))
            .collect(),
        color: PALETTE[0],
    };
    let mid = s.fractions.len() / 2;
    figures.push(figure(
        "replacement.svg",
        "Accuracy against the fraction of neurons replaced by cosines",
        plot::line_chart(
            (800, 440),
            &Axes { title: "Full-grid accuracy, neurons replaced by their cosine fits".into(), x_label: "fraction of neurons replaced".into(), y_label: "accuracy".into(), x_range: (0.0, 1.0), y_range: (0.0, 1.02), ..Axes::default() },
            &[
                Line { label: "random (mean)".into(), points: curve(&s.draw_mean), color: PALETTE[0], markers: true, line: true },
                Line { label: "best fit first".into(), points: curve(&s.best_first), color: PALETTE[2], markers: false, line: true },
                Line { label: "worst fit first".into(), points: curve(&s.worst_first), color: PALETTE[3], markers: false, line: true },
            ],
            Some(&band),
        ),
        format!(
            "Accuracy on all the data set's pairs as more neurons are replaced by their fitted cosines: mean and range of {} random orders, and best-fitted (mean R²) first / worst first. At {:.0}% replaced: random {}–{}, best first {}, worst first {}. All replaced (exact, f64): {} on all pairs, {} on validation; untouched: {}.",
            s.draws.len(), 100.0 * s.fractions[mid], pct(s.draw_min[mid]), pct(s.draw_max[mid]), pct(s.best_first[mid]), pct(s.worst_first[mid]),
            pct(s.all_replaced), pct(s.all_replaced_val), pct(a.accuracy_full)
        ),
    )?);
    Ok(figures)
}

/// The untrained construction.
fn construction(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let a = x.a;
    let p = a.m;
    let mut figures = Vec::new();
    let c = &a.construction;
    let mean = c.mean();
    let mut lines: Vec<Line> = c
        .seeds
        .iter()
        .zip(&c.accuracy)
        .enumerate()
        .map(|(i, (seed, acc))| Line {
            label: format!("seed {seed}"),
            points: c
                .sizes
                .iter()
                .map(|&n| n as f64)
                .zip(acc.iter().copied())
                .collect(),
            color: PALETTE[(i + 4) % PALETTE.len()],
            markers: true,
            line: true,
        })
        .collect();
    lines.push(Line {
        label: "mean".into(),
        points: c
            .sizes
            .iter()
            .map(|&n| n as f64)
            .zip(mean.iter().copied())
            .collect(),
        color: BLACK_RGB,
        markers: false,
        line: true,
    });
    let at = |n: usize| c.sizes.iter().position(|&s| s == n).map(|j| pct(mean[j]));
    figures.push(figure(
        "construction.svg",
        "The untrained construction: accuracy against number of neurons",
        plot::line_chart(
            (800, 440),
            &Axes { title: format!("Random cosine neurons, no training (p = {p})"), x_label: "neurons".into(), y_label: "accuracy".into(), x_range: (c.sizes[0] as f64 / 1.2, *c.sizes.last().expect("sizes") as f64 * 1.2), y_range: (0.0, 1.02), log_x: true, whole_x: true, x_keys: Some(c.sizes.iter().map(|&n| n as f64).collect()), ..Axes::default() },
            &lines,
            None,
        ),
        format!(
            "A network never trained: each neuron gets a random frequency k in 1..={} and random phases s1, s2 in [0, 2π) for inputs a and b, and output phase s1 + s2. Full-grid accuracy, {} seeds: {}.",
            p / 2,
            c.seeds.len(),
            c.sizes.iter().zip(&mean).map(|(n, m)| format!("{n} neurons {}", pct(*m))).collect::<Vec<_>>().join(", ")
        ) + &match (at(256), at(512)) {
            (Some(x), Some(y)) => format!(" The post reports above 95% at 256 and 100% at 512 for p = 113; here {x} and {y}."),
            _ => String::new(),
        },
    )?);
    Ok(figures)
}

/// Cosine, square wave or rectified cosine.
fn waveforms(x: &Inputs<'_>) -> Result<Vec<Figure>> {
    let a = x.a;
    let mut figures = Vec::new();
    let wi = &a.waveform_inputs;
    let wo = &a.waveform_outputs;
    let mut sq = Vec::new();
    let mut rc = Vec::new();
    for w in &a.waveforms {
        for (i, f) in w.iter().enumerate() {
            let color = if i < 2 { PALETTE[0] } else { PALETTE[1] };
            sq.push((f.cosine, f.square, color));
            rc.push((f.cosine, f.rectified, color));
        }
    }
    let legend = vec![
        ("input weights".to_string(), PALETTE[0]),
        ("output weights".to_string(), PALETTE[1]),
    ];
    figures.push(figure(
        "waveforms.svg",
        "Cosine, square wave or rectified cosine?",
        plot::scatters(
            (460, 460),
            &[
                Scatter { title: "square wave vs cosine".into(), x_label: "R² of cosine".into(), y_label: "R² of square wave".into(), points: sq, diagonal: true, range: Some(((0.0, 1.0), (0.0, 1.0))), legend: legend.clone(), whole: false },
                Scatter { title: "rectified cosine vs cosine".into(), x_label: "R² of cosine".into(), y_label: "R² of rectified cosine".into(), points: rc, diagonal: true, range: Some(((0.0, 1.0), (0.0, 1.0))), legend, whole: false },
            ],
        ),
        format!(
            "Each weight vector fitted by α + β·g(wx + θ) for three shapes g at its FFT frequency. Points below the line favour the cosine. Input vectors ({}): mean R² cosine {:.3}, square {:.3}, rectified {:.3}; best: cosine {}, square {}, rectified {}. Output vectors ({}): mean R² {:.3} / {:.3} / {:.3}; best {} / {} / {}.",
            wi.vectors, wi.mean_cosine_r2, wi.mean_square_r2, wi.mean_rectified_r2, wi.cosine_best, wi.square_best, wi.rectified_best,
            wo.vectors, wo.mean_cosine_r2, wo.mean_square_r2, wo.mean_rectified_r2, wo.cosine_best, wo.square_best, wo.rectified_best
        ),
    )?);
    Ok(figures)
}

const BLACK_RGB: RGBColor = RGBColor(0, 0, 0);

/// The LLC's diagnostic figure: every chain's minibatch loss over the SGLD steps, with `L_init`
/// (the loss at the point sampled around).
///
/// # Errors
/// [`Error::Analysis`] if plotters fails to draw it.
pub(super) fn llc_trace_svg(estimate: &LlcEstimate) -> Result<String> {
    let steps = estimate
        .traces
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut lines: Vec<Line> = estimate
        .traces
        .iter()
        .enumerate()
        .map(|(c, trace)| Line {
            label: match estimate.llc_per_chain.get(c).copied().flatten() {
                Some(llc) => format!("chain {c}: λ̂ {llc:.2}"),
                None => format!("chain {c}: diverged"),
            },
            points: trace
                .iter()
                .enumerate()
                .map(|(s, &l)| (s as f64, l))
                .collect(),
            color: PALETTE[c % PALETTE.len()],
            markers: false,
            line: true,
        })
        .collect();
    lines.push(Line {
        label: format!("L_init {:.4}", estimate.init_loss),
        points: vec![
            (0.0, estimate.init_loss),
            (steps as f64, estimate.init_loss),
        ],
        color: BLACK,
        markers: false,
        line: true,
    });
    let values = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let axes = Axes {
        title: format!(
            "SGLD loss traces: λ̂ = {} ± {} (nβ {:.3})",
            opt(estimate.llc_mean, 2),
            opt(estimate.llc_std, 2),
            estimate.nbeta
        ),
        x_label: "SGLD step".into(),
        y_label: "minibatch loss".into(),
        x_range: (0.0, steps as f64),
        y_range: (lo - pad, hi + pad * 4.0),
        whole_x: true,
        legend_upper: true,
        ..Axes::default()
    };
    Ok(figure(
        "llc_trace.svg",
        "LLC traces",
        plot::line_chart((760, 480), &axes, &lines, None),
        String::new(),
    )?
    .svg)
}

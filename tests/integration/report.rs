//! The report on a small network: every figure it references exists and is an SVG,
//! analysis.json holds the numbers, and the figures and the page show those numbers.

use crate::common;

use base64::Engine as _;
use grokking::{
    analysis::evaluate::post_grid,
    report::{analyze, plot, write_report, Analysis, ReportConfig},
    EpochMetrics, History, MlpConfig, MlpWeights, ModularDataset,
};

fn small_config() -> ReportConfig {
    ReportConfig {
        clusters: 4,
        sweep_points: 5,
        sweep_draws: 3,
        construction_sizes: vec![8, 64],
        construction_seeds: vec![0, 1],
        ..Default::default()
    }
}

#[test]
fn report_writes_figures_page_and_numbers() {
    let p = 11;
    let weights = MlpConfig::new()
        .with_p(p)
        .with_d_hidden(16)
        .init::<common::Cpu>(0, &Default::default())
        .weights();
    let data = ModularDataset::new(p, 0.8, 0).unwrap();
    let history = History {
        epochs: (0..5)
            .map(|e| EpochMetrics {
                epoch: e,
                train_loss: 2.0 / (e + 1) as f64,
                val_loss: 3.0 / (e + 1) as f64,
                train_acc: 0.2 * e as f64,
                val_acc: 0.1 * e as f64,
                seconds: e as f64,
                softmax_collapse: 0.0,
                weight_norm: 10.0 + e as f64,
            })
            .collect(),
        ..History::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let analysis = write_report(
        dir.path(),
        &weights,
        &data,
        Some(&history),
        None,
        &small_config(),
    )
    .unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let figures: Vec<&str> = html
        .split("src=\"figures/")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(figures.len() >= 10, "{figures:?}");
    for f in &figures {
        let svg = std::fs::read_to_string(dir.path().join("figures").join(f)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{f}"
        );
        assert!(svg.len() > 1000, "{f} is nearly empty");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("analysis.json")).unwrap())
            .unwrap();
    assert_eq!(json["p"], 11);
    assert_eq!(json["freqs"].as_array().unwrap().len(), 16);
    assert_eq!(analysis.sweep.counts.first(), Some(&0));
    assert_eq!(analysis.construction.sizes, vec![8, 64]);
    // Same inputs, same numbers (seeded k-means and t-SNE).
    let again = analyze(&weights, &data, Some(&history), &small_config()).unwrap();
    assert_eq!(again.fc1, analysis.fc1);
    assert_eq!(again.activations.clusters, analysis.activations.clusters);
    figures_show_the_numbers(dir.path(), &weights, &analysis, &html);
}

/// The text of every `<text>` element of an SVG, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').unwrap() + 1..];
            body[..body.find("</text>").unwrap()].trim().to_string()
        })
        .collect()
}

/// The `(height, x)` of each filled `<rect>` of colour `fill`.
fn bars(svg: &str, fill: &str) -> Vec<(f64, f64)> {
    let attr = |rect: &str, name: &str| -> f64 {
        let at = rect.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        rect[at..at + rect[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    svg.split("<rect")
        .skip(1)
        .map(|r| &r[..r.find("/>").unwrap()])
        .filter(|r| r.contains(&format!("fill=\"{fill}\"")))
        .map(|r| (attr(r, "height"), attr(r, "x")))
        .collect()
}

fn figures_show_the_numbers(dir: &std::path::Path, weights: &MlpWeights, a: &Analysis, html: &str) {
    let read = |name: &str| std::fs::read_to_string(dir.join("figures").join(name)).unwrap();
    // Neurons per frequency: one bar per used frequency, heights in proportion to the counts.
    let counts: Vec<usize> = a
        .histogram
        .counts
        .iter()
        .copied()
        .filter(|&c| c > 0)
        .collect();
    let blue = format!(
        "#{:02X}{:02X}{:02X}",
        plot::PALETTE[0].0,
        plot::PALETTE[0].1,
        plot::PALETTE[0].2
    );
    let mut drawn = bars(&read("frequencies.svg"), &blue);
    drawn.sort_by(|x, y| x.1.total_cmp(&y.1));
    assert_eq!(drawn.len(), counts.len());
    let unit = drawn[0].0 / counts[0] as f64;
    for ((height, _), count) in drawn.iter().zip(&counts) {
        assert!(
            (height / unit - *count as f64).abs() < 0.05 * *count as f64 + 0.6,
            "{height} for {count}"
        );
    }
    // Activation heatmaps: one pixel per (a, b), coloured by the neuron's scaled activation.
    let svg = read("activations.svg");
    let uri = svg.split("href=\"data:image/png;base64,").nth(1).unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(&uri[..uri.find('"').unwrap()])
        .unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut pixels).unwrap();
    let n = a.config.heatmap_neurons[0];
    let post = post_grid(weights, n);
    let top = post.iter().copied().fold(0.0, f64::max);
    for (cell, value) in post.iter().enumerate() {
        let c = plot::sequential(if top > 0.0 { value / top } else { 0.0 });
        assert_eq!(
            &pixels[3 * cell..3 * cell + 3],
            &[c.0, c.1, c.2],
            "cell {cell}"
        );
    }
    // Axis labels: whole numbers without decimals, never repeated along an axis; the
    // construction's logarithmic axis labels each size.
    for name in [
        "frequencies.svg",
        "construction.svg",
        "loss.svg",
        "accuracy.svg",
    ] {
        let texts = svg_texts(&read(name));
        assert!(
            !texts.iter().any(|t| t.ends_with(".0")),
            "{name}: {texts:?}"
        );
    }
    let construction = svg_texts(&read("construction.svg"));
    for size in &a.construction.sizes {
        assert!(construction.contains(&size.to_string()), "{construction:?}");
    }
    // The page: the summary's numbers, and captions escaped as HTML.
    assert!(html.contains(&format!("<td>{:.1}%</td>", 100.0 * a.accuracy_full)));
    assert!(html.contains(&format!("<td>{}</td>", a.histogram.distinct)));
    assert!(
        html.contains("similarities are &gt;= 0"),
        "captions are not escaped"
    );
    assert!(!html.contains("similarities are >= 0"));
}

#[test]
fn report_refuses_mismatched_inputs() {
    let weights = MlpConfig::new()
        .with_p(7)
        .with_d_hidden(8)
        .init::<common::Cpu>(0, &Default::default())
        .weights();
    let data = ModularDataset::new(11, 0.8, 0).unwrap();
    assert!(analyze(&weights, &data, None, &small_config()).is_err());
    let data = ModularDataset::new(7, 0.8, 0).unwrap();
    let bad = ReportConfig {
        heatmap_neurons: vec![8],
        ..small_config()
    };
    assert!(analyze(&weights, &data, None, &bad).is_err());
}

/// The report's numbers on the notebook-trained fixture (p = 113, 100 neurons). Slow in debug
/// builds (about a minute); run with `cargo test --release --test integration report::fixture_report_numbers -- --ignored --nocapture`.
#[test]
#[ignore]
fn fixture_report_numbers() {
    let weights =
        grokking::io::safetensors::read_weights(common::fixture("seed1337_p113_h100.safetensors"))
            .unwrap();
    let data = ModularDataset::new(113, 0.8, 1337).unwrap();
    let out = std::env::temp_dir().join("grokking-fixture-report");
    let a = write_report(&out, &weights, &data, None, None, &ReportConfig::default()).unwrap();
    println!("written to {}", out.display());
    println!(
        "median gap {:?}, all-3 agree {}, distinct {}, ARI fc1 {:.3} fc2 {:.3} act {:.3}",
        a.phases.median_gap,
        a.phases.all_freq_agree,
        a.histogram.distinct,
        a.fc1.ari_vs_freq,
        a.fc2.ari_vs_freq,
        a.activations.ari_vs_freq
    );
    println!("waveform inputs {:?}", a.waveform_inputs);
    println!("waveform outputs {:?}", a.waveform_outputs);
    println!(
        "construction {:?} mean {:?}",
        a.construction.sizes,
        a.construction.mean()
    );
    println!(
        "sweep all replaced {} (val {}), mean {:?}",
        a.sweep.all_replaced, a.sweep.all_replaced_val, a.sweep.draw_mean
    );
    println!("seconds {:?}", a.seconds);
    assert!(a.phases.median_gap.unwrap() < 0.05);
}

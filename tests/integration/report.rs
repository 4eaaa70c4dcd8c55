//! The report on a small network: every figure it references exists and is an SVG, and
//! analysis.json holds the numbers.

use crate::common;

use grokking::{
    report::{analyze, write_report, ReportConfig},
    EpochMetrics, History, MlpConfig, ModularDataset,
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
            })
            .collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    let analysis =
        write_report(dir.path(), &weights, &data, Some(&history), &small_config()).unwrap();
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
    let a = write_report(&out, &weights, &data, None, &ReportConfig::default()).unwrap();
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

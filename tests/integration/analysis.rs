//! Each analysis on inputs with a known answer, and the notebook-trained fixture's phase-sum law.

use crate::common;

use std::f64::consts::PI;

use common::{cosine, fixture};
use grokking::{
    analysis::{
        self,
        cluster::{adjusted_rand_index, kmeans},
        construction::{construction_curve, construction_weights, random_cosine_neurons},
        embed::tsne,
        evaluate::{post_by_neuron, pre_grid},
        fast::GridLogits,
        fourier::fit_neurons,
        frequencies::{frequency_histogram, neuron_frequencies},
        phases::{median, phase_relations, wrap_angle},
        similarity::{cosine_similarity, fc1_rows, fc2_columns},
        sweep_replacement::replacement_sweep,
        waveform::{fit_waveforms, summarize, Shape},
    },
    io, MlpConfig, MlpWeights, ModularDataset, Split,
};

/// A network of exact cosine neurons with chosen frequencies and phases (output phase = sum).
fn cosine_network(p: usize, neurons: &[(usize, f64, f64)]) -> MlpWeights {
    let h = neurons.len();
    let mut w = MlpWeights::new(p, h, vec![0.0; h * 2 * p], vec![0.0; p * h]).unwrap();
    for (n, &(k, pa, pb)) in neurons.iter().enumerate() {
        w.set_neuron(
            n,
            &cosine(p, k, pa, 1.0, 0.0),
            &cosine(p, k, pb, 1.0, 0.0),
            &cosine(p, k, wrap_angle(pa + pb), 1.0, 0.0),
        );
    }
    w
}

fn random_weights(p: usize, h: usize, seed: u64) -> MlpWeights {
    MlpConfig::new()
        .with_p(p)
        .with_d_hidden(h)
        .init::<common::Cpu>(seed, &Default::default())
        .weights()
}

#[test]
fn activations_are_per_neuron_over_the_grid() {
    let w = random_weights(7, 5, 3);
    let post = post_by_neuron(&w);
    assert_eq!(post.len(), 5);
    for (n, v) in post.iter().enumerate() {
        assert_eq!(v.len(), 49);
        let (a_w, b_w) = (w.input_a(n), w.input_b(n));
        for a in 0..7 {
            for b in 0..7 {
                assert_eq!(v[a * 7 + b], (a_w[a] + b_w[b]).max(0.0));
                assert_eq!(pre_grid(&w, n)[a * 7 + b], a_w[a] + b_w[b]);
            }
        }
    }
}

#[test]
fn cosine_similarity_of_known_vectors() {
    let rows = vec![
        vec![1.0, 0.0],
        vec![0.0, 2.0],
        vec![-3.0, 0.0],
        vec![0.0, 0.0],
    ];
    let s = cosine_similarity(&rows);
    assert!((s[0][0] - 1.0).abs() < 1e-12);
    assert!(s[0][1].abs() < 1e-12);
    assert!((s[0][2] + 1.0).abs() < 1e-12);
    assert_eq!(s[3][0], 0.0);
    let w = random_weights(5, 3, 1);
    assert_eq!(fc1_rows(&w)[2].len(), 10);
    assert_eq!(fc2_columns(&w)[1], w.output(1));
}

#[test]
fn ari_is_one_for_renamed_labels_and_matches_a_hand_computed_value() {
    assert_eq!(adjusted_rand_index(&[0, 0, 1, 1, 2], &[5, 5, 3, 3, 9]), 1.0);
    // Contingency {2, 1, 1}: index 1, margins 2 and 1, expected 1/3, max 3/2 -> 4/7.
    let ari = adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]);
    assert!((ari - 4.0 / 7.0).abs() < 1e-12, "{ari}");
    // Independent labellings: negative or near 0.
    assert!(adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]) <= 0.0);
}

/// Three tight blobs of 8 points in 5 dimensions.
fn blobs() -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for c in 0..3 {
        for i in 0..8 {
            let row: Vec<f64> = (0..5)
                .map(|d| 10.0 * ((c + d) % 3) as f64 + 0.01 * ((i * 7 + d * 3) % 11) as f64)
                .collect();
            rows.push(row);
            labels.push(c);
        }
    }
    (rows, labels)
}

#[test]
fn kmeans_recovers_separated_clusters_deterministically() {
    let (rows, labels) = blobs();
    let found = kmeans(&rows, 3, 7).unwrap();
    assert_eq!(adjusted_rand_index(&found, &labels), 1.0);
    assert_eq!(found, kmeans(&rows, 3, 7).unwrap());
    assert!(kmeans(&rows, 0, 7).is_err());
    assert!(kmeans(&rows, 25, 7).is_err());
}

#[test]
fn tsne_keeps_separated_clusters_apart() {
    let (rows, labels) = blobs();
    let e = tsne(&rows, 5.0, 1).unwrap();
    assert_eq!(e.len(), rows.len());
    assert_eq!(
        e,
        tsne(&rows, 5.0, 1).unwrap(),
        "seeded t-SNE is deterministic"
    );
    // Every point's nearest neighbour in the embedding is in its own cluster.
    for i in 0..e.len() {
        let nearest = (0..e.len())
            .filter(|&j| j != i)
            .min_by(|&x, &y| {
                let d = |j: usize| (e[i][0] - e[j][0]).powi(2) + (e[i][1] - e[j][1]).powi(2);
                d(x).total_cmp(&d(y))
            })
            .unwrap();
        assert_eq!(labels[i], labels[nearest], "point {i}");
    }
    assert!(tsne(&rows[..3], 5.0, 1).is_err());
}

#[test]
fn frequency_histogram_counts_neurons() {
    let h = frequency_histogram(&[3, 3, 5, 1, 3], 11);
    assert_eq!(h.counts, vec![0, 1, 0, 3, 0, 1]);
    assert_eq!(h.distinct, 3);
}

#[test]
fn phase_sum_law_holds_exactly_for_cosine_neurons() {
    let p = 31;
    let w = cosine_network(p, &[(3, 0.4, 2.9), (7, -2.0, -2.5), (15, 1.0, 0.2)]);
    let fits = fit_neurons(&w);
    assert_eq!(neuron_frequencies(&fits), vec![3, 7, 15]);
    let r = phase_relations(&fits);
    assert_eq!(r.all_freq_agree, 1.0);
    // Weights are stored in f32: phases agree to about 1e-7.
    assert!(r.median_gap.unwrap() < 1e-5);
    assert!((r.median_scale_ratio - 1.0).abs() < 1e-5);

    // Break the law on one neuron by a known phase offset, and its frequency on another.
    let mut w2 = w.clone();
    w2.set_neuron(
        0,
        &cosine(p, 3, 0.4, 1.0, 0.0),
        &cosine(p, 3, 2.9, 1.0, 0.0),
        &cosine(p, 3, 0.4 + 2.9 + 0.5, 1.0, 0.0),
    );
    w2.set_neuron(
        1,
        &cosine(p, 7, 0.0, 1.0, 0.0),
        &cosine(p, 8, 0.0, 1.0, 0.0),
        &cosine(p, 7, 0.0, 1.0, 0.0),
    );
    let r = phase_relations(&fit_neurons(&w2));
    assert!((r.phase_gap[0].unwrap() - 0.5).abs() < 1e-6);
    assert_eq!(r.phase_gap[1], None);
    assert!((r.all_freq_agree - 2.0 / 3.0).abs() < 1e-12);
    assert!((r.ab_freq_agree - 2.0 / 3.0).abs() < 1e-12);
    assert!((r.median_gap.unwrap() - 0.25).abs() < 1e-6);
}

#[test]
fn wrap_and_median() {
    assert!((wrap_angle(3.0 * PI) - PI).abs() < 1e-12);
    assert!((wrap_angle(-PI) - PI).abs() < 1e-12);
    assert!((wrap_angle(0.5 - 4.0 * PI) - 0.5).abs() < 1e-12);
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(median(&[]), None);
}

#[test]
fn waveform_fits_name_the_shape_that_made_the_vector() {
    let p = 59;
    let k = 5;
    let shaped = |shape: Shape| -> Vec<f64> {
        (0..p)
            .map(|x| 0.3 + 2.0 * shape.eval(2.0 * PI * ((k * x) % p) as f64 / p as f64 + 0.7))
            .collect()
    };
    for shape in Shape::ALL {
        let fit = fit_waveforms(&shaped(shape));
        assert_eq!(fit.freq, k);
        assert_eq!(fit.best(), shape, "{shape:?}: {fit:?}");
        let r2 = match shape {
            Shape::Cosine => fit.cosine,
            Shape::Square => fit.square,
            Shape::RectifiedCosine => fit.rectified,
        };
        assert!(r2 > 0.999, "{shape:?}: {fit:?}");
    }
    let s = summarize(&[
        fit_waveforms(&shaped(Shape::Square)),
        fit_waveforms(&shaped(Shape::Cosine)),
    ]);
    assert_eq!((s.vectors, s.square_best, s.cosine_best), (2, 1, 1));
}

#[test]
fn grid_logits_agree_with_the_exact_forward_pass() {
    let p = 13;
    let w = random_weights(p, 20, 5);
    let mut logits = GridLogits::zeros(p);
    for n in 0..w.d_hidden() {
        logits.add_neuron(&w.input_a(n), &w.input_b(n), &w.output(n), 1.0);
    }
    let data = ModularDataset::new(p, 0.5, 1).unwrap();
    assert_eq!(
        logits.accuracy(&data),
        analysis::accuracy(&w, &data, Split::Full)
    );
    assert_eq!(
        GridLogits::zeros(p).accuracy(&data),
        1.0 / p as f64,
        "class 0 on ties"
    );
}

#[test]
fn replacing_exact_cosine_neurons_changes_nothing() {
    let p = 17;
    let neurons: Vec<(usize, f64, f64)> = (0..24)
        .map(|n| (1 + n % 8, 0.37 * n as f64, 1.1 * n as f64 - 3.0))
        .collect();
    let w = cosine_network(p, &neurons);
    let fits = fit_neurons(&w);
    let data = ModularDataset::new(p, 0.8, 0).unwrap();
    let exact = analysis::accuracy(&w, &data, Split::Full);
    let s = replacement_sweep(&w, &fits, &data, 5, 3, 0).unwrap();
    assert_eq!(s.counts, vec![0, 6, 12, 18, 24]);
    for curve in s.draws.iter().chain([&s.best_first, &s.worst_first]) {
        for &acc in curve {
            assert!((acc - exact).abs() < 1e-9, "{acc} vs {exact}");
        }
    }
    assert!((s.all_replaced - exact).abs() < 1e-12);
    assert!(replacement_sweep(&w, &fits, &data, 1, 3, 0).is_err());
}

#[test]
fn sweep_ends_match_the_exact_replacement() {
    let p = 13;
    let w = random_weights(p, 16, 2);
    let fits = fit_neurons(&w);
    let data = ModularDataset::new(p, 0.8, 0).unwrap();
    let s = replacement_sweep(&w, &fits, &data, 3, 4, 9).unwrap();
    let all: Vec<usize> = (0..16).collect();
    let replaced = analysis::replacement_accuracy(&w, &fits, &all, &data);
    for curve in s.draws.iter().chain([&s.best_first, &s.worst_first]) {
        assert_eq!(curve[0], analysis::accuracy(&w, &data, Split::Full));
        assert!((curve[2] - replaced.full).abs() <= 1.0 / (p * p) as f64);
    }
    assert_eq!(s.all_replaced, replaced.full);
    assert!(s.draw_min.iter().zip(&s.draw_max).all(|(lo, hi)| lo <= hi));
}

#[test]
fn construction_reaches_full_accuracy_and_obeys_the_phase_law() {
    let p = 23;
    let neurons = random_cosine_neurons(p, 12, 4).unwrap();
    assert!(neurons.iter().all(|n| (1..=p / 2).contains(&n.freq)
        && (0.0..2.0 * PI).contains(&n.phase_a)
        && (0.0..2.0 * PI).contains(&n.phase_b)));
    let w = construction_weights(p, &neurons).unwrap();
    let r = phase_relations(&fit_neurons(&w));
    assert_eq!(r.all_freq_agree, 1.0);
    assert!(r.median_gap.unwrap() < 1e-6);

    let curve = construction_curve(p, &[2, 256, 16], &[0, 1]).unwrap();
    assert_eq!(curve.sizes, vec![2, 16, 256]);
    let mean = curve.mean();
    assert!(mean[2] >= 0.99, "{mean:?}");
    assert!(mean[0] < mean[2], "{mean:?}");
    // The nested family's last point is the network built directly.
    let direct = construction_weights(p, &random_cosine_neurons(p, 256, 1).unwrap()).unwrap();
    let data = ModularDataset::new(p, 0.5, 0).unwrap();
    let exact = analysis::accuracy(&direct, &data, Split::Full);
    assert!((curve.accuracy[1][2] - exact).abs() <= 1.0 / (p * p) as f64);
    assert!(construction_curve(1, &[4], &[0]).is_err());
    assert!(construction_curve(p, &[], &[0]).is_err());
}

#[test]
fn fixture_model_obeys_the_phase_sum_law() {
    let w = io::safetensors::read_weights(fixture("seed1337_p113_h100.safetensors")).unwrap();
    let r = phase_relations(&fit_neurons(&w));
    let gap = r.median_gap.unwrap();
    eprintln!(
        "fixture: median gap {gap:.4} rad, a/b freqs agree {:.3}, all three {:.3}",
        r.ab_freq_agree, r.all_freq_agree
    );
    // The post: median gap 0.04 rad on the notebook's model.
    assert!((0.03..0.05).contains(&gap), "median gap {gap}");
    assert_eq!(r.all_freq_agree, 1.0);
}

#[test]
fn isometric_coordinates_keep_every_distance_in_n_dimensions() {
    use grokking::analysis::similarity::isometric_coordinates;
    // 5 points in 40 dimensions, the last a combination of two others, one all zero (dead).
    let mut rows: Vec<Vec<f64>> = (0..3)
        .map(|i| {
            (0..40)
                .map(|x| ((x * (i + 2)) as f64 * 0.37).sin())
                .collect()
        })
        .collect();
    rows.push(vec![0.0; 40]);
    rows.push(
        rows[0]
            .iter()
            .zip(&rows[2])
            .map(|(a, b)| 2.0 * a - b)
            .collect(),
    );
    let low = isometric_coordinates(&rows);
    assert_eq!((low.len(), low[0].len()), (5, 5));
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    for i in 0..5 {
        for j in 0..5 {
            let (high, got) = (dist(&rows[i], &rows[j]), dist(&low[i], &low[j]));
            assert!(
                (high - got).abs() < 1e-9 * (1.0 + high),
                "{i},{j}: {high} vs {got}"
            );
        }
    }
    // Short rows are left alone.
    let short = vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]];
    assert_eq!(isometric_coordinates(&short), short);
}

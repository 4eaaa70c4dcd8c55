//! Snapshots along training and the progress measures computed from them.
#![cfg(feature = "flex")]

use crate::common;

use common::fixture;
use grokking::{
    analysis::progress::{frequency_power, gini, ipr, progress_measures, ProgressMeasures},
    io::{self, snapshots::Snapshots},
    MlpConfig, Operation, TrainingConfig,
};
use serde_json::Value;

fn config(p: usize, h: usize) -> TrainingConfig {
    TrainingConfig::new().with_model(MlpConfig::new().with_p(p).with_d_hidden(h))
}

#[test]
fn snapshots_round_trip_bit_for_bit_and_refuse_what_does_not_fit() {
    let config = config(11, 6).with_operation(Operation::Div).with_seed(3);
    let mut snapshots = Snapshots::new(config.clone());
    for (epoch, seed) in [(0, 1), (4, 2), (9, 3)] {
        snapshots
            .push(epoch, &config.model.init_weights(seed))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    snapshots.save(&path).unwrap();
    let back = Snapshots::load(&path).unwrap();
    assert_eq!(back, snapshots);
    assert_eq!(back.config().operation, Operation::Div);
    for i in 0..3 {
        let (a, b) = (back.weights(i), snapshots.weights(i));
        let bits = |w: &grokking::MlpWeights| -> Vec<u32> {
            w.fc1().iter().chain(w.fc2()).map(|v| v.to_bits()).collect()
        };
        assert_eq!(bits(&a), bits(&b));
    }
    // Epochs must ascend, shapes must match the run's network.
    assert!(snapshots.push(9, &config.model.init_weights(4)).is_err());
    let other = MlpConfig::new().with_p(11).with_d_hidden(7).init_weights(1);
    assert!(snapshots.push(20, &other).is_err());
    // A resumed run drops the snapshots after its checkpoint.
    let mut resumed = back.clone();
    resumed.truncate_after(5);
    assert_eq!(resumed.epochs(), &[0, 4]);
    assert_eq!(resumed.weights(1), snapshots.weights(1));
    // Another safetensors file is not a snapshot file.
    let weights = dir.path().join("w.safetensors");
    io::safetensors::write_weights(&weights, &config.model.init_weights(1)).unwrap();
    let err = Snapshots::load(&weights).unwrap_err().to_string();
    assert!(err.contains("not a snapshot file"), "{err}");
}

#[test]
fn gini_is_zero_for_equal_values_and_near_one_for_one() {
    assert_eq!(gini(&[2.0, 2.0, 2.0]), 0.0);
    assert_eq!(gini(&[0.0, 0.0, 0.0, 1.0]), 0.75);
    assert_eq!(gini(&[0.0, 0.0]), 0.0);
    assert!((gini(&[1.0, 3.0]) - 0.25).abs() < 1e-15);
}

/// One frequency holding all the non-constant power gives 1, `n` equal ones `1/n`; the constant
/// term is left out, and a neuron without non-constant power gives 0.
#[test]
fn ipr_counts_the_frequencies_that_share_the_power() {
    assert_eq!(ipr(&[5.0, 0.0, 3.0, 0.0]), 1.0);
    assert_eq!(ipr(&[0.0, 2.0, 2.0, 2.0, 2.0]), 0.25);
    assert_eq!(ipr(&[7.0, 0.0, 0.0]), 0.0);
    let cosine: Vec<f64> = (0..23)
        .map(|x| (2.0 * std::f64::consts::PI * 4.0 * x as f64 / 23.0 + 0.3).cos() + 0.5)
        .collect();
    assert!((ipr(&frequency_power(&cosine)) - 1.0).abs() < 1e-12);
}

fn measures_of(value: &Value, name: &str) -> Vec<f64> {
    value[name]
        .as_array()
        .unwrap_or_else(|| panic!("no {name}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// `reference/progress_measures.py` computed the expected measures from the same snapshot file
/// (`tests/fixtures/make_progress_fixture.sh`): a multiplication run, p = 23, in discrete-log
/// coordinates.
#[test]
fn the_measures_agree_with_the_numpy_reference_to_1e_6() {
    let snapshots = Snapshots::load(fixture("progress_mul_p23.snapshots.safetensors")).unwrap();
    let ours: ProgressMeasures = progress_measures(&snapshots, None).unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("progress_mul_p23.expected.json")).unwrap(),
    )
    .unwrap();
    let ints = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    assert_eq!(ours.epochs, ints(&expected["epochs"]));
    assert_eq!(ours.m, 22);
    assert_eq!(ours.basis, expected["basis"].as_str().unwrap());
    assert_eq!(ours.key_frequencies, ints(&expected["key_frequencies"]));
    let json = serde_json::to_value(&ours).unwrap();
    for name in [
        "train_loss",
        "val_loss",
        "restricted_loss",
        "excluded_loss",
        "gini_fc1",
        "gini_fc2",
        "weight_norm",
        "single_frequency_share",
        "replaced_accuracy",
        "ipr_mean",
    ] {
        let (a, b) = (measures_of(&json, name), measures_of(&expected, name));
        assert_eq!(a.len(), b.len(), "{name}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-6),
                "{name}[{i}]: {x} vs {y}"
            );
        }
    }
    let per_neuron = |v: &Value| -> Vec<f64> {
        v["ipr"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect()
    };
    let (a, b) = (per_neuron(&json), per_neuron(&expected));
    assert_eq!(a.len(), 10 * 48);
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-6 * x.abs().max(1e-6),
            "ipr[{i}]: {x} vs {y}"
        );
    }
}

/// The notebook's trained network (p = 113, its seed's split): the key frequencies (the 49 its
/// neurons use) alone carry its answer (restricted loss 0.15, below its loss of 0.37 on all
/// pairs), and without them it has no answer on the very pairs it was trained on (excluded loss
/// 5.4, above chance's ln 113 = 4.7, against a training loss of 0.32).
#[test]
fn the_notebook_model_lives_in_its_key_frequencies() {
    let weights = io::safetensors::read_weights(fixture("seed1337_p113_h100.safetensors")).unwrap();
    let mut snapshots = Snapshots::new(config(113, 100).with_seed(1337));
    snapshots.push(1999, &weights).unwrap();
    let m = progress_measures(&snapshots, None).unwrap();
    let (train, val) = (m.train_loss[0], m.val_loss[0]);
    let full = (10_215.0 * train + 2_554.0 * val) / 12_769.0;
    assert!(m.key_frequencies.len() > 40, "{:?}", m.key_frequencies);
    assert!(
        m.restricted_loss[0] < full,
        "restricted {} vs full {full}",
        m.restricted_loss[0]
    );
    assert!(
        m.excluded_loss[0] > 10.0 * train,
        "excluded {} vs train {train}",
        m.excluded_loss[0]
    );
    assert!(
        m.excluded_loss[0] > 0.9 * (113f64).ln(),
        "excluded {}",
        m.excluded_loss[0]
    );
    // The fixture's known numbers: all neurons replaced (0.70961) and its training accuracy.
    assert!((m.replaced_accuracy[0] - 0.70961).abs() < 1e-5);
    assert!(m.train_acc[0] > 0.9999 && m.val_acc[0] > 0.995);
}

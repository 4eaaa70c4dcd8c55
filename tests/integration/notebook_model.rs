//! The notebook-trained model (seed 1337, p = 113, 100 neurons): fits and accuracies must match
//! `expected_from_pth.py`'s figures in `seed1337_p113_h100.expected.json`, and training from the
//! notebook's seed must retrace the notebook's logged curve.

use crate::common;

use common::{fixture, CpuAutodiff};
use grokking::{
    analysis::{self, fourier},
    io,
    train::{Engine, EpochMetrics},
    Control, ModularDataset, Split, TrainingConfig,
};
use serde_json::Value;

fn expected() -> Value {
    common::expected("seed1337_p113_h100")
}

/// One column of the notebook's per-epoch log.
fn logged(column: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(fixture("seed1337_p113_h100.history.json")).unwrap();
    let history: Value = serde_json::from_str(&text).unwrap();
    history[column]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn weights() -> grokking::MlpWeights {
    io::safetensors::read_weights(fixture("seed1337_p113_h100.safetensors")).unwrap()
}

#[test]
fn shapes_are_inferred() {
    let w = weights();
    assert_eq!((w.p(), w.d_hidden()), (113, 100));
}

#[test]
fn every_fit_matches_the_reference() {
    let expected = expected();
    let fits = fourier::fit_neurons(&weights());
    common::assert_fits_match(&fits, &expected);
}

#[test]
fn full_and_replaced_accuracies_match_the_reference() {
    let expected = expected();
    let w = weights();
    let data = ModularDataset::new(113, 0.8, 1337).unwrap();
    let full = analysis::accuracy(&w, &data, Split::Full);
    assert_eq!(full, expected["full_accuracy"].as_f64().unwrap());
    let fits = fourier::fit_neurons(&w);
    let all: Vec<usize> = (0..100).collect();
    let replaced = analysis::replacement_accuracy(&w, &fits, &all, &data);
    assert_eq!(
        replaced.full,
        expected["replaced_all_accuracy"].as_f64().unwrap()
    );
    // Validation accuracies as reference/expected_from_pth.py measured them on the notebook's
    // split (seed 1337), to within one of the 2554 validation pairs (a near-tie may round apart).
    let n_val = data.rows(Split::Val).len() as f64;
    let within_one_pair = |got: f64, key: &str| {
        let want = expected[key].as_f64().unwrap();
        assert!(
            (got - want).abs() * n_val <= 1.0 + 1e-9,
            "{key}: {got} vs {want}"
        );
    };
    within_one_pair(analysis::accuracy(&w, &data, Split::Val), "val_accuracy");
    within_one_pair(replaced.val, "replaced_all_val_accuracy");
}

#[test]
fn replacing_no_neuron_changes_nothing() {
    let w = weights();
    let data = ModularDataset::new(113, 0.8, 1337).unwrap();
    let fits = fourier::fit_neurons(&w);
    let none = analysis::replacement_accuracy(&w, &fits, &[], &data);
    assert_eq!(none.full, analysis::accuracy(&w, &data, Split::Full));
    assert_eq!(none.val, analysis::accuracy(&w, &data, Split::Val));
}

#[test]
fn our_split_is_the_notebooks_split() {
    // The fixture was trained on the split NumPy's seed 1337 gives. On our split for that seed
    // its validation accuracy equals the notebook's last logged val_acc (2543 of 2554 rows);
    // any other split of the 12 wrong rows of the grid would give another figure.
    let last = *logged("val_acc").last().unwrap();
    let w = weights();
    let data = ModularDataset::new(113, 0.8, 1337).unwrap();
    let val = analysis::accuracy(&w, &data, Split::Val);
    assert!((val - last).abs() < 1e-12, "{val} vs {last}");
    assert_eq!(
        analysis::accuracy(&w, &data, Split::Train),
        10_214.0 / 10_215.0
    );
}

#[test]
fn training_from_the_notebooks_seed_retraces_its_logged_curve() {
    // Seed 1337 gives the notebook's split and its initial weights bit for bit, so both runs start
    // at the same point. PyTorch's products sum in another order; that rounding is all that tells
    // the curves apart, and it grows slowly once the network starts to learn (epoch 5 or so). On
    // the development machine the gaps stay below a tenth of the first four epochs' tolerances,
    // and below half of the later ones (0.25% in loss, 5 validation rows).
    let (val_loss, val_acc, train_acc) =
        (logged("val_loss"), logged("val_acc"), logged("train_acc"));
    let one_row = 1.0 / 2554.0;
    for engine in [Engine::Fused, Engine::Generic] {
        let config = TrainingConfig::new()
            .with_seed(1337)
            .with_epochs(40)
            .with_engine(engine);
        let trained =
            grokking::train::<CpuAutodiff>(&config, &Default::default(), |_: &EpochMetrics| {
                Control::Continue
            })
            .unwrap();
        for m in &trained.history.epochs {
            let e = m.epoch;
            let (loss_tol, acc_tol) = if e < 4 { (1e-5, one_row) } else { (1e-2, 0.01) };
            let loss_gap = (m.val_loss / val_loss[e] - 1.0).abs();
            assert!(
                loss_gap < loss_tol,
                "{engine:?} epoch {e}: val_loss {} vs {}",
                m.val_loss,
                val_loss[e]
            );
            assert!(
                (m.val_acc - val_acc[e]).abs() <= acc_tol,
                "{engine:?} epoch {e}: val_acc {} vs {}",
                m.val_acc,
                val_acc[e]
            );
            assert!(
                (m.train_acc - train_acc[e]).abs() <= acc_tol,
                "{engine:?} epoch {e}: train_acc {} vs {}",
                m.train_acc,
                train_acc[e]
            );
        }
    }
}

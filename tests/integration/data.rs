//! The modular data set: pairs, labels, the seeded split and its errors.
#![cfg(feature = "flex")]

use crate::common;

use std::collections::HashSet;

use common::Cpu;
use grokking::{mt19937::Mt19937, Error, ModularDataset, Split};

#[test]
fn full_grid_has_every_pair_once_in_notebook_order() {
    let data = ModularDataset::new(7, 0.5, 0).unwrap();
    let rows = data.rows(Split::Full);
    assert_eq!(rows.len(), 49);
    for (i, &row) in rows.iter().enumerate() {
        assert_eq!(data.pair(row), (i / 7, i % 7));
    }
}

#[test]
fn labels_are_sums_mod_p() {
    let data = ModularDataset::new(13, 0.3, 5).unwrap();
    for &row in data.rows(Split::Full) {
        let (a, b) = data.pair(row);
        assert_eq!(data.label(row), (a + b) % 13);
    }
}

#[test]
fn split_sizes_follow_the_notebook() {
    let data = ModularDataset::new(113, 0.8, 1337).unwrap();
    assert_eq!(data.train_rows().len(), 10_215); // int(0.8 * 113 * 113)
    assert_eq!(data.val_rows().len(), 12_769 - 10_215);
}

#[test]
fn split_is_a_partition_of_the_grid() {
    let data = ModularDataset::new(23, 0.37, 9).unwrap();
    let train: HashSet<u32> = data.train_rows().iter().copied().collect();
    let val: HashSet<u32> = data.val_rows().iter().copied().collect();
    assert_eq!(
        train.len(),
        data.train_rows().len(),
        "no duplicates in train"
    );
    assert_eq!(val.len(), data.val_rows().len(), "no duplicates in val");
    assert!(train.is_disjoint(&val));
    assert_eq!(train.len() + val.len(), 23 * 23);
}

#[test]
fn shuffle_reproduces_numpy_permutation() {
    // np.random.seed(1337); np.random.permutation(113 * 113)[:8] and [-3:], NumPy 2.4.
    let data = ModularDataset::new(113, 0.8, 1337).unwrap();
    assert_eq!(
        &data.train_rows()[..8],
        &[8371, 8383, 4664, 12209, 6770, 7268, 11058, 8242]
    );
    assert_eq!(
        &data.val_rows()[data.val_rows().len() - 3..],
        &[860, 8381, 3223]
    );
    // np.random.seed(0); np.random.permutation(49)[:12]
    let perm = Mt19937::new(0).unwrap().permutation(49);
    assert_eq!(&perm[..12], &[29, 4, 26, 30, 32, 37, 34, 40, 7, 10, 11, 31]);
}

#[test]
fn same_seed_same_split_other_seed_other_split() {
    let a = ModularDataset::new(31, 0.6, 42).unwrap();
    let b = ModularDataset::new(31, 0.6, 42).unwrap();
    let c = ModularDataset::new(31, 0.6, 43).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.train_rows(), c.train_rows());
}

#[test]
fn modulus_below_two_is_an_error() {
    for p in [0, 1] {
        let err = ModularDataset::new(p, 0.5, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidModulus { .. }), "{err}");
        assert!(err.to_string().contains("at least 2"), "{err}");
    }
}

#[test]
fn modulus_too_large_to_index_is_an_error() {
    let err = ModularDataset::new(grokking::data::MAX_P + 1, 0.5, 0).unwrap_err();
    assert!(err.to_string().contains("32-bit"), "{err}");
}

#[test]
fn train_fraction_outside_the_open_interval_is_an_error() {
    for f in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let err = ModularDataset::new(11, f, 0).unwrap_err();
        assert!(
            matches!(err, Error::InvalidTrainFraction { .. }),
            "{f}: {err}"
        );
    }
}

#[test]
fn train_fraction_leaving_a_side_empty_is_an_error() {
    // p = 2: 4 rows; 0.1 * 4 rounds down to 0 training rows.
    let err = ModularDataset::new(2, 0.1, 0).unwrap_err();
    assert!(err.to_string().contains("0 training"), "{err}");
    // 0.99 * 9 = 8.91 -> 8 training, 1 validation: allowed.
    assert_eq!(ModularDataset::new(3, 0.99, 0).unwrap().val_rows().len(), 1);
}

#[test]
fn seed_beyond_numpy_range_is_an_error() {
    let err = ModularDataset::new(5, 0.5, 1 << 32).unwrap_err();
    assert!(err.to_string().contains("seed"), "{err}");
}

#[test]
fn index_tensors_hold_a_and_p_plus_b() {
    let data = ModularDataset::new(5, 0.6, 3).unwrap();
    let t = data.tensors::<Cpu>(Split::Train, &Default::default());
    assert_eq!(t.pairs.dims(), [15, 2]);
    assert_eq!(t.labels.dims(), [15]);
    let pairs: Vec<i64> = t.pairs.into_data().convert::<i64>().to_vec().unwrap();
    let labels: Vec<i64> = t.labels.into_data().convert::<i64>().to_vec().unwrap();
    for (i, &row) in data.train_rows().iter().enumerate() {
        let (a, b) = data.pair(row);
        assert_eq!((pairs[2 * i], pairs[2 * i + 1]), (a as i64, (5 + b) as i64));
        assert_eq!(labels[i], ((a + b) % 5) as i64);
    }
}

#[test]
fn one_hot_rows_have_ones_at_a_and_p_plus_b() {
    let data = ModularDataset::new(4, 0.5, 1).unwrap();
    let x = data.one_hot::<Cpu>(Split::Val, &Default::default());
    assert_eq!(x.dims(), [8, 8]);
    let values: Vec<f32> = x.into_data().to_vec().unwrap();
    for (i, &row) in data.val_rows().iter().enumerate() {
        let (a, b) = data.pair(row);
        let line = &values[i * 8..][..8];
        assert_eq!(line.iter().sum::<f32>(), 2.0);
        assert_eq!((line[a], line[4 + b]), (1.0, 1.0));
    }
}

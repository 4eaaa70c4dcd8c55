//! The network: shapes, the two input forms, weight orientation and initialisation.
#![cfg(feature = "flex")]

use crate::common;

use burn::tensor::{Tensor, TensorData, Tolerance};
use common::Cpu;
use grokking::{Error, Mlp, MlpConfig, MlpWeights, ModularDataset, Split};

fn small() -> Mlp<Cpu> {
    MlpConfig::new()
        .with_p(7)
        .with_d_hidden(5)
        .init::<Cpu>(3, &Default::default())
}

#[test]
fn forward_shapes() {
    let model = small();
    let data = ModularDataset::new(7, 0.5, 0).unwrap();
    let device = Default::default();
    let x = data.one_hot::<Cpu>(Split::Full, &device);
    assert_eq!(model.forward(x.clone()).dims(), [49, 7]);
    let act = model.forward_one_hot_activations(x);
    assert_eq!(act.pre.dims(), [49, 5]);
    assert_eq!(act.post.dims(), [49, 5]);
    let pairs = data.tensors::<Cpu>(Split::Train, &device).pairs;
    assert_eq!(model.forward_pairs(pairs).dims(), [24, 7]);
    assert_eq!((model.p(), model.d_hidden()), (7, 5));
    assert_eq!(model.config(), MlpConfig::new().with_p(7).with_d_hidden(5));
}

#[test]
fn burn_layout_is_the_transpose_of_pytorch() {
    let model = small();
    assert_eq!(model.fc1.weight.dims(), [14, 5]);
    assert_eq!(model.fc2.weight.dims(), [5, 7]);
    let w = model.weights();
    let burn_fc1: Vec<f32> = model.fc1.weight.val().into_data().to_vec().unwrap();
    // PyTorch fc1.weight[n, i] == Burn fc1.weight[i, n]
    for n in 0..5 {
        for i in 0..14 {
            assert_eq!(w.fc1()[n * 14 + i], burn_fc1[i * 5 + n]);
        }
    }
}

#[test]
fn one_hot_and_pair_inputs_give_equal_logits_and_activations() {
    let model = small();
    let data = ModularDataset::new(7, 0.5, 0).unwrap();
    let device = Default::default();
    let one_hot = model.forward_one_hot_activations(data.one_hot::<Cpu>(Split::Full, &device));
    let pairs = model.forward_pairs_activations(data.tensors::<Cpu>(Split::Full, &device).pairs);
    let tol = Tolerance::<f32>::absolute(1e-6);
    one_hot
        .logits
        .into_data()
        .assert_approx_eq(&pairs.logits.into_data(), tol);
    one_hot
        .pre
        .into_data()
        .assert_approx_eq(&pairs.pre.into_data(), tol);
    one_hot
        .post
        .into_data()
        .assert_approx_eq(&pairs.post.into_data(), tol);
}

#[test]
fn post_is_relu_of_pre() {
    let model = small();
    let data = ModularDataset::new(7, 0.5, 0).unwrap();
    let act = model
        .forward_pairs_activations(data.tensors::<Cpu>(Split::Full, &Default::default()).pairs);
    let pre: Vec<f32> = act.pre.into_data().to_vec().unwrap();
    let post: Vec<f32> = act.post.into_data().to_vec().unwrap();
    assert!(
        pre.iter().any(|&v| v < 0.0),
        "some pre-activations are negative"
    );
    for (a, b) in pre.iter().zip(&post) {
        assert_eq!(a.max(0.0), *b);
    }
}

#[test]
fn logits_match_a_hand_computed_forward_pass() {
    let model = small();
    let w = model.weights();
    let (a, b) = (3usize, 6usize);
    let pairs = Tensor::<Cpu, 2, burn::tensor::Int>::from_data(
        TensorData::new(vec![a as i64, 7 + b as i64], [1, 2]),
        &Default::default(),
    );
    let logits: Vec<f32> = model.forward_pairs(pairs).into_data().to_vec().unwrap();
    for (c, &got) in logits.iter().enumerate() {
        let mut want = 0f32;
        for n in 0..5 {
            let pre = w.fc1()[n * 14 + a] + w.fc1()[n * 14 + 7 + b];
            want += w.fc2()[c * 5 + n] * pre.max(0.0);
        }
        assert!((got - want).abs() < 1e-5, "{c}: {got} vs {want}");
    }
}

#[test]
fn weights_round_trip_through_the_model_exactly() {
    let w = small().weights();
    let back = Mlp::<Cpu>::from_weights(&w, &Default::default()).weights();
    assert_eq!(w, back);
}

#[test]
fn init_is_seeded_and_within_pytorch_bounds() {
    let config = MlpConfig::new().with_p(11).with_d_hidden(9);
    let device = Default::default();
    let a = config.init::<Cpu>(1, &device).weights();
    let b = config.init::<Cpu>(1, &device).weights();
    let c = config.init::<Cpu>(2, &device).weights();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let bound1 = 1.0 / (22f32).sqrt();
    let bound2 = 1.0 / (9f32).sqrt();
    assert!(a.fc1().iter().all(|v| v.abs() <= bound1));
    assert!(a.fc2().iter().all(|v| v.abs() <= bound2));
    // Spread over the interval, not collapsed near 0.
    assert!(a.fc1().iter().any(|v| v.abs() > 0.8 * bound1));
}

#[test]
fn neuron_vectors_are_the_pytorch_slices() {
    let w = small().weights();
    let n = 2;
    let a = w.input_a(n);
    let b = w.input_b(n);
    let out = w.output(n);
    for x in 0..7 {
        assert_eq!(a[x], w.fc1()[n * 14 + x] as f64);
        assert_eq!(b[x], w.fc1()[n * 14 + 7 + x] as f64);
        assert_eq!(out[x], w.fc2()[x * 5 + n] as f64);
    }
}

#[test]
fn weights_with_wrong_lengths_are_rejected() {
    let err = MlpWeights::new(3, 2, vec![0.0; 11], vec![0.0; 6]).unwrap_err();
    assert!(
        err.to_string().contains("fc1.weight has 11 values"),
        "{err}"
    );
    assert!(matches!(
        MlpWeights::new(1, 2, vec![], vec![]),
        Err(Error::InvalidModulus { .. })
    ));
    assert!(matches!(
        MlpWeights::new(3, 0, vec![], vec![]),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn pytorch_shapes_infer_p_and_width_and_name_mismatches() {
    let w =
        MlpWeights::from_pytorch_shapes(&[4, 10], vec![0.0; 40], &[5, 4], vec![0.0; 20]).unwrap();
    assert_eq!((w.p(), w.d_hidden()), (5, 4));
    let odd = MlpWeights::from_pytorch_shapes(&[4, 9], vec![0.0; 36], &[5, 4], vec![0.0; 20]);
    assert!(odd.unwrap_err().to_string().contains("even"));
    let rows = MlpWeights::from_pytorch_shapes(&[4, 10], vec![0.0; 40], &[6, 4], vec![0.0; 24]);
    assert!(rows.unwrap_err().to_string().contains("6 rows"));
    let width = MlpWeights::from_pytorch_shapes(&[4, 10], vec![0.0; 40], &[5, 3], vec![0.0; 15]);
    assert!(width.unwrap_err().to_string().contains("4 hidden neurons"));
    let flat = MlpWeights::from_pytorch_shapes(&[40], vec![0.0; 40], &[5, 4], vec![0.0; 20]);
    assert!(flat.unwrap_err().to_string().contains("2-D"));
}

#[test]
fn load_weights_keeps_parameter_ids_and_checks_size() {
    let model = small();
    let id = model.fc1.weight.id;
    let other = MlpConfig::new()
        .with_p(7)
        .with_d_hidden(5)
        .init::<Cpu>(99, &Default::default());
    let loaded = model.load_weights(&other.weights()).unwrap();
    assert_eq!(loaded.fc1.weight.id, id);
    assert_eq!(loaded.weights(), other.weights());
    let wrong = MlpConfig::new()
        .with_p(5)
        .with_d_hidden(5)
        .init::<Cpu>(0, &Default::default());
    assert!(matches!(
        loaded.load_weights(&wrong.weights()),
        Err(Error::Shape(_))
    ));
}

#[test]
fn invalid_model_configs_are_errors() {
    assert!(MlpConfig::new().with_d_hidden(0).validate().is_err());
    assert!(MlpConfig::new().with_p(1).validate().is_err());
    assert!(MlpConfig::new().validate().is_ok());
}

//! PyTorch interop and checkpoints: state dicts the notebook saved import exactly, every format
//! round-trips bit for bit, a resumed run equals an uninterrupted one, and bad files are errors.

use crate::common;

use burn::tensor::{Int, Tensor, TensorData};
use common::{fixture, Cpu, CpuAutodiff};
use grokking::{
    analysis,
    io::{self, checkpoint, record, safetensors, WeightFormat},
    train::{Engine, Trainer, TrainingConfig},
    Error, MlpConfig, MlpWeights, ModularDataset,
};

#[test]
fn the_notebook_state_dict_imports_with_its_reference_fits_and_accuracies() {
    let weights = io::load_weights(fixture("seed1337_p113_h100.pth")).unwrap();
    assert_eq!((weights.p(), weights.d_hidden()), (113, 100));
    // The same numbers as the safetensors copy of the same model, bit for bit.
    let copy = safetensors::read_weights(fixture("seed1337_p113_h100.safetensors")).unwrap();
    assert_eq!(weights, copy);
    let expected = common::expected("seed1337_p113_h100");
    let data = ModularDataset::new(113, 0.8, 1337).unwrap();
    let found = analysis::analyse_weights(&weights, &data);
    common::assert_fits_match(&found.fits, &expected);
    assert_eq!(
        found.full_accuracy,
        expected["full_accuracy"].as_f64().unwrap()
    );
    assert_eq!(
        found.replaced_all.full,
        expected["replaced_all_accuracy"].as_f64().unwrap()
    );
}

#[test]
fn state_dicts_of_other_moduli_widths_and_seeds_match_the_reference_script() {
    for (stem, p, h) in [("seed1_p59_h64", 59, 64), ("seed2_p97_h128", 97, 128)] {
        let weights = io::load_weights(fixture(&format!("{stem}.pth"))).unwrap();
        assert_eq!((weights.p(), weights.d_hidden()), (p, h), "{stem}");
        let expected = common::expected(stem);
        let data = ModularDataset::new(p, 0.8, 0).unwrap();
        let found = analysis::analyse_weights(&weights, &data);
        common::assert_fits_match(&found.fits, &expected);
        let close = |got: f64, key: &str| {
            let want = expected[key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-12, "{stem} {key}: {got} vs {want}");
        };
        close(found.full_accuracy, "full_accuracy");
        close(found.replaced_all.full, "replaced_all_accuracy");
    }
}

#[test]
fn imported_logits_equal_pytorchs_for_zip_and_legacy_files() {
    let text = std::fs::read_to_string(fixture("tiny_p7_h5.logits.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    let want: Vec<f32> = want["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let zip = io::load_weights(fixture("tiny_p7_h5.pth")).unwrap();
    let legacy = io::load_weights(fixture("tiny_p7_h5.legacy.pth")).unwrap();
    assert_eq!(zip, legacy);
    assert_eq!((zip.p(), zip.d_hidden()), (7, 5));
    let device = Default::default();
    let model = grokking::Mlp::<Cpu>::from_weights(&zip, &device);
    // All 49 pairs in the file's order, row a·p + b.
    let pairs: Vec<i64> = (0..7)
        .flat_map(|a| (0..7).flat_map(move |b| [a, 7 + b]))
        .collect();
    let pairs = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(pairs, [49, 2]), &device);
    let got: Vec<f32> = model.forward_pairs(pairs).into_data().to_vec().unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // Float32 rounding of a 5-term sum: a few ulp of values around 0.1.
        assert!((g - w).abs() <= 1e-7, "logit {i}: {g} vs PyTorch {w}");
    }
}

#[test]
fn initial_weights_are_pytorchs_for_the_same_seed() {
    // tiny_p7_h5.pth is `torch.manual_seed(0)` then the notebook's two `nn.Linear` layers.
    let torch = io::load_weights(fixture("tiny_p7_h5.pth")).unwrap();
    let ours = MlpConfig::new().with_p(7).with_d_hidden(5).init_weights(0);
    assert_eq!(ours, torch);
    // PyTorch keeps a seed's low 32 bits; another seed draws other weights.
    let config = MlpConfig::new().with_p(7).with_d_hidden(5);
    assert_eq!(config.init_weights(1 << 32), torch);
    assert_ne!(config.init_weights(1), torch);
}

#[test]
fn pth_to_ours_to_safetensors_and_record_keeps_every_bit() {
    let dir = tempfile::tempdir().unwrap();
    let from_pth = io::load_weights(fixture("seed1_p59_h64.pth")).unwrap();
    let st = dir.path().join("model.safetensors");
    safetensors::write_weights(&st, &from_pth).unwrap();
    assert_eq!(io::load_weights(&st).unwrap(), from_pth);
    // Through a Burn record too, named so that the extension says nothing.
    let mpk = dir.path().join("model.bin");
    let model = grokking::Mlp::<Cpu>::from_weights(&from_pth, &Default::default());
    record::save_model(&model, &mpk).unwrap();
    assert_eq!(io::load_weights(&mpk).unwrap(), from_pth);
    // A .pth renamed to .safetensors is still read as PyTorch.
    let renamed = dir.path().join("really_a_pth.safetensors");
    std::fs::copy(fixture("tiny_p7_h5.pth"), &renamed).unwrap();
    assert_eq!(
        io::load_weights(&renamed).unwrap(),
        io::load_weights(fixture("tiny_p7_h5.pth")).unwrap()
    );
}

#[test]
fn formats_are_recognised_by_content() {
    let read = |name: &str| std::fs::read(fixture(name)).unwrap();
    assert_eq!(
        WeightFormat::sniff(&read("tiny_p7_h5.pth")),
        Some(WeightFormat::Pytorch)
    );
    assert_eq!(
        WeightFormat::sniff(&read("tiny_p7_h5.legacy.pth")),
        Some(WeightFormat::Pytorch)
    );
    assert_eq!(
        WeightFormat::sniff(&read("seed1337_p113_h100.safetensors")),
        Some(WeightFormat::Safetensors)
    );
    assert_eq!(WeightFormat::sniff(b"{\"p\": 7}"), None);
    assert_eq!(WeightFormat::sniff(b""), None);
}

/// The error `load_weights` gives for `path`, which must be a format or I/O error whose message
/// contains `needle`.
fn load_error(path: &std::path::Path, needle: &str) -> Error {
    let err = io::load_weights(path).expect_err("a bad file must not load");
    assert!(
        matches!(err, Error::Format { .. } | Error::Io { .. }),
        "{path:?}: {err:?}"
    );
    assert!(err.to_string().contains(needle), "{path:?}: {err}");
    err
}

#[test]
fn every_kind_of_bad_weight_file_is_an_error_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    load_error(&write("empty.pth", b""), "empty");
    load_error(&write("random.pth", &[0x13u8; 1000]), "unrecognised");
    load_error(&write("notes.pth", b"{\"p\": 113}\n"), "unrecognised");
    load_error(dir.path(), "directory");
    load_error(&dir.path().join("missing.pth"), "missing.pth");
    load_error(&fixture("bad_bias.pth"), "bias");
    load_error(&fixture("bad_odd.pth"), "even");
    // Found by the fuzzer: Burn's record loader panics on this parameter id.
    load_error(&fixture("fuzz_bad_record.bin"), "Burn record");
    // Found by the fuzzer: Burn loads a record whose data are shorter than its shape, then panics.
    load_error(&fixture("fuzz_short_record.bin"), "Burn record");
    for name in [
        "seed1337_p113_h100.pth",
        "tiny_p7_h5.legacy.pth",
        "seed1337_p113_h100.safetensors",
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in [bytes.len() / 2, bytes.len() - 1, 40] {
            let path = write(&format!("cut{cut}_{name}"), &bytes[..cut]);
            let err = io::load_weights(&path).expect_err("a truncated file must not load");
            assert!(
                matches!(err, Error::Format { .. }),
                "{name} cut at {cut}: {err:?}"
            );
        }
    }
    // Headers that declare more than the file holds are refused before the data is allocated:
    // a [100000, 100000] tensor over 4 stored bytes, a zip entry of 4 GB.
    load_error(
        &fixture("bad_huge_shape.pth"),
        "declares shape [100000, 100000]",
    );
    load_error(&fixture("bad_zip_size.pth"), "declares 4294967280 bytes");
    // Not a regular file: a device that never ends.
    #[cfg(unix)]
    load_error(std::path::Path::new("/dev/zero"), "not a regular file");
    // A diverged model: NaN weights are refused, not analysed into nonsense.
    let mut weights = io::load_weights(fixture("tiny_p7_h5.pth")).unwrap();
    let (mut a, b, out) = (weights.input_a(0), weights.input_b(0), weights.output(0));
    a[3] = f64::NAN;
    weights.set_neuron(0, &a, &b, &out);
    let nan = dir.path().join("nan.safetensors");
    safetensors::write_weights(&nan, &weights).unwrap();
    load_error(&nan, "NaN or infinite");
    // A state dict whose key names another layer.
    let mut st = std::fs::read(fixture("seed1337_p113_h100.safetensors")).unwrap();
    let at = st.windows(10).position(|w| w == b"fc2.weight").unwrap();
    st[at..at + 3].copy_from_slice(b"fc9");
    load_error(&write("renamed_key.safetensors", &st), "fc2.weight");
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.pth");
    std::fs::copy(fixture("tiny_p7_h5.pth"), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_ok() {
        return; // running as root: permissions do not stop reads.
    }
    assert!(matches!(
        io::load_weights(&path).unwrap_err(),
        Error::Io { .. }
    ));
}

fn small_config(engine: Engine) -> TrainingConfig {
    TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(23).with_d_hidden(48))
        .with_batch_size(32)
        .with_epochs(6)
        .with_engine(engine)
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one_on_both_engines() {
    let device = Default::default();
    for engine in [Engine::Fused, Engine::Generic] {
        let config = small_config(engine);
        let mut whole = Trainer::<CpuAutodiff>::new(&config, &device).unwrap();
        for _ in 0..config.epochs {
            whole.run_epoch();
        }
        let mut first = Trainer::<CpuAutodiff>::new(&config, &device).unwrap();
        for _ in 0..2 {
            first.run_epoch();
        }
        // Through the file format, as a killed run would be resumed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(checkpoint::FILE_NAME);
        checkpoint::save_state(&path, &first.state()).unwrap();
        drop(first);
        let state = checkpoint::load_state(&path).unwrap();
        assert_eq!(state.epoch(), 2);
        let mut resumed = Trainer::<CpuAutodiff>::from_state(state, &device).unwrap();
        assert_eq!(resumed.engine(), engine);
        while resumed.history().epochs.len() < config.epochs {
            resumed.run_epoch();
        }
        assert_eq!(
            common::without_time(resumed.history()),
            common::without_time(whole.history()),
            "{engine:?}"
        );
        assert_eq!(
            resumed.model().weights(),
            whole.model().weights(),
            "{engine:?}"
        );
        assert_eq!(
            resumed.state().optimizer,
            whole.state().optimizer,
            "{engine:?}"
        );
    }
}

#[test]
fn a_checkpoint_round_trips_exactly_and_is_also_a_weight_file() {
    let device = Default::default();
    let mut trainer = Trainer::<CpuAutodiff>::new(&small_config(Engine::Fused), &device).unwrap();
    let fresh = trainer.state();
    assert!(fresh.optimizer.is_none());
    trainer.run_epoch();
    let state = trainer.state();
    let bytes = checkpoint::state_to_bytes(&state);
    let back = checkpoint::state_from_bytes(&bytes, "mem".as_ref()).unwrap();
    assert_eq!(back, state);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(io::load_weights(&path).unwrap(), state.weights);
}

#[test]
fn bad_checkpoints_are_errors() {
    let device = Default::default();
    let mut trainer = Trainer::<CpuAutodiff>::new(&small_config(Engine::Fused), &device).unwrap();
    trainer.run_epoch();
    let bytes = checkpoint::state_to_bytes(&trainer.state());
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    for (name, data) in [
        ("empty", &b""[..]),
        ("half", &bytes[..bytes.len() / 2]),
        ("short", &bytes[..bytes.len() - 4]),
        ("random", &[7u8; 300][..]),
    ] {
        let err = checkpoint::load_state(write(name, data)).expect_err(name);
        assert!(matches!(err, Error::Format { .. }), "{name}: {err:?}");
    }
    // A model file is not a training checkpoint.
    let err = checkpoint::load_state(fixture("seed1337_p113_h100.safetensors")).unwrap_err();
    assert!(err.to_string().contains("format"), "{err}");
    assert!(matches!(
        checkpoint::load_state(dir.path()).unwrap_err(),
        Error::Format { .. }
    ));
    assert!(matches!(
        checkpoint::load_state(dir.path().join("none")).unwrap_err(),
        Error::Io { .. }
    ));
}

/// A checkpoint written before operations existed (its config has no `operation`) still loads,
/// as addition.
#[test]
fn a_checkpoint_from_before_operations_loads_as_addition() {
    let trainer =
        Trainer::<CpuAutodiff>::new(&small_config(Engine::Fused), &Default::default()).unwrap();
    let mut bytes = checkpoint::state_to_bytes(&trainer.state());
    // The config is a JSON string in the header: blank its operation out (same length).
    let field = br#"\"operation\":\"add\","#;
    let at = bytes
        .windows(field.len())
        .position(|w| w == field)
        .expect("the config names its operation");
    bytes[at..at + field.len()].fill(b' ');
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let state = checkpoint::load_state(&path).unwrap();
    assert_eq!(state.config.operation, grokking::Operation::Add);
    assert_eq!(state.config, trainer.state().config);
}

#[test]
fn weights_that_do_not_fit_the_config_are_refused_on_resume() {
    let device = Default::default();
    let trainer = Trainer::<CpuAutodiff>::new(&small_config(Engine::Fused), &device).unwrap();
    let mut state = trainer.state();
    state.weights = MlpWeights::new(23, 47, vec![0.0; 47 * 46], vec![0.0; 23 * 47]).unwrap();
    assert!(matches!(
        Trainer::<CpuAutodiff>::from_state(state, &device),
        Err(Error::Shape(_))
    ));
}

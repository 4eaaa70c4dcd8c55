//! Files: safetensors in and out, Burn records, atomic writes, and errors for bad files.
#![cfg(feature = "flex")]

use crate::common;

use common::{fixture, Cpu};
use grokking::{io, Error, MlpConfig, MlpWeights};
use safetensors::{tensor::TensorView, Dtype};

fn encode(tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let buffers: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, shape)| vec![0u8; 4 * shape.iter().product::<usize>()])
        .collect();
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .zip(&buffers)
        .map(|((name, shape), data)| {
            (
                *name,
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn parse(bytes: &[u8]) -> Result<MlpWeights, Error> {
    io::safetensors::weights_from_bytes(bytes, std::path::Path::new("test.safetensors"))
}

#[test]
fn safetensors_round_trip_is_bit_identical() {
    let original =
        io::safetensors::read_weights(fixture("seed1337_p113_h100.safetensors")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.safetensors");
    io::safetensors::write_weights(&path, &original).unwrap();
    let back = io::safetensors::read_weights(&path).unwrap();
    assert_eq!(original, back);
    // And the bytes are a fixed point.
    assert_eq!(
        std::fs::read(&path).unwrap(),
        io::safetensors::weights_to_bytes(&back)
    );
}

#[test]
fn safetensors_errors_name_the_problem() {
    let missing = parse(&encode(&[("fc1.weight", vec![4, 10])])).unwrap_err();
    assert!(missing.to_string().contains("fc2.weight"), "{missing}");
    let bias = parse(&encode(&[
        ("fc1.weight", vec![4, 10]),
        ("fc1.bias", vec![4]),
        ("fc2.weight", vec![5, 4]),
    ]))
    .unwrap_err();
    assert!(bias.to_string().contains("biases"), "{bias}");
    let odd = parse(&encode(&[
        ("fc1.weight", vec![4, 9]),
        ("fc2.weight", vec![5, 4]),
    ]))
    .unwrap_err();
    assert!(odd.to_string().contains("even"), "{odd}");
    let extra = parse(&encode(&[
        ("fc1.weight", vec![4, 10]),
        ("fc2.weight", vec![5, 4]),
        ("fc3.weight", vec![5, 5]),
    ]))
    .unwrap_err();
    assert!(extra.to_string().contains("fc3.weight"), "{extra}");
    let ok = parse(&encode(&[
        ("fc1.weight", vec![4, 10]),
        ("fc2.weight", vec![5, 4]),
    ]))
    .unwrap();
    assert_eq!((ok.p(), ok.d_hidden()), (5, 4));
}

#[test]
fn garbage_and_empty_files_are_format_errors() {
    for bytes in [&b""[..], &b"not a tensor file at all"[..], &[0xff; 64][..]] {
        assert!(matches!(parse(bytes), Err(Error::Format { .. })));
    }
    let good = std::fs::read(fixture("seed1337_p113_h100.safetensors")).unwrap();
    assert!(matches!(
        parse(&good[..good.len() / 2]),
        Err(Error::Format { .. })
    ));
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = io::safetensors::read_weights("/nonexistent/model.safetensors").unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/model.safetensors"));
}

#[test]
fn burn_record_round_trips() {
    let device = Default::default();
    let config = MlpConfig::new().with_p(9).with_d_hidden(6);
    let model = config.init::<Cpu>(4, &device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.mpk");
    io::record::save_model(&model, &path).unwrap();
    let loaded = io::record::load_model::<Cpu>(&path, &config, &device).unwrap();
    assert_eq!(model.weights(), loaded.weights());
    // Only the record itself is left in the folder: no temporary files.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("model.mpk")]);
}

#[test]
fn burn_record_of_another_size_is_refused() {
    let device = Default::default();
    let model = MlpConfig::new()
        .with_p(9)
        .with_d_hidden(6)
        .init::<Cpu>(4, &device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.mpk");
    io::record::save_model(&model, &path).unwrap();
    let other = MlpConfig::new().with_p(9).with_d_hidden(7);
    assert!(io::record::load_model::<Cpu>(&path, &other, &device).is_err());
    let missing = io::record::load_model::<Cpu>(dir.path().join("none.mpk"), &other, &device);
    assert!(matches!(missing, Err(Error::Format { .. })));
}

#[test]
fn atomic_write_replaces_whole_files_and_leaves_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    io::write_atomic(&path, b"first").unwrap();
    io::write_atomic(&path, b"second").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let err = io::write_atomic(dir.path().join("no/such/dir/file"), b"x").unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
}

#[test]
fn half_precision_safetensors_load_exactly() {
    let (p, h) = (5, 3);
    let dir = tempfile::tempdir().unwrap();
    // Values a 16-bit float holds exactly, so both encodings must give them back bit for bit.
    let fc1: Vec<f32> = (0..h * 2 * p).map(|i| i as f32 / 8.0 - 1.5).collect();
    let fc2: Vec<f32> = (0..p * h).map(|i| 0.25 - i as f32 / 16.0).collect();
    for dtype in [Dtype::F16, Dtype::BF16] {
        let encode16 = |values: &[f32]| -> Vec<u8> {
            values
                .iter()
                .flat_map(|&v| match dtype {
                    Dtype::F16 => half::f16::from_f32(v).to_le_bytes(),
                    _ => half::bf16::from_f32(v).to_le_bytes(),
                })
                .collect()
        };
        let (a, b) = (encode16(&fc1), encode16(&fc2));
        let views = [
            (
                "fc1.weight",
                TensorView::new(dtype, vec![h, 2 * p], &a).unwrap(),
            ),
            (
                "fc2.weight",
                TensorView::new(dtype, vec![p, h], &b).unwrap(),
            ),
        ];
        let path = dir.path().join(format!("{dtype:?}.safetensors"));
        std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
        let weights = io::load_weights(&path).unwrap();
        assert_eq!(
            weights,
            MlpWeights::new(p, h, fc1.clone(), fc2.clone()).unwrap(),
            "{dtype:?}"
        );
    }
}

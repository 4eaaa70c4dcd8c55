//! The run as a library object (`grokking::run`), in-process: the folder's files and rules
//! (refusal, `force`, memory before anything is written), kill and resume, and the analysis of
//! saved models.

use std::path::{Path, PathBuf};

use grokking::{
    burn::{
        backend::{Autodiff, NdArray},
        config::Config,
    },
    io::snapshots::Snapshots,
    run::{analyze_saved, AnalyzeOptions, ReportOutcome, Resume, Run, RunOptions, SavedModel},
    Error, MlpConfig, Operation, TrainingConfig,
};
use serde_json::Value;

use crate::common::{self, CpuAutodiff};

fn config(p: usize, hidden: usize, epochs: usize) -> TrainingConfig {
    TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(p).with_d_hidden(hidden))
        .with_epochs(epochs)
}

fn json(path: impl AsRef<Path>) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every file under `dir` (relative path) with its bytes, sorted: what "untouched" compares.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// An observer that lets every epoch run.
fn every_epoch(_: &grokking::EpochMetrics) -> grokking::Control {
    grokking::Control::Continue
}

/// Starts a run on flex with the given options.
fn start(config: &TrainingConfig, dir: &Path, options: &RunOptions) -> grokking::Result<Run> {
    Run::start::<CpuAutodiff>(config, dir, options, &Default::default())
}

#[test]
fn a_run_writes_every_file_and_a_run_in_its_folder_is_refused_or_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("run");
    let first = config(13, 24, 3).with_batch_size(32).with_seed(3);
    let run = Run::start::<Autodiff<NdArray>>(
        &first,
        &folder,
        &RunOptions::default(),
        &Default::default(),
    )
    .unwrap();
    // config.json comes first, recording the engine that runs.
    let written = TrainingConfig::load(folder.join("config.json")).unwrap();
    assert_eq!(written, first.clone().with_engine(grokking::Engine::Fused));
    assert!(!folder.join("metrics.csv").exists());
    let finished = run
        .to_end(|_: &grokking::EpochMetrics| grokking::Control::Continue)
        .unwrap();
    assert!(matches!(finished.report, ReportOutcome::Written { .. }));

    let csv = std::fs::read_to_string(folder.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], grokking::run::METRICS_HEADER);
    assert_eq!(lines.len(), 4);
    assert!(lines[3].starts_with("2,"));
    let summary = json(folder.join("summary.json"));
    for key in [
        "grok_epoch",
        "final",
        "train_seconds",
        "full_accuracy",
        "replaced_all_accuracy",
        "backend",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}: {summary}");
    }
    assert_eq!(summary["backend"], "ndarray");
    assert_eq!(
        summary,
        serde_json::to_value(&finished.summary).unwrap(),
        "the summary returned is the one written"
    );
    assert!(summary["final"]["val_acc"].as_f64().unwrap() <= 1.0);
    let neurons = json(folder.join("neurons.json"));
    assert_eq!(
        (neurons["p"].as_u64(), neurons["hidden"].as_u64()),
        (Some(13), Some(24))
    );
    assert_eq!(neurons["neurons"].as_array().unwrap().len(), 24);
    for part in ["in_a", "in_b", "out"] {
        for field in ["freq", "phase", "scale", "offset", "r2"] {
            assert!(
                neurons["neurons"][0][part].get(field).is_some(),
                "{part}.{field}"
            );
        }
    }
    for file in [
        "model.mpk",
        "model.safetensors",
        "report.html",
        "analysis.json",
    ] {
        assert!(folder.join(file).exists(), "{file}");
    }
    assert_eq!(
        grokking::io::load_weights(folder.join("model.safetensors")).unwrap(),
        finished.weights
    );
    let leftovers: Vec<_> = contents(&folder)
        .into_iter()
        .filter(|(name, _)| name.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A finished run is refused without `force`, and its folder stays as it was.
    let before = contents(&folder);
    let err = start(&config(13, 24, 1), &folder, &RunOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { field: "out", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(contents(&folder), before);

    // With `force`, the old run's files go first: no report of the old model is left beside a
    // new run without one.
    let options = RunOptions::default().with_report(false).with_force(true);
    let run = start(&config(13, 24, 1), &folder, &options).unwrap();
    assert!(!folder.join("report.html").exists() && !folder.join("summary.json").exists());
    let figures = std::fs::read_dir(folder.join("figures")).map_or(0, |d| d.count());
    assert_eq!(figures, 0, "the old report's figures are left");
    run.to_end(every_epoch).unwrap();
    let csv = std::fs::read_to_string(folder.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2);

    // Analysing the run's model into its own folder (force) replaces only what it writes.
    let model = SavedModel::Weights(folder.join("model.safetensors"));
    let refused = analyze_saved(&model, &folder, &AnalyzeOptions::default()).unwrap_err();
    assert!(refused.to_string().contains("--force"), "{refused}");
    let forced = AnalyzeOptions {
        force: true,
        ..Default::default()
    };
    analyze_saved(&model, &folder, &forced).unwrap();
    for kept in [
        "model.safetensors",
        "model.mpk",
        "metrics.csv",
        "config.json",
    ] {
        assert!(
            folder.join(kept).exists(),
            "analysis with force removed {kept}"
        );
    }
    assert_eq!(json(folder.join("summary.json"))["backend"], "host");
}

#[test]
fn a_new_run_in_a_folder_without_a_run_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    std::fs::create_dir_all(out.join("figures")).unwrap();
    for file in ["figures/mine.svg", "report.html", "notes.txt"] {
        std::fs::write(out.join(file), b"a user's file").unwrap();
    }
    let options = RunOptions::default().with_report(false);
    start(&config(7, 4, 1), &out, &options)
        .unwrap()
        .to_end(every_epoch)
        .unwrap();
    for file in ["figures/mine.svg", "report.html", "notes.txt"] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            b"a user's file",
            "{file}"
        );
    }
}

#[test]
fn bad_configurations_and_folders_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let none = RunOptions::default();
    let refused = |config: &TrainingConfig, options: &RunOptions| {
        let err = start(config, &out, options).unwrap_err();
        assert!(!out.exists(), "{err} left a folder");
        let line = err.to_string();
        assert_eq!(line.lines().count(), 1, "{line}");
        line
    };
    assert!(refused(&config(1, 4, 1), &none).contains("at least 2"));
    assert!(refused(&config(7, 0, 1), &none).contains("hidden"));
    assert!(refused(&config(7, 4, 0), &none).contains("epochs"));
    assert!(refused(&config(7, 4, 1).with_lr(f64::NAN), &none).contains("lr"));
    if grokking::memory::available_bytes().is_some() {
        // 113 · 10⁹ · 3 weights, each with moments and copies: terabytes.
        let line = refused(&config(113, 1_000_000_000, 1), &none);
        assert!(line.contains("of memory, more than the"), "{line}");
        // The training fits, the report's p³ logits (8 TB) do not.
        let line = refused(&config(10_000, 1, 1), &none);
        assert!(line.contains("the report"), "{line}");
        // Nor do snapshots of a long run of a wide network.
        let wide = config(113, 100_000, 1_000_000);
        let line = refused(
            &wide,
            &none.clone().with_report(false).with_snapshot_every(1),
        );
        assert!(line.contains("snapshots"), "{line}");
    }
    // A folder that is a file, or under one.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    for out in [file.clone(), file.join("under-a-file")] {
        let err = start(&config(7, 4, 1), &out, &none).unwrap_err();
        assert!(err.to_string().contains("a-file"), "{err}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// `start` with the options of a resumable run: a checkpoint every epoch, snapshots every 7.
fn resumable() -> RunOptions {
    RunOptions::default()
        .with_report(false)
        .with_checkpoint_every(1)
        .with_snapshot_every(7)
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(23, 32, 40).with_batch_size(64).with_seed(5);
    let whole = dir.path().join("whole");
    start(&config, &whole, &resumable())
        .unwrap()
        .to_end(every_epoch)
        .unwrap();

    // The same run killed after 24 epochs (dropped: nothing is finished), as if between its
    // snapshot file and its checkpoint: the checkpoint is the one after 20 epochs, the
    // snapshots include epoch 20, past it.
    let killed = dir.path().join("killed");
    let checkpoint = killed.join("checkpoint.safetensors");
    let mut run = start(&config, &killed, &resumable()).unwrap();
    let mut at_20 = Vec::new();
    while let Some(m) = run.epoch().unwrap() {
        if m.epoch == 19 {
            at_20 = std::fs::read(&checkpoint).unwrap();
        }
        if m.epoch == 23 {
            break;
        }
    }
    drop(run);
    std::fs::write(&checkpoint, &at_20).unwrap();
    let kept = Snapshots::load(killed.join("snapshots.safetensors")).unwrap();
    assert_eq!(kept.epochs(), &[6, 13, 20]);
    assert!(!killed.join("summary.json").exists());

    // Resumed on one thread: the same bits, and config.json says what the run went on with.
    let resume = Resume {
        threads: Some(1),
        ..Default::default()
    };
    let run =
        Run::resume::<CpuAutodiff>(&killed, &resume, &resumable(), &Default::default()).unwrap();
    assert_eq!(run.resumed_after(), Some(20));
    assert_eq!(run.epochs_done(), 20);
    assert_eq!(
        TrainingConfig::load(killed.join("config.json"))
            .unwrap()
            .threads,
        Some(1)
    );
    run.to_end(every_epoch).unwrap();
    // Same history (all but the seconds column) and bit-identical weights.
    let metrics = |run: &Path| -> Vec<String> {
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|line| {
                let mut fields: Vec<&str> = line.split(',').collect();
                fields.remove(5); // seconds
                fields.join(",")
            })
            .collect()
    };
    assert_eq!(metrics(&killed).len(), 41);
    assert_eq!(metrics(&killed), metrics(&whole));
    for file in ["model.safetensors", "neurons.json", "progress.json"] {
        assert!(
            std::fs::read(killed.join(file)).unwrap() == std::fs::read(whole.join(file)).unwrap(),
            "{file} differs"
        );
    }
    // The snapshots up to the checkpoint are kept, later ones retaken: the same epochs and
    // weights (the recorded config differs in the threads the run went on with).
    let snapshots = |run: &Path| Snapshots::load(run.join("snapshots.safetensors")).unwrap();
    let (resumed, uninterrupted) = (snapshots(&killed), snapshots(&whole));
    assert_eq!(resumed.epochs(), &[6, 13, 20, 27, 34, 39]);
    assert_eq!(resumed.epochs(), uninterrupted.epochs());
    assert!((0..6).all(|i| resumed.weights(i) == uninterrupted.weights(i)));

    // A finished run is not resumed, and is not touched.
    let before = contents(&killed);
    let err = Run::resume::<CpuAutodiff>(&killed, &resume, &resumable(), &Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("finished"), "{err}");
    assert_eq!(contents(&killed), before);
}

/// A run that keeps snapshots is not resumed without them (they would stop silently), nor is a
/// folder without a usable checkpoint.
#[test]
fn a_run_is_resumed_only_from_a_checkpoint_and_with_its_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let options = RunOptions::default()
        .with_report(false)
        .with_checkpoint_every(1)
        .with_snapshot_every(1);
    start(&config(11, 8, 3), &run, &options)
        .unwrap()
        .to_end(every_epoch)
        .unwrap();
    // As if killed after its last checkpoint.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let resume = |dir: &Path, options: &RunOptions| {
        Run::resume::<CpuAutodiff>(dir, &Resume::default(), options, &Default::default())
    };
    let err = resume(&run, &options.clone().with_snapshot_every(0)).unwrap_err();
    assert!(err.to_string().contains("--snapshot-every"), "{err}");
    assert_eq!(err.to_string().lines().count(), 1);
    // Resumed with them, there is nothing left to train: the run just finishes.
    let finished = resume(&run, &options).unwrap().to_end(every_epoch).unwrap();
    assert_eq!(finished.history.epochs.len(), 3);

    // Nothing to resume: a missing folder, and a folder whose checkpoint is garbage.
    let missing = dir.path().join("missing");
    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("checkpoint.safetensors"), b"not a checkpoint").unwrap();
    for folder in [&missing, &garbage] {
        let err = resume(folder, &options).unwrap_err();
        assert!(err.to_string().contains("checkpoint"), "{err}");
    }
    assert!(!missing.exists());
    assert_eq!(std::fs::read_dir(&garbage).unwrap().count(), 1);
}

/// Snapshots are kept along the run and after its last epoch, the saved model is the last
/// snapshot bit for bit, and `analyze_saved` computes the same progress measures from the file.
#[test]
fn a_run_keeps_snapshots_and_their_analysis_measures_them() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("run");
    let config = config(13, 16, 25).with_operation(Operation::Sub);
    let options = RunOptions::default()
        .with_report(false)
        .with_snapshot_every(10);
    let finished = start(&config, &folder, &options).unwrap().finish_after(25);
    let snapshots = Snapshots::load(folder.join("snapshots.safetensors")).unwrap();
    assert_eq!(snapshots.epochs(), &[9, 19, 24]);
    assert_eq!(snapshots.config().operation, Operation::Sub);
    assert_eq!(snapshots.weights(2), finished.weights);
    let from_run = json(folder.join("progress.json"));
    assert_eq!(
        from_run,
        serde_json::to_value(finished.progress.unwrap()).unwrap()
    );

    let file = SavedModel::Snapshots(folder.join("snapshots.safetensors"));
    let analysed = dir.path().join("analysed");
    let with_report = AnalyzeOptions {
        report: true,
        ..Default::default()
    };
    let found = analyze_saved(&file, &analysed, &with_report).unwrap();
    assert_eq!(json(analysed.join("progress.json")), from_run);
    assert_eq!(from_run["basis"], "identity, b negated");
    assert_eq!(found.summary.operation, Operation::Sub);
    assert!(analysed.join("figures/dynamics.svg").exists());
    assert!(analysed.join("figures/ipr.svg").exists());
    let page = std::fs::read_to_string(analysed.join("report.html")).unwrap();
    assert!(page.contains("Training dynamics"));
    assert!(page.contains("inverse participation ratio"));
    assert!(page.contains("(a - b) mod p"));
    // A mismatched operation is refused, before anything is written.
    let add = AnalyzeOptions {
        operation: Some(Operation::Add),
        ..Default::default()
    };
    let err = analyze_saved(&file, dir.path().join("refused"), &add).unwrap_err();
    assert!(err.to_string().contains("trained on sub"), "{err}");
    assert!(!dir.path().join("refused").exists());
}

/// Drives a started run through `epochs` epochs and finishes it.
trait FinishAfter {
    fn finish_after(self, epochs: usize) -> grokking::run::Finished;
}

impl FinishAfter for Run {
    fn finish_after(mut self, epochs: usize) -> grokking::run::Finished {
        for _ in 0..epochs {
            self.epoch().unwrap().expect("an epoch left");
        }
        assert!(self.epoch().unwrap().is_none(), "epochs left over");
        self.finish().unwrap()
    }
}

#[test]
fn analysing_a_notebook_state_dict_agrees_with_the_reference_script() {
    let dir = tempfile::tempdir().unwrap();
    let file = SavedModel::Weights(common::fixture("seed2_p97_h128.pth"));
    let found = analyze_saved(&file, dir.path().join("out"), &AnalyzeOptions::default()).unwrap();
    assert!(found.assumed_addition);
    let expected = common::expected("seed2_p97_h128");
    let summary = json(dir.path().join("out/summary.json"));
    assert_eq!(
        (summary["p"].as_u64(), summary["hidden"].as_u64()),
        (Some(97), Some(128))
    );
    for key in ["full_accuracy", "replaced_all_accuracy"] {
        let (got, want) = (
            summary[key].as_f64().unwrap(),
            expected[key].as_f64().unwrap(),
        );
        assert!((got - want).abs() < 1e-12, "{key}: {got} vs {want}");
    }
    let neurons = json(dir.path().join("out/neurons.json"));
    let fits: Vec<grokking::analysis::fourier::NeuronFit> =
        serde_json::from_value(neurons["neurons"].clone()).unwrap();
    common::assert_fits_match(&fits, &expected);
}

#[test]
fn bad_model_files_are_one_error_line_and_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pth");
    std::fs::write(&garbage, [0xffu8; 64]).unwrap();
    let truncated = dir.path().join("truncated.pth");
    let pth = std::fs::read(common::fixture("seed1_p59_h64.pth")).unwrap();
    std::fs::write(&truncated, &pth[..pth.len() / 3]).unwrap();
    let out = dir.path().join("out");
    for bad in [
        garbage,
        truncated,
        dir.path().to_path_buf(),
        dir.path().join("missing.pth"),
        common::fixture("bad_bias.pth"),
        // Found by the fuzzer: a Burn record whose parameter id makes Burn panic.
        common::fixture("fuzz_bad_record.bin"),
        // Found by the fuzzer: a Burn record whose data are shorter than its shape.
        common::fixture("fuzz_short_record.bin"),
        // Headers declaring more than the file holds (40 GB of tensor, a 4 GB zip entry).
        common::fixture("bad_huge_shape.pth"),
        common::fixture("bad_zip_size.pth"),
        // Not a regular file: reading it would never end.
        PathBuf::from("/dev/zero"),
    ] {
        for model in [
            SavedModel::Weights(bad.clone()),
            SavedModel::Snapshots(bad.clone()),
        ] {
            let err = analyze_saved(&model, &out, &AnalyzeOptions::default()).unwrap_err();
            assert_eq!(err.to_string().lines().count(), 1, "{bad:?}: {err}");
            assert!(!out.exists(), "{bad:?} left an output folder");
        }
    }
    // Too few neurons for the report's t-SNE, refused before the folder is made.
    let small = dir.path().join("small.safetensors");
    let weights = MlpConfig::new().with_p(7).with_d_hidden(3).init_weights(1);
    grokking::io::safetensors::write_weights(&small, &weights).unwrap();
    let report = AnalyzeOptions {
        report: true,
        ..Default::default()
    };
    let err = analyze_saved(&SavedModel::Weights(small), &out, &report).unwrap_err();
    assert!(
        err.to_string().contains("at least 4 hidden neurons"),
        "{err}"
    );
    assert!(!out.exists());
}

//! The `grok` example as a user runs it: bad arguments fail with one line, a small run writes a
//! complete run folder.
#![cfg(feature = "flex")]

use crate::common;

use std::process::Command;

use serde_json::Value;

fn grok() -> Command {
    common::example("grok")
}

/// Asserts that a program exited successfully, showing its stderr if not.
fn assert_succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `command` with `args` and a fresh `--out`; asserts one error line holding `needle`, no
/// panic, and no folder written.
fn assert_fails_with_one_line(mut command: Command, args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = command
        .args(args)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("run").exists(), "{args:?} wrote a folder");
}

fn fails_with_one_line(args: &[&str], needle: &str) {
    assert_fails_with_one_line(grok(), args, needle);
}

/// Arguments `grok` refuses, and a word its one error line must hold: mistakes, and hostile
/// numbers (NaN, infinities, negatives, zero, values past every limit, wrong types).
const BAD_ARGUMENTS: &[(&[&str], &str)] = &[
    (&["--p", "1"], "at least 2"),
    (&["--train-fraction", "1.5"], "strictly between 0 and 1"),
    (&["--train-fraction", "0"], "strictly between 0 and 1"),
    (&["--hidden", "0"], "hidden"),
    (&["--batch-size", "0"], "batch-size"),
    (&["--lr", "-0.1"], "lr"),
    (&["--epochs", "abc"], "invalid value"),
    (&["--backend", "tpu"], "invalid value"),
    (&["--threads", "0"], "invalid value"),
    (&["--lr", "nan"], "lr"),
    (&["--lr", "inf"], "lr"),
    (&["--weight-decay", "-1"], "weight-decay"),
    (&["--weight-decay", "NaN"], "weight-decay"),
    (&["--train-fraction", "nan"], "strictly between 0 and 1"),
    (&["--train-fraction=-inf"], "strictly between 0 and 1"),
    (&["--seed", "1099511627776"], "below 2^32"),
    (&["--seed", "-1"], "unexpected argument"),
    (&["--p", "0"], "at least 2"),
    (&["--p", "46341"], "at most 46340"),
    (&["--p", "1e3"], "invalid value"),
    (&["--epochs", "0"], "epochs"),
    (&["--batch-size", "99999999999999999999"], "invalid value"),
    (&["--hidden", "2.5"], "invalid value"),
    (&["--operation", "div", "--p", "12"], "prime"),
    (&["--operation", "pow"], "not a built-in operation"),
];

#[test]
fn bad_arguments_fail_with_one_clear_line() {
    for (args, needle) in BAD_ARGUMENTS {
        fails_with_one_line(args, needle);
    }
}

#[test]
fn unusable_paths_fail_with_one_line_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    for out in [file.clone(), file.join("under-a-file")] {
        let result = grok()
            .args(["--epochs", "1", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(!result.status.success());
        let stderr = String::from_utf8(result.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("a-file"), "{stderr}");
    }
    // Nothing to resume: a missing folder, and a folder whose checkpoint is garbage.
    let missing = dir.path().join("missing");
    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("checkpoint.safetensors"), b"not a checkpoint").unwrap();
    for folder in [&missing, &garbage] {
        let result = grok().arg("--resume").arg(folder).output().unwrap();
        assert!(!result.status.success());
        let stderr = String::from_utf8(result.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("checkpoint"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!missing.exists());
    assert_eq!(std::fs::read_dir(&garbage).unwrap().count(), 1);
}

#[test]
fn a_configuration_larger_than_memory_is_refused_before_anything_is_written() {
    if grokking::memory::available_bytes().is_none() {
        return; // not Linux: nothing to check against
    }
    // 113 · 10⁹ · 3 weights, each with moments and copies: terabytes.
    fails_with_one_line(&["--hidden", "1000000000"], "of memory, more than the");
    // 1.6·10⁹ pairs.
    fails_with_one_line(&["--p", "40000"], "of memory, more than the");
    // The training fits, the report's p³ logits (8 TB) do not; --no-report trains it.
    fails_with_one_line(
        &["--p", "10000", "--hidden", "1", "--epochs", "1"],
        "the report",
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_backend_not_compiled_in_is_a_clear_error() {
    fails_with_one_line(&["--backend", "cuda"], "not compiled in");
}

#[test]
fn a_small_run_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = grok()
        .args([
            "--backend",
            "ndarray",
            "--p",
            "13",
            "--hidden",
            "24",
            "--epochs",
            "3",
        ])
        .args(["--batch-size", "32", "--seed", "3", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert_succeeded(&out);

    let config: Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["p"], 13);
    assert_eq!(config["epochs"], 3);

    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,train_loss,val_loss,train_acc,val_acc,seconds"
    );
    assert_eq!(lines.len(), 4);
    assert!(lines[3].starts_with("2,"));

    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
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
    assert!(summary["final"]["val_acc"].as_f64().unwrap() <= 1.0);

    let neurons: Value =
        serde_json::from_slice(&std::fs::read(run.join("neurons.json")).unwrap()).unwrap();
    assert_eq!(neurons["p"], 13);
    assert_eq!(neurons["hidden"], 24);
    let first = &neurons["neurons"][0];
    for part in ["in_a", "in_b", "out"] {
        for field in ["freq", "phase", "scale", "offset", "r2"] {
            assert!(first[part].get(field).is_some(), "{part}.{field}");
        }
    }
    assert_eq!(neurons["neurons"].as_array().unwrap().len(), 24);
    assert!(run.join("model.mpk").exists());
    assert!(run.join("model.safetensors").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A finished run is not overwritten without --force.
    let again = grok()
        .args(["--p", "13", "--epochs", "1", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    // With --force, the old run's files go first: no report of the old model is left beside a
    // new run without one.
    assert!(run.join("report.html").exists() && run.join("figures").is_dir());
    let forced = grok()
        .args([
            "--p",
            "13",
            "--hidden",
            "24",
            "--epochs",
            "1",
            "--no-report",
            "--force",
            "--out",
        ])
        .arg(&run)
        .output()
        .unwrap();
    assert_succeeded(&forced);
    assert!(!run.join("report.html").exists());
    let figures_left = std::fs::read_dir(run.join("figures")).map_or(0, |d| d.count());
    assert_eq!(figures_left, 0, "the old report's figures are left");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2);
    // Analysing the run's model into its own folder (--force) replaces only what analyze writes.
    let analysed = analyze()
        .arg("--checkpoint")
        .arg(run.join("model.safetensors"))
        .args(["--force", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert_succeeded(&analysed);
    for kept in [
        "model.safetensors",
        "model.mpk",
        "metrics.csv",
        "config.json",
    ] {
        assert!(run.join(kept).exists(), "analyze --force removed {kept}");
    }
}

fn analyze() -> Command {
    common::example("analyze")
}

#[test]
fn analyze_reports_a_notebook_state_dict_like_the_reference_script() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("analysis");
    let out = analyze()
        .arg("--checkpoint")
        .arg(common::fixture("seed2_p97_h128.pth"))
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_succeeded(&out);
    let expected = common::expected("seed2_p97_h128");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["p"], 97);
    assert_eq!(summary["hidden"], 128);
    for key in ["full_accuracy", "replaced_all_accuracy"] {
        let (got, want) = (
            summary[key].as_f64().unwrap(),
            expected[key].as_f64().unwrap(),
        );
        assert!((got - want).abs() < 1e-12, "{key}: {got} vs {want}");
    }
    let neurons: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("neurons.json")).unwrap()).unwrap();
    let fits: Vec<grokking::fourier::NeuronFit> =
        serde_json::from_value(neurons["neurons"].clone()).unwrap();
    common::assert_fits_match(&fits, &expected);
}

#[test]
fn analyze_fails_cleanly_on_bad_files_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pth");
    std::fs::write(&garbage, [0xffu8; 64]).unwrap();
    let truncated = dir.path().join("truncated.pth");
    let pth = std::fs::read(common::fixture("seed1_p59_h64.pth")).unwrap();
    std::fs::write(&truncated, &pth[..pth.len() / 3]).unwrap();
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
        std::path::PathBuf::from("/dev/zero"),
    ] {
        let out_dir = dir.path().join("out");
        let out = analyze()
            .arg("--checkpoint")
            .arg(&bad)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{bad:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out_dir.exists(), "{bad:?} left an output folder");
    }
}

/// `grok` arguments of a short run that checkpoints every epoch.
const RESUMABLE: [&str; 14] = [
    "--snapshot-every",
    "7",
    "--p",
    "61",
    "--hidden",
    "64",
    "--epochs",
    "400",
    "--seed",
    "5",
    "--checkpoint-every",
    "1",
    "--batch-size",
    "64",
];

#[cfg(unix)]
#[test]
fn a_run_killed_with_sigkill_resumes_to_the_uninterrupted_result() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let out = grok()
        .args(RESUMABLE)
        .arg("--no-report")
        .arg("--out")
        .arg(&whole)
        .output()
        .unwrap();
    assert_succeeded(&out);

    // The same run, killed (SIGKILL: no chance to clean up) once a few checkpoints exist.
    let killed = dir.path().join("killed");
    let mut child = grok()
        .args(RESUMABLE)
        .arg("--no-report")
        .arg("--out")
        .arg(&killed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = killed.join("checkpoint.safetensors");
    let start = Instant::now();
    while !checkpoint.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !killed.join("summary.json").exists(),
        "the run finished before it could be killed; lengthen it"
    );

    // Resumed on one thread: the same bits, and config.json says what the run went on with.
    let out = grok()
        .arg("--resume")
        .arg(&killed)
        .args(["--no-report", "--threads", "1", "--snapshot-every", "7"])
        .output()
        .unwrap();
    assert_succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("resuming"), "{stdout}");
    let config: Value =
        serde_json::from_slice(&std::fs::read(killed.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["threads"], 1);

    // Same history (all but the seconds column) and bit-identical weights.
    let metrics = |run: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|line| line.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(metrics(&killed).len(), 401);
    assert_eq!(metrics(&killed), metrics(&whole));
    for file in ["model.safetensors", "neurons.json", "progress.json"] {
        assert!(
            std::fs::read(killed.join(file)).unwrap() == std::fs::read(whole.join(file)).unwrap(),
            "{file} differs"
        );
    }
    // The snapshots taken before the kill are kept, later ones retaken: the same epochs and
    // weights (the recorded config differs in the threads the run went on with).
    let snapshots = |run: &std::path::Path| {
        grokking::io::snapshots::Snapshots::load(run.join("snapshots.safetensors")).unwrap()
    };
    let (resumed, uninterrupted) = (snapshots(&killed), snapshots(&whole));
    assert_eq!(resumed.epochs(), uninterrupted.epochs());
    assert_eq!(resumed.len(), 58);
    assert!((0..58).all(|i| resumed.weights(i) == uninterrupted.weights(i)));

    // A finished run cannot be resumed, and is not touched.
    let again = grok().arg("--resume").arg(&killed).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("finished"));
}

/// A run that keeps snapshots is not resumed without `--snapshot-every`: they would stop
/// silently.
#[test]
fn a_run_with_snapshots_is_not_resumed_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = grok()
        .args([
            "--p",
            "11",
            "--hidden",
            "8",
            "--epochs",
            "3",
            "--checkpoint-every",
            "1",
        ])
        .args(["--snapshot-every", "1", "--no-report", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert_succeeded(&out);
    // As if killed after its last checkpoint.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let refused = grok().arg("--resume").arg(&run).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--snapshot-every"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

fn sweep_cli() -> Command {
    common::example("sweep")
}

/// `--operation` is a sweep axis: one row per operation in sweep.csv, and the phase diagram's
/// axis; a kept model of each is analysed in its own coordinates.
#[test]
fn a_sweep_over_operations_records_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ops");
    let result = sweep_cli()
        .args([
            "--p", "11", "--hidden", "8", "--seeds", "1..2", "--epochs", "2",
        ])
        .args(["--operation", "add,mul,div", "--save-models", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_succeeded(&result);
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|&h| h == "operation").unwrap();
    let ops: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(column).unwrap())
        .collect();
    assert_eq!(ops, ["add", "add", "mul", "mul", "div", "div"]);
    let svg = std::fs::read_to_string(out.join("phase_diagram.svg")).unwrap();
    for label in ["operation", "\nadd\n", "\nmul\n", "\ndiv\n"] {
        assert!(svg.contains(label), "phase diagram axis: {label:?}");
    }
    let analysed = dir.path().join("model4");
    let result = analyze()
        .arg("--checkpoint")
        .arg(out.join("models/000004.safetensors"))
        .args(["--operation", "div", "--out"])
        .arg(&analysed)
        .output()
        .unwrap();
    assert_succeeded(&result);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(analysed.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["operation"], "div");
    assert_eq!(summary["basis"], "discrete log to 2, b negated");
}

#[test]
fn sweep_shards_and_merge_reproduce_the_whole_grid_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let grid = [
        "--p",
        "13",
        "--hidden",
        "16,24",
        "--seeds",
        "1..3",
        "--epochs",
        "3",
        "--batch-size",
        "32",
    ];
    let run = |extra: &[&str], out: &str| {
        let out_dir = dir.path().join(out);
        let result = sweep_cli()
            .args(grid)
            .args(extra)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        assert_succeeded(&result);
        out_dir
    };
    let whole = run(&[], "whole");
    let parts: Vec<_> = (0..2)
        .map(|i| {
            let shard = format!("{i}/2");
            run(&["--shard", &shard, "--save-models"], &format!("part{i}"))
        })
        .collect();
    let merged = sweep_cli()
        .arg("--merge")
        .args(&parts)
        .arg("--out")
        .arg(dir.path().join("merged"))
        .output()
        .unwrap();
    assert_succeeded(&merged);
    // Everything but the last column, the shards' own timings.
    let csv = |d: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(d.join("sweep.csv")).unwrap();
        let untimed = |line: &str| line.rsplit_once(',').unwrap().0.to_owned();
        text.lines().map(untimed).collect()
    };
    assert_eq!(csv(&whole).len(), 7);
    assert_eq!(csv(&dir.path().join("merged")), csv(&whole));
    let json: Value =
        serde_json::from_slice(&std::fs::read(whole.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json["models"], 6);
    assert!(json["train_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(json["backend"], "flex");
    assert!(whole.join("phase_diagram.svg").exists());

    // --save-models: each shard keeps its models, the merge gathers all six, and `analyze`
    // opens any of them (here model 4: hidden 24, seed 2).
    let models = dir.path().join("merged").join("models");
    assert_eq!(std::fs::read_dir(&models).unwrap().count(), 6);
    // A merge into one of its own parts is refused (it would copy models onto themselves).
    let onto_part = sweep_cli()
        .arg("--merge")
        .args(&parts)
        .arg("--force")
        .arg("--out")
        .arg(&parts[0])
        .output()
        .unwrap();
    assert!(!onto_part.status.success());
    assert!(String::from_utf8_lossy(&onto_part.stderr).contains("one of the merged folders"));
    // A sweep forced over one that kept models leaves none of the old models behind.
    let again = sweep_cli()
        .args(grid)
        .args(["--shard", "1/2", "--force", "--out"])
        .arg(&parts[0])
        .output()
        .unwrap();
    assert_succeeded(&again);
    assert!(!parts[0].join("models").exists());
    assert!(!whole.join("models").exists());
    let analysed = analyze()
        .arg("--checkpoint")
        .arg(models.join("000004.safetensors"))
        .arg("--out")
        .arg(dir.path().join("cell"))
        .output()
        .unwrap();
    assert_succeeded(&analysed);
    let summary: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("cell").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (summary["p"].as_u64(), summary["hidden"].as_u64()),
        (Some(13), Some(24))
    );

    // A bad shard is one line and no output.
    let bad = sweep_cli()
        .args(["--shard", "2/2", "--out"])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("shard"), "{stderr}");
    assert!(!dir.path().join("bad").exists());
}

/// `sweep` on a tiny grid with `args`: one error line holding `needle`, no folder.
fn sweep_fails_with_one_line(args: &[&str], needle: &str) {
    let mut sweep = sweep_cli();
    sweep.args(["--p", "7", "--hidden", "4", "--epochs", "1"]);
    assert_fails_with_one_line(sweep, args, needle);
}

#[test]
fn hostile_sweep_arguments_fail_with_one_line_and_no_folder() {
    // Ranges are sized before they are listed.
    sweep_fails_with_one_line(&["--seeds", "0..18446744073709551615"], "below 2^32");
    sweep_fails_with_one_line(&["--seeds", "1..4000000"], "more than a sweep's");
    sweep_fails_with_one_line(
        &[
            "--seeds",
            "1..10000",
            "--lr",
            "1,2,3,4,5,6,7,8,9,10",
            "--weight-decay",
            "1,2,3,4,5,6,7,8,9,10,11",
        ],
        "at most 1,000,000",
    );
    sweep_fails_with_one_line(&["--seeds", "5..1"], "empty range");
    sweep_fails_with_one_line(&["--lr", "-1"], "lr");
    sweep_fails_with_one_line(&["--weight-decay", "nan,1"], "weight-decay");
    sweep_fails_with_one_line(&["--train-fraction", "0.5,inf"], "strictly between 0 and 1");
    sweep_fails_with_one_line(&["--max-batch", "0"], "invalid value");
    sweep_fails_with_one_line(&["--shard", "0/0"], "shard");
    sweep_fails_with_one_line(&["--seeds", "1,2", "--shard", "5/8"], "holds no model");
    sweep_fails_with_one_line(
        &["--merge", "/nonexistent-sweep-folder"],
        "nonexistent-sweep-folder",
    );
}

#[test]
fn a_sweep_into_an_unwritable_folder_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // 128,000 model-epochs, a quarter of an hour here: the error must come before them (this
    // bounds no speed; it tells "refused first" from "refused after training").
    let start = std::time::Instant::now();
    let out = sweep_cli()
        .args(["--seeds", "1..64", "--epochs", "2000", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        start.elapsed().as_secs() < 60,
        "it trained before it failed"
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("a-file"), "{stderr}");
}

#[test]
fn a_new_run_in_a_folder_without_a_run_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    std::fs::create_dir_all(out.join("figures")).unwrap();
    for file in ["figures/mine.svg", "report.html", "notes.txt"] {
        std::fs::write(out.join(file), b"a user's file").unwrap();
    }
    let run = grok()
        .args([
            "--p",
            "7",
            "--hidden",
            "4",
            "--epochs",
            "1",
            "--no-report",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_succeeded(&run);
    for file in ["figures/mine.svg", "report.html", "notes.txt"] {
        assert!(out.join(file).exists(), "{file} was removed");
    }
}

//! The programs as a user runs them: bad arguments fail with one line, and the flags reach the
//! library (whose rules are tested in-process: `run`, `sweep`).
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
pub(crate) fn assert_fails_with_one_line(mut command: Command, args: &[&str], needle: &str) {
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
    (&["--loss", "hinge"], "invalid value"),
    (&["--activation", "gelu"], "invalid value"),
    (&["--optimizer", "lion"], "invalid value"),
    (&["--grokfast-alpha", "1"], "grokfast-alpha"),
    (&["--grokfast-alpha", "-0.5"], "grokfast-alpha"),
    (&["--grokfast-alpha", "nan"], "grokfast-alpha"),
    (&["--grokfast-window", "0"], "grokfast-window"),
    (&["--grokfast-window", "-3"], "unexpected argument"),
    (
        &["--grokfast-alpha", "0.9", "--grokfast-window", "5"],
        "cannot be used with",
    ),
    (&["--grokfast-lambda", "3"], "needs a filter"),
    (
        &["--grokfast-window", "5", "--grokfast-lambda", "inf"],
        "grokfast-lambda",
    ),
    (
        &["--grokfast-window", "1099511627776"],
        "of memory, more than the",
    ),
    (&["--beta1", "1"], "beta1"),
    (&["--beta2", "nan"], "beta2"),
    (&["--beta2", "-0.1"], "beta2"),
    (&["--optimizer", "sgd", "--momentum", "-0.9"], "momentum"),
    (&["--optimizer", "sgd", "--nesterov"], "momentum"),
    (&["--optimizer", "sgd", "--beta1", "0.8"], "AdamW's"),
    (&["--momentum", "0.9"], "SGD's"),
    (&["--optimizer", "muon", "--momentum", "nan"], "momentum"),
    (&["--optimizer", "muon", "--nesterov"], "always Nesterov"),
    (&["--optimizer", "muon", "--beta2", "0.99"], "AdamW's"),
    (&["--label-noise", "1"], "label-noise"),
    (&["--label-noise", "nan"], "label-noise"),
];

#[test]
fn bad_arguments_fail_with_one_clear_line() {
    for (args, needle) in BAD_ARGUMENTS {
        fails_with_one_line(args, needle);
    }
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

/// The flags reach the library's run: backend, snapshots, checkpoints, the report, resume with
/// its threads, `--force`; and the results are printed.
#[test]
fn grok_records_the_method_its_flags_choose() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = grok()
        .args(["--p", "11", "--hidden", "8", "--epochs", "2", "--no-report"])
        .args([
            "--loss",
            "stablemax",
            "--activation",
            "square",
            "--orthograd",
        ])
        .args([
            "--grokfast-window",
            "3",
            "--optimizer",
            "sgd",
            "--momentum",
            "0.5",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert_succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "method: stablemax, square, grokfast-ma(window 3, λ 5), orthograd, sgd(momentum 0.5)"
        ),
        "{stdout}"
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let method = &config["method"];
    assert_eq!(method["loss"], "stablemax");
    assert_eq!(method["activation"], "square");
    assert_eq!(method["grokfast"]["filter"], "ma");
    assert_eq!(method["grokfast"]["window"], 3);
    assert_eq!(method["grokfast"]["lambda"], 5.0);
    assert_eq!(method["orthograd"], true);
    assert_eq!(method["optimizer"]["name"], "sgd");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(&summary["method"], method);
}

#[test]
fn grok_runs_resumes_and_replaces_as_its_flags_say() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let small = ["--p", "11", "--hidden", "8", "--epochs", "3"];
    let out = grok()
        .args(small)
        .args(["--backend", "ndarray", "--checkpoint-every", "1"])
        .args(["--snapshot-every", "1", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert_succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "progress measures of 3 snapshots",
        "3 epochs on ndarray in",
        "final: train_loss",
        "full-grid accuracy",
        "cosine fits in identity coordinates",
        "report.html in",
        "wrote ",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["backend"], "ndarray");
    for file in ["checkpoint.safetensors", "progress.json", "report.html"] {
        assert!(run.join(file).exists(), "{file}");
    }
    // A finished run is neither resumed nor replaced without --force.
    let again = grok().arg("--resume").arg(&run).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("finished"));
    let again = grok().args(small).arg("--out").arg(&run).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    // As if killed after its last checkpoint: resumed on one thread, recorded in config.json.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let resumed = grok()
        .arg("--resume")
        .arg(&run)
        .args(["--no-report", "--threads", "1", "--snapshot-every", "1"])
        .output()
        .unwrap();
    assert_succeeded(&resumed);
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("after epoch 3"), "{stdout}");
    let config: Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["threads"], 1);
    // --force replaces it; --no-report leaves no report.
    let forced = grok()
        .args(small)
        .args(["--no-report", "--force", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert_succeeded(&forced);
    assert!(!run.join("report.html").exists() && !run.join("checkpoint.safetensors").exists());
}

fn analyze() -> Command {
    common::example("analyze")
}

#[test]
fn analyze_writes_a_summary_or_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("notebook");
    let out = analyze()
        .arg("--checkpoint")
        .arg(common::fixture("seed1_p59_h64.pth"))
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("addition assumed"), "{stdout}");
    assert!(stdout.contains("p = 59, 64 neurons"), "{stdout}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["p"], 59);
    // A bad file, and key frequencies without snapshots.
    let garbage = dir.path().join("garbage.pth");
    std::fs::write(&garbage, [0xffu8; 64]).unwrap();
    assert_fails_with_one_line(
        analyze(),
        &["--checkpoint", garbage.to_str().unwrap()],
        "error:",
    );
    assert_fails_with_one_line(
        analyze(),
        &[
            "--checkpoint",
            garbage.to_str().unwrap(),
            "--key-frequencies",
            "1",
        ],
        "snapshots",
    );
}

fn sweep_cli() -> Command {
    common::example("sweep")
}

/// The method flags are sweep axes: every combination is a model of one batched program, named
/// in sweep.csv's `method` column and on the phase diagram's axis; `grok` takes one of each.
#[test]
fn a_sweep_over_methods_records_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("methods");
    let result = sweep_cli()
        .args([
            "--p", "11", "--hidden", "8", "--seeds", "1", "--epochs", "2",
        ])
        .args(["--optimizer", "adamw,muon", "--orthograd", "false,true"])
        .args(["--label-noise", "0,0.2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_succeeded(&result);
    let mut reader = csv::Reader::from_path(out.join("sweep.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (method, noise) = (column("method"), column("label_noise"));
    let rows: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[method].to_owned(), r[noise].to_owned())
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("adamw(β 0.9, 0.999)", "0.0"),
            ("adamw(β 0.9, 0.999)", "0.2"),
            ("muon(momentum 0.95)", "0.0"),
            ("muon(momentum 0.95)", "0.2"),
            ("orthograd, adamw(β 0.9, 0.999)", "0.0"),
            ("orthograd, adamw(β 0.9, 0.999)", "0.2"),
            ("orthograd, muon(momentum 0.95)", "0.0"),
            ("orthograd, muon(momentum 0.95)", "0.2"),
        ]
        .map(|(m, n)| (m.to_owned(), n.to_owned()))
    );
    let svg = std::fs::read_to_string(out.join("phase_diagram.svg")).unwrap();
    for label in ["method", "label noise", "orthograd, muon(momentum 0.95)"] {
        assert!(svg.contains(label), "phase diagram axis: {label:?}");
    }
    fails_with_one_line(&["--optimizer", "adamw,sgd"], "one value per method flag");
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

/// Shards and their merge, through the flags (the merge's results are tested in-process).
#[test]
fn sweep_shards_merge_through_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let grid = [
        "--p", "7", "--hidden", "4", "--seeds", "1..3", "--epochs", "1",
    ];
    let parts: Vec<_> = (0..2)
        .map(|i| {
            let out = dir.path().join(format!("part{i}"));
            let result = sweep_cli()
                .args(grid)
                .args(["--shard", &format!("{i}/2"), "--save-models", "--out"])
                .arg(&out)
                .output()
                .unwrap();
            assert_succeeded(&result);
            out
        })
        .collect();
    let merged = dir.path().join("merged");
    let result = sweep_cli()
        .arg("--merge")
        .args(&parts)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert_succeeded(&result);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        stdout.contains("merged 3 models from 2 folders"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_dir(merged.join("models")).unwrap().count(), 3);
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

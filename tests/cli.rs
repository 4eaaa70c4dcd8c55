//! The `grok` example as a user runs it: bad arguments fail with one line, a small run writes a
//! complete run folder.
#![cfg(feature = "flex")]

use std::{path::PathBuf, process::Command};

use serde_json::Value;

/// The `grok` example, built by `cargo test` beside the test binaries.
fn grok() -> Command {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap();
    let exe: PathBuf = profile_dir
        .join("examples")
        .join(format!("grok{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.exists(),
        "{} missing: cargo test builds examples",
        exe.display()
    );
    Command::new(exe)
}

fn fails_with_one_line(args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = grok()
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
    assert!(!dir.path().join("run").join("summary.json").exists());
}

#[test]
fn bad_arguments_fail_with_one_clear_line() {
    fails_with_one_line(&["--p", "1"], "at least 2");
    fails_with_one_line(&["--train-fraction", "1.5"], "strictly between 0 and 1");
    fails_with_one_line(&["--train-fraction", "0"], "strictly between 0 and 1");
    fails_with_one_line(&["--hidden", "0"], "hidden");
    fails_with_one_line(&["--batch-size", "0"], "batch-size");
    fails_with_one_line(&["--lr", "-0.1"], "lr");
    fails_with_one_line(&["--epochs", "abc"], "invalid value");
    fails_with_one_line(&["--backend", "tpu"], "invalid value");
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
}

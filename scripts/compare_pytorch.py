#!/usr/bin/env python3
"""Side-by-side training time of `grok` (this crate) and the PyTorch reference, same machine.

Usage (from the repository root, PyTorch installed):
    cargo build --release --example grok
    python3 scripts/compare_pytorch.py [--epochs 100] [--rounds 2] [--device cpu|cuda]
        [--backend flex] [--grok target/release/examples/grok]
        [--reference ../shared/reference/seed_train.py]

Runs the two programs alternately, `--rounds` times each, on the notebook's configuration, and
prints each run's training seconds (as each program reports it: the training loop with its
per-epoch validation, no start-up), the medians, and their ratio (grok / PyTorch). Also prints
the epoch each run first reaches val_acc >= 0.99 and its final val_acc, so a faster run that
learns something else shows.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--epochs", type=int, default=100)
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--device", default="cpu", help="PyTorch's device")
ap.add_argument("--backend", default="flex", help="grok's --backend")
ap.add_argument("--grok", default="target/release/examples/grok")
ap.add_argument("--reference", default=os.path.join("..", "shared", "reference", "seed_train.py"))
args = ap.parse_args()

for path in (args.grok, args.reference):
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found (build with `cargo build --release --example grok`, "
                 "or pass --grok / --reference)")


def run_grok(tmp, i):
    out = os.path.join(tmp, f"grok{i}")
    subprocess.run([args.grok, "--epochs", str(args.epochs), "--backend", args.backend,
                    "--no-report", "--out", out], check=True, stdout=subprocess.DEVNULL)
    s = json.load(open(os.path.join(out, "summary.json")))
    return s["train_seconds"], s["grok_epoch"], s["final"]["val_acc"]


def run_torch(tmp, i):
    out = os.path.join(tmp, f"torch{i}.json")
    subprocess.run([sys.executable, args.reference, "--epochs", str(args.epochs),
                    "--device", args.device, "--quiet", "--out", out],
                   check=True, stdout=subprocess.DEVNULL)
    log = json.load(open(out))
    return log["seconds"], log["grok_epoch_99"], log["val_acc"][-1]


results = {"grok": [], "pytorch": []}
with tempfile.TemporaryDirectory() as tmp:
    for i in range(args.rounds):
        for name, run in (("grok", run_grok), ("pytorch", run_torch)):
            seconds, grok_epoch, val_acc = run(tmp, i)
            results[name].append(seconds)
            steps = args.epochs * -(-int(0.8 * 113 * 113) // 128)
            print(f"round {i + 1} {name:8} {seconds:8.3f} s  {1e3 * seconds / steps:6.3f} ms/step  "
                  f"grok epoch {grok_epoch}  final val_acc {val_acc:.4f}", flush=True)

ours, theirs = statistics.median(results["grok"]), statistics.median(results["pytorch"])
print(f"median: grok ({args.backend}) {ours:.3f} s, PyTorch ({args.device}) {theirs:.3f} s, "
      f"ratio {ours / theirs:.3f}")

#!/usr/bin/env python3
"""Seed by seed: does a model of this crate learn what the notebook's PyTorch model learns?

Usage (from the repository root, PyTorch installed):
    cargo build --release --example sweep
    python3 scripts/compare_seeds.py [--seeds 1..8] [--epochs 50] [--device cpu]
        [--sweep target/release/examples/sweep] [--reference reference/torch_train.py]

Trains the seeds once with `sweep` (batched) and once each with the notebook's PyTorch loop (`reference/torch_train.py`), on
the notebook's configuration. A seed gives both programs the same split and the same initial
weights, so the two columns differ only by float rounding. Prints, per seed, the first epoch with
val_acc >= 0.99 (epochs from 0, `-` if never) and the final val_acc of each, then how many seeds
reach 0.99 in each, on how many the two agree about that, and the mean and largest gap in final
val_acc.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--seeds", default="1..8", help="A..B (inclusive)")
ap.add_argument("--epochs", type=int, default=50)
ap.add_argument("--device", default="cpu", help="PyTorch's device")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap.add_argument("--sweep", default=os.path.join(ROOT, "target", "release", "examples", "sweep"))
ap.add_argument("--reference", default=os.path.join(ROOT, "reference", "torch_train.py"))
args = ap.parse_args()

for path in (args.sweep, args.reference):
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found (build with `cargo build --release --example sweep`, "
                 "or pass --sweep / --reference)")
first, last = (int(s) for s in args.seeds.split(".."))
seeds = range(first, last + 1)

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "sweep")
    subprocess.run([args.sweep, "--seeds", args.seeds, "--epochs", str(args.epochs), "--out", out],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = {int(row["seed"]): row for row in csv.DictReader(open(os.path.join(out, "sweep.csv")))}
    theirs = {}
    for seed in seeds:
        log_path = os.path.join(tmp, f"torch{seed}.json")
        subprocess.run([sys.executable, args.reference, "--epochs", str(args.epochs), "--seed",
                        str(seed), "--device", args.device, "--quiet", "--out", log_path],
                       check=True, stdout=subprocess.DEVNULL)
        theirs[seed] = json.load(open(log_path))

print(f"{'seed':>4}  {'grok epoch':>14}  {'final val_acc':>17}")
print(f"{'':>4}  {'ours':>6} {'torch':>7}  {'ours':>8} {'torch':>8}")
gaps, reached, agree = [], {"ours": 0, "torch": 0}, 0
for seed in seeds:
    ours_epoch = ours[seed]["grok_epoch"] or None
    torch_epoch = theirs[seed]["grok_epoch_99"]
    ours_acc, torch_acc = float(ours[seed]["val_acc"]), theirs[seed]["val_acc"][-1]
    gaps.append(abs(ours_acc - torch_acc))
    reached["ours"] += ours_epoch is not None
    reached["torch"] += torch_epoch is not None
    agree += (ours_epoch is None) == (torch_epoch is None)
    print(f"{seed:>4}  {ours_epoch or '-':>6} {torch_epoch if torch_epoch is not None else '-':>7}  "
          f"{ours_acc:8.4f} {torch_acc:8.4f}")
n = len(seeds)
print(f"reach val_acc >= 0.99 within {args.epochs} epochs: ours {reached['ours']}/{n}, "
      f"PyTorch {reached['torch']}/{n}; agree on {agree}/{n} seeds")
print(f"final val_acc gap: mean {statistics.mean(gaps):.4f}, largest {max(gaps):.4f}")

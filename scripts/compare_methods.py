#!/usr/bin/env python3
"""Seed for seed: does each method of this crate's step train as its PyTorch twin does?

Usage (from the repository root, PyTorch installed):
    cargo build --release --example grok
    python3 scripts/compare_methods.py [--configs all|NAME,NAME] [--seeds 1337] [--out DIR]
        [--grok target/release/examples/grok] [--reference reference/torch_train.py]

Each configuration runs `grok` and `reference/torch_train.py` (the notebook's loop with the same
method, written to the authors' semantics) with the same flags and seed: the same split, labels
and initial weights, so the two curves differ only by float rounding. For each it prints the share
of epochs whose validation accuracies are within 0.02, the largest gap, the first epoch with
val_acc >= 0.99 in each (`-`: never) and both final accuracies, and whether the pair meets the
criterion of docs/methods.md (within 0.02 on at least 95% of the epochs; grok epochs within 3, or
neither grokking). As a control it also runs `grok --engine generic` (this crate's Burn-autodiff
reference step: the same arithmetic as the host step, rounded differently) and prints the same
share for host against generic: how far float rounding alone moves this configuration's curve.
With --out, each run's curve is kept there (`NAME-SEED.grok.csv`, `NAME-SEED.generic.csv`,
`NAME-SEED.torch.json`) and a summary `compare_methods.json` is written.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW = ["--train-fraction", "0.5", "--weight-decay", "0.3"]
PRIETO = ["--train-fraction", "0.4", "--weight-decay", "0", "--lr", "0.01", "--beta2", "0.99",
          "--batch-size", "5107"]
CONFIGS = {
    "grokfast-ema": (400, SLOW + ["--grokfast-alpha", "0.98"]),
    "grokfast-ma": (400, SLOW + ["--grokfast-window", "100"]),
    "orthograd-stablemax": (600, PRIETO + ["--orthograd", "--loss", "stablemax"]),
    "square-mse": (200, ["--activation", "square", "--loss", "mse"]),
    "sgd-nesterov": (600, ["--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--lr", "0.1",
                           "--weight-decay", "0.001"]),
    "label-noise": (400, ["--label-noise", "0.1"]),
    "muon": (400, ["--optimizer", "muon", "--lr", "0.02", "--weight-decay", "0.1"]),
}

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--configs", default="all", help="all, or names from: " + ", ".join(CONFIGS))
ap.add_argument("--seeds", default="1337", help="comma-separated")
ap.add_argument("--epochs", type=int, default=None, help="override every configuration's epochs")
ap.add_argument("--out", default=None, help="folder to keep the curves and the summary in")
ap.add_argument("--grok", default=os.path.join(ROOT, "target", "release", "examples", "grok"))
ap.add_argument("--reference", default=os.path.join(ROOT, "reference", "torch_train.py"))
args = ap.parse_args()
for path in (args.grok, args.reference):
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found (build with `cargo build --release --example grok`, "
                 "or pass --grok / --reference)")
names = list(CONFIGS) if args.configs == "all" else args.configs.split(",")
for name in names:
    if name not in CONFIGS:
        sys.exit(f"error: unknown configuration {name!r} (known: {', '.join(CONFIGS)})")
seeds = [int(s) for s in args.seeds.split(",")]


def grok_epoch(curve):
    return next((epoch for epoch, acc in enumerate(curve) if acc >= 0.99), None)


def run_pair(tmp, name, seed):
    epochs, flags = CONFIGS[name]
    epochs = args.epochs or epochs
    common = ["--epochs", str(epochs), "--seed", str(seed)] + flags
    folder = os.path.join(tmp, f"{name}-{seed}")
    subprocess.run([args.grok, "--no-report", "--out", folder] + common, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    control = os.path.join(tmp, f"{name}-{seed}-generic")
    subprocess.run([args.grok, "--no-report", "--engine", "generic", "--out", control] + common,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = os.path.join(tmp, f"{name}-{seed}.torch.json")
    subprocess.run([sys.executable, args.reference, "--quiet", "--device", "cpu", "--out", log_path]
                   + common, check=True, stdout=subprocess.DEVNULL)
    curve = lambda f: [float(row["val_acc"]) for row in csv.DictReader(open(os.path.join(f, "metrics.csv")))]
    ours, generic = curve(folder), curve(control)
    theirs = json.load(open(log_path))["val_acc"]
    if args.out:
        shutil.copy(os.path.join(folder, "metrics.csv"), os.path.join(args.out, f"{name}-{seed}.grok.csv"))
        shutil.copy(os.path.join(control, "metrics.csv"), os.path.join(args.out, f"{name}-{seed}.generic.csv"))
        shutil.copy(log_path, args.out)
    within = lambda x, y: sum(abs(a - b) <= 0.02 for a, b in zip(x, y)) / len(x)
    close = within(ours, theirs)
    ge_ours, ge_torch = grok_epoch(ours), grok_epoch(theirs)
    epochs_agree = (ge_ours is None and ge_torch is None) or (
        ge_ours is not None and ge_torch is not None and abs(ge_ours - ge_torch) <= 3)
    return {"config": name, "seed": seed, "epochs": epochs, "flags": " ".join(flags),
            "within_0.02": close, "grok_epoch_ours": ge_ours, "grok_epoch_torch": ge_torch,
            "final_val_acc_ours": ours[-1], "final_val_acc_torch": theirs[-1],
            "max_gap": max(abs(a - b) for a, b in zip(ours, theirs)),
            "control_within_0.02": within(ours, generic), "grok_epoch_generic": grok_epoch(generic),
            "control_max_gap": max(abs(a - b) for a, b in zip(ours, generic)),
            "meets": close >= 0.95 and epochs_agree}


if args.out:
    os.makedirs(args.out, exist_ok=True)
rows = []
with tempfile.TemporaryDirectory() as tmp:
    print(f"{'configuration':<20} {'seed':>5} {'epochs':>6} {'within 0.02':>11} {'max gap':>7} "
          f"{'grok ours':>9} {'torch':>6} {'final ours':>10} {'torch':>7}  meets  "
          f"{'control: within':>15} {'max gap':>7} {'grok generic':>12}")
    for name in names:
        for seed in seeds:
            r = run_pair(tmp, name, seed)
            rows.append(r)
            dash = lambda e: "-" if e is None else str(e)
            print(f"{name:<20} {seed:>5} {r['epochs']:>6} {r['within_0.02']:>11.3f} {r['max_gap']:>7.4f} "
                  f"{dash(r['grok_epoch_ours']):>9} {dash(r['grok_epoch_torch']):>6} "
                  f"{r['final_val_acc_ours']:>10.4f} {r['final_val_acc_torch']:>7.4f}  "
                  f"{'yes' if r['meets'] else 'NO':>5}  {r['control_within_0.02']:>15.3f} "
                  f"{r['control_max_gap']:>7.4f} {dash(r['grok_epoch_generic']):>12}", flush=True)
print(f"{sum(r['meets'] for r in rows)} of {len(rows)} pairs meet the criterion")
if args.out:
    json.dump(rows, open(os.path.join(args.out, "compare_methods.json"), "w"), indent=1)

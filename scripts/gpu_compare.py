#!/usr/bin/env python3
"""Per-step training time of grok's GPU backends and of PyTorch on the same GPU, in one go.

Usage (on the GPU machine, from the repository root):
    cargo build --release --features cuda,wgpu,vulkan --example grok   # where Rust is
    python3 scripts/gpu_compare.py --grok target/release/examples/grok \
        --reference ../shared/reference/seed_train.py --epochs 60 [--backends cuda,vulkan,wgpu]
        [--out results.json]

Each program trains the notebook's configuration for --epochs epochs. Reported per step:
'steady', the time between the end of epoch 5 and the last epoch divided by the steps in
between (start-up, JIT compilation and autotuning excluded), and 'overall', the whole training
time divided by all steps. Both programs validate once per epoch, and both clocks include it.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--grok", required=True)
ap.add_argument("--reference", required=True)
ap.add_argument("--epochs", type=int, default=60)
ap.add_argument("--backends", default="cuda,vulkan,wgpu")
ap.add_argument("--out", default=None)
ap.add_argument("--timeout", type=int, default=150)
args = ap.parse_args()

STEPS = -(-int(0.8 * 113 * 113) // 128)  # batches per epoch
WARM = 5


def per_step(seconds):
    last = len(seconds) - 1
    return {
        "steady_ms": 1e3 * (seconds[last] - seconds[WARM]) / ((last - WARM) * STEPS),
        "overall_ms": 1e3 * seconds[last] / ((last + 1) * STEPS),
    }


results = []
tmp = tempfile.mkdtemp()
for backend in [b for b in args.backends.split(",") if b]:
    out = os.path.join(tmp, backend)
    try:
        run = subprocess.run([args.grok, "--backend", backend, "--engine", "generic", "--epochs",
                              str(args.epochs), "--no-report", "--out", out],
                             capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        results.append({"program": f"grok {backend}", "error": "timeout"})
        print(results[-1], flush=True)
        continue
    if run.returncode != 0:
        results.append({"program": f"grok {backend}", "error": run.stderr.strip()[-500:]})
        print(results[-1], flush=True)
        continue
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    summary = json.load(open(os.path.join(out, "summary.json")))
    results.append({"program": f"grok {backend}", **per_step([float(r["seconds"]) for r in rows]),
                    "grok_epoch": summary["grok_epoch"], "final_val_acc": summary["final"]["val_acc"]})
    print(results[-1], flush=True)

log_path = os.path.join(tmp, "torch.json")
try:
    subprocess.run([sys.executable, args.reference, "--device", "cuda", "--epochs", str(args.epochs),
                    "--quiet", "--out", log_path], check=True, capture_output=True, timeout=args.timeout)
    log = json.load(open(log_path))
    results.append({"program": "pytorch cuda", **per_step(log["t"]), "grok_epoch": log["grok_epoch_99"],
                    "final_val_acc": log["val_acc"][-1], "torch": log["torch"]})
except Exception as e:  # report and go on: the other figures are still worth having
    results.append({"program": "pytorch cuda", "error": repr(e)[-500:]})
print(results[-1], flush=True)

if args.out:
    json.dump(results, open(args.out, "w"), indent=1)

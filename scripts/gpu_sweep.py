#!/usr/bin/env python3
"""Batched training throughput on a GPU: grok's `sweep` (K models as one Ensemble) against
PyTorch's `torch_ensemble.py`, K = 1, 16, 256, on the same card in one go.

Usage (on the GPU machine, from the repository root):
    python3 scripts/gpu_sweep.py --sweep target/release/examples/sweep \
        --torch-ensemble ../shared/reference/torch_ensemble.py [--backends wgpu] [--ks 1,16,256]

For each K, `sweep --seeds 1..K --epochs E` runs once; the steady time of one step of all K
models is its `steady_epoch_seconds` (epochs 6 to E, after JIT compilation and autotuning) over
the steps of an epoch. It includes each epoch's validation of all K models and its one read of
the metrics; torch_ensemble.py times bare steps.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--sweep", required=True)
ap.add_argument("--torch-ensemble", required=True)
ap.add_argument("--backends", default="wgpu")
ap.add_argument("--ks", default="1,16,256")
ap.add_argument("--epochs", type=int, default=15)
ap.add_argument("--timeout", type=int, default=240)
ap.add_argument("--out", default=None)
args = ap.parse_args()

STEPS = -(-int(0.8 * 113 * 113) // 128)
tmp = tempfile.mkdtemp()
results = []


def steady_epoch_seconds(backend, k, epochs):
    out = os.path.join(tmp, f"{backend}_{k}_{epochs}")
    subprocess.run([args.sweep, "--backend", backend, "--seeds", f"1..{k}", "--epochs", str(epochs),
                    "--max-batch", "256", "--out", out], check=True, capture_output=True,
                   timeout=args.timeout)
    sweep = json.load(open(os.path.join(out, "sweep.json")))
    return sweep["results"][0]["steady_epoch_seconds"], sweep["train_seconds"]


for backend in [b for b in args.backends.split(",") if b]:
    for k in map(int, args.ks.split(",")):
        try:
            epoch, total = steady_epoch_seconds(backend, k, args.epochs)
            ms = 1e3 * epoch / STEPS
            results.append({"program": f"grok sweep {backend}", "K": k, "ms_per_step_all_K": ms,
                            "model_steps_per_s": k / ms * 1e3, "train_seconds": total})
        except Exception as e:  # report and go on
            results.append({"program": f"grok sweep {backend}", "K": k, "error": repr(e)[-400:]})
        print(results[-1], flush=True)

try:
    run = subprocess.run([sys.executable, args.torch_ensemble, "--device", "cuda", "--ks", args.ks],
                         capture_output=True, text=True, timeout=args.timeout)
    print(run.stdout + run.stderr[-800:], flush=True)
    results.append({"program": "torch_ensemble", "output": run.stdout})
except Exception as e:
    results.append({"program": "torch_ensemble", "error": repr(e)[-400:]})
if args.out:
    json.dump(results, open(args.out, "w"), indent=1)

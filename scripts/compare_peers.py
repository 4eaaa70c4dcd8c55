#!/usr/bin/env python3
"""Side-by-side training time of `grok` (this crate) and its peers, same machine, one run.

Usage (from the repository root; `pip install -r reference/requirements.txt` for the peers):
    cargo build --release --example grok
    python3 scripts/compare_peers.py [--epochs 100] [--rounds 3] [--peers grok,torch,jax]
        [--device cpu|cuda] [--backend flex] [--threads N] [--grok target/release/examples/grok]
        [--before path/to/an/earlier/grok]

Peers: `grok` (this crate), `torch` (reference/torch_train.py: the notebook's PyTorch loop) and
`jax` (reference/jax_train.py: one jit-compiled program per epoch, `lax.scan` over the batches,
optax AdamW). They run alternately, `--rounds` times each, on the notebook's configuration.
For each run it prints the training seconds each program reports (its loop with per-epoch
validation, no start-up; JAX compiles before its loop and reports that apart), the steady
ms/step (from the per-epoch clock, epoch 1 to the last, so first-epoch warm-up is left out),
the epoch it first reaches val_acc >= 0.99 and its final val_acc (so a faster run that learns
something else shows). Then the medians, and each peer's steady time over grok's.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--epochs", type=int, default=100)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--peers", default="grok,torch,jax")
ap.add_argument("--device", default="cpu", help="PyTorch's device")
ap.add_argument("--backend", default="flex", help="grok's --backend")
ap.add_argument("--threads", type=int, default=None, help="grok's --threads (default: every core)")
ap.add_argument("--grok", default=os.path.join(ROOT, "target", "release", "examples", "grok"))
ap.add_argument("--before", default=None,
                help="another grok binary (an earlier build) to time as the peer `before`")
ap.add_argument("--torch", default=os.path.join(ROOT, "reference", "torch_train.py"))
ap.add_argument("--jax", default=os.path.join(ROOT, "reference", "jax_train.py"))
args = ap.parse_args()
peers = args.peers.split(",") + (["before"] if args.before else [])
assert args.epochs >= 2, "--epochs: at least 2 (the steady time leaves out the first)"
for name, path in (("grok", args.grok), ("torch", args.torch), ("jax", args.jax)):
    if name in peers and not os.path.exists(path):
        sys.exit(f"error: {path} not found (build with `cargo build --release --example grok`, or pass --{name})")

STEPS_PER_EPOCH = -(-int(0.8 * 113 * 113) // 128)


def steady_ms(clock):
    """ms per step from a per-epoch clock, epoch 1 to the last."""
    return 1e3 * (clock[-1] - clock[0]) / ((len(clock) - 1) * STEPS_PER_EPOCH)


def run_grok(tmp, i, binary=None):
    out = os.path.join(tmp, f"grok{i}{'b' if binary else ''}")
    cmd = [binary or args.grok, "--epochs", str(args.epochs), "--backend", args.backend, "--no-report", "--out", out]
    if args.threads and not binary:
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    s = json.load(open(os.path.join(out, "summary.json")))
    clock = [float(row["seconds"]) for row in csv.DictReader(open(os.path.join(out, "metrics.csv")))]
    return s["train_seconds"], steady_ms(clock), s["grok_epoch"], s["final"]["val_acc"]


def run_python(script, extra):
    def run(tmp, i):
        out = os.path.join(tmp, f"{os.path.basename(script)}{i}.json")
        subprocess.run([sys.executable, script, "--epochs", str(args.epochs), "--quiet", "--out", out] + extra,
                       check=True, stdout=subprocess.DEVNULL)
        log = json.load(open(out))
        return log["seconds"], steady_ms(log["t"]), log["grok_epoch_99"], log["val_acc"][-1]
    return run


runners = {"grok": run_grok, "before": lambda tmp, i: run_grok(tmp, i, args.before), "torch": run_python(args.torch, ["--device", args.device]),
           "jax": run_python(args.jax, [])}
results = {name: [] for name in peers}
with tempfile.TemporaryDirectory() as tmp:
    for i in range(args.rounds):
        for name in peers:
            seconds, ms, grok_epoch, val_acc = runners[name](tmp, i)
            results[name].append((seconds, ms))
            print(f"round {i + 1} {name:6} {seconds:8.3f} s  steady {ms:6.3f} ms/step  "
                  f"grok epoch {grok_epoch}  final val_acc {val_acc:.4f}", flush=True)

medians = {name: (statistics.median(s for s, _ in r), statistics.median(m for _, m in r)) for name, r in results.items()}
for name, (seconds, ms) in medians.items():
    ratio = f"  grok / {name} {medians['grok'][1] / ms:.3f}" if "grok" in medians and name != "grok" else ""
    print(f"median {name:6} {seconds:8.3f} s  steady {ms:6.3f} ms/step{ratio}")

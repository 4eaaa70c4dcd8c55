"""Figures and tables of docs/methods.md from the runs of scripts/methods_runs.sh.

Usage: python3 scripts/methods_figures.py RUNS FIGURES [--png]
(RUNS: the runs' folder, default runs/methods; FIGURES: where the SVGs go, default docs/figures;
--png: PNG copies too, to look at).
Prints the tables as Markdown. Needs numpy and matplotlib.
"""
import csv
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"  # text as text: small files
plt.rcParams["svg.hashsalt"] = "methods"  # the same ids every time

runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/methods")
figures = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/figures")


def metrics(folder):
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows]) for k in rows[0]}


def first(values, threshold):
    hits = np.nonzero(values >= threshold)[0]
    return int(hits[0]) if len(hits) else None


def group(study, method):
    folders = sorted(
        (p for p in (runs / study / method).glob("[0-9]*") if p.is_dir()), key=lambda p: int(p.name)
    )
    return [(int(p.name), metrics(p)) for p in folders if (p / "metrics.csv").exists()]


def fmt(values):
    got = [v for v in values if v is not None]
    if not got:
        return "never"
    text = f"median {statistics.median(got):g} (min {min(got)}, max {max(got)})"
    return text + ("" if len(got) == len(values) else f"; {len(values) - len(got)} never")


def band(ax, runs_of, key, label, color):
    lengths = min(len(m[key]) for _, m in runs_of)
    stack = np.array([m[key][:lengths] for _, m in runs_of])
    # About 200 epochs, spread evenly on the log axis (the figures stay small).
    keep = np.unique(np.geomspace(1, lengths, 200).astype(int)) - 1
    epochs = keep + 1
    stack = stack[:, keep]
    ax.plot(epochs, np.median(stack, axis=0), color=color, label=label)
    ax.fill_between(epochs, stack.min(axis=0), stack.max(axis=0), color=color, alpha=0.15)


colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

# Grokfast.
methods = ["baseline", "ema", "ma"]
labels = {"baseline": "AdamW", "ema": "Grokfast EMA (α 0.98, λ 2)", "ma": "Grokfast MA (w 100, λ 5)"}
print(
    "| method | seeds | epochs to train accuracy 0.99 | epochs to validation accuracy 0.95 "
    "| epochs to validation accuracy 0.99 | speed-up of the median (0.95 / 0.99) |"
)
print("|---|---|---|---|---|---|")
base95 = None
base = None
fig, ax = plt.subplots(figsize=(8, 4.2))
for method, color in zip(methods, colors):
    got = group("grokfast", method)
    if not got:
        continue
    train = [first(m["train_acc"], 0.99) for _, m in got]
    val = [first(m["val_acc"], 0.99) for _, m in got]
    val95 = [first(m["val_acc"], 0.95) for _, m in got]

    def median(values):
        got = [v for v in values if v is not None]
        return statistics.median(got) if got else None

    med, med95 = median(val), median(val95)
    if method == "baseline":
        base, base95 = med, med95
    speed = " / ".join(f"×{b / m:.2f}" if b and m else "–" for b, m in [(base95, med95), (base, med)])
    print(f"| {labels[method]} | {len(got)} | {fmt(train)} | {fmt(val95)} | {fmt(val)} | {speed} |")
    band(ax, got, "val_acc", labels[method], color)
ax.set_xscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("validation accuracy")
ax.set_title("Grokfast, p = 113, 50% of pairs, wd 0.3: median and range of 8 seeds", fontsize=10)
ax.axhline(0.99, color="grey", lw=0.5, ls="--")
ax.legend(loc="upper left")
fig.tight_layout()
fig.savefig(figures / "methods_grokfast.svg", metadata={"Date": None})
if "--png" in sys.argv:
    fig.savefig(figures / "methods_grokfast.png", dpi=80)
print()

# Prieto et al.
methods = ["adamw", "orthograd", "stablemax", "orthograd-stablemax"]
labels = {
    "adamw": "AdamW",
    "orthograd": "⊥AdamW",
    "stablemax": "AdamW, StableMax",
    "orthograd-stablemax": "⊥AdamW, StableMax",
}
print("| method | seeds | epochs to validation accuracy 0.99 | final validation accuracy | largest softmax collapse | final weight norm |")
print("|---|---|---|---|---|---|")
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
for method, color in zip(methods, colors):
    got = group("edge", method)
    if not got:
        continue
    val = [first(m["val_acc"], 0.99) for _, m in got]
    final = [m["val_acc"][-1] for _, m in got]
    collapse = [np.nanmax(m["softmax_collapse"]) for _, m in got]
    norm = [m["weight_norm"][-1] for _, m in got]
    print(
        f"| {labels[method]} | {len(got)} | {fmt(val)} | median {statistics.median(final):.3f} "
        f"(min {min(final):.3f}) | median {statistics.median(collapse):.3f} (max {max(collapse):.3f}) "
        f"| median {statistics.median(norm):.1f} |"
    )
    for ax, key in zip(axes, ["val_acc", "softmax_collapse", "weight_norm"]):
        band(ax, got, key, labels[method], color)
for ax, title in zip(axes, ["validation accuracy", "softmax collapse (training rows)", "weight norm ‖W‖"]):
    ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_title(title)
axes[2].set_yscale("log")
axes[0].legend(loc="upper left", fontsize=8)
fig.suptitle("40% of the pairs, no weight decay, lr 0.01, β₂ 0.99, full batches: median and range of 8 seeds")
fig.tight_layout()
fig.savefig(figures / "methods_edge.svg", metadata={"Date": None})
if "--png" in sys.argv:
    fig.savefig(figures / "methods_edge.png", dpi=80)

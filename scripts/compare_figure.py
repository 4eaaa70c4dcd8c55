#!/usr/bin/env python3
"""The twins figure of docs/methods.md: validation accuracy per epoch of each configuration that
scripts/compare_methods.py kept (--out DIR), ours (host), ours (generic engine) and PyTorch.

Usage: python3 scripts/compare_figure.py DIR OUT.svg   (matplotlib installed)
"""
import csv, json, os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

folder, out = sys.argv[1], sys.argv[2]
rows = json.load(open(os.path.join(folder, "compare_methods.json")))
cols = 4
fig, axes = plt.subplots(-(-len(rows) // cols), cols, figsize=(4 * cols, 3 * -(-len(rows) // cols)), squeeze=False)
curve = lambda path: [float(r["val_acc"]) for r in csv.DictReader(open(path))]
for ax, r in zip(axes.flat, rows):
    stem = os.path.join(folder, f"{r['config']}-{r['seed']}")
    ax.plot(curve(stem + ".grok.csv"), label="ours (host)", color="C0", lw=1.2)
    ax.plot(curve(stem + ".generic.csv"), label="ours (generic)", color="C2", lw=1.0, ls=":")
    ax.plot(json.load(open(stem + ".torch.json"))["val_acc"], label="PyTorch twin", color="C1", lw=1.0, ls="--")
    ax.set_title(f"{r['config']} ({100 * r['within_0.02']:.0f}% within 0.02)", fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("validation accuracy", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.tick_params(labelsize=7)
for ax in list(axes.flat)[len(rows):]:
    ax.axis("off")
axes.flat[0].legend(fontsize=7, loc="lower right")
fig.tight_layout()
fig.savefig(out)
print("wrote", out)

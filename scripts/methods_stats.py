#!/usr/bin/env python3
"""The tables of docs/methods.md's Gromov, Muon and Doshi et al. sections, from the sweeps of
scripts/methods_sweeps.sh (numpy only).

Usage: python3 scripts/methods_stats.py [OUT]   (OUT: the sweeps' folder, default runs/methods)

- Gromov: per seed, the share of neurons whose input-a, input-b and output fits (neurons.json)
  have one frequency, the median of each neuron's worst fit R², and the output phase against the
  sum of the input phases (|wrapped difference|: median, share within 0.3 rad).
- Muon: the grokking epochs (first val_acc >= 0.99) per optimiser and learning rate.
- Doshi et al.: per label noise and weight decay, the final training accuracy (on the noisy
  labels: 1 - xi once the corrupted rows are unlearned), validation accuracy, and each neuron's
  IPR (sum_k P_k^2 / (sum_k P_k)^2 over k >= 1 of its input power, both operands, as
  analysis::progress::ipr) from the saved models: median, and the shares below 0.3 and above 0.6.
"""
import csv, json, os, statistics, struct, sys
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "runs/methods"
wrap = lambda t: (t + np.pi) % (2 * np.pi) - np.pi


def read_weights(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        assert meta["dtype"] == "F32", meta["dtype"]
        tensors[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], "<f4").reshape(meta["shape"]).astype(np.float64)
    return tensors


def iprs(fc1, p):
    k = np.arange(p // 2 + 1)
    once = (k == 0) | (2 * k == p)  # |V_0|² and an even p's Nyquist term; the others pair with p - k
    power = lambda w: np.abs(np.fft.rfft(w, axis=1)) ** 2 * np.where(once, 1, 2)
    P = (power(fc1[:, :p]) + power(fc1[:, p:]))[:, 1:]
    total = P.sum(axis=1)
    return np.where(total > 0, (P ** 2).sum(axis=1) / np.where(total > 0, total, 1) ** 2, 0.0)


print("## Gromov: x² and MSE")
print("| seed | one frequency (a, b, out) | median worst R² | median phase error (rad) | within 0.3 rad | distinct frequencies |")
print("|---|---|---|---|---|---|")
for i in range(8):
    path = os.path.join(out, "gromov", f"analysis{i}", "neurons.json")
    if not os.path.exists(path):
        continue
    n = json.load(open(path))["neurons"]
    same = np.mean([x["in_a"]["freq"] == x["in_b"]["freq"] == x["out"]["freq"] for x in n])
    r2 = np.median([min(x["in_a"]["r2"], x["in_b"]["r2"], x["out"]["r2"]) for x in n])
    d = np.abs([wrap(x["out"]["phase"] - x["in_a"]["phase"] - x["in_b"]["phase"]) for x in n])
    print(f"| {i + 1} | {same:.2f} | {r2:.3f} | {np.median(d):.3f} | {np.mean(d < 0.3):.2f} | {len({x['in_a']['freq'] for x in n})} |")

print("\n## Muon against AdamW: grokking epochs")
for name in ("muon-adamw", "muon", "muon-grid"):
    path = os.path.join(out, name, "sweep.csv")
    if not os.path.exists(path):
        continue
    groups = {}
    for r in csv.DictReader(open(path)):
        key = (r["method"], r["lr"], r["weight_decay"])
        groups.setdefault(key, []).append((int(r["seed"]), r["grok_epoch"], float(r["val_acc"])))
    for (method, lr, wd), rows in groups.items():
        epochs = [int(g) for _, g, _ in rows if g]
        med = statistics.median(epochs) if epochs else None
        print(f"{method}, lr {lr}, wd {wd}: grok epochs {[g or '-' for _, g, _ in sorted(rows)]}, "
              f"{len(epochs)}/{len(rows)} grokked, median {med}, mean {statistics.mean(epochs) if epochs else None}, "
              f"final val_acc median {statistics.median(v for _, _, v in rows):.4f}")

print("\n## Doshi et al.: label noise")
path = os.path.join(out, "doshi", "sweep.csv")
if os.path.exists(path):
    groups = {}
    for r in csv.DictReader(open(path)):
        groups.setdefault((r["label_noise"], r["weight_decay"]), []).append(r)
    print("| ξ | weight decay | final train acc (median) | 1 − ξ | final val acc (median) | grokked | neuron IPR median | IPR < 0.3 | IPR > 0.6 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (xi, wd), rows in sorted(groups.items()):
        values = []
        for r in rows:
            model = os.path.join(out, "doshi", "models", f"{int(r['index']):06d}.safetensors")
            if os.path.exists(model):
                values.extend(iprs(read_weights(model)["fc1.weight"], int(r["p"])))
        values = np.array(values)
        print(f"| {xi} | {wd} | {statistics.median(float(r['train_acc']) for r in rows):.4f} | {1 - float(xi):.2f} | "
              f"{statistics.median(float(r['val_acc']) for r in rows):.4f} | {sum(bool(r['grok_epoch']) for r in rows)}/{len(rows)} | "
              f"{np.median(values):.3f} | {np.mean(values < 0.3):.2f} | {np.mean(values > 0.6):.2f} |")

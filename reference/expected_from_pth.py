"""Expected analysis figures for a saved seed-notebook state_dict, in the library's conventions.

For each neuron and each of its three weight vectors (input a: fc1.weight[n, :p]; input b:
fc1.weight[n, p:]; output: fc2.weight[:, n]) the dominant nonzero frequency k in 1..=p//2 of the
DFT Y = sum_x y[x] exp(-2*pi*i*k*x/p), and the cosine y[x] ~ offset + scale*cos(2*pi*k*x/p + phase)
with phase = arg(Y[k]), scale = 2|Y[k]|/p, offset = mean(y). Also the accuracy on all p*p pairs of
the model as saved and with every neuron's weights replaced by its three fitted cosines, and both
on the validation pairs of the notebook's split (np.random.seed(seed); np.random.permutation(p*p);
the first floor(train_fraction*p*p) rows train, the rest validate).

Usage: python reference/expected_from_pth.py model.pth out.json [--seed S] [--train-fraction F]

Makes the .expected.json test fixtures (tests/fixtures/make_pytorch_fixtures.py).
"""
import argparse, json
import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("out")
ap.add_argument("--seed", type=int, default=None, help="the split's seed (default: no validation figures)")
ap.add_argument("--train-fraction", type=float, default=0.8)
args = ap.parse_args()
sd = torch.load(args.model, map_location="cpu")
W1 = sd["fc1.weight"].double().numpy()
W2 = sd["fc2.weight"].double().numpy()
h, two_p = W1.shape
p = two_p // 2
xs = np.arange(p)


def fit(y):
    Y = np.fft.fft(y)
    k = 1 + int(np.argmax(np.abs(Y[1:p // 2 + 1])))
    scale = 2 * np.abs(Y[k]) / p
    phase = float(np.angle(Y[k]))
    offset = float(np.mean(y))
    recon = offset + scale * np.cos(2 * np.pi * k * xs / p + phase)
    ss = np.sum((y - y.mean()) ** 2)
    r2 = 1 - np.sum((y - recon) ** 2) / ss if ss > 0 else 0.0
    return {"freq": k, "phase": phase, "scale": float(scale), "offset": offset, "r2": float(r2)}, recon


a = np.repeat(np.arange(p), p)
b = np.tile(np.arange(p), p)
lab = (a + b) % p


def correct(A, B):
    pre = A[:, a] + A[:, p + b]
    return (B @ np.maximum(pre, 0)).argmax(0) == lab


def acc(A, B):
    return float(correct(A, B).mean())


neurons = []
R1 = np.zeros_like(W1); R2 = np.zeros_like(W2)
for n in range(h):
    fa, ra = fit(W1[n, :p]); fb, rb = fit(W1[n, p:]); fo, ro = fit(W2[:, n])
    R1[n, :p], R1[n, p:], R2[:, n] = ra, rb, ro
    neurons.append({"in_a": fa, "in_b": fb, "out": fo})
out = {"p": p, "hidden": h, "full_accuracy": acc(W1, W2), "replaced_all_accuracy": acc(R1, R2),
       "neurons": neurons}
if args.seed is not None:
    np.random.seed(args.seed)
    val = np.random.permutation(p * p)[int(args.train_fraction * p * p):]
    out["val_accuracy"] = float(correct(W1, W2)[val].mean())
    out["replaced_all_val_accuracy"] = float(correct(R1, R2)[val].mean())
json.dump(out, open(args.out, "w"), indent=1)
print(json.dumps({k: v for k, v in out.items() if k != "neurons"}))

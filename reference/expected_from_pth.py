"""Expected analysis figures for a saved seed-notebook state_dict, in the library's conventions.

For each neuron and each of its three weight vectors (input a: fc1.weight[n, :p]; input b:
fc1.weight[n, p:]; output: fc2.weight[:, n]) the dominant nonzero frequency k in 1..=p//2 of the
DFT Y = sum_x y[x] exp(-2*pi*i*k*x/p), and the cosine y[x] ~ offset + scale*cos(2*pi*k*x/p + phase)
with phase = arg(Y[k]), scale = 2|Y[k]|/p, offset = mean(y). Also the accuracy on all p*p pairs of
the model as saved and with every neuron's weights replaced by its three fitted cosines.

Usage: python reference/expected_from_pth.py model.pth out.json

Makes the .expected.json test fixtures (tests/fixtures/make_pytorch_fixtures.py).
"""
import json, sys
import numpy as np
import torch

sd = torch.load(sys.argv[1], map_location="cpu")
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


def acc(A, B):
    pre = A[:, a] + A[:, p + b]
    return float(((B @ np.maximum(pre, 0)).argmax(0) == lab).mean())


neurons = []
R1 = np.zeros_like(W1); R2 = np.zeros_like(W2)
for n in range(h):
    fa, ra = fit(W1[n, :p]); fb, rb = fit(W1[n, p:]); fo, ro = fit(W2[:, n])
    R1[n, :p], R1[n, p:], R2[:, n] = ra, rb, ro
    neurons.append({"in_a": fa, "in_b": fb, "out": fo})
out = {"p": p, "hidden": h, "full_accuracy": acc(W1, W2), "replaced_all_accuracy": acc(R1, R2),
       "neurons": neurons}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(json.dumps({k: out[k] for k in ("p", "hidden", "full_accuracy", "replaced_all_accuracy")}))

"""The post's untrained construction checked in numpy, independently of the crate
(`analysis::construction`; docs/analysis.md, "Sampling trap of the construction").

Neuron n draws a frequency k and phases s1, s2; with w = 2*pi*k/p its input weights are
0.5*cos(w*a + s1) and 0.5*cos(w*b + s2), its output weights cos(w*c + s1 + s2); no training.
Prints the accuracy on all p*p pairs for three ways of sampling, at 256 and 512 neurons, for
each seed and their mean.

Usage: python reference/construction_check.py [--p 113] [--seeds 0,1] [--neurons 256,512]
"""
import argparse

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--p", type=int, default=113)
ap.add_argument("--seeds", default="0,1")
ap.add_argument("--neurons", default="256,512")
args = ap.parse_args()
p = args.p
x = np.arange(p)
a, b = np.meshgrid(x, x, indexing="ij")
a, b, label = a.ravel(), b.ravel(), ((a + b) % p).ravel()

SAMPLINGS = {
    "k in 1..=p-1, phases in [0, pi] (as the post describes)": (p - 1, np.pi),
    "k in 1..=p/2, phases in [0, 2pi)": (p // 2, 2 * np.pi),
    "k in 1..=p/2, phases in [0, pi] (half the circle: the trap)": (p // 2, np.pi),
}


def accuracy(rng, m, k_max, phase_range):
    k = rng.integers(1, k_max + 1, m)
    s1, s2 = rng.uniform(0, phase_range, m), rng.uniform(0, phase_range, m)
    w = 2 * np.pi * k / p
    post = np.maximum(0.5 * (np.cos(np.outer(a, w) + s1) + np.cos(np.outer(b, w) + s2)), 0)
    out = np.cos(np.outer(w, x) + (s1 + s2)[:, None])
    return float(np.mean(np.argmax(post @ out, axis=1) == label))


seeds = [int(s) for s in args.seeds.split(",")]
for name, (k_max, phase_range) in SAMPLINGS.items():
    for m in (int(n) for n in args.neurons.split(",")):
        accs = [accuracy(np.random.default_rng(seed), m, k_max, phase_range) for seed in seeds]
        print(f"{name:62} {m:4} neurons: " + " ".join(f"{v:.3f}" for v in accs)
              + f"  mean {np.mean(accs):.3f}")

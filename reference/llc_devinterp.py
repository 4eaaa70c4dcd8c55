"""The local learning coefficient of one snapshot of a run, by devinterp's own sampler: the
reference `analyze --llc` is compared with (docs/llc.md).

devinterp 2.0.1 (Timaeus, PyPI `devinterp`, pinned in requirements.txt) is imported, not
reproduced: `devinterp.slt.llc.llc` runs its default sampler (`sgmcmc_sgld`) chain after chain on
the snapshot's weights, on the run's training pairs, with the hyperparameters given, and
computes its estimate `n_beta * (mean loss over every step and row - mean init loss)`.

The snapshot file is the library's (`src/io/snapshots.rs`), read by `progress_measures.py`; the
training split is rebuilt from its config as the library builds it (NumPy's
`RandomState(seed).permutation(n)`, the first `int(train_fraction * n)` rows). Each row is a
"sequence" `[a * p + b, label]`, so devinterp's per-token loss is the row's cross-entropy
(shape (batch, 1)).

Besides devinterp's own numbers, the output holds the estimate recomputed the library's way from
devinterp's own loss traces: the draws after the burn-in only, and `L_init` the mean loss over all
the training rows (devinterp averages its first 32 minibatches). `--save-model` writes the
snapshot's weights as a safetensors model for `analyze --checkpoint`.

Usage: python3 reference/llc_devinterp.py SNAPSHOTS.safetensors --epoch E [--lr 1e-3]
           [--nbeta NB] [--gamma 100] [--weight-decay 0] [--chains 4] [--draws 200] [--burnin 0]
           [--batch-size 32] [--seed 100] [--threads N] [--save-model M.safetensors] [--out O.json]
"""
import argparse, json, math, os, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from progress_measures import dataset, read_safetensors  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("snapshots")
ap.add_argument("--epoch", type=int, required=True)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--nbeta", type=float, default=None, help="default m / ln m (default_nbeta)")
ap.add_argument("--gamma", type=float, default=100.0)
ap.add_argument("--weight-decay", type=float, default=0.0)
ap.add_argument("--chains", type=int, default=4)
ap.add_argument("--draws", type=int, default=200)
ap.add_argument("--burnin", type=int, default=0)
ap.add_argument("--batch-size", type=int, default=32)
ap.add_argument("--seed", type=int, default=100)
ap.add_argument("--threads", type=int, default=None)
ap.add_argument("--save-model", default=None)
ap.add_argument("--out", default=None)
args = ap.parse_args()
start = time.perf_counter()
if args.threads:
    torch.set_num_threads(args.threads)

from datasets import Dataset  # noqa: E402
from devinterp.slt.llc import llc  # noqa: E402
from devinterp.utils import default_nbeta  # noqa: E402

t, meta = read_safetensors(args.snapshots)
cfg = json.loads(meta["config"])
p, h = cfg["model"]["p"], cfg["model"]["d_hidden"]
op = cfg.get("operation") or "add"
method = cfg.get("method") or {}
assert method.get("loss", "cross-entropy") == "cross-entropy", "devinterp's loss here is cross-entropy"
square = method.get("activation", "relu") == "square"
assert not cfg.get("label_noise"), "a run with label noise: its corrupted labels are not rebuilt here"
epochs = [int(e) for e in t["epochs"]]
i = epochs.index(args.epoch)
fc1 = np.ascontiguousarray(t["fc1.weight"].reshape(len(epochs), h, 2 * p)[i])
fc2 = np.ascontiguousarray(t["fc2.weight"].reshape(len(epochs), p, h)[i])
if args.save_model:
    from safetensors.numpy import save_file
    save_file({"fc1.weight": fc1, "fc2.weight": fc2}, args.save_model)

a, b, labels = dataset(op, p)
n = len(labels)
perm = np.random.RandomState(cfg["seed"]).permutation(n)
n_train = int(cfg["train_fraction"] * p * p) if n == p * p else int(cfg["train_fraction"] * n)
train = perm[:n_train]
rows = np.stack([a[train] * p + b[train], labels[train]], axis=1).astype(np.int64)


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(2 * p, h, bias=False)
        self.fc2 = torch.nn.Linear(h, p, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.from_numpy(fc1))
            self.fc2.weight.copy_(torch.from_numpy(fc2))

    def forward(self, pair):
        x = torch.zeros(pair.shape[0], 2 * p)
        x[torch.arange(pair.shape[0]), pair // p] = 1.0
        x[torch.arange(pair.shape[0]), p + pair % p] = 1.0
        pre = self.fc1(x)
        return self.fc2(pre * pre if square else torch.relu(pre))


def loss_fn(model, input_ids):
    """Each row's cross-entropy, as devinterp's per-token loss: shape (batch, 1)."""
    logits = model(input_ids[:, 0])
    return torch.nn.functional.cross_entropy(logits, input_ids[:, 1], reduction="none")[:, None]


model = Mlp()
data = Dataset.from_dict({"input_ids": rows.tolist()}).with_format("torch")
nbeta = args.nbeta if args.nbeta is not None else float(default_nbeta(args.batch_size))
with torch.no_grad():
    full_init = float(loss_fn(model, torch.from_numpy(rows)).mean())
with tempfile.TemporaryDirectory() as tmp:
    sampling = time.perf_counter()
    result = llc(model, data, {}, lr=args.lr, n_beta=nbeta, loss_fn=loss_fn,
                 num_chains=args.chains, num_draws=args.draws, num_burnin_steps=args.burnin,
                 batch_size=args.batch_size, init_seed=args.seed, localization=args.gamma,
                 llc_weight_decay=args.weight_decay, device="cpu",
                 output_path=os.path.join(tmp, "samples.zarr"))
    sampling = time.perf_counter() - sampling
    trace = np.asarray(result["loss_trace"].values, dtype=np.float64)  # (chain, step)
    per_chain = [float(v) for v in np.asarray(result["llc_per_chain"].values)]
    out = {
        "epoch": args.epoch, "operation": op, "p": p, "hidden": h, "n_train": n_train,
        "config": {k: getattr(args, k) for k in
                   ["lr", "gamma", "weight_decay", "chains", "draws", "burnin", "batch_size",
                    "seed"]},
        "nbeta": nbeta,
        "devinterp": {
            "llc_mean": float(result["llc_mean"].values),
            "llc_std": float(result["llc_std"].values),
            "llc_per_chain": per_chain,
            "init_loss": float(result["init_loss"].values),
        },
        # The library's way, from devinterp's traces: draws after the burn-in, L_init over all rows.
        "full_init_loss": full_init,
        "llc_per_chain": [nbeta * (float(c[args.burnin:].mean()) - full_init) for c in trace],
        "traces": trace.tolist(),
        "seconds_sampling": sampling,
        "seconds_total": time.perf_counter() - start,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
chains = np.array(out["llc_per_chain"])
out["llc_mean"] = float(chains.mean())
out["llc_std"] = float(chains.std())
out["llc_sem"] = float(chains.std(ddof=1) / math.sqrt(len(chains))) if len(chains) > 1 else None
print(json.dumps({k: v for k, v in out.items() if k != "traces"}))
if args.out:
    with open(args.out, "w") as f:
        json.dump(out, f)

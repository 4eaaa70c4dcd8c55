"""The seed notebook's training written in JAX as a speed-minded researcher would write it: the
peer our CPU step is measured against (docs/benchmarks.md).

The same data, split (NumPy's permutation with the seed), batch order (the shuffled training rows
in order, batches of 128, the last one short), model (2p -> hidden -> p, no biases, ReLU),
loss (mean softmax cross-entropy) and optimiser (AdamW, lr 3e-3, weight decay 0.5, betas
(0.9, 0.999), PyTorch's epsilon 1e-8) as the notebook. fc1 is applied as a gather of two rows,
which equals the one-hot product. One epoch is one compiled program: `lax.scan` over the full
batches, then the short last batch and the validation pass; the host reads the epoch's metrics
once. The initial weights are PyTorch's distribution (uniform in +-1/sqrt(fan_in)) drawn by JAX's
generator, so the curve follows the notebook's in shape, not number for number.

Usage: python reference/jax_train.py [--p P] [--hidden H] [--train-fraction F] [--epochs N]
           [--seed S] [--quiet] [--out log.json]

The JSON log has the same keys as torch_train.py's: per-epoch lists epoch, train_loss, val_loss,
train_acc, val_acc, t (seconds since the loop started, read after each epoch's metrics reach the
host), and grok_epoch_99, seconds, compile_seconds (before the loop), device, jax.
"""
import argparse, json, time

import numpy as np
import jax
import jax.numpy as jnp
import optax

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=2000)
ap.add_argument("--seed", type=int, default=1337)
ap.add_argument("--out", default=None)
ap.add_argument("--quiet", action="store_true")
ap.add_argument("--p", type=int, default=113)
ap.add_argument("--hidden", type=int, default=100)
ap.add_argument("--train-fraction", type=float, default=0.8)
args = ap.parse_args()

p, h, bs = args.p, args.hidden, 128
np.random.seed(args.seed)
pairs = np.array([(a, b) for a in range(p) for b in range(p)], dtype=np.int32)
shuffle = np.random.permutation(p * p)
pairs = pairs[shuffle]
labels = (pairs[:, 0] + pairs[:, 1]) % p
n_train = int(args.train_fraction * p * p)
full = n_train // bs
train_a, train_b, train_y = pairs[:n_train, 0], pairs[:n_train, 1] + p, labels[:n_train]
val = (jnp.asarray(pairs[n_train:, 0]), jnp.asarray(pairs[n_train:, 1] + p), jnp.asarray(labels[n_train:]))
batches = tuple(jnp.asarray(x[:full * bs].reshape(full, bs)) for x in (train_a, train_b, train_y))
tail = tuple(jnp.asarray(x[full * bs:]) for x in (train_a, train_b, train_y))

k1, k2 = jax.random.split(jax.random.PRNGKey(args.seed))
params = {
    # Burn's layout: fc1 [2p, h] (rows are gathered), fc2 [h, p].
    "fc1": jax.random.uniform(k1, (2 * p, h), jnp.float32, -1, 1) / np.sqrt(2 * p),
    "fc2": jax.random.uniform(k2, (h, p), jnp.float32, -1, 1) / np.sqrt(h),
}
opt = optax.adamw(3e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.5)
state = opt.init(params)


def loss_and_hits(params, a, b, y):
    post = jax.nn.relu(params["fc1"][a] + params["fc1"][b])
    logits = post @ params["fc2"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.sum(jnp.argmax(logits, axis=1) == y)


def step(carry, batch):
    params, state = carry
    (loss, hits), grads = jax.value_and_grad(loss_and_hits, has_aux=True)(params, *batch)
    updates, state = opt.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), (loss, hits)


@jax.jit
def epoch(params, state):
    (params, state), (losses, hits) = jax.lax.scan(step, (params, state), batches)
    loss_sum, hit_sum = jnp.sum(losses), jnp.sum(hits)
    if len(tail[2]):
        (params, state), (loss, hit) = step((params, state), tail)
        loss_sum, hit_sum = loss_sum + loss, hit_sum + hit
    val_loss, val_hits = loss_and_hits(params, *val)
    return params, state, jnp.stack([loss_sum, hit_sum, val_loss, val_hits])


c0 = time.perf_counter()
epoch = epoch.lower(params, state).compile()
compile_seconds = time.perf_counter() - c0

steps = full + (1 if len(tail[2]) else 0)
log = {"epoch": [], "train_loss": [], "val_loss": [], "train_acc": [], "val_acc": [], "t": []}
grok = None
t0 = time.perf_counter()
for e in range(args.epochs):
    params, state, metrics = epoch(params, state)
    loss_sum, hit_sum, vl, vh = np.asarray(metrics)
    tl, ta, va = float(loss_sum) / steps, float(hit_sum) / n_train, float(vh) / len(val[2])
    t = time.perf_counter() - t0
    for k, v in zip(log, (e, tl, float(vl), ta, va, t)):
        log[k].append(v)
    if grok is None and va >= 0.99:
        grok = e
    if not args.quiet and (e % 50 == 0 or e == args.epochs - 1):
        print(f"epoch {e} train_loss {tl:.4g} val_loss {vl:.4g} train_acc {ta:.4f} val_acc {va:.4f} t {t:.1f}s", flush=True)
log["grok_epoch_99"] = grok
log["seconds"] = time.perf_counter() - t0
log["compile_seconds"] = compile_seconds
log["device"] = str(jax.devices()[0])
log["jax"] = jax.__version__
print(json.dumps({k: log[k] for k in ("grok_epoch_99", "seconds", "compile_seconds", "device", "jax")}))
if args.out:
    json.dump(log, open(args.out, "w"))

"""The seed notebook's training in PyTorch, faithful to it (one-hot inputs, `.item()` every step),
with timing and a JSON log: the reference our curves and times are compared with (docs/).
The step's parts are choices, as in `grokking::Method`, each written here to the semantics of its
authors' code (reproduced, not imported): StableMax cross-entropy and ⊥Grad as Prieto et al.'s
`stablemax_cross_entropy` and `OrthoGrad` (LucasPrietoAl/grokking-at-the-edge-of-numerical-stability),
the Grokfast filters as `gradfilter_ema` and `gradfilter_ma` (ironjr/grokfast); torch's own
`mse_loss`, `x**2`, `torch.optim.AdamW` and `torch.optim.SGD` for the rest.
Muon here takes each weight in Burn's shape [d_in, d_out], the transpose of torch's. Label noise draws from
the split's NumPy generator, as `ModularDataset::label_noise` does.

Usage: python reference/torch_train.py [--p P] [--hidden H] [--train-fraction F] [--epochs N]
           [--batch-size B] [--lr LR] [--weight-decay WD] [--seed S] [--device cpu|cuda]
           [--loss cross-entropy|stablemax|mse] [--activation relu|square]
           [--optimizer adamw|sgd|muon] [--beta1 B1] [--beta2 B2] [--momentum M] [--nesterov]
           [--grokfast-alpha A | --grokfast-window W] [--grokfast-lambda L] [--orthograd]
           [--label-noise XI] [--quiet] [--out log.json] [--save model.pth]

The JSON log has per-epoch lists epoch, train_loss, val_loss, train_acc, val_acc, t (seconds
since the loop started), and grok_epoch_99, seconds, device, torch, threads.
"""
import argparse, json, time
from collections import deque
import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=2000)
ap.add_argument("--seed", type=int, default=1337)
ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
ap.add_argument("--out", default=None)
ap.add_argument("--save", default=None)
ap.add_argument("--quiet", action="store_true")
ap.add_argument("--p", type=int, default=113)
ap.add_argument("--hidden", type=int, default=100)
ap.add_argument("--train-fraction", type=float, default=0.8)
ap.add_argument("--batch-size", type=int, default=128)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--weight-decay", type=float, default=0.5)
ap.add_argument("--loss", choices=["cross-entropy", "stablemax", "mse"], default="cross-entropy")
ap.add_argument("--activation", choices=["relu", "square"], default="relu")
ap.add_argument("--optimizer", choices=["adamw", "sgd", "muon"], default="adamw")
ap.add_argument("--beta1", type=float, default=0.9)
ap.add_argument("--beta2", type=float, default=0.999)
ap.add_argument("--momentum", type=float, default=None, help="SGD's (default 0) or Muon's (0.95)")
ap.add_argument("--nesterov", action="store_true")
ap.add_argument("--grokfast-alpha", type=float, default=None)
ap.add_argument("--grokfast-window", type=int, default=None)
ap.add_argument("--grokfast-lambda", type=float, default=None)
ap.add_argument("--orthograd", action="store_true")
ap.add_argument("--label-noise", type=float, default=0.0)
args = ap.parse_args()
assert args.grokfast_alpha is None or args.grokfast_window is None, "one Grokfast filter"

torch.manual_seed(args.seed)
np.random.seed(args.seed)
device = torch.device(args.device)
p = args.p
data_set = np.zeros((p * p, 2 * p))
labels = np.zeros((p * p, p))
for n1 in range(p):
    for n2 in range(p):
        data_set[n1 * p + n2][n1] = 1
        data_set[n1 * p + n2][n2 + p] = 1
        labels[n1 * p + n2][(n1 + n2) % p] = 1
shuffle = np.random.permutation(p * p)
data_set = data_set[shuffle]
labels = labels[shuffle]
n_train = int(args.train_fraction * p * p)
train_targets = np.argmax(labels[:n_train], axis=1)
if args.label_noise > 0:
    # The generator goes on from the split: which rows, then each one's offset from its truth.
    chosen = np.random.permutation(n_train)[:int(args.label_noise * n_train)]
    for row in chosen:
        train_targets[row] = (train_targets[row] + 1 + np.random.randint(0, p - 1)) % p
train_data = torch.from_numpy(data_set[:n_train]).float().to(device)
train_labels = torch.from_numpy(train_targets).to(device)
val_data = torch.from_numpy(data_set[n_train:]).float().to(device)
val_labels = torch.from_numpy(labels[n_train:]).float().to(device)


class MLP(torch.nn.Module):
    def __init__(self, i, h, o, square):
        super().__init__()
        self.fc1 = torch.nn.Linear(i, h, bias=False)
        self.fc2 = torch.nn.Linear(h, o, bias=False)
        self.square = square

    def forward(self, x):
        pre = self.fc1(x)
        post = pre ** 2 if self.square else torch.nn.functional.relu(pre)
        return self.fc2(post), pre, post


def stablemax_cross_entropy(logits, targets):
    """Prieto et al.'s: s(x) = x + 1 (x >= 0), 1 / (1 - x + 1e-30) below, in float64."""
    x = logits.to(torch.float64)
    s = torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)
    logprobs = torch.log(s / torch.sum(s, dim=-1, keepdim=True))
    return -torch.mean(torch.gather(logprobs, index=targets[:, None], dim=-1).to(torch.float64))


def loss_of(logits, targets):
    if args.loss == "stablemax":
        return stablemax_cross_entropy(logits, targets)
    if args.loss == "mse":
        one_hot = torch.nn.functional.one_hot(targets, p).to(logits.dtype)
        return torch.nn.functional.mse_loss(logits, one_hot)
    return torch.nn.functional.cross_entropy(logits, targets)


def grokfast_ema(model, grads, alpha, lamb):
    """ironjr/grokfast's gradfilter_ema: the average starts as the first gradient."""
    if grads is None:
        grads = {n: q.grad.data.detach() for n, q in model.named_parameters() if q.grad is not None}
    for n, q in model.named_parameters():
        if q.grad is not None:
            grads[n] = grads[n] * alpha + q.grad.data.detach() * (1 - alpha)
            q.grad.data = q.grad.data + grads[n] * lamb
    return grads


def grokfast_ma(model, grads, window, lamb):
    """ironjr/grokfast's gradfilter_ma (mean, warm-up): nothing until `window` gradients are held."""
    if grads is None:
        grads = {n: deque(maxlen=window) for n, q in model.named_parameters() if q.grad is not None}
    for n, q in model.named_parameters():
        if q.grad is not None:
            grads[n].append(q.grad.data.detach())
            if len(grads[n]) == window:
                avg = sum(grads[n]) / len(grads[n])
                q.grad.data = q.grad.data + avg * lamb
    return grads


def orthogonalise(params):
    """Prieto et al.'s OrthoGrad, per weight matrix, with their 1e-30 guards."""
    with torch.no_grad():
        for q in params:
            w, g = q.view(-1), q.grad.view(-1)
            proj = torch.dot(w, g) / (torch.dot(w, w) + 1e-30)
            g_orth = g - proj * w
            q.grad.copy_((g_orth * (g.norm(2) / (g_orth.norm(2) + 1e-30))).view_as(q.grad))


class BurnMuon(torch.optim.Optimizer):
    """Burn 0.21's Muon with its defaults: Nesterov momentum without dampening, five Newton-Schulz
    steps (3.4445, -4.775, 2.0315) on the update over max(Frobenius norm, 1e-7), transposed when
    it has more rows than columns, the learning rate times sqrt(max(1, d_in / d_out)), and the
    decoupled decay w * (1 - lr * wd); every weight in Burn's shape [d_in, d_out]."""

    def __init__(self, params, lr, momentum, weight_decay):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @staticmethod
    def zeropower(g):
        tall = g.shape[0] > g.shape[1]
        x = g.T if tall else g
        x = x / torch.sqrt((x ** 2).sum()).clamp_min(1e-7)
        a, b, c = 3.4445, -4.775, 2.0315
        for _ in range(5):
            gram = x @ x.T
            x = x * a + (gram * b + (gram @ gram) * c) @ x
        return x.T if tall else x

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for q in group["params"]:
                g = q.grad.T  # Burn's [d_in, d_out]
                state = self.state[q]
                v = g.clone() if "velocity" not in state else g + state["velocity"] * mu
                state["velocity"] = v
                x = self.zeropower(v * mu + g)
                ratio = max(1.0, g.shape[0] / g.shape[1]) ** 0.5
                w = q.T * (1 - lr * wd) - x * (lr * ratio)
                q.copy_(w.T)


model = MLP(2 * p, args.hidden, p, args.activation == "square").to(device)
if args.optimizer == "muon":
    opt = BurnMuon(model.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                   momentum=0.95 if args.momentum is None else args.momentum)
elif args.optimizer == "sgd":
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum or 0.0,
                          nesterov=args.nesterov, weight_decay=args.weight_decay)
else:
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2),
                            weight_decay=args.weight_decay)
if args.grokfast_alpha is not None:
    lamb = 2.0 if args.grokfast_lambda is None else args.grokfast_lambda
    grokfast = lambda grads: grokfast_ema(model, grads, args.grokfast_alpha, lamb)
elif args.grokfast_window is not None:
    lamb = 5.0 if args.grokfast_lambda is None else args.grokfast_lambda
    grokfast = lambda grads: grokfast_ma(model, grads, args.grokfast_window, lamb)
else:
    grokfast = None
filter_memory = None
bs = args.batch_size
log = {"epoch": [], "train_loss": [], "val_loss": [], "train_acc": [], "val_acc": [], "t": []}
t0 = time.perf_counter()
grok = None
for epoch in range(args.epochs):
    model.train()
    run = 0.0
    correct = 0
    total = 0
    for b in range(0, len(train_data), bs):
        opt.zero_grad()
        out, _, _ = model(train_data[b:b + bs])
        tgt = train_labels[b:b + bs]
        loss = loss_of(out, tgt)
        run += loss.item()
        preds = torch.argmax(out, axis=1)
        correct += (preds == tgt).sum().item()
        total += len(preds)
        loss.backward()
        if grokfast is not None:
            filter_memory = grokfast(filter_memory)
        if args.orthograd:
            orthogonalise(model.parameters())
        opt.step()
    model.eval()
    with torch.no_grad():
        out, _, _ = model(val_data)
        vt = torch.argmax(val_labels, axis=1)
        vl = loss_of(out, vt).item()
        va = (torch.argmax(out, axis=1) == vt).sum().item() / len(vt)
    tl = run / (len(train_data) / bs) if bs <= len(train_data) else run  # the notebook's mean
    ta = correct / total
    t = time.perf_counter() - t0
    for k, v in zip(log, (epoch, tl, vl, ta, va, t)):
        log[k].append(v)
    if grok is None and va >= 0.99:
        grok = epoch
    if not args.quiet and (epoch % 50 == 0 or epoch == args.epochs - 1):
        print(f"epoch {epoch} train_loss {tl:.4g} val_loss {vl:.4g} train_acc {ta:.4f} val_acc {va:.4f} t {t:.1f}s", flush=True)
log["grok_epoch_99"] = grok
log["seconds"] = time.perf_counter() - t0
log["device"] = str(device)
log["torch"] = torch.__version__
log["threads"] = torch.get_num_threads()
print(json.dumps({k: log[k] for k in ("grok_epoch_99", "seconds", "device", "torch", "threads")}))
print("final", {k: log[k][-1] for k in ("train_loss", "val_loss", "train_acc", "val_acc")})
if args.out:
    json.dump(log, open(args.out, "w"))
if args.save:
    torch.save(model.state_dict(), args.save)

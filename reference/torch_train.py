"""The seed notebook's training in PyTorch, faithful to it (one-hot inputs, `.item()` every step),
with timing and a JSON log: the reference our curves and times are compared with (docs/).

Usage: python reference/torch_train.py [--p P] [--hidden H] [--train-fraction F] [--epochs N]
           [--seed S] [--device cpu|cuda] [--quiet] [--out log.json] [--save model.pth]

The JSON log has per-epoch lists epoch, train_loss, val_loss, train_acc, val_acc, t (seconds
since the loop started), and grok_epoch_99, seconds, device, torch, threads.
"""
import argparse, json, time
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
args = ap.parse_args()

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
train_data = torch.from_numpy(data_set[:n_train]).float().to(device)
train_labels = torch.from_numpy(labels[:n_train]).float().to(device)
val_data = torch.from_numpy(data_set[n_train:]).float().to(device)
val_labels = torch.from_numpy(labels[n_train:]).float().to(device)


class MLP(torch.nn.Module):
    def __init__(self, i, h, o):
        super().__init__()
        self.fc1 = torch.nn.Linear(i, h, bias=False)
        self.fc2 = torch.nn.Linear(h, o, bias=False)

    def forward(self, x):
        pre = self.fc1(x)
        post = torch.nn.functional.relu(pre)
        return self.fc2(post), pre, post


model = MLP(2 * p, args.hidden, p).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.5)
loss_fn = torch.nn.CrossEntropyLoss()
bs = 128
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
        tgt = torch.argmax(train_labels[b:b + bs], axis=1)
        loss = loss_fn(out, tgt)
        run += loss.item()
        preds = torch.argmax(out, axis=1)
        correct += (preds == tgt).sum().item()
        total += len(preds)
        loss.backward()
        opt.step()
    model.eval()
    out, _, _ = model(val_data)
    vt = torch.argmax(val_labels, axis=1)
    vl = loss_fn(out, vt).item()
    va = (torch.argmax(out, axis=1) == vt).sum().item() / len(vt)
    tl = run / (len(train_data) / bs)
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

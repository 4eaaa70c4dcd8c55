"""Anchor for batched sweeps and stacked steps (docs/benchmarks.md): K notebook MLPs trained as one
program in PyTorch (fc1 as a gather, bmm, one AdamW over stacked weights; AdamW is elementwise, so
this equals K separate optimisers). Prints steps/s and model-steps/s for each K.

Usage: python reference/torch_ensemble.py --device cuda --ks 1,16,256 --steps 400"""
import argparse, time, torch
ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cuda")
ap.add_argument("--ks", default="1,16,256")
ap.add_argument("--steps", type=int, default=400)
a = ap.parse_args()
dev = torch.device(a.device)
p, h, bs = 113, 100, 128
n = p * p
for K in map(int, a.ks.split(",")):
    torch.manual_seed(0)
    ia = torch.randint(0, p, (K, n), device=dev); ib = torch.randint(0, p, (K, n), device=dev)
    y = (ia + ib) % p
    W1 = (torch.randn(K, 2 * p, h, device=dev) / (2 * p) ** 0.5).requires_grad_()
    W2 = (torch.randn(K, h, p, device=dev) / h ** 0.5).requires_grad_()
    opt = torch.optim.AdamW([W1, W2], lr=3e-3, weight_decay=0.5)
    def step(s):
        b = (s * bs) % (n - bs)
        xa = ia[:, b:b + bs]; xb = ib[:, b:b + bs] + p
        kk = torch.arange(K, device=dev)[:, None]
        pre = W1[kk, xa] + W1[kk, xb]
        logits = torch.bmm(torch.relu(pre), W2)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, p), y[:, b:b + bs].reshape(-1)) * K
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    for s in range(20): step(s)
    if dev.type == "cuda": torch.cuda.synchronize()
    t = time.perf_counter()
    for s in range(a.steps): step(s)
    if dev.type == "cuda": torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / a.steps
    print(f"K={K}: {dt*1e3:.3f} ms/step, {K/dt:.0f} model-steps/s", flush=True)

"""The LLC of snapshots by `analyze --llc` and by devinterp 2.0.1's own sampler
(`reference/llc_devinterp.py`), model by model, back to back on one machine: the table of
docs/llc.md.

For each snapshot file and epoch: the reference writes the snapshot's weights as a safetensors
model and samples them with devinterp; `analyze --checkpoint` samples the same model on the same
training rows (the run's operation, seed and train fraction given as flags) with the same
hyperparameters. Both chain counts and draws are the same; each side's standard error is the
chains' standard deviation (ddof 1) over the square root of their number, and `z` is the
difference over the two errors combined. devinterp's estimate is reported twice: as it computes
it (its L_init the mean of its first 32 minibatches) and recomputed from its own traces with the
L_init of all training rows, as ours is.

Usage: python3 scripts/llc_compare.py RUN_DIR:EPOCH[,EPOCH...] [RUN_DIR:...] [--chains 8]
           [--draws 1000] [--lr 1e-3] [--gamma 100] [--seed 100] [--out table.json]
Needs `cargo build --release --example analyze` and `pip install -r reference/requirements.txt`.
"""
import argparse, json, math, os, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("runs", nargs="+", help="RUN_DIR:EPOCH[,EPOCH...] (a grok run with snapshots)")
ap.add_argument("--chains", type=int, default=8)
ap.add_argument("--draws", type=int, default=1000)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--gamma", type=float, default=100.0)
ap.add_argument("--seed", type=int, default=100, help="both samplers' seed")
ap.add_argument("--out", default=None)
args = ap.parse_args()

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
analyze = os.path.join(root, "target/release/examples/analyze")
reference = os.path.join(root, "reference/llc_devinterp.py")
flags = ["--chains", str(args.chains), "--draws", str(args.draws), "--lr", str(args.lr),
         "--gamma", str(args.gamma), "--seed", str(args.seed)]


def sem(values):
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


assert args.chains >= 2, "a standard error needs two chains at least"


rows = []
with tempfile.TemporaryDirectory() as tmp:
    for spec in args.runs:
        run, epochs = spec.rsplit(":", 1)
        config = json.load(open(os.path.join(run, "config.json")))
        method = config.get("method") or {}
        # analyze samples a bare model file with the notebook's loss and activation.
        assert method.get("loss", "cross-entropy") == "cross-entropy", f"{run}: not cross-entropy"
        assert method.get("activation", "relu") == "relu", f"{run}: not ReLU"
        snapshots = os.path.join(run, "snapshots.safetensors")
        for epoch in [int(e) for e in epochs.split(",")]:
            model = os.path.join(tmp, f"model_{epoch}.safetensors")
            theirs_path = os.path.join(tmp, "theirs.json")
            subprocess.run([sys.executable, reference, snapshots, "--epoch", str(epoch),
                            "--save-model", model, "--out", theirs_path, *flags],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            theirs = json.load(open(theirs_path))
            out = os.path.join(tmp, f"ours_{epoch}")
            start = time.perf_counter()
            subprocess.run([analyze, "--checkpoint", model, "--out", out, "--force",
                            "--operation", config.get("operation") or "add",
                            "--seed", str(config["seed"]),
                            "--train-fraction", str(config["train_fraction"]), "--llc",
                            "--llc-chains", str(args.chains), "--llc-draws", str(args.draws),
                            "--llc-lr", str(args.lr), "--llc-gamma", str(args.gamma),
                            "--llc-seed", str(args.seed)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ours_wall = time.perf_counter() - start
            ours = json.load(open(os.path.join(out, "llc.json")))
            mine = [v for v in ours["llc_per_chain"] if v is not None]
            assert len(mine) >= 2, f"epoch {epoch}: {ours['warnings']}"
            dev = theirs["devinterp"]["llc_per_chain"]
            full = theirs["llc_per_chain"]
            row = {
                "operation": theirs["operation"], "epoch": epoch,
                "ours": [ours["llc_mean"], sem(mine)],
                "devinterp": [theirs["devinterp"]["llc_mean"], sem(dev)],
                "devinterp_full_init": [theirs["llc_mean"], sem(full)],
                "init_loss": [ours["init_loss"], theirs["devinterp"]["init_loss"],
                              theirs["full_init_loss"]],
                "seconds": {"ours_sampling": ours["seconds"], "ours_process": ours_wall,
                            "devinterp_sampling": theirs["seconds_sampling"],
                            "devinterp_process": theirs["seconds_total"]},
                "warnings": ours["warnings"],
            }
            for key in ("devinterp", "devinterp_full_init"):
                (a, sa), (b, sb) = row["ours"], row[key]
                row["z_" + key] = (a - b) / math.sqrt(sa * sa + sb * sb)
            rows.append(row)
            print(json.dumps(row), flush=True)

print()
print("| operation | epoch | ours λ̂ ± se | devinterp λ̂ ± se (its L_init) | devinterp ± se (all-rows L_init) "
      "| z | L_init ours / devinterp's | sampling s, ours / devinterp | process s, ours / devinterp |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    s = r["seconds"]
    print(f"| {r['operation']} | {r['epoch']} | {r['ours'][0]:.2f} ± {r['ours'][1]:.2f} "
          f"| {r['devinterp'][0]:.2f} ± {r['devinterp'][1]:.2f} "
          f"| {r['devinterp_full_init'][0]:.2f} ± {r['devinterp_full_init'][1]:.2f} "
          f"| {r['z_devinterp_full_init']:+.2f} | {r['init_loss'][0]:.4f} / {r['init_loss'][1]:.4f} "
          f"| {s['ours_sampling']:.2f} / {s['devinterp_sampling']:.1f} "
          f"| {s['ours_process']:.2f} / {s['devinterp_process']:.1f} |")
if args.out:
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)

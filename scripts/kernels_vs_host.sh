#!/usr/bin/env bash
# Each method's first 60 epochs on the CubeCL kernels (wgpu; lavapipe without a GPU) and on the
# host (flex), seed 1337, notebook shape; prints how close the validation curves are.
# Usage: cargo build --release --features wgpu --example grok && scripts/kernels_vs_host.sh [OUT]
set -euo pipefail
GROK=${GROK:-target/release/examples/grok}
OUT=${1:-runs/kernels-vs-host}
mkdir -p "$OUT"
while IFS='|' read -r name flags; do
  for backend in wgpu flex; do
    # shellcheck disable=SC2086
    "$GROK" --backend "$backend" --epochs 60 $flags --out "$OUT/$name-$backend" --force --no-report >/dev/null
  done
done <<'LIST'
grokfast-ema|--train-fraction 0.5 --weight-decay 0.3 --grokfast-alpha 0.98
grokfast-ma|--train-fraction 0.5 --weight-decay 0.3 --grokfast-window 100
orthograd-stablemax|--train-fraction 0.4 --weight-decay 0 --lr 0.01 --beta2 0.99 --orthograd --loss stablemax
square-mse|--activation square --loss mse
sgd-nesterov|--optimizer sgd --momentum 0.9 --nesterov --lr 0.1 --weight-decay 0.001
muon|--optimizer muon --lr 0.02 --weight-decay 0.1
LIST
python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
for name in ["grokfast-ema", "grokfast-ma", "orthograd-stablemax", "square-mse", "sgd-nesterov", "muon"]:
    a = list(csv.DictReader(open(f"{out}/{name}-wgpu/metrics.csv")))
    b = list(csv.DictReader(open(f"{out}/{name}-flex/metrics.csv")))
    gaps = [abs(float(x["val_acc"]) - float(y["val_acc"])) for x, y in zip(a, b)]
    print(f"{name}: {sum(g <= 0.02 for g in gaps) / len(gaps):.0%} of {len(gaps)} epochs within 0.02, "
          f"largest gap {max(gaps):.4f}, final {float(a[-1]['val_acc']):.4f} (kernels) "
          f"{float(b[-1]['val_acc']):.4f} (host)")
PY

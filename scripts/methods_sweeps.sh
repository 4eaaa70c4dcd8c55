#!/usr/bin/env bash
# The sweeps behind docs/methods.md's Gromov, Muon and Doshi et al. sections, seeds 1..8 each.
# Usage: scripts/methods_sweeps.sh [BIN] [OUT]   (BIN: the folder of release `sweep` and
#        `analyze`, default target/release/examples; OUT: default runs/methods). Then
#        python3 scripts/methods_stats.py OUT
set -euo pipefail
bin=${1:-target/release/examples}
out=${2:-runs/methods}
mkdir -p "$out"
# Gromov 2023: x² and MSE (AdamW, the notebook's other settings); every model analysed.
"$bin/sweep" --seeds 1..8 --activation square --loss mse --epochs 500 --save-models \
  --out "$out/gromov" --force
for i in 0 1 2 3 4 5 6 7; do
  "$bin/analyze" --checkpoint "$out/gromov/models/00000$i.safetensors" \
    --out "$out/gromov/analysis$i" --force > /dev/null
done
# Muon against AdamW (the notebook's setting; Muon at two learning rates with weight decay 0.1,
# then at lr 0.02 with weight decay 0.03 and 0.3).
"$bin/sweep" --seeds 1..8 --epochs 400 --out "$out/muon-adamw" --force
"$bin/sweep" --seeds 1..8 --optimizer muon --lr 0.02,0.05 --weight-decay 0.1 --epochs 400 \
  --out "$out/muon" --force
"$bin/sweep" --seeds 1..8 --optimizer muon --lr 0.02 --weight-decay 0.03,0.3 --epochs 400 \
  --out "$out/muon-grid" --force
# Doshi et al. 2024: label noise 0.1 and 0.3, without and with weight decay.
"$bin/sweep" --seeds 1..8 --label-noise 0.1,0.3 --weight-decay 0,0.5 --epochs 600 --save-models \
  --out "$out/doshi" --force
echo "done: $out"

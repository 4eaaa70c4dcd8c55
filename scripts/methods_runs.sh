#!/usr/bin/env bash
# The runs behind docs/methods.md: each method of the step on seeds 1..8, two runs at a time.
# Usage: scripts/methods_runs.sh [GROK] [OUT]   (GROK: a release `grok`, default
#        target/release/examples/grok; OUT: default runs/methods). Then
#        python3 scripts/methods_figures.py OUT docs/figures
set -euo pipefail
grok=${1:-target/release/examples/grok}
out=${2:-runs/methods}
seeds=$(seq 1 8)
jobs=()
# Grokfast on the slow-grokking run of docs/dynamics.md: 50% of the pairs, weight decay 0.3.
slow="--train-fraction 0.5 --weight-decay 0.3 --epochs 1500"
for seed in $seeds; do
  jobs+=("grokfast/baseline/$seed|$slow")
  jobs+=("grokfast/ema/$seed|$slow --grokfast-alpha 0.98")
  jobs+=("grokfast/ma/$seed|$slow --grokfast-window 100")
done
# Prieto et al.: 40% of the pairs, no weight decay, lr 0.01, beta2 0.99, full batches.
edge="--train-fraction 0.4 --weight-decay 0 --lr 0.01 --beta2 0.99 --batch-size 100000 --epochs 3000"
for seed in $seeds; do
  jobs+=("edge/adamw/$seed|$edge")
  jobs+=("edge/orthograd/$seed|$edge --orthograd")
  jobs+=("edge/stablemax/$seed|$edge --loss stablemax")
  jobs+=("edge/orthograd-stablemax/$seed|$edge --orthograd --loss stablemax")
done
run() {
  local name=${1%%|*} flags=${1#*|}
  local seed=${name##*/}
  # shellcheck disable=SC2086
  "$grok" $flags --seed "$seed" --threads 1 --no-report --force --out "$out/$name" \
    > "$out/$name.log" 2>&1 || echo "failed: $name (see $out/$name.log)"
}
export -f run
export grok out
for job in "${jobs[@]}"; do mkdir -p "$out/$(dirname "${job%%|*}")"; done
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c 'run "$@"' _ {}
echo "done: $out"

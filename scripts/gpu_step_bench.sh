#!/usr/bin/env bash
# The training step's GPU figures in one go (docs/benchmarks.md): on an NVIDIA machine, for
# wgpu and cuda, the kernels (`--engine fused`, the default) against the reference path
# (`--engine generic`) and PyTorch on the same card.
#
# Usage, on the GPU machine, from a folder holding release builds of `grok` and `throughput`
# (cargo build --release --features wgpu,vulkan,cuda --example grok --example throughput)
# and the repository's reference/ (torch_train.py and torch_ensemble.py):
#     scripts/gpu_step_bench.sh BIN_DIR TORCH_DIR OUT_DIR
# Writes OUT_DIR/bench.log (everything) and OUT_DIR/throughput.jsonl.
set -u
bin=$1 torch=$2 out=$3
log=$out/bench.log
mkdir -p "$out"
run() { echo "\$ $*" >>"$log"; "$@" >>"$log" 2>&1; echo "exit $?" >>"$log"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$log" 2>&1
tmp=$(mktemp -d)
for backend in wgpu cuda; do
  # Process start to the end of the first epoch: a fresh process, first on this machine (cold
  # caches), then again.
  for attempt in cold warm; do
    start=$EPOCHREALTIME
    run timeout 300 "$bin/grok" --backend "$backend" --epochs 1 --no-report --out "$tmp/first_${backend}_$attempt"
    awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$backend first_epoch_wall_s_$attempt" \
      'BEGIN { printf "RESULT %s %.2f\n", n, b - a }' >>"$log"
  done
  # Steady state of the default run's first 60 epochs; the curve goes in the log.
  run timeout 300 "$bin/grok" --backend "$backend" --epochs 60 --no-report --out "$tmp/g60_$backend"
  cat "$tmp/g60_$backend/metrics.csv" >>"$log"
  run timeout 400 "$bin/throughput" --backend "$backend" --ks 1,16,256,1024 --steps 300 --out "$out/throughput.jsonl"
done
# The reference path on wgpu, for before/after on the same card (cuda's autotuning takes ~70 s).
run timeout 300 "$bin/grok" --backend wgpu --engine generic --epochs 30 --no-report --out "$tmp/generic_wgpu"
cat "$tmp/generic_wgpu/metrics.csv" >>"$log"
run timeout 300 "$bin/throughput" --backend wgpu --engine generic --ks 1,256 --steps 100 --out "$out/throughput.jsonl"
# PyTorch on the same card.
run timeout 300 python3 "$torch/torch_train.py" --device cuda --epochs 60 --quiet --out "$out/torch60.json"
run timeout 300 python3 "$torch/torch_ensemble.py" --device cuda --ks 1,16,256,1024 --steps 300

# shellcheck shell=bash disable=SC2034
# The Slurm sweep's settings, written once and sourced by scripts/sweep_submit.sh,
# scripts/sweep_array.slurm and scripts/sweep_merge.slurm. TASKS is the number of slices (array
# tasks); OUT receives part0 .. part$((TASKS - 1)), the merged all/ and the Slurm logs.
# scripts/sweep_indexed_job.yaml spells the same grid for Kubernetes.
TASKS=16
OUT=runs/phase
GRID=(--seeds 1..8 --weight-decay "0.1,0.3,1,3" --train-fraction "0.3,0.4,0.5,0.6,0.8"
  --epochs 2000)

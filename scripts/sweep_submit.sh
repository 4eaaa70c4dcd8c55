#!/bin/bash
# Submits the Slurm sweep, after building once in the repository:
#   cargo build --release --example sweep   # add --features cuda for GPUs
#   scripts/sweep_submit.sh
# On GPUs: BACKEND=cuda scripts/sweep_submit.sh --gres=gpu:1
# 1. scripts/sweep_array.slurm, an array of TASKS tasks (scripts/sweep_grid.sh): training only.
# 2. scripts/sweep_merge.slurm, held until every task has succeeded (afterok on the array's id
#    waits for all its tasks): joins the parts into $OUT/all. One merge, whatever order the tasks
#    end in. If a task fails the merge never starts: scancel it, rerun the failed tasks
#    (scripts/sweep_array.slurm says how), then `sbatch scripts/sweep_merge.slurm`.
# Arguments go to the array's sbatch; options for both jobs through Slurm's input variables
# (SBATCH_ACCOUNT, SBATCH_PARTITION, ...). The jobs' logs are $OUT/slurm-*.out.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/sweep_grid.sh
source scripts/sweep_grid.sh
mkdir -p "$OUT" # Slurm opens the logs there and does not create folders.
jid=$(sbatch --parsable --array="0-$((TASKS - 1))" --output="$OUT/slurm-%A_%a.out" "$@" \
  scripts/sweep_array.slurm)
jid=${jid%%;*} # --parsable prints "id;cluster" on multi-cluster setups
mid=$(sbatch --parsable --dependency="afterok:$jid" --output="$OUT/slurm-merge-%j.out" \
  scripts/sweep_merge.slurm)
echo "training: array job $jid ($TASKS tasks); merge: job ${mid%%;*}, after all of them"

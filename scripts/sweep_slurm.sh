#!/usr/bin/env bash
# Write (and with --submit, submit) a SLURM job array for a sweep: one array task per point,
# each skipped when already finished, so resubmitting after a preemption is safe.
#   scripts/sweep_slurm.sh experiments/depth_transfer_b4/depth_lr.py --jobs 16 --sbatch=--time=0:30:00 --sbatch=--cpus-per-task=4
#   scripts/sweep_slurm.sh experiments/planned/width_lr/width_lr.py --nproc_per_node 8 --set device=cuda \
#       --sbatch=--gres=gpu:8 --sbatch=--cpus-per-task=32 --submit
# --jobs N caps the tasks running at once (the array's %N).
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 SWEEP_FILE [scripts/sweep.py options]" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
sweep_file=$1
shift
exec python scripts/sweep.py "$sweep_file" --slurm "$@"

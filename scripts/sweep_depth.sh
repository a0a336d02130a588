#!/usr/bin/env bash
# Depth transfer of the base LR (experiments/depth_transfer_b4/depth_lr.py), here on this machine; restartable.
#   scripts/sweep_depth.sh                      # one point at a time on all cores
#   scripts/sweep_depth.sh --jobs 2 --threads 2 # two points at a time, one thread each
#   nohup nice -n 10 scripts/sweep_depth.sh --threads 1 > runs/depth_lr/sweep.log 2>&1 &
# Extra arguments go to scripts/sweep.py (--dry_run, --set device=cuda, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python scripts/sweep.py experiments/depth_transfer_b4/depth_lr.py "$@"

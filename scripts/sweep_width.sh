#!/usr/bin/env bash
# Width transfer of the base LR (experiments/planned/width_lr/width_lr.py), here on this machine; restartable.
#   scripts/sweep_width.sh --dry_run
#   scripts/sweep_width.sh --set device=cuda --set compile=True   # on a GPU
# Extra arguments go to scripts/sweep.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python scripts/sweep.py experiments/planned/width_lr/width_lr.py "$@"

#!/usr/bin/env bash
# The single-GPU runs the committed evidence still lacks, most needed first, in one call that
# fits a short GPU lease. Each sweep starts from its committed results (finished points are
# skipped) and is stopped cleanly (SIGTERM: the sweep reaps its points, exit 4) when the time
# left runs out, so the same command continues where it stopped.
#   1. experiments/width_transfer_h200/width_lr_paper_h200.py: seed 2, seed 1's missing SP points, SP 2^-13/2^-14
#   2. experiments/planned/width_init_std_paper_h200/width_init_std_paper_h200.py: init std across width, seed 0 first
# Each sweep file's `results` is in its study folder, so the rows land there; then, here:
# python scripts/plot_transfer.py <that results.csv> ... (see each sweep file).
#   scripts/gpu_evidence.sh [SECONDS]     (default 480: stop starting work after 8 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-480}
if ! [[ "$budget" =~ ^[0-9]+$ ]]; then
    echo "error: SECONDS must be a whole number of seconds, e.g. scripts/gpu_evidence.sh 480" >&2; exit 2
fi
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no CUDA device here; scripts/gpu_evidence.sh runs the GPU sweeps on a GPU machine" >&2; exit 2
fi
end=$(( $(date +%s) + budget ))
gpu=(--jobs 10 --threads 10 --set device=cuda --set compile=False --set dtype=float32)
mkdir -p runs/width_lr_paper_h200 runs/width_init_std_paper_h200
[ -f runs/width_lr_paper_h200/results.csv ] || cp experiments/width_transfer_h200/results.csv runs/width_lr_paper_h200/
[ -f experiments/planned/width_init_std_paper_h200/results.csv ] && [ ! -f runs/width_init_std_paper_h200/results.csv ] \
    && cp experiments/planned/width_init_std_paper_h200/results.csv runs/width_init_std_paper_h200/results.csv
for sweep in experiments/width_transfer_h200/width_lr_paper_h200.py experiments/planned/width_init_std_paper_h200/width_init_std_paper_h200.py; do
    left=$(( end - $(date +%s) ))
    if [ "$left" -lt 30 ]; then echo "gpu_evidence: out of time before $sweep"; break; fi
    echo "gpu_evidence: $sweep, ${left}s left"
    timeout -s TERM -k 60 "$left" python scripts/sweep.py "$sweep" "${gpu[@]}"
    echo "gpu_evidence: $sweep exit $?"
done

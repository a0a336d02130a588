#!/usr/bin/env bash
# Coordinate checks of docs/parameterization.md section 5 with the authors' settings (Dey et al.,
# arXiv 2505.01618): char-level Shakespeare, head size 64, 8 x 1024 tokens per step, AdamW
# (betas 0.9/0.95, WD 0.1, eps 1e-12, clip 1.0), fp32, 10 steps, 3 seeds.
#   depth: width 256, depths 2..64 (base 2), LR 1e-3, mup vs depth_mup vs completep
#   width: depth 2, widths 256..4096 (base 256), LR 1e-2, sp vs mup vs depth_mup vs completep
# GPU-sized (hours on a CPU). For a CPU in a minute or two: scripts/coord_check.sh --small
# Extra arguments go to both sweeps, e.g. --seq_len 256 --batch 4.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f data/shakespeare_char/train.bin ] || python data/shakespeare_char/prepare.py
python scripts/coord_check.py --sweep depth "$@"
python scripts/coord_check.py --sweep width "$@"

#!/usr/bin/env bash
# One command for the GPU path (bench bf16 + compile, training, resume, nccl DDP, FSDP2) with a
# report; see scripts/gpu_check.py. On a machine without CUDA it stops with one error line.
#   scripts/gpu_check.sh [--out experiments/gpu_check/<gpu>.md]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python scripts/gpu_check.py "$@"

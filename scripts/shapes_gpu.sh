#!/usr/bin/env bash
# GPU scale of the compute-efficiency study (scripts/shapes.py; the CompleteP paper's Figure 1,
# arXiv 2505.01618) on one 8-GPU node: non-embedding budgets of 10M and 50M parameters, shapes
# from 2 to 64 layers (N:L from ~320 down to 2-4), 20 tokens per parameter, the paper's proxy
# settings (config/gpt2_proxy.py: base 2 x 256, head size 64, context 1024, weight decay 0, eps
# 1e-12, 10% warmup then linear decay to zero), each parameterization at its 2-layer optimum from
# experiments/planned/depth_lr_gpu/depth_lr_gpu.py (set LRS below to that sweep's results; 2^-8 is the paper's
# neighbourhood), one point per GPU. Restartable: finished points are skipped.
# Set the base init std too: run experiments/planned/depth_init_std_gpu/depth_init_std_gpu.py first, put its best 2-layer
# init_std in a config file and pass INIT_CONFIG=that_file (read after config/gpt2_proxy.py;
# results in runs/shapes_gpu_init unless OUT is set). config/gpt2_proxy.py's 0.02 is 1.6 octaves
# below 1/sqrt(256), and on the CPU the study was rerun at its tuned init for that reason
# (config/transfer_paper_init.py, experiments/shapes).
#   python data/openwebtext/prepare.py
#   scripts/shapes_gpu.sh                 # add --dry_run to list the shapes and points
# Cost (an estimate from the FLOP count at 40% of an H100's bf16 peak, not a measurement): a
# 50M-parameter point trains 1B tokens in ~30 min; 36 points, ~10 GPU-hours, ~1.5 hours here.
set -euo pipefail
cd "$(dirname "$0")/.."
LRS=${LRS:-"sp=2**-8,mup=2**-8,completep=2**-8"}
GPUS=${GPUS:-0,1,2,3,4,5,6,7}
BASE=config/gpt2_proxy.py${INIT_CONFIG:+,$INIT_CONFIG}
OUT=${OUT:-runs/shapes_gpu${INIT_CONFIG:+_init}}   # another init is another study: its own folder
python scripts/shapes.py run --base_config "$BASE" --head_size 32 --budgets 10000000 \
    --depths 2,4,8,16,32,64 --lr "$LRS" --out_root "$OUT" --gpus "$GPUS" "$@"
python scripts/shapes.py run --base_config "$BASE" --head_size 64 --budgets 50000000 \
    --depths 2,4,8,16,32,64 --lr "$LRS" --out_root "$OUT" --gpus "$GPUS" "$@"
[[ " $* " == *" --dry_run "* ]] && exit 0
python scripts/shapes.py analyze "$OUT/results.csv" --block_size 1024 --out "experiments/$(basename "$OUT")/shapes"

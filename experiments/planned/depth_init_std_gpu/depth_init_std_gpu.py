# GPU scale of experiments/depth_init_std/depth_init_std_paper.py: depth transfer of the base init std at
# the CompleteP paper's proxy (config/gpt2_proxy.py: base 2 x 256, head size 64, 300M tokens at
# every depth, the paper's optimizer settings), depths 2..128, init_std 2^-8..2^-2 at the base
# LR 2^-8 (replace it with depth_lr_gpu.py's 2-layer optimum), three seeds. The CPU sweep put
# the 64-wide optimum at 2^-3 = 1/sqrt(64) for every depth, so this grid is centred near
# 1/sqrt(256) = 2^-4 and reaches 2^-2.
#   python scripts/sweep.py experiments/planned/depth_init_std_gpu/depth_init_std_gpu.py --gpus 0,1,2,3,4,5,6,7
#   python scripts/plot_transfer.py experiments/planned/depth_init_std_gpu/results.csv --x init_std \
#       --out experiments/planned/depth_init_std_gpu/depth_init_std
# 441 points, ~95 GPU-hours (the same estimate as depth_lr_gpu.py).
base_config = "config/gpt2_proxy.py"
results = "experiments/planned/depth_init_std_gpu/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16, 32, 64, 128]
init_std = [2.0 ** -k for k in (5, 7, 3, 8, 6, 4, 2)]
learning_rate = 2 ** -8
seed = [0, 1, 2]
save_checkpoints = False
eval_interval = 1000000
order = ["seed", "n_layer", "parameterization", "init_std"]

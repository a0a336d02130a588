# experiments/depth_transfer_init0.02/depth_lr_paper.py again at the base init std that experiments/depth_init_std/depth_init_std_paper.py
# found best at every depth (2^-3 = 1/sqrt(64) at the 64-wide base; the LR sweeps had used 0.02,
# about 2.5 octaves below it). Same settings, depths and LR grid; seeds 0, 1, 2 (seed outermost,
# so a partial run is one complete seed first). Does the LR verdict change at a tuned init?
# 216 points; ~1.5 core-hours a seed on this CPU.
#   nice python scripts/sweep.py experiments/depth_transfer/depth_lr_paper_init.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/depth_transfer/results.csv --out experiments/depth_transfer/depth_lr
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6, 7, 5, 8, 4, 9)]
init_std = 2.0 ** -3
seed = [0, 1, 2]
order = ["seed", "n_layer", "parameterization", "learning_rate"]

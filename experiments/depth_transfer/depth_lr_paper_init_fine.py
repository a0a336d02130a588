# The second pass of experiments/depth_transfer/depth_lr_paper_init.py (LR across depth at init std 2^-3):
# half-octave LR points between the coarse pass's octaves where its optima fell (seed 0: every
# curve's best grid point is 2^-7 or 2^-6), the same settings, depths and seeds, and the same
# points experiments/depth_transfer_init0.02/depth_lr_paper_fine.py added at init 0.02. Same name and out_root as the
# coarse pass, so both write one results file and plot_transfer.py fits the five-point parabola
# (--window 2, as for the init-0.02 sweep) on the merged grid, as a check of the coarse pass's
# three-point fit, which is the reported result.
# 108 points; ~2.2 core-hours on this CPU. Run after the coarse pass.
#   python scripts/sweep.py experiments/depth_transfer/depth_lr_paper_init_fine.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/depth_transfer/results.csv --window 2 --out experiments/depth_transfer/depth_lr_fine
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer/results.csv"  # rows land here; the runs under runs/<name>
name = "depth_lr_paper_init"
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6.5, 5.5, 7.5)]
init_std = 2.0 ** -3
seed = [0, 1, 2]
order = ["seed", "n_layer", "parameterization", "learning_rate"]

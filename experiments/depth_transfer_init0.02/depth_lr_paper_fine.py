# The second pass of experiments/depth_transfer_init0.02/depth_lr_paper.py: half-octave LR points between the coarse
# pass's octaves where its optima fell (seed 0: every curve's best grid point is 2^-7, 2^-6 or
# 2^-5), the same settings, depths and seeds. Same name and out_root as the coarse pass, so both
# write one results file and plot_transfer.py fits the parabola on the merged, finer grid.
# 108 points; ~1.5 core-hours on this CPU. Run after the coarse pass.
#   python scripts/sweep.py experiments/depth_transfer_init0.02/depth_lr_paper_fine.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/depth_transfer_init0.02/results.csv --out experiments/depth_transfer_init0.02/depth_lr
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer_init0.02/results.csv"  # rows land here; the runs under runs/<name>
name = "depth_lr_paper"
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6.5, 7.5, 5.5)]
seed = [0, 1, 2]
order = ["seed", "n_layer", "parameterization", "learning_rate"]

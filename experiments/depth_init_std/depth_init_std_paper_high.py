# The upper extension of experiments/depth_init_std/depth_init_std_paper.py: its seed 0 put every curve's
# optimum at the grid's top (2^-3), so init_std 2^-2 and 2^-1 are added, seed 0 first. Same
# name, so both passes write one results file and plot_transfer.py fits the merged grid.
# 72 points (24 per seed); ~0.4 core-hours a seed on this CPU.
#   python scripts/sweep.py experiments/depth_init_std/depth_init_std_paper_high.py --jobs 2 --threads 2
base_config = "config/transfer_paper.py"
results = "experiments/depth_init_std/results.csv"  # rows land here; the runs under runs/<name>
name = "depth_init_std_paper"
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16]
init_std = [2.0 ** -2, 2.0 ** -1]
learning_rate = 2 ** -6
seed = [0, 1, 2]
order = ["seed", "n_layer", "parameterization", "init_std"]

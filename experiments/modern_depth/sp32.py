# 32 layers for the SP arm of experiments/modern_depth (sp.py ran 2-16): the octaves around SP's
# optimum (2^-7 best on the grid at 2, 4 and 16 layers) at sp.py's settings exactly; its rows land
# in sp.py's results file. 9 points, ~0.9 core-hours on this CPU.
#   nice python scripts/sweep.py experiments/modern_depth/sp32.py --jobs 2 --threads 1
#   python scripts/plot_transfer.py experiments/modern_depth/sp_results.csv --out /tmp/modern_sp
base_config = ["config/transfer_paper.py", "config/modern.py"]
results = "experiments/modern_depth/sp_results.csv"
parameterization = "sp"
n_layer = 32
learning_rate = [2.0 ** -k for k in (7, 6, 8)]
init_std = 2.0 ** -3
seed = [0, 1, 2]
order = ["seed", "learning_rate"]

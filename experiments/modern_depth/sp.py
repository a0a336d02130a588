# The SP arm of experiments/modern_depth (the modern block across depth): lr.py's grid for
# parameterization sp, at SP's own base init std. init_std.py found SP flat from 2^-6 to 2^-3 at
# the base shape and worse at lr.py's 2^-2.5 side (2^-2: +0.020 over 2^-3), so SP runs at 2^-3,
# inside its flat region (the GPT-2 block's study ran SP at its completep init, 2^-3, too). Its
# own results file: the init differs from lr.py's arms. 72 points; ~0.6 core-hours a seed.
#   nice python scripts/sweep.py experiments/modern_depth/sp.py --jobs 2 --threads 1
#   python scripts/plot_transfer.py experiments/modern_depth/sp_results.csv --out /tmp/modern_sp
base_config = ["config/transfer_paper.py", "config/modern.py"]  # lr.py's settings and block
results = "experiments/modern_depth/sp_results.csv"  # rows land here; the runs under runs/<name>
name = "modern_depth_sp"
parameterization = "sp"
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6, 7, 5, 8, 4, 9)]
init_std = 2.0 ** -3
seed = [0, 1, 2]
order = ["seed", "n_layer", "learning_rate"]

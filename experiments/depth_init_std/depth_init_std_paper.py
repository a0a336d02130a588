# Depth transfer of the base init std with the paper's optimizer settings
# (config/transfer_paper.py): sp, mup and completep at depths 2..16 (base depth 2, width 64),
# init_std 2^-9..2^-3 at a fixed base LR of 2^-6 (near the 2-layer optimum of
# experiments/depth_transfer_init0.02/depth_lr_paper.py; update it when that sweep has settled), three seeds.
# 252 points; ~4 core-hours on this CPU. Run after depth_lr_paper.py.
base_config = "config/transfer_paper.py"
results = "experiments/depth_init_std/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16]
init_std = [2.0 ** -k for k in (6, 8, 4, 9, 7, 5, 3)]
learning_rate = 2 ** -6
seed = [0, 1, 2]
order = ["seed", "n_layer", "parameterization", "init_std"]

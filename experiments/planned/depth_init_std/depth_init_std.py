# Depth transfer of the base init std: completep and mup at depths 2..16 (base depth 2,
# width 64), init_std 2^-8..2^-2 at the base LR of config/transfer_base.py, two seeds.
# 112 points; not run yet, about 15 min per seed on one CPU core (estimated from depth_lr).
base_config = "config/transfer_base.py"
results = "experiments/planned/depth_init_std/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["mup", "completep"]
n_layer = [2, 4, 8, 16]
init_std = [2.0 ** -k for k in range(8, 1, -1)]
seed = [0, 1]
order = ["seed", "n_layer", "parameterization", "init_std"]

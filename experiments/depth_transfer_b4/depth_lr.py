# Depth transfer of the base LR (docs/parameterization.md section 5): sp, mup and completep at depths 2..16 (base depth
# 2, width 64), LR 2^-12..2^-4, two seeds. Seed 0 of every point comes first, depth 16 last
# within a seed, and within a depth the LRs go coarse to fine (2^-8, 2^-6, 2^-10, ...) for all
# three parameterizations at once, so a partial sweep is still a usable picture.
# 216 points, about 27 min per seed on one CPU core (experiments/depth_transfer_b4/).
base_config = "config/transfer_base.py"
results = "experiments/depth_transfer_b4/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["sp", "mup", "completep"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (8, 6, 10, 4, 12, 7, 9, 5, 11)]
seed = [0, 1]
order = ["seed", "n_layer", "learning_rate", "parameterization"]  # outermost first

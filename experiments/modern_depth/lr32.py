# 32 layers for experiments/modern_depth (the modern block across depth; lr.py ran 2-16): the two
# arms of the question, depth_mup (alpha = 1/2) and completep (alpha = 1), each on the octaves
# around its 16-layer optimum (README section 2: depth_mup 2^-4.83, completep 2^-5.88) plus the
# 2-layer LR 2^-6, so its cost at 32 layers is measured on the grid and the fit has a neighbour on
# each side. lr.py's settings exactly (the same base configs, block and init std); its rows land
# in lr.py's results file, so plot_transfer fits 2-32 layers from one file. mup is left out (its
# optimum held at 2^-6 to 16 layers; the question is alpha). 21 points; a 32-layer point takes
# ~370 s on one core of this CPU: ~2.2 core-hours.
#   nice python scripts/sweep.py experiments/modern_depth/lr32.py --jobs 2 --threads 1
#   python scripts/plot_transfer.py experiments/modern_depth/lr_results.csv --out /tmp/modern_lr
base_config = ["config/transfer_paper.py", "config/modern.py"]  # lr.py's settings and block
results = "experiments/modern_depth/lr_results.csv"
n_layer = 32
init_std = 2.0 ** -2.5
seed = [0, 1, 2]
_LRS = {"depth_mup": (5, 4, 6, 3), "completep": (6, 5, 7)}  # -log2(lr), nearest the optimum first
points = [dict(parameterization=p, learning_rate=2.0 ** -k) for p, ks in _LRS.items() for k in ks]
order = ["seed", "points"]

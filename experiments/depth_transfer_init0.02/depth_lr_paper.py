# Depth transfer of the base LR with the paper's optimizer settings (config/transfer_paper.py):
# sp, mup and completep at depths 2..16 (base depth 2, width 64), 2^20 tokens for every depth,
# a coarse octave pass of the LR 2^-9..2^-4, three seeds. Seed is the outermost axis, so each
# finished seed is a usable grid; half-octave points around each optimum come in a second file.
# 216 points; about 4 min of one core per (parameterization, LR, seed) over the four depths,
# ~3.6 core-hours in all.
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer_init0.02/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6, 8, 4, 9, 7, 5)]
seed = [0, 1, 2]
order = ["seed", "n_layer", "parameterization", "learning_rate"]  # outermost first

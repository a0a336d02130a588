# Why does SP, tuned on the 2 x 64 proxy, beat muP at the small budgets of experiments/shapes
# and lose at the large one? At 2 layers (where completep is mup) its lead is +0.118 at 2 x 48
# (50k budget, 1.13M tokens) and -0.051 at 2 x 88 (200k, 3.77M tokens): the width and the
# training length change together. This crosses them: both widths, and the proxy's own width
# 64 between them, at both lengths, with the settings of the shapes study (its proxy configs,
# init 2^-3, LR 2^-6, head size 8) and its seeds. The 48-wide short and 88-wide long cells
# repeat the shapes study's runs (a check that they reproduce).
# 36 points; ~0.9 core-hours on this CPU.
#   nice python scripts/sweep.py experiments/shapes/shapes_width_length.py --jobs 2 --threads 2
base_config = "config/transfer_paper.py"
results = "experiments/shapes/width_length_results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["sp", "mup"]
n_layer = 2
learning_rate = 2.0 ** -6
init_std = 2.0 ** -3             # config/transfer_paper_init.py's one change, as in the shapes runs
points = [dict(n_embd=48, n_head=6, max_tokens=1132800), dict(n_embd=48, n_head=6, max_tokens=3766400),
          dict(n_embd=64, n_head=8, max_tokens=1132800), dict(n_embd=64, n_head=8, max_tokens=3766400),
          dict(n_embd=88, n_head=11, max_tokens=1132800), dict(n_embd=88, n_head=11, max_tokens=3766400)]
save_checkpoints = False
eval_interval = 10 ** 9
sample_tokens = 0
seed = [0, 1, 2]
order = ["seed", "points", "parameterization"]

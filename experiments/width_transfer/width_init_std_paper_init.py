# Width transfer of the base init std on this CPU, the companion of
# experiments/width_transfer/width_lr_paper_init.py (the same models and settings: the paper's AdamW settings,
# 2^20 tokens at every width, the base depth 2, widths 64, 128 and 256, 2 heads). init_std is the
# base std: muP scales the hidden weights' std by 1/sqrt(m_N) from it, SP uses it unchanged at
# every width, so SP's optimum is expected to fall about half an octave per doubling of width
# and muP's to hold. Every other hyperparameter stays at the proxy's tuned value, as a user
# transferring from the proxy would set it: LR 2^-6 for both (the 2 x 64 optimum of muP and SP
# on the octave grid, and the LR of the depth init-std sweep, experiments/depth_init_std/depth_init_std_paper.py,
# whose 2 x 64 points these repeat). The grid, 2^-6..2^-1, spans the 2 x 64 optimum (2^-3) by
# three octaves below and two above.
# Seed outermost: a partial grid is a usable one. 108 points; ~2.2 core-hours on this CPU.
#   nice python scripts/sweep.py experiments/width_transfer/width_init_std_paper_init.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/width_transfer/init_std_results.csv --x init_std --by n_embd \
#       --out experiments/width_transfer/width_init_std
base_config = "config/transfer_paper.py"
results = "experiments/width_transfer/init_std_results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["mup", "sp"]
n_embd = [64, 128, 256]
init_std = [2.0 ** -k for k in (3, 4, 2, 5, 1, 6)]
learning_rate = 2.0 ** -6
seed = [0, 1, 2]
order = ["seed", "n_embd", "parameterization", "init_std"]

# experiments/width_transfer/width_lr_paper_init.py extended to 512 wide (8x the base width, m_N = 8): the
# same settings (init std 2^-3, the paper's optimizer settings, 2^20 tokens at every width, the
# base depth 2, 2 heads) and seeds. muP at the three octaves around its optimum, which was 2^-6
# at 64, 128 and 256 wide on every seed; SP at the three octaves around where its drift
# (-1.32 octaves per doubling, optimum 2^-9.1 at 256 wide) puts its 512-wide optimum, and at
# the proxy's LR 2^-6 for the cost of transferring it. Same name and out_root as the 64-256 wide
# sweep, so both write one results file and plot_transfer.py fits the drift over 64 to 512 wide.
# Seed outermost: a partial grid is a usable one. 21 points; 3.1 core-hours on this CPU as run
# (a 512-wide point ~530 s on one thread; experiments/width_transfer).
#   nice python scripts/sweep.py experiments/width_transfer/width_lr_paper_init_512.py --jobs 2 --threads 2
base_config = "config/transfer_paper.py"
results = "experiments/width_transfer/results.csv"  # rows land here; the runs under runs/<name>
name = "width_lr_paper_init"
n_embd = [512]
init_std = 2.0 ** -3
points = ([dict(parameterization="mup", learning_rate=2.0 ** -k) for k in (6, 7, 5)]
          + [dict(parameterization="sp", learning_rate=2.0 ** -k) for k in (10, 9, 11, 6)])
seed = [0, 1, 2]
order = ["seed", "n_embd", "points"]

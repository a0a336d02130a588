# experiments/width_transfer/width_init_std_paper_init.py extended to 512 wide (8x the base width) for muP: the
# same settings (LR 2^-6, the paper's optimizer settings, 2^20 tokens, the base depth 2, 2 heads)
# and seeds, at the three octaves around muP's init optimum, which was 2^-3 at 64, 128 and 256
# wide on every seed. SP is not extended: at 256 wide and the proxy's LR it already ended at or
# above the bigram loss for every init on the grid (experiments/width_transfer).
# Same name and out_root as the 64-256 wide sweep, so both write one results file.
# Seed outermost: a partial grid is a usable one. 9 points; measured 1.46 core-hours on the
# shared 2-core CPU (a 512-wide point ~540 s on one thread, two at a time).
#   nice python scripts/sweep.py experiments/width_transfer/width_init_std_paper_init_512.py --jobs 2 --threads 2
base_config = "config/transfer_paper.py"
results = "experiments/width_transfer/init_std_results.csv"  # rows land here; the runs under runs/<name>
name = "width_init_std_paper_init"
parameterization = ["mup"]
n_embd = [512]
init_std = [2.0 ** -k for k in (3, 4, 2)]
learning_rate = 2.0 ** -6
seed = [0, 1, 2]
order = ["seed", "n_embd", "parameterization", "init_std"]

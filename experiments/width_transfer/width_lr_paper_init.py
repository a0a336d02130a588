# Width transfer of the base LR on this CPU, at the depth study's tuned settings: the models and
# optimizer of experiments/depth_transfer/depth_lr_paper_init.py (the paper's AdamW settings, 2^20 tokens at
# every width, base init std 2^-3, the 2 x 64 optimum of experiments/depth_init_std/depth_init_std_paper.py)
# at the base depth 2, widths 64, 128 and 256 (m_N up to 4), 2 heads, three seeds. The companion
# of the H200 width sweep (experiments/width_transfer_h200/width_lr_paper_h200.py: the default init, 64..2048 wide,
# two seeds), narrower and with the tuned init, complete on every seed.
# Each parameterization spans its own octaves: muP 2^-9..2^-4 around its 2 x 64 optimum
# (2^-6.5 at this init in the depth sweep); SP 2^-11..2^-5, since its optimum is expected to
# fall about an octave per doubling of width from 2^-6.3 at 64 wide.
# completep is not run: at the base depth it is the same model as mup, parameter for parameter
# and group for group (tests/test_model.py). Seed outermost: a partial grid is a usable one.
# 117 points; 2.5 core-hours on this CPU as run (one thread: ~23 s at 64 wide, ~52 s at 128,
# ~150 s at 256; experiments/width_transfer).
#   nice python scripts/sweep.py experiments/width_transfer/width_lr_paper_init.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/width_transfer/results.csv --by n_embd \
#       --out experiments/width_transfer/width_lr
base_config = "config/transfer_paper.py"
results = "experiments/width_transfer/results.csv"  # rows land here; the runs under runs/<name>
n_embd = [64, 128, 256]
init_std = 2.0 ** -3
points = ([dict(parameterization="mup", learning_rate=2.0 ** -k) for k in (6, 7, 5, 8, 4, 9)]
          + [dict(parameterization="sp", learning_rate=2.0 ** -k) for k in (6, 7, 8, 9, 5, 10, 11)])
seed = [0, 1, 2]
order = ["seed", "n_embd", "points"]

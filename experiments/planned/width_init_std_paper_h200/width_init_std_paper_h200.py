# Width transfer of the base init std, the companion of experiments/width_transfer_h200/width_lr_paper_h200.py
# (the same models, settings and widths 64..2048 at the base depth 2, 2^20 tokens at every
# width), sized for one GPU. init_std is the base std: muP scales the hidden weights' std by
# 1/sqrt(m_N) from it, SP uses it at every width, so SP's optimum is expected to fall about half
# an octave per doubling of width and muP's to hold. The depth sweep on the CPU put the 64-wide
# optimum near 2^-3 (experiments/depth_init_std/depth_init_std_paper.py), so the grid is 2^-7..2^-1.
# The LR is fixed per parameterization: muP at its 64-wide optimum (2^-5, the width sweep's best
# grid point there); SP at 2^-10, the one grid LR that trains at every width in the width
# sweep (SP's own optimum falls 1.4 octaves per doubling of width, so no single LR is near it
# everywhere; an init-std optimum read at a fixed LR is the muTransfer protocol).
# Seed outermost: a partial grid is a usable one. 252 points; one seed ~3-4 minutes of an H200
# at 10 points at a time (the width LR sweep's per-point times).
#   python scripts/sweep.py experiments/planned/width_init_std_paper_h200/width_init_std_paper_h200.py --jobs 10 --threads 10 \
#       --set device=cuda --set compile=False --set dtype=float32
#   python scripts/plot_transfer.py experiments/planned/width_init_std_paper_h200/results.csv --x init_std --by n_embd \
#       --out experiments/planned/width_init_std_paper_h200/width_init_std
base_config = "config/transfer_paper.py"
results = "experiments/planned/width_init_std_paper_h200/results.csv"  # rows land here; the runs under runs/<name>
n_embd = [64, 128, 256, 512, 1024, 2048]
points = [dict(parameterization="mup", learning_rate=2.0 ** -5), dict(parameterization="sp", learning_rate=2.0 ** -10)]
init_std = [2.0 ** -k for k in (3, 5, 1, 7, 4, 2, 6)]
seed = [0, 1, 2]
order = ["seed", "n_embd", "points", "init_std"]

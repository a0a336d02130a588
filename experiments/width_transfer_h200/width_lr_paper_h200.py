# Width transfer of the base LR with the paper's optimizer settings (config/transfer_paper.py),
# sized for one GPU: experiments/planned/width_lr_paper/width_lr_paper.py's models (base 2 x 64, depth 2 = the base
# depth, 2 heads, so the head size grows with width and muP's 1/d_head attention matters) at
# widths 64..2048 (m_N up to 32), 2^20 tokens at every width (1,024 steps of 8 x 128, the
# depth sweep's budget), three seeds. Each parameterization gets its own LR grid: SP's optimum
# is expected to fall about an octave per doubling of width, so its grid reaches 2^-12 (2^-13 and
# 2^-14 added after seeds 0 and 1 put the 1024- and 2048-wide optima at 2^-12, the edge); muP's
# spans 2^-9..2^-3 around its 2-layer optimum (~2^-5.3 in experiments/depth_transfer_init0.02/depth_lr_paper.py).
# completep is not run: at the base depth it is the same model as mup, parameter for parameter
# and group for group (tests/test_model.py). Seed is the outermost axis: a partial grid is a
# usable one. 324 points.
# Run on one GPU, many points at once (the models are small: launch-bound, not FLOP-bound);
# float32 (TF32 matmuls) and no torch.compile, whose start-up would dominate a point:
#   python scripts/sweep.py experiments/width_transfer_h200/width_lr_paper_h200.py --jobs 8 --threads 8 \
#       --set device=cuda --set compile=False --set dtype=float32
#   python scripts/plot_transfer.py experiments/width_transfer_h200/results.csv --by n_embd \
#       --out experiments/width_transfer_h200/width_lr
base_config = "config/transfer_paper.py"
results = "experiments/width_transfer_h200/results.csv"  # rows land here; the runs under runs/<name>
n_embd = [64, 128, 256, 512, 1024, 2048]
points = ([dict(parameterization="mup", learning_rate=2.0 ** -k) for k in (3, 4, 5, 6, 7, 8, 9)]
          + [dict(parameterization="sp", learning_rate=2.0 ** -k) for k in (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)])
seed = [0, 1, 2]
order = ["seed", "n_embd", "points"]

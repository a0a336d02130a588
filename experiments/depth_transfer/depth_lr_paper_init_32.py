# experiments/depth_transfer/depth_lr_paper_init.py extended to 32 layers (16x the base depth): the same
# settings (init std 2^-3, the paper's optimizer settings, 2^20 tokens at every depth) and seeds,
# the four octaves around every 16-layer optimum (2^-8..2^-5; at 16 layers each curve's best grid
# point was 2^-6 or 2^-7), and 2^-4, added after the first 36 points to measure CompleteP's
# high-LR side at 32 layers as at 4-16 (no curve's 32-layer optimum was at 2^-5). Same name
# and out_root as the 2-16 layer sweep, so both write one results file and plot_transfer.py
# fits the drift over 2 to 32 layers.
# 45 points; ~3.5 core-hours on this CPU (a 32-layer point ~290 s). Run after the octave pass.
#   nice python scripts/sweep.py experiments/depth_transfer/depth_lr_paper_init_32.py --jobs 2 --threads 2
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer/results.csv"  # rows land here; the runs under runs/<name>
name = "depth_lr_paper_init"
parameterization = ["completep", "mup", "sp"]
n_layer = [32]
learning_rate = [2.0 ** -k for k in (6, 7, 5, 8, 4)]
init_std = 2.0 ** -3
seed = [0, 1, 2]
order = ["seed", "n_layer", "parameterization", "learning_rate"]

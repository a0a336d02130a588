# The alpha = 1/2 arm of this study (issue: the Complete(d)P model): depth_mup (residual
# multiplier m_L^(-1/2), hidden LR eta / m_N * m_L^(-1/2), in-block eps eps / m_N * m_L^(-1/2))
# on exactly the grid of depth_lr_paper_init.py (same base, depths, LRs, init std 2^-3, seeds;
# seed outermost, so a partial run is one complete seed first). CompleteP's central comparison,
# alpha = 1/2 against alpha = 1, is then in one results folder: plot both files together.
# 72 points; ~0.5 core-hours a seed on this CPU.
#   nice python scripts/sweep.py experiments/depth_transfer/depth_lr_paper_init_depth_mup.py --jobs 2 --threads 1
#   python scripts/plot_transfer.py experiments/depth_transfer/results.csv experiments/depth_transfer/depth_mup_results.csv \
#       --out /tmp/depth_lr_alpha
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer/depth_mup_results.csv"  # rows land here; the runs under runs/<name>
parameterization = "depth_mup"
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6, 7, 5, 8, 4, 9)]
init_std = 2.0 ** -3
seed = [0, 1, 2]
order = ["seed", "n_layer", "learning_rate"]

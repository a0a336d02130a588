# Depth transfer of the base LR with the modern block (issue: the Complete(d)P model): with
# QK-norm, does alpha = 1/2 (depth_mup) transfer as well as alpha = 1 (completep)? mup (no depth
# scaling) is the control. config/transfer_paper.py's proxy and settings (2 x 64 base, head size
# 32, 2^20 tokens at every depth, AdamW 0.9/0.95, wd 0, eps 1e-12, 10% warmup then linear decay)
# with config/modern.py's block, at the base init std init_std.py found for this family (2^-2.5:
# 2^-2 and 2^-3 tie, the three-point fit puts the optimum at 2^-2.43; README). completedp is left out: at the base width, batch and duration (m_N = m_B = m_D =
# 1) it is completep (tests/test_modern.py), so a depth-only sweep cannot tell them apart. Octave
# LRs 2^-9..2^-4 as experiments/depth_transfer; seeds outermost, then the arm, so a partial run is
# whole curves of depth_mup and completep first. 216 points; ~1.8 core-hours a seed on this CPU.
#   nice python scripts/sweep.py experiments/modern_depth/lr.py --jobs 2 --threads 1
#   python scripts/plot_transfer.py experiments/modern_depth/lr_results.csv --out /tmp/modern_lr
base_config = "config/transfer_paper.py"
results = "experiments/modern_depth/lr_results.csv"  # rows land here; the runs under runs/<name>
norm = "rmsnorm"
qk_norm = True
pos = "rope"
mlp = "swiglu"
bias = False
tie_embeddings = False
z_loss = 1e-4
parameterization = ["depth_mup", "completep", "mup"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6, 7, 5, 8, 4, 9)]
init_std = 2.0 ** -2.5
seed = [0, 1, 2]
order = ["seed", "parameterization", "n_layer", "learning_rate"]

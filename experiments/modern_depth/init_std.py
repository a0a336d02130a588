# The modern block's base init std (issue: the Complete(d)P model), swept at the base shape before
# its depth-transfer sweep (lr.py) picks one: config/transfer_paper.py's 2 x 64 proxy with
# config/modern.py's block (RMSNorm, QK-norm, RoPE, SwiGLU, no biases, untied, z-loss 1e-4), at the
# base LR 2^-6 (the GPT-2 block's 2-layer optimum at its tuned init, experiments/depth_transfer).
# At the base shape mup, depth_mup, completep and completedp are one model (tests/test_modern.py),
# so completep stands for all four; sp differs (GPT-2's sigma/sqrt(2L) output projections and
# 1/sqrt(d_head) attention). 42 points; ~0.4 core-hours on this CPU.
#   nice python scripts/sweep.py experiments/modern_depth/init_std.py --jobs 2 --threads 1
#   python scripts/plot_transfer.py experiments/modern_depth/init_std_results.csv --x init_std --out /tmp/modern_init
base_config = "config/transfer_paper.py"
results = "experiments/modern_depth/init_std_results.csv"  # rows land here; the runs under runs/<name>
norm = "rmsnorm"
qk_norm = True
pos = "rope"
mlp = "swiglu"
bias = False
tie_embeddings = False
z_loss = 1e-4
parameterization = ["completep", "sp"]
n_layer = 2
init_std = [2.0 ** -k for k in (3, 5, 1, 7, 2, 4, 6)]
learning_rate = 2.0 ** -6
seed = [0, 1, 2]
order = ["seed", "parameterization", "init_std"]

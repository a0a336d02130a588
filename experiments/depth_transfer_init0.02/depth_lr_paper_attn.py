# A suspect of experiments/depth_transfer_init0.02/depth_lr_paper.py's result, isolated: the base model's attention
# temperature. With 2 heads of size 32 at the 64-wide base, muP's 1/d_head attention (attn_mult
# 1) makes the base model's attention logits sqrt(32) = 5.7x colder than SP's 1/sqrt(d_head),
# and muP ends above SP at every width to 1024 of experiments/width_transfer_h200/width_lr_paper_h200.py,
# the base included. Here attn_mult = sqrt(32): at the base head size the attention is
# SP's, and 1/d_head from there on. completep only (its drift is the question), the parent's
# depths, LR grid and settings, seeds 0 and 1 (paired with the parent's seeds 0 and 1).
# 48 points; ~1 core-hour on this CPU.
#   python scripts/sweep.py experiments/depth_transfer_init0.02/depth_lr_paper_attn.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/depth_transfer_init0.02/attn_mult_results.csv --out experiments/depth_transfer_init0.02/attn_mult
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer_init0.02/attn_mult_results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["completep"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6, 8, 4, 9, 7, 5)]
attn_mult = [32 ** 0.5]
seed = [0, 1]
order = ["seed", "n_layer", "parameterization", "attn_mult", "learning_rate"]

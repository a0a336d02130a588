# A second suspect of experiments/depth_transfer_init0.02/depth_lr_paper.py's result, isolated: the warmup fraction.
# The parent warms up over 10% of the run (102 of 1,024 steps) at every depth; if deeper
# CompleteP models need a longer warmup to take a given LR, their optimum would fall with depth
# for a reason the parameterization does not cover. Here warmup is 30% of the run, then the
# same linear decay to zero over the rest. completep only (its drift is the question), the
# parent's depths, LR grid and other settings, seeds 0 and 1 (paired with the parent's).
# 48 points; ~1.2 core-hours on this CPU.
#   python scripts/sweep.py experiments/depth_transfer_init0.02/depth_lr_paper_warmup.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/depth_transfer_init0.02/warmup_results.csv --out experiments/depth_transfer_init0.02/warmup
base_config = "config/transfer_paper.py"
results = "experiments/depth_transfer_init0.02/warmup_results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["completep"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (6, 8, 4, 9, 7, 5)]
warmup_frac = 0.3
decay_frac = 0.7
seed = [0, 1]
order = ["seed", "n_layer", "parameterization", "learning_rate"]

# Batch-size and duration transfer of the base LR (Complete(d)P, arXiv 2512.22382) at a horizon
# where the LR matters: the 2 x 64 proxy of config/transfer_paper.py (weight decay 0, eps 1e-12,
# 10% warmup then linear decay to zero), untied, at its own batch and horizon (B_base = 8
# sequences of 128 tokens, D_base = 2^20 tokens, 1,024 steps; val loss ~2.25, below the bigram
# plateau where a first attempt's 2^17-token runs all ended), at 4x the tokens
# (4,096 steps) and at 2x the batch (512 steps).
# completedp: the rules on (base_batch_size/base_tokens name the proxy, so m_B = B / 8 and
# m_D = D / 2^20 scale every group's LR, eps and betas; WD is 0 here); completep, the same
# untied model with the rules off, is the control. LR 2^-8..2^-3, two seeds.
# 6 arms x 6 LRs x 2 seeds = 72 runs, ~1 core-hour (a 2^22-token point ~80 s on one core).
#   python scripts/sweep.py experiments/batch_duration/batch_duration_paper.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py experiments/batch_duration/results.csv --by global_batch_size \
#       --where max_tokens=1048576 --out experiments/batch_duration/batch
#   python scripts/plot_transfer.py experiments/batch_duration/results.csv --by max_tokens \
#       --where global_batch_size=8 --out experiments/batch_duration/duration
base_config = "config/transfer_paper.py"
results = "experiments/batch_duration/results.csv"  # rows land here; the runs under runs/<name>
tie_embeddings = False
learning_rate = [2.0 ** -k for k in (5, 7, 3, 6, 8, 4)]
seed = [0, 1]
_ARMS = [(8, 2 ** 20), (8, 2 ** 22), (16, 2 ** 20)]  # (global_batch_size, max_tokens)
points = [dict(parameterization=p, global_batch_size=b, max_tokens=d,
               base_batch_size=8 if p == "completedp" else None,
               base_tokens=2 ** 20 if p == "completedp" else None)
          for p in ("completedp", "completep") for b, d in _ARMS]
order = ["seed", "points", "learning_rate"]  # outermost first

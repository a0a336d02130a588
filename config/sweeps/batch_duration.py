# Batch-size and duration transfer of the base LR (Complete(d)P, arXiv 2512.22382): the 2 x 64
# proxy of config/transfer_base.py, untied, at its own batch and horizon (B_base = 4 sequences
# of 128 tokens, D_base = 2^17 tokens, 256 steps), at 4x the tokens (1,024 steps) and at 2x the
# batch (128 steps). Batch and horizon move along these two arms only, so they are `points`.
# completedp: the rules on (base_batch_size/base_tokens name the proxy: m_B = B / 4,
# m_D = D / 2^17 scale every group's LR, WD, eps and betas); completep, the same untied model
# with the rules off, is the control. LR 2^-10..2^-4, two seeds.
# 6 points x 7 LRs x 2 seeds = 84 runs, 22M training tokens in all: ~50k tok/s for 2 x 64 on
# one core plus start-up; one point took 6.5 s at 2^17 tokens and 16 s at 2^19 (one niced core,
# busy machine), so about 14 core-minutes, ~7-10 min with --jobs 2. Read one arm at a time:
#   python scripts/sweep.py config/sweeps/batch_duration.py --jobs 2 --threads 2
#   python scripts/plot_transfer.py runs/batch_duration/results.csv --by global_batch_size \
#       --where max_tokens=131072 --out experiments/batch_duration/batch
#   python scripts/plot_transfer.py runs/batch_duration/results.csv --by max_tokens \
#       --where global_batch_size=4 --out experiments/batch_duration/duration
base_config = "config/transfer_base.py"
tie_embeddings = False
learning_rate = [2.0 ** -k for k in range(10, 3, -1)]
seed = [0, 1]
_ARMS = [(4, 2 ** 17), (4, 2 ** 19), (8, 2 ** 17)]  # (global_batch_size, max_tokens)
points = [dict(parameterization=p, global_batch_size=b, max_tokens=d,
               base_batch_size=4 if p == "completedp" else None,
               base_tokens=2 ** 17 if p == "completedp" else None)
          for p in ("completedp", "completep") for b, d in _ARMS]
order = ["seed", "points", "learning_rate"]  # outermost first

# Depth transfer of the base LR, a longer and less noisy run than depth_lr.py: 16 sequences
# per step (4x) and 2^19 tokens (256 steps), LR 2^-10..2^-5, two seeds. depth_lr.py's
# 2^17-token runs end near the bigram loss, where the LR optimum is flat and noise-bound.
# 144 points; about 25 min a seed with --jobs 2 on an idle 2-core CPU.
base_config = "config/transfer_base.py"
results = "experiments/depth_transfer_b16/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["sp", "mup", "completep"]
n_layer = [2, 4, 8, 16]
learning_rate = [2.0 ** -k for k in (7, 9, 5, 10, 8, 6)]
seed = [0, 1]
global_batch_size = 16       # a single value: fixed for every point
batch_size = 16
max_tokens = 524288          # 2^19 tokens = 256 steps of 16 x 128
order = ["seed", "n_layer", "learning_rate", "parameterization"]  # outermost first

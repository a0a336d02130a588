# The base of the first-generation transfer sweeps (experiments/depth_transfer_b4 and
# depth_transfer_b16; config/transfer_paper.py is the base of every later one). A CPU-scale
# proxy: char-level Shakespeare, 64 wide, head size 32, base shape (64 wide, 2 deep), a fixed
# budget of 2^17 tokens (256 steps of 4 x 128 tokens) whatever the depth or width, warmup and
# decay as fractions of the run, train.py's AdamW defaults (weight decay 0.1, eps 1e-8). Only
# the final evaluation matters: no checkpoints, no mid-run evals.
# One point took 9 s (2 layers) to 22 s (16 layers), start-up included, on one niced core of
# a busy 2-core machine (experiments/depth_transfer_b4/README.md).
dataset = "shakespeare_char"
parameterization = "completep"
n_layer = 2
n_embd = 64
n_head = 2
base_n_layer = 2
base_n_embd = 64
block_size = 128
batch_size = 4
global_batch_size = 4
max_tokens = 131072
lr_schedule = "wsd"
warmup_frac = 0.1
decay_frac = 0.25
min_lr_frac = 0.1
learning_rate = 2 ** -7
eval_interval = 1000000      # evaluate at the start and the end only
eval_tokens = 8192
log_interval = 64
save_checkpoints = False
sample_tokens = 0
device = "cpu"

# The base of the second-generation transfer sweeps (experiments/depth_transfer, width_transfer,
# depth_init_std, batch_duration, shapes and the rest; each sweep file names this one file): the
# 2 x 64 CPU proxy of config/transfer_base.py with the CompleteP paper's optimizer settings and a
# longer run, matched to the paper's depth-transfer runs (arXiv 2505.01618, section 4) wherever a
# 2-core CPU allows. One file: every setting of config/transfer_base.py is repeated here, so
# passing both (the older command lines) resolves to the same run.
#   paper                                   here
#   base 2 layers x 256, head size 64       base 2 layers x 64, head size 32 (CPU budget)
#   300M tokens for every depth             2^20 tokens for every depth (1024 steps of 8 x 128)
#   AdamW betas 0.9/0.95, weight decay 0    the same
#   tiny base eps                           1e-12
#   10% linear warmup, linear decay to 0    the same (wsd: warmup 0.1, decay 0.9, min 0)
# The token budget is fixed across depth and width, so deeper models get no extra data. At
# 2^20 tokens a 2 x 64 CompleteP model ends near val loss 2.25 and a 16 x 64 one near 2.17
# (LR 2^-6, one seed), below the bigram loss (~2.45) where the old 2^17-token runs ended.
# One point: ~20 s (2 layers) to ~130 s (16 layers) on one idle core, start-up included.
# Only the final evaluation matters: no checkpoints, no mid-run evals.
dataset = "shakespeare_char"
parameterization = "completep"
n_layer = 2
n_embd = 64
n_head = 2                   # head size 32
base_n_layer = 2
base_n_embd = 64
block_size = 128
batch_size = 8
global_batch_size = 8
max_tokens = 1048576         # 2^20 tokens, the same for every shape
lr_schedule = "wsd"
warmup_frac = 0.1            # linear warmup over the first 10% ...
decay_frac = 0.9             # ... then linear decay over the other 90% ...
min_lr_frac = 0.0            # ... to zero
learning_rate = 2 ** -6
weight_decay = 0.0
eps = 1e-12
beta1 = 0.9
beta2 = 0.95
eval_interval = 1000000      # evaluate at the start and the end only
eval_tokens = 32768
log_interval = 256
save_checkpoints = False
sample_tokens = 0
device = "cpu"

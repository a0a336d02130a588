# The proxy of the per-module transfer study (experiments/module_transfer), one file:
# config/transfer_paper.py's 2 x 64 model with the paper's optimizer settings (weight decay 0,
# eps 1e-12, 10% warmup then linear decay to zero), 2^20 tokens in 1,024 steps of 8 x 128, now
# Complete(d)P with untied embeddings (the unembedding is a module of its own). It names itself
# the base of the batch/duration rules (m_B = B / 8, m_D = D / 2^20), so a target's longer run
# rescales every group's LR, eps and betas. Its best global LR, 2^-6, is the best mean of two
# seeds in experiments/batch_duration (the completedp base arm, LR 2^-8..2^-3).
#   python scripts/search.py config/module_transfer/proxy.py --learning_rate='2**-6' --seeds 0,1 --trials 30 ...
dataset = "shakespeare_char"
parameterization = "completedp"
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
tie_embeddings = False
base_batch_size = 8           # the proxy is the base of the batch/duration rules
base_tokens = 2 ** 20

# The proxy of the modern-block per-module transfer study (experiments/module_transfer_modern),
# one file: config/module_transfer/proxy.py's 2 x 64 Complete(d)P proxy and optimizer settings
# with config/modern.py's block (RMSNorm, QK-norm, RoPE, SwiGLU, no biases, untied, z-loss 1e-4)
# at the base init std experiments/modern_depth found for it (2^-2.5), trained twice as long:
# 2^21 tokens in 2,048 steps of 8 x 128 (the GPT-2 block's study searched at 2^20 and lost its gain
# to the horizon). It names itself the base of the batch/duration rules (m_B = B / 8,
# m_D = D / 2^21). Its learning rate is the best global LR of
# experiments/module_transfer_modern/lr.py (the search starts there: --learning_rate).
#   python scripts/search.py config/module_transfer/modern_proxy.py --learning_rate=... --seeds 0,1 --trials 30 ...
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
max_tokens = 2 ** 21         # 2,048 steps
lr_schedule = "wsd"
warmup_frac = 0.1            # linear warmup over the first 10% ...
decay_frac = 0.9             # ... then linear decay over the other 90% ...
min_lr_frac = 0.0            # ... to zero
learning_rate = 2 ** -6
init_std = 2 ** -2.5
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
norm = "rmsnorm"
qk_norm = True
pos = "rope"
mlp = "swiglu"
bias = False
tie_embeddings = False
z_loss = 1e-4
base_batch_size = 8           # the proxy is the base of the batch/duration rules
base_tokens = 2 ** 21
base_block_size = 128

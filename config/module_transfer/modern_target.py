# The target of the modern-block per-module transfer study (experiments/module_transfer_modern),
# one file: the proxy (config/module_transfer/modern_proxy.py) at 2x its depth and width (4
# layers x 128, head size 32) on the proxy's 2^21 tokens: ~8x the non-embedding parameters and
# ~8x the training FLOPs. The proxy stays the base (base_n_layer 2, base_n_embd 64,
# base_batch_size 8, base_tokens 2^21, base_block_size 128), so CompleteP's width/depth rules set
# every group's hyperparameters from the proxy's (m_N = m_L = 2, m_B = m_D = 1).
#   python train.py config/module_transfer/modern_target.py experiments/module_transfer_modern/searched_modules.py --seed=2
dataset = "shakespeare_char"
parameterization = "completedp"
n_layer = 4
n_embd = 128
n_head = 4                   # head size 32
base_n_layer = 2
base_n_embd = 64
block_size = 128
batch_size = 8
global_batch_size = 8
max_tokens = 2 ** 21         # the proxy's tokens
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
eval_interval = 512          # 4 evaluations over the run, for val-loss curves
eval_tokens = 32768
log_interval = 64
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

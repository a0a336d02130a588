# The target of the per-module transfer study (experiments/module_transfer), one file: the proxy
# (config/module_transfer/proxy.py) at 2x its depth and width (4 layers x 128, head size 32) and
# 4x its tokens (2^22 in 4,096 steps of 8 x 128): ~8x the non-embedding parameters and ~32x the
# training FLOPs. The proxy stays the base (base_n_layer 2, base_n_embd 64, base_batch_size 8,
# base_tokens 2^20), so CompleteP's width/depth rules and Complete(d)P's duration rule (m_D = 4)
# set every group's hyperparameters from the proxy's. The transfer (the searched set last):
#   python train.py config/module_transfer/target.py experiments/module_transfer/searched_modules.py --seed=2
dataset = "shakespeare_char"
parameterization = "completedp"
n_layer = 4
n_embd = 128
n_head = 4               # head size 32
base_n_layer = 2
base_n_embd = 64
block_size = 128
batch_size = 8
global_batch_size = 8
max_tokens = 2 ** 22          # 4x the proxy's tokens
lr_schedule = "wsd"
warmup_frac = 0.1            # linear warmup over the first 10% ...
decay_frac = 0.9             # ... then linear decay over the other 90% ...
min_lr_frac = 0.0            # ... to zero
learning_rate = 2 ** -6
weight_decay = 0.0
eps = 1e-12
beta1 = 0.9
beta2 = 0.95
eval_interval = 512          # 8 evaluations of 32,768 tokens over the run: val-loss curves (~2% of its time)
eval_tokens = 32768
log_interval = 64
save_checkpoints = False
sample_tokens = 0
device = "cpu"
tie_embeddings = False
base_batch_size = 8           # the proxy is the base of the batch/duration rules
base_tokens = 2 ** 20

# GPT-2 small (12 layers x 768, block 1024) on FineWeb-Edu (sample-10BT) under CompleteP, with the base
# hyperparameters of the 2 x 256 proxy (config/gpt2_proxy.py): m_N = 3, m_L = 6. Set
# learning_rate (and init_std) to the proxy's optimum; nothing else needs re-tuning.
# 20 tokens per parameter (~124M with embeddings): 2.5B tokens. One 8-GPU node:
#   python data/fineweb/prepare.py
#   torchrun --standalone --nproc_per_node=8 train.py config/gpt2_small_fineweb.py
# Roughly an hour on 8 H100s at 40% MFU (an estimate from 6 N D FLOPs, not a measurement).
dataset = "fineweb"
parameterization = "completep"
n_layer = 12
n_head = 12
n_embd = 768
base_n_layer = 2             # the proxy's shape (config/gpt2_proxy.py)
base_n_embd = 256
block_size = 1024
batch_size = 16              # per GPU per micro-step; 8 GPUs x 16 x 4 micro-steps = 512
global_batch_size = 512      # 524k tokens a step
max_tokens = 2_500_000_000
learning_rate = 2 ** -8      # the proxy's optimum: replace with your sweep's result
weight_decay = 0.0
eps = 1e-12
beta1 = 0.9
beta2 = 0.95
lr_schedule = "wsd"
warmup_frac = 0.1
decay_frac = 0.9
min_lr_frac = 0.0
eval_interval = 500
eval_tokens = 4_194_304
log_interval = 20
out_dir = "out-gpt2-fineweb"

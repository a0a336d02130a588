# The proxy for the GPT-2-small runs (config/gpt2_small_owt.py, config/gpt2_small_fineweb.py):
# 2 layers x 256 wide, head size 64, the shape the CompleteP paper tunes on (arXiv 2505.01618,
# section 4). Tune the base hyperparameters here (an LR sweep: experiments/planned/gpt2_proxy_lr/gpt2_proxy_lr.py),
# then pass the winners to the large config unchanged: the parameterization scales them.
# One GPU: ~3.2M non-embedding parameters, 300M tokens (the paper's proxy budget) in well
# under an hour on an H100 (an estimate from the FLOP count, not a measurement).
dataset = "openwebtext"      # or "fineweb"; prepared by data/<name>/prepare.py
parameterization = "completep"
n_layer = 2
n_head = 4
n_embd = 256
base_n_layer = 2
base_n_embd = 256
block_size = 1024
batch_size = 16              # per GPU per micro-step
global_batch_size = 128      # 131k tokens a step
max_tokens = 300_000_000
learning_rate = 2 ** -8      # the paper's neighbourhood at this shape; sweep it
weight_decay = 0.0
eps = 1e-12
beta1 = 0.9
beta2 = 0.95
lr_schedule = "wsd"          # 10% linear warmup, then linear decay to zero
warmup_frac = 0.1
decay_frac = 0.9
min_lr_frac = 0.0
eval_interval = 500
eval_tokens = 1_048_576
log_interval = 50
out_dir = "out-gpt2-proxy"

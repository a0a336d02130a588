# The proxy of the per-module search (scripts/search.py, README "Per-module search"): 2 layers,
# 64 wide, Complete(d)P with untied embeddings (so the unembedding is a module of its own),
# character-level Shakespeare, 2^17 tokens (256 steps of 4 x 128), WSD schedule as fractions of
# the run; only the final evaluation matters. It is its own base shape, batch and horizon
# (m_N = m_L = m_B = m_D = 1); the search writes them into searched_modules.py for the transfer.
dataset = "shakespeare_char"
parameterization = "completedp"
tie_embeddings = False
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

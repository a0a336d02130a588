# The default run (same as `python train.py`): a 4-layer, 128-wide CompleteP GPT on
# character-level Shakespeare, tuned at the 2-layer, 64-wide proxy (m_N = 2, m_L = 2).
# About 4 minutes on a 2-core CPU.
dataset = "shakespeare_char"
out_dir = "out"
parameterization = "completep"
n_layer = 4
n_head = 4
n_embd = 128
base_n_layer = 2
base_n_embd = 64
block_size = 128
batch_size = 16
global_batch_size = 32
learning_rate = 1e-2
max_iters = 1200

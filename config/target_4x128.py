# The README walkthrough's target: the 2 x 64 proxy swept by experiments/walkthrough/proxy_lr.py
# at twice the depth and twice the width (m_L = 2, m_N = 2), twice the batch and twice the
# tokens. Only what a target may change: scripts/transfer.py adds the proxy's whole recipe and
# its tuned values, and refuses a target that changes the recipe.
#   python scripts/transfer.py --from_sweep runs/proxy_lr/results.csv --target config/target_4x128.py --out runs/target.py
#   python train.py runs/target.py        # about 3 minutes on a 2-core CPU
n_layer = 4
n_embd = 128
n_head = 4                   # head size 32, the proxy's
batch_size = 16
global_batch_size = 16
max_tokens = 2 ** 21
eval_interval = 256
log_interval = 64
out_dir = "out-target"

# The target of the per-module transfer study (experiments/module_transfer), passed after the
# proxy's configs: 2x the proxy's depth and width (4 layers x 128, head size 32) and 4x its
# tokens (2^22 in 4,096 steps of 8 x 128): ~8x the non-embedding parameters and ~32x the
# training FLOPs. The proxy stays the base (base_n_layer 2, base_n_embd 64, base_batch_size 8,
# base_tokens 2^20), so CompleteP's width/depth rules and Complete(d)P's duration rule (m_D = 4)
# set every group's hyperparameters from the proxy's.
n_layer = 4
n_embd = 128
n_head = 4
max_tokens = 2 ** 22
eval_interval = 512          # 8 evaluations of 32,768 tokens over the run: val-loss curves (~2% of its time)
log_interval = 64

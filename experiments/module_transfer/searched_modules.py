# Per-module hyperparameters found by scripts/search.py (arXiv 2512.22382's per-module search).
# Search 'module_transfer' in runs/search/module_transfer: best of 30 trials is trial 29, val_loss 2.11923 (start point, trial 0: 2.27641).
# Proxy: config/transfer_base.py config/transfer_paper.py config/module_transfer/proxy.py (2 x 64, completedp).
# Transfer: python train.py config/<target>.py runs/search/module_transfer/searched_modules.py
# Every value is a base value at the proxy's base shape (and, for completedp, its batch and
# duration), so the settings below name that base; the target sets its own n_layer, n_embd,
# n_head, batch size and run length.
parameterization = 'completedp'
tie_embeddings = False
base_n_layer = 2
base_n_embd = 64
base_batch_size = 8
base_tokens = 1048576
learning_rate = 0.015625
init_std = 0.02
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.95
eps = 1e-12
input_mult = 1.0
output_mult = 1.0
module_hparams = {'attn_out': {'lr': 0.3697293536875744}, 'attn_qkv': {'lr': 1.6574311007861282}, 'block_norm': {'lr': 0.8700471516718375}, 'embedding': {'lr': 2.620215740362062}, 'final_norm': {'lr': 0.3966224067759654}, 'mlp_in': {'lr': 0.47192910444303965}, 'mlp_out': {'lr': 0.25614818485029817}, 'residual': {'attn': 0.21590588898891652, 'mlp': 0.28597371060570975}, 'unembedding': {'lr': 1.9668374560140616}}

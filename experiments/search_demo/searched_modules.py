# Per-module hyperparameters found by scripts/search.py (arXiv 2512.22382's per-module search).
# Search 'search_proxy' in runs/search/search_demo: best of 12 trials is trial 8, val_loss 2.5247 (start point, trial 0: 2.55053).
# Proxy: config/search_proxy.py (2 x 64, completedp).
# Transfer: python train.py config/<target>.py runs/search/search_demo/searched_modules.py
# Every value is a base value at the proxy's base shape (and, for completedp, its batch and
# duration), so the settings below name that base; the target sets its own n_layer, n_embd,
# n_head, batch size and run length.
parameterization = 'completedp'
tie_embeddings = False
base_n_layer = 2
base_n_embd = 64
base_batch_size = 4
base_tokens = 131072
learning_rate = 0.00390625
init_std = 0.02
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
eps = 1e-08
input_mult = 1.0
output_mult = 1.0
module_hparams = {'attn_out': {'lr': 1.153461512523045}, 'attn_qkv': {'lr': 1.5351357126547518}, 'block_norm': {'lr': 0.8867779380721283}, 'embedding': {'lr': 2.1061808806794953}, 'final_norm': {'lr': 1.3298429101891085}, 'mlp_in': {'lr': 0.5298948962372876}, 'mlp_out': {'lr': 0.2496439540286373}, 'residual': {'attn': 0.5860246042837451, 'mlp': 0.20909904732823612}, 'unembedding': {'lr': 0.36398162477426704}}

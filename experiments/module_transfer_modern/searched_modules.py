# Per-module hyperparameters found by scripts/search.py (arXiv 2512.22382's per-module search).
# Search 'module_transfer_modern' in runs/search/module_transfer_modern: best of 30 trials is trial 10, val_loss 1.79563 (start point, trial 0: 1.80181).
# Proxy: config/module_transfer/modern_proxy.py (2 x 64, completedp).
# Transfer: python scripts/transfer.py --from_search runs/search/module_transfer_modern --target config/<target>.py --out target.py, then python train.py target.py
# Every value is a base value at the proxy's base shape (and, for completedp, its batch and
# duration), so the settings below name that base; the target sets its own n_layer, n_embd,
# n_head, batch size and run length.
parameterization = 'completedp'
tie_embeddings = False
base_n_layer = 2
base_n_embd = 64
base_batch_size = 8
base_tokens = 2097152
learning_rate = 0.015625
init_std = 0.1767766952966369
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.95
eps = 1e-12
input_mult = 1.0
output_mult = 1.0
module_hparams = {'attn_k': {'init_std': 0.9041382490453169, 'lr': 1.0414501038062614}, 'attn_norm': {'lr': 0.8995874692395908}, 'attn_out': {'init_std': 1.0290065464558118, 'lr': 1.0399866662952766}, 'attn_q': {'init_std': 0.8468421962607282, 'lr': 0.9029181301223805}, 'attn_v': {'init_std': 1.0181037865319957, 'lr': 0.9403168484206408}, 'embedding': {'init_std': 0.9636137682129009, 'lr': 0.9995085741272897}, 'final_norm': {'lr': 1.1015256159804712}, 'mlp_gate': {'init_std': 1.1009860531710602, 'lr': 0.882300354998407}, 'mlp_in': {'init_std': 0.8459127815472456, 'lr': 0.9193087277607976}, 'mlp_norm': {'lr': 1.1879508913201295}, 'mlp_out': {'init_std': 0.9929271031163148, 'lr': 0.8749065996089193}, 'qk_norm': {'lr': 0.8473955790917395}, 'residual': {'attn': 1.0790980642843402, 'mlp': 1.122892339872939}, 'unembedding': {'init_std': 1.0521223153016872, 'lr': 1.1798383155040324}, 'depth': {'lr': [0.9101612286380782, 1.0846672357911487]}}

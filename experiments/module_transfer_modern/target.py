# The modern-block per-module transfer test (Complete(d)P, arXiv 2512.22382;
# experiments/module_transfer_modern): the target of config/module_transfer/modern_target.py
# (4 x 128 on the proxy's 2^21 tokens; 2x the proxy's width and depth, ~8x its FLOPs) trained with
# (a) the proxy's best global LR, every module multiplier 1, and (b) the module multipliers
# scripts/search.py found on the proxy, read unchanged from searched_modules.py beside this file;
# six seeds each (2-4 first, then 5-7), none of them a seed the search used (0, 1).
#   nice python scripts/sweep.py experiments/module_transfer_modern/target.py --jobs 2 --threads 1
import os as _os

base_config = "config/module_transfer/modern_target.py"
results = "experiments/module_transfer_modern/target_results.csv"  # rows land here; the runs under runs/<name>
name = "module_transfer_modern_target"
_searched = {}
with open(_os.path.join(_os.path.dirname(__file__), "searched_modules.py")) as _f:
    exec(_f.read(), _searched)
# the searched file names the same start point and base as the proxy: only the multipliers differ
assert _searched["base_tokens"] == 2 ** 21 and _searched["base_n_layer"] == 2, _searched
learning_rate = _searched["learning_rate"]
points = [dict(module_hparams={}), dict(module_hparams=_searched["module_hparams"])]
seed = [2, 3, 4, 5, 6, 7]
order = ["seed", "points"]  # outermost first: each finished seed is a usable pair

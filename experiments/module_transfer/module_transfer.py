# The per-module transfer test (Complete(d)P, arXiv 2512.22382; experiments/module_transfer):
# the target of config/module_transfer/target.py (4 x 128, 2^22 tokens; 2x the proxy's width and
# depth, 4x its tokens) trained with (a) the proxy's best global LR, 2^-6, every module multiplier
# 1, and (b) the module multipliers scripts/search.py found on the proxy, read unchanged from
# experiments/module_transfer/searched_modules.py; three seeds each, none of them a seed the
# search used (0, 1), so (b) is judged on fresh initialisations and data orders.
#   python scripts/sweep.py experiments/module_transfer/module_transfer.py --jobs 2 --threads 2
# is the same as, for each seed S and arm,
#   python train.py config/module_transfer/target.py [experiments/module_transfer/searched_modules.py] --seed=S
# 6 runs, ~10-15 min of one core each.
import os as _os

base_config = "config/module_transfer/target.py"
results = "experiments/module_transfer/target_results.csv"  # rows land here; the runs under runs/<name>
_searched = {}
with open(_os.path.join(_os.path.dirname(__file__), "searched_modules.py")) as _f:
    exec(_f.read(), _searched)
# the searched file names the same start point and base as the proxy: only the multipliers differ
assert _searched["learning_rate"] == 2 ** -6 and _searched["base_tokens"] == 2 ** 20, _searched
points = [dict(module_hparams={}), dict(module_hparams=_searched["module_hparams"])]
seed = [2, 3, 4]
order = ["seed", "points"]  # outermost first: each finished seed is a usable pair

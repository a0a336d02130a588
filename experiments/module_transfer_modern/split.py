# The two halves of the modern-block per-module transfer's change (experiments/module_transfer_modern):
# target.py's two arms (the proxy's best global LR; the searched multipliers) at 2x the proxy's
# depth alone (4 x 64) and at 2x its width alone (2 x 128, head size 32), on the proxy's 2^21
# tokens and the target's fresh seeds, so a gain or loss at 4 x 128 can be told apart by where it
# comes from. The proxy stays the base (config/module_transfer/modern_target.py sets it). 12 runs.
#   nice python scripts/sweep.py experiments/module_transfer_modern/split.py --jobs 2 --threads 1
import os as _os

base_config = "config/module_transfer/modern_target.py"
results = "experiments/module_transfer_modern/split_results.csv"  # rows land here; the runs under runs/<name>
name = "module_transfer_modern_split"
_searched = {}
with open(_os.path.join(_os.path.dirname(__file__), "searched_modules.py")) as _f:
    exec(_f.read(), _searched)
assert _searched["base_tokens"] == 2 ** 21 and _searched["base_n_layer"] == 2, _searched
learning_rate = _searched["learning_rate"]
points = [dict(n_layer=L, n_embd=N, n_head=N // 32, module_hparams=arm)
          for L, N in ((4, 64), (2, 128)) for arm in ({}, _searched["module_hparams"])]
seed = [2, 3, 4]
order = ["seed", "points"]

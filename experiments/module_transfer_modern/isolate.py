# One change at a time for the modern-block per-module transfer (experiments/module_transfer_modern):
# both arms of target.py (the proxy's best global LR; the searched multipliers) at the proxy's own
# shape (2 x 64) on fresh seeds, at the proxy's 2^21 tokens and at twice them (2^22: the horizon
# alone, which is where the GPT-2 block's study lost its gain). The proxy stays the base, so at
# 2^22 Complete(d)P's duration rule applies (m_D = 2). 12 runs, 1-2.5 min each.
#   nice python scripts/sweep.py experiments/module_transfer_modern/isolate.py --jobs 2 --threads 1
import os as _os

base_config = "config/module_transfer/modern_proxy.py"
results = "experiments/module_transfer_modern/isolate_results.csv"  # rows land here; the runs under runs/<name>
name = "module_transfer_modern_isolate"
_searched = {}
with open(_os.path.join(_os.path.dirname(__file__), "searched_modules.py")) as _f:
    exec(_f.read(), _searched)
assert _searched["base_tokens"] == 2 ** 21 and _searched["base_n_layer"] == 2, _searched
learning_rate = _searched["learning_rate"]
points = [dict(max_tokens=tokens, module_hparams=arm) for tokens in (2 ** 21, 2 ** 22)
          for arm in ({}, _searched["module_hparams"])]
seed = [2, 3, 4]
order = ["seed", "points"]

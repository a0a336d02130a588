# Which step of the per-module transfer loses (experiments/module_transfer): the two arms of
# experiments/module_transfer/module_transfer.py (every multiplier 1, and the searched set) on the proxy
# itself (2 x 64, 2^20 tokens: does the search's gain hold on seeds it did not see?) and with
# one change from the proxy at a time: (a) the proxy's shape (2 x 64) at the target's 4x tokens, 2^22
# (Complete(d)P's duration rule alone, m_D = 4); (b) the target's shape (4 x 128) at the proxy's
# 2^20 tokens (CompleteP's width and depth rules alone). Seeds 2, 3, 4 as for the target; an
# evaluation every eighth of the run for the curves.
#   python scripts/sweep.py experiments/module_transfer/module_transfer_isolate.py --jobs 2 --threads 2
# 18 runs, ~25 core-minutes on this CPU.
import os as _os

base_config = "config/module_transfer/proxy.py"
results = "experiments/module_transfer/isolate_results.csv"  # rows land here; the runs under runs/<name>
_searched = {}
with open(_os.path.join(_os.path.dirname(__file__), "searched_modules.py")) as _f:
    exec(_f.read(), _searched)
assert _searched["learning_rate"] == 2 ** -6 and _searched["base_tokens"] == 2 ** 20, _searched
points = [dict(n_layer=2, n_embd=64, n_head=2, max_tokens=2 ** 20, eval_interval=128, log_interval=32,
               module_hparams=m) for m in ({}, _searched["module_hparams"])] + \
         [dict(n_layer=2, n_embd=64, n_head=2, max_tokens=2 ** 22, eval_interval=512, log_interval=64,
               module_hparams=m) for m in ({}, _searched["module_hparams"])] + \
         [dict(n_layer=4, n_embd=128, n_head=4, max_tokens=2 ** 20, eval_interval=128, log_interval=32,
               module_hparams=m) for m in ({}, _searched["module_hparams"])]
seed = [2, 3, 4]
order = ["seed", "points"]

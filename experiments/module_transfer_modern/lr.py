# The start point of the modern-block per-module search (experiments/module_transfer_modern): the
# best global LR of its proxy (config/module_transfer/modern_proxy.py: 2 x 64, 2^21 tokens, init
# std 2^-2.5), octave LRs 2^-8..2^-4, the two seeds the search runs (0, 1). 10 runs, ~1 min each.
#   nice python scripts/sweep.py experiments/module_transfer_modern/lr.py --jobs 2 --threads 1
name = "module_transfer_modern_lr"
base_config = "config/module_transfer/modern_proxy.py"
results = "experiments/module_transfer_modern/lr_results.csv"  # rows land here; the runs under runs/<name>
learning_rate = [2.0 ** -k for k in (6, 7, 5, 8, 4)]
seed = [0, 1]
order = ["seed", "learning_rate"]

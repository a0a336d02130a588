# The README's walkthrough, step 1: the proxy's base learning rate. The 2 x 64 CompleteP proxy of
# config/transfer_paper.py (2^20 tokens, the CompleteP paper's optimizer settings) at the init std
# tuned for it (2^-3, experiments/depth_init_std), five learning rates, one seed. The rows go to
# runs/proxy_lr/results.csv (not into this folder: a walkthrough starts from nothing), and
# scripts/transfer.py reads the proxy's recipe from the best point's config.json there.
#   python scripts/sweep.py experiments/walkthrough/proxy_lr.py --jobs 2
# About 2 minutes on a 2-core CPU (measured: experiments/walkthrough/README.md).
base_config = "config/transfer_paper.py"
n_layer = 2
learning_rate = [2.0 ** -k for k in (4, 5, 6, 7, 8)]
init_std = 2.0 ** -3
seed = 0

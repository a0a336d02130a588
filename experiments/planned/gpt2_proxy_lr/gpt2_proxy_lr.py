# The base-LR sweep on the GPT-2 proxy (config/gpt2_proxy.py): a GPU job. Its optimum is the
# learning_rate to put into config/gpt2_small_owt.py / gpt2_small_fineweb.py.
#   python scripts/sweep.py experiments/planned/gpt2_proxy_lr/gpt2_proxy_lr.py --set device=cuda
#   python scripts/plot_transfer.py experiments/planned/gpt2_proxy_lr/results.csv --x learning_rate --by n_layer
base_config = "config/gpt2_proxy.py"
results = "experiments/planned/gpt2_proxy_lr/results.csv"  # rows land here; the runs under runs/<name>
learning_rate = [2.0 ** -k for k in range(5, 12)]
seed = [0, 1, 2]
save_checkpoints = False
eval_interval = 1000000
order = ["seed", "learning_rate"]

# Width transfer of the base LR (docs/parameterization.md section 5): sp, mup and completep at widths 64..512 (base width
# 64, depth 2), LR 2^-12..2^-4, two seeds. Widest last within a seed.
# 216 points; not run yet. On one CPU core the 256/512-wide points dominate (hours): a GPU
# job (--set device=cuda).
base_config = "config/transfer_base.py"
results = "experiments/planned/width_lr/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["sp", "mup", "completep"]
n_embd = [64, 128, 256, 512]
n_head = 4                      # head size grows with width: 16, 32, 64, 128
learning_rate = [2.0 ** -k for k in range(12, 3, -1)]
seed = [0, 1]
order = ["seed", "n_embd", "parameterization", "learning_rate"]

# Width transfer of the output (logit) multiplier: mup and completep (sp has no multipliers)
# at widths 64..256 (base width 64, depth 2), output_mult 2^-4..2^4 at the base LR, two seeds.
# 108 points; not run yet. The 256-wide points take minutes each on one CPU core; estimate
# about an hour per seed there, minutes on a GPU.
base_config = "config/transfer_base.py"
results = "experiments/planned/width_output_mult/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["mup", "completep"]
n_embd = [64, 128, 256]
n_head = 4
output_mult = [2.0 ** k for k in range(-4, 5)]
seed = [0, 1]
order = ["seed", "n_embd", "parameterization", "output_mult"]

# Width transfer of the base LR with the paper's optimizer settings (config/transfer_paper.py):
# sp and mup at widths 64..512 (base width 64, depth 2 = the base depth), 2 heads (head size
# 32 to 256: muP's 1/d_head attention is what makes that transfer), the
# same 2^18 tokens at every width, LR 2^-10..2^-5, three seeds; the widest models last within
# a seed, so a partial grid is a usable one.
# completep is not run: at the base depth it is the same model as mup, parameter for
# parameter and group for group (tests/test_model.py), so its curves would repeat mup's.
# 144 points; ~2.7 core-hours on this CPU (a 512-wide point ~4 min on one core).
base_config = "config/transfer_paper.py"
results = "experiments/planned/width_lr_paper/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["mup", "sp"]
n_embd = [64, 128, 256, 512]
learning_rate = [2.0 ** -k for k in (7, 9, 5, 8, 6, 10)]
seed = [0, 1, 2]
max_tokens = 262144          # 2^18 tokens = 256 steps of 8 x 128
order = ["seed", "n_embd", "parameterization", "learning_rate"]

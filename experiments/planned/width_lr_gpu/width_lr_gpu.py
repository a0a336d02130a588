# GPU scale of experiments/planned/width_lr_paper/width_lr_paper.py: width transfer of the base LR at the CompleteP
# paper's proxy (config/gpt2_proxy.py: 2 layers, base width 256, head size 64, context 1024,
# 300M tokens at every width, the paper's optimizer settings), widths 256..2048 at the base
# depth, sp and mup (completep is mup at the base depth), LR 2^-12..2^-5, three seeds.
#   python scripts/sweep.py experiments/planned/width_lr_gpu/width_lr_gpu.py --gpus 0,1,2,3,4,5,6,7
#   python scripts/plot_transfer.py experiments/planned/width_lr_gpu/results.csv --out experiments/planned/width_lr_gpu/width_lr
# 192 points; ~3 min (256 wide) to ~25 min (2048 wide) on one H100 each (an estimate from the
# FLOP count at 40% of peak), ~25 GPU-hours, about 3 hours on one 8-GPU node.
base_config = "config/gpt2_proxy.py"
results = "experiments/planned/width_lr_gpu/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["mup", "sp"]
points = [dict(n_embd=n, n_head=n // 64) for n in (256, 512, 1024, 2048)]
learning_rate = [2.0 ** -k for k in (8, 10, 6, 12, 9, 7, 11, 5)]
seed = [0, 1, 2]
save_checkpoints = False
eval_interval = 1000000
order = ["seed", "points", "parameterization", "learning_rate"]

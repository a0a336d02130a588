# GPU scale of experiments/depth_transfer_init0.02/depth_lr_paper.py: depth transfer of the base LR at the CompleteP
# paper's proxy (arXiv 2505.01618, section 4): base 2 layers x 256, head size 64, context 1024,
# 300M tokens at every depth, AdamW 0.9/0.95, weight decay 0, eps 1e-12, 10% warmup then linear
# decay to zero (config/gpt2_proxy.py, OpenWebText; set dataset = "fineweb" there for FineWeb),
# depths 2..128, LR 2^-11..2^-5, three seeds; only the final evaluation.
#   python data/openwebtext/prepare.py
#   python scripts/sweep.py experiments/planned/depth_lr_gpu/depth_lr_gpu.py --gpus 0,1,2,3,4,5,6,7
#   python scripts/plot_transfer.py experiments/planned/depth_lr_gpu/results.csv --out experiments/planned/depth_lr_gpu/depth_lr
# 441 points. Cost (an estimate from 6 x params x tokens plus attention and the 50k-vocabulary
# unembedding, at 40% of an H100's bf16 peak, not a measurement): ~3 min a point at 2 layers,
# ~35 min at 128; ~95 GPU-hours in all, about 12 hours on one 8-GPU node. Seed is outermost,
# so the first ~4 hours give one full seed.
# Run experiments/planned/depth_init_std_gpu/depth_init_std_gpu.py first and set init_std here to its best 2-layer value:
# on the CPU the LR verdict changed with the init std (experiments/depth_transfer_init0.02 at 0.02,
# experiments/depth_transfer at the tuned 2^-3), and config/gpt2_proxy.py's 0.02 is
# 1.6 octaves below 1/sqrt(256).
base_config = "config/gpt2_proxy.py"
results = "experiments/planned/depth_lr_gpu/results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["completep", "mup", "sp"]
n_layer = [2, 4, 8, 16, 32, 64, 128]
learning_rate = [2.0 ** -k for k in (8, 10, 6, 11, 9, 7, 5)]
seed = [0, 1, 2]
save_checkpoints = False
eval_interval = 1000000
order = ["seed", "n_layer", "parameterization", "learning_rate"]

# experiments/width_transfer/width_sp_joint_paper_init.py one doubling further: SP re-tuned on both LR and init
# std at 512 wide (8x the base width; the base depth 2, 2 heads, the paper's AdamW settings, 2^20
# tokens). At 256 wide SP's joint optimum was init 2^-5, LR 2^-9 on every seed, tying muP at the
# proxy's hyperparameters (experiments/width_transfer); this grid is centred one octave
# lower in both (SP's one-axis optima fell about an octave per doubling of width) and asks whether
# SP tuned per width still keeps pace with muP there (1.847 at the proxy's LR and init).
# Same name as the 256-wide grid, so both write one results file. Seed outermost, the centre
# first: a partial grid is a usable one. 27 points; ~1.4 core-hours a seed on the shared 2-core
# CPU (a 512-wide point ~540 s on one thread).
#   nice python scripts/sweep.py experiments/width_transfer/width_sp_joint_paper_init_512.py --jobs 2 --threads 2
base_config = "config/transfer_paper.py"
results = "experiments/width_transfer/sp_joint_results.csv"  # rows land here; the runs under runs/<name>
name = "width_sp_joint_paper_init"
parameterization = ["sp"]
n_embd = [512]
init_std = [2.0 ** -k for k in (6, 5, 7)]
learning_rate = [2.0 ** -k for k in (10, 9, 11)]
seed = [0, 1, 2]
order = ["seed", "n_embd", "parameterization", "init_std", "learning_rate"]

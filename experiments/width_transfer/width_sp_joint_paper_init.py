# SP re-tuned on both axes at 4x width: a joint LR x init std grid at 256 wide (the base depth 2,
# 2 heads, the settings of experiments/width_transfer/width_lr_paper_init.py: the paper's AdamW settings, 2^20
# tokens). The width sweeps moved one hyperparameter at a time with the other at the 2 x 64
# proxy's value, and at 256 wide SP then ended near the bigram loss on either axis (LR: 2.50-2.56
# from 2^-11 to 2^-7 at init 2^-3; init: 2.53-2.69 at LR 2^-6). This grid asks whether SP tuned
# per width on both at once reaches muP's loss there (1.877 at the proxy's LR and init).
# The rest of the grid is already run: init 2^-3 at every LR (width_lr_paper_init) and LR 2^-6 at
# every init (width_init_std_paper_init); read the three results files together:
#   python scripts/plot_transfer.py experiments/width_transfer/sp_joint_results.csv \
#       experiments/width_transfer/results.csv experiments/width_transfer/init_std_results.csv \
#       --where parameterization=sp --where n_embd=256 --where 'init_std<=2^-3' \
#       --where 'learning_rate<=2^-6' --where 'learning_rate>=2^-10' --x learning_rate --by init_std \
#       --out experiments/width_transfer/sp_joint_256
# Seed outermost, the likely optimum first (SP's init optimum at 256 wide was 2^-5.4 at LR 2^-6,
# its LR optimum 2^-9.1 at init 2^-3). 36 points; measured 1.66 core-hours on the shared 2-core
# CPU (~155-185 s a point, two at a time).
#   nice python scripts/sweep.py experiments/width_transfer/width_sp_joint_paper_init.py --jobs 2 --threads 2
base_config = "config/transfer_paper.py"
results = "experiments/width_transfer/sp_joint_results.csv"  # rows land here; the runs under runs/<name>
parameterization = ["sp"]
n_embd = [256]
init_std = [2.0 ** -k for k in (5, 4, 6)]
learning_rate = [2.0 ** -k for k in (9, 8, 10, 7)]
seed = [0, 1, 2]
order = ["seed", "n_embd", "parameterization", "init_std", "learning_rate"]

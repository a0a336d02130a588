# The base init std found best on the 2 x 64 proxy under config/transfer_paper.py's settings
# (config/sweeps/depth_init_std_paper.py: about 2^-3 = 1/sqrt(64) at every depth under sp, mup
# and completep; every earlier transfer sweep had used 0.02, about 2.5 octaves lower). Pass it
# third: config/transfer_base.py, config/transfer_paper.py, then this file.
# At this init the 3-seed LR sweep (config/sweeps/depth_lr_paper_init.py) puts the 2-layer
# optimum at 2^-6 for all three parameterizations (best grid point).
init_std = 2 ** -3

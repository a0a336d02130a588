# One change to config/transfer_paper.py: the base init std found best on its 2 x 64 proxy
# (experiments/depth_init_std: about 2^-3 = 1/sqrt(64) at every depth under sp, mup and
# completep; the earlier transfer sweeps had used 0.02, about 2.5 octaves lower). Pass it second:
#   python train.py config/transfer_paper.py config/transfer_paper_init.py
# (scripts/shapes.py --base_config takes the same two files.) At this init the 3-seed LR sweep
# (experiments/depth_transfer) puts the 2-layer optimum at 2^-6 for all three parameterizations.
init_std = 2 ** -3

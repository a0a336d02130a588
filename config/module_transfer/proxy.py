# The proxy of the per-module transfer study (experiments/module_transfer): passed after
# config/transfer_base.py and config/transfer_paper.py, so it is their 2 x 64 model with the
# paper's optimizer settings (weight decay 0, eps 1e-12, 10% warmup then linear decay to zero),
# 2^20 tokens in 1,024 steps of 8 x 128, now Complete(d)P with untied embeddings (the
# unembedding is a module of its own). It names itself the base of the batch/duration rules
# (m_B = B / 8, m_D = D / 2^20), so a target's longer run rescales every group's LR, eps and
# betas. Its best global LR, 2^-6, is the best mean of two seeds in experiments/batch_duration
# (the completedp base arm, LR 2^-8..2^-3).
#   python scripts/search.py config/transfer_base.py config/transfer_paper.py \
#       config/module_transfer/proxy.py --learning_rate='2**-6' --seeds 0,1 --trials 30 ...
parameterization = "completedp"
tie_embeddings = False
base_batch_size = 8
base_tokens = 2 ** 20

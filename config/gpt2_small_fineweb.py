# GPT-2 small on FineWeb-Edu (sample-10BT) instead of OpenWebText: everything else is
# config/gpt2_small_owt.py, so pass both, this one second:
#   python data/fineweb/prepare.py
#   torchrun --standalone --nproc_per_node=8 train.py config/gpt2_small_owt.py config/gpt2_small_fineweb.py
dataset = "fineweb"
out_dir = "out-gpt2-fineweb"

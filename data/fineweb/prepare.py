"""
FineWeb-Edu (or FineWeb), GPT-2 tokens in shards of 100M, the first one validation.

    python data/fineweb/prepare.py                         # FineWeb-Edu sample-10BT (~10B tokens)
    python data/fineweb/prepare.py --subset sample-100BT   # a larger sample
    python data/fineweb/prepare.py --classic               # HuggingFaceFW/fineweb instead of -edu
    python data/fineweb/prepare.py --streaming             # no full download first (less disk)

Downloads from the Hugging Face hub (HuggingFaceFW/fineweb-edu, ODC-By 1.0). sample-10BT
needs about 30 GB for the download plus 20 GB of shards (uint16 tokens: 2 bytes each).
Re-running resumes after the last finished shard. Writes next to this file by default.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from common import add_common_args, run_hub, run_cli  # noqa: E402

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", default="sample-10BT", help="config of the hub dataset: sample-10BT, "
                    "sample-100BT, sample-350BT, default (all), or a CC-MAIN-* dump")
    ap.add_argument("--classic", action="store_true", help="HuggingFaceFW/fineweb instead of fineweb-edu")
    ap.add_argument("--out_dir", default=HERE)
    ap.add_argument("--text_field", default="text")
    add_common_args(ap, shard_size=10 ** 8)
    args = ap.parse_args()
    if args.classic:
        run_hub(args, "fineweb", "HuggingFaceFW/fineweb", args.subset)
    else:
        run_hub(args, "edufineweb", "HuggingFaceFW/fineweb-edu", args.subset)


if __name__ == "__main__":
    run_cli(main)

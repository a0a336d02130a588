"""
Shared code of the GPT-2 BPE prepare scripts: documents -> tokens -> llm.c shards.

Every document is tokenized with GPT-2's BPE (tiktoken, `encode_ordinary`: special-token
text in a document is plain text) and preceded by <|endoftext|>, so the model always sees a
boundary before a new document. The token stream is cut into shards of exactly shard_size
tokens (the last one shorter); shard 0 is validation, the rest training, named as in llm.c:
NAME_val_000000.bin, NAME_train_000001.bin, ... (format: dataloader.write_tokens).

meta.json is rewritten after every shard (and, with "complete": false, before the first one
changes). Besides the tokenizer and the shard list (token count, size and CRC-32 of each
shard, checked by the loader) it holds each shard's end position in the document stream
(document index, token offset), so an interrupted run resumes after its last finished shard
without tokenizing those again, and "complete": true only once the last shard is written
(open_dataset refuses an incomplete one). Its "sha256" map holds each shard's whole-file
checksum, which scripts/verify_data.py compares (every byte: only when asked).
"""
import glob
import json
import multiprocessing as mp
import os
import shlex
import sys
import time
from collections import deque

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from dataloader import checksum, fingerprint, read_tokens, write_tokens  # noqa: E402
from runs import regular_file, write_json  # noqa: E402
from runs import UserError, run_cli  # noqa: E402,F401 -- run_cli re-exported for the prepare scripts

EOT = "<|endoftext|>"
READ_BATCH = 1024  # rows per read from a datasets object (column batches decode faster than rows)


def fail(msg):
    """A mistake the user can fix: raised as runs.UserError, which each prepare script's
    run_cli prints as one `error:` line with exit code 2, like train.py."""
    raise UserError(msg)


def gpt2_encoding(ranks_file=None):
    """GPT-2's tokenizer. tiktoken downloads its vocabulary once (then caches it); offline,
    pass a local .tiktoken ranks file of GPT-2 (e.g. whisper/assets/gpt2.tiktoken of the PyPI
    sdist openai-whisper) and the same encoding is built from it."""
    import tiktoken
    if ranks_file is None:
        try:
            return tiktoken.get_encoding("gpt2")
        except Exception as e:  # no network and no cached vocabulary
            fail(f"cannot load tiktoken's gpt2 vocabulary ({type(e).__name__}); connect to the "
                 "internet once, or pass --tiktoken_file with a local GPT-2 .tiktoken ranks file")
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext.openai_public import r50k_pat_str
    regular_file(ranks_file, "--tiktoken_file")  # a FIFO would block the read forever
    try:
        ranks = load_tiktoken_bpe(ranks_file)
    except Exception as e:
        fail(f"cannot read {ranks_file} as a .tiktoken ranks file ({type(e).__name__}); pass GPT-2's ranks")
    if len(ranks) != 50256:
        fail(f"{ranks_file} has {len(ranks)} ranks, GPT-2 has 50256; pass GPT-2's ranks file")
    return tiktoken.Encoding("gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks, special_tokens={EOT: 50256})


def load_documents(source, config=None, split="train", text_field="text", streaming=False,
                   text_by="document", cache_dir=None, revision=None):
    """A datasets object of documents: local files (.txt, .jsonl/.json, .parquet; a list or
    glob patterns; always streamed) or a Hugging Face dataset name (downloaded first unless
    streaming). Never runs dataset scripts."""
    import datasets
    patterns = list(source) if isinstance(source, (list, tuple)) else [source]
    local = [p for pat in patterns for p in sorted(glob.glob(pat)) if os.path.isfile(p)]
    looks_local = any(os.path.splitext(p)[1] or os.path.isabs(p) or p.startswith(".") or os.path.isdir(p)
                      for p in patterns)
    if not local and (looks_local or len(patterns) > 1):
        fail(f"no file matches {' '.join(patterns)}; give files or glob patterns, e.g. 'corpus/*.jsonl'")
    try:
        if local:  # read in place, lazily: no copy of the corpus in datasets' Arrow cache
            kinds = {_file_kind(p) for p in local}
            if len(kinds) != 1:
                fail(f"mixed file types {sorted(kinds)} in {' '.join(patterns)}; prepare one type at a time")
            kind = kinds.pop()
            kwargs = dict(sample_by=text_by) if kind == "text" else {}
            ds = datasets.load_dataset(kind, data_files=local, split="train", streaming=True, **kwargs)
        else:  # a Hugging Face dataset name, e.g. HuggingFaceFW/fineweb-edu
            ds = datasets.load_dataset(patterns[0], name=config, split=split, streaming=streaming,
                                       cache_dir=cache_dir, revision=revision)
    except Exception as e:  # offline, a typo, a gated dataset, a bad file: one line, not a traceback
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        if local:
            fail(f"cannot read {' '.join(patterns)} ({type(e).__name__}: {detail}); fix the files")
        what = ", ".join(x for x in (f"config {config}" if config else "", f"split {split}") if x)
        fail(f"cannot load {patterns[0]!r} ({what}) from the Hugging Face hub: "
             f"{detail}; check the name and the network (HF_HUB_OFFLINE=1 uses only the local cache), "
             "or pass local files")
    columns = ds.column_names or []  # None for some streaming datasets until read
    if columns and text_field not in columns:
        fail(f"{' '.join(patterns)} has no column {text_field!r} (it has {', '.join(columns)}); "
             "pass --text_field")
    return ds


def _file_kind(path):
    parts = path.lower().split(".")
    ext = parts[-2] if parts[-1] in ("gz", "bz2", "xz", "zst") and len(parts) > 2 else parts[-1]
    kind = {"txt": "text", "text": "text", "md": "text", "jsonl": "json", "json": "json",
            "parquet": "parquet"}.get(ext)
    if kind is None:
        fail(f"{path}: unknown file type .{ext}; give .txt, .jsonl/.json or .parquet files")
    return kind


# --- tokenization in worker processes: the encoding is sent once, at pool start ---

_enc = None


def _init_worker(enc_args):
    global _enc
    import tiktoken
    _enc = tiktoken.Encoding(**enc_args)


def _tokenize(text):
    """[eot] + tokens of one document, in the shard dtype."""
    ids = _enc.encode_ordinary(text)
    out = np.empty(len(ids) + 1, dtype=np.uint16 if _enc.n_vocab <= 2 ** 16 else np.uint32)
    out[0] = _enc.eot_token
    out[1:] = ids
    return out


def _tokenize_batch(texts):
    return [_tokenize(t) for t in texts]


def _in_order(pool, workers, texts, batch=64):
    """Tokenized documents in input order, from batches of documents spread over the pool.
    At most 2 batches per worker are in flight: Pool.imap would read the whole input ahead
    (all of a streamed dataset into memory) while the workers lag behind."""
    pending, chunk = deque(), []
    for text in texts:
        chunk.append(text)
        if len(chunk) == batch:
            pending.append(pool.apply_async(_tokenize_batch, (chunk,)))
            chunk = []
            if len(pending) > 2 * workers:
                yield from pending.popleft().get()
    if chunk:
        pending.append(pool.apply_async(_tokenize_batch, (chunk,)))
    while pending:
        yield from pending.popleft().get()


def _encoding_args(enc):
    return dict(name=enc.name, pat_str=enc._pat_str, mergeable_ranks=enc._mergeable_ranks,
                special_tokens=enc._special_tokens)


def _texts(ds, text_field, start_doc, source):
    if start_doc:
        ds = ds.skip(start_doc)
    if ds.column_names:  # decode only the text column
        ds = ds.select_columns([text_field])
    batches = ds.iter(batch_size=READ_BATCH)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as e:  # a malformed file or a dropped connection, met while streaming
            detail = (str(e).strip().splitlines() or [""])[0][:200]
            fail(f"reading {source} failed ({type(e).__name__}: {detail}); fix or remove the bad input "
                 "and run the same command again (finished shards are kept)")
        if text_field not in batch:
            fail(f"the documents have no field {text_field!r} (they have {', '.join(batch)}); pass --text_field")
        for text in batch[text_field]:
            yield text or ""  # a missing text is an empty document


def shard_name(name, index):
    return f"{name}_{'val' if index == 0 else 'train'}_{index:06d}.bin"


def _write_meta(out_dir, meta):
    write_json(os.path.join(out_dir, "meta.json"), meta, indent=1)


def _finished_shards(out_dir, settings, command):
    """The shards of an earlier run with the same settings that are still intact on disk, whether
    it finished, and its sha256 map."""
    path = os.path.join(out_dir, "meta.json")
    if not os.path.exists(path):
        return [], False, {}
    try:
        with open(regular_file(path, "dataset metadata"), encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError, RecursionError):
        old = None
    if not isinstance(old, dict):
        fail(f"{path} is not valid JSON, or not an object; delete {out_dir} and run {command}")
    diff = [f"{k}={old.get(k)!r} there, {v!r} here" for k, v in settings.items() if old.get(k) != v]
    if diff:
        fail(f"{out_dir} holds shards prepared differently ({'; '.join(diff)}); delete them or "
             "choose another --out_dir")
    done = []
    for s in old["shards"] if isinstance(old.get("shards"), list) else []:
        try:
            path = os.path.join(out_dir, s["file"])
            ok = (s["file"] == shard_name(settings["name"], len(done)) and len(read_tokens(path)) == s["tokens"]
                  and all(s.get(k, v) == v for k, v in fingerprint(path).items()))
        except Exception:  # missing or damaged: redo from here
            ok = False
        if not ok:
            break
        done.append(s)
    sums = old["sha256"] if isinstance(old.get("sha256"), dict) else {}
    return done, old.get("complete", False) and len(done) == len(old.get("shards", [])), sums


def prepare_shards(ds, out_dir, name, enc, shard_size=10 ** 8, text_field="text", workers=None,
                   source="", split="", command="", progress=True):
    """Tokenize the documents of `ds` (a datasets Dataset or IterableDataset) with `enc` (a
    tiktoken.Encoding, injected so tests run offline) into shards in out_dir. Re-running
    keeps the finished shards and goes on after them. Returns the meta dict.

    workers: processes that tokenize (None: all cores; 0: tokenize in this process)."""
    if shard_size < 1:
        fail(f"shard_size={shard_size} must be positive")
    command = command or "python " + " ".join(shlex.quote(a) for a in sys.argv)
    eot = enc.eot_token
    settings = dict(tokenizer=enc.name, vocab_size=enc.n_vocab, eot=eot, name=name, source=source,
                    split=split, text_field=text_field, shard_size=shard_size)
    os.makedirs(out_dir, exist_ok=True)
    shards, complete, sums = _finished_shards(out_dir, settings, command)
    meta = dict(settings, command=command, complete=False, shards=shards)
    if complete:
        print(f"{out_dir}: all {len(shards)} shards already prepared; nothing to do")
        return dict(meta, complete=True, sha256=sums)
    # the kept shards' checksums (computed for those of a prepare that recorded none)
    meta["sha256"] = {s["file"]: sums.get(s["file"]) or checksum(os.path.join(out_dir, s["file"])) for s in shards}
    _write_meta(out_dir, meta)  # "complete": false before any shard changes
    for stale in glob.glob(os.path.join(out_dir, f"{name}_*.bin.tmp*")):
        os.remove(stale)  # the half-written shard of an interrupted run
    start_doc, skip = (shards[-1]["end_doc"], shards[-1]["end_offset"]) if shards else (0, 0)
    if shards:
        print(f"{out_dir}: {len(shards)} shards already done; going on from document {start_doc:,}")

    dtype = np.uint16 if enc.n_vocab <= 2 ** 16 else np.uint32
    buf = np.empty(shard_size, dtype=dtype)
    fill = 0

    def flush(end_doc, end_offset):
        index = len(meta["shards"])
        path = os.path.join(out_dir, shard_name(name, index))
        write_tokens(path, buf[:fill], vocab_size=enc.n_vocab)
        meta["shards"].append(dict(file=shard_name(name, index), split="val" if index == 0 else "train",
                                   tokens=int(fill), **fingerprint(path),
                                   end_doc=int(end_doc), end_offset=int(end_offset)))
        meta["sha256"][shard_name(name, index)] = checksum(path)
        _write_meta(out_dir, meta)  # after the shard exists: a listed shard is a finished shard

    workers = os.cpu_count() if workers is None else workers
    pool = mp.Pool(workers, initializer=_init_worker, initargs=(_encoding_args(enc),)) if workers else None
    if pool is None:
        _init_worker(_encoding_args(enc))
    texts = _texts(ds, text_field, start_doc, source)
    tokenized = _in_order(pool, workers, texts) if pool else map(_tokenize, texts)
    bar = _progress(progress, sum(s["tokens"] for s in shards))
    doc, t0, total = start_doc, time.time(), 0
    try:
        for toks in tokenized:
            pos = first = skip if doc == start_doc else 0  # resuming inside a document: its head is written
            while pos < len(toks):
                take = min(shard_size - fill, len(toks) - pos)
                buf[fill:fill + take] = toks[pos:pos + take]
                fill, pos, total = fill + take, pos + take, total + take
                if fill == shard_size:  # the next unwritten token: document doc, offset pos
                    flush(*((doc, pos) if pos < len(toks) else (doc + 1, 0)))
                    fill = 0
            doc += 1
            if bar is not None:
                bar.update(len(toks) - first)
    finally:
        if pool is not None:
            pool.terminate()
        if bar is not None:
            bar.close()
    if fill:
        flush(doc, 0)
    if len(meta["shards"]) < 2:
        fail(f"{source}: only {total:,} tokens, not more than one shard of {shard_size:,}, so nothing is "
             "left for training after the validation shard; lower --shard_size")
    meta.update(complete=True, documents=doc, total_tokens=sum(s["tokens"] for s in meta["shards"]))
    _write_meta(out_dir, meta)
    dt = time.time() - t0
    print(f"{source}: {doc:,} documents, {meta['total_tokens']:,} tokens in {len(meta['shards'])} shards "
          f"(val {meta['shards'][0]['tokens']:,}) -> {out_dir}; {total / max(dt, 1e-9):,.0f} tokens/s "
          f"with {workers or 'no'} worker processes")
    return meta


def _progress(on, done):
    if not on:
        return None
    from tqdm import tqdm
    return tqdm(unit="tok", unit_scale=True, initial=done, desc="tokenizing")


def add_common_args(ap, shard_size, corpus=True):
    """The flags the prepare scripts share (corpus: many documents, maybe from the hub)."""
    ap.add_argument("--shard_size", type=int, default=shard_size, help="tokens per shard (the first is val)")
    if corpus:
        ap.add_argument("--workers", type=int, default=None,
                        help="tokenizer processes (default: all cores; 0: none)")
        ap.add_argument("--streaming", action="store_true",
                        help="hub datasets: stream instead of downloading first")
    ap.add_argument("--tiktoken_file", help="a local GPT-2 .tiktoken ranks file, for machines without internet")
    ap.add_argument("--no_progress", action="store_true", help="no progress bar (logs of batch jobs)")


def run_hub(args, name, dataset, config=None, split="train", revision=None):
    """A prepare script's body for a Hugging Face dataset: load it, tokenize, shard."""
    ds = load_documents(dataset, config, split, args.text_field, args.streaming, revision=revision)
    source = dataset + (f" ({config})" if config else "") + (f" @ {revision}" if revision else "")
    return prepare_shards(ds, args.out_dir, name, gpt2_encoding(args.tiktoken_file), args.shard_size,
                          args.text_field, args.workers, source, split, progress=not args.no_progress)

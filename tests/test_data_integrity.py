"""Hostile data, second round: corruption inside a file (the full sha256 check of verify_data
and scripts/verify_data.py), files that would block open() forever (FIFOs), and absurd numbers
in meta.json or a checkpoint's data position. Each mistake is one UserError line. Offline, CPU."""
import importlib.util
import json
import os
import shutil
import signal
import sys
import zlib
from contextlib import contextmanager

import numpy as np
import pytest

from conftest import REPO, run_main, write_char_dataset

sys.path.insert(0, REPO)
import dataloader  # noqa: E402
from runs import UserError  # noqa: E402
from dataloader import (ShardLoader, checksum, fingerprint, open_dataset, read_meta,  # noqa: E402
                        read_tokens, verify_data, write_tokens)


def load_script(rel, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def one_line(fn, *words):
    """fn() raises a UserError of one line holding every word; returns the line."""
    with pytest.raises(UserError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 600, msg
    for w in words:
        assert w in msg, msg
    return msg


@contextmanager
def deadline(seconds=10):
    """Fail, not hang, if the body blocks (a FIFO opened for reading waits for a writer)."""
    def expired(*_):
        raise TimeoutError(f"blocked for {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def bins(d, n_train=1_500_000, vocab=300, seed=0):
    """train.bin (3 MB: larger than the fingerprint's two MiB) + val.bin with a meta.json as
    prepare writes it: size and CRC-32 of each file, and apart their sha256."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    files, sums = {}, {}
    for name, n in (("train.bin", n_train), ("val.bin", 5000)):
        path = os.path.join(d, name)
        write_tokens(path, rng.integers(0, vocab, n), vocab_size=vocab)
        files[name], sums[name] = fingerprint(path), checksum(path)
    json.dump(dict(tokenizer="test", vocab_size=vocab, command="python make_bins.py", files=files, sha256=sums),
              open(os.path.join(d, "meta.json"), "w"))
    return d


BIG = 1_100_000  # tokens of a shard larger than the fingerprint's two MiB


def shards(d, n=4, tokens=3000, vocab=500, sha=True):
    """A val shard and n-1 train shards listed in meta.json (with their sha256 if sha)."""
    os.makedirs(d, exist_ok=True)
    rng, entries, sums = np.random.default_rng(1), [], {}
    for i in range(n):
        name = f"t_{'val' if i == 0 else 'train'}_{i:06d}.bin"
        path = os.path.join(d, name)
        write_tokens(path, rng.integers(0, vocab, tokens), vocab_size=65536)
        entries.append(dict(file=name, split="val" if i == 0 else "train", tokens=tokens, **fingerprint(path)))
        sums[name] = checksum(path)
    meta = dict(tokenizer="test", vocab_size=vocab, command="python make_shards.py", complete=True, shards=entries)
    json.dump(dict(meta, sha256=sums) if sha else meta, open(os.path.join(d, "meta.json"), "w"))
    return d


def rewrite_middle(path, offset_tokens, n=3):
    """n other valid ids (each one off) in place, in the middle of a file: size and ends unchanged."""
    old = np.array(read_tokens(path)[offset_tokens:offset_tokens + n])
    with open(path, "r+b") as f:
        f.seek(dataloader.HEADER_BYTES + 2 * offset_tokens)
        f.write(np.where(old > 0, old - 1, old + 1).astype(np.uint16).tobytes())


# --- class 11: corruption inside a file ------------------------------------------------------

def test_a_rewritten_middle_passes_the_start_up_check_but_not_verify_data(tmp_path):
    """The red team's example: train.bin rewritten in its middle with other valid ids."""
    d = bins(str(tmp_path / "d"))
    assert verify_data(d)["files"] == ["train.bin", "val.bin"]
    path = os.path.join(d, "train.bin")
    rewrite_middle(path, 700_000, 100)
    open_dataset(d, 32, 4, 8)  # the fingerprint (ends of the file) cannot see it: start-up is cheap
    one_line(lambda: verify_data(d), f"{path} does not match meta.json (sha256", "in meta.json",
             "re-run python make_bins.py")


def test_char_prepare_records_sha256_and_a_changed_val_bin_is_found(char_data, tmp_path):
    d = str(tmp_path / "c")
    shutil.copytree(char_data, d)
    meta = read_meta(d)
    for name in ("train.bin", "val.bin"):  # the prepare recorded the whole file's checksum, apart
        assert meta["sha256"][name] == checksum(os.path.join(d, name))
        assert meta["files"][name] == fingerprint(os.path.join(d, name))
    assert verify_data(d)["bytes"] == sum(os.path.getsize(os.path.join(d, n)) for n in ("train.bin", "val.bin"))
    rewrite_middle(os.path.join(d, "val.bin"), 3000)  # a small file: its CRC-32 covers it all
    one_line(lambda: verify_data(d), "val.bin does not match meta.json (crc32", "shakespeare_char/prepare.py")


def test_checksums_change_nothing_a_resume_compares(tmp_path):
    """The start-up fingerprint keeps its fields and values, and recording checksums later
    (--write) leaves every field a checkpoint compares with the dataset as it was."""
    from checkpoint import DATA_IDENTITY
    path = str(tmp_path / "x.bin")
    write_tokens(path, np.arange(10), vocab_size=300)
    raw = open(path, "rb").read()
    assert fingerprint(path) == {"bytes": len(raw), "crc32": zlib.crc32(raw)}
    for d in (shards(str(tmp_path / "s"), sha=False), bins(str(tmp_path / "b"), n_train=5000)):
        meta = read_meta(d)
        if "sha256" in meta:
            del meta["sha256"]
            json.dump(meta, open(os.path.join(d, "meta.json"), "w"))
        before = {k: meta.get(k) for k in DATA_IDENTITY}
        verify_data(d, write=True)
        assert {k: read_meta(d).get(k) for k in DATA_IDENTITY} == before and "sha256" in read_meta(d)


@pytest.mark.parametrize("breakit, words", [
    ("middle", ["t_train_000002.bin does not match meta.json (sha256", "re-run python make_shards.py"]),
    ("missing", ["t_train_000003.bin is missing"]),
    ("unlisted", ["t_train_000009.bin is not listed in meta.json"]),
    ("other preparation", ["t_train_000001.bin does not match meta.json (crc32"]),
    ("unreadable", ["t_val_000000.bin cannot be read to the end (Input/output error)"]),
])
def test_shard_corruption_is_found(tmp_path, monkeypatch, breakit, words):
    d = shards(str(tmp_path / "s"), tokens=BIG if breakit == "middle" else 3000)
    verify_data(d)
    p = lambda i: os.path.join(d, f"t_{'val' if i == 0 else 'train'}_{i:06d}.bin")  # noqa: E731
    if breakit == "middle":
        rewrite_middle(p(2), BIG // 2)
    elif breakit == "missing":
        os.remove(p(3))
    elif breakit == "unlisted":
        shutil.copy(p(1), p(9))
    elif breakit == "other preparation":
        write_tokens(p(1), np.zeros(3000, np.uint16), vocab_size=65536)  # same size
    else:
        def eio(path, chunk=0):
            raise OSError(5, "Input/output error")
        monkeypatch.setattr(dataloader, "checksum", eio)
    one_line(lambda: verify_data(d), *words)


def test_a_dataset_without_checksums_says_how_to_add_them_and_write_records_them(tmp_path):
    d = shards(str(tmp_path / "old"), sha=False)  # prepared before checksums were recorded
    before = open(os.path.join(d, "meta.json")).read()
    one_line(lambda: verify_data(d), "records no sha256 for 4 of its 4 token files", "re-run python make_shards.py",
             f"python scripts/verify_data.py {d} --write")
    assert open(os.path.join(d, "meta.json")).read() == before  # nothing written without --write
    summary = verify_data(d, write=True)
    assert summary["recorded"] == summary["files"] and "recorded in meta.json for 4" in summary["text"]
    assert verify_data(d)["recorded"] == [] and set(read_meta(d)["sha256"]) == set(summary["files"])
    open_dataset(d, 32, 4, 8)  # the meta.json --write rewrote still opens


def test_write_refuses_files_of_another_preparation_and_keeps_meta(tmp_path):
    d = shards(str(tmp_path / "old"), sha=False)
    write_tokens(os.path.join(d, "t_train_000002.bin"), np.ones(3000, np.uint16), vocab_size=65536)
    before = open(os.path.join(d, "meta.json")).read()
    one_line(lambda: verify_data(d, write=True), "t_train_000002.bin does not match meta.json (crc32")
    assert open(os.path.join(d, "meta.json")).read() == before


def test_write_records_llmc_shards_of_a_hand_written_meta(tmp_path):
    d = shards(str(tmp_path / "llmc"), tokens=BIG)
    json.dump({"tokenizer": "gpt2", "vocab_size": 50257}, open(os.path.join(d, "meta.json"), "w"))
    one_line(lambda: verify_data(d), "records no sha256 for 4 of its 4")
    verify_data(d, write=True)
    meta = read_meta(d)
    assert sorted(meta) == ["sha256", "tokenizer", "vocab_size"] and len(meta["sha256"]) == 4
    assert open_dataset(d, 32, 4, 8).describe.startswith("sequential shards: 3 train shards")
    rewrite_middle(os.path.join(d, "t_train_000001.bin"), BIG // 2)
    one_line(lambda: verify_data(d), "t_train_000001.bin does not match meta.json (sha256")


def test_verify_script_prints_each_file_and_the_cost(tmp_path, capsys):
    script = load_script("scripts/verify_data.py", "verify_data_script")
    d = shards(str(tmp_path / "s"), tokens=BIG)
    with pytest.raises(SystemExit) as e:
        _run_cli(script, [d])
    out = capsys.readouterr()
    assert e.value.code == 0, out.err
    lines = out.out.strip().splitlines()
    assert [ln.split()[:2] for ln in lines[:4]] == [["OK", f"t_{'val' if i == 0 else 'train'}_{i:06d}.bin"]
                                                    for i in range(4)]
    assert all(ln.endswith("MB/s") for ln in lines[:4]) and "match meta.json's sha256; read in" in lines[4]
    rewrite_middle(os.path.join(d, "t_train_000003.bin"), BIG // 2)
    with pytest.raises(SystemExit) as e:
        _run_cli(script, [d])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and "sha256" in err[0], err


def _run_cli(script, argv):
    """The script as its __main__ runs it: runs.run_cli(main) with argv, in this process."""
    from runs import run_cli
    old = sys.argv
    sys.argv = ["verify_data.py", *argv]
    try:
        run_cli(script.main)
    finally:
        sys.argv = old


# --- class 8: a FIFO (or any non-regular file) is refused before it is opened ----------------

def _char_prepare():
    return load_script("data/shakespeare_char/prepare.py", "char_prepare_fifo")


def _sample(tmp_path, start, best_fifo=False):
    import sample
    out = tmp_path / "out"
    out.mkdir()
    if best_fifo:
        os.mkfifo(out / "best.pt")
    else:
        (out / "ckpt_0000001.pt").write_bytes(b"never read: the prompt is refused first")
    return lambda: run_main(sample, [f"--out_dir={out}", f"--start={start}", "--device=cpu"])


def _fifo_case(kind, tmp_path):
    """(the call, the words of its error) for a FIFO where a file is expected."""
    d = str(tmp_path / "d")

    def fifo_in_place(name):
        os.remove(os.path.join(d, name))
        os.mkfifo(os.path.join(d, name))
    if kind == "train.bin":
        write_char_dataset(d)
        fifo_in_place("train.bin")
        return lambda: open_dataset(d, 32, 4, 8), ["token file", "train.bin is a FIFO"]
    if kind == "shard":
        shards(d)
        fifo_in_place("t_train_000002.bin")
        return lambda: open_dataset(d, 32, 4, 8), ["t_train_000002.bin is a FIFO"]
    if kind == "meta.json":
        write_char_dataset(d)
        fifo_in_place("meta.json")
        return lambda: open_dataset(d, 32, 4, 8), ["dataset metadata", "meta.json is a FIFO"]
    if kind == "verify_data":
        shards(d)
        fifo_in_place("t_val_000000.bin")
        return lambda: verify_data(d), ["t_val_000000.bin is a FIFO"]
    if kind == "checksum":
        os.mkfifo(str(tmp_path / "f.bin"))
        return lambda: checksum(str(tmp_path / "f.bin")), ["f.bin is a FIFO"]
    if kind == "sample prompt":
        os.mkfifo(str(tmp_path / "prompt.txt"))
        return _sample(tmp_path, f"FILE:{tmp_path / 'prompt.txt'}"), ["the prompt file", "prompt.txt is a FIFO"]
    if kind == "sample best.pt":
        return _sample(tmp_path, "ROMEO", best_fifo=True), ["checkpoint", "best.pt is a FIFO"]
    if kind == "char prepare --input":
        os.mkfifo(str(tmp_path / "in.txt"))
        return lambda: _char_prepare().prepare(d, str(tmp_path / "in.txt")), ["--input", "in.txt is a FIFO"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["train.bin", "shard", "meta.json", "verify_data", "checksum", "sample prompt",
                                  "sample best.pt", "char prepare --input"])
def test_a_fifo_is_refused_at_once(tmp_path, kind):
    call, words = _fifo_case(kind, tmp_path)
    with deadline(20):
        one_line(call, *words, "not a regular file")


# --- class 9: absurd numbers and shapes in meta.json -----------------------------------------

def _meta(d, text=None, **change):
    """Rewrite meta.json: as raw text, or with fields changed (a function: of the old meta)."""
    path = os.path.join(d, "meta.json")
    if text is None:
        meta = json.load(open(path))
        meta.update({k: v(meta) if callable(v) else v for k, v in change.items()})
        text = json.dumps(meta)
    open(path, "w").write(text)


META = [  # (id, change, the words of the error)
    ("vocab_size 10**400", dict(vocab_size=10 ** 400),
     ["vocab_size 10000000000000000000... is larger than 4,294,967,296"]),
    ("vocab_size 2**32 + 1", dict(vocab_size=2 ** 32 + 1), ["larger than 4,294,967,296", "uint32"]),
    ("vocab_size 1e400 (inf)", dict(text='{"tokenizer": "char", "vocab_size": 1e400}'),
     ["integer vocab_size > 0, got inf"]),
    ("vocab_size of 5000 digits", dict(text='{"tokenizer": "char", "vocab_size": ' + "9" * 5000 + "}"),
     ["is not valid JSON (Exceeds the limit"]),
    ("vocab_size true", dict(vocab_size=True), ["integer vocab_size > 0, got True"]),
    ("vocab_size 0", dict(vocab_size=0), ["integer vocab_size > 0, got 0"]),
    ("vocab_size -5", dict(vocab_size=-5), ["integer vocab_size > 0, got -5"]),
    ("nested arrays", dict(text="[" * 100_000 + "]" * 100_000), ["nested too deeply"]),
    ("nested in a field", dict(text='{"tokenizer": "char", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
     ["nested too deeply"]),
    ("itos not a list", dict(itos="abc"), ["itos must be list, got 'abc'"]),
    ("itos of numbers", dict(itos=lambda m: list(range(m["vocab_size"]))),
     ["itos must be a list of distinct non-empty strings", "it has 0"]),
    ("itos with a repeat", dict(itos=lambda m: ["a"] * m["vocab_size"]), ["a repeated entry"]),
    ("itos shorter than vocab_size", dict(itos=["a", "b"]), ["vocab_size equal to its length"]),
    ("eot 10**30", dict(eot=10 ** 30), ["eot 10000000000000000000... is not a token id below vocab_size"]),
    ("eot -1", dict(eot=-1), ["eot -1 is not a token id"]),
    ("train_tokens 10**400", dict(train_tokens=10 ** 400), ["train_tokens 10000000000000000000... is not a token count"]),
    ("val_tokens -1", dict(val_tokens=-1), ["val_tokens -1 is not a token count"]),
    ("files crc32 10**400", dict(files={"train.bin": dict(bytes=1, crc32=10 ** 400)}),
     ["files['train.bin'].crc32 must be a 32-bit unsigned int, got 1000000"]),
    ("files bytes true", dict(files={"train.bin": dict(bytes=True, crc32=1)}),
     ["must be {\"bytes\": int, \"crc32\": int}"]),
    ("files bytes -1", dict(files={"train.bin": dict(bytes=-1, crc32=1)}),
     ["files['train.bin'].bytes must be the size of a token file"]),
    ("sha256 not hex", dict(sha256={"train.bin": "xyz"}), ["sha256['train.bin'] must be 64 hex digits, got 'xyz'"]),
    ("sha256 not a map", dict(sha256=[1]), ["sha256 must be dict, got [1]"]),
]


@pytest.mark.parametrize("change, words", [pytest.param(c, w, id=i) for i, c, w in META])
def test_absurd_meta_json_is_one_line(tmp_path, change, words):
    d = write_char_dataset(str(tmp_path / "d"))
    _meta(d, **change)
    one_line(lambda: open_dataset(d, 32, 4, 8), *words)


@pytest.mark.parametrize("i, change, words", [
    (1, dict(bytes=10 ** 400), ["shards[1].bytes must be the size of a token file (0 .. 8,589,935,612), got 1000000"]),
    (0, dict(crc32=-1), ["shards[0].crc32 must be a 32-bit unsigned int, got -1"]),
    (2, dict(tokens=10 ** 400), ["shards[2].tokens 10000000000000000000... is not a token count"]),
])
def test_absurd_shard_entries_are_one_line(tmp_path, i, change, words):
    d = shards(str(tmp_path / "s"))
    meta = json.load(open(os.path.join(d, "meta.json")))
    meta["shards"][i].update(change)
    json.dump(meta, open(os.path.join(d, "meta.json"), "w"))
    one_line(lambda: open_dataset(d, 32, 4, 8), *words)
    one_line(lambda: verify_data(d), *words)


@pytest.mark.parametrize("change", [dict(offset=-5), dict(shard=-1), dict(shard=99), dict(seed=-1),
                                    dict(epoch=-1), dict(offset=10 ** 400)])
def test_a_checkpoint_data_position_outside_the_shards_is_refused(tmp_path, change):
    d = shards(str(tmp_path / "s"))
    paths = sorted(os.path.join(d, f) for f in os.listdir(d) if "_train_" in f)
    loader = ShardLoader(paths, 32, 4, 8)
    loader.next_step()
    state = dict(loader.state_dict(), **change)
    one_line(lambda: ShardLoader(paths, 32, 4, 8).load_state_dict(state), "is not a place in the dataset's 3 shards",
             "delete the checkpoint")
    fresh = ShardLoader(paths, 32, 4, 8)
    fresh.load_state_dict(loader.state_dict())  # a real position still resumes
    assert (fresh.epoch, fresh.shard, fresh.offset) == (loader.epoch, loader.shard, loader.offset)

"""The BPE prepare scripts (data/common.py) on local files with a small tokenizer built
offline, their resume after an interruption, and train.py on the shards they write."""
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import TINY as CONF_TINY

import tiktoken
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "data"))
import common  # noqa: E402
from dataloader import open_dataset, read_tokens  # noqa: E402
from runs import UserError  # noqa: E402

GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def small_encoding():
    """A byte-level BPE with GPT-2's split pattern, a few merges and <|endoftext|> = 262."""
    ranks = {bytes([i]): i for i in range(256)}
    for word in (b"th", b"he", b"the", b" t", b" the", b"in"):
        ranks[word] = len(ranks)
    return tiktoken.Encoding("test-bpe", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": len(ranks)})


ENC = small_encoding()
WORDS = "the king thee then in thine heart night sword crown 1599 naïve café — <|endoftext|>".split()


def make_docs(n=60, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) + rng.choice([".", "!\n", "?"])
            for _ in range(n)]


def expected(docs):
    return np.concatenate([[ENC.eot_token] + ENC.encode_ordinary(d) for d in docs])


def write_inputs(d, docs, kind):
    os.makedirs(d, exist_ok=True)
    if kind == "txt":  # one document per file
        for i, doc in enumerate(docs):
            with open(os.path.join(d, f"doc_{i:03d}.txt"), "w", encoding="utf-8") as f:
                f.write(doc)
        return os.path.join(d, "*.txt")
    if kind == "jsonl":
        path = os.path.join(d, "docs.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for doc in docs:
                f.write(json.dumps({"id": 1, "text": doc}) + "\n")
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = os.path.join(d, "docs.parquet")
    pq.write_table(pa.table({"text": docs, "n": list(range(len(docs)))}), path, row_group_size=16)
    return path


def prepare(out_dir, pattern, shard_size=300, workers=0):
    ds = common.load_documents(pattern)  # local files are streamed: nothing cached outside tmp_path
    return common.prepare_shards(ds, out_dir, "tst", ENC, shard_size, workers=workers, source="test",
                                 command="python data/custom/prepare.py --test", progress=False)


def all_tokens(out_dir, meta):
    return np.concatenate([read_tokens(os.path.join(out_dir, s["file"])) for s in meta["shards"]])


@pytest.mark.parametrize("kind", ["txt", "jsonl", "parquet"])
def test_prepare_equals_direct_tokenization(tmp_path, kind):
    docs = make_docs()
    pattern = write_inputs(str(tmp_path / "src"), docs, kind)
    out = str(tmp_path / "out")
    meta = prepare(out, pattern)
    want = expected(docs)
    assert np.array_equal(all_tokens(out, meta), want)
    assert (want == ENC.eot_token).sum() == len(docs)  # "<|endoftext|>" inside a text is plain text
    names = [s["file"] for s in meta["shards"]]
    assert names[0] == "tst_val_000000.bin" and names[1] == "tst_train_000001.bin"
    assert all(s["tokens"] == 300 for s in meta["shards"][:-1]) and meta["complete"]
    assert meta["tokenizer"] == "test-bpe" and meta["vocab_size"] == 263 and meta["eot"] == 262
    assert meta["total_tokens"] == len(want) and meta["documents"] == len(docs)
    assert sorted(os.listdir(out)) == sorted(names + ["meta.json"])


def test_worker_processes_give_the_same_shards(tmp_path):
    docs = make_docs(200, seed=1)
    pattern = write_inputs(str(tmp_path / "src"), docs, "jsonl")
    meta = prepare(str(tmp_path / "out"), pattern, shard_size=1000, workers=2)
    assert np.array_equal(all_tokens(str(tmp_path / "out"), meta), expected(docs))


def test_interrupted_prepare_resumes_after_finished_shards(tmp_path, monkeypatch):
    docs = make_docs(80, seed=2)
    pattern = write_inputs(str(tmp_path / "src"), docs, "parquet")
    out, ref = str(tmp_path / "out"), str(tmp_path / "ref")
    whole = prepare(ref, pattern, shard_size=250)  # uninterrupted reference
    assert len(whole["shards"]) > 6 and whole["shards"][2]["end_offset"] > 0  # resumes mid-document

    # the 4th shard's write dies after its bytes reached the temporary file
    calls, fsync = [], os.fsync

    def dying_fsync(fd):
        if ".bin.tmp" in os.readlink(f"/proc/self/fd/{fd}"):  # token files only, not meta.json
            calls.append(fd)
        if len(calls) == 4:
            raise KeyboardInterrupt
        fsync(fd)
    monkeypatch.setattr(os, "fsync", dying_fsync)
    with pytest.raises(KeyboardInterrupt):
        prepare(out, pattern, shard_size=250)
    monkeypatch.setattr(os, "fsync", fsync)
    left = sorted(os.listdir(out))
    assert left == ["meta.json", "tst_train_000001.bin", "tst_train_000002.bin",
                    f"tst_train_000003.bin.tmp.{os.getpid()}", "tst_val_000000.bin"]  # no whole-looking 4th shard
    with pytest.raises(UserError, match="preparation is unfinished"):
        open_dataset(out, 8, 2, 4)

    done = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in left if n.endswith(".bin")}
    written = []
    real_write = common.write_tokens

    def counted_write(path, *args, **kwargs):
        written.append(path)
        real_write(path, *args, **kwargs)
    monkeypatch.setattr(common, "write_tokens", counted_write)
    meta = prepare(out, pattern, shard_size=250)
    assert len(written) == len(whole["shards"]) - 3  # the finished shards are not written again
    assert all(os.stat(os.path.join(out, n)).st_mtime_ns == t for n, t in done.items())
    assert meta["shards"] == whole["shards"] and not any(".tmp" in n for n in os.listdir(out))
    for s in meta["shards"]:  # byte for byte the shards of the uninterrupted run
        assert open(os.path.join(out, s["file"]), "rb").read() == open(os.path.join(ref, s["file"]), "rb").read()
    written.clear()
    prepare(out, pattern, shard_size=250)
    assert written == []  # complete: nothing to do


def test_prepare_refuses_other_settings_and_tiny_corpora(tmp_path):
    """Library code raises runs.UserError (one line, no exit); the scripts' run_cli prints it."""
    pattern = write_inputs(str(tmp_path / "src"), make_docs(20), "jsonl")
    prepare(str(tmp_path / "out"), pattern, shard_size=300)
    with pytest.raises(UserError, match="shard_size=300 there, 400 here"):
        prepare(str(tmp_path / "out"), pattern, shard_size=400)
    with pytest.raises(UserError, match="nothing is left for training"):
        prepare(str(tmp_path / "small"), pattern, shard_size=10 ** 6)
    with pytest.raises(UserError, match="no file matches"):
        common.load_documents(str(tmp_path / "nope" / "*.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "no end"\n')
    with pytest.raises(UserError) as e:
        prepare(str(tmp_path / "bad"), str(bad))
    assert str(e.value).startswith("reading test failed (ArrowInvalid") and "run the same command again" in str(e.value)
    assert "\n" not in str(e.value)


def test_prepare_records_sha256_and_a_resumed_old_preparation_gets_it(tmp_path):
    """Every shard's whole-file sha256 is in meta.json (verify_data passes); the kept shards of a
    preparation made before that are given theirs when it resumes."""
    from dataloader import checksum, verify_data
    out = str(tmp_path / "out")
    meta = prepare(out, write_inputs(str(tmp_path / "src"), make_docs(), "jsonl"))
    assert meta["sha256"] == {s["file"]: checksum(os.path.join(out, s["file"])) for s in meta["shards"]}
    assert verify_data(out)["files"] == [s["file"] for s in meta["shards"]]
    old = json.load(open(os.path.join(out, "meta.json")))
    del old["sha256"]
    json.dump(old, open(os.path.join(out, "meta.json"), "w"))  # an older preparation
    n = len(old["shards"])
    with pytest.raises(UserError, match=f"records no sha256 for {n} of its {n} token files"):
        verify_data(out)
    json.dump(dict(old, complete=False), open(os.path.join(out, "meta.json"), "w"))  # interrupted at its end
    again = prepare(out, write_inputs(str(tmp_path / "src"), make_docs(), "jsonl"))
    assert again["shards"] == meta["shards"] and again["sha256"] == meta["sha256"]
    verify_data(out)


@pytest.mark.parametrize("meta, words", [
    ("[1]", "is not valid JSON, or not an object"),
    ("[" * 100_000 + "]" * 100_000, "is not valid JSON, or not an object"),
    ("fifo", "dataset metadata"),
], ids=["not an object", "nested", "fifo"])
def test_prepare_refuses_a_hostile_old_meta_json_in_one_line(tmp_path, meta, words):
    out = tmp_path / "out"
    out.mkdir()
    if meta == "fifo":
        os.mkfifo(out / "meta.json")
    else:
        (out / "meta.json").write_text(meta)
    pattern = write_inputs(str(tmp_path / "src"), make_docs(20), "jsonl")
    import signal
    signal.alarm(20)  # a FIFO read blocks: fail, not hang
    try:
        with pytest.raises(UserError) as e:
            prepare(str(out), pattern)
    finally:
        signal.alarm(0)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_tiktoken_file_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "gpt2.tiktoken")
    with pytest.raises(UserError, match="--tiktoken_file .*gpt2.tiktoken is a FIFO"):
        common.gpt2_encoding(str(tmp_path / "gpt2.tiktoken"))


def test_a_shards_list_of_the_wrong_type_is_prepared_again(tmp_path):
    out = tmp_path / "out"
    pattern = write_inputs(str(tmp_path / "src"), make_docs(20), "jsonl")
    meta = prepare(str(out), pattern)
    old = json.load(open(out / "meta.json"))
    json.dump(dict(old, shards=5, complete=False), open(out / "meta.json", "w"))
    assert prepare(str(out), pattern)["shards"] == meta["shards"]


def test_hub_dataset_offline_fails_fast(tmp_path):
    t0 = time.time()
    res = subprocess.run([sys.executable, "data/fineweb/prepare.py", f"--out_dir={tmp_path}"], cwd=REPO,
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf")))
    assert res.returncode == 2 and time.time() - t0 < 60
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot load 'HuggingFaceFW/fineweb-edu'"), res.stderr
    assert "HF_HUB_OFFLINE=1" in err[0] and "Traceback" not in res.stderr


# --- train.py on prepared shards -----------------------------------------------------------

TINY = CONF_TINY + ["--max_iters=6", "--eval_interval=3", "--eval_tokens=256", "--learning_rate=3e-2",
                    "--warmup_frac=0"]


def start_training(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    return subprocess.Popen([sys.executable, "train.py", *TINY, *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc, code=0):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err[-2000:]
    return out


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    """~23k tokens of the small BPE (vocab 263, padded to 320 by train.py) in shards of 1000."""
    d = tmp_path_factory.mktemp("bpe")
    pattern = write_inputs(str(d / "src"), make_docs(150, seed=3), "jsonl")
    prepare(str(d / "shards"), pattern, shard_size=1000)
    return str(d / "shards")


def final_weights(out_dir):
    return torch.load(os.path.join(out_dir, "ckpt_0000006.pt"), weights_only=True)["model"]


@pytest.mark.slow
def test_train_on_shards_and_resume_bitwise(shard_dir, tmp_path):
    """One uninterrupted run, and one halted at step 3 and resumed: the same final weights, bit
    for bit. (The two runs start side by side: 2 cores.)"""
    straight = start_training(f"--data_dir={shard_dir}", f"--out_dir={tmp_path / 'a'}")
    halted = start_training(f"--data_dir={shard_dir}", f"--out_dir={tmp_path / 'b'}", "--halt_at_iter=3")
    log = finish(straight)
    assert "sequential shards: 22 train shards" in log
    losses = [float(line.split("val loss ")[1]) for line in log.splitlines() if "val loss" in line]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert json.load(open(tmp_path / "a" / "final.json"))["status"] == "done"

    finish(halted, 4)  # stopped, resumable
    assert json.load(open(tmp_path / "b" / "final.json"))["status"] == "stopped"
    state = torch.load(tmp_path / "b" / "ckpt_0000003.pt", weights_only=True)["data"]
    loader = open_dataset(shard_dir, 32, 4, 8, seed=1337).loader  # train.py's seed
    for _ in range(3):
        loader.next_step()
    assert state == loader.state_dict()  # the data position after 3 steps
    assert "resuming from" in finish(start_training(f"--data_dir={shard_dir}", f"--out_dir={tmp_path / 'b'}"))
    a, b = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "the resumed run differs"
    assert a["transformer.wte.weight"].shape[0] == 320  # 263 padded to a multiple of 64

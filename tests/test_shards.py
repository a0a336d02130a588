"""Token shards: the file format's errors, the sequential shard loader (DDP ranks, gradient
accumulation, resume) and open_dataset's choice of loader. Offline, seeded, CPU."""
import io
import json
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataloader import (HEADER_BYTES, UserError, RandomWindowLoader, ShardLoader,  # noqa: E402
                        open_dataset, read_tokens, write_tokens)


# --- file format -------------------------------------------------------------------------

@pytest.mark.parametrize("vocab, magic, dtype", [(50257, 20240520, np.uint16), (100_277, 20240801, np.uint32)])
def test_round_trip(tmp_path, vocab, magic, dtype):
    tokens = np.random.default_rng(0).integers(0, vocab, 1000)
    tokens[:2] = 0, vocab - 1
    path = str(tmp_path / "x_val_000000.bin")
    write_tokens(path, tokens, vocab_size=vocab)
    header = np.fromfile(path, dtype=np.int32, count=3)
    assert header.tolist() == [magic, {20240520: 1, 20240801: 7}[magic], 1000]
    back = read_tokens(path)
    assert back.dtype == dtype and np.array_equal(back, tokens)
    assert os.path.getsize(path) == HEADER_BYTES + 1000 * np.dtype(dtype).itemsize
    assert not os.path.exists(path + ".tmp")


def _damage(path, how):
    raw = bytearray(open(path, "rb").read())
    if how == "header":
        raw = raw[:100]  # shorter than the header
    elif how == "magic":
        raw[0:4] = np.int32(12345).tobytes()
    elif how == "version":
        raw[4:8] = np.int32(3).tobytes()
    elif how == "truncated":
        raw = raw[:-10]
    open(path, "wb").write(bytes(raw))


@pytest.mark.parametrize("how, words", [
    ("header", "shorter than the 1024-byte header"),
    ("magic", "wrong magic number 12345"),
    ("version", "unsupported version 3"),
    ("truncated", "truncated or corrupt"),
])
def test_bad_file_errors(tmp_path, how, words):
    path = str(tmp_path / "d_train_000001.bin")
    write_tokens(path, np.arange(100), vocab_size=50257)
    _damage(path, how)
    with pytest.raises(UserError) as e:
        read_tokens(path, fix="re-run python data/fineweb/prepare.py")
    msg = str(e.value)
    assert "\n" not in msg and path in msg and words in msg and msg.endswith("python data/fineweb/prepare.py")


# --- the shard loader ----------------------------------------------------------------------

SIZES = (700, 1300, 450, 1000, 900)  # unequal, so steps span shard ends


def make_shards(d, sizes=SIZES, val=300, meta=True):
    """Train shards whose tokens are their positions in the concatenation (so every token is
    identifiable), a val shard, and a meta.json like a prepare script writes."""
    os.makedirs(d, exist_ok=True)
    files, start = [("t_val_000000.bin", np.arange(40000, 40000 + val))], 0
    for i, n in enumerate(sizes):
        files.append((f"t_train_{i + 1:06d}.bin", np.arange(start, start + n)))
        start += n
    for name, toks in files:
        write_tokens(os.path.join(d, name), toks, vocab_size=65536)
    if meta:
        shards = [dict(file=n, split="val" if "_val_" in n else "train", tokens=len(t)) for n, t in files]
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(dict(tokenizer="test", vocab_size=65536, eot=0, command="python make_shards",
                           complete=True, shards=shards), f)
    return [os.path.join(d, n) for n, _ in files[1:]]


def steps(loader, n):
    """n steps of a loader, each as one (sequences, T+1) array of x with y's last column."""
    out = []
    for _ in range(n):
        mbs = loader.next_step()
        out.append(np.concatenate([torch.cat([x, y[:, -1:]], 1).numpy() for x, y in mbs]))
    return out


def test_steps_read_the_epoch_stream_in_order(tmp_path):
    paths = make_shards(str(tmp_path))
    T, G = 16, 8
    loader = ShardLoader(paths, T, 2, G, seed=3)
    stream = np.concatenate([read_tokens(paths[i]) for i in loader._order()])
    pos = 0
    for seqs in steps(loader, sum(SIZES) // (G * T) - 1):
        assert seqs.shape == (G, T + 1)
        # sequences are consecutive windows of the stream; the last target is the next step's first input
        want = np.stack([stream[pos + i * T: pos + (i + 1) * T + 1] for i in range(G)])
        assert np.array_equal(seqs, want)
        pos += G * T
    assert loader.epoch == 0
    # the next epoch reads the shards in another order, drawn from the seed
    loader.next_step()
    loader.next_step()
    assert loader.epoch == 1 and not np.array_equal(loader._order(), ShardLoader(paths, T, 2, G, seed=3)._order())


def test_ranks_are_disjoint_cover_the_data_and_equal_accumulation(tmp_path):
    paths = make_shards(str(tmp_path))
    T, G, n = 16, 8, 40  # 40 steps: more than one epoch (4350 tokens, 128 a step)
    single = steps(ShardLoader(paths, T, 2, G, rank=0, world_size=1, seed=1), n)  # 4 micro-batches
    ranks = [steps(ShardLoader(paths, T, 2, G, rank=r, world_size=2, seed=1), n) for r in range(2)]
    seen = set()
    for s in range(n):
        a, b = ranks[0][s], ranks[1][s]
        assert a.shape == b.shape == (G // 2, T + 1)
        assert not set(a[:, :-1].ravel()) & set(b[:, :-1].ravel())  # disjoint inputs
        assert np.array_equal(np.concatenate([a, b]), single[s])  # rank r = micro-batches r*per_rank...
        if s < sum(SIZES) // (G * T):  # the first epoch
            seen |= set(np.concatenate([a, b]).ravel().tolist())
    # together they cover the data, except an epoch tail shorter than one step
    missing = set(range(sum(SIZES))) - seen
    assert len(missing) < G * T


@pytest.mark.parametrize("k", [5, 36])  # mid-epoch (33 steps an epoch) and across its end
def test_resume_sees_the_same_tokens(tmp_path, k):
    paths = make_shards(str(tmp_path))
    T, G = 16, 8
    straight = steps(ShardLoader(paths, T, 4, G, rank=1, world_size=2, seed=7), k + 6)
    first = ShardLoader(paths, T, 4, G, rank=1, world_size=2, seed=7)
    steps(first, k)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)  # as train.py checkpoints it
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["epoch"] == (k > 33)
    resumed = ShardLoader(paths, T, 4, G, rank=1, world_size=2, seed=999)  # the checkpoint's seed wins
    resumed.load_state_dict(state)
    for a, b in zip(steps(resumed, 6), straight[k:]):
        assert np.array_equal(a, b)


def test_resume_refuses_other_shards_or_mode(tmp_path):
    paths = make_shards(str(tmp_path))
    state = ShardLoader(paths, 16, 2, 8).state_dict()
    with pytest.raises(UserError, match="same shards"):
        ShardLoader(paths[:-1], 16, 2, 8).load_state_dict(state)
    with pytest.raises(UserError, match="sequential shards"):
        RandomWindowLoader(np.arange(1000), 16, 2, 8).load_state_dict(state)


def test_too_few_tokens(tmp_path):
    paths = make_shards(str(tmp_path), sizes=(100, 50))
    with pytest.raises(UserError, match="fewer than one step's 1,025"):
        ShardLoader(paths, 128, 4, 8)


# --- open_dataset ------------------------------------------------------------------------

def test_open_dataset_picks_the_shard_loader(tmp_path):
    d = str(tmp_path)
    paths = make_shards(d)
    data = open_dataset(d, 16, 2, 8, rank=0, world_size=2, seed=0)
    assert isinstance(data.loader, ShardLoader) and data.loader.mode == "sequential shards"
    assert data.loader.paths == paths
    assert "sequential shards" in data.describe and "5 train shards" in data.describe
    assert np.array_equal(data.eval_tokens["val"], np.arange(40000, 40300))
    assert np.array_equal(data.eval_tokens["train"], np.arange(700))
    assert data.meta["vocab_size"] == 65536
    mbs = data.loader.next_step()
    assert len(mbs) == 2 and mbs[0][0].shape == (2, 16) and mbs[0][0].dtype == torch.int64


def test_open_dataset_without_meta_is_refused_until_the_tokenizer_is_named(tmp_path):
    make_shards(str(tmp_path), meta=False)  # like llm.c's fineweb.py output
    with pytest.raises(UserError) as e:  # not silently GPT-2 (a char dataset would train at vocab 50304)
        open_dataset(str(tmp_path), 16, 2, 8)
    assert "no meta.json, so its tokenizer is unknown" in str(e.value) and '"tokenizer": "gpt2"' in str(e.value)
    for empty in ("{}", '{"vocab_size": 65536}'):  # an empty meta.json names no tokenizer either
        (tmp_path / "meta.json").write_text(empty)
        with pytest.raises(UserError, match="must name the tokenizer and vocab_size"):
            open_dataset(str(tmp_path), 16, 2, 8)
    (tmp_path / "meta.json").write_text('{"tokenizer": "gpt2", "vocab_size": 65536}')  # named: accepted
    data = open_dataset(str(tmp_path), 16, 2, 8)
    assert data.meta["tokenizer"] == "gpt2" and "5 train shards" in data.describe


def _edit_meta(d, **changes):
    path = os.path.join(d, "meta.json")
    meta = json.load(open(path))
    meta.update(changes)
    json.dump(meta, open(path, "w"))
    return meta


@pytest.mark.parametrize("breakage, words", [
    ("unfinished", "preparation is unfinished"),
    ("missing", "is missing"),
    ("unlisted", "is not listed"),
    ("count", "but meta.json says"),
    ("no_val", "no *_val_*.bin shard"),
    ("bad_shard", "wrong magic number"),
    ("big_token", "token id 40299 >= vocab_size 1000"),
])
def test_open_dataset_errors(tmp_path, breakage, words):
    d = str(tmp_path)
    paths = make_shards(d)
    if breakage == "unfinished":
        _edit_meta(d, complete=False)
    elif breakage == "missing":
        os.remove(paths[2])
    elif breakage == "unlisted":
        write_tokens(os.path.join(d, "t_train_000009.bin"), np.arange(10), vocab_size=65536)
    elif breakage == "count":
        meta = json.load(open(os.path.join(d, "meta.json")))
        meta["shards"][1]["tokens"] += 1
        _edit_meta(d, shards=meta["shards"])
    elif breakage == "no_val":
        os.remove(os.path.join(d, "t_val_000000.bin"))
        meta = json.load(open(os.path.join(d, "meta.json")))
        _edit_meta(d, shards=meta["shards"][1:])
    elif breakage == "bad_shard":
        _damage(paths[0], "magic")
    elif breakage == "big_token":
        _edit_meta(d, vocab_size=1000)
    with pytest.raises(UserError) as e:
        open_dataset(d, 16, 2, 8)
    msg = str(e.value)
    assert words in msg and "\n" not in msg and "re-run python" in msg

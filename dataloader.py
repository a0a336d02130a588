"""
Token files and the loaders that feed train.py.

File format (llm.c / modded-nanogpt shards): a header of 256 int32
    [0] magic 20240520, [1] version 1, [2] token count    -> uint16 tokens follow
    [0] magic 20240801, [1] version 7, [2] token count    -> uint32 tokens (vocab > 65535)
then the tokens. Files are written under a temporary name and renamed when complete.

Loaders work one optimizer step at a time: `next_step()` returns this rank's micro-batches
of one global batch, so a single process with gradient accumulation and N DDP ranks see the
same sequences per step, and `state_dict()` after a step is the exact data position.
"""
import json
from dataclasses import dataclass
import os

import numpy as np
import torch

from configurator import ConfigError

HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
FORMATS = {  # magic -> (version, dtype)
    20240520: (1, np.uint16),
    20240801: (7, np.uint32),
}


class DataError(ConfigError):
    """A token file or dataset directory that cannot be used as it is."""


def write_tokens(path, tokens, vocab_size=None):
    """Write a token file atomically: path.tmp, fsync, rename."""
    tokens = np.asarray(tokens)
    top = vocab_size if vocab_size is not None else (int(tokens.max()) + 1 if tokens.size else 0)
    magic = 20240520 if top <= 2 ** 16 else 20240801
    version, dtype = FORMATS[magic]
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2 ** (8 * np.dtype(dtype).itemsize)):
        raise ValueError(f"token ids out of range for {np.dtype(dtype).name} in {path}")
    header = np.zeros(HEADER_INTS, dtype=np.int32)
    header[0], header[1], header[2] = magic, version, tokens.size
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype(dtype, copy=False).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_tokens(path, fix="re-run the dataset's prepare.py"):
    """Memory-map the tokens of a file, after checking magic, version and size."""
    def bad(what):
        return DataError(f"{path}: {what}; {fix}")
    try:
        size = os.path.getsize(path)
    except OSError:
        raise bad("file not found") from None
    if size < HEADER_BYTES:
        raise bad(f"only {size} bytes, shorter than the {HEADER_BYTES}-byte header")
    header = np.fromfile(path, dtype=np.int32, count=HEADER_INTS)
    magic, version, ntok = int(header[0]), int(header[1]), int(header[2])
    if magic not in FORMATS:
        raise bad(f"wrong magic number {magic} (expected 20240520 or 20240801); not a token file")
    want_version, dtype = FORMATS[magic]
    if version != want_version:
        raise bad(f"unsupported version {version} for magic {magic} (expected {want_version})")
    want = HEADER_BYTES + ntok * np.dtype(dtype).itemsize
    if ntok < 0 or size != want:
        raise bad(f"size {size} bytes does not match the header's {ntok} tokens ({want} bytes); "
                  "the file is truncated or corrupt")
    if ntok == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(ntok,))


def read_meta(data_dir):
    path = os.path.join(data_dir, "meta.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); re-run the dataset's prepare.py") from None


def _to_xy(tokens, starts, block_size):
    """Windows tokens[s : s+T+1] as inputs x (B, T) and next-token targets y (B, T)."""
    idx = np.asarray(starts)[:, None] + np.arange(block_size + 1)[None, :]
    buf = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))
    return buf[:, :-1].contiguous(), buf[:, 1:].contiguous()


class RandomWindowLoader:
    """Random windows of one token array (small single-file datasets). The window starts of
    each global batch come from one generator seeded identically on every rank; rank r takes
    its contiguous slice of them."""

    mode = "random windows"

    def __init__(self, tokens, block_size, micro_batch, global_batch, rank=0, world_size=1, seed=0):
        if len(tokens) < block_size + 1:
            raise DataError(f"{len(tokens)} tokens are too few for block_size={block_size}; "
                            "lower block_size or prepare more text")
        per_rank = global_batch // world_size
        self.tokens, self.T = tokens, block_size
        self.B, self.per_rank, self.global_batch = micro_batch, per_rank, global_batch
        self.rank = rank
        self.gen = torch.Generator().manual_seed(seed)

    def next_step(self):
        starts = torch.randint(len(self.tokens) - self.T, (self.global_batch,), generator=self.gen)
        mine = starts[self.rank * self.per_rank:(self.rank + 1) * self.per_rank].numpy()
        return [_to_xy(self.tokens, mine[i:i + self.B], self.T) for i in range(0, self.per_rank, self.B)]

    def state_dict(self):
        return {"mode": self.mode, "generator": self.gen.get_state()}

    def load_state_dict(self, state):
        if state.get("mode") != self.mode:
            raise DataError(f"checkpoint data position is for {state.get('mode')!r} but the "
                            f"dataset loads as {self.mode!r}; resume with the same dataset")
        self.gen.set_state(state["generator"])


def eval_batches(tokens, eval_tokens, block_size, micro_batch, rank=0, world_size=1):
    """A fixed evaluation set: the first eval_tokens of the split as consecutive windows,
    dealt round-robin to the ranks, in micro-batches. The same windows at every eval."""
    n_seq = max(1, min(eval_tokens, len(tokens) - 1) // block_size)
    starts = np.arange(n_seq) * block_size
    mine = starts[rank::world_size]
    return [_to_xy(tokens, mine[i:i + micro_batch], block_size) for i in range(0, len(mine), micro_batch)]


@dataclass
class Dataset:
    loader: object        # next_step() / state_dict() / load_state_dict()
    eval_tokens: dict     # split ('train', 'val') -> 1-D token array evaluated on
    meta: dict            # meta.json (tokenizer, vocab_size, ...)
    describe: str         # one line for the log: which mode, how many tokens


def open_dataset(data_dir, block_size, micro_batch, global_batch, rank=0, world_size=1, seed=0):
    """Pick the loader from what data_dir holds: train.bin + val.bin (random windows)."""
    prep = f"python {os.path.relpath(os.path.join(data_dir, 'prepare.py'))}"
    if not os.path.isdir(data_dir):
        raise DataError(f"dataset directory {data_dir} does not exist; set --dataset or --data_dir, "
                        f"or run {prep}")
    meta = read_meta(data_dir) or {}
    vocab = meta.get("vocab_size", 50304)
    if not os.path.exists(os.path.join(data_dir, "train.bin")):
        raise DataError(f"{data_dir} holds no train.bin; run {prep} (or set --data_dir)")
    splits = {s: read_tokens(os.path.join(data_dir, f"{s}.bin"), fix=f"run {prep}") for s in ("train", "val")}
    for split, toks in splits.items():
        if len(toks) and int(toks.max()) >= vocab:
            raise DataError(f"{data_dir}/{split}.bin has token id {int(toks.max())} >= vocab_size {vocab} "
                            f"of meta.json; re-run {prep}")
    loader = RandomWindowLoader(splits["train"], block_size, micro_batch, global_batch, rank, world_size, seed)
    return Dataset(loader, splits, meta, f"{loader.mode} over train.bin ({len(splits['train']):,} tokens), "
                                         f"vocab {vocab}")

"""
Token files and the loaders that feed train.py.

File format (llm.c / modded-nanogpt shards): a header of 256 int32
    [0] magic 20240520, [1] version 1, [2] token count    -> uint16 tokens follow
    [0] magic 20240801, [1] version 7, [2] token count    -> uint32 tokens (vocab > 65535)
then the tokens. Files are written under a temporary name and renamed when complete.
A dataset directory holds either train.bin + val.bin (small: random windows) or shards
NAME_val_000000.bin, NAME_train_000001.bin, ... (data/common.py: sequential reading), with a
meta.json saying the tokenizer and vocab_size, the size and CRC-32 of each file (checked at
every start: cheap) and, apart from them, the sha256 of each (checked by verify_data: every byte).

Loaders work one optimizer step at a time: `next_step()` returns this rank's micro-batches
of one global batch, so a single process with gradient accumulation and N DDP ranks see the
same sequences per step, and `state_dict()` after a step is the exact data position.
"""
import glob
import hashlib
import json
import re
import time
import zlib
from dataclasses import dataclass
import os

import numpy as np
import torch

from runs import UserError, regular_file, write_json

HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
FORMATS = {  # magic -> (version, dtype)
    20240520: (1, np.uint16),
    20240801: (7, np.uint32),
}



def write_tokens(path, tokens, vocab_size=None):
    """Write a token file atomically: path.tmp.<pid> (two writers never share one), fsync, rename."""
    tokens = np.asarray(tokens)
    top = vocab_size if vocab_size is not None else (int(tokens.max()) + 1 if tokens.size else 0)
    magic = 20240520 if top <= 2 ** 16 else 20240801
    version, dtype = FORMATS[magic]
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2 ** (8 * np.dtype(dtype).itemsize)):
        raise ValueError(f"token ids out of range for {np.dtype(dtype).name} in {path}")
    header = np.zeros(HEADER_INTS, dtype=np.int32)
    header[0], header[1], header[2] = magic, version, tokens.size
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype(dtype, copy=False).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_tokens(path, fix="re-run the dataset's prepare.py"):
    """Memory-map the tokens of a file, after checking magic, version and size."""
    def bad(what):
        return UserError(f"{path}: {what}; {fix}")
    if os.path.isdir(path):
        raise bad("is a directory, not a token file")
    regular_file(path, "token file")  # a FIFO would block np.fromfile forever
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


SAMPLE = 1 << 20  # bytes at each end of a file that its checksum covers
META_FIELDS = dict(itos=list, train_tokens=int, val_tokens=int, files=dict, command=str, shards=list,
                   complete=bool, eot=int, sha256=dict)
MAX_VOCAB = 2 ** 32  # uint32 token ids, the widest a token file holds
MAX_TOKENS = 2 ** 31 - 1  # a file's token count is an int32 of its header
RECORD = dict(  # what each field of a file's entry in meta.json must be, when present
    bytes=(f"the size of a token file (0 .. {HEADER_BYTES + 4 * MAX_TOKENS:,})",
           lambda v: type(v) is int and 0 <= v <= HEADER_BYTES + 4 * MAX_TOKENS),
    crc32=("a 32-bit unsigned int", lambda v: type(v) is int and 0 <= v < 2 ** 32))


def fingerprint(path):
    """{bytes, crc32} of a file: its size and a CRC-32 of its first and last MiB (all of a
    file up to 2 MiB). Cheap enough for every start; it tells a file from another preparation."""
    size = os.path.getsize(regular_file(path, "token file"))
    with open(path, "rb") as f:
        crc = zlib.crc32(f.read(SAMPLE))
        if size > SAMPLE:
            f.seek(max(SAMPLE, size - SAMPLE))
            crc = zlib.crc32(f.read(SAMPLE), crc)
    return {"bytes": size, "crc32": crc}


def checksum(path, chunk=8 << 20):
    """sha256 (hex) of a whole file, read in pieces: the check fingerprint is not (a file rewritten
    in its middle), at the cost of reading every byte, so only when asked (verify_data). Kept in
    meta.json's "sha256" map, apart from the fingerprints a checkpoint compares on resume, so
    recording it later (verify_data write=True) changes nothing a run compares."""
    h, buf = hashlib.sha256(), bytearray(chunk)
    with open(regular_file(path, "token file"), "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(memoryview(buf)[:n])
    return h.hexdigest()


def check_fingerprint(path, want, fix):
    """Compare a file with what meta.json says of it ({bytes, crc32}, either may be absent)."""
    try:
        have = fingerprint(path)
    except OSError:
        raise UserError(f"{path} is listed in meta.json but cannot be read; {fix}") from None
    for k in ("bytes", "crc32"):
        if k in want and want[k] != have[k]:
            raise UserError(f"{path} does not match meta.json ({k} {have[k]} on disk, {want[k]} in meta.json): "
                            f"the files come from different preparations (an interrupted one?); {fix}")


def _digits(n):
    """An integer for a message: its first 20 digits (10**400 is not printed whole)."""
    text = str(n)
    return text if len(text) <= 20 else text[:20] + "..."


def _check_record(path, where, entry, fix):
    """The size and CRC-32 of a file's entry in meta.json, where present, of their type and
    range (a crc32 of 10**400 would only ever mismatch, in a message of 400 digits)."""
    for k, (want, ok) in RECORD.items():
        if k in entry and not ok(entry[k]):
            raise UserError(f"{path}: {where}.{k} must be {want}, got {entry[k]!r:.60}; {fix}")


def read_meta(data_dir):
    """meta.json of a dataset directory, checked: a JSON object naming its tokenizer and an
    integer vocab_size, and each optional field of its type and range. None if there is no
    meta.json."""
    path = os.path.join(data_dir, "meta.json")
    if not os.path.exists(path):
        return None
    fix = "re-run the dataset's prepare.py"
    try:
        if not os.path.isdir(path):  # a directory: open's own error below
            regular_file(path, "dataset metadata")  # a FIFO would block open() forever
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror}); {fix}") from None
    except ValueError as e:  # also digits past int's limit, and bytes that are not UTF-8
        raise UserError(f"{path} is not valid JSON ({str(e)[:120]}); {fix}") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a dataset's meta.json; {fix}") from None
    return check_meta(meta, path, fix)


def check_meta(meta, path, fix):
    """A dataset's metadata (meta.json's object, or the copy a checkpoint carries), checked as
    read_meta states: one-line UserErrors naming `path` and `fix`. Returns meta."""
    vocab = meta.get("vocab_size") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or (vocab is not None and (type(vocab) is not int or vocab <= 0)):
        raise UserError(f"{path} must be a JSON object with an integer vocab_size > 0, got "
                        f"{type(meta).__name__ if not isinstance(meta, dict) else repr(vocab):.60}; {fix}")
    if vocab is not None and vocab > MAX_VOCAB:
        raise UserError(f"{path}: vocab_size {_digits(vocab)} is "
                        f"larger than {MAX_VOCAB:,}, the most a token file can hold (uint32 ids); {fix}")
    if vocab is None or not isinstance(meta.get("tokenizer"), str) or not meta["tokenizer"]:
        raise UserError(f"{path} must name the tokenizer and vocab_size, e.g. {{\"tokenizer\": \"gpt2\", "
                        f"\"vocab_size\": 50257}}; it has {sorted(meta) or 'no fields'}; re-run the dataset's "
                        "prepare.py or add them")
    for k, t in META_FIELDS.items():  # optional fields, but of their type when present
        if k in meta and (not isinstance(meta[k], t) or (t is int and isinstance(meta[k], bool))):
            raise UserError(f"{path}: {k} must be {t.__name__}, got {meta[k]!r:.60}; {fix}")
    for k in ("train_tokens", "val_tokens"):
        if k in meta and not 0 <= meta[k] <= MAX_TOKENS:
            raise UserError(f"{path}: {k} {_digits(meta[k])} is not a token count of a file "
                            f"(0 .. {MAX_TOKENS:,}); {fix}")
    for name, entry in meta.get("files", {}).items():
        if not (isinstance(entry, dict) and all(type(entry.get(k)) is int for k in ("bytes", "crc32"))):
            raise UserError(f"{path}: files[{name!r}] must be {{\"bytes\": int, \"crc32\": int}}, got "
                            f"{entry!r:.60}; {fix}")
        _check_record(path, f"files[{name!r:.60}]", entry, fix)
    for name, digest in meta.get("sha256", {}).items():
        if not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
            raise UserError(f"{path}: sha256[{name!r:.60}] must be 64 hex digits, got {digest!r:.60}; {fix}")
    if "eot" in meta and not 0 <= meta["eot"] < vocab:
        raise UserError(f"{path}: eot {_digits(meta['eot'])} is not a token id below vocab_size {vocab}; {fix}")
    if meta.get("tokenizer") == "char" and not (isinstance(meta.get("itos"), list) and vocab == len(meta["itos"])):
        raise UserError(f"{path} says tokenizer 'char' but lacks its itos list or a vocab_size equal to "
                        f"its length; {fix}")
    itos = meta.get("itos", [])
    bad = [repr(c) for c in itos if not (isinstance(c, str) and c)]
    if bad or len(set(itos)) != len(itos):
        raise UserError(f"{path}: itos must be a list of distinct non-empty strings (the vocabulary), it has "
                        f"{(bad or ['a repeated entry'])[0][:60]}; {fix}")
    return meta


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
            raise UserError(f"{len(tokens)} tokens are too few for block_size={block_size}; "
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
            raise UserError(f"checkpoint data position is for {state.get('mode')!r} but the "
                            f"dataset loads as {self.mode!r}; resume with the same dataset")
        g = state.get("generator")
        try:
            self.gen.set_state(g)
        except (RuntimeError, TypeError) as e:  # not a generator state, or of another size
            raise UserError(f"checkpoint data position holds no usable generator state ({type(e).__name__}); "
                            "delete the checkpoint to fall back to the previous one") from None


class ShardLoader:
    """Sequential reading of token shards (large datasets, llm.c style). Each epoch reads the
    shards as one stream, in an order drawn from (seed, epoch); each step takes the next
    global_batch * block_size + 1 tokens of it as global_batch consecutive sequences (the last
    target is the next step's first input). Rank r takes sequences r*per_rank ...
    (r+1)*per_rank - 1, exactly those a single process would feed to its micro-batches at
    those places. An epoch's tail shorter than one step is skipped. The position (epoch,
    shard, offset) is the whole state."""

    mode = "sequential shards"

    def __init__(self, paths, block_size, micro_batch, global_batch, rank=0, world_size=1, seed=0,
                 fix="re-run the dataset's prepare.py", vocab_size=None, fingerprints=None):
        self.paths, self.fix = list(paths), fix
        self.vocab_size, self.fingerprints = vocab_size, fingerprints or {}
        self.T, self.B, self.global_batch = block_size, micro_batch, global_batch
        self.per_rank, self.rank, self.seed = global_batch // world_size, rank, seed
        self.sizes = [len(read_tokens(p, fix)) for p in self.paths]
        if sum(self.sizes) < global_batch * block_size + 1:
            raise UserError(f"the train shards hold {sum(self.sizes):,} tokens, fewer than one step's "
                            f"{global_batch * block_size + 1:,} (global_batch_size x block_size + 1); "
                            "lower them or prepare more text")
        self.epoch, self.shard, self.offset = 0, 0, 0  # shard: index into this epoch's order
        self._open = None  # (path, memmap) of the shard read last

    def _order(self):
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.paths))

    def tokens_of(self, path):
        """A shard's tokens, checked whenever it is opened: against its meta.json entry, and every
        id below vocab_size (one pass over the memory map)."""
        if self._open is None or self._open[0] != path:
            if path in self.fingerprints:
                check_fingerprint(path, self.fingerprints[path], self.fix)
            toks = read_tokens(path, self.fix)
            if self.vocab_size is not None and len(toks) and int(toks.max()) >= self.vocab_size:
                raise UserError(f"{path} has token id {int(toks.max())} >= vocab_size {self.vocab_size}; {self.fix}")
            self._open = (path, toks)
        return self._open[1]

    def next_step(self):
        n = self.global_batch * self.T + 1
        order = self._order()
        left = sum(self.sizes[i] for i in order[self.shard:]) - self.offset
        if left < n:  # the epoch's tail: start the next epoch in a new order
            self.epoch, self.shard, self.offset = self.epoch + 1, 0, 0
            order = self._order()
        pieces, shard, offset = [], self.shard, self.offset
        while n > 0:  # the step's tokens may span the end of one shard and the start of others
            piece = self.tokens_of(self.paths[order[shard]])[offset:offset + n]
            pieces.append(piece)
            n -= len(piece)
            shard, offset = shard + 1, 0
        tokens = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        # advance by global_batch * T: whole shards passed over move the position on
        self.offset += self.global_batch * self.T
        while self.shard < len(order) and self.offset >= self.sizes[order[self.shard]]:
            self.offset -= self.sizes[order[self.shard]]
            self.shard += 1
        starts = np.arange(self.rank * self.per_rank, (self.rank + 1) * self.per_rank) * self.T
        return [_to_xy(tokens, starts[i:i + self.B], self.T) for i in range(0, self.per_rank, self.B)]

    def state_dict(self):
        return {"mode": self.mode, "epoch": self.epoch, "shard": self.shard, "offset": self.offset,
                "seed": self.seed, "files": [os.path.basename(p) for p in self.paths]}

    def load_state_dict(self, state):
        if state.get("mode") != self.mode:
            raise UserError(f"checkpoint data position is for {state.get('mode')!r} but the "
                            f"dataset loads as {self.mode!r}; resume with the same dataset")
        fields = dict(epoch=int, shard=int, offset=int, seed=int, files=list)
        bad = [k for k, t in fields.items() if not isinstance(state.get(k), t) or isinstance(state.get(k), bool)]
        if bad:
            raise UserError(f"checkpoint data position: field {bad[0]!r} is "
                            f"{type(state.get(bad[0])).__name__}, not {fields[bad[0]].__name__}; "
                            "delete the checkpoint to fall back to the previous one")
        files = [os.path.basename(p) for p in self.paths]
        if state["files"] != files:
            raise UserError(f"checkpoint data position is for {len(state['files'])} shards "
                            f"({(state['files'] or ['none'])[0]} ...) but the dataset has {len(files)} ({files[0]} ...); "
                            "resume with the same shards or start a new out_dir")
        epoch, shard, offset, seed = (int(state[k]) for k in ("epoch", "shard", "offset", "seed"))
        ok = min(epoch, shard, offset, seed) >= 0 and shard <= len(files)
        if ok:  # inside the shard it points at (or at the end of the last one)
            order = np.random.default_rng([seed, epoch]).permutation(len(files))
            ok = offset < self.sizes[order[shard]] if shard < len(files) else offset == 0
        if not ok:
            where = ", ".join(f"{k} {_digits(state[k])}" for k in ("epoch", "shard", "offset", "seed"))
            raise UserError(f"checkpoint data position ({where}) is not a place in the dataset's "
                            f"{len(files)} shards; delete the checkpoint to fall back to the previous one")
        # the checkpoint's seed: a resumed run continues the shard orders it started with
        self.epoch, self.shard, self.offset, self.seed = epoch, shard, offset, seed


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


def _prepare_command(data_dir, meta=None):
    """The fix to suggest: the command that prepared data_dir (meta.json's), else the directory's
    own prepare.py, else the generic one."""
    if meta and meta.get("command"):
        return meta["command"]
    script = os.path.join(data_dir, "prepare.py")
    return (f"python {os.path.relpath(script)}" if os.path.exists(script) else
            f"python data/custom/prepare.py (see its --help) with --out_dir={data_dir}")


def open_dataset(data_dir, block_size, micro_batch, global_batch, rank=0, world_size=1, seed=0):
    """Pick the loader from what data_dir holds: train.bin + val.bin (random windows), or
    shards NAME_val_*.bin + NAME_train_*.bin (sequential shards)."""
    prep = _prepare_command(data_dir)
    if not os.path.isdir(data_dir):
        what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
        raise UserError(f"dataset directory {data_dir} {what}; set --dataset or --data_dir, "
                        f"or run {prep}")
    has_bin = os.path.exists(os.path.join(data_dir, "train.bin"))
    shards = not has_bin and glob.glob(os.path.join(data_dir, "*_train_*.bin"))
    if not has_bin and not shards:
        raise UserError(f"{data_dir} holds no train.bin and no *_train_*.bin shards; run {prep} "
                        "(or set --data_dir)")
    meta = read_meta(data_dir)
    if meta is None:  # an interrupted preparation, or files from elsewhere: the tokenizer is unknown
        gpt2 = " (llm.c GPT-2 shards: add a meta.json of {\"tokenizer\": \"gpt2\", \"vocab_size\": 50257})"
        raise UserError(f"{data_dir} has token files but no meta.json, so its tokenizer is unknown (a "
                        f"preparation that did not finish writes none); run {prep}{gpt2 if shards else ''}")
    prep = _prepare_command(data_dir, meta)  # the command that prepared this very directory
    if shards:
        return _open_shards(data_dir, meta, block_size, micro_batch, global_batch, rank, world_size, seed, prep)
    vocab = meta["vocab_size"]
    counts = dict(train=meta.get("train_tokens"), val=meta.get("val_tokens"))
    for split in ("train", "val"):  # meta.json is written last and describes these very files
        path = os.path.join(data_dir, f"{split}.bin")
        if os.path.exists(path) and isinstance(meta.get("files", {}).get(f"{split}.bin"), dict):
            check_fingerprint(path, meta["files"][f"{split}.bin"], f"run {prep}")
    splits = {s: read_tokens(os.path.join(data_dir, f"{s}.bin"), fix=f"run {prep}") for s in ("train", "val")}
    for split, toks in splits.items():
        if counts[split] is not None and counts[split] != len(toks):
            raise UserError(f"{data_dir}/{split}.bin holds {len(toks):,} tokens but meta.json says "
                            f"{counts[split]:,}: the files come from different preparations; run {prep}")
        if len(toks) < block_size + 1:
            raise UserError(f"{data_dir}/{split}.bin holds {len(toks)} tokens, too few for block_size="
                            f"{block_size}; lower block_size or prepare more text")
        if int(toks.max()) >= vocab:
            raise UserError(f"{data_dir}/{split}.bin has token id {int(toks.max())} >= vocab_size {vocab} "
                            f"of meta.json; re-run {prep}")
    loader = RandomWindowLoader(splits["train"], block_size, micro_batch, global_batch, rank, world_size, seed)
    return Dataset(loader, splits, meta, f"{loader.mode} over train.bin ({len(splits['train']):,} tokens), "
                                         f"vocab {vocab}")


SHARD_FIELDS = dict(file=str, split=str, tokens=int)


def _check_shard_list(path, shards, fix):
    """meta.json's shard entries: a list of {file, split, tokens[, bytes, crc32]}."""
    if not isinstance(shards, list):
        raise UserError(f"{path}: 'shards' must be a list, got {type(shards).__name__}; {fix}")
    for i, e in enumerate(shards):
        if not isinstance(e, dict):
            raise UserError(f"{path}: shards[{i}] must be an object, got {type(e).__name__}; {fix}")
        for k, t in SHARD_FIELDS.items():
            if k not in e:
                raise UserError(f"{path}: shards[{i}] has no {k!r}; {fix}")
            if not isinstance(e[k], t) or isinstance(e[k], bool):
                raise UserError(f"{path}: shards[{i}].{k} must be {t.__name__}, got {e[k]!r:.60}; {fix}")
        if not 0 <= e["tokens"] <= MAX_TOKENS:
            raise UserError(f"{path}: shards[{i}].tokens {_digits(e['tokens'])} is not a token count of a "
                            f"file (0 .. {MAX_TOKENS:,}); {fix}")
        _check_record(path, f"shards[{i}]", e, fix)
        if e["split"] not in ("train", "val") or os.path.basename(e["file"]) != e["file"]:
            raise UserError(f"{path}: shards[{i}] must be a file name of split 'train' or 'val', got "
                            f"{e['file']!r} ({e['split']!r}); {fix}")


def _open_shards(data_dir, meta, block_size, micro_batch, global_batch, rank, world_size, seed, command):
    """Shards of a prepare script or of llm.c, as meta.json lists them (or, if it lists none,
    all *_train_* and *_val_* files)."""
    fix = f"re-run {command}"
    found = {s: sorted(glob.glob(os.path.join(data_dir, f"*_{s}_*.bin"))) for s in ("train", "val")}
    if "shards" in meta:
        _check_shard_list(os.path.join(data_dir, "meta.json"), meta["shards"], fix)
        if not meta.get("complete"):
            raise UserError(f"{data_dir}/meta.json says the preparation is unfinished "
                            f"({len(meta['shards'])} shards so far); {fix} to finish it")
        listed = {s: [os.path.join(data_dir, x["file"]) for x in meta["shards"] if x["split"] == s]
                  for s in ("train", "val")}
        for s in ("train", "val"):
            if listed[s] != found[s]:
                extra = sorted(set(found[s]) ^ set(listed[s]))
                raise UserError(f"{data_dir}: the {s} shards on disk differ from meta.json ({extra[0]} "
                                f"{'is not listed' if extra[0] in found[s] else 'is missing'}); {fix}")
        counts = {os.path.join(data_dir, x["file"]): x["tokens"] for x in meta["shards"]}
        prints = {os.path.join(data_dir, x["file"]): x for x in meta["shards"]}
    else:
        counts, prints = {}, {}
    note = "" if counts else "; no shard list in meta.json"
    if not found["val"]:
        raise UserError(f"{data_dir} has train shards but no *_val_*.bin shard; {fix}")
    vocab = meta["vocab_size"]
    loader = ShardLoader(found["train"], block_size, micro_batch, global_batch, rank, world_size, seed, fix,
                         vocab, prints)
    if found["val"][0] in prints:
        check_fingerprint(found["val"][0], prints[found["val"][0]], fix)
    val = read_tokens(found["val"][0], fix)
    for path, size in list(zip(found["train"], loader.sizes)) + [(found["val"][0], len(val))]:
        if path in counts and counts[path] != size:
            raise UserError(f"{path} holds {size:,} tokens but meta.json says {counts[path]:,}; {fix}")
    splits = {"train": loader.tokens_of(found["train"][0]), "val": val}
    for path, toks in ((found["train"][0], splits["train"]), (found["val"][0], val)):
        if len(toks) < block_size + 1:  # evaluated as windows of block_size + 1
            raise UserError(f"{path} holds {len(toks)} tokens, too few for block_size={block_size}; "
                            f"lower block_size or {fix} with a larger --shard_size")
        if int(toks.max()) >= vocab:
            raise UserError(f"{path} has token id {int(toks.max())} >= vocab_size {vocab}; {fix}")
    return Dataset(loader, splits, meta, f"{loader.mode}: {len(found['train'])} train shards "
                   f"({sum(loader.sizes):,} tokens), val {len(val):,} tokens, vocab {vocab}{note}")


def verify_data(data_dir, write=False, progress=None):
    """Recompute the sha256 of every token file of data_dir and compare it with meta.json's: the
    full check the start-up fingerprint (size, CRC-32 of the first and last MiB) is not, so a file
    rewritten in its middle is found. It reads every byte: ~1.2 GB/s on one core from the page
    cache, or the disk's speed if that is slower. Raises UserError (one line) on a mismatch, a
    missing or unreadable file, or files without a sha256 (prepared before they were recorded).
    write=True records those instead, from the files as they are now (after the header, size and
    CRC-32 checks), in meta.json; recorded ones are still compared. progress(name, bytes, seconds,
    status) is called after each file. Returns {files, bytes, seconds, recorded, text}: text is
    one line for a log."""
    prep = _prepare_command(data_dir)
    if not os.path.isdir(data_dir):
        raise UserError(f"dataset directory {data_dir} does not exist or is not a directory; pass a "
                        f"prepared dataset (run {prep})")
    meta = read_meta(data_dir)
    if meta is None:
        raise UserError(f"{data_dir} has no meta.json, so nothing records its files; run {prep}")
    mpath, fix = os.path.join(data_dir, "meta.json"), f"re-run {_prepare_command(data_dir, meta)}"
    if os.path.exists(os.path.join(data_dir, "train.bin")):
        names, prints = ["train.bin", "val.bin"], meta.get("files", {})
    else:
        found = [os.path.basename(p) for s in ("val", "train")
                 for p in sorted(glob.glob(os.path.join(data_dir, f"*_{s}_*.bin")))]
        names, prints = found, {}
        if "shards" in meta:  # the shards meta.json lists, and no others
            _check_shard_list(mpath, meta["shards"], fix)
            if not meta.get("complete"):
                raise UserError(f"{mpath} says the preparation is unfinished; {fix} to finish it")
            names, prints = [e["file"] for e in meta["shards"]], {e["file"]: e for e in meta["shards"]}
            extra = sorted(set(found) - set(names))
            if extra:
                raise UserError(f"{data_dir}/{extra[0]} is not listed in meta.json, so it has no checksum; {fix}")
    if not names:
        raise UserError(f"{data_dir} holds no train.bin and no *_train_*.bin shards; run {prep}")
    for name in names:  # the cheap checks first: a file of another preparation says so
        path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            raise UserError(f"{path} is missing; {fix}")
        read_tokens(path, fix)
        check_fingerprint(path, prints.get(name, {}), fix)
    sums = meta.setdefault("sha256", {})
    missing = [n for n in names if n not in sums]
    if missing and not write:
        raise UserError(f"{mpath} records no sha256 for {len(missing)} of its {len(names)} token files "
                        f"({missing[0]} ...): prepared before checksums were recorded; {fix}, or record them "
                        f"from the files as they are now: python scripts/verify_data.py {data_dir} --write")
    t0, total, recorded = time.time(), 0, []
    for name in names:
        path, t1 = os.path.join(data_dir, name), time.time()
        try:
            digest = checksum(path)
        except OSError as err:  # an unreadable sector is a corruption too
            raise UserError(f"{path} cannot be read to the end ({err.strerror or err}); {fix}") from None
        if name not in sums:
            sums[name] = digest
            recorded.append(name)
        elif sums[name] != digest:
            raise UserError(f"{path} does not match meta.json (sha256 {digest[:16]}... on disk, "
                            f"{sums[name][:16]}... in meta.json): it changed after it was prepared; {fix}")
        total += os.path.getsize(path)
        if progress:
            progress(name, os.path.getsize(path), time.time() - t1, "recorded" if name in recorded else "OK")
    if recorded:
        write_json(mpath, meta, indent=1)
    dt = time.time() - t0
    done = f"sha256 recorded in meta.json for {len(recorded)} of them" if recorded else "match meta.json's sha256"
    text = (f"{data_dir}: {len(names)} token files ({total / 1e6:,.1f} MB) {done}; read in {dt:.2f} s "
            f"({total / 1e6 / max(dt, 1e-9):,.0f} MB/s)")
    return dict(files=names, bytes=total, seconds=dt, recorded=recorded, text=text)

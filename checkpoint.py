"""
The checkpoint format of train.py, owned here: `build` makes one, `save` writes it (a
temporary file, fsynced and renamed: never half-written), `load_checkpoint` reads and
validates it (`weights_only=True`: never unpickling code), `restore` puts it back into a
model, optimizer, data loader and RNGs; a `Checkpointer` is train.py's saver: it decides
when a checkpoint is written and which old ones are pruned. train.py, sample.py and the
tests all go through these.

Regular checkpoints are the files the trainer writes, `ckpt_<7-digit step>.pt`; any other
name in out_dir (a user's `ckpt_copy.pt`) is not one. The step in the name must be the step
inside. `best.pt` is kept apart.

Under parallel='fsdp' a checkpoint is a directory `ckpt_<7-digit step>.dcp/` (`best.dcp/`)
written with torch.distributed.checkpoint (DCP): every rank writes its own shards
(`__<rank>_0.distcp`), DCP's `.metadata` indexes them, and `state.json` holds everything that
is not a model or AdamW tensor (the fields of the single-file format, JSON-encoded, and the
optimizer groups by parameter name). It is written into `<name>.tmp/` and renamed when
complete. The directories are listed, ordered, validated and pruned exactly like the files;
`load_checkpoint` turns one into the single-file form in one process (sample.py, a run
without fsdp, scripts/convert_checkpoint.py), and `restore` loads one into a sharded model
on any number of ranks (DCP reshards on load).
"""
import json
import math
import os
import pickle
import random
import re
import shutil
import warnings

import numpy as np
import torch

from runs import UserError, fsync_dir, regular_file, write_atomic
from runs import CHECKPOINT_NAME as NAME  # the one rule for "this run has a checkpoint" (runs.has_checkpoint)

FORMAT = 1
TMP = re.compile(r"(ckpt_\d{7}|best)\.(pt\.tmp\.\d+|dcp\.tmp|dcp\.old)"
                 r"|(config|provenance|final|wandb_id)\.json\.tmp\.\d+|metrics\.jsonl\.tmp\.\d+")  # runs.write_atomic's
STATE = "state.json"  # the non-tensor part of a DCP checkpoint
# field -> type, for every checkpoint of this format
FIELDS = dict(model=dict, optimizer=dict, model_config=dict, config=dict, parameterization=dict,
              iter_num=int, best_val_loss=float, last_eval_iter=int, data=dict, rng=list, meta=dict)
FALL_BACK = "delete it to fall back to the previous one, or start over with a new out_dir"



def checkpoint_path(out, it, sharded=False):
    return os.path.join(out, f"ckpt_{it:07d}.{'dcp' if sharded else 'pt'}")


def best_path(out, sharded=False):
    return os.path.join(out, "best.dcp" if sharded else "best.pt")


def is_sharded(path):
    """A DCP checkpoint (a directory named *.dcp), not a single file."""
    return os.path.normpath(path).endswith(".dcp")


def step_of(path):
    """The step in a regular checkpoint's name, or None for any other file."""
    m = NAME.fullmatch(os.path.basename(os.path.normpath(path)))
    return int(m.group(1)) if m else None


def list_checkpoints(out):
    """The regular checkpoints in out, oldest first (by the step in the name, which
    load_checkpoint verifies against the step inside)."""
    if not os.path.isdir(out):
        return []
    found = sorted((step_of(n), n.endswith(".dcp"), n) for n in os.listdir(out) if step_of(n) is not None)
    return [os.path.join(out, n) for *_, n in found]


# the batch/duration settings a checkpoint made before they existed stands for
NO_BATCH_DURATION = dict(base_batch_size=None, base_tokens=None, m_B=1.0, m_D=1.0)


def build(model, optimizer, model_config, config, parameterization, iter_num, best_val_loss,
          last_eval_iter, data, rng, meta, batch_duration=None):
    """A checkpoint: the raw model's and optimizer's state, the GPTConfig (as a dict), the
    resolved run config, the parameterization table, the step, the data position, every
    rank's RNG states (rng_state()), the tokenizer (meta) and the Complete(d)P batch/duration
    settings (base_batch_size, base_tokens, m_B, m_D)."""
    return dict(format=FORMAT, model=model, optimizer=optimizer, model_config=model_config, config=config,
                parameterization=parameterization, iter_num=int(iter_num), best_val_loss=float(best_val_loss),
                last_eval_iter=int(last_eval_iter), data=data, rng=rng, meta=meta,
                batch_duration=dict(batch_duration or NO_BATCH_DURATION))


def validate(ckpt, path, tensors=True):
    """Structure and types of every field; raises UserError naming the first bad one.
    tensors=False: a DCP checkpoint's state.json, whose model and optimizer are not loaded yet."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or ("model" not in ckpt and tensors) \
            or not isinstance(ckpt.get("model_config"), dict):
        raise UserError(f"{path} is not a checkpoint of this trainer (format {FORMAT}); "
                              "point out_dir at a run of train.py")

    def bad(field, what):
        return UserError(f"checkpoint {path}: {field} {what}; {FALL_BACK}")
    for k, want in FIELDS.items():
        if not tensors and k in ("model", "optimizer"):
            continue
        if k not in ckpt:
            raise bad(f"field {k!r}", "is missing")
        v = ckpt[k]
        if not isinstance(v, (int, float) if want is float else want) or isinstance(v, bool):
            raise bad(f"field {k!r}", f"is {type(v).__name__}, not {want.__name__}")
    opt = ckpt.get("optimizer") if tensors else dict(state={}, param_groups=ckpt.get("optimizer_groups"))
    if tensors and not all(isinstance(t, torch.Tensor) for t in ckpt["model"].values()):
        raise bad("field 'model'", "holds something other than tensors")
    if not (isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in opt["param_groups"])):
        raise bad("field 'optimizer'", "is not an optimizer state (state, param_groups with params)")
    if ckpt["iter_num"] < 0:
        raise bad("field 'iter_num'", f"is {ckpt['iter_num']}, below 0")
    if not ckpt["rng"] or not all(isinstance(r, dict) and isinstance(r.get("torch"), torch.Tensor)
                                  and isinstance(r.get("python"), (list, tuple)) and len(r["python"]) == 3
                                  and isinstance(r.get("numpy"), (list, tuple)) and len(r["numpy"]) == 5
                                  and isinstance(r.get("cuda"), list) for r in ckpt["rng"]):
        raise bad("field 'rng'", "is not a list of RNG states (python, numpy, torch, cuda)")
    if not isinstance(ckpt["data"].get("mode"), str):
        raise bad("field 'data'", "has no loader mode")
    # ranges, not only types: a NaN best loss never improves, a negative position reads before the data
    if math.isnan(ckpt["best_val_loss"]) or ckpt["best_val_loss"] < 0:
        raise bad("field 'best_val_loss'", f"is {ckpt['best_val_loss']}, not a loss (>= 0, or inf before any eval)")
    if not -1 <= ckpt["last_eval_iter"] <= ckpt["iter_num"]:
        raise bad("field 'last_eval_iter'", f"is {ckpt['last_eval_iter']}, outside [-1, iter_num={ckpt['iter_num']}]")
    for k in ("epoch", "shard", "offset"):
        v = ckpt["data"].get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise bad(f"data position {k!r}", f"is {v!r}, not an integer >= 0")
    if not isinstance(ckpt.get("batch_duration", {}), dict):  # absent in checkpoints made before it
        raise bad("field 'batch_duration'", f"is {type(ckpt['batch_duration']).__name__}, not dict")
    named = step_of(path)
    if named is not None and named != ckpt["iter_num"]:
        raise UserError(f"checkpoint {path} holds step {ckpt['iter_num']}, not the step {named} of its "
                              f"name (renamed or copied?); rename it to {os.path.basename(checkpoint_path('', ckpt['iter_num'], is_sharded(path)))} "
                              "or move it out of out_dir")
    return ckpt


def load_checkpoint(path, tensors=True):
    """Read and validate a checkpoint; UserError (one line) if it cannot be used. A DCP
    directory comes back in the single-file form (its shards gathered in this process, no
    process group needed); tensors=False: only its state.json, for `restore` to load the
    tensors into a sharded model."""
    if is_sharded(path):
        return load_sharded(path, tensors)
    if os.path.exists(path) and not os.path.isdir(path):
        regular_file(path, "checkpoint")  # a FIFO would block torch.load forever
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # only torch's parser runs here: whatever it raises is the file's fault
        detail = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() or ["no detail"]  # no terminal colours
        raise UserError(f"checkpoint {path} cannot be read ({type(e).__name__}: {detail[0][:120]}); "
                              f"{FALL_BACK}") from None
    return validate(ckpt, path)


def save(ckpt, path):
    """Write atomically; on failure (a full disk, a read-only directory) nothing is left
    behind but the files that were there, and the error is one line."""
    try:
        save_atomic(ckpt, path)
    except (OSError, RuntimeError) as e:  # a full disk inside torch.save is a RuntimeError ("unexpected pos")
        why = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {_first_line(e)[:100]}"
        raise UserError(f"cannot write checkpoint {path} ({why}); free space or make "
                              f"{os.path.dirname(path) or '.'} writable, then run the same command to resume "
                              "(the previous checkpoints are kept)") from None


def save_atomic(obj, path):
    write_atomic(path, lambda f: torch.save(obj, f))


def prune(out, keep_last, newest):
    """Delete the regular checkpoints (files and DCP directories) older than the keep_last
    newest up to step `newest` (the one just written); never one after it."""
    upto = [p for p in list_checkpoints(out) if step_of(p) <= newest]
    for old in upto[:-keep_last]:
        shutil.rmtree(old) if os.path.isdir(old) else os.remove(old)


def remove_stale_temporaries(out):
    """Temporary files and directories of checkpoint writes that never finished (a killed
    run, a full disk). A `<name>.dcp.old` whose replacement never landed (killed between the
    two renames of `save_sharded`) is put back. Only for the process that owns out_dir
    (runs.RunLock): nobody else is writing there."""
    for n in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        p = os.path.join(out, n)
        if not TMP.fullmatch(n):
            continue
        if n.endswith(".dcp.old") and not os.path.exists(p[:-4]):
            os.replace(p, p[:-4])
        elif os.path.isdir(p):
            shutil.rmtree(p)
        else:
            os.remove(p)


class Checkpointer:
    """When and how train.py saves its run: after each evaluation past step 0 (first best.pt,
    or best.dcp, when the validation loss improved, then the regular checkpoint), and at a stop;
    a regular checkpoint never twice for one step (an evaluation, then a stop); the regular ones
    beyond the keep_last newest pruned. Every rank calls save (all ranks' RNG states are
    gathered); rank 0 writes (sharded: every rank writes its shards); enabled=False
    (save_checkpoints=False) writes nothing. model is the raw model (not compiled or wrapped);
    the model config, run config, data identity (meta) and batch/duration settings are the run's
    and fixed."""

    def __init__(self, out_dir, model, optimizer, loader, *, model_config, config, meta, batch_duration,
                 keep_last=2, enabled=True, rank=0, world_size=1, distributed=False, sharded=False):
        self.out_dir, self.model, self.optimizer, self.loader = out_dir, model, optimizer, loader
        self.fixed = dict(model_config=model_config, config=config, meta=meta, batch_duration=batch_duration)
        self.keep_last, self.enabled, self.master = keep_last, enabled, rank == 0
        self.world_size, self.distributed, self.sharded = world_size, distributed, sharded
        self.saved_at = -1  # the step of the last regular checkpoint this process wrote

    def after_eval(self, iter_num, best_val, last_eval, improved):
        """The checkpoints due after an evaluation; none at step 0 (the command re-creates it)."""
        if iter_num > 0:
            if improved:
                self.save(iter_num, best_val, last_eval, best=True)
            self.save(iter_num, best_val, last_eval)

    def save(self, iter_num, best_val, last_eval, best=False):
        """A regular checkpoint of step iter_num (or best.pt); a collective: every rank calls it."""
        states = [None] * self.world_size
        if self.distributed:
            import torch.distributed as dist
            dist.all_gather_object(states, rng_state())
        else:
            states = [rng_state()]
        if not ((self.master or self.sharded) and self.enabled):
            return
        if best:
            self._write(best_path(self.out_dir, self.sharded), iter_num, best_val, last_eval, states)
        elif self.saved_at != iter_num:
            self._write(checkpoint_path(self.out_dir, iter_num, self.sharded), iter_num, best_val, last_eval, states)
            self.saved_at = iter_num
            if self.master:
                prune(self.out_dir, self.keep_last, iter_num)

    def _write(self, path, iter_num, best_val, last_eval, rng):
        f = self.fixed
        fields = (f["model_config"], f["config"], self.model.parameterization.table(), iter_num, best_val, last_eval,
                  self.loader.state_dict(), rng, f["meta"], f["batch_duration"])
        if self.sharded:  # every rank writes its shards (DCP)
            save_sharded(build(None, None, *fields), path, self.model, self.optimizer)
        else:
            save(build(self.model.state_dict(), self.optimizer.state_dict(), *fields), path)


# the run settings that decide a trajectory besides the model's (compared on resume): a resume
# with any of them changed would continue another run under this one's name
TRAJECTORY = ("seed", "global_batch_size", "block_size", "learning_rate", "weight_decay", "beta1", "beta2",
              "eps", "grad_clip", "lr_schedule", "warmup_frac", "decay_frac", "min_lr_frac")
# what identifies the data in a checkpoint's `meta` (the tokenizer, and the files' fingerprints)
DATA_IDENTITY = ("tokenizer", "vocab_size", "itos", "eot", "files", "shards")


def _short(v):
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def same_run_diff(ckpt, config=None, meta=None):
    """What this run's settings and data change against the checkpoint's, as 'k=x there, y
    here' items; empty when the resume is the same run. A field the checkpoint lacks (written
    before it existed) is not compared. The run length may change (a run is extended)."""
    diff = []
    theirs = ckpt.get("config") or {}
    for k in TRAJECTORY if config is not None else ():
        if k in theirs and k in config and theirs[k] != config[k]:
            diff.append(f"{k}={_short(theirs[k])} there, {_short(config[k])} here")
    theirs = ckpt.get("meta") or {}
    named = {"itos": "the vocabulary (meta.json itos)", "files": "the data files", "shards": "the data files"}
    for k in DATA_IDENTITY if meta is not None else ():
        if k in theirs and theirs[k] != meta.get(k):
            diff.append(f"{named[k]} differs from the dataset it was trained on" if k in named
                        else f"{k}={_short(theirs[k])} there, {_short(meta.get(k))} here")
    return diff


def restore(ckpt, path, model, optimizer=None, loader=None, rank=0, rng=True, model_config=None,
            batch_duration=None, config=None, meta=None):
    """Put a validated checkpoint back: model weights; optimizer moments (the group
    hyperparameters stay those of this run's config); the data position; this rank's RNG
    states. With model_config (this run's GPTConfig as a dict) and batch_duration, a
    checkpoint of other model or batch/duration settings is refused first. Returns
    (iter_num, best_val_loss, last_eval_iter). Only what a bad file makes these calls raise is
    reported as a bad checkpoint."""
    diff = []
    if model_config is not None:
        import dataclasses
        from model import GPTConfig
        # a setting the checkpoint predates (absent there) had its default value then
        theirs = {f.name: f.default for f in dataclasses.fields(GPTConfig)
                  if f.default is not dataclasses.MISSING} | ckpt["model_config"]
        diff = [f"{k}={theirs.get(k)!r} there, {v!r} here" for k, v in model_config.items() if theirs.get(k) != v]
    if batch_duration is not None:
        theirs = ckpt.get("batch_duration", NO_BATCH_DURATION)
        diff += [f"{k}={theirs.get(k)!r} there, {v!r} here" for k, v in batch_duration.items() if theirs.get(k) != v]
    diff += same_run_diff(ckpt, config, meta)
    if diff:
        raise UserError(f"cannot resume from {path}: {'; '.join(diff)}; a resume continues the same run: use "
                          "the same settings and data, or a new out_dir")

    def bad(what, e):
        return UserError(f"checkpoint {path} does not fit this model and trainer: {what} "
                               f"({type(e).__name__}: {' '.join(str(e).split())[:160]}); {FALL_BACK}")
    if "model" not in ckpt:  # a DCP checkpoint (load_checkpoint(tensors=False)): shards into shards
        try:
            _load_dcp_into(path, model, optimizer)
        except (RuntimeError, ValueError, KeyError, pickle.UnpicklingError, _dcp_error()) as e:  # missing or misshapen shards, a non-tensor entry
            raise bad("sharded state", e) from None
    elif any(type(t).__name__ == "DTensor" for t in model.parameters()):
        raise UserError(f"{path} is a single-file checkpoint and this run shards the model (parallel='fsdp'); "
                              f"convert it with python scripts/convert_checkpoint.py {path}, or resume with parallel='ddp'")
    else:
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:  # missing, unexpected or misshapen tensors
            raise bad("model weights", e) from None
    if optimizer is not None and "model" in ckpt:
        fresh = [{k: g[k] for k in ("lr_mult", "weight_decay", "eps", "betas")} for g in optimizer.param_groups]
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as e:  # other groups or sizes
            raise bad("optimizer state", e) from None
        for g, f in zip(optimizer.param_groups, fresh):
            g.update(f)
        for p, s in optimizer.state.items():
            for k in ("exp_avg", "exp_avg_sq"):
                if k in s and (not isinstance(s[k], torch.Tensor) or s[k].shape != p.shape):
                    raise bad("optimizer state", ValueError(f"{k} of shape {getattr(s[k], 'shape', None)} "
                                                            f"for a parameter of shape {tuple(p.shape)}"))
    if loader is not None:
        loader.load_state_dict(ckpt["data"])  # raises UserError on a position of another dataset
    try:
        if rng:
            set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])
    except (RuntimeError, ValueError, TypeError) as e:
        raise bad("RNG state", e) from None
    return ckpt["iter_num"], ckpt["best_val_loss"], ckpt["last_eval_iter"]


def model_from(ckpt, path):
    """A model built from a checkpoint's own GPTConfig, with its weights (sample.py)."""
    from model import GPT, GPTConfig
    try:
        model = GPT(GPTConfig(**ckpt["model_config"]))
    except (TypeError, ValueError) as e:  # fields this model code does not have, or bad values
        raise UserError(f"checkpoint {path} does not fit this model code ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:160]}); use a checkpoint of this trainer") from None
    restore(ckpt, path, model, rng=False)
    return model


def rng_state():
    return dict(python=random.getstate(), numpy=[v.tolist() if isinstance(v, np.ndarray) else v
                                                 for v in np.random.get_state()],
                torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])


def set_rng_state(s):
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = s["numpy"]
    np.random.set_state((npy[0], np.array(npy[1], dtype=np.uint32), *npy[2:]))
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


# ---------------------------------------------------------------------------------------
# DCP checkpoints (parallel='fsdp'). The DCP state is a flat dict of tensors only:
# "model/<name>" and "optim/<name>/<exp_avg|exp_avg_sq|step>", by parameter name; sharded
# (DTensors) when written by fsdp, whole when written by the converter. Everything else is
# JSON in state.json (tensors in it, such as RNG states, as {"__tensor__": dtype, "data": [...]}).

def _dcp_error():
    from torch.distributed.checkpoint.api import CheckpointException  # a BaseException
    return CheckpointException


def _first_line(e):
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return " ".join(lines[-1:])[:160] or type(e).__name__


def _flat(model_sd, optim_state):
    out = {f"model/{k}": v for k, v in model_sd.items()}
    for name, st in optim_state.items():
        out.update({f"optim/{name}/{k}": v for k, v in st.items()})
    return out


def _unflat(flat):
    model_sd, state = {}, {}
    for key, v in flat.items():
        kind, *rest = key.split("/")
        if kind == "model" and len(rest) == 1:
            model_sd[rest[0]] = v
        elif kind == "optim" and len(rest) == 2:
            state.setdefault(rest[0], {})[rest[1]] = v
        else:
            raise ValueError(f"unexpected entry {key!r}")
    return model_sd, state


def _to_json(v):
    if isinstance(v, torch.Tensor):
        return {"__tensor__": str(v.dtype).removeprefix("torch."), "data": v.tolist()}
    if isinstance(v, dict):
        return {k: _to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    return v


def _from_json(v):
    if isinstance(v, dict):
        if set(v) == {"__tensor__", "data"}:
            dtype = getattr(torch, str(v["__tensor__"]), None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"unknown tensor dtype {v['__tensor__']!r}")
            return torch.tensor(v["data"], dtype=dtype)
        return {k: _from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


class _MetadataUnpickler(pickle.Unpickler):
    """DCP pickles its `.metadata` index. Unpickle only the classes such an index is made of
    (DCP's metadata dataclasses, torch.Size, dtypes, paths), never a function but torch's
    layout-by-name: a crafted file cannot run code."""
    MODULES = ("torch.distributed.checkpoint.metadata", "torch.distributed.checkpoint.filesystem",
               "torch.distributed.checkpoint.planner", "torch.distributed.checkpoint._extension")

    OTHERS = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
              ("torch.serialization", "_get_layout"),  # a layout by its name, as torch's weights_only allows
              ("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"), ("pathlib", "WindowsPath")}

    def find_class(self, module, name):
        allowed = module in self.MODULES or module == "torch" or (module, name) in self.OTHERS
        obj = getattr(__import__(module, fromlist=[name]), name, None) if allowed else None
        if module == "torch" and (isinstance(obj, torch.dtype) or obj is torch.Size):
            return obj
        if module in self.MODULES and isinstance(obj, type):
            return obj
        if (module, name) in self.OTHERS:
            return obj
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a DCP index")


def _reader(path):
    """DCP's FileSystemReader with the index read by _MetadataUnpickler, and every entry of it
    required to be a tensor: the trainer's DCP state is tensors only (the rest is JSON in
    state.json), and a bytes entry is what DCP's planner would torch.load with
    weights_only=False, running whatever the file's author put there."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta, TensorStorageMetadata

    class SafeReader(FileSystemReader):
        def read_metadata(self, *args, **kwargs):
            with open(os.path.join(self.path, ".metadata"), "rb") as f:
                md = _MetadataUnpickler(f).load()
            entries = getattr(md, "state_dict_metadata", None)
            if not isinstance(entries, dict):
                raise pickle.UnpicklingError("the index has no entries")
            other = sorted(str(k) for k, m in entries.items() if not isinstance(m, TensorStorageMetadata))
            if other:
                raise pickle.UnpicklingError(f"entry {other[0]!r} is not a tensor ({type(entries[other[0]]).__name__}); "
                                             "this trainer's DCP checkpoints hold tensors only")
            if getattr(md, "storage_meta", None) is None:
                md.storage_meta = StorageMeta()
            md.storage_meta.load_id = self.load_id
            return md
    return SafeReader(path)


def _planner():
    """DCP's default load planner, except that it never unpickles: a bytes item (which
    SafeReader already refuses in the index) raises instead of reaching torch.load."""
    from torch.distributed.checkpoint import DefaultLoadPlanner

    class TensorsOnly(DefaultLoadPlanner):
        def load_bytes(self, read_item, value):
            raise pickle.UnpicklingError(f"entry {read_item.dest_index.fqn!r} is not a tensor; "
                                         "this trainer's DCP checkpoints hold tensors only")
    return TensorsOnly()


def load_sharded(path, tensors=True):
    """A DCP checkpoint directory: state.json validated; with tensors, every shard read in
    this process (no process group) and the result in the single-file form."""
    try:
        with open(os.path.join(path, STATE)) as f:
            ckpt = _from_json(json.load(f))
    except FileNotFoundError:
        raise UserError(f"checkpoint {path} has no {STATE} (not written by train.py, or incomplete); "
                              f"{FALL_BACK}") from None
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"checkpoint {path}: {STATE} cannot be read ({type(e).__name__}: "
                              f"{_first_line(e)}); {FALL_BACK}") from None
    validate(ckpt, path, tensors=False)
    if not tensors:
        return ckpt
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata
    try:
        reader = _reader(path)
        md = reader.read_metadata()
        flat = {k: torch.empty(m.size, dtype=m.properties.dtype) for k, m in md.state_dict_metadata.items()
                if isinstance(m, TensorStorageMetadata)}
        with warnings.catch_warnings():  # "no process group: assuming a single process" (we ask for that)
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(flat, storage_reader=reader, planner=_planner(), no_dist=True)
        model_sd, state = _unflat(flat)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError, EOFError, AttributeError,
            _dcp_error()) as e:
        raise UserError(f"checkpoint {path}: its shards cannot be read ({type(e).__name__}: "
                              f"{_first_line(e)}); {FALL_BACK}") from None
    # the optimizer in torch's own form: parameters numbered in group order
    groups, ids = [], {}
    for g in ckpt.pop("optimizer_groups"):
        g = dict(g, params=[ids.setdefault(n, len(ids)) for n in g["params"]])
        groups.append(dict(g, betas=tuple(g["betas"])) if "betas" in g else g)
    if set(state) - set(ids):
        raise UserError(f"checkpoint {path}: optimizer state for parameters outside its groups; {FALL_BACK}")
    ckpt.update(model=model_sd, optimizer=dict(state={ids[n]: s for n, s in state.items()}, param_groups=groups))
    return validate(ckpt, path)


def _write_dcp(flat, state, path, distributed):
    """Every rank writes its shards of `flat` into <path>.tmp/; rank 0 adds state.json and
    renames the directory to path once all are written. A directory of that name already
    there (a best.dcp) is replaced: moved to <path>.old, then deleted."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemWriter
    rank0 = not distributed or dist.get_rank() == 0
    tmp, old = f"{path}.tmp", f"{path}.old"
    try:
        if rank0 and os.path.exists(tmp):
            shutil.rmtree(tmp)
        if distributed:
            dist.barrier()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.save(flat, storage_writer=FileSystemWriter(tmp), no_dist=not distributed)  # returns when all wrote
        if rank0:
            with open(os.path.join(tmp, STATE), "w") as f:
                json.dump(_to_json(state), f)
                f.flush()
                os.fsync(f.fileno())
            if os.path.exists(path):
                os.replace(path, old)
            os.replace(tmp, path)
            fsync_dir(os.path.dirname(path))
            shutil.rmtree(old, ignore_errors=True)
    except (OSError, RuntimeError, _dcp_error()) as e:  # a full disk, as OSError or from inside a writer
        if rank0:
            shutil.rmtree(tmp, ignore_errors=True)
        why = e.strerror if isinstance(e, OSError) and e.strerror else _first_line(e)
        raise UserError(f"cannot write checkpoint {path} ({why}); free space or make "
                              f"{os.path.dirname(path) or '.'} writable, then run the same command to resume "
                              "(the previous checkpoints are kept)") from None
    if distributed:
        dist.barrier()  # nobody goes on (prunes, exits) before the checkpoint is in place


def save_sharded(ckpt, path, model, optimizer):
    """Write a checkpoint of build(None, None, ...) and a sharded model and optimizer as a DCP
    directory; every rank calls it, every rank writes only its own shards."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import get_state_dict
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}
    state["optimizer_groups"] = optim_sd["param_groups"]  # parameters by name
    _write_dcp(_flat(model_sd, optim_sd["state"]), state, path, dist.is_initialized())


def save_as_sharded(ckpt, path):
    """A single-file checkpoint (validated) written as a DCP directory by this one process
    (scripts/convert_checkpoint.py); fsdp runs of any size reshard it on load."""
    opt = ckpt["optimizer"]
    names = {}
    for g in opt["param_groups"]:
        if len(g.get("names", [])) != len(g["params"]):
            raise UserError(f"checkpoint {path}: optimizer groups without parameter names; {FALL_BACK}")
        names.update(zip(g["params"], g["names"]))
    state = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}
    state["optimizer_groups"] = [dict(g, params=[names[i] for i in g["params"]]) for g in opt["param_groups"]]
    flat = _flat(ckpt["model"], {names[i]: s for i, s in opt["state"].items()})
    _write_dcp(flat, state, path, distributed=False)


def _load_dcp_into(path, model, optimizer=None):
    """DCP shards into a model (sharded by fully_shard, or whole) and its optimizer, on
    however many ranks there are now: each rank reads the pieces of its own shards. The
    optimizer's groups stay this run's (lr_mult, weight decay, eps, betas)."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    model_sd, optim_sd = get_state_dict(model, optimizer) if optimizer is not None else (model.state_dict(), None)
    flat = _flat(model_sd, optim_sd["state"] if optim_sd else {})
    reader = _reader(path)
    reader.read_metadata()  # the index checked here, so a refusal is its own line, not DCP's wrapped one
    dcp.load(flat, storage_reader=reader, planner=_planner(), no_dist=not dist.is_initialized())
    model_sd, state = _unflat(flat)
    if optimizer is None:
        model.load_state_dict(model_sd)
    else:
        set_state_dict(model, optimizer, model_state_dict=model_sd,
                       optim_state_dict=dict(state=state, param_groups=optim_sd["param_groups"]))

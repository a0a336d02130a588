"""
The checkpoint format of train.py, owned here: `build` makes one, `save` writes it (a
temporary file, fsynced and renamed: never half-written), `load_checkpoint` reads and
validates it (`weights_only=True`: never unpickling code), `restore` puts it back into a
model, optimizer, data loader and RNGs. train.py, sample.py and the tests all go through
these functions.

Regular checkpoints are the files the trainer writes, `ckpt_<7-digit step>.pt`; any other
name in out_dir (a user's `ckpt_copy.pt`) is not one. The step in the name must be the step
inside. `best.pt` is kept apart.
"""
import os
import random
import re

import numpy as np
import torch

from configurator import ConfigError

FORMAT = 1
NAME = re.compile(r"ckpt_(\d{7})\.pt")
TMP = re.compile(r"(ckpt_\d{7}|best)\.pt\.tmp\.\d+")
# field -> type, for every checkpoint of this format
FIELDS = dict(model=dict, optimizer=dict, model_config=dict, config=dict, parameterization=dict,
              iter_num=int, best_val_loss=float, last_eval_iter=int, data=dict, rng=list, meta=dict)
FALL_BACK = "delete it to fall back to the previous one, or start over with a new out_dir"


class CheckpointError(ConfigError):
    """A checkpoint file that cannot be used as it is (one line for the user)."""


def checkpoint_path(out, it):
    return os.path.join(out, f"ckpt_{it:07d}.pt")


def step_of(path):
    """The step in a regular checkpoint's name, or None for any other file."""
    m = NAME.fullmatch(os.path.basename(path))
    return int(m.group(1)) if m else None


def list_checkpoints(out):
    """The regular checkpoints in out, oldest first (by the step in the name, which
    load_checkpoint verifies against the step inside)."""
    if not os.path.isdir(out):
        return []
    found = sorted((step_of(n), n) for n in os.listdir(out) if step_of(n) is not None)
    return [os.path.join(out, n) for _, n in found]


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


def validate(ckpt, path):
    """Structure and types of every field; raises CheckpointError naming the first bad one."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt \
            or not isinstance(ckpt.get("model_config"), dict):
        raise CheckpointError(f"{path} is not a checkpoint of this trainer (format {FORMAT}); "
                              "point out_dir at a run of train.py")

    def bad(field, what):
        return CheckpointError(f"checkpoint {path}: {field} {what}; {FALL_BACK}")
    for k, want in FIELDS.items():
        if k not in ckpt:
            raise bad(f"field {k!r}", "is missing")
        v = ckpt[k]
        if not isinstance(v, (int, float) if want is float else want) or isinstance(v, bool):
            raise bad(f"field {k!r}", f"is {type(v).__name__}, not {want.__name__}")
    if not all(isinstance(t, torch.Tensor) for t in ckpt["model"].values()):
        raise bad("field 'model'", "holds something other than tensors")
    opt = ckpt["optimizer"]
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
    if not isinstance(ckpt.get("batch_duration", {}), dict):  # absent in checkpoints made before it
        raise bad("field 'batch_duration'", f"is {type(ckpt['batch_duration']).__name__}, not dict")
    named = step_of(path)
    if named is not None and named != ckpt["iter_num"]:
        raise CheckpointError(f"checkpoint {path} holds step {ckpt['iter_num']}, not the step {named} of its "
                              f"name (renamed or copied?); rename it to {os.path.basename(checkpoint_path('', ckpt['iter_num']))} "
                              "or move it out of out_dir")
    return ckpt


def load_checkpoint(path):
    """Read and validate a checkpoint file; CheckpointError (one line) if it cannot be used."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # only torch's parser runs here: whatever it raises is the file's fault
        detail = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() or ["no detail"]  # no terminal colours
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(e).__name__}: {detail[0][:120]}); "
                              f"{FALL_BACK}") from None
    return validate(ckpt, path)


def save(ckpt, path):
    """Write atomically; on failure (a full disk, a read-only directory) nothing is left
    behind but the files that were there, and the error is one line."""
    try:
        save_atomic(ckpt, path)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path} ({e.strerror or e}); free space or make "
                              f"{os.path.dirname(path) or '.'} writable, then run the same command to resume "
                              "(the previous checkpoints are kept)") from None


def save_atomic(obj, path):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def prune(out, keep_last, newest):
    """Delete the regular checkpoints older than the keep_last newest up to step `newest`
    (the one just written); never one after it."""
    upto = [p for p in list_checkpoints(out) if step_of(p) <= newest]
    for old in upto[:-keep_last]:
        os.remove(old)


def remove_stale_temporaries(out):
    """Temporary files of checkpoint writes that never finished (a killed run, a full disk).
    Only for the process that owns out_dir (runs.RunLock): nobody else is writing there."""
    for n in os.listdir(out) if os.path.isdir(out) else []:
        if TMP.fullmatch(n):
            os.remove(os.path.join(out, n))


def restore(ckpt, path, model, optimizer=None, loader=None, rank=0, rng=True, model_config=None,
            batch_duration=None):
    """Put a validated checkpoint back: model weights; optimizer moments (the group
    hyperparameters stay those of this run's config); the data position; this rank's RNG
    states. With model_config (this run's GPTConfig as a dict) and batch_duration, a
    checkpoint of other model or batch/duration settings is refused first. Returns
    (iter_num, best_val_loss, last_eval_iter). Only what a bad file makes these calls raise is
    reported as a bad checkpoint."""
    diff = []
    if model_config is not None:
        theirs = ckpt["model_config"]
        diff = [f"{k}={theirs.get(k)!r} there, {v!r} here" for k, v in model_config.items()
                if k != "dropout" and theirs.get(k) != v]
    if batch_duration is not None:
        theirs = ckpt.get("batch_duration", NO_BATCH_DURATION)
        diff += [f"{k}={theirs.get(k)!r} there, {v!r} here" for k, v in batch_duration.items() if theirs.get(k) != v]
    if diff:
        raise ConfigError(f"cannot resume from {path}: {'; '.join(diff)}; use the same model "
                          "settings or a new out_dir")

    def bad(what, e):
        return CheckpointError(f"checkpoint {path} does not fit this model and trainer: {what} "
                               f"({type(e).__name__}: {' '.join(str(e).split())[:160]}); {FALL_BACK}")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # missing, unexpected or misshapen tensors
        raise bad("model weights", e) from None
    if optimizer is not None:
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
        loader.load_state_dict(ckpt["data"])  # raises DataError on a position of another dataset
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
        raise CheckpointError(f"checkpoint {path} does not fit this model code ({type(e).__name__}: "
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

"""
Checkpoints of train.py: written to a temporary file, fsynced and renamed (never
half-written), loaded with weights_only=True (never unpickling code), and the RNG states
that make a resumed run the same run.
"""
import os
import random
import re

import numpy as np
import torch

from dataloader import DataError


def checkpoint_path(out, it):
    return os.path.join(out, f"ckpt_{it:07d}.pt")


def list_checkpoints(out):
    if not os.path.isdir(out):
        return []
    names = sorted(n for n in os.listdir(out) if n.startswith("ckpt_") and n.endswith(".pt"))
    return [os.path.join(out, n) for n in names]


def save_atomic(obj, path):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path):
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt, or not a checkpoint at all
        detail = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() or ["no detail"]  # no terminal colours
        raise DataError(f"checkpoint {path} cannot be read ({type(e).__name__}: {detail[0][:120]}); delete it to "
                        "fall back to the previous one, or start over with a new out_dir") from None
    if (not isinstance(ckpt, dict) or ckpt.get("format") != 1 or "model" not in ckpt
            or not isinstance(ckpt.get("model_config"), dict)):
        raise DataError(f"{path} is not a checkpoint of this trainer (format 1); "
                        "point out_dir at a run of train.py")
    return ckpt


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

"""
Train a GPT under SP, muP, depth-muP, CompleteP or Complete(d)P.

    python train.py                                   # default: small CompleteP on Shakespeare chars
    python train.py config/train_default.py --n_layer=8 --learning_rate=3e-3
    torchrun --standalone --nproc_per_node=2 train.py  # DDP (gloo on CPU, nccl on CUDA)
    torchrun --standalone --nproc_per_node=2 train.py --parallel=fsdp  # FSDP2, sharded checkpoints

Hyperparameters are the base values tuned at (base_n_embd, base_n_layer); the model scales
them per parameter group (model.py, docs/parameterization.md). Re-running the same command in the
same out_dir resumes from its latest checkpoint (init_from='auto').
"""
import signal
import sys


def _stop_in_startup(signum, frame):
    """SIGTERM/SIGINT before the first step (the imports, reading data, building the model):
    nothing to save yet, so the process ends at once: one line, the stopped exit code (4)."""
    print(f"stopped during start-up ({signal.Signals(signum).name}); nothing was trained or changed: run the "
          "same command again", file=sys.stderr)
    sys.exit(4)  # runs.EXIT_STOPPED (runs is not imported yet when this can fire)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop_in_startup)
    signal.signal(signal.SIGINT, _stop_in_startup)

import atexit  # noqa: E402 (after the handlers, so a signal during the imports is a stop)
import functools
import importlib.util
import json
import math
import os
import platform
import random
import re
import subprocess
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.distributed as dist

from configurator import configure
import checkpoint as ckpt_io
from dataloader import eval_batches, open_dataset
from dataloader import verify_data as check_data_files
from model import GPT, PARAMETERIZATIONS, GPTConfig, param_table
from parallel import PARALLEL, full, pad_eval_batches, shard_with_optimizer
from runs import (EXIT_DIVERGED, EXIT_STOPPED, RunLock, UserError, append_line, available_memory, memory_estimate,
                  out_of_memory, release_all, run_cli, write_atomic, write_json)
from util import hms, load_codec, peak_flops, resolve_device

_REPO = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------
# defaults; override with config files and --key=value (configurator.py)
# I/O
out_dir = "out"              # the run's directory: config, metrics, checkpoints, final.json
init_from = "auto"           # 'auto': resume if out_dir holds a checkpoint | 'scratch' | 'resume'
eval_interval = 250          # steps between evaluations (and checkpoints)
eval_tokens = 32768          # tokens of each split per evaluation, the same windows every time
log_interval = 25            # steps between log lines
eval_only = False            # evaluate the latest checkpoint of out_dir and stop
save_checkpoints = True      # False: no checkpoints (sweep points)
keep_last = 2                # regular checkpoints kept in out_dir (best.pt is kept apart)
halt_at_iter = -1            # act as if SIGTERM arrived before this step (preemption tests)
sample_tokens = 300          # characters/tokens sampled and printed at the end (0: none)
wandb_log = False            # also log every row to Weights & Biases
wandb_project = "completep"  # wandb project name
wandb_run_name = ""           # wandb run name (default: wandb's)
wandb_group = ""             # wandb group, e.g. a sweep's or search's name (default: none)
wandb_mode = "offline"       # 'online' needs a key; 'offline' and 'disabled' do not
# data
dataset = "shakespeare_char"  # a directory under data/ (prepared on first use for shakespeare_char)
data_dir = ""                # default: data/<dataset>
verify_data = False          # read every byte of the data files against meta.json's sha256 first (scripts/verify_data.py)
block_size = 128             # context length in tokens
batch_size = 16              # micro-batch: sequences per forward pass per process
global_batch_size = 32       # sequences per optimizer step over all processes and micro-steps
# model
n_layer = 4                  # L, transformer blocks
n_head = 4                   # attention heads (head size n_embd / n_head)
n_embd = 128                 # N, width of the residual stream
dropout = 0.0                # dropout on the embeddings and both residual branches
bias = True                  # biases in the Linears and LayerNorms
parameterization = "completep"   # 'sp' | 'mup' | 'depth_mup' | 'completep' | 'completedp'
base_n_embd = 64             # the proxy shape the base hyperparameters were tuned at
base_n_layer = 2             # m_L = n_layer / base_n_layer, m_N = n_embd / base_n_embd
depth_alpha: float | None = None  # None: 0.5 for depth_mup, 1.0 for completep
init_std = 0.02              # sigma, the base init std
input_mult = 1.0             # muP forward multiplier on wte + wpe (base value)
output_mult = 1.0            # muP forward multiplier on the logits (times 1/m_N)
attn_mult = 1.0              # muP forward multiplier on the attention logits (times 1/d_head)
tie_embeddings = True        # lm_head shares wte's weight (nanoGPT's default)
module_hparams = {}          # per-module base multipliers, e.g. {"attn_qkv": {"lr": 1.6}} (README)
norm = "layernorm"           # 'layernorm' | 'rmsnorm' (block and final norms)
qk_norm = False              # RMSNorm over each head's q and k (one gain vector shared by the heads)
pos = "learned"              # 'learned' position embeddings | 'rope' (rotary)
rope_theta = 10000.0         # RoPE base
mlp = "gelu"                 # 'gelu' | 'swiglu'
mlp_ratio: float | None = None  # MLP hidden width ceil(mlp_ratio * n_embd); None: 4 (gelu), 8/3 (swiglu)
z_loss = 0.0                 # + z_loss * mean(logsumexp(logits)^2) in the training loss (eval: cross-entropy)
base_batch_size: int | None = None  # completedp: sequences per step of the proxy (None: m_B = 1)
base_tokens: int | None = None      # completedp: training tokens of the proxy (None: m_D = 1)
base_block_size: int | None = None  # completedp: the proxy's context; another block_size is refused (m_B counts its sequences)
# AdamW (base values: eta, lambda, eps at the base shape)
learning_rate = 1e-2         # eta, the peak LR of the schedule at the base shape
max_iters = 1200             # optimizer steps; overridden by max_tokens when that is > 0
max_tokens = 0               # training budget in tokens (max_iters = max_tokens / tokens per step)
weight_decay = 0.1           # lambda; AdamW semantics, the shrink per step is lr * wd
beta1 = 0.9                  # AdamW first-moment decay
beta2 = 0.95                 # AdamW second-moment decay
eps = 1e-8                   # AdamW eps at the base shape (scaled per group)
grad_clip = 1.0              # 0: no clipping
# LR schedule, lr(t) * lr_mult per group; warmup and decay are fractions of the run
lr_schedule = "cosine"       # 'cosine' | 'wsd' (warmup-stable-decay) | 'constant'
warmup_frac = 0.05           # linear warmup over this fraction of the run
decay_frac = 0.2             # wsd: the final fraction of the run that decays linearly
min_lr_frac = 0.1            # the LR at the end, as a fraction of the peak
# system
device = "auto"              # 'auto' | 'cpu' | 'cuda' | 'cuda:1' | 'mps'
dtype = "auto"               # 'auto' (bfloat16 on CUDA, else float32) | 'float32' | 'bfloat16'
compile: bool | None = None  # None: on for CUDA only
fused: bool | None = None    # fused AdamW kernels; None: on for CUDA only (bench.py --compare measures CPU)
seed = 1337                  # model init, data order and sampling
parallel = "ddp"             # under torchrun: 'ddp' | 'fsdp' (FSDP2: sharded model, optimizer, checkpoints)
# ---------------------------------------------------------------------------------------

def lr_multiplier(it, total, schedule, warmup_frac, decay_frac, min_lr_frac):
    """lr(t) / learning_rate at step it of total; each group then multiplies by its lr_mult."""
    warmup = int(warmup_frac * total)
    if it < warmup:
        return (it + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = (it - warmup) / max(1, total - warmup)
        return min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    decay_start = total - int(decay_frac * total)  # wsd
    if it < decay_start:
        return 1.0
    return 1.0 - (1 - min_lr_frac) * (it - decay_start + 1) / max(1, total - decay_start)


def _warmup_iters(v, c):
    if c["max_tokens"] > 0:
        raise UserError(f"warmup_iters={v} is nanoGPT's; here warmup is a fraction of the run: set "
                          "--warmup_frac (warmup steps / total steps)")
    return {"warmup_frac": v / c["max_iters"]}, f"warmup_frac={v / c['max_iters']:.4g} (of max_iters={c['max_iters']})"


def _lr_decay_iters(v, c):
    raise UserError(f"lr_decay_iters={v} is nanoGPT's; here the schedule always ends with the run: set "
                      "--max_iters (or --max_tokens), and --decay_frac for lr_schedule='wsd'")


# nanoGPT's names for settings this trainer spells differently: mapped with a note, or refused
# with the replacement (configurator.parse applies them after every other setting)
NANOGPT_ALIASES = {
    "eval_iters": lambda v, c: ({"eval_tokens": v * c["batch_size"] * c["block_size"]},
                                f"eval_tokens={v * c['batch_size'] * c['block_size']} (x batch_size x block_size)"),
    "gradient_accumulation_steps": lambda v, c: ({"global_batch_size": v * c["batch_size"]},
                                                 f"global_batch_size={v * c['batch_size']} (x batch_size)"),
    "decay_lr": lambda v, c: ({} if v else {"lr_schedule": "constant"},
                              "the default schedule" if v else "lr_schedule='constant'"),
    "min_lr": lambda v, c: ({"min_lr_frac": v / c["learning_rate"]},
                            f"min_lr_frac={v / c['learning_rate']:.4g} (/ learning_rate)"),
    "warmup_iters": _warmup_iters,
    "lr_decay_iters": _lr_decay_iters,
}


def check_config(c, world_size):
    """Contradictory or impossible settings, each as one line."""
    for k, v in c.items():  # NaN passes every comparison below, inf runs and "diverges"
        if isinstance(v, float) and not math.isfinite(v):
            raise UserError(f"{k}={v} must be a finite number")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2 ** 63:  # beyond int64 and float math
            raise UserError(f"{k}={str(v)[:20]}{'...' if len(str(v)) > 20 else ''} ({len(str(abs(v)))} digits) "
                              "is beyond 2**63; give a size this trainer can hold")
    if not 0 <= c["seed"] < 2 ** 32:  # numpy's seeds; torch's would take more, and silently wrap elsewhere
        raise UserError(f"seed={c['seed']} must be in [0, 2**32)")
    if not c["out_dir"].strip():
        raise UserError("out_dir is empty; give the run's directory, e.g. --out_dir=out")
    choices = dict(init_from=("auto", "scratch", "resume"), lr_schedule=("cosine", "wsd", "constant"),
                   dtype=("auto", "float32", "bfloat16"), wandb_mode=("online", "offline", "disabled"))
    for k, allowed in choices.items():
        if c[k] not in allowed:
            raise UserError(f"{k}={c[k]!r} is not one of {', '.join(map(repr, allowed))}")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", c["device"]):
        raise UserError(f"device={c['device']!r} is not 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    for k in ("batch_size", "global_batch_size", "block_size", "eval_interval", "log_interval",
              "eval_tokens", "keep_last"):
        if c[k] <= 0:
            raise UserError(f"{k}={c[k]} must be positive")
    if c["max_iters"] <= 0 and c["max_tokens"] <= 0:
        raise UserError("max_iters and max_tokens are both <= 0; set one of them to the run length")
    if c["global_batch_size"] % (c["batch_size"] * world_size):
        raise UserError(f"global_batch_size={c['global_batch_size']} is not a multiple of "
                          f"batch_size={c['batch_size']} x {world_size} processes; change one of them")
    if not (0 <= c["warmup_frac"] < 1 and 0 <= c["decay_frac"] <= 1 and 0 <= c["min_lr_frac"] <= 1):
        raise UserError(f"warmup_frac={c['warmup_frac']} must be in [0, 1), decay_frac={c['decay_frac']} and "
                          f"min_lr_frac={c['min_lr_frac']} in [0, 1]")
    if c["lr_schedule"] == "wsd" and c["warmup_frac"] + c["decay_frac"] > 1:
        raise UserError(f"warmup_frac={c['warmup_frac']} + decay_frac={c['decay_frac']} exceed the "
                          "whole run; make them sum to at most 1")
    for k in ("learning_rate", "beta1", "beta2", "eps", "weight_decay", "grad_clip"):
        if c[k] < 0 or (k == "learning_rate" and c[k] == 0):
            raise UserError(f"{k}={c[k]} must be {'positive' if k == 'learning_rate' else '>= 0'}")
    if c["beta1"] >= 1 or c["beta2"] >= 1:
        raise UserError(f"beta1={c['beta1']} and beta2={c['beta2']} must be below 1")
    for k in ("base_batch_size", "base_tokens", "base_block_size"):
        if c[k] is not None and c[k] <= 0:
            raise UserError(f"{k}={c[k]} must be positive (or None)")
        if c[k] is not None and not PARAMETERIZATIONS.get(c["parameterization"], {}).get("batch_duration"):
            raise UserError(f"{k}={c[k]} has no meaning for parameterization={c['parameterization']!r}; "
                              "remove it or use parameterization='completedp'")
    if c["base_block_size"] is not None and c["base_block_size"] != c["block_size"]:
        # m_B = global_batch_size / base_batch_size counts sequences: at another context the same m_B
        # is another batch in tokens, and the batch rules were fitted at the proxy's context
        raise UserError(f"block_size={c['block_size']} differs from the proxy's base_block_size={c['base_block_size']}: "
                        "Complete(d)P's m_B counts sequences of the proxy's context; train at "
                        f"block_size={c['base_block_size']}, or tune a proxy at this context")


def provenance(device_type, device_name):
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return dict(argv=sys.argv, git_commit=git("rev-parse", "HEAD"), git_dirty=bool(git("status", "--porcelain")),
                python=platform.python_version(), torch=torch.__version__, numpy=np.__version__,
                device_type=device_type, device=device_name, host=platform.node(),
                started=time.strftime("%Y-%m-%d %H:%M:%S"))


def finite(row):
    """A JSON-safe copy: non-finite floats (inf, NaN) become null, which every parser reads."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def group_table(groups, learning_rate):
    """The resolved optimizer groups (GPT.param_groups, the rows of model.param_table) for
    config.json and wandb.config, one column per field, one entry per group in the table's order:
    role, parameters, init std (None: a LayerNorm's 1/0), peak lr (learning_rate x lr_mult; a
    resumed optimizer's own lr is the schedule's), weight decay, eps, betas and module types."""
    rows = [dict(role=g["role"], params=sum(t.numel() for t in g["params"]), init_std=g["init_std"],
                 lr=learning_rate * g["lr_mult"], weight_decay=g["weight_decay"], eps=g["eps"],
                 betas=list(g["betas"]), modules=list(g["modules"])) for g in groups]
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


# ---------------------------------------------------------------------------------------
# set-up, called by main() in order. Each takes what it reads as arguments: the resolved
# settings `c` (the dict configure returns) or single values, and the Process.

@dataclass
class Process:
    """This process's place in the run (torchrun's RANK, WORLD_SIZE, LOCAL_RANK; one process
    without torchrun) and, after init_distributed, its device and precision."""
    ddp: bool = False            # launched by torchrun (any parallel mode): a process group
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    fsdp: bool = False           # parallel='fsdp': sharded model, optimizer and checkpoints
    dev: str = "cpu"             # 'cpu', 'cuda:N', 'mps'
    device_type: str = "cpu"
    device_name: str = "cpu"     # the GPU's name (peak FLOPs, provenance), else the processor's
    ptdtype: torch.dtype = torch.float32
    autocast: object = None      # the autocast context of ptdtype (a no-op for float32)

    @property
    def master(self):
        return self.rank == 0


def torchrun_process():
    """The Process of torchrun's environment, before any device or process group."""
    ddp = int(os.environ.get("RANK", -1)) != -1
    rank, world_size = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if ddp else (0, 1)
    return Process(ddp=ddp, rank=rank, world_size=world_size, local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(proc, parallel, device, dtype):
    """Fill in proc's device and precision and, under torchrun, join the process group (nccl on
    CUDA, gloo on CPU); parallel='fsdp' needs torchrun."""
    if parallel not in PARALLEL or (parallel == "fsdp" and not proc.ddp):
        raise UserError(f"parallel={parallel!r} is not one of 'ddp', 'fsdp'" if parallel not in PARALLEL else
                          "parallel='fsdp' needs torchrun: torchrun --standalone --nproc_per_node=N train.py ...")
    proc.fsdp = parallel == "fsdp"
    proc.dev, proc.device_type, proc.ptdtype, proc.autocast = resolve_device(device, dtype, proc.local_rank, proc.ddp)
    if proc.device_type == "cuda":
        torch.cuda.set_device(torch.device(proc.dev).index or 0)  # set_device('cuda') is an error: name the index
    proc.device_name = (torch.cuda.get_device_name(proc.dev) if proc.device_type == "cuda"
                        else platform.processor() or proc.device_type)
    if proc.ddp:
        dist.init_process_group(backend="nccl" if proc.device_type == "cuda" else "gloo")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def end_distributed():
    """Leave the process group. After the barrier, gloo's worker thread still has to destroy the
    finished work objects, which takes the GIL; if the group is torn down (joining that thread)
    while this thread holds the GIL, both wait forever (seen once in the suite: ProcessGroupGloo's
    destructor joining under the DDP reducer's dealloc). A short sleep releases the GIL first."""
    dist.barrier()
    time.sleep(0.1)
    dist.destroy_process_group()


def teardown(proc, lock):
    """The process group left (under torchrun) and out_dir's lock released (rank 0)."""
    if proc.ddp:
        end_distributed()
    if lock:
        lock.release()


def open_data(ddir, c, proc):
    """(dataset, model vocabulary): the default dataset is prepared on first use; a tokenizer or
    prompt that cannot work fails now, not after training."""
    if c["dataset"] == "shakespeare_char" and not c["data_dir"] and not os.path.exists(os.path.join(ddir, "meta.json")):
        if proc.master:  # under a lock: the first points of a sweep start together and prepare it once
            import fcntl
            with open(os.path.join(ddir, ".prepare.lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not os.path.exists(os.path.join(ddir, "meta.json")):
                    spec = importlib.util.spec_from_file_location("prepare_char", os.path.join(ddir, "prepare.py"))
                    prep = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(prep)
                    prep.prepare(ddir)
        if proc.ddp:
            dist.barrier()
    if c["verify_data"] and proc.master:  # a full read of every file: a rewrite inside a file is caught, at its cost
        print(f"verify_data: {check_data_files(ddir)['text']}")
    if c["verify_data"] and proc.ddp:
        dist.barrier()
    data = open_dataset(ddir, c["block_size"], c["batch_size"], c["global_batch_size"], proc.rank, proc.world_size,
                        c["seed"])
    if proc.master and c["sample_tokens"] > 0:
        encode = load_codec(data.meta)[0]
        try:  # the final sample starts from a newline
            encode("\n")
        except UserError as e:
            raise UserError(f"{e}; train.py's final sample starts from one, so set --sample_tokens=0") from None
    vocab = data.meta["vocab_size"]  # read_meta has checked it: a positive int, never a guessed size
    if data.meta.get("tokenizer") != "char":  # BPE vocabularies padded to a multiple of 64 (50257 -> 50304)
        vocab = 64 * math.ceil(vocab / 64)
    return data, vocab


def run_length(c):
    """(total_iters, batch_duration) of a config: max_iters, or max_tokens / (global_batch_size *
    block_size) rounded up when a token budget is given; Complete(d)P's batch and duration
    multipliers (1 when unset): m_B = global_batch_size / base_batch_size, m_D = D / base_tokens
    with D = total_iters * tokens_per_step training tokens."""
    tokens_per_step = c["global_batch_size"] * c["block_size"]
    total = math.ceil(c["max_tokens"] / tokens_per_step) if c["max_tokens"] > 0 else c["max_iters"]
    m_B = c["global_batch_size"] / c["base_batch_size"] if c["base_batch_size"] else 1.0
    m_D = total * tokens_per_step / c["base_tokens"] if c["base_tokens"] else 1.0
    return total, dict(base_batch_size=c["base_batch_size"], base_tokens=c["base_tokens"], m_B=m_B, m_D=m_D)


def eval_sets(data, c, proc):
    """Each split's fixed evaluation windows of this rank: the same every evaluation."""
    evals = {s: eval_batches(t, c["eval_tokens"], c["block_size"], c["batch_size"], proc.rank, proc.world_size)
             for s, t in data.eval_tokens.items()}
    if proc.fsdp:  # every forward is collective: each rank runs as many as rank 0, which has the most
        evals = {s: pad_eval_batches(b, len(eval_batches(data.eval_tokens[s], c["eval_tokens"], c["block_size"],
                                                         c["batch_size"], 0, proc.world_size)), c["block_size"])
                 for s, b in evals.items()}
    return evals


# the settings that are GPTConfig's fields (vocab_size comes from the data)
MODEL_SETTINGS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "parameterization",
                  "base_n_embd", "base_n_layer", "depth_alpha", "init_std", "input_mult", "output_mult",
                  "attn_mult", "tie_embeddings", "module_hparams", "norm", "qk_norm", "pos", "rope_theta", "mlp",
                  "mlp_ratio", "z_loss")


def model_config(c, vocab):
    """The GPTConfig of the settings; a shape or multiplier it refuses is one line."""
    try:
        return GPTConfig(vocab_size=vocab, **{k: c[k] for k in MODEL_SETTINGS})
    except ValueError as e:
        raise UserError(str(e)) from None


def claim_out_dir(c, vocab, proc):
    """(lock, checkpoints): out_dir is taken for this run (one trainer per out_dir; eval_only
    only reads it), stale temporary files are removed, init_from and eval_only are checked
    against the checkpoints found, and the run's memory against the device's."""
    out_dir, eval_only, init_from = c["out_dir"], c["eval_only"], c["init_from"]
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"out_dir {out_dir} is a file, not a directory; choose another --out_dir")
    lock = None
    if proc.master and not eval_only:  # one trainer per out_dir; eval_only only reads (and writes eval.jsonl)
        lock = RunLock(out_dir)
        atexit.register(release_all)
        ckpt_io.remove_stale_temporaries(out_dir)
    ckpts = ckpt_io.list_checkpoints(out_dir)
    if eval_only and not ckpts:
        raise UserError(f"eval_only=True but {out_dir} holds no checkpoint to evaluate; point --out_dir "
                          "at a trained run")
    if init_from == "resume" and not ckpts:
        raise UserError(f"init_from='resume' but {out_dir} holds no checkpoint; use init_from='scratch'")
    if init_from == "scratch" and ckpts:
        raise UserError(f"{out_dir} already holds checkpoints ({os.path.basename(ckpts[-1])}); use a new "
                          "out_dir, delete them, or resume with init_from='auto'")
    need, what = memory_estimate(c["n_layer"], c["n_embd"], c["n_head"], vocab, c["block_size"], c["batch_size"])
    have = available_memory(proc.device_type, proc.dev)
    if have and need > have:
        raise UserError(f"this run needs {what}, more than the {have / 2 ** 30:,.1f} GiB {proc.dev} has; "
                          "lower n_layer, n_embd, batch_size or block_size (or the dataset's vocab_size)")
    return lock, ckpts


def seed_all(seed):
    """Model init, data order and dropout: torch's, Python's and numpy's generators."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def make_optimizer(model, c, device_type, batch_duration):
    """AdamW over the model's parameter groups (model.configure_optimizers)."""
    try:  # betas pushed outside [0, 1) by beta multipliers or m_B/m_D: one line
        return model.configure_optimizers(c["weight_decay"], c["learning_rate"], (c["beta1"], c["beta2"]), c["eps"],
                                          device_type, m_B=batch_duration["m_B"], m_D=batch_duration["m_D"],
                                          fused=c["fused"])
    except ValueError as e:
        raise UserError(str(e)) from None


def resume(ckpts, c, model, optimizer, loader, proc, total_iters, **same):
    """(iter_num, best_val, last_eval, finished) to start from: those of a fresh run without
    checkpoints, else of the latest one, restored into the model, optimizer, data loader and
    RNGs (fsdp: each rank reads its shards), refused if `same` (model_config, batch_duration,
    meta) or the run's settings differ from the checkpoint's. finished: a re-run of a finished
    run, which changes nothing (no second final eval row)."""
    if not ckpts:
        return 0, float("inf"), -1, False
    ckpt = ckpt_io.load_checkpoint(ckpts[-1], tensors=not proc.fsdp)
    iter_num, best_val, last_eval = ckpt_io.restore(ckpt, ckpts[-1], model, optimizer, loader, proc.rank,
                                                    config=None if c["eval_only"] else c, **same)
    theirs = ckpt["config"]
    if proc.master and any(k in theirs and theirs[k] != c[k] for k in ("max_iters", "max_tokens")):
        print(f"note: the run is resumed with another length (max_iters {theirs.get('max_iters')} -> {c['max_iters']}, "
              f"max_tokens {theirs.get('max_tokens')} -> {c['max_tokens']}): the LR schedule from step "
              f"{iter_num} on is that of {total_iters} steps")
    if proc.master:
        print(f"resuming from {ckpts[-1]} at step {iter_num}")
    finished = (iter_num >= total_iters and last_eval == iter_num and not c["eval_only"]
                and os.path.isfile(os.path.join(c["out_dir"], "final.json")))
    if finished and proc.master:
        print(f"{c['out_dir']} finished at step {iter_num} of {total_iters}; nothing to do "
              "(final.json and metrics.jsonl hold its result)")
    return iter_num, best_val, last_eval, finished


def wrap_model(model, use_compile, proc):
    """The model the loop calls: compiled, and under DDP wrapped (fsdp shards in place)."""
    if use_compile:
        model = torch.compile(model)
    if proc.ddp and not proc.fsdp:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[proc.local_rank] if proc.device_type == "cuda" else None)
    return model


# ---------------------------------------------------------------------------------------
# the run's records: config.json, provenance.json, metrics.jsonl, final.json (rank 0)

def write_records(config, resumed_at, device_type, dev_name, **extra):
    """config.json (the resolved config and `extra`) and provenance.json: the first start is
    kept and every resume appended, so a resumed run keeps its identity. A final.json of an
    earlier start (stopped) is removed: this start's outcome is not known yet. Every record is
    written whole or not at all (runs.write_json)."""
    out_dir = config["out_dir"]
    try:
        write_json(os.path.join(out_dir, "config.json"), dict(config=config, **extra), indent=1)
        prov_path, prov = os.path.join(out_dir, "provenance.json"), provenance(device_type, dev_name)
        if resumed_at is not None and os.path.isfile(prov_path):
            try:
                with open(prov_path) as f:
                    first = json.load(f)
                first.setdefault("resumes", []).append(dict(prov, step=resumed_at))
                prov = first
            except (OSError, ValueError, AttributeError):
                prov["note"] = "provenance.json of the first start was unreadable and is replaced"
        write_json(prov_path, prov, indent=1)
        if os.path.exists(os.path.join(out_dir, "final.json")):
            os.remove(os.path.join(out_dir, "final.json"))
    except OSError as e:
        raise UserError(f"cannot write the run's records in {out_dir} ({e.strerror or e}); free space or make it "
                          "writable, then run the same command again (nothing was changed)") from None


def one_history(path, upto):
    """Make metrics.jsonl one history before this start appends to it: keep the rows of steps
    up to `upto` (the step resumed from; None for a start from step 0: none), and move every
    other row (steps a killed or stopped start logged after its last checkpoint, which this
    start redoes, and any torn line) to metrics.rolled_back.jsonl, so no reader sees two
    histories. Returns a note for the log, or None when nothing moved."""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return None
    keep, moved, torn = [], [], 0
    for line in filter(str.strip, lines):
        try:
            row = json.loads(line)
            ok = isinstance(row, dict) and isinstance(row.get("iter"), int)
        except ValueError:
            ok = False
        torn += not ok
        (keep if ok and upto is not None and row["iter"] <= upto else moved).append(line)
    if not moved:
        return None
    aside = os.path.join(os.path.dirname(path), "metrics.rolled_back.jsonl")
    append_line(aside, "\n".join(moved))
    write_atomic(path, "".join(line + "\n" for line in keep))
    return (f"metrics.jsonl: {len(moved)} rows {'after step ' + str(upto) if upto is not None else 'of an earlier start'}"
            f"{f' ({torn} torn)' if torn else ''} moved to {os.path.basename(aside)}; this start logs those steps again")


def wandb_config(config, extra):
    """wandb.config of a run: its settings, config.json's fields beside them (the per-group table
    among them; the Parameterization's table as parameterization_table: `parameterization` is the
    setting) and the derived m_N, m_L (the Parameterization's), m_B, m_D (batch_duration's) again
    at the top level, where a dashboard filters and groups by them."""
    fields = {("parameterization_table" if k in config else k): v for k, v in extra.items()}
    derived = {k: src[k] for src in (extra.get("parameterization", {}), extra.get("batch_duration", {}))
               for k in ("m_N", "m_L", "m_B", "m_D") if k in src}
    return dict(config, **fields, **derived)


def start_wandb(config, **extra):
    """A wandb run (wandb.config: wandb_config) in the group wandb_group, if set; a resumed run
    logs to the same one (its id is kept in wandb_id.json)."""
    import wandb
    out_dir = config["out_dir"]
    id_path = os.path.join(out_dir, "wandb_id.json")
    run_id = None
    if os.path.isfile(id_path):
        try:
            with open(id_path) as f:
                run_id = json.load(f)["id"]
        except (OSError, ValueError, KeyError, TypeError):
            run_id = None
    run = wandb.init(project=config["wandb_project"], name=config["wandb_run_name"] or None,
                     group=config["wandb_group"] or None, config=wandb_config(config, extra),
                     mode=config["wandb_mode"], dir=out_dir, id=run_id, resume="allow" if run_id else None)
    try:
        write_json(id_path, {"id": run.id})
    except OSError as e:
        raise UserError(f"cannot write {id_path} ({e.strerror or e}); free space or make {out_dir} writable") from None
    return run


class Records:
    """The run's records, kept by rank 0 (on the other ranks every call does nothing). At the
    start: config.json and provenance.json (write_records), metrics.jsonl made one history
    (one_history) and opened; then a row per log line and evaluation (also to wandb), and the
    outcome in final.json. eval_only writes eval.jsonl only: an evaluation leaves the run's
    records alone. resumed_at: the step resumed from (None from step 0); extra: config.json's
    fields beside the config."""

    def __init__(self, config, master, resumed_at, device_type, dev_name, **extra):
        self.out_dir, self.master = config["out_dir"], master
        self.path = os.path.join(self.out_dir, "eval.jsonl" if config["eval_only"] else "metrics.jsonl")
        try:
            if master and not config["eval_only"]:
                write_records(config, resumed_at, device_type, dev_name, **extra)
                note = one_history(self.path, resumed_at)
                if note:
                    print(f"note: {note}")
            self.file = open(self.path, "a") if master else None
        except OSError as e:
            raise UserError(f"cannot write to out_dir {self.out_dir} ({e.strerror}); make it writable or choose "
                              "another --out_dir") from None
        self.wandb = start_wandb(config, **extra) if master and config["wandb_log"] else None

    def log(self, row):
        if self.master:
            try:
                self.file.write(json.dumps(finite(row)) + "\n")
                self.file.flush()
            except OSError as e:  # a full disk: the checkpoints stand, the rows after the last one are redone
                raise UserError(f"cannot append to {self.path} ({e.strerror or e}) at step {row['iter']}; free space, "
                                  f"then run the same command to resume from the last checkpoint") from None
            if self.wandb is not None:
                self.wandb.log(row, step=row["iter"])

    def finish(self, status, iter_num, best_val, **info):
        """final.json: the outcome (done, stopped, diverged) at step iter_num."""
        if self.master:
            try:
                write_json(os.path.join(self.out_dir, "final.json"),
                           finite(dict(status=status, iter=iter_num, best_val_loss=best_val, **info)))
            except OSError as e:
                raise UserError(f"cannot write {self.out_dir}/final.json ({e.strerror or e}); free space, then run "
                                  f"the same command again (the run {status} at step {iter_num})") from None

    def close(self):
        if self.file:
            self.file.close()
        if self.wandb is not None:
            self.wandb.finish()


# ---------------------------------------------------------------------------------------
# the loop's parts

class Stop:
    """The loop's SIGTERM/SIGINT handler: a signal, once or more, asks for a stop at the next
    step boundary (saved, exit 4); `signal` is the last one's name."""

    def __init__(self):
        self.signal = None

    def __call__(self, signum, frame):
        self.signal = signal.Signals(signum).name


def allocation_guard(fn, batch_size, block_size):
    """fn, where an allocation the memory estimate let through but the allocator refused (CPU RAM
    or GPU memory) becomes one line naming what to lower; the checkpoints are untouched."""
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
            if not out_of_memory(e):
                raise
            need = re.search(r"allocate ([\d.,]+ ?[KMGT]?i?B|\d+ bytes)", str(e))
            raise UserError(f"out of memory in {fn.__name__}{f' (allocating {need.group(1)})' if need else ''} with "
                              f"batch_size={batch_size} x block_size={block_size}; lower batch_size (global_batch_size "
                              "is kept by more micro-steps), block_size or the model; the checkpoints are untouched") from None
    return guarded


@torch.no_grad()
def evaluate(model, evals, proc):
    """Mean loss of each split over its fixed windows, reduced over ranks."""
    model.eval()
    out = {}
    for split, batches in evals.items():
        tot = torch.zeros(2, device=proc.dev, dtype=torch.float64)  # (sum of losses, count)
        for x, y in batches:
            with proc.autocast:
                _, loss = model(x.to(proc.dev), None if y is None else y.to(proc.dev))
            if y is None:  # fsdp padding (parallel.pad_eval_batches): every forward is collective; not counted
                continue
            tot += torch.tensor([loss.item() * x.size(0), x.size(0)], device=proc.dev, dtype=torch.float64)
        if proc.ddp:
            dist.all_reduce(tot)
        out[split] = (tot[0] / tot[1]).item()
    model.train()
    return out


def forward_backward(model, raw_model, optimizer, loader, lr_t, grad_accum, grad_clip, proc):
    """One global batch: each group's LR set to lr_t * lr_mult, the micro-steps' gradients
    accumulated (synced on the last one only), clipped by the global norm. Returns the batch's
    cross-entropy and z-loss term on this rank and the gradient norm (before clipping)."""
    for g in optimizer.param_groups:
        g["lr"] = lr_t * g["lr_mult"]  # schedules multiply; never set a group's LR absolutely
    loss_sum, z_sum = torch.zeros((), device=proc.dev), torch.zeros((), device=proc.dev)
    for micro, (x, y) in enumerate(loader.next_step()):
        if proc.fsdp:  # reduce-scatter gradients on the last micro-step only
            raw_model.set_requires_gradient_sync(micro == grad_accum - 1)
        elif proc.ddp:  # sync gradients on the last micro-step only
            model.require_backward_grad_sync = micro == grad_accum - 1
        with proc.autocast:
            _, loss, parts = model(x.to(proc.dev, non_blocking=True), y.to(proc.dev, non_blocking=True),
                                   return_parts=True)
            loss = loss / grad_accum
        loss.backward()
        loss_sum += (parts["ce"] / grad_accum).detach()
        z_sum += (parts["z"] / grad_accum).detach()
    grad_norm = full(torch.nn.utils.clip_grad_norm_(raw_model.parameters(), grad_clip or float("inf")))  # global
    return loss_sum, z_sum, grad_norm


def any_rank(flag, proc):
    """Whether flag holds on any rank (every rank stops at the same step); nccl reduces device tensors only."""
    if not proc.ddp:
        return flag
    t = torch.tensor([float(flag)], device=proc.dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item() > 0


def mean_over_ranks(loss_sum, proc):
    """The loss of the whole global batch, not of rank 0's part."""
    if proc.ddp:
        dist.all_reduce(loss_sum)
        loss_sum /= proc.world_size
    return loss_sum.item()


def stopped_line(iter_num, why, saved):
    if saved:
        return f"stopped at step {iter_num} ({why}); checkpoint saved; run the same command again to resume"
    return (f"stopped at step {iter_num} ({why}); nothing saved (save_checkpoints=False): the same command starts "
            "the run over from step 0")


def diverged_line(iter_num, loss, grad_norm, lr_t, out_dir):
    return (f"error: step {iter_num}: loss {loss:.4g}, gradient norm {grad_norm:.4g} is not finite; the learning "
            f"rate {lr_t:.3g} is likely too high for this model (or the data holds bad ids); lower --learning_rate. "
            f"Checkpoints in {out_dir} are untouched.")


def log_line(row, total_iters, elapsed, eta):
    mfu = f", mfu {100 * row['mfu']:.1f}%" if "mfu" in row else ""
    return (f"iter {row['iter']}/{total_iters}: loss {row['loss']:.4f}, lr {row['lr']:.3g}, grad norm "
            f"{row['grad_norm']:.3f}, {row['ms_per_step']:.0f} ms/step, {row['tok_per_s']:,.0f} tok/s"
            f"{mfu}, elapsed {hms(elapsed)}, eta {hms(eta)}")


def sample(raw_model, meta, seed, n_tokens, proc):
    """The final sample, from a newline (fsdp: every rank takes part in each forward; rank 0 prints)."""
    encode, decode = load_codec(meta)
    torch.manual_seed(seed)
    start = torch.tensor([encode("\n")], dtype=torch.long, device=proc.dev)
    out = raw_model.generate(start, n_tokens, temperature=0.8, top_k=200)
    if proc.master:
        print("sample:\n" + decode(out[0].tolist()))


def main():
    # settings, processes, device; until the loop a signal ends the process at once (nothing to
    # save; a blocked read cannot retry forever), in the loop it stops at a step boundary, saved
    config = configure(globals(), sys.argv[1:], NANOGPT_ALIASES)
    proc = torchrun_process()
    check_config(config, proc.world_size)
    signal.signal(signal.SIGTERM, _stop_in_startup)
    signal.signal(signal.SIGINT, _stop_in_startup)
    init_distributed(proc, parallel, device, dtype)
    master = proc.master
    use_compile = (proc.device_type == "cuda") if compile is None else compile
    guard = functools.partial(allocation_guard, batch_size=batch_size, block_size=block_size)

    # data: token files (random windows) or a shard directory; prepared on first use
    ddir = data_dir or os.path.join(_REPO, "data", dataset)
    data, vocab = open_data(ddir, config, proc)
    loader, meta = data.loader, data.meta
    grad_accum = global_batch_size // (batch_size * proc.world_size)
    tokens_per_step = global_batch_size * block_size
    total_iters, batch_duration = run_length(config)
    evals = eval_sets(data, config, proc)

    # model and optimizer, in out_dir (claimed), from its latest checkpoint if it has one
    gptconf = model_config(config, vocab)
    lock, ckpts = claim_out_dir(config, vocab, proc)
    # the tokenizer travels with the model, so sample.py decodes without the dataset directory; the
    # files' fingerprints with it, so a resume on other data is refused
    ckpt_meta = {k: meta[k] for k in ckpt_io.DATA_IDENTITY if k in meta}
    seed_all(seed)
    model = guard(lambda: GPT(gptconf).to(proc.dev))()
    new_optimizer = functools.partial(make_optimizer, model, config, proc.device_type, batch_duration)
    optimizer = new_optimizer()
    if proc.fsdp:  # shard each block, then the model; the optimizer is rebuilt on the shards, its groups asserted equal
        optimizer = shard_with_optimizer(model, optimizer, new_optimizer, proc.device_type, proc.ptdtype)
    iter_num, best_val, last_eval, finished = resume(ckpts, config, model, optimizer, loader, proc, total_iters,
                                                     model_config=asdict(gptconf), batch_duration=batch_duration,
                                                     meta=ckpt_meta)
    if finished:
        teardown(proc, lock)
        return
    raw_model, model = model, wrap_model(model, use_compile, proc)

    # the run's start-up table and records, and its checkpoints
    flops_peak = peak_flops(proc.device_name) if proc.device_type == "cuda" else None
    if master:
        print(f"data: {ddir}: {data.describe}")
        print(f"model: {n_layer} layers x {n_embd} wide, {raw_model.get_num_params() / 1e6:.2f}M "
              f"non-embedding params; {total_iters} steps x {tokens_per_step:,} tokens "
              f"({grad_accum} micro-steps x {batch_size} x {proc.world_size} procs); device {proc.dev} "
              f"{proc.ptdtype}{' compiled' if use_compile else ''}{', fsdp' if proc.fsdp else ''}")
        print(param_table(raw_model.parameterization, optimizer.param_groups, batch_duration["m_B"], batch_duration["m_D"]))
    records = Records(config, master, iter_num if ckpts else None, proc.device_type, proc.device_name,
                      total_iters=total_iters, grad_accum=grad_accum,
                      parameterization=raw_model.parameterization.table(), batch_duration=batch_duration,
                      groups=group_table(optimizer.param_groups, learning_rate))
    checkpointer = ckpt_io.Checkpointer(out_dir, raw_model, optimizer, loader, model_config=asdict(gptconf),
                                        config=config, meta=ckpt_meta, batch_duration=batch_duration,
                                        keep_last=keep_last, enabled=save_checkpoints, rank=proc.rank,
                                        world_size=proc.world_size, distributed=proc.ddp, sharded=proc.fsdp)

    # the loop: evaluate (and checkpoint) when due, stop on a signal, one optimizer step, log
    stop = Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    model.train()
    start_iter, losses, code = iter_num, {}, 0
    t_start = time.time()
    t0, tokens_since, steps_since = time.time(), 0, 0
    train_time = 0.0  # seconds spent in training steps (evaluations excluded), for the ETA
    while True:
        # evaluate every eval_interval steps (not twice after a resume), at the end, or once (eval_only)
        due = iter_num % eval_interval == 0 and iter_num != last_eval
        if due or iter_num >= total_iters or eval_only:
            losses, last_eval = guard(evaluate)(model, evals, proc), iter_num
            if master:
                print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            records.log(dict(iter=iter_num, train_loss=losses["train"], val_loss=losses["val"],
                             tokens=iter_num * tokens_per_step, wall_s=round(time.time() - t_start, 3)))
            if eval_only:
                break
            improved = losses["val"] < best_val
            best_val = losses["val"] if improved else best_val
            checkpointer.after_eval(iter_num, best_val, last_eval, improved)
            t0, tokens_since, steps_since = time.time(), 0, 0  # eval time is not training time
        if iter_num >= total_iters:
            break
        # a scheduler's SIGTERM/SIGINT (or halt_at_iter) stops at a step boundary, saved
        if any_rank(stop.signal is not None or iter_num == halt_at_iter != start_iter, proc):
            checkpointer.save(iter_num, best_val, last_eval)
            if master:
                print(stopped_line(iter_num, stop.signal or "halt_at_iter", save_checkpoints))
            records.finish("stopped", iter_num, best_val, resumable=save_checkpoints)
            code = EXIT_STOPPED
            break

        # one optimizer step at the schedule's LR; a non-finite gradient norm ends the run (exit 3)
        lr_t = learning_rate * lr_multiplier(iter_num, total_iters, lr_schedule, warmup_frac,
                                             decay_frac, min_lr_frac)
        loss_sum, z_sum, grad_norm = guard(forward_backward)(model, raw_model, optimizer, loader, lr_t, grad_accum,
                                                      grad_clip, proc)
        if not torch.isfinite(grad_norm):
            if master:
                print(diverged_line(iter_num, loss_sum.item(), grad_norm.item(), lr_t, out_dir), file=sys.stderr)
            records.finish("diverged", iter_num, best_val, lr=lr_t)
            teardown(proc, lock)
            sys.exit(EXIT_DIVERGED)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        iter_num += 1
        tokens_since += tokens_per_step
        steps_since += 1

        # log: the global batch's loss, throughput, MFU, time left
        if iter_num % log_interval == 0 or iter_num == total_iters:
            if proc.device_type == "cuda":
                torch.cuda.synchronize()
            dt = time.time() - t0
            train_time += dt
            lossf = mean_over_ranks(loss_sum, proc)
            elapsed = time.time() - t_start
            eta = train_time / (iter_num - start_iter) * (total_iters - iter_num)  # training steps only
            row = dict(iter=iter_num, loss=lossf, lr=lr_t, grad_norm=grad_norm.item(),
                       tok_per_s=tokens_since / dt, ms_per_step=1000 * dt / steps_since,
                       tokens=iter_num * tokens_per_step, wall_s=round(elapsed, 3))
            if z_loss > 0:  # the z-loss term on its own; 'loss' stays the cross-entropy
                row["z_loss"] = mean_over_ranks(z_sum, proc)
            if flops_peak:
                row["mfu"] = raw_model.flops_per_token() * row["tok_per_s"] / (flops_peak * proc.world_size)
            if master:
                print(log_line(row, total_iters, elapsed, eta))
            records.log(row)
            t0, tokens_since, steps_since = time.time(), 0, 0

    # the end: outcome, a sample, resources released
    if iter_num >= total_iters and not eval_only:
        records.finish("done", iter_num, best_val, train_loss=losses.get("train"), val_loss=losses.get("val"))
        if (master or proc.fsdp) and sample_tokens > 0:  # fsdp: every rank takes part in each forward
            sample(raw_model, meta, seed, sample_tokens, proc)
    records.close()
    teardown(proc, lock)
    if code:  # stopped: 4 whether one signal came or several, also one during the exit
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(code)


if __name__ == "__main__":
    run_cli(main)

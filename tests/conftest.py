"""Shared fixtures: a small character dataset made locally (no network), and a runner for
the repo's scripts as subprocesses."""
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys

# The export tests import Hugging Face tokenizers, whose thread pool would deadlock the worker
# processes another test in the same pytest worker forks (data preparation): no pool, anywhere.
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from dataloader import write_tokens  # noqa: E402

torch.set_num_threads(1)  # tests are small; one thread is faster and stable on 2 cores

WORDS = ("the king queen lord love death night day sword crown heart blood speak hath thou "
         "thee my good sweet fair grave honour heaven earth fool wit").split()


def make_text(n_chars=60_000, seed=0):
    rng = random.Random(seed)
    lines = []
    while sum(map(len, lines)) < n_chars:
        speaker = rng.choice(["ROMEO", "JULIET", "HAMLET", "KING"])
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        lines.append(f"{speaker}:\n{words.capitalize()}.\n\n")
    return "".join(lines)


def prepare_char(out_dir, text):
    """Run data/shakespeare_char/prepare.py's prepare() on a local text."""
    spec = importlib.util.spec_from_file_location(
        "char_prepare", os.path.join(REPO, "data", "shakespeare_char", "prepare.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = os.path.join(out_dir, "input.txt")
    os.makedirs(out_dir, exist_ok=True)
    with open(src, "w") as f:
        f.write(text)
    return mod.prepare(out_dir, src)


@pytest.fixture(scope="session")
def char_data(tmp_path_factory):
    """A character dataset directory (train.bin, val.bin, meta.json) of ~60k characters."""
    d = str(tmp_path_factory.mktemp("char_data"))
    prepare_char(d, make_text())
    return d


# the environment of every script a test runs: one thread, unbuffered output, no wandb
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", WANDB_MODE="disabled")


def write_char_dataset(d, n_chars=20_000, seed=0):
    """train.bin / val.bin / meta.json as data/shakespeare_char/prepare.py writes them."""
    rng = np.random.default_rng(seed)
    words = "the king queen of and to my lord sweet love death night day speak hear what now".split()
    lines, n = [], 0
    while n < n_chars:
        line = " ".join(rng.choice(words, size=rng.integers(3, 9))).capitalize()
        line += rng.choice([".", ",", "!", "?"]) + "\n"
        lines.append(line)
        n += len(line)
    text = "".join(lines)
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text], dtype=np.uint16)
    n_val = len(ids) // 10
    os.makedirs(d, exist_ok=True)
    write_tokens(os.path.join(d, "train.bin"), ids[:-n_val], vocab_size=len(chars))
    write_tokens(os.path.join(d, "val.bin"), ids[-n_val:], vocab_size=len(chars))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"tokenizer": "char", "vocab_size": len(chars), "itos": chars}, f)
    return d


# a tiny model and run: ~0.1 s a step on one core
TINY = ["--n_layer=2", "--n_embd=32", "--n_head=2", "--base_n_embd=32", "--base_n_layer=2",
        "--block_size=32", "--batch_size=4", "--global_batch_size=8", "--eval_tokens=512",
        "--sample_tokens=0", "--log_interval=1", "--device=cpu"]


def run_script(args, timeout=300, env=None, cmd=None):
    """Run `python <args>` (or cmd + args) from the repo root; returns CompletedProcess."""
    full_env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", WANDB_MODE="disabled")
    full_env.update(env or {})
    return subprocess.run((cmd or [sys.executable]) + list(args), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def run_main(module, argv):
    """module.main() in-process with argv; its globals, the torch RNG and TF32 flags restored after."""
    saved, old_argv, rng = dict(vars(module)), sys.argv, torch.get_rng_state()
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    sys.argv = [f"{module.__name__}.py", *argv]
    try:
        module.main()
    finally:
        import runs
        runs.release_all()  # the out_dir lock of a run that raised
        for s, h in handlers.items():
            signal.signal(s, h)
        vars(module).update(saved)
        sys.argv = old_argv
        torch.set_rng_state(rng)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32

"""
Small pieces shared by the entry points (train.py, sample.py, bench.py, scripts/*) that none
of them should import from another entry point: device and precision set-up, the peak-FLOPs
table, the tokenizer of a dataset's meta.json, the one number parser, durations and signed
numbers for log lines (the one-line error convention is runs.UserError and runs.run_cli).
"""
import re
from contextlib import nullcontext

from runs import UserError

# peak dense bf16 FLOP/s per GPU model, for MFU (vendor datasheets, without sparsity)
PEAK_FLOPS = {"H100": 989e12, "H100 PCIe": 756e12, "H200": 989e12, "GH200": 989e12,
              "B200": 2250e12, "A100": 312e12, "A10": 125e12, "A10G": 70e12, "L4": 121e12,
              "L40S": 362e12, "V100": 125e12, "RTX 4090": 165e12, "RTX 3090": 71e12}


def peak_flops(device_name):
    """The table's entry whose name is the longest match in device_name, or None."""
    hits = [k for k in PEAK_FLOPS if k in device_name]
    return PEAK_FLOPS[max(hits, key=len)] if hits else None


def resolve_device(device, dtype="auto", local_rank=0, ddp=False):
    """(device string, device type, torch dtype, autocast context) for the settings `device`
    ('auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps') and `dtype` ('auto' | 'float32' |
    'bfloat16'); raises UserError for a device this machine does not have."""
    import torch
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise UserError(f"device={device!r} is not 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if dtype not in ("auto", "float32", "bfloat16"):
        raise UserError(f"dtype={dtype!r} is not one of 'auto', 'float32', 'bfloat16'")
    dev = device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={dev!r} but CUDA is not available; use --device=cpu")
    if dev.startswith("cuda:") and int(dev[5:]) >= torch.cuda.device_count():
        raise UserError(f"device={dev!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    if dev == "mps" and not torch.backends.mps.is_available():
        raise UserError("device='mps' but MPS is not available; use --device=cpu")
    if dev == "cuda" and ddp:
        dev = f"cuda:{local_rank}"
    device_type = "cuda" if dev.startswith("cuda") else dev
    ptdtype = {"auto": torch.bfloat16 if device_type == "cuda" else torch.float32,
               "float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    autocast = (nullcontext() if ptdtype == torch.float32
                else torch.autocast(device_type=device_type, dtype=ptdtype))
    return dev, device_type, ptdtype, autocast


def hms(seconds):
    """1:02:03 / 2:03: a duration for a log line."""
    m, sec = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def number(text, cell=False):
    """A number written as the repository's tools take them: a decimal (0.0078, 1e-3), a power of
    two as the run directories name it (2^-5.5) or as Python writes it (2**-7), or arithmetic of
    those (1/128, 3*2**-8); nan for anything else (a word, a column of text, an empty cell). The
    one parser of --where values, numeric flags and (cell=True: a decimal only, as a results file
    stores it, so a hand-edited '2^-10' is refused rather than read) results cells; evaluated
    without eval()."""
    import ast
    import math
    import operator
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        return math.nan
    try:
        return float(text)
    except ValueError:
        if cell:
            return math.nan
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}

    def value(node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](value(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](value(node.left), value(node.right))
        raise ValueError(node)
    try:
        if len(text) > 100:
            raise ValueError(text)
        return float(value(ast.parse(text.strip().replace("^", "**"), mode="eval").body))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError):
        return math.nan


def signed(value, digits=2):
    """`value` with an explicit sign and `digits` decimals; a value that rounds to zero prints
    as +0.00 whatever its sign (a slope of -1e-17 is not negative); nan (a drift of one curve)
    prints as n/a."""
    if value != value:
        return "n/a"
    text = f"{value:+.{digits}f}"
    return f"{0.0:+.{digits}f}" if float(text) == 0 else text


def load_codec(meta):
    """(encode, decode) for a dataset's meta.json: 'char' vocabularies or GPT-2 BPE."""
    if meta.get("tokenizer") == "char":
        itos = meta["itos"]
        stoi = {c: i for i, c in enumerate(itos)}

        def encode(s):
            missing = sorted(set(c for c in s if c not in stoi))
            if missing:
                raise UserError(f"the prompt has characters outside the vocabulary: {missing!r}; "
                                  "use only characters of the training text (meta.json itos)")
            return [stoi[c] for c in s]
        return encode, lambda ids: "".join(itos[i] for i in ids)
    import tiktoken
    name = meta.get("tokenizer", "gpt2")
    try:
        enc = tiktoken.get_encoding(name)
    except Exception as e:  # unknown name, or its files not cached and no network
        raise UserError(f"cannot load the tiktoken encoding {name!r} ({type(e).__name__}); it is "
                          "downloaded on first use: run once with network access or point TIKTOKEN_CACHE_DIR "
                          "at a cache that holds it (train.py: or set --sample_tokens=0)") from None
    return (lambda s: enc.encode(s, allowed_special={"<|endoftext|>"})), enc.decode

"""
Training throughput of one model shape: forward, backward and AdamW step on random tokens.

    python bench.py                                   # the default run's shape
    python bench.py --n_layer=8 --n_embd=256 --batch_size=16 --block_size=128
    python bench.py --device=cuda --n_layer=12 --n_embd=768 --block_size=1024 --batch_size=16

Prints ms per step and tokens/s (and MFU on CUDA, against train.py's peak-FLOPs table).
Figures are medians over `steps` timed steps after `warmup` untimed ones.
"""
import sys
import time
from contextlib import nullcontext

import torch

from configurator import ConfigError, configure
from model import GPT, GPTConfig
from runs import check_device
from train import peak_flops

n_layer = 4
n_head = 4
n_embd = 128
block_size = 128
batch_size = 16
vocab_size = 84
parameterization = "completep"
base_n_layer = 2
base_n_embd = 64
device = "auto"
dtype = "auto"              # 'auto': bfloat16 on CUDA, float32 elsewhere
compile: bool | None = None  # None: on for CUDA only
warmup = 5
steps = 20
seed = 0


def main():
    configure(globals(), sys.argv[1:])
    check_device(device)
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    dt = {"auto": torch.bfloat16 if dev.startswith("cuda") else torch.float32,
          "float32": torch.float32, "bfloat16": torch.bfloat16}.get(dtype)
    if dt is None:
        raise ConfigError(f"dtype={dtype!r} is not 'auto', 'float32' or 'bfloat16'")
    torch.manual_seed(seed)
    try:
        cfg = GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=n_layer, n_head=n_head,
                        n_embd=n_embd, parameterization=parameterization, base_n_layer=base_n_layer,
                        base_n_embd=base_n_embd)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    model = GPT(cfg).to(dev)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), 1e-8, "cuda" if dev.startswith("cuda") else "cpu")
    fwd = torch.compile(model) if (dev.startswith("cuda") if compile is None else compile) else model
    ctx = torch.autocast("cuda", dtype=dt) if dev.startswith("cuda") and dt != torch.float32 else nullcontext()
    x = torch.randint(0, vocab_size, (batch_size, block_size), device=dev)
    y = torch.randint(0, vocab_size, (batch_size, block_size), device=dev)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    times = []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        with ctx:
            _, loss = fwd(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = sorted(times)[len(times) // 2]
    tok_s = batch_size * block_size / step
    name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else f"cpu x{torch.get_num_threads()} threads"
    line = (f"{n_layer} layers x {n_embd} wide, batch {batch_size} x {block_size}, {dt}, {name}: "
            f"{1000 * step:.1f} ms/step, {tok_s:,.0f} tokens/s")
    peak = peak_flops(name) if dev.startswith("cuda") else None
    if peak:
        line += f", MFU {100 * model.flops_per_token() * tok_s / peak:.1f}%"
    print(line)
    return step


if __name__ == "__main__":
    try:
        main()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

"""
Training throughput of one model shape: forward, backward and AdamW step on random tokens.

    python bench.py                                   # the default run's shape
    python bench.py --n_layer=8 --n_embd=256 --batch_size=16 --block_size=128
    python bench.py --device=cuda --n_layer=12 --n_embd=768 --block_size=1024 --batch_size=16
    python bench.py --compare=True                    # our step against a plain nanoGPT-style step
    python bench.py --blocks=True                     # the modern block against the GPT-2 block

Prints ms per step and tokens/s (and MFU on CUDA, against util.PEAK_FLOPS). Figures are
medians over `steps` timed steps after `warmup` untimed ones.

--compare=True times two steps at the same shape in the same process, taking turns
(`repeats` rounds, so a busy machine slows both alike): "plain" is the nanoGPT step, the GPT
under 'sp' (no multipliers) with one AdamW group over every parameter; "ours" is the
configured parameterization with its per-role groups (lr_mult, weight decay, eps), plus the
variants that may make it faster: fused AdamW, torch.compile. The ratio is tokens/s over the
plain step's: the cost (or gain) of the parameterization, measured.

--blocks=True times the GPT-2 block (LayerNorm, learned positions, GELU, biases) against the
modern block (model.BLOCKS["modern"]: RMSNorm, QK-norm, RoPE, SwiGLU at hidden ceil(8/3 N), no
biases) under the same parameterization, shape and AdamW groups, taking turns as --compare
does; it prints each one's non-embedding parameters (SwiGLU's three matrices at 8/3 N hold the
parameters of GELU's two at 4 N, up to the rounding and the biases) and tokens/s over the GPT-2
block's.
"""
import statistics
import sys
import time

import torch

from configurator import configure
from runs import UserError, available_memory, memory_estimate, out_of_memory, run_cli
from model import BLOCKS, GPT, GPTConfig
from util import peak_flops, resolve_device

n_layer = 4                 # the model shape, as in train.py
n_head = 4
n_embd = 128
block_size = 128
batch_size = 16
vocab_size = 84             # the character vocabulary of data/shakespeare_char (the default run)
parameterization = "completep"  # sp | mup | depth_mup | completep
base_n_layer = 2            # the proxy shape: sets m_N and m_L
base_n_embd = 64
device = "auto"             # 'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps'
dtype = "auto"              # 'auto': bfloat16 on CUDA, float32 elsewhere
compile: bool | None = None  # None: on for CUDA only (compare: both variants; False: no compiled ones)
fused: bool | None = None   # fused AdamW; None: on for CUDA only
warmup = 5                  # untimed steps first
steps = 20                  # timed steps; the median is reported
compare = False             # time our step against a plain nanoGPT-style step (see above)
blocks = False              # time the modern block against the GPT-2 block (see above)
repeats = 5                 # compare: rounds of `steps` steps per variant, taken in turn
seed = 0                    # init and the random tokens


def build(param, groups, use_fused, use_compile, dev, block="gpt2"):
    """(step function, model) for one variant: param = parameterization, groups = 'roles'
    (the parameterization's groups) or 'one' (a single AdamW group, nanoGPT-style), block a
    name of model.BLOCKS."""
    torch.manual_seed(seed)
    try:
        cfg = GPTConfig(**BLOCKS[block], block_size=block_size, vocab_size=vocab_size, n_layer=n_layer,
                        n_head=n_head, n_embd=n_embd, parameterization=param, base_n_layer=base_n_layer,
                        base_n_embd=base_n_embd)
    except ValueError as e:
        raise UserError(str(e)) from None
    model = GPT(cfg).to(dev)
    extra = {"fused": True} if use_fused else {}
    if groups == "one":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, **extra)
    else:
        opt = torch.optim.AdamW(model.param_groups(1e-3, 0.1, 1e-8), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, **extra)
    fwd = torch.compile(model) if use_compile else model
    return fwd, opt, model


def timed(fwd, opt, x, y, ctx, n, sync):
    times = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter()
        with ctx:
            _, loss = fwd(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main():
    configure(globals(), sys.argv[1:])
    for k in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "vocab_size", "steps", "repeats"):
        if globals()[k] <= 0:
            raise UserError(f"{k}={globals()[k]} must be positive")
    if warmup < 0:
        raise UserError(f"warmup={warmup} must be >= 0")
    if not 0 <= seed < 2 ** 32:  # as train.py's
        raise UserError(f"seed={seed} must be in [0, 2**32)")
    dev, device_type, dt, ctx = resolve_device(device, dtype)
    is_cuda = device_type == "cuda"
    use_compile = is_cuda if compile is None else compile
    use_fused = is_cuda if fused is None else fused
    # before anything is allocated: a shape that cannot fit is one line, not an allocator's
    # traceback (or the kernel's OOM killer); --compare keeps every variant's model at once
    if compare and blocks:
        raise UserError("compare=True and blocks=True are two benchmarks; give one")
    models = (5 if compile is not False else 3) if compare else 2 if blocks else 1
    need, what = memory_estimate(n_layer, n_embd, n_head, vocab_size, block_size, batch_size)
    need += (models - 1) * memory_estimate(n_layer, n_embd, n_head, vocab_size, block_size, 0)[0]
    have = available_memory(device_type, dev)
    if have and need > have:
        if models > 1:
            what += f" for one model, {need / 2 ** 30:,.1f} GiB for the {models} that --compare keeps"
        raise UserError(f"this shape needs {what}, more than the {have / 2 ** 30:,.1f} GiB {dev} has; lower n_layer, "
                          "n_embd, batch_size, block_size or vocab_size")
    try:
        return _bench(dev, device_type, dt, ctx, is_cuda, use_compile, use_fused)
    except (MemoryError, RuntimeError) as e:  # an allocation the estimate let through
        if not out_of_memory(e):
            raise
        raise UserError(f"out of memory on {dev} at {n_layer} layers x {n_embd} wide, batch {batch_size} x "
                          f"{block_size}, vocab {vocab_size}; lower these sizes") from None


def _bench(dev, device_type, dt, ctx, is_cuda, use_compile, use_fused):
    """Build and time the step(s), once main() has checked the settings and the memory."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab_size, (batch_size, block_size), generator=gen).to(dev)
    y = torch.randint(0, vocab_size, (batch_size, block_size), generator=gen).to(dev)
    sync = torch.cuda.synchronize if is_cuda else (lambda: None)
    name = torch.cuda.get_device_name(dev) if is_cuda else f"cpu x{torch.get_num_threads()} threads"
    shape = f"{n_layer} layers x {n_embd} wide, batch {batch_size} x {block_size}, {dt}, {name}"
    tokens = batch_size * block_size

    if blocks:
        return _blocks(dev, x, y, ctx, sync, shape, tokens, use_fused, use_compile)
    if not compare:
        fwd, opt, model = build(parameterization, "roles", use_fused, use_compile, dev)
        timed(fwd, opt, x, y, ctx, warmup, sync)
        step = statistics.median(timed(fwd, opt, x, y, ctx, steps, sync))
        line = f"{shape}: {1000 * step:.1f} ms/step, {tokens / step:,.0f} tokens/s"
        peak = peak_flops(name) if is_cuda else None
        if peak:
            line += f", MFU {100 * model.flops_per_token() * tokens / step / peak:.1f}%"
        print(line)
        return step

    variants = {"plain (sp, one AdamW group)": ("sp", "one", False, False),
                f"ours ({parameterization}, per-role groups)": (parameterization, "roles", False, False),
                "ours + fused AdamW": (parameterization, "roles", True, False),
                "ours + torch.compile": (parameterization, "roles", False, True),
                "ours + fused + compile": (parameterization, "roles", True, True)}
    if compile is False:  # --compile=False: leave the compiled variants out (they take a while to build)
        variants = {k: v for k, v in variants.items() if not v[3]}
    built = {k: build(*v, dev=dev) for k, v in variants.items()}
    for fwd, opt, _ in built.values():
        timed(fwd, opt, x, y, ctx, warmup, sync)  # compilation happens here, untimed
    times = {k: [] for k in built}
    for _ in range(repeats):  # take turns, so load on a shared machine hits every variant alike
        for k, (fwd, opt, _) in built.items():
            times[k] += timed(fwd, opt, x, y, ctx, steps, sync)
    base = statistics.median(times[next(iter(times))])
    print(f"{shape}; median of {repeats} x {steps} steps each, taken in turns")
    for k, t in times.items():
        m = statistics.median(t)
        print(f"  {k:<42} {1000 * m:8.1f} ms/step {tokens / m:>10,.0f} tokens/s  {base / m:5.2f}x")
    return base


def nonembedding(model):
    """Parameters outside the token/position embeddings and the unembedding."""
    skip = {id(model.transformer.wte.weight), id(model.lm_head.weight)}
    skip |= {id(model.transformer.wpe.weight)} if hasattr(model.transformer, "wpe") else set()
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def _blocks(dev, x, y, ctx, sync, shape, tokens, use_fused, use_compile):
    """The GPT-2 block against the modern block, same step otherwise, in turns."""
    built = {name: build(parameterization, "roles", use_fused, use_compile, dev, block=name) for name in BLOCKS}
    for fwd, opt, _ in built.values():
        timed(fwd, opt, x, y, ctx, warmup, sync)
    times = {k: [] for k in built}
    for _ in range(repeats):
        for k, (fwd, opt, _) in built.items():
            times[k] += timed(fwd, opt, x, y, ctx, steps, sync)
    base = statistics.median(times["gpt2"])
    print(f"{shape}, {parameterization}; median of {repeats} x {steps} steps each, taken in turns")
    for k, t in times.items():
        m = statistics.median(t)
        print(f"  {k + ' block':<14} {nonembedding(built[k][2]):>11,} non-embedding params {1000 * m:8.1f} ms/step "
              f"{tokens / m:>10,.0f} tokens/s  {base / m:5.2f}x")
    return base


if __name__ == "__main__":
    run_cli(lambda: main() and None)

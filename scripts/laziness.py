"""
Laziness: the relative distance from linearization of a block's branch output
(docs/parameterization.md section 5; Dey et al., arXiv 2505.01618, "complete feature learning").

A branch is lazy when one optimizer step changes its output almost exactly as its first-order
Taylor expansion in its own parameters predicts. For a branch output h(theta) on a fixed batch
and one step theta0 -> theta1:

    h_lin      = h(theta0) + <theta1 - theta0, grad_theta h(theta0)>
    rel        = |h(theta1) - h_lin| / |h_lin|                       (the reference's definition)
    rel_change = |h(theta1) - h_lin| / |h_lin - h(theta0)|           (nonlinear / linear change)

The inner product runs over every entry of every parameter of the branch: it is a
Jacobian-vector product, computed exactly with torch.func.jvp (forward-mode AD), not a
finite difference and not one row of the weight. Norms are Frobenius norms over the batch.

What "one optimizer step" means here (the choice the reference leaves open):
- The step is a real training step: AdamW with the parameterization's own per-group LR, WD
  and eps (model.configure_optimizers for the GPT, the same table for the toy), on the loss of
  the WHOLE model, from the initialization. A step taken on one block alone would need a loss
  defined on that block's output, which is not what training does.
- Then each branch is measured as a function of its own parameters only: theta = the
  branch's norm and Linears (attention: ln_1, c_attn or c_q/c_k/c_v, q/k norms, c_proj; MLP: ln_2,
  c_fc, c_gate, c_proj),
  with the branch INPUT held at its value before the step (recorded with a forward pre-hook on
  the LayerNorm). So the number is the branch's own nonlinearity in its parameters, not the
  effect of the other blocks having moved.
- AdamW's first step is lr * sign(grad) per entry (bias-corrected m / sqrt(v), eps tiny), so
  |theta1 - theta0| is set by the parameterization's LR and not by gradient magnitudes. With
  alpha < 1 the hidden LR is eta * m_L^(alpha - 1): the step shrinks with depth and the branch
  becomes linear in its parameters (lazy); CompleteP keeps the step, hence rel, depth-flat.
- Everything runs in float64: the second-order term is small and float32 rounding would
  swamp it at depth.
Scaling (first step, branch output O(1)): the nonlinear part is O(step^2) and the linear part
O(step), so rel_change ~ step ~ L^(alpha - 1) (alpha = 0.5: L^(-1/2), the reference's expectation)
while rel ~ step^2 ~ L^(2 alpha - 2) (alpha = 0.5: L^(-1)) as long as h(theta0) dominates h_lin.
Both are flat for alpha = 1. Both are printed; the plot shows both.

Two models: one GPT (model.py, synthetic tokens) and the paper's toy residual MLP,
    h_0 = W_in x,  h_{l+1} = h_l + m_L^(-alpha) W2_l phi(W1_l norm(h_l)),  y = w_out . h_L / m_N
(norm: parameter-free RMS normalization, mirroring the pre-LN transformer; phi = GELU).
"mup" means no depth scaling at all (alpha = 0 in the residual, hidden LR eta / m_N).

    python scripts/laziness.py                  # both models, depths 2..64, ~1-2 min on a CPU
    python scripts/laziness.py --small          # seconds
"""
import argparse
import csv
import io
import math
import os
import sys
import textwrap
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from util import signed  # noqa: E402
from runs import UserError, available_memory, memory_estimate, out_of_memory, run_cli, write_atomic  # noqa: E402
from model import BLOCKS, GPT, GPTConfig  # noqa: E402

PARAMS = {"depth_mup": 0.5, "completep": 1.0, "mup": None}  # name -> depth exponent alpha
GPT_SEQ, GPT_BATCH = 32, 4  # the GPT's batch: sequences of tokens
CSV_FIELDS = ("model", "param", "depth", "seed", "block", "branch", "rel", "rel_change")


def gap(module, params0, params1, x):
    """(rel, rel_change) of h(theta) = functional_call(module, theta, x) from theta0 to theta1.
    params0/params1: {name: tensor} covering the parameters that move; x: the fixed input."""
    delta = {k: params1[k] - params0[k] for k in params0}

    def h(p):
        return functional_call(module, p, (x,))
    # forward-mode AD has no rule for the fused CPU attention kernel: use the math one
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        h0, lin = jvp(h, (params0,), (delta,))  # lin = <theta1 - theta0, grad h(theta0)>
        h1 = h(params1)
    h_lin = h0 + lin
    err = (h1 - h_lin).norm()
    return (err / h_lin.norm()).item(), (err / lin.norm()).item()


# ---------------------------------------------------------------------------------------
# the GPT

class Branch(nn.Module):
    """f(norm(x)) of one block: the branch output before the residual multiplier. `rope`: the
    attention branch's (cos, sin) in the modern block (fixed tables, not parameters)."""

    def __init__(self, ln, f, rope=None):
        super().__init__()
        self.ln, self.f, self.rope = ln, f, rope

    def forward(self, x):
        return self.f(self.ln(x), self.rope) if self.rope is not None else self.f(self.ln(x))


def gpt_laziness(param, depth, seed, width=64, head_size=16, base_depth=2, seq_len=32, batch=4,
                 vocab=64, lr=1e-2, wd=0.1, tokens=None, block="gpt2"):
    """rel and rel_change for both branches of every block after one AdamW step of the GPT.
    Returns a list of dicts (block, branch, rel, rel_change)."""
    torch.manual_seed(seed)
    cfg = GPTConfig(**BLOCKS[block], block_size=seq_len, vocab_size=vocab, n_layer=depth,
                    n_head=width // head_size, n_embd=width, parameterization=param, base_n_embd=width,
                    base_n_layer=base_depth)
    model = GPT(cfg).double()
    rope = (model.rope_cos[:seq_len], model.rope_sin[:seq_len]) if cfg.pos == "rope" else None
    gen = torch.Generator().manual_seed(1000 + seed)
    if tokens is None:  # synthetic tokens: a fixed random batch
        data = torch.randint(vocab, (batch, seq_len + 1), generator=gen)
    else:
        starts = torch.randint(len(tokens) - seq_len - 1, (batch,), generator=gen)
        data = torch.stack([torch.as_tensor(np.asarray(tokens[s:s + seq_len + 1], dtype=np.int64))
                            for s in starts.tolist()])
    x, y = data[:, :-1], data[:, 1:]

    # record each branch's input at theta0 (the LayerNorm's input)
    inputs, handles = {}, []
    branches = {}
    for i, block in enumerate(model.transformer.h):
        for name, ln, f in (("attn", block.ln_1, block.attn), ("mlp", block.ln_2, block.mlp)):
            branches[(i, name)] = Branch(ln, f, rope if name == "attn" else None)
            handles.append(ln.register_forward_pre_hook(
                lambda mod, args, key=(i, name): inputs.__setitem__(key, args[0].detach())))
    opt = model.configure_optimizers(wd, lr, (0.9, 0.95), 1e-12)
    with sdpa_kernel(SDPBackend.MATH):
        _, loss = model(x, y)
    for hd in handles:
        hd.remove()
    snap0 = {k: {n: t.detach().clone() for n, t in b.named_parameters()} for k, b in branches.items()}
    opt.zero_grad()
    loss.backward()
    opt.step()  # one step of the whole model, each group at its own LR (the parameterization's)
    out = []
    for (i, name), b in branches.items():
        p1 = {n: t.detach().clone() for n, t in b.named_parameters()}
        rel, rel_change = gap(b, snap0[(i, name)], p1, inputs[(i, name)])
        out.append(dict(block=i, branch=name, rel=rel, rel_change=rel_change))
    return out


# ---------------------------------------------------------------------------------------
# the toy residual MLP

class ToyResMLP(nn.Module):
    """h_0 = W_in x; h_{l+1} = h_l + m_L^(-alpha) W2 gelu(W1 rmsnorm(h_l)); y = w_out.h / m_N."""

    def __init__(self, d_in, width, depth, alpha, base_width, base_depth):
        super().__init__()
        self.m_N, m_L = width / base_width, depth / base_depth
        self.residual_mult = m_L ** -(alpha or 0.0)
        self.w_in = nn.Parameter(torch.randn(width, d_in) / math.sqrt(d_in))
        self.blocks = nn.ModuleList()
        for _ in range(depth):  # hidden init std 1/sqrt(fan_in): muP and the depth family alike
            b = nn.Module()
            b.w1 = nn.Parameter(torch.randn(width, width) / math.sqrt(width))
            b.w2 = nn.Parameter(torch.randn(width, width) / math.sqrt(width))
            self.blocks.append(b)
        self.w_out = nn.Parameter(torch.randn(width) / math.sqrt(width))

    @staticmethod
    def branch(w1, w2, h):
        """The branch output before the multiplier: W2 gelu(W1 rmsnorm(h)); h (B, N)."""
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-12)
        return F.gelu(h @ w1.T) @ w2.T

    def forward(self, x, record=None):
        h = x @ self.w_in.T  # (B, N)
        for i, b in enumerate(self.blocks):
            if record is not None:
                record[i] = h.detach()
            h = h + self.residual_mult * self.branch(b.w1, b.w2, h)
        return h @ self.w_out / self.m_N  # (B,)


class ToyBranch(nn.Module):
    """One block's branch as a module of its own (w1, w2), for functional_call."""

    def __init__(self, w1, w2):
        super().__init__()
        self.w1, self.w2 = w1, w2

    def forward(self, h):
        return ToyResMLP.branch(self.w1, self.w2, h)


def toy_laziness(param, depth, seed, width=256, d_in=32, batch=64, lr=2e-2, base_width=None,
                 base_depth=2):
    """rel and rel_change for every block of the toy after one Adam step (MSE on random
    targets). Hidden LR eta / m_N * m_L^(alpha - 1) (mup: eta / m_N), input/output LR eta."""
    alpha = PARAMS[param]
    base_width = base_width or width
    torch.manual_seed(seed)
    model = ToyResMLP(d_in, width, depth, alpha, base_width, base_depth).double()
    gen = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(batch, d_in, generator=gen, dtype=torch.float64)
    target = torch.randn(batch, generator=gen, dtype=torch.float64)
    m_N, m_L = width / base_width, depth / base_depth
    hidden_lr = lr / m_N * (m_L ** (alpha - 1.0) if alpha is not None else 1.0)
    hidden = [p for b in model.blocks for p in (b.w1, b.w2)]
    opt = torch.optim.Adam([dict(params=[model.w_in, model.w_out], lr=lr),
                            dict(params=hidden, lr=hidden_lr)], betas=(0.9, 0.95), eps=1e-12)
    record = {}
    loss = F.mse_loss(model(x, record), target)
    snap0 = [(b.w1.detach().clone(), b.w2.detach().clone()) for b in model.blocks]
    opt.zero_grad()
    loss.backward()
    opt.step()
    out = []
    for i, b in enumerate(model.blocks):
        w1, w2 = snap0[i]
        rel, rel_change = gap(ToyBranch(w1, w2), dict(w1=w1, w2=w2),
                              dict(w1=b.w1.detach().clone(), w2=b.w2.detach().clone()), record[i])
        out.append(dict(block=i, branch="mlp", rel=rel, rel_change=rel_change))
    return out


# ---------------------------------------------------------------------------------------
# sweep, summary, plot

def run(models, params, depths, seeds, gpt_kw=None, toy_kw=None, log=print):
    rows = []
    for model_name in models:
        for param in params:
            for depth in depths:
                for seed in seeds:
                    fn = gpt_laziness if model_name == "gpt" else toy_laziness
                    kw = (gpt_kw if model_name == "gpt" else toy_kw) or {}
                    rows += [dict(model=model_name, param=param, depth=depth, seed=seed, **r)
                             for r in fn(param, depth, seed, **kw)]
            log(f"{model_name:>4} {param:>10}: done depths {depths}")
    return rows


def summary(rows, model_name, param, key="rel"):
    """{depth: geometric mean of key over blocks, branches and seeds}."""
    by = {}
    for r in rows:
        if r["model"] == model_name and r["param"] == param:
            by.setdefault(int(r["depth"]), []).append(float(r[key]))
    return {d: float(np.exp(np.mean(np.log(v)))) for d, v in sorted(by.items())}


def slope(curve):
    d = sorted(curve)
    return float(np.polyfit(np.log(d), np.log([curve[k] for k in d]), 1)[0])


def table(rows):
    models = list(dict.fromkeys(r["model"] for r in rows))
    params = list(dict.fromkeys(r["param"] for r in rows))
    depths = sorted({int(r["depth"]) for r in rows})
    lines = ["| model | param | quantity | " + " | ".join(f"L={d}" for d in depths) + " | slope |",
             "|" + "---|" * (len(depths) + 4)]
    for m in models:
        for p in params:
            for key in ("rel", "rel_change"):
                c = summary(rows, m, p, key)
                lines.append(f"| {m} | {p} | {key} | " + " | ".join(f"{c[d]:.3g}" for d in depths)
                             + f" | {signed(slope(c))} |")
    return "\n".join(lines)


def plot(rows, path, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(dict.fromkeys(r["model"] for r in rows))
    params = list(dict.fromkeys(r["param"] for r in rows))
    fig, axes = plt.subplots(2, len(models), figsize=(4.2 * len(models), 6.4), squeeze=False)
    for j, m in enumerate(models):
        for i, key in enumerate(("rel", "rel_change")):
            ax = axes[i][j]
            for p in params:
                c = summary(rows, m, p, key)
                d = sorted(c)
                ax.plot(d, [c[k] for k in d], marker="o", label=f"{p} (slope {signed(slope(c))})")
            c = summary(rows, m, params[0], key)
            d = sorted(c)  # reference L^(-1/2) through the first point of the first param
            ax.plot(d, [c[d[0]] * (k / d[0]) ** -0.5 for k in d], "k:", lw=1, label="L^(-1/2)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("depth L")
            ax.set_ylabel("|h1 - h_lin| / |h_lin|" if key == "rel" else
                          "|h1 - h_lin| / |h_lin - h0|", fontsize=8)
            ax.set_title(f"{'GPT block branches' if m == 'gpt' else 'toy residual MLP'}", fontsize=9)
            ax.legend(fontsize=7)
    if title:  # the run's settings, wrapped to the figure width
        fig.suptitle("\n".join(textwrap.wrap(title, 25 * len(axes[0]) + 40)), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="gpt,toy", help="comma list of gpt, toy")
    ap.add_argument("--params", default="depth_mup,completep,mup")
    ap.add_argument("--depths", default="2,4,8,16,32,64", help="the first is the base depth")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="depths 2..16, 2 seeds (seconds)")
    ap.add_argument("--gpt_width", type=int, default=64)
    ap.add_argument("--block", choices=tuple(BLOCKS), default="gpt2",
                    help="the GPT's block: gpt2, or modern (RMSNorm, QK-norm, RoPE, SwiGLU, no biases)")
    ap.add_argument("--gpt_lr", type=float, default=1e-2)
    ap.add_argument("--toy_width", type=int, default=256)
    ap.add_argument("--toy_lr", type=float, default=2e-2)
    ap.add_argument("--data", default=None, help="token file for the GPT batch (default: synthetic)")
    ap.add_argument("--out_dir", default=os.path.join(REPO, "out", "laziness"),
                    help="where the CSV, figure and verdict go (default: the scratch folder out/laziness; the committed results are written only when named, --out_dir experiments/laziness)")
    a = ap.parse_args(argv)
    if a.small:
        a.depths, a.seeds = "2,4,8,16", 2
    try:
        models = [m for m in a.models.split(",") if m]
        params = [p for p in a.params.split(",") if p]
        depths = [int(d) for d in a.depths.split(",") if d]
    except ValueError:
        raise UserError(f"--depths={a.depths!r} must be a comma-separated list of integers")
    if bad := [m for m in models if m not in ("gpt", "toy")]:
        raise UserError(f"unknown model {bad[0]!r} in --models; use gpt, toy")
    if bad := [p for p in params if p not in PARAMS]:
        raise UserError(f"unknown parameterization {bad[0]!r} in --params; use "
                         f"{', '.join(PARAMS)}")
    if len(depths) < 2 or sorted(depths) != depths or depths[0] <= 0:
        raise UserError(f"--depths={a.depths} needs two or more increasing positive values")
    for k in ("seeds", "gpt_width", "toy_width"):
        if getattr(a, k) <= 0:
            raise UserError(f"--{k}={getattr(a, k)} must be positive")
    for k in ("gpt_lr", "toy_lr"):  # NaN passes `<= 0`, and inf steps to nan
        if not (math.isfinite(getattr(a, k)) and getattr(a, k) > 0):
            raise UserError(f"--{k}={getattr(a, k)} must be a positive finite number")
    if a.gpt_width % 16:
        raise UserError(f"--gpt_width={a.gpt_width} must be a multiple of the head size 16")
    tokens = None
    if a.data:
        from dataloader import read_tokens
        try:
            tokens = read_tokens(a.data)
        except Exception as e:
            raise UserError(f"{e}")
        if len(tokens) < GPT_SEQ + 2:
            raise UserError(f"{a.data} has {len(tokens)} tokens, fewer than one GPT window of {GPT_SEQ} tokens and "
                            "its next token (+2); give a longer token file, or no --data (synthetic tokens)")
    vocab = int(tokens.max()) + 1 if tokens is not None else 64
    # before anything is allocated: float64 doubles the estimate's fp32 bytes; the toy keeps its
    # parameters, gradients, two Adam moments and the snapshots and JVP of the measurement
    L = depths[-1]
    need = {"gpt": 2 * memory_estimate(L, a.gpt_width, a.gpt_width // 16, vocab, GPT_SEQ, GPT_BATCH, 8)[0],
            "toy": 8 * 8 * (2 * L * a.toy_width ** 2 + 33 * a.toy_width)}
    have = available_memory("cpu")
    for m in models:
        if have and need[m] > have:
            width = a.gpt_width if m == "gpt" else a.toy_width
            raise UserError(f"the {m} model at depth {L} and width {width} needs about {need[m] / 2 ** 30:,.1f} GiB, "
                            f"more than the {have / 2 ** 30:,.1f} GiB of this machine; lower --{m}_width or --depths")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    gpt_kw = dict(width=a.gpt_width, base_depth=depths[0], lr=a.gpt_lr, tokens=tokens, vocab=vocab,
                  seq_len=GPT_SEQ, batch=GPT_BATCH, block=a.block)
    toy_kw = dict(width=a.toy_width, base_depth=depths[0], lr=a.toy_lr)
    settings = (f"models={','.join(models)} params={','.join(params)} depths={a.depths} "
                f"seeds={a.seeds} gpt: {a.block} block, width {a.gpt_width} head 16 batch {GPT_BATCH}x{GPT_SEQ} "
                f"{'tokens ' + a.data if a.data else 'synthetic tokens'} AdamW lr {a.gpt_lr} wd 0.1; "
                f"toy: width {a.toy_width} d_in 32 batch 64 Adam lr {a.toy_lr}; float64, one step "
                f"from init; torch {torch.__version__}")
    print(settings, flush=True)
    t0 = time.time()
    try:
        rows = run(models, params, depths, list(range(a.seeds)), gpt_kw, toy_kw,
                   log=lambda m: print(m, flush=True))
    except (MemoryError, RuntimeError) as e:  # an allocation the estimate let through
        if not out_of_memory(e):
            raise
        raise UserError(f"out of memory at depth {L} (gpt width {a.gpt_width}, toy width {a.toy_width}); lower "
                        "--depths or the widths") from None
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "rel": f"{r['rel']:.6g}", "rel_change": f"{r['rel_change']:.6g}"})
    tab = table(rows)
    try:
        os.makedirs(a.out_dir, exist_ok=True)
        write_atomic(os.path.join(a.out_dir, "laziness.csv"), buf.getvalue())
        plot(rows, os.path.join(a.out_dir, "laziness.png"), title=settings)
        write_atomic(os.path.join(a.out_dir, "laziness_table.md"), f"Settings: `{settings}`\n\nGeometric mean over "
                     f"blocks, branches and seeds; slope of log(value) against log(L).\n\n{tab}\n")
    except OSError as e:
        raise UserError(f"cannot write to --out_dir {a.out_dir} ({e.strerror or e}); choose another") from None
    print(tab)
    print(f"wrote {a.out_dir}/laziness.csv, laziness.png, laziness_table.md ({time.time() - t0:.0f}s)")
    return rows


if __name__ == "__main__":
    run_cli(lambda: main() and None)

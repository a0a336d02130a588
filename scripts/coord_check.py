"""
Coordinate check (docs/parameterization.md section 5; Dey et al., arXiv 2505.01618, Figure 7).

Train a few steps at several depths (or widths) for each parameterization and record, per
step and per block, how big the activations are. A parameterization that transfers across
depth keeps them flat in L; muP (no depth scaling) lets the residual stream grow like L.

    python scripts/coord_check.py --sweep depth              # the authors' settings (GPU-sized)
    python scripts/coord_check.py --sweep depth --small      # a CPU in a minute or two
    python scripts/coord_check.py --sweep width --small

What is recorded, at step t = 1..steps (the forward with the parameters after t-1 updates, so
step 1 is the initialization, as in the paper's plots), on a fixed probe batch:
    resid_abs / resid_rms   mean |h| and RMS of the residual stream after block l
    resid_delta_abs         mean |h_t - h_1|: its change since initialization (same probe)
    attn_abs / mlp_abs      mean |f(LN(x))| of the two branches, BEFORE the residual multiplier
    attn_logit_abs          mean |q.k * scale| over causal (query, key) pairs, on a subsample
                            of positions, from the q and k attention uses (after QK-norm
                            and RoPE in the modern block: CausalSelfAttention.heads)
    logits_abs (layer -1)   mean |output logits| (after the logit multiplier)
    loss (layer -1)         the training loss of step t
The probe batch is separate from the training batches so that "change since initialization"
compares the same inputs; measuring it costs one extra no-grad forward of probe_batch sequences.

Hooks attach by role to the uncompiled modules (block, block.attn, block.mlp),
found through torch.compile's `_orig_mod` and DDP's `module`, so they see the same tensors
whichever wrapper runs the forward.

Verdict: slope of log(seed-mean of mean |h| after the last block) against log(L) (or log N),
per step. Flat: |slope| <= 0.15 at every step after the first. Grows: slope >= 0.5 at the
last step. Expected (docs/parameterization.md section 5): depth sweep, mup and sp grow, depth_mup and completep are flat;
width sweep, sp grows, the others are flat.
"""
import argparse
import csv
import io
import math
import os
import sys
import textwrap
import time
from functools import partial

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from util import signed  # noqa: E402
from runs import UserError, run_cli  # noqa: E402
from model import BLOCKS, GPT, GPTConfig  # noqa: E402
from runs import append_line, available_memory, memory_estimate, out_of_memory, regular_file, write_atomic  # noqa: E402

CSV_FIELDS = ("param", "sweep", "size", "seed", "step", "layer", "quantity", "value")
LAYER_QUANTITIES = ("resid_abs", "resid_rms", "resid_delta_abs", "attn_abs", "mlp_abs",
                    "attn_logit_abs")
FLAT_TOL, GROW_MIN = 0.15, 0.5  # docs/parameterization.md section 5 thresholds on the log-log slope

# The authors' settings (docs/parameterization.md section 5), and a CPU-sized version of each sweep (--small).
DEFAULTS = {
    "depth": dict(params="mup,depth_mup,completep", sizes="2,4,8,16,32,64", width=256, depth=2,
                  head_size=64, batch=8, seq_len=1024, steps=10, seeds=3, lr=1e-3),
    "width": dict(params="sp,mup,depth_mup,completep", sizes="256,512,1024,2048,4096", width=256,
                  depth=2, head_size=64, batch=8, seq_len=1024, steps=10, seeds=3, lr=1e-2),
}
SMALL = {
    "depth": dict(sizes="2,4,8,16,32", width=64, head_size=16, batch=4, seq_len=64, steps=6,
                  seeds=2),
    "width": dict(sizes="64,128,256,512", width=64, head_size=16, batch=4, seq_len=64, steps=6,
                  seeds=2),
}
EXPECT = {  # (sweep, param) -> 'flat' or 'grows'
    ("depth", "sp"): "grows", ("depth", "mup"): "grows",
    ("depth", "depth_mup"): "flat", ("depth", "completep"): "flat",
    ("width", "sp"): "grows", ("width", "mup"): "flat",
    ("width", "depth_mup"): "flat", ("width", "completep"): "flat",
}


# ---------------------------------------------------------------------------------------
# hooks

def unwrap(model):
    """The GPT inside torch.compile (`_orig_mod`) and DDP (`module`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), torch.nn.Module):
            model = model.module
        else:
            return model


class Recorder:
    """Forward hooks on every block of a GPT; while `enabled`, each forward fills `stats`
    with {(layer, quantity): float}. `reference` holds the residual stream of the first
    recorded forward (the initialization), for resid_delta_abs."""

    def __init__(self, model, attn_positions=64):
        gpt = unwrap(model)
        self.attn_positions = attn_positions
        self.enabled = False
        self.stats = {}
        self.reference = {}  # layer -> residual (B, T, C) at the first recorded forward
        self.handles = []
        for i, block in enumerate(gpt.transformer.h):
            self.handles += [
                block.register_forward_hook(partial(self._resid, i)),
                block.attn.register_forward_hook(partial(self._branch, i, "attn_abs")),
                block.mlp.register_forward_hook(partial(self._branch, i, "mlp_abs")),
                block.attn.register_forward_pre_hook(partial(self._attn_logits, i)),
            ]

    def remove(self):
        for h in self.handles:
            h.remove()

    @torch.no_grad()
    def _resid(self, i, module, inputs, out):
        if not self.enabled:
            return
        h = out.detach().float()  # (B, T, C)
        self.stats[(i, "resid_abs")] = h.abs().mean().item()
        self.stats[(i, "resid_rms")] = h.pow(2).mean().sqrt().item()
        if i not in self.reference:
            self.reference[i] = h.clone()
        self.stats[(i, "resid_delta_abs")] = (h - self.reference[i]).abs().mean().item()

    @torch.no_grad()
    def _branch(self, i, name, module, inputs, out):
        if self.enabled:  # the branch output f(LN(x)), before Block applies residual_mult
            self.stats[(i, name)] = out.detach().float().abs().mean().item()

    @torch.no_grad()
    def _attn_logits(self, i, attn, inputs):
        if not self.enabled:
            return
        q, k, _ = attn.heads(*inputs)  # what attention uses: projected, QK-normed, rotated
        T = q.shape[2]
        # a subsample of positions keeps this O(P^2) rather than O(T^2)
        pos = torch.linspace(0, T - 1, min(T, self.attn_positions)).round().long().unique()
        q, k = q[:, :, pos].float(), k[:, :, pos].float()            # (B, nh, P, hs)
        logits = (q @ k.transpose(-2, -1)) * attn.scale          # (B, nh, P, P)
        causal = pos[None, :] <= pos[:, None]                    # key <= query
        self.stats[(i, "attn_logit_abs")] = logits.abs()[..., causal].mean().item()


# ---------------------------------------------------------------------------------------
# one run and a sweep

def model_config(param, sweep, size, width, depth, head_size, base, vocab_size, seq_len,
                 input_mult=1.0, block="gpt2"):
    """GPTConfig of one point of the sweep: the swept dimension is `size`, the base shape is
    the first point of the sweep (docs/parameterization.md section 1: multipliers are derived from the base shape)."""
    n_embd, n_layer = (width, size) if sweep == "depth" else (size, depth)
    base_n_embd, base_n_layer = (width, base) if sweep == "depth" else (base, depth)
    if n_embd % head_size:
        raise ValueError(f"width {n_embd} is not a multiple of head_size={head_size}")
    return GPTConfig(**{**dict(bias=True), **BLOCKS[block]}, block_size=seq_len, vocab_size=vocab_size,
                     n_layer=n_layer, n_head=n_embd // head_size, n_embd=n_embd, dropout=0.0,
                     parameterization=param, base_n_embd=base_n_embd, base_n_layer=base_n_layer,
                     input_mult=input_mult if param != "sp" else 1.0)  # SP has no input_mult


def sample_batch(tokens, gen, batch, seq_len):
    """Random windows: inputs (B, T) and next-token targets (B, T)."""
    starts = torch.randint(len(tokens) - seq_len - 1, (batch,), generator=gen).numpy()
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    buf = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))
    return buf[:, :-1], buf[:, 1:]


def run_one(cfg, tokens, seed, *, steps, lr, wd=0.1, betas=(0.9, 0.95), eps=1e-12, clip=1.0,
            batch=8, probe_batch=2, attn_positions=64, wrap=None):
    """Train `steps` AdamW steps from a seeded init; return {(step, layer, quantity): value}.
    `wrap` (optional) wraps the built model, e.g. torch.compile, to show the hooks survive it."""
    torch.manual_seed(seed)
    model = GPT(cfg)
    opt = model.configure_optimizers(wd, lr, betas, eps)
    runner = wrap(model) if wrap is not None else model
    rec = Recorder(runner, attn_positions)
    # the same data for every size and parameterization at a given seed: paired comparisons
    gen = torch.Generator().manual_seed(10_000 + seed)
    probe_x, _ = sample_batch(tokens, gen, probe_batch, cfg.block_size)
    out = {}
    for step in range(1, steps + 1):
        model.eval()
        rec.enabled, rec.stats = True, {}
        with torch.no_grad():
            logits, _ = runner(probe_x)
        rec.enabled = False
        out.update({(step, layer, q): v for (layer, q), v in rec.stats.items()})
        out[(step, -1, "logits_abs")] = logits.float().abs().mean().item()

        model.train()
        x, y = sample_batch(tokens, gen, batch, cfg.block_size)
        _, loss = runner(x, y)
        out[(step, -1, "loss")] = loss.item()
        if not math.isfinite(loss.item()):
            break  # a diverged run still reports what it recorded
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    rec.remove()
    return out


def sweep(sweep_kind, params, sizes, tokens, vocab_size, *, seeds, steps, lr, width=256, depth=2,
          head_size=64, batch=8, seq_len=1024, wd=0.1, betas=(0.9, 0.95), eps=1e-12, clip=1.0,
          probe_batch=2, attn_positions=64, done=(), on_run=None, log=print, input_mult=1.0, block="gpt2"):
    """Every (param, size, seed) point; returns the long-format rows (dicts of CSV_FIELDS).
    `done` holds (param, size, seed) keys to skip; `on_run(rows)` is called after each run."""
    rows = []
    # seeds outermost: a sweep cut short still has every (param, size) for the first seeds
    for seed in seeds:
        for param in params:
            for size in sizes:
                if (param, size, seed) in done:
                    continue
                cfg = model_config(param, sweep_kind, size, width, depth, head_size, sizes[0],
                                   vocab_size, seq_len, input_mult, block)
                t0 = time.time()
                out = run_one(cfg, tokens, seed, steps=steps, lr=lr, wd=wd, betas=betas, eps=eps, clip=clip,
                              batch=batch, probe_batch=probe_batch, attn_positions=attn_positions)
                new = [dict(param=param, sweep=sweep_kind, size=size, seed=seed, step=s, layer=l,
                            quantity=q, value=v) for (s, l, q), v in sorted(out.items())]
                rows += new
                if on_run:
                    on_run(new)
                last = out.get((steps, cfg.n_layer - 1, "resid_abs"), float("nan"))
                log(f"{param:>10} {sweep_kind}={size:<5} seed {seed}: mean|h| last block "
                    f"{last:.4g} at step {steps}, loss {out[(steps, -1, 'loss')]:.3f} "
                    f"({time.time() - t0:.1f}s)" if (steps, -1, "loss") in out else
                    f"{param} {sweep_kind}={size} seed {seed}: stopped early")
    return rows


# ---------------------------------------------------------------------------------------
# analysis

def seed_mean(rows, param, quantity, layer="last", sizes=None):
    """{step: {size: mean over seeds}} of one quantity; layer 'last' = the last block,
    'mean' = the mean over blocks, or an int."""
    acc = {}
    last = {}
    for r in rows:
        if r["param"] == param and r["quantity"] == quantity:
            last[r["size"]] = max(last.get(r["size"], -1), int(r["layer"]))
    for r in rows:
        if r["param"] != param or r["quantity"] != quantity:
            continue
        size, layer_r = r["size"], int(r["layer"])
        if layer == "last" and layer_r != last[size]:
            continue
        if isinstance(layer, int) and layer_r != layer:
            continue
        acc.setdefault(int(r["step"]), {}).setdefault(size, {}).setdefault(int(r["seed"]), []) \
           .append(float(r["value"]))
    # per seed: mean over the selected layers; then mean over seeds
    return {s: {size: float(np.mean([np.mean(v) for v in by_seed.values()]))
                for size, by_seed in by_size.items() if sizes is None or size in sizes}
            for s, by_size in sorted(acc.items())}


def complete_runs(rows):
    """Drop (param, seed) runs that miss a size (a sweep stopped early): a slope across sizes
    must compare the same seeds at every size."""
    sizes = {}
    for r in rows:
        sizes.setdefault(r["param"], set()).add(r["size"])
        sizes.setdefault((r["param"], r["seed"]), set()).add(r["size"])
    keep = {(p, s) for (p, s) in (k for k in sizes if isinstance(k, tuple)) if sizes[(p, s)] == sizes[p]}
    return [r for r in rows if (r["param"], r["seed"]) in keep]


def loglog_slope(xs, ys):
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = np.isfinite(ys) & (ys > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(xs[ok]), np.log(ys[ok]), 1)[0])


def slopes(rows, param, quantity="resid_abs", layer="last"):
    """{step: log-log slope of the seed-mean quantity against the swept size}."""
    return {s: loglog_slope(sorted(v), [v[k] for k in sorted(v)])
            for s, v in seed_mean(rows, param, quantity, layer).items()}


def classify(step_slopes):
    """'flat' if |slope| <= 0.15 at every step after the first, 'grows' if slope >= 0.5 at the
    last step, otherwise 'neither'."""
    later = [v for s, v in step_slopes.items() if s > 1]
    if not later:
        raise ValueError("the verdict needs at least 2 steps (step 1 is the initialization)")
    if all(abs(v) <= FLAT_TOL for v in later):
        return "flat"
    if step_slopes[max(step_slopes)] >= GROW_MIN:
        return "grows"
    return "neither"


def verdicts(rows, sweep_kind):
    """One dict per parameterization: slopes per step, classification, expected, pass."""
    out = []
    for param in dict.fromkeys(r["param"] for r in rows):
        sl = slopes(rows, param)
        got = classify(sl)
        want = EXPECT.get((sweep_kind, param))
        extra = {q: max(abs(v) for s, v in slopes(rows, param, q, "mean").items() if s > 1)
                 for q in ("attn_abs", "mlp_abs")}
        out.append(dict(param=param, slopes=sl, verdict=got, expected=want,
                        ok=(got == want), branch_max_abs_slope=extra))
    return out


def verdict_table(vs, sweep_kind):
    """Markdown: one row per parameterization."""
    var = "L" if sweep_kind == "depth" else "N"
    steps = sorted(vs[0]["slopes"])
    head = (f"| param | slope of log mean\\|h\\| vs log {var}, steps {steps[0]}..{steps[-1]} | "
            f"max \\|slope\\| steps>1 | attn / mlp branch max \\|slope\\| | verdict | expected | |")
    lines = [head, "|" + "---|" * 7]
    for v in vs:
        later = [abs(x) for s, x in v["slopes"].items() if s > 1]
        lines.append(f"| {v['param']} | {' '.join('%+.2f' % v['slopes'][s] for s in steps)} | "
                     f"{max(later):.3f} | {v['branch_max_abs_slope']['attn_abs']:.2f} / "
                     f"{v['branch_max_abs_slope']['mlp_abs']:.2f} | {v['verdict']} | "
                     f"{v['expected']} | {'PASS' if v['ok'] else 'FAIL'} |")
    return "\n".join(lines)


def plot(rows, sweep_kind, path, title=""):
    """Figure 7 style: a column per parameterization, a line per step, log-log axes. Rows:
    residual stream after the last block (the key quantity), branch outputs (mean over
    blocks, before the multiplier), attention logits (mean over blocks), output logits."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    params = list(dict.fromkeys(r["param"] for r in rows))
    panels = [("resid_abs", "last", "mean |h|, last block"),
              ("resid_delta_abs", "last", "mean |h_t - h_1|, last block"),
              ("attn_abs", "mean", "attn branch (before mult)"),
              ("mlp_abs", "mean", "MLP branch (before mult)"),
              ("attn_logit_abs", "mean", "attention logits"),
              ("logits_abs", -1, "output logits")]
    fig, axes = plt.subplots(len(panels), len(params), figsize=(3.2 * len(params), 2.4 * len(panels)),
                             squeeze=False, sharex=True)
    for j, param in enumerate(params):
        for i, (q, layer, label) in enumerate(panels):
            ax = axes[i][j]
            data = seed_mean(rows, param, q, layer)
            cmap = plt.get_cmap("viridis")
            for s, v in data.items():
                xs = sorted(v)
                ax.plot(xs, [v[x] for x in xs], marker="o", ms=3, lw=1,
                        color=cmap((s - 1) / max(1, len(data) - 1)), label=f"t={s}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            if i == 0:
                sl = slopes(rows, param)
                ax.set_title(f"{param}\nslope at last step {signed(sl[max(sl)])}", fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == len(panels) - 1:
                ax.set_xlabel("depth L" if sweep_kind == "depth" else "width N")
            ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:  # the run's settings, wrapped to the figure width
        fig.suptitle("\n".join(textwrap.wrap(title, 25 * len(axes[0]) + 40)), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# CSV

def read_rows(path):
    """The rows of a CSV this script wrote, typed. Anything else is one line naming the file (and
    the line): not UTF-8, another header, a line that is not a row (--resume and --analyze_only
    read what an earlier run, or a hand, left)."""
    fix = "delete it (or that line) and run the sweep again without --resume"
    rows = []
    try:
        with open(regular_file(path, "coord_check CSV"), newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != CSV_FIELDS:
                raise UserError(f"{path} is not a coord_check CSV (its header is not {','.join(CSV_FIELDS)}); {fix}")
            for r in reader:
                try:
                    if None in r:
                        raise ValueError("more fields than the header")
                    r["size"], r["seed"], r["step"], r["layer"] = (int(r[k]) for k in ("size", "seed", "step", "layer"))
                    r["value"] = float(r["value"])
                except (TypeError, ValueError):
                    raise UserError(f"{path} line {reader.line_num} is not a coord_check row; {fix}") from None
                rows.append(r)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"cannot read {path} as a coord_check CSV ({e}); {fix}") from None
    return rows


def append_rows(path, rows):
    """Append one run's rows in one write (runs.append_line: on a fresh line, fsynced), so a
    kill leaves whole runs for --resume; the header first in a new file."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    if not os.path.exists(path):
        w.writeheader()
    for r in rows:
        w.writerow({**r, "value": f"{r['value']:.5g}"})
    append_line(path, buf.getvalue())


def load_tokens(path):
    from dataloader import read_tokens
    return read_tokens(path, fix="run `python data/shakespeare_char/prepare.py`")


def parse_list(text, kind, name):
    try:
        vals = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name}={text!r} must be a comma-separated list of {kind.__name__}")
    if not vals:
        raise UserError(f"--{name} is empty")
    return vals


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", choices=("depth", "width"), required=True)
    ap.add_argument("--small", action="store_true", help="CPU-sized defaults (a minute or two)")
    ap.add_argument("--block", choices=tuple(BLOCKS), default="gpt2",
                    help="gpt2 (LayerNorm, learned positions, GELU) or modern (RMSNorm, QK-norm, RoPE, SwiGLU, no biases)")
    ap.add_argument("--params", help="comma list of parameterizations")
    ap.add_argument("--sizes", help="comma list of depths (or widths); the first is the base")
    ap.add_argument("--width", type=int, help="n_embd of the depth sweep")
    ap.add_argument("--depth", type=int, help="n_layer of the width sweep")
    ap.add_argument("--head_size", type=int)
    ap.add_argument("--batch", type=int, help="sequences per step")
    ap.add_argument("--seq_len", type=int, help="tokens per sequence")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seeds", type=int, help="number of seeds (0..seeds-1)")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-12)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--input_mult", type=float, default=1.0,
                    help="muP input multiplier on wte+wpe (not applied to sp)")
    ap.add_argument("--probe_batch", type=int, default=2, help="sequences of the probe batch")
    ap.add_argument("--attn_positions", type=int, default=64, help="positions for attn logits")
    ap.add_argument("--data", default=os.path.join(REPO, "data", "shakespeare_char", "train.bin"))
    ap.add_argument("--out_dir", default=os.path.join(REPO, "out", "coord_check"),
                    help="where the CSV, figure and verdict go (default: the scratch folder out/coord_check; the committed results are written only when named, --out_dir experiments/coord_check)")
    ap.add_argument("--tag", default="", help="file name prefix (default: the sweep kind)")
    ap.add_argument("--resume", action="store_true", help="keep the CSV, skip runs in it")
    ap.add_argument("--analyze_only", action="store_true",
                    help="no training: verdict and plot from the existing CSV")
    a = ap.parse_args(argv)

    s = dict(DEFAULTS[a.sweep], **(SMALL[a.sweep] if a.small else {}))
    for k in s:  # explicit flags win over the defaults
        if getattr(a, k, None) is not None:
            s[k] = getattr(a, k)
    params = parse_list(s["params"], str, "params") if isinstance(s["params"], str) else s["params"]
    sizes = parse_list(s["sizes"], int, "sizes") if isinstance(s["sizes"], str) else s["sizes"]
    for p in params:
        if (a.sweep, p) not in EXPECT:
            raise UserError(f"unknown parameterization {p!r} in --params; use "
                             "sp, mup, depth_mup, completep")
    if len(sizes) < 2 or sorted(sizes) != sizes or sizes[0] <= 0:
        raise UserError(f"--sizes={sizes} needs two or more increasing positive values")
    n = dict(s, probe_batch=a.probe_batch, attn_positions=a.attn_positions)
    for k in ("width", "depth", "head_size", "batch", "seq_len", "probe_batch", "attn_positions", "seeds"):
        if n[k] <= 0:
            raise UserError(f"--{k}={n[k]} must be positive")
    if s["steps"] < 2:
        raise UserError("--steps must be at least 2 (step 1 is the initialization)")
    # NaN passes every comparison, inf runs and "diverges": each float flag must be finite
    floats = dict(lr=(s["lr"], s["lr"] > 0, "positive"), input_mult=(a.input_mult, a.input_mult > 0, "positive"),
                  wd=(a.wd, a.wd >= 0, ">= 0"), eps=(a.eps, a.eps >= 0, ">= 0"), clip=(a.clip, a.clip >= 0, ">= 0"),
                  beta1=(a.beta1, 0 <= a.beta1 < 1, "in [0, 1)"), beta2=(a.beta2, 0 <= a.beta2 < 1, "in [0, 1)"))
    for k, (v, ok, want) in floats.items():
        if not (math.isfinite(v) and ok):
            raise UserError(f"--{k}={v} must be finite and {want}")
    try:  # every point's shape, before the first one trains
        for p in params:
            for size in sizes:
                model_config(p, a.sweep, size, s["width"], s["depth"], s["head_size"], sizes[0], 1, s["seq_len"],
                             a.input_mult, a.block)
    except ValueError as e:
        raise UserError(f"{e}; choose --sizes, --width or --depth and --head_size that fit") from None
    try:
        tokens = load_tokens(a.data)
    except Exception as e:  # UserError: one line with the fix
        raise UserError(f"{e}")
    if len(tokens) < s["seq_len"] + 2:
        raise UserError(f"{a.data} has {len(tokens)} tokens, fewer than one window of --seq_len={s['seq_len']} "
                        "and its next token (+2); give a longer token file or a smaller --seq_len")
    vocab = int(tokens.max()) + 1
    L, N = (sizes[-1], s["width"]) if a.sweep == "depth" else (s["depth"], sizes[-1])
    need, what = memory_estimate(L, N, N // s["head_size"], vocab, s["seq_len"], s["batch"] + a.probe_batch)
    have = available_memory("cpu")
    if have and need > have and not a.analyze_only:
        raise UserError(f"the largest point ({L} layers x {N} wide, batch {s['batch']} x {s['seq_len']}) needs {what}, "
                        f"more than the {have / 2 ** 30:,.1f} GiB of this machine; lower --sizes, --width or --depth, "
                        "--batch or --seq_len")

    try:
        os.makedirs(a.out_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create --out_dir {a.out_dir} ({e.strerror or e}); choose another") from None
    tag = a.tag or (a.sweep if a.block == "gpt2" else f"{a.sweep}_{a.block}")
    csv_path = os.path.join(a.out_dir, f"{tag}.csv")
    done = set()
    if a.analyze_only:
        if not os.path.exists(csv_path):
            raise UserError(f"--analyze_only needs {csv_path}; run the sweep first")
    elif a.resume and os.path.exists(csv_path):
        done = {(r["param"], r["size"], r["seed"]) for r in read_rows(csv_path)}
    elif os.path.exists(csv_path):
        os.remove(csv_path)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    settings = (f"sweep={a.sweep} params={','.join(params)} sizes={','.join(map(str, sizes))} "
                f"width={s['width']} depth={s['depth']} head_size={s['head_size']} batch={s['batch']} "
                f"seq_len={s['seq_len']} steps={s['steps']} seeds={s['seeds']} lr={s['lr']} wd={a.wd} "
                f"betas=({a.beta1},{a.beta2}) eps={a.eps} clip={a.clip} input_mult={a.input_mult} block={a.block} "
                f"probe_batch={a.probe_batch} "
                f"data={os.path.relpath(a.data, REPO)} torch={torch.__version__} "
                f"threads={torch.get_num_threads()}")
    print(settings, flush=True)
    t0 = time.time()
    if not a.analyze_only:
        try:
            sweep(a.sweep, params, sizes, tokens, vocab, seeds=list(range(s["seeds"])), steps=s["steps"],
                  lr=s["lr"], width=s["width"], depth=s["depth"], head_size=s["head_size"], batch=s["batch"],
                  seq_len=s["seq_len"], wd=a.wd, betas=(a.beta1, a.beta2), eps=a.eps, clip=a.clip,
                  probe_batch=a.probe_batch, attn_positions=a.attn_positions, done=done,
                  on_run=partial(append_rows, csv_path), log=lambda m: print(m, flush=True),
                  input_mult=a.input_mult, block=a.block)
        except (MemoryError, RuntimeError) as e:  # an allocation the estimate let through
            if not out_of_memory(e):
                raise
            raise UserError(f"out of memory at {L} layers x {N} wide, batch {s['batch']} x {s['seq_len']}; lower "
                            f"--sizes, --width or --depth, --batch or --seq_len (--resume keeps the finished runs)") from None
    rows = read_rows(csv_path)
    if bad := next((r for r in rows if r["sweep"] != a.sweep), None):
        raise UserError(f"{csv_path} holds a {bad['sweep']} sweep, not --sweep {a.sweep}; give its --sweep or another --tag")
    kept = complete_runs(rows)
    if len(kept) < len(rows):
        print(f"note: dropped {len(rows) - len(kept)} rows of runs that miss a size")
    rows = kept
    if len({r["step"] for r in rows}) < 2:
        raise UserError(f"{csv_path} holds {'no complete run' if not rows else 'one step only'}; the verdict "
                        "needs runs of every size with at least 2 steps: run the sweep (without --analyze_only)")
    seeds_used = {p: sorted({r["seed"] for r in rows if r["param"] == p}) for p in params}
    settings += " seeds_used=" + ";".join(f"{p}:{','.join(map(str, v))}" for p, v in seeds_used.items())
    vs = verdicts(rows, a.sweep)
    table = verdict_table(vs, a.sweep)
    png = os.path.join(a.out_dir, f"{tag}.png")
    plot(rows, a.sweep, png, title=settings)
    write_atomic(os.path.join(a.out_dir, f"{tag}_verdict.md"), f"Settings: `{settings}`\n\n{table}\n")
    print(table)
    print(f"wrote {csv_path}, {png} ({time.time() - t0:.0f}s)")
    return vs


if __name__ == "__main__":
    run_cli(lambda: main() and None)

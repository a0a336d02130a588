"""
Tune once, train big: turn a tuned proxy into one self-contained train.py config file for a
target, checked and shown before the expensive run starts.

    python scripts/transfer.py --from_sweep runs/depth_lr/results.csv --target config/<target>.py --out target.py
    python scripts/transfer.py --from_search runs/search/search_proxy --target config/<target>.py --set n_layer=8
    python train.py target.py

The proxy is a sweep or a search. --from_sweep takes a results CSV (scripts/sweep.py): among its
finished rows at the proxy's parameterization and shape (--parameterization when the file has
several; the shape is the smallest in the file, or --n_layer/--n_embd; --where KEY=VALUE keeps
one arm of a sweep with other axes) it picks the learning_rate (and init_std when the sweep
varied it) with the lowest val_loss averaged over seeds, and reports beside that grid pick the
fitted optimum (results.fit_optimum, the parabola scripts/plot_transfer.py fits) with its seed
uncertainty (each seed's own fit, and the sd over a bootstrap of the seeds). --from_search takes
scripts/search.py's out_root: the best trial of its searched_modules.py. Either way the proxy's
recipe is the resolved config.json of that run (its out_dir), so nothing is read from a config
file that may have changed since.

The file written (--out FILE, whole or not at all; default: printed, the summary then goes to
stderr) holds, in three parts: (1) every setting of the proxy's recipe, (2) the target's own
settings (its config files and --set, as resolved), (3) the tuned base values: learning_rate,
init_std, module_hparams, the proxy's base shape (base_n_layer, base_n_embd) and for completedp
its batch and tokens (base_batch_size, base_tokens), so train.py scales them to the target with
m_N, m_L, m_B and m_D. What belongs where is the table SETTINGS below. A target that sets a
recipe (or tuned) setting to another value than the proxy's is refused in one line naming both,
unless --allow KEY; an allowed change is written with a comment saying what the proxy had, and
lands in the run's config.json as any setting does. Settings the target leaves alone that are
not the recipe get train.py's defaults: a target is a real run, with checkpoints and a final
sample unless its config says otherwise (a sweep base's save_checkpoints=False stays there).

Before writing, it prints what the target will get beside the proxy: m_N, m_L, m_B, m_D,
parameters, FLOPs per token and in all, tokens and tokens per parameter, each group's lr, wd, eps,
1 - betas and init std over the proxy's, and both per-group tables (lr, wd, eps, betas, init std,
modules), made by model.param_table from the models' own param_groups, the code train.py runs
(both built on the meta device: a 4096-wide target costs nothing).

Exit codes: 0 written (or printed); 2 bad input, one `error: ...` line.
"""
import argparse
import dataclasses
import glob
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import results  # noqa: E402
from configurator import parse, read_config_file  # noqa: E402
from runs import CONTROL, UserError, read_final, run_cli, train_defaults, write_atomic  # noqa: E402
from util import number  # noqa: E402

# Every train.py setting, by what a transfer does with it (tests/test_transfer.py checks that
# the table names each setting of train.py exactly once; one it does not name is treated as recipe):
#   target   the target's own (its config files or --set, else train.py's default); never the
#            proxy's: shape, batch, run length, where and how it runs, what it records and keeps
#   carried  the proxy's value unless the target sets its own (no --allow needed): they draw the
#            run's randomness or size its measurement, they do not move the optimum
#   recipe   the proxy's value; a target that sets another is refused unless --allow KEY
#   tuned    the tuned base values, written last from the proxy's run; a target's own value is
#            refused unless --allow KEY
SETTINGS = {
    # I/O: where the run lives, how often it evaluates, logs and saves, what it samples
    "out_dir": "target", "init_from": "target", "eval_interval": "target", "log_interval": "target",
    "eval_only": "target", "save_checkpoints": "target", "keep_last": "target", "halt_at_iter": "target",
    "sample_tokens": "target", "wandb_log": "target", "wandb_project": "target",
    "wandb_run_name": "target", "wandb_group": "target", "wandb_mode": "target",
    "eval_tokens": "carried",            # the size of the measurement: the proxy's val_loss is on it
    # data: the proxy's data set and context; m_B counts sequences of block_size tokens
    "dataset": "recipe", "data_dir": "recipe", "block_size": "recipe",
    "verify_data": "target",
    "batch_size": "target", "global_batch_size": "target",
    # model: the shape is the target's, everything else the proxy's
    "n_layer": "target", "n_head": "target", "n_embd": "target",
    "dropout": "recipe", "bias": "recipe", "parameterization": "recipe", "depth_alpha": "recipe",
    "input_mult": "recipe", "output_mult": "recipe", "attn_mult": "recipe", "tie_embeddings": "recipe",
    "norm": "recipe", "qk_norm": "recipe", "pos": "recipe", "rope_theta": "recipe", "mlp": "recipe",
    "mlp_ratio": "recipe", "z_loss": "recipe",
    "base_n_embd": "tuned", "base_n_layer": "tuned", "init_std": "tuned", "module_hparams": "tuned",
    "base_batch_size": "tuned", "base_tokens": "tuned", "base_block_size": "tuned",
    # AdamW and the schedule (fractions of the run): the proxy's, the length the target's
    "learning_rate": "tuned", "max_iters": "target", "max_tokens": "target",
    "weight_decay": "recipe", "beta1": "recipe", "beta2": "recipe", "eps": "recipe", "grad_clip": "recipe",
    "lr_schedule": "recipe", "warmup_frac": "recipe", "decay_frac": "recipe", "min_lr_frac": "recipe",
    # system
    "device": "target", "dtype": "target", "compile": "target", "fused": "target", "parallel": "target",
    "seed": "carried",                   # the proxy's draw (its loss is that seed's); any seed is the same recipe
}
TUNED = ("learning_rate", "init_std", "module_hparams", "base_n_layer", "base_n_embd", "base_batch_size", "base_tokens",
         "base_block_size")
assert set(TUNED) == {k for k, v in SETTINGS.items() if v == "tuned"}


def kind(key):
    """A setting's row of SETTINGS; one the table does not name yet is recipe (kept, a change refused),
    a logging one (wandb_*) the target's."""
    return SETTINGS.get(key, "target" if key.startswith("wandb_") else "recipe")


def rel(path):
    a = os.path.abspath(path)
    return os.path.relpath(a, REPO) if a.startswith(REPO + os.sep) else path


def run_config(out_dir, what):
    """The resolved settings of a finished run: its config.json's `config`."""
    path = os.path.join(out_dir, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)["config"]
    except FileNotFoundError:
        raise UserError(f"{what} {rel(out_dir)} has no config.json (moved or deleted?): the proxy's recipe is read "
                        "from it; run that point again, or give another proxy") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{what} {rel(path)} cannot be read as a run's record ({e}); run that point again") from None
    if not isinstance(config, dict):
        raise UserError(f"{what} {rel(path)} holds no settings; run that point again")
    return config


# --- the proxy: a sweep's best point ---

def _fit(curve, seeds_of, n_boot=500, rng_seed=0):
    """The fitted optimum of one curve {x: {seed: loss}} (log2 x), each seed's own fit, and the sd
    of the fit over a bootstrap of the seeds: (fit, {seed: (log2 opt, note)}, sd)."""
    xs = sorted(curve)
    lx = [math.log2(x) for x in xs]

    def mean_curve(seeds):
        return [float(np.mean([curve[x][s] for s in seeds if s in curve[x]] or [math.inf])) for x in xs]

    seeds = sorted(seeds_of, key=lambda s: (number(s), s))
    fit = results.fit_optimum(lx, mean_curve(seeds)) if len(xs) > 1 else None
    per_seed, boots = {}, []
    if len(seeds) > 1 and len(xs) > 1:
        for s in seeds:
            f = results.fit_optimum(lx, [curve[x].get(s, math.inf) for x in xs])
            if f is not None:
                per_seed[s] = (f["log2_opt"], f["note"])
        rng = np.random.default_rng(rng_seed)
        for _ in range(n_boot):
            f = results.fit_optimum(lx, mean_curve([seeds[i] for i in rng.choice(len(seeds), len(seeds))]))
            if f is not None:
                boots.append(f["log2_opt"])
    return fit, per_seed, float(np.std(boots, ddof=1)) if len(boots) > 1 else math.nan


def _fit_line(name, grid_value, fit, per_seed, sd):
    if fit is None:
        return f"  {name}: grid pick {grid_value:.4g} (2^{math.log2(grid_value):.2f}); one grid value, no fit"
    text = (f"  {name}: grid pick {grid_value:.4g} (2^{math.log2(grid_value):.2f}), fitted optimum "
            f"2^{fit['log2_opt']:.2f} = {2 ** fit['log2_opt']:.4g}"
            + (f" ({fit['note']}: a bound)" if fit["note"] else ""))
    if not per_seed:
        text += "; one seed: no seed uncertainty"
    else:
        text += ("; per seed " + ", ".join(f"s{s} 2^{v:.2f}{'*' if note else ''}" for s, (v, note) in per_seed.items())
                 + f"; bootstrap sd {sd:.2f} (log2 units)")
    return text


def from_sweep(path, args):
    """(proxy config, out_dir, summary lines) of the best point of a results CSV at the proxy's shape."""
    rows = results.select(results.load(path), args.where, path)
    params = sorted({r["parameterization"] for r in rows})
    if args.parameterization:
        if args.parameterization not in params:
            raise UserError(f"{path} has no finished row of parameterization {args.parameterization!r}; it has "
                            f"{', '.join(params)}")
        params = [args.parameterization]
    elif len(params) > 1:
        raise UserError(f"{path} holds rows of {', '.join(params)}; choose the proxy's with --parameterization")
    rows = [r for r in rows if r["parameterization"] == params[0]]
    results.check_numbers(rows, ("n_layer", "n_embd"), whole=True)
    results.check_numbers(rows, ("learning_rate",))
    shapes = sorted({(int(number(r["n_layer"])), int(number(r["n_embd"]))) for r in rows if r["status"] == "done"},
                    key=lambda s: (s[0] * s[1] ** 2, s))
    present = ", ".join(f"{L} x {N}" for L, N in shapes) or "none"
    want = (args.n_layer or (shapes[0][0] if shapes else 0), args.n_embd or (shapes[0][1] if shapes else 0))
    if want not in shapes:
        raise UserError(f"{path} has no done row at the proxy's shape {want[0]} x {want[1]} ({params[0]}); its done "
                        f"rows are at {present} (n_layer x n_embd): choose one with --n_layer/--n_embd")
    rows = [r for r in rows if (int(number(r["n_layer"])), int(number(r["n_embd"]))) == want]
    fixed = ("parameterization", "n_layer", "n_embd", "learning_rate", "init_std", "seed")
    also = sorted(k for k in rows[0] if k not in results.NOT_SETTINGS and k not in fixed
                  and len({r[k] for r in rows}) > 1)
    if also:
        k = also[0]
        raise UserError(f"{path}: at {want[0]} x {want[1]} the rows also vary {', '.join(also)} ({k} = "
                        f"{', '.join(sorted({r[k] for r in rows}))}); keep one with --where {k}=VALUE")
    points = {}  # (lr, init_std): {seed: loss (inf: diverged)}
    for r in rows:
        key = (number(r["learning_rate"]), number(r["init_std"]) if r.get("init_std") else None)
        points.setdefault(key, {})[r.get("seed", "")] = number(r["val_loss"]) if r["status"] == "done" else math.inf
    means = {k: float(np.mean(list(v.values()))) for k, v in points.items()}
    finite = {k: m for k, m in means.items() if math.isfinite(m)}
    if not finite:
        raise UserError(f"{path}: every point at {want[0]} x {want[1]} diverged; sweep lower learning rates")
    (lr, std), loss = min(finite.items(), key=lambda kv: (kv[1], kv[0][0]))
    seeds = {s for v in points.values() for s in v}
    stds = {k[1] for k in points}
    lines = [f"proxy: best of {rel(path)} at {params[0]} {want[0]} x {want[1]}: learning_rate {lr:.4g} "
             f"(2^{math.log2(lr):.2f})" + (f", init_std {std:.4g}" if len(stds) > 1 else "")
             + f", mean val_loss {loss:.4f} over {len(points[(lr, std)])} seed(s) ({len(points)} grid points)"]
    lr_curve = {k[0]: v for k, v in points.items() if k[1] == std}
    lines.append(_fit_line("learning_rate", lr, *_fit(lr_curve, seeds)))
    if len(stds) > 1:
        std_curve = {k[1]: v for k, v in points.items() if k[0] == lr}
        lines.append(_fit_line("init_std", std, *_fit(std_curve, seeds)))
    chosen = min((r for r in rows if r["status"] == "done" and number(r["learning_rate"]) == lr
                  and (len(stds) == 1 or number(r["init_std"]) == std)), key=lambda r: (number(r.get("seed", "")),))
    out_dir = os.path.join(results.REPO, chosen["out_dir"])
    config = run_config(out_dir, f"the best point's run ({results.located(chosen)}):")
    if config.get("learning_rate") != lr:
        raise UserError(f"{rel(out_dir)}/config.json has learning_rate {config.get('learning_rate')!r}, its row in "
                        f"{path} {lr!r}: another run has used that out_dir since; run the point again")
    lines.append(f"  the proxy's recipe: {rel(out_dir)}/config.json (seed {config.get('seed')})")
    return config, out_dir, lines


# --- the proxy: a search's best trial ---

def from_search(root):
    """(proxy config, out_dir, summary lines) of the best trial of a scripts/search.py out_root."""
    if not os.path.isdir(root):
        raise UserError(f"search directory {root} does not exist; give scripts/search.py's out_root, e.g. "
                        "runs/search/<name>")
    searched = os.path.join(root, "searched_modules.py")
    if not os.path.isfile(searched):
        raise UserError(f"search {root} has no finished trial yet (no searched_modules.py); run scripts/search.py "
                        "until a trial completes")
    best = read_config_file(searched)
    keys = ("learning_rate", "init_std", "module_hparams")
    trials = {}
    for path in sorted(glob.glob(os.path.join(root, "trials", "t*", "config.json"))
                       + glob.glob(os.path.join(root, "trials", "t*", "s*", "config.json"))):
        run_dir = os.path.dirname(path)
        final = read_final(run_dir)
        if not final or final.get("status") != "done":
            continue
        config = run_config(run_dir, "trial")
        if all(json.dumps(config.get(k), sort_keys=True) == json.dumps(best.get(k), sort_keys=True) for k in keys):
            trial = os.path.relpath(run_dir, os.path.join(root, "trials")).split(os.sep)[0]
            trials.setdefault(trial, []).append((config.get("seed", 0), run_dir, config, final["val_loss"]))
    if not trials:
        raise UserError(f"search {root}: no finished trial in {os.path.join(root, 'trials')} has the values of its "
                        "searched_modules.py (its runs moved or deleted?); run the search again")
    trial = sorted(trials)[0]
    seed, out_dir, config, _ = min(trials[trial], key=lambda t: t[0])
    losses = [t[3] for t in trials[trial]]
    lines = [f"proxy: best trial of search {rel(root)}: {trial}, val_loss {np.mean(losses):.4f}"
             + (f" (mean of {len(losses)} seeds)" if len(losses) > 1 else "")
             + f", learning_rate {config['learning_rate']:.4g}, module_hparams {json.dumps(config['module_hparams'])}",
             f"  the proxy's recipe: {rel(out_dir)}/config.json (seed {seed})"]
    return config, out_dir, lines


# --- the target ---

def data_dir_of(c):
    return os.path.realpath(c["data_dir"] or os.path.join(REPO, "data", c["dataset"]))


def compose(recorded, target, sources, defaults, allow, proxy_src):
    """(config, part of each key, allowed changes, proxy's full settings): the target's settings
    (`target`, resolved, and where each came from, `sources`) on the proxy's recipe (`recorded`,
    its config.json); part: 'recipe', 'tuned', 'target' or 'default' (train.py's, not written)."""
    for k in sorted(set(recorded) - set(defaults)):
        print(f"note: the proxy's config.json has {k}={recorded[k]!r}, which train.py no longer has", file=sys.stderr)
    for k in (k for k in defaults if k not in recorded and kind(k) != "target"):
        print(f"note: the proxy's config.json predates the setting {k}: train.py's default {defaults[k]!r}",
              file=sys.stderr)
    proxy = {k: recorded.get(k, v) for k, v in defaults.items()}
    config, part, allowed, refused = {}, {}, {}, {}
    same_data = data_dir_of(proxy) == data_dir_of(target)  # another spelling of the same directory is no change
    for k in defaults:
        theirs = proxy[k]
        mine, set_here = target[k], sources[k] != "default"
        if k in ("dataset", "data_dir") and same_data:
            set_here = False
        if kind(k) == "target":
            config[k], part[k] = mine, "target" if set_here else "default"
        elif kind(k) == "carried":
            config[k], part[k] = (mine, "target") if set_here else (theirs, "recipe")
        elif not set_here or mine == theirs:
            config[k], part[k] = theirs, kind(k)
        elif k in allow:
            config[k], part[k], allowed[k] = mine, "target", theirs
        else:
            refused[k] = f"the target sets {k}={mine!r} ({sources[k]}), the proxy trained {k}={theirs!r} ({proxy_src})"
    if refused:
        them = "them" if len(refused) > 1 else "it"
        what = "tuned values and recipe" if any(kind(k) == "tuned" for k in refused) else "recipe"
        raise UserError(f"{'; '.join(refused.values())}: a transfer keeps the proxy's {what}; remove {them} from the "
                        f"target, or pass {' '.join('--allow ' + k for k in refused)} to change {them}")
    # Complete(d)P's base batch and tokens: the proxy's own where it was its own base (None there)
    if batch_duration(config):
        for k, own in (("base_batch_size", proxy["global_batch_size"]), ("base_block_size", proxy["block_size"]),
                       ("base_tokens", total_iters(proxy) * proxy["global_batch_size"] * proxy["block_size"])):
            if config[k] is None and part[k] == "tuned":
                config[k] = own
        if config["base_block_size"] is not None and config["block_size"] != config["base_block_size"]:
            raise UserError(f"block_size={config['block_size']} differs from the proxy's context "
                            f"{config['base_block_size']} (base_block_size): Complete(d)P's m_B counts sequences of "
                            "the proxy's context, and train.py refuses the pair; keep the proxy's block_size, or "
                            "tune a proxy at this context")
    return config, part, allowed, proxy


def batch_duration(c):
    """Whether c's parameterization has Complete(d)P's batch and duration rules (model.PARAMETERIZATIONS)."""
    from model import PARAMETERIZATIONS
    return PARAMETERIZATIONS.get(c["parameterization"], {}).get("batch_duration", False)


def total_iters(c):
    """train.py's run length: max_iters = ceil(max_tokens / tokens per step) when max_tokens > 0."""
    per_step = c["global_batch_size"] * c["block_size"]
    return math.ceil(c["max_tokens"] / per_step) if c["max_tokens"] > 0 else c["max_iters"]


def describe(c, what):
    """What a run of settings c gets, from the model train.py builds (on the meta device) and its
    param_groups: dict of the derived numbers and the table text (model.param_table)."""
    import torch  # here, not at the top: a mistake in the input is reported before torch loads
    from dataloader import read_meta
    from model import GPT, GPTConfig, param_table
    ddir = data_dir_of(c)
    meta = read_meta(ddir)
    if meta is None:
        raise UserError(f"{what}'s data directory {ddir} has no meta.json; prepare the data set first "
                        "(python data/<dataset>/prepare.py) so the vocabulary is known")
    vocab = meta["vocab_size"] if meta.get("tokenizer") == "char" else 64 * math.ceil(meta["vocab_size"] / 64)
    steps = total_iters(c)
    tokens = steps * c["global_batch_size"] * c["block_size"]
    # Complete(d)P's multipliers, as train.py derives them: m_B = global_batch_size / base_batch_size,
    # m_D = D / base_tokens with D = total_iters * global_batch_size * block_size (1 when unset)
    m_B = c["global_batch_size"] / c["base_batch_size"] if c["base_batch_size"] else 1.0
    m_D = tokens / c["base_tokens"] if c["base_tokens"] else 1.0
    try:
        cfg = GPTConfig(vocab_size=vocab, **{f.name: c[f.name] for f in dataclasses.fields(GPTConfig)
                                             if f.name != "vocab_size"})
        with torch.device("meta"):
            model = GPT(cfg)
        groups = model.param_groups(c["learning_rate"], c["weight_decay"], c["eps"], (c["beta1"], c["beta2"]), m_B, m_D)
    except ValueError as e:
        raise UserError(f"{what}: {e}") from None
    p, n = model.parameterization, model.get_num_params()
    fpt = model.flops_per_token()
    return dict(m_N=p.m_N, m_L=p.m_L, m_B=m_B, m_D=m_D, params=n, flops_per_token=fpt, flops=fpt * tokens,
                steps=steps, tokens=tokens, tokens_per_param=tokens / n, groups=groups,
                table=param_table(p, groups, m_B, m_D))


def ratios(proxy_groups, target_groups):
    """Each target group's settings over the proxy's group of the same role and modules: the scaling the
    parameterization applies (m_N, m_L, m_B, m_D), one line a group."""
    def ratio(a, b):
        return "-" if a is None or b is None or b == 0 else f"x{a / b:.4g}"
    theirs = {(g["role"], tuple(g["modules"])): g for g in proxy_groups}
    lines = []
    for g in target_groups:
        q = theirs.get((g["role"], tuple(g["modules"])))
        if q is None:
            continue
        b1, b2 = ratio(1 - g["betas"][0], 1 - q["betas"][0]), ratio(1 - g["betas"][1], 1 - q["betas"][1])
        lines.append(f"  {g['role']:<12} lr {ratio(g['lr'], q['lr']):<10} "
                     f"wd {ratio(g['weight_decay'], q['weight_decay']):<10} eps {ratio(g['eps'], q['eps']):<10} "
                     f"1-beta1 {b1:<9} 1-beta2 {b2:<9} init_std {ratio(g['init_std'], q['init_std'])}")
    return lines


def summary(proxy, target, pc, tc):
    rows = [("shape", f"{pc['n_layer']} x {pc['n_embd']} (n_head {pc['n_head']})",
             f"{tc['n_layer']} x {tc['n_embd']} (n_head {tc['n_head']})"),
            ("batch", f"{pc['global_batch_size']} x {pc['block_size']}",
             f"{tc['global_batch_size']} x {tc['block_size']}"),
            ("steps", f"{proxy['steps']:,}", f"{target['steps']:,}")]
    for k in ("m_N", "m_L", "m_B", "m_D"):
        rows.append((k, f"{proxy[k]:g}", f"{target[k]:g}"))
    rows += [("params", f"{proxy['params']:,}", f"{target['params']:,}"),
             ("FLOPs/token", f"{proxy['flops_per_token']:.4g}", f"{target['flops_per_token']:.4g}"),
             ("FLOPs", f"{proxy['flops']:.4g}", f"{target['flops']:.4g}"),
             ("tokens", f"{proxy['tokens']:,}", f"{target['tokens']:,}"),
             ("tokens/param", f"{proxy['tokens_per_param']:.4g}", f"{target['tokens_per_param']:.4g}")]
    lines = [f"  {'':<13} {'proxy':<28} target"] + [f"  {a:<13} {b:<28} {c}" for a, b, c in rows]
    lines += ["target / proxy, per group:", *ratios(proxy["groups"], target["groups"])]
    return "\n".join(lines + ["proxy's table:", proxy["table"], "target's table:", target["table"]])


def render(config, part, allowed, defaults, header):
    """The config file's text: the proxy's recipe, the target's settings, the tuned base values."""
    def line(k, note=""):
        return f"{k} = {config[k]!r}" + (f"  # {note}" if note else "")
    out = [f"# {CONTROL.sub(lambda m: repr(m.group())[1:-1], h)}" for h in header]  # a newline would start code
    out += ["", "# 1. The proxy's recipe: every setting that shapes training (a target changes one only with --allow)"]
    for k in defaults:
        if part[k] == "recipe" or (k in allowed and kind(k) != "tuned"):
            out.append(f"# {k} = {allowed[k]!r}  (the proxy's; changed below, --allow {k})" if k in allowed else
                       line(k, "the proxy's; a target may set its own" if kind(k) == "carried" else ""))
    out += ["", "# 2. The target's own settings (its config files and --set)"]
    for k in defaults:
        if part[k] == "target":
            out.append(line(k, f"--allow {k}: the proxy trained {allowed[k]!r}" if k in allowed else ""))
    out += ["", "# 3. The tuned base values, at the proxy's base shape (and batch and tokens); train.py scales them"]
    for k in TUNED:
        if part[k] == "tuned":
            out.append(line(k))
    return "\n".join(out) + "\n"


def check_allow(allow):
    for k in allow:
        if k not in SETTINGS:
            raise UserError(f"--allow {k}: not a train.py setting of the recipe; --allow takes one of "
                            + ", ".join(s for s, v in SETTINGS.items() if v in ("recipe", "tuned")))
        if kind(k) in ("target", "carried"):
            raise UserError(f"--allow {k}: a target sets {k} freely; no --allow needed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from_sweep", metavar="CSV", help="a sweep's results.csv: its best point at the proxy's shape")
    src.add_argument("--from_search", metavar="DIR", help="a search's out_root (runs/search/<name>): its best trial")
    ap.add_argument("--target", nargs="+", required=True, metavar="CONFIG", help="the target's train.py config file(s)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a target setting (repeatable)")
    ap.add_argument("--allow", action="append", default=[], metavar="KEY",
                    help="let the target change this recipe setting (repeatable); recorded in the file")
    ap.add_argument("--out", help="write the config file here (default: print it; the summary goes to stderr)")
    ap.add_argument("--parameterization", help="--from_sweep: the proxy's, when the file has several")
    ap.add_argument("--n_layer", type=int, help="--from_sweep: the proxy's depth (default: the smallest shape's)")
    ap.add_argument("--n_embd", type=int, help="--from_sweep: the proxy's width (default: the smallest shape's)")
    ap.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                    help="--from_sweep: " + results.WHERE_HELP)
    args = ap.parse_args(argv)
    check_allow(args.allow)
    if args.from_search and (args.parameterization or args.n_layer or args.n_embd or args.where):
        raise UserError("--parameterization, --n_layer, --n_embd and --where choose among a sweep's rows; "
                        "a search has one proxy")
    defaults, annotations = train_defaults()
    for t in args.target:
        if os.path.isfile(t) and "base_config" in read_config_file(t):
            raise UserError(f"--target {t} is a sweep file (scripts/sweep.py), not a train.py config; give the "
                            "target's train.py config file")
    sets = []
    for s in args.set:
        key, eq, text = s.partition("=")
        if not eq:
            raise UserError(f"--set {s!r} has no value; write --set KEY=VALUE")
        sets.append(f"--{key}={text}")
    try:
        target, sources = parse(defaults, args.target + sets, annotations)
    except UserError as e:
        raise UserError(f"--target: {e}") from None

    if args.from_sweep:
        proxy, out_dir, lines = from_sweep(args.from_sweep, args)
    else:
        proxy, out_dir, lines = from_search(args.from_search)
    config, part, allowed, proxy_full = compose(proxy, target, sources, defaults, set(args.allow),
                                                f"{rel(out_dir)}/config.json")

    # what the target will get, beside the proxy, from the code train.py runs
    proxy_d, target_d = describe(proxy_full, "the proxy"), describe(config, "the target")
    log = sys.stdout if args.out else sys.stderr
    print("\n".join(lines), file=log)
    print(f"target: {' '.join(args.target + args.set)}"
          + "".join(f"; --allow {k}: {k} {allowed[k]!r} -> {config[k]!r}" for k in allowed), file=log)
    print(summary(proxy_d, target_d, proxy_full, config), file=log)

    header = [f"Written by scripts/transfer.py on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; train "
              f"the target with: python train.py {args.out or 'FILE'}",
              *[ln.strip() for ln in lines],
              f"target: {' '.join(args.target + args.set)}",
              f"m_N={target_d['m_N']:g} m_L={target_d['m_L']:g} m_B={target_d['m_B']:g} m_D={target_d['m_D']:g}; "
              f"{target_d['params']:,} params, {target_d['tokens']:,} tokens ({target_d['tokens_per_param']:.3g} per "
              f"param), {target_d['flops']:.3g} FLOPs"]
    text = render(config, part, allowed, defaults, header)
    with tempfile.TemporaryDirectory() as tmp:  # the file must resolve to exactly these settings
        check = os.path.join(tmp, "check.py")
        with open(check, "w") as f:
            f.write(text)
        again = parse(defaults, [check], annotations)[0]
    assert json.dumps(again, sort_keys=True) == json.dumps(config, sort_keys=True), "the file resolves otherwise"
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        write_atomic(args.out, text)
    except OSError as e:
        raise UserError(f"cannot write {args.out} ({e.strerror or e}); choose another --out") from None
    print(f"wrote {args.out}; train the target with: python train.py {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)

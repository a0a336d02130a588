"""
Compute efficiency across width/depth ratios (CompleteP, arXiv 2505.01618, Figure 1 middle and
right): for a budget of non-embedding parameters, model shapes from wide-shallow to
narrow-deep, each trained for a fixed number of tokens per parameter under sp, mup and
completep with the base hyperparameters tuned once on the proxy and transferred, never
re-tuned per shape. Then: final loss against N:L per parameterization, loss against
training FLOPs, and the FLOP saving of completep over mup at equal loss.

    python scripts/shapes.py run --budgets 100000,400000 --dry_run         # the shapes and points
    python scripts/shapes.py run --budgets 100000,400000 --jobs 2           # train them (restartable)
    python scripts/shapes.py analyze runs/shapes/results.csv --out /tmp/shapes
    python scripts/shapes.py paired runs/x/results.csv --a sp --b mup --keys n_embd,tokens   # any pair, any grouping
    python scripts/shapes.py paired runs/depth_lr/results.csv --a sp --b mup --keys n_layer --where learning_rate=2^-6

Shapes: for each depth L of --depths, the width N (a multiple of --head_size) whose
non-embedding parameter count (every block parameter and the final norm of --base_config's block,
the GPT-2 block or the modern one, as the built model counts them; `analyze` takes the same
--base_config and --head_size) is closest to the budget. Tokens: --tpp x that count, so every shape of a
parameterization sees the same tokens per parameter. Base hyperparameters: --base_config (the
proxy's settings) and --lr per parameterization (each one's proxy optimum). Every point runs
through scripts/sweep.py's machinery (grid.py): its own out_dir, one row in the results CSV, skipped
when finished; seed by seed, so a study stopped part-way compares every shape on the same seeds.

Training FLOPs of a point (`train_flops`): the PaLM-appendix estimate per token, 6 x
non-embedding parameters + 12 L T N for attention, times the tokens.
"""
import argparse
import math
import os
import re
import sys
from collections import defaultdict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import grid  # noqa: E402  (scripts/sweep.py's machinery: points, claims, running them)
import results  # noqa: E402  (the results file: reading, checks, --where, seed statistics)
from configurator import parse  # noqa: E402
from runs import UserError, run_cli, train_defaults, write_atomic  # noqa: E402
from util import number  # noqa: E402

PARAMS = ("sp", "mup", "completep")


# the settings of train.py that change a shape's non-embedding parameter count
BLOCK_KEYS = ("bias", "norm", "qk_norm", "mlp", "mlp_ratio")


def nonembedding_params(n_layer, n_embd, bias=True, head_size=None, norm="layernorm", qk_norm=False,
                        mlp="gelu", mlp_ratio=None):
    """Block parameters plus the final norm, for either block (model.py; tests compare with the
    built model for every option): the four attention matrices 4 N^2 (fused c_attn or c_q/c_k/c_v),
    the MLP's two (GELU) or three (SwiGLU) matrices of hidden width ceil(mlp_ratio x N) (mlp_ratio
    None: 4 for GELU, 8/3 for SwiGLU, as model.mlp_hidden), their biases when `bias`, two block
    norms and the final one (LayerNorm: N gains and, with `bias`, N biases; RMSNorm: N gains), and
    with QK-norm one gain vector of head_size for q and one for k per block."""
    ratio = mlp_ratio if mlp_ratio is not None else (4.0 if mlp == "gelu" else 8.0 / 3.0)
    hidden = math.ceil(ratio * n_embd - 1e-9)
    ins = 2 if mlp == "swiglu" else 1  # gate and up, or c_fc
    norm_size = 2 * n_embd if norm == "layernorm" and bias else n_embd
    per_block = 4 * n_embd * n_embd + (ins + 1) * n_embd * hidden + 2 * norm_size
    if bias:
        per_block += 4 * n_embd + ins * hidden + n_embd
    if qk_norm:
        if not head_size:
            raise ValueError("qk_norm: the count needs head_size (one gain vector per head size for q and for k)")
        per_block += 2 * head_size
    return n_layer * per_block + norm_size


def block_of(config):
    """The BLOCK_KEYS of a train.py config, for nonembedding_params."""
    return {k: config[k] for k in BLOCK_KEYS}


def shapes(budget, depths, head_size, block=None):
    """[(n_layer, n_embd, n_head, params)] for a budget: per depth the closest width that is a
    multiple of head_size (at least one head); `block` the model's BLOCK_KEYS (default: GPT-2's)."""
    count = counter(block, head_size)
    out = []
    for L in depths:
        best = None
        for heads in range(1, 4096):
            n = heads * head_size
            p = count(L, n)
            if best is None or abs(p - budget) < abs(best[3] - budget):
                best = (L, n, heads, p)
            if p > budget:
                break
        out.append(best)
    return out


def train_flops(n_layer, n_embd, params, block_size, tokens):
    """6 x non-embedding parameters x tokens + the attention term 12 L T C per token."""
    return (6 * params + 12 * n_layer * block_size * n_embd) * tokens


def parse_lrs(text):
    out = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if not eq or name not in PARAMS:
            raise UserError(f"--lr {text!r}: write PARAM=VALUE pairs for {', '.join(PARAMS)}, e.g. "
                            "sp=2**-7,mup=2**-6,completep=2**-6")
        out[name] = number(value)  # a decimal, 2**-7, 2^-7 or arithmetic of them
        if math.isnan(out[name]):
            raise UserError(f"--lr: {value!r} is not a number")
        if not (math.isfinite(out[name]) and out[name] > 0):
            raise UserError(f"--lr: {name}={value} must be positive and finite")
    return out


def ints(text, what):
    try:
        values = [int(float(v)) for v in text.split(",") if v]
    except (ValueError, OverflowError):  # a word, nan, inf
        raise UserError(f"--{what}={text!r} must be a comma-separated list of numbers") from None
    if not values or min(values) <= 0:
        raise UserError(f"--{what}={text!r} needs positive values")
    return values


def base_settings(a, defaults, annotations):
    """The sweep settings of --base_config and the train.py config it makes (whose block options
    the parameter count reads)."""
    configs = [c for c in a.base_config.split(",") if c]
    settings = dict(base_config=[c if os.path.isabs(c) else os.path.join(REPO, c) for c in configs], name="shapes")
    for c, path in zip(configs, settings["base_config"]):
        if not os.path.isfile(path):
            raise UserError(f"--base_config {c} does not exist")
    try:
        base, _ = parse(defaults, settings["base_config"], annotations)
    except UserError as e:
        raise UserError(f"--base_config: {e}") from None
    return settings, base


def build_points(a, defaults, annotations):
    """The sweep points of every (budget, shape, parameterization, seed)."""
    lrs = parse_lrs(a.lr)
    missing = [p for p in a.params if p not in lrs]
    if missing:
        raise UserError(f"--lr has no value for {', '.join(missing)}; give each parameterization's proxy optimum")
    settings, base = base_settings(a, defaults, annotations)
    block = block_of(base)
    axes = {"seed": a.seeds}
    points = []
    for budget in a.budgets:
        for L, N, H, P in shapes(budget, a.depths, a.head_size, block):
            for p in a.params:
                fixed = dict(parameterization=p, n_layer=L, n_embd=N, n_head=H, learning_rate=lrs[p],
                             max_tokens=round(a.tpp * P), save_checkpoints=False, eval_interval=10 ** 9,
                             sample_tokens=0)
                root = os.path.join(a.out_root, f"P{budget}")
                try:
                    points += grid.expand(settings, axes, fixed, {}, defaults, annotations, root)
                except UserError as e:
                    raise UserError(str(e)) from None
    # seed by seed (each seed's budgets, shapes and parameterizations in order): a study stopped
    # part-way holds whole seeds, every shape compared on the same seeds, not all seeds of the
    # first shapes and none of the last
    points.sort(key=lambda pt: a.seeds.index(pt["config"]["seed"]))
    return settings, axes, points, block


def run(a):
    defaults, annotations = train_defaults()
    settings, axes, points, block = build_points(a, defaults, annotations)
    path = a.results or os.path.join(a.out_root, "results.csv")
    if a.dry_run:
        print(f"{'budget':>8} {'L':>3} {'N':>5} {'heads':>5} {'N:L':>7} {'params':>9} {'tokens':>11}")
        for budget in a.budgets:
            for L, N, H, P in shapes(budget, a.depths, a.head_size, block):
                print(f"{budget:>8} {L:>3} {N:>5} {H:>5} {N / L:>7.2f} {P:>9,} {round(a.tpp * P):>11,}")
        done = results.recorded(path)
        todo = sum(os.path.abspath(p["out_dir"]) not in done for p in points)
        print(f"{len(points)} points ({todo} to run); results -> {path}")
        return 0
    gpus = None
    if a.gpus:
        gpus = [g.strip() for g in a.gpus.split(",")]
        if not all(g.isdigit() for g in gpus) or len(set(gpus)) != len(gpus):
            raise UserError(f"--gpus {a.gpus!r} must be distinct GPU ids separated by commas, e.g. --gpus 0,1,2,3")
    jobs = a.jobs or (len(gpus) if gpus else 1)
    ns = argparse.Namespace(jobs=jobs, threads_per_job=max(1, a.threads // jobs), nproc_per_node=1, gpus=gpus)
    return grid.run_local(points, settings, axes, path, ns)


# --- analysis ---

def load(path):
    """The finished rows (results.load's checks); a point is also told apart by its tokens
    and its out_dir (whose P<budget> folder names its budget; two budgets may pick one shape)."""
    return results.load(path, make="python scripts/shapes.py run", distinct=("tokens", "out_dir"))


def counter(block=None, head_size=None):
    """count(L, N): the non-embedding parameters of a shape with this block (block_of; default the
    GPT-2 block) and head size."""
    return lambda L, N: nonembedding_params(L, N, head_size=head_size, **(block or {}))


def nominal_budget(row, count=nonembedding_params):
    """The --budgets value a row was trained for: its out_dir's P<budget> folder (run() lays
    points out as <out_root>/P<budget>/...), else its own non-embedding parameter count."""
    m = re.search(r"(?:^|/)P(\d+)/", row.get("out_dir", ""))
    return int(m.group(1)) if m else count(int(float(row["n_layer"])), int(float(row["n_embd"])))


def aggregate(rows, block_size, count=nonembedding_params):
    """{param: [(budget, L, N, ratio, flops, mean loss, seeds)]} sorted by budget then L; budget
    is the nominal one (nominal_budget), the shape's own count is count(L, N) (counter)."""
    cells, horizon = defaultdict(list), defaultdict(int)
    for r in rows:
        L, N = int(float(r["n_layer"])), int(float(r["n_embd"]))
        loss = float(r["val_loss"]) if r["status"] == "done" else math.inf
        key = (r["parameterization"], nominal_budget(r, count), L, N)
        cells[key].append(loss)
        # a diverged seed's tokens are those it reached, not the point's horizon: the cell keeps
        # the longest (a done seed's), so a divergence counts against its point, not as a new one
        horizon[key] = max(horizon[key], int(float(r["tokens"])))
    out = defaultdict(list)
    for (p, budget, L, N), losses in cells.items():
        tokens = horizon[(p, budget, L, N)]
        P = count(L, N)
        finite = [x for x in losses if math.isfinite(x)]
        mean = sum(finite) / len(finite) if len(finite) == len(losses) else math.inf
        out[p].append((budget, L, N, N / L, train_flops(L, N, P, block_size, tokens), mean, len(losses)))
    for p in out:
        out[p].sort()
    return out


def flop_savings(agg):
    """Per depth present under both mup and completep at two or more budgets: interpolate
    log(FLOPs) linearly in loss between budgets (the curve of that depth), and read the FLOPs
    completep needs for the loss mup reaches at its largest budget. [(L, mup loss, completep
    loss, saving fraction or None, note)]."""
    def curve(p, L):
        pts = sorted((f, loss) for P, l, N, r, f, loss, s in agg.get(p, []) if l == L and math.isfinite(loss))
        return pts
    out = []
    depths = sorted({l for p in ("mup", "completep") for _, l, *_ in agg.get(p, [])})
    for L in depths:
        m, c = curve("mup", L), curve("completep", L)
        if not m or not c:
            continue
        target_flops, target = m[-1]
        note, saving = "", None
        if len(c) < 2:
            note = "one budget: no curve to read"
        else:
            # the two completep budgets that bracket the target loss (or the last two: extrapolated)
            pairs = list(zip(c, c[1:]))
            pair = next(((a, b) for a, b in pairs if min(a[1], b[1]) <= target <= max(a[1], b[1])), pairs[-1])
            (f0, l0), (f1, l1) = pair
            if l0 == l1:
                note = "flat curve"
            else:
                t = (target - l0) / (l1 - l0)
                needed = math.exp(math.log(f0) + t * (math.log(f1) - math.log(f0)))
                saving = 1 - needed / target_flops
                if not min(l0, l1) <= target <= max(l0, l1):
                    note = "extrapolated"
        out.append((L, target, c[-1][1], saving, note))
    return out


def _key(value):
    """A results CSV cell as a sortable key: a number where it is one (so 100000 sorts after 50000)."""
    try:
        x = float(value)
    except ValueError:
        return value
    return int(x) if x.is_integer() else x


def by_seed(rows, keys=("budget", "n_layer", "n_embd")):
    """{(param, *group): {seed: final val loss (inf when diverged)}}, a group being the values of
    `keys` (results CSV columns, or "budget": nominal_budget). Two runs of one parameterization
    and seed in a group (keys that miss a column the study varies, e.g. tokens) are an error, not
    a silent pick of one of them."""
    out = defaultdict(dict)
    for r in rows:
        group = tuple(nominal_budget(r) if k == "budget" else _key(r[k]) for k in keys)
        cell, seed = out[(r["parameterization"], *group)], r.get("seed", "")
        if seed in cell:
            raise UserError(f"two {r['parameterization']} runs of seed {seed} share {', '.join(keys)} = "
                            f"{', '.join(map(str, group))}; add the column that tells them apart to --keys")
        cell[seed] = float(r["val_loss"]) if r["status"] == "done" else math.inf
    return out


def seed_differences(rows, a, b, keys):
    """a's final val loss minus b's, per group of `keys` (by_seed) and per seed both ran and
    neither diverged: {group tuple: {seed: difference}}, groups sorted."""
    cells = by_seed(rows, keys)
    out = {}
    for (p, *group), mine in cells.items():
        theirs = cells.get((b, *group), {}) if p == a else {}
        diffs = {s: mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs), key=_key)
                 if math.isfinite(mine[s]) and math.isfinite(theirs[s])}
        if diffs:
            out[tuple(group)] = diffs
    return dict(sorted(out.items()))


def paired(rows, a, b, keys):
    """a's final val loss minus b's, paired by seed (seed_differences): {group tuple: (mean, se,
    n)}; se is the standard error over seeds (nan with one)."""
    return {g: (*results.mean_se(list(d.values())), len(d))
            for g, d in seed_differences(rows, a, b, keys).items()}


def paired_differences(rows, against=("mup", "sp")):
    """Per (budget, L, N) and per parameterization q of `against`: completep's loss minus q's,
    paired by seed (paired). [(budget, L, N, q, mean, se, n)], sorted by shape."""
    out = [(*group, q, *stats) for q in against
           for group, stats in paired(rows, "completep", q, ("budget", "n_layer", "n_embd")).items()]
    return sorted(out, key=lambda t: (t[:3], against.index(t[3])))


def seed_savings(rows, block_size, count=nonembedding_params):
    """The FLOP saving of completep over mup (flop_savings) read per seed, from each seed's own
    curves, over the seeds that ran every budget of that depth under both: {L: (mean, se, n)}.
    A depth whose mean-curve saving mixes seed counts across budgets gets its spread here."""
    cells = by_seed(rows)
    out = {}
    for L in sorted({c[2] for c in cells}):
        mine = [c for c in cells if c[2] == L and c[0] in ("mup", "completep")]
        seeds = set.intersection(*(set(cells[c]) for c in mine)) if mine else set()
        values = []
        for s in sorted(seeds):
            one = aggregate([r for r in rows if r.get("seed", "") == s and int(float(r["n_layer"])) == L], block_size, count)
            sav = [saving for l, _, _, saving, _ in flop_savings(one) if l == L and saving is not None]
            values += sav
        if values:
            out[L] = (*results.mean_se(values), len(values))
    return out


def _pm(mean, se, n, scale=1.0, fmt="{:+.3f}"):
    text = fmt.format(scale * mean)
    return f"{text} ({fmt.format(scale * se).lstrip('+')}, {n})" if n > 1 else f"{text} (1 seed)"


def analyze(a):
    rows = load(a.results)
    results.check_numbers(rows, ("n_layer", "n_embd"), whole=True)
    results.check_numbers(rows, ("tokens",), zero=True)  # a run that diverged at once trained none
    block = int(a.block_size)
    if block <= 0:
        raise UserError(f"--block_size={block} must be positive (the runs' context length)")
    defaults, annotations = train_defaults()
    _, base = base_settings(a, defaults, annotations)
    count = counter(block_of(base), a.head_size)
    agg = aggregate(rows, block, count)
    out = a.out or os.path.splitext(a.results)[0] + "_shapes"
    lines = ["# Compute efficiency across width/depth ratios", "",
             f"From `{a.results}`; val loss, mean over seeds; FLOPs = (6 x non-embedding params + "
             f"12 L T N) x tokens, T = {block}.", "",
             "| parameterization | budget | params | L | N | N:L | FLOPs | val loss | seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(agg, key=lambda x: PARAMS.index(x) if x in PARAMS else 9):
        for budget, L, N, ratio, flops, loss, seeds in agg[p]:
            lines.append(f"| {p} | {budget:,} | {count(L, N):,} | {L} | {N} | {ratio:.2f} | "
                         f"{flops:.3g} | {loss:.4f} | {seeds} |")
    lines += ["", "## CompleteP against mup and sp, paired by seed", "",
              "completep's final val loss minus the other's at the same shape, over the seeds both ran: "
              "mean (standard error over seeds, seeds). Negative: completep is better.", "",
              "| budget | L | N | completep - mup | completep - sp |", "|---|---|---|---|---|"]
    diffs = defaultdict(dict)
    for budget, L, N, q, mean, se, n in paired_differences(rows):
        diffs[(budget, L, N)][q] = _pm(mean, se, n)
    for (budget, L, N), d in sorted(diffs.items()):
        lines.append(f"| {budget:,} | {L} | {N} | {d.get('mup', '-')} | {d.get('sp', '-')} |")
    sav = flop_savings(agg)
    per_seed = seed_savings(rows, block, count)
    lines += ["", "## FLOP saving of completep over mup at equal loss", "",
              "The loss mup reaches at its largest budget, and the FLOPs completep needs for it, read from "
              "completep's loss-vs-FLOPs line through its budgets at the same depth: on the mean curves, and "
              "per seed on each seed's own curves (mean, standard error, seeds that ran every budget of "
              "that depth).", "",
              "| L | mup loss | completep loss (largest budget) | saving | per seed | note |",
              "|---|---|---|---|---|---|"]
    for L, target, closs, saving, note in sav:
        s = "-" if saving is None else f"{100 * saving:.1f}%"
        ps = "-" if L not in per_seed else _pm(*per_seed[L], scale=100, fmt="{:+.1f}%")
        lines.append(f"| {L} | {target:.4f} | {closs:.4f} | {s} | {ps} | {note} |")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        write_atomic(out + ".md", "\n".join(lines) + "\n")
        plot(out + ".png", agg)
    except OSError as e:
        raise UserError(f"cannot write {out}.md and {out}.png ({e.strerror or e}); choose another --out") from None
    print("\n".join(lines))
    print(f"wrote {out}.md and {out}.png")
    return 0


def compare(a):
    """`paired`: a's loss minus b's per group of --keys, paired by seed, as a markdown table."""
    rows = results.select(load(a.results), a.where, a.results)
    keys = [k for k in a.keys.split(",") if k]
    if bad := [k for k in keys if k != "budget" and k not in rows[0]]:
        raise UserError(f"--keys: {a.results} has no column {bad[0]!r}; use columns of its header or budget")
    if "budget" in keys:  # read from the out_dir, else counted from the shape
        results.check_numbers(rows, ("n_layer", "n_embd"), whole=True)
    for p in (a.a, a.b):
        if not any(r["parameterization"] == p for r in rows):
            raise UserError(f"{a.results} has no {p} runs; --a and --b name two of its parameterizations")
    lines = [f"# {a.a} against {a.b}, paired by seed", "",
             f"From `{a.results}`{' (' + ', '.join(a.where) + ')' if a.where else ''}: "
             f"{a.a}'s final val loss minus {a.b}'s in each group of equal "
             f"{', '.join(keys)}, over the seeds both ran (neither diverged): mean (standard error over "
             f"seeds, seeds), and each seed's difference. Negative: {a.a} is better.", "",
             "| " + " | ".join(keys) + f" | {a.a} - {a.b} | per seed |", "|---" * (len(keys) + 2) + "|"]
    for group, diffs in seed_differences(rows, a.a, a.b, keys).items():
        each = ", ".join(f"s{s} {d:+.3f}" for s, d in diffs.items())
        lines.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in group)
                     + f" | {_pm(*results.mean_se(list(diffs.values())), len(diffs))} | {each} |")
    text = "\n".join(lines) + "\n"
    if a.out:
        try:
            write_atomic(a.out, text)
        except OSError as e:
            raise UserError(f"cannot write {a.out} ({e.strerror or e}); choose another --out") from None
    print(text, end="")
    if a.out:
        print(f"wrote {a.out}")
    return 0


def plot(path, agg):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    colors = {"sp": "tab:gray", "mup": "tab:blue", "completep": "tab:red"}
    budgets = sorted({P0 for p in agg for P0, *_ in agg[p]})
    for p, pts in agg.items():
        ok = [t for t in pts if math.isfinite(t[5])]
        for b in budgets:
            grp = sorted(t for t in ok if t[0] == b)
            if grp:
                ax1.plot([t[3] for t in grp], [t[5] for t in grp], "o-", color=colors.get(p), ms=4,
                         label=p if b == budgets[0] else None)
        by_depth = defaultdict(list)
        for t in ok:
            by_depth[t[1]].append(t)
        for L, grp in by_depth.items():
            grp.sort(key=lambda t: t[4])
            ax2.plot([t[4] for t in grp], [t[5] for t in grp], "o-", color=colors.get(p), ms=3, alpha=0.8)
            ax2.annotate(f"L{L}", (grp[-1][4], grp[-1][5]), fontsize=6, color=colors.get(p))
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("N : L (width / depth)")
    ax1.set_ylabel("final val loss (mean over seeds)")
    ax1.set_title("loss against width/depth ratio (one line per budget)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_xscale("log")
    ax2.set_xlabel("training FLOPs")
    ax2.set_title("loss against FLOPs (one line per depth)")
    ax2.grid(alpha=0.3)
    fig.suptitle("Compute efficiency across shapes: base hyperparameters transferred, never re-tuned", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the shapes (or --dry_run to list them)")
    r.add_argument("--budgets", default="100000", help="non-embedding parameter budgets, comma-separated")
    r.add_argument("--depths", default="2,4,8,16,32")
    r.add_argument("--head_size", type=int, default=8)
    r.add_argument("--tpp", type=float, default=20, help="training tokens per non-embedding parameter")
    r.add_argument("--params", default="sp,mup,completep")
    r.add_argument("--lr", default="sp=2**-6,mup=2**-6,completep=2**-6",
                   help="each parameterization's base LR, tuned on the proxy: PARAM=VALUE,...")
    r.add_argument("--seeds", default="0")
    r.add_argument("--base_config", default="config/transfer_base.py,config/transfer_paper.py",
                   help="the proxy's settings: train.py config files, comma-separated, applied in order")
    r.add_argument("--out_root", default=os.path.join(REPO, "runs", "shapes"))
    r.add_argument("--results", help="default: <out_root>/results.csv")
    r.add_argument("--jobs", type=int, help="points at a time (default 1, or one per --gpus id)")
    r.add_argument("--gpus", help="comma list of GPU ids: each running point gets one (CUDA_VISIBLE_DEVICES)")
    r.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    r.add_argument("--dry_run", action="store_true")
    z = sub.add_parser("analyze", help="tables and figures from a results CSV")
    z.add_argument("results")
    z.add_argument("--block_size", type=int, default=128, help="context length of the runs (for FLOPs)")
    z.add_argument("--base_config", default="config/transfer_base.py,config/transfer_paper.py",
                   help="the --base_config the study ran with (its block options fix the parameter count)")
    z.add_argument("--head_size", type=int, default=8, help="the --head_size the study ran with")
    z.add_argument("--out", help="output prefix (default: next to the CSV)")
    c = sub.add_parser("paired", help="one parameterization's loss minus another's per group, paired by seed")
    c.add_argument("results")
    c.add_argument("--a", default="completep")
    c.add_argument("--b", default="mup")
    c.add_argument("--keys", default="budget,n_layer,n_embd",
                   help="results columns that define a group (budget: the P<budget> folder), comma-separated")
    c.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="keep only rows with this value (also !=, >=, <=; a value may be a power of two, "
                        "--where learning_rate=2^-6), as plot_transfer.py reads them (results.py; repeatable)")
    c.add_argument("--out", help="also write the table to this markdown file")
    a = ap.parse_args(argv)
    if a.cmd == "analyze":
        return analyze(a)
    if a.cmd == "paired":
        return compare(a)
    a.budgets, a.depths = ints(a.budgets, "budgets"), ints(a.depths, "depths")
    try:
        a.seeds = [int(s) for s in a.seeds.split(",") if s]
    except ValueError:
        raise UserError(f"--seeds={a.seeds!r} must be a comma-separated list of integers") from None
    if bad := [s for s in a.seeds if not 0 <= s < 2 ** 32]:
        raise UserError(f"--seeds: {bad[0]} must be in [0, 2**32), as train.py's seed")
    a.params = [p for p in a.params.split(",") if p]
    if bad := [p for p in a.params if p not in PARAMS]:
        raise UserError(f"unknown parameterization {bad[0]!r} in --params; use {', '.join(PARAMS)}")
    if a.head_size <= 0 or (a.jobs is not None and a.jobs < 1) or not a.seeds:
        raise UserError("--head_size, --tpp, --jobs and --seeds must be positive / non-empty")
    if not 0 < a.tpp < math.inf:  # NaN passes `<= 0`
        raise UserError(f"--tpp={a.tpp} must be a positive finite number (training tokens per parameter)")
    a.out_root = os.path.abspath(a.out_root)
    return run(a)


if __name__ == "__main__":
    run_cli(main)

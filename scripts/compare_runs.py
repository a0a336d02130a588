"""Compare groups of finished runs of a sweep, seed by seed: the final val loss of each group
(mean, spread, every seed), the paired difference against the first group on the seeds both
share, and the loss curves of every run in one figure.

    python scripts/compare_runs.py runs/module_transfer/results.csv --by module_hparams \
        --names global,searched --out experiments/module_transfer/target

A group is the set of done rows of the results CSV (scripts/sweep.py's) with one value of the
--by column (after --where KEY=VALUE keeps the rows of one cell of the other axes); --names
labels the groups in the order of their values: numbers ascending, other text shortest first
(`{}`, no module multipliers, before any set), then alphabetical; the first is the baseline.
Curves are read from each row's out_dir/metrics.jsonl (out_dir relative to --root, default the
repository). Writes
OUT.md (the table) and OUT.png (val loss at each evaluation and smoothed train loss against
tokens: each seed thin, the group's mean thick).

Exit codes: 0 written; 2 a bad argument or unreadable input (one line)."""
import argparse
import csv
import json
import math
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from util import UserError, run_cli  # noqa: E402


def read_groups(path, by, names, where=()):
    """{name: [row, ...]} of the done rows (those matching every KEY=VALUE of `where`), groups in
    the order of their value: numbers ascending, other text shortest first (so `{}`, no module
    multipliers, comes before any set of them), then alphabetical."""
    if not os.path.isfile(path):
        raise UserError(f"results file {path} does not exist; give a sweep's results.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and by not in rows[0]:
        raise UserError(f"{path} has no column {by!r}; columns: {', '.join(rows[0])}")
    for w in where:
        key, eq, value = w.partition("=")
        if not eq or (rows and key not in rows[0]):
            raise UserError(f"--where {w!r} must be KEY=VALUE with KEY a column of {path}")
        rows = [r for r in rows if r[key] == value or _num(r[key]) == _num(value)]
    groups = {}
    for r in rows:
        if r.get("status") == "done":
            groups.setdefault(r[by], []).append(r)
    if len(groups) < 2:
        raise UserError(f"{path} has {len(groups)} group(s) of done rows by {by!r}; need at least 2 to compare")
    if names and len(names) != len(groups):
        raise UserError(f"--names gives {len(names)} names for {len(groups)} groups by {by!r}")
    order = sorted(groups, key=lambda k: (0, _num(k), 0, "") if math.isfinite(_num(k)) else (1, 0.0, len(k), k))
    return {(names[i] if names else f"{by}={k}"): groups[k] for i, k in enumerate(order)}


def _num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_curves(root, row):
    """(val: [(tokens, loss)], train: [(tokens, loss)]) of a run's metrics.jsonl."""
    path = os.path.join(root, row["out_dir"], "metrics.jsonl")
    val, train = [], []
    try:
        with open(path) as f:
            for line in f:
                m = json.loads(line)
                if "val_loss" in m:
                    val.append((m["tokens"], m["val_loss"]))
                elif "loss" in m:
                    train.append((m["tokens"], m["loss"]))
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); give --root, the folder its out_dir is under") from None
    except (ValueError, KeyError):
        raise UserError(f"{path} is not a train.py metrics log (one JSON object a line)") from None
    return val, train


def stats(xs):
    xs = np.asarray(xs, dtype=float)
    sd = float(xs.std(ddof=1)) if len(xs) > 1 else math.nan
    return float(xs.mean()), sd


def table(groups, by, source):
    names = list(groups)
    seeds = {n: {int(r["seed"]): float(r["val_loss"]) for r in rows} for n, rows in groups.items()}
    lines = [f"Final val loss of each group of `{source}` (by `{by}`); sd is the sample standard deviation "
             "over seeds.", "", "| group | runs | mean | sd | min | max | per seed |", "|---|---|---|---|---|---|---|"]
    for n in names:
        v = list(seeds[n].values())
        mean, sd = stats(v)
        per = ", ".join(f"s{s}: {x:.4f}" for s, x in sorted(seeds[n].items()))
        lines.append(f"| {n} | {len(v)} | {mean:.4f} | {sd:.4f} | {min(v):.4f} | {max(v):.4f} | {per} |")
    base = names[0]
    lines += ["", f"Paired difference against `{base}` on the seeds both ran (negative: lower loss than {base}); "
              "se = sd / sqrt(pairs).", "", "| group | pairs | mean difference | sd | se | per seed |",
              "|---|---|---|---|---|---|"]
    for n in names[1:]:
        common = sorted(set(seeds[n]) & set(seeds[base]))
        d = [seeds[n][s] - seeds[base][s] for s in common]
        if not d:
            lines.append(f"| {n} | 0 | - | - | - | - |")
            continue
        mean, sd = stats(d)
        se = sd / math.sqrt(len(d)) if len(d) > 1 else math.nan
        per = ", ".join(f"s{s}: {x:+.4f}" for s, x in zip(common, d))
        lines.append(f"| {n} | {len(d)} | {mean:+.4f} | {sd:.4f} | {se:.4f} | {per} |")
    return "\n".join(lines) + "\n"


def smooth(ys, alpha=0.2):
    out, m = [], None
    for y in ys:
        m = y if m is None else (1 - alpha) * m + alpha * y
        out.append(m)
    return out


def plot(groups, root, out, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("matplotlib is not installed (pip install -r requirements.txt)") from None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    lo, hi = [math.inf, math.inf], [-math.inf, -math.inf]  # per panel: the last 80% of the runs
    for i, (name, rows) in enumerate(groups.items()):
        color = f"C{i}"
        curves = [read_curves(root, r) for r in rows]
        for k, ax in enumerate(axes):  # k = 0: val loss as evaluated; 1: train loss, smoothed
            runs = []
            for c in curves:
                if c[k]:
                    xs, ys = [x for x, _ in c[k]], [y for _, y in c[k]]
                    runs.append((xs, ys if k == 0 else smooth(ys)))
            for xs, ys in runs:
                ax.plot(xs, ys, color=color, lw=0.6, alpha=0.4)
            n = min((len(xs) for xs, _ in runs), default=0)
            if not n:
                continue
            xs, ys = runs[0][0][:n], np.mean([ys[:n] for _, ys in runs], axis=0)
            ax.plot(xs, ys, color=color, lw=2, marker="o" if k == 0 else None, ms=3,
                    label=f"{name} (mean of {len(runs)})")
            tail = [y for x, y in zip(xs, ys) if x >= xs[-1] * 0.2]
            lo[k], hi[k] = min(lo[k], min(tail)), max(hi[k], max(tail))
    for k, (ax, what) in enumerate(zip(axes, ("val loss (each evaluation)", "train loss (EMA 0.2 of the logged steps)"))):
        ax.set_xlabel("tokens")
        ax.set_ylabel(what)
        ax.legend()
        ax.grid(alpha=0.3)
        if math.isfinite(lo[k]):
            pad = 0.05 * (hi[k] - lo[k] or 1)
            ax.set_ylim(lo[k] - pad, hi[k] + pad)
            ax.set_xlim(left=0)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("results", help="a sweep's results.csv")
    ap.add_argument("--by", default="module_hparams", help="the column that names a group (default module_hparams)")
    ap.add_argument("--names", help="comma list: a name for each group, in the order of their values (see above)")
    ap.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                    help="keep only rows with this value, e.g. --where max_tokens=1048576 (repeatable)")
    ap.add_argument("--root", default=REPO, help="the folder the rows' out_dir are relative to (default the repo)")
    ap.add_argument("--out", required=True, help="output prefix: OUT.md and OUT.png")
    ap.add_argument("--title", default="", help="the figure's title")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    groups = read_groups(args.results, args.by, names, args.where)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    text = table(groups, args.by, os.path.relpath(args.results, REPO) if os.path.abspath(args.results)
                 .startswith(REPO) else args.results)
    with open(args.out + ".md", "w") as f:
        f.write(text)
    plot(groups, args.root, args.out, args.title or os.path.basename(args.out))
    print(text, end="")
    print(f"wrote {args.out}.md, {args.out}.png")
    return 0


if __name__ == "__main__":
    run_cli(main)

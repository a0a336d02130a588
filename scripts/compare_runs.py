"""Compare groups of finished runs of a sweep, seed by seed: the final val loss of each group
(mean, spread, every seed), the paired difference against the first group on the seeds both
share, and the loss curves of every run in one figure.

    python scripts/compare_runs.py runs/module_transfer/results.csv --by module_hparams \
        --names global,searched --out experiments/module_transfer/target

A group is the set of done rows of the results CSV (scripts/sweep.py's) with one value of the
--by column (after --where KEY=VALUE keeps the rows of one cell of the other axes; also !=, >=
and <=, one grammar with plot_transfer.py's, results.select); --names labels the groups in the
order of their values: numbers ascending, other text shortest first (`{}`, no module
multipliers, before any set), then alphabetical; the first is the baseline. Curves are read
from each row's out_dir/metrics.jsonl (out_dir relative to --root, default the repository).
Writes OUT.md (the table) and OUT.png (val loss at each evaluation and smoothed train loss against
tokens: each seed thin, the group's mean thick).

Exit codes: 0 written; 2 a bad argument or unreadable input (one line)."""
import argparse
import json
import math
import os
import re
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import results  # noqa: E402  (the results file: reading, checks, --where, seed statistics)
from results import number  # noqa: E402  (a results cell as a float)
from runs import UserError, regular_file, run_cli, write_atomic  # noqa: E402


def read_groups(path, by, names, where=()):
    """{name: [row, ...]} of the done rows (those matching every KEY=VALUE of `where`), groups in
    the order of their value: numbers ascending, other text shortest first (so `{}`, no module
    multipliers, comes before any set of them), then alphabetical. The file is checked as
    results.read_csv checks it; a done row needs an integer seed and a finite val_loss, and
    a seed a group ran twice (another axis left unfiltered, or a repeated row) is refused unless
    the two rows end at the same loss (the same run recorded twice: kept once)."""
    _, rows = results.read_csv(path, ("status", "seed", "val_loss", "out_dir", by))
    rows = results.select(rows, where, path, empty_ok=True)  # too few groups left is said below
    groups, seen = {}, {}
    for r in rows:
        if r["status"] != "done":
            continue
        if not (re.fullmatch(r"\d+", r["seed"]) and math.isfinite(number(r["val_loss"]))):
            raise UserError(f"{results.located(r)}: a done run needs an integer seed and a finite val_loss, "
                            f"not {r['seed']!r} and {r['val_loss']!r}; repair or delete that row")
        first = seen.setdefault((r[by], int(r["seed"])), r)
        if first is r:
            groups.setdefault(r[by], []).append(r)
        elif number(first["val_loss"]) != number(r["val_loss"]):
            raise UserError(f"{path} lines {first.line} and {r.line} are both seed {r['seed']} of {by}={r[by]} but end "
                            f"at {first['val_loss']} and {r['val_loss']}: keep one cell of the other axes with "
                            "--where KEY=VALUE, or delete the row that should not count")
    if len(groups) < 2:
        raise UserError(f"{path} has {len(groups)} group(s) of done rows by {by!r}; need at least 2 to compare")
    if names and len(names) != len(groups):
        raise UserError(f"--names gives {len(names)} names for {len(groups)} groups by {by!r}")
    order = sorted(groups, key=lambda k: (0, number(k), 0, "") if math.isfinite(number(k)) else (1, 0.0, len(k), k))
    return {(names[i] if names else f"{by}={k}"): groups[k] for i, k in enumerate(order)}


def _number(v):
    """A metrics value as a float: null (train.py's non-finite) is nan; anything else not a number None."""
    if v is None:
        return math.nan
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def read_curves(root, row):
    """(val: [(tokens, loss)], train: [(tokens, loss)]) of a run's metrics.jsonl. A line that is
    not a record (a write torn by a kill; a resumed run appends after it) is skipped with a
    note naming it, as runs.append_line expects of a reader; a file with no record at all (a
    binary or other file) is refused."""
    path = os.path.join(root, row["out_dir"], "metrics.jsonl")
    val, train, torn = [], [], []
    try:
        with open(regular_file(path, "metrics log"), "rb") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); give --root, the folder its out_dir is under") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            m = json.loads(line.decode("utf-8"))
        except ValueError:  # also UnicodeDecodeError
            m = None
        if not isinstance(m, dict):
            torn.append(i)
            continue
        key = "val_loss" if "val_loss" in m else "loss" if "loss" in m else None
        if key is None:
            continue  # a record of another kind
        t, loss = _number(m["tokens"]) if "tokens" in m else None, _number(m[key])
        if t is None or loss is None:
            torn.append(i)
            continue
        (val if key == "val_loss" else train).append((t, loss))
    if torn and not (val or train):
        raise UserError(f"{path} is not a train.py metrics log (no line is a JSON record with tokens and a "
                        "loss); point --root at the runs' folder, or rerun that run")
    if torn:
        shown = ", ".join(map(str, torn[:5])) + (", ..." if len(torn) > 5 else "")
        print(f"note: skipped {len(torn)} unreadable line(s) of {path} (line {shown}: a torn write?)", file=sys.stderr)
    return val, train


def table(groups, by, source):
    names = list(groups)
    seeds = {n: {int(r["seed"]): float(r["val_loss"]) for r in rows} for n, rows in groups.items()}
    lines = [f"Final val loss of each group of `{source}` (by `{by}`); sd is the sample standard deviation "
             "over seeds.", "", "| group | runs | mean | sd | min | max | per seed |", "|---|---|---|---|---|---|---|"]
    for n in names:
        v = list(seeds[n].values())
        mean, sd = results.mean_sd(v)
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
        mean, sd = results.mean_sd(d)
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


def plot(groups, curves, out, title):
    """The figure; curves = {group name: [read_curves of each row]}."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("matplotlib is not installed (pip install -r requirements.txt)") from None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    lo, hi = [math.inf, math.inf], [-math.inf, -math.inf]  # per panel: the last 80% of the runs
    for i, name in enumerate(groups):
        color = f"C{i}"
        for k, ax in enumerate(axes):  # k = 0: val loss as evaluated; 1: train loss, smoothed
            runs = []
            for c in curves[name]:
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
                    help=results.WHERE_HELP)
    ap.add_argument("--root", default=REPO, help="the folder the rows' out_dir are relative to (default the repo)")
    ap.add_argument("--out", required=True, help="output prefix: OUT.md and OUT.png")
    ap.add_argument("--title", default="", help="the figure's title")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    groups = read_groups(args.results, args.by, names, args.where)
    curves = {name: [read_curves(args.root, r) for r in rows] for name, rows in groups.items()}  # all read first
    text = table(groups, args.by, os.path.relpath(args.results, REPO) if os.path.abspath(args.results)
                 .startswith(REPO) else args.results)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_atomic(args.out + ".md", text)
        plot(groups, curves, args.out, args.title or os.path.basename(args.out))
    except OSError as e:
        raise UserError(f"cannot write {args.out}.md and {args.out}.png ({e.strerror or e}); choose another --out") from None
    print(text, end="")
    print(f"wrote {args.out}.md, {args.out}.png")
    return 0


if __name__ == "__main__":
    run_cli(main)

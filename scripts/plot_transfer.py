"""
Read a sweep's results CSV (scripts/sweep.py) and show whether the optimal hyperparameter
transfers: loss against the hyperparameter (log2 axis), one curve per depth or width (mean
over seeds, min..max band), one panel per parameterization, the optimum marked; plus a
markdown table of the optima and the drift = slope of log2(optimum) against log2(multiplier).

    python scripts/plot_transfer.py experiments/depth_transfer/results.csv --out /tmp/depth_lr
    python scripts/plot_transfer.py runs/depth_init_std/results.csv    # x = init_std, found itself
    python scripts/plot_transfer.py runs/batch_duration/results.csv --by global_batch_size \
        --where max_tokens=131072                                       # one arm of a batch/duration sweep
    python scripts/plot_transfer.py runs/a/results.csv runs/b/results.csv --x learning_rate --by init_std

Curves may be by depth, width, global_batch_size, max_tokens or init_std (a joint LR x init grid,
read as LR curves, one per init); the drift is against log2 of the multiplier relative to the
smallest value (the base). Several results files are read as one sweep (a grid that a later
sweep file completed); a point two of them ran is kept once, and must end at the same loss in
both, or the files ran different settings outside their columns and are refused. The same
holds within one file: a point repeated there (every setting column equal, seed included) is
the same run recorded twice if it ends at the same loss, and is refused otherwise, since a
repeated seed is not a second seed. A results file that is not one (binary, empty, no
header), a torn line, or a done row without a finite loss is refused in one line naming it.
--where KEY=VALUE keeps the rows with that value, so a sweep whose points move batch and horizon along separate arms is read one arm
at a time; KEY!=VALUE, KEY>=VALUE and KEY<=VALUE drop rows (--where n_layer>=4: the drift from
4 layers on, the smallest depth left being its base; --where seed!=2). A value may be written as
a power of two, as the run directories name it: --where 'learning_rate!=2^-6.5' drops the
half-octave points of a merged octave and half-octave sweep.

With two or more seeds the table also gives the seed uncertainty of the drift and of each
curve's optimum: each seed's own fit, and a bootstrap over seeds (sd, and the 2.5-97.5%
interval of the slope). A last table gives what the transfer costs on the grid: the loss at the
base curve's best grid value minus each curve's best, with the paired seed standard error.
A curve whose points ran different seeds (a seed stopped part-way) averages different seeds at
different x; it is flagged in the table (seeds "1-2") and on stderr, not dropped or trimmed.

The optimum of a curve is the vertex of the parabola through its best point and the two
neighbours in log2(x). Where that is not possible it is the best grid point, flagged:
'edge-low'/'edge-high' (the best point ends the grid: the optimum may lie beyond it),
'next-to-diverged' (the next point diverged: the optimum is at most one grid step higher),
'flat' (the three points do not curve upwards: a safeguard), 'clamped' (the least-squares
vertex of a wider window fell outside its points and was moved to the nearest one). A
flagged curve still enters the drift, at its best grid point or clamped vertex; the table
counts them; the figure's title names every curve whose optimum is such a bound ("optimum at
grid edge: a bound, for sp n_layer=2 (low)"; also next to a diverged point), so the figure
cannot be read as a fitted optimum without the table. A point where any seed diverged
(non-finite loss) counts as diverged; it is drawn as an x on the panel's top edge. results.py
reads and checks the files and owns the --where grammar.
"""
import argparse
import math
import os
import sys
import textwrap
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from results import WHERE_HELP, check_numbers, fit_optimum, load_all, mean_se, number, select  # noqa: E402  (its owner)
from runs import UserError, run_cli, write_atomic  # noqa: E402
from util import signed  # noqa: E402

X_CHOICES = ("learning_rate", "init_std", "output_mult")
BY_CHOICES = ("n_layer", "n_embd", "global_batch_size", "max_tokens", "init_std")


def varying(rows, choices, what, not_=()):
    hits = [k for k in choices if k not in not_ and k in rows[0] and len({number(r[k]) for r in rows}) > 1]
    if len(hits) != 1:
        raise UserError(f"cannot tell the {what} from the columns ({', '.join(hits) or 'none varies'}); "
                        f"pass --{'x' if what == 'hyperparameter' else 'by'}")
    return hits[0]


def aggregate(rows, x, by, metric):
    """{parameterization: {by value: [(x, mean, lo, hi, n, diverged, seeds)] sorted by x}}, seeds
    the sorted seed labels that ran the point (n rows; a curve whose points ran different seeds
    averages different seeds at different x: analyse() reports it)."""
    cells = defaultdict(list)
    for r in rows:
        loss = number(r[metric]) if r["status"] == "done" else math.inf
        cells[(r["parameterization"], number(r[by]), number(r[x]))].append((r.get("seed", ""), loss))
    out = defaultdict(lambda: defaultdict(list))
    for (p, b, xv), runs in cells.items():
        a = np.array([loss for _, loss in runs])
        bad = not np.all(np.isfinite(a))
        out[p][b].append((xv, math.inf if bad else a.mean(), a.min(), a.max(), len(a), bad,
                          tuple(sorted({s for s, _ in runs}))))
    for p in out:
        for b in out[p]:
            out[p][b].sort()
    return out


def drift(by_values, log2_opts):
    """Least-squares slope of log2(optimum) against log2(multiplier); nan with < 2 points."""
    if len(by_values) < 2:
        return math.nan
    return float(np.polyfit(np.log2(by_values), log2_opts, 1)[0])


def analyse(agg, window=1):
    """{parameterization: dict(rows=[(by, seeds, fit)], slope, n_edge, uneven)}. seeds: how many
    seeds each point of the curve averages, a number, or "min-max" ("n (other seeds)" if the
    counts agree) where its points ran different seed sets (a partly run seed: the mean curve
    then mixes seeds); uneven lists those curves' by values."""
    result = {}
    for p, curves in agg.items():
        fits, uneven = [], []
        for b, pts in sorted(curves.items()):
            fit = fit_optimum([math.log2(t[0]) for t in pts], [t[1] for t in pts], window)
            counts = [t[4] for t in pts]
            if len({t[6] for t in pts}) > 1:
                uneven.append(b)
                lo, hi = min(counts), max(counts)
                fits.append((b, f"{lo}-{hi}" if lo != hi else f"{lo} (other seeds)", fit))
            else:
                fits.append((b, max(counts), fit))
        usable = [(b, f) for b, _, f in fits if f is not None]
        slope = drift([b for b, _ in usable], [f["log2_opt"] for _, f in usable])
        result[p] = dict(rows=fits, slope=slope, n_edge=sum(bool(f["note"]) for _, f in usable), uneven=uneven)
    return result


def seed_uncertainty(rows, x, by, metric, window=1, n_boot=500, rng_seed=0):
    """{parameterization: dict(per_seed={seed: slope}, sd, lo, hi, n_seeds, curves)}: the drift of
    each seed's own curves, and a bootstrap over seeds (resample the seeds with replacement,
    average their curves, fit, take the slope; sd and the 2.5-97.5% interval of n_boot
    resamples). The same for each curve's optimum: curves = {by value: dict(per_seed={seed:
    (log2 opt, note)}, sd)}, sd over the resamples' fitted log2 optima. Empty when fewer than 2
    seeds ran."""
    by_seed = defaultdict(list)
    for r in rows:
        by_seed[r.get("seed", "")].append(r)
    seeds = sorted(by_seed, key=lambda s: (number(s), s))
    if len(seeds) < 2:
        return {}
    per_seed = {s: analyse(aggregate(by_seed[s], x, by, metric), window) for s in seeds}
    rng = np.random.default_rng(rng_seed)
    boots = defaultdict(list)
    curve_boots = defaultdict(lambda: defaultdict(list))
    for _ in range(n_boot):
        pick = rng.choice(len(seeds), size=len(seeds), replace=True)
        res = analyse(aggregate([r for i in pick for r in by_seed[seeds[i]]], x, by, metric), window)
        for p, v in res.items():
            if math.isfinite(v["slope"]):
                boots[p].append(v["slope"])
            for b, _, fit in v["rows"]:
                if fit is not None:
                    curve_boots[p][b].append(fit["log2_opt"])

    def sd(values):
        return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan

    out = {}
    for p in {p for res in per_seed.values() for p in res}:
        b = np.array(boots.get(p, []))
        curves = {}
        for v in sorted({v for s in seeds if p in per_seed[s] for v, _, _ in per_seed[s][p]["rows"]}):
            fits = {s: next((f for b_, _, f in per_seed[s][p]["rows"] if b_ == v), None)
                    for s in seeds if p in per_seed[s]}
            curves[v] = dict(per_seed={s: (f["log2_opt"], f["note"]) for s, f in fits.items() if f is not None},
                             sd=sd(curve_boots[p][v]))
        out[p] = dict(per_seed={s: per_seed[s][p]["slope"] for s in seeds if p in per_seed[s]},
                      sd=sd(b), lo=float(np.percentile(b, 2.5)) if len(b) else math.nan,
                      hi=float(np.percentile(b, 97.5)) if len(b) else math.nan, n_seeds=len(seeds),
                      curves=curves)
    return out


def transfer_cost(rows, x, by, metric):
    """What using the base curve's best grid value at every other curve costs: {parameterization:
    [(by value, x0, xb, cost, se)]}, x0 the best grid x of the base curve (the smallest by value)
    and xb that of the curve, both on the mean over seeds; cost = mean loss at x0 - mean loss at
    xb (inf where a seed diverged at x0); se the standard error of the per-seed paired
    difference (nan with one seed). The transfer claim in numbers, on the grid, no fit."""
    cells = defaultdict(dict)
    for r in rows:
        loss = number(r[metric]) if r["status"] == "done" else math.inf
        cells[(r["parameterization"], number(r[by]), number(r[x]))][r.get("seed", "")] = loss
    def best_x(pts):
        finite = [t for t in pts if math.isfinite(t[1])]
        return min(finite, key=lambda t: t[1])[0] if finite else None

    agg = aggregate(rows, x, by, metric)
    out = {}
    for p, curves in agg.items():
        base = min(curves)
        x0 = best_x(curves[base])
        out[p] = []
        for b in sorted(curves):
            xb = best_x(curves[b])
            if x0 is None or xb is None:
                continue
            at0, atb = cells[(p, b, x0)], cells[(p, b, xb)]
            seeds = sorted(set(at0) & set(atb))
            if not seeds:  # the base's best x was not run at this curve
                continue
            d = np.array([at0[k] - atb[k] for k in seeds])
            if not np.all(np.isfinite(d)):
                out[p].append((b, x0, xb, math.inf, math.nan))
                continue
            out[p].append((b, x0, xb, *mean_se(d)))
    return out


ORDER = ["sp", "mup", "depth_mup", "completep"]


def _sorted_params(ps):
    return sorted(ps, key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p))


def mixed_curves(res, by):
    """The curves of analyse()'s result whose points ran different seeds, as 'param by=value'."""
    return [f"{p} {by}={b:g}" for p in _sorted_params(res) for b in res[p]["uneven"]]


def write_table(path, res, x, by, metric, source, window=1, unc=None, cost=None):
    base = min(b for p in res for b, _, _ in res[p]["rows"])
    lines = [f"# Optimal {x} per ({by}, parameterization)", "",
             f"From `{source}`; {metric}, mean over seeds. Optimum: vertex of the parabola "
             + ("through the best grid point and its two neighbours" if window == 1 else
                f"fitted (least squares) to the best grid point and up to {window} finite neighbours a side")
             + f" in log2({x}); a note marks a best grid point that could not be fitted "
             "(see scripts/plot_transfer.py).", ""]
    mixed = mixed_curves(res, by)
    if mixed:
        lines += [f"**Seeds differ between the points of {len(mixed)} curve(s)** ({', '.join(mixed)}; their "
                  "seeds column gives the fewest and most seeds a point averages): their mean curves "
                  "mix seeds, so a partly run seed can move their optimum; `--where seed=S` reads the "
                  "complete seeds alone.", ""]
    if unc:
        lines += ["With several seeds, each curve's optimum also gets its seed uncertainty: the sd of "
                  "the fitted log2 optimum over the bootstrap resamples of the seeds (see below), and "
                  "each seed's own fit (* marks one that could not be fitted, e.g. at the grid's "
                  "edge: its best grid point is shown).", ""]
    lines += [f"| parameterization | {by} | seeds | log2 opt | opt {x} | best grid | {metric} at opt | note |"
              + (" bootstrap sd of log2 opt | per-seed log2 opt |" if unc else ""),
              "|---|---|---|---|---|---|---|---|" + ("---|---|" if unc else "")]
    for p in _sorted_params(res):
        for b, seeds, f in res[p]["rows"]:
            extra = ""
            if unc and p in unc:
                c = unc[p]["curves"].get(b)
                if c is None:
                    extra = " - | - |"
                else:
                    per = ", ".join(f"s{s_} {v:.2f}{'*' if note else ''}" for s_, (v, note) in c["per_seed"].items())
                    extra = f" {c['sd']:.2f} | {per} |"
            bl = f"{b:g} (x{b / base:g})"
            if f is None:
                lines.append(f"| {p} | {bl} | {seeds} | - | - | - | - | all diverged |" + extra)
            else:
                lines.append(f"| {p} | {bl} | {seeds} | {f['log2_opt']:.2f} | {2 ** f['log2_opt']:.3g} | "
                             f"2^{f['best']:g} | {f['loss_opt']:.4f} | {f['note']} |" + extra)
    lines += ["", f"## Drift: slope of log2(optimal {x}) against log2({by} / {base:g})", "",
              "| parameterization | slope | curves | of which edge/flagged |", "|---|---|---|---|"]
    for p in _sorted_params(res):
        r = res[p]
        n = sum(f is not None for _, _, f in r["rows"])
        lines.append(f"| {p} | {signed(r['slope'])} | {n} | {r['n_edge']} |")
    if unc:
        n_seeds = next(iter(unc.values()))["n_seeds"]
        lines += ["", f"## Seed uncertainty of the drift ({n_seeds} seeds)", "",
                  "Per seed: the drift of that seed's curves alone. Bootstrap: the seeds resampled with "
                  "replacement, their curves averaged and fitted again (500 resamples); sd and the 2.5-97.5% "
                  "interval of the slope. With few seeds the bootstrap has few distinct resamples: read the "
                  "interval as a spread, not a confidence level.", "",
                  "| parameterization | slope (mean curve) | per seed | bootstrap sd | 2.5-97.5% |", "|---|---|---|---|---|"]
        for p in _sorted_params(unc):
            u = unc[p]
            per = ", ".join(f"s{s}: {signed(v)}" for s, v in u["per_seed"].items())
            lines.append(f"| {p} | {signed(res[p]['slope'])} | {per} | {u['sd']:.2f} | "
                         f"{signed(u['lo'])} .. {signed(u['hi'])} |")
    if cost:
        lines += ["", f"## Cost of transferring the base curve's best {x}", "",
                  f"The base curve's ({by} {base:g}) best grid {x}, used unchanged at each {by}: its {metric} "
                  f"minus that curve's best grid point's, both means over seeds, no fit; se: standard "
                  "error of the per-seed paired difference.", "",
                  f"| parameterization | {by} | base best {x} | best {x} here | cost | se |", "|---|---|---|---|---|---|"]
        for p in _sorted_params(cost):
            for b, x0, xb, c, se in cost[p]:
                cs = "diverged" if math.isinf(c) else f"{c:.3f}"
                lines.append(f"| {p} | {b:g} | 2^{math.log2(x0):g} | 2^{math.log2(xb):g} | {cs} | "
                             f"{'-' if math.isnan(se) else f'{se:.3f}'} |")
    write_atomic(path, "\n".join(lines) + "\n")


def legend_entries(axes, order):
    """Every panel's curves, each label once, in the given label order: a curve that only a later
    panel has (a width run for one parameterization only) still gets its legend entry."""
    seen = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    labels = [label for label in order if label in seen]
    return [seen[label] for label in labels], labels


EDGE_NOTES = {"edge-low": "low", "edge-high": "high", "next-to-diverged": "next to a diverged point"}


def edge_note(res, by):
    """The part of a figure's title that says which curves' optima sit at a grid edge (their best
    point ends the grid, or its next point diverged): there the optimum is a bound, not a fit.
    '' when every optimum is inside its grid."""
    hits = []
    for p in _sorted_params(res):
        edges = [f"{b:g} ({EDGE_NOTES[f['note']]})" for b, _, f in res[p]["rows"]
                 if f is not None and f["note"] in EDGE_NOTES]
        if edges:
            hits.append(f"{p} {by}={', '.join(edges)}")
    return f"(optimum at grid edge: a bound, for {'; '.join(hits)})" if hits else ""


def figure_title(title, res, by):
    """The figure's title: the given one, the legend of the marks, and edge_note where it applies."""
    note = edge_note(res, by)
    return title + (f" {note}" if note else "") + "   (star: fitted optimum, x: diverged)"


def plot(path, agg, res, x, by, metric, title, ymax=None):
    """Draw the figure to `path`; returns its title (figure_title)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    params = _sorted_params(agg)
    fig, axes = plt.subplots(1, len(params), figsize=(3.8 * len(params) + 1.4, 4.0), sharey=True,
                             squeeze=False, layout="constrained")
    finite = [t[1] for p in agg for b in agg[p] for t in agg[p][b] if math.isfinite(t[1])]
    stars = [f["loss_opt"] for p in res for _, _, f in res[p]["rows"] if f is not None]
    lo, hi = min(finite + stars), max(finite)  # every fitted optimum inside the axes
    hi = min(hi, ymax) if ymax else hi
    top = hi + 0.05 * (hi - lo + 1e-9)
    bys = sorted({b for p in agg for b in agg[p]})
    colors = {b: plt.cm.viridis(i / max(1, len(bys) - 1) * 0.9) for i, b in enumerate(bys)}
    names = {b: f"{by}={b:g} (x{b / bys[0]:g})" for b in bys}
    for ax, p in zip(axes[0], params):
        fits = {b: f for b, _, f in res[p]["rows"]}
        for b, pts in sorted(agg[p].items()):
            ok = [t for t in pts if math.isfinite(t[1])]
            xs = [t[0] for t in ok]
            ax.plot(xs, [t[1] for t in ok], "o-", ms=3, color=colors[b], label=names[b])
            ax.fill_between(xs, [t[2] for t in ok], [t[3] for t in ok], color=colors[b], alpha=0.2, lw=0)
            bad = [t[0] for t in pts if not math.isfinite(t[1])]
            ax.plot(bad, [top] * len(bad), "x", color=colors[b], ms=6)
            f = fits.get(b)
            if f is not None:
                ax.plot([2 ** f["log2_opt"]], [f["loss_opt"]], "*", ms=13, color=colors[b],
                        mec="k", mew=0.6, zorder=5)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{p}  (drift {signed(res[p]['slope'])})")
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} (mean over seeds)")
    axes[0][0].set_ylim(lo - 0.05 * (hi - lo + 1e-9), top + 0.02 * (hi - lo + 1e-9))
    handles, labels = legend_entries(axes[0], [names[b] for b in bys])
    fig.legend(handles, labels, loc="outside right center", fontsize=8)  # clear of the title
    # wrapped to the figure's width: a one-panel figure cannot hold a long title on one line
    text = figure_title(title, res, by)
    fig.suptitle("\n".join(textwrap.wrap(text, width=int(13 * (3.8 * len(params) + 1.4)))), fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+",
                    help="a results CSV written by scripts/sweep.py; several are read as one sweep (a point "
                         "two of them ran is kept once, and must end at the same loss in both)")
    ap.add_argument("--x", choices=X_CHOICES, help="the swept hyperparameter (default: the one that varies)")
    ap.add_argument("--by", choices=BY_CHOICES, help="one curve per value (default: the one that varies)")
    ap.add_argument("--metric", default="val_loss", choices=("val_loss", "train_loss", "best_val_loss"))
    ap.add_argument("--window", type=int, default=1,
                    help="neighbours a side of the best point in the parabola fit (default 1: three points)")
    ap.add_argument("--ymax", type=float, help="clip the loss axis here (the region near the optima)")
    ap.add_argument("--title", help="figure title (default: the sweep's name, the metric and the axes)")
    ap.add_argument("--out", help="output prefix: writes PREFIX.png and PREFIX.md (default: next to the CSV)")
    ap.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                    help=WHERE_HELP + "; the smallest value left is the base of the drift")
    args = ap.parse_args(argv)
    if args.window < 1:
        raise UserError(f"--window {args.window} must be at least 1")
    source = " + ".join(args.results)
    rows = select(load_all(args.results, args.metric), args.where, source)
    x = args.x or varying(rows, X_CHOICES, "hyperparameter", not_=(args.by,))
    by = args.by or varying(rows, BY_CHOICES, "curve variable", not_=(x,))
    if by == x:
        raise UserError(f"--x and --by are both {x}; the curves need another variable")
    for k in (x, by, args.metric, "parameterization"):
        if any(k not in r for r in rows):
            raise UserError(f"{source} has no column {k!r}" + (" in every file" if len(args.results) > 1 else ""))
    check_numbers(rows, (x, by))  # both enter log2: a cell that is not a positive number would be nan
    # Rows of one parameterization that differ in another setting column would be averaged as if
    # they were seeds.
    also = sorted({k for k in BY_CHOICES + X_CHOICES if k not in (x, by)
                   for p in {r["parameterization"] for r in rows}
                   if len({r.get(k) for r in rows if r["parameterization"] == p}) > 1})
    if also:
        raise UserError(f"{', '.join(also)} also varies in these rows; keep one value with --where KEY=VALUE")
    agg = aggregate(rows, x, by, args.metric)
    res = analyse(agg, args.window)
    out = args.out or os.path.splitext(args.results[0])[0] + f"_{x}"
    unc = seed_uncertainty(rows, x, by, args.metric, args.window)
    names = list(dict.fromkeys(r["sweep"] for r in rows if r.get("sweep"))) or \
        [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in args.results]
    sweep_name = " + ".join(names)
    title = args.title or f"{sweep_name}: {args.metric} against {x}, one curve per {by}"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        write_table(out + ".md", res, x, by, args.metric, source, args.window, unc,
                    transfer_cost(rows, x, by, args.metric))
        plot(out + ".png", agg, res, x, by, args.metric, title, args.ymax)
    except OSError as e:
        raise UserError(f"cannot write {out}.md and {out}.png ({e.strerror or e}); choose another --out") from None
    for p in _sorted_params(res):
        opts = ", ".join(f"{b:g}: 2^{f['log2_opt']:.2f}{' (' + f['note'] + ')' if f['note'] else ''}"
                         for b, _, f in res[p]["rows"] if f is not None)
        spread = (f" (seeds: {', '.join(signed(v) for v in unc[p]['per_seed'].values())}; bootstrap sd "
                  f"{unc[p]['sd']:.2f})") if p in unc else ""
        print(f"{p:10s} drift {signed(res[p]['slope'])}{spread}   optimum by {by}: {opts}")
    mixed = mixed_curves(res, by)
    if mixed:
        print(f"warning: the points of {', '.join(mixed)} ran different seeds, so their mean curves mix seeds "
              "(a partly run seed?); --where seed=S reads the complete seeds alone", file=sys.stderr)
    print(f"wrote {out}.png and {out}.md")
    return 0


if __name__ == "__main__":
    run_cli(main)

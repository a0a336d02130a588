"""
Read a sweep's results CSV (scripts/sweep.py) and show whether the optimal hyperparameter
transfers: loss against the hyperparameter (log2 axis), one curve per depth or width (mean
over seeds, min..max band), one panel per parameterization, the optimum marked; plus a
markdown table of the optima and the drift = slope of log2(optimum) against log2(multiplier).

    python scripts/plot_transfer.py runs/depth_lr/results.csv --out experiments/depth_transfer/depth_lr
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
counts them. A point where any seed diverged (non-finite
loss) counts as diverged; it is drawn as an x on the panel's top edge.
"""
import argparse
import csv
import io
import math
import os
import re
import sys
import textwrap
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this folder, also when imported
import sweep  # noqa: E402
from runs import UserError, regular_file, run_cli, write_atomic  # noqa: E402
from util import signed  # noqa: E402

X_CHOICES = ("learning_rate", "init_std", "output_mult")
BY_CHOICES = ("n_layer", "n_embd", "global_batch_size", "max_tokens", "init_std")
# The columns that name a run's outcome or where it ran, not its settings (the sweep's name and the
# outcome columns sweep.py writes): two rows equal in every other column are the same point run
# twice (two results files read together).
OUTCOME = ("sweep", *sweep.OUTCOME)


# A results file or argument this script cannot use: one line, exit 2 (the repository's one
# error class, runs.UserError).


def _num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


class Row(dict):
    """A results row that knows where it was read (its file and line), so that a message about
    it can name the line to repair."""
    file, line = "", 0


def where(r):
    return f"{r.file} line {r.line}" if isinstance(r, Row) else "a results row"


def read_csv(path, required, make):
    """(header, [Row]) of a CSV that scripts/sweep.py (or `make`) wrote. Anything else is one
    line, exit 2, not a traceback or a silently short table: a path that is missing or not a
    regular file (a FIFO would block), text that is not UTF-8 (a binary file), no header with
    the `required` columns (an empty, header-less or other file), a column named twice, or a
    line whose fields do not match the header (a torn or hand-edited line)."""
    if not os.path.exists(path):
        raise UserError(f"results file {path} does not exist; run {make} first")
    regular_file(path, "results file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UserError(f"cannot read results file {path} ({e.strerror or e}); make it readable") from None
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise UserError(f"results file {path} is not UTF-8 text (a binary file?); give the results CSV {make} writes")
    if not text.strip():
        raise UserError(f"results file {path} is empty; run {make} (it writes a header and a row per finished point)")
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        header = next(reader)
        missing = [k for k in required if k not in header]
        if missing:
            raise UserError(f"{path} has no column {', '.join(map(repr, missing))} (its first line: "
                            f"{','.join(header)[:120]}); give a results CSV with its header, as {make} writes it")
        if len(set(header)) < len(header):
            twice = next(k for k in header if header.count(k) > 1)
            raise UserError(f"{path} names the column {twice!r} twice in its header; repair the header")
        for fields in reader:
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                raise UserError(f"{path} line {reader.line_num} has {len(fields)} fields where the header has "
                                f"{len(header)} (a torn or hand-edited line); repair or delete that line")
            r = Row(zip(header, fields))
            r.file, r.line = path, reader.line_num
            rows.append(r)
    except csv.Error as e:
        raise UserError(f"{path} line {reader.line_num} is not CSV ({e}); repair or delete that line") from None
    return header, rows


def check_numbers(rows, columns, whole=False, zero=False):
    """Every row has each of `columns` as a finite number above zero (zero: at least zero;
    whole: an integer). A cell that is not would enter a log2, a mean or a key as nan, silently."""
    for k in columns:
        if any(k not in r for r in rows):
            raise UserError(f"{getattr(next(r for r in rows if k not in r), 'file', '') or 'the results'} has no column {k!r}")
        for r in rows:
            v = _num(r[k])
            if not (math.isfinite(v) and (v >= 0 if zero else v > 0)) or (whole and v != int(v)):
                kind = ("a whole number" if whole else "a number") + (" >= 0" if zero else " above 0")
                raise UserError(f"{where(r)}: {k} is {r[k]!r}, not {kind}; repair or delete that row")


def load(path, make="python scripts/sweep.py SWEEP_FILE", metric="val_loss", distinct=()):
    """The finished (done or diverged) rows of a results CSV; `make` is the command that writes
    it. A done row's `metric` must be a finite number (it is the result). A point repeated in
    the file (equal in every setting column, seed included, and in `distinct`, outcome columns
    that also tell points apart) is kept once or refused: see drop_repeats."""
    header, rows = read_csv(path, ("parameterization", "status", metric), make)
    rows = [r for r in rows if r["status"] in sweep.FINISHED]
    if not rows:
        raise UserError(f"{path} holds no finished runs yet")
    for r in rows:
        if r["status"] == "done" and not math.isfinite(_num(r[metric])):
            raise UserError(f"{where(r)} is a done run whose {metric} is {r[metric]!r}, not a finite number; "
                            "repair that row (its out_dir's final.json holds the result) or delete it")
    return drop_repeats(rows, [k for k in header if k not in OUTCOME or k in distinct], metric)


def drop_repeats(rows, keys, metric="val_loss"):
    """rows without repeats: a row equal to an earlier one in `keys` (the setting columns, seed
    included) is the same point run again. Ending the same (status, and the metric of a done
    run) it is the same run recorded twice (or rerun to the bit) and is kept once; ending
    elsewhere it is refused: averaged, it would count one seed twice (one file) or mix two
    experiments (several files that set other settings outside their columns)."""
    def outcome(r):
        return r["status"], _num(r[metric]) if r["status"] == "done" else None

    out, seen = [], {}
    for r in rows:
        first = seen.setdefault(tuple(r.get(k) for k in keys), r)
        if first is r:
            out.append(r)
        elif outcome(first) != outcome(r):
            ends = " and ".join(r_[metric] if r_["status"] == "done" else r_["status"] for r_ in (first, r))
            if isinstance(r, Row) and isinstance(first, Row) and first.file == r.file:
                point = ", ".join(f"{k}={r[k]}" for k in keys)
                raise UserError(f"{r.file} lines {first.line} and {r.line} are the same point ({point}) but end at {ends}: a "
                                "repeated seed is not a second seed; delete the row that should not count, or "
                                "rerun that point under another seed")
            raise UserError(f"{where(first)} and {where(r)} have the same settings columns but end at {ends}: "
                            "those results files ran different settings outside their columns; read them one at a time")
    return out


def load_all(paths, metric="val_loss"):
    """The finished rows of one or more results CSVs, read as one sweep. A point that two files
    both ran (equal in every setting column) is kept once if its losses agree to the bit, and is
    an error if they differ: the files' settings then differ outside their columns (another base
    config), and reading them together would mix two experiments."""
    files = [load(path, metric=metric) for path in paths]
    if len(files) == 1:
        return files[0]
    # keyed on the setting columns every file has: a column one file adds (another swept key)
    # cannot hide a repeat, and a repeat that differs in it ends at another loss and is refused
    common = set.intersection(*(set(rows[0]) for rows in files)) - set(OUTCOME)
    return drop_repeats([r for rows in files for r in rows], [k for k in files[0][0] if k in common], metric)


def varying(rows, choices, what, not_=()):
    hits = [k for k in choices if k not in not_ and k in rows[0] and len({_num(r[k]) for r in rows}) > 1]
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
        loss = _num(r[metric]) if r["status"] == "done" else math.inf
        cells[(r["parameterization"], _num(r[by]), _num(r[x]))].append((r.get("seed", ""), loss))
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


def fit_optimum(log2x, loss, window=1):
    """The optimum of one curve: dict(log2_opt, loss_opt, best, note); None if all diverged.
    log2x ascending; loss may hold inf for diverged points. window: neighbours a side in the
    fit (1: the best point and its two neighbours)."""
    loss = np.asarray(loss, dtype=float)
    finite = np.isfinite(loss)
    if not finite.any():
        return None
    i = int(np.nanargmin(np.where(finite, loss, np.nan)))
    res = dict(log2_opt=log2x[i], loss_opt=loss[i], best=log2x[i], note="")
    if i == 0:
        res["note"] = "edge-low"
    elif i == len(loss) - 1:
        res["note"] = "edge-high"
    elif not finite[i + 1]:
        res["note"] = "next-to-diverged"
    elif not finite[i - 1]:
        res["note"] = "edge-low"  # below it everything diverged: odd, but not a fit
    else:
        lo, hi = i - 1, i + 1  # widen to `window` finite neighbours a side where the grid has them
        while lo > max(0, i - window) and finite[lo - 1]:
            lo -= 1
        while hi < min(len(loss) - 1, i + window) and finite[hi + 1]:
            hi += 1
        xs, ys = np.array(log2x[lo:hi + 1], dtype=float), loss[lo:hi + 1]
        a, b, c = np.polyfit(xs, ys, 2)  # exact through 3 points, least squares through more
        if a <= 0:
            res["note"] = "flat"
        else:
            vertex = -b / (2 * a)
            v = float(np.clip(vertex, xs[0], xs[-1]))
            # the parabola's value at its vertex, but never below the best observed loss by more
            # than the fit supports: an extrapolated dip is not evidence of a lower loss
            res.update(log2_opt=v, loss_opt=float(max(np.polyval([a, b, c], v), loss[i] - (ys.max() - loss[i]))))
            if v != vertex:
                res["note"] = "clamped"  # the vertex fell outside the fitted points: not trusted
    return res


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
    seeds = sorted(by_seed, key=lambda s: (_num(s), s))
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


def mean_se(values):
    """Mean and standard error (sample sd / sqrt(n); nan with one value) of a list of numbers."""
    d = np.asarray(values, dtype=float)
    return float(d.mean()), (float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan)


def transfer_cost(rows, x, by, metric):
    """What using the base curve's best grid value at every other curve costs: {parameterization:
    [(by value, x0, xb, cost, se)]}, x0 the best grid x of the base curve (the smallest by value)
    and xb that of the curve, both on the mean over seeds; cost = mean loss at x0 - mean loss at
    xb (inf where a seed diverged at x0); se the standard error of the per-seed paired
    difference (nan with one seed). The transfer claim in numbers, on the grid, no fit."""
    cells = defaultdict(dict)
    for r in rows:
        loss = _num(r[metric]) if r["status"] == "done" else math.inf
        cells[(r["parameterization"], _num(r[by]), _num(r[x]))][r.get("seed", "")] = loss
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


def plot(path, agg, res, x, by, metric, title, ymax=None):
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
    text = title + "   (star: fitted optimum, x: diverged)"
    fig.suptitle("\n".join(textwrap.wrap(text, width=int(13 * (3.8 * len(params) + 1.4)))), fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _value(text):
    """A --where VALUE as a number: a decimal, or a power of two as the run directories name
    it (2^-5.5, also 2**-5.5); nan if neither."""
    m = re.fullmatch(r"2(?:\^|\*\*)(-?\d+(?:\.\d+)?)", text.strip())
    return 2.0 ** float(m.group(1)) if m else _num(text)


def _where(cell, op, value):
    """Does a results cell satisfy KEY op VALUE? = and != compare as numbers where both are."""
    a, b = _num(cell), _value(value)
    numbers = not (math.isnan(a) or math.isnan(b))
    same = cell == value or (numbers and a == b)
    if op == "=":
        return same
    if op == "!=":
        return not same
    return numbers and (a >= b if op == ">=" else a <= b)


def select(rows, wheres, source):
    """The rows that satisfy every --where (KEY=VALUE, or !=, >=, <=); an error line for a
    malformed one, an unknown column, or a filter that leaves no run."""
    for w in wheres:
        m = re.fullmatch(r"(\w+)(!=|>=|<=|=)(.+)", w)
        if not m or m.group(1) not in rows[0]:
            raise UserError(f"--where {w!r} must be KEY=VALUE (or !=, >=, <=) with KEY a column of {source}")
        key, op, value = m.groups()
        if op in (">=", "<=") and math.isnan(_value(value)):
            raise UserError(f"--where {w!r}: {op} needs a number")
        rows = [r for r in rows if _where(r[key], op, value)]
        if not rows:
            raise UserError(f"no finished run has {key}{op}{value}")
    return rows


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
                    help="keep only rows with this value, e.g. --where max_tokens=131072; also KEY!=VALUE, "
                         "KEY>=VALUE, KEY<=VALUE, e.g. --where n_layer>=4 (the smallest value left is the "
                         "base of the drift); a value may be a power of two, --where 'learning_rate!=2^-5.5' "
                         "(repeatable)")
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

"""
The results CSV of a sweep, its one owner (standard library only, numpy inside the seed
statistics: scripts/sweep.py and scripts/search.py import it without torch): one row per
finished point, in the columns

    sweep, parameterization, n_layer, n_embd, n_head, learning_rate, init_std, output_mult, seed,
    <the other settings the sweep's axes vary>, status, train_loss, val_loss, best_val_loss,
    steps, tokens, wall_s, out_dir, commit

`commit` is the git commit that produced the row (the run's provenance.json, else the sweep's
checkout; 'unknown' outside one). A file written before that column existed has the same
header without it: it still reads, and a sweep continuing it keeps writing its header.

Here: the columns, appending a row (under a lock, through runs.append_line), reading and
validating a file (repeated points, non-finite losses, binary or torn input: one line naming
the file and line), the one --where grammar of the analysis tools, and seed statistics.
"""
import csv
import fcntl
import io
import json
import math
import os
import re

from runs import UserError, append_line, regular_file
from util import number as _number


def number(text):
    """A results cell as a float (util.number of a cell: a decimal, nan if it is not one)."""
    return _number(text, cell=True)


REPO = os.path.dirname(os.path.abspath(__file__))  # relative out_dirs in a results file are under it
COORDS = ["parameterization", "n_layer", "n_embd", "n_head", "learning_rate", "init_std",
          "output_mult", "seed"]
OUTCOME = ["status", "train_loss", "val_loss", "best_val_loss", "steps", "tokens", "wall_s", "out_dir"]
COMMIT = "commit"
FINISHED = ("done", "diverged")  # the one rule for "finished": a row or final.json with one of these
# The columns that name a run's outcome, where it ran or what produced it, not its settings: two
# rows equal in every other column are the same point run twice.
NOT_SETTINGS = ("sweep", *OUTCOME, COMMIT)
MAKE = "python scripts/sweep.py SWEEP_FILE"  # the command that writes a results file


# --- writing: the sweep's columns and one row per finished point, appended under a lock ---

def axis_keys(axes):
    """The settings a sweep's axes vary, with `points` flattened into its settings."""
    return [k for a, v in axes.items() for k in (v[0] if a == "points" else [a])]


def columns(axes):
    """The header a sweep with these axes writes."""
    return ["sweep"] + COORDS + [k for k in axis_keys(axes) if k not in COORDS] + OUTCOME + [COMMIT]


def read_raw(results):
    """(header line, rows as dicts) of a results file; ("", []) if there is none. One line if unreadable."""
    if not os.path.exists(results):
        return "", []
    if not os.path.isfile(results):
        raise UserError(f"results file {results} is a directory, not a file; give another --results")
    try:
        with open(results, newline="", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"results file {results} cannot be read as UTF-8 CSV ({e}); give another --results") from None
    return text.split("\n", 1)[0].rstrip("\r"), list(csv.DictReader(text.splitlines()))


def check_header(results, header):
    """Before any point starts: the results file, if any, is readable and has this sweep's
    columns. Returns the header to write: `header`, or the same without `commit` for a file
    written before that column (its rows keep their shape)."""
    first, _ = read_raw(results)
    legacy = [k for k in header if k != COMMIT]
    if first and first == ",".join(legacy):
        return legacy
    if first and first != ",".join(header):
        raise UserError(f"{results} has columns {first!r}, this sweep writes {','.join(header)!r}; "
                        "give another --results file")
    return header


def recorded(results, rows=None):
    """{out_dir (absolute; relative ones are under the repo): status} of the results file's rows
    (or of `rows`); a finished status wins over any other row of the same out_dir."""
    out = {}
    for r in read_raw(results)[1] if rows is None else rows:
        if r.get("out_dir"):
            key = os.path.abspath(os.path.join(REPO, r["out_dir"]))
            if out.get(key) not in FINISHED:
                out[key] = r.get("status") or ""
    return out


def field(v):
    """One CSV cell: a dict (module_hparams) as sorted JSON, a float exact (repr; inf, nan), quoted where needed."""
    if isinstance(v, dict):
        v = json.dumps(v, sort_keys=True)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else "inf")
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def append_row(results, header, row):
    """Append one row under an exclusive lock on the results file. A new file gets the header
    first, an existing one must have the same header, and a point that already has a finished
    row gets no second one (another sweep on this out_root recorded it: returns False). The row
    starts on a fresh line even after a torn one and is fsynced (runs.append_line); a write that
    fails (a full disk) is one line, and the point's final.json still holds its result."""
    line = ",".join(field(row.get(k, "")) for k in header)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(results)), exist_ok=True)
        with open(results, "a") as f:  # the lock's handle; the rows are read and written by path
            fcntl.flock(f, fcntl.LOCK_EX)
            first, rows = read_raw(results)
            if first and first != ",".join(header):
                raise UserError(f"{results} has columns {first!r}, this sweep writes {','.join(header)!r}; "
                                "give another --results file")
            key = os.path.abspath(os.path.join(REPO, str(row.get("out_dir", ""))))
            if row.get("out_dir") and row.get("status") in FINISHED and recorded(results, rows).get(key) in FINISHED:
                return False
            append_line(results, line if first else ",".join(header) + "\n" + line)
            return True
    except OSError as e:
        raise UserError(f"cannot append to the results file {results} ({e.strerror or e}); free space or make it "
                        "writable, then run the same command again (a finished point's final.json keeps its "
                        "result and is recorded then)") from None


# --- reading: every check before a number is used ---

class Row(dict):
    """A results row that knows where it was read (its file and line), so that a message about
    it can name the line to repair."""
    file, line = "", 0


def located(r):
    """'FILE line N' of a Row, for a message that names the line to repair."""
    return f"{r.file} line {r.line}" if isinstance(r, Row) else "a results row"


def read_csv(path, required, make=MAKE):
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
            v = number(r[k])
            if not (math.isfinite(v) and (v >= 0 if zero else v > 0)) or (whole and v != int(v)):
                kind = ("a whole number" if whole else "a number") + (" >= 0" if zero else " above 0")
                raise UserError(f"{located(r)}: {k} is {r[k]!r}, not {kind}; repair or delete that row")


def load(path, make=MAKE, metric="val_loss", distinct=()):
    """The finished (done or diverged) rows of a results CSV; `make` is the command that writes
    it. A done row's `metric` must be a finite number (it is the result). A point repeated in
    the file (equal in every setting column, seed included, and in `distinct`, outcome columns
    that also tell points apart) is kept once or refused: see drop_repeats."""
    header, rows = read_csv(path, ("parameterization", "status", metric), make)
    rows = [r for r in rows if r["status"] in FINISHED]
    if not rows:
        raise UserError(f"{path} holds no finished runs yet")
    for r in rows:
        if r["status"] == "done" and not math.isfinite(number(r[metric])):
            raise UserError(f"{located(r)} is a done run whose {metric} is {r[metric]!r}, not a finite number; "
                            "repair that row (its out_dir's final.json holds the result) or delete it")
    return drop_repeats(rows, [k for k in header if k not in NOT_SETTINGS or k in distinct], metric)


def drop_repeats(rows, keys, metric="val_loss"):
    """rows without repeats: a row equal to an earlier one in `keys` (the setting columns, seed
    included) is the same point run again. Ending the same (status, and the metric of a done
    run) it is the same run recorded twice (or rerun to the bit) and is kept once; ending
    elsewhere it is refused: averaged, it would count one seed twice (one file) or mix two
    experiments (several files that set other settings outside their columns)."""
    def outcome(r):
        return r["status"], number(r[metric]) if r["status"] == "done" else None

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
            raise UserError(f"{located(first)} and {located(r)} have the same settings columns but end at {ends}: "
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
    common = set.intersection(*(set(rows[0]) for rows in files)) - set(NOT_SETTINGS)
    return drop_repeats([r for rows in files for r in rows], [k for k in files[0][0] if k in common], metric)


# --- the one --where grammar: KEY=VALUE, KEY!=VALUE, KEY>=VALUE, KEY<=VALUE ---

WHERE_HELP = ("keep only rows with this value, e.g. --where max_tokens=131072; also KEY!=VALUE, KEY>=VALUE, "
              "KEY<=VALUE, e.g. --where n_layer>=4; a value may be a power of two, --where "
              "'learning_rate!=2^-5.5' (repeatable)")


def matches(cell, op, value):
    """Does a results cell satisfy KEY op VALUE? = and != compare as numbers where both are
    (util.number: 2^-5.5 is the cell 0.0220...), else as text; >= and <= need numbers."""
    a, b = number(cell), _number(value)
    numbers = not (math.isnan(a) or math.isnan(b))
    same = cell == value or (numbers and a == b)
    if op == "=":
        return same
    if op == "!=":
        return not same
    return numbers and (a >= b if op == ">=" else a <= b)


def select(rows, wheres, source, empty_ok=False):
    """The rows that satisfy every --where (KEY=VALUE, or !=, >=, <=); an error line for a
    malformed one, an unknown column, or (unless empty_ok) a filter that leaves no run."""
    for w in wheres:
        m = re.fullmatch(r"(\w+)(!=|>=|<=|=)(.+)", w)
        if not m or (rows and m.group(1) not in rows[0]):
            raise UserError(f"--where {w!r} must be KEY=VALUE (or !=, >=, <=) with KEY a column of {source}")
        key, op, value = m.groups()
        if op in (">=", "<=") and math.isnan(_number(value)):
            raise UserError(f"--where {w!r}: {op} needs a number")
        rows = [r for r in rows if matches(r[key], op, value)]
        if not rows and not empty_ok:
            raise UserError(f"no finished run has {key}{op}{value}")
    return rows


# --- seed statistics ---

def mean_se(values):
    """Mean and standard error (sample sd / sqrt(n); nan with one value) of a list of numbers."""
    import numpy as np
    d = np.asarray(values, dtype=float)
    return float(d.mean()), (float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan)


def mean_sd(values):
    """Mean and sample standard deviation (nan with one value) of a list of numbers."""
    import numpy as np
    d = np.asarray(values, dtype=float)
    return float(d.mean()), (float(d.std(ddof=1)) if len(d) > 1 else math.nan)


def fit_optimum(log2x, loss, window=1):
    """The optimum of one curve: dict(log2_opt, loss_opt, best, note); None if all diverged.
    log2x ascending; loss may hold inf for diverged points. window: neighbours a side in the
    fit (1: the best point and its two neighbours). scripts/plot_transfer.py draws it, scripts/transfer.py
    reports it beside the grid pick."""
    import numpy as np
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

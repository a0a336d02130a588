"""
Expand a sweep file into a grid of train.py runs; run them here, N at a time, or as a SLURM
job array. Every point gets an out_dir named by its coordinates and appends one row to a
results CSV when it ends; finished points (done or diverged: a row in the results file, or a
final.json that says so) are skipped, so a sweep can be stopped (Ctrl-C, SIGTERM) and
restarted with the same command, or continued elsewhere from a copy of its results file.

    python scripts/sweep.py config/sweeps/depth_lr.py --dry_run          # list the points
    python scripts/sweep.py config/sweeps/depth_lr.py                    # one after another
    python scripts/sweep.py config/sweeps/depth_lr.py --jobs 2 --threads 2
    python scripts/sweep.py config/sweeps/depth_lr.py --slurm [--submit] [--sbatch=--time=0:30:00]
    python scripts/sweep.py config/sweeps/depth_lr.py --index 17         # one point (a SLURM task)
    python scripts/sweep.py config/sweeps/width_lr.py --nproc_per_node 8 --set device=cuda

Exit codes: 0 all points finished or skipped; 1 some failed; 2 a bad sweep file or argument, or
a file that cannot be written (one line); 4 stopped: by SIGTERM/SIGINT, or a point stopped
(resumable: run the same command again). A point is stopped when its own record says so (the
final.json it wrote: under torchrun every worker's exit code becomes 1) or train.py exits 4; it
is not finished and runs again on the next start. Several sweeps may share an out_root: each
decides about a point under the point's claim (<out_dir>/sweep.lock, held while it runs there),
reading its state again right then, so a point another sweep runs is skipped as busy and one it
finished is not run again nor recorded twice; a point whose out_dir another live train.py owns
(runs.RunLock) is busy too. Every exit path of the sweep stops and reaps its children (and they
get SIGTERM if the sweep itself is killed).

A sweep file is a short Python file of assignments:
    base_config = "config/transfer_base.py"        # train.py config file(s), passed first
    parameterization = ["sp", "mup", "completep"]  # a list: an axis of the grid
    n_layer = [2, 4, 8, 16]
    learning_rate = [2.0 ** -k for k in range(12, 3, -1)]
    seed = [0, 1]
    n_head = 4                                     # a single value: a fixed train.py setting
    order = ["seed", "n_layer", "parameterization", "learning_rate"]  # outermost first
Optional: name (default: the file's stem), out_root (default runs/<name>), results (default
<out_root>/results.csv), and points: a list of dicts of train.py settings that vary together,
one axis of the grid ("points" in order), e.g. batch and horizon along two arms only:
    points = [dict(global_batch_size=4, max_tokens=2**17), dict(global_batch_size=4, max_tokens=2**19),
              dict(global_batch_size=8, max_tokens=2**17)]
Every other name must be a train.py setting.

out_dir: <out_root>/<parameterization>/L<n_layer>_N<n_embd>/<other axes, e.g. lr2^-7>/s<seed>
"""
import argparse
import ast
import contextlib
import csv
import fcntl
import hashlib
import io
import itertools
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from configurator import parse, read_config_file  # noqa: E402
from runs import (EXIT_DIVERGED, EXIT_STOPPED, UserError, append_line, has_checkpoint, lock_owner,  # noqa: E402
                  log_tail, run_cli, write_atomic)
from util import hms  # noqa: E402

SPECIAL = ("base_config", "name", "out_root", "results", "order", "points")
COORDS = ["parameterization", "n_layer", "n_embd", "n_head", "learning_rate", "init_std",
          "output_mult", "seed"]
OUTCOME = ["status", "train_loss", "val_loss", "best_val_loss", "steps", "tokens", "wall_s", "out_dir"]
FINISHED = ("done", "diverged")  # the one rule for "finished": a row or final.json with one of these
MAX_FAILURES_IN_A_ROW = 3  # a broken train.py or environment: stop instead of burning the grid
LABELS = {"learning_rate": "lr", "init_std": "std", "output_mult": "om", "input_mult": "im",
          "global_batch_size": "B", "max_tokens": "D", "module_hparams": "modules"}
UNLABELLED = ("base_batch_size", "base_tokens")  # name the proxy; not in out_dir names
STOP_GRACE_S = 60  # how long stopped children may take to save a checkpoint before SIGKILL
CLAIM_NAME = "sweep.lock"  # in a point's out_dir: flock-ed by the sweep that decides about / runs it
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a newline in a generated script starts a line nothing quotes
# train.py settings that steer the run but not its result: a finished point whose config.json
# differs from the sweep only in these is still the same point (see settings_changed)
RUN_CONTROL = ("out_dir", "init_from", "eval_interval", "log_interval", "eval_only", "save_checkpoints",
               "keep_last", "halt_at_iter", "sample_tokens", "wandb_log", "wandb_project", "wandb_run_name",
               "wandb_mode", "device", "compile", "fused", "parallel")



# --- train.py's settings, read from its source without importing torch ---

def train_defaults():
    """The module-level defaults of train.py and their annotations, as configure() sees them."""
    path = os.path.join(REPO, "train.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    defaults, annotations = {}, {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            name, value = node.target.id, node.value
            annotations[name] = eval(ast.unparse(node.annotation), {})  # e.g. float | None
        else:
            continue
        try:
            v = ast.literal_eval(value)
        except ValueError:
            continue
        if not name.startswith("_") and not name.isupper() and isinstance(v, (int, float, bool, str, dict, type(None))):
            defaults[name] = v
    return defaults, annotations


def train_out_dir(argv):
    """The out_dir train.py resolves from its arguments (config files, then --key=value), read
    without torch; nanoGPT's alias names (train.py's NANOGPT_ALIASES: none sets out_dir) pass."""
    defaults, annotations = train_defaults()
    with open(os.path.join(REPO, "train.py")) as f:
        tree = ast.parse(f.read())
    names = [k.value for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
             and getattr(node.targets[0], "id", None) == "NANOGPT_ALIASES" for k in node.value.keys]
    with contextlib.redirect_stdout(io.StringIO()):  # parse's notes about the aliases
        return parse(defaults, argv, annotations, dict.fromkeys(names, lambda v, c: ({}, "")))[0]["out_dir"]


# --- the sweep file ---

def load_sweep(path, defaults):
    """(settings, axes, fixed): special settings, {axis: values} in order, {key: value}."""
    try:
        ns = read_config_file(path)
    except UserError as e:
        raise UserError(str(e).replace("config file", "sweep file")) from None
    settings = {k: ns.pop(k) for k in SPECIAL if k in ns}
    base = settings.get("base_config", [])
    base = [base] if isinstance(base, str) else base
    if not isinstance(base, list) or not all(isinstance(b, str) for b in base):
        raise UserError(f"{path}: base_config must be a path or a list of paths, got {base!r}")
    settings["base_config"] = [b if os.path.isabs(b) else os.path.join(REPO, b) for b in base]
    for b in settings["base_config"]:
        if not os.path.isfile(b):
            raise UserError(f"{path}: base_config {b} does not exist")
    axes, fixed = {}, {}
    for k, v in ns.items():
        if k not in defaults:
            raise UserError(f"{path}: {k!r} is not a train.py setting nor one of {', '.join(SPECIAL)}")
        if isinstance(v, (list, tuple)):
            if not v:
                raise UserError(f"{path}: axis {k} is an empty list; give at least one value")
            if len(set(map(repr, v))) != len(v):
                raise UserError(f"{path}: axis {k} repeats a value: {v!r}")
            axes[k] = list(v)
        else:
            fixed[k] = v
    if "points" in settings:
        axes["points"] = _points(path, settings.pop("points"), defaults, ns)
    if not axes:
        raise UserError(f"{path}: no axis; a sweep needs at least one list, e.g. seed = [0, 1]")
    order = settings.get("order", ["seed"] if "seed" in axes else [])
    if not isinstance(order, list) or any(k not in axes for k in order) or len(set(order)) != len(order):
        raise UserError(f"{path}: order={order!r} must list axes of this file ({', '.join(axes)}) once each")
    order = order + [k for k in axes if k not in order]
    settings.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(settings["name"], str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", settings["name"]):
        raise UserError(f"{path}: name={settings['name']!r} must be letters, digits and _.+- only "
                         "(it names directories and the SLURM job)")
    return settings, {k: axes[k] for k in order}, fixed


def _points(path, points, defaults, ns):
    """Validate a `points` list: dicts with the same train.py settings, none also set elsewhere."""
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) and p for p in points):
        raise UserError(f"{path}: points must be a non-empty list of dicts of settings, got {points!r}")
    keys = list(points[0])
    for p in points:
        if list(p) != keys:
            raise UserError(f"{path}: every point must set the same settings ({', '.join(keys)}), got {list(p)}")
    for k in keys:
        if k not in defaults:
            raise UserError(f"{path}: points set {k!r}, which is not a train.py setting")
        if k in ns:
            raise UserError(f"{path}: {k} is set both in points and on its own; keep one")
    if len(set(map(repr, points))) != len(points):
        raise UserError(f"{path}: points repeats a point")
    return points


def axis_keys(axes):
    """The settings the axes vary, with `points` flattened into its settings."""
    return [k for a, v in axes.items() for k in (v[0] if a == "points" else [a])]


def override(k, v):
    return f"--{k}={v!r}"


def label(k, v):
    """lr2^-7, std0.02, warmup_frac0.1: one axis value in a directory name; a dict setting
    (module_hparams) by a digest of its JSON, or 'none' when empty."""
    if isinstance(v, dict):
        text = hashlib.sha1(json.dumps(v, sort_keys=True).encode()).hexdigest()[:8] if v else "none"
    elif isinstance(v, float) and v > 0 and math.log2(v) == round(math.log2(v)):
        text = f"2^{round(math.log2(v))}"
    elif isinstance(v, float) and v > 0 and abs(4 * math.log2(v) - round(4 * math.log2(v))) < 1e-9:
        text = f"2^{round(4 * math.log2(v)) / 4:g}"  # quarter-octave grids: lr2^-7.5
    else:
        text = f"{v:g}" if isinstance(v, float) else str(v)
    return f"{LABELS.get(k, k)}{text}"


def expand(settings, axes, fixed, extra, defaults, annotations, out_root):
    """The grid points in order: dicts of coords, config, out_dir, args."""
    fixed_args = [override(k, v) for k, v in fixed.items()] + [override(k, v) for k, v in extra.items()]
    points = []
    for values in itertools.product(*axes.values()):
        coords = {}
        for a, v in zip(axes, values):
            coords.update(v if a == "points" else {a: v})
        args = fixed_args + [override(k, v) for k, v in coords.items()]
        try:
            config, _ = parse(defaults, settings["base_config"] + args, annotations)
        except UserError as e:
            raise UserError(f"point {coords}: {e}") from None
        rest = [label(k, v) for k, v in coords.items()
                if k not in ("parameterization", "n_layer", "n_embd", "seed") + UNLABELLED]
        out_dir = os.path.join(out_root, config["parameterization"],
                               f"L{config['n_layer']}_N{config['n_embd']}", "_".join(rest) or "base",
                               f"s{config['seed']}")
        points.append(dict(coords=coords, config=config, out_dir=out_dir, args=args))
    if len({p["out_dir"] for p in points}) != len(points):
        raise UserError("two points share an out_dir; the directory names cannot tell them apart")
    return points


# --- the results file: one row per finished point, appended under a lock ---

def columns(axes):
    return ["sweep"] + COORDS + [k for k in axis_keys(axes) if k not in COORDS] + OUTCOME


def recorded(results, rows=None):
    """{out_dir (absolute; relative ones are under the repo): status} of the results file's rows
    (or of `rows`); a finished status wins over any other row of the same out_dir."""
    out = {}
    for r in _read_results(results)[1] if rows is None else rows:
        if r.get("out_dir"):
            key = os.path.abspath(os.path.join(REPO, r["out_dir"]))
            if out.get(key) not in FINISHED:
                out[key] = r.get("status") or ""
    return out


def _read_results(results):
    """(header line, rows) of a results file; ("", []) if there is none. One line if unreadable."""
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


def check_results(results, header):
    """Before any point starts: the results file, if any, is readable and has this sweep's columns."""
    first, _ = _read_results(results)
    if first and first != ",".join(header):
        raise UserError(f"{results} has columns {first!r}, this sweep writes {','.join(header)!r}; "
                         "give another --results file")


def append_row(results, header, row):
    """Append one row under an exclusive lock on the results file. A new file gets the header
    first, an existing one must have the same header, and a point that already has a finished
    row gets no second one (another sweep on this out_root recorded it: returns False). The row
    starts on a fresh line even after a torn one and is fsynced (runs.append_line); a write that
    fails (a full disk) is one line, and the point's final.json still holds its result."""
    line = ",".join(_csv_field(row.get(k, "")) for k in header)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(results)), exist_ok=True)
        with open(results, "a") as f:  # the lock's handle; the rows are read and written by path
            fcntl.flock(f, fcntl.LOCK_EX)
            first, rows = _read_results(results)
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


def _csv_field(v):
    if isinstance(v, dict):
        v = json.dumps(v, sort_keys=True)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else "inf")
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def read_final(out_dir):
    try:
        with open(os.path.join(out_dir, "final.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def final_stamp(out_dir):
    """(inode, mtime, size) of out_dir's final.json, or None. A run's outcome is the final.json
    it wrote, not one an earlier run left (a stop, then a resumed run that crashed): compared
    before and after the run."""
    try:
        st = os.stat(os.path.join(out_dir, "final.json"))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def final_record(out_dir):
    """'<status> <stamp>' of out_dir's final.json ('none' without one): what scripts/slurm_train.sh
    compares before and after torchrun, which turns a stopped worker's exit 4 into 1."""
    return " ".join(map(str, [(read_final(out_dir) or {}).get("status", "none"), *(final_stamp(out_dir) or ())]))


def outcome_row(sweep, point, axes, final, wall):
    c = point["config"]
    row = {"sweep": sweep, **{k: c[k] for k in COORDS}, **{k: c[k] for k in axis_keys(axes)}}
    diverged = final["status"] == "diverged"
    steps = final.get("iter", 0)
    row.update(status=final["status"],
               train_loss=math.inf if diverged else final.get("train_loss"),
               val_loss=math.inf if diverged else final.get("val_loss"),
               best_val_loss=final.get("best_val_loss"), steps=steps,
               tokens=steps * c["global_batch_size"] * c["block_size"], wall_s=round(wall, 1),
               out_dir=os.path.relpath(point["out_dir"], REPO) if point["out_dir"].startswith(REPO)
               else point["out_dir"])
    return row


# --- running points ---

def command(point, settings, nproc):
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return launcher + [os.path.join(REPO, "train.py")] + settings["base_config"] + point["args"] + \
        [f"--out_dir={point['out_dir']}"]


def settings_changed(point):
    """The settings in which the finished run in point's out_dir (its config.json) differs from
    what the sweep now asks of that point, as 'key=theirs there, ours here' strings. The out_dir
    names only the swept coordinates, so a changed fixed setting (an init_std in a base config,
    a --set) would otherwise count the old run as this point's result. Settings the old run
    predates (absent there) and RUN_CONTROL are not compared; no config.json, nothing to compare."""
    try:
        with open(os.path.join(point["out_dir"], "config.json")) as f:
            theirs = json.load(f)["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not isinstance(theirs, dict):
        return []
    ours = json.loads(json.dumps(point["config"]))  # as train.py wrote it: lists, not tuples
    return [f"{k}={theirs[k]!r} there, {v!r} here" for k, v in ours.items()
            if k in theirs and k not in RUN_CONTROL and theirs[k] != v]


def state(point, done_dirs):
    """(what to do, status to show): 'skip' (a finished row in the results file, even without
    its out_dir: a copied results file continues a sweep), 'record' (finished, no row yet),
    'busy' (another live process owns its out_dir) or 'run'. --dry_run shows the same.
    A finished point whose out_dir ran other settings than the sweep now sets is refused."""
    status = done_dirs.get(os.path.abspath(point["out_dir"]))
    final = read_final(point["out_dir"]) or {}
    if status in FINISHED or final.get("status") in FINISHED:
        diff = settings_changed(point)
        if diff:
            shown = "; ".join(diff[:3]) + ("; ..." if len(diff) > 3 else "")
            raise UserError(f"{point['out_dir']} finished with other settings ({shown}) than this sweep sets; "
                             "counting it would mix settings in one result: give this sweep another --out_root "
                             "(or name), or delete that out_dir and its row")
    if status in FINISHED:
        return "skip", status
    if final.get("status") in FINISHED:
        return "record", final["status"]
    if lock_owner(point["out_dir"]):
        return "busy", "busy"
    return "run", final.get("status") if final.get("status") == "stopped" else "todo"


def claim(out_dir):
    """This sweep's hold on a point: an exclusive flock on <out_dir>/sweep.lock, taken before the
    point's state is read for the decision and kept until its child has ended and its row is
    written (closing the file lets go; so does the kernel when the sweep dies). Two sweeps on one
    out_root meet here. Returns the open file, or None while another process holds it."""
    os.makedirs(out_dir, exist_ok=True)
    f = open(os.path.join(out_dir, CLAIM_NAME), "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    except OSError:  # a filesystem without flock: train.py's own lock still refuses a second run
        pass
    return f


def take(point, sweep, axes, results, header):
    """(claim, 'run') for a point to run now, else (None, why): its state read again under its
    claim, right before it would start (another sweep on this out_root may have run it since
    this one looked): 'busy' (another process holds it), 'skip' (finished, recorded) or
    'record' (finished, its row appended now, once)."""
    try:
        hold = claim(point["out_dir"])
    except OSError as e:
        raise UserError(f"cannot write to {point['out_dir']} ({e.strerror or e}); free space or make it "
                         "writable, then run the same command again") from None
    if hold is None:
        return None, "busy"
    try:
        what = state(point, recorded(results))[0]
        if what == "record":  # finished before its row was written (killed in between)
            append_row(results, header, outcome_row(sweep, point, axes, read_final(point["out_dir"]), math.nan))
    except BaseException:
        hold.close()
        raise
    if what != "run":
        hold.close()
        return None, what
    return hold, what


def start(point, settings, args, threads, gpus=None, hold=None):
    """A running job for the point (its claim `hold` kept in it until finish). A point without
    a checkpoint (runs.has_checkpoint: .pt or fsdp's .dcp) starts from scratch, so the logs of an
    earlier attempt go; one with a checkpoint resumes and keeps them. `gpus`: the device ids it
    may see (CUDA_VISIBLE_DEVICES), from --gpus."""
    out = point["out_dir"]
    try:
        os.makedirs(out, exist_ok=True)
        if not has_checkpoint(out):
            for n in ("metrics.jsonl", "final.json"):
                if os.path.exists(os.path.join(out, n)):
                    os.remove(os.path.join(out, n))
        log = open(os.path.join(out, "train.log"), "a")
    except OSError as e:
        raise UserError(f"cannot write to {out} ({e.strerror or e}); free space or make it writable, then run "
                         "the same command again") from None
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    stamp, log_start = final_stamp(out), log.tell()
    proc = subprocess.Popen(command(point, settings, args.nproc_per_node), stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=REPO, preexec_fn=_die_with_parent)
    return dict(point=point, proc=proc, log=log, t0=time.time(), gpus=gpus, hold=hold, stamp=stamp,
                log_start=log_start)


def gpu_slots(args):
    """--gpus split into one group of --nproc_per_node ids per concurrent point, or None."""
    if not getattr(args, "gpus", None):
        return None
    ids = args.gpus
    return [ids[i:i + args.nproc_per_node] for i in range(0, len(ids) - args.nproc_per_node + 1, args.nproc_per_node)]


def finish(job, sweep, axes, results, header, progress=""):
    """Record a finished child: a row for done/diverged, a message otherwise (each line
    prefixed with `progress`, e.g. '[3/72] eta 0:41:10 '); then let go of the point's claim.
    How the run ended is read from its own record first, the final.json this run wrote: under
    torchrun a stopped or diverged worker's exit code reaches the sweep as 1. Returns
    'finished', 'stopped', 'busy' or 'failed'."""
    job["log"].close()
    rc, point = job["proc"].returncode, job["point"]
    out = point["out_dir"]
    try:
        # this run's final.json, or whatever is there when train.py's own exit code says it ended
        final = read_final(out) if final_stamp(out) != job.get("stamp") or rc in (0, EXIT_DIVERGED) else None
        status = (final or {}).get("status")
        if status in FINISHED:
            row = outcome_row(sweep, point, axes, final, time.time() - job["t0"])
            again = "" if append_row(results, header, row) else " (its row was already there)"
            print(f"{progress}{status:8s} {row['val_loss']!s:>8.8} val  {row['wall_s']:7.1f}s  {out}{again}", flush=True)
            return "finished"
        if status == "stopped" or rc in (EXIT_STOPPED, -signal.SIGTERM, -signal.SIGINT):  # or signalled before it could stop
            print(f"{progress}stopped           {out} (re-run the sweep to continue it)", flush=True)
            return "stopped"
        if rc != 0 and (lock_owner(out) or "is in use by another run" in _output(job)):  # taken just now
            print(f"{progress}busy              {out} (another process owns it)", flush=True)
            return "busy"
        print(f"{progress}FAILED (exit {rc}) {out}: {log_tail(out)}", file=sys.stderr, flush=True)
        return "failed"
    finally:
        if job.get("hold"):
            job["hold"].close()


def _output(job):
    """What this run of the job's child printed (its part of the appended train.log)."""
    try:
        with open(os.path.join(job["point"]["out_dir"], "train.log"), errors="replace") as f:
            f.seek(job.get("log_start", 0))
            return f.read()
    except OSError:
        return ""


def _die_with_parent():
    """In a child: SIGTERM when the sweep dies, even by SIGKILL (Linux), so no train.py outlives it."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_children(running, grace=STOP_GRACE_S):
    """SIGTERM every running child (train.py saves at its next step), SIGKILL what is left after
    `grace` seconds, and reap them all."""
    for j in running:
        if j["proc"].poll() is None:
            j["proc"].send_signal(signal.SIGTERM)
    deadline = time.time() + grace
    for j in running:
        try:
            j["proc"].wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            j["proc"].kill()
            j["proc"].wait()
        j["log"].close()
        if j.get("hold"):  # the point's claim outlives its child, never the other way round
            j["hold"].close()


def run_local(points, settings, axes, results, args):
    header = columns(axes)
    check_results(results, header)  # a mismatched results file stops the sweep before any point runs
    done_dirs = recorded(results)
    states = [state(p, done_dirs)[0] for p in points]  # every point checked before any is recorded or run
    todo, busy = [], 0
    for p, s in zip(points, states):
        if s == "record":  # finished before its row was written: recorded under its claim, once
            hold, s = take(p, settings["name"], axes, results, header)
            if hold:
                hold.close()
        if s == "run":
            todo.append(p)
        busy += s == "busy"
    print(f"{settings['name']}: {len(points)} points, {len(points) - len(todo) - busy} finished, {len(todo)} to run, "
          f"{f'{busy} busy elsewhere, ' if busy else ''}{args.jobs} at a time x {args.threads_per_job} threads "
          f"-> {results}", flush=True)
    running = []
    try:
        return _run_queue(todo, settings, axes, results, header, args, running)
    finally:  # an error, a signal, or the end: no child outlives the sweep
        stop_children(running)


def _run_queue(todo, settings, axes, results, header, args, running):
    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum
        for j in running:  # train.py saves (if it checkpoints) and exits at a step boundary
            if j["proc"].poll() is None:
                j["proc"].send_signal(signal.SIGTERM)
    ends = {"finished": 0, "stopped": 0, "busy": 0, "failed": 0}
    in_a_row = 0
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    queue, total = list(todo), len(todo)
    free = gpu_slots(args)  # each running point holds one slot of GPUs; None: no --gpus
    t0, ended = time.time(), 0  # progress: k/N points of this invocation and an ETA from their pace
    while queue or running:
        while queue and len(running) < args.jobs and stop["signal"] is None and free != []:
            point = queue.pop(0)
            hold, what = take(point, settings["name"], axes, results, header)
            if hold is None:  # another sweep runs it, or has finished it since this one started
                total -= 1
                print(f"{'busy' if what == 'busy' else 'finished':17s} {point['out_dir']} "
                      f"({'another process runs it' if what == 'busy' else 'by another process'})", flush=True)
                continue
            slot = free.pop(0) if free else None
            running.append(start(point, settings, args, args.threads_per_job, slot, hold))
        time.sleep(0.2)
        for j in [j for j in running if j["proc"].poll() is not None]:
            running.remove(j)
            if j.get("gpus") is not None:
                free.append(j["gpus"])
            ended += 1
            eta = (time.time() - t0) / ended * (total - ended)
            end = finish(j, settings["name"], axes, results, header, f"[{ended}/{total}] eta {hms(eta)}  ")
            ends[end] += 1
            in_a_row = in_a_row + 1 if end == "failed" else 0
        if in_a_row >= MAX_FAILURES_IN_A_ROW and stop["signal"] is None:
            print(f"{in_a_row} points failed in a row; not starting more (fix the cause, then re-run)",
                  file=sys.stderr, flush=True)
            stop["signal"] = "failures"
        if stop["signal"] is not None and not running:
            print("sweep stopped; run the same command again to continue", flush=True)
            break
    if stop["signal"] not in (None, "failures"):
        # stopped: exit 4 however many signals come, also one that lands while Python shuts
        # down (its handlers are gone by then and the default would make it 143)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if ends["failed"]:
        return 1
    # a point that stopped is resumable: 4, so a SLURM array task (--index) is requeued
    return EXIT_STOPPED if stop["signal"] not in (None, "failures") or ends["stopped"] else 0


SHELL_VARS = ("$SLURM_ARRAY_TASK_ID", "${SLURM_CPUS_PER_TASK:-1}")  # the task command's words the batch shell expands


def write_slurm(points, settings, args, sweep_file):
    """<out_root>/sweep.sbatch, written whole or not at all (runs.write_atomic). Every string in
    it is quoted for the shell (the task command) or refused: #SBATCH lines and comments cannot
    be quoted, so a control character (a newline starts a shell line) is refused in all of them,
    and the --output path must be of characters sbatch reads literally (no space, quote, # or %)."""
    out_root, sweep_file = os.path.abspath(args.out_root), os.path.abspath(sweep_file)
    task = [sys.executable, os.path.join(REPO, "scripts", "sweep.py"), sweep_file,
            "--index", SHELL_VARS[0], "--out_root", out_root,
            "--results", os.path.abspath(args.results), "--nproc_per_node", str(args.nproc_per_node),
            "--threads", SHELL_VARS[1]] + [f"--set={s}" for s in args.set]
    for what, value in ([("the sweep file", sweep_file), ("--out_root", out_root), ("--results", args.results),
                         ("the repository path", REPO), ("python", sys.executable)]
                        + [("--set", s) for s in args.set] + [("--sbatch", o) for o in args.sbatch]):
        if CONTROL.search(value):
            raise UserError(f"{what} {value!r} holds a control character (a newline?), which would start a line "
                             "of the sbatch script; give it on one line")
    bad = re.search(r"[^\w@+=:,./~-]", out_root)
    if bad:
        raise UserError(f"--out_root {out_root!r} holds {bad.group()!r}, which the #SBATCH --output line cannot "
                         "carry (sbatch splits it at spaces, reads quotes, # and % itself); choose an out_root of "
                         "letters, digits and _@+=:,./~-")
    path = os.path.join(out_root, "sweep.sbatch")
    throttle = f"%{args.jobs}" if args.jobs > 1 else ""
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name={settings['name']}",  # letters, digits and _.+- only (load_sweep)
             f"#SBATCH --array=0-{len(points) - 1}{throttle}",
             f"#SBATCH --output={out_root}/slurm/%A_%a.log",
             "#SBATCH --open-mode=append",
             # B: the warning goes to this batch shell (without it, only to job steps: this script
             # runs none, so python would never hear it); the trap below passes it on
             "#SBATCH --signal=B:TERM@120",
             "#SBATCH --requeue",
             *[f"#SBATCH {o}" for o in args.sbatch],
             f"# {len(points)} points of {os.path.relpath(sweep_file, REPO)}; each task runs",
             "# one point and skips it when it has finished, so resubmitting the array is safe. On the",
             "# scheduler's warning the point saves at a step boundary and the task is requeued: sweep.py",
             f"# exits {EXIT_STOPPED} when its point stopped (read from the point's final.json, also under torchrun).",
             f"cd {shlex.quote(REPO)}",
             " ".join(a if a in SHELL_VARS else shlex.quote(a) for a in task) + " &",
             "PID=$!",
             "trap 'kill -TERM $PID 2>/dev/null' TERM",
             "wait $PID; RC=$?",
             "while kill -0 $PID 2>/dev/null; do wait $PID; RC=$?; done  # wait returns early when the trap runs",
             f'if [ "$RC" -eq {EXIT_STOPPED} ]; then scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"; fi',
             'exit "$RC"']
    try:
        os.makedirs(os.path.join(out_root, "slurm"), exist_ok=True)
        write_atomic(path, "\n".join(lines) + "\n")
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror or e}); free space or make {out_root} writable, or "
                         "give another --out_root") from None
    print(f"wrote {path} ({len(points)} array tasks)")
    if args.submit:
        if shutil.which("sbatch") is None:
            raise UserError(f"--submit: sbatch is not on PATH (not a SLURM machine?); {path} is written, submit "
                             f"it from a SLURM login node with: sbatch {shlex.quote(path)}")
        return subprocess.run(["sbatch", path]).returncode
    print(f"submit with: sbatch {shlex.quote(path)}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_file")
    ap.add_argument("--dry_run", action="store_true", help="list the points and their state, run nothing")
    ap.add_argument("--jobs", type=int, help="points at a time (SLURM: array throttle; default 1, or one per "
                    "--gpus group)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="CPU threads for all jobs together, split evenly (default: all cores)")
    ap.add_argument("--nproc_per_node", type=int, default=1, help=">1: each point runs under torchrun")
    ap.add_argument("--gpus", help="comma list of GPU ids, e.g. 0,1,2,3,4,5,6,7: each running point gets "
                    "--nproc_per_node of them (CUDA_VISIBLE_DEVICES); --jobs defaults to how many groups they make")
    ap.add_argument("--index", type=int, help="run only this point (0-based, in sweep order)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a train.py setting for every point, e.g. --set device=cuda")
    ap.add_argument("--out_root", help="default: the sweep file's out_root, or runs/<name>")
    ap.add_argument("--results", help="default: the sweep file's results, or <out_root>/results.csv")
    ap.add_argument("--slurm", action="store_true", help="write an sbatch job array script")
    ap.add_argument("--submit", action="store_true", help="with --slurm: submit it with sbatch")
    ap.add_argument("--sbatch", action="append", default=[], metavar="OPT",
                    help="an extra #SBATCH line, e.g. --sbatch=--gres=gpu:8")
    args = ap.parse_args(argv)
    if args.gpus is not None:
        ids = [g.strip() for g in args.gpus.split(",")]
        if not all(re.fullmatch(r"\d+", g) for g in ids) or len(set(ids)) != len(ids):
            raise UserError(f"--gpus {args.gpus!r} must be distinct GPU ids separated by commas, e.g. --gpus 0,1,2,3")
        args.gpus = ids
        if args.nproc_per_node > len(ids):
            raise UserError(f"--nproc_per_node {args.nproc_per_node} needs at least that many --gpus, got {len(ids)}")
        if args.slurm:
            raise UserError("--gpus is for local runs; a SLURM array task gets its GPUs from --sbatch=--gres=gpu:N")
    if args.jobs is None:
        args.jobs = len(args.gpus) // args.nproc_per_node if args.gpus else 1
    if args.jobs < 1 or args.threads < 1 or args.nproc_per_node < 1:
        raise UserError("--jobs, --threads and --nproc_per_node must be at least 1")
    if args.submit and not args.slurm:
        raise UserError("--submit needs --slurm")
    if not os.path.isfile(args.sweep_file):
        what = "is a directory, not a file" if os.path.isdir(args.sweep_file) else "does not exist"
        raise UserError(f"sweep file {args.sweep_file} {what}; see config/sweeps/")

    defaults, annotations = train_defaults()
    settings, axes, fixed = load_sweep(args.sweep_file, defaults)
    extra = {}
    for s in args.set:
        key, eq, text = s.partition("=")
        if not eq:
            raise UserError(f"--set {s!r} has no value; write --set KEY=VALUE")
        if key in axis_keys(axes):
            raise UserError(f"--set {key}=... would override the sweep axis {key}; edit the sweep file")
        try:
            extra[key] = parse(defaults, [f"--{key}={text}"], annotations)[0][key]
        except UserError as e:
            raise UserError(str(e)) from None
    # command-line paths are relative to the working directory, sweep-file paths to the repo
    args.out_root = os.path.abspath(args.out_root) if args.out_root else \
        os.path.join(REPO, settings.get("out_root") or os.path.join("runs", settings["name"]))
    args.results = os.path.abspath(args.results) if args.results else \
        os.path.join(REPO, settings.get("results") or os.path.join(args.out_root, "results.csv"))
    args.threads_per_job = max(1, args.threads // (args.jobs * args.nproc_per_node))
    points = expand(settings, axes, fixed, extra, defaults, annotations, args.out_root)

    if args.dry_run:
        check_results(args.results, columns(axes))  # what would stop the real run stops this one
        done_dirs = recorded(args.results)
        shown = [state(p, done_dirs)[1] for p in points]  # the rule run_local follows, checked first
        for i, (p, status) in enumerate(zip(points, shown)):
            print(f"{i:4d}  {status:8s}  {p['out_dir']}")
        print(f"{len(points)} points; results -> {args.results}")
        return 0
    if args.slurm:
        return write_slurm(points, settings, args, args.sweep_file)
    if args.index is not None:
        if not 0 <= args.index < len(points):
            raise UserError(f"--index {args.index} is outside 0..{len(points) - 1}")
        points = [points[args.index]]
        args.jobs = 1
    return run_local(points, settings, axes, args.results, args)


if __name__ == "__main__":
    run_cli(main)

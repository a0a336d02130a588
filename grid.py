"""
A sweep's grid of train.py runs (scripts/sweep.py's and scripts/shapes.py's machinery; standard
library only, no torch): the points of a grid with their out_dirs named by their coordinates,
the decision about each point under its claim (<out_dir>/sweep.lock), and running them N at a
time, each ending in one row of the results file (results.py) or a message.

out_dir: <out_root>/<parameterization>/L<n_layer>_N<n_embd>/<other axes, e.g. lr2^-7>/s<seed>
(with wandb_log on, the same coordinates name the point's wandb run, in the sweep's group)

Every exit path of run_local stops and reaps its children (runs.stop_children; they get SIGTERM
if the sweep itself is killed: runs.die_with_parent). A point is stopped when its own record
says so (the final.json it wrote: under torchrun every worker's exit code becomes 1) or train.py
exits 4; it is not finished and runs again on the next start. Several sweeps may share an
out_root: each decides about a point under the point's claim, reading its state again right
then, so a point another sweep runs is skipped as busy and one it finished is not run again nor
recorded twice; a point whose out_dir another live train.py owns (runs.RunLock) is busy too.
"""
import fcntl
import functools
import hashlib
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

from configurator import parse, read_config_file
from results import COORDS, FINISHED, append_row, axis_keys, check_header, columns, recorded
from runs import (EXIT_DIVERGED, EXIT_STOPPED, REPO, UserError, die_with_parent, final_stamp, git_commit,
                  has_checkpoint, last_line, lock_owner, log_tail, read_final, run_commit, stop_children, write_atomic)
from util import hms

MAX_FAILURES_IN_A_ROW = 3  # a broken train.py or environment: stop instead of burning the grid
LABELS = {"learning_rate": "lr", "init_std": "std", "output_mult": "om", "input_mult": "im",
          "global_batch_size": "B", "max_tokens": "D", "module_hparams": "modules"}
UNLABELLED = ("base_batch_size", "base_tokens")  # name the proxy; not in out_dir names
CLAIM_NAME = "sweep.lock"  # in a point's out_dir: flock-ed by the sweep that decides about / runs it
# train.py settings that steer the run but not its result: a finished point whose config.json
# differs from the sweep only in these is still the same point (see settings_changed)
RUN_CONTROL = ("out_dir", "init_from", "eval_interval", "log_interval", "eval_only", "save_checkpoints",
               "keep_last", "halt_at_iter", "sample_tokens", "wandb_log", "wandb_project", "wandb_run_name",
               "wandb_group", "wandb_mode", "device", "compile", "fused", "parallel")


# --- the points ---

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
        run_name = " ".join(os.path.relpath(out_dir, out_root).split(os.sep))  # completep L2_N64 lr2^-7 s0
        points.append(dict(coords=coords, config=config, out_dir=out_dir, args=args, run_name=run_name))
    if len({p["out_dir"] for p in points}) != len(points):
        raise UserError("two points share an out_dir; the directory names cannot tell them apart")
    return points


def outcome_row(sweep, point, axes, final, wall):
    """The results row of a finished point (results.columns): its coordinates, how it ended
    (its final.json), and the commit that ran it (its provenance.json, else the sweep's)."""
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
               else point["out_dir"],
               commit=run_commit(point["out_dir"]) or sweep_commit())
    return row


@functools.lru_cache(maxsize=None)
def sweep_commit():
    """The checkout's commit when this sweep started (runs.git_commit, asked once): a row's
    commit where its run's provenance.json names none."""
    return git_commit(REPO)


# --- running points ---

def wandb_names(config, group, run_name):
    """--wandb_group and --wandb_run_name of a point or trial whose settings log to wandb
    (wandb_log): the sweep's (search's) name as its group and its coordinates as its name, so a
    sweep is one view in wandb; a wandb_group the user set is kept. Nothing for a run without
    wandb: its command stays the plain train.py command the sweep file describes (settings_changed
    ignores both: they name a place, not what is computed)."""
    if not config.get("wandb_log"):
        return []
    return ([] if config.get("wandb_group") else [override("wandb_group", group)]) + \
        [override("wandb_run_name", run_name)]


def command(point, settings, nproc):
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return launcher + [os.path.join(REPO, "train.py")] + settings["base_config"] + point["args"] + \
        wandb_names(point["config"], settings["name"], point.get("run_name", "")) + [f"--out_dir={point['out_dir']}"]


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


def fresh_out_dir(out):
    """out exists; without a checkpoint (runs.has_checkpoint: .pt or fsdp's .dcp) the run starts
    from scratch, so the records of an earlier attempt go (train.log stays, appended to)."""
    os.makedirs(out, exist_ok=True)
    if not has_checkpoint(out):
        for n in ("metrics.jsonl", "final.json"):
            if os.path.exists(os.path.join(out, n)):
                os.remove(os.path.join(out, n))


def child_env(threads, gpus=None):
    """A child's environment: its CPU threads, and the GPUs it may see (from --gpus)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return env


def start(point, settings, args, threads, gpus=None, hold=None):
    """A running job for the point (its claim `hold` kept in it until finish). A point without
    a checkpoint (runs.has_checkpoint: .pt or fsdp's .dcp) starts from scratch, so the logs of an
    earlier attempt go; one with a checkpoint resumes and keeps them. `gpus`: the device ids it
    may see (CUDA_VISIBLE_DEVICES), from --gpus."""
    out = point["out_dir"]
    try:
        fresh_out_dir(out)
        log = open(os.path.join(out, "train.log"), "a")
    except OSError as e:
        raise UserError(f"cannot write to {out} ({e.strerror or e}); free space or make it writable, then run "
                         "the same command again") from None
    stamp, log_start = final_stamp(out), log.tell()
    proc = subprocess.Popen(command(point, settings, args.nproc_per_node), stdout=log,
                            stderr=subprocess.STDOUT, env=child_env(threads, gpus), cwd=REPO,
                            preexec_fn=die_with_parent)
    return dict(point=point, proc=proc, log=log, t0=time.time(), gpus=gpus, hold=hold, stamp=stamp,
                log_start=log_start)


def gpu_slots(args):
    """--gpus split into one group of --nproc_per_node ids per concurrent point, or None."""
    if not getattr(args, "gpus", None):
        return None
    ids = args.gpus
    return [ids[i:i + args.nproc_per_node] for i in range(0, len(ids) - args.nproc_per_node + 1, args.nproc_per_node)]


def pack_units(points, size):
    """The points as the units a sweep starts: lists of at most `size` points that share a
    pack_key (one pack.py process each), in the order of their first point; size 1: one each."""
    if size <= 1:
        return [[p] for p in points]
    groups = {}
    for i, p in enumerate(points):
        groups.setdefault(pack_key(p["config"]), []).append(i)
    units = [ix[j:j + size] for ix in groups.values() for j in range(0, len(ix), size)]
    return [[points[i] for i in u] for u in sorted(units)]


def start_pack(points, settings, args, threads, gpus=None, holds=()):
    """A running job that trains `points` (claimed: `holds`) as one pack: pack.py with the pack
    file <out_root>/packs/<name>-<digest>.json ({"members": [each point's train.py arguments]},
    written whole) and its own log beside it; each member writes its own records and train.log
    in its out_dir. As start() does for a point, a member without a checkpoint starts over."""
    stamps, log_starts = [], []
    for p in points:
        out = p["out_dir"]
        try:
            fresh_out_dir(out)
            stamps.append(final_stamp(out))
            log_starts.append(os.path.getsize(os.path.join(out, "train.log"))
                              if os.path.exists(os.path.join(out, "train.log")) else 0)
        except OSError as e:
            raise UserError(f"cannot write to {out} ({e.strerror or e}); free space or make it writable, then run "
                            "the same command again") from None
    digest = hashlib.sha1("\n".join(p["out_dir"] for p in points).encode()).hexdigest()[:10]
    path = os.path.join(args.out_root, "packs", f"{settings['name']}-{digest}.json")
    spec = dict(members=[command(p, settings, 1)[2:] for p in points])
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, json.dumps(spec, indent=1) + "\n")
        log = open(path[:-len(".json")] + ".log", "a")
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror or e}); free space or make {args.out_root} writable, "
                        "then run the same command again") from None
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "pack.py"), path], stdout=log,
                            stderr=subprocess.STDOUT, env=child_env(threads, gpus), cwd=REPO,
                            preexec_fn=die_with_parent)
    return dict(points=points, proc=proc, log=log, t0=time.time(), gpus=gpus, holds=list(holds), stamps=stamps,
                log_starts=log_starts, pack_log=log.name)


def end_pack(job):
    """The per-member jobs finish() records, one per point of an ended pack job: each with the
    pack's wall time shared out equally (a row's wall_s stays that point's share of the machine)
    and the pack log's last line for a failure its own train.log does not explain."""
    job["log"].close()
    tail = last_line(job["pack_log"])
    wall = (time.time() - job["t0"]) / len(job["points"])
    return [dict(point=p, proc=job["proc"], log=None, t0=job["t0"], wall=wall, stamp=job["stamps"][i],
                 log_start=job["log_starts"][i], hold=job["holds"][i], tail=f"pack: {tail}" if tail else "")
            for i, p in enumerate(job["points"])]


def finish(job, sweep, axes, results, header, progress=""):
    """Record a finished child: a row for done/diverged, a message otherwise (each line
    prefixed with `progress`, e.g. '[3/72] eta 0:41:10 '); then let go of the point's claim.
    How the run ended is read from its own record first, the final.json this run wrote: under
    torchrun a stopped or diverged worker's exit code reaches the sweep as 1. Returns
    'finished', 'stopped', 'busy' or 'failed'."""
    if job.get("log"):  # a pack's members share the pack's log (closed by _end_pack)
        job["log"].close()
    rc, point = job["proc"].returncode, job["point"]
    out = point["out_dir"]
    try:
        # this run's final.json, or whatever is there when train.py's own exit code says it ended
        final = read_final(out) if final_stamp(out) != job.get("stamp") or rc in (0, EXIT_DIVERGED) else None
        status = (final or {}).get("status")
        if status in FINISHED:
            row = outcome_row(sweep, point, axes, final, job.get("wall", time.time() - job["t0"]))
            again = "" if append_row(results, header, row) else " (its row was already there)"
            print(f"{progress}{status:8s} {row['val_loss']!s:>8.8} val  {row['wall_s']:7.1f}s  {out}{again}", flush=True)
            return "finished"
        if status == "stopped" or rc in (EXIT_STOPPED, -signal.SIGTERM, -signal.SIGINT):  # or signalled before it could stop
            print(f"{progress}stopped           {out} (re-run the sweep to continue it)", flush=True)
            return "stopped"
        if rc != 0 and (lock_owner(out) or "is in use by another run" in _output(job)):  # taken just now
            print(f"{progress}busy              {out} (another process owns it)", flush=True)
            return "busy"
        print(f"{progress}FAILED (exit {rc}) {out}: {job.get('tail') or log_tail(out)}", file=sys.stderr, flush=True)
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


def run_local(points, settings, axes, results, args):
    """Run the points that are not finished, args.jobs at a time (args: jobs, threads_per_job,
    nproc_per_node, gpus); each finished point appends its row to `results`. Returns the
    sweep's exit code (0, 1 some failed, 4 stopped)."""
    # a mismatched results file stops the sweep before any point runs; one written before the
    # commit column keeps its header
    header = check_header(results, columns(axes))
    sweep_commit()  # the checkout's commit at the sweep's start
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
    queue, total = pack_units(todo, getattr(args, "pack", 1)), len(todo)
    free = gpu_slots(args)  # each running point (or pack) holds one slot of GPUs; None: no --gpus
    t0, ended = time.time(), 0  # progress: k/N points of this invocation and an ETA from their pace
    while queue or running:
        while queue and len(running) < args.jobs and stop["signal"] is None and free != []:
            unit, holds = queue.pop(0), []
            for point in unit:
                hold, what = take(point, settings["name"], axes, results, header)
                if hold is None:  # another sweep runs it, or has finished it since this one started
                    total -= 1
                    print(f"{'busy' if what == 'busy' else 'finished':17s} {point['out_dir']} "
                          f"({'another process runs it' if what == 'busy' else 'by another process'})", flush=True)
                    continue
                holds.append((point, hold))
            if not holds:
                continue
            slot = free.pop(0) if free else None
            if len(holds) == 1:  # alone: train.py itself
                running.append(start(holds[0][0], settings, args, args.threads_per_job, slot, holds[0][1]))
            else:
                try:
                    running.append(start_pack([p for p, _ in holds], settings, args, args.threads_per_job, slot,
                                              [h for _, h in holds]))
                except BaseException:
                    for _, h in holds:
                        h.close()
                    raise
        time.sleep(0.2)
        for j in [j for j in running if j["proc"].poll() is not None]:
            running.remove(j)
            if j.get("gpus") is not None:
                free.append(j["gpus"])
            for m in end_pack(j) if "points" in j else [j]:
                ended += 1
                eta = (time.time() - t0) / ended * (total - ended)
                end = finish(m, settings["name"], axes, results, header, f"[{ended}/{total}] eta {hms(eta)}  ")
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


# --- packs (scripts/sweep.py --pack; pack.py trains them) ---

# values that only change the init or the optimizer: may differ between members
PACKABLE = ("learning_rate", "init_std", "weight_decay", "eps", "beta1", "beta2", "grad_clip", "seed",
            "module_hparams")
# per-run bookkeeping that does not change what is computed (each member keeps its own)
IGNORED = ("out_dir", "init_from", "save_checkpoints", "keep_last", "halt_at_iter", "sample_tokens",
           "verify_data", "log_interval", "wandb_log", "wandb_project", "wandb_run_name", "wandb_group",
           "wandb_mode", "compile", "fused", "eval_only")


def pack_key(config):
    """The settings that must be equal for configs to share a pack: everything but the packable
    values and the per-run bookkeeping, plus module_hparams' forward multipliers ("residual")."""
    key = []
    for k in sorted(config):
        if k in PACKABLE or k in IGNORED:
            continue
        v = config[k]
        key.append((k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v))
    residual = (config.get("module_hparams") or {}).get("residual", {})
    key.append(("module_hparams.residual", json.dumps(residual, sort_keys=True)))
    return tuple(key)


def group_by_key(configs):
    """{pack_key: [indices of configs]} in first-seen order: the packs a list of points makes."""
    packs = {}
    for i, c in enumerate(configs):
        packs.setdefault(pack_key(c), []).append(i)
    return packs



# --- the sweep file (scripts/sweep.py's and search.py's --from_sweep lookup) ---

SPECIAL = ("base_config", "name", "out_root", "results", "order", "points")


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

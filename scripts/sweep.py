"""
Expand a sweep file into a grid of train.py runs; run them here, N at a time, or as a SLURM
job array. Every point gets an out_dir named by its coordinates and appends one row to a
results CSV when it ends; finished points (done or diverged: a row in the results file, or a
final.json that says so) are skipped, so a sweep can be stopped (Ctrl-C, SIGTERM) and
restarted with the same command, or continued elsewhere from a copy of its results file.

    python scripts/sweep.py experiments/depth_transfer_b4/depth_lr.py --dry_run   # list the points
    python scripts/sweep.py experiments/depth_transfer_b4/depth_lr.py             # one after another
    python scripts/sweep.py experiments/depth_transfer_b4/depth_lr.py --jobs 2 --threads 2
    python scripts/sweep.py experiments/depth_transfer_b4/depth_lr.py --slurm [--submit] [--sbatch=--time=0:30:00]
    python scripts/sweep.py experiments/depth_transfer_b4/depth_lr.py --index 17  # one point (a SLURM task)
    python scripts/sweep.py experiments/depth_transfer_b4/depth_lr.py --pack 6    # 6 points per process (pack.py)
    python scripts/sweep.py experiments/planned/width_lr/width_lr.py --nproc_per_node 8 --set device=cuda

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
Every other name must be a train.py setting. With wandb on (wandb_log = True in the base config
or --set wandb_log=True) every point logs to the wandb group of the sweep's name as a run named by
its coordinates ('completep L4_N64 lr2^-7 s0'), so a sweep is one view there.

out_dir: <out_root>/<parameterization>/L<n_layer>_N<n_embd>/<other axes, e.g. lr2^-7>/s<seed>

--pack K: points that differ only in values (learning_rate, init_std, weight_decay, eps, betas,
grad_clip, seed, module_hparams but its forward "residual" multipliers; grid.pack_key) run K at a
time in one process as one stacked model (pack.py: each member computes what its point alone
computes, up to float reassociation, and writes the same records in its own out_dir, with a
"packed" note in its provenance.json). --jobs packs run at once, --threads split among them as
among points. A stopped pack continues with the same command, packed or not. Each member's row
gets an equal share of its pack's wall time. Not with --slurm, --index or --nproc_per_node > 1.

This file reads the sweep file and the flags; the grid's points, their claims and running them
are grid.py's (scripts/shapes.py runs its points through it too), the results file results.py's.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from configurator import parse  # noqa: E402
from grid import expand, load_sweep, run_local, state  # noqa: E402
from results import axis_keys, check_header, columns, recorded  # noqa: E402
from runs import CONTROL, EXIT_STOPPED, UserError, run_cli, train_defaults, write_atomic  # noqa: E402

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
    ap.add_argument("--pack", type=int, default=1, metavar="K",
                    help="train up to K points that differ only in values in one process (pack.py); default 1")
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
    if args.pack < 1:
        raise UserError(f"--pack {args.pack} must be at least 1 (1: one process per point)")
    if args.pack > 1 and (args.slurm or args.index is not None or args.nproc_per_node > 1):
        what = "--slurm" if args.slurm else "--index" if args.index is not None else "--nproc_per_node > 1"
        raise UserError(f"--pack runs points together in one local process; it does not combine with {what}: drop "
                        "one of the two")
    if args.submit and not args.slurm:
        raise UserError("--submit needs --slurm")
    if not os.path.isfile(args.sweep_file):
        what = "is a directory, not a file" if os.path.isdir(args.sweep_file) else "does not exist"
        raise UserError(f"sweep file {args.sweep_file} {what}; the sweep files are in experiments/<study>/")

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
        check_header(args.results, columns(axes))  # what would stop the real run stops this one
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

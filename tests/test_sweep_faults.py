"""scripts/sweep.py under faults and hostile input (issue: the second round): strings that reach
the sbatch script, torn and unwritable results, which checkpoint keeps a point's records, two
sweeps on one out_root, and "stopped" read from the run's own record (torchrun turns exit 4
into 1). Fake trainers where the trainer itself is not under test; CPU, offline."""
import errno
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("sweep_script", os.path.join(REPO, "scripts", "sweep.py"))
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)
import grid as machinery  # noqa: E402  (the grid's points, claims and children: grid.py)
import results as results_file  # noqa: E402
import runs  # noqa: E402
UserError = sweep.UserError


@pytest.fixture
def grid(char_data, tmp_path):
    """A 3-point sweep file (seeds) on a tiny base config, and the argv that runs it here."""
    (tmp_path / "base.py").write_text(
        f"data_dir = {char_data!r}\nn_layer = 1\nn_embd = 16\nn_head = 2\nbase_n_embd = 16\nbase_n_layer = 1\n"
        "block_size = 16\nbatch_size = 2\nglobal_batch_size = 4\nmax_iters = 6\neval_interval = 1000\n"
        "eval_tokens = 64\nlog_interval = 1\nsample_tokens = 0\ndevice = 'cpu'\n")
    (tmp_path / "grid.py").write_text(f"base_config = {str(tmp_path / 'base.py')!r}\nseed = [0, 1, 2]\n")
    return [str(tmp_path / "grid.py"), "--out_root", str(tmp_path / "runs"), "--results", str(tmp_path / "r.csv")]


def _points(argv):
    defaults, annotations = runs.train_defaults()
    settings, axes, fixed = sweep.load_sweep(argv[0], defaults)
    return settings, axes, machinery.expand(settings, axes, fixed, {}, defaults, annotations, argv[2])


def _main(argv, monkeypatch=None, child=None):
    """sweep.main in-process (its signal handlers restored), every point's train.py replaced by
    `child` (python source, argv[1] the out_dir)."""
    if child is not None:
        monkeypatch.setattr(machinery, "command", lambda point, settings, n: [sys.executable, "-c", child, point["out_dir"]])
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return sweep.main(argv)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


def _rows(path):
    import csv
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


DONE = """import json, os, sys
with open(os.path.join(sys.argv[1], "final.json"), "w") as f:
    json.dump({"status": "done", "iter": 6, "val_loss": 1.5, "train_loss": 1.4}, f)
"""


# --- class 1: every string that reaches a generated script is quoted or refused ---

def test_a_newline_in_the_sweep_file_path_reaches_no_script(grid, tmp_path):
    """The issue's example (the path lands in a comment line of the sbatch script) and its
    class: the #SBATCH --output path, and what the task command quotes instead."""
    named = tmp_path / "a\nrm -rf ~" / "grid.py"
    named.parent.mkdir()
    named.write_text((tmp_path / "grid.py").read_text())
    with pytest.raises(UserError, match="the sweep file .* holds a control character"):
        _main([str(named), *grid[1:], "--slurm"])
    with pytest.raises(UserError, match=r"holds ' ', which the #SBATCH --output line cannot carry"):
        _main([grid[0], "--out_root", str(tmp_path / "my runs"), "--results", grid[4], "--slurm"])
    assert not list(tmp_path.rglob("sweep.sbatch"))
    # a results path and a --set value full of shell syntax arrive in the task command as they are
    results = str(tmp_path / "r $(touch pwned); `x` 'q'.csv")
    assert _main([*grid[:4], results, "--slurm", "--set", "wandb_run_name=a b;$(c)"]) == 0
    script = (tmp_path / "runs" / "sweep.sbatch").read_text()
    task = next(line for line in script.splitlines() if "--index" in line)
    words = shlex.split(task.replace("$SLURM_ARRAY_TASK_ID", "7").replace("${SLURM_CPUS_PER_TASK:-1}", "1"))
    assert words[words.index("--results") + 1] == results and "--set=wandb_run_name=a b;$(c)" in words
    assert subprocess.run(["bash", "-n", str(tmp_path / "runs" / "sweep.sbatch")]).returncode == 0


# --- class 2: records written whole, torn lines, a full disk ---

def test_a_torn_results_row_and_a_full_disk_lose_nothing(grid, tmp_path, monkeypatch):
    """A row appended after a torn one starts on its own line; a results file that cannot be
    written (ENOSPC) stops the sweep in one line, and the next start records the point from its
    final.json without running it again. The sbatch script is written whole or not at all."""
    settings, axes, points = _points(grid)
    header, results = results_file.columns(axes), grid[4]
    results_file.append_row(results, header, {"status": "done", "out_dir": points[2]["out_dir"], "sweep": "x"})
    with open(results, "a") as f:
        f.write("grid,completep,1,16")  # a kill mid-append
    assert results_file.append_row(results, header, {"status": "stopped", "out_dir": points[1]["out_dir"], "sweep": "x"})
    lines = open(results).read().splitlines()
    assert lines[-2] == "grid,completep,1,16" and lines[-1].startswith("x,") and len(_rows(results)) == 3
    os.remove(results)

    def full(path, line):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(results_file, "append_line", full)
    with pytest.raises(UserError, match=r"cannot append to the results file .*No space left on device.*"
                                               r"final.json keeps its result"):
        _main([*grid, "--index", "0"], monkeypatch, DONE)
    assert open(results).read() == ""  # the lock's handle made it; nothing half-written
    monkeypatch.undo()
    ran = []
    monkeypatch.setattr(machinery, "start", lambda *a: ran.append(a))
    assert _main([*grid, "--index", "0"]) == 0 and not ran  # recorded, not run again
    assert [r["status"] for r in _rows(results)] == ["done"]

    monkeypatch.setattr(sweep, "write_atomic", full)
    with pytest.raises(UserError, match=r"cannot write .*sweep.sbatch \(No space left on device\)"):
        _main([*grid, "--slurm"])
    assert not list(tmp_path.rglob("sweep.sbatch*"))


# --- class 3: one rule for "has a checkpoint" (.pt, or fsdp's .dcp) ---

def test_a_dcp_checkpoint_keeps_the_points_records(grid, monkeypatch):
    """A point whose checkpoint is a .dcp directory resumes: its metrics.jsonl and final.json
    stay (they were deleted, while train.py resumed from the .dcp); without one they go."""
    _, _, points = _points(grid)
    keep, fresh = points[0]["out_dir"], points[1]["out_dir"]
    for d in (keep, fresh):
        os.makedirs(d)
        for n in ("metrics.jsonl", "final.json"):
            with open(os.path.join(d, n), "w") as f:
                f.write('{"iter": 2, "status": "stopped"}\n')
    os.makedirs(os.path.join(keep, "ckpt_0000002.dcp"))
    monkeypatch.setattr(machinery, "command", lambda *a: [sys.executable, "-c", "pass"])
    args = type("A", (), dict(nproc_per_node=1))
    for p in points[:2]:
        machinery.start(p, {}, args, 1)["proc"].wait()
    assert os.path.exists(os.path.join(keep, "metrics.jsonl")) and os.path.exists(os.path.join(keep, "final.json"))
    assert not os.path.exists(os.path.join(fresh, "metrics.jsonl")) and not os.path.exists(os.path.join(fresh, "final.json"))


# --- class 6: several sweeps on one out_root ---

FAKE_TRAIN = """
import json, os, sys, time
sys.path.insert(0, sys.argv[2])
import runs
out = sys.argv[1]
time.sleep(0.4)  # train.py's start-up (importing torch) before it takes the out_dir's lock
try:
    lock = runs.RunLock(out)
except runs.UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
with open(os.path.join(out, "ran.txt"), "a") as f:  # kept across restarts, unlike metrics.jsonl
    f.write(f"{os.getpid()}\\n")
time.sleep(0.4)
with open(os.path.join(out, "final.json"), "w") as f:
    json.dump({"status": "done", "iter": 6, "val_loss": 1.5, "train_loss": 1.4}, f)
lock.release()
"""
WRAPPER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("sweep_script", sys.argv[1])
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)
import grid
grid.command = lambda point, settings, n: [sys.executable, "-c", sys.argv[2], point["out_dir"], sweep.REPO]
sys.exit(sweep.main(sys.argv[3:]))
"""


def test_two_sweeps_on_one_out_root_run_each_point_once(grid):
    """The issue's example: two sweeps started together on one out_root. Each point runs once
    and has one row; neither reports a point the other ran as FAILED; both exit 0."""
    cmd = [sys.executable, "-c", WRAPPER, os.path.join(REPO, "scripts", "sweep.py"), FAKE_TRAIN, *grid]
    procs = [subprocess.Popen(cmd, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("FAILED" in err for _, err in outs), outs
    rows = _rows(grid[4])
    assert sorted(r["seed"] for r in rows) == ["0", "1", "2"] and {r["status"] for r in rows} == {"done"}, outs
    _, _, points = _points(grid)
    for p in points:
        with open(os.path.join(p["out_dir"], "ran.txt")) as f:
            assert len(f.read().split()) == 1, f"{p['out_dir']} ran twice: {outs}"


def test_a_point_decided_under_its_claim(grid):
    """Members of the class without timing: a point another process claims is busy (not run, no
    row); one finished since the sweep looked is skipped, and a second row for it is refused."""
    settings, axes, points = _points(grid)
    header, results = results_file.columns(axes), grid[4]
    other = machinery.claim(points[0]["out_dir"])  # another sweep holds point 0
    try:
        assert machinery.take(points[0], "grid", axes, results, header) == (None, "busy")
    finally:
        other.close()
    hold, what = machinery.take(points[0], "grid", axes, results, header)
    assert what == "run"
    hold.close()
    # point 1 was to run when this sweep started; another one finished and recorded it since
    assert machinery.state(points[1], results_file.recorded(results))[0] == "run"
    os.makedirs(points[1]["out_dir"])
    subprocess.run([sys.executable, "-c", DONE, points[1]["out_dir"]], check=True)
    row = machinery.outcome_row("grid", points[1], axes, runs.read_final(points[1]["out_dir"]), 1.0)
    assert results_file.append_row(results, header, row) is True
    assert machinery.take(points[1], "grid", axes, results, header) == (None, "skip")
    assert results_file.append_row(results, header, row) is False and len(_rows(results)) == 1


def test_rows_record_their_commit_and_a_file_without_the_column_still_reads(grid, tmp_path):
    """A row's commit is the one its run's provenance.json names (its latest start), else the
    sweep's checkout; a results file written before the commit column keeps its header when a
    sweep continues it, and reads as before."""
    settings, axes, points = _points(grid)
    out = points[0]["out_dir"]
    os.makedirs(out)
    subprocess.run([sys.executable, "-c", DONE, out], check=True)
    final = runs.read_final(out)
    assert machinery.outcome_row("grid", points[0], axes, final, 1.0)["commit"] == runs.git_commit()
    with open(os.path.join(out, "provenance.json"), "w") as f:
        json.dump({"git_commit": "a" * 40, "resumes": [{"git_commit": "b" * 40, "step": 2}]}, f)
    row = machinery.outcome_row("grid", points[0], axes, final, 1.0)
    assert row["commit"] == "b" * 40
    header = results_file.columns(axes)
    assert header[-2:] == ["out_dir", "commit"] and runs.git_commit(str(tmp_path)) == "unknown"
    old = str(tmp_path / "old.csv")
    with open(old, "w") as f:
        f.write(",".join(header[:-1]) + "\n")
    legacy = results_file.check_header(old, header)
    assert legacy == header[:-1] and results_file.append_row(old, legacy, row)
    assert open(old).read().splitlines()[0] == ",".join(header[:-1])
    assert [r["status"] for r in results_file.load(old)] == ["done"]
    new = str(tmp_path / "new.csv")
    assert results_file.append_row(new, results_file.check_header(new, header), row)
    assert [r["commit"] for r in results_file.load(new)] == ["b" * 40]


# --- class 10: "stopped" from the run's own record ---

def test_stopped_is_read_from_the_record_this_run_wrote(grid, monkeypatch, capsys):
    """torchrun reports a stopped worker's exit 4 as 1: a final.json 'stopped' this run wrote
    makes the point stopped (the sweep exits 4, so an array task is requeued); a 'stopped' left
    by an earlier run, before a resume that crashed, does not: FAILED, exit 1."""
    _, _, points = _points(grid)
    out = points[0]["out_dir"]
    os.makedirs(out)
    open(os.path.join(out, "ckpt_0000002.pt"), "w").close()  # resumes: its records are kept
    stop = ("import json, os, sys\nwith open(os.path.join(sys.argv[1], 'final.json'), 'w') as f:\n"
            "    json.dump({'status': 'stopped', 'iter': 3}, f)\nsys.exit(1)\n")
    assert _main([*grid, "--index", "0"], monkeypatch, stop) == 4
    assert "stopped " in capsys.readouterr().out and not os.path.exists(grid[4])
    time.sleep(0.05)  # the stale final.json is older than anything the next run could write
    assert _main([*grid, "--index", "0"], monkeypatch, "import sys; print('crash'); sys.exit(1)") == 1
    assert "FAILED (exit 1)" in capsys.readouterr().err
    assert json.load(open(os.path.join(out, "final.json")))["status"] == "stopped"  # left as it was


@pytest.mark.slow
def test_a_stopped_torchrun_point_requeues_its_array_task(grid, tmp_path):
    """The issue's example, end to end with 2 gloo processes: the generated sbatch script runs
    its point under torchrun (--nproc_per_node 2), the point stops by itself (halt_at_iter),
    torchrun exits 1, and the sweep still says stopped and exits 4, so the task is requeued."""
    with open(tmp_path / "base.py", "a") as f:
        f.write("save_checkpoints = True\n")
    assert _main([*grid, "--slurm", "--nproc_per_node", "2", "--set", "halt_at_iter=2"]) == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/bash\necho "$@" >> "$SCONTROL_LOG"\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_ARRAY_JOB_ID="77", SLURM_ARRAY_TASK_ID="0",
               SCONTROL_LOG=str(tmp_path / "scontrol.log"), OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    res = subprocess.run(["bash", str(tmp_path / "runs" / "sweep.sbatch")], env=env, cwd=REPO, text=True,
                         capture_output=True, timeout=240)
    point = _points(grid)[2][0]["out_dir"]
    log = open(os.path.join(point, "train.log")).read()
    assert res.returncode == 4, (res.stdout, res.stderr, log[-2000:])
    assert "exitcode  : 4" in log and "FAILED" not in res.stderr  # torchrun said 1; the record says stopped
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "77_0"]
    assert runs.read_final(point)["status"] == "stopped" and os.path.exists(os.path.join(point, "ckpt_0000002.pt"))

"""scripts/sweep.py (and grid.py, results.py under it): a tiny sweep end to end on a small char
dataset made here, restart skipping, atomic rows, the commit of each row, errors, children
reaped on every exit. CPU, offline, a few seconds of training in all. The plot tests are in
test_plot_transfer.py."""
import argparse
import csv
import importlib.util
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sweep = _module("sweep_script", "scripts/sweep.py")
import grid as machinery  # noqa: E402  (the grid's points, claims and children: grid.py)
import results  # noqa: E402
import runs  # noqa: E402
UserError = sweep.UserError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small char dataset, a tiny base config and a 2 depths x 2 LRs sweep file."""
    root = tmp_path_factory.mktemp("sweep")
    text = "".join(f"To be, or not to be {i}: that is the question.\n" for i in range(300))
    (root / "input.txt").write_text(text)
    prepare = _module("prepare_char", "data/shakespeare_char/prepare.py")
    prepare.prepare(str(root / "data"), str(root / "input.txt"))
    (root / "base.py").write_text(
        f"data_dir = {str(root / 'data')!r}\nn_embd = 16\nn_head = 2\nbase_n_embd = 16\n"
        "base_n_layer = 1\nblock_size = 16\nbatch_size = 4\nglobal_batch_size = 4\nmax_iters = 4\n"
        "eval_interval = 1000\neval_tokens = 64\nlog_interval = 2\nsave_checkpoints = False\n"
        "sample_tokens = 0\ndevice = 'cpu'\nparameterization = 'completep'\n")
    (root / "tiny.py").write_text(
        f"base_config = {str(root / 'base.py')!r}\nn_layer = [1, 2]\n"
        "learning_rate = [2.0 ** -8, 2.0 ** -6]\nseed = [0]\norder = ['seed', 'n_layer', 'learning_rate']\n")
    return root


def _sweep(root, *extra):
    cmd = [sys.executable, os.path.join(REPO, "scripts", "sweep.py"), str(root / "tiny.py"),
           "--out_root", str(root / "runs"), "--results", str(root / "results.csv"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_tiny_sweep_runs_records_and_restarts(tiny):
    # one point has already diverged: it must be recorded as such, not run again
    bad = tiny / "runs" / "completep" / "L2_N16" / "lr2^-6" / "s0"
    bad.mkdir(parents=True)
    (bad / "final.json").write_text(json.dumps(dict(status="diverged", iter=1, lr=0.01, best_val_loss=4.0)))

    res = _sweep(tiny, "--jobs", "2", "--threads", "2")
    assert res.returncode == 0, res.stderr
    # progress: k/N of the 3 points this invocation runs, each with an ETA (0:00 at the last)
    marks = re.findall(r"^\[(\d)/(\d)\] eta (\d+:\d\d) ", res.stdout, re.M)
    assert [(k, n) for k, n, _ in marks] == [("1", "3"), ("2", "3"), ("3", "3")] and marks[-1][2] == "0:00"
    rows = _rows(tiny / "results.csv")
    assert len(rows) == 4
    by_dir = {r["out_dir"]: r for r in rows}
    assert set(by_dir) == {str(tiny / "runs" / "completep" / f"L{L}_N16" / f"lr2^{k}" / "s0")
                           for L in (1, 2) for k in (-8, -6)}
    assert by_dir[str(bad)]["status"] == "diverged" and math.isinf(float(by_dir[str(bad)]["val_loss"]))
    assert not (bad / "metrics.jsonl").exists()  # recorded, never run
    for d, r in by_dir.items():
        if d != str(bad):
            assert r["status"] == "done" and r["steps"] == "4" and r["tokens"] == str(4 * 4 * 16)
            assert math.isfinite(float(r["val_loss"])) and float(r["wall_s"]) > 0
            assert json.load(open(os.path.join(d, "final.json")))["status"] == "done"
    assert {r["n_layer"] for r in rows} == {"1", "2"} and {r["parameterization"] for r in rows} == {"completep"}
    # each row names the commit that ran it (the provenance.json of its run; the sweep's checkout
    # for the point recorded from its final.json alone)
    assert {r["commit"] for r in rows} == {runs.git_commit()}

    # restart: nothing runs, nothing is appended
    stamps = {p: os.path.getmtime(os.path.join(p, "final.json")) for p in by_dir}
    csv_mtime = os.path.getmtime(tiny / "results.csv")
    res = _sweep(tiny)
    assert res.returncode == 0, res.stderr
    assert "4 finished, 0 to run" in res.stdout
    assert len(_rows(tiny / "results.csv")) == 4
    assert os.path.getmtime(tiny / "results.csv") == csv_mtime
    assert stamps == {p: os.path.getmtime(os.path.join(p, "final.json")) for p in by_dir}

    # lost results file: rows come back from final.json, still without running anything
    os.remove(tiny / "results.csv")
    res = _sweep(tiny)
    assert res.returncode == 0 and "0 to run" in res.stdout
    assert len(_rows(tiny / "results.csv")) == 4
    assert stamps == {p: os.path.getmtime(os.path.join(p, "final.json")) for p in by_dir}

    # a row is enough: a copied results file continues a sweep without its run directories
    shutil.rmtree(bad)
    res = _sweep(tiny, "--dry_run")
    assert res.stdout.count("diverged") == 1 and "todo" not in res.stdout


@pytest.mark.slow
def test_failing_points_stop_the_sweep(tiny, tmp_path):
    """A point train.py rejects (no data here) gets no row; three in a row stop the sweep."""
    (tmp_path / "broken.py").write_text(
        f"base_config = {str(tiny / 'base.py')!r}\ndata_dir = {str(tmp_path / 'nodata')!r}\n"
        "seed = [0, 1, 2, 3, 4]\n")
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "sweep.py"), str(tmp_path / "broken.py"),
                          "--out_root", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.count("FAILED (exit 2)") == 3 and "3 points failed in a row" in res.stderr
    assert not (tmp_path / "runs" / "results.csv").exists()


def test_dry_run_slurm_and_index_listing(tiny, capsys):
    out_root, results = str(tiny / "plans"), str(tiny / "plans.csv")
    assert sweep.main([str(tiny / "tiny.py"), "--dry_run", "--out_root", out_root, "--results", results]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and "4 points" in lines[-1]
    assert lines[0].split()[:2] == ["0", "todo"] and lines[0].endswith("L1_N16/lr2^-8/s0")
    assert sweep.main([str(tiny / "tiny.py"), "--slurm", "--out_root", out_root, "--results", results,
                       "--jobs", "2", "--nproc_per_node", "2", "--sbatch=--gres=gpu:2"]) == 0
    script = open(os.path.join(out_root, "sweep.sbatch")).read()
    assert "#SBATCH --array=0-3%2" in script and "#SBATCH --gres=gpu:2" in script
    assert "--index $SLURM_ARRAY_TASK_ID" in script and "--nproc_per_node 2" in script
    # the warning reaches the batch shell (B:), which forwards it and requeues a stopped task
    assert "#SBATCH --signal=B:TERM@" in script and "#SBATCH --requeue" in script
    assert "trap 'kill -TERM $PID" in script and 'scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"' in script
    assert not os.path.exists(results)
    with pytest.raises(UserError, match="sbatch is not on PATH"):
        os.environ["PATH"], saved = "/nonexistent", os.environ["PATH"]
        try:
            sweep.main([str(tiny / "tiny.py"), "--slurm", "--submit", "--out_root", out_root, "--results", results])
        finally:
            os.environ["PATH"] = saved


@pytest.mark.slow
def test_slurm_array_task_stops_on_the_batch_warning_and_requeues(tiny, tmp_path):
    """The generated task script, run by bash as SLURM would (scontrol a stand-in): SIGTERM to
    the batch shell reaches train.py through the sweep, the point saves and stops (exit 4), and
    the task is requeued (its rerun resumes like any sweep point: test_resume, test_faults)."""
    (tmp_path / "long.py").write_text((tiny / "base.py").read_text() + "max_iters = 100000\nlog_interval = 1\n"
                                      "save_checkpoints = True\neval_interval = 100000\n")
    (tmp_path / "one.py").write_text(f"base_config = {str(tmp_path / 'long.py')!r}\nn_layer = [1]\nseed = [0]\n")
    out_root, results = tmp_path / "runs", tmp_path / "results.csv"
    assert sweep.main([str(tmp_path / "one.py"), "--slurm", "--out_root", str(out_root), "--results", str(results)]) == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/bash\necho "$@" >> "$SCONTROL_LOG"\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_ARRAY_JOB_ID="77", SLURM_ARRAY_TASK_ID="0",
               SCONTROL_LOG=str(tmp_path / "scontrol.log"), OMP_NUM_THREADS="1")
    job = subprocess.Popen(["bash", str(out_root / "sweep.sbatch")], env=env, cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    point = out_root / "completep" / "L1_N16" / "base" / "s0"
    deadline = time.time() + 120
    while not (point / "metrics.jsonl").exists() or '"loss"' not in (point / "metrics.jsonl").read_text():
        assert job.poll() is None and time.time() < deadline, job.communicate()[0][-2000:]
        time.sleep(0.1)
    job.send_signal(signal.SIGTERM)
    log, _ = job.communicate(timeout=120)
    assert job.returncode == 4, log[-2000:]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "77_0"]
    assert json.loads((point / "final.json").read_text())["status"] == "stopped" and list(point.glob("ckpt_*.pt"))


@pytest.mark.parametrize("content, message", [
    ("n_layer = [1]\nlerning_rate = [0.1]\n", "not a train.py setting"),
    ("n_layer = []\n", "empty list"),
    ("n_layer = ['two']\n", "n_layer expects int"),
    ("n_layer = [1, 2]\norder = ['seed']\n", "order="),
    ("seed = 0\n", "no axis"),
    ("n_layer = [1\n", "line 1"),
])
def test_bad_sweep_files_fail_in_one_line(tmp_path, content, message):
    path = tmp_path / "bad.py"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        sweep.main([str(path), "--dry_run", "--out_root", str(tmp_path / "r")])
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "sweep.py"), str(path), "--dry_run",
                          "--out_root", str(tmp_path / "r")], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_bad_arguments(tiny):
    for argv, message in ([["--set", "n_layer=3"], "sweep axis"], [["--set", "nope=1"], "unknown config key"],
                          [["--jobs", "0"], "at least 1"], [["--index", "9"], "outside 0..3"],
                          [["--submit"], "needs --slurm"]):
        with pytest.raises(UserError, match=message):
            sweep.main([str(tiny / "tiny.py"), "--out_root", str(tiny / "runs"),
                        "--results", str(tiny / "results.csv"), *argv])


def _append_many(args):
    path, worker = args
    header = ["worker", "i", "note"]
    for i in range(40):
        results.append_row(path, header, dict(worker=worker, i=i, note="x" * 500 + ",quoted"))


def test_concurrent_appends_do_not_interleave(tmp_path):
    path = str(tmp_path / "rows.csv")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(path, w) for w in range(4)])
    rows = _rows(path)
    assert len(rows) == 160 and open(path).read().count("worker,i,note") == 1
    assert all(r["note"] == "x" * 500 + ",quoted" for r in rows)
    assert sorted((int(r["worker"]), int(r["i"])) for r in rows) == [(w, i) for w in range(4) for i in range(40)]


# --- faults: children, results files, stop codes, the sbatch script (issue 14, classes 7-10) ---

def _tiny_args(tiny, tmp_path, *extra):
    return [str(tiny / "tiny.py"), "--out_root", str(tmp_path / "runs"), "--results", str(tmp_path / "r.csv"),
            *extra]


def test_a_mismatched_results_file_stops_before_any_point(tiny, tmp_path):
    (tmp_path / "r.csv").write_text("sweep,lr,loss\nold,0.1,2.0\n")
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "sweep.py"), *_tiny_args(tiny, tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith(f"error: {tmp_path / 'r.csv'} has columns 'sweep,lr,loss'")
    assert not (tmp_path / "runs").exists(), "a point started before the results file was checked"


@pytest.mark.parametrize("kind", ["directory", "not UTF-8"])
def test_an_unreadable_results_file_is_one_line(tiny, tmp_path, kind):
    if kind == "directory":
        (tmp_path / "r.csv").mkdir()
    else:
        (tmp_path / "r.csv").write_bytes(b"\xff\xfe sweep,status\n")
    for extra in (["--dry_run"], []):
        with pytest.raises(UserError, match="is a directory, not a file" if kind == "directory"
                           else "cannot be read as UTF-8 CSV"):
            sweep.main(_tiny_args(tiny, tmp_path, *extra))


def test_a_sweep_file_that_is_a_directory(tmp_path):
    with pytest.raises(UserError, match="is a directory, not a file"):
        sweep.main([str(tmp_path), "--dry_run"])


def test_an_error_while_points_run_stops_and_reaps_children(tiny, tmp_path, monkeypatch):
    """Issue example's shape: an error escapes run_local while another point still trains."""
    jobs, real_start = [], machinery.start
    monkeypatch.setattr(machinery, "command", lambda point, settings, nproc: [
        sys.executable, "-c", "import time, sys; time.sleep(0 if sys.argv[1].endswith('lr2^-8/s0') else 120)",
        point["out_dir"]])
    monkeypatch.setattr(machinery, "start", lambda *a: jobs.append(real_start(*a)) or jobs[-1])

    def failing_finish(*a):
        raise UserError("results file changed under the sweep")
    monkeypatch.setattr(machinery, "finish", failing_finish)
    args = argparse.Namespace(jobs=2, threads_per_job=1, nproc_per_node=1)
    settings, axes, fixed = sweep.load_sweep(str(tiny / "tiny.py"), *runs.train_defaults()[:1])
    points = machinery.expand(settings, axes, fixed, {}, *runs.train_defaults(), str(tmp_path / "runs"))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(UserError, match="changed under the sweep"):
            machinery.run_local(points, settings, axes, str(tmp_path / "r.csv"), args)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert len(jobs) == 2 and all(j["proc"].returncode is not None for j in jobs), "a child outlives the sweep"
    assert jobs[1]["proc"].returncode == -signal.SIGTERM


WRAPPER = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("sweep_script", sys.argv[1])
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)
SLEEPER = "import os, sys, time; open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close(); time.sleep(120)"
import grid
grid.command = lambda point, settings, nproc: [sys.executable, "-c", SLEEPER, sys.argv[2]]
sys.exit(sweep.main(sys.argv[3:]))
"""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()  # a zombie has ended
    except FileNotFoundError:
        return False


def _start_wrapped_sweep(tiny, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, os.path.join(REPO, "scripts", "sweep.py"), str(pids),
                             *_tiny_args(tiny, tmp_path, "--jobs", "2")], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(os.listdir(pids)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert len(os.listdir(pids)) == 2, proc.communicate()
    return proc, [int(p) for p in os.listdir(pids)]


@pytest.mark.parametrize("signals", [1, 2])
def test_a_sweep_stopped_by_sigterm_exits_4_and_reaps(tiny, tmp_path, signals):
    proc, children = _start_wrapped_sweep(tiny, tmp_path)
    for _ in range(signals):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, (out, err)  # stopped, resumable: not success
    assert out.count("stopped  ") == 2 and "sweep stopped" in out
    assert not any(_alive(p) for p in children)
    res = sweep.main(_tiny_args(tiny, tmp_path, "--dry_run"))  # stopped points are still to do
    assert res == 0


def test_a_killed_sweep_takes_its_children_along(tiny, tmp_path):
    proc, children = _start_wrapped_sweep(tiny, tmp_path)
    proc.kill()
    proc.communicate()
    deadline = time.time() + 10
    while any(_alive(p) for p in children) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in children), "a child outlived a SIGKILLed sweep"


def test_one_rule_for_finished_rows(tiny, tmp_path, capsys):
    """Issue example: a row with an empty status was skipped forever while --dry_run said todo."""
    argv = _tiny_args(tiny, tmp_path)
    settings, axes, fixed = sweep.load_sweep(str(tiny / "tiny.py"), runs.train_defaults()[0])
    points = machinery.expand(settings, axes, fixed, {}, *runs.train_defaults(), str(tmp_path / "runs"))
    header = results.columns(axes)
    for p, status in zip(points, ["", "stopped", "done", "FAILED"]):
        results.append_row(str(tmp_path / "r.csv"), header, dict(status=status, out_dir=p["out_dir"]))
    done = results.recorded(str(tmp_path / "r.csv"))
    assert [machinery.state(p, done)[0] for p in points] == ["run", "run", "skip", "run"]
    sweep.main(argv + ["--dry_run"])
    shown = [line.split()[1] for line in capsys.readouterr().out.splitlines()[:4]]
    assert shown == ["todo", "todo", "done", "todo"]
    runs_ = _module("runs_module", "runs.py")
    lock = runs_.RunLock(points[0]["out_dir"])  # another process's live run (class 2)
    try:
        assert machinery.state(points[0], done)[0] == "busy"
    finally:
        lock.release()


@pytest.mark.slow
def test_a_finished_point_run_with_other_settings_is_refused(tiny, tmp_path):
    """The out_dir names only the swept coordinates: a sweep that changes a fixed setting
    (init_std here) over the same out_root must not count the old runs as its own results."""
    argv = _tiny_args(tiny, tmp_path, "--index", "0")
    assert sweep.main(argv) == 0
    done = tmp_path / "runs" / "completep" / "L1_N16" / "lr2^-8" / "s0"
    stamp, rows = os.path.getmtime(done / "final.json"), _rows(tmp_path / "r.csv")
    assert len(rows) == 1 and rows[0]["status"] == "done" and rows[0]["init_std"] == "0.02"

    (tmp_path / "init.py").write_text((tiny / "tiny.py").read_text() + "init_std = 0.5\n")
    for extra in (["--dry_run"], ["--index", "0"], []):
        with pytest.raises(UserError, match=re.escape(f"{done} finished with other settings "
                                                             "(init_std=0.02 there, 0.5 here)")):
            sweep.main([str(tmp_path / "init.py"), *argv[1:5], *extra])
    # its row not yet written (killed before the append): the same refusal, nothing recorded
    (tmp_path / "r.csv").unlink()
    with pytest.raises(UserError, match="init_std=0.02 there, 0.5 here"):
        sweep.main([str(tmp_path / "init.py"), *argv[1:5]])
    assert not (tmp_path / "r.csv").exists()
    assert os.path.getmtime(done / "final.json") == stamp and not (tmp_path / "runs" / "completep" / "L2_N16").exists()

    # settings that steer a run but not its result do not count: the point is still finished
    assert sweep.main(argv + ["--set", "log_interval=1", "--set", "sample_tokens=5"]) == 0
    assert len(_rows(tmp_path / "r.csv")) == 1 and os.path.getmtime(done / "final.json") == stamp


@pytest.mark.parametrize("where", ["sbatch", "name", "out_root"])
def test_no_shell_line_can_be_injected_into_the_sbatch_script(tiny, tmp_path, where):
    argv = _tiny_args(tiny, tmp_path, "--slurm")
    if where == "sbatch":
        argv.append("--sbatch=--time=1:00\nrm -rf ~")
    elif where == "out_root":
        argv[2] = str(tmp_path / "runs\nrm -rf ~")
    else:
        (tmp_path / "named.py").write_text((tiny / "tiny.py").read_text() + "name = 'x\\nrm -rf ~'\n")
        argv[0] = str(tmp_path / "named.py")
    with pytest.raises(UserError, match="control character|must be letters, digits") as e:
        sweep.main(argv)
    assert "\n" not in str(e.value).replace("\\n", "")
    assert not list(tmp_path.rglob("sweep.sbatch"))


# --- batch size and horizon as axes: `points` (settings that vary together) -------------

@pytest.mark.slow
def test_points_move_batch_and_horizon_along_arms(tiny, tmp_path):
    """Three points (B, D), (B, 2D), (2B, D): three runs, out_dirs labelled B<batch>_D<tokens>,
    results columns for both, tokens = steps x B x block_size; crossed with two LRs, six."""
    arms = "points = [dict(global_batch_size=4, max_tokens=128), dict(global_batch_size=4, max_tokens=256),\n" \
           "          dict(global_batch_size=8, max_tokens=128)]\norder = ['points']\n"
    (tmp_path / "arms.py").write_text(f"base_config = {str(tiny / 'base.py')!r}\nn_layer = 1\n{arms}")
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "sweep.py"), str(tmp_path / "arms.py"),
                          "--out_root", str(tmp_path / "runs"), "--jobs", "2", "--threads", "2"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = _rows(tmp_path / "runs" / "results.csv")
    got = {(r["global_batch_size"], r["max_tokens"], r["steps"], r["tokens"], r["status"]) for r in rows}
    assert got == {(str(b), str(d), str(d // (b * 16)), str(d), "done") for b, d in ((4, 128), (4, 256), (8, 128))}
    assert {os.path.relpath(r["out_dir"], tmp_path / "runs") for r in rows} == \
        {f"completep/L1_N16/B{b}_D{d}/s1337" for b, d in ((4, 128), (4, 256), (8, 128))}
    (tmp_path / "grid.py").write_text(f"base_config = {str(tiny / 'base.py')!r}\nn_layer = 1\n{arms}"
                                      "learning_rate = [2.0 ** -8, 2.0 ** -6]\n")
    defaults, annotations = runs.train_defaults()
    settings, axes, fixed = sweep.load_sweep(str(tmp_path / "grid.py"), defaults)
    pts = machinery.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path / "g"))
    assert [os.path.relpath(p["out_dir"], tmp_path / "g") for p in pts] == \
        [f"completep/L1_N16/B{b}_D{d}_lr2^{k}/s1337" for b, d in ((4, 128), (4, 256), (8, 128)) for k in (-8, -6)]


def test_points_with_other_settings_and_unlabelled_base(tiny, tmp_path):
    """Points may switch the parameterization with its proxy settings; base_batch_size and
    base_tokens name the proxy and stay out of the directory names."""
    (tmp_path / "mixed.py").write_text(
        f"base_config = {str(tiny / 'base.py')!r}\nn_layer = 1\ntie_embeddings = False\nseed = [0]\n"
        "points = [dict(parameterization='completedp', global_batch_size=8, base_batch_size=4, base_tokens=1024),\n"
        "          dict(parameterization='completep', global_batch_size=8, base_batch_size=None, base_tokens=None)]\n")
    settings, axes, fixed = sweep.load_sweep(str(tmp_path / "mixed.py"), *runs.train_defaults()[:1])
    pts = machinery.expand(settings, axes, fixed, {}, *runs.train_defaults(), str(tmp_path / "r"))
    assert [os.path.relpath(p["out_dir"], tmp_path / "r") for p in pts] == \
        ["completedp/L1_N16/B8/s0", "completep/L1_N16/B8/s0"]
    assert pts[0]["config"]["base_tokens"] == 1024 and pts[1]["config"]["base_tokens"] is None
    assert results.columns(axes)[-len(results.OUTCOME) - 4:-len(results.OUTCOME) - 1] == \
        ["global_batch_size", "base_batch_size", "base_tokens"]


@pytest.mark.parametrize("points, message", [
    ("3", "non-empty list of dicts"),
    ("[dict(global_batch_size=4), dict(max_tokens=8)]", "same settings"),
    ("[dict(global_batch_sise=4)]", "not a train.py setting"),
    ("[dict(learning_rate=0.1)]", "both in points and on its own"),
    ("[dict(global_batch_size=4), dict(global_batch_size=4)]", "repeats a point"),
])
def test_bad_points_fail_in_one_line(tmp_path, points, message):
    path = tmp_path / "bad.py"
    path.write_text(f"learning_rate = [0.1, 0.2]\npoints = {points}\n")
    with pytest.raises(UserError, match=message):
        sweep.main([str(path), "--dry_run", "--out_root", str(tmp_path / "r")])


def test_batch_duration_sweep_file_expands_to_its_arms(tmp_path):
    """experiments/batch_duration/batch_duration_paper.py: (B, D), (B, 4D), (2B, D) for completedp (rules on,
    the proxy named by base_batch_size/base_tokens) and completep (rules off), 6 LRs, 2 seeds;
    every point passes train.py's checks."""
    sys.path.insert(0, REPO)
    import train
    defaults, annotations = runs.train_defaults()
    settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "experiments", "batch_duration", "batch_duration_paper.py"), defaults)
    pts = machinery.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))
    assert len(pts) == 72
    seen = set()
    for p in pts:
        c = p["config"]
        train.check_config(c, 1)
        assert c["tie_embeddings"] is False and (c["n_layer"], c["n_embd"]) == (2, 64)
        rules = (c["base_batch_size"], c["base_tokens"]) == (8, 2 ** 20)
        assert rules == (c["parameterization"] == "completedp")
        assert rules or (c["base_batch_size"], c["base_tokens"]) == (None, None)
        seen.add((c["parameterization"], c["global_batch_size"], c["max_tokens"]))
        assert 2 ** -8 <= c["learning_rate"] <= 2 ** -3
    assert seen == {(p, b, d) for p in ("completedp", "completep") for b, d in ((8, 2 ** 20), (8, 2 ** 22), (16, 2 ** 20))}


@pytest.mark.slow
def test_module_hparams_points_read_from_a_file_beside_the_sweep(tiny, tmp_path):
    """A sweep file can read a searched set beside it (config files see their own __file__);
    module_hparams as an axis: each run gets its dict exactly, the directory a digest (or
    'none'), the results row the dict as JSON."""
    searched = {"mlp_out": {"lr": 0.25}, "residual": {"attn": 0.5}}
    (tmp_path / "set.py").write_text(f"module_hparams = {searched!r}\n")
    (tmp_path / "mh.py").write_text(
        f"base_config = {str(tiny / 'base.py')!r}\nn_layer = 1\nseed = [0]\nparameterization = 'completedp'\ntie_embeddings = False\n"
        "import os as _os\n_ns = {}\n"
        "exec(open(_os.path.join(_os.path.dirname(__file__), 'set.py')).read(), _ns)\n"
        "points = [dict(module_hparams={}), dict(module_hparams=_ns['module_hparams'])]\n")
    results = tmp_path / "results.csv"
    cmd = [sys.executable, os.path.join(REPO, "scripts", "sweep.py"), str(tmp_path / "mh.py"),
           "--out_root", str(tmp_path / "runs"), "--results", str(results), "--jobs", "2", "--threads", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = _rows(results)
    dirs = sorted(os.path.relpath(os.path.join(REPO, r["out_dir"]), tmp_path / "runs") for r in rows)
    assert dirs[1] == "completedp/L1_N16/modulesnone/s0" and re.fullmatch(r"completedp/L1_N16/modules[0-9a-f]{8}/s0", dirs[0])
    for r in rows:
        with open(os.path.join(REPO, r["out_dir"], "config.json")) as f:
            ran = json.load(f)["config"]["module_hparams"]
        assert json.loads(r["module_hparams"]) == ran and ran in ({}, searched)
    assert sorted(json.loads(r["module_hparams"]) != {} for r in rows) == [False, True]


GPU_CHILD = """
import json, os, sys, time
out = sys.argv[1]
t0 = time.time()
time.sleep(0.3)
with open(os.path.join(out, "gpu.json"), "w") as f:
    json.dump({"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "t0": t0, "t1": time.time()}, f)
with open(os.path.join(out, "final.json"), "w") as f:
    json.dump({"status": "done", "iter": 1, "val_loss": 1.0, "train_loss": 1.0}, f)
"""


@pytest.mark.parametrize("nproc, gpus, jobs, slots", [(1, "3,5", None, [["3"], ["5"]]),
                                                      (2, "0,1,2,3,4", None, [["0", "1"], ["2", "3"]]),
                                                      (1, "0,1,2", 1, [["0"], ["1"], ["2"]])])
def test_gpus_give_each_running_point_its_own_devices(tiny, tmp_path, monkeypatch, nproc, gpus, jobs, slots):
    """--gpus: a running point sees only its slot's ids (CUDA_VISIBLE_DEVICES); no two points
    that overlap in time share one; --jobs defaults to the number of slots."""
    monkeypatch.setattr(machinery, "command", lambda point, settings, n: [sys.executable, "-c", GPU_CHILD, point["out_dir"]])
    argv = [str(tiny / "tiny.py"), "--out_root", str(tmp_path / "runs"), "--results", str(tmp_path / "r.csv"),
            "--gpus", gpus, "--nproc_per_node", str(nproc)] + (["--jobs", str(jobs)] if jobs else [])
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert sweep.main(argv) == 0
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    seen = []
    for r in _rows(tmp_path / "r.csv"):
        with open(os.path.join(REPO, r["out_dir"], "gpu.json")) as f:
            seen.append(json.load(f))
    assert len(seen) == 4 and all(s["gpus"].split(",") in slots for s in seen)
    for a in seen:
        for b in seen:
            if a is not b and a["gpus"] == b["gpus"]:
                assert a["t1"] <= b["t0"] or b["t1"] <= a["t0"], "two running points shared a GPU"
    concurrent = max(sum(b["t0"] < a["t1"] and a["t0"] < b["t1"] for b in seen) for a in seen)
    assert concurrent <= (jobs or len(slots))


def test_bad_gpus_are_one_line(tiny, tmp_path):
    for extra, message in [(["--gpus", "0,0"], "distinct GPU ids"), (["--gpus", "a"], "distinct GPU ids"),
                           (["--gpus", "0", "--nproc_per_node", "2"], "needs at least that many --gpus"),
                           (["--gpus", "0", "--slurm"], "--gpus is for local runs")]:
        with pytest.raises(UserError, match=message):
            sweep.main([str(tiny / "tiny.py"), "--out_root", str(tmp_path / "runs"), *extra])


def test_module_transfer_sweep_file_pairs_global_and_searched(tmp_path):
    """experiments/module_transfer/module_transfer.py: the target (4 x 128, 2^22 tokens, the proxy as its base)
    with every multiplier 1 and with experiments/module_transfer/searched_modules.py's set, on
    seeds the search did not use; every point passes train.py's checks."""
    sys.path.insert(0, REPO)
    import train
    from configurator import read_config_file
    searched = read_config_file(os.path.join(REPO, "experiments", "module_transfer", "searched_modules.py"))
    defaults, annotations = runs.train_defaults()
    settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "experiments", "module_transfer", "module_transfer.py"), defaults)
    pts = machinery.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))
    assert len(pts) == 6
    arms = {}
    for p in pts:
        c = p["config"]
        train.check_config(c, 1)
        assert (c["n_layer"], c["n_embd"], c["n_head"], c["max_tokens"]) == (4, 128, 4, 2 ** 22)
        assert (c["base_n_layer"], c["base_n_embd"], c["base_batch_size"], c["base_tokens"]) == (2, 64, 8, 2 ** 20)
        assert c["parameterization"] == "completedp" and c["tie_embeddings"] is False
        for k in ("learning_rate", "init_std", "weight_decay", "beta1", "beta2", "eps"):
            assert c[k] == searched[k], k  # the searched file's base values are the proxy's
        arms.setdefault(json.dumps(c["module_hparams"], sort_keys=True), []).append(c["seed"])
    assert sorted(arms) == sorted([json.dumps({}), json.dumps(searched["module_hparams"], sort_keys=True)])
    assert all(sorted(s) == [2, 3, 4] for s in arms.values())


def test_module_transfer_isolation_sweep_changes_one_thing_at_a_time(tmp_path):
    """experiments/module_transfer/module_transfer_isolate.py: both arms at (2 x 64, 2^20), (2 x 64, 2^22) and
    (4 x 128, 2^20), the proxy always the base; seeds 2-4."""
    sys.path.insert(0, REPO)
    import train
    defaults, annotations = runs.train_defaults()
    settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "experiments", "module_transfer", "module_transfer_isolate.py"),
                                             defaults)
    pts = machinery.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))
    cells = {}
    for p in pts:
        c = p["config"]
        train.check_config(c, 1)
        assert (c["base_n_layer"], c["base_n_embd"], c["base_batch_size"], c["base_tokens"]) == (2, 64, 8, 2 ** 20)
        key = (c["n_layer"], c["n_embd"], c["max_tokens"], bool(c["module_hparams"]))
        cells.setdefault(key, []).append(c["seed"])
    assert sorted(cells) == sorted((L, N, D, m) for L, N, D in ((2, 64, 2 ** 20), (2, 64, 2 ** 22), (4, 128, 2 ** 20))
                                   for m in (False, True))
    assert all(sorted(s) == [2, 3, 4] for s in cells.values())


def test_labels_name_powers_of_two_to_the_quarter_octave():
    assert machinery.label("learning_rate", 2.0 ** -7) == "lr2^-7"
    assert machinery.label("learning_rate", 2.0 ** -7.5) == "lr2^-7.5"
    assert machinery.label("learning_rate", 2.0 ** -6.25) == "lr2^-6.25"
    assert machinery.label("learning_rate", 0.003) == "lr0.003"
    assert machinery.label("module_hparams", {}) == "modulesnone"


def test_fine_depth_pass_shares_the_coarse_pass_results(tmp_path):
    """experiments/depth_transfer_init0.02/depth_lr_paper_fine.py writes into the coarse pass's results file with its
    own, half-octave points: no out_dir of one is an out_dir of the other."""
    defaults, annotations = runs.train_defaults()
    dirs = {}
    for f in ("depth_lr_paper.py", "depth_lr_paper_fine.py"):
        settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "experiments", "depth_transfer_init0.02", f), defaults)
        assert settings["name"] == "depth_lr_paper"
        dirs[f] = {p["out_dir"] for p in machinery.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))}
    assert len(dirs["depth_lr_paper_fine.py"]) == 108 and not dirs["depth_lr_paper.py"] & dirs["depth_lr_paper_fine.py"]


# --- dashboards: a sweep is one view in wandb (issue 26, item 7) ---

def test_points_name_their_wandb_group_and_run_only_with_wandb(tiny, tmp_path):
    """With wandb_log on, each point's command names the sweep as its wandb group (unless the
    user set one) and its coordinates as its run name; without it, the plain train.py command."""
    defaults, annotations = runs.train_defaults()
    settings, axes, fixed = sweep.load_sweep(str(tiny / "tiny.py"), defaults)

    def commands(extra):
        points = machinery.expand(settings, axes, fixed, extra, defaults, annotations, str(tmp_path))
        return [[a for a in machinery.command(p, settings, 1) if a.startswith(("--wandb_group", "--wandb_run_name"))
                 and a not in p["args"]] for p in points]
    assert commands({}) == [[]] * 4
    assert commands({"wandb_log": True})[3] == ["--wandb_group='tiny'", "--wandb_run_name='completep L2_N16 lr2^-6 s0'"]
    assert commands({"wandb_log": True, "wandb_group": "mine"})[0] == ["--wandb_run_name='completep L1_N16 lr2^-8 s0'"]
    point = machinery.expand(settings, axes, fixed, {"wandb_log": True}, defaults, annotations, str(tmp_path))[0]
    assert machinery.settings_changed(point) == []  # the names are run control, not the point's settings


def test_wandb_init_gets_the_group_name_and_derived_table(tmp_path, monkeypatch):
    """train.start_wandb (wandb stubbed in-process: no key, no network): the run's group and
    name, and wandb.config = the settings + config.json's fields (the per-group table; the
    Parameterization's table beside the `parameterization` setting) + m_N, m_L, m_B, m_D at the top."""
    import types
    import train
    seen = {}
    fake = types.SimpleNamespace(init=lambda **kw: seen.update(kw) or types.SimpleNamespace(id="x1"))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    config = dict(runs.train_defaults()[0], out_dir=str(tmp_path), wandb_log=True, wandb_group="depth_lr",
                  wandb_run_name="completep L2_N64 lr2^-7 s0", wandb_mode="disabled")
    groups = dict(role=["hidden"], params=[10], init_std=[0.02], lr=[0.005], weight_decay=[0.1], eps=[1e-8],
                  betas=[[0.9, 0.95]], modules=[["attn_qkv"]])
    derived = dict(m_N=2.0, m_L=4.0, m_B=1.0, m_D=0.5)
    train.start_wandb(config, parameterization={"name": "completep", "m_N": 2.0, "m_L": 4.0},
                      batch_duration={"base_tokens": 8, "m_B": 1.0, "m_D": 0.5}, groups=groups)
    assert seen["group"] == "depth_lr" and seen["name"] == "completep L2_N64 lr2^-7 s0" and seen["mode"] == "disabled"
    c = seen["config"]
    assert c["parameterization"] == "completep" and c["parameterization_table"]["m_N"] == 2.0
    assert {k: c[k] for k in derived} == derived and c["groups"] == groups and c["learning_rate"] == config["learning_rate"]
    assert json.loads((tmp_path / "wandb_id.json").read_text()) == {"id": "x1"}
    train.start_wandb(dict(config, wandb_group=""))
    assert seen["group"] is None  # default: no group

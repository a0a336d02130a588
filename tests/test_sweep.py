"""scripts/sweep.py and scripts/plot_transfer.py: a tiny sweep end to end on a small char
dataset made here, restart skipping, atomic rows, errors, and the optimum/drift fit on
synthetic results with a known answer. CPU, offline, a few seconds of training in all."""
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

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sweep = _module("sweep_script", "scripts/sweep.py")
UserError = sweep.UserError
plot_transfer = _module("plot_transfer_script", "scripts/plot_transfer.py")


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
        sweep.append_row(path, header, dict(worker=worker, i=i, note="x" * 500 + ",quoted"))


def test_concurrent_appends_do_not_interleave(tmp_path):
    path = str(tmp_path / "rows.csv")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(path, w) for w in range(4)])
    rows = _rows(path)
    assert len(rows) == 160 and open(path).read().count("worker,i,note") == 1
    assert all(r["note"] == "x" * 500 + ",quoted" for r in rows)
    assert sorted((int(r["worker"]), int(r["i"])) for r in rows) == [(w, i) for w in range(4) for i in range(40)]


# --- plot_transfer: a known optimum ---

def _synthetic(path, centres, grid=range(-12, -3), diverge=()):
    """loss = (log2 lr - c(depth))^2 + 2, two seeds at +-0.01; `diverge`: (param, depth, log2 lr)."""
    header = sweep.columns({"n_layer": None, "learning_rate": None})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        for (p, depth), c in centres.items():
            for k in grid:
                for seed, off in ((0, 0.01), (1, -0.01)):
                    bad = (p, depth, k) in diverge
                    loss = math.inf if bad else (k - c) ** 2 + 2 + off
                    w.writerow(dict(sweep="synthetic", parameterization=p, n_layer=depth, n_embd=64, n_head=2,
                                    learning_rate=2.0 ** k, init_std=0.02, output_mult=1.0, seed=seed,
                                    status="diverged" if bad else "done", train_loss=loss, val_loss=loss,
                                    best_val_loss=loss, steps=10, tokens=100, wall_s=1.0, out_dir=f"x/{k}/{seed}"))


def test_plot_finds_known_optima_and_drift(tmp_path):
    depths = [2, 4, 8, 16]
    centres = {("sp", d): -7.3 - 0.5 * math.log2(d / 2) for d in depths}        # drift -0.5
    centres.update({("completep", d): -6.6 for d in depths})                    # no drift
    path = tmp_path / "results.csv"
    _synthetic(path, centres, diverge={("completep", 16, -4)})
    assert plot_transfer.main([str(path), "--out", str(tmp_path / "out")]) == 0
    rows = plot_transfer.load(str(path))
    res = plot_transfer.analyse(plot_transfer.aggregate(rows, "learning_rate", "n_layer", "val_loss"))
    for p in ("sp", "completep"):
        for depth, seeds, fit in res[p]["rows"]:
            assert seeds == 2 and fit["note"] == ""
            assert fit["log2_opt"] == pytest.approx(centres[(p, depth)], abs=1e-6)
            assert fit["loss_opt"] == pytest.approx(2.0, abs=1e-6)
    assert res["sp"]["slope"] == pytest.approx(-0.5, abs=1e-6)
    wide = plot_transfer.analyse(plot_transfer.aggregate(rows, "learning_rate", "n_layer", "val_loss"), window=2)
    assert wide["sp"]["slope"] == pytest.approx(-0.5, abs=1e-6)  # least squares through 5 points: still exact
    assert wide["completep"]["rows"][-1][2]["log2_opt"] == pytest.approx(-6.6, abs=1e-6)  # 4 points: -4 diverged
    assert res["completep"]["slope"] == pytest.approx(0.0, abs=1e-6)
    table = (tmp_path / "out.md").read_text()
    assert "| sp | -0.50 | 4 | 0 |" in table and "| completep | +0.00 | 4 | 0 |" in table
    # the cost of the base curve's best grid LR (2-layer sp: centre -7.3, best grid -7) at each
    # depth, from the parabolas: at 16 layers the centre is -8.8, best grid -9, so the cost is
    # (1.8^2 + 2) - (0.2^2 + 2); the seeds' offsets cancel in the paired difference (se 0)
    cost = {b: (x0, xb, c, se) for b, x0, xb, c, se in plot_transfer.transfer_cost(rows, "learning_rate", "n_layer", "val_loss")["sp"]}
    for d in depths:
        centre = centres[("sp", d)]
        xb = round(centre)
        assert cost[d][0] == 2.0 ** -7 and cost[d][1] == 2.0 ** xb
        assert cost[d][2] == pytest.approx((-7 - centre) ** 2 - (xb - centre) ** 2, abs=1e-9)
        assert cost[d][3] == pytest.approx(0.0, abs=1e-9)
    assert cost[16][2] == pytest.approx(3.2, abs=1e-9)
    assert all(c == pytest.approx(0.0, abs=1e-9) for _, _, _, c, _ in
               plot_transfer.transfer_cost(rows, "learning_rate", "n_layer", "val_loss")["completep"])
    assert "| sp | 16 | 2^-7 | 2^-9 | 3.200 | 0.000 |" in table
    # a base LR that diverges at a deeper curve costs "diverged", not a number
    _synthetic(path, centres, diverge={("sp", 8, -7)})
    worse = {b: c for b, _, _, c, _ in plot_transfer.transfer_cost(plot_transfer.load(str(path)), "learning_rate",
                                                                   "n_layer", "val_loss")["sp"]}
    assert math.isinf(worse[8]) and math.isfinite(worse[16])
    assert os.path.getsize(tmp_path / "out.png") > 10_000


def test_drift_seed_uncertainty_per_seed_and_bootstrap(tmp_path):
    """Each seed's loss is an exact parabola with its own drift (-0.2, -0.6, -0.4): the per-seed
    slopes come out exactly; a resample's mean curve has the mean of its seeds' centres, so
    every bootstrap slope lies between the extreme seeds and the spread is not zero."""
    slopes = {0: -0.2, 1: -0.6, 2: -0.4}
    header = sweep.columns({"n_layer": None, "learning_rate": None})
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        for seed, slope in slopes.items():
            for d in (2, 4, 8, 16):
                c = -6.0 + slope * math.log2(d / 2)
                for k in range(-10, -2):
                    loss = (k - c) ** 2 + 2 + 0.05 * seed
                    w.writerow(dict(sweep="s", parameterization="completep", n_layer=d, n_embd=64, n_head=2,
                                    learning_rate=2.0 ** k, init_std=0.02, output_mult=1.0, seed=seed, status="done",
                                    train_loss=loss, val_loss=loss, best_val_loss=loss, steps=1, tokens=1,
                                    wall_s=1.0, out_dir=f"x/{d}/{k}/{seed}"))
    rows = plot_transfer.load(str(path))
    unc = plot_transfer.seed_uncertainty(rows, "learning_rate", "n_layer", "val_loss")["completep"]
    assert unc["per_seed"] == {k: pytest.approx(v, abs=1e-6) for k, v in {"0": -0.2, "1": -0.6, "2": -0.4}.items()}
    assert -0.6 - 1e-6 <= unc["lo"] < unc["hi"] <= -0.2 + 1e-6 and unc["sd"] > 0.05
    assert plot_transfer.main([str(path), "--out", str(tmp_path / "o")]) == 0
    table = (tmp_path / "o.md").read_text()
    assert "| completep | -0.40 | s0: -0.20, s1: -0.60, s2: -0.40 |" in table
    # each curve's optimum: every seed's own vertex, and a bootstrap spread that is zero only where
    # the seeds agree (2 layers: all at -6) and grows with depth as their centres fan out
    curves = unc["curves"]
    for d in (2, 4, 8, 16):
        want = {str(s): -6.0 + slope * math.log2(d / 2) for s, slope in slopes.items()}
        assert {s: v for s, (v, note) in curves[d]["per_seed"].items()} == {
            s: pytest.approx(v, abs=1e-6) for s, v in want.items()}
        assert all(note == "" for _, note in curves[d]["per_seed"].values())
    assert curves[2]["sd"] == pytest.approx(0.0, abs=1e-9)
    assert 0.05 < curves[4]["sd"] < curves[8]["sd"] < curves[16]["sd"]
    assert "| completep | 16 (x8) | 3 | -7.20 |" in table and "s0 -6.60, s1 -7.80, s2 -7.20 |" in table
    single = [r for r in rows if r["seed"] == "0"]
    assert plot_transfer.seed_uncertainty(single, "learning_rate", "n_layer", "val_loss") == {}


def test_a_curve_whose_points_ran_different_seeds_is_flagged(tmp_path, capsys):
    """A partly run seed (seed 1 lacks the two highest LRs of the 8-layer sp curve, as a sweep
    stopped mid-seed leaves it): the mean curve averages two seeds at some points and one at
    others, so its optimum mixes seeds. The table and stderr must say so for that curve only."""
    centres = {("sp", d): -7.0 for d in (2, 4, 8)}
    path = tmp_path / "results.csv"
    _synthetic(path, centres)
    lines = path.read_text().splitlines()
    partial = [ln for ln in lines if ln.startswith("synthetic,sp,8,") and ",1,done," in ln
               and any(f",{2.0 ** k}," in ln for k in (-5, -4))]
    assert len(partial) == 2
    path.write_text("\n".join(ln for ln in lines if ln not in partial) + "\n")
    rows = plot_transfer.load(str(path))
    res = plot_transfer.analyse(plot_transfer.aggregate(rows, "learning_rate", "n_layer", "val_loss"))
    assert [(b, seeds) for b, seeds, _ in res["sp"]["rows"]] == [(2, 2), (4, 2), (8, "1-2")]
    assert res["sp"]["uneven"] == [8]
    assert plot_transfer.main([str(path), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "warning: the points of sp n_layer=8 ran different seeds" in err and "n_layer=4" not in err
    table = (tmp_path / "o.md").read_text()
    assert "**Seeds differ between the points of 1 curve(s)** (sp n_layer=8;" in table
    assert "| sp | 8 (x4) | 1-2 |" in table and "| sp | 4 (x2) | 2 |" in table
    # the same count of seeds everywhere, but not the same seeds (0 and 1 at one LR, 0 and 2 at
    # the others): still two seeds' curves mixed
    other = [dict(r, seed="2") if r["n_layer"] == "2" and r["seed"] == "1" and r["learning_rate"] != str(2.0 ** -7)
             else r for r in rows]
    res = plot_transfer.analyse(plot_transfer.aggregate(other, "learning_rate", "n_layer", "val_loss"))
    assert res["sp"]["rows"][0][1] == "2 (other seeds)" and res["sp"]["uneven"] == [2, 8]
    # one complete seed read alone: nothing to flag
    assert plot_transfer.main([str(path), "--where", "seed=0", "--out", str(tmp_path / "s0")]) == 0
    assert "warning" not in capsys.readouterr().err and "Seeds differ" not in (tmp_path / "s0.md").read_text()


def test_fit_optimum_edges_and_divergence():
    fit = plot_transfer.fit_optimum
    assert fit([0, 1, 2], [1.0, 2.0, 3.0])["note"] == "edge-low"
    assert fit([0, 1, 2], [3.0, 2.0, 1.0])["note"] == "edge-high"
    r = fit([0, 1, 2, 3], [3.0, 2.0, 1.0, math.inf])
    assert r["note"] == "next-to-diverged" and r["log2_opt"] == 2
    assert fit([0, 1], [math.inf, math.inf]) is None
    r = fit([0, 1, 2, 3], [3.0, 1.2, 1.0, 1.6])  # through (1, 1.2), (2, 1.0), (3, 1.6): vertex 1.75
    assert r["note"] == "" and r["log2_opt"] == pytest.approx(1.75)
    assert fit([0, 1, 2], [2.0, 1.0, 1.0])["note"] == ""  # a tie: the vertex lies between them
    # a wider window averages over the flat bottom (fit by least squares, vertex inside the window)
    r = fit([0, 1, 2, 3, 4], [3.0, 1.1, 1.0, 1.05, 2.0], window=2)
    assert r["note"] == "" and 1.0 < r["log2_opt"] < 3.0
    with pytest.raises(plot_transfer.UserError, match="at least 1"):
        plot_transfer.main(["whatever.csv", "--window", "0"])


def test_plot_other_hyperparameters_and_errors(tmp_path):
    path = tmp_path / "std.csv"
    _synthetic(path, {("mup", 2): -5.5, ("mup", 8): -5.5}, grid=range(-8, -1))
    rows = _rows(path)
    for r in rows:  # swap the roles: init_std varies, the LR is fixed
        r["init_std"], r["learning_rate"] = r["learning_rate"], 0.01
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, rows[0].keys())
        w.writeheader()
        w.writerows(rows)
    assert plot_transfer.main([str(path), "--out", str(tmp_path / "std")]) == 0
    assert "Optimal init_std" in (tmp_path / "std.md").read_text()
    with pytest.raises(plot_transfer.UserError, match="does not exist"):
        plot_transfer.main([str(tmp_path / "missing.csv")])


def test_fitted_optima_stay_inside_the_data():
    """A least-squares vertex may fall outside its points, or dip far below every observed loss;
    neither may be reported as the optimum (the vertex is clamped and flagged)."""
    rng = np.random.default_rng(0)
    clamped = 0
    for _ in range(300):
        loss = list(rng.uniform(1.0, 3.0, size=7))
        r = plot_transfer.fit_optimum(list(range(7)), loss, window=3)
        i = int(np.argmin(loss))
        if r["note"] in ("", "clamped"):
            assert max(0, i - 3) <= r["log2_opt"] <= min(6, i + 3)
            window = loss[max(0, i - 3):i + 4]
            assert r["loss_opt"] >= min(loss) - (max(window) - min(loss)) - 1e-12
        clamped += r["note"] == "clamped"
    assert clamped > 0  # the case occurs in this sample, so the check above is exercised


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
    jobs, real_start = [], sweep.start
    monkeypatch.setattr(sweep, "command", lambda point, settings, nproc: [
        sys.executable, "-c", "import time, sys; time.sleep(0 if sys.argv[1].endswith('lr2^-8/s0') else 120)",
        point["out_dir"]])
    monkeypatch.setattr(sweep, "start", lambda *a: jobs.append(real_start(*a)) or jobs[-1])

    def failing_finish(*a):
        raise UserError("results file changed under the sweep")
    monkeypatch.setattr(sweep, "finish", failing_finish)
    args = argparse.Namespace(jobs=2, threads_per_job=1, nproc_per_node=1)
    settings, axes, fixed = sweep.load_sweep(str(tiny / "tiny.py"), *sweep.train_defaults()[:1])
    points = sweep.expand(settings, axes, fixed, {}, *sweep.train_defaults(), str(tmp_path / "runs"))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(UserError, match="changed under the sweep"):
            sweep.run_local(points, settings, axes, str(tmp_path / "r.csv"), args)
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
sweep.command = lambda point, settings, nproc: [sys.executable, "-c", SLEEPER, sys.argv[2]]
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
    settings, axes, fixed = sweep.load_sweep(str(tiny / "tiny.py"), sweep.train_defaults()[0])
    points = sweep.expand(settings, axes, fixed, {}, *sweep.train_defaults(), str(tmp_path / "runs"))
    header = sweep.columns(axes)
    for p, status in zip(points, ["", "stopped", "done", "FAILED"]):
        sweep.append_row(str(tmp_path / "r.csv"), header, dict(status=status, out_dir=p["out_dir"]))
    done = sweep.recorded(str(tmp_path / "r.csv"))
    assert [sweep.state(p, done)[0] for p in points] == ["run", "run", "skip", "run"]
    sweep.main(argv + ["--dry_run"])
    shown = [line.split()[1] for line in capsys.readouterr().out.splitlines()[:4]]
    assert shown == ["todo", "todo", "done", "todo"]
    runs_ = _module("runs_module", "runs.py")
    lock = runs_.RunLock(points[0]["out_dir"])  # another process's live run (class 2)
    try:
        assert sweep.state(points[0], done)[0] == "busy"
    finally:
        lock.release()


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
    defaults, annotations = sweep.train_defaults()
    settings, axes, fixed = sweep.load_sweep(str(tmp_path / "grid.py"), defaults)
    pts = sweep.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path / "g"))
    assert [os.path.relpath(p["out_dir"], tmp_path / "g") for p in pts] == \
        [f"completep/L1_N16/B{b}_D{d}_lr2^{k}/s1337" for b, d in ((4, 128), (4, 256), (8, 128)) for k in (-8, -6)]


def test_points_with_other_settings_and_unlabelled_base(tiny, tmp_path):
    """Points may switch the parameterization with its proxy settings; base_batch_size and
    base_tokens name the proxy and stay out of the directory names."""
    (tmp_path / "mixed.py").write_text(
        f"base_config = {str(tiny / 'base.py')!r}\nn_layer = 1\ntie_embeddings = False\nseed = [0]\n"
        "points = [dict(parameterization='completedp', global_batch_size=8, base_batch_size=4, base_tokens=1024),\n"
        "          dict(parameterization='completep', global_batch_size=8, base_batch_size=None, base_tokens=None)]\n")
    settings, axes, fixed = sweep.load_sweep(str(tmp_path / "mixed.py"), *sweep.train_defaults()[:1])
    pts = sweep.expand(settings, axes, fixed, {}, *sweep.train_defaults(), str(tmp_path / "r"))
    assert [os.path.relpath(p["out_dir"], tmp_path / "r") for p in pts] == \
        ["completedp/L1_N16/B8/s0", "completep/L1_N16/B8/s0"]
    assert pts[0]["config"]["base_tokens"] == 1024 and pts[1]["config"]["base_tokens"] is None
    assert sweep.columns(axes)[-len(sweep.OUTCOME) - 3:-len(sweep.OUTCOME)] == \
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


def _grid_rows(path, centre, inits, lrs, seeds=(0, 1), sweep_name="g", shift=0.0):
    """SP at one width, loss = (log2 lr - centre(log2 init))^2 + 2 + seed/100 (+ shift)."""
    header = sweep.columns({"init_std": None, "learning_rate": None})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        for i in inits:
            for k in lrs:
                for seed in seeds:
                    loss = (k - centre(i)) ** 2 + 2 + seed / 100 + shift
                    w.writerow(dict(sweep=sweep_name, parameterization="sp", n_layer=2, n_embd=256, n_head=2,
                                    learning_rate=2.0 ** k, init_std=2.0 ** i, output_mult=1.0, seed=seed,
                                    status="done", train_loss=loss, val_loss=loss, best_val_loss=loss, steps=1,
                                    tokens=1, wall_s=1.0, out_dir=f"{sweep_name}/{i}/{k}/{seed}"))


def test_plot_joint_grid_from_several_files_by_init_std(tmp_path):
    """A joint LR x init grid split over two results files (as a grid completed by a later sweep
    is): read together with --by init_std, each init's LR optimum comes out, the slope is the
    LR optimum's octaves per octave of init, and a point both files ran counts once. The same
    point ending at a different loss in the two files (other settings outside the columns) is
    refused; so is a grid where another hyperparameter varies unasked."""
    centre = lambda i: -9.0 - 0.5 * (i + 6)  # noqa: E731  -9 at init 2^-6, -10.5 at 2^-3
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _grid_rows(a, centre, inits=(-6, -5, -4), lrs=range(-13, -5), sweep_name="joint")
    _grid_rows(b, centre, inits=(-3, -4), lrs=range(-13, -5), sweep_name="lr")  # 2^-4 in both
    out = tmp_path / "j"
    assert plot_transfer.main([str(a), str(b), "--x", "learning_rate", "--by", "init_std",
                               "--out", str(out)]) == 0
    rows = plot_transfer.load_all([str(a), str(b)])
    assert len(rows) == 4 * 8 * 2  # the 16 rows of 2^-4 in b dropped as repeats
    # a column only one file has (another key its sweep file set) does not hide those repeats
    extra = list(csv.DictReader(open(b)))
    with open(tmp_path / "b2.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(extra[0]) + ["warmup_frac"])
        w.writeheader()
        w.writerows(dict(r, warmup_frac="0.1") for r in extra)
    assert len(plot_transfer.load_all([str(a), str(tmp_path / "b2.csv")])) == 4 * 8 * 2
    res = plot_transfer.analyse(plot_transfer.aggregate(rows, "learning_rate", "init_std", "val_loss"))
    for init, seeds, fit in res["sp"]["rows"]:
        assert seeds == 2 and fit["log2_opt"] == pytest.approx(centre(math.log2(init)), abs=1e-6)
    assert res["sp"]["slope"] == pytest.approx(-0.5, abs=1e-6)
    text = out.with_suffix(".md").read_text()
    assert f"`{a} + {b}`" in text and "| sp | 0.125 (x8) | 2 |" in text
    # with --by init_std the x is the other one that varies; with neither, which is which is asked
    assert plot_transfer.main([str(a), str(b), "--by", "init_std", "--out", str(tmp_path / "auto")]) == 0
    assert "# Optimal learning_rate per (init_std, parameterization)" in (tmp_path / "auto.md").read_text()
    with pytest.raises(plot_transfer.UserError, match="cannot tell the hyperparameter"):
        plot_transfer.main([str(a), "--out", str(out)])
    with pytest.raises(plot_transfer.UserError, match="both init_std"):
        plot_transfer.main([str(a), "--x", "init_std", "--by", "init_std", "--out", str(out)])
    # one file's loss off by 0.001 at the shared points: not the same experiment
    _grid_rows(b, centre, inits=(-3, -4), lrs=range(-13, -5), sweep_name="lr", shift=0.001)
    with pytest.raises(plot_transfer.UserError, match="different settings outside their columns"):
        plot_transfer.main([str(a), str(b), "--by", "init_std", "--out", str(out)])
    # curves by width with the init varying too: the rows of one width would average two inits
    with pytest.raises(plot_transfer.UserError, match="init_std also varies"):
        plot_transfer.main([str(a), "--x", "learning_rate", "--by", "n_embd", "--out", str(out)])
    # ... but an init that differs only between parameterizations is not a mix
    rows = list(csv.DictReader(open(a)))
    for r in rows:
        if r["init_std"] == str(2.0 ** -6):
            r["parameterization"] = "mup"
        elif r["init_std"] == str(2.0 ** -4):
            r["parameterization"] = "completep"
    rows = [r for r in rows if r["init_std"] != str(2.0 ** -5)]
    for r in rows:
        r["n_embd"] = "256" if r["seed"] == "0" else "512"
        r["seed"] = "0"
    with open(a, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert plot_transfer.main([str(a), "--x", "learning_rate", "--by", "n_embd", "--out", str(out)]) == 0


def test_plot_legend_has_curves_only_a_later_panel_draws():
    """The figure's one legend names every curve of every panel, in size order: a width run for
    muP only (no SP curve at that width) still gets its entry, once."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2)
    for b in (64, 128):
        axes[0].plot([1, 2], [1, 2], label=f"n_embd={b}")
    for b in (512, 64, 128):
        axes[1].plot([1, 2], [1, 2], label=f"n_embd={b}")
    handles, labels = plot_transfer.legend_entries(axes, [f"n_embd={b}" for b in (64, 128, 256, 512)])
    plt.close(fig)
    assert labels == ["n_embd=64", "n_embd=128", "n_embd=512"]
    assert handles[0] is axes[0].lines[0] and handles[2] is axes[1].lines[0]


def test_plot_batch_and_horizon_arms(tmp_path):
    """Synthetic arms: the optimum moves by -0.5 per doubling of B (sp) or stays (completedp),
    and by +0.25 per doubling of D; --where picks an arm, without it the plot refuses to mix."""
    header = sweep.columns({"learning_rate": None, "points": [{"global_batch_size": 0, "max_tokens": 0}]})
    path = tmp_path / "bd.csv"
    arms = [(4, 1024), (8, 1024), (16, 1024), (4, 4096)]
    centre = {("sp", b, d): -7.0 - 0.5 * math.log2(b / 4) + 0.25 * math.log2(d / 1024) for b, d in arms}
    centre.update({("completedp", b, d): -6.5 for b, d in arms})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        for (p, b, d), c in centre.items():
            for k in range(-11, -2):
                for seed, off in ((0, 0.01), (1, -0.01)):
                    w.writerow(dict(sweep="bd", parameterization=p, n_layer=2, n_embd=64, n_head=2,
                                    learning_rate=2.0 ** k, init_std=0.02, output_mult=1.0, seed=seed,
                                    global_batch_size=b, max_tokens=d, status="done",
                                    train_loss=(k - c) ** 2 + 2 + off, val_loss=(k - c) ** 2 + 2 + off,
                                    best_val_loss=2, steps=d // (b * 128), tokens=d, wall_s=1.0, out_dir=f"x/{k}"))
    with pytest.raises(plot_transfer.UserError, match="also varies"):
        plot_transfer.main([str(path), "--by", "global_batch_size", "--out", str(tmp_path / "mixed")])
    assert plot_transfer.main([str(path), "--by", "global_batch_size", "--where", "max_tokens=1024",
                               "--out", str(tmp_path / "B")]) == 0
    assert "| sp | 16 (x4) | 2 |" in (tmp_path / "B.md").read_text()
    assert plot_transfer.main([str(path), "--by", "max_tokens", "--where", "global_batch_size=4",
                               "--out", str(tmp_path / "D")]) == 0
    rows = plot_transfer.load(str(path))
    for by, keep, slope in (("global_batch_size", ("max_tokens", "1024"), -0.5), ("max_tokens", ("global_batch_size", "4"), 0.25)):
        arm = [r for r in rows if r[keep[0]] == keep[1]]
        res = plot_transfer.analyse(plot_transfer.aggregate(arm, "learning_rate", by, "val_loss"))
        assert res["sp"]["slope"] == pytest.approx(slope, abs=1e-6)
        assert res["completedp"]["slope"] == pytest.approx(0.0, abs=1e-6)
        assert len(res["sp"]["rows"]) == (3 if by == "global_batch_size" else 2)
    with pytest.raises(plot_transfer.UserError, match="no finished run"):
        plot_transfer.main([str(path), "--by", "max_tokens", "--where", "global_batch_size=5"])
    # comparisons drop rows: B >= 8 leaves 8 and 16, and 8 becomes the drift's base (x1)
    assert plot_transfer.main([str(path), "--by", "global_batch_size", "--where", "max_tokens=1024",
                               "--where", "global_batch_size>=8", "--where", "seed!=1",
                               "--out", str(tmp_path / "B8")]) == 0
    text = (tmp_path / "B8.md").read_text()
    assert "| sp | 8 (x1) | 1 |" in text and "| sp | 16 (x2) | 1 |" in text and "(x4)" not in text
    with pytest.raises(plot_transfer.UserError, match="needs a number"):
        plot_transfer.main([str(path), "--where", "global_batch_size>=big"])
    with pytest.raises(plot_transfer.UserError, match="KEY=VALUE"):
        plot_transfer.main([str(path), "--where", "global_batch_size~4"])


def test_plot_where_takes_powers_of_two(tmp_path):
    """A merged octave + half-octave sweep read on its octave grid alone: --where
    'learning_rate!=2^-6.5' (the run directories' notation) drops exactly the half-octave rows,
    whose losses here would pull the 4-layer optimum up by half an octave."""
    header = sweep.columns({"learning_rate": None, "n_layer": None})
    path = tmp_path / "merged.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        for L in (2, 4):
            lrs = [float(k) for k in range(-9, -3)] + ([-6.5, -5.5] if L == 4 else [])
            for k in lrs:
                loss = (k + 6.2) ** 2 + 2 if k == round(k) else 1.0  # octave parabola at 2^-6.2
                w.writerow(dict(sweep="m", parameterization="mup", n_layer=L, n_embd=64, n_head=2,
                                learning_rate=2.0 ** k, init_std=0.02, output_mult=1.0, seed=0,
                                status="done", train_loss=loss, val_loss=loss, best_val_loss=loss,
                                steps=1, tokens=1, wall_s=1.0, out_dir=f"x/{L}/{k}"))
    assert plot_transfer.main([str(path), "--where", "learning_rate!=2^-6.5", "--where",
                               "learning_rate!=2**-5.5", "--out", str(tmp_path / "octave")]) == 0
    text = (tmp_path / "octave.md").read_text()
    assert "| mup | 4 (x2) | 1 | -6.20 |" in text and "| mup | 2 (x1) | 1 | -6.20 |" in text
    plot_transfer.main([str(path), "--out", str(tmp_path / "all")])
    assert "| mup | 4 (x2) | 1 | -6.20 |" not in (tmp_path / "all.md").read_text()
    assert plot_transfer._where(repr(0.0625), ">=", "2^-4") and not plot_transfer._where(repr(0.0625), ">=", "2^-3.5")
    with pytest.raises(plot_transfer.UserError, match="needs a number"):
        plot_transfer.main([str(path), "--where", "learning_rate>=2^x"])


def test_batch_duration_sweep_file_expands_to_its_arms(tmp_path):
    """config/sweeps/batch_duration_paper.py: (B, D), (B, 4D), (2B, D) for completedp (rules on,
    the proxy named by base_batch_size/base_tokens) and completep (rules off), 6 LRs, 2 seeds;
    every point passes train.py's checks."""
    sys.path.insert(0, REPO)
    import train
    defaults, annotations = sweep.train_defaults()
    settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "config", "sweeps", "batch_duration_paper.py"), defaults)
    pts = sweep.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))
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
    monkeypatch.setattr(sweep, "command", lambda point, settings, n: [sys.executable, "-c", GPU_CHILD, point["out_dir"]])
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
    """config/sweeps/module_transfer.py: the target (4 x 128, 2^22 tokens, the proxy as its base)
    with every multiplier 1 and with experiments/module_transfer/searched_modules.py's set, on
    seeds the search did not use; every point passes train.py's checks."""
    sys.path.insert(0, REPO)
    import train
    from configurator import read_config_file
    searched = read_config_file(os.path.join(REPO, "experiments", "module_transfer", "searched_modules.py"))
    defaults, annotations = sweep.train_defaults()
    settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "config", "sweeps", "module_transfer.py"), defaults)
    pts = sweep.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))
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
    """config/sweeps/module_transfer_isolate.py: both arms at (2 x 64, 2^20), (2 x 64, 2^22) and
    (4 x 128, 2^20), the proxy always the base; seeds 2-4."""
    sys.path.insert(0, REPO)
    import train
    defaults, annotations = sweep.train_defaults()
    settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "config", "sweeps", "module_transfer_isolate.py"),
                                             defaults)
    pts = sweep.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))
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
    assert sweep.label("learning_rate", 2.0 ** -7) == "lr2^-7"
    assert sweep.label("learning_rate", 2.0 ** -7.5) == "lr2^-7.5"
    assert sweep.label("learning_rate", 2.0 ** -6.25) == "lr2^-6.25"
    assert sweep.label("learning_rate", 0.003) == "lr0.003"
    assert sweep.label("module_hparams", {}) == "modulesnone"


def test_fine_depth_pass_shares_the_coarse_pass_results(tmp_path):
    """config/sweeps/depth_lr_paper_fine.py writes into the coarse pass's results file with its
    own, half-octave points: no out_dir of one is an out_dir of the other."""
    defaults, annotations = sweep.train_defaults()
    dirs = {}
    for f in ("depth_lr_paper.py", "depth_lr_paper_fine.py"):
        settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, "config", "sweeps", f), defaults)
        assert settings["name"] == "depth_lr_paper"
        dirs[f] = {p["out_dir"] for p in sweep.expand(settings, axes, fixed, {}, defaults, annotations, str(tmp_path))}
    assert len(dirs["depth_lr_paper_fine.py"]) == 108 and not dirs["depth_lr_paper.py"] & dirs["depth_lr_paper_fine.py"]

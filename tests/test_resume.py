"""Runs that survive: a run stopped (halt_at_iter, a real SIGTERM) and resumed equals the same
run in one go, bit for bit on CPU fp32; a checkpoint write killed half-way leaves the previous
file loadable; bad checkpoints, mismatched resumes and divergence stop with one line.

Each case runs train.py as a subprocess from the repo root on a tiny model and a small
character dataset written here (no network). About 40 s on 2 idle cores.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from conftest import ENV, write_char_dataset  # noqa: E402
from checkpoint import list_checkpoints, load_checkpoint, prune  # noqa: E402
from runs import EXIT_STOPPED, UserError  # noqa: E402

N = 32  # steps of the reference run; evals (and checkpoints) every 8
# a non-trivial run: dropout (the torch RNG matters), cosine with warmup, 2 micro-steps a step
RUN = ["--n_layer=2", "--n_embd=32", "--n_head=2", "--base_n_embd=32", "--base_n_layer=2",
       "--block_size=32", "--batch_size=4", "--global_batch_size=8", "--eval_tokens=512",
       "--sample_tokens=0", "--log_interval=1", "--device=cpu", "--dtype=float32", "--compile=False",
       f"--max_iters={N}", "--eval_interval=8", "--keep_last=2", "--dropout=0.1",
       "--lr_schedule=cosine", "--warmup_frac=0.25", "--learning_rate=6e-2", "--seed=1337"]
COMPARED = ("model", "optimizer", "data", "rng", "iter_num", "best_val_loss")  # not config/argv
METRICS = ("loss", "lr", "grad_norm", "train_loss", "val_loss")  # not timings


def train(data_dir, out_dir, *extra, timeout=300):
    return subprocess.run([sys.executable, "train.py", *RUN, f"--data_dir={data_dir}",
                           f"--out_dir={out_dir}", *extra], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def ok(res, code=0):
    assert res.returncode == code, f"train.py exited {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


def one_line_error(res, code=2):
    assert res.returncode == code, f"exit {res.returncode}, wanted {code}:\n{res.stdout[-1500:]}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    return lines[0]


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same(a, b, where="checkpoint"):
    """Recursive equality; tensors with torch.equal (bitwise for fp32 on CPU)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_checkpoint(path_a, path_b):
    a, b = load(path_a), load(path_b)
    for k in COMPARED:
        assert_same(a[k], b[k], f"{os.path.basename(path_b)}:{k}")


def metrics(out_dir):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def logged_steps(out_dir):
    """The last training step in metrics.jsonl so far (complete lines only), 0 if none."""
    try:
        with open(os.path.join(out_dir, "metrics.jsonl")) as f:
            lines = f.read().split("\n")[:-1]
    except FileNotFoundError:
        return 0
    return max([json.loads(line)["iter"] for line in lines if '"loss"' in line], default=0)


def key(row):
    return (row["iter"], "eval" if "val_loss" in row else "train")


def assert_same_metrics(ref_rows, rows):
    ref = {key(r): r for r in ref_rows}
    for r in rows:
        for m in METRICS:
            if m in r:
                assert r[m] == ref[key(r)][m], f"{m} at {key(r)}: {r[m]!r} != {ref[key(r)][m]!r}"


def assert_resumed_equals_straight(straight, out, n_before):
    """The resumed process's rows (after the first n_before) and its final checkpoint."""
    rows = metrics(out)
    first, resumed = rows[:n_before], rows[n_before:]
    stop = max(r["iter"] for r in first)
    assert_same_metrics(metrics(straight), first)
    assert_same_metrics(metrics(straight), resumed)
    steps = sorted(r["iter"] for r in resumed if "loss" in r)
    assert steps == list(range(stop + 1, N + 1)), f"resumed steps {steps}: skipped or repeated"
    assert_same_checkpoint(os.path.join(straight, f"ckpt_{N:07d}.pt"), os.path.join(out, f"ckpt_{N:07d}.pt"))
    assert_same_checkpoint(os.path.join(straight, "best.pt"), os.path.join(out, "best.pt"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_char_dataset(str(tmp_path_factory.mktemp("chars")))


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory):
    """The reference: N steps in one go."""
    out = str(tmp_path_factory.mktemp("straight"))
    ok(train(data_dir, out))
    return out


@pytest.mark.slow
def test_halt_then_resume_equals_straight_run(data_dir, straight, tmp_path):
    out = str(tmp_path / "run")
    res = ok(train(data_dir, out, f"--halt_at_iter={N // 2}"), EXIT_STOPPED)  # stopped is not success
    assert f"stopped at step {N // 2}" in res.stdout
    assert os.path.exists(os.path.join(out, f"ckpt_{N // 2:07d}.pt"))
    with open(os.path.join(out, "final.json")) as f:
        assert json.load(f)["status"] == "stopped"
    n_before = len(metrics(out))
    with open(os.path.join(out, "provenance.json")) as f:
        first_start = json.load(f)["started"]
    res = ok(train(data_dir, out, f"--halt_at_iter={N // 2}"))  # the same command resumes
    assert f"resuming from {os.path.join(out, f'ckpt_{N // 2:07d}.pt')}" in res.stdout
    assert_resumed_equals_straight(straight, out, n_before)
    with open(os.path.join(out, "provenance.json")) as f:  # the run keeps its identity
        prov = json.load(f)
    assert prov["started"] == first_start and [r["step"] for r in prov["resumes"]] == [N // 2]
    # every row says how far the run is: tokens seen (exact across the resume) and wall time
    rows = metrics(out)
    per_step = rows[-1]["tokens"] // N
    assert all(r["tokens"] == r["iter"] * per_step and r["wall_s"] >= 0 for r in rows)
    # a re-run of the finished run changes nothing: no second final eval row, same final.json
    with open(os.path.join(out, "final.json")) as f:
        final = f.read()
    res = ok(train(data_dir, out, f"--halt_at_iter={N // 2}"))
    assert "nothing to do" in res.stdout and metrics(out) == rows
    with open(os.path.join(out, "final.json")) as f:
        assert f.read() == final


@pytest.mark.slow
def test_sigterm_then_resume_equals_straight_run(data_dir, straight, tmp_path):
    out = str(tmp_path / "run")
    os.makedirs(out)
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        proc = subprocess.Popen([sys.executable, "train.py", *RUN, f"--data_dir={data_dir}",
                                 f"--out_dir={out}"], cwd=REPO, env=ENV, stdout=so, stderr=se)
        try:  # SIGTERM once it has logged a few steps
            deadline, sent = time.time() + 240, False
            while not sent and proc.poll() is None and time.time() < deadline:
                if logged_steps(out) >= 3:
                    proc.send_signal(signal.SIGTERM)
                    sent = True
                time.sleep(0.002)
            assert proc.wait(timeout=240) == EXIT_STOPPED, (tmp_path / "stderr").read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert sent, "the run ended before it could be signalled"
    with open(os.path.join(out, "final.json")) as f:
        final = json.load(f)
    assert final["status"] == "stopped", f"SIGTERM came too late to test anything: {final}"
    k = final["iter"]
    assert 3 <= k < N
    assert "SIGTERM" in (tmp_path / "stdout").read_text()
    assert list_checkpoints(out)[-1] == os.path.join(out, f"ckpt_{k:07d}.pt")
    n_before = len(metrics(out))
    res = ok(train(data_dir, out))
    assert f"at step {k}" in res.stdout
    assert_resumed_equals_straight(straight, out, n_before)


def test_best_pt_only_on_improvement_and_keep_last(straight):
    assert [os.path.basename(p) for p in list_checkpoints(straight)] == \
        [f"ckpt_{N - 8:07d}.pt", f"ckpt_{N:07d}.pt"], "keep_last=2 keeps the two newest"
    evals = [r for r in metrics(straight) if "val_loss" in r and r["iter"] > 0]
    best_row = min(evals, key=lambda r: r["val_loss"])
    best = load(os.path.join(straight, "best.pt"))
    assert best["iter_num"] == best_row["iter"] and best["best_val_loss"] == best_row["val_loss"]
    # this seed's run gets worse at its last eval: best.pt must not have been replaced then
    assert evals[-1]["val_loss"] > best_row["val_loss"], [r["val_loss"] for r in evals]
    assert load(os.path.join(straight, f"ckpt_{N:07d}.pt"))["best_val_loss"] == best_row["val_loss"]


def test_nan_exits_3_and_leaves_checkpoints_untouched(data_dir, straight, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(straight, out)
    latest = os.path.join(out, f"ckpt_{N:07d}.pt")
    ckpt = load(latest)  # a resume may not change the LR: blow the weights up instead
    ckpt["model"]["transformer.wte.weight"] *= 1e30
    torch.save(ckpt, latest)
    before = {p: open(p, "rb").read() for p in glob.glob(os.path.join(out, "*.pt"))}
    res = train(data_dir, out, f"--max_iters={N + 8}")  # resumes at N
    assert res.returncode == 3, f"exit {res.returncode}:\n{res.stdout[-1500:]}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr
    msg = res.stderr.strip().splitlines()[-1]
    steps = [int(w) for w in msg.replace(":", " ").replace(",", " ").split() if w.isdigit()]
    assert msg.startswith("error: step ") and N <= steps[0] < N + 8, msg
    assert "learning rate" in msg and "not finite" in msg, msg
    after = {p: open(p, "rb").read() for p in glob.glob(os.path.join(out, "*.pt"))}
    assert after.keys() == before.keys() and all(after[p] == before[p] for p in before)
    assert not glob.glob(os.path.join(out, "*.tmp*"))
    with open(os.path.join(out, "final.json")) as f:  # strict JSON: no NaN or Infinity
        assert json.loads(f.read(), parse_constant=lambda c: pytest.fail(f"{c} in final.json"))["status"] == "diverged"


def test_resume_into_a_different_model_is_refused(data_dir, straight, tmp_path):
    # (another parameterization, wrong shapes: in-process cases of test_bad_input.py)
    out = str(tmp_path / "run")
    shutil.copytree(straight, out)
    line = one_line_error(train(data_dir, out, "--n_layer=3"))
    assert "cannot resume" in line and "n_layer=2 there, 3 here" in line and "new out_dir" in line, line
    # dropout changes the trajectory (and draws from the torch RNG): another value is another run
    line = one_line_error(train(data_dir, out, "--dropout=0.2"))
    assert "cannot resume" in line and "dropout=0.1 there, 0.2 here" in line, line
    assert sorted(os.listdir(out)) == sorted(os.listdir(straight)), "a refused resume wrote files"


@pytest.mark.slow
def test_checkpoint_from_before_a_new_model_setting_resumes(data_dir, straight, tmp_path):
    """A checkpoint written before a model setting existed (attn_mult here) holds no value for
    it: it had the setting's default then, so a run with the default resumes, and a run with
    another value is refused."""
    out = str(tmp_path / "run")
    shutil.copytree(straight, out)
    for path in glob.glob(os.path.join(out, "*.pt")):
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["model_config"].pop("attn_mult") == 1.0
        torch.save(ckpt, path)
    line = one_line_error(train(data_dir, out, "--attn_mult=2.0"))
    assert "cannot resume" in line and "attn_mult=1.0 there, 2.0 here" in line, line
    res = ok(train(data_dir, out, f"--max_iters={N + 8}"))
    assert "resuming from" in res.stdout


@pytest.mark.slow
def test_truncated_checkpoint_is_one_line_then_previous_one_resumes(data_dir, straight, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(straight, out)
    latest = os.path.join(out, f"ckpt_{N:07d}.pt")
    with open(latest, "r+b") as f:  # the newest checkpoint cut short
        f.truncate(os.path.getsize(latest) // 2)
    line = one_line_error(train(data_dir, out))
    assert latest in line and "delete it" in line, line
    os.remove(latest)  # follow the advice: the previous checkpoint takes over and redoes the steps
    res = ok(train(data_dir, out))
    assert f"at step {N - 8}" in res.stdout
    assert_same_checkpoint(os.path.join(straight, f"ckpt_{N:07d}.pt"), latest)


HELPER = """
import sys, torch
sys.path.insert(0, sys.argv[1])
import checkpoint
big = checkpoint.load_checkpoint(sys.argv[2])
big["model"]["w"] = torch.ones(8_000_000)
while True:  # rewrite the same checkpoint until killed
    checkpoint.save(big, sys.argv[2])
"""


def test_sigkill_during_checkpoint_write_leaves_previous_loadable(straight, tmp_path):
    out = str(tmp_path)
    path = os.path.join(out, f"ckpt_{N:07d}.pt")
    shutil.copy(os.path.join(straight, f"ckpt_{N:07d}.pt"), path)
    for attempt in range(5):  # until the kill lands mid-write (a *.tmp.* file left behind)
        proc = subprocess.Popen([sys.executable, "-c", HELPER, REPO, path], env=ENV)
        deadline = time.time() + 120
        while not glob.glob(path + ".tmp*") and proc.poll() is None and time.time() < deadline:
            time.sleep(0.001)
        time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tmps = glob.glob(path + ".tmp*")
        if tmps:
            break
    assert tmps, "never killed it mid-write"
    ckpt = load_checkpoint(path)  # the old file, or a complete new one; never a torn one
    assert ckpt["iter_num"] == N and ("w" not in ckpt["model"] or ckpt["model"]["w"].numel() == 8_000_000)
    assert list_checkpoints(out) == [path], "a *.tmp file was taken for a checkpoint"
    if os.path.getsize(tmps[0]) < 32_000_000:  # torn (not killed between fsync and rename)
        with pytest.raises(UserError):
            load_checkpoint(tmps[0])


# --- which files are checkpoints: only the names the trainer writes, their step verified ---

def steps_in(out):
    return [load(p)["iter_num"] for p in list_checkpoints(out)]


@pytest.mark.slow
def test_a_users_copy_is_not_a_checkpoint_and_pruning_keeps_newer(data_dir, tmp_path):
    """Issue example: ckpt_copy.pt (a backup of step 2) was taken as the latest, resumed from,
    and the real step 3 and 6 checkpoints pruned."""
    out = str(tmp_path / "o")
    short = ["--eval_interval=3", "--keep_last=2", "--dropout=0.0"]
    ok(train(data_dir, out, "--max_iters=2", *short))
    shutil.copy(os.path.join(out, "ckpt_0000002.pt"), os.path.join(out, "ckpt_copy.pt"))
    res = ok(train(data_dir, out, "--max_iters=6", *short))
    assert "resuming from" in res.stdout and "at step 2" in res.stdout
    assert steps_in(out) == [3, 6]
    res = ok(train(data_dir, out, "--max_iters=8", *short))
    assert f"resuming from {os.path.join(out, 'ckpt_0000006.pt')} at step 6" in res.stdout, res.stdout
    assert steps_in(out) == [6, 8]
    assert os.path.exists(os.path.join(out, "ckpt_copy.pt")), "a user's file was deleted"


def test_a_checkpoint_renamed_to_another_step_is_refused(data_dir, straight, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(straight, out)
    os.rename(os.path.join(out, f"ckpt_{N:07d}.pt"), os.path.join(out, "ckpt_9999999.pt"))
    before = sorted(os.listdir(out))
    line = one_line_error(train(data_dir, out, f"--max_iters={N + 8}"))
    assert f"holds step {N}, not the step 9999999 of its name" in line, line
    assert sorted(os.listdir(out)) == before, "a refused resume changed out_dir"


def test_prune_never_deletes_past_the_step_just_written(tmp_path):
    out = str(tmp_path)
    for step in (2, 4, 6, 9):
        open(os.path.join(out, f"ckpt_{step:07d}.pt"), "wb").close()
    open(os.path.join(out, "ckpt_0000001.pt.tmp.123"), "wb").close()  # not a checkpoint either
    prune(out, keep_last=1, newest=4)  # resumed from an older one: 6 and 9 are not ours to delete
    assert sorted(os.listdir(out)) == ["ckpt_0000001.pt.tmp.123", "ckpt_0000004.pt", "ckpt_0000006.pt",
                                       "ckpt_0000009.pt"]

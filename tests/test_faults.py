"""Nothing lost, nothing silent: one owner per out_dir, datasets complete or refused, every
shard checked, evaluation apart from the run's records, and a fault-injection test that
SIGKILLs training, checkpoint writes and data preparation at random points and shows that
every restart resumes exactly or refuses in one line. Tiny models on CPU, offline."""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import REPO, TINY, make_text, prepare_char, run_main, run_script
from dataloader import fingerprint, open_dataset, read_tokens, write_tokens
from runs import UserError
import runs
import train as train_module

from conftest import ENV  # noqa: E402


def one_line(res, code=2):
    assert res.returncode == code, f"exit {res.returncode}, wanted {code}:\n{res.stdout[-1500:]}\n{res.stderr[-3000:]}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def train(data, out, *extra, timeout=300):
    return run_script(["train.py", *TINY, "--dtype=float32", f"--data_dir={data}", f"--out_dir={out}", *extra],
                      timeout=timeout)


def popen_train(data, out, *extra):
    return subprocess.Popen([sys.executable, "train.py", *TINY, "--dtype=float32", f"--data_dir={data}",
                             f"--out_dir={out}", *extra], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def logged_steps(out):
    try:
        with open(os.path.join(out, "metrics.jsonl")) as f:
            lines = f.read().split("\n")[:-1]
    except FileNotFoundError:
        return 0
    return max([json.loads(x)["iter"] for x in lines if '"loss"' in x], default=0)


def wait_for(cond, proc, timeout=120):
    deadline = time.time() + timeout
    while not cond() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    return cond()


# --- class 2: one trainer per out_dir ------------------------------------------------------

@pytest.mark.slow
def test_a_second_trainer_is_refused_while_the_first_lives_then_takes_over(char_data, tmp_path):
    out = str(tmp_path / "run")
    first = popen_train(char_data, out, "--max_iters=100000", "--eval_interval=100000")
    try:
        assert wait_for(lambda: logged_steps(out) >= 1, first), "the first run never started"
        line = one_line(train(char_data, out, "--max_iters=4"))
        assert f"{out} is in use by another run (pid {first.pid} on" in line and "another --out_dir" in line, line
        assert first.poll() is None, "the refused run disturbed the first"
        rows = open(os.path.join(out, "metrics.jsonl")).read().splitlines()
        assert all(json.loads(r)["iter"] <= logged_steps(out) for r in rows)
    finally:
        first.kill()  # SIGKILL: no release; the kernel drops its flock, the file stays behind
        first.communicate()
    owner = json.load(open(os.path.join(out, runs.LOCK_NAME)))
    assert owner["pid"] == first.pid
    run_main(train_module, [*TINY, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=2"])  # taken over
    assert json.load(open(os.path.join(out, "final.json")))["status"] == "done"
    assert not os.path.exists(os.path.join(out, runs.LOCK_NAME)), "the lock was not released at exit"


def test_run_lock_in_process(tmp_path):
    out = str(tmp_path / "run")
    os.makedirs(out)
    with open(os.path.join(out, runs.LOCK_NAME), "w") as f:  # left by a killed run: a dead pid
        json.dump({"host": "h", "pid": 2 ** 22 + 12345, "started": "then"}, f)
    lock = runs.RunLock(out)
    try:
        assert json.load(open(lock.path))["pid"] == os.getpid()
        assert runs.lock_owner(out) is not None
        with pytest.raises(UserError, match=f"is in use by another run \\(pid {os.getpid()}"):
            runs.RunLock(out)  # a second owner, even in this process
    finally:
        lock.release()
    assert not os.path.exists(lock.path) and runs.lock_owner(out) is None
    with open(tmp_path / "file", "w") as f:
        f.write("x")
    with pytest.raises(UserError, match="cannot write to out_dir .*choose another --out_dir"):
        runs.RunLock(str(tmp_path / "file" / "run"))  # out_dir under a file: not writable


# --- class 4: evaluation leaves the run's records alone -----------------------------------

def test_eval_only_writes_its_own_file(char_data, tmp_path):
    """Issue example: eval_only on a finished run rewrote config.json and provenance.json and
    appended a different row to metrics.jsonl. (In-process: train.main as the script runs it.)"""
    out = str(tmp_path / "run")
    argv = [*TINY, "--dtype=float32", f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=2"]
    run_main(train_module, argv)
    records = ("config.json", "provenance.json", "metrics.jsonl", "final.json")
    before = {n: open(os.path.join(out, n), "rb").read() for n in records}
    for _ in range(2):  # twice, with another learning rate (a setting evaluation does not use)
        run_main(train_module, argv + ["--eval_only=True", "--learning_rate=0.5"])
    assert {n: open(os.path.join(out, n), "rb").read() for n in records} == before
    rows = [json.loads(x) for x in open(os.path.join(out, "eval.jsonl"))]
    last = [json.loads(x) for x in before["metrics.jsonl"].decode().splitlines() if "val_loss" in x][-1]
    assert [r["iter"] for r in rows] == [2, 2]
    assert rows[0]["val_loss"] == pytest.approx(last["val_loss"], rel=1e-6)


# --- class 3: a dataset is complete or refused ----------------------------------------------

def copy_data(char_data, tmp_path):
    d = str(tmp_path / "data")
    shutil.copytree(char_data, d)
    return d


def test_new_train_bin_beside_old_meta_is_refused(char_data, tmp_path):
    """Issue example: a killed re-prepare left a new train.bin beside the old val.bin and meta."""
    d = copy_data(char_data, tmp_path)
    old = read_tokens(os.path.join(d, "train.bin")).copy()
    write_tokens(os.path.join(d, "train.bin"), old[: len(old) // 2], vocab_size=100)  # other text
    with pytest.raises(UserError) as e:
        open_dataset(d, 32, 4, 8)
    msg = str(e.value)
    assert "train.bin does not match meta.json (bytes" in msg and "different preparations" in msg, msg
    assert "\n" not in msg and "prepare.py" in msg
    write_tokens(os.path.join(d, "train.bin"), old[::-1].copy(), vocab_size=100)  # same size, other tokens
    with pytest.raises(UserError, match="train.bin does not match meta.json \\(crc32"):
        open_dataset(d, 32, 4, 8)


def test_meta_without_fingerprints_still_checks_token_counts(char_data, tmp_path):
    d = copy_data(char_data, tmp_path)
    meta = json.load(open(os.path.join(d, "meta.json")))
    del meta["files"]  # a meta.json of an older prepare: token counts only
    json.dump(meta, open(os.path.join(d, "meta.json"), "w"))
    val = read_tokens(os.path.join(d, "val.bin")).copy()
    write_tokens(os.path.join(d, "val.bin"), val[:-10], vocab_size=100)
    with pytest.raises(UserError, match=f"val.bin holds {len(val) - 10:,} tokens but meta.json says {len(val):,}"):
        open_dataset(d, 32, 4, 8)


# --- class 6: no meta.json is not GPT-2 ----------------------------------------------------

@pytest.mark.parametrize("meta", [None, "{}"], ids=["missing", "empty"])
def test_char_data_without_meta_is_refused(char_data, tmp_path, meta):
    d = copy_data(char_data, tmp_path)
    os.remove(os.path.join(d, "meta.json"))
    if meta is not None:
        open(os.path.join(d, "meta.json"), "w").write(meta)
    want = "no meta.json, so its tokenizer is unknown" if meta is None else "must name the tokenizer and vocab_size"
    if meta is None:  # end to end: exit 2, one line
        line = one_line(train(d, str(tmp_path / "out"), "--max_iters=2"))
    else:
        with pytest.raises(UserError) as e:
            run_main(train_module, [*TINY, f"--data_dir={d}", f"--out_dir={tmp_path / 'out'}", "--max_iters=2"])
        line = str(e.value)
    assert want in line, line
    assert not os.path.exists(tmp_path / "out" / "metrics.jsonl")


# --- class 5: every shard's ids checked when it is opened -----------------------------------

def make_shards(d, bad=None, bad_id=999, vocab=500):
    """A val shard and 4 train shards of 300 tokens (ids < vocab), one train shard with a bad id."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    entries = []
    for i in range(5):
        name = f"t_{'val' if i == 0 else 'train'}_{i:06d}.bin"
        toks = rng.integers(0, vocab, 300)
        if i == bad:
            toks[-1] = bad_id
        write_tokens(os.path.join(d, name), toks, vocab_size=65536)
        entries.append(dict(file=name, split="val" if i == 0 else "train", tokens=300,
                            **fingerprint(os.path.join(d, name))))
    json.dump(dict(tokenizer="test", vocab_size=vocab, command="python make_shards.py", complete=True,
                   shards=entries), open(os.path.join(d, "meta.json"), "w"))
    return d


def first_step_touching(loader, path):
    """Steps of the loader until it has opened `path`."""
    for step in range(100):
        loader.next_step()
        if loader._open and loader._open[0] == path:
            return step
    raise AssertionError("never reached")


def test_a_bad_id_in_a_later_shard_stops_when_the_shard_is_opened(tmp_path):
    d = make_shards(str(tmp_path / "s"), bad=3)
    data = open_dataset(d, 16, 2, 8, seed=0)  # opens the first train shard only: fine
    bad = os.path.join(d, "t_train_000003.bin")
    with pytest.raises(UserError) as e:
        first_step_touching(data.loader, bad)
    msg = str(e.value)
    assert msg.startswith(f"{bad} has token id 999 >= vocab_size 500") and "re-run python make_shards.py" in msg
    resumed = open_dataset(d, 16, 2, 8, seed=0).loader  # a resume whose position is in that shard
    state = resumed.state_dict()
    state["shard"] = list(resumed._order()).index(resumed.paths.index(bad))
    resumed.load_state_dict(state)
    with pytest.raises(UserError, match="t_train_000003.bin has token id 999"):
        resumed.next_step()


def test_a_replaced_shard_is_refused_when_opened(tmp_path):
    d = make_shards(str(tmp_path / "s"))
    path = os.path.join(d, "t_train_000004.bin")
    write_tokens(path, np.arange(300) % 500, vocab_size=65536)  # same size, another preparation's tokens
    data = open_dataset(d, 16, 2, 8, seed=0)
    with pytest.raises(UserError, match="t_train_000004.bin does not match meta.json \\(crc32"):
        first_step_touching(data.loader, path)


def test_a_bad_shard_ends_training_in_one_line(tmp_path):
    d = make_shards(str(tmp_path / "s"), bad=2)
    line = one_line(train(d, str(tmp_path / "out"), "--max_iters=40", "--eval_interval=1000",
                          "--block_size=16", "--batch_size=2", "--global_batch_size=8", "--eval_tokens=64"))
    assert "t_train_000002.bin has token id 999 >= vocab_size 500" in line, line


# --- fault injection: SIGKILL anywhere, then the same command -----------------------------

FAULT_RUN = ["--max_iters=10", "--eval_interval=2", "--keep_last=2", "--n_embd=256", "--n_head=4",
             "--dropout=0.1", "--learning_rate=3e-2"]


@pytest.mark.slow
def test_sigkill_during_training_and_checkpoint_writes_then_resume_is_exact(char_data, tmp_path):
    ref = str(tmp_path / "ref")
    res = train(char_data, ref, *FAULT_RUN)
    assert res.returncode == 0, res.stderr[-2000:]
    out, rng, kills = str(tmp_path / "run"), random.Random(14), []
    for fault in ("training", "checkpoint write", "training"):
        proc = popen_train(char_data, out, *FAULT_RUN)
        try:
            if fault == "training":  # a random point among the next steps
                at = logged_steps(out) + rng.randint(1, 3)
                hit = wait_for(lambda: logged_steps(out) >= at, proc)
            else:  # while a checkpoint is half-written
                hit = wait_for(lambda: glob.glob(os.path.join(out, "*.tmp.*")), proc)
            proc.send_signal(signal.SIGKILL)
        finally:
            stdout, stderr = proc.communicate()
        assert proc.returncode in (-signal.SIGKILL, 0), stderr[-2000:]
        assert "Traceback" not in stderr, stderr
        kills.append((fault, hit, logged_steps(out)))
        if proc.returncode == 0:
            break
    assert any(h for f, h, _ in kills if f == "checkpoint write"), f"never killed a checkpoint write: {kills}"
    res = train(char_data, out, *FAULT_RUN)  # whatever was left: resume (or start) and finish
    assert res.returncode == 0, res.stderr[-2000:]
    assert not glob.glob(os.path.join(out, "*.tmp.*")), "a half-written checkpoint was left behind"
    assert not os.path.exists(os.path.join(out, runs.LOCK_NAME))
    a = torch.load(os.path.join(ref, "ckpt_0000010.pt"), weights_only=True)
    b = torch.load(os.path.join(out, "ckpt_0000010.pt"), weights_only=True)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), f"model {k} differs after the faults {kills}"
    for i, state in a["optimizer"]["state"].items():
        for m, v in state.items():
            assert torch.equal(v, b["optimizer"]["state"][i][m]), f"optimizer {i}.{m} differs after {kills}"
    assert torch.equal(a["data"]["generator"], b["data"]["generator"])
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])  # dropout's generator too
    ref_rows = {(r["iter"], "val_loss" in r): r for r in map(json.loads, open(os.path.join(ref, "metrics.jsonl")))}
    for r in map(json.loads, open(os.path.join(out, "metrics.jsonl"))):  # redone steps log the same values
        for m in ("loss", "val_loss", "train_loss", "grad_norm"):
            if m in r:
                assert r[m] == ref_rows[(r["iter"], "val_loss" in r)][m], (m, r["iter"], kills)


PREPARE = """
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/tests")
from conftest import make_text, prepare_char
prepare_char(sys.argv[2], make_text(int(sys.argv[3]), seed=1))
"""


def splits(d):
    return tuple(np.asarray(read_tokens(os.path.join(d, f"{s}.bin"))).copy() for s in ("train", "val"))


@pytest.mark.slow
def test_sigkill_during_data_preparation_never_trains_on_mixed_files(tmp_path):
    """A prepared text A is re-prepared as text B and killed at random moments of the writing:
    the directory then opens as all of A or all of B, or is refused in one line."""
    d, n_b = str(tmp_path / "data"), 400_000
    prepare_char(d, make_text(60_000, seed=0))
    prepare_char(str(tmp_path / "b"), make_text(n_b, seed=1))
    a, b = splits(d), splits(str(tmp_path / "b"))
    rng, outcomes = random.Random(3), []
    for _ in range(4):
        had_meta = os.path.exists(os.path.join(d, "meta.json"))
        proc = subprocess.Popen([sys.executable, "-c", PREPARE, REPO, d, str(n_b)], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # once the new preparation has begun writing, a random moment later
        wait_for(lambda: glob.glob(os.path.join(d, "*.tmp.*")) or
                 (had_meta and not os.path.exists(os.path.join(d, "meta.json"))), proc)
        time.sleep(rng.uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        try:
            data = open_dataset(d, 32, 4, 8)
        except UserError as e:  # refused, in one line naming the fix
            assert "\n" not in str(e) and "prepare" in str(e), str(e)
            outcomes.append("refused")
            continue
        got = splits(d)
        assert np.array_equal(np.asarray(data.eval_tokens["train"]), got[0])
        same = [name for name, want in (("A", a), ("B", b))
                if len(want[0]) == len(got[0]) and all(np.array_equal(x, y) for x, y in zip(want, got))]
        assert same, f"train.bin and val.bin of different preparations were accepted (after {outcomes})"
        outcomes.append(same[0])
    prepare_char(d, make_text(n_b, seed=1))  # the same command again, to the end: B, whole
    assert all(np.array_equal(x, y) for x, y in zip(splits(d), b)) and open_dataset(d, 32, 4, 8)


# --- class 9: stopped is not success, and two signals are one --------------------------------

def test_sigterm_twice_exits_4_with_a_checkpoint(char_data, tmp_path):
    """Issue example: a double SIGTERM to train.py exited 143 (a single one: tests/test_resume.py)."""
    out = str(tmp_path / "run")
    proc = popen_train(char_data, out, "--max_iters=400", "--eval_interval=1000")
    try:
        assert wait_for(lambda: logged_steps(out) >= 2, proc)
        for _ in range(2):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.01)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == runs.EXIT_STOPPED, stderr[-2000:]
    final = json.load(open(os.path.join(out, "final.json")))
    assert final["status"] == "stopped" and "SIGTERM" in stdout
    assert os.path.exists(os.path.join(out, f"ckpt_{final['iter']:07d}.pt"))


# --- class 13: the filesystem ---------------------------------------------------------------

def read_only(path):
    """Make a directory unwritable, also for root (chattr +i); a restore function, or skip."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return lambda: os.chmod(path, 0o755)
    if subprocess.run(["chattr", "+i", path], capture_output=True).returncode != 0:
        pytest.skip("cannot make a directory read-only for root on this filesystem")
    return lambda: subprocess.run(["chattr", "-i", path], check=True)


def test_a_read_only_out_dir_is_one_line_for_train_resume_and_eval(char_data, tmp_path):
    out = str(tmp_path / "run")
    argv = [*TINY, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=2"]
    run_main(train_module, argv)
    before = sorted(os.listdir(out))
    undo = read_only(out)
    try:
        for extra in (["--max_iters=4"], ["--eval_only=True"]):  # resume, evaluate
            with pytest.raises(UserError) as e:
                run_main(train_module, argv + extra)
            assert f"cannot write to out_dir {out} (" in str(e.value) and "\n" not in str(e.value)
        empty = str(tmp_path / "empty")
        os.makedirs(empty)
        undo_empty = read_only(empty)
        try:  # a new run
            with pytest.raises(UserError, match="cannot write to out_dir .*empty"):
                run_main(train_module, [*TINY, f"--data_dir={char_data}", f"--out_dir={empty}", "--max_iters=2"])
        finally:
            undo_empty()
    finally:
        undo()
    assert sorted(os.listdir(out)) == before


def test_a_full_disk_during_a_checkpoint_write_leaves_no_temporary(char_data, tmp_path, monkeypatch):
    import checkpoint
    out = str(tmp_path / "run")
    argv = [*TINY, f"--data_dir={char_data}", f"--out_dir={out}", "--eval_interval=2"]
    run_main(train_module, argv + ["--max_iters=2"])
    kept = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out) if n.endswith(".pt")}
    real_save = torch.save

    def full_disk(obj, f):
        real_save(obj, f)  # the bytes went to the temporary file; then the disk is full
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(UserError) as e:
        run_main(train_module, argv + ["--max_iters=4"])
    msg = str(e.value)
    assert msg.startswith(f"cannot write checkpoint {out}/") and "No space left on device" in msg, msg
    assert "previous checkpoints are kept" in msg and "\n" not in msg
    assert not glob.glob(os.path.join(out, "*.tmp.*")), "the temporary file stays and keeps the disk full"
    assert {n: open(os.path.join(out, n), "rb").read() for n in kept} == kept


def test_temporaries_of_a_killed_write_are_removed_at_start(char_data, tmp_path):
    out = str(tmp_path / "run")
    os.makedirs(out)
    stale = [os.path.join(out, n) for n in ("ckpt_0000002.pt.tmp.4242", "best.pt.tmp.17")]
    mine = os.path.join(out, "notes.tmp.1")  # not ours: left alone
    for p in stale + [mine]:
        open(p, "wb").write(b"x" * 1000)
    run_main(train_module, [*TINY, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=1"])
    assert not any(os.path.exists(p) for p in stale) and os.path.exists(mine)


# --- classes 15 and 16: other entry points, messages that do not mislead ---------------------

def test_bench_validates_its_device():
    import bench
    for device, words in (("tpu", "is not 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
                          ("cuda:7" if torch.cuda.device_count() < 8 else "mps", "CUDA|MPS")):
        if device == "mps" and torch.backends.mps.is_available():
            continue
        with pytest.raises(UserError, match=words):
            run_main(bench, [f"--device={device}", "--steps=1", "--warmup=0"])


def test_a_shard_error_names_a_command_that_exists(tmp_path):
    d = make_shards(str(tmp_path / "s"), bad=1)
    meta = json.load(open(os.path.join(d, "meta.json")))
    del meta["command"]  # prepared by hand: no command recorded, no prepare.py in the directory
    json.dump(meta, open(os.path.join(d, "meta.json"), "w"))
    with pytest.raises(UserError) as e:
        open_dataset(d, 16, 2, 8)
    assert "data/custom/prepare.py" in str(e.value) and f"{d}/prepare.py" not in str(e.value), str(e.value)


def test_records_hold_no_infinity_or_nan():
    """final.json of a run diverged before its first finite eval held Infinity (invalid JSON)."""
    row = train_module.finite(dict(status="diverged", best_val_loss=float("inf"), lr=float("nan"), iter=3, x=1.5))
    assert json.loads(json.dumps(row), parse_constant=lambda c: pytest.fail(c)) == \
        dict(status="diverged", best_val_loss=None, lr=None, iter=3, x=1.5)

"""The second round of faults, on train.py's side: a full disk on every write path (a real
one: the file-size limit makes the kernel refuse writes, as ENOSPC would), records written
whole, a resume that is the same run or refused, metrics.jsonl one history after a kill or a
stop, settings arithmetic and numbers bounded, and a signal during start-up. Tiny CPU runs."""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import checkpoint as ckpt_io
from conftest import ENV, REPO, TINY, run_main
from runs import UserError
import train as train_module

RUN = [*TINY, "--dtype=float32", "--compile=False"]


def train(data, out, *extra, fsize=None, timeout=240):
    """train.py in a subprocess; fsize: the largest file (bytes) it may write (RLIMIT_FSIZE:
    a write past it fails with EFBIG, SIGXFSZ being ignored by Python, like a full disk)."""
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))) if fsize else None
    return subprocess.run([sys.executable, "train.py", *RUN, f"--data_dir={data}", f"--out_dir={out}", *extra],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


def one_line(res, code=2):
    assert res.returncode == code, f"exit {res.returncode}, wanted {code}:\n{res.stdout[-1500:]}\n{res.stderr[-3000:]}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def rows(out, name="metrics.jsonl"):
    with open(os.path.join(out, name)) as f:
        return [json.loads(line) for line in f.read().splitlines()]


def snapshot(out):
    return {n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out))
            if os.path.isfile(os.path.join(out, n)) and n != "train.lock"}


@pytest.fixture(scope="module")
def done(char_data, tmp_path_factory):
    """A finished 4-step run with checkpoints at 2 and 4 (in-process: fast)."""
    out = str(tmp_path_factory.mktemp("hostile") / "done")
    run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=4",
                            "--eval_interval=2"])
    return out


# --- 2. records are written like checkpoints: a full disk on every write path -----------------

def test_full_disk_in_a_checkpoint_write_is_one_line_and_leaves_nothing(char_data, tmp_path):
    """torch.save on a full disk raises RuntimeError ('unexpected pos'), not OSError."""
    out = str(tmp_path / "o")
    line = one_line(train(char_data, out, "--max_iters=4", "--eval_interval=2", fsize=200_000))
    assert line.startswith("error: cannot write checkpoint") and "free space" in line, line
    assert not [n for n in os.listdir(out) if ".tmp" in n], os.listdir(out)
    json.loads(open(os.path.join(out, "config.json")).read())  # the records before it are whole


def test_full_disk_on_resume_leaves_config_json_whole(done, char_data, tmp_path):
    """The red team's example: a resume on a full disk truncated config.json to invalid JSON."""
    out = str(tmp_path / "o")
    shutil.copytree(done, out)
    before = snapshot(out)
    line = one_line(train(char_data, out, "--max_iters=6", fsize=1000))
    assert line.startswith("error: cannot write the run's records") and "free space" in line, line
    assert snapshot(out) == before  # config.json, provenance.json, final.json, metrics: untouched


def test_full_disk_in_a_metrics_append_is_one_line(char_data, tmp_path):
    out = str(tmp_path / "o")
    line = one_line(train(char_data, out, "--max_iters=60", "--eval_interval=1000", fsize=4000))
    assert line.startswith("error: cannot append to") and "metrics.jsonl" in line and "resume" in line, line
    json.loads(open(os.path.join(out, "config.json")).read())


# --- 4. a resume is the same run, or it is refused ----------------------------------------------

@pytest.mark.parametrize("extra, said", [
    (["--seed=7"], "seed=1337 there, 7 here"),
    (["--global_batch_size=16"], "global_batch_size=8 there, 16 here"),
    (["--learning_rate=0.02"], "learning_rate=0.01 there, 0.02 here"),
    (["--lr_schedule=wsd"], "lr_schedule='cosine' there, 'wsd' here"),
])
def test_a_resume_with_changed_trajectory_settings_is_refused(done, char_data, tmp_path, extra, said):
    out = str(tmp_path / "o")
    shutil.copytree(done, out)
    before = snapshot(out)
    with pytest.raises(UserError, match="cannot resume") as e:
        run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=6", *extra])
    assert said in str(e.value) and "new out_dir" in str(e.value)
    assert snapshot(out) == before


def test_a_resume_on_another_vocabulary_of_the_same_size_is_refused(done, char_data, tmp_path):
    """Every id would mean another character: the same vocab_size, another itos."""
    other = str(tmp_path / "data")
    shutil.copytree(char_data, other)
    meta = json.load(open(os.path.join(other, "meta.json")))
    meta["itos"] = meta["itos"][::-1]
    json.dump(meta, open(os.path.join(other, "meta.json"), "w"))
    out = str(tmp_path / "o")
    shutil.copytree(done, out)
    with pytest.raises(UserError, match=r"the vocabulary \(meta.json itos\) differs"):
        run_main(train_module, [*RUN, f"--data_dir={other}", f"--out_dir={out}", "--max_iters=6"])
    # another preparation with the same vocabulary (the tokens shuffled): the files' fingerprints differ
    import numpy as np
    from dataloader import fingerprint, read_tokens, write_tokens
    other2 = str(tmp_path / "data2")
    shutil.copytree(char_data, other2)
    meta = json.load(open(os.path.join(other2, "meta.json")))
    path = os.path.join(other2, "train.bin")
    tokens = np.random.default_rng(0).permutation(np.asarray(read_tokens(path)))
    write_tokens(path, tokens, vocab_size=meta["vocab_size"])
    meta["files"]["train.bin"] = fingerprint(path)
    json.dump(meta, open(os.path.join(other2, "meta.json"), "w"))
    with pytest.raises(UserError, match="the data files differ"):
        run_main(train_module, [*RUN, f"--data_dir={other2}", f"--out_dir={out}", "--max_iters=6"])


def test_a_longer_run_may_resume_with_a_note(done, char_data, tmp_path, capsys):
    out = str(tmp_path / "o")
    shutil.copytree(done, out)
    run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=6", "--eval_interval=2"])
    assert "resumed with another length (max_iters 4 -> 6" in capsys.readouterr().out


@pytest.mark.parametrize("field, value, said", [
    ("best_val_loss", float("nan"), "best_val_loss"),
    ("best_val_loss", -1.0, "best_val_loss"),
    ("last_eval_iter", 99, "last_eval_iter"),
    ("data", {"mode": "shards", "epoch": 0, "shard": 0, "offset": -5, "seed": 0, "files": []}, "'offset'"),
])
def test_checkpoint_fields_out_of_range_are_refused(done, tmp_path, field, value, said):
    path = str(tmp_path / "ckpt_0000004.pt")
    ckpt = torch.load(os.path.join(done, "ckpt_0000004.pt"), weights_only=True)
    ckpt[field] = value
    torch.save(ckpt, path)
    with pytest.raises(ckpt_io.UserError, match=said):
        ckpt_io.load_checkpoint(path)


# --- 5. the records tell one history -------------------------------------------------------------

def test_after_a_kill_and_resume_metrics_hold_each_step_once(done, char_data, tmp_path):
    """A SIGKILL after steps 3-4 were logged but before their checkpoint (simulated: the step-4
    checkpoint and final.json removed, a torn line appended): the resume from step 2 redoes
    3-4; metrics.jsonl holds each step once, the rolled-back rows are kept apart."""
    out = str(tmp_path / "o")
    shutil.copytree(done, out)
    os.remove(os.path.join(out, "ckpt_0000004.pt"))
    os.remove(os.path.join(out, "final.json"))
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        f.write('{"iter": 5, "lo')  # torn by the kill
    run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=4", "--eval_interval=2"])
    got = rows(out)
    train_steps = [r["iter"] for r in got if "loss" in r]
    eval_steps = [r["iter"] for r in got if "val_loss" in r]
    assert train_steps == [1, 2, 3, 4] and eval_steps == [0, 2, 4], (train_steps, eval_steps)
    aside = open(os.path.join(out, "metrics.rolled_back.jsonl")).read().splitlines()
    assert len(aside) == 4 and aside[-1] == '{"iter": 5, "lo'  # steps 3, 4, the eval at 4, the torn line
    assert {r["iter"]: r["loss"] for r in got if "loss" in r} == {r["iter"]: r["loss"] for r in rows(done) if "loss" in r}


def test_a_stop_without_checkpoints_says_so_and_the_rerun_is_one_history(char_data, tmp_path, capsys):
    out = str(tmp_path / "o")
    argv = [*RUN, f"--data_dir={char_data}", f"--out_dir={out}", "--max_iters=4", "--save_checkpoints=False"]
    with pytest.raises(SystemExit) as e:
        run_main(train_module, [*argv, "--halt_at_iter=2"])
    assert e.value.code == 4
    said = capsys.readouterr().out
    assert "nothing saved (save_checkpoints=False)" in said and "checkpoint saved" not in said
    final = json.load(open(os.path.join(out, "final.json")))
    assert (final["status"], final["iter"], final["resumable"]) == ("stopped", 2, False)
    run_main(train_module, argv)
    assert [r["iter"] for r in rows(out) if "loss" in r] == [1, 2, 3, 4]
    assert json.load(open(os.path.join(out, "final.json")))["status"] == "done"


# --- 1, 8, 9. settings and numbers; a signal during start-up --------------------------------------

@pytest.mark.parametrize("arg, said", [
    ("--learning_rate=9**9**9**9", "beyond what a setting may be"),
    ("--max_tokens=(9**999)**999", "beyond what a setting may be"),
    ("--max_tokens=" + "+".join(["1"] * 20000), "--max_tokens="),
    ("--n_layer=10**400", "beyond what a setting may be"),
    ("--seed=-1", "seed=-1 must be in [0, 2**32)"),
    (f"--seed={2 ** 32}", "must be in [0, 2**32)"),
    ("--input_mult=0", "input_mult=0.0 must be a positive finite number"),
    ("--output_mult=0", "output_mult=0.0 must be a positive finite number"),
    ("--max_tokens=2**100", "is beyond 2**63"),
])
def test_bad_numbers_are_one_line_and_quick(char_data, tmp_path, arg, said):
    t0 = time.time()
    with pytest.raises(UserError) as e:
        run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={tmp_path / 'o'}", "--max_iters=2", arg])
    assert said in str(e.value) and len(str(e.value).splitlines()) == 1, str(e.value)
    assert time.time() - t0 < 10
    assert not (tmp_path / "o").exists()


def test_an_integer_beyond_a_float_in_a_config_file_is_one_line(char_data, tmp_path):
    cfg = tmp_path / "big.py"
    cfg.write_text("n_layer = 10**400\n")
    with pytest.raises(UserError, match="n_layer=.*is beyond 2\\*\\*63"):
        run_main(train_module, [str(cfg), *RUN[2:], f"--data_dir={char_data}", f"--out_dir={tmp_path / 'o'}"])


def test_a_fifo_as_config_file_is_refused_at_once(tmp_path):
    fifo = str(tmp_path / "cfg.py")
    os.mkfifo(fifo)
    res = subprocess.run([sys.executable, "train.py", fifo], cwd=REPO, env=ENV, capture_output=True, text=True,
                         timeout=60)
    line = one_line(res)
    assert line.startswith("error: config file") and "not a file" in line, line


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_imports_is_a_stop_in_one_line(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "train.py", *RUN, f"--out_dir={tmp_path / 'o'}"], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # inside `import torch` (about 2 s here)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, (proc.returncode, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "stopped during start-up" in err, err


def test_an_allocation_the_estimate_let_through_is_one_line(char_data, tmp_path, monkeypatch):
    """What CPU torch raises when the allocator refuses (a RuntimeError, not MemoryError), in
    the first training step: one line naming what to lower."""
    def refuse(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")
    monkeypatch.setattr(train_module.GPT, "forward", refuse)
    with pytest.raises(UserError, match="out of memory in evaluate .allocating 68719476736 bytes.*lower batch_size"):
        run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={tmp_path / 'o'}", "--max_iters=2"])



def test_a_runtime_error_that_is_not_an_allocation_is_not_called_out_of_memory(char_data, tmp_path, monkeypatch):
    """Only the allocator's refusal becomes the out-of-memory line; any other RuntimeError in a
    step is a bug and keeps its own traceback (a guard that matched every RuntimeError hid them)."""
    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x8 and 16x8)")
    monkeypatch.setattr(train_module.GPT, "forward", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={tmp_path / 'o'}", "--max_iters=2"])

def test_verify_data_reads_every_byte_before_training(char_data, tmp_path):
    """--verify_data=True: a token rewritten inside train.bin (another valid id) is refused
    before any training, by the sha256 prepare recorded; the intact dataset passes."""
    import numpy as np
    from dataloader import read_tokens
    data = str(tmp_path / "data")
    shutil.copytree(char_data, data)
    path = os.path.join(data, "train.bin")
    tokens = np.asarray(read_tokens(path))
    i = len(tokens) // 2
    offset = os.path.getsize(path) - 2 * (len(tokens) - i)  # uint16 ids after the header
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(int((tokens[i] + 1) % 10).to_bytes(2, "little"))
    from dataloader import fingerprint  # the cheap check made to pass, as it does for a rewrite past the
    meta = json.load(open(os.path.join(data, "meta.json")))  # first and last MiB of a large file
    meta["files"]["train.bin"] = fingerprint(path)
    json.dump(meta, open(os.path.join(data, "meta.json"), "w"))
    with pytest.raises(UserError, match="sha256"):
        run_main(train_module, [*RUN, f"--data_dir={data}", f"--out_dir={tmp_path / 'o'}", "--max_iters=2",
                                "--verify_data=True"])
    assert not (tmp_path / "o" / "metrics.jsonl").exists()
    run_main(train_module, [*RUN, f"--data_dir={char_data}", f"--out_dir={tmp_path / 'ok'}", "--max_iters=2",
                            "--verify_data=True"])

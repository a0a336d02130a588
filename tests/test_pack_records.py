"""Packs as runs (pack.train_pack, pack.py, scripts/sweep.py --pack): each member's out_dir
holds what train.py alone writes there (config.json, metrics.jsonl, final.json, checkpoints,
train.log; provenance.json with a `packed` note), its results row is the run alone's within
float reassociation (test_pack.TOL), a stopped pack continues packed or alone, a diverging
member is recorded and leaves, and a pack too big for memory is split."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import configurator
import pack
import runs
import train
from conftest import ENV, REPO, TINY, run_script
from test_pack import TOL, rel

from test_sweep import sweep as sweep_script

STEPS = 20
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")


def sweep_file(tmp_path, char_data, lrs=(1e-2, 1e6)):
    path = tmp_path / "tiny.py"
    path.write_text(f"data_dir = {char_data!r}\nn_layer = 2\nn_embd = 32\nn_head = 2\nbase_n_embd = 16\n"
                    "base_n_layer = 1\nblock_size = 32\nbatch_size = 4\nglobal_batch_size = 8\neval_tokens = 512\n"
                    f"sample_tokens = 0\ndevice = 'cpu'\nmax_iters = {STEPS}\neval_interval = 10\nlog_interval = 5\n"
                    f"warmup_frac = 0.1\nlearning_rate = {list(lrs)!r}\nseed = [3]\n")
    return str(path)


def sweep(path, out_root, *extra):
    return run_script(["scripts/sweep.py", path, "--out_root", str(out_root), "--threads", "1", *extra])


def rows(out_root):
    import csv
    with open(os.path.join(out_root, "results.csv")) as f:
        return {os.path.relpath(r["out_dir"], str(out_root)): r for r in csv.DictReader(f)}


def history(out_dir):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def read(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.slow
def test_sweep_pack_members_are_runs_alone_through_a_stop(tmp_path, char_data):
    """sweep.py --pack 2 stopped at step 10 (halt_at_iter, as SIGTERM), then continued by the same
    command (the one point left runs alone, by train.py), against the same sweep with one train.py per point: the same rows (status, steps,
    val_loss within TOL; the diverging point diverged at the same step), the same metrics rows
    (keys, steps, losses within TOL), the same config.json but for out_dir, and the packed note."""
    path = sweep_file(tmp_path, char_data)
    packed, alone = tmp_path / "packed", tmp_path / "alone"
    r = sweep(path, packed, "--pack", "2", "--set", "halt_at_iter=10")
    assert r.returncode == runs.EXIT_STOPPED, r.stdout + r.stderr
    ended = {os.path.basename(os.path.dirname(d)): read(os.path.join(d, "final.json"))["status"]
             for d, _, files in os.walk(packed) if "final.json" in files}
    assert ended == {"lr0.01": "stopped", "lr1e+06": "diverged"}, ended
    assert os.path.isfile(packed / "completep" / "L2_N32" / "lr0.01" / "s3" / "ckpt_0000010.pt")  # run-alone format
    r = sweep(path, packed, "--pack", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 to run" in r.stdout  # the diverged point finished in the first invocation
    r = sweep(path, alone)
    assert r.returncode == 0, r.stdout + r.stderr
    got, want = rows(packed), rows(alone)
    assert sorted(got) == sorted(want) and len(want) == 2
    for name, w in want.items():
        g = got[name]
        assert (g["status"], g["steps"]) == (w["status"], w["steps"]), name
        if w["status"] == "done":
            assert rel(float(g["val_loss"]), float(w["val_loss"])) < TOL, name
        else:
            assert w["status"] == "diverged" and int(w["steps"]) < 10
        hg, hw = history(packed / name), history(alone / name)
        assert [(h["iter"], sorted(h)) for h in hg] == [(h["iter"], sorted(h)) for h in hw], name
        for a, b in zip(hg, hw):
            for k in ("loss", "train_loss", "val_loss", "grad_norm"):
                if k in b:
                    assert rel(a[k], b[k]) < TOL, (name, a["iter"], k)
            assert a.get("lr") == b.get("lr") and a["tokens"] == b["tokens"]
        cg, cw = read(packed / name / "config.json"), read(alone / name / "config.json")
        assert cg["config"].pop("out_dir") != cw["config"].pop("out_dir")
        cg["config"].pop("halt_at_iter"), cw["config"].pop("halt_at_iter")  # the diverged one ran with the --set
        assert cg == cw, name
        pg, pw = read(packed / name / "provenance.json"), read(alone / name / "provenance.json")
        assert "packed" not in pw and "packed" not in json.dumps(pw)
        assert pg["packed"]["members"] == 2 and len(pg["packed"]["with"]) == 1
        assert str(packed / name) not in pg["packed"]["with"]
        if w["status"] == "done":  # continued alone: the resume's record says so, and is not marked packed
            assert pg["resumes"][-1]["step"] == 10 and "packed" not in pg["resumes"][-1]
            assert "step 20: train loss" in (packed / name / "train.log").read_text()
        assert "packed: member" in (packed / name / "train.log").read_text()
    # wall_s: the pack's wall time shared out, so a column sum is the machine time spent
    assert all(float(g["wall_s"]) > 0 for g in got.values())


def member_argv(char_data, out_dir, i, lr, *extra):
    return [f"--data_dir={char_data}", *TINY, f"--max_iters={STEPS}", "--eval_interval=10", "--warmup_frac=0.1",
            "--base_n_embd=16", "--base_n_layer=1", "--log_interval=5", f"--learning_rate={lr}", f"--seed={i}",
            f"--init_std={0.02 + 0.005 * i}", f"--out_dir={out_dir / f'm{i}'}", *extra]


def member_configs(char_data, out_dir, lrs, *extra):
    defaults, annotations = runs.train_defaults()
    return [configurator.parse(defaults, member_argv(char_data, out_dir, i, lr, *extra), annotations,
                               train.NANOGPT_ALIASES)[0] for i, lr in enumerate(lrs)]


TIMING = ("wall_s", "tok_per_s", "ms_per_step")


def without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_a_stopped_pack_continues_packed_and_alone(tmp_path, char_data):
    """Members stopped at different steps (their own halt_at_iter) continue as two stacks, one
    per step, bit for bit as an uninterrupted pack; a member continued by train.py alone lands
    within TOL of it (its checkpoint is the run-alone format)."""
    lrs = [1e-2, 5e-3, 2e-2]
    straight = pack.train_pack(member_configs(char_data, tmp_path / "straight", lrs))
    halted = member_configs(char_data, tmp_path / "halted", lrs)
    for c, at in zip(halted, (10, 10, 15)):
        c["halt_at_iter"] = at
    first = pack.train_pack(halted)
    assert [r["status"] for r in first] == ["stopped"] * 3 and [r["iter"] for r in first] == [10, 10, 15]
    for c, at in zip(halted, (10, 10, 15)):
        final = read(os.path.join(c["out_dir"], "final.json"))
        assert (final["status"], final["iter"], final["resumable"]) == ("stopped", at, True)
    said = []
    again = pack.train_pack([dict(c, halt_at_iter=-1) for c in halted[1:]], out=said.append)
    assert any("resumed at step 10" in s for s in said) and any("resumed at step 15" in s for s in said), said
    for k, r in zip((1, 2), again):
        assert r["status"] == "done"
        got, want = history(halted[k]["out_dir"]), history(tmp_path / "straight" / f"m{k}")
        assert without_timing(got) == without_timing(want)  # floats compared exactly
        assert r["val"][STEPS] == straight[k]["val"][STEPS]
    # member 0 continued alone by train.py, from the pack's checkpoint, by the command that started it
    r = run_script(["train.py", *member_argv(char_data, tmp_path / "halted", 0, lrs[0])])
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout and "ckpt_0000010.pt" in r.stdout
    final = read(os.path.join(halted[0]["out_dir"], "final.json"))
    assert final["status"] == "done" and rel(final["val_loss"], straight[0]["val"][STEPS]) < TOL
    got, want = history(halted[0]["out_dir"]), history(tmp_path / "straight" / "m0")
    assert [sorted(g) for g in got] == [sorted(w) for w in want]
    assert all(rel(g[k], w[k]) < TOL for g, w in zip(got, want) for k in ("loss", "val_loss") if k in w)


def test_sigterm_stops_a_pack_at_a_step_boundary_every_member_resumable(tmp_path, char_data):
    argvs = [member_argv(char_data, tmp_path, i, lr, "--max_iters=100000", "--eval_interval=100000",
                         "--log_interval=1") for i, lr in enumerate([1e-2, 5e-3])]
    spec = tmp_path / "pack.json"
    spec.write_text(json.dumps(dict(members=argvs)))
    p = subprocess.Popen([sys.executable, "pack.py", str(spec)], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out_dirs = [tmp_path / "m0", tmp_path / "m1"]
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(out_dirs[1] / "metrics.jsonl")
                                          and len(history(out_dirs[1])) > 3):
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == runs.EXIT_STOPPED, out
    assert "pack of 2: 2 stopped" in out
    steps = set()
    for d in out_dirs:
        final = read(d / "final.json")
        assert final["status"] == "stopped" and final["resumable"] is True
        steps.add(final["iter"])
        assert os.path.isfile(d / f"ckpt_{final['iter']:07d}.pt")
        assert "stopped at step" in (d / "train.log").read_text()
        assert not os.path.exists(d / "train.lock")  # let go
    assert len(steps) == 1  # one step boundary for the pack


def test_a_pack_too_big_for_memory_is_split(tmp_path, char_data, monkeypatch):
    """The estimate printed, the members run as smaller packs, each member still its own run."""
    cfgs = member_configs(char_data, tmp_path, [1e-2, 5e-3, 2e-2])
    need = runs.memory_estimate(2, 32, 2, 65, 32, 4)[0]
    monkeypatch.setattr(pack, "available_memory", lambda *a: 2.5 * need)
    said = []
    got = pack.train_pack(cfgs, out=said.append)
    assert any("a pack of 3 needs about" in s and "2 packs of at most 2" in s for s in said), said
    whole = pack.run_pack(member_configs(char_data, tmp_path / "whole", [1e-2, 5e-3, 2e-2]))
    for g, w, c in zip(got, whole, cfgs):
        assert g["status"] == "done" and rel(g["val"][STEPS], w["val"][STEPS]) < TOL
        assert read(os.path.join(c["out_dir"], "provenance.json"))["packed"]["members"] in (1, 2)


def test_pack_refusals_are_one_line(tmp_path, char_data):
    cfgs = member_configs(char_data, tmp_path, [1e-2, 5e-3])
    for bad, words in ((dict(wandb_log=True), "wandb_log=True cannot be packed"),
                       (dict(eval_only=True), "eval_only=True cannot be packed")):
        with pytest.raises(runs.UserError, match=words):
            pack.train_pack([cfgs[0], dict(cfgs[1], **bad)])
    with pytest.raises(runs.UserError, match="share an out_dir"):
        pack.train_pack([cfgs[0], dict(cfgs[1], out_dir=cfgs[0]["out_dir"])])
    (tmp_path / "bad.json").write_text("{\"members\": 3}")
    with pytest.raises(runs.UserError, match="cannot read the pack file"):
        pack.read_spec(str(tmp_path / "none.json"))
    r = run_script(["pack.py", str(tmp_path / "bad.json")])  # end to end: one line, exit 2
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "one list of strings per member" in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    for flags, words in ((["--slurm"], "does not combine with --slurm"), (["--index", "0"], "with --index"),
                         (["--nproc_per_node", "2"], "with --nproc_per_node > 1")):
        with pytest.raises(runs.UserError, match=words):
            sweep_script.main([sweep_file(tmp_path, char_data), "--pack", "2", *flags])
    with pytest.raises(runs.UserError, match="must be at least 1"):
        sweep_script.main([sweep_file(tmp_path, char_data), "--pack", "0"])

"""scripts/transfer.py, the hand-off from a tuned proxy to a target: at the proxy's own shape the
written file trains the sweep's best point to the bit; a proxy with a non-default recipe keeps
every recipe setting in the target, a change to one is refused in one line unless --allow; the
printed table is train.py's; bad input is one line, exit 2. CPU, offline: one tiny sweep of 2
points (scripts/sweep.py, a subprocess), everything else in-process."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, run_main, write_char_dataset
from configurator import parse
import results
import runs
import train


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


transfer = _module("transfer_script", "scripts/transfer.py")

# the proxy: conftest's TINY shape and batch on a non-default recipe (WSD, attention multiplier 2,
# no biases, clipping at 0.5, block 16 instead of 128; completedp, untied), 3 steps
RECIPE = dict(lr_schedule="wsd", warmup_frac=0.25, decay_frac=0.5, attn_mult=2.0, bias=False, grad_clip=0.5,
              block_size=16, parameterization="completedp", tie_embeddings=False)
SHAPE = dict(n_layer=2, n_embd=32, n_head=2, batch_size=4, global_batch_size=8, max_iters=3)


def _lines(d):
    return "".join(f"{k} = {v!r}\n" for k, v in d.items())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 2-point LR sweep of the proxy, run by scripts/sweep.py: (root, results.csv)."""
    root = tmp_path_factory.mktemp("transfer")
    data = write_char_dataset(str(root / "data"))
    (root / "base.py").write_text(_lines(dict(
        data_dir=data, base_n_layer=2, base_n_embd=32, eval_tokens=256, eval_interval=1000, log_interval=1,
        save_checkpoints=False, sample_tokens=0, device="cpu", **SHAPE, **RECIPE)))
    (root / "lr.py").write_text(f"base_config = {str(root / 'base.py')!r}\nlearning_rate = [2.0 ** -7, 2.0 ** -5]\n"
                                "seed = [0]\n")
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "sweep.py"), str(root / "lr.py"), "--out_root",
                          str(root / "runs"), "--jobs", "2", "--threads", "2"], capture_output=True, text=True,
                         cwd=REPO, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stdout + res.stderr
    return root, str(root / "runs" / "results.csv")


def _transfer(argv, capsys):
    """transfer.main through run_cli, as its entry point runs it: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        runs.run_cli(lambda: transfer.main(argv))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _target(root, name, **settings):
    path = root / f"{name}.py"
    path.write_text(_lines(settings))
    return str(path)


def test_settings_table_names_every_train_setting():
    defaults, _ = runs.train_defaults()
    assert set(transfer.SETTINGS) == set(defaults), (
        f"classify in scripts/transfer.py SETTINGS: {sorted(set(defaults) - set(transfer.SETTINGS))}; "
        f"remove: {sorted(set(transfer.SETTINGS) - set(defaults))}")


def test_fit_beside_the_grid_pick_with_seed_spread():
    """Two seeds of a parabola in log2(lr) with its vertex at -6 (seed 1 shifted by half an octave)."""
    curve = {2.0 ** x: {"0": (x + 6) ** 2, "1": (x + 5.5) ** 2 + 0.1} for x in (-8, -7, -6, -5, -4)}
    fit, per_seed, sd = transfer._fit(curve, {"0", "1"})
    assert -6 < fit["log2_opt"] < -5.5 and fit["note"] == ""
    assert per_seed["0"] == (pytest.approx(-6.0), "") and per_seed["1"] == (pytest.approx(-5.5), "")
    assert 0 < sd < 0.5


@pytest.mark.slow
def test_proxy_shape_reproduces_the_sweep_point_bit_for_bit(sweep, tmp_path, capsys):
    root, csv = sweep
    target = _target(tmp_path, "same", **SHAPE)  # shape, batch and length only: the proxy's
    out = str(tmp_path / "same_transfer.py")
    code, printed, err = _transfer(["--from_sweep", csv, "--target", target, "--out", out], capsys)
    assert code == 0, err
    rows = [r for r in results.load(csv) if r["status"] == "done"]
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert f"learning_rate {float(best['learning_rate']):.4g}" in printed and "grid pick" in printed
    run = tmp_path / "run"
    run_main(train, [out, f"--out_dir={run}"])
    final = json.loads((run / "final.json").read_text())
    assert final["val_loss"] == float(best["val_loss"])  # to the bit
    # a real run: checkpoints and a final sample (the sweep base turned both off)
    assert list(run.glob("ckpt_*.pt")) and "sample:" in capsys.readouterr().out


@pytest.mark.slow
def test_recipe_kept_refused_or_allowed(sweep, tmp_path, capsys):
    root, csv = sweep
    defaults, annotations = runs.train_defaults()
    target = _target(tmp_path, "big", n_layer=4, n_embd=64, n_head=4, batch_size=4, global_batch_size=16,
                     max_iters=6)
    out = str(tmp_path / "big_transfer.py")
    code, _, err = _transfer(["--from_sweep", csv, "--target", target, "--out", out], capsys)
    assert code == 0, err
    got = parse(defaults, [out], annotations)[0]
    best = min((r for r in results.load(csv) if r["status"] == "done"), key=lambda r: float(r["val_loss"]))
    proxy = json.loads(open(os.path.join(best["out_dir"], "config.json")).read())["config"]
    recipe = [k for k in defaults if transfer.kind(k) in ("recipe", "carried")]
    assert {k: got[k] for k in recipe} == {k: proxy[k] for k in recipe}
    assert {k: got[k] for k in RECIPE} == RECIPE
    assert (got["n_layer"], got["n_embd"], got["global_batch_size"], got["max_iters"]) == (4, 64, 16, 6)
    base = (got["base_n_layer"], got["base_n_embd"], got["base_batch_size"], got["base_tokens"], got["base_block_size"])
    assert base == (2, 32, 8, 3 * 8 * 16, 16)  # the proxy's shape, batch, tokens and context
    assert got["save_checkpoints"] and got["sample_tokens"] == defaults["sample_tokens"]

    for key, value, theirs in (("block_size", 64, 16), ("lr_schedule", "cosine", "wsd")):
        code, _, err = _transfer(["--from_sweep", csv, "--target", target, "--set", f"{key}={value}"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{key}={value!r}" in err and f"{key}={theirs!r}" in err and f"--allow {key}" in err
    # allowed, another context is still refused for completedp: m_B counts the proxy's sequences
    code, _, err = _transfer(["--from_sweep", csv, "--target", target, "--set", "block_size=64", "--allow",
                              "block_size", "--out", out], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "block_size=64 differs from the proxy's context 16 (base_block_size)" in err
    code, _, err = _transfer(["--from_sweep", csv, "--target", target, "--set", "lr_schedule='cosine'", "--allow",
                              "lr_schedule", "--out", out], capsys)
    assert code == 0, err
    assert parse(defaults, [out], annotations)[0]["lr_schedule"] == "cosine"
    assert "lr_schedule = 'cosine'  # --allow lr_schedule: the proxy trained 'wsd'" in open(out).read()


@pytest.mark.slow
def test_printed_table_is_train_pys(sweep, tmp_path, capsys):
    root, csv = sweep
    target = _target(tmp_path, "wide", n_layer=4, n_embd=64, n_head=4, batch_size=4, global_batch_size=16,
                     max_iters=2, sample_tokens=0, save_checkpoints=False)
    out = str(tmp_path / "wide_transfer.py")
    code, printed, err = _transfer(["--from_sweep", csv, "--target", target, "--out", out], capsys)
    assert code == 0, err
    mine = printed.split("target's table:\n")[1].split("\nwrote ")[0].splitlines()
    assert mine[0].startswith("parameterization completedp: m_N=2 m_L=2 alpha=1 m_B=2 m_D=1.333")
    run_main(train, [out, f"--out_dir={tmp_path / 'run'}"])
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("parameterization "))
    assert lines[start:start + len(mine)] == mine
    assert lines[start + len(mine)].startswith("step 0:")  # the whole table, not a part of it



@pytest.mark.slow
def test_search_trial_reproduced_bit_for_bit(sweep, tmp_path, capsys):
    """--from_search: a 1-trial search of the same proxy (scripts/search.py, a subprocess); the file
    at the proxy's shape trains that trial's val_loss to the bit, its module_hparams included."""
    pytest.importorskip("optuna")
    root, _ = sweep
    out_root = tmp_path / "search"
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "search.py"), str(root / "base.py"),
                          "--trials", "1", "--space", "lr:attn_qkv", "--threads", "1", "--out_root", str(out_root)],
                         capture_output=True, text=True, cwd=REPO, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stdout + res.stderr
    out = str(tmp_path / "from_search.py")
    code, printed, err = _transfer(["--from_search", str(out_root), "--target", _target(tmp_path, "same", **SHAPE),
                                    "--out", out], capsys)
    assert code == 0, err
    assert "best trial of search" in printed and "t0000" in printed
    run_main(train, [out, f"--out_dir={tmp_path / 'run'}", "--sample_tokens=0"])
    trial = json.loads((out_root / "trials" / "t0000" / "final.json").read_text())
    assert json.loads((tmp_path / "run" / "final.json").read_text())["val_loss"] == trial["val_loss"]


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    write_char_dataset(str(tmp_path / "data"))
    target = _target(tmp_path, "t", **SHAPE)
    (tmp_path / "sweep.py").write_text("base_config = 'x.py'\nlearning_rate = [0.1]\n")
    (tmp_path / "empty_search").mkdir()
    # a results file with done rows at 2 x 32 only, written by its owner
    header = results.columns({"learning_rate": [0.01]})
    for lr in (0.01, 0.02):
        results.append_row(str(tmp_path / "results.csv"), header, dict(
            sweep="s", parameterization="completep", n_layer=2, n_embd=32, n_head=2, learning_rate=lr, init_std=0.02,
            output_mult=1.0, seed=0, status="done", val_loss=3.0 + lr, out_dir=str(tmp_path / "gone")))
    csv = str(tmp_path / "results.csv")
    cases = [
        (["--from_sweep", str(tmp_path / "nope.csv"), "--target", target], "does not exist"),
        (["--from_sweep", csv, "--n_layer", "4", "--target", target], "no done row at the proxy's shape 4 x 32"),
        (["--from_sweep", csv, "--target", target], "has no config.json"),
        (["--from_search", str(tmp_path / "empty_search"), "--target", target], "no finished trial"),
        (["--from_search", str(tmp_path / "nothere"), "--target", target], "does not exist"),
        (["--from_sweep", csv, "--target", str(tmp_path / "sweep.py")], "is a sweep file"),
        (["--from_sweep", csv, "--target", str(tmp_path / "missing.py")], "does not exist"),
        (["--from_sweep", csv, "--target", target, "--set", "lerning_rate=0.1"], "did you mean 'learning_rate'"),
        (["--from_sweep", csv, "--target", target, "--allow", "colour"], "--allow colour"),
        (["--from_sweep", csv, "--target", target, "--allow", "n_layer"], "no --allow needed"),
    ]
    for argv, message in cases:
        code, out, err = _transfer(argv, capsys)
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (argv, err)
        assert message in err, (argv, err)
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "transfer.py"), "--from_sweep", csv,
                          "--n_layer", "4", "--target", target], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "done rows are at 2 x 32" in res.stderr

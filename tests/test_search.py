"""scripts/search.py: the trust-region sampler on a synthetic objective (no training), a real
search of 2-step train.py runs stopped and restarted, failed trials recorded as failed (a fake
trainer that diverges or crashes), the written config loaded by train.py, and one-line errors.
CPU, seeded, offline."""
import csv
import errno
import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO, TINY, run_script

spec = importlib.util.spec_from_file_location("search_script", os.path.join(REPO, "scripts", "search.py"))
search = importlib.util.module_from_spec(spec)
spec.loader.exec_module(search)
UserError = search.UserError
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _args(*argv):
    """The resolved arguments of a search command (what main() sees)."""
    args = search.parse_args(list(argv))
    search.setup(args)
    return args


def mults(params):
    """The module_hparams a point means, computed here: {type: {hp: 2**x}}, and depth.<hp>.<i>
    as {"depth": {hp: [2**x per layer]}}."""
    out = {}
    for name, x in params.items():
        mtype, hp, *layer = name.split(".")
        if layer:
            prof = out.setdefault(mtype, {}).setdefault(hp, [None, None])
            prof[int(layer[0])] = 2.0 ** x
        else:
            out.setdefault(mtype, {})[hp] = 2.0 ** x
    return out


@pytest.fixture(scope="module")
def proxy(char_data, tmp_path_factory):
    """A 2-step Complete(d)P untied proxy on the tiny char data."""
    path = tmp_path_factory.mktemp("proxy") / "proxy.py"
    lines = []
    for a in TINY:  # --key=value -> key = value
        k, v = a[2:].split("=", 1)
        lines.append(f"{k} = {v}" if re.fullmatch(r"[0-9.e+-]+", v) else f"{k} = {v!r}")
    lines += [f"data_dir = {char_data!r}", "max_iters = 2", "eval_interval = 1000", "eval_tokens = 256",
              "log_interval = 1", "save_checkpoints = False", "parameterization = 'completedp'",
              "tie_embeddings = False", "learning_rate = 0.01"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# --- the sampler, on a synthetic objective ---

def _box(n=4, bound=3.0):
    return {f"{t}.lr": (-bound, bound) for t in ("embedding", "attn_qkv", "mlp_in", "unembedding")[:n]}


@pytest.mark.parametrize("distribution", ["uniform", "gaussian"])
def test_trust_region_stays_inside_and_moves_only_to_improvements(distribution):
    space = _box()
    radius0, patience, shrink, expand, min_r = 1.0, 3, 0.5, 1.5, 0.1
    sampler = search.TrustRegionSampler(space, radius=radius0, patience=patience, shrink=shrink, expand=expand,
                                        min_radius=min_r, distribution=distribution, seed=3)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    target = {"embedding.lr": 1.7, "attn_qkv.lr": -0.6, "mlp_in.lr": 2.5, "unembedding.lr": -2.2}

    def f(x):
        return sum((x[n] - target[n]) ** 2 for n in space)

    # the rule, tracked here independently of the sampler's replay
    centre, radius, best, misses, radii = {n: 0.0 for n in space}, radius0, math.inf, 0, set()
    for i in range(80):
        t = study.ask(search.distributions(space))
        for n, (lo, hi) in space.items():
            assert lo <= t.params[n] <= hi
            assert abs(t.params[n] - centre[n]) <= radius + 1e-12, (i, n, t.params[n], centre[n], radius)
        if i % 9 == 4:  # a failed trial (diverged): a miss, never a centre
            study.tell(t, state=TrialState.FAIL)
            value = math.inf
        else:
            value = f(t.params)
            study.tell(t, value)
        if value < best:
            best, centre, misses = value, dict(t.params), 0
            radius = min(radius * expand, sampler.max_radius)
        else:
            misses += 1
            if misses >= patience:
                radius, misses = max(radius * shrink, min_r), 0
        radii.add(radius)
        state = sampler.state(study)
        assert state.centre == centre  # moved exactly when (and to where) the loss improved
        assert state.radius == pytest.approx(radius) and state.best_value == best
    assert min(radii) < radius0 < max(radii)  # it shrank after misses and grew on improvements
    assert best < f({n: 0.0 for n in space}) / 4  # and it made progress on the objective


def test_trust_region_respects_the_box_and_is_seeded():
    space = {"embedding.lr": (-3.0, 3.0), "residual.attn": (-3.0, 0.5)}
    centre = {"embedding.lr": 2.8, "residual.attn": 0.4}

    def draws(seed, distribution="uniform", k=200):
        sampler = search.TrustRegionSampler(space, radius=1.0, seed=seed, centre=centre, distribution=distribution)
        study = optuna.create_study(sampler=sampler)
        return [study.ask(search.distributions(space)).params for _ in range(k)]
    for distribution in ("uniform", "gaussian"):
        pts = draws(0, distribution)
        xs, ys = [p["embedding.lr"] for p in pts], [p["residual.attn"] for p in pts]
        assert 1.8 <= min(xs) and max(xs) <= 3.0 and -0.6 <= min(ys) and max(ys) <= 0.5
        assert max(xs) - min(xs) > 0.5  # it does spread over the clipped region
    assert draws(0, k=5) == draws(0, k=5) and draws(0, k=5) != draws(1, k=5)


def test_cmaes_starts_at_the_start_point_with_the_radius_as_its_spread(proxy):
    """Optuna's CMA-ES reads sigma0 in the box mapped to [0, 1]: the search converts the radius
    (log2 units), so the first generation spreads about one radius around the start point."""
    args = _args(proxy, "--sampler", "cmaes", "--radius", "0.5", "--space", "lr")
    space = search.build_space(args.space, args.config, args.bound)
    study = optuna.create_study(sampler=search.make_sampler(args, space))
    study.enqueue_trial({n: 0.0 for n in space})
    study.tell(study.ask(search.distributions(space)), 1.0)
    xs = [x for _ in range(6) for x in study.ask(search.distributions(space)).params.values()]
    spread = math.sqrt(sum(x * x for x in xs) / len(xs))  # around the start point 0
    assert 0.3 < spread < 0.8, spread  # ~0.5; sigma0 taken as log2 units would give ~3 (the box)


# --- real trials: restart continues the storage ---

def _search(proxy, out_root, *extra):
    return run_script([os.path.join("scripts", "search.py"), proxy, "--out_root", str(out_root), *extra],
                      timeout=300)


@pytest.mark.slow
def test_default_space_is_every_type_of_the_model_times_lr_init_wd_plus_depth(proxy):
    def names(*sets):
        return list(search.build_space(search.DEFAULT_SPACE, _args(proxy, *sets).config, 3))
    gpt2 = ["embedding", "attn_qkv", "attn_out", "attn_norm", "mlp_norm", "mlp_in", "mlp_out", "final_norm",
            "unembedding"]
    modern = ["embedding", "attn_q", "attn_k", "attn_v", "attn_out", "qk_norm", "attn_norm", "mlp_norm", "mlp_gate",
              "mlp_in", "mlp_out", "final_norm", "unembedding"]
    for types, sets in ((gpt2, ()), (modern, ("--set", "norm='rmsnorm'", "--set", "qk_norm=True", "--set",
                                               "mlp='swiglu'", "--set", "pos='rope'"))):
        weights = [t for t in types if "norm" not in t]  # norm gains: no init_std, no wd
        assert names(*sets) == ([f"{t}.lr" for t in types] + [f"{t}.init_std" for t in weights]
                                + [f"{t}.wd" for t in weights] + ["residual.attn", "residual.mlp"]
                                + ["depth.lr.0", "depth.lr.1"])
    # the depth items are one factor per proxy layer, in layer order, as train.py reads them
    point = {"attn_q.lr": 1.0, "depth.lr.1": -1.0, "depth.lr.0": 0.5, "depth.wd.0": 0.0, "depth.wd.1": 2.0}
    assert search.module_hparams(point) == {"attn_q": {"lr": 2.0},
                                            "depth": {"lr": [2 ** 0.5, 0.5], "wd": [1.0, 4.0]}} == mults(point)


def test_restarted_search_continues_its_storage(proxy, tmp_path):
    out = tmp_path / "s"
    first = _search(proxy, out, "--trials", "2", "--jobs", "2", "--threads", "2", "--seed", "1")
    assert first.returncode == 0, first.stderr
    assert "2/2" in first.stdout
    restart = time.time()
    second = _search(proxy, out, "--trials", "4", "--jobs", "2", "--threads", "2", "--seed", "1")
    assert second.returncode == 0, second.stderr
    assert "(2 evaluated there)" in second.stdout and "4/4" in second.stdout
    study = optuna.load_study(study_name="proxy", storage=search.make_storage(_args(proxy, "--out_root", str(out))))
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert set(trials[0].params.values()) == {0.0}  # the start point first
    for t in trials[:2]:  # finished before the restart, never run again
        assert t.datetime_complete.timestamp() < restart
        with open(os.path.join(t.user_attrs["out_dir"], "train.log")) as f:
            assert f.read().count("step 2: train loss") == 1
    for t in trials[2:]:
        assert t.datetime_start.timestamp() >= restart - 1
    # each trial ran with its own multipliers, and its value is its run's final val_loss
    for t in trials:
        with open(os.path.join(t.user_attrs["out_dir"], "config.json")) as f:
            assert json.load(f)["config"]["module_hparams"] == mults(t.params)
        with open(os.path.join(t.user_attrs["out_dir"], "final.json")) as f:
            assert json.load(f)["val_loss"] == t.value
    assert os.path.isfile(out / "progress.png") and os.path.isfile(out / "searched_modules.py")
    rows = [ln for ln in (out / "trials.md").read_text().splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert len(rows) == 4


def test_same_search_from_another_clone_or_machine():
    """A storage shared by clones at other paths (other machines): an in-repo config is recorded
    relative to the repository, and one recorded as another clone's absolute path still matches;
    another config does not."""
    args = _args(os.path.join(REPO, "config", "search_proxy.py"))
    space = ["attn_qkv.lr"]
    assert search.identity(args, space)["configs"] == [os.path.join("config", "search_proxy.py")]

    class Study:
        user_attrs = {"search": dict(search.identity(args, space),
                                     configs=["/elsewhere/clone/config/search_proxy.py"])}
    search.check_identity(Study, args, space)  # the same search: no error
    Study.user_attrs = {"search": dict(Study.user_attrs["search"], configs=["/elsewhere/clone/config/gpt2_proxy.py"])}
    with pytest.raises(UserError, match="configs="):
        search.check_identity(Study, args, space)


# --- failures, with a fake trainer ---

FAKE = r"""
import json, os, sys
out, mode = sys.argv[1], sys.argv[2]
n = int(os.path.basename(out)[1:])
os.makedirs(out, exist_ok=True)
if mode == "error":
    print("Traceback (most recent call last): boom")
    sys.exit(1)
final = {"status": "diverged", "iter": 1} if mode == "diverged" else \
        {"status": "done", "iter": 2, "val_loss": 4.0 - 0.1 * n, "train_loss": 4.0}
with open(os.path.join(out, "final.json"), "w") as f:
    json.dump(final, f)
sys.exit(3 if mode == "diverged" else 0)
"""


@pytest.fixture(scope="module")
def fake_search(proxy, tmp_path_factory):
    """4 trials of a fake trainer: trial 1 diverges (exit 3), trial 2 crashes (exit 1); the
    others return val_loss 4 - 0.1 * trial number, so trial 3 is the best."""
    out = tmp_path_factory.mktemp("fake") / "s"
    modes = {1: "diverged", 2: "error"}
    real = search.train_command

    def fake(args, params, out_dir, seed=None):
        real(args, params, out_dir, seed)  # the real command is still built (and must not fail)
        n = int(os.path.basename(out_dir)[1:])
        return [sys.executable, "-c", FAKE, out_dir, modes.get(n, "done")]
    search.train_command = fake
    try:
        code = search.main([proxy, "--out_root", str(out), "--trials", "4", "--space", "lr:attn_qkv,residual:mlp",
                            "--threads", "1"])
    finally:
        search.train_command = real
    args = _args(proxy, "--out_root", str(out))
    return code, out, optuna.load_study(study_name="proxy", storage=search.make_storage(args))


def test_failed_trials_are_recorded_and_the_search_goes_on(fake_search):
    code, out, study = fake_search
    assert code == 0
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].user_attrs["status"] == "diverged" and trials[1].value is None
    assert trials[2].user_attrs["status"] == "error" and "boom" in trials[2].user_attrs["error"]
    assert trials[0].value == 4.0 and study.best_trial.number == 3
    table = (out / "trials.md").read_text()
    assert "| 1 | diverged |" in table and "| 2 | error |" in table


FAKE_SEEDS = r"""
import json, os, sys
out, mode = sys.argv[1], sys.argv[2]
n, seed = int(os.path.basename(os.path.dirname(out))[1:]), int(os.path.basename(out)[1:])
os.makedirs(out, exist_ok=True)
with open(os.path.join(os.path.dirname(out), "ran.txt"), "a") as f:
    f.write(f"{seed}\n")
final = {"status": "diverged", "iter": 1} if mode == "diverged" else \
        {"status": "done", "iter": 2, "val_loss": 4.0 - 0.1 * n + 0.5 * seed * seed, "train_loss": 4.0}
with open(os.path.join(out, "final.json"), "w") as f:
    json.dump(final, f)
sys.exit(3 if mode == "diverged" else 0)
"""


def test_seeds_make_a_trial_the_mean_of_one_run_per_seed(proxy, tmp_path):
    """--seeds 0,2: each trial runs s0 then s2 in its out_dir, each with its own --seed, and its
    value is the mean; a seed that diverges fails the trial and runs no further seed; a trial
    whose first seed finished before a restart runs only the second."""
    out = tmp_path / "s"
    real, commands = search.train_command, []

    def fake(args, params, out_dir, seed=None):
        cmd = real(args, params, out_dir, seed)
        commands.append(cmd)
        n = int(os.path.basename(os.path.dirname(out_dir))[1:])
        return [sys.executable, "-c", FAKE_SEEDS, out_dir, "diverged" if (n, seed) == (1, 0) else "done"]
    argv = [proxy, "--out_root", str(out), "--trials", "3", "--space", "lr:attn_qkv", "--threads", "1",
            "--seeds", "0,2"]
    done = out / "trials" / "t0002" / "s0"  # trial 2's first seed ran before: only s2 is left
    os.makedirs(done)
    (done / "final.json").write_text(json.dumps({"status": "done", "iter": 2, "val_loss": 1.0}))
    search.train_command = fake
    try:
        assert search.main(argv) == 0
    finally:
        search.train_command = real
    t0, t1, t2 = optuna.load_study(study_name="proxy", storage=search.make_storage(_args(*argv))).get_trials()
    assert t0.state == TrialState.COMPLETE and t0.value == 4.0 + 0.5 * 4 / 2  # mean of 4.0 and 6.0
    assert t0.user_attrs["seed_losses"] == [4.0, 6.0]
    assert (out / "trials" / "t0000" / "ran.txt").read_text() == "0\n2\n"  # in order, one each
    assert t1.state == TrialState.FAIL and t1.user_attrs["status"] == "diverged"
    assert (out / "trials" / "t0001" / "ran.txt").read_text() == "0\n"  # s2 never started
    assert (out / "trials" / "t0002" / "ran.txt").read_text() == "2\n"
    assert t2.value == (1.0 + 4.0 - 0.2 + 2.0) / 2
    seeds = [c[c.index(next(a for a in c if a.startswith("--seed="))):][0] for c in commands]
    dirs = [next(a for a in c if a.startswith("--out_dir=")) for c in commands]
    assert seeds == ["--seed=0", "--seed=2", "--seed=0", "--seed=2"]
    assert [os.path.relpath(d.split("=", 1)[1], out) for d in dirs] == [
        "trials/t0000/s0", "trials/t0000/s2", "trials/t0001/s0", "trials/t0002/s2"]
    assert "| 0 | done | 5.0000 | 4.0000 / 6.0000 |" in (out / "trials.md").read_text()
    with pytest.raises(UserError, match="with seeds=\\[0, 2\\], this command has None"):
        search.main(argv[:-2])  # the same storage without --seeds is another search


@pytest.mark.slow
def test_written_config_loads_in_train_and_reproduces_the_best_trial(fake_search, proxy, tmp_path):
    _, out, study = fake_search
    best = study.best_trial
    assert best.number == 3 and any(x != 0 for x in best.params.values())
    run_dir = tmp_path / "transfer"
    res = run_script(["train.py", proxy, str(out / "searched_modules.py"), "--max_iters=2",
                      f"--out_dir={run_dir}"])
    assert res.returncode == 0, res.stderr
    with open(run_dir / "config.json") as f:
        config = json.load(f)["config"]
    assert config["module_hparams"] == mults(best.params)  # exactly: floats written with repr
    assert set(config["module_hparams"]) == {"attn_qkv", "residual"}
    assert config["learning_rate"] == 0.01 and config["parameterization"] == "completedp"


@pytest.mark.slow
def test_a_real_diverging_run_is_a_failed_trial(proxy, tmp_path, capsys):
    """train.py itself diverging (exit 3, final.json 'diverged'): FAIL, no config written."""
    out = tmp_path / "s"
    assert search.main([proxy, "--out_root", str(out), "--trials", "1", "--learning_rate", "1e30",
                        "--space", "lr:embedding"]) == 0
    (t,) = optuna.load_study(study_name="proxy", storage=search.make_storage(
        _args(proxy, "--out_root", str(out), "--learning_rate", "1e30", "--space", "lr:embedding"))).get_trials()
    assert t.state == TrialState.FAIL and t.user_attrs["status"] == "diverged"
    with open(os.path.join(t.user_attrs["out_dir"], "final.json")) as f:
        assert json.load(f)["status"] == "diverged"
    assert not (out / "searched_modules.py").exists() and "none completed" in capsys.readouterr().out


def test_a_lost_trial_is_queued_again(proxy, tmp_path):
    """A search killed mid-trial leaves a RUNNING trial: the next start marks it lost and runs
    the same point again, in the same out_dir."""
    out = tmp_path / "s"
    args = _args(proxy, "--out_root", str(out), "--space", "lr:embedding")
    os.makedirs(out)
    study = search.open_study(args, {"embedding.lr": (-3.0, 3.0)}, search.make_sampler(args, {"embedding.lr": (-3, 3)}))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    t = study.ask(search.distributions({"embedding.lr": (-3.0, 3.0)}))
    lost_dir = str(out / "trials" / "t0000")
    for k, v in dict(host=socket.gethostname(), pid=dead.pid, out_dir=lost_dir).items():
        t.set_user_attr(k, v)
    real = search.train_command
    search.train_command = lambda a, p, d, seed=None: [sys.executable, "-c", FAKE, d, "done"]
    try:
        assert search.main([proxy, "--out_root", str(out), "--trials", "2", "--space", "lr:embedding"]) == 0
    finally:
        search.train_command = real
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["status"] == "lost"
    rerun = next(x for x in trials if x.user_attrs.get("rerun_of") == 0)
    assert rerun.params == trials[0].params and rerun.user_attrs["out_dir"] == lost_dir
    assert rerun.state == TrialState.COMPLETE
    assert sum(x.state == TrialState.COMPLETE for x in trials) == 2  # the lost one used no budget


# --- the start point, the dry run, bad input ---

def test_start_point_from_a_sweep_is_the_lowest_mean_over_seeds(proxy, tmp_path):
    rows = [("completedp", 2, 32, 0.02, 0, "done", 2.00), ("completedp", 2, 32, 0.02, 1, "done", 2.20),
            ("completedp", 2, 32, 0.01, 0, "done", 2.05), ("completedp", 2, 32, 0.01, 1, "done", 2.05),
            ("completedp", 2, 32, 0.04, 0, "diverged", "inf"), ("completedp", 4, 32, 0.005, 0, "done", 1.0),
            ("completep", 2, 32, 0.08, 0, "done", 1.5)]
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sweep", "parameterization", "n_layer", "n_embd", "learning_rate", "init_std", "seed", "status",
                    "val_loss"])
        for r in rows:
            w.writerow(["s", *r[:3], r[3], 0.02, *r[4:]])
    args = search.parse_args([proxy, "--from_sweep", str(path)])
    search.setup(args)
    assert args.lr0 == 0.01 and args.std0 is None  # 0.02 has the single lowest row, 0.01 the lower mean


def test_dry_run_plans_without_training_or_storage(proxy, tmp_path, capsys):
    out = tmp_path / "s"
    for sampler in ("trust_region", "cmaes"):
        assert search.main([proxy, "--out_root", str(out), "--dry_run", "--show", "3", "--sampler", sampler]) == 0
        text = capsys.readouterr().out
        assert "trial 0: " in text and "trial 2: " in text and "space: 25 log2-multipliers" in text
        assert "residual.mlp" in text and "--module_hparams=" in text and '"depth": {"lr": [' in text
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--trials", "0"], "--trials=0 must be at least 1"),
    (["--sampler", "cmaess"], "did you mean 'cmaes'"),
    (["--space", "lr,wdd"], "did you mean 'wd'"),
    (["--space", "init_std:block_norm"], "norm gains have no init_std multiplier"),
    (["--space", "lr:attn_q"], "the proxy's model has no attn_q"),
    (["--space", "lr:qk_norm"], "the proxy's model has no qk_norm"),
    (["--space", "depth"], "needs a hyperparameter, like depth:lr"),
    (["--space", "depth:learning_rate"], "unknown depth hyperparameter"),
    (["--space", "lr:attn_qkv,lr:attn_k", "--set", "norm='rmsnorm'"], "attn_qkv covers attn_q, attn_k, attn_v"),
    (["--space", "lr,lr:attn_qkv"], "attn_qkv.lr twice"),
    (["--space", "lr:attn"], "unknown module type 'attn'"),
    (["--learning_rate", "-1"], "must be a positive number"),
    (["--from_sweep", "nope.csv"], "does not exist"),
    (["--from_sweep", "x.csv", "--learning_rate", "0.01"], "give one"),
    (["--set", "learning_rate=0.1"], "set by the search itself"),
    (["--seeds", "0,x"], "must be distinct integers"),
    (["--seeds", "1,1"], "must be distinct integers"),
    (["--seeds", "1", "--set", "seed=3"], "give one"),
    (["--set", "n_embdd=3"], "n_embd"),
    (["--radius", "0.01"], "--min_radius=0.0625 is larger than --radius=0.01"),
    (["--space", "lr:unembedding", "--set", "tie_embeddings=True"], "the proxy ties its embeddings"),
    (["--from_sweep", os.path.join(REPO, "experiments", "depth_transfer_b4", "results.csv")],
     "has no done row at the proxy's completedp 2 x 32"),
])
def test_bad_arguments_are_one_line_errors(proxy, extra, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        search.setup(search.parse_args([proxy, *extra]))


def test_bad_argument_exit_code_and_a_changed_command_on_a_storage(proxy, tmp_path):
    res = run_script([os.path.join("scripts", "search.py"), proxy, "--trials", "0"])
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == ["error: --trials=0 must be at least 1"]
    res = run_script([os.path.join("scripts", "search.py"), str(tmp_path / "none.py")])
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1 and "does not exist" in res.stderr
    out = tmp_path / "s"
    args = _args(proxy, "--out_root", str(out))
    os.makedirs(out)
    search.open_study(args, {"embedding.lr": (-3.0, 3.0)}, None)  # a storage made by another command
    with pytest.raises(UserError, match="holds search 'proxy' with space="):
        search.main([proxy, "--out_root", str(out)])


# --- faults: the journal, a full disk, checkpoints, hostile paths (issue: the second round) ---

def _fake_run(proxy, out, trials, monkeypatch, *extra):
    monkeypatch.setattr(search, "train_command", lambda a, p, d, seed=None: [sys.executable, "-c", FAKE, d, "done"])
    return search.main([proxy, "--out_root", str(out), "--trials", str(trials), "--space", "lr:embedding", *extra])


def _journal_ok(path):
    """Every line a whole JSON record, and plain Optuna reads the file to its end."""
    lines = open(path, "rb").read().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
    from optuna.storages.journal import JournalFileBackend
    return JournalFileBackend(str(path)).read_logs(0)


def test_a_torn_journal_is_repaired_and_the_search_goes_on(proxy, tmp_path, monkeypatch, capsys):
    """The issue's example: the journal's last record cut short (a kill or a full disk
    mid-append) was glued to the next record, and every later command died with a
    JSONDecodeError. Now the torn bytes are moved aside with a note and the search goes on;
    a tail torn while a search runs is moved aside by the next append."""
    out = tmp_path / "s"
    assert _fake_run(proxy, out, 1, monkeypatch) == 0
    journal = out / "journal.log"
    data = journal.read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    journal.write_bytes(data[:last + (len(data) - last) // 2])  # what a kill mid-append leaves
    torn = journal.read_bytes()[last:]
    capsys.readouterr()
    assert _fake_run(proxy, out, 2, monkeypatch) == 0
    assert f"note: {journal} ended in a torn record ({len(torn)} bytes" in capsys.readouterr().out
    (aside,) = out.glob("journal.log.torn-*")
    assert aside.read_bytes() == torn
    n = len(_journal_ok(journal))
    # torn while a search holds the storage open: its next append starts on a fresh line
    storage = search.make_storage(_args(proxy, "--out_root", str(out), "--space", "lr:embedding"))
    study = optuna.load_study(study_name="proxy", storage=storage)
    with open(journal, "ab") as f:
        f.write(b'{"op_code":8,"worker_id":"x","trial_id":0,"user_attr":{"wa')
    study.set_user_attr("after_the_tear", 1)
    logs = _journal_ok(journal)
    assert len(logs) == n + 1 and logs[-1]["user_attr"] == {"after_the_tear": 1}


def test_a_torn_line_inside_the_journal_is_one_line(proxy, tmp_path, monkeypatch):
    """A torn record that an older search.py glued to the next one, with records after it
    (Optuna cannot read past it): one error line naming the line and the bytes to delete."""
    out = tmp_path / "s"
    assert _fake_run(proxy, out, 1, monkeypatch) == 0
    journal = out / "journal.log"
    lines = journal.read_bytes().split(b"\n")
    lines[2] = b'{"op_code":5,"worker_id":"w","tri' + lines[2]
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(UserError, match=r"journal.log line 3 is not a journal record .*33 bytes cut short by a "
                                        r"kill or a full disk, glued to the next record.*delete the first 33 bytes"
                                        ) as e:
        _fake_run(proxy, out, 2, monkeypatch)
    assert "\n" not in str(e.value) and not list(out.glob("journal.log.torn-*"))


def test_a_full_disk_while_writing_outputs_is_one_line_and_loses_no_trial(proxy, tmp_path, monkeypatch):
    out = tmp_path / "s"

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(search, "write_atomic", full)
    with pytest.raises(UserError, match=r"cannot write to .* \(No space left on device\); free space .* continues"):
        _fake_run(proxy, out, 1, monkeypatch)
    args = _args(proxy, "--out_root", str(out), "--space", "lr:embedding")
    (t,) = optuna.load_study(study_name="proxy", storage=search.make_storage(args)).get_trials()
    assert t.state == TrialState.COMPLETE and not list(out.glob("*.tmp*"))
    monkeypatch.undo()
    assert _fake_run(proxy, out, 1, monkeypatch) == 0 and (out / "searched_modules.py").exists()


def test_a_dcp_checkpoint_keeps_a_trials_records(proxy, tmp_path, monkeypatch):
    """One rule with train.py and the sweep: a trial run whose checkpoint is fsdp's .dcp
    directory resumes, so its metrics.jsonl and final.json stay; without one they go."""
    args = _args(proxy, "--out_root", str(tmp_path / "s"))
    monkeypatch.setattr(search, "train_command", lambda *a, **k: [sys.executable, "-c", "pass"])
    for name, ckpt in (("resumes", True), ("fresh", False)):
        d = tmp_path / name
        d.mkdir()
        (d / "metrics.jsonl").write_text('{"iter": 2}\n')
        (d / "final.json").write_text('{"status": "stopped", "iter": 2}')
        if ckpt:
            (d / "ckpt_0000002.dcp").mkdir()
        trial = type("T", (), dict(user_attrs={"out_dir": str(d)}, params={}))
        job = search.launch(trial, args)
        job["proc"].wait()
        job["log"].close()
        assert (d / "metrics.jsonl").exists() == ckpt and (d / "final.json").exists() == ckpt


def test_a_newline_in_a_path_reaches_no_generated_config(proxy, tmp_path):
    """searched_modules.py is a config file train.py runs: the out_root and proxy paths written
    into its comments must be one line each."""
    with pytest.raises(UserError, match="holds a control character .* searched_modules.py"):
        _args(proxy, "--out_root", str(tmp_path / "s\nimport os; os.system('x')"))
    bad = tmp_path / "p\nq" / "proxy.py"
    bad.parent.mkdir()
    bad.write_text(open(proxy).read())
    with pytest.raises(UserError, match="proxy config .* holds a control character"):
        _args(str(bad))


# --- the start point from a sweep reruns the sweep's point; trials log to one wandb group (issue 26, items 6, 7) ---

FAKE_WANDB = r'''
"""A stand-in for wandb (first on PYTHONPATH): wandb.init's arguments land in <dir>/wandb_init.json."""
import json, os


class _Run:
    id = "fake0000"

    def log(self, row, step=None):
        pass

    def finish(self):
        pass


def init(**kw):
    with open(os.path.join(kw["dir"], "wandb_init.json"), "w") as f:
        json.dump(kw, f, default=repr)
    return _Run()
'''


def fake_wandb(tmp_path):
    """A directory to put first on PYTHONPATH: its wandb records what reaches wandb.init."""
    d = tmp_path / "fake_wandb"
    (d / "wandb").mkdir(parents=True)
    (d / "wandb" / "__init__.py").write_text(FAKE_WANDB)
    return str(d)


@pytest.mark.slow
def test_trial_0_from_a_sweep_reruns_its_point_and_logs_to_one_wandb_group(proxy, tmp_path, monkeypatch):
    """A tiny sweep of the proxy (two LRs, seed 0 where the proxy's own seed is 1337), then a
    1-trial search --from_sweep its results: trial 0 runs the best point's seed and its value is
    that row's val_loss to the bit. Both log to wandb (a stand-in records wandb.init): the sweep
    point under the sweep's name as group and its coordinates as run name, the trial under the
    study's name and 't0000 s0'; wandb.config carries m_N, m_L, m_B, m_D and the group table,
    as config.json does."""
    monkeypatch.setenv("PYTHONPATH", fake_wandb(tmp_path))
    sweep_file = tmp_path / "proxy_lr.py"
    sweep_file.write_text(f"base_config = {proxy!r}\nlearning_rate = [0.01, 0.02]\nseed = [0]\n")
    csv_path = tmp_path / "results.csv"
    res = run_script([os.path.join("scripts", "sweep.py"), str(sweep_file), "--out_root", str(tmp_path / "runs"),
                      "--results", str(csv_path), "--threads", "1", "--set", "wandb_log=True"],
                     env={"PYTHONPATH": os.environ["PYTHONPATH"]})
    assert res.returncode == 0, res.stderr
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    best = min(rows, key=lambda r: float(r["val_loss"]))
    point = os.path.join(REPO, best["out_dir"])
    init = json.loads(open(os.path.join(point, "wandb_init.json")).read())
    assert init["group"] == "proxy_lr" and init["name"] == " ".join(os.path.relpath(point, tmp_path / "runs").split(os.sep))
    assert re.fullmatch(r"completedp L2_N32 lr0\.0[12] s0", init["name"])
    records = json.loads(open(os.path.join(point, "config.json")).read())
    derived = {k: records[part][k] for part, keys in (("parameterization", ("m_N", "m_L")),
                                                       ("batch_duration", ("m_B", "m_D"))) for k in keys}
    assert derived == dict(m_N=1.0, m_L=1.0, m_B=1.0, m_D=1.0)
    groups = records["groups"]  # the per-group table, a column per field
    assert set(groups["role"]) >= {"embedding", "hidden", "unembedding"}
    assert {"params", "init_std", "lr", "weight_decay", "eps", "betas", "modules"} <= set(groups)
    assert all(len(v) == len(groups["role"]) for v in groups.values())
    assert {k: init["config"][k] for k in derived} == derived
    assert init["config"]["groups"] == groups and init["config"]["parameterization"] == "completedp"

    out = tmp_path / "s"
    argv = [proxy, "--from_sweep", str(csv_path), "--trials", "1", "--space", "lr:embedding", "--threads", "1",
            "--out_root", str(out), "--set", "wandb_log=True"]
    assert search.main(argv) == 0
    args = _args(*argv)
    assert args.lr0 == float(best["learning_rate"]) and args.seeds == [0]
    (t0,) = optuna.load_study(study_name="proxy", storage=search.make_storage(args)).get_trials()
    assert t0.state == TrialState.COMPLETE and t0.value == float(best["val_loss"])  # to the bit
    run_dir = os.path.join(t0.user_attrs["out_dir"], "s0")
    init = json.loads(open(os.path.join(run_dir, "wandb_init.json")).read())
    assert init["group"] == "proxy" and init["name"] == "t0000 s0"
    assert json.loads(open(os.path.join(run_dir, "config.json")).read())["config"]["seed"] == 0


def test_documented_from_sweep_example_works_and_a_mismatch_names_the_way(capsys):
    """search.py's first docstring example starts from the committed batch_duration sweep (its
    completedp base arm is config/module_transfer/proxy.py's recipe): the best LR there, its
    seeds. The default proxy against the depth sweep names the settings that differ and the
    proxy config the sweep's rows ran."""
    example = next(ln for ln in search.__doc__.splitlines() if "--from_sweep" in ln).split()
    assert example[:2] == ["python", "scripts/search.py"]
    args = _args(*[os.path.join(REPO, a) if a.endswith((".py", ".csv")) else a for a in example[2:]])
    assert args.lr0 == 2 ** -6 and args.std0 is None and args.seeds == [0, 1]
    assert "every setting" in args.start_note
    with pytest.raises(UserError) as e:
        _args(os.path.join(REPO, "config", "search_proxy.py"), "--from_sweep",
              os.path.join(REPO, "experiments", "depth_transfer_b4", "results.csv"))
    text = str(e.value)
    assert "\n" not in text and "parameterization sp, mup, completep there, 'completedp' in the proxy" in text
    assert "config/transfer_base.py" in text  # the proxy config its completep rows ran


def test_a_sweep_run_with_another_recipe_is_no_start_point(proxy, tmp_path):
    """A row equal to the proxy in every column but run with another setting outside its columns
    (its run's config.json: tied embeddings) is no start point: trial 0 would not be that run."""
    defaults, annotations = search.train_defaults()
    config = search.parse(defaults, [proxy], annotations)[0]
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sweep", "parameterization", "n_layer", "n_embd", "learning_rate", "init_std", "seed", "status",
                    "val_loss", "out_dir"])
        for i, tied in enumerate((True, False)):
            run = tmp_path / f"run{i}"
            run.mkdir()
            (run / "config.json").write_text(json.dumps({"config": dict(config, tie_embeddings=tied, seed=3)}))
            w.writerow(["s", "completedp", 2, 32, 0.01 * (i + 1), 0.02, 3, "done", 2.0 - i * 0.1 + (0.5 if tied else 0),
                        str(run)])
    args = _args(proxy, "--from_sweep", str(tmp_path / "results.csv"))
    assert args.lr0 == 0.02 and args.seeds == [3]  # the tied run's row is not a candidate
    (tmp_path / "run1" / "config.json").write_text(json.dumps({"config": dict(config, tie_embeddings=True)}))
    with pytest.raises(UserError, match="differ in tie_embeddings True there, False in the proxy"):
        _args(proxy, "--from_sweep", str(tmp_path / "results.csv"))


def test_trial_commands_name_their_wandb_group_and_run_only_with_wandb(proxy, tmp_path):
    out = tmp_path / "s"
    args = _args(proxy, "--out_root", str(out), "--set", "wandb_log=True")
    cmd = search.train_command(args, {"embedding.lr": 0.0}, str(out / "trials" / "t0003" / "s1"), 1)
    assert "--wandb_group='proxy'" in cmd and "--wandb_run_name='t0003 s1'" in cmd
    cmd = search.train_command(args, {}, str(out / "trials" / "t0004"))
    assert "--wandb_run_name='t0004'" in cmd
    plain = search.train_command(_args(proxy, "--out_root", str(out)), {}, str(out / "trials" / "t0003"))
    assert not any(a.startswith("--wandb") for a in plain)  # without wandb, the plain train.py command


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
def test_a_generation_of_trials_runs_as_one_pack(proxy, tmp_path):
    """--pack 3 with --seeds 0,1: the three trials of a generation (asked together: drawn from one
    sampler state) and both seeds train as one pack.py process of six members; each trial's value
    is the mean of its runs' final val_loss, each run its own out_dir with its own multipliers."""
    out = tmp_path / "s"
    r = _search(proxy, out, "--trials", "3", "--pack", "3", "--seeds", "0,1", "--space", "lr:embedding,wd:attn_out",
                "--threads", "1", "--seed", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3/3" in r.stdout
    study = optuna.load_study(study_name="proxy", storage=search.make_storage(_args(proxy, "--out_root", str(out))))
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 3
    specs = sorted((out / "packs").glob("*.json"))
    assert len(specs) == 1 and len(json.loads(specs[0].read_text())["members"]) == 6
    for t in trials:
        vals = []
        for s in (0, 1):
            d = os.path.join(t.user_attrs["out_dir"], f"s{s}")
            with open(os.path.join(d, "config.json")) as f:
                c = json.load(f)["config"]
            assert c["module_hparams"] == mults(t.params) and c["seed"] == s
            with open(os.path.join(d, "provenance.json")) as f:
                assert json.load(f)["packed"]["members"] == 6
            with open(os.path.join(d, "final.json")) as f:
                vals.append(json.load(f)["val_loss"])
        assert t.value == pytest.approx(sum(vals) / 2, rel=1e-12)
    # (each member equals its point alone: tests/test_pack.py, tests/test_pack_records.py)


def test_a_proxy_without_weight_decay_searches_no_wd_multipliers(proxy, tmp_path, capsys):
    """weight_decay = 0 (the CompleteP paper's settings): a wd multiplier multiplies 0, a dimension
    that does nothing; the default space leaves them out, and naming one is one error line."""
    args = _args(proxy, "--set", "weight_decay=0.0", "--out_root", str(tmp_path / "s"))
    with pytest.raises(UserError, match="weight_decay is 0, so weight-decay multipliers change nothing"):
        search.build_space("lr,wd", args.config, 3)
    assert search.main([proxy, "--set", "weight_decay=0.0", "--out_root", str(tmp_path / "s"), "--dry_run"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("space:"))
    assert ".wd" not in line and "embedding.lr" in line and "embedding.init_std" in line and "depth.lr.0" in line
    assert ".wd" in next(ln for ln in (search.main([proxy, "--out_root", str(tmp_path / "t"), "--dry_run"]),
                                       capsys.readouterr().out)[1].splitlines() if ln.startswith("space:"))

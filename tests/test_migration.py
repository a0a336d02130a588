"""The migration guard: every sweep file, wherever it lives now, resolves to the train.py settings
it resolved to before the sweep files moved from config/sweeps/ into their study folders under
experiments/ (issue 27). The results CSVs record coordinates, not the fixed settings, so this is
the proof that a committed result still means what its study says.

tests/data/sweep_settings.json.gz holds, for each sweep file by its old path, the out_root its
points run under and every point's resolved train.py settings (base configs, fixed settings and
axis values through configurator.parse, as scripts/sweep.py resolves them), minus train.py's
defaults and minus what only names a place (out_dir, results, wandb names). It was written from
the tree before the move (commit 466cbad) by snapshot() below:
    python -c "import sys; sys.path.insert(0, 'tests'); import test_migration as t; t.write_snapshot()"
A sweep file whose settings change on purpose is a new sweep: give it a new file and name."""
import csv
import gzip
import importlib.util
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAPSHOT = os.path.join(REPO, "tests", "data", "sweep_settings.json.gz")
PLACE = ("out_dir", "results", "wandb_run_name")  # name where a run goes, not what it computes

# old path (before issue 27) -> where the sweep file lives now
MOVED = {
    "config/sweeps/batch_duration_paper.py": "experiments/batch_duration/batch_duration_paper.py",
    "config/sweeps/depth_init_std_paper.py": "experiments/depth_init_std/depth_init_std_paper.py",
    "config/sweeps/depth_init_std_paper_high.py": "experiments/depth_init_std/depth_init_std_paper_high.py",
    "config/sweeps/depth_lr_paper_init.py": "experiments/depth_transfer/depth_lr_paper_init.py",
    "config/sweeps/depth_lr_paper_init_fine.py": "experiments/depth_transfer/depth_lr_paper_init_fine.py",
    "config/sweeps/depth_lr_paper_init_32.py": "experiments/depth_transfer/depth_lr_paper_init_32.py",
    "config/sweeps/depth_lr.py": "experiments/depth_transfer_b4/depth_lr.py",
    "config/sweeps/depth_lr_b16.py": "experiments/depth_transfer_b16/depth_lr_b16.py",
    "config/sweeps/depth_lr_paper.py": "experiments/depth_transfer_init0.02/depth_lr_paper.py",
    "config/sweeps/depth_lr_paper_fine.py": "experiments/depth_transfer_init0.02/depth_lr_paper_fine.py",
    "config/sweeps/depth_lr_paper_attn.py": "experiments/depth_transfer_init0.02/depth_lr_paper_attn.py",
    "config/sweeps/depth_lr_paper_warmup.py": "experiments/depth_transfer_init0.02/depth_lr_paper_warmup.py",
    "config/sweeps/module_transfer.py": "experiments/module_transfer/module_transfer.py",
    "config/sweeps/module_transfer_isolate.py": "experiments/module_transfer/module_transfer_isolate.py",
    "config/sweeps/shapes_width_length.py": "experiments/shapes/shapes_width_length.py",
    "config/sweeps/width_lr_paper_init.py": "experiments/width_transfer/width_lr_paper_init.py",
    "config/sweeps/width_lr_paper_init_512.py": "experiments/width_transfer/width_lr_paper_init_512.py",
    "config/sweeps/width_init_std_paper_init.py": "experiments/width_transfer/width_init_std_paper_init.py",
    "config/sweeps/width_init_std_paper_init_512.py": "experiments/width_transfer/width_init_std_paper_init_512.py",
    "config/sweeps/width_sp_joint_paper_init.py": "experiments/width_transfer/width_sp_joint_paper_init.py",
    "config/sweeps/width_sp_joint_paper_init_512.py": "experiments/width_transfer/width_sp_joint_paper_init_512.py",
    "config/sweeps/width_lr_paper_h200.py": "experiments/width_transfer_h200/width_lr_paper_h200.py",
    # never run: experiments/planned/README.md
    "config/sweeps/depth_lr_gpu.py": "experiments/planned/depth_lr_gpu/depth_lr_gpu.py",
    "config/sweeps/depth_init_std_gpu.py": "experiments/planned/depth_init_std_gpu/depth_init_std_gpu.py",
    "config/sweeps/width_lr_gpu.py": "experiments/planned/width_lr_gpu/width_lr_gpu.py",
    "config/sweeps/gpt2_proxy_lr.py": "experiments/planned/gpt2_proxy_lr/gpt2_proxy_lr.py",
    "config/sweeps/width_init_std_paper_h200.py":
        "experiments/planned/width_init_std_paper_h200/width_init_std_paper_h200.py",
    "config/sweeps/depth_init_std.py": "experiments/planned/depth_init_std/depth_init_std.py",
    "config/sweeps/width_lr.py": "experiments/planned/width_lr/width_lr.py",
    "config/sweeps/width_lr_paper.py": "experiments/planned/width_lr_paper/width_lr_paper.py",
    "config/sweeps/width_output_mult.py": "experiments/planned/width_output_mult/width_output_mult.py",
}


def _sweep_module():
    spec = importlib.util.spec_from_file_location("sweep_for_migration", os.path.join(REPO, "scripts", "sweep.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def resolve(path, sweep=None, train=None):
    """(out_root relative to the repo, [each point's settings that differ from train.py's defaults,
    places left out]) of one sweep file, as scripts/sweep.py expands it; `train`: train.py's
    (defaults, annotations), read once for many files."""
    sweep = sweep or _sweep_module()
    defaults, annotations = train or sweep.train_defaults()
    settings, axes, fixed = sweep.load_sweep(os.path.join(REPO, path), defaults)
    out_root = settings.get("out_root") or os.path.join("runs", settings["name"])
    points = sweep.expand(settings, axes, fixed, {}, defaults, annotations, os.path.join(REPO, out_root))
    rows = [{k: v for k, v in p["config"].items() if k not in PLACE and (k not in defaults or defaults[k] != v)}
            for p in points]
    dirs = [os.path.relpath(p["out_dir"], REPO) for p in points]
    return dict(out_root=out_root, points=json.loads(json.dumps(rows)), out_dirs=dirs), settings


def snapshot(paths):
    sweep = _sweep_module()
    train = sweep.train_defaults()
    return {p: resolve(p, sweep, train)[0] for p in paths}


def write_snapshot():
    """Rewrite the snapshot from the sweep files at their old paths (only before the move)."""
    data = json.dumps(snapshot(sorted(MOVED)), sort_keys=True, separators=(",", ":")).encode()
    os.makedirs(os.path.dirname(SNAPSHOT), exist_ok=True)
    with open(SNAPSHOT, "wb") as f:
        f.write(gzip.compress(data, mtime=0))


def _load():
    with gzip.open(SNAPSHOT, "rt") as f:
        return json.load(f)


def test_every_sweep_file_is_guarded():
    """Every sweep file of the snapshot is in experiments/ (a sweep added since has no "before"),
    and none is left in config/."""
    here = {os.path.relpath(os.path.join(d, f), REPO) for d, _, fs in os.walk(os.path.join(REPO, "experiments"))
            for f in fs if f.endswith(".py") and f != "searched_modules.py"}
    assert set(MOVED.values()) <= here, sorted(set(MOVED.values()) - here)
    assert set(_load()) == set(MOVED)
    assert not os.path.isdir(os.path.join(REPO, "config", "sweeps"))


def test_moved_sweeps_resolve_to_the_same_settings():
    """Same points in the same order, the same settings, the same out_root and out_dirs, results
    written into the sweep file's own study folder, and every committed row of those results (with
    its commit) one of the points: a restarted sweep skips the committed runs."""
    sweep = _sweep_module()
    train = sweep.train_defaults()
    old = _load()
    written = {}
    for before, now in MOVED.items():
        got, settings = resolve(now, sweep, train)
        want = old[before]
        assert got["out_root"] == want["out_root"], now
        assert len(got["points"]) == len(want["points"]), now
        for i, (g, w) in enumerate(zip(got["points"], want["points"])):
            if g != w:
                diff = {k: (w.get(k), g.get(k)) for k in set(g) | set(w) if g.get(k) != w.get(k)}
                pytest.fail(f"{now} point {i}: settings changed (before, now): {diff}")
        assert got["out_dirs"] == want["out_dirs"], now
        assert os.path.dirname(settings.get("results", "")) == os.path.dirname(now), now
        written.setdefault(settings["results"], set()).update(got["out_dirs"])
    for results, dirs in written.items():  # every committed row is a point of the sweeps that write it
        if os.path.exists(os.path.join(REPO, results)):
            with open(os.path.join(REPO, results), newline="") as f:
                rows = list(csv.DictReader(f))
            assert rows and {r["out_dir"] for r in rows} <= dirs, results
            assert all(r.get("commit") for r in rows), f"{results}: a row without its commit"

"""scripts/plot_transfer.py: the optimum/drift fit on synthetic results with a known answer
(parabolas whose centres are set here), seed uncertainty, transfer cost, joint grids read from
several files, --where (results.py's one grammar), and a figure title that says where an
optimum is only a bound (it sits at the grid's edge). CPU, offline, in-process."""
import csv
import math
import os
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))
import plot_transfer  # noqa: E402
import results  # noqa: E402  (the results file's owner: columns, reading, --where)
from runs import UserError  # noqa: E402


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- a known optimum ---

def _synthetic(path, centres, grid=range(-12, -3), diverge=()):
    """loss = (log2 lr - c(depth))^2 + 2, two seeds at +-0.01; `diverge`: (param, depth, log2 lr)."""
    header = results.columns({"n_layer": None, "learning_rate": None})
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
    rows = results.load(str(path))
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
    worse = {b: c for b, _, _, c, _ in plot_transfer.transfer_cost(results.load(str(path)), "learning_rate",
                                                                   "n_layer", "val_loss")["sp"]}
    assert math.isinf(worse[8]) and math.isfinite(worse[16])
    assert os.path.getsize(tmp_path / "out.png") > 10_000


def test_drift_seed_uncertainty_per_seed_and_bootstrap(tmp_path):
    """Each seed's loss is an exact parabola with its own drift (-0.2, -0.6, -0.4): the per-seed
    slopes come out exactly; a resample's mean curve has the mean of its seeds' centres, so
    every bootstrap slope lies between the extreme seeds and the spread is not zero."""
    slopes = {0: -0.2, 1: -0.6, 2: -0.4}
    header = results.columns({"n_layer": None, "learning_rate": None})
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
    rows = results.load(str(path))
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
    rows = results.load(str(path))
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
    with pytest.raises(UserError, match="at least 1"):
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
    with pytest.raises(UserError, match="does not exist"):
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


def _grid_rows(path, centre, inits, lrs, seeds=(0, 1), sweep_name="g", shift=0.0):
    """SP at one width, loss = (log2 lr - centre(log2 init))^2 + 2 + seed/100 (+ shift)."""
    header = results.columns({"init_std": None, "learning_rate": None})
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
    rows = results.load_all([str(a), str(b)])
    assert len(rows) == 4 * 8 * 2  # the 16 rows of 2^-4 in b dropped as repeats
    # a column only one file has (another key its sweep file set) does not hide those repeats
    extra = list(csv.DictReader(open(b)))
    with open(tmp_path / "b2.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(extra[0]) + ["warmup_frac"])
        w.writeheader()
        w.writerows(dict(r, warmup_frac="0.1") for r in extra)
    assert len(results.load_all([str(a), str(tmp_path / "b2.csv")])) == 4 * 8 * 2
    res = plot_transfer.analyse(plot_transfer.aggregate(rows, "learning_rate", "init_std", "val_loss"))
    for init, seeds, fit in res["sp"]["rows"]:
        assert seeds == 2 and fit["log2_opt"] == pytest.approx(centre(math.log2(init)), abs=1e-6)
    assert res["sp"]["slope"] == pytest.approx(-0.5, abs=1e-6)
    text = out.with_suffix(".md").read_text()
    assert f"`{a} + {b}`" in text and "| sp | 0.125 (x8) | 2 |" in text
    # with --by init_std the x is the other one that varies; with neither, which is which is asked
    assert plot_transfer.main([str(a), str(b), "--by", "init_std", "--out", str(tmp_path / "auto")]) == 0
    assert "# Optimal learning_rate per (init_std, parameterization)" in (tmp_path / "auto.md").read_text()
    with pytest.raises(UserError, match="cannot tell the hyperparameter"):
        plot_transfer.main([str(a), "--out", str(out)])
    with pytest.raises(UserError, match="both init_std"):
        plot_transfer.main([str(a), "--x", "init_std", "--by", "init_std", "--out", str(out)])
    # one file's loss off by 0.001 at the shared points: not the same experiment
    _grid_rows(b, centre, inits=(-3, -4), lrs=range(-13, -5), sweep_name="lr", shift=0.001)
    with pytest.raises(UserError, match="different settings outside their columns"):
        plot_transfer.main([str(a), str(b), "--by", "init_std", "--out", str(out)])
    # curves by width with the init varying too: the rows of one width would average two inits
    with pytest.raises(UserError, match="init_std also varies"):
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
    header = results.columns({"learning_rate": None, "points": [{"global_batch_size": 0, "max_tokens": 0}]})
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
    with pytest.raises(UserError, match="also varies"):
        plot_transfer.main([str(path), "--by", "global_batch_size", "--out", str(tmp_path / "mixed")])
    assert plot_transfer.main([str(path), "--by", "global_batch_size", "--where", "max_tokens=1024",
                               "--out", str(tmp_path / "B")]) == 0
    assert "| sp | 16 (x4) | 2 |" in (tmp_path / "B.md").read_text()
    assert plot_transfer.main([str(path), "--by", "max_tokens", "--where", "global_batch_size=4",
                               "--out", str(tmp_path / "D")]) == 0
    rows = results.load(str(path))
    for by, keep, slope in (("global_batch_size", ("max_tokens", "1024"), -0.5), ("max_tokens", ("global_batch_size", "4"), 0.25)):
        arm = [r for r in rows if r[keep[0]] == keep[1]]
        res = plot_transfer.analyse(plot_transfer.aggregate(arm, "learning_rate", by, "val_loss"))
        assert res["sp"]["slope"] == pytest.approx(slope, abs=1e-6)
        assert res["completedp"]["slope"] == pytest.approx(0.0, abs=1e-6)
        assert len(res["sp"]["rows"]) == (3 if by == "global_batch_size" else 2)
    with pytest.raises(UserError, match="no finished run"):
        plot_transfer.main([str(path), "--by", "max_tokens", "--where", "global_batch_size=5"])
    # comparisons drop rows: B >= 8 leaves 8 and 16, and 8 becomes the drift's base (x1)
    assert plot_transfer.main([str(path), "--by", "global_batch_size", "--where", "max_tokens=1024",
                               "--where", "global_batch_size>=8", "--where", "seed!=1",
                               "--out", str(tmp_path / "B8")]) == 0
    text = (tmp_path / "B8.md").read_text()
    assert "| sp | 8 (x1) | 1 |" in text and "| sp | 16 (x2) | 1 |" in text and "(x4)" not in text
    with pytest.raises(UserError, match="needs a number"):
        plot_transfer.main([str(path), "--where", "global_batch_size>=big"])
    with pytest.raises(UserError, match="KEY=VALUE"):
        plot_transfer.main([str(path), "--where", "global_batch_size~4"])


def test_plot_where_takes_powers_of_two(tmp_path):
    """A merged octave + half-octave sweep read on its octave grid alone: --where
    'learning_rate!=2^-6.5' (the run directories' notation) drops exactly the half-octave rows,
    whose losses here would pull the 4-layer optimum up by half an octave."""
    header = results.columns({"learning_rate": None, "n_layer": None})
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
    assert results.matches(repr(0.0625), ">=", "2^-4") and not results.matches(repr(0.0625), ">=", "2^-3.5")
    with pytest.raises(UserError, match="needs a number"):
        plot_transfer.main([str(path), "--where", "learning_rate>=2^x"])


def test_a_figure_whose_optimum_sits_at_a_grid_edge_says_so_in_its_title(tmp_path, monkeypatch):
    """An optimum at the grid's edge (or next to a diverged point) is a bound, not a fit: the
    figure's title names those curves, also under a --title of one's own; a figure whose optima
    are all inside their grids says nothing of edges."""
    path = tmp_path / "results.csv"
    # 8-layer sp: centre below the grid (-12..-4), best point -12: edge-low; 8-layer completep:
    # best point -7 with -6 diverged: next to a diverged point
    _synthetic(path, {("sp", 2): -7.0, ("sp", 8): -12.6, ("completep", 2): -6.6, ("completep", 8): -6.6},
               diverge={("completep", 8, -6)})
    titles, real = [], plot_transfer.plot
    monkeypatch.setattr(plot_transfer, "plot", lambda *a, **k: titles.append(real(*a, **k)))
    assert plot_transfer.main([str(path), "--title", "mine", "--out", str(tmp_path / "edge")]) == 0
    assert titles[-1].startswith("mine (optimum at grid edge: a bound, for sp n_layer=8 (low); "
                                 "completep n_layer=8 (next to a diverged point))")
    table = (tmp_path / "edge.md").read_text()
    assert "| sp | 8 (x4) | 2 |" in table and "edge-low" in table and "next-to-diverged" in table
    assert os.path.getsize(tmp_path / "edge.png") > 10_000
    _synthetic(path, {("sp", 2): -7.0, ("sp", 8): -8.0})
    assert plot_transfer.main([str(path), "--out", str(tmp_path / "inside")]) == 0
    assert "grid edge" not in titles[-1] and titles[-1].endswith("(star: fitted optimum, x: diverged)")

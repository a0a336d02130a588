"""scripts/compare_runs.py: groups of a sweep's done rows compared seed by seed (means, spread,
paired differences computed here from the inputs), curves read from metrics.jsonl, one-line
errors. CPU, offline."""
import csv
import json
import os

import pytest

from conftest import run_script

LOSSES = {"{}": {0: 2.0, 1: 2.2, 2: 2.1}, '{"mlp_out": {"lr": 0.5}}': {0: 1.9, 1: 2.15, 3: 2.5}}


@pytest.fixture()
def results(tmp_path):
    """Two groups by module_hparams, seeds 0-2 and 0,1,3, plus a diverged row that must be left out."""
    rows = []
    for g, (mh, seeds) in enumerate(LOSSES.items()):
        for s, loss in seeds.items():
            out = f"runs/g{g}/s{s}"
            os.makedirs(tmp_path / out)
            with open(tmp_path / out / "metrics.jsonl", "w") as f:
                f.write(json.dumps({"iter": 0, "val_loss": 4.0, "train_loss": 4.0, "tokens": 0}) + "\n")
                for i in (1, 2, 3):
                    f.write(json.dumps({"iter": i, "loss": 3.0 - i * 0.1, "tokens": 100 * i}) + "\n")
                f.write(json.dumps({"iter": 3, "val_loss": loss, "train_loss": loss, "tokens": 300}) + "\n")
            rows.append(dict(module_hparams=mh, seed=s, status="done", val_loss=loss, out_dir=out))
    rows.append(dict(module_hparams="{}", seed=5, status="diverged", val_loss="inf", out_dir="runs/x"))
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _cells(md, first):
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_table_and_figure(results, tmp_path):
    out = tmp_path / "cmp" / "target"
    res = run_script(["scripts/compare_runs.py", str(results), "--names", "global,searched",
                      "--root", str(tmp_path), "--out", str(out)])
    assert res.returncode == 0, res.stderr
    md = (tmp_path / "cmp" / "target.md").read_text()
    assert os.path.getsize(tmp_path / "cmp" / "target.png") > 0
    g = _cells(md, "global")
    assert g[1] == "3" and float(g[2]) == pytest.approx((2.0 + 2.2 + 2.1) / 3, abs=6e-5)
    assert float(g[3]) == pytest.approx(0.1, abs=6e-5)  # sample sd of 2.0, 2.2, 2.1
    s = [c for c in md.splitlines() if c.startswith("| searched |")]
    assert len(s) == 2  # the group row and the paired row
    paired = [c.strip() for c in s[1].strip("|").split("|")]
    assert paired[1] == "2"  # seeds 0 and 1 only: seed 3 has no partner, seed 5 diverged
    assert float(paired[2]) == pytest.approx(((1.9 - 2.0) + (2.15 - 2.2)) / 2, abs=6e-5)
    assert "s3" not in paired[5] and "s5" not in md


@pytest.mark.parametrize("extra, message", [
    (["--by", "nope"], "has no column 'nope'"),
    (["--names", "a,b,c"], "gives 3 names for 2 groups"),
    (["--root", "/nonexistent"], "give --root"),
    (["--where", "nope=1"], "KEY=VALUE (or !=, >=, <=) with KEY a column"),  # plot_transfer's grammar
    (["--where", "seed>=x"], "needs a number"),
    (["--where", "seed=3"], "1 group(s) of done rows"),
])
def test_bad_input_is_one_line(results, tmp_path, extra, message):
    res = run_script(["scripts/compare_runs.py", str(results), "--out", str(tmp_path / "o"),
                      "--root", str(tmp_path), *extra])
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1 and message in res.stderr, res.stderr


def test_where_keeps_one_cell(results, tmp_path):
    """--where seed=0 leaves one run per group: the paired difference is that seed's."""
    out = tmp_path / "w"
    res = run_script(["scripts/compare_runs.py", str(results), "--names", "global,searched", "--where", "seed=0",
                      "--root", str(tmp_path), "--out", str(out)])
    assert res.returncode == 0, res.stderr
    paired = [c.strip() for c in [ln for ln in (tmp_path / "w.md").read_text().splitlines()
                                  if ln.startswith("| searched |")][1].strip("|").split("|")]
    assert paired[1] == "1" and float(paired[2]) == pytest.approx(1.9 - 2.0, abs=6e-5)


def test_group_order_is_by_value_not_by_row_order(results, tmp_path):
    """Rows in the order runs finished: the searched set's first. `{}` is still the baseline."""
    text = results.read_text().splitlines()
    results.write_text("\n".join([text[0]] + text[1:][::-1]) + "\n")
    res = run_script(["scripts/compare_runs.py", str(results), "--names", "global,searched",
                      "--root", str(tmp_path), "--out", str(tmp_path / "r")])
    assert res.returncode == 0, res.stderr
    g = _cells((tmp_path / "r.md").read_text(), "global")
    assert float(g[2]) == pytest.approx((2.0 + 2.2 + 2.1) / 3, abs=6e-5)

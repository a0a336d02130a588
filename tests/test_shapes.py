"""scripts/shapes.py: shapes at a parameter budget, FLOPs, the saving read at equal loss, and a
tiny study end to end through scripts/sweep.py's machinery (grid.py)."""
import argparse
import importlib.util
import math
import os

import pytest

from conftest import REPO, run_script
from model import GPT, GPTConfig

spec = importlib.util.spec_from_file_location("shapes", os.path.join(REPO, "scripts", "shapes.py"))
sh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sh)
from runs import train_defaults  # noqa: E402


def built_count(cfg):
    """The non-embedding parameters of the model GPT builds for cfg (not wte, wpe, lm_head)."""
    return sum(t.numel() for n, t in GPT(cfg).named_parameters()
               if not n.startswith(("transformer.wte", "transformer.wpe", "lm_head")))


@pytest.mark.parametrize("L,N,bias", [(2, 64, True), (5, 24, True), (3, 40, False)])
def test_parameter_count_is_the_built_models(L, N, bias):
    counted = built_count(GPTConfig(n_layer=L, n_embd=N, n_head=N // 8, bias=bias, vocab_size=50, block_size=16))
    assert sh.nonembedding_params(L, N, bias) == counted


# the modern block's options one at a time and together (config/modern.py), and a stated mlp_ratio
BLOCKS = [dict(norm="rmsnorm"), dict(mlp="swiglu"), dict(qk_norm=True, norm="rmsnorm"),
          dict(mlp="gelu", mlp_ratio=3.0), dict(mlp="swiglu", mlp_ratio=2.5, bias=True),
          dict(norm="rmsnorm", qk_norm=True, pos="rope", mlp="swiglu", bias=False),
          dict(norm="layernorm", qk_norm=True, pos="rope", mlp="swiglu", bias=True)]


@pytest.mark.parametrize("opts", BLOCKS)
@pytest.mark.parametrize("L,N,H", [(2, 64, 2), (3, 40, 5)])
def test_parameter_count_is_the_built_models_for_either_block(opts, L, N, H):
    """RMSNorm has no bias, SwiGLU three matrices of ceil(8/3 N) (the count is off by N^2-sized
    terms if the hidden width or the third matrix is miscounted), QK-norm one gain per head size."""
    cfg = GPTConfig(n_layer=L, n_embd=N, n_head=H, vocab_size=50, block_size=16, **opts)
    counted = built_count(cfg)
    block = {k: getattr(cfg, k) for k in sh.BLOCK_KEYS}
    assert sh.nonembedding_params(L, N, head_size=N // H, **block) == counted
    assert sh.nonembedding_params(L, N, head_size=N // H, **block) != sh.nonembedding_params(L, N)


def test_a_modern_block_study_is_sized_by_its_own_count(tmp_path):
    """--base_config config/modern.py: the shapes and each point's tokens are the modern block's
    count (analyze reads the same --base_config), not the GPT-2 block's."""
    a = argparse.Namespace(lr="completep=2**-6", params=["completep"],
                           base_config=",".join([os.path.join(REPO, "config", "modern.py"), str(tmp_path / "p.py")]),
                           seeds=[0], budgets=[20000], depths=[2, 4], head_size=8, tpp=3, out_root=str(tmp_path))
    (tmp_path / "p.py").write_text("block_size = 16\n")
    defaults, annotations = train_defaults()
    _, _, points, block = sh.build_points(a, defaults, annotations)
    assert block["mlp"] == "swiglu" and block["qk_norm"] and block["norm"] == "rmsnorm" and not block["bias"]
    for p in points:
        c = p["config"]
        counted = built_count(GPTConfig(**{k: c[k] for k in ("n_layer", "n_embd", "n_head", "bias", "norm", "qk_norm",
                                                             "pos", "mlp", "mlp_ratio")}, vocab_size=50, block_size=16))
        assert c["max_tokens"] == 3 * counted
    assert [p["config"]["n_embd"] for p in points] == [N for _, N, _, _ in sh.shapes(20000, [2, 4], 8, block)]
    gpt2 = [3 * sh.nonembedding_params(p["config"]["n_layer"], p["config"]["n_embd"]) for p in points]
    assert all(p["config"]["max_tokens"] != t for p, t in zip(points, gpt2))  # the GPT-2 count would differ


def test_shapes_are_the_closest_widths_to_the_budget():
    for L, N, H, P in sh.shapes(100_000, [2, 4, 8, 16, 32], 8):
        assert N == 8 * H and P == sh.nonembedding_params(L, N)
        for other in (N - 8, N + 8):  # no neighbouring width is closer
            if other > 0:
                assert abs(sh.nonembedding_params(L, other) - 100_000) >= abs(P - 100_000)
    ratios = [N / L for L, N, H, P in sh.shapes(100_000, [2, 32], 8)]
    assert ratios[0] / ratios[1] >= 16  # the default depths span at least 16x in N:L


def test_flop_saving_read_at_equal_loss():
    # completep's loss falls by 0.1 per e-fold of FLOPs: reaching mup's loss 2.0 from (F=e^10,
    # 2.05) takes F = e^10.5, against mup's e^11: a saving of 1 - e^-0.5
    agg = {"mup": [(0, 8, 0, 0, math.exp(10), 2.2, 1), (0, 8, 0, 0, math.exp(11), 2.0, 1)],
           "completep": [(0, 8, 0, 0, math.exp(10), 2.05, 1), (0, 8, 0, 0, math.exp(11), 1.95, 1)]}
    (L, target, closs, saving, note), = sh.flop_savings(agg)
    assert L == 8 and target == 2.0 and closs == 1.95 and note == ""
    assert saving == pytest.approx(1 - math.exp(-0.5))


def _row(p, budget, L, N, seed, loss, tokens):
    return {"parameterization": p, "n_layer": str(L), "n_embd": str(N), "seed": str(seed), "tokens": str(tokens),
            "status": "done" if math.isfinite(loss) else "diverged", "val_loss": str(loss),
            "out_dir": f"runs/shapes/P{budget}/{p}/L{L}_N{N}/s{seed}"}


def test_completep_paired_with_mup_and_sp_by_seed():
    rows = [_row("mup", 1000, 4, 16, s, loss, 100) for s, loss in ((0, 2.0), (1, 2.2), (2, 2.4))]
    rows += [_row("completep", 1000, 4, 16, s, loss, 100) for s, loss in ((0, 1.9), (1, 2.0), (2, 2.4))]
    rows += [_row("sp", 1000, 4, 16, s, loss, 100) for s, loss in ((0, 1.8), (1, math.inf))]
    (b, L, N, q, mean, se, n), (*_, q2, mean2, se2, n2) = sh.paired_differences(rows)
    assert (b, L, N, q, n) == (1000, 4, 16, "mup", 3)
    # differences -0.1, -0.2, 0.0: mean -0.1, sd 0.1, se 0.1 / sqrt(3)
    assert mean == pytest.approx(-0.1) and se == pytest.approx(0.1 / math.sqrt(3))
    # sp: seed 1 diverged and seed 2 did not run, so seed 0 alone (+0.1), no standard error
    assert (q2, n2) == ("sp", 1) and mean2 == pytest.approx(0.1) and math.isnan(se2)


def test_flop_saving_read_per_seed_over_the_seeds_with_every_budget():
    (L, Na, Pa), (_, Nb, Pb) = [(L, N, P) for L, N, H, P in sh.shapes(1000, [4], 8) + sh.shapes(4000, [4], 8)]
    fa, fb = [(6 * P + 12 * L * 16 * N) * 20 * P for N, P in ((Na, Pa), (Nb, Pb))]  # block 16, 20 tokens a param
    rows = []
    # seed 0: completep 2.05 -> 1.95 against mup's 2.0 at the larger budget: halfway in log FLOPs
    # seed 1: completep 2.10 -> 2.00 against mup's 2.025: three quarters of the way
    for s, (c0, c1, m1) in enumerate([(2.05, 1.95, 2.0), (2.10, 2.00, 2.025)]):
        rows += [_row("completep", 1000, L, Na, s, c0, 20 * Pa), _row("completep", 4000, L, Nb, s, c1, 20 * Pb),
                 _row("mup", 1000, L, Na, s, 2.3, 20 * Pa), _row("mup", 4000, L, Nb, s, m1, 20 * Pb)]
    # seed 2 ran mup at the small budget only: its own "largest budget" would be another target
    rows += [_row("completep", 1000, L, Na, 2, 2.2, 20 * Pa), _row("completep", 4000, L, Nb, 2, 2.0, 20 * Pb),
             _row("mup", 1000, L, Na, 2, 2.1, 20 * Pa)]
    expected = [1 - (fa / fb) ** 0.5, 1 - (fa / fb) ** 0.25]
    mean, se, n = sh.seed_savings(rows, 16)[L]
    assert n == 2 and mean == pytest.approx(sum(expected) / 2)
    assert se == pytest.approx(abs(expected[0] - expected[1]) / 2)


def test_nominal_budget_from_the_points_folder():
    assert sh.nominal_budget({"out_dir": "runs/shapes/P50000/mup/L2_N48/base/s0", "n_layer": "2", "n_embd": "48"}) == 50000
    row = {"out_dir": "elsewhere/mup/L2_N48/s0", "n_layer": "2", "n_embd": "48"}
    assert sh.nominal_budget(row) == 2 * (12 * 48 * 48 + 13 * 48) + 2 * 48  # its own count


def test_points_run_seed_by_seed(tmp_path):
    base = tmp_path / "proxy.py"
    base.write_text("block_size = 16\n")
    a = argparse.Namespace(lr="mup=2**-6,completep=2**-6", params=["mup", "completep"], base_config=str(base),
                           seeds=[2, 0], budgets=[3000, 6000], depths=[1, 2], head_size=8, tpp=1,
                           out_root=str(tmp_path))
    defaults, annotations = train_defaults()
    points = sh.build_points(a, defaults, annotations)[2]
    order = [(p["config"]["seed"], p["out_dir"].split(os.sep)[-5]) for p in points]
    # 2 budgets x 2 depths x 2 parameterizations per seed, seed 2 first as asked, budgets in order
    assert [s for s, _ in order] == [2] * 8 + [0] * 8
    assert [b for _, b in order[:8]] == ["P3000"] * 4 + ["P6000"] * 4 and order[:8] == [(2, b) for _, b in order[8:]]


@pytest.mark.slow
def test_tiny_study_end_to_end(char_data, tmp_path):
    base = tmp_path / "proxy.py"
    base.write_text(f"data_dir = {char_data!r}\nblock_size = 16\nbatch_size = 4\nglobal_batch_size = 4\n"
                    "base_n_layer = 1\nbase_n_embd = 16\neval_tokens = 256\nlog_interval = 10\ndevice = 'cpu'\n")
    args = ["scripts/shapes.py", "run", "--budgets", "3000", "--depths", "1,2", "--tpp", "1", "--head_size", "8",
            "--params", "mup,completep", "--lr", "mup=2**-6,completep=2**-6", "--base_config", str(base),
            "--out_root", str(tmp_path / "runs"), "--seeds", "0", "--jobs", "2", "--threads", "2"]
    r = run_script(args + ["--dry_run"])
    assert r.returncode == 0 and "4 points (4 to run)" in r.stdout, r.stdout + r.stderr
    r = run_script(args, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = run_script(args + ["--dry_run"])
    assert "4 points (0 to run)" in r.stdout  # finished points are skipped
    out = tmp_path / "fig"
    r = run_script(["scripts/shapes.py", "analyze", str(tmp_path / "runs" / "results.csv"), "--block_size", "16",
                    "--out", str(out)])
    assert r.returncode == 0, r.stderr
    table = (tmp_path / "fig.md").read_text()
    assert table.count("| mup |") == 2 and table.count("| completep |") == 2 and "one budget" in table
    assert table.count("| mup | 3,000 |") == 2  # both shapes under their nominal budget, not their own counts
    assert "| 3,000 | 1 | " in table and "(1 seed) | - |" in table  # the paired table, no sp run
    assert os.path.getsize(tmp_path / "fig.png") > 10_000
    r = run_script(["scripts/shapes.py", "run", "--lr", "mup=0"])
    assert r.returncode == 2 and r.stderr.startswith("error: --lr: mup=0 must be positive")


def test_paired_groups_by_any_columns_and_pairs_by_seed(tmp_path, capsys):
    # one shape trained for two lengths: `paired` keeps them apart when tokens is a key
    rows = []
    for tokens, sp, mup in ((100, (1.8, 1.9, 2.3), (2.0, 2.0, 2.2)), (400, (1.5, 1.6, 1.7), (1.5, 1.7, 1.5))):
        rows += [_row("sp", 1000, 2, 48, s, loss, tokens) for s, loss in enumerate(sp)]
        rows += [_row("mup", 1000, 2, 48, s, loss, tokens) for s, loss in enumerate(mup)]
    rows.append(_row("mup", 1000, 2, 48, 3, 2.0, 100))  # a seed sp did not run: left out
    got = sh.paired(rows, "sp", "mup", ("n_embd", "tokens"))
    assert list(got) == [(48, 100), (48, 400)]
    # tokens 100: differences -0.2, -0.1, +0.1; tokens 400: 0.0, -0.1, +0.2
    (m1, se1, n1), (m2, se2, n2) = got.values()
    assert n1 == n2 == 3 and m1 == pytest.approx(-0.2 / 3) and m2 == pytest.approx(0.1 / 3)
    sd1 = math.sqrt(sum((d + 0.2 / 3) ** 2 for d in (-0.2, -0.1, 0.1)) / 2)
    assert se1 == pytest.approx(sd1 / math.sqrt(3))
    # grouped by shape alone, the two lengths' runs of a seed collide: an error naming the fix,
    # not one of the two picked silently
    with pytest.raises(sh.UserError, match="two sp runs of seed 0 share n_embd = 48; add the column"):
        sh.paired(rows, "sp", "mup", ("n_embd",))

    import csv
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "paired.md"
    assert sh.main(["paired", str(path), "--a", "sp", "--b", "mup", "--keys", "n_embd,tokens", "--out", str(out)]) == 0
    table = [line for line in out.read_text().splitlines() if line.startswith("| 48 |")]
    assert [line.split(" | ")[1] for line in table] == ["100", "400"]
    assert table[0].count(" s") == 3  # three seeds listed, not the unpaired fourth
    # --where keeps one length, so the shape alone is a group again; the filter is named in the text
    assert sh.main(["paired", str(path), "--a", "sp", "--b", "mup", "--keys", "n_embd", "--where", "tokens=400",
                    "--out", str(out)]) == 0
    text = out.read_text()
    assert "(tokens=400)" in text and [line for line in text.splitlines() if line.startswith("| 48 |")] == [
        "| 48 | +0.033 (0.088, 3) | s0 +0.000, s1 -0.100, s2 +0.200 |"]
    with pytest.raises(sh.UserError, match="no finished run has tokens=200"):
        sh.main(["paired", str(path), "--a", "sp", "--b", "mup", "--keys", "n_embd", "--where", "tokens=200"])
    with pytest.raises(sh.UserError, match="no column 'n_head'"):
        sh.main(["paired", str(path), "--keys", "n_head"])
    with pytest.raises(sh.UserError, match="no completep runs"):
        sh.main(["paired", str(path)])


def test_a_diverged_seed_counts_against_its_point():
    """Its tokens column holds the tokens it reached (its steps), not the horizon: the point is
    still one cell, whose mean is infinite (a shape that diverges on any seed is not a result)."""
    done = dict(parameterization="mup", n_layer="2", n_embd="16", status="done", val_loss="2.0", tokens="4096",
                out_dir="runs/s/P3000/mup/L2_N16/s0")
    rows = [done, dict(done, val_loss="2.2", out_dir="runs/s/P3000/mup/L2_N16/s1"),
            dict(done, status="diverged", val_loss="inf", tokens="512", out_dir="runs/s/P3000/mup/L2_N16/s2")]
    agg = sh.aggregate(rows, 16)
    assert len(agg["mup"]) == 1
    (budget, L, N, ratio, flops, mean, seeds), = agg["mup"]
    assert (budget, L, N, seeds) == (3000, 2, 16, 3) and mean == math.inf
    assert flops == sh.train_flops(2, 16, sh.nonembedding_params(2, 16), 16, 4096)
    assert sh.aggregate(rows[:2], 16)["mup"][0][5] == pytest.approx(2.1)

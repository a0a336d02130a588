"""Hostile input to the analysis and side tools: each refuses what it cannot use in one line
(a UserError in-process; `error: ...` and exit 2 from the command line), and writes nothing.
scripts/plot_transfer.py, shapes.py and compare_runs.py check the files they read (a repeated
point, a done row without a loss, binary, empty, header-less, torn or other files, a FIFO);
bench.py, scripts/coord_check.py and scripts/laziness.py check every number they are given
(sizes, NaN/inf rates, seeds, data too short for a window, a model too big for memory) before
allocating. CPU, offline, in-process and fast."""
import csv
import json
import math
import os
import signal
import sys

import numpy as np
import pytest

from conftest import REPO, run_main, run_script

sys.path.insert(0, os.path.join(REPO, "scripts"))
import bench  # noqa: E402
import compare_runs  # noqa: E402
import coord_check as cc  # noqa: E402
import laziness as lz  # noqa: E402
import plot_transfer  # noqa: E402
import results  # noqa: E402
import shapes  # noqa: E402
from dataloader import write_tokens  # noqa: E402
from runs import UserError  # noqa: E402

HEADER = results.columns({"n_layer": None, "learning_rate": None})


def _results(path, depths=(2, 4), grid=range(-10, -3), seeds=(0, 1)):
    """A sweep's results CSV: loss = (log2 lr - centre)^2 + 2 + seed / 10, centre -7 at every depth."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, HEADER)
        w.writeheader()
        for d in depths:
            for k in grid:
                for s in seeds:
                    loss = (k + 7) ** 2 + 2 + s / 10
                    w.writerow(dict(sweep="t", parameterization="completep", n_layer=d, n_embd=64, n_head=2,
                                    learning_rate=2.0 ** k, init_std=0.02, output_mult=1.0, seed=s, status="done",
                                    train_loss=loss, val_loss=loss, best_val_loss=loss, steps=1, tokens=64,
                                    wall_s=1.0, out_dir=f"runs/shapes/P1000/x/L{d}_N64/{k}/s{s}"))
    return path


def _lines(path):
    return path.read_text().splitlines()


# --- class 7: the analysis tools check what they read ---

def test_plot_refuses_a_point_repeated_with_another_loss_and_keeps_an_exact_copy_once(tmp_path):
    """A repeated seed is not a second seed: averaged as one, a row run twice would move the
    4-layer optimum off -7 (here to the repeat's lower loss). An exact copy (the same run
    recorded twice) changes nothing."""
    path = _results(tmp_path / "results.csv")
    lines = _lines(path)
    # line 1 header; 4-layer rows start at line 2 + 7 * 2; lr 2^-6 seed 0 is the 3rd x there
    target = 2 + 7 * 2 + 2 * 4
    assert lines[target - 1].startswith("t,completep,4,64,2,0.015625,0.02,1.0,0,done,")
    row = lines[target - 1].split(",")
    row[10] = row[11] = row[12] = "1.5"  # the same point, seed 0, a lower loss
    path.write_text("\n".join(lines + [",".join(row)]) + "\n")
    out = tmp_path / "o"
    with pytest.raises(UserError, match=rf"results.csv lines {target} and {len(lines) + 1} are the same point "
                                        r"\(parameterization=completep, n_layer=4, .*seed=0\) but end at 3.0 and 1.5: "
                                        "a repeated seed is not a second seed; delete the row"):
        plot_transfer.main([str(path), "--out", str(out)])
    assert not os.path.exists(f"{out}.md") and not os.path.exists(f"{out}.png")
    # an exact copy of the row: the same table as without it (the point counted once)
    _results(path)
    assert plot_transfer.main([str(path), "--out", str(tmp_path / "a")]) == 0
    path.write_text("\n".join(lines + [lines[target - 1]]) + "\n")
    assert plot_transfer.main([str(path), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a.md").read_text() == (tmp_path / "b.md").read_text()
    assert "| completep | 4 (x2) | 2 | -7.00 |" in (tmp_path / "b.md").read_text()


@pytest.mark.parametrize("cell", ["abc", "nan", "inf", ""])
def test_plot_refuses_a_done_row_without_a_finite_loss(tmp_path, cell):
    """It was read as a diverged point (nan), silently: a done run's loss is its result."""
    path = _results(tmp_path / "results.csv")
    lines = _lines(path)
    row = lines[4].split(",")
    row[11] = cell
    lines[4] = ",".join(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=f"results.csv line 5 is a done run whose val_loss is '{cell}', not a finite"):
        plot_transfer.main([str(path), "--out", str(tmp_path / "o")])
    # the same for the metric asked for: --metric train_loss reads train_loss
    row[11], row[10] = "2.5", cell
    lines[4] = ",".join(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="line 5 is a done run whose train_loss is"):
        plot_transfer.main([str(path), "--metric", "train_loss", "--out", str(tmp_path / "o")])
    assert not os.path.exists(tmp_path / "o.md")


def test_plot_and_shapes_refuse_a_setting_cell_that_is_not_a_number(tmp_path):
    path = _results(tmp_path / "results.csv")
    lines = _lines(path)
    lines[1] = lines[1].replace(",0.0009765625,", ",2^-10,")  # x enters log2: nan, silently, before
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="results.csv line 2: learning_rate is '2\\^-10', not a number above 0"):
        plot_transfer.main([str(path), "--out", str(tmp_path / "o")])
    _results(path)
    lines = _lines(path)
    lines[6] = lines[6].replace("t,completep,2,64,", "t,completep,2.5,64,")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="line 7: n_layer is '2.5', not a whole number above 0"):
        shapes.main(["analyze", str(path), "--out", str(tmp_path / "s")])
    assert sorted(os.listdir(tmp_path)) == ["results.csv"]


BAD_FILES = {  # content -> key words of the one line
    "binary": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "is not UTF-8 text (a binary file?)"),
    "latin-1": ("sweep,parameterization,status,val_loss\nt,caf\xe9,done,2.0\n".encode("latin-1"), "is not UTF-8 text"),
    "empty": (b"", "is empty; run"),
    "header-less": (b"t,completep,2,64,2,0.0078125,0.02,1.0,0,done,2.0,2.0,2.0,1,64,1.0,runs/x\n",
                    "has no column 'parameterization', 'status', 'val_loss' (its first line: t,completep,2,"),
    "other csv": (b"name,score\nalice,3\n", "has no column 'parameterization'"),
    "torn line": (None, "line 9 has 12 fields where the header has 18 (a torn or hand-edited line)"),
    "column twice": (b"parameterization,status,val_loss,seed,out_dir,n_layer,seed\nsp,done,2.0,0,x,2,1\n",
                     "names the column 'seed' twice"),
}


def _bad(tmp_path, kind):
    path = tmp_path / "results.csv"
    content, message = BAD_FILES[kind]
    if content is None:  # a killed append: the last line stops mid-row, no newline
        _results(path)
        text = path.read_text().splitlines()
        path.write_text("\n".join(text[:8] + [",".join(text[8].split(",")[:12])]))
    else:
        path.write_bytes(content)
    return path, message


TOOLS = {
    "plot_transfer": lambda p, o: plot_transfer.main([str(p), "--out", str(o)]),
    "shapes analyze": lambda p, o: shapes.main(["analyze", str(p), "--out", str(o)]),
    "shapes paired": lambda p, o: shapes.main(["paired", str(p), "--keys", "n_layer", "--out", str(o)]),
    "compare_runs": lambda p, o: compare_runs.main([str(p), "--by", "n_layer", "--out", str(o)]),
}


@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_unreadable_results_are_one_line_in_every_tool(tmp_path, tool, kind):
    path, message = _bad(tmp_path, kind)
    if tool == "compare_runs" and kind == "header-less":
        message = "has no column 'status', 'seed', 'val_loss', 'out_dir', 'n_layer'"
    if tool == "compare_runs" and kind == "other csv":
        message = "has no column 'status'"
    before = path.read_bytes()
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        TOOLS[tool](path, tmp_path / "out")
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["results.csv"]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_a_fifo_is_refused_before_it_is_opened(tmp_path, tool):
    """open() on a FIFO no process writes blocks forever; the alarm turns a hang into a failure."""
    fifo = tmp_path / "results.csv"
    os.mkfifo(fifo)
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("blocked opening the FIFO"))
    signal.alarm(5)
    try:
        with pytest.raises(UserError, match="results file .*results.csv is a FIFO, not a regular file"):
            TOOLS[tool](fifo, tmp_path / "out")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_the_command_line_prints_one_error_line_and_exits_2(tmp_path):
    path, message = _bad(tmp_path, "binary")
    for script in ("scripts/plot_transfer.py", "scripts/compare_runs.py"):
        r = run_script([script, str(path), "--out", str(tmp_path / "o")], timeout=60)
        assert r.returncode == 2 and r.stderr.startswith("error: results file") and message in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 1 and not os.path.exists(tmp_path / "o.md")


def test_an_unwritable_out_is_one_line(tmp_path):
    path = _results(tmp_path / "results.csv")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write .*file/o.md and .*choose another --out"):
        plot_transfer.main([str(path), "--out", str(tmp_path / "file" / "o")])


# compare_runs: its groups and the metrics logs it plots

@pytest.fixture()
def runs(tmp_path):
    """Two groups by module_hparams, seeds 0 and 1, each run's metrics.jsonl beside it."""
    rows = []
    for g, mh in enumerate(("{}", '{"mlp_out": {"lr": 0.5}}')):
        for s in (0, 1):
            out = f"runs/g{g}/s{s}"
            os.makedirs(tmp_path / out)
            with open(tmp_path / out / "metrics.jsonl", "w") as f:
                for i in (1, 2):
                    f.write(json.dumps({"iter": i, "loss": 3.0 - i / 10, "tokens": 100 * i}) + "\n")
                f.write(json.dumps({"iter": 2, "val_loss": 2.0 + g / 10 + s / 100, "tokens": 200}) + "\n")
            rows.append(dict(module_hparams=mh, seed=s, status="done", val_loss=2.0 + g / 10 + s / 100, out_dir=out))
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def test_compare_refuses_a_seed_a_group_ran_twice_and_keeps_an_exact_copy(runs):
    """The second row of a seed used to replace the first silently (a dict keyed by seed)."""
    path = runs / "results.csv"
    lines = _lines(path)
    path.write_text("\n".join(lines + [lines[1].replace(",2.0,", ",2.5,")]) + "\n")
    with pytest.raises(UserError, match="results.csv lines 2 and 6 are both seed 0 of module_hparams={} but end at "
                                        "2.0 and 2.5: keep one cell of the other axes with --where"):
        compare_runs.read_groups(str(path), "module_hparams", None)
    path.write_text("\n".join(lines + [lines[1]]) + "\n")
    groups = compare_runs.read_groups(str(path), "module_hparams", None)
    assert [len(g) for g in groups.values()] == [2, 2]
    # a done row whose seed or loss is not a number: it would be a ValueError in the table
    for bad in (lines[1].replace(",0,done,", ",zero,done,"), lines[1].replace(",2.0,", ",nan,")):
        path.write_text("\n".join([lines[0], bad] + lines[2:]) + "\n")
        with pytest.raises(UserError, match="results.csv line 2: a done run needs an integer seed and a finite val_loss"):
            compare_runs.read_groups(str(path), "module_hparams", None)


def test_compare_skips_torn_metrics_lines_with_a_note_and_refuses_a_binary_log(runs, capsys):
    """A kill tears the last line; a resumed run appends after it, so a torn piece may sit
    anywhere. Those lines (and a JSON value that is not a record) are skipped, named on stderr;
    a log with no record at all is not a metrics log."""
    log = runs / "runs/g0/s0/metrics.jsonl"
    good = log.read_text().splitlines()
    log.write_text("\n".join([good[0], '{"iter": 2, "lo', "5", good[1], good[2], '{"iter": 3, "val_loss": 1.9, "tok']))
    val, train = compare_runs.read_curves(str(runs), {"out_dir": "runs/g0/s0"})
    assert val == [(200.0, 2.0)] and train == [(100.0, 2.9), (200.0, 2.8)]
    err = capsys.readouterr().err
    assert f"note: skipped 3 unreadable line(s) of {log} (line 2, 3, 6: a torn write?)" in err
    # a non-finite loss, which train.py writes as null, is nan on the curve, not a crash
    log.write_text(json.dumps({"iter": 1, "val_loss": None, "tokens": 100}) + "\n")
    (v,), _ = compare_runs.read_curves(str(runs), {"out_dir": "runs/g0/s0"})
    assert v[0] == 100.0 and math.isnan(v[1])
    log.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\xff\xfe")
    out = runs / "cmp"
    with pytest.raises(UserError, match="metrics.jsonl is not a train.py metrics log"):
        compare_runs.main([str(runs / "results.csv"), "--root", str(runs), "--out", str(out)])
    os.remove(log)
    os.mkfifo(log)
    with pytest.raises(UserError, match="metrics log .* is a FIFO"):
        compare_runs.read_curves(str(runs), {"out_dir": "runs/g0/s0"})


# --- class 9: the side tools check the numbers they are given ---

def _tokens(path, n):
    write_tokens(str(path), np.arange(n, dtype=np.uint16) % 7, vocab_size=7)
    return str(path)


CC = ["--sweep", "depth", "--sizes", "2,4", "--width", "32", "--head_size", "16", "--batch", "2",
      "--seq_len", "16", "--steps", "2", "--seeds", "1"]


@pytest.mark.parametrize("extra, message", [
    (["--width", "0"], "--width=0 must be positive"),
    (["--attn_positions", "0"], "--attn_positions=0 must be positive"),
    (["--lr", "nan"], "--lr=nan must be finite and positive"),
    (["--lr", "inf"], "--lr=inf must be finite and positive"),
    (["--beta1", "1"], r"--beta1=1.0 must be finite and in \[0, 1\)"),
    (["--eps=-1e-8"], "--eps=-1e-08 must be finite and >= 0"),
    (["--clip", "nan"], "--clip=nan must be finite and >= 0"),
    (["--input_mult", "0"], "--input_mult=0.0 must be finite and positive"),  # was a traceback in GPTConfig
    (["--sweep", "width", "--sizes", "32,40"], "width 40 is not a multiple of head_size=16; choose"),  # mid-sweep
    (["--sizes", "2,100000", "--width", "65536", "--head_size", "64"], r"the largest point \(100000 layers x 65536 "
     r"wide, batch 2 x 16\) needs .* GiB with optimizer state and activations, more than the"),
])
def test_coord_check_numbers(tmp_path, extra, message):
    data = _tokens(tmp_path / "train.bin", 200)
    with pytest.raises(UserError, match=message):
        cc.main(CC + ["--data", data, "--out_dir", str(tmp_path / "out")] + extra)
    assert not os.path.exists(tmp_path / "out")  # refused before anything is written


@pytest.mark.parametrize("n", [0, 17])
def test_coord_check_and_laziness_refuse_data_too_short_for_a_window(tmp_path, n):
    """A header-only token file was a traceback (the max of no tokens), a short one too."""
    data = _tokens(tmp_path / "train.bin", n)
    with pytest.raises(UserError, match=f"has {n} tokens, fewer than one window of --seq_len=16"):
        cc.main(CC + ["--data", data, "--out_dir", str(tmp_path / "out")])
    with pytest.raises(UserError, match=f"has {n} tokens, fewer than one GPT window of 32 tokens"):
        lz.main(["--models", "gpt", "--data", data, "--out_dir", str(tmp_path / "out")])
    assert not os.path.exists(tmp_path / "out")


def test_coord_check_analysis_checks_its_csv(tmp_path):
    data = _tokens(tmp_path / "train.bin", 200)
    out = tmp_path / "out"
    out.mkdir()
    csv_path = out / "depth.csv"
    argv = CC + ["--data", data, "--out_dir", str(out), "--analyze_only"]
    csv_path.write_text(",".join(cc.CSV_FIELDS) + "\nmup,depth,2,0,1,0,resid_abs,0.5\nmup,depth,2,0,1,0,resid_abs,0.\x00")
    with pytest.raises(UserError, match="depth.csv line 3 is not a coord_check row|cannot read .*depth.csv"):
        cc.main(argv)
    csv_path.write_text(",".join(cc.CSV_FIELDS) + "\nmup,depth,2,0,1,zero,resid_abs,0.5\n")
    with pytest.raises(UserError, match="depth.csv line 2 is not a coord_check row; delete it"):
        cc.main(argv)
    csv_path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(UserError, match="cannot read .*depth.csv as a coord_check CSV|is not a coord_check CSV"):
        cc.main(argv)
    csv_path.write_text(",".join(cc.CSV_FIELDS) + "\n")  # header only
    with pytest.raises(UserError, match="holds no complete run; the verdict needs"):
        cc.main(argv)
    csv_path.write_text(",".join(cc.CSV_FIELDS) + "\nmup,width,64,0,1,0,resid_abs,0.5\n")
    with pytest.raises(UserError, match="holds a width sweep, not --sweep depth"):
        cc.main(argv)
    assert sorted(os.listdir(out)) == ["depth.csv"]


@pytest.mark.parametrize("extra, message", [
    (["--toy_width", "-5"], "--toy_width=-5 must be positive"),  # was a traceback in torch.randn
    (["--gpt_width", "0"], "--gpt_width=0 must be positive"),   # 0 % 16 == 0: a traceback in GPTConfig
    (["--gpt_lr", "nan"], "--gpt_lr=nan must be a positive finite number"),
    (["--toy_lr", "inf"], "--toy_lr=inf must be a positive finite number"),
    (["--toy_width", "1000000", "--models", "toy"], r"the toy model at depth 64 and width 1000000 needs about "
     r"[\d,.]+ GiB, more than the [\d,.]+ GiB of this machine; lower --toy_width or --depths"),
])
def test_laziness_numbers(tmp_path, extra, message):
    with pytest.raises(UserError, match=message):
        lz.main(extra + ["--out_dir", str(tmp_path / "out")])
    assert not os.path.exists(tmp_path / "out")


def test_an_allocation_that_fails_is_one_line_and_other_errors_are_not_hidden(tmp_path, monkeypatch):
    """What the memory estimate lets through (it is a lower bound) the allocator may still refuse."""
    def no_memory(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
    monkeypatch.setattr(lz, "run", no_memory)
    with pytest.raises(UserError, match=r"out of memory at depth 16 \(gpt width 64, toy width 256\); lower"):
        lz.main(["--small", "--out_dir", str(tmp_path / "out")])
    monkeypatch.setattr(bench, "_bench", no_memory)
    with pytest.raises(UserError, match="out of memory on cpu at 4 layers x 128 wide, batch 16 x 128, vocab 84"):
        run_main(bench, ["--device=cpu"])
    monkeypatch.setattr(bench, "_bench", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a bug stays a bug, not "bad input"
        run_main(bench, ["--device=cpu"])


@pytest.mark.parametrize("argv, message", [
    (["--seed=-1"], r"seed=-1 must be in \[0, 2\*\*32\)"),
    (["--seed=2**32"], r"seed=4294967296 must be in \[0, 2\*\*32\)"),
    (["--n_embd=0"], "n_embd=0 must be positive"),
    (["--vocab_size=10**11"], r"this shape needs [\d,]+M parameters, about [\d,.]+ GiB .*, more than the [\d,.]+ GiB cpu "
                              "has; lower n_layer"),
])
def test_bench_numbers(argv, message):
    with pytest.raises(UserError, match=message):
        run_main(bench, argv + ["--device=cpu"])


def test_bench_compare_counts_every_variant_in_memory(monkeypatch):
    """--compare keeps five models at once: a shape that fits once may not fit five times."""
    one, _ = bench.memory_estimate(4, 128, 4, 84, 128, 16)
    monkeypatch.setattr(bench, "available_memory", lambda *a: one + 1)
    with pytest.raises(UserError, match=r"for one model, [\d,.]+ GiB for the 5 that --compare keeps, more than"):
        run_main(bench, ["--device=cpu", "--compare=True"])


@pytest.mark.parametrize("extra, message", [
    (["--tpp", "nan"], "--tpp=nan must be a positive finite number"), (["--tpp", "inf"], "--tpp=inf must be"),
    (["--budgets", "inf"], "--budgets='inf' must be a comma-separated list of numbers"),
    (["--seeds", "-1"], r"--seeds: -1 must be in \[0, 2\*\*32\)"),
])
def test_shapes_run_numbers(extra, message):
    with pytest.raises(UserError, match=message):
        shapes.main(["run", "--dry_run"] + extra)
    with pytest.raises(UserError, match="--lr: sp=1e999 must be positive and finite"):
        shapes.parse_lrs("sp=1e999")

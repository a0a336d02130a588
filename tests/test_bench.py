"""bench.py: a single figure, and the comparison against a plain nanoGPT-style step."""
import re

from conftest import run_script

SMALL = ["--n_layer=1", "--n_embd=32", "--n_head=2", "--block_size=16", "--batch_size=2", "--device=cpu",
         "--steps=2", "--warmup=1"]


def test_bench_prints_figures():
    r = run_script(["bench.py", *SMALL])
    assert r.returncode == 0, r.stderr
    assert re.search(r"1 layers x 32 wide, batch 2 x 16, torch.float32, cpu x\d+ threads: [\d.]+ ms/step, [\d,]+ tokens/s",
                     r.stdout)


def test_compare_times_every_variant_against_the_plain_step():
    r = run_script(["bench.py", *SMALL, "--compare=True", "--repeats=1", "--compile=False"])
    assert r.returncode == 0, r.stderr
    rows = re.findall(r"^  (.+?)\s+([\d.]+) ms/step\s+([\d,]+) tokens/s\s+([\d.]+)x$", r.stdout, re.M)
    assert [n.strip() for n, *_ in rows] == ["plain (sp, one AdamW group)", "ours (completep, per-role groups)",
                                              "ours + fused AdamW"]
    assert rows[0][3] == "1.00"  # the baseline against itself
    for name, ms, tok, ratio in rows:  # the ratio is tokens/s over the plain step's
        plain_tok = float(rows[0][2].replace(",", ""))
        assert abs(float(ratio) - float(tok.replace(",", "")) / plain_tok) < 0.011


def test_bench_bad_device_is_one_line():
    r = run_script(["bench.py", "--device=tpu"])
    assert r.returncode == 2 and r.stderr.startswith("error: device='tpu'") and len(r.stderr.splitlines()) == 1

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


def test_blocks_times_the_modern_block_against_the_gpt2_block():
    r = run_script(["bench.py", *SMALL, "--blocks=True", "--repeats=1"])
    assert r.returncode == 0, r.stderr
    rows = re.findall(r"^  (\w+) block\s+([\d,]+) non-embedding params\s+([\d.]+) ms/step\s+([\d,]+) tokens/s\s+([\d.]+)x$",
                      r.stdout, re.M)
    assert [n for n, *_ in rows] == ["gpt2", "modern"] and rows[0][4] == "1.00"
    # one block at N=32, counted here: GPT-2 ln_1, ln_2 (2N each), c_attn 3N^2+3N, c_proj N^2+N, c_fc 4N^2+4N,
    # c_proj 4N^2+N, ln_f 2N; modern: two RMSNorms N each, q/k norms 16 each (head size), c_q/k/v/proj 4N^2,
    # SwiGLU hidden ceil(8/3 * 32) = 86: 3 * 32 * 86, ln_f N
    n = 32
    assert int(rows[0][1].replace(",", "")) == 12 * n * n + 13 * n + 2 * n
    assert int(rows[1][1].replace(",", "")) == 2 * n + 2 * 16 + 4 * n * n + 3 * n * 86 + n
    r = run_script(["bench.py", *SMALL, "--blocks=True", "--compare=True"])
    assert r.returncode == 2 and r.stderr.startswith("error: compare=True and blocks=True") and len(r.stderr.splitlines()) == 1

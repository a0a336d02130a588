"""The training loop: schedules, per-group LRs at every step, a short run per
parameterization, the script end to end, and DDP against a single process."""
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import TINY, run_script
from dataloader import RandomWindowLoader, read_tokens
from model import GPT, GPTConfig
from train import lr_multiplier
from util import peak_flops


def test_cosine_schedule():
    T = 100  # warmup 10 steps, then cosine from 1 to min_lr_frac
    f = [lr_multiplier(t, T, "cosine", 0.1, 0.0, 0.1) for t in range(T)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert f[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert lr_multiplier(T, T, "cosine", 0.1, 0.0, 0.1) == pytest.approx(0.1)


def test_wsd_schedule():
    T = 100  # warmup 5, stable until 80, linear decay over the last 20 steps to 0.0
    f = [lr_multiplier(t, T, "wsd", 0.05, 0.2, 0.0) for t in range(T)]
    assert f[0] == pytest.approx(0.2) and f[4] == pytest.approx(1.0)
    assert all(x == 1.0 for x in f[5:80])
    assert f[80] == pytest.approx(1 - 1 / 20) and f[99] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(f[80:], f[81:]))


def test_constant_schedule_and_fractions_scale_with_run():
    assert [lr_multiplier(t, 10, "constant", 0.0, 0.0, 0.0) for t in range(10)] == [1.0] * 10
    # warmup is a fraction of the run: a 10x longer run warms up 10x longer
    assert lr_multiplier(4, 100, "cosine", 0.05, 0, 0) == pytest.approx(1.0)
    assert lr_multiplier(4, 1000, "cosine", 0.05, 0, 0) == pytest.approx(5 / 50)


def test_peak_flops_table():
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA A100-SXM4-40GB") == 312e12
    assert peak_flops("Some CPU") is None


@pytest.mark.parametrize("param", ["sp", "mup", "depth_mup", "completep"])
def test_short_training_lowers_loss(char_data, param):
    torch.manual_seed(0)
    cfg = GPTConfig(block_size=32, vocab_size=64, n_layer=4, n_head=2, n_embd=64,
                    parameterization=param, base_n_embd=32, base_n_layer=2)
    model = GPT(cfg)
    opt = model.configure_optimizers(0.1, 1e-2 if param != "sp" else 3e-3, (0.9, 0.95), 1e-8)
    loader = RandomWindowLoader(read_tokens(os.path.join(char_data, "train.bin")), 32, 8, 8, seed=0)
    losses = []
    for _ in range(40):
        (x, y), = loader.next_step()
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses


def test_train_script_end_to_end(char_data, tmp_path):
    """A tiny run: falls in loss, writes provenance and metrics, and its optimizer groups end
    at lr(t) * lr_mult with the reference's hidden lr_mult (1/m_N * m_L^0 for completep)."""
    out = tmp_path / "run"
    r = run_script(["train.py", f"--data_dir={char_data}", f"--out_dir={out}", *TINY,
                    "--n_embd=64", "--n_layer=4", "--max_iters=30", "--eval_interval=15",
                    "--learning_rate=0.01", "--sample_tokens=40", "--warmup_frac=0.1"])
    assert r.returncode == 0, r.stderr
    assert "sample:" in r.stdout and "hidden" in r.stdout  # the table and a sample are printed
    final = json.loads((out / "final.json").read_text())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "val_loss" in r]
    assert final["status"] == "done" and final["iter"] == 30
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.3
    assert {"loss", "lr", "grad_norm", "tok_per_s"} <= set(next(r for r in rows if "loss" in r))
    prov = json.loads((out / "provenance.json").read_text())
    assert {"git_commit", "torch", "device"} <= set(prov)
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["config"]["n_layer"] == 4 and resolved["parameterization"]["m_N"] == 2.0
    ckpt = torch.load(out / "ckpt_0000030.pt", weights_only=True)
    lr_last = 0.01 * lr_multiplier(29, 30, "cosine", 0.1, 0.2, 0.1)
    by_role = {g["role"]: g for g in ckpt["optimizer"]["param_groups"]}
    assert by_role["hidden"]["lr"] == pytest.approx(lr_last / 2)       # eta / m_N, m_L^0
    assert by_role["hidden_bias"]["lr"] == pytest.approx(lr_last)      # eta * m_L^0
    assert by_role["embedding"]["lr"] == pytest.approx(lr_last)
    assert by_role["hidden"]["weight_decay"] == pytest.approx(0.2)     # lambda * m_N


def test_sample_script_reads_checkpoint(char_data, tmp_path):
    out = tmp_path / "run"
    r = run_script(["train.py", f"--data_dir={char_data}", f"--out_dir={out}", *TINY, "--max_iters=4",
                    "--eval_interval=4"])
    assert r.returncode == 0, r.stderr
    r = run_script(["sample.py", f"--out_dir={out}", "--start=KING:", "--max_new_tokens=20"])
    assert r.returncode == 0, r.stderr
    assert "KING:" in r.stdout and "completep" in r.stdout


@pytest.mark.slow
def test_ddp_matches_single_process(char_data, tmp_path):
    """2 gloo ranks x 1 micro-step equal 1 process x 2 micro-steps for the same global batch."""
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    common = [f"--data_dir={char_data}", *TINY, "--max_iters=6", "--eval_interval=3",
              "--global_batch_size=8", "--batch_size=4", "--dropout=0.0"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    r1 = run_script(["train.py", *common, f"--out_dir={single}"])
    assert r1.returncode == 0, r1.stderr
    r2 = run_script(["--standalone", "--nproc_per_node=2", "train.py", *common, f"--out_dir={ddp}"],
                    cmd=["torchrun"])
    assert r2.returncode == 0, r2.stderr[-2000:]
    a = torch.load(single / "ckpt_0000006.pt", weights_only=True)
    b = torch.load(ddp / "ckpt_0000006.pt", weights_only=True)
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-6)
    fa, fb = (json.loads((d / "final.json").read_text()) for d in (single, ddp))
    assert fa["val_loss"] == pytest.approx(fb["val_loss"], rel=1e-5)
    assert fa["train_loss"] == pytest.approx(fb["train_loss"], rel=1e-5)
    assert len(b["rng"]) == 2  # every rank's RNG state is saved


@pytest.mark.slow
def test_wandb_offline_needs_no_key(char_data, tmp_path):
    out = tmp_path / "run"
    env = {k: "" for k in ("WANDB_API_KEY",)}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HOME=str(tmp_path))
    r = run_script(["train.py", f"--data_dir={char_data}", f"--out_dir={out}", *TINY, "--max_iters=2",
                    "--eval_interval=2", "--wandb_log=True", "--wandb_mode=offline"], env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert list((out / "wandb").glob("offline-run-*")), "no offline wandb run was written"
    run_id = json.loads((out / "wandb_id.json").read_text())["id"]
    r = run_script(["train.py", f"--data_dir={char_data}", f"--out_dir={out}", *TINY, "--max_iters=4",
                    "--eval_interval=2", "--wandb_log=True", "--wandb_mode=offline"], env=env)
    assert r.returncode == 0 and "resuming from" in r.stdout, r.stderr[-2000:]
    assert json.loads((out / "wandb_id.json").read_text())["id"] == run_id  # the same wandb run
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(d.name.endswith(run_id) for d in runs)


@pytest.mark.slow
def test_fused_adamw_on_cpu_follows_the_same_trajectory(char_data, tmp_path):
    """--fused=True (bench.py --compare: faster on this CPU) changes the kernels, not the update."""
    rows = {}
    for fused in (False, True):
        out = tmp_path / f"f{fused}"
        r = run_script(["train.py", f"--data_dir={char_data}", f"--out_dir={out}", *TINY, "--max_iters=5",
                        "--eval_interval=5", f"--fused={fused}"])
        assert r.returncode == 0, r.stderr
        rows[fused] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows[False], rows[True]):
        for k in ("loss", "val_loss", "grad_norm"):
            if k in a:
                assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-6), (k, a["iter"])
    assert len(rows[True]) == len(rows[False]) > 5
    m = GPT(GPTConfig(n_layer=1, n_embd=16, n_head=2, vocab_size=11, block_size=8))
    assert m.configure_optimizers(0.1, 1e-3, (0.9, 0.95), fused=True).defaults["fused"] is True
    assert not m.configure_optimizers(0.1, 1e-3, (0.9, 0.95)).defaults["fused"]  # CPU default: off

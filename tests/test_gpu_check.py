"""scripts/gpu_check.py on a CPU machine: it refuses in one line, its plan names every step,
and its parsing and comparisons work on real output of bench.py and train.py."""
import importlib.util
import json
import os
import sys

import pytest

from conftest import REPO, TINY, run_script

spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(REPO, "scripts", "gpu_check.py"))
gc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gc)


def test_refuses_without_cuda_in_one_line():
    r = run_script(["scripts/gpu_check.sh"], cmd=["bash"], env={"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 2
    assert r.stderr.startswith("error: no CUDA device") and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_gpu_evidence_refuses_without_cuda_or_with_a_bad_budget_and_touches_nothing():
    made = os.path.join(REPO, "runs", "width_init_std_paper_h200")
    existed = os.path.exists(made)
    for args in ([], ["480"], ["8m"]):
        r = run_script(["scripts/gpu_evidence.sh", *args], cmd=["bash"], env={"CUDA_VISIBLE_DEVICES": ""})
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("error: SECONDS" if args == ["8m"] else "error: no CUDA device")
    assert os.path.exists(made) == existed


def test_dry_run_lists_every_step_with_runnable_commands():
    r = run_script(["scripts/gpu_check.py", "--dry_run"])
    assert r.returncode == 0, r.stderr
    names = [line for line in r.stdout.splitlines() if not line.startswith(" ")]
    assert [n.split(":")[0] for n in names] == ["bench", "train", "resume", "ddp", "fsdp"]
    assert "--halt_at_iter=150" in r.stdout and "torch.distributed.run" in r.stdout


def test_a_step_passes_on_each_commands_own_exit_code():
    """The halted run of the resume step ends with exit 4 by design: that passes; 0 where 4 is
    expected, or 4 where 0 is, fails the step without running its check."""
    def cmd(code):
        return [sys.executable, "-c", f"print('ran'); raise SystemExit({code})"]
    checked = []

    def check(outs):
        checked.append(outs)
        return True, "checked"
    ok, detail, outs = gc.run_step([cmd(4), cmd(0)], [4, 0], check, dict(os.environ))
    assert (ok, detail) == (True, "checked") and outs == ["ran\n", "ran\n"] and len(checked) == 1
    ok, detail, _ = gc.run_step([cmd(0), cmd(0)], [4, 0], check, dict(os.environ))
    assert not ok and detail.startswith("exit 0 (expected 4)") and len(checked) == 1
    ok, detail, _ = gc.run_step([cmd(4)], [0], check, dict(os.environ))
    assert not ok and detail == "exit 4: ran" and len(checked) == 1


@pytest.mark.slow
def test_parses_real_bench_output_and_compares_losses(char_data, tmp_path):
    r = run_script(["bench.py", "--n_layer=1", "--n_embd=32", "--n_head=2", "--block_size=16",
                    "--batch_size=2", "--steps=2", "--warmup=1", "--device=cpu"])
    assert r.returncode == 0, r.stderr
    ms, tok, mfu = gc.parse_bench(r.stdout)
    # tokens/s x seconds/step is the batch's 32 tokens, up to the rounding of ms to 0.1
    assert ms > 0 and abs(tok * ms / 1000 - 2 * 16) <= tok * 0.05 / 1000 + 1e-6 and mfu is None  # no MFU on CPU
    out = tmp_path / "run"
    r = run_script(["train.py", f"--data_dir={char_data}", f"--out_dir={out}", *TINY, "--max_iters=3"])
    assert r.returncode == 0, r.stderr
    loss = gc.final_loss(str(out))
    assert loss == json.loads((out / "final.json").read_text())["val_loss"]
    assert gc.close(loss * 1.01, loss) and not gc.close(loss * 1.05, loss) and not gc.close(None, loss)
    (out / "final.json").write_text(json.dumps({"status": "stopped", "val_loss": 1.0}))
    assert gc.final_loss(str(out)) is None  # a stopped run has no final loss

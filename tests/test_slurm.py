"""scripts/slurm_train.sh without a cluster: srun and scontrol are stand-ins on PATH. A SIGTERM
to the batch shell (what `#SBATCH --signal=B:TERM@...` delivers) must reach train.py through
srun and torchrun, leave a checkpoint, requeue the job, and the requeued job must resume; a run
that stops by itself under torchrun (exit 4 reported as 1) is requeued from its own record."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY

SRUN = """#!/bin/bash
# stand-in for srun: drop its options, run the command (one node)
while [[ "$1" == --* ]]; do shift; done
exec "$@"
"""
SCONTROL = """#!/bin/bash
# stand-in for scontrol: 'show hostnames' prints this host; anything else is recorded
if [ "$1" = show ]; then echo localhost; else echo "$@" >> "$SCONTROL_LOG"; fi
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_bin(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (d / name).write_text(text)
        (d / name).chmod((d / name).stat().st_mode | stat.S_IEXEC)
    py = os.path.dirname(sys.executable)
    return f"{d}:{py}:{os.environ['PATH']}"


def _launch(tmp_path, args, path, nproc=1):
    env = dict(os.environ, PATH=path, SLURM_JOB_ID="4242", SLURM_NNODES="1", NPROC_PER_NODE=str(nproc),
               MASTER_PORT=str(_free_port()), SHUTDOWN_GRACE="60", SCONTROL_LOG=str(tmp_path / "scontrol.log"),
               OMP_NUM_THREADS="1", WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    return subprocess.Popen(["bash", "scripts/slurm_train.sh", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigterm_to_the_batch_shell_checkpoints_requeues_and_resumes(char_data, tmp_path):
    out = tmp_path / "run"
    args = [f"--data_dir={char_data}", f"--out_dir={out}", *TINY, "--max_iters=100000",
            "--eval_interval=100000", "--device=cpu"]
    path = _fake_bin(tmp_path)
    job = _launch(tmp_path, args, path)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until training steps are being logged
        rows = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
        if any('"loss"' in r for r in rows):
            break
        assert job.poll() is None, job.communicate()[0][-3000:]
        time.sleep(0.2)
    job.send_signal(signal.SIGTERM)
    log, _ = job.communicate(timeout=120)
    assert job.returncode == 0, log[-3000:]
    assert "requeueing job 4242" in log and (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    final = json.loads((out / "final.json").read_text())
    assert final["status"] == "stopped", log[-3000:]
    stopped_at = final["iter"]
    assert (out / f"ckpt_{stopped_at:07d}.pt").exists()
    # the requeued job runs the same script again and continues from the checkpoint
    args[args.index("--max_iters=100000")] = f"--max_iters={stopped_at + 2}"
    job = _launch(tmp_path, args, path)
    log, _ = job.communicate(timeout=120)
    assert job.returncode == 0, log[-3000:]
    assert f"resuming from {out / f'ckpt_{stopped_at:07d}.pt'}" in log
    assert json.loads((out / "final.json").read_text())["status"] == "done"
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]  # not requeued again


@pytest.mark.slow
def test_a_run_stopped_under_torchrun_is_requeued_from_its_record(char_data, tmp_path):
    """2 gloo workers stop by themselves (halt_at_iter: exit 4), torchrun exits 1: the job is
    requeued all the same, since the final.json this job wrote says stopped. A requeued job
    whose step then fails leaves that final.json as it was: exit 1, not requeued again."""
    out = tmp_path / "run"
    args = [f"--data_dir={char_data}", f"--out_dir={out}", *TINY, "--max_iters=6", "--halt_at_iter=2",
            "--eval_interval=1000", "--save_checkpoints=True"]
    path = _fake_bin(tmp_path)
    job = _launch(tmp_path, args, path, nproc=2)
    log, _ = job.communicate(timeout=240)
    assert job.returncode == 0 and "exitcode  : 4" in log, log[-3000:]
    assert "requeueing job 4242" in log and (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    assert json.loads((out / "final.json").read_text())["status"] == "stopped"
    (tmp_path / "bin" / "srun").write_text("#!/bin/bash\necho 'step failed' >&2\nexit 1\n")  # e.g. a node lost
    job = _launch(tmp_path, args, path)
    log, _ = job.communicate(timeout=120)
    assert job.returncode == 1 and "training exited with 1" in log, log[-3000:]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]

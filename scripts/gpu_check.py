"""
The GPU path end to end, in one command, with a report: what a CPU machine cannot test.

    scripts/gpu_check.sh                          # = python scripts/gpu_check.py
    scripts/gpu_check.sh --out experiments/gpu_check/h100.md   # write the report there
    python scripts/gpu_check.py --dry_run         # the steps and their commands, run nothing

Steps (each a subprocess of this repository's own entry points; a failing step is reported
and the rest still run):
  1. bench.py at the GPT-2 small shape (12 x 768, block 1024, batch 16): bf16 autocast with
     torch.compile, against fp32 eager in the same run: ms/step, tokens/s, MFU;
  2. a short training run on character-level Shakespeare (bf16, compile, fused AdamW);
  3. the same run stopped halfway (halt_at_iter) and resumed: the resumed run must end at the
     straight run's loss (bf16 + compile are not bitwise: a tolerance of 2%);
  4. DDP with nccl on every visible GPU (torchrun), which must match the 1-GPU loss to 2%;
  5. FSDP2 on every visible GPU, when train.py has `parallel='fsdp'` (reported as skipped
     otherwise).
Exit 0 when every step that ran passed, 1 otherwise; on a machine without CUDA, one error line
and exit 2. Scratch output goes to out/gpu_check/; the report is printed and written to --out.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from runs import EXIT_STOPPED, UserError, run_cli  # noqa: E402

TOL = 0.02  # relative loss tolerance between runs that differ only in bf16/compile/reduction order
RUN = ["--dataset=shakespeare_char", "--n_layer=4", "--n_embd=256", "--n_head=4", "--block_size=256",
       "--batch_size=16", "--global_batch_size=32", "--max_iters=300", "--eval_interval=150",
       "--eval_tokens=65536", "--log_interval=50", "--sample_tokens=0", "--device=cuda",
       "--learning_rate=0.01"]


def parse_bench(text):
    """(ms/step, tokens/s, MFU % or None) from bench.py's line."""
    m = re.search(r"([\d.]+) ms/step, ([\d,]+) tokens/s(?:, MFU ([\d.]+)%)?", text)
    if not m:
        return None
    return float(m.group(1)), float(m.group(2).replace(",", "")), (float(m.group(3)) if m.group(3) else None)


def final_loss(out_dir):
    """The run's final val loss from final.json, or None."""
    try:
        with open(os.path.join(out_dir, "final.json")) as f:
            final = json.load(f)
    except (OSError, ValueError):
        return None
    return final.get("val_loss") if final.get("status") == "done" else None


def close(a, b, tol=TOL):
    return a is not None and b is not None and abs(a - b) <= tol * abs(b)


def steps(scratch, ngpu):
    """[(name, [commands], check, [exit code each command must end with])]:
    check(outputs) -> (ok, detail)."""
    py = sys.executable
    torchrun = [py, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ngpu}"]
    d = {k: os.path.join(scratch, k) for k in ("straight", "resumed", "ddp", "fsdp")}
    shape = ["--n_layer=12", "--n_embd=768", "--n_head=12", "--block_size=1024", "--batch_size=16",
             "--vocab_size=50304", "--device=cuda", "--steps=20"]

    def bench_check(outs):
        fast, slow = parse_bench(outs[0]), parse_bench(outs[1])
        if not fast or not slow:
            return False, "bench.py printed no figures"
        return True, (f"bf16+compile {fast[0]:.1f} ms/step, {fast[1]:,.0f} tok/s, MFU {fast[2]}%; fp32 eager "
                      f"{slow[0]:.1f} ms/step ({fast[1] / slow[1]:.2f}x the tokens/s)")

    def train_check(outs):
        loss = final_loss(d["straight"])
        return (loss is not None and loss < 2.5), f"val loss {loss} after 300 steps (must be < 2.5)"

    def resume_check(outs):
        a, b = final_loss(d["resumed"]), final_loss(d["straight"])
        return close(a, b) and "resuming from" in outs[1], f"resumed {a} vs straight {b}"

    def ddp_check(outs):
        a, b = final_loss(d["ddp"]), final_loss(d["straight"])
        return close(a, b), f"{ngpu} GPUs {a} vs 1 GPU {b}"

    def fsdp_check(outs):
        a, b = final_loss(d["fsdp"]), final_loss(d["straight"])
        return close(a, b), f"FSDP2 on {ngpu} GPUs {a} vs 1 GPU {b}"

    fsdp = [*torchrun, "train.py", *RUN, "--parallel=fsdp", f"--out_dir={d['fsdp']}"]
    return [
        ("bench: GPT-2 small, bf16 + compile vs fp32 eager",
         [[py, "bench.py", *shape, "--dtype=bfloat16", "--compile=True"],
          [py, "bench.py", *shape, "--dtype=float32", "--compile=False"]], bench_check, [0, 0]),
        ("train: 300 steps, bf16, compile, fused AdamW",
         [[py, "train.py", *RUN, f"--out_dir={d['straight']}"]], train_check, [0]),
        ("resume: stop at 150, run again",  # the halted run ends 'stopped, checkpoint saved'
         [[py, "train.py", *RUN, "--halt_at_iter=150", f"--out_dir={d['resumed']}"],
          [py, "train.py", *RUN, f"--out_dir={d['resumed']}"]], resume_check, [EXIT_STOPPED, 0]),
        (f"ddp: nccl on {ngpu} GPU(s)", [[*torchrun, "train.py", *RUN, f"--out_dir={d['ddp']}"]], ddp_check, [0]),
        (f"fsdp: FSDP2 on {ngpu} GPU(s)", [fsdp], fsdp_check, [0]),
    ]


def run_step(cmds, codes, check, env):
    """Run a step's commands in order: (ok, detail, outputs). A command that ends with another
    exit code than its own (0, or 4 for a run halted on purpose) fails the step, naming it."""
    outs, bad = [], None
    for c, want in zip(cmds, codes):
        r = subprocess.run(c, cwd=REPO, env=env, capture_output=True, text=True)
        outs.append(r.stdout + r.stderr)
        if bad is None and r.returncode != want:
            bad = f"exit {r.returncode}" + (f" (expected {want})" if want else "")
    if bad is not None:
        return False, f"{bad}: {(outs[-1].strip().splitlines() or [''])[-1]}", outs
    return (*check(outs), outs)


def has_setting(name):
    r = subprocess.run([sys.executable, "train.py", "--help"], cwd=REPO, capture_output=True, text=True)
    return re.search(rf"^\s+{name} = ", r.stdout, re.M) is not None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "out", "gpu_check", "report.md"),
                    help="report file (default: the scratch folder out/gpu_check)")
    ap.add_argument("--dry_run", action="store_true", help="print the steps and commands, run nothing")
    a = ap.parse_args(argv)
    scratch = os.path.join(REPO, "out", "gpu_check")
    if a.dry_run:
        for name, cmds, _, _ in steps(scratch, "N"):
            print(f"{name}:")
            for c in cmds:
                print("   ", " ".join("python" if x == sys.executable else x.replace(REPO + os.sep, "") for x in c))
        return 0
    import torch
    if not torch.cuda.is_available():
        raise UserError("no CUDA device is visible (torch.cuda.is_available() is False); scripts/gpu_check.sh "
                        "checks the GPU path and must run on a machine with an NVIDIA GPU")
    ngpu = torch.cuda.device_count()
    if os.path.exists(scratch):
        import shutil
        shutil.rmtree(scratch)
    os.makedirs(scratch)
    env = dict(os.environ, PYTHONUNBUFFERED="1", WANDB_MODE="disabled")
    prep = subprocess.run([sys.executable, "data/shakespeare_char/prepare.py"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    lines = [f"# GPU check: {torch.cuda.get_device_name(0)} x {ngpu}", "",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, started {time.strftime('%Y-%m-%d %H:%M:%S')}, "
             f"git {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True, text=True).stdout.strip()}",
             "", "| step | result | wall | detail |", "|---|---|---|---|"]
    failed = prep.returncode != 0
    if failed:
        lines.append(f"| data | FAIL | | {prep.stderr.strip().splitlines()[-1:]} |")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)

    def write_report():  # after every step, so a check cut short still leaves what it found
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")

    fsdp_ok = has_setting("parallel")
    t_start = time.time()
    for i, (name, cmds, check, codes) in enumerate(steps(scratch, ngpu)):
        if name.startswith("fsdp") and not fsdp_ok:
            lines.append(f"| {name} | skipped | | train.py has no `parallel` setting yet |")
            continue
        t0 = time.time()
        ok, detail, outs = run_step(cmds, codes, check, env)
        with open(os.path.join(scratch, f"{i + 1}_{name.split(':')[0]}.log"), "w") as f:  # each step's full output
            f.write("\n".join(f"$ {' '.join(c)}\n{o}" for c, o in zip(cmds, outs)))
        failed |= not ok
        lines.append(f"| {name} | {'PASS' if ok else 'FAIL'} | {time.time() - t0:.0f} s | {detail} |")
        print(lines[-1], flush=True)
        write_report()
    lines += ["", f"Whole check: {time.time() - t_start:.0f} s wall; each step's full output is in "
              f"{os.path.relpath(scratch, REPO)}/<n>_<step>.log."]
    write_report()
    print("\n".join(lines) + f"\nwrote {a.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)

"""
Points per core-hour of a sweep grid: packed (pack.py, K points as one stacked model in one
process) against one train.py process per point, timed in the same run on the same machine,
whole-process wall time including start-up (imports, data, model building) for both.

    python scripts/bench_sweep.py                                  # 2 x 64, 6 LRs x 1 seed, 128 steps
    python scripts/bench_sweep.py --n_layer 8 --seeds 3 --steps 1024   # a deeper grid, the canonical horizon

The grid: config/transfer_paper.py (the CPU proxy's settings) at --n_layer layers, the octave
LRs 2^-4..2^-9 (the first --lrs of 2^-6, 2^-7, 2^-5, 2^-8, 2^-4, 2^-9) times --seeds seeds,
--steps optimizer steps of 8 x 128 tokens, evaluation at the start and the end only. Both modes
run on one thread (OMP_NUM_THREADS=1), one after the other, points in the same order; the
figure is points per core-hour and the ratio packed / processes. A busy machine slows both: read
the ratio, not the absolute figures. Then what limits the speed-up: the time of a one-step
process (what packing saves per point), the time of a training step alone and per member packed,
and the FLOP rate each reaches against a plain fp32 matmul on the same thread.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from runs import UserError, run_cli  # noqa: E402

LRS = [2.0 ** -k for k in (6, 7, 5, 8, 4, 9)]


def grid(a):
    common = ["config/transfer_paper.py", f"--n_layer={a.n_layer}", f"--max_tokens={a.steps * 1024}",
              "--log_interval=1000000", f"--eval_tokens={a.eval_tokens}"]
    return [common + [f"--learning_rate={lr}", f"--seed={s}"] for s in range(a.seeds) for lr in LRS[:a.lrs]]


def packed_member_run(argvs, out):
    """The packed mode, inside its own process (its start-up counted): every point's final
    val_loss, as JSON on stdout."""
    import configurator
    import pack
    import runs
    import train
    defaults, annotations = runs.train_defaults()
    cfgs = [configurator.parse(defaults, argv + [f"--out_dir={out}/p{i}"], annotations, train.NANOGPT_ALIASES)[0]
            for i, argv in enumerate(argvs)]
    res = pack.run_pack(cfgs)
    print(json.dumps([r["val"][max(r["val"])] for r in res]))


def limits(argv, env):
    """(training FLOPs per token of the grid's model, the thread's fp32 matmul FLOP/s), measured in a
    child on one thread as the runs are."""
    code = ("import json, sys, time, torch; sys.path.insert(0, '.'); import configurator, runs, train\n"
            "d, a = runs.train_defaults(); c = configurator.parse(d, json.loads(sys.argv[1]), a, train.NANOGPT_ALIASES)[0]\n"
            "v = json.load(open('data/' + c['dataset'] + '/meta.json'))['vocab_size']\n"
            "m = train.GPT(train.model_config(c, v)); x = torch.randn(512, 512); x @ x; t = time.time()\n"
            "for _ in range(20): x @ x\n"
            "print(json.dumps([m.flops_per_token(), 20 * 2 * 512 ** 3 / (time.time() - t)]))")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], env=env, cwd=REPO, capture_output=True, text=True)
    if r.returncode:
        raise UserError(f"the FLOP-rate probe failed: {r.stderr.strip().splitlines()[-1]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--n_layer", type=int, default=2)
    ap.add_argument("--lrs", type=int, default=6, help="how many of the six octave LRs")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--eval_tokens", type=int, default=32768)
    ap.add_argument("--out", default="/tmp/bench_sweep", help="scratch folder for the runs")
    ap.add_argument("--_packed", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._packed:
        return packed_member_run(json.loads(a._packed), a.out)
    for k in ("n_layer", "seeds", "steps", "eval_tokens"):
        if getattr(a, k) <= 0:
            raise UserError(f"--{k}={getattr(a, k)} must be positive")
    if not 1 <= a.lrs <= len(LRS):
        raise UserError(f"--lrs={a.lrs} must be 1..{len(LRS)}")
    points = grid(a)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    t0 = time.time()
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--_packed", json.dumps(points),
                        "--out", f"{a.out}/{stamp}/packed"], env=env, cwd=REPO, capture_output=True, text=True)
    packed = time.time() - t0
    if r.returncode:
        raise UserError(f"the packed run failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    packed_val = json.loads(r.stdout.strip().splitlines()[-1])
    t0 = time.time()
    alone_val = []
    for i, argv in enumerate(points):
        out = f"{a.out}/{stamp}/alone{i}"
        r = subprocess.run([sys.executable, "train.py", *argv, f"--out_dir={out}"], env=env, cwd=REPO,
                           capture_output=True, text=True)
        if r.returncode:
            raise UserError(f"train.py failed on point {i}: {r.stderr.strip().splitlines()[-1]}")
        with open(os.path.join(out, "final.json")) as f:
            alone_val.append(json.load(f)["val_loss"])
    alone = time.time() - t0
    # what limits: one process of one step (start-up, two evaluations, one step), and the core's
    # single-thread matmul rate, timed in the same run
    t0 = time.time()
    r = subprocess.run([sys.executable, "train.py", *points[0], "--max_tokens=1024", f"--out_dir={a.out}/{stamp}/one"],
                       env=env, cwd=REPO, capture_output=True, text=True)
    startup = time.time() - t0
    flops, peak = limits(points[0], env)
    n = len(points)
    rel = sorted(abs(p - q) / abs(q) for p, q in zip(packed_val, alone_val))
    print(f"{n} points ({a.lrs} LRs x {a.seeds} seeds), {a.n_layer} x 64, {a.steps} steps of 8 x 128, one thread")
    print(f"  one process per point: {alone:7.1f} s  {3600 * n / alone:8.1f} points per core-hour")
    print(f"  packed (one process):  {packed:7.1f} s  {3600 * n / packed:8.1f} points per core-hour  "
          f"{alone / packed:.2f}x")
    step_alone = max(alone - n * startup, 1e-9) / (n * (a.steps - 1))
    step_packed = max(packed - startup, 1e-9) / (n * (a.steps - 1))
    print(f"  what limits: a process of one step takes {startup:.1f} s (start-up, two evaluations, one step): "
          f"{100 * n * startup / alone:.0f}% of the one-process-per-point time; a training step then takes "
          f"{1000 * step_alone:.1f} ms alone, {1000 * step_packed:.1f} ms per member packed, i.e. "
          f"{flops * 1024 / step_alone / 1e9:.1f} and {flops * 1024 / step_packed / 1e9:.1f} GFLOP/s "
          f"(6N + 12LTC per token) against {peak / 1e9:.1f} GFLOP/s for a 512^3 fp32 matmul on this thread")
    print(f"  final val_loss, packed against alone: relative differences {', '.join(f'{x:.1g}' for x in rel)} "
          f"({sum(x <= 1e-5 for x in rel)} of {n} within 1e-5; a point at the edge of stability amplifies "
          "rounding alone, tests/test_pack.py::test_drift_is_float_noise)")


if __name__ == "__main__":
    run_cli(lambda: main() and None)

"""Packed sweeps (pack.py): K members in one stacked model compute what each point computes
alone: against train.py itself (a subprocess) for one case, against a single-model loop of
train.py's own set-up and step functions (torch.optim.AdamW) for the others; a diverging
member leaves the others bit for bit unchanged."""
import json
import math

import pytest
import torch

import configurator
import pack
import runs
import train
from conftest import TINY, run_script

# vmap has no batching rule for CPU flash attention: it loops over the members (correct, slower)
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
STEPS = 50
# relative. vmap's batched matmuls and reductions round differently from the single model's
# (the first steps agree to 0-1 ulp); training amplifies that, by how much depends on the point:
# the members of the tests below stay within ~1e-6 over 50 steps (measured max 7.5e-7); at the
# base shape with LR 3e-2-5e-2 (mup) the run alone itself moves 1e-4-1e-2 when one init tensor
# is nudged by 1 ulp, and the pack drifts as much (test_drift_is_float_noise).
TOL = 1e-5


def config(char_data, *extra):
    defaults, annotations = runs.train_defaults()
    argv = [f"--data_dir={char_data}", *TINY, f"--max_iters={STEPS}", "--eval_interval=25",
            "--warmup_frac=0.1", *extra]
    return configurator.parse(defaults, argv, annotations, train.NANOGPT_ALIASES)[0], argv


def points(char_data, param, tied, lrs=None):
    """4 members: different learning rates, init stds, seeds and grad_clip (0: none); away from the base shape
    (m_N = 2, m_L = 2), so the parameterizations differ."""
    extra = [f"--parameterization={param}", f"--tie_embeddings={tied}", "--base_n_embd=16", "--base_n_layer=1"]
    lrs = lrs or ([3e-3, 1e-2, 5e-3, 2e-3] if param == "sp" else [1e-2, 2e-2, 1.5e-2, 5e-3])
    return [config(char_data, *extra, f"--learning_rate={lr}", f"--init_std={std}", f"--seed={seed}",
                   f"--grad_clip={clip}")[0]
            for lr, std, seed, clip in zip(lrs, [0.02, 0.01, 0.03, 0.02], [1, 2, 3, 4], [1.0, 0.5, 1.0, 0.0])]


def reference(c):
    """One point alone: train.main's set-up (open_data, eval_sets, seed_all, GPT, make_optimizer)
    and its step (train.forward_backward, optimizer.step), evaluations via train.evaluate."""
    proc = train.Process()
    train.init_distributed(proc, c["parallel"], c["device"], c["dtype"])
    data, vocab = train.open_data(c["data_dir"], c, proc)
    evals = train.eval_sets(data, c, proc)
    total = c["max_iters"]
    bd = dict(m_B=c["global_batch_size"] / c["base_batch_size"] if c["base_batch_size"] else 1.0,
              m_D=total * c["global_batch_size"] * c["block_size"] / c["base_tokens"] if c["base_tokens"] else 1.0)
    gptconf = train.model_config(c, vocab)
    train.seed_all(c["seed"])
    model = train.GPT(gptconf)
    opt = train.make_optimizer(model, c, proc.device_type, bd)
    grad_accum = c["global_batch_size"] // c["batch_size"]
    out = dict(losses={}, val={}, status="done")
    it = 0
    while True:
        if it % c["eval_interval"] == 0 or it >= total:
            out["val"][it] = train.evaluate(model, evals, proc)["val"]
        if it >= total:
            break
        lr_t = c["learning_rate"] * train.lr_multiplier(it, total, c["lr_schedule"], c["warmup_frac"],
                                                        c["decay_frac"], c["min_lr_frac"])
        loss_sum, _, gn = train.forward_backward(model, model, opt, data.loader, lr_t, grad_accum, c["grad_clip"], proc)
        if not torch.isfinite(gn):
            out.update(status="diverged", diverged_at=it)
            break
        opt.step()
        opt.zero_grad(set_to_none=True)
        it += 1
        out["losses"][it] = loss_sum.item()
    out["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
    return out


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def compare(got, want, what, steps=STEPS):
    assert got["status"] == want["status"] == "done"
    assert sorted(got["losses"]) == sorted(want["losses"]) == list(range(1, steps + 1))
    assert sorted(got["val"]) == sorted(want["val"])
    worst = max(max(rel(got["losses"][s], want["losses"][s]) for s in want["losses"]),
                max(rel(got["val"][s], want["val"][s]) for s in want["val"]))
    print(f"{what}: max relative difference {worst:.3g}")
    assert worst < TOL, (what, worst)
    return worst


@pytest.mark.parametrize("param,tied", [("sp", True), ("sp", False), ("mup", True), ("mup", False), ("completep", True),
                                        ("completep", False), ("completedp", False)])  # completedp refuses tied
def test_pack_matches_each_point_alone(char_data, param, tied):
    cfgs = points(char_data, param, tied)
    if param == "completedp":  # the batch/duration rules too: m_B = 8/4, m_D from base_tokens
        cfgs = [dict(c, base_batch_size=4, base_tokens=STEPS * 8 * 32 * 2) for c in cfgs]  # m_B = 2, m_D = 1/2
    else:  # one micro-step (accumulation: completedp here, and test_pack_matches_train_script)
        cfgs = [dict(c, global_batch_size=4) for c in cfgs]
    assert len(pack.group_by_key(cfgs)) == 1
    got = pack.run_pack(cfgs)
    for k, c in enumerate(cfgs):
        compare(got[k], reference(c), f"{param} tied={tied} member {k}")


MODULE_HPARAMS = [{"residual": {"attn": 0.5}, "attn_qkv": {"lr": 2.0}, "depth": {"lr": [1.0, 0.5]}},
                  {"residual": {"attn": 0.5}, "mlp_out": {"wd": 0.1, "eps": 10.0}},
                  {"residual": {"attn": 0.5}, "embedding": {"beta1": 2.0, "init_std": 0.5}},
                  {"residual": {"attn": 0.5}}]


@pytest.mark.parametrize("case", ["module_hparams", "modern"])
def test_pack_per_member_module_hparams_and_modern_block(char_data, case):
    """Members whose module_hparams split the optimizer groups differently (the forward's
    residual multiplier shared); the modern block (RMSNorm, QK-norm, RoPE buffers, SwiGLU) with z-loss."""
    cfgs = points(char_data, "completep", True)
    if case == "module_hparams":
        cfgs = [dict(c, max_iters=20, base_n_layer=2, module_hparams=m) for c, m in zip(cfgs, MODULE_HPARAMS)]
    else:
        cfgs = [dict(c, max_iters=20, norm="rmsnorm", qk_norm=True, pos="rope", mlp="swiglu", bias=False,
                     z_loss=1e-4) for c in cfgs]
    assert len(pack.group_by_key(cfgs)) == 1
    got = pack.run_pack(cfgs)
    for k, c in enumerate(cfgs):
        compare(got[k], reference(c), f"{case} member {k}", steps=20)


def test_pack_matches_train_script(char_data, tmp_path):
    """train.py itself, as a subprocess, is the reference for one member of a pack."""
    extra = ["--parameterization=completep", "--learning_rate=0.01", "--init_std=0.03", "--seed=7",
             "--weight_decay=0.05", "--beta2=0.99", "--module_hparams={'attn_qkv': {'lr': 1.5}, 'mlp_out': {'init_std': 0.5}}"]
    c, argv = config(char_data, *extra)
    other = config(char_data, "--parameterization=completep", "--learning_rate=0.01", "--seed=8")[0]
    got = pack.run_pack([other, c])[1]
    r = run_script(["train.py", *argv, f"--out_dir={tmp_path / 'run'}"])
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    want = dict(status="done", losses={r["iter"]: r["loss"] for r in rows if "loss" in r},
                val={r["iter"]: r["val_loss"] for r in rows if "val_loss" in r})
    compare(got, want, "train.py completep member")
    alone = reference(c)  # the tests' single-model reference is train.py, bit for bit
    assert alone["losses"] == want["losses"] and alone["val"] == want["val"]
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert rel(got["val"][STEPS], final["val_loss"]) < TOL


def test_drift_is_float_noise(char_data, monkeypatch):
    """At a high learning rate the pack drifts from the run alone by more than TOL; so does the run
    alone from itself with one init tensor nudged by 1 ulp: the drift is the trajectory's
    sensitivity to rounding, and the pack's stays within a few times the nudged run's."""
    cfgs = [dict(c, base_n_embd=32, base_n_layer=2, grad_clip=1.0)  # at the base shape, where these LRs are on the edge
            for c in points(char_data, "mup", True, lrs=[5e-2, 3e-2, 1e-2, 2e-2])[:2]]
    got = pack.run_pack(cfgs)
    alone = [reference(c) for c in cfgs]
    gpt = train.GPT

    def nudged(cfg):
        m = gpt(cfg)
        with torch.no_grad():
            w = m.transformer.h[0].attn.c_attn.weight
            w.copy_(torch.nextafter(w, torch.full_like(w, math.inf)))
        return m
    monkeypatch.setattr(train, "GPT", nudged)
    for k, c in enumerate(cfgs):
        control = reference(c)
        drift = max(rel(got[k]["losses"][s], alone[k]["losses"][s]) for s in alone[k]["losses"])
        noise = max(rel(control["losses"][s], alone[k]["losses"][s]) for s in alone[k]["losses"])
        print(f"lr {c['learning_rate']}: pack vs alone {drift:.3g}, alone vs alone with a 1-ulp nudge {noise:.3g}")
        assert drift < max(TOL, 10 * noise), (drift, noise)  # (measured here: noise 3e-5 and 3e-4 > TOL)


def test_adamw_step_matches_torch():
    """The pack's AdamW arithmetic against torch.optim.AdamW (single-tensor path) on the same
    gradients: exact on CPU (measured), for several steps with decay, clipping off."""
    torch.manual_seed(0)
    ps = [torch.randn(5, 7) for _ in range(3)]
    hp = [(1e-2, 0.1, 1e-8, 0.9, 0.95), (3e-3, 0.0, 1e-6, 0.8, 0.99), (5e-2, 0.3, 1e-8, 0.95, 0.999)]
    grads = [[torch.randn(5, 7) for _ in range(3)] for _ in range(4)]
    refs = []
    for k in range(3):
        p = torch.nn.Parameter(ps[k].clone())
        lr, wd, eps, b1, b2 = hp[k]
        opt = torch.optim.AdamW([p], lr=lr, weight_decay=wd, eps=eps, betas=(b1, b2), foreach=False)
        for g in grads:
            p.grad = g[k].clone()
            opt.step()
        refs.append(p.detach())
    p, m1, m2 = torch.stack(ps), torch.zeros(3, 5, 7), torch.zeros(3, 5, 7)
    for i, g in enumerate(grads):
        p, m1, m2 = pack.adamw_step(p, torch.stack(g), m1, m2, *[[h[j] for h in hp] for j in range(5)], [i + 1] * 3)
    got = p
    for k in range(3):
        assert torch.equal(got[k], refs[k]), (got[k] - refs[k]).abs().max()


def test_diverging_member_leaves_others_bitwise(char_data):
    cfgs = points(char_data, "completep", True)[:3]
    cfgs = [dict(c, max_iters=30) for c in cfgs]
    huge = dict(cfgs[0], learning_rate=1e6, seed=9, grad_clip=1.0)
    with_it = pack.run_pack(cfgs[:2] + [huge] + cfgs[2:])
    without = pack.run_pack(cfgs)
    assert with_it[2]["status"] == "diverged" and with_it[2]["diverged_at"] is not None
    print(f"diverged at step {with_it[2]['diverged_at']}")
    alone = reference(huge)  # train.py stops at the same step
    assert alone["status"] == "diverged" and alone["diverged_at"] == with_it[2]["diverged_at"]
    assert with_it[2]["losses"] == pytest.approx(alone["losses"], rel=TOL)
    for a, b in zip(with_it[:2] + with_it[3:], without):
        assert a["status"] == b["status"] == "done"
        assert a["losses"] == b["losses"] and a["val"] == b["val"]  # floats compared exactly
        assert all(torch.equal(a["params"][n], b["params"][n]) for n in b["params"])
    # the frozen member stayed finite at its last good parameters
    assert all(torch.isfinite(t).all() for t in with_it[2]["params"].values())


def test_forward_multipliers_are_keyed_apart(char_data):
    a = config(char_data, "--parameterization=mup")[0]
    for k, v in (("output_mult", 2.0), ("input_mult", 2.0), ("attn_mult", 2.0), ("n_embd", 64),
                 ("module_hparams", {"residual": {"attn": 0.5}})):
        assert pack.pack_key(a) != pack.pack_key(dict(a, **{k: v})), k
    for k, v in (("learning_rate", 1.0), ("seed", 5), ("init_std", 0.1), ("eps", 1e-6), ("beta1", 0.8),
                 ("weight_decay", 0.0), ("grad_clip", 0.0), ("module_hparams", {"attn_qkv": {"lr": 2.0}}), ("out_dir", "x")):
        assert pack.pack_key(a) == pack.pack_key(dict(a, **{k: v})), k
    with pytest.raises(runs.UserError, match="cannot share a pack"):
        pack.run_pack([a, dict(a, output_mult=2.0)])

"""The coordinate check as assertions (docs/parameterization.md section 5), on tiny models and synthetic
tokens: completep and depth_mup are depth-flat and mup is not; mup is width-flat and sp is not;
and a multiplier left out shows up as a failed check."""
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import coord_check as cc  # noqa: E402
from model import GPT  # noqa: E402

VOCAB = 48
# tiny settings, picked so the verdicts hold with margin over seeds 0..4 (largest |slope| of a
# flat parameterization after step 1: 0.09 depth, 0.11 width; growing ones >= 0.75 at step 4)
DEPTH = dict(width=32, head_size=16, batch=4, seq_len=32)
WIDTH = dict(depth=2, head_size=16, batch=8, seq_len=32)


@pytest.fixture(scope="module")
def tokens():
    """Char-like synthetic tokens: a few frequent symbols and many rare ones."""
    rng = np.random.default_rng(0)
    p = np.r_[np.full(8, 8.0), np.ones(VOCAB - 8)]
    return rng.choice(VOCAB, size=20_000, p=p / p.sum()).astype(np.int64)


@pytest.fixture(scope="module")
def depth_rows(tokens):
    return cc.sweep("depth", ["mup", "depth_mup", "completep"], [2, 4, 8, 16], tokens, VOCAB,
                    seeds=[0], steps=4, lr=1e-3, log=lambda m: None, **DEPTH)


def verdict_of(rows, sweep_kind):
    return {v["param"]: v for v in cc.verdicts(rows, sweep_kind)}


def test_depth_check_separates(depth_rows):
    v = verdict_of(depth_rows, "depth")
    for p in ("completep", "depth_mup"):
        assert v[p]["verdict"] == "flat", (p, v[p]["slopes"])
    assert v["mup"]["verdict"] == "grows", v["mup"]["slopes"]
    assert all(x["ok"] for x in v.values())
    # at initialization completep's residual shrinks like L^(-1/2) (sum of 2L random branches
    # times 1/m_L), mup's grows like L^(1/2); that is why step 1 is excluded from the verdict
    assert v["completep"]["slopes"][1] < -0.03
    assert v["mup"]["slopes"][1] > 0.2


def test_depth_check_separates_with_the_modern_block(tokens):
    """RMSNorm, QK-norm, RoPE, SwiGLU: the same verdicts (seeds 0..2: mup's last-step slope
    0.52-0.74, the flat ones within 0.11)."""
    rows = cc.sweep("depth", ["mup", "depth_mup", "completep"], [2, 4, 8, 16], tokens, VOCAB,
                    seeds=[0], steps=4, lr=1e-3, log=lambda m: None, block="modern", **DEPTH)
    v = verdict_of(rows, "depth")
    for p in ("completep", "depth_mup"):
        assert v[p]["verdict"] == "flat", (p, v[p]["slopes"])
    assert v["mup"]["verdict"] == "grows", v["mup"]["slopes"]


def test_width_check_separates(tokens):
    rows = cc.sweep("width", ["sp", "mup"], [32, 64, 128, 256], tokens, VOCAB, seeds=[0, 1],
                    steps=4, lr=1e-2, log=lambda m: None, **WIDTH)
    v = verdict_of(rows, "width")
    assert v["mup"]["verdict"] == "flat", v["mup"]["slopes"]
    assert v["sp"]["verdict"] == "grows", v["sp"]["slopes"]


def test_missing_residual_multiplier_fails_depth_check(tokens, monkeypatch):
    """CompleteP without its 1/m_L on the branches is muP with a smaller LR: it must fail."""
    def gpt_without_mult(cfg):
        model = GPT(cfg)
        for block in model.transformer.h:
            block.residual_mult = 1.0
        return model
    monkeypatch.setattr(cc, "GPT", gpt_without_mult)
    rows = cc.sweep("depth", ["completep"], [2, 4, 8, 16], tokens, VOCAB, seeds=[0], steps=4,
                    lr=1e-3, log=lambda m: None, **DEPTH)
    v = verdict_of(rows, "depth")["completep"]
    assert v["verdict"] != "flat" and not v["ok"], v["slopes"]


def test_hooks_record_what_the_model_computes(tokens):
    """Last-block residual = GPT.forward's return_hidden; branch outputs are taken before the
    multiplier; hooks still fire through a DDP-style `.module` wrapper."""
    cfg = cc.model_config("completep", "depth", 8, 32, 2, 16, 2, VOCAB, 16)
    torch.manual_seed(0)
    model = GPT(cfg)

    class Wrapper(torch.nn.Module):  # what DDP looks like from outside
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *a, **k):
            return self.module(*a, **k)
    wrapped = Wrapper(model)
    rec = cc.Recorder(wrapped)
    x = torch.as_tensor(tokens[:2 * 16].reshape(2, 16))
    rec.enabled = True
    with torch.no_grad():
        _, _, hidden = wrapped(x, return_hidden=True)
    assert rec.stats[(7, "resid_abs")] == pytest.approx(hidden.abs().mean().item(), rel=1e-6)
    assert rec.stats[(7, "resid_delta_abs")] == 0.0  # first recorded forward is the reference
    # the attention branch of block 3 recomputed by hand from its input
    inp = {}
    h = model.transformer.h[3].register_forward_pre_hook(lambda m, a: inp.setdefault("x", a[0]))
    with torch.no_grad():
        model(x)
        b = model.transformer.h[3]
        branch = b.attn(b.ln_1(inp["x"]))
    h.remove()
    assert b.residual_mult == pytest.approx(0.25)
    assert rec.stats[(3, "attn_abs")] == pytest.approx(branch.abs().mean().item(), rel=1e-5)
    rec.remove()


def test_attention_logits_match_explicit_computation():
    cfg = cc.model_config("mup", "width", 32, 32, 1, 16, 32, VOCAB, 8)
    torch.manual_seed(0)
    model = GPT(cfg)
    rec = cc.Recorder(model, attn_positions=8)  # all 8 positions: exact
    x = torch.randint(VOCAB, (1, 8))
    rec.enabled = True
    with torch.no_grad():
        model(x)
        a = model.transformer.h[0].attn
        q, k, _ = a.c_attn(model.transformer.h[0].ln_1(model.transformer.wte(x) + model.transformer.wpe(torch.arange(8)))).split(32, 2)
        q, k = (t.view(1, 8, 2, 16).transpose(1, 2) for t in (q, k))
        logits = q @ k.transpose(-2, -1) / 16  # muP: q.k / d_head
        want = logits.abs()[..., torch.ones(8, 8).tril().bool()].mean().item()
    assert rec.stats[(0, "attn_logit_abs")] == pytest.approx(want, rel=1e-5)


def test_attention_logits_of_the_modern_block_are_after_qk_norm_and_rope():
    cfg = cc.model_config("mup", "width", 32, 32, 1, 16, 32, VOCAB, 8, block="modern")
    torch.manual_seed(0)
    model = GPT(cfg)
    attn = model.transformer.h[0].attn
    with torch.no_grad():  # gains away from 1, so that a probe skipping the QK-norm differs
        attn.q_norm.weight.uniform_(0.5, 2.0)
        attn.k_norm.weight.uniform_(0.5, 2.0)
    rec = cc.Recorder(model, attn_positions=8)
    x = torch.randint(VOCAB, (1, 8))
    rec.enabled = True
    with torch.no_grad():
        model(x)
        h = model.transformer.h[0].ln_1(model.transformer.wte(x))
        q, k = (lin(h).view(1, 8, 2, 16) for lin in (attn.c_q, attn.c_k))
        rms = lambda t, g: t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6) * g  # noqa: E731
        q, k = rms(q, attn.q_norm.weight).transpose(1, 2), rms(k, attn.k_norm.weight).transpose(1, 2)
        # RoPE, rotate-half form: channel i pairs with i + 8, angle pos * 10000^(-i/8)
        ang = torch.arange(8.0)[:, None] * 10000.0 ** (-torch.arange(8.0) / 8)
        cos, sin = torch.cat((ang.cos(), ang.cos()), -1), torch.cat((ang.sin(), ang.sin()), -1)
        rot = lambda t: t * cos + torch.cat((-t[..., 8:], t[..., :8]), -1) * sin  # noqa: E731
        logits = rot(q) @ rot(k).transpose(-2, -1) / 16  # muP: q.k / d_head
        want = logits.abs()[..., torch.ones(8, 8).tril().bool()].mean().item()
    assert rec.stats[(0, "attn_logit_abs")] == pytest.approx(want, rel=1e-5)


def test_classify():
    assert cc.classify({1: -0.5, 2: 0.1, 3: -0.14}) == "flat"
    assert cc.classify({1: 0.5, 2: 0.3, 3: 0.9}) == "grows"
    assert cc.classify({1: 0.0, 2: 0.3, 3: 0.3}) == "neither"
    assert cc.loglog_slope([1, 2, 4], [3, 6, 12]) == pytest.approx(1.0)
    rows = [dict(param="mup", seed=s, size=n) for s, n in ((0, 2), (0, 4), (1, 2))]
    assert cc.complete_runs(rows) == rows[:2]  # seed 1 misses size 4: dropped


@pytest.mark.slow
def test_cli_end_to_end_and_errors(tmp_path, tokens):
    from dataloader import write_tokens
    data = str(tmp_path / "train.bin")
    write_tokens(data, tokens[:5000].astype(np.uint16), vocab_size=VOCAB)
    out = tmp_path / "out"
    vs = cc.main(["--sweep", "depth", "--params", "mup,completep", "--sizes", "2,4", "--width", "32",
                  "--head_size", "16", "--batch", "2", "--seq_len", "16", "--steps", "2",
                  "--seeds", "1", "--data", data, "--out_dir", str(out)])
    assert {v["param"] for v in vs} == {"mup", "completep"}
    for f in ("depth.csv", "depth.png", "depth_verdict.md"):
        assert (out / f).exists()
    rows = cc.read_rows(str(out / "depth.csv"))
    assert {r["quantity"] for r in rows} == set(cc.LAYER_QUANTITIES) | {"logits_abs", "loss"}
    with pytest.raises(cc.UserError, match="increasing"):
        cc.main(["--sweep", "depth", "--sizes", "4,2", "--data", data])
    with pytest.raises(cc.UserError, match="unknown parameterization"):
        cc.main(["--sweep", "width", "--params", "mup,xp", "--data", data])
    with pytest.raises(cc.UserError, match="file not found"):
        cc.main(["--sweep", "depth", "--small", "--data", str(tmp_path / "none.bin")])


@pytest.mark.slow
def test_hooks_survive_torch_compile():
    """The Recorder finds the modules under torch.compile's wrapper and its hooks still fire
    (the eager backend: dynamo's tracing, without a C++ compiler)."""
    cfg = cc.model_config("completep", "depth", 4, 32, 2, 16, 2, VOCAB, 16)
    torch.manual_seed(0)
    model = GPT(cfg)
    compiled = torch.compile(model, backend="eager")
    rec = cc.Recorder(compiled)
    x = torch.randint(VOCAB, (2, 16))
    rec.enabled = True
    with torch.no_grad():
        _, _, hidden = compiled(x, return_hidden=True)
    assert len(rec.stats) == 4 * len(cc.LAYER_QUANTITIES)
    assert rec.stats[(3, "resid_abs")] == pytest.approx(hidden.abs().mean().item(), rel=1e-6)
    rec.remove()

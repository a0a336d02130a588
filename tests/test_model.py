"""Every cell of docs/parameterization.md section 2 against the built model and optimizer.

Expected values are written from the reference's formulas here, by parameter name, not read from
model.py's table, so a rule dropped or mistyped there fails here."""
import os
import math
import re

import pytest
import torch
import torch.nn.functional as F

from model import GPT, GPTConfig

SIGMA, ETA, LAMBDA, EPS = 0.02, 1e-3, 0.1, 1e-8
BASE_N, BASE_L = 32, 2
N, L, HEADS = 128, 8, 4  # m_N = 4, m_L = 4, head size 32

# (parameterization, depth_alpha given, alpha the reference implies)
CASES = [("sp", None, None), ("mup", None, None), ("depth_mup", None, 0.5),
         ("completep", None, 1.0), ("depth_mup", 0.75, 0.75), ("completep", 0.75, 0.75)]


def build(param, alpha=None, tied=True, n=N, l=L, input_mult=1.0, output_mult=1.0, seed=0, attn_mult=1.0):
    torch.manual_seed(seed)
    cfg = GPTConfig(block_size=16, vocab_size=97, n_layer=l, n_head=HEADS, n_embd=n, bias=True,
                    parameterization=param, base_n_embd=BASE_N, base_n_layer=BASE_L,
                    depth_alpha=alpha, init_std=SIGMA, input_mult=input_mult,
                    output_mult=output_mult, tie_embeddings=tied, attn_mult=attn_mult)
    return GPT(cfg)


def expected(name, param, alpha, n=N, l=L):
    """(init: std | 'ones' | 'zeros', lr, wd, eps) of docs/parameterization.md section 2 for a parameter name."""
    m_N, m_L = n / BASE_N, l / BASE_L
    width = param != "sp"
    depth = alpha is not None
    a = alpha if depth else 0.0
    wn = m_N if width else 1.0
    dl = m_L ** (a - 1) if depth else 1.0
    inblock_eps = EPS / wn * (m_L ** -a if depth else 1.0)
    if name in ("transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight"):
        return SIGMA, ETA, LAMBDA, EPS
    if name.startswith("transformer.ln_f."):
        return ("ones" if name.endswith("weight") else "zeros"), ETA, 0.0, EPS
    if re.search(r"\.ln_[12]\.", name):
        return ("ones" if name.endswith("weight") else "zeros"), ETA * dl, 0.0, inblock_eps
    if name.endswith(".bias"):
        return "zeros", ETA * dl, 0.0, inblock_eps
    assert re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", name), name
    if param == "sp":
        std = SIGMA / math.sqrt(2 * l) if ".c_proj." in name else SIGMA
        return std, ETA, LAMBDA, EPS
    return SIGMA / math.sqrt(m_N), ETA / m_N * dl, LAMBDA * m_N, inblock_eps


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("param,alpha_cfg,alpha", CASES)
def test_init_and_optimizer_groups_match_spec(param, alpha_cfg, alpha, tied):
    model = build(param, alpha_cfg, tied)
    opt = model.configure_optimizers(LAMBDA, ETA, (0.9, 0.95), EPS)
    group_of = {id(t): g for g in opt.param_groups for t in g["params"]}
    names = dict(model.named_parameters())
    assert ("lm_head.weight" in names) == (not tied)
    if tied:
        assert model.lm_head.weight is model.transformer.wte.weight
    assert len(group_of) == len(names), "groups must cover every parameter"
    for name, t in names.items():
        init, lr, wd, eps = expected(name, param, alpha)
        g = group_of[id(t)]
        assert g["lr"] == pytest.approx(lr, rel=1e-12), name
        assert g["lr"] == pytest.approx(ETA * g["lr_mult"], rel=1e-12), name
        assert g["weight_decay"] == pytest.approx(wd, rel=1e-12, abs=0), name
        assert g["eps"] == pytest.approx(eps, rel=1e-12), name
        if init == "ones":
            assert torch.all(t == 1), name
        elif init == "zeros":
            assert torch.all(t == 0), name
        else:
            assert t.mean().abs() < 0.1 * init, name
            assert t.std().item() == pytest.approx(init, rel=0.05), name


@pytest.mark.parametrize("param,alpha_cfg,alpha", CASES)
def test_hidden_shrink_per_step(param, alpha_cfg, alpha):
    """lr * wd of hidden weights is eta*lambda*m_L^(alpha-1): width-free, and depth-free for
    completep (docs/parameterization.md section 3)."""
    model = build(param, alpha_cfg)
    opt = model.configure_optimizers(LAMBDA, ETA, (0.9, 0.95), EPS)
    g = next(g for g in opt.param_groups if "transformer.h.0.mlp.c_fc.weight" in g["names"])
    if param == "sp":
        assert g["lr"] * g["weight_decay"] == pytest.approx(ETA * LAMBDA)
    else:
        m_L = L / BASE_L
        want = ETA * LAMBDA * (m_L ** (alpha - 1) if alpha is not None else 1.0)
        assert g["lr"] * g["weight_decay"] == pytest.approx(want)
    if param == "completep" and alpha_cfg is None:
        assert g["lr"] * g["weight_decay"] == pytest.approx(ETA * LAMBDA)


def manual_attention(attn, x, scale):
    B, T, C = x.shape
    q, k, v = attn.c_attn(x).split(C, dim=2)
    hs = C // attn.n_head
    q, k, v = (z.view(B, T, attn.n_head, hs).transpose(1, 2) for z in (q, k, v))
    att = (q @ k.transpose(-2, -1)) * scale
    att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
    return attn.c_proj(y)


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("param,alpha_cfg,alpha", CASES)
def test_forward_multipliers_match_spec(param, alpha_cfg, alpha, tied):
    """Input, residual, attention and logit multipliers, recomputed by hand from the modules."""
    in_mult, out_mult, attn_mult = (1.0, 1.0, 1.0) if param == "sp" else (2.0, 3.0, 1.5)
    model = build(param, alpha_cfg, tied, input_mult=in_mult, output_mult=out_mult, attn_mult=attn_mult).double()
    torch.manual_seed(1)
    idx = torch.randint(0, 97, (2, 16))
    m_N, m_L = N / BASE_N, L / BASE_L
    res = m_L ** -alpha if alpha is not None else 1.0
    scale = attn_mult / (N // HEADS) if param != "sp" else 1 / math.sqrt(N // HEADS)
    logit_mult = out_mult / m_N if param != "sp" else 1.0
    tr = model.transformer
    with torch.no_grad():
        x = in_mult * (tr.wte(idx) + tr.wpe(torch.arange(16)))
        for block in tr.h:
            x = x + res * manual_attention(block.attn, block.ln_1(x), scale)
            x = x + res * block.mlp(block.ln_2(x))
        want = logit_mult * (tr.ln_f(x) @ model.lm_head.weight.T)
        logits, _, hidden = model(idx, return_hidden=True)
    torch.testing.assert_close(hidden, x, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(logits, want, rtol=1e-10, atol=1e-12)


def test_base_shape_mup_family_identical():
    """At m_N = m_L = 1, mup, depth_mup and completep are the same model."""
    idx = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(0))
    ref = None
    for param in ("mup", "depth_mup", "completep"):
        model = build(param, n=BASE_N, l=BASE_L, input_mult=1.5, output_mult=0.5, seed=3)
        opt = model.configure_optimizers(LAMBDA, ETA, (0.9, 0.95), EPS)
        groups = [(g["role"], g["lr"], g["weight_decay"], g["eps"], g["names"]) for g in opt.param_groups]
        state = {k: v.clone() for k, v in model.state_dict().items()}
        logits, _ = model(idx)
        if ref is None:
            ref = (groups, state, logits)
            continue
        assert groups == ref[0]
        assert state.keys() == ref[1].keys()
        assert all(torch.equal(state[k], ref[1][k]) for k in state)
        assert torch.equal(logits, ref[2])


def test_sp_base_shape_differs_from_mup_only_where_spec_says():
    """Sanity of the control: at the base shape SP still uses 1/sqrt(d_head) attention."""
    idx = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(0))
    a, _ = build("sp", n=BASE_N, l=BASE_L, seed=3)(idx)
    b, _ = build("mup", n=BASE_N, l=BASE_L, seed=3)(idx)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("param", ["mup", "completep"])
def test_attn_mult_sqrt_d_head_is_sp_attention(param):
    """With attn_mult = sqrt(d_head) the muP family's attn_mult * q.k / d_head is SP's
    q.k / sqrt(d_head) on the same weights (the multiplier itself: test_forward_multipliers_match_spec)."""
    d_head = N // HEADS
    x = torch.randn(2, 16, N, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        as_sp = build(param, attn_mult=math.sqrt(d_head)).double().transformer.h[1].attn
        sp = build("sp").double().transformer.h[1].attn
        sp.load_state_dict(as_sp.state_dict())
        torch.testing.assert_close(as_sp(x), sp(x))


@pytest.mark.parametrize("param", ["sp", "completep"])
def test_causality(param):
    model = build(param, l=2, n=64).eval()
    idx = torch.randint(0, 97, (1, 16), generator=torch.Generator().manual_seed(0))
    t = 9
    idx2 = idx.clone()
    idx2[0, t + 1:] = (idx2[0, t + 1:] + 1) % 97
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    torch.testing.assert_close(a[:, :t + 1], b[:, :t + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


@pytest.mark.parametrize("tied", [True, False])
def test_generation_uses_training_logits(monkeypatch, tied):
    """The distribution generate() samples from is softmax of the training forward's last
    position, including the output_mult / m_N logit multiplier."""
    model = build("completep", tied=tied, l=2, n=128, output_mult=4.0).eval()
    idx = torch.randint(0, 97, (2, 7), generator=torch.Generator().manual_seed(0))
    seen = []
    real = torch.multinomial

    def spy(probs, num_samples):
        seen.append(probs.clone())
        return real(probs, num_samples)
    monkeypatch.setattr(torch, "multinomial", spy)
    out = model.generate(idx, 1, temperature=1.0)
    with torch.no_grad():
        tr = model.transformer
        _, _, hidden = model(idx, return_hidden=True)
        manual = (4.0 / (128 / BASE_N)) * (tr.ln_f(hidden[:, -1]) @ model.lm_head.weight.T)
    torch.testing.assert_close(seen[0], F.softmax(manual, dim=-1), rtol=1e-5, atol=1e-7)
    assert out.shape == (2, 8) and torch.equal(out[:, :7], idx)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(parameterization="sp", depth_alpha=0.5), "depth_alpha"),
    (dict(parameterization="mup", depth_alpha=1.0), "depth_alpha"),
    (dict(parameterization="completep", depth_alpha=1.2), "[0.5, 1]"),
    (dict(parameterization="depth_mup", depth_alpha=0.4), "[0.5, 1]"),
    (dict(parameterization="sp", output_mult=2.0), "output_mult"),
    (dict(parameterization="sp", input_mult=2.0), "input_mult"),
    (dict(parameterization="sp", attn_mult=2.0), "attn_mult"),
    (dict(attn_mult=0.0), "attn_mult=0.0 must be a positive finite number"),
    (dict(attn_mult=float("inf")), "attn_mult=inf must be a positive finite number"),
    (dict(n_embd=100, n_head=3), "divisible"),
    (dict(base_n_embd=0), "positive"),
    (dict(base_n_layer=-2), "positive"),
    (dict(parameterization="mu_p"), "unknown parameterization"),
    (dict(n_layer=0), "positive"),
])
def test_invalid_settings_raise_one_line(kwargs, needle):
    with pytest.raises(ValueError) as e:
        GPTConfig(**kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_gptconfig_defaults_are_train_py_defaults():
    """GPT(GPTConfig()) must be the model `python train.py` builds: every GPTConfig field that
    train.py sets has the same default in both (vocab_size comes from the data)."""
    import ast
    import dataclasses
    tree = ast.parse(open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                       "train.py")).read())
    train = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
            try:
                train[target.id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    fields = {f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default
              for f in dataclasses.fields(GPTConfig) if f.name != "vocab_size"}
    missing = [k for k in fields if k not in train]
    assert not missing, f"GPTConfig fields without a train.py default: {missing}"
    assert {k: train[k] for k in fields} == fields


def assert_cache_equals_recomputation(model, monkeypatch, vocab=97):
    """20 sampled tokens after a 5-token prompt (past a block_size of 16), with and without the
    KV cache: the same tokens, the same distributions at every step. Returns the prompt."""
    idx = torch.randint(0, vocab, (2, 5), generator=torch.Generator().manual_seed(1))
    seen = {True: [], False: []}
    real = torch.multinomial
    mode = {"cache": True}

    def spy(probs, num_samples):
        seen[mode["cache"]].append(probs.clone())
        return real(probs, num_samples)
    monkeypatch.setattr(torch, "multinomial", spy)
    outs = {}
    for cache in (True, False):
        mode["cache"] = cache
        torch.manual_seed(0)
        outs[cache] = model.generate(idx, 20, temperature=1.0, use_cache=cache)  # 5 + 20 > 16
    assert torch.equal(outs[True], outs[False]) and outs[True].shape == (2, 25)
    assert len(seen[True]) == len(seen[False]) == 20
    for a, b in zip(seen[True], seen[False]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    monkeypatch.setattr(torch, "multinomial", real)
    return idx


@pytest.mark.parametrize("param", ["sp", "completep"])
def test_kv_cache_generation_equals_full_recomputation(monkeypatch, param):
    """Generation with the KV cache sees the same distributions as running the whole window
    every step, before and after the sequence outgrows block_size (16 here)."""
    model = build(param, tied=False, l=3, n=64).eval()
    idx = assert_cache_equals_recomputation(model, monkeypatch)
    calls = []
    real_forward = type(model).forward

    def count(self, idx, *a, **k):
        calls.append(idx.size(1))
        return real_forward(self, idx, *a, **k)
    monkeypatch.setattr(type(model), "forward", count)
    model.generate(idx, 4, temperature=0.0)
    assert calls == [5, 1, 1, 1]  # the prompt once, then one position a step

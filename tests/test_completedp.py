"""Complete(d)P (Mlodozeniec et al., arXiv 2512.22382) and per-module hyperparameters.

Expected values are written here from the rules, by parameter name, never read from model.py:
every cell of 'completedp' at m_N = 4, m_L = 4, m_B = 2, m_D = 4; completedp == completep at
the base shape; each module multiplier changes exactly what it names; the batch/duration rule
keeps the AdamW timescale and the Adam half-lives as fractions of the run; empty
module_hparams trains bit for bit like a plain AdamW built here; and the command line."""
import copy
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, run_script
from model import GPT, GPTConfig
from test_model import manual_attention

SIGMA, ETA, LAMBDA, EPS, BETAS = 0.02, 1e-3, 0.1, 1e-8, (0.9, 0.95)
BASE_N, BASE_L, HEADS, VOCAB, T = 32, 2, 4, 97, 16


def build(param="completedp", n=128, l=8, alpha=None, tied=False, mh=None, output_mult=1.0, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(block_size=T, vocab_size=VOCAB, n_layer=l, n_head=HEADS, n_embd=n, bias=True,
                         parameterization=param, base_n_embd=BASE_N, base_n_layer=BASE_L, depth_alpha=alpha,
                         init_std=SIGMA, output_mult=output_mult, tie_embeddings=tied, module_hparams=mh or {}))


def groups_by_name(model, **kw):
    opt = model.configure_optimizers(LAMBDA, ETA, BETAS, EPS, **kw)
    return {n: g for g in opt.param_groups for n in g["names"]}


# --- every cell at m_N = 4, m_L = 4, m_B = 2, m_D = 4 -------------------------------------

def completedp_expected(name, alpha, n=128, l=8, m_B=2.0, m_D=4.0):
    """(init std | 'ones' | 'zeros', lr, wd, eps, beta1, beta2) of Complete(d)P for a name."""
    m_N, m_L = n / BASE_N, l / BASE_L
    s = math.sqrt(m_B / m_D)                                   # LR and WD x sqrt(m_B/m_D)
    e = EPS * math.sqrt(m_D / m_B)                             # eps x sqrt(m_D/m_B)
    betas = tuple(1 - (1 - b) * m_B / m_D for b in BETAS)      # 1 - beta x m_B/m_D
    inblock_eps = e / m_N * m_L ** -alpha
    if name in ("transformer.wte.weight", "transformer.wpe.weight"):
        return (SIGMA, ETA * s, LAMBDA * s, e / m_N) + betas    # input embedding eps / m_N
    if name == "lm_head.weight":                                # the logits' 1/m_N moved here
        return (SIGMA / m_N, ETA / m_N * s, LAMBDA * m_N * s, e) + betas
    if name.startswith("transformer.ln_f."):
        return ("ones" if name.endswith("weight") else "zeros", ETA * s, 0.0, e) + betas
    if re.search(r"\.ln_[12]\.", name) or name.endswith(".bias"):
        init = "ones" if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") else "zeros"
        return (init, ETA * m_L ** (alpha - 1) * s, 0.0, inblock_eps) + betas
    assert re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", name), name
    return (SIGMA / math.sqrt(m_N), ETA / m_N * m_L ** (alpha - 1) * s, LAMBDA * m_N * s, inblock_eps) + betas


@pytest.mark.parametrize("alpha_cfg,alpha", [(None, 1.0), (0.75, 0.75)])
def test_every_cell_of_completedp(alpha_cfg, alpha):
    model = build(alpha=alpha_cfg)
    group_of = groups_by_name(model, m_B=2.0, m_D=4.0)
    names = dict(model.named_parameters())
    assert "lm_head.weight" in names and model.lm_head.weight is not model.transformer.wte.weight
    assert set(group_of) == set(names)
    assert_cells(names, group_of, lambda name: completedp_expected(name, alpha))
    assert group_of["lm_head.weight"]["betas"] == pytest.approx((0.95, 0.975))  # 1 - 0.1 / 2, 1 - 0.05 / 2


def assert_cells(names, group_of, expected):
    """Each parameter's group against expected(name) = (init std | 'ones' | 'zeros', lr, wd, eps,
    beta1, beta2): the group's values, and the init measured from the tensor."""
    for name, t in names.items():
        init, lr, wd, eps, b1, b2 = expected(name)
        g = group_of[name]
        assert g["lr"] == pytest.approx(lr, rel=1e-12), name
        assert g["lr"] == pytest.approx(ETA * g["lr_mult"], rel=1e-12), name
        assert g["weight_decay"] == pytest.approx(wd, rel=1e-12, abs=0), name
        assert g["eps"] == pytest.approx(eps, rel=1e-12), name
        assert g["betas"][0] == pytest.approx(b1, rel=1e-12) and g["betas"][1] == pytest.approx(b2, rel=1e-12), name
        if init == "ones":
            assert torch.all(t == 1), name
        elif init == "zeros":
            assert torch.all(t == 0), name
        else:
            assert t.mean().abs() < 0.1 * init, name
            assert t.std().item() == pytest.approx(init, rel=0.05), name


@pytest.mark.parametrize("alpha_cfg,alpha", [(None, 1.0), (0.75, 0.75)])
def test_completedp_forward(alpha_cfg, alpha):
    """Residual m_L^-alpha on both branches, attention 1/d_head, input x1, and logits
    output_mult * x W^T: no 1/m_N (it lives in the unembedding's init, LR and WD)."""
    model = build(alpha=alpha_cfg, output_mult=3.0).double()
    idx = torch.randint(0, VOCAB, (2, T), generator=torch.Generator().manual_seed(1))
    res, scale = (8 / BASE_L) ** -alpha, 1 / (128 // HEADS)
    tr = model.transformer
    with torch.no_grad():
        x = tr.wte(idx) + tr.wpe(torch.arange(T))
        for block in tr.h:
            x = x + res * manual_attention(block.attn, block.ln_1(x), scale)
            x = x + res * block.mlp(block.ln_2(x))
        want = 3.0 * (tr.ln_f(x) @ model.lm_head.weight.T)
        logits, _ = model(idx)
    torch.testing.assert_close(logits, want, rtol=1e-10, atol=1e-12)


def test_completedp_refuses_tied_embeddings():
    with pytest.raises(ValueError) as e:
        GPTConfig(parameterization="completedp", tie_embeddings=True)
    assert "tie_embeddings=False" in str(e.value) and "\n" not in str(e.value)
    GPTConfig(parameterization="completedp", tie_embeddings=False, depth_alpha=0.5)  # alpha as completep


def test_batch_duration_rules_need_completedp():
    with pytest.raises(ValueError, match="completedp"):
        build("completep", n=32, l=2).configure_optimizers(LAMBDA, ETA, BETAS, EPS, m_B=2.0)


def test_completedp_equals_completep_at_the_base():
    """Base shape, batch and horizon (m_N = m_L = m_B = m_D = 1), both untied: one model."""
    idx = torch.randint(0, VOCAB, (2, T), generator=torch.Generator().manual_seed(0))
    out = []
    for param in ("completep", "completedp"):
        model = build(param, n=BASE_N, l=BASE_L, output_mult=0.5, seed=3)
        opt = model.configure_optimizers(LAMBDA, ETA, BETAS, EPS)
        groups = [(g["role"], g["lr"], g["weight_decay"], g["eps"], g["betas"], g["names"]) for g in opt.param_groups]
        out.append((groups, {k: v.clone() for k, v in model.state_dict().items()}, model(idx)[0]))
    (ga, sa, la), (gb, sb, lb) = out
    assert ga == gb
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(la, lb)


# --- per-module multipliers -----------------------------------------------------------

MODULE_PARAMS = {  # module type -> the parameter names it covers (a bias follows its module)
    "embedding": r"^transformer\.(wte|wpe)\.weight$",
    "attn_qkv": r"\.attn\.c_attn\.",
    "attn_out": r"\.attn\.c_proj\.",
    "mlp_in": r"\.mlp\.c_fc\.",
    "mlp_out": r"\.mlp\.c_proj\.",
    "block_norm": r"\.ln_[12]\.",
    "final_norm": r"^transformer\.ln_f\.",
    "unembedding": r"^lm_head\.weight$",
}
CASES = [(m, hp) for m in MODULE_PARAMS for hp in ("lr", "wd", "init_std", "eps", "beta1", "beta2")
         if not (m.endswith("_norm") and hp in ("wd", "init_std"))]  # LayerNorms: no init std, no WD


@pytest.mark.parametrize("param", ["sp", "completedp"])
@pytest.mark.parametrize("module,hp", CASES)
def test_module_multiplier_changes_exactly_what_it_names(param, module, hp):
    """x = 0.5 on one (module, hyperparameter), at m_N = 2, m_L = 2 (and m_B = 2, m_D = 4 under
    completedp): the named parameters' value changes by exactly that factor on top of the
    parameterization's, every other parameter and setting stays bit for bit."""
    x = 0.5
    bd = dict(m_B=2.0, m_D=4.0) if param == "completedp" else {}
    ref, mod = build(param, n=64, l=4), build(param, n=64, l=4, mh={module: {hp: x}})
    assert_only_named_change(ref, mod, MODULE_PARAMS[module], hp, x, bd)


def assert_only_named_change(ref, mod, pattern, hp, x, bd):
    """The parameters whose names match `pattern` have hyperparameter `hp` (or 1 - beta, or
    their init for init_std) scaled by exactly x in `mod` against `ref`; every other value and
    tensor is the same bit for bit."""
    ga, gb = groups_by_name(ref, **bd), groups_by_name(mod, **bd)
    pa, pb = dict(ref.named_parameters()), dict(mod.named_parameters())
    named = {n for n in pa if re.search(pattern, n)}
    assert named
    changed = set()
    for n in pa:
        a, b = ga[n], gb[n]
        values = {"lr": (a["lr"], b["lr"]), "wd": (a["weight_decay"], b["weight_decay"]),
                  "eps": (a["eps"], b["eps"]), "beta1": (1 - a["betas"][0], 1 - b["betas"][0]),
                  "beta2": (1 - a["betas"][1], 1 - b["betas"][1])}
        for k, (va, vb) in values.items():
            if k == hp and n in named and va != 0:  # biases and norms have no WD to scale
                assert vb == pytest.approx(x * va, rel=1e-12), (n, k)
                changed.add(n)
            else:
                assert vb == va, (n, k)
        if hp == "init_std" and n in named and pa[n].abs().sum() > 0:  # zero biases stay zero
            torch.testing.assert_close(pb[n], x * pa[n], rtol=1e-6, atol=0)
            changed.add(n)
        else:
            assert torch.equal(pa[n], pb[n]), n
    assert changed and changed <= named


def test_residual_branch_multipliers():
    """{"residual": {"attn": a}} scales only the attention branch, {"mlp": b} only the MLP one,
    on top of m_L^-alpha; no parameter or group changes."""
    model = build("completedp", n=64, l=4, mh={"residual": {"attn": 0.5, "mlp": 2.0}}).double()
    ref = build("completedp", n=64, l=4)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))
    assert [g["names"] for g in model.configure_optimizers(LAMBDA, ETA, BETAS, EPS).param_groups] == \
        [g["names"] for g in ref.configure_optimizers(LAMBDA, ETA, BETAS, EPS).param_groups]
    idx = torch.randint(0, VOCAB, (2, T), generator=torch.Generator().manual_seed(1))
    res, scale = (4 / BASE_L) ** -1.0, 1 / (64 // HEADS)
    tr = model.transformer
    with torch.no_grad():
        x = tr.wte(idx) + tr.wpe(torch.arange(T))
        for block in tr.h:
            x = x + res * 0.5 * manual_attention(block.attn, block.ln_1(x), scale)
            x = x + res * 2.0 * block.mlp(block.ln_2(x))
        want = tr.ln_f(x) @ model.lm_head.weight.T
        logits, _ = model(idx)
    torch.testing.assert_close(logits, want, rtol=1e-10, atol=1e-12)


def test_depth_profile_is_interpolated_to_a_deeper_model():
    """A profile has one value per proxy layer (base_n_layer = 2: positions 0 and 1); layer j
    of an L-layer model sits at j / (L - 1) and gets the linear interpolation there."""
    prof = [1.0, 0.5]
    want = {2: [1.0, 0.5], 5: [1.0, 0.875, 0.75, 0.625, 0.5]}  # 5 layers: positions 0, 1/4, .., 1
    for l, mults in want.items():
        mh = {"mlp_out": {"lr": prof, "init_std": prof}, "residual": {"mlp": prof}}
        ref, mod = build("completep", n=64, l=l), build("completep", n=64, l=l, mh=mh)
        ga, gb = groups_by_name(ref), groups_by_name(mod)
        pa, pb = dict(ref.named_parameters()), dict(mod.named_parameters())
        for n in pa:
            m = re.match(r"transformer\.h\.(\d+)\.mlp\.c_proj\.", n)
            f = mults[int(m.group(1))] if m else 1.0
            assert gb[n]["lr"] == pytest.approx(f * ga[n]["lr"], rel=1e-12), n
            assert (gb[n]["weight_decay"], gb[n]["eps"], gb[n]["betas"]) == \
                (ga[n]["weight_decay"], ga[n]["eps"], ga[n]["betas"]), n
            if m and n.endswith("weight"):
                torch.testing.assert_close(pb[n], f * pa[n], rtol=1e-6, atol=0)
            else:
                assert torch.equal(pa[n], pb[n]), n
        assert [b.mlp_mult for b in mod.transformer.h] == pytest.approx(mults)
        assert [b.attn_mult for b in mod.transformer.h] == [1.0] * l


@pytest.mark.parametrize("mh,needle", [
    ({"atn_qkv": {"lr": 2}}, "did you mean 'attn_qkv'"),
    ({"attn_qkv": {"learning_rate": 2}}, "unknown hyperparameter"),
    ({"residual": {"attention": 2}}, "did you mean 'attn'"),
    ({"attn_qkv": {"lr": 0}}, "positive"),
    ({"attn_qkv": {"lr": -1.0}}, "positive"),
    ({"attn_qkv": {"lr": [1.0, 2.0, 3.0]}}, "one value per proxy layer"),
    ({"embedding": {"lr": [1.0, 2.0]}}, "block module"),
    ({"final_norm": {"init_std": 2.0}}, "norm gains start at 1"),
    ({"unembedding": {"lr": 2.0}}, "tie_embeddings=False"),
    ({"attn_qkv": 2.0}, "must be a dict"),
])
def test_bad_module_hparams_raise_one_line(mh, needle):
    with pytest.raises(ValueError) as e:
        GPTConfig(tie_embeddings=True, module_hparams=mh)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("mh,bd", [({"mlp_in": {"beta2": 30.0}}, {}), ({}, dict(m_B=2.0, m_D=0.01))])
def test_betas_outside_unit_interval_raise_one_line(mh, bd):
    model = build("completedp", n=32, l=2, mh=mh)
    with pytest.raises(ValueError, match=r"outside \[0, 1\)") as e:
        model.configure_optimizers(LAMBDA, ETA, BETAS, EPS, **bd)
    assert "\n" not in str(e.value)


# --- the batch/duration rule keeps the run's timescales ----------------------------------

def test_batch_duration_rule_keeps_adamw_timescale_and_half_lives():
    """From the resolved groups at (B, D), (2B, D) and (B, 4D) relative to (B0, D0) = (B, D):
    the AdamW timescale B / (lr * wd * D) is unchanged, and so is the Adam moments' memory as a
    fraction of the run. (1 - beta) * steps is kept exactly; the exact half-life in steps,
    ln(0.5) / ln(beta), is linear in 1 / (1 - beta) only to first order in 1 - beta, so its
    fraction of the run agrees to within about 1 - beta (here <= 10%, the beta1 of the 2B run)."""
    B0, D0 = 8, 8 * T * 100  # 100 steps of 8 sequences of T tokens
    model = build("completedp", n=64, l=4)

    def resolved(B, D):
        opt = model.configure_optimizers(LAMBDA, ETA, BETAS, EPS, m_B=B / B0, m_D=D / D0)
        steps = D / (B * T)
        out = []
        for g in opt.param_groups:
            tau = B / (g["lr"] * g["weight_decay"] * D) if g["weight_decay"] else None
            out.append(dict(tau=tau, one_minus=[(1 - b) * steps for b in g["betas"]],
                            half=[math.log(0.5) / math.log(b) / steps for b in g["betas"]]))
        return out

    base = resolved(B0, D0)
    assert any(g["tau"] for g in base)
    for B, D in ((2 * B0, D0), (B0, 4 * D0)):
        for g0, g in zip(base, resolved(B, D)):
            if g0["tau"] is not None:
                assert g["tau"] == pytest.approx(g0["tau"], rel=1e-12)
            assert g["one_minus"] == pytest.approx(g0["one_minus"], rel=1e-12)
            assert g["half"] == pytest.approx(g0["half"], rel=0.06)
    # the control: without the rule (the same groups at m_B = m_D = 1) the timescale moves
    ctl = model.configure_optimizers(LAMBDA, ETA, BETAS, EPS).param_groups
    g = next(g for g in ctl if g["weight_decay"])
    assert 2 * B0 / (g["lr"] * g["weight_decay"] * D0) == pytest.approx(2 * next(t["tau"] for t in base if t["tau"]))


# --- empty module_hparams: bit for bit a plain AdamW built here ---------------------------

def _reference(name, param, m_N, m_L):
    """(init std | None, lr_mult, wd_mult, eps_mult) from the rules (m_N, m_L powers of 2)."""
    width, alpha = param != "sp", {"sp": 0.0, "mup": 0.0, "completep": 1.0, "completedp": 1.0}[param]
    w, u = (m_N if width else 1.0), (m_N if param == "completedp" else 1.0)
    d = m_L ** (alpha - 1.0) if alpha else 1.0
    inblock_eps = (m_L ** -alpha if alpha else 1.0) / w
    if name in ("transformer.wte.weight", "transformer.wpe.weight"):
        return SIGMA, 1.0, 1.0, 1.0 / u
    if name == "lm_head.weight":
        return SIGMA / u, 1.0 / u, u, 1.0
    if name.startswith("transformer.ln_f."):
        return None, 1.0, 0.0, 1.0
    if re.search(r"\.ln_[12]\.", name):
        return None, d, 0.0, inblock_eps
    if name.endswith(".bias"):
        return 0.0, d, 0.0, inblock_eps
    if param == "sp":
        return (SIGMA / math.sqrt(2 * 4) if ".c_proj." in name else SIGMA), 1.0, 1.0, 1.0
    return SIGMA / math.sqrt(w), d / w, w, inblock_eps


ROLE_OF = [("embedding", r"^transformer\.(wte|wpe)\."), ("hidden", r"\.(c_attn|c_fc)\.weight$"),
           ("hidden_out", r"\.c_proj\.weight$"), ("hidden_bias", r"\.(c_attn|c_proj|c_fc)\.bias$"),
           ("block_norm", r"\.ln_[12]\."), ("final_norm", r"^transformer\.ln_f\."), ("unembedding", r"^lm_head\.")]


@pytest.mark.parametrize("param,tied", [("sp", True), ("mup", False), ("completep", True), ("completedp", False)])
def test_empty_module_hparams_is_bit_for_bit(param, tied):
    """m_N = m_L = 2. The init equals normal draws made here from the rules, in the same RNG
    order; the groups are the role grouping; and 4 scheduled steps of the model's optimizer
    and forward equal, exactly, 4 steps of a torch.optim.AdamW over groups built here from the
    rules with a forward written out here (every multiplier 1.0 of the new code path must
    vanish without a rounding trace)."""
    model = build(param, n=64, l=4, tied=tied)
    m_N, m_L, names = 2.0, 2.0, [n for n, _ in model.named_parameters()]
    torch.manual_seed(11)
    drawn = {}
    for n, t in model.named_parameters():
        std = _reference(n, param, m_N, m_L)[0]
        drawn[n] = (torch.ones_like(t) if n.endswith("weight") else torch.zeros_like(t)) if std is None else \
            torch.zeros_like(t) if std == 0.0 else torch.empty_like(t).normal_(0.0, std)
    torch.manual_seed(11)
    model.reset_parameters()
    assert all(torch.equal(t, drawn[n]) for n, t in model.named_parameters())

    opt = model.configure_optimizers(LAMBDA, ETA, BETAS, EPS)
    roles = [[n for n in names if re.search(rx, n)] for _, rx in ROLE_OF]
    assert [g["names"] for g in opt.param_groups] == [r for r in roles if r]  # the role grouping
    ref = copy.deepcopy(model)
    rp = dict(ref.named_parameters())
    ref_groups = []
    for r in (r for r in roles if r):
        _, lr_mult, wd_mult, eps_mult = _reference(r[0], param, m_N, m_L)
        ref_groups.append(dict(params=[rp[n] for n in r], lr_mult=lr_mult, lr=ETA * lr_mult,
                               weight_decay=LAMBDA * wd_mult, eps=EPS * eps_mult))
    ref_opt = torch.optim.AdamW(ref_groups, lr=ETA, betas=BETAS, eps=EPS)
    for g, r in zip(opt.param_groups, ref_opt.param_groups):  # the float64 settings, exactly
        assert [g[k] for k in ("lr_mult", "lr", "weight_decay", "eps", "betas")] == \
            [r[k] for k in ("lr_mult", "lr", "weight_decay", "eps", "betas")], g["names"][0]
    res = m_L ** -1.0 if param in ("completep", "completedp") else 1.0
    logit_mult = 1.0 / m_N if param in ("mup", "completep") else 1.0
    scale = 1 / 16 if param != "sp" else 1 / math.sqrt(16)
    assert model.transformer.h[0].attn.scale == scale

    def ref_forward(idx, y):
        tr = ref.transformer
        x = tr.wte(idx) + tr.wpe(torch.arange(idx.size(1)))
        x = 1.0 * x
        for b in tr.h:
            x = x + res * b.attn(b.ln_1(x))
            x = x + res * b.mlp(b.ln_2(x))
        logits = logit_mult * ref.lm_head(tr.ln_f(x))
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), ignore_index=-1)

    gen = torch.Generator().manual_seed(5)
    for step in range(4):
        idx = torch.randint(0, VOCAB, (4, T), generator=gen)
        y = torch.randint(0, VOCAB, (4, T), generator=gen)
        lr_t = ETA * (step + 1) / 4
        for o in (opt, ref_opt):
            for g in o.param_groups:
                g["lr"] = lr_t * g["lr_mult"]
        _, loss = model(idx, y)
        ref_loss = ref_forward(idx, y)
        assert torch.equal(loss, ref_loss), step
        for o, l_ in ((opt, loss), (ref_opt, ref_loss)):
            l_.backward()
            o.step()
            o.zero_grad(set_to_none=True)
    for n, t in model.named_parameters():
        assert torch.equal(t, rp[n]), n
    assert not torch.equal(model.transformer.h[0].mlp.c_fc.weight, drawn["transformer.h.0.mlp.c_fc.weight"])


# --- the command line -----------------------------------------------------------------

CDP = ["--parameterization=completedp", "--tie_embeddings=False"]
BAD = [  # (arguments, a piece of the one-line error)
    (["--parameterization=completedp"], "tie_embeddings=False"),
    (["--base_batch_size=4"], "base_batch_size=4 has no meaning for parameterization='completep'"),
    (["--parameterization=mup", "--base_tokens=4096"], "base_tokens=4096 has no meaning"),
    (CDP + ["--base_tokens=0"], "base_tokens=0 must be positive"),
    (CDP + ["--base_tokens=100000000"], "outside [0, 1)"),  # m_D tiny: 1 - beta x m_B/m_D < 0
    (['--module_hparams={"atn_qkv": {"lr": 2}}'], "did you mean 'attn_qkv'"),
    (['--module_hparams={"mlp_in": {"learnin_rate": 2}}'], "unknown hyperparameter 'learnin_rate' of mlp_in"),
    (['--module_hparams={"mlp_in": {"lr": 0}}'], "positive"),
    (['--module_hparams={"mlp_in": {"beta2": 30}}'], "outside [0, 1)"),
    (['--module_hparams={"mlp_out": {"lr": [1.0, 0.5, 0.2]}}'], "one value per proxy layer"),
    (['--module_hparams={"embedding": {"lr": [1.0, 0.5]}}'], "per-layer profile needs a block module"),
    (['--module_hparams={"unembedding": {"lr": 2}}'], "needs tie_embeddings=False"),
    (["--module_hparams=3"], "module_hparams expects dict"),
    (['--module_hparams={"mlp_in":'], "is not a valid dict"),
]


@pytest.mark.parametrize("args,needle", BAD)
def test_bad_input_is_one_config_error(char_data, tmp_path, args, needle):
    """Each case through train.main in-process (what the script runs before exiting 2)."""
    from configurator import UserError
    from test_bad_input import run_main
    import train
    with pytest.raises(UserError) as e:
        run_main(train, [f"--data_dir={char_data}", f"--out_dir={tmp_path / 'run'}", *TINY, "--max_iters=4", *args])
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not list(tmp_path.glob("run/ckpt_*"))


@pytest.mark.parametrize("case", [0, 4, 5, 13])  # the script itself: one 'error:' line, exit 2
def test_cli_bad_input_is_one_line(char_data, tmp_path, case):
    args, needle = BAD[case]
    r = run_script(["train.py", f"--data_dir={char_data}", f"--out_dir={tmp_path / 'run'}", *TINY,
                    "--max_iters=4", *args])
    err = r.stderr.strip()
    assert r.returncode == 2 and err.startswith("error: ") and "\n" not in err and needle in err, err


def test_cli_completedp_with_module_hparams_trains_and_resume_checks(char_data, tmp_path):
    """A config file with a dict, completedp with base batch and horizon: it trains, and
    config.json and the checkpoint carry m_B = 8 / 4 and m_D = 30 * 8 * 32 / 3840; resuming
    with another horizon or batch setting is refused in one line."""
    from configurator import UserError
    from test_bad_input import run_main
    import train
    cfg = tmp_path / "cdp.py"
    cfg.write_text('module_hparams = {"attn_qkv": {"lr": 1.5}, "mlp_out": {"init_std": 0.5, "lr": [1.0, 0.8]},\n'
                   '                  "residual": {"attn": 0.8}, "embedding": {"beta2": 2.0}}\n')
    out = tmp_path / "run"
    common = [f"--data_dir={char_data}", f"--out_dir={out}", *TINY, *CDP, "--n_layer=4", "--n_embd=64",
              "--base_batch_size=4", "--eval_interval=15", "--learning_rate=0.01"]
    r = run_script(["train.py", str(cfg), *common, "--max_iters=30", "--base_tokens=3840"])
    assert r.returncode == 0, r.stderr
    assert "m_B=2 m_D=2" in r.stdout and "beta1" in r.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [row["val_loss"] for row in rows if "val_loss" in row]
    assert evals[-1] < evals[0] - 0.3, evals
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["batch_duration"] == dict(base_batch_size=4, base_tokens=3840, m_B=8 / 4, m_D=30 * 8 * 32 / 3840)
    assert resolved["config"]["module_hparams"]["mlp_out"]["lr"] == [1.0, 0.8]
    ckpt = torch.load(out / "ckpt_0000030.pt", weights_only=True)
    assert ckpt["batch_duration"]["m_D"] == 2.0
    emb = next(g for g in ckpt["optimizer"]["param_groups"] if g["role"] == "embedding")
    assert emb["betas"][1] == pytest.approx(1 - 0.05 * 2.0 * (2 / 2))  # beta2 mult 2, m_B/m_D = 1
    for extra, needle in ((["--max_iters=30", "--base_tokens=7680"], "base_tokens=3840 there, 7680 here"),
                          (["--max_iters=60", "--base_tokens=3840"], "m_D=2.0 there, 4.0 here")):
        with pytest.raises(UserError) as e:
            run_main(train, [str(cfg), *common, *extra])
        assert str(e.value).startswith("cannot resume") and needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_resume_takes_group_betas_from_the_config(char_data, tmp_path):
    """Stopped at step 2, its checkpoint's group betas overwritten, resumed: the moments come
    from the checkpoint, every group's betas from this config and the rules (m_B = 8 / 4 = 2,
    m_D = 1; the embedding's beta1 multiplier 0.5). A resume with another beta1 is refused."""
    out = tmp_path / "run"
    common = [f"--data_dir={char_data}", f"--out_dir={out}", *TINY, *CDP, "--max_iters=4", "--eval_interval=2",
              "--base_batch_size=4", f"--base_tokens={4 * 8 * 32}", '--module_hparams={"embedding": {"beta1": 0.5}}']
    r = run_script(["train.py", *common, "--halt_at_iter=2"])
    assert r.returncode == 4 and (out / "ckpt_0000002.pt").exists(), r.stderr
    r = run_script(["train.py", *common, "--beta1=0.8"])
    assert r.returncode == 2 and "beta1=0.9 there, 0.8 here" in r.stderr, r.stderr
    ckpt = torch.load(out / "ckpt_0000002.pt", weights_only=True)
    for g in ckpt["optimizer"]["param_groups"]:
        g["betas"] = (0.5, 0.5)
    torch.save(ckpt, out / "ckpt_0000002.pt")
    r = run_script(["train.py", *common])
    assert r.returncode == 0 and "resuming from" in r.stdout, r.stderr
    groups = torch.load(out / "ckpt_0000004.pt", weights_only=True)["optimizer"]["param_groups"]
    for g in groups:
        b1 = 1 - (1 - 0.9) * (0.5 if g["role"] == "embedding" else 1.0) * 2
        assert g["betas"][0] == pytest.approx(b1, rel=1e-12) and g["betas"][1] == pytest.approx(1 - 0.05 * 2), g["role"]

"""The modern block (docs/parameterization.md section 2c): RMSNorm, QK-norm, RoPE, SwiGLU, no
biases, z-loss, finer module types and the type x depth factorisation.

Expected values are written here from the rules, by parameter name, never read from model.py's
table: every cell at m_N = 4, m_L = 4 (and m_B = 2, m_D = 4 under completedp) for every
parameterization, tied and untied; the forward recomputed by hand; mup, depth_mup and completep
one model at the base shape; each module type and the depth factor change exactly their
parameters; the z-loss gradient; RoPE generation with the KV cache; the context refusal; and,
end to end, FSDP against one process and a resume, bit for bit."""
import ast
import json
import math
import os
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, TINY, run_main, run_script
from model import BLOCKS, GPT, GPTConfig
from test_completedp import assert_cells, assert_only_named_change
from test_model import assert_cache_equals_recomputation

SIGMA, ETA, LAMBDA, EPS, BETAS = 0.02, 1e-3, 0.1, 1e-8, (0.9, 0.95)
BASE_N, BASE_L, HEADS, VOCAB, T = 32, 2, 4, 97, 16
MODERN = dict(norm="rmsnorm", qk_norm=True, pos="rope", mlp="swiglu")
PARAMS = ["sp", "mup", "depth_mup", "completep", "completedp"]
ALPHA = {"sp": None, "mup": None, "depth_mup": 0.5, "completep": 1.0, "completedp": 1.0}


def build(param, n=128, l=8, tied=False, bias=False, mh=None, seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**MODERN, block_size=T, vocab_size=VOCAB, n_layer=l, n_head=HEADS, n_embd=n, bias=bias,
                         parameterization=param, base_n_embd=BASE_N, base_n_layer=BASE_L, init_std=SIGMA,
                         tie_embeddings=tied, module_hparams=mh or {}, **kw))


def groups_by_name(model, **kw):
    opt = model.configure_optimizers(LAMBDA, ETA, BETAS, EPS, **kw)
    return {n: g for g in opt.param_groups for n in g["names"]}


def rms(x, g, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def rope(x, theta=10000.0):
    """Rotate-half RoPE on (B, nh, T, hs): channel i pairs with i + hs/2 at angle t * theta^(-2i/hs).
    The angles and their cos/sin are float32 whatever x is, as Hugging Face's rotary embedding
    computes them (so that an export reproduces the model's logits exactly)."""
    hs, t = x.size(-1), x.size(-2)
    inv_freq = 1.0 / theta ** (torch.arange(0, hs, 2, dtype=torch.int64).float() / hs)
    ang = torch.arange(t, dtype=torch.int64).float()[:, None] * inv_freq[None, :]
    cos, sin = torch.cat((ang, ang), -1).cos().to(x.dtype), torch.cat((ang, ang), -1).sin().to(x.dtype)
    half = hs // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


# --- every cell at m_N = 4, m_L = 4, m_B = 2, m_D = 4 -------------------------------------

def expected(name, param, n=128, l=8, tied=False, m_B=2.0, m_D=4.0):
    """(init std | 'ones' | 'zeros', lr, wd, eps, beta1, beta2) of the table for a parameter name."""
    m_N, m_L, alpha = n / BASE_N, l / BASE_L, ALPHA[param]
    cdp = param == "completedp"
    s = math.sqrt(m_B / m_D) if cdp else 1.0                     # LR and WD x sqrt(m_B/m_D)
    e = EPS * math.sqrt(m_D / m_B) if cdp else EPS               # eps x sqrt(m_D/m_B)
    betas = tuple(1 - (1 - b) * m_B / m_D for b in BETAS) if cdp else BETAS
    wn = 1.0 if param == "sp" else m_N
    dl = m_L ** (alpha - 1) if alpha is not None else 1.0        # in-block LR depth factor
    de = m_L ** -alpha if alpha is not None else 1.0             # in-block eps depth factor
    if name == "transformer.wte.weight":
        return (SIGMA, ETA * s, LAMBDA * s, e / m_N if cdp else e) + betas
    if name == "lm_head.weight":
        assert not tied
        if cdp:  # the logits' 1/m_N moved into the unembedding
            return (SIGMA / m_N, ETA / m_N * s, LAMBDA * m_N * s, e) + betas
        return (SIGMA, ETA, LAMBDA, EPS) + betas
    if name == "transformer.ln_f.weight":                           # RMSNorm: a gain only
        return ("ones", ETA * s, 0.0, e) + betas
    if re.search(r"\.attn\.[qk]_norm\.weight$", name):           # QK-norm: eps with no width factor
        return ("ones", ETA * dl * s, 0.0, e * de) + betas
    if re.search(r"\.ln_[12]\.weight$", name):
        return ("ones", ETA * dl * s, 0.0, e / wn * de) + betas
    if name.endswith(".bias"):
        return ("zeros", ETA * dl * s, 0.0, e / wn * de) + betas
    assert re.search(r"\.(attn\.c_[qkv]|attn\.c_proj|mlp\.c_gate|mlp\.c_fc|mlp\.c_proj)\.weight$", name), name
    if param == "sp":  # GPT-2: both output projections (attention, SwiGLU's down) at sigma / sqrt(2L)
        return (SIGMA / math.sqrt(2 * l) if ".c_proj." in name else SIGMA, ETA, LAMBDA, EPS) + betas
    return (SIGMA / math.sqrt(m_N), ETA / m_N * dl * s, LAMBDA * m_N * s, e / m_N * de) + betas


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("param", PARAMS)
def test_every_cell_of_the_modern_block(param, tied, bias):
    if param == "completedp" and tied:
        pytest.skip("completedp needs an untied unembedding (refused: test_completedp)")
    model = build(param, tied=tied, bias=bias)
    bd = dict(m_B=2.0, m_D=4.0) if param == "completedp" else {}
    group_of = groups_by_name(model, **bd)
    names = dict(model.named_parameters())
    assert set(group_of) == set(names)
    assert "transformer.wpe.weight" not in names  # RoPE: no position embedding
    assert ("lm_head.weight" in names) == (not tied)
    block0 = sorted(n[len("transformer.h.0."):] for n in names if n.startswith("transformer.h.0."))
    want = ["attn.c_k.weight", "attn.c_proj.weight", "attn.c_q.weight", "attn.c_v.weight", "attn.k_norm.weight",
            "attn.q_norm.weight", "ln_1.weight", "ln_2.weight", "mlp.c_fc.weight", "mlp.c_gate.weight",
            "mlp.c_proj.weight"]
    if bias:
        want += [w.replace("weight", "bias") for w in want if ".c_" in w]
    assert block0 == sorted(want)
    assert names["transformer.h.0.attn.q_norm.weight"].shape == (128 // HEADS,)  # one gain per head channel
    assert names["transformer.h.0.mlp.c_gate.weight"].shape == (342, 128)  # ceil(8/3 * 128)
    assert_cells(names, group_of, lambda name: expected(name, param, tied=tied))


@pytest.mark.parametrize("param,tied", [("sp", True), ("mup", False), ("depth_mup", True), ("completep", False),
                                        ("completedp", False)])
def test_modern_forward_recomputed_by_hand(param, tied):
    """Input, residual, attention (after QK-norm and RoPE) and logit multipliers, RMSNorm and
    SwiGLU, from the formulas; every gain perturbed so that a gain left out shows."""
    mults = {} if param == "sp" else dict(input_mult=2.0, output_mult=3.0, attn_mult=1.5)
    model = build(param, tied=tied, **mults).double()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight") or re.search(r"ln_\w+\.weight$", n):
                p.uniform_(0.5, 1.5)
    idx = torch.randint(0, VOCAB, (2, T), generator=torch.Generator().manual_seed(1))
    m_N, m_L, alpha = 128 / BASE_N, 8 / BASE_L, ALPHA[param]
    res = m_L ** -alpha if alpha is not None else 1.0
    hs = 128 // HEADS
    scale = 1.5 / hs if param != "sp" else 1 / math.sqrt(hs)
    logit_mult = {"sp": 1.0, "completedp": 3.0}.get(param, 3.0 / m_N)
    tr = model.transformer
    with torch.no_grad():
        x = mults.get("input_mult", 1.0) * tr.wte(idx)
        for b in tr.h:
            a = b.attn
            h = rms(x, b.ln_1.weight)
            q, k, v = (lin(h).view(2, T, HEADS, hs) for lin in (a.c_q, a.c_k, a.c_v))
            q, k = rms(q, a.q_norm.weight), rms(k, a.k_norm.weight)
            q, k, v = (z.transpose(1, 2) for z in (q, k, v))
            att = (rope(q) @ rope(k).transpose(-2, -1)) * scale
            att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(2, T, 128)
            x = x + res * a.c_proj(y)
            h = rms(x, b.ln_2.weight)
            x = x + res * b.mlp.c_proj(F.silu(b.mlp.c_gate(h)) * b.mlp.c_fc(h))
        want = logit_mult * (rms(x, tr.ln_f.weight) @ model.lm_head.weight.T)
        logits, _, hidden = model(idx, return_hidden=True)
    torch.testing.assert_close(hidden, x, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(logits, want, rtol=1e-10, atol=1e-12)


def test_base_shape_mup_family_is_one_model():
    """At the base shape (m_N = m_L = 1) mup, depth_mup and completep build the same modern
    model: the same tensors, groups and logits."""
    models = {p: build(p, n=BASE_N, l=BASE_L, tied=True) for p in ("mup", "depth_mup", "completep")}
    idx = torch.randint(0, VOCAB, (2, T), generator=torch.Generator().manual_seed(1))
    ref = models["mup"]
    for p, m in models.items():
        sa, sb = ref.state_dict(), m.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), p
        ga, gb = groups_by_name(ref), groups_by_name(m)
        assert all((ga[n]["lr"], ga[n]["weight_decay"], ga[n]["eps"]) == (gb[n]["lr"], gb[n]["weight_decay"],
                                                                         gb[n]["eps"]) for n in ga), p
        with torch.no_grad():
            assert torch.equal(ref(idx)[0], m(idx)[0]), p


def test_the_default_block_is_the_gpt2_block():
    """GPTConfig's defaults are BLOCKS['gpt2']: fused c_attn, learned positions, GELU at 4N,
    LayerNorms; config/modern.py sets exactly BLOCKS['modern'] (and more)."""
    m = GPT(GPTConfig(n_layer=1, n_embd=64, n_head=2, vocab_size=VOCAB, block_size=T))
    names = [n for n, _ in m.named_parameters()]
    assert "transformer.wpe.weight" in names and "transformer.h.0.attn.c_attn.weight" in names
    assert dict(m.named_parameters())["transformer.h.0.mlp.c_fc.weight"].shape == (256, 64)
    assert isinstance(m.transformer.ln_f, torch.nn.LayerNorm)
    assert {k: getattr(m.config, k) for k in BLOCKS["gpt2"]} == BLOCKS["gpt2"]
    tree = ast.parse(open(os.path.join(REPO, "config", "modern.py")).read())
    cfg = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}
    assert {k: cfg[k] for k in BLOCKS["modern"]} == BLOCKS["modern"]
    assert cfg["tie_embeddings"] is False and cfg["z_loss"] > 0 and cfg["parameterization"] == "completedp"


# --- module types and the type x depth factorisation --------------------------------------

TYPE_PARAMS = {  # module type -> the parameter names it covers, in the modern block
    "embedding": r"^transformer\.wte\.weight$",
    "attn_q": r"\.attn\.c_q\.", "attn_k": r"\.attn\.c_k\.", "attn_v": r"\.attn\.c_v\.",
    "attn_qkv": r"\.attn\.c_[qkv]\.",
    "attn_out": r"\.attn\.c_proj\.",
    "qk_norm": r"\.attn\.[qk]_norm\.",
    "attn_norm": r"\.ln_1\.", "mlp_norm": r"\.ln_2\.", "block_norm": r"\.ln_[12]\.",
    "mlp_gate": r"\.mlp\.c_gate\.", "mlp_in": r"\.mlp\.c_fc\.", "mlp_out": r"\.mlp\.c_proj\.",
    "final_norm": r"^transformer\.ln_f\.",
    "unembedding": r"^lm_head\.weight$",
}
NORMS = ("qk_norm", "attn_norm", "mlp_norm", "block_norm", "final_norm")
CASES = [(m, hp) for m in TYPE_PARAMS for hp in ("lr", "wd", "init_std", "eps", "beta1", "beta2")
         if not (m in NORMS and hp in ("wd", "init_std"))]  # norm gains: no init std, no WD


@pytest.mark.parametrize("module,hp", CASES)
def test_module_type_changes_exactly_what_it_names(module, hp):
    """x = 0.5 on one (type, hyperparameter) at m_N = 2, m_L = 2, m_B = 2, m_D = 4 (completedp,
    biases on): the named parameters change by exactly that factor, nothing else by a bit."""
    x, bd = 0.5, dict(m_B=2.0, m_D=4.0)
    ref = build("completedp", n=64, l=4, bias=True)
    mod = build("completedp", n=64, l=4, bias=True, mh={module: {hp: x}})
    assert_only_named_change(ref, mod, TYPE_PARAMS[module], hp, x, bd)


def test_depth_factor_multiplies_every_block_type_and_composes_with_types_and_profiles():
    """module_hparams['depth']['lr'] = [1, 0.5] (base_n_layer 2) at 5 layers: block j's every
    parameter's LR times 1 - j/8 (linear in j/4 between the proxy's two layers); a type value
    (attn_q x 3) and a type profile (mlp_out [2, 1]) multiply it; outside the blocks nothing
    changes. The depth init_std factor scales the block weights' init the same way."""
    depth, prof = [1.0, 0.5], [2.0, 1.0]
    at = [1.0 - j / 8 for j in range(5)]        # depth: 1 -> 0.5 over positions 0, 1/4, .., 1
    prof_at = [2.0 - j / 4 for j in range(5)]   # mlp_out: 2 -> 1
    mh = {"depth": {"lr": depth, "init_std": depth}, "attn_q": {"lr": 3.0}, "mlp_out": {"lr": prof}}
    ref, mod = build("completep", n=64, l=5, tied=True), build("completep", n=64, l=5, tied=True, mh=mh)
    ga, gb = groups_by_name(ref), groups_by_name(mod)
    pa, pb = dict(ref.named_parameters()), dict(mod.named_parameters())
    for n in pa:
        m = re.match(r"transformer\.h\.(\d+)\.", n)
        if not m:
            assert gb[n]["lr"] == ga[n]["lr"] and torch.equal(pa[n], pb[n]), n
            continue
        j = int(m.group(1))
        f = at[j] * (3.0 if ".attn.c_q." in n else prof_at[j] if ".mlp.c_proj." in n else 1.0)
        assert gb[n]["lr"] == pytest.approx(f * ga[n]["lr"], rel=1e-12), n
        assert (gb[n]["weight_decay"], gb[n]["eps"]) == (ga[n]["weight_decay"], ga[n]["eps"]), n
        if "norm" in n or "ln_" in n:  # gains start at 1 whatever the init factor
            assert torch.equal(pa[n], pb[n]), n
        else:
            torch.testing.assert_close(pb[n], at[j] * pa[n], rtol=1e-6, atol=0)


@pytest.mark.parametrize("mh,needle", [
    ({"depth": {"lr": 0.5}}, "one value per proxy layer"),
    ({"depth": {"lr": [1.0, 2.0, 3.0]}}, "one value per proxy layer"),
    ({"attn_qkv": {"lr": 2.0}, "attn_k": {"lr": 3.0}}, "attn_qkv covers attn_q, attn_k, attn_v"),
    ({"qk_norm": {"init_std": 2.0}}, "norm gains start at 1"),
    ({"attn_norm": {"wd": 2.0}}, "norm gains start at 1"),
])
def test_bad_modern_module_hparams_are_one_line(mh, needle):
    with pytest.raises(ValueError) as e:
        build("completedp", n=64, l=4, mh=mh)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("kw,needle", [
    (dict(mh={"attn_q": {"lr": 2.0}}), "fused c_attn is one tensor"),
    (dict(mh={"qk_norm": {"lr": 2.0}}), "no qk_norm"),
    (dict(mh={"mlp_gate": {"lr": 2.0}}), "no mlp_gate"),
])
def test_the_gpt2_block_refuses_the_modern_types_in_one_line(kw, needle):
    with pytest.raises(ValueError) as e:
        GPTConfig(n_layer=2, n_embd=64, n_head=2, module_hparams=kw["mh"])
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("kw,needle", [
    (dict(norm="batchnorm"), "norm"), (dict(pos="alibi"), "pos"), (dict(mlp="relu"), "mlp"),
    (dict(z_loss=-1.0), "z_loss"), (dict(pos="rope", n_embd=66, n_head=2), "even"),
    (dict(mlp_ratio=0.0), "mlp_ratio"),
])
def test_bad_block_options_are_one_line(kw, needle):
    with pytest.raises(ValueError) as e:
        GPTConfig(**{**dict(n_layer=2, n_embd=64, n_head=2), **kw})
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


# --- z-loss, generation, context -----------------------------------------------------------

def test_z_loss_adds_its_gradient_in_training_and_nothing_in_eval():
    """loss = CE + c * mean(logsumexp(logits)^2) over counted positions while training; the
    gradient is that of the sum, computed here from the logits; eval (val_loss) is CE alone."""
    c = 1e-2
    model = build("completedp", n=64, l=4, z_loss=c)  # float32: the loss is taken in float32 anyway
    idx = torch.randint(0, VOCAB, (2, T), generator=torch.Generator().manual_seed(1))
    tgt = torch.randint(0, VOCAB, (2, T), generator=torch.Generator().manual_seed(2))
    tgt[0, :3] = -1  # ignored positions count in neither term
    model.train()
    logits, loss, parts = model(idx, tgt, return_parts=True)
    flat, t = logits.reshape(-1, VOCAB).float(), tgt.reshape(-1)
    keep = t != -1
    ce = F.cross_entropy(flat[keep], t[keep])
    z = c * torch.logsumexp(flat[keep], -1).pow(2).mean()
    torch.testing.assert_close(parts["ce"], ce, rtol=1e-6, atol=0)
    torch.testing.assert_close(parts["z"], z, rtol=1e-6, atol=0)
    torch.testing.assert_close(loss, ce + z, rtol=1e-6, atol=0)
    params = [p for p in model.parameters()]
    got = torch.autograd.grad(loss, params, retain_graph=True)
    want = torch.autograd.grad(ce + z, params, retain_graph=True)
    z_only = torch.autograd.grad(z, params, retain_graph=True)
    for g, w, zg in zip(got, want, z_only):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-9)
    assert max(zg.abs().max().item() for zg in z_only) > 1e-6  # the term moves the gradient
    model.eval()
    with torch.no_grad():
        _, eval_loss = model(idx, tgt)
    torch.testing.assert_close(eval_loss, ce.detach(), rtol=1e-6, atol=0)


def test_rope_generation_with_the_kv_cache_equals_full_recomputation(monkeypatch):
    """Cached keys were rotated at their own positions: generation with the cache sees the same
    distributions as recomputing the window, also once the sequence outgrows block_size."""
    assert_cache_equals_recomputation(build("completedp", n=64, l=3).eval(), monkeypatch)


def test_a_completedp_run_at_another_context_than_its_proxy_is_refused(char_data, tmp_path):
    """m_B counts sequences of the proxy's context: base_block_size must equal block_size."""
    args = [*TINY, f"--data_dir={char_data}", f"--out_dir={tmp_path / 'o'}", "--parameterization=completedp",
            "--tie_embeddings=False", "--base_batch_size=8", "--base_block_size=64"]  # TINY: block_size=32
    r = run_script(["train.py", *args])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: block_size=32 differs from the proxy's base_block_size=64")
    assert not (tmp_path / "o").exists()


# --- end to end: FSDP and resume --------------------------------------------------------------

RUN = [*TINY, "--parameterization=completedp", "--tie_embeddings=False", "--norm=rmsnorm", "--qk_norm=True",
       "--pos=rope", "--mlp=swiglu", "--bias=False", "--z_loss=1e-3", "--batch_size=2", "--global_batch_size=8",
       "--max_iters=12", "--eval_interval=6", "--dropout=0.0", "--learning_rate=0.01", "--eval_tokens=544"]
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def train(out, *extra, nproc=False):
    import sys
    cmd = [sys.executable, *TORCHRUN] if nproc else None
    r = run_script(["train.py", *RUN, f"--out_dir={out}", *extra], cmd=cmd, timeout=240)
    return r


@pytest.mark.slow
def test_modern_block_fsdp_equals_one_process_and_resumes_bit_for_bit(char_data, tmp_path):
    single, fsdp, halted = tmp_path / "single", tmp_path / "fsdp", tmp_path / "halted"
    r = train(single, f"--data_dir={char_data}")
    assert r.returncode == 0, r.stderr[-2000:]
    a = rows(single)
    steps = [x for x in a if "loss" in x]
    assert [x["iter"] for x in steps] == list(range(1, 13))
    # the z-loss is logged on its own; 'loss' is the cross-entropy (a z-loss of 1e-3 * lse^2 ~ 0.02 here)
    assert all(0 < x["z_loss"] < 0.1 * x["loss"] for x in steps)
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.3
    r = train(fsdp, f"--data_dir={char_data}", "--parallel=fsdp", nproc=True)
    assert r.returncode == 0, r.stderr[-3000:]
    b = {(x["iter"], "val_loss" in x): x for x in rows(fsdp)}
    for x in a:
        y = b[(x["iter"], "val_loss" in x)]
        for k in ("loss", "z_loss", "val_loss"):
            if k in x:
                assert abs(y[k] - x[k]) < 1e-5, (x["iter"], k, y[k], x[k])
    # stopped at step 6 and resumed by the same command: the same rows, bit for bit (in-process:
    # train.main as the script runs it; the process start-up adds nothing to this check)
    import train as train_module
    argv = [*RUN, f"--out_dir={halted}", f"--data_dir={char_data}", "--halt_at_iter=6"]
    with pytest.raises(SystemExit) as stopped:
        run_main(train_module, argv)
    assert stopped.value.code == 4
    run_main(train_module, argv)
    c = {(x["iter"], "val_loss" in x): x for x in rows(halted)}
    for x in a:
        y = c[(x["iter"], "val_loss" in x)]
        for k in ("loss", "z_loss", "val_loss", "grad_norm"):
            if k in x:
                assert y[k] == x[k], (x["iter"], k)

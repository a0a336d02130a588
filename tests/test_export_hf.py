"""scripts/export_hf.py: a checkpoint exported to a Hugging Face GPT2LMHeadModel (the GPT-2 block),
Qwen3ForCausalLM (the modern block: RMSNorm, QK-norm, RoPE, SwiGLU) or LlamaForCausalLM (the
same without QK-norm) computes this repository's logits. Tiny models (random init plus random
perturbations, so no weight is at its init value: norm gains, q/k norm gains and biases
included) away from the base shape (m_N = m_L = 2) and away from every default multiplier,
saved as checkpoints the way tests/test_bad_input.py's tiny_checkpoint does, exported with
export_hf.export and loaded back with from_pretrained (offline, fp32). The expected logits and
generations are model.py's own forward. CPU only, seeded."""
import json
import os
import random
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

import checkpoint  # noqa: E402
import export_hf  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from runs import UserError  # noqa: E402

VOCAB = 37
BLOCK = 64
PROFILE = {"residual": {"attn": [0.6, 1.7], "mlp": [1.3, 0.7]},  # depth profiles (base_n_layer=2 values)
           "attn_qkv": {"lr": 1.5}}                               # optimizer-only: no forward effect
MULTS = dict(input_mult=1.9, output_mult=0.55, attn_mult=2.3)

# (id, parameterization, tie_embeddings, bias, muP multipliers); sp takes no muP multipliers
CASES = [
    ("sp-tied", "sp", True, True, {}),
    ("mup-tied", "mup", True, True, MULTS),
    ("mup-untied", "mup", False, True, MULTS),
    ("depth_mup-untied", "depth_mup", False, True, MULTS),
    ("completep-tied", "completep", True, True, MULTS),
    ("completep-untied-nobias", "completep", False, False, MULTS),
    ("completedp-untied", "completedp", False, True, MULTS),
]


def tiny_model(par, tied=True, bias=True, mults=None, seed=0, vocab=VOCAB, **kw):
    torch.manual_seed(seed)
    kw.setdefault("module_hparams", PROFILE)
    cfg = GPTConfig(block_size=BLOCK, vocab_size=vocab, n_layer=4, n_head=2, n_embd=32, base_n_embd=16,
                    base_n_layer=2, parameterization=par, tie_embeddings=tied, bias=bias,
                    **(mults or {}), **kw)
    model = GPT(cfg)
    with torch.no_grad():  # no weight at its init value: LN gains != 1, biases != 0
        for t in model.parameters():
            t.add_(0.05 * torch.randn_like(t))
    return model.eval()


def save_checkpoint(model, path, meta=None, config=None):
    """A checkpoint of train.py's format for `model` (as tests/test_bad_input.py's tiny_checkpoint)."""
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.95))
    ckpt = checkpoint.build(model.state_dict(), opt.state_dict(), asdict(model.config),
                            dict(config or {}, global_batch_size=8, block_size=model.config.block_size),
                            model.parameterization.table(), iter_num=7, best_val_loss=2.5, last_eval_iter=7,
                            data=dict(mode="random"), rng=[checkpoint.rng_state()], meta=meta or {})
    checkpoint.save(ckpt, path)
    return ckpt


def naive_gpt2(model, hf_config):
    """What a user would do without the exporter: copy the weights as they are (Conv1D transposes,
    zero biases) into GPT-2. Away from the base shape and default multipliers this must NOT match,
    or the logits test below would not be testing the folding."""
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            v = v.t()
        sd[k] = v
    cfg = hf_config.__class__(**{**hf_config.to_dict(), "tie_word_embeddings": False})
    hf = transformers.GPT2LMHeadModel(cfg)
    hf.load_state_dict(sd, strict=False)
    return hf.eval()


@pytest.mark.parametrize("name,par,tied,bias,mults", CASES, ids=[c[0] for c in CASES])
def test_exported_logits_and_greedy_generation_match(tmp_path, name, par, tied, bias, mults):
    """Catches a multiplier not folded or folded twice (input_mult, residual x branch x depth
    profile, attention scale, logit multiplier), a Conv1D left untransposed, a wrong activation
    (gelu_new), a wrong LayerNorm eps, tied embeddings where folding needs them untied, and bias=False
    models not getting zero biases: any of these moves the logits far past 1e-5."""
    model = tiny_model(par, tied, bias, mults)
    p = model.parameterization
    assert (p.m_N, p.m_L) == (2.0, 2.0)
    assert p.residual_mult < 1.0 or par in ("sp", "mup")  # m_L^(-alpha) of the depth family

    ck = str(tmp_path / "ckpt_0000007.pt")
    save_checkpoint(model, ck)
    out, _, _ = export_hf.export(ck, str(tmp_path / "hf"), command="test")
    assert {"config.json", "model.safetensors", "generation_config.json", "README.md"} <= set(os.listdir(out))
    hf = transformers.GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32).eval()
    cfgj = json.load(open(os.path.join(out, "config.json")))
    assert cfgj["activation_function"] == "gelu" and cfgj["n_positions"] == BLOCK
    assert cfgj["tie_word_embeddings"] == (tied and p.logit_mult == p.input_mult)

    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, VOCAB, (3, BLOCK), generator=g)
    with torch.no_grad():
        ours = model(idx)[0]
        theirs = hf(idx).logits
        naive = naive_gpt2(model, hf.config)(idx).logits
    diff = (ours - theirs).abs().max().item()
    scale = ours.abs().max().item()
    print(f"{name}: max |logit diff| {diff:.3g} (max |logit| {scale:.3g})")
    assert diff <= 1e-5 * scale, f"{name}: exported logits differ by {diff:.3g} (relative {diff / scale:.3g})"
    assert diff <= 1e-5
    if par != "sp":  # sp has no forward multiplier but the residual profile; either way the naive copy is off
        assert (ours - naive).abs().max().item() > 1e-3
    else:
        assert (ours - naive).abs().max().item() > 1e-4

    # greedy generation of 50 tokens, ours (KV cache) against HF's generate
    prompt = idx[:1, :5]
    with torch.no_grad():
        a = model.generate(prompt, 50, temperature=0)
        b = hf.generate(prompt, max_new_tokens=50, do_sample=False, attention_mask=torch.ones_like(prompt),
                        pad_token_id=0, eos_token_id=None)
    assert a.tolist() == b.tolist(), f"{name}: greedy generations diverge"


def test_dcp_and_out_dir_export_like_the_single_file(tmp_path):
    """Catches a DCP directory or an out_dir resolved to something else than the checkpoint (or its
    shards gathered wrongly): the three exports hold the same tensors."""
    from safetensors.torch import load_file
    model = tiny_model("completep", tied=False, mults=MULTS, seed=3)
    run = tmp_path / "run"
    run.mkdir()
    ck = save_checkpoint(model, str(run / "best.pt"))
    checkpoint.save_as_sharded(ck, str(tmp_path / "ckpt_0000007.dcp"))
    outs = [export_hf.export(str(run / "best.pt"), str(tmp_path / "a"), command="t")[0],
            export_hf.export(str(tmp_path / "ckpt_0000007.dcp"), str(tmp_path / "b"), command="t")[0],
            export_hf.export(str(run), str(tmp_path / "c"), command="t")[0]]
    sds = [load_file(os.path.join(o, "model.safetensors")) for o in outs]
    assert all(sd.keys() == sds[0].keys() and all(torch.equal(sd[k], sds[0][k]) for k in sd) for sd in sds[1:])
    card = open(os.path.join(outs[2], "README.md")).read()  # the model card names what it must
    for words in ("completep", "m_N | 2", "m_L | 2", "base_n_embd=16, base_n_layer=2", "training tokens | 3,584",
                  "val loss (best) | 2.5000", "| commit |", "4 layers x 32 wide", "python"):
        assert words in card, words


CHARS = list("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\t\\[]<|>é日")


def test_char_tokenizer_round_trips(tmp_path):
    """Catches a tokenizer that normalizes, splits on whitespace, drops newlines or tabs, adds spaces
    between tokens when decoding, or numbers the characters other than meta.json's itos."""
    model = tiny_model("mup", vocab=len(CHARS), mults=MULTS)
    ck = str(tmp_path / "ckpt_0000007.pt")
    save_checkpoint(model, ck, meta={"tokenizer": "char", "vocab_size": len(CHARS), "itos": CHARS})
    out, _, note = export_hf.export(ck, str(tmp_path / "hf"), command="t")
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert len(tok) == len(CHARS)
    rng = random.Random(0)
    text = "ROMEO:\n  What light?\t[é|日] <x> \\ end.\n\n" + "".join(rng.choice(CHARS) for _ in range(300))
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == [CHARS.index(c) for c in text]
    assert tok.decode(ids) == text
    assert [tok.decode([i]) for i in range(len(CHARS))] == CHARS
    assert "Character-level" in open(os.path.join(out, "README.md")).read()


def _toy_ranks(text, n_merges):
    """A tiny byte-level BPE merge table (tiktoken's mergeable_ranks form) learned from text."""
    ranks = {bytes([b]): b for b in range(256)}
    words = [w.encode() for w in text.split(" ")]
    seqs = [[bytes([b]) for b in w] for w in words]
    for _ in range(n_merges):
        counts = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                counts[a + b] = counts.get(a + b, 0) + 1
        if not counts:
            break
        best = max(counts, key=lambda k: (counts[k], k))
        ranks[best] = len(ranks)
        new = []
        for s in seqs:
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] + s[i + 1] == best:
                    out.append(best)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            new.append(out)
        seqs = new
    return ranks


def test_gpt2_bpe_tokenizer_matches_tiktoken(tmp_path, monkeypatch):
    """Catches a wrong byte-to-unicode map, merges in the wrong order or split wrongly, or a
    pre-tokenizer other than GPT-2's: the HF tokenizer built from tiktoken ranks must encode like
    tiktoken with the same ranks (here a small table learned in-process: offline), and an export
    with --gpt2_ranks writes GPT-2's tokenizer files; without ranks, the card says `gpt2`."""
    import base64
    import tiktoken
    text = "the quick brown fox jumps over the lazy dog, the end. the theme then thereafter " * 5
    ranks = _toy_ranks(text, 60)
    eot = len(ranks)
    pat = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""  # GPT-2's
    enc = tiktoken.Encoding("toy", pat_str=pat, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": eot})
    f = tmp_path / "toy.tiktoken"
    f.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    model = tiny_model("mup", vocab=eot + 1, mults=MULTS)
    ck = str(tmp_path / "ckpt_0000007.pt")
    save_checkpoint(model, ck, meta={"tokenizer": "gpt2", "vocab_size": eot + 1})
    out = export_hf.export(ck, str(tmp_path / "hf"), ranks_file=str(f), command="t")[0]
    assert {"vocab.json", "merges.txt", "tokenizer.json"} <= set(os.listdir(out))
    vocab = json.load(open(os.path.join(out, "vocab.json"), encoding="utf-8"))
    assert len(vocab) == eot + 1 and vocab["<|endoftext|>"] == eot and vocab["Ġ"] == 32  # GPT-2 byte alphabet
    tok = transformers.AutoTokenizer.from_pretrained(out)
    for s in ["the theme thereafter, the lazy fox's end!\n\n  x  ", "héllo wörld 12345 \t<|endoftext|>the"]:
        assert tok.encode(s) == enc.encode(s, allowed_special="all"), s
        assert tok.decode(tok.encode(s)) == s
    assert tok.eos_token_id == eot

    monkeypatch.setattr(export_hf, "gpt2_ranks", lambda _: None)  # no ranks at hand offline
    out2 = export_hf.export(ck, str(tmp_path / "hf2"), command="t")[0]
    assert "tokenizer.json" not in os.listdir(out2)
    assert 'AutoTokenizer.from_pretrained("gpt2")' in open(os.path.join(out2, "README.md")).read()


def test_bad_input_is_one_line(tmp_path, monkeypatch):
    """Catches a traceback or a silent success: no checkpoint (end to end: one `error:` line, exit
    2), an out dir that is not empty, a file that is not a checkpoint, an option of a non-GPT-2
    block (simulated: a field the exporter is told it does not know, at a non-default value)."""
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "export_hf.py"), str(tmp_path / "nope"),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: no checkpoint at"), r.stderr
    assert not (tmp_path / "x").exists()

    model = tiny_model("completep", bias=False, mults=MULTS)
    ck = str(tmp_path / "ckpt_0000007.pt")
    save_checkpoint(model, ck)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(UserError, match="exists and is not an empty directory"):
        export_hf.export(ck, str(tmp_path / "full"))
    (tmp_path / "junk.pt").write_text("not a checkpoint\n")
    with pytest.raises(UserError, match="cannot be read"):
        export_hf.export(str(tmp_path / "junk.pt"), str(tmp_path / "y"))
    monkeypatch.setattr(export_hf, "GPT2_FIELDS", export_hf.GPT2_FIELDS - {"bias"})
    with pytest.raises(UserError, match=r"^option bias=False is not a GPT-2 block or modern block setting"):
        export_hf.export(ck, str(tmp_path / "z"))
    assert not any(p.name.startswith(("y", "z")) for p in tmp_path.iterdir())
    with pytest.raises(UserError):
        export_hf.main([ck])  # --out missing: argparse's message, as one line


# ---------------------------------------------------------------------------------------
# The modern block: Qwen3ForCausalLM (qk_norm=True) and LlamaForCausalLM (qk_norm=False)

MODERN = dict(norm="rmsnorm", pos="rope", mlp="swiglu", rope_theta=500.0)  # theta off its default
MODERN_PROFILE = {"residual": {"attn": [0.5, 2.0], "mlp": 1.5},  # a depth profile and a constant
                  "attn_q": {"lr": 1.5}}                         # optimizer-only: no forward effect

# (id, parameterization, tie_embeddings, qk_norm, bias, block kwargs); completedp is untied only,
# Qwen3 has no MLP biases (bias=True is refused with qk_norm), so the biases are tested on Llama
MODERN_CASES = [
    ("qwen3-sp-tied", "sp", True, True, False, {}),
    ("qwen3-mup-tied", "mup", True, True, False, {}),
    ("qwen3-depth_mup-untied", "depth_mup", False, True, False, {}),
    ("qwen3-completep-tied", "completep", True, True, False, {}),
    ("qwen3-completep-untied", "completep", False, True, False, dict(mlp_ratio=3.0)),
    ("qwen3-completedp-untied", "completedp", False, True, False, dict(z_loss=1e-4)),
    ("llama-sp-tied-bias", "sp", True, False, True, {}),
    ("llama-mup-untied-bias", "mup", False, False, True, {}),
    ("llama-depth_mup-tied-bias", "depth_mup", True, False, True, {}),
    ("llama-completep-untied", "completep", False, False, False, dict(mlp_ratio=3.0)),
    ("llama-completedp-untied-bias", "completedp", False, False, True, {}),
]

# model.py names -> Llama / Qwen3 names, for the naive copy below (written here, not the exporter's)
NAIVE_NAMES = [("transformer.wte.", "model.embed_tokens."), ("transformer.ln_f.", "model.norm."),
               ("transformer.h.", "model.layers."), (".ln_1.", ".input_layernorm."),
               (".ln_2.", ".post_attention_layernorm."), (".attn.c_q.", ".self_attn.q_proj."),
               (".attn.c_k.", ".self_attn.k_proj."), (".attn.c_v.", ".self_attn.v_proj."),
               (".attn.c_proj.", ".self_attn.o_proj."), (".attn.q_norm.", ".self_attn.q_norm."),
               (".attn.k_norm.", ".self_attn.k_norm."), (".mlp.c_gate.", ".mlp.gate_proj."),
               (".mlp.c_fc.", ".mlp.up_proj."), (".mlp.c_proj.", ".mlp.down_proj.")]


def naive_modern(model, hf):
    """The weights copied under their HF names as they are, nothing folded: away from the base
    shape and the default multipliers this must NOT match (or the test would not test the folds)."""
    sd = {}
    for k, v in model.state_dict().items():
        for a, b in NAIVE_NAMES:
            k = k.replace(a, b)
        sd[k] = v
    cfg = hf.config.__class__(**{**hf.config.to_dict(), "tie_word_embeddings": False})
    naive = hf.__class__(cfg)
    missing, unexpected = naive.load_state_dict(sd, strict=False)
    assert not unexpected and missing == [], (missing, unexpected)
    return naive.eval()


def check_export(tmp_path, name, model, cls):
    """Export `model` through a checkpoint, load it with from_pretrained as `cls`: logits within 1e-5
    of model.py's forward (absolute, and relative to the largest logit), the same 50 greedy tokens."""
    ck = str(tmp_path / "ckpt_0000007.pt")
    save_checkpoint(model, ck)
    out, _, _ = export_hf.export(ck, str(tmp_path / "hf"), command="test")
    assert {"config.json", "model.safetensors", "generation_config.json", "README.md"} <= set(os.listdir(out))
    cfgj = json.load(open(os.path.join(out, "config.json")))
    assert cfgj["architectures"] == [cls]
    auto = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert type(auto).__name__ == cls
    p = model.parameterization
    assert cfgj["tie_word_embeddings"] == (model.config.tie_embeddings and p.logit_mult == p.input_mult)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, model.config.vocab_size, (3, BLOCK), generator=g)
    with torch.no_grad():
        ours, theirs = model(idx)[0], auto(idx).logits
    diff, scale = (ours - theirs).abs().max().item(), ours.abs().max().item()
    print(f"{name}: max |logit diff| {diff:.3g} (max |logit| {scale:.3g})")
    assert diff <= 1e-5 and diff <= 1e-5 * max(scale, 1.0), f"{name}: exported logits differ by {diff:.3g}"
    prompt = idx[:1, :5]
    with torch.no_grad():
        a = model.generate(prompt, 50, temperature=0)
        b = auto.generate(prompt, max_new_tokens=50, do_sample=False, attention_mask=torch.ones_like(prompt),
                          pad_token_id=0, eos_token_id=None)
    assert a.shape[1] == 55 and a.tolist() == b.tolist(), f"{name}: greedy generations diverge"
    return auto, idx, ours, cfgj, open(os.path.join(out, "README.md")).read()


@pytest.mark.parametrize("name,par,tied,qk,bias,kw", MODERN_CASES, ids=[c[0] for c in MODERN_CASES])
def test_modern_block_exports_to_qwen3_or_llama(tmp_path, name, par, tied, qk, bias, kw):
    """Catches, for the modern block, a multiplier not folded or folded twice (input_mult on
    embed_tokens, residual x branch x depth profile on o_proj/down_proj and their biases, the attention
    scale on q_norm's gains or on q_proj, the logit multiplier), a norm gain (block, final, q/k)
    not copied, head_dim or intermediate_size (mlp_ratio) not passed, rope_theta or rms_norm_eps
    left at HF's defaults, a tie where the scales differ, and biases dropped."""
    model = tiny_model(par, tied, bias, None if par == "sp" else MULTS, qk_norm=qk, module_hparams=MODERN_PROFILE,
                       **MODERN, **kw)
    p = model.parameterization
    assert (p.m_N, p.m_L) == (2.0, 2.0)
    assert model.transformer.h[0].attn_mult == 0.5 and model.transformer.h[-1].attn_mult == 2.0
    cls = "Qwen3ForCausalLM" if qk else "LlamaForCausalLM"
    auto, idx, ours, cfgj, card = check_export(tmp_path, name, model, cls)
    assert cfgj["head_dim"] == 16 and cfgj["rope_parameters"]["rope_theta"] == 500.0
    assert cfgj["rms_norm_eps"] == 1e-6 and cfgj["intermediate_size"] == (96 if "mlp_ratio" in kw else 86)
    assert cfgj["attention_bias"] == bias and cfgj.get("mlp_bias", False) == bias
    assert cls in card and f"{par} " in card
    with torch.no_grad():
        naive = naive_modern(model, auto)(idx).logits
    assert (ours - naive).abs().max().item() > 1e-3


def test_gpt2_block_with_mlp_ratio_and_z_loss_exports(tmp_path):
    """Catches the GPT-2 path ignoring mlp_ratio (n_inner) or refusing a training-only z_loss."""
    model = tiny_model("completep", False, True, MULTS, mlp_ratio=3.0, z_loss=1e-4, rope_theta=123.0)
    cfgj = check_export(tmp_path, "gpt2-ratio3", model, "GPT2LMHeadModel")[3]
    assert cfgj["n_inner"] == 96


REFUSED = [  # block options no Hugging Face class computes exactly, and the option the line names
    (dict(norm="layernorm", pos="rope", mlp="swiglu"), "option norm='layernorm' with pos='rope', mlp='swiglu'"),
    (dict(norm="layernorm", qk_norm=True), "option norm='layernorm' with qk_norm=True"),
    (dict(norm="rmsnorm"), "option pos='learned' with norm='rmsnorm'"),
    (dict(norm="rmsnorm", pos="rope"), "option mlp='gelu' with norm='rmsnorm', pos='rope'"),
    (dict(norm="rmsnorm", pos="rope", mlp="swiglu", qk_norm=True, bias=True), "option bias=True with qk_norm=True"),
]


def test_modern_refusals_are_one_line(tmp_path):
    """Catches a block combination exported approximately (or with a traceback) instead of refused:
    each is one line naming the option, before anything is written; end to end, `error:` and exit 2."""
    for i, (kw, words) in enumerate(REFUSED):
        model = tiny_model("completep", bias=kw.pop("bias", False), mults=MULTS, module_hparams={}, **kw)
        (tmp_path / f"r{i}").mkdir()
        ck = str(tmp_path / f"r{i}" / "ckpt_0000007.pt")
        save_checkpoint(model, ck)
        with pytest.raises(UserError) as e:
            export_hf.export(ck, str(tmp_path / f"out{i}"))
        msg = str(e.value)
        assert msg.startswith(words) and "\n" not in msg, msg
        assert not (tmp_path / f"out{i}").exists()
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "export_hf.py"), ck,
                        "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: option bias=True with qk_norm=True") and "Qwen3" in lines[0], r.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_a_trained_modern_checkpoint_exports_and_matches(char_data, tmp_path):
    """A short train.py run of config/modern.py's block (completedp, m_N = m_L = 2 against a 16 x 1
    proxy, z-loss on), its out_dir exported: the Qwen3 model gives the checkpoint's logits (the
    model rebuilt by checkpoint.model_from, as sample.py does) and the same greedy tokens."""
    from conftest import TINY, run_script
    out = tmp_path / "run"
    r = run_script(["train.py", "config/modern.py", *TINY, f"--data_dir={char_data}", f"--out_dir={out}",
                    "--base_n_embd=16", "--base_n_layer=1", "--max_iters=8", "--eval_interval=4",
                    "--learning_rate=0.01"])
    assert r.returncode == 0, r.stderr[-2000:]
    path = checkpoint.best_path(str(out))
    ckpt = checkpoint.load_checkpoint(path)
    model = checkpoint.model_from(ckpt, path).eval()
    assert (model.parameterization.m_N, model.parameterization.m_L) == (2.0, 2.0) and model.config.qk_norm
    assert not any(torch.equal(p, torch.ones_like(p)) for n, p in model.named_parameters() if "norm" in n)  # trained
    hf_dir, _, _ = export_hf.export(str(out), str(tmp_path / "hf"), command="test")
    auto = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    assert type(auto).__name__ == "Qwen3ForCausalLM"
    idx = torch.randint(0, model.config.vocab_size, (2, model.config.block_size), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (model(idx)[0] - auto(idx).logits).abs().max().item()
        a = model.generate(idx[:1, :5], 20, temperature=0)
        b = auto.generate(idx[:1, :5], max_new_tokens=20, do_sample=False, attention_mask=torch.ones_like(idx[:1, :5]),
                          pad_token_id=0, eos_token_id=None)
    assert diff <= 1e-5, diff
    assert a.tolist() == b.tolist()

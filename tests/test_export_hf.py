"""scripts/export_hf.py: a checkpoint exported to a Hugging Face GPT2LMHeadModel computes this
repository's logits. Tiny models (random init plus random perturbations, so no weight is at its
init value: LayerNorm gains and biases included) away from the base shape (m_N = m_L = 2) and
away from every default multiplier, saved as checkpoints the way tests/test_bad_input.py's
tiny_checkpoint does, exported with export_hf.export and loaded back with from_pretrained
(offline, fp32). CPU only, seeded."""
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
    cfg = GPTConfig(block_size=BLOCK, vocab_size=vocab, n_layer=4, n_head=2, n_embd=32, base_n_embd=16,
                    base_n_layer=2, parameterization=par, tie_embeddings=tied, bias=bias,
                    module_hparams=PROFILE, **(mults or {}), **kw)
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
    with pytest.raises(UserError, match=r"^option bias=False is not a GPT-2 block"):
        export_hf.export(ck, str(tmp_path / "z"))
    assert not any(p.name.startswith(("y", "z")) for p in tmp_path.iterdir())
    with pytest.raises(UserError):
        export_hf.main([ck])  # --out missing: argparse's message, as one line

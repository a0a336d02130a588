"""
Export a checkpoint of train.py as a Hugging Face `transformers` model directory, exactly:

    python scripts/export_hf.py out/best.pt --out hf_model        # a single-file checkpoint
    python scripts/export_hf.py out/ckpt_0001000.dcp --out hf_model  # a DCP directory (fsdp)
    python scripts/export_hf.py out --out hf_model                # an out_dir: its best checkpoint
    python scripts/export_hf.py out --out hf_model --gpt2_ranks gpt2.tiktoken

Which class: the block's settings decide, and nothing else is tried.
  GPT-2 block (norm='layernorm', qk_norm=False, pos='learned', mlp='gelu')   -> GPT2LMHeadModel
  modern block with QK-norm (norm='rmsnorm', qk_norm=True, pos='rope', mlp='swiglu', bias=False)
                                                                              -> Qwen3ForCausalLM
  the same without QK-norm (qk_norm=False; bias True or False)               -> LlamaForCausalLM
Every other combination is refused in one line naming the option, because no stock class computes
it: norm='layernorm' with rope / swiglu / qk_norm (Llama and Qwen3 have RMSNorm only, GPT-2 has no
rotary, SwiGLU or q/k norm), pos='learned' outside the GPT-2 block (Llama and Qwen3 have no
position embeddings), mlp='gelu' outside it (their MLP is SwiGLU), and bias=True with qk_norm=True
(Qwen3 has attention_bias but its gate/up/down projections have no biases). mlp_ratio (the MLP
width) and rope_theta go into the config; z_loss is a training loss with nothing to export.

Every multiplier of the forward pass (model.resolve_parameterization) is folded into the weights,
so that the plain forward of the target class computes the same logits:
  input_mult                      -> wte and wpe (GPT-2); embed_tokens (Llama / Qwen3)
  m_L^(-alpha) x module_hparams['residual'][branch] at each layer (depth profiles included)
                                  -> that branch's output projection, weight and bias: c_proj
                                     (GPT-2); o_proj and down_proj (Llama / Qwen3)
  attn_mult / d_head^exponent     -> times sqrt(d_head), so that the class's 1/sqrt(d_head) gives
                                     it back: the query third of c_attn (GPT-2,
                                     scale_attn_weights=True) or q_proj (Llama), weight and bias;
                                     with QK-norm (Qwen3) the q_norm gains instead (the norm comes
                                     before RoPE, which is linear, and after q_proj)
  logit_mult (output_mult / m_N; completedp: output_mult)
                                  -> lm_head; the embeddings are untied whenever the input and
                                     output scales differ (tie_word_embeddings=False)
GPT-2: HF's Conv1D stores weights as (in, out), the transpose of nn.Linear; bias=False models get
zero biases (HF GPT-2 always has them); model.py's exact GELU is activation_function='gelu'.
Llama / Qwen3: nn.Linear layouts as they are (c_q/c_k/c_v/c_proj -> q/k/v/o_proj, c_gate/c_fc/
c_proj -> gate/up/down_proj, ln_1/ln_2/ln_f -> input_layernorm/post_attention_layernorm/norm),
rms_norm_eps 1e-6 (model.NORM_EPS), head_dim = n_embd/n_head, one key/value head per query head,
rope_parameters {'rope_type': 'default', 'rope_theta': rope_theta} (the same rotate-half tables as
model.rope_tables), intermediate_size = model.mlp_hidden, hidden_act 'silu'.
The tokenizer goes with it (a character vocabulary as a tokenizers WordLevel model, GPT-2 BPE
from tiktoken's ranks where they are at hand offline), and a model card README.md.
Only this script imports transformers / safetensors / tokenizers (requirements.txt pins them).
Bad input is one `error:` line, exit 2. See docs/export.md.
"""
import argparse
import base64
import dataclasses
import json
import math
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from runs import UserError, git_commit, run_cli, run_commit  # noqa: E402

# The GPTConfig fields of the GPT-2 block, and of the block options (MODERN_FIELDS), this exporter
# knows. A field added later is refused unless it has its default value.
GPT2_FIELDS = {"block_size", "vocab_size", "n_layer", "n_head", "n_embd", "dropout", "bias",
               "parameterization", "base_n_embd", "base_n_layer", "depth_alpha", "init_std",
               "input_mult", "output_mult", "attn_mult", "tie_embeddings", "module_hparams"}
MODERN_FIELDS = {"norm", "qk_norm", "pos", "rope_theta", "mlp", "mlp_ratio", "z_loss"}
LN_EPS = 1e-5  # torch.nn.LayerNorm's default, which model.py uses
CLASSES = {"gpt2": "GPT2LMHeadModel", "qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (run_cli), not argparse's usage block
        raise UserError(f"{message}; usage: python scripts/export_hf.py CHECKPOINT --out DIR")


def resolve_checkpoint(path):
    """A file, a DCP directory, or an out_dir (its best checkpoint as sample.py picks it: the
    newer of best.pt / best.dcp, else its latest regular checkpoint)."""
    import checkpoint as ck
    p = os.path.normpath(path)
    if not os.path.exists(p):
        raise UserError(f"no checkpoint at {path}; pass a ckpt_*.pt / best.pt file, a *.dcp directory "
                        "or an out_dir of train.py")
    if ck.is_sharded(p) or not os.path.isdir(p):
        return p
    best = [b for b in (ck.best_path(p), ck.best_path(p, sharded=True)) if os.path.exists(b)]
    if best:
        return max(best, key=os.path.getmtime)
    ckpts = ck.list_checkpoints(p)
    if not ckpts:
        raise UserError(f"{path} is a directory with no checkpoint (no best.pt, best.dcp or ckpt_*.pt); "
                        "pass a checkpoint or an out_dir of train.py")
    return ckpts[-1]


def check_exportable(model_config):
    """The target of a checkpoint's model_config: 'gpt2', 'qwen3' or 'llama' (CLASSES); settings
    no stock class computes exactly are refused, in one line naming the option."""
    from model import GPTConfig
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(GPTConfig) if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING}
    for k, v in model_config.items():
        if k not in GPT2_FIELDS | MODERN_FIELDS and k in defaults and v != defaults[k]:
            raise UserError(f"option {k}={v!r} is not a GPT-2 block or modern block setting the exporter knows; "
                            f"no Hugging Face class is known to express it (leave {k} at {defaults[k]!r})")
    c = {**defaults, **model_config}
    norm, qk, pos, mlp, bias = c["norm"], bool(c["qk_norm"]), c["pos"], c["mlp"], bool(c["bias"])
    if (norm, qk, pos, mlp) == ("layernorm", False, "learned", "gelu"):
        return "gpt2"
    modern = ", ".join(f"{k}={c[k]!r}" for k, d in (("norm", "layernorm"), ("qk_norm", False), ("pos", "learned"),
                                                    ("mlp", "gelu")) if c[k] != d)
    hint = "use the modern block (norm='rmsnorm', pos='rope', mlp='swiglu') or the GPT-2 block"
    if norm != "rmsnorm":
        raise UserError(f"option norm={norm!r} with {modern}: LlamaForCausalLM / Qwen3ForCausalLM have RMSNorm only "
                        f"and GPT2LMHeadModel has no rotary, SwiGLU or q/k norm, so no class expresses it; {hint}")
    if pos != "rope":
        raise UserError(f"option pos={pos!r} with {modern}: LlamaForCausalLM / Qwen3ForCausalLM have rotary "
                        f"positions only (no position embeddings), GPT2LMHeadModel has LayerNorm; {hint}")
    if mlp != "swiglu":
        raise UserError(f"option mlp={mlp!r} with {modern}: the MLP of LlamaForCausalLM / Qwen3ForCausalLM is "
                        f"SwiGLU (gate/up/down), GPT2LMHeadModel has LayerNorm and learned positions; {hint}")
    if qk and bias:
        raise UserError("option bias=True with qk_norm=True: Qwen3ForCausalLM (the class with per-head q/k RMSNorm) "
                        "has attention biases but no MLP biases; train with bias=False, or qk_norm=False "
                        "(LlamaForCausalLM has both)")
    return "qwen3" if qk else "llama"


@dataclasses.dataclass
class Folded:
    config: object          # transformers.GPT2Config / Qwen3Config / LlamaConfig
    state_dict: dict        # HF names -> fp32 tensors
    tied: bool
    kind: str = "gpt2"      # a key of CLASSES


def fold(model):
    """The config and state dict of the Hugging Face model (CLASSES) computing `model`'s logits."""
    import torch
    cfg = model.config
    kind = check_exportable(dataclasses.asdict(cfg))
    sd = {k: v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}
    return (_fold_gpt2 if kind == "gpt2" else _fold_modern)(model, sd, kind)


def _branch_mults(block):
    """The residual multiplier of each branch at this block: m_L^(-alpha) x module_hparams residual."""
    return {"attn": block.residual_mult * block.attn_mult, "mlp": block.residual_mult * block.mlp_mult}


def _fold_gpt2(model, sd, kind):
    import torch
    from model import mlp_hidden
    from transformers import GPT2Config
    cfg, p = model.config, model.parameterization
    C, H = cfg.n_embd, cfg.n_head
    d_head = C // H
    zeros = lambda n: torch.zeros(n, dtype=torch.float32)  # noqa: E731 (HF GPT-2 always has biases)
    out = {}
    tr = "transformer."
    out[tr + "wte.weight"] = sd[tr + "wte.weight"] * p.input_mult
    out[tr + "wpe.weight"] = sd[tr + "wpe.weight"] * p.input_mult
    q_fold = p.attn_scale(d_head) * math.sqrt(d_head)  # HF multiplies q.k by d_head^-0.5
    for i, block in enumerate(model.transformer.h):
        pre = f"{tr}h.{i}."
        mult = _branch_mults(block)
        for ln in ("ln_1", "ln_2"):
            out[pre + ln + ".weight"] = sd[pre + ln + ".weight"]
            out[pre + ln + ".bias"] = sd.get(pre + ln + ".bias", zeros(C))
        for name, branch in (("attn.c_attn", None), ("attn.c_proj", "attn"), ("mlp.c_fc", None),
                             ("mlp.c_proj", "mlp")):
            w = sd[pre + name + ".weight"]                    # nn.Linear: (out, in)
            b = sd.get(pre + name + ".bias", zeros(w.shape[0]))
            if name == "attn.c_attn":                          # q | k | v along the output axis
                w, b = w.clone(), b.clone()
                w[:C] *= q_fold
                b[:C] *= q_fold
            if branch is not None:
                w, b = w * mult[branch], b * mult[branch]
            out[pre + name + ".weight"] = w.t().contiguous()  # Conv1D: (in, out)
            out[pre + name + ".bias"] = b
    out[tr + "ln_f.weight"] = sd[tr + "ln_f.weight"]
    out[tr + "ln_f.bias"] = sd.get(tr + "ln_f.bias", zeros(C))
    lm = sd["lm_head.weight"] * p.logit_mult
    tied = bool(cfg.tie_embeddings and p.logit_mult == p.input_mult)
    if not tied:
        out["lm_head.weight"] = lm
    hf_cfg = GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=C, n_layer=cfg.n_layer, n_head=H,
        n_inner=mlp_hidden(cfg), activation_function="gelu",  # model.py: nn.GELU() (exact erf), not gelu_new
        resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
        layer_norm_epsilon=LN_EPS, scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False,
        reorder_and_upcast_attn=False, tie_word_embeddings=tied, use_cache=True,
        bos_token_id=None, eos_token_id=None,
    )
    return Folded(hf_cfg, out, tied, kind)


# model.py's Linear of each block -> the Llama / Qwen3 name, and the residual branch it ends
MODERN_LINEARS = (("attn.c_q", "self_attn.q_proj", None), ("attn.c_k", "self_attn.k_proj", None),
                  ("attn.c_v", "self_attn.v_proj", None), ("attn.c_proj", "self_attn.o_proj", "attn"),
                  ("mlp.c_gate", "mlp.gate_proj", None), ("mlp.c_fc", "mlp.up_proj", None),
                  ("mlp.c_proj", "mlp.down_proj", "mlp"))


def _fold_modern(model, sd, kind):
    """Qwen3ForCausalLM (qk_norm) or LlamaForCausalLM: nn.Linear layouts as they are."""
    from model import NORM_EPS, mlp_hidden
    from transformers import LlamaConfig, Qwen3Config
    cfg, p = model.config, model.parameterization
    C, H = cfg.n_embd, cfg.n_head
    d_head = C // H
    q_fold = p.attn_scale(d_head) * math.sqrt(d_head)  # HF multiplies q.k by head_dim^-0.5
    tr, out = "transformer.", {}
    out["model.embed_tokens.weight"] = sd[tr + "wte.weight"] * p.input_mult
    for i, block in enumerate(model.transformer.h):
        pre, hf = f"{tr}h.{i}.", f"model.layers.{i}."
        mult = _branch_mults(block)
        out[hf + "input_layernorm.weight"] = sd[pre + "ln_1.weight"]
        out[hf + "post_attention_layernorm.weight"] = sd[pre + "ln_2.weight"]
        for ours, theirs, branch in MODERN_LINEARS:
            s = mult[branch] if branch else (q_fold if ours == "attn.c_q" and not cfg.qk_norm else 1.0)
            out[hf + theirs + ".weight"] = sd[pre + ours + ".weight"] * s
            if pre + ours + ".bias" in sd:
                out[hf + theirs + ".bias"] = sd[pre + ours + ".bias"] * s
        if cfg.qk_norm:  # RMSNorm(q) * g, then RoPE (linear): the scale rides on the q gains
            out[hf + "self_attn.q_norm.weight"] = sd[pre + "attn.q_norm.weight"] * q_fold
            out[hf + "self_attn.k_norm.weight"] = sd[pre + "attn.k_norm.weight"]
    out["model.norm.weight"] = sd[tr + "ln_f.weight"]
    tied = bool(cfg.tie_embeddings and p.logit_mult == p.input_mult)
    if not tied:
        out["lm_head.weight"] = sd["lm_head.weight"] * p.logit_mult
    common = dict(
        vocab_size=cfg.vocab_size, hidden_size=C, intermediate_size=mlp_hidden(cfg), num_hidden_layers=cfg.n_layer,
        num_attention_heads=H, num_key_value_heads=H, head_dim=d_head, hidden_act="silu",
        max_position_embeddings=cfg.block_size, rms_norm_eps=NORM_EPS["rmsnorm"],
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        attention_bias=bool(cfg.bias), attention_dropout=cfg.dropout, initializer_range=cfg.init_std,
        tie_word_embeddings=tied, use_cache=True, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    if kind == "qwen3":  # bias=True was refused: Qwen3's MLP has no biases
        hf_cfg = Qwen3Config(**common, use_sliding_window=False, sliding_window=None)
    else:
        hf_cfg = LlamaConfig(**common, mlp_bias=bool(cfg.bias), pretraining_tp=1)
    return Folded(hf_cfg, out, tied, kind)


def build_hf(f):
    """The model of a Folded (its CLASSES class, fp32, eval mode): every one of its tensors given."""
    import torch
    import transformers
    hf = getattr(transformers, CLASSES[f.kind])(f.config).to(torch.float32)
    missing, unexpected = hf.load_state_dict(f.state_dict, strict=False)
    missing = [k for k in missing if not (f.tied and k == "lm_head.weight") and not k.endswith(".attn.bias")
               and not k.endswith(".attn.masked_bias")]
    assert not missing and not unexpected, (missing, unexpected)
    if f.tied:
        hf.tie_weights()
    return hf.eval()


def to_hf(model):
    """The Hugging Face model (GPT2LMHeadModel, Qwen3ForCausalLM or LlamaForCausalLM; fp32, eval
    mode) with `model`'s logits."""
    return build_hf(fold(model))


# ---------------------------------------------------------------------------------------
# Tokenizers

def char_tokenizer(itos):
    """A PreTrainedTokenizerFast for a character vocabulary (meta.json itos): every character is
    its own token, id = its index; decoding concatenates. No normalization, no special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    if len(set(itos)) != len(itos) or not all(isinstance(c, str) and len(c) == 1 for c in itos):
        raise UserError("the checkpoint's character vocabulary (meta itos) is not a list of distinct "
                        "single characters; it cannot be exported as a character tokenizer")
    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(itos)}, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                   model_max_length=None)


def read_tiktoken_ranks(path):
    """A tiktoken ranks file (base64 token, rank per line), e.g. gpt2.tiktoken."""
    ranks = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    tok, rank = line.split()
                    ranks[base64.b64decode(tok)] = int(rank)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the tiktoken ranks file {path} ({type(e).__name__}: {e}); "
                        "give gpt2.tiktoken (base64 token and rank per line)") from None
    return ranks


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (its vocab.json is written in these)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _bpe(ranks, token, max_rank):
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best[1]):
                best = (i, r)
        if best is None or best[1] >= max_rank:
            return parts
        i = best[0]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def bpe_tokenizer(ranks, specials=None):
    """A byte-level BPE PreTrainedTokenizerFast (GPT-2's) from tiktoken mergeable ranks: the
    vocabulary in GPT-2's byte-to-unicode alphabet, and each token's merge (the two parts BPE
    joins at its rank)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    specials = {"<|endoftext|>": max(ranks.values()) + 1} if specials is None else specials
    b2u = bytes_to_unicode()
    enc = lambda b: "".join(b2u[x] for x in b)  # noqa: E731
    vocab = {enc(t): r for t, r in ranks.items()}
    merges = []
    for t, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(t) > 1:
            parts = _bpe(ranks, t, r)
            if len(parts) != 2:
                raise UserError(f"the tiktoken ranks are not a BPE merge table (token of rank {r} "
                                f"does not split into two parts); give gpt2.tiktoken")
            merges.append((enc(parts[0]), enc(parts[1])))
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    eot = "<|endoftext|>"
    tok.add_special_tokens([eot] if eot in specials else [])
    kw = dict(bos_token=eot, eos_token=eot, unk_token=eot) if eot in specials else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, **kw)


def gpt2_ranks(ranks_file):
    """GPT-2's ranks: from --gpt2_ranks, else tiktoken's cache; None where neither is at hand."""
    if ranks_file:
        return read_tiktoken_ranks(ranks_file)
    try:
        import tiktoken
        return dict(tiktoken.get_encoding("gpt2")._mergeable_ranks)
    except Exception:  # not cached and no network
        return None


# ---------------------------------------------------------------------------------------

def dataset_meta(ckpt):
    """The tokenizer meta: the checkpoint's own, else its dataset's meta.json (as sample.py)."""
    meta = ckpt.get("meta") or {}
    if meta:  # a checkpoint may come from anywhere: its vocabulary is checked as a meta.json is
        from dataloader import check_meta
        return check_meta(meta, "the checkpoint's tokenizer meta", "export a checkpoint written by train.py")
    from dataloader import read_meta
    cfg = ckpt.get("config", {})
    ddir = cfg.get("data_dir") or os.path.join(REPO, "data", str(cfg.get("dataset", "")))
    try:
        return (read_meta(ddir) if os.path.isdir(ddir) else None) or {}
    except UserError:
        return {}


def block_description(cfg, kind):
    """The block's settings in words, for the model card."""
    from model import NORM_EPS, mlp_hidden
    if kind == "gpt2":
        return f"GPT-2: LayerNorm (eps {LN_EPS:g}), learned positions, GELU MLP (hidden {mlp_hidden(cfg)})"
    return (f"RMSNorm (eps {NORM_EPS['rmsnorm']:g}), {'per-head q/k RMSNorm, ' if cfg.qk_norm else ''}"
            f"RoPE (theta {cfg.rope_theta:g}), SwiGLU MLP (hidden {mlp_hidden(cfg)})")


ARCH_NAMES = {"gpt2": "GPT-2", "qwen3": "Qwen3-style", "llama": "Llama-style"}


def model_card(model, ckpt, path, commit, command, tokenizer_note, kind="gpt2"):
    cfg, p = model.config, model.parameterization
    cls = CLASSES[kind]
    c = ckpt.get("config", {})
    tokens = None
    if all(isinstance(c.get(k), int) for k in ("global_batch_size", "block_size")):
        tokens = ckpt["iter_num"] * c["global_batch_size"] * c["block_size"]
    val = ckpt.get("best_val_loss", math.inf)
    mh = json.dumps(p.module_hparams) if p.module_hparams else "none"
    rows = [
        ("shape", f"{cfg.n_layer} layers x {cfg.n_embd} wide, {cfg.n_head} heads (d_head {cfg.n_embd // cfg.n_head}), "
                  f"context {cfg.block_size}, vocabulary {cfg.vocab_size}, bias={cfg.bias}, "
                  f"{model.get_num_params(non_embedding=False):,} parameters"),
        ("block", f"{block_description(cfg, kind)}; exported as {cls}"),
        ("parameterization", f"{p.name} (alpha {p.alpha:g})"),
        ("base shape", f"base_n_embd={cfg.base_n_embd}, base_n_layer={cfg.base_n_layer}"),
        ("m_N", f"{p.m_N:g}"),
        ("m_L", f"{p.m_L:g}"),
        ("multipliers folded into the weights",
         f"input x{p.input_mult:.6g}, residual x{p.residual_mult:.6g} (times module_hparams residual), "
         f"attention {p.attn_scale(cfg.n_embd // cfg.n_head):.6g} = {p.attn_mult:g}/d_head^{p.attn_exponent:g}, "
         f"logits x{p.logit_mult:.6g}"),
        ("module_hparams", mh),
        ("training step", f"{ckpt['iter_num']}"),
        ("training tokens", f"{tokens:,}" if tokens is not None else "not recorded"),
        ("val loss (best)", f"{val:.4f}" if math.isfinite(val) else "not recorded"),
        ("commit", commit),
        ("checkpoint", path),
    ]
    lines = ["---", "library_name: transformers", "pipeline_tag: text-generation", "---", "",
             f"# {p.name} {ARCH_NAMES[kind]} ({cfg.n_layer}x{cfg.n_embd})", "",
             "A model trained with this repository's muP / CompleteP / Complete(d)P trainer, exported to a "
             f"standard `{cls}`. Every forward multiplier of the parameterization is folded into "
             f"the weights, so the plain {cls} forward gives the trained model's logits (fp32).", "",
             "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [
             "", "## Tokenizer", "", tokenizer_note, "", "## Load", "", "```python",
             "from transformers import AutoModelForCausalLM, AutoTokenizer",
             "model = AutoModelForCausalLM.from_pretrained(DIR)",
             "tok = AutoTokenizer.from_pretrained(DIR)" if "gpt2\")" not in tokenizer_note
             else 'tok = AutoTokenizer.from_pretrained("gpt2")  # where the hub is reachable',
             "```", "",
             f"Fine-tuning it as a plain {cls} is plain SP training: the muP learning-rate rules are "
             "not in the weights.",
             "", "## Made by", "", "```", command, "```", ""]
    return "\n".join(lines)


def export(src, out, ranks_file=None, command=None):
    """Export checkpoint (file, DCP directory or out_dir) `src` to the new directory `out`."""
    import checkpoint as ck
    out = os.path.normpath(out)
    if os.path.exists(out) and not (os.path.isdir(out) and not os.listdir(out)):
        raise UserError(f"--out {out} exists and is not an empty directory; name a new directory")
    path = resolve_checkpoint(src)
    ckpt = ck.load_checkpoint(path)
    check_exportable(ckpt["model_config"])
    model = ck.model_from(ckpt, path).eval()  # exactly as sample.py builds it
    folded = fold(model)
    meta = dataset_meta(ckpt)
    tok, note = None, ""
    if meta.get("tokenizer") == "char":
        tok = char_tokenizer(meta["itos"])
        note = (f"Character-level: {len(meta['itos'])} characters, each its own token (id = index in the "
                "training meta.json itos), no normalization, no special tokens; "
                "`AutoTokenizer.from_pretrained(DIR)` round-trips the vocabulary exactly.")
    elif meta.get("tokenizer", "gpt2") == "gpt2" and meta:
        ranks = gpt2_ranks(ranks_file)
        if ranks is not None:
            tok = bpe_tokenizer(ranks)
            note = "GPT-2 byte-level BPE (50257 tokens, `<|endoftext|>` = 50256), built from tiktoken's gpt2 ranks."
        else:
            note = ('GPT-2 byte-level BPE: the standard `gpt2` tokenizer, `AutoTokenizer.from_pretrained("gpt2")` '
                    "where the hub is reachable (its files could not be built offline here: pass --gpt2_ranks "
                    "gpt2.tiktoken to include them).")
    elif meta:
        raise UserError(f"tokenizer {meta.get('tokenizer')!r} of the checkpoint is neither 'char' nor 'gpt2'; "
                        "it cannot be exported")
    else:
        note = "No tokenizer was recorded with the checkpoint or its dataset; none is included."
    p_dir = os.path.dirname(os.path.abspath(path))
    commit = run_commit(p_dir) or (ckpt.get("config", {}).get("git_commit"))
    commit = commit if isinstance(commit, str) and commit else f"{git_commit()} (repository HEAD at export; the run recorded none)"
    command = command or "python scripts/export_hf.py " + " ".join(sys.argv[1:])
    card = model_card(model, ckpt, path, commit, command, note, folded.kind)

    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # no 'Writing model shards' bars
    tmp = f"{out}.tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        hf = build_hf(folded)
        hf.generation_config = GenerationConfig(max_length=model.config.block_size,
                                                eos_token_id=tok.eos_token_id if tok is not None else None,
                                                pad_token_id=tok.eos_token_id if tok is not None else None)
        hf.save_pretrained(tmp, safe_serialization=True)
        if tok is not None:
            tok.save_pretrained(tmp)  # tokenizer.json, tokenizer_config.json
            if meta.get("tokenizer") != "char":
                tok.backend_tokenizer.model.save(tmp)  # GPT-2's vocab.json and merges.txt as well
                vocab_path = os.path.join(tmp, "vocab.json")
                with open(vocab_path, encoding="utf-8") as f:
                    vocab = json.load(f)
                vocab.update({t.content: i for i, t in tok.added_tokens_decoder.items()})  # <|endoftext|>, as gpt2's
                with open(vocab_path, "w", encoding="utf-8") as f:
                    json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
            f.write(card)
        mask = os.umask(0)
        os.umask(mask)
        for name in os.listdir(tmp):  # safetensors writes 0600; the export is for sharing
            os.chmod(os.path.join(tmp, name), 0o666 & ~mask)
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked above)
        os.replace(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write {out} ({e.strerror or e}); free space or choose a writable place") from None
    return out, path, note


def main(argv=None):
    ap = _Parser(prog="scripts/export_hf.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a checkpoint file, a DCP directory, or an out_dir (its best checkpoint)")
    ap.add_argument("--out", required=True, help="the new Hugging Face model directory")
    ap.add_argument("--gpt2_ranks", default=None, help="gpt2.tiktoken, for GPT-2 BPE models without tiktoken's cache")
    a = ap.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out, path, note = export(a.checkpoint, a.out, a.gpt2_ranks)
    with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
        cls = (json.load(f).get("architectures") or ["?"])[0]
    print(f"{path} -> {out} ({cls}; tokenizer: {note.split(':')[0].split('.')[0]})")


if __name__ == "__main__":
    run_cli(main)

"""
A GPT-2-style pre-LN decoder with a `parameterization` switch: 'sp', 'mup', 'depth_mup'
(alpha = 0.5), 'completep' (alpha = 1) and 'completedp' (Complete(d)P, Mlodozeniec et al.,
arXiv 2512.22382: CompleteP's depth rules, the unembedding's 1/m_N moved into its weights,
and batch-size/duration rules for the optimizer), plus per-module multipliers
(`module_hparams`) under every parameterization.

Every multiplier comes from one place, `resolve_parameterization`, which implements the
table of docs/parameterization.md section 2 (Dey et al., arXiv 2505.01618, Table 1). Init, forward,
attention and the optimizer read the resolved `Parameterization`; nothing below it branches
on the name.
"""
import difflib
import json
import math
from dataclasses import dataclass, asdict, field
from typing import Optional

import torch
import torch.nn as nn
from torch.nn import functional as F

# ----------------------------------------------------------------------------------------
# The parameterization table (docs/parameterization.md sections 2 and 2b). Each name is a row of
# five switches:
#   width:     muP width rules (1/m_N hidden init variance, LR and eps; 1/d_head attention;
#              output_mult/m_N on the logits; input_mult on the embeddings)
#   alpha:     depth exponent of the depth family, None when depth is not scaled
#   gpt2_proj: GPT-2's sigma/sqrt(2L) init of the c_proj weights (SP only)
#   unembed_in_weights: Complete(d)P: no 1/m_N on the logits; instead the (untied) unembedding
#              has init std sigma/m_N, LR eta/m_N, WD lambda*m_N; the input embedding's eps is
#              eps/m_N (arXiv 2512.22382)
#   batch_duration: Complete(d)P's m_B/m_D rules on every group's LR, WD, eps and betas
PARAMETERIZATIONS = {
    "sp":         dict(width=False, alpha=None, gpt2_proj=True,  unembed_in_weights=False, batch_duration=False),
    "mup":        dict(width=True,  alpha=None, gpt2_proj=False, unembed_in_weights=False, batch_duration=False),
    "depth_mup":  dict(width=True,  alpha=0.5,  gpt2_proj=False, unembed_in_weights=False, batch_duration=False),
    "completep":  dict(width=True,  alpha=1.0,  gpt2_proj=False, unembed_in_weights=False, batch_duration=False),
    "completedp": dict(width=True,  alpha=1.0,  gpt2_proj=False, unembed_in_weights=True,  batch_duration=True),
}

# Parameter roles. Every parameter gets exactly one, assigned where the model is built.
ROLES = ("embedding", "hidden", "hidden_out", "hidden_bias", "block_norm", "qk_norm", "final_norm",
         "unembedding")

# Module types for per-module multipliers (`module_hparams`); a bias follows its module. Each
# parameter gets one type, assigned where the model is built (GPT.__init__, Block.roles). Two
# names cover several types: attn_qkv (attn_q, attn_k, attn_v; in the GPT-2 block, whose fused
# c_attn is one tensor, it is the only one) and block_norm (attn_norm, mlp_norm).
MODULE_TYPES = ("embedding", "attn_qkv", "attn_q", "attn_k", "attn_v", "attn_out", "qk_norm",
                "block_norm", "attn_norm", "mlp_norm", "mlp_gate", "mlp_in", "mlp_out", "final_norm",
                "unembedding")
TYPE_GROUPS = {"attn_qkv": ("attn_q", "attn_k", "attn_v"), "block_norm": ("attn_norm", "mlp_norm")}
BLOCK_TYPES = ("attn_qkv", "attn_q", "attn_k", "attn_v", "attn_out", "qk_norm", "block_norm", "attn_norm",
               "mlp_norm", "mlp_gate", "mlp_in", "mlp_out")  # inside the blocks: may have a depth profile
NORM_TYPES = ("qk_norm", "block_norm", "attn_norm", "mlp_norm", "final_norm")  # gains: no init std, no WD
MODULE_HPARAMS = ("lr", "wd", "init_std", "eps", "beta1", "beta2")  # beta*: multiply 1 - beta
RESIDUAL_BRANCHES = ("attn", "mlp")  # module_hparams["residual"]: per-branch multipliers
# module_hparams["depth"]: {hyperparameter: one value per proxy layer}, multiplying every block
# module type's value at that layer (the type x depth factorisation of arXiv 2512.22382)
NORMS, POSITIONS, MLPS = ("layernorm", "rmsnorm"), ("learned", "rope"), ("gelu", "swiglu")
NORM_EPS = {"layernorm": 1e-5, "rmsnorm": 1e-6}  # torch's LayerNorm default; Qwen3's rms_norm_eps
# The two blocks by name, as GPTConfig block options (config/modern.py sets the same in train.py;
# the coordinate check and the laziness script take --block)
BLOCKS = {"gpt2": dict(norm="layernorm", qk_norm=False, pos="learned", mlp="gelu"),
          "modern": dict(norm="rmsnorm", qk_norm=True, pos="rope", mlp="swiglu", bias=False)}


def is_gpt2_block(cfg):
    """The GPT-2 block: LayerNorm, learned positions, GELU MLP, no QK-norm. It keeps GPT-2's fused
    c_attn (one tensor for q, k and v); every other block has separate c_q, c_k, c_v."""
    return cfg.norm == "layernorm" and cfg.pos == "learned" and cfg.mlp == "gelu" and not cfg.qk_norm


def mlp_hidden(cfg):
    """The MLP's hidden width: ceil(mlp_ratio * n_embd); mlp_ratio None is 4 for GELU (GPT-2) and
    8/3 for SwiGLU (its three matrices then hold about the parameters of GELU's two)."""
    ratio = cfg.mlp_ratio if cfg.mlp_ratio is not None else (4.0 if cfg.mlp == "gelu" else 8.0 / 3.0)
    return math.ceil(ratio * cfg.n_embd - 1e-9)


def module_types(cfg):
    """The module types the parameters of a model of these settings have, in MODULE_TYPES' order
    (the group name block_norm, and attn_qkv outside the GPT-2 block, cover several of them)."""
    fused = is_gpt2_block(cfg)
    absent = {"block_norm", *(("attn_q", "attn_k", "attn_v") if fused else ("attn_qkv",))}
    absent |= {"qk_norm"} if not cfg.qk_norm else set()
    absent |= {"mlp_gate"} if cfg.mlp != "swiglu" else set()
    absent |= {"unembedding"} if cfg.tie_embeddings else set()
    return tuple(t for t in MODULE_TYPES if t not in absent)


@dataclass(frozen=True)
class RoleRule:
    init_std: Optional[float]  # None: LayerNorm gain 1 / bias 0
    lr_mult: float             # the group's LR is lr(t) * lr_mult
    wd_mult: float             # the group's weight decay is weight_decay * wd_mult
    eps_mult: float            # the group's AdamW eps is eps * eps_mult


@dataclass(frozen=True)
class Parameterization:
    name: str
    m_N: float              # width multiplier n_embd / base_n_embd
    m_L: float              # depth multiplier n_layer / base_n_layer
    alpha: float            # depth exponent (0 when depth is not scaled)
    residual_mult: float    # x + residual_mult * f(LN(x)), both branches
    input_mult: float       # applied to wte(idx) + wpe(pos)
    logit_mult: float       # applied to x W^T of the unembedding
    attn_exponent: float    # attention scale is attn_mult * d_head ** -attn_exponent
    attn_mult: float        # muP's base multiplier on the attention logits
    roles: dict             # role -> RoleRule
    batch_duration: bool    # Complete(d)P's m_B/m_D optimizer rules apply
    module_hparams: dict    # validated per-module multipliers (base-scale values)
    base_n_layer: int
    n_layer: int

    def attn_scale(self, head_dim):
        return self.attn_mult * head_dim ** -self.attn_exponent

    def module_mult(self, mtype, hp, layer=None):
        """The multiplier of hyperparameter `hp` for module type `mtype` at block `layer`:
        module_hparams[mtype][hp], or its group's (attn_qkv, block_norm) when the type has none,
        or 1.0; for a block type times module_hparams["depth"][hp] at that layer (the type x
        depth factorisation). A list is a depth profile, read at the layer by `at_layer`."""
        mh = self.module_hparams
        group = next((g for g, members in TYPE_GROUPS.items() if mtype in members), None)
        v = mh.get(mtype, {}).get(hp, mh.get(group, {}).get(hp, 1.0))
        v = self.at_layer(v, layer)
        if mtype in BLOCK_TYPES and hp in mh.get("depth", {}):
            v = v * self.at_layer(mh["depth"][hp], layer)
        return v

    def at_layer(self, v, layer):
        """A depth profile's value at block `layer` (a number is the same everywhere). Proxy
        layer i sits at i/(base_n_layer-1) and layer j of this model at j/(n_layer-1) in [0, 1]
        (0.5 for a single layer), and the value is linearly interpolated there, so the first and
        last layers keep the profile's ends."""
        if not isinstance(v, list):
            return v
        nb, n = len(v), self.n_layer
        if nb == 1:
            return v[0]
        x = (nb - 1) * (layer / (n - 1) if n > 1 else 0.5)  # position on the proxy's layers
        if n > 1 and (nb - 1) * layer % (n - 1) == 0:       # on a proxy layer: its value exactly
            return v[(nb - 1) * layer // (n - 1)]
        i = min(int(x), nb - 2)
        return v[i] + (x - i) * (v[i + 1] - v[i])

    def table(self):
        """Plain-dict form, for logs, checkpoints and the README."""
        d = {k: v for k, v in asdict(self).items() if k != "roles"}
        d["roles"] = {r: asdict(rule) for r, rule in self.roles.items()}
        return d


def _check_module_hparams(mh, cfg):
    """One-line ValueErrors for module_hparams; returns a plain copy (floats, lists of floats)."""
    def name_error(kind, name, choices, where=""):
        hint = difflib.get_close_matches(str(name), choices, n=1)
        return ValueError(f"module_hparams: unknown {kind} {name!r}{where}"
                          + (f"; did you mean {hint[0]!r}?" if hint else f"; use one of {', '.join(choices)}"))
    if not isinstance(mh, dict):
        raise ValueError(f"module_hparams must be a dict like {{'attn_qkv': {{'lr': 1.6}}}}, got {mh!r}")
    present = module_types(cfg)
    out = {}
    for mtype, hps in mh.items():
        if mtype not in MODULE_TYPES + ("residual", "depth"):
            raise name_error("module type", mtype, MODULE_TYPES + ("residual", "depth"))
        names = RESIDUAL_BRANCHES if mtype == "residual" else MODULE_HPARAMS
        if not isinstance(hps, dict):
            raise ValueError(f"module_hparams[{mtype!r}] must be a dict of multipliers like "
                             f"{{{names[0]!r}: {'[1.0, 0.8]' if mtype == 'depth' else '1.5'}}}, got {hps!r}")
        if mtype == "unembedding" and cfg.tie_embeddings:
            raise ValueError("module_hparams['unembedding'] needs tie_embeddings=False (tied, the "
                             "shared tensor is the 'embedding')")
        if mtype in ("attn_q", "attn_k", "attn_v") and "attn_q" not in present:
            raise ValueError(f"module_hparams[{mtype!r}]: the GPT-2 block's fused c_attn is one tensor for q, k "
                             "and v; use 'attn_qkv', or a block with separate q, k, v (any of norm='rmsnorm', "
                             "qk_norm=True, pos='rope', mlp='swiglu')")
        if mtype in ("qk_norm", "mlp_gate") and mtype not in present:
            raise ValueError(f"module_hparams[{mtype!r}]: this model has no {mtype} "
                             f"({'set qk_norm=True' if mtype == 'qk_norm' else 'set mlp=' + repr('swiglu')}, or remove it)")
        out[mtype] = {}
        for hp, v in hps.items():
            if hp not in names:
                raise name_error("branch" if mtype == "residual" else "hyperparameter", hp, names, f" of {mtype}")
            if mtype in NORM_TYPES and hp in ("init_std", "wd"):
                raise ValueError(f"module_hparams[{mtype!r}][{hp!r}]: norm gains start at 1 (biases 0) and have "
                                 "no weight decay; remove it")
            where = f"module_hparams[{mtype!r}][{hp!r}]"
            group = next((g for g, members in TYPE_GROUPS.items() if mtype in members), None)
            theirs = mh.get(group) if group else None
            if isinstance(theirs, dict) and hp in theirs:
                raise ValueError(f"{where} and module_hparams[{group!r}][{hp!r}] both set {mtype}'s {hp}; "
                                 f"{group} covers {', '.join(TYPE_GROUPS[group])}: give it once")
            if mtype == "depth" and not isinstance(v, (list, tuple)):
                raise ValueError(f"{where}: the depth factor has one value per proxy layer ({cfg.base_n_layer}, "
                                 f"base_n_layer), like [1.0, 0.8]; a multiplier for every layer is the "
                                 "hyperparameter itself")
            if isinstance(v, (list, tuple)):
                if mtype not in BLOCK_TYPES + ("residual", "depth"):
                    raise ValueError(f"{where}: a per-layer profile needs a block module "
                                     f"({', '.join(BLOCK_TYPES + ('residual', 'depth'))}); give {mtype} one number")
                if len(v) != cfg.base_n_layer:
                    raise ValueError(f"{where}: a per-layer profile has one value per proxy layer: "
                                     f"{cfg.base_n_layer} (base_n_layer), got {len(v)}")
                vals = list(v)
            else:
                vals = [v]
            for x in vals:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x < math.inf:
                    raise ValueError(f"{where}={v!r}: multipliers must be positive finite numbers")
            vals = [float(x) for x in vals]
            out[mtype][hp] = vals if isinstance(v, (list, tuple)) else vals[0]
    return out


def resolve_parameterization(cfg):
    """The multipliers of docs/parameterization.md section 2 for a GPTConfig. Raises ValueError on bad settings."""
    if cfg.parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"unknown parameterization {cfg.parameterization!r}; "
                         f"use one of {', '.join(PARAMETERIZATIONS)}")
    row = PARAMETERIZATIONS[cfg.parameterization]
    if cfg.base_n_embd <= 0 or cfg.base_n_layer <= 0:
        raise ValueError(f"base_n_embd={cfg.base_n_embd} and base_n_layer={cfg.base_n_layer} "
                         "must be positive; set them to the proxy model's width and depth")
    if row["alpha"] is None:
        if cfg.depth_alpha is not None:
            raise ValueError(f"depth_alpha={cfg.depth_alpha} has no meaning for "
                             f"parameterization={cfg.parameterization!r}; remove it or use "
                             "depth_mup/completep/completedp")
        alpha = 0.0
    else:
        alpha = row["alpha"] if cfg.depth_alpha is None else float(cfg.depth_alpha)
        if not 0.5 <= alpha <= 1.0:
            raise ValueError(f"depth_alpha={alpha} is outside [0.5, 1]; pick a value in "
                             "[0.5, 1] (0.5 = depth-muP, 1 = CompleteP)")
    if row["unembed_in_weights"] and cfg.tie_embeddings:
        raise ValueError(f"parameterization={cfg.parameterization!r} needs an untied unembedding "
                         "(its 1/m_N lives in the lm_head weights); set tie_embeddings=False")
    if not row["width"] and (cfg.input_mult != 1.0 or cfg.output_mult != 1.0 or cfg.attn_mult != 1.0):
        raise ValueError(f"input_mult={cfg.input_mult}/output_mult={cfg.output_mult}/attn_mult={cfg.attn_mult} "
                         "are muP multipliers; leave them at 1.0 for parameterization='sp'")

    sigma = cfg.init_std
    # m_N = n_embd / base_n_embd, m_L = n_layer / base_n_layer (docs/parameterization.md section 1): derived, never typed.
    m_N = cfg.n_embd / cfg.base_n_embd
    m_L = cfg.n_layer / cfg.base_n_layer
    w = m_N if row["width"] else 1.0                # width factor of the muP rules
    d = m_L if row["alpha"] is not None else 1.0    # depth factor of the depth family

    # hidden weight init std: sigma / sqrt(m_N); SP: sigma, c_proj sigma / sqrt(2L) (GPT-2)
    hidden_std = sigma / math.sqrt(w)
    proj_std = sigma / math.sqrt(2 * cfg.n_layer) if row["gpt2_proj"] else hidden_std
    # hidden weight LR: eta / m_N * m_L^(alpha-1); WD: lambda * m_N (AdamW shrink lr*wd is
    # then eta*lambda*m_L^(alpha-1): width-independent, and depth-independent for alpha=1)
    hidden_lr = d ** (alpha - 1.0) / w
    # in-block AdamW eps: eps / m_N * m_L^(-alpha)
    inblock_eps = d ** (-alpha) / w
    # hidden bias and block LayerNorm LR: eta * m_L^(alpha-1), WD 0
    inblock_lr = d ** (alpha - 1.0)
    hidden = RoleRule(hidden_std, hidden_lr, w, inblock_eps)
    # Complete(d)P: the logits' 1/m_N moves into the unembedding: init std sigma/m_N, LR eta/m_N,
    # WD lambda*m_N (the per-step shrink lr*wd stays eta*lambda); input embedding eps / m_N
    u = m_N if row["unembed_in_weights"] else 1.0
    roles = {
        "embedding":   RoleRule(sigma, 1.0, 1.0, 1.0 / u),
        "hidden":      hidden,
        "hidden_out":  RoleRule(proj_std, hidden.lr_mult, hidden.wd_mult, hidden.eps_mult),
        "hidden_bias": RoleRule(0.0, inblock_lr, 0.0, inblock_eps),
        "block_norm":  RoleRule(None, inblock_lr, 0.0, inblock_eps),
        # QK-norm gains (one per head dimension, shared by the heads): the in-block LR, WD 0, and
        # eps * m_L^(-alpha) with no width factor (arXiv 2512.22382's table, as transcribed)
        "qk_norm":     RoleRule(None, inblock_lr, 0.0, d ** (-alpha)),
        "final_norm":  RoleRule(None, 1.0, 0.0, 1.0),
        "unembedding": RoleRule(sigma / u, 1.0 / u, u, 1.0),  # used only when untied
    }
    return Parameterization(
        name=cfg.parameterization, m_N=m_N, m_L=m_L, alpha=alpha,
        residual_mult=d ** (-alpha),                  # x + m_L^(-alpha) f(LN(x))
        input_mult=cfg.input_mult,                    # input_mult * (wte + wpe)
        logit_mult=cfg.output_mult / (w / u),         # output_mult / m_N * x W^T (completedp: no 1/m_N)
        attn_exponent=1.0 if row["width"] else 0.5,   # q.k / d_head vs q.k / sqrt(d_head)
        attn_mult=cfg.attn_mult,                      # attn_mult * q.k / d_head (muP family)
        roles=roles,
        batch_duration=row["batch_duration"],
        module_hparams=_check_module_hparams(cfg.module_hparams, cfg),
        base_n_layer=cfg.base_n_layer, n_layer=cfg.n_layer,
    )

# ----------------------------------------------------------------------------------------


@dataclass
class GPTConfig:
    """The model's settings. The defaults are train.py's (tests/test_model.py checks that
    they agree), so GPT(GPTConfig()) is the model `python train.py` builds."""
    block_size: int = 128
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True              # biases in Linears and LayerNorms
    parameterization: str = "completep"
    base_n_embd: int = 64          # proxy width the hyperparameters were tuned at
    base_n_layer: int = 2          # proxy depth the hyperparameters were tuned at
    depth_alpha: Optional[float] = None  # None: 0.5 for depth_mup, 1.0 for completep
    init_std: float = 0.02         # sigma
    input_mult: float = 1.0
    output_mult: float = 1.0
    attn_mult: float = 1.0         # muP family: attention logits attn_mult * q.k / d_head
    tie_embeddings: bool = True
    module_hparams: dict = field(default_factory=dict)  # per-module multipliers (MODULE_TYPES)
    # the block (docs/parameterization.md section 2c); the defaults are GPT-2's
    norm: str = "layernorm"        # 'layernorm' | 'rmsnorm' (block and final norms)
    qk_norm: bool = False          # RMSNorm over each head's q and k, one gain vector shared by the heads
    pos: str = "learned"           # 'learned' (wpe) | 'rope' (rotary, no wpe)
    rope_theta: float = 10000.0    # RoPE base
    mlp: str = "gelu"              # 'gelu' | 'swiglu'
    mlp_ratio: Optional[float] = None  # MLP hidden width ceil(mlp_ratio * n_embd); None: 4 (gelu), 8/3 (swiglu)
    z_loss: float = 0.0            # training loss + z_loss * mean(logsumexp(logits)^2); eval stays cross-entropy

    def __post_init__(self):
        for k in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, k) <= 0:
                raise ValueError(f"{k}={getattr(self, k)} must be a positive integer")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                             "choose n_head dividing n_embd")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        if self.init_std <= 0:
            raise ValueError(f"init_std={self.init_std} must be positive")
        for k in ("input_mult", "output_mult", "attn_mult"):  # 0: the model never sees its input, or logits are 0
            if not (math.isfinite(getattr(self, k)) and getattr(self, k) > 0):
                raise ValueError(f"{k}={getattr(self, k)} must be a positive finite number")
        for k, choices in (("norm", NORMS), ("pos", POSITIONS), ("mlp", MLPS)):
            if getattr(self, k) not in choices:
                raise ValueError(f"{k}={getattr(self, k)!r} is not one of {', '.join(map(repr, choices))}")
        if self.pos == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"pos='rope' rotates pairs of dimensions: the head size n_embd/n_head = "
                             f"{self.n_embd // self.n_head} must be even")
        if not (math.isfinite(self.rope_theta) and self.rope_theta > 1):
            raise ValueError(f"rope_theta={self.rope_theta} must be a finite number above 1 (10000 is usual)")
        if self.mlp_ratio is not None and not (math.isfinite(self.mlp_ratio) and self.mlp_ratio > 0):
            raise ValueError(f"mlp_ratio={self.mlp_ratio} must be a positive number (or None for the default)")
        if not (math.isfinite(self.z_loss) and self.z_loss >= 0):
            raise ValueError(f"z_loss={self.z_loss} must be 0 (off) or a positive coefficient such as 1e-4")
        resolve_parameterization(self)  # validate now, with one-line errors


def make_norm(cfg, dim):
    """A block, final or QK norm: LayerNorm (bias per cfg.bias) or RMSNorm (a gain only)."""
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(dim, eps=NORM_EPS["rmsnorm"])
    return nn.LayerNorm(dim, eps=NORM_EPS["layernorm"], bias=cfg.bias)


def rope_tables(head_dim, n_pos, theta):
    """cos, sin of shape (n_pos, head_dim) for rotary positions: frequency i = theta^(-2i/d),
    each repeated for the two halves of the head (the rotate-half layout Hugging Face's Llama
    and Qwen3 use, computed as they do, in fp32)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = torch.outer(torch.arange(n_pos, dtype=torch.int64).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    """x (B, nh, T, hs) rotated by the positions' cos, sin (T, hs): x cos + rotate_half(x) sin."""
    h = x.size(-1) // 2
    rotated = torch.cat((-x[..., h:], x[..., :h]), dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class CausalSelfAttention(nn.Module):

    def __init__(self, cfg, p):
        super().__init__()
        self.n_head = cfg.n_head
        self.fused = is_gpt2_block(cfg)
        if self.fused:  # GPT-2: one tensor for q, k and v
            self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        else:
            self.c_q = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
            self.c_k = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
            self.c_v = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        if cfg.qk_norm:  # over each head's q and k; one gain vector shared by the heads
            hs = cfg.n_embd // cfg.n_head
            self.q_norm = nn.RMSNorm(hs, eps=NORM_EPS["rmsnorm"])
            self.k_norm = nn.RMSNorm(hs, eps=NORM_EPS["rmsnorm"])
        self.qk_norm = cfg.qk_norm
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout
        self.scale = p.attn_scale(cfg.n_embd // cfg.n_head)
        self.kv_cache = None  # a dict while GPT.generate runs with use_cache

    def heads(self, x, rope=None):
        """The queries, keys and values attention uses, (B, n_head, T, head_size) each: projected,
        QK-normed (before RoPE, as Qwen3), rotated. The coordinate check reads q and k here."""
        B, T, C = x.size()
        if self.fused:
            q, k, v = self.c_attn(x).split(C, dim=2)
        else:
            q, k, v = self.c_q(x), self.c_k(x), self.c_v(x)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head) for z in (q, k, v))
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v

    def forward(self, x, rope=None):
        """rope: (cos, sin) of this call's positions, or None (learned positions). With
        self.kv_cache a dict (generation only, GPT.generate sets it): this layer's keys and values
        are kept there; the first call fills it from the prompt, each later call adds one
        position. It lives on the module, not in the call's arguments, so wrappers that copy
        arguments (FSDP, compile) cannot lose it."""
        cache = self.kv_cache
        B, T, C = x.size()
        q, k, v = self.heads(x, rope)
        if cache is not None:
            if "k" in cache:  # one new position: it sees every cached one
                assert T == 1, "a filled KV cache takes one position at a time"
                k, v = torch.cat((cache["k"], k), dim=2), torch.cat((cache["v"], v), dim=2)
            cache["k"], cache["v"] = k, v
        # flash attention where the backend has it; the scale is explicit (1/hs for muP)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, scale=self.scale,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """GELU: c_proj(gelu(c_fc x)); SwiGLU: c_proj(silu(c_gate x) * c_fc x)."""

    def __init__(self, cfg):
        super().__init__()
        hidden = mlp_hidden(cfg)
        self.swiglu = cfg.mlp == "swiglu"
        if self.swiglu:
            self.c_gate = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        h = F.silu(self.c_gate(x)) * self.c_fc(x) if self.swiglu else self.gelu(self.c_fc(x))
        return self.dropout(self.c_proj(h))


class Block(nn.Module):

    def __init__(self, cfg, p, layer):
        super().__init__()
        self.ln_1 = make_norm(cfg, cfg.n_embd)
        self.attn = CausalSelfAttention(cfg, p)
        self.ln_2 = make_norm(cfg, cfg.n_embd)
        self.mlp = MLP(cfg)
        self.layer = layer
        self.residual_mult = p.residual_mult  # m_L^(-alpha), depth family only
        # per-branch multipliers of module_hparams["residual"] (1.0 when unset)
        self.attn_mult = p.module_mult("residual", "attn", layer)
        self.mlp_mult = p.module_mult("residual", "mlp", layer)

    def forward(self, x, rope=None):
        # x + m_L^(-alpha) * branch multiplier * f(norm(x)); a factor of exactly 1 is skipped (the
        # result is the same bits, one multiplication fewer)
        a, m = self.residual_mult * self.attn_mult, self.residual_mult * self.mlp_mult
        h = self.attn(self.ln_1(x), rope)
        x = x + (h if a == 1.0 else a * h)
        h = self.mlp(self.ln_2(x))
        return x + (h if m == 1.0 else m * h)

    def roles(self):
        """Module type and roles of each Linear/norm of the block:
        (module, module type, weight role, bias role)."""
        attn, mlp = self.attn, self.mlp
        qkv = ([(attn.c_attn, "attn_qkv", "hidden", "hidden_bias")] if attn.fused else
               [(getattr(attn, f"c_{z}"), f"attn_{z}", "hidden", "hidden_bias") for z in "qkv"])
        qk = [(attn.q_norm, "qk_norm", "qk_norm", None), (attn.k_norm, "qk_norm", "qk_norm", None)] if attn.qk_norm else []
        gate = [(mlp.c_gate, "mlp_gate", "hidden", "hidden_bias")] if mlp.swiglu else []
        return ([(self.ln_1, "attn_norm", "block_norm", "block_norm")] + qkv + qk
                + [(attn.c_proj, "attn_out", "hidden_out", "hidden_bias"),
                   (self.ln_2, "mlp_norm", "block_norm", "block_norm")]
                + gate + [(mlp.c_fc, "mlp_in", "hidden", "hidden_bias"),
                          (mlp.c_proj, "mlp_out", "hidden_out", "hidden_bias")])


class GPT(nn.Module):

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.parameterization = p = resolve_parameterization(cfg)  # the resolved multipliers
        modules = dict(wte=nn.Embedding(cfg.vocab_size, cfg.n_embd))
        if cfg.pos == "learned":
            modules["wpe"] = nn.Embedding(cfg.block_size, cfg.n_embd)
        modules.update(drop=nn.Dropout(cfg.dropout),
                       h=nn.ModuleList([Block(cfg, p, i) for i in range(cfg.n_layer)]),
                       ln_f=make_norm(cfg, cfg.n_embd))
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        if cfg.pos == "rope":  # not saved: a function of the settings
            cos, sin = rope_tables(cfg.n_embd // cfg.n_head, cfg.block_size, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

        # roles, module types and layers, by parameter name; checked to cover every parameter once
        sites = [(self.transformer[k], "embedding", "embedding", None, None) for k in ("wte", "wpe")
                 if k in self.transformer]
        for block in self.transformer.h:
            sites += [(m, t, w, b, block.layer) for m, t, w, b in block.roles()]
        sites.append((self.transformer.ln_f, "final_norm", "final_norm", "final_norm", None))
        if not cfg.tie_embeddings:
            sites.append((self.lm_head, "unembedding", "unembedding", None, None))
        by_id = {}
        for module, mtype, w_role, b_role, layer in sites:
            for tensor, role in ((module.weight, w_role), (getattr(module, "bias", None), b_role)):
                if tensor is not None:
                    assert id(tensor) not in by_id, "parameter given two roles"
                    by_id[id(tensor)] = (role, mtype, layer)
        named = list(self.named_parameters())
        self.param_roles = {n: by_id[id(t)][0] for n, t in named}
        self.param_types = {n: by_id[id(t)][1] for n, t in named}
        self.param_layers = {n: by_id[id(t)][2] for n, t in named}
        assert len(self.param_roles) == len(by_id), "a role was given to a non-parameter"
        self.reset_parameters()

    def param_rule(self, name):
        """The table's RoleRule of a parameter times its module multipliers (base-scale values,
        so the parameterization scales them exactly as it scales the global ones), plus the
        multipliers of 1 - beta1 and 1 - beta2: (RoleRule, beta1 mult, beta2 mult)."""
        rule = self.parameterization.roles[self.param_roles[name]]
        mtype, layer = self.param_types[name], self.param_layers[name]
        m = {hp: self.parameterization.module_mult(mtype, hp, layer) for hp in MODULE_HPARAMS}
        std = rule.init_std if rule.init_std is None else rule.init_std * m["init_std"]
        return (RoleRule(std, rule.lr_mult * m["lr"], rule.wd_mult * m["wd"], rule.eps_mult * m["eps"]),
                m["beta1"], m["beta2"])

    @torch.no_grad()
    def reset_parameters(self):
        """Init from the table: normal(0, std of the role x init_std multiplier); LayerNorm 1/0;
        Linear biases 0."""
        for name, t in self.named_parameters():
            rule = self.param_rule(name)[0]
            if rule.init_std is None:  # LayerNorm
                t.fill_(1.0 if name.endswith("weight") else 0.0)
            elif rule.init_std == 0.0:
                t.zero_()
            else:
                t.normal_(0.0, rule.init_std)

    def get_num_params(self, non_embedding=True):
        n = sum(t.numel() for t in self.parameters())
        if non_embedding and "wpe" in self.transformer:  # wpe only: wte doubles as (or sits beside) the unembedding matmul
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None, return_hidden=False, return_parts=False):
        """While generate() keeps a KV cache, idx continues the cached positions. The loss is the
        training objective: cross-entropy, plus z_loss * mean(logsumexp(logits)^2) in training
        mode when z_loss > 0 (in eval mode cross-entropy alone). return_parts adds
        dict(ce=cross-entropy, z=the z-loss term) after the loss."""
        B, T = idx.size()
        cache = self.transformer.h[0].attn.kv_cache
        start = cache["k"].size(2) if cache and "k" in cache else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of length {start + T} is longer than block_size="
                             f"{self.config.block_size}")
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if "wpe" in self.transformer:
            x = x + self.transformer.wpe(torch.arange(start, start + T, dtype=torch.long, device=idx.device))
        else:
            rope = (self.rope_cos[start:start + T], self.rope_sin[start:start + T])
        x = self.transformer.drop(self.parameterization.input_mult * x)
        for block in self.transformer.h:
            x = block(x, rope)
        hidden = x  # residual stream after the last block, before ln_f
        x = self.transformer.ln_f(x)
        # the logit multiplier belongs to the model: training, eval and generation share it
        logits = self.parameterization.logit_mult * self.lm_head(x)  # (B, T, vocab)
        loss = parts = None
        if targets is not None:
            flat, tflat = logits.float().view(-1, logits.size(-1)), targets.reshape(-1)
            loss = F.cross_entropy(flat, tflat, ignore_index=-1)
            parts = dict(ce=loss, z=torch.zeros((), device=loss.device))
            if self.config.z_loss > 0 and self.training:
                counted = (tflat != -1).to(flat.dtype)
                parts["z"] = self.config.z_loss * (torch.logsumexp(flat, dim=-1).square() * counted).sum() / counted.sum()
                loss = loss + parts["z"]
        out = (logits, loss) + ((parts,) if return_parts else ()) + ((hidden,) if return_hidden else ())
        return out

    def param_groups(self, learning_rate, weight_decay, eps, betas=(0.9, 0.95), m_B=1.0, m_D=1.0):
        """AdamW groups with their lr_mult and effective lr, wd, eps and betas: one per role, split
        further only where module multipliers make settings differ. m_B = B / B_base and
        m_D = D / D_base are Complete(d)P's batch and duration multipliers."""
        if not self.parameterization.batch_duration and (m_B, m_D) != (1.0, 1.0):
            raise ValueError(f"m_B={m_B:g}, m_D={m_D:g}: batch/duration rules need "
                             f"parameterization='completedp', not {self.parameterization.name!r}")
        # Complete(d)P (arXiv 2512.22382): LR and WD x sqrt(m_B/m_D), eps x sqrt(m_D/m_B),
        # 1 - beta x m_B/m_D: the AdamW timescale B/(lr*wd*D) and the moment half-lives as
        # fractions of the D/B steps stay fixed
        s, k = math.sqrt(m_B / m_D), m_B / m_D
        params = dict(self.named_parameters())
        groups, index = [], {}
        for role in ROLES:
            for name in (n for n, r in self.param_roles.items() if r == role):
                rule, b1m, b2m = self.param_rule(name)
                bs = tuple(b if f == 1.0 else 1.0 - f * (1.0 - b) for b, f in zip(betas, (b1m * k, b2m * k)))
                if not all(0.0 <= b < 1.0 for b in bs):
                    raise ValueError(f"{name} ({self.param_types[name]}): betas {bs[0]:.6g}, {bs[1]:.6g} "
                                     f"fall outside [0, 1) (1 - beta times the beta multipliers {b1m:g}, {b2m:g} "
                                     f"and m_B/m_D = {k:g}); lower the multipliers or change "
                                     "base_batch_size/base_tokens")
                g = dict(role=role, init_std=rule.init_std, lr_mult=rule.lr_mult * s,
                         weight_decay=weight_decay * rule.wd_mult * s, eps=eps * rule.eps_mult / s, betas=bs)
                key = tuple(g.values())
                if key not in index:
                    index[key] = dict(params=[], names=[], modules=[], **g)
                    index[key]["lr"] = learning_rate * index[key]["lr_mult"]
                    groups.append(index[key])
                grp = index[key]
                grp["params"].append(params[name])
                grp["names"].append(name)
                if self.param_types[name] not in grp["modules"]:
                    grp["modules"].append(self.param_types[name])
        covered = [id(t) for g in groups for t in g["params"]]
        assert len(covered) == len(set(covered)) == len(params), \
            "optimizer groups must cover every parameter exactly once"
        return groups

    def configure_optimizers(self, weight_decay, learning_rate, betas, eps=1e-8,
                             device_type="cpu", m_B=1.0, m_D=1.0, fused=None):
        """AdamW over param_groups; fused kernels by default on CUDA (fused=None), or as told."""
        groups = self.param_groups(learning_rate, weight_decay, eps, betas, m_B, m_D)
        extra = dict(fused=True) if (device_type == "cuda" if fused is None else fused) else {}
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, **extra)

    def flops_per_token(self):
        """Training FLOPs per token, 6N + 12 L T C (PaLM appendix B; nanoGPT's estimate)."""
        c = self.config
        return 6 * self.get_num_params() + 12 * c.n_layer * c.block_size * c.n_embd

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True):
        """Sample max_new_tokens after idx (B, T); the same forward (and logit multiplier)
        as training. With use_cache, keys and values are kept, so each new token runs the
        model on one position; once the sequence outgrows block_size the window slides and the
        positions shift, so it runs on the last block_size tokens again."""
        attns = [block.attn for block in self.transformer.h]
        try:
            for _ in range(max_new_tokens):
                if use_cache and idx.size(1) <= self.config.block_size:
                    if attns[0].kv_cache is None:  # the prompt, once
                        for a in attns:
                            a.kv_cache = {}
                        logits, _ = self(idx)
                    else:
                        logits, _ = self(idx[:, -1:])
                else:
                    for a in attns:  # the window slides: positions shift, recompute it whole
                        a.kv_cache = None
                    logits, _ = self(idx[:, -self.config.block_size:])
                idx = torch.cat((idx, self._sample(logits[:, -1, :], temperature, top_k)), dim=1)
        finally:
            for a in attns:
                a.kv_cache = None
        return idx

    @staticmethod
    def _sample(logits, temperature, top_k):
        """The next token of each row from its last-position logits."""
        if temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None:
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float("inf")
        return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)


def param_table(p, groups, m_B=1.0, m_D=1.0):
    """The start-up table of a run, as text: the resolved Parameterization `p` (its multipliers,
    m_N, m_L, and Complete(d)P's m_B, m_D) and each optimizer group of GPT.param_groups (its
    parameters, init std, lr_mult, lr, wd, eps, betas and module types). train.py prints it at the
    start of every run, scripts/transfer.py for a proxy and its target: one implementation."""
    lines = [f"parameterization {p.name}: m_N={p.m_N:g} m_L={p.m_L:g} alpha={p.alpha:g} m_B={m_B:g} m_D={m_D:g} | "
             f"residual x{p.residual_mult:.4g} | input x{p.input_mult:.4g} | logits x{p.logit_mult:.4g} | "
             f"attention {1 if p.attn_mult == 1 else f'{p.attn_mult:.4g}'}/d_head^{p.attn_exponent:g}"]
    if p.module_hparams:
        lines.append(f"  module_hparams {json.dumps(p.module_hparams)}")
    lines.append(f"  {'group':<12} {'params':>9} {'init_std':>9} {'lr_mult':>9} {'lr':>10} {'wd':>9} {'eps':>9} "
                 f"{'beta1':>7} {'beta2':>7}  modules")
    for g in groups:
        std = "ln 1/0" if g["init_std"] is None else f"{g['init_std']:.4g}"
        n = sum(t.numel() for t in g["params"])
        lines.append(f"  {g['role']:<12} {n:>9,} {std:>9} {g['lr_mult']:>9.4g} {g['lr']:>10.4g} "
                     f"{g['weight_decay']:>9.4g} {g['eps']:>9.3g} {g['betas'][0]:>7.4g} {g['betas'][1]:>7.4g}  "
                     f"{','.join(g['modules'])}")
    return "\n".join(lines)

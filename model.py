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
ROLES = ("embedding", "hidden", "hidden_out", "hidden_bias", "block_norm", "final_norm",
         "unembedding")

# Module types for per-module multipliers (`module_hparams`); a bias follows its module. Each
# parameter gets one type, assigned where the model is built (GPT.__init__, Block.roles).
MODULE_TYPES = ("embedding", "attn_qkv", "attn_out", "mlp_in", "mlp_out", "block_norm",
                "final_norm", "unembedding")
BLOCK_TYPES = ("attn_qkv", "attn_out", "mlp_in", "mlp_out", "block_norm")  # may have a depth profile
MODULE_HPARAMS = ("lr", "wd", "init_std", "eps", "beta1", "beta2")  # beta*: multiply 1 - beta
RESIDUAL_BRANCHES = ("attn", "mlp")  # module_hparams["residual"]: per-branch multipliers


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
        """The multiplier module_hparams[mtype][hp] (1.0 when unset) at block `layer`. A list is
        a depth profile over the proxy's layers: proxy layer i sits at i/(base_n_layer-1) and
        layer j of this model at j/(n_layer-1) in [0, 1] (0.5 for a single layer), and the value
        is linearly interpolated there, so the first and last layers keep the profile's ends."""
        v = self.module_hparams.get(mtype, {}).get(hp, 1.0)
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
    out = {}
    for mtype, hps in mh.items():
        if mtype not in MODULE_TYPES + ("residual",):
            raise name_error("module type", mtype, MODULE_TYPES + ("residual",))
        names = RESIDUAL_BRANCHES if mtype == "residual" else MODULE_HPARAMS
        if not isinstance(hps, dict):
            raise ValueError(f"module_hparams[{mtype!r}] must be a dict of multipliers like "
                             f"{{{names[0]!r}: 1.5}}, got {hps!r}")
        if mtype == "unembedding" and cfg.tie_embeddings:
            raise ValueError("module_hparams['unembedding'] needs tie_embeddings=False (tied, the "
                             "shared tensor is the 'embedding')")
        out[mtype] = {}
        for hp, v in hps.items():
            if hp not in names:
                raise name_error("branch" if mtype == "residual" else "hyperparameter", hp, names, f" of {mtype}")
            if mtype in ("block_norm", "final_norm") and hp in ("init_std", "wd"):
                raise ValueError(f"module_hparams[{mtype!r}][{hp!r}]: LayerNorms start at 1/0 and have "
                                 "no weight decay; remove it")
            where = f"module_hparams[{mtype!r}][{hp!r}]"
            if isinstance(v, (list, tuple)):
                if mtype not in BLOCK_TYPES + ("residual",):
                    raise ValueError(f"{where}: a per-layer profile needs a block module "
                                     f"({', '.join(BLOCK_TYPES + ('residual',))}); give {mtype} one number")
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
        resolve_parameterization(self)  # validate now, with one-line errors


class CausalSelfAttention(nn.Module):

    def __init__(self, cfg, p):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout
        self.scale = p.attn_scale(cfg.n_embd // cfg.n_head)
        self.kv_cache = None  # a dict while GPT.generate runs with use_cache

    def forward(self, x):
        """With self.kv_cache a dict (generation only, GPT.generate sets it): this layer's keys
        and values are kept there; the first call fills it from the prompt, each later call adds
        one position. It lives on the module, not in the call's arguments, so wrappers that copy
        arguments (FSDP, compile) cannot lose it."""
        cache = self.kv_cache
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
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

    def __init__(self, cfg):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):

    def __init__(self, cfg, p, layer):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, p)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.layer = layer
        self.residual_mult = p.residual_mult  # m_L^(-alpha), depth family only
        # per-branch multipliers of module_hparams["residual"] (1.0 when unset)
        self.attn_mult = p.module_mult("residual", "attn", layer)
        self.mlp_mult = p.module_mult("residual", "mlp", layer)

    def forward(self, x):
        # x + m_L^(-alpha) * branch multiplier * f(LN(x)); a factor of exactly 1 is skipped (the
        # result is the same bits, one multiplication fewer)
        a, m = self.residual_mult * self.attn_mult, self.residual_mult * self.mlp_mult
        h = self.attn(self.ln_1(x))
        x = x + (h if a == 1.0 else a * h)
        h = self.mlp(self.ln_2(x))
        return x + (h if m == 1.0 else m * h)

    def roles(self):
        """Module type and roles of each Linear/LayerNorm of the block:
        (module, module type, weight role, bias role)."""
        return [(self.ln_1, "block_norm", "block_norm", "block_norm"),
                (self.attn.c_attn, "attn_qkv", "hidden", "hidden_bias"),
                (self.attn.c_proj, "attn_out", "hidden_out", "hidden_bias"),
                (self.ln_2, "block_norm", "block_norm", "block_norm"),
                (self.mlp.c_fc, "mlp_in", "hidden", "hidden_bias"),
                (self.mlp.c_proj, "mlp_out", "hidden_out", "hidden_bias")]


class GPT(nn.Module):

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.parameterization = p = resolve_parameterization(cfg)  # the resolved multipliers
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg, p, i) for i in range(cfg.n_layer)]),
            ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

        # roles, module types and layers, by parameter name; checked to cover every parameter once
        sites = [(self.transformer.wte, "embedding", "embedding", None, None),
                 (self.transformer.wpe, "embedding", "embedding", None, None)]
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
        if non_embedding:  # wpe only: wte doubles as (or sits beside) the unembedding matmul
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None, return_hidden=False):
        """While generate() keeps a KV cache, idx continues the cached positions."""
        B, T = idx.size()
        cache = self.transformer.h[0].attn.kv_cache
        start = cache["k"].size(2) if cache and "k" in cache else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of length {start + T} is longer than block_size="
                             f"{self.config.block_size}")
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, C)
        x = self.transformer.drop(self.parameterization.input_mult * x)
        for block in self.transformer.h:
            x = block(x)
        hidden = x  # residual stream after the last block, before ln_f
        x = self.transformer.ln_f(x)
        # the logit multiplier belongs to the model: training, eval and generation share it
        logits = self.parameterization.logit_mult * self.lm_head(x)  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-1)
        if return_hidden:
            return logits, loss, hidden
        return logits, loss

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

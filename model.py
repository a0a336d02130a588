"""
A GPT-2-style pre-LN decoder with a `parameterization` switch: 'sp', 'mup', 'depth_mup'
(alpha = 0.5) and 'completep' (alpha = 1).

Every multiplier comes from one place, `resolve_parameterization`, which implements the
table of docs/parameterization.md section 2 (Dey et al., arXiv 2505.01618, Table 1). Init, forward,
attention and the optimizer read the resolved `Parameterization`; nothing below it branches
on the name.
"""
import math
from dataclasses import dataclass, asdict
from typing import Optional

import torch
import torch.nn as nn
from torch.nn import functional as F

# ----------------------------------------------------------------------------------------
# The parameterization table (docs/parameterization.md section 2). Each name is a row of three switches:
#   width:     muP width rules (1/m_N hidden init variance, LR and eps; 1/d_head attention;
#              output_mult/m_N on the logits; input_mult on the embeddings)
#   alpha:     depth exponent of the depth family, None when depth is not scaled
#   gpt2_proj: GPT-2's sigma/sqrt(2L) init of the c_proj weights (SP only)
PARAMETERIZATIONS = {
    "sp":        dict(width=False, alpha=None, gpt2_proj=True),
    "mup":       dict(width=True,  alpha=None, gpt2_proj=False),
    "depth_mup": dict(width=True,  alpha=0.5,  gpt2_proj=False),
    "completep": dict(width=True,  alpha=1.0,  gpt2_proj=False),
}

# Parameter roles. Every parameter gets exactly one, assigned where the model is built.
ROLES = ("embedding", "hidden", "hidden_out", "hidden_bias", "block_norm", "final_norm",
         "unembedding")


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
    attn_exponent: float    # attention scale is d_head ** -attn_exponent
    roles: dict             # role -> RoleRule

    def attn_scale(self, head_dim):
        return head_dim ** -self.attn_exponent

    def table(self):
        """Plain-dict form, for logs, checkpoints and the README."""
        d = {k: v for k, v in asdict(self).items() if k != "roles"}
        d["roles"] = {r: asdict(rule) for r, rule in self.roles.items()}
        return d


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
                             "depth_mup/completep")
        alpha = 0.0
    else:
        alpha = row["alpha"] if cfg.depth_alpha is None else float(cfg.depth_alpha)
        if not 0.5 <= alpha <= 1.0:
            raise ValueError(f"depth_alpha={alpha} is outside [0.5, 1]; pick a value in "
                             "[0.5, 1] (0.5 = depth-muP, 1 = CompleteP)")
    if not row["width"] and (cfg.input_mult != 1.0 or cfg.output_mult != 1.0):
        raise ValueError(f"input_mult={cfg.input_mult}/output_mult={cfg.output_mult} are "
                         "muP multipliers; leave them at 1.0 for parameterization='sp'")

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
    roles = {
        "embedding":   RoleRule(sigma, 1.0, 1.0, 1.0),
        "hidden":      hidden,
        "hidden_out":  RoleRule(proj_std, hidden.lr_mult, hidden.wd_mult, hidden.eps_mult),
        "hidden_bias": RoleRule(0.0, inblock_lr, 0.0, inblock_eps),
        "block_norm":  RoleRule(None, inblock_lr, 0.0, inblock_eps),
        "final_norm":  RoleRule(None, 1.0, 0.0, 1.0),
        "unembedding": RoleRule(sigma, 1.0, 1.0, 1.0),  # used only when untied
    }
    return Parameterization(
        name=cfg.parameterization, m_N=m_N, m_L=m_L, alpha=alpha,
        residual_mult=d ** (-alpha),                  # x + m_L^(-alpha) f(LN(x))
        input_mult=cfg.input_mult,                    # input_mult * (wte + wpe)
        logit_mult=cfg.output_mult / w,               # output_mult / m_N * x W^T
        attn_exponent=1.0 if row["width"] else 0.5,   # q.k / d_head vs q.k / sqrt(d_head)
        roles=roles,
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
    tie_embeddings: bool = True

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
        resolve_parameterization(self)  # validate now, with one-line errors


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's cannot drop just the bias)."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):

    def __init__(self, cfg, p):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout
        self.scale = p.attn_scale(cfg.n_embd // cfg.n_head)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        # flash attention where the backend has it; the scale is explicit (1/hs for muP)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale,
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

    def __init__(self, cfg, p):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, p)
        self.ln_2 = LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.residual_mult = p.residual_mult  # m_L^(-alpha), depth family only

    def forward(self, x):
        x = x + self.residual_mult * self.attn(self.ln_1(x))
        x = x + self.residual_mult * self.mlp(self.ln_2(x))
        return x

    def roles(self):
        """Role of each Linear/LayerNorm of the block: (module, weight role, bias role)."""
        return [(self.ln_1, "block_norm", "block_norm"),
                (self.attn.c_attn, "hidden", "hidden_bias"),
                (self.attn.c_proj, "hidden_out", "hidden_bias"),
                (self.ln_2, "block_norm", "block_norm"),
                (self.mlp.c_fc, "hidden", "hidden_bias"),
                (self.mlp.c_proj, "hidden_out", "hidden_bias")]


class GPT(nn.Module):

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.p = p = resolve_parameterization(cfg)
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg, p) for _ in range(cfg.n_layer)]),
            ln_f=LayerNorm(cfg.n_embd, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

        # roles, by parameter name; checked to cover every parameter exactly once
        sites = [(self.transformer.wte, "embedding", None), (self.transformer.wpe, "embedding", None)]
        for block in self.transformer.h:
            sites += block.roles()
        sites.append((self.transformer.ln_f, "final_norm", "final_norm"))
        if not cfg.tie_embeddings:
            sites.append((self.lm_head, "unembedding", None))
        by_id = {}
        for module, w_role, b_role in sites:
            for tensor, role in ((module.weight, w_role), (getattr(module, "bias", None), b_role)):
                if tensor is not None:
                    assert id(tensor) not in by_id, "parameter given two roles"
                    by_id[id(tensor)] = role
        self.param_roles = {n: by_id[id(t)] for n, t in self.named_parameters()}
        assert len(self.param_roles) == len(by_id), "a role was given to a non-parameter"
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """Init from the table: normal(0, std of the role); LayerNorm 1/0; Linear biases 0."""
        for name, t in self.named_parameters():
            rule = self.p.roles[self.param_roles[name]]
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
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size="
                             f"{self.config.block_size}")
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, C)
        x = self.transformer.drop(self.p.input_mult * x)
        for block in self.transformer.h:
            x = block(x)
        hidden = x  # residual stream after the last block, before ln_f
        x = self.transformer.ln_f(x)
        # the logit multiplier belongs to the model: training, eval and generation share it
        logits = self.p.logit_mult * self.lm_head(x)  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-1)
        if return_hidden:
            return logits, loss, hidden
        return logits, loss

    def param_groups(self, learning_rate, weight_decay, eps):
        """One AdamW group per role, with its lr_mult and its effective lr, wd and eps."""
        params = dict(self.named_parameters())
        groups = []
        for role in ROLES:
            names = [n for n, r in self.param_roles.items() if r == role]
            if not names:
                continue
            rule = self.p.roles[role]
            groups.append(dict(params=[params[n] for n in names], names=names, role=role,
                               lr_mult=rule.lr_mult, lr=learning_rate * rule.lr_mult,
                               weight_decay=weight_decay * rule.wd_mult,
                               eps=eps * rule.eps_mult))
        covered = [id(t) for g in groups for t in g["params"]]
        assert len(covered) == len(set(covered)) == len(params), \
            "optimizer groups must cover every parameter exactly once"
        return groups

    def configure_optimizers(self, weight_decay, learning_rate, betas, eps=1e-8,
                             device_type="cpu"):
        groups = self.param_groups(learning_rate, weight_decay, eps)
        extra = dict(fused=True) if device_type == "cuda" else {}
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, **extra)

    def flops_per_token(self):
        """Training FLOPs per token, 6N + 12 L T C (PaLM appendix B; nanoGPT's estimate)."""
        c = self.config
        return 6 * self.get_num_params() + 12 * c.n_layer * c.block_size * c.n_embd

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Sample max_new_tokens after idx (B, T); the same forward (and logit multiplier)
        as training."""
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.config.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :]
            if temperature == 0:
                idx_next = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx

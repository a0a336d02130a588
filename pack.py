"""
Packed sweeps: K proxy points ("members") trained in one process as one stacked model.

    import pack
    results = pack.run_pack([config_a, config_b, config_c])   # train.py's resolved config dicts
    results[0]["losses"][50], results[0]["val"][50], results[0]["status"]

Members share everything that fixes the computation's shape and differ only in values. Each
member computes what `python train.py` computes for its point alone, up to float
reassociation (batched matmuls and reductions under vmap are not bit-identical to the
unbatched ones; tests/test_pack.py measures at most 7e-7 relative over 50 steps in fp32 on CPU,
and more, as much as a 1-ulp nudge of the init gives the run alone, at learning rates near the
edge of stability).

Design
------
* One model definition. Every member's model is built exactly as train.main builds it:
  train.model_config -> train.seed_all(seed) -> GPT(gptconf).to(dev) -> train.make_optimizer,
  with the data opened before (train.open_data, whose loader has its own generator seeded by
  the member's seed) and the fixed evaluation windows from train.eval_sets. That is train.main's
  RNG call order before the first step, so each member draws its own init and its own data
  order as a run alone does. The members' parameters are then stacked
  (torch.func.stack_module_state) and member 0's module is the one definition every forward
  runs through (its own tensors are never read):
  torch.func.functional_call + torch.func.grad, vmapped over the member dimension.
* The optimizer: train.make_optimizer's groups are read per member and per parameter name (a
  member's module_hparams may split groups differently from another's; the per-parameter view
  does not care), giving per-member tensors of lr_mult, weight decay, eps and betas. The AdamW
  step reproduces torch.optim.AdamW's single-tensor (non-fused, non-foreach) arithmetic, member
  by member in one vectorized op: p *= 1 - lr*wd; exp_avg.lerp_(g, 1-beta1);
  exp_avg_sq = exp_avg_sq*beta2 + (1-beta2)*g*g; bias corrections in Python doubles;
  denom = sqrt(exp_avg_sq)/sqrt(bc2) + eps; p += (-step_size * exp_avg) / denom (addcdiv's
  order). Each member's lr is lr_multiplier(schedule) x learning_rate x the group's lr_mult, as
  train.forward_backward sets it. Note: on CUDA train.py defaults to fused AdamW (fused=None),
  which rounds differently; the pack always does the single-tensor arithmetic.
* Gradient accumulation over micro-steps as train.forward_backward: each micro-step's gradient
  of loss/grad_accum is added to the accumulated one, the logged loss is the sum of
  ce/grad_accum in float32; clipping per member: the 2-norm of the per-parameter 2-norms
  (torch.nn.utils.clip_grad_norm_'s order), coefficient min(max_norm / (norm + 1e-6), 1), with
  each member's own grad_clip (0: none).
* Logging: every step's cross-entropy per member ("losses", keyed by the step number train.py
  logs it under, 1..total); evaluations (train.evaluate's arithmetic: float64 sums of
  loss.item() * batch rows) at step 0, every eval_interval steps and at the end, as train.main.
* Divergence: a member whose gradient norm is not finite is marked diverged at that step (as
  train.py, which exits 3 there without stepping) and frozen: its parameters and optimizer state
  are selected unchanged (torch.where) from then on; it stays in the stack. Every other member's
  arithmetic is elementwise in its own slice, so the others do not change by a single bit
  compared with a pack without it (tests/test_pack.py checks torch.equal).

What is packable (may differ between members)
---------------------------------------------
learning_rate, init_std, weight_decay, eps, beta1, beta2, grad_clip, seed, and module_hparams except its
"residual" entry (lr / wd / eps / beta / init_std multipliers and depth profiles only change
the init and the optimizer). Also ignored: the per-run I/O settings (out_dir, wandb_*, init_from,
save_checkpoints, keep_last, halt_at_iter, sample_tokens, verify_data, log_interval, compile,
fused).

What is not packable (part of pack_key: must be equal)
------------------------------------------------------
Everything else, in particular every forward multiplier: input_mult, output_mult, attn_mult and
module_hparams["residual"] are Python floats on the modules (GPT.parameterization.input_mult /
logit_mult, CausalSelfAttention.scale, Block.attn_mult / mlp_mult) that the shared module
definition bakes in, so members that differ in them are keyed apart rather than handled.
z_loss likewise. dropout > 0 is refused: under vmap the members' dropout masks cannot be drawn
from each member's own torch RNG stream as a run alone draws them. Single process only (no
torchrun / DDP / FSDP).

Speed, measured (scripts/bench_sweep.py, 6 LRs x 1 seed at 2 x 64, one thread, on a 2-core CPU
busy with other runs, 2026-12-03): 1.38x the points per core-hour of one train.py process per
point at 128 steps, 0.95x at the canonical 1,024 steps: start-up is what packing saves, and on
CPU vmap loops over the members in the flash-attention backward (no batching rule), so the
arithmetic is no faster than K models one after another. Not yet worth using for speed.

Not done (yet): per-member out_dir records (config.json, metrics.jsonl, final.json),
checkpoints, SIGTERM stop and resume, sweep.py --pack integration, splitting a pack that does
not fit in memory.
"""
import contextlib
import json
import math
import os

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

import train

# values that only change the init or the optimizer: may differ between members
PACKABLE = ("learning_rate", "init_std", "weight_decay", "eps", "beta1", "beta2", "grad_clip", "seed",
            "module_hparams")
# per-run bookkeeping that does not change what is computed (the pack keeps no records yet)
IGNORED = ("out_dir", "init_from", "save_checkpoints", "keep_last", "halt_at_iter", "sample_tokens",
           "verify_data", "log_interval", "wandb_log", "wandb_project", "wandb_run_name", "wandb_group",
           "wandb_mode", "compile", "fused", "eval_only")


def pack_key(config):
    """The settings that must be equal for configs to share a pack: everything but the packable
    values and the per-run bookkeeping, plus module_hparams' forward multipliers ("residual")."""
    key = []
    for k in sorted(config):
        if k in PACKABLE or k in IGNORED:
            continue
        v = config[k]
        key.append((k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v))
    residual = (config.get("module_hparams") or {}).get("residual", {})
    key.append(("module_hparams.residual", json.dumps(residual, sort_keys=True)))
    return tuple(key)


def group_by_key(configs):
    """{pack_key: [indices of configs]} in first-seen order: the packs a list of points makes."""
    packs = {}
    for i, c in enumerate(configs):
        packs.setdefault(pack_key(c), []).append(i)
    return packs


class Member:
    """One point as train.main sets it up before its first step (no out_dir, no records)."""

    def __init__(self, c, proc):
        self.config = c
        ddir = c["data_dir"] or os.path.join(train._REPO, "data", c["dataset"])
        data, vocab = train.open_data(ddir, c, proc)
        self.loader = data.loader
        self.grad_accum = c["global_batch_size"] // (c["batch_size"] * proc.world_size)
        self.total_iters, self.batch_duration = train.run_length(c)
        self.evals = train.eval_sets(data, c, proc)
        gptconf = train.model_config(c, vocab)
        train.seed_all(c["seed"])  # train.main's order: data opened, then seed, model, optimizer
        self.model = train.GPT(gptconf).to(proc.dev)
        optimizer = train.make_optimizer(self.model, c, proc.device_type, self.batch_duration)
        # per parameter name: (lr_mult, weight_decay, eps, beta1, beta2) of its group
        self.hparams = {}
        for g in optimizer.param_groups:
            for name in g["names"]:
                self.hparams[name] = (g["lr_mult"], g["weight_decay"], g["eps"], *g["betas"])
        del optimizer


def _check(configs):
    if not configs:
        raise train.UserError("run_pack needs at least one config")
    keys = {pack_key(c) for c in configs}
    if len(keys) > 1:
        a, b = pack_key(configs[0]), next(pack_key(c) for c in configs if pack_key(c) != pack_key(configs[0]))
        diff = [k for (k, v), (_, w) in zip(a, b) if v != w]
        raise train.UserError(f"these points cannot share a pack: they differ in {', '.join(diff)} "
                              "(pack_key); group them with pack.group_by_key")
    if configs[0]["dropout"] > 0:
        raise train.UserError("dropout > 0 cannot be packed (each member's dropout masks come from its own RNG "
                              "stream); run these points alone")
    for c in configs:
        train.check_config(c, 1)


def _per_member(values, like):
    """A (K, 1, ..., 1) float tensor of per-member Python numbers, broadcasting over `like`."""
    t = torch.tensor(values, dtype=like.dtype, device=like.device)
    return t.view(-1, *([1] * (like.dim() - 1)))


def adamw_step(p, grad, exp_avg, exp_avg_sq, lr, weight_decay, eps, beta1, beta2, steps):
    """One AdamW step of K stacked members (dimension 0), out of place: (param, exp_avg,
    exp_avg_sq). lr, weight_decay, eps, beta1, beta2: one Python number per member; steps: each
    member's step count after this step (AdamW's state['step']). torch.optim.AdamW's single-tensor
    arithmetic: Python-double scalars (cast to the tensor's dtype, as a scalar operand is), the
    same operations in the same order (addcmul: fma(value * t1, t2, self); addcdiv: (value * t1) / t2),
    bit for bit on CPU (tests/test_pack.py)."""
    K = p.size(0)
    step = [float(max(s, 1)) for s in steps]
    bc1 = [1 - beta1[k] ** step[k] for k in range(K)]
    bc2 = [1 - beta2[k] ** step[k] for k in range(K)]
    decay = [1 - lr[k] * weight_decay[k] if weight_decay[k] != 0 else 1.0 for k in range(K)]
    new_p = p * _per_member(decay, p)
    m1 = exp_avg.lerp(grad, _per_member([1 - b for b in beta1], p))
    # addcmul_(grad, grad, value=v) is fma(v * grad, grad, self) on CPU: addcmul with value 1 is the same
    m2 = torch.addcmul(exp_avg_sq * _per_member(beta2, p), _per_member([1 - b for b in beta2], p) * grad, grad)
    denom = m2.sqrt() / _per_member([b ** 0.5 for b in bc2], p) + _per_member(eps, p)
    new_p = new_p + (_per_member([-lr[k] / bc1[k] for k in range(K)], p) * m1) / denom
    return new_p, m1, m2


def run_pack(configs, steps=None):
    """Train the configs (train.py's resolved config dicts; one pack_key) as one stacked model.
    steps: stop after this many optimizer steps (default: the run's total; the schedule is the
    full run's either way). Returns one dict per config: losses {step: cross-entropy},
    train {step: train-split eval loss}, val {step: val_loss}, grad_norm {step: norm},
    status 'done' | 'diverged' | 'stopped', diverged_at (step or None), iter, and the final
    params (name -> tensor) of the member."""
    configs = [dict(c) for c in configs]
    _check(configs)
    c0 = configs[0]
    proc = train.torchrun_process()
    if proc.ddp:
        raise train.UserError("run_pack is single-process; do not launch it under torchrun")
    train.init_distributed(proc, c0["parallel"], c0["device"], c0["dtype"])
    autocast = proc.autocast if proc.autocast is not None else contextlib.nullcontext()

    members = [Member(c, proc) for c in configs]
    K = len(members)
    total, grad_accum = members[0].total_iters, members[0].grad_accum
    steps = total if steps is None else min(steps, total)

    # the stacked state: parameters (tied ones once, as named_parameters gives them) and buffers
    params, buffers = stack_module_state([m.model for m in members])
    params = {n: p.detach().clone() for n, p in params.items()}
    names = list(params)
    # the one module definition every forward runs through: member 0's module (its own tensors are
    # never read: functional_call substitutes the stack's). Not moved to the meta device: Module.to
    # unties lm_head.weight from wte.weight there, and functional_call would then leave the
    # unembedding untied (measured: wrong losses for tied models).
    base = members[0].model
    for m in members[1:]:  # the stack holds the state now
        m.model = None
    base.train()

    def hp(i):  # (K,) python lists of one hyperparameter per name
        return {n: [m.hparams[n][i] for m in members] for n in names}
    lr_mult, wd, eps, beta1, beta2 = (hp(i) for i in range(5))
    exp_avg = {n: torch.zeros_like(p) for n, p in params.items()}
    exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()}
    n_steps = [0] * K  # each member's optimizer step count (AdamW's state['step'])

    def loss_fn(p, b, x, y):
        _, loss, parts = functional_call(base, (p, b), (x, y), kwargs=dict(return_parts=True))
        return loss / grad_accum, parts["ce"] / grad_accum

    grad_fn = vmap(grad(loss_fn, has_aux=True))

    def eval_fn(p, b, x, y):
        return functional_call(base, (p, b), (x, y))[1]

    loss_vmapped = vmap(eval_fn)

    @torch.no_grad()
    def evaluate():
        """train.evaluate per member: float64 sums of loss.item() * rows over the fixed windows."""
        base.eval()
        out = [{} for _ in range(K)]
        for split in members[0].evals:
            tot = [[0.0, 0.0] for _ in range(K)]
            batches = [m.evals[split] for m in members]  # the same windows (same data, same shape)
            for j in range(len(batches[0])):
                x = torch.stack([bs[j][0] for bs in batches]).to(proc.dev)
                y = torch.stack([bs[j][1] for bs in batches]).to(proc.dev)
                with autocast:
                    losses = loss_vmapped(params, buffers, x, y).tolist()
                for k in range(K):  # float64 adds, as train.evaluate's float64 tensor
                    tot[k][0] += losses[k] * x.size(1)
                    tot[k][1] += x.size(1)
            for k in range(K):
                out[k][split] = tot[k][0] / tot[k][1]
        base.train()
        return out

    results = [dict(losses={}, train={}, val={}, grad_norm={}, status="done", diverged_at=None, iter=0)
               for _ in range(K)]
    active = [True] * K
    iter_num, last_eval = 0, -1
    eval_interval = c0["eval_interval"]
    while True:
        if (iter_num % eval_interval == 0 and iter_num != last_eval) or iter_num >= total:
            ev, last_eval = evaluate(), iter_num
            for k in range(K):
                if active[k]:
                    results[k]["train"][iter_num] = ev[k]["train"]
                    results[k]["val"][iter_num] = ev[k]["val"]
        if iter_num >= steps or not any(active):
            break

        # one global batch per member: accumulate the micro-steps' gradients (train.forward_backward)
        mult = train.lr_multiplier(iter_num, total, c0["lr_schedule"], c0["warmup_frac"], c0["decay_frac"],
                                   c0["min_lr_frac"])
        lr_t = [m.config["learning_rate"] * mult for m in members]
        batches = [m.loader.next_step() for m in members]
        grads, loss_sum = None, torch.zeros(K, device=proc.dev)
        for micro in range(grad_accum):
            x = torch.stack([b[micro][0] for b in batches]).to(proc.dev)
            y = torch.stack([b[micro][1] for b in batches]).to(proc.dev)
            with autocast:
                g, ce = grad_fn(params, buffers, x, y)
            loss_sum += ce.detach()
            grads = g if grads is None else {n: grads[n] + g[n] for n in names}
        # per-member clipping by the global norm (clip_grad_norm_'s order of reductions)
        norms = torch.stack([torch.linalg.vector_norm(grads[n].reshape(K, -1), 2, dim=1) for n in names], dim=1)
        total_norm = torch.linalg.vector_norm(norms, 2, dim=1)  # (K,)
        max_norm = torch.tensor([m.config["grad_clip"] or math.inf for m in members], device=proc.dev)
        coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)  # a float32 max_norm, as the scalar is
        finite = torch.isfinite(total_norm).tolist()
        losses_now, norms_now = loss_sum.tolist(), total_norm.tolist()
        for k in range(K):
            if active[k] and not finite[k]:
                active[k] = False
                results[k].update(status="diverged", diverged_at=iter_num, iter=iter_num, lr=lr_t[k])

        # AdamW per member and parameter (torch.optim.AdamW's single-tensor arithmetic)
        with torch.no_grad():
            for k in range(K):
                n_steps[k] += active[k]
            mask_vals = [bool(a) for a in active]
            for n in names:
                gr = grads[n] * coef.view(-1, *([1] * (params[n].dim() - 1)))
                new_p, m1, m2 = adamw_step(params[n], gr, exp_avg[n], exp_avg_sq[n],
                                           [lr_t[k] * lr_mult[n][k] for k in range(K)], wd[n], eps[n],
                                           beta1[n], beta2[n], n_steps)
                p = params[n]
                if all(mask_vals):
                    params[n], exp_avg[n], exp_avg_sq[n] = new_p, m1, m2
                else:
                    keep = torch.tensor(mask_vals, device=p.device).view(-1, *([1] * (p.dim() - 1)))
                    params[n] = torch.where(keep, new_p, p)
                    exp_avg[n] = torch.where(keep, m1, exp_avg[n])
                    exp_avg_sq[n] = torch.where(keep, m2, exp_avg_sq[n])
        iter_num += 1
        for k in range(K):
            if active[k]:
                results[k]["losses"][iter_num] = losses_now[k]
                results[k]["grad_norm"][iter_num] = norms_now[k]
                results[k]["iter"] = iter_num

    for k in range(K):
        if results[k]["status"] == "done" and results[k]["iter"] < total:
            results[k]["status"] = "stopped"
        results[k]["params"] = {n: params[n][k].detach().clone() for n in names}
    return results

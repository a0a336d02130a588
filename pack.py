"""
Packed sweeps: K proxy points ("members") trained in one process as one stacked model.

    python scripts/sweep.py experiments/<study>/<file>.py --pack 6   # how sweeps use it
    python pack.py <out_root>/packs/<name>.json                     # one pack (sweep.py writes the file)

    import pack
    results = pack.run_pack([config_a, config_b, config_c])   # in memory: train.py's resolved configs
    results[0]["losses"][50], results[0]["val"][50], results[0]["status"]
    pack.train_pack([config_a, config_b])                      # with each member's records, as train.py

Members share everything that fixes the computation's shape and differ only in values. Each
member computes what `python train.py` computes for its point alone, up to float
reassociation (batched matmuls and reductions under vmap are not bit-identical to the
unbatched ones; tests/test_pack.py measures at most 7.5e-7 relative over 50 steps in fp32 on CPU,
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
  train.py, which exits 3 there without stepping) and frozen (and so is a member stopped at
  its own halt_at_iter): its parameters and optimizer state
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

Speed, measured (scripts/bench_sweep.py, one thread, on a 2-core CPU busy with two other runs,
2026-12-03; whole-process wall time, both modes in the same run): at 2 x 64 with 6 LRs, 1.38x the
points per core-hour of one train.py process per point at 128 steps, 0.85x at the canonical
1,024 steps (186 s packed against 158 s); at 8 x 64 with 4 LRs and 256 steps, 1.09x (110 s against
120 s; a training step 97.8 ms per member packed against 76.6 ms alone). What limits it, from the same run and a profile
(torch.profiler, 30 steps, 6 members against one model): start-up is 4.5 s a process (17% of
the one-process-per-point time at 1,024 steps), and that is all packing saves on this CPU; a
training step costs 29.6 ms per member packed against 21.4 ms alone (28.7 and 39.7 GFLOP/s,
against 116 GFLOP/s for a 512^3 matmul on the thread): a run alone is arithmetic-bound already,
the stacked tensors of 6 members no longer fit in cache (gelu_backward 1.6 ms a member-step
against 0.72 alone; batched matmuls 7.5 against 7.0 ms), and vmap has no batching rule for CPU
flash attention, whose backward then runs member by member with copies (7.1 against 2.7 ms). So
on a CPU packing pays for short runs (searches of a few hundred steps) and not for 2^20-token
points; on a GPU, where a proxy point is launch-bound, it is the intended use (not measured here:
no device was lent).

Records (train_pack, and `python pack.py SPEC`): each member is its own run to everything
downstream. Its out_dir is claimed as train.py claims it (runs.RunLock), its latest checkpoint
resumed (train.resume: the same refusals), and it gets train.py's records through train.py's
own code: config.json, provenance.json (with a "packed" note: how many members, which index,
the other out_dirs), metrics.jsonl rows at its log_interval and evaluations, final.json (done,
diverged, stopped), checkpoints (checkpoint.Checkpointer, the run-alone format: the member's
slice of the stack copied into its own GPT and torch.optim.AdamW state first), and its own
train.log (the lines train.py prints). So a pack stopped by SIGTERM (at a step boundary, every
member saved, exit 4) continues packed or alone with the same command; members resumed at
different steps run as separate stacks, one after another. A member that diverges gets
train.py's error line and final.json, its out_dir is let go, and it takes no further part
(frozen in the stack, see Divergence). Not supported in a pack: wandb_log, eval_only, dropout,
torchrun; each refused in one line.

Memory: the pack needs about K x runs.memory_estimate of one member (K copies of the weights,
gradients, moments and activations); when that exceeds runs.available_memory (what train.py
checks a run alone against) the members run as several smaller packs, one after another, and
the estimate is printed.
"""
import contextlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict

import warnings

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

import checkpoint as ckpt_io
import train
from grid import IGNORED, PACKABLE, group_by_key, pack_key  # noqa: F401 (stdlib: sweep.py groups without torch)
from runs import EXIT_STOPPED, UserError, available_memory, memory_estimate, run_cli, write_json

# vmap has no batching rule for CPU flash attention and loops over the members there (correct; the
# speed cost is measured in the module docstring): said once here, not as a warning every step
warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented the "
                        "batching rule", category=UserWarning)


class Member:
    """One point as train.main sets it up before its first step, in train.main's order (data,
    evaluation windows, out_dir claimed, seed, model, optimizer, resume), so it draws its own init
    and data order. records=True: its out_dir is claimed and resumed from, and it keeps train.py's
    records there (Records, Checkpointer, train.log); False: nothing is read or written."""

    def __init__(self, c, proc, records=False, note=None):
        self.config, self.records, self.checkpointer, self.lock, self.log = c, None, None, None, None
        if records:
            try:
                os.makedirs(c["out_dir"], exist_ok=True)
                self.log = open(os.path.join(c["out_dir"], "train.log"), "a")
            except OSError as e:
                raise UserError(f"cannot write to out_dir {c['out_dir']} ({e.strerror or e}); make it writable or "
                                "choose another out_dir") from None
        with self.printing():
            self._build(c, proc, records, note)

    def printing(self):
        """print() goes to this member's train.log (records), else nowhere."""
        return contextlib.redirect_stdout(self.log if self.log else open(os.devnull, "w"))

    def _build(self, c, proc, records, note):
        ddir = c["data_dir"] or os.path.join(train._REPO, "data", c["dataset"])
        data, vocab = train.open_data(ddir, c, proc)
        self.loader, self.meta = data.loader, data.meta
        self.grad_accum = c["global_batch_size"] // (c["batch_size"] * proc.world_size)
        self.total_iters, self.batch_duration = train.run_length(c)
        self.evals = train.eval_sets(data, c, proc)
        gptconf = train.model_config(c, vocab)
        ckpts = []
        if records:
            self.lock, ckpts = train.claim_out_dir(c, vocab, proc)
        ckpt_meta = {k: self.meta[k] for k in ckpt_io.DATA_IDENTITY if k in self.meta}
        train.seed_all(c["seed"])
        self.model = train.GPT(gptconf).to(proc.dev)
        self.optimizer = train.make_optimizer(self.model, c, proc.device_type, self.batch_duration)
        self.iter_num, self.best_val, self.last_eval, self.finished = train.resume(
            ckpts, c, self.model, self.optimizer, self.loader, proc, self.total_iters, model_config=asdict(gptconf),
            batch_duration=self.batch_duration, meta=ckpt_meta)
        self.start_iter = self.iter_num
        # per parameter name: (lr_mult, weight_decay, eps, beta1, beta2) of its group
        self.hparams = {}
        for g in self.optimizer.param_groups:
            for name in g["names"]:
                self.hparams[name] = (g["lr_mult"], g["weight_decay"], g["eps"], *g["betas"])
        if not records or self.finished:
            return
        raw = self.model
        print(f"data: {ddir}: {data.describe}")
        print(f"model: {c['n_layer']} layers x {c['n_embd']} wide, {raw.get_num_params() / 1e6:.2f}M non-embedding "
              f"params; {self.total_iters} steps x {c['global_batch_size'] * c['block_size']:,} tokens "
              f"({self.grad_accum} micro-steps x {c['batch_size']}); device {proc.dev} {proc.ptdtype}; packed: member "
              f"{note['index'] + 1} of {note['members']}")
        print(train.param_table(raw.parameterization, self.optimizer.param_groups, self.batch_duration["m_B"],
                                self.batch_duration["m_D"]))
        self.records = train.Records(c, True, self.iter_num if ckpts else None, proc.device_type, proc.device_name,
                                     total_iters=self.total_iters, grad_accum=self.grad_accum,
                                     parameterization=raw.parameterization.table(), batch_duration=self.batch_duration,
                                     groups=train.group_table(self.optimizer.param_groups, c["learning_rate"]))
        mark_packed(c["out_dir"], note)
        self.checkpointer = ckpt_io.Checkpointer(c["out_dir"], raw, self.optimizer, self.loader,
                                                 model_config=asdict(gptconf), config=c, meta=ckpt_meta,
                                                 batch_duration=self.batch_duration, keep_last=c["keep_last"],
                                                 enabled=c["save_checkpoints"], rank=0, world_size=1)

    def close(self):
        if self.records is not None:
            self.records.close()
            self.records = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.log is not None:
            self.log.flush()


def mark_packed(out_dir, note):
    """The `packed` note in provenance.json: on the first start's record, or on this resume's."""
    path = os.path.join(out_dir, "provenance.json")
    try:
        with open(path) as f:
            prov = json.load(f)
        (prov["resumes"][-1] if prov.get("resumes") else prov)["packed"] = note
        write_json(path, prov, indent=1)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"cannot mark {path} as packed ({e}); free space or make {out_dir} writable, then run the "
                        "same command again") from None


def _check(configs, records):
    if not configs:
        raise UserError("a pack needs at least one config")
    keys = {pack_key(c) for c in configs}
    if len(keys) > 1:
        a, b = pack_key(configs[0]), next(pack_key(c) for c in configs if pack_key(c) != pack_key(configs[0]))
        diff = [k for (k, v), (_, w) in zip(a, b) if v != w]
        raise UserError(f"these points cannot share a pack: they differ in {', '.join(diff)} "
                        "(pack_key); group them with pack.group_by_key")
    c0 = configs[0]
    if c0["dropout"] > 0:
        raise UserError("dropout > 0 cannot be packed (each member's dropout masks come from its own RNG "
                        "stream); run these points alone")
    for what in ("wandb_log", "eval_only"):
        bad = [c["out_dir"] for c in configs if c[what]]
        if bad:
            raise UserError(f"{what}=True cannot be packed ({bad[0]}); run these points alone (without --pack)")
    if records and len({os.path.abspath(c["out_dir"]) for c in configs}) != len(configs):
        raise UserError("two members of a pack share an out_dir; give each its own")
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


def _start(configs):
    configs = [dict(c) for c in configs]
    proc = train.torchrun_process()
    if proc.ddp:
        raise UserError("a pack is single-process; do not launch it under torchrun")
    c0 = configs[0]
    train.init_distributed(proc, c0["parallel"], c0["device"], c0["dtype"])
    return configs, proc


def run_pack(configs, steps=None):
    """Train the configs (train.py's resolved config dicts; one pack_key) as one stacked model,
    in memory: no out_dir is read or written. steps: stop after this many optimizer steps
    (default: the run's total; the schedule is the full run's either way). Returns one dict per
    config: losses {step: cross-entropy}, train {step: train-split eval loss}, val {step:
    val_loss}, grad_norm {step: norm}, status 'done' | 'diverged' | 'stopped', diverged_at (step
    or None), iter, and the final params (name -> tensor) of the member."""
    configs, proc = _start(configs)
    _check(configs, records=False)
    members = [Member(c, proc) for c in configs]
    return _loop(members, proc, steps=steps)


def train_pack(configs, stop=None, out=print):
    """Train the configs as train.py would train each alone, with each member's records in its
    out_dir (module docstring: Records), as packs of at most what fits in memory, and members
    resumed at different steps as separate stacks. stop: a train.Stop the loop polls (SIGTERM).
    Returns the results (as run_pack's, without params) in the configs' order."""
    configs, proc = _start(configs)
    _check(configs, records=True)
    stop = stop or train.Stop()
    results = [None] * len(configs)
    chunks = _split(configs, proc, out)
    for chunk in chunks:
        members = []
        try:
            for k, j in enumerate(chunk):
                note = {"members": len(chunk), "index": k, "with": [configs[i]["out_dir"] for i in chunk if i != j]}
                members.append(Member(configs[j], proc, records=True, note=note))
            by_step = {}
            for k, m in enumerate(members):
                if m.finished:
                    results[chunk[k]] = dict(status="done", iter=m.iter_num, losses={}, train={}, val={}, grad_norm={})
                else:
                    by_step.setdefault((m.iter_num, m.last_eval), []).append(k)
            for (it, _), ks in by_step.items():
                if len(by_step) > 1:
                    out(f"members resumed at step {it}: {len(ks)} of them as one stack")
                for k, r in zip(ks, _loop([members[k] for k in ks], proc, stop=stop, keep_params=False)):
                    results[chunk[k]] = r
                if stop.signal is not None:
                    break
        finally:
            for m in members:
                m.close()
        if stop.signal is not None:
            break
    return results


def _split(configs, proc, out):
    """The pack as chunks of member indices, each of which fits in memory (K x one member's
    runs.memory_estimate against runs.available_memory), the estimate printed when it splits."""
    c0, K = configs[0], len(configs)
    vocab = _vocab(c0)
    need, what = memory_estimate(c0["n_layer"], c0["n_embd"], c0["n_head"], vocab, c0["block_size"], c0["batch_size"])
    have = available_memory(proc.device_type, proc.dev)
    per = K if not have else max(1, min(K, int(have // need)))
    if per < K:
        out(f"a pack of {K} needs about {K * need / 2 ** 30:,.1f} GiB ({K} x {what}), more than the "
            f"{have / 2 ** 30:,.1f} GiB {proc.dev} has: running it as {math.ceil(K / per)} packs of at most {per}")
    return [list(range(i, min(i + per, K))) for i in range(0, K, per)]


def _vocab(c):
    """The dataset's vocabulary size (its meta.json), for the memory estimate; a generous
    stand-in when it cannot be read (the run itself reads and checks it)."""
    ddir = c["data_dir"] or os.path.join(train._REPO, "data", c["dataset"])
    try:
        with open(os.path.join(ddir, "meta.json")) as f:
            return int(json.load(f)["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return 50304


def _loop(members, proc, steps=None, stop=None, keep_params=True):
    """The stacked training loop of members at one step (fresh or resumed together)."""
    c0 = members[0].config
    K = len(members)
    autocast = proc.autocast if proc.autocast is not None else contextlib.nullcontext()
    total, grad_accum = members[0].total_iters, members[0].grad_accum
    steps = total if steps is None else min(steps, total)
    tokens_per_step = c0["global_batch_size"] * c0["block_size"]

    # the stacked state: parameters (tied ones once, as named_parameters gives them), buffers and
    # the AdamW moments (a resumed member's from its optimizer, restored by train.resume)
    params, buffers = stack_module_state([m.model for m in members])
    params = {n: p.detach().clone() for n, p in params.items()}
    buffers = {n: b.detach().clone() for n, b in buffers.items()}
    names = list(params)
    exp_avg, exp_avg_sq, n_steps = {}, {}, [0] * K
    for k, m in enumerate(members):
        by_name = {n: p for g in m.optimizer.param_groups for n, p in zip(g["names"], g["params"])}
        for n in names:
            st = m.optimizer.state.get(by_name[n], {})
            if st:
                n_steps[k] = int(st["step"])
            for d, key in ((exp_avg, "exp_avg"), (exp_avg_sq, "exp_avg_sq")):
                d.setdefault(n, torch.zeros_like(params[n]))
                if st:
                    d[n][k].copy_(st[key])
    # the one module definition every forward runs through: member 0's module (functional_call
    # substitutes the stack's tensors). Not moved to the meta device: Module.to unties
    # lm_head.weight from wte.weight there, and functional_call would then leave the unembedding
    # untied (measured: wrong losses for tied models).
    base = members[0].model
    base.train()

    def hp(i):  # (K,) python lists of one hyperparameter per name
        return {n: [m.hparams[n][i] for m in members] for n in names}
    lr_mult, wd, eps, beta1, beta2 = (hp(i) for i in range(5))

    def loss_fn(p, b, x, y):
        _, loss, parts = functional_call(base, (p, b), (x, y), kwargs=dict(return_parts=True))
        return loss / grad_accum, (parts["ce"] / grad_accum, parts["z"] / grad_accum)

    grad_fn = vmap(grad(loss_fn, has_aux=True))
    loss_vmapped = vmap(lambda p, b, x, y: functional_call(base, (p, b), (x, y))[1])

    @torch.no_grad()
    def evaluate():
        """train.evaluate per member: float64 sums of loss.item() * rows over the fixed windows."""
        base.eval()
        res = [{} for _ in range(K)]
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
                res[k][split] = tot[k][0] / tot[k][1]
        base.train()
        return res

    def sync(k, lr_t):
        """Member k's slice of the stack into its own GPT and torch.optim.AdamW (checkpoints, sample)."""
        m = members[k]
        with torch.no_grad():
            for n, p in m.model.named_parameters():
                p.copy_(params[n][k])
            for g in m.optimizer.param_groups:
                g["lr"] = lr_t * g["lr_mult"]  # as train.forward_backward left it
                for n, p in zip(g["names"], g["params"]):
                    if n_steps[k]:
                        m.optimizer.state[p] = dict(step=torch.tensor(float(n_steps[k]), dtype=torch.float32),
                                                    exp_avg=exp_avg[n][k].clone(), exp_avg_sq=exp_avg_sq[n][k].clone())

    results = [dict(losses={}, train={}, val={}, grad_norm={}, status="done", diverged_at=None, iter=m.iter_num)
               for m in members]
    active = [True] * K
    iter_num, last_eval, start_iter = members[0].iter_num, members[0].last_eval, members[0].iter_num
    best = [m.best_val for m in members]
    eval_interval = c0["eval_interval"]
    lr_t = [m.config["learning_rate"] * train.lr_multiplier(max(iter_num - 1, 0), total, c0["lr_schedule"],
            c0["warmup_frac"], c0["decay_frac"], c0["min_lr_frac"]) for m in members]
    t_start = time.time()
    t0, steps_since, train_time = time.time(), 0, 0.0
    try:
        while True:
            if (iter_num % eval_interval == 0 and iter_num != last_eval) or iter_num >= total:
                ev, last_eval = evaluate(), iter_num
                for k, m in enumerate(members):
                    if not active[k]:
                        continue
                    results[k]["train"][iter_num], results[k]["val"][iter_num] = ev[k]["train"], ev[k]["val"]
                    if m.records is None:
                        continue
                    with m.printing():
                        print(f"step {iter_num}: train loss {ev[k]['train']:.4f}, val loss {ev[k]['val']:.4f}")
                    m.records.log(dict(iter=iter_num, train_loss=ev[k]["train"], val_loss=ev[k]["val"],
                                       tokens=iter_num * tokens_per_step, wall_s=round(time.time() - t_start, 3)))
                    improved = ev[k]["val"] < best[k]
                    best[k] = ev[k]["val"] if improved else best[k]
                    if m.checkpointer.enabled and iter_num > 0:
                        sync(k, lr_t[k])
                        m.checkpointer.after_eval(iter_num, best[k], last_eval, improved)
                t0, steps_since = time.time(), 0  # eval time is not training time
            if iter_num >= steps or not any(active):
                break
            # a signal stops every member at this step boundary; a member's own halt_at_iter stops it alone
            for k, m in enumerate(members):
                halt = m.config["halt_at_iter"]
                if active[k] and (stop is not None and stop.signal is not None or iter_num == halt != start_iter):
                    active[k] = False
                    results[k].update(status="stopped", iter=iter_num)
                    if m.records is not None:
                        sync(k, lr_t[k])
                        m.checkpointer.save(iter_num, best[k], last_eval)
                        with m.printing():
                            print(train.stopped_line(iter_num, stop.signal if stop and stop.signal else "halt_at_iter",
                                                     m.config["save_checkpoints"]))
                        m.records.finish("stopped", iter_num, best[k], resumable=m.config["save_checkpoints"])
                        m.close()
            if not any(active):
                break

            # one global batch per member: accumulate the micro-steps' gradients (train.forward_backward)
            mult = train.lr_multiplier(iter_num, total, c0["lr_schedule"], c0["warmup_frac"], c0["decay_frac"],
                                       c0["min_lr_frac"])
            lr_t = [m.config["learning_rate"] * mult for m in members]
            batches = [m.loader.next_step() for m in members]
            grads, loss_sum, z_sum = None, torch.zeros(K, device=proc.dev), torch.zeros(K, device=proc.dev)
            for micro in range(grad_accum):
                x = torch.stack([b[micro][0] for b in batches]).to(proc.dev)
                y = torch.stack([b[micro][1] for b in batches]).to(proc.dev)
                with autocast:
                    g, (ce, z) = grad_fn(params, buffers, x, y)
                loss_sum += ce.detach()
                z_sum += z.detach()
                grads = g if grads is None else {n: grads[n] + g[n] for n in names}
            # per-member clipping by the global norm (clip_grad_norm_'s order of reductions)
            norms = torch.stack([torch.linalg.vector_norm(grads[n].reshape(K, -1), 2, dim=1) for n in names], dim=1)
            total_norm = torch.linalg.vector_norm(norms, 2, dim=1)  # (K,)
            max_norm = torch.tensor([m.config["grad_clip"] or math.inf for m in members], device=proc.dev)
            coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)  # a float32 max_norm, as the scalar is
            finite = torch.isfinite(total_norm).tolist()
            losses_now, norms_now, z_now = loss_sum.tolist(), total_norm.tolist(), z_sum.tolist()
            for k, m in enumerate(members):
                if active[k] and not finite[k]:
                    active[k] = False
                    results[k].update(status="diverged", diverged_at=iter_num, iter=iter_num, lr=lr_t[k])
                    if m.records is not None:
                        with m.printing():
                            print(train.diverged_line(iter_num, losses_now[k], norms_now[k], lr_t[k],
                                                      m.config["out_dir"]))
                        m.records.finish("diverged", iter_num, best[k], lr=lr_t[k])
                        m.close()

            # AdamW per member and parameter (torch.optim.AdamW's single-tensor arithmetic)
            with torch.no_grad():
                for k in range(K):
                    n_steps[k] += active[k]
                for n in names:
                    gr = grads[n] * coef.view(-1, *([1] * (params[n].dim() - 1)))
                    new_p, m1, m2 = adamw_step(params[n], gr, exp_avg[n], exp_avg_sq[n],
                                               [lr_t[k] * lr_mult[n][k] for k in range(K)], wd[n], eps[n],
                                               beta1[n], beta2[n], n_steps)
                    p = params[n]
                    if all(active):
                        params[n], exp_avg[n], exp_avg_sq[n] = new_p, m1, m2
                    else:  # the stopped and diverged members keep their state, bit for bit
                        keep = torch.tensor(active, device=p.device).view(-1, *([1] * (p.dim() - 1)))
                        params[n] = torch.where(keep, new_p, p)
                        exp_avg[n] = torch.where(keep, m1, exp_avg[n])
                        exp_avg_sq[n] = torch.where(keep, m2, exp_avg_sq[n])
            iter_num += 1
            steps_since += 1
            log_due = []
            for k, m in enumerate(members):
                if active[k]:
                    results[k]["losses"][iter_num] = losses_now[k]
                    results[k]["grad_norm"][iter_num] = norms_now[k]
                    results[k]["iter"] = iter_num
                    if m.records is not None and (iter_num % m.config["log_interval"] == 0 or iter_num == total):
                        log_due.append(k)
            if log_due:
                dt = time.time() - t0
                train_time += dt
                elapsed = time.time() - t_start
                eta = train_time / (iter_num - start_iter) * (total - iter_num)
                for k in log_due:
                    m = members[k]
                    row = dict(iter=iter_num, loss=losses_now[k], lr=lr_t[k], grad_norm=norms_now[k],
                               tok_per_s=steps_since * tokens_per_step / dt, ms_per_step=1000 * dt / steps_since,
                               tokens=iter_num * tokens_per_step, wall_s=round(elapsed, 3))
                    if m.config["z_loss"] > 0:
                        row["z_loss"] = z_now[k]
                    with m.printing():
                        print(train.log_line(row, total, elapsed, eta))
                    m.records.log(row)
                t0, steps_since = time.time(), 0

        for k, m in enumerate(members):
            r = results[k]
            if r["status"] == "done" and r["iter"] < total:
                r["status"] = "stopped"
            if keep_params:
                r["params"] = {n: params[n][k].detach().clone() for n in names}
            if m.records is not None and active[k] and r["status"] == "done":
                m.records.finish("done", iter_num, best[k], train_loss=r["train"].get(iter_num),
                                 val_loss=r["val"].get(iter_num))
                if m.config["sample_tokens"] > 0:
                    sync(k, lr_t[k])
                    with m.printing():
                        train.sample(m.model, m.meta, m.config["seed"], m.config["sample_tokens"], proc)
    finally:
        for m in members:
            m.close()
    return results


def read_spec(path):
    """The members of a pack file (what scripts/sweep.py --pack writes): {"members": [[train.py
    arguments], ...]}, each list exactly what `python train.py` would be given for that point."""
    try:
        with open(path) as f:
            spec = json.load(f)
    except OSError as e:
        raise UserError(f"cannot read the pack file {path} ({e.strerror or e}); give the path scripts/sweep.py "
                        "--pack wrote (<out_root>/packs/*.json)") from None
    except ValueError as e:
        raise UserError(f"{path} is not JSON ({e}); it should be a pack file written by scripts/sweep.py --pack") from None
    members = spec.get("members") if isinstance(spec, dict) else None
    if not (isinstance(members, list) and members
            and all(isinstance(a, list) and all(isinstance(s, str) for s in a) for a in members)):
        raise UserError(f"{path}: expected {{\"members\": [[train.py arguments], ...]}}, one list of strings per "
                        "member; it should be a pack file written by scripts/sweep.py --pack")
    return members


def main(argv=None):
    from configurator import parse
    import runs
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python pack.py PACK_FILE  (a pack file scripts/sweep.py --pack wrote); see pack.py's docstring")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    defaults, annotations = runs.train_defaults()
    configs = []
    for args in read_spec(argv[0]):
        try:
            configs.append(parse(defaults, args, annotations, train.NANOGPT_ALIASES)[0])
        except UserError as e:
            raise UserError(f"{argv[0]}: member {len(configs)}: {e}") from None
    stop = train.Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    results = train_pack(configs, stop=stop)
    ends = [r["status"] if r else "stopped" for r in results]
    print(f"pack of {len(configs)}: " + ", ".join(f"{ends.count(s)} {s}" for s in ("done", "diverged", "stopped")
                                                  if s in ends), flush=True)
    if "stopped" in ends:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return EXIT_STOPPED
    return 0


if __name__ == "__main__":
    run_cli(main)

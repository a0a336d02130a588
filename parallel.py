"""
FSDP2 for train.py (`parallel='fsdp'`): PyTorch's `fully_shard` on each transformer block and
then on the whole model (embeddings, final norm and the unembedding, tied or not, form the
root unit), so every rank holds 1/world_size of each parameter, gradient and AdamW moment.

The parameterization survives sharding because the optimizer is rebuilt from the sharded
model by the same code (GPT.param_groups groups parameters by name, and sharding keeps the
names); `same_groups` checks the result against the unsharded model's groups.
"""
import sys

import torch
# torch.distributed.fsdp / device_mesh / tensor are imported where a run shards (about half a
# second of start-up that a one-process run, and every sweep point, would otherwise pay)

PARALLEL = ("ddp", "fsdp")


def group_table(param_groups):
    """Everything of each optimizer group but its tensors (and lr, which the schedule sets):
    role, names, lr_mult, weight_decay, eps, betas and whatever multipliers a group carries."""
    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k not in ("params", "lr")}
            for g in param_groups]


def same_groups(unsharded, sharded):
    """Raise AssertionError naming the first difference between two optimizers' groups."""
    a, b = group_table(unsharded), group_table(sharded)
    if len(a) != len(b):
        raise AssertionError(f"fsdp: {len(b)} optimizer groups after sharding, {len(a)} before")
    for ga, gb in zip(a, b):
        for k in sorted(set(ga) | set(gb)):
            if ga.get(k) != gb.get(k):
                raise AssertionError(f"fsdp: optimizer group {ga.get('role', '?')!r}: {k} is {gb.get(k)!r} "
                                     f"after sharding, {ga.get(k)!r} before; the parameterization must "
                                     "survive sharding")


def shard(model, device_type, param_dtype):
    """fully_shard each block, then the root, in place. Mixed precision: parameters in
    param_dtype for compute (bfloat16 on CUDA), gradients reduced in float32; CPU (gloo) runs
    float32 throughout."""
    world = torch.distributed.get_world_size()
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    mesh = init_device_mesh(device_type, (world,))
    mp = MixedPrecisionPolicy(param_dtype=param_dtype if device_type == "cuda" else torch.float32,
                              reduce_dtype=torch.float32)
    for block in model.transformer.h:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    tied = model.config.tie_embeddings
    assert (model.lm_head.weight is model.transformer.wte.weight) == tied, \
        "fsdp: sharding changed whether wte and lm_head share one tensor"
    return model


def shard_with_optimizer(model, optimizer, make_optimizer, device_type, param_dtype):
    """Shard the model and rebuild its optimizer on the shards (the old one holds the
    unsharded tensors); assert its groups equal the unsharded optimizer's."""
    before = optimizer.param_groups
    shard(model, device_type, param_dtype)
    optimizer = make_optimizer()
    same_groups(before, optimizer.param_groups)
    return optimizer


def pad_eval_batches(batches, n, block_size):
    """A rank's evaluation batches padded to n with (x, None): under FSDP every forward
    all-gathers, so all ranks must run as many; the padding forwards are not counted."""
    x = batches[0][0] if batches else torch.zeros(1, block_size, dtype=torch.long)
    return list(batches) + [(x, None)] * (n - len(batches))


def full(t):
    """A DTensor reduced to the full value on every rank (a sharded gradient norm); else t."""
    dtensor = sys.modules.get("torch.distributed.tensor")  # not imported: t cannot be a DTensor
    return t.full_tensor() if dtensor is not None and isinstance(t, dtensor.DTensor) else t

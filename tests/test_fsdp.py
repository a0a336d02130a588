"""FSDP2 (parallel='fsdp') and its DCP checkpoints, on CPU with gloo: the loss trajectory of 2
sharded ranks against 1 process and DDP; the optimizer groups after sharding; resumes onto
other world sizes (2 -> 1 -> 2), one after a SIGKILL in the middle of a save; sample.py and the
converter on a DCP checkpoint; tied embeddings through sharding and a DCP round trip."""
import importlib.util
import json
import os
import shutil
import sys

import pytest
import torch
import torch.distributed as dist

import checkpoint as ckpt_io
from runs import UserError
from conftest import REPO, TINY, run_main, run_script
from model import GPT, GPTConfig

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
# completep with an untied unembedding; 2 micro-steps a rank under fsdp (accumulation without
# a reduce-scatter on the first), 4 in one process
RUN = [*TINY, "--tie_embeddings=False", "--batch_size=2", "--global_batch_size=8", "--max_iters=24",
       "--eval_interval=8", "--keep_last=5", "--dropout=0.0", "--learning_rate=0.01",
       "--eval_tokens=544"]  # 17 windows: 9 on rank 0, 8 on rank 1 (fsdp pads rank 1's evaluation)


def losses(out, key="loss"):
    """{step: training loss} (or val_loss) of a run's metrics.jsonl; a step logged twice (a run
    killed and resumed) counts as its last row."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["iter"]: r[key] for r in rows if key in r}


def train(out, nproc=None, *extra, expect=0, script="train.py"):
    cmd = [*TORCHRUN, f"--nproc_per_node={nproc}"] if nproc else None
    r = run_script([script, *RUN, f"--out_dir={out}", *extra], cmd=cmd, timeout=240)
    assert r.returncode == expect, (r.stdout[-1500:], r.stderr[-3000:])
    return r


@pytest.fixture(scope="module")
def runs(char_data, tmp_path_factory):
    """The same 24 steps as 1 process (4 micro-steps), DDP and FSDP (2 ranks x 2 micro-steps)."""
    base = tmp_path_factory.mktemp("fsdp_runs")
    d = {k: base / k for k in ("single", "ddp", "fsdp")}
    train(d["single"], None, f"--data_dir={char_data}")
    train(d["ddp"], 2, f"--data_dir={char_data}")
    r = train(d["fsdp"], 2, f"--data_dir={char_data}", "--parallel=fsdp", "--sample_tokens=30")
    d["fsdp_stdout"] = r.stdout
    return d


@pytest.mark.slow
def test_fsdp_matches_single_process_and_ddp(runs):
    single, ddp, fsdp = (losses(runs[k]) for k in ("single", "ddp", "fsdp"))
    assert sorted(fsdp) == list(range(1, 25)) and sorted(single) == sorted(ddp) == sorted(fsdp)
    worst = max(max(abs(fsdp[i] - single[i]), abs(fsdp[i] - ddp[i])) for i in fsdp)
    assert worst < 1e-5, worst  # fp32: only the order of the reductions differs
    assert single[24] < single[1] - 0.5  # it trained: the agreement is not that of constants
    val = [losses(runs[k], "val_loss") for k in ("single", "ddp", "fsdp")]
    assert sorted(val[2]) == [0, 8, 16, 24] and all(v.keys() == val[2].keys() for v in val)
    assert max(abs(val[2][i] - v[i]) for v in val[:2] for i in v) < 1e-5  # uneven evaluation shards
    a = ckpt_io.load_checkpoint(str(runs["single"] / "ckpt_0000024.pt"))
    b = ckpt_io.load_checkpoint(str(runs["fsdp"] / "ckpt_0000024.dcp"))  # gathered in this process
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:  # AdamW turns fp32 rounding in near-zero bias gradients into ~lr/100 (DDP alike)
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=1e-3, atol=2e-4)
    assert len(b["rng"]) == 2  # every rank's RNG state
    shards = sorted(n for n in os.listdir(runs["fsdp"] / "ckpt_0000024.dcp") if n.endswith(".distcp"))
    assert shards == ["__0_0.distcp", "__1_0.distcp"]  # each rank wrote its own shards


def test_checkpoints_listed_and_pruned_like_files(runs, tmp_path):
    out = runs["fsdp"]
    names = [os.path.basename(p) for p in ckpt_io.list_checkpoints(str(out))]
    assert names == ["ckpt_0000008.dcp", "ckpt_0000016.dcp", "ckpt_0000024.dcp"]
    assert (out / "best.dcp" / "state.json").is_file() and not list(out.glob("*.tmp"))
    # pruning counts directories and files alike, by step, never past the newest written
    d = tmp_path / "prune"
    d.mkdir()
    for n in ("ckpt_0000008.dcp", "ckpt_0000016.dcp", "ckpt_0000024.dcp"):
        shutil.copytree(out / n, d / n)
    (d / "ckpt_0000012.pt").write_bytes(b"")
    (d / "ckpt_copy.dcp").mkdir()  # not a name the trainer writes
    ckpt_io.prune(str(d), 2, 16)
    assert sorted(os.listdir(d)) == ["ckpt_0000012.pt", "ckpt_0000016.dcp", "ckpt_0000024.dcp", "ckpt_copy.dcp"]


@pytest.mark.slow
def test_killed_mid_save_then_resharded_resumes_match_the_straight_run(runs, char_data, tmp_path):
    """From the 2-rank checkpoint at step 8, 1 rank resumes (2 -> 1), writes step 16 and is
    SIGKILLed while writing step 24's checkpoint (shards written, DCP's index not); 2 ranks
    resume from the previous complete one, the 1-rank step 16 (1 -> 2), and finish. Every
    step's loss is the straight FSDP run's."""
    out = tmp_path / "chain"
    out.mkdir()
    shutil.copytree(runs["fsdp"] / "ckpt_0000008.dcp", out / "ckpt_0000008.dcp")
    driver = tmp_path / "kill_mid_save.py"
    driver.write_text(f"""
import os, signal, sys
sys.path.insert(0, {REPO!r})
from torch.distributed.checkpoint import FileSystemWriter
original = FileSystemWriter.finish
def finish(self, metadata, results):  # all shards of step 24 are on disk; die before DCP writes its index
    if "ckpt_0000024" in str(self.path):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, metadata, results)
FileSystemWriter.finish = finish
sys.argv[0] = "train.py"
import train
train.main()
""")
    r = run_script([str(driver), *RUN, f"--out_dir={out}", f"--data_dir={char_data}", "--parallel=fsdp"],
                   cmd=[*TORCHRUN, "--nproc_per_node=1"], timeout=240)
    assert r.returncode != 0 and f"resuming from {out / 'ckpt_0000008.dcp'} at step 8" in r.stdout, r.stderr[-2000:]
    assert (out / "ckpt_0000024.dcp.tmp").is_dir() and not (out / "ckpt_0000024.dcp").exists()
    assert sorted(n for n in os.listdir(out / "ckpt_0000016.dcp") if n.endswith(".distcp")) == ["__0_0.distcp"]
    first = losses(out)
    r = train(out, 2, f"--data_dir={char_data}", "--parallel=fsdp")
    assert f"resuming from {out / 'ckpt_0000016.dcp'} at step 16" in r.stdout
    assert not (out / "ckpt_0000024.dcp.tmp").exists()  # the stale temporary is gone
    straight, chained = losses(runs["fsdp"]), losses(out)
    assert sorted(first) == sorted(chained) == list(range(9, 25))
    assert max(abs(first[i] - straight[i]) for i in range(9, 17)) < 1e-5  # on 1 rank
    assert max(abs(chained[i] - straight[i]) for i in range(17, 25)) < 1e-5  # on 2 again
    a = ckpt_io.load_checkpoint(str(runs["fsdp"] / "ckpt_0000024.dcp"))
    b = ckpt_io.load_checkpoint(str(out / "ckpt_0000024.dcp"))
    for k in a["model"]:  # 1 rank accumulates 4 micro-steps where 2 ranks sum 2 each: rounding, as above
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=1e-3, atol=2e-4)


def test_sample_reads_a_dcp_checkpoint(runs):
    """sample.py, one process and no process group, on the 2-rank DCP checkpoint: the same
    text as the trainer's own final sample (same weights, seed and settings)."""
    r = run_script(["sample.py", f"--checkpoint={runs['fsdp'] / 'ckpt_0000024.dcp'}", "--max_new_tokens=30",
                    "--device=cpu"])
    assert r.returncode == 0, r.stderr
    trained = runs["fsdp_stdout"].split("sample:\n", 1)[1].rstrip("\n")
    assert r.stdout.split("\n", 1)[1].split("---------------")[0].rstrip("\n") == trained
    assert "step 24" in r.stdout


def test_converter_round_trip(runs, tmp_path):
    spec = importlib.util.spec_from_file_location("convert_checkpoint",
                                                  os.path.join(REPO, "scripts", "convert_checkpoint.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    convert = mod.convert
    src = str(runs["fsdp"] / "ckpt_0000024.dcp")
    pt = convert(src, str(tmp_path / "ckpt_0000024.pt"))
    back = convert(pt, str(tmp_path / "back" / "ckpt_0000024.dcp"))
    a = ckpt_io.load_checkpoint(src)
    b = torch.load(pt, map_location="cpu", weights_only=True)  # a plain single file, no pickled code
    ckpt_io.validate(b, pt)
    c = ckpt_io.load_checkpoint(back)
    for x in (b, c):
        assert x["model"].keys() == a["model"].keys() and x["iter_num"] == 24
        assert all(torch.equal(x["model"][k], a["model"][k]) for k in a["model"])
        sa, sx = a["optimizer"]["state"], x["optimizer"]["state"]
        assert sa.keys() == sx.keys() and all(torch.equal(sx[i][k], sa[i][k]) for i in sa for k in sa[i])
        assert all(torch.equal(rx["torch"], ra["torch"]) for rx, ra in zip(x["rng"], a["rng"]))
        assert x["data"]["mode"] == a["data"]["mode"]
    # the single file resumes a 1-process run like any checkpoint of it
    model = GPT(GPTConfig(**b["model_config"]))
    ckpt_io.restore(b, pt, model, model.configure_optimizers(0.1, 0.01, (0.9, 0.95)), rng=False)
    with pytest.raises(UserError, match="already exists; move it away"):
        mod.main([pt, back])


@pytest.fixture
def one_rank_group(tmp_path):
    """A 1-rank gloo process group in this process (fully_shard needs one), torn down after."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.barrier()
        dist.destroy_process_group()


def tiny(tied):
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=32, base_n_embd=16,
                         tie_embeddings=tied))


@pytest.mark.parametrize("tied", [True, False])
def test_groups_survive_sharding_and_tied_dcp_round_trip(one_rank_group, tmp_path, tied):
    from parallel import group_table, shard_with_optimizer
    model = tiny(tied)
    make = lambda: model.configure_optimizers(0.1, 0.01, (0.9, 0.95), 1e-8)  # noqa: E731
    before = group_table(make().param_groups)
    assert {g["role"]: g["lr_mult"] for g in before}["hidden"] == 0.5  # m_N = 2: the table is not trivial
    opt = shard_with_optimizer(model, make(), make, "cpu", torch.float32)
    assert group_table(opt.param_groups) == before
    assert all(type(p).__name__ == "DTensor" for g in opt.param_groups for p in g["params"])
    assert (model.lm_head.weight is model.transformer.wte.weight) == tied
    x = torch.randint(0, 40, (2, 16))
    model.set_requires_gradient_sync(False)  # train.py's first of 2 micro-steps: no reduce-scatter
    model(x, x)[1].backward()
    assert all(p.grad is None for p in model.parameters())  # accumulated unsharded, not yet reduced
    model.set_requires_gradient_sync(True)  # the last micro-step reduce-scatters the sum
    model(x, x)[1].backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    # DCP round trip through a fresh sharded model: weights and moments come back
    path = str(tmp_path / "ckpt_0000001.dcp")
    ckpt_io.save_sharded(ckpt_io.build(None, None, dict(model.config.__dict__), {}, model.parameterization.table(), 1, 1.0, 1,
                                       {"mode": "m"}, [ckpt_io.rng_state()], {}), path, model, opt)
    other = tiny(tied)
    make2 = lambda: other.configure_optimizers(0.1, 0.01, (0.9, 0.95), 1e-8)  # noqa: E731
    opt2 = shard_with_optimizer(other, make2(), make2, "cpu", torch.float32)
    ck = ckpt_io.load_checkpoint(path, tensors=False)
    assert "model" not in ck
    ckpt_io.restore(ck, path, other, opt2, rng=False)
    for (n, p), (_, q) in zip(model.named_parameters(), other.named_parameters()):
        assert torch.equal(p.full_tensor(), q.full_tensor()), n
        assert torch.equal(opt.state[p]["exp_avg"].full_tensor(), opt2.state[q]["exp_avg"].full_tensor()), n
    assert (other.lm_head.weight is other.transformer.wte.weight) == tied
    full = ckpt_io.load_checkpoint(path)  # gathered without using the group
    assert ("lm_head.weight" in full["model"]) and torch.equal(
        full["model"]["lm_head.weight"], full["model"]["transformer.wte.weight"]) == tied


def test_a_group_that_changes_in_sharding_is_refused(one_rank_group):
    """Mutation: the sharded model's optimizer with the hidden group's lr_mult changed must
    make the start-up assert fire."""
    from parallel import shard_with_optimizer
    model = tiny(False)
    make = lambda: model.configure_optimizers(0.1, 0.01, (0.9, 0.95), 1e-8)  # noqa: E731

    def mutated():
        opt = make()
        next(g for g in opt.param_groups if g["role"] == "hidden")["lr_mult"] *= 1.001
        return opt
    with pytest.raises(AssertionError, match="'hidden': lr_mult"):
        shard_with_optimizer(model, make(), mutated, "cpu", torch.float32)


def test_single_file_checkpoint_refused_under_fsdp(one_rank_group, tmp_path):
    from parallel import shard_with_optimizer
    model = tiny(False)
    path = str(tmp_path / "ckpt_0000000.pt")
    opt = model.configure_optimizers(0.1, 0.01, (0.9, 0.95), 1e-8)
    ckpt_io.save(ckpt_io.build(model.state_dict(), opt.state_dict(), dict(model.config.__dict__), {}, {}, 0,
                               1.0, 0, {"mode": "m"}, [ckpt_io.rng_state()], {}), path)
    make = lambda: model.configure_optimizers(0.1, 0.01, (0.9, 0.95), 1e-8)  # noqa: E731
    opt = shard_with_optimizer(model, opt, make, "cpu", torch.float32)
    with pytest.raises(ckpt_io.UserError, match="convert_checkpoint.py"):
        ckpt_io.restore(ckpt_io.load_checkpoint(path), path, model, opt)


@pytest.mark.parametrize("args, message", [
    (["--parallel=zero3"], "parallel='zero3' is not one of 'ddp', 'fsdp'"),
    (["--parallel=fsdp"], "parallel='fsdp' needs torchrun"),
])
def test_bad_parallel_settings(char_data, tmp_path, monkeypatch, args, message):
    import train
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        run_main(train, [f"--data_dir={char_data}", f"--out_dir={tmp_path / 'o'}", *TINY, "--max_iters=2", *args])
    assert not (tmp_path / "o").exists()


def test_bad_dcp_checkpoints_are_one_line_errors(runs, tmp_path):
    """A DCP directory without state.json (not the trainer's, or a copy cut short), and one
    whose pickled .metadata would run code: refused with a UserError, nothing run."""
    src = runs["fsdp"] / "ckpt_0000024.dcp"
    no_state = tmp_path / "a" / "ckpt_0000024.dcp"
    shutil.copytree(src, no_state)
    os.remove(no_state / "state.json")
    with pytest.raises(ckpt_io.UserError, match=r"has no state\.json"):
        ckpt_io.load_checkpoint(str(no_state))
    evil = tmp_path / "b" / "ckpt_0000024.dcp"
    shutil.copytree(src, evil)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    import pickle
    (evil / ".metadata").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ckpt_io.UserError, match="is not part of a DCP index"):
        ckpt_io.load_checkpoint(str(evil))
    assert not marker.exists()
    renamed = tmp_path / "c" / "ckpt_0000005.dcp"
    shutil.copytree(src, renamed)
    with pytest.raises(ckpt_io.UserError, match="rename it to ckpt_0000024.dcp"):
        ckpt_io.load_checkpoint(str(renamed), tensors=False)


def test_stale_dcp_temporaries_removed_and_a_replaced_checkpoint_put_back(tmp_path):
    """At start: a <name>.dcp.tmp of a killed save is deleted; a <name>.dcp.old whose
    replacement never landed (killed between save_sharded's two renames) is put back; a
    .dcp.old beside its replacement is deleted; other names are left alone."""
    for n in ("ckpt_0000008.dcp.tmp", "best.dcp.old", "ckpt_0000004.dcp.old", "ckpt_0000004.dcp",
              "ckpt_copy.dcp.tmp"):
        (tmp_path / n).mkdir()
        (tmp_path / n / "state.json").write_text(n)
    ckpt_io.remove_stale_temporaries(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["best.dcp", "ckpt_0000004.dcp", "ckpt_copy.dcp.tmp"]
    assert (tmp_path / "best.dcp" / "state.json").read_text() == "best.dcp.old"
    assert (tmp_path / "ckpt_0000004.dcp" / "state.json").read_text() == "ckpt_0000004.dcp"


class _RunsCode:
    """A pickle that touches a file when unpickled: what a crafted checkpoint would run."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("entry", ["model/lm_head.weight", "extra"])
def test_a_dcp_bytes_entry_is_refused_never_unpickled(tmp_path, entry):
    """A DCP checkpoint whose index holds a bytes entry (DCP's default planner would
    torch.load it with weights_only=False): in place of a weight the resume reads
    (restore), and as an extra entry nothing asks for (load_checkpoint): both refused in one
    line, the payload never run."""
    import io
    import pickle
    import torch.distributed.checkpoint as dcp
    model = tiny(False)
    opt = model.configure_optimizers(0.1, 0.01, (0.9, 0.95), 1e-8)
    path = tmp_path / "ckpt_0000001.dcp"
    ckpt_io.save_as_sharded(ckpt_io.build(model.state_dict(), opt.state_dict(), dict(model.config.__dict__), {},
                                          model.parameterization.table(), 1, 1.0, 1, {"mode": "m"},
                                          [ckpt_io.rng_state()], {}), str(path))
    marker = tmp_path / "ran"
    flat = {f"model/{k}": v for k, v in model.state_dict().items()}
    flat[entry] = io.BytesIO(pickle.dumps(_RunsCode(marker)))
    crafted = tmp_path / "crafted"
    dcp.save(flat, storage_writer=dcp.FileSystemWriter(str(crafted)), no_dist=True)
    for n in os.listdir(path):  # the crafted shards and index under the real state.json
        if n != "state.json":
            os.remove(path / n)
    for n in os.listdir(crafted):
        shutil.copy(crafted / n, path / n)
    with pytest.raises(ckpt_io.UserError, match="is not a tensor"):
        ckpt_io.restore(ckpt_io.load_checkpoint(str(path), tensors=False), str(path), tiny(False), rng=False)
    with pytest.raises(ckpt_io.UserError, match="is not a tensor"):
        ckpt_io.load_checkpoint(str(path))
    assert not marker.exists()

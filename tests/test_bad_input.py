"""Bad input, each kind: a config file, an override, a data directory, a checkpoint or a
sample.py argument that cannot work must stop with ONE line starting 'error:' that says what
to change, exit code 2, and no traceback.

Most cases call the code in-process (configurator, train.check_config, GPTConfig,
dataloader.open_dataset, checkpoint.load_checkpoint, train.main / sample.main with a patched
argv) and check the UserError's message; a few run the scripts end to end. The cases are
listed, with their messages, in the README (section "Bad input").
"""
import json
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import checkpoint  # noqa: E402
import sample  # noqa: E402
import train  # noqa: E402
from configurator import configure  # noqa: E402
from runs import UserError  # noqa: E402
from conftest import ENV, TINY as CONF_TINY, run_main  # noqa: E402
from dataloader import HEADER_INTS, RandomWindowLoader, read_tokens, write_tokens, open_dataset  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

TINY = CONF_TINY + ["--max_iters=4", "--compile=False"]
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(200))
CHARS = sorted(set(TEXT))


def make_dataset(d):
    ids = np.array([CHARS.index(c) for c in TEXT], dtype=np.uint16)
    os.makedirs(d, exist_ok=True)
    write_tokens(os.path.join(d, "train.bin"), ids[:-1000], vocab_size=len(CHARS))
    write_tokens(os.path.join(d, "val.bin"), ids[-1000:], vocab_size=len(CHARS))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"tokenizer": "char", "vocab_size": len(CHARS), "itos": CHARS}, f)
    return d


def assert_one_line(msg, *expect):
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    for e in expect:
        assert e in msg, f"{e!r} not in {msg!r}"


def raises_config_error(fn, *expect):
    with pytest.raises(UserError) as info:
        fn()
    assert_one_line(str(info.value), *expect)
    return str(info.value)


# --- settings: config files, --key=value, contradictions (configure -> check_config -> GPTConfig)

def resolve(argv):
    """What train.main does with argv before touching data: a UserError, or the config."""
    ns = dict(vars(train))  # a copy: the module's defaults stay as they are
    config = configure(ns, argv)
    train.check_config(config, 1)
    fields = GPTConfig.__dataclass_fields__
    try:
        GPTConfig(**{k: v for k, v in config.items() if k in fields}, vocab_size=65)
    except ValueError as e:  # train.main turns this into a UserError with the same text
        raise UserError(str(e)) from None
    return config


FILES = {  # config files the cases below refer to as {NAME}
    "syntax": "n_layer = (\n",
    "raises": "n_layer = 1 // 0\n",
    "exits": "import sys\nsys.exit(3)\n",
    "unknown": "n_layers = 4\n",
    "wrongtype": "n_layer = '4'\n",
    "ok": "n_layer = 3\n",
    "nan": "learning_rate = float('nan')\n",
    "naneps": "eps = float('nan')\n",
}

SETTINGS = [  # (id, argv, words the message must hold)
    ("unknown key, did-you-mean", ["--n_layers=4"], ["unknown config key 'n_layers'", "did you mean 'n_layer'"]),
    ("unknown key, no close match", ["--zzzz=1"], ["unknown config key 'zzzz'", "defaults at the top of train.py"]),
    ("unknown key in a config file", ["{unknown}"], ["unknown config key 'n_layers'", "did you mean 'n_layer'"]),
    ("malformed argument", ["-n_layer=4"], ["malformed", "--key=value"]),
    ("override without a value", ["--n_layer"], ["has no value", "--n_layer=VALUE"]),
    ("wrong type: float for int", ["--n_layer=4.5"], ["n_layer expects int", "got float 4.5"]),
    ("wrong type: word for int", ["--n_layer=four"], ["--n_layer=four is not a valid int", "e.g. --n_layer=4"]),
    ("wrong type: bool", ["--bias=yes"], ["--bias=yes is not a valid bool", "e.g. --bias=True"]),
    ("wrong type: bool for int", ["--n_layer=True"], ["n_layer expects int, got bool"]),
    ("wrong type in a config file", ["{wrongtype}"], ["n_layer expects int, got str '4'", "fix it there"]),
    ("config file missing", ["config/nope.py"], ["config file config/nope.py does not exist"]),
    ("config file is a directory", ["config"], ["config file config is not a file"]),
    ("config file syntax error", ["{syntax}"], ["line 1", "plain Python assignments"]),
    ("config file raises", ["{raises}"], ["failed to run: ZeroDivisionError", "fix it"]),
    ("config file calls exit()", ["{exits}"], ["failed to run: SystemExit: 3"]),
    ("config file not UTF-8", ["{binary}"], ["cannot read config file", "UTF-8"]),
    ("unknown choice", ["--lr_schedule=linear"], ["lr_schedule='linear' is not one of 'cosine', 'wsd', 'constant'"]),
    ("unknown init_from", ["--init_from=resum"], ["init_from='resum' is not one of"]),
    ("unknown device", ["--device=tpu"], ["device='tpu' is not 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"]),
    ("non-positive batch size", ["--batch_size=0"], ["batch_size=0 must be positive"]),
    ("non-positive block size", ["--block_size=-8"], ["block_size=-8 must be positive"]),
    ("no run length", ["--max_iters=0"], ["max_iters and max_tokens are both <= 0"]),
    ("global batch not divisible", ["--batch_size=4", "--global_batch_size=10"],
     ["global_batch_size=10 is not a multiple of batch_size=4"]),
    ("warmup fraction out of range", ["--warmup_frac=1.0"], ["warmup_frac=1.0 must be in [0, 1)"]),
    ("wsd warmup + decay > 1", ["--lr_schedule=wsd", "--warmup_frac=0.5", "--decay_frac=0.6"],
     ["exceed the whole run", "sum to at most 1"]),
    ("zero learning rate", ["--learning_rate=0"], ["learning_rate=0.0 must be positive"]),
    ("negative weight decay", ["--weight_decay=-0.1"], ["weight_decay=-0.1 must be >= 0"]),
    ("beta of 1", ["--beta2=1.0"], ["beta2=1.0 must be below 1"]),
    ("n_embd not divisible by n_head", ["--n_embd=30", "--n_head=4"], ["n_embd=30 is not divisible by n_head=4"]),
    ("zero layers", ["--n_layer=0"], ["n_layer=0 must be a positive integer"]),
    ("dropout of 1", ["--dropout=1.0"], ["dropout=1.0 must be in [0, 1)"]),
    ("zero init std", ["--init_std=0"], ["init_std=0.0 must be positive"]),
    ("depth_alpha with mup", ["--parameterization=mup", "--depth_alpha=0.5"],
     ["depth_alpha=0.5 has no meaning for parameterization='mup'"]),
    ("depth_alpha out of range", ["--depth_alpha=1.5"], ["depth_alpha=1.5 is outside [0.5, 1]"]),
    ("output_mult with sp", ["--parameterization=sp", "--output_mult=2.0"],
     ["leave them at 1.0 for parameterization='sp'"]),
    ("unknown parameterization", ["--parameterization=ntk"], ["unknown parameterization 'ntk'", "completep"]),
    ("non-positive base shape", ["--base_n_embd=0"], ["base_n_embd=0", "must be positive"]),
    ("empty out_dir", ["--out_dir="], ["out_dir is empty", "--out_dir=out"]),
    ("NaN learning rate in a config file", ["{nan}"], ["learning_rate=nan must be a finite number"]),
    ("NaN eps in a config file", ["{naneps}"], ["eps=nan must be a finite number"]),
    ("infinite learning rate", ["--learning_rate=1e999"], ["learning_rate=inf must be a finite number"]),
    ("infinite init std", ["--init_std=1e999"], ["init_std=inf must be a finite number"]),
]


@pytest.mark.parametrize("argv,expect", [pytest.param(a, e, id=i) for i, a, e in SETTINGS])
def test_bad_settings(argv, expect, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    paths = {}
    for name, text in FILES.items():
        paths[name] = str(tmp_path / f"{name}.py")
        with open(paths[name], "w") as f:
            f.write(text)
    paths["binary"] = str(tmp_path / "binary.py")
    with open(paths["binary"], "wb") as f:
        f.write(b"\xff\xfe n_layer = 2\n")
    argv = [a.format(**paths) for a in TINY + argv]
    raises_config_error(lambda: resolve(argv), *expect)


def test_good_settings_pass(tmp_path):
    """The same pipeline accepts what it should (so the cases above fail for their reason)."""
    path = tmp_path / "ok.py"
    path.write_text(FILES["ok"])
    config = resolve(TINY + [str(path), "--depth_alpha=0.75", "--bias=false", "--learning_rate=3e-3"])
    assert config["n_layer"] == 3 and config["depth_alpha"] == 0.75 and config["bias"] is False


# --- data directories (dataloader.open_dataset) -------------------------------------------

def _header(path, index, value):
    header = np.fromfile(path, dtype=np.int32, count=HEADER_INTS)
    header[index] = value
    with open(path, "r+b") as f:
        f.write(header.tobytes())


def _write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def _meta(d, **change):
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    meta.update(change)
    for k, v in change.items():
        if v is None:
            del meta[k]
    _write(os.path.join(d, "meta.json"), json.dumps(meta))


DATA = [  # (id, how the directory is broken, block_size, words the message must hold)
    ("dataset dir missing", lambda d: os.rename(d, d + ".gone"), 32, ["does not exist", "--data_dir"]),
    ("dataset dir is a file", lambda d: (os.rename(d, d + ".gone"), _write(d, "x")), 32, ["is not a directory"]),
    ("train.bin missing", lambda d: os.remove(f"{d}/train.bin"), 32, ["holds no train.bin", "prepare.py"]),
    ("val.bin missing", lambda d: os.remove(f"{d}/val.bin"), 32, ["val.bin: file not found", "prepare.py"]),
    ("train.bin is a directory", lambda d: (os.remove(f"{d}/train.bin"), os.mkdir(f"{d}/train.bin")), 32,
     ["train.bin: is a directory, not a token file"]),
    ("token file empty (0 bytes)", lambda d: _write(f"{d}/train.bin", b""), 32,
     ["only 0 bytes, shorter than the 1024-byte header"]),
    ("token file bad magic", lambda d: _header(f"{d}/train.bin", 0, 12345), 32,
     ["wrong magic number 12345", "not a token file"]),
    ("token file wrong version", lambda d: _header(f"{d}/val.bin", 1, 9), 32,
     ["unsupported version 9 for magic 20240520 (expected 1)"]),
    ("token file truncated", lambda d: os.truncate(f"{d}/train.bin", os.path.getsize(f"{d}/train.bin") - 7), 32,
     ["truncated or corrupt"]),
    ("token ids >= vocab_size", lambda d: _meta(d, vocab_size=10, itos=CHARS[:10]), 32,
     [">= vocab_size 10 of meta.json"]),
    ("meta.json invalid JSON", lambda d: _write(f"{d}/meta.json", "{'vocab_size': 65"), 32, ["is not valid JSON"]),
    ("meta.json not an object", lambda d: _write(f"{d}/meta.json", "[65]"), 32, ["must be a JSON object", "got list"]),
    ("meta.json vocab_size not an int", lambda d: _meta(d, vocab_size="65"), 32, ["integer vocab_size > 0, got '65'"]),
    ("meta.json char vocabulary without itos", lambda d: _meta(d, itos=None), 32, ["lacks its itos list"]),
    ("meta.json is a directory", lambda d: (os.remove(f"{d}/meta.json"), os.mkdir(f"{d}/meta.json")), 32,
     ["meta.json", "irectory"]),
    ("block_size longer than the data", lambda d: None, 5000, ["too few for block_size=5000", "lower block_size"]),
    ("val.bin with no tokens", lambda d: write_tokens(f"{d}/val.bin", np.zeros(0, np.uint16), 10), 32,
     ["val.bin holds 0 tokens"]),
    ("meta.json token count of the wrong type", lambda d: _meta(d, train_tokens="5"), 32,
     ["meta.json: train_tokens must be int, got '5'"]),
    ("meta.json file entry of the wrong type", lambda d: _meta(d, files={"train.bin": [1, 2]}), 32,
     ["meta.json: files['train.bin'] must be {\"bytes\": int, \"crc32\": int}, got [1, 2]"]),
]


@pytest.mark.parametrize("breakit,block_size,expect", [pytest.param(b, t, e, id=i) for i, b, t, e in DATA])
def test_bad_data(breakit, block_size, expect, tmp_path):
    d = make_dataset(str(tmp_path / "data"))
    breakit(d)
    raises_config_error(lambda: open_dataset(d, block_size, 4, 8), *expect)


def test_good_data_opens(tmp_path):
    d = make_dataset(str(tmp_path / "data"))
    data = open_dataset(d, 32, 4, 8)
    assert data.meta["vocab_size"] == len(CHARS) and len(read_tokens(f"{d}/val.bin")) == 1000


# --- checkpoints (checkpoint.load_checkpoint, and train.main's resume) -------------------------

def tiny_checkpoint(data_dir, **change):
    """A checkpoint train.main would resume from for TINY + --data_dir, built in-process."""
    ns = dict(vars(train))
    config = configure(ns, TINY + [f"--data_dir={data_dir}"])
    fields = GPTConfig.__dataclass_fields__
    cfg = GPTConfig(**{k: v for k, v in config.items() if k in fields}, vocab_size=len(CHARS))
    model = GPT(cfg)
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.95))
    tokens = read_tokens(os.path.join(data_dir, "train.bin"))
    ckpt = checkpoint.build(model.state_dict(), opt.state_dict(), asdict(cfg), config, model.parameterization.table(),
                            iter_num=2, best_val_loss=3.0, last_eval_iter=2,
                            data=RandomWindowLoader(tokens, 32, 4, 8).state_dict(),
                            rng=[checkpoint.rng_state()], meta={})
    ckpt.update(change)
    return ckpt


def _save(obj):
    return lambda p: torch.save(obj, p)


def _truncated(p):
    torch.save({"format": 1, "model": {"w": torch.zeros(1000)}, "model_config": {}}, p)
    os.truncate(p, os.path.getsize(p) // 2)


CHECKPOINT_FILES = [  # (id, how the file at ckpt_0000002.pt is written, words the message must hold)
    ("checkpoint empty (0 bytes)", lambda p: _write(p, b""), ["cannot be read", "delete it"]),
    ("checkpoint truncated", _truncated, ["cannot be read", "delete it to fall back to the previous one"]),
    ("checkpoint is a text file", lambda p: _write(p, "not a checkpoint\n"), ["cannot be read"]),
    ("checkpoint is a directory", os.mkdir, ["cannot be read", "IsADirectoryError"]),
    ("checkpoint holds numpy (weights_only refuses)", _save({"format": 1, "model": np.zeros(3)}),
     ["cannot be read", "Weights only load failed"]),
    ("checkpoint is a bare tensor", _save(torch.zeros(3)), ["is not a checkpoint of this trainer"]),
    ("checkpoint without a format", _save({"model": {}}), ["is not a checkpoint of this trainer (format 1)"]),
    ("checkpoint of another version", _save({"format": 2, "model": {}, "model_config": {}}),
     ["is not a checkpoint of this trainer (format 1)"]),
    ("checkpoint without model_config", _save({"format": 1, "model": {}}), ["is not a checkpoint of this trainer"]),
]


@pytest.mark.parametrize("write,expect", [pytest.param(w, e, id=i) for i, w, e in CHECKPOINT_FILES])
def test_bad_checkpoint_file(write, expect, tmp_path):
    path = str(tmp_path / "ckpt_0000002.pt")
    write(path)
    raises_config_error(lambda: checkpoint.load_checkpoint(path), path, *expect)


def _ckpt(**change):
    def write(out, data):
        os.makedirs(out, exist_ok=True)
        torch.save(tiny_checkpoint(data, **change), os.path.join(out, "ckpt_0000002.pt"))
    return write


def _shapes(out, data):
    ckpt = tiny_checkpoint(data)
    ckpt["model"]["transformer.wpe.weight"] = torch.zeros(7, 32)
    os.makedirs(out)
    torch.save(ckpt, os.path.join(out, "ckpt_0000002.pt"))


TRAIN_MAIN = [  # (id, what out_dir holds, extra argv, words the message must hold)
    ("init_from=resume without a checkpoint", None, ["--init_from=resume"],
     ["init_from='resume' but", "holds no checkpoint", "init_from='scratch'"]),
    ("init_from=scratch over checkpoints", _ckpt(), ["--init_from=scratch"],
     ["already holds checkpoints (ckpt_0000002.pt)", "new out_dir"]),
    ("eval_only without a checkpoint", None, ["--eval_only=True"], ["eval_only=True but", "no checkpoint to evaluate"]),
    ("out_dir is a file", lambda out, data: _write(out, "x"), [], ["is a file, not a directory"]),
    ("resume into a different depth", _ckpt(), ["--n_layer=3"],
     ["cannot resume from", "n_layer=2 there, 3 here", "use the same settings and data, or a new out_dir"]),
    ("resume into another parameterization", _ckpt(), ["--parameterization=mup"],
     ["parameterization='completep' there, 'mup' here"]),
    ("checkpoint tensors of the wrong shape", _shapes, [], ["does not fit this model", "size mismatch"]),
    ("checkpoint without optimizer state", _ckpt(optimizer=None), [],
     ["field 'optimizer' is NoneType, not dict", "delete it"]),
    ("checkpoint field of the wrong type", _ckpt(iter_num="2"), [],
     ["ckpt_0000002.pt: field 'iter_num' is str, not int", "delete it to fall back"]),
    ("checkpoint without RNG states", _ckpt(rng=[{"torch": 1}]), [],
     ["field 'rng' is not a list of RNG states"]),
    ("checkpoint optimizer without param_groups", _ckpt(optimizer={"state": {}}), [],
     ["field 'optimizer' is not an optimizer state"]),
    ("checkpoint renamed to another step", _ckpt(iter_num=5), [],
     ["ckpt_0000002.pt holds step 5, not the step 2 of its name", "rename it to ckpt_0000005.pt"]),
    ("checkpoint data position of another loader", _ckpt(data={"mode": "sequential shards"}), [],
     ["checkpoint data position is for 'sequential shards'", "same dataset"]),
    ("model too deep for this machine", None, ["--n_layer=10000000"],
     ["this run needs", "parameters, about", "GiB with optimizer state and activations, more than the",
      "GiB cpu has", "lower n_layer, n_embd"]),
    ("model too wide for this machine", None, ["--n_embd=200000", "--n_head=2"], ["this run needs", "lower n_layer"]),
    ("a vocabulary of 10^9", lambda out, data: _meta(data, tokenizer="big", vocab_size=10 ** 9, itos=None), [],
     ["this run needs", "or the dataset's vocab_size"]),
    ("sample prompt not in a char vocabulary", lambda out, data: _no_newline(data), ["--sample_tokens=10"],
     ["outside the vocabulary: ['\\n']", "so set --sample_tokens=0"]),
    ("out_dir under a file", lambda out, data: _write(os.path.dirname(out) + "/f", "x"), ["--out_dir={tmp}/f/run"],
     ["cannot write to out_dir", "/f/run (Not a directory)", "choose another --out_dir"]),
    ("device=cuda without CUDA", None, ["--device=cuda"], ["CUDA is not available", "--device=cpu"]),
    ("device=mps without MPS", None, ["--device=mps"], ["MPS is not available", "--device=cpu"]),
]


@pytest.mark.parametrize("setup,argv,expect", [pytest.param(s, a, e, id=i) for i, s, a, e in TRAIN_MAIN])
def test_bad_run_directory(setup, argv, expect, tmp_path):
    if "--device=cuda" in argv and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    if "--device=mps" in argv and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    data, out = make_dataset(str(tmp_path / "data")), str(tmp_path / "out")
    if setup:
        setup(out, data)
    argv = [a.format(tmp=str(tmp_path)) for a in argv]
    raises_config_error(lambda: run_main(train, TINY + [f"--data_dir={data}", f"--out_dir={out}", *argv]), *expect)


def _no_newline(d):
    """A char dataset whose text has no newline (train.py's sample starts from one)."""
    text = TEXT.replace("\n", " ")
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text], dtype=np.uint16)
    write_tokens(os.path.join(d, "train.bin"), ids[:-1000], vocab_size=len(chars))
    write_tokens(os.path.join(d, "val.bin"), ids[-1000:], vocab_size=len(chars))
    _meta(d, vocab_size=len(chars), itos=chars)


# --- sample.py -----------------------------------------------------------------------------

def _sample_ready(tmp_path):
    data, out = make_dataset(str(tmp_path / "data")), str(tmp_path / "out")
    _ckpt()(out, data)
    return out


SAMPLE = [  # (id, argv after --out_dir, words the message must hold)
    ("sample: no checkpoint", None, ["no checkpoint in", "python train.py --out_dir="]),
    ("sample: --checkpoint not a file", ["--checkpoint=nope.pt"], ["--checkpoint=nope.pt is not a file"]),
    ("sample: prompt with unknown characters", ["--start=ZEBRA"],
     ["outside the vocabulary: ['A', 'B', 'E', 'R', 'Z']"]),
    ("sample: prompt file missing", ["--start=FILE:nope.txt"], ["cannot read the prompt file nope.txt"]),
    ("sample: empty prompt", ["--start="], ["the prompt is empty"]),
    ("sample: top_k of 0", ["--top_k=0"], ["top_k=0 must be positive"]),
    ("sample: negative temperature", ["--temperature=-1.0"], ["temperature=-1.0 must be 0 (greedy) or in [0.001, 1000]"]),
    ("sample: temperature that overflows the logits", ["--temperature=1e-30"], ["temperature=1e-30 must be 0"]),
    ("sample: infinite temperature", ["--temperature=1e999"], ["temperature=inf must be 0"]),
    ("sample: unknown device", ["--device=tpu"], ["device='tpu' is not 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"]),
]


@pytest.mark.parametrize("argv,expect", [pytest.param(a, e, id=i) for i, a, e in SAMPLE])
def test_bad_sample(argv, expect, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _sample_ready(tmp_path) if argv is not None else str(tmp_path / "empty")
    raises_config_error(lambda: run_main(sample, [f"--out_dir={out}", "--max_new_tokens=2", *(argv or [])]),
                        *expect)


def test_sample_never_guesses_a_tokenizer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _sample_ready(tmp_path)  # its checkpoint holds no tokenizer (meta={}): the dataset's is used
    os.remove(tmp_path / "data" / "meta.json")  # and there is none: not GPT-2 by default
    raises_config_error(lambda: run_main(sample, [f"--out_dir={out}", "--max_new_tokens=2"]),
                        "ckpt_0000002.pt holds no tokenizer", "has no meta.json")


def test_good_sample(tmp_path, capsys):
    out = _sample_ready(tmp_path)
    run_main(sample, [f"--out_dir={out}", "--max_new_tokens=5", "--start=the "])
    assert "ckpt_0000002.pt" in capsys.readouterr().out


# --- end to end: exit code 2, one line on stderr, no traceback ------------------------------

def script(args, cwd=REPO):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


E2E = [  # (id, args, words the line must hold)
    ("train.py unknown key", ["train.py", "--n_layers=3"], ["did you mean 'n_layer'"]),
    ("train.py config file syntax error", ["train.py", "{syntax}"], ["line 1"]),
    ("train.py n_embd not divisible by n_head", ["train.py", *TINY, "--data_dir={data}", "--n_embd=30", "--n_head=4"],
     ["not divisible by n_head=4"]),
    ("train.py dataset dir missing", ["train.py", *TINY, "--data_dir={tmp}/nope"], ["does not exist"]),
    ("train.py truncated checkpoint", ["train.py", *TINY, "--data_dir={data}", "--out_dir={out}"],
     ["ckpt_0000002.pt cannot be read"]),
    ("sample.py no checkpoint", ["sample.py", "--out_dir={tmp}/nope"], ["no checkpoint in"]),
    ("sample.py prompt with unknown characters", ["sample.py", "--out_dir={good}", "--start=ZEBRA"],
     ["outside the vocabulary"]),
]


@pytest.mark.parametrize("args,expect", [pytest.param(a, e, id=i) for i, a, e in E2E])
def test_end_to_end_one_line_exit_2(args, expect, tmp_path):
    tmp = str(tmp_path)
    paths = dict(tmp=tmp, data=make_dataset(f"{tmp}/data"), out=f"{tmp}/out", good=f"{tmp}/good",
                 syntax=f"{tmp}/syntax.py")
    _write(paths["syntax"], FILES["syntax"])
    os.makedirs(paths["out"])
    _truncated(f"{tmp}/out/ckpt_0000002.pt")
    _ckpt()(paths["good"], paths["data"])
    res = script([a.format(**paths) for a in args])
    assert res.returncode == 2, f"exit {res.returncode}:\n{res.stdout[-1000:]}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert_one_line(lines[0], *expect)

"""
Generate text from a checkpoint of train.py, with the parameterization it was trained with
(the logit multiplier is part of the model, so sampling sees the same logits as training).

    python sample.py --out_dir=out --start="ROMEO:" --num_samples=2 --max_new_tokens=300
"""
import os
import sys

import torch

from configurator import configure
from runs import UserError, regular_file
from util import load_codec, resolve_device

# defaults; override with --key=value
out_dir = "out"
checkpoint = ""          # a checkpoint (a file, or a DCP directory of fsdp); default: best of out_dir, else its latest
start = "\n"             # prompt; "FILE:prompt.txt" reads it from a file
num_samples = 1
max_new_tokens = 300
temperature = 0.8        # 0: greedy
top_k = 200
seed = 1337
device = "auto"         # 'auto' (CUDA, else MPS, else CPU) | 'cpu' | 'cuda' | 'cuda:N' | 'mps'


def main():
    configure(globals(), sys.argv[1:])
    from dataloader import check_meta, read_meta
    from checkpoint import best_path, is_sharded, list_checkpoints, load_checkpoint, model_from

    path = checkpoint
    if not path:
        best = [p for p in (best_path(out_dir), best_path(out_dir, sharded=True)) if os.path.exists(p)]
        ckpts = list_checkpoints(out_dir)
        path = max(best, key=os.path.getmtime) if best else (ckpts[-1] if ckpts else "")  # the newer best
    if checkpoint and not (os.path.isfile(checkpoint) or is_sharded(checkpoint) and os.path.isdir(checkpoint)):
        raise UserError(f"--checkpoint={checkpoint} is not a file; pass a ckpt_*.pt or best.pt of a run "
                          "(or a ckpt_*.dcp directory)")
    if not path or not os.path.exists(path):
        raise UserError(f"no checkpoint in {out_dir!r}; train one with python train.py "
                          f"--out_dir={out_dir} or pass --checkpoint=FILE")
    if not is_sharded(path):
        regular_file(path, "checkpoint")  # best.pt as a FIFO would block torch.load forever
    for k, v in dict(num_samples=num_samples, max_new_tokens=max_new_tokens, top_k=top_k).items():
        if v <= 0:
            raise UserError(f"{k}={v} must be positive")
    if not (temperature == 0 or 1e-3 <= temperature <= 1e3):  # logits / T overflow or underflow outside
        raise UserError(f"temperature={temperature} must be 0 (greedy) or in [0.001, 1000]")
    prompt = start
    if prompt.startswith("FILE:"):
        try:
            with open(regular_file(prompt[5:], "the prompt file"), encoding="utf-8") as f:
                prompt = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read the prompt file {prompt[5:]} ({e}); give a UTF-8 text file") from None
    if not prompt:
        raise UserError("the prompt is empty; give at least one token, e.g. --start='ROMEO:'")
    dev = resolve_device(device)[0]  # 'auto': CUDA, else MPS, else CPU, as in train.py
    ckpt = load_checkpoint(path)
    model = model_from(ckpt, path)
    model.eval().to(dev)
    meta = ckpt["meta"]  # the tokenizer saved with the model; else the dataset's meta.json
    if meta:  # a checkpoint may come from anywhere: its vocabulary is checked as a meta.json is
        meta = check_meta(meta, f"{path} (its tokenizer meta)", "sample from a checkpoint written by train.py")
    if not meta:
        cfg = ckpt["config"]
        ddir = cfg.get("data_dir") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                                   str(cfg.get("dataset", "")))
        meta = read_meta(ddir) if os.path.isdir(ddir) else None
        if not meta:  # never a guessed tokenizer
            raise UserError(f"{path} holds no tokenizer and its dataset {ddir} has no meta.json; "
                              "sample from a checkpoint of a run on a prepared dataset")
    if meta.get("tokenizer") == "char" and meta["vocab_size"] != model.config.vocab_size:
        raise UserError(f"{path}: the model has {model.config.vocab_size} tokens but its character vocabulary "
                        f"{meta['vocab_size']}; sample from a checkpoint written by train.py")
    encode, decode = load_codec(meta)
    idx = torch.tensor([encode(prompt)], dtype=torch.long, device=dev)
    torch.manual_seed(seed)
    print(f"# {path}: {model.parameterization.name}, {model.config.n_layer} layers x {model.config.n_embd}, step {ckpt['iter_num']}")
    for _ in range(num_samples):
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k)
        print(decode(out[0].tolist()))
        print("---------------")


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
